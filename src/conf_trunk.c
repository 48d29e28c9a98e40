/* conf_trunk: what a [gateway NAME] section says about reaching a
 * carrier trunk (issue 13): the checks of its keys (transport, domain,
 * proxy, caller_id, headers, tls_ca_file) and of the global
 * public_address and media_public_address, the values in effect (port
 * by transport, domain by host), and conf_route_gateway, the one answer
 * to "which gateway does this to_uri entry name". The key tables that
 * name these checks are conf.c's and conf_gateway.c's. Main thread, or
 * any one thread at a time; nothing here keeps state. */
#include "conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_key.h"
#include "sipheaders.h"
#include "uri.h"

/* ---- checks of single values (the key tables call them) ---------------- */

int conf_check_transport(const char *key, const char *value, char *err,
                         size_t errlen)
{
    if (strcmp(value, "udp") == 0 || strcmp(value, "tcp") == 0 ||
        strcmp(value, "tls") == 0)
        return 0;
    return conf_err(err, errlen, "%s: expected udp, tcp or tls, got '%s'",
                    key, value);
}

/* A host as a SIP URI would carry it: a hostname, an IPv4 address or a
 * bare IPv6 address; "" is "not set". */
static bool conf_host_ok(const char *value)
{
    struct in6_addr a6;
    struct uri u;
    if (strchr(value, ':') != NULL)
        return inet_pton(AF_INET6, value, &a6) == 1;
    return uri_parse(value, &u, NULL, 0) == 0 && u.user[0] == '\0' &&
           !u.has_port;
}

int conf_check_host(const char *key, const char *value, char *err,
                    size_t errlen)
{
    if (value[0] == '\0' || conf_host_ok(value))
        return 0;
    return conf_err(err, errlen, "%s: expected a host name or address, got "
                    "'%s'", key, value);
}

/* SDP's c= takes an address: IPv4 or IPv6, no name. */
int conf_check_ip(const char *key, const char *value, char *err,
                  size_t errlen)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (value[0] == '\0' || inet_pton(AF_INET, value, &a4) == 1 ||
        inet_pton(AF_INET6, value, &a6) == 1)
        return 0;
    return conf_err(err, errlen, "%s: expected an IPv4 or IPv6 address, got "
                    "'%s'", key, value);
}

/* HOST[:PORT], IPv6 in brackets: what goes into Route: <sip:PROXY;lr>. */
int conf_check_proxy(const char *key, const char *value, char *err,
                     size_t errlen)
{
    struct uri u;
    if (value[0] == '\0')
        return 0;
    if (uri_parse(value, &u, NULL, 0) == 0 && u.user[0] == '\0' &&
        strncasecmp(value, "sip:", 4) != 0)
        return 0;
    return conf_err(err, errlen, "%s: expected HOST[:PORT] (IPv6 in "
                    "brackets), got '%s'", key, value);
}

int conf_check_caller_id(const char *key, const char *value, char *err,
                         size_t errlen)
{
    if (uri_user_valid(value))
        return 0;
    return conf_err(err, errlen, "%s: '%s' is not a SIP user part (no "
                    "spaces, '@', ':', ';', quotes or <>)", key, value);
}

int conf_check_headers(const char *key, const char *value, char *err,
                       size_t errlen)
{
    struct sipheaders hs;
    char why[256];
    if (sipheaders_parse(value, &hs, why, sizeof why) == 0)
        return 0;
    return conf_err(err, errlen, "%s: %s", key, why);
}

/* Read once at start-up (the TLS bundle, conf_trunk_ca_bundle) and on
 * each SIGHUP's check: so refused at load rather than at the first TLS
 * call. */
int conf_check_ca_file(const char *key, const char *value, char *err,
                       size_t errlen)
{
    struct stat st;
    if (value[0] == '\0')
        return 0;
    int fd = open(value, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return conf_err(err, errlen, "%s: %s: %s", key, value,
                        strerror(errno));
    bool regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    close(fd);
    if (!regular)
        return conf_err(err, errlen, "%s: %s: not a regular file", key,
                        value);
    return 0;
}

/* ---- values in effect ---------------------------------------------------- */

enum conf_transport conf_gateway_tp(const struct conf_gateway *g)
{
    if (strcmp(g->transport, "tls") == 0)
        return CONF_TP_TLS;
    if (strcmp(g->transport, "tcp") == 0)
        return CONF_TP_TCP;
    return CONF_TP_UDP;
}

const char *conf_gateway_transport(const struct conf_gateway *g)
{
    static const char *const names[] = {"udp", "tcp", "tls"};
    return names[conf_gateway_tp(g)];
}

uint16_t conf_gateway_port(const struct conf_gateway *g)
{
    if (g->port != 0)
        return g->port;
    return conf_gateway_tp(g) == CONF_TP_TLS ? 5061 : 5060;
}

const char *conf_gateway_domain(const struct conf_gateway *g)
{
    return g->domain[0] ? g->domain : g->host;
}

bool conf_uses_tls(const struct conf *c)
{
    for (size_t i = 0; i < c->n_gateways; i++)
        if (conf_gateway_tp(&c->gateways[i]) == CONF_TP_TLS)
            return true;
    return false;
}

const char *conf_media_public(const struct conf *c)
{
    return c->media_public_address[0] ? c->media_public_address
                                      : conf_media_ip(c);
}

const char *conf_sip_public(const struct conf *c)
{
    return c->public_address[0] ? c->public_address : c->sip_host;
}

/* ---- which gateway a to_uri names ---------------------------------------- */

const struct conf_gateway *conf_find_gateway(const struct conf *c,
                                             const char *host, uint16_t port)
{
    for (size_t i = 0; i < c->n_gateways; i++)
        if (conf_gateway_port(&c->gateways[i]) == port &&
            strcasecmp(c->gateways[i].host, host) == 0)
            return &c->gateways[i];
    return NULL;
}

static const struct conf_gateway *conf_gateway_by_name(const struct conf *c,
                                                       const char *name)
{
    for (size_t i = 0; i < c->n_gateways; i++)
        if (strcasecmp(c->gateways[i].name, name) == 0)
            return &c->gateways[i];
    return NULL;
}

bool conf_route_by_name(const struct conf *c, const struct uri *to)
{
    return !to->has_port && conf_gateway_by_name(c, to->host) != NULL;
}

int conf_route_echo(const struct conf *c, const struct uri *to, char *buf,
                    size_t len)
{
    if (conf_route_by_name(c, to))
        return snprintf(buf, len, "%s%s%s", to->user, to->user[0] ? "@" : "",
                        to->host);
    return uri_format(to, buf, len);
}

const struct conf_gateway *conf_route_gateway(const struct conf *c,
                                              const struct uri *to)
{
    if (!to->has_port) {
        const struct conf_gateway *g = conf_gateway_by_name(c, to->host);
        if (g != NULL)
            return g;
        /* No port: the transport's default, whichever the gateway has. */
        for (size_t i = 0; i < c->n_gateways; i++) {
            g = &c->gateways[i];
            if (strcasecmp(g->host, to->host) == 0 && g->port == 0)
                return g;
        }
    }
    return conf_find_gateway(c, to->host, to->port);
}

/* ---- cross-field checks (conf_validate) ---------------------------------- */

/* sofia-sip has one TLS context per transport, not per destination: every
 * tls gateway shares one verification policy (and one CA bundle,
 * sip_tls.c), so they must agree on tls_verify. */
int conf_validate_trunks(const struct conf *c, char *err, size_t errlen)
{
    const struct conf_gateway *first_tls = NULL;
    for (size_t i = 0; i < c->n_gateways; i++) {
        const struct conf_gateway *g = &c->gateways[i];
        if (conf_gateway_tp(g) != CONF_TP_TLS)
            continue;
        if (first_tls != NULL && first_tls->tls_verify != g->tls_verify)
            return conf_err(err, errlen,
                            "[gateway %s]: tls_verify differs from [gateway "
                            "%s]: all tls gateways share one TLS context "
                            "and must agree", g->name, first_tls->name);
        if (first_tls == NULL)
            first_tls = g;
    }
    const char *bind = conf_media_ip(c), *pub = conf_media_public(c);
    if ((strchr(bind, ':') == NULL) != (strchr(pub, ':') == NULL))
        return conf_err(err, errlen, "media_public_address %s and media_ip "
                        "%s are of different address families", pub, bind);
    return 0;
}
