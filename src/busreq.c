/* busreq: the request bus consumer (include/busreq.h has the contract,
 * docs/protocol.md "The request bus (Redis)" the wire, and
 * docs/reliability.md why no call is placed twice): reading, the groups,
 * the heartbeat, the takeover of dead nodes' entries and the life cycle.
 * Owns two Redis links: "read" carries only the blocking XREADGROUP,
 * "main" everything else (groups, MARK, OWN and REPLY scripts, heartbeat, the
 * CLAIM script), and its end of the bufferevent pair to the daemon; the
 * entries it holds are busreq_held.c's business. Main thread. */
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

#include "busreq_int.h"
#include "conf.h"
#include "log.h"
#include "metrics.h"
#include "rlink.h"
#include "rpc.h"

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
            strcpy(b->last[0], "0");
            strcpy(b->last[1], "0");
        } else {
            rlink_fail(l, "XREADGROUP", r->str);
            return;
        }
    }
    unsigned got = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements;
         i++) {
        redisReply *s = r->element[i];
        if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
            s->element[0]->type != REDIS_REPLY_STRING)
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
    unsigned unanswered = busreq_held_free(b);
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
