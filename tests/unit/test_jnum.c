/* Unit tests of jnum: integers and number text as the original's clients
 * send them (issue 12). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "jnum.h"

static json_t *json(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (v == NULL)
        fail_msg("bad test JSON %s: %s", text, jerr.text);
    return v;
}

static void test_int(void **state)
{
    (void)state;
    const struct {
        const char *text;
        enum jnum_result r;
        json_int_t want;
    } cases[] = {
        {"5", JNUM_OK, 5}, {"-5", JNUM_OK, -5}, {"5.0", JNUM_OK, 5},
        {"-0.0", JNUM_OK, 0}, {"1e2", JNUM_OK, 100},
        {"\"5\"", JNUM_OK, 5}, {"\" +5 \"", JNUM_OK, 5},
        {"\"-5\"", JNUM_OK, -5}, {"\"\\r\\n\\t\\f\\u000b5\"", JNUM_OK, 5},
        {"\"0005\"", JNUM_OK, 5},
        {"\"9223372036854775807\"", JNUM_OK, INT64_MAX},
        {"\"-9223372036854775808\"", JNUM_OK, INT64_MIN},
        {"\"9223372036854775808\"", JNUM_RANGE, 0},
        {"\"-9223372036854775809\"", JNUM_RANGE, 0},
        {"\"99999999999999999999999\"", JNUM_RANGE, 0},
        {"\"99999999999999999999999x\"", JNUM_NOT_INT, 0},
        {"9223372036854775808.0", JNUM_RANGE, 0},
        {"-9223372036854775808.0", JNUM_OK, INT64_MIN},
        {"1e19", JNUM_RANGE, 0},
        {"\"5.0\"", JNUM_NOT_INT, 0}, {"\"5e0\"", JNUM_NOT_INT, 0},
        {"\"\"", JNUM_NOT_INT, 0}, {"\" \"", JNUM_NOT_INT, 0},
        {"\"- 5\"", JNUM_NOT_INT, 0}, {"\"5_0\"", JNUM_NOT_INT, 0},
        {"5.5", JNUM_NOT_INT, 0}, {"true", JNUM_NOT_INT, 0},
        {"null", JNUM_NOT_INT, 0}, {"[5]", JNUM_NOT_INT, 0},
        {"\"\\u00a05\"", JNUM_NOT_INT, 0}, {"\"\\uff15\"", JNUM_NOT_INT, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *v = json(cases[i].text);
        json_int_t got = 0;
        enum jnum_result r = jnum_int(v, &got);
        if (r != cases[i].r || (r == JNUM_OK && got != cases[i].want))
            fail_msg("%s: got %d %" JSON_INTEGER_FORMAT, cases[i].text, r,
                     got);
        json_decref(v);
    }
    json_int_t n;
    assert_int_equal(jnum_int(NULL, &n), JNUM_NOT_INT);
}

static void test_text(void **state)
{
    (void)state;
    const struct {
        const char *json, *text;
    } cases[] = {
        {"1086.3", "1086.3"}, {"1086.30", "1086.3"}, {"10.00", "10"},
        {"0.1", "0.1"}, {"0.05", "0.05"}, {"-2.5", "-2.5"}, {"0.0", "0"},
        {"-0.0", "0"}, {"1e3", "1000"}, {"1e-5", "0.00001"},
        {"123.456", "123.456"}, {"0.30000000000000004",
                                 "0.30000000000000004"},
        {"1e16", "10000000000000000"}, {"999999999999.99", "999999999999.99"},
        {"25", "25"}, {"-25", "-25"}, {"0", "0"},
        {"13800000000", "13800000000"},
        {"9223372036854775807", "9223372036854775807"},
    };
    char buf[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *v = json(cases[i].json);
        if (jnum_text(v, buf, sizeof buf) != 0)
            fail_msg("%s refused", cases[i].json);
        if (strcmp(buf, cases[i].text) != 0)
            fail_msg("%s: got %s, expected %s", cases[i].json, buf,
                     cases[i].text);
        json_decref(v);
    }
    const char *too_long[] = {"1e100", "1.7976931348623157e308", "5e-324",
                              "-1e-70"};
    for (size_t i = 0; i < sizeof too_long / sizeof too_long[0]; i++) {
        json_t *v = json(too_long[i]);
        assert_int_equal(jnum_text(v, buf, sizeof buf), -1);
        json_decref(v);
    }
    json_t *s = json_string("5");
    assert_int_equal(jnum_text(s, buf, sizeof buf), -1);
    json_decref(s);
    json_t *v = json("12345");
    assert_int_equal(jnum_text(v, buf, 5), -1);
    assert_int_equal(jnum_text(v, buf, 6), 0);
    assert_string_equal(buf, "12345");
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int),
        cmocka_unit_test(test_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
