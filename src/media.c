/* media: the RTP engine's main-thread side. Owns struct media (the port
 * range, the media threads' table, the return queue and its libevent
 * watch, the packet totals) and the streams: each one's two UDP sockets
 * (a port pair from rtpports.c: RTP on an even port, RTCP on the next),
 * its clips while it plays, and its hand-over to and from a media thread.
 * The media threads themselves, which send every playing stream's 20 ms
 * frames and, riding the same wheel, its RTCP reports (rtcp.c builds and
 * sends them), are media_worker.c's.
 *
 * Ownership: a stream belongs to the main thread except while it plays.
 * media_stream_play hands it to the media thread through the command
 * queue (struct media_cmd: PLAY, STOP, UPDATE, QUIT); the thread hands it
 * back through the return queue (struct media_return) when it played out
 * (DONE), failed, or was stopped (STOPPED, the answer to every STOP). The
 * main thread frees a stream only once it is back. Clips are shared
 * read-only; the stream's references keep them alive while it plays.
 *
 * Incoming RTP and RTCP are not used: a socket filter (rtpports.c)
 * drops them in the kernel, so they cost no system call and never fill a
 * socket buffer; the RTCP port is bound all the same so the callee's
 * reports meet no ICMP port unreachable. The exception is a stream that
 * listens for keys (media_keys, issue 14): its filter lets the
 * telephone-event packets through (or all, for in-band DTMF), and its
 * media thread, to which it then stays pinned, reads them (LISTEN) and
 * posts each key back through the return queue (MEDIA_KEY). */

#include "media_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "clock.h"
#include "dtmf_inband.h"
#include "g711.h"
#include "log.h"
#include "queue.h"

static void media_random(void *buf, size_t len)
{
    if (getrandom(buf, len, GRND_NONBLOCK) == (ssize_t)len)
        return;
    /* Entropy pool not ready yet: RTP only needs values hard to guess
     * across calls, not cryptographic ones. */
    uint64_t x = clock_mono_ns() ^ (uintptr_t)buf;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ((uint8_t *)buf)[i] = (uint8_t)x;
    }
}

/* The stream leaves its media thread's count. */
static void media_off_worker(struct media_stream *s)
{
    if (s->on_worker)
        s->w->playing--;
    s->on_worker = false;
}

static void media_stream_free(struct media_stream *s)
{
    media_off_worker(s);
    if (s->rx != NULL) {
        dtmf_inband_free(s->rx->inband);
        free(s->rx);
    }
    prompt_clips_release(s->clips, s->n_clips);
    close(s->fd);
    rtcp_close(&s->rtcp);
    rtp_ports_release(&s->m->ports, s->port);
    free(s);
}

/* A stream came back from the media thread, or a listening one heard a
 * key. */
static void media_on_return(struct media_stream *s, enum media_result result,
                            char key)
{
    if (result == MEDIA_KEY) {
        if (!s->closing && s->on_key != NULL)
            s->on_key(s->owner, key);
        return;
    }
    /* Its packet counts are ours now; take them once. */
    s->m->sent_total += s->sent;
    s->m->late_total += s->late;
    s->sent = s->late = 0;
    if (s->closing) {
        /* Its owner is gone; only the STOP's answer may free it, since the
         * media thread still reads the stream until it sends that. */
        if (result == MEDIA_STOPPED)
            media_stream_free(s);
        return;
    }
    struct media_figures f = {.played_ms = s->frames * 20,
                              .plays = s->play_idx};
    s->state = MEDIA_IDLE;
    s->end_ns = clock_mono_ns();
    s->played_before = true;
    prompt_clips_release(s->clips, s->n_clips);
    s->clips = NULL;
    s->n_clips = 0;
    if (s->rx == NULL)
        media_off_worker(s); /* a listening stream stays on its thread */
    if (result != MEDIA_STOPPED)
        s->on_done(s->owner, result, &f);
}

static void media_on_events(evutil_socket_t fd, short what, void *arg)
{
    struct media *m = arg;
    struct media_return ev;

    (void)fd;
    (void)what;
    while (queue_pop(m->events, &ev))
        media_on_return(ev.s, ev.result, ev.key);
}

struct media *media_new(struct event_base *base, const char *ip,
                        uint16_t port_min, uint16_t port_max,
                        unsigned threads, char *err, size_t errlen)
{
    struct media *m;

    if (threads < 1 || threads > MEDIA_MAX_THREADS) {
        snprintf(err, errlen, "media threads: %u is outside 1..%d", threads,
                 MEDIA_MAX_THREADS);
        return NULL;
    }
    m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (unsigned i = 0; i < MEDIA_MAX_THREADS; i++)
        m->workers[i].epfd = m->workers[i].timerfd = -1;
    if (rtp_ports_init(&m->ports, ip, port_min, port_max, err, errlen) < 0) {
        free(m);
        return NULL;
    }
    m->events = queue_new(sizeof(struct media_return));
    m->events_ev = m->events ? event_new(base, queue_fd(m->events),
                                         EV_READ | EV_PERSIST,
                                         media_on_events, m)
                             : NULL;
    if (!m->events_ev || event_add(m->events_ev, NULL) < 0) {
        snprintf(err, errlen, "media: out of memory");
        media_free(m);
        return NULL;
    }
    for (m->n_workers = 0; m->n_workers < threads; m->n_workers++)
        if (media_worker_start(m, &m->workers[m->n_workers]) < 0) {
            snprintf(err, errlen, "media: cannot start media thread %u: %s",
                     m->n_workers, strerror(errno));
            m->n_workers++; /* so media_free stops what it has */
            media_free(m);
            return NULL;
        }
    return m;
}

void media_rx_stats(const struct media *m, uint64_t *read, uint64_t *bad)
{
    *read = m ? atomic_load(&m->rx_read) : 0;
    *bad = m ? atomic_load(&m->rx_bad) : 0;
}

void media_send_errors(const struct media *m, uint64_t *lost, uint64_t *fatal,
                       uint64_t *rtcp)
{
    *lost = m ? atomic_load(&m->tx_lost) : 0;
    *fatal = m ? atomic_load(&m->tx_fatal) : 0;
    *rtcp = m ? atomic_load(&m->rtcp_lost) : 0;
}

void media_stats(const struct media *m, uint64_t *sent, uint64_t *late)
{
    *sent = m ? m->sent_total : 0;
    *late = m ? m->late_total : 0;
}

/* Streams must all be closed first; closing a playing stream completes
 * here, when its media thread hands it back. */
void media_free(struct media *m)
{
    if (!m)
        return;
    for (unsigned i = 0; i < m->n_workers; i++)
        media_worker_stop(&m->workers[i]);
    if (m->events)
        media_on_events(-1, 0, m);
    if (m->events_ev)
        event_free(m->events_ev);
    queue_free(m->events);
    rtp_ports_free(&m->ports);
    free(m);
}

/* Binds a free port pair of the range (rtpports.c). */
struct media_stream *media_stream_open(struct media *m, void *owner,
                                       media_done_fn on_done,
                                       uint16_t *local_port, char *err,
                                       size_t errlen)
{
    struct media_stream *s = calloc(1, sizeof *s);
    int rtcp;

    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (rtp_ports_open(&m->ports, &s->fd, &rtcp, &s->port, err, errlen) < 0) {
        free(s);
        return NULL;
    }
    s->m = m;
    s->owner = owner;
    s->on_done = on_done;
    rtcp_open(&s->rtcp, rtcp, (uint16_t)(s->port + 1));
    s->rtcp.errors = &m->rtcp_lost;
    *local_port = s->port;
    return s;
}

/* The media thread with the fewest streams takes s, unless s is on one
 * already (playing, or pinned there by listening). */
static void media_pick_worker(struct media_stream *s)
{
    struct media *m = s->m;
    if (s->on_worker)
        return;
    s->w = &m->workers[0];
    for (unsigned i = 1; i < m->n_workers; i++)
        if (m->workers[i].playing < s->w->playing)
            s->w = &m->workers[i];
}

static uint16_t media_port_of(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
}

int media_stream_play(struct media_stream *s, const struct sockaddr *dest,
                      socklen_t dest_len, int payload_type,
                      struct prompt_clip *const *clips, size_t n_clips,
                      unsigned plays)
{
    struct media *m = s->m;
    struct {
        uint32_t ssrc, ts;
        uint16_t seq;
    } rnd;
    size_t frames = 0;

    for (size_t i = 0; i < n_clips; i++)
        frames += clips[i]->n_frames;
    if (s->state != MEDIA_IDLE || frames == 0 || plays == 0 ||
        n_clips > UINT32_MAX ||
        (payload_type != G711_PT_PCMA && payload_type != G711_PT_PCMU) ||
        dest->sa_family != m->ports.addr.sa.sa_family ||
        media_port_of(dest) == 0) {
        errno = EINVAL;
        return -1;
    }
    /* Connected: the kernel keeps the route, and send() needs no address. */
    if (connect(s->fd, dest, dest_len) < 0) {
        /* Nothing can be sent to this address (no route from the RTP
         * socket's): counted with the send() errors that stop a stream. */
        atomic_fetch_add(&m->tx_fatal, 1);
        return -1;
    }
    if (rtcp_set_peer(&s->rtcp, dest, dest_len, s->rtcp_peer_port) < 0)
        return -1;
    s->clips = malloc(n_clips * sizeof *s->clips);
    if (!s->clips)
        return -1;
    for (size_t i = 0; i < n_clips; i++)
        s->clips[i] = prompt_clip_ref(clips[i]);
    s->n_clips = (uint32_t)n_clips;
    s->pt = (uint8_t)payload_type;
    s->plays = plays;
    s->play_idx = s->clip_idx = s->frame_idx = 0;
    while (s->clips[s->clip_idx]->n_frames == 0)
        s->clip_idx++;
    if (s->played_before) {
        /* Played before (keys' `then`): one stream for the callee, its
         * clock having run on between the plays (8 samples a ms). */
        s->ts += (uint32_t)((clock_mono_ns() - s->end_ns) / 125000u);
    } else {
        media_random(&rnd, sizeof rnd);
        s->ssrc = rnd.ssrc;
        s->ts = rnd.ts;
        s->seq = rnd.seq;
    }
    s->first = true;
    s->lost_logged = false;
    s->paused = false;
    s->stopping = false;
    s->frames = 0;
    static uint64_t plays_started; /* main thread only */
    s->play_id = ++plays_started;
    media_pick_worker(s);
    struct media_cmd cmd = {.type = MEDIA_CMD_PLAY, .play = s};
    if (queue_push(s->w->commands, &cmd) < 0) {
        prompt_clips_release(s->clips, s->n_clips);
        s->clips = NULL;
        s->n_clips = 0;
        return -1;
    }
    s->state = MEDIA_PLAYING;
    if (!s->on_worker)
        s->w->playing++;
    s->on_worker = true;
    return 0;
}

int media_stream_update(struct media_stream *s, const struct sockaddr *dest,
                        socklen_t dest_len, uint16_t rtcp_port,
                        bool paused)
{
    if (s == NULL || s->state != MEDIA_PLAYING || s->closing)
        return 0; /* not sending: nothing to change */
    struct media_cmd cmd = {.type = MEDIA_CMD_UPDATE};
    struct media_update *u = &cmd.update;
    u->s = s;
    u->play_id = s->play_id;
    u->paused = paused;
    if (dest != NULL && dest_len > 0) {
        if (dest->sa_family != s->m->ports.addr.sa.sa_family ||
            dest_len > sizeof u->dest || media_port_of(dest) == 0) {
            errno = EINVAL;
            return -1;
        }
        memcpy(&u->dest, dest, dest_len);
        u->dest_len = dest_len;
        u->rtcp_port = rtcp_port;
    }
    return queue_push(s->w->commands, &cmd);
}

void media_stream_set_rtcp_port(struct media_stream *s, uint16_t port)
{
    if (s)
        s->rtcp_peer_port = port;
}

int media_keys(struct media_stream *s, int te_payload_type, bool inband,
               int audio_payload_type, media_key_fn on_key)
{
    if (s == NULL || s->closing || on_key == NULL || te_payload_type > 127 ||
        (te_payload_type < 0 && !inband)) {
        errno = EINVAL;
        return -1;
    }
    if (s->rx != NULL) {
        errno = EALREADY;
        return -1;
    }
    struct media_rx *rx = calloc(1, sizeof *rx);
    if (rx == NULL)
        return -1;
    rx->te_on = te_payload_type >= 0;
    dtmf_rtp_rx_init(&rx->te, te_payload_type);
    rx->audio_pt = audio_payload_type;
    if (inband && (rx->inband = dtmf_inband_new(audio_payload_type)) == NULL) {
        free(rx);
        errno = EINVAL; /* not G.711 (or out of memory) */
        return -1;
    }
    /* Until now the socket dropped everything, so nothing old waits. */
    if (rtp_ports_filter(s->fd, inband ? RTP_FILTER_ALL : te_payload_type) < 0) {
        int err = errno;
        dtmf_inband_free(rx->inband);
        free(rx);
        errno = err;
        return -1;
    }
    media_pick_worker(s);
    struct media_cmd cmd = {.type = MEDIA_CMD_LISTEN,
                            .listen = {.s = s, .rx = rx}};
    if (queue_push(s->w->commands, &cmd) < 0) {
        rtp_ports_filter(s->fd, RTP_FILTER_NONE);
        dtmf_inband_free(rx->inband);
        free(rx);
        return -1;
    }
    s->rx = rx; /* freed with the stream; the thread's meanwhile */
    s->on_key = on_key;
    if (!s->on_worker)
        s->w->playing++;
    s->on_worker = true;
    return 0;
}

int media_stop_play(struct media_stream *s)
{
    if (s == NULL || s->state != MEDIA_PLAYING || s->closing) {
        errno = EINVAL;
        return -1;
    }
    if (s->stopping)
        return 0; /* asked already: one on_done */
    struct media_cmd cmd = {.type = MEDIA_CMD_STOP_PLAY,
                            .stop_play = {.s = s, .play_id = s->play_id}};
    if (queue_push(s->w->commands, &cmd) < 0)
        return -1;
    s->stopping = true;
    return 0;
}

void media_stream_close(struct media_stream *s)
{
    if (!s)
        return;
    if (s->state == MEDIA_IDLE && s->rx == NULL) {
        media_stream_free(s);
        return;
    }
    if (s->closing)
        return;
    s->closing = true;
    struct media_cmd cmd = {.type = MEDIA_CMD_STOP, .stop = s};
    if (queue_push(s->w->commands, &cmd) < 0)
        log_error("media: out of memory stopping a stream; it leaks");
}
