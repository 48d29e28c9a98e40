/* Unit tests of bus.c's pure parts: splitting a journal line into method
 * and params, where publication resumes (retention losses), the redis
 * address parser, and the Lua script's guards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bus.h"
#include "conf.h"
#include "rpc.h"

static void test_split_event(void **state)
{
    (void)state;
    const char line[] = "{\"jsonrpc\":\"2.0\",\"method\":\"ext.notify_call."
                        "on_released\",\"params\":{\"res_id\":\"r1\","
                        "\"error\":null,\"seq\":7}}\n";
    char *m, *p;
    assert_int_equal(bus_split_event(line, strlen(line), &m, &p), 0);
    assert_string_equal(m, "ext.notify_call.on_released");
    assert_string_equal(p, "{\"res_id\":\"r1\",\"error\":null,\"seq\":7}");
    free(m);
    free(p);
    const char *bad[] = {"not json", "{\"method\":\"x\"}",
                         "{\"params\":{}}", "{\"method\":1,\"params\":{}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(bus_split_event(bad[i], strlen(bad[i]), &m, &p), -1);
        assert_null(m);
        assert_null(p);
    }
}

/* The journal's lines as rpc_event_line writes them take the fast cut;
 * it must give exactly what the JSON parse gives, whatever params hold. */
static void test_split_event_fast_equals_parse(void **state)
{
    (void)state;
    const char *params[] = {
        "{}",
        "{\"res_id\":\"r1\",\"error\":null,\"seq\":7}",
        "{\"user_data\":\"a \\\"quote\\\", a }, a \\\\ and \\u0001\"}",
        "{\"user_data\":\"\u4e2d\u6587 \\\",\\\"params\\\":{\"}",
        "{\"user_data\":{\"nested\":[1,2,{\"x\":\"}\"}]},\"n\":-1.5e3}",
    };
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        json_t *pj = json_loads(params[i], 0, NULL);
        assert_non_null(pj);
        size_t len;
        char *line = rpc_event_line("ext.notify_call.on_released", pj, &len);
        assert_non_null(line);
        char *m, *p;
        assert_int_equal(bus_split_event(line, len, &m, &p), 0);
        assert_string_equal(m, "ext.notify_call.on_released");
        json_t *back = json_loads(p, 0, NULL);
        json_t *want = json_loads(params[i], 0, NULL);
        assert_true(json_equal(back, want));
        char *dumped = json_dumps(want, JSON_COMPACT);
        assert_string_equal(p, dumped); /* byte for byte, as the parse */
        free(dumped);
        json_decref(back);
        json_decref(want);
        free(m);
        free(p);
        free(line);
    }
    /* other shapes still go through the parse */
    const char other[] = "{\"method\":\"m\",\"jsonrpc\":\"2.0\",\"params\":{\"a\":1}}";
    char *m, *p;
    assert_int_equal(bus_split_event(other, strlen(other), &m, &p), 0);
    assert_string_equal(m, "m");
    assert_string_equal(p, "{\"a\":1}");
    free(m);
    free(p);
    const char torn[] = "{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":{\"a\":";
    assert_int_equal(bus_split_event(torn, strlen(torn), &m, &p), -1);
}

static void test_resume_after(void **state)
{
    (void)state;
    uint64_t lost;
    /* caught up or behind within what the journal holds */
    assert_int_equal(bus_resume_after(10, 5, &lost), 10);
    assert_int_equal(lost, 0);
    assert_int_equal(bus_resume_after(4, 5, &lost), 4);
    assert_int_equal(lost, 0);
    /* nothing published, journal from 1 */
    assert_int_equal(bus_resume_after(0, 1, &lost), 0);
    assert_int_equal(lost, 0);
    /* retention deleted seqs 4..99 unpublished */
    assert_int_equal(bus_resume_after(3, 100, &lost), 99);
    assert_int_equal(lost, 96);
    /* empty journal */
    assert_int_equal(bus_resume_after(3, 0, &lost), 3);
    assert_int_equal(lost, 0);
}

static void test_redis_address(void **state)
{
    (void)state;
    char host[256];
    uint16_t port;
    bool is_unix;
    assert_int_equal(conf_redis_parse("127.0.0.1:6379", host, sizeof host,
                                      &port, &is_unix), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 6379);
    assert_false(is_unix);
    assert_int_equal(conf_redis_parse("[::1]:7000", host, sizeof host, &port,
                                      &is_unix), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 7000);
    assert_int_equal(conf_redis_parse("localhost:1", host, sizeof host, &port,
                                      &is_unix), 0);
    assert_int_equal(conf_redis_parse("unix:/run/redis/r.sock", host,
                                      sizeof host, &port, &is_unix), 0);
    assert_string_equal(host, "/run/redis/r.sock");
    assert_true(is_unix);
    const char *bad[] = {"redis.example:6379", "127.0.0.1", "127.0.0.1:0",
                         "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:x",
                         ":6379", "unix:rel", "unix:", "[::1:6379",
                         "::1:6379"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(conf_redis_parse(bad[i], host, sizeof host, &port,
                                          &is_unix), -1);
}

/* The script's guards, as text: a repeat is refused before XADD, and so
 * is a command whose prev is not the stored seq. */
static void test_script(void **state)
{
    (void)state;
    const char *s = BUS_PUBLISH_LUA;
    const char *dup = strstr(s, "if seq <= last then return last end");
    const char *gap = strstr(s, "if last ~= tonumber(ARGV[6]) then return -1");
    const char *xadd = strstr(s, "'XADD', KEYS[1], 'MAXLEN', '~'");
    const char *hset = strstr(s, "'HSET', KEYS[2], ARGV[1], ARGV[2]");
    assert_non_null(dup);
    assert_non_null(gap);
    assert_non_null(xadd);
    assert_non_null(hset);
    assert_true(dup < xadd && gap < xadd && xadd < hset);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_event),
        cmocka_unit_test(test_split_event_fast_equals_parse),
        cmocka_unit_test(test_resume_after),
        cmocka_unit_test(test_redis_address),
        cmocka_unit_test(test_script),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
