/* Unit tests of playlist: play_content of contract §5. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "playlist.h"
#include "tts.h"
#include "testutil.h"

/* v must be refused with exactly message; v stays the caller's. */
static void assert_refused_json(json_t *v, const char *message)
{
    struct playlist pl;
    struct rpc_error err;
    assert_int_equal(playlist_parse(v, &pl, &err), -1);
    assert_int_equal(err.code, RPC_INVALID_PARAMS);
    assert_string_equal(err.message, message);
    assert_int_equal(pl.n, 0);
}

static void assert_refused(const char *text, const char *message)
{
    json_t *v = tu_json(text);
    assert_refused_json(v, message);
    json_decref(v);
}

static void assert_item(const struct play_item *it, int type,
                        const char *content, const char *options)
{
    assert_int_equal(it->type, type);
    assert_string_equal(it->content, content);
    assert_string_equal(it->options, options);
}

static void test_string(void **state)
{
    (void)state;
    json_t *v = tu_json("\"notice/welcome.wav\"");
    struct playlist pl;
    struct rpc_error err;
    assert_int_equal(playlist_parse(v, &pl, &err), 0);
    assert_int_equal(pl.n, 1);
    assert_item(&pl.items[0], PLAY_FILE, "notice/welcome.wav", "");
    playlist_free(&pl);
    assert_int_equal(pl.n, 0);
    json_decref(v);
}

static void test_array(void **state)
{
    (void)state;
    json_t *v = tu_json("[[\"a.wav\"], [\"b.wav\", 0], [\"skip\", -1, \"x\"],"
                        " [\"c.wav|d/e.wav\", 7, \"opt\"],"
                        " [\"f.wav\", null, null], [\"/abs\", -5]]");
    struct playlist pl;
    struct rpc_error err;
    assert_int_equal(playlist_parse(v, &pl, &err), 0);
    assert_int_equal(pl.n, 4);
    assert_item(&pl.items[0], PLAY_FILE, "a.wav", "");
    assert_item(&pl.items[1], PLAY_FILE, "b.wav", "");
    assert_item(&pl.items[2], PLAY_FILES, "c.wav|d/e.wav", "opt");
    assert_item(&pl.items[3], PLAY_FILE, "f.wav", "");
    playlist_free(&pl);
    json_decref(v);
}

static void test_unsupported_types(void **state)
{
    (void)state;
    const int types[] = {8, 9, 11, 1000};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char text[64], message[128];
        snprintf(text, sizeof text, "[[\"a.wav\"], [\"123\", %d]]", types[i]);
        snprintf(message, sizeof message, "invalid params: play_content[1]: "
                 "type %d is not supported", types[i]);
        assert_refused(text, message);
    }
    assert_refused("[[\"a\", 4294967296]]",
                   "invalid params: play_content[0]: type 4294967296 is not "
                   "supported");
    assert_refused("[[\"a\", 4294967297]]",
                   "invalid params: play_content[0]: type 4294967297 is not "
                   "supported");
}

/* Types 1-5 are kept with their text and options; a file list may mix
 * them with files, and type < 0 items are dropped. */
static void test_spoken(void **state)
{
    (void)state;
    json_t *v = tu_json("[[\"intro.wav\"], [\"4815\", 1], [\"skip\", -1],"
                        " [\"1086.30\", 2, \"lang=en\"], [\"0.05\", 3],"
                        " [\"2024-02-29 00:00\", 4, \"x=1;lang=zh\"],"
                        " [\"99:99\", 5], [\"a.wav|b.wav\", 7]]");
    struct playlist pl;
    struct rpc_error err;
    assert_int_equal(playlist_parse(v, &pl, &err), 0);
    assert_int_equal(pl.n, 7);
    assert_item(&pl.items[0], PLAY_FILE, "intro.wav", "");
    assert_item(&pl.items[1], PLAY_DIGITS, "4815", "");
    assert_item(&pl.items[2], PLAY_NUMBER, "1086.30", "lang=en");
    assert_item(&pl.items[3], PLAY_MONEY, "0.05", "");
    assert_item(&pl.items[4], PLAY_DATETIME, "2024-02-29 00:00", "x=1;lang=zh");
    assert_item(&pl.items[5], PLAY_DURATION, "99:99", "");
    assert_item(&pl.items[6], PLAY_FILES, "a.wav|b.wav", "");
    playlist_free(&pl);
    json_decref(v);
}

/* Bad spoken text is refused at construct, naming the item and why. */
static void test_spoken_refused(void **state)
{
    (void)state;
    assert_refused("[[\"a\"], [\"b\"], [\"2024-13-01\", 4]]",
                   "invalid params: play_content[2]: type 4: month 13 out of "
                   "range");
    assert_refused("[[\"48a5\", 1]]", "invalid params: play_content[0]: "
                   "type 1: 'a' is not a digit, * or #");
    assert_refused("[[\"a.wav\"], [\"2023-02-29\", 4]]",
                   "invalid params: play_content[1]: type 4: day 29 out of "
                   "range for 2023-02");
    assert_refused("[[\"99:99\", 4]]", "invalid params: play_content[0]: "
                   "type 4: hour 99 out of range");
    assert_refused("[[\"100:00\", 5]]", "invalid params: play_content[0]: "
                   "type 5: field 100 over 99");
    assert_refused("[[\"\", 2]]", "invalid params: play_content[0]: "
                   "content must be a non-empty string");
    assert_refused("[[\"1.234\", 3]]", "invalid params: play_content[0]: "
                   "type 3: more than 2 decimals");
    assert_refused("[[\"12\", 1, \"lang=fr\"]]", "invalid params: "
                   "play_content[0]: options: unknown language \"fr\" "
                   "(zh or en)");
    /* A NUL would hide the rest of the text from the rules. */
    json_t *s = json_stringn("12\0x", 4);
    json_t *v = json_pack("[[O,i]]", s, 1);
    assert_refused_json(v, "invalid params: play_content[0]: type 1: NUL in "
                           "text");
    json_decref(v);
    json_decref(s);
}

static void test_empty(void **state)
{
    (void)state;
    assert_refused("[]", "invalid params: play_content: nothing to play");
    assert_refused("[[\"a\", -1], [\"b\", -2]]",
                   "invalid params: play_content: nothing to play");
}

static void test_item_count(void **state)
{
    (void)state;
    json_t *v = json_array();
    for (int i = 0; i < PLAYLIST_MAX_ITEMS; i++)
        json_array_append_new(v, json_pack("[s]", "a.wav"));
    struct playlist pl;
    struct rpc_error err;
    assert_int_equal(playlist_parse(v, &pl, &err), 0);
    assert_int_equal(pl.n, PLAYLIST_MAX_ITEMS);
    playlist_free(&pl);

    /* Skipped items count too: the limit is on what the client sends. */
    json_array_append_new(v, json_pack("[s,i]", "a.wav", -1));
    assert_refused_json(v, "invalid params: play_content: more than 30 "
                           "items");
    json_decref(v);
}

static void test_bad_shapes(void **state)
{
    (void)state;
    const char *shape = "invalid params: play_content[0]: must be [content, "
                        "type, options]";
    assert_refused("[[]]", shape);
    assert_refused("[\"a.wav\"]", shape);
    assert_refused("[{\"content\":\"a\"}]", shape);
    assert_refused("[[\"a\", 0, \"\", \"x\"]]", shape);
    assert_refused("[[\"a\", \"x\"]]",
                   "invalid params: play_content[0]: type must be an integer");
    assert_refused("[[\"a\", 1.5]]",
                   "invalid params: play_content[0]: type must be an integer");
    assert_refused("[[\"a\", true]]",
                   "invalid params: play_content[0]: type must be an integer");
    assert_refused("[[\"a\", 0, 5]]",
                   "invalid params: play_content[0]: options must be a "
                   "string");
    const char *wrong = "invalid params: play_content: must be a string or "
                        "an array";
    assert_refused("5", wrong);
    assert_refused("null", wrong);
    assert_refused("{}", wrong);
    assert_refused("true", wrong);
}

static void test_bad_content(void **state)
{
    (void)state;
    assert_refused("\"\"", "invalid params: play_content: content must be a "
                           "non-empty string");
    assert_refused("[[\"\"]]", "invalid params: play_content[0]: content must "
                               "be a non-empty string");
    assert_refused("[[\"a\"], [5]]", "invalid params: play_content[1]: content "
                                     "must be a non-empty string");
    assert_refused("[[null, 7]]", "invalid params: play_content[0]: content "
                                  "must be a non-empty string");
    assert_refused("[[\"\", 7]]", "invalid params: play_content[0]: content "
                                  "must be a non-empty string");
}

static void test_bad_names(void **state)
{
    (void)state;
    const char *bad[] = {
        "/a/../etc/passwd", "..", "../x", "a/../../x", "a/..", "a/../b",
        "a\nb", "a\rb", "a\tb", "a\x7f", "x\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *s = json_string(bad[i]);
        assert_refused_json(s, "invalid params: play_content: invalid file "
                               "name");
        json_t *item = json_pack("[[s],[O,i]]", "ok.wav", s, 0);
        assert_refused_json(item, "invalid params: play_content[1]: invalid "
                                  "file name");
        json_decref(item);
        json_decref(s);
    }

    /* A NUL would cut the name short of what was checked. */
    json_t *s = json_stringn("a.wav\0../../x", 13);
    assert_refused_json(s, "invalid params: play_content: invalid file name");
    json_decref(s);
}

static void test_good_names(void **state)
{
    (void)state;
    /* Absolute names pass here: prompt_roots is the prompt cache's rule. */
    const char *good[] = {"a/b.wav", "..a", "a..", "./a", "a/.../b", "a b.wav",
                          "\xe9\x80\x9a\xe7\x9f\xa5.wav", "/etc/passwd",
                          "/data/prd/p/0/x.wav"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        json_t *s = json_string(good[i]);
        struct playlist pl;
        struct rpc_error err;
        if (playlist_parse(s, &pl, &err) != 0)
            fail_msg("\"%s\" refused: %s", good[i], err.message);
        assert_string_equal(pl.items[0].content, good[i]);
        playlist_free(&pl);
        json_decref(s);
    }
}

static void test_type7_parts(void **state)
{
    (void)state;
    const char *msg = "invalid params: play_content[0]: invalid file name";
    assert_refused("[[\"a||b\", 7]]", msg);
    assert_refused("[[\"|a\", 7]]", msg);
    assert_refused("[[\"a|\", 7]]", msg);
    assert_refused("[[\"|\", 7]]", msg);
    assert_refused("[[\"a|/x/../b\", 7]]", msg); /* "/b": prompt_roots' */
    assert_refused("[[\"a|../b\", 7]]", msg);
    assert_refused("[[\"a|b/..\", 7]]", msg);
    /* Type 0 takes '|' literally: one file with a bar in its name. */
    json_t *v = tu_json("[[\"a|b|c\", 7], [\"x|y\", 0]]");
    struct playlist pl;
    struct rpc_error err;
    assert_int_equal(playlist_parse(v, &pl, &err), 0);
    assert_int_equal(pl.n, 2);
    assert_item(&pl.items[0], PLAY_FILES, "a|b|c", "");
    assert_item(&pl.items[1], PLAY_FILE, "x|y", "");
    playlist_free(&pl);
    json_decref(v);
}

/* Type 10 keeps its text as given (blanks, punctuation, any script) and
 * its options; nothing is synthesised here. */
static void test_tts(void **state)
{
    (void)state;
    json_t *v = tu_json("[[\"您的包裹已到\", 10], [\" Your parcel, order 42. \", 10,"
                        " \"lang=en\"], [\"a.wav\"], [\"x\", 10, \"x=1; lang=zh\"]]");
    struct playlist pl;
    struct rpc_error err;
    assert_int_equal(playlist_parse(v, &pl, &err), 0);
    assert_int_equal(pl.n, 4);
    assert_item(&pl.items[0], PLAY_TTS, "您的包裹已到", "");
    assert_item(&pl.items[1], PLAY_TTS, " Your parcel, order 42. ", "lang=en");
    assert_item(&pl.items[2], PLAY_FILE, "a.wav", "");
    assert_item(&pl.items[3], PLAY_TTS, "x", "x=1; lang=zh");
    playlist_free(&pl);
    json_decref(v);

    /* exactly TTS_MAX_TEXT bytes is fine, one more is not */
    char text[TTS_MAX_TEXT + 2];
    memset(text, 'a', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    v = json_pack("[[s, i]]", text, 10);
    assert_refused_json(v, "invalid params: play_content[0]: type 10: text "
                        "longer than 1000 bytes");
    json_decref(v);
    text[TTS_MAX_TEXT] = '\0';
    v = json_pack("[[s, i]]", text, 10);
    assert_int_equal(playlist_parse(v, &pl, &err), 0);
    assert_int_equal(strlen(pl.items[0].content), TTS_MAX_TEXT);
    playlist_free(&pl);
    json_decref(v);
}

static void test_tts_refused(void **state)
{
    (void)state;
    assert_refused("[[\"a.wav\"], [\"hello\", 10, \"lang=fr\"]]",
                   "invalid params: play_content[1]: options: unknown "
                   "language \"fr\" (zh or en)");
    assert_refused("[[\"\", 10]]", "invalid params: play_content[0]: "
                   "content must be a non-empty string");
    assert_refused("[[\"   \", 10]]", "invalid params: play_content[0]: "
                   "type 10: nothing to say");
    assert_refused("[[\"line\\none\", 10]]", "invalid params: "
                   "play_content[0]: type 10: control character at byte 4");
    assert_refused("[[\"tab\\t\", 10]]", "invalid params: "
                   "play_content[0]: type 10: control character at byte 3");
    /* 0x01 starts an espeak-ng embedded command: never passed on */
    assert_refused("[[\"\\u00015S loud\", 10]]", "invalid params: "
                   "play_content[0]: type 10: control character at byte 0");
    assert_refused("[[\"del\\u007f\", 10]]", "invalid params: "
                   "play_content[0]: type 10: control character at byte 3");
    assert_refused("[[\"c1\\u0085\", 10]]", "invalid params: "
                   "play_content[0]: type 10: control character at byte 2");
    json_t *v = json_pack("[[o, i]]", json_stringn("nul\0x", 5), 10);
    assert_refused_json(v, "invalid params: play_content[0]: type 10: NUL in "
                        "text");
    json_decref(v);
    assert_refused("[[42, 10]]", "invalid params: play_content[0]: content "
                   "must be a non-empty string");
}

/* A refusal after good items leaves nothing allocated (ASan checks). */
static void test_refusal_frees(void **state)
{
    (void)state;
    assert_refused("[[\"a.wav\"], [\"b.wav\", 7, \"o\"], [\"../c\"]]",
                   "invalid params: play_content[2]: invalid file name");
}

/* ---- issue 12: a string type, a number as content ---- */

/* text must be accepted as one item of type with content. */
static void assert_one(const char *text, int type, const char *content)
{
    json_t *v = tu_json(text);
    struct playlist pl;
    struct rpc_error err;
    if (playlist_parse(v, &pl, &err) != 0)
        fail_msg("%s refused: %s", text, err.message);
    assert_int_equal(pl.n, 1);
    if (pl.items[0].type != type || strcmp(pl.items[0].content, content))
        fail_msg("%s: got type %d \"%s\", expected %d \"%s\"", text,
                 pl.items[0].type, pl.items[0].content, type, content);
    playlist_free(&pl);
    json_decref(v);
}

static void test_string_type(void **state)
{
    (void)state;
    assert_one("[[\"a.wav\", \"0\"]]", PLAY_FILE, "a.wav");
    assert_one("[[\"a.wav\", \" 0 \"]]", PLAY_FILE, "a.wav");
    assert_one("[[\"a.wav\", \"+0\"]]", PLAY_FILE, "a.wav");
    assert_one("[[\"a.wav\", 0.0]]", PLAY_FILE, "a.wav");
    assert_one("[[\"a|b\", \"7\"]]", PLAY_FILES, "a|b");
    assert_one("[[\"a|b\", 7.0]]", PLAY_FILES, "a|b");
    assert_one("[[\"12\", \"2\"]]", PLAY_NUMBER, "12");
    assert_one("[[\"1.5\", \"6\"]]", PLAY_MONEY_UNITS, "1.5");
    assert_one("[[\"hi\", \"10\", \"lang=en\"]]", PLAY_TTS, "hi");
    /* A negative type skips the item as a number would. */
    assert_one("[[\"a.wav\", \"-1\"], [\"b.wav\", \"0\"]]", PLAY_FILE,
               "b.wav");
    const char *type = "invalid params: play_content[0]: type must be an "
                       "integer";
    const char *bad[] = {"\"\"", "\"x\"", "\"1.0\"", "\"0x7\"", "true",
                         "\"7 7\"", "1.5", "[0]", "{}"};
    char text[64];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "[[\"a.wav\", %s]]", bad[i]);
        assert_refused(text, type);
    }
    assert_refused("[[\"a\", \"8\"]]", "invalid params: play_content[0]: "
                                       "type 8 is not supported");
    assert_refused("[[\"a\", \"99999999999999999999\"]]",
                   "invalid params: play_content[0]: type is not supported");
    assert_refused("[[\"a\", 1e300]]",
                   "invalid params: play_content[0]: type is not supported");
}

static void test_numeric_content(void **state)
{
    (void)state;
    const struct {
        const char *text;
        int type;
        const char *content;
    } good[] = {
        {"[[1086.3, 3]]", PLAY_MONEY, "1086.3"},
        {"[[1086.30, 3]]", PLAY_MONEY, "1086.3"},
        {"[[10.00, 3]]", PLAY_MONEY, "10"},
        {"[[0.05, 6]]", PLAY_MONEY_UNITS, "0.05"},
        {"[[0.1, 2]]", PLAY_NUMBER, "0.1"},
        {"[[-2.5, 2]]", PLAY_NUMBER, "-2.5"},
        {"[[-0.0, 2]]", PLAY_NUMBER, "0"},
        {"[[25, 2]]", PLAY_NUMBER, "25"},
        {"[[-25, 2]]", PLAY_NUMBER, "-25"},
        {"[[0, 2]]", PLAY_NUMBER, "0"},
        {"[[1e3, 2]]", PLAY_NUMBER, "1000"},
        {"[[1.5e-3, 2]]", PLAY_NUMBER, "0.0015"},
        {"[[123456789012, 2]]", PLAY_NUMBER, "123456789012"},
        {"[[3.14159265, 2]]", PLAY_NUMBER, "3.14159265"},
        {"[[13800000000, 1]]", PLAY_DIGITS, "13800000000"},
        {"[[110, \"1\", \"yao=1\"]]", PLAY_DIGITS, "110"},
        {"[[1086.3, \"3\"]]", PLAY_MONEY, "1086.3"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_one(good[i].text, good[i].type, good[i].content);

    /* Numbers the spoken type cannot take are refused as their text. */
    assert_refused("[[1.5, 1]]", "invalid params: play_content[0]: type 1: "
                                 "'.' is not a digit, * or #");
    assert_refused("[[-5, 3]]", "invalid params: play_content[0]: type 3: "
                                "not an unsigned number (digits, optionally "
                                "'.' and decimals)");
    assert_refused("[[1.234, 6]]", "invalid params: play_content[0]: type 6: "
                                   "more than 2 decimals");
    assert_refused("[[1e20, 2]]", "invalid params: play_content[0]: type 2: "
                                  "more than 12 integer digits");
    assert_refused("[[1e-300, 2]]", "invalid params: play_content[0]: number "
                                    "too long");
    /* Other types want a string. */
    const char *str = "content must be a non-empty string";
    const char *other[] = {"[[5]]", "[[5, 0]]", "[[5, 7]]", "[[5, 10]]",
                           "[[5, 4]]", "[[5, 5]]", "[[true, 2]]",
                           "[[[1], 2]]"};
    char msg[128];
    snprintf(msg, sizeof msg, "invalid params: play_content[0]: %s", str);
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        assert_refused(other[i], msg);
}

static void test_type6_options(void **state)
{
    (void)state;
    assert_one("[[\"1.5\", 6, \"lang=en\"]]", PLAY_MONEY_UNITS, "1.5");
    assert_one("[[\"110\", 1, \"yao=1\"]]", PLAY_DIGITS, "110");
    assert_refused("[[\"110\", 1, \"yao=2\"]]", "invalid params: "
                   "play_content[0]: options: yao must be 0 or 1");
    assert_refused("[[\"1.234\", 6]]", "invalid params: play_content[0]: "
                   "type 6: more than 2 decimals");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_string),
        cmocka_unit_test(test_array),
        cmocka_unit_test(test_unsupported_types),
        cmocka_unit_test(test_spoken),
        cmocka_unit_test(test_spoken_refused),
        cmocka_unit_test(test_tts),
        cmocka_unit_test(test_tts_refused),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_item_count),
        cmocka_unit_test(test_bad_shapes),
        cmocka_unit_test(test_bad_content),
        cmocka_unit_test(test_bad_names),
        cmocka_unit_test(test_good_names),
        cmocka_unit_test(test_type7_parts),
        cmocka_unit_test(test_refusal_frees),
        cmocka_unit_test(test_string_type),
        cmocka_unit_test(test_numeric_content),
        cmocka_unit_test(test_type6_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
