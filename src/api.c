/* api: the params of the contract's methods (§3, §7). Checks every param of
 * construct and turns it into C values, so that nothing past this point
 * deals with JSON or with a bad value; formats and reads res_ids. Every
 * refusal is -32602 with a message naming the param. Also parses issue
 * 14's keys, progress and request_key (only request_key is acted on so
 * far, by methods.c). */
#include "api.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jnum.h"

#define API_MAX_REPEAT 100
#define API_MAX_RING 3600
#define API_MAX_USER_DATA 4096
#define API_RES_ID_INFIX "-ext.notify_call-"
/* The params of issue 14 are named only: no position in array params. */
#define API_NAMED_ONLY ((size_t)-1)

static int api_bad(struct rpc_error *err, const char *param, const char *why)
{
    return rpc_fail(err, RPC_INVALID_PARAMS, "invalid params: %s: %s", param,
                    why);
}

/* Absent and null are the same to every optional param. */
static int api_absent(json_t *v)
{
    return v == NULL || json_is_null(v);
}

/* from_uri "" is how the original's clients say "no caller number". */
static int api_from_absent(json_t *v)
{
    return api_absent(v) || (json_is_string(v) && json_string_length(v) == 0);
}

/* A caller number without '@', such as "1001" or "+8613800000000": it is a
 * user, never a host, as the line supplies the host of the From. */
static int api_parse_from_user(const char *s, struct uri *u,
                               struct rpc_error *err)
{
    if (strncasecmp(s, "sip:", 4) == 0)
        s += 4;
    if (s[0] == '\0')
        return api_bad(err, "from_uri", "empty");
    size_t len = strlen(s);
    if (len >= sizeof u->user)
        return api_bad(err, "from_uri", "user too long");
    if (!uri_user_valid(s))
        return api_bad(err, "from_uri", "invalid character in user");
    memcpy(u->user, s, len + 1);
    return 0;
}

static int api_parse_from(json_t *v, struct api_construct *out,
                          struct rpc_error *err)
{
    if (api_from_absent(v))
        return 0;
    if (!json_is_string(v))
        return api_bad(err, "from_uri", "must be a string or null");

    const char *s = json_string_value(v);
    out->from_given = true;
    if (strcasecmp(s, "anonymous") == 0) {
        out->from_anonymous = true;
        return 0;
    }
    if (strchr(s, '@') == NULL)
        return api_parse_from_user(s, &out->from, err);
    char why[128];
    if (uri_parse(s, &out->from, why, sizeof why) < 0)
        return api_bad(err, "from_uri", why);
    return 0;
}

/* One to_uri entry. The user may be empty: "192.168.5.10:5060" dials the
 * gateway itself (contract §6). */
static int api_parse_to_one(json_t *v, const char *label, struct uri *u,
                            struct rpc_error *err)
{
    if (!json_is_string(v))
        return api_bad(err, label, "must be a string");
    char why[128];
    if (uri_parse(json_string_value(v), u, why, sizeof why) < 0)
        return api_bad(err, label, why);
    return 0;
}

static int api_parse_to(json_t *v, struct api_construct *out,
                        struct rpc_error *err)
{
    if (api_absent(v))
        return api_bad(err, "to_uri", "missing");
    if (json_is_string(v)) {
        out->n_to = 1;
        return api_parse_to_one(v, "to_uri", &out->to[0], err);
    }
    if (!json_is_array(v))
        return api_bad(err, "to_uri", "must be a string or an array of "
                       "strings");

    size_t n = json_array_size(v);
    if (n == 0)
        return api_bad(err, "to_uri", "empty array");
    if (n > API_MAX_TO_URIS)
        return rpc_fail(err, RPC_INVALID_PARAMS, "invalid params: to_uri: "
                        "more than %d entries", API_MAX_TO_URIS);
    for (size_t i = 0; i < n; i++) {
        char label[32];
        snprintf(label, sizeof label, "to_uri[%zu]", i);
        if (api_parse_to_one(json_array_get(v, i), label, &out->to[i],
                             err) < 0)
            return -1;
    }
    out->n_to = n;
    return 0;
}

/* An optional integer param in [min, max], given as the original's
 * clients give it: a number or a string of digits (jnum_int's forms). */
static int api_parse_uint(json_t *v, const char *name, json_int_t min,
                          json_int_t max, unsigned dflt, unsigned *out,
                          struct rpc_error *err)
{
    if (api_absent(v)) {
        *out = dflt;
        return 0;
    }
    json_int_t n = 0;
    enum jnum_result r = jnum_int(v, &n);
    if (r == JNUM_NOT_INT)
        return api_bad(err, name, "must be an integer");
    if (r == JNUM_RANGE || n < min || n > max)
        return rpc_fail(err, RPC_INVALID_PARAMS, "invalid params: %s: must "
                        "be between %" JSON_INTEGER_FORMAT " and %"
                        JSON_INTEGER_FORMAT, name, min, max);
    *out = (unsigned)n;
    return 0;
}

/* Any JSON value; its bound is on a string's bytes (as before issue 12)
 * or, for any other value, on its compact JSON text. */
static int api_parse_user_data(json_t *v, char **out, struct rpc_error *err)
{
    if (api_absent(v))
        return 0;
    if (json_is_string(v) && json_string_length(v) > API_MAX_USER_DATA)
        return rpc_fail(err, RPC_INVALID_PARAMS, "invalid params: user_data: "
                        "longer than %d bytes", API_MAX_USER_DATA);
    *out = user_data_text(v);
    if (*out == NULL)
        return rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory");
    if (!json_is_string(v) && strlen(*out) > API_MAX_USER_DATA) {
        free(*out);
        *out = NULL;
        return rpc_fail(err, RPC_INVALID_PARAMS, "invalid params: user_data: "
                        "JSON text longer than %d bytes", API_MAX_USER_DATA);
    }
    return 0;
}

/* ---- issue 14: keys, progress, request_key ---------------------------- */

/* A refusal inside keys names the field in its message; the param is
 * "keys" (rpc_fail reads no param from "keys.max"). */
static int api_keys_param(struct rpc_error *err)
{
    snprintf(err->param, sizeof err->param, "keys");
    return -1;
}

static int api_keys_bad(struct rpc_error *err, const char *field,
                        const char *why)
{
    rpc_fail(err, RPC_INVALID_PARAMS, "invalid params: keys.%s: %s", field,
             why);
    return api_keys_param(err);
}

/* An optional bool: true or false; absent and null are dflt. */
static int api_parse_bool(json_t *v, bool dflt, bool *out)
{
    if (api_absent(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean(v))
        return -1;
    *out = json_is_true(v);
    return 0;
}

/* keys.end: one key, a-d read as A-D. */
static int api_parse_keys_end(json_t *v, char *out, struct rpc_error *err)
{
    if (api_absent(v))
        return 0;
    const char *s = json_string_value(v);
    char c = s != NULL && json_string_length(v) == 1 ? s[0] : '\0';
    if (c >= 'a' && c <= 'd')
        c = (char)(c - 'a' + 'A');
    if (!keys_valid(c))
        return api_keys_bad(err, "end", "must be one key of 0-9 * # A-D");
    *out = c;
    return 0;
}

/* keys.then: a play_content, refused as play_content would be, under its
 * own name. */
static int api_parse_keys_then(json_t *v, struct api_keys *k,
                               struct rpc_error *err)
{
    if (api_absent(v))
        return 0;
    if (playlist_parse(v, &k->then, err) == 0) {
        k->rules.then = true;
        return 0;
    }
    static const char from[] = "invalid params: play_content";
    if (err->code != RPC_INVALID_PARAMS
        || strncmp(err->message, from, sizeof from - 1) != 0)
        return -1;
    struct rpc_error why = *err;
    rpc_fail(err, RPC_INVALID_PARAMS, "invalid params: keys.then%s",
             why.message + sizeof from - 1);
    return api_keys_param(err);
}

static int api_keys_known(json_t *keys, struct rpc_error *err)
{
    static const char *const known[] = {"max", "end", "stop_play",
                                        "wait_seconds", "then", "inband"};
    const char *name;
    json_t *v;
    json_object_foreach(keys, name, v) {
        size_t i = 0;
        while (i < sizeof known / sizeof known[0]
               && strcmp(name, known[i]) != 0)
            i++;
        if (i == sizeof known / sizeof known[0]) {
            rpc_fail(err, RPC_INVALID_PARAMS, "invalid params: keys: "
                     "unknown field \"%.40s\"", name);
            return api_keys_param(err);
        }
    }
    return 0;
}

static int api_parse_keys(json_t *v, struct api_construct *out,
                          struct rpc_error *err)
{
    if (api_absent(v))
        return 0;
    if (!json_is_object(v))
        return api_bad(err, "keys", "must be an object or null");
    if (api_keys_known(v, err) < 0)
        return -1;

    struct api_keys *k = &out->keys;
    keys_rules_default(&k->rules);
    if (api_parse_uint(json_object_get(v, "max"), "keys.max", 1, KEYS_MAX,
                       KEYS_DEFAULT_MAX, &k->rules.max, err) < 0
        || api_parse_uint(json_object_get(v, "wait_seconds"),
                          "keys.wait_seconds", 0, KEYS_MAX_WAIT,
                          KEYS_DEFAULT_WAIT, &k->rules.wait_seconds, err) < 0)
        return api_keys_param(err);
    if (api_parse_keys_end(json_object_get(v, "end"), &k->rules.end, err) < 0)
        return -1;
    if (api_parse_bool(json_object_get(v, "stop_play"), true,
                       &k->rules.stop_play) < 0)
        return api_keys_bad(err, "stop_play", "must be true or false");
    if (api_parse_bool(json_object_get(v, "inband"), false, &k->inband) < 0)
        return api_keys_bad(err, "inband", "must be true or false");
    if (api_parse_keys_then(json_object_get(v, "then"), k, err) < 0)
        return -1;
    out->has_keys = true;
    return 0;
}

static int api_parse_request_key(json_t *v, char *out, struct rpc_error *err)
{
    if (api_absent(v))
        return 0;
    if (!json_is_string(v))
        return api_bad(err, "request_key", "must be a string");
    size_t len = json_string_length(v);
    if (len == 0)
        return api_bad(err, "request_key", "empty");
    if (len > API_REQUEST_KEY_MAX)
        return rpc_fail(err, RPC_INVALID_PARAMS, "invalid params: "
                        "request_key: longer than %d bytes",
                        API_REQUEST_KEY_MAX);
    const char *s = json_string_value(v);
    if (memchr(s, '\0', len) != NULL)
        return api_bad(err, "request_key", "NUL in text");
    memcpy(out, s, len + 1);
    return 0;
}

/* The params of issue 14, all optional: absent, they leave out as the
 * params before them made it. */
static int api_parse_issue14(json_t *params, struct api_construct *out,
                             struct rpc_error *err)
{
    if (api_parse_keys(rpc_param(params, "keys", API_NAMED_ONLY), out,
                       err) < 0
        || api_parse_request_key(rpc_param(params, "request_key",
                                           API_NAMED_ONLY),
                                 out->request_key, err) < 0)
        return -1;
    if (api_parse_bool(rpc_param(params, "progress", API_NAMED_ONLY), false,
                       &out->progress) < 0)
        return api_bad(err, "progress", "must be true or false");
    return 0;
}

int api_parse_construct(json_t *params, unsigned default_max_ring,
                        struct api_construct *out, struct rpc_error *err)
{
    memset(out, 0, sizeof *out);

    if (api_parse_from(rpc_param(params, "from_uri", 0), out, err) < 0
        || api_parse_to(rpc_param(params, "to_uri", 1), out, err) < 0)
        return -1;

    json_t *play = rpc_param(params, "play_content", 2);
    if (api_absent(play))
        return api_bad(err, "play_content", "missing");
    if (playlist_parse(play, &out->playlist, err) < 0)
        return -1;

    if (api_parse_uint(rpc_param(params, "play_repeat", 3), "play_repeat", 0,
                       API_MAX_REPEAT, 1, &out->play_repeat, err) < 0
        || api_parse_uint(rpc_param(params, "max_ring_seconds", 4),
                          "max_ring_seconds", 1, API_MAX_RING,
                          default_max_ring, &out->max_ring_seconds, err) < 0
        || api_parse_user_data(rpc_param(params, "user_data", 5),
                               &out->user_data, err) < 0
        || api_parse_issue14(params, out, err) < 0)
        return -1;
    return 0;
}

void api_construct_free(struct api_construct *c)
{
    playlist_free(&c->playlist);
    playlist_free(&c->keys.then);
    free(c->user_data);
    c->user_data = NULL;
}

void api_format_res_id(const char *node_id, uint64_t process_id, char *buf,
                       size_t len)
{
    snprintf(buf, len, "%s" API_RES_ID_INFIX "%" PRIu64, node_id, process_id);
}

/* The process_id in res_id if it is one of this node's, else 0. Only the
 * form api_format_res_id writes is accepted: no sign, no leading zero, no
 * overflow, nothing after the digits. */
static uint64_t api_res_id_process(const char *res_id, const char *node_id)
{
    size_t n = strlen(node_id);
    size_t m = strlen(API_RES_ID_INFIX);
    if (strncmp(res_id, node_id, n) != 0
        || strncmp(res_id + n, API_RES_ID_INFIX, m) != 0)
        return 0;

    const char *p = res_id + n + m;
    if (*p == '0')
        return 0;
    uint64_t v = 0;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    return v;
}

int api_parse_res_id(json_t *params, const char *node_id,
                     uint64_t *process_id, struct rpc_error *err)
{
    json_t *v = rpc_param(params, "res_id", 0);
    *process_id = 0;
    if (v == NULL)
        return api_bad(err, "res_id", "missing");
    if (!json_is_string(v))
        return api_bad(err, "res_id", "must be a string");
    *process_id = api_res_id_process(json_string_value(v), node_id);
    return 0;
}
