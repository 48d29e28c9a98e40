/* Unit tests of dtmf_info: the key of a SIP INFO body, in both content
 * types, as phones and gateways write it, and hostile bodies. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "dtmf_info.h"

static const char RELAY[] = "application/dtmf-relay";
static const char DTMF[] = "application/dtmf";

static char key_of(const char *type, const char *body)
{
    char key = '?';
    const char *why = NULL;
    enum dtmf_info_result r = dtmf_info_parse(type, body, strlen(body), &key,
                                              &why);
    if (r != DTMF_INFO_KEY)
        fail_msg("\"%s\" refused (%d): %s", body, r, why);
    return key;
}

static const char *refused(const char *type, const char *body, size_t len)
{
    char key = '?';
    const char *why = NULL;
    assert_int_equal(dtmf_info_parse(type, body, len, &key, &why),
                     DTMF_INFO_BAD);
    assert_int_equal(key, '?');
    assert_non_null(why);
    return why;
}

static void test_relay(void **state)
{
    (void)state;
    /* baresip's and Cisco's forms. */
    assert_int_equal(key_of(RELAY, "Signal=1\r\nDuration=250\r\n"), '1');
    assert_int_equal(key_of(RELAY, "Signal= 5\r\nDuration= 160\r\n"), '5');
    assert_int_equal(key_of(RELAY, "Signal=#\r\nDuration=160\r\n"), '#');
    assert_int_equal(key_of(RELAY, "Signal=*"), '*');
    /* Case and white space, LF only, other lines in any order. */
    assert_int_equal(key_of(RELAY, "duration=100\nSIGNAL = d \n"), 'D');
    assert_int_equal(key_of(RELAY, "  signal\t=\tA\r\n"), 'A');
    assert_int_equal(key_of(RELAY, "garbage\r\nSignal=0\r\n\r\n"), '0');
    /* Event codes: 10 and 11 are * and #, 12-15 A-D. */
    assert_int_equal(key_of(RELAY, "Signal=10\r\n"), '*');
    assert_int_equal(key_of(RELAY, "Signal=11\r\n"), '#');
    assert_int_equal(key_of(RELAY, "Signal=15\r\n"), 'D');
    assert_int_equal(key_of(RELAY, "Signal=07\r\n"), '7');
    /* Content-Type parameters and case. */
    assert_int_equal(key_of("Application/DTMF-Relay; charset=x",
                            "Signal=9"), '9');
    assert_int_equal(key_of(" application/dtmf-relay ", "Signal=9"), '9');
}

static void test_dtmf(void **state)
{
    (void)state;
    assert_int_equal(key_of(DTMF, "1"), '1');
    assert_int_equal(key_of(DTMF, "1\r\n"), '1');
    assert_int_equal(key_of(DTMF, "#"), '#');
    assert_int_equal(key_of(DTMF, "11"), '#');
    assert_int_equal(key_of(DTMF, "10"), '*');
    assert_int_equal(key_of(DTMF, "b"), 'B');
    assert_int_equal(key_of(DTMF, "12 "), 'A');
    assert_int_equal(key_of("APPLICATION/DTMF;x=y", " 0 "), '0');
}

static void test_refused(void **state)
{
    (void)state;
    assert_string_equal(refused(RELAY, "", 0), "no Signal");
    assert_string_equal(refused(RELAY, NULL, 0), "no Signal");
    assert_string_equal(refused(RELAY, "Duration=160\r\n", 14), "no Signal");
    assert_string_equal(refused(RELAY, "Signal=\r\n", 9), "no key");
    assert_string_equal(refused(RELAY, "Signal=1\r\nSignal=2", 18),
                        "more than one Signal");
    assert_string_equal(refused(RELAY, "Signal=!", 8), "flash is not a key");
    assert_string_equal(refused(RELAY, "Signal=16", 9), "flash is not a key");
    assert_string_equal(refused(RELAY, "Signal=17", 9), "event code above 15");
    assert_string_equal(refused(RELAY, "Signal=12345", 12), "not a key");
    assert_string_equal(refused(RELAY, "Signal=1 2", 10), "not a key");
    assert_string_equal(refused(RELAY, "Signal=E", 8), "not a key");
    assert_string_equal(refused(RELAY, "Signal=-1", 9), "not a key");
    assert_string_equal(refused(DTMF, "", 0), "no key");
    assert_string_equal(refused(DTMF, NULL, 0), "no key");
    assert_string_equal(refused(DTMF, "!", 1), "flash is not a key");
    assert_string_equal(refused(DTMF, "1#", 2), "not a key");
}

static void test_hostile(void **state)
{
    (void)state;
    /* A NUL anywhere, even after a good key. */
    assert_string_equal(refused(RELAY, "Signal=1\0", 9), "NUL in body");
    assert_string_equal(refused(DTMF, "\0" "1", 2), "NUL in body");
    assert_string_equal(refused(DTMF, "1\0", 2), "NUL in body");
    /* Length is the caller's: nothing past len is read (no terminator
     * here), and len alone bounds the body. */
    char *b = malloc(8);
    memcpy(b, "Signal=3", 8);
    char key = 0;
    const char *why;
    assert_int_equal(dtmf_info_parse(RELAY, b, 8, &key, &why),
                     DTMF_INFO_KEY);
    assert_int_equal(key, '3');
    assert_int_equal(dtmf_info_parse(RELAY, b, 7, &key, &why),
                     DTMF_INFO_BAD);
    free(b);

    /* Bodies past the limit, even with a good key first. */
    char big[DTMF_INFO_MAX_BODY + 2];
    memset(big, ' ', sizeof big);
    memcpy(big, "Signal=4\r\n", 10);
    assert_int_equal(dtmf_info_parse(RELAY, big, DTMF_INFO_MAX_BODY, &key,
                                     &why), DTMF_INFO_KEY);
    assert_string_equal(refused(RELAY, big, DTMF_INFO_MAX_BODY + 1),
                        "body too long");
    /* Many lines of nothing. */
    memset(big, '\n', sizeof big);
    assert_string_equal(refused(RELAY, big, DTMF_INFO_MAX_BODY), "no Signal");
    memset(big, '=', sizeof big);
    assert_string_equal(refused(RELAY, big, DTMF_INFO_MAX_BODY), "no Signal");
}

static void test_not_dtmf(void **state)
{
    (void)state;
    char key = '?';
    const char *why;
    assert_int_equal(dtmf_info_parse(NULL, "Signal=1", 8, &key, &why),
                     DTMF_INFO_NOT_DTMF);
    assert_int_equal(dtmf_info_parse("text/plain", "1", 1, &key, &why),
                     DTMF_INFO_NOT_DTMF);
    assert_int_equal(dtmf_info_parse("application/dtmf-relayx", "1", 1, &key,
                                     &why), DTMF_INFO_NOT_DTMF);
    assert_int_equal(dtmf_info_parse("application/dtm", "1", 1, &key, &why),
                     DTMF_INFO_NOT_DTMF);
    assert_int_equal(dtmf_info_parse("", "1", 1, &key, &why),
                     DTMF_INFO_NOT_DTMF);
    char type[DTMF_INFO_MAX_TYPE + 40];
    memset(type, ' ', sizeof type);
    memcpy(type + sizeof type - 23, "application/dtmf-relay", 23);
    assert_int_equal(dtmf_info_parse(type, "Signal=1", 8, &key, &why),
                     DTMF_INFO_NOT_DTMF);
    assert_string_equal(why, "content type too long");
    assert_int_equal(key, '?');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relay),
        cmocka_unit_test(test_dtmf),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_not_dtmf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
