/* crcline: the line format of ctid's small append-only files (the call
 * ledger, calls.log, and the request_key file, reqkeys.log): one JSON
 * object per line, "CRC32HEX JSON\n", the CRC-32 (crc32.h) of the JSON
 * text. Pure; the caller owns what it gets. */
#ifndef CTID_CRCLINE_H
#define CTID_CRCLINE_H

#include <jansson.h>
#include <stddef.h>

/* rec (a reference it takes, NULL allowed) as one line, malloc'ed, its
 * length (with the '\n') in *len; NULL if rec is NULL or out of memory. */
char *crcline_format(json_t *rec, size_t *len);
/* One line (without '\n') back into its JSON object (new reference);
 * NULL when the CRC, the JSON or the shape is wrong. */
json_t *crcline_parse(const char *line, size_t len);
/* Reads a whole file's text, buf[0, len): calls fn(rec, arg) with each
 * line's record (crcline_parse; fn may not keep the reference). *bad
 * counts the lines skipped: damaged ones, a torn last line (no '\n'), and
 * those fn returns 1 for (a record it cannot use); fn returns 0 for one
 * it took. fn returning -1 stops the reading: then -1, else 0. */
int crcline_each(const char *buf, size_t len, unsigned *bad,
                 int (*fn)(json_t *rec, void *arg), void *arg);

#endif
