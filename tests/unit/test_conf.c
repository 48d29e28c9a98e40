/* Unit tests of the configuration key table (conf.c, conf_key.c), one row
 * per key: its default, a value it takes and how that prints, a value it
 * refuses and the message, and what SIGHUP does with a change. The rows
 * here are written from what ctid has always printed and logged, not from
 * the table, so a table edit that changes behaviour fails here; a key
 * added to the table without a row here fails test_every_key_has_a_row.
 * test_core.c keeps the older conf tests. */
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
#include "log.h"
#include "uri.h"

#define LONG_256 "@256" /* stands for a value of 256 'a's */
#define LONG_5000 "@5000"

struct key_case {
    const char *key;
    const char *def;      /* printed by --check-config on the defaults */
    const char *good;     /* a value the key takes ... */
    const char *printed;  /* ... and how --check-config prints it then */
    const char *bad;      /* a value it refuses ... */
    const char *why;      /* ... and the reason (after "FILE:LINE: ") */
    const char *reloaded; /* SIGHUP's line for good; NULL: takes a restart */
};

static const struct key_case top_cases[] = {
    {"listen", "127.0.0.1:7010", "[::1]:7100", "::1:7100", "nohost",
     "listen: expected HOST:PORT, got 'nohost'", NULL},
    {"sip", "127.0.0.1:5060", "10.0.0.1:5070", "10.0.0.1:5070", "h:70000",
     "sip: 70000 is outside 1..65535", NULL},
    {"public_address", "127.0.0.1", "203.0.113.5", "203.0.113.5", "a b",
     "public_address: expected a host name or address, got 'a b'", NULL},
    {"media_ip", "127.0.0.1", "192.0.2.1", "192.0.2.1", LONG_256,
     "media_ip: longer than 255 bytes", NULL},
    {"media_public_address", "127.0.0.1", "192.0.2.9", "192.0.2.9",
     "nat.example",
     "media_public_address: expected an IPv4 or IPv6 address, got "
     "'nat.example'", NULL},
    {"rtp_ports", "20000-29999", "30000-30100", "30000-30100", "3000-2000",
     "rtp_ports: expected LO-HI within 1024-65535 with at least two ports, "
     "got '3000-2000'",
     NULL},
    {"media_threads", "1", "16", "16", "17",
     "media_threads: 17 is outside 1..16", NULL},
    {"worker_threads", "2", "1", "1", "0",
     "worker_threads: 0 is outside 1..16", NULL},
    {"max_prompt_seconds", "600", "0", "0", "86401",
     "max_prompt_seconds: 86401 is outside 0..86400",
     "SIGHUP: max_prompt_seconds 600 -> 0"},
    {"max_tts_bytes", "4096", "1000000", "1000000", "1000001",
     "max_tts_bytes: 1000001 is outside 0..1000000",
     "SIGHUP: max_tts_bytes 4096 -> 1000000"},
    {"prompt_dir", "/usr/share/ctid/prompts", "/tmp/p", "/tmp/p", LONG_5000,
     "prompt_dir: longer than 4095 bytes", NULL},
    {"prompt_roots", "", "/data/prd, /srv/p", "/data/prd, /srv/p", "/a,b",
     "prompt_roots: expected absolute directories separated by commas, got "
     "'/a,b'", NULL},
    {"state_dir", "/var/lib/ctid", "/tmp/s", "/tmp/s", LONG_5000,
     "state_dir: longer than 4095 bytes", NULL},
    {"node_id", "0.0.0", "1.22.333", "1.22.333", "1.2",
     "node_id: expected area.station.instance like 0.0.0, got '1.2'", NULL},
    {"default_from", "ctid", "bob", "bob", LONG_256,
     "default_from: longer than 127 bytes", NULL},
    {"max_calls", "1000", "7", "7", "-1", "max_calls: '-1' is not a number",
     "SIGHUP: max_calls 1000 -> 7"},
    {"max_line", "65536", "1024", "1024", "1023",
     "max_line: 1023 is outside 1024..16777216",
     "SIGHUP: max_line 65536 -> 1024"},
    {"max_connections", "1024", "1", "1", "0",
     "max_connections: 0 is outside 1..1000000",
     "SIGHUP: max_connections 1024 -> 1"},
    {"max_connections_per_ip", "256", "0", "0", "x",
     "max_connections_per_ip: 'x' is not a number",
     "SIGHUP: max_connections_per_ip 256 -> 0"},
    {"handshake_timeout", "10", "0", "0", "3601",
     "handshake_timeout: 3601 is outside 0..3600",
     "SIGHUP: handshake_timeout 10 -> 0"},
    {"max_call_rate", "200", "9", "9", "1000001",
     "max_call_rate: 1000001 is outside 0..1000000",
     "SIGHUP: max_call_rate 200 -> 9"},
    {"max_output_bytes", "1048576", "4096", "4096", "4095",
     "max_output_bytes: 4095 is outside 4096..1073741824",
     "SIGHUP: max_output_bytes 1048576 -> 4096"},
    {"dial_timeout", "60", "2", "2", "1", "dial_timeout: 1 is outside 2..3600",
     NULL},
    {"max_ring_seconds", "50", "3600", "3600", "0",
     "max_ring_seconds: 0 is outside 1..3600",
     "SIGHUP: max_ring_seconds 50 -> 3600"},
    {"session_expires", "1800", "0", "0", "86401",
     "session_expires: 86401 is outside 0..86400", NULL},
    {"min_se", "90", "1", "1", "0", "min_se: 0 is outside 1..86400", NULL},
    {"log_level", "info", "DEBUG", "DEBUG", "loud",
     "log_level: expected error, warn, info or debug, got 'loud'",
     "SIGHUP: log_level info -> DEBUG"},
    {"log_file", "", "/tmp/l.log", "/tmp/l.log", LONG_5000,
     "log_file: longer than 4095 bytes", NULL},
    {"cdr_file", "", "/tmp/c.cdr", "/tmp/c.cdr", LONG_5000,
     "cdr_file: longer than 4095 bytes", NULL},
    {"cdr_format", "ctid", "ipsc", "ipsc", "csv",
     "cdr_format: expected ctid or ipsc, got 'csv'", NULL},
    {"metrics_listen", "", "[::1]:9100", "[::1]:9100", "9100",
     "metrics_listen: expected HOST:PORT, got '9100'", NULL},
    {"journal_max_bytes", "268435456", "1099511627776", "1099511627776",
     "1048575", "journal_max_bytes: 1048575 is outside 1048576..1099511627776",
     NULL},
    {"journal_max_age", "604800", "60", "60", "59",
     "journal_max_age: 59 is outside 60..315360000", NULL},
    {"request_key_ttl", "86400", "1", "1", "0",
     "request_key_ttl: 0 is outside 1..315360000", NULL},
    {"shutdown_grace", "30", "5", "5", "3601",
     "shutdown_grace: 3601 is outside 0..3600",
     "SIGHUP: shutdown_grace 30 -> 5"},
    {"auth_token", "", "s3cret-s3cret-s3cret", "(set)", "short",
     "auth_token: at least 16 characters (or empty for none)",
     "SIGHUP: auth_token changed"},
    {"allow_unlisted_gateways", "no", "yes", "yes", "maybe",
     "allow_unlisted_gateways: expected yes or no, got 'maybe'",
     "SIGHUP: allow_unlisted_gateways yes"},
    {"redis", "", "unix:/run/redis.sock", "unix:/run/redis.sock",
     "redis.example:6379", "redis: expected IP:PORT, [IPV6]:PORT or "
     "unix:/PATH, got 'redis.example:6379'", NULL},
    {"redis_password", "", "pw", "(set)", LONG_256,
     "redis_password: longer than 255 bytes", NULL},
    {"redis_prefix", "ctid", "ctid.a", "ctid.a", "a b",
     "redis_prefix: expected printable characters without spaces, got 'a b'",
     NULL},
    {"redis_events_maxlen", "1000000", "100", "100", "99",
     "redis_events_maxlen: 99 is outside 100..1099511627776", NULL},
    {"redis_requests", "yes", "no", "no", "maybe",
     "redis_requests: expected yes or no, got 'maybe'", NULL},
    {"redis_claim_idle", "10", "1", "1", "0",
     "redis_claim_idle: 0 is outside 1..3600", NULL},
    {"redis_replies_maxlen", "100000", "100", "100", "99",
     "redis_replies_maxlen: 99 is outside 100..1099511627776", NULL},
};

/* [gateway NAME] keys; reloaded is unused (gateways reload as a whole).
 * An empty username, password, proxy, caller_id, headers or tls_ca_file
 * is not printed at all; port and domain print what is in effect. */
static const struct key_case gateway_cases[] = {
    {"host", "", "10.0.0.1", "10.0.0.1", LONG_256,
     "host: longer than 255 bytes", NULL},
    {"port", "5060", "5080", "5080", "65536",
     "port: 65536 is outside 0..65535", NULL},
    {"max_calls", "0", "30", "30", "1000001",
     "max_calls: 1000001 is outside 0..1000000", NULL},
    {"username", NULL, "alice", "alice", LONG_256,
     "username: longer than 127 bytes", NULL},
    {"password", NULL, "pa#ss", "(set)", LONG_256,
     "password: longer than 127 bytes", NULL},
    {"transport", "udp", "tls", "tls", "sctp",
     "transport: expected udp, tcp or tls, got 'sctp'", NULL},
    {"domain", "", "carrier.example", "carrier.example", "bad domain",
     "domain: expected a host name or address, got 'bad domain'", NULL},
    {"proxy", NULL, "[2001:db8::1]:5070", "[2001:db8::1]:5070",
     "sip:p.example",
     "proxy: expected HOST[:PORT] (IPv6 in brackets), got 'sip:p.example'",
     NULL},
    {"caller_id", NULL, "+8610", "+8610", "a b",
     "caller_id: 'a b' is not a SIP user part (no spaces, '@', ':', ';', "
     "quotes or <>)", NULL},
    {"pai", "no", "yes", "yes", "maybe", "pai: expected yes or no, got 'maybe'",
     NULL},
    {"headers", NULL, "X-Account: 42; X-Uri: <sip:a@b;user=phone>",
     "X-Account: 42; X-Uri: <sip:a@b;user=phone>", "Via: x",
     "headers: 'Via' is a header ctid writes itself", NULL},
    {"tls_verify", "yes", "no", "no", "1",
     "tls_verify: expected yes or no, got '1'", NULL},
    {"tls_ca_file", NULL, "/etc/passwd", "/etc/passwd", "/nonexistent/ca.pem",
     "tls_ca_file: /nonexistent/ca.pem: No such file or directory", NULL},
    {"register", "no", "yes", "yes", "maybe",
     "register: expected yes or no, got 'maybe'", NULL},
    {"register_expires", "600", "10", "10", "9",
     "register_expires: 9 is outside 10..86400", NULL},
    {"options_interval", "0", "2", "2", "3601",
     "options_interval: 3601 is outside 0..3600", NULL},
};

#define N_TOP (sizeof top_cases / sizeof top_cases[0])
#define N_GATEWAY (sizeof gateway_cases / sizeof gateway_cases[0])

/* The value a case means: LONG_* expands to that many 'a's. */
static const char *value_of(const char *v)
{
    static char buf[8192];
    if (v[0] != '@')
        return v;
    size_t n = (size_t)atoi(v + 1);
    memset(buf, 'a', n);
    buf[n] = '\0';
    return buf;
}

static char *printed(const struct conf *c)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    conf_print(c, f);
    fclose(f);
    return out;
}

/* Does conf_print(c) have the line "KEY = VALUE"? */
static bool prints(const struct conf *c, const char *key, const char *value)
{
    char line[512];
    snprintf(line, sizeof line, "\n%s = %s\n", key, value);
    char *out = printed(c);
    char *all = malloc(strlen(out) + 2);
    assert_non_null(all);
    all[0] = '\n';
    strcpy(all + 1, out);
    bool found = strstr(all, line) != NULL;
    free(all);
    free(out);
    return found;
}

static const char *write_file(const char *text)
{
    static char path[64];
    strcpy(path, "/tmp/ctid-test-conf-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_every_key_has_a_row(void **state)
{
    (void)state;
    struct conf_key_info k;
    size_t i;
    for (i = 0; conf_key_at(false, i, &k); i++) {
        assert_true(i < N_TOP);
        assert_string_equal(k.name, top_cases[i].key); /* print order */
        assert_int_equal(k.reload, top_cases[i].reloaded != NULL);
        assert_int_equal(k.secret, strcmp(k.name, "auth_token") == 0 ||
                                       strcmp(k.name, "redis_password") == 0);
    }
    assert_int_equal(i, N_TOP);
    for (i = 0; conf_key_at(true, i, &k); i++) {
        assert_true(i < N_GATEWAY);
        assert_string_equal(k.name, gateway_cases[i].key);
        assert_int_equal(k.secret, strcmp(k.name, "password") == 0);
    }
    assert_int_equal(i, N_GATEWAY);
}

static void test_defaults(void **state)
{
    (void)state;
    struct conf c;
    char err[512];
    conf_defaults(&c);
    for (size_t i = 0; i < N_TOP; i++)
        assert_true(prints(&c, top_cases[i].key, top_cases[i].def));
    /* Every default is text the parser itself takes. */
    struct conf_key_info k;
    for (size_t i = 0; conf_key_at(false, i, &k); i++) {
        assert_int_equal(conf_set(&c, k.name, k.def, err, sizeof err), 0);
        assert_string_equal(conf_default(k.name), k.def); /* ctid --help */
    }
    assert_null(conf_default("nonsense"));
    assert_int_equal(conf_validate(&c, err, sizeof err), 0);
}

static void test_good_and_bad_values(void **state)
{
    (void)state;
    struct conf c;
    char err[512];
    for (size_t i = 0; i < N_TOP; i++) {
        const struct key_case *t = &top_cases[i];
        conf_defaults(&c);
        assert_int_equal(conf_set(&c, t->key, t->good, err, sizeof err), 0);
        assert_true(prints(&c, t->key, t->printed));
        /* A refused value leaves the key as it was. */
        assert_int_equal(conf_set(&c, t->key, value_of(t->bad), err,
                                  sizeof err),
                         -1);
        assert_string_equal(err, t->why);
        assert_true(prints(&c, t->key, t->printed));
    }
    assert_int_equal(conf_set(&c, "nonsense", "1", err, sizeof err), -1);
    assert_string_equal(err, "unknown key 'nonsense'");
}

/* The same through a file: the reason comes as FILE:LINE: reason. (A
 * line longer than the reader's 4 KiB buffer is read as two lines, so the
 * 5000-byte values are for conf_set and the flags only.) */
static void test_file_messages(void **state)
{
    (void)state;
    struct conf c;
    char err[8192], text[8192], want[8192];
    for (size_t i = 0; i < N_TOP; i++) {
        const struct key_case *t = &top_cases[i];
        if (strcmp(t->bad, LONG_5000) == 0)
            continue;
        snprintf(text, sizeof text, "# ctid\n%s = %s\n", t->key,
                 value_of(t->bad));
        const char *path = write_file(text);
        conf_defaults(&c);
        assert_int_equal(conf_load_file(&c, path, err, sizeof err), -1);
        snprintf(want, sizeof want, "%s:2: %s", path, t->why);
        assert_string_equal(err, want);
        unlink(path);
    }
}

static void test_gateway_keys(void **state)
{
    (void)state;
    struct conf c;
    char err[8192], text[8192], want[8192];
    for (size_t i = 0; i < N_GATEWAY; i++) {
        const struct key_case *t = &gateway_cases[i];
        snprintf(text, sizeof text, "[gateway g]\n%s = %s\n", t->key,
                 value_of(t->bad));
        const char *path = write_file(text);
        conf_defaults(&c);
        assert_int_equal(conf_load_file(&c, path, err, sizeof err), -1);
        snprintf(want, sizeof want, "%s:2: %s", path, t->why);
        assert_string_equal(err, want);
        unlink(path);
    }
    /* Defaults, then every key set. */
    const char *path = write_file("[gateway g]\n");
    conf_defaults(&c);
    assert_int_equal(conf_load_file(&c, path, err, sizeof err), 0);
    unlink(path);
    char *out = printed(&c);
    assert_non_null(strstr(out, "\n\n[gateway g]\nhost = \nport = 5060\n"
                                "max_calls = 0\ntransport = udp\n"
                                "domain = \npai = no\ntls_verify = yes\n"
                                "register = no\nregister_expires = 600\n"
                                "options_interval = 0\n"));
    assert_null(strstr(out, "username"));
    assert_null(strstr(out, "\npassword")); /* not redis_password */
    free(out);
    char *p = text;
    p += sprintf(p, "[gateway g]\n");
    for (size_t i = 0; i < N_GATEWAY; i++)
        p += sprintf(p, "%s = %s\n", gateway_cases[i].key,
                     gateway_cases[i].good);
    path = write_file(text);
    conf_defaults(&c);
    assert_int_equal(conf_load_file(&c, path, err, sizeof err), 0);
    unlink(path);
    out = printed(&c);
    p = want;
    p += sprintf(p, "\n\n[gateway g]\n");
    for (size_t i = 0; i < N_GATEWAY; i++)
        p += sprintf(p, "%s = %s\n", gateway_cases[i].key,
                     gateway_cases[i].printed);
    assert_non_null(strstr(out, want));
    assert_null(strstr(out, "pa#ss"));
    free(out);
    assert_string_equal(c.gateways[0].password, "pa#ss");
    assert_int_equal(conf_set(&c, "username", "x", err, sizeof err), -1);
    path = write_file("[gateway g]\nbogus = 1\n");
    assert_int_equal(conf_load_file(&c, path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:2: unknown gateway key 'bogus'", path);
    assert_string_equal(err, want);
    unlink(path);
}

/* What SIGHUP does with each key changed alone: a reloadable key is copied
 * and logged in its own words, any other is kept and logged as taking a
 * restart. */
/* register = yes without credentials: refused with the reason. */
static void test_register_needs_credentials(void **state)
{
    (void)state;
    struct conf c;
    char err[512];
    const char *path = write_file("[gateway t1]\nhost = 10.0.0.1\n"
                                  "register = yes\n");
    conf_defaults(&c);
    assert_int_equal(conf_load_file(&c, path, err, sizeof err), 0);
    unlink(path);
    assert_int_equal(conf_validate(&c, err, sizeof err), -1);
    assert_string_equal(err, "[gateway t1]: register = yes needs username "
                             "and password (the registrar's credentials)");
    snprintf(c.gateways[0].username, sizeof c.gateways[0].username, "u");
    snprintf(c.gateways[0].password, sizeof c.gateways[0].password, "p");
    assert_int_equal(conf_validate(&c, err, sizeof err), 0);
}

static void test_reload_classification(void **state)
{
    (void)state;
    static struct conf cur, next;
    char err[512], line[1024];
    char log_path[] = "/tmp/ctid-test-conf-log-XXXXXX";
    int fd = mkstemp(log_path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(log_open(LOGL_DEBUG, log_path), 0);
    for (size_t i = 0; i < N_TOP; i++) {
        const struct key_case *t = &top_cases[i];
        assert_int_equal(truncate(log_path, 0), 0);
        conf_defaults(&cur);
        conf_defaults(&next);
        assert_int_equal(conf_set(&next, t->key, t->good, err, sizeof err), 0);
        unsigned changed = conf_reload(&cur, &next);
        FILE *f = fopen(log_path, "r");
        assert_non_null(f);
        char logged[8192] = "";
        size_t n = fread(logged, 1, sizeof logged - 1, f);
        logged[n] = '\0';
        fclose(f);
        if (t->reloaded != NULL) {
            assert_int_equal(changed, 1);
            snprintf(line, sizeof line, "info: %s\n", t->reloaded);
            assert_string_equal(logged, line);
            assert_true(prints(&cur, t->key, t->printed));
        } else {
            assert_int_equal(changed, 0);
            snprintf(line, sizeof line,
                     "warn: SIGHUP: '%s = %s' in the file, running with "
                     "'%s = %s': that key takes a restart\n",
                     t->key, t->printed, t->key, t->def);
            assert_non_null(strstr(logged, line));
            assert_true(prints(&cur, t->key, t->def));
        }
    }
    /* A token removed, a yes turned back to no. */
    assert_int_equal(truncate(log_path, 0), 0);
    conf_defaults(&cur);
    conf_defaults(&next);
    conf_set(&cur, "auth_token", "s3cret-s3cret-s3cret", err, sizeof err);
    conf_set(&cur, "allow_unlisted_gateways", "yes", err, sizeof err);
    assert_int_equal(conf_reload(&cur, &next), 2);
    FILE *f = fopen(log_path, "r");
    assert_non_null(f);
    char logged[1024] = "";
    logged[fread(logged, 1, sizeof logged - 1, f)] = '\0';
    fclose(f);
    assert_string_equal(logged, "info: SIGHUP: auth_token removed\n"
                                "info: SIGHUP: allow_unlisted_gateways no\n");
    assert_null(strstr(logged, "s3cret"));
    log_close();
    unlink(log_path);
}

/* --check-config on a file that sets every key, byte for byte as ctid
 * printed it before the key table existed. */
static void test_print_every_key_set(void **state)
{
    (void)state;
    static struct conf c;
    char err[512];
    const char *path = write_file(
        "listen = 0.0.0.0:7100\nsip = [::1]:5070\nmedia_ip = ::1\n"
        "rtp_ports = 30000-30100\nmedia_threads = 3\nworker_threads = 4\n"
        "max_prompt_seconds = 0\nmax_tts_bytes = 100\nprompt_dir = /tmp/p\n"
        "prompt_roots = /data/prd\n"
        "state_dir = /tmp/s\njournal_max_bytes = 1099511627776\n"
        "journal_max_age = 60\nrequest_key_ttl = 5\n"
        "node_id = 1.22.333\ndefault_from = bob\n"
        "max_calls = 5\nmax_line = 1024\nmax_connections = 7\n"
        "max_connections_per_ip = 0\nhandshake_timeout = 0\n"
        "max_call_rate = 0\nmax_output_bytes = 4096\ndial_timeout = 2\n"
        "max_ring_seconds = 3600\nsession_expires = 0\nmin_se = 1\n"
        "log_level = DEBUG\nlog_file = /tmp/l.log\ncdr_file = /tmp/c.cdr\n"
        "cdr_format = ipsc\n"
        "metrics_listen = [::1]:9100\nshutdown_grace = 0\n"
        "auth_token = s3cret-s3cret-s3cret\nallow_unlisted_gateways = yes\n"
        "redis = [::1]:6380\nredis_password = pw\nredis_prefix = p1\n"
        "redis_events_maxlen = 5000\nredis_requests = no\n"
        "redis_claim_idle = 3600\nredis_replies_maxlen = 200\n"
        "\n[gateway a]\nhost = 10.0.0.1\nport = 5080\nmax_calls = 3\n"
        "username = alice\npassword = pw\n[gateway b b]\nhost = example.com\n");
    conf_defaults(&c);
    assert_int_equal(conf_load_file(&c, path, err, sizeof err), 0);
    unlink(path);
    assert_int_equal(conf_validate(&c, err, sizeof err), 0);
    char *out = printed(&c);
    assert_string_equal(
        out,
        "listen = 0.0.0.0:7100\nsip = ::1:5070\npublic_address = ::1\n"
        "media_ip = ::1\nmedia_public_address = ::1\n"
        "rtp_ports = 30000-30100\nmedia_threads = 3\nworker_threads = 4\n"
        "max_prompt_seconds = 0\nmax_tts_bytes = 100\nprompt_dir = /tmp/p\n"
        "prompt_roots = /data/prd\n"
        "state_dir = /tmp/s\nnode_id = 1.22.333\ndefault_from = bob\n"
        "max_calls = 5\nmax_line = 1024\nmax_connections = 7\n"
        "max_connections_per_ip = 0\nhandshake_timeout = 0\n"
        "max_call_rate = 0\nmax_output_bytes = 4096\ndial_timeout = 2\n"
        "max_ring_seconds = 3600\nsession_expires = 0\nmin_se = 1\n"
        "log_level = DEBUG\nlog_file = /tmp/l.log\ncdr_file = /tmp/c.cdr\n"
        "cdr_format = ipsc\n"
        "metrics_listen = [::1]:9100\njournal_max_bytes = 1099511627776\n"
        "journal_max_age = 60\nrequest_key_ttl = 5\nshutdown_grace = 0\n"
        "auth_token = (set)\n"
        "allow_unlisted_gateways = yes\n"
        "redis = [::1]:6380\nredis_password = (set)\nredis_prefix = p1\n"
        "redis_events_maxlen = 5000\nredis_requests = no\n"
        "redis_claim_idle = 3600\nredis_replies_maxlen = 200\n"
        "\n[gateway a]\nhost = 10.0.0.1\nport = 5080\nmax_calls = 3\n"
        "username = alice\npassword = (set)\ntransport = udp\n"
        "domain = 10.0.0.1\npai = no\ntls_verify = yes\nregister = no\n"
        "register_expires = 600\noptions_interval = 0\n"
        "\n[gateway b b]\nhost = example.com\nport = 5060\nmax_calls = 0\n"
        "transport = udp\ndomain = example.com\npai = no\n"
        "tls_verify = yes\nregister = no\nregister_expires = 600\n"
        "options_interval = 0\n");
    free(out);
}

/* --check-config with no file: the defaults, byte for byte. */
static void test_print_defaults(void **state)
{
    (void)state;
    struct conf c;
    conf_defaults(&c);
    char *out = printed(&c);
    assert_string_equal(
        out,
        "listen = 127.0.0.1:7010\nsip = 127.0.0.1:5060\n"
        "public_address = 127.0.0.1\n"
        "media_ip = 127.0.0.1\nmedia_public_address = 127.0.0.1\n"
        "rtp_ports = 20000-29999\nmedia_threads = 1\n"
        "worker_threads = 2\nmax_prompt_seconds = 600\nmax_tts_bytes = 4096\n"
        "prompt_dir = /usr/share/ctid/prompts\nprompt_roots = \n"
        "state_dir = /var/lib/ctid\n"
        "node_id = 0.0.0\ndefault_from = ctid\nmax_calls = 1000\n"
        "max_line = 65536\nmax_connections = 1024\n"
        "max_connections_per_ip = 256\nhandshake_timeout = 10\n"
        "max_call_rate = 200\nmax_output_bytes = 1048576\n"
        "dial_timeout = 60\nmax_ring_seconds = 50\nsession_expires = 1800\n"
        "min_se = 90\nlog_level = info\nlog_file = \ncdr_file = \n"
        "cdr_format = ctid\nmetrics_listen = \njournal_max_bytes = 268435456\n"
        "journal_max_age = 604800\nrequest_key_ttl = 86400\n"
        "shutdown_grace = 30\nauth_token = \n"
        "allow_unlisted_gateways = no\nredis = \nredis_password = \n"
        "redis_prefix = ctid\n"
        "redis_events_maxlen = 1000000\nredis_requests = yes\n"
        "redis_claim_idle = 10\nredis_replies_maxlen = 100000\n");
    free(out);
}

/* Each bad carrier-trunk value refused with FILE:LINE and its reason. */
static void test_trunk_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *line, *why;
    } cases[] = {
        {"headers = X-A: 1; From: <sip:x@y>",
         "headers: 'From' is a header ctid writes itself"},
        {"headers = p-asserted-identity: <sip:1@x>",
         "headers: 'p-asserted-identity' is a header ctid writes itself"},
        {"headers = X A: 1", "headers: expected 'Name: value' at 'X A: 1'"},
        {"headers = f: x", "headers: 'f' is a compact header form; write the "
                           "full name"},
        {"headers = X-A:", "headers: 'X-A' has an empty value"},
        {"headers = X-A: a\x01" "b",
         "headers: the value of 'X-A' has a control character (0x01)"},
        {"headers = X-A: 1; X-a: 2", "headers: 'X-a' is listed twice"},
        {"proxy = p.example:0",
         "proxy: expected HOST[:PORT] (IPv6 in brackets), got 'p.example:0'"},
        {"proxy = user@p.example", "proxy: expected HOST[:PORT] (IPv6 in "
                                   "brackets), got 'user@p.example'"},
        {"transport = TLS", "transport: expected udp, tcp or tls, got 'TLS'"},
        {"caller_id = 1<2", "caller_id: '1<2' is not a SIP user part (no "
                            "spaces, '@', ':', ';', quotes or <>)"},
        {"tls_ca_file = /", "tls_ca_file: /: not a regular file"},
    };
    struct conf c;
    char err[1024], text[512], want[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(text, sizeof text, "[gateway g]\nhost = h\n%s\n",
                 cases[i].line);
        const char *path = write_file(text);
        conf_defaults(&c);
        assert_int_equal(conf_load_file(&c, path, err, sizeof err), -1);
        snprintf(want, sizeof want, "%s:3: %s", path, cases[i].why);
        assert_string_equal(err, want);
        unlink(path);
    }
    /* Values keep their own ';' parameters. */
    const char *path = write_file("[gateway g]\nhost = h\n"
                                  "headers = X-Uri: <sip:a@b;user=phone>;"
                                  "lr; X-B:2\n");
    conf_defaults(&c);
    assert_int_equal(conf_load_file(&c, path, err, sizeof err), 0);
    unlink(path);
    assert_string_equal(c.gateways[0].headers,
                        "X-Uri: <sip:a@b;user=phone>;lr; X-B:2");
}

/* The cross-field checks: tls gateways share one TLS context; the public
 * media address has the bound one's family. */
static void test_trunk_validate(void **state)
{
    (void)state;
    struct conf c;
    char err[512];
    const char *path = write_file("[gateway a]\nhost = a\ntransport = tls\n"
                                  "[gateway b]\nhost = b\ntransport = tls\n"
                                  "tls_verify = no\n");
    conf_defaults(&c);
    assert_int_equal(conf_load_file(&c, path, err, sizeof err), 0);
    unlink(path);
    assert_int_equal(conf_validate(&c, err, sizeof err), -1);
    assert_string_equal(err, "[gateway b]: tls_verify differs from [gateway "
                             "a]: all tls gateways share one TLS context and "
                             "must agree");
    c.gateways[1].tls_verify = true;
    assert_int_equal(conf_validate(&c, err, sizeof err), 0);
    assert_int_equal(conf_gateway_port(&c.gateways[0]), 5061);
    assert_true(conf_uses_tls(&c));
    assert_int_equal(conf_set(&c, "media_public_address", "2001:db8::1", err,
                              sizeof err), 0);
    assert_int_equal(conf_validate(&c, err, sizeof err), -1);
    assert_string_equal(err, "media_public_address 2001:db8::1 and media_ip "
                             "127.0.0.1 are of different address families");
}

static const char *routed(const struct conf *c, const char *to)
{
    struct uri u;
    assert_int_equal(uri_parse(to, &u, NULL, 0), 0);
    const struct conf_gateway *g = conf_route_gateway(c, &u);
    return g ? g->name : "(none)";
}

/* Which gateway a to_uri names: by section name without a port, else by
 * host and the port in effect. */
static void test_route_gateway(void **state)
{
    (void)state;
    struct conf c;
    char err[512];
    const char *path = write_file(
        "[gateway trunk1]\nhost = 10.0.0.5\ntransport = tls\n"
        "[gateway plain]\nhost = 10.0.0.6\n"
        "[gateway odd]\nhost = 10.0.0.7\nport = 5070\n");
    conf_defaults(&c);
    assert_int_equal(conf_load_file(&c, path, err, sizeof err), 0);
    unlink(path);
    assert_string_equal(routed(&c, "13800000000@trunk1"), "trunk1");
    assert_string_equal(routed(&c, "13800000000@TRUNK1"), "trunk1");
    assert_string_equal(routed(&c, "13800000000@trunk1:5060"), "(none)");
    assert_string_equal(routed(&c, "1@10.0.0.5"), "trunk1");
    assert_string_equal(routed(&c, "1@10.0.0.5:5061"), "trunk1");
    assert_string_equal(routed(&c, "1@10.0.0.5:5060"), "(none)");
    assert_string_equal(routed(&c, "1@10.0.0.6"), "plain");
    assert_string_equal(routed(&c, "1@10.0.0.6:5060"), "plain");
    assert_string_equal(routed(&c, "1@10.0.0.7"), "(none)");
    assert_string_equal(routed(&c, "1@10.0.0.7:5070"), "odd");
    assert_string_equal(routed(&c, "1@plain"), "plain");
    struct uri u;
    uri_parse("1@plain", &u, NULL, 0);
    assert_true(conf_route_by_name(&c, &u));
    uri_parse("1@10.0.0.6", &u, NULL, 0);
    assert_false(conf_route_by_name(&c, &u));
    /* How an entry echoes: as written when it names a gateway. */
    char buf[300];
    conf_route_echo(&c, &u, buf, sizeof buf);
    assert_string_equal(buf, "1@10.0.0.6:5060");
    uri_parse("sip:1@Trunk1", &u, NULL, 0);
    conf_route_echo(&c, &u, buf, sizeof buf);
    assert_string_equal(buf, "1@Trunk1");
    assert_string_equal(conf_gateway_transport(&c.gateways[0]), "tls");
    assert_string_equal(conf_gateway_transport(&c.gateways[1]), "udp");
}

/* SIGHUP logs each gateway key that changed, in --check-config's words. */
static void test_reload_gateway_keys(void **state)
{
    (void)state;
    static struct conf cur, next;
    char err[512];
    char log_path[] = "/tmp/ctid-test-conf-log-XXXXXX";
    int fd = mkstemp(log_path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(log_open(LOGL_DEBUG, log_path), 0);
    const char *path = write_file("[gateway g]\nhost = h\n");
    conf_defaults(&cur);
    assert_int_equal(conf_load_file(&cur, path, err, sizeof err), 0);
    unlink(path);
    path = write_file("[gateway g]\nhost = h\ntransport = tcp\n"
                      "domain = d.example\nproxy = p.example:5070\n"
                      "headers = X-A: 1\npai = yes\npassword = x\n"
                      "username = u\n");
    conf_defaults(&next);
    assert_int_equal(conf_load_file(&next, path, err, sizeof err), 0);
    unlink(path);
    assert_int_equal(conf_reload(&cur, &next), 7);
    FILE *f = fopen(log_path, "r");
    assert_non_null(f);
    char logged[4096] = "";
    logged[fread(logged, 1, sizeof logged - 1, f)] = '\0';
    fclose(f);
    assert_string_equal(logged,
                        "info: SIGHUP: [gateway g] username (none) -> u\n"
                        "info: SIGHUP: [gateway g] password changed\n"
                        "info: SIGHUP: [gateway g] transport udp -> tcp\n"
                        "info: SIGHUP: [gateway g] domain h -> d.example\n"
                        "info: SIGHUP: [gateway g] proxy (none) -> "
                        "p.example:5070\n"
                        "info: SIGHUP: [gateway g] pai no -> yes\n"
                        "info: SIGHUP: [gateway g] headers (none) -> X-A: 1\n");
    assert_string_equal(cur.gateways[0].proxy, "p.example:5070");
    log_close();
    unlink(log_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_key_has_a_row),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_good_and_bad_values),
        cmocka_unit_test(test_file_messages),
        cmocka_unit_test(test_gateway_keys),
        cmocka_unit_test(test_register_needs_credentials),
        cmocka_unit_test(test_reload_classification),
        cmocka_unit_test(test_print_every_key_set),
        cmocka_unit_test(test_print_defaults),
        cmocka_unit_test(test_trunk_refusals),
        cmocka_unit_test(test_trunk_validate),
        cmocka_unit_test(test_route_gateway),
        cmocka_unit_test(test_reload_gateway_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
