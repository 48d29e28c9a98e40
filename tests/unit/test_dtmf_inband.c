/* Unit tests of dtmf_inband: DTMF tones made here (the two sines of each
 * key, 8 kHz, G.711-encoded with g711.c) are heard, once each; silence,
 * noise and speech-like sound give no key. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dtmf_inband.h"
#include "g711.h"

#define RATE 8000
#define FRAME 160
#define MAX_SAMPLES (RATE * 12)

/* Audio under construction: linear samples, encoded at the end. */
struct audio {
    int16_t pcm[MAX_SAMPLES];
    size_t n;
    double phase;  /* for the speech-like sound */
};

static int16_t clip(double v)
{
    if (v > 32767)
        return 32767;
    if (v < -32768)
        return -32768;
    return (int16_t)lrint(v);
}

static void add_silence(struct audio *a, unsigned ms)
{
    size_t n = (size_t)ms * RATE / 1000;
    assert_true(a->n + n <= MAX_SAMPLES);
    memset(a->pcm + a->n, 0, n * sizeof a->pcm[0]);
    a->n += n;
}

static void add_pair(struct audio *a, double f1, double f2, double amp,
                     unsigned ms)
{
    size_t n = (size_t)ms * RATE / 1000;
    assert_true(a->n + n <= MAX_SAMPLES);
    for (size_t i = 0; i < n; i++) {
        double t = (double)i / RATE;
        a->pcm[a->n + i] = clip(amp * sin(2 * M_PI * f1 * t)
                                + amp * sin(2 * M_PI * f2 * t));
    }
    a->n += n;
}

/* The key's two frequencies (Q.23), at about -10 dBm0 each. */
static void add_key(struct audio *a, char key, unsigned ms)
{
    static const char *rows[4] = {"123A", "456B", "789C", "*0#D"};
    static const double low[4] = {697, 770, 852, 941};
    static const double high[4] = {1209, 1336, 1477, 1633};
    for (int r = 0; r < 4; r++) {
        const char *c = strchr(rows[r], key);
        if (c != NULL) {
            add_pair(a, low[r], high[c - rows[r]], 7000, ms);
            return;
        }
    }
    fail_msg("no such key %c", key);
}

static uint32_t rng = 12345;

static double noise(void)
{
    rng = rng * 1103515245u + 12345u;
    return ((double)(rng >> 8) / (1 << 24)) * 2 - 1;
}

static void add_white_noise(struct audio *a, double amp, unsigned ms)
{
    size_t n = (size_t)ms * RATE / 1000;
    assert_true(a->n + n <= MAX_SAMPLES);
    for (size_t i = 0; i < n; i++)
        a->pcm[a->n + i] = clip(amp * noise());
    a->n += n;
}

/* Voiced sound: a gliding fundamental (110-260 Hz) with 30 harmonics
 * falling at 6 dB per octave, shaped by a 4 Hz syllable envelope, over a
 * little noise. Nothing DTMF-like, yet energy everywhere in the band. */
static void add_speechlike(struct audio *a, unsigned ms)
{
    size_t n = (size_t)ms * RATE / 1000;
    assert_true(a->n + n <= MAX_SAMPLES);
    for (size_t i = 0; i < n; i++) {
        double t = (double)i / RATE;
        double f0 = 185 + 75 * sin(2 * M_PI * 0.7 * t);
        a->phase += 2 * M_PI * f0 / RATE;
        double v = 0;
        for (int h = 1; h <= 30 && h * f0 < 3800; h++)
            v += sin(h * a->phase) / h;
        double env = 0.55 + 0.45 * sin(2 * M_PI * 4 * t);
        a->pcm[a->n + i] = clip(6000 * env * v + 300 * noise());
    }
    a->n += n;
}

/* Encodes the audio with pt's codec and feeds it in 20 ms frames;
 * returns the keys heard. */
static void hear(const struct audio *a, int pt, char *out, size_t max)
{
    struct dtmf_inband *d = dtmf_inband_new(pt);
    assert_non_null(d);
    size_t got = 0;
    for (size_t at = 0; at < a->n; at += FRAME) {
        uint8_t frame[FRAME];
        size_t k = a->n - at < FRAME ? a->n - at : FRAME;
        for (size_t i = 0; i < k; i++)
            frame[i] = pt == G711_PT_PCMA ? g711_alaw_encode(a->pcm[at + i])
                                          : g711_ulaw_encode(a->pcm[at + i]);
        got += dtmf_inband_feed(d, frame, k, out + got, max - 1 - got);
    }
    out[got] = '\0';
    assert_int_equal(dtmf_inband_dropped(d), 0);
    dtmf_inband_free(d);
}

static struct audio audio;

static void test_every_key(void **state)
{
    (void)state;
    const char *keys = "0123456789*#ABCD";
    for (int pt = 0; pt <= 8; pt += 8) {
        memset(&audio, 0, sizeof audio);
        add_silence(&audio, 200);
        for (const char *k = keys; *k != '\0'; k++) {
            add_key(&audio, *k, 100);
            add_silence(&audio, 100);
        }
        char out[64];
        hear(&audio, pt, out, sizeof out);
        assert_string_equal(out, keys);
    }
}

/* A key held one second counts once; the same key again after a pause
 * counts again. */
static void test_held_once(void **state)
{
    (void)state;
    memset(&audio, 0, sizeof audio);
    add_silence(&audio, 100);
    add_key(&audio, '5', 1000);
    add_silence(&audio, 300);
    add_key(&audio, '5', 80);
    add_silence(&audio, 200);
    char out[16];
    hear(&audio, G711_PT_PCMA, out, sizeof out);
    assert_string_equal(out, "55");
}

static void test_silence_nothing(void **state)
{
    (void)state;
    memset(&audio, 0, sizeof audio);
    add_silence(&audio, 3000);
    char out[16];
    hear(&audio, G711_PT_PCMU, out, sizeof out);
    assert_string_equal(out, "");
    hear(&audio, G711_PT_PCMA, out, sizeof out);
    assert_string_equal(out, "");
}

static void test_noise_and_speech_nothing(void **state)
{
    (void)state;
    memset(&audio, 0, sizeof audio);
    add_white_noise(&audio, 3000, 2000);
    add_white_noise(&audio, 12000, 1000);
    add_speechlike(&audio, 6000);
    /* One frequency of a pair alone is no key either. */
    add_pair(&audio, 770, 770, 7000, 500);
    add_pair(&audio, 1336, 1336, 7000, 500);
    char out[16];
    hear(&audio, G711_PT_PCMA, out, sizeof out);
    assert_string_equal(out, "");
    hear(&audio, G711_PT_PCMU, out, sizeof out);
    assert_string_equal(out, "");

    /* And a key over the same speech is still heard. */
    memset(&audio, 0, sizeof audio);
    add_speechlike(&audio, 1000);
    add_key(&audio, '1', 200);
    add_speechlike(&audio, 1000);
    hear(&audio, G711_PT_PCMA, out, sizeof out);
    assert_string_equal(out, "1");
}

/* Frames of any size, and a buffer too small: the rest is dropped and
 * counted, never written past max. */
static void test_odd_frames_and_full_buffer(void **state)
{
    (void)state;
    memset(&audio, 0, sizeof audio);
    for (int i = 0; i < 6; i++) {
        add_key(&audio, '9', 100);
        add_silence(&audio, 100);
    }
    uint8_t *enc = malloc(audio.n);
    for (size_t i = 0; i < audio.n; i++)
        enc[i] = g711_ulaw_encode(audio.pcm[i]);
    struct dtmf_inband *d = dtmf_inband_new(G711_PT_PCMU);
    char out[8] = {0};
    size_t got = 0;
    for (size_t at = 0, step = 1; at < audio.n; at += step, step = step * 7 % 333 + 1) {
        size_t k = audio.n - at < step ? audio.n - at : step;
        got += dtmf_inband_feed(d, enc + at, k, out + got, 4 - got);
    }
    assert_int_equal(got, 4);
    assert_memory_equal(out, "9999\0\0\0", 8);
    assert_int_equal(dtmf_inband_dropped(d), 2);
    /* No buffer at all: everything counted as dropped. */
    assert_int_equal(dtmf_inband_feed(d, enc, 0, NULL, 0), 0);
    dtmf_inband_free(d);
    free(enc);

    assert_null(dtmf_inband_new(18));
    assert_null(dtmf_inband_new(101));
    dtmf_inband_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_held_once),
        cmocka_unit_test(test_silence_nothing),
        cmocka_unit_test(test_noise_and_speech_nothing),
        cmocka_unit_test(test_odd_frames_and_full_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
