/* rate: the token bucket behind max_call_rate. Tokens refill continuously
 * (not once per second), so a steady rate just under the limit is never
 * refused and a burst of up to max(1, rate) is allowed after a pause. */
#include "rate.h"

#include <stdint.h>

void rate_init(struct rate *r, double per_second, uint64_t now_ns)
{
    r->per_second = per_second > 0 ? per_second : 0;
    /* Below 1/s the bucket must still hold one token, or nothing passes. */
    r->burst = r->per_second > 1 ? r->per_second : 1;
    r->tokens = r->burst;
    r->last_ns = now_ns;
}

bool rate_take(struct rate *r, uint64_t now_ns)
{
    if (r->per_second == 0)
        return true;
    /* A clock that did not move forward (same tick) adds nothing. */
    if (now_ns > r->last_ns) {
        r->tokens += (double)(now_ns - r->last_ns) * 1e-9 * r->per_second;
        if (r->tokens > r->burst)
            r->tokens = r->burst;
        r->last_ns = now_ns;
    }
    if (r->tokens < 1)
        return false;
    r->tokens -= 1;
    return true;
}

unsigned rate_available(const struct rate *r, uint64_t now_ns)
{
    if (r->per_second == 0)
        return UINT32_MAX;
    double t = r->tokens;
    if (now_ns > r->last_ns) {
        t += (double)(now_ns - r->last_ns) * 1e-9 * r->per_second;
        if (t > r->burst)
            t = r->burst;
    }
    return t < 1 ? 0 : (unsigned)t;
}

void rate_give_back(struct rate *r)
{
    if (r->per_second == 0)
        return;
    r->tokens += 1;
    if (r->tokens > r->burst)
        r->tokens = r->burst;
}
