/* speech: the spoken play_content types 1-6 (contract §5; 6, money in
 * 元角分, is ctid's) turned into the prompt names of a language's prompt
 * pack. Pure: no I/O, no allocation; any thread. */
#ifndef CTID_SPEECH_H
#define CTID_SPEECH_H

#include <stddef.h>

#include "rpc.h"

#define SPEECH_MAX_NAMES 96  /* prompts one item can need; bounds all types */
#define SPEECH_MAX_DIGITS 64 /* type 1 */

enum speech_lang {
    SPEECH_ZH, /* Mandarin, the default and the original's */
    SPEECH_EN,
};

/* What one item says: names like "digit_4" of the pack's recordings, which
 * live in <prompt_dir>/<speech_lang_dir(lang)>/<name>.wav. The names point
 * at constant strings. */
struct speech {
    const char *names[SPEECH_MAX_NAMES];
    size_t n;
};

/* What an item's options ask of its reading. */
struct speech_opts {
    enum speech_lang lang;
    int yao;  /* type 1 in Mandarin reads 1 as 幺 */
};

/* True for the types this module speaks (1-6). */
int speech_is_spoken(int type);

/* Reads an item's options string: key=value pairs separated by ';' or ',',
 * blanks around them ignored, unknown keys ignored. lang=zh (the default)
 * or lang=en; yao=0 (the default) or yao=1. Any other value of lang or
 * yao is -32602 ("options: ..."). */
int speech_read_options(const char *options, struct speech_opts *o,
                        struct rpc_error *err);
/* The same, for a caller that needs only the language (type 10). */
int speech_options(const char *options, enum speech_lang *lang,
                   struct rpc_error *err);

/* "zh" or "en": the pack's directory under the prompt directory. */
const char *speech_lang_dir(enum speech_lang lang);

/* Validates text as an item of a spoken type and fills out with what to
 * play. Invalid text is -32602 with a message like "type 4: month 13 out of
 * range"; the caller adds which item it was. */
int speech_say_opts(int type, const char *text, const struct speech_opts *o,
                    struct speech *out, struct rpc_error *err);
/* speech_say_opts with the default options of lang (no yao). */
int speech_say(int type, const char *text, enum speech_lang lang,
               struct speech *out, struct rpc_error *err);

#endif
