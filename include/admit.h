/* admit: who may open a JSON-RPC connection, and what happens to those
 * refused. Owns the per-source-address connection counts
 * (max_connections_per_ip), the descriptor kept in reserve so that even
 * at the file limit a refused client is told why, the pause of the
 * listener after accept() fails (EMFILE and friends), and the refusal
 * log, at most one line a second with counts. The connection set
 * (conn.c) owns the listener and the connections and calls in here; main
 * loop only. */
#ifndef CTID_ADMIT_H
#define CTID_ADMIT_H

#include <event2/util.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct event;
struct evconnlistener;

#define ADMIT_BUCKETS 256 /* per-address count table (chained) */

/* A source address as the per-address table keys it (IPv4-mapped IPv6
 * counts as the IPv4 address). */
struct admit_key {
    uint8_t len; /* 4 or 16; 0: no address (counted nowhere) */
    uint8_t b[16];
};

enum admit_reason {
    ADMIT_FULL,     /* max_connections */
    ADMIT_PER_IP,   /* max_connections_per_ip */
    ADMIT_STOPPING, /* SIGTERM: no new connections */
    ADMIT_NO_FD,    /* accept() failed: out of descriptors (or memory) */
    ADMIT_N_REASONS
};

struct admit_ip; /* one address's count, private to admit.c */

struct admit {
    struct event_base *base;
    struct evconnlistener *listener; /* borrowed from the server */
    int reserve_fd;         /* /dev/null, closed to answer at EMFILE; -1 */
    struct event *resume;   /* re-enables the listener after a pause */
    unsigned pause_ms;      /* current pause; doubles up to 1 s */
    struct admit_ip *ips[ADMIT_BUCKETS];
    unsigned refused[ADMIT_N_REASONS]; /* since the last log line */
    char last_peer[64];     /* the last refused peer, for the log line */
    int last_errno;         /* of the last failed accept() */
    double logged_at;       /* monotonic s of the last refusal line */
    struct event *log_due;  /* writes the counts that are waiting */
    char node_id[32];       /* for the refusal's error data */
};

/* Opens the reserve descriptor and the timers. Returns 0 or -1. */
int admit_init(struct admit *a, struct event_base *base,
               const char *node_id);
/* The listener to pause and resume (the server's). */
void admit_watch(struct admit *a, struct evconnlistener *listener);
/* The listener's error callback must call this: libevent calls it when
 * accept() fails with anything but EAGAIN or EINTR, and would call it
 * again on the very next loop turn. Answers the waiting clients through
 * the reserve descriptor at EMFILE/ENFILE and pauses the listener. */
void admit_on_accept_error(struct admit *a, struct evconnlistener *l);
void admit_free(struct admit *a);

/* The key of sa (salen bytes). */
struct admit_key admit_key_of(const struct sockaddr *sa, int salen);
/* Connections now open from key. */
unsigned admit_count(const struct admit *a, const struct admit_key *key);
/* One more / one less connection from key. admit_add returns -1 when out
 * of memory (the connection is then refused). */
int admit_add(struct admit *a, const struct admit_key *key);
void admit_del(struct admit *a, const struct admit_key *key);

/* The server stops accepting for good (SIGTERM): a pending pause must
 * not enable the listener again. */
void admit_stop(struct admit *a);
/* A connection was accepted: the accept pause starts short again. */
void admit_accepted(struct admit *a);
/* Tells fd why it is refused (one JSON-RPC error line, id null, code
 * 503), closes it, and counts it for the log (at most a line a second). */
void admit_refuse(struct admit *a, evutil_socket_t fd, const char *peer,
                  enum admit_reason why);

#endif
