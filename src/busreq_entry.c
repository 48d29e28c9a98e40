/* busreq_entry: the pure parts of the request bus (include/busreq.h):
 * its Lua scripts, an entry's fields checked and turned into a request
 * line for the daemon, the daemon's reply turned into the bus reply, and
 * the room arithmetic. No I/O; unit-tested (tests/unit/test_busreq.c). */
#include "busreq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"

/* The entry (ARGV[2]) must still be pending for this node (ARGV[1]) in
 * stream K: a node that lost it (taken over while it stalled) neither
 * marks, hands nor answers it ({'lost', its owner now, '' when acked}).
 * Still ours: its idle time is reset (XCLAIM to ourselves, JUSTID), so no
 * takeover (min-idle redis_claim_idle) can take it before the INVITE is
 * out. */
#define BUSREQ_LUA_OWNED(K)                                                \
    "local p = redis.call('XPENDING', " K ", 'ctid', ARGV[2], ARGV[2], 1)\n" \
    "if #p == 0 then return {'lost', ''} end\n"                           \
    "if p[1][2] ~= ARGV[1] then return {'lost', p[1][2]} end\n"           \
    "redis.call('XCLAIM', " K ", 'ctid', ARGV[1], '0', ARGV[2], "          \
    "'JUSTID')\n"

const char BUSREQ_OWN_LUA[] =
    BUSREQ_LUA_OWNED("KEYS[1]")
    "return {'go', ''}\n";

const char BUSREQ_MARK_LUA[] =
    BUSREQ_LUA_OWNED("KEYS[2]")
    "local mine = 'intent ' .. ARGV[1] .. ' ' .. ARGV[2]\n"
    "local v = redis.call('GET', KEYS[1])\n"
    "if not v then\n"
    "  redis.call('SET', KEYS[1], mine, 'EX', ARGV[3])\n"
    "  return {'go', ''}\n"
    "end\n"
    "if v == mine then return {'go', ''} end\n"
    "return {'have', v}\n";

const char BUSREQ_REPLY_LUA[] =
    "local p = redis.call('XPENDING', KEYS[1], 'ctid', ARGV[2], ARGV[2], "
    "1)\n"
    "if #p == 0 or p[1][2] ~= ARGV[1] then return 0 end\n"
    "if redis.call('XACK', KEYS[1], 'ctid', ARGV[2]) ~= 1 then return 0 "
    "end\n"
    "if ARGV[7] == 'placed' then\n"
    "  redis.call('SET', KEYS[3], 'placed ' .. ARGV[8], 'EX', ARGV[9])\n"
    "elseif ARGV[7] == 'abandon' then\n"
    "  if redis.call('GET', KEYS[3]) == 'intent ' .. ARGV[1] .. ' ' .. "
    "ARGV[2] then\n"
    "    redis.call('DEL', KEYS[3])\n"
    "  end\n"
    "end\n"
    "if ARGV[3] == '1' then\n"
    "  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'id', "
    "ARGV[5], 'node', ARGV[1], 'entry', ARGV[2], 'reply', ARGV[6])\n"
    "end\n"
    "return 1\n";

/* Idle entries of consumers whose heartbeat key is gone move to this
 * node, atomically, so two nodes never both take one. */
const char BUSREQ_CLAIM_LUA[] =
    "local p = redis.call('XPENDING', KEYS[1], 'ctid', 'IDLE', ARGV[2], "
    "'-', '+', ARGV[4])\n"
    "local out, alive = {}, {}\n"
    "for _, e in ipairs(p) do\n"
    "  local c = e[2]\n"
    "  if c ~= ARGV[1] then\n"
    "    if alive[c] == nil then\n"
    "      alive[c] = redis.call('EXISTS', ARGV[3] .. c) == 1\n"
    "    end\n"
    "    if not alive[c] then\n"
    "      local got = redis.call('XCLAIM', KEYS[1], 'ctid', ARGV[1], "
    "ARGV[2], e[1])\n"
    "      if #got > 0 then table.insert(out, {c, got[1]}) end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n";

/* ---- reply_to ------------------------------------------------------------ */

/* Is name key or key's family (key followed by ':' and more)? */
static bool busreq_is_key(const char *name, const char *prefix,
                          const char *suffix, bool family)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    if (strncmp(name, prefix, pl) != 0 || name[pl] != ':' ||
        strncmp(name + pl + 1, suffix, sl) != 0)
        return false;
    const char *rest = name + pl + 1 + sl;
    return *rest == '\0' || (family && *rest == ':');
}

bool busreq_reply_to_ok(const char *name, const char *prefix)
{
    size_t n = strlen(name);
    if (n == 0 || n > BUSREQ_ID_MAX ||
        strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789_.:-") != n)
        return false;
    return !busreq_is_key(name, prefix, "requests", true) &&
           !busreq_is_key(name, prefix, "events", false) &&
           !busreq_is_key(name, prefix, "published", false) &&
           !busreq_is_key(name, prefix, "key", true) &&
           !busreq_is_key(name, prefix, "node", true);
}

/* ---- the entry ------------------------------------------------------------ */

int busreq_res_id_node(const char *res_id, char *node, size_t len)
{
    const char *infix = strstr(res_id, "-ext.notify_call-");
    size_t n = infix ? (size_t)(infix - res_id) : 0;
    if (n == 0 || n >= len || strspn(res_id, "0123456789.") != n)
        return -1;
    memcpy(node, res_id, n);
    node[n] = '\0';
    return 0;
}

static void busreq_entry_error(struct busreq_entry *e, int code,
                               const char *msg)
{
    struct rpc_error err;
    rpc_fail(&err, code, "%s", msg);
    e->err_code = code;
    snprintf(e->err_msg, sizeof e->err_msg, "%s", err.message);
}

/* The method field, when it is one the bus takes. */
static void busreq_entry_method(struct busreq_entry *e, const char *m)
{
    static const struct {
        const char *name;
        enum busreq_method method;
    } known[] = {{"ext.notify_call.construct", BUSREQ_CONSTRUCT},
                 {"ext.notify_call.exists", BUSREQ_EXISTS},
                 {"ext.notify_call.drop", BUSREQ_DROP},
                 {"sys.ping", BUSREQ_PING}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(m, known[i].name) == 0) {
            e->method = known[i].method;
            return;
        }
    if (strcmp(m, "sys.auth") == 0 || strcmp(m, "sys.subscribe") == 0) {
        busreq_entry_error(e, RPC_METHOD_NOT_FOUND,
                           "sys.auth/sys.subscribe are not available on the "
                           "bus");
        return;
    }
    struct rpc_error err;
    int n = (int)rpc_utf8_prefix(m, strlen(m), 200);
    rpc_fail(&err, RPC_METHOD_NOT_FOUND, "method not found: %.*s", n, m);
    e->err_code = err.code;
    snprintf(e->err_msg, sizeof e->err_msg, "%s", err.message);
}

/* Construct: the request_key every bus construct carries (its own, or
 * "bus:<entry>"). exists/drop on the shared stream: the res_id's node. */
static void busreq_entry_params(struct busreq_entry *e, const char *prefix,
                                const char *node)
{
    if (e->method == BUSREQ_CONSTRUCT) {
        json_t *k = json_object_get(e->params, "request_key");
        if (k == NULL) {
            char key[64];
            snprintf(key, sizeof key, "bus:%s", e->entry);
            json_object_set_new(e->params, "request_key", json_string(key));
        } else if (json_is_string(k) &&
                   json_string_length(k) < sizeof e->key &&
                   strlen(json_string_value(k)) == json_string_length(k))
            snprintf(e->key, sizeof e->key, "%s", json_string_value(k));
        /* any other request_key: the daemon refuses it */
        return;
    }
    if (e->own || (e->method != BUSREQ_EXISTS && e->method != BUSREQ_DROP))
        return;
    const char *res_id = json_string_value(json_object_get(e->params,
                                                           "res_id"));
    char owner[64];
    if (res_id == NULL || busreq_res_id_node(res_id, owner, sizeof owner) < 0
        || strcmp(owner, node) == 0)
        return; /* the daemon answers it */
    char msg[256];
    snprintf(msg, sizeof msg, "res_id belongs to node %s: send it to "
             "%s:requests:%s", owner, prefix, owner);
    e->err_code = RPC_INVALID_PARAMS;
    snprintf(e->err_msg, sizeof e->err_msg, "%s", msg);
}

void busreq_entry_parse(struct busreq_entry *e, const char *entry_id,
                        bool own, const char *const *f, const size_t *lens,
                        size_t n, const char *prefix, const char *node,
                        size_t max_line)
{
    memset(e, 0, sizeof *e);
    snprintf(e->entry, sizeof e->entry, "%s", entry_id);
    e->own = own;
    const char *method = NULL, *params = NULL, *reply_to = NULL, *id = NULL;
    size_t params_len = 0, total = 0;
    bool big = false;
    for (size_t i = 0; i + 1 < n; i += 2) {
        total += lens[i] + lens[i + 1];
        big |= lens[i + 1] > max_line;
        const char *v = f[i + 1];
        bool nul = strlen(v) != lens[i + 1];
        if (strcmp(f[i], "method") == 0)
            method = nul ? "" : v;
        else if (strcmp(f[i], "params") == 0)
            params = v, params_len = lens[i + 1];
        else if (strcmp(f[i], "reply_to") == 0)
            reply_to = nul ? "" : v;
        else if (strcmp(f[i], "id") == 0 && !nul)
            id = v;
    }
    if (reply_to != NULL && !busreq_reply_to_ok(reply_to, prefix)) {
        e->refused = true;
        return;
    }
    e->reply_to = reply_to ? strdup(reply_to) : NULL;
    e->id = strdup(id && strlen(id) <= max_line ? id : "");
    if (big || total > max_line) {
        busreq_entry_error(e, RPC_INVALID_REQUEST, "entry too large");
        return;
    }
    if (method == NULL || method[0] == '\0') {
        busreq_entry_error(e, RPC_INVALID_REQUEST, "method missing");
        return;
    }
    json_error_t jerr;
    e->params = params ? json_loadb(params, params_len, JSON_DECODE_ANY,
                                    &jerr)
                       : json_object();
    if (e->params == NULL) {
        busreq_entry_error(e, RPC_PARSE_ERROR, "params is not JSON");
        return;
    }
    if (!json_is_object(e->params)) {
        busreq_entry_error(e, RPC_INVALID_PARAMS, "params must be an object");
        return;
    }
    busreq_entry_method(e, method);
    if (e->err_code == 0)
        busreq_entry_params(e, prefix, node);
}

enum busreq_step busreq_first_step(const struct busreq_entry *e,
                                   bool taken_over)
{
    if (e->method != BUSREQ_CONSTRUCT)
        return BUSREQ_STEP_HAND;
    if (e->key[0])
        return BUSREQ_STEP_MARK;
    return taken_over ? BUSREQ_STEP_TAKEN : BUSREQ_STEP_OWN;
}

void busreq_entry_free(struct busreq_entry *e)
{
    free(e->reply_to);
    free(e->id);
    json_decref(e->params);
    e->reply_to = e->id = NULL;
    e->params = NULL;
}

/* ---- lines ---------------------------------------------------------------- */

static const char *const busreq_method_names[] = {
    "ext.notify_call.construct", "ext.notify_call.exists",
    "ext.notify_call.drop", "sys.ping"};

/* Compact text of obj (stolen), malloc'ed, no '\n'. */
static char *busreq_dump(json_t *obj)
{
    char *s = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER)
                  : NULL;
    json_decref(obj);
    return s;
}

char *busreq_request_line(const struct busreq_entry *e, unsigned long tag,
                          size_t max_line, size_t *len)
{
    json_t *obj = json_pack("{s:s, s:I, s:s, s:O}", "jsonrpc", "2.0", "id",
                            (json_int_t)tag, "method",
                            busreq_method_names[e->method], "params",
                            e->params);
    char *s = busreq_dump(obj);
    if (s == NULL)
        return NULL;
    size_t n = strlen(s);
    if (n > max_line) {
        free(s);
        return NULL;
    }
    char *line = realloc(s, n + 2);
    if (line == NULL) {
        free(s);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    *len = n + 1;
    return line;
}

char *busreq_reply_text(json_t *reply, const char *id, bool *is_result,
                        char **result)
{
    json_t *r = json_object_get(reply, "result");
    if (result)
        *result = NULL;
    if (!json_is_object(reply) || json_object_get(reply, "id") == NULL ||
        (r == NULL && json_object_get(reply, "error") == NULL))
        return NULL;
    *is_result = r != NULL;
    if (r != NULL && result != NULL)
        *result = json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER |
                                    JSON_ENCODE_ANY);
    json_object_set_new(reply, "id", json_string(id));
    return busreq_dump(json_incref(reply));
}

char *busreq_error_text(const char *id, int code, const char *msg,
                        const char *node, json_t *extra)
{
    struct rpc_error err;
    rpc_fail(&err, code, "%s", msg);
    json_t *jid = json_string(id);
    size_t len;
    char *line = rpc_error_line(jid, &err, node, &len);
    json_decref(jid);
    if (line == NULL || extra == NULL) {
        json_decref(extra);
        if (line != NULL)
            line[len - 1] = '\0';
        return line;
    }
    json_t *obj = json_loadb(line, len, 0, NULL);
    free(line);
    json_t *data = json_object_get(json_object_get(obj, "error"), "data");
    json_object_update(data, extra);
    json_decref(extra);
    return busreq_dump(obj);
}

char *busreq_result_text(const char *id, const char *result)
{
    json_t *r = json_loads(result, JSON_DECODE_ANY, NULL);
    if (r == NULL)
        return NULL;
    return busreq_dump(json_pack("{s:s, s:s, s:o}", "jsonrpc", "2.0", "id",
                                 id, "result", r));
}

unsigned busreq_room(unsigned room, unsigned constructs_inflight,
                     unsigned held)
{
    unsigned r = room > constructs_inflight ? room - constructs_inflight : 0;
    if (r > BUSREQ_MAX_READ)
        r = BUSREQ_MAX_READ;
    unsigned left = held < BUSREQ_MAX_INFLIGHT ? BUSREQ_MAX_INFLIGHT - held
                                               : 0;
    return r < left ? r : left;
}
