/* conn_out: a connection's output (struct conn and struct conns are
 * conn.c's, conn.h): the group commit (every line waits in the
 * connection's held buffer until the journal, the ledger and the
 * request_key file are synced, once per loop iteration), replies, the
 * delivery of numbered, journaled events to their connections, and the
 * max_output_bytes limit (a connection over it is marked for conn.c's
 * reap event). Split from conn.c, unchanged. Main thread. */
#include "conn.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"
#include "reqkey.h"

/* ---- output ------------------------------------------------------------- */

/* A client that stops reading must not grow our memory without bound:
 * once its queued output passes max_output_bytes it is closed (its events
 * stay in the journal for sys.subscribe since). Not closed here: the
 * caller may be inside this connection's read callback or walking the
 * connection list, so it is marked and the reap event closes it. */
static void conn_check_output(struct conn *c)
{
    size_t queued = evbuffer_get_length(bufferevent_get_output(c->bev));
    if (c->overflowed || queued <= c->set->deps.conf->max_output_bytes)
        return;
    log_warn("%s: not reading: %zu bytes queued, over max_output_bytes %u; "
             "closing (events stay in the journal)",
             c->peer, queued, c->set->deps.conf->max_output_bytes);
    c->overflowed = true;
    c->closing = true;
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    event_active(c->set->reap, EV_TIMEOUT, 0);
}

/* ---- group commit ---------------------------------------------------------
 *
 * A construct reply may go out only once the call's ledger record (and
 * its request_key's, reqkey.h) is on disk, an event only once its
 * journal record is. Rather than an
 * fdatasync per construct and per event, both files are written at once
 * and synced once per loop iteration (on_sync_due runs after every other
 * callback of the iteration); meanwhile every line for a connection waits
 * in its held buffer, so replies, events and their order are exactly as
 * before, only later by the time of one sync. */

bool conns_unsynced(const struct conns *set)
{
    return set->deps.journal->unsynced_records > 0 || set->deps.ledger->unsynced ||
           (set->deps.reqkeys != NULL && set->deps.reqkeys->unsynced);
}

/* Syncs the journal and the ledger, then releases every held line. */
void conns_sync(struct conns *set)
{
    if (set->deps.journal->unsynced_records > 0 && journal_sync(set->deps.journal) < 0)
        log_error("journal: fdatasync: %s; events sent anyway",
                  strerror(errno));
    if (set->deps.ledger->unsynced && ledger_sync(set->deps.ledger) < 0)
        log_error("%s: fdatasync: %s; calls go on, a crash now may lose "
                  "their recovery", set->deps.ledger->path, strerror(errno));
    if (set->deps.reqkeys != NULL && set->deps.reqkeys->unsynced &&
        reqkey_sync(set->deps.reqkeys) < 0)
        log_error("%s: fdatasync: %s; a crash now may lose request_keys "
                  "already answered", set->deps.reqkeys->path,
                  strerror(errno));
    for (struct conn *c = set->list; c != NULL; c = c->next)
        if (c->held != NULL && evbuffer_get_length(c->held) > 0) {
            if (bufferevent_write_buffer(c->bev, c->held) < 0)
                c->closing = true;
            else
                conn_check_output(c);
        }
}

/* Queues one line for c: at once when nothing is waiting for a sync, else
 * behind the held lines. Returns -1 if it cannot be queued. */
int conn_send(struct conn *c, const char *line, size_t len)
{
    struct conns *set = c->set;
    if (!conns_unsynced(set) &&
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
    event_active(set->sync_due, EV_TIMEOUT, 0);
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

void conn_reply_result(struct conn *c, json_t *id, json_t *result)
{
    size_t len;
    if (id == NULL) { /* notification: run, never answer */
        json_decref(result);
        return;
    }
    char *line = rpc_result_line(id, result, &len);
    conn_write(c, line, len);
}

void conn_reply_error(struct conn *c, json_t *id, const struct rpc_error *e)
{
    size_t len;
    if (id == NULL)
        return;
    char *line = rpc_error_line(id, e, c->set->deps.conf->node_id, &len);
    conn_write(c, line, len);
}

static unsigned conns_deliver(struct conns *set, uint64_t creator_conn,
                              const char *method, json_t *params,
                              bool progress);

unsigned conns_deliver_event(struct conns *set, uint64_t creator_conn,
                             const char *method, json_t *params)
{
    return conns_deliver(set, creator_conn, method, params, false);
}

unsigned conns_deliver_progress(struct conns *set, uint64_t creator_conn,
                                const char *method, json_t *params)
{
    return conns_deliver(set, creator_conn, method, params, true);
}

static unsigned conns_deliver(struct conns *set, uint64_t creator_conn,
                              const char *method, json_t *params,
                              bool progress)
{
    size_t len;
    unsigned sent = 0;
    /* The seq is reserved on disk (the journal's high-water mark) before
     * it is used, so it names this event only, whatever becomes of the
     * record below. 0: the mark cannot be stored; the event goes out
     * without a seq and unjournaled rather than risk naming two. */
    uint64_t seq = journal_take_seq(set->deps.journal);
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
    else if (journal_write(set->deps.journal, (int64_t)time(NULL), seq, line,
                           len) < 0)
        log_error("journal: %s seq %llu not written (%s): sent live only; "
                  "the seq stays reserved", method, (unsigned long long)seq,
                  strerror(errno));
    else {
        set->deps.metrics->events_journaled++;
        /* Synced this loop turn even when no connection receives it (its
         * creator gone, nobody subscribed): since-replay after a machine
         * crash must still find it. Before conns_listen (crash recovery's
         * releases) there is no loop turn yet: recovery syncs itself. */
        if (set->sync_due != NULL)
            event_active(set->sync_due, EV_TIMEOUT, 0);
    }
    /* An internal connection (the request bus) reads replies only: its
     * calls' events reach Redis from the journal (bus.c). */
    for (struct conn *c = set->list; c != NULL; c = c->next)
        if (!c->internal && (c->id == creator_conn ||
             (c->subscribed && (!progress || c->sub_progress))) &&
            !c->replaying && !c->overflowed) {
            if (conn_send(c, line, len) < 0) {
                log_warn("%s: cannot queue %s", c->peer, method);
            } else {
                sent++;
                metrics_on_event_delivered(set->deps.metrics);
            }
        }
    free(line);
    return sent;
}
