/* idmap: open-addressing hash table from 64-bit ids to pointers. Used for
 * the call table (main thread) and the SIP thread's legs; each owner has
 * its own instance. Deletion uses backward shifting, so there are no
 * tombstones and lookups stay short under churn. */
#include "idmap.h"

#include <stdlib.h>

#define IDMAP_MIN_CAP 64

static size_t idmap_slot(uint64_t id, size_t cap)
{
    /* Fibonacci hashing spreads sequential process ids over the table. */
    return (size_t)((id * 0x9E3779B97F4A7C15ULL) >> 17) & (cap - 1);
}

void idmap_init(struct idmap *m)
{
    m->keys = NULL;
    m->values = NULL;
    m->cap = 0;
    m->count = 0;
}

void idmap_free(struct idmap *m)
{
    free(m->keys);
    free(m->values);
    idmap_init(m);
}

static int idmap_grow(struct idmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : IDMAP_MIN_CAP;
    uint64_t *keys = calloc(cap, sizeof *keys);
    void **values = calloc(cap, sizeof *values);
    if (keys == NULL || values == NULL) {
        free(keys);
        free(values);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] == 0)
            continue;
        size_t j = idmap_slot(m->keys[i], cap);
        while (keys[j] != 0)
            j = (j + 1) & (cap - 1);
        keys[j] = m->keys[i];
        values[j] = m->values[i];
    }
    free(m->keys);
    free(m->values);
    m->keys = keys;
    m->values = values;
    m->cap = cap;
    return 0;
}

int idmap_put(struct idmap *m, uint64_t id, void *value)
{
    if ((m->count + 1) * 2 > m->cap && idmap_grow(m) < 0)
        return -1;
    size_t i = idmap_slot(id, m->cap);
    while (m->keys[i] != 0 && m->keys[i] != id)
        i = (i + 1) & (m->cap - 1);
    if (m->keys[i] == 0)
        m->count++;
    m->keys[i] = id;
    m->values[i] = value;
    return 0;
}

void *idmap_get(const struct idmap *m, uint64_t id)
{
    if (m->cap == 0 || id == 0)
        return NULL;
    size_t i = idmap_slot(id, m->cap);
    while (m->keys[i] != 0) {
        if (m->keys[i] == id)
            return m->values[i];
        i = (i + 1) & (m->cap - 1);
    }
    return NULL;
}

void *idmap_del(struct idmap *m, uint64_t id)
{
    if (m->cap == 0 || id == 0)
        return NULL;
    size_t mask = m->cap - 1;
    size_t i = idmap_slot(id, m->cap);
    while (m->keys[i] != id) {
        if (m->keys[i] == 0)
            return NULL;
        i = (i + 1) & mask;
    }
    void *value = m->values[i];
    /* Shift later members of the probe run back into the hole. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->keys[j] != 0; j = (j + 1) & mask) {
        size_t home = idmap_slot(m->keys[j], m->cap);
        /* Move j into the hole unless its home lies cyclically in (hole, j]. */
        int stays = hole <= j ? (hole < home && home <= j)
                              : (hole < home || home <= j);
        if (!stays) {
            m->keys[hole] = m->keys[j];
            m->values[hole] = m->values[j];
            hole = j;
        }
    }
    m->keys[hole] = 0;
    m->values[hole] = NULL;
    m->count--;
    return value;
}

size_t idmap_count(const struct idmap *m)
{
    return m->count;
}

int idmap_next(const struct idmap *m, struct idmap_iter *it, uint64_t *id,
               void **value)
{
    while (it->next < m->cap) {
        size_t i = it->next++;
        if (m->keys[i] != 0) {
            if (id != NULL)
                *id = m->keys[i];
            if (value != NULL)
                *value = m->values[i];
            return 1;
        }
    }
    return 0;
}
