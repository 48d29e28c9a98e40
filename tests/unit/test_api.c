/* Unit tests of api: construct params (contract §3) and res_ids. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "testutil.h"

#define DEFAULT_RING 50

/* Parses params, which must be accepted; the caller frees c. */
static void parse_ok(json_t *params, struct api_construct *c)
{
    struct rpc_error err;
    if (api_parse_construct(params, DEFAULT_RING, c, &err) != 0)
        fail_msg("refused: %d %s", err.code, err.message);
}

static void assert_refused_json(json_t *params, const char *message)
{
    struct api_construct c;
    struct rpc_error err;
    assert_int_equal(api_parse_construct(params, DEFAULT_RING, &c, &err), -1);
    assert_int_equal(err.code, RPC_INVALID_PARAMS);
    assert_string_equal(err.message, message);
    api_construct_free(&c);
}

static void assert_refused(const char *text, const char *message)
{
    json_t *v = tu_json(text);
    assert_refused_json(v, message);
    json_decref(v);
}

/* A minimal valid construct with one named param replaced or added. */
static json_t *with(const char *name, json_t *value)
{
    json_t *p = tu_json("{\"to_uri\":\"1@gw\",\"play_content\":\"a.wav\"}");
    if (value == NULL)
        json_object_del(p, name);
    else
        json_object_set_new(p, name, value);
    return p;
}

static void assert_refused_with(const char *name, json_t *value,
                                const char *message)
{
    json_t *p = with(name, value);
    assert_refused_json(p, message);
    json_decref(p);
}

static void test_named(void **state)
{
    (void)state;
    json_t *p = tu_json("{\"from_uri\":\"1001\","
                        "\"to_uri\":\"sip:13800000000@10.0.0.5:5060\","
                        "\"play_content\":\"hello.wav\",\"play_repeat\":0,"
                        "\"max_ring_seconds\":30,\"user_data\":\"ud\","
                        "\"appid \":\"x\",\"unknown\":[1,2,3]}");
    struct api_construct c;
    parse_ok(p, &c);
    assert_true(c.from_given);
    assert_false(c.from_anonymous);
    assert_string_equal(c.from.user, "1001");
    assert_string_equal(c.from.host, "");
    assert_int_equal(c.n_to, 1);
    assert_string_equal(c.to[0].user, "13800000000");
    assert_string_equal(c.to[0].host, "10.0.0.5");
    assert_int_equal(c.to[0].port, 5060);
    assert_int_equal(c.playlist.n, 1);
    assert_string_equal(c.playlist.items[0].content, "hello.wav");
    assert_int_equal(c.play_repeat, 0);
    assert_int_equal(c.max_ring_seconds, 30);
    assert_string_equal(c.user_data, "\"ud\"");
    api_construct_free(&c);
    assert_null(c.user_data);
    assert_int_equal(c.playlist.n, 0);
    json_decref(p);
}

static void test_named_trailing_space(void **state)
{
    (void)state;
    json_t *p = tu_json("{\" to_uri \":\"1@gw\",\"play_content \":\"a\","
                        "\"play_repeat \":3}");
    struct api_construct c;
    parse_ok(p, &c);
    assert_string_equal(c.to[0].user, "1");
    assert_int_equal(c.play_repeat, 3);
    api_construct_free(&c);
    json_decref(p);
}

static void test_positional(void **state)
{
    (void)state;
    json_t *p = tu_json("[null, [\"1@gw1\", \"2@gw2:5070\"],"
                        " [[\"a.wav\"], [\"b|c\", 7]], 2, 10, null]");
    struct api_construct c;
    parse_ok(p, &c);
    assert_false(c.from_given);
    assert_int_equal(c.n_to, 2);
    assert_string_equal(c.to[0].host, "gw1");
    assert_string_equal(c.to[1].user, "2");
    assert_int_equal(c.to[1].port, 5070);
    assert_int_equal(c.playlist.n, 2);
    assert_int_equal(c.playlist.items[1].type, PLAY_FILES);
    assert_int_equal(c.play_repeat, 2);
    assert_int_equal(c.max_ring_seconds, 10);
    assert_null(c.user_data);
    api_construct_free(&c);
    json_decref(p);

    p = tu_json("[\"anonymous\", \"1@gw\", \"a.wav\"]");
    parse_ok(p, &c);
    assert_true(c.from_anonymous);
    assert_int_equal(c.play_repeat, 1);
    api_construct_free(&c);
    json_decref(p);

    assert_refused("[null, \"1@gw\"]",
                   "invalid params: play_content: missing");
    assert_refused("[null, 5, \"a\"]", "invalid params: to_uri: must be a "
                                       "string or an array of strings");
    assert_refused("[\"1\", \"1@gw\", \"a\", \"2x\"]",
                   "invalid params: play_repeat: must be an integer");
}

static void test_defaults(void **state)
{
    (void)state;
    json_t *p = with("x", NULL);
    struct api_construct c;
    parse_ok(p, &c);
    assert_false(c.from_given);
    assert_false(c.from_anonymous);
    assert_int_equal(c.n_to, 1);
    assert_int_equal(c.play_repeat, 1);
    assert_int_equal(c.max_ring_seconds, DEFAULT_RING);
    assert_null(c.user_data);
    api_construct_free(&c);
    json_decref(p);

    /* Explicit nulls are defaults too. */
    p = tu_json("{\"from_uri\":null,\"to_uri\":\"1@gw\","
                "\"play_content\":\"a\",\"play_repeat\":null,"
                "\"max_ring_seconds\":null,"
                "\"user_data\":null}");
    struct rpc_error err;
    assert_int_equal(api_parse_construct(p, 7, &c, &err), 0);
    assert_false(c.from_given);
    assert_int_equal(c.play_repeat, 1);
    assert_int_equal(c.max_ring_seconds, 7);
    assert_null(c.user_data);
    api_construct_free(&c);
    json_decref(p);
}

static void test_from(void **state)
{
    (void)state;
    struct api_construct c;
    json_t *p;

    const char *anon[] = {"anonymous", "ANONYMOUS", "Anonymous"};
    for (size_t i = 0; i < 3; i++) {
        p = with("from_uri", json_string(anon[i]));
        parse_ok(p, &c);
        assert_true(c.from_given);
        assert_true(c.from_anonymous);
        api_construct_free(&c);
        json_decref(p);
    }

    p = with("from_uri", json_string("+8613800000000"));
    parse_ok(p, &c);
    assert_false(c.from_anonymous);
    assert_string_equal(c.from.user, "+8613800000000");
    assert_string_equal(c.from.host, "");
    api_construct_free(&c);
    json_decref(p);

    p = with("from_uri", json_string("sip:1001"));
    parse_ok(p, &c);
    assert_string_equal(c.from.user, "1001");
    assert_string_equal(c.from.host, "");
    api_construct_free(&c);
    json_decref(p);

    p = with("from_uri", json_string("sip:1001@10.0.0.1:5062"));
    parse_ok(p, &c);
    assert_string_equal(c.from.user, "1001");
    assert_string_equal(c.from.host, "10.0.0.1");
    assert_int_equal(c.from.port, 5062);
    api_construct_free(&c);
    json_decref(p);

    assert_refused_with("from_uri", json_string("sip:"),
                        "invalid params: from_uri: empty");
    assert_refused_with("from_uri", json_string("10 01"),
                        "invalid params: from_uri: invalid character in user");
    assert_refused_with("from_uri", json_string("1001\r\nX: y"),
                        "invalid params: from_uri: invalid character in user");
    assert_refused_with("from_uri", json_string("a@b@c"),
                        "invalid params: from_uri: more than one '@'");
    assert_refused_with("from_uri", json_string("<sip:1@h>"),
                        "invalid params: from_uri: invalid character in user");
    assert_refused_with("from_uri", json_string("1@h:0"),
                        "invalid params: from_uri: invalid port");
    assert_refused_with("from_uri", json_integer(1001),
                        "invalid params: from_uri: must be a string or null");
    assert_refused_with("from_uri", json_false(),
                        "invalid params: from_uri: must be a string or null");

    char user[200];
    memset(user, '1', 128);
    user[128] = '\0';
    assert_refused_with("from_uri", json_string(user),
                        "invalid params: from_uri: user too long");
    user[127] = '\0';
    p = with("from_uri", json_string(user));
    parse_ok(p, &c);
    assert_string_equal(c.from.user, user);
    api_construct_free(&c);
    json_decref(p);
}

static void test_to(void **state)
{
    (void)state;
    struct api_construct c;

    json_t *p = with("to_uri", json_string("192.168.5.10:5060"));
    parse_ok(p, &c);
    assert_int_equal(c.n_to, 1);
    assert_string_equal(c.to[0].user, "");
    assert_string_equal(c.to[0].host, "192.168.5.10");
    api_construct_free(&c);
    json_decref(p);

    json_t *many = json_array();
    for (int i = 0; i < API_MAX_TO_URIS; i++) {
        char uri[32];
        snprintf(uri, sizeof uri, "%d@gw%d", i, i);
        json_array_append_new(many, json_string(uri));
    }
    p = with("to_uri", json_incref(many));
    parse_ok(p, &c);
    assert_int_equal(c.n_to, API_MAX_TO_URIS);
    assert_string_equal(c.to[15].user, "15");
    assert_string_equal(c.to[15].host, "gw15");
    api_construct_free(&c);
    json_decref(p);
    json_array_append_new(many, json_string("16@gw"));
    assert_refused_with("to_uri", many,
                        "invalid params: to_uri: more than 16 entries");

    assert_refused_with("to_uri", NULL, "invalid params: to_uri: missing");
    assert_refused_with("to_uri", json_null(),
                        "invalid params: to_uri: missing");
    assert_refused_with("to_uri", json_array(),
                        "invalid params: to_uri: empty array");
    assert_refused_with("to_uri", json_true(), "invalid params: to_uri: must "
                        "be a string or an array of strings");
    assert_refused_with("to_uri", json_integer(13800000000),
                        "invalid params: to_uri: must be a string or an "
                        "array of strings");
    assert_refused_with("to_uri", json_pack("[s,i]", "1@h", 5),
                        "invalid params: to_uri[1]: must be a string");
    assert_refused_with("to_uri", json_pack("[s,s]", "1@h", "2@h;x=y"),
                        "invalid params: to_uri[1]: invalid host");
    assert_refused_with("to_uri", json_string("1@h;transport=tcp"),
                        "invalid params: to_uri: invalid host");
    assert_refused_with("to_uri", json_string("tel:123"),
                        "invalid params: to_uri: only sip: URIs are "
                        "supported");
    assert_refused_with("to_uri", json_string("1 @h"),
                        "invalid params: to_uri: invalid character in user");
    assert_refused_with("to_uri", json_string("1@h:65536"),
                        "invalid params: to_uri: invalid port");
    assert_refused_with("to_uri", json_string(""),
                        "invalid params: to_uri: empty host");
}

static void test_play_content(void **state)
{
    (void)state;
    assert_refused_with("play_content", NULL,
                        "invalid params: play_content: missing");
    assert_refused_with("play_content", json_null(),
                        "invalid params: play_content: missing");
    assert_refused_with("play_content", json_pack("[[s,i]]", "2024-13-01", 4),
                        "invalid params: play_content[0]: type 4: month 13 "
                        "out of range");
    assert_refused_with("play_content", json_pack("[[s,i]]", "x", 8),
                        "invalid params: play_content[0]: type 8 is not "
                        "supported");
    assert_refused_with("play_content", json_string("../x"),
                        "invalid params: play_content: invalid file name");
    assert_refused_with("play_content", json_integer(1),
                        "invalid params: play_content: must be a string or "
                        "an array");
}

/* play_repeat or max_ring_seconds set to value must give want. */
static void assert_int_param(const char *name, json_int_t value, unsigned want)
{
    json_t *p = with(name, json_integer(value));
    struct api_construct c;
    parse_ok(p, &c);
    unsigned got = strcmp(name, "play_repeat") == 0 ? c.play_repeat
                                                    : c.max_ring_seconds;
    assert_int_equal(got, want);
    api_construct_free(&c);
    json_decref(p);
}

static void test_play_repeat(void **state)
{
    (void)state;
    assert_int_param("play_repeat", 0, 0);
    assert_int_param("play_repeat", 100, 100);
    const char *type = "invalid params: play_repeat: must be an integer";
    const char *range = "invalid params: play_repeat: must be between 0 and "
                        "100";
    assert_refused_with("play_repeat", json_string("2.5"), type);
    assert_refused_with("play_repeat", json_true(), type);
    assert_refused_with("play_repeat", json_real(1.5), type);
    assert_refused_with("play_repeat", json_array(), type);
    assert_refused_with("play_repeat", json_integer(-1), range);
    assert_refused_with("play_repeat", json_integer(101), range);
    assert_refused_with("play_repeat", json_integer(4294967296), range);
}

static void test_max_ring_seconds(void **state)
{
    (void)state;
    assert_int_param("max_ring_seconds", 1, 1);
    assert_int_param("max_ring_seconds", 3600, 3600);
    const char *type = "invalid params: max_ring_seconds: must be an integer";
    const char *range = "invalid params: max_ring_seconds: must be between 1 "
                        "and 3600";
    assert_refused_with("max_ring_seconds", json_string("30s"), type);
    assert_refused_with("max_ring_seconds", json_false(), type);
    assert_refused_with("max_ring_seconds", json_real(30.5), type);
    assert_refused_with("max_ring_seconds", json_integer(0), range);
    assert_refused_with("max_ring_seconds", json_integer(-5), range);
    assert_refused_with("max_ring_seconds", json_integer(3601), range);
}

static void test_user_data(void **state)
{
    (void)state;
    struct api_construct c;
    json_t *p = with("user_data", json_string(""));
    parse_ok(p, &c);
    assert_non_null(c.user_data);
    assert_string_equal(c.user_data, "\"\"");
    api_construct_free(&c);
    json_decref(p);

    char *big = malloc(4098);
    assert_non_null(big);
    memset(big, 'u', 4097);
    big[4096] = '\0';
    p = with("user_data", json_string(big));
    parse_ok(p, &c);
    assert_int_equal(strlen(c.user_data), 4096 + 2); /* the quotes */
    api_construct_free(&c);
    json_decref(p);

    big[4096] = 'u';
    big[4097] = '\0';
    assert_refused_with("user_data", json_string(big),
                        "invalid params: user_data: longer than 4096 bytes");
    free(big);

    /* Issue 12: any JSON value, kept as its compact JSON text. */
    const char *texts[] = {"5", "{}", "true", "[1,\"a\",null]",
                           "{\"order\":42,\"tags\":[\"x\"]}", "1.5"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        p = with("user_data", json_loads(texts[i], JSON_DECODE_ANY, NULL));
        parse_ok(p, &c);
        assert_string_equal(c.user_data, texts[i]);
        json_t *v = user_data_value(c.user_data);
        assert_true(json_equal(v, json_object_get(p, "user_data")));
        json_decref(v);
        char *cdr = user_data_cdr(c.user_data);
        assert_string_equal(cdr, texts[i]);
        free(cdr);
        api_construct_free(&c);
        json_decref(p);
    }
    /* The bound on a non-string is its compact text: 4096 fits, 4097 not. */
    json_t *arr = json_array();
    for (int i = 0; i < 2048; i++)
        json_array_append_new(arr, json_integer(i % 10));
    /* "[" + 2048 digits + 2047 commas + "]" = 4097 bytes */
    assert_refused_with("user_data", json_incref(arr),
                        "invalid params: user_data: JSON text longer than "
                        "4096 bytes");
    json_array_remove(arr, 0);                   /* 4095 bytes */
    json_array_set_new(arr, 0, json_integer(10)); /* 4096 bytes */
    p = with("user_data", arr);
    parse_ok(p, &c);
    assert_int_equal(strlen(c.user_data), 4096);
    api_construct_free(&c);
    json_decref(p);

    /* A string: the value is the string, the CDR its bytes as before. */
    json_t *v = user_data_value("\"a,b \\\"c\\\"\"");
    assert_string_equal(json_string_value(v), "a,b \"c\"");
    json_decref(v);
    char *cdr = user_data_cdr("\"a,b \\\"c\\\"\"");
    assert_string_equal(cdr, "a,b \"c\"");
    free(cdr);
    v = user_data_value(NULL);
    assert_true(json_is_null(v));
    assert_null(user_data_cdr(NULL));
}

static void test_no_params(void **state)
{
    (void)state;
    struct api_construct c;
    struct rpc_error err;
    assert_int_equal(api_parse_construct(NULL, DEFAULT_RING, &c, &err), -1);
    assert_int_equal(err.code, RPC_INVALID_PARAMS);
    assert_string_equal(err.message, "invalid params: to_uri: missing");
    api_construct_free(&c);
    assert_refused("{}", "invalid params: to_uri: missing");
    assert_refused("[]", "invalid params: to_uri: missing");
}

/* A late refusal frees what earlier params allocated (ASan checks). */
static void test_late_refusal_frees(void **state)
{
    (void)state;
    assert_refused("{\"to_uri\":\"1@gw\",\"play_content\":[[\"a\"],[\"b\"]],"
                   "\"user_data\":\"x\",\"max_ring_seconds\":0}",
                   "invalid params: max_ring_seconds: must be between 1 and "
                   "3600");
}

/* ---- res_id ----------------------------------------------------------- */

static void test_res_id_format(void **state)
{
    (void)state;
    char buf[API_RES_ID_MAX];
    api_format_res_id("0.0.0", 1795527701000001ULL, buf, sizeof buf);
    assert_string_equal(buf, "0.0.0-ext.notify_call-1795527701000001");
    api_format_res_id("12.3.45", UINT64_MAX, buf, sizeof buf);
    assert_string_equal(buf, "12.3.45-ext.notify_call-18446744073709551615");
}

static uint64_t res_id_of(json_t *params, const char *node_id)
{
    uint64_t pid = 77;
    struct rpc_error err;
    assert_int_equal(api_parse_res_id(params, node_id, &pid, &err), 0);
    json_decref(params);
    return pid;
}

static void test_res_id_round_trip(void **state)
{
    (void)state;
    const uint64_t ids[] = {1, 42, 1795527701000001ULL, UINT64_MAX};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char buf[API_RES_ID_MAX];
        api_format_res_id("1.2.3", ids[i], buf, sizeof buf);
        assert_int_equal(res_id_of(json_pack("{s:s}", "res_id", buf), "1.2.3"),
                         ids[i]);
        assert_int_equal(res_id_of(json_pack("[s]", buf), "1.2.3"), ids[i]);
        assert_int_equal(res_id_of(json_pack("{s:s}", "res_id ", buf),
                                   "1.2.3"), ids[i]);
    }
}

static void test_res_id_foreign(void **state)
{
    (void)state;
    const char *foreign[] = {
        "1.2.3-ext.notify_call-5",      /* another node */
        "0.0-ext.notify_call-5",
        "0.0.0.0-ext.notify_call-5",
        "0.0.0-ext.duo_callback-5",     /* another resource */
        "0.0.0-ext.notify_call-",
        "0.0.0-ext.notify_call-0",
        "0.0.0-ext.notify_call-05",
        "0.0.0-ext.notify_call-+5",
        "0.0.0-ext.notify_call--5",
        "0.0.0-ext.notify_call-5 ",
        "0.0.0-ext.notify_call-5a",
        "0.0.0-ext.notify_call-18446744073709551616",
        "0.0.0-ext.notify_call-99999999999999999999",
        "",
        "5",
    };
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++)
        if (res_id_of(json_pack("[s]", foreign[i]), "0.0.0") != 0)
            fail_msg("\"%s\" accepted", foreign[i]);
}

static void assert_res_id_refused(json_t *params, const char *message)
{
    uint64_t pid = 77;
    struct rpc_error err;
    assert_int_equal(api_parse_res_id(params, "0.0.0", &pid, &err), -1);
    assert_int_equal(err.code, RPC_INVALID_PARAMS);
    assert_string_equal(err.message, message);
    assert_int_equal(pid, 0);
    json_decref(params);
}

static void test_res_id_refused(void **state)
{
    (void)state;
    const char *missing = "invalid params: res_id: missing";
    const char *type = "invalid params: res_id: must be a string";
    assert_res_id_refused(NULL, missing);
    assert_res_id_refused(json_object(), missing);
    assert_res_id_refused(json_array(), missing);
    assert_res_id_refused(json_pack("{s:s}", "resid", "x"), missing);
    assert_res_id_refused(json_pack("{s:n}", "res_id"), type);
    assert_res_id_refused(json_pack("{s:I}", "res_id", (json_int_t)5), type);
    assert_res_id_refused(json_pack("[i]", 1795527701), type);
    assert_res_id_refused(json_pack("[[s]]", "0.0.0-ext.notify_call-1"), type);
}

/* ---- issue 12: what the original's clients send ---- */

/* play_repeat or max_ring_seconds given as the JSON text value must give
 * want. */
static void assert_lenient_param(const char *name, const char *value,
                                 unsigned want)
{
    json_t *p = with(name, tu_json(value));
    struct api_construct c;
    parse_ok(p, &c);
    unsigned got = strcmp(name, "play_repeat") == 0 ? c.play_repeat
                                                    : c.max_ring_seconds;
    if (got != want)
        fail_msg("%s %s: got %u, expected %u", name, value, got, want);
    api_construct_free(&c);
    json_decref(p);
}

static void test_lenient_ints(void **state)
{
    (void)state;
    const struct {
        const char *value;
        unsigned want;
    } repeat[] = {
        {"\"1\"", 1}, {"\"0\"", 0}, {"\"100\"", 100}, {"\"007\"", 7},
        {"\" 1\"", 1}, {"\"1 \"", 1}, {"\"\\t2\\n\"", 2}, {"\"+1\"", 1},
        {"\"-0\"", 0}, {"\"+0\"", 0}, {"1.0", 1}, {"0.0", 0}, {"-0.0", 0},
        {"1e1", 10}, {"1E2", 100}, {"2.0e1", 20},
    };
    for (size_t i = 0; i < sizeof repeat / sizeof repeat[0]; i++)
        assert_lenient_param("play_repeat", repeat[i].value, repeat[i].want);
    assert_lenient_param("max_ring_seconds", "\"45\"", 45);
    assert_lenient_param("max_ring_seconds", "\"3600\"", 3600);
    assert_lenient_param("max_ring_seconds", "45.0", 45);
    assert_lenient_param("max_ring_seconds", "\" 45 \"", 45);

    const char *not_int[] = {
        "\"1.5\"", "\"x\"", "true", "false", "\"\"", "\" \"", "\"1e3\"",
        "\"1.0\"", "\"1_000\"", "\"0x10\"", "\"+\"", "\"-\"", "\"++1\"",
        "\"+-1\"", "\"1 2\"", "\"\\u0661\"", "1.5", "0.5",
        "[]", "{}", "[1]", "\"Infinity\"", "\"NaN\"", "\"\\u00a01\"",
    };
    char msg[128];
    for (int k = 0; k < 2; k++) {
        const char *name = k ? "max_ring_seconds" : "play_repeat";
        snprintf(msg, sizeof msg, "invalid params: %s: must be an integer",
                 name);
        for (size_t i = 0; i < sizeof not_int / sizeof not_int[0]; i++)
            assert_refused_with(name, tu_json(not_int[i]), msg);
    }
    const char *repeat_range = "invalid params: play_repeat: must be between "
                               "0 and 100";
    const char *ring_range = "invalid params: max_ring_seconds: must be "
                             "between 1 and 3600";
    const char *out[] = {
        "\"101\"", "\"-1\"", "\"99999999999999999999\"",
        "\"-99999999999999999999\"", "\"9223372036854775807\"",
        "\"9223372036854775808\"", "\"-9223372036854775808\"",
        "\"18446744073709551617\"", "1e3", "-1.0", "1e300", "-1e300",
        "9.3e18",
    };
    for (size_t i = 0; i < sizeof out / sizeof out[0]; i++)
        assert_refused_with("play_repeat", tu_json(out[i]), repeat_range);
    assert_refused_with("max_ring_seconds", tu_json("\"0\""), ring_range);
    assert_refused_with("max_ring_seconds", tu_json("\"-0\""), ring_range);
    assert_refused_with("max_ring_seconds", tu_json("\"3601\""), ring_range);
    assert_refused_with("max_ring_seconds", tu_json("0.0"), ring_range);
    assert_refused_with("max_ring_seconds",
                        tu_json("\"99999999999999999999\""), ring_range);
}

static void test_from_empty(void **state)
{
    (void)state;
    struct api_construct c;
    json_t *p = with("from_uri", json_string(""));
    parse_ok(p, &c);
    assert_false(c.from_given);
    assert_false(c.from_anonymous);
    api_construct_free(&c);
    json_decref(p);

    p = tu_json("[\"\", \"1@gw\", \"a.wav\"]");
    parse_ok(p, &c);
    assert_false(c.from_given);
    api_construct_free(&c);
    json_decref(p);

    /* Only the empty string: blanks and a bare scheme are still refused. */
    assert_refused_with("from_uri", json_string(" "),
                        "invalid params: from_uri: invalid character in user");
    assert_refused_with("from_uri", json_string("sip:"),
                        "invalid params: from_uri: empty");
}

/* A construct as the real client builds it: numbers as strings, an extra
 * key, a key with a trailing space, numeric contents, a string type. */
static void test_client_construct(void **state)
{
    (void)state;
    json_t *p = tu_json(
        "{\"from_uri\":\"\",\"to_uri\":\"13800000000@gw\","
        "\"play_content\":[[\"a.wav|b.wav\",7,\"\"],[1086.3,3,\"\"],"
        "[\"c.wav\",\"0\",\"\"],[13800000000,1,\"yao=1\"],[25,2],"
        "[0.05,6,\"\"]],"
        "\"play_repeat\":\"2\",\"max_ring_seconds\":\"45\","
        "\"user_data\":\"u\",\"areaId\":\"0571\",\"appid \":\"x\"}");
    struct api_construct c;
    parse_ok(p, &c);
    assert_false(c.from_given);
    assert_int_equal(c.play_repeat, 2);
    assert_int_equal(c.max_ring_seconds, 45);
    assert_int_equal(c.playlist.n, 6);
    assert_int_equal(c.playlist.items[0].type, PLAY_FILES);
    assert_int_equal(c.playlist.items[1].type, PLAY_MONEY);
    assert_string_equal(c.playlist.items[1].content, "1086.3");
    assert_int_equal(c.playlist.items[2].type, PLAY_FILE);
    assert_string_equal(c.playlist.items[2].content, "c.wav");
    assert_string_equal(c.playlist.items[3].content, "13800000000");
    assert_string_equal(c.playlist.items[3].options, "yao=1");
    assert_string_equal(c.playlist.items[4].content, "25");
    assert_int_equal(c.playlist.items[5].type, PLAY_MONEY_UNITS);
    assert_string_equal(c.playlist.items[5].content, "0.05");
    api_construct_free(&c);
    json_decref(p);
}

/* Issue 14's params absent (or null): the result is what it was before
 * them, field for field, and the new fields are zero. */
static void test_issue14_absent(void **state)
{
    (void)state;
    json_t *p = with("x", NULL);
    struct api_construct c;
    parse_ok(p, &c);
    assert_false(c.has_keys);
    assert_false(c.progress);
    assert_string_equal(c.request_key, "");
    assert_int_equal(c.keys.then.n, 0);
    struct api_keys zero;
    memset(&zero, 0, sizeof zero);
    assert_memory_equal(&c.keys, &zero, sizeof zero);
    api_construct_free(&c);
    json_decref(p);

    p = tu_json("{\"to_uri\":\"1@gw\",\"play_content\":\"a.wav\","
                "\"keys\":null,\"progress\":null,\"request_key\":null}");
    parse_ok(p, &c);
    assert_false(c.has_keys);
    assert_false(c.progress);
    assert_string_equal(c.request_key, "");
    assert_memory_equal(&c.keys, &zero, sizeof zero);
    api_construct_free(&c);
    json_decref(p);

    /* Positional params have no place for them: a seventh element is
     * ignored as before. */
    p = tu_json("[null,\"1@gw\",\"a.wav\",1,30,\"ud\",{\"max\":0},true]");
    parse_ok(p, &c);
    assert_false(c.has_keys);
    assert_false(c.progress);
    api_construct_free(&c);
    json_decref(p);
}

static void test_keys_defaults(void **state)
{
    (void)state;
    json_t *p = with("keys", tu_json("{}"));
    struct api_construct c;
    parse_ok(p, &c);
    assert_true(c.has_keys);
    assert_int_equal(c.keys.rules.max, 1);
    assert_int_equal(c.keys.rules.end, '\0');
    assert_true(c.keys.rules.stop_play);
    assert_int_equal(c.keys.rules.wait_seconds, 5);
    assert_false(c.keys.rules.then);
    assert_false(c.keys.inband);
    assert_int_equal(c.keys.then.n, 0);
    api_construct_free(&c);
    json_decref(p);

    /* Nulls inside are defaults too. */
    p = with("keys", tu_json("{\"max\":null,\"end\":null,\"stop_play\":null,"
                             "\"wait_seconds\":null,\"then\":null,"
                             "\"inband\":null}"));
    parse_ok(p, &c);
    assert_true(c.has_keys);
    assert_int_equal(c.keys.rules.max, 1);
    assert_true(c.keys.rules.stop_play);
    assert_int_equal(c.keys.rules.wait_seconds, 5);
    api_construct_free(&c);
    json_decref(p);
}

static void test_keys_given(void **state)
{
    (void)state;
    json_t *p = with("keys", tu_json("{\"max\":32,\"end\":\"#\","
                                     "\"stop_play\":false,"
                                     "\"wait_seconds\":0,"
                                     "\"then\":[[\"thanks.wav\",0],"
                                     "[\"123\",1]],\"inband\":true}"));
    struct api_construct c;
    parse_ok(p, &c);
    assert_true(c.has_keys);
    assert_int_equal(c.keys.rules.max, 32);
    assert_int_equal(c.keys.rules.end, '#');
    assert_false(c.keys.rules.stop_play);
    assert_int_equal(c.keys.rules.wait_seconds, 0);
    assert_true(c.keys.rules.then);
    assert_true(c.keys.inband);
    assert_int_equal(c.keys.then.n, 2);
    assert_string_equal(c.keys.then.items[0].content, "thanks.wav");
    assert_int_equal(c.keys.then.items[1].type, PLAY_DIGITS);
    /* The prompt itself is untouched. */
    assert_int_equal(c.playlist.n, 1);
    assert_string_equal(c.playlist.items[0].content, "a.wav");
    api_construct_free(&c);
    json_decref(p);

    /* Lenient integers as elsewhere, a string then, a lower-case end. */
    p = with("keys", tu_json("{\"max\":\"4\",\"wait_seconds\":60.0,"
                             "\"end\":\"d\",\"then\":\"ok.wav\"}"));
    parse_ok(p, &c);
    assert_int_equal(c.keys.rules.max, 4);
    assert_int_equal(c.keys.rules.wait_seconds, 60);
    assert_int_equal(c.keys.rules.end, 'D');
    assert_int_equal(c.keys.then.n, 1);
    api_construct_free(&c);
    json_decref(p);
}

/* Refused with -32602, the field in the message and param "keys". */
static void assert_keys_refused(const char *keys, const char *message)
{
    json_t *p = with("keys", tu_json(keys));
    struct api_construct c;
    struct rpc_error err;
    assert_int_equal(api_parse_construct(p, DEFAULT_RING, &c, &err), -1);
    assert_int_equal(err.code, RPC_INVALID_PARAMS);
    assert_string_equal(err.message, message);
    assert_string_equal(err.param, "keys");
    api_construct_free(&c);
    json_decref(p);
}

static void test_keys_refused(void **state)
{
    (void)state;
    assert_refused_with("keys", json_string("1"),
                        "invalid params: keys: must be an object or null");
    assert_refused_with("keys", json_true(),
                        "invalid params: keys: must be an object or null");
    assert_refused_with("keys", tu_json("[1]"),
                        "invalid params: keys: must be an object or null");
    assert_keys_refused("{\"max\":0}", "invalid params: keys.max: must be "
                        "between 1 and 32");
    assert_keys_refused("{\"max\":33}", "invalid params: keys.max: must be "
                        "between 1 and 32");
    assert_keys_refused("{\"max\":1.5}", "invalid params: keys.max: must be "
                        "an integer");
    assert_keys_refused("{\"max\":true}", "invalid params: keys.max: must "
                        "be an integer");
    assert_keys_refused("{\"wait_seconds\":61}", "invalid params: "
                        "keys.wait_seconds: must be between 0 and 60");
    assert_keys_refused("{\"wait_seconds\":-1}", "invalid params: "
                        "keys.wait_seconds: must be between 0 and 60");
    const char *end = "invalid params: keys.end: must be one key of 0-9 * "
                      "# A-D";
    assert_keys_refused("{\"end\":\"\"}", end);
    assert_keys_refused("{\"end\":\"##\"}", end);
    assert_keys_refused("{\"end\":\"E\"}", end);
    assert_keys_refused("{\"end\":\"\xc3\xa9\"}", end);
    json_t *nul = json_object();
    json_object_set_new(nul, "end", json_stringn("\0", 1));
    assert_refused_with("keys", nul, end);
    assert_keys_refused("{\"end\":11}", end);
    assert_keys_refused("{\"stop_play\":1}", "invalid params: "
                        "keys.stop_play: must be true or false");
    assert_keys_refused("{\"stop_play\":\"true\"}", "invalid params: "
                        "keys.stop_play: must be true or false");
    assert_keys_refused("{\"inband\":0}", "invalid params: keys.inband: "
                        "must be true or false");
    assert_keys_refused("{\"then\":[]}", "invalid params: keys.then: "
                        "nothing to play");
    assert_keys_refused("{\"then\":5}", "invalid params: keys.then: must be "
                        "a string or an array");
    assert_keys_refused("{\"then\":\"../etc/passwd\"}", "invalid params: "
                        "keys.then: invalid file name");
    assert_keys_refused("{\"then\":[[\"a.wav\",0],[\"x\",99]]}",
                        "invalid params: keys.then[1]: type 99 is not "
                        "supported");
    assert_keys_refused("{\"maximum\":2}", "invalid params: keys: unknown "
                        "field \"maximum\"");
    assert_keys_refused("{\"max\":2,\"stopPlay\":false}", "invalid params: "
                        "keys: unknown field \"stopPlay\"");
}

static void test_progress(void **state)
{
    (void)state;
    json_t *p = with("progress", json_true());
    struct api_construct c;
    parse_ok(p, &c);
    assert_true(c.progress);
    assert_false(c.has_keys);
    api_construct_free(&c);
    json_decref(p);

    p = with("progress", json_false());
    parse_ok(p, &c);
    assert_false(c.progress);
    api_construct_free(&c);
    json_decref(p);

    const char *msg = "invalid params: progress: must be true or false";
    assert_refused_with("progress", json_integer(1), msg);
    assert_refused_with("progress", json_string("yes"), msg);
    assert_refused_with("progress", tu_json("{}"), msg);
}

static void test_request_key(void **state)
{
    (void)state;
    char key[API_REQUEST_KEY_MAX + 2];
    memset(key, 'k', sizeof key);
    key[API_REQUEST_KEY_MAX] = '\0';
    json_t *p = with("request_key", json_string(key));
    struct api_construct c;
    parse_ok(p, &c);
    assert_string_equal(c.request_key, key);
    api_construct_free(&c);
    json_decref(p);

    p = with("request_key", json_string("order-42 \xe4\xb8\xad"));
    parse_ok(p, &c);
    assert_string_equal(c.request_key, "order-42 \xe4\xb8\xad");
    api_construct_free(&c);
    json_decref(p);

    key[API_REQUEST_KEY_MAX] = 'k';
    key[API_REQUEST_KEY_MAX + 1] = '\0';
    assert_refused_with("request_key", json_string(key), "invalid params: "
                        "request_key: longer than 128 bytes");
    assert_refused_with("request_key", json_string(""),
                        "invalid params: request_key: empty");
    assert_refused_with("request_key", json_integer(42), "invalid params: "
                        "request_key: must be a string");
    assert_refused_with("request_key", json_stringn("a\0b", 3),
                        "invalid params: request_key: NUL in text");

    /* The param is named in the error's data. */
    json_t *q = with("request_key", json_string(""));
    struct rpc_error err;
    assert_int_equal(api_parse_construct(q, DEFAULT_RING, &c, &err), -1);
    assert_string_equal(err.param, "request_key");
    api_construct_free(&c);
    json_decref(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_named),
        cmocka_unit_test(test_named_trailing_space),
        cmocka_unit_test(test_positional),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_from),
        cmocka_unit_test(test_to),
        cmocka_unit_test(test_play_content),
        cmocka_unit_test(test_play_repeat),
        cmocka_unit_test(test_max_ring_seconds),
        cmocka_unit_test(test_user_data),
        cmocka_unit_test(test_no_params),
        cmocka_unit_test(test_late_refusal_frees),
        cmocka_unit_test(test_res_id_format),
        cmocka_unit_test(test_res_id_round_trip),
        cmocka_unit_test(test_res_id_foreign),
        cmocka_unit_test(test_res_id_refused),
        cmocka_unit_test(test_lenient_ints),
        cmocka_unit_test(test_from_empty),
        cmocka_unit_test(test_client_construct),
        cmocka_unit_test(test_issue14_absent),
        cmocka_unit_test(test_keys_defaults),
        cmocka_unit_test(test_keys_given),
        cmocka_unit_test(test_keys_refused),
        cmocka_unit_test(test_progress),
        cmocka_unit_test(test_request_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
