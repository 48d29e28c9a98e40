/* speech_rules: private to the speech module (speech.c, speech_zh.c,
 * speech_en.c). The parsed forms of a spoken item's text and the reading
 * rules of each language, which only append constant prompt names to a
 * struct speech; speech.c parses, validates and picks the rule. */
#ifndef CTID_SPEECH_RULES_H
#define CTID_SPEECH_RULES_H

#include <stddef.h>

#include "speech.h"

/* A number's text split up: integer digits without leading zeros ("0" for
 * zero) and the decimals exactly as given. */
struct speech_num {
    int neg;
    const char *ip;
    size_t ilen;
    const char *fp;
    size_t flen;
};

/* A date/time of type 4; has_* say which parts the text gave. */
struct speech_when {
    const char *year; /* its four digits */
    unsigned y, mo, d, h, mi, s;
    int has_month, has_day, has_time, has_sec;
};

/* digit_0 ... digit_9, the same name in every pack. */
extern const char *const speech_digit[10];

/* Appends one name. Counts every name but stores only what fits, so
 * speech_say can refuse an overlong result once. */
void speech_add(struct speech *sp, const char *name);

/* Mandarin. liang: the number stands before a measure word, so a lone 2
 * is 两 (两点, 两元, 两小时) rather than 二. */
void speech_zh_uint(struct speech *sp, unsigned v, int liang);
void speech_zh_number(struct speech *sp, const struct speech_num *n);
void speech_zh_money(struct speech *sp, const struct speech_num *n);
void speech_zh_money_units(struct speech *sp, const struct speech_num *n);
void speech_zh_when(struct speech *sp, const struct speech_when *w);

/* English (US style: no "and" inside numbers). */
void speech_en_uint(struct speech *sp, unsigned v);
void speech_en_number(struct speech *sp, const struct speech_num *n);
void speech_en_money(struct speech *sp, const struct speech_num *n);
void speech_en_money_units(struct speech *sp, const struct speech_num *n);
void speech_en_when(struct speech *sp, const struct speech_when *w);

#endif
