/* Unit tests of the request bus' pure parts (busreq_entry.c): each bad
 * entry and its error, the reply_to rules (ctid's own keys refused),
 * request_key injection, the res_id -> node parse, the request and reply
 * lines, the room arithmetic, rate_available / the calls' room, and
 * the step before the daemon (MARK / OWN). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "busreq.h"
#include "rate.h"

#define MAX_LINE 200

/* Parses the NULL-terminated field/value list fv into e. */
static void parse(struct busreq_entry *e, bool own, const char *const *fv)
{
    size_t n = 0, lens[32];
    while (fv[n] != NULL) {
        lens[n] = strlen(fv[n]);
        n++;
    }
    busreq_entry_parse(e, "1764594000000-0", own, fv, lens, n, "ctid",
                       "1.2.3", MAX_LINE);
}

static void test_reply_to(void **state)
{
    (void)state;
    const char *ok[] = {"app:replies", "a", "A-b_c.d:e", "ctid:requestsX",
                        "ctid:eventsX", "ctid:keys", "other:requests",
                        "ctid:nodes"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_true(busreq_reply_to_ok(ok[i], "ctid"));
    char long_name[202];
    memset(long_name, 'a', 201);
    long_name[201] = '\0';
    const char *bad[] = {"", "a b", "a/b", "a\n", "ctid:requests",
                         "ctid:requests:1.2.3", "ctid:requests:x",
                         "ctid:events", "ctid:published", "ctid:key:k",
                         "ctid:key:", "ctid:node:1.2.3", long_name,
                         "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(busreq_reply_to_ok(bad[i], "ctid"));
    long_name[200] = '\0';
    assert_true(busreq_reply_to_ok(long_name, "ctid"));
    assert_true(busreq_reply_to_ok("ctid:events", "p2")); /* other prefix */
}

/* Each bad entry: its code and message, the id kept for the reply. */
static void test_bad_entries(void **state)
{
    (void)state;
    char huge[MAX_LINE + 2];
    memset(huge, 'x', MAX_LINE + 1);
    huge[MAX_LINE + 1] = '\0';
    char half[MAX_LINE / 2 + 1];
    memset(half, 'y', MAX_LINE / 2);
    half[MAX_LINE / 2] = '\0';
    static const char *construct = "ext.notify_call.construct";
    const struct {
        const char *fv[12];
        int code;
        const char *msg;
    } cases[] = {
        {{"method", construct, "params", "{not json", "id", "i", NULL},
         -32700, "params is not JSON"},
        {{"method", construct, "params", "[1]", "id", "i", NULL}, -32602,
         "params must be an object"},
        {{"method", construct, "params", "5", "id", "i", NULL}, -32602,
         "params must be an object"},
        {{"params", "{}", "id", "i", NULL}, -32600, "method missing"},
        {{"method", "", "id", "i", NULL}, -32600, "method missing"},
        {{"method", construct, "params", huge, "id", "i", NULL}, -32600,
         "entry too large"},
        {{"method", construct, "params", half, "x", half, "id", "i", NULL},
         -32600, "entry too large"},
        {{"method", "ext.nope", "id", "i", NULL}, -32601,
         "method not found: ext.nope"},
        {{"method", "sys.auth", "id", "i", NULL}, -32601,
         "sys.auth/sys.subscribe are not available on the bus"},
        {{"method", "sys.subscribe", "id", "i", NULL}, -32601,
         "sys.auth/sys.subscribe are not available on the bus"},
        {{"method", "ext.notify_call.exists", "params",
          "{\"res_id\":\"9.9.9-ext.notify_call-5\"}", "id", "i", NULL},
         -32602,
         "res_id belongs to node 9.9.9: send it to ctid:requests:9.9.9"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct busreq_entry e;
        parse(&e, false, cases[i].fv);
        assert_false(e.refused);
        assert_int_equal(e.err_code, cases[i].code);
        assert_string_equal(e.err_msg, cases[i].msg);
        assert_string_equal(e.id, "i");
        assert_string_equal(e.reply_to == NULL ? "" : e.reply_to, "");
        busreq_entry_free(&e);
    }
}

static void test_refused_and_good(void **state)
{
    (void)state;
    struct busreq_entry e;
    const char *bad_rt[] = {"method", "sys.ping", "reply_to", "ctid:events",
                            NULL};
    parse(&e, false, bad_rt);
    assert_true(e.refused);
    busreq_entry_free(&e);
    /* no params: {}; no id: ""; unknown fields ignored */
    const char *ping[] = {"method", "sys.ping", "reply_to", "app:r", "zz",
                          "1", NULL};
    parse(&e, false, ping);
    assert_false(e.refused);
    assert_int_equal(e.err_code, 0);
    assert_int_equal(e.method, BUSREQ_PING);
    assert_string_equal(e.reply_to, "app:r");
    assert_string_equal(e.id, "");
    assert_true(json_is_object(e.params) && json_object_size(e.params) == 0);
    busreq_entry_free(&e);
    /* exists of this node's res_id, and of another's on its own stream:
     * handed to the daemon */
    const char *mine[] = {"method", "ext.notify_call.exists", "params",
                          "{\"res_id\":\"1.2.3-ext.notify_call-5\"}", NULL};
    parse(&e, false, mine);
    assert_int_equal(e.err_code, 0);
    busreq_entry_free(&e);
    const char *theirs[] = {"method", "ext.notify_call.drop", "params",
                            "{\"res_id\":\"9.9.9-ext.notify_call-5\"}", NULL};
    parse(&e, true, theirs);
    assert_int_equal(e.err_code, 0);
    assert_int_equal(e.method, BUSREQ_DROP);
    busreq_entry_free(&e);
}

static void test_request_key(void **state)
{
    (void)state;
    struct busreq_entry e;
    const char *keyless[] = {"method", "ext.notify_call.construct", "params",
                             "{\"to_uri\":\"a@b\"}", "id", "7", NULL};
    parse(&e, false, keyless);
    assert_int_equal(e.err_code, 0);
    assert_string_equal(e.key, ""); /* local only: no MARK */
    assert_string_equal(json_string_value(json_object_get(e.params,
                                                          "request_key")),
                        "bus:1764594000000-0");
    size_t len;
    char *line = busreq_request_line(&e, 42, 1000, &len);
    assert_non_null(line);
    assert_string_equal(line, "{\"jsonrpc\":\"2.0\",\"id\":42,\"method\":"
                              "\"ext.notify_call.construct\",\"params\":{"
                              "\"to_uri\":\"a@b\",\"request_key\":"
                              "\"bus:1764594000000-0\"}}\n");
    assert_int_equal(len, strlen(line));
    free(line);
    assert_null(busreq_request_line(&e, 42, 60, &len)); /* over max_line */
    busreq_entry_free(&e);
    const char *keyed[] = {"method", "ext.notify_call.construct", "params",
                           "{\"request_key\":\"k1\"}", NULL};
    parse(&e, false, keyed);
    assert_string_equal(e.key, "k1");
    assert_string_equal(json_string_value(json_object_get(e.params,
                                                          "request_key")),
                        "k1");
    busreq_entry_free(&e);
    const char *odd[] = {"method", "ext.notify_call.construct", "params",
                         "{\"request_key\":5}", NULL};
    parse(&e, false, odd); /* the daemon refuses it, as on TCP */
    assert_int_equal(e.err_code, 0);
    assert_string_equal(e.key, "");
    busreq_entry_free(&e);
}

/* The step before the daemon: every construct is checked to be still
 * this node's (MARK with a request_key, OWN without), and both scripts
 * reset the entry's idle time when it is. */
static void test_first_step(void **state)
{
    (void)state;
    struct busreq_entry e;
    const char *keyless[] = {"method", "ext.notify_call.construct", "params",
                             "{\"to_uri\":\"a@b\"}", NULL};
    const char *keyed[] = {"method", "ext.notify_call.construct", "params",
                           "{\"request_key\":\"k1\"}", NULL};
    const char *ping[] = {"method", "sys.ping", NULL};
    const char *exists[] = {"method", "ext.notify_call.exists", "params",
                            "{\"res_id\":\"1.2.3-ext.notify_call-1\"}",
                            NULL};
    parse(&e, false, keyless);
    assert_int_equal(busreq_first_step(&e, false), BUSREQ_STEP_OWN);
    assert_int_equal(busreq_first_step(&e, true), BUSREQ_STEP_TAKEN);
    busreq_entry_free(&e);
    parse(&e, false, keyed);
    assert_int_equal(busreq_first_step(&e, false), BUSREQ_STEP_MARK);
    assert_int_equal(busreq_first_step(&e, true), BUSREQ_STEP_MARK);
    busreq_entry_free(&e);
    parse(&e, true, keyless); /* own stream: the same */
    assert_int_equal(busreq_first_step(&e, false), BUSREQ_STEP_OWN);
    busreq_entry_free(&e);
    parse(&e, false, ping);
    assert_int_equal(busreq_first_step(&e, false), BUSREQ_STEP_HAND);
    busreq_entry_free(&e);
    parse(&e, true, exists);
    assert_int_equal(busreq_first_step(&e, false), BUSREQ_STEP_HAND);
    busreq_entry_free(&e);
    const char *scripts[] = {BUSREQ_OWN_LUA, BUSREQ_MARK_LUA};
    for (size_t i = 0; i < 2; i++) {
        const char *pend = strstr(scripts[i], "'XPENDING'");
        const char *lost = strstr(scripts[i], "{'lost', p[1][2]}");
        const char *reset = strstr(scripts[i], "'XCLAIM'");
        assert_non_null(pend);
        assert_non_null(lost);
        assert_non_null(reset);
        assert_non_null(strstr(reset, "'0', ARGV[2], 'JUSTID'"));
        assert_true(pend < lost && lost < reset); /* checked, then reset */
    }
    assert_null(strstr(BUSREQ_OWN_LUA, "SET")); /* no key of its own */
}

static void test_res_id_node(void **state)
{
    (void)state;
    char node[16];
    assert_int_equal(busreq_res_id_node("1.2.3-ext.notify_call-42", node,
                                        sizeof node), 0);
    assert_string_equal(node, "1.2.3");
    assert_int_equal(busreq_res_id_node("10.20.30-ext.notify_call-1", node,
                                        sizeof node), 0);
    assert_string_equal(node, "10.20.30");
    const char *bad[] = {"", "-ext.notify_call-1", "x-ext.notify_call-1",
                         "1.2.3", "1.2.3-other-1",
                         "123456789.123456789-ext.notify_call-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(busreq_res_id_node(bad[i], node, sizeof node), -1);
}

static void test_reply_lines(void **state)
{
    (void)state;
    const char ok[] = "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"res_id\":"
                      "\"r\",\"user_data\":null}}";
    bool is_result;
    char *result;
    json_t *j = json_loads(ok, 0, NULL);
    char *t = busreq_reply_text(j, "a-1", &is_result, &result);
    json_decref(j);
    assert_string_equal(t, "{\"jsonrpc\":\"2.0\",\"id\":\"a-1\",\"result\":"
                           "{\"res_id\":\"r\",\"user_data\":null}}");
    assert_true(is_result);
    assert_string_equal(result, "{\"res_id\":\"r\",\"user_data\":null}");
    free(t);
    free(result);
    const char err[] = "{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":"
                       "503,\"message\":\"m\"}}";
    j = json_loads(err, 0, NULL);
    t = busreq_reply_text(j, "", &is_result, &result);
    json_decref(j);
    assert_string_equal(t, "{\"jsonrpc\":\"2.0\",\"id\":\"\",\"error\":{"
                           "\"code\":503,\"message\":\"m\"}}");
    assert_false(is_result);
    assert_null(result);
    free(t);
    const char ev[] = "{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":{}}";
    j = json_loads(ev, 0, NULL);
    assert_null(busreq_reply_text(j, "", &is_result, NULL));
    json_decref(j);
    t = busreq_error_text("i", -32000, "node X stopped", "1.2.3",
                          json_pack("{s:s}", "node", "X"));
    assert_string_equal(t, "{\"jsonrpc\":\"2.0\",\"id\":\"i\",\"error\":{"
                           "\"code\":-32000,\"message\":\"node X stopped\","
                           "\"data\":{\"ipsc_info\":{\"node_id\":\"1.2.3\"},"
                           "\"node\":\"X\"}}}");
    free(t);
    t = busreq_result_text("i", "{\"a\":1}");
    assert_string_equal(t, "{\"jsonrpc\":\"2.0\",\"id\":\"i\",\"result\":"
                           "{\"a\":1}}");
    free(t);
    assert_null(busreq_result_text("i", "{bad"));
}

static void test_room(void **state)
{
    (void)state;
    assert_int_equal(busreq_room(0, 0, 0), 0);
    assert_int_equal(busreq_room(5, 0, 0), 5);
    assert_int_equal(busreq_room(5, 2, 0), 3);
    assert_int_equal(busreq_room(5, 7, 0), 0);
    assert_int_equal(busreq_room(1000, 0, 0), BUSREQ_MAX_READ);
    assert_int_equal(busreq_room(1000, 0, BUSREQ_MAX_INFLIGHT - 3), 3);
    assert_int_equal(busreq_room(1000, 0, BUSREQ_MAX_INFLIGHT), 0);
    assert_int_equal(busreq_room(1000, 0, BUSREQ_MAX_INFLIGHT + 9), 0);
}

static void test_rate_available(void **state)
{
    (void)state;
    struct rate r;
    rate_init(&r, 0, 0);
    assert_int_equal(rate_available(&r, 0), UINT32_MAX);
    rate_init(&r, 10, 1000000000ULL);
    assert_int_equal(rate_available(&r, 1000000000ULL), 10);
    for (int i = 0; i < 10; i++)
        assert_true(rate_take(&r, 1000000000ULL));
    assert_int_equal(rate_available(&r, 1000000000ULL), 0);
    /* 0.25 s later: 2.5 tokens, 2 whole; nothing taken by looking */
    assert_int_equal(rate_available(&r, 1250000000ULL), 2);
    assert_int_equal(rate_available(&r, 1250000000ULL), 2);
    assert_int_equal(rate_available(&r, 9000000000ULL), 10); /* burst */
    rate_init(&r, 0.5, 0); /* below 1/s: one token */
    assert_int_equal(rate_available(&r, 0), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_to),
        cmocka_unit_test(test_bad_entries),
        cmocka_unit_test(test_refused_and_good),
        cmocka_unit_test(test_request_key),
        cmocka_unit_test(test_first_step),
        cmocka_unit_test(test_res_id_node),
        cmocka_unit_test(test_reply_lines),
        cmocka_unit_test(test_room),
        cmocka_unit_test(test_rate_available),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
