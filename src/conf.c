/* conf: defaults, the config file parser and command-line overrides. The
 * file is KEY = VALUE lines with [gateway NAME] sections; '#' starts a
 * comment at the start of a line or after white space. */
#include "conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "uri.h"

static int conf_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int conf_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

void conf_defaults(struct conf *c)
{
    memset(c, 0, sizeof *c);
    strcpy(c->listen_host, "127.0.0.1");
    c->listen_port = 7010;
    strcpy(c->sip_host, "127.0.0.1");
    c->sip_port = 5060;
    c->rtp_port_min = 20000;
    c->rtp_port_max = 29999;
    c->media_threads = 1;
    c->worker_threads = 2;
    c->max_prompt_seconds = 600;
    c->max_tts_bytes = 4096;
    strcpy(c->prompt_dir, "/usr/share/ctid/prompts");
    strcpy(c->state_dir, "/var/lib/ctid");
    strcpy(c->node_id, "0.0.0");
    strcpy(c->default_from, "ctid");
    c->max_calls = 1000;
    c->max_line = 65536;
    c->max_connections = 1024;
    c->max_connections_per_ip = 256;
    c->handshake_timeout = 10;
    c->max_call_rate = 200;
    c->max_output_bytes = 1U << 20;
    c->dial_timeout = 60;
    c->default_max_ring = 50;
    c->session_expires = 1800;
    c->min_se = 90;
    strcpy(c->log_level, "info");
    c->journal_max_bytes = 256ULL << 20;
    c->journal_max_age = 7 * 24 * 3600;
    c->shutdown_grace = 30;
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

static int set_unsigned(unsigned *dst, const char *value, unsigned long min,
                        unsigned long max, const char *key, char *err,
                        size_t errlen)
{
    unsigned long v;
    if (parse_uint(value, min, max, &v, key, err, errlen) < 0)
        return -1;
    *dst = (unsigned)v;
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

static int parse_port_range(struct conf *c, const char *value, char *err,
                            size_t errlen)
{
    unsigned lo, hi;
    char tail;
    if (sscanf(value, "%u-%u%c", &lo, &hi, &tail) != 2 || lo < 1024 ||
        hi > 65535 || lo > hi || hi - lo < 1)
        return conf_err(err, errlen,
                        "rtp_ports: expected LO-HI within 1024-65535 with at "
                        "least two ports, got '%s'",
                        value);
    c->rtp_port_min = (uint16_t)lo;
    c->rtp_port_max = (uint16_t)hi;
    return 0;
}

static int valid_node_id(const char *s)
{
    unsigned a, b, d;
    char tail;
    return sscanf(s, "%u.%u.%u%c", &a, &b, &d, &tail) == 3 &&
           strspn(s, "0123456789.") == strlen(s);
}

int conf_set(struct conf *c, const char *key, const char *value, char *err,
             size_t errlen)
{
    if (strcmp(key, "listen") == 0)
        return parse_hostport(value, c->listen_host, sizeof c->listen_host,
                              &c->listen_port, key, err, errlen);
    if (strcmp(key, "sip") == 0)
        return parse_hostport(value, c->sip_host, sizeof c->sip_host,
                              &c->sip_port, key, err, errlen);
    if (strcmp(key, "media_ip") == 0)
        return copy_str(c->media_ip, sizeof c->media_ip, value, key, err,
                        errlen);
    if (strcmp(key, "rtp_ports") == 0)
        return parse_port_range(c, value, err, errlen);
    if (strcmp(key, "media_threads") == 0)
        return set_unsigned(&c->media_threads, value, 1, 16, key, err,
                            errlen);
    if (strcmp(key, "worker_threads") == 0)
        return set_unsigned(&c->worker_threads, value, 1, 16, key, err,
                            errlen);
    if (strcmp(key, "max_prompt_seconds") == 0)
        return set_unsigned(&c->max_prompt_seconds, value, 0, 86400, key, err,
                            errlen);
    if (strcmp(key, "max_tts_bytes") == 0)
        return set_unsigned(&c->max_tts_bytes, value, 0, 1000000, key, err,
                            errlen);
    if (strcmp(key, "prompt_dir") == 0)
        return copy_str(c->prompt_dir, sizeof c->prompt_dir, value, key, err,
                        errlen);
    if (strcmp(key, "state_dir") == 0)
        return copy_str(c->state_dir, sizeof c->state_dir, value, key, err,
                        errlen);
    if (strcmp(key, "node_id") == 0) {
        if (!valid_node_id(value))
            return conf_err(err, errlen,
                            "node_id: expected area.station.instance like "
                            "0.0.0, got '%s'",
                            value);
        return copy_str(c->node_id, sizeof c->node_id, value, key, err,
                        errlen);
    }
    if (strcmp(key, "default_from") == 0)
        return copy_str(c->default_from, sizeof c->default_from, value, key,
                        err, errlen);
    if (strcmp(key, "max_calls") == 0)
        return set_unsigned(&c->max_calls, value, 1, 1000000, key, err,
                            errlen);
    if (strcmp(key, "max_line") == 0)
        return set_unsigned(&c->max_line, value, 1024, 16 << 20, key, err,
                            errlen);
    if (strcmp(key, "max_connections") == 0)
        return set_unsigned(&c->max_connections, value, 1, 1000000, key, err,
                            errlen);
    if (strcmp(key, "max_connections_per_ip") == 0)
        return set_unsigned(&c->max_connections_per_ip, value, 0, 1000000,
                            key, err, errlen);
    if (strcmp(key, "handshake_timeout") == 0)
        return set_unsigned(&c->handshake_timeout, value, 0, 3600, key, err,
                            errlen);
    if (strcmp(key, "max_call_rate") == 0)
        return set_unsigned(&c->max_call_rate, value, 0, 1000000, key, err,
                            errlen);
    /* Small values are for tests; keep it well above the largest event. */
    if (strcmp(key, "max_output_bytes") == 0)
        return set_unsigned(&c->max_output_bytes, value, 4096, 1U << 30, key,
                            err, errlen);
    if (strcmp(key, "dial_timeout") == 0)
        return set_unsigned(&c->dial_timeout, value, 2, 3600, key, err,
                            errlen);
    if (strcmp(key, "max_ring_seconds") == 0)
        return set_unsigned(&c->default_max_ring, value, 1, 3600, key, err,
                            errlen);
    /* RFC 4028 session timer; 0 = off. */
    if (strcmp(key, "session_expires") == 0)
        return set_unsigned(&c->session_expires, value, 0, 86400, key, err,
                            errlen);
    /* RFC 4028 asks for at least 90; smaller values are for tests. */
    if (strcmp(key, "min_se") == 0)
        return set_unsigned(&c->min_se, value, 1, 86400, key, err, errlen);
    if (strcmp(key, "log_level") == 0) {
        if (log_level_parse(value) < 0)
            return conf_err(err, errlen,
                            "log_level: expected error, warn, info or debug, "
                            "got '%s'",
                            value);
        return copy_str(c->log_level, sizeof c->log_level, value, key, err,
                        errlen);
    }
    if (strcmp(key, "cdr_file") == 0)
        return copy_str(c->cdr_file, sizeof c->cdr_file, value, key, err,
                        errlen);
    if (strcmp(key, "log_file") == 0)
        return copy_str(c->log_file, sizeof c->log_file, value, key, err,
                        errlen);
    if (strcmp(key, "metrics_listen") == 0) {
        if (value[0] == '\0') { /* empty: no metrics endpoint */
            c->metrics_host[0] = '\0';
            c->metrics_port = 0;
            return 0;
        }
        return parse_hostport(value, c->metrics_host, sizeof c->metrics_host,
                              &c->metrics_port, key, err, errlen);
    }
    if (strcmp(key, "journal_max_bytes") == 0) {
        unsigned long v;
        /* At least 1 MiB: a few segments' worth, so rotation can work. */
        if (parse_uint(value, 1UL << 20, 1UL << 40, &v, key, err, errlen) < 0)
            return -1;
        c->journal_max_bytes = v;
        return 0;
    }
    if (strcmp(key, "journal_max_age") == 0)
        return set_unsigned(&c->journal_max_age, value, 60, 3650U * 86400,
                            key, err, errlen);
    if (strcmp(key, "shutdown_grace") == 0)
        return set_unsigned(&c->shutdown_grace, value, 0, 3600, key, err,
                            errlen);
    if (strcmp(key, "auth_token") == 0) {
        /* Short tokens are guessable; anything outside printable ASCII
         * would not survive a JSON string written by hand. */
        size_t n = strlen(value);
        if (n > 0 && n < 16)
            return conf_err(err, errlen,
                            "auth_token: at least 16 characters (or empty "
                            "for none)");
        for (size_t i = 0; i < n; i++)
            if (value[i] <= ' ' || value[i] > '~' || value[i] == '"' ||
                value[i] == '\\')
                return conf_err(err, errlen,
                                "auth_token: printable ASCII without spaces, "
                                "quotes or backslashes");
        return copy_str(c->auth_token, sizeof c->auth_token, value, key, err,
                        errlen);
    }
    if (strcmp(key, "allow_unlisted_gateways") == 0) {
        if (strcmp(value, "yes") == 0 || strcmp(value, "no") == 0) {
            c->allow_unlisted_gateways = strcmp(value, "yes") == 0;
            return 0;
        }
        return conf_err(err, errlen,
                        "allow_unlisted_gateways: expected yes or no, got "
                        "'%s'",
                        value);
    }
    return conf_err(err, errlen, "unknown key '%s'", key);
}

static int gateway_set(struct conf_gateway *g, const char *key,
                       const char *value, char *err, size_t errlen)
{
    unsigned long v;
    if (strcmp(key, "host") == 0)
        return copy_str(g->host, sizeof g->host, value, key, err, errlen);
    if (strcmp(key, "port") == 0) {
        if (parse_uint(value, 1, 65535, &v, key, err, errlen) < 0)
            return -1;
        g->port = (uint16_t)v;
        return 0;
    }
    if (strcmp(key, "max_calls") == 0)
        return set_unsigned(&g->max_calls, value, 0, 1000000, key, err,
                            errlen);
    if (strcmp(key, "username") == 0)
        return copy_str(g->username, sizeof g->username, value, key, err,
                        errlen);
    if (strcmp(key, "password") == 0)
        return copy_str(g->password, sizeof g->password, value, key, err,
                        errlen);
    return conf_err(err, errlen, "unknown gateway key '%s'", key);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

static void strip_comment(char *s)
{
    for (char *p = s; *p; p++)
        if (*p == '#' && (p == s || isspace((unsigned char)p[-1]))) {
            *p = '\0';
            return;
        }
}

static int start_gateway(struct conf *c, char *section, char *err,
                         size_t errlen)
{
    char *name = trim(section + strlen("gateway"));
    if (strncmp(section, "gateway", 7) != 0 || !isspace((unsigned char)section[7]) ||
        name[0] == '\0')
        return conf_err(err, errlen,
                        "unknown section [%s]; expected [gateway NAME]",
                        section);
    if (c->n_gateways == CONF_MAX_GATEWAYS)
        return conf_err(err, errlen, "more than %d gateways",
                        CONF_MAX_GATEWAYS);
    struct conf_gateway *g = &c->gateways[c->n_gateways++];
    memset(g, 0, sizeof *g);
    g->port = 5060;
    return copy_str(g->name, sizeof g->name, name, "gateway name", err,
                    errlen);
}

int conf_load_file(struct conf *c, const char *path, char *err,
                   size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return conf_err(err, errlen, "%s: %s", path, strerror(errno));
    char line[4096];
    char why[512];
    unsigned lineno = 0;
    struct conf_gateway *gw = NULL;
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f) != NULL) {
        lineno++;
        strip_comment(line);
        char *s = trim(line);
        if (*s == '\0')
            continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (close == NULL || trim(close + 1)[0] != '\0') {
                snprintf(why, sizeof why, "bad section header");
                rc = -1;
                break;
            }
            *close = '\0';
            rc = start_gateway(c, trim(s + 1), why, sizeof why);
            gw = rc == 0 ? &c->gateways[c->n_gateways - 1] : NULL;
            continue;
        }
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            snprintf(why, sizeof why, "expected KEY = VALUE");
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(s);
        char *value = trim(eq + 1);
        rc = gw ? gateway_set(gw, key, value, why, sizeof why)
                : conf_set(c, key, value, why, sizeof why);
    }
    fclose(f);
    if (rc < 0)
        return conf_err(err, errlen, "%s:%u: %s", path, lineno, why);
    return 0;
}

int conf_validate(const struct conf *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < c->n_gateways; i++) {
        const struct conf_gateway *g = &c->gateways[i];
        if (g->host[0] == '\0')
            return conf_err(err, errlen, "[gateway %s]: host is required",
                            g->name);
        if ((g->username[0] == '\0') != (g->password[0] == '\0'))
            return conf_err(err, errlen,
                            "[gateway %s]: username and password go together",
                            g->name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->gateways[j].host, g->host) == 0 &&
                c->gateways[j].port == g->port)
                return conf_err(err, errlen,
                                "[gateway %s]: same host:port as [gateway %s]",
                                g->name, c->gateways[j].name);
    }
    if (c->auth_token[0] == '\0' && !conf_is_loopback(c->listen_host))
        return conf_err(err, errlen,
                        "listen %s is not a loopback address: set auth_token "
                        "so that only clients that know it can place calls",
                        c->listen_host);
    if (strcmp(conf_media_ip(c), "0.0.0.0") == 0 ||
        strcmp(conf_media_ip(c), "::") == 0)
        return conf_err(err, errlen,
                        "media_ip must be set to a concrete address when sip "
                        "binds a wildcard address: SDP must tell the callee "
                        "where to send RTP");
    return 0;
}

const char *conf_media_ip(const struct conf *c)
{
    return c->media_ip[0] ? c->media_ip : c->sip_host;
}

const struct conf_gateway *conf_find_gateway(const struct conf *c,
                                             const char *host, uint16_t port)
{
    for (size_t i = 0; i < c->n_gateways; i++)
        if (c->gateways[i].port == port &&
            strcasecmp(c->gateways[i].host, host) == 0)
            return &c->gateways[i];
    return NULL;
}

void conf_print(const struct conf *c, FILE *out)
{
    fprintf(out, "listen = %s:%u\n", c->listen_host, c->listen_port);
    fprintf(out, "sip = %s:%u\n", c->sip_host, c->sip_port);
    fprintf(out, "media_ip = %s\n", conf_media_ip(c));
    fprintf(out, "rtp_ports = %u-%u\n", c->rtp_port_min, c->rtp_port_max);
    fprintf(out, "media_threads = %u\n", c->media_threads);
    fprintf(out, "worker_threads = %u\n", c->worker_threads);
    fprintf(out, "max_prompt_seconds = %u\n", c->max_prompt_seconds);
    fprintf(out, "max_tts_bytes = %u\n", c->max_tts_bytes);
    fprintf(out, "prompt_dir = %s\n", c->prompt_dir);
    fprintf(out, "state_dir = %s\n", c->state_dir);
    fprintf(out, "node_id = %s\n", c->node_id);
    fprintf(out, "default_from = %s\n", c->default_from);
    fprintf(out, "max_calls = %u\n", c->max_calls);
    fprintf(out, "max_line = %u\n", c->max_line);
    fprintf(out, "max_connections = %u\n", c->max_connections);
    fprintf(out, "max_connections_per_ip = %u\n", c->max_connections_per_ip);
    fprintf(out, "handshake_timeout = %u\n", c->handshake_timeout);
    fprintf(out, "max_call_rate = %u\n", c->max_call_rate);
    fprintf(out, "max_output_bytes = %u\n", c->max_output_bytes);
    fprintf(out, "dial_timeout = %u\n", c->dial_timeout);
    fprintf(out, "max_ring_seconds = %u\n", c->default_max_ring);
    fprintf(out, "session_expires = %u\n", c->session_expires);
    fprintf(out, "min_se = %u\n", c->min_se);
    fprintf(out, "log_level = %s\n", c->log_level);
    fprintf(out, "log_file = %s\n", c->log_file);
    fprintf(out, "cdr_file = %s\n", c->cdr_file);
    char hp[300] = "";
    if (c->metrics_host[0] != '\0')
        uri_hostport(hp, sizeof hp, c->metrics_host, c->metrics_port);
    fprintf(out, "metrics_listen = %s\n", hp);
    fprintf(out, "journal_max_bytes = %llu\n",
            (unsigned long long)c->journal_max_bytes);
    fprintf(out, "journal_max_age = %u\n", c->journal_max_age);
    fprintf(out, "shutdown_grace = %u\n", c->shutdown_grace);
    /* Like a gateway password, the token is never printed. */
    fprintf(out, "auth_token = %s\n", c->auth_token[0] ? "(set)" : "");
    fprintf(out, "allow_unlisted_gateways = %s\n",
            c->allow_unlisted_gateways ? "yes" : "no");
    for (size_t i = 0; i < c->n_gateways; i++) {
        const struct conf_gateway *g = &c->gateways[i];
        /* The password stays out of anything printed. */
        fprintf(out, "\n[gateway %s]\nhost = %s\nport = %u\nmax_calls = %u\n",
                g->name, g->host, g->port, g->max_calls);
        if (g->username[0])
            fprintf(out, "username = %s\npassword = (set)\n", g->username);
    }
}

bool conf_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) ||
               (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return false;
}

int conf_build(struct conf *c, const struct conf_source *src, char *err,
               size_t errlen)
{
    conf_defaults(c);
    if (src->path[0] && conf_load_file(c, src->path, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < src->n_set; i++) {
        char why[512];
        if (conf_set(c, src->set[i].key, src->set[i].value, why,
                     sizeof why) < 0)
            return conf_err(err, errlen, "--%s: %s", src->set[i].key, why);
    }
    return conf_validate(c, err, errlen);
}

/* ---- SIGHUP reload --------------------------------------------------------- */

#define RELOAD_UINT(field, key)                                              \
    do {                                                                     \
        if (cur->field != next->field) {                                     \
            log_info("SIGHUP: %s %u -> %u", key, cur->field, next->field);   \
            cur->field = next->field;                                        \
            changed++;                                                       \
        }                                                                    \
    } while (0)

static const struct conf_gateway *gateway_named(const struct conf *c,
                                                const char *name)
{
    for (size_t i = 0; i < c->n_gateways; i++)
        if (strcmp(c->gateways[i].name, name) == 0)
            return &c->gateways[i];
    return NULL;
}

static unsigned reload_gateways(struct conf *cur, const struct conf *next)
{
    unsigned changed = 0;
    for (size_t i = 0; i < cur->n_gateways; i++)
        if (gateway_named(next, cur->gateways[i].name) == NULL) {
            log_info("SIGHUP: [gateway %s] removed (%s:%u)",
                     cur->gateways[i].name, cur->gateways[i].host,
                     cur->gateways[i].port);
            changed++;
        }
    for (size_t i = 0; i < next->n_gateways; i++) {
        const struct conf_gateway *n = &next->gateways[i];
        const struct conf_gateway *o = gateway_named(cur, n->name);
        if (o == NULL) {
            log_info("SIGHUP: [gateway %s] added (%s:%u, max_calls %u)",
                     n->name, n->host, n->port, n->max_calls);
            changed++;
            continue;
        }
        if (strcmp(o->host, n->host) != 0 || o->port != n->port) {
            log_info("SIGHUP: [gateway %s] address %s:%u -> %s:%u", n->name,
                     o->host, o->port, n->host, n->port);
            changed++;
        }
        if (o->max_calls != n->max_calls) {
            log_info("SIGHUP: [gateway %s] max_calls %u -> %u", n->name,
                     o->max_calls, n->max_calls);
            changed++;
        }
        if (strcmp(o->username, n->username) != 0 ||
            strcmp(o->password, n->password) != 0) {
            log_info("SIGHUP: [gateway %s] credentials changed", n->name);
            changed++;
        }
    }
    memcpy(cur->gateways, next->gateways, sizeof cur->gateways);
    cur->n_gateways = next->n_gateways;
    return changed;
}

/* Logs every top-level key whose printed value differs (the printed form
 * hides secrets); used after the reloadable keys are copied, so what is
 * left differing needs a restart. */
static void log_restart_keys(const struct conf *cur, const struct conf *next)
{
    char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    FILE *fa = open_memstream(&a, &alen), *fb = open_memstream(&b, &blen);
    if (fa == NULL || fb == NULL) {
        if (fa)
            fclose(fa);
        if (fb)
            fclose(fb);
        free(a);
        free(b);
        return;
    }
    struct conf x = *cur, y = *next;
    x.n_gateways = y.n_gateways = 0; /* gateways are reloaded apart */
    conf_print(&x, fa);
    conf_print(&y, fb);
    fclose(fa);
    fclose(fb);
    char *sa = NULL, *sb = NULL;
    for (char *la = strtok_r(a, "\n", &sa), *lb = strtok_r(b, "\n", &sb);
         la != NULL && lb != NULL;
         la = strtok_r(NULL, "\n", &sa), lb = strtok_r(NULL, "\n", &sb))
        if (strcmp(la, lb) != 0)
            log_warn("SIGHUP: '%s' in the file, running with '%s': that key "
                     "takes a restart",
                     lb, la);
    free(a);
    free(b);
}

unsigned conf_reload(struct conf *cur, const struct conf *next)
{
    unsigned changed = 0;
    RELOAD_UINT(max_calls, "max_calls");
    RELOAD_UINT(max_line, "max_line");
    RELOAD_UINT(max_connections, "max_connections");
    RELOAD_UINT(max_connections_per_ip, "max_connections_per_ip");
    RELOAD_UINT(handshake_timeout, "handshake_timeout");
    RELOAD_UINT(max_call_rate, "max_call_rate");
    RELOAD_UINT(max_output_bytes, "max_output_bytes");
    RELOAD_UINT(default_max_ring, "max_ring_seconds");
    RELOAD_UINT(shutdown_grace, "shutdown_grace");
    RELOAD_UINT(max_prompt_seconds, "max_prompt_seconds");
    RELOAD_UINT(max_tts_bytes, "max_tts_bytes");
    if (strcmp(cur->log_level, next->log_level) != 0) {
        log_info("SIGHUP: log_level %s -> %s", cur->log_level,
                 next->log_level);
        strcpy(cur->log_level, next->log_level);
        changed++;
    }
    if (strcmp(cur->auth_token, next->auth_token) != 0) {
        log_info("SIGHUP: auth_token %s", next->auth_token[0] ? "changed"
                                                              : "removed");
        strcpy(cur->auth_token, next->auth_token);
        changed++;
    }
    if (cur->allow_unlisted_gateways != next->allow_unlisted_gateways) {
        log_info("SIGHUP: allow_unlisted_gateways %s",
                 next->allow_unlisted_gateways ? "yes" : "no");
        cur->allow_unlisted_gateways = next->allow_unlisted_gateways;
        changed++;
    }
    changed += reload_gateways(cur, next);
    log_restart_keys(cur, next);
    return changed;
}
