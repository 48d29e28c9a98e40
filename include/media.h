/* media: RTP and RTCP (RFC 3550) for calls. Owns the streams (a port
 * pair from the RTP range, rtpports.c: two UDP sockets per call, RTP on
 * an even port, RTCP on the next) and the media threads that send each
 * playing stream's 20 ms frames at their due time on an absolute clock,
 * so long prompts never drift, and its RTCP sender reports (rtcp.h).
 * Nothing here runs on the libevent loop but the hand-back of streams
 * that finished; incoming RTP and RTCP are dropped in the kernel and
 * never read. Every function below is for the main thread. */
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

/* What a play did, for on_released (issue 14): ms of prompt audio sent,
 * complete plays of the clip list. */
struct media_figures {
    uint64_t played_ms;
    unsigned plays;
};

/* Called on the loop when a stream has played its last frame (error 0) or
 * cannot send (error -1), with that play's figures (f valid during the
 * call only). May close the stream. */
typedef void (*media_done_fn)(void *owner, int error,
                              const struct media_figures *f);

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
 * Takes its own references on the clips. */
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
/* Stops sending (RTCP BYE if it sent), closes the sockets, frees the
 * ports. */
void media_stream_close(struct media_stream *s);

/* RTP packets sent, and of those sent more than 2 ms after their due
 * time, by every stream the media threads have handed back (main thread;
 * a stream still playing is counted when it finishes or is stopped). */
void media_stats(const struct media *m, uint64_t *sent, uint64_t *late);

/* Writes a 12-byte RTP header; exposed for tests. */
void media_rtp_header(uint8_t out[12], int marker, uint8_t payload_type,
                      uint16_t seq, uint32_t timestamp, uint32_t ssrc);

#endif
