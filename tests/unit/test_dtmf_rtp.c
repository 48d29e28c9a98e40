/* Unit tests of dtmf_rtp: the RTP packet parser and the rule that an
 * RFC 4733 event counts once (end bit and its three redundant packets,
 * marker, timestamp, losses, wraparound, reordering). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "dtmf_rtp.h"

#define PT 101
#define SSRC 0x11223344u

struct pkt {
    bool marker;
    uint16_t seq;
    uint32_t ts;
    uint8_t event;
    bool end;
    uint16_t duration;
};

/* A plain 16-byte telephone-event packet. */
static size_t make(uint8_t *b, const struct pkt *p, uint32_t ssrc, int pt)
{
    b[0] = 0x80;
    b[1] = (uint8_t)((p->marker ? 0x80 : 0) | (pt & 0x7f));
    b[2] = (uint8_t)(p->seq >> 8);
    b[3] = (uint8_t)p->seq;
    b[4] = (uint8_t)(p->ts >> 24);
    b[5] = (uint8_t)(p->ts >> 16);
    b[6] = (uint8_t)(p->ts >> 8);
    b[7] = (uint8_t)p->ts;
    b[8] = (uint8_t)(ssrc >> 24);
    b[9] = (uint8_t)(ssrc >> 16);
    b[10] = (uint8_t)(ssrc >> 8);
    b[11] = (uint8_t)ssrc;
    b[12] = p->event;
    b[13] = (uint8_t)((p->end ? 0x80 : 0) | 10);
    b[14] = (uint8_t)(p->duration >> 8);
    b[15] = (uint8_t)p->duration;
    return 16;
}

static char feed(struct dtmf_rtp_rx *rx, struct pkt p)
{
    uint8_t b[16];
    size_t n = make(b, &p, SSRC, PT);
    return dtmf_rtp_rx_packet(rx, b, n);
}

/* Feeds packets, returns the keys reported, in order. */
static void feed_all(struct dtmf_rtp_rx *rx, const struct pkt *p, size_t n,
                     char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = feed(rx, p[i]);
        if (c != '\0')
            out[k++] = c;
    }
    out[k] = '\0';
}

/* One press of event ev at ts, seqs from seq: marker, 3 updates, 3 ends. */
static size_t press(struct pkt *p, uint16_t seq, uint32_t ts, uint8_t ev)
{
    static const uint16_t dur[] = {160, 320, 480, 640, 800, 800, 800};
    for (size_t i = 0; i < 7; i++)
        p[i] = (struct pkt){.marker = i == 0, .seq = (uint16_t)(seq + i),
                            .ts = ts, .event = ev, .end = i >= 4,
                            .duration = dur[i]};
    return 7;
}

static void test_parse_fields(void **state)
{
    (void)state;
    uint8_t b[16];
    struct pkt in = {.marker = true, .seq = 0xBEEF, .ts = 0xA1B2C3D4,
                     .event = 11, .end = true, .duration = 0x1234};
    size_t n = make(b, &in, SSRC, PT);
    struct dtmf_rtp_packet p;
    assert_int_equal(dtmf_rtp_parse(b, n, PT, &p), DTMF_RTP_OK);
    assert_true(p.marker);
    assert_int_equal(p.pt, PT);
    assert_int_equal(p.seq, 0xBEEF);
    assert_int_equal(p.ts, 0xA1B2C3D4);
    assert_int_equal(p.ssrc, SSRC);
    assert_int_equal(p.event, 11);
    assert_true(p.end);
    assert_int_equal(p.volume, 10);
    assert_int_equal(p.duration, 0x1234);
    assert_int_equal(dtmf_rtp_event_key(p.event), '#');

    /* The R bit is ignored, volume is 6 bits. */
    b[13] = 0x7f;
    assert_int_equal(dtmf_rtp_parse(b, n, PT, &p), DTMF_RTP_OK);
    assert_false(p.end);
    assert_int_equal(p.volume, 63);
}

static void test_parse_csrc_ext_padding(void **state)
{
    (void)state;
    uint8_t b[64];
    struct pkt in = {.seq = 1, .ts = 1000, .event = 5, .duration = 160};
    make(b, &in, SSRC, PT);
    uint8_t ev[4];
    memcpy(ev, b + 12, 4);

    /* CC = 2, X with 1 word, P with 3 bytes of padding. */
    b[0] = 0x80 | 0x20 | 0x10 | 2;
    size_t off = 12;
    memset(b + off, 0xCC, 8);       /* two CSRCs */
    off += 8;
    b[off] = 0xBE;                   /* extension profile */
    b[off + 1] = 0xDE;
    b[off + 2] = 0;
    b[off + 3] = 1;                  /* one 32-bit word */
    memset(b + off + 4, 0xEE, 4);
    off += 8;
    memcpy(b + off, ev, 4);
    off += 4;
    b[off] = 0;
    b[off + 1] = 0;
    b[off + 2] = 3;                  /* padding count */
    off += 3;

    struct dtmf_rtp_packet p;
    assert_int_equal(dtmf_rtp_parse(b, off, PT, &p), DTMF_RTP_OK);
    assert_int_equal(p.event, 5);
    assert_int_equal(p.duration, 160);
    assert_int_equal(p.ts, 1000);

    /* Padding that eats into the event. */
    b[off - 1] = 4;
    assert_int_equal(dtmf_rtp_parse(b, off, PT, &p), DTMF_RTP_MALFORMED);
    b[off - 1] = 0;
    assert_int_equal(dtmf_rtp_parse(b, off, PT, &p), DTMF_RTP_MALFORMED);
    b[off - 1] = 200;
    assert_int_equal(dtmf_rtp_parse(b, off, PT, &p), DTMF_RTP_MALFORMED);
    b[off - 1] = 3;

    /* An extension longer than the packet. */
    b[12 + 8 + 3] = 200;
    assert_int_equal(dtmf_rtp_parse(b, off, PT, &p), DTMF_RTP_MALFORMED);
    b[12 + 8 + 2] = 0xff;
    b[12 + 8 + 3] = 0xff;
    assert_int_equal(dtmf_rtp_parse(b, off, PT, &p), DTMF_RTP_MALFORMED);
    b[12 + 8 + 2] = 0;
    b[12 + 8 + 3] = 1;

    /* A CSRC count past the end. */
    b[0] = 0x80 | 15;
    assert_int_equal(dtmf_rtp_parse(b, 40, PT, &p), DTMF_RTP_MALFORMED);
}

static void test_parse_refused(void **state)
{
    (void)state;
    uint8_t b[16];
    struct pkt in = {.seq = 1, .ts = 1000, .event = 1, .duration = 160};
    size_t n = make(b, &in, SSRC, PT);
    struct dtmf_rtp_packet p;

    for (size_t len = 0; len < 16; len++)
        assert_int_equal(dtmf_rtp_parse(b, len, PT, &p), DTMF_RTP_MALFORMED);
    assert_int_equal(dtmf_rtp_parse(NULL, 0, PT, &p), DTMF_RTP_MALFORMED);
    /* Another payload type, however short its payload (PCMU, CN). */
    assert_int_equal(dtmf_rtp_parse(b, n, 96, &p), DTMF_RTP_OTHER_PT);
    b[1] = 0;
    assert_int_equal(dtmf_rtp_parse(b, 13, PT, &p), DTMF_RTP_OTHER_PT);
    b[1] = PT;
    /* RTP version 1 and 3. */
    b[0] = 0x40;
    assert_int_equal(dtmf_rtp_parse(b, n, PT, &p), DTMF_RTP_MALFORMED);
    b[0] = 0xC0;
    assert_int_equal(dtmf_rtp_parse(b, n, PT, &p), DTMF_RTP_MALFORMED);
    b[0] = 0x80;
    /* More than one event's bytes: the first is read. */
    uint8_t big[24];
    memcpy(big, b, 16);
    memset(big + 16, 9, 8);
    assert_int_equal(dtmf_rtp_parse(big, sizeof big, PT, &p), DTMF_RTP_OK);
    assert_int_equal(p.event, 1);
}

/* The payload walk the media threads use for every packet they read. */
static void test_payload_walk(void **state)
{
    (void)state;
    uint8_t b[40] = {0x80, 8};
    size_t off, len;
    assert_true(dtmf_rtp_payload(b, 40, &off, &len));
    assert_int_equal(off, 12);
    assert_int_equal(len, 28);
    b[0] = 0x82; /* two CSRCs */
    assert_true(dtmf_rtp_payload(b, 40, &off, &len));
    assert_int_equal(off, 20);
    b[0] = 0x90; /* an extension of one word */
    b[15] = 1;
    assert_true(dtmf_rtp_payload(b, 40, &off, &len));
    assert_int_equal(off, 20);
    assert_int_equal(len, 20);
    b[0] = 0xb0; /* and 4 bytes of padding */
    b[39] = 4;
    assert_true(dtmf_rtp_payload(b, 40, &off, &len));
    assert_int_equal(len, 16);
    b[39] = 21; /* padding into the extension */
    assert_false(dtmf_rtp_payload(b, 40, &off, &len));
    b[0] = 0x8f; /* 15 CSRCs in 40 bytes */
    assert_false(dtmf_rtp_payload(b, 40, &off, &len));
    b[0] = 0x90;
    b[14] = 0xff; /* an extension past the end */
    assert_false(dtmf_rtp_payload(b, 40, &off, &len));
    b[0] = 0x40; /* version 1 */
    assert_false(dtmf_rtp_payload(b, 40, &off, &len));
    assert_false(dtmf_rtp_payload(b, 11, &off, &len));
}

static void test_event_keys(void **state)
{
    (void)state;
    const char *keys = "0123456789*#ABCD";
    for (uint8_t e = 0; e < 16; e++)
        assert_int_equal(dtmf_rtp_event_key(e), keys[e]);
    for (unsigned e = 16; e < 256; e++)
        assert_int_equal(dtmf_rtp_event_key((uint8_t)e), '\0');
}

/* A whole press: counted at its first packet, never again (§2.5: the
 * timestamp names the event; the E bit and its three copies). */
static void test_one_press_once(void **state)
{
    (void)state;
    struct dtmf_rtp_rx rx;
    dtmf_rtp_rx_init(&rx, PT);
    struct pkt p[7];
    press(p, 100, 8000, 1);
    assert_int_equal(feed(&rx, p[0]), '1');
    for (size_t i = 1; i < 7; i++)
        assert_int_equal(feed(&rx, p[i]), '\0');
    /* A fourth, late copy of the end packet. */
    assert_int_equal(feed(&rx, p[6]), '\0');
}

/* Only the three end packets arrive: the event counts once, at the first
 * of them. */
static void test_end_packets_only(void **state)
{
    (void)state;
    struct dtmf_rtp_rx rx;
    dtmf_rtp_rx_init(&rx, PT);
    struct pkt p[7];
    press(p, 100, 8000, 9);
    char out[8];
    feed_all(&rx, p + 4, 3, out);
    assert_string_equal(out, "9");
}

/* The first packet (the one with the marker) is lost. */
static void test_first_packet_lost(void **state)
{
    (void)state;
    struct dtmf_rtp_rx rx;
    dtmf_rtp_rx_init(&rx, PT);
    struct pkt p[7];
    press(p, 100, 8000, 10);
    char out[8];
    feed_all(&rx, p + 1, 6, out);
    assert_string_equal(out, "*");
}

/* A repeated marker packet is the same event: same timestamp. */
static void test_marker_repeated(void **state)
{
    (void)state;
    struct dtmf_rtp_rx rx;
    dtmf_rtp_rx_init(&rx, PT);
    struct pkt p[7];
    press(p, 100, 8000, 3);
    struct pkt seq[] = {p[0], p[0], p[1], p[0], p[4], p[5], p[6]};
    char out[8];
    feed_all(&rx, seq, 7, out);
    assert_string_equal(out, "3");
}

/* The same key twice in a row, and another key right after: each new
 * timestamp is a new event, marker or not. */
static void test_new_timestamp_new_event(void **state)
{
    (void)state;
    struct dtmf_rtp_rx rx;
    dtmf_rtp_rx_init(&rx, PT);
    struct pkt p[28];
    size_t n = press(p, 100, 8000, 1);
    n += press(p + n, 107, 9600, 1);
    n += press(p + n, 114, 11200, 12);
    n += press(p + n, 121, 12800, 1);
    p[21].marker = false;   /* the last press's marker packet, unmarked */
    char out[8];
    feed_all(&rx, p, n, out);
    assert_string_equal(out, "11A1");

    /* Both the end packets of one press and the first packet of the next
     * lost: the next (same key, later timestamp) still counts. */
    dtmf_rtp_rx_init(&rx, PT);
    struct pkt q[14];
    press(q, 1, 1000, 5);
    press(q + 7, 8, 5000, 5);
    struct pkt seq[] = {q[0], q[1], q[2], q[8], q[9], q[11], q[12]};
    feed_all(&rx, seq, 7, out);
    assert_string_equal(out, "55");
}

/* Timestamps and sequence numbers wrap around. */
static void test_wraparound(void **state)
{
    (void)state;
    struct dtmf_rtp_rx rx;
    dtmf_rtp_rx_init(&rx, PT);
    struct pkt p[21];
    size_t n = press(p, 65533, 0xFFFFFE00u, 7);   /* seqs wrap inside */
    n += press(p + n, 4, 0x00000400u, 8);         /* ts wrapped */
    n += press(p + n, 11, 0x00000C00u, 7);
    char out[8];
    feed_all(&rx, p, n, out);
    assert_string_equal(out, "787");
    /* A late end packet of the event before the wrap: older, ignored. */
    assert_int_equal(feed(&rx, p[6]), '\0');
    assert_int_equal(feed(&rx, p[13]), '\0');
}

/* Reordered: a copy of an earlier event's packet after the next event
 * began is late, not new. */
static void test_reordered(void **state)
{
    (void)state;
    struct dtmf_rtp_rx rx;
    dtmf_rtp_rx_init(&rx, PT);
    struct pkt a[7], b[7];
    press(a, 10, 16000, 2);
    press(b, 17, 17600, 4);
    struct pkt seq[] = {a[0], a[2], a[1], a[4], b[0], a[5], a[6], b[1],
                        a[3], b[4], b[5], b[4], b[6], a[0]};
    char out[8];
    feed_all(&rx, seq, sizeof seq / sizeof seq[0], out);
    assert_string_equal(out, "24");
}

/* An event longer than the 16-bit duration goes on as a new segment: new
 * timestamp where the last one ended, no marker (§2.5.1.3). */
static void test_long_event_segments(void **state)
{
    (void)state;
    struct dtmf_rtp_rx rx;
    dtmf_rtp_rx_init(&rx, PT);
    uint32_t t = 1000;
    struct pkt seq[] = {
        {.marker = true, .seq = 1, .ts = t, .event = 0, .duration = 400},
        {.seq = 2, .ts = t, .event = 0, .duration = 65000},
        {.seq = 3, .ts = t, .event = 0, .duration = 0xFFFF},
        {.seq = 4, .ts = t + 0xFFFF, .event = 0, .duration = 400},
        {.seq = 5, .ts = t + 0xFFFF, .event = 0, .duration = 0xFFFF},
        /* The last packet of segment 2 lost: segment 3 is still one. */
        {.seq = 7, .ts = t + 2 * 0xFFFF, .event = 0, .duration = 800},
        {.seq = 8, .ts = t + 2 * 0xFFFF, .event = 0, .end = true,
         .duration = 1600},
        {.seq = 9, .ts = t + 2 * 0xFFFF, .event = 0, .end = true,
         .duration = 1600},
        /* A late packet of segment 1. */
        {.seq = 2, .ts = t, .event = 0, .duration = 65000},
    };
    char out[8];
    feed_all(&rx, seq, sizeof seq / sizeof seq[0], out);
    assert_string_equal(out, "0");

    /* After the end, the same key at the next segment's place is a new
     * press; so is a marked packet there before the end. */
    assert_int_equal(feed(&rx, (struct pkt){.seq = 10,
                                            .ts = t + 2 * 0xFFFF + 1600,
                                            .event = 0, .duration = 160}),
                     '0');
    assert_int_equal(feed(&rx, (struct pkt){.marker = true, .seq = 11,
                                            .ts = t + 2 * 0xFFFF + 1760,
                                            .event = 0, .duration = 160}),
                     '0');
}

/* Events above 15 (flash, tones) are not keys and leave the detector as
 * it was. */
static void test_other_events_ignored(void **state)
{
    (void)state;
    struct dtmf_rtp_rx rx;
    dtmf_rtp_rx_init(&rx, PT);
    struct pkt p[7];
    press(p, 1, 8000, 6);
    assert_int_equal(feed(&rx, p[0]), '6');
    assert_int_equal(feed(&rx, (struct pkt){.marker = true, .seq = 2,
                                            .ts = 9000, .event = 16,
                                            .duration = 160}), '\0');
    assert_int_equal(feed(&rx, p[5]), '\0');
    /* Another payload type and garbage change nothing either. */
    uint8_t b[16];
    struct pkt q = {.seq = 3, .ts = 20000, .event = 7};
    size_t n = make(b, &q, SSRC, 0);
    assert_int_equal(dtmf_rtp_rx_packet(&rx, b, n), '\0');
    assert_int_equal(dtmf_rtp_rx_packet(&rx, b, 5), '\0');
    assert_int_equal(feed(&rx, p[6]), '\0');
}

/* A new SSRC is a new stream: its first event counts even at the same
 * timestamp. */
static void test_new_ssrc(void **state)
{
    (void)state;
    struct dtmf_rtp_rx rx;
    dtmf_rtp_rx_init(&rx, PT);
    struct pkt p = {.marker = true, .seq = 1, .ts = 8000, .event = 1,
                    .duration = 160};
    uint8_t b[16];
    size_t n = make(b, &p, SSRC, PT);
    assert_int_equal(dtmf_rtp_rx_packet(&rx, b, n), '1');
    assert_int_equal(dtmf_rtp_rx_packet(&rx, b, n), '\0');
    n = make(b, &p, SSRC + 1, PT);
    assert_int_equal(dtmf_rtp_rx_packet(&rx, b, n), '1');
    assert_int_equal(dtmf_rtp_rx_packet(&rx, b, n), '\0');
}

/* A timestamp far behind the current one is a new timeline (a sender that
 * restarted its clock), not a late packet. */
static void test_timeline_reset(void **state)
{
    (void)state;
    struct dtmf_rtp_rx rx;
    dtmf_rtp_rx_init(&rx, PT);
    assert_int_equal(feed(&rx, (struct pkt){.marker = true, .seq = 1,
                                            .ts = 50000000, .event = 1}),
                     '1');
    assert_int_equal(feed(&rx, (struct pkt){.marker = true, .seq = 2,
                                            .ts = 49999000, .event = 2}),
                     '\0');
    assert_int_equal(feed(&rx, (struct pkt){.marker = true, .seq = 3,
                                            .ts = 1000, .event = 2}),
                     '2');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_parse_csrc_ext_padding),
        cmocka_unit_test(test_parse_refused),
        cmocka_unit_test(test_event_keys),
        cmocka_unit_test(test_payload_walk),
        cmocka_unit_test(test_one_press_once),
        cmocka_unit_test(test_end_packets_only),
        cmocka_unit_test(test_first_packet_lost),
        cmocka_unit_test(test_marker_repeated),
        cmocka_unit_test(test_new_timestamp_new_event),
        cmocka_unit_test(test_wraparound),
        cmocka_unit_test(test_reordered),
        cmocka_unit_test(test_long_event_segments),
        cmocka_unit_test(test_other_events_ignored),
        cmocka_unit_test(test_new_ssrc),
        cmocka_unit_test(test_timeline_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
