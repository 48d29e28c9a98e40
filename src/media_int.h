/* media_int: private to the media module (media.c, media_worker.c), never
 * included elsewhere. Defines struct media (one per daemon: media_new to
 * media_free, main thread), struct media_stream (its owner's, from
 * media_stream_open to media_stream_close; lent to one media thread while
 * it plays: see media.c), struct media_worker (one per media thread,
 * inside struct media) and the messages between the main thread and the
 * media threads. */
#ifndef CTID_MEDIA_INT_H
#define CTID_MEDIA_INT_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dtmf_rtp.h"
#include "media.h"
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

/* Received packets: one read is at most this (longer ones are malformed
 * for us), and a poll reads at most MEDIA_RX_BATCH of one stream. */
#define MEDIA_RX_MAX 1500
#define MEDIA_RX_BATCH 32
/* Listening sockets are polled, not in epoll (media_worker.c says why):
 * each about every MEDIA_KEYS_POLL_NS, a share of them every
 * MEDIA_KEYS_STEP_NS so the reads are spread between the wheel's slots. */
#define MEDIA_KEYS_POLL_NS 50000000ULL
#define MEDIA_KEYS_STEP_NS 10000000ULL

/* A listening stream's receive state (media_keys). Made by the main
 * thread, then its media thread's alone (LISTEN) until the stream's
 * STOP answer; freed by media_stream_free. */
struct media_rx {
    struct dtmf_rtp_rx te;        /* RFC 4733, when te_on */
    bool te_on;
    struct dtmf_inband *inband;   /* NULL unless inband; owned */
    int audio_pt;                 /* G.711 type fed to inband */
};

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
    bool on_worker;                   /* counted in w->playing: playing, or
                                         listening (then until closed) */
    bool stopping;                    /* media_stop_play asked, this play */
    bool played_before;               /* replay: keep SSRC, seq, ts */
    uint64_t end_ns;                  /* when the last play came back */
    media_key_fn on_key;
    struct media_rx *rx;              /* owned; NULL unless listening */
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
    struct media_rx *wrx;             /* the thread's once LISTEN came */
    struct media_stream *lprev, *lnext; /* the thread's listening list */
    uint64_t play_id;                 /* names this play in an UPDATE */
    /* Written by the media thread while playing, read by the main thread
     * once the stream is back: the queue's hand-over orders the two. */
    uint64_t sent;                    /* packets sent this play */
    uint64_t late;                    /* ... of which late (MEDIA_LATE_NS) */
    uint64_t frames;                  /* frames the prompt advanced, this
                                         play (media_figures) */
};

enum media_cmd_type {
    MEDIA_CMD_PLAY,
    MEDIA_CMD_STOP,
    MEDIA_CMD_QUIT,
    MEDIA_CMD_UPDATE, /* hold, resume or a new address (re-INVITE) */
    MEDIA_CMD_LISTEN, /* start reading the stream's RTP socket (keys) */
    MEDIA_CMD_STOP_PLAY, /* end this play now: DONE with the figures */
};

/* LISTEN's and STOP_PLAY's. */
struct media_listen {
    struct media_stream *s;
    struct media_rx *rx;     /* the thread's from now on */
};
struct media_stop_play {
    struct media_stream *s;  /* looked up on the wheel, like UPDATE's */
    uint64_t play_id;
};

/* UPDATE's own struct. The stream may have played out and been freed by
 * the time the thread reads this, so the thread looks s up on its wheel
 * and checks play_id before it touches it. */
struct media_update {
    struct media_stream *s;
    uint64_t play_id;
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } dest;                  /* dest_len 0: keep the address */
    socklen_t dest_len;
    uint16_t rtcp_port;      /* with dest: the callee's a=rtcp, 0 RTP + 1 */
    bool paused;
};

/* main -> a media thread: one small struct per kind (the queue copies the
 * largest, UPDATE's: 64 bytes on x86-64). */
struct media_cmd {
    enum media_cmd_type type;
    union {
        struct media_stream *play;  /* PLAY: the stream, lent until it
                                       comes back */
        struct media_stream *stop;  /* STOP: answered STOPPED, always */
        struct media_update update; /* UPDATE */
        struct media_listen listen; /* LISTEN */
        struct media_stop_play stop_play; /* STOP_PLAY */
        /* QUIT: nothing */
    };
};

enum media_result {
    MEDIA_DONE_OK = 0,
    MEDIA_DONE_ERROR = -1,
    MEDIA_STOPPED = 1,
    MEDIA_KEY = 2, /* not a hand-back: a listening stream heard key */
};

/* a media thread -> main: a stream handed back, and why; or a key. A
 * stream's keys come before its STOPPED answer (one queue, in order). */
struct media_return {
    struct media_stream *s;
    enum media_result result;
    char key;                /* MEDIA_KEY */
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
    struct media_stream *listening; /* streams LISTENed to, until STOP */
    struct media_stream *poll_next; /* the next to poll; NULL: the head */
    unsigned n_listening;
    uint64_t poll_due;      /* ns: the next share of them is polled */
};

struct media {
    /* Main thread. */
    struct rtp_ports ports; /* the range, its pairs and bind address */
    struct event *events_ev;
    struct queue *events;  /* every media thread -> main, struct media_return */
    struct media_worker workers[MEDIA_MAX_THREADS];
    unsigned n_workers;
    uint64_t sent_total;   /* RTP packets of streams handed back */
    uint64_t late_total;
    /* Any thread: the listening streams' packets (media_rx_stats). */
    _Atomic uint64_t rx_read;
    _Atomic uint64_t rx_bad;
    /* Any thread: RTP and RTCP packets that could not be sent
     * (media_send_errors), counted when it happens, not at hand-back. */
    _Atomic uint64_t tx_lost;      /* send() failed, the stream went on */
    _Atomic uint64_t tx_fatal;     /* the stream could not send at all */
    _Atomic uint64_t rtcp_lost;    /* RTCP sendto() failed (rtcp.c) */
};

/* ---- media_worker.c ---------------------------------------------------- */

/* Starts media thread w of m; -1 (errno set) on failure, w's resources
 * then freed by media_worker_stop. */
int media_worker_start(struct media *m, struct media_worker *w);
/* Sends QUIT, joins the thread (it hands back what still plays), frees
 * w's descriptors and queue. */
void media_worker_stop(struct media_worker *w);

#endif
