/* Unit tests for g711: known codes, round trips, and byte-for-byte
 * equality with sox over every 16-bit sample (sox is a required test
 * dependency: the integration tests compare RTP payloads with it). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "g711.h"
#include "testutil.h"

static void test_known_values(void **state)
{
    (void)state;
    assert_int_equal(g711_alaw_encode(0), G711_ALAW_SILENCE);
    assert_int_equal(g711_ulaw_encode(0), G711_ULAW_SILENCE);
    assert_int_equal(g711_alaw_encode(32767), 0xAA);
    assert_int_equal(g711_alaw_encode(-32768), 0x2A);
    assert_int_equal(g711_ulaw_encode(32767), 0x80);
    assert_int_equal(g711_ulaw_encode(-32768), 0x00);
    assert_int_equal(g711_alaw_encode(-1), 0xD5); /* rounds to 0 */
    assert_int_equal(g711_alaw_encode(-5), 0x55);
    assert_int_equal(g711_ulaw_encode(1000), 0xCE);
    assert_int_equal(g711_ulaw_encode(-1000), 0x4E);

    assert_int_equal(g711_alaw_decode(0xD5), 8);
    assert_int_equal(g711_alaw_decode(0x55), -8);
    assert_int_equal(g711_alaw_decode(0xAA), 32256);
    assert_int_equal(g711_alaw_decode(0x2A), -32256);
    assert_int_equal(g711_ulaw_decode(0xFF), 0);
    assert_int_equal(g711_ulaw_decode(0x7F), 0);
    assert_int_equal(g711_ulaw_decode(0x80), 32124);
    assert_int_equal(g711_ulaw_decode(0x00), -32124);
}

static void test_round_trip(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        assert_int_equal(g711_alaw_encode(g711_alaw_decode((uint8_t)c)), c);
        /* 0x7F is mu-law's negative zero; it comes back as 0xFF. */
        if (c != 0x7F)
            assert_int_equal(g711_ulaw_encode(g711_ulaw_decode((uint8_t)c)),
                             c);
    }
    /* Quantisation is monotonic. The error stays within half the widest
     * step (512) plus the input rounding; mu-law's top code is 32124, so
     * it is 643 short at full scale. */
    int prev_a = -32768, prev_u = -32768;
    for (int x = -32768; x <= 32767; x++) {
        int a = g711_alaw_decode(g711_alaw_encode((int16_t)x));
        int u = g711_ulaw_decode(g711_ulaw_encode((int16_t)x));

        assert_true(a >= prev_a);
        assert_true(u >= prev_u);
        assert_true(abs(a - x) <= 516);
        assert_true(abs(u - x) <= 644);
        prev_a = a;
        prev_u = u;
    }
}

/* Runs a shell command in dir; fails the test if it fails. */
static void run(const char *dir, const char *cmd)
{
    char line[1024];

    snprintf(line, sizeof line, "cd '%s' && %s", dir, cmd);
    if (system(line) != 0)
        fail_msg("command failed: %s", line);
}

static void *slurp(const char *dir, const char *name, size_t want)
{
    char path[512];
    uint8_t *buf = malloc(want + 1);
    FILE *f;

    tu_path(path, sizeof path, dir, name);
    f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(buf, 1, want + 1, f), want);
    fclose(f);
    return buf;
}

/* sox must be run with -D: by default it dithers when reducing to the 13
 * or 14 bits of G.711, and its output is then random. */
static void test_matches_sox(void **state)
{
    char dir[TU_DIR_MAX];
    int16_t all[65536];
    uint8_t codes[256];
    uint8_t *al, *ul;
    int16_t *dal, *dul;
    FILE *f;
    char path[512];

    (void)state;
    assert_int_equal(tu_mkdtemp(dir, sizeof dir, "g711"), 0);
    for (int i = 0; i < 65536; i++)
        all[i] = (int16_t)(i - 32768);
    for (int i = 0; i < 256; i++)
        codes[i] = (uint8_t)i;
    tu_path(path, sizeof path, dir, "all.raw");
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(all, sizeof all, 1, f), 1); /* host order: LE */
    fclose(f);
    tu_path(path, sizeof path, dir, "codes.bin");
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(codes, sizeof codes, 1, f), 1);
    fclose(f);

    const char *in = "sox -D -V1 -t raw -r 8000 -e signed -b 16 -c 1 all.raw";
    char cmd[256];
    snprintf(cmd, sizeof cmd, "%s -t al all.al", in);
    run(dir, cmd);
    snprintf(cmd, sizeof cmd, "%s -t ul all.ul", in);
    run(dir, cmd);
    run(dir, "sox -V1 -t al -r 8000 -c 1 codes.bin -t raw -e signed -b 16 "
             "dal.raw");
    run(dir, "sox -V1 -t ul -r 8000 -c 1 codes.bin -t raw -e signed -b 16 "
             "dul.raw");

    al = slurp(dir, "all.al", 65536);
    ul = slurp(dir, "all.ul", 65536);
    dal = slurp(dir, "dal.raw", 512);
    dul = slurp(dir, "dul.raw", 512);
    for (int i = 0; i < 65536; i++) {
        if (al[i] != g711_alaw_encode(all[i]))
            fail_msg("A-law of %d: sox 0x%02X, ours 0x%02X", all[i], al[i],
                     g711_alaw_encode(all[i]));
        if (ul[i] != g711_ulaw_encode(all[i]))
            fail_msg("mu-law of %d: sox 0x%02X, ours 0x%02X", all[i], ul[i],
                     g711_ulaw_encode(all[i]));
    }
    for (int c = 0; c < 256; c++) {
        assert_int_equal(dal[c], g711_alaw_decode((uint8_t)c));
        assert_int_equal(dul[c], g711_ulaw_decode((uint8_t)c));
    }
    free(al);
    free(ul);
    free(dal);
    free(dul);
    assert_int_equal(tu_rmtree(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_matches_sox),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
