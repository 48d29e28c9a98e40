/* fuzz_dtmf_info: libFuzzer harness for the key of a SIP INFO body
 * (dtmf_info_parse). The input's first byte picks the Content-Type: one
 * of the two DTMF types (with case and parameters varied) or, for the
 * rest, the input's bytes up to its first '\n' as the type itself; the
 * remaining bytes are the body, passed as an exact-length copy with no
 * terminator so ASan sees any read past it. It checks dtmf_info.h's
 * promises: a key is one of 0-9 * # A-D, every other result has a reason,
 * and the result does not depend on bytes after the body. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dtmf_info.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const types[] = {
    "application/dtmf-relay",
    "application/dtmf",
    "Application/DTMF-Relay; charset=utf-8",
    " application/dtmf ;x",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t pick = data[0] % 8;
    const uint8_t *rest = data + 1;
    size_t n = size - 1;

    char type[DTMF_INFO_MAX_TYPE * 2];
    const char *ctype = NULL;
    if (pick < 4) {
        ctype = types[pick];
    } else if (pick < 7) {
        const uint8_t *nl = memchr(rest, '\n', n);
        size_t tl = nl != NULL ? (size_t)(nl - rest) : n;
        if (tl >= sizeof type)
            tl = sizeof type - 1;
        memcpy(type, rest, tl);
        type[tl] = '\0';
        ctype = type;
        if (nl != NULL) {
            n -= (size_t)(nl - rest) + 1;
            rest = nl + 1;
        } else {
            n = 0;
        }
    }

    char *body = malloc(n > 0 ? n : 1);
    if (body == NULL)
        return 0;
    memcpy(body, rest, n);
    char key = 0;
    const char *why = NULL;
    enum dtmf_info_result r = dtmf_info_parse(ctype, body, n, &key, &why);
    if (why == NULL)
        abort();
    if (r == DTMF_INFO_KEY
        && (key == '\0' || strchr("0123456789*#ABCD", key) == NULL))
        abort();
    if (r == DTMF_INFO_BAD && why[0] == '\0')
        abort();
    if (r != DTMF_INFO_KEY && r != DTMF_INFO_BAD && r != DTMF_INFO_NOT_DTMF)
        abort();
    free(body);
    return 0;
}
