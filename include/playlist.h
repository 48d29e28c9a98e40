/* playlist: play_content of contract §5 turned into typed items. */
#ifndef CTID_PLAYLIST_H
#define CTID_PLAYLIST_H

#include <jansson.h>
#include <stddef.h>

#include "rpc.h"

#define PLAYLIST_MAX_ITEMS 30

enum play_type {
    PLAY_FILE = 0,      /* one file name */
    PLAY_DIGITS = 1,    /* spoken types 1-6: see speech.h */
    PLAY_NUMBER = 2,
    PLAY_MONEY = 3,
    PLAY_DATETIME = 4,
    PLAY_DURATION = 5,
    PLAY_MONEY_UNITS = 6, /* money read in 元角分 */
    PLAY_FILES = 7,     /* file names joined by '|' */
    PLAY_TTS = 10,      /* text to speech: see tts.h */
};

struct play_item {
    int type;
    char *content;  /* owned */
    char *options;  /* owned; "" when not given */
};

struct playlist {
    struct play_item items[PLAYLIST_MAX_ITEMS];
    size_t n;       /* items kept; type < 0 items are skipped, not kept */
};

/* Accepts a string (one file) or an array of up to 30 items, each
 * [content, type, options] with type and options optional. Types 0, 7,
 * the spoken 1-6 (text and options checked by speech_) and 10 (text
 * checked by tts_, options by speech_) are kept, < 0 skipped, any other
 * refused with -32602 naming the item. An empty result is refused too.
 * Lenient as the original: type may be a string of digits or an integral
 * real (jnum_int), and the content of types 1, 2, 3 and 6 a JSON number,
 * kept as its decimal text (jnum_text: 1086.3 -> "1086.3"). Returns 0 or
 * -1 with err; on -1 pl is empty. */
int playlist_parse(json_t *play_content, struct playlist *pl,
                   struct rpc_error *err);
void playlist_free(struct playlist *pl);

#endif
