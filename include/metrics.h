/* metrics: the daemon's operational counters and their HTTP endpoint.
 * Owns struct metrics (counters, the construct latency and journal sync
 * histograms, all updated on the main thread by one-line hooks), the
 * Prometheus text
 * rendering, and the optional evhttp server on metrics_listen that serves
 * GET /metrics and GET /healthz from the main loop. */
#ifndef CTID_METRICS_H
#define CTID_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct evhttp;
struct event_base;
struct conf;
struct conf_gateway;
struct gateway_state;

/* Finite upper bounds of the construct latency histogram, in seconds; the
 * +Inf bucket comes after them. */
#define METRICS_N_BUCKETS 11
/* Finite upper bounds of the journal fdatasync histogram (seconds). */
#define METRICS_N_SYNC_BUCKETS 13
/* Release outcomes: "none" (error null), the contract's error texts, and
 * "other" for a text this table does not know. */
#define METRICS_N_ERRORS 10
/* Construct error codes: the ones construct can answer, then "other". */
#define METRICS_N_CODES 5

struct metrics_view;
/* Fills a view at scrape time (the server's, so metrics_ does not know
 * struct server). */
typedef void (*metrics_view_fn)(void *arg, struct metrics_view *v);

struct metrics {
    uint64_t constructed;                      /* construct results sent */
    uint64_t answered;                         /* calls that entered Answered */
    uint64_t released[METRICS_N_ERRORS];       /* by metrics_error_label */
    uint64_t refused[METRICS_N_CODES];         /* by metrics_code_label */
    uint64_t latency[METRICS_N_BUCKETS + 1];   /* per bucket, last is +Inf */
    uint64_t latency_count;
    double latency_sum;                        /* seconds */
    uint64_t connections_total;                /* RPC connections accepted */
    uint64_t events_delivered;                 /* event lines queued, per conn */
    uint64_t events_journaled;                 /* appended to the journal */
    uint64_t bus_requests;                     /* request bus entries handled */
    uint64_t bus_refused;                      /* ... of them bad entries */
    uint64_t bus_takeovers;                    /* dead nodes' entries taken */
    uint64_t sync[METRICS_N_SYNC_BUCKETS + 1]; /* journal fdatasyncs, per
                                                  bucket, last is +Inf */
    uint64_t sync_count;
    double sync_sum;                           /* seconds */
    uint64_t sync_errors;                      /* ... of them failed */
    double started;                            /* clock_mono_s() at start-up */
    struct evhttp *http;                       /* NULL: metrics_listen empty */
    metrics_view_fn view;                      /* the rest, at scrape time */
    void *view_arg;
};

/* Values the daemon holds elsewhere, read when a scrape comes in. */
struct metrics_view {
    unsigned active_calls;
    unsigned connections;                   /* RPC connections open */
    uint64_t rtp_sent;                      /* media_stats() */
    uint64_t rtp_late;
    uint64_t rtp_send_lost;                 /* media_send_errors() */
    uint64_t rtp_send_fatal;
    uint64_t rtcp_send_errors;
    double uptime;                          /* seconds */
    const struct conf_gateway *gateways;    /* conf order */
    const unsigned *gateway_calls;          /* active calls of each */
    const uint64_t *gateway_failovers;      /* calls moved away from each
                                               (NULL: not rendered) */
    size_t n_gateways;
    const struct gateway_state *gateway_states; /* conf order, n_gateways */
    bool stopping;                          /* /healthz: 503 */
    uint64_t journal_bytes;                 /* retained segments' size */
    uint64_t journal_max_bytes;             /* journal_max_bytes */
    uint64_t journal_first_seq;             /* oldest retained, 0: none */
    uint64_t journal_last_seq;              /* last handed out */
    uint64_t journal_unsynced;              /* written, not yet fdatasync'ed */
    uint64_t bus_lag;                       /* bus_lag(): not yet in Redis */
    bool bus_connected;                     /* bus_connected() */
};


/* A construct was answered after `seconds`: code 0 for a result (a call
 * was constructed), else the JSON-RPC error code of the refusal. */
void metrics_on_construct(struct metrics *m, double seconds, int code);
void metrics_on_answered(struct metrics *m);
/* A call was released with this on_released error (NULL: none). */
void metrics_on_released(struct metrics *m, const char *error);
void metrics_on_connection(struct metrics *m);
void metrics_on_event_delivered(struct metrics *m);
/* The request bus (busreq.c): an entry handled (bad: refused or answered
 * with an entry error), an entry taken over from a dead node. */
void metrics_on_bus_request(struct metrics *m, bool bad);
void metrics_on_bus_takeover(struct metrics *m);
/* The journal's fdatasync of written events took `seconds` (its sync
 * hook, journal_set_sync_hook); failed: it returned an error. */
void metrics_on_journal_sync(struct metrics *m, double seconds, bool failed);

/* The label value of index i of released[] / refused[]. */
const char *metrics_error_label(size_t i);
const char *metrics_code_label(size_t i);

/* Appends the Prometheus text exposition (format 0.0.4). 0, or -1 when
 * out of memory. */
int metrics_render(const struct metrics *m, const struct metrics_view *v,
                   struct evbuffer *out);

/* Records the start time and, when conf.metrics_listen is set, serves
 * HTTP there on base; each request reads the daemon's values through
 * view(arg). 0, or -1 with err. */
int metrics_http_start(struct metrics *m, struct event_base *base,
                       const struct conf *c, metrics_view_fn view, void *arg,
                       char *err, size_t errlen);
/* Closes the HTTP server and its connections (before the loop is freed). */
void metrics_http_stop(struct metrics *m);

#endif
