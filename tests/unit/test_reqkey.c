/* Unit tests for reqkey: construct's request_key table (lookup, pending,
 * expiry, the cap), the params digest and the file (round trip across a
 * reopen, compaction, a torn tail, damaged lines, del records). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#include "crc32.h"
#include "reqkey.h"

#define D1 "1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "2222222222222222222222222222222222222222222222222222222222222222"
#define RES "{\"res_id\":\"0.0.0-ext.notify_call-1\"}"

static void test_table(void **state)
{
    (void)state;
    struct reqkey r;
    const char *res = NULL;
    reqkey_init(&r, 100, 10);
    assert_int_equal(reqkey_lookup(&r, "k", D1, 1000, &res), REQKEY_NEW);
    assert_int_equal(reqkey_begin(&r, "k", D1, 1000), 0);
    assert_int_equal(reqkey_lookup(&r, "k", D1, 1000, &res), REQKEY_PENDING);
    assert_int_equal(reqkey_lookup(&r, "k", D2, 1000, &res),
                     REQKEY_MISMATCH);
    assert_int_equal(reqkey_commit(&r, "k", RES, 1001), 0);
    assert_false(r.unsynced); /* no file */
    assert_int_equal(reqkey_lookup(&r, "k", D1, 1050, &res), REQKEY_DONE);
    assert_string_equal(res, RES);
    assert_int_equal(reqkey_lookup(&r, "k", D2, 1050, &res),
                     REQKEY_MISMATCH);
    assert_int_equal(reqkey_lookup(&r, "other", D1, 1050, &res), REQKEY_NEW);
    /* ttl counts from the commit: 1001 + 100 */
    assert_int_equal(reqkey_lookup(&r, "k", D1, 1100, &res), REQKEY_DONE);
    assert_int_equal(reqkey_lookup(&r, "k", D1, 1101, &res), REQKEY_NEW);
    assert_int_equal(r.n, 0);
    /* abandoned: forgotten, a retry places anew */
    assert_int_equal(reqkey_begin(&r, "a", D1, 1200), 0);
    reqkey_abandon(&r, "a");
    assert_int_equal(reqkey_lookup(&r, "a", D1, 1200, &res), REQKEY_NEW);
    reqkey_close(&r);
}

static void test_cap_refuses_until_expiry(void **state)
{
    (void)state;
    struct reqkey r;
    const char *res = NULL;
    char key[16];
    reqkey_init(&r, 10, 3);
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(reqkey_begin(&r, key, D1, 100 + i), 0);
        assert_int_equal(reqkey_commit(&r, key, RES, 100 + i), 0);
    }
    errno = 0;
    assert_int_equal(reqkey_begin(&r, "k3", D1, 105), -1);
    assert_int_equal(errno, ENOSPC);
    /* nothing was evicted */
    assert_int_equal(reqkey_lookup(&r, "k0", D1, 105, &res), REQKEY_DONE);
    /* k0 expires at 110: room again */
    assert_int_equal(reqkey_begin(&r, "k3", D1, 110), 0);
    assert_int_equal(reqkey_lookup(&r, "k0", D1, 110, &res), REQKEY_NEW);
    assert_int_equal(reqkey_lookup(&r, "k1", D1, 110, &res), REQKEY_DONE);
    reqkey_close(&r);
}

static void test_byte_cap(void **state)
{
    (void)state;
    struct reqkey r;
    reqkey_init(&r, 10, 1000);
    r.max_bytes = 88;
    assert_int_equal(reqkey_begin(&r, "a", D1, 100), 0);
    assert_int_equal(
        reqkey_commit(&r, "a", "{\"x\":\"" /* 85 bytes of text */
                      "0123456789012345678901234567890123456789"
                      "0123456789012345678901234567890123456\"}",
                      100),
        0);
    assert_int_equal(r.text_bytes, 86);
    assert_int_equal(reqkey_begin(&r, "b", D1, 100), 0); /* 86 < 88 */
    assert_int_equal(reqkey_commit(&r, "b", "{}", 100), 0);
    errno = 0;
    assert_int_equal(reqkey_begin(&r, "c", D1, 101), -1);
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(reqkey_begin(&r, "c", D1, 110), 0); /* both expired */
    assert_int_equal(r.text_bytes, 1);
    reqkey_close(&r);
}

static void test_many_keys(void **state)
{
    (void)state;
    struct reqkey r;
    const char *res = NULL;
    char key[32];
    reqkey_init(&r, 1000, 5000);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        assert_int_equal(reqkey_begin(&r, key, D1, i / 10), 0);
        assert_int_equal(reqkey_commit(&r, key, RES, i / 10), 0);
    }
    for (int i = 0; i < 5000; i += 7) {
        snprintf(key, sizeof key, "key-%d", i);
        assert_int_equal(reqkey_lookup(&r, key, D1, 500, &res), REQKEY_DONE);
    }
    /* at 1100 the keys of times 0..100 are gone */
    assert_int_equal(reqkey_lookup(&r, "key-0", D1, 1100, &res), REQKEY_NEW);
    assert_int_equal(r.n, 5000 - 1010);
    reqkey_close(&r);
}

static char *digest_of(const char *params)
{
    static char hex[2][REQKEY_DIGEST_HEX + 1];
    static int k;
    json_t *p = json_loads(params, 0, NULL);
    assert_non_null(p);
    k ^= 1;
    assert_int_equal(reqkey_digest(p, hex[k]), 0);
    json_decref(p);
    assert_int_equal(strlen(hex[k]), REQKEY_DIGEST_HEX);
    return hex[k];
}

static void test_digest(void **state)
{
    (void)state;
    const char *named = "{\"to_uri\":\"1@h\",\"play_content\":\"a.wav\","
                        "\"user_data\":{\"b\":1,\"a\":[2]},"
                        "\"request_key\":\"k1\"}";
    /* order of members, request_key, nulls, positional form: the same */
    assert_string_equal(
        digest_of(named),
        digest_of("{\"user_data\":{\"a\":[2],\"b\":1},\"request_key\":\"k2\","
                  "\"play_content\":\"a.wav\",\"to_uri\":\"1@h\","
                  "\"from_uri\":null,\"keys\":null}"));
    /* names with white space around them, as construct reads them */
    assert_string_equal(
        digest_of(named),
        digest_of("{\" to_uri\":\"1@h\",\"play_content \":\"a.wav\","
                  "\"user_data\\t\":{\"b\":1,\"a\":[2]}}"));
    assert_string_equal(
        digest_of(named),
        digest_of("[null,\"1@h\",\"a.wav\",null,null,{\"a\":[2],\"b\":1}]"));
    /* anything the client sent differently: another digest */
    const char *other[] = {
        "{\"to_uri\":\"2@h\",\"play_content\":\"a.wav\","
        "\"user_data\":{\"b\":1,\"a\":[2]}}",
        "{\"to_uri\":\"1@h\",\"play_content\":\"b.wav\","
        "\"user_data\":{\"b\":1,\"a\":[2]}}",
        "{\"to_uri\":\"1@h\",\"play_content\":\"a.wav\","
        "\"user_data\":{\"b\":2,\"a\":[2]}}",
        "{\"to_uri\":\"1@h\",\"play_content\":\"a.wav\","
        "\"user_data\":{\"b\":1,\"a\":[2]},\"play_repeat\":2}",
        "{\"to_uri\":\"1@h\",\"play_content\":\"a.wav\","
        "\"user_data\":{\"b\":1,\"a\":[2]},\"max_ring_seconds\":9}",
        "{\"to_uri\":\"1@h\",\"play_content\":\"a.wav\","
        "\"user_data\":{\"b\":1,\"a\":[2]},\"from_uri\":\"bob\"}",
        "{\"to_uri\":\"1@h\",\"play_content\":\"a.wav\","
        "\"user_data\":{\"b\":1,\"a\":[2]},\"keys\":{\"max\":1}}",
        "{\"to_uri\":\"1@h\",\"play_content\":\"a.wav\","
        "\"user_data\":{\"b\":1,\"a\":[2]},\"progress\":true}",
        "{\"to_uri\":\"1@h\",\"play_content\":\"a.wav\","
        "\"user_data \":{\"b\":2,\"a\":[2]}}",
    };
    char first[REQKEY_DIGEST_HEX + 1];
    snprintf(first, sizeof first, "%s", digest_of(named));
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        assert_string_not_equal(first, digest_of(other[i]));
    /* SHA-256 of the canonical text {"play_content":"x","to_uri":"y"} */
    assert_string_equal(
        digest_of("{\"to_uri\":\"y\",\"play_content\":\"x\"}"),
        "95a0f7af3b1b97a583f2ace1a1b6a609f2a88314f6a982a4efa26de336aeb2d4");
}

/* ---- the file ------------------------------------------------------------- */

static char dir[TU_DIR_MAX];
static char path[TU_DIR_MAX + 32];

static int setup(void **state)
{
    (void)state;
    assert_int_equal(tu_mkdtemp(dir, sizeof dir, "reqkey"), 0);
    snprintf(path, sizeof path, "%s/reqkeys.log", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return tu_rmtree(dir);
}

static void append_raw(const char *text)
{
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void append_rec(const char *json)
{
    char line[1024];
    snprintf(line, sizeof line, "%08x %s\n",
             (unsigned)journal_crc32(0, json, strlen(json)), json);
    append_raw(line);
}

static long file_size(void)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static void test_file_round_trip(void **state)
{
    (void)state;
    struct reqkey r;
    char err[256];
    const char *res = NULL;
    assert_int_equal(reqkey_open(&r, dir, 100, 10, 1000, err, sizeof err), 0);
    assert_int_equal(reqkey_begin(&r, "k1", D1, 1000), 0);
    assert_int_equal(reqkey_commit(&r, "k1", RES, 1000), 0);
    assert_true(r.unsynced);
    assert_int_equal(reqkey_sync(&r), 0);
    assert_false(r.unsynced);
    assert_int_equal(reqkey_begin(&r, "gone", D1, 1000), 0);
    assert_int_equal(reqkey_commit(&r, "gone", RES, 1000), 0);
    reqkey_abandon(&r, "gone"); /* a del record */
    assert_int_equal(reqkey_begin(&r, "pending", D1, 1000), 0);
    assert_int_equal(reqkey_begin(&r, "old", D2, 1000), 0);
    assert_int_equal(reqkey_commit(&r, "old", RES, 950), 0);
    /* no close: as after kill -9 */
    assert_int_equal(close(r.fd), 0);
    r.fd = -1;
    reqkey_close(&r);

    assert_int_equal(reqkey_open(&r, dir, 100, 10, 1060, err, sizeof err), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(reqkey_lookup(&r, "k1", D1, 1060, &res), REQKEY_DONE);
    assert_string_equal(res, RES);
    assert_int_equal(reqkey_lookup(&r, "k1", D2, 1060, &res),
                     REQKEY_MISMATCH);
    assert_int_equal(reqkey_lookup(&r, "gone", D1, 1060, &res), REQKEY_NEW);
    assert_int_equal(reqkey_lookup(&r, "pending", D1, 1060, &res),
                     REQKEY_NEW);
    assert_int_equal(reqkey_lookup(&r, "old", D2, 1060, &res), REQKEY_NEW);
    /* compacted on open: one put left */
    assert_int_equal((long)r.bytes, file_size());
    reqkey_close(&r);
    /* expired at the next start: the file is emptied */
    assert_int_equal(reqkey_open(&r, dir, 100, 10, 1100, err, sizeof err), 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(file_size(), 0);
    reqkey_close(&r);
}

/* A put that cannot be written: commit fails, the key stays pending (its
 * construct is then refused and abandons it), nothing half-written. */
static void test_commit_write_fails(void **state)
{
    (void)state;
    struct reqkey r;
    char err[256];
    const char *res = NULL;
    assert_int_equal(reqkey_open(&r, dir, 100, 10, 1000, err, sizeof err), 0);
    int fd = r.fd;
    r.fd = open("/dev/null", O_RDONLY);
    assert_true(r.fd >= 0);
    assert_int_equal(reqkey_begin(&r, "k", D1, 1000), 0);
    assert_int_equal(reqkey_commit(&r, "k", RES, 1000), -1);
    assert_false(r.unsynced);
    assert_int_equal(reqkey_lookup(&r, "k", D1, 1000, &res), REQKEY_PENDING);
    reqkey_abandon(&r, "k"); /* never written: no del either */
    assert_int_equal(reqkey_lookup(&r, "k", D1, 1000, &res), REQKEY_NEW);
    assert_int_equal(r.text_bytes, 0);
    close(r.fd);
    r.fd = fd;
    reqkey_close(&r);
    assert_int_equal(file_size(), 0);
}

static void test_file_damage(void **state)
{
    (void)state;
    struct reqkey r;
    char err[256];
    const char *res = NULL;
    const char *put = "{\"op\":\"put\",\"key\":\"good\",\"digest\":\"" D1
                      "\",\"time\":1000,\"result\":" RES "}";
    append_rec(put);
    append_raw("garbage line\n");
    append_raw("00000000 {\"op\":\"put\"}\n"); /* CRC mismatch */
    append_rec("{\"op\":\"put\",\"key\":\"bad-digest\",\"digest\":\"XYZ\","
               "\"time\":1000,\"result\":{}}");
    append_rec("{\"op\":\"put\",\"key\":\"\",\"digest\":\"" D1
               "\",\"time\":1000,\"result\":{}}");
    append_rec("{\"op\":\"put\",\"key\":\"no-result\",\"digest\":\"" D1
               "\",\"time\":1000}");
    append_rec("{\"op\":\"eat\",\"key\":\"x\"}");
    append_rec("[1,2]");
    append_raw("\n");
    /* a torn last line: the crash came in the middle of its write */
    char line[1024];
    snprintf(line, sizeof line, "%08x %s",
             (unsigned)journal_crc32(0, put, strlen(put)), put);
    line[strlen(line) / 2] = '\0';
    append_raw(line);
    assert_int_equal(reqkey_open(&r, dir, 100, 10, 1010, err, sizeof err), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(reqkey_lookup(&r, "good", D1, 1010, &res), REQKEY_DONE);
    assert_string_equal(res, RES);
    /* appends after the repair start on a clean line */
    assert_int_equal(reqkey_begin(&r, "next", D2, 1010), 0);
    assert_int_equal(reqkey_commit(&r, "next", RES, 1010), 0);
    reqkey_close(&r);
    assert_int_equal(reqkey_open(&r, dir, 100, 10, 1010, err, sizeof err), 0);
    assert_int_equal(r.n, 2);
    assert_int_equal(reqkey_lookup(&r, "next", D2, 1010, &res), REQKEY_DONE);
    reqkey_close(&r);
}

static void test_load_counts_bad(void **state)
{
    (void)state;
    struct reqkey r;
    unsigned bad = 0;
    const char *res = NULL;
    reqkey_init(&r, 100, 10);
    const char *text = "zzzz\n12345678 {}\n";
    assert_int_equal(reqkey_load(&r, text, strlen(text), 0, &bad), 0);
    assert_int_equal(bad, 2);
    assert_int_equal(r.n, 0);
    /* a later put of the same key wins; a del removes it */
    char buf[2048];
    const char *p1 = "{\"op\":\"put\",\"key\":\"k\",\"digest\":\"" D1
                     "\",\"time\":10,\"result\":{\"n\":1}}";
    const char *p2 = "{\"op\":\"put\",\"key\":\"k\",\"digest\":\"" D2
                     "\",\"time\":11,\"result\":{\"n\":2}}";
    snprintf(buf, sizeof buf, "%08x %s\n%08x %s\n",
             (unsigned)journal_crc32(0, p1, strlen(p1)), p1,
             (unsigned)journal_crc32(0, p2, strlen(p2)), p2);
    assert_int_equal(reqkey_load(&r, buf, strlen(buf), 20, &bad), 0);
    assert_int_equal(bad, 0);
    assert_int_equal(reqkey_lookup(&r, "k", D2, 20, &res), REQKEY_DONE);
    assert_string_equal(res, "{\"n\":2}");
    const char *del = "{\"op\":\"del\",\"key\":\"k\"}";
    snprintf(buf, sizeof buf, "%08x %s\n",
             (unsigned)journal_crc32(0, del, strlen(del)), del);
    assert_int_equal(reqkey_load(&r, buf, strlen(buf), 20, &bad), 0);
    assert_int_equal(r.n, 0);
    reqkey_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_cap_refuses_until_expiry),
        cmocka_unit_test(test_byte_cap),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_digest),
        cmocka_unit_test_setup_teardown(test_file_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_write_fails, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_file_damage, setup, teardown),
        cmocka_unit_test(test_load_counts_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
