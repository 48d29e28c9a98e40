/* Unit tests for prompt: decoding and conversion of WAVs written at test
 * time with libsndfile, the cache (hits, reload on change, references),
 * confinement to the prompt directory, and play list expansion. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <sndfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "g711.h"
#include "prompt.h"
#include "speech.h"
#include "testutil.h"

struct fixture {
    char base[TU_DIR_MAX]; /* temp dir; holds x.wav, outside the prompts */
    char dir[128];     /* base/prompts, the prompt directory */
    struct prompt_cache *pc;
};

/* Writes a 16-bit WAV of `frames` frames; sample(i, c) gives the value. */
static void write_wav(const char *dir, const char *name, int rate, int ch,
                      size_t frames, int16_t (*sample)(size_t, int))
{
    char path[PATH_MAX];
    SF_INFO info = {.samplerate = rate, .channels = ch,
                    .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
    int16_t *buf = malloc(frames * (size_t)ch * sizeof *buf);
    SNDFILE *sf;

    tu_path(path, sizeof path, dir, name);
    sf = sf_open(path, SFM_WRITE, &info);
    assert_non_null(sf);
    for (size_t i = 0; i < frames; i++)
        for (int c = 0; c < ch; c++)
            buf[i * (size_t)ch + (size_t)c] = sample(i, c);
    assert_int_equal(sf_writef_short(sf, buf, (sf_count_t)frames),
                     (sf_count_t)frames);
    sf_close(sf);
    free(buf);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX];
    FILE *f;

    tu_path(path, sizeof path, dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Deterministic noise covering the full range, extremes included. */
static int16_t noise(size_t i, int c)
{
    if (i == 0)
        return INT16_MIN;
    if (i == 1)
        return INT16_MAX;
    return (int16_t)((i * 2654435761u + (unsigned)c * 40503u) >> 7);
}

static int16_t other_noise(size_t i, int c)
{
    return (int16_t)(noise(i, c) ^ 0x5555);
}

/* 440 Hz at half scale on the left at 16 kHz, silence on the right. */
static int16_t tone_left16k(size_t i, int c)
{
    return c ? 0 : (int16_t)lrint(16384 * sin(2 * M_PI * 440 * i / 16000.0));
}

static int16_t tone44k(size_t i, int c)
{
    (void)c;
    return (int16_t)lrint(16384 * sin(2 * M_PI * 440 * i / 44100.0));
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);

    assert_int_equal(tu_mkdtemp(fx->base, sizeof fx->base, "prompt"), 0);
    tu_path(fx->dir, sizeof fx->dir, fx->base, "prompts");
    assert_int_equal(mkdir(fx->dir, 0755), 0);
    write_wav(fx->base, "x.wav", 8000, 1, 400, noise);
    write_wav(fx->dir, "a.wav", 8000, 1, 400, noise);
    write_wav(fx->dir, "b.wav", 8000, 1, 160, noise);
    write_wav(fx->dir, "c.wav", 8000, 1, 161, noise);
    fx->pc = prompt_cache_new(fx->dir);
    assert_non_null(fx->pc);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    prompt_cache_free(fx->pc);
    assert_int_equal(tu_rmtree(fx->base), 0);
    free(fx);
    return 0;
}

static void test_passthrough_8k(void **state)
{
    struct fixture *fx = *state;
    struct prompt_clip *clip;
    struct rpc_error err;
    char real[PATH_MAX], path[PATH_MAX];

    assert_int_equal(prompt_cache_get(fx->pc, "a.wav", &clip, &err), 0);
    tu_path(path, sizeof path, fx->dir, "a.wav");
    assert_non_null(realpath(path, real));
    assert_string_equal(clip->path, real);
    assert_int_equal(clip->n_frames, 3); /* 400 samples: 2.5 frames */
    for (size_t i = 0; i < 400; i++)
        assert_int_equal(clip->pcm[i], noise(i, 0));
    for (size_t i = 400; i < 480; i++) {
        assert_int_equal(clip->pcm[i], 0);
        assert_int_equal(clip->alaw[i], G711_ALAW_SILENCE);
        assert_int_equal(clip->ulaw[i], G711_ULAW_SILENCE);
    }
    for (size_t i = 0; i < 480; i++) {
        assert_int_equal(clip->alaw[i], g711_alaw_encode(clip->pcm[i]));
        assert_int_equal(clip->ulaw[i], g711_ulaw_encode(clip->pcm[i]));
    }
    prompt_clip_unref(clip);

    /* Exact multiples get no padding frame. */
    assert_int_equal(prompt_cache_get(fx->pc, "b.wav", &clip, &err), 0);
    assert_int_equal(clip->n_frames, 1);
    prompt_clip_unref(clip);
    assert_int_equal(prompt_cache_get(fx->pc, "c.wav", &clip, &err), 0);
    assert_int_equal(clip->n_frames, 2);
    prompt_clip_unref(clip);
}

static void test_stereo_16k(void **state)
{
    struct fixture *fx = *state;
    struct prompt_clip *clip;
    struct rpc_error err;
    size_t frames = 8037; /* 0.502 s: 4018.5 samples at 8 kHz */
    int peak = 0;

    write_wav(fx->dir, "s.wav", 16000, 2, frames, tone_left16k);
    assert_int_equal(prompt_cache_get(fx->pc, "s.wav", &clip, &err), 0);
    assert_int_equal(clip->n_frames, 26); /* ceil(4018.5 / 160) */
    /* Downmix averages: half scale on one channel becomes quarter scale. */
    for (size_t i = 500; i < 3500; i++)
        if (abs(clip->pcm[i]) > peak)
            peak = abs(clip->pcm[i]);
    assert_in_range(peak, 7900, 8500);
    for (size_t i = 0; i < clip->n_frames * PROMPT_FRAME_SAMPLES; i++)
        assert_int_equal(clip->alaw[i], g711_alaw_encode(clip->pcm[i]));
    assert_int_equal(clip->alaw[clip->n_frames * 160 - 1], G711_ALAW_SILENCE);
    prompt_clip_unref(clip);
}

static void test_mono_44k(void **state)
{
    struct fixture *fx = *state;
    struct prompt_clip *clip;
    struct rpc_error err;
    int peak = 0;

    write_wav(fx->dir, "t.wav", 44100, 1, 13300, tone44k); /* 2412.7 */
    assert_int_equal(prompt_cache_get(fx->pc, "t.wav", &clip, &err), 0);
    assert_int_equal(clip->n_frames, 16);
    for (size_t i = 500; i < 2000; i++)
        if (abs(clip->pcm[i]) > peak)
            peak = abs(clip->pcm[i]);
    assert_in_range(peak, 16000, 16800);
    prompt_clip_unref(clip);
}

static void test_cache_hit_and_refs(void **state)
{
    struct fixture *fx = *state;
    struct prompt_clip *c1, *c2, *c3;
    struct rpc_error err;

    assert_int_equal(prompt_cache_get(fx->pc, "a.wav", &c1, &err), 0);
    assert_int_equal(prompt_cache_get(fx->pc, "a.wav", &c2, &err), 0);
    assert_ptr_equal(c1, c2);
    assert_int_equal(c1->refs, 3); /* the cache's and ours */
    /* The key is the resolved path: other spellings hit the same clip. */
    assert_int_equal(prompt_cache_get(fx->pc, "./a.wav", &c3, &err), 0);
    assert_ptr_equal(c1, c3);
    prompt_clip_unref(c3);
    prompt_clip_unref(c2);
    assert_int_equal(c1->refs, 2);
    /* Freeing the cache leaves our reference valid. */
    prompt_cache_free(fx->pc);
    fx->pc = NULL;
    assert_int_equal(c1->refs, 1);
    assert_int_equal(c1->pcm[1], INT16_MAX);
    prompt_clip_unref(c1);
    fx->pc = prompt_cache_new(fx->dir);
}

static void test_many_entries(void **state)
{
    struct fixture *fx = *state;
    struct prompt_clip *first[200], *again;
    struct rpc_error err;
    char name[32];

    /* Enough to grow the hash table a few times. */
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "n%d.wav", i);
        write_wav(fx->dir, name, 8000, 1, 10, noise);
        assert_int_equal(prompt_cache_get(fx->pc, name, &first[i], &err), 0);
    }
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "n%d.wav", i);
        assert_int_equal(prompt_cache_get(fx->pc, name, &again, &err), 0);
        assert_ptr_equal(again, first[i]);
        prompt_clip_unref(again);
        prompt_clip_unref(first[i]);
    }
}

static void test_reload_on_change(void **state)
{
    struct fixture *fx = *state;
    struct prompt_clip *c1, *c2, *c3;
    struct rpc_error err;
    struct timespec times[2];
    char path[PATH_MAX];

    assert_int_equal(prompt_cache_get(fx->pc, "a.wav", &c1, &err), 0);
    /* Same size, new content, mtime one nanosecond later: a rewrite within
     * the same second must still be seen. */
    write_wav(fx->dir, "a.wav", 8000, 1, 400, other_noise);
    times[0] = c1->mtime;
    times[1] = c1->mtime;
    if (++times[1].tv_nsec == 1000000000) {
        times[1].tv_sec++;
        times[1].tv_nsec = 0;
    }
    tu_path(path, sizeof path, fx->dir, "a.wav");
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
    assert_int_equal(prompt_cache_get(fx->pc, "a.wav", &c2, &err), 0);
    assert_ptr_not_equal(c1, c2);
    assert_int_equal(c2->pcm[5], other_noise(5, 0));
    /* The old clip lives on for whoever still plays it. */
    assert_int_equal(c1->refs, 1);
    assert_int_equal(c1->pcm[5], noise(5, 0));
    prompt_clip_unref(c1);
    assert_int_equal(c2->refs, 2);

    /* A size change reloads too. */
    write_wav(fx->dir, "a.wav", 8000, 1, 1000, noise);
    assert_int_equal(prompt_cache_get(fx->pc, "a.wav", &c3, &err), 0);
    assert_ptr_not_equal(c2, c3);
    assert_int_equal(c3->n_frames, 7);
    prompt_clip_unref(c2);
    prompt_clip_unref(c3);

    /* A file that became undecodable is an error, and forgotten. */
    write_text(fx->dir, "a.wav", "not audio any more");
    assert_int_equal(prompt_cache_get(fx->pc, "a.wav", &c3, &err), -1);
    assert_int_equal(err.code, RPC_INVALID_PARAMS);
    assert_null(c3);
}

static void expect_error(struct fixture *fx, const char *name, int code)
{
    struct prompt_clip *clip = (void *)1;
    struct rpc_error err = {0};

    assert_int_equal(prompt_cache_get(fx->pc, name, &clip, &err), -1);
    assert_int_equal(err.code, code);
    assert_null(clip);
    if (code == RPC_INVALID_PARAMS)
        assert_non_null(strstr(err.message, "play_content"));
    if (name[0])
        assert_non_null(strstr(err.message, name));
}

static void test_confinement(void **state)
{
    struct fixture *fx = *state;
    struct prompt_clip *c1, *c2;
    struct rpc_error err;
    char abs_path[PATH_MAX], link[PATH_MAX], target[PATH_MAX];

    expect_error(fx, "../x.wav", RPC_INVALID_PARAMS);
    expect_error(fx, "../nonexistent.wav", RPC_INVALID_PARAMS);
    expect_error(fx, "sub/../../x.wav", RPC_INVALID_PARAMS);
    tu_path(abs_path, sizeof abs_path, fx->base, "x.wav");
    expect_error(fx, abs_path, RPC_INVALID_PARAMS);
    tu_path(abs_path, sizeof abs_path, fx->dir, "a.wav");
    expect_error(fx, abs_path, RPC_INVALID_PARAMS);

    /* A symlink inside pointing outside: refused on its resolved path. */
    tu_path(link, sizeof link, fx->dir, "out.wav");
    tu_path(target, sizeof target, fx->base, "x.wav");
    assert_int_equal(symlink(target, link), 0);
    expect_error(fx, "out.wav", RPC_INVALID_PARAMS);
    /* Also a symlinked directory. */
    tu_path(link, sizeof link, fx->dir, "up");
    assert_int_equal(symlink("..", link), 0);
    expect_error(fx, "up/x.wav", RPC_INVALID_PARAMS);
    /* The prompt directory itself is not a file inside it. */
    expect_error(fx, ".", RPC_INVALID_PARAMS);
    expect_error(fx, "up/prompts", RPC_INVALID_PARAMS);

    /* A symlink staying inside is fine and shares the clip. */
    tu_path(link, sizeof link, fx->dir, "alias.wav");
    assert_int_equal(symlink("a.wav", link), 0);
    assert_int_equal(prompt_cache_get(fx->pc, "alias.wav", &c1, &err), 0);
    assert_int_equal(prompt_cache_get(fx->pc, "a.wav", &c2, &err), 0);
    assert_ptr_equal(c1, c2);
    prompt_clip_unref(c1);
    prompt_clip_unref(c2);
    /* ".." that stays inside is fine. */
    tu_path(link, sizeof link, fx->dir, "sub");
    assert_int_equal(mkdir(link, 0755), 0);
    assert_int_equal(prompt_cache_get(fx->pc, "sub/../a.wav", &c1, &err), 0);
    prompt_clip_unref(c1);
    assert_int_equal(prompt_cache_get(fx->pc, "up/prompts/a.wav", &c1, &err),
                     0);
    prompt_clip_unref(c1);
}

/* Issue 12: absolute names inside one of the prompt_roots, by the same
 * rule as prompt_dir (real path inside, symlinks resolved, ".." refused). */
static void test_roots(void **state)
{
    struct fixture *fx = *state;
    struct prompt_clip *c1, *c2;
    struct rpc_error err;
    char r1[PATH_MAX], r10[PATH_MAX], rlink[PATH_MAX], p[PATH_MAX];
    char roots[3 * PATH_MAX], link[PATH_MAX], target[PATH_MAX];

    tu_path(r1, sizeof r1, fx->base, "r1");
    tu_path(r10, sizeof r10, fx->base, "r10");
    tu_path(rlink, sizeof rlink, fx->base, "rlink");
    assert_int_equal(mkdir(r1, 0755), 0);
    assert_int_equal(mkdir(r10, 0755), 0);
    write_wav(r1, "y.wav", 8000, 1, 400, noise);
    write_wav(r10, "w.wav", 8000, 1, 400, noise);
    tu_path(p, sizeof p, r1, "y.wav");
    /* No roots: every absolute name is refused. */
    expect_error(fx, p, RPC_INVALID_PARAMS);

    snprintf(roots, sizeof roots, "/nonexistent-root , %s", r1);
    assert_int_equal(prompt_cache_set_roots(fx->pc, roots), 0);
    /* Inside a root. */
    assert_int_equal(prompt_cache_get(fx->pc, p, &c1, &err), 0);
    prompt_clip_unref(c1);
    /* Outside every root: r10 only shares r1's prefix; x.wav is above. */
    tu_path(p, sizeof p, r10, "w.wav");
    expect_error(fx, p, RPC_INVALID_PARAMS);
    tu_path(p, sizeof p, fx->base, "x.wav");
    expect_error(fx, p, RPC_INVALID_PARAMS);
    /* ".." counts by where it leads. */
    snprintf(p, sizeof p, "%s/../r10/w.wav", r1);
    expect_error(fx, p, RPC_INVALID_PARAMS);
    snprintf(p, sizeof p, "%s/../r1/y.wav", r1);
    assert_int_equal(prompt_cache_get(fx->pc, p, &c1, &err), 0);
    prompt_clip_unref(c1);
    /* The root itself is not a file inside it; missing inside is 404. */
    expect_error(fx, r1, RPC_INVALID_PARAMS);
    tu_path(p, sizeof p, r1, "none.wav");
    expect_error(fx, p, RPC_NOT_FOUND);
    /* A missing name outside every root is "outside", not "not found":
     * which files exist there is not told. */
    tu_path(p, sizeof p, fx->base, "none.wav");
    expect_error(fx, p, RPC_INVALID_PARAMS);
    snprintf(p, sizeof p, "%s/../none.wav", r1);
    expect_error(fx, p, RPC_INVALID_PARAMS);
    snprintf(p, sizeof p, "%s/./sub/../none.wav", r1);
    expect_error(fx, p, RPC_NOT_FOUND);
    snprintf(p, sizeof p, "%s//nodir/none.wav", r1);
    expect_error(fx, p, RPC_NOT_FOUND);
    /* A symlink inside a root that leads out: refused on its real path. */
    tu_path(link, sizeof link, r1, "esc.wav");
    tu_path(target, sizeof target, fx->base, "x.wav");
    assert_int_equal(symlink(target, link), 0);
    expect_error(fx, link, RPC_INVALID_PARAMS);
    /* A root that is itself a symlink counts as what it points to. */
    assert_int_equal(symlink(r1, rlink), 0);
    assert_int_equal(prompt_cache_set_roots(fx->pc, rlink), 0);
    tu_path(p, sizeof p, rlink, "y.wav");
    assert_int_equal(prompt_cache_get(fx->pc, p, &c1, &err), 0);
    tu_path(p, sizeof p, r1, "y.wav");
    assert_int_equal(prompt_cache_get(fx->pc, p, &c2, &err), 0);
    assert_ptr_equal(c1, c2);
    prompt_clip_unref(c1);
    prompt_clip_unref(c2);
    /* Relative names stay under prompt_dir, roots or not. */
    assert_int_equal(prompt_cache_get(fx->pc, "a.wav", &c1, &err), 0);
    prompt_clip_unref(c1);
    expect_error(fx, "../x.wav", RPC_INVALID_PARAMS);
    expect_error(fx, "../r1/y.wav", RPC_INVALID_PARAMS);
    /* An absolute name into prompt_dir itself needs a root too. */
    tu_path(p, sizeof p, fx->dir, "a.wav");
    expect_error(fx, p, RPC_INVALID_PARAMS);
}

static void test_bad_files(void **state)
{
    struct fixture *fx = *state;
    struct rpc_error err;
    char path[PATH_MAX];

    expect_error(fx, "nope.wav", RPC_NOT_FOUND);
    (void)prompt_cache_get(fx->pc, "nope.wav", &(struct prompt_clip *){0},
                           &err);
    assert_string_equal(err.message, "prompt not found: nope.wav");
    expect_error(fx, "nodir/nope.wav", RPC_NOT_FOUND);
    expect_error(fx, "a.wav/x", RPC_NOT_FOUND);

    write_text(fx->dir, "notes.txt", "this is not audio\n");
    expect_error(fx, "notes.txt", RPC_INVALID_PARAMS);
    write_text(fx->dir, "empty.wav", "");
    expect_error(fx, "empty.wav", RPC_INVALID_PARAMS);
    write_wav(fx->dir, "zero.wav", 8000, 1, 0, noise);
    expect_error(fx, "zero.wav", RPC_INVALID_PARAMS);
    tu_path(path, sizeof path, fx->dir, "subdir");
    assert_int_equal(mkdir(path, 0755), 0);
    expect_error(fx, "subdir", RPC_INVALID_PARAMS);
    expect_error(fx, "", RPC_INVALID_PARAMS);
    if (geteuid() != 0) { /* root reads anything */
        tu_path(path, sizeof path, fx->dir, "a.wav");
        assert_int_equal(chmod(path, 0), 0);
        expect_error(fx, "a.wav", RPC_INVALID_PARAMS);
    }
}

static void test_missing_dir(void **state)
{
    struct fixture *fx = *state;
    struct prompt_cache *pc;
    struct prompt_clip *clip;
    struct rpc_error err;
    char dir[PATH_MAX];

    /* A directory that appears after start-up is picked up. */
    tu_path(dir, sizeof dir, fx->base, "later");
    pc = prompt_cache_new(dir);
    assert_non_null(pc);
    assert_int_equal(prompt_cache_get(pc, "a.wav", &clip, &err), -1);
    assert_int_equal(err.code, RPC_NOT_FOUND);
    assert_int_equal(mkdir(dir, 0755), 0);
    write_wav(dir, "a.wav", 8000, 1, 10, noise);
    assert_int_equal(prompt_cache_get(pc, "a.wav", &clip, &err), 0);
    prompt_clip_unref(clip);
    prompt_cache_free(pc);
}

static void set_item(struct playlist *pl, int type, const char *content)
{
    pl->items[pl->n].type = type;
    pl->items[pl->n].content = (char *)content;
    pl->items[pl->n].options = (char *)"";
    pl->n++;
}

static void test_playlist(void **state)
{
    struct fixture *fx = *state;
    struct playlist pl = {0};
    struct prompt_clip **clips, *a, *b, *c;
    struct rpc_error err;
    size_t n;

    assert_int_equal(prompt_cache_get(fx->pc, "a.wav", &a, &err), 0);
    assert_int_equal(prompt_cache_get(fx->pc, "b.wav", &b, &err), 0);
    assert_int_equal(prompt_cache_get(fx->pc, "c.wav", &c, &err), 0);

    set_item(&pl, PLAY_FILES, "b.wav|a.wav|b.wav");
    set_item(&pl, PLAY_FILE, "c.wav");
    set_item(&pl, PLAY_FILES, "a.wav");
    assert_int_equal(prompt_load_playlist(fx->pc, &pl, &clips, &n, &err), 0);
    assert_int_equal(n, 5);
    assert_ptr_equal(clips[0], b);
    assert_ptr_equal(clips[1], a);
    assert_ptr_equal(clips[2], b);
    assert_ptr_equal(clips[3], c);
    assert_ptr_equal(clips[4], a);
    assert_int_equal(a->refs, 4); /* cache, ours, two in the list */
    prompt_clips_release(clips, n);
    assert_int_equal(a->refs, 2);
    assert_int_equal(b->refs, 2);

    /* An error part way releases what was taken. */
    pl.n = 0;
    set_item(&pl, PLAY_FILE, "a.wav");
    set_item(&pl, PLAY_FILES, "b.wav|nope.wav|c.wav");
    assert_int_equal(prompt_load_playlist(fx->pc, &pl, &clips, &n, &err), -1);
    assert_int_equal(err.code, RPC_NOT_FOUND);
    assert_null(clips);
    assert_int_equal(n, 0);
    assert_int_equal(a->refs, 2);
    assert_int_equal(b->refs, 2);

    pl.n = 0;
    set_item(&pl, PLAY_FILES, "a.wav||b.wav");
    assert_int_equal(prompt_load_playlist(fx->pc, &pl, &clips, &n, &err), -1);
    assert_int_equal(err.code, RPC_INVALID_PARAMS);

    pl.n = 0;
    set_item(&pl, PLAY_FILE, "a.wav");
    set_item(&pl, 8, "123");
    assert_int_equal(prompt_load_playlist(fx->pc, &pl, &clips, &n, &err), -1);
    assert_int_equal(err.code, RPC_INVALID_PARAMS);
    assert_int_equal(a->refs, 2);

    /* At most PROMPT_MAX_CLIPS. */
    size_t len = (PROMPT_MAX_CLIPS + 1) * 6;
    char *many = malloc(len);
    many[0] = '\0';
    for (int i = 0; i <= PROMPT_MAX_CLIPS; i++)
        strcat(many, i ? "|a.wav" : "a.wav");
    pl.n = 0;
    set_item(&pl, PLAY_FILES, many);
    assert_int_equal(prompt_load_playlist(fx->pc, &pl, &clips, &n, &err), -1);
    assert_int_equal(err.code, RPC_INVALID_PARAMS);
    many[strlen(many) - 6] = '\0'; /* exactly the limit */
    assert_int_equal(prompt_load_playlist(fx->pc, &pl, &clips, &n, &err), 0);
    assert_int_equal(n, PROMPT_MAX_CLIPS);
    prompt_clips_release(clips, n);
    free(many);
    assert_int_equal(a->refs, 2);

    prompt_clip_unref(a);
    prompt_clip_unref(b);
    prompt_clip_unref(c);
}

/* Spoken items expand into their pack's recordings, <lang>/<name>.wav,
 * taken from the same cache as files, mixed with files in list order. */
static void test_spoken(void **state)
{
    struct fixture *fx = *state;
    struct playlist pl = {0};
    struct prompt_clip **clips, *a, *d[10], *yuan, *and, *cents;
    struct rpc_error err;
    char dir[PATH_MAX], name[64];
    size_t n;

    tu_path(dir, sizeof dir, fx->dir, "zh");
    assert_int_equal(mkdir(dir, 0755), 0);
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "digit_%d.wav", i);
        write_wav(dir, name, 8000, 1, 100 + 10 * (size_t)i, noise);
    }
    tu_path(dir, sizeof dir, fx->dir, "en");
    assert_int_equal(mkdir(dir, 0755), 0);
    write_wav(dir, "digit_1.wav", 8000, 1, 50, noise);
    write_wav(dir, "yuan.wav", 8000, 1, 50, noise);
    write_wav(dir, "and.wav", 8000, 1, 50, noise);
    write_wav(dir, "n_50.wav", 8000, 1, 50, noise);
    write_wav(dir, "cents.wav", 8000, 1, 50, noise);

    assert_int_equal(prompt_cache_get(fx->pc, "a.wav", &a, &err), 0);
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "zh/digit_%d.wav", i);
        assert_int_equal(prompt_cache_get(fx->pc, name, &d[i], &err), 0);
    }
    assert_int_equal(prompt_cache_get(fx->pc, "en/yuan.wav", &yuan, &err), 0);
    assert_int_equal(prompt_cache_get(fx->pc, "en/and.wav", &and, &err), 0);
    assert_int_equal(prompt_cache_get(fx->pc, "en/cents.wav", &cents, &err),
                     0);

    set_item(&pl, PLAY_FILE, "a.wav");
    set_item(&pl, PLAY_DIGITS, "4815");
    set_item(&pl, PLAY_FILES, "a.wav");
    set_item(&pl, PLAY_MONEY_UNITS, "1.50");
    pl.items[pl.n - 1].options = (char *)"lang=en";
    assert_int_equal(prompt_load_playlist(fx->pc, &pl, &clips, &n, &err), 0);
    assert_int_equal(n, 11);
    assert_ptr_equal(clips[0], a);
    assert_ptr_equal(clips[1], d[4]);
    assert_ptr_equal(clips[2], d[8]);
    assert_ptr_equal(clips[3], d[1]);
    assert_ptr_equal(clips[4], d[5]);
    assert_ptr_equal(clips[5], a);
    assert_string_equal(clips[6]->path + strlen(clips[6]->path) - 15,
                        "/en/digit_1.wav");
    assert_ptr_equal(clips[7], yuan);
    assert_ptr_equal(clips[8], and);
    assert_string_equal(clips[9]->path + strlen(clips[9]->path) - 12,
                        "/en/n_50.wav");
    assert_ptr_equal(clips[10], cents);
    assert_int_equal(d[4]->refs, 3); /* cache, ours, the list's */
    prompt_clips_release(clips, n);
    assert_int_equal(d[4]->refs, 2);

    /* A recording missing from the pack is a 404 naming it. */
    pl.n = 0;
    set_item(&pl, PLAY_FILE, "a.wav");
    set_item(&pl, PLAY_NUMBER, "10");
    assert_int_equal(prompt_load_playlist(fx->pc, &pl, &clips, &n, &err), -1);
    assert_int_equal(err.code, RPC_NOT_FOUND);
    assert_string_equal(err.message, "prompt not found: zh/ten.wav");
    assert_int_equal(a->refs, 2);

    /* Text playlist_parse would refuse is refused here too. */
    pl.n = 0;
    set_item(&pl, PLAY_DATETIME, "2023-02-29");
    assert_int_equal(prompt_load_playlist(fx->pc, &pl, &clips, &n, &err), -1);
    assert_int_equal(err.code, RPC_INVALID_PARAMS);
    assert_string_equal(err.message, "play_content: item 0: type 4: day 29 "
                                     "out of range for 2023-02");

    /* PROMPT_MAX_CLIPS counts spoken words: 4 x 64 digits fit, one more
     * does not. */
    char digits[SPEECH_MAX_DIGITS + 1];
    memset(digits, '7', SPEECH_MAX_DIGITS);
    digits[SPEECH_MAX_DIGITS] = '\0';
    pl.n = 0;
    for (int i = 0; i < PROMPT_MAX_CLIPS / SPEECH_MAX_DIGITS; i++)
        set_item(&pl, PLAY_DIGITS, digits);
    assert_int_equal(prompt_load_playlist(fx->pc, &pl, &clips, &n, &err), 0);
    assert_int_equal(n, PROMPT_MAX_CLIPS);
    prompt_clips_release(clips, n);
    set_item(&pl, PLAY_DIGITS, "7");
    assert_int_equal(prompt_load_playlist(fx->pc, &pl, &clips, &n, &err), -1);
    assert_int_equal(err.code, RPC_INVALID_PARAMS);
    assert_string_equal(err.message, "play_content: more than 256 prompts "
                                     "(files and spoken words) in one play "
                                     "list");
    assert_int_equal(d[7]->refs, 2);

    prompt_clip_unref(a);
    for (int i = 0; i < 10; i++)
        prompt_clip_unref(d[i]);
    prompt_clip_unref(yuan);
    prompt_clip_unref(and);
    prompt_clip_unref(cents);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_passthrough_8k),
        T(test_stereo_16k),
        T(test_mono_44k),
        T(test_cache_hit_and_refs),
        T(test_many_entries),
        T(test_reload_on_change),
        T(test_confinement),
        T(test_roots),
        T(test_bad_files),
        T(test_missing_dir),
        T(test_playlist),
        T(test_spoken),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
