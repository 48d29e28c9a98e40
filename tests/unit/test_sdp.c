/* Unit tests of sdp.c: what ctid accepts in a peer's SDP (issue 10: ports
 * out of range, multicast, broadcast, unspecified addresses, hold) and
 * the SDP it writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "sdp.h"

/* An SDP with this c= address, m= port, formats and direction line. */
static const char *mk(const char *c, const char *port, const char *fmts,
                      const char *dir)
{
    static char buf[512];
    const char *fam = strchr(c, ':') ? "IP6" : "IP4";
    snprintf(buf, sizeof buf,
             "v=0\r\no=peer 1 1 IN %s %s\r\ns=-\r\nc=IN %s %s\r\nt=0 0\r\n"
             "m=audio %s RTP/AVP %s\r\n%s",
             fam, c, fam, c, port, fmts, dir);
    return buf;
}

static enum sdp_result ex(const char *sdp, int want, int family, bool hold,
                          struct sdp_peer *p, char *why)
{
    return sdp_examine(sdp, strlen(sdp), want, family, hold, p, why, 160);
}

static void test_good_answer(void **state)
{
    (void)state;
    struct sdp_peer p;
    char why[160];
    assert_int_equal(ex(mk("10.1.2.3", "40000", "0 8", ""), -1, AF_INET,
                        false, &p, why),
                     SDP_OK);
    assert_int_equal(p.payload_type, 0); /* the answerer's first */
    assert_int_equal(p.addr_len, sizeof(struct sockaddr_in));
    const struct sockaddr_in *a = (const void *)&p.addr;
    assert_int_equal(ntohs(a->sin_port), 40000);
    assert_int_equal(ntohl(a->sin_addr.s_addr), 0x0a010203);
    assert_int_equal(p.dir, SDP_SENDRECV);
    assert_false(p.paused);
    /* want_pt picks that one even when listed second */
    assert_int_equal(ex(mk("10.1.2.3", "40000", "0 8", ""), 8, AF_INET,
                        false, &p, why),
                     SDP_OK);
    assert_int_equal(p.payload_type, 8);
}

/* RFC 3605: a=rtcp names the callee's RTCP port; 0 means RTP + 1. */
static void test_rtcp_attr(void **state)
{
    (void)state;
    struct sdp_peer p;
    char why[160];
    assert_int_equal(ex(mk("10.1.2.3", "40000", "8", ""), -1, AF_INET,
                        false, &p, why),
                     SDP_OK);
    assert_int_equal(p.rtcp_port, 0);
    assert_int_equal(ex(mk("10.1.2.3", "40000", "8", "a=rtcp:40009\r\n"), -1,
                        AF_INET, false, &p, why),
                     SDP_OK);
    assert_int_equal(p.rtcp_port, 40009);
    /* another address than c= is not followed: RTP + 1 */
    assert_int_equal(ex(mk("10.1.2.3", "40000", "8",
                           "a=rtcp:40009 IN IP4 10.9.9.9\r\n"),
                        -1, AF_INET, false, &p, why),
                     SDP_OK);
    assert_int_equal(p.rtcp_port, 0);
}

static void test_bad_ports(void **state)
{
    (void)state;
    struct sdp_peer p;
    char why[160];
    assert_int_equal(ex(mk("10.1.2.3", "70000", "8", ""), -1, AF_INET, false,
                        &p, why),
                     SDP_REFUSED);
    assert_non_null(strstr(why, "above 65535"));
    assert_int_equal(p.payload_type, -1);
    assert_int_equal(ex(mk("10.1.2.3", "65536", "8", ""), -1, AF_INET, false,
                        &p, why),
                     SDP_REFUSED);
    assert_int_equal(ex(mk("10.1.2.3", "0", "8", ""), -1, AF_INET, true, &p,
                        why),
                     SDP_REFUSED);
    assert_non_null(strstr(why, "port 0"));
    assert_int_equal(ex(mk("10.1.2.3", "65535", "8", ""), -1, AF_INET, false,
                        &p, why),
                     SDP_OK);
}

static void test_bad_addresses(void **state)
{
    (void)state;
    struct sdp_peer p;
    char why[160];
    static const struct {
        const char *c;
        const char *reason;
    } cases[] = {
        {"224.0.0.1", "multicast"},       {"239.255.255.250", "multicast"},
        {"255.255.255.255", "broadcast"}, {"240.0.0.1", "reserved"},
        {"0.0.0.0", "unspecified"},       {"ff02::1", "multicast"},
        {"::", "unspecified"},            {"example.com", "numeric"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fam = strchr(cases[i].c, ':') ? AF_INET6 : AF_INET;
        assert_int_equal(ex(mk(cases[i].c, "4000", "8", ""), -1, fam, false,
                            &p, why),
                         SDP_REFUSED);
        assert_non_null(strstr(why, cases[i].reason));
    }
    /* an IPv6 peer for an IPv4 media socket (and back) */
    assert_int_equal(ex(mk("2001:db8::1", "4000", "8", ""), -1, AF_INET,
                        false, &p, why),
                     SDP_REFUSED);
    assert_non_null(strstr(why, "family"));
    assert_int_equal(ex(mk("2001:db8::1", "4000", "8", ""), -1, AF_INET6,
                        false, &p, why),
                     SDP_OK);
}

static void test_codecs(void **state)
{
    (void)state;
    struct sdp_peer p;
    char why[160];
    assert_int_equal(ex(mk("10.0.0.1", "4000", "18", "a=rtpmap:18 G729/8000\r\n"),
                        -1, AF_INET, false, &p, why),
                     SDP_NO_CODEC);
    /* a re-offer must keep the codec in use */
    assert_int_equal(ex(mk("10.0.0.1", "4000", "0", ""), 8, AF_INET, true,
                        &p, why),
                     SDP_NO_CODEC);
    assert_non_null(strstr(why, "PCMA"));
    assert_int_equal(sdp_examine("garbage", 7, -1, AF_INET, false, &p, why,
                                 sizeof why),
                     SDP_REFUSED);
    assert_int_equal(sdp_examine(NULL, 0, -1, AF_INET, false, &p, why,
                                 sizeof why),
                     SDP_REFUSED);
}

static void test_hold(void **state)
{
    (void)state;
    struct sdp_peer p;
    char why[160];
    /* RFC 2543 hold: only where allow_hold says so */
    assert_int_equal(ex(mk("0.0.0.0", "4000", "8", "a=sendrecv\r\n"), 8,
                        AF_INET, true, &p, why),
                     SDP_OK);
    assert_true(p.hold_address);
    assert_true(p.paused);
    assert_int_equal(p.addr_len, 0);
    assert_int_equal(ex(mk("10.0.0.1", "4000", "8", "a=sendonly\r\n"), 8,
                        AF_INET, true, &p, why),
                     SDP_OK);
    assert_true(p.paused);
    assert_int_equal(p.dir, SDP_SENDONLY);
    assert_int_equal(ex(mk("10.0.0.1", "4000", "8", "a=inactive\r\n"), 8,
                        AF_INET, true, &p, why),
                     SDP_OK);
    assert_true(p.paused);
    assert_int_equal(ex(mk("10.0.0.1", "4000", "8", "a=recvonly\r\n"), 8,
                        AF_INET, true, &p, why),
                     SDP_OK);
    assert_false(p.paused);
    /* multicast stays refused in a re-offer */
    assert_int_equal(ex(mk("224.0.0.1", "4000", "8", ""), 8, AF_INET, true,
                        &p, why),
                     SDP_REFUSED);
}

static void test_answer_dir(void **state)
{
    (void)state;
    assert_int_equal(sdp_answer_dir(SDP_SENDRECV), SDP_SENDRECV);
    assert_int_equal(sdp_answer_dir(SDP_SENDONLY), SDP_RECVONLY);
    assert_int_equal(sdp_answer_dir(SDP_RECVONLY), SDP_SENDONLY);
    assert_int_equal(sdp_answer_dir(SDP_INACTIVE), SDP_INACTIVE);
    assert_string_equal(sdp_dir_name(SDP_RECVONLY), "recvonly");
}

static void test_write(void **state)
{
    (void)state;
    char buf[512];
    struct sdp_local l = {.ip = "192.0.2.5", .port = 10000, .session = 77,
                          .version = 78, .payload_type = -1,
                          .dir = SDP_SENDRECV};
    assert_true(sdp_write(&l, buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, "o=ctid 77 78 IN IP4 192.0.2.5\r\n"));
    assert_non_null(strstr(buf, "m=audio 10000 RTP/AVP 8 0\r\n"));
    assert_non_null(strstr(buf, "a=sendrecv\r\n"));
    l.payload_type = 0;
    l.dir = SDP_RECVONLY;
    l.ip = "2001:db8::5";
    assert_true(sdp_write(&l, buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, "c=IN IP6 2001:db8::5\r\n"));
    assert_non_null(strstr(buf, "m=audio 10000 RTP/AVP 0\r\n"));
    assert_non_null(strstr(buf, "a=rtpmap:0 PCMU/8000\r\n"));
    assert_null(strstr(buf, "PCMA"));
    assert_non_null(strstr(buf, "a=recvonly\r\n"));
    assert_int_equal(sdp_write(&l, buf, 20), -1);
    /* what ctid writes, it accepts */
    struct sdp_peer p;
    char why[160];
    l.ip = "192.0.2.5";
    l.dir = SDP_SENDRECV;
    int n = sdp_write(&l, buf, sizeof buf);
    assert_int_equal(sdp_examine(buf, (size_t)n, 0, AF_INET, false, &p, why,
                                 sizeof why),
                     SDP_OK);
}

/* Issue 14: telephone-event offered only when asked, and the answer's
 * payload type learnt whatever number it is. */
static void test_telephone_event(void **state)
{
    (void)state;
    char buf[512], why[160];
    struct sdp_peer p;
    struct sdp_local l = {.ip = "192.0.2.5", .port = 10000, .session = 77,
                          .version = 78, .payload_type = -1,
                          .dir = SDP_SENDRECV};
    assert_true(sdp_write(&l, buf, sizeof buf) > 0);
    assert_null(strstr(buf, "telephone-event"));
    l.te = true;
    l.te_pt = 101;
    int n = sdp_write(&l, buf, sizeof buf);
    assert_true(n > 0);
    assert_non_null(strstr(buf, "m=audio 10000 RTP/AVP 8 0 101\r\n"));
    assert_non_null(strstr(buf, "a=rtpmap:101 telephone-event/8000\r\n"
                                "a=fmtp:101 0-15\r\n"));
    assert_int_equal(sdp_examine(buf, (size_t)n, -1, AF_INET, false, &p,
                                 why, sizeof why), SDP_OK);
    assert_int_equal(p.te_pt, 101);
    l.payload_type = 8;
    l.te_pt = 96;
    assert_true(sdp_write(&l, buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, "m=audio 10000 RTP/AVP 8 96\r\n"));
    const char *a = "v=0\r\no=gw 1 1 IN IP4 10.0.0.9\r\ns=-\r\n"
                    "c=IN IP4 10.0.0.9\r\nt=0 0\r\n"
                    "m=audio 4000 RTP/AVP 0 97\r\n"
                    "a=rtpmap:97 telephone-event/8000\r\n";
    assert_int_equal(sdp_examine(a, strlen(a), -1, AF_INET, false, &p, why,
                                 sizeof why), SDP_OK);
    assert_int_equal(p.payload_type, 0);
    assert_int_equal(p.te_pt, 97);
    const char *wide = "v=0\r\no=gw 1 1 IN IP4 10.0.0.9\r\ns=-\r\n"
                       "c=IN IP4 10.0.0.9\r\nt=0 0\r\n"
                       "m=audio 4000 RTP/AVP 8 98\r\n"
                       "a=rtpmap:98 telephone-event/16000\r\n";
    assert_int_equal(sdp_examine(wide, strlen(wide), -1, AF_INET, false, &p,
                                 why, sizeof why), SDP_OK);
    assert_int_equal(p.te_pt, -1);
    const char *none = "v=0\r\no=gw 1 1 IN IP4 10.0.0.9\r\ns=-\r\n"
                       "c=IN IP4 10.0.0.9\r\nt=0 0\r\n"
                       "m=audio 4000 RTP/AVP 8\r\n";
    assert_int_equal(sdp_examine(none, strlen(none), -1, AF_INET, false, &p,
                                 why, sizeof why), SDP_OK);
    assert_int_equal(p.te_pt, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_answer),  cmocka_unit_test(test_bad_ports),
        cmocka_unit_test(test_bad_addresses), cmocka_unit_test(test_codecs),
        cmocka_unit_test(test_hold),         cmocka_unit_test(test_answer_dir),
        cmocka_unit_test(test_write),        cmocka_unit_test(test_rtcp_attr),
        cmocka_unit_test(test_telephone_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
