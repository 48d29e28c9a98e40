/* bus: publishes the journaled events to the Redis stream PREFIX:events
 * (include/bus.h has the contract and the exactly-once argument). Owns
 * its Redis link (rlink.h: connect, AUTH, reconnect, stall drop), the
 * tick that notices new journal records and the cursor into the
 * journal. Main thread. */
#include "bus.h"

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "journal.h"
#include "log.h"
#include "rlink.h"

/* Journal payload read per step (about 50 events): each step's work on
 * the main loop stays well under a millisecond, also when a backlog is
 * caught up after an outage. */
#define BUS_CHUNK_BYTES (16u << 10)
#define BUS_TICK_MS 20              /* new records noticed this often */

/* Lua numbers are doubles: seqs are exact up to 2^53, far past any
 * journal's. */
const char BUS_PUBLISH_LUA[] =
    "local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')\n"
    "local seq = tonumber(ARGV[2])\n"
    "if seq <= last then return last end\n"
    "if last ~= tonumber(ARGV[6]) then return -1 end\n"
    "redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], '*', 'node', "
    "ARGV[1], 'seq', ARGV[2], 'method', ARGV[3], 'params', ARGV[4])\n"
    "redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])\n"
    "return seq\n";

struct bus {
    struct event_base *base;
    const struct conf *conf;
    struct journal *j;
    struct rlink *link;         /* the connection */
    struct event *tick;         /* persistent: publish what is new */
    bool ready;                 /* script loaded, cursor placed */
    char sha[41];               /* the script's, from SCRIPT LOAD */
    char events_key[80], published_key[80], maxlen[24];
    struct journal_cursor cur;  /* next record to send */
    uint64_t sent;              /* last seq sent (the next one's prev) */
    uint64_t acked;             /* Redis' last published seq, as known */
    uint64_t caught;            /* j->last_seq when the journal had no more
                                   to send and all was acked (seqs handed
                                   out but never written, e.g. skipped
                                   after a crash, count as done) */
    unsigned inflight;          /* commands without a reply yet */
};

static void bus_pump(struct bus *b);

/* ---- pure parts ---------------------------------------------------------- */

/* The journal's own lines (rpc_event_line: the envelope's three keys in
 * this order, compact) are cut apart without a JSON parse: the bench's
 * profile showed jansson re-reading each line as most of the bus's cost
 * on the main loop. Any other shape takes the parse. */
static int bus_split_fast(const char *line, size_t len, char **method,
                          char **params)
{
    static const char pre[] = "{\"jsonrpc\":\"2.0\",\"method\":\"";
    static const char mid[] = "\",\"params\":";
    const size_t npre = sizeof pre - 1, nmid = sizeof mid - 1;
    while (len > 0 && line[len - 1] == '\n')
        len--;
    if (len < npre + nmid + 3 || memcmp(line, pre, npre) != 0 ||
        line[len - 1] != '}')
        return -1;
    const char *m = line + npre, *end = line + len - 1; /* the last '}' */
    const char *q = m;
    while (q < end && *q != '"' && *q != '\\')
        q++;
    if (q == m || q >= end || *q != '"' || (size_t)(end - q) < nmid + 2 ||
        memcmp(q, mid, nmid) != 0)
        return -1;
    const char *p = q + nmid;
    if (*p != '{' || end[-1] != '}')
        return -1;
    *method = strndup(m, (size_t)(q - m));
    *params = strndup(p, (size_t)(end - p));
    return 0;
}

int bus_split_event(const char *line, size_t len, char **method,
                    char **params)
{
    *method = *params = NULL;
    if (bus_split_fast(line, len, method, params) == 0) {
        if (*method != NULL && *params != NULL)
            return 0;
        free(*method);
        free(*params);
        *method = *params = NULL;
        return -1;
    }
    json_t *root = json_loadb(line, len, 0, NULL);
    const char *m = json_string_value(json_object_get(root, "method"));
    json_t *p = json_object_get(root, "params");
    if (m != NULL && p != NULL) {
        *method = strdup(m);
        *params = json_dumps(p, JSON_COMPACT | JSON_ENCODE_ANY);
    }
    json_decref(root);
    if (*method == NULL || *params == NULL) {
        free(*method);
        free(*params);
        *method = *params = NULL;
        return -1;
    }
    return 0;
}

uint64_t bus_resume_after(uint64_t published, uint64_t first, uint64_t *lost)
{
    *lost = 0;
    if (first > 0 && published + 1 < first) {
        *lost = first - 1 - published;
        return first - 1;
    }
    return published;
}

/* ---- connection ------------------------------------------------------------ */

static const char *bus_where(const struct bus *b)
{
    return b->conf->redis;
}

/* Drops the connection (rlink reconnects after its backoff). */
static void bus_fail(struct bus *b, const char *what, const char *why)
{
    rlink_fail(b->link, what, why);
}

/* A reply that must not be an error; NULL (connection gone) is ignored. */
static bool bus_reply_ok(struct bus *b, redisReply *r, const char *what)
{
    if (r == NULL || !rlink_up(b->link))
        return false;
    if (r->type == REDIS_REPLY_ERROR) {
        bus_fail(b, what, r->str);
        return false;
    }
    return true;
}

static void bus_on_script(struct rlink *l, redisReply *r, void *arg)
{
    (void)l;
    struct bus *b = arg;
    if (!bus_reply_ok(b, r, "SCRIPT LOAD"))
        return;
    if (r->type != REDIS_REPLY_STRING || r->len != 40) {
        bus_fail(b, "SCRIPT LOAD", "unexpected reply");
        return;
    }
    memcpy(b->sha, r->str, 40);
    b->sha[40] = '\0';
}

/* Redis' last published seq for this node: publication resumes after it
 * (or at the oldest record retention kept). */
static void bus_on_published(struct rlink *l, redisReply *r, void *arg)
{
    (void)l;
    struct bus *b = arg;
    if (!bus_reply_ok(b, r, "HGET"))
        return;
    uint64_t published = 0;
    if (r->type == REDIS_REPLY_STRING)
        published = strtoull(r->str, NULL, 10);
    else if (r->type != REDIS_REPLY_NIL) {
        bus_fail(b, "HGET", "unexpected reply");
        return;
    }
    if (published > b->j->last_seq)
        log_warn("redis %s: node %s already published up to seq %" PRIu64
                 ", past this journal's last %" PRIu64 " (state_dir "
                 "replaced?): events up to it are taken as published",
                 bus_where(b), b->conf->node_id, published, b->j->last_seq);
    uint64_t lost;
    uint64_t after =
        bus_resume_after(published, journal_first_seq(b->j), &lost);
    if (lost > 0)
        log_error("redis %s: journal retention deleted %" PRIu64 " event "
                  "seq(s) %" PRIu64 "..%" PRIu64 " before they were "
                  "published: LOST TO THE BUS (still in no client's "
                  "journal); going on from seq %" PRIu64, bus_where(b), lost,
                  published + 1, after, after + 1);
    journal_cursor_init(&b->cur, after);
    b->sent = b->acked = published;
    b->caught = 0;
    b->ready = true;
    log_info("redis %s: connected; node %s published up to seq %" PRIu64
             ", publishing from %" PRIu64 " to %s", bus_where(b),
             b->conf->node_id, published, after + 1, b->events_key);
    bus_pump(b);
}

/* rlink is up: the start-up commands; their replies come in this order. */
static void bus_on_up(void *arg)
{
    struct bus *b = arg;
    const char *load[] = {"SCRIPT", "LOAD", BUS_PUBLISH_LUA};
    const char *hget[] = {"HGET", b->published_key, b->conf->node_id};
    if (rlink_cmd(b->link, bus_on_script, b, 3, load, NULL) < 0 ||
        rlink_cmd(b->link, bus_on_published, b, 3, hget, NULL) < 0)
        bus_fail(b, "SCRIPT LOAD", "cannot queue the command");
}

static void bus_on_down(void *arg)
{
    struct bus *b = arg;
    b->ready = false;
    b->inflight = 0;
}

/* ---- publication -------------------------------------------------------- */

static void bus_on_published_one(struct rlink *l, redisReply *r, void *arg)
{
    (void)l;
    struct bus *b = arg;
    if (!bus_reply_ok(b, r, "EVALSHA"))
        return;
    if (r->type != REDIS_REPLY_INTEGER || r->integer < 0) {
        bus_fail(b, "EVALSHA", "out of step with the stored seq");
        return;
    }
    if ((uint64_t)r->integer > b->acked)
        b->acked = (uint64_t)r->integer;
    if (--b->inflight == 0)
        bus_pump(b);
}

static void bus_send_record(void *arg, uint64_t seq, int64_t t,
                            const char *data, size_t len)
{
    (void)t;
    struct bus *b = arg;
    char *method, *params;
    if (!b->ready || !rlink_up(b->link))
        return; /* dropped mid-chunk: the next connect re-reads from Redis */
    if (bus_split_event(data, len, &method, &params) < 0) {
        log_warn("redis %s: journal seq %" PRIu64 " is not an event line; "
                 "not published", bus_where(b), seq);
        return;
    }
    char s_seq[24], s_prev[24];
    snprintf(s_seq, sizeof s_seq, "%" PRIu64, seq);
    snprintf(s_prev, sizeof s_prev, "%" PRIu64, b->sent);
    const char *argv[] = {"EVALSHA", b->sha, "2", b->events_key,
                          b->published_key, b->conf->node_id, s_seq, method,
                          params, b->maxlen, s_prev};
    if (rlink_cmd(b->link, bus_on_published_one, b,
                  (int)(sizeof argv / sizeof argv[0]), argv, NULL) == 0) {
        b->inflight++;
        b->sent = seq;
    } else
        bus_fail(b, "EVALSHA", "cannot queue the command");
    free(method);
    free(params);
}

/* Sends the next chunk of the journal, once the last one is confirmed.
 * Only synced records go out: Redis never has an event the journal could
 * lose in a crash. */
static void bus_pump(struct bus *b)
{
    if (!b->ready || !rlink_up(b->link) || b->inflight > 0 ||
        b->cur.after >= b->j->last_seq || b->caught == b->j->last_seq)
        return;
    if (b->j->unsynced_records > 0 && journal_sync(b->j) < 0)
        return; /* the server's group commit logs it */
    uint64_t lost, first = journal_first_seq(b->j);
    uint64_t after = bus_resume_after(b->cur.after, first, &lost);
    if (lost > 0) {
        log_error("redis %s: journal retention deleted %" PRIu64 " event "
                  "seq(s) before they were published: LOST TO THE BUS; "
                  "going on from seq %" PRIu64, bus_where(b), lost, first);
        journal_cursor_init(&b->cur, after);
    }
    int n = journal_read(b->j, &b->cur, BUS_CHUNK_BYTES, bus_send_record, b);
    if (n < 0)
        bus_fail(b, "journal", "read error");
    else if (n == 0 && b->inflight == 0)
        b->caught = b->j->last_seq;
}

static void bus_on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bus_pump(arg);
}

/* ---- life cycle ---------------------------------------------------------- */

struct bus *bus_new(struct event_base *base, const struct conf *conf,
                    struct journal *j)
{
    if (conf->redis[0] == '\0')
        return NULL;
    struct bus *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    *b = (struct bus){.base = base, .conf = conf, .j = j};
    snprintf(b->events_key, sizeof b->events_key, "%s:events",
             conf->redis_prefix);
    snprintf(b->published_key, sizeof b->published_key, "%s:published",
             conf->redis_prefix);
    snprintf(b->maxlen, sizeof b->maxlen, "%" PRIu64,
             conf->redis_events_maxlen);
    b->tick = event_new(base, -1, EV_PERSIST, bus_on_tick, b);
    struct timeval tv = {0, BUS_TICK_MS * 1000};
    if (b->tick == NULL || event_add(b->tick, &tv) < 0) {
        bus_free(b);
        return NULL;
    }
    char host[PATH_MAX];
    uint16_t port;
    bool is_unix;
    (void)conf_redis_parse(conf->redis, host, sizeof host, &port, &is_unix);
    if (!is_unix && !conf_is_loopback(host) && conf->redis_password[0] == 0)
        log_warn("redis %s is not on loopback and redis_password is empty: "
                 "anyone who reaches it can read and forge events",
                 conf->redis);
    log_info("redis %s: publishing events to %s (maxlen ~%s)", conf->redis,
             b->events_key, b->maxlen);
    struct rlink_cbs cbs = {bus_on_up, bus_on_down, b};
    b->link = rlink_new(base, conf, "events", "events wait in the journal",
                        &cbs);
    if (b->link == NULL) {
        bus_free(b);
        return NULL;
    }
    return b;
}

void bus_free(struct bus *b)
{
    if (b == NULL)
        return;
    rlink_free(b->link); /* runs the callbacks, NULL replies */
    if (b->tick)
        event_free(b->tick);
    free(b);
}

uint64_t bus_lag(const struct bus *b)
{
    if (b == NULL)
        return 0;
    uint64_t first = journal_first_seq(b->j);
    if (first == 0)
        return 0;
    uint64_t done = b->acked > first - 1 ? b->acked : first - 1;
    if (b->caught > done)
        done = b->caught;
    return b->j->last_seq > done ? b->j->last_seq - done : 0;
}

bool bus_connected(const struct bus *b)
{
    return b != NULL && b->ready;
}
