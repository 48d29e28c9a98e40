/* playlist: turns play_content (contract §5) into a list of typed items
 * and refuses, before anything is dialled, what cannot be played: unknown
 * or unimplemented types, file names that could leave the prompt
 * directory or corrupt a path, spoken items (types 1-6) whose text or
 * options speech_ refuses, and type 10 texts tts_ refuses. Takes what the
 * original's clients send: a type as a string ("0") and a number as the
 * content of types 1, 2, 3 and 6 ([1086.3, 3]), both read by jnum_. Owns
 * the strings of the items it keeps. */
#include "playlist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jnum.h"
#include "speech.h"
#include "tts.h"

/* A file name: no ".." component, no control characters (NUL, CR, LF,
 * ...). Relative names stay inside the prompt directory; absolute ones
 * are judged by the prompt cache against prompt_roots (issue 12). */
static int playlist_name_valid(const char *name, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return 0;
    for (size_t i = 0; i < len;) {
        size_t n = 0;
        while (i + n < len && name[i + n] != '/')
            n++;
        if (n == 2 && name[i] == '.' && name[i + 1] == '.')
            return 0;
        i += n + 1;
    }
    return 1;
}

/* Type 7: every '|'-separated part is a name on its own. */
static int playlist_names_valid(const char *names, size_t len)
{
    for (size_t i = 0; i <= len;) {
        const char *bar = memchr(names + i, '|', len - i);
        size_t n = bar ? (size_t)(bar - (names + i)) : len - i;
        if (!playlist_name_valid(names + i, n))
            return 0;
        i += n + 1;
    }
    return 1;
}

/* Types 1-6: the text must be speakable as the options ask, so a bad
 * date fails the construct rather than the call. */
static int playlist_speech_valid(int type, const char *s, size_t len,
                                 const char *options, struct rpc_error *err)
{
    struct speech_opts opts;
    struct speech sp;

    if (strlen(s) != len)
        return rpc_fail(err, RPC_INVALID_PARAMS, "type %d: NUL in text",
                        type);
    if (speech_read_options(options, &opts, err) < 0)
        return -1;
    return speech_say_opts(type, s, &opts, &sp, err);
}

/* Type 10: text espeak-ng may be given, in a language it is given in. */
static int playlist_tts_valid(const char *s, size_t len, const char *options,
                              struct rpc_error *err)
{
    enum speech_lang lang;

    if (strlen(s) != len)
        return rpc_fail(err, RPC_INVALID_PARAMS, "type 10: NUL in text");
    if (tts_text_check(s, len, err) < 0)
        return -1;
    return speech_options(options, &lang, err);
}

/* Types whose content may be a JSON number: its decimal text is read. */
static int playlist_numeric_ok(int type)
{
    return type == PLAY_DIGITS || type == PLAY_NUMBER || type == PLAY_MONEY
           || type == PLAY_MONEY_UNITS;
}

/* Keeps one item of a type already accepted; label names it in errors. */
static int playlist_add(struct playlist *pl, int type, json_t *content,
                        const char *options, const char *label,
                        struct rpc_error *err)
{
    char num[64];
    const char *s = json_string_value(content);
    size_t len = json_string_length(content);

    if (json_is_number(content) && playlist_numeric_ok(type)) {
        if (jnum_text(content, num, sizeof num) < 0)
            return rpc_fail(err, RPC_INVALID_PARAMS, "invalid params: %s: "
                            "number too long", label);
        s = num;
        len = strlen(num);
    } else if (!json_is_string(content) || len == 0) {
        return rpc_fail(err, RPC_INVALID_PARAMS, "invalid params: %s: content "
                        "must be a non-empty string", label);
    }
    if (speech_is_spoken(type) || type == PLAY_TTS) {
        if ((type == PLAY_TTS
                 ? playlist_tts_valid(s, len, options, err)
                 : playlist_speech_valid(type, s, len, options, err)) < 0) {
            struct rpc_error why = *err;
            return rpc_fail(err, RPC_INVALID_PARAMS, "invalid params: %s: %s",
                            label, why.message);
        }
    } else if (!(type == PLAY_FILES ? playlist_names_valid(s, len)
                                    : playlist_name_valid(s, len))) {
        return rpc_fail(err, RPC_INVALID_PARAMS, "invalid params: %s: invalid "
                        "file name", label);
    }

    struct play_item *it = &pl->items[pl->n];
    it->type = type;
    it->content = strdup(s);
    it->options = strdup(options);
    pl->n++;  /* counted even if half-allocated, so playlist_free sees it */
    if (it->content == NULL || it->options == NULL)
        return rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory");
    return 0;
}

/* One [content, type, options] item; type and options may be absent or
 * null; type may be a string of digits. Items of type < 0 are skipped
 * without looking at their content. */
static int playlist_parse_item(struct playlist *pl, json_t *item, size_t i,
                               struct rpc_error *err)
{
    char label[32];
    snprintf(label, sizeof label, "play_content[%zu]", i);

    size_t size = json_array_size(item);
    if (!json_is_array(item) || size == 0 || size > 3)
        return rpc_fail(err, RPC_INVALID_PARAMS, "invalid params: %s: must be "
                        "[content, type, options]", label);
    json_t *type = json_array_get(item, 1);
    json_t *options = json_array_get(item, 2);
    json_int_t t = 0;
    enum jnum_result r = type == NULL || json_is_null(type)
                             ? JNUM_OK : jnum_int(type, &t);
    if (r == JNUM_NOT_INT)
        return rpc_fail(err, RPC_INVALID_PARAMS, "invalid params: %s: type "
                        "must be an integer", label);
    if (options != NULL && !json_is_null(options) && !json_is_string(options))
        return rpc_fail(err, RPC_INVALID_PARAMS, "invalid params: %s: options "
                        "must be a string", label);

    if (r == JNUM_RANGE)
        return rpc_fail(err, RPC_INVALID_PARAMS, "invalid params: %s: type "
                        "is not supported", label);
    if (t < 0)
        return 0;
    if (t != PLAY_FILE && t != PLAY_FILES && t != PLAY_TTS &&
        !(t >= PLAY_DIGITS && t <= PLAY_MONEY_UNITS))
        return rpc_fail(err, RPC_INVALID_PARAMS, "invalid params: %s: type %"
                        JSON_INTEGER_FORMAT " is not supported", label, t);
    return playlist_add(pl, (int)t, json_array_get(item, 0),
                        json_is_string(options) ? json_string_value(options)
                                                : "",
                        label, err);
}

static int playlist_parse_array(json_t *play_content, struct playlist *pl,
                                struct rpc_error *err)
{
    if (json_array_size(play_content) > PLAYLIST_MAX_ITEMS)
        return rpc_fail(err, RPC_INVALID_PARAMS, "invalid params: "
                        "play_content: more than %d items",
                        PLAYLIST_MAX_ITEMS);
    size_t i;
    json_t *item;
    json_array_foreach(play_content, i, item)
        if (playlist_parse_item(pl, item, i, err) < 0)
            return -1;
    if (pl->n == 0)
        return rpc_fail(err, RPC_INVALID_PARAMS, "invalid params: "
                        "play_content: nothing to play");
    return 0;
}

int playlist_parse(json_t *play_content, struct playlist *pl,
                   struct rpc_error *err)
{
    memset(pl, 0, sizeof *pl);

    int rc;
    if (json_is_string(play_content))
        rc = playlist_add(pl, PLAY_FILE, play_content, "", "play_content",
                          err);
    else if (json_is_array(play_content))
        rc = playlist_parse_array(play_content, pl, err);
    else
        rc = rpc_fail(err, RPC_INVALID_PARAMS, "invalid params: "
                      "play_content: must be a string or an array");
    if (rc < 0)
        playlist_free(pl);
    return rc;
}

void playlist_free(struct playlist *pl)
{
    for (size_t i = 0; i < pl->n; i++) {
        free(pl->items[i].content);
        free(pl->items[i].options);
    }
    memset(pl, 0, sizeof *pl);
}
