/* Unit tests of the call state machine: every (state, input) pair of
 * call_transition against the outcome table of contract §4. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "call.h"

static struct call_step step(enum call_state s, bool ringing, bool responded,
                             enum call_input in, int status, bool local)
{
    struct call_facts f = {ringing, responded, status, local, false, false};
    return call_transition(s, &f, in);
}

/* The same with a later to_uri entry left to try (failover). */
static struct call_step step_left(enum call_state s, bool ringing,
                                  bool responded, enum call_input in,
                                  int status, bool local)
{
    struct call_facts f = {ringing, responded, status, local, true, false};
    return call_transition(s, &f, in);
}

static void assert_release(struct call_step st, bool hangup, const char *error,
                           const char *dropped_by, int cause)
{
    assert_int_equal(st.next, CALL_RELEASED);
    assert_true(st.actions & CALL_ACT_RELEASE);
    assert_int_equal(!!(st.actions & CALL_ACT_HANGUP), hangup);
    assert_false(st.actions & CALL_ACT_START_MEDIA);
    if (error == NULL)
        assert_null(st.error);
    else
        assert_string_equal(st.error, error);
    assert_string_equal(st.dropped_by, dropped_by);
    assert_int_equal(st.cause, cause);
}

static void assert_stay(struct call_step st, enum call_state s,
                        unsigned actions)
{
    assert_int_equal(st.next, s);
    assert_int_equal(st.actions, actions);
}

static void test_initiated_provisional(void **state)
{
    (void)state;
    /* 100 Trying neither rings nor releases. */
    assert_stay(step(CALL_INITIATED, false, false, CALL_IN_PROVISIONAL, 100,
                     false),
                CALL_INITIATED, 0);
    /* First 180 or 183 starts the ring timer; later ones do not. */
    assert_stay(step(CALL_INITIATED, false, true, CALL_IN_PROVISIONAL, 180,
                     false),
                CALL_INITIATED, CALL_ACT_RING_TIMER);
    assert_stay(step(CALL_INITIATED, false, true, CALL_IN_PROVISIONAL, 183,
                     false),
                CALL_INITIATED, CALL_ACT_RING_TIMER);
    assert_stay(step(CALL_INITIATED, true, true, CALL_IN_PROVISIONAL, 180,
                     false),
                CALL_INITIATED, 0);
    /* Other 1xx (181, 182) do not start ringing. */
    assert_stay(step(CALL_INITIATED, false, true, CALL_IN_PROVISIONAL, 181,
                     false),
                CALL_INITIATED, 0);
}

static void test_initiated_answer(void **state)
{
    (void)state;
    assert_stay(step(CALL_INITIATED, true, true, CALL_IN_ANSWERED, 200, false),
                CALL_ANSWERED, CALL_ACT_START_MEDIA);
    assert_release(step(CALL_INITIATED, true, true, CALL_IN_NO_CODEC, 200,
                        false),
                   true, "dial failed", "sys", 488);
}

static void test_initiated_failures(void **state)
{
    (void)state;
    static const int rejected[] = {486, 600, 603};
    for (size_t i = 0; i < 3; i++)
        assert_release(step(CALL_INITIATED, true, true, CALL_IN_FAILED,
                            rejected[i], false),
                       false, "call rejected", "usr", rejected[i]);
    static const int failed[] = {404, 480, 503, 488, 403, 500, 407, 408, 487};
    for (size_t i = 0; i < sizeof failed / sizeof failed[0]; i++)
        assert_release(step(CALL_INITIATED, false, true, CALL_IN_FAILED,
                            failed[i], false),
                       false, "dial failed", "sys", failed[i]);
    /* Our stack's own 408/503 (no response, transport error). */
    assert_release(step(CALL_INITIATED, false, false, CALL_IN_FAILED, 408,
                        true),
                   false, "dial error", "sys", 408);
    assert_release(step(CALL_INITIATED, false, false, CALL_IN_FAILED, 503,
                        true),
                   false, "dial error", "sys", 503);
    /* ... after a provisional: the call timed out. */
    assert_release(step(CALL_INITIATED, false, true, CALL_IN_FAILED, 408,
                        true),
                   false, "call timeout", "sys", 408);
}

static void test_initiated_timers_and_requests(void **state)
{
    (void)state;
    assert_release(step(CALL_INITIATED, true, true, CALL_IN_RING_TIMEOUT, 0,
                        true),
                   true, "ring timeout", "sys", 487);
    assert_release(step(CALL_INITIATED, false, true, CALL_IN_DIAL_TIMEOUT, 0,
                        true),
                   true, "call timeout", "sys", 408);
    assert_release(step(CALL_INITIATED, false, false, CALL_IN_DIAL_TIMEOUT, 0,
                        true),
                   true, "call timeout", "sys", 408);
    assert_release(step(CALL_INITIATED, true, true, CALL_IN_DROP, 0, true),
                   true, "canceled", "sys", 487);
    assert_release(step(CALL_INITIATED, false, false, CALL_IN_SHUTDOWN, 0,
                        true),
                   true, "shutdown", "sys", 487);
}

static void test_initiated_ignored(void **state)
{
    (void)state;
    assert_stay(step(CALL_INITIATED, true, true, CALL_IN_PEER_BYE, 200, false),
                CALL_INITIATED, 0);
    assert_stay(step(CALL_INITIATED, true, true, CALL_IN_PLAY_DONE, 0, true),
                CALL_INITIATED, 0);
    assert_stay(step(CALL_INITIATED, true, true, CALL_IN_PLAY_ERROR, 0, true),
                CALL_INITIATED, 0);
}

static void test_answered(void **state)
{
    (void)state;
    assert_release(step(CALL_ANSWERED, true, true, CALL_IN_PLAY_DONE, 0, true),
                   true, NULL, "sys", 200);
    assert_release(step(CALL_ANSWERED, true, true, CALL_IN_PLAY_ERROR, 0,
                        true),
                   true, "play error", "sys", 200);
    assert_release(step(CALL_ANSWERED, true, true, CALL_IN_PEER_BYE, 200,
                        false),
                   false, NULL, "usr", 200);
    assert_release(step(CALL_ANSWERED, true, true, CALL_IN_FAILED, 408, true),
                   true, NULL, "usr", 200);
    assert_release(step(CALL_ANSWERED, true, true, CALL_IN_DROP, 0, true),
                   true, NULL, "sys", 200);
    assert_release(step(CALL_ANSWERED, true, true, CALL_IN_SHUTDOWN, 0, true),
                   true, "shutdown", "sys", 200);
    static const enum call_input ignored[] = {
        CALL_IN_PROVISIONAL, CALL_IN_ANSWERED, CALL_IN_NO_CODEC,
        CALL_IN_RING_TIMEOUT, CALL_IN_DIAL_TIMEOUT};
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
        assert_stay(step(CALL_ANSWERED, true, true, ignored[i], 180, false),
                    CALL_ANSWERED, 0);
}

static void test_released_is_terminal(void **state)
{
    (void)state;
    for (int in = CALL_IN_PROVISIONAL; in <= CALL_IN_SESSION_LOST; in++)
        assert_stay(step(CALL_RELEASED, true, true, (enum call_input)in, 200,
                         false),
                    CALL_RELEASED, 0);
}

/* Issue 10: a session refresh that fails, or a session that expires, ends
 * an answered call as "play error" with the failing status, never as a
 * full play (error null). */
static void test_session_lost(void **state)
{
    (void)state;
    assert_release(step(CALL_ANSWERED, true, true, CALL_IN_SESSION_LOST, 481,
                        false),
                   true, "play error", "sys", 481);
    assert_release(step(CALL_ANSWERED, true, true, CALL_IN_SESSION_LOST, 408,
                        true),
                   true, "play error", "sys", 408);
    assert_release(step(CALL_ANSWERED, false, true, CALL_IN_SESSION_LOST,
                        500, false),
                   true, "play error", "sys", 500);
    /* Before the answer there is no session to lose; should the SIP side
     * report it anyway, the call fails as a dial failure, never hangs. */
    assert_release(step(CALL_INITIATED, true, true, CALL_IN_SESSION_LOST, 481,
                        false),
                   true, "dial failed", "sys", 481);
    assert_string_equal(call_input_name(CALL_IN_SESSION_LOST),
                        "session-lost");
}

/* Failover (issue 13, "Routing"): a gateway's or the network's failure
 * before answer moves on to the next entry when one is left; the
 * callee's answers, failures after the answer and every other input end
 * the call as without one. */
static void test_failover(void **state)
{
    (void)state;
    static const int moves[] = {408, 500, 502, 503, 504};
    for (size_t i = 0; i < sizeof moves / sizeof moves[0]; i++) {
        assert_stay(step_left(CALL_INITIATED, false, true, CALL_IN_FAILED,
                              moves[i], false),
                    CALL_INITIATED, CALL_ACT_NEXT_TARGET);
        assert_stay(step_left(CALL_INITIATED, true, true, CALL_IN_FAILED,
                              moves[i], false),
                    CALL_INITIATED, CALL_ACT_NEXT_TARGET);
        /* Nothing left: as today. */
        assert_release(step(CALL_INITIATED, false, true, CALL_IN_FAILED,
                            moves[i], false),
                       false, "dial failed", "sys", moves[i]);
    }
    /* Our own stack's failures: Timer B (408), a transport or TLS error
     * (503, 500): no response reached us from that entry. */
    assert_stay(step_left(CALL_INITIATED, false, false, CALL_IN_FAILED, 408,
                          true),
                CALL_INITIATED, CALL_ACT_NEXT_TARGET);
    assert_stay(step_left(CALL_INITIATED, false, false, CALL_IN_FAILED, 503,
                          true),
                CALL_INITIATED, CALL_ACT_NEXT_TARGET);
    assert_stay(step_left(CALL_INITIATED, false, true, CALL_IN_FAILED, 500,
                          true),
                CALL_INITIATED, CALL_ACT_NEXT_TARGET);
    /* The callee's answers end the call, entry left or not. */
    static const int ends[] = {486, 404, 480, 603, 600, 487, 403, 302, 488};
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
        struct call_step st = step_left(CALL_INITIATED, true, true,
                                        CALL_IN_FAILED, ends[i], false);
        assert_int_equal(st.next, CALL_RELEASED);
        assert_false(st.actions & CALL_ACT_NEXT_TARGET);
        assert_int_equal(st.cause, ends[i]);
    }
    assert_release(step_left(CALL_INITIATED, true, true, CALL_IN_FAILED, 486,
                             false),
                   false, "call rejected", "usr", 486);
    /* Timers, drop, shutdown, a lost session, no codec: no failover. */
    assert_release(step_left(CALL_INITIATED, true, true,
                             CALL_IN_RING_TIMEOUT, 0, true),
                   true, "ring timeout", "sys", 487);
    assert_release(step_left(CALL_INITIATED, false, true,
                             CALL_IN_DIAL_TIMEOUT, 0, true),
                   true, "call timeout", "sys", 408);
    assert_release(step_left(CALL_INITIATED, true, true, CALL_IN_DROP, 0,
                             true),
                   true, "canceled", "sys", 487);
    assert_release(step_left(CALL_INITIATED, true, true, CALL_IN_SHUTDOWN, 0,
                             true),
                   true, "shutdown", "sys", 487);
    assert_release(step_left(CALL_INITIATED, true, true, CALL_IN_NO_CODEC,
                             200, false),
                   true, "dial failed", "sys", 488);
    assert_release(step_left(CALL_INITIATED, true, true,
                             CALL_IN_SESSION_LOST, 503, false),
                   true, "dial failed", "sys", 503);
    /* After the answer a failure ends the call as today. */
    assert_release(step_left(CALL_ANSWERED, true, true, CALL_IN_FAILED, 503,
                             false),
                   true, NULL, "usr", 200);
    assert_release(step_left(CALL_ANSWERED, true, true, CALL_IN_SESSION_LOST,
                             408, true),
                   true, "play error", "sys", 408);
}

/* Issue 14: a call collecting keys hands play done, keys and the wait to
 * the keys rules; without keys nothing changes. */
static struct call_step step_keys(enum call_state s, enum call_input in,
                                  bool collecting)
{
    struct call_facts f = {true, true, 0, true, false, collecting};
    return call_transition(s, &f, in);
}

static void test_keys(void **state)
{
    (void)state;
    /* Collecting: the prompt's end is the rules', not the end. */
    assert_stay(step_keys(CALL_ANSWERED, CALL_IN_PLAY_DONE, true),
                CALL_ANSWERED, CALL_ACT_KEYS);
    /* Not collecting (no keys, or done): as today. */
    assert_release(step_keys(CALL_ANSWERED, CALL_IN_PLAY_DONE, false), true,
                   NULL, "sys", 200);
    assert_stay(step_keys(CALL_ANSWERED, CALL_IN_KEY, true), CALL_ANSWERED,
                CALL_ACT_KEYS);
    assert_stay(step_keys(CALL_ANSWERED, CALL_IN_KEY, false), CALL_ANSWERED,
                0);
    assert_stay(step_keys(CALL_ANSWERED, CALL_IN_KEYS_TIMEOUT, true),
                CALL_ANSWERED, CALL_ACT_KEYS);
    assert_stay(step_keys(CALL_ANSWERED, CALL_IN_KEYS_TIMEOUT, false),
                CALL_ANSWERED, 0);
    /* The rules said hang up: a normal end by us. */
    assert_release(step_keys(CALL_ANSWERED, CALL_IN_KEYS_DONE, true), true,
                   NULL, "sys", 200);
    /* A play error, a BYE and a drop end a collecting call as any. */
    assert_release(step_keys(CALL_ANSWERED, CALL_IN_PLAY_ERROR, true), true,
                   "play error", "sys", 200);
    assert_release(step_keys(CALL_ANSWERED, CALL_IN_PEER_BYE, true), false,
                   NULL, "usr", 200);
    assert_release(step_keys(CALL_ANSWERED, CALL_IN_DROP, true), true, NULL,
                   "sys", 200);
    /* Before the answer keys and waits mean nothing. */
    for (int in = CALL_IN_KEY; in <= CALL_IN_KEYS_DONE; in++)
        assert_stay(step_keys(CALL_INITIATED, (enum call_input)in, true),
                    CALL_INITIATED, 0);
    assert_stay(step_keys(CALL_RELEASED, CALL_IN_KEY, true), CALL_RELEASED,
                0);
    assert_string_equal(call_input_name(CALL_IN_KEYS_DONE), "keys-done");
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(call_state_name(CALL_INITIATED), "Initiated");
    assert_string_equal(call_state_name(CALL_ANSWERED), "Answered");
    assert_string_equal(call_state_name(CALL_RELEASED), "Released");
    assert_string_equal(call_input_name(CALL_IN_SHUTDOWN), "shutdown");
    assert_string_equal(call_input_name(CALL_IN_PROVISIONAL), "provisional");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_initiated_provisional),
        cmocka_unit_test(test_initiated_answer),
        cmocka_unit_test(test_initiated_failures),
        cmocka_unit_test(test_initiated_timers_and_requests),
        cmocka_unit_test(test_initiated_ignored),
        cmocka_unit_test(test_answered),
        cmocka_unit_test(test_released_is_terminal),
        cmocka_unit_test(test_session_lost),
        cmocka_unit_test(test_failover),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
