/* rate: a token bucket limiting how often something may happen (new calls
 * per second). Pure: the caller passes the time, so tests need no clock. */
#ifndef CTID_RATE_H
#define CTID_RATE_H

#include <stdbool.h>
#include <stdint.h>

#include "clock.h"

struct rate {
    double per_second;  /* refill rate; 0 = unlimited */
    double burst;       /* bucket size: max(1, per_second) tokens */
    double tokens;      /* tokens available at last_ns */
    uint64_t last_ns;   /* CLOCK_MONOTONIC time tokens was computed at */
};

/* A full bucket at now_ns. per_second 0 means every take succeeds. */
void rate_init(struct rate *r, double per_second, uint64_t now_ns);
/* Refills for the time since the last call, then takes one token.
 * Returns true when one was there (the event may happen). */
bool rate_take(struct rate *r, uint64_t now_ns);
/* Whole tokens available at now_ns, without taking any (and without
 * changing r); UINT32_MAX when unlimited. */
unsigned rate_available(const struct rate *r, uint64_t now_ns);
/* Returns a token taken for something that then did not happen (up to
 * the bucket's size). */
void rate_give_back(struct rate *r);
/* The clock now_ns is read from: clock_mono_ns (clock.h). */
static inline uint64_t rate_now_ns(void)
{
    return clock_mono_ns();
}

#endif
