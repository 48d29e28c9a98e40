/* clip: struct prompt_clip, one decoded prompt, and its reference count
 * (the cache, prompt.h, keeps them). Makes one from a file or a type 10
 * text: decoding with libsndfile, downmix, resampling to 8 kHz with
 * libsamplerate, G.711 encoding. Thread-safe (it touches only its
 * arguments; tts_ serialises the speech library), so the worker pool runs
 * it off the main loop. The clip returned has one reference and belongs to
 * the caller; the cache (prompt.c) adopts it on the main thread. */
#ifndef CTID_CLIP_H
#define CTID_CLIP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "rpc.h"
#include "speech.h"

#define PROMPT_FRAME_SAMPLES 160 /* 20 ms at 8 kHz */

/* One decoded file or spoken text. Reference counted: the cache holds
 * one reference and each call playing it holds one. Main thread only, once
 * the cache has it; before that (made by clip_ on a worker) it belongs to
 * the one job that made it. */
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

/* Takes one more reference; returns clip, for `x = prompt_clip_ref(c)`. */
struct prompt_clip *prompt_clip_ref(struct prompt_clip *clip);
/* Drops one reference; the last frees the clip. */
void prompt_clip_unref(struct prompt_clip *clip);

#define CLIP_NO_ITEM ((size_t)-1) /* errors name the file only */

/* Decodes the file at path (name: as the caller wrote it, for errors;
 * item: its play list index or CLIP_NO_ITEM). A file whose header says it
 * holds more than max_seconds of audio is refused before any decoding with
 * -32602 "play_content[3]: big.wav is 7200 s long, over
 * max_prompt_seconds 600" (max_seconds 0: no limit). mtime and size are
 * left for the caller. */
struct prompt_clip *clip_from_file(const char *path, const char *name,
                                   size_t item, unsigned max_seconds,
                                   struct rpc_error *err);

/* Only the header's length against max_seconds, as clip_from_file checks
 * it (the main thread calls this before queueing the file for a worker, so
 * such a file is refused at once). 0 also when the file does not open. */
int clip_check_length(const char *path, const char *name, size_t item,
                      unsigned max_seconds, struct rpc_error *err);

/* Synthesises text (already checked) in lang into a clip keyed key. */
struct prompt_clip *clip_from_text(const char *key, enum speech_lang lang,
                                   const char *text, struct rpc_error *err);

#endif
