/* prompt: the prompt cache. Owns the decoded clips of the prompt directory:
 * path confinement (realpath, symlinks followed), decoding with libsndfile,
 * downmix and resampling to 8 kHz mono with libsamplerate, padding to whole
 * 20 ms frames, G.711 encoding, and reload when a file changes on disk.
 * Clips are reference counted so a reload never pulls audio from under a
 * call that is playing it. Spoken items (types 1-5) become the clips of
 * the prompt pack, <prompt_dir>/<lang>/<name>.wav, through the same cache.
 * Type 10 texts are synthesised by tts_ and cached here by (language,
 * text) beside the files, converted by the same code; as nothing bounds
 * the texts callers may send, those entries are kept within a byte budget,
 * least recently used first out. */

#include "prompt.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <samplerate.h>
#include <sndfile.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "g711.h"
#include "log.h"
#include "speech.h"
#include "tts.h"

#define PROMPT_RATE 8000

/* A hash chain link; the key is clip->path. */
struct prompt_entry {
    struct prompt_clip *clip; /* the cache's reference */
    uint64_t hash;
    struct prompt_entry *next;
    /* Type 10 entries only: their place in the recency list, and the
     * memory their clip holds. */
    struct prompt_entry *newer, *older;
    size_t bytes;
};

struct prompt_cache {
    char *dir;       /* as configured */
    char *real_dir;  /* realpath of dir; NULL until it exists */
    size_t real_len;
    struct prompt_entry **buckets;
    size_t n_buckets; /* a power of two */
    size_t n_entries;
    struct prompt_entry *tts_newest, *tts_oldest;
    size_t tts_bytes, tts_budget;
};

static uint64_t prompt_hash(const char *s)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */

    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 1099511628211ULL;
    }
    return h;
}

struct prompt_cache *prompt_cache_new(const char *prompt_dir)
{
    struct prompt_cache *pc = calloc(1, sizeof *pc);

    if (!pc)
        return NULL;
    pc->dir = strdup(prompt_dir);
    pc->n_buckets = 64;
    pc->tts_budget = PROMPT_TTS_BUDGET;
    pc->buckets = calloc(pc->n_buckets, sizeof *pc->buckets);
    if (!pc->dir || !pc->buckets) {
        prompt_cache_free(pc);
        return NULL;
    }
    /* A directory missing now may appear later (a mount); until then every
     * name is simply not found. */
    pc->real_dir = realpath(prompt_dir, NULL);
    if (pc->real_dir)
        pc->real_len = strlen(pc->real_dir);
    return pc;
}

void prompt_cache_free(struct prompt_cache *pc)
{
    if (!pc)
        return;
    for (size_t i = 0; pc->buckets && i < pc->n_buckets; i++) {
        struct prompt_entry *e = pc->buckets[i], *next;

        for (; e; e = next) {
            next = e->next;
            prompt_clip_unref(e->clip);
            free(e);
        }
    }
    free(pc->buckets);
    free(pc->real_dir);
    free(pc->dir);
    free(pc);
}

void prompt_clip_unref(struct prompt_clip *clip)
{
    if (!clip || --clip->refs > 0)
        return;
    free(clip->path);
    free(clip->pcm);
    free(clip->alaw);
    free(clip->ulaw);
    free(clip);
}

void prompt_clips_release(struct prompt_clip **clips, size_t n)
{
    if (!clips)
        return;
    for (size_t i = 0; i < n; i++)
        prompt_clip_unref(clips[i]);
    free(clips);
}

static struct prompt_entry **prompt_find(struct prompt_cache *pc,
                                         const char *path, uint64_t hash)
{
    struct prompt_entry **pe = &pc->buckets[hash & (pc->n_buckets - 1)];

    for (; *pe; pe = &(*pe)->next)
        if ((*pe)->hash == hash && strcmp((*pe)->clip->path, path) == 0)
            break;
    return pe;
}

/* Doubles the table once chains average more than one entry. Failure to
 * grow only costs speed. */
static void prompt_grow(struct prompt_cache *pc)
{
    size_t n = pc->n_buckets * 2;
    struct prompt_entry **b = calloc(n, sizeof *b);

    if (!b)
        return;
    for (size_t i = 0; i < pc->n_buckets; i++) {
        struct prompt_entry *e = pc->buckets[i], *next;

        for (; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    free(pc->buckets);
    pc->buckets = b;
    pc->n_buckets = n;
}

/* True when a relative name climbs above its base with "..", judged on the
 * text alone, so "../x.wav" is refused whether or not x.wav exists. */
static bool prompt_escapes(const char *name)
{
    long depth = 0;

    while (*name) {
        size_t len = strcspn(name, "/");

        if (len == 2 && name[0] == '.' && name[1] == '.') {
            if (--depth < 0)
                return true;
        } else if (len > 0 && !(len == 1 && name[0] == '.')) {
            depth++;
        }
        name += len;
        name += *name == '/';
    }
    return false;
}

/* Samples needed to hold n whole or partial 20 ms frames. */
static size_t prompt_padded(size_t n)
{
    return (n + PROMPT_FRAME_SAMPLES - 1) / PROMPT_FRAME_SAMPLES *
           PROMPT_FRAME_SAMPLES;
}

/* The step every clip's audio takes, whether decoded from a file or
 * synthesised: n mono samples in [-1, 1] at rate become the line format,
 * 8 kHz 16-bit (resampled with libsamplerate unless already 8 kHz,
 * clipped), in *out zero padded (silence) to *n_frames whole frames. buf
 * stays the caller's. */
static int prompt_to_line(const float *buf, size_t n, int rate,
                          const char *name, int16_t **out, size_t *n_frames,
                          struct rpc_error *err)
{
    float *res = NULL;
    int16_t *pcm;

    if (rate != PROMPT_RATE && n > 0) {
        SRC_DATA sd = {0};
        int e;

        sd.src_ratio = (double)PROMPT_RATE / rate;
        sd.input_frames = (long)n;
        sd.output_frames = (long)ceil(n * sd.src_ratio) + 16;
        res = malloc((size_t)sd.output_frames * sizeof *res);
        if (!res)
            return rpc_fail(err, RPC_INTERNAL_ERROR,
                            "out of memory loading %s", name);
        sd.data_in = buf;
        sd.data_out = res;
        e = src_simple(&sd, SRC_SINC_MEDIUM_QUALITY, 1);
        if (e) {
            free(res);
            return rpc_fail(err, RPC_INVALID_PARAMS,
                            "play_content: cannot resample %s: %s", name,
                            src_strerror(e));
        }
        n = (size_t)sd.output_frames_gen;
        buf = res;
    }
    if (n == 0) {
        free(res);
        return rpc_fail(err, RPC_INVALID_PARAMS, "play_content: no audio in %s",
                        name);
    }
    pcm = calloc(prompt_padded(n), sizeof *pcm);
    if (!pcm) {
        free(res);
        return rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory loading %s",
                        name);
    }
    for (size_t i = 0; i < n; i++) {
        long v = lrintf(buf[i] * 32768.0f);

        pcm[i] = (int16_t)(v > INT16_MAX   ? INT16_MAX
                           : v < INT16_MIN ? INT16_MIN
                                           : v);
    }
    free(res);
    *out = pcm;
    *n_frames = prompt_padded(n) / PROMPT_FRAME_SAMPLES;
    return 0;
}

/* Reads the whole file as 8 kHz mono int16 samples into *out, zero padded
 * (silence) to a whole number of frames. */
static int prompt_decode(const char *path, const char *name, int16_t **out,
                         size_t *n_frames, struct rpc_error *err)
{
    SF_INFO info = {0};
    SNDFILE *sf = sf_open(path, SFM_READ, &info);
    float *buf = NULL;
    int16_t *pcm = NULL;
    size_t frames, ch, got;
    int rc = -1;

    if (!sf)
        return rpc_fail(err, RPC_INVALID_PARAMS,
                        "play_content: cannot decode %s: %s", name,
                        sf_strerror(NULL));
    if (info.frames <= 0 || info.channels <= 0 || info.samplerate <= 0)
        goto empty;
    /* frames * channels floats, plus the resampler's output, must not
     * overflow a size_t. */
    if ((uint64_t)info.frames > SIZE_MAX / sizeof(float) /
                                    (size_t)info.channels / 2) {
        rpc_fail(err, RPC_INVALID_PARAMS, "play_content: %s is too long",
                 name);
        goto out;
    }
    frames = (size_t)info.frames;

    if (info.samplerate == PROMPT_RATE && info.channels == 1) {
        /* Already the line format: read the samples themselves, so a 16-bit
         * file reaches the wire bit-exact. */
        pcm = calloc(prompt_padded(frames), sizeof *pcm);
        if (!pcm)
            goto oom;
        sf_command(sf, SFC_SET_CLIPPING, NULL, SF_TRUE);
        got = (size_t)sf_readf_short(sf, pcm, (sf_count_t)frames);
        if (got == 0)
            goto empty;
        *out = pcm;
        *n_frames = prompt_padded(got) / PROMPT_FRAME_SAMPLES;
        pcm = NULL;
        rc = 0;
        goto out;
    }
    ch = (size_t)info.channels;
    buf = malloc(frames * ch * sizeof *buf);
    if (!buf)
        goto oom;
    got = (size_t)sf_readf_float(sf, buf, (sf_count_t)frames);
    /* Downmix in place: frame i's average lands in buf[i]. */
    for (size_t i = 0; i < got && ch > 1; i++) {
        float sum = 0;

        for (size_t c = 0; c < ch; c++)
            sum += buf[i * ch + c];
        buf[i] = sum / (float)ch;
    }
    if (got == 0)
        goto empty;
    rc = prompt_to_line(buf, got, info.samplerate, name, out, n_frames, err);
    goto out;
empty:
    rpc_fail(err, RPC_INVALID_PARAMS, "play_content: no audio in %s", name);
    goto out;
oom:
    rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory loading %s", name);
out:
    free(pcm);
    free(buf);
    sf_close(sf);
    return rc;
}

/* A new clip with one reference, keyed key, from line-format samples
 * (taken over, freed on failure too), with their A-law and mu-law. */
static struct prompt_clip *prompt_clip_new(const char *key, const char *name,
                                           int16_t *pcm, size_t n_frames,
                                           struct rpc_error *err)
{
    struct prompt_clip *clip = calloc(1, sizeof *clip);
    size_t total = n_frames * PROMPT_FRAME_SAMPLES;

    if (!clip) {
        free(pcm);
        rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory loading %s", name);
        return NULL;
    }
    clip->refs = 1;
    clip->pcm = pcm;
    clip->n_frames = n_frames;
    clip->path = strdup(key);
    clip->alaw = malloc(total);
    clip->ulaw = malloc(total);
    if (!clip->path || !clip->alaw || !clip->ulaw) {
        prompt_clip_unref(clip);
        rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory loading %s", name);
        return NULL;
    }
    for (size_t i = 0; i < total; i++) {
        clip->alaw[i] = g711_alaw_encode(clip->pcm[i]);
        clip->ulaw[i] = g711_ulaw_encode(clip->pcm[i]);
    }
    return clip;
}

/* Loads path into a new clip with one reference. */
static struct prompt_clip *prompt_load(const char *path, const char *name,
                                       const struct stat *st,
                                       struct rpc_error *err)
{
    struct prompt_clip *clip;
    size_t n_frames;
    int16_t *pcm;

    if (prompt_decode(path, name, &pcm, &n_frames, err) < 0)
        return NULL;
    clip = prompt_clip_new(path, name, pcm, n_frames, err);
    if (!clip)
        return NULL;
    clip->mtime = st->st_mtim;
    clip->size = st->st_size;
    return clip;
}

/* Links a new entry for clip (the cache's reference) at *pe, the end of
 * its chain. */
static struct prompt_entry *prompt_add(struct prompt_cache *pc,
                                       struct prompt_entry **pe,
                                       struct prompt_clip *clip,
                                       uint64_t hash)
{
    struct prompt_entry *e = calloc(1, sizeof *e);

    if (!e)
        return NULL;
    e->clip = clip;
    e->hash = hash;
    *pe = e;
    if (++pc->n_entries > pc->n_buckets)
        prompt_grow(pc);
    return e;
}

int prompt_cache_get(struct prompt_cache *pc, const char *name,
                     struct prompt_clip **out, struct rpc_error *err)
{
    char joined[PATH_MAX], real[PATH_MAX];
    struct prompt_entry **pe, *e;
    struct prompt_clip *clip;
    struct stat st;
    uint64_t hash;

    *out = NULL;
    if (name[0] == '\0')
        return rpc_fail(err, RPC_INVALID_PARAMS,
                        "play_content: empty file name");
    if (name[0] == '/' || prompt_escapes(name))
        return rpc_fail(err, RPC_INVALID_PARAMS,
                        "play_content: %s is outside the prompt directory",
                        name);
    if (!pc->real_dir) {
        pc->real_dir = realpath(pc->dir, NULL);
        if (!pc->real_dir)
            return rpc_fail(err, RPC_NOT_FOUND, "prompt not found: %s", name);
        pc->real_len = strlen(pc->real_dir);
    }
    if ((size_t)snprintf(joined, sizeof joined, "%s/%s", pc->real_dir,
                         name) >= sizeof joined)
        return rpc_fail(err, RPC_INVALID_PARAMS,
                        "play_content: file name too long: %s", name);
    if (!realpath(joined, real)) {
        if (errno == ENOENT || errno == ENOTDIR)
            return rpc_fail(err, RPC_NOT_FOUND, "prompt not found: %s", name);
        return rpc_fail(err, RPC_INVALID_PARAMS,
                        "play_content: cannot open %s: %s", name,
                        strerror(errno));
    }
    /* A symlink may still lead out; only the resolved path counts. The
     * root directory as prompt dir contains everything. */
    if (strncmp(real, pc->real_dir, pc->real_len) != 0 ||
        (pc->real_len > 1 && real[pc->real_len] != '/') ||
        real[pc->real_len] == '\0')
        return rpc_fail(err, RPC_INVALID_PARAMS,
                        "play_content: %s is outside the prompt directory",
                        name);
    if (stat(real, &st) < 0)
        return rpc_fail(err, errno == ENOENT ? RPC_NOT_FOUND
                                             : RPC_INVALID_PARAMS,
                        "prompt not found: %s", name);
    if (!S_ISREG(st.st_mode))
        return rpc_fail(err, RPC_INVALID_PARAMS,
                        "play_content: %s is not a regular file", name);

    hash = prompt_hash(real);
    pe = prompt_find(pc, real, hash);
    e = *pe;
    if (e && e->clip->size == st.st_size &&
        e->clip->mtime.tv_sec == st.st_mtim.tv_sec &&
        e->clip->mtime.tv_nsec == st.st_mtim.tv_nsec) {
        e->clip->refs++;
        *out = e->clip;
        return 0;
    }

    clip = prompt_load(real, name, &st, err);
    if (!clip) {
        if (e) { /* the cached audio is stale: forget it */
            *pe = e->next;
            prompt_clip_unref(e->clip);
            free(e);
            pc->n_entries--;
        }
        return -1;
    }
    if (e) {
        prompt_clip_unref(e->clip); /* calls playing it keep their refs */
        e->clip = clip;
    } else if (!prompt_add(pc, pe, clip, hash)) {
        prompt_clip_unref(clip);
        return rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory loading %s",
                        name);
    }
    clip->refs++;
    *out = clip;
    return 0;
}

/* Type 10 entries, newest first: a hit moves its entry to the front and
 * the oldest go when their clips hold more than the budget. */
static void prompt_tts_unlink(struct prompt_cache *pc, struct prompt_entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        pc->tts_newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        pc->tts_oldest = e->newer;
    e->newer = e->older = NULL;
}

static void prompt_tts_push(struct prompt_cache *pc, struct prompt_entry *e)
{
    e->newer = NULL;
    e->older = pc->tts_newest;
    if (pc->tts_newest)
        pc->tts_newest->newer = e;
    else
        pc->tts_oldest = e;
    pc->tts_newest = e;
}

/* Forgets the oldest type 10 entries until the rest fit the budget; the
 * newest always stays, since its caller is about to use it. Calls playing
 * a forgotten clip keep their references. */
static void prompt_tts_trim(struct prompt_cache *pc)
{
    while (pc->tts_bytes > pc->tts_budget &&
           pc->tts_oldest != pc->tts_newest) {
        struct prompt_entry *e = pc->tts_oldest;
        struct prompt_entry **pe = prompt_find(pc, e->clip->path, e->hash);

        prompt_tts_unlink(pc, e);
        *pe = e->next;
        pc->n_entries--;
        pc->tts_bytes -= e->bytes;
        prompt_clip_unref(e->clip);
        free(e);
    }
}

void prompt_cache_set_tts_budget(struct prompt_cache *pc, size_t bytes)
{
    pc->tts_budget = bytes;
    prompt_tts_trim(pc);
}

static double prompt_ms_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
           (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Synthesises text into a new clip with one reference, keyed key. */
static struct prompt_clip *prompt_speak(const char *key, enum speech_lang lang,
                                        const char *text,
                                        struct rpc_error *err)
{
    static const char name[] = "type 10 text";
    struct prompt_clip *clip;
    struct timespec t0;
    int16_t *samples, *pcm;
    size_t n, n_frames;
    float *buf;
    int rate, rc;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (tts_synth(lang, text, &samples, &n, &rate, err) < 0)
        return NULL;
    /* The scale libsndfile reads 16-bit files with, so speech converts
     * exactly as a WAV of the same samples would. */
    buf = malloc(n * sizeof *buf);
    if (!buf) {
        free(samples);
        rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory speaking");
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        buf[i] = (float)samples[i] / 32768.0f;
    free(samples);
    rc = prompt_to_line(buf, n, rate, name, &pcm, &n_frames, err);
    free(buf);
    if (rc < 0)
        return NULL;
    clip = prompt_clip_new(key, name, pcm, n_frames, err);
    if (!clip)
        return NULL;
    /* The main loop stood still for this long: worth seeing in the log.
     * The text itself is the caller's business and stays out of it. */
    log_info("tts: %s, %zu bytes of text: %zu frames (%.2f s) in %.1f ms",
             tts_voice(lang), strlen(text), clip->n_frames,
             (double)clip->n_frames * PROMPT_FRAME_SAMPLES / PROMPT_RATE,
             prompt_ms_since(&t0));
    return clip;
}

int prompt_cache_tts(struct prompt_cache *pc, enum speech_lang lang,
                     const char *text, struct prompt_clip **out,
                     struct rpc_error *err)
{
    /* Files are keyed by absolute path, so "tts:" never meets one. */
    const char *dir = speech_lang_dir(lang);
    size_t len = strlen(text), klen = 4 + strlen(dir) + 1 + len + 1;
    struct prompt_entry **pe, *e;
    struct prompt_clip *clip;
    uint64_t hash;
    char *key;

    *out = NULL;
    if (tts_text_check(text, len, err) < 0)
        return -1;
    key = malloc(klen);
    if (!key)
        return rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory speaking");
    snprintf(key, klen, "tts:%s:%s", dir, text);
    hash = prompt_hash(key);
    pe = prompt_find(pc, key, hash);
    if (*pe) {
        e = *pe;
        free(key);
        prompt_tts_unlink(pc, e);
        prompt_tts_push(pc, e);
        e->clip->refs++;
        *out = e->clip;
        return 0;
    }
    clip = prompt_speak(key, lang, text, err);
    free(key);
    if (!clip)
        return -1;
    e = prompt_add(pc, pe, clip, hash);
    if (!e) {
        prompt_clip_unref(clip);
        return rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory speaking");
    }
    e->bytes = sizeof *clip + len + clip->n_frames * PROMPT_FRAME_SAMPLES *
                                        (sizeof *clip->pcm + 2);
    prompt_tts_push(pc, e);
    pc->tts_bytes += e->bytes;
    prompt_tts_trim(pc);
    clip->refs++;
    *out = clip;
    return 0;
}

/* What one clip of a play list comes from: a file relative to the prompt
 * directory, or (text set) a type 10 text in lang. item is the index in
 * the list, for errors. */
struct prompt_src {
    const char *name;
    const char *text;
    enum speech_lang lang;
    size_t item;
};

/* Calls fn for each clip's source of the list, in play order; stops at the
 * first non-zero return. Names of a type 7 item are copied out of the
 * '|'-joined string into a buffer; a spoken item names its pack's files. */
typedef int (*prompt_src_fn)(void *arg, const struct prompt_src *src,
                             struct rpc_error *err);

/* playlist_parse accepted the item, so the option and text checks here
 * fail only if the two disagree; say which item anyway. */
static int prompt_item_fail(size_t i, struct rpc_error *err)
{
    struct rpc_error why = *err;

    return rpc_fail(err, RPC_INVALID_PARAMS, "play_content: item %zu: %s", i,
                    why.message);
}

static int prompt_each_spoken(const struct play_item *it, size_t i,
                              prompt_src_fn fn, void *arg,
                              struct rpc_error *err)
{
    struct prompt_src src = {NULL, NULL, SPEECH_ZH, i};
    struct speech sp;
    char name[64];

    if (speech_options(it->options, &src.lang, err) < 0)
        return prompt_item_fail(i, err);
    if (it->type == PLAY_TTS) {
        src.text = it->content;
        return fn(arg, &src, err);
    }
    if (speech_say(it->type, it->content, src.lang, &sp, err) < 0)
        return prompt_item_fail(i, err);
    src.name = name;
    for (size_t k = 0; k < sp.n; k++) {
        snprintf(name, sizeof name, "%s/%s.wav", speech_lang_dir(src.lang),
                 sp.names[k]);
        if (fn(arg, &src, err) < 0)
            return -1;
    }
    return 0;
}

static int prompt_each_src(const struct playlist *pl, prompt_src_fn fn,
                           void *arg, struct rpc_error *err)
{
    char name[PATH_MAX];

    for (size_t i = 0; i < pl->n; i++) {
        const struct play_item *it = &pl->items[i];
        struct prompt_src src = {name, NULL, SPEECH_ZH, i};
        const char *p = it->content;

        if (it->type == PLAY_FILE) {
            src.name = p;
            if (fn(arg, &src, err) < 0)
                return -1;
            continue;
        }
        if (speech_is_spoken(it->type) || it->type == PLAY_TTS) {
            if (prompt_each_spoken(it, i, fn, arg, err) < 0)
                return -1;
            continue;
        }
        if (it->type != PLAY_FILES)
            return rpc_fail(err, RPC_INVALID_PARAMS,
                            "play_content: item %zu: type %d is not playable",
                            i, it->type);
        for (;;) {
            size_t len = strcspn(p, "|");

            if (len >= sizeof name)
                return rpc_fail(err, RPC_INVALID_PARAMS,
                                "play_content: item %zu: file name too long",
                                i);
            memcpy(name, p, len);
            name[len] = '\0';
            if (fn(arg, &src, err) < 0)
                return -1;
            if (p[len] == '\0')
                break;
            p += len + 1;
        }
    }
    return 0;
}

struct prompt_gather {
    struct prompt_cache *pc;
    struct prompt_clip **clips; /* NULL while only counting */
    size_t n;
};

static int prompt_gather_one(void *arg, const struct prompt_src *src,
                             struct rpc_error *err)
{
    struct prompt_gather *g = arg;

    if (g->n >= PROMPT_MAX_CLIPS)
        return rpc_fail(err, RPC_INVALID_PARAMS,
                        "play_content: more than %d prompts (files and "
                        "spoken words) in one play list",
                        PROMPT_MAX_CLIPS);
    if (g->clips) {
        if (src->text) {
            if (prompt_cache_tts(g->pc, src->lang, src->text,
                                 &g->clips[g->n], err) < 0) {
                /* -32603 (the library will not start) keeps its code */
                struct rpc_error why = *err;

                return rpc_fail(err, why.code, "play_content: item %zu: %s",
                                src->item, why.message);
            }
        } else if (prompt_cache_get(g->pc, src->name, &g->clips[g->n],
                                    err) < 0) {
            return -1;
        }
    }
    g->n++;
    return 0;
}

int prompt_load_playlist(struct prompt_cache *pc, const struct playlist *pl,
                         struct prompt_clip ***clips, size_t *n,
                         struct rpc_error *err)
{
    struct prompt_gather g = {pc, NULL, 0};

    *clips = NULL;
    *n = 0;
    /* Count first so the array is allocated once and exactly. */
    if (prompt_each_src(pl, prompt_gather_one, &g, err) < 0)
        return -1;
    if (g.n == 0)
        return rpc_fail(err, RPC_INVALID_PARAMS, "play_content: empty");
    g.clips = malloc(g.n * sizeof *g.clips);
    if (!g.clips)
        return rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory");
    g.n = 0;
    if (prompt_each_src(pl, prompt_gather_one, &g, err) < 0) {
        prompt_clips_release(g.clips, g.n);
        return -1;
    }
    *clips = g.clips;
    *n = g.n;
    return 0;
}
