/* conn: the JSON-RPC listener and its connections (private to src/: used
 * by conn.c, which owns them, conn_out.c, their output, and by
 * methods.c, replay.c and server.c).
 *
 * struct conns owns the listener, admission (admit.h), every struct conn
 * from accept to close (conn_close is the one destructor), and their
 * output: replies and events wait in a connection's held buffer until the
 * journal and the ledger are synced once per loop iteration (the group
 * commit). A complete request line goes to the handler registered at
 * conns_init (methods.c); the connection layer knows no method. Main
 * thread only. */
#ifndef CTID_CONN_H
#define CTID_CONN_H

#include <event2/util.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "admit.h"
#include "journal.h"
#include "rpc.h"

struct bufferevent;
struct evbuffer;
struct event;
struct event_base;
struct evconnlistener;
struct conf;
struct ledger;
struct metrics;
struct reqkey;
struct conn;

/* What connections need of the daemon, none of it owned. */
struct conn_deps {
    const struct conf *conf;   /* the server's; a reload changes it */
    struct event_base *base;
    struct journal *journal;   /* synced by the group commit */
    struct ledger *ledger;
    struct reqkey *reqkeys;    /* construct's request_key file; NULL: none */
    struct metrics *metrics;
};

/* A parsed request for c; runs to completion (its reply queued) before
 * anything else happens on the loop. */
typedef void (*conn_request_fn)(void *arg, struct conn *c,
                                struct rpc_request *req);

struct conns {
    struct conn_deps deps;
    conn_request_fn on_request;
    void *request_arg;
    struct evconnlistener *listener;
    struct admit admit;        /* per-address counts, refusals, accept
                                  back-off (admit.h) */
    struct conn *list;         /* open connections */
    unsigned n;
    uint64_t next_id;
    struct event *reap;        /* closes connections over max_output_bytes */
    struct event *sync_due;    /* group commit: journal and ledger synced
                                  once per loop iteration, held output
                                  released */
    bool stopping;             /* no new connections */
};

struct conn {
    uint64_t id;              /* never reused; calls name their creator by it */
    struct conns *set;        /* the set it belongs to */
    struct bufferevent *bev;  /* owned */
    struct rpc_framer framer; /* owned */
    char peer[64];            /* "ip:port", for logs */
    struct admit_key addr;    /* source address, counted per address */
    struct event *handshake;  /* handshake_timeout: armed until sys.auth
                                 (with a token) or a first request */
    bool authed;              /* sys.auth succeeded (or no auth_token) */
    unsigned auth_failures;   /* wrong tokens so far; closed at the limit */
    bool subscribed;          /* sys.subscribe: receives every event */
    bool replaying;           /* sys.subscribe since: journal not yet sent */
    bool sub_progress;        /* sys.subscribe progress: true: gets the
                                 on_progress events too, live and replayed */
    bool replay_failed;       /* a replayed record could not be queued */
    struct journal_cursor replay; /* where the replay is */
    bool closing;             /* close once the current read is handled */
    bool flush_first;         /* ...after writing what is queued for it */
    struct evbuffer *held;    /* output waiting for the group commit; NULL
                                 until first needed */
    bool peer_done;           /* peer sent EOF: still owed replies/events */
    bool overflowed;          /* output over max_output_bytes: reap it */
    bool internal;            /* conns_adopt: not counted in n, gets no
                                 events (they reach Redis from the
                                 journal) */
    unsigned calls;           /* calls it constructed not yet released */
    struct conn *prev, *next; /* the set's list */
};

/* An empty set; no listener yet. Cannot fail. */
void conns_init(struct conns *s, const struct conn_deps *deps,
                conn_request_fn on_request, void *arg);
/* On base (the main loop, from now on): admission, the listener on
 * conf's listen address, the reap and group-commit events. 0, or -1 with
 * err. */
int conns_listen(struct conns *s, struct event_base *base, char *err,
                 size_t errlen);
/* An internal connection over bev (one end of a bufferevent pair, owned
 * from here on): already authenticated, no admission count and no
 * handshake timer, no events; peer names it in logs. The request bus
 * (busreq.h) reaches the methods this way. NULL when out of memory (bev freed). */
struct conn *conns_adopt(struct conns *s, struct bufferevent *bev,
                         const char *peer);
/* Shutdown: no new connections (a refusal line says why). */
void conns_stop(struct conns *s);
/* Closes every connection, the listener and admission. */
void conns_free(struct conns *s);

/* The group commit: is anything written but not synced? */
bool conns_unsynced(const struct conns *s);
/* Syncs the journal and the ledger, then releases every held line. */
void conns_sync(struct conns *s);
/* Output still queued on any connection (shutdown waits for it). */
bool conns_output_pending(const struct conns *s);

/* Gives the event the next seq (added to params, which must be an
 * object), appends it to the journal, then queues it for the creator
 * connection and every subscriber (once each), released to them once the
 * journal is synced (group commit); a connection still replaying the
 * journal gets it from there. Steals params. Returns the connections it
 * was queued on. */
unsigned conns_deliver_event(struct conns *s, uint64_t creator_conn,
                             const char *method, json_t *params);
/* An on_progress (issue 14): as conns_deliver_event, but of the
 * subscribers only those that subscribed with progress get it. */
unsigned conns_deliver_progress(struct conns *s, uint64_t creator_conn,
                                const char *method, json_t *params);
/* A call of this creator released: it owes one event less (a peer that
 * has sent EOF is closed once nothing more is owed). */
void conns_call_released(struct conns *s, uint64_t creator_conn);
/* A new auth_token: every connection must call sys.auth again;
 * subscribers are closed. */
void conns_revoke_auth(struct conns *s);
/* The open connection with this id, or NULL. */
struct conn *conns_find(struct conns *s, uint64_t id);

/* Queues a reply (result stolen; nothing for a notification, id NULL). */
void conn_reply_result(struct conn *c, json_t *id, json_t *result);
void conn_reply_error(struct conn *c, json_t *id, const struct rpc_error *e);
/* Queues one line (behind held lines); -1 if it cannot be queued. */
int conn_send(struct conn *c, const char *line, size_t len);
void conn_close(struct conn *c);
/* Closes c if its peer is done and nothing more is owed to it. */
void conn_maybe_finish(struct conn *c);
/* sys.auth succeeded, or a first request with no auth_token. */
void conn_handshake_done(struct conn *c);
/* The bufferevent callbacks of an open connection (replay.c restores
 * them after a replay). */
void conn_on_read(struct bufferevent *bev, void *arg);
void conn_on_event(struct bufferevent *bev, short what, void *arg);

#endif
