/* tts: play_content type 10 through libespeak-ng, in process. Owns the
 * library's start (once per process, lazily), the
 * choice of voice per language, and synthesis of one text into a growing
 * buffer of 16-bit samples at the library's rate. The prompt cache
 * (prompt.c) caches the result by (language, text) and converts it to
 * 8 kHz G.711 like any file. See docs/prompts.md. */
#include "tts.h"

#include <espeak-ng/espeak_ng.h>
#include <espeak-ng/speak_lib.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* espeak-ng keeps all its state in process-wide statics, so a handle of
 * ours could not make it otherwise; and in Debian 12's 1.51 the library
 * can start only once: espeak_ng_Terminate after a second
 * espeak_ng_Initialize never returns. This mirror of the library's state
 * is therefore ctid's one piece of mutable global state: rate is 0 before
 * the first synthesis, the sample rate once started, -1 if it failed to
 * start (for good: retrying would be the re-initialisation that hangs).
 * The library is not thread-safe and synthesis runs on the worker threads
 * (work.c), so lock serialises every use of it and of this struct. */
static struct {
    pthread_mutex_t lock;
    int rate;
    char why[128];
} tts_lib = {.lock = PTHREAD_MUTEX_INITIALIZER};

int tts_text_check(const char *text, size_t len, struct rpc_error *err)
{
    bool blank = true;

    if (len == 0)
        return rpc_fail(err, RPC_INVALID_PARAMS, "type 10: empty text");
    if (len > TTS_MAX_TEXT)
        return rpc_fail(err, RPC_INVALID_PARAMS,
                        "type 10: text longer than %d bytes", TTS_MAX_TEXT);
    /* Control characters have no reading, and espeak-ng gives some of them
     * meaning (0x01 starts an embedded command that changes voice, speed
     * or volume mid-text), so none may reach it. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];

        if (c < 0x20 || c == 0x7f ||
            (c == 0xc2 && i + 1 < len &&
             (unsigned char)text[i + 1] >= 0x80 &&
             (unsigned char)text[i + 1] <= 0x9f)) /* C1, U+0080-U+009F */
            return rpc_fail(err, RPC_INVALID_PARAMS,
                            "type 10: control character at byte %zu", i);
        if (c != ' ')
            blank = false;
    }
    if (blank)
        return rpc_fail(err, RPC_INVALID_PARAMS, "type 10: nothing to say");
    return 0;
}

const char *tts_voice(enum speech_lang lang)
{
    /* Mandarin is "cmn" reading Chinese characters. Its sister voice
     * cmn-latn-pinyin, which the prompt packs use, needs pinyin, which
     * callers do not write; see docs/prompts.md for cmn's quality. */
    return lang == SPEECH_EN ? "en" : "cmn";
}

/* Samples of one synthesis; sized by doubling, bounded by max. */
struct tts_buf {
    int16_t *s;
    size_t n, cap, max;
    bool oom, too_long;
};

/* espeak-ng's synth callback: wav holds n more samples (NULL at the end).
 * Returning 1 makes the library abandon the text. */
static int tts_on_samples(short *wav, int n, espeak_EVENT *events)
{
    struct tts_buf *b = events->user_data;

    if (!wav || n <= 0)
        return 0;
    if (b->n + (size_t)n > b->max) {
        b->too_long = true;
        return 1;
    }
    if (b->n + (size_t)n > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        int16_t *s;

        while (cap < b->n + (size_t)n)
            cap *= 2;
        s = realloc(b->s, cap * sizeof *s);
        if (!s) {
            b->oom = true;
            return 1;
        }
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->n, wav, (size_t)n * sizeof *wav);
    b->n += (size_t)n;
    return 0;
}

static void tts_lib_end(void)
{
    if (tts_lib.rate > 0)
        espeak_ng_Terminate();
}

/* Starts the library once. This is espeak_Initialize(
 * AUDIO_OUTPUT_SYNCHRONOUS, 0, NULL, 0) spelt out with the espeak_ng_
 * calls, because espeak_Initialize calls exit(1) when its data is missing
 * (or, with espeakINITIALIZE_DONT_EXIT, returns a rate regardless). The
 * library starts an idle thread of its own here even in synchronous mode;
 * it is stopped at exit so LeakSanitizer and valgrind see a clean end. */
static int tts_lib_start(struct rpc_error *err)
{
    espeak_ng_ERROR_CONTEXT ctx = NULL;
    espeak_ng_STATUS st;

    if (tts_lib.rate > 0)
        return 0;
    if (tts_lib.rate < 0)
        goto failed;
    espeak_ng_InitializePath(NULL);
    st = espeak_ng_Initialize(&ctx);
    if (st == ENS_OK)
        st = espeak_ng_InitializeOutput(ENOUTPUT_MODE_SYNCHRONOUS, 0, NULL);
    espeak_ng_ClearErrorContext(&ctx);
    if (st != ENS_OK) {
        espeak_ng_GetStatusCodeMessage(st, tts_lib.why, sizeof tts_lib.why);
        tts_lib.rate = -1;
        goto failed;
    }
    espeak_SetSynthCallback(tts_on_samples);
    tts_lib.rate = espeak_ng_GetSampleRate();
    atexit(tts_lib_end);
    return 0;
failed:
    return rpc_fail(err, RPC_INTERNAL_ERROR,
                    "text to speech unavailable: %s", tts_lib.why);
}

static int tts_synth_locked(enum speech_lang lang, const char *text,
                            int16_t **samples, size_t *n, int *rate,
                            struct rpc_error *err)
{
    struct tts_buf b = {0};
    espeak_ng_STATUS st;
    char why[128];

    *samples = NULL;
    *n = 0;
    if (tts_lib_start(err) < 0)
        return -1;
    st = espeak_ng_SetVoiceByName(tts_voice(lang));
    if (st != ENS_OK) {
        espeak_ng_GetStatusCodeMessage(st, why, sizeof why);
        return rpc_fail(err, RPC_INTERNAL_ERROR,
                        "text to speech: voice %s: %s", tts_voice(lang), why);
    }
    b.max = (size_t)TTS_MAX_SECONDS * (size_t)tts_lib.rate;
    /* Plain UTF-8 (no SSML, no [[phonemes]]), ended by a sentence's pause
     * as the espeak-ng command line does, so the item is followed by a
     * natural break before the next item or repeat. */
    st = espeak_ng_Synthesize(text, strlen(text) + 1, 0, POS_CHARACTER, 0,
                              espeakCHARS_UTF8 | espeakENDPAUSE, NULL, &b);
    if (b.too_long) {
        free(b.s);
        return rpc_fail(err, RPC_INVALID_PARAMS,
                        "type 10: more than %d s of speech", TTS_MAX_SECONDS);
    }
    if (b.oom) {
        free(b.s);
        return rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory speaking");
    }
    if (st != ENS_OK) {
        free(b.s);
        espeak_ng_GetStatusCodeMessage(st, why, sizeof why);
        return rpc_fail(err, RPC_INTERNAL_ERROR, "text to speech: %s", why);
    }
    if (b.n == 0) {
        free(b.s);
        return rpc_fail(err, RPC_INVALID_PARAMS, "type 10: nothing to say");
    }
    *samples = b.s;
    *n = b.n;
    *rate = tts_lib.rate;
    return 0;
}

int tts_synth(enum speech_lang lang, const char *text, int16_t **samples,
              size_t *n, int *rate, struct rpc_error *err)
{
    pthread_mutex_lock(&tts_lib.lock);
    int rc = tts_synth_locked(lang, text, samples, n, rate, err);
    pthread_mutex_unlock(&tts_lib.lock);
    return rc;
}
