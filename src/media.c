/* media: the RTP engine. Owns the RTP port range (a bitmap of even ports
 * handed out round-robin), one UDP socket per stream, and the single ticker
 * on the libevent loop that sends every playing stream's frames.
 *
 * Pacing is on an absolute clock: packet k of a stream is due at
 * t0 + k * 20 ms (CLOCK_MONOTONIC). A tick sends every packet whose time
 * has come, so a late wakeup catches up instead of drifting. The ticker is
 * a one-shot timer re-armed for the earliest due packet.
 *
 * on_done callbacks may close any stream, so a tick never calls out while
 * walking the play list: finished streams move to a done list, which is
 * drained (one head pop at a time) after the walk. */

#include "media.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "g711.h"

#define MEDIA_PTIME_NS 20000000ULL  /* one 160-sample frame */
#define MEDIA_MIN_WAIT_NS 1000000ULL /* coalesces wakeups of many streams */
#define MEDIA_RX_BURST 64            /* datagrams drained per read event */

union media_addr {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
};

enum media_state {
    MEDIA_IDLE,    /* open, not sending */
    MEDIA_PLAYING, /* on m->playing */
    MEDIA_DONE,    /* on m->done, on_done not yet called */
};

struct media_stream {
    struct media *m;
    void *owner;
    media_done_fn on_done;
    struct media_stream *prev, *next; /* links of m->playing or m->done */
    struct event *rx;                 /* reads and discards incoming RTP */
    struct prompt_clip **clips;       /* our references while playing */
    uint64_t t0;                      /* ns, when packet 0 was due */
    uint64_t sent;                    /* packets sent (or dropped) so far */
    union media_addr dest;
    socklen_t dest_len;
    int fd;
    uint32_t n_clips;
    uint32_t clip_idx; /* position: clip, frame within it, play */
    uint32_t frame_idx;
    uint32_t plays;
    uint32_t play_idx;
    uint32_t ts;
    uint32_t ssrc;
    uint16_t seq;
    uint16_t port;
    uint8_t pt;
    uint8_t state;  /* enum media_state */
    int8_t result;  /* for on_done: 0 played out, -1 send error */
};

struct media {
    struct event_base *base;
    union media_addr addr; /* bind address, port 0 */
    socklen_t addr_len;
    uint16_t port_first;   /* first even port of the range */
    uint32_t n_ports;      /* even ports in the range */
    uint32_t cursor;       /* next port index to try: round-robin */
    uint64_t *used;        /* bitmap over port indexes */
    struct event *ticker;
    bool ticker_armed;
    uint64_t ticker_due;   /* ns, valid while armed */
    struct media_stream *playing;
    struct media_stream *done;
};

static uint64_t media_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void media_random(void *buf, size_t len)
{
    if (getrandom(buf, len, GRND_NONBLOCK) == (ssize_t)len)
        return;
    /* Entropy pool not ready yet: RTP only needs values hard to guess
     * across calls, not cryptographic ones. */
    uint64_t x = media_now() ^ (uintptr_t)buf;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ((uint8_t *)buf)[i] = (uint8_t)x;
    }
}

void media_rtp_header(uint8_t out[12], int marker, uint8_t payload_type,
                      uint16_t seq, uint32_t timestamp, uint32_t ssrc)
{
    out[0] = 0x80; /* V=2, P=0, X=0, CC=0 */
    out[1] = (uint8_t)((marker ? 0x80 : 0) | (payload_type & 0x7F));
    out[2] = (uint8_t)(seq >> 8);
    out[3] = (uint8_t)seq;
    out[4] = (uint8_t)(timestamp >> 24);
    out[5] = (uint8_t)(timestamp >> 16);
    out[6] = (uint8_t)(timestamp >> 8);
    out[7] = (uint8_t)timestamp;
    out[8] = (uint8_t)(ssrc >> 24);
    out[9] = (uint8_t)(ssrc >> 16);
    out[10] = (uint8_t)(ssrc >> 8);
    out[11] = (uint8_t)ssrc;
}

static void media_tick(evutil_socket_t fd, short what, void *arg);

struct media *media_new(struct event_base *base, const char *ip,
                        uint16_t port_min, uint16_t port_max, char *err,
                        size_t errlen)
{
    struct media *m;
    uint32_t first = port_min + (port_min & 1u);

    if (port_min == 0 || port_min > port_max || first > port_max) {
        snprintf(err, errlen, "RTP port range %u-%u holds no even port",
                 port_min, port_max);
        return NULL;
    }
    m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->base = base;
    if (inet_pton(AF_INET, ip, &m->addr.in4.sin_addr) == 1) {
        m->addr.in4.sin_family = AF_INET;
        m->addr_len = sizeof m->addr.in4;
    } else if (inet_pton(AF_INET6, ip, &m->addr.in6.sin6_addr) == 1) {
        m->addr.in6.sin6_family = AF_INET6;
        m->addr_len = sizeof m->addr.in6;
    } else {
        snprintf(err, errlen, "media IP %s is not an IPv4 or IPv6 address",
                 ip);
        free(m);
        return NULL;
    }
    m->port_first = (uint16_t)first;
    m->n_ports = (port_max - first) / 2 + 1;
    m->used = calloc((m->n_ports + 63) / 64, sizeof *m->used);
    m->ticker = evtimer_new(base, media_tick, m);
    if (!m->used || !m->ticker) {
        snprintf(err, errlen, "out of memory");
        media_free(m);
        return NULL;
    }
    return m;
}

/* Streams must all be closed first; they point at m. */
void media_free(struct media *m)
{
    if (!m)
        return;
    if (m->ticker)
        event_free(m->ticker);
    free(m->used);
    free(m);
}

static bool media_port_used(const struct media *m, uint32_t i)
{
    return m->used[i / 64] >> (i % 64) & 1;
}

static void media_port_mark(struct media *m, uint32_t i, bool used)
{
    if (used)
        m->used[i / 64] |= 1ULL << (i % 64);
    else
        m->used[i / 64] &= ~(1ULL << (i % 64));
}

/* Incoming RTP/RTCP is not used; draining it keeps the buffer from filling
 * and the kernel from doing needless work. */
static void media_rx(evutil_socket_t fd, short what, void *arg)
{
    uint8_t buf[2048];

    (void)what;
    (void)arg;
    for (int i = 0; i < MEDIA_RX_BURST; i++)
        if (recv(fd, buf, sizeof buf, 0) < 0)
            break;
}

struct media_stream *media_stream_open(struct media *m, void *owner,
                                       media_done_fn on_done,
                                       uint16_t *local_port, char *err,
                                       size_t errlen)
{
    struct media_stream *s = calloc(1, sizeof *s);
    union media_addr a = m->addr;

    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->fd = socket(m->addr.sa.sa_family,
                   SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        snprintf(err, errlen, "RTP socket: %s", strerror(errno));
        free(s);
        return NULL;
    }
    for (uint32_t k = 0; k < m->n_ports; k++) {
        uint32_t i = (m->cursor + k) % m->n_ports;
        uint16_t port = (uint16_t)(m->port_first + 2 * i);

        if (media_port_used(m, i))
            continue;
        if (a.sa.sa_family == AF_INET)
            a.in4.sin_port = htons(port);
        else
            a.in6.sin6_port = htons(port);
        if (bind(s->fd, &a.sa, m->addr_len) < 0) {
            if (errno == EADDRINUSE)
                continue; /* held by someone else; try it again next round */
            snprintf(err, errlen, "RTP bind port %u: %s", port,
                     strerror(errno));
            goto fail;
        }
        s->rx = event_new(m->base, s->fd, EV_READ | EV_PERSIST, media_rx, s);
        if (!s->rx || event_add(s->rx, NULL) < 0) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        media_port_mark(m, i, true);
        m->cursor = (i + 1) % m->n_ports;
        s->m = m;
        s->owner = owner;
        s->on_done = on_done;
        s->port = port;
        *local_port = port;
        return s;
    }
    snprintf(err, errlen, "no free RTP port in %u-%u", m->port_first,
             m->port_first + 2 * (m->n_ports - 1));
fail:
    if (s->rx)
        event_free(s->rx);
    close(s->fd);
    free(s);
    return NULL;
}

static void media_unlink(struct media_stream *s)
{
    struct media_stream **head = s->state == MEDIA_PLAYING ? &s->m->playing
                                                           : &s->m->done;

    if (s->state == MEDIA_IDLE)
        return;
    if (s->prev)
        s->prev->next = s->next;
    else
        *head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    s->state = MEDIA_IDLE;
}

static void media_push(struct media_stream **head, struct media_stream *s)
{
    s->prev = NULL;
    s->next = *head;
    if (*head)
        (*head)->prev = s;
    *head = s;
}

/* Unlinks s and drops its clips. */
static void media_stop(struct media_stream *s)
{
    media_unlink(s);
    prompt_clips_release(s->clips, s->n_clips);
    s->clips = NULL;
    s->n_clips = 0;
}

/* Arms the ticker for `due` unless it already fires sooner. */
static void media_schedule(struct media *m, uint64_t due)
{
    uint64_t now = media_now(), wait = due > now ? due - now : 0;
    struct timeval tv = {(time_t)(wait / 1000000000ULL),
                         (suseconds_t)(wait % 1000000000ULL / 1000)};

    if (m->ticker_armed && m->ticker_due <= due)
        return;
    if (evtimer_add(m->ticker, &tv) == 0) {
        m->ticker_armed = true;
        m->ticker_due = due;
    }
}

static void media_finish(struct media_stream *s, int result)
{
    media_unlink(s);
    s->result = (int8_t)result;
    s->state = MEDIA_DONE;
    media_push(&s->m->done, s);
}

/* Sends every packet of s due by now, then moves s to the done list if it
 * played out or failed. Never calls out. */
static void media_pump(struct media_stream *s, uint64_t now)
{
    uint8_t pkt[12 + PROMPT_FRAME_SAMPLES];

    while (s->t0 + s->sent * MEDIA_PTIME_NS <= now) {
        const struct prompt_clip *c = s->clips[s->clip_idx];
        const uint8_t *pay = s->pt == G711_PT_PCMA ? c->alaw : c->ulaw;

        media_rtp_header(pkt, s->sent == 0, s->pt, s->seq, s->ts, s->ssrc);
        memcpy(pkt + 12, pay + (size_t)s->frame_idx * PROMPT_FRAME_SAMPLES,
               PROMPT_FRAME_SAMPLES);
        if (sendto(s->fd, pkt, sizeof pkt, 0, &s->dest.sa, s->dest_len) < 0 &&
            errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS &&
            errno != ECONNREFUSED && errno != EINTR) {
            /* A full buffer loses one packet; anything else is for good. */
            media_finish(s, -1);
            return;
        }
        s->sent++;
        s->seq++;
        s->ts += PROMPT_FRAME_SAMPLES;
        if (++s->frame_idx < c->n_frames)
            continue;
        s->frame_idx = 0;
        do { /* empty clips contribute no packets */
            if (++s->clip_idx == s->n_clips) {
                s->clip_idx = 0;
                if (++s->play_idx == s->plays) {
                    media_finish(s, 0);
                    return;
                }
            }
        } while (s->clips[s->clip_idx]->n_frames == 0);
    }
}

static void media_tick(evutil_socket_t fd, short what, void *arg)
{
    struct media *m = arg;
    struct media_stream *s, *next;
    uint64_t now = media_now(), due = UINT64_MAX;

    (void)fd;
    (void)what;
    m->ticker_armed = false;
    for (s = m->playing; s; s = next) {
        next = s->next; /* pump may move s to the done list */
        media_pump(s, now);
        if (s->state == MEDIA_PLAYING &&
            s->t0 + s->sent * MEDIA_PTIME_NS < due)
            due = s->t0 + s->sent * MEDIA_PTIME_NS;
    }
    /* The callbacks may close or restart any stream, so take the head
     * afresh each time. */
    while ((s = m->done) != NULL) {
        int result = s->result;

        media_stop(s);
        s->on_done(s->owner, result);
    }
    if (due != UINT64_MAX)
        media_schedule(m, due > now + MEDIA_MIN_WAIT_NS
                              ? due
                              : now + MEDIA_MIN_WAIT_NS);
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
    if (frames == 0 || plays == 0 || n_clips > UINT32_MAX ||
        (payload_type != G711_PT_PCMA && payload_type != G711_PT_PCMU) ||
        dest->sa_family != m->addr.sa.sa_family ||
        dest_len > sizeof s->dest) {
        errno = EINVAL;
        return -1;
    }
    media_stop(s);
    s->clips = malloc(n_clips * sizeof *s->clips);
    if (!s->clips)
        return -1;
    for (size_t i = 0; i < n_clips; i++) {
        s->clips[i] = clips[i];
        clips[i]->refs++;
    }
    s->n_clips = (uint32_t)n_clips;
    memcpy(&s->dest, dest, dest_len);
    s->dest_len = dest_len;
    s->pt = (uint8_t)payload_type;
    s->plays = plays;
    s->play_idx = s->clip_idx = s->frame_idx = 0;
    while (s->clips[s->clip_idx]->n_frames == 0)
        s->clip_idx++;
    media_random(&rnd, sizeof rnd);
    s->ssrc = rnd.ssrc;
    s->ts = rnd.ts;
    s->seq = rnd.seq;
    s->sent = 0;
    s->t0 = media_now();
    s->state = MEDIA_PLAYING;
    media_push(&m->playing, s);
    media_pump(s, s->t0); /* the first packet goes out now */
    media_schedule(m, s->state == MEDIA_PLAYING ? s->t0 + MEDIA_PTIME_NS
                                                : s->t0);
    return 0;
}

void media_stream_close(struct media_stream *s)
{
    if (!s)
        return;
    media_stop(s);
    event_free(s->rx);
    close(s->fd);
    media_port_mark(s->m, (uint32_t)(s->port - s->m->port_first) / 2, false);
    free(s);
}
