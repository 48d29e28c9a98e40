/* sipheaders: a gateway's `headers` key, the extra SIP headers ctid adds
 * to that trunk's INVITEs: "Name: value; Name2: value". Parsed once when
 * the config is read (a bad list refuses the config), written again as
 * the CRLF-separated lines SIPTAG_HEADER_STR takes when an INVITE is
 * built. Pure: no I/O, no allocation; the caller owns every buffer. Any
 * one thread. */
#ifndef CTID_SIPHEADERS_H
#define CTID_SIPHEADERS_H

#include <stdbool.h>
#include <stddef.h>

#define SIPHEADERS_MAX 16          /* headers per list */
#define SIPHEADERS_NAME_MAX 64     /* bytes of a name, with the NUL */
#define SIPHEADERS_VALUE_MAX 512   /* bytes of a value, with the NUL */

struct sipheader {
    char name[SIPHEADERS_NAME_MAX];
    char value[SIPHEADERS_VALUE_MAX];
};

struct sipheaders {
    struct sipheader h[SIPHEADERS_MAX];
    size_t n;
};

/* Parses "Name: value; Name2: value". A ';' ends a header only where a
 * new "token:" follows it, so values keep their own ';' parameters
 * ("X-Uri: <sip:a@b;user=phone>"). Names must be RFC 3261 tokens of more
 * than one character (compact forms name headers ctid writes), not one
 * of the headers ctid writes itself (sipheaders_owned); values must be
 * non-empty and free of CR, LF and other control characters. "" is an
 * empty list. Returns 0, or -1 with "reason" in err (out undefined). */
int sipheaders_parse(const char *text, struct sipheaders *out, char *err,
                     size_t errlen);
/* Is name (any case) a header ctid writes itself, which `headers` may
 * not add (Via, From, To, Call-ID, Contact, Route, P-Asserted-Identity,
 * Privacy, ...)? */
bool sipheaders_owned(const char *name);
/* "Name: value\r\nName2: value2" into buf (no trailing CRLF; "" for an
 * empty list). Returns the length it needs, as snprintf does. */
size_t sipheaders_format(const struct sipheaders *hs, char *buf, size_t len);

#endif
