/* fuzz_dtmf_inband: libFuzzer harness for the in-band detector's glue
 * (dtmf_inband_feed: G.711 decoding, frames of any size, the digits
 * callback filling a bounded buffer). The input's first byte picks the
 * codec, the buffer size (0-7) and the frame sizes; the rest is the audio.
 * SpanDSP itself is not instrumented. It checks that only keys 0-9 * # A-D
 * come out, never more than the buffer holds, and that the bytes past the
 * buffer stay untouched. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dtmf_inband.h"
#include "g711.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int pt = (data[0] & 1) ? G711_PT_PCMA : G711_PT_PCMU;
    size_t max = (data[0] >> 1) & 7;
    size_t step = 1 + (size_t)(data[0] >> 4) * 37;
    struct dtmf_inband *d = dtmf_inband_new(pt);
    if (d == NULL)
        abort();

    for (size_t at = 1; at < size; at += step) {
        size_t n = size - at < step ? size - at : step;
        char keys[16];
        memset(keys, 'x', sizeof keys);
        size_t got = dtmf_inband_feed(d, data + at, n, keys, max);
        if (got > max)
            abort();
        for (size_t i = 0; i < got; i++)
            if (strchr("0123456789*#ABCD", keys[i]) == NULL || keys[i] == 0)
                abort();
        for (size_t i = got; i < sizeof keys; i++)
            if (keys[i] != 'x')
                abort();
    }
    dtmf_inband_free(d);
    return 0;
}
