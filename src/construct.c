/* construct: the call table's way in (part of the calls_ module):
 * turning ext.notify_call.construct into a call, without stalling the
 * main loop. Owns the order of the work: the cheap checks first
 * (shutdown, allow-list, max_tts_bytes, capacity, call rate), then a
 * capacity slot held while the prompts load on a worker (struct
 * calls_start, kept in t->starts), then the call itself: RTP port,
 * table, ledger, the waiter's placing hook (request_key), INVITE. The
 * reply goes out through the caller's calls_waiter once the INVITE is
 * handed to SIP, or with the error. */
#include "calls.h"

#include <errno.h>
#include <event2/event.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <uuid/uuid.h>

#include "clock.h"
#include "gateways.h"
#include "journal.h"
#include "log.h"
#include "prompt.h"
#include "sipheaders.h"
#include "sip.h"
#include "uri.h"
#include "work.h"


/* Issue 13: may gateway gi be dialled (env.gateway_usable: not down by
 * OPTIONS, registration not refused or failed)? If not, its reason is
 * logged and appended to skipped when given ("trunk1 down (OPTIONS),
 * trunk2 registration refused (403)"). */
static bool calls_gateway_usable(const struct calls *t, size_t i, int gi,
                                 char *skipped, size_t len)
{
    char why[160];
    if (t->env.gateway_usable == NULL ||
        t->env.gateway_usable(t->env.gateway_usable_arg, gi, why,
                              sizeof why))
        return true;
    log_debug("to_uri[%zu]: gateway %s skipped: %s", i,
              t->env.deps.conf->gateways[gi].name, why);
    size_t used = skipped ? strlen(skipped) : 0;
    if (skipped != NULL && used + 1 < len)
        snprintf(skipped + used, len - used, "%s%s", used ? ", " : "", why);
    return false;
}

int calls_pick_destination(struct calls *t, const struct api_construct *a,
                           size_t start, int *gateway, char *skipped,
                           size_t len)
{
    if (skipped != NULL && len > 0)
        skipped[0] = '\0';
    for (size_t i = start; i < a->n_to; i++) {
        const struct conf_gateway *g =
            conf_route_gateway(t->env.deps.conf, &a->to[i]);
        if (g == NULL) {
            *gateway = -1;
            return (int)i;
        }
        int gi = (int)(g - t->env.deps.conf->gateways);
        if (!calls_gateway_usable(t, i, gi, skipped, len))
            continue;
        if (g->max_calls == 0 || t->gateway_calls[gi] < g->max_calls) {
            *gateway = gi;
            return (int)i;
        }
    }
    return -1;
}

/* The cheap checks of a construct, in order, before any prompt work:
 * shutdown, the allow-list, the type 10 text budget, capacity (global, then
 * per gateway in to_uri order, counting constructs whose prompts are still
 * loading) and last the call rate, so a construct refused for another
 * reason spends no token. Sets the destination and its gateway. */
static int calls_check_construct(struct calls *t,
                                 const struct api_construct *a, int *dest,
                                 int *gateway, struct rpc_error *err)
{
    size_t tts_bytes = 0;

    if (t->stopping)
        return rpc_fail(err, RPC_UNAVAILABLE, "shutting down");
    /* Toll fraud: nothing is dialled that the operator did not list. */
    const struct conf *conf = t->env.deps.conf;
    for (size_t i = 0; i < a->n_to && !conf->allow_unlisted_gateways; i++)
        if (conf_route_gateway(conf, &a->to[i]) == NULL) {
            char hp[300];
            uri_hostport(hp, sizeof hp, a->to[i].host, a->to[i].port);
            return rpc_fail(err, RPC_INVALID_PARAMS,
                            "invalid params: to_uri: %s is not a configured "
                            "gateway", hp);
        }
    for (size_t i = 0; i < a->playlist.n; i++)
        if (a->playlist.items[i].type == PLAY_TTS)
            tts_bytes += strlen(a->playlist.items[i].content);
    if (tts_bytes > t->env.deps.conf->max_tts_bytes)
        return rpc_fail(err, RPC_INVALID_PARAMS,
                        "play_content: %zu bytes of type 10 text, over "
                        "max_tts_bytes %u",
                        tts_bytes, t->env.deps.conf->max_tts_bytes);
    if (t->active + t->pending >= t->env.deps.conf->max_calls)
        return rpc_fail(err, RPC_UNAVAILABLE,
                        "at capacity: %u calls in progress",
                        t->active + t->pending);
    char skipped[400];
    *dest = calls_pick_destination(t, a, 0, gateway, skipped, sizeof skipped);
    if (*dest < 0 && skipped[0] != '\0')
        return rpc_fail(err, RPC_UNAVAILABLE, "no usable gateway: %s",
                        skipped);
    if (*dest < 0)
        return rpc_fail(err, RPC_UNAVAILABLE,
                        "at capacity: every gateway in to_uri is full");
    if (!rate_take(&t->rate, rate_now_ns()))
        return rpc_fail(err, RPC_UNAVAILABLE,
                        "at capacity: more than %u new calls per second",
                        t->env.deps.conf->max_call_rate);
    return 0;
}

/* A new call entry (not yet in the table) for the checked construct. */
static struct call *calls_new_call(struct calls *t, uint64_t creator_conn,
                                   struct api_construct *a, int dest,
                                   int gateway, struct prompt_clip **clips,
                                   size_t n_clips, size_t n_then)
{
    struct call *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->env = &t->env;
    c->process_id = t->next_process_id;
    api_format_res_id(t->env.deps.conf->node_id, c->process_id, c->res_id,
                      sizeof c->res_id);
    c->state = CALL_INITIATED;
    c->creator_conn = creator_conn;
    c->gateway = gateway;
    c->begin_time = time(NULL);
    c->clips = clips;
    c->n_clips = n_clips - n_then;
    if (n_then > 0) { /* keys.then's, after the prompt's (one array) */
        c->then = malloc(n_then * sizeof *c->then);
        if (c->then == NULL) {
            free(c);
            return NULL;
        }
        memcpy(c->then, clips + c->n_clips, n_then * sizeof *c->then);
        c->n_then = n_then;
    }
    c->te_payload_type = -1;
    c->progress = a->progress;
    if (a->has_keys) {
        c->has_keys = true;
        c->inband = a->keys.inband;
        keys_start(&c->keys, &a->keys.rules);
    }
    c->plays = a->play_repeat + 1;
    c->max_ring_seconds = a->max_ring_seconds;
    c->user_data = a->user_data;
    a->user_data = NULL;
    /* What the client sent: "13800000000@trunk1" stays so (the result and
     * the CDR name the gateway), an address gets its port written out. */
    conf_route_echo(t->env.deps.conf, &a->to[dest], c->to_uri,
                    sizeof c->to_uri);
    uuid_t uu;
    uuid_generate_random(uu);
    uuid_unparse_lower(uu, c->uuid);
    snprintf(c->sip_call_id, sizeof c->sip_call_id, "%s@ctid", c->uuid);
    const struct conf_gateway *g =
        gateway >= 0 ? &t->env.deps.conf->gateways[gateway] : NULL;
    snprintf(c->caller, sizeof c->caller, "%s",
             a->from_anonymous ? "anonymous"
             : a->from_given   ? a->from.user
             : g != NULL && g->caller_id[0] ? g->caller_id
                               : t->env.deps.conf->default_from);
    return c;
}

/* A trunk's part of the INVITE: Request-URI and To at its domain, where
 * packets go (next hop or proxy, over its transport), From's user and
 * domain, P-Asserted-Identity, extra headers. Only checked values: the
 * gateway's keys passed conf's checks, the users uri.c's. */
static void calls_invite_trunk(struct sip_invite *inv,
                               const struct conf *conf,
                               const struct conf_gateway *g,
                               const struct api_construct *a)
{
    const char *tp = conf_gateway_transport(g);
    bool own_domain = g->domain[0] && strcasecmp(g->domain, g->host) != 0;
    inv->transport = conf_gateway_tp(g);
    char hostport[300];
    snprintf(inv->to_host, sizeof inv->to_host, "%s", conf_gateway_domain(g));
    /* The port belongs to host, so it shows only beside host, and only
     * when the file names one. */
    inv->to_port = own_domain ? 0 : g->port;
    /* No port configured: none in the next hop either, so sofia resolves
     * it the RFC 3263 way (SRV for the transport, then A/AAAA). */
    if (g->port != 0)
        uri_hostport(hostport, sizeof hostport, g->host, g->port);
    else
        uri_host(hostport, sizeof hostport, g->host);
    if (g->proxy[0])
        snprintf(inv->route, sizeof inv->route, "<sip:%s;transport=%s;lr>",
                 g->proxy, tp);
    else if (own_domain || conf_gateway_tp(g) != CONF_TP_UDP)
        snprintf(inv->next_hop, sizeof inv->next_hop, "sip:%s;transport=%s",
                 hostport, tp);
    const char *user = a->from_given && !a->from_anonymous ? a->from.user
                       : g->caller_id[0]                   ? g->caller_id
                                                           : conf->default_from;
    if (!a->from_given && g->caller_id[0])
        snprintf(inv->from_user, sizeof inv->from_user, "%s", g->caller_id);
    if (inv->from_host[0] == '\0')
        uri_host(inv->from_host, sizeof inv->from_host,
                 conf_gateway_domain(g));
    if (g->pai)
        snprintf(inv->pai_user, sizeof inv->pai_user, "%s", user);
    struct sipheaders hs;
    if (g->headers[0] && sipheaders_parse(g->headers, &hs, NULL, 0) == 0)
        sipheaders_format(&hs, inv->headers, sizeof inv->headers);
    snprintf(inv->username, sizeof inv->username, "%s", g->username);
    snprintf(inv->password, sizeof inv->password, "%s", g->password);
}

int calls_send_invite(struct call *c, const struct api_construct *a, int dest,
                      uint16_t rtp_port)
{
    struct call_env *env = c->env;
    struct sip_invite inv = {0};
    inv.call_id = c->process_id;
    snprintf(inv.res_id, sizeof inv.res_id, "%s", c->res_id);
    snprintf(inv.sip_call_id, sizeof inv.sip_call_id, "%s", c->sip_call_id);
    inv.anonymous = a->from_anonymous;
    if (a->from_given && !a->from_anonymous) {
        snprintf(inv.from_user, sizeof inv.from_user, "%s", a->from.user);
        /* host:port for the From URI, written here rather than by
         * uri_format: that one writes a to_uri clients read back, which
         * needs a scheme before a host named sip, sips or tel. */
        if (a->from.host[0])
            uri_hostport(inv.from_host, sizeof inv.from_host, a->from.host,
                         a->from.port);
    }
    snprintf(inv.to_user, sizeof inv.to_user, "%s", a->to[dest].user);
    snprintf(inv.to_host, sizeof inv.to_host, "%s", a->to[dest].host);
    inv.to_port = a->to[dest].port;
    inv.rtp_port = rtp_port;
    inv.offer_te = c->has_keys;
    if (c->gateway >= 0)
        calls_invite_trunk(&inv, env->deps.conf,
                           &env->deps.conf->gateways[c->gateway], a);
    int rc = env->ops.invite(env->deps.sip, &inv);
    explicit_bzero(inv.password, sizeof inv.password);
    return rc;
}

/* A new call keeps a's from and to_uri entries for failover (failover.c
 * reads them; call.c frees them with the call), dest the entry it dials
 * (nothing kept with a single entry). 0 or -1 (memory). */
static int calls_route_keep(struct call *c, const struct api_construct *a,
                            int dest)
{
    c->route.entry = (size_t)dest;
    if ((size_t)dest + 1 >= a->n_to)
        return 0; /* nothing after it: no failover, nothing to keep */
    struct api_construct *d = calloc(1, sizeof *d);
    if (d == NULL)
        return -1;
    d->from_given = a->from_given;
    d->from_anonymous = a->from_anonymous;
    d->from = a->from;
    memcpy(d->to, a->to, a->n_to * sizeof a->to[0]);
    d->n_to = a->n_to;
    d->play_repeat = a->play_repeat;
    d->max_ring_seconds = a->max_ring_seconds;
    c->route.dial = d;
    return 0;
}

/* Places the checked construct with its prompts loaded (the plan's clips
 * move into the call): RTP port, timers, the table, the ledger, the
 * INVITE. NULL with err and nothing changed otherwise. */
static struct call *calls_place(struct calls *t, uint64_t creator_conn,
                                struct api_construct *a, int dest,
                                int gateway, struct prompt_plan *plan,
                                const struct calls_waiter *w,
                                struct rpc_error *err)
{
    struct prompt_clip **clips = NULL;
    size_t n_clips = 0;
    if (prompt_plan_finish(t->env.deps.prompts, plan, &clips, &n_clips,
                           err) < 0)
        return NULL;
    struct call *c = calls_new_call(t, creator_conn, a, dest, gateway, clips,
                                    n_clips, plan->n_then);
    if (c == NULL) {
        prompt_clips_release(clips, n_clips);
        rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory");
        return NULL;
    }
    if (calls_route_keep(c, a, dest) < 0) {
        rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory");
        call_free(c);
        return NULL;
    }
    uint16_t rtp_port = 0;
    if (call_open(c, &rtp_port, err) < 0) {
        call_free(c);
        return NULL;
    }
    c->rtp_port = rtp_port;
    if (idmap_put(&t->map, c->process_id, c) < 0) {
        rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory");
        call_free(c);
        return NULL;
    }
    /* Durable before the reply: from here on, a crash still ends in
     * exactly one event for this call. */
    c->ledger_seq = journal_next_seq(t->env.deps.journal);
    struct ledger_call lc;
    call_ledger_entry(c, &lc);
    if (ledger_add(t->env.deps.ledger, &lc) < 0) {
        log_error("%s: %s: %s", c->res_id, t->env.deps.ledger->path,
                  strerror(errno));
        idmap_del(&t->map, c->process_id);
        rpc_fail(err, RPC_INTERNAL_ERROR, "cannot record the call durably");
        call_free(c);
        return NULL;
    }
    if (w->placing != NULL && w->placing(w->arg, c, err) < 0) {
        idmap_del(&t->map, c->process_id);
        ledger_remove(t->env.deps.ledger, c->process_id);
        call_free(c);
        return NULL;
    }
    if (calls_send_invite(c, a, dest, rtp_port) < 0) {
        idmap_del(&t->map, c->process_id);
        ledger_remove(t->env.deps.ledger, c->process_id);
        rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory");
        call_free(c);
        return NULL;
    }
    t->next_process_id++;
    t->active++;
    if (gateway >= 0)
        t->gateway_calls[gateway]++;
    struct timeval tv = {.tv_sec = t->env.deps.conf->dial_timeout};
    evtimer_add(c->dial_timer, &tv);
    log_info("%s: constructed to %s, %zu clip(s), plays %u, max ring %us",
             c->res_id, c->to_uri, c->n_clips, c->plays,
             c->max_ring_seconds);
    return c;
}

/* ---- constructs waiting for their prompts ------------------------------ */

/* A construct whose prompts load on a worker. It holds a slot of max_calls
 * (t->pending) and of its gateway from the checks until it is
 * placed or refused, so constructs in flight never overcommit. Owned by
 * t->starts; its job by the worker pool between submit and done. */
struct calls_start {
    struct work_job job;       /* first: done gets this back */
    struct calls *table;
    uint64_t creator_conn;
    struct api_construct a;    /* owned, moved from the caller */
    int dest, gateway;
    struct prompt_plan plan;   /* the worker's while the job runs */
    int rc;                    /* prompt_plan_load's result, and its err */
    struct rpc_error err;
    struct calls_waiter waiter;
    bool reserved;             /* still holds its capacity slot */
    bool answered;             /* waiter.done called (shutdown) */
    uint64_t t0_ns;            /* clock_mono_ns(), for the log */
    struct calls_start *prev, *next;
};

static void calls_start_unreserve(struct calls_start *s)
{
    struct calls *t = s->table;
    if (!s->reserved)
        return;
    s->reserved = false;
    t->pending--;
    if (s->gateway >= 0)
        t->gateway_calls[s->gateway]--;
}

static void calls_start_free(struct calls_start *s)
{
    struct calls *t = s->table;
    calls_start_unreserve(s);
    if (s->prev)
        s->prev->next = s->next;
    else
        t->starts = s->next;
    if (s->next)
        s->next->prev = s->prev;
    prompt_plan_free(&s->plan);
    api_construct_free(&s->a);
    free(s);
}

static void calls_start_run(struct work_job *job)
{
    struct calls_start *s = (struct calls_start *)job;
    s->rc = prompt_plan_load(&s->plan, &job->cancelled, &s->err);
}

/* Main thread, the job back from its worker: place the call, or say why
 * not. A construct whose connection has gone is not placed: no reply can
 * reach anyone, so nothing was promised. */
static void calls_start_done(struct work_job *job)
{
    struct calls_start *s = (struct calls_start *)job;
    struct calls *t = s->table;
    struct call *c = NULL;
    struct rpc_error err = s->err;
    if (s->answered) {
        calls_start_free(s);
        return;
    }
    calls_start_unreserve(s); /* calls_place counts it as a call instead */
    if (!job->ran || atomic_load(&job->cancelled) || t->stopping) {
        rpc_fail(&err, RPC_UNAVAILABLE, "shutting down");
    } else if (s->rc < 0) {
        prompt_plan_forget_failed(t->env.deps.prompts, &s->plan);
        rate_give_back(&t->rate);
    } else if (!s->waiter.wanted(s->waiter.arg)) {
        log_info("connection %llu closed while its construct's prompts "
                 "loaded (%.0f ms): no call placed",
                 (unsigned long long)s->creator_conn,
                 clock_ms_since(s->t0_ns));
        rate_give_back(&t->rate);
        rpc_fail(&err, RPC_UNAVAILABLE, "connection closed");
    } else {
        c = calls_place(t, s->creator_conn, &s->a, s->dest, s->gateway,
                        &s->plan, &s->waiter, &err);
        if (c != NULL)
            log_info("%s: prompts loaded off the main loop in %.0f ms",
                     c->res_id, clock_ms_since(s->t0_ns));
    }
    s->waiter.done(s->waiter.arg, c, c ? NULL : &err);
    calls_start_free(s);
}

/* Queues the prompt work of a checked construct; reports through w. */
static void calls_start_defer(struct calls *t, uint64_t creator_conn,
                             struct api_construct *a, int dest, int gateway,
                             struct prompt_plan *plan,
                             const struct calls_waiter *w)
{
    struct calls_start *s = calloc(1, sizeof *s);
    struct rpc_error err;
    if (s == NULL) {
        prompt_plan_free(plan);
        rpc_fail(&err, RPC_INTERNAL_ERROR, "out of memory");
        w->done(w->arg, NULL, &err);
        return;
    }
    s->job.run = calls_start_run;
    s->job.done = calls_start_done;
    s->table = t;
    s->creator_conn = creator_conn;
    s->a = *a; /* moved: the caller's copy frees nothing */
    memset(a, 0, sizeof *a);
    s->dest = dest;
    s->gateway = gateway;
    s->plan = *plan;
    s->waiter = *w;
    s->reserved = true;
    s->t0_ns = clock_mono_ns();
    t->pending++;
    if (gateway >= 0)
        t->gateway_calls[gateway]++;
    s->next = t->starts;
    if (t->starts)
        t->starts->prev = s;
    t->starts = s;
    log_debug("connection %llu: %zu of %zu prompt(s) to load off the main "
              "loop", (unsigned long long)creator_conn, plan->missing,
              plan->n);
    work_submit(t->env.deps.work, &s->job);
}

/* keys.then (issue 14) is checked and loaded like play_content, in the
 * same plan: its clips go last (plan->n_then). -1 with err, plan freed. */
static int calls_plan_then(struct calls *t, const struct api_construct *a,
                           struct prompt_plan *plan, struct rpc_error *err)
{
    if (!a->has_keys || a->keys.then.n == 0)
        return 0;
    struct prompt_plan then;
    if (prompt_plan_make(t->env.deps.prompts, &a->keys.then, &then, err) <
        0) {
        char why[sizeof err->message];
        snprintf(why, sizeof why, "%s", err->message);
        rpc_fail(err, err->code, "keys.then: %s", why);
        snprintf(err->param, sizeof err->param, "keys");
        prompt_plan_free(plan);
        return -1;
    }
    if (prompt_plan_append_then(plan, &then) < 0) {
        prompt_plan_free(&then);
        prompt_plan_free(plan);
        return rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory");
    }
    return 0;
}

void calls_construct(struct calls *t, uint64_t creator_conn,
                struct api_construct *a, const struct calls_waiter *w)
{
    struct rpc_error err;
    struct prompt_plan plan;
    int dest = -1, gateway = -1;
    if (calls_check_construct(t, a, &dest, &gateway, &err) < 0) {
        w->done(w->arg, NULL, &err);
        return;
    }
    prompt_cache_set_max_seconds(t->env.deps.prompts,
                                 t->env.deps.conf->max_prompt_seconds);
    if (prompt_plan_make(t->env.deps.prompts, &a->playlist, &plan, &err) < 0 ||
        calls_plan_then(t, a, &plan, &err) < 0) {
        rate_give_back(&t->rate);
        w->done(w->arg, NULL, &err);
        return;
    }
    if (plan.missing > 0 && t->env.deps.work != NULL) {
        calls_start_defer(t, creator_conn, a, dest, gateway, &plan, w);
        return;
    }
    /* Every prompt cached (or no pool, in tests): cheap, so at once. */
    struct call *c = NULL;
    if (prompt_plan_load(&plan, NULL, &err) == 0)
        c = calls_place(t, creator_conn, a, dest, gateway, &plan, w, &err);
    else
        prompt_plan_forget_failed(t->env.deps.prompts, &plan);
    prompt_plan_free(&plan);
    if (c == NULL)
        rate_give_back(&t->rate);
    w->done(w->arg, c, c ? NULL : &err);
}

void calls_cancel_starts(struct calls *t, const char *why)
{
    struct rpc_error err;
    rpc_fail(&err, RPC_UNAVAILABLE, "%s", why);
    for (struct calls_start *s = t->starts; s != NULL; s = s->next) {
        if (s->answered)
            continue;
        atomic_store(&s->job.cancelled, true);
        calls_start_unreserve(s);
        s->answered = true;
        s->waiter.done(s->waiter.arg, NULL, &err);
    }
}

