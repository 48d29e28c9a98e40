/* gateways_dns: logs once what each gateway host that is a DNS name
 * resolves to (issue 13: "the resolved addresses appear in the log
 * once"), at start-up and after each SIGHUP. It looks up what the SIP
 * stack will: the next hop (the `proxy` when there is one, else `host`),
 * with SRV first only when no port is configured (RFC 3263 4.2: a port
 * means A/AAAA only). The lookups (res_query for SRV, getaddrinfo for
 * A/AAAA) block, so they run on a short-lived detached thread of their
 * own that owns a heap copy of the names (struct gwdns_job, freed by that
 * thread) and only logs; the SIP stack resolves again itself when it
 * sends, with its own resolver (sres: DNS only, never /etc/hosts, which
 * getaddrinfo here may read). */
#include "gateways.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <pthread.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "uri.h"

struct gwdns_job {
    size_t n;
    struct {
        char name[64];
        char host[CONF_HOST_MAX];  /* the next hop's host */
        bool proxy;                /* that host is the proxy's */
        uint16_t port;             /* configured; 0: SRV, then default */
        uint16_t default_port;     /* 5060, 5061 for tls */
        char transport[8];
    } gw[CONF_MAX_GATEWAYS];
};

/* Appends "target:port (SRV)" for each SRV record of qname to out. */
static void gwdns_srv(const char *qname, char *out, size_t len)
{
    unsigned char ans[4096];
    int n = res_query(qname, ns_c_in, ns_t_srv, ans, sizeof ans);
    ns_msg msg;
    if (n <= 0 || ns_initparse(ans, n, &msg) < 0)
        return;
    for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
        ns_rr rr;
        char target[NS_MAXDNAME];
        if (ns_parserr(&msg, ns_s_an, i, &rr) < 0 ||
            ns_rr_type(rr) != ns_t_srv || ns_rr_rdlen(rr) < 7)
            continue;
        const unsigned char *rd = ns_rr_rdata(rr);
        unsigned port = ns_get16(rd + 4);
        if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), rd + 6, target,
                      sizeof target) < 0)
            continue;
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s%s:%u (SRV %s)",
                 used ? ", " : "", target, port, qname);
    }
}

/* Appends each A/AAAA address of host with port to out. */
static void gwdns_addresses(const char *host, uint16_t port, char *out,
                            size_t len)
{
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        char ip[INET6_ADDRSTRLEN], hp[INET6_ADDRSTRLEN + 10];
        const void *a =
            ai->ai_family == AF_INET
                ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)
                      ->sin6_addr;
        if (inet_ntop(ai->ai_family, a, ip, sizeof ip) == NULL)
            continue;
        uri_hostport(hp, sizeof hp, ip, port);
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s%s (%s)", used ? ", " : "", hp,
                 ai->ai_family == AF_INET ? "A" : "AAAA");
    }
    freeaddrinfo(res);
}

static void *gwdns_main(void *arg)
{
    struct gwdns_job *job = arg;
    for (size_t i = 0; i < job->n; i++) {
        char out[1024] = "", qname[CONF_HOST_MAX + 16];
        const char *h = job->gw[i].host;
        /* RFC 3263 4.1: _sips._tcp for TLS, else _sip._udp or _sip._tcp */
        const char *tp = job->gw[i].transport;
        uint16_t port = job->gw[i].port;
        snprintf(qname, sizeof qname, "%s.%s",
                 strcmp(tp, "tls") == 0   ? "_sips._tcp"
                 : strcmp(tp, "tcp") == 0 ? "_sip._tcp"
                                          : "_sip._udp",
                 h);
        if (port == 0)
            gwdns_srv(qname, out, sizeof out);
        gwdns_addresses(h, port ? port : job->gw[i].default_port, out,
                        sizeof out);
        const char *what = job->gw[i].proxy ? "proxy " : "";
        if (out[0])
            log_info("gateway %s: %s%s resolves to %s", job->gw[i].name,
                     what, h, out);
        else
            log_warn("gateway %s: %s%s does not resolve (no %sA or AAAA "
                     "record)", job->gw[i].name, what, h,
                     port == 0 ? "SRV, " : "");
    }
    free(job);
    return NULL;
}

static bool gwdns_is_address(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 ||
           inet_pton(AF_INET6, host, buf) == 1;
}

void gateways_resolve(const struct conf *c)
{
    struct gwdns_job *job = calloc(1, sizeof *job);
    if (job == NULL)
        return;
    for (size_t i = 0; i < c->n_gateways; i++) {
        const struct conf_gateway *g = &c->gateways[i];
        struct uri proxy;
        const char *host = g->host;
        uint16_t port = g->port;
        /* conf checked the proxy; a port of its own or none */
        if (g->proxy[0] && uri_parse(g->proxy, &proxy, NULL, 0) == 0) {
            host = proxy.host;
            port = proxy.has_port ? proxy.port : 0;
        }
        if (gwdns_is_address(host))
            continue;
        snprintf(job->gw[job->n].name, sizeof job->gw[0].name, "%s",
                 g->name);
        snprintf(job->gw[job->n].host, sizeof job->gw[0].host, "%s", host);
        job->gw[job->n].proxy = host != g->host;
        job->gw[job->n].port = port;
        job->gw[job->n].default_port =
            conf_gateway_tp(g) == CONF_TP_TLS ? 5061 : 5060;
        snprintf(job->gw[job->n].transport, sizeof job->gw[0].transport,
                 "%s", conf_gateway_transport(g));
        job->n++;
    }
    pthread_attr_t attr;
    pthread_t th;
    if (job->n == 0 || pthread_attr_init(&attr) != 0) {
        free(job);
        return;
    }
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, gwdns_main, job) != 0) {
        log_warn("gateways: cannot start the DNS look-up thread; resolved "
                 "addresses not logged");
        free(job);
    }
    pthread_attr_destroy(&attr);
}
