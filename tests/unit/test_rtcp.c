/* Unit tests for rtcp: the compound packet's bytes against hand-checked
 * vectors (RFC 3550 §6.4.1 SR, §6.5 SDES, §6.6 BYE), NTP timestamps,
 * report intervals (§6.3.1), CNAMEs (RFC 7022), a=rtcp ports (RFC 3605),
 * where reports go, and one report sent over loopback with its RTP
 * timestamp on the stream's clock. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "rtcp.h"

static const struct rtcp_sender_info vector_sr = {
    .ssrc = 0x01020304,
    .ntp = 0xE123456789ABCDEFULL,
    .rtp_ts = 0xDEADBEEF,
    .packets = 600,
    .octets = 96000,
};

static void test_sr_sdes_bytes(void **state)
{
    /* Worked out by hand from RFC 3550 §6.4.1 and §6.5.1. */
    static const uint8_t want[56] = {
        /* SR: V=2 P=0 RC=0, PT=200, length 6 (28 bytes) */
        0x80, 0xC8, 0x00, 0x06,
        0x01, 0x02, 0x03, 0x04,             /* SSRC of sender */
        0xE1, 0x23, 0x45, 0x67,             /* NTP, most significant word */
        0x89, 0xAB, 0xCD, 0xEF,             /* NTP, least significant word */
        0xDE, 0xAD, 0xBE, 0xEF,             /* RTP timestamp */
        0x00, 0x00, 0x02, 0x58,             /* sender's packet count 600 */
        0x00, 0x01, 0x77, 0x00,             /* sender's octet count 96000 */
        /* SDES: V=2 P=0 SC=1, PT=202, length 6 (28 bytes) */
        0x81, 0xCA, 0x00, 0x06,
        0x01, 0x02, 0x03, 0x04,             /* chunk: SSRC */
        0x01, 0x10,                         /* CNAME, 16 octets */
        'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h',
        'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p',
        0x00, 0x00,                         /* end of items, pad to 32 bits */
    };
    uint8_t out[RTCP_PACKET_MAX + 8];

    (void)state;
    memset(out, 0xAA, sizeof out);
    assert_int_equal(rtcp_build(out, sizeof out, &vector_sr,
                                "abcdefghijklmnop", false),
                     sizeof want);
    assert_memory_equal(out, want, sizeof want);
    assert_int_equal(out[sizeof want], 0xAA); /* nothing written past it */
    /* Too small a buffer: nothing. */
    assert_int_equal(rtcp_build(out, sizeof want - 1, &vector_sr,
                                "abcdefghijklmnop", false),
                     0);
}

static void test_bye_and_padding(void **state)
{
    /* A 2-octet CNAME fills its chunk's 8 octets exactly, so the chunk
     * needs a whole word of zeros to end the item list. */
    static const uint8_t want_tail[24] = {
        0x81, 0xCA, 0x00, 0x03,             /* SDES, length 3 (16 bytes) */
        0x01, 0x02, 0x03, 0x04,
        0x01, 0x02, 'x', 'y',
        0x00, 0x00, 0x00, 0x00,
        0x81, 0xCB, 0x00, 0x01,             /* BYE: SC=1, PT=203, length 1 */
        0x01, 0x02, 0x03, 0x04,
    };
    uint8_t out[RTCP_PACKET_MAX];
    char longname[300];

    (void)state;
    assert_int_equal(rtcp_build(out, sizeof out, &vector_sr, "xy", true),
                     28 + sizeof want_tail);
    assert_int_equal(out[0], 0x80);
    assert_int_equal(out[1], 200);
    assert_memory_equal(out + 28, want_tail, sizeof want_tail);
    /* The biggest ctid sends (16-octet CNAME and BYE) fits the maximum. */
    assert_int_equal(rtcp_build(out, sizeof out, &vector_sr,
                                "abcdefghijklmnop", true),
                     RTCP_PACKET_MAX);
    assert_int_equal(out[56], 0x81);
    assert_int_equal(out[57], 203);
    /* An SDES item holds at most 255 octets. */
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    uint8_t big[400];
    assert_int_equal(rtcp_build(big, sizeof big, &vector_sr, longname, false),
                     0);
}

static void test_ntp(void **state)
{
    struct timespec epoch = {0, 0}, t = {1700000000, 500000000};
    struct timespec almost = {0, 999999999};

    (void)state;
    /* 1970-01-01 is 2208988800 s after 1900-01-01. */
    assert_true(rtcp_ntp(&epoch) == 2208988800ULL << 32);
    assert_true(rtcp_ntp(&t) == (0xE8FE6F80ULL << 32 | 0x80000000ULL));
    /* A fraction just under one second stays under it. */
    assert_true((rtcp_ntp(&almost) >> 32) == 2208988800ULL);
    assert_true((uint32_t)rtcp_ntp(&almost) >= 0xFFFFFFFBU);
}

static void test_intervals(void **state)
{
    (void)state;
    /* Td (5 s; 2.5 s for the first) x [0.5, 1.5) / (e - 3/2). */
    assert_in_range(rtcp_interval_ns(0, false), 2052070000ULL, 2052071000ULL);
    assert_in_range(rtcp_interval_ns(0x80000000U, false), 4104140000ULL,
                    4104141500ULL);
    assert_in_range(rtcp_interval_ns(0xFFFFFFFFU, false), 6156210000ULL,
                    6156212000ULL);
    assert_in_range(rtcp_interval_ns(0, true), 1026035000ULL, 1026036000ULL);
    assert_in_range(rtcp_interval_ns(0xFFFFFFFFU, true), 3078105000ULL,
                    3078106000ULL);
}

static void test_cname(void **state)
{
    uint8_t rnd[12];
    char out[RTCP_CNAME_LEN + 1];

    (void)state;
    for (int i = 0; i < 12; i++)
        rnd[i] = (uint8_t)i;
    rtcp_cname(out, rnd);
    assert_string_equal(out, "AAECAwQFBgcICQoL"); /* base64 of 00..0b */
    memset(rnd, 0xFF, sizeof rnd);
    rtcp_cname(out, rnd);
    assert_string_equal(out, "////////////////");
}

static void test_sdp_port(void **state)
{
    (void)state;
    /* RFC 3605 §2.1 examples, and the forms ctid accepts. */
    assert_int_equal(rtcp_sdp_port("53020", "10.0.0.1"), 53020);
    assert_int_equal(rtcp_sdp_port("53020 IN IP4 126.16.64.4", "126.16.64.4"),
                     53020);
    assert_int_equal(rtcp_sdp_port("53020 IN IP6 2001:2345:6789:ABCD:EF01:"
                                   "2345:6789:ABCD",
                                   "2001:2345:6789:abcd:ef01:2345:6789:abcd"),
                     53020);
    assert_int_equal(rtcp_sdp_port("65535", "10.0.0.1"), 65535);
    /* Absent or unusable: 0, meaning RTP + 1. */
    assert_int_equal(rtcp_sdp_port(NULL, "10.0.0.1"), 0);
    assert_int_equal(rtcp_sdp_port("", "10.0.0.1"), 0);
    assert_int_equal(rtcp_sdp_port("0", "10.0.0.1"), 0);
    assert_int_equal(rtcp_sdp_port("65536", "10.0.0.1"), 0);
    assert_int_equal(rtcp_sdp_port("70000", "10.0.0.1"), 0);
    assert_int_equal(rtcp_sdp_port("123456", "10.0.0.1"), 0);
    assert_int_equal(rtcp_sdp_port("-1", "10.0.0.1"), 0);
    assert_int_equal(rtcp_sdp_port("port", "10.0.0.1"), 0);
    assert_int_equal(rtcp_sdp_port("5000x", "10.0.0.1"), 0);
    /* Another address (multicast, elsewhere) is not followed. */
    assert_int_equal(rtcp_sdp_port("53020 IN IP4 224.0.0.1", "10.0.0.1"), 0);
    assert_int_equal(rtcp_sdp_port("53020 IN IP4 10.0.0.2", "10.0.0.1"), 0);
    assert_int_equal(rtcp_sdp_port("53020 IN IP4 host.example", "10.0.0.1"),
                     0);
    assert_int_equal(rtcp_sdp_port("53020 IN IP4", "10.0.0.1"), 0);
    assert_int_equal(rtcp_sdp_port("53020 IN IP4 10.0.0.1 x", "10.0.0.1"), 0);
    assert_int_equal(rtcp_sdp_port("53020 XX IP4 10.0.0.1", "10.0.0.1"), 0);
    assert_int_equal(rtcp_sdp_port("53020 IN IP4 10.0.0.1", NULL), 0);
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)(const void *)ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *)(const void *)ss)->sin_port);
}

static void test_peer(void **state)
{
    struct rtcp_stream r;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(4000)};
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6,
                              .sin6_port = htons(5000)};
    struct sockaddr_un u = {.sun_family = AF_UNIX};

    (void)state;
    rtcp_open(&r, -1, 0);
    assert_int_equal(strlen(r.cname), RTCP_CNAME_LEN);
    /* RTP port + 1 by default, or the answer's a=rtcp port. */
    assert_int_equal(rtcp_set_peer(&r, (struct sockaddr *)&a, sizeof a, 0), 0);
    assert_int_equal(r.peer_len, sizeof a);
    assert_int_equal(port_of(&r.peer), 4001);
    assert_int_equal(rtcp_set_peer(&r, (struct sockaddr *)&a, sizeof a, 7000),
                     0);
    assert_int_equal(port_of(&r.peer), 7000);
    assert_int_equal(rtcp_set_peer(&r, (struct sockaddr *)&a6, sizeof a6, 0),
                     0);
    assert_int_equal(r.peer_len, sizeof a6);
    assert_int_equal(r.peer.ss_family, AF_INET6);
    assert_int_equal(port_of(&r.peer), 5001);
    /* RTP on 65535 has no port + 1: no reports, and no error. */
    a.sin_port = htons(65535);
    assert_int_equal(rtcp_set_peer(&r, (struct sockaddr *)&a, sizeof a, 0), 0);
    assert_int_equal(r.peer_len, 0);
    rtcp_start(&r, 0, 0);
    assert_true(r.due == UINT64_MAX);
    /* Not an IP address. */
    assert_int_equal(rtcp_set_peer(&r, (struct sockaddr *)&u, sizeof u, 0),
                     -1);
    rtcp_close(&r);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

static uint64_t now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void test_send_loopback(void **state)
{
    struct sockaddr_in rx_addr = {.sin_family = AF_INET}, tx_addr = rx_addr;
    socklen_t len = sizeof rx_addr;
    struct rtcp_stream r;
    struct timeval tv = {2, 0};
    uint8_t buf[256];
    int rx = socket(AF_INET, SOCK_DGRAM, 0);
    int tx = socket(AF_INET, SOCK_DGRAM, 0);

    (void)state;
    rx_addr.sin_addr.s_addr = tx_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(rx, (struct sockaddr *)&rx_addr, sizeof rx_addr), 0);
    assert_int_equal(getsockname(rx, (struct sockaddr *)&rx_addr, &len), 0);
    assert_int_equal(bind(tx, (struct sockaddr *)&tx_addr, sizeof tx_addr), 0);
    setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    /* The peer's "RTP" port is one below the receiving socket. */
    rx_addr.sin_port = htons((uint16_t)(ntohs(rx_addr.sin_port) - 1));

    rtcp_open(&r, tx, 0);
    assert_int_equal(rtcp_set_peer(&r, (struct sockaddr *)&rx_addr,
                                   sizeof rx_addr, 0), 0);
    /* The stream's first packet (ts 1000) was due 1 s ago. */
    uint64_t mono = now_ns(CLOCK_MONOTONIC);
    rtcp_start(&r, mono - 1000000000ULL, 1000);
    assert_true(r.due >= mono - 1000000000ULL + 1026035000ULL &&
                r.due <= mono - 1000000000ULL + 3078106000ULL);
    uint64_t wall = now_ns(CLOCK_REALTIME);
    rtcp_send(&r, 0xCAFEF00D, 50, true);
    assert_int_equal(r.reports, 1);
    assert_true(r.due >= mono + 2052070000ULL);
    ssize_t n = recv(rx, buf, sizeof buf, 0);
    assert_int_equal(n, RTCP_PACKET_MAX);
    assert_int_equal(buf[1], 200);
    assert_int_equal(get32(buf + 4), 0xCAFEF00D);
    /* NTP time: now, to within a second. */
    uint64_t ntp_sec = get32(buf + 8) - 2208988800ULL;
    assert_in_range(ntp_sec, wall / 1000000000ULL - 1,
                    wall / 1000000000ULL + 1);
    /* RTP timestamp: 1000 + 8000 per second since t0, give or take 100 ms
     * of a busy machine. */
    assert_in_range(get32(buf + 16), 1000 + 8000 - 100, 1000 + 8000 + 800);
    assert_int_equal(get32(buf + 20), 50);
    assert_int_equal(get32(buf + 24), 50 * 160);
    assert_int_equal(buf[29], 202);
    assert_int_equal(buf[36], 1);
    assert_int_equal(buf[37], RTCP_CNAME_LEN);
    assert_memory_equal(buf + 38, r.cname, RTCP_CNAME_LEN);
    assert_int_equal(buf[57], 203);
    assert_int_equal(get32(buf + 60), 0xCAFEF00D);
    rtcp_close(&r);
    assert_int_equal(r.fd, -1);
    close(rx);
}

static void test_send_error(void **state)
{
    struct sockaddr_in local = {.sin_family = AF_INET};
    struct sockaddr_in far = {.sin_family = AF_INET, .sin_port = htons(9)};
    struct rtcp_stream r;
    _Atomic uint64_t errors = 0;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);

    (void)state;
    /* A socket on loopback cannot reach 192.0.2.1 (TEST-NET-1): sendto
     * fails. The report is lost, the next one is scheduled all the same,
     * and the second failure is not logged again. */
    local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    far.sin_addr.s_addr = htonl(0xC0000201);
    assert_int_equal(bind(fd, (struct sockaddr *)&local, sizeof local), 0);
    rtcp_open(&r, fd, 0);
    assert_null(r.errors);
    r.errors = &errors; /* ctid_rtcp_send_errors_total: every failure */
    assert_int_equal(rtcp_set_peer(&r, (struct sockaddr *)&far, sizeof far,
                                   0), 0);
    uint64_t mono = now_ns(CLOCK_MONOTONIC);
    rtcp_start(&r, mono, 0);
    rtcp_send(&r, 1, 10, false);
    assert_int_equal(r.reports, 0);
    assert_true(r.lost_logged);
    assert_int_equal(atomic_load(&errors), 1);
    assert_true(r.due > mono && r.due != UINT64_MAX);
    rtcp_send(&r, 1, 20, true);
    assert_int_equal(r.reports, 0);
    assert_int_equal(atomic_load(&errors), 2); /* counted, not logged */
    rtcp_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sr_sdes_bytes),
        cmocka_unit_test(test_bye_and_padding),
        cmocka_unit_test(test_ntp),
        cmocka_unit_test(test_intervals),
        cmocka_unit_test(test_cname),
        cmocka_unit_test(test_sdp_port),
        cmocka_unit_test(test_peer),
        cmocka_unit_test(test_send_loopback),
        cmocka_unit_test(test_send_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
