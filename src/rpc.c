/* rpc: the JSON-RPC 2.0 wire format of contract §2. Owns the line framer
 * (bytes in, complete lines out, oversize lines dropped), request parsing
 * and validation, param lookup, and the serialisation of reply, error and
 * event lines. No sockets and no state beyond what the caller passes in. */
#include "rpc.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Line buffers start small: most requests are a few hundred bytes, while
 * max_line is typically 64 KiB. */
#define RPC_FRAMER_MIN_CAP 256

/* Length of one well-formed UTF-8 character at s (at most n bytes
 * available), or 0 when the bytes there are not one (a stray continuation
 * byte, an overlong form, a surrogate, past U+10FFFF, or a sequence cut
 * short). */
static size_t rpc_utf8_char(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t want;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        want = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        want = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        want = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < want || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < want; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return want;
}

size_t rpc_utf8_prefix(const char *s, size_t len, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    if (max > len)
        max = len;
    while (i < max) {
        size_t k = rpc_utf8_char(u + i, len - i);
        if (k == 0 || i + k > max)
            break;
        i += k;
    }
    return i;
}

int rpc_fail(struct rpc_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    /* The message becomes a JSON string, and jansson refuses invalid
     * UTF-8: whatever cut a client's text (the buffer's size, a %.Ns
     * precision), the message ends at the last whole character before
     * anything that is not one, so the error reply always goes out. */
    size_t len = strlen(err->message);
    err->message[rpc_utf8_prefix(err->message, len, len)] = '\0';
    /* "[invalid params: ]NAME: ..." or "...NAME[i]: ..." names a param. */
    static const char prefix[] = "invalid params: ";
    size_t n = 0;
    if (code == RPC_INVALID_PARAMS) {
        const char *name = err->message;
        if (strncmp(name, prefix, sizeof prefix - 1) == 0)
            name += sizeof prefix - 1;
        while (n + 1 < sizeof err->param
               && (isalnum((unsigned char)name[n]) || name[n] == '_'))
            n++;
        if (n > 0 && (name[n] == ':' || name[n] == '['))
            memcpy(err->param, name, n);
        else
            n = 0;
    }
    err->param[n] = '\0';
    return -1;
}

/* ---- framing ---------------------------------------------------------- */

void rpc_framer_init(struct rpc_framer *f, size_t max_line)
{
    memset(f, 0, sizeof *f);
    f->max_line = max_line;
}

void rpc_framer_free(struct rpc_framer *f)
{
    free(f->buf);
    rpc_framer_init(f, f->max_line);
}

static int rpc_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f'
           || c == '\v';
}

static int rpc_is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!rpc_is_space(s[i]))
            return 0;
    return 1;
}

/* Appends to the current line. The caller has checked that the line stays
 * within max_line, so the buffer never exceeds max_line + 1 (the NUL). */
static int rpc_framer_append(struct rpc_framer *f, const char *data,
                             size_t len)
{
    size_t need = f->len + len + 1;
    if (need > f->cap) {
        size_t cap = f->cap ? f->cap * 2 : RPC_FRAMER_MIN_CAP;
        if (cap < need)
            cap = need;
        if (cap > f->max_line + 1)
            cap = f->max_line + 1;
        char *buf = realloc(f->buf, cap);
        if (buf == NULL)
            return -1;
        f->buf = buf;
        f->cap = cap;
    }
    memcpy(f->buf + f->len, data, len);
    f->len += len;
    return 0;
}

/* The current line is complete: hand it out unless blank, then reset. */
static void rpc_framer_emit(struct rpc_framer *f, rpc_line_fn on_line,
                            void *arg)
{
    size_t len = f->len;
    f->len = 0;
    if (len == 0)
        return;  /* an empty line may not even have a buffer yet */
    if (f->buf[len - 1] == '\r')
        len--;
    f->buf[len] = '\0';
    if (!rpc_is_blank(f->buf, len))
        on_line(arg, f->buf, len);
}

int rpc_framer_feed(struct rpc_framer *f, const char *data, size_t len,
                    rpc_line_fn on_line, rpc_oversize_fn on_oversize,
                    void *arg)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t chunk = nl ? (size_t)(nl - data) : len;

        if (f->discarding) {
            f->discarding = nl == NULL;
        } else if (chunk > f->max_line - f->len) {
            /* Reported as soon as it is known, not when the '\n' finally
             * arrives: a client may never send it. */
            f->len = 0;
            f->discarding = nl == NULL;
            on_oversize(arg);
        } else {
            if (rpc_framer_append(f, data, chunk) < 0)
                return -1;
            if (nl)
                rpc_framer_emit(f, on_line, arg);
        }
        if (nl == NULL)
            break;
        data += chunk + 1;
        len -= chunk + 1;
    }
    return 0;
}

/* ---- requests --------------------------------------------------------- */

/* Returns why root is not a valid request, or NULL when it is. */
static const char *rpc_check_request(json_t *root)
{
    json_t *v = json_object_get(root, "jsonrpc");
    if (v && !(json_is_string(v) && strcmp(json_string_value(v), "2.0") == 0))
        return "jsonrpc must be \"2.0\"";
    if (!json_is_string(json_object_get(root, "method")))
        return "method must be a string";
    v = json_object_get(root, "params");
    if (v && !json_is_null(v) && !json_is_object(v) && !json_is_array(v))
        return "params must be an object or an array";
    return NULL;
}

int rpc_parse_request(const char *line, size_t len, struct rpc_request *req,
                      json_t **id_out, struct rpc_error *err)
{
    memset(req, 0, sizeof *req);
    *id_out = NULL;

    /* JSON text never contains a raw NUL; refused here rather than left to
     * how jansson's lexer happens to treat one. */
    if (memchr(line, '\0', len) != NULL)
        return rpc_fail(err, RPC_PARSE_ERROR, "parse error");
    /* DECODE_ANY so that valid JSON which is not an object is reported as
     * an invalid request, not as a parse error. */
    json_error_t jerr;
    json_t *root = json_loadb(line, len, JSON_DECODE_ANY, &jerr);
    if (root == NULL)
        return rpc_fail(err, RPC_PARSE_ERROR, "parse error");
    if (!json_is_object(root)) {
        json_decref(root);
        return rpc_fail(err, RPC_INVALID_REQUEST,
                        "invalid request: not an object");
    }

    json_t *id = json_object_get(root, "id");
    if (id && !json_is_string(id) && !json_is_number(id) && !json_is_null(id)) {
        json_decref(root);
        return rpc_fail(err, RPC_INVALID_REQUEST,
                        "invalid request: id must be a string, a number or "
                        "null");
    }
    const char *why = rpc_check_request(root);
    if (why != NULL) {
        *id_out = json_incref(id);
        json_decref(root);
        return rpc_fail(err, RPC_INVALID_REQUEST, "invalid request: %s", why);
    }

    json_t *params = json_object_get(root, "params");
    req->root = root;
    req->id = id;  /* an explicit null stays the null object: not a
                      notification */
    req->method = json_string_value(json_object_get(root, "method"));
    req->params = json_is_null(params) ? NULL : params;
    return 0;
}

void rpc_request_free(struct rpc_request *req)
{
    json_decref(req->root);
    memset(req, 0, sizeof *req);
}

/* Does key equal name once surrounding white space is ignored? */
static int rpc_key_matches(const char *key, const char *name)
{
    size_t n = strlen(name);
    while (rpc_is_space(*key))
        key++;
    if (strncmp(key, name, n) != 0)
        return 0;
    for (key += n; *key != '\0'; key++)
        if (!rpc_is_space(*key))
            return 0;
    return 1;
}

json_t *rpc_param(json_t *params, const char *name, size_t position)
{
    if (json_is_array(params))
        return json_array_get(params, position);
    if (!json_is_object(params))
        return NULL;

    json_t *v = json_object_get(params, name);
    if (v != NULL)
        return v;
    const char *key;
    json_object_foreach(params, key, v)
        if (rpc_key_matches(key, name))
            return v;
    return NULL;
}

/* ---- output lines ----------------------------------------------------- */

/* Serialises obj (consumed) into a malloc'ed, '\n'-terminated line. Dumped
 * into our own buffer so that the caller frees it with plain free(), whatever
 * allocator jansson was given. */
static char *rpc_dump_line(json_t *obj, size_t *len)
{
    const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
    char *line = NULL;

    size_t n = obj ? json_dumpb(obj, NULL, 0, flags) : 0;
    if (n > 0 && (line = malloc(n + 2)) != NULL) {
        json_dumpb(obj, line, n, flags);
        line[n] = '\n';
        line[n + 1] = '\0';
        *len = n + 1;
    }
    json_decref(obj);
    return line;
}

/* {"jsonrpc":"2.0", <key>: <value>}: the common head of every line. */
static json_t *rpc_envelope(const char *key, json_t *value)
{
    json_t *obj = json_object();
    if (obj == NULL || json_object_set_new(obj, "jsonrpc", json_string("2.0"))
        || json_object_set(obj, key, value)) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

char *rpc_result_line(json_t *id, json_t *result, size_t *len)
{
    json_t *obj = rpc_envelope("id", id ? id : json_null());
    if (obj && json_object_set(obj, "result", result ? result : json_null())) {
        json_decref(obj);
        obj = NULL;
    }
    json_decref(result);
    return rpc_dump_line(obj, len);
}

char *rpc_error_line(json_t *id, const struct rpc_error *err,
                     const char *node_id, size_t *len)
{
    json_t *obj = rpc_envelope("id", id ? id : json_null());
    json_t *data = json_pack("{s:{s:s}}", "ipsc_info", "node_id",
                             node_id ? node_id : "");
    if (data && err->param[0]
        && json_object_set_new(data, "param", json_string(err->param))) {
        json_decref(data);
        data = NULL;
    }
    json_t *error = data == NULL ? NULL
                    : json_pack("{s:i,s:s,s:o}", "code", err->code,
                                "message", err->message, "data", data);
    if (obj && (error == NULL || json_object_set(obj, "error", error))) {
        json_decref(obj);
        obj = NULL;
    }
    json_decref(error);
    return rpc_dump_line(obj, len);
}

char *rpc_event_line(const char *method, json_t *params, size_t *len)
{
    json_t *name = json_string(method);
    json_t *obj = name ? rpc_envelope("method", name) : NULL;
    if (obj && json_object_set(obj, "params", params ? params : json_null())) {
        json_decref(obj);
        obj = NULL;
    }
    json_decref(name);
    json_decref(params);
    return rpc_dump_line(obj, len);
}
