/* Unit tests: ledger (the durable list of calls not yet released). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "crc32.h"
#include "ledger.h"
#include "log.h"
#include "testutil.h"

static char dir[TU_DIR_MAX];

static int setup(void **state)
{
    (void)state;
    return tu_mkdtemp(dir, sizeof dir, "ledger");
}

static int teardown(void **state)
{
    (void)state;
    return tu_rmtree(dir);
}

static void fill(struct ledger_call *lc, uint64_t pid, const char *ud)
{
    memset(lc, 0, sizeof *lc);
    lc->process_id = pid;
    snprintf(lc->res_id, sizeof lc->res_id, "0.0.0-ext.notify_call-%llu",
             (unsigned long long)pid);
    lc->seq = pid * 10;
    lc->begin_time = 1795600000;
    lc->user_data = (char *)ud;
    snprintf(lc->to_uri, sizeof lc->to_uri, "138@10.0.0.5:5060");
    snprintf(lc->uuid, sizeof lc->uuid,
             "01234567-89ab-cdef-0123-456789abcdef");
    snprintf(lc->sip_call_id, sizeof lc->sip_call_id, "%llu@ctid",
             (unsigned long long)pid);
    snprintf(lc->caller, sizeof lc->caller, "ctid");
}

static struct sip_dialog sample_dialog(bool established)
{
    struct sip_dialog d;
    memset(&d, 0, sizeof d);
    snprintf(d.request_uri, sizeof d.request_uri, "sip:138@10.0.0.5:5060");
    snprintf(d.call_id, sizeof d.call_id, "abc@ctid");
    snprintf(d.from, sizeof d.from, "<sip:ctid@10.0.0.1:5060>;tag=x1");
    snprintf(d.to, sizeof d.to, "<sip:138@10.0.0.5:5060>;tag=y2");
    snprintf(d.route, sizeof d.route, "<sip:10.0.0.9;lr>");
    snprintf(d.branch, sizeof d.branch, "z9hG4bK-42");
    d.cseq = 7;
    d.established = established;
    return d;
}

/* Opens the ledger in at, which must succeed. Returns how many calls it
 * left open (orphans, the caller's to free with ledger_calls_free). */
static size_t open_ledger(struct ledger *l, const char *at,
                          struct ledger_call **orphans)
{
    size_t count;
    char err[256];

    assert_int_equal(ledger_open(l, at, orphans, &count, err, sizeof err), 0);
    return count;
}

static void test_open_add_close_reopen(void **state)
{
    (void)state;
    struct ledger l;
    struct ledger_call *orphans;
    size_t n;
    n = open_ledger(&l, dir, &orphans);
    assert_int_equal(n, 0);
    struct ledger_call a, b, c;
    fill(&a, 101, "\"hello \\\"quoted\\\"\"");
    fill(&b, 102, NULL);
    fill(&c, 103, "{\"order\":42,\"tags\":[\"x\"]}"); /* issue 12 */
    assert_int_equal(ledger_add(&l, &a), 0);
    assert_int_equal(ledger_add(&l, &b), 0);
    assert_int_equal(ledger_add(&l, &c), 0);
    struct sip_dialog d = sample_dialog(true);
    ledger_note_dialog(&l, 102, &d);
    ledger_note_answer(&l, 102, 1795600005);
    ledger_remove(&l, 101);
    ledger_note_answer(&l, 999, 1); /* unknown pid: ignored on read */
    ledger_close(&l);

    n = open_ledger(&l, dir, &orphans);
    assert_int_equal(n, 2);
    assert_int_equal(orphans[0].process_id, 102);
    assert_null(orphans[0].user_data);
    assert_int_equal(orphans[0].answer_time, 1795600005);
    assert_true(orphans[0].has_dialog);
    assert_true(orphans[0].dialog.established);
    assert_string_equal(orphans[0].dialog.route, "<sip:10.0.0.9;lr>");
    assert_string_equal(orphans[0].dialog.branch, "z9hG4bK-42");
    assert_int_equal(orphans[0].dialog.cseq, 7);
    assert_int_equal(orphans[0].seq, 1020);
    assert_int_equal(orphans[1].process_id, 103);
    assert_string_equal(orphans[1].user_data, "{\"order\":42,\"tags\":[\"x\"]}");
    assert_false(orphans[1].has_dialog);
    assert_int_equal(orphans[1].answer_time, 0);
    ledger_calls_free(orphans, n);

    /* A rewrite keeps only what it is given. */
    struct ledger_rewrite rw;
    assert_int_equal(ledger_rewrite_begin(&l, &rw), 0);
    ledger_rewrite_add(&rw, &c);
    assert_int_equal(ledger_rewrite_commit(&l, &rw), 0);
    ledger_close(&l);
    n = open_ledger(&l, dir, &orphans);
    assert_int_equal(n, 1);
    assert_int_equal(orphans[0].process_id, 103);
    ledger_calls_free(orphans, n);
    /* An empty rewrite: the fresh start after recovery. */
    assert_int_equal(ledger_rewrite_begin(&l, &rw), 0);
    assert_int_equal(ledger_rewrite_commit(&l, &rw), 0);
    assert_int_equal(l.bytes, 0);
    ledger_close(&l);
}

static void test_parse_damage(void **state)
{
    (void)state;
    struct ledger l;
    struct ledger_call *orphans;
    size_t n;
    unsigned bad;
    char sub[128];
    tu_path(sub, sizeof sub, dir, "damage");
    mkdir(sub, 0700);
    n = open_ledger(&l, sub, &orphans);
    struct ledger_call a, b;
    fill(&a, 201, "a");
    fill(&b, 202, "b");
    assert_int_equal(ledger_add(&l, &a), 0);
    assert_int_equal(ledger_add(&l, &b), 0);
    ledger_close(&l);

    char path[256];
    tu_path(path, sizeof path, sub, "calls.log");
    FILE *f = fopen(path, "rb");
    char buf[8192];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);

    /* Intact. */
    assert_int_equal(ledger_parse(buf, len, &orphans, &n, &bad), 0);
    assert_int_equal(n, 2);
    assert_int_equal(bad, 0);
    ledger_calls_free(orphans, n);
    /* Torn: the last line without its end. */
    assert_int_equal(ledger_parse(buf, len - 5, &orphans, &n, &bad), 0);
    assert_int_equal(n, 1);
    assert_int_equal(bad, 1);
    ledger_calls_free(orphans, n);
    /* A flipped byte in the first record: that line is skipped. */
    char copy[8192];
    memcpy(copy, buf, len);
    copy[20] ^= 0x01;
    assert_int_equal(ledger_parse(copy, len, &orphans, &n, &bad), 0);
    assert_int_equal(n, 1);
    assert_int_equal(orphans[0].process_id, 202);
    assert_int_equal(bad, 1);
    ledger_calls_free(orphans, n);
    /* Garbage, empty lines, valid CRC over JSON that is not a record. */
    const char junk[] = "\n\nnot a record\n"
                        "zzzzzzzz {}\n"
                        "a8b5b5ad []\n";
    assert_int_equal(ledger_parse(junk, sizeof junk - 1, &orphans, &n, &bad),
                     0);
    assert_int_equal(n, 0);
    assert_true(bad >= 4);
    ledger_calls_free(orphans, n);
    assert_int_equal(ledger_parse("", 0, &orphans, &n, &bad), 0);
    assert_int_equal(n, 0);
    assert_null(orphans);
}

/* Issue 12: a record of the previous version (user_data a JSON string)
 * still reads as that string; one of this version holds the value itself. */
static void test_user_data_formats(void **state)
{
    (void)state;
    const char *recs[] = {
        "{\"op\":\"open\",\"pid\":7,\"res_id\":\"0.0.0-x-7\",\"seq\":1,"
        "\"begin\":1,\"answer\":0,\"user_data\":\"order \\\"42\\\"\","
        "\"to_uri\":\"sip:1@h\",\"uuid\":\"u\",\"call_id\":\"c\","
        "\"caller\":\"ctid\"}",
        "{\"op\":\"open\",\"pid\":8,\"res_id\":\"0.0.0-x-8\",\"seq\":2,"
        "\"begin\":1,\"answer\":0,\"user_data\":{\"a\":[1,true]},"
        "\"to_uri\":\"sip:1@h\",\"uuid\":\"u\",\"call_id\":\"c\","
        "\"caller\":\"ctid\"}",
    };
    char buf[2048];
    size_t len = 0;
    for (size_t i = 0; i < 2; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%08x %s\n",
                                (unsigned)journal_crc32(0, recs[i],
                                                        strlen(recs[i])),
                                recs[i]);
    struct ledger_call *orphans;
    size_t n;
    unsigned bad;
    assert_int_equal(ledger_parse(buf, len, &orphans, &n, &bad), 0);
    assert_int_equal(bad, 0);
    assert_int_equal(n, 2);
    assert_string_equal(orphans[0].user_data, "\"order \\\"42\\\"\"");
    assert_string_equal(orphans[1].user_data, "{\"a\":[1,true]}");
    ledger_calls_free(orphans, n);
}

/* A close record that cannot be written (disk full) asks for a rewrite,
 * so the released call is not left open for the next start to release
 * again; a successful rewrite clears that (issue 10). */
static void test_lost_close_wants_rewrite(void **state)
{
    (void)state;
    struct ledger l;
    struct ledger_call *orphans;
    size_t n;
    n = open_ledger(&l, dir, &orphans);
    struct ledger_call a;
    fill(&a, 201, "a");
    assert_int_equal(ledger_add(&l, &a), 0);
    assert_false(ledger_wants_rewrite(&l));
    int good = l.fd;
    l.fd = open("/dev/null", O_RDONLY | O_CLOEXEC); /* writes fail */
    assert_true(l.fd >= 0);
    ledger_remove(&l, 201);
    close(l.fd);
    l.fd = good;
    assert_true(ledger_wants_rewrite(&l));
    struct ledger_rewrite rw; /* no call open any more */
    assert_int_equal(ledger_rewrite_begin(&l, &rw), 0);
    assert_int_equal(ledger_rewrite_commit(&l, &rw), 0);
    assert_false(ledger_wants_rewrite(&l));
    ledger_close(&l);
    n = open_ledger(&l, dir, &orphans);
    assert_int_equal(n, 0);
    ledger_close(&l);
}

int main(void)
{
    log_open(LOGL_ERROR, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_add_close_reopen),
        cmocka_unit_test(test_parse_damage),
        cmocka_unit_test(test_user_data_formats),
        cmocka_unit_test(test_lost_close_wants_rewrite),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
