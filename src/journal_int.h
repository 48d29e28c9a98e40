/* journal_int: the journal's record format, private to journal.c and
 * journal_record.c. */
#ifndef CTID_JOURNAL_INT_H
#define CTID_JOURNAL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "journal.h"

#define JOURNAL_MAGIC 0x314a5443u /* "CTJ1" little-endian */
/* Seqs go out as JSON integers (json_int_t, int64) and come back as
 * since: a segment name or record seq above this is damage, and taking it
 * would let the next seq wrap to 0. */
#define JOURNAL_SEQ_MAX ((uint64_t)INT64_MAX)

/* Writes the whole record (header, CRC, payload) for seq into rec, which
 * holds JOURNAL_HEADER_BYTES + len bytes. */
void journal_record_encode(unsigned char *rec, uint64_t seq, int64_t now,
                           const char *data, size_t len);
/* Reads the record at off of fd (file size size). Returns 1 with *buf
 * (malloc'ed payload) filled, 0 at a clean end of file, -2 for a torn or
 * corrupt record (why says which), -1 on an I/O error. */
int journal_record_read(int fd, uint64_t off, uint64_t size, uint64_t *seq,
                        int64_t *t, char **buf, size_t *len, const char **why);

#endif
