/* keyshook: CTID_TEST_KEYS=1, a test hook until issue 14's construct and
 * call wiring of keys is merged (src/keyshook.c says what it does). Owns
 * nothing; main thread. */
#ifndef CTID_KEYSHOOK_H
#define CTID_KEYSHOOK_H

#include <stdbool.h>

struct calls;
struct sip;
struct sip_event;
struct sip_invite;

/* CTID_TEST_KEYS is "1". */
bool keys_hook_enabled(void);
/* sip_invite with offer_te set. */
int keys_hook_invite(struct sip *s, const struct sip_invite *inv);
/* After the call table took ev: an ANSWERED with telephone-event makes
 * the call's stream listen (media_keys), each key logged. */
void keys_hook_answered(struct calls *t, const struct sip_event *ev);

#endif
