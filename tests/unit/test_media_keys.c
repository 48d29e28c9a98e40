/* Unit tests for media's receive path (issue 14's keys), over real
 * sockets on loopback: media_keys attaches the kernel filter and a media
 * thread reads what it lets through; RFC 4733 packets (with the three
 * redundant end packets) give one key each; packets of another payload
 * type never reach user space (the read counter); hostile packets are
 * dropped and counted; in-band DTMF in PCMA audio gives keys;
 * media_stop_play ends a play early with its figures; playing again
 * continues the stream; closing a listening stream frees it, and the
 * thread's other listening streams go on being read. */

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
#include <math.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "g711.h"
#include "media.h"
#include "mediatest.h"

#define TE_PT 101

struct fixture {
    struct event_base *base;
    struct media *m;
    struct media_stream *s;
    uint16_t port;         /* the stream's RTP port */
    int tx;                /* the test's socket: sends to it, receives RTP */
    struct sockaddr_in tx_addr;
    struct sockaddr_in to; /* 127.0.0.1:port */
    char keys[32];
    size_t n_keys;
    size_t want_keys;      /* the loop stops at this many */
    int done_calls;
    int done_error;
    struct media_figures figures;
};

static struct fixture *the_fx;

static void on_done(void *owner, int error, const struct media_figures *f)
{
    struct fixture *fx = owner;
    fx->done_calls++;
    fx->done_error = error;
    fx->figures = *f;
    event_base_loopbreak(fx->base);
}

static void on_key(void *owner, char key)
{
    struct fixture *fx = owner;
    if (fx->n_keys < sizeof fx->keys - 1)
        fx->keys[fx->n_keys++] = key;
    if (fx->n_keys >= fx->want_keys)
        event_base_loopbreak(fx->base);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    char err[128];
    uint16_t min = mt_free_range(30000, 20000, 8, 4);

    the_fx = fx;
    fx->base = event_base_new();
    fx->m = media_new(fx->base, "127.0.0.1", min, (uint16_t)(min + 3), 1,
                      err, sizeof err);
    assert_non_null(fx->m);
    fx->s = media_stream_open(fx->m, fx, on_done, &fx->port, err, sizeof err);
    assert_non_null(fx->s);
    fx->tx = mt_udp_socket(&fx->tx_addr);
    fx->to.sin_family = AF_INET;
    fx->to.sin_port = htons(fx->port);
    fx->to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    media_stream_close(fx->s);
    media_free(fx->m);
    event_base_free(fx->base);
    close(fx->tx);
    free(fx);
    return 0;
}

static void send_raw(struct fixture *fx, const uint8_t *b, size_t n)
{
    assert_int_equal(sendto(fx->tx, b, n, 0, (struct sockaddr *)&fx->to,
                            sizeof fx->to),
                     (ssize_t)n);
}

static void header(uint8_t *b, int marker, int pt, uint16_t seq,
                   uint32_t ts)
{
    media_rtp_header(b, marker, (uint8_t)pt, seq, ts, 0x11223344);
}

/* One RFC 4733 packet of event ev. */
static void send_te(struct fixture *fx, int marker, uint16_t seq,
                    uint32_t ts, uint8_t ev, int end, uint16_t duration)
{
    uint8_t b[16];
    header(b, marker, TE_PT, seq, ts);
    b[12] = ev;
    b[13] = (uint8_t)((end ? 0x80 : 0) | 10);
    b[14] = (uint8_t)(duration >> 8);
    b[15] = (uint8_t)duration;
    send_raw(fx, b, sizeof b);
}

/* A whole key press: start, two updates, three end packets. */
static void press(struct fixture *fx, uint16_t *seq, uint32_t ts, uint8_t ev)
{
    send_te(fx, 1, (*seq)++, ts, ev, 0, 160);
    send_te(fx, 0, (*seq)++, ts, ev, 0, 320);
    send_te(fx, 0, (*seq)++, ts, ev, 0, 480);
    for (int i = 0; i < 3; i++)
        send_te(fx, 0, (*seq)++, ts, ev, 1, 640);
}

static void run(struct fixture *fx, size_t want_keys, long ms)
{
    struct timeval limit = {ms / 1000, (ms % 1000) * 1000};
    fx->want_keys = want_keys;
    event_base_loopexit(fx->base, &limit);
    event_base_dispatch(fx->base);
}

static void test_rfc4733(void **state)
{
    struct fixture *fx = *state;
    uint64_t read, bad;
    uint16_t seq = 1000;

    assert_int_equal(media_keys(fx->s, TE_PT, false, G711_PT_PCMA, on_key),
                     0);
    assert_int_equal(media_keys(fx->s, TE_PT, false, G711_PT_PCMA, on_key),
                     -1); /* once per stream */
    /* audio of the call: PCMA, dropped in the kernel */
    uint8_t audio[12 + 160] = {0};
    for (int i = 0; i < 50; i++) {
        header(audio, i == 0, G711_PT_PCMA, (uint16_t)(seq++), 160u * i);
        send_raw(fx, audio, sizeof audio);
    }
    /* not RTP at all, and too short to hold a payload type: dropped there
     * too */
    uint8_t v1[16] = {0x40, TE_PT};
    send_raw(fx, v1, sizeof v1);
    send_raw(fx, (const uint8_t *)"\x80", 1);
    press(fx, &seq, 8000, 1);
    /* hostile, of the right type: padding past the end, a CSRC count
     * past the end, an extension past the end; read, dropped, counted */
    uint8_t pad[16];
    header(pad, 0, TE_PT, seq++, 9000);
    pad[0] |= 0x20;
    pad[15] = 200;
    send_raw(fx, pad, sizeof pad);
    uint8_t csrc[16];
    header(csrc, 0, TE_PT, seq++, 9000);
    csrc[0] |= 0x0f;
    send_raw(fx, csrc, sizeof csrc);
    uint8_t ext[20];
    header(ext, 0, TE_PT, seq++, 9000);
    ext[0] |= 0x10; /* a header extension of 0xffff words */
    ext[12] = ext[13] = ext[14] = ext[15] = 0xff;
    send_raw(fx, ext, sizeof ext);
    press(fx, &seq, 16000, 11);
    run(fx, 2, 2000);
    assert_int_equal(fx->n_keys, 2);
    assert_memory_equal(fx->keys, "1#", 2);
    /* let late copies come: still two keys */
    run(fx, 99, 100);
    assert_int_equal(fx->n_keys, 2);
    media_rx_stats(fx->m, &read, &bad);
    assert_int_equal(read, 6 + 3 + 6); /* no audio, no v1, no 1-byte one */
    assert_int_equal(bad, 3);
}

/* DTMF digit tones as PCMA at 8 kHz. */
static void tone(uint8_t *out, size_t n, double f1, double f2, size_t t0)
{
    for (size_t i = 0; i < n; i++) {
        double t = (double)(t0 + i) / 8000.0;
        double v = 6000.0 * (sin(2 * 3.14159265358979 * f1 * t) + sin(2 * 3.14159265358979 * f2 * t));
        out[i] = g711_alaw_encode((int16_t)v);
    }
}

static void test_inband(void **state)
{
    struct fixture *fx = *state;
    uint8_t pkt[12 + 160];
    uint16_t seq = 7;
    size_t t = 0;
    /* '5' (770 + 1336 Hz) for 100 ms, 100 ms of silence, '9' (852 + 1477),
     * silence */
    const double f[4][2] = {{770, 1336}, {0, 0}, {852, 1477}, {0, 0}};

    assert_int_equal(media_keys(fx->s, -1, true, G711_PT_PCMA, on_key), 0);
    for (int part = 0; part < 4; part++)
        for (int k = 0; k < 5; k++, t += 160) {
            header(pkt, seq == 7, G711_PT_PCMA, seq, (uint32_t)t);
            seq++;
            if (f[part][0] > 0)
                tone(pkt + 12, 160, f[part][0], f[part][1], t);
            else
                memset(pkt + 12, g711_alaw_encode(0), 160);
            send_raw(fx, pkt, sizeof pkt);
            usleep(2000); /* in order, not a burst the buffer drops */
        }
    run(fx, 2, 2000);
    assert_int_equal(fx->n_keys, 2);
    assert_memory_equal(fx->keys, "59", 2);
}

static void stop_later(evutil_socket_t fd, short what, void *arg)
{
    struct fixture *fx = arg;
    (void)fd;
    (void)what;
    assert_int_equal(media_stop_play(fx->s), 0);
    assert_int_equal(media_stop_play(fx->s), 0); /* once is enough */
}

/* Stop a 2 s prompt after ~200 ms: on_done at once with the figures so
 * far; a key while idle still comes; playing `then` continues the stream
 * and ends with its own figures. */
static void test_stop_and_then(void **state)
{
    struct fixture *fx = *state;
    struct prompt_clip *longc = mt_clip(100), *thenc = mt_clip(3);
    uint8_t pkts[128][200];
    size_t n = 0;
    uint16_t seq = 1;

    assert_int_equal(media_stop_play(fx->s), -1); /* not playing */
    assert_int_equal(media_keys(fx->s, TE_PT, false, G711_PT_PCMA, on_key),
                     0);
    assert_int_equal(media_stream_play(fx->s, (struct sockaddr *)&fx->tx_addr,
                                       sizeof fx->tx_addr, G711_PT_PCMA,
                                       &longc, 1, 1), 0);
    struct event *ev = evtimer_new(fx->base, stop_later, fx);
    struct timeval tv = {0, 200000};
    evtimer_add(ev, &tv);
    run(fx, 99, 3000);
    event_free(ev);
    assert_int_equal(fx->done_calls, 1);
    assert_int_equal(fx->done_error, 0);
    assert_in_range(fx->figures.played_ms, 100, 1000);
    assert_int_equal(fx->figures.plays, 0);
    assert_int_equal(media_stop_play(fx->s), -1); /* over */
    /* the socket is connected to tx now: keys from there still come */
    press(fx, &seq, 800, 5);
    run(fx, 1, 2000);
    assert_int_equal(fx->n_keys, 1);
    assert_int_equal(fx->keys[0], '5');
    ssize_t len;
    while (n < 128 && (len = recv(fx->tx, pkts[n], sizeof pkts[n], 0)) > 0)
        n++;
    assert_true(n >= 5 && n < 60);
    uint32_t ssrc = mt_get32(pkts[n - 1] + 8), ts = mt_get32(pkts[n - 1] + 4);
    uint16_t last = mt_get16(pkts[n - 1] + 2);
    fx->done_calls = 0;
    assert_int_equal(media_stream_play(fx->s, (struct sockaddr *)&fx->tx_addr,
                                       sizeof fx->tx_addr, G711_PT_PCMA,
                                       &thenc, 1, 1), 0);
    run(fx, 99, 2000);
    assert_int_equal(fx->done_calls, 1);
    assert_int_equal(fx->figures.played_ms, 60);
    assert_int_equal(fx->figures.plays, 1);
    n = 0;
    while (n < 128 && (len = recv(fx->tx, pkts[n], sizeof pkts[n], 0)) > 0)
        n++;
    assert_int_equal(n, 3);
    assert_int_equal(mt_get32(pkts[0] + 8), ssrc);
    assert_int_equal(mt_get16(pkts[0] + 2), (uint16_t)(last + 1));
    assert_int_equal(pkts[0][1] & 0x80, 0x80);
    assert_true(mt_get32(pkts[0] + 4) - ts >= 160);
    prompt_clip_unref(longc);
    prompt_clip_unref(thenc);
}

/* Closing a listening stream with packets still coming: freed once its
 * thread lets go (ASan sees any use after free). */
static void test_close_listening(void **state)
{
    struct fixture *fx = *state;
    uint16_t seq = 1;
    assert_int_equal(media_keys(fx->s, TE_PT, false, G711_PT_PCMA, on_key),
                     0);
    for (int i = 0; i < 5; i++)
        press(fx, &seq, 800u * (unsigned)(i + 1), (uint8_t)i);
    media_stream_close(fx->s);
    fx->s = NULL;
    run(fx, 99, 100);
    /* the port pair is free again */
    char err[128];
    uint16_t port;
    fx->s = media_stream_open(fx->m, fx, on_done, &port, err, sizeof err);
    assert_non_null(fx->s);
    assert_int_equal(media_keys(fx->s, -1, false, G711_PT_PCMA, on_key),
                     -1); /* nothing to listen for */
}

/* Two streams listening on one media thread, one of them closed, over
 * and over at varying points of the thread's polling round: the other
 * still hears its keys each time (the thread's list of listening streams
 * and its place in it stay right when a stream leaves; ASan sees any read
 * of a stream after its STOP let it be freed). */
static void test_close_one_of_two(void **state)
{
    struct fixture *fx = *state;
    char err[128];
    uint16_t seq = 1, port2;

    for (int i = 0; i < 12; i++) {
        struct media_stream *s2 =
            media_stream_open(fx->m, fx, on_done, &port2, err, sizeof err);
        assert_non_null(s2);
        assert_int_equal(media_keys(fx->s, TE_PT, false, G711_PT_PCMA,
                                    on_key), 0);
        assert_int_equal(media_keys(s2, TE_PT, false, G711_PT_PCMA, on_key),
                         0);
        run(fx, 99, 7 + 4 * i); /* somewhere in the round */
        media_stream_close(fx->s);
        fx->s = NULL;
        run(fx, 99, 3 + 5 * (i % 3));
        struct sockaddr_in to2 = fx->to;
        to2.sin_port = htons(port2);
        fx->to = to2;
        fx->n_keys = 0;
        press(fx, &seq, 800u * (unsigned)(i + 1), (uint8_t)(i % 10));
        run(fx, 1, 2000);
        assert_int_equal(fx->n_keys, 1);
        assert_int_equal(fx->keys[0], '0' + i % 10);
        /* s2 becomes the fixture's stream; the pair s1 held is free again */
        fx->s = s2;
        fx->port = port2;
        media_stream_close(fx->s);
        fx->s = media_stream_open(fx->m, fx, on_done, &fx->port, err,
                                  sizeof err);
        assert_non_null(fx->s);
        fx->to.sin_port = htons(fx->port);
        run(fx, 99, 5);
    }
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_rfc4733),
        T(test_inband),
        T(test_stop_and_then),
        T(test_close_listening),
        T(test_close_one_of_two),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
