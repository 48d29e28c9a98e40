/* gateways: the main loop's view of each configured gateway's health
 * (struct gateways, include/gateways.h): registration and OPTIONS state
 * as SIP_EV_GATEWAY events report it, the usable rule construct applies,
 * and sys.gateways' JSON. The registration back-off schedule and the log
 * lines of each change are the SIP thread's (sip_gateway.c), which knows
 * the details. */
#include "gateways.h"

#include <stdio.h>
#include <string.h>

#include "sip.h"
#include "uri.h"

/* FNV-1a over the keys sip_gateway.c's gw_same compares: when they
 * change, the SIP thread starts the gateway's REGISTER and pings over. */
static uint64_t gateways_keys_hash(const struct conf_gateway *c)
{
    char buf[3 * CONF_HOST_MAX + 320];
    int n = snprintf(buf, sizeof buf, "%s|%u|%s|%s|%d|%u|%u|%s|%s|%s",
                     c->host, (unsigned)c->port, c->username, c->password,
                     (int)c->reg, c->register_expires, c->options_interval,
                     c->domain, c->proxy, c->transport);
    uint64_t h = 14695981039346656037ULL;
    for (int i = 0; i < n && i < (int)sizeof buf; i++)
        h = (h ^ (unsigned char)buf[i]) * 1099511628211ULL;
    explicit_bzero(buf, sizeof buf);
    return h;
}

/* Unknown state for conf's gateway i. */
static void gateways_fresh(struct gateway_state *s,
                           const struct conf_gateway *c)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", c->name);
    s->up = -1;
    s->registered = -1;
    s->keys = gateways_keys_hash(c);
}

void gateways_init(struct gateways *g, const struct conf *conf)
{
    memset(g, 0, sizeof *g);
    g->conf = conf;
    g->n = conf->n_gateways;
    for (size_t i = 0; i < g->n; i++)
        gateways_fresh(&g->gw[i], &conf->gateways[i]);
}

void gateways_reload(struct gateways *g)
{
    static struct gateway_state old[CONF_MAX_GATEWAYS]; /* main loop only */
    size_t n_old = g->n;
    memcpy(old, g->gw, sizeof old);
    const struct conf *conf = g->conf;
    g->n = conf->n_gateways;
    for (size_t i = 0; i < g->n; i++) {
        const struct conf_gateway *c = &conf->gateways[i];
        gateways_fresh(&g->gw[i], c);
        for (size_t j = 0; j < n_old; j++)
            if (strcmp(old[j].name, c->name) == 0) {
                /* Same keys: the SIP thread keeps its state, so do we;
                 * else it starts over (unknown). */
                if (old[j].keys == g->gw[i].keys)
                    g->gw[i] = old[j];
                break;
            }
    }
}

static struct gateway_state *gateways_find(struct gateways *g,
                                           const struct sip_ev_gateway *e)
{
    if (e->index < g->n && strcmp(g->gw[e->index].name, e->name) == 0)
        return &g->gw[e->index];
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->gw[i].name, e->name) == 0)
            return &g->gw[i];
    return NULL; /* removed by a SIGHUP since */
}

void gateways_on_sip_event(void *arg, const struct sip_event *ev)
{
    struct gateways *g = arg;
    if (ev->type != SIP_EV_GATEWAY)
        return;
    const struct sip_ev_gateway *e = &ev->gateway;
    struct gateway_state *s = gateways_find(g, e);
    if (s == NULL)
        return;
    s->status = e->status;
    s->local = e->local;
    s->status_time = time(NULL);
    switch (e->what) {
    case SIP_GW_REGISTERED:
        s->registered = 1;
        s->refused = false;
        s->reg_status = e->status;
        s->reg_time = s->status_time;
        break;
    case SIP_GW_REFUSED:
    case SIP_GW_REG_FAILED:
        s->registered = 0;
        s->refused = e->what == SIP_GW_REFUSED;
        s->reg_status = e->status;
        s->reg_time = s->status_time;
        break;
    case SIP_GW_UP:
    case SIP_GW_DOWN:
        s->up = e->what == SIP_GW_UP;
        s->opt_status = e->status;
        s->opt_time = s->status_time;
        break;
    }
}

bool gateways_usable(const struct gateways *g, size_t index, char *why,
                     size_t len)
{
    if (index >= g->n)
        return true;
    const struct gateway_state *s = &g->gw[index];
    if (s->up == 0) {
        snprintf(why, len, "%s down (OPTIONS)", s->name);
        return false;
    }
    if (s->registered == 0) {
        snprintf(why, len, "%s registration %s (%d)", s->name,
                 s->refused ? "refused" : "failed", s->reg_status);
        return false;
    }
    return true;
}

static json_t *gateways_tri(int v)
{
    return v < 0 ? json_null() : json_boolean(v);
}

/* A status code or a time: null for 0 (none yet, or not used). */
static json_t *gateways_num(long long v)
{
    return v ? json_integer((json_int_t)v) : json_null();
}

/* Each concern's own status and time (sys.gateways, docs/protocol.md):
 * null when the gateway does not register / is not probed. */
static int gateways_json_concerns(json_t *o, const struct gateway_state *s,
                                  const struct conf_gateway *c)
{
    bool reg = c->reg, opt = c->options_interval > 0;
    return json_object_set_new(o, "register_status",
                               gateways_num(reg ? s->reg_status : 0)) |
           json_object_set_new(o, "register_time",
                               gateways_num(reg ? s->reg_time : 0)) |
           json_object_set_new(o, "options_status",
                               gateways_num(opt ? s->opt_status : 0)) |
           json_object_set_new(o, "options_time",
                               gateways_num(opt ? s->opt_time : 0));
}

json_t *gateways_json(const struct gateways *g, const unsigned *calls,
                      const uint64_t *failovers)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < g->n; i++) {
        const struct gateway_state *s = &g->gw[i];
        const struct conf_gateway *c = &g->conf->gateways[i];
        char addr[300];
        uri_hostport(addr, sizeof addr, c->host, conf_gateway_port(c));
        json_t *o = json_pack(
            "{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:I, s:I, s:I}", "name",
            s->name, "address", addr, "transport",
            conf_gateway_transport(c), "up", gateways_tri(s->up),
            "registered", gateways_tri(s->registered), "status",
            s->status ? json_integer(s->status) : json_null(),
            "status_time",
            s->status_time ? json_integer((json_int_t)s->status_time)
                           : json_null(),
            "active_calls", (json_int_t)calls[i], "max_calls",
            (json_int_t)c->max_calls, "failovers",
            (json_int_t)failovers[i]);
        if (o != NULL && gateways_json_concerns(o, s, c) != 0) {
            json_decref(o);
            o = NULL;
        }
        if (o == NULL || json_array_append_new(arr, o) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}
