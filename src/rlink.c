/* rlink: one Redis connection kept up on the main loop (include/rlink.h
 * has the contract). Owns the hiredis async context, the reconnect timer
 * and the stall watch; wraps every command so that it knows what is
 * still unanswered. Main thread. */
#include "rlink.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "conf.h"
#include "log.h"

#define RLINK_RETRY_MIN_MS 100  /* reconnect backoff: doubles ... */
#define RLINK_RETRY_MAX_MS 5000 /* ... up to this */
/* No connect, or no answer to a command, for this long: the connection
 * is dropped and made again. */
#define RLINK_STALL_MS 10000
#define RLINK_WATCH_MS 250      /* the stall watch looks this often */

struct rlink {
    struct event_base *base;
    const struct conf *conf;
    const char *name, *waiting;
    struct rlink_cbs cbs;
    redisAsyncContext *ac;      /* NULL while disconnected */
    struct event *retry;        /* reconnect, after backoff_ms */
    struct event *watch;        /* persistent: the stall watch */
    unsigned backoff_ms;
    unsigned outstanding;       /* commands sent, not yet answered */
    uint64_t progress_ms;       /* connect started, or last answer */
    bool up;                    /* connected and authenticated */
    bool failing;               /* disconnect asked: replies are NULL */
    bool down_logged;           /* the outage is logged */
    bool freeing;
};

/* A command on its way: what to call with its answer. */
struct rlink_call {
    struct rlink *l;
    rlink_reply_fn fn;
    void *arg;
};

static void rlink_connect(struct rlink *l);

unsigned rlink_next_backoff(unsigned ms)
{
    if (ms < RLINK_RETRY_MIN_MS)
        return RLINK_RETRY_MIN_MS;
    return ms * 2 > RLINK_RETRY_MAX_MS ? RLINK_RETRY_MAX_MS : ms * 2;
}

const char *rlink_where(const struct rlink *l)
{
    return l->conf->redis;
}

bool rlink_up(const struct rlink *l)
{
    return l != NULL && l->up && !l->failing && l->ac != NULL;
}

/* The connection is gone (hiredis frees ac): tell the user, retry. */
static void rlink_gone(struct rlink *l)
{
    bool was_up = l->up;
    l->ac = NULL;
    l->up = false;
    l->failing = false;
    l->outstanding = 0;
    if (l->freeing)
        return;
    struct timeval tv = {l->backoff_ms / 1000, (l->backoff_ms % 1000) * 1000};
    evtimer_add(l->retry, &tv);
    l->backoff_ms = rlink_next_backoff(l->backoff_ms);
    if (was_up && l->cbs.on_down)
        l->cbs.on_down(l->cbs.arg);
}

void rlink_fail(struct rlink *l, const char *what, const char *why)
{
    if (l->failing || l->ac == NULL)
        return;
    if (!l->down_logged)
        log_error("redis %s: %s: %s; %s, reconnecting", rlink_where(l), what,
                  why, l->waiting);
    else
        log_debug("redis %s: %s: %s", rlink_where(l), what, why);
    l->failing = true;
    l->down_logged = true;
    redisAsyncDisconnect(l->ac);
}

static void rlink_on_connect(const redisAsyncContext *ac, int status)
{
    struct rlink *l = ac->data;
    if (status != REDIS_OK) {
        if (!l->down_logged)
            log_warn("redis %s: cannot connect (%s); %s, retrying",
                     rlink_where(l), ac->errstr, l->waiting);
        l->down_logged = true;
        rlink_gone(l); /* hiredis frees ac */
        return;
    }
    if (l->conf->redis_password[0] == '\0') {
        l->up = true;
        l->down_logged = false;
        l->backoff_ms = RLINK_RETRY_MIN_MS;
        if (l->cbs.on_up)
            l->cbs.on_up(l->cbs.arg);
    }
}

static void rlink_on_disconnect(const redisAsyncContext *ac, int status)
{
    struct rlink *l = ac->data;
    if (!l->down_logged && !l->freeing)
        log_warn("redis %s: connection lost (%s); %s, reconnecting",
                 rlink_where(l), status == REDIS_OK ? "closed" : ac->errstr,
                 l->waiting);
    if (!l->freeing)
        l->down_logged = true;
    rlink_gone(l);
}

static void rlink_on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    struct rlink_call *c = priv;
    struct rlink *l = c->l;
    if (reply != NULL) {
        if (l->outstanding > 0)
            l->outstanding--;
        l->progress_ms = clock_mono_ms();
    }
    if (l->failing || l->freeing)
        reply = NULL;
    c->fn(l, reply, c->arg);
    free(c);
}

/* Queues argv whether or not the link is up yet (AUTH goes first). */
static int rlink_queue(struct rlink *l, rlink_reply_fn fn, void *arg,
                       int argc, const char **argv, const size_t *argvlen)
{
    size_t lens[64];
    if (l->ac == NULL || l->failing || argc <= 0 || argc > 64)
        return -1;
    if (argvlen == NULL) {
        for (int i = 0; i < argc; i++)
            lens[i] = strlen(argv[i]);
        argvlen = lens;
    }
    struct rlink_call *c = malloc(sizeof *c);
    if (c == NULL)
        return -1;
    *c = (struct rlink_call){l, fn, arg};
    if (redisAsyncCommandArgv(l->ac, rlink_on_reply, c, argc, argv,
                              argvlen) != REDIS_OK) {
        free(c);
        return -1;
    }
    if (l->outstanding++ == 0)
        l->progress_ms = clock_mono_ms();
    return 0;
}

int rlink_cmd(struct rlink *l, rlink_reply_fn fn, void *arg, int argc,
              const char **argv, const size_t *argvlen)
{
    if (!rlink_up(l))
        return -1;
    return rlink_queue(l, fn, arg, argc, argv, argvlen);
}

static void rlink_on_auth(struct rlink *l, struct redisReply *r, void *arg)
{
    (void)arg;
    if (r == NULL)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        rlink_fail(l, "AUTH refused (check redis_password)", r->str);
        return;
    }
    l->up = true;
    l->down_logged = false;
    l->backoff_ms = RLINK_RETRY_MIN_MS;
    if (l->cbs.on_up)
        l->cbs.on_up(l->cbs.arg);
}

static void rlink_on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rlink_connect(arg);
}

/* Opens the connection; AUTH is queued at once, hiredis sends it once
 * connected. */
static void rlink_connect(struct rlink *l)
{
    char host[PATH_MAX];
    uint16_t port;
    bool is_unix;
    (void)conf_redis_parse(l->conf->redis, host, sizeof host, &port,
                           &is_unix); /* checked by conf */
    if (!is_unix && strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1"); /* no resolver on the main loop */
    redisAsyncContext *ac = is_unix ? redisAsyncConnectUnix(host)
                                    : redisAsyncConnect(host, port);
    if (ac == NULL || ac->err) {
        if (!l->down_logged)
            log_warn("redis %s: cannot connect (%s); %s, retrying",
                     rlink_where(l), ac ? ac->errstr : "out of memory",
                     l->waiting);
        l->down_logged = true;
        if (ac)
            redisAsyncFree(ac);
        rlink_gone(l);
        return;
    }
    ac->data = l;
    l->ac = ac;
    l->outstanding = 0;
    l->progress_ms = clock_mono_ms();
    redisLibeventAttach(ac, l->base);
    redisAsyncSetConnectCallback(ac, rlink_on_connect);
    redisAsyncSetDisconnectCallback(ac, rlink_on_disconnect);
    if (l->conf->redis_password[0]) {
        const char *argv[] = {"AUTH", l->conf->redis_password};
        if (rlink_queue(l, rlink_on_auth, NULL, 2, argv, NULL) < 0)
            log_error("redis %s: cannot queue AUTH", rlink_where(l));
    }
}

/* Frees a connection that stalled (hiredis runs the pending callbacks
 * with NULL, and the disconnect callback only if it was connected). */
static void rlink_drop_stalled(struct rlink *l)
{
    redisAsyncContext *ac = l->ac;
    bool connected = (ac->c.flags & REDIS_CONNECTED) != 0;
    if (!l->down_logged)
        log_error("redis %s: no answer for %u s; %s, reconnecting",
                  rlink_where(l), RLINK_STALL_MS / 1000, l->waiting);
    l->down_logged = true;
    l->failing = true;
    redisAsyncFree(ac);
    if (!connected)
        rlink_gone(l);
}

static void rlink_on_watch(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct rlink *l = arg;
    if (l->ac == NULL || l->failing || (l->up && l->outstanding == 0))
        return;
    if (clock_mono_ms() - l->progress_ms >= RLINK_STALL_MS)
        rlink_drop_stalled(l);
}

struct rlink *rlink_new(struct event_base *base, const struct conf *conf,
                        const char *name, const char *waiting,
                        const struct rlink_cbs *cbs)
{
    struct rlink *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    *l = (struct rlink){.base = base, .conf = conf, .name = name,
                        .waiting = waiting, .cbs = *cbs,
                        .backoff_ms = RLINK_RETRY_MIN_MS};
    l->retry = evtimer_new(base, rlink_on_retry, l);
    l->watch = event_new(base, -1, EV_PERSIST, rlink_on_watch, l);
    struct timeval tv = {0, RLINK_WATCH_MS * 1000};
    if (l->retry == NULL || l->watch == NULL ||
        event_add(l->watch, &tv) < 0) {
        rlink_free(l);
        return NULL;
    }
    rlink_connect(l);
    return l;
}

void rlink_free(struct rlink *l)
{
    if (l == NULL)
        return;
    l->freeing = true;
    if (l->ac != NULL)
        redisAsyncFree(l->ac); /* runs the callbacks, NULL replies */
    if (l->retry)
        event_free(l->retry);
    if (l->watch)
        event_free(l->watch);
    free(l);
}
