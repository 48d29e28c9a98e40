/* ledger: the calls constructed and not yet released, kept durable in
 * state_dir/calls.log, so that a restart after a crash can release each
 * one exactly once (error "daemon restart") and end its dialog at the
 * gateway (docs/reliability.md, "Crash recovery").
 *
 * An append-only file of lines "CRC32HEX JSON\n" (the CRC, as the
 * journal's, covers the JSON text). Records, by "op":
 *   open    the facts of a new call and the journal seq its event will
 *           follow; fdatasync'ed before the construct reply is sent (the
 *           server syncs once per loop iteration for all of them)
 *   dialog  what a BYE or CANCEL needs (struct sip_dialog)
 *   answer  the answer time
 *   close   the call was released (its event is in the journal)
 * Only "open" is synced: the others survive kill -9 in the page cache, and
 * a power cut that loses them costs a duplicate check against the journal
 * (close) or a dialog left to the gateway's timers (dialog). A torn last
 * line is ignored. Once the file passes LEDGER_COMPACT_BYTES the server
 * rewrites it with the open calls only (temporary file, fsync, rename).
 *
 * Owned by struct server; main loop only. */
#ifndef CTID_LEDGER_H
#define CTID_LEDGER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crcfile.h"
#include "sip.h"

#define LEDGER_COMPACT_BYTES (8u << 20)
#define LEDGER_MAX_FILE (256u << 20) /* a larger file is not read */

/* One open call as the ledger knows it. */
struct ledger_call {
    uint64_t process_id;
    char res_id[96];
    uint64_t seq;            /* journal's next seq at construct: the call's
                                event, if any, has a seq >= this */
    int64_t begin_time;
    int64_t answer_time;     /* 0: not answered */
    char *user_data;         /* owned; NULL for null */
    char to_uri[400];
    char uuid[37];
    char sip_call_id[96];
    char caller[128];
    bool has_dialog;
    struct sip_dialog dialog;
};

struct ledger {
    char path[PATH_MAX];     /* state_dir/calls.log */
    int fd;                  /* O_APPEND; -1 when closed */
    uint64_t bytes;          /* size of the file */
    bool unsynced;           /* an open record written, not yet synced */
    bool close_lost;         /* a close record could not be written (disk
                                full): rewrite as soon as possible */
};

/* Parses a ledger file's content: the calls opened and not closed, in
 * the order they were opened (*calls is malloc'ed, free with
 * ledger_calls_free). Bad lines are skipped and counted in *bad. Returns
 * 0, or -1 when out of memory. */
int ledger_parse(const char *buf, size_t len, struct ledger_call **calls,
                 size_t *n, unsigned *bad);
void ledger_calls_free(struct ledger_call *calls, size_t n);

/* A closed ledger (no file): ledger_close on it is safe. ledger_open
 * starts with it. */
void ledger_init(struct ledger *l);
/* Reads state_dir/calls.log (if any) into *orphans, the calls a previous
 * run left open, and opens it for appending. The file keeps its content
 * until ledger_rewrite_* replaces it. Returns 0 or -1 with err. */
int ledger_open(struct ledger *l, const char *state_dir,
                struct ledger_call **orphans, size_t *n_orphans, char *err,
                size_t errlen);
void ledger_close(struct ledger *l);

/* Appends an open record (l->unsynced set). Nobody may learn of the call
 * (its construct reply) before ledger_sync. Returns 0 or -1 (errno set). */
int ledger_add(struct ledger *l, const struct ledger_call *lc);
/* fdatasync of the open records written since the last one. */
int ledger_sync(struct ledger *l);
/* Appends without syncing; failures are logged, never fatal (the call
 * goes on, only its recovery after a crash would be less complete). */
void ledger_note_dialog(struct ledger *l, uint64_t process_id,
                        const struct sip_dialog *d);
void ledger_note_answer(struct ledger *l, uint64_t process_id, int64_t t);
void ledger_remove(struct ledger *l, uint64_t process_id);

/* Time to rewrite the file with only the open calls? Also when a close
 * record was lost: a call whose event did not reach the journal either
 * would otherwise be released again by the next start. */
bool ledger_wants_rewrite(const struct ledger *l);
/* Rewriting: begin, one add per open call, commit (synced and renamed
 * over the old file; on any failure the old file stays in use). */
struct ledger_rewrite {
    struct crcfile_rewrite f;
};
int ledger_rewrite_begin(struct ledger *l, struct ledger_rewrite *rw);
void ledger_rewrite_add(struct ledger_rewrite *rw, const struct ledger_call *lc);
int ledger_rewrite_commit(struct ledger *l, struct ledger_rewrite *rw);

#endif
