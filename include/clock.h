/* clock: the daemon's one reading of CLOCK_MONOTONIC, in the units its
 * modules count in: nanoseconds (media wheel, RTCP, rate limits),
 * milliseconds (Redis link, call timers, client timeouts) and seconds
 * (metrics, admission log pacing). Owns nothing and keeps no state; any
 * thread. Inline, so the media threads' per-slot reads cost what a
 * clock_gettime call costs and no more. */
#ifndef CTID_CLOCK_H
#define CTID_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* CLOCK_MONOTONIC in whole milliseconds. */
static inline uint64_t clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* CLOCK_MONOTONIC in seconds. */
static inline double clock_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Milliseconds since t0_ns, a clock_mono_ns() reading: for logging how
 * long something took. */
static inline double clock_ms_since(uint64_t t0_ns)
{
    return (double)(clock_mono_ns() - t0_ns) / 1e6;
}

#endif
