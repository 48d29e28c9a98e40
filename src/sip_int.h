/* sip_int: private to the SIP module (sip.c, sip_leg.c, sip_dialog.c,
 * sip_recover.c, sip_gateway.c), never included elsewhere. Defines struct sip (one per
 * daemon, made by sip_start, freed by sip_stop), struct sip_leg (one per
 * INVITE dialog, owned by the SIP thread's legs map from the INVITE
 * command until nua's terminated state, freed by sip_leg_free), the
 * command message, and sofia-sip's magic types for these files (sip.c,
 * sip_leg.c, sip_dialog.c, sip_recover.c, sip_tls.c). Every
 * function declared here runs on the SIP thread. */
#ifndef CTID_SIP_INT_H
#define CTID_SIP_INT_H

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "idmap.h"
#include "queue.h"
#include "session.h"
#include "sip.h"

struct sip;
struct sip_leg;
#define NUA_MAGIC_T struct sip
#define NUA_HMAGIC_T struct sip_leg
#define NTA_AGENT_MAGIC_T struct sip
#define NTA_OUTGOING_MAGIC_T struct sip
#define SU_ROOT_MAGIC_T struct sip
#define SU_WAKEUP_ARG_T void
#define SU_TIMER_ARG_T void

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/nta.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/sdp.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/tport_tag.h>

enum sip_cmd_type {
    SIP_CMD_INVITE,
    SIP_CMD_HANGUP,
    SIP_CMD_GATEWAYS,
    SIP_CMD_STOP
};

/* GATEWAYS: the gateway list after a SIGHUP, a heap copy (passwords
 * included); the SIP thread's once popped, wiped and freed by it. */
struct sip_gateway_list {
    size_t n;
    struct conf_gateway g[CONF_MAX_GATEWAYS];
};

/* A command from the main loop: one small struct per kind. */
struct sip_cmd {
    enum sip_cmd_type type;
    union {
        /* INVITE: a heap copy, the only message with the gateway's
         * password; the SIP thread's once popped, wiped and freed by
         * sip_invite_free when the INVITE is out. */
        struct sip_invite *invite;
        uint64_t call_id; /* HANGUP */
        struct sip_gateway_list *gateways; /* GATEWAYS */
        /* STOP: nothing */
    };
};

#define SIP_STOP_GRACE_MS 5000
/* After the grace: the wait for nua_shutdown once the legs still open
 * are dropped (it completes at once unless a gateway's un-REGISTER is
 * still unanswered). */
#define SIP_STOP_FINAL_MS 1000
#define SIP_ALLOWED_METHODS "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO"
#define SIP_RECOVER_WAIT_MS 2000
#define SIP_SOCKET_BUFFER (4u << 20)

/* One outbound INVITE dialog, owned by the SIP thread. */
struct sip_leg {
    uint64_t call_id;
    char res_id[96];
    nua_handle_t *nh;
    char request_uri[320];  /* the INVITE's, for a CANCEL after a crash */
    char to[600];           /* the INVITE's To, likewise */
    uint32_t reported_cseq; /* CSeq of the last dialog sent to main */
    char username[128];     /* digest credentials, copied from the command */
    char password[128];
    bool auth_tried;        /* one answer per challenge, never a loop */
    char tls_hop[300];      /* a tls trunk's proxy or next hop, for the log
                               line of a failed handshake; "" otherwise */
    bool answered;          /* a 2xx was received (ACK sent by nua) */
    bool hangup;            /* main has forgotten the call: end it quietly */
    bool bye_sent;
    bool reported;          /* FAILED or ENDED has gone to main */
    struct session ss;      /* offer/answer: SDP, codec, RTP address */
    struct sip_dialog dialog; /* as last sent to main, once answered */
    bool has_dialog;
    /* Failed before answer and out of the legs map (sip_leg_detach), so
     * the call's next attempt, same call_id, gets a leg of its own; kept
     * on s->detached until nua's terminated state. */
    bool detached;
    struct sip_leg *prev, *next; /* on s->detached */
};

struct sip_gw;

struct sip {
    struct conf conf;           /* a copy: SIGHUP edits the server's */
    pthread_t thread;
    struct queue *commands;     /* main -> SIP thread, struct sip_cmd */
    struct queue *events;       /* SIP thread -> main, struct sip_event */
    struct event *events_ev;    /* libevent watch on events' eventfd */
    struct sip_handlers handlers; /* who gets the events (main loop) */
    /* Below: touched by the SIP thread only. */
    su_root_t *root;
    nua_t *nua;
    su_wait_t commands_wait;
    int commands_index;         /* su_root registration of commands_wait */
    struct idmap legs;          /* call_id -> struct sip_leg *, the
                                   call's current attempt */
    struct sip_leg *detached;   /* failed attempts nua still holds */
    bool shutting_down;
    su_timer_t *stop_timer;     /* bounds the wait for nua_shutdown */
    bool nua_stopping;          /* nua_shutdown called (after the legs) */
    bool stop_dropped;          /* the grace is over: the legs left were
                                   dropped, SIP_STOP_FINAL_MS running */
    struct sip_gw *gws[CONF_MAX_GATEWAYS]; /* registration and OPTIONS per
                                   gateway, in s->conf's order (sip_gateway.c) */
    size_t n_gws;
    /* Start-up handshake: the thread writes these, then posts started
     * once; sip_start reads them after its wait. */
    sem_t started;
    bool start_ok;
    char start_error[256];
    /* Crash recovery, before nua starts (sip_recover). */
    const struct sip_dialog *orphans;
    size_t n_orphans;
    unsigned recover_pending;   /* answers (and 487s to ACK) still awaited */
};

/* ---- sip.c: the thread's outbox ---------------------------------------- */

/* Queues ev for main (its DIALOG record freed if the queue cannot take
 * it). */
void sip_post(struct sip *s, struct sip_event ev);
/* Queues a DIALOG event: a heap copy of d for leg's call. */
void sip_post_dialog(struct sip *s, const struct sip_leg *leg,
                     const struct sip_dialog *d);

/* ---- sip_leg.c: one INVITE, from the command to nua's terminated state -- */

/* The INVITE command: a new leg and its INVITE, or FAILED (500). */
void sip_leg_invite(struct sip *s, const struct sip_invite *inv);
/* The HANGUP command: CANCEL or BYE, and no more events for the call. */
void sip_leg_hangup(struct sip *s, uint64_t call_id);
/* nua_r_invite: provisional, 2xx (ANSWERED), digest challenge, failure;
 * on an answered leg, the response to a refresh re-INVITE. */
void sip_leg_on_invite_response(struct sip *s, struct sip_leg *leg,
                                int status, const char *phrase,
                                const sip_t *sip);
/* nua_i_state: frees the leg once nua says the call is terminated. */
void sip_leg_on_state(struct sip *s, struct sip_leg *leg, int status,
                      tagi_t tags[]);
/* Removes leg from the map (or the detached list), destroys its handle,
 * wipes and frees it. */
void sip_leg_free(struct sip *s, struct sip_leg *leg);
/* The stop grace is over: frees every leg still held (sip_leg_free: its
 * handle destroyed, which ends its transactions without a word to the
 * peer); returns how many. */
unsigned sip_legs_drop(struct sip *s);

/* ---- sip.c: the stop ------------------------------------------------------ */

/* A leg was freed (sip_leg_free): once stopping and none is left,
 * nua_shutdown starts. */
void sip_stop_on_leg_gone(struct sip *s);
/* The message's SDP body, or NULL (none, or another content type). */
const char *sip_sdp_body(const sip_t *sip, size_t *len);
/* Did our own stack make this response (timeout, transport error)? */
bool sip_response_is_local(nua_t *nua, const sip_t *sip);

/* ---- sip_dialog.c: the dialog record and the established dialog -------- */

/* Fills d from a response for a restarted daemon's BYE or CANCEL; false
 * (a warning logged) when the response lacks any of it. */
bool sip_fill_dialog(const struct sip_leg *leg, const sip_t *sip,
                     bool established, struct sip_dialog *d);
/* Tells main what an offer or answer changed (enum session_change). */
void sip_post_media(struct sip *s, struct sip_leg *leg, unsigned changes);
/* A re-INVITE (update false) or UPDATE inside the call: answered here. */
void sip_on_offer(struct sip *s, struct sip_leg *leg, nua_handle_t *nh,
                  const sip_t *sip, bool update);
/* The ACK to our 200 (its answer when the 200 carried an offer). */
void sip_on_ack(struct sip *s, struct sip_leg *leg, const sip_t *sip);
/* The final response to nua's session refresh (re-INVITE or UPDATE). */
void sip_on_refresh_response(struct sip *s, struct sip_leg *leg,
                             const char *what, int status,
                             const char *phrase, const sip_t *sip,
                             bool local);

/* An INFO inside the call: a DTMF key (KEY event, 200), or 415/400. */
void sip_on_info(struct sip *s, struct sip_leg *leg, nua_handle_t *nh,
                 const sip_t *sip);

/* ---- sip_tls.c: the TLS transport's trust, before nua starts ---------- */

/* Writes state_dir/tls/cafile.pem (every tls gateway's tls_ca_file, or
 * the system store, once each) and puts its directory, the
 * TPTAG_CERTIFICATE sofia reads, in dir. 0, or -1 with err. */
int sip_tls_prepare(const struct conf *c, char *dir, size_t dirlen,
                    char *err, size_t errlen);
/* tls_verify of the tls gateways (they agree: conf_validate). */
bool sip_tls_verify(const struct conf *c);
/* ---- sip_gateway.c: registration and OPTIONS pings per gateway -------- */

/* After nua starts: REGISTER and OPTIONS schedules for s->conf's
 * gateways. */
void sip_gateways_start(struct sip *s);
/* The GATEWAYS command: l replaces s->conf's gateways (l stays the
 * caller's). */
void sip_gateways_apply(struct sip *s, const struct sip_gateway_list *l);
/* Is nh one of the gateways' handles? Then the response is theirs:
 * nua_r_register, nua_r_unregister, nua_r_options. */
bool sip_gateways_on_response(struct sip *s, nua_event_t event, int status,
                              const char *phrase, nua_handle_t *nh,
                              const sip_t *sip);
/* Shutdown (before nua_shutdown, which sends the un-REGISTERs): no more
 * retries or pings. */
void sip_gateways_stop(struct sip *s);
/* Tear-down: frees what is left (handles: nua_destroy's). */
void sip_gateways_free(struct sip *s);

/* ---- sip_recover.c: crash recovery, before nua starts ------------------ */

/* Ends s->orphans from a bare nta agent bound to url; returns when all
 * are answered or after SIP_RECOVER_WAIT_MS. */
void sip_recover(struct sip *s, const char *url);

#endif
