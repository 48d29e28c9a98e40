/* replay: sys.subscribe, and the replay of the journal to a subscriber
 * that asks for events since a seq. The replay goes in chunks, paced by
 * the connection's write buffer, and only then marks it subscribed, so
 * live events never overtake it. Owns nothing but the connection's
 * replay cursor while it runs (struct conn, conn.h). Main thread. */
#include "replay.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdbool.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "metrics.h"

#define REPLAY_CHUNK (64u << 10) /* journal bytes read per replay step */
#define REPLAY_HIGH (256u << 10) /* replay pauses while this much is queued */

static int replay_step(struct conn *c);

/* Is this journal line an ext.notify_call.on_progress? Lines are written
 * by rpc_event_line: the method comes first after "jsonrpc". */
static bool replay_is_progress(const char *data, size_t len)
{
    static const char tag[] = "\"method\":\"ext.notify_call.on_progress\"";
    size_t n = len < 96 ? len : 96;
    return memmem(data, n, tag, sizeof tag - 1) != NULL;
}

static void replay_one_record(void *arg, uint64_t seq, int64_t t,
                          const char *data, size_t len)
{
    (void)seq;
    (void)t;
    struct conn *c = arg;
    /* on_progress only to those that asked, as live (conns_deliver) */
    if (!c->sub_progress && replay_is_progress(data, len))
        return;
    if (bufferevent_write(c->bev, data, len) < 0)
        c->replay_failed = true;
    else
        metrics_on_event_delivered(c->set->deps.metrics);
}

/* The write buffer fell below the low watermark: send the next chunk. */
static void replay_on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (replay_step(c) < 0)
        conn_close(c);
}

/* Queues journal records after the cursor until the connection's write
 * buffer holds REPLAY_HIGH bytes, then waits for it to drain; at the end
 * of the journal the connection becomes a live subscriber. All on the main
 * loop, so no event can be appended between the last record read and the
 * switch: nothing is skipped or sent twice. Returns -1 when the
 * connection must be closed. */
static int replay_step(struct conn *c)
{
    struct conns *set = c->set;
    /* The journal may hold records not yet synced, and the connection
     * lines (its subscribe reply) that must go first. */
    if (conns_unsynced(set) ||
        (c->held != NULL && evbuffer_get_length(c->held) > 0))
        conns_sync(set);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    /* Paced below max_output_bytes, so a replay never trips that limit
     * and the live events after it still fit. */
    size_t high = REPLAY_HIGH, chunk = REPLAY_CHUNK;
    if (high > set->deps.conf->max_output_bytes / 4)
        high = set->deps.conf->max_output_bytes / 4;
    if (chunk > high)
        chunk = high;
    while (evbuffer_get_length(out) < high) {
        int n = journal_read(set->deps.journal, &c->replay, chunk,
                             replay_one_record, c);
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
    bufferevent_setcb(c->bev, conn_on_read, replay_on_write,
                      conn_on_event, c);
    return 0;
}

/* sys.subscribe, sys.subscribe {"since": N} or [N]: N an integer >= 0;
 * by name only, "progress": true adds the on_progress events (issue 14). */
void replay_subscribe(struct conn *c, struct rpc_request *req)
{
    struct rpc_error err;
    json_t *since = req->params ? rpc_param(req->params, "since", 0) : NULL;
    if (since != NULL && !json_is_null(since) &&
        (!json_is_integer(since) || json_integer_value(since) < 0)) {
        rpc_fail(&err, RPC_INVALID_PARAMS,
                 "invalid params: since: expected an integer >= 0");
        conn_reply_error(c, req->id, &err);
        return;
    }
    json_t *progress = json_is_object(req->params)
                           ? json_object_get(req->params, "progress")
                           : NULL;
    if (progress != NULL && !json_is_boolean(progress)) {
        rpc_fail(&err, RPC_INVALID_PARAMS,
                 "invalid params: progress: expected a boolean");
        conn_reply_error(c, req->id, &err);
        return;
    }
    if (json_is_true(progress))
        c->sub_progress = true;
    if (c->subscribed || c->replaying) { /* already getting everything */
        conn_reply_result(c, req->id, json_true());
        return;
    }
    conn_reply_result(c, req->id, json_true());
    if (since == NULL || json_is_null(since)) {
        c->subscribed = true;
        return;
    }
    uint64_t n = (uint64_t)json_integer_value(since);
    uint64_t first = journal_first_seq(c->set->deps.journal);
    log_info("%s: subscribe since %llu (journal holds %llu..%llu)", c->peer,
             (unsigned long long)n, (unsigned long long)first,
             (unsigned long long)c->set->deps.journal->last_seq);
    journal_cursor_init(&c->replay, n);
    c->replaying = true;
    if (replay_step(c) < 0)
        c->closing = true;
}
