/* fuzz_sipheaders: libFuzzer harness for a gateway's `headers` parser
 * (sipheaders_parse) and its writer. The input, NUL-terminated, is
 * parsed; what parses is written as SIPTAG_HEADER_STR's lines, which
 * must hold no CR or LF but the separators, no owned header, and parse
 * again (as "; "-joined text) to the same list: the config is the only
 * way text reaches those headers, so a list that escapes its lines is a
 * header injection, and the harness aborts on it. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sipheaders.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(const struct sipheaders *hs)
{
    static char buf[SIPHEADERS_MAX * (SIPHEADERS_NAME_MAX +
                                      SIPHEADERS_VALUE_MAX + 4)];
    size_t n = sipheaders_format(hs, buf, sizeof buf);
    if (n >= sizeof buf)
        abort(); /* sized for the longest list */
    size_t lines = 1;
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\r' || buf[i] == '\n') {
            if (buf[i] != '\r' || buf[i + 1] != '\n')
                abort();
            lines++;
            i++;
        }
    if (hs->n > 0 && lines != hs->n)
        abort();
    for (size_t i = 0; i < hs->n; i++)
        if (sipheaders_owned(hs->h[i].name) || strlen(hs->h[i].name) < 2)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    static struct sipheaders hs, again;
    char err[256];
    if (sipheaders_parse(text, &hs, err, sizeof err) == 0) {
        fuzz_check(&hs);
        static char joined[sizeof hs.h * 2];
        size_t off = 0;
        joined[0] = '\0';
        for (size_t i = 0; i < hs.n; i++)
            off += (size_t)snprintf(joined + off, sizeof joined - off,
                                    "%s%s: %s", i ? "; " : "", hs.h[i].name,
                                    hs.h[i].value);
        if (sipheaders_parse(joined, &again, err, sizeof err) != 0 ||
            again.n != hs.n) {
            fprintf(stderr, "sipheaders round trip: \"%s\" -> %s\n", joined,
                    err);
            abort();
        }
        for (size_t i = 0; i < hs.n; i++)
            if (strcmp(hs.h[i].name, again.h[i].name) != 0 ||
                strcmp(hs.h[i].value, again.h[i].value) != 0)
                abort();
    }
    free(text);
    return 0;
}
