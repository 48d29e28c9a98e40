/* sip: outbound calls with sofia-sip's nua, on a thread of its own (see
 * docs/architecture.md for why). The main loop sends commands through one
 * queue and receives events through another; each queue wakes its reader
 * with an eventfd. Calls are named by process_id on both sides, so no
 * pointer crosses the thread boundary. */
#ifndef CTID_SIP_H
#define CTID_SIP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf.h"

struct event_base;
struct sip;

/* What the main loop asks for one outbound INVITE. */
struct sip_invite {
    uint64_t call_id;        /* the call's process_id */
    char res_id[96];         /* for log lines */
    char sip_call_id[96];    /* Call-ID to use, chosen by the main thread */
    char from_user[128];     /* "" for the configured default */
    char from_host[300];     /* host:port, "" for the local SIP address */
    bool anonymous;          /* anonymous From + Privacy: id */
    char to_user[128];
    char to_host[256];
    uint16_t to_port;
    uint16_t rtp_port;       /* our RTP port, for the SDP offer */
    char username[128];      /* digest credentials, "" for none */
    char password[128];
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
    SIP_EV_MEDIA,      /* a re-INVITE/UPDATE changed the media: media
                          (media_len 0: unchanged) and paused; or only
                          the dialog record (has_dialog: a refresh) */
    SIP_EV_SESSION_LOST, /* an answered call's dialog is gone without a
                            BYE from the callee: a session refresh failed
                            (status) or the session expired (408) */
};

struct sip_event {
    enum sip_event_type type;
    uint64_t call_id;
    int status;                       /* SIP status; for FAILED the final */
    bool local;                       /* status made by our stack (timeout,
                                         transport error), not the peer */
    bool by_peer;                     /* ENDED: the callee sent BYE */
    int payload_type;                 /* ANSWERED: 8 PCMA, 0 PCMU, -1 none */
    struct sockaddr_storage media;    /* ANSWERED, MEDIA: where to send RTP */
    socklen_t media_len;
    bool paused;                      /* MEDIA: the callee holds the call */
    bool media_refused;               /* ANSWERED with payload_type -1: the
                                         SDP is unusable (reason), not
                                         merely without PCMA/PCMU */
    char reason[128];                 /* ANSWERED: why the SDP is unusable */
    uint16_t rtcp_port;               /* ANSWERED, MEDIA: a=rtcp port, 0: RTP + 1 */
    bool has_dialog;                  /* PROGRESS/ANSWERED: dialog is set */
    struct sip_dialog dialog;         /* how to end it after a crash */
};

typedef void (*sip_event_fn)(void *arg, const struct sip_event *ev);

/* Starts the SIP thread bound to conf's sip address. Events are delivered
 * on `base`'s loop through on_event. First, the thread ends the n_orphans
 * dialogs a crashed run left open (BYE or CANCEL from the same address,
 * waiting at most SIP_RECOVER_WAIT_MS for answers). NULL with err on
 * failure. */
struct sip *sip_start(const struct conf *conf, struct event_base *base,
                      sip_event_fn on_event, void *arg,
                      const struct sip_dialog *orphans, size_t n_orphans,
                      char *err, size_t errlen);
/* Ends every dialog it still has, stops and joins the thread. */
void sip_stop(struct sip *s);

/* Queue commands; both return 0 or -1 (out of memory). */
int sip_invite(struct sip *s, const struct sip_invite *inv);
/* CANCEL before a final response, BYE after 2xx; then forgets the call.
 * No event follows. Unknown or finished ids are ignored. */
int sip_hangup(struct sip *s, uint64_t call_id);

#endif
