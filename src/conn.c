/* conn: the JSON-RPC listener, connections and their output.
 *
 * A connection (struct conn) is owned by its struct conns from accept to
 * close. Bytes read go through its rpc_framer; each line is parsed and
 * handed to the request handler (methods.c), which runs to completion
 * and queues its reply on the connection before anything else can happen
 * on the loop. That is what makes "the construct reply precedes the
 * resource's events" hold: events only come from later loop iterations.
 *
 * Every event is numbered and journaled before it is written anywhere
 * (journal_, docs/reliability.md), and every line waits for the group
 * commit before it reaches the socket: both in conn_out.c, with the
 * replies and the output limit. */
#include "conn.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"
#include "reqkey.h"
#include "uri.h"

/* ---- group commit: conn_out.c has it; this runs it ---------------------- */

static void conns_on_sync_due(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conns_sync(arg);
}

/* Closes every connection conn_check_output marked. */
static void conns_on_reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conns *set = arg;
    struct conn *next;
    for (struct conn *c = set->list; c != NULL; c = next) {
        next = c->next;
        if (c->overflowed)
            conn_close(c);
    }
}

static void conn_on_drained(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_close(arg);
}

/* A peer that has sent EOF (say `printf ... | nc`) may still be reading:
 * it keeps its connection until its calls' events are written, or for
 * good if it subscribed (a write error closes it then). */
void conn_maybe_finish(struct conn *c)
{
    if (!c->peer_done || c->calls > 0 || c->subscribed || c->replaying)
        return;
    if (c->held != NULL && evbuffer_get_length(c->held) > 0)
        conns_sync(c->set); /* its last event is still held */
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        conn_close(c);
    else
        bufferevent_setcb(c->bev, NULL, conn_on_drained, NULL, c);
}

bool conns_output_pending(const struct conns *set)
{
    for (const struct conn *c = set->list; c != NULL; c = c->next)
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
            return true;
    return false;
}

/* ---- handshake ----------------------------------------------------------
 *
 * An idle connection that never authenticates (or, with no auth_token,
 * never sends a request) would hold a slot for ever: it gets
 * handshake_timeout seconds. After its handshake a connection may idle
 * as long as it likes (a subscriber waiting for events does). */

static void conn_on_handshake_timeout(evutil_socket_t fd, short what,
                                      void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    log_info("%s: closed: no %s within handshake_timeout %us", c->peer,
             c->set->deps.conf->auth_token[0] ? "sys.auth"
                                              : "complete request",
             c->set->deps.conf->handshake_timeout);
    conn_close(c);
}

static void conn_handshake_start(struct conn *c)
{
    unsigned s = c->set->deps.conf->handshake_timeout;
    if (s == 0)
        return;
    if (c->handshake == NULL)
        c->handshake = evtimer_new(c->set->deps.base,
                                   conn_on_handshake_timeout, c);
    struct timeval tv = {.tv_sec = (time_t)s};
    if (c->handshake == NULL || evtimer_add(c->handshake, &tv) < 0)
        log_warn("%s: cannot arm handshake_timeout", c->peer);
}

void conn_handshake_done(struct conn *c)
{
    if (c->handshake != NULL)
        evtimer_del(c->handshake);
}

/* A new auth_token ends every session the old one (or none) opened:
 * each connection must call sys.auth again, and a subscriber, which may
 * never send another request to learn that, is closed (its events stay
 * in the journal for sys.subscribe since, after sys.auth). A connection
 * keeps the events of the calls it constructed. */
void conns_revoke_auth(struct conns *set)
{
    unsigned revoked = 0, closed = 0;
    struct conn *next;
    for (struct conn *c = set->list; c != NULL; c = next) {
        next = c->next;
        if (c->internal)
            continue; /* the request bus: not a client session */
        revoked += c->authed;
        c->authed = false;
        c->auth_failures = 0;
        if (c->subscribed || c->replaying) {
            log_info("%s: subscriber closed: auth_token changed", c->peer);
            conn_close(c);
            closed++;
        } else {
            conn_handshake_start(c); /* sys.auth again in time, or closed */
        }
    }
    log_info("SIGHUP: auth_token changed: %u authenticated connection(s) "
             "must call sys.auth again, %u subscriber(s) closed",
             revoked, closed);
}

/* ---- connections --------------------------------------------------------- */

struct conn *conns_find(struct conns *set, uint64_t id)
{
    for (struct conn *c = set->list; c != NULL; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

static void conn_on_line(void *arg, char *line, size_t len)
{
    struct conn *c = arg;
    struct rpc_request req;
    struct rpc_error err;
    json_t *id = NULL;
    if (c->closing)
        return;
    if (rpc_parse_request(line, len, &req, &id, &err) < 0) {
        log_info("%s: bad request: %s", c->peer, err.message);
        /* Unparseable requests are answered even without an id: the
         * sender cannot have meant a notification. */
        json_t *null_id = json_null();
        conn_reply_error(c, id ? id : null_id, &err);
        json_decref(null_id);
        json_decref(id);
        return;
    }
    log_debug("%s: %s", c->peer, req.method);
    if (c->set->deps.conf->auth_token[0] == '\0')
        conn_handshake_done(c); /* no token: a request is the handshake */
    c->set->on_request(c->set->request_arg, c, &req);
    rpc_request_free(&req);
}

static void conn_on_oversize(void *arg)
{
    struct conn *c = arg;
    struct rpc_error err;
    rpc_fail(&err, RPC_INVALID_REQUEST, "line longer than %u bytes",
             c->set->deps.conf->max_line);
    log_info("%s: %s", c->peer, err.message);
    json_t *null_id = json_null();
    conn_reply_error(c, null_id, &err);
    json_decref(null_id);
}

void conn_close(struct conn *c)
{
    struct conns *set = c->set;
    log_info("%s: connection closed", c->peer);
    if (c->prev)
        c->prev->next = c->next;
    else
        set->list = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (!c->internal)
        set->n--;
    admit_del(&set->admit, &c->addr);
    if (c->handshake != NULL)
        event_free(c->handshake);
    bufferevent_free(c->bev);
    if (c->held != NULL)
        evbuffer_free(c->held);
    rpc_framer_free(&c->framer);
    free(c);
}

void conn_on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char buf[16384];
    int n;
    while (!c->closing && (n = evbuffer_remove(in, buf, sizeof buf)) > 0)
        if (rpc_framer_feed(&c->framer, buf, (size_t)n, conn_on_line,
                            conn_on_oversize,
                            c) < 0)
            c->closing = true;
    if (!c->closing)
        return;
    if (c->flush_first && c->held != NULL &&
        evbuffer_get_length(c->held) > 0)
        conns_sync(c->set);
    if (c->flush_first &&
        evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
        bufferevent_disable(bev, EV_READ);
        bufferevent_setcb(bev, NULL, conn_on_drained, conn_on_event, c);
        return;
    }
    conn_close(c);
}

void conn_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    if (what & BEV_EVENT_ERROR) {
        log_info("%s: %s", c->peer, strerror(EVUTIL_SOCKET_ERROR()));
        conn_close(c);
    } else if (what & BEV_EVENT_EOF) {
        c->peer_done = true;
        bufferevent_disable(bev, EV_READ);
        if (c->calls > 0 || c->subscribed || c->replaying)
            log_info("%s: peer finished sending; kept open for %u call(s)%s",
                     c->peer, c->calls, c->subscribed ? " and events" : "");
        conn_maybe_finish(c);
    }
}

/* accept() failed (out of descriptors, say): admit_ answers and pauses. */
static void conns_on_accept_error(struct evconnlistener *l, void *arg)
{
    struct conns *set = arg;
    admit_on_accept_error(&set->admit, l);
}

static void conns_on_accept(struct evconnlistener *l, evutil_socket_t fd,
                      struct sockaddr *sa, int salen, void *arg)
{
    (void)l;
    struct conns *set = arg;
    char host[NI_MAXHOST] = "?", port[NI_MAXSERV] = "?";
    getnameinfo(sa, (socklen_t)salen, host, sizeof host, port, sizeof port,
                NI_NUMERICHOST | NI_NUMERICSERV);
    char peer[NI_MAXHOST + NI_MAXSERV + 4]; /* [ip]:port, for logs */
    uri_host(peer, sizeof peer, host);
    snprintf(peer + strlen(peer), sizeof peer - strlen(peer), ":%s", port);
    admit_accepted(&set->admit);
    struct admit_key addr = admit_key_of(sa, salen);
    unsigned per_ip = set->deps.conf->max_connections_per_ip;
    /* Refused with a reason the client can read; logged once a second. */
    if (set->stopping || set->n >= set->deps.conf->max_connections ||
        (per_ip > 0 && admit_count(&set->admit, &addr) >= per_ip)) {
        admit_refuse(&set->admit, fd, peer,
                     set->stopping ? ADMIT_STOPPING
                     : set->n >= set->deps.conf->max_connections
                         ? ADMIT_FULL
                         : ADMIT_PER_IP);
        return;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (c != NULL)
        c->bev = bufferevent_socket_new(set->deps.base, fd,
                                        BEV_OPT_CLOSE_ON_FREE);
    if (c == NULL || c->bev == NULL || admit_add(&set->admit, &addr) < 0) {
        log_error("out of memory accepting a connection");
        if (c != NULL && c->bev != NULL)
            bufferevent_free(c->bev); /* closes fd */
        else
            evutil_closesocket(fd);
        free(c);
        return;
    }
    c->addr = addr;
    /* Replies and events are small writes: Nagle would hold one back
     * until the client's (delayed) ACK of the previous one. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->id = ++set->next_id;
    c->set = set;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    rpc_framer_init(&c->framer, set->deps.conf->max_line);
    c->next = set->list;
    if (set->list)
        set->list->prev = c;
    set->list = c;
    set->n++;
    metrics_on_connection(set->deps.metrics);
    bufferevent_setcb(c->bev, conn_on_read, NULL, conn_on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    conn_handshake_start(c);
    log_info("%s: connection accepted", c->peer);
}

struct conn *conns_adopt(struct conns *set, struct bufferevent *bev,
                         const char *peer)
{
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        bufferevent_free(bev);
        return NULL;
    }
    c->bev = bev;
    c->internal = true;
    c->authed = true;
    c->id = ++set->next_id;
    c->set = set;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    rpc_framer_init(&c->framer, set->deps.conf->max_line);
    c->next = set->list;
    if (set->list)
        set->list->prev = c;
    set->list = c;
    bufferevent_setcb(c->bev, conn_on_read, NULL, conn_on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    log_info("%s: internal connection %llu", c->peer,
             (unsigned long long)c->id);
    return c;
}

static int conns_bind(struct conns *set, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
    struct addrinfo *ai;
    char port[8];
    snprintf(port, sizeof port, "%u", set->deps.conf->listen_port);
    int rc = getaddrinfo(set->deps.conf->listen_host, port, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "listen %s: %s", set->deps.conf->listen_host,
                 gai_strerror(rc));
        return -1;
    }
    set->listener = evconnlistener_new_bind(
        set->deps.base, conns_on_accept, set,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        512, ai->ai_addr, (int)ai->ai_addrlen);
    freeaddrinfo(ai);
    if (set->listener == NULL) {
        char hp[CONF_HOST_MAX + 8];
        uri_hostport(hp, sizeof hp, set->deps.conf->listen_host,
                     set->deps.conf->listen_port);
        snprintf(err, errlen, "listen %s: %s", hp, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- the set ------------------------------------------------------------- */

void conns_init(struct conns *set, const struct conn_deps *deps,
                conn_request_fn on_request, void *arg)
{
    memset(set, 0, sizeof *set);
    set->deps = *deps;
    set->on_request = on_request;
    set->request_arg = arg;
    set->admit.reserve_fd = -1; /* so conns_free before listening is safe */
}

int conns_listen(struct conns *set, struct event_base *base, char *err,
                 size_t errlen)
{
    set->deps.base = base;
    if (admit_init(&set->admit, set->deps.base, set->deps.conf->node_id) < 0) {
        snprintf(err, errlen, "cannot keep a reserve descriptor: %s",
                 strerror(errno));
        return -1;
    }
    if (conns_bind(set, err, errlen) < 0)
        return -1;
    admit_watch(&set->admit, set->listener);
    evconnlistener_set_error_cb(set->listener, conns_on_accept_error);
    set->reap = event_new(set->deps.base, -1, 0, conns_on_reap, set);
    set->sync_due = event_new(set->deps.base, -1, 0, conns_on_sync_due, set);
    if (set->reap == NULL || set->sync_due == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

void conns_stop(struct conns *set)
{
    set->stopping = true;
    if (set->listener)
        evconnlistener_disable(set->listener);
    admit_stop(&set->admit);
}

void conns_free(struct conns *set)
{
    while (set->list != NULL)
        conn_close(set->list);
    if (set->listener)
        evconnlistener_free(set->listener);
    set->listener = NULL;
    admit_free(&set->admit);
    if (set->reap)
        event_free(set->reap);
    if (set->sync_due)
        event_free(set->sync_due);
    set->reap = set->sync_due = NULL;
}

void conns_call_released(struct conns *set, uint64_t creator_conn)
{
    struct conn *c = conns_find(set, creator_conn);
    if (c != NULL) {
        c->calls--;
        conn_maybe_finish(c);
    }
}
