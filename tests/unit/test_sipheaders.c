/* Unit tests of sipheaders: a gateway's `headers` list parsed (split at
 * ';' only before a new "token:"), refused (owned, compact, bad names,
 * control characters) and written as SIPTAG_HEADER_STR's lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sipheaders.h"

static void test_parse_and_format(void **state)
{
    (void)state;
    struct sipheaders hs;
    char err[256], buf[1024];
    assert_int_equal(sipheaders_parse("X-Account: 42; X-Tenant: a", &hs, err,
                                      sizeof err), 0);
    assert_int_equal(hs.n, 2);
    assert_string_equal(hs.h[0].name, "X-Account");
    assert_string_equal(hs.h[0].value, "42");
    assert_string_equal(hs.h[1].name, "X-Tenant");
    assert_string_equal(hs.h[1].value, "a");
    assert_int_equal(sipheaders_format(&hs, buf, sizeof buf), 26);
    assert_string_equal(buf, "X-Account: 42\r\nX-Tenant: a");
    /* ';' inside a value: parameters, not a new header. */
    assert_int_equal(sipheaders_parse(" X-Uri:<sip:a@b;user=phone>;lr ;"
                                      "X-N : v=1;q=2 ", &hs, err, sizeof err),
                     0);
    assert_int_equal(hs.n, 2);
    assert_string_equal(hs.h[0].value, "<sip:a@b;user=phone>;lr");
    assert_string_equal(hs.h[1].name, "X-N");
    assert_string_equal(hs.h[1].value, "v=1;q=2");
    /* Empty list; a truncated format still says what it needs. */
    assert_int_equal(sipheaders_parse("  ", &hs, err, sizeof err), 0);
    assert_int_equal(hs.n, 0);
    assert_int_equal(sipheaders_format(&hs, buf, sizeof buf), 0);
    assert_string_equal(buf, "");
    sipheaders_parse("X-A: 12345", &hs, err, sizeof err);
    char small[5];
    assert_int_equal(sipheaders_format(&hs, small, sizeof small), 10);
    assert_string_equal(small, "X-A:");
}

static void test_refused(void **state)
{
    (void)state;
    static const struct {
        const char *text, *why;
    } cases[] = {
        {"Via: x", "'Via' is a header ctid writes itself"},
        {"X-A: 1; call-id: 2", "'call-id' is a header ctid writes itself"},
        {"Route: <sip:p;lr>", "'Route' is a header ctid writes itself"},
        {"Privacy: none", "'Privacy' is a header ctid writes itself"},
        {"Contact: <sip:x>", "'Contact' is a header ctid writes itself"},
        {"v: x", "'v' is a compact header form; write the full name"},
        {"X-A", "expected 'Name: value' at 'X-A'"},
        {": 1", "expected 'Name: value' at ': 1'"},
        {"X(A): 1", "expected 'Name: value' at 'X(A): 1'"},
        {"X-A: ", "'X-A' has an empty value"},
        {"X-A: 1\r\nVia: 2", "the value of 'X-A' has a control character "
                             "(0x0d)"},
        {"X-A: 1\nVia: 2", "the value of 'X-A' has a control character "
                           "(0x0a)"},
        {"X-A: \x7f", "the value of 'X-A' has a control character (0x7f)"},
        {"X-A: 1; x-a: 2", "'x-a' is listed twice"},
    };
    struct sipheaders hs;
    char err[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(sipheaders_parse(cases[i].text, &hs, err,
                                          sizeof err), -1);
        assert_string_equal(err, cases[i].why);
    }
    char many[2048] = "";
    for (int i = 0; i <= SIPHEADERS_MAX; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many),
                 "X-H%d: %d;", i, i);
    assert_int_equal(sipheaders_parse(many, &hs, err, sizeof err), -1);
    assert_string_equal(err, "more than 16 headers");
    assert_true(sipheaders_owned("P-ASSERTED-IDENTITY"));
    assert_true(sipheaders_owned("max-forwards"));
    assert_false(sipheaders_owned("X-Account"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_format),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
