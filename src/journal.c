/* journal: the durable event journal (include/journal.h says what it owns
 * and the record format). Segments are append-only files; the only
 * in-place change is cutting a torn tail on open or after a failed write,
 * so a reader never sees a record change under it. */
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "journal_int.h"
#include "log.h"

#define SEQ_MAX JOURNAL_SEQ_MAX

/* ---- segments ------------------------------------------------------------- */

static void seg_path(const struct journal *j, uint64_t first, char *out,
                     size_t outlen)
{
    snprintf(out, outlen, "%s/%020" PRIu64 ".log", j->dir, first);
}

static int seg_cmp(const void *a, const void *b)
{
    const struct journal_seg *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

static int seg_push(struct journal *j, uint64_t first, uint64_t bytes,
                    int64_t newest)
{
    if (j->n_segs == j->cap_segs) {
        size_t cap = j->cap_segs ? j->cap_segs * 2 : 16;
        struct journal_seg *s = realloc(j->segs, cap * sizeof *s);
        if (s == NULL)
            return -1;
        j->segs = s;
        j->cap_segs = cap;
    }
    j->segs[j->n_segs++] = (struct journal_seg){first, bytes, newest};
    return 0;
}

/* A new or deleted segment file is only durable once its directory is. */
static void sync_dir(const struct journal *j)
{
    int dfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) < 0)
            log_warn("journal %s: fsync: %s", j->dir, strerror(errno));
        close(dfd);
    }
}

/* fdatasync of the records written since the last one, timed for the
 * sync hook (two clock reads per sync, none per record). */
static int journal_fdatasync(struct journal *j)
{
    uint64_t t0 = clock_mono_ns();
    int rc = fdatasync(j->fd);
    int saved = errno;
    double took = (double)(clock_mono_ns() - t0) / 1e9;
    j->unsynced_records = 0;
    if (j->on_sync != NULL)
        j->on_sync(j->on_sync_arg, took, rc < 0);
    errno = saved;
    return rc;
}

void journal_set_sync_hook(struct journal *j, journal_sync_fn fn, void *arg)
{
    j->on_sync = fn;
    j->on_sync_arg = arg;
}

/* Opens segment first for appending, creating it (and adding it to the
 * list when new). */
static int seg_open_append(struct journal *j, uint64_t first, bool create)
{
    char path[PATH_MAX + 32];
    seg_path(j, first, path, sizeof path);
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC |
                            (create ? O_CREAT | O_EXCL : 0), 0640);
    if (fd < 0)
        return -1;
    if (create) {
        if (seg_push(j, first, 0, 0) < 0) {
            close(fd);
            unlink(path);
            errno = ENOMEM;
            return -1;
        }
        sync_dir(j);
    }
    if (j->fd >= 0) {
        /* Records written but not yet synced go to disk before their
         * descriptor does. */
        if (j->unsynced_records > 0 && journal_fdatasync(j) < 0)
            log_error("journal %s: fdatasync before rotation: %s", j->dir,
                      strerror(errno));
        close(j->fd);
    }
    j->unsynced_records = 0;
    j->fd = fd;
    return 0;
}

/* Scans the newest segment: the last good record gives last_seq; a torn or
 * corrupt tail (a crash mid-write, a flipped byte) is cut off, and *cut
 * set. */
static int recover_tail(struct journal *j, bool *cut, char *err,
                        size_t errlen)
{
    struct journal_seg *s = &j->segs[j->n_segs - 1];
    char path[PATH_MAX + 32];
    seg_path(j, s->first, path, sizeof path);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "journal %s: %s", path, strerror(errno));
        return -1;
    }
    uint64_t off = 0, seq = 0;
    int64_t t = 0;
    const char *why = "";
    int rc;
    j->last_seq = s->first - 1;
    for (;;) {
        char *buf;
        size_t len;
        rc = journal_record_read(fd, off, s->bytes, &seq, &t, &buf, &len, &why);
        if (rc != 1)
            break;
        free(buf);
        /* Also the first record: one below the file's name would
         * bring last_seq below seqs handed out before. */
        if (seq <= j->last_seq) {
            why = off > 0 ? "seq not increasing" : "seq below the file's name";
            rc = -2;
            break;
        }
        j->last_seq = seq;
        off += JOURNAL_HEADER_BYTES + len;
    }
    if (rc == -1) {
        snprintf(err, errlen, "journal %s: read: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (rc == -2) {
        log_warn("journal %s: %s at offset %" PRIu64 "; dropping the last "
                 "%" PRIu64 " byte(s) (a write cut short by a crash)",
                 path, why, off, s->bytes - off);
        if (ftruncate(fd, (off_t)off) < 0 || fdatasync(fd) < 0) {
            snprintf(err, errlen, "journal %s: truncate: %s", path,
                     strerror(errno));
            close(fd);
            return -1;
        }
        s->bytes = off;
        /* Skip the cut record's seq: after a crash it was never synced,
         * so never sent, but a cut made for any other reason (a damaged
         * disk, an operator) may hit one a client has seen, and a seq
         * must never name two different events. (At INT64_MAX there
         * is nothing left to skip: no seq past it is ever handed out.) */
        if (j->last_seq < SEQ_MAX)
            j->last_seq++;
        *cut = true;
    }
    close(fd);
    return 0;
}

/* Seqs up to the stored mark may have gone out without reaching the
 * journal (disk full, a crash before the group commit): the next seq is
 * above them too. */
static void journal_open_mark(struct journal *j)
{
    uint64_t mark = 0;
    if (seqmark_open(&j->mark, j->dir, &mark) < 0)
        log_error("journal %s/" SEQMARK_FILE ": %s; events go out without "
                  "seq until it can be written", j->dir, strerror(errno));
    if (mark > SEQ_MAX) {
        log_warn("journal %s/" SEQMARK_FILE ": mark %" PRIu64 " out of "
                 "range; ignored", j->dir, mark);
        mark = 0;
    }
    if (mark > j->last_seq) {
        log_info("journal: seqs up to %" PRIu64 " may have been sent "
                 "(last journaled %" PRIu64 "): next seq %" PRIu64,
                 mark, j->last_seq, mark + 1);
        j->last_seq = mark;
    }
    j->reserved = j->last_seq;
}

/* Makes the mark on disk cover seq (a block above it). */
static int journal_reserve(struct journal *j, uint64_t seq)
{
    if (seq <= j->reserved)
        return 0;
    uint64_t mark = seq - 1 + JOURNAL_SEQ_BLOCK;
    if (mark > SEQ_MAX)
        mark = SEQ_MAX;
    if (seqmark_store(&j->mark, mark) < 0) {
        if (!j->mark_failing)
            log_error("journal %s/" SEQMARK_FILE ": cannot store the seq "
                      "mark: %s; events go out without seq until it can",
                      j->dir, strerror(errno));
        j->mark_failing = true;
        return -1;
    }
    if (j->mark_failing)
        log_info("journal %s/" SEQMARK_FILE ": seq mark stored again; "
                 "events carry seq from %" PRIu64, j->dir, seq);
    j->mark_failing = false;
    j->reserved = mark;
    return 0;
}

uint64_t journal_take_seq(struct journal *j)
{
    uint64_t seq = journal_next_seq(j);
    if (seq > SEQ_MAX) {
        if (!j->seq_exhausted)
            log_error("journal %s: the last seq is %" PRIu64 ", the "
                      "highest there is; events go out without seq (move "
                      "the journal directory aside to start again at 1)",
                      j->dir, j->last_seq);
        j->seq_exhausted = true;
        return 0;
    }
    if (journal_reserve(j, seq) < 0)
        return 0;
    j->last_seq = seq;
    return seq;
}

void journal_init(struct journal *j)
{
    memset(j, 0, sizeof *j);
    j->fd = -1;
    j->mark.fd = -1;
}

int journal_open(struct journal *j, const char *dir, uint64_t max_bytes,
                 uint64_t max_age, uint64_t seg_max, int64_t now, char *err,
                 size_t errlen)
{
    journal_init(j);
    j->max_bytes = max_bytes;
    j->max_age = max_age;
    j->seg_max = seg_max;
    if (strlen(dir) >= sizeof j->dir) {
        snprintf(err, errlen, "journal %s: path too long", dir);
        return -1;
    }
    strcpy(j->dir, dir);
    if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "journal %s: %s", dir, strerror(errno));
        return -1;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(err, errlen, "journal %s: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        if (strlen(e->d_name) != 24 || strcmp(e->d_name + 20, ".log") != 0)
            continue;
        uint64_t first = strtoull(e->d_name, &end, 10);
        if (end != e->d_name + 20 || first == 0 || first > SEQ_MAX)
            continue;
        char path[PATH_MAX + 32];
        struct stat st;
        seg_path(j, first, path, sizeof path);
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (seg_push(j, first, (uint64_t)st.st_size, (int64_t)st.st_mtime) <
            0) {
            closedir(d);
            snprintf(err, errlen, "journal %s: out of memory", dir);
            journal_close(j);
            return -1;
        }
    }
    closedir(d);
    if (j->n_segs > 0) {
        qsort(j->segs, j->n_segs, sizeof *j->segs, seg_cmp);
        bool cut = false;
        int rc = recover_tail(j, &cut, err, errlen);
        /* The skipped seq is only in memory: appends go on in a new
         * segment named by the next seq, so that the next open, even
         * with nothing appended, does not hand the skipped one out. */
        if (rc == 0 && cut && journal_next_seq(j) <= SEQ_MAX &&
            seg_open_append(j, journal_next_seq(j), true) < 0)
            log_error("journal %s: cannot start segment %" PRIu64
                      " after the cut: %s", dir, journal_next_seq(j),
                      strerror(errno));
        if (rc < 0 || (j->fd < 0 &&
                       seg_open_append(j, j->segs[j->n_segs - 1].first,
                                       false) < 0)) {
            if (j->fd < 0 && err[0] == '\0')
                snprintf(err, errlen, "journal %s: %s", dir, strerror(errno));
            journal_close(j);
            return -1;
        }
    } else if (seg_open_append(j, 1, true) < 0) {
        snprintf(err, errlen, "journal %s: %s", dir, strerror(errno));
        journal_close(j);
        return -1;
    }
    journal_open_mark(j);
    journal_retain(j, now);
    return 0;
}

void journal_close(struct journal *j)
{
    if (j->unsynced_records > 0 && j->fd >= 0 && fdatasync(j->fd) < 0)
        log_error("journal %s: fdatasync at close: %s", j->dir,
                  strerror(errno));
    j->unsynced_records = 0;
    /* Nothing above last_seq went out: a clean restart need skip none. */
    if (j->mark.fd >= 0 && j->reserved > j->last_seq &&
        seqmark_store(&j->mark, j->last_seq) < 0)
        log_warn("journal %s/" SEQMARK_FILE ": cannot lower the mark at "
                 "close: %s (the next start skips up to %" PRIu64 " seqs)",
                 j->dir, strerror(errno), j->reserved - j->last_seq);
    seqmark_close(&j->mark);
    if (j->fd >= 0)
        close(j->fd);
    free(j->segs);
    journal_init(j);
}

uint64_t journal_next_seq(const struct journal *j)
{
    return j->last_seq + 1;
}

uint64_t journal_first_seq(const struct journal *j)
{
    for (size_t i = 0; i < j->n_segs; i++)
        if (j->segs[i].bytes > 0)
            return j->segs[i].first;
    return 0;
}

void journal_retain(struct journal *j, int64_t now)
{
    uint64_t total = 0;
    for (size_t i = 0; i < j->n_segs; i++)
        total += j->segs[i].bytes;
    size_t drop = 0;
    /* Oldest first; the newest segment holds the append position and the
     * last seq, so it always stays. */
    while (drop + 1 < j->n_segs) {
        const struct journal_seg *s = &j->segs[drop];
        bool too_big = total > j->max_bytes;
        bool too_old = now - s->newest > (int64_t)j->max_age;
        if (!too_big && !too_old)
            break;
        char path[PATH_MAX + 32];
        seg_path(j, s->first, path, sizeof path);
        if (unlink(path) < 0 && errno != ENOENT) {
            log_error("journal %s: cannot delete: %s", path, strerror(errno));
            break;
        }
        log_info("journal: deleted %s (%s)", path,
                 too_big ? "journal_max_bytes" : "journal_max_age");
        total -= s->bytes;
        drop++;
    }
    if (drop > 0) {
        memmove(j->segs, j->segs + drop,
                (j->n_segs - drop) * sizeof *j->segs);
        j->n_segs -= drop;
        sync_dir(j);
    }
}

int journal_append(struct journal *j, int64_t now, uint64_t seq,
                   const char *data, size_t len)
{
    if (journal_write(j, now, seq, data, len) < 0)
        return -1;
    return journal_sync(j);
}

int journal_sync(struct journal *j)
{
    if (j->unsynced_records == 0 || j->fd < 0)
        return 0;
    return journal_fdatasync(j);
}

int journal_write(struct journal *j, int64_t now, uint64_t seq,
                  const char *data, size_t len)
{
    /* A seq no reader can ask for (since is a JSON integer), or 0: refused
     * before anything changes. */
    if (seq == 0 || seq > SEQ_MAX) {
        errno = ERANGE;
        return -1;
    }
    /* The seq is spent whatever happens: a live event may already carry
     * it, so it must never be given to another event. */
    if (seq > j->last_seq)
        j->last_seq = seq;
    if (journal_reserve(j, seq) < 0)
        return -1;
    if (j->fd < 0 || len > JOURNAL_MAX_RECORD) {
        errno = j->fd < 0 ? EBADF : EMSGSIZE;
        return -1;
    }
    struct journal_seg *s = &j->segs[j->n_segs - 1];
    if (s->bytes > 0 && s->bytes + JOURNAL_HEADER_BYTES + len > j->seg_max) {
        if (seg_open_append(j, seq, true) < 0) {
            log_error("journal %s: cannot start segment %" PRIu64 ": %s",
                      j->dir, seq, strerror(errno));
            /* Keep appending to the old one rather than lose events. */
        }
        s = &j->segs[j->n_segs - 1];
    }
    size_t n = JOURNAL_HEADER_BYTES + len;
    unsigned char *rec = malloc(n);
    if (rec == NULL) {
        errno = ENOMEM;
        return -1;
    }
    journal_record_encode(rec, seq, now, data, len);
    /* One write(2): a crash leaves at most this record torn, which the
     * next open cuts off. */
    ssize_t w = write(j->fd, rec, n);
    int saved = errno;
    free(rec);
    if (w != (ssize_t)n) {
        if (w >= 0)
            saved = ENOSPC;
        /* Cut back so the next record does not follow a partial one. */
        if (ftruncate(j->fd, (off_t)s->bytes) < 0)
            log_error("journal: cannot cut back a failed append: %s",
                      strerror(errno));
        errno = saved;
        return -1;
    }
    s->bytes += n;
    s->newest = now;
    j->unsynced_records++;
    /* Cheap (stops at the first segment to keep), so every append
     * enforces age too, not just rotations. */
    journal_retain(j, now);
    return 0;
}

/* ---- reading ---------------------------------------------------------- */

void journal_cursor_init(struct journal_cursor *cur, uint64_t after)
{
    cur->after = after;
    cur->seg_first = 0;
    cur->off = 0;
}

/* Index of the segment the cursor is in; a cursor whose segment is gone
 * (never placed, or deleted by retention) restarts at the segment that
 * would hold after + 1, or the oldest. */
static size_t cursor_seg(const struct journal *j, struct journal_cursor *cur)
{
    for (size_t i = 0; i < j->n_segs; i++)
        if (cur->seg_first != 0 && j->segs[i].first == cur->seg_first)
            return i;
    size_t at = 0;
    for (size_t i = 0; i < j->n_segs; i++)
        if (j->segs[i].first <= cur->after + 1)
            at = i;
    cur->seg_first = j->segs[at].first;
    cur->off = 0;
    return at;
}

int journal_read(struct journal *j, struct journal_cursor *cur,
                 size_t max_bytes, journal_record_fn fn, void *arg)
{
    int delivered = 0;
    size_t bytes = 0;
    if (j->n_segs == 0 || cur->after >= j->last_seq)
        return 0;
    size_t i = cursor_seg(j, cur);
    while (i < j->n_segs && bytes < max_bytes) {
        const struct journal_seg *s = &j->segs[i];
        char path[PATH_MAX + 32];
        seg_path(j, s->first, path, sizeof path);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT)
                goto next; /* deleted under us: go on with the next */
            log_error("journal %s: %s", path, strerror(errno));
            return -1;
        }
        for (;;) {
            uint64_t seq;
            int64_t t;
            char *buf;
            size_t len;
            const char *why = "";
            int rc = journal_record_read(fd, cur->off, s->bytes, &seq, &t, &buf, &len,
                                 &why);
            if (rc == -1) {
                log_error("journal %s: read: %s", path, strerror(errno));
                close(fd);
                return -1;
            }
            /* Segment i holds the seqs below the next one's name: one at
             * or past it is damage (or a misnamed file) and, delivered,
             * would be at or past journal_next_seq() when i + 1 is the
             * newest. */
            if (rc == 1 && i + 1 < j->n_segs && seq >= j->segs[i + 1].first) {
                free(buf);
                why = "seq past the segment's end";
                rc = -2;
            }
            if (rc == -2)
                log_warn("journal %s: %s at offset %" PRIu64
                         "; skipping the rest of this segment",
                         path, why, cur->off);
            if (rc != 1)
                break;
            cur->off += JOURNAL_HEADER_BYTES + len;
            if (seq > cur->after) {
                fn(arg, seq, t, buf, len);
                cur->after = seq;
                delivered++;
                bytes += len;
            }
            free(buf);
            if (bytes >= max_bytes) {
                close(fd);
                return delivered;
            }
        }
        close(fd);
    next:
        if (i + 1 >= j->n_segs)
            break;
        i++;
        cur->seg_first = j->segs[i].first;
        cur->off = 0;
    }
    return delivered;
}
