/* call_keys: a call's keys flow (issue 14), apart from the state machine
 * in call.c: hearing keys on answer (ops.media_keys), feeding keys, the
 * end of the prompt and the wait timer to the pure rules of keys.c, and
 * doing what they say (ops.media_stop_play, the wait timer, `then` played
 * with ops.media_play, CALL_IN_KEYS_DONE to hang up); the progress events
 * and the play figures. Owns nothing: the timer and the `then` clips are
 * struct call's (call_free). Main thread only. */
#include "call_int.h"

#include <event2/event.h>
#include <time.h>

#include "clock.h"
#include "log.h"

void call_progress(struct call *c, const char *state, char key)
{
    if (c->progress && c->env->progress != NULL)
        c->env->progress(c->env->table, c, state, key);
}

void call_figures(const struct call *c, uint64_t *played_ms, unsigned *plays)
{
    *played_ms = c->played_ms;
    *plays = c->plays_done;
    if (!c->playing)
        return;
    /* Released while the prompt played: media's figures will not come;
     * the clock says how far it got. */
    uint64_t one = 0;
    for (size_t i = 0; i < c->n_clips; i++)
        one += (uint64_t)c->clips[i]->n_frames * 20;
    uint64_t ms = clock_mono_ms() - c->play_start_ms;
    if (ms > one * c->plays)
        ms = one * c->plays;
    *played_ms += ms;
    *plays += one ? (unsigned)(ms / one) : 0;
}

static void call_on_key(void *owner, char key)
{
    call_key(owner, key);
}

void call_keys_listen(struct call *c)
{
    struct keys_rules rules = c->keys.rules; /* keys_start clears c->keys */
    keys_start(&c->keys, &rules);
    if (c->te_payload_type < 0 && !c->inband) {
        log_info("%s: the answer has no telephone-event; keys by INFO only",
                 c->res_id);
        return;
    }
    if (c->env->ops.media_keys == NULL ||
        c->env->ops.media_keys(c->media, c->te_payload_type, c->inband,
                               c->payload_type, call_on_key) < 0)
        log_warn("%s: cannot hear keys on RTP; keys by INFO only",
                 c->res_id);
}

void call_key(struct call *c, char key)
{
    c->key_in = key;
    call_input(c, CALL_IN_KEY, 0, false);
}

void call_keys_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct call *c = arg;
    log_info("%s: no key within %us", c->res_id, c->keys.rules.wait_seconds);
    call_input(c, CALL_IN_KEYS_TIMEOUT, 0, true);
}

/* `then`, once, on the stream the prompt used (the prompt is off it). */
static void call_play_then(struct call *c)
{
    c->then_pending = false;
    log_info("%s: keys \"%s\"; playing then", c->res_id, keys_text(&c->keys));
    if (c->env->ops.media_play(c->media,
                               (const struct sockaddr *)&c->media_dest,
                               c->media_dest_len, c->payload_type, c->then,
                               c->n_then, 1) < 0) {
        log_warn("%s: cannot play then", c->res_id);
        call_input(c, CALL_IN_PLAY_ERROR, 0, true);
        return;
    }
    c->playing_then = true;
}

/* What the rules said, in keys.h's order. May free c. */
static void call_keys_do(struct call *c, unsigned actions)
{
    if ((actions & KEYS_DO_STOP_PROMPT) && c->playing &&
        c->env->ops.media_stop_play != NULL &&
        c->env->ops.media_stop_play(c->media) < 0)
        log_warn("%s: cannot stop the prompt", c->res_id);
    if (actions & KEYS_DO_ARM_WAIT) {
        struct timeval tv = {.tv_sec = c->keys.rules.wait_seconds};
        evtimer_add(c->keys_timer, &tv);
    }
    if (actions & (KEYS_DO_PLAY_THEN | KEYS_DO_HANG_UP))
        evtimer_del(c->keys_timer);
    if (actions & KEYS_DO_PLAY_THEN) {
        if (c->playing)
            c->then_pending = true; /* after the prompt's on_done */
        else
            call_play_then(c); /* may free c */
        return;
    }
    if (actions & KEYS_DO_HANG_UP)
        call_input(c, CALL_IN_KEYS_DONE, 0, true);
}

void call_keys_step(struct call *c, enum call_input input)
{
    struct keys_step st = {0};
    switch (input) {
    case CALL_IN_KEY:
        st = keys_key(&c->keys, c->key_in, (int64_t)time(NULL));
        if (st.appended || st.completed) {
            log_info("%s: key %c", c->res_id, c->key_in);
            call_progress(c, "key", c->key_in);
        }
        break;
    case CALL_IN_KEYS_TIMEOUT:
        st = keys_timeout(&c->keys);
        break;
    case CALL_IN_PLAY_DONE:
        if (c->keys.phase != KEYS_THEN)
            st = keys_prompt_done(&c->keys);
        else if (c->then_pending) {
            call_play_then(c); /* the stopped prompt is off the stream */
            return;            /* c may be gone */
        } else if (!c->playing_then)
            st = keys_then_done(&c->keys);
        break;
    default:
        break;
    }
    call_keys_do(c, st.actions);
}
