/* speech: the spoken play_content types 1-5 (contract §5) turned into the
 * prompt names of a language's prompt pack. Pure: no I/O, no allocation. */
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

/* True for the types this module speaks (1-5). */
int speech_is_spoken(int type);

/* Reads an item's options string: key=value pairs separated by ';' or ',',
 * blanks around them ignored, unknown keys ignored. lang=zh (the default)
 * or lang=en; any other language is -32602 ("options: ..."). */
int speech_options(const char *options, enum speech_lang *lang,
                   struct rpc_error *err);

/* "zh" or "en": the pack's directory under the prompt directory. */
const char *speech_lang_dir(enum speech_lang lang);

/* Validates text as an item of a spoken type and fills out with what to
 * play. Invalid text is -32602 with a message like "type 4: month 13 out of
 * range"; the caller adds which item it was. */
int speech_say(int type, const char *text, enum speech_lang lang,
               struct speech *out, struct rpc_error *err);

#endif
