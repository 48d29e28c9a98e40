/* server: the daemon's lifecycle (private to src/, for main.c). struct
 * server holds every subsystem of the daemon (each owned here, built by
 * server_init and freed by server_free); the main thread runs its
 * libevent loop.
 * Connections (src/conn.h), methods (src/methods.h) and calls (calls.h)
 * are their own modules, wired together here. */
#ifndef CTID_SERVER_H
#define CTID_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "calls.h"
#include "cdr.h"
#include "conf.h"
#include "gateways.h"
#include "journal.h"
#include "ledger.h"
#include "metrics.h"
#include "reqkey.h"
#include "conn.h"
#include "methods.h"

struct event_base;
struct event;
struct sip;
struct media;
struct prompt_cache;
struct work_pool;
struct bus;
struct busreq;

struct server {
    struct conf conf;              /* changed only by a SIGHUP reload */
    struct conf_source source;     /* file and flags, to reload from */
    struct event_base *base;       /* the main loop */
    struct conns conns;            /* listener, connections, their output */
    struct methods methods;        /* what the method handlers work on */
    struct calls calls;            /* every call (calls.h) */
    struct gateways gateways;      /* each gateway's health (gateways.h) */
    struct event *sig_int;         /* SIGINT / SIGTERM: stop */
    struct event *sig_term;
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
    struct reqkey reqkeys;         /* construct's request_keys (reqkey.h) */
    struct bus *bus;               /* events to Redis; NULL: redis off */
    struct busreq *busreq;         /* requests from Redis; NULL: off */
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

#endif
