/* prompt: audio files from the prompt directory, loaded with libsndfile in
 * any rate and channel count, converted once to 8 kHz mono, encoded to
 * A-law and mu-law, and cached by path for every call to share; and type
 * 10 speech from tts_, converted the same way and cached by (language,
 * text). */
#ifndef CTID_PROMPT_H
#define CTID_PROMPT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "clip.h" /* struct prompt_clip, prompt_clip_unref */
#include "playlist.h"
#include "rpc.h"
#include "speech.h"

#define PROMPT_MAX_CLIPS 256     /* clips in one call's play list */
/* Memory the cached type 10 clips may hold (about 32 KB per second of
 * speech: 16-bit PCM plus A-law and mu-law), so about 35 minutes. */
#define PROMPT_TTS_BUDGET (64u << 20)
/* Default max_prompt_seconds: audio one file may hold, by its header. */
#define PROMPT_MAX_SECONDS 600


struct prompt_cache;

struct prompt_cache *prompt_cache_new(const char *prompt_dir);
void prompt_cache_free(struct prompt_cache *pc);
/* prompt_roots (conf.h): where absolute names may point, comma-separated
 * absolute directories; NULL or "" is none (every absolute name is
 * -32602). Copied. Returns 0, or -1 out of memory. */
int prompt_cache_set_roots(struct prompt_cache *pc, const char *roots);

/* Resolves name inside the prompt directory, or an absolute name inside
 * one of the prompt roots (symlinks followed; anything resolving outside
 * is -32602, as is "..": one rule for both), loads it if not cached or changed on disk,
 * and returns a new reference. A missing file is 404; an unreadable or
 * undecodable one -32602. */
int prompt_cache_get(struct prompt_cache *pc, const char *name,
                     struct prompt_clip **out, struct rpc_error *err);

/* Returns a new reference to text spoken in lang (tts.h), synthesised on
 * the calling thread when not cached: a repeated text costs a hash
 * lookup, a new one a synthesis (about 1 ms per second of speech, see
 * docs/prompts.md). Text tts_text_check refuses is -32602, like audio
 * longer than TTS_MAX_SECONDS; a library that will not start -32603. The
 * least recently used texts are forgotten beyond PROMPT_TTS_BUDGET
 * bytes. Constructs go through a prompt_plan instead, which synthesises
 * on a worker. */
int prompt_cache_tts(struct prompt_cache *pc, enum speech_lang lang,
                     const char *text, struct prompt_clip **out,
                     struct rpc_error *err);
/* Changes the budget (tests), forgetting what no longer fits. */
void prompt_cache_set_tts_budget(struct prompt_cache *pc, size_t bytes);

/* Loads every file of a play list in order: types 0 and 7 name files, the
 * spoken types 1-6 the recordings of their pack, <lang>/<name>.wav (see
 * speech.h and docs/prompts.md), and type 10 is one clip of speech from
 * prompt_cache_tts. More than PROMPT_MAX_CLIPS in all is
 * -32602; a missing recording is 404 like a missing file. On success
 * *clips is a malloc'ed array of *n new references (free with
 * prompt_clips_release). */
int prompt_load_playlist(struct prompt_cache *pc, const struct playlist *pl,
                         struct prompt_clip ***clips, size_t *n,
                         struct rpc_error *err);
void prompt_clips_release(struct prompt_clip **clips, size_t n);

/* The cache's parts, for prompt_plan (main thread). */

/* The path checks of prompt_cache_get: real gets name's resolved path
 * (PATH_MAX bytes), st its stat. */
int prompt_resolve(struct prompt_cache *pc, const char *name, char *real,
                   struct stat *st, struct rpc_error *err);
/* A new reference to the clip cached under key (a resolved path, or
 * prompt_tts_key), when there is one and, for a file (st not NULL), it is
 * as on disk; else NULL. */
struct prompt_clip *prompt_cache_lookup(struct prompt_cache *pc,
                                        const char *key,
                                        const struct stat *st);
/* Takes over one reference to a clip made by clip_ and returns a new
 * reference to what the cache now holds under its key: that clip, or an
 * equal one adopted meanwhile (two constructs loading the same file at
 * once; the newcomer is dropped). NULL (out of memory) with err. */
struct prompt_clip *prompt_cache_adopt(struct prompt_cache *pc,
                                       struct prompt_clip *clip,
                                       struct rpc_error *err);
/* Forgets what is cached under key (a file that no longer loads). */
void prompt_cache_forget(struct prompt_cache *pc, const char *key);
/* The type 10 cache key, malloc'ed ("tts:<lang dir>:<text>"). */
char *prompt_tts_key(enum speech_lang lang, const char *text);
/* max_prompt_seconds for files loaded from now on (0: no limit). */
void prompt_cache_set_max_seconds(struct prompt_cache *pc, unsigned seconds);
unsigned prompt_cache_max_seconds(const struct prompt_cache *pc);

/* ---- prompt_plan: a play list's clips, loaded off the main loop ---------- */

struct prompt_need {
    struct prompt_clip *clip; /* a reference: from the cache, or loaded */
    bool loaded;              /* clip made by prompt_plan_load, not adopted */
    char *key;                /* owned: resolved path or type 10 key */
    char *name;               /* owned: the file as written; NULL for text */
    char *text;               /* owned: type 10 text; NULL for a file */
    enum speech_lang lang;
    size_t item;              /* play list index, for errors */
    struct timespec mtime;    /* files: as stat saw them */
    off_t size;
};

struct prompt_plan {
    struct prompt_need *needs; /* one per clip, in play order */
    size_t n;
    size_t missing;           /* needs the cache could not give */
    unsigned max_seconds;     /* max_prompt_seconds when made */
    const char *failed;       /* key of the file that failed to load */
    size_t n_then;            /* the last n_then needs are keys.then's
                                 (prompt_plan_append) */
};

/* Main thread: every item's cheap checks (names, paths, stat, text, the
 * header's length against max_prompt_seconds) and every cache hit. -1 with err (404, -32602) and nothing held. */
int prompt_plan_make(struct prompt_cache *pc, const struct playlist *pl,
                     struct prompt_plan *plan, struct rpc_error *err);
/* Any one thread at a time: decodes and synthesises what is missing,
 * stopping early when *cancel becomes true. Touches only the plan. */
int prompt_plan_load(struct prompt_plan *plan, const atomic_bool *cancel,
                     struct rpc_error *err);
/* Main thread, after a successful load: the cache adopts the new clips;
 * *clips gets every clip in order (as prompt_load_playlist). */
int prompt_plan_finish(struct prompt_cache *pc, struct prompt_plan *plan,
                       struct prompt_clip ***clips, size_t *n,
                       struct rpc_error *err);
/* Main thread: moves more's needs after plan's, as the `then` list
 * (n_then); more is left empty. -1 out of memory (both unchanged). */
int prompt_plan_append_then(struct prompt_plan *plan,
                            struct prompt_plan *more);
/* Main thread, after a failed load: forgets a stale cached file. */
void prompt_plan_forget_failed(struct prompt_cache *pc,
                               const struct prompt_plan *plan);
/* Main thread: releases what the plan still holds. */
void prompt_plan_free(struct prompt_plan *plan);

#endif
