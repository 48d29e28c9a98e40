/* uri: parses and formats the simplified SIP URI of contract §6,
 * [[sip:]user@]host[:port]. The grammar is a strict subset of RFC 3261, so
 * whatever passes can go into a Request-URI or a From header verbatim:
 * nothing that could end a header, a URI or a name-addr (white space,
 * CR/LF, <>, quotes, ';' params) ever gets through. */
#include "uri.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define URI_DEFAULT_PORT 5060
#define URI_MAX_LABEL 63

/* Character classes by hand: <ctype.h> depends on the locale. */
static int uri_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int uri_is_alnum(char c)
{
    return uri_is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int uri_is_hex(char c)
{
    return uri_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* RFC 3261 unreserved and user-unreserved, less ';' (we take no params). */
static int uri_is_user_char(char c)
{
    return uri_is_alnum(c) || (c != '\0' && strchr("-_.!~*'()&=+$,?/", c));
}

static int uri_fail(char *err, size_t errlen, const char *why)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", why);
    return -1;
}

int uri_user_valid(const char *user)
{
    for (const char *p = user; *p != '\0'; p++) {
        if (*p == '%') {
            if (!uri_is_hex(p[1]) || !uri_is_hex(p[2]))
                return 0;
            p += 2;
        } else if (!uri_is_user_char(*p)) {
            return 0;
        }
    }
    return 1;
}

/* hostname or IPv4address of RFC 3261. A toplabel starts with a letter, so
 * a last label starting with a digit can only be an IPv4 address; that is
 * also what keeps a bare number such as "1001" from passing as a host. */
static int uri_host_valid(const char *host)
{
    const char *last = strrchr(host, '.');
    if (uri_is_digit(last ? last[1] : host[0])) {
        struct in_addr a;
        return inet_pton(AF_INET, host, &a) == 1;
    }
    for (const char *p = host;;) {
        size_t n = 0;
        while (uri_is_alnum(p[n]) || p[n] == '-')
            n++;
        if (n == 0 || n > URI_MAX_LABEL || p[0] == '-' || p[n - 1] == '-')
            return 0;
        if (p[n] == '\0')
            return 1;
        if (p[n] != '.')
            return 0;
        p += n + 1;
    }
}

/* 1 to 65535, digits only: no sign, no white space, no ";transport". */
static int uri_parse_port(const char *p, unsigned *port)
{
    unsigned v = 0;
    size_t n = 0;
    for (; uri_is_digit(p[n]); n++) {
        v = v * 10 + (unsigned)(p[n] - '0');
        if (v > 65535)
            return -1;
    }
    if (n == 0 || p[n] != '\0' || v == 0)
        return -1;
    *port = v;
    return 0;
}

static int uri_parse_hostport(const char *p, struct uri *out, char *err,
                              size_t errlen)
{
    const char *host = p, *port = NULL;
    size_t hostlen;

    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (close == NULL)
            return uri_fail(err, errlen, "unterminated IPv6 reference");
        host = p + 1;
        hostlen = (size_t)(close - host);
        if (close[1] == ':')
            port = close + 2;
        else if (close[1] != '\0')
            return uri_fail(err, errlen, "invalid character after IPv6 "
                                         "reference");
    } else {
        const char *colon = strchr(p, ':');
        hostlen = colon ? (size_t)(colon - p) : strlen(p);
        port = colon ? colon + 1 : NULL;
    }
    if (hostlen == 0)
        return uri_fail(err, errlen, "empty host");
    if (hostlen >= sizeof out->host)
        return uri_fail(err, errlen, "host too long");
    memcpy(out->host, host, hostlen);
    out->host[hostlen] = '\0';

    if (*p == '[') {
        struct in6_addr a;
        if (inet_pton(AF_INET6, out->host, &a) != 1)
            return uri_fail(err, errlen, "invalid IPv6 address");
    } else if (!uri_host_valid(out->host)) {
        return uri_fail(err, errlen, "invalid host");
    }

    unsigned v = URI_DEFAULT_PORT;
    if (port != NULL && uri_parse_port(port, &v) < 0)
        return uri_fail(err, errlen, "invalid port");
    out->port = (uint16_t)v;
    out->has_port = port != NULL;
    return 0;
}

static int uri_parse_parts(const char *p, struct uri *out, char *err,
                           size_t errlen)
{
    if (strncasecmp(p, "sip:", 4) == 0)
        p += 4;
    else if (strncasecmp(p, "sips:", 5) == 0 || strncasecmp(p, "tel:", 4) == 0)
        return uri_fail(err, errlen, "only sip: URIs are supported");

    const char *at = strchr(p, '@');
    if (at != NULL) {
        size_t n = (size_t)(at - p);
        if (strchr(at + 1, '@') != NULL)
            return uri_fail(err, errlen, "more than one '@'");
        if (n == 0)
            return uri_fail(err, errlen, "empty user");
        if (n >= sizeof out->user)
            return uri_fail(err, errlen, "user too long");
        memcpy(out->user, p, n);
        out->user[n] = '\0';
        if (!uri_user_valid(out->user))
            return uri_fail(err, errlen, "invalid character in user");
        p = at + 1;
    }
    return uri_parse_hostport(p, out, err, errlen);
}

int uri_parse(const char *text, struct uri *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (uri_parse_parts(text, out, err, errlen) < 0) {
        memset(out, 0, sizeof *out);  /* no half-parsed URI escapes */
        return -1;
    }
    return 0;
}

int uri_format(const struct uri *u, char *buf, size_t len)
{
    const char *at = u->user[0] ? "@" : "";
    /* Without a user, a host named like a scheme would read back as one:
     * "sip:5060" is host "5060", "tel:5060" is refused. The scheme
     * uri_parse skips keeps such a host a host. */
    if (u->user[0] == '\0'
        && (strcasecmp(u->host, "sip") == 0 || strcasecmp(u->host, "sips") == 0
            || strcasecmp(u->host, "tel") == 0))
        return snprintf(buf, len, "sip:%s:%u", u->host, (unsigned)u->port);
    if (u->host[0] == '\0')
        return snprintf(buf, len, "%s", u->user);
    if (strchr(u->host, ':') != NULL)
        return snprintf(buf, len, "%s%s[%s]:%u", u->user, at, u->host,
                        (unsigned)u->port);
    return snprintf(buf, len, "%s%s%s:%u", u->user, at, u->host,
                    (unsigned)u->port);
}

int uri_hostport(char *buf, size_t len, const char *host, unsigned port)
{
    return snprintf(buf, len, strchr(host, ':') != NULL ? "[%s]:%u" : "%s:%u",
                    host, port);
}

int uri_host(char *buf, size_t len, const char *host)
{
    return snprintf(buf, len, strchr(host, ':') != NULL ? "[%s]" : "%s",
                    host);
}
