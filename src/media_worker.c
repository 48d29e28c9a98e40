/* media_worker: the media threads. Each owns its struct media_worker's
 * thread-side state (an epoll set, a timerfd, the slot wheel, the list of
 * listening streams) and, while they play or listen, the streams main
 * lent it (media.c hands them over and takes them back); it reads its
 * command queue and writes the shared return queue.
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
 * Receiving (issue 14's keys): a stream given media_keys is LISTENed to
 * by the thread it is pinned to, on the thread's listening list until
 * the stream's STOP. What the kernel filter lets through (telephone-event
 * of the negotiated type, or all for in-band DTMF) is read here, checked
 * as RTP (a malformed packet is dropped and counted), fed to the stream's
 * detectors, and each key posted to the main loop (MEDIA_KEY) in order.
 * The sockets are polled, not in the epoll set: a socket in an epoll set
 * has a waiter on its queue, so each RTP packet we send on it wakes it
 * when the packet is freed (sock_wfree -> ep_poll_callback), 50 times a
 * second for an EPOLLOUT nobody asked for; that was most of what keys
 * cost (docs/performance.md, "Keys"). Instead, while any stream listens,
 * the timer also fires every MEDIA_KEYS_STEP_NS (10 ms), playing or not
 * (keys are collected in wait_seconds and during `then`), and takes the
 * next fifth of the list: one poll() with no timeout (it queues no
 * waiter) says which sockets hold anything, and those are drained (recv,
 * MSG_DONTWAIT, MEDIA_RX_BATCH at most). So each socket is looked at
 * about every MEDIA_KEYS_POLL_NS (50 ms). Nothing is lost meanwhile:
 * packets wait in the socket buffer (an RFC 4733 press lasts 40 ms or
 * more and ends with three end packets; in-band audio is 3 packets per
 * 50 ms, and the default 208 KiB buffer holds 256 of them, 5 s); a key
 * is only handled up to one look (~60 ms) later. */

#include "media_int.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "dtmf_inband.h"
#include "g711.h"
#include "log.h"
#include "queue.h"

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
                            enum media_result result)
{
    if (s->on_wheel) {
        /* RFC 3550 §6.6: a source that sent says it is leaving; not a
         * listening one, which may play again (`then`) as the same
         * source. */
        if (s->sent > 0 && (s->wrx == NULL || result == MEDIA_STOPPED))
            rtcp_send(&s->rtcp, s->ssrc, s->sent, true);
        wheel_remove(&w->wheel, s);
    }
    struct media_return ev = {.s = s, .result = result};
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

    s->frames++;
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
            atomic_fetch_add(&w->m->tx_fatal, 1);
            log_warn("media: RTP port %u: send: %s; the stream stops",
                     s->port, strerror(err));
            media_hand_back(w, s, MEDIA_DONE_ERROR);
            return false;
        }
        atomic_fetch_add(&w->m->tx_lost, 1);
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
    uint64_t now = clock_mono_ns();

    for (bool first = true; w->total > 0 && w->next_due <= now; first = false) {
        /* Lateness (metrics only): when the slot's sending starts. */
        bool late =
            (first ? now : clock_mono_ns()) - w->next_due > MEDIA_LATE_NS;
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

/* Arms the timer for the next slot holding streams or, if sooner, the
 * next poll of the listening ones; disarms when there is neither. */
static void media_arm(struct media_worker *mw)
{
    struct media_wheel *w = &mw->wheel;
    struct itimerspec its = {0};
    uint64_t due = UINT64_MAX;

    if (w->total > 0) {
        /* Skip empty slots: they have nothing to send. */
        while (w->head[w->next_slot] == NULL) {
            w->next_slot = (w->next_slot + 1) % MEDIA_SLOTS;
            w->next_due += MEDIA_SLOT_NS;
        }
        due = w->next_due;
    }
    if (mw->n_listening > 0 && mw->poll_due < due)
        due = mw->poll_due;
    if (due != UINT64_MAX) {
        its.it_value.tv_sec = (time_t)(due / 1000000000ULL);
        its.it_value.tv_nsec = (long)(due % 1000000000ULL);
    }
    timerfd_settime(mw->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void media_start_stream(struct media_worker *mw,
                               struct media_stream *s)
{
    struct media_wheel *w = &mw->wheel;
    if (w->total == 0) {
        /* The wheel stood still: set it turning from now. */
        w->next_due = clock_mono_ns();
    }
    wheel_add(w, s);
    /* The stream's clock: its first packet is due when its slot next
     * comes round; RTCP reports its timestamps against that. */
    unsigned ahead = (s->slot + MEDIA_SLOTS - w->next_slot) % MEDIA_SLOTS;
    rtcp_start(&s->rtcp, w->next_due + ahead * MEDIA_SLOT_NS, s->ts);
}

/* The stream p if it is on this thread's wheel still in play play_id (it
 * may have played out meanwhile, and been freed), else NULL. */
static struct media_stream *media_find(struct media_worker *w,
                                       const struct media_stream *p,
                                       uint64_t play_id)
{
    for (unsigned i = 0; i < MEDIA_SLOTS; i++)
        for (struct media_stream *x = w->wheel.head[i]; x; x = x->next)
            if (x == p)
                return x->play_id == play_id ? x : NULL;
    return NULL;
}

/* Applies an UPDATE to the stream it names, if that is still on this
 * thread's wheel (it may have played out meanwhile). */
static void media_apply_update(struct media_worker *w,
                               const struct media_update *u)
{
    struct media_stream *s = media_find(w, u->s, u->play_id);
    if (s == NULL)
        return;
    if (u->dest_len > 0) {
        if (connect(s->fd, &u->dest.sa, u->dest_len) < 0)
            log_warn("media: RTP port %u: cannot redirect: %s", s->port,
                     strerror(errno));
        /* The stream is this thread's now, and so is its RTCP peer. */
        rtcp_set_peer(&s->rtcp, &u->dest.sa, u->dest_len, u->rtcp_port);
    }
    if (u->paused && !s->paused)
        s->first = true; /* the first packet after the hold starts a
                            talkspurt: marker bit */
    s->paused = u->paused;
}

/* LISTEN: the stream joins the thread's listening list, polled from the
 * next share on (media_poll_keys). */
static void media_listen(struct media_worker *w, struct media_stream *s,
                         struct media_rx *rx)
{
    if (s->wrx != NULL)
        return; /* media_keys sends one LISTEN per stream */
    s->wrx = rx;
    s->lprev = NULL;
    s->lnext = w->listening;
    if (w->listening != NULL)
        w->listening->lprev = s;
    w->listening = s;
    if (w->n_listening++ == 0)
        w->poll_due = clock_mono_ns() + MEDIA_KEYS_STEP_NS;
}

/* The stream leaves the list: from here on the thread never reads it. */
static void media_unlisten(struct media_worker *w, struct media_stream *s)
{
    if (s->wrx == NULL)
        return;
    if (w->poll_next == s)
        w->poll_next = s->lnext;
    if (s->lprev != NULL)
        s->lprev->lnext = s->lnext;
    else
        w->listening = s->lnext;
    if (s->lnext != NULL)
        s->lnext->lprev = s->lprev;
    s->lprev = s->lnext = NULL;
    w->n_listening--;
    s->wrx = NULL;
}

static void media_post_key(struct media_worker *w, struct media_stream *s,
                           char key)
{
    struct media_return ev = {.s = s, .result = MEDIA_KEY, .key = key};
    if (queue_push(w->m->events, &ev) < 0)
        log_error("media: out of memory posting a key");
}

/* One packet the filter let through. */
static void media_rx_packet(struct media_worker *w, struct media_stream *s,
                            const uint8_t *b, size_t n)
{
    struct media_rx *rx = s->wrx;
    size_t off, len;
    if (!dtmf_rtp_payload(b, n, &off, &len)) {
        atomic_fetch_add(&w->m->rx_bad, 1);
        return;
    }
    uint8_t pt = b[1] & 0x7f;
    if (rx->te_on && pt == rx->te.pt) {
        char key = dtmf_rtp_rx_packet(&rx->te, b, n);
        if (key != '\0')
            media_post_key(w, s, key);
    } else if (rx->inband != NULL && pt == rx->audio_pt) {
        char keys[8];
        size_t k = dtmf_inband_feed(rx->inband, b + off, len, keys,
                                    sizeof keys);
        for (size_t i = 0; i < k; i++)
            media_post_key(w, s, keys[i]);
    }
}

/* Reads what a listening stream's socket holds, MEDIA_RX_BATCH at most
 * (the rest waits in the socket for the next poll). */
static void media_receive(struct media_worker *w, struct media_stream *s)
{
    uint8_t buf[MEDIA_RX_MAX];
    for (int i = 0; i < MEDIA_RX_BATCH && s->wrx != NULL; i++) {
        ssize_t n = recv(s->fd, buf, sizeof buf, MSG_TRUNC | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0)
            continue; /* an ICMP error for an earlier send: cleared */
        atomic_fetch_add(&w->m->rx_read, 1);
        if ((size_t)n > sizeof buf)
            atomic_fetch_add(&w->m->rx_bad, 1); /* no RTP of ours */
        else
            media_rx_packet(w, s, buf, (size_t)n);
    }
}

/* Every MEDIA_KEYS_STEP_NS, polls the next 1/(POLL/STEP) of the listening
 * streams, round the list, so each is looked at about every
 * MEDIA_KEYS_POLL_NS and no wake-up takes them all at once (the wheel's
 * next slot waits). One poll() with no timeout asks a chunk of sockets
 * which hold anything (it puts nothing on their wait queues), and only
 * those are read: a recv() per socket that holds nothing would cost more
 * than it saves. A late wake-up polls one share, not the ones it missed. */
static void media_poll_keys(struct media_worker *w)
{
    const unsigned shares = MEDIA_KEYS_POLL_NS / MEDIA_KEYS_STEP_NS;
    struct pollfd pfd[64];
    struct media_stream *ps[64];
    if (w->n_listening == 0)
        return; /* no clock read per turn when no call listens */
    uint64_t now = clock_mono_ns();
    if (now < w->poll_due)
        return;
    w->poll_due += MEDIA_KEYS_STEP_NS;
    if (w->poll_due <= now)
        w->poll_due = now + MEDIA_KEYS_STEP_NS;
    unsigned left = (w->n_listening + shares - 1) / shares;
    while (left > 0) {
        nfds_t n = 0;
        for (; left > 0 && n < 64; left--, n++) {
            ps[n] = w->poll_next ? w->poll_next : w->listening;
            w->poll_next = ps[n]->lnext;
            pfd[n] = (struct pollfd){.fd = ps[n]->fd, .events = POLLIN};
        }
        if (poll(pfd, n, 0) <= 0)
            continue; /* nothing waits (EINTR: at their next turn) */
        for (nfds_t i = 0; i < n; i++)
            if (pfd[i].revents != 0) /* POLLIN, or POLLERR: an ICMP */
                media_receive(w, ps[i]);
    }
}

/* Returns false on QUIT. */
static bool media_on_commands(struct media_worker *w)
{
    struct media_cmd cmd;
    while (queue_pop(w->commands, &cmd)) {
        switch (cmd.type) {
        case MEDIA_CMD_PLAY:
            media_start_stream(w, cmd.play);
            break;
        case MEDIA_CMD_STOP:
            /* Answered even when the stream already played out: the main
             * thread frees it only after this answer. */
            media_unlisten(w, cmd.stop);
            media_hand_back(w, cmd.stop, MEDIA_STOPPED);
            break;
        case MEDIA_CMD_UPDATE:
            media_apply_update(w, &cmd.update);
            break;
        case MEDIA_CMD_LISTEN:
            media_listen(w, cmd.listen.s, cmd.listen.rx);
            break;
        case MEDIA_CMD_STOP_PLAY: {
            /* Already played out: its DONE is on its way anyway. */
            struct media_stream *s =
                media_find(w, cmd.stop_play.s, cmd.stop_play.play_id);
            if (s != NULL)
                media_hand_back(w, s, MEDIA_DONE_OK);
            break;
        }
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
    struct epoll_event evs[2]; /* the timer and the commands */
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
            if (evs[i].data.ptr == &w->timerfd) {
                uint64_t expirations;
                ssize_t ignored = read(w->timerfd, &expirations,
                                       sizeof expirations);
                (void)ignored;
            } else if (evs[i].data.ptr == w && !media_on_commands(w)) {
                quit = true;
            }
        }
        if (quit)
            break;
        media_turn(w);
        /* After the commands: a stream STOPped there has left the list,
         * and is never read again. */
        media_poll_keys(w);
        media_arm(w);
    }
    /* Give back whatever still plays: the main thread owns it again. */
    for (unsigned i = 0; i < MEDIA_SLOTS; i++)
        while (w->wheel.head[i] != NULL)
            media_hand_back(w, w->wheel.head[i], MEDIA_STOPPED);
    return NULL;
}

int media_worker_start(struct media *m, struct media_worker *w)
{
    w->m = m;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    w->commands = queue_new(sizeof(struct media_cmd));
    if (w->epfd < 0 || w->timerfd < 0 || !w->commands)
        return -1;
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = &w->timerfd};
    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = w};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->timerfd, &tev) < 0 ||
        epoll_ctl(w->epfd, EPOLL_CTL_ADD, queue_fd(w->commands), &cev) < 0 ||
        pthread_create(&w->thread, NULL, media_thread_main, w) != 0)
        return -1;
    w->started = true;
    return 0;
}

void media_worker_stop(struct media_worker *w)
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
