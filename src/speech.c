/* speech: owns the spoken play_content types 1-6 (digits, number, money
 * as a number of 元, date/time, duration, money in 元角分): the
 * validation of their text and options, and the choice of reading rule,
 * whose Mandarin and English halves live in speech_zh.c and speech_en.c
 * (private header speech_rules.h). Pure: text in, constant prompt names
 * out, so every rule is unit-tested without audio. The pack's word list
 * (conf/prompts/make-prompt-pack.sh) must hold every name used here;
 * docs/prompts.md describes both. */
#include "speech.h"

#include <stdio.h>
#include <string.h>

#include "speech_rules.h"

#define SPEECH_MAX_INT 12  /* integer digits: up to 9999 亿 / 999 billion */
#define SPEECH_MAX_FRAC 8  /* type 2 decimals */

const char *const speech_digit[10] = {
    "digit_0", "digit_1", "digit_2", "digit_3", "digit_4",
    "digit_5", "digit_6", "digit_7", "digit_8", "digit_9",
};

void speech_add(struct speech *sp, const char *name)
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

/* ---- the types ---- */

/* Type 5. Zero fields are silent; all zero says zero of the smallest
 * unit. In Mandarin a 2 before the unit is 两 (两小时, 两分钟, 两秒). */
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
            speech_zh_uint(sp, f[i], 1);
            speech_add(sp, zh_unit[i]);
        } else {
            speech_en_uint(sp, f[i]);
            speech_add(sp, f[i] == 1 ? en_one[i] : en_many[i]);
        }
    }
}

static int speech_parse_duration(const char *text, unsigned f[3], size_t *nf,
                                 struct rpc_error *err)
{
    if (speech_clock(text, f, nf) < 0)
        return rpc_fail(err, RPC_INVALID_PARAMS, "type 5: not HH:MM:SS or "
                        "HH:MM");
    for (size_t i = 0; i < *nf; i++)
        if (f[i] > 99)
            return rpc_fail(err, RPC_INVALID_PARAMS, "type 5: field %u over "
                            "99", f[i]);
    return 0;
}

/* Type 1, digit by digit; yao (Mandarin only) reads 1 as 幺, as phone
 * numbers and codes are read on the telephone. */
static int speech_digits(struct speech *sp, const char *text,
                         const struct speech_opts *o, struct rpc_error *err)
{
    size_t len = strlen(text);
    int yao = o->yao && o->lang == SPEECH_ZH;

    if (len == 0 || len > SPEECH_MAX_DIGITS)
        return rpc_fail(err, RPC_INVALID_PARAMS, "type 1: 1 to %d digits",
                        SPEECH_MAX_DIGITS);
    for (const char *p = text; *p; p++) {
        if (*p == '1' && yao)
            speech_add(sp, "yao");
        else if (speech_isdigit(*p))
            speech_add(sp, speech_digit[*p - '0']);
        else if (*p == '*')
            speech_add(sp, "star");
        else if (*p == '#')
            speech_add(sp, "hash");
        else if (*p > ' ' && *p < 0x7f)
            return rpc_fail(err, RPC_INVALID_PARAMS, "type 1: '%c' is not a "
                            "digit, * or #", *p);
        else
            return rpc_fail(err, RPC_INVALID_PARAMS, "type 1: only digits, "
                            "* and #");
    }
    return 0;
}

/* Types 2, 3 and 6: a number, an amount of 元, an amount in 元角分. */
static int speech_numeric(int type, const char *text, enum speech_lang lang,
                          struct speech *sp, struct rpc_error *err)
{
    typedef void (*rule_fn)(struct speech *, const struct speech_num *);
    static const rule_fn zh[7] = {[2] = speech_zh_number,
                                  [3] = speech_zh_money,
                                  [6] = speech_zh_money_units};
    static const rule_fn en[7] = {[2] = speech_en_number,
                                  [3] = speech_en_money,
                                  [6] = speech_en_money_units};
    struct speech_num num;

    if (speech_parse_num(type, text, type == 2,
                         type == 2 ? SPEECH_MAX_FRAC : 2, &num, err) < 0)
        return -1;
    (lang == SPEECH_ZH ? zh : en)[type](sp, &num);
    return 0;
}

/* ---- the interface ---- */

int speech_is_spoken(int type)
{
    return type >= 1 && type <= 6;
}

const char *speech_lang_dir(enum speech_lang lang)
{
    return lang == SPEECH_EN ? "en" : "zh";
}

/* If the option [p, end) is key=..., its value with trailing blanks cut. */
static int speech_option_value(const char *p, const char *end,
                               const char *key, const char **v,
                               const char **ve)
{
    size_t klen = strlen(key);

    if ((size_t)(end - p) <= klen || memcmp(p, key, klen) != 0
        || p[klen] != '=')
        return 0;
    *v = p + klen + 1;
    *ve = end;
    while (*ve > *v && ((*ve)[-1] == ' ' || (*ve)[-1] == '\t'))
        (*ve)--;
    return 1;
}

static int speech_option(const char *p, const char *end,
                         struct speech_opts *o, struct rpc_error *err)
{
    const char *v, *ve;

    if (speech_option_value(p, end, "lang", &v, &ve)) {
        if (ve - v == 2 && memcmp(v, "zh", 2) == 0)
            o->lang = SPEECH_ZH;
        else if (ve - v == 2 && memcmp(v, "en", 2) == 0)
            o->lang = SPEECH_EN;
        else
            return rpc_fail(err, RPC_INVALID_PARAMS, "options: unknown "
                            "language \"%.*s\" (zh or en)",
                            (int)(ve - v > 16 ? 16 : ve - v), v);
    } else if (speech_option_value(p, end, "yao", &v, &ve)) {
        if (ve - v != 1 || (*v != '0' && *v != '1'))
            return rpc_fail(err, RPC_INVALID_PARAMS, "options: yao must be 0 "
                            "or 1");
        o->yao = *v == '1';
    }
    return 0;
}

int speech_read_options(const char *options, struct speech_opts *o,
                        struct rpc_error *err)
{
    const char *p = options;

    o->lang = SPEECH_ZH;
    o->yao = 0;
    while (*p) {
        size_t len = strcspn(p, ";,");
        const char *end = p + len;

        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (speech_option(p, end, o, err) < 0)
            return -1;
        p = *end ? end + 1 : end;
    }
    return 0;
}

int speech_options(const char *options, enum speech_lang *lang,
                   struct rpc_error *err)
{
    struct speech_opts o;

    if (speech_read_options(options, &o, err) < 0)
        return -1;
    *lang = o.lang;
    return 0;
}

int speech_say_opts(int type, const char *text, const struct speech_opts *o,
                    struct speech *out, struct rpc_error *err)
{
    struct speech_when when;
    unsigned f[3];
    size_t nf;
    int rc = 0;

    out->n = 0;
    switch (type) {
    case 1:
        rc = speech_digits(out, text, o, err);
        break;
    case 2:
    case 3:
    case 6:
        rc = speech_numeric(type, text, o->lang, out, err);
        break;
    case 4:
        rc = speech_parse_when(text, &when, err);
        if (rc == 0)
            (o->lang == SPEECH_ZH ? speech_zh_when : speech_en_when)(out,
                                                                     &when);
        break;
    case 5:
        rc = speech_parse_duration(text, f, &nf, err);
        if (rc == 0)
            speech_duration(out, o->lang, f, nf);
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

int speech_say(int type, const char *text, enum speech_lang lang,
               struct speech *out, struct rpc_error *err)
{
    const struct speech_opts o = {lang, 0};

    return speech_say_opts(type, text, &o, out, err);
}
