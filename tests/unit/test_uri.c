/* Unit tests of uri: the simplified SIP URI of contract §6. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "uri.h"

static void assert_uri(const char *text, const char *user, const char *host,
                       unsigned port)
{
    struct uri u;
    char err[128] = "";
    if (uri_parse(text, &u, err, sizeof err) != 0)
        fail_msg("\"%s\" refused: %s", text, err);
    assert_string_equal(u.user, user);
    assert_string_equal(u.host, host);
    assert_int_equal(u.port, port);
}

static void assert_refused(const char *text, const char *why)
{
    struct uri u;
    char err[128] = "";
    if (uri_parse(text, &u, err, sizeof err) != -1)
        fail_msg("\"%s\" accepted", text);
    assert_string_equal(err, why);
    /* Nothing half-parsed is left behind. */
    assert_string_equal(u.user, "");
    assert_string_equal(u.host, "");
    assert_int_equal(u.port, 0);
}

static void test_contract_examples(void **state)
{
    (void)state;
    assert_uri("sip:13898877785@192.168.5.10:5060", "13898877785",
               "192.168.5.10", 5060);
    assert_uri("13898877785@192.168.5.10", "13898877785", "192.168.5.10",
               5060);
    assert_uri("192.168.5.10:5060", "", "192.168.5.10", 5060);
}

/* Whether the text named a port: "user@trunk1" may name a gateway by
 * its section name, "user@trunk1:5060" names an address. */
static void test_has_port(void **state)
{
    (void)state;
    struct uri u;
    assert_int_equal(uri_parse("13800000000@trunk1", &u, NULL, 0), 0);
    assert_false(u.has_port);
    assert_int_equal(u.port, 5060);
    assert_int_equal(uri_parse("13800000000@trunk1:5060", &u, NULL, 0), 0);
    assert_true(u.has_port);
    assert_int_equal(uri_parse("1001@[2001:db8::1]", &u, NULL, 0), 0);
    assert_false(u.has_port);
    assert_int_equal(uri_parse("1001@[2001:db8::1]:5070", &u, NULL, 0), 0);
    assert_true(u.has_port);
}

static void test_accepted(void **state)
{
    (void)state;
    assert_uri("SIP:1001@gw.example.com:5080", "1001", "gw.example.com", 5080);
    assert_uri("Sip:1001@GW-1", "1001", "GW-1", 5060);
    assert_uri("gw", "", "gw", 5060);
    assert_uri("+8613800000000@10.0.0.5:1", "+8613800000000", "10.0.0.5", 1);
    assert_uri("1001@10.0.0.5:65535", "1001", "10.0.0.5", 65535);
    assert_uri("a%20b@h", "a%20b", "h", 5060);
    assert_uri("a-_.!~*'()&=+$,?/z@h", "a-_.!~*'()&=+$,?/z", "h", 5060);
    assert_uri("1001@a1.b-2.example", "1001", "a1.b-2.example", 5060);
}

static void test_ipv6(void **state)
{
    (void)state;
    assert_uri("sip:1001@[2001:db8::1]:5070", "1001", "2001:db8::1", 5070);
    assert_uri("[::1]", "", "::1", 5060);
    assert_uri("1@[::ffff:10.0.0.1]", "1", "::ffff:10.0.0.1", 5060);
    assert_refused("1001@[2001:db8::1", "unterminated IPv6 reference");
    assert_refused("1001@[::1]x", "invalid character after IPv6 reference");
    assert_refused("1001@[::1]:", "invalid port");
    assert_refused("1001@[zz::1]", "invalid IPv6 address");
    assert_refused("1001@[]", "empty host");
    assert_refused("1001@[fe80::1%eth0]", "invalid IPv6 address");
    assert_refused("1001@2001:db8::1", "invalid host");
}

static void test_refused_structure(void **state)
{
    (void)state;
    assert_refused("", "empty host");
    assert_refused("sip:", "empty host");
    assert_refused("@host", "empty user");
    assert_refused("1001@", "empty host");
    assert_refused("1001@:5060", "empty host");
    assert_refused("a@@host", "more than one '@'");
    assert_refused("a@b@host", "more than one '@'");
    assert_refused("sips:1001@host", "only sip: URIs are supported");
    assert_refused("SIPS:1001@host", "only sip: URIs are supported");
    assert_refused("tel:+1001", "only sip: URIs are supported");
    assert_refused("sip:sip:1001@host", "invalid character in user");
}

static void test_refused_characters(void **state)
{
    (void)state;
    assert_refused("10 01@host", "invalid character in user");
    assert_refused(" 1001@host", "invalid character in user");
    assert_refused("1001@host name", "invalid host");
    assert_refused("1001@host ", "invalid host");
    assert_refused("1001@host\r\nX-Evil: 1", "invalid host");
    assert_refused("1001\r\n@host", "invalid character in user");
    assert_refused("1001\n@host", "invalid character in user");
    assert_refused("<sip:1001@host>", "invalid character in user");
    assert_refused("1001@<host>", "invalid host");
    assert_refused("\"1001\"@host", "invalid character in user");
    assert_refused("1001@\"host\"", "invalid host");
    assert_refused("1001@host;transport=tcp", "invalid host");
    assert_refused("1001@host:5060;transport=tcp", "invalid port");
    assert_refused("1001;x=y@host", "invalid character in user");
    assert_refused("a%2@h", "invalid character in user");
    assert_refused("a%zz@h", "invalid character in user");
    assert_refused("a%@h", "invalid character in user");
    assert_refused("a:b@h", "invalid character in user");
    assert_refused("a\tb@h", "invalid character in user");
    assert_refused("1001@host_x", "invalid host");
}

static void test_refused_hosts(void **state)
{
    (void)state;
    assert_refused("1001@-host", "invalid host");
    assert_refused("1001@host-", "invalid host");
    assert_refused("1001@host..com", "invalid host");
    assert_refused("1001@host.", "invalid host");
    assert_refused("1001@.host", "invalid host");
    assert_refused("1001@1001", "invalid host");
    assert_refused("1001", "invalid host");
    assert_refused("1001@256.1.1.1", "invalid host");
    assert_refused("1001@1.2.3", "invalid host");
    assert_refused("1001@a.1", "invalid host");
}

static void test_refused_ports(void **state)
{
    (void)state;
    assert_refused("1001@host:0", "invalid port");
    assert_refused("1001@host:65536", "invalid port");
    assert_refused("1001@host:99999", "invalid port");
    assert_refused("1001@host:123456", "invalid port");
    assert_refused("1001@host:", "invalid port");
    assert_refused("1001@host:abc", "invalid port");
    assert_refused("1001@host:50a", "invalid port");
    assert_refused("1001@host:+50", "invalid port");
    assert_refused("1001@host:-1", "invalid port");
    assert_refused("1001@host: 50", "invalid port");
    assert_refused("1001@host:5060:1", "invalid port");
}

static void test_lengths(void **state)
{
    (void)state;
    char text[600];
    memset(text, '1', 127);
    strcpy(text + 127, "@h");
    struct uri u;
    char err[64];
    assert_int_equal(uri_parse(text, &u, err, sizeof err), 0);
    assert_int_equal(strlen(u.user), 127);

    memset(text, '1', 128);
    strcpy(text + 128, "@h");
    assert_refused(text, "user too long");

    /* The longest host that fits: four labels of 63 and three dots. */
    char host[300];
    memset(host, 'a', 255);
    host[63] = host[127] = host[191] = '.';
    host[255] = '\0';
    snprintf(text, sizeof text, "1@%s", host);
    assert_int_equal(uri_parse(text, &u, err, sizeof err), 0);
    assert_int_equal(strlen(u.host), 255);

    snprintf(text, sizeof text, "1@%sa", host);
    assert_refused(text, "host too long");

    memset(host, 'a', 64);
    host[64] = '\0';
    snprintf(text, sizeof text, "1@%s", host);
    assert_refused(text, "invalid host");
}

static void test_err_optional(void **state)
{
    (void)state;
    struct uri u;
    assert_int_equal(uri_parse("1@h:0", &u, NULL, 0), -1);
    char err[8];
    assert_int_equal(uri_parse("1@h;x", &u, err, sizeof err), -1);
    assert_string_equal(err, "invalid");  /* truncated, terminated */
}

static void test_user_valid(void **state)
{
    (void)state;
    assert_int_equal(uri_user_valid("1001"), 1);
    assert_int_equal(uri_user_valid("+8613800000000"), 1);
    assert_int_equal(uri_user_valid("%41b"), 1);
    assert_int_equal(uri_user_valid(""), 1);
    assert_int_equal(uri_user_valid("10 01"), 0);
    assert_int_equal(uri_user_valid("a;b"), 0);
    assert_int_equal(uri_user_valid("a\"b"), 0);
    assert_int_equal(uri_user_valid("<a>"), 0);
    assert_int_equal(uri_user_valid("a\r\n"), 0);
    assert_int_equal(uri_user_valid("a@b"), 0);
    assert_int_equal(uri_user_valid("%4"), 0);
    assert_int_equal(uri_user_valid("\xe4\xb8\xad"), 0);
}

static void test_format(void **state)
{
    (void)state;
    char buf[64];
    struct uri u = {"13800000000", "10.0.0.5", 5060, true};
    assert_int_equal(uri_format(&u, buf, sizeof buf), 25);
    assert_string_equal(buf, "13800000000@10.0.0.5:5060");

    struct uri v6 = {"1001", "2001:db8::1", 5070, true};
    uri_format(&v6, buf, sizeof buf);
    assert_string_equal(buf, "1001@[2001:db8::1]:5070");

    uri_hostport(buf, sizeof buf, "2001:db8::1", 5070);
    assert_string_equal(buf, "[2001:db8::1]:5070");
    uri_hostport(buf, sizeof buf, "127.0.0.1", 9);
    assert_string_equal(buf, "127.0.0.1:9");

    struct uri nouser = {"", "gw", 5060, true};
    uri_format(&nouser, buf, sizeof buf);
    assert_string_equal(buf, "gw:5060");

    struct uri nohost = {"1001", "", 0, false};
    uri_format(&nohost, buf, sizeof buf);
    assert_string_equal(buf, "1001");

    char small[8];
    assert_int_equal(uri_format(&u, small, sizeof small), 25);
    assert_string_equal(small, "1380000");

    /* Round trip. */
    struct uri back;
    uri_format(&v6, buf, sizeof buf);
    assert_int_equal(uri_parse(buf, &back, NULL, 0), 0);
    assert_memory_equal(&back, &v6, sizeof back);
}

/* uri_host: an IPv6 literal in brackets, anything else as it is, cut to
 * the buffer like snprintf. */
static void test_host(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(uri_host(buf, sizeof buf, "2001:db8::1"), 13);
    assert_string_equal(buf, "[2001:db8::1]");
    assert_int_equal(uri_host(buf, sizeof buf, "::1"), 5);
    assert_string_equal(buf, "[::1]");
    assert_int_equal(uri_host(buf, sizeof buf, "127.0.0.1"), 9);
    assert_string_equal(buf, "127.0.0.1");
    assert_int_equal(uri_host(buf, sizeof buf, "trunk.example.com"), 17);
    assert_string_equal(buf, "trunk.example.com");
    assert_int_equal(uri_host(buf, sizeof buf, ""), 0);
    assert_string_equal(buf, "");
    char small[6];
    assert_int_equal(uri_host(small, sizeof small, "2001:db8::1"), 13);
    assert_string_equal(small, "[2001");
}

/* Found by tests/fuzz/fuzz_uri: a host-only URI whose host is named like
 * a scheme was formatted as "sip:5060", which reads back as host "5060"
 * (refused), and "tel:5060" as a tel: URI. */
static void test_format_scheme_host(void **state)
{
    (void)state;
    static const char *const inputs[] = {"sip", "SIP:sip", "sip:sips:7070", "Tel",
                                         "sip:tel:1"};
    static const char *const formatted[] = {"sip:sip:5060", "sip:sip:5060",
                                            "sip:sips:7070", "sip:Tel:5060",
                                            "sip:tel:1"};
    for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++) {
        struct uri u, back;
        char buf[64];
        assert_int_equal(uri_parse(inputs[i], &u, NULL, 0), 0);
        assert_string_equal(u.user, "");
        uri_format(&u, buf, sizeof buf);
        assert_string_equal(buf, formatted[i]);
        assert_int_equal(uri_parse(buf, &back, NULL, 0), 0);
        /* The same URI; the port is written out now. */
        assert_string_equal(back.user, u.user);
        assert_string_equal(back.host, u.host);
        assert_int_equal(back.port, u.port);
        assert_true(back.has_port);
    }
    /* With a user there is no ambiguity and no prefix. */
    struct uri u = {"1001", "sip", 5060, true};
    char buf[64];
    uri_format(&u, buf, sizeof buf);
    assert_string_equal(buf, "1001@sip:5060");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_contract_examples),
        cmocka_unit_test(test_has_port),
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_refused_structure),
        cmocka_unit_test(test_refused_characters),
        cmocka_unit_test(test_refused_hosts),
        cmocka_unit_test(test_refused_ports),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_err_optional),
        cmocka_unit_test(test_user_valid),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_host),
        cmocka_unit_test(test_format_scheme_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
