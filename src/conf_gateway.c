/* conf_gateway: the [gateway NAME] sections of the configuration file
 * (conf_gateway.h): their key table, a section's start and its keys, the
 * checks of each section and across them, their --check-config lines
 * and their part of a SIGHUP reload. conf.c's parser and reload call
 * here; the checks of single trunk values are conf_trunk.c's. */
#include "conf_gateway.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "uri.h"

/* ---- the key table ------------------------------------------------------ */

/* A gateway's port and domain print the values in effect. */
static const char *gateway_port_shown(const void *base)
{
    static _Thread_local char buf[8];
    snprintf(buf, sizeof buf, "%u", conf_gateway_port(base));
    return buf;
}

static const char *gateway_domain_shown(const void *base)
{
    return conf_gateway_domain(base);
}

/* A [gateway NAME] section; the name itself is the section header's.
 * SIGHUP replaces the gateways as a whole (conf_gateway_reload). */
#define GW(f) AT(struct conf_gateway, f)
const struct conf_key conf_gateway_keys[] = {
    {KEY("host", CONF_STR), GW(host), .def = ""},
    /* 0 (the default): 5060, or 5061 for tls; prints the port in effect. */
    {KEY("port", CONF_PORT), GW(port), RANGE(0, 65535), .def = "0",
     .shown = gateway_port_shown},
    {KEY("max_calls", CONF_UINT), GW(max_calls), RANGE(0, 1000000),
     .def = "0"},
    {KEY("username", CONF_STR), GW(username), .def = "",
     .flags = CONF_OMIT_EMPTY},
    {KEY("password", CONF_STR), GW(password), .def = "",
     .flags = CONF_SECRET | CONF_OMIT_EMPTY},
    /* Carrier trunks: how the INVITE is built and sent (conf_trunk.c). */
    {KEY("transport", CONF_STR), GW(transport), .def = "udp",
     .check = conf_check_transport},
    {KEY("domain", CONF_STR), GW(domain), .def = "", .check = conf_check_host,
     .shown = gateway_domain_shown},
    {KEY("proxy", CONF_STR), GW(proxy), .def = "", .check = conf_check_proxy,
     .flags = CONF_OMIT_EMPTY},
    {KEY("caller_id", CONF_STR), GW(caller_id), .def = "",
     .check = conf_check_caller_id, .flags = CONF_OMIT_EMPTY},
    {KEY("pai", CONF_BOOL), GW(pai), .def = "no"},
    {KEY("headers", CONF_STR), GW(headers), .def = "",
     .check = conf_check_headers, .flags = CONF_OMIT_EMPTY},
    {KEY("tls_verify", CONF_BOOL), GW(tls_verify), .def = "yes"},
    {KEY("tls_ca_file", CONF_STR), GW(tls_ca_file), .def = "",
     .check = conf_check_ca_file, .flags = CONF_OMIT_EMPTY},
    /* Registration and health (sip_gateway.c, gateways.c). */
    {KEY("register", CONF_BOOL), GW(reg), .def = "no"},
    /* Registrars ask for minutes; values down to 10 let tests see a
     * refresh (nua refreshes at about half the granted time). */
    {KEY("register_expires", CONF_UINT), GW(register_expires),
     RANGE(10, 86400), .def = "600"},
    /* 0 = no OPTIONS pings; 1 s is for tests. */
    {KEY("options_interval", CONF_UINT), GW(options_interval),
     RANGE(0, 3600), .def = "0"},
};

const size_t conf_n_gateway_keys =
    sizeof conf_gateway_keys / sizeof conf_gateway_keys[0];

/* ---- sections in the file ------------------------------------------------ */

int conf_gateway_start(struct conf *c, const char *section, char *err,
                       size_t errlen)
{
    /* section comes trimmed: the name is what follows the spaces. */
    const char *name = section + strlen("gateway");
    bool ok = strncmp(section, "gateway", 7) == 0 &&
              isspace((unsigned char)*name);
    while (ok && isspace((unsigned char)*name))
        name++;
    if (!ok || name[0] == '\0')
        return conf_err(err, errlen,
                        "unknown section [%s]; expected [gateway NAME]",
                        section);
    if (c->n_gateways == CONF_MAX_GATEWAYS)
        return conf_err(err, errlen, "more than %d gateways",
                        CONF_MAX_GATEWAYS);
    struct conf_gateway *g = &c->gateways[c->n_gateways++];
    memset(g, 0, sizeof *g);
    conf_keys_default(conf_gateway_keys, conf_n_gateway_keys, g);
    if (strlen(name) >= sizeof g->name)
        return conf_err(err, errlen, "gateway name: longer than %zu bytes",
                            sizeof g->name - 1);
    strcpy(g->name, name);
    return 0;
}

int conf_gateway_set(struct conf_gateway *g, const char *key,
                     const char *value, char *err, size_t errlen)
{
    const struct conf_key *k =
        conf_keys_find(conf_gateway_keys, conf_n_gateway_keys, key);
    if (k == NULL)
        return conf_err(err, errlen, "unknown gateway key '%s'", key);
    return conf_key_set(k, g, value, err, errlen);
}

int conf_gateway_validate(const struct conf *c, char *err, size_t errlen)
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
        if (g->reg && g->username[0] == '\0')
            return conf_err(err, errlen,
                            "[gateway %s]: register = yes needs username and "
                            "password (the registrar's credentials)",
                            g->name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->gateways[j].host, g->host) == 0 &&
                conf_gateway_port(&c->gateways[j]) == conf_gateway_port(g))
                return conf_err(err, errlen,
                                "[gateway %s]: same host:port as [gateway %s]",
                                g->name, c->gateways[j].name);
    }
    return 0;
}

void conf_gateway_print(const struct conf *c, FILE *out)
{
    for (size_t i = 0; i < c->n_gateways; i++) {
        fprintf(out, "\n[gateway %s]\n", c->gateways[i].name);
        conf_keys_print(conf_gateway_keys, conf_n_gateway_keys,
                        &c->gateways[i], out);
    }
}

/* ---- SIGHUP reload --------------------------------------------------------- */

static const struct conf_gateway *gateway_named(const struct conf *c,
                                                const char *name)
{
    for (size_t i = 0; i < c->n_gateways; i++)
        if (strcmp(c->gateways[i].name, name) == 0)
            return &c->gateways[i];
    return NULL;
}

/* One line per gateway key that differs, as --check-config prints it (a
 * secret only as changed): the new value applies to the next call. */
static unsigned reload_gateway_keys(const struct conf_gateway *o,
                                    const struct conf_gateway *n)
{
    char was[PATH_MAX + 16], now[PATH_MAX + 16];
    unsigned changed = 0;
    for (size_t k = 0; k < conf_n_gateway_keys; k++) {
        const struct conf_key *key = &conf_gateway_keys[k];
        if (conf_key_same(key, o, n))
            continue;
        changed++;
        if (key->flags & CONF_SECRET) {
            log_info("SIGHUP: [gateway %s] %s changed", n->name, key->name);
            continue;
        }
        conf_key_format(key, o, was, sizeof was);
        conf_key_format(key, n, now, sizeof now);
        log_info("SIGHUP: [gateway %s] %s %s -> %s%s", n->name, key->name,
                 was[0] ? was : "(none)", now[0] ? now : "(none)",
                 strncmp(key->name, "tls_", 4) == 0
                     ? " (takes a restart: the TLS context is made at start)"
                     : "");
    }
    return changed;
}

unsigned conf_gateway_reload(struct conf *cur, const struct conf *next)
{
    unsigned changed = 0;
    for (size_t i = 0; i < cur->n_gateways; i++)
        if (gateway_named(next, cur->gateways[i].name) == NULL) {
            char hp[CONF_HOST_MAX + 8];
            uri_hostport(hp, sizeof hp, cur->gateways[i].host,
                         conf_gateway_port(&cur->gateways[i]));
            log_info("SIGHUP: [gateway %s] removed (%s)",
                     cur->gateways[i].name, hp);
            changed++;
        }
    for (size_t i = 0; i < next->n_gateways; i++) {
        const struct conf_gateway *n = &next->gateways[i];
        const struct conf_gateway *o = gateway_named(cur, n->name);
        if (o == NULL) {
            char hp[CONF_HOST_MAX + 8];
            uri_hostport(hp, sizeof hp, n->host, conf_gateway_port(n));
            log_info("SIGHUP: [gateway %s] added (%s, max_calls %u)",
                     n->name, hp, n->max_calls);
            changed++;
            continue;
        }
        changed += reload_gateway_keys(o, n);
    }
    if (conf_uses_tls(next) && !conf_uses_tls(cur))
        log_warn("SIGHUP: the first tls gateway takes a restart: TLS is set "
                 "up at start");
    memcpy(cur->gateways, next->gateways, sizeof cur->gateways);
    cur->n_gateways = next->n_gateways;
    return changed;
}
