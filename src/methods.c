/* methods: the JSON-RPC methods (ext.notify_call.construct, exists, drop,
 * sys.auth, sys.subscribe, sys.ping, sys.gateways) and the auth gate in front of them.
 * methods_on_request is the request handler of struct conns: it reads a
 * parsed request, calls into the call table (calls.h) or the replay
 * (replay.h), and queues the reply on the connection. Owns struct
 * construct_wait, a construct between calls_construct and its reply, and
 * struct key_wait, a repeat of a request_key waiting for it (reqkey.h
 * keeps the keys and their results).
 * Main thread. */
#include "methods.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "conf.h"
#include "log.h"
#include "metrics.h"
#include "replay.h"

#define AUTH_MAX_FAILURES 3    /* wrong tokens before the connection closes */

/* A construct between calls_construct and its reply. Names its connection by
 * id: the connection may close while the prompts load. */
struct construct_wait {
    struct methods *m;
    uint64_t conn_id;
    json_t *id;         /* the request id (a reference) */
    json_t *user_data;  /* for the result */
    double t0;          /* construct latency, for metrics */
    bool in_request;    /* still inside method_construct, which frees it */
    bool finished;      /* method_construct_done has run */
    char key[API_REQUEST_KEY_MAX + 1]; /* its request_key (pending in
                                          m->reqkeys), "" when none */
};

/* A repeat of a pending request_key, waiting for the first construct's
 * outcome (owned by m->key_waits). Counted in its connection's calls
 * while it waits, as a construct is: its reply is owed. */
struct key_wait {
    uint64_t conn_id;
    json_t *id;         /* the request id (a reference) */
    char key[API_REQUEST_KEY_MAX + 1];
    struct key_wait *next;
};

/* Is a repeat of key waiting on a connection that can still read it? */
static bool method_key_awaited(struct methods *m, const char *key)
{
    for (struct key_wait *k = m->key_waits; k != NULL; k = k->next) {
        struct conn *c = conns_find(m->conns, k->conn_id);
        if (strcmp(k->key, key) == 0 && c != NULL && !c->closing &&
            !c->overflowed)
            return true;
    }
    return false;
}

/* A construct whose connection went while its prompts loaded is still
 * placed when a repeat of its request_key waits for it. */
static bool method_construct_wanted(void *arg)
{
    struct construct_wait *w = arg;
    struct conn *c = conns_find(w->m->conns, w->conn_id);
    return (c != NULL && !c->closing && !c->overflowed) ||
           (w->key[0] != '\0' && method_key_awaited(w->m, w->key));
}

/* construct's result object. */
static json_t *method_construct_result(const struct call *call,
                                       json_t *user_data)
{
    return json_pack("{s:s, s:O, s:s, s:{s:I}}", "res_id", call->res_id,
                     "user_data", user_data, "to_uri", call->to_uri,
                     "ipsc_info", "process_id",
                     (json_int_t)call->process_id);
}

/* calls_waiter.placing: the call of a keyed construct is about to be
 * dialled; its result goes to the request_key file first, so every reply
 * (held until the group commit syncs that file) and every INVITE has its
 * key on record (docs/reliability.md, "request_key"). */
static int method_construct_placing(void *arg, struct call *call,
                                    struct rpc_error *err)
{
    struct construct_wait *w = arg;
    if (w->key[0] == '\0')
        return 0;
    json_t *result = method_construct_result(call, w->user_data);
    char *text = result ? json_dumps(result, JSON_COMPACT) : NULL;
    json_decref(result);
    int rc = text ? reqkey_commit(w->m->reqkeys, w->key, text, time(NULL))
                  : -1;
    free(text);
    if (rc == 0)
        return 0;
    log_error("%s: %s: request_key not recorded: %s", call->res_id,
              w->m->reqkeys->path, strerror(errno));
    return rpc_fail(err, RPC_INTERNAL_ERROR,
                    "cannot record the request_key durably");
}

/* The first construct of key is done: each waiting repeat gets the same
 * reply, the result or the error. */
static void method_key_answer(struct methods *m, const char *key,
                              json_t *result, const struct rpc_error *err)
{
    struct rpc_error oom;
    if (result == NULL && err == NULL) /* placed, its result not built */
        err = &oom, rpc_fail(&oom, RPC_INTERNAL_ERROR, "out of memory");
    for (struct key_wait **pp = &m->key_waits; *pp != NULL;) {
        struct key_wait *k = *pp;
        if (strcmp(k->key, key) != 0) {
            pp = &k->next;
            continue;
        }
        *pp = k->next;
        struct conn *c = conns_find(m->conns, k->conn_id);
        if (c != NULL) {
            c->calls--;
            if (result != NULL)
                conn_reply_result(c, k->id, json_deep_copy(result));
            else
                conn_reply_error(c, k->id, err);
            conn_maybe_finish(c); /* may close c */
        }
        json_decref(k->id);
        free(k);
    }
}

/* The construct's reply: after the INVITE is handed to SIP, or its error.
 * Other requests on the connection may have been answered meanwhile
 * (docs/protocol.md); the call's events come later still. */
static void method_construct_done(void *arg, struct call *call,
                                  const struct rpc_error *err)
{
    struct construct_wait *w = arg;
    struct conn *c = conns_find(w->m->conns, w->conn_id);
    metrics_on_construct(w->m->metrics, clock_mono_s() - w->t0,
                         call ? 0 : err->code);
    json_t *result = call ? method_construct_result(call, w->user_data)
                          : NULL;
    if (w->key[0] != '\0' && call == NULL)
        reqkey_abandon(w->m->reqkeys, w->key);
    if (c != NULL && call != NULL) {
        conn_reply_result(c, w->id, json_incref(result));
    } else if (c != NULL) {
        log_info("%s: construct refused: %d %s", c->peer, err->code,
                 err->message);
        c->calls--; /* counted while it waited */
        conn_reply_error(c, w->id, err);
        if (!w->in_request)
            conn_maybe_finish(c); /* may close c */
    }
    /* The repeats after the first (on the same connection too). */
    if (w->key[0] != '\0')
        method_key_answer(w->m, w->key, result, err);
    json_decref(result);
    json_decref(w->id);
    json_decref(w->user_data);
    w->finished = true;
    if (!w->in_request)
        free(w);
}

/* A repeat of a key whose first construct is in progress: queued behind
 * it (method_key_answer). 0 or -1 (out of memory). */
static int method_key_wait(struct methods *m, struct conn *c,
                           struct rpc_request *req, const char *key)
{
    struct key_wait *k = calloc(1, sizeof *k);
    if (k == NULL)
        return -1;
    log_info("%s: request_key's first construct still in progress: "
             "waiting for it", c->peer);
    k->conn_id = c->id;
    k->id = json_incref(req->id);
    snprintf(k->key, sizeof k->key, "%s", key);
    struct key_wait **tail = &m->key_waits; /* answered in order */
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = k;
    c->calls++; /* its reply is owed (conn_maybe_finish) */
    return 0;
}

/* request_key (issue 14): true when the request was answered here (a
 * repeat of a placed construct gets its result, a repeat of one being
 * placed waits for it, a reuse with other params or a full table is
 * refused); false to go on, with the key now pending in key. */
static bool method_request_key(struct methods *m, struct conn *c,
                               struct rpc_request *req,
                               const struct api_construct *a, char *key)
{
    struct rpc_error err;
    char digest[REQKEY_DIGEST_HEX + 1];
    const char *text = NULL;
    int64_t now = time(NULL);
    key[0] = '\0';
    if (a->request_key[0] == '\0' || m->reqkeys == NULL)
        return false;
    if (reqkey_digest(req->params, digest) < 0) {
        rpc_fail(&err, RPC_INTERNAL_ERROR, "out of memory");
        conn_reply_error(c, req->id, &err);
        return true;
    }
    switch (reqkey_lookup(m->reqkeys, a->request_key, digest, now, &text)) {
    case REQKEY_DONE: {
        log_info("%s: request_key seen before: its first result again",
                 c->peer);
        json_t *result = json_loads(text, 0, NULL);
        if (result != NULL) {
            conn_reply_result(c, req->id, result);
            return true;
        }
        rpc_fail(&err, RPC_INTERNAL_ERROR, "out of memory");
        break;
    }
    case REQKEY_MISMATCH:
        log_info("%s: request_key reused with different params", c->peer);
        rpc_fail(&err, RPC_INVALID_PARAMS,
                 "request_key reused with different params");
        break;
    case REQKEY_PENDING:
        if (method_key_wait(m, c, req, a->request_key) == 0)
            return true;
        rpc_fail(&err, RPC_INTERNAL_ERROR, "out of memory");
        break;
    case REQKEY_NEW:
        if (reqkey_begin(m->reqkeys, a->request_key, digest, now) == 0) {
            snprintf(key, API_REQUEST_KEY_MAX + 1, "%s", a->request_key);
            return false;
        }
        if (errno == ENOSPC)
            rpc_fail(&err, RPC_UNAVAILABLE,
                     "at capacity: %zu request_keys (%zu bytes) within "
                     "request_key_ttl", m->reqkeys->n,
                     m->reqkeys->text_bytes);
        else
            rpc_fail(&err, RPC_INTERNAL_ERROR, "out of memory");
        break;
    }
    log_info("%s: construct refused: %s", c->peer, err.message);
    conn_reply_error(c, req->id, &err);
    return true;
}

static void method_construct(struct methods *m, struct conn *c,
                             struct rpc_request *req)
{
    double t0 = clock_mono_s(); /* construct latency, for metrics */
    struct api_construct a;
    struct rpc_error err;
    char key[API_REQUEST_KEY_MAX + 1];
    if (api_parse_construct(req->params, m->conf->default_max_ring, &a,
                            &err) < 0) {
        log_info("%s: construct refused: %s", c->peer, err.message);
        api_construct_free(&a);
        conn_reply_error(c, req->id, &err);
        metrics_on_construct(m->metrics, clock_mono_s() - t0, err.code);
        return;
    }
    if (method_request_key(m, c, req, &a, key)) {
        api_construct_free(&a);
        return;
    }
    struct construct_wait *w = calloc(1, sizeof *w);
    if (w == NULL) {
        if (key[0] != '\0')
            reqkey_abandon(m->reqkeys, key);
        api_construct_free(&a);
        rpc_fail(&err, RPC_INTERNAL_ERROR, "out of memory");
        conn_reply_error(c, req->id, &err);
        return;
    }
    w->m = m;
    w->conn_id = c->id;
    w->id = json_incref(req->id);
    w->user_data = user_data_value(a.user_data);
    w->t0 = t0;
    w->in_request = true;
    snprintf(w->key, sizeof w->key, "%s", key);
    /* The reply and then the call's event are owed: a peer that sends EOF
     * meanwhile keeps its connection (conn_maybe_finish). */
    c->calls++;
    struct calls_waiter cw = {method_construct_wanted, method_construct_done,
                              w, method_construct_placing};
    calls_construct(m->calls, c->id, &a, &cw);
    api_construct_free(&a);
    w->in_request = false;
    if (w->finished)
        free(w);
    else /* names the connection as construct.c's later lines do */
        log_info("%s: construct waits for its prompts (connection %llu)",
                 c->peer, (unsigned long long)c->id);
}

/* exists and drop name a call by res_id: its process_id, or false with
 * the error replied. */
static bool method_res_id(struct methods *m, struct conn *c,
                          struct rpc_request *req, uint64_t *pid)
{
    struct rpc_error err;
    if (api_parse_res_id(req->params, m->conf->node_id, pid, &err) == 0)
        return true;
    conn_reply_error(c, req->id, &err);
    return false;
}

static void method_exists(struct methods *m, struct conn *c,
                          struct rpc_request *req)
{
    uint64_t pid;
    if (!method_res_id(m, c, req, &pid))
        return;
    conn_reply_result(c, req->id,
                      json_boolean(calls_find(m->calls, pid) != NULL));
}

static void method_drop(struct methods *m, struct conn *c,
                        struct rpc_request *req)
{
    uint64_t pid;
    if (!method_res_id(m, c, req, &pid))
        return;
    struct call *call = calls_find(m->calls, pid);
    if (call == NULL) {
        struct rpc_error err;
        rpc_fail(&err, RPC_NOT_FOUND, "unknown res_id");
        conn_reply_error(c, req->id, &err);
        return;
    }
    log_info("%s: drop requested by %s", call->res_id, c->peer);
    /* Reply first: the event that the drop causes must follow it. */
    conn_reply_result(c, req->id, json_true());
    call_input(call, CALL_IN_DROP, 0, true);
}

/* Compares in time that depends only on the lengths, never on where the
 * first difference is, so the token cannot be guessed byte by byte. */
static bool method_token_equal(const char *given, size_t given_len,
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
static void method_auth(struct methods *m, struct conn *c,
                        struct rpc_request *req)
{
    struct rpc_error err;
    json_t *tok = req->params ? rpc_param(req->params, "token", 0) : NULL;
    if (!json_is_string(tok)) {
        rpc_fail(&err, RPC_INVALID_PARAMS,
                 "invalid params: token: expected a string");
        conn_reply_error(c, req->id, &err);
        return;
    }
    const char *want = m->conf->auth_token;
    if (want[0] == '\0' ||
        method_token_equal(json_string_value(tok), json_string_length(tok),
                           want)) {
        c->authed = true;
        conn_handshake_done(c);
        log_info("%s: authenticated", c->peer);
        conn_reply_result(c, req->id, json_true());
        return;
    }
    c->auth_failures++;
    log_warn("%s: sys.auth with a wrong token (%u of %d)", c->peer,
             c->auth_failures, AUTH_MAX_FAILURES);
    rpc_fail(&err, RPC_UNAUTHORIZED, "not authenticated: wrong token");
    conn_reply_error(c, req->id, &err);
    if (c->auth_failures >= AUTH_MAX_FAILURES) {
        log_warn("%s: closing after %d wrong tokens", c->peer,
                 AUTH_MAX_FAILURES);
        c->closing = true;
        c->flush_first = true; /* the client reads why */
    }
}

/* sys.gateways: each gateway's health, calls and limits. */
static void method_gateways(struct methods *m, struct conn *c,
                            struct rpc_request *req)
{
    json_t *r = gateways_json(m->gateways, calls_gateway_calls(m->calls),
                              calls_gateway_failovers(m->calls));
    if (r == NULL) {
        struct rpc_error err;
        rpc_fail(&err, RPC_INTERNAL_ERROR, "out of memory");
        conn_reply_error(c, req->id, &err);
        return;
    }
    conn_reply_result(c, req->id, r);
}

void methods_on_request(void *arg, struct conn *c, struct rpc_request *req)
{
    struct methods *m = arg;
    const char *name = req->method;
    struct rpc_error err;
    if (strcmp(name, "sys.auth") == 0) {
        method_auth(m, c, req);
        return;
    }
    /* A token read at every request, so a SIGHUP that sets one applies to
     * connections already open. */
    if (!c->authed && m->conf->auth_token[0] != '\0') {
        rpc_fail(&err, RPC_UNAUTHORIZED,
                 "not authenticated: call sys.auth with the token first");
        conn_reply_error(c, req->id, &err);
        return;
    }
    if (strcmp(name, "ext.notify_call.construct") == 0)
        method_construct(m, c, req);
    else if (strcmp(name, "ext.notify_call.exists") == 0)
        method_exists(m, c, req);
    else if (strcmp(name, "ext.notify_call.drop") == 0)
        method_drop(m, c, req);
    else if (strcmp(name, "sys.subscribe") == 0)
        replay_subscribe(c, req);
    else if (strcmp(name, "sys.ping") == 0)
        conn_reply_result(c, req->id, json_string("pong"));
    else if (strcmp(name, "sys.gateways") == 0)
        method_gateways(m, c, req);
    else {
        /* Cut on a character boundary: a split one would make the
         * whole reply unsendable (jansson refuses invalid UTF-8). */
        int n = (int)rpc_utf8_prefix(name, strlen(name), 200);
        rpc_fail(&err, RPC_METHOD_NOT_FOUND, "method not found: %.*s", n,
                 name);
        conn_reply_error(c, req->id, &err);
    }
}
