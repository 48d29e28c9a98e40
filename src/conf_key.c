/* conf_key: one configuration value as a row of the key table describes
 * it (conf_key.h): the parsers of each value type with their error texts,
 * the printed form, comparing and copying for SIGHUP, and the walks over
 * a table of rows (find, defaults, print). What the keys are is conf.c's
 * and conf_gateway.c's tables; the checks of a few top-level keys (node_id,
 * cdr_format) live here to keep conf.c short. */
#include "conf_key.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "uri.h"

int conf_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int copy_str(char *dst, size_t size, const char *value,
                    const char *key, char *err, size_t errlen)
{
    if (strlen(value) >= size)
        return conf_err(err, errlen, "%s: longer than %zu bytes", key,
                        size - 1);
    strcpy(dst, value);
    return 0;
}

static int parse_uint(const char *value, unsigned long min, unsigned long max,
                      unsigned long *out, const char *key, char *err,
                      size_t errlen)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)value[0]))
        return conf_err(err, errlen, "%s: '%s' is not a number", key, value);
    unsigned long v = strtoul(value, &end, 10);
    if (errno != 0 || *end != '\0')
        return conf_err(err, errlen, "%s: '%s' is not a number", key, value);
    if (v < min || v > max)
        return conf_err(err, errlen, "%s: %lu is outside %lu..%lu", key, v,
                        min, max);
    *out = v;
    return 0;
}

/* "HOST:PORT" or "[V6]:PORT" */
static int parse_hostport(const char *value, char *host, size_t hostlen,
                          uint16_t *port, const char *key, char *err,
                          size_t errlen)
{
    const char *colon;
    const char *h = value;
    size_t hlen;
    if (value[0] == '[') {
        const char *close = strchr(value, ']');
        if (close == NULL || close[1] != ':')
            return conf_err(err, errlen, "%s: expected [ADDR]:PORT, got '%s'",
                            key, value);
        h = value + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(value, ':');
        if (colon == NULL || strchr(value, ':') != colon)
            return conf_err(err, errlen, "%s: expected HOST:PORT, got '%s'",
                            key, value);
        hlen = (size_t)(colon - value);
    }
    if (hlen == 0 || hlen >= hostlen)
        return conf_err(err, errlen, "%s: bad host in '%s'", key, value);
    unsigned long p;
    if (parse_uint(colon + 1, 1, 65535, &p, key, err, errlen) < 0)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (uint16_t)p;
    return 0;
}

static int parse_port_range(const struct conf_key *k, const char *value,
                            uint16_t *lo_out, uint16_t *hi_out, char *err,
                            size_t errlen)
{
    unsigned lo, hi;
    char tail;
    if (sscanf(value, "%u-%u%c", &lo, &hi, &tail) != 2 || lo < k->min ||
        hi > k->max || lo > hi || hi - lo < 1)
        return conf_err(err, errlen,
                        "%s: expected LO-HI within %lu-%lu with at least two "
                        "ports, got '%s'",
                        k->name, k->min, k->max, value);
    *lo_out = (uint16_t)lo;
    *hi_out = (uint16_t)hi;
    return 0;
}

static char *field(const struct conf_key *k, void *base)
{
    return (char *)base + k->off;
}

static uint16_t *field2(const struct conf_key *k, void *base)
{
    return (uint16_t *)((char *)base + k->off2);
}

/* The size a field of the type has; 0 for the char arrays. */
static size_t type_size(enum conf_type type)
{
    switch (type) {
    case CONF_UINT:
        return sizeof(unsigned);
    case CONF_U64:
        return sizeof(uint64_t);
    case CONF_PORT:
    case CONF_PORTS:
        return sizeof(uint16_t);
    case CONF_BOOL:
        return sizeof(bool);
    case CONF_STR:
    case CONF_HOSTPORT:
        break;
    }
    return 0;
}

/* Sets the key's field in base (a struct conf or a struct conf_gateway)
 * from its text; err is "KEY: reason". */
int conf_key_set(const struct conf_key *k, void *base, const char *value,
                 char *err, size_t errlen)
{
    char *p = field(k, base);
    unsigned long v;
    /* A row whose type does not fit its field would write past it; every
     * default goes through here, so test_conf catches such a row. */
    if (type_size(k->type) != 0 && type_size(k->type) != k->size)
        return conf_err(err, errlen, "%s: the key table's type does not fit "
                        "the field", k->name);
    switch (k->type) {
    case CONF_UINT:
    case CONF_U64:
    case CONF_PORT:
        if (parse_uint(value, k->min, k->max, &v, k->name, err, errlen) < 0)
            return -1;
        if (k->type == CONF_UINT)
            *(unsigned *)(void *)p = (unsigned)v;
        else if (k->type == CONF_U64)
            *(uint64_t *)(void *)p = v;
        else
            *(uint16_t *)(void *)p = (uint16_t)v;
        return 0;
    case CONF_BOOL:
        if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0)
            return conf_err(err, errlen, "%s: expected yes or no, got '%s'",
                            k->name, value);
        *(bool *)(void *)p = strcmp(value, "yes") == 0;
        return 0;
    case CONF_STR:
        if (k->check != NULL && k->check(k->name, value, err, errlen) < 0)
            return -1;
        return copy_str(p, k->size, value, k->name, err, errlen);
    case CONF_HOSTPORT:
        if (value[0] == '\0' && (k->flags & CONF_OPTIONAL)) {
            p[0] = '\0';
            *field2(k, base) = 0;
            return 0;
        }
        return parse_hostport(value, p, k->size, field2(k, base), k->name,
                              err, errlen);
    case CONF_PORTS:
        return parse_port_range(k, value, (uint16_t *)(void *)p,
                                field2(k, base), err, errlen);
    }
    return conf_err(err, errlen, "%s: unknown type", k->name);
}

static unsigned key_port2(const struct conf_key *k, const void *base)
{
    return *(const uint16_t *)(const void *)((const char *)base + k->off2);
}

/* The key's value as --check-config prints it. */
void conf_key_format(const struct conf_key *k, const void *base, char *buf,
                     size_t len)
{
    const char *p = (const char *)base + k->off;
    if (k->shown != NULL) {
        snprintf(buf, len, "%s", k->shown(base));
        return;
    }
    switch (k->type) {
    case CONF_UINT:
        snprintf(buf, len, "%u", *(const unsigned *)(const void *)p);
        return;
    case CONF_U64:
        snprintf(buf, len, "%llu",
                 (unsigned long long)*(const uint64_t *)(const void *)p);
        return;
    case CONF_PORT:
        snprintf(buf, len, "%u", *(const uint16_t *)(const void *)p);
        return;
    case CONF_BOOL:
        snprintf(buf, len, "%s", *(const bool *)(const void *)p ? "yes" : "no");
        return;
    case CONF_STR:
        if (k->flags & CONF_SECRET)
            p = p[0] ? "(set)" : ""; /* a secret is never printed */
        snprintf(buf, len, "%s", p);
        return;
    case CONF_HOSTPORT:
        if (p[0] == '\0' && (k->flags & CONF_OPTIONAL))
            buf[0] = '\0';
        else if (k->flags & CONF_RAW_HOST)
            snprintf(buf, len, "%s:%u", p, key_port2(k, base));
        else
            uri_hostport(buf, len, p, key_port2(k, base));
        return;
    case CONF_PORTS:
        snprintf(buf, len, "%u-%u", *(const uint16_t *)(const void *)p,
                 key_port2(k, base));
        return;
    }
    buf[0] = '\0';
}

bool conf_key_same(const struct conf_key *k, const void *a, const void *b)
{
    const char *pa = (const char *)a + k->off, *pb = (const char *)b + k->off;
    bool same = k->type == CONF_STR || k->type == CONF_HOSTPORT
                    ? strcmp(pa, pb) == 0
                    : memcmp(pa, pb, k->size) == 0;
    if (k->type == CONF_HOSTPORT || k->type == CONF_PORTS)
        same = same && memcmp((const char *)a + k->off2,
                              (const char *)b + k->off2, sizeof(uint16_t)) == 0;
    return same;
}

void conf_key_copy(const struct conf_key *k, void *dst, const void *src)
{
    memcpy((char *)dst + k->off, (const char *)src + k->off, k->size);
    if (k->type == CONF_HOSTPORT || k->type == CONF_PORTS)
        memcpy((char *)dst + k->off2, (const char *)src + k->off2,
               sizeof(uint16_t));
}

/* ---- walking a table of rows -------------------------------------------- */

const struct conf_key *conf_keys_find(const struct conf_key *keys, size_t n,
                                      const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

/* Every key's default, read by the parser itself; test_conf checks that
 * each one parses. */
void conf_keys_default(const struct conf_key *keys, size_t n, void *base)
{
    char why[256];
    for (size_t i = 0; i < n; i++)
        (void)conf_key_set(&keys[i], base, keys[i].def, why, sizeof why);
}

void conf_keys_print(const struct conf_key *keys, size_t n, const void *base,
                     FILE *out)
{
    char value[PATH_MAX + 16];
    for (size_t i = 0; i < n; i++) {
        const struct conf_key *k = &keys[i];
        if ((k->flags & CONF_OMIT_EMPTY) &&
            ((const char *)base + k->off)[0] == '\0')
            continue;
        conf_key_format(k, base, value, sizeof value);
        fprintf(out, "%s = %s\n", k->name, value);
    }
}

int conf_check_node_id(const char *key, const char *value, char *err,
                         size_t errlen)
{
    unsigned a, b, d;
    char tail;
    if (sscanf(value, "%u.%u.%u%c", &a, &b, &d, &tail) == 3 &&
        strspn(value, "0123456789.") == strlen(value))
        return 0;
    return conf_err(err, errlen,
                    "%s: expected area.station.instance like 0.0.0, got '%s'",
                    key, value);
}

int conf_check_cdr_format(const char *key, const char *value, char *err,
                          size_t errlen)
{
    if (strcmp(value, "ctid") == 0 || strcmp(value, "ipsc") == 0)
        return 0;
    return conf_err(err, errlen, "%s: expected ctid or ipsc, got '%s'", key,
                    value);
}

/* redis: "" (off), "unix:/absolute/path" or HOST:PORT ([v6]:PORT). */
int conf_redis_parse(const char *value, char *host, size_t hostlen,
                     uint16_t *port, bool *is_unix)
{
    *is_unix = false;
    *port = 0;
    if (strncmp(value, "unix:", 5) == 0) {
        const char *path = value + 5;
        if (path[0] != '/' || strlen(path) >= hostlen)
            return -1;
        snprintf(host, hostlen, "%s", path);
        *is_unix = true;
        return 0;
    }
    const char *colon = strrchr(value, ':');
    if (colon == NULL || colon == value)
        return -1;
    const char *h = value;
    size_t hl = (size_t)(colon - value);
    if (h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']')
            return -1;
        h++;
        hl -= 2;
    } else if (memchr(h, ':', hl) != NULL) {
        return -1; /* IPv6 only in brackets */
    }
    if (hl >= hostlen || hl >= 64)
        return -1;
    /* Numeric (or localhost): hiredis would resolve a name on the main
     * loop, blocking it. */
    char tmp[64];
    unsigned char bin[16];
    memcpy(tmp, h, hl);
    tmp[hl] = '\0';
    if (strcmp(tmp, "localhost") != 0 && inet_pton(AF_INET, tmp, bin) != 1 &&
        inet_pton(AF_INET6, tmp, bin) != 1)
        return -1;
    char *end;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || p == 0 ||
        p > 65535 || colon[1] == '-' || colon[1] == '+')
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)p;
    return 0;
}

int conf_check_redis(const char *key, const char *value, char *err,
                     size_t errlen)
{
    char host[PATH_MAX];
    uint16_t port;
    bool is_unix;
    if (value[0] == '\0' ||
        conf_redis_parse(value, host, sizeof host, &port, &is_unix) == 0)
        return 0;
    return conf_err(err, errlen,
                    "%s: expected IP:PORT, [IPV6]:PORT or unix:/PATH, got '%s'", key,
                    value);
}

/* redis_prefix: a key prefix, printable without spaces. */
int conf_check_redis_prefix(const char *key, const char *value, char *err,
                            size_t errlen)
{
    size_t n = strlen(value);
    for (size_t i = 0; i < n; i++)
        if (value[i] <= ' ' || value[i] > '~')
            n = 0;
    if (n > 0)
        return 0;
    return conf_err(err, errlen,
                    "%s: expected printable characters without spaces, got "
                    "'%s'", key, value);
}
