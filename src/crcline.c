/* crcline: "CRC32HEX JSON\n" lines of the ledger and the request_key file
 * (include/crcline.h). */
#include "crcline.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32.h"

char *crcline_format(json_t *rec, size_t *len)
{
    char *js = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    if (js == NULL)
        return NULL;
    size_t n = strlen(js);
    char *line = malloc(n + 11);
    if (line != NULL) {
        snprintf(line, n + 11, "%08" PRIx32 " %s\n", journal_crc32(0, js, n),
                 js);
        *len = n + 10;
    }
    free(js);
    return line;
}

json_t *crcline_parse(const char *line, size_t len)
{
    if (len < 10 || line[8] != ' ')
        return NULL;
    uint32_t crc = 0;
    for (int i = 0; i < 8; i++) {
        char c = line[i];
        unsigned v = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                                            : 16;
        if (v == 16)
            return NULL;
        crc = crc << 4 | v;
    }
    if (journal_crc32(0, line + 9, len - 9) != crc)
        return NULL;
    json_t *rec = json_loadb(line + 9, len - 9, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(rec)) {
        json_decref(rec);
        return NULL;
    }
    return rec;
}

int crcline_each(const char *buf, size_t len, unsigned *bad,
                 int (*fn)(json_t *rec, void *arg), void *arg)
{
    size_t pos = 0;
    *bad = 0;
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        if (nl == NULL) {
            (*bad)++; /* torn last line */
            break;
        }
        size_t line_len = (size_t)(nl - (buf + pos));
        json_t *rec = crcline_parse(buf + pos, line_len);
        int rc = rec ? fn(rec, arg) : 1;
        json_decref(rec);
        if (rc < 0)
            return -1;
        *bad += (unsigned)rc;
        pos += line_len + 1;
    }
    return 0;
}
