/* reqkey: construct's request_key (issue 14, docs/protocol.md), the table
 * request_key -> {digest of the params, the first construct's result,
 * time} and its durable copy state_dir/reqkeys.log, so that a construct
 * retried after a lost reply (also across a restart or kill -9) places no
 * second call.
 *
 * The file is append-only, one line per record "CRC32HEX JSON\n" (as the
 * ledger's):
 *   put  {"op":"put","key":K,"digest":HEX64,"time":T,"result":{...}}
 *        written when the call is placed, before its INVITE; synced by
 *        the group commit before the construct reply leaves
 *        (docs/reliability.md, "request_key")
 *   del  {"op":"del","key":K}  the put's call was not placed after all
 *        (the INVITE could not be handed over); not synced
 * A torn, damaged or invalid line is skipped with a count. On open the
 * file is read, expired keys dropped and the rest rewritten (temporary
 * file, fsync, rename, directory fsync): the compaction. Once the file
 * passes REQKEY_COMPACT_BYTES it is compacted again.
 *
 * Memory is bounded by max_keys (REQKEY_MAX_KEYS in the daemon) and by
 * max_bytes of stored text (keys and results, REQKEY_MAX_BYTES): a new key
 * when the table is full of unexpired keys is refused (reqkey_begin fails
 * with ENOSPC) rather than the oldest evicted, since evicting a key would
 * silently let its retry place a second call. The same bounds keep the
 * file well under REQKEY_MAX_FILE.
 *
 * A key is pending (no result yet) between reqkey_begin and
 * reqkey_commit/reqkey_abandon: in memory only. The caller passes the
 * wall clock in (unit tests age keys). Owned by struct server; main loop
 * only. Entries, their key and result text are the table's. */
#ifndef CTID_REQKEY_H
#define CTID_REQKEY_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REQKEY_MAX_KEYS 100000u
#define REQKEY_MAX_BYTES (64u << 20)
#define REQKEY_COMPACT_BYTES (8u << 20) /* or twice the size after the last
                                           compaction, if larger */
#define REQKEY_MAX_FILE (256u << 20) /* a larger file is not read */
#define REQKEY_DIGEST_HEX 64

struct reqkey_entry {
    char *key;                    /* owned */
    char digest[REQKEY_DIGEST_HEX + 1];
    int64_t created;              /* unix time of the put (begin while
                                     pending) */
    char *result;                 /* owned compact JSON; NULL: pending */
    bool written;                 /* its put is in the file */
    struct reqkey_entry *hnext;   /* hash chain */
    struct reqkey_entry *older, *newer; /* by age, oldest first */
};

struct reqkey {
    char path[PATH_MAX];          /* state_dir/reqkeys.log; "" in memory */
    int fd;                       /* O_APPEND; -1: no file */
    uint64_t bytes;               /* size of the file */
    uint64_t compact_at;          /* compact once bytes reach this */
    bool unsynced;                /* a put written, not yet synced */
    unsigned ttl;                 /* request_key_ttl, seconds */
    size_t max_keys;
    size_t max_bytes;             /* of text: keys and results */
    size_t text_bytes;            /* text stored now */
    struct reqkey_entry **buckets;
    size_t n_buckets, n;
    struct reqkey_entry *oldest, *newest;
};

enum reqkey_found {
    REQKEY_NEW,       /* not seen within ttl */
    REQKEY_PENDING,   /* same params, the first construct not yet done */
    REQKEY_DONE,      /* same params: *result is the first's result */
    REQKEY_MISMATCH,  /* seen with different params */
};

/* An empty table with no file (unit tests, fuzzing); max_bytes is
 * REQKEY_MAX_BYTES. */
void reqkey_init(struct reqkey *r, unsigned ttl, size_t max_keys);
/* Applies a file's content to the table (later records win), dropping
 * keys expired at now; bad lines counted in *bad. 0, or -1 out of
 * memory. */
int reqkey_load(struct reqkey *r, const char *buf, size_t len, int64_t now,
                unsigned *bad);
/* Reads state_dir/reqkeys.log (if any), compacts it and opens it for
 * appending. 0 or -1 with err. */
int reqkey_open(struct reqkey *r, const char *state_dir, unsigned ttl,
                size_t max_keys, int64_t now, char *err, size_t errlen);
/* Syncs, closes the file, frees every entry. */
void reqkey_close(struct reqkey *r);

/* The canonical digest of construct params (array or object): the
 * members from_uri, to_uri, play_content, play_repeat, max_ring_seconds,
 * user_data (by name or position), keys and progress (by name), null ones
 * left out, as compact JSON with sorted keys; SHA-256 of that, in hex.
 * request_key itself and unknown members are not part of it. 0 or -1. */
int reqkey_digest(json_t *params, char hex[REQKEY_DIGEST_HEX + 1]);

/* Looks key up (expiring old keys first). *result is set for DONE (the
 * table's text, valid until the next call into the table). */
enum reqkey_found reqkey_lookup(struct reqkey *r, const char *key,
                                const char *digest, int64_t now,
                                const char **result);
/* A new pending key. -1 with errno ENOSPC (max_keys or max_bytes
 * reached) or ENOMEM. */
int reqkey_begin(struct reqkey *r, const char *key, const char *digest,
                 int64_t now);
/* The pending key's call is placed: stores result (compact JSON) and
 * appends its put (r->unsynced set: nobody may see the result before
 * reqkey_sync). -1 (errno) if it could not be written: the key stays
 * pending. */
int reqkey_commit(struct reqkey *r, const char *key, const char *result,
                  int64_t now);
/* Forgets a pending key (its construct failed); a put already written is
 * cancelled with a del record (failure logged). */
void reqkey_abandon(struct reqkey *r, const char *key);
/* fdatasync of the puts written since the last one. */
int reqkey_sync(struct reqkey *r);
/* Rewrites the file with the stored keys only. 0 or -1 (the old file
 * stays). */
int reqkey_compact(struct reqkey *r);

#endif
