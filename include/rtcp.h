/* rtcp: RTCP (RFC 3550 §6) for ctid's send-only RTP streams. Owns each
 * stream's RTCP socket once media.c has bound it (the odd port after the
 * RTP port), the callee's RTCP address, the stream's CNAME and the report
 * schedule; builds and sends compound packets (SR + SDES CNAME, + BYE when
 * the stream ends). Pure helpers (packet bytes, NTP time, intervals) are
 * exposed for tests.
 *
 * Threads: rtcp_open, rtcp_set_peer and rtcp_close run on the main thread
 * while the stream is the main thread's; rtcp_start and rtcp_send run on
 * the stream's media thread while it plays (the media queues order the
 * two, as for the rest of struct media_stream). */
#ifndef CTID_RTCP_H
#define CTID_RTCP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#define RTCP_CNAME_LEN 16 /* RFC 7022: 96 random bits, base64 */
/* SR (28) + SDES with one CNAME chunk (4 + 4 + 2 + 16 + 2) + BYE (8) */
#define RTCP_PACKET_MAX 64
#define RTCP_MIN_NS 5000000000ULL /* RTCP_MIN_TIME, RFC 3550 §6.2 */

/* What a sender report says about the stream. */
struct rtcp_sender_info {
    uint32_t ssrc;
    uint64_t ntp;     /* NTP timestamp: seconds since 1900 << 32 | fraction */
    uint32_t rtp_ts;  /* the RTP timestamp of the same instant */
    uint32_t packets; /* RTP packets sent since the SSRC started */
    uint32_t octets;  /* payload octets of those */
};

struct rtcp_stream {
    int fd;                       /* bound, never connected; -1 none */
    uint16_t port;                /* local port, for logs */
    struct sockaddr_storage peer; /* the callee's RTCP address */
    socklen_t peer_len;           /* 0: nowhere to send */
    char cname[RTCP_CNAME_LEN + 1];
    /* Below: the media thread's while the stream plays. */
    uint32_t rnd;                 /* xorshift32 state for the intervals */
    uint32_t ts0;                 /* RTP timestamp of the first packet */
    uint64_t t0;                  /* CLOCK_MONOTONIC ns it was due */
    uint64_t due;                 /* next report, CLOCK_MONOTONIC ns */
    uint32_t reports;             /* sent this play */
    bool lost_logged;
    /* Counts every report sendto() failed on (NULL: none); the owner's
     * counter, set after rtcp_open, added to from the media thread. */
    _Atomic uint64_t *errors;
};

/* Takes the bound socket fd (local port `port`) and draws a CNAME. */
void rtcp_open(struct rtcp_stream *r, int fd, uint16_t port);
/* Where reports go: rtp_dest's address with rtcp_port, or with the RTP
 * port + 1 when rtcp_port is 0 (RFC 3550 §11; no a=rtcp in the answer).
 * An RTP port of 65535 and no rtcp_port leaves nowhere to send: no
 * reports, not an error. Returns -1 (EINVAL) for an unknown family. */
int rtcp_set_peer(struct rtcp_stream *r, const struct sockaddr *rtp_dest,
                  socklen_t len, uint16_t rtcp_port);
void rtcp_close(struct rtcp_stream *r);

/* Media thread: the stream's first RTP packet (timestamp ts0) is due at
 * t0 (CLOCK_MONOTONIC ns); schedules the first report. */
void rtcp_start(struct rtcp_stream *r, uint64_t t0, uint32_t ts0);
/* Media thread: sends SR + SDES (+ BYE) now and schedules the next. A
 * send error loses this report only: counted in *r->errors, logged once
 * per stream. `packets`
 * counts the RTP packets of this SSRC so far (160 payload octets each). */
void rtcp_send(struct rtcp_stream *r, uint32_t ssrc, uint64_t packets,
               bool bye);

/* ---- pure helpers ------------------------------------------------------- */

/* CLOCK_REALTIME time as a 64-bit NTP timestamp (RFC 3550 §4). */
uint64_t rtcp_ntp(const struct timespec *wall);
/* Writes the compound packet SR (no report blocks) + SDES CNAME, + BYE
 * when bye; returns its length, or 0 when cap is too small or cname is
 * longer than 255 bytes. */
size_t rtcp_build(uint8_t *out, size_t cap, const struct rtcp_sender_info *sr,
                  const char *cname, bool bye);
/* The interval to the next report for a random draw rnd (uniform over
 * 32 bits), RFC 3550 §6.3.1: Td * [0.5, 1.5) / (e - 3/2), with Td = 5 s
 * (2.5 s before the first report). */
uint64_t rtcp_interval_ns(uint32_t rnd, bool initial);
/* The port of an SDP a=rtcp attribute value (RFC 3605: "port" or "port
 * IN IP4|IP6 address") for RTP sent to rtp_addr; 0 (use RTP + 1) when the
 * value is absent, malformed, out of 1..65535, or names another address
 * (ctid sends media only to the address the answer's c= line names). */
uint16_t rtcp_sdp_port(const char *value, const char *rtp_addr);
/* RFC 7022 §4.2: base64 of 12 random bytes, 16 characters + NUL. */
void rtcp_cname(char out[RTCP_CNAME_LEN + 1], const uint8_t rnd[12]);

#endif
