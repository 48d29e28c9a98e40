/* fuzz_uri: libFuzzer harness for the SIP URI parser (uri_parse) and its
 * inverse (uri_format). The input, NUL-terminated, is parsed; what parses
 * is formatted and the formatted text parsed again, which must give the
 * very same struct uri: call.c puts uri_format's output into SIP, so a
 * URI that does not survive the round trip is a bug, and the harness
 * aborts on it. uri_user_valid is exercised through uri_parse. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    struct uri u;
    char err[128];
    if (uri_parse(text, &u, err, sizeof err) == 0) {
        /* user@[host]:port at its longest, plus the NUL. */
        char buf[sizeof u.user + sizeof u.host + 16];
        int n = uri_format(&u, buf, sizeof buf);
        if (n < 0 || (size_t)n >= sizeof buf)
            abort();  /* truncated: buf is sized for any valid URI */

        struct uri again;
        if (uri_parse(buf, &again, err, sizeof err) != 0) {
            fprintf(stderr, "uri round trip: \"%s\" refused: %s\n", buf, err);
            abort();
        }
        if (strcmp(u.user, again.user) != 0 || strcmp(u.host, again.host) != 0
            || u.port != again.port) {
            fprintf(stderr, "uri round trip: \"%s\" parsed differently\n",
                    buf);
            abort();
        }
    }
    free(text);
    return 0;
}
