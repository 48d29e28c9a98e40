/* g711: ITU-T G.711 A-law and mu-law, the two codecs ctid offers. */
#ifndef CTID_G711_H
#define CTID_G711_H

#include <stdint.h>

#define G711_PT_PCMU 0
#define G711_PT_PCMA 8
#define G711_ALAW_SILENCE 0xD5 /* encoding of sample 0 */
#define G711_ULAW_SILENCE 0xFF

uint8_t g711_alaw_encode(int16_t sample);
uint8_t g711_ulaw_encode(int16_t sample);
int16_t g711_alaw_decode(uint8_t code);
int16_t g711_ulaw_decode(uint8_t code);

#endif
