/* call: notify-call resources. The table keyed by process_id, and the state
 * machine of contract §1/§4 (Initiated -> Answered -> Released), written as
 * one transition function that says what to do; call_input() does it. */
#ifndef CTID_CALL_H
#define CTID_CALL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "api.h"
#include "idmap.h"
#include "ledger.h"
#include "prompt.h"

struct server;
struct event;
struct media_stream;
struct sip_event;

enum call_state {
    CALL_INITIATED,  /* INVITE out, not answered */
    CALL_ANSWERED,   /* answered, prompt playing */
    CALL_RELEASED,   /* terminal: event sent, resource forgotten */
};

/* Everything that can happen to a call. */
enum call_input {
    CALL_IN_PROVISIONAL,   /* 1xx; 180/183 start the ring timer once */
    CALL_IN_ANSWERED,      /* 2xx with a usable codec */
    CALL_IN_NO_CODEC,      /* 2xx whose SDP has neither PCMA nor PCMU */
    CALL_IN_FAILED,        /* final failure response (or our stack's) */
    CALL_IN_PEER_BYE,      /* callee hung up after answer */
    CALL_IN_RING_TIMEOUT,  /* ringing longer than max_ring_seconds */
    CALL_IN_DIAL_TIMEOUT,  /* no final response within dial_timeout */
    CALL_IN_PLAY_DONE,     /* prompt played play_repeat + 1 times */
    CALL_IN_PLAY_ERROR,    /* RTP could not be sent */
    CALL_IN_DROP,          /* ext.notify_call.drop */
    CALL_IN_SHUTDOWN,      /* daemon stopping */
    CALL_IN_SESSION_LOST,  /* dialog gone without the callee's BYE: a
                              failed session refresh or expiry (status) */
};

/* Actions a transition asks for, as bits. */
enum call_action {
    CALL_ACT_RING_TIMER = 1 << 0,  /* start the max_ring_seconds timer */
    CALL_ACT_START_MEDIA = 1 << 1, /* start playing the prompt */
    CALL_ACT_HANGUP = 1 << 2,      /* CANCEL or BYE, whichever applies */
    CALL_ACT_RELEASE = 1 << 3,     /* send on_released, forget the call */
};

/* Facts a transition depends on besides the state. */
struct call_facts {
    bool ringing;       /* a 180/183 has been seen */
    bool responded;     /* any response from the peer has been seen */
    int status;         /* SIP status carried by the input, or 0 */
    bool local;         /* the status came from our own stack */
};

struct call_step {
    enum call_state next;
    unsigned actions;        /* enum call_action bits */
    const char *error;       /* on release: NULL or the contract's text */
    const char *dropped_by;  /* on release: "sys" or "usr" */
    int cause;               /* on release: the SIP status that ended it */
};

/* The whole state machine. Pure: no side effects, unit-tested row by row. */
struct call_step call_transition(enum call_state state,
                                 const struct call_facts *facts,
                                 enum call_input input);

/* One notify-call resource. Owned by the call table of struct server. */
struct call {
    uint64_t process_id;
    char res_id[API_RES_ID_MAX];
    enum call_state state;
    bool ringing;
    bool responded;
    uint64_t creator_conn;      /* connection id that sent construct */
    char *user_data;            /* owned; NULL for null */
    char to_uri[400];           /* the entry dialled, user@host:port */
    char uuid[37];              /* for the CDR */
    char sip_call_id[96];       /* the INVITE's Call-ID, for the CDR */
    char caller[128];           /* From user as sent, for the CDR */
    int gateway;                /* index into conf gateways, -1 none */
    time_t begin_time;
    time_t answer_time;         /* 0 until answered */
    struct prompt_clip **clips; /* owned references */
    size_t n_clips;
    unsigned plays;             /* play_repeat + 1 */
    unsigned max_ring_seconds;
    struct media_stream *media; /* owned; NULL once closed */
    struct sockaddr_storage media_dest; /* callee's RTP address, from SDP */
    socklen_t media_dest_len;
    int payload_type;           /* 8 PCMA or 0 PCMU, as the answer chose */
    struct event *ring_timer;   /* owned */
    struct event *dial_timer;   /* owned */
    uint64_t ledger_seq;        /* journal seq at construct (struct ledger_call) */
    struct sip_dialog *dialog;  /* owned; NULL until SIP reports one */
    struct server *server;      /* back pointer, not owned */
};

/* How call_start reports on a construct (construct.c). */
struct call_waiter {
    /* The prompts are ready after a wait: is the construct still wanted
     * (its connection open)? If not, no call is placed. */
    bool (*wanted)(struct server *srv, void *arg);
    /* Exactly once: the call, placed (its INVITE handed to SIP), or NULL
     * and why not. Maybe from inside call_start, maybe later from the
     * main loop. */
    void (*done)(struct server *srv, void *arg, struct call *call,
                 const struct rpc_error *err);
    void *arg;
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
void call_start(struct server *srv, uint64_t creator_conn,
                struct api_construct *a, const struct call_waiter *w);
/* Shutdown: every construct still waiting for its prompts gets w->done
 * with 503 why now; their work is abandoned and their slots freed. */
void call_cancel_starts(struct server *srv, const char *why);
/* A new call's RTP port and timers (call.c, for construct.c). */
int call_open(struct call *c, uint16_t *rtp_port, struct rpc_error *err);
/* The live call with this process_id, or NULL. */
struct call *call_find(struct server *srv, uint64_t process_id);

/* Feeds one input to the state machine and carries out its actions. May
 * free the call (on release); do not touch it afterwards. */
void call_input(struct call *c, enum call_input input, int status,
                bool local);
/* Routes a SIP event to its call (ignored if already released). */
void call_on_sip_event(struct server *srv, const struct sip_event *ev);
/* Frees a call's resources without an event (daemon teardown only). */
void call_free(struct call *c);

/* The ledger's view of a live call; lc->user_data is borrowed from c. */
void call_ledger_entry(const struct call *c, struct ledger_call *lc);

/* Crash recovery at start-up, before any connection: every call a
 * previous run left open (the ledger's orphans) gets exactly one
 * on_released with error "daemon restart", unless the journal shows its
 * event went out already. Also writes their CDRs. */
void call_release_orphans(struct server *srv, const struct ledger_call *orphans,
                          size_t n);

const char *call_state_name(enum call_state s);
const char *call_input_name(enum call_input in);

#endif
