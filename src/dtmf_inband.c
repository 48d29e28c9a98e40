/* dtmf_inband: owns a stream's in-band DTMF detector: G.711 decoded with
 * g711.c, handed to SpanDSP's dtmf_rx, whose digits callback fills the
 * caller's buffer. DTMF detection (twist, talk-off from speech, tone
 * timing) is specialised DSP that a maintained library does better than
 * code we would write, so this module is only the glue. */
#include "dtmf_inband.h"

#include <spandsp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "g711.h"

/* Samples decoded per dtmf_rx call: 20 ms at 8 kHz. */
#define DTMF_INBAND_CHUNK 160

struct dtmf_inband {
    dtmf_rx_state_t *rx;  /* owned: dtmf_rx_free */
    bool alaw;
    char *out;            /* the current dtmf_inband_feed's buffer */
    size_t max;
    size_t n;
    size_t dropped;
};

static bool dtmf_inband_key(char c)
{
    return c != '\0' && strchr("0123456789*#ABCD", c) != NULL;
}

/* SpanDSP's digits callback, called from inside dtmf_rx. */
static void dtmf_inband_digits(void *arg, const char *digits, int len)
{
    struct dtmf_inband *d = arg;
    for (int i = 0; i < len; i++) {
        if (!dtmf_inband_key(digits[i]))
            continue;
        if (d->out != NULL && d->n < d->max)
            d->out[d->n++] = digits[i];
        else
            d->dropped++;
    }
}

struct dtmf_inband *dtmf_inband_new(int pt)
{
    if (pt != G711_PT_PCMU && pt != G711_PT_PCMA)
        return NULL;
    struct dtmf_inband *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->alaw = pt == G711_PT_PCMA;
    d->rx = dtmf_rx_init(NULL, dtmf_inband_digits, d);
    if (d->rx == NULL) {
        free(d);
        return NULL;
    }
    return d;
}

void dtmf_inband_free(struct dtmf_inband *d)
{
    if (d == NULL)
        return;
    dtmf_rx_free(d->rx);
    free(d);
}

size_t dtmf_inband_feed(struct dtmf_inband *d, const uint8_t *g711, size_t n,
                        char *keys, size_t max)
{
    d->out = keys;
    d->max = keys != NULL ? max : 0;
    d->n = 0;
    int16_t pcm[DTMF_INBAND_CHUNK];
    while (n > 0) {
        size_t k = n < DTMF_INBAND_CHUNK ? n : DTMF_INBAND_CHUNK;
        for (size_t i = 0; i < k; i++)
            pcm[i] = d->alaw ? g711_alaw_decode(g711[i])
                             : g711_ulaw_decode(g711[i]);
        dtmf_rx(d->rx, pcm, (int)k);
        g711 += k;
        n -= k;
    }
    size_t got = d->n;
    d->out = NULL;
    d->max = 0;
    d->n = 0;
    return got;
}

size_t dtmf_inband_dropped(const struct dtmf_inband *d)
{
    return d->dropped;
}
