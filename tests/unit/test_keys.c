/* Unit tests of keys: the collection rules of construct's `keys` object,
 * one input at a time, with what each asks the call to do. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "keys.h"

#define T0 1795619567

static struct keys_rules rules(unsigned max, char end, bool stop_play,
                               unsigned wait, bool then)
{
    struct keys_rules r;
    keys_rules_default(&r);
    r.max = max;
    r.end = end;
    r.stop_play = stop_play;
    r.wait_seconds = wait;
    r.then = then;
    return r;
}

static void assert_step(struct keys_step s, bool appended, bool completed,
                        unsigned actions)
{
    assert_int_equal(s.appended, appended);
    assert_int_equal(s.completed, completed);
    assert_int_equal(s.actions, actions);
}

static void test_defaults(void **state)
{
    (void)state;
    struct keys_rules r;
    keys_rules_default(&r);
    assert_int_equal(r.max, 1);
    assert_int_equal(r.end, '\0');
    assert_true(r.stop_play);
    assert_int_equal(r.wait_seconds, 5);
    assert_false(r.then);

    struct keys k;
    keys_start(&k, &r);
    assert_string_equal(keys_text(&k), "");
    assert_int_equal(keys_first_time(&k), -1);
}

static void test_valid(void **state)
{
    (void)state;
    for (const char *p = "0123456789*#ABCD"; *p != '\0'; p++)
        assert_true(keys_valid(*p));
    for (const char *p = "abcdE!x -"; *p != '\0'; p++)
        assert_false(keys_valid(*p));
    assert_false(keys_valid('\0'));
}

/* The default: one key stops the prompt, completes, then the call hangs up
 * (no then). key_time is the first key's. */
static void test_one_key_stops_prompt(void **state)
{
    (void)state;
    struct keys_rules r = rules(1, 0, true, 5, false);
    struct keys k;
    keys_start(&k, &r);
    assert_step(keys_key(&k, '1', T0), true, true,
                KEYS_DO_STOP_PROMPT | KEYS_DO_HANG_UP);
    assert_string_equal(keys_text(&k), "1");
    assert_int_equal(keys_first_time(&k), T0);
    /* Everything after is ignored: more keys, the stopped prompt's end. */
    assert_step(keys_key(&k, '2', T0 + 1), false, false, 0);
    assert_step(keys_prompt_done(&k), false, false, 0);
    assert_step(keys_timeout(&k), false, false, 0);
    assert_string_equal(keys_text(&k), "1");
}

/* With then: it plays after the keys are in, and the call hangs up after
 * it; keys during it are not collected. */
static void test_then(void **state)
{
    (void)state;
    struct keys_rules r = rules(1, 0, true, 5, true);
    struct keys k;
    keys_start(&k, &r);
    assert_step(keys_key(&k, '7', T0), true, true,
                KEYS_DO_STOP_PROMPT | KEYS_DO_PLAY_THEN);
    assert_step(keys_key(&k, '8', T0), false, false, 0);
    assert_step(keys_timeout(&k), false, false, 0);
    assert_step(keys_then_done(&k), false, false, KEYS_DO_HANG_UP);
    assert_step(keys_then_done(&k), false, false, 0);
    assert_string_equal(keys_text(&k), "7");
}

/* max 3: the first key stops the prompt and starts the wait; each key
 * re-arms it; the third completes. key_time stays the first's. */
static void test_max(void **state)
{
    (void)state;
    struct keys_rules r = rules(3, 0, true, 5, true);
    struct keys k;
    keys_start(&k, &r);
    assert_step(keys_key(&k, '4', T0), true, false,
                KEYS_DO_STOP_PROMPT | KEYS_DO_ARM_WAIT);
    assert_step(keys_prompt_done(&k), false, false, 0);
    assert_step(keys_key(&k, 'x', T0 + 1), false, false, 0);
    assert_step(keys_key(&k, '5', T0 + 2), true, false, KEYS_DO_ARM_WAIT);
    assert_step(keys_key(&k, '6', T0 + 3), true, true, KEYS_DO_PLAY_THEN);
    assert_string_equal(keys_text(&k), "456");
    assert_int_equal(keys_first_time(&k), T0);
    assert_step(keys_key(&k, '7', T0 + 4), false, false, 0);
    assert_string_equal(keys_text(&k), "456");
}

/* 32 keys fit; max is clamped to 1..32 whatever the caller passes. */
static void test_max_32(void **state)
{
    (void)state;
    struct keys_rules r = rules(KEYS_MAX, 0, true, 5, false);
    struct keys k;
    keys_start(&k, &r);
    for (int i = 0; i < KEYS_MAX - 1; i++)
        assert_false(keys_key(&k, '0' + (char)(i % 10), T0).completed);
    assert_true(keys_key(&k, '#', T0).completed);
    assert_int_equal(strlen(keys_text(&k)), KEYS_MAX);

    r.max = 1000;
    keys_start(&k, &r);
    assert_int_equal(k.rules.max, KEYS_MAX);
    r.max = 0;
    keys_start(&k, &r);
    assert_true(keys_key(&k, '1', T0).completed);
}

/* The end key completes without being collected; alone, it completes an
 * empty collection (and then plays: a key came). */
static void test_end_key(void **state)
{
    (void)state;
    struct keys_rules r = rules(4, '#', true, 5, true);
    struct keys k;
    keys_start(&k, &r);
    assert_step(keys_key(&k, '1', T0), true, false,
                KEYS_DO_STOP_PROMPT | KEYS_DO_ARM_WAIT);
    assert_step(keys_key(&k, '2', T0 + 1), true, false, KEYS_DO_ARM_WAIT);
    assert_step(keys_key(&k, '#', T0 + 2), false, true, KEYS_DO_PLAY_THEN);
    assert_string_equal(keys_text(&k), "12");

    keys_start(&k, &r);
    assert_step(keys_key(&k, '#', T0), false, true,
                KEYS_DO_STOP_PROMPT | KEYS_DO_PLAY_THEN);
    assert_string_equal(keys_text(&k), "");
    assert_int_equal(keys_first_time(&k), -1);

    /* '*' is an ordinary key when '#' ends. */
    keys_start(&k, &r);
    keys_key(&k, '*', T0);
    assert_string_equal(keys_text(&k), "*");
}

/* No key: the prompt ends, the wait runs out, the call hangs up without
 * then; keys "" and no key_time. */
static void test_no_key(void **state)
{
    (void)state;
    struct keys_rules r = rules(1, 0, true, 5, true);
    struct keys k;
    keys_start(&k, &r);
    assert_step(keys_timeout(&k), false, false, 0);  /* not waiting yet */
    assert_step(keys_prompt_done(&k), false, false, KEYS_DO_ARM_WAIT);
    assert_step(keys_timeout(&k), false, false, KEYS_DO_HANG_UP);
    assert_string_equal(keys_text(&k), "");
    assert_int_equal(keys_first_time(&k), -1);
    assert_step(keys_key(&k, '1', T0), false, false, 0);
    assert_string_equal(keys_text(&k), "");
}

/* wait_seconds 0: no wait after the prompt. */
static void test_wait_zero(void **state)
{
    (void)state;
    struct keys_rules r = rules(2, 0, true, 0, true);
    struct keys k;
    keys_start(&k, &r);
    assert_step(keys_prompt_done(&k), false, false, KEYS_DO_HANG_UP);

    /* A key during the prompt, then nothing to wait for: then plays, as a
     * key came. */
    keys_start(&k, &r);
    assert_step(keys_key(&k, '3', T0), true, false,
                KEYS_DO_STOP_PROMPT | KEYS_DO_PLAY_THEN);
    assert_string_equal(keys_text(&k), "3");
}

/* A wait that runs out after some keys: those keys are the result, and
 * then plays. */
static void test_partial_timeout(void **state)
{
    (void)state;
    struct keys_rules r = rules(4, '#', true, 5, true);
    struct keys k;
    keys_start(&k, &r);
    keys_key(&k, '9', T0);
    assert_step(keys_timeout(&k), false, false, KEYS_DO_PLAY_THEN);
    assert_string_equal(keys_text(&k), "9");
    assert_step(keys_then_done(&k), false, false, KEYS_DO_HANG_UP);
}

/* stop_play false: keys never stop the prompt; a complete collection waits
 * for its end, an incomplete one waits for keys after it. */
static void test_no_stop_play(void **state)
{
    (void)state;
    struct keys_rules r = rules(2, 0, false, 5, true);
    struct keys k;
    keys_start(&k, &r);
    assert_step(keys_key(&k, '1', T0), true, false, 0);
    assert_step(keys_key(&k, '2', T0 + 1), true, true, 0);
    assert_step(keys_key(&k, '3', T0 + 2), false, false, 0);
    assert_step(keys_prompt_done(&k), false, false, KEYS_DO_PLAY_THEN);
    assert_string_equal(keys_text(&k), "12");

    keys_start(&k, &r);
    assert_step(keys_key(&k, '1', T0), true, false, 0);
    assert_step(keys_prompt_done(&k), false, false, KEYS_DO_ARM_WAIT);
    assert_step(keys_key(&k, '2', T0 + 3), true, true, KEYS_DO_PLAY_THEN);
    assert_int_equal(keys_first_time(&k), T0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_one_key_stops_prompt),
        cmocka_unit_test(test_then),
        cmocka_unit_test(test_max),
        cmocka_unit_test(test_max_32),
        cmocka_unit_test(test_end_key),
        cmocka_unit_test(test_no_key),
        cmocka_unit_test(test_wait_zero),
        cmocka_unit_test(test_partial_timeout),
        cmocka_unit_test(test_no_stop_play),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
