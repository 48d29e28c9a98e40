/* rlink: one Redis connection on the main loop, kept up. Connects to
 * conf->redis (HOST:PORT or unix:PATH) with hiredis' async API on
 * libevent, sends AUTH when redis_password is set, reconnects with a
 * backoff of 100 ms doubling up to 5 s, and drops a connection that has
 * not connected or has left a command unanswered for 10 s (a black-holed
 * address, a frozen Redis). An outage is logged once ("down" with the
 * user's words for what waits meanwhile), not per retry.
 *
 * struct rlink is opaque, owned by its user (rlink_new / rlink_free),
 * main thread only. It owns the hiredis context and its timers. The user
 * learns of the link's state through on_up / on_down and of each
 * command's answer through its reply callback; a callback never owns
 * memory the user must free, because a NULL reply (connection gone, or
 * the link being freed) may come at any time. */
#ifndef CTID_RLINK_H
#define CTID_RLINK_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct conf;
struct rlink;
struct redisReply;

/* A command's answer: r is NULL when the connection went (or failed, or
 * the link is being freed) before it came; then the command may or may
 * not have run. An error reply is passed as it is. */
typedef void (*rlink_reply_fn)(struct rlink *l, struct redisReply *r,
                               void *arg);

struct rlink_cbs {
    void (*on_up)(void *arg);   /* connected (and authenticated) */
    void (*on_down)(void *arg); /* an up link lost its connection */
    void *arg;
};

/* Starts connecting in the background. name: for logs ("events",
 * "requests"...); waiting: what the down line says waits, e.g. "events
 * wait in the journal". conf, name and waiting must outlive the link.
 * NULL when out of memory. */
struct rlink *rlink_new(struct event_base *base, const struct conf *conf,
                        const char *name, const char *waiting,
                        const struct rlink_cbs *cbs);
/* Disconnects: every pending reply callback runs with NULL first. NULL is
 * fine. Not from inside one of the link's callbacks. */
void rlink_free(struct rlink *l);
/* Connected, authenticated, not failing. */
bool rlink_up(const struct rlink *l);
/* Queues a command (argv as hiredis' redisAsyncCommandArgv; argvlen
 * NULL: strlen of each). 0, or -1 when the link is not up or it cannot be
 * queued (fn is then not called). */
int rlink_cmd(struct rlink *l, rlink_reply_fn fn, void *arg, int argc,
              const char **argv, const size_t *argvlen);
/* Logs what failed and why (once per outage) and drops the connection;
 * it is made again after the backoff. */
void rlink_fail(struct rlink *l, const char *what, const char *why);
/* conf->redis, for logs. */
const char *rlink_where(const struct rlink *l);

/* Pure helper (unit tests): the next backoff after ms (100..5000). */
unsigned rlink_next_backoff(unsigned ms);

#endif
