/* tts: play_content type 10, text to speech with libespeak-ng in process.
 * Owns the one use of the espeak-ng library: its process-wide
 * initialisation (lazy, once) and synthesis of a text to 16-bit mono
 * samples at the library's rate. Caching and conversion to the line
 * format are the prompt cache's (prompt.h). Any thread: one synthesis at
 * a time (the library is not thread-safe), the others wait. */
#ifndef CTID_TTS_H
#define CTID_TTS_H

#include <stddef.h>
#include <stdint.h>

#include "rpc.h"
#include "speech.h"

#define TTS_MAX_TEXT 1000    /* bytes of UTF-8 in one item */
#define TTS_MAX_SECONDS 600  /* of audio from one item; bounds memory */

/* Checks the text of a type 10 item: 1 to TTS_MAX_TEXT bytes, not only
 * blanks, no control characters (C0, DEL or C1). Pure. -32602 with a
 * message like "type 10: control character at byte 7"; the caller adds
 * which item it was. */
int tts_text_check(const char *text, size_t len, struct rpc_error *err);

/* The espeak-ng voice a language is spoken with: "cmn" or "en". */
const char *tts_voice(enum speech_lang lang);

/* Synthesises text (already checked) with lang's voice, synchronously on
 * the calling thread (a worker's, for constructs). Initialises the
 * library on first use. On success *samples is a malloc'ed array of *n
 * mono samples at *rate Hz (22050 with Debian's data). A library that
 * cannot start or a voice it lacks is -32603; audio longer than
 * TTS_MAX_SECONDS is -32602. */
int tts_synth(enum speech_lang lang, const char *text, int16_t **samples,
              size_t *n, int *rate, struct rpc_error *err);

#endif
