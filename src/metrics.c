/* metrics: operational counters in Prometheus text, and GET /healthz.
 *
 * Counters live in server.metrics and change only on the main thread,
 * through the metrics_on_* hooks that conn.c, methods.c, calls.c and
 * call.c call at the moment something happens; nothing here takes a
 * lock. Values the daemon already keeps (active calls, per-gateway calls,
 * open connections, stopping) are read at scrape time through the view
 * the server fills (metrics_view_fn) instead of being mirrored, so they
 * can never disagree with it. RTP packet counts come from the media
 * threads by the stream hand-back (media_stats): a stream still playing
 * shows up when it finishes; RTP/RTCP send errors are atomics the media
 * threads add to as they happen (media_send_errors). The journal's sync
 * histogram is fed by the journal's sync hook (metrics_on_journal_sync).
 *
 * The HTTP server is libevent's evhttp on the main loop: a scrape is a
 * few kilobytes of text written at once, cheaper than any hand-off to
 * another thread. It is off unless metrics_listen is set. */
#include "metrics.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "conf.h"
#include "gateways.h"
#include "log.h"
#include "uri.h"
#include "version.h"

#define METRICS_HTTP_TIMEOUT_S 10      /* idle scrape connections */
#define METRICS_HTTP_MAX_HEADERS 8192  /* a scraper sends a few lines */
#define METRICS_HTTP_MAX_BODY 1024     /* GET has none */

/* Bucket upper bounds in seconds: construct takes about 0.2 ms (p50) to
 * 1 ms (p99) on the benchmark machine (docs/performance.md), so the
 * buckets are dense there and reach 250 ms for a stalled loop. */
static const double metrics_bounds[METRICS_N_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
    0.01,   0.025,   0.05,   0.1,   0.25};

/* Journal fdatasync durations: about 0.1 to 2 ms on an SSD, 5 to 30 ms on
 * a spinning disk, seconds when the device stalls; every event and every
 * construct reply waits for one (the group commit, docs/reliability.md). */
static const double metrics_sync_bounds[METRICS_N_SYNC_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,  0.05,    0.1,    0.25,  0.5,    1};

/* on_released error texts (contract §4, docs/protocol.md); index 0 is
 * error null, the last catches a text added later but not here. */
static const char *const metrics_errors[METRICS_N_ERRORS] = {
    "none",         "call rejected", "dial failed", "dial error",
    "call timeout", "ring timeout",  "canceled",    "shutdown",
    "play error",   "other"};

/* Codes construct answers with (docs/protocol.md), then "other". */
static const int metrics_codes[METRICS_N_CODES - 1] = {-32602, -32603, 404,
                                                       503};

/* ---- hooks --------------------------------------------------------------- */

/* One observation into a histogram of n finite bounds (n + 1 buckets,
 * the last +Inf); a negative duration (a clock oddity) counts as 0. */
static void observe(const double *bounds, size_t n, uint64_t *buckets,
                    uint64_t *count, double *sum, double seconds)
{
    size_t i;
    if (seconds < 0)
        seconds = 0;
    for (i = 0; i < n; i++)
        if (seconds <= bounds[i]) /* Prometheus' le is inclusive */
            break;
    buckets[i]++;
    (*count)++;
    *sum += seconds;
}

void metrics_on_construct(struct metrics *m, double seconds, int code)
{
    size_t i;
    observe(metrics_bounds, METRICS_N_BUCKETS, m->latency, &m->latency_count,
            &m->latency_sum, seconds);
    if (code == 0) {
        m->constructed++;
        return;
    }
    for (i = 0; i < METRICS_N_CODES - 1; i++)
        if (metrics_codes[i] == code)
            break;
    m->refused[i]++;
}

void metrics_on_answered(struct metrics *m)
{
    m->answered++;
}

void metrics_on_released(struct metrics *m, const char *error)
{
    size_t i = 0;
    if (error != NULL)
        for (i = 1; i < METRICS_N_ERRORS - 1; i++)
            if (strcmp(metrics_errors[i], error) == 0)
                break;
    m->released[i]++;
}

void metrics_on_connection(struct metrics *m)
{
    m->connections_total++;
}

void metrics_on_event_delivered(struct metrics *m)
{
    m->events_delivered++;
}

void metrics_on_bus_request(struct metrics *m, bool bad)
{
    m->bus_requests++;
    m->bus_refused += bad;
}

void metrics_on_bus_takeover(struct metrics *m)
{
    m->bus_takeovers++;
}

void metrics_on_journal_sync(struct metrics *m, double seconds, bool failed)
{
    observe(metrics_sync_bounds, METRICS_N_SYNC_BUCKETS, m->sync,
            &m->sync_count, &m->sync_sum, seconds);
    m->sync_errors += failed;
}

const char *metrics_error_label(size_t i)
{
    return i < METRICS_N_ERRORS ? metrics_errors[i] : NULL;
}

const char *metrics_code_label(size_t i)
{
    static const char *const labels[METRICS_N_CODES] = {"-32602", "-32603",
                                                        "404", "503", "other"};
    return i < METRICS_N_CODES ? labels[i] : NULL;
}

/* ---- text exposition ------------------------------------------------------ */

/* A label value: backslash, double quote and newline escaped, as the text
 * format requires (gateway names come from the config file). */
static int add_label_value(struct evbuffer *out, const char *s)
{
    int rc = 0;
    for (; *s && rc == 0; s++) {
        if (*s == '\\')
            rc = evbuffer_add(out, "\\\\", 2);
        else if (*s == '"')
            rc = evbuffer_add(out, "\\\"", 2);
        else if (*s == '\n')
            rc = evbuffer_add(out, "\\n", 2);
        else
            rc = evbuffer_add(out, s, 1);
    }
    return rc;
}

static int add_head(struct evbuffer *out, const char *name, const char *type,
                    const char *help)
{
    return evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name,
                               help, name, type) < 0
               ? -1
               : 0;
}

static int add_u64(struct evbuffer *out, const char *name, const char *type,
                   const char *help, uint64_t v)
{
    if (add_head(out, name, type, help) < 0)
        return -1;
    return evbuffer_add_printf(out, "%s %" PRIu64 "\n", name, v) < 0 ? -1 : 0;
}

/* A counter with one label, one sample per label value. */
static int add_counter_by(struct evbuffer *out, const char *name,
                          const char *key, const char *help,
                          const char *(*label)(size_t),
                          const uint64_t *values, size_t n)
{
    int rc = add_head(out, name, "counter", help);
    for (size_t i = 0; i < n; i++)
        rc |= evbuffer_add_printf(out, "%s{%s=\"%s\"} %" PRIu64 "\n", name,
                                  key, label(i), values[i]) < 0;
    return rc;
}

static int add_gateways(struct evbuffer *out, const struct metrics_view *v)
{
    static const char name[] = "ctid_gateway_active_calls";
    unsigned configured = 0;
    int rc = add_head(out, name, "gauge",
                      "Calls in progress per configured gateway; \"(none)\" "
                      "counts calls to a to_uri no gateway matches.");
    for (size_t i = 0; i < v->n_gateways && rc == 0; i++) {
        configured += v->gateway_calls[i];
        if (evbuffer_add_printf(out, "%s{gateway=\"", name) < 0 ||
            add_label_value(out, v->gateways[i].name) < 0 ||
            evbuffer_add_printf(out, "\"} %u\n", v->gateway_calls[i]) < 0)
            rc = -1;
    }
    /* Unsigned, so never below 0 even if the two were read mid-update. */
    unsigned none = v->active_calls > configured ? v->active_calls - configured
                                                 : 0;
    if (rc == 0 &&
        evbuffer_add_printf(out, "%s{gateway=\"(none)\"} %u\n", name, none) < 0)
        rc = -1;
    return rc;
}

/* One sample of a per-gateway family; nothing for a value < 0 (not
 * probed, not registering, or unknown yet). */
static int add_gateway_sample(struct evbuffer *out, const char *name,
                              const char *gateway, long long value)
{
    if (value < 0)
        return 0;
    if (evbuffer_add_printf(out, "%s{gateway=\"", name) < 0 ||
        add_label_value(out, gateway) < 0 ||
        evbuffer_add_printf(out, "\"} %lld\n", value) < 0)
        return -1;
    return 0;
}

/* Issue 13's health families: up and registered only for gateways that
 * are probed or registering, once known. */
static int add_gateway_health(struct evbuffer *out,
                              const struct metrics_view *v)
{
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"ctid_gateway_up", "gauge",
         "1 when the gateway answers OPTIONS, 0 when two pings in a row "
         "went unanswered; absent when not probed or not known yet."},
        {"ctid_gateway_registered", "gauge",
         "1 when registered, 0 when the registration was refused or "
         "failed; absent when not registering or not known yet."},
        {"ctid_gateway_calls", "gauge",
         "Calls in progress (and constructs holding a slot) per gateway."},
        {"ctid_gateway_failovers_total", "counter",
         "Calls moved on from this gateway to the next to_uri entry."},
    };
    int rc = 0;
    for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
        rc |= add_head(out, fam[f].name, fam[f].type, fam[f].help);
        for (size_t i = 0; i < v->n_gateways; i++) {
            const struct gateway_state *s =
                v->gateway_states ? &v->gateway_states[i] : NULL;
            long long val = -1;
            if (f == 0 && s != NULL)
                val = s->up;
            else if (f == 1 && s != NULL)
                val = s->registered;
            else if (f == 2 && v->gateway_calls != NULL)
                val = (long long)v->gateway_calls[i];
            else if (f == 3 && v->gateway_failovers != NULL)
                val = (long long)v->gateway_failovers[i];
            rc |= add_gateway_sample(out, fam[f].name, v->gateways[i].name,
                                     val);
        }
    }
    return rc;
}

/* A histogram family: cumulative buckets, +Inf, _sum, _count. */
struct metrics_hist_view {
    const char *name, *help;
    const double *bounds;
    size_t n;                /* finite bounds; buckets has n + 1 */
    const uint64_t *buckets;
    double sum;
    uint64_t count;
};

static int add_histogram(struct evbuffer *out,
                         const struct metrics_hist_view *h)
{
    uint64_t cum = 0;
    int rc = add_head(out, h->name, "histogram", h->help);
    for (size_t i = 0; i < h->n && rc == 0; i++) {
        cum += h->buckets[i];
        if (evbuffer_add_printf(out, "%s_bucket{le=\"%g\"} %" PRIu64 "\n",
                                h->name, h->bounds[i], cum) < 0)
            rc = -1;
    }
    cum += h->buckets[h->n];
    if (rc == 0 &&
        evbuffer_add_printf(out,
                            "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n"
                            "%s_sum %.9g\n"
                            "%s_count %" PRIu64 "\n",
                            h->name, cum, h->name, h->sum, h->name,
                            h->count) < 0)
        rc = -1;
    return rc;
}

static const char *rtp_error_kind(size_t i)
{
    return i == 0 ? "transient" : "fatal";
}

/* RTP: what was sent (counted at hand-back) and what could not be
 * (counted on the media threads as it happens, media_send_errors). */
static int add_rtp(struct evbuffer *out, const struct metrics_view *v)
{
    const uint64_t errors[2] = {v->rtp_send_lost, v->rtp_send_fatal};
    int rc = 0;
    rc |= add_u64(out, "ctid_rtp_packets_sent_total", "counter",
                  "RTP packets sent, counted when each stream finishes "
                  "playing (a packet whose send() failed transiently "
                  "included).", v->rtp_sent);
    rc |= add_u64(out, "ctid_rtp_packets_late_total", "counter",
                  "RTP packets sent more than 2 ms after their due time, "
                  "counted when each stream finishes playing.", v->rtp_late);
    rc |= add_counter_by(out, "ctid_rtp_send_errors_total", "kind",
                         "RTP send() failures, counted as they happen: "
                         "transient lost that packet and the prompt played "
                         "on (full buffer, ICMP unreachable from the callee), "
                         "fatal stopped the stream (the call ends with play "
                         "error).", rtp_error_kind, errors, 2);
    rc |= add_u64(out, "ctid_rtcp_send_errors_total", "counter",
                  "RTCP reports whose sendto() failed (the stream plays "
                  "on).", v->rtcp_send_errors);
    return rc;
}

/* The event journal's retention: how full it is against journal_max_bytes
 * (past it the oldest segments go, and with them events a client
 * reconnecting with since N may still want), and the seqs it holds; its
 * lag: events not yet on disk, how long each sync takes, and the events
 * not yet in Redis. */
static int add_journal(struct evbuffer *out, const struct metrics *m,
                       const struct metrics_view *v)
{
    int rc = 0;
    rc |= add_u64(out, "ctid_journal_bytes", "gauge",
                  "Size of the event journal's retained segments.",
                  v->journal_bytes);
    rc |= add_u64(out, "ctid_journal_max_bytes", "gauge",
                  "journal_max_bytes: past it the oldest segments are "
                  "deleted.", v->journal_max_bytes);
    rc |= add_u64(out, "ctid_journal_first_seq", "gauge",
                  "Oldest event seq still in the journal (0: empty).",
                  v->journal_first_seq);
    rc |= add_u64(out, "ctid_journal_last_seq", "gauge",
                  "Last event seq handed out.", v->journal_last_seq);
    rc |= add_u64(out, "ctid_journal_unsynced_events", "gauge",
                  "Events written to the journal and not yet fdatasync'ed. "
                  "Every journaled event is synced in the loop turn that "
                  "wrote it, so this is 0 between turns; above 0 only "
                  "while the syncs are stuck.", v->journal_unsynced);
    rc |= add_histogram(out, &(struct metrics_hist_view){
        .name = "ctid_journal_sync_seconds",
        .help = "Duration of each fdatasync of journaled events (the "
                "group commit's): replies and events wait for it.",
        .bounds = metrics_sync_bounds, .n = METRICS_N_SYNC_BUCKETS,
        .buckets = m->sync, .sum = m->sync_sum, .count = m->sync_count});
    rc |= add_u64(out, "ctid_journal_sync_errors_total", "counter",
                  "Journal fdatasyncs that failed (the events went out "
                  "anyway; see the log).", m->sync_errors);
    rc |= add_u64(out, "ctid_bus_lag", "gauge",
                  "Journaled event seqs not yet published to Redis "
                  "(0 with no redis).", v->bus_lag);
    rc |= add_u64(out, "ctid_bus_connected", "gauge",
                  "1 while the Redis events bus is connected and ready.",
                  v->bus_connected ? 1 : 0);
    return rc;
}

int metrics_render(const struct metrics *m, const struct metrics_view *v,
                   struct evbuffer *out)
{
    int rc = 0;

    rc |= add_head(out, "ctid_build_info", "gauge",
                   "Always 1; the version is the label.");
    rc |= evbuffer_add_printf(out, "ctid_build_info{version=\"%s\"} 1\n",
                              CTID_VERSION) < 0;
    rc |= add_u64(out, "ctid_calls_constructed_total", "counter",
                  "Construct requests that started a call.", m->constructed);
    rc |= add_counter_by(out, "ctid_construct_refused_total", "code",
                         "Construct requests answered with an error, by "
                         "JSON-RPC error code.",
                         metrics_code_label, m->refused, METRICS_N_CODES);
    rc |= add_u64(out, "ctid_calls_answered_total", "counter",
                  "Calls the callee answered.", m->answered);
    rc |= add_counter_by(out, "ctid_calls_released_total", "error",
                         "Calls released, by the error of their on_released "
                         "event (\"none\": error null).",
                         metrics_error_label, m->released, METRICS_N_ERRORS);
    rc |= add_u64(out, "ctid_active_calls", "gauge",
                  "Calls constructed and not yet released.", v->active_calls);
    rc |= add_gateways(out, v);
    rc |= add_gateway_health(out, v);
    rc |= add_histogram(out, &(struct metrics_hist_view){
        .name = "ctid_construct_duration_seconds",
        .help = "Time from dispatching a construct request to its reply "
                "being queued, accepted or refused.",
        .bounds = metrics_bounds, .n = METRICS_N_BUCKETS,
        .buckets = m->latency, .sum = m->latency_sum,
        .count = m->latency_count});
    rc |= add_rtp(out, v);
    rc |= add_u64(out, "ctid_rpc_connections", "gauge",
                  "JSON-RPC connections open.", v->connections);
    rc |= add_u64(out, "ctid_rpc_connections_total", "counter",
                  "JSON-RPC connections accepted.", m->connections_total);
    rc |= add_u64(out, "ctid_events_delivered_total", "counter",
                  "Event lines queued to connections (one per receiving "
                  "connection).", m->events_delivered);
    rc |= add_u64(out, "ctid_events_journaled_total", "counter",
                  "Events appended to the durable journal (fdatasync'ed).",
                  m->events_journaled);
    rc |= add_u64(out, "ctid_bus_requests_total", "counter",
                  "Request bus entries handled (read from Redis).",
                  m->bus_requests);
    rc |= add_u64(out, "ctid_bus_requests_refused_total", "counter",
                  "Request bus entries refused as bad (bad reply_to, too "
                  "large, not JSON, no method...).", m->bus_refused);
    rc |= add_u64(out, "ctid_bus_takeovers_total", "counter",
                  "Pending request bus entries taken over from a node "
                  "whose heartbeat is gone.", m->bus_takeovers);
    rc |= add_journal(out, m, v);
    rc |= add_head(out, "ctid_uptime_seconds", "gauge",
                   "Seconds since ctid started.");
    rc |= evbuffer_add_printf(out, "ctid_uptime_seconds %.3f\n",
                              v->uptime) < 0;
    return rc ? -1 : 0;
}

/* ---- HTTP ------------------------------------------------------------------ */

static void metrics_http_reply(struct evhttp_request *req, int code,
                       const char *reason, const char *content_type,
                       struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", content_type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    if (code == 405)
        evhttp_add_header(h, "Allow", "GET, HEAD");
    evhttp_send_reply(req, code, reason, body);
}



static void metrics_on_request(struct evhttp_request *req, void *arg)
{
    const struct metrics *m = arg;
    struct metrics_view v = {0};
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    struct evbuffer *body = evbuffer_new();
    static const char text[] = "text/plain; charset=utf-8";

    if (body == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    m->view(m->view_arg, &v);
    bool is_metrics = path && strcmp(path, "/metrics") == 0;
    bool is_health = path && strcmp(path, "/healthz") == 0;
    if (!is_metrics && !is_health) {
        evbuffer_add_printf(body, "not found\n");
        metrics_http_reply(req, 404, "Not Found", text, body);
    } else if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evbuffer_add_printf(body, "method not allowed\n");
        metrics_http_reply(req, 405, "Method Not Allowed", text, body);
    } else if (is_health) {
        /* 503 from SIGTERM on, so a balancer stops sending work while
         * calls are being ended and events flushed. */
        evbuffer_add_printf(body, v.stopping ? "stopping\n" : "ok\n");
        metrics_http_reply(req, v.stopping ? 503 : 200,
                   v.stopping ? "Service Unavailable" : "OK", text, body);
    } else {
        if (metrics_render(m, &v, body) < 0)
            log_error("metrics: out of memory rendering a scrape");
        metrics_http_reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
                   body);
    }
    evbuffer_free(body);
}

int metrics_http_start(struct metrics *m, struct event_base *base,
                       const struct conf *c, metrics_view_fn view, void *arg,
                       char *err, size_t errlen)
{

    m->started = clock_mono_s();
    m->view = view;
    m->view_arg = arg;
    if (c->metrics_host[0] == '\0')
        return 0;
    m->http = evhttp_new(base);
    if (m->http == NULL) {
        snprintf(err, errlen, "metrics: cannot create the HTTP server");
        return -1;
    }
    /* Every method reaches the handler, which answers 405 to all but GET
     * and HEAD (evhttp itself would say 501). */
    evhttp_set_allowed_methods(
        m->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                     EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                     EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_timeout(m->http, METRICS_HTTP_TIMEOUT_S);
    evhttp_set_max_headers_size(m->http, METRICS_HTTP_MAX_HEADERS);
    evhttp_set_max_body_size(m->http, METRICS_HTTP_MAX_BODY);
    evhttp_set_gencb(m->http, metrics_on_request, m);
    char hp[CONF_HOST_MAX + 8];
    uri_hostport(hp, sizeof hp, c->metrics_host, c->metrics_port);
    errno = 0;
    if (evhttp_bind_socket_with_handle(m->http, c->metrics_host,
                                       c->metrics_port) == NULL) {
        snprintf(err, errlen, "metrics_listen %s: %s", hp,
                 errno ? strerror(errno) : "cannot listen");
        return -1;
    }
    log_info("metrics on http://%s/metrics", hp);
    return 0;
}

void metrics_http_stop(struct metrics *m)
{
    if (m->http != NULL)
        evhttp_free(m->http);
    m->http = NULL;
}
