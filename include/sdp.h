/* sdp: the SDP ctid writes (its offer, and its answers to a peer's
 * re-offer) and the checks on the SDP a peer sends (the 2xx's answer, a
 * re-INVITE's or UPDATE's offer, an ACK's answer). Pure functions: no
 * state and no I/O, unit-tested in tests/unit/test_sdp.c. The caller owns
 * every buffer. */
#ifndef CTID_SDP_H
#define CTID_SDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A direction attribute, from the point of view of the SDP's author
 * (values as sofia-sip's sdp_mode_t). */
enum sdp_dir {
    SDP_INACTIVE = 0,
    SDP_SENDONLY = 1,
    SDP_RECVONLY = 2,
    SDP_SENDRECV = 3,
};

enum sdp_result {
    SDP_OK,        /* usable: *out is filled */
    SDP_NO_CODEC,  /* an audio stream, but neither PCMA nor PCMU */
    SDP_REFUSED,   /* unparsable, no audio, bad port or address: see why */
};

/* What a peer's SDP says about the audio ctid sends. */
struct sdp_peer {
    int payload_type;              /* 8 PCMA or 0 PCMU */
    struct sockaddr_storage addr;  /* where to send RTP; addr_len 0 when */
    socklen_t addr_len;            /* hold_address (keep the old one) */
    enum sdp_dir dir;              /* the peer's direction attribute */
    bool hold_address;             /* c= 0.0.0.0 or ::, RFC 2543 hold */
    bool paused;                   /* the peer wants none of our audio */
    uint16_t rtcp_port;            /* a=rtcp (RFC 3605); 0: RTP port + 1 */
    int te_pt;                     /* telephone-event/8000's payload type
                                      on that m= line (RFC 4733), -1 none */
};

/* Examines a peer's SDP. want_pt -1 takes the first PCMA or PCMU the peer
 * lists; 8 or 0 requires that one (a re-offer must keep the codec in
 * use). family (AF_INET, AF_INET6) is ctid's media address family: the
 * peer's must match. allow_hold: an unspecified c= address means hold (a
 * re-offer or ACK); otherwise it is refused like multicast, broadcast, a
 * port of 0 or above 65535. why gets a one-line reason when not SDP_OK. */
enum sdp_result sdp_examine(const char *body, size_t len, int want_pt,
                            int family, bool allow_hold, struct sdp_peer *out,
                            char *why, size_t whylen);

/* True when ctid may send RTP to this address; why says otherwise. */
bool sdp_addr_usable(const struct sockaddr *sa, const char **why);

/* The direction ctid answers to an offer's (RFC 3264 section 6.1; ctid's
 * own offer is sendrecv). */
enum sdp_dir sdp_answer_dir(enum sdp_dir offer);
const char *sdp_dir_name(enum sdp_dir d);

/* ctid's SDP: ip is the media address, payload_type -1 offers PCMA and
 * PCMU, else that one; with te, telephone-event/8000 events 0-15 as
 * payload type te_pt too (RFC 4733, issue 14's keys). Returns the
 * length, or -1 if buf is too small. */
struct sdp_local {
    const char *ip;
    uint16_t port;
    uint32_t session;  /* o= sess-id, fixed for the dialog */
    uint32_t version;  /* o= sess-version, +1 for each new SDP */
    int payload_type;
    enum sdp_dir dir;
    bool te;           /* offer telephone-event (false: not a byte more) */
    int te_pt;         /* its payload type, 96-127 */
};
int sdp_write(const struct sdp_local *l, char *buf, size_t len);

#endif
