/* Unit tests of the CDR line format: column order, empty fields, RFC 4180
 * quoting, and appending to the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cdr.h"
#include "testutil.h"

static struct cdr_record answered_record(void)
{
    struct cdr_record r = {
        .uuid = "6f1c0b9e-1d2a-4c3b-9e8f-0a1b2c3d4e5f",
        .node_id = "1.2.3",
        .process_id = 1795617972000001ULL,
        .call_id = "6f1c0b9e-1d2a-4c3b-9e8f-0a1b2c3d4e5f@ctid",
        .caller = "10086",
        .callee = "13800000000@10.0.0.5:5060",
        .answered = true,
        .end_type = "sys",
        .error = NULL,
        .cause = 200,
        .begin_time = 1795617972,
        .answer_time = 1795617975,
        .end_time = 1795617990,
        .res_id = "1.2.3-ext.notify_call-1795617972000001",
        .user_data = "order 42",
    };
    return r;
}

/* answered_record() refused by the callee with 486 after 4 s; null
 * user_data. */
static struct cdr_record failed_record(void)
{
    struct cdr_record r = answered_record();
    r.answered = false;
    r.answer_time = 0;
    r.end_type = "usr";
    r.error = "call rejected";
    r.cause = 486;
    r.end_time = r.begin_time + 4;
    r.user_data = NULL;
    return r;
}

/* The whole file at path as a string in buf; its length. */
static size_t read_file(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
    return n;
}

static void test_answered_line(void **state)
{
    (void)state;
    struct cdr_record r = answered_record();
    char line[1024];
    int n = cdr_format(&r, line, sizeof line);
    assert_string_equal(
        line, "6f1c0b9e-1d2a-4c3b-9e8f-0a1b2c3d4e5f,1.2.3,1795617972000001,"
              "6f1c0b9e-1d2a-4c3b-9e8f-0a1b2c3d4e5f@ctid,10086,"
              "13800000000@10.0.0.5:5060,outbound,1,sys,,1795617972,"
              "1795617975,1795617990,15,,,"
              "1.2.3-ext.notify_call-1795617972000001,order 42\n");
    assert_int_equal(n, (int)strlen(line));
}

static void test_failed_line(void **state)
{
    (void)state;
    struct cdr_record r = failed_record();
    char line[1024];
    cdr_format(&r, line, sizeof line);
    /* Not answered: answer_time empty, talk 0; failure cause names the
     * error and the SIP status; null user_data is an empty field. */
    assert_non_null(strstr(line, ",outbound,0,usr,call rejected (486),"
                                 "1795617972,,1795617976,0,,,"));
    assert_non_null(strstr(line, "1795617972000001,\n"));
}

static void test_quoting(void **state)
{
    (void)state;
    struct cdr_record r = answered_record();
    r.user_data = "a,b \"c\"\nd";
    char line[1024];
    cdr_format(&r, line, sizeof line);
    assert_non_null(strstr(line, ",\"a,b \"\"c\"\"\nd\"\n"));
    /* Too small a buffer: cut and terminated, the full length reported. */
    char tiny[16];
    int n = cdr_format(&r, tiny, sizeof tiny);
    assert_true(n > (int)sizeof tiny);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
}

static void test_file_append_and_reopen(void **state)
{
    (void)state;
    char dir[TU_DIR_MAX];
    assert_int_equal(tu_mkdtemp(dir, sizeof dir, "cdr"), 0);
    char path[256], moved[256], err[256];
    tu_path(path, sizeof path, dir, "cdr.csv");
    tu_path(moved, sizeof moved, dir, "cdr.csv.1");
    struct cdr c;
    assert_int_equal(cdr_open(&c, path, err, sizeof err), 0);
    struct cdr_record r = answered_record();
    assert_int_equal(cdr_write(&c, &r), 0);
    assert_int_equal(cdr_write(&c, &r), 0);
    /* logrotate moves the file, then SIGHUP: new records go to a new file */
    assert_int_equal(rename(path, moved), 0);
    assert_int_equal(cdr_reopen(&c), 0);
    assert_int_equal(cdr_write(&c, &r), 0);
    cdr_close(&c);
    char buf[4096];
    size_t n1 = read_file(moved, buf, sizeof buf);
    size_t n2 = read_file(path, buf, sizeof buf);
    assert_int_equal(n1, 2 * n2);
    assert_int_equal(tu_rmtree(dir), 0);
    /* Disabled: writes succeed and go nowhere. */
    assert_int_equal(cdr_open(&c, "", err, sizeof err), 0);
    assert_int_equal(cdr_write(&c, &r), 0);
    cdr_close(&c);
    /* Unwritable path: a clear error. */
    assert_int_equal(cdr_open(&c, "/nonexistent-dir/cdr.csv", err,
                              sizeof err), -1);
    assert_non_null(strstr(err, "cdr_file /nonexistent-dir/cdr.csv"));
}

/* cdr_format = ipsc: the original platform's columns, written out here
 * field by field (docs/operations.md): id, nodeid, cdrid, processid,
 * callid, ch, devno, ani, dnis, dnis2, orgcallno, dir, devtype, busitype,
 * callstatus, endtype, ipscreason, callfailcause, callbegintime,
 * connectbegintime, callendtime, talkduration, projectid, flowid,
 * additionalinfo1..5. Times in TZ=UTC (set in main). */

/* answered_record()'s first columns, id to ani. */
#define IPSC_HEAD                                                          \
    ",1.2.3,6f1c0b9e-1d2a-4c3b-9e8f-0a1b2c3d4e5f,1795617972000001,"        \
    "6f1c0b9e-1d2a-4c3b-9e8f-0a1b2c3d4e5f@ctid,,,10086,"
/* answered_record()'s dnis to flowid: callee, answered, times, talk. */
#define IPSC_ANSWERED                                                      \
    "13800000000,,13800000000@10.0.0.5:5060,1,2,,1,1,,,"                   \
    "2026-11-25 14:46:12,2026-11-25 14:46:15,"                             \
    "2026-11-25 14:46:30,15,,,"
/* additionalinfo1: the res_id. */
#define IPSC_RES_ID "1.2.3-ext.notify_call-1795617972000001,"

static void test_ipsc_answered_line(void **state)
{
    (void)state;
    struct cdr_record r = answered_record();
    char line[1024];
    int n = cdr_format_ipsc(&r, line, sizeof line);
    assert_string_equal(
        line, IPSC_HEAD IPSC_ANSWERED IPSC_RES_ID "order 42,,,\n");
    assert_int_equal(n, (int)strlen(line));
}

static void test_ipsc_failed_line(void **state)
{
    (void)state;
    struct cdr_record r = failed_record();
    r.callee = "sip:13900000000@gw.example.com";
    char line[1024];
    cdr_format_ipsc(&r, line, sizeof line);
    assert_string_equal(
        line, IPSC_HEAD "13900000000,,sip:13900000000@gw.example.com,1,2,,0,2,"
                        "call rejected,486,2026-11-25 14:46:12,,"
                        "2026-11-25 14:46:16,0,,," IPSC_RES_ID ",,,\n");
}

static void test_ipsc_quoting(void **state)
{
    (void)state;
    struct cdr_record r = answered_record();
    r.user_data = "a,b \"c\"\nd";
    char line[1024];
    cdr_format_ipsc(&r, line, sizeof line);
    assert_string_equal(line, IPSC_HEAD IPSC_ANSWERED IPSC_RES_ID
                        "\"a,b \"\"c\"\"\nd\",,,\n");
}

/* The style chosen after cdr_open decides what cdr_write appends. */
static void test_ipsc_file(void **state)
{
    (void)state;
    char dir[TU_DIR_MAX];
    assert_int_equal(tu_mkdtemp(dir, sizeof dir, "cdr"), 0);
    char path[256], err[256];
    tu_path(path, sizeof path, dir, "cdr.csv");
    enum cdr_style style = CDR_CTID;
    assert_int_equal(cdr_style_parse("csv", &style), -1);
    assert_int_equal(cdr_style_parse("ipsc", &style), 0);
    assert_int_equal(style, CDR_IPSC);
    struct cdr c;
    assert_int_equal(cdr_open(&c, path, err, sizeof err), 0);
    cdr_set_style(&c, style);
    struct cdr_record r = answered_record();
    assert_int_equal(cdr_write(&c, &r), 0);
    cdr_close(&c);
    char buf[4096], want[1024];
    read_file(path, buf, sizeof buf);
    cdr_format_ipsc(&r, want, sizeof want);
    assert_string_equal(buf, want);
    assert_int_equal(tu_rmtree(dir), 0);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answered_line),
        cmocka_unit_test(test_failed_line),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_file_append_and_reopen),
        cmocka_unit_test(test_ipsc_answered_line),
        cmocka_unit_test(test_ipsc_failed_line),
        cmocka_unit_test(test_ipsc_quoting),
        cmocka_unit_test(test_ipsc_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
