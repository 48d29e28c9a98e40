/* Unit tests of session.c: ctid's side of offer/answer inside a call
 * (issue 10): the o= line, the answer's direction, hold, resume,
 * redirect, 488 for offers it cannot take, re-INVITE without SDP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "session.h"

static const char *offer(const char *c, unsigned port, const char *fmt,
                         const char *dir)
{
    static char buf[400];
    snprintf(buf, sizeof buf,
             "v=0\r\no=gw 5 6 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
             "m=audio %u RTP/AVP %s\r\na=%s\r\n",
             c, c, port, fmt, dir);
    return buf;
}

/* A session answered with PCMA at 10.0.0.9:4000. */
static void answered(struct session *ss)
{
    char buf[512], why[160];
    session_init(ss, "r1", "10.0.0.1", 20000, 1234);
    assert_true(session_offer(ss, buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, "o=ctid 1234 1234 IN IP4 10.0.0.1\r\n"));
    assert_non_null(strstr(buf, "m=audio 20000 RTP/AVP 8 0\r\n"));
    const char *a = offer("10.0.0.9", 4000, "8", "sendrecv");
    assert_int_equal(session_answer(ss, a, strlen(a), why, sizeof why),
                     SDP_OK);
    assert_int_equal(ss->payload_type, 8);
    assert_false(ss->paused);
}

static unsigned port_of(const struct session *ss)
{
    return ntohs(((const struct sockaddr_in *)&ss->dest)->sin_port);
}

static void test_hold_resume(void **state)
{
    (void)state;
    struct session ss;
    struct session_reply r;
    answered(&ss);
    const char *o = offer("10.0.0.9", 4000, "8 0", "sendonly");
    session_on_offer(&ss, o, strlen(o), false, &r);
    assert_int_equal(r.status, 200);
    assert_true(r.has_sdp);
    assert_non_null(strstr(r.sdp, "a=recvonly\r\n"));
    assert_non_null(strstr(r.sdp, "o=ctid 1234 1235 "));
    assert_non_null(strstr(r.sdp, "m=audio 20000 RTP/AVP 8\r\n"));
    assert_int_equal(r.changes, SESSION_HOLD);
    assert_true(ss.paused);
    /* the same hold again changes nothing, but is a new SDP */
    session_on_offer(&ss, o, strlen(o), true, &r);
    assert_int_equal(r.changes, 0);
    assert_non_null(strstr(r.sdp, "o=ctid 1234 1236 "));
    o = offer("10.0.0.9", 4000, "8", "sendrecv");
    session_on_offer(&ss, o, strlen(o), false, &r);
    assert_non_null(strstr(r.sdp, "a=sendrecv\r\n"));
    assert_int_equal(r.changes, SESSION_HOLD);
    assert_false(ss.paused);
    /* recvonly: the peer still wants our audio; we answer sendonly */
    o = offer("10.0.0.9", 4000, "8", "recvonly");
    session_on_offer(&ss, o, strlen(o), false, &r);
    assert_non_null(strstr(r.sdp, "a=sendonly\r\n"));
    assert_false(ss.paused);
    /* RFC 2543 hold keeps the old address */
    o = offer("0.0.0.0", 4000, "8", "sendrecv");
    session_on_offer(&ss, o, strlen(o), false, &r);
    assert_int_equal(r.status, 200);
    assert_true(ss.paused);
    assert_int_equal(port_of(&ss), 4000);
    o = offer("10.0.0.9", 4000, "8", "inactive");
    session_on_offer(&ss, o, strlen(o), false, &r);
    assert_non_null(strstr(r.sdp, "a=inactive\r\n"));
    assert_true(ss.paused);
}

static void test_redirect_and_refusals(void **state)
{
    (void)state;
    struct session ss;
    struct session_reply r;
    answered(&ss);
    const char *o = offer("10.0.0.10", 5000, "8", "sendrecv");
    session_on_offer(&ss, o, strlen(o), true, &r);
    assert_int_equal(r.changes, SESSION_MOVED);
    assert_int_equal(port_of(&ss), 5000);
    uint32_t v = ss.version;
    static const struct {
        const char *c;
        unsigned port;
        const char *fmt;
    } bad[] = {{"224.0.0.1", 5000, "8"}, {"10.0.0.10", 70000, "8"},
               {"10.0.0.10", 0, "8"},    {"10.0.0.10", 5000, "0"},
               {"10.0.0.10", 5000, "18"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o = offer(bad[i].c, bad[i].port, bad[i].fmt, "sendrecv");
        session_on_offer(&ss, o, strlen(o), false, &r);
        assert_int_equal(r.status, 488);
        assert_false(r.has_sdp);
        assert_int_equal(r.changes, 0);
        assert_int_equal(port_of(&ss), 5000);
        assert_int_equal(ss.version, v); /* no SDP sent, none counted */
    }
}

static void test_without_sdp(void **state)
{
    (void)state;
    struct session ss;
    struct session_reply r;
    answered(&ss);
    session_on_offer(&ss, NULL, 0, true, &r); /* UPDATE refresh */
    assert_int_equal(r.status, 200);
    assert_false(r.has_sdp);
    assert_false(ss.offer_in_200);
    session_on_offer(&ss, NULL, 0, false, &r); /* re-INVITE: we offer */
    assert_int_equal(r.status, 200);
    assert_true(r.has_sdp);
    assert_non_null(strstr(r.sdp, "a=sendrecv\r\n"));
    assert_non_null(strstr(r.sdp, "m=audio 20000 RTP/AVP 8\r\n"));
    assert_true(ss.offer_in_200);
    const char *a = offer("10.0.0.11", 6000, "8", "sendonly");
    assert_int_equal(session_on_answer(&ss, "ACK", a, strlen(a)),
                     SESSION_MOVED | SESSION_HOLD);
    assert_false(ss.offer_in_200);
    assert_true(ss.paused);
    /* an unusable answer changes nothing */
    a = offer("224.0.0.1", 6000, "8", "sendrecv");
    assert_int_equal(session_on_answer(&ss, "ACK", a, strlen(a)), 0);
    assert_true(ss.paused);
}

static void test_before_answer(void **state)
{
    (void)state;
    struct session ss;
    struct session_reply r;
    char buf[512];
    session_init(&ss, "r2", "10.0.0.1", 20002, 99);
    assert_true(session_offer(&ss, buf, sizeof buf) > 0);
    const char *o = offer("10.0.0.9", 4000, "8", "sendrecv");
    session_on_offer(&ss, o, strlen(o), true, &r); /* early UPDATE */
    assert_int_equal(r.status, 488);
    session_on_offer(&ss, NULL, 0, true, &r);
    assert_int_equal(r.status, 200);
    assert_false(r.has_sdp);
}

/* Issue 14: a call with keys offers telephone-event, learns the answer's
 * payload type and keeps offering it in its later SDP; one without writes
 * the SDP it always wrote. */
static void test_telephone_event(void **state)
{
    (void)state;
    struct session ss, plain;
    struct session_reply r;
    char buf[512], pbuf[512], why[160];
    session_init(&plain, "r3", "10.0.0.1", 20004, 7);
    assert_true(session_offer(&plain, pbuf, sizeof pbuf) > 0);
    assert_null(strstr(pbuf, "telephone-event"));
    assert_non_null(strstr(pbuf, "m=audio 20004 RTP/AVP 8 0\r\n"));
    session_init(&ss, "r4", "10.0.0.1", 20004, 7);
    ss.offer_te = true;
    assert_true(session_offer(&ss, buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, "m=audio 20004 RTP/AVP 8 0 101\r\n"));
    assert_non_null(strstr(buf, "a=rtpmap:101 telephone-event/8000\r\n"));
    assert_non_null(strstr(buf, "a=fmtp:101 0-15\r\n"));
    const char *a = offer("10.0.0.9", 4000, "8 97",
                          "sendrecv\r\na=rtpmap:97 telephone-event/8000");
    assert_int_equal(session_answer(&ss, a, strlen(a), why, sizeof why),
                     SDP_OK);
    assert_int_equal(ss.te_pt, 97);
    assert_int_equal(session_answer(&plain, a, strlen(a), why, sizeof why),
                     SDP_OK);
    assert_int_equal(plain.te_pt, -1); /* not offered: not used */
    const char *o = offer("10.0.0.9", 4000, "8 97", "sendonly");
    session_on_offer(&ss, o, strlen(o), false, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.sdp, "m=audio 20004 RTP/AVP 8 97\r\n"));
    assert_non_null(strstr(r.sdp, "a=rtpmap:97 telephone-event/8000\r\n"));
    session_on_offer(&plain, o, strlen(o), false, &r);
    assert_null(strstr(r.sdp, "telephone-event"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hold_resume),
        cmocka_unit_test(test_redirect_and_refusals),
        cmocka_unit_test(test_without_sdp),
        cmocka_unit_test(test_before_answer),
        cmocka_unit_test(test_telephone_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
