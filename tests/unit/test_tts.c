/* Unit tests for tts and the prompt cache's type 10 entries: synthesis
 * with libespeak-ng to 8 kHz G.711 clips, caching by (language, text),
 * the byte budget, refusals, and type 10 in a play list. The library is
 * process-wide and started once here, like in the daemon. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <time.h>

#include "g711.h"
#include "prompt.h"
#include "speech.h"
#include "tts.h"

#define PARCEL "Your parcel has arrived."

/* No prompt directory is needed for speech; a missing one is fine. */
static int setup(void **state)
{
    *state = prompt_cache_new("/nonexistent/ctid-test-prompts");
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    prompt_cache_free(*state);
    return 0;
}

static struct prompt_clip *speak(struct prompt_cache *pc,
                                 enum speech_lang lang, const char *text)
{
    struct prompt_clip *clip = NULL;
    struct rpc_error err = {0};

    if (prompt_cache_tts(pc, lang, text, &clip, &err) < 0)
        fail_msg("%s: %d %s", text, err.code, err.message);
    return clip;
}

/* Speech, not silence, and encoded like every clip. */
static void assert_clip_sane(const struct prompt_clip *c)
{
    size_t total = c->n_frames * PROMPT_FRAME_SAMPLES, loud = 0;

    for (size_t i = 0; i < total; i++) {
        loud += c->pcm[i] > 2000 || c->pcm[i] < -2000;
        assert_int_equal(c->alaw[i], g711_alaw_encode(c->pcm[i]));
        assert_int_equal(c->ulaw[i], g711_ulaw_encode(c->pcm[i]));
    }
    assert_true(loud > total / 20);
    assert_int_equal(c->mtime.tv_sec, 0);
    assert_int_equal(c->size, 0);
}

static void test_english(void **state)
{
    struct prompt_cache *pc = *state;
    struct prompt_clip *a = speak(pc, SPEECH_EN, PARCEL), *b;

    assert_string_equal(a->path, "tts:en:" PARCEL);
    /* espeak-ng says it in about 1.5 s, then a sentence's pause */
    print_message("\"%s\": %zu frames (%.2f s)\n", PARCEL, a->n_frames,
                  a->n_frames * 0.02);
    assert_in_range(a->n_frames, 50, 150);
    assert_clip_sane(a);
    assert_int_equal(a->refs, 2); /* the cache's and ours */

    /* a repeat costs a lookup: the very same clip */
    b = speak(pc, SPEECH_EN, PARCEL);
    assert_ptr_equal(b, a);
    assert_int_equal(a->refs, 3);
    prompt_clip_unref(b);
    prompt_clip_unref(a);
    assert_int_equal(a->refs, 1);
}

static void test_different_texts(void **state)
{
    struct prompt_cache *pc = *state;
    struct prompt_clip *a = speak(pc, SPEECH_EN, PARCEL);
    struct prompt_clip *b = speak(pc, SPEECH_EN, "Your parcel has arrived!");
    struct prompt_clip *c = speak(pc, SPEECH_ZH, PARCEL);

    assert_ptr_not_equal(a, b);
    assert_ptr_not_equal(a, c);
    assert_string_equal(c->path, "tts:zh:" PARCEL);
    assert_clip_sane(b);
    prompt_clip_unref(a);
    prompt_clip_unref(b);
    prompt_clip_unref(c);
}

/* Mandarin from Chinese characters through the cmn voice. */
static void test_mandarin(void **state)
{
    struct prompt_cache *pc = *state;
    struct prompt_clip *a = speak(pc, SPEECH_ZH, "您的包裹已到");

    print_message("\"您的包裹已到\": %zu frames (%.2f s)\n", a->n_frames,
                  a->n_frames * 0.02);
    /* six syllables: more than a second, less than five */
    assert_in_range(a->n_frames, 50, 250);
    assert_clip_sane(a);
    prompt_clip_unref(a);
}

static void test_refused(void **state)
{
    struct prompt_cache *pc = *state;
    struct prompt_clip *clip = (struct prompt_clip *)1;
    struct rpc_error err = {0};
    char text[TTS_MAX_TEXT + 2];

    memset(text, 'a', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    assert_int_equal(prompt_cache_tts(pc, SPEECH_EN, text, &clip, &err), -1);
    assert_null(clip);
    assert_int_equal(err.code, RPC_INVALID_PARAMS);
    assert_string_equal(err.message, "type 10: text longer than 1000 bytes");

    assert_int_equal(prompt_cache_tts(pc, SPEECH_EN, "a\x01" "5S", &clip,
                                      &err), -1);
    assert_int_equal(err.code, RPC_INVALID_PARAMS);
    assert_string_equal(err.message,
                        "type 10: control character at byte 1");
    assert_int_equal(prompt_cache_tts(pc, SPEECH_EN, "", &clip, &err), -1);
    assert_string_equal(err.message, "type 10: empty text");
}

static void set_item(struct playlist *pl, int type, const char *content,
                     const char *options)
{
    pl->items[pl->n].type = type;
    pl->items[pl->n].content = (char *)content;
    pl->items[pl->n].options = (char *)options;
    pl->n++;
}

/* Type 10 is one clip, the cached one, in its place in the list; a
 * language speech_ does not know is refused naming the item. */
static void test_playlist(void **state)
{
    struct prompt_cache *pc = *state;
    struct prompt_clip **clips, *a = speak(pc, SPEECH_EN, PARCEL);
    struct playlist pl = {0};
    struct rpc_error err = {0};
    size_t n;

    set_item(&pl, PLAY_TTS, PARCEL, "lang=en");
    set_item(&pl, PLAY_TTS, "您的包裹已到", "");
    set_item(&pl, PLAY_TTS, PARCEL, "x=1; lang=en");
    assert_int_equal(prompt_load_playlist(pc, &pl, &clips, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_ptr_equal(clips[0], a);
    assert_ptr_equal(clips[2], a);
    assert_string_equal(clips[1]->path, "tts:zh:您的包裹已到");
    assert_int_equal(a->refs, 4);
    prompt_clips_release(clips, n);

    memset(&pl, 0, sizeof pl);
    set_item(&pl, PLAY_TTS, PARCEL, "lang=en");
    set_item(&pl, PLAY_TTS, PARCEL, "lang=fr");
    assert_int_equal(prompt_load_playlist(pc, &pl, &clips, &n, &err), -1);
    assert_int_equal(err.code, RPC_INVALID_PARAMS);
    assert_string_equal(err.message, "play_content: item 1: options: "
                        "unknown language \"fr\" (zh or en)");
    assert_null(clips);
    assert_int_equal(a->refs, 2);
    prompt_clip_unref(a);
}

/* Beyond the budget the least recently used text goes; a call holding it
 * keeps its audio, and asking again synthesises it anew. */
static void test_budget(void **state)
{
    struct prompt_cache *pc = prompt_cache_new("/nonexistent");
    struct prompt_clip *a, *b, *c, *a2;

    (void)state;
    a = speak(pc, SPEECH_EN, "one");
    b = speak(pc, SPEECH_EN, "two");
    c = speak(pc, SPEECH_EN, "one"); /* "one" is now the newest */
    assert_ptr_equal(c, a);
    prompt_clip_unref(c);
    /* room for a single entry: "two", the oldest, goes */
    prompt_cache_set_tts_budget(pc, 1);
    assert_int_equal(a->refs, 2);
    assert_int_equal(b->refs, 1); /* only ours now */
    c = speak(pc, SPEECH_EN, "three"); /* the newest always stays */
    assert_int_equal(a->refs, 1);
    a2 = speak(pc, SPEECH_EN, "one");
    assert_ptr_not_equal(a2, a);
    assert_int_equal(c->refs, 1);
    prompt_clip_unref(a);
    prompt_clip_unref(b);
    prompt_clip_unref(c);
    prompt_clip_unref(a2);
    prompt_cache_free(pc);
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
           (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* What a cache miss costs the main loop, for docs/prompts.md: printed, not
 * asserted (sanitizer builds are several times slower). */
static void test_cost(void **state)
{
    static const struct {
        enum speech_lang lang;
        const char *text;
    } cases[] = {
        {SPEECH_EN, "Your parcel has arrived. Please collect it at the "
                    "front desk before six o'clock, and bring your ID."},
        {SPEECH_ZH, "您的包裹已到，请在六点前到前台领取，并携带身份证。"},
    };
    struct prompt_cache *pc = prompt_cache_new("/nonexistent");

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct timespec t0;
        struct prompt_clip *clip;
        double ms, s;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        clip = speak(pc, cases[i].lang, cases[i].text);
        ms = ms_since(&t0);
        s = (double)clip->n_frames * 0.02;
        print_message("%s: %.2f s of speech in %.1f ms (%.1f ms per s)\n",
                      tts_voice(cases[i].lang), s, ms, ms / s);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        prompt_clip_unref(speak(pc, cases[i].lang, cases[i].text));
        print_message("%s: cached: %.3f ms\n", tts_voice(cases[i].lang),
                      ms_since(&t0));
        prompt_clip_unref(clip);
    }
    prompt_cache_free(pc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_english, setup, teardown),
        cmocka_unit_test_setup_teardown(test_different_texts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_mandarin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_playlist, setup, teardown),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
