/* journal: the durable event journal in state_dir/journal/. Owns the
 * segment files (named by their first seq, e.g. 00000000000000000001.log),
 * the append descriptor of the newest one, the next sequence number (and
 * its persisted high-water mark, through seqmark) and
 * retention (whole old segments deleted by total size and by age).
 *
 * A record is a 32-byte header (magic, payload length, seq, unix time,
 * CRC32, reserved; little-endian) followed by the payload: one event's JSON
 * line with its '\n'. The CRC covers length, seq, time and payload. Each
 * append is written with one write(2) and fdatasync'ed before it returns, so
 * an event is on disk before any connection can see it (docs/reliability.md
 * has the measurement behind syncing per event). A torn or corrupt tail
 * found on open is truncated away with a warning, never fatal.
 *
 * Main loop only; the caller passes the clock in (unit tests age records). */
#ifndef CTID_JOURNAL_H
#define CTID_JOURNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "crc32.h" /* journal_crc32, for journal and ledger records */
#include "seqmark.h"

#define JOURNAL_HEADER_BYTES 32
#define JOURNAL_MAX_RECORD (1u << 20) /* payload bytes; events are small */
/* Seqs reserved per store of the high-water mark (seqmark.h): one
 * fdatasync per this many events; at most this many seqs skipped after a
 * crash. */
#define JOURNAL_SEQ_BLOCK 1000

struct journal_seg {
    uint64_t first;  /* seq of its first record (its file name) */
    uint64_t bytes;  /* file size */
    int64_t newest;  /* unix time of its last append (mtime on open) */
};

/* Told of every fdatasync of records journal_write left unsynced (the
 * group commit's, the bus's, a rotation's): how long it took (seconds,
 * CLOCK_MONOTONIC around the call) and whether it failed. */
typedef void (*journal_sync_fn)(void *arg, double seconds, bool failed);

struct journal {
    char dir[PATH_MAX];
    int fd;                    /* newest segment, O_APPEND; -1 when closed */
    uint64_t last_seq;         /* last seq handed out (0: none yet) */
    uint64_t max_bytes;        /* retention: total size of all segments */
    uint64_t max_age;          /* retention: seconds since a segment's last append */
    uint64_t seg_max;          /* rotate once the newest segment reaches this */
    uint64_t unsynced_records; /* written since the last fdatasync (not
                                  on disk yet); 0: nothing to sync */
    journal_sync_fn on_sync;   /* journal_set_sync_hook; NULL: none */
    void *on_sync_arg;
    struct seqmark mark;       /* seq high-water mark file */
    uint64_t reserved;         /* seqs up to this may be handed out: the
                                  mark on disk is at least this */
    bool mark_failing;         /* the last store of the mark failed */
    bool seq_exhausted;        /* next seq past INT64_MAX (logged once) */
    struct journal_seg *segs;  /* sorted by first; the last one is open */
    size_t n_segs, cap_segs;
};

/* Where a reader is: the next record it wants has seq > after. */
struct journal_cursor {
    uint64_t after;     /* last seq delivered (or the requested since) */
    uint64_t seg_first; /* segment being read (0: find from after) */
    uint64_t off;       /* byte offset of the next record in it */
};

/* Called per record by journal_read; data is the payload (the event line). */
typedef void (*journal_record_fn)(void *arg, uint64_t seq, int64_t time,
                                  const char *data, size_t len);

/* A closed journal (no file, no segment): journal_close on it is safe,
 * as on one journal_open failed. journal_open starts with it. */
void journal_init(struct journal *j);
/* Opens (creating) dir, recovers the last seq from the newest segment,
 * truncating a torn tail, takes the seq mark into account (the next seq is
 * above it too), and applies retention at now. A mark file that cannot be
 * created is logged, not fatal (journal_take_seq retries). Returns 0 or -1
 * with err. */
int journal_open(struct journal *j, const char *dir, uint64_t max_bytes,
                 uint64_t max_age, uint64_t seg_max, int64_t now, char *err,
                 size_t errlen);
/* Syncs, lowers the mark to the last seq handed out (so a clean restart
 * skips none) and closes. */
void journal_close(struct journal *j);

/* The seq the next append will carry (a peek: nothing is reserved). */
uint64_t journal_next_seq(const struct journal *j);
/* Hands out the next seq for an event: first makes sure the mark on disk
 * covers it (storing a new one JOURNAL_SEQ_BLOCK above when not), so no
 * restart can give it again, whatever happens to the event's record.
 * Returns 0 when the mark cannot be stored: the event must then go out
 * without a seq (it cannot be journaled either). */
uint64_t journal_take_seq(struct journal *j);

/* Appends one record with seq = journal_next_seq() (or a seq from
 * journal_take_seq) and syncs it. The seq is used up even on failure
 * (never handed out twice); one not yet covered by the mark is reserved
 * first, and a failure to do so fails the append. A seq of 0 or past
 * INT64_MAX fails with ERANGE and changes nothing. Rotates first
 * and applies retention after. Returns 0 or -1 (errno set; the file is cut
 * back so no partial record stays). */
int journal_append(struct journal *j, int64_t now, uint64_t seq,
                   const char *data, size_t len);
/* journal_append without the sync: the record is written (one write(2))
 * and counted in j->unsynced_records. The caller must journal_sync before
 * anyone may see the event (the server syncs once per loop iteration: group commit). */
int journal_write(struct journal *j, int64_t now, uint64_t seq,
                  const char *data, size_t len);
/* fdatasync of what journal_write left unsynced; 0 if nothing was. */
int journal_sync(struct journal *j);
/* Registers fn (after journal_open, which clears it) to be told of each
 * fdatasync of written records; the server feeds the metrics with it. */
void journal_set_sync_hook(struct journal *j, journal_sync_fn fn, void *arg);

/* Deletes whole old segments (never the newest) while the total exceeds
 * max_bytes or their last append is older than max_age at now. */
void journal_retain(struct journal *j, int64_t now);

/* Oldest retained seq, or 0 when the journal is empty. */
uint64_t journal_first_seq(const struct journal *j);

/* Total size of the retained segments (what max_bytes bounds). */
static inline uint64_t journal_total_bytes(const struct journal *j)
{
    uint64_t n = 0;
    for (size_t i = 0; i < j->n_segs; i++)
        n += j->segs[i].bytes;
    return n;
}

void journal_cursor_init(struct journal_cursor *cur, uint64_t after);
/* Calls fn for records with seq > cur->after in seq order until about
 * max_bytes of payload are delivered or the end is reached, advancing
 * cur. Survives retention deleting the segment under the cursor. Returns
 * the number of records delivered (0: caught up) or -1 on an I/O error. */
int journal_read(struct journal *j, struct journal_cursor *cur,
                 size_t max_bytes, journal_record_fn fn, void *arg);

#endif
