/* Helpers shared by the unit tests: a private temporary directory for a
 * test or a fixture, paths inside it, and its removal; test JSON.
 *
 * Header only (static inline), so that every tests/unit/test_*.c stays one
 * self-contained cmocka binary. Ownership: the caller owns the buffer that
 * holds the directory's name (TU_DIR_MAX bytes are enough) and removes the
 * directory with tu_rmtree() in its teardown; nothing here allocates.
 * Single-threaded: called from cmocka's setup, test and teardown only;
 * tu_path fails the running test through cmocka, as tu_json does. */
#ifndef CTID_TESTUTIL_H
#define CTID_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#define TU_DIR_MAX 64

/* Creates /tmp/ctid-<name>-XXXXXX (mode 0700) and leaves its name in dir.
 * Returns 0, or -1 when the name does not fit or mkdtemp fails. */
static inline int tu_mkdtemp(char *dir, size_t size, const char *name)
{
    int n = snprintf(dir, size, "/tmp/ctid-%s-XXXXXX", name);

    if (n < 0 || (size_t)n >= size)
        return -1;
    return mkdtemp(dir) == NULL ? -1 : 0;
}

/* Removes dir and everything below it. Returns 0 or -1. */
static inline int tu_rmtree(const char *dir)
{
    char cmd[TU_DIR_MAX + 32];
    int n = snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);

    if (n < 0 || (size_t)n >= sizeof cmd)
        return -1;
    return system(cmd) == 0 ? 0 : -1;
}

/* out = dir/name; fails the test when it does not fit. */
static inline void tu_path(char *out, size_t size, const char *dir,
                           const char *name)
{
    int n = snprintf(out, size, "%s/%s", dir, name);

    assert_true(n >= 0 && (size_t)n < size);
}

#ifdef JANSSON_H
/* Parses text as any JSON value; bad JSON fails the test (it is the test's
 * own mistake). The caller owns the result (json_decref). Defined only
 * where jansson.h was included before this header. */
static inline json_t *tu_json(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);

    if (v == NULL)
        fail_msg("bad test JSON %s: %s", text, jerr.text);
    return v;
}
#endif

#endif
