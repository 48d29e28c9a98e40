/* queue: the one way data crosses threads in ctid. A FIFO of fixed-size
 * messages guarded by one mutex, with an eventfd the consumer's loop
 * watches; push never blocks on the consumer. */
#ifndef CTID_QUEUE_H
#define CTID_QUEUE_H

#include <stddef.h>

struct queue;

struct queue *queue_new(size_t msg_size);
void queue_free(struct queue *q);
/* The eventfd, readable while messages may be waiting. */
int queue_fd(const struct queue *q);
/* Copies msg (msg_size bytes) in. Returns -1 only if out of memory. */
int queue_push(struct queue *q, const void *msg);
/* Copies the oldest message out; returns 0 when empty. Clears the eventfd
 * before looking, so a push racing with the drain is never missed. */
int queue_pop(struct queue *q, void *msg);

#endif
