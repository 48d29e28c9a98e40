/* Unit tests: gateways (each gateway's health as the main loop sees it):
 * the state SIP_EV_GATEWAY events leave, the usable rule construct
 * applies, a SIGHUP rebuild by name, sys.gateways' JSON and the
 * registration back-off schedule (the SIP thread's, sip.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "gateways.h"
#include "sip.h"

static void add_gw(struct conf *c, const char *name, const char *host,
                   bool reg, unsigned options)
{
    struct conf_gateway *g = &c->gateways[c->n_gateways++];
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    snprintf(g->host, sizeof g->host, "%s", host);
    g->port = 5060;
    g->reg = reg;
    g->register_expires = 600;
    g->options_interval = options;
}

static void send_ev(struct gateways *g, unsigned index, const char *name,
                    enum sip_gw_change what, int status, bool local)
{
    struct sip_event ev = sip_event_gateway(index, name, what, status, local);
    assert_int_equal(ev.type, SIP_EV_GATEWAY);
    assert_int_equal(ev.call_id, 0);
    gateways_on_sip_event(g, &ev);
}

static void test_unknown_is_usable(void **state)
{
    (void)state;
    static struct conf c;
    memset(&c, 0, sizeof c);
    add_gw(&c, "t1", "10.0.0.1", true, 5);
    struct gateways g;
    char why[128] = "";
    gateways_init(&g, &c);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.gw[0].up, -1);
    assert_int_equal(g.gw[0].registered, -1);
    assert_true(gateways_usable(&g, 0, why, sizeof why));
    assert_true(gateways_usable(&g, 5, why, sizeof why)); /* no gateway */
}

static void test_state_changes(void **state)
{
    (void)state;
    static struct conf c;
    memset(&c, 0, sizeof c);
    add_gw(&c, "t1", "10.0.0.1", false, 2);
    add_gw(&c, "t2", "10.0.0.2", true, 0);
    struct gateways g;
    char why[128];
    gateways_init(&g, &c);

    send_ev(&g, 0, "t1", SIP_GW_DOWN, 408, true);
    assert_int_equal(g.gw[0].up, 0);
    assert_false(gateways_usable(&g, 0, why, sizeof why));
    assert_string_equal(why, "t1 down (OPTIONS)");
    send_ev(&g, 0, "t1", SIP_GW_UP, 405, false); /* any answer: up */
    assert_int_equal(g.gw[0].up, 1);
    assert_int_equal(g.gw[0].status, 405);
    assert_true(g.gw[0].status_time > 0);
    assert_true(gateways_usable(&g, 0, why, sizeof why));

    send_ev(&g, 1, "t2", SIP_GW_REFUSED, 403, false);
    assert_int_equal(g.gw[1].registered, 0);
    assert_false(gateways_usable(&g, 1, why, sizeof why));
    assert_string_equal(why, "t2 registration refused (403)");
    send_ev(&g, 1, "t2", SIP_GW_REG_FAILED, 408, true);
    assert_false(gateways_usable(&g, 1, why, sizeof why));
    assert_string_equal(why, "t2 registration failed (408)");
    send_ev(&g, 1, "t2", SIP_GW_REGISTERED, 200, false);
    assert_int_equal(g.gw[1].registered, 1);
    assert_true(gateways_usable(&g, 1, why, sizeof why));

    /* A stale index (a SIGHUP reordered the table): matched by name; an
     * unknown name changes nothing. */
    send_ev(&g, 0, "t2", SIP_GW_REFUSED, 401, false);
    assert_int_equal(g.gw[1].registered, 0);
    assert_int_equal(g.gw[0].up, 1);
    send_ev(&g, 0, "gone", SIP_GW_DOWN, 0, true);
    assert_int_equal(g.gw[0].up, 1);
}

static void test_reload_by_name(void **state)
{
    (void)state;
    static struct conf c;
    memset(&c, 0, sizeof c);
    add_gw(&c, "a", "10.0.0.1", false, 2);
    add_gw(&c, "b", "10.0.0.2", true, 0);
    struct gateways g;
    gateways_init(&g, &c);
    send_ev(&g, 0, "a", SIP_GW_DOWN, 0, true);
    send_ev(&g, 1, "b", SIP_GW_REGISTERED, 200, false);
    /* New order: c, b (now not registering), a (unchanged). */
    memset(&c, 0, sizeof c);
    add_gw(&c, "c", "10.0.0.3", false, 0);
    add_gw(&c, "b", "10.0.0.2", false, 0);
    add_gw(&c, "a", "10.0.0.1", false, 2);
    gateways_reload(&g);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.gw[0].name, "c");
    assert_int_equal(g.gw[0].up, -1);
    assert_int_equal(g.gw[1].registered, -1); /* register = no now */
    assert_int_equal(g.gw[2].up, 0);
    /* a's password changes: it starts over, unknown. */
    snprintf(c.gateways[2].password, sizeof c.gateways[2].password, "x");
    gateways_reload(&g);
    assert_int_equal(g.gw[2].up, -1);
}

static void test_json(void **state)
{
    (void)state;
    static struct conf c;
    memset(&c, 0, sizeof c);
    add_gw(&c, "t1", "10.0.0.1", true, 0);
    c.gateways[0].max_calls = 30;
    struct gateways g;
    gateways_init(&g, &c);
    unsigned calls[CONF_MAX_GATEWAYS] = {4};
    uint64_t failovers[CONF_MAX_GATEWAYS] = {2};
    json_t *j = gateways_json(&g, calls, failovers);
    char *s = json_dumps(j, JSON_COMPACT);
    assert_string_equal(s, "[{\"name\":\"t1\",\"address\":\"10.0.0.1:5060\","
                           "\"transport\":\"udp\",\"up\":null,"
                           "\"registered\":null,\"status\":null,"
                           "\"status_time\":null,\"active_calls\":4,"
                           "\"max_calls\":30,\"failovers\":2,"
                           "\"register_status\":null,"
                           "\"register_time\":null,"
                           "\"options_status\":null,"
                           "\"options_time\":null}]");
    free(s);
    json_decref(j);
    send_ev(&g, 0, "t1", SIP_GW_REGISTERED, 200, false);
    j = gateways_json(&g, calls, failovers);
    json_t *o = json_array_get(j, 0);
    assert_true(json_is_true(json_object_get(o, "registered")));
    assert_int_equal(json_integer_value(json_object_get(o, "status")), 200);
    assert_true(json_integer_value(json_object_get(o, "status_time")) > 0);
    assert_int_equal(
        json_integer_value(json_object_get(o, "register_status")), 200);
    assert_true(json_integer_value(json_object_get(o, "register_time")) > 0);
    /* not probed: options null even after a (stray) OPTIONS change */
    assert_true(json_is_null(json_object_get(o, "options_status")));
    assert_true(json_is_null(json_object_get(o, "options_time")));
    json_decref(j);
}

/* A gateway that registers and is probed: each concern keeps its own
 * last status and time, while status / status_time are the last change
 * of either kind (the fields issue 13 asks for beside them). */
static void test_json_concerns(void **state)
{
    (void)state;
    static struct conf c;
    memset(&c, 0, sizeof c);
    add_gw(&c, "both", "10.0.0.1", true, 5);
    add_gw(&c, "ping", "10.0.0.2", false, 5);
    struct gateways g;
    gateways_init(&g, &c);
    unsigned calls[CONF_MAX_GATEWAYS] = {0};
    uint64_t failovers[CONF_MAX_GATEWAYS] = {0};
    send_ev(&g, 0, "both", SIP_GW_REFUSED, 403, false);
    g.gw[0].reg_time -= 100; /* earlier than the OPTIONS change below */
    send_ev(&g, 0, "both", SIP_GW_UP, 200, false);
    send_ev(&g, 1, "ping", SIP_GW_DOWN, 0, true); /* unanswered pings */
    json_t *j = gateways_json(&g, calls, failovers);
    json_t *o = json_array_get(j, 0);
    assert_int_equal(json_integer_value(json_object_get(o, "status")), 200);
    assert_int_equal(
        json_integer_value(json_object_get(o, "register_status")), 403);
    assert_int_equal(
        json_integer_value(json_object_get(o, "options_status")), 200);
    json_int_t rt = json_integer_value(json_object_get(o, "register_time"));
    json_int_t ot = json_integer_value(json_object_get(o, "options_time"));
    assert_true(rt > 0 && ot > 0);
    assert_int_equal(ot - rt, 100);
    assert_int_equal(json_integer_value(json_object_get(o, "status_time")),
                     ot);
    assert_true(json_is_false(json_object_get(o, "registered")));
    assert_true(json_is_true(json_object_get(o, "up")));
    o = json_array_get(j, 1);
    assert_true(json_is_null(json_object_get(o, "register_status")));
    assert_true(json_is_null(json_object_get(o, "register_time")));
    /* down with no answer at all: no status, but when it happened */
    assert_true(json_is_null(json_object_get(o, "options_status")));
    assert_true(json_integer_value(json_object_get(o, "options_time")) > 0);
    json_decref(j);
}

/* min(30 s, register_expires) doubling to 10 min, never 0. */
static void test_retry_delay(void **state)
{
    (void)state;
    assert_int_equal(sip_gateways_retry_delay(1, 30), 30);
    assert_int_equal(sip_gateways_retry_delay(2, 30), 60);
    assert_int_equal(sip_gateways_retry_delay(3, 30), 120);
    assert_int_equal(sip_gateways_retry_delay(5, 30), 480);
    assert_int_equal(sip_gateways_retry_delay(6, 30), 600);
    assert_int_equal(sip_gateways_retry_delay(1000, 30), 600);
    assert_int_equal(sip_gateways_retry_delay(1, 10), 10);
    assert_int_equal(sip_gateways_retry_delay(0, 0), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_is_usable),
        cmocka_unit_test(test_state_changes),
        cmocka_unit_test(test_reload_by_name),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_json_concerns),
        cmocka_unit_test(test_retry_delay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
