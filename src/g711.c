/* g711: ITU-T G.711 A-law and mu-law for 16-bit linear samples.
 *
 * The encoders must match sox byte for byte (integration tests compare RTP
 * payloads with `sox -D ... -t al/-t ul`). sox rounds the 16-bit sample to
 * the codec's precision (13 bits for A-law, 14 for mu-law), clipping at the
 * top, and then encodes with the classic Sun g711.c segment search; a plain
 * `>> 3` / `>> 2` truncation differs from it for about half the inputs. */

#include "g711.h"

/* Upper bounds of the eight segments, in the 13-bit (A-law) and 14-bit
 * biased (mu-law) domains. */
static const int16_t g711_alaw_seg_end[8] = {0x1F,  0x3F,  0x7F,  0xFF,
                                             0x1FF, 0x3FF, 0x7FF, 0xFFF};
static const int16_t g711_ulaw_seg_end[8] = {0x3F,  0x7F,  0xFF,  0x1FF,
                                             0x3FF, 0x7FF, 0xFFF, 0x1FFF};

#define G711_ULAW_BIAS 0x21 /* 33 in the 14-bit domain, 0x84 in 16 bits */
#define G711_ULAW_CLIP 8159

static int g711_segment(int val, const int16_t *seg_end)
{
    int seg;

    for (seg = 0; seg < 8; seg++)
        if (val <= seg_end[seg])
            return seg;
    return 8;
}

/* Rounds a 16-bit sample to `bits` bits (half up), clipping at the top as
 * sox does. The offset keeps the shift on a non-negative value. */
static int g711_round(int16_t sample, int bits)
{
    int shift = 16 - bits;
    int v = ((int)sample + 32768 + (1 << (shift - 1))) >> shift;
    int max = (1 << (bits - 1)) - 1;

    v -= 1 << (bits - 1);
    return v > max ? max : v;
}

uint8_t g711_alaw_encode(int16_t sample)
{
    int pcm = g711_round(sample, 13);
    int mask, seg;
    uint8_t aval;

    if (pcm >= 0) {
        mask = 0xD5; /* sign bit set, even bits inverted */
    } else {
        mask = 0x55;
        pcm = -pcm - 1;
    }
    seg = g711_segment(pcm, g711_alaw_seg_end);
    if (seg >= 8)
        return (uint8_t)(0x7F ^ mask);
    aval = (uint8_t)(seg << 4);
    if (seg < 2)
        aval |= (pcm >> 1) & 0x0F;
    else
        aval |= (pcm >> seg) & 0x0F;
    return (uint8_t)(aval ^ mask);
}

uint8_t g711_ulaw_encode(int16_t sample)
{
    int pcm = g711_round(sample, 14);
    int mask, seg;

    if (pcm < 0) {
        pcm = -pcm;
        mask = 0x7F;
    } else {
        mask = 0xFF;
    }
    if (pcm > G711_ULAW_CLIP)
        pcm = G711_ULAW_CLIP;
    pcm += G711_ULAW_BIAS;
    seg = g711_segment(pcm, g711_ulaw_seg_end);
    if (seg >= 8)
        return (uint8_t)(0x7F ^ mask);
    return (uint8_t)(((seg << 4) | ((pcm >> (seg + 1)) & 0x0F)) ^ mask);
}

int16_t g711_alaw_decode(uint8_t code)
{
    int a = code ^ 0x55;
    int t = (a & 0x0F) << 4;
    int seg = (a & 0x70) >> 4;

    if (seg == 0)
        t += 8;
    else if (seg == 1)
        t += 0x108;
    else
        t = (t + 0x108) << (seg - 1);
    return (int16_t)((a & 0x80) ? t : -t);
}

int16_t g711_ulaw_decode(uint8_t code)
{
    int u = ~code & 0xFF;
    int t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4);

    return (int16_t)((u & 0x80) ? 0x84 - t : t - 0x84);
}
