/* busreq_held: the entries the request bus holds (struct held, see
 * busreq_int.h), from the read to the REPLY script: their checks, the
 * MARK script of a keyed construct or the OWN script of a keyless one
 * (still this node's?), the hand-over to the daemon over the
 * bufferevent pair, the daemon's reply and the answer in Redis. Answers
 * wait in arrival order while Redis is away. Main thread. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "busreq_int.h"
#include "conf.h"
#include "log.h"
#include "metrics.h"
#include "rpc.h"

static void busreq_hand(struct held *h);

/* ---- held entries ------------------------------------------------------- */

static const char *busreq_stream(const struct held *h)
{
    return h->e.own ? h->b->key_own : h->b->key_shared;
}

/* Is the entry held, or answered lately (busreq_int.h, BUSREQ_DONE_RING)? */
static bool busreq_known(const struct busreq *b, const char *entry, bool own)
{
    for (const struct held *h = b->list; h != NULL; h = h->next)
        if (h->e.own == own && strcmp(h->e.entry, entry) == 0)
            return true;
    for (unsigned i = 0; i < BUSREQ_DONE_RING; i++)
        if (b->done[i][0] == (own ? 'o' : 's') &&
            strcmp(b->done[i] + 2, entry) == 0)
            return true;
    return false;
}

static void busreq_forget(struct held *h)
{
    struct busreq *b = h->b;
    if (h->prev)
        h->prev->next = h->next;
    else
        b->list = h->next;
    if (h->next)
        h->next->prev = h->prev;
    else
        b->tail = h->prev;
    b->held--;
    snprintf(b->done[b->done_next], sizeof b->done[0], "%c:%s",
             h->e.own ? 'o' : 's', h->e.entry);
    b->done_next = (b->done_next + 1) % BUSREQ_DONE_RING;
    busreq_entry_free(&h->e);
    free(h->reply);
    free(h->result);
    free(h);
    event_active(b->kick, EV_TIMEOUT, 0); /* room under the cap */
}

/* Bus constructs not yet answered by the daemon (they may not hold a
 * call slot yet). */
unsigned busreq_constructs(const struct busreq *b)
{
    unsigned n = 0;
    for (const struct held *h = b->list; h != NULL; h = h->next)
        n += h->e.method == BUSREQ_CONSTRUCT && h->state != HELD_ANSWER;
    return n;
}

/* ---- answers: the REPLY script --------------------------------------------- */

/* h's answer is decided: queued for the REPLY script (reply NULL: ack
 * only; reply and result stolen). */
static void busreq_answer(struct held *h, char *reply, const char *keymode,
                          char *result)
{
    h->state = HELD_ANSWER;
    h->sent = false;
    h->reply = reply;
    h->keymode = keymode;
    h->result = result;
    if (reply == NULL && h->e.reply_to != NULL && !h->e.refused)
        log_error("bus entry %s: out of memory building its reply; acked "
                  "without one", h->e.entry);
    busreq_flush(h->b);
}

static void busreq_answer_error(struct held *h, int code, const char *msg,
                                json_t *extra)
{
    log_info("bus entry %s: %d %s", h->e.entry, code, msg);
    busreq_answer(h, busreq_error_text(h->e.id ? h->e.id : "", code, msg,
                                       h->b->conf->node_id, extra),
                  h->e.key[0] ? "abandon" : "", NULL);
}

/* The answer to an entry of a node that stopped before answering it. */
static void busreq_answer_taken(struct held *h, const char *node)
{
    char msg[256];
    snprintf(msg, sizeof msg, "node %s stopped before answering; not "
             "retried: the call may have been placed", node);
    busreq_answer_error(h, -32000, msg, json_pack("{s:s}", "node", node));
}

/* An error Redis gives while it cannot work now (loading its data after a
 * restart, a long script, out of memory, a replica): the command is sent
 * again on a new connection, after the backoff. */
static bool busreq_transient(struct rlink *l, redisReply *r, const char *what)
{
    static const char *const later[] = {"LOADING", "BUSY", "TRYAGAIN", "OOM",
                                        "MASTERDOWN", "READONLY"};
    for (size_t i = 0; i < sizeof later / sizeof later[0]; i++)
        if (strncmp(r->str, later[i], strlen(later[i])) == 0) {
            rlink_fail(l, what, r->str);
            return true;
        }
    return false;
}

static void busreq_on_replied(struct rlink *l, redisReply *r, void *arg)
{
    struct held *h = arg;
    if (r == NULL || (r->type == REDIS_REPLY_ERROR &&
                      busreq_transient(l, r, "reply script"))) {
        h->sent = false; /* sent again once the link is up */
        return;
    }
    if (r->type == REDIS_REPLY_ERROR)
        log_warn("bus entry %s: reply to %s failed: %s", h->e.entry,
                 h->e.reply_to ? h->e.reply_to : "(none)", r->str);
    else if (r->type == REDIS_REPLY_INTEGER && r->integer == 0)
        log_info("bus entry %s: already answered or no longer ours; no "
                 "reply added", h->e.entry);
    busreq_forget(h);
}

/* Sends every decided answer not yet sent, in order. */
void busreq_flush(struct busreq *b)
{
    for (struct held *h = b->list; h != NULL; h = h->next) {
        if (h->state != HELD_ANSWER || h->sent)
            continue;
        if (!rlink_up(b->main))
            return;
        bool reply = h->reply != NULL && h->e.reply_to != NULL;
        char key[300];
        snprintf(key, sizeof key, "%s:key:%s", b->conf->redis_prefix,
                 h->e.key);
        const char *argv[] = {
            "EVAL", BUSREQ_REPLY_LUA, "3", busreq_stream(h),
            reply ? h->e.reply_to : busreq_stream(h), key,
            b->conf->node_id, h->e.entry, reply ? "1" : "0", b->maxlen,
            h->e.id ? h->e.id : "", reply ? h->reply : "",
            h->e.key[0] ? h->keymode : "", h->result ? h->result : "",
            b->ttl};
        if (rlink_cmd(b->main, busreq_on_replied, h,
                      (int)(sizeof argv / sizeof argv[0]), argv, NULL) < 0)
            return;
        h->sent = true;
    }
}

/* ---- the daemon side: the bufferevent pair --------------------------- */

static void busreq_hand(struct held *h)
{
    struct busreq *b = h->b;
    size_t len;
    unsigned long tag = ++b->next_tag;
    char *line = busreq_request_line(&h->e, tag, b->conf->max_line, &len);
    if (line == NULL) {
        busreq_answer_error(h, RPC_INVALID_REQUEST, "entry too large", NULL);
        return;
    }
    h->state = HELD_DAEMON;
    h->tag = tag;
    if (bufferevent_write(b->bev, line, len) < 0)
        busreq_answer_error(h, RPC_INTERNAL_ERROR, "out of memory", NULL);
    free(line);
}

/* A line from the daemon: a reply to one of ours (its id a tag). The
 * internal connection gets no events (conns_deliver), so anything else is
 * ignored. Parsed once, here. */
static void busreq_on_daemon_line(struct busreq *b, const char *line,
                                  size_t len)
{
    json_t *obj = json_loadb(line, len, 0, NULL);
    json_t *id = json_object_get(obj, "id");
    unsigned long tag = json_is_integer(id) ? (unsigned long)
                        json_integer_value(id) : 0;
    struct held *h = b->list;
    while (tag != 0 && h != NULL && (h->state != HELD_DAEMON || h->tag != tag))
        h = h->next;
    if (tag == 0 || h == NULL) {
        json_decref(obj);
        return;
    }
    bool ok;
    char *result = NULL;
    char *reply = busreq_reply_text(obj, h->e.id ? h->e.id : "", &ok,
                                    &result);
    json_decref(obj);
    if (reply == NULL)
        ok = false;
    const char *mode = h->e.key[0] == '\0' ? "" : ok ? "placed" : "abandon";
    if (h->e.method != BUSREQ_CONSTRUCT)
        mode = "";
    busreq_answer(h, reply, mode, result);
}

void busreq_on_bev_read(struct bufferevent *bev, void *arg)
{
    struct busreq *b = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len;
    char *line;
    while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF)) != NULL) {
        busreq_on_daemon_line(b, line, len);
        free(line);
    }
}

void busreq_on_bev_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        log_error("request bus: the internal connection to the daemon "
                  "closed; bus requests are no longer served");
}

/* ---- taking an entry ------------------------------------------------------ */

static void busreq_on_marked(struct rlink *l, redisReply *r, void *arg);

void busreq_mark(struct held *h)
{
    struct busreq *b = h->b;
    if (!rlink_up(b->main))
        return; /* sent once the link is up */
    char key[300];
    snprintf(key, sizeof key, "%s:key:%s", b->conf->redis_prefix, h->e.key);
    const char *mark[] = {"EVAL", BUSREQ_MARK_LUA, "2", key,
                          busreq_stream(h), b->conf->node_id, h->e.entry,
                          b->ttl};
    const char *own[] = {"EVAL", BUSREQ_OWN_LUA, "1", busreq_stream(h),
                         b->conf->node_id, h->e.entry};
    int r = h->e.key[0] ? rlink_cmd(b->main, busreq_on_marked, h, 8, mark,
                                    NULL)
                        : rlink_cmd(b->main, busreq_on_marked, h, 6, own,
                                    NULL);
    if (r == 0)
        h->sent = true;
}

/* MARK's answer: go on, the result of the first placing, or an error. */
static void busreq_on_marked(struct rlink *l, redisReply *r, void *arg)
{
    struct held *h = arg;
    h->sent = false;
    if (r == NULL || (r->type == REDIS_REPLY_ERROR &&
                      busreq_transient(l, r, "mark script")))
        return; /* MARK again once the link is up */
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        busreq_answer_error(h, RPC_INTERNAL_ERROR, r->type ==
                            REDIS_REPLY_ERROR ? r->str : "redis: bad reply",
                            NULL);
        return;
    }
    const char *what = r->element[0]->str, *v = r->element[1]->str;
    if (strcmp(what, "go") == 0) {
        busreq_hand(h);
    } else if (strcmp(what, "lost") == 0) {
        /* another node took it over while this one stalled: it answered
         * (acked) or answers it; placing it now would make its answer
         * untrue */
        log_info("bus entry %s: no longer this node's (%s%s): not placed, "
                 "no reply", h->e.entry, v[0] ? "pending for node " :
                 "answered by another node", v);
        busreq_forget(h);
    } else if (strncmp(v, "placed ", 7) == 0) {
        log_info("bus entry %s: request_key placed before: its result",
                 h->e.entry);
        busreq_answer(h, busreq_result_text(h->e.id ? h->e.id : "", v + 7),
                      "", NULL);
    } else {
        char node[64] = "?", entry[48] = "?", msg[256];
        (void)sscanf(v, "intent %63s %47s", node, entry);
        if (h->from[0] && strcmp(node, h->from) == 0) {
            busreq_answer_taken(h, node);
            return;
        }
        snprintf(msg, sizeof msg, "request_key is being placed by node %s "
                 "(entry %s)", node, entry);
        busreq_answer_error(h, -32000, msg, NULL);
    }
}

/* Checks the entry's fields (every one of them: the size limit is on the
 * whole entry) into h->e. 0, or -1 when out of memory. */
static int busreq_parse_fields(struct busreq *b, struct held *h,
                               const char *entry, bool own,
                               redisReply *fields)
{
    size_t cap = fields != NULL && fields->elements > 0 ? fields->elements
                                                         : 1;
    const char **f = malloc(cap * sizeof *f);
    size_t *lens = malloc(cap * sizeof *lens), n = 0;
    if (f == NULL || lens == NULL) {
        free(f);
        free(lens);
        return -1;
    }
    for (size_t i = 0; fields != NULL && i < fields->elements; i++)
        if (fields->element[i]->type == REDIS_REPLY_STRING) {
            f[n] = fields->element[i]->str;
            lens[n++] = fields->element[i]->len;
        }
    busreq_entry_parse(&h->e, entry, own, f, lens, n & ~(size_t)1,
                       b->conf->redis_prefix, b->conf->node_id,
                       b->conf->max_line);
    free(f);
    free(lens);
    return 0;
}

/* A valid entry's first step (busreq_first_step). */
static void busreq_step(struct held *h, enum busreq_step step)
{
    switch (step) {
    case BUSREQ_STEP_TAKEN:
        busreq_answer_taken(h, h->from);
        break;
    case BUSREQ_STEP_MARK:
    case BUSREQ_STEP_OWN:
        h->state = HELD_MARK;
        busreq_mark(h);
        break;
    case BUSREQ_STEP_HAND:
        busreq_hand(h);
        break;
    }
}

/* A read (or claimed) entry: checked, then marked, handed or answered.
 * from: the dead node it was taken from, "" when read. */
void busreq_take(struct busreq *b, const char *entry, bool own,
                 redisReply *fields, const char *from)
{
    if (busreq_known(b, entry, own))
        return; /* held or answered already (read again while recovering) */
    struct held *h = calloc(1, sizeof *h);
    if (h == NULL || busreq_parse_fields(b, h, entry, own, fields) < 0) {
        log_error("bus entry %s: out of memory; left pending", entry);
        free(h);
        return;
    }
    h->b = b;
    snprintf(h->from, sizeof h->from, "%s", from);
    h->prev = b->tail;
    if (b->tail)
        b->tail->next = h;
    else
        b->list = h;
    b->tail = h;
    b->held++;
    bool bad = h->e.refused || h->e.err_code != 0 || fields == NULL;
    metrics_on_bus_request(b->metrics, bad);
    if (fields == NULL) { /* deleted from the stream while pending */
        log_warn("bus entry %s: gone from the stream; acked", entry);
        busreq_answer(h, NULL, "", NULL);
    } else if (h->e.refused) {
        log_warn("bus entry %s: reply_to is not a stream name ctid may "
                 "write: refused (acked, no reply)", entry);
        busreq_answer(h, NULL, "", NULL);
    } else if (h->e.err_code != 0) {
        busreq_answer_error(h, h->e.err_code, h->e.err_msg, NULL);
    } else {
        busreq_step(h, busreq_first_step(&h->e, from[0] != '\0'));
    }
}

unsigned busreq_held_free(struct busreq *b)
{
    unsigned n = 0;
    while (b->list != NULL) {
        n++;
        struct held *h = b->list;
        b->list = h->next;
        busreq_entry_free(&h->e);
        free(h->reply);
        free(h->result);
        free(h);
    }
    b->tail = NULL;
    b->held = 0;
    return n;
}
