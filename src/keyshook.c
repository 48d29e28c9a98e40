/* keyshook: a test hook standing in for issue 14's construct and call
 * wiring of keys (the "callkeys" side, merged separately), so the SIP and
 * media side can be shown end to end before that merge: with
 * CTID_TEST_KEYS=1 in the daemon's environment every INVITE offers
 * telephone-event, and every call answered with one listens for RFC 4733
 * keys on its RTP port, logging "RES_ID: key K (rfc4733)". Used by
 * tests/integration/test_keys_wire.py and bench/run's keys mode. Owns
 * nothing; main thread. Remove once construct's keys drive the same. */
#include "keyshook.h"

#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "calls.h"
#include "log.h"
#include "media.h"
#include "sip.h"

bool keys_hook_enabled(void)
{
    const char *v = getenv("CTID_TEST_KEYS");
    return v != NULL && strcmp(v, "1") == 0;
}

int keys_hook_invite(struct sip *s, const struct sip_invite *inv)
{
    struct sip_invite *copy = malloc(sizeof *copy);
    if (copy == NULL)
        return -1;
    *copy = *inv;
    copy->offer_te = true;
    int rc = sip_invite(s, copy);
    memset(copy, 0, sizeof *copy); /* it held the digest password */
    free(copy);
    return rc;
}

static void keys_hook_on_key(void *owner, char key)
{
    const struct call *c = owner;
    log_info("%s: key %c (rfc4733)", c->res_id, key);
}

void keys_hook_answered(struct calls *t, const struct sip_event *ev)
{
    if (ev->type != SIP_EV_ANSWERED || ev->answered.te_payload_type < 0)
        return;
    struct call *c = calls_find(t, ev->call_id);
    if (c == NULL || c->state != CALL_ANSWERED || c->media == NULL)
        return;
    if (media_keys(c->media, ev->answered.te_payload_type, false,
                   c->payload_type, keys_hook_on_key) < 0)
        log_warn("%s: test hook: cannot listen for keys", c->res_id);
    else
        log_debug("%s: listening for telephone-event %d on RTP port %u",
                  c->res_id, ev->answered.te_payload_type, c->rtp_port);
}
