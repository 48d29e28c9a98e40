/* dtmf_rtp: RFC 4733 telephone-event packets (keys pressed during a call,
 * issue 14). A parser for one received RTP packet and a per-stream
 * detector that turns the packets of a key press into that key, once.
 *
 * Ownership: pure code, no allocation. A struct dtmf_rtp_rx is a plain
 * value owned by whoever embeds it (one per received RTP stream), used by
 * one thread at a time, released by simply dropping it. The media
 * threads run one per stream that listens for keys (media_keys). */
#ifndef CTID_DTMF_RTP_H
#define CTID_DTMF_RTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The header fields and the first event of a telephone-event packet. */
struct dtmf_rtp_packet {
    bool marker;        /* RTP M bit: the first packet of an event */
    uint8_t pt;
    uint16_t seq;
    uint32_t ts;        /* RTP timestamp: the event's start (§2.5) */
    uint32_t ssrc;
    uint8_t event;      /* 0-15: DTMF 0-9 * # A-D; others exist */
    bool end;           /* E bit */
    uint8_t volume;     /* 0..63, -dBm0 */
    uint16_t duration;  /* in RTP timestamp units since ts */
};

enum dtmf_rtp_result {
    DTMF_RTP_OK = 0,
    DTMF_RTP_OTHER_PT,  /* a valid RTP packet of another payload type */
    DTMF_RTP_MALFORMED, /* not RTP version 2, or lengths do not add up */
};

/* Parses one RTP packet (len bytes, as received) whose payload type must be
 * pt, the telephone-event type the SDP answer negotiated. Skips the CSRC
 * list, a header extension and padding; the payload must hold at least
 * the 4 bytes of one event (more are ignored: RFC 4733 puts one event in a
 * packet; redundancy comes as RFC 2198, another payload type). *out is
 * set only on DTMF_RTP_OK. */
enum dtmf_rtp_result dtmf_rtp_parse(const uint8_t *buf, size_t len, int pt,
                                    struct dtmf_rtp_packet *out);

/* Where an RTP packet's payload is: after the CSRC list and a header
 * extension, before padding (*off, *len). False when it is not RTP
 * version 2 or those lengths run past the len bytes received. The media
 * threads use it for every packet a listening stream reads. */
bool dtmf_rtp_payload(const uint8_t *buf, size_t len, size_t *off,
                      size_t *plen);

/* The key of DTMF event code 0-15 ('0'-'9', '*', '#', 'A'-'D'), or '\0'
 * for any other code. */
char dtmf_rtp_event_key(uint8_t event);

/* One received stream's detector. Counts each event once: when its first
 * packet arrives, whichever packet that is (see dtmf_rtp.c for why at the
 * start and not at the end). */
struct dtmf_rtp_rx {
    int pt;             /* the negotiated telephone-event payload type */
    bool have;          /* an event was seen on this stream */
    uint32_t ssrc;      /* of the current event */
    uint32_t ts;        /* the current event's (segment's) timestamp */
    uint8_t event;
    bool ended;         /* an E packet of the current event came */
    uint32_t duration;  /* the longest duration it reported */
};

void dtmf_rtp_rx_init(struct dtmf_rtp_rx *rx, int pt);

/* Feeds one received packet. Returns the key when the packet is the first
 * one seen of a new DTMF event, '\0' otherwise: another payload type, a
 * malformed packet, an event code outside 0-15, or one more packet (a
 * repeat, an update, one of the redundant end packets, a late copy, a
 * later segment of a long event) of an event already counted. */
char dtmf_rtp_rx_packet(struct dtmf_rtp_rx *rx, const uint8_t *buf,
                        size_t len);

#endif
