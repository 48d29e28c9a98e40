/* gateways: what the main loop knows of each configured gateway's health:
 * registration (register = yes) and OPTIONS pings (options_interval > 0),
 * as the SIP thread reports them (SIP_EV_GATEWAY events, sip_gateway.c),
 * One struct gateways per daemon,
 * embedded in struct server; it holds no pointers it owns (conf is
 * borrowed), so there is nothing to free. Rebuilt by name on SIGHUP.
 * Decides which gateways construct may dial (gateways_usable) and shows
 * them (sys.gateways, metrics). Main thread only. (The registration
 * back-off is the SIP thread's: sip_gateways_retry_delay, sip.h.) */
#ifndef CTID_GATEWAYS_H
#define CTID_GATEWAYS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "conf.h"

struct sip_event;

/* -1 unknown (not probed yet, or not probed at all), 0 false, 1 true. */
struct gateway_state {
    char name[64];
    int up;             /* OPTIONS: -1 until known; -1 when not probed */
    int registered;     /* -1 until known; -1 when not registering */
    bool refused;       /* registered 0 because the registrar refused */
    int reg_status;     /* the last REGISTER's final status, 0 none */
    int status;         /* the last status reported (REGISTER or OPTIONS) */
    bool local;         /* ... made by our own stack (timeout) */
    time_t status_time; /* when it was reported, 0 never */
    time_t reg_time;    /* when reg_status was reported, 0 never */
    int opt_status;     /* OPTIONS: the status of the last up/down change
                           (0: none, or unanswered pings) */
    time_t opt_time;    /* when that change was reported, 0 never */
    uint64_t keys;      /* a hash of the keys the SIP thread's schedule
                           depends on: a change restarts it (and this) */
};

struct gateways {
    const struct conf *conf;                 /* borrowed: the server's */
    struct gateway_state gw[CONF_MAX_GATEWAYS]; /* in conf order */
    size_t n;
};

/* Every gateway of conf unknown; conf is kept (borrowed). */
void gateways_init(struct gateways *g, const struct conf *conf);
/* SIGHUP: g->conf has new gateways; a gateway kept by name keeps its
 * state unless its address, credentials, register or options keys
 * changed (then, as a new one, it starts unknown: the SIP thread starts
 * it over too). */
void gateways_reload(struct gateways *g);
/* sip_start's on_gateway handler (arg: the struct gateways): a
 * SIP_EV_GATEWAY event (anything else is ignored), matched by name. */
void gateways_on_sip_event(void *arg, const struct sip_event *ev);
/* May construct dial gateway index (conf order)? False when it is down by
 * OPTIONS or its registration was refused or failed; why says which
 * ("trunk1 down (OPTIONS)", "trunk2 registration refused (403)"). An
 * index out of range (no gateway) is usable. */
bool gateways_usable(const struct gateways *g, size_t index, char *why,
                     size_t len);
/* sys.gateways' result: an array, one object per gateway in conf order;
 * calls[i] is gateway i's active calls and failovers[i] the calls moved
 * on from it (both the call table's counts). Beside the shared status /
 * status_time (the last change of either kind), register_status /
 * register_time and options_status / options_time keep each concern's
 * own (null when the gateway does not register / is not probed, or
 * before any). New reference, NULL when out of memory. */
json_t *gateways_json(const struct gateways *g, const unsigned *calls,
                      const uint64_t *failovers);
/* gateways_dns.c: logs what each gateway host that is a DNS name
 * resolves to (SRV _sip._TRANSPORT.HOST, then A/AAAA), once, from a
 * short-lived thread of its own: the main loop does not wait. */
void gateways_resolve(const struct conf *c);

#endif
