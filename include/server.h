/* server: the one struct server that holds the daemon's state, the
 * JSON-RPC listener and its connections, method dispatch, and event
 * delivery to creators and subscribers. Runs on the main libevent loop. */
#ifndef CTID_SERVER_H
#define CTID_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "admit.h"
#include "calls.h"
#include "cdr.h"
#include "conf.h"
#include "journal.h"
#include "ledger.h"
#include "metrics.h"

struct event_base;
struct evconnlistener;
struct event;
struct sip;
struct media;
struct prompt_cache;
struct conn;
struct work_pool;

struct server {
    struct conf conf;              /* changed only by a SIGHUP reload */
    struct conf_source source;     /* file and flags, to reload from */
    struct event_base *base;       /* the main loop */
    struct evconnlistener *listener;
    struct admit admit;            /* per-address counts, refusals, accept
                                      back-off (admit.h) */
    struct event *sig_int;         /* SIGINT / SIGTERM: stop */
    struct event *sig_term;
    struct conn *conns;            /* open connections, a list */
    unsigned n_conns;
    uint64_t next_conn_id;
    struct calls calls;            /* every call (calls.h) */
    struct event *reap;            /* closes connections over max_output_bytes */
    struct event *sync_due;        /* group commit: journal and ledger synced
                                      once per loop iteration, held output
                                      released */
    struct sip *sip;
    struct media *media;
    struct prompt_cache *prompts;
    struct work_pool *work;        /* decoding and speech off the main loop */
    struct cdr cdr;                /* call detail records, may be off */
    struct event *sig_hup;         /* SIGHUP: reopen log and CDR files */
    struct event *watchdog;        /* systemd WATCHDOG=1 pings, if asked */
    struct metrics metrics;        /* counters, the metrics HTTP server */
    struct journal journal;        /* every event, by seq, before it is sent */
    struct ledger ledger;          /* calls not yet released, for recovery */
    bool stopping;                 /* SIGTERM seen: no new work */
    struct event *grace_timer;     /* SIGTERM: ends calls after shutdown_grace */
    unsigned flush_waited_ms;      /* shutdown: time spent flushing */
};

/* Builds everything from conf (listener, SIP thread, media, prompts).
 * Returns 0 or -1 with err. */
int server_init(struct server *srv, const struct conf *conf,
                const struct conf_source *source, char *err, size_t errlen);
/* Runs the loop until SIGINT/SIGTERM; returns the exit status. */
int server_run(struct server *srv);
void server_free(struct server *srv);

/* Gives the event the next seq (added to params, which must be an
 * object), appends it to the journal, then queues it for the creator
 * connection and every subscriber (once each), released to them once the
 * journal is synced (group commit, at the end of the loop iteration); a
 * connection still replaying the journal gets it from there. Steals
 * params. Returns the connections it was queued on. */
unsigned server_emit_event(struct server *srv, uint64_t creator_conn,
                           const char *method, json_t *params);

/* A call released: its creator connection owes one event less (a peer
 * that has sent EOF is closed once nothing more is owed). While stopping,
 * the last call released ends the loop. */
void server_call_released(struct server *srv, uint64_t creator_conn);

#endif
