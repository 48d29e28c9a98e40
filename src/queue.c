/* queue: a mutex-guarded FIFO of fixed-size messages plus an eventfd.
 * Every message that crosses a thread (main loop <-> SIP thread, main
 * loop <-> media threads, finished worker jobs) goes through a struct
 * queue; each channel's message is a small tagged union, one struct per
 * kind (docs/architecture.md lists them). The only other locks are the
 * worker pool's job list (work.c) and espeak-ng's (tts.c); the SIP
 * thread's start-up result is a semaphore posted once (sip.c). Owns its
 * nodes only: a message's pointers are its sender's and receiver's
 * business. */
#include "queue.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct queue_node {
    struct queue_node *next;
    unsigned char msg[];
};

struct queue {
    pthread_mutex_t lock;     /* guards head and tail */
    struct queue_node *head;  /* oldest */
    struct queue_node *tail;
    size_t msg_size;
    int efd;                  /* non-blocking eventfd, counts pushes */
};

struct queue *queue_new(size_t msg_size)
{
    struct queue *q = calloc(1, sizeof *q);
    if (q == NULL)
        return NULL;
    q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->efd < 0) {
        free(q);
        return NULL;
    }
    pthread_mutex_init(&q->lock, NULL);
    q->msg_size = msg_size;
    return q;
}

void queue_free(struct queue *q)
{
    if (q == NULL)
        return;
    struct queue_node *n = q->head;
    while (n != NULL) {
        struct queue_node *next = n->next;
        free(n);
        n = next;
    }
    close(q->efd);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

int queue_fd(const struct queue *q)
{
    return q->efd;
}

int queue_push(struct queue *q, const void *msg)
{
    struct queue_node *n = malloc(sizeof *n + q->msg_size);
    if (n == NULL)
        return -1;
    n->next = NULL;
    memcpy(n->msg, msg, q->msg_size);
    pthread_mutex_lock(&q->lock);
    if (q->tail != NULL)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
    pthread_mutex_unlock(&q->lock);
    uint64_t one = 1;
    /* Only fails when the counter would overflow, and it is then readable
     * anyway: the consumer will wake. */
    ssize_t ignored = write(q->efd, &one, sizeof one);
    (void)ignored;
    return 0;
}

int queue_pop(struct queue *q, void *msg)
{
    uint64_t count;
    ssize_t ignored = read(q->efd, &count, sizeof count);
    (void)ignored;
    pthread_mutex_lock(&q->lock);
    struct queue_node *n = q->head;
    if (n != NULL) {
        q->head = n->next;
        if (q->head == NULL)
            q->tail = NULL;
    }
    pthread_mutex_unlock(&q->lock);
    if (n == NULL)
        return 0;
    memcpy(msg, n->msg, q->msg_size);
    free(n);
    return 1;
}
