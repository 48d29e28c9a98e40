/* server: the one struct server, the JSON-RPC listener and connections,
 * method dispatch, and event delivery.
 *
 * A connection (struct conn) is owned by the server's list from accept to
 * close. Bytes read go through its rpc_framer; each line is parsed, the
 * method runs to completion, and its reply is queued on the connection's
 * bufferevent before anything else can happen on the loop. That is what
 * makes "the construct reply precedes the resource's events" hold: events
 * only come from later loop iterations.
 *
 * Every event is numbered and journaled before it is written anywhere
 * (journal_, docs/reliability.md); sys.subscribe with since replays the
 * journal to the connection in chunks, paced by its write buffer, and only
 * then marks it subscribed, so live events never overtake the replay. */
#include "server.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "api.h"
#include "call.h"
#include "log.h"
#include "media.h"
#include "prompt.h"
#include "rpc.h"
#include "sip.h"
#include "work.h"

#define SHUTDOWN_FLUSH_MS 2000 /* longest wait for replies/events to flush */
#define AUTH_MAX_FAILURES 3    /* wrong tokens before the connection closes */
#define JOURNAL_SEGMENT_BYTES (16u << 20) /* rotate segments at this size */
#define REPLAY_CHUNK (64u << 10) /* journal bytes read per replay step */
#define REPLAY_HIGH (256u << 10) /* replay pauses while this much is queued */

struct conn {
    uint64_t id;              /* never reused; calls name their creator by it */
    struct server *srv;
    struct bufferevent *bev;  /* owned */
    struct rpc_framer framer; /* owned */
    char peer[64];            /* "ip:port", for logs */
    struct admit_key addr;    /* source address, counted per address */
    struct event *handshake;  /* handshake_timeout: armed until sys.auth
                                 (with a token) or a first request */
    bool authed;              /* sys.auth succeeded (or no auth_token) */
    unsigned auth_failures;   /* wrong tokens so far; closed at the limit */
    bool subscribed;          /* sys.subscribe: receives every event */
    bool replaying;           /* sys.subscribe since: journal not yet sent */
    bool replay_failed;       /* a replayed record could not be queued */
    struct journal_cursor replay; /* where the replay is */
    bool closing;             /* close once the current read is handled */
    bool flush_first;         /* ...after writing what is queued for it */
    struct evbuffer *held;    /* output waiting for the group commit; NULL
                                 until first needed */
    bool peer_done;           /* peer sent EOF: still owed replies/events */
    bool overflowed;          /* output over max_output_bytes: reap it */
    unsigned calls;           /* calls it constructed not yet released */
    struct conn *prev, *next; /* server's list */
};

/* ---- output ------------------------------------------------------------- */

/* A client that stops reading must not grow our memory without bound:
 * once its queued output passes max_output_bytes it is closed (its events
 * stay in the journal for sys.subscribe since). Not closed here: the
 * caller may be inside this connection's read callback or walking the
 * connection list, so it is marked and the reap event closes it. */
static void conn_check_output(struct conn *c)
{
    size_t queued = evbuffer_get_length(bufferevent_get_output(c->bev));
    if (c->overflowed || queued <= c->srv->conf.max_output_bytes)
        return;
    log_warn("%s: not reading: %zu bytes queued, over max_output_bytes %u; "
             "closing (events stay in the journal)",
             c->peer, queued, c->srv->conf.max_output_bytes);
    c->overflowed = true;
    c->closing = true;
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    event_active(c->srv->reap, EV_TIMEOUT, 0);
}

/* ---- group commit ---------------------------------------------------------
 *
 * A construct reply may go out only once the call's ledger record is on
 * disk, an event only once its journal record is. Rather than an
 * fdatasync per construct and per event, both files are written at once
 * and synced once per loop iteration (on_sync_due runs after every other
 * callback of the iteration); meanwhile every line for a connection waits
 * in its held buffer, so replies, events and their order are exactly as
 * before, only later by the time of one sync. */

static bool server_unsynced(const struct server *srv)
{
    return srv->journal.unsynced || srv->ledger.unsynced;
}

/* Syncs the journal and the ledger, then releases every held line. */
static void server_sync(struct server *srv)
{
    if (srv->journal.unsynced && journal_sync(&srv->journal) < 0)
        log_error("journal: fdatasync: %s; events sent anyway",
                  strerror(errno));
    if (srv->ledger.unsynced && ledger_sync(&srv->ledger) < 0)
        log_error("%s: fdatasync: %s; calls go on, a crash now may lose "
                  "their recovery", srv->ledger.path, strerror(errno));
    for (struct conn *c = srv->conns; c != NULL; c = c->next)
        if (c->held != NULL && evbuffer_get_length(c->held) > 0) {
            if (bufferevent_write_buffer(c->bev, c->held) < 0)
                c->closing = true;
            else
                conn_check_output(c);
        }
}

static void on_sync_due(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    server_sync(arg);
}

/* Queues one line for c: at once when nothing is waiting for a sync, else
 * behind the held lines. Returns -1 if it cannot be queued. */
static int conn_send(struct conn *c, const char *line, size_t len)
{
    struct server *srv = c->srv;
    if (!server_unsynced(srv) &&
        (c->held == NULL || evbuffer_get_length(c->held) == 0)) {
        if (bufferevent_write(c->bev, line, len) < 0)
            return -1;
        conn_check_output(c);
        return 0;
    }
    if (c->held == NULL && (c->held = evbuffer_new()) == NULL)
        return -1;
    if (evbuffer_add(c->held, line, len) < 0)
        return -1;
    event_active(srv->sync_due, EV_TIMEOUT, 0);
    return 0;
}

static void conn_write(struct conn *c, char *line, size_t len)
{
    if (line == NULL) {
        log_error("%s: out of memory building a reply", c->peer);
        c->closing = true;
        return;
    }
    if (conn_send(c, line, len) < 0)
        c->closing = true;
    free(line);
}

static void reply_result(struct conn *c, json_t *id, json_t *result)
{
    size_t len;
    if (id == NULL) { /* notification: run, never answer */
        json_decref(result);
        return;
    }
    char *line = rpc_result_line(id, result, &len);
    conn_write(c, line, len);
}

static void reply_error(struct conn *c, json_t *id, const struct rpc_error *e)
{
    size_t len;
    if (id == NULL)
        return;
    char *line = rpc_error_line(id, e, &len);
    conn_write(c, line, len);
}

unsigned server_emit_event(struct server *srv, uint64_t creator_conn,
                           const char *method, json_t *params)
{
    size_t len;
    unsigned sent = 0;
    /* The seq is reserved on disk (the journal's high-water mark) before
     * it is used, so it names this event only, whatever becomes of the
     * record below. 0: the mark cannot be stored; the event goes out
     * without a seq and unjournaled rather than risk naming two. */
    uint64_t seq = journal_take_seq(&srv->journal);
    /* seq goes after the contract's fields, which keep their order. */
    if (seq != 0 && json_is_object(params))
        json_object_set_new(params, "seq", json_integer((json_int_t)seq));
    char *line = rpc_event_line(method, params, &len);
    if (line == NULL) {
        log_error("out of memory building %s", method);
        return 0;
    }
    /* On disk first: a connection may read the event and then the daemon
     * crash, and since-replay after a restart must still have it. The
     * sync comes with the group commit, before any connection gets it. */
    if (seq == 0)
        log_error("journal: %s sent live only, without seq (the seq mark "
                  "cannot be stored)", method);
    else if (journal_write(&srv->journal, (int64_t)time(NULL), seq, line,
                           len) < 0)
        log_error("journal: %s seq %llu not written (%s): sent live only; "
                  "the seq stays reserved", method, (unsigned long long)seq,
                  strerror(errno));
    else
        srv->metrics.events_journaled++;
    for (struct conn *c = srv->conns; c != NULL; c = c->next)
        if ((c->id == creator_conn || c->subscribed) && !c->replaying &&
            !c->overflowed) {
            if (conn_send(c, line, len) < 0) {
                log_warn("%s: cannot queue %s", c->peer, method);
            } else {
                sent++;
                metrics_on_event_delivered(&srv->metrics);
            }
        }
    free(line);
    return sent;
}

static void conn_close(struct conn *c);

/* Closes every connection conn_check_output marked. */
static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *srv = arg;
    struct conn *next;
    for (struct conn *c = srv->conns; c != NULL; c = next) {
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
static void conn_maybe_finish(struct conn *c)
{
    if (!c->peer_done || c->calls > 0 || c->subscribed || c->replaying)
        return;
    if (c->held != NULL && evbuffer_get_length(c->held) > 0)
        server_sync(c->srv); /* its last event is still held */
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        conn_close(c);
    else
        bufferevent_setcb(c->bev, NULL, conn_on_drained, NULL, c);
}

static void on_flush_check(evutil_socket_t fd, short what, void *arg);

void server_call_released(struct server *srv, uint64_t creator_conn)
{
    /* The last call finished within the grace period: stop now. */
    if (srv->stopping && srv->calls.active == 0 && srv->grace_timer != NULL &&
        evtimer_pending(srv->grace_timer, NULL)) {
        evtimer_del(srv->grace_timer);
        log_info("every call finished within shutdown_grace");
        srv->flush_waited_ms = 0;
        event_base_once(srv->base, -1, EV_TIMEOUT, on_flush_check, srv, NULL);
    }
    for (struct conn *c = srv->conns; c != NULL; c = c->next)
        if (c->id == creator_conn) {
            c->calls--;
            conn_maybe_finish(c);
            return;
        }
}

/* ---- handshake ----------------------------------------------------------
 *
 * An idle connection that never authenticates (or, with no auth_token,
 * never sends a request) would hold a slot for ever: it gets
 * handshake_timeout seconds. After its handshake a connection may idle
 * as long as it likes (a subscriber waiting for events does). */

static void on_handshake_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    log_info("%s: closed: no %s within handshake_timeout %us", c->peer,
             c->srv->conf.auth_token[0] ? "sys.auth" : "complete request",
             c->srv->conf.handshake_timeout);
    conn_close(c);
}

static void conn_handshake_start(struct conn *c)
{
    unsigned s = c->srv->conf.handshake_timeout;
    if (s == 0)
        return;
    if (c->handshake == NULL)
        c->handshake = evtimer_new(c->srv->base, on_handshake_timeout, c);
    struct timeval tv = {.tv_sec = (time_t)s};
    if (c->handshake == NULL || evtimer_add(c->handshake, &tv) < 0)
        log_warn("%s: cannot arm handshake_timeout", c->peer);
}

static void conn_handshake_done(struct conn *c)
{
    if (c->handshake != NULL)
        evtimer_del(c->handshake);
}

/* ---- methods --------------------------------------------------------- */

/* A construct between call_start and its reply. Names its connection by
 * id: the connection may close while the prompts load. */
struct construct_wait {
    struct server *srv;
    uint64_t conn_id;
    json_t *id;         /* the request id (a reference) */
    json_t *user_data;  /* for the result */
    double t0;          /* construct latency, for metrics */
    bool in_request;    /* still inside do_construct, which frees it */
    bool finished;      /* construct_done has run */
};

static struct conn *conn_by_id(struct server *srv, uint64_t id)
{
    for (struct conn *c = srv->conns; c != NULL; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

static bool construct_wanted(void *arg)
{
    struct construct_wait *w = arg;
    struct conn *c = conn_by_id(w->srv, w->conn_id);
    return c != NULL && !c->closing && !c->overflowed;
}

/* The construct's reply: after the INVITE is handed to SIP, or its error.
 * Other requests on the connection may have been answered meanwhile
 * (docs/protocol.md); the call's events come later still. */
static void construct_done(void *arg, struct call *call,
                           const struct rpc_error *err)
{
    struct construct_wait *w = arg;
    struct server *srv = w->srv;
    struct conn *c = conn_by_id(srv, w->conn_id);
    metrics_on_construct(&srv->metrics, metrics_now() - w->t0,
                         call ? 0 : err->code);
    if (c != NULL && call != NULL) {
        json_t *result = json_pack("{s:s, s:O, s:s, s:{s:I}}", "res_id",
                                   call->res_id, "user_data", w->user_data,
                                   "to_uri", call->to_uri, "ipsc_info",
                                   "process_id",
                                   (json_int_t)call->process_id);
        reply_result(c, w->id, result);
    } else if (c != NULL) {
        log_info("%s: construct refused: %d %s", c->peer, err->code,
                 err->message);
        c->calls--; /* counted while it waited */
        reply_error(c, w->id, err);
        if (!w->in_request)
            conn_maybe_finish(c); /* may close c */
    }
    json_decref(w->id);
    json_decref(w->user_data);
    w->finished = true;
    if (!w->in_request)
        free(w);
}

static void do_construct(struct conn *c, struct rpc_request *req)
{
    struct server *srv = c->srv;
    double t0 = metrics_now(); /* construct latency, for metrics */
    struct api_construct a;
    struct rpc_error err;
    if (api_parse_construct(req->params, srv->conf.default_max_ring, &a,
                            &err) < 0) {
        log_info("%s: construct refused: %s", c->peer, err.message);
        api_construct_free(&a);
        reply_error(c, req->id, &err);
        metrics_on_construct(&srv->metrics, metrics_now() - t0, err.code);
        return;
    }
    struct construct_wait *w = calloc(1, sizeof *w);
    if (w == NULL) {
        api_construct_free(&a);
        rpc_fail(&err, RPC_INTERNAL_ERROR, "out of memory");
        reply_error(c, req->id, &err);
        return;
    }
    w->srv = srv;
    w->conn_id = c->id;
    w->id = json_incref(req->id);
    w->user_data = a.user_data ? json_string(a.user_data) : json_null();
    w->t0 = t0;
    w->in_request = true;
    /* The reply and then the call's event are owed: a peer that sends EOF
     * meanwhile keeps its connection (conn_maybe_finish). */
    c->calls++;
    struct calls_waiter cw = {construct_wanted, construct_done, w};
    calls_construct(&srv->calls, c->id, &a, &cw);
    api_construct_free(&a);
    w->in_request = false;
    if (w->finished)
        free(w);
    else /* names the connection as construct.c's later lines do */
        log_info("%s: construct waits for its prompts (connection %llu)",
                 c->peer, (unsigned long long)c->id);
}

static void do_exists(struct conn *c, struct rpc_request *req)
{
    uint64_t pid;
    struct rpc_error err;
    if (api_parse_res_id(req->params, c->srv->conf.node_id, &pid, &err) < 0) {
        reply_error(c, req->id, &err);
        return;
    }
    reply_result(c, req->id, json_boolean(calls_find(&c->srv->calls, pid) != NULL));
}

static void do_drop(struct conn *c, struct rpc_request *req)
{
    uint64_t pid;
    struct rpc_error err;
    if (api_parse_res_id(req->params, c->srv->conf.node_id, &pid, &err) < 0) {
        reply_error(c, req->id, &err);
        return;
    }
    struct call *call = calls_find(&c->srv->calls, pid);
    if (call == NULL) {
        rpc_fail(&err, RPC_NOT_FOUND, "unknown res_id");
        reply_error(c, req->id, &err);
        return;
    }
    log_info("%s: drop requested by %s", call->res_id, c->peer);
    /* Reply first: the event that the drop causes must follow it. */
    reply_result(c, req->id, json_true());
    call_input(call, CALL_IN_DROP, 0, true);
}

/* ---- sys.subscribe and journal replay ----------------------------------- */

static void conn_on_read(struct bufferevent *bev, void *arg);
static void conn_on_event(struct bufferevent *bev, short what, void *arg);
static int conn_replay(struct conn *c);

static void replay_record(void *arg, uint64_t seq, int64_t t,
                          const char *data, size_t len)
{
    (void)seq;
    (void)t;
    struct conn *c = arg;
    if (bufferevent_write(c->bev, data, len) < 0)
        c->replay_failed = true;
    else
        metrics_on_event_delivered(&c->srv->metrics);
}

/* The write buffer fell below the low watermark: send the next chunk. */
static void conn_on_replay_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (conn_replay(c) < 0)
        conn_close(c);
}

/* Queues journal records after the cursor until the connection's write
 * buffer holds REPLAY_HIGH bytes, then waits for it to drain; at the end
 * of the journal the connection becomes a live subscriber. All on the main
 * loop, so no event can be appended between the last record read and the
 * switch: nothing is skipped or sent twice. Returns -1 when the
 * connection must be closed. */
static int conn_replay(struct conn *c)
{
    struct server *srv = c->srv;
    /* The journal may hold records not yet synced, and the connection
     * lines (its subscribe reply) that must go first. */
    if (server_unsynced(srv) ||
        (c->held != NULL && evbuffer_get_length(c->held) > 0))
        server_sync(srv);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    /* Paced below max_output_bytes, so a replay never trips that limit
     * and the live events after it still fit. */
    size_t high = REPLAY_HIGH, chunk = REPLAY_CHUNK;
    if (high > srv->conf.max_output_bytes / 4)
        high = srv->conf.max_output_bytes / 4;
    if (chunk > high)
        chunk = high;
    while (evbuffer_get_length(out) < high) {
        int n = journal_read(&srv->journal, &c->replay, chunk,
                             replay_record, c);
        if (n < 0 || c->replay_failed) {
            log_error("%s: journal replay failed after seq %llu", c->peer,
                      (unsigned long long)c->replay.after);
            return -1;
        }
        if (n == 0) {
            c->replaying = false;
            c->subscribed = true;
            bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
            bufferevent_setcb(c->bev, conn_on_read, NULL, conn_on_event, c);
            log_info("%s: replay done up to seq %llu; live from here",
                     c->peer, (unsigned long long)c->replay.after);
            return 0;
        }
    }
    bufferevent_setwatermark(c->bev, EV_WRITE, high / 4, 0);
    bufferevent_setcb(c->bev, conn_on_read, conn_on_replay_write,
                      conn_on_event, c);
    return 0;
}

/* sys.subscribe, sys.subscribe {"since": N} or [N]: N an integer >= 0. */
static void do_subscribe(struct conn *c, struct rpc_request *req)
{
    struct rpc_error err;
    json_t *since = req->params ? rpc_param(req->params, "since", 0) : NULL;
    if (since != NULL && !json_is_null(since) &&
        (!json_is_integer(since) || json_integer_value(since) < 0)) {
        rpc_fail(&err, RPC_INVALID_PARAMS,
                 "invalid params: since: expected an integer >= 0");
        reply_error(c, req->id, &err);
        return;
    }
    if (c->subscribed || c->replaying) { /* already getting everything */
        reply_result(c, req->id, json_true());
        return;
    }
    reply_result(c, req->id, json_true());
    if (since == NULL || json_is_null(since)) {
        c->subscribed = true;
        return;
    }
    uint64_t n = (uint64_t)json_integer_value(since);
    uint64_t first = journal_first_seq(&c->srv->journal);
    log_info("%s: subscribe since %llu (journal holds %llu..%llu)", c->peer,
             (unsigned long long)n, (unsigned long long)first,
             (unsigned long long)c->srv->journal.last_seq);
    journal_cursor_init(&c->replay, n);
    c->replaying = true;
    if (conn_replay(c) < 0)
        c->closing = true;
}

/* Compares in time that depends only on the lengths, never on where the
 * first difference is, so the token cannot be guessed byte by byte. */
static bool token_equal(const char *given, size_t given_len,
                        const char *want)
{
    size_t want_len = strlen(want);
    unsigned char diff = given_len != want_len;
    for (size_t i = 0; i < want_len; i++)
        diff |= (unsigned char)(i < given_len ? given[i] : 0) ^
                (unsigned char)want[i];
    return diff == 0;
}

/* sys.auth {"token": T} or [T]. */
static void do_auth(struct conn *c, struct rpc_request *req)
{
    struct rpc_error err;
    json_t *tok = req->params ? rpc_param(req->params, "token", 0) : NULL;
    if (!json_is_string(tok)) {
        rpc_fail(&err, RPC_INVALID_PARAMS,
                 "invalid params: token: expected a string");
        reply_error(c, req->id, &err);
        return;
    }
    const char *want = c->srv->conf.auth_token;
    if (want[0] == '\0' ||
        token_equal(json_string_value(tok), json_string_length(tok), want)) {
        c->authed = true;
        conn_handshake_done(c);
        log_info("%s: authenticated", c->peer);
        reply_result(c, req->id, json_true());
        return;
    }
    c->auth_failures++;
    log_warn("%s: sys.auth with a wrong token (%u of %d)", c->peer,
             c->auth_failures, AUTH_MAX_FAILURES);
    rpc_fail(&err, RPC_UNAUTHORIZED, "not authenticated: wrong token");
    reply_error(c, req->id, &err);
    if (c->auth_failures >= AUTH_MAX_FAILURES) {
        log_warn("%s: closing after %d wrong tokens", c->peer,
                 AUTH_MAX_FAILURES);
        c->closing = true;
        c->flush_first = true; /* the client reads why */
    }
}

static void dispatch(struct conn *c, struct rpc_request *req)
{
    const char *m = req->method;
    struct rpc_error err;
    if (strcmp(m, "sys.auth") == 0) {
        do_auth(c, req);
        return;
    }
    /* A token read at every request, so a SIGHUP that sets one applies to
     * connections already open. */
    if (!c->authed && c->srv->conf.auth_token[0] != '\0') {
        rpc_fail(&err, RPC_UNAUTHORIZED,
                 "not authenticated: call sys.auth with the token first");
        reply_error(c, req->id, &err);
        return;
    }
    if (strcmp(m, "ext.notify_call.construct") == 0)
        do_construct(c, req);
    else if (strcmp(m, "ext.notify_call.exists") == 0)
        do_exists(c, req);
    else if (strcmp(m, "ext.notify_call.drop") == 0)
        do_drop(c, req);
    else if (strcmp(m, "sys.subscribe") == 0)
        do_subscribe(c, req);
    else if (strcmp(m, "sys.ping") == 0)
        reply_result(c, req->id, json_string("pong"));
    else {
        /* Cut on a character boundary: a split one would make the
         * whole reply unsendable (jansson refuses invalid UTF-8). */
        int n = (int)rpc_utf8_prefix(m, strlen(m), 200);
        rpc_fail(&err, RPC_METHOD_NOT_FOUND, "method not found: %.*s", n, m);
        reply_error(c, req->id, &err);
    }
}

/* ---- connections --------------------------------------------------------- */

static void on_line(void *arg, char *line, size_t len)
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
        reply_error(c, id ? id : null_id, &err);
        json_decref(null_id);
        json_decref(id);
        return;
    }
    log_debug("%s: %s", c->peer, req.method);
    if (c->srv->conf.auth_token[0] == '\0')
        conn_handshake_done(c); /* no token: a request is the handshake */
    dispatch(c, &req);
    rpc_request_free(&req);
}

static void on_oversize(void *arg)
{
    struct conn *c = arg;
    struct rpc_error err;
    rpc_fail(&err, RPC_INVALID_REQUEST, "line longer than %u bytes",
             c->srv->conf.max_line);
    log_info("%s: %s", c->peer, err.message);
    json_t *null_id = json_null();
    reply_error(c, null_id, &err);
    json_decref(null_id);
}

static void conn_close(struct conn *c)
{
    struct server *srv = c->srv;
    log_info("%s: connection closed", c->peer);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->n_conns--;
    admit_del(&srv->admit, &c->addr);
    if (c->handshake != NULL)
        event_free(c->handshake);
    bufferevent_free(c->bev);
    if (c->held != NULL)
        evbuffer_free(c->held);
    rpc_framer_free(&c->framer);
    free(c);
}

static void conn_on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char buf[16384];
    int n;
    while (!c->closing && (n = evbuffer_remove(in, buf, sizeof buf)) > 0)
        if (rpc_framer_feed(&c->framer, buf, (size_t)n, on_line, on_oversize,
                            c) < 0)
            c->closing = true;
    if (!c->closing)
        return;
    if (c->flush_first && c->held != NULL &&
        evbuffer_get_length(c->held) > 0)
        server_sync(c->srv);
    if (c->flush_first &&
        evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
        bufferevent_disable(bev, EV_READ);
        bufferevent_setcb(bev, NULL, conn_on_drained, conn_on_event, c);
        return;
    }
    conn_close(c);
}

static void conn_on_event(struct bufferevent *bev, short what, void *arg)
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
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    struct server *srv = arg;
    admit_on_accept_error(&srv->admit, l);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
                      struct sockaddr *sa, int salen, void *arg)
{
    (void)l;
    struct server *srv = arg;
    char host[NI_MAXHOST] = "?", port[NI_MAXSERV] = "?";
    getnameinfo(sa, (socklen_t)salen, host, sizeof host, port, sizeof port,
                NI_NUMERICHOST | NI_NUMERICSERV);
    admit_accepted(&srv->admit);
    struct admit_key addr = admit_key_of(sa, salen);
    unsigned per_ip = srv->conf.max_connections_per_ip;
    /* Refused with a reason the client can read; logged once a second. */
    if (srv->stopping || srv->n_conns >= srv->conf.max_connections ||
        (per_ip > 0 && admit_count(&srv->admit, &addr) >= per_ip)) {
        char peer[NI_MAXHOST + NI_MAXSERV + 2];
        snprintf(peer, sizeof peer, "%s:%s", host, port);
        admit_refuse(&srv->admit, fd, peer,
                     srv->stopping ? ADMIT_STOPPING
                     : srv->n_conns >= srv->conf.max_connections
                         ? ADMIT_FULL
                         : ADMIT_PER_IP);
        return;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (c != NULL)
        c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c == NULL || c->bev == NULL || admit_add(&srv->admit, &addr) < 0) {
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
    c->id = ++srv->next_conn_id;
    c->srv = srv;
    snprintf(c->peer, sizeof c->peer, "%s:%s", host, port);
    rpc_framer_init(&c->framer, srv->conf.max_line);
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->n_conns++;
    metrics_on_connection(&srv->metrics);
    bufferevent_setcb(c->bev, conn_on_read, NULL, conn_on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    conn_handshake_start(c);
    log_info("%s: connection accepted", c->peer);
}

/* ---- life ------------------------------------------------------------------ */

static bool output_pending(const struct server *srv)
{
    for (const struct conn *c = srv->conns; c != NULL; c = c->next)
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
            return true;
    return false;
}

static void on_flush_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *srv = arg;
    static const struct timeval tick = {0, 50000};
    server_sync(srv);
    srv->flush_waited_ms += 50;
    if (!output_pending(srv) || srv->flush_waited_ms >= SHUTDOWN_FLUSH_MS)
        event_base_loopbreak(srv->base);
    else
        event_base_once(srv->base, -1, EV_TIMEOUT, on_flush_check, srv, &tick);
}

/* A new auth_token ends every session the old one (or none) opened:
 * each connection must call sys.auth again, and a subscriber, which may
 * never send another request to learn that, is closed (its events stay
 * in the journal for sys.subscribe since, after sys.auth). A connection
 * keeps the events of the calls it constructed. */
static void server_revoke_auth(struct server *srv)
{
    unsigned revoked = 0, closed = 0;
    struct conn *next;
    for (struct conn *c = srv->conns; c != NULL; c = next) {
        next = c->next;
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

/* SIGHUP, configuration: builds it again from the same file and flags
 * and applies what can change under running calls (conf_reload says
 * what). A call keeps its gateway by name; its count moves to the new
 * table (a gateway removed stops counting it). */
static void server_reload(struct server *srv)
{
    static struct conf next; /* large; main loop only, used at once */
    char err[1024];
    if (conf_build(&next, &srv->source, err, sizeof err) < 0) {
        log_error("SIGHUP: configuration not reloaded; running on with the "
                  "previous one: %s", err);
        return;
    }
    static char old_names[CONF_MAX_GATEWAYS][64];
    size_t n_old = srv->conf.n_gateways;
    for (size_t i = 0; i < n_old; i++)
        memcpy(old_names[i], srv->conf.gateways[i].name, sizeof old_names[i]);
    static char old_token[sizeof srv->conf.auth_token];
    memcpy(old_token, srv->conf.auth_token, sizeof old_token);
    unsigned changed = conf_reload(&srv->conf, &next);
    if (srv->conf.auth_token[0] != '\0' &&
        strcmp(old_token, srv->conf.auth_token) != 0)
        server_revoke_auth(srv);
    calls_reload(&srv->calls, (const char(*)[64])old_names, n_old);
    log_set_level((enum log_level)log_level_parse(srv->conf.log_level));
    log_info("SIGHUP: configuration reloaded from %s: %u change(s) applied",
             srv->source.path[0] ? srv->source.path : "(flags only)",
             changed);
}

/* SIGHUP: logrotate has moved the log and CDR files (open new ones), and
 * the operator may have edited the configuration. */
static void on_hup_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct server *srv = arg;
    if (log_reopen() < 0)
        log_error("SIGHUP: cannot reopen log_file %s: %s",
                  srv->conf.log_file, strerror(errno));
    if (cdr_reopen(&srv->cdr) < 0)
        log_error("SIGHUP: cannot reopen cdr_file %s: %s", srv->cdr.path,
                  strerror(errno));
    log_info("SIGHUP: log and CDR files reopened");
    server_reload(srv);
}

/* The ping comes from the main loop itself, so a loop that hangs stops
 * pinging and systemd restarts the daemon. */
static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    sd_notify(0, "WATCHDOG=1");
}

/* Tells systemd (Type=notify) that ctid is ready, and starts watchdog
 * pings at half of WatchdogSec. Outside systemd both are no-ops. */
static void server_notify_ready(struct server *srv)
{
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        struct timeval tv = {.tv_sec = (time_t)(usec / 2 / 1000000),
                             .tv_usec = (suseconds_t)(usec / 2 % 1000000)};
        srv->watchdog = event_new(srv->base, -1, EV_PERSIST, on_watchdog, srv);
        if (srv->watchdog == NULL || event_add(srv->watchdog, &tv) < 0)
            log_warn("systemd watchdog requested but cannot be armed");
    }
    sd_notifyf(0, "READY=1\nSTATUS=listening on %s:%u, SIP %s:%u",
               srv->conf.listen_host, srv->conf.listen_port,
               srv->conf.sip_host, srv->conf.sip_port);
}

/* Ends every call still in progress with "shutdown" (CANCEL or BYE,
 * then its event), then waits for the output to flush and stops. */
static void server_end_calls(struct server *srv)
{
    calls_end_all(&srv->calls);
    srv->flush_waited_ms = 0;
    on_flush_check(-1, 0, srv);
}

static void on_grace_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *srv = arg;
    log_info("shutdown_grace of %us over", srv->conf.shutdown_grace);
    server_end_calls(srv);
}

/* SIGTERM/SIGINT: no new calls (503) and no new connections; calls in
 * progress may finish within shutdown_grace, then end with "shutdown".
 * A second signal ends them at once. */
static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct server *srv = arg;
    if (srv->stopping) {
        if (srv->grace_timer != NULL &&
            evtimer_pending(srv->grace_timer, NULL)) {
            log_info("signal %d again: not waiting for the grace period",
                     (int)sig);
            evtimer_del(srv->grace_timer);
            server_end_calls(srv);
        }
        return;
    }
    srv->stopping = true;
    calls_stop(&srv->calls);
    sd_notify(0, "STOPPING=1");
    if (srv->listener)
        evconnlistener_disable(srv->listener);
    admit_stop(&srv->admit);
    if (srv->calls.active == 0 || srv->conf.shutdown_grace == 0) {
        log_info("signal %d: stopping; %u call(s) in progress", (int)sig,
                 srv->calls.active);
        server_end_calls(srv);
        return;
    }
    log_info("signal %d: stopping; new calls refused, %u call(s) in "
             "progress may finish within shutdown_grace %us",
             (int)sig, srv->calls.active, srv->conf.shutdown_grace);
    struct timeval tv = {.tv_sec = srv->conf.shutdown_grace};
    srv->grace_timer = evtimer_new(srv->base, on_grace_over, srv);
    if (srv->grace_timer == NULL || evtimer_add(srv->grace_timer, &tv) < 0)
        server_end_calls(srv);
}

static int listen_on(struct server *srv, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
    struct addrinfo *ai;
    char port[8];
    snprintf(port, sizeof port, "%u", srv->conf.listen_port);
    int rc = getaddrinfo(srv->conf.listen_host, port, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "listen %s: %s", srv->conf.listen_host,
                 gai_strerror(rc));
        return -1;
    }
    srv->listener = evconnlistener_new_bind(
        srv->base, on_accept, srv,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        512, ai->ai_addr, (int)ai->ai_addrlen);
    freeaddrinfo(ai);
    if (srv->listener == NULL) {
        snprintf(err, errlen, "listen %s:%u: %s", srv->conf.listen_host,
                 srv->conf.listen_port, strerror(errno));
        return -1;
    }
    return 0;
}

/* The call table reaches SIP and media through these: the real threads. */
static const struct call_ops server_call_ops = {
    .invite = sip_invite,
    .hangup = sip_hangup,
    .media_open = media_stream_open,
    .media_play = media_stream_play,
    .media_update = media_stream_update,
    .media_set_rtcp_port = media_stream_set_rtcp_port,
    .media_close = media_stream_close,
};

/* What the call table needs of the daemon: whatever runs so far. */
static struct call_deps server_call_deps(struct server *srv)
{
    return (struct call_deps){.conf = &srv->conf,
                              .base = srv->base,
                              .sip = srv->sip,
                              .media = srv->media,
                              .prompts = srv->prompts,
                              .work = srv->work,
                              .journal = &srv->journal,
                              .ledger = &srv->ledger,
                              .cdr = &srv->cdr,
                              .metrics = &srv->metrics};
}

static unsigned server_deliver_event(void *arg, uint64_t creator_conn,
                                     const char *method, json_t *params)
{
    return server_emit_event(arg, creator_conn, method, params);
}

static void server_on_call_gone(void *arg, uint64_t creator_conn)
{
    server_call_released(arg, creator_conn);
}

int server_init(struct server *srv, const struct conf *conf,
                const struct conf_source *source, char *err, size_t errlen)
{
    memset(srv, 0, sizeof *srv);
    srv->conf = *conf;
    srv->source = *source;
    srv->journal.fd = -1; /* so server_free after an early failure is safe */
    srv->journal.mark.fd = -1;
    srv->admit.reserve_fd = -1;
    srv->ledger.fd = -1;
    struct call_deps deps = server_call_deps(srv);
    struct calls_events events = {server_deliver_event, server_on_call_gone,
                                  srv};
    calls_init(&srv->calls, &deps, &server_call_ops, &events);
    signal(SIGPIPE, SIG_IGN);
    if (calls_reserve_ids(&srv->calls, srv->conf.state_dir, err, errlen) < 0)
        return -1;
    char jdir[PATH_MAX + 16];
    snprintf(jdir, sizeof jdir, "%s/journal", srv->conf.state_dir);
    /* Segments of at most a quarter of the size limit, so size retention
     * can delete something before the total is far over. */
    uint64_t seg = srv->conf.journal_max_bytes / 4;
    if (seg > JOURNAL_SEGMENT_BYTES)
        seg = JOURNAL_SEGMENT_BYTES;
    if (journal_open(&srv->journal, jdir, srv->conf.journal_max_bytes,
                     srv->conf.journal_max_age, seg, (int64_t)time(NULL), err,
                     errlen) < 0)
        return -1;
    log_info("journal %s: events %llu..%llu retained, next seq %llu", jdir,
             (unsigned long long)journal_first_seq(&srv->journal),
             (unsigned long long)srv->journal.last_seq,
             (unsigned long long)journal_next_seq(&srv->journal));
    if (cdr_open(&srv->cdr, srv->conf.cdr_file, err, errlen) < 0)
        return -1;
    /* libevent's default monotonic clock is the coarse one, which ticks
     * every 4 ms on some kernels: RTP pacing needs the precise one. */
    struct event_config *cfg = event_config_new();
    if (cfg != NULL) {
        event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
        srv->base = event_base_new_with_config(cfg);
        event_config_free(cfg);
    }
    if (srv->base == NULL) {
        snprintf(err, errlen, "cannot create the event loop");
        return -1;
    }
    srv->prompts = prompt_cache_new(srv->conf.prompt_dir);
    if (srv->prompts == NULL) {
        snprintf(err, errlen, "prompt_dir %s: cannot open",
                 srv->conf.prompt_dir);
        return -1;
    }
    srv->media = media_new(srv->base, conf_media_ip(&srv->conf),
                           srv->conf.rtp_port_min, srv->conf.rtp_port_max,
                           srv->conf.media_threads, err, errlen);
    if (srv->media == NULL)
        return -1;
    srv->work = work_pool_new(srv->base, srv->conf.worker_threads);
    if (srv->work == NULL) {
        snprintf(err, errlen, "cannot start %u worker thread(s)",
                 srv->conf.worker_threads);
        return -1;
    }
    /* Calls a crashed run left open: their events go to the journal now
     * (no client is connected yet; sys.subscribe since replays them), and
     * the SIP thread ends their dialogs before it accepts new calls. */
    struct ledger_call *orphans = NULL;
    size_t n_orphans = 0;
    if (ledger_open(&srv->ledger, srv->conf.state_dir, &orphans, &n_orphans,
                    err, errlen) < 0)
        return -1;
    calls_release_orphans(&srv->calls, orphans, n_orphans);
    server_sync(srv); /* their events on disk before the ledger forgets */
    struct sip_dialog *dialogs = NULL;
    size_t n_dialogs = 0;
    if (n_orphans > 0 &&
        (dialogs = calloc(n_orphans, sizeof *dialogs)) != NULL)
        for (size_t i = 0; i < n_orphans; i++)
            if (orphans[i].has_dialog)
                dialogs[n_dialogs++] = orphans[i].dialog;
    ledger_calls_free(orphans, n_orphans);
    srv->sip = sip_start(&srv->conf, srv->base, calls_on_sip_event,
                         &srv->calls, dialogs, n_dialogs, err, errlen);
    free(dialogs);
    if (srv->sip == NULL)
        return -1;
    deps = server_call_deps(srv);
    calls_set_deps(&srv->calls, &deps);
    /* Every orphan is dealt with: start the ledger afresh. */
    struct ledger_rewrite rw;
    if (n_orphans > 0 && (ledger_rewrite_begin(&srv->ledger, &rw) < 0 ||
                          ledger_rewrite_commit(&srv->ledger, &rw) < 0)) {
        snprintf(err, errlen, "%s: cannot start afresh: %s", srv->ledger.path,
                 strerror(errno));
        return -1;
    }
    if (admit_init(&srv->admit, srv->base) < 0) {
        snprintf(err, errlen, "cannot keep a reserve descriptor: %s",
                 strerror(errno));
        return -1;
    }
    if (listen_on(srv, err, errlen) < 0)
        return -1;
    admit_watch(&srv->admit, srv->listener);
    evconnlistener_set_error_cb(srv->listener, on_accept_error);
    if (metrics_http_start(srv, err, errlen) < 0)
        return -1;
    srv->sig_int = evsignal_new(srv->base, SIGINT, on_stop_signal, srv);
    srv->sig_term = evsignal_new(srv->base, SIGTERM, on_stop_signal, srv);
    srv->sig_hup = evsignal_new(srv->base, SIGHUP, on_hup_signal, srv);
    srv->reap = event_new(srv->base, -1, 0, on_reap, srv);
    srv->sync_due = event_new(srv->base, -1, 0, on_sync_due, srv);
    if (srv->reap == NULL || srv->sync_due == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (srv->sig_int == NULL || srv->sig_term == NULL ||
        evsignal_add(srv->sig_int, NULL) < 0 ||
        evsignal_add(srv->sig_term, NULL) < 0 || srv->sig_hup == NULL ||
        evsignal_add(srv->sig_hup, NULL) < 0) {
        snprintf(err, errlen, "cannot install signal handlers");
        return -1;
    }
    log_info("ctid listening on %s:%u (node %s), SIP udp %s:%u, RTP %s "
             "ports %u-%u, prompts %s",
             srv->conf.listen_host, srv->conf.listen_port, srv->conf.node_id,
             srv->conf.sip_host, srv->conf.sip_port, conf_media_ip(&srv->conf),
             srv->conf.rtp_port_min, srv->conf.rtp_port_max,
             srv->conf.prompt_dir);
    return 0;
}

int server_run(struct server *srv)
{
    server_notify_ready(srv);
    if (event_base_dispatch(srv->base) < 0) {
        log_error("event loop failed");
        return 1;
    }
    log_info("stopped");
    return 0;
}

void server_free(struct server *srv)
{
    /* Constructs still loading get their 503 while their connections
     * exist; then the workers are joined. */
    calls_cancel_starts(&srv->calls, "shutting down");
    work_pool_free(srv->work);
    while (srv->conns != NULL)
        conn_close(srv->conns);
    calls_free(&srv->calls);
    /* The SIP thread goes first: it may still post events for calls. */
    sip_stop(srv->sip);
    if (srv->listener)
        evconnlistener_free(srv->listener);
    admit_free(&srv->admit);
    if (srv->sig_int)
        event_free(srv->sig_int);
    if (srv->sig_term)
        event_free(srv->sig_term);
    if (srv->sig_hup)
        event_free(srv->sig_hup);
    if (srv->reap)
        event_free(srv->reap);
    if (srv->sync_due)
        event_free(srv->sync_due);
    if (srv->watchdog)
        event_free(srv->watchdog);
    if (srv->grace_timer)
        event_free(srv->grace_timer);
    cdr_close(&srv->cdr);
    journal_close(&srv->journal);
    ledger_close(&srv->ledger);
    metrics_http_stop(&srv->metrics);
    media_free(srv->media);
    prompt_cache_free(srv->prompts);
    if (srv->base)
        event_base_free(srv->base);
    memset(srv, 0, sizeof *srv);
}
