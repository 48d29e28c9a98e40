/* prompt: the prompt cache, main thread only. Owns the decoded clips of the
 * prompt directory: path confinement (realpath, symlinks followed), lookup
 * by path, and reload when a file changes on disk; the clips themselves
 * are made by clip_ (decoding, resampling, G.711), on a worker thread when
 * a construct needs them (prompt_plan.c), and adopted here.
 * Clips are reference counted so a reload never pulls audio from under a
 * call that is playing it. Spoken items (types 1-6) become the clips of
 * the prompt pack, <prompt_dir>/<lang>/<name>.wav, through the same cache.
 * Type 10 texts are synthesised by tts_ and cached here by (language,
 * text) beside the files; as nothing bounds
 * the texts callers may send, those entries are kept within a byte budget,
 * least recently used first out. */

#include "prompt.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "clip.h"
#include "log.h"
#include "speech.h"
#include "tts.h"

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
    char *roots;     /* prompt_roots as configured; NULL: none */
    struct prompt_entry **buckets;
    size_t n_buckets; /* a power of two */
    size_t n_entries;
    struct prompt_entry *tts_newest, *tts_oldest;
    size_t tts_bytes, tts_budget;
    unsigned max_seconds; /* of audio per file, from the header; 0: none */
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
    pc->max_seconds = PROMPT_MAX_SECONDS;
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

int prompt_cache_set_roots(struct prompt_cache *pc, const char *roots)
{
    char *copy = roots && roots[0] ? strdup(roots) : NULL;

    if (roots && roots[0] && !copy)
        return -1;
    free(pc->roots);
    pc->roots = copy;
    return 0;
}

void prompt_cache_free(struct prompt_cache *pc)
{
    if (!pc)
        return;
    free(pc->roots);
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

/* The one rule for prompt_dir and prompt_roots: real (a resolved path)
 * is strictly inside dir (a resolved directory of len bytes). The root
 * directory contains everything. */
static bool prompt_inside(const char *real, const char *dir, size_t len)
{
    return strncmp(real, dir, len) == 0 &&
           (len == 1 || real[len] == '/') && real[len] != '\0';
}

/* name (absolute) with ".", ".." and repeated slashes taken out by the
 * text alone, into out (PATH_MAX); no file is looked at. */
static void prompt_lexical(const char *name, char *out)
{
    size_t n = 0;

    out[0] = '\0';
    while (*name) {
        name += strspn(name, "/");
        size_t len = strcspn(name, "/");
        if (len == 2 && name[0] == '.' && name[1] == '.') {
            while (n > 0 && out[n] != '/')
                n--;            /* back to the parent's slash */
            out[n] = '\0';
        } else if (len > 0 && !(len == 1 && name[0] == '.') &&
                   n + 1 + len < PATH_MAX) {
            out[n++] = '/';
            memcpy(out + n, name, len);
            n += len;
            out[n] = '\0';
        }
        name += len;
    }
    if (n == 0)
        strcpy(out, "/");
}

/* The next entry of the comma-separated roots list at *p into root
 * (PATH_MAX), spaces trimmed; false at the end. Empty and over-long
 * entries are skipped. */
static bool prompt_root_next(const char **p, char *root)
{
    while (**p) {
        const char *q = *p + strspn(*p, " ");
        size_t len = strcspn(q, ",");
        *p = q + len + (q[len] == ',');
        while (len > 0 && q[len - 1] == ' ')
            len--;
        if (len > 0 && len < PATH_MAX) {
            memcpy(root, q, len);
            root[len] = '\0';
            return true;
        }
    }
    return false;
}

/* Whether the absolute name lies inside one of the roots by its text
 * (against each root as written and as resolved). Used for a name that
 * does not exist: "not found" is said only inside the roots, so a client
 * learns nothing of which files exist outside them. */
static bool prompt_named_inside(const struct prompt_cache *pc,
                                const char *name)
{
    char norm[PATH_MAX], root[PATH_MAX], root_norm[PATH_MAX];

    prompt_lexical(name, norm);
    for (const char *p = pc->roots; prompt_root_next(&p, root);) {
        prompt_lexical(root, root_norm);
        if (prompt_inside(norm, root_norm, strlen(root_norm)))
            return true;
        if (realpath(root, root_norm) &&
            prompt_inside(norm, root_norm, strlen(root_norm)))
            return true;
    }
    return false;
}

/* An absolute name: accepted when its real path is inside one of the
 * prompt_roots (".." is judged by where it leads, as in prompt_dir's
 * "sub/../a.wav") (each resolved now, so a root that is a symlink, or that
 * appears later, counts as what it points to). real is filled. */
static int prompt_resolve_rooted(struct prompt_cache *pc, const char *name,
                                 char *real, struct rpc_error *err)
{
    if (!pc->roots)
        return rpc_fail(err, RPC_INVALID_PARAMS,
                        "play_content: %s is outside the prompt roots", name);
    if (strlen(name) >= PATH_MAX)
        return rpc_fail(err, RPC_INVALID_PARAMS,
                        "play_content: file name too long: %s", name);
    if (!realpath(name, real)) {
        bool missing = errno == ENOENT || errno == ENOTDIR;
        int saved = errno;
        if (!prompt_named_inside(pc, name))
            return rpc_fail(err, RPC_INVALID_PARAMS,
                            "play_content: %s is outside the prompt roots",
                            name);
        if (missing)
            return rpc_fail(err, RPC_NOT_FOUND, "prompt not found: %s", name);
        return rpc_fail(err, RPC_INVALID_PARAMS,
                        "play_content: cannot open %s: %s", name,
                        strerror(saved));
    }
    char root[PATH_MAX], root_real[PATH_MAX];
    for (const char *p = pc->roots; prompt_root_next(&p, root);)
        if (realpath(root, root_real) &&
            prompt_inside(real, root_real, strlen(root_real)))
            return 0;
    return rpc_fail(err, RPC_INVALID_PARAMS,
                    "play_content: %s is outside the prompt roots", name);
}

int prompt_resolve(struct prompt_cache *pc, const char *name, char *real,
                   struct stat *st, struct rpc_error *err)
{
    char joined[PATH_MAX];

    if (name[0] == '\0')
        return rpc_fail(err, RPC_INVALID_PARAMS,
                        "play_content: empty file name");
    if (name[0] == '/') {
        if (prompt_resolve_rooted(pc, name, real, err) < 0)
            return -1;
        goto regular;
    }
    if (prompt_escapes(name))
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
    if (!prompt_inside(real, pc->real_dir, pc->real_len))
        return rpc_fail(err, RPC_INVALID_PARAMS,
                        "play_content: %s is outside the prompt directory",
                        name);
regular:
    if (stat(real, st) < 0)
        return rpc_fail(err, errno == ENOENT ? RPC_NOT_FOUND
                                             : RPC_INVALID_PARAMS,
                        "prompt not found: %s", name);
    if (!S_ISREG(st->st_mode))
        return rpc_fail(err, RPC_INVALID_PARAMS,
                        "play_content: %s is not a regular file", name);
    return 0;
}

static bool prompt_is_tts(const char *key)
{
    return strncmp(key, "tts:", 4) == 0;
}

static bool prompt_fresh(const struct prompt_clip *clip, const struct stat *st)
{
    return clip->size == st->st_size &&
           clip->mtime.tv_sec == st->st_mtim.tv_sec &&
           clip->mtime.tv_nsec == st->st_mtim.tv_nsec;
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

int prompt_cache_get(struct prompt_cache *pc, const char *name,
                     struct prompt_clip **out, struct rpc_error *err)
{
    char real[PATH_MAX];
    struct prompt_clip *clip;
    struct stat st;

    *out = NULL;
    if (prompt_resolve(pc, name, real, &st, err) < 0)
        return -1;
    *out = prompt_cache_lookup(pc, real, &st);
    if (*out)
        return 0;
    clip = clip_from_file(real, name, CLIP_NO_ITEM, pc->max_seconds, err);
    if (!clip) {
        prompt_cache_forget(pc, real); /* the cached audio is stale */
        return -1;
    }
    clip->mtime = st.st_mtim;
    clip->size = st.st_size;
    *out = prompt_cache_adopt(pc, clip, err);
    return *out ? 0 : -1;
}

struct prompt_clip *prompt_cache_lookup(struct prompt_cache *pc,
                                        const char *key,
                                        const struct stat *st)
{
    struct prompt_entry *e = *prompt_find(pc, key, prompt_hash(key));

    if (!e || (st && !prompt_fresh(e->clip, st)))
        return NULL;
    if (prompt_is_tts(key)) {
        prompt_tts_unlink(pc, e);
        prompt_tts_push(pc, e);
    }
    return prompt_clip_ref(e->clip);
}

void prompt_cache_forget(struct prompt_cache *pc, const char *key)
{
    uint64_t hash = prompt_hash(key);
    struct prompt_entry **pe = prompt_find(pc, key, hash), *e = *pe;

    if (!e)
        return;
    if (prompt_is_tts(key)) {
        prompt_tts_unlink(pc, e);
        pc->tts_bytes -= e->bytes;
    }
    *pe = e->next;
    prompt_clip_unref(e->clip); /* calls playing it keep their refs */
    free(e);
    pc->n_entries--;
}

struct prompt_clip *prompt_cache_adopt(struct prompt_cache *pc,
                                       struct prompt_clip *clip,
                                       struct rpc_error *err)
{
    uint64_t hash = prompt_hash(clip->path);
    struct prompt_entry **pe = prompt_find(pc, clip->path, hash), *e = *pe;
    bool tts = prompt_is_tts(clip->path);

    if (e && (tts || (e->clip->size == clip->size &&
                      e->clip->mtime.tv_sec == clip->mtime.tv_sec &&
                      e->clip->mtime.tv_nsec == clip->mtime.tv_nsec))) {
        /* Loaded twice at once (two constructs, one new file): keep the
         * first, so every call shares one copy. */
        prompt_clip_unref(clip);
        return prompt_clip_ref(e->clip);
    }
    if (e) {
        prompt_clip_unref(e->clip); /* calls playing it keep their refs */
        e->clip = clip;
    } else if (!(e = prompt_add(pc, pe, clip, hash))) {
        prompt_clip_unref(clip);
        rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory loading a prompt");
        return NULL;
    }
    if (tts) {
        e->bytes = sizeof *clip + strlen(clip->path) +
                   clip->n_frames * PROMPT_FRAME_SAMPLES *
                       (sizeof *clip->pcm + 2);
        prompt_tts_push(pc, e);
        pc->tts_bytes += e->bytes;
        prompt_tts_trim(pc);
    }
    return prompt_clip_ref(clip);
}

char *prompt_tts_key(enum speech_lang lang, const char *text)
{
    /* Files are keyed by absolute path, so "tts:" never meets one. */
    const char *dir = speech_lang_dir(lang);
    size_t klen = 4 + strlen(dir) + 1 + strlen(text) + 1;
    char *key = malloc(klen);

    if (key)
        snprintf(key, klen, "tts:%s:%s", dir, text);
    return key;
}

int prompt_cache_tts(struct prompt_cache *pc, enum speech_lang lang,
                     const char *text, struct prompt_clip **out,
                     struct rpc_error *err)
{
    struct prompt_clip *clip;
    char *key;

    *out = NULL;
    if (tts_text_check(text, strlen(text), err) < 0)
        return -1;
    key = prompt_tts_key(lang, text);
    if (!key)
        return rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory speaking");
    *out = prompt_cache_lookup(pc, key, NULL);
    clip = *out ? NULL : clip_from_text(key, lang, text, err);
    free(key);
    if (*out)
        return 0;
    if (!clip)
        return -1;
    *out = prompt_cache_adopt(pc, clip, err);
    return *out ? 0 : -1;
}

void prompt_cache_set_max_seconds(struct prompt_cache *pc, unsigned seconds)
{
    pc->max_seconds = seconds;
}

unsigned prompt_cache_max_seconds(const struct prompt_cache *pc)
{
    return pc->max_seconds;
}
