/* call: one notify-call resource and the state machine of contract §1/§4
 * (Initiated -> Answered -> Released), written as one transition function
 * that says what to do; call_input() does it. The table that owns every
 * call is calls.h; a call reaches SIP, media and the table only through
 * its struct call_env. Main thread only. */
#ifndef CTID_CALL_H
#define CTID_CALL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "api.h"
#include "keys.h"
#include "ledger.h"
#include "media.h"
#include "prompt.h"

struct event;
struct media_figures;
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
    CALL_IN_KEY,           /* a DTMF key (INFO or media's on_key) */
    CALL_IN_KEYS_TIMEOUT,  /* wait_seconds passed without a key */
    CALL_IN_KEYS_DONE,     /* the keys rules said hang up (collection and
                              `then` over, or the wait ran out) */
};

/* Actions a transition asks for, as bits. */
enum call_action {
    CALL_ACT_RING_TIMER = 1 << 0,  /* start the max_ring_seconds timer */
    CALL_ACT_START_MEDIA = 1 << 1, /* start playing the prompt */
    CALL_ACT_HANGUP = 1 << 2,      /* CANCEL or BYE, whichever applies */
    CALL_ACT_RELEASE = 1 << 3,     /* send on_released, forget the call */
    CALL_ACT_NEXT_TARGET = 1 << 4, /* failover: INVITE the next to_uri
                                      entry (the call stays Initiated) */
    CALL_ACT_KEYS = 1 << 5,        /* feed the input to the keys rules
                                      (keys.h) and do what they say */
};

/* Facts a transition depends on besides the state. */
struct call_facts {
    bool ringing;       /* a 180/183 has been seen */
    bool responded;     /* any response from the peer has been seen */
    int status;         /* SIP status carried by the input, or 0 */
    bool local;         /* the status came from our own stack */
    bool entry_left;    /* a later to_uri entry has capacity and is
                           usable: a retryable failure may move there */
    bool collecting;    /* the call has keys and has not hung up on them:
                           play done, keys and waits go to the keys rules */
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

struct conf;
struct event_base;
struct sip;
struct sip_invite;
struct media;
struct ledger;
struct metrics;
struct prompt_cache;
struct work_pool;
struct journal;
struct cdr;
struct call;

/* What a call needs from the rest of the daemon, none of it owned: given
 * to the call table at start-up (calls_init). conf is the server's, which
 * a SIGHUP reload changes in place; sip may be set after calls_init (the
 * SIP thread starts after crash recovery). */

struct call_deps {
    const struct conf *conf;
    struct event_base *base;    /* the main loop: timers */
    struct sip *sip;
    struct media *media;
    struct prompt_cache *prompts;
    struct work_pool *work;     /* NULL: prompts load on the main loop */
    struct journal *journal;
    struct ledger *ledger;
    struct cdr *cdr;
    struct metrics *metrics;
};

/* The SIP and media threads as a call reaches them: the daemon fills in
 * the real sip_ and media_ functions (same signatures), unit tests
 * recording fakes. All called on the main thread. */
struct call_ops {
    int (*invite)(struct sip *s, const struct sip_invite *inv);
    int (*hangup)(struct sip *s, uint64_t call_id);
    struct media_stream *(*media_open)(struct media *m, void *owner,
                                       media_done_fn on_done,
                                       uint16_t *local_port, char *err,
                                       size_t errlen);
    int (*media_play)(struct media_stream *s, const struct sockaddr *dest,
                      socklen_t dest_len, int payload_type,
                      struct prompt_clip *const *clips, size_t n_clips,
                      unsigned plays);
    int (*media_update)(struct media_stream *s, const struct sockaddr *dest,
                        socklen_t dest_len, uint16_t rtcp_port, bool paused);
    void (*media_set_rtcp_port)(struct media_stream *s, uint16_t port);
    void (*media_close)(struct media_stream *s);
    /* Issue 14. Start hearing keys on the stream (RFC 4733 telephone-event
     * te_payload_type, or in-band on the G.711 audio): on_key on the main
     * loop, once per key. Stop the prompt now: on_done follows promptly
     * with the figures so far (media.h's media_keys, media_stop_play;
     * NULL in a fake: no keys heard on RTP). */
    int (*media_keys)(struct media_stream *s, int te_payload_type,
                      bool inband, int audio_payload_type,
                      void (*on_key)(void *owner, char key));
    int (*media_stop_play)(struct media_stream *s);
};

/* A call's surroundings, shared by every call of one table (struct calls
 * embeds it). call.c sees the table only through release, so it depends
 * on nothing above it. */
struct call_env {
    struct call_deps deps;
    struct call_ops ops;
    /* CALL_ACT_RELEASE: the table forgets c and reports its end (CDR,
     * on_released, ledger); call_input frees c afterwards. */
    void (*release)(void *table, struct call *c, const struct call_step *st);
    /* Failover (issue 13, "Routing"), the table's too: is a later to_uri
     * entry left to try (the entry_left fact)? CALL_ACT_NEXT_TARGET:
     * move c to it and INVITE it; -1 when it could not (no entry after
     * all, out of memory): c is released next with the failure at hand. */
    bool (*entry_left)(void *table, const struct call *c);
    int (*next_target)(void *table, struct call *c, int status, bool local);
    /* May a call go to conf gateway `gateway` now? NULL: always. Set by
     * whoever tracks gateway state (registration, OPTIONS); false with a
     * reason in why skips that to_uri entry, at construct and failover. */
    bool (*gateway_usable)(void *arg, int gateway, char *why, size_t len);
    /* ext.notify_call.on_progress of a call that asked for progress
     * (issue 14): state "ringing", "early_media", "answered" or "key"
     * (key its digit, else 0). The table's; NULL: none sent. */
    void (*progress)(void *table, struct call *c, const char *state,
                     char key);
    void *gateway_usable_arg;
    void *table;
};

/* One to_uri entry a call tried and left, for on_released's attempts. */
struct call_attempt {
    char to_uri[400];
    char gateway[64];           /* conf gateway name, "" none */
    int status;                 /* its final status */
};

/* A call's to_uri list while it may still fail over; owned by the call,
 * freed by call_free. */
struct call_route {
    /* The construct's from and to_uri entries (no play list, no
     * user_data), owned; NULL once answered or when there is one entry. */
    struct api_construct *dial;
    size_t entry;               /* index into dial->to being tried */
    struct call_attempt *tried; /* owned; the entries left, in order */
    size_t n_tried;
};

/* One notify-call resource. Owned by the call table (calls.h) from
 * construct until release; freed by call_free. */
struct call {
    uint64_t process_id;
    char res_id[API_RES_ID_MAX];
    enum call_state state;
    bool ringing;
    bool responded;
    uint64_t creator_conn;      /* connection id that sent construct */
    char *user_data;            /* owned; NULL for null */
    char to_uri[400];           /* the entry dialled (the current
                                   attempt's), user@host:port */
    char uuid[37];              /* for the CDR */
    char sip_call_id[96];       /* the INVITE's Call-ID, for the CDR */
    char caller[128];           /* From user as sent, for the CDR */
    int gateway;                /* index into conf gateways, -1 none */
    struct call_route route;    /* failover: the to_uri list, attempts */
    uint16_t rtp_port;          /* ours, offered in every attempt's SDP */
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
    int te_payload_type;        /* the answer's telephone-event, -1 none */
    struct event *ring_timer;   /* owned */
    struct event *dial_timer;   /* owned */
    uint64_t ledger_seq;        /* journal seq at construct (struct ledger_call) */
    /* Issue 14: keys, progress and the play figures. */
    bool has_keys;              /* the construct had keys */
    bool inband;                /* keys.inband */
    struct keys keys;           /* the collection (keys.h), when has_keys */
    struct prompt_clip **then;  /* owned references: keys.then, or NULL */
    size_t n_then;
    struct event *keys_timer;   /* owned; wait_seconds, when has_keys */
    bool progress;              /* construct's progress: true */
    bool ring_sent;             /* a ringing progress went out */
    bool early_media;           /* an early_media progress went out */
    bool playing;               /* the prompt is on the stream */
    bool playing_then;          /* `then` is on the stream */
    char key_in;                /* the key CALL_IN_KEY is about */
    bool then_pending;          /* play `then` once the prompt's on_done
                                   comes (it was stopped) */
    uint64_t play_start_ms;     /* monotonic, when the prompt started */
    uint64_t played_ms;         /* prompt audio sent (media's figures) */
    unsigned plays_done;        /* complete plays of the prompt */
    struct sip_dialog *dialog;  /* owned; NULL until SIP reports one */
    struct call_env *env;       /* its table's, not owned */
};

/* A new call's RTP port and timers (call.c, for construct.c). */
int call_open(struct call *c, uint16_t *rtp_port, struct rpc_error *err);

/* Feeds one input to the state machine and carries out its actions. May
 * free the call (on release); do not touch it afterwards. */
void call_input(struct call *c, enum call_input input, int status,
                bool local);
/* A SIP event for c (the table found it: calls_on_sip_event). */
void call_on_sip_event(struct call *c, const struct sip_event *ev);
/* Frees a call's resources without an event (daemon teardown only). */
void call_free(struct call *c);
/* Frees c's kept to_uri list (route.dial): no failover from here on. */
void call_route_drop(struct call *c);

/* The play figures so far, with the part of a prompt still on the
 * stream estimated from the clock (on_released's played_ms and plays). */
void call_figures(const struct call *c, uint64_t *played_ms,
                  unsigned *plays);

/* The ledger's view of a live call; lc->user_data is borrowed from c. */
void call_ledger_entry(const struct call *c, struct ledger_call *lc);

const char *call_state_name(enum call_state s);
const char *call_input_name(enum call_input in);

#endif
