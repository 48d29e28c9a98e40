/* Unit tests of admit's per-address connection counts: the key of an
 * address (IPv4-mapped IPv6 is the IPv4 address), counting up and down,
 * many addresses sharing buckets, and an address-less key counted
 * nowhere. The refusal and accept-pause paths are integration-tested
 * (tests/integration/test_admission.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cmocka.h>

#include "admit.h"

static struct admit_key v4(const char *ip)
{
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(1)};
    assert_int_equal(inet_pton(AF_INET, ip, &in.sin_addr), 1);
    return admit_key_of((struct sockaddr *)&in, sizeof in);
}

static struct admit_key v6(const char *ip)
{
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(2)};
    assert_int_equal(inet_pton(AF_INET6, ip, &in6.sin6_addr), 1);
    return admit_key_of((struct sockaddr *)&in6, sizeof in6);
}

static void test_keys(void **state)
{
    (void)state;
    struct admit_key a = v4("192.0.2.7"), b = v6("::ffff:192.0.2.7"),
                     c = v6("2001:db8::7");
    assert_int_equal(a.len, 4);
    assert_int_equal(b.len, 4);
    assert_memory_equal(a.b, b.b, 4);
    assert_int_equal(c.len, 16);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    assert_int_equal(admit_key_of((struct sockaddr *)&un, sizeof un).len, 0);
    /* A length too short for its family is no address. */
    struct sockaddr_in in = {.sin_family = AF_INET};
    assert_int_equal(admit_key_of((struct sockaddr *)&in, 4).len, 0);
}

static void test_counts(void **state)
{
    (void)state;
    struct admit a;
    memset(&a, 0, sizeof a);
    a.reserve_fd = -1;
    struct admit_key x = v4("127.0.0.1"), y = v6("::ffff:127.0.0.1"),
                     z = v4("127.0.0.2"), none = {0};
    for (int i = 0; i < 3; i++)
        assert_int_equal(admit_add(&a, &x), 0);
    assert_int_equal(admit_add(&a, &y), 0); /* the same address */
    assert_int_equal(admit_add(&a, &z), 0);
    assert_int_equal(admit_count(&a, &x), 4);
    assert_int_equal(admit_count(&a, &z), 1);
    assert_int_equal(admit_add(&a, &none), 0);
    assert_int_equal(admit_count(&a, &none), 0);
    admit_del(&a, &none);
    admit_del(&a, &z);
    assert_int_equal(admit_count(&a, &z), 0);
    admit_del(&a, &z); /* not there: no-op */
    for (int i = 0; i < 4; i++)
        admit_del(&a, &x);
    assert_int_equal(admit_count(&a, &x), 0);
    for (size_t i = 0; i < ADMIT_BUCKETS; i++)
        assert_null(a.ips[i]); /* every entry freed at zero */
    admit_free(&a);
}

/* More addresses than buckets: chains keep them apart. */
static void test_many_addresses(void **state)
{
    (void)state;
    struct admit a;
    memset(&a, 0, sizeof a);
    a.reserve_fd = -1;
    char ip[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(ip, sizeof ip, "10.%d.%d.1", i / 256, i % 256);
        struct admit_key k = v4(ip);
        for (int n = 0; n <= i % 3; n++)
            assert_int_equal(admit_add(&a, &k), 0);
    }
    for (int i = 0; i < 2000; i++) {
        snprintf(ip, sizeof ip, "10.%d.%d.1", i / 256, i % 256);
        struct admit_key k = v4(ip);
        assert_int_equal(admit_count(&a, &k), (unsigned)(i % 3 + 1));
    }
    admit_free(&a); /* frees what is left (LeakSanitizer checks) */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_many_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
