/* media: RTP and RTCP (RFC 3550) for calls. Owns the streams (a port
 * pair from the RTP range, rtpports.c: two UDP sockets per call, RTP on
 * an even port, RTCP on the next) and the media threads that send each
 * playing stream's 20 ms frames at their due time on an absolute clock,
 * so long prompts never drift, and its RTCP sender reports (rtcp.h).
 * Nothing here runs on the libevent loop but the hand-back of streams
 * that finished (and the keys a listening stream heard); incoming RTP
 * and RTCP are dropped in the kernel and never read, except on a stream
 * given media_keys: its media thread reads the RTP the kernel filter
 * lets through (telephone-event of the negotiated type only, or all of
 * it for in-band DTMF). Every function below is for the main thread. */
#ifndef CTID_MEDIA_H
#define CTID_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "prompt.h"

struct event_base;
struct media;
struct media_stream;

/* What a play did, for media_done_fn. */
struct media_figures {
    uint64_t played_ms;  /* prompt audio gone by: 20 ms per frame the
                            prompt advanced (sent, or passed on hold) */
    unsigned plays;      /* complete plays of the clip list */
};

/* Called on the loop when a stream has played its last frame (error 0),
 * was stopped by media_stop_play (error 0, the figures so far) or cannot
 * send (error -1); f is valid during the call only. May close the stream
 * or play again. */
typedef void (*media_done_fn)(void *owner, int error,
                              const struct media_figures *f);
/* Called on the loop once per key a listening stream heard, in order. May
 * stop the play or close the stream. */
typedef void (*media_key_fn)(void *owner, char key);

/* Starts `threads` media threads (1..16); streams go to the one with the
 * fewest. */
struct media *media_new(struct event_base *base, const char *ip,
                        uint16_t port_min, uint16_t port_max,
                        unsigned threads, char *err, size_t errlen);
void media_free(struct media *m);

/* Binds a free pair of the range: an even RTP port (*local_port) and the
 * RTCP port after it. NULL with err when no pair is free. */
struct media_stream *media_stream_open(struct media *m, void *owner,
                                       media_done_fn on_done,
                                       uint16_t *local_port, char *err,
                                       size_t errlen);
/* Starts sending clips, `plays` times over, to dest with payload type
 * G711_PT_PCMA or G711_PT_PCMU, and RTCP sender reports to dest's port + 1.
 * Takes its own references on the clips. Again after on_done (keys'
 * `then`): the same SSRC, the sequence numbers and timestamps going on
 * (the timestamp by the time between the plays), so the callee hears one
 * stream; a listening stream listens on. */
int media_stream_play(struct media_stream *s, const struct sockaddr *dest,
                      socklen_t dest_len, int payload_type,
                      struct prompt_clip *const *clips, size_t n_clips,
                      unsigned plays);
/* A re-INVITE or UPDATE changed the call's media: dest (NULL to keep it)
 * is where RTP goes from now on, and RTCP to rtcp_port (0: dest's port
 * + 1) on dest's address; while paused (hold) no packet is sent
 * but the prompt's clock runs on, so after resume the callee hears it
 * where it now is and the call ends on schedule. Ignored when the stream
 * is not playing. 0, or -1 (bad address, out of memory). */
int media_stream_update(struct media_stream *s, const struct sockaddr *dest,
                        socklen_t dest_len, uint16_t rtcp_port,
                        bool paused);
/* The callee's RTCP port when its answer names one (a=rtcp); 0, the
 * default, means the RTP port + 1. Used by the next media_stream_play. */
void media_stream_set_rtcp_port(struct media_stream *s, uint16_t port);
/* Issue 14's keys: the stream starts receiving on its RTP socket, on its
 * media thread (from now on the stream stays on that thread). The kernel
 * filter (rtp_ports_filter) lets through only RTP of te_payload_type
 * (the answer's telephone-event, -1 none), each fed to an RFC 4733
 * detector (dtmf_rtp.c); with inband, every packet, and those of
 * audio_payload_type (G711_PT_PCMA or PCMU) go to SpanDSP's detector
 * (dtmf_inband.c) too. Each key reaches on_key on the loop, once, in
 * order. Malformed packets are dropped and counted (media_rx_stats).
 * Once per stream; 0, or -1 with errno (EINVAL: nothing to listen for,
 * EALREADY, ENOMEM, or setsockopt's). Without it the stream never reads,
 * as before issue 14. */
int media_keys(struct media_stream *s, int te_payload_type, bool inband,
               int audio_payload_type, media_key_fn on_key);
/* Stops the prompt now; on_done follows promptly, once, with error 0 and
 * the figures so far. 0; -1 (EINVAL) when the stream is not playing (no
 * on_done follows). */
int media_stop_play(struct media_stream *s);
/* Stops sending (RTCP BYE if it sent), closes the sockets, frees the
 * ports. */
void media_stream_close(struct media_stream *s);

/* RTP packets sent, and of those sent more than 2 ms after their due
 * time, by every stream the media threads have handed back (main thread;
 * a stream still playing is counted when it finishes or is stopped). */
void media_stats(const struct media *m, uint64_t *sent, uint64_t *late);

/* Packets that could not be sent, counted as it happens (any thread):
 * lost, RTP packets whose send() failed with an error that loses that
 * packet only (a full buffer, an ICMP error such as port unreachable
 * reported on the connected socket, a network down for a moment: the
 * prompt plays on); fatal, streams that could not send at all and
 * stopped (any other send() error, or no route to the answer's address
 * when the stream was connected: the call ends with play error); rtcp,
 * RTCP reports whose sendto() failed (the stream plays on). */
void media_send_errors(const struct media *m, uint64_t *lost, uint64_t *fatal,
                       uint64_t *rtcp);

/* Packets listening streams read (what the kernel filters let through),
 * and of those dropped as malformed, since media_new (any thread). */
void media_rx_stats(const struct media *m, uint64_t *read, uint64_t *bad);

/* Writes a 12-byte RTP header; exposed for tests. */
void media_rtp_header(uint8_t out[12], int marker, uint8_t payload_type,
                      uint16_t seq, uint32_t timestamp, uint32_t ssrc);

#endif
