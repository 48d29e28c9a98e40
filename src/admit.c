/* admit: connection admission for the JSON-RPC listener (include/admit.h
 * says what it owns): per-address counts, refusals answered with one
 * JSON-RPC error line and logged at most once a second, and the reaction
 * to accept() failing at the descriptor limit. That last one used to
 * spin: libevent retries a listener whose accept() fails with EMFILE on
 * every loop turn and logged each failure, 527,928 lines in 2 s. Now the
 * reserve descriptor is given up to accept and answer the waiting
 * clients ("server busy"), and the listener pauses 100 ms, doubling up to
 * 1 s while the limit lasts. */
#include "admit.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "uri.h"

#define PAUSE_MIN_MS 100
#define PAUSE_MAX_MS 1000
#define LOG_EVERY_S 1.0
#define DRAIN_MAX 64 /* clients answered per accept failure */

struct admit_ip {
    struct admit_key key;
    unsigned n;
    struct admit_ip *next;
};

static const char *const reason_msg[ADMIT_N_REASONS] = {
    [ADMIT_FULL] = "server busy: too many connections",
    [ADMIT_PER_IP] = "too many connections from this address",
    [ADMIT_STOPPING] = "shutting down",
    [ADMIT_NO_FD] = "server busy: out of file descriptors",
};

static const char *const reason_log[ADMIT_N_REASONS] = {
    [ADMIT_FULL] = "max_connections reached",
    [ADMIT_PER_IP] = "max_connections_per_ip reached",
    [ADMIT_STOPPING] = "shutting down",
    [ADMIT_NO_FD] = "out of file descriptors",
};

/* ---- per-address counts ------------------------------------------------- */

struct admit_key admit_key_of(const struct sockaddr *sa, int salen)
{
    struct admit_key k = {0};
    if (sa->sa_family == AF_INET && salen >= (int)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        k.len = 4;
        memcpy(k.b, &in->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6 &&
               salen >= (int)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            k.len = 4;
            memcpy(k.b, in6->sin6_addr.s6_addr + 12, 4);
        } else {
            k.len = 16;
            memcpy(k.b, &in6->sin6_addr, 16);
        }
    }
    return k;
}

static unsigned bucket_of(const struct admit_key *k)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (unsigned i = 0; i < k->len; i++)
        h = (h ^ k->b[i]) * 16777619u;
    return h % ADMIT_BUCKETS;
}

static struct admit_ip **find(struct admit *a, const struct admit_key *k)
{
    struct admit_ip **p = &a->ips[bucket_of(k)];
    while (*p != NULL && ((*p)->key.len != k->len ||
                          memcmp((*p)->key.b, k->b, k->len) != 0))
        p = &(*p)->next;
    return p;
}

unsigned admit_count(const struct admit *a, const struct admit_key *key)
{
    if (key->len == 0)
        return 0;
    struct admit_ip **p = find((struct admit *)a, key);
    return *p != NULL ? (*p)->n : 0;
}

int admit_add(struct admit *a, const struct admit_key *key)
{
    if (key->len == 0)
        return 0;
    struct admit_ip **p = find(a, key);
    if (*p == NULL) {
        struct admit_ip *e = calloc(1, sizeof *e);
        if (e == NULL)
            return -1;
        e->key = *key;
        *p = e;
    }
    (*p)->n++;
    return 0;
}

void admit_del(struct admit *a, const struct admit_key *key)
{
    if (key->len == 0)
        return;
    struct admit_ip **p = find(a, key);
    if (*p == NULL)
        return;
    if (--(*p)->n == 0) {
        struct admit_ip *e = *p;
        *p = e->next;
        free(e);
    }
}

/* ---- refusals and their log --------------------------------------------- */

/* One line for every refusal since the last one. */
static void log_refusals(struct admit *a)
{
    char what[256] = "";
    size_t off = 0;
    unsigned total = 0;
    for (int r = 0; r < ADMIT_N_REASONS; r++) {
        if (a->refused[r] == 0)
            continue;
        int n = snprintf(what + off, sizeof what - off, "%s%u %s",
                         total ? ", " : "", a->refused[r], reason_log[r]);
        if (n > 0 && (size_t)n < sizeof what - off)
            off += (size_t)n;
        total += a->refused[r];
        a->refused[r] = 0;
    }
    if (total == 0)
        return;
    if (a->last_errno != 0)
        log_warn("refused %u connection(s) (%s; accept: %s), the last from "
                 "%s", total, what, strerror(a->last_errno), a->last_peer);
    else
        log_warn("refused %u connection(s) (%s), the last from %s", total,
                 what, a->last_peer);
    a->last_errno = 0;
    a->logged_at = clock_mono_s();
}

static void on_log_due(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    log_refusals(arg);
}

/* Counts a refusal; logs at once if the last line is a second old, else
 * when the second is over. */
static void note_refusal(struct admit *a, const char *peer,
                         enum admit_reason why)
{
    a->refused[why]++;
    snprintf(a->last_peer, sizeof a->last_peer, "%s", peer);
    double wait = a->logged_at + LOG_EVERY_S - clock_mono_s();
    if (wait <= 0 || a->log_due == NULL) {
        log_refusals(a);
        return;
    }
    if (!evtimer_pending(a->log_due, NULL)) {
        struct timeval tv = {(time_t)wait,
                             (suseconds_t)((wait - (time_t)wait) * 1e6)};
        evtimer_add(a->log_due, &tv);
    }
}

void admit_refuse(struct admit *a, evutil_socket_t fd, const char *peer,
                  enum admit_reason why)
{
    char line[256];
    /* node_id is area.station.instance (conf checks it): no escaping. */
    int n = snprintf(line, sizeof line,
                     "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":503,"
                     "\"message\":\"%s\",\"data\":{\"ipsc_info\":"
                     "{\"node_id\":\"%s\"}}}}\n",
                     reason_msg[why], a->node_id);
    /* A fresh socket's buffer takes one short line; never block on it. */
    if (send(fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        log_debug("%s: refusal not sent: %s", peer, strerror(errno));
    evutil_closesocket(fd);
    note_refusal(a, peer, why);
}

/* ---- accept failures ------------------------------------------------------ */

static void reserve_open(struct admit *a)
{
    if (a->reserve_fd < 0)
        a->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct admit *a = arg;
    reserve_open(a);
    if (a->listener != NULL)
        evconnlistener_enable(a->listener);
}

/* Out of descriptors: the reserve one is freed to accept each waiting
 * client in turn and tell it so, then taken back. */
static void drain_with_reserve(struct admit *a, evutil_socket_t lfd)
{
    if (a->reserve_fd < 0)
        return;
    close(a->reserve_fd);
    a->reserve_fd = -1;
    for (int i = 0; i < DRAIN_MAX; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;
        char host[48] = "?", peer[64];
        bool v6 = ss.ss_family == AF_INET6;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        evutil_inet_ntop(ss.ss_family,
                         v6 ? (void *)&in6->sin6_addr : (void *)&in->sin_addr,
                         host, sizeof host);
        uri_hostport(peer, sizeof peer, host,
                     ntohs(v6 ? in6->sin6_port : in->sin_port));
        admit_refuse(a, fd, peer, ADMIT_NO_FD);
    }
    reserve_open(a);
}

void admit_on_accept_error(struct admit *a, struct evconnlistener *l)
{
    int err = EVUTIL_SOCKET_ERROR();
    a->last_errno = err;
    if (err == EMFILE || err == ENFILE)
        drain_with_reserve(a, evconnlistener_get_fd(l));
    else
        note_refusal(a, "(accept failed)", ADMIT_NO_FD);
    evconnlistener_disable(l);
    struct timeval tv = {0, (suseconds_t)a->pause_ms * 1000};
    if (a->pause_ms >= 1000)
        tv = (struct timeval){(time_t)(a->pause_ms / 1000),
                              (suseconds_t)(a->pause_ms % 1000) * 1000};
    if (a->resume == NULL || evtimer_add(a->resume, &tv) < 0)
        evconnlistener_enable(l); /* cannot pause: better spin than die */
    a->pause_ms *= 2;
    if (a->pause_ms > PAUSE_MAX_MS)
        a->pause_ms = PAUSE_MAX_MS;
}

void admit_stop(struct admit *a)
{
    if (a->resume != NULL)
        evtimer_del(a->resume);
    a->listener = NULL;
}

void admit_accepted(struct admit *a)
{
    a->pause_ms = PAUSE_MIN_MS;
}

/* ---- life ----------------------------------------------------------------- */

int admit_init(struct admit *a, struct event_base *base,
               const char *node_id)
{
    memset(a, 0, sizeof *a);
    a->base = base;
    snprintf(a->node_id, sizeof a->node_id, "%s", node_id ? node_id : "");
    a->pause_ms = PAUSE_MIN_MS;
    a->logged_at = -LOG_EVERY_S;
    a->reserve_fd = -1;
    reserve_open(a);
    a->resume = evtimer_new(base, on_resume, a);
    a->log_due = evtimer_new(base, on_log_due, a);
    if (a->reserve_fd < 0 || a->resume == NULL || a->log_due == NULL)
        return -1;
    return 0;
}

void admit_watch(struct admit *a, struct evconnlistener *listener)
{
    a->listener = listener;
}

void admit_free(struct admit *a)
{
    if (a->log_due != NULL) {
        log_refusals(a);
        event_free(a->log_due);
    }
    if (a->resume != NULL)
        event_free(a->resume);
    if (a->reserve_fd >= 0)
        close(a->reserve_fd);
    for (size_t i = 0; i < ADMIT_BUCKETS; i++)
        while (a->ips[i] != NULL) {
            struct admit_ip *e = a->ips[i];
            a->ips[i] = e->next;
            free(e);
        }
    memset(a, 0, sizeof *a);
    a->reserve_fd = -1;
}
