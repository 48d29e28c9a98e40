/* speech: owns the reading rules of the spoken play_content types 1-5
 * (digits, number, money, date/time, duration) for each prompt pack
 * language, and the validation of their text. Pure: text in, constant
 * prompt names out, so every rule is unit-tested without audio. The pack's
 * word list (conf/prompts/make-prompt-pack.sh) must hold every name used
 * here; docs/prompts.md describes both. */
#include "speech.h"

#include <stdio.h>
#include <string.h>

#define SPEECH_MAX_INT 12  /* integer digits: up to 9999 亿 / 999 billion */
#define SPEECH_MAX_FRAC 8  /* type 2 decimals */

static const char *const speech_digit[10] = {
    "digit_0", "digit_1", "digit_2", "digit_3", "digit_4",
    "digit_5", "digit_6", "digit_7", "digit_8", "digit_9",
};

/* zh: units of the places inside a group of four, and of the groups. */
static const char *const zh_place[4] = {NULL, "ten", "hundred", "thousand"};
static const char *const zh_group[3] = {NULL, "ten_thousand",
                                        "hundred_million"};

/* en: 10-19, tens, groups of three, months, ordinal days. */
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

/* Counts every name but stores only what fits, so speech_say can refuse an
 * overlong result once instead of checking at every call. */
static void say(struct speech *sp, const char *name)
{
    if (sp->n < SPEECH_MAX_NAMES)
        sp->names[sp->n] = name;
    sp->n++;
}

static int speech_isdigit(char c)
{
    return c >= '0' && c <= '9';
}

/* ---- parsing ---- */

static int speech_parse_num(int type, const char *s, int signed_ok,
                            size_t max_frac, struct speech_num *n,
                            struct rpc_error *err)
{
    const char *p = s;

    memset(n, 0, sizeof *n);
    if (*p == '-' && signed_ok) {
        n->neg = 1;
        p++;
    }
    n->ip = p;
    while (speech_isdigit(*p))
        p++;
    n->ilen = (size_t)(p - n->ip);
    if (*p == '.') {
        n->fp = ++p;
        while (speech_isdigit(*p))
            p++;
        n->flen = (size_t)(p - n->fp);
        if (n->flen == 0)
            n->ilen = 0; /* "1." is as malformed as "x" */
    }
    if (*p != '\0' || n->ilen == 0)
        return rpc_fail(err, RPC_INVALID_PARAMS, "type %d: not a%s number "
                        "(digits, optionally '.' and decimals)", type,
                        signed_ok ? "" : "n unsigned");
    /* A quantity: "007" is seven. */
    while (n->ilen > 1 && n->ip[0] == '0') {
        n->ip++;
        n->ilen--;
    }
    if (n->ilen > SPEECH_MAX_INT)
        return rpc_fail(err, RPC_INVALID_PARAMS, "type %d: more than %d "
                        "integer digits", type, SPEECH_MAX_INT);
    if (n->flen > max_frac)
        return rpc_fail(err, RPC_INVALID_PARAMS, "type %d: more than %zu "
                        "decimals", type, max_frac);
    /* "-0" and "-0.00" are zero, which has no sign to read. */
    if (n->neg && strspn(n->ip, "0") == n->ilen &&
        strspn(n->fp ? n->fp : "", "0") == n->flen)
        n->neg = 0;
    return 0;
}

/* A run of 1-4 digits; leading zeros are allowed ("08"). */
static int speech_field(const char **p, unsigned *v)
{
    size_t i = 0;

    *v = 0;
    while (i < 4 && speech_isdigit((*p)[i]))
        *v = *v * 10 + (unsigned)((*p)[i++] - '0');
    if (i == 0 || speech_isdigit((*p)[i]))
        return -1;
    *p += i;
    return 0;
}

/* "H:M" or "H:M:S" up to the end of the text; f gets 2 or 3 values. */
static int speech_clock(const char *p, unsigned f[3], size_t *nf)
{
    for (*nf = 0;;) {
        if (*nf == 3 || speech_field(&p, &f[*nf]) < 0)
            return -1;
        (*nf)++;
        if (*p == '\0')
            return *nf >= 2 ? 0 : -1;
        if (*p++ != ':')
            return -1;
    }
}

static int speech_leap(unsigned y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int speech_parse_when(const char *s, struct speech_when *w,
                             struct rpc_error *err)
{
    static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30,
                                       31, 31, 30, 31, 30, 31};
    const char *p = s;
    unsigned f[3];
    size_t nf;

    memset(w, 0, sizeof *w);
    if (strchr(s, '-')) {
        for (int i = 0; i < 4; i++)
            if (!speech_isdigit(p[i]))
                goto malformed;
        w->year = p;
        w->y = (unsigned)((p[0] - '0') * 1000 + (p[1] - '0') * 100 +
                          (p[2] - '0') * 10 + (p[3] - '0'));
        p += 4;
        if (*p++ != '-' || speech_field(&p, &w->mo) < 0)
            goto malformed;
        w->has_month = 1;
        if (*p == '\0')
            goto check;
        if (*p++ != '-' || speech_field(&p, &w->d) < 0)
            goto malformed;
        w->has_day = 1;
        if (*p == '\0')
            goto check;
        if (*p++ != ' ')
            goto malformed;
    }
    if (speech_clock(p, f, &nf) < 0)
        goto malformed;
    w->has_time = 1;
    w->has_sec = nf == 3;
    w->h = f[0];
    w->mi = f[1];
    w->s = w->has_sec ? f[2] : 0;
check:
    if (w->year && w->y == 0)
        return rpc_fail(err, RPC_INVALID_PARAMS, "type 4: year 0 out of "
                        "range");
    if (w->has_month && (w->mo < 1 || w->mo > 12))
        return rpc_fail(err, RPC_INVALID_PARAMS, "type 4: month %u out of "
                        "range", w->mo);
    if (w->has_day &&
        (w->d < 1 || w->d > mdays[w->mo - 1] +
                                 (w->mo == 2 && speech_leap(w->y))))
        return rpc_fail(err, RPC_INVALID_PARAMS, "type 4: day %u out of "
                        "range for %.4s-%02u", w->d, w->year, w->mo);
    if (w->has_time && w->h > 23)
        return rpc_fail(err, RPC_INVALID_PARAMS, "type 4: hour %u out of "
                        "range", w->h);
    if (w->has_time && w->mi > 59)
        return rpc_fail(err, RPC_INVALID_PARAMS, "type 4: minute %u out of "
                        "range", w->mi);
    if (w->has_sec && w->s > 59)
        return rpc_fail(err, RPC_INVALID_PARAMS, "type 4: second %u out of "
                        "range", w->s);
    return 0;
malformed:
    return rpc_fail(err, RPC_INVALID_PARAMS, "type 4: not YYYY-mm-dd "
                    "HH:MM:SS, YYYY-mm-dd HH:MM, YYYY-mm-dd, YYYY-mm, "
                    "HH:MM:SS or HH:MM");
}

/* ---- zh: Mandarin ---- */

/* An integer of 1-12 digits without leading zeros. Within a group of four
 * a run of zeros before a digit is one 零 and zeros ending a group are
 * silent; a whole zero group between digits is one 零 too (10010 一万零一十,
 * 100001000 一亿零一千, 10001000 一千万一千). 10-19 at the head is 十…,
 * elsewhere 一十. */
static void zh_int(struct speech *sp, const char *d, size_t len)
{
    int spoken = 0, gap = 0;

    if (len == 1 && d[0] == '0') {
        say(sp, speech_digit[0]);
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
                say(sp, speech_digit[0]);
            gap = 0;
            if (spoken || place != 1 || d[i] != '1')
                say(sp, speech_digit[d[i] - '0']);
            if (place)
                say(sp, zh_place[place]);
            spoken = 1;
        }
        if (g)
            say(sp, zh_group[g]);
        /* a group ending in zeros leaves no 零 behind (一千万一千) */
        gap = 0;
    }
}

static void zh_uint(struct speech *sp, unsigned v)
{
    char buf[16];
    int len = snprintf(buf, sizeof buf, "%u", v);

    zh_int(sp, buf, (size_t)len);
}

static void zh_number(struct speech *sp, const struct speech_num *n)
{
    if (n->neg)
        say(sp, "minus");
    zh_int(sp, n->ip, n->ilen);
    if (n->flen)
        say(sp, "point");
    for (size_t i = 0; i < n->flen; i++)
        say(sp, speech_digit[n->fp[i] - '0']);
}

/* 元, 角, 分: zero units are silent unless everything is zero (零元); a
 * 零 stands for a silent 角 between 元 and 分 (一元零五分). */
static void zh_money(struct speech *sp, const struct speech_num *n)
{
    int yuan = !(n->ilen == 1 && n->ip[0] == '0');
    int jiao = n->flen > 0 ? n->fp[0] - '0' : 0;
    int fen = n->flen > 1 ? n->fp[1] - '0' : 0;

    if (yuan) {
        zh_int(sp, n->ip, n->ilen);
        say(sp, "yuan");
    }
    if (jiao) {
        say(sp, speech_digit[jiao]);
        say(sp, "jiao");
    }
    if (fen) {
        if (yuan && !jiao)
            say(sp, speech_digit[0]);
        say(sp, speech_digit[fen]);
        say(sp, "fen");
    }
    if (!yuan && !jiao && !fen) {
        say(sp, speech_digit[0]);
        say(sp, "yuan");
    }
}

/* Years digit by digit (二零一二年), the rest as numbers. */
static void zh_when(struct speech *sp, const struct speech_when *w)
{
    if (w->year) {
        for (int i = 0; i < 4; i++)
            say(sp, speech_digit[w->year[i] - '0']);
        say(sp, "year");
        zh_uint(sp, w->mo);
        say(sp, "month");
    }
    if (w->has_day) {
        zh_uint(sp, w->d);
        say(sp, "day");
    }
    if (w->has_time) {
        zh_uint(sp, w->h);
        say(sp, "oclock");
        zh_uint(sp, w->mi);
        say(sp, "minute");
    }
    if (w->has_sec) {
        zh_uint(sp, w->s);
        say(sp, "second");
    }
}

/* ---- en: English (US style: no "and" inside numbers) ---- */

static void en_below_1000(struct speech *sp, unsigned v)
{
    if (v >= 100) {
        say(sp, speech_digit[v / 100]);
        say(sp, "hundred");
        v %= 100;
    }
    if (v >= 20) {
        say(sp, en_tens[v / 10]);
        if (v % 10)
            say(sp, speech_digit[v % 10]);
    } else if (v >= 10) {
        say(sp, en_teen[v - 10]);
    } else if (v) {
        say(sp, speech_digit[v]);
    }
}

static void en_int(struct speech *sp, const char *d, size_t len)
{
    if (len == 1 && d[0] == '0') {
        say(sp, speech_digit[0]);
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
            say(sp, en_group[g]);
    }
}

static void en_uint(struct speech *sp, unsigned v)
{
    char buf[16];
    int len = snprintf(buf, sizeof buf, "%u", v);

    en_int(sp, buf, (size_t)len);
}

static void en_number(struct speech *sp, const struct speech_num *n)
{
    if (n->neg)
        say(sp, "minus");
    en_int(sp, n->ip, n->ilen);
    if (n->flen)
        say(sp, "point");
    for (size_t i = 0; i < n->flen; i++)
        say(sp, speech_digit[n->fp[i] - '0']);
}

/* "1086.30": one thousand eighty six yuan and thirty cents. */
static void en_money(struct speech *sp, const struct speech_num *n)
{
    int major = !(n->ilen == 1 && n->ip[0] == '0');
    unsigned cents = (unsigned)((n->flen > 0 ? n->fp[0] - '0' : 0) * 10 +
                                (n->flen > 1 ? n->fp[1] - '0' : 0));

    if (major || !cents) {
        en_int(sp, n->ip, n->ilen);
        say(sp, "yuan");
    }
    if (cents) {
        if (major)
            say(sp, "and");
        en_below_1000(sp, cents);
        say(sp, cents == 1 ? "cent" : "cents");
    }
}

/* 1999 nineteen ninety nine, 1905 nineteen oh five, 1900 nineteen
 * hundred, 2000 two thousand, 2005 two thousand five, 2012 twenty twelve. */
static void en_year(struct speech *sp, unsigned y)
{
    if (y < 1000 || y % 1000 < 10) {
        en_uint(sp, y);
        return;
    }
    en_uint(sp, y / 100);
    if (y % 100 == 0) {
        say(sp, "hundred");
    } else if (y % 100 < 10) {
        say(sp, "oh");
        say(sp, speech_digit[y % 10]);
    } else {
        en_uint(sp, y % 100);
    }
}

/* September eighth twenty twelve, thirteen oh five and three seconds. */
static void en_when(struct speech *sp, const struct speech_when *w)
{
    if (w->year) {
        say(sp, en_month[w->mo]);
        if (w->has_day)
            say(sp, en_ord[w->d]);
        en_year(sp, w->y);
    }
    if (w->has_time) {
        en_uint(sp, w->h);
        if (w->mi == 0) {
            say(sp, "oclock");
        } else if (w->mi < 10) {
            say(sp, "oh");
            say(sp, speech_digit[w->mi]);
        } else {
            en_uint(sp, w->mi);
        }
    }
    if (w->has_sec) {
        say(sp, "and");
        en_uint(sp, w->s);
        say(sp, w->s == 1 ? "second" : "seconds");
    }
}

/* ---- shared ---- */

/* Zero fields are silent; all zero says zero of the smallest unit. */
static void speech_duration(struct speech *sp, enum speech_lang lang,
                            const unsigned *f, size_t nf)
{
    static const char *const zh_unit[3] = {"hours", "minutes", "second"};
    static const char *const en_one[3] = {"hour", "minute", "second"};
    static const char *const en_many[3] = {"hours", "minutes", "seconds"};
    size_t said = sp->n;

    for (size_t i = 0; i < nf; i++) {
        if (f[i] == 0 && (i + 1 < nf || sp->n != said))
            continue;
        if (lang == SPEECH_ZH) {
            zh_uint(sp, f[i]);
            say(sp, zh_unit[i]);
        } else {
            en_uint(sp, f[i]);
            say(sp, f[i] == 1 ? en_one[i] : en_many[i]);
        }
    }
}

static int speech_digits(struct speech *sp, const char *text,
                         struct rpc_error *err)
{
    size_t len = strlen(text);

    if (len == 0 || len > SPEECH_MAX_DIGITS)
        return rpc_fail(err, RPC_INVALID_PARAMS, "type 1: 1 to %d digits",
                        SPEECH_MAX_DIGITS);
    for (const char *p = text; *p; p++) {
        if (speech_isdigit(*p))
            say(sp, speech_digit[*p - '0']);
        else if (*p == '*')
            say(sp, "star");
        else if (*p == '#')
            say(sp, "hash");
        else if (*p > ' ' && *p < 0x7f)
            return rpc_fail(err, RPC_INVALID_PARAMS, "type 1: '%c' is not a "
                            "digit, * or #", *p);
        else
            return rpc_fail(err, RPC_INVALID_PARAMS, "type 1: only digits, "
                            "* and #");
    }
    return 0;
}

int speech_is_spoken(int type)
{
    return type >= 1 && type <= 5;
}

const char *speech_lang_dir(enum speech_lang lang)
{
    return lang == SPEECH_EN ? "en" : "zh";
}

int speech_options(const char *options, enum speech_lang *lang,
                   struct rpc_error *err)
{
    const char *p = options;

    *lang = SPEECH_ZH;
    while (*p) {
        size_t len = strcspn(p, ";,");
        const char *end = p + len;

        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (end - p >= 5 && memcmp(p, "lang=", 5) == 0) {
            const char *v = p + 5, *ve = end;

            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if (ve - v == 2 && memcmp(v, "zh", 2) == 0)
                *lang = SPEECH_ZH;
            else if (ve - v == 2 && memcmp(v, "en", 2) == 0)
                *lang = SPEECH_EN;
            else
                return rpc_fail(err, RPC_INVALID_PARAMS, "options: unknown "
                                "language \"%.*s\" (zh or en)",
                                (int)(ve - v > 16 ? 16 : ve - v), v);
        }
        p = *end ? end + 1 : end;
    }
    return 0;
}

int speech_say(int type, const char *text, enum speech_lang lang,
               struct speech *out, struct rpc_error *err)
{
    struct speech_num num;
    struct speech_when when;
    unsigned f[3];
    size_t nf;
    int rc = 0;

    out->n = 0;
    switch (type) {
    case 1:
        rc = speech_digits(out, text, err);
        break;
    case 2:
    case 3:
        rc = speech_parse_num(type, text, type == 2,
                              type == 2 ? SPEECH_MAX_FRAC : 2, &num, err);
        if (rc == 0 && lang == SPEECH_ZH)
            (type == 2 ? zh_number : zh_money)(out, &num);
        else if (rc == 0)
            (type == 2 ? en_number : en_money)(out, &num);
        break;
    case 4:
        rc = speech_parse_when(text, &when, err);
        if (rc == 0)
            (lang == SPEECH_ZH ? zh_when : en_when)(out, &when);
        break;
    case 5:
        if (speech_clock(text, f, &nf) < 0)
            rc = rpc_fail(err, RPC_INVALID_PARAMS, "type 5: not HH:MM:SS or "
                          "HH:MM");
        for (size_t i = 0; rc == 0 && i < nf; i++)
            if (f[i] > 99)
                rc = rpc_fail(err, RPC_INVALID_PARAMS, "type 5: field %u "
                              "over 99", f[i]);
        if (rc == 0)
            speech_duration(out, lang, f, nf);
        break;
    default:
        rc = rpc_fail(err, RPC_INVALID_PARAMS, "type %d is not spoken", type);
    }
    if (rc == 0 && out->n > SPEECH_MAX_NAMES)
        rc = rpc_fail(err, RPC_INVALID_PARAMS, "type %d: too long to speak",
                      type);
    if (rc < 0)
        out->n = 0;
    return rc;
}
