/* rpc: the JSON-RPC 2.0 wire format of contract §2. Line framing of a byte
 * stream, request parsing, and the reply, error and event lines. Pure code:
 * no sockets, so every rule is unit-tested. */
#ifndef CTID_RPC_H
#define CTID_RPC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Error codes of contract §2. */
enum {
    RPC_PARSE_ERROR = -32700,
    RPC_INVALID_REQUEST = -32600,
    RPC_METHOD_NOT_FOUND = -32601,
    RPC_INVALID_PARAMS = -32602,
    RPC_INTERNAL_ERROR = -32603,
    RPC_UNAUTHORIZED = 401,
    RPC_NOT_FOUND = 404,
    RPC_UNAVAILABLE = 503,
};

/* An error on its way to becoming an error reply. */
struct rpc_error {
    int code;
    char message[256];
    char param[64];   /* the offending param's name, "" when none */
};

/* Sets err and returns -1, so validators can `return rpc_fail(...)`. The
 * message is cut at the first byte that is not part of a whole UTF-8
 * character (a client's text truncated by the buffer or a precision).
 * For -32602, a message "[invalid params: ]NAME: ..." or "...NAME[i]: ..."
 * names the param: NAME ([A-Za-z0-9_]+) goes into err->param, so every
 * validator's refusal carries it without each one saying it twice. */
int rpc_fail(struct rpc_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The longest prefix of s (len bytes) that is at most max bytes and made
 * of whole, well-formed UTF-8 characters: where to cut client text that
 * goes into a JSON string (jansson refuses a split character). */
size_t rpc_utf8_prefix(const char *s, size_t len, size_t max);

/* Splits a byte stream into lines. Owned by one connection. */
struct rpc_framer {
    char *buf;        /* bytes of the current, incomplete line */
    size_t len;
    size_t cap;
    size_t max_line;  /* longest line accepted, without its '\n' */
    bool discarding;  /* inside an oversize line: drop up to its '\n' */
};

/* Called with each complete line: '\n' and a trailing '\r' removed,
 * NUL-terminated, never blank. Must not free the framer. */
typedef void (*rpc_line_fn)(void *arg, char *line, size_t len);
/* Called once per line longer than max_line. */
typedef void (*rpc_oversize_fn)(void *arg);

void rpc_framer_init(struct rpc_framer *f, size_t max_line);
void rpc_framer_free(struct rpc_framer *f);
/* Returns 0, or -1 if out of memory (the connection should be closed). */
int rpc_framer_feed(struct rpc_framer *f, const char *data, size_t len,
                    rpc_line_fn on_line, rpc_oversize_fn on_oversize,
                    void *arg);

/* A parsed request. */
struct rpc_request {
    json_t *root;       /* owns everything below */
    json_t *id;         /* NULL: a notification, nothing is replied */
    const char *method;
    json_t *params;     /* object, array, or NULL when absent */
};

/* Returns 0, or -1 with err (-32700 or -32600). On -1, *id_out is the
 * request's id if one could be read (a new reference) or NULL. */
int rpc_parse_request(const char *line, size_t len, struct rpc_request *req,
                      json_t **id_out, struct rpc_error *err);
void rpc_request_free(struct rpc_request *req);

/* A param by name (object params; keys compare with surrounding white
 * space trimmed, so "appid " matches appid) or by position (array params).
 * Borrowed; NULL when absent. An explicit JSON null is returned as such. */
json_t *rpc_param(json_t *params, const char *name, size_t position);

/* Reply and event lines, '\n'-terminated, malloc'ed; *len excludes the
 * NUL. id may be NULL (written as null). rpc_result steals result. */
char *rpc_result_line(json_t *id, json_t *result, size_t *len);
/* The error object carries "data": {"ipsc_info": {"node_id": node_id}}
 * (contract §2's error shape), plus "param" when err->param is set. */
char *rpc_error_line(json_t *id, const struct rpc_error *err,
                     const char *node_id, size_t *len);
/* Steals params. */
char *rpc_event_line(const char *method, json_t *params, size_t *len);

#endif
