/* call_int: what call.c and call_keys.c share inside the call module (the
 * keys flow of issue 14 lives in call_keys.c). Main thread only. */
#ifndef CTID_CALL_INT_H
#define CTID_CALL_INT_H

#include <event2/util.h>

#include "call.h"

/* Sends c's on_progress when it asked for progress (env->progress). */
void call_progress(struct call *c, const char *state, char key);
/* On answer: starts hearing keys when the answer has telephone-event or
 * the keys are in-band (ops.media_keys). */
void call_keys_listen(struct call *c);
/* A key from SIP INFO or from media: CALL_IN_KEY. May free c. */
void call_key(struct call *c, char key);
/* CALL_ACT_KEYS: feeds input to the keys rules and does what they say:
 * stop the prompt, arm the wait, play `then`, hang up. May free c. */
void call_keys_step(struct call *c, enum call_input input);
/* The keys_timer's callback: CALL_IN_KEYS_TIMEOUT. */
void call_keys_timeout(evutil_socket_t fd, short what, void *arg);

#endif
