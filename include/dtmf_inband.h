/* dtmf_inband: keys heard as tones in a call's received G.711 audio
 * (issue 14's keys.inband, for gateways that send neither RFC 4733 nor
 * INFO). The detector is SpanDSP's dtmf_rx.
 *
 * Ownership: dtmf_inband_new allocates one detector per received stream;
 * its owner frees it with dtmf_inband_free (the only destructor). It
 * keeps state between frames, so one stream's frames go to one detector,
 * in order, from one thread at a time; detectors share nothing, so
 * different threads may each run their own. A stream listening with
 * keys.inband has one, run by its media thread (media_keys). */
#ifndef CTID_DTMF_INBAND_H
#define CTID_DTMF_INBAND_H

#include <stddef.h>
#include <stdint.h>

struct dtmf_inband;

/* pt: G711_PT_PCMU (0) or G711_PT_PCMA (8), the codec of the audio fed.
 * NULL for any other pt or when out of memory. */
struct dtmf_inband *dtmf_inband_new(int pt);
void dtmf_inband_free(struct dtmf_inband *d);

/* Feeds n bytes of G.711 payload (any number: frames need not be 20 ms).
 * Writes the keys whose tones were recognised ('0'-'9', '*', '#',
 * 'A'-'D'), in order, to keys (at most max of them; more in one call are
 * dropped and counted, dtmf_inband_dropped) and returns how many. A tone
 * counts once however long it is held. */
size_t dtmf_inband_feed(struct dtmf_inband *d, const uint8_t *g711, size_t n,
                        char *keys, size_t max);

/* Keys dropped because a call's keys buffer was full. */
size_t dtmf_inband_dropped(const struct dtmf_inband *d);

#endif
