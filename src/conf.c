/* conf: the configuration's top-level key table (conf_keys) and
 * everything that walks it: defaults, the config file parser,
 * command-line overrides, --check-config and the SIGHUP reload. The file
 * is KEY = VALUE lines with [gateway NAME] sections, whose keys and
 * checks are conf_gateway.c's; '#' starts a comment at the start of a
 * line or after white space. */
#include "conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "conf_gateway.h"
#include "conf_key.h"
#include "log.h"

/* ---- the key table ---------------------------------------------------------
 * A key is one row: its name, how its value is read, where it lives, its
 * default (as the file would write it, read by the same parser), its
 * range, whether SIGHUP applies it and how it prints. Rows are in
 * --check-config order. Adding a key: a field in struct conf, a row here,
 * a row in tests/unit/test_conf.c, a line in conf/ctid.conf and
 * docs/configuration.md. */

/* prompt_roots: absolute directories, comma-separated (spaces around the
 * commas allowed); "" is none. */
static int check_prompt_roots(const char *key, const char *value, char *err,
                              size_t errlen)
{
    const char *p = value;
    while (*p) {
        p += strspn(p, " ");
        size_t len = strcspn(p, ",");
        if (*p != '/')
            return conf_err(err, errlen,
                            "%s: expected absolute directories separated by "
                            "commas, got '%s'", key, value);
        p += len;
        p += *p == ',';
    }
    return 0;
}

static int check_log_level(const char *key, const char *value, char *err,
                           size_t errlen)
{
    if (log_level_parse(value) >= 0)
        return 0;
    return conf_err(err, errlen,
                    "%s: expected error, warn, info or debug, got '%s'", key,
                    value);
}

/* Short tokens are guessable; anything outside printable ASCII would not
 * survive a JSON string written by hand. */
static int check_auth_token(const char *key, const char *value, char *err,
                            size_t errlen)
{
    size_t n = strlen(value);
    if (n > 0 && n < 16)
        return conf_err(err, errlen,
                        "%s: at least 16 characters (or empty for none)", key);
    for (size_t i = 0; i < n; i++)
        if (value[i] <= ' ' || value[i] > '~' || value[i] == '"' ||
            value[i] == '\\')
            return conf_err(err, errlen,
                            "%s: printable ASCII without spaces, quotes or "
                            "backslashes",
                            key);
    return 0;
}

/* media_ip prints the address in effect: sip's host when left empty;
 * likewise the public addresses. */
static const char *media_ip_shown(const void *base)
{
    return conf_media_ip(base);
}

static const char *public_address_shown(const void *base)
{
    return conf_sip_public(base);
}

static const char *media_public_shown(const void *base)
{
    return conf_media_public(base);
}

#define TOP(f) AT(struct conf, f)
#define TOP2(f) .off2 = offsetof(struct conf, f)

static const struct conf_key conf_keys[] = {
    {KEY("listen", CONF_HOSTPORT), TOP(listen_host), TOP2(listen_port),
     .def = "127.0.0.1:7010", .flags = CONF_RAW_HOST},
    {KEY("sip", CONF_HOSTPORT), TOP(sip_host), TOP2(sip_port),
     .def = "127.0.0.1:5060", .flags = CONF_RAW_HOST},
    /* Behind 1:1 NAT: the host in Contact and Via. */
    {KEY("public_address", CONF_STR), TOP(public_address), .def = "",
     .check = conf_check_host, .shown = public_address_shown},
    {KEY("media_ip", CONF_STR), TOP(media_ip), .def = "",
     .shown = media_ip_shown},
    /* Behind 1:1 NAT: the address in SDP c= and o=. */
    {KEY("media_public_address", CONF_STR), TOP(media_public_address),
     .def = "", .check = conf_check_ip, .shown = media_public_shown},
    {KEY("rtp_ports", CONF_PORTS), TOP(rtp_port_min), TOP2(rtp_port_max),
     RANGE(1024, 65535), .def = "20000-29999"},
    {KEY("media_threads", CONF_UINT), TOP(media_threads), RANGE(1, 16),
     .def = "1"},
    {KEY("worker_threads", CONF_UINT), TOP(worker_threads), RANGE(1, 16),
     .def = "2"},
    {KEY("max_prompt_seconds", CONF_UINT), TOP(max_prompt_seconds),
     RANGE(0, 86400), .def = "600", .flags = CONF_RELOAD},
    {KEY("max_tts_bytes", CONF_UINT), TOP(max_tts_bytes), RANGE(0, 1000000),
     .def = "4096", .flags = CONF_RELOAD},
    {KEY("prompt_dir", CONF_STR), TOP(prompt_dir),
     .def = "/usr/share/ctid/prompts"},
    {KEY("prompt_roots", CONF_STR), TOP(prompt_roots), .def = "",
     .check = check_prompt_roots},
    {KEY("state_dir", CONF_STR), TOP(state_dir), .def = "/var/lib/ctid"},
    {KEY("node_id", CONF_STR), TOP(node_id), .def = "0.0.0",
     .check = conf_check_node_id},
    {KEY("default_from", CONF_STR), TOP(default_from), .def = "ctid"},
    {KEY("max_calls", CONF_UINT), TOP(max_calls), RANGE(1, 1000000),
     .def = "1000", .flags = CONF_RELOAD},
    {KEY("max_line", CONF_UINT), TOP(max_line), RANGE(1024, 16 << 20),
     .def = "65536", .flags = CONF_RELOAD},
    {KEY("max_connections", CONF_UINT), TOP(max_connections),
     RANGE(1, 1000000), .def = "1024", .flags = CONF_RELOAD},
    {KEY("max_connections_per_ip", CONF_UINT), TOP(max_connections_per_ip),
     RANGE(0, 1000000), .def = "256", .flags = CONF_RELOAD},
    {KEY("handshake_timeout", CONF_UINT), TOP(handshake_timeout),
     RANGE(0, 3600), .def = "10", .flags = CONF_RELOAD},
    {KEY("max_call_rate", CONF_UINT), TOP(max_call_rate), RANGE(0, 1000000),
     .def = "200", .flags = CONF_RELOAD},
    /* Small values are for tests; keep it well above the largest event. */
    {KEY("max_output_bytes", CONF_UINT), TOP(max_output_bytes),
     RANGE(4096, 1U << 30), .def = "1048576", .flags = CONF_RELOAD},
    {KEY("dial_timeout", CONF_UINT), TOP(dial_timeout), RANGE(2, 3600),
     .def = "60"},
    {KEY("max_ring_seconds", CONF_UINT), TOP(default_max_ring),
     RANGE(1, 3600), .def = "50", .flags = CONF_RELOAD},
    /* RFC 4028 session timer; 0 = off. */
    {KEY("session_expires", CONF_UINT), TOP(session_expires),
     RANGE(0, 86400), .def = "1800"},
    /* RFC 4028 asks for at least 90; smaller values are for tests. */
    {KEY("min_se", CONF_UINT), TOP(min_se), RANGE(1, 86400), .def = "90"},
    {KEY("log_level", CONF_STR), TOP(log_level), .def = "info",
     .check = check_log_level, .flags = CONF_RELOAD},
    {KEY("log_file", CONF_STR), TOP(log_file), .def = ""},
    {KEY("cdr_file", CONF_STR), TOP(cdr_file), .def = ""},
    {KEY("cdr_format", CONF_STR), TOP(cdr_format), .def = "ctid",
     .check = conf_check_cdr_format},
    {KEY("metrics_listen", CONF_HOSTPORT), TOP(metrics_host),
     TOP2(metrics_port), .def = "", .flags = CONF_OPTIONAL},
    /* At least 1 MiB: a few segments' worth, so rotation can work. */
    {KEY("journal_max_bytes", CONF_U64), TOP(journal_max_bytes),
     RANGE(1UL << 20, 1UL << 40), .def = "268435456"},
    {KEY("journal_max_age", CONF_UINT), TOP(journal_max_age),
     RANGE(60, 3650U * 86400), .def = "604800"},
    /* construct's request_key (reqkey.h); small values are for tests. */
    {KEY("request_key_ttl", CONF_UINT), TOP(request_key_ttl),
     RANGE(1, 3650U * 86400), .def = "86400"},
    {KEY("shutdown_grace", CONF_UINT), TOP(shutdown_grace), RANGE(0, 3600),
     .def = "30", .flags = CONF_RELOAD},
    {KEY("auth_token", CONF_STR), TOP(auth_token), .def = "",
     .check = check_auth_token, .flags = CONF_RELOAD | CONF_SECRET},
    {KEY("allow_unlisted_gateways", CONF_BOOL), TOP(allow_unlisted_gateways),
     .def = "no", .flags = CONF_RELOAD},
    /* The events bus (src/bus.c); "" = off. */
    {KEY("redis", CONF_STR), TOP(redis), .def = "", .check = conf_check_redis},
    {KEY("redis_password", CONF_STR), TOP(redis_password), .def = "",
     .flags = CONF_SECRET},
    {KEY("redis_prefix", CONF_STR), TOP(redis_prefix), .def = "ctid",
     .check = conf_check_redis_prefix},
    /* ~1e6 entries of ~400 bytes: a few hundred MB in Redis at most. */
    {KEY("redis_events_maxlen", CONF_U64), TOP(redis_events_maxlen),
     RANGE(100, 1UL << 40), .def = "1000000"},
    /* The request bus (src/busreq.c), with redis set. */
    {KEY("redis_requests", CONF_BOOL), TOP(redis_requests), .def = "yes"},
    {KEY("redis_claim_idle", CONF_UINT), TOP(redis_claim_idle),
     RANGE(1, 3600), .def = "10"},
    {KEY("redis_replies_maxlen", CONF_U64), TOP(redis_replies_maxlen),
     RANGE(100, 1UL << 40), .def = "100000"},
};

#define N_CONF_KEYS (sizeof conf_keys / sizeof conf_keys[0])

/* ---- defaults, file and overrides --------------------------------------- */

void conf_defaults(struct conf *c)
{
    memset(c, 0, sizeof *c);
    conf_keys_default(conf_keys, N_CONF_KEYS, c);
}

int conf_set(struct conf *c, const char *key, const char *value, char *err,
             size_t errlen)
{
    const struct conf_key *k = conf_keys_find(conf_keys, N_CONF_KEYS, key);
    if (k == NULL)
        return conf_err(err, errlen, "unknown key '%s'", key);
    return conf_key_set(k, c, value, err, errlen);
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
            rc = conf_gateway_start(c, trim(s + 1), why, sizeof why);
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
        rc = gw ? conf_gateway_set(gw, key, value, why, sizeof why)
                : conf_set(c, key, value, why, sizeof why);
    }
    fclose(f);
    if (rc < 0)
        return conf_err(err, errlen, "%s:%u: %s", path, lineno, why);
    return 0;
}

int conf_validate(const struct conf *c, char *err, size_t errlen)
{
    if (conf_gateway_validate(c, err, errlen) < 0)
        return -1;
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
    return conf_validate_trunks(c, err, errlen);
}

const char *conf_media_ip(const struct conf *c)
{
    return c->media_ip[0] ? c->media_ip : c->sip_host;
}

void conf_print(const struct conf *c, FILE *out)
{
    conf_keys_print(conf_keys, N_CONF_KEYS, c, out);
    conf_gateway_print(c, out);
}

const char *conf_default(const char *key)
{
    const struct conf_key *k = conf_keys_find(conf_keys, N_CONF_KEYS, key);
    return k != NULL ? k->def : NULL;
}

bool conf_key_at(bool gateway, size_t i, struct conf_key_info *out)
{
    const struct conf_key *keys = gateway ? conf_gateway_keys : conf_keys;
    if (i >= (gateway ? conf_n_gateway_keys : N_CONF_KEYS))
        return false;
    out->name = keys[i].name;
    out->def = keys[i].def;
    out->reload = (keys[i].flags & CONF_RELOAD) != 0;
    out->secret = (keys[i].flags & CONF_SECRET) != 0;
    return true;
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

/* A reloadable key that differs: logged (a secret only as changed or
 * removed, a yes/no as its new value) and copied into cur. */
static void reload_key(const struct conf_key *k, struct conf *cur,
                       const struct conf *next)
{
    char was[PATH_MAX + 16], now[PATH_MAX + 16];
    conf_key_format(k, cur, was, sizeof was);
    conf_key_format(k, next, now, sizeof now);
    if (k->flags & CONF_SECRET)
        log_info("SIGHUP: %s %s", k->name,
                 ((const char *)next + k->off)[0] ? "changed" : "removed");
    else if (k->type == CONF_BOOL)
        log_info("SIGHUP: %s %s", k->name, now);
    else
        log_info("SIGHUP: %s %s -> %s", k->name, was, now);
    conf_key_copy(k, cur, next);
}

/* Logs every key SIGHUP does not apply whose printed value differs (the
 * printed form hides secrets): it keeps its value until a restart. */
static void log_restart_keys(const struct conf *cur, const struct conf *next)
{
    char was[PATH_MAX + 16], now[PATH_MAX + 16];
    for (size_t i = 0; i < N_CONF_KEYS; i++) {
        const struct conf_key *k = &conf_keys[i];
        if (k->flags & CONF_RELOAD)
            continue;
        conf_key_format(k, cur, was, sizeof was);
        conf_key_format(k, next, now, sizeof now);
        if (strcmp(was, now) != 0)
            log_warn("SIGHUP: '%s = %s' in the file, running with '%s = %s': "
                     "that key takes a restart",
                     k->name, now, k->name, was);
    }
}

unsigned conf_reload(struct conf *cur, const struct conf *next)
{
    unsigned changed = 0;
    for (size_t i = 0; i < N_CONF_KEYS; i++)
        if ((conf_keys[i].flags & CONF_RELOAD) &&
            !conf_key_same(&conf_keys[i], cur, next)) {
            reload_key(&conf_keys[i], cur, next);
            changed++;
        }
    changed += conf_gateway_reload(cur, next);
    log_restart_keys(cur, next);
    return changed;
}
