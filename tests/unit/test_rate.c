/* Unit tests of rate: the token bucket behind max_call_rate — the burst,
 * continuous refill, the cap on refill, unlimited, and rates below 1/s. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rate.h"

#define SEC 1000000000ULL

static unsigned take_all(struct rate *r, uint64_t now)
{
    unsigned n = 0;
    while (n < 100000 && rate_take(r, now))
        n++;
    return n;
}

static void test_burst(void **state)
{
    (void)state;
    struct rate r;
    rate_init(&r, 5, 1000);
    assert_int_equal(take_all(&r, 1000), 5);
    assert_false(rate_take(&r, 1000));
}

static void test_refill(void **state)
{
    (void)state;
    struct rate r;
    rate_init(&r, 10, 0);
    assert_int_equal(take_all(&r, 0), 10);
    /* 0.1 s at 10/s is one token; a bit less is none. */
    assert_false(rate_take(&r, SEC / 10 - 1000));
    assert_true(rate_take(&r, SEC / 10));
    assert_false(rate_take(&r, SEC / 10));
    /* Half a second later: five more. */
    assert_int_equal(take_all(&r, SEC / 10 + SEC / 2), 5);
    /* A long pause refills to the burst, no further. */
    assert_int_equal(take_all(&r, 100 * SEC), 10);
}

static void test_clock_backwards(void **state)
{
    (void)state;
    struct rate r;
    rate_init(&r, 2, 10 * SEC);
    assert_int_equal(take_all(&r, 10 * SEC), 2);
    assert_false(rate_take(&r, 5 * SEC)); /* never refills backwards */
    assert_true(rate_take(&r, 10 * SEC + SEC / 2));
}

static void test_unlimited(void **state)
{
    (void)state;
    struct rate r;
    rate_init(&r, 0, 0);
    assert_int_equal(take_all(&r, 0), 100000);
}

static void test_fractional(void **state)
{
    (void)state;
    struct rate r;
    /* 0.5/s: the bucket still holds one token, refilled every 2 s. */
    rate_init(&r, 0.5, 0);
    assert_int_equal(take_all(&r, 0), 1);
    assert_false(rate_take(&r, SEC));
    assert_true(rate_take(&r, 2 * SEC));
    assert_int_equal(take_all(&r, 100 * SEC), 1);
    /* 2.5/s: a burst of 2 (whole tokens), then 2.5 per second. */
    rate_init(&r, 2.5, 0);
    assert_int_equal(take_all(&r, 0), 2);
    assert_int_equal(take_all(&r, 2 * SEC), 2); /* capped at 2.5 */
    /* 0.5 left over; 0.1 s adds 0.25: not yet a token; 0.3 s adds 0.75. */
    assert_false(rate_take(&r, 2 * SEC + SEC / 10));
    assert_true(rate_take(&r, 2 * SEC + 3 * SEC / 10));
}

static void test_now(void **state)
{
    (void)state;
    uint64_t a = rate_now_ns();
    uint64_t b = rate_now_ns();
    assert_true(b >= a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst),
        cmocka_unit_test(test_refill),
        cmocka_unit_test(test_clock_backwards),
        cmocka_unit_test(test_unlimited),
        cmocka_unit_test(test_fractional),
        cmocka_unit_test(test_now),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
