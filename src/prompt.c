/* prompt: the prompt cache. Owns the decoded clips of the prompt directory:
 * path confinement (realpath, symlinks followed), decoding with libsndfile,
 * downmix and resampling to 8 kHz mono with libsamplerate, padding to whole
 * 20 ms frames, G.711 encoding, and reload when a file changes on disk.
 * Clips are reference counted so a reload never pulls audio from under a
 * call that is playing it. Spoken items (types 1-5) become the clips of
 * the prompt pack, <prompt_dir>/<lang>/<name>.wav, through the same cache. */

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

#include "g711.h"
#include "speech.h"

#define PROMPT_RATE 8000

/* A hash chain link; the key is clip->path. */
struct prompt_entry {
    struct prompt_clip *clip; /* the cache's reference */
    uint64_t hash;
    struct prompt_entry *next;
};

struct prompt_cache {
    char *dir;       /* as configured */
    char *real_dir;  /* realpath of dir; NULL until it exists */
    size_t real_len;
    struct prompt_entry **buckets;
    size_t n_buckets; /* a power of two */
    size_t n_entries;
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

/* Reads the whole file as 8 kHz mono int16 samples into *out, zero padded
 * (silence) to a whole number of frames. */
static int prompt_decode(const char *path, const char *name, int16_t **out,
                         size_t *n_frames, struct rpc_error *err)
{
    SF_INFO info = {0};
    SNDFILE *sf = sf_open(path, SFM_READ, &info);
    float *buf = NULL, *res = NULL;
    int16_t *pcm = NULL;
    size_t frames, n = 0;
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
        n = (size_t)sf_readf_short(sf, pcm, (sf_count_t)frames);
    } else {
        size_t ch = (size_t)info.channels, got;

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
        n = got;
        if (info.samplerate != PROMPT_RATE && got > 0) {
            SRC_DATA sd = {0};
            int e;

            sd.src_ratio = (double)PROMPT_RATE / info.samplerate;
            sd.input_frames = (long)got;
            sd.output_frames = (long)ceil(got * sd.src_ratio) + 16;
            res = malloc((size_t)sd.output_frames * sizeof *res);
            if (!res)
                goto oom;
            sd.data_in = buf;
            sd.data_out = res;
            e = src_simple(&sd, SRC_SINC_MEDIUM_QUALITY, 1);
            if (e) {
                rpc_fail(err, RPC_INVALID_PARAMS,
                         "play_content: cannot resample %s: %s", name,
                         src_strerror(e));
                goto out;
            }
            n = (size_t)sd.output_frames_gen;
            free(buf);
            buf = res;
            res = NULL;
        }
        if (n == 0)
            goto empty;
        pcm = calloc(prompt_padded(n), sizeof *pcm);
        if (!pcm)
            goto oom;
        for (size_t i = 0; i < n; i++) {
            long v = lrintf(buf[i] * 32768.0f);

            pcm[i] = (int16_t)(v > INT16_MAX   ? INT16_MAX
                               : v < INT16_MIN ? INT16_MIN
                                               : v);
        }
    }
    if (n == 0)
        goto empty;
    *out = pcm;
    *n_frames = prompt_padded(n) / PROMPT_FRAME_SAMPLES;
    pcm = NULL;
    rc = 0;
    goto out;
empty:
    rpc_fail(err, RPC_INVALID_PARAMS, "play_content: no audio in %s", name);
    goto out;
oom:
    rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory loading %s", name);
out:
    free(pcm);
    free(res);
    free(buf);
    sf_close(sf);
    return rc;
}

/* Loads path into a new clip with one reference. */
static struct prompt_clip *prompt_load(const char *path, const char *name,
                                       const struct stat *st,
                                       struct rpc_error *err)
{
    struct prompt_clip *clip = calloc(1, sizeof *clip);
    size_t total;

    if (!clip) {
        rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory loading %s", name);
        return NULL;
    }
    clip->refs = 1;
    if (prompt_decode(path, name, &clip->pcm, &clip->n_frames, err) < 0) {
        prompt_clip_unref(clip);
        return NULL;
    }
    total = clip->n_frames * PROMPT_FRAME_SAMPLES;
    clip->path = strdup(path);
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
    clip->mtime = st->st_mtim;
    clip->size = st->st_size;
    return clip;
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
    } else {
        e = malloc(sizeof *e);
        if (!e) {
            prompt_clip_unref(clip);
            return rpc_fail(err, RPC_INTERNAL_ERROR,
                            "out of memory loading %s", name);
        }
        e->clip = clip;
        e->hash = hash;
        e->next = NULL;
        *pe = e;
        if (++pc->n_entries > pc->n_buckets)
            prompt_grow(pc);
    }
    clip->refs++;
    *out = clip;
    return 0;
}

/* Calls fn for each file name of the list, in play order; stops at the
 * first non-zero return. Names of a type 7 item are copied out of the
 * '|'-joined string into a buffer; a spoken item names its pack's files. */
typedef int (*prompt_name_fn)(void *arg, const char *name,
                              struct rpc_error *err);

static int prompt_each_spoken(const struct play_item *it, size_t i,
                              prompt_name_fn fn, void *arg,
                              struct rpc_error *err)
{
    enum speech_lang lang;
    struct speech sp;
    char name[64];

    /* playlist_parse accepted the item, so this fails only if the two
     * disagree; say which item anyway. */
    if (speech_options(it->options, &lang, err) < 0 ||
        speech_say(it->type, it->content, lang, &sp, err) < 0) {
        struct rpc_error why = *err;

        return rpc_fail(err, RPC_INVALID_PARAMS, "play_content: item %zu: %s",
                        i, why.message);
    }
    for (size_t k = 0; k < sp.n; k++) {
        snprintf(name, sizeof name, "%s/%s.wav", speech_lang_dir(lang),
                 sp.names[k]);
        if (fn(arg, name, err) < 0)
            return -1;
    }
    return 0;
}

static int prompt_each_name(const struct playlist *pl, prompt_name_fn fn,
                            void *arg, struct rpc_error *err)
{
    char name[PATH_MAX];

    for (size_t i = 0; i < pl->n; i++) {
        const struct play_item *it = &pl->items[i];
        const char *p = it->content;

        if (it->type == PLAY_FILE) {
            if (fn(arg, p, err) < 0)
                return -1;
            continue;
        }
        if (speech_is_spoken(it->type)) {
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
            if (fn(arg, name, err) < 0)
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

static int prompt_gather_one(void *arg, const char *name,
                             struct rpc_error *err)
{
    struct prompt_gather *g = arg;

    if (g->n >= PROMPT_MAX_CLIPS)
        return rpc_fail(err, RPC_INVALID_PARAMS,
                        "play_content: more than %d prompts (files and "
                        "spoken words) in one play list",
                        PROMPT_MAX_CLIPS);
    if (g->clips && prompt_cache_get(g->pc, name, &g->clips[g->n], err) < 0)
        return -1;
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
    if (prompt_each_name(pl, prompt_gather_one, &g, err) < 0)
        return -1;
    if (g.n == 0)
        return rpc_fail(err, RPC_INVALID_PARAMS, "play_content: empty");
    g.clips = malloc(g.n * sizeof *g.clips);
    if (!g.clips)
        return rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory");
    g.n = 0;
    if (prompt_each_name(pl, prompt_gather_one, &g, err) < 0) {
        prompt_clips_release(g.clips, g.n);
        return -1;
    }
    *clips = g.clips;
    *n = g.n;
    return 0;
}
