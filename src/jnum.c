/* jnum: owns the lenient reading of JSON numbers the original platform's
 * clients send: integers as strings or integral reals (play_repeat "1",
 * max_ring_seconds 45.0, a play item's type "0") and the decimal text of
 * a number given as a play item's content ([1086.3, 3]). api_ and
 * playlist_ call it; it knows nothing of params. */
#include "jnum.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Python's str.strip() set, ASCII part: what int() ignores around digits. */
static int jnum_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
           || c == '\v';
}

static enum jnum_result jnum_from_string(const char *s, size_t len,
                                         json_int_t *out)
{
    const char *p = s, *end = s + len;
    int neg = 0;
    uint64_t v = 0;

    while (p < end && jnum_space(*p))
        p++;
    while (end > p && jnum_space(end[-1]))
        end--;
    if (p < end && (*p == '+' || *p == '-'))
        neg = *p++ == '-';
    if (p == end)
        return JNUM_NOT_INT;
    int range = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return JNUM_NOT_INT;
        if (v > (UINT64_MAX - 9) / 10)
            range = 1; /* keep checking: "9...9x" is not an integer */
        else
            v = v * 10 + (uint64_t)(*p - '0');
    }
    if (range || v > (uint64_t)INT64_MAX + (uint64_t)neg)
        return JNUM_RANGE;
    *out = neg && v > 0 ? -(json_int_t)(v - 1) - 1 : (json_int_t)v;
    return JNUM_OK;
}

enum jnum_result jnum_int(json_t *v, json_int_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return JNUM_OK;
    }
    if (json_is_string(v))
        return jnum_from_string(json_string_value(v), json_string_length(v),
                                out);
    if (!json_is_real(v))
        return JNUM_NOT_INT;
    double d = json_real_value(v);
    if (d != floor(d))
        return JNUM_NOT_INT;
    /* 2^63 is exact in a double; anything at or past it does not fit. */
    if (d >= 9223372036854775808.0 || d < -9223372036854775808.0)
        return JNUM_RANGE;
    *out = (json_int_t)d;
    return JNUM_OK;
}

/* d's shortest significant digits that strtod reads back as d, and the
 * decimal exponent of the first one: 1086.3 -> "10863", 3. */
static void jnum_shortest(double d, char *digits, size_t len, int *exp10)
{
    char buf[40];

    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    /* buf is "D.DDDDe+XX" or "De+XX" */
    size_t n = 0;
    const char *p = buf;
    for (; *p != 'e'; p++)
        if (*p != '.' && n + 1 < len)
            digits[n++] = *p;
    while (n > 1 && digits[n - 1] == '0')
        n--;
    digits[n] = '\0';
    *exp10 = atoi(p + 1);
}

static int jnum_real_text(double d, char *buf, size_t len)
{
    char digits[24], out[400];
    int e;
    size_t o = 0;

    if (!isfinite(d))
        return -1;
    if (d < 0) {
        out[o++] = '-';
        d = -d;
    }
    if (d == 0) {
        snprintf(buf, len, "0");
        return len > 1 ? 0 : -1;
    }
    jnum_shortest(d, digits, sizeof digits, &e);
    size_t nd = strlen(digits);
    if (e < 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = -1; i > e; i--)
            out[o++] = '0';
        memcpy(out + o, digits, nd);
        o += nd;
    } else {
        for (size_t i = 0; i < nd || i <= (size_t)e; i++) {
            if (i == (size_t)e + 1)
                out[o++] = '.';
            out[o++] = i < nd ? digits[i] : '0';
        }
    }
    out[o] = '\0';
    if (o + 1 > len)
        return -1;
    memcpy(buf, out, o + 1);
    return 0;
}

int jnum_text(json_t *v, char *buf, size_t len)
{
    if (json_is_integer(v)) {
        int n = snprintf(buf, len, "%" JSON_INTEGER_FORMAT,
                         json_integer_value(v));
        return n > 0 && (size_t)n < len ? 0 : -1;
    }
    if (json_is_real(v))
        return jnum_real_text(json_real_value(v), buf, len);
    return -1;
}
