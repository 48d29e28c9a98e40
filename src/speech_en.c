/* speech_en: owns the English reading rules of the spoken types (US
 * style: no "and" inside numbers; docs/prompts.md): numbers, money as a
 * number of yuan (type 3) and in yuan and cents (type 6), dates, times.
 * Text already validated by speech.c comes in; names of the en pack go
 * out. */
#include <stdio.h>

#include "speech_rules.h"

/* 10-19, tens, groups of three, months, ordinal days. */
static const char *const en_teen[10] = {
    "n_10", "n_11", "n_12", "n_13", "n_14",
    "n_15", "n_16", "n_17", "n_18", "n_19",
};
static const char *const en_tens[10] = {
    NULL, NULL, "n_20", "n_30", "n_40", "n_50", "n_60", "n_70", "n_80", "n_90",
};
static const char *const en_group[4] = {NULL, "thousand", "million",
                                        "billion"};
static const char *const en_month[13] = {
    NULL, "month_1", "month_2", "month_3", "month_4", "month_5", "month_6",
    "month_7", "month_8", "month_9", "month_10", "month_11", "month_12",
};
static const char *const en_ord[32] = {
    NULL, "ord_1", "ord_2", "ord_3", "ord_4", "ord_5", "ord_6", "ord_7",
    "ord_8", "ord_9", "ord_10", "ord_11", "ord_12", "ord_13", "ord_14",
    "ord_15", "ord_16", "ord_17", "ord_18", "ord_19", "ord_20", "ord_21",
    "ord_22", "ord_23", "ord_24", "ord_25", "ord_26", "ord_27", "ord_28",
    "ord_29", "ord_30", "ord_31",
};

static void en_below_1000(struct speech *sp, unsigned v)
{
    if (v >= 100) {
        speech_add(sp, speech_digit[v / 100]);
        speech_add(sp, "hundred");
        v %= 100;
    }
    if (v >= 20) {
        speech_add(sp, en_tens[v / 10]);
        if (v % 10)
            speech_add(sp, speech_digit[v % 10]);
    } else if (v >= 10) {
        speech_add(sp, en_teen[v - 10]);
    } else if (v) {
        speech_add(sp, speech_digit[v]);
    }
}

static void en_int(struct speech *sp, const char *d, size_t len)
{
    if (len == 1 && d[0] == '0') {
        speech_add(sp, speech_digit[0]);
        return;
    }
    for (size_t g = (len + 2) / 3; g-- > 0;) {
        size_t end = len - g * 3, start = end >= 3 ? end - 3 : 0;
        unsigned v = 0;

        for (size_t i = start; i < end; i++)
            v = v * 10 + (unsigned)(d[i] - '0');
        if (v == 0)
            continue;
        en_below_1000(sp, v);
        if (g)
            speech_add(sp, en_group[g]);
    }
}

void speech_en_uint(struct speech *sp, unsigned v)
{
    char buf[16];
    int len = snprintf(buf, sizeof buf, "%u", v);

    en_int(sp, buf, (size_t)len);
}

/* The number, "point", then its decimals digit by digit; flen of them. */
static void en_decimal(struct speech *sp, const struct speech_num *n,
                       size_t flen)
{
    if (n->neg)
        speech_add(sp, "minus");
    en_int(sp, n->ip, n->ilen);
    if (flen)
        speech_add(sp, "point");
    for (size_t i = 0; i < flen; i++)
        speech_add(sp, speech_digit[n->fp[i] - '0']);
}

void speech_en_number(struct speech *sp, const struct speech_num *n)
{
    en_decimal(sp, n, n->flen);
}

/* Type 3, "1086.30": one thousand eighty six point three yuan; trailing
 * zero decimals are silent. */
void speech_en_money(struct speech *sp, const struct speech_num *n)
{
    size_t flen = n->flen;

    while (flen > 0 && n->fp[flen - 1] == '0')
        flen--;
    en_decimal(sp, n, flen);
    speech_add(sp, "yuan");
}

/* Type 6, "1086.30": one thousand eighty six yuan and thirty cents (the
 * fen is the cent; jiao are read as tens of cents). */
void speech_en_money_units(struct speech *sp, const struct speech_num *n)
{
    int major = !(n->ilen == 1 && n->ip[0] == '0');
    unsigned cents = (unsigned)((n->flen > 0 ? n->fp[0] - '0' : 0) * 10 +
                                (n->flen > 1 ? n->fp[1] - '0' : 0));

    if (major || !cents) {
        en_int(sp, n->ip, n->ilen);
        speech_add(sp, "yuan");
    }
    if (cents) {
        if (major)
            speech_add(sp, "and");
        en_below_1000(sp, cents);
        speech_add(sp, cents == 1 ? "cent" : "cents");
    }
}

/* 1999 nineteen ninety nine, 1905 nineteen oh five, 1900 nineteen
 * hundred, 2000 two thousand, 2005 two thousand five, 2012 twenty twelve. */
static void en_year(struct speech *sp, unsigned y)
{
    if (y < 1000 || y % 1000 < 10) {
        speech_en_uint(sp, y);
        return;
    }
    speech_en_uint(sp, y / 100);
    if (y % 100 == 0) {
        speech_add(sp, "hundred");
    } else if (y % 100 < 10) {
        speech_add(sp, "oh");
        speech_add(sp, speech_digit[y % 10]);
    } else {
        speech_en_uint(sp, y % 100);
    }
}

/* September eighth twenty twelve, thirteen oh five and three seconds. */
void speech_en_when(struct speech *sp, const struct speech_when *w)
{
    if (w->year) {
        speech_add(sp, en_month[w->mo]);
        if (w->has_day)
            speech_add(sp, en_ord[w->d]);
        en_year(sp, w->y);
    }
    if (w->has_time) {
        speech_en_uint(sp, w->h);
        if (w->mi == 0) {
            speech_add(sp, "oclock");
        } else if (w->mi < 10) {
            speech_add(sp, "oh");
            speech_add(sp, speech_digit[w->mi]);
        } else {
            speech_en_uint(sp, w->mi);
        }
    }
    if (w->has_sec) {
        speech_add(sp, "and");
        speech_en_uint(sp, w->s);
        speech_add(sp, w->s == 1 ? "second" : "seconds");
    }
}
