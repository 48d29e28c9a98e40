/* prompt: audio files from the prompt directory, loaded with libsndfile in
 * any rate and channel count, converted once to 8 kHz mono, encoded to
 * A-law and mu-law, and cached by path for every call to share; and type
 * 10 speech from tts_, converted the same way and cached by (language,
 * text). */
#ifndef CTID_PROMPT_H
#define CTID_PROMPT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "playlist.h"
#include "rpc.h"
#include "speech.h"

#define PROMPT_FRAME_SAMPLES 160 /* 20 ms at 8 kHz */
#define PROMPT_MAX_CLIPS 256     /* clips in one call's play list */
/* Memory the cached type 10 clips may hold (about 32 KB per second of
 * speech: 16-bit PCM plus A-law and mu-law), so about 35 minutes. */
#define PROMPT_TTS_BUDGET (64u << 20)

/* One decoded file or spoken text. Reference counted: the cache holds
 * one reference and each call playing it holds one. Main thread only. */
struct prompt_clip {
    char *path;        /* the cache key: a file's resolved absolute path,
                          or "tts:<lang>:<text>" */
    size_t n_frames;   /* 20 ms frames; the last one padded with silence */
    int16_t *pcm;      /* n_frames * 160 samples, 8 kHz mono */
    uint8_t *alaw;     /* pcm encoded, n_frames * 160 bytes */
    uint8_t *ulaw;
    struct timespec mtime; /* of the file when loaded; a change reloads it
                              (nanoseconds: a rewrite within the same second
                              must be seen too) */
    off_t size;        /* mtime and size are 0 for speech */
    unsigned refs;
};

struct prompt_cache;

struct prompt_cache *prompt_cache_new(const char *prompt_dir);
void prompt_cache_free(struct prompt_cache *pc);

/* Resolves name inside the prompt directory (symlinks followed; anything
 * resolving outside is -32602), loads it if not cached or changed on disk,
 * and returns a new reference. A missing file is 404; an unreadable or
 * undecodable one -32602. */
int prompt_cache_get(struct prompt_cache *pc, const char *name,
                     struct prompt_clip **out, struct rpc_error *err);
void prompt_clip_unref(struct prompt_clip *clip);

/* Returns a new reference to text spoken in lang (tts.h), synthesised on
 * the calling (main) thread when not cached: a repeated text costs a hash
 * lookup, a new one a synthesis (about 1 ms per second of speech, see
 * docs/prompts.md). Text tts_text_check refuses is -32602, like audio
 * longer than TTS_MAX_SECONDS; a library that will not start -32603. The
 * least recently used texts are forgotten beyond PROMPT_TTS_BUDGET
 * bytes. */
int prompt_cache_tts(struct prompt_cache *pc, enum speech_lang lang,
                     const char *text, struct prompt_clip **out,
                     struct rpc_error *err);
/* Changes the budget (tests), forgetting what no longer fits. */
void prompt_cache_set_tts_budget(struct prompt_cache *pc, size_t bytes);

/* Loads every file of a play list in order: types 0 and 7 name files, the
 * spoken types 1-5 the recordings of their pack, <lang>/<name>.wav (see
 * speech.h and docs/prompts.md), and type 10 is one clip of speech from
 * prompt_cache_tts. More than PROMPT_MAX_CLIPS in all is
 * -32602; a missing recording is 404 like a missing file. On success
 * *clips is a malloc'ed array of *n new references (free with
 * prompt_clips_release). */
int prompt_load_playlist(struct prompt_cache *pc, const struct playlist *pl,
                         struct prompt_clip ***clips, size_t *n,
                         struct rpc_error *err);
void prompt_clips_release(struct prompt_clip **clips, size_t n);

#endif
