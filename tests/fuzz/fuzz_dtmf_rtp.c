/* fuzz_dtmf_rtp: libFuzzer harness for the RFC 4733 packet parser
 * (dtmf_rtp_parse) and the per-stream detector (dtmf_rtp_rx_packet). The
 * input's first byte is the negotiated payload type; the rest is a train
 * of packets, each a length byte and that many bytes, fed in order to one
 * detector. Beyond "no crash, no sanitizer report" it checks dtmf_rtp.h's
 * promises: a parsed packet has the asked payload type and the length it
 * came in; a key is reported only for a packet that parses, with event
 * 0-15, and is that event's key; and a packet fed twice in a row never
 * counts twice (a repeat is never a new key); dtmf_rtp_payload's
 * payload lies inside the packet. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dtmf_rtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int pt = data[0] & 0x7f;
    struct dtmf_rtp_rx rx;
    dtmf_rtp_rx_init(&rx, pt);

    size_t at = 1;
    while (at < size) {
        size_t len = data[at++];
        if (len > size - at)
            len = size - at;
        /* A copy of exactly len bytes, so ASan sees any read past it. */
        uint8_t *pkt = malloc(len > 0 ? len : 1);
        if (pkt == NULL)
            return 0;
        memcpy(pkt, data + at, len);
        at += len;

        struct dtmf_rtp_packet p;
        enum dtmf_rtp_result r = dtmf_rtp_parse(pkt, len, pt, &p);
        if (r == DTMF_RTP_OK && (p.pt != pt || len < 16 || p.volume > 63))
            abort();
        char key = dtmf_rtp_rx_packet(&rx, pkt, len);
        if (key != '\0'
            && (r != DTMF_RTP_OK || p.event > 15
                || key != dtmf_rtp_event_key(p.event)))
            abort();
        if (dtmf_rtp_rx_packet(&rx, pkt, len) != '\0')
            abort();
        /* the payload walk the media threads use: inside the packet, and
         * a packet that parses has one */
        size_t off, plen;
        bool walk = dtmf_rtp_payload(pkt, len, &off, &plen);
        if ((walk && (off > len || plen > len - off)) ||
            (r == DTMF_RTP_OK && !walk))
            abort();
        free(pkt);
    }
    return 0;
}
