/* work: the worker pool that keeps slow work off the main loop. Owns its
 * threads, the queue of jobs waiting for a thread, and the hand-back of
 * finished jobs to the main loop (a struct queue whose eventfd libevent
 * watches). A job is handed over whole: while a worker runs it, only that
 * worker touches it; afterwards only the main thread does. */
#ifndef CTID_WORK_H
#define CTID_WORK_H

#include <stdatomic.h>
#include <stdbool.h>

struct event_base;
struct work_pool;

/* Embedded in the caller's own job struct. run is called on a worker
 * thread and must touch nothing but the job; done is called on the main
 * thread exactly once per submitted job, after run or, if the pool was
 * freed first, instead of it (ran is then false). done may free the job. */
struct work_job {
    void (*run)(struct work_job *job);
    void (*done)(struct work_job *job);
    atomic_bool cancelled; /* set by the main thread; run may stop early */
    bool ran;
    struct work_job *next; /* the pool's, while queued */
};

/* threads workers (at least 1); finished jobs reach done through base. */
struct work_pool *work_pool_new(struct event_base *base, unsigned threads);
/* Queues job for a worker. Never blocks. */
void work_submit(struct work_pool *pool, struct work_job *job);
/* Jobs submitted and whose done has not run yet. */
unsigned work_pending(const struct work_pool *pool);
/* Stops the pool: every job still queued is cancelled, the workers finish
 * the job they hold (run should watch job->cancelled) and are joined, then
 * done runs here for every job not yet done. */
void work_pool_free(struct work_pool *pool);

#endif
