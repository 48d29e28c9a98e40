/* work: a small pool of worker threads for the work that grows with its
 * input (decoding and resampling prompt files, text to speech), so the
 * main loop never waits for it. Jobs wait in a FIFO guarded by the pool's
 * mutex and condition variable; a finished job goes back to the main loop
 * through a struct queue (mutex + eventfd) that libevent watches, where its
 * done callback runs. The pool owns its threads and the jobs only between
 * work_submit and done. */
#include "work.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>

#include "log.h"
#include "queue.h"

#define WORK_MAX_THREADS 16

struct work_pool {
    pthread_mutex_t lock;     /* guards head, tail, stopping */
    pthread_cond_t wake;      /* a job was queued, or stop */
    struct work_job *head, *tail;
    bool stopping;
    struct queue *finished;   /* struct work_job * back to the main loop */
    struct event *on_finished;
    pthread_t threads[WORK_MAX_THREADS];
    unsigned n_threads;
    unsigned pending;         /* main thread only: submitted, not done */
};

static void *work_thread(void *arg)
{
    struct work_pool *p = arg;

    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (p->head == NULL && !p->stopping)
            pthread_cond_wait(&p->wake, &p->lock);
        if (p->stopping) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        struct work_job *job = p->head;
        p->head = job->next;
        if (p->head == NULL)
            p->tail = NULL;
        pthread_mutex_unlock(&p->lock);
        job->next = NULL;
        if (!atomic_load(&job->cancelled))
            job->run(job);
        job->ran = true;
        if (queue_push(p->finished, &job) < 0)
            /* Out of memory for one queue node: the job and its caller's
             * state are lost, as with any allocation failure. */
            log_error("work: out of memory handing a job back");
    }
}

static void work_done(struct work_pool *p, struct work_job *job)
{
    p->pending--;
    job->done(job);
}

static void work_on_finished(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct work_pool *p = arg;
    struct work_job *job;

    while (queue_pop(p->finished, &job) == 1)
        work_done(p, job);
}

struct work_pool *work_pool_new(struct event_base *base, unsigned threads)
{
    struct work_pool *p = calloc(1, sizeof *p);

    if (p == NULL)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->finished = queue_new(sizeof(struct work_job *));
    if (p->finished != NULL)
        p->on_finished = event_new(base, queue_fd(p->finished),
                                   EV_READ | EV_PERSIST, work_on_finished, p);
    if (p->on_finished == NULL || event_add(p->on_finished, NULL) < 0) {
        work_pool_free(p);
        return NULL;
    }
    if (threads < 1)
        threads = 1;
    if (threads > WORK_MAX_THREADS)
        threads = WORK_MAX_THREADS;
    for (unsigned i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, work_thread, p) != 0)
            break;
        p->n_threads++;
    }
    if (p->n_threads == 0) {
        work_pool_free(p);
        return NULL;
    }
    return p;
}

void work_submit(struct work_pool *p, struct work_job *job)
{
    job->next = NULL;
    job->ran = false;
    p->pending++;
    pthread_mutex_lock(&p->lock);
    if (p->tail != NULL)
        p->tail->next = job;
    else
        p->head = job;
    p->tail = job;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

unsigned work_pending(const struct work_pool *p)
{
    return p->pending;
}

void work_pool_free(struct work_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    struct work_job *queued = p->head;
    p->head = p->tail = NULL;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (struct work_job *j = queued; j != NULL; j = j->next)
        atomic_store(&j->cancelled, true);
    for (unsigned i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    /* Every worker is gone: what they finished, then what never started. */
    if (p->finished != NULL)
        work_on_finished(-1, 0, p);
    while (queued != NULL) {
        struct work_job *next = queued->next;
        work_done(p, queued);
        queued = next;
    }
    if (p->on_finished != NULL)
        event_free(p->on_finished);
    queue_free(p->finished);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
