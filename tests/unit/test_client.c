/* Unit tests of client: HOST:PORT parsing, and the reader over a
 * socketpair standing in for the daemon — lines split across reads, CRLF
 * and blank lines, events queued while waiting for a reply, stale replies,
 * timeouts, the daemon closing, and lines that are not JSON objects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"

/* ---- HOST:PORT ---------------------------------------------------------- */

static void assert_hostport(const char *s, const char *host, const char *port)
{
    char h[64], p[16];
    assert_int_equal(client_parse_hostport(s, h, sizeof h, p, sizeof p), 0);
    assert_string_equal(h, host);
    assert_string_equal(p, port);
}

static void test_parse_hostport(void **state)
{
    (void)state;
    assert_hostport("127.0.0.1:7010", "127.0.0.1", "7010");
    assert_hostport("ctid.example:8000", "ctid.example", "8000");
    assert_hostport("localhost", "localhost", CLIENT_DEFAULT_PORT);
    assert_hostport("[::1]:7011", "::1", "7011");
    assert_hostport("[fe80::1]", "fe80::1", CLIENT_DEFAULT_PORT);
    assert_hostport("::1", "::1", CLIENT_DEFAULT_PORT);

    char h[8], p[8];
    const char *bad[] = {"", ":7010", "host:", "[::1", "[::1]x", "[]:1",
                         "[::1]:", "averyveryverylonghost:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(client_parse_hostport(bad[i], h, sizeof h, p, sizeof p),
                         -1);
}

/* ---- reader ------------------------------------------------------------- */

struct pair {
    struct client *c;
    int daemon; /* the test's end of the socketpair */
};

static int setup(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct pair *p = calloc(1, sizeof *p);
    assert_non_null(p);
    p->c = client_attach(sv[0]);
    assert_non_null(p->c);
    p->daemon = sv[1];
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    struct pair *p = *state;
    client_free(p->c);
    if (p->daemon >= 0)
        close(p->daemon);
    free(p);
    return 0;
}

static void daemon_says(struct pair *p, const char *s)
{
    size_t len = strlen(s);
    assert_int_equal(write(p->daemon, s, len), (ssize_t)len);
}

/* What the client wrote, as one parsed request line. */
static json_t *daemon_reads(struct pair *p)
{
    char buf[4096];
    ssize_t n = read(p->daemon, buf, sizeof buf - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_int_equal(buf[n - 1], '\n');
    assert_null(memchr(buf, '\n', (size_t)n - 1)); /* exactly one line */
    json_error_t err;
    json_t *v = json_loads(buf, 0, &err);
    assert_non_null(v);
    return v;
}

#define EVENT(n) "{\"jsonrpc\":\"2.0\",\"method\":\"ext.notify_call.on_released\"," \
                 "\"params\":{\"res_id\":\"r" #n "\"}}"

static void assert_event(struct client_msg *m, const char *res_id)
{
    assert_non_null(m);
    json_t *params = json_object_get(m->json, "params");
    assert_string_equal(json_string_value(json_object_get(params, "res_id")),
                        res_id);
    client_msg_free(m);
}

static void test_request_line(void **state)
{
    struct pair *p = *state;
    json_int_t id1, id2;
    assert_int_equal(client_request(p->c, "sys.ping", NULL, &id1), CLIENT_OK);
    json_t *req = daemon_reads(p);
    assert_string_equal(json_string_value(json_object_get(req, "jsonrpc")), "2.0");
    assert_string_equal(json_string_value(json_object_get(req, "method")),
                        "sys.ping");
    assert_int_equal(json_integer_value(json_object_get(req, "id")), id1);
    assert_null(json_object_get(req, "params"));
    json_decref(req);

    assert_int_equal(client_request(p->c, "ext.notify_call.exists",
                                    json_pack("{s:s}", "res_id", "x"), &id2),
                     CLIENT_OK);
    assert_true(id2 > id1);
    req = daemon_reads(p);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(req, "params"), "res_id")), "x");
    json_decref(req);
}

/* The reply arrives in pieces, behind an event, a stale reply, a blank
 * line and CRLF; the event stays queued for client_next_event. */
static void test_reply_behind_event_partial(void **state)
{
    struct pair *p = *state;
    json_int_t id;
    assert_int_equal(client_request(p->c, "sys.ping", NULL, &id), CLIENT_OK);
    json_decref(daemon_reads(p));
    assert_int_equal(id, 1);

    daemon_says(p, EVENT(1) "\r\n\n{\"jsonrpc\":\"2.0\",\"id\":99,\"res");
    struct client_msg *reply = NULL;
    assert_int_equal(client_wait_reply(p->c, id, 50, &reply), CLIENT_TIMEOUT);
    assert_null(reply);
    daemon_says(p, "ult\":true}\n{\"jsonrpc\":\"2.0\",\"id\":1,\"re");
    assert_int_equal(client_wait_reply(p->c, id, 50, &reply), CLIENT_TIMEOUT);
    daemon_says(p, "sult\":\"pong\"}\r");
    assert_int_equal(client_wait_reply(p->c, id, 50, &reply), CLIENT_TIMEOUT);
    daemon_says(p, "\n" EVENT(2) "\n");
    assert_int_equal(client_wait_reply(p->c, id, 1000, &reply), CLIENT_OK);
    assert_string_equal(reply->line,
                        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"pong\"}");
    assert_string_equal(json_string_value(json_object_get(reply->json, "result")),
                        "pong");
    client_msg_free(reply);

    struct client_msg *ev = NULL;
    /* both events were read already: no waiting, the stale reply skipped */
    assert_int_equal(client_next_event(p->c, 0, &ev), CLIENT_OK);
    assert_string_equal(ev->line, EVENT(1)); /* raw, without the CR */
    assert_event(ev, "r1");
    assert_int_equal(client_next_event(p->c, 0, &ev), CLIENT_OK);
    assert_event(ev, "r2");
    assert_int_equal(client_next_event(p->c, 0, &ev), CLIENT_TIMEOUT);
    assert_null(ev);
}

/* An event split byte by byte, then the daemon closes: the event is still
 * handed out, then CLIENT_CLOSED, and that again on every later call. */
static void test_event_bytewise_then_close(void **state)
{
    struct pair *p = *state;
    const char *line = EVENT(7) "\n";
    struct client_msg *ev = NULL;
    for (const char *s = line; *s != '\0'; s++) {
        char one[2] = {*s, '\0'};
        daemon_says(p, one);
        if (s[1] != '\0')
            assert_int_equal(client_next_event(p->c, 0, &ev), CLIENT_TIMEOUT);
    }
    daemon_says(p, EVENT(8) "\n");
    close(p->daemon);
    p->daemon = -1;
    assert_int_equal(client_next_event(p->c, 1000, &ev), CLIENT_OK);
    assert_event(ev, "r7");
    assert_int_equal(client_next_event(p->c, 1000, &ev), CLIENT_OK);
    assert_event(ev, "r8");
    assert_int_equal(client_next_event(p->c, 1000, &ev), CLIENT_CLOSED);
    assert_int_equal(client_next_event(p->c, -1, &ev), CLIENT_CLOSED);
    assert_non_null(strstr(client_error(p->c), "closed"));
    struct client_msg *reply;
    assert_int_equal(client_wait_reply(p->c, 1, -1, &reply), CLIENT_CLOSED);
    /* writing to a closed peer reports, and does not raise SIGPIPE */
    assert_int_equal(client_request(p->c, "sys.ping", NULL, NULL), CLIENT_CLOSED);
}

/* An error reply with id null (our id could not be read) answers the
 * pending request. */
static void test_error_reply_null_id(void **state)
{
    struct pair *p = *state;
    daemon_says(p, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,"
                   "\"message\":\"parse error\"}}\n");
    struct client_msg *reply;
    assert_int_equal(client_call(p->c, "sys.ping", NULL, 1000, &reply), CLIENT_OK);
    json_t *err = json_object_get(reply->json, "error");
    assert_int_equal(json_integer_value(json_object_get(err, "code")), -32700);
    client_msg_free(reply);
    json_decref(daemon_reads(p));
}

static void test_not_json(void **state)
{
    struct pair *p = *state;
    daemon_says(p, "HTTP/1.1 400 Bad Request\r\n");
    struct client_msg *ev;
    assert_int_equal(client_next_event(p->c, 1000, &ev), CLIENT_PROTO);
    assert_non_null(strstr(client_error(p->c), "HTTP/1.1 400"));
    assert_int_equal(client_next_event(p->c, 1000, &ev), CLIENT_PROTO);
}

static void test_not_object(void **state)
{
    struct pair *p = *state;
    daemon_says(p, "[1,2]\n");
    struct client_msg *reply;
    assert_int_equal(client_wait_reply(p->c, 1, 1000, &reply), CLIENT_PROTO);
}

static void test_connect_refused(void **state)
{
    (void)state;
    struct client *c = NULL;
    char err[256];
    /* port 1 on loopback: nothing listens there in a test environment */
    assert_int_equal(client_connect("127.0.0.1:1", 2000, &c, err, sizeof err),
                     CLIENT_IO);
    assert_null(c);
    assert_non_null(strstr(err, "127.0.0.1:1"));
    assert_int_equal(client_connect("[::1", 2000, &c, err, sizeof err),
                     CLIENT_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_hostport),
        cmocka_unit_test_setup_teardown(test_request_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_behind_event_partial, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_event_bytewise_then_close, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_error_reply_null_id, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_not_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_object, setup, teardown),
        cmocka_unit_test(test_connect_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
