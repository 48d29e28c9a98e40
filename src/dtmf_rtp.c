/* dtmf_rtp: owns the reading of RFC 4733 telephone-event packets and the
 * rule that makes one key press one key, however many packets carried it.
 *
 * A press is sent as a train of packets that all carry the event's start
 * as their RTP timestamp (§2.5): the first with the M bit, updates every
 * 50 ms or so with a growing duration, and the final packet with the E bit,
 * sent three times (§2.5.1.4). Any of them may be lost, repeated or
 * reordered. The rules, in order:
 *
 *  - another SSRC than the last event's: a new stream, the event is new;
 *  - the same timestamp and code as the current event: the same event;
 *  - a timestamp shortly before the current one (less than
 *    DTMF_RTP_LATE_TS units back, with 32-bit wraparound): a late copy of
 *    an older event, ignored;
 *  - a new timestamp, the same code, no M bit, while the current event has
 *    not ended, starting where the current one's reported duration reaches:
 *    the next segment of a long event (§2.5.1.3, an event longer than the
 *    16-bit duration goes on with a new timestamp and no M bit), not new;
 *  - any other timestamp: a new event, with or without its M bit (the
 *    first packet may be the lost one).
 *
 * Sequence numbers are not used: the timestamp names the event, so their
 * wraparound does not matter. An event whose every packet arrives after a
 * later event's is late and not counted (not seen in practice: presses
 * are 100 ms or more apart).
 *
 * When to count. RFC 4733 lets a receiver act on an event as soon as it
 * starts (§2.5.2: it plays out an event from its first packet, before
 * knowing its length) or at its end. Counting at the end is what most
 * key-collecting applications do, as they are handed "digit ended"; it
 * waits for the press to be released (typically 100-250 ms, as long as
 * the caller holds the key) and for an E packet that may be lost with all
 * its copies. Counting at the first packet costs nothing in accuracy here:
 * the sender's telephone-event is already a decided key (no receiver-side
 * validation like an in-band detector's), no packet can withdraw it, and
 * stop_play wants the prompt stopped at once. So a key counts when the
 * first packet of its event arrives, whichever packet that is. */
#include "dtmf_rtp.h"

#include <string.h>

#define DTMF_RTP_HEADER 12
#define DTMF_RTP_EVENT_LEN 4
/* How far back a timestamp may be and still be a late packet of an older
 * event rather than a new timeline: 65 s at 8 kHz, 10 s at 48 kHz. */
#define DTMF_RTP_LATE_TS (1u << 19)
/* How far from the end of the current segment the next one may start: a
 * packet interval at 48 kHz, with room. */
#define DTMF_RTP_SEGMENT_SLACK 1000u

bool dtmf_rtp_payload(const uint8_t *buf, size_t len, size_t *off_out,
                      size_t *len_out)
{
    if (buf == NULL || len < DTMF_RTP_HEADER || (buf[0] >> 6) != 2)
        return false;

    size_t off = DTMF_RTP_HEADER + 4u * (buf[0] & 0x0f);
    if (off > len)
        return false;
    if (buf[0] & 0x10) {
        if (len - off < 4)
            return false;
        size_t words = ((size_t)buf[off + 2] << 8) | buf[off + 3];
        off += 4;
        if (words > (len - off) / 4)
            return false;
        off += 4 * words;
    }
    size_t end = len;
    if (buf[0] & 0x20) {
        size_t pad = buf[len - 1];
        if (pad == 0 || pad > end - off)
            return false;
        end -= pad;
    }
    *off_out = off;
    *len_out = end - off;
    return true;
}

enum dtmf_rtp_result dtmf_rtp_parse(const uint8_t *buf, size_t len, int pt,
                                    struct dtmf_rtp_packet *out)
{
    size_t off, plen;
    if (!dtmf_rtp_payload(buf, len, &off, &plen))
        return DTMF_RTP_MALFORMED;
    if ((buf[1] & 0x7f) != pt)
        return DTMF_RTP_OTHER_PT;
    if (plen < DTMF_RTP_EVENT_LEN)
        return DTMF_RTP_MALFORMED;

    const uint8_t *e = buf + off;
    out->marker = (buf[1] & 0x80) != 0;
    out->pt = (uint8_t)(buf[1] & 0x7f);
    out->seq = (uint16_t)((buf[2] << 8) | buf[3]);
    out->ts = ((uint32_t)buf[4] << 24) | ((uint32_t)buf[5] << 16)
              | ((uint32_t)buf[6] << 8) | buf[7];
    out->ssrc = ((uint32_t)buf[8] << 24) | ((uint32_t)buf[9] << 16)
                | ((uint32_t)buf[10] << 8) | buf[11];
    out->event = e[0];
    out->end = (e[1] & 0x80) != 0;
    out->volume = e[1] & 0x3f;
    out->duration = (uint16_t)((e[2] << 8) | e[3]);
    return DTMF_RTP_OK;
}

char dtmf_rtp_event_key(uint8_t event)
{
    static const char keys[] = "0123456789*#ABCD";
    return event < 16 ? keys[event] : '\0';
}

void dtmf_rtp_rx_init(struct dtmf_rtp_rx *rx, int pt)
{
    memset(rx, 0, sizeof *rx);
    rx->pt = pt;
}

static void dtmf_rtp_rx_start(struct dtmf_rtp_rx *rx,
                              const struct dtmf_rtp_packet *p)
{
    rx->have = true;
    rx->ssrc = p->ssrc;
    rx->ts = p->ts;
    rx->event = p->event;
    rx->ended = p->end;
    rx->duration = p->duration;
}

/* The next segment of the current, long event (§2.5.1.3). */
static bool dtmf_rtp_rx_segment(const struct dtmf_rtp_rx *rx,
                                const struct dtmf_rtp_packet *p)
{
    uint32_t d = p->ts - rx->ts;
    return !p->marker && !rx->ended && p->event == rx->event
           && d + DTMF_RTP_SEGMENT_SLACK >= rx->duration
           && d <= rx->duration + DTMF_RTP_SEGMENT_SLACK;
}

char dtmf_rtp_rx_packet(struct dtmf_rtp_rx *rx, const uint8_t *buf,
                        size_t len)
{
    struct dtmf_rtp_packet p;
    if (dtmf_rtp_parse(buf, len, rx->pt, &p) != DTMF_RTP_OK)
        return '\0';
    char key = dtmf_rtp_event_key(p.event);
    if (key == '\0')
        return '\0';

    if (rx->have && p.ssrc == rx->ssrc) {
        if (p.ts == rx->ts && p.event == rx->event) {
            rx->ended = rx->ended || p.end;
            if (p.duration > rx->duration)
                rx->duration = p.duration;
            return '\0';
        }
        uint32_t back = rx->ts - p.ts;
        if (back != 0 && back < DTMF_RTP_LATE_TS)
            return '\0';
        if (dtmf_rtp_rx_segment(rx, &p)) {
            dtmf_rtp_rx_start(rx, &p);
            return '\0';
        }
    }
    dtmf_rtp_rx_start(rx, &p);
    return key;
}
