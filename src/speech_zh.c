/* speech_zh: owns the Mandarin reading rules of the spoken types
 * (docs/prompts.md has them as a table): numbers with 两 before a measure
 * or a large unit, money as a number of 元 (type 3) and in 元角分 (type
 * 6), dates and times with 整 for a whole hour. Text already validated by
 * speech.c comes in; names of the zh pack go out. */
#include <stdio.h>

#include "speech_rules.h"

/* Units of the places inside a group of four, and of the groups. */
static const char *const zh_place[4] = {NULL, "ten", "hundred", "thousand"};
static const char *const zh_group[3] = {NULL, "ten_thousand",
                                        "hundred_million"};

/* Is the digit at i, of place 0 in its group [start, end), the group's
 * only non-zero digit? Then the group is 2 on its own: 两万, 两亿. */
static int zh_alone_in_group(const char *d, size_t start, size_t i)
{
    for (size_t k = start; k < i; k++)
        if (d[k] != '0')
            return 0;
    return 1;
}

/* The name of digit c at place (0-3) of group g. 2 is 两 before 百 and
 * 千, as a group of its own before 万 and 亿, and as the whole number
 * when liang says a measure word follows; 二 elsewhere (二十, 十二, 一百
 * 零二). */
static const char *zh_digit(char c, size_t place, size_t g, int alone,
                            int whole, int liang)
{
    if (c != '2')
        return speech_digit[c - '0'];
    if (place >= 2 || (place == 0 && alone && (g > 0 || (whole && liang))))
        return "liang";
    return speech_digit[c - '0'];
}

/* An integer of 1-12 digits without leading zeros. Within a group of four
 * a run of zeros before a digit is one 零 and zeros ending a group are
 * silent; a whole zero group between digits is one 零 too (10010 一万零一十,
 * 100001000 一亿零一千, 10001000 一千万一千). 10-19 at the head is 十…,
 * elsewhere 一十. */
static void zh_int(struct speech *sp, const char *d, size_t len, int liang)
{
    int spoken = 0, gap = 0;

    if (len == 1 && d[0] == '0') {
        speech_add(sp, speech_digit[0]);
        return;
    }
    for (size_t g = (len + 3) / 4; g-- > 0;) {
        size_t end = len - g * 4, start = end >= 4 ? end - 4 : 0, last = end;

        for (size_t i = start; i < end; i++)
            if (d[i] != '0')
                last = i;
        if (last == end) { /* all zero */
            gap |= spoken;
            continue;
        }
        for (size_t i = start; i <= last; i++) {
            size_t place = end - 1 - i;

            if (d[i] == '0') {
                gap |= spoken;
                continue;
            }
            if (gap)
                speech_add(sp, speech_digit[0]);
            gap = 0;
            if (spoken || place != 1 || d[i] != '1')
                speech_add(sp, zh_digit(d[i], place, g,
                                        zh_alone_in_group(d, start, i),
                                        !spoken, liang));
            if (place)
                speech_add(sp, zh_place[place]);
            spoken = 1;
        }
        if (g)
            speech_add(sp, zh_group[g]);
        /* a group ending in zeros leaves no 零 behind (一千万一千) */
        gap = 0;
    }
}

void speech_zh_uint(struct speech *sp, unsigned v, int liang)
{
    char buf[16];
    int len = snprintf(buf, sizeof buf, "%u", v);

    zh_int(sp, buf, (size_t)len, liang);
}

/* A number counted on its own: 2 is 二, 2.5 二点五, 200 两百. */
void speech_zh_number(struct speech *sp, const struct speech_num *n)
{
    if (n->neg)
        speech_add(sp, "minus");
    zh_int(sp, n->ip, n->ilen, 0);
    if (n->flen)
        speech_add(sp, "point");
    for (size_t i = 0; i < n->flen; i++)
        speech_add(sp, speech_digit[n->fp[i] - '0']);
}

/* Type 3: the amount, then 元; an amount's trailing zero decimals are
 * silent (10.00 十元, 1086.30 一千零八十六点三元, 2 两元). */
void speech_zh_money(struct speech *sp, const struct speech_num *n)
{
    size_t flen = n->flen;

    while (flen > 0 && n->fp[flen - 1] == '0')
        flen--;
    zh_int(sp, n->ip, n->ilen, flen == 0);
    if (flen)
        speech_add(sp, "point");
    for (size_t i = 0; i < flen; i++)
        speech_add(sp, speech_digit[n->fp[i] - '0']);
    speech_add(sp, "yuan");
}

/* Type 6, 元角分: zero units are silent unless everything is zero (零元);
 * a 零 stands for a silent 角 between 元 and 分 (一元零五分); 2 before
 * each unit is 两 (两元两角两分). */
void speech_zh_money_units(struct speech *sp, const struct speech_num *n)
{
    int yuan = !(n->ilen == 1 && n->ip[0] == '0');
    int jiao = n->flen > 0 ? n->fp[0] - '0' : 0;
    int fen = n->flen > 1 ? n->fp[1] - '0' : 0;

    if (yuan) {
        zh_int(sp, n->ip, n->ilen, 1);
        speech_add(sp, "yuan");
    }
    if (jiao) {
        speech_add(sp, jiao == 2 ? "liang" : speech_digit[jiao]);
        speech_add(sp, "jiao");
    }
    if (fen) {
        if (yuan && !jiao)
            speech_add(sp, speech_digit[0]);
        speech_add(sp, fen == 2 ? "liang" : speech_digit[fen]);
        speech_add(sp, "fen");
    }
    if (!yuan && !jiao && !fen) {
        speech_add(sp, speech_digit[0]);
        speech_add(sp, "yuan");
    }
}

/* The time of day: 两点 for 2 o'clock; a whole hour is 整 (一点整, not 一点
 * 零分, and not a bare 一点, which also means "a little"); zero seconds are
 * silent (十二点三十分), zero minutes before seconds are not (两点零分五秒). */
static void zh_clock(struct speech *sp, const struct speech_when *w)
{
    speech_zh_uint(sp, w->h, 1);
    speech_add(sp, "oclock");
    if (w->mi == 0 && w->s == 0) {
        speech_add(sp, "zheng");
        return;
    }
    speech_zh_uint(sp, w->mi, 0);
    speech_add(sp, "minute");
    if (w->s != 0) {
        speech_zh_uint(sp, w->s, 0);
        speech_add(sp, "second");
    }
}

/* Years digit by digit (二零一二年), months and days as numbers with 二
 * (二月, 二日), then the time. */
void speech_zh_when(struct speech *sp, const struct speech_when *w)
{
    if (w->year) {
        for (int i = 0; i < 4; i++)
            speech_add(sp, speech_digit[w->year[i] - '0']);
        speech_add(sp, "year");
        speech_zh_uint(sp, w->mo, 0);
        speech_add(sp, "month");
    }
    if (w->has_day) {
        speech_zh_uint(sp, w->d, 0);
        speech_add(sp, "day");
    }
    if (w->has_time)
        zh_clock(sp, w);
}
