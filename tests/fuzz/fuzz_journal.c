/* fuzz_journal: libFuzzer harness for the journal's recovery and reader
 * (journal_open, journal_read, and journal_append after them). The input
 * is the content of up to three segment files, written to a fresh journal
 * directory, opened (recovering the last seq and cutting a torn tail) and
 * read with a cursor from an input-chosen since in small chunks, with
 * appends before or in the middle of the read and optionally a reopen.
 *
 * Input: 7 header bytes, then the segments' contents separated by "|SEG|"
 *   [0] flags: bits 0-1 segment count (1, 2, 3, 3); 2 fix up the CRC of
 *       every well-formed record (so mutations reach past the CRC check);
 *       3 append; 4 small journal_max_bytes (retention deletes segments);
 *       5 append after the first chunk read, not after the whole read;
 *       6 close, reopen and read everything again; 7 open far in the
 *       future (age retention deletes every segment but the newest)
 *   [1] since: the byte, 0xfe UINT64_MAX - 1, 0xff UINT64_MAX
 *   [2] read chunk (journal_read's max_bytes): 1 + the byte
 *   [3] bits 0-1 appends; bits 2-7 seg_max: 40 + 16 * n, n = 63 1 MiB
 *   [4..6] each segment's file name, its first seq: the byte (0 is
 *       ignored by journal_open), 0xff UINT64_MAX, 0xfe the out-of-range
 *       name 99999999999999999999.log
 *
 * What the reader delivers must be a record of the input (magic, length
 * and a CRC the harness recomputes with journal_crc32 over the same
 * header fields) or one the harness appended, in strictly increasing seq
 * order, every seq > since and < journal_next_seq(), no payload over
 * JOURNAL_MAX_RECORD; every appended record retention kept is read
 * back, and every record of the newest segment; journal_open
 * never fails on damaged content; a reopen never gives back a smaller
 * next seq (a seq must never name two events). A violation aborts.
 *
 * One temporary directory per process (in /dev/shm when there is one),
 * emptied before and after every input. FUZZ_JOURNAL_LOG=1 in the
 * environment shows the journal's log lines (when reproducing a crash).
 * Seeds (corpus/journal): valid segments of a few records, a torn tail, a
 * bad CRC, out-of-order names, made once with Python's zlib.crc32; the
 * regress_* files are the inputs that found the bugs test_journal.c's
 * test_fuzz_* cases cover. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAGIC 0x314a5443u /* "CTJ1", as src/journal.c */
#define HDR JOURNAL_HEADER_BYTES
#define PREFIX 7
#define SEP "|SEG|"
#define MAX_SEGS 3
#define MAX_APPENDS 3
#define MAX_READS 100000 /* each non-zero read delivers a record */

#define fail(...)                                                             \
    do {                                                                      \
        fprintf(stderr, "fuzz_journal: " __VA_ARGS__);                        \
        fputc('\n', stderr);                                                  \
        abort();                                                              \
    } while (0)

static char base_dir[64];
static char jdir[96];
static int64_t t_now;

static uint32_t get32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
           (uint32_t)b[3] << 24;
}

static uint64_t get64(const unsigned char *b)
{
    return (uint64_t)get32(b) | (uint64_t)get32(b + 4) << 32;
}

static void put32(unsigned char *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
}

static void empty_dir(void)
{
    DIR *d = opendir(jdir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[sizeof jdir + 300];
        snprintf(path, sizeof path, "%s/%s", jdir, e->d_name);
        if (unlink(path) < 0)
            fail("cannot remove %s: %s", path, strerror(errno));
    }
    closedir(d);
}

static void remove_dirs(void)
{
    empty_dir();
    rmdir(jdir);
    rmdir(base_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *root = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(base_dir, sizeof base_dir, "%s/fuzz_journal.XXXXXX", root);
    if (mkdtemp(base_dir) == NULL)
        fail("mkdtemp %s: %s", base_dir, strerror(errno));
    snprintf(jdir, sizeof jdir, "%s/journal", base_dir);
    atexit(remove_dirs);
    /* The warnings about cut tails are noise while fuzzing; to see what
     * the journal did with one input, run it with FUZZ_JOURNAL_LOG=1. */
    log_open(getenv("FUZZ_JOURNAL_LOG") ? LOGL_DEBUG : LOGL_ERROR, NULL);
    t_now = (int64_t)time(NULL);
    return 0;
}

/* A record as the input holds it (or as the harness appended it). */
struct ref {
    uint64_t seq;
    int64_t time;
    const unsigned char *data;
    size_t len;
};

struct check {
    struct journal *j;
    uint64_t since;
    uint64_t last; /* last delivered, when any */
    bool any;
    struct ref *refs;
    size_t n_refs;
    struct ref app[MAX_APPENDS];
    bool app_seen[MAX_APPENDS];
    size_t n_app;
    uint64_t *got; /* the seqs delivered, in order */
    size_t delivered, cap;
};

/* The well-formed records from the start of a segment's content up to
 * the first that is not (as the reader goes), into refs; with fix, their
 * CRCs are made right first. Returns the offset where it stopped. */
static size_t scan(unsigned char *p, size_t n, bool fix, struct ref *refs,
                   size_t *n_refs)
{
    size_t off = 0;
    while (n - off >= HDR) {
        unsigned char *h = p + off;
        uint32_t len = get32(h + 4);
        if (get32(h) != MAGIC || len > JOURNAL_MAX_RECORD ||
            len > n - off - HDR)
            break;
        uint32_t crc = journal_crc32(journal_crc32(0, h + 4, 20), h + HDR, len);
        if (fix)
            put32(h + 24, crc);
        else if (get32(h + 24) != crc)
            break;
        refs[(*n_refs)++] =
            (struct ref){get64(h + 8), (int64_t)get64(h + 16), h + HDR, len};
        off += HDR + len;
    }
    return off;
}

static bool same(const struct ref *r, uint64_t seq, int64_t t,
                 const char *data, size_t len)
{
    return r->seq == seq && r->time == t && r->len == len &&
           memcmp(r->data, data, len) == 0;
}

static void on_record(void *arg, uint64_t seq, int64_t t, const char *data,
                      size_t len)
{
    struct check *c = arg;
    uint64_t next = journal_next_seq(c->j);
    if (len > JOURNAL_MAX_RECORD)
        fail("seq %" PRIu64 ": payload of %zu bytes", seq, len);
    if (seq <= c->since)
        fail("seq %" PRIu64 " delivered, since %" PRIu64, seq, c->since);
    if (c->any && seq <= c->last)
        fail("seq %" PRIu64 " delivered after %" PRIu64, seq, c->last);
    if (seq >= next)
        fail("seq %" PRIu64 " delivered, next seq %" PRIu64, seq, next);
    c->any = true;
    c->last = seq;
    if (c->delivered == c->cap)
        fail("more records delivered than the input and appends hold");
    c->got[c->delivered++] = seq;
    for (size_t i = 0; i < c->n_app; i++)
        if (c->app[i].seq == seq) {
            if (!same(&c->app[i], seq, t, data, len))
                fail("appended seq %" PRIu64 " read back different", seq);
            c->app_seen[i] = true;
            return;
        }
    for (size_t i = 0; i < c->n_refs; i++)
        if (same(&c->refs[i], seq, t, data, len))
            return;
    fail("seq %" PRIu64 " (%zu bytes) is no valid record of the input", seq,
         len);
}

/* Reads until caught up; once == true: one chunk only. */
static void read_on(struct check *c, struct journal_cursor *cur,
                    size_t chunk, bool once)
{
    for (int i = 0; i < MAX_READS; i++) {
        size_t before = c->delivered;
        int n = journal_read(c->j, cur, chunk, on_record, c);
        if (n < 0)
            fail("journal_read: -1 (errno %s)", strerror(errno));
        if ((size_t)n != c->delivered - before)
            fail("journal_read returned %d for %zu record(s)", n,
                 c->delivered - before);
        if (n == 0 || once)
            return;
    }
    fail("journal_read never caught up");
}

/* Retention never deletes the newest segment, and all its seqs are above
 * those of older ones: each of its records past since is delivered. */
static void check_newest(struct check *c)
{
    const struct journal_seg *s = &c->j->segs[c->j->n_segs - 1];
    char path[sizeof jdir + 32];
    snprintf(path, sizeof path, "%s/%020" PRIu64 ".log", jdir, s->first);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fail("%s: %s", path, strerror(errno));
    size_t n = (size_t)s->bytes;
    unsigned char *p = malloc(n + 1); /* + 1: a longer file is seen */
    struct ref *refs = malloc((n / HDR + 1) * sizeof *refs);
    if (p == NULL || refs == NULL)
        abort();
    if (read(fd, p, n + 1) != (ssize_t)n)
        fail("%s: not %zu bytes long", path, n);
    close(fd);
    size_t n_refs = 0;
    /* ... and it is whole: recovery cut what was not */
    if (scan(p, n, false, refs, &n_refs) != n)
        fail("newest segment %" PRIu64 " has damage after open", s->first);
    for (size_t i = 0; i < n_refs; i++) {
        if (refs[i].seq < s->first || (i > 0 && refs[i].seq <= refs[i - 1].seq))
            fail("newest segment %" PRIu64 ": seq %" PRIu64 " out of order",
                 s->first, refs[i].seq);
        if (refs[i].seq <= c->since)
            continue;
        size_t k = 0;
        while (k < c->delivered && c->got[k] != refs[i].seq)
            k++;
        if (k == c->delivered)
            fail("seq %" PRIu64 " of the newest segment %" PRIu64
                 " never delivered", refs[i].seq, s->first);
    }
    free(refs);
    free(p);
}

static void do_appends(struct check *c, size_t count, char lines[][48])
{
    for (size_t i = 0; i < count; i++) {
        uint64_t seq = journal_next_seq(c->j);
        if (c->any && seq <= c->last)
            fail("next seq %" PRIu64 " after delivering %" PRIu64, seq,
                 c->last);
        int len = snprintf(lines[i], 48, "{\"seq\":%" PRIu64 "}\n", seq);
        if (seq > (uint64_t)INT64_MAX) {
            /* The seq space is used up (a record of the input has
             * INT64_MAX): the append must be refused and change nothing. */
            if (journal_append(c->j, t_now, seq, lines[i], (size_t)len) == 0 ||
                errno != ERANGE || journal_next_seq(c->j) != seq ||
                journal_take_seq(c->j) != 0)
                fail("seq %" PRIu64 " past INT64_MAX not refused", seq);
            return;
        }
        if (journal_append(c->j, t_now, seq, lines[i], (size_t)len) < 0)
            fail("journal_append seq %" PRIu64 ": %s", seq, strerror(errno));
        c->app[c->n_app++] = (struct ref){seq, t_now,
                                          (const unsigned char *)lines[i],
                                          (size_t)len};
    }
}

static void open_or_fail(struct journal *j, uint64_t max_bytes,
                         uint64_t seg_max, int64_t now)
{
    char err[512] = "";
    if (journal_open(j, jdir, max_bytes, 3600, seg_max, now, err, sizeof err) <
        0)
        fail("journal_open: %s", err);
}

static void write_segment(uint8_t name, const unsigned char *p, size_t n)
{
    char path[sizeof jdir + 32];
    if (name == 0xfe)
        snprintf(path, sizeof path, "%s/99999999999999999999.log", jdir);
    else
        snprintf(path, sizeof path, "%s/%020" PRIu64 ".log", jdir,
                 name == 0xff ? UINT64_MAX : (uint64_t)name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        fail("%s: %s", path, strerror(errno));
    if (n > 0 && write(fd, p, n) != (ssize_t)n)
        fail("%s: write: %s", path, strerror(errno));
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < PREFIX)
        return 0;
    uint8_t flags = data[0];
    size_t n_segs = 1 + (flags & 3);
    if (n_segs > MAX_SEGS)
        n_segs = MAX_SEGS;
    bool fix = flags & 4, append = flags & 8, small = flags & 16;
    bool interleave = flags & 32, reopen = flags & 64, late = flags & 128;
    uint64_t since = data[1] == 0xff   ? UINT64_MAX
                     : data[1] == 0xfe ? UINT64_MAX - 1
                                       : data[1];
    size_t chunk = 1 + (size_t)data[2];
    size_t n_appends = append ? data[3] & 3 : 0;
    uint64_t seg_max = data[3] >> 2;
    seg_max = seg_max == 63 ? 1u << 20 : 40 + 16 * seg_max;
    uint64_t max_bytes = small ? 256 : 1u << 30;
    int64_t now = late ? t_now + 10 * 3600 : t_now;

    size_t n = size - PREFIX;
    unsigned char *buf = malloc(n ? n : 1);
    struct check c = {.since = since};
    c.refs = malloc((n / HDR + 1) * sizeof *c.refs);
    c.cap = n / HDR + MAX_APPENDS;
    c.got = malloc(c.cap * sizeof *c.got);
    if (buf == NULL || c.refs == NULL || c.got == NULL)
        abort();
    memcpy(buf, data + PREFIX, n);

    /* Segment k is the content up to the k-th separator; the last one,
     * all the rest. */
    empty_dir();
    if (mkdir(jdir, 0750) < 0 && errno != EEXIST)
        fail("mkdir %s: %s", jdir, strerror(errno));
    size_t pos = 0;
    for (size_t k = 0; k < n_segs; k++) {
        size_t end = n;
        if (k + 1 < n_segs) {
            unsigned char *s = memmem(buf + pos, n - pos, SEP, strlen(SEP));
            if (s != NULL)
                end = (size_t)(s - buf);
        }
        if (fix)
            scan(buf + pos, end - pos, true, c.refs, &c.n_refs);
        c.n_refs = 0;
        write_segment(data[4 + k], buf + pos, end - pos);
        pos = end < n ? end + strlen(SEP) : n;
    }
    /* The reference records, from the (fixed) contents as written. */
    pos = 0;
    for (size_t k = 0; k < n_segs; k++) {
        size_t end = n;
        if (k + 1 < n_segs) {
            unsigned char *s = memmem(buf + pos, n - pos, SEP, strlen(SEP));
            if (s != NULL)
                end = (size_t)(s - buf);
        }
        scan(buf + pos, end - pos, false, c.refs, &c.n_refs);
        pos = end < n ? end + strlen(SEP) : n;
    }

    struct journal j;
    c.j = &j;
    open_or_fail(&j, max_bytes, seg_max, now);
    if (journal_next_seq(&j) == 0)
        fail("next seq 0 after open");

    char lines[MAX_APPENDS][48];
    struct journal_cursor cur;
    journal_cursor_init(&cur, since);
    if (interleave) {
        read_on(&c, &cur, chunk, true);
        do_appends(&c, n_appends, lines);
        read_on(&c, &cur, chunk, false);
    } else {
        read_on(&c, &cur, chunk, false);
        do_appends(&c, n_appends, lines);
        read_on(&c, &cur, chunk, false);
    }
    /* Retention deletes oldest first, so an appended record is still
     * there (and must have been read) when a segment at or below its seq
     * is; a rotation may have put it in a segment deleted since. */
    for (size_t i = 0; i < c.n_app; i++)
        if (c.app[i].seq > since && c.app[i].seq >= j.segs[0].first &&
            !c.app_seen[i])
            fail("appended seq %" PRIu64 " never read back", c.app[i].seq);
    check_newest(&c);

    if (reopen) {
        uint64_t next = journal_next_seq(&j);
        journal_close(&j);
        open_or_fail(&j, max_bytes, seg_max, now);
        if (journal_next_seq(&j) < next)
            fail("next seq %" PRIu64 " after reopen, %" PRIu64 " before",
                 journal_next_seq(&j), next);
        /* everything again, from the start */
        c.since = 0;
        c.any = false;
        c.delivered = 0;
        journal_cursor_init(&cur, 0);
        read_on(&c, &cur, chunk, false);
        check_newest(&c);
    }
    journal_close(&j);
    empty_dir();
    free(c.got);
    free(c.refs);
    free(buf);
    return 0;
}
