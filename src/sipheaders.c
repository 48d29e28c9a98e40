/* sipheaders: parses and writes a gateway's `headers` list (see
 * include/sipheaders.h): the split at ';' only before a new "token:",
 * the RFC 3261 token grammar of names, the refusal of control characters
 * in values, and the list of headers ctid writes itself and so never
 * takes from the configuration. Pure. */
#include "sipheaders.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Headers ctid (or sofia-sip on its behalf) writes in its requests: a
 * second copy from the configuration would contradict the first, or
 * break the dialog, the transaction or the caller's identity. */
static const char *const sipheaders_owned_names[] = {
    "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Max-Forwards",
    "Content-Type", "Content-Length", "Content-Encoding",
    "Content-Disposition", "Route", "Record-Route", "Privacy",
    "P-Asserted-Identity", "P-Preferred-Identity", "Allow", "Allow-Events",
    "Supported", "Require", "Proxy-Require", "Session-Expires", "Min-SE",
    "Authorization", "Proxy-Authorization", "WWW-Authenticate",
    "Proxy-Authenticate", "Expires", "User-Agent", "RSeq", "RAck",
    "Accept", "Event",
};

static int sipheaders_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int sipheaders_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err != NULL && errlen > 0)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* RFC 3261 token: alphanum and -.!%*_+`'~ (by hand: <ctype.h> follows the
 * locale). */
static bool sipheaders_is_token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c != '\0' && strchr("-.!%*_+`'~", c));
}

static bool sipheaders_is_space(char c)
{
    return c == ' ' || c == '\t';
}

static const char *sipheaders_skip_space(const char *p)
{
    while (sipheaders_is_space(*p))
        p++;
    return p;
}

bool sipheaders_owned(const char *name)
{
    size_t n = sizeof sipheaders_owned_names / sizeof sipheaders_owned_names[0];
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(name, sipheaders_owned_names[i]) == 0)
            return true;
    return false;
}

/* Does a new header ("token" then optional space then ':') start at p? */
static bool sipheaders_name_follows(const char *p)
{
    p = sipheaders_skip_space(p);
    const char *start = p;
    while (sipheaders_is_token_char(*p))
        p++;
    return p > start && *sipheaders_skip_space(p) == ':';
}

/* The end of the value starting at p: the end of the text, or a ';'
 * followed by a new header. */
static const char *sipheaders_value_end(const char *p)
{
    for (; *p != '\0'; p++)
        if (*p == ';' && sipheaders_name_follows(p + 1))
            return p;
    return p;
}

/* One "Name: value" at *pp into h; *pp moves past it (and its ';'). */
static int sipheaders_parse_one(const char **pp, struct sipheader *h,
                                char *err, size_t errlen)
{
    const char *p = sipheaders_skip_space(*pp);
    const char *name = p;
    while (sipheaders_is_token_char(*p))
        p++;
    size_t nlen = (size_t)(p - name);
    const char *colon = sipheaders_skip_space(p);
    if (nlen == 0 || *colon != ':')
        return sipheaders_fail(err, errlen,
                               "expected 'Name: value' at '%.40s'", name);
    if (nlen >= sizeof h->name)
        return sipheaders_fail(err, errlen, "header name '%.40s...' is longer "
                               "than %zu bytes", name, sizeof h->name - 1);
    memcpy(h->name, name, nlen);
    h->name[nlen] = '\0';
    if (nlen == 1)
        return sipheaders_fail(err, errlen, "'%s' is a compact header form; "
                               "write the full name", h->name);
    if (sipheaders_owned(h->name))
        return sipheaders_fail(err, errlen, "'%s' is a header ctid writes "
                               "itself", h->name);
    const char *value = sipheaders_skip_space(colon + 1);
    const char *end = sipheaders_value_end(value);
    *pp = *end == ';' ? end + 1 : end;
    while (end > value && sipheaders_is_space(end[-1]))
        end--;
    size_t vlen = (size_t)(end - value);
    if (vlen == 0)
        return sipheaders_fail(err, errlen, "'%s' has an empty value",
                               h->name);
    if (vlen >= sizeof h->value)
        return sipheaders_fail(err, errlen, "the value of '%s' is longer than "
                               "%zu bytes", h->name, sizeof h->value - 1);
    for (size_t i = 0; i < vlen; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return sipheaders_fail(err, errlen, "the value of '%s' has a "
                                   "control character (0x%02x)", h->name, c);
    }
    memcpy(h->value, value, vlen);
    h->value[vlen] = '\0';
    return 0;
}

int sipheaders_parse(const char *text, struct sipheaders *out, char *err,
                     size_t errlen)
{
    const char *p = text;
    out->n = 0;
    for (;;) {
        p = sipheaders_skip_space(p);
        if (*p == '\0')
            return 0;
        if (out->n == SIPHEADERS_MAX)
            return sipheaders_fail(err, errlen, "more than %d headers",
                                   SIPHEADERS_MAX);
        struct sipheader *h = &out->h[out->n];
        if (sipheaders_parse_one(&p, h, err, errlen) < 0)
            return -1;
        for (size_t i = 0; i < out->n; i++)
            if (strcasecmp(out->h[i].name, h->name) == 0)
                return sipheaders_fail(err, errlen, "'%s' is listed twice",
                                       h->name);
        out->n++;
    }
}

size_t sipheaders_format(const struct sipheaders *hs, char *buf, size_t len)
{
    size_t need = 0;
    if (len > 0)
        buf[0] = '\0';
    for (size_t i = 0; i < hs->n; i++) {
        int n = snprintf(need < len ? buf + need : NULL,
                         need < len ? len - need : 0, "%s%s: %s",
                         i ? "\r\n" : "", hs->h[i].name, hs->h[i].value);
        if (n > 0)
            need += (size_t)n;
    }
    return need;
}
