/* Unit tests of rpc: line framing, request parsing, param lookup and the
 * exact reply, error and event lines. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "rpc.h"

/* ---- framing ---------------------------------------------------------- */

#define MAX_LINES 16

struct capture {
    char lines[MAX_LINES][128];
    size_t lens[MAX_LINES];
    size_t n;
    int oversize;
};

static void on_line(void *arg, char *line, size_t len)
{
    struct capture *c = arg;
    assert_true(c->n < MAX_LINES);
    assert_true(len < sizeof c->lines[0]);
    assert_int_equal(line[len], '\0');
    memcpy(c->lines[c->n], line, len + 1);
    c->lens[c->n++] = len;
}

static void on_oversize(void *arg)
{
    struct capture *c = arg;
    c->oversize++;
}

static void feed(struct rpc_framer *f, struct capture *c, const char *data,
                 size_t len)
{
    assert_int_equal(rpc_framer_feed(f, data, len, on_line, on_oversize, c),
                     0);
}

static void feed_str(struct rpc_framer *f, struct capture *c, const char *s)
{
    feed(f, c, s, strlen(s));
}

static const char stream[] =
    "{\"id\":1}\r\n\n  \t\r\n\r\n{\"id\":2}\nxyz\n";

static void assert_stream_lines(const struct capture *c)
{
    assert_int_equal(c->n, 3);
    assert_string_equal(c->lines[0], "{\"id\":1}");
    assert_int_equal(c->lens[0], 8);
    assert_string_equal(c->lines[1], "{\"id\":2}");
    assert_string_equal(c->lines[2], "xyz");
    assert_int_equal(c->lens[2], 3);
    assert_int_equal(c->oversize, 0);
}

static void test_framer_one_feed(void **state)
{
    (void)state;
    struct rpc_framer f;
    struct capture c = {0};
    rpc_framer_init(&f, 64);
    feed(&f, &c, stream, sizeof stream - 1);
    assert_stream_lines(&c);
    assert_int_equal(f.len, 0);
    rpc_framer_free(&f);
}

static void test_framer_split_everywhere(void **state)
{
    (void)state;
    size_t total = sizeof stream - 1;
    for (size_t cut = 0; cut <= total; cut++) {
        struct rpc_framer f;
        struct capture c = {0};
        rpc_framer_init(&f, 64);
        feed(&f, &c, stream, cut);
        feed(&f, &c, stream + cut, total - cut);
        assert_stream_lines(&c);
        rpc_framer_free(&f);
    }
}

static void test_framer_byte_by_byte(void **state)
{
    (void)state;
    struct rpc_framer f;
    struct capture c = {0};
    rpc_framer_init(&f, 64);
    for (size_t i = 0; i < sizeof stream - 1; i++)
        feed(&f, &c, stream + i, 1);
    assert_stream_lines(&c);
    rpc_framer_free(&f);
}

static void test_framer_partial_kept(void **state)
{
    (void)state;
    struct rpc_framer f;
    struct capture c = {0};
    rpc_framer_init(&f, 64);
    feed_str(&f, &c, "abc");
    assert_int_equal(c.n, 0);
    feed_str(&f, &c, "def");
    assert_int_equal(c.n, 0);
    feed_str(&f, &c, "\r");
    assert_int_equal(c.n, 0);
    feed_str(&f, &c, "\nghi");
    assert_int_equal(c.n, 1);
    assert_string_equal(c.lines[0], "abcdef");
    assert_int_equal(f.len, 3);
    rpc_framer_free(&f);
}

static void test_framer_only_one_cr_stripped(void **state)
{
    (void)state;
    struct rpc_framer f;
    struct capture c = {0};
    rpc_framer_init(&f, 64);
    feed_str(&f, &c, "a\r\r\n b \n");
    assert_int_equal(c.n, 2);
    assert_string_equal(c.lines[0], "a\r");
    assert_string_equal(c.lines[1], " b ");
    rpc_framer_free(&f);
}

static void test_framer_embedded_nul(void **state)
{
    (void)state;
    struct rpc_framer f;
    struct capture c = {0};
    rpc_framer_init(&f, 64);
    feed(&f, &c, "a\0b\n", 4);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.lens[0], 3);
    assert_memory_equal(c.lines[0], "a\0b", 4);
    rpc_framer_free(&f);
}

static void test_framer_exact_max_line(void **state)
{
    (void)state;
    struct rpc_framer f;
    struct capture c = {0};
    rpc_framer_init(&f, 8);
    feed_str(&f, &c, "12345678\n");
    assert_int_equal(c.n, 1);
    assert_int_equal(c.lens[0], 8);
    assert_int_equal(c.oversize, 0);
    /* The same, arriving in two parts. */
    feed_str(&f, &c, "abcdefgh");
    feed_str(&f, &c, "\n");
    assert_int_equal(c.n, 2);
    assert_string_equal(c.lines[1], "abcdefgh");
    assert_int_equal(c.oversize, 0);
    /* Never more than max_line + 1 bytes held. */
    assert_true(f.cap <= 9);
    rpc_framer_free(&f);
}

static void test_framer_max_line_plus_one(void **state)
{
    (void)state;
    struct rpc_framer f;
    struct capture c = {0};
    rpc_framer_init(&f, 8);
    feed_str(&f, &c, "123456789\nok\n");
    assert_int_equal(c.oversize, 1);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.lines[0], "ok");
    /* '\r' counts: max_line is everything before the '\n'. */
    feed_str(&f, &c, "12345678\r\n");
    assert_int_equal(c.oversize, 2);
    assert_int_equal(c.n, 1);
    rpc_framer_free(&f);
}

static void test_framer_oversize_across_feeds(void **state)
{
    (void)state;
    struct rpc_framer f;
    struct capture c = {0};
    rpc_framer_init(&f, 8);
    feed_str(&f, &c, "12345");
    assert_int_equal(c.oversize, 0);
    feed_str(&f, &c, "6789");
    assert_int_equal(c.oversize, 1);
    assert_true(f.discarding);
    feed_str(&f, &c, "more and more junk");
    feed_str(&f, &c, "still junk");
    assert_int_equal(c.oversize, 1);
    assert_int_equal(c.n, 0);
    feed_str(&f, &c, "end\r\nnext");
    assert_false(f.discarding);
    assert_int_equal(c.n, 0);
    feed_str(&f, &c, "\n");
    assert_int_equal(c.oversize, 1);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.lines[0], "next");
    assert_true(f.cap <= 9);
    rpc_framer_free(&f);
}

static void test_framer_several_oversize_in_one_feed(void **state)
{
    (void)state;
    struct rpc_framer f;
    struct capture c = {0};
    rpc_framer_init(&f, 4);
    feed_str(&f, &c, "aaaaaa\nb\ncccccccc\nd\n");
    assert_int_equal(c.oversize, 2);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.lines[0], "b");
    assert_string_equal(c.lines[1], "d");
    rpc_framer_free(&f);
}

/* ---- requests --------------------------------------------------------- */

static int parse(const char *line, struct rpc_request *req, json_t **id,
                 struct rpc_error *err)
{
    return rpc_parse_request(line, strlen(line), req, id, err);
}

static void assert_refused(const char *line, int code, const char *message)
{
    struct rpc_request req;
    struct rpc_error err;
    json_t *id = (json_t *)1;
    assert_int_equal(parse(line, &req, &id, &err), -1);
    assert_int_equal(err.code, code);
    assert_string_equal(err.message, message);
    assert_null(id);
    assert_null(req.root);
}

static void test_parse_not_json(void **state)
{
    (void)state;
    assert_refused("not json", RPC_PARSE_ERROR, "parse error");
    assert_refused("{\"id\":1,\"method\":\"m\"", RPC_PARSE_ERROR,
                   "parse error");
    assert_refused("{\"id\":1,\"method\":\"m\"} junk", RPC_PARSE_ERROR,
                   "parse error");
    assert_refused("{\"id\":1,\"method\":\"m\"}{}", RPC_PARSE_ERROR,
                   "parse error");

    struct rpc_request req;
    struct rpc_error err;
    json_t *id;
    const char nul[] = "{\"id\":1,\"method\":\"m\"}\0";
    assert_int_equal(rpc_parse_request(nul, sizeof nul - 1, &req, &id, &err),
                     -1);
    assert_int_equal(err.code, RPC_PARSE_ERROR);
    assert_null(id);
}

static void test_parse_not_object(void **state)
{
    (void)state;
    const char *msg = "invalid request: not an object";
    assert_refused("[1,2]", RPC_INVALID_REQUEST, msg);
    assert_refused("\"str\"", RPC_INVALID_REQUEST, msg);
    assert_refused("42", RPC_INVALID_REQUEST, msg);
    assert_refused("null", RPC_INVALID_REQUEST, msg);
}

static void test_parse_bad_id(void **state)
{
    (void)state;
    const char *msg = "invalid request: id must be a string, a number or "
                      "null";
    assert_refused("{\"id\":true,\"method\":\"m\"}", RPC_INVALID_REQUEST, msg);
    assert_refused("{\"id\":[1],\"method\":\"m\"}", RPC_INVALID_REQUEST, msg);
    assert_refused("{\"id\":{},\"method\":\"m\"}", RPC_INVALID_REQUEST, msg);
}

/* An invalid request whose id is readable hands the id back for the reply. */
static void assert_refused_with_id(const char *line, const char *message,
                                   json_t *want_id)
{
    struct rpc_request req;
    struct rpc_error err;
    json_t *id = NULL;
    assert_int_equal(parse(line, &req, &id, &err), -1);
    assert_int_equal(err.code, RPC_INVALID_REQUEST);
    assert_string_equal(err.message, message);
    assert_non_null(id);
    assert_true(json_equal(id, want_id));
    json_decref(id);
    json_decref(want_id);
}

static void test_parse_invalid_request(void **state)
{
    (void)state;
    assert_refused_with_id("{\"jsonrpc\":\"1.0\",\"id\":7,\"method\":\"m\"}",
                           "invalid request: jsonrpc must be \"2.0\"",
                           json_integer(7));
    assert_refused_with_id("{\"jsonrpc\":2.0,\"id\":\"a\",\"method\":\"m\"}",
                           "invalid request: jsonrpc must be \"2.0\"",
                           json_string("a"));
    assert_refused_with_id("{\"id\":\"a\"}",
                           "invalid request: method must be a string",
                           json_string("a"));
    assert_refused_with_id("{\"id\":1,\"method\":5}",
                           "invalid request: method must be a string",
                           json_integer(1));
    assert_refused_with_id("{\"id\":null,\"method\":null}",
                           "invalid request: method must be a string",
                           json_null());
    assert_refused_with_id("{\"id\":2,\"method\":\"m\",\"params\":5}",
                           "invalid request: params must be an object or an "
                           "array",
                           json_integer(2));
    assert_refused_with_id("{\"id\":2,\"method\":\"m\",\"params\":\"x\"}",
                           "invalid request: params must be an object or an "
                           "array",
                           json_integer(2));
    /* No id: nothing to hand back. */
    assert_refused("{\"method\":\"m\",\"params\":true}", RPC_INVALID_REQUEST,
                   "invalid request: params must be an object or an array");
}

static void test_parse_notification(void **state)
{
    (void)state;
    struct rpc_request req;
    struct rpc_error err;
    json_t *id;
    assert_int_equal(parse("{\"method\":\"sys.ping\"}", &req, &id, &err), 0);
    assert_null(req.id);
    assert_null(req.params);
    assert_string_equal(req.method, "sys.ping");
    rpc_request_free(&req);
    assert_null(req.root);
}

static void test_parse_id_null(void **state)
{
    (void)state;
    struct rpc_request req;
    struct rpc_error err;
    json_t *id;
    assert_int_equal(parse("{\"id\":null,\"method\":\"m\"}", &req, &id, &err),
                     0);
    assert_non_null(req.id);
    assert_true(json_is_null(req.id));
    rpc_request_free(&req);
}

static void test_parse_ids(void **state)
{
    (void)state;
    struct rpc_request req;
    struct rpc_error err;
    json_t *id;
    assert_int_equal(parse("{\"id\":\"abc\",\"method\":\"m\"}", &req, &id,
                           &err), 0);
    assert_string_equal(json_string_value(req.id), "abc");
    rpc_request_free(&req);
    assert_int_equal(parse("{\"id\":1.5,\"method\":\"m\"}", &req, &id, &err),
                     0);
    assert_true(json_is_real(req.id));
    rpc_request_free(&req);
}

static void test_parse_params(void **state)
{
    (void)state;
    struct rpc_request req;
    struct rpc_error err;
    json_t *id;

    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"m\","
                           "\"params\":{\"a\":1}}", &req, &id, &err), 0);
    assert_int_equal(json_integer_value(req.id), 3);
    assert_true(json_is_object(req.params));
    assert_int_equal(json_integer_value(rpc_param(req.params, "a", 0)), 1);
    rpc_request_free(&req);

    assert_int_equal(parse("{\"id\":3,\"method\":\"m\",\"params\":[\"x\",2]}",
                           &req, &id, &err), 0);
    assert_true(json_is_array(req.params));
    assert_int_equal(json_integer_value(rpc_param(req.params, "b", 1)), 2);
    rpc_request_free(&req);

    assert_int_equal(parse("{\"id\":3,\"method\":\"m\",\"params\":null}",
                           &req, &id, &err), 0);
    assert_null(req.params);
    rpc_request_free(&req);
}

static void test_param_lookup(void **state)
{
    (void)state;
    json_t *p = json_loads("{\"appid \":\"a\",\" to_uri\\t\":\"b\","
                           "\"from_uri\":\"c\",\"from_urix\":\"d\","
                           "\"n\":null}", 0, NULL);
    assert_non_null(p);
    assert_string_equal(json_string_value(rpc_param(p, "appid", 9)), "a");
    assert_string_equal(json_string_value(rpc_param(p, "to_uri", 0)), "b");
    assert_string_equal(json_string_value(rpc_param(p, "from_uri", 0)), "c");
    assert_null(rpc_param(p, "from_ur", 0));
    assert_null(rpc_param(p, "ppid", 0));
    assert_null(rpc_param(p, "missing", 0));
    assert_true(json_is_null(rpc_param(p, "n", 0)));
    json_decref(p);

    /* An exact key wins over one that only matches once trimmed. */
    p = json_loads("{\" a\":1,\"a\":2}", 0, NULL);
    assert_int_equal(json_integer_value(rpc_param(p, "a", 0)), 2);
    json_decref(p);

    p = json_loads("[1,null]", 0, NULL);
    assert_int_equal(json_integer_value(rpc_param(p, "x", 0)), 1);
    assert_true(json_is_null(rpc_param(p, "x", 1)));
    assert_null(rpc_param(p, "x", 2));
    json_decref(p);

    assert_null(rpc_param(NULL, "x", 0));
}

/* ---- output lines ----------------------------------------------------- */

/* len by address: it is written by the call that makes line, an argument
 * of the same call. */
static void assert_line(char *line, const size_t *len, const char *want)
{
    assert_non_null(line);
    assert_string_equal(line, want);
    assert_int_equal(*len, strlen(want));
    free(line);
}

static void test_result_line(void **state)
{
    (void)state;
    size_t len = 0;
    json_t *id = json_integer(1);
    assert_line(rpc_result_line(id, json_string("pong"), &len), &len,
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"pong\"}\n");
    /* id is borrowed: still ours. */
    assert_int_equal(id->refcount, 1);
    json_decref(id);

    assert_line(rpc_result_line(NULL, json_true(), &len), &len,
                "{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":true}\n");

    id = json_string("x");
    json_t *result = json_pack("{s:s,s:{s:I}}", "res_id", "r",
                               "ipsc_info", "process_id", (json_int_t)42);
    assert_line(rpc_result_line(id, result, &len), &len,
                "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"result\":{\"res_id\":"
                "\"r\",\"ipsc_info\":{\"process_id\":42}}}\n");
    json_decref(id);
}

static void test_error_line(void **state)
{
    (void)state;
    size_t len = 0;
    struct rpc_error err;
    assert_int_equal(rpc_fail(&err, RPC_PARSE_ERROR, "parse error"), -1);
    assert_string_equal(err.param, "");
    assert_line(rpc_error_line(NULL, &err, "1.2.3", &len), &len,
                "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,"
                "\"message\":\"parse error\",\"data\":{\"ipsc_info\":"
                "{\"node_id\":\"1.2.3\"}}}}\n");

    json_t *id = json_integer(9);
    rpc_fail(&err, RPC_INVALID_PARAMS, "invalid params: %s: \"%d\"", "p", 3);
    assert_string_equal(err.param, "p");
    assert_line(rpc_error_line(id, &err, "0.0.0", &len), &len,
                "{\"jsonrpc\":\"2.0\",\"id\":9,\"error\":{\"code\":-32602,"
                "\"message\":\"invalid params: p: \\\"3\\\"\",\"data\":"
                "{\"ipsc_info\":{\"node_id\":\"0.0.0\"},\"param\":\"p\"}}}\n");
    /* An item of a list names the list; another code names no param. */
    rpc_fail(&err, RPC_INVALID_PARAMS, "invalid params: play_content[2]: x");
    assert_string_equal(err.param, "play_content");
    rpc_fail(&err, RPC_INVALID_PARAMS, "play_content: x is outside");
    assert_string_equal(err.param, "play_content");
    rpc_fail(&err, RPC_INVALID_PARAMS, "type 10: NUL in text");
    assert_string_equal(err.param, "");
    rpc_fail(&err, RPC_NOT_FOUND, "invalid params: p: x");
    assert_string_equal(err.param, "");
    assert_int_equal(id->refcount, 1);
    json_decref(id);
}

static void test_event_line(void **state)
{
    (void)state;
    size_t len = 0;
    json_t *params = json_pack("{s:s,s:n,s:i}", "res_id", "0.0.0-x-1",
                               "error", "cause", 200);
    char *line = rpc_event_line("ext.notify_call.on_released", params, &len);
    assert_line(line, &len,
                "{\"jsonrpc\":\"2.0\",\"method\":\"ext.notify_call."
                "on_released\",\"params\":{\"res_id\":\"0.0.0-x-1\","
                "\"error\":null,\"cause\":200}}\n");
}

static void test_fail_truncates_utf8(void **state)
{
    (void)state;
    char text[301];
    for (size_t i = 0; i < 150; i++)
        memcpy(text + 2 * i, "\xc3\xa9", 2);  /* é */
    text[300] = '\0';
    struct rpc_error err;
    rpc_fail(&err, RPC_INTERNAL_ERROR, "%s", text);
    assert_int_equal(err.code, RPC_INTERNAL_ERROR);
    /* 255 bytes would end in half an é: cut back to 127 whole ones. */
    assert_int_equal(strlen(err.message), 254);
    size_t len;
    char *line = rpc_error_line(NULL, &err, "0.0.0", &len);
    assert_non_null(line);
    free(line);
}

/* Issue 10 bug 5: a %.Ns precision cut through a character (the method
 * name of "method not found") left half of it, jansson refused the
 * message, and the connection got no reply. */
static void test_fail_precision_cut_utf8(void **state)
{
    (void)state;
    char method[260];
    memset(method, 'a', 199);
    memcpy(method + 199, "\xe4\xb8\xad", 3); /* a 3-byte character at 199 */
    memset(method + 202, 'b', 50);
    method[252] = '\0';
    struct rpc_error err;
    rpc_fail(&err, RPC_METHOD_NOT_FOUND, "method not found: %.200s", method);
    /* "method not found: " and the 199 whole bytes, nothing of the cut
     * character. */
    assert_int_equal(strlen(err.message), 18 + 199);
    size_t len;
    json_t *id = json_integer(7);
    char *line = rpc_error_line(id, &err, "0.0.0", &len);
    json_decref(id);
    assert_non_null(line);
    assert_non_null(strstr(line, "-32601"));
    free(line);
    /* Invalid bytes anywhere end the message there, never the reply. */
    rpc_fail(&err, RPC_INVALID_PARAMS, "x%sy", "ab\xff\xfe");
    assert_string_equal(err.message, "xab");
}

static void test_utf8_prefix(void **state)
{
    (void)state;
    const char *s = "a\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80z"; /* a é 中 😀 z */
    size_t n = strlen(s); /* 11 */
    size_t want[] = {0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10, 11};
    for (size_t max = 0; max <= n; max++)
        assert_int_equal(rpc_utf8_prefix(s, n, max), want[max]);
    assert_int_equal(rpc_utf8_prefix(s, n, 1000), n);
    /* Not UTF-8: stops before the first bad byte. */
    assert_int_equal(rpc_utf8_prefix("ab\x80", 3, 3), 2);
    assert_int_equal(rpc_utf8_prefix("\xc0\xaf", 2, 2), 0);     /* overlong */
    assert_int_equal(rpc_utf8_prefix("\xed\xa0\x80", 3, 3), 0); /* surrogate */
    assert_int_equal(rpc_utf8_prefix("\xf4\x90\x80\x80", 4, 4), 0);
    assert_int_equal(rpc_utf8_prefix("x\xe4\xb8", 3, 3), 1);     /* cut short */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framer_one_feed),
        cmocka_unit_test(test_framer_split_everywhere),
        cmocka_unit_test(test_framer_byte_by_byte),
        cmocka_unit_test(test_framer_partial_kept),
        cmocka_unit_test(test_framer_only_one_cr_stripped),
        cmocka_unit_test(test_framer_embedded_nul),
        cmocka_unit_test(test_framer_exact_max_line),
        cmocka_unit_test(test_framer_max_line_plus_one),
        cmocka_unit_test(test_framer_oversize_across_feeds),
        cmocka_unit_test(test_framer_several_oversize_in_one_feed),
        cmocka_unit_test(test_parse_not_json),
        cmocka_unit_test(test_parse_not_object),
        cmocka_unit_test(test_parse_bad_id),
        cmocka_unit_test(test_parse_invalid_request),
        cmocka_unit_test(test_parse_notification),
        cmocka_unit_test(test_parse_id_null),
        cmocka_unit_test(test_parse_ids),
        cmocka_unit_test(test_parse_params),
        cmocka_unit_test(test_param_lookup),
        cmocka_unit_test(test_result_line),
        cmocka_unit_test(test_error_line),
        cmocka_unit_test(test_event_line),
        cmocka_unit_test(test_fail_truncates_utf8),
        cmocka_unit_test(test_fail_precision_cut_utf8),
        cmocka_unit_test(test_utf8_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
