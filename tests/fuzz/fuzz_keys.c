/* fuzz_keys: libFuzzer harness for the keys state machine. The input is
 * a program: the first bytes are the rules (max, end key, stop_play,
 * wait_seconds, then), each following byte an input (a key, the prompt's
 * end, the wait's end, then's end) with keys drawn from every byte value.
 * It checks keys.h's promises after every step: the keys collected are
 * valid keys, at most max, never the end key, key_time set exactly when a
 * key is in and never changed after; PLAY_THEN only with a then and at
 * most once; HANG_UP at most once and nothing asked after it; STOP_PROMPT
 * at most once and only with stop_play. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    static const char ends[] = "\0#*0A";
    /* 20 keys (some twice), 12 that are not keys. */
    static const char table[33] = "0123456789*#ABCD#*01Ea !-?Zxyz.,";
    struct keys_rules r;
    keys_rules_default(&r);
    r.max = 1 + data[0] % KEYS_MAX;
    r.end = ends[data[1] % 5];
    r.stop_play = data[2] & 1;
    r.then = (data[2] >> 1) & 1;
    r.wait_seconds = data[3] % (KEYS_MAX_WAIT + 1);
    struct keys k;
    keys_start(&k, &r);

    int hung = 0, thens = 0, stops = 0;
    int64_t first = -1;
    for (size_t i = 4; i < size; i++) {
        struct keys_step s;
        uint8_t op = data[i];
        switch (op % 8) {
        case 5: s = keys_prompt_done(&k); break;
        case 6: s = keys_timeout(&k); break;
        case 7: s = keys_then_done(&k); break;
        default: s = keys_key(&k, table[op >> 3], (int64_t)i);
        }
        if (hung && s.actions != 0)
            abort();
        hung += (s.actions & KEYS_DO_HANG_UP) != 0;
        thens += (s.actions & KEYS_DO_PLAY_THEN) != 0;
        stops += (s.actions & KEYS_DO_STOP_PROMPT) != 0;
        if (hung > 1 || thens > 1 || stops > 1 || (thens && !r.then)
            || (stops && !r.stop_play))
            abort();

        const char *t = keys_text(&k);
        size_t n = strlen(t);
        if (n > r.max || (s.appended && n == 0))
            abort();
        for (size_t j = 0; j < n; j++)
            if (!keys_valid(t[j]) || (r.end != '\0' && t[j] == r.end))
                abort();
        int64_t kt = keys_first_time(&k);
        if ((n > 0) != (kt >= 0) || (first >= 0 && kt != first))
            abort();
        first = kt;
    }
    return 0;
}
