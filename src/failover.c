/* failover: moving a call along its to_uri list (part of the calls_
 * module; issue 13, "Routing"). Reads a call's kept to_uri list (struct
 * call_route: the construct's from and to entries, kept by construct.c,
 * freed with the call by call.c) and owns the entries tried,
 * the decision inputs the state machine reads (is an entry left?), and
 * the move itself: the per-gateway counts, the failover metric and log
 * line, a new SIP Call-ID, the ledger's record of the new attempt and the
 * next INVITE. Whether a failure moves on at all is call_transition's
 * (call.c). Main thread only. */
#include "calls.h"

#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "log.h"
#include "uri.h"

/* The next entry for c with capacity and usable, its gateway in *gw; -1
 * none. c's own slot counts as free: it leaves its gateway either way. */
static int calls_route_next(struct calls *t, const struct call *c, int *gw)
{
    if (c->route.dial == NULL || t->stopping)
        return -1;
    if (c->gateway >= 0)
        t->gateway_calls[c->gateway]--;
    int next = calls_pick_destination(t, c->route.dial, c->route.entry + 1,
                                      gw, NULL, 0);
    if (c->gateway >= 0)
        t->gateway_calls[c->gateway]++;
    return next;
}

bool calls_route_entry_left(void *table, const struct call *c)
{
    int gw;
    return calls_route_next(table, c, &gw) >= 0;
}

static const char *calls_gateway_name(const struct calls *t, int gateway)
{
    return gateway >= 0 ? t->env.deps.conf->gateways[gateway].name : "";
}

/* Keeps the attempt c is leaving (or ending with) for on_released. */
static int calls_route_note(const struct calls *t, struct call *c, int status)
{
    struct call_attempt *n = realloc(
        c->route.tried, (c->route.n_tried + 1) * sizeof *c->route.tried);
    if (n == NULL)
        return -1;
    c->route.tried = n;
    struct call_attempt *at = &n[c->route.n_tried++];
    snprintf(at->to_uri, sizeof at->to_uri, "%s", c->to_uri);
    snprintf(at->gateway, sizeof at->gateway, "%s",
             calls_gateway_name(t, c->gateway));
    at->status = status;
    return 0;
}

/* Where an entry goes, for the failover log line: its gateway's address
 * (host and the port in effect, as sys.gateways shows it) when it names
 * one, by address or by section name ("13800000000@trunk1" would
 * otherwise print as trunk1:5060, a host that does not exist); else
 * the entry's own host:port (allow_unlisted_gateways). */
static void route_entry_address(const struct calls *t, const struct uri *u,
                                char *buf, size_t len)
{
    const struct conf_gateway *g =
        conf_route_gateway(t->env.deps.conf, u);
    if (g != NULL)
        uri_hostport(buf, len, g->host, conf_gateway_port(g));
    else
        uri_hostport(buf, len, u->host, u->port);
}

int calls_route_next_target(void *table, struct call *c, int status,
                            bool local)
{
    struct calls *t = table;
    int gw = -1;
    int next = calls_route_next(t, c, &gw);
    if (next < 0 || calls_route_note(t, c, status) < 0)
        return -1;
    const struct uri *from = &c->route.dial->to[c->route.entry];
    const struct uri *to = &c->route.dial->to[next];
    char was[300], now[300];
    route_entry_address(t, from, was, sizeof was);
    route_entry_address(t, to, now, sizeof now);
    log_warn("%s: %d%s from %s (%s); trying to_uri[%d] %s", c->res_id,
             status, local ? " (our stack)" : "",
             c->gateway >= 0 ? calls_gateway_name(t, c->gateway) : "-", was,
             next, now);
    if (c->gateway >= 0) {
        t->gateway_calls[c->gateway]--;
        t->gateway_failovers[c->gateway]++;
    }
    if (gw >= 0)
        t->gateway_calls[gw]++;
    c->gateway = gw;
    c->route.entry = (size_t)next;
    c->responded = false; /* "call timeout" or "dial error": this attempt's */
    conf_route_echo(t->env.deps.conf, to, c->to_uri, sizeof c->to_uri);
    uuid_t uu;
    char id[37];
    uuid_generate_random(uu);
    uuid_unparse_lower(uu, id);
    snprintf(c->sip_call_id, sizeof c->sip_call_id, "%s@ctid", id);
    free(c->dialog); /* the last attempt's: nothing to end there */
    c->dialog = NULL;
    /* The ledger follows the attempt: an open record again (the later
     * wins), with the new to_uri and Call-ID and no dialog yet. */
    struct ledger_call lc;
    call_ledger_entry(c, &lc);
    if (ledger_add(t->env.deps.ledger, &lc) < 0)
        log_warn("%s: %s: the new attempt is not recorded", c->res_id,
                 t->env.deps.ledger->path);
    return calls_send_invite(c, c->route.dial, next, c->rtp_port);
}

json_t *calls_route_attempts(const struct calls *t, const struct call *c,
                             int status)
{
    if (c->route.n_tried == 0)
        return NULL;
    json_t *arr = json_array();
    for (size_t i = 0; i <= c->route.n_tried; i++) {
        const struct call_attempt *at =
            i < c->route.n_tried ? &c->route.tried[i] : NULL;
        const char *gw = at ? at->gateway : calls_gateway_name(t, c->gateway);
        json_array_append_new(
            arr, json_pack("{s:s, s:o, s:i}", "to_uri",
                           at ? at->to_uri : c->to_uri, "gateway",
                           gw[0] ? json_string(gw) : json_null(), "status",
                           at ? at->status : status));
    }
    return arr;
}
