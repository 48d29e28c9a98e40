/* Unit tests of metrics: the hooks' bookkeeping, the Prometheus text
 * (exact lines, cumulative histogram buckets, label escaping) and the
 * metrics_listen key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "conf.h"
#include "metrics.h"
#include "version.h"

/* Renders m and v; returns a malloc'd NUL-terminated string. */
static char *render(const struct metrics *m, const struct metrics_view *v)
{
    struct evbuffer *b = evbuffer_new();
    assert_non_null(b);
    assert_int_equal(metrics_render(m, v, b), 0);
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    assert_non_null(s);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    evbuffer_free(b);
    return s;
}

/* True when `line` is one whole line of text. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

#define assert_line(text, line)                                               \
    do {                                                                      \
        if (!has_line(text, line))                                            \
            fail_msg("missing line: %s\n--- in:\n%s", line, text);           \
    } while (0)

static void test_empty(void **state)
{
    (void)state;
    struct metrics m = {0};
    struct metrics_view v = {0};
    char *s = render(&m, &v);
    assert_line(s, "ctid_build_info{version=\"" CTID_VERSION "\"} 1");
    assert_line(s, "# TYPE ctid_build_info gauge");
    assert_line(s, "ctid_calls_constructed_total 0");
    assert_line(s, "# TYPE ctid_calls_constructed_total counter");
    assert_line(s, "ctid_active_calls 0");
    assert_line(s, "ctid_gateway_active_calls{gateway=\"(none)\"} 0");
    assert_line(s, "ctid_construct_duration_seconds_bucket{le=\"+Inf\"} 0");
    assert_line(s, "ctid_construct_duration_seconds_sum 0");
    assert_line(s, "ctid_construct_duration_seconds_count 0");
    assert_line(s, "ctid_events_journaled_total 0");
    assert_line(s, "ctid_uptime_seconds 0.000");
    /* Every label value is present from the start, at 0. */
    for (size_t i = 0; i < METRICS_N_ERRORS; i++) {
        char want[128];
        snprintf(want, sizeof want, "ctid_calls_released_total{error=\"%s\"} 0",
                 metrics_error_label(i));
        assert_line(s, want);
    }
    for (size_t i = 0; i < METRICS_N_CODES; i++) {
        char want[128];
        snprintf(want, sizeof want,
                 "ctid_construct_refused_total{code=\"%s\"} 0",
                 metrics_code_label(i));
        assert_line(s, want);
    }
    /* Text format: every line ends in \n, none is empty, every sample's
     * family has a TYPE line before it. */
    assert_true(s[0] != '\0' && s[strlen(s) - 1] == '\n');
    assert_null(strstr(s, "\n\n"));
    for (const char *line = s; *line; line = strchr(line, '\n') + 1) {
        if (line[0] == '#')
            continue;
        char name[128], type_line[160];
        size_t n = strcspn(line, "{ ");
        assert_true(n > 0 && n < sizeof name);
        memcpy(name, line, n);
        name[n] = '\0';
        static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
        for (size_t k = 0; k < 3; k++) {
            size_t ls = strlen(suffixes[k]);
            if (n > ls && strcmp(name + n - ls, suffixes[k]) == 0) {
                /* A histogram's series: the family is the base name. */
                snprintf(type_line, sizeof type_line, "# TYPE %.*s histogram\n",
                         (int)(n - ls), name);
                if (strstr(s, type_line) != NULL)
                    name[n - ls] = '\0';
            }
        }
        snprintf(type_line, sizeof type_line, "# TYPE %s ", name);
        const char *t = strstr(s, type_line);
        if (t == NULL || t > line)
            fail_msg("no TYPE line before: %.80s", line);
    }
    free(s);
}

static void test_counters(void **state)
{
    (void)state;
    struct metrics m = {0};
    metrics_on_construct(&m, 0.0002, 0);
    metrics_on_construct(&m, 0.0002, 0);
    metrics_on_construct(&m, 0.001, 0);   /* le is inclusive: 0.001 bucket */
    metrics_on_construct(&m, 0.00005, -32602);
    metrics_on_construct(&m, 0.3, 503);   /* +Inf only */
    metrics_on_construct(&m, 0.0001, 404);
    metrics_on_construct(&m, 0.0001, 12345); /* unknown code */
    metrics_on_answered(&m);
    metrics_on_released(&m, NULL);
    metrics_on_released(&m, "call rejected");
    metrics_on_released(&m, "call rejected");
    metrics_on_released(&m, "play error");
    metrics_on_released(&m, "a text added later");
    metrics_on_connection(&m);
    metrics_on_connection(&m);
    metrics_on_event_delivered(&m);

    struct conf_gateway gw[2] = {{.name = "trunk1"}, {.name = "trunk2"}};
    unsigned gw_calls[2] = {3, 1};
    uint64_t gw_failovers[2] = {4, 0};
    struct metrics_view v = {.active_calls = 6, .connections = 1,
                             .rtp_sent = 1800000, .rtp_late = 7,
                             .uptime = 12.5, .gateways = gw,
                             .gateway_calls = gw_calls,
                             .gateway_failovers = gw_failovers,
                             .n_gateways = 2, .journal_bytes = 1048576,
                             .journal_max_bytes = 268435456,
                             .journal_first_seq = 11,
                             .journal_last_seq = 42};
    char *s = render(&m, &v);
    assert_line(s, "ctid_calls_constructed_total 3");
    assert_line(s, "ctid_construct_refused_total{code=\"-32602\"} 1");
    assert_line(s, "ctid_construct_refused_total{code=\"-32603\"} 0");
    assert_line(s, "ctid_construct_refused_total{code=\"404\"} 1");
    assert_line(s, "ctid_construct_refused_total{code=\"503\"} 1");
    assert_line(s, "ctid_construct_refused_total{code=\"other\"} 1");
    assert_line(s, "ctid_calls_answered_total 1");
    assert_line(s, "ctid_calls_released_total{error=\"none\"} 1");
    assert_line(s, "ctid_calls_released_total{error=\"call rejected\"} 2");
    assert_line(s, "ctid_calls_released_total{error=\"play error\"} 1");
    assert_line(s, "ctid_calls_released_total{error=\"other\"} 1");
    assert_line(s, "ctid_calls_released_total{error=\"dial failed\"} 0");
    assert_line(s, "ctid_active_calls 6");
    assert_line(s, "ctid_gateway_active_calls{gateway=\"trunk1\"} 3");
    assert_line(s, "ctid_gateway_active_calls{gateway=\"trunk2\"} 1");
    assert_line(s, "ctid_gateway_active_calls{gateway=\"(none)\"} 2");
    assert_line(s, "# TYPE ctid_gateway_failovers_total counter");
    assert_line(s, "ctid_gateway_failovers_total{gateway=\"trunk1\"} 4");
    assert_line(s, "ctid_gateway_failovers_total{gateway=\"trunk2\"} 0");
    assert_line(s, "ctid_rtp_packets_sent_total 1800000");
    assert_line(s, "ctid_rtp_packets_late_total 7");
    assert_line(s, "ctid_rpc_connections 1");
    assert_line(s, "ctid_rpc_connections_total 2");
    assert_line(s, "ctid_events_delivered_total 1");
    assert_line(s, "ctid_uptime_seconds 12.500");
    assert_line(s, "# TYPE ctid_journal_bytes gauge");
    assert_line(s, "ctid_journal_bytes 1048576");
    assert_line(s, "ctid_journal_max_bytes 268435456");
    assert_line(s, "ctid_journal_first_seq 11");
    assert_line(s, "ctid_journal_last_seq 42");

    /* Cumulative buckets: 0.00005, 0.0001, 0.0001 | 0.0002 x2 | 0.001 |
     * 0.3 (beyond the last bound). */
    static const char *const want[] = {
        "ctid_construct_duration_seconds_bucket{le=\"0.0001\"} 3",
        "ctid_construct_duration_seconds_bucket{le=\"0.00025\"} 5",
        "ctid_construct_duration_seconds_bucket{le=\"0.0005\"} 5",
        "ctid_construct_duration_seconds_bucket{le=\"0.001\"} 6",
        "ctid_construct_duration_seconds_bucket{le=\"0.0025\"} 6",
        "ctid_construct_duration_seconds_bucket{le=\"0.005\"} 6",
        "ctid_construct_duration_seconds_bucket{le=\"0.01\"} 6",
        "ctid_construct_duration_seconds_bucket{le=\"0.025\"} 6",
        "ctid_construct_duration_seconds_bucket{le=\"0.05\"} 6",
        "ctid_construct_duration_seconds_bucket{le=\"0.1\"} 6",
        "ctid_construct_duration_seconds_bucket{le=\"0.25\"} 6",
        "ctid_construct_duration_seconds_bucket{le=\"+Inf\"} 7",
        "# TYPE ctid_construct_duration_seconds histogram",
        "ctid_construct_duration_seconds_count 7",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_line(s, want[i]);
    /* The buckets come in increasing order of le, +Inf last. */
    const char *prev = s;
    for (size_t i = 0; i < 12; i++) {
        const char *p = strstr(s, want[i]);
        assert_non_null(p);
        assert_true(p >= prev);
        prev = p;
    }
    double sum = 0;
    const char *p = strstr(s, "\nctid_construct_duration_seconds_sum ");
    assert_non_null(p);
    assert_int_equal(sscanf(p, "\nctid_construct_duration_seconds_sum %lf",
                            &sum),
                     1);
    assert_true(sum > 0.30160 && sum < 0.30170); /* 0.30165 */
    free(s);
}

static void test_label_escaping(void **state)
{
    (void)state;
    struct metrics m = {0};
    struct conf_gateway gw[1];
    memset(gw, 0, sizeof gw);
    strcpy(gw[0].name, "a\"b\\c\nd");
    unsigned calls[1] = {2};
    struct metrics_view v = {.active_calls = 2, .gateways = gw,
                             .gateway_calls = calls, .n_gateways = 1};
    char *s = render(&m, &v);
    assert_line(s, "ctid_gateway_active_calls{gateway=\"a\\\"b\\\\c\\nd\"} 2");
    assert_line(s, "ctid_gateway_active_calls{gateway=\"(none)\"} 0");
    free(s);
}

static void test_negative_latency_clamped(void **state)
{
    (void)state;
    struct metrics m = {0};
    metrics_on_construct(&m, -1.0, 0);
    assert_int_equal(m.latency[0], 1);
    assert_true(m.latency_sum == 0.0);
}

/* Issue 16's gaps: RTP/RTCP send errors from the view, the journal's
 * unsynced gauge, and the fdatasync histogram its hook feeds. */
static void test_send_errors_and_journal_sync(void **state)
{
    (void)state;
    struct metrics m = {0};
    struct metrics_view v = {.rtp_send_lost = 25, .rtp_send_fatal = 1,
                             .rtcp_send_errors = 3, .journal_unsynced = 4};
    char *s = render(&m, &v);
    assert_line(s, "# TYPE ctid_rtp_send_errors_total counter");
    assert_line(s, "ctid_rtp_send_errors_total{kind=\"transient\"} 25");
    assert_line(s, "ctid_rtp_send_errors_total{kind=\"fatal\"} 1");
    assert_line(s, "# TYPE ctid_rtcp_send_errors_total counter");
    assert_line(s, "ctid_rtcp_send_errors_total 3");
    assert_line(s, "# TYPE ctid_journal_unsynced_events gauge");
    assert_line(s, "ctid_journal_unsynced_events 4");
    assert_line(s, "# TYPE ctid_journal_sync_seconds histogram");
    assert_line(s, "ctid_journal_sync_seconds_bucket{le=\"+Inf\"} 0");
    assert_line(s, "ctid_journal_sync_seconds_count 0");
    assert_line(s, "ctid_journal_sync_errors_total 0");
    free(s);

    metrics_on_journal_sync(&m, 0.00005, false); /* tmpfs */
    metrics_on_journal_sync(&m, 0.0008, false);  /* an SSD */
    metrics_on_journal_sync(&m, 0.001, false);   /* le is inclusive */
    metrics_on_journal_sync(&m, 0.75, true);     /* a stalled disk, failed */
    metrics_on_journal_sync(&m, 3.0, false);     /* past the last bound */
    metrics_on_journal_sync(&m, -1.0, false);    /* clock oddity: 0 */
    s = render(&m, &v);
    static const char *const want[] = {
        "ctid_journal_sync_seconds_bucket{le=\"0.0001\"} 2",
        "ctid_journal_sync_seconds_bucket{le=\"0.00025\"} 2",
        "ctid_journal_sync_seconds_bucket{le=\"0.0005\"} 2",
        "ctid_journal_sync_seconds_bucket{le=\"0.001\"} 4",
        "ctid_journal_sync_seconds_bucket{le=\"0.0025\"} 4",
        "ctid_journal_sync_seconds_bucket{le=\"0.005\"} 4",
        "ctid_journal_sync_seconds_bucket{le=\"0.01\"} 4",
        "ctid_journal_sync_seconds_bucket{le=\"0.025\"} 4",
        "ctid_journal_sync_seconds_bucket{le=\"0.05\"} 4",
        "ctid_journal_sync_seconds_bucket{le=\"0.1\"} 4",
        "ctid_journal_sync_seconds_bucket{le=\"0.25\"} 4",
        "ctid_journal_sync_seconds_bucket{le=\"0.5\"} 4",
        "ctid_journal_sync_seconds_bucket{le=\"1\"} 5",
        "ctid_journal_sync_seconds_bucket{le=\"+Inf\"} 6",
        "ctid_journal_sync_seconds_count 6",
        "ctid_journal_sync_errors_total 1",
    };
    const char *prev = s;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_line(s, want[i]);
        const char *p = strstr(s, want[i]);
        assert_true(p >= prev); /* buckets in order of le, +Inf last */
        prev = p;
    }
    double sum = 0;
    const char *p = strstr(s, "\nctid_journal_sync_seconds_sum ");
    assert_non_null(p);
    assert_int_equal(sscanf(p, "\nctid_journal_sync_seconds_sum %lf", &sum),
                     1);
    assert_true(sum > 3.75184 && sum < 3.75186); /* 3.75185 */
    /* The construct histogram is its own. */
    assert_line(s, "ctid_construct_duration_seconds_count 0");
    free(s);
}

static void test_conf_metrics_listen(void **state)
{
    (void)state;
    struct conf c;
    char err[256];
    conf_defaults(&c);
    assert_string_equal(c.metrics_host, ""); /* off by default */
    assert_int_equal(c.metrics_port, 0);
    assert_int_equal(conf_set(&c, "metrics_listen", "127.0.0.1:9110", err,
                              sizeof err),
                     0);
    assert_string_equal(c.metrics_host, "127.0.0.1");
    assert_int_equal(c.metrics_port, 9110);
    assert_int_equal(conf_set(&c, "metrics_listen", "[::1]:9111", err,
                              sizeof err),
                     0);
    assert_string_equal(c.metrics_host, "::1");
    assert_int_equal(c.metrics_port, 9111);
    assert_int_equal(conf_set(&c, "metrics_listen", "9110", err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "metrics_listen"));
    assert_int_equal(conf_set(&c, "metrics_listen", "127.0.0.1:0", err,
                              sizeof err),
                     -1);
    assert_int_equal(conf_set(&c, "metrics_listen", "", err, sizeof err), 0);
    assert_string_equal(c.metrics_host, "");
    assert_int_equal(c.metrics_port, 0);

    char buf[16384] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    assert_non_null(f);
    conf_print(&c, f);
    fclose(f);
    assert_line(buf, "metrics_listen = ");
    conf_set(&c, "metrics_listen", "[::1]:9111", err, sizeof err);
    memset(buf, 0, sizeof buf);
    f = fmemopen(buf, sizeof buf - 1, "w");
    conf_print(&c, f);
    fclose(f);
    assert_line(buf, "metrics_listen = [::1]:9111");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_negative_latency_clamped),
        cmocka_unit_test(test_send_errors_and_journal_sync),
        cmocka_unit_test(test_conf_metrics_listen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
