/* server: the daemon's lifecycle. Owns struct server, which holds every
 * subsystem, and starts them in order (server_init), runs the loop,
 * handles the signals (SIGTERM/SIGINT: shutdown with its grace period and
 * output flush; SIGHUP: reopen files and reload the configuration), pings
 * the systemd watchdog, and frees everything at exit.
 *
 * The work itself is elsewhere: connections and their output in conn.c,
 * the methods in methods.c, sys.subscribe's replay in replay.c, calls in
 * the call table (calls.c). The server wires them together: the call
 * table reports through struct calls_events, connections hand requests
 * to methods_on_request, the metrics endpoint reads server_metrics_view,
 * and the SIP thread's events go straight to the call table and
 * gateways.c through the handlers given to sip_start. */
#include "server.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "bus.h"
#include "busreq.h"
#include "clock.h"
#include "log.h"
#include "media.h"
#include "prompt.h"
#include "sip.h"
#include "uri.h"
#include "work.h"

#define SHUTDOWN_FLUSH_MS 2000 /* longest wait for replies/events to flush */
#define JOURNAL_SEGMENT_BYTES (16u << 20) /* rotate segments at this size */

/* ---- shutdown ----------------------------------------------------------- */

static void server_on_flush_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *srv = arg;
    static const struct timeval tick = {0, 50000};
    conns_sync(&srv->conns);
    srv->flush_waited_ms += 50;
    if ((!conns_output_pending(&srv->conns) &&
         !busreq_pending(srv->busreq)) ||
        srv->flush_waited_ms >= SHUTDOWN_FLUSH_MS)
        event_base_loopbreak(srv->base);
    else
        event_base_once(srv->base, -1, EV_TIMEOUT, server_on_flush_check, srv,
                        &tick);
}

/* Ends every call still in progress with "shutdown" (CANCEL or BYE,
 * then its event), then waits for the output to flush and stops. */
static void server_end_calls(struct server *srv)
{
    calls_end_all(&srv->calls);
    srv->flush_waited_ms = 0;
    server_on_flush_check(-1, 0, srv);
}

static void server_on_grace_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *srv = arg;
    log_info("shutdown_grace of %us over", srv->conf.shutdown_grace);
    server_end_calls(srv);
}

/* SIGTERM/SIGINT: no new calls (503) and no new connections; calls in
 * progress may finish within shutdown_grace, then end with "shutdown".
 * A second signal ends them at once. */
static void server_on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct server *srv = arg;
    if (srv->stopping) {
        if (srv->grace_timer != NULL &&
            evtimer_pending(srv->grace_timer, NULL)) {
            log_info("signal %d again: not waiting for the grace period",
                     (int)sig);
            evtimer_del(srv->grace_timer);
            server_end_calls(srv);
        }
        return;
    }
    srv->stopping = true;
    calls_stop(&srv->calls);
    busreq_stop(srv->busreq);
    sd_notify(0, "STOPPING=1");
    conns_stop(&srv->conns);
    if (calls_active(&srv->calls) == 0 || srv->conf.shutdown_grace == 0) {
        log_info("signal %d: stopping; %u call(s) in progress", (int)sig,
                 calls_active(&srv->calls));
        server_end_calls(srv);
        return;
    }
    log_info("signal %d: stopping; new calls refused, %u call(s) in "
             "progress may finish within shutdown_grace %us",
             (int)sig, calls_active(&srv->calls), srv->conf.shutdown_grace);
    struct timeval tv = {.tv_sec = srv->conf.shutdown_grace};
    srv->grace_timer = evtimer_new(srv->base, server_on_grace_over, srv);
    if (srv->grace_timer == NULL || evtimer_add(srv->grace_timer, &tv) < 0)
        server_end_calls(srv);
}

/* ---- SIGHUP and the watchdog ------------------------------------------- */

/* SIGHUP, configuration: builds it again from the same file and flags
 * and applies what can change under running calls (conf_reload says
 * what). A call keeps its gateway by name; its count moves to the new
 * table (a gateway removed stops counting it). */
static void server_reload(struct server *srv)
{
    static struct conf next; /* large; main loop only, used at once */
    char err[1024];
    if (conf_build(&next, &srv->source, err, sizeof err) < 0) {
        log_error("SIGHUP: configuration not reloaded; running on with the "
                  "previous one: %s", err);
        return;
    }
    static char old_names[CONF_MAX_GATEWAYS][64];
    size_t n_old = srv->conf.n_gateways;
    for (size_t i = 0; i < n_old; i++)
        memcpy(old_names[i], srv->conf.gateways[i].name, sizeof old_names[i]);
    static char old_token[sizeof srv->conf.auth_token];
    memcpy(old_token, srv->conf.auth_token, sizeof old_token);
    unsigned changed = conf_reload(&srv->conf, &next);
    if (srv->conf.auth_token[0] != '\0' &&
        strcmp(old_token, srv->conf.auth_token) != 0)
        conns_revoke_auth(&srv->conns);
    calls_reload(&srv->calls, (const char(*)[64])old_names, n_old);
    gateways_reload(&srv->gateways);
    gateways_resolve(&srv->conf);
    if (sip_gateways_update(srv->sip, &srv->conf) < 0)
        log_error("SIGHUP: out of memory: registrations and OPTIONS pings "
                  "keep the previous gateways");
    log_set_level((enum log_level)log_level_parse(srv->conf.log_level));
    log_info("SIGHUP: configuration reloaded from %s: %u change(s) applied",
             srv->source.path[0] ? srv->source.path : "(flags only)",
             changed);
}

/* SIGHUP: logrotate has moved the log and CDR files (open new ones), and
 * the operator may have edited the configuration. */
static void server_on_hup_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct server *srv = arg;
    if (log_reopen() < 0)
        log_error("SIGHUP: cannot reopen log_file %s: %s",
                  srv->conf.log_file, strerror(errno));
    if (cdr_reopen(&srv->cdr) < 0)
        log_error("SIGHUP: cannot reopen cdr_file %s: %s", srv->cdr.path,
                  strerror(errno));
    log_info("SIGHUP: log and CDR files reopened");
    server_reload(srv);
}

/* The ping comes from the main loop itself, so a loop that hangs stops
 * pinging and systemd restarts the daemon. */
static void server_on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    sd_notify(0, "WATCHDOG=1");
}

/* Tells systemd (Type=notify) that ctid is ready, and starts watchdog
 * pings at half of WatchdogSec. Outside systemd both are no-ops. */
static void server_notify_ready(struct server *srv)
{
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        struct timeval tv = {.tv_sec = (time_t)(usec / 2 / 1000000),
                             .tv_usec = (suseconds_t)(usec / 2 % 1000000)};
        srv->watchdog = event_new(srv->base, -1, EV_PERSIST,
                                  server_on_watchdog, srv);
        if (srv->watchdog == NULL || event_add(srv->watchdog, &tv) < 0)
            log_warn("systemd watchdog requested but cannot be armed");
    }
    char rpc_at[CONF_HOST_MAX + 8], sip_at[CONF_HOST_MAX + 8];
    uri_hostport(rpc_at, sizeof rpc_at, srv->conf.listen_host,
                 srv->conf.listen_port);
    uri_hostport(sip_at, sizeof sip_at, srv->conf.sip_host,
                 srv->conf.sip_port);
    sd_notifyf(0, "READY=1\nSTATUS=listening on %s, SIP %s", rpc_at, sip_at);
}

/* ---- wiring ------------------------------------------------------------- */

static unsigned server_deliver_progress(void *arg, uint64_t creator_conn,
                                        const char *method, json_t *params)
{
    struct server *srv = arg;
    return conns_deliver_progress(&srv->conns, creator_conn, method, params);
}

static unsigned server_deliver_event(void *arg, uint64_t creator_conn,
                                     const char *method, json_t *params)
{
    struct server *srv = arg;
    return conns_deliver_event(&srv->conns, creator_conn, method, params);
}

/* A call released: its creator connection owes one event less. While
 * stopping, the last call released within the grace period ends the
 * loop. */
static void server_on_call_gone(void *arg, uint64_t creator_conn)
{
    struct server *srv = arg;
    if (srv->stopping && calls_active(&srv->calls) == 0 &&
        srv->grace_timer != NULL && evtimer_pending(srv->grace_timer, NULL)) {
        evtimer_del(srv->grace_timer);
        log_info("every call finished within shutdown_grace");
        srv->flush_waited_ms = 0;
        event_base_once(srv->base, -1, EV_TIMEOUT, server_on_flush_check,
                        srv, NULL);
    }
    conns_call_released(&srv->conns, creator_conn);
}

/* The journal's sync hook: each fdatasync of events into the metrics. */
static void server_on_journal_sync(void *arg, double seconds, bool failed)
{
    metrics_on_journal_sync(arg, seconds, failed);
}

/* What /metrics and /healthz show, read at scrape time. */
static void server_metrics_view(void *arg, struct metrics_view *v)
{
    struct server *srv = arg;
    v->active_calls = calls_active(&srv->calls);
    v->connections = srv->conns.n;
    v->uptime = clock_mono_s() - srv->metrics.started;
    v->gateways = srv->conf.gateways;
    v->gateway_calls = calls_gateway_calls(&srv->calls);
    v->gateway_failovers = calls_gateway_failovers(&srv->calls);
    v->n_gateways = srv->conf.n_gateways;
    v->gateway_states = srv->gateways.gw;
    v->stopping = srv->stopping;
    media_stats(srv->media, &v->rtp_sent, &v->rtp_late);
    media_send_errors(srv->media, &v->rtp_send_lost, &v->rtp_send_fatal,
                      &v->rtcp_send_errors);
    v->journal_bytes = journal_total_bytes(&srv->journal);
    v->journal_max_bytes = srv->conf.journal_max_bytes;
    v->journal_first_seq = journal_first_seq(&srv->journal);
    v->journal_last_seq = srv->journal.last_seq;
    v->journal_unsynced = srv->journal.unsynced_records;
    v->bus_lag = bus_lag(srv->bus);
    v->bus_connected = bus_connected(srv->bus);
}

/* The call table reaches SIP and media through these: the real threads. */
static const struct call_ops server_call_ops = {
    .invite = sip_invite,
    .hangup = sip_hangup,
    .media_open = media_stream_open,
    .media_play = media_stream_play,
    .media_update = media_stream_update,
    .media_set_rtcp_port = media_stream_set_rtcp_port,
    .media_close = media_stream_close,
    .media_keys = media_keys,
    .media_stop_play = media_stop_play,
};

/* What the call table needs of the daemon: whatever runs so far. */
static struct call_deps server_call_deps(struct server *srv)
{
    return (struct call_deps){.conf = &srv->conf,
                              .base = srv->base,
                              .sip = srv->sip,
                              .media = srv->media,
                              .prompts = srv->prompts,
                              .work = srv->work,
                              .journal = &srv->journal,
                              .ledger = &srv->ledger,
                              .cdr = &srv->cdr,
                              .metrics = &srv->metrics};
}

/* The call table's gateway_usable hook: gateways.c's health. */
static bool server_gateway_usable(void *arg, int gateway, char *why,
                                  size_t len)
{
    return gateway < 0 || gateways_usable(arg, (size_t)gateway, why, len);
}

/* busreq's room callback: the call table's free slots and rate tokens. */
static unsigned server_bus_room(void *arg)
{
    struct server *srv = arg;
    return calls_room(&srv->calls, rate_now_ns());
}

/* The request bus: one end of a bufferevent pair is an internal
 * connection (the methods, request_key and the group commit as on TCP),
 * the other busreq's. 0, or -1 with err. */
static int server_start_busreq(struct server *srv, char *err, size_t errlen)
{
    struct bufferevent *pair[2];
    if (srv->conf.redis[0] == '\0' || !srv->conf.redis_requests)
        return 0;
    if (bufferevent_pair_new(srv->base, BEV_OPT_DEFER_CALLBACKS, pair) < 0 ||
        conns_adopt(&srv->conns, pair[0], "redis-bus") == NULL) {
        snprintf(err, errlen, "redis %s: cannot start the request bus",
                 srv->conf.redis);
        return -1;
    }
    struct busreq_deps d = {.base = srv->base, .conf = &srv->conf,
                            .bev = pair[1], .room = server_bus_room,
                            .room_arg = srv, .metrics = &srv->metrics};
    if ((srv->busreq = busreq_new(&d)) == NULL) {
        snprintf(err, errlen, "redis %s: cannot start the request bus",
                 srv->conf.redis);
        return -1;
    }
    return 0;
}

/* ---- start-up, one subsystem after the other ---------------------------- */

/* The call table (before anything can fail, so server_free is safe), the
 * connection set, the process ids, the journal and the CDR file. */
static int server_start_state(struct server *srv, char *err, size_t errlen)
{
    struct call_deps deps = server_call_deps(srv);
    struct calls_events events = {server_deliver_event, server_on_call_gone,
                                  srv, server_deliver_progress};
    calls_init(&srv->calls, &deps, &server_call_ops, &events);
    /* construct and failover skip a gateway gateways.c says is down */
    calls_set_gateway_usable(&srv->calls, server_gateway_usable,
                             &srv->gateways);
    struct conn_deps cd = {.conf = &srv->conf, .journal = &srv->journal,
                           .ledger = &srv->ledger, .reqkeys = &srv->reqkeys,
                           .metrics = &srv->metrics};
    conns_init(&srv->conns, &cd, methods_on_request, &srv->methods);
    gateways_init(&srv->gateways, &srv->conf);
    srv->methods = (struct methods){.conf = &srv->conf, .calls = &srv->calls,
                                    .gateways = &srv->gateways,
                                    .conns = &srv->conns,
                                    .metrics = &srv->metrics,
                                    .reqkeys = &srv->reqkeys};
    signal(SIGPIPE, SIG_IGN);
    if (calls_reserve_ids(&srv->calls, srv->conf.state_dir, err, errlen) < 0)
        return -1;
    char jdir[PATH_MAX + 16];
    snprintf(jdir, sizeof jdir, "%s/journal", srv->conf.state_dir);
    /* Segments of at most a quarter of the size limit, so size retention
     * can delete something before the total is far over. */
    uint64_t seg = srv->conf.journal_max_bytes / 4;
    if (seg > JOURNAL_SEGMENT_BYTES)
        seg = JOURNAL_SEGMENT_BYTES;
    if (journal_open(&srv->journal, jdir, srv->conf.journal_max_bytes,
                     srv->conf.journal_max_age, seg, (int64_t)time(NULL), err,
                     errlen) < 0)
        return -1;
    journal_set_sync_hook(&srv->journal, server_on_journal_sync,
                          &srv->metrics);
    log_info("journal %s: events %llu..%llu retained, next seq %llu", jdir,
             (unsigned long long)journal_first_seq(&srv->journal),
             (unsigned long long)srv->journal.last_seq,
             (unsigned long long)journal_next_seq(&srv->journal));
    if (reqkey_open(&srv->reqkeys, srv->conf.state_dir,
                    srv->conf.request_key_ttl, REQKEY_MAX_KEYS,
                    (int64_t)time(NULL), err, errlen) < 0)
        return -1;
    if (cdr_open(&srv->cdr, srv->conf.cdr_file, err, errlen) < 0)
        return -1;
    enum cdr_style style = CDR_CTID;
    (void)cdr_style_parse(srv->conf.cdr_format, &style); /* conf checked */
    cdr_set_style(&srv->cdr, style);
    return 0;
}

/* The main loop, the prompt cache, the media threads and the workers. */
static int server_start_threads(struct server *srv, char *err, size_t errlen)
{
    /* libevent's default monotonic clock is the coarse one, which ticks
     * every 4 ms on some kernels: RTP pacing needs the precise one. */
    struct event_config *cfg = event_config_new();
    if (cfg != NULL) {
        event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
        srv->base = event_base_new_with_config(cfg);
        event_config_free(cfg);
    }
    if (srv->base == NULL) {
        snprintf(err, errlen, "cannot create the event loop");
        return -1;
    }
    srv->prompts = prompt_cache_new(srv->conf.prompt_dir);
    if (srv->prompts == NULL
        || prompt_cache_set_roots(srv->prompts, srv->conf.prompt_roots) < 0) {
        snprintf(err, errlen, "prompt_dir %s: cannot open",
                 srv->conf.prompt_dir);
        return -1;
    }
    srv->media = media_new(srv->base, conf_media_ip(&srv->conf),
                           srv->conf.rtp_port_min, srv->conf.rtp_port_max,
                           srv->conf.media_threads, err, errlen);
    if (srv->media == NULL)
        return -1;
    srv->work = work_pool_new(srv->base, srv->conf.worker_threads);
    if (srv->work == NULL) {
        snprintf(err, errlen, "cannot start %u worker thread(s)",
                 srv->conf.worker_threads);
        return -1;
    }
    return 0;
}

/* Calls a crashed run left open: their events go to the journal now (no
 * client is connected yet; sys.subscribe since replays them), and the SIP
 * thread ends their dialogs before it accepts new calls. Then the call
 * table gets the SIP thread, and the ledger starts afresh. */
static int server_recover_start_sip(struct server *srv, char *err,
                                    size_t errlen)
{
    struct ledger_call *orphans = NULL;
    size_t n_orphans = 0;
    if (ledger_open(&srv->ledger, srv->conf.state_dir, &orphans, &n_orphans,
                    err, errlen) < 0)
        return -1;
    calls_release_orphans(&srv->calls, orphans, n_orphans);
    conns_sync(&srv->conns); /* their events on disk before the ledger
                                forgets */
    struct sip_dialog *dialogs = NULL;
    size_t n_dialogs = 0;
    if (n_orphans > 0 &&
        (dialogs = calloc(n_orphans, sizeof *dialogs)) != NULL)
        for (size_t i = 0; i < n_orphans; i++)
            if (orphans[i].has_dialog)
                dialogs[n_dialogs++] = orphans[i].dialog;
    ledger_calls_free(orphans, n_orphans);
    /* SIP events go straight to their owners: a call's to the call
     * table, a gateway's health to gateways.c. */
    struct sip_handlers sh = {.on_call = calls_on_sip_event,
                              .call_arg = &srv->calls,
                              .on_gateway = gateways_on_sip_event,
                              .gateway_arg = &srv->gateways};
    srv->sip = sip_start(&srv->conf, srv->base, &sh, dialogs, n_dialogs, err,
                         errlen);
    free(dialogs);
    if (srv->sip == NULL)
        return -1;
    gateways_resolve(&srv->conf);
    struct call_deps deps = server_call_deps(srv);
    calls_set_deps(&srv->calls, &deps);
    /* Every orphan is dealt with: start the ledger afresh. */
    struct ledger_rewrite rw;
    if (n_orphans > 0 && (ledger_rewrite_begin(&srv->ledger, &rw) < 0 ||
                          ledger_rewrite_commit(&srv->ledger, &rw) < 0)) {
        snprintf(err, errlen, "%s: cannot start afresh: %s", srv->ledger.path,
                 strerror(errno));
        return -1;
    }
    return 0;
}

static int server_start_signals(struct server *srv, char *err, size_t errlen)
{
    srv->sig_int = evsignal_new(srv->base, SIGINT, server_on_stop_signal, srv);
    srv->sig_term = evsignal_new(srv->base, SIGTERM, server_on_stop_signal,
                                 srv);
    srv->sig_hup = evsignal_new(srv->base, SIGHUP, server_on_hup_signal, srv);
    if (srv->sig_int == NULL || srv->sig_term == NULL ||
        evsignal_add(srv->sig_int, NULL) < 0 ||
        evsignal_add(srv->sig_term, NULL) < 0 || srv->sig_hup == NULL ||
        evsignal_add(srv->sig_hup, NULL) < 0) {
        snprintf(err, errlen, "cannot install signal handlers");
        return -1;
    }
    return 0;
}

int server_init(struct server *srv, const struct conf *conf,
                const struct conf_source *source, char *err, size_t errlen)
{
    memset(srv, 0, sizeof *srv);
    srv->conf = *conf;
    srv->source = *source;
    /* closed, so server_free after an early failure is safe */
    journal_init(&srv->journal);
    ledger_init(&srv->ledger);
    reqkey_init(&srv->reqkeys, conf->request_key_ttl, REQKEY_MAX_KEYS);
    if (server_start_state(srv, err, errlen) < 0 ||
        server_start_threads(srv, err, errlen) < 0 ||
        server_recover_start_sip(srv, err, errlen) < 0 ||
        conns_listen(&srv->conns, srv->base, err, errlen) < 0 ||
        metrics_http_start(&srv->metrics, srv->base, &srv->conf,
                           server_metrics_view, srv, err, errlen) < 0 ||
        server_start_signals(srv, err, errlen) < 0)
        return -1;
    if (srv->conf.redis[0] &&
        (srv->bus = bus_new(srv->base, &srv->conf, &srv->journal)) == NULL) {
        snprintf(err, errlen, "redis %s: cannot start", srv->conf.redis);
        return -1;
    }
    if (server_start_busreq(srv, err, errlen) < 0)
        return -1;
    char rpc_at[CONF_HOST_MAX + 8], sip_at[CONF_HOST_MAX + 8];
    uri_hostport(rpc_at, sizeof rpc_at, srv->conf.listen_host,
                 srv->conf.listen_port);
    uri_hostport(sip_at, sizeof sip_at, srv->conf.sip_host,
                 srv->conf.sip_port);
    log_info("ctid listening on %s (node %s), SIP udp %s, RTP %s ports "
             "%u-%u, prompts %s", rpc_at, srv->conf.node_id, sip_at,
             conf_media_ip(&srv->conf), srv->conf.rtp_port_min,
             srv->conf.rtp_port_max, srv->conf.prompt_dir);
    return 0;
}

int server_run(struct server *srv)
{
    server_notify_ready(srv);
    if (event_base_dispatch(srv->base) < 0) {
        log_error("event loop failed");
        return 1;
    }
    log_info("stopped");
    return 0;
}

void server_free(struct server *srv)
{
    /* Constructs still loading get their 503 while their connections
     * exist; then the workers are joined. */
    calls_cancel_starts(&srv->calls, "shutting down");
    work_pool_free(srv->work);
    busreq_free(srv->busreq); /* its links first: no callback after */
    srv->busreq = NULL;
    conns_free(&srv->conns);
    calls_free(&srv->calls);
    /* The SIP thread goes first: it may still post events for calls. */
    sip_stop(srv->sip);
    if (srv->sig_int)
        event_free(srv->sig_int);
    if (srv->sig_term)
        event_free(srv->sig_term);
    if (srv->sig_hup)
        event_free(srv->sig_hup);
    if (srv->watchdog)
        event_free(srv->watchdog);
    if (srv->grace_timer)
        event_free(srv->grace_timer);
    cdr_close(&srv->cdr);
    bus_free(srv->bus);
    journal_close(&srv->journal);
    ledger_close(&srv->ledger);
    reqkey_close(&srv->reqkeys);
    metrics_http_stop(&srv->metrics);
    media_free(srv->media);
    prompt_cache_free(srv->prompts);
    if (srv->base)
        event_base_free(srv->base);
    memset(srv, 0, sizeof *srv);
}
