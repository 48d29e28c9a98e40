/* seqmark: the event seq high-water mark, state_dir/journal/seq.mark.
 * Owns that file and its descriptor. The journal persists here, before it
 * hands a seq out, a mark at or above it; at start the next seq is above
 * both the last journaled record and the mark, so a seq that went out
 * without reaching the journal (disk full, an I/O error, a crash before
 * the group commit) is never given to another event (issue 10 bug 4).
 *
 * The file is created once at its full size (two 512-byte slots) and then
 * only rewritten in place with pwrite + fdatasync, so storing a mark needs
 * no new disk block and works on a full disk. Writes alternate between the
 * slots, each with a CRC and a generation, so a write torn by a crash
 * leaves the other slot's (lower, still valid) mark. Main loop only. */
#ifndef CTID_SEQMARK_H
#define CTID_SEQMARK_H

#include <limits.h>
#include <stdint.h>

#define SEQMARK_FILE "seq.mark"
#define SEQMARK_SLOT 512
#define SEQMARK_BYTES (2 * SEQMARK_SLOT)

struct seqmark {
    char path[PATH_MAX];
    int fd;       /* -1: not open (could not be created: retried on store) */
    uint64_t gen; /* generation of the newest valid slot; picks the next */
};

/* Opens (creating at full size) dir/seq.mark. *mark is the stored mark,
 * 0 when there is none (a new file, or both slots damaged: logged).
 * Returns 0, or -1 with errno when the file cannot be opened or created
 * (m->fd stays -1; seqmark_store tries again). */
int seqmark_open(struct seqmark *m, const char *dir, uint64_t *mark);
/* Makes mark durable (pwrite of one slot + fdatasync). Returns 0 or -1
 * with errno. */
int seqmark_store(struct seqmark *m, uint64_t mark);
void seqmark_close(struct seqmark *m);

#endif
