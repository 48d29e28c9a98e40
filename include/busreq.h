/* busreq: the request bus (issue 15, the requests half; docs/protocol.md
 * "The request bus (Redis)"). Reads PREFIX:requests (shared by every
 * node, group "ctid", only while this node has room for calls) and
 * PREFIX:requests:NODE (this node's exists/drop), hands each entry to the
 * daemon as a JSON-RPC line over an internal connection (one end of a
 * bufferevent pair; the connection layer adopts the other end), and adds
 * the reply to the entry's reply_to stream with a Lua script that XACKs
 * the entry in the same step, so an entry is answered at most once across
 * every node. Keeps the node's heartbeat (PREFIX:node:NODE) and answers
 * the pending entries of nodes whose heartbeat is gone.
 *
 * struct busreq is opaque, owned by the server (busreq_new /
 * busreq_free), main thread only. It owns its two Redis links (rlink.h),
 * its end of the pair, the entries it holds and the answers not yet in
 * Redis. It learns the daemon's room for calls through a callback and
 * knows nothing else of the daemon.
 *
 * The pure parts below (busreq_entry.c) are unit-tested. */
#ifndef CTID_BUSREQ_H
#define CTID_BUSREQ_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct bufferevent;
struct conf;
struct metrics;
struct busreq;

/* Room for new calls now: free call slots and whole call-rate tokens,
 * whichever is smaller (calls_room). */
typedef unsigned (*busreq_room_fn)(void *arg);

struct busreq_deps {
    struct event_base *base;
    const struct conf *conf;     /* must outlive the busreq */
    struct bufferevent *bev;     /* busreq's end of the pair: owned from
                                    busreq_new on (freed by it even when
                                    busreq_new fails) */
    busreq_room_fn room;
    void *room_arg;
    struct metrics *metrics;     /* bus_* counters */
};

/* Starts reading when conf->redis is set and redis_requests is yes
 * (NULL, bev freed, when not, or out of memory). */
struct busreq *busreq_new(const struct busreq_deps *d);
/* SIGTERM: no more entries are read; answers still owed are sent while
 * the daemon lives. */
void busreq_stop(struct busreq *b);
/* Entries held whose answer is not yet in Redis (shutdown waits a
 * little for them); false for NULL. */
bool busreq_pending(const struct busreq *b);
/* Disconnects and frees everything; NULL is fine. */
void busreq_free(struct busreq *b);

/* ---- pure parts (busreq_entry.c) ---------------------------------------- */

#define BUSREQ_MAX_INFLIGHT 256  /* entries held at once */
#define BUSREQ_MAX_READ 32       /* COUNT of one read */
#define BUSREQ_ID_MAX 200        /* reply_to's longest name */

/* The Lua scripts (docs/protocol.md). MARK: KEYS P:key:K, the stream;
 * ARGV node, entry, ttl -> {"go"|"have"|"lost", value}. OWN (a keyless
 * construct): KEYS the stream; ARGV node, entry -> {"go"|"lost", value}.
 * Both answer "lost" (value: the entry's consumer now, "" when acked)
 * unless the entry is pending for node, and reset its idle time when it
 * is. REPLY: KEYS the
 * stream, reply_to, P:key:K; ARGV node, entry, has_reply, maxlen, id,
 * reply, keymode ("", "placed", "abandon"), result, ttl -> 1 when this
 * call acked the entry (and added the reply), else 0. */
extern const char BUSREQ_MARK_LUA[];
extern const char BUSREQ_OWN_LUA[];
extern const char BUSREQ_REPLY_LUA[];
/* CLAIM: KEYS PREFIX:requests; ARGV node, min idle ms, "PREFIX:node:",
 * count -> [[dead node, [id, fields]]...], the entries now this node's. */
extern const char BUSREQ_CLAIM_LUA[];

enum busreq_method {
    BUSREQ_CONSTRUCT,
    BUSREQ_EXISTS,
    BUSREQ_DROP,
    BUSREQ_PING,
};

/* One stream entry, parsed and checked. */
struct busreq_entry {
    char entry[48];              /* the stream entry id */
    bool own;                    /* from PREFIX:requests:NODE */
    bool refused;                /* bad reply_to: ack only, no reply */
    char *reply_to;              /* NULL: no reply wanted */
    char *id;                    /* the id field, "" when none */
    enum busreq_method method;
    json_t *params;              /* an object (construct: request_key in) */
    char key[256];               /* construct's own request_key, "" none */
    int err_code;                /* != 0: answer with this error */
    char err_msg[256];
};

/* What a valid entry (no refusal, no err_code) needs before the daemon
 * has it: a construct taken over from a dead node without its own
 * request_key is answered with the -32000 "stopped before answering"
 * error (TAKEN); one with a request_key runs MARK; any other construct
 * runs OWN; exists/drop/sys.ping go to the daemon at once (HAND). */
enum busreq_step {
    BUSREQ_STEP_TAKEN,
    BUSREQ_STEP_MARK,
    BUSREQ_STEP_OWN,
    BUSREQ_STEP_HAND,
};
enum busreq_step busreq_first_step(const struct busreq_entry *e,
                                   bool taken_over);

/* Is name an acceptable reply_to: ^[A-Za-z0-9_.:-]{1,200}$ and none of
 * ctid's own keys under prefix (PREFIX:requests, PREFIX:requests:*,
 * PREFIX:events, PREFIX:published, PREFIX:key:*, PREFIX:node:*)? */
bool busreq_reply_to_ok(const char *name, const char *prefix);
/* Parses an entry's field/value pairs (n strings, n even; lens given).
 * Always fills e (busreq_entry_free frees it): e->refused, or
 * e->err_code with e->err_msg, or a request to hand on. node: this
 * node's id; max_line: conf max_line. */
void busreq_entry_parse(struct busreq_entry *e, const char *entry_id,
                        bool own, const char *const *f, const size_t *lens,
                        size_t n, const char *prefix, const char *node,
                        size_t max_line);
void busreq_entry_free(struct busreq_entry *e);
/* The node part of a res_id ("1.2.3-ext.notify_call-42" -> "1.2.3"): 0,
 * or -1 when it has none. */
int busreq_res_id_node(const char *res_id, char *node, size_t len);
/* The JSON-RPC line for the daemon (malloc'ed, with '\n'), numeric id
 * tag; NULL when out of memory or longer than max_line. */
char *busreq_request_line(const struct busreq_entry *e, unsigned long tag,
                          size_t max_line, size_t *len);
/* A daemon reply (parsed; its "id" is replaced by id, a string, in
 * place) as the reply text (malloc'ed, no '\n'); *is_result, and *result
 * (malloc'ed compact text of "result", NULL on an error reply) when
 * wanted. NULL when reply is not a reply. */
char *busreq_reply_text(json_t *reply, const char *id, bool *is_result,
                        char **result);
/* An error reply text {"jsonrpc":"2.0","id":id,"error":{code, message,
 * data}} as TCP would send it (data: {"node": node} merged with extra,
 * which may be NULL; stolen). */
char *busreq_error_text(const char *id, int code, const char *msg,
                        const char *node, json_t *extra);
/* A result reply text from a result's JSON text; NULL if not JSON. */
char *busreq_result_text(const char *id, const char *result);
/* How many entries to read: min(free slots, tokens, max read, room left
 * under BUSREQ_MAX_INFLIGHT), slots less the bus constructs in flight. */
unsigned busreq_room(unsigned room, unsigned constructs_inflight,
                     unsigned held);

#endif
