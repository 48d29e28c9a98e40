/* crc32: the CRC-32 of journal records, ledger lines and the seq mark
 * (src/crc32.c). Pure; no state. Its own header so that seqmark_, which
 * journal_ uses, needs nothing of journal.h. */
#ifndef CTID_CRC32_H
#define CTID_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32): crc is the running
 * value, 0 to start. */
uint32_t journal_crc32(uint32_t crc, const void *data, size_t len);

#endif
