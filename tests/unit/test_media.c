/* Unit tests for media: RTP headers, port pair allocation (RTP on an even
 * port, RTCP bound on the next), and real playback over loopback to a
 * socket the test binds: packet count, marker, sequence, timestamps, SSRC,
 * payload and pacing; closing from on_done; incoming RTP/RTCP dropped. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "g711.h"
#include "media.h"
#include "mediatest.h"

/* Two media threads, so hand-over across several threads is exercised. */
#define MEDIA_TEST_THREADS 2

#define NSTREAMS 4

struct fixture {
    struct event_base *base;
    struct media *m;
    uint16_t port_min;     /* range of m: 6 even ports */
    int rx;                /* the test's receiving socket */
    struct sockaddr_in rx_addr;
    struct media_stream *streams[NSTREAMS];
    int done_calls;
    int done_error;
    void *done_owner;
    int close_all_on_done; /* on_done closes every stream */
    struct media_figures figures; /* the last on_done's */
};

/* A clip built by hand, its samples a pattern of seed; freeable by
 * prompt_clip_unref. */
static struct prompt_clip *make_clip(size_t n_frames, int seed)
{
    struct prompt_clip *c = mt_clip(n_frames);
    size_t n = n_frames * PROMPT_FRAME_SAMPLES;

    for (size_t i = 0; i < n; i++) {
        c->pcm[i] = (int16_t)((i * 7919 + (size_t)seed * 104729) * 31);
        c->alaw[i] = g711_alaw_encode(c->pcm[i]);
        c->ulaw[i] = g711_ulaw_encode(c->pcm[i]);
    }
    return c;
}

/* True when some socket has the UDP port bound on 127.0.0.1. */
static int udp_bound(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    int rc;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    close(fd);
    return rc != 0;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    char err[128];

    fx->base = event_base_new();
    assert_non_null(fx->base);
    fx->port_min = mt_free_range(20000, 30000, 12, 12);
    fx->m = media_new(fx->base, "127.0.0.1", fx->port_min,
                      (uint16_t)(fx->port_min + 11), MEDIA_TEST_THREADS, err,
                      sizeof err);
    assert_non_null(fx->m);
    fx->rx = mt_udp_socket(&fx->rx_addr);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    for (int i = 0; i < NSTREAMS; i++)
        media_stream_close(fx->streams[i]);
    media_free(fx->m);
    event_base_free(fx->base);
    close(fx->rx);
    free(fx);
    return 0;
}

static void on_done(void *owner, int error, const struct media_figures *f)
{
    struct fixture *fx = *(struct fixture **)owner;

    fx->done_calls++;
    fx->figures = *f;
    fx->done_error = error;
    fx->done_owner = owner;
    if (fx->close_all_on_done) {
        for (int i = 0; i < NSTREAMS; i++) {
            media_stream_close(fx->streams[i]);
            fx->streams[i] = NULL;
        }
    }
    event_base_loopbreak(fx->base);
}

/* Owners are slots holding the fixture pointer, one per stream. */
static struct fixture *owners[NSTREAMS];

static struct media_stream *open_stream(struct fixture *fx, int i,
                                        uint16_t *port)
{
    char err[128];

    owners[i] = fx;
    fx->streams[i] = media_stream_open(fx->m, &owners[i], on_done, port, err,
                                       sizeof err);
    assert_non_null(fx->streams[i]);
    return fx->streams[i];
}

static void run_until_done(struct fixture *fx)
{
    struct timeval limit = {5, 0};

    fx->done_calls = 0;
    /* A 5 s safety net so a broken ticker fails instead of hanging. */
    event_base_loopexit(fx->base, &limit);
    event_base_dispatch(fx->base);
}

/* Reads every datagram queued on the receiving socket. */
static size_t receive_all(struct fixture *fx, uint8_t (*pkts)[512],
                          ssize_t *lens, size_t max)
{
    size_t n = 0;

    while (n < max) {
        lens[n] = recv(fx->rx, pkts[n], sizeof pkts[n], 0);
        if (lens[n] < 0)
            break;
        n++;
    }
    return n;
}

/* Checks a played sequence against the frames expected in order. */
static void check_packets(uint8_t (*pkts)[512], const ssize_t *lens,
                          size_t n, int pt, const uint8_t *const *frames)
{
    uint32_t ssrc = mt_get32(pkts[0] + 8);

    for (size_t k = 0; k < n; k++) {
        const uint8_t *p = pkts[k];

        assert_int_equal(lens[k], 12 + 160);
        assert_int_equal(p[0], 0x80);
        assert_int_equal(p[1] & 0x80, k == 0 ? 0x80 : 0);
        assert_int_equal(p[1] & 0x7F, pt);
        assert_int_equal(mt_get16(p + 2), (uint16_t)(mt_get16(pkts[0] + 2) + k));
        assert_int_equal(mt_get32(p + 4),
                         (uint32_t)(mt_get32(pkts[0] + 4) + 160 * k));
        assert_int_equal(mt_get32(p + 8), ssrc);
        assert_memory_equal(p + 12, frames[k], 160);
    }
}

static void test_rtp_header(void **state)
{
    uint8_t h[12];
    const uint8_t want[12] = {0x80, 0x88, 0x12, 0x34, 0xDE, 0xAD,
                              0xBE, 0xEF, 0x01, 0x02, 0x03, 0x04};

    (void)state;
    media_rtp_header(h, 1, 8, 0x1234, 0xDEADBEEF, 0x01020304);
    assert_memory_equal(h, want, 12);
    media_rtp_header(h, 0, 0, 0xFFFF, 0, 0xFFFFFFFF);
    assert_int_equal(h[1], 0x00);
    assert_int_equal(h[2], 0xFF);
    assert_int_equal(h[11], 0xFF);
}

static void test_play_alaw_twice(void **state)
{
    struct fixture *fx = *state;
    struct prompt_clip *clip = make_clip(3, 1);
    uint8_t pkts[16][512];
    ssize_t lens[16];
    const uint8_t *frames[6];
    uint16_t port;
    uint64_t t0;

    open_stream(fx, 0, &port);
    assert_int_equal(media_stream_play(fx->streams[0],
                                       (struct sockaddr *)&fx->rx_addr,
                                       sizeof fx->rx_addr, G711_PT_PCMA,
                                       &clip, 1, 2), 0);
    t0 = clock_mono_ms();
    assert_int_equal(clip->refs, 2); /* the stream holds one */
    run_until_done(fx);
    /* Six packets due at 0..100 ms: the last one 100 ms after the first. */
    assert_in_range(clock_mono_ms() - t0, 95, 1000);
    assert_int_equal(fx->done_calls, 1);
    assert_int_equal(fx->done_error, 0);
    assert_ptr_equal(fx->done_owner, &owners[0]);
    assert_int_equal(clip->refs, 1); /* dropped when done */
    /* issue 14's figures: 6 frames of 20 ms, both plays complete */
    assert_int_equal(fx->figures.played_ms, 120);
    assert_int_equal(fx->figures.plays, 2);

    assert_int_equal(receive_all(fx, pkts, lens, 16), 6);
    for (int k = 0; k < 6; k++)
        frames[k] = clip->alaw + (k % 3) * 160;
    check_packets(pkts, lens, 6, G711_PT_PCMA, frames);
    prompt_clip_unref(clip);
}

static void test_play_ulaw_list(void **state)
{
    struct fixture *fx = *state;
    struct prompt_clip *clips[3] = {make_clip(2, 2), make_clip(1, 3),
                                    make_clip(2, 4)};
    uint8_t pkts[16][512];
    ssize_t lens[16];
    const uint8_t *frames[5];
    struct sockaddr_in from;
    socklen_t flen = sizeof from;
    uint16_t port;

    open_stream(fx, 1, &port);
    assert_int_equal(media_stream_play(fx->streams[1],
                                       (struct sockaddr *)&fx->rx_addr,
                                       sizeof fx->rx_addr, G711_PT_PCMU,
                                       clips, 3, 1), 0);
    run_until_done(fx);
    assert_int_equal(fx->done_calls, 1);
    assert_int_equal(fx->done_error, 0);
    frames[0] = clips[0]->ulaw;
    frames[1] = clips[0]->ulaw + 160;
    frames[2] = clips[1]->ulaw;
    frames[3] = clips[2]->ulaw;
    frames[4] = clips[2]->ulaw + 160;
    lens[0] = recvfrom(fx->rx, pkts[0], sizeof pkts[0], 0,
                       (struct sockaddr *)&from, &flen);
    assert_int_equal(ntohs(from.sin_port), port);
    assert_int_equal(receive_all(fx, pkts + 1, lens + 1, 15), 4);
    check_packets(pkts, lens, 5, G711_PT_PCMU, frames);

    /* The stream can play again (issue 14's `then`): the same stream for
     * the callee, SSRC and sequence going on, the timestamp at least one
     * frame on; a marker starts the new talkspurt. */
    uint32_t ssrc = mt_get32(pkts[0] + 8);
    uint16_t seq = mt_get16(pkts[4] + 2);
    uint32_t ts = mt_get32(pkts[4] + 4);
    assert_int_equal(media_stream_play(fx->streams[1],
                                       (struct sockaddr *)&fx->rx_addr,
                                       sizeof fx->rx_addr, G711_PT_PCMU,
                                       clips + 1, 1, 1), 0);
    run_until_done(fx);
    assert_int_equal(fx->done_calls, 1);
    assert_int_equal(receive_all(fx, pkts, lens, 16), 1);
    assert_int_equal(pkts[0][1], 0x80 | G711_PT_PCMU);
    assert_int_equal(mt_get32(pkts[0] + 8), ssrc);
    assert_int_equal(mt_get16(pkts[0] + 2), (uint16_t)(seq + 1));
    assert_true(mt_get32(pkts[0] + 4) - ts >= 160);
    assert_true(mt_get32(pkts[0] + 4) - ts < 8000 * 5);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(clips[i]->refs, 1);
        prompt_clip_unref(clips[i]);
    }
}

static void test_pacing_catches_up(void **state)
{
    struct fixture *fx = *state;
    struct prompt_clip *clip = make_clip(10, 5);
    uint8_t pkts[16][512];
    ssize_t lens[16];
    uint16_t port;
    uint64_t t0;

    open_stream(fx, 0, &port);
    t0 = clock_mono_ms();
    assert_int_equal(media_stream_play(fx->streams[0],
                                       (struct sockaddr *)&fx->rx_addr,
                                       sizeof fx->rx_addr, G711_PT_PCMA,
                                       &clip, 1, 1), 0);
    /* The loop stalls for 100 ms: the overdue packets go out together and
     * the stream still ends on schedule (packet 9 due at 180 ms). */
    usleep(100 * 1000);
    run_until_done(fx);
    assert_in_range(clock_mono_ms() - t0, 178, 400);
    assert_int_equal(receive_all(fx, pkts, lens, 16), 10);
    prompt_clip_unref(clip);
}

static void test_ports(void **state)
{
    struct fixture *fx = *state;
    struct media *m;
    struct media_stream *s[4];
    uint16_t port, ports[4];
    char err[128] = "";
    int blocker;
    struct sockaddr_in a = {.sin_family = AF_INET};

    (void)fx;
    /* An odd minimum starts at the next even port; 3 pairs (RTP on the
     * even port, RTCP on the odd one after it, both in the range). */
    m = media_new(fx->base, "127.0.0.1", (uint16_t)(fx->port_min + 1),
                  (uint16_t)(fx->port_min + 7), MEDIA_TEST_THREADS, err,
                  sizeof err);
    assert_non_null(m);
    for (int i = 0; i < 3; i++) {
        s[i] = media_stream_open(m, NULL, on_done, &ports[i], err,
                                 sizeof err);
        assert_non_null(s[i]);
        assert_int_equal(ports[i] % 2, 0);
        assert_in_range(ports[i], fx->port_min + 1, fx->port_min + 6);
        /* Both ports of the pair are ours now. */
        assert_true(udp_bound((uint16_t)ports[i]));
        assert_true(udp_bound((uint16_t)(ports[i] + 1)));
    }
    assert_int_equal(ports[0], fx->port_min + 2);
    assert_int_equal(ports[1], fx->port_min + 4);
    assert_int_equal(ports[2], fx->port_min + 6);
    /* Exhausted. */
    assert_null(media_stream_open(m, NULL, on_done, &port, err, sizeof err));
    assert_non_null(strstr(err, "no free RTP port"));
    /* A freed pair is reused once it is the only one. */
    media_stream_close(s[1]);
    assert_false(udp_bound((uint16_t)(fx->port_min + 4)));
    assert_false(udp_bound((uint16_t)(fx->port_min + 5)));
    s[1] = media_stream_open(m, NULL, on_done, &port, err, sizeof err);
    assert_non_null(s[1]);
    assert_int_equal(port, fx->port_min + 4);
    for (int i = 0; i < 3; i++)
        media_stream_close(s[i]);
    /* Round-robin: after +4 comes +6 even though +2 is free. */
    s[0] = media_stream_open(m, NULL, on_done, &port, err, sizeof err);
    assert_int_equal(port, fx->port_min + 6);
    /* A port the OS refuses (taken by another socket) is skipped. */
    blocker = socket(AF_INET, SOCK_DGRAM, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)(fx->port_min + 2));
    assert_int_equal(bind(blocker, (struct sockaddr *)&a, sizeof a), 0);
    s[1] = media_stream_open(m, NULL, on_done, &port, err, sizeof err);
    assert_non_null(s[1]);
    assert_int_equal(port, fx->port_min + 4);
    assert_null(media_stream_open(m, NULL, on_done, &port, err, sizeof err));
    close(blocker);
    s[2] = media_stream_open(m, NULL, on_done, &port, err, sizeof err);
    assert_int_equal(port, fx->port_min + 2);
    for (int i = 0; i < 3; i++)
        media_stream_close(s[i]);
    /* A pair whose RTCP port someone else holds is skipped too, and the
     * RTP socket the attempt bound is not leaked: its port stays free. */
    a.sin_port = htons((uint16_t)(fx->port_min + 5));
    blocker = socket(AF_INET, SOCK_DGRAM, 0);
    assert_int_equal(bind(blocker, (struct sockaddr *)&a, sizeof a), 0);
    s[0] = media_stream_open(m, NULL, on_done, &port, err, sizeof err);
    assert_non_null(s[0]);
    assert_int_not_equal(port, fx->port_min + 4);
    s[1] = media_stream_open(m, NULL, on_done, &port, err, sizeof err);
    assert_non_null(s[1]);
    assert_int_not_equal(port, fx->port_min + 4);
    assert_null(media_stream_open(m, NULL, on_done, &port, err, sizeof err));
    assert_false(udp_bound((uint16_t)(fx->port_min + 4)));
    close(blocker);
    media_stream_close(s[0]);
    media_stream_close(s[1]);
    media_free(m);
    /* A range whose only even port has no odd partner in it holds no
     * pair. */
    assert_null(media_new(fx->base, "127.0.0.1", 40001, 40002,
                          MEDIA_TEST_THREADS, err, sizeof err));
    assert_non_null(strstr(err, "no port pair"));

    /* Bad configurations. */
    assert_null(media_new(fx->base, "127.0.0.1", 40001, 40001,
                          MEDIA_TEST_THREADS, err,
                          sizeof err));
    assert_null(media_new(fx->base, "127.0.0.1", 40010, 40000,
                          MEDIA_TEST_THREADS, err,
                          sizeof err));
    assert_null(media_new(fx->base, "not-an-ip", 40000, 40010,
                          MEDIA_TEST_THREADS, err,
                          sizeof err));
    assert_non_null(strstr(err, "not-an-ip"));
    m = media_new(fx->base, "::1", 40000, 40010, MEDIA_TEST_THREADS, err,
                  sizeof err);
    /* 1..16 media threads. */
    assert_null(media_new(fx->base, "127.0.0.1", 40000, 40010, 0, err,
                          sizeof err));
    assert_null(media_new(fx->base, "127.0.0.1", 40000, 40010, 17, err,
                          sizeof err));
    assert_non_null(m);
    media_free(m);
}

static void test_close_from_on_done(void **state)
{
    struct fixture *fx = *state;
    struct prompt_clip *one = make_clip(1, 6), *three = make_clip(3, 7);
    uint16_t port;

    /* A single-frame play ends at once; its on_done closes it and the
     * other, still playing, stream. */
    fx->close_all_on_done = 1;
    open_stream(fx, 0, &port);
    open_stream(fx, 1, &port);
    assert_int_equal(media_stream_play(fx->streams[1],
                                       (struct sockaddr *)&fx->rx_addr,
                                       sizeof fx->rx_addr, G711_PT_PCMA,
                                       &three, 1, 1), 0);
    assert_int_equal(media_stream_play(fx->streams[0],
                                       (struct sockaddr *)&fx->rx_addr,
                                       sizeof fx->rx_addr, G711_PT_PCMA,
                                       &one, 1, 1), 0);
    run_until_done(fx);
    assert_int_equal(fx->done_calls, 1);
    assert_ptr_equal(fx->done_owner, &owners[0]);
    /* Two streams done in the same tick: the first callback closes both,
     * the second stream's never runs. */
    open_stream(fx, 2, &port);
    open_stream(fx, 3, &port);
    for (int i = 2; i < 4; i++)
        assert_int_equal(media_stream_play(fx->streams[i],
                                           (struct sockaddr *)&fx->rx_addr,
                                           sizeof fx->rx_addr, G711_PT_PCMU,
                                           &one, 1, 1), 0);
    run_until_done(fx);
    assert_int_equal(fx->done_calls, 1);
    /* Let the loop run on: nothing fires for closed streams. */
    struct timeval tv = {0, 60000};
    event_base_loopexit(fx->base, &tv);
    event_base_dispatch(fx->base);
    assert_int_equal(fx->done_calls, 1);
    assert_int_equal(one->refs, 1);
    assert_int_equal(three->refs, 1);
    prompt_clip_unref(one);
    prompt_clip_unref(three);
}

static void test_send_errors(void **state)
{
    struct fixture *fx = *state;
    struct prompt_clip *clip = make_clip(3, 8);
    struct sockaddr_in bad = {.sin_family = AF_INET}, gone;
    socklen_t len = sizeof gone;
    uint16_t port;
    int fd;

    /* Port 0 (SDP's "media rejected") cannot be sent to: play refuses it
     * and takes no reference. */
    bad.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    open_stream(fx, 0, &port);
    assert_int_equal(media_stream_play(fx->streams[0],
                                       (struct sockaddr *)&bad, sizeof bad,
                                       G711_PT_PCMA, &clip, 1, 1), -1);
    assert_int_equal(fx->done_calls, 0);
    assert_int_equal(clip->refs, 1);

    /* Nobody listening (ICMP port unreachable) is not an error. */
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    gone.sin_family = AF_INET;
    gone.sin_port = 0;
    gone.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&gone, sizeof gone), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&gone, &len), 0);
    close(fd);
    assert_int_equal(media_stream_play(fx->streams[0],
                                       (struct sockaddr *)&gone, sizeof gone,
                                       G711_PT_PCMA, &clip, 1, 1), 0);
    run_until_done(fx);
    assert_int_equal(fx->done_calls, 1);
    assert_int_equal(fx->done_error, 0);
    /* The stream is idle again: a running one would be refused. */
    assert_int_equal(media_stream_play(fx->streams[0],
                                       (struct sockaddr *)&gone, sizeof gone,
                                       G711_PT_PCMA, &clip, 1, 1), 0);
    assert_int_equal(media_stream_play(fx->streams[0],
                                       (struct sockaddr *)&gone, sizeof gone,
                                       G711_PT_PCMA, &clip, 1, 1), -1);
    run_until_done(fx);
    assert_int_equal(fx->done_calls, 1);

    /* Refused up front: nothing to play, unknown payload type, wrong
     * address family. */
    assert_int_equal(media_stream_play(fx->streams[0],
                                       (struct sockaddr *)&gone, sizeof gone,
                                       G711_PT_PCMA, &clip, 1, 0), -1);
    assert_int_equal(media_stream_play(fx->streams[0],
                                       (struct sockaddr *)&gone, sizeof gone,
                                       G711_PT_PCMA, &clip, 0, 1), -1);
    assert_int_equal(media_stream_play(fx->streams[0],
                                       (struct sockaddr *)&gone, sizeof gone,
                                       18, &clip, 1, 1), -1);
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    assert_int_equal(media_stream_play(fx->streams[0],
                                       (struct sockaddr *)&v6, sizeof v6,
                                       G711_PT_PCMA, &clip, 1, 1), -1);
    assert_int_equal(clip->refs, 1);
    prompt_clip_unref(clip);
}

/* Bytes queued for a local UDP port, from /proc/net/udp. */
static long rx_queue(uint16_t port)
{
    FILE *f = fopen("/proc/net/udp", "r");
    char line[512];
    unsigned lport, rxq;
    long found = -1;

    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        if (sscanf(line, " %*d: %*x:%x %*x:%*x %*x %*x:%x", &lport, &rxq) ==
                2 &&
            lport == port)
            found = rxq;
    fclose(f);
    return found;
}

static void test_incoming_drained(void **state)
{
    struct fixture *fx = *state;
    struct sockaddr_in to = {.sin_family = AF_INET};
    uint8_t junk[200] = {0};
    struct timeval tv = {0, 50000};
    uint16_t port;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);

    open_stream(fx, 0, &port);
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* The socket filter drops incoming RTP in the kernel: nothing is ever
     * queued, with or without the loop running. */
    assert_int_not_equal(rx_queue(port), -1);
    assert_int_not_equal(rx_queue((uint16_t)(port + 1)), -1);
    for (int i = 0; i < 300; i++) {
        to.sin_port = htons((uint16_t)(port + i % 2)); /* RTP and RTCP */
        assert_int_equal(sendto(fd, junk, sizeof junk, 0,
                                (struct sockaddr *)&to, sizeof to),
                         (ssize_t)sizeof junk);
    }
    assert_int_equal(rx_queue(port), 0);
    assert_int_equal(rx_queue((uint16_t)(port + 1)), 0);
    event_base_loopexit(fx->base, &tv);
    event_base_dispatch(fx->base);
    assert_int_equal(rx_queue(port), 0);
    assert_int_equal(rx_queue((uint16_t)(port + 1)), 0);
    /* a stream without media_keys is never read (issue 14) */
    uint64_t read, bad;
    media_rx_stats(fx->m, &read, &bad);
    assert_int_equal(read, 0);
    close(fd);
}

/* Issue 10: hold pauses a playing stream without stopping its clock (it
 * ends when it would have), resume continues where the clock is, with the
 * marker bit, the next sequence number and a timestamp that counted the
 * pause; a new address redirects the stream. */
static void resume_later(evutil_socket_t fd, short what, void *arg)
{
    struct fixture *fx = arg;
    (void)fd;
    (void)what;
    assert_int_equal(media_stream_update(fx->streams[0], NULL, 0, 0, false), 0);
}

static void test_hold_resume(void **state)
{
    struct fixture *fx = *state;
    struct prompt_clip *clip = make_clip(20, 3); /* 400 ms */
    uint8_t pkts[32][512];
    ssize_t lens[32];
    uint16_t port;

    open_stream(fx, 0, &port);
    /* Before the play: the stream's clock starts there, so the ~400 ms
     * below are measured from the same instant (taken after the calls,
     * a slow machine made it look short). */
    uint64_t t0 = clock_mono_ms();
    assert_int_equal(media_stream_play(fx->streams[0],
                                       (struct sockaddr *)&fx->rx_addr,
                                       sizeof fx->rx_addr, G711_PT_PCMA,
                                       &clip, 1, 1), 0);
    assert_int_equal(media_stream_update(fx->streams[0], NULL, 0, 0, true), 0);
    struct event *ev = evtimer_new(fx->base, resume_later, fx);
    struct timeval tv = {0, 200000};
    evtimer_add(ev, &tv);
    run_until_done(fx);
    /* the clock ran through the hold: 400 ms in all, not 400 + hold */
    assert_in_range(clock_mono_ms() - t0, 380, 1000);
    assert_int_equal(fx->done_calls, 1);
    assert_int_equal(fx->done_error, 0);
    size_t n = receive_all(fx, pkts, lens, 32);
    /* The media thread may send a frame or two before it reads the hold;
     * the resumed part starts at the last marker bit (a new talkspurt). */
    size_t r = 0;
    for (size_t k = 0; k < n; k++)
        if (pkts[k][1] & 0x80)
            r = k;
    assert_true(r <= 2);
    assert_in_range(n - r, 5, 14); /* frames after ~200 ms, not all 20 */
    size_t first = 20 - (n - r);   /* the frame the clock had reached */
    if (r > 0) /* no sequence number spent during the hold */
        assert_int_equal(mt_get16(pkts[r] + 2),
                         (uint16_t)(mt_get16(pkts[r - 1] + 2) + 1));
    for (size_t k = r; k < n; k++) {
        assert_int_equal(mt_get16(pkts[k] + 2),
                         (uint16_t)(mt_get16(pkts[r] + 2) + (k - r)));
        assert_int_equal(mt_get32(pkts[k] + 4),
                         (uint32_t)(mt_get32(pkts[r] + 4) + 160 * (k - r)));
        assert_memory_equal(pkts[k] + 12, clip->alaw + (first + k - r) * 160,
                            160);
    }
    event_free(ev);
    /* not playing any more: an update changes nothing and succeeds */
    assert_int_equal(media_stream_update(fx->streams[0], NULL, 0, 0, true), 0);
    prompt_clip_unref(clip);
}

static void test_redirect(void **state)
{
    struct fixture *fx = *state;
    struct prompt_clip *clip = make_clip(5, 4);
    uint8_t pkts[16][512];
    ssize_t lens[16];
    uint16_t port;
    struct sockaddr_in other = {.sin_family = AF_INET};
    socklen_t len = sizeof other;
    int rx2 = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);

    other.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(rx2, (struct sockaddr *)&other, sizeof other), 0);
    assert_int_equal(getsockname(rx2, (struct sockaddr *)&other, &len), 0);
    open_stream(fx, 0, &port);
    assert_int_equal(media_stream_play(fx->streams[0],
                                       (struct sockaddr *)&fx->rx_addr,
                                       sizeof fx->rx_addr, G711_PT_PCMU,
                                       &clip, 1, 1), 0);
    assert_int_equal(media_stream_update(fx->streams[0],
                                         (struct sockaddr *)&other,
                                         sizeof other, 0, false), 0);
    /* a port of 0 or another family is refused, and changes nothing */
    struct sockaddr_in zero = other;
    zero.sin_port = 0;
    assert_int_equal(media_stream_update(fx->streams[0],
                                         (struct sockaddr *)&zero,
                                         sizeof zero, 0, false), -1);
    run_until_done(fx);
    assert_int_equal(fx->done_error, 0);
    size_t n = 0;
    while (n < 16 && (lens[n] = recv(rx2, pkts[n], sizeof pkts[n], 0)) > 0)
        n++;
    size_t old = receive_all(fx, pkts + n, lens + n, 16 - n);
    assert_int_equal(n + old, 5);
    assert_true(n >= 4); /* all, or all but one sent before the update */
    close(rx2);
    prompt_clip_unref(clip);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rtp_header),
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_play_alaw_twice),
        T(test_play_ulaw_list),
        T(test_pacing_catches_up),
        T(test_ports),
        T(test_close_from_on_done),
        T(test_send_errors),
        T(test_incoming_drained),
        T(test_hold_resume),
        T(test_redirect),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
