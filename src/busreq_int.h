/* busreq_int: what busreq.c (reading, heartbeat, takeover, life cycle)
 * and busreq_held.c (the entries held, their answers, the daemon side)
 * share; private to those two files. struct busreq and every struct held
 * are busreq's (include/busreq.h). Main thread. */
#ifndef CTID_BUSREQ_INT_H
#define CTID_BUSREQ_INT_H

#include <hiredis/hiredis.h>
#include <stdbool.h>

#include "busreq.h"
#include "rlink.h"

#define BUSREQ_HEARTBEAT_MS 1000 /* SET PREFIX:node:NODE ... PX 5000 */
#define BUSREQ_HEARTBEAT_TTL "5000"
#define BUSREQ_CLAIM_MS 2000     /* look for dead nodes' entries */
#define BUSREQ_BLOCK "1000"      /* XREADGROUP BLOCK with room */
#define BUSREQ_BLOCK_FULL "100"  /* ... with none (own stream only) */
#define BUSREQ_GROUP "ctid"
/* Entries answered lately, remembered so that a read Redis ran before
 * their REPLY script (on the other link) but whose answer comes after it
 * does not hand them to the daemon again. Well over what can be answered
 * between a read and its answer (at most BUSREQ_MAX_INFLIGHT are held). */
#define BUSREQ_DONE_RING 512

/* HELD_MARK: a construct waiting for MARK or OWN (busreq_mark). */
enum held_state { HELD_MARK, HELD_DAEMON, HELD_ANSWER };

/* An entry this node holds, from its read until its answer is in Redis. */
struct held {
    struct busreq *b;
    struct busreq_entry e;
    char from[64];          /* taken over from this dead node, "" none */
    enum held_state state;
    bool sent;              /* MARK/OWN or REPLY queued on the main link */
    unsigned long tag;      /* the request line's id (HELD_DAEMON) */
    char *reply;            /* the reply text; NULL: none (HELD_ANSWER) */
    const char *keymode;    /* REPLY's "", "placed" or "abandon" */
    char *result;           /* "placed": the result text */
    struct held *prev, *next;
};

struct busreq {
    struct event_base *base;
    const struct conf *conf;
    struct bufferevent *bev;
    busreq_room_fn room;
    void *room_arg;
    struct metrics *metrics;
    struct rlink *rd, *main;
    struct event *kick;         /* read again (a zero timer) */
    struct event *heartbeat;    /* persistent, BUSREQ_HEARTBEAT_MS */
    struct event *claim;        /* persistent, BUSREQ_CLAIM_MS */
    struct held *list, *tail;   /* every held entry, in arrival order */
    unsigned held;              /* entries in the list */
    unsigned long next_tag;
    int groups;                 /* XGROUP CREATE answers this connection */
    bool reading;               /* an XREADGROUP is out */
    bool recovering;            /* reading own pending entries (id > last) */
    bool claiming;              /* a takeover round is out */
    bool stopping;
    char last[2][48];           /* recovery: last id seen, shared / own */
    char done[BUSREQ_DONE_RING][48]; /* entries answered lately ("s:" or
                                    "o:" (own stream) and the id) */
    unsigned done_next;         /* the ring's next slot */
    char key_shared[96], key_own[160], key_node[160];
    char claim_from[64];        /* the consumer of this takeover round */
    char claim_ms[24], maxlen[24], ttl[24];
};

/* ---- busreq_held.c -------------------------------------------------------- */

/* Bus constructs not yet answered by the daemon (they may not hold a
 * call slot yet). */
unsigned busreq_constructs(const struct busreq *b);
/* Sends every decided answer not yet sent, in order. */
void busreq_flush(struct busreq *b);
/* Runs MARK (a keyed construct) or OWN (a keyless one) when the main
 * link is up: is the entry still ours? */
void busreq_mark(struct held *h);
/* A read (or claimed) entry: checked, then marked, handed or answered.
 * from: the dead node it was taken from, "" when read. fields NULL: the
 * entry is gone from the stream. */
void busreq_take(struct busreq *b, const char *entry, bool own,
                 redisReply *fields, const char *from);
/* Frees every held entry (busreq_free); how many there were. */
unsigned busreq_held_free(struct busreq *b);
/* The callbacks of busreq's end of the pair. */
void busreq_on_bev_read(struct bufferevent *bev, void *arg);
void busreq_on_bev_event(struct bufferevent *bev, short what, void *arg);

#endif
