/* Unit tests of the small core pieces: idmap, queue, conf. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "idmap.h"
#include "queue.h"

static void test_idmap_put_get_del(void **state)
{
    (void)state;
    struct idmap m;
    idmap_init(&m);
    assert_null(idmap_get(&m, 5));
    enum { N = 5000 };
    static int values[N];
    /* Sequential ids like process_ids, many deletions: probe runs must
     * survive backward-shift deletion. */
    for (uint64_t i = 1; i <= N; i++)
        assert_int_equal(idmap_put(&m, 1795527701000000ULL + i, &values[i - 1]),
                         0);
    assert_int_equal(m.count, N);
    for (uint64_t i = 1; i <= N; i += 2)
        assert_ptr_equal(idmap_del(&m, 1795527701000000ULL + i),
                         &values[i - 1]);
    assert_int_equal(m.count, N / 2);
    for (uint64_t i = 1; i <= N; i++) {
        void *v = idmap_get(&m, 1795527701000000ULL + i);
        if (i % 2)
            assert_null(v);
        else
            assert_ptr_equal(v, &values[i - 1]);
    }
    assert_null(idmap_del(&m, 42));
    assert_null(idmap_get(&m, 0));
    /* Replacing keeps the count. */
    assert_int_equal(idmap_put(&m, 1795527701000002ULL, &values[0]), 0);
    assert_int_equal(m.count, N / 2);
    assert_ptr_equal(idmap_get(&m, 1795527701000002ULL), &values[0]);
    /* The walk sees each entry once. */
    struct idmap_iter it = IDMAP_ITER_INIT;
    uint64_t id;
    void *v;
    size_t seen = 0;
    while (idmap_next(&m, &it, &id, &v)) {
        assert_ptr_equal(idmap_get(&m, id), v);
        assert_int_equal((id - 1795527701000000ULL) % 2, 0);
        seen++;
    }
    assert_int_equal(seen, idmap_count(&m));
    idmap_free(&m);
    /* An empty (never grown) map walks nothing. */
    struct idmap e;
    idmap_init(&e);
    struct idmap_iter it2 = IDMAP_ITER_INIT;
    assert_false(idmap_next(&e, &it2, NULL, NULL));
    idmap_free(&e);
}

static void test_queue_fifo(void **state)
{
    (void)state;
    struct msg { int a; char b[40]; } in, out;
    struct queue *q = queue_new(sizeof(struct msg));
    assert_non_null(q);
    assert_int_equal(queue_pop(q, &out), 0);
    for (int i = 0; i < 100; i++) {
        in.a = i;
        snprintf(in.b, sizeof in.b, "msg %d", i);
        assert_int_equal(queue_push(q, &in), 0);
    }
    for (int i = 0; i < 100; i++) {
        assert_int_equal(queue_pop(q, &out), 1);
        assert_int_equal(out.a, i);
    }
    assert_int_equal(queue_pop(q, &out), 0);
    queue_push(q, &in); /* left in the queue: queue_free must free it */
    queue_free(q);
}

static const char *write_conf(const char *text)
{
    static char path[] = "/tmp/ctid-test-conf-XXXXXX";
    strcpy(path, "/tmp/ctid-test-conf-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_conf_file_and_overrides(void **state)
{
    (void)state;
    struct conf c;
    char err[512];
    conf_defaults(&c);
    assert_string_equal(c.listen_host, "127.0.0.1");
    assert_int_equal(c.listen_port, 7010);
    assert_int_equal(c.default_max_ring, 50);
    const char *path = write_conf(
        "# comment\n"
        "listen = 127.0.0.1:7100   # trailing comment\n"
        "sip = [::1]:5070\n"
        "rtp_ports = 30000-30100\n"
        "node_id = 1.2.3\n"
        "\n"
        "[gateway trunk]\n"
        "host = 10.0.0.5\n"
        "max_calls = 30\n"
        "username = alice\n"
        "password = pa#ss\n");
    assert_int_equal(conf_load_file(&c, path, err, sizeof err), 0);
    unlink(path);
    assert_int_equal(c.listen_port, 7100);
    assert_string_equal(c.sip_host, "::1");
    assert_int_equal(c.sip_port, 5070);
    assert_int_equal(c.rtp_port_min, 30000);
    assert_string_equal(c.node_id, "1.2.3");
    assert_int_equal(c.n_gateways, 1);
    assert_int_equal(conf_gateway_port(&c.gateways[0]), 5060);
    assert_int_equal(c.gateways[0].max_calls, 30);
    /* '#' inside a value is not a comment. */
    assert_string_equal(c.gateways[0].password, "pa#ss");
    assert_non_null(conf_find_gateway(&c, "10.0.0.5", 5060));
    assert_null(conf_find_gateway(&c, "10.0.0.5", 5061));
    /* A flag overrides the file. */
    assert_int_equal(conf_set(&c, "listen", "0.0.0.0:9000", err, sizeof err),
                     0);
    assert_int_equal(c.listen_port, 9000);
    /* Off loopback, the RPC socket needs a token. */
    assert_int_equal(conf_validate(&c, err, sizeof err), -1);
    assert_non_null(strstr(err, "auth_token"));
    assert_int_equal(conf_set(&c, "auth_token", "0123456789abcdef", err,
                              sizeof err),
                     0);
    assert_int_equal(conf_validate(&c, err, sizeof err), 0);
}

static void test_conf_security(void **state)
{
    (void)state;
    struct conf c;
    char err[512];
    conf_defaults(&c);
    assert_false(c.allow_unlisted_gateways);
    assert_string_equal(c.auth_token, "");
    assert_int_equal(c.shutdown_grace, 30);
    assert_true(conf_is_loopback("127.0.0.1"));
    assert_true(conf_is_loopback("127.3.2.1"));
    assert_true(conf_is_loopback("::1"));
    assert_true(conf_is_loopback("::ffff:127.0.0.1"));
    assert_true(conf_is_loopback("localhost"));
    assert_false(conf_is_loopback("0.0.0.0"));
    assert_false(conf_is_loopback("::"));
    assert_false(conf_is_loopback("10.0.0.1"));
    assert_false(conf_is_loopback("128.0.0.1"));
    assert_false(conf_is_loopback("example.com"));
    /* Tokens: empty or at least 16 printable characters. */
    assert_int_equal(conf_set(&c, "auth_token", "short", err, sizeof err), -1);
    assert_int_equal(conf_set(&c, "auth_token", "0123456789abcde f", err,
                              sizeof err),
                     -1);
    assert_int_equal(conf_set(&c, "auth_token", "0123456789abcde\"", err,
                              sizeof err),
                     -1);
    assert_int_equal(conf_set(&c, "auth_token", "", err, sizeof err), 0);
    assert_int_equal(conf_set(&c, "allow_unlisted_gateways", "maybe", err,
                              sizeof err),
                     -1);
    assert_int_equal(conf_set(&c, "allow_unlisted_gateways", "yes", err,
                              sizeof err),
                     0);
    assert_true(c.allow_unlisted_gateways);
    assert_int_equal(conf_set(&c, "shutdown_grace", "3601", err, sizeof err),
                     -1);
    /* The token is never printed. */
    assert_int_equal(conf_set(&c, "auth_token", "s3cret-s3cret-s3cret", err,
                              sizeof err),
                     0);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    conf_print(&c, f);
    fclose(f);
    assert_null(strstr(out, "s3cret"));
    assert_non_null(strstr(out, "auth_token = (set)"));
    free(out);
}

static void test_conf_reload(void **state)
{
    (void)state;
    struct conf cur, next;
    char err[512];
    conf_defaults(&cur);
    conf_defaults(&next);
    assert_int_equal(conf_reload(&cur, &next), 0);
    /* Reloadable: copied. */
    conf_set(&next, "max_calls", "7", err, sizeof err);
    conf_set(&next, "max_call_rate", "9", err, sizeof err);
    conf_set(&next, "shutdown_grace", "5", err, sizeof err);
    conf_set(&next, "log_level", "debug", err, sizeof err);
    /* Not reloadable: kept. */
    conf_set(&next, "rtp_ports", "40000-40100", err, sizeof err);
    conf_set(&next, "listen", "127.0.0.1:9999", err, sizeof err);
    next.n_gateways = 1;
    snprintf(next.gateways[0].name, sizeof next.gateways[0].name, "gw");
    snprintf(next.gateways[0].host, sizeof next.gateways[0].host, "10.1.1.1");
    next.gateways[0].port = 5060;
    assert_int_equal(conf_reload(&cur, &next), 5);
    assert_int_equal(cur.max_calls, 7);
    assert_int_equal(cur.max_call_rate, 9);
    assert_int_equal(cur.shutdown_grace, 5);
    assert_string_equal(cur.log_level, "debug");
    assert_int_equal(cur.n_gateways, 1);
    assert_non_null(conf_find_gateway(&cur, "10.1.1.1", 5060));
    assert_int_equal(cur.rtp_port_min, 20000);
    assert_int_equal(cur.listen_port, 7010);
    /* A gateway removed. */
    next.n_gateways = 0;
    assert_int_equal(conf_reload(&cur, &next), 1);
    assert_int_equal(cur.n_gateways, 0);
}

static void test_conf_errors(void **state)
{
    (void)state;
    struct conf c;
    char err[512];
    conf_defaults(&c);
    assert_int_equal(conf_set(&c, "listen", "nohost", err, sizeof err), -1);
    assert_int_equal(conf_set(&c, "listen", "h:70000", err, sizeof err), -1);
    assert_int_equal(conf_set(&c, "rtp_ports", "3000-2000", err, sizeof err),
                     -1);
    assert_int_equal(conf_set(&c, "node_id", "1.2", err, sizeof err), -1);
    assert_int_equal(conf_set(&c, "max_calls", "-1", err, sizeof err), -1);
    assert_int_equal(conf_set(&c, "nonsense", "1", err, sizeof err), -1);
    assert_non_null(strstr(err, "nonsense"));
    const char *path = write_conf("listen = 127.0.0.1:7010\nbogus line\n");
    assert_int_equal(conf_load_file(&c, path, err, sizeof err), -1);
    unlink(path);
    assert_non_null(strstr(err, ":2:")); /* names the line */
    conf_defaults(&c);
    path = write_conf("[gateway g]\nport = 5060\n");
    assert_int_equal(conf_load_file(&c, path, err, sizeof err), 0);
    unlink(path);
    assert_int_equal(conf_validate(&c, err, sizeof err), -1); /* no host */
    conf_defaults(&c);
    assert_int_equal(conf_set(&c, "sip", "0.0.0.0:5060", err, sizeof err), 0);
    assert_int_equal(conf_validate(&c, err, sizeof err), -1); /* media_ip */
    assert_int_equal(conf_set(&c, "media_ip", "192.0.2.1", err, sizeof err),
                     0);
    assert_int_equal(conf_validate(&c, err, sizeof err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idmap_put_get_del),
        cmocka_unit_test(test_queue_fifo),
        cmocka_unit_test(test_conf_file_and_overrides),
        cmocka_unit_test(test_conf_errors),
        cmocka_unit_test(test_conf_security),
        cmocka_unit_test(test_conf_reload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
