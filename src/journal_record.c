/* journal_record: the journal's record format, encoding and reading one
 * record (src/journal_int.h). Pure but for pread. */
#include "journal_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void put32(unsigned char *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *b, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *b)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

static uint64_t get64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

/* Header: magic 0..4, len 4..8, seq 8..16, time 16..24, crc 24..28,
 * reserved 28..32. The CRC covers bytes 4..24 and the payload, so a
 * flipped seq or time is caught as well as a flipped payload byte. */
static uint32_t record_crc(const unsigned char *hdr, const char *data,
                           size_t len)
{
    return journal_crc32(journal_crc32(0, hdr + 4, 20), data, len);
}

int journal_record_read(int fd, uint64_t off, uint64_t size, uint64_t *seq,
                       int64_t *t, char **buf, size_t *len, const char **why)
{
    unsigned char hdr[JOURNAL_HEADER_BYTES];
    *buf = NULL;
    if (off == size)
        return 0;
    if (size - off < JOURNAL_HEADER_BYTES) {
        *why = "short header";
        return -2;
    }
    if (pread(fd, hdr, sizeof hdr, (off_t)off) != (ssize_t)sizeof hdr)
        return -1;
    uint32_t n = get32(hdr + 4);
    if (get32(hdr) != JOURNAL_MAGIC) {
        *why = "bad magic";
        return -2;
    }
    if (n > JOURNAL_MAX_RECORD || n > size - off - JOURNAL_HEADER_BYTES) {
        *why = "length past the end";
        return -2;
    }
    char *p = malloc(n ? n : 1);
    if (p == NULL)
        return -1;
    if (pread(fd, p, n, (off_t)(off + JOURNAL_HEADER_BYTES)) != (ssize_t)n) {
        free(p);
        return -1;
    }
    if (record_crc(hdr, p, n) != get32(hdr + 24)) {
        free(p);
        *why = "CRC mismatch";
        return -2;
    }
    *seq = get64(hdr + 8);
    if (*seq == 0 || *seq > JOURNAL_SEQ_MAX) {
        free(p);
        *why = "seq out of range";
        return -2;
    }
    *t = (int64_t)get64(hdr + 16);
    *buf = p;
    *len = n;
    return 1;
}

void journal_record_encode(unsigned char *rec, uint64_t seq, int64_t now,
                           const char *data, size_t len)
{
    put32(rec, JOURNAL_MAGIC);
    put32(rec + 4, (uint32_t)len);
    put64(rec + 8, seq);
    put64(rec + 16, (uint64_t)now);
    memcpy(rec + JOURNAL_HEADER_BYTES, data, len);
    put32(rec + 24, record_crc(rec, data, len));
    put32(rec + 28, 0);
}
