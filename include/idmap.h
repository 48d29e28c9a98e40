/* idmap: a hash table from 64-bit ids to pointers (open addressing,
 * linear probing, grows at 50% load). Does not own the values. */
#ifndef CTID_IDMAP_H
#define CTID_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct idmap {
    uint64_t *keys;  /* 0 marks an empty slot: id 0 is never stored */
    void **values;
    size_t cap;      /* power of two */
    size_t count;
};

void idmap_init(struct idmap *m);
void idmap_free(struct idmap *m);
/* Returns 0, or -1 if out of memory. Replaces an existing value. */
int idmap_put(struct idmap *m, uint64_t id, void *value);
void *idmap_get(const struct idmap *m, uint64_t id);
/* Returns the removed value or NULL. */
void *idmap_del(struct idmap *m, uint64_t id);

/* Walks every entry, in no particular order:
 *     struct idmap_iter it = IDMAP_ITER_INIT;
 *     while (idmap_next(m, &it, &id, &value)) ...
 * The map must not change during the walk (idmap_del moves entries):
 * collect the ids first when the loop removes them. id and value may be
 * NULL when not wanted. */
struct idmap_iter {
    size_t next;  /* the slot to look at next */
};
#define IDMAP_ITER_INIT {0}
/* Entries stored. */
size_t idmap_count(const struct idmap *m);
int idmap_next(const struct idmap *m, struct idmap_iter *it, uint64_t *id,
               void **value);

#endif
