/* keys: owns the collection rules of construct's `keys` object (issue 14):
 *
 *  - a key is appended until `max` keys are in; the `end` key completes
 *    the collection without being appended (alone, it completes it
 *    empty);
 *  - with stop_play, the first key stops the prompt; without it the
 *    prompt plays on to its end whatever is pressed;
 *  - after the prompt (played out, or stopped by a key), the call waits
 *    wait_seconds for the next key, again after each key, and gives up
 *    when a wait runs out; wait_seconds 0 gives up at once;
 *  - when the collection is over (complete, or given up), `then` plays if
 *    it was given and any key came (a receipt has something to confirm),
 *    and the call hangs up after it; otherwise it hangs up at once. Keys
 *    that come after that are not collected.
 *
 * Pure: no clock, no timer. The caller passes the time of each key and
 * runs the one wait timer the actions ask for. */
#include "keys.h"

#include <string.h>

void keys_rules_default(struct keys_rules *r)
{
    memset(r, 0, sizeof *r);
    r->max = KEYS_DEFAULT_MAX;
    r->stop_play = true;
    r->wait_seconds = KEYS_DEFAULT_WAIT;
}

bool keys_valid(char key)
{
    return key != '\0' && strchr("0123456789*#ABCD", key) != NULL;
}

void keys_start(struct keys *k, const struct keys_rules *rules)
{
    memset(k, 0, sizeof *k);
    k->rules = *rules;
    if (k->rules.max < 1)
        k->rules.max = 1;
    if (k->rules.max > KEYS_MAX)
        k->rules.max = KEYS_MAX;
    if (k->rules.wait_seconds > KEYS_MAX_WAIT)
        k->rules.wait_seconds = KEYS_MAX_WAIT;
    k->phase = KEYS_PROMPT;
    k->key_time = -1;
}

/* The collection is over: `then` or hang up. */
static unsigned keys_finish(struct keys *k)
{
    if (k->rules.then && k->pressed) {
        k->phase = KEYS_THEN;
        return KEYS_DO_PLAY_THEN;
    }
    k->phase = KEYS_DONE;
    return KEYS_DO_HANG_UP;
}

/* After the prompt: wait for a key, or give up at once. */
static unsigned keys_wait(struct keys *k)
{
    if (k->rules.wait_seconds == 0)
        return keys_finish(k);
    k->phase = KEYS_WAITING;
    return KEYS_DO_ARM_WAIT;
}

struct keys_step keys_key(struct keys *k, char key, int64_t now)
{
    struct keys_step s = {0};
    if (!keys_valid(key) || k->complete
        || (k->phase != KEYS_PROMPT && k->phase != KEYS_WAITING))
        return s;

    k->pressed = true;
    if (k->rules.end != '\0' && key == k->rules.end) {
        k->complete = true;
    } else {
        k->text[k->n++] = key;
        k->text[k->n] = '\0';
        s.appended = true;
        if (k->key_time < 0)
            k->key_time = now;
        k->complete = k->n >= k->rules.max;
    }
    s.completed = k->complete;

    if (k->phase == KEYS_WAITING) {
        s.actions = k->complete ? keys_finish(k) : KEYS_DO_ARM_WAIT;
        return s;
    }
    /* The prompt is playing. */
    if (!k->rules.stop_play)
        return s;  /* it plays on; keys_prompt_done decides */
    s.actions = KEYS_DO_STOP_PROMPT;
    s.actions |= k->complete ? keys_finish(k) : keys_wait(k);
    return s;
}

struct keys_step keys_prompt_done(struct keys *k)
{
    struct keys_step s = {0};
    if (k->phase != KEYS_PROMPT)
        return s;
    s.actions = k->complete ? keys_finish(k) : keys_wait(k);
    return s;
}

struct keys_step keys_timeout(struct keys *k)
{
    struct keys_step s = {0};
    if (k->phase == KEYS_WAITING)
        s.actions = keys_finish(k);
    return s;
}

struct keys_step keys_then_done(struct keys *k)
{
    struct keys_step s = {0};
    if (k->phase == KEYS_THEN) {
        k->phase = KEYS_DONE;
        s.actions = KEYS_DO_HANG_UP;
    }
    return s;
}

const char *keys_text(const struct keys *k)
{
    return k->text;
}

int64_t keys_first_time(const struct keys *k)
{
    return k->key_time;
}
