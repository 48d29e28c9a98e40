/* replay: sys.subscribe and the journal replay behind "since" (private
 * to src/; replay.c). Main thread. */
#ifndef CTID_REPLAY_H
#define CTID_REPLAY_H

#include "conn.h"

/* sys.subscribe, sys.subscribe {"since": N} or [N]: N an integer >= 0.
 * Replies, then makes c a subscriber, after replaying the journal from N
 * when asked. */
void replay_subscribe(struct conn *c, struct rpc_request *req);

#endif
