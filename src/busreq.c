/* busreq: the request bus consumer (include/busreq.h has the contract,
 * docs/protocol.md "The request bus (Redis)" the wire, and
 * docs/reliability.md why no call is placed twice). Owns two Redis
 * links: "read" carries only the blocking XREADGROUP, "main" everything
 * else (groups, MARK and REPLY scripts, heartbeat, XPENDING/XCLAIM). Owns
 * every entry it holds (struct held) from the read until its REPLY script
 * ran, and its end of the bufferevent pair to the daemon. Main thread. */
#include "busreq.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "log.h"
#include "metrics.h"
#include "rlink.h"
#include "rpc.h"

#define BUSREQ_HEARTBEAT_MS 1000 /* SET PREFIX:node:NODE ... PX 5000 */
#define BUSREQ_HEARTBEAT_TTL "5000"
#define BUSREQ_CLAIM_MS 2000     /* look for dead nodes' entries */
#define BUSREQ_BLOCK "1000"      /* XREADGROUP BLOCK with room */
#define BUSREQ_BLOCK_FULL "100"  /* ... with none (own stream only) */
#define BUSREQ_GROUP "ctid"

enum held_state { HELD_MARK, HELD_DAEMON, HELD_ANSWER };

/* An entry this node holds, from its read until its answer is in Redis. */
struct held {
    struct busreq *b;
    struct busreq_entry e;
    char from[64];          /* taken over from this dead node, "" none */
    enum held_state state;
    bool sent;              /* MARK or REPLY queued on the main link */
    unsigned long tag;      /* the request line's id (HELD_DAEMON) */
    char *reply;            /* the reply text; NULL: none (HELD_ANSWER) */
    const char *keymode;    /* REPLY's "", "placed" or "abandon" */
    char *result;           /* "placed": the result text */
    struct held *prev, *next;
};

struct busreq {
    struct event_base *base;
    const struct conf *conf;
    struct bufferevent *bev;
    busreq_room_fn room;
    void *room_arg;
    struct metrics *metrics;
    struct rlink *rd, *main;
    struct event *kick;         /* read again (a zero timer) */
    struct event *heartbeat;    /* persistent, BUSREQ_HEARTBEAT_MS */
    struct event *claim;        /* persistent, BUSREQ_CLAIM_MS */
    struct held *list, *tail;   /* every held entry, in arrival order */
    unsigned held;              /* entries in the list */
    unsigned long next_tag;
    int groups;                 /* XGROUP CREATE answers this connection */
    bool reading;               /* an XREADGROUP is out */
    bool recovering;            /* reading own pending entries (id > last) */
    bool claiming;              /* a takeover round is out */
    bool stopping;
    char last[2][48];           /* recovery: last id seen, shared / own */
    char key_shared[96], key_own[160], key_node[160];
    char claim_from[64];        /* the consumer of this takeover round */
    char claim_ms[24], maxlen[24], ttl[24];
};

static void busreq_flush(struct busreq *b);
static void busreq_hand(struct held *h);

/* ---- held entries ------------------------------------------------------- */

static const char *busreq_stream(const struct held *h)
{
    return h->e.own ? h->b->key_own : h->b->key_shared;
}

static struct held *busreq_find(struct busreq *b, const char *entry,
                                bool own)
{
    for (struct held *h = b->list; h != NULL; h = h->next)
        if (h->e.own == own && strcmp(h->e.entry, entry) == 0)
            return h;
    return NULL;
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
    busreq_entry_free(&h->e);
    free(h->reply);
    free(h->result);
    free(h);
    event_active(b->kick, EV_TIMEOUT, 0); /* room under the cap */
}

/* Bus constructs not yet answered by the daemon (they may not hold a
 * call slot yet). */
static unsigned busreq_constructs(const struct busreq *b)
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

static void busreq_on_replied(struct rlink *l, redisReply *r, void *arg)
{
    (void)l;
    struct held *h = arg;
    if (r == NULL) {
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
static void busreq_flush(struct busreq *b)
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

/* A line from the daemon: a reply to one of ours (its id a tag), or an
 * event (no id: it is on PREFIX:events already). */
static void busreq_on_daemon_line(struct busreq *b, const char *line,
                                  size_t len)
{
    json_t *obj = json_loadb(line, len, 0, NULL);
    json_t *id = json_object_get(obj, "id");
    unsigned long tag = json_is_integer(id) ? (unsigned long)
                        json_integer_value(id) : 0;
    json_decref(obj);
    if (tag == 0)
        return; /* an event: it is on PREFIX:events already */
    struct held *h = b->list;
    while (h != NULL &&
           (h->state != HELD_DAEMON || h->tag != tag))
        h = h->next;
    if (h == NULL)
        return;
    bool ok;
    char *result = NULL;
    char *reply = busreq_reply_text(line, len, h->e.id ? h->e.id : "", &ok,
                                    &result);
    if (reply == NULL)
        ok = false;
    const char *mode = h->e.key[0] == '\0' ? "" : ok ? "placed" : "abandon";
    if (h->e.method != BUSREQ_CONSTRUCT)
        mode = "";
    busreq_answer(h, reply, mode, result);
}

static void busreq_on_bev_read(struct bufferevent *bev, void *arg)
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

static void busreq_on_bev_event(struct bufferevent *bev, short what,
                                void *arg)
{
    (void)bev;
    (void)arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        log_error("request bus: the internal connection to the daemon "
                  "closed; bus requests are no longer served");
}

/* ---- taking an entry ------------------------------------------------------ */

static void busreq_on_marked(struct rlink *l, redisReply *r, void *arg);

static void busreq_mark(struct held *h)
{
    struct busreq *b = h->b;
    if (!rlink_up(b->main))
        return; /* sent once the link is up */
    char key[300];
    snprintf(key, sizeof key, "%s:key:%s", b->conf->redis_prefix, h->e.key);
    const char *argv[] = {"EVAL", BUSREQ_MARK_LUA, "2", key,
                          busreq_stream(h), b->conf->node_id, h->e.entry,
                          b->ttl};
    if (rlink_cmd(b->main, busreq_on_marked, h, 8, argv, NULL) == 0)
        h->sent = true;
}

/* MARK's answer: go on, the result of the first placing, or an error. */
static void busreq_on_marked(struct rlink *l, redisReply *r, void *arg)
{
    (void)l;
    struct held *h = arg;
    h->sent = false;
    if (r == NULL)
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
        log_warn("bus entry %s: taken over by another node; left to it",
                 h->e.entry);
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
            snprintf(msg, sizeof msg, "node %s stopped before answering; "
                     "not retried: the call may have been placed", node);
            busreq_answer_error(h, -32000, msg,
                                json_pack("{s:s}", "node", node));
            return;
        }
        snprintf(msg, sizeof msg, "request_key is being placed by node %s "
                 "(entry %s)", node, entry);
        busreq_answer_error(h, -32000, msg, NULL);
    }
}

/* A read (or claimed) entry: checked, then marked, handed or answered.
 * from: the dead node it was taken from, "" when read. */
static void busreq_take(struct busreq *b, const char *entry, bool own,
                        redisReply *fields, const char *from)
{
    if (busreq_find(b, entry, own) != NULL)
        return; /* held already (read again while recovering) */
    struct held *h = calloc(1, sizeof *h);
    const char *f[64];
    size_t lens[64], n = 0;
    if (h == NULL) {
        log_error("bus entry %s: out of memory; left pending", entry);
        return;
    }
    for (size_t i = 0; fields != NULL && i < fields->elements && n < 64; i++)
        if (fields->element[i]->type == REDIS_REPLY_STRING) {
            f[n] = fields->element[i]->str;
            lens[n++] = fields->element[i]->len;
        }
    h->b = b;
    snprintf(h->from, sizeof h->from, "%s", from);
    busreq_entry_parse(&h->e, entry, own, f, lens, n & ~(size_t)1,
                       b->conf->redis_prefix, b->conf->node_id,
                       b->conf->max_line);
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
    } else if (h->e.method == BUSREQ_CONSTRUCT && from[0] &&
               h->e.key[0] == '\0') {
        char msg[256];
        snprintf(msg, sizeof msg, "node %s stopped before answering; not "
                 "retried: the call may have been placed", from);
        busreq_answer_error(h, -32000, msg, json_pack("{s:s}", "node", from));
    } else if (h->e.method == BUSREQ_CONSTRUCT && h->e.key[0]) {
        h->state = HELD_MARK;
        busreq_mark(h);
    } else {
        busreq_hand(h);
    }
}

/* ---- reading ------------------------------------------------------------- */

static void busreq_read(struct busreq *b);

/* An XREADGROUP or XCLAIM answer's entries: [[id, [field, value...]]...]. */
static void busreq_take_all(struct busreq *b, redisReply *list, bool own,
                            const char *from, char *last, size_t lastlen)
{
    for (size_t i = 0; list != NULL && list->type == REDIS_REPLY_ARRAY &&
                       i < list->elements; i++) {
        redisReply *e = list->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        redisReply *fields = e->element[1];
        if (fields->type != REDIS_REPLY_ARRAY)
            fields = NULL;
        if (from[0])
            metrics_on_bus_takeover(b->metrics);
        busreq_take(b, e->element[0]->str, own, fields, from);
        if (last != NULL)
            snprintf(last, lastlen, "%s", e->element[0]->str);
    }
}

static void busreq_on_read(struct rlink *l, redisReply *r, void *arg)
{
    struct busreq *b = arg;
    b->reading = false;
    if (r == NULL)
        return; /* read again once the link is up */
    if (r->type == REDIS_REPLY_ERROR) {
        if (strncmp(r->str, "NOGROUP", 7) == 0) {
            log_warn("redis %s: the request streams' group is gone (Redis "
                     "lost its data?): created again", rlink_where(l));
            b->groups = 0;
            b->recovering = true;
        } else {
            rlink_fail(l, "XREADGROUP", r->str);
            return;
        }
    }
    unsigned got = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements;
         i++) {
        redisReply *s = r->element[i];
        if (s->type != REDIS_REPLY_ARRAY || s->elements != 2)
            continue;
        bool own = strcmp(s->element[0]->str, b->key_own) == 0;
        got += (unsigned)s->element[1]->elements;
        busreq_take_all(b, s->element[1], own, "", b->last[own],
                        sizeof b->last[own]);
    }
    if (b->recovering && got == 0 && r->type != REDIS_REPLY_ERROR) {
        b->recovering = false;
        log_info("request bus: own pending entries handled; reading new "
                 "ones");
    }
    event_active(b->kick, EV_TIMEOUT, 0);
}

/* The next XREADGROUP: own pending entries first, then new ones. */
static void busreq_read(struct busreq *b)
{
    if (b->reading || b->stopping || b->groups < 2 || !rlink_up(b->rd) ||
        b->held >= BUSREQ_MAX_INFLIGHT)
        return;
    char count[16];
    const char *argv[14] = {"XREADGROUP", "GROUP", BUSREQ_GROUP,
                            b->conf->node_id, "COUNT", count};
    int argc = 6;
    unsigned room = busreq_room(b->room(b->room_arg), busreq_constructs(b),
                                b->held);
    unsigned left = BUSREQ_MAX_INFLIGHT - b->held;
    if (b->recovering || room > 0) {
        snprintf(count, sizeof count, "%u", b->recovering
                 ? (left < BUSREQ_MAX_READ ? left : BUSREQ_MAX_READ) : room);
        if (!b->recovering) {
            argv[argc++] = "BLOCK";
            argv[argc++] = BUSREQ_BLOCK;
        }
        argv[argc++] = "STREAMS";
        argv[argc++] = b->key_shared;
        argv[argc++] = b->key_own;
        argv[argc++] = b->recovering ? b->last[0] : ">";
        argv[argc++] = b->recovering ? b->last[1] : ">";
    } else {
        snprintf(count, sizeof count, "%u",
                 left < BUSREQ_MAX_READ ? left : BUSREQ_MAX_READ);
        argv[argc++] = "BLOCK";
        argv[argc++] = BUSREQ_BLOCK_FULL;
        argv[argc++] = "STREAMS";
        argv[argc++] = b->key_own;
        argv[argc++] = ">";
    }
    if (rlink_cmd(b->rd, busreq_on_read, b, argc, argv, NULL) == 0)
        b->reading = true;
}

static void busreq_on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    busreq_read(arg);
}

static void busreq_on_group(struct rlink *l, redisReply *r, void *arg)
{
    struct busreq *b = arg;
    if (r == NULL)
        return;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9)) {
        rlink_fail(l, "XGROUP CREATE", r->str);
        return;
    }
    if (++b->groups == 2)
        event_active(b->kick, EV_TIMEOUT, 0);
}

/* ---- heartbeat and takeover --------------------------------------------- */

static void busreq_on_ignored(struct rlink *l, redisReply *r, void *arg)
{
    (void)arg;
    if (r != NULL && r->type == REDIS_REPLY_ERROR)
        rlink_fail(l, "heartbeat", r->str);
}

static void busreq_on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct busreq *b = arg;
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    const char *argv[] = {"SET", b->key_node, now, "PX",
                          BUSREQ_HEARTBEAT_TTL};
    (void)rlink_cmd(b->main, busreq_on_ignored, b, 5, argv, NULL);
    if (b->groups < 2 && rlink_up(b->main) && !b->stopping) {
        /* lost with Redis' data (NOGROUP): made again */
        const char *g1[] = {"XGROUP", "CREATE", b->key_shared, BUSREQ_GROUP,
                            "0", "MKSTREAM"};
        const char *g2[] = {"XGROUP", "CREATE", b->key_own, BUSREQ_GROUP,
                            "0", "MKSTREAM"};
        b->groups = 0;
        (void)rlink_cmd(b->main, busreq_on_group, b, 6, g1, NULL);
        (void)rlink_cmd(b->main, busreq_on_group, b, 6, g2, NULL);
    }
}

/* The CLAIM script's answer: [[dead node, [id, fields]]...]. */
static void busreq_on_claimed(struct rlink *l, redisReply *r, void *arg)
{
    struct busreq *b = arg;
    b->claiming = false;
    if (r == NULL)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        rlink_fail(l, "takeover", r->str);
        return;
    }
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements;
         i++) {
        redisReply *c = r->element[i];
        if (c->type != REDIS_REPLY_ARRAY || c->elements != 2 ||
            c->element[0]->type != REDIS_REPLY_STRING)
            continue;
        char from[64];
        snprintf(from, sizeof from, "%s", c->element[0]->str);
        log_warn("request bus: node %s's heartbeat is gone: its pending "
                 "entry %s taken over", from,
                 c->element[1]->type == REDIS_REPLY_ARRAY &&
                 c->element[1]->elements > 0 ? c->element[1]->element[0]->str
                                             : "?");
        redisReply one = {.type = REDIS_REPLY_ARRAY, .elements = 1,
                          .element = &c->element[1]};
        busreq_take_all(b, &one, false, from, NULL, 0);
    }
}

static void busreq_on_claim(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct busreq *b = arg;
    if (b->claiming || b->stopping || b->groups < 2 ||
        b->held + BUSREQ_MAX_READ > BUSREQ_MAX_INFLIGHT)
        return;
    char node_prefix[96], count[16];
    snprintf(node_prefix, sizeof node_prefix, "%s:node:",
             b->conf->redis_prefix);
    snprintf(count, sizeof count, "%u", BUSREQ_MAX_READ);
    const char *argv[] = {"EVAL", BUSREQ_CLAIM_LUA, "1", b->key_shared,
                          b->conf->node_id, b->claim_ms, node_prefix, count};
    if (rlink_cmd(b->main, busreq_on_claimed, b, 8, argv, NULL) == 0)
        b->claiming = true;
}

/* ---- links -------------------------------------------------------------- */

static void busreq_on_main_up(void *arg)
{
    struct busreq *b = arg;
    b->groups = 0; /* made (again) by the heartbeat */
    busreq_on_heartbeat(-1, 0, b);
    for (struct held *h = b->list; h != NULL; h = h->next)
        if (h->state == HELD_MARK && !h->sent)
            busreq_mark(h);
    busreq_flush(b);
}

static void busreq_on_main_down(void *arg)
{
    struct busreq *b = arg;
    b->claiming = false;
}

static void busreq_on_read_up(void *arg)
{
    struct busreq *b = arg;
    b->recovering = true; /* own pending entries first, every time */
    strcpy(b->last[0], "0");
    strcpy(b->last[1], "0");
    event_active(b->kick, EV_TIMEOUT, 0);
}

static void busreq_on_read_down(void *arg)
{
    struct busreq *b = arg;
    b->reading = false;
}

/* ---- life cycle ---------------------------------------------------------- */

struct busreq *busreq_new(const struct busreq_deps *d)
{
    const struct conf *conf = d->conf;
    struct busreq *b = NULL;
    if (conf->redis[0] == '\0' || !conf->redis_requests ||
        (b = calloc(1, sizeof *b)) == NULL) {
        bufferevent_free(d->bev);
        return NULL;
    }
    *b = (struct busreq){.base = d->base, .conf = conf, .bev = d->bev,
                         .room = d->room, .room_arg = d->room_arg,
                         .metrics = d->metrics};
    const char *p = conf->redis_prefix;
    snprintf(b->key_shared, sizeof b->key_shared, "%s:requests", p);
    snprintf(b->key_own, sizeof b->key_own, "%s:requests:%s", p,
             conf->node_id);
    snprintf(b->key_node, sizeof b->key_node, "%s:node:%s", p,
             conf->node_id);
    snprintf(b->claim_ms, sizeof b->claim_ms, "%u",
             conf->redis_claim_idle * 1000);
    snprintf(b->maxlen, sizeof b->maxlen, "%" PRIu64,
             conf->redis_replies_maxlen);
    snprintf(b->ttl, sizeof b->ttl, "%u", conf->request_key_ttl);
    bufferevent_setcb(b->bev, busreq_on_bev_read, NULL, busreq_on_bev_event,
                      b);
    bufferevent_enable(b->bev, EV_READ | EV_WRITE);
    b->kick = evtimer_new(b->base, busreq_on_kick, b);
    b->heartbeat = event_new(b->base, -1, EV_PERSIST, busreq_on_heartbeat, b);
    b->claim = event_new(b->base, -1, EV_PERSIST, busreq_on_claim, b);
    struct timeval hb = {BUSREQ_HEARTBEAT_MS / 1000, 0};
    struct timeval cl = {BUSREQ_CLAIM_MS / 1000, 0};
    struct rlink_cbs rcbs = {busreq_on_read_up, busreq_on_read_down, b};
    struct rlink_cbs mcbs = {busreq_on_main_up, busreq_on_main_down, b};
    if (b->kick == NULL || b->heartbeat == NULL || b->claim == NULL ||
        event_add(b->heartbeat, &hb) < 0 || event_add(b->claim, &cl) < 0 ||
        (b->main = rlink_new(b->base, conf, "requests",
                             "bus requests wait in Redis", &mcbs)) == NULL ||
        (b->rd = rlink_new(b->base, conf, "requests (read)",
                           "bus requests wait in Redis", &rcbs)) == NULL) {
        busreq_free(b);
        return NULL;
    }
    log_info("redis %s: reading requests from %s and %s as node %s "
             "(group " BUSREQ_GROUP ")", conf->redis, b->key_shared,
             b->key_own, conf->node_id);
    return b;
}

void busreq_stop(struct busreq *b)
{
    if (b == NULL || b->stopping)
        return;
    b->stopping = true;
    log_info("request bus: stopping: no more entries read; %u held entries "
             "answered while the daemon runs", b->held);
}

bool busreq_pending(const struct busreq *b)
{
    return b != NULL && b->held > 0;
}

void busreq_free(struct busreq *b)
{
    if (b == NULL)
        return;
    rlink_free(b->rd); /* NULL replies: callbacks only mark */
    rlink_free(b->main);
    b->rd = b->main = NULL;
    unsigned unanswered = 0;
    while (b->list != NULL) {
        unanswered++;
        struct held *h = b->list;
        b->list = h->next;
        busreq_entry_free(&h->e);
        free(h->reply);
        free(h->result);
        free(h);
    }
    if (unanswered > 0)
        log_warn("request bus: %u entries not answered at exit: left "
                 "pending, answered when this node starts again", unanswered);
    if (b->kick)
        event_free(b->kick);
    if (b->heartbeat)
        event_free(b->heartbeat);
    if (b->claim)
        event_free(b->claim);
    bufferevent_free(b->bev);
    free(b);
}
