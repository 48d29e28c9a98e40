/* Unit tests of speech: the reading rules of play_content types 1-5 and
 * their validation. Mandarin results are compared as the characters the
 * recordings say (digit_4 is 四), English ones as the names themselves. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "speech.h"

/* What each zh recording says: the pack's word list, as the test sees it. */
static const struct {
    const char *name, *text;
} zh_words[] = {
    {"digit_0", "零"}, {"digit_1", "一"}, {"digit_2", "二"},
    {"digit_3", "三"}, {"digit_4", "四"}, {"digit_5", "五"},
    {"digit_6", "六"}, {"digit_7", "七"}, {"digit_8", "八"},
    {"digit_9", "九"}, {"star", "*"}, {"hash", "#"}, {"ten", "十"},
    {"hundred", "百"}, {"thousand", "千"}, {"ten_thousand", "万"},
    {"hundred_million", "亿"}, {"point", "点"}, {"minus", "负"},
    {"yuan", "元"}, {"jiao", "角"}, {"fen", "分"}, {"year", "年"},
    {"month", "月"}, {"day", "日"}, {"oclock", "点"}, {"minute", "分"},
    {"second", "秒"}, {"hours", "小时"}, {"minutes", "分钟"},
    {"liang", "两"}, {"yao", "幺"}, {"zheng", "整"},
};

static void spoken(int type, const char *text, enum speech_lang lang,
                   char *out, size_t len)
{
    struct speech sp;
    struct rpc_error err;

    if (speech_say(type, text, lang, &sp, &err) != 0)
        fail_msg("type %d \"%s\" refused: %s", type, text, err.message);
    assert_true(sp.n > 0 && sp.n <= SPEECH_MAX_NAMES);
    out[0] = '\0';
    for (size_t i = 0; i < sp.n; i++) {
        const char *w = NULL;

        for (size_t k = 0; lang == SPEECH_ZH && k < sizeof zh_words /
                                                        sizeof zh_words[0];
             k++)
            if (strcmp(zh_words[k].name, sp.names[i]) == 0)
                w = zh_words[k].text;
        if (lang == SPEECH_ZH && w == NULL)
            fail_msg("type %d \"%s\": %s is not a zh word", type, text,
                     sp.names[i]);
        if (lang == SPEECH_EN && i > 0)
            strncat(out, " ", len - strlen(out) - 1);
        strncat(out, w ? w : sp.names[i], len - strlen(out) - 1);
    }
}

static void assert_zh(int type, const char *text, const char *expected)
{
    char got[1024];

    spoken(type, text, SPEECH_ZH, got, sizeof got);
    if (strcmp(got, expected) != 0)
        fail_msg("type %d \"%s\": got %s, expected %s", type, text, got,
                 expected);
}

static void assert_en(int type, const char *text, const char *expected)
{
    char got[2048];

    spoken(type, text, SPEECH_EN, got, sizeof got);
    if (strcmp(got, expected) != 0)
        fail_msg("type %d \"%s\": got \"%s\", expected \"%s\"", type, text,
                 got, expected);
}

/* The cases of one test as tables: a text of a type and what it says, or
 * the error message that refuses it. */
struct reading {
    int type;
    const char *text, *says;
};

struct refusal {
    int type;
    const char *text, *message;
};

#define N_OF(a) (sizeof(a) / sizeof(a)[0])

static void assert_all_zh(const struct reading *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_zh(r[i].type, r[i].text, r[i].says);
}

static void assert_all_en(const struct reading *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_en(r[i].type, r[i].text, r[i].says);
}

static void assert_refused(int type, const char *text, const char *message)
{
    struct speech sp;
    struct rpc_error err;

    for (int lang = SPEECH_ZH; lang <= SPEECH_EN; lang++) {
        if (speech_say(type, text, (enum speech_lang)lang, &sp, &err) == 0)
            fail_msg("type %d \"%s\" accepted", type, text);
        assert_int_equal(err.code, RPC_INVALID_PARAMS);
        if (strcmp(err.message, message) != 0)
            fail_msg("type %d \"%s\": message \"%s\", expected \"%s\"", type,
                     text, err.message, message);
        assert_int_equal(sp.n, 0);
    }
}

static void assert_all_refused(const struct refusal *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_refused(r[i].type, r[i].text, r[i].message);
}

/* Many texts of one type, all refused with the same message. */
static void assert_all_refused_as(int type, const char *const *texts,
                                  size_t n, const char *message)
{
    for (size_t i = 0; i < n; i++)
        assert_refused(type, texts[i], message);
}

static void test_digits(void **state)
{
    (void)state;
    static const struct reading zh[] = {
        {1, "4815", "四八一五"},
        {1, "0", "零"},
        {1, "0012", "零零一二"},
        {1, "*10#", "*一零#"},
    };
    assert_all_zh(zh, N_OF(zh));
    static const struct reading en[] = {
        {1, "4815", "digit_4 digit_8 digit_1 digit_5"},
        {1, "#*", "hash star"},
    };
    assert_all_en(en, N_OF(en));
    char max[SPEECH_MAX_DIGITS + 2];
    memset(max, '9', SPEECH_MAX_DIGITS);
    max[SPEECH_MAX_DIGITS] = '\0';
    struct speech sp;
    struct rpc_error err;
    assert_int_equal(speech_say(1, max, SPEECH_ZH, &sp, &err), 0);
    assert_int_equal(sp.n, SPEECH_MAX_DIGITS);
    strcat(max, "9");
    assert_refused(1, max, "type 1: 1 to 64 digits");
    static const struct refusal refused[] = {
        {1, "", "type 1: 1 to 64 digits"},
        {1, "48a5", "type 1: 'a' is not a digit, * or #"},
        {1, "48 5", "type 1: only digits, * and #"},
        {1, "4-8", "type 1: '-' is not a digit, * or #"},
        {1, "\xe4\xb8\x80", "type 1: only digits, * and #"},
    };
    assert_all_refused(refused, N_OF(refused));
}

static void test_number_zh(void **state)
{
    (void)state;
    static const struct reading zh[] = {
        {2, "0", "零"},
        {2, "7", "七"},
        {2, "10", "十"},
        {2, "11", "十一"},
        {2, "19", "十九"},
        {2, "20", "二十"},
        {2, "21", "二十一"},
        {2, "100", "一百"},
        {2, "101", "一百零一"},
        {2, "110", "一百一十"},
        {2, "111", "一百一十一"},
        {2, "1000", "一千"},
        {2, "1001", "一千零一"},
        {2, "1010", "一千零一十"},
        {2, "1086", "一千零八十六"},
        {2, "1100", "一千一百"},
        {2, "10000", "一万"},
        {2, "10010", "一万零一十"},
        {2, "10100", "一万零一百"},
        {2, "11000", "一万一千"},
        {2, "100000", "十万"},
        {2, "150000", "十五万"},
        {2, "1000000", "一百万"},
        {2, "10001000", "一千万一千"},
        {2, "100000000", "一亿"},
        {2, "100000001", "一亿零一"},
        {2, "100001000", "一亿零一千"},
        {2, "100010000", "一亿零一万"},
        {2, "1000000000", "十亿"},
        {2, "123456789012", "一千两百三十四亿五千六百七十八万九千零一十二"},
        {2, "999999999999", "九千九百九十九亿九千九百九十九万九千九百九十九"},
        /* Leading zeros are dropped: a quantity, not a code. */
        {2, "007", "七"},
        {2, "000", "零"},
        {2, "0010", "十"},
        /* Decimals digit by digit, as given. */
        {2, "0.05", "零点零五"},
        {2, "0.5", "零点五"},
        {2, "10.5", "十点五"},
        {2, "3.14159265", "三点一四一五九二六五"},
        {2, "20.00", "二十点零零"},
        /* Negative numbers read 负; zero has no sign. */
        {2, "-5", "负五"},
        {2, "-10.25", "负十点二五"},
        {2, "-0", "零"},
        {2, "-0.00", "零点零零"},
    };
    assert_all_zh(zh, N_OF(zh));
}

static void test_number_refused(void **state)
{
    (void)state;
    const char *nan = "type 2: not a number (digits, optionally '.' and "
                      "decimals)";
    const char *bad[] = {"", "-", "+5", "1.", ".5", "1.2.3", "1,000", " 1",
                         "1 ", "1e3", "0x10", "--1", "1-", "五", "1.-5"};
    assert_all_refused_as(2, bad, N_OF(bad), nan);
    assert_refused(2, "1234567890123", "type 2: more than 12 integer digits");
    /* Leading zeros do not count towards the limit. */
    assert_zh(2, "0001234567890", "十二亿三千四百五十六万七千八百九十");
    assert_refused(2, "1.123456789", "type 2: more than 8 decimals");
}

static void test_money_zh(void **state)
{
    (void)state;
    static const struct reading zh[] = {
        {6, "1086.30", "一千零八十六元三角"},
        {6, "1086.3", "一千零八十六元三角"},
        {6, "1086.35", "一千零八十六元三角五分"},
        {6, "1086.05", "一千零八十六元零五分"},
        {6, "0.50", "五角"},
        {6, "0.05", "五分"},
        {6, "0.55", "五角五分"},
        {6, "10.00", "十元"},
        {6, "20.00", "二十元"},
        {6, "20", "二十元"},
        {6, "0", "零元"},
        {6, "0.00", "零元"},
        {6, "100000000", "一亿元"},
        {6, "10010.01", "一万零一十元零一分"},
        {6, "007.10", "七元一角"},
    };
    assert_all_zh(zh, N_OF(zh));
    assert_refused(6, "1.234", "type 6: more than 2 decimals");
    const char *unsigned_only = "type 6: not an unsigned number (digits, "
                                "optionally '.' and decimals)";
    const char *bad[] = {"-5", "5元", ""};
    assert_all_refused_as(6, bad, N_OF(bad), unsigned_only);
}

static void test_datetime_zh(void **state)
{
    (void)state;
    static const struct reading zh[] = {
        {4, "2012-9-8 1:5:3", "二零一二年九月八日一点五分三秒"},
        {4, "2012-09-08 01:05:03", "二零一二年九月八日一点五分三秒"},
        {4, "2025-12-31 23:59:59",
         "二零二五年十二月三十一日二十三点五十九分五十九秒"},
        {4, "2025-10-10 10:10", "二零二五年十月十日十点十分"},
        {4, "2000-01-01", "二零零零年一月一日"},
        {4, "2024-02-29", "二零二四年二月二十九日"},
        {4, "2000-02-29", "二零零零年二月二十九日"},
        {4, "2024-11", "二零二四年十一月"},
        {4, "00:00", "零点整"},
        {4, "0:00:00", "零点整"},
        {4, "12:30", "十二点三十分"},
        {4, "23:59:59", "二十三点五十九分五十九秒"},
    };
    assert_all_zh(zh, N_OF(zh));
}

static void test_datetime_refused(void **state)
{
    (void)state;
    const char *fmt = "type 4: not YYYY-mm-dd HH:MM:SS, YYYY-mm-dd HH:MM, "
                      "YYYY-mm-dd, YYYY-mm, HH:MM:SS or HH:MM";
    static const struct refusal refused[] = {
        {4, "2023-02-29", "type 4: day 29 out of range for 2023-02"},
        {4, "1900-02-29", "type 4: day 29 out of range for 1900-02"},
        {4, "2025-04-31", "type 4: day 31 out of range for 2025-04"},
        {4, "2025-4-0", "type 4: day 0 out of range for 2025-04"},
        {4, "2025-13-01", "type 4: month 13 out of range"},
        {4, "2025-0", "type 4: month 0 out of range"},
        {4, "0000-01-01", "type 4: year 0 out of range"},
        {4, "24:00", "type 4: hour 24 out of range"},
        {4, "99:99", "type 4: hour 99 out of range"},
        {4, "12:60", "type 4: minute 60 out of range"},
        {4, "12:00:60", "type 4: second 60 out of range"},
        {4, "2025-01-01 25:00", "type 4: hour 25 out of range"},
    };
    assert_all_refused(refused, N_OF(refused));
    const char *bad[] = {
        "", "12", "12:", ":12", "1:2:3:4", "12-01-01", "2025", "2025-",
        "2025-1-", "2025-01-01 ", "2025-01-01  12:00", "2025-01-01T12:00",
        "2025-01 12:00", "2025/01/01", " 12:00", "12:00 ", "12:00:00:",
        "12345:00", "20250-01-01", "2025-01-01 12", "a:b", "12:0a",
    };
    assert_all_refused_as(4, bad, N_OF(bad), fmt);
}

static void test_duration_zh(void **state)
{
    (void)state;
    static const struct reading zh[] = {
        {5, "01:23:35", "一小时二十三分钟三十五秒"},
        {5, "1:23:35", "一小时二十三分钟三十五秒"},
        {5, "99:99:99", "九十九小时九十九分钟九十九秒"},
        {5, "99:99", "九十九小时九十九分钟"},
        {5, "00:00:00", "零秒"},
        {5, "00:00", "零分钟"},
        {5, "00:10:00", "十分钟"},
        {5, "01:00:05", "一小时五秒"},
        {5, "0:0:10", "十秒"},
    };
    assert_all_zh(zh, N_OF(zh));
    static const struct refusal refused[] = {
        {5, "100:00", "type 5: field 100 over 99"},
        {5, "00:00:100", "type 5: field 100 over 99"},
    };
    assert_all_refused(refused, N_OF(refused));
    const char *fmt = "type 5: not HH:MM:SS or HH:MM";
    const char *bad[] = {"", "5", "1:2:3:4", "1::2", "01:23:", "1h", "-1:00",
                         "1:00 ", "10000:00"};
    assert_all_refused_as(5, bad, N_OF(bad), fmt);
}

static void test_english(void **state)
{
    (void)state;
    static const struct reading en[] = {
        {2, "0", "digit_0"},
        {2, "10", "n_10"},
        {2, "11", "n_11"},
        {2, "20", "n_20"},
        {2, "21", "n_20 digit_1"},
        {2, "100", "digit_1 hundred"},
        {2, "101", "digit_1 hundred digit_1"},
        {2, "1000", "digit_1 thousand"},
        {2, "1001", "digit_1 thousand digit_1"},
        {2, "10010", "n_10 thousand n_10"},
        {2, "100000000", "digit_1 hundred million"},
        {2, "1000000001", "digit_1 billion digit_1"},
        {2, "-0.05", "minus digit_0 point digit_0 digit_5"},
        {6, "1086.30", "digit_1 thousand n_80 digit_6 yuan and n_30 cents"},
        {6, "0.01", "digit_1 cent"},
        {6, "0.50", "n_50 cents"},
        {6, "10.00", "n_10 yuan"},
        {6, "0", "digit_0 yuan"},
        {4, "2012-9-8 1:5:3",
         "month_9 ord_8 n_20 n_12 digit_1 oh digit_5 and digit_3 seconds"},
        {4, "2000-01-01", "month_1 ord_1 digit_2 thousand"},
        {4, "2005-12", "month_12 digit_2 thousand digit_5"},
        {4, "1999-02-28", "month_2 ord_28 n_19 n_90 digit_9"},
        {4, "1905-03-31", "month_3 ord_31 n_19 oh digit_5"},
        {4, "1900-03-01", "month_3 ord_1 n_19 hundred"},
        {4, "00:00", "digit_0 oclock"},
        {4, "13:45:01", "n_13 n_40 digit_5 and digit_1 second"},
        {5, "01:23:35",
         "digit_1 hour n_20 digit_3 minutes n_30 digit_5 seconds"},
        {5, "02:01", "digit_2 hours digit_1 minute"},
        {5, "00:00:00", "digit_0 seconds"},
    };
    assert_all_en(en, N_OF(en));
}

static void test_options(void **state)
{
    (void)state;
    struct rpc_error err;
    enum speech_lang lang;
    const struct {
        const char *options;
        enum speech_lang lang;
    } good[] = {
        {"", SPEECH_ZH}, {"lang=zh", SPEECH_ZH}, {"lang=en", SPEECH_EN},
        {"voice=x;lang=en", SPEECH_EN}, {"lang=en,speed=2", SPEECH_EN},
        {" lang=en ; x=1", SPEECH_EN}, {"lang=en;lang=zh", SPEECH_ZH},
        {";;,", SPEECH_ZH}, {"x", SPEECH_ZH}, {"language=fr", SPEECH_ZH},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (speech_options(good[i].options, &lang, &err) != 0)
            fail_msg("\"%s\" refused: %s", good[i].options, err.message);
        assert_int_equal(lang, good[i].lang);
    }
    assert_int_equal(speech_options("lang=fr", &lang, &err), -1);
    assert_int_equal(err.code, RPC_INVALID_PARAMS);
    assert_string_equal(err.message, "options: unknown language \"fr\" "
                                     "(zh or en)");
    assert_int_equal(speech_options("x=1,lang=", &lang, &err), -1);
    assert_string_equal(err.message, "options: unknown language \"\" "
                                     "(zh or en)");
    assert_int_equal(speech_options("lang=ZH", &lang, &err), -1);
    assert_string_equal(speech_lang_dir(SPEECH_ZH), "zh");
    assert_string_equal(speech_lang_dir(SPEECH_EN), "en");
}

static void test_not_spoken(void **state)
{
    (void)state;
    struct speech sp;
    struct rpc_error err;
    const int types[] = {-1, 0, 7, 10, 11};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        assert_false(speech_is_spoken(types[i]));
        assert_int_equal(speech_say(types[i], "1", SPEECH_ZH, &sp, &err), -1);
    }
    for (int t = 1; t <= 6; t++)
        assert_true(speech_is_spoken(t));
}

/* The longest text of every type fits SPEECH_MAX_NAMES. */
static void test_bounds(void **state)
{
    (void)state;
    struct speech sp;
    struct rpc_error err;
    const struct {
        int type;
        const char *text;
    } longest[] = {
        {2, "-999999999999.99999999"}, {2, "-101010101010.10101010"},
        {3, "999999999999.99"}, {4, "2027-12-27 23:57:57"},
        {5, "99:99:99"}, {2, "-777777777777.77777777"},
    };
    for (size_t i = 0; i < sizeof longest / sizeof longest[0]; i++)
        for (int lang = SPEECH_ZH; lang <= SPEECH_EN; lang++) {
            assert_int_equal(speech_say(longest[i].type, longest[i].text,
                                        (enum speech_lang)lang, &sp, &err),
                             0);
            assert_true(sp.n <= SPEECH_MAX_NAMES);
            for (size_t k = 0; k < sp.n; k++)
                assert_non_null(sp.names[k]);
        }
}

/* Every name the rules produce has a recording in the pack the build made
 * with conf/prompts/make-prompt-pack.sh, in both languages. */
static void check_in_pack(int type, const char *text, int *checked)
{
    char path[512];
    struct speech sp;
    struct rpc_error err;

    for (int lang = SPEECH_ZH; lang <= SPEECH_EN; lang++) {
        if (speech_say(type, text, (enum speech_lang)lang, &sp, &err) != 0)
            fail_msg("type %d \"%s\" refused: %s", type, text, err.message);
        for (size_t k = 0; k < sp.n; k++) {
            snprintf(path, sizeof path, "%s/%s/%s.wav", TEST_PACK_DIR,
                     speech_lang_dir((enum speech_lang)lang), sp.names[k]);
            if (access(path, R_OK) != 0)
                fail_msg("type %d \"%s\": no %s", type, text, path);
            (*checked)++;
        }
    }
}

static void test_pack_complete(void **state)
{
    (void)state;
    char text[64];
    int checked = 0;

    if (access(TEST_PACK_DIR "/zh", R_OK) != 0)
        skip(); /* no espeak-ng or sox at build time */
    check_in_pack(1, "0123456789*#", &checked);
    for (int i = 0; i <= 120; i++) {
        snprintf(text, sizeof text, "-%d.%d", i, i % 10);
        check_in_pack(2, text, &checked);
        snprintf(text, sizeof text, "%d.%02d", i, i % 100);
        check_in_pack(3, text, &checked);
        snprintf(text, sizeof text, "%02d:%02d:%02d", i % 100, i % 60, i % 3);
        check_in_pack(5, text, &checked);
    }
    check_in_pack(2, "123456789012", &checked);
    check_in_pack(2, "1001001001", &checked);
    check_in_pack(3, "0", &checked);
    check_in_pack(5, "00:00", &checked);
    for (int m = 1; m <= 12; m++)
        for (int d = 1; d <= 31; d++) {
            snprintf(text, sizeof text, "%d-%d-%d %d:%d:%d",
                     1900 + 5 * d, m, d <= 28 ? d : 28, d % 24, d % 12, d % 3);
            check_in_pack(4, text, &checked);
            snprintf(text, sizeof text, "2024-%d-%d", m, d <= 29 ? d : 29);
            check_in_pack(4, text, &checked);
        }
    for (int d = 29; d <= 31; d++) {
        snprintf(text, sizeof text, "2024-12-%d", d);
        check_in_pack(4, text, &checked);
    }
    check_in_pack(4, "2000-01", &checked);
    assert_true(checked > 1000);
}

/* ---- issue 12: 两, 整, 幺, money as 元 (type 3) and in 元角分 (type 6) ---- */

static void assert_zh_opts(int type, const char *text, const char *options,
                           const char *expected)
{
    struct speech_opts o;
    struct speech sp;
    struct rpc_error err;
    char got[1024] = "";

    if (speech_read_options(options, &o, &err) != 0)
        fail_msg("options \"%s\" refused: %s", options, err.message);
    if (speech_say_opts(type, text, &o, &sp, &err) != 0)
        fail_msg("type %d \"%s\" refused: %s", type, text, err.message);
    for (size_t i = 0; i < sp.n; i++) {
        const char *w = sp.names[i];

        for (size_t k = 0; o.lang == SPEECH_ZH &&
                           k < sizeof zh_words / sizeof zh_words[0]; k++)
            if (strcmp(zh_words[k].name, sp.names[i]) == 0)
                w = zh_words[k].text;
        if (o.lang == SPEECH_EN && i > 0)
            strncat(got, " ", sizeof got - strlen(got) - 1);
        strncat(got, w, sizeof got - strlen(got) - 1);
    }
    if (strcmp(got, expected) != 0)
        fail_msg("type %d \"%s\" [%s]: got %s, expected %s", type, text,
                 options, got, expected);
}

static void test_liang_numbers(void **state)
{
    (void)state;
    const struct {
        const char *text, *reading;
    } cases[] = {
        {"2", "二"}, {"20", "二十"}, {"12", "十二"}, {"22", "二十二"},
        {"200", "两百"}, {"2000", "两千"}, {"20000", "两万"},
        {"200000000", "两亿"}, {"200000000000", "两千亿"},
        {"2200", "两千两百"}, {"1200", "一千两百"}, {"12000", "一万两千"},
        {"120000", "十二万"}, {"102", "一百零二"}, {"1020000", "一百零二万"},
        {"100020000", "一亿零两万"}, {"20002", "两万零二"},
        {"2.5", "二点五"}, {"0.2", "零点二"}, {"-2", "负二"},
        {"222222222222",
         "两千两百二十二亿两千两百二十二万两千两百二十二"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_zh(2, cases[i].text, cases[i].reading);
    /* Digit strings keep 二. */
    assert_zh(1, "2", "二");
    assert_zh(1, "1222", "一二二二");
}

static void test_liang_times(void **state)
{
    (void)state;
    const struct {
        int type;
        const char *text, *reading;
    } cases[] = {
        {4, "02:00", "两点整"}, {4, "2:00:00", "两点整"},
        {4, "02:00:05", "两点零分五秒"}, {4, "02:02", "两点二分"},
        {4, "1:00", "一点整"}, {4, "12:00", "十二点整"},
        {4, "12:30:00", "十二点三十分"}, {4, "23:00:00", "二十三点整"},
        {4, "22:22:22", "二十二点二十二分二十二秒"},
        {4, "22:02", "二十二点二分"}, {4, "12:30:05", "十二点三十分五秒"},
        {4, "01:00", "一点整"},
        {4, "2025-02-02 02:30", "二零二五年二月二日两点三十分"},
        {4, "2024-02-02 00:00:00", "二零二四年二月二日零点整"},
        {4, "2022-02", "二零二二年二月"},
        {5, "02:02:02", "两小时两分钟两秒"}, {5, "00:02", "两分钟"},
        {5, "02:00:00", "两小时"}, {5, "12:00:00", "十二小时"},
        {5, "22:00", "二十二小时"}, {5, "00:00:22", "二十二秒"},
        {5, "01:00:00", "一小时"}, {5, "20:20:20", "二十小时二十分钟二十秒"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_zh(cases[i].type, cases[i].text, cases[i].reading);
}

static void test_money_yuan(void **state)
{
    (void)state;
    const struct {
        int type;
        const char *text, *reading;
    } cases[] = {
        {3, "1086.3", "一千零八十六点三元"}, {3, "1086.30", "一千零八十六点三元"},
        {3, "1086.35", "一千零八十六点三五元"}, {3, "10.00", "十元"},
        {3, "10", "十元"}, {3, "2", "两元"}, {3, "2.00", "两元"},
        {3, "2.5", "二点五元"}, {3, "0.05", "零点零五元"},
        {3, "0.50", "零点五元"}, {3, "0", "零元"}, {3, "0.00", "零元"},
        {3, "200", "两百元"}, {3, "12", "十二元"}, {3, "007.10", "七点一元"},
        {3, "20", "二十元"}, {3, "20000", "两万元"},
        {6, "1086.3", "一千零八十六元三角"}, {6, "0.05", "五分"},
        {6, "10.00", "十元"}, {6, "1.5", "一元五角"}, {6, "0.5", "五角"},
        {6, "2", "两元"}, {6, "2.22", "两元两角两分"},
        {6, "12.02", "十二元零两分"}, {6, "0.20", "两角"},
        {6, "222", "两百二十二元"}, {3, "1.5", "一点五元"},
        {3, "1086.05", "一千零八十六点零五元"}, {6, "1086.35",
                                                 "一千零八十六元三角五分"},
        {6, "1086.05", "一千零八十六元零五分"}, {3, "0.5", "零点五元"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_zh(cases[i].type, cases[i].text, cases[i].reading);
    assert_refused(3, "1.234", "type 3: more than 2 decimals");
    assert_refused(6, "1.234", "type 6: more than 2 decimals");
    assert_refused(6, "0.001", "type 6: more than 2 decimals");
    const char *nan = "type %d: not an unsigned number (digits, optionally "
                      "'.' and decimals)";
    const char *bad[] = {"-5", "", "5元", "1e3", "+1", " 1", "1."};
    char msg[128];
    for (int t = 3; t <= 6; t += 3)
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            snprintf(msg, sizeof msg, nan, t);
            assert_refused(t, bad[i], msg);
        }
    assert_en(3, "1086.30", "digit_1 thousand n_80 digit_6 point digit_3 "
                            "yuan");
    assert_en(3, "10.00", "n_10 yuan");
    assert_en(3, "0.05", "digit_0 point digit_0 digit_5 yuan");
    assert_en(6, "1086.3", "digit_1 thousand n_80 digit_6 yuan and n_30 "
                           "cents");
    assert_en(6, "0.05", "digit_5 cents");
}

static void test_yao(void **state)
{
    (void)state;
    assert_zh_opts(1, "110", "yao=1", "幺幺零");
    assert_zh_opts(1, "12315", "yao=1", "幺二三幺五");
    assert_zh_opts(1, "12315", " lang=zh ; yao=1 ", "幺二三幺五");
    assert_zh_opts(1, "12315", "yao=1,lang=zh", "幺二三幺五");
    assert_zh_opts(1, "110", "yao=0", "一一零");
    assert_zh_opts(1, "110", "yao=1;yao=0", "一一零");
    assert_zh_opts(1, "110", "", "一一零");
    /* Only type 1 in Mandarin: a number and English are as without. */
    assert_zh_opts(2, "11", "yao=1", "十一");
    assert_zh_opts(1, "11", "yao=1;lang=en", "digit_1 digit_1");

    struct speech_opts o;
    struct rpc_error err;
    const char *bad[] = {"yao=2", "yao=", "yao=yes", "lang=zh;yao=11",
                         "yao=-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(speech_read_options(bad[i], &o, &err), -1);
        assert_int_equal(err.code, RPC_INVALID_PARAMS);
        assert_string_equal(err.message, "options: yao must be 0 or 1");
    }
    /* The older entry point still reads the language alone. */
    enum speech_lang lang;
    assert_int_equal(speech_options("yao=1;lang=en", &lang, &err), 0);
    assert_int_equal(lang, SPEECH_EN);
    assert_int_equal(speech_options("yao=x", &lang, &err), -1);
}

static void test_bounds_money(void **state)
{
    (void)state;
    struct speech sp;
    struct rpc_error err;
    const char *longest[] = {"999999999999.99", "222222222222.22",
                             "101010101010.01"};
    for (size_t i = 0; i < sizeof longest / sizeof longest[0]; i++)
        for (int t = 3; t <= 6; t += 3)
            for (int lang = SPEECH_ZH; lang <= SPEECH_EN; lang++) {
                assert_int_equal(speech_say(t, longest[i],
                                            (enum speech_lang)lang, &sp,
                                            &err), 0);
                assert_true(sp.n <= SPEECH_MAX_NAMES);
            }
}

/* test_pack_complete's inputs for the new readings: every name they use
 * is in the pack, yao's too. */
static void test_pack_complete_new(void **state)
{
    (void)state;
    char text[64];
    int checked = 0;

    if (access(TEST_PACK_DIR "/zh", R_OK) != 0)
        skip();
    for (int i = 0; i <= 120; i++) {
        snprintf(text, sizeof text, "%d.%02d", i * 2, i % 100);
        check_in_pack(6, text, &checked);
        check_in_pack(3, text, &checked);
        snprintf(text, sizeof text, "%d", i * 2000);
        check_in_pack(2, text, &checked);
    }
    for (int h = 0; h < 24; h++) {
        snprintf(text, sizeof text, "%02d:00", h);
        check_in_pack(4, text, &checked);
        snprintf(text, sizeof text, "%02d:02:%02d", h, h % 3);
        check_in_pack(5, text, &checked);
    }
    check_in_pack(2, "222222222222", &checked);

    struct speech_opts o;
    struct speech sp;
    struct rpc_error err;
    char path[512];
    assert_int_equal(speech_read_options("yao=1", &o, &err), 0);
    assert_int_equal(speech_say_opts(1, "0123456789*#", &o, &sp, &err), 0);
    for (size_t k = 0; k < sp.n; k++) {
        snprintf(path, sizeof path, "%s/zh/%s.wav", TEST_PACK_DIR,
                 sp.names[k]);
        if (access(path, R_OK) != 0)
            fail_msg("yao: no %s", path);
        checked++;
    }
    assert_true(checked > 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digits),
        cmocka_unit_test(test_number_zh),
        cmocka_unit_test(test_number_refused),
        cmocka_unit_test(test_money_zh),
        cmocka_unit_test(test_datetime_zh),
        cmocka_unit_test(test_datetime_refused),
        cmocka_unit_test(test_duration_zh),
        cmocka_unit_test(test_english),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_not_spoken),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_pack_complete),
        cmocka_unit_test(test_liang_numbers),
        cmocka_unit_test(test_liang_times),
        cmocka_unit_test(test_money_yuan),
        cmocka_unit_test(test_yao),
        cmocka_unit_test(test_bounds_money),
        cmocka_unit_test(test_pack_complete_new),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
