/* Unit tests of sip_tls: the one CA bundle of sofia-sip's TLS context,
 * state_dir/tls/cafile.pem, joined from the tls gateways' tls_ca_file
 * (each file once, the system store for a gateway without one, nothing
 * from udp or tcp gateways), and the shared tls_verify. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/sip_int.h"

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static struct conf_gateway *add(struct conf *c, const char *name,
                                const char *tp, const char *ca)
{
    struct conf_gateway *g = &c->gateways[c->n_gateways++];
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    snprintf(g->host, sizeof g->host, "%s.example", name);
    snprintf(g->transport, sizeof g->transport, "%s", tp);
    snprintf(g->tls_ca_file, sizeof g->tls_ca_file, "%s", ca);
    g->tls_verify = true;
    return g;
}

static void test_bundle(void **state)
{
    (void)state;
    static struct conf c;
    char dir[] = "/tmp/ctid-test-tls-XXXXXX", a[64], b[64], tls[PATH_MAX + 8];
    char err[256], got[256] = "";
    assert_non_null(mkdtemp(dir));
    snprintf(a, sizeof a, "%s/a.pem", dir);
    snprintf(b, sizeof b, "%s/b.pem", dir);
    write_text(a, "AAA\n");
    write_text(b, "BBB"); /* no final newline: one is added */
    conf_defaults(&c);
    snprintf(c.state_dir, sizeof c.state_dir, "%s", dir);
    add(&c, "one", "tls", a);
    add(&c, "plain", "udp", b);   /* not tls: not trusted */
    add(&c, "two", "tls", b);
    add(&c, "three", "tls", a);   /* the same file again: once */
    assert_int_equal(sip_tls_prepare(&c, tls, sizeof tls, err, sizeof err),
                     0);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/tls/cafile.pem", dir);
    assert_string_equal(tls + strlen(tls) - 4, "/tls");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    got[fread(got, 1, sizeof got - 1, f)] = '\0';
    fclose(f);
    assert_string_equal(got, "AAA\n\nBBB\n");
    assert_true(sip_tls_verify(&c));
    /* A CA file gone since the config was read: start-up fails, naming it. */
    unlink(b);
    assert_int_equal(sip_tls_prepare(&c, tls, sizeof tls, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "b.pem: No such file or directory"));
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bundle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
