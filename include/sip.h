/* sip: outbound calls with sofia-sip's nua, on a thread of its own (see
 * docs/architecture.md for why). The main loop sends commands through one
 * queue and receives events through another; each queue wakes its reader
 * with an eventfd. Calls are named by process_id on both sides, so no
 * pointer to a call or a leg crosses the thread boundary; the only
 * pointers that do are to heap copies handed over with a message (an
 * INVITE command's struct sip_invite, a DIALOG event's record), each
 * freed by the sip module. Commands and events are small tagged unions,
 * one struct per kind (sizes in docs/architecture.md). */
#ifndef CTID_SIP_H
#define CTID_SIP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf.h"

struct event_base;
struct sip;

/* What the main loop asks for one outbound INVITE. Everything here was
 * checked before it got here (uri.c for a construct's users and hosts,
 * conf for a gateway's keys): the SIP thread copies it into headers. */
struct sip_invite {
    uint64_t call_id;        /* the call's process_id */
    char res_id[96];         /* for log lines */
    char sip_call_id[96];    /* Call-ID to use, chosen by the main thread */
    char from_user[128];     /* "" for the configured default */
    char from_host[300];     /* host[:port], "" for the local SIP address */
    bool anonymous;          /* anonymous From + Privacy: id */
    char to_user[128];
    char to_host[256];       /* Request-URI and To host (a trunk's domain) */
    uint16_t to_port;        /* 0: no port in the Request-URI and To */
    uint16_t rtp_port;       /* our RTP port, for the SDP offer */
    char username[128];      /* digest credentials, "" for none */
    char password[128];
    /* A trunk's (all "" / false for a plain host:port destination). */
    char next_hop[300];      /* "sip:HOST:PORT;transport=T": where packets
                                go when that is not the Request-URI's host
                                (a domain, tcp or tls); "" for R-URI's */
    char route[300];         /* "<sip:PROXY;transport=T;lr>": proxy */
    enum conf_transport transport; /* tcp: Contact says transport=tcp */
    char pai_user[128];      /* "" no P-Asserted-Identity; else the user of
                                <sip:PAI_USER@from domain> */
    char headers[1100];      /* extra header lines, CRLF-separated */
    bool offer_te;           /* offer RFC 4733 telephone-event in the SDP
                                (a construct with keys); false: the SDP
                                is the one ctid always wrote */
};
/* What it takes to end a call's dialog from outside the stack that made
 * it: after a crash, the restarted daemon sends BYE (established) or
 * CANCEL (ringing) from these (docs/reliability.md, "Crash recovery"). */
struct sip_dialog {
    char request_uri[320];  /* CANCEL: the INVITE's; BYE: the peer's Contact */
    char call_id[96];
    char from[400];         /* From header value, with our tag */
    char to[400];           /* To header value; the peer's tag once answered */
    char route[512];        /* BYE's Route set ("" none) */
    char branch[96];        /* the INVITE's Via branch (a CANCEL reuses it) */
    uint32_t cseq;          /* the INVITE's CSeq number; once answered,
                               our latest request's (session refreshes) */
    bool established;       /* a 2xx came: BYE, else CANCEL */
};

enum sip_event_type {
    SIP_EV_PROGRESS,   /* provisional response (status 100-199) */
    SIP_EV_ANSWERED,   /* 2xx with a usable SDP answer; ACK sent */
    SIP_EV_FAILED,     /* the INVITE ended without a call */
    SIP_EV_ENDED,      /* an established call ended (BYE either way) */
    SIP_EV_MEDIA,      /* a re-INVITE/UPDATE changed the media */
    SIP_EV_SESSION_LOST, /* an answered call's dialog is gone without a
                            BYE from the callee: a session refresh failed
                            (status) or the session expired (408) */
    SIP_EV_DIALOG,     /* the call's dialog record, new or changed: comes
                          just before the PROGRESS or ANSWERED it belongs
                          to, or alone (a refresh or target refresh) */
    SIP_EV_GATEWAY,    /* a gateway's registration or OPTIONS health
                          changed (call_id 0): routed to gateways.c, not
                          to a call */
    SIP_EV_KEY,        /* an INFO inside the answered call carried a DTMF
                          key (answered 200 by the SIP thread) */
};

/* One struct per kind: each carries what its kind needs and no more. */
struct sip_ev_progress {
    int status;                       /* 100-199 */
    bool local;                       /* made by our stack, not the peer */
    bool sdp;                         /* it carried SDP: early media */
};

struct sip_ev_answered {
    int status;                       /* 2xx */
    int payload_type;                 /* 8 PCMA, 0 PCMU, -1 none */
    bool media_refused;               /* payload_type -1 because the SDP is
                                         unusable (reason), not merely
                                         without PCMA/PCMU */
    char reason[128];                 /* why the SDP is unusable */
    struct sockaddr_storage dest;     /* where to send RTP */
    socklen_t dest_len;
    uint16_t rtcp_port;               /* a=rtcp port, 0: RTP + 1 */
    int te_payload_type;              /* the answer's telephone-event payload
                                         type (RFC 4733), -1 none or not
                                         offered */
};

struct sip_ev_failed {
    int status;                       /* the final status */
    bool local;                       /* made by our stack (timeout,
                                         transport error), not the peer */
};

struct sip_ev_ended {
    int status;
    bool local;
    bool by_peer;                     /* the callee sent BYE */
};

struct sip_ev_media {
    bool paused;                      /* the callee holds the call */
    struct sockaddr_storage dest;     /* dest_len 0: unchanged */
    socklen_t dest_len;
    uint16_t rtcp_port;               /* with dest: a=rtcp, 0: RTP + 1 */
};

struct sip_ev_session_lost {
    int status;                       /* the refresh's, or 408 */
    bool local;
};

struct sip_ev_dialog {
    /* Heap, owned by the sip module, not the receiver: valid during the
     * sip_event_fn call only (copy what you keep); freed after it by
     * sip_event_release. Never NULL in a queued event. */
    struct sip_dialog *record;
};

struct sip_ev_key {
    char key;                         /* 0-9 * # A-D */
};

/* What SIP_EV_GATEWAY reports. */
enum sip_gw_change {
    SIP_GW_REGISTERED,  /* a REGISTER (first or refresh) got 2xx */
    SIP_GW_REFUSED,     /* 401/407 after our credentials, or 403 */
    SIP_GW_REG_FAILED,  /* any other failure: no answer, 5xx, ... */
    SIP_GW_UP,          /* an OPTIONS ping was answered (any response) */
    SIP_GW_DOWN,        /* two pings in a row missed or failed locally */
};

struct sip_ev_gateway {
    unsigned index;        /* in the conf's gateway table when sent */
    char name[64];         /* the gateway's name: the index may be stale
                              after a SIGHUP, the name is checked */
    enum sip_gw_change what;
    int status;            /* the SIP status, 0 none */
    bool local;            /* made by our stack (timeout, transport) */
};

/* A SIP event: the kind, the call, and the kind's own struct. The queue
 * copies sizeof(struct sip_event) bytes, the largest kind's (ANSWERED);
 * the dialog record (~1.8 KB) rides by pointer in its own kind. */
struct sip_event {
    enum sip_event_type type;
    uint64_t call_id;                 /* the call's process_id */
    union {
        struct sip_ev_progress progress;
        struct sip_ev_answered answered;
        struct sip_ev_failed failed;
        struct sip_ev_ended ended;
        struct sip_ev_media media;
        struct sip_ev_session_lost session_lost;
        struct sip_ev_dialog dialog;
        struct sip_ev_gateway gateway;
        struct sip_ev_key key;
    };
};

/* Event constructors (sip_event.c; pure, so tests' stand-ins for the SIP
 * thread build the very events it sends). */
/* progress.sdp false: set it after when the 1xx carried SDP. */
struct sip_event sip_event_progress(uint64_t call_id, int status,
                                    bool local);
/* payload_type -1 and no address: reason says why when media_refused.
 * te_payload_type is -1: set it after when the answer names one. */
struct sip_event sip_event_answered(uint64_t call_id, int status,
                                    int payload_type,
                                    const struct sockaddr_storage *dest,
                                    socklen_t dest_len, uint16_t rtcp_port);
struct sip_event sip_event_failed(uint64_t call_id, int status, bool local);
struct sip_event sip_event_ended(uint64_t call_id, int status, bool local,
                                 bool by_peer);
/* dest NULL (or dest_len 0): the address is unchanged. */
struct sip_event sip_event_media(uint64_t call_id, bool paused,
                                 const struct sockaddr_storage *dest,
                                 socklen_t dest_len, uint16_t rtcp_port);
struct sip_event sip_event_session_lost(uint64_t call_id, int status,
                                        bool local);
/* A heap copy of d in a DIALOG event; -1 (ev untouched) if out of
 * memory. */
int sip_event_dialog(struct sip_event *ev, uint64_t call_id,
                     const struct sip_dialog *d);
/* A key from an INFO inside the call. */
struct sip_event sip_event_key(uint64_t call_id, char key);
/* A gateway's change (call_id 0); name is cut to fit. */
struct sip_event sip_event_gateway(unsigned index, const char *name,
                                   enum sip_gw_change what, int status,
                                   bool local);
/* "registered", "refused", "failed", "up", "down". */
const char *sip_gw_change_name(enum sip_gw_change what);
/* Frees what ev owns (a DIALOG's record); any other kind: nothing. */
void sip_event_release(struct sip_event *ev);
/* "PROGRESS", "ANSWERED", ... for log lines and tests. */
const char *sip_event_name(enum sip_event_type type);

/* Called on the main loop for each event, in the SIP thread's order. */
typedef void (*sip_event_fn)(void *arg, const struct sip_event *ev);

/* Who gets the events, registered at sip_start: a gateway's change
 * (SIP_EV_GATEWAY) goes to on_gateway (gateways.c), every other event,
 * a call's, to on_call (the call table). Either may be NULL: its events
 * are dropped. */
struct sip_handlers {
    sip_event_fn on_call;
    void *call_arg;
    sip_event_fn on_gateway;
    void *gateway_arg;
};

/* Starts the SIP thread bound to conf's sip address. Events are delivered
 * on `base`'s loop through h (copied). First, the thread ends the n_orphans
 * dialogs a crashed run left open (BYE or CANCEL from the same address,
 * waiting at most SIP_RECOVER_WAIT_MS for answers). NULL with err on
 * failure. */
struct sip *sip_start(const struct conf *conf, struct event_base *base,
                      const struct sip_handlers *h,
                      const struct sip_dialog *orphans, size_t n_orphans,
                      char *err, size_t errlen);
/* Ends every dialog it still has, stops and joins the thread. */
void sip_stop(struct sip *s);

/* Queue commands; both return 0 or -1 (out of memory). The INVITE command
 * carries a heap copy of inv (the only command with the credentials),
 * which the SIP thread wipes and frees once the INVITE is sent; the
 * caller keeps inv. */
int sip_invite(struct sip *s, const struct sip_invite *inv);
/* CANCEL before a final response, BYE after 2xx; then forgets the call.
 * No event follows. Unknown or finished ids are ignored. */
int sip_hangup(struct sip *s, uint64_t call_id);
/* SIGHUP: the gateways of conf (copied; the copy carries the passwords,
 * wiped and freed by the SIP thread) replace the SIP thread's: a
 * registration or OPTIONS schedule added, removed (un-REGISTER) or
 * restarted when its keys changed; a gateway whose keys stayed keeps its
 * state. 0 or -1 (out of memory). */
int sip_gateways_update(struct sip *s, const struct conf *conf);
/* Seconds before registration try number failures + 1: first, doubling
 * for each failure in a row, at most SIP_GW_MAX_RETRY. Pure (any
 * thread); sip_gateway.c's back-off. */
#define SIP_GW_MAX_RETRY 600
unsigned sip_gateways_retry_delay(unsigned failures, unsigned first);

#endif
