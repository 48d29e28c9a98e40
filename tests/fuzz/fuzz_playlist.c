/* fuzz_playlist: libFuzzer harness for play_content (playlist_parse) and,
 * through it, the checks of the spoken types 1-5 (speech_options,
 * speech_say) and of type 10 texts (tts_text_check; nothing is
 * synthesised). The input is loaded as JSON and, if it is JSON, parsed as
 * play_content; it is also wrapped whole as one JSON string (a file name,
 * jansson permitting NUL and any UTF-8 it accepts) and parsed as that.
 * An accepted list must satisfy playlist.h's promises, which the harness
 * checks. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "playlist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_playlist(json_t *v)
{
    struct playlist pl;
    struct rpc_error err;
    if (playlist_parse(v, &pl, &err) == 0) {
        if (pl.n == 0 || pl.n > PLAYLIST_MAX_ITEMS)
            abort();
        for (size_t i = 0; i < pl.n; i++)
            if (pl.items[i].content == NULL || pl.items[i].content[0] == '\0'
                || pl.items[i].options == NULL || pl.items[i].type < 0)
                abort();
    } else if (pl.n != 0 || err.code != RPC_INVALID_PARAMS) {
        abort();  /* on -1 the list is empty, and the error is -32602 */
    }
    playlist_free(&pl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *v = json_loadb((const char *)data, size,
                           JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (v != NULL) {
        fuzz_playlist(v);
        json_decref(v);
    }

    /* json_stringn refuses invalid UTF-8; that is the caller's JSON
     * parser's job anyway. */
    v = json_stringn((const char *)data, size);
    if (v != NULL) {
        fuzz_playlist(v);
        json_decref(v);
    }
    return 0;
}
