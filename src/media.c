/* media: the RTP engine. Owns the streams: each one's two UDP sockets (a
 * port pair from rtpports.c: RTP on an even port, RTCP on the next), and
 * the media threads that send every playing stream's 20 ms frames and,
 * riding the same wheel, its RTCP reports (rtcp.c builds and sends them).
 *
 * Why a thread: RTP must leave on time whatever the main loop is doing
 * (parsing requests, loading prompts, SIP events), and on a loaded machine
 * only the scheduler can promise that; the media thread asks for real-time
 * priority when it may (docs/performance.md has the measurements).
 *
 * Pacing: a wheel of MEDIA_SLOTS one-millisecond slots turning every 20 ms
 * on CLOCK_MONOTONIC. A stream joins the least loaded slot and sends one
 * packet each time its slot comes round, so packet k leaves at
 * t0 + 20 ms * k; a late wake-up processes every slot it missed (catching
 * up, never drifting), and streams are spread over the 20 ms instead of
 * bursting together. The thread sleeps on a timerfd armed for the next
 * non-empty slot, so an idle daemon never wakes.
 *
 * Ownership: a stream belongs to the main thread except while it plays.
 * media_stream_play hands it to the media thread through the command
 * queue; the thread hands it back through the event queue when it played
 * out (DONE), failed, or was stopped (STOPPED, the answer to every STOP).
 * The main thread frees a stream only once it is back. Clips are shared
 * read-only; the stream's references keep them alive while it plays.
 *
 * Incoming RTP and RTCP are never used: a socket filter (rtpports.c)
 * drops them in the kernel, so they cost no system call and never fill a
 * socket buffer; the RTCP port is bound all the same so the callee's
 * reports meet no ICMP port unreachable. */

#include "media.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "g711.h"
#include "log.h"
#include "queue.h"
#include "rtcp.h"
#include "rtpports.h"

#define MEDIA_PTIME_NS 20000000ULL /* one 160-sample frame */
#define MEDIA_SLOTS 20             /* one per millisecond of a frame */
#define MEDIA_SLOT_NS (MEDIA_PTIME_NS / MEDIA_SLOTS)
#define MEDIA_RT_PRIORITY 10       /* SCHED_FIFO, when permitted */
#define MEDIA_MAX_THREADS 16
/* A packet is late, for the metrics, when its slot starts being sent more
 * than this after the slot's due time. Pacing itself never looks at it. */
#define MEDIA_LATE_NS 2000000ULL

enum media_state {
    MEDIA_IDLE,    /* main thread's; not sending */
    MEDIA_PLAYING, /* handed to the media thread */
};

struct media_stream {
    struct media *m;
    struct media_worker *w;           /* its thread while playing */
    void *owner;
    media_done_fn on_done;
    struct prompt_clip **clips;       /* our references while playing */
    int fd;                           /* connected to the callee once playing */
    uint16_t port;                    /* RTP; RTCP is port + 1 */
    struct rtcp_stream rtcp;          /* the RTCP socket and schedule */
    uint16_t rtcp_peer_port;          /* the answer's a=rtcp; 0: RTP + 1 */
    uint8_t state;                    /* enum media_state, main thread */
    bool closing;                     /* closed while playing: free on return */
    /* Below: the media thread's while playing. */
    struct media_stream *prev, *next; /* links of the slot's list */
    uint32_t n_clips;
    uint32_t clip_idx;                /* position: clip, frame within it, play */
    uint32_t frame_idx;
    uint32_t plays;
    uint32_t play_idx;
    uint32_t ts;
    uint32_t ssrc;
    uint16_t seq;
    uint8_t pt;
    uint8_t slot;                     /* index into the wheel */
    bool first;                       /* marker bit on the next packet */
    bool on_wheel;
    bool lost_logged;                 /* a lost packet was logged */
    bool paused;                      /* hold: frames pass, none is sent */
    uint64_t play_id;                 /* names this play in an UPDATE */
    /* Written by the media thread while playing, read by the main thread
     * once the stream is back: the queue's hand-over orders the two. */
    uint64_t sent;                    /* packets sent this play */
    uint64_t late;                    /* ... of which late (MEDIA_LATE_NS) */
};

enum media_cmd_type {
    MEDIA_CMD_PLAY,
    MEDIA_CMD_STOP,
    MEDIA_CMD_QUIT,
    MEDIA_CMD_UPDATE, /* hold, resume or a new address (re-INVITE) */
};

struct media_cmd {
    enum media_cmd_type type;
    struct media_stream *s;
    /* UPDATE only. The stream may have played out and been freed by the
     * time the thread reads this, so the thread looks s up on its wheel
     * and checks play_id before it touches it. */
    uint64_t play_id;
    struct sockaddr_storage dest; /* dest_len 0: keep the address */
    socklen_t dest_len;
    uint16_t rtcp_port;      /* with dest: the callee's a=rtcp, 0 RTP + 1 */
    bool paused;
};

enum media_result { MEDIA_DONE_OK = 0, MEDIA_DONE_ERROR = -1, MEDIA_STOPPED = 1 };

struct media_evt {
    struct media_stream *s;
    int result; /* enum media_result */
};

/* One media thread's own state. */
struct media_wheel {
    struct media_stream *head[MEDIA_SLOTS]; /* streams of each slot, in order */
    struct media_stream *tail[MEDIA_SLOTS];
    uint32_t count[MEDIA_SLOTS];
    uint32_t total;
    uint64_t next_due;  /* ns: when slot next_slot is due */
    unsigned next_slot;
};

/* A media thread. */
struct media_worker {
    struct media *m;
    struct queue *commands; /* main -> this thread, struct media_cmd */
    pthread_t thread;
    bool started;
    unsigned playing;       /* main thread's count, to spread streams */
    /* Below: the thread's own. */
    int epfd;
    int timerfd;
    struct media_wheel wheel;
};

struct media {
    /* Main thread. */
    struct rtp_ports ports; /* the range, its pairs and bind address */
    struct event *events_ev;
    struct queue *events;  /* every media thread -> main, struct media_evt */
    struct media_worker workers[MEDIA_MAX_THREADS];
    unsigned n_workers;
    uint64_t sent_total;   /* RTP packets of streams handed back */
    uint64_t late_total;
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

/* ---- media thread ------------------------------------------------------ */

static void wheel_add(struct media_wheel *w, struct media_stream *s)
{
    unsigned best = 0;
    for (unsigned i = 1; i < MEDIA_SLOTS; i++)
        if (w->count[i] < w->count[best])
            best = i;
    s->slot = (uint8_t)best;
    s->next = NULL;
    s->prev = w->tail[best];
    if (s->prev)
        s->prev->next = s;
    else
        w->head[best] = s;
    w->tail[best] = s;
    w->count[best]++;
    w->total++;
    s->on_wheel = true;
}

static void wheel_remove(struct media_wheel *w, struct media_stream *s)
{
    unsigned i = s->slot;
    if (s->prev)
        s->prev->next = s->next;
    else
        w->head[i] = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        w->tail[i] = s->prev;
    s->prev = s->next = NULL;
    w->count[i]--;
    w->total--;
    s->on_wheel = false;
}

static void media_hand_back(struct media_worker *w, struct media_stream *s,
                            int result)
{
    if (s->on_wheel) {
        /* RFC 3550 §6.6: a source that sent says it is leaving. */
        if (s->sent > 0)
            rtcp_send(&s->rtcp, s->ssrc, s->sent, true);
        wheel_remove(&w->wheel, s);
    }
    struct media_evt ev = {s, result};
    if (queue_push(w->m->events, &ev) < 0)
        log_error("media: out of memory handing a stream back");
}

/* True for a send() error that loses this one packet and no more: a full
 * buffer, an interrupted call, or the network's answer to an earlier
 * packet. On a connected UDP socket the kernel reports an ICMP error
 * (port, host or network unreachable, administratively prohibited, ...)
 * by failing the next send() with it, and a router or firewall may send
 * one for a single packet or for all of them; the network may also be
 * down for a moment (a route or an interface going away, a local firewall
 * rule). None of that is unreadable media: like a packet lost on the way,
 * the prompt plays on, paced, and the call ends normally. Anything else
 * (a bad descriptor or address) means the socket cannot send at all. */
static bool media_send_lost(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS ||
           err == ENOMEM || err == EINTR || err == ECONNREFUSED ||
           err == EHOSTUNREACH || err == ENETUNREACH || err == EHOSTDOWN ||
           err == ENETDOWN || err == ENONET || err == ENOPROTOOPT ||
           err == EPROTO || err == EPERM || err == EACCES;
}

/* Sends the stream's next packet. Returns false when it is finished. */
static bool media_send_one(struct media_worker *w, struct media_stream *s,
                           bool late)
{
    uint8_t pkt[12 + PROMPT_FRAME_SAMPLES];
    const struct prompt_clip *c = s->clips[s->clip_idx];
    const uint8_t *pay = s->pt == G711_PT_PCMA ? c->alaw : c->ulaw;

    if (s->paused) {
        /* On hold: the prompt's clock runs on (the timestamp too, RFC
         * 3550 5.1), but no packet and so no sequence number is spent. */
        s->ts += PROMPT_FRAME_SAMPLES;
        goto advance;
    }
    media_rtp_header(pkt, s->first, s->pt, s->seq, s->ts, s->ssrc);
    memcpy(pkt + 12, pay + (size_t)s->frame_idx * PROMPT_FRAME_SAMPLES,
           PROMPT_FRAME_SAMPLES);
    if (send(s->fd, pkt, sizeof pkt, 0) < 0) {
        int err = errno;
        if (!media_send_lost(err)) {
            log_warn("media: RTP port %u: send: %s; the stream stops",
                     s->port, strerror(err));
            media_hand_back(w, s, MEDIA_DONE_ERROR);
            return false;
        }
        /* Once per stream: a closed port fails every other send. */
        if (!s->lost_logged && err != EAGAIN && err != EWOULDBLOCK &&
            err != EINTR) {
            s->lost_logged = true;
            log_info("media: RTP port %u: send: %s; packet lost, the prompt "
                     "plays on", s->port, strerror(err));
        }
    }
    s->sent++;
    s->late += late;
    s->first = false;
    s->seq++;
    s->ts += PROMPT_FRAME_SAMPLES;
advance:
    if (++s->frame_idx < c->n_frames)
        return true;
    s->frame_idx = 0;
    do { /* empty clips contribute no packets */
        if (++s->clip_idx == s->n_clips) {
            s->clip_idx = 0;
            if (++s->play_idx == s->plays) {
                media_hand_back(w, s, MEDIA_DONE_OK);
                return false;
            }
        }
    } while (s->clips[s->clip_idx]->n_frames == 0);
    return true;
}

/* Processes every slot whose time has come, oldest first. */
static void media_turn(struct media_worker *mw)
{
    struct media_wheel *w = &mw->wheel;
    uint64_t now = media_now();

    for (bool first = true; w->total > 0 && w->next_due <= now; first = false) {
        /* Lateness (metrics only): when the slot's sending starts. */
        bool late = (first ? now : media_now()) - w->next_due > MEDIA_LATE_NS;
        struct media_stream *s = w->head[w->next_slot], *next;
        for (; s != NULL; s = next) {
            next = s->next; /* sending may take s off the wheel */
            /* RTCP rides the wheel: one comparison per RTP packet, a
             * report every few seconds (rtcp.c has the intervals). */
            if (media_send_one(mw, s, late) && w->next_due >= s->rtcp.due)
                rtcp_send(&s->rtcp, s->ssrc, s->sent, false);
        }
        w->next_slot = (w->next_slot + 1) % MEDIA_SLOTS;
        w->next_due += MEDIA_SLOT_NS;
    }
}

/* Arms the timer for the next slot holding streams; disarms when none. */
static void media_arm(struct media_worker *mw)
{
    struct media_wheel *w = &mw->wheel;
    struct itimerspec its = {0};

    if (w->total > 0) {
        /* Skip empty slots: they have nothing to send. */
        while (w->head[w->next_slot] == NULL) {
            w->next_slot = (w->next_slot + 1) % MEDIA_SLOTS;
            w->next_due += MEDIA_SLOT_NS;
        }
        its.it_value.tv_sec = (time_t)(w->next_due / 1000000000ULL);
        its.it_value.tv_nsec = (long)(w->next_due % 1000000000ULL);
    }
    timerfd_settime(mw->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void media_start_stream(struct media_worker *mw,
                               struct media_stream *s)
{
    struct media_wheel *w = &mw->wheel;
    if (w->total == 0) {
        /* The wheel stood still: set it turning from now. */
        w->next_due = media_now();
    }
    wheel_add(w, s);
    /* The stream's clock: its first packet is due when its slot next
     * comes round; RTCP reports its timestamps against that. */
    unsigned ahead = (s->slot + MEDIA_SLOTS - w->next_slot) % MEDIA_SLOTS;
    rtcp_start(&s->rtcp, w->next_due + ahead * MEDIA_SLOT_NS, s->ts);
}

/* Applies an UPDATE to the stream it names, if that is still on this
 * thread's wheel (it may have played out meanwhile). */
static void media_apply_update(struct media_worker *w,
                               const struct media_cmd *cmd)
{
    struct media_stream *s = NULL;
    for (unsigned i = 0; i < MEDIA_SLOTS && s == NULL; i++)
        for (struct media_stream *x = w->wheel.head[i]; x; x = x->next)
            if (x == cmd->s) {
                s = x;
                break;
            }
    if (s == NULL || s->play_id != cmd->play_id)
        return;
    if (cmd->dest_len > 0) {
        if (connect(s->fd, (const struct sockaddr *)&cmd->dest, cmd->dest_len) < 0)
            log_warn("media: RTP port %u: cannot redirect: %s", s->port,
                     strerror(errno));
        /* The stream is this thread's now, and so is its RTCP peer. */
        rtcp_set_peer(&s->rtcp, (const struct sockaddr *)&cmd->dest,
                      cmd->dest_len,
                      cmd->rtcp_port);
    }
    if (cmd->paused && !s->paused)
        s->first = true; /* the first packet after the hold starts a
                            talkspurt: marker bit */
    s->paused = cmd->paused;
}

/* Returns false on QUIT. */
static bool media_on_commands(struct media_worker *w)
{
    struct media_cmd cmd;
    while (queue_pop(w->commands, &cmd)) {
        switch (cmd.type) {
        case MEDIA_CMD_PLAY:
            media_start_stream(w, cmd.s);
            break;
        case MEDIA_CMD_STOP:
            /* Answered even when the stream already played out: the main
             * thread frees it only after this answer. */
            media_hand_back(w, cmd.s, MEDIA_STOPPED);
            break;
        case MEDIA_CMD_UPDATE:
            media_apply_update(w, &cmd);
            break;
        case MEDIA_CMD_QUIT:
            return false;
        }
    }
    return true;
}

static void media_try_realtime(void)
{
    struct sched_param sp = {.sched_priority = MEDIA_RT_PRIORITY};
    int rc = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
    if (rc == 0)
        log_info("media: thread runs SCHED_FIFO priority %d",
                 MEDIA_RT_PRIORITY);
    else
        log_info("media: thread runs at normal priority (SCHED_FIFO: %s)",
                 strerror(rc));
}

static void *media_thread_main(void *arg)
{
    struct media_worker *w = arg;
    struct epoll_event evs[2];
    char name[16];

    snprintf(name, sizeof name, "ctid-media%u",
             (unsigned)(w - w->m->workers));
    pthread_setname_np(pthread_self(), name);
    media_try_realtime();
    for (;;) {
        int n = epoll_wait(w->epfd, evs, 2, -1);
        if (n < 0 && errno != EINTR) {
            log_error("media: epoll_wait: %s", strerror(errno));
            break;
        }
        bool quit = false;
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == w->timerfd) {
                uint64_t expirations;
                ssize_t ignored = read(w->timerfd, &expirations,
                                       sizeof expirations);
                (void)ignored;
            } else if (!media_on_commands(w)) {
                quit = true;
            }
        }
        if (quit)
            break;
        media_turn(w);
        media_arm(w);
    }
    /* Give back whatever still plays: the main thread owns it again. */
    for (unsigned i = 0; i < MEDIA_SLOTS; i++)
        while (w->wheel.head[i] != NULL)
            media_hand_back(w, w->wheel.head[i], MEDIA_STOPPED);
    return NULL;
}

/* ---- main thread ----------------------------------------------------- */

static void media_stream_free(struct media_stream *s)
{
    prompt_clips_release(s->clips, s->n_clips);
    close(s->fd);
    rtcp_close(&s->rtcp);
    rtp_ports_release(&s->m->ports, s->port);
    free(s);
}

/* A stream came back from the media thread. */
static void media_on_return(struct media_stream *s, int result)
{
    /* Its packet counts are ours now; take them once. */
    s->m->sent_total += s->sent;
    s->m->late_total += s->late;
    s->sent = s->late = 0;
    if (result == MEDIA_STOPPED || !s->closing)
        s->w->playing--; /* once per play: DONE, or the STOP's answer */
    if (s->closing) {
        /* Its owner is gone; only the STOP's answer may free it, since the
         * media thread still reads the stream until it sends that. */
        if (result == MEDIA_STOPPED)
            media_stream_free(s);
        return;
    }
    s->state = MEDIA_IDLE;
    prompt_clips_release(s->clips, s->n_clips);
    s->clips = NULL;
    s->n_clips = 0;
    if (result != MEDIA_STOPPED)
        s->on_done(s->owner, result);
}

static void media_on_events(evutil_socket_t fd, short what, void *arg)
{
    struct media *m = arg;
    struct media_evt ev;

    (void)fd;
    (void)what;
    while (queue_pop(m->events, &ev))
        media_on_return(ev.s, ev.result);
}

static int media_worker_start(struct media *m, struct media_worker *w)
{
    w->m = m;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    w->commands = queue_new(sizeof(struct media_cmd));
    if (w->epfd < 0 || w->timerfd < 0 || !w->commands)
        return -1;
    struct epoll_event tev = {.events = EPOLLIN, .data.fd = w->timerfd};
    struct epoll_event cev = {.events = EPOLLIN,
                              .data.fd = queue_fd(w->commands)};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->timerfd, &tev) < 0 ||
        epoll_ctl(w->epfd, EPOLL_CTL_ADD, queue_fd(w->commands), &cev) < 0 ||
        pthread_create(&w->thread, NULL, media_thread_main, w) != 0)
        return -1;
    w->started = true;
    return 0;
}

static void media_worker_stop(struct media_worker *w)
{
    if (w->started) {
        struct media_cmd quit = {.type = MEDIA_CMD_QUIT};
        if (queue_push(w->commands, &quit) == 0)
            pthread_join(w->thread, NULL);
        w->started = false;
    }
    if (w->timerfd >= 0)
        close(w->timerfd);
    if (w->epfd >= 0)
        close(w->epfd);
    queue_free(w->commands);
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
    m->events = queue_new(sizeof(struct media_evt));
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
    *local_port = s->port;
    return s;
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
    if (connect(s->fd, dest, dest_len) < 0)
        return -1;
    if (rtcp_set_peer(&s->rtcp, dest, dest_len, s->rtcp_peer_port) < 0)
        return -1;
    s->clips = malloc(n_clips * sizeof *s->clips);
    if (!s->clips)
        return -1;
    for (size_t i = 0; i < n_clips; i++) {
        s->clips[i] = clips[i];
        clips[i]->refs++;
    }
    s->n_clips = (uint32_t)n_clips;
    s->pt = (uint8_t)payload_type;
    s->plays = plays;
    s->play_idx = s->clip_idx = s->frame_idx = 0;
    while (s->clips[s->clip_idx]->n_frames == 0)
        s->clip_idx++;
    media_random(&rnd, sizeof rnd);
    s->ssrc = rnd.ssrc;
    s->ts = rnd.ts;
    s->seq = rnd.seq;
    s->first = true;
    s->lost_logged = false;
    s->paused = false;
    static uint64_t plays_started; /* main thread only */
    s->play_id = ++plays_started;
    /* The media thread with the fewest streams takes it. */
    s->w = &m->workers[0];
    for (unsigned i = 1; i < m->n_workers; i++)
        if (m->workers[i].playing < s->w->playing)
            s->w = &m->workers[i];
    struct media_cmd cmd = {.type = MEDIA_CMD_PLAY, .s = s};
    if (queue_push(s->w->commands, &cmd) < 0) {
        prompt_clips_release(s->clips, s->n_clips);
        s->clips = NULL;
        s->n_clips = 0;
        return -1;
    }
    s->state = MEDIA_PLAYING;
    s->w->playing++;
    return 0;
}

int media_stream_update(struct media_stream *s, const struct sockaddr *dest,
                        socklen_t dest_len, uint16_t rtcp_port,
                        bool paused)
{
    if (s == NULL || s->state != MEDIA_PLAYING || s->closing)
        return 0; /* not sending: nothing to change */
    struct media_cmd cmd = {.type = MEDIA_CMD_UPDATE, .s = s,
                            .play_id = s->play_id, .paused = paused};
    if (dest != NULL && dest_len > 0) {
        if (dest->sa_family != s->m->ports.addr.sa.sa_family ||
            dest_len > sizeof cmd.dest || media_port_of(dest) == 0) {
            errno = EINVAL;
            return -1;
        }
        memcpy(&cmd.dest, dest, dest_len);
        cmd.dest_len = dest_len;
        cmd.rtcp_port = rtcp_port;
    }
    return queue_push(s->w->commands, &cmd);
}

void media_stream_set_rtcp_port(struct media_stream *s, uint16_t port)
{
    if (s)
        s->rtcp_peer_port = port;
}

void media_stream_close(struct media_stream *s)
{
    if (!s)
        return;
    if (s->state == MEDIA_IDLE) {
        media_stream_free(s);
        return;
    }
    if (s->closing)
        return;
    s->closing = true;
    struct media_cmd cmd = {.type = MEDIA_CMD_STOP, .s = s};
    if (queue_push(s->w->commands, &cmd) < 0)
        log_error("media: out of memory stopping a stream; it leaks");
}
