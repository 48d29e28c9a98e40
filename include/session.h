/* session: the SDP side of one call's INVITE dialog, as ctid plays RFC
 * 3264 offer/answer: its own SDP (o= session id fixed for the dialog, the
 * version incremented for each new SDP), the codec and address the 2xx
 * answer chose, and what the callee's later offers and answers change
 * (hold, resume, a new address). A struct session is owned by the SIP
 * thread's leg; nothing here does SIP I/O, so every rule is unit-tested
 * (tests/unit/test_session.c). */
#ifndef CTID_SESSION_H
#define CTID_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sdp.h"

struct session {
    const char *res_id;            /* for log lines; the leg's, borrowed */
    const char *ip;                /* ctid's media address, borrowed */
    int family;                    /* ip's: AF_INET or AF_INET6 */
    uint16_t rtp_port;             /* ours, as offered */
    uint32_t id;                   /* o= sess-id */
    uint32_t version;              /* o= sess-version of our last SDP */
    int payload_type;              /* negotiated 8 or 0; -1 before */
    struct sockaddr_storage dest;  /* where RTP goes now */
    socklen_t dest_len;
    uint16_t rtcp_port;            /* the callee's a=rtcp; 0: RTP + 1 */
    bool paused;                   /* the callee holds the call: no RTP */
    bool offer_in_200;             /* our 200 to a re-INVITE offered; the
                                      ACK carries the answer */
    bool offer_te;                 /* every SDP of ours offers RFC 4733
                                      telephone-event (the call has keys) */
    int te_pt;                     /* the answer's telephone-event payload
                                      type, -1 none (or not offered) */
};

/* The payload type ctid offers telephone-event as (until an answer names
 * its own). */
#define SESSION_TE_PT 101

/* What an offer or answer changed, as bits. */
enum session_change {
    SESSION_MOVED = 1 << 0,  /* dest is new */
    SESSION_HOLD = 1 << 1,   /* paused flipped (either way) */
};

/* How to answer a re-INVITE or UPDATE. */
struct session_reply {
    int status;        /* 200 or 488 */
    const char *phrase;
    bool has_sdp;      /* sdp holds our answer or offer */
    char sdp[512];
    unsigned changes;  /* enum session_change bits */
};

void session_init(struct session *ss, const char *res_id, const char *ip,
                  uint16_t rtp_port, uint32_t id);
/* The INVITE's offer: PCMA and PCMU (and telephone-event 101 when
 * ss->offer_te, set after session_init), sendrecv. -1 if buf is too
 * small. */
int session_offer(struct session *ss, char *buf, size_t len);
/* Takes the 2xx's answer: SDP_OK sets the codec and address (and paused,
 * for a sendonly/inactive answer), and te_pt when telephone-event was
 * offered; otherwise why says what is wrong. */
enum sdp_result session_answer(struct session *ss, const char *body,
                               size_t len, char *why, size_t whylen);
/* A re-INVITE's (update false) or UPDATE's offer; body NULL when it has
 * none. Logs one line for what it decides. */
void session_on_offer(struct session *ss, const char *body, size_t len,
                      bool update, struct session_reply *r);
/* An answer to an offer of ours after the first (in an ACK, or in the 2xx
 * to a refresh re-INVITE); an unusable one is logged and ignored. Returns
 * enum session_change bits. */
unsigned session_on_answer(struct session *ss, const char *what,
                           const char *body, size_t len);

#endif
