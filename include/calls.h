/* calls: the call table, owner of every call. Keyed by process_id; holds
 * the active and per-gateway counts, the capacity slots of constructs
 * whose prompts are loading (construct.c, the table's way in), the
 * call-rate bucket, process-id allocation, the ledger records and the
 * crash-recovery release. It tells the server what happened through
 * struct calls_events, which the server fills in; it knows nothing of
 * connections. Main thread only. Every struct call and struct calls_start
 * is the table's: calls_free frees what is left at exit. */
#ifndef CTID_CALLS_H
#define CTID_CALLS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "call.h"
#include "conf.h"
#include "idmap.h"
#include "ledger.h"
#include "rate.h"
#include "rpc.h"

struct sip_event;
struct calls_start;

/* The table's word to the outside, filled in by the server. */
struct calls_events {
    /* Deliver this event (params stolen) to the creator connection and
     * the subscribers; returns the connections it was queued on. */
    unsigned (*deliver)(void *arg, uint64_t creator_conn, const char *method,
                        json_t *params);
    /* This call is gone: its creator connection owes one event less. */
    void (*released)(void *arg, uint64_t creator_conn);
    void *arg;
    /* An on_progress (issue 14), params stolen: as deliver, but to the
     * subscribers that asked for progress only. NULL: dropped. */
    unsigned (*progress)(void *arg, uint64_t creator_conn,
                         const char *method, json_t *params);
};

struct calls {
    struct call_env env;           /* first: deps, ops, the release hook */
    struct calls_events events;
    struct idmap map;              /* process_id -> struct call * */
    unsigned active;               /* calls in the map */
    unsigned gateway_calls[CONF_MAX_GATEWAYS]; /* per conf gateway, calls
                                      and constructs holding a slot */
    uint64_t gateway_failovers[CONF_MAX_GATEWAYS]; /* per conf gateway,
                                      calls that failed over away from it */
    unsigned pending;              /* constructs holding a max_calls slot */
    struct calls_start *starts;    /* constructs waiting for their prompts */
    struct rate rate;              /* max_call_rate: new calls per second */
    uint64_t next_process_id;      /* start second * 10^6 + counter */
    bool stopping;                 /* no new calls (shutdown) */
};

/* An empty table over deps (copied), reaching SIP and media through ops
 * and the server through events. At start-up deps may lack the loop,
 * SIP, media, prompts and workers (crash recovery needs none of them):
 * calls_set_deps gives them once they run, before any construct. */
void calls_init(struct calls *t, const struct call_deps *deps,
                const struct call_ops *ops, const struct calls_events *ev);
void calls_set_deps(struct calls *t, const struct call_deps *deps);
/* Frees every call left (no events: daemon teardown) and the map. */
void calls_free(struct calls *t);

/* Picks the next process_id: above every id this node handed out before,
 * also across restarts (state_dir/process_id keeps the last start
 * second). 0, or -1 with err. */
int calls_reserve_ids(struct calls *t, const char *state_dir, char *err,
                      size_t errlen);

/* Room for new calls now (the request bus reads only this many): free
 * max_calls slots (calls and constructs holding one counted) and whole
 * call-rate tokens, whichever is smaller; 0 while stopping. Takes
 * nothing. */
unsigned calls_room(const struct calls *t, uint64_t now_ns);
/* The live call with this process_id, or NULL. */
struct call *calls_find(struct calls *t, uint64_t process_id);
/* The calls in the table (constructs still loading not counted). */
unsigned calls_active(const struct calls *t);
/* Who says whether a call may go to conf gateway `gateway` now (struct
 * call_env's gateway_usable; arg is usable's): construct and failover
 * skip a gateway it refuses. Not set: every gateway is usable. */
void calls_set_gateway_usable(struct calls *t,
                              bool (*usable)(void *arg, int gateway,
                                             char *why, size_t len),
                              void *arg);
/* The calls and held slots of each conf gateway (conf order), for
 * sys.gateways and metrics: valid until the next reload. */
const unsigned *calls_gateway_calls(const struct calls *t);
/* The calls moved on from each conf gateway to a next to_uri entry
 * (failover.c), for sys.gateways and metrics; kept by name on reload. */
const uint64_t *calls_gateway_failovers(const struct calls *t);
/* sip_start's on_call handler (arg: the table): routes a SIP event to
 * its call; an event for a call already released is ignored. */
void calls_on_sip_event(void *arg, const struct sip_event *ev);

/* SIGHUP reload: conf (deps.conf) has changed. A call keeps its gateway
 * by name (old_names, the previous conf's gateway names in order); its
 * count moves to the new table, a gateway removed stops counting it. The
 * call-rate bucket restarts at the new max_call_rate. */
void calls_reload(struct calls *t, const char (*old_names)[64],
                  size_t n_old);

/* Shutdown: no new calls from here on. */
void calls_stop(struct calls *t);
/* Shutdown: constructs waiting for prompts get 503 why; every call ends
 * with "shutdown" (CANCEL or BYE, then its event). */
void calls_end_all(struct calls *t);

/* Crash recovery at start-up, before any connection: every call a
 * previous run left open (the ledger's orphans) gets exactly one
 * on_released with error "daemon restart", unless the journal shows its
 * event went out already. Also writes their CDRs. */
void calls_release_orphans(struct calls *t, const struct ledger_call *orphans,
                           size_t n);

/* ---- construct.c: turning a construct into a call ---------------------- */

/* How calls_construct reports on a construct. */
struct calls_waiter {
    /* The prompts are ready after a wait: is the construct still wanted
     * (its connection open)? If not, no call is placed. */
    bool (*wanted)(void *arg);
    /* Exactly once: the call, placed (its INVITE handed to SIP), or NULL
     * and why not. Maybe from inside calls_construct, maybe later from
     * the main loop. */
    void (*done)(void *arg, struct call *call, const struct rpc_error *err);
    void *arg;
    /* NULL, or called once the call is in the table and the ledger and
     * before its INVITE: -1 with err refuses it (nothing is dialled).
     * methods.c records construct's request_key here (reqkey.h). */
    int (*placing)(void *arg, struct call *call, struct rpc_error *err);
};

/* Turns a validated construct into a call. First the cheap checks, with
 * nothing loaded yet: shutdown (503), the gateway allow-list (-32602),
 * max_tts_bytes (-32602), capacity, global and per gateway, and the call
 * rate (503). Then the prompts: when all are cached the call is placed at
 * once; otherwise a capacity slot is held and they load on a worker
 * (work.h), and the call is placed when they are ready. Either way
 * w->done says how it ended: a call (RTP port open, INVITE handed to the
 * SIP thread) or an error (404 prompt, -32602 bad prompt, 503 ...) with
 * nothing changed. May take a's contents (a is left freeable). */
void calls_construct(struct calls *t, uint64_t creator_conn,
                     struct api_construct *a, const struct calls_waiter *w);
/* The first to_uri entry from index start on whose gateway is usable
 * (env.gateway_usable) and has a free slot, its conf gateway in *gateway
 * (-1: none matches); -1 when none is left. skipped (NULL: not wanted)
 * gets the reasons of the unusable gateways passed over, "" when none
 * was. */
int calls_pick_destination(struct calls *t, const struct api_construct *a,
                           size_t start, int *gateway, char *skipped,
                           size_t len);
/* Hands the INVITE of c to entry dest of a to the SIP thread, offering
 * rtp_port. 0, or -1 (out of memory). */
int calls_send_invite(struct call *c, const struct api_construct *a, int dest,
                      uint16_t rtp_port);

/* ---- failover.c: moving a call along its to_uri list ------------------- */

/* struct call_env's entry_left and next_target (table: the calls). */
bool calls_route_entry_left(void *table, const struct call *c);
int calls_route_next_target(void *table, struct call *c, int status,
                            bool local);
/* on_released's "attempts" for c ending with status: NULL when it tried
 * one entry only (the event stays the contract's), else an array. */
json_t *calls_route_attempts(const struct calls *t, const struct call *c,
                             int status);

/* Shutdown: every construct still waiting for its prompts gets w->done
 * with 503 why now; their work is abandoned and their slots freed. */
void calls_cancel_starts(struct calls *t, const char *why);

#endif
