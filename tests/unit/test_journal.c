/* Unit tests of the event journal: append and read back, the CRC, a torn
 * or corrupted last record cut off on reopen, seq continuing across
 * reopen, rotation, retention by size and by age (the clock is a
 * parameter), and replay from N in order, also across segments. The
 * test_fuzz_* cases are the damaged journals tests/fuzz/fuzz_journal
 * found mishandled (docs/reliability.md, "Fuzzing"). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "journal.h"
#include "testutil.h"

#define T0 1795617972 /* a fixed "now" */

/* Records collected by journal_read. */
struct got {
    uint64_t seq[4096];
    int64_t time[4096];
    char line[4096][64];
    size_t n;
};

/* Every test that opens a journal: a private directory for it and the
 * records read back (too large for the stack). The test owns its
 * struct journal and closes it; teardown removes the directory. */
struct fixture {
    char dir[TU_DIR_MAX];
    struct got got;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL || tu_mkdtemp(f->dir, sizeof f->dir, "journal") != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (tu_rmtree(f->dir) != 0)
        return -1;
    free(f);
    return 0;
}

static void collect(void *arg, uint64_t seq, int64_t t, const char *data,
                    size_t len)
{
    struct got *g = arg;
    assert_true(g->n < 4096);
    g->seq[g->n] = seq;
    g->time[g->n] = t;
    snprintf(g->line[g->n], sizeof g->line[g->n], "%.*s", (int)len, data);
    g->n++;
}

static void open_j(struct journal *j, const char *dir, uint64_t max_bytes,
                   uint64_t max_age, uint64_t seg, int64_t now)
{
    char err[256] = "";
    assert_int_equal(journal_open(j, dir, max_bytes, max_age, seg, now, err,
                                  sizeof err),
                     0);
}

/* The limits most tests use: 1 MiB, an hour, 64 KiB segments, at T0. */
static void open_std(struct journal *j, const struct fixture *f)
{
    open_j(j, f->dir, 1 << 20, 3600, 1 << 16, T0);
}

static void append_n(struct journal *j, int n, int64_t now)
{
    for (int i = 0; i < n; i++) {
        char line[64];
        uint64_t seq = journal_next_seq(j);
        int len = snprintf(line, sizeof line, "{\"seq\":%llu}\n",
                           (unsigned long long)seq);
        assert_int_equal(journal_append(j, now, seq, line, (size_t)len), 0);
    }
}

static void read_all(struct journal *j, uint64_t after, struct got *g)
{
    struct journal_cursor cur;
    journal_cursor_init(&cur, after);
    g->n = 0;
    int n;
    /* Tiny chunks: exercises resuming from the cursor. */
    while ((n = journal_read(j, &cur, 30, collect, g)) > 0)
        ;
    assert_int_equal(n, 0);
}

static void newest_segment(const char *dir, char *path, size_t len)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    char best[64] = "";
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".log") && strcmp(e->d_name, best) > 0)
            snprintf(best, sizeof best, "%s", e->d_name);
    closedir(d);
    assert_true(best[0] != '\0');
    tu_path(path, len, dir, best);
}

/* Appends n records at T0 to the fixture's journal and closes it; path
 * gets its newest segment file, the one a damage test then damages. */
static void append_closed(struct fixture *f, int n, char *path, size_t len)
{
    struct journal j;
    open_std(&j, f);
    append_n(&j, n, T0);
    journal_close(&j);
    newest_segment(f->dir, path, len);
}

/* XORs the byte at off of path with mask. */
static void flip_byte(const char *path, off_t off, unsigned char mask)
{
    int fd = open(path, O_RDWR);
    unsigned char b;
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= mask;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

static int count_segments(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".log") != NULL;
    closedir(d);
    return n;
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* Writes segment file name (e.g. "00000000000000000001.log") holding
 * records with the given seqs, each as journal_append writes it, with the
 * payload {"seq":N}\n. */
static void write_segment(const char *dir, const char *name,
                          const uint64_t *seqs, size_t n)
{
    char path[256];
    tu_path(path, sizeof path, dir, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    for (size_t i = 0; i < n; i++) {
        unsigned char rec[JOURNAL_HEADER_BYTES + 64];
        char *payload = (char *)rec + JOURNAL_HEADER_BYTES;
        int len = snprintf(payload, 64, "{\"seq\":%llu}\n",
                           (unsigned long long)seqs[i]);
        uint64_t fields[3] = {(uint64_t)len, seqs[i], (uint64_t)T0};
        uint32_t magic = 0x314a5443u;
        for (int b = 0; b < 4; b++)
            rec[b] = (unsigned char)(magic >> (8 * b));
        for (int b = 0; b < 4; b++) /* len is 32 bits, seq and time 64 */
            rec[4 + b] = (unsigned char)(fields[0] >> (8 * b));
        for (int b = 0; b < 8; b++) {
            rec[8 + b] = (unsigned char)(fields[1] >> (8 * b));
            rec[16 + b] = (unsigned char)(fields[2] >> (8 * b));
        }
        uint32_t crc = journal_crc32(journal_crc32(0, rec + 4, 20), payload,
                                     (size_t)len);
        for (int b = 0; b < 4; b++) {
            rec[24 + b] = (unsigned char)(crc >> (8 * b));
            rec[28 + b] = 0;
        }
        size_t size = JOURNAL_HEADER_BYTES + (size_t)len;
        assert_int_equal(fwrite(rec, 1, size, fp), size);
    }
    assert_int_equal(fclose(fp), 0);
}

static void test_crc32_known(void **state)
{
    (void)state;
    /* The standard check value of CRC-32/IEEE. */
    assert_int_equal(journal_crc32(0, "123456789", 9), 0xcbf43926u);
    assert_int_equal(journal_crc32(journal_crc32(0, "1234", 4), "56789", 5),
                     0xcbf43926u);
}

static void test_append_read_back(void **state)
{
    struct fixture *f = *state;
    struct journal j;
    struct got *g = &f->got;
    open_std(&j, f);
    assert_int_equal(journal_next_seq(&j), 1);
    assert_int_equal(journal_first_seq(&j), 0);
    append_n(&j, 5, T0);
    read_all(&j, 0, g);
    assert_int_equal(g->n, 5);
    for (size_t i = 0; i < 5; i++) {
        char want[64];
        snprintf(want, sizeof want, "{\"seq\":%zu}\n", i + 1);
        assert_int_equal(g->seq[i], i + 1);
        assert_int_equal(g->time[i], T0);
        assert_string_equal(g->line[i], want);
    }
    assert_int_equal(journal_first_seq(&j), 1);
    /* from N: only later ones, in order */
    read_all(&j, 3, g);
    assert_int_equal(g->n, 2);
    assert_int_equal(g->seq[0], 4);
    assert_int_equal(g->seq[1], 5);
    read_all(&j, 5, g);
    assert_int_equal(g->n, 0);
    read_all(&j, 99, g);
    assert_int_equal(g->n, 0);
    journal_close(&j);
}

static void test_seq_continues_after_reopen(void **state)
{
    struct fixture *f = *state;
    struct journal j;
    struct got *g = &f->got;
    open_std(&j, f);
    append_n(&j, 3, T0);
    journal_close(&j);
    open_std(&j, f);
    assert_int_equal(journal_next_seq(&j), 4);
    append_n(&j, 2, T0);
    read_all(&j, 0, g);
    assert_int_equal(g->n, 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(g->seq[i], i + 1);
    journal_close(&j);
}

/* A crash mid-write: the last record is cut short. */
static void test_torn_tail_truncated(void **state)
{
    struct fixture *f = *state;
    struct journal j;
    char path[256];
    struct got *g = &f->got;
    append_closed(f, 4, path, sizeof path);
    off_t size = file_size(path);
    assert_int_equal(truncate(path, size - 3), 0);
    open_std(&j, f);
    /* record 4 is gone, and its bytes with it */
    read_all(&j, 0, g);
    assert_int_equal(g->n, 3);
    assert_int_equal(g->seq[2], 3);
    assert_true(file_size(path) < size - 3);
    /* seq 4 is skipped, never reused for another event */
    assert_int_equal(journal_next_seq(&j), 5);
    append_n(&j, 1, T0);
    read_all(&j, 0, g);
    assert_int_equal(g->n, 4);
    assert_int_equal(g->seq[2], 3);
    assert_int_equal(g->seq[3], 5);
    journal_close(&j);
    /* a torn header alone (a few bytes of the next record) also goes;
     * seq 5 went to a new segment (the cut starts one) */
    newest_segment(f->dir, path, sizeof path);
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "CTJ1xx", 6), 6);
    close(fd);
    open_std(&j, f);
    assert_int_equal(journal_next_seq(&j), 7);
    read_all(&j, 0, g);
    assert_int_equal(g->n, 4);
    assert_int_equal(g->seq[3], 5);
    journal_close(&j);
}

/* A flipped payload byte in the last record: CRC mismatch, cut off. */
static void test_flipped_byte_detected(void **state)
{
    struct fixture *f = *state;
    struct journal j;
    char path[256];
    struct got *g = &f->got;
    append_closed(f, 3, path, sizeof path);
    off_t size = file_size(path);
    flip_byte(path, size - 4, 0x20);
    open_std(&j, f);
    read_all(&j, 0, g);
    assert_int_equal(g->n, 2);
    assert_int_equal(journal_next_seq(&j), 4);
    assert_true(file_size(path) < size);
    journal_close(&j);

    /* and one flipped bit in a header's seq field, also caught */
    /* seq 4, the last record, in a new segment (the cut started one) */
    append_closed(f, 1, path, sizeof path);
    size = file_size(path);
    off_t rec = size - (JOURNAL_HEADER_BYTES + (off_t)strlen("{\"seq\":4}\n"));
    flip_byte(path, rec + 8, 0x04);
    open_std(&j, f);
    assert_int_equal(file_size(path), rec);
    read_all(&j, 0, g);
    assert_int_equal(g->n, 2);
    assert_int_equal(g->seq[1], 2);
    journal_close(&j);
}

static void test_rotation_and_size_retention(void **state)
{
    struct fixture *f = *state;
    struct journal j;
    struct got *g = &f->got;
    /* each record is 32 + 11..13 bytes; segments of at most 500 bytes,
     * at most 2000 bytes in all */
    open_j(&j, f->dir, 2000, 3600, 500, T0);
    append_n(&j, 200, T0);
    assert_true(count_segments(f->dir) >= 4);
    uint64_t total = 0;
    for (size_t i = 0; i < j.n_segs; i++) {
        assert_true(j.segs[i].bytes <= 500);
        total += j.segs[i].bytes;
    }
    assert_true(total <= 2000 + 500);
    assert_int_equal((int)j.n_segs, count_segments(f->dir));
    /* what is left is a contiguous tail ending at 200, oldest first */
    uint64_t first = journal_first_seq(&j);
    assert_true(first > 1);
    read_all(&j, 0, g);
    assert_int_equal(g->n, 200 - first + 1);
    for (size_t i = 0; i < g->n; i++)
        assert_int_equal(g->seq[i], first + i);
    /* since older than the oldest retained: what exists, from first */
    read_all(&j, 1, g);
    assert_int_equal(g->seq[0], first);
    /* replay from the middle of an older segment */
    read_all(&j, first + 5, g);
    assert_int_equal(g->seq[0], first + 6);
    assert_int_equal(g->seq[g->n - 1], 200);
    journal_close(&j);
    /* reopen finds the same segments and continues */
    open_j(&j, f->dir, 2000, 3600, 500, T0);
    assert_int_equal(journal_next_seq(&j), 201);
    assert_int_equal(journal_first_seq(&j), first);
    journal_close(&j);
}

/* A cursor whose segment retention deleted goes on from the oldest. */
static void test_cursor_survives_retention(void **state)
{
    struct fixture *f = *state;
    struct journal j;
    struct journal_cursor cur;
    struct got *g = &f->got;
    open_j(&j, f->dir, 2000, 3600, 500, T0);
    append_n(&j, 20, T0);
    journal_cursor_init(&cur, 0);
    assert_true(journal_read(&j, &cur, 1, collect, g) == 1);
    append_n(&j, 200, T0);
    while (journal_read(&j, &cur, 100, collect, g) > 0)
        ;
    uint64_t first = journal_first_seq(&j);
    assert_int_equal(g->seq[0], 1);
    assert_int_equal(g->seq[g->n - 1], 220);
    for (size_t i = 1; i < g->n; i++)
        assert_true(g->seq[i] > g->seq[i - 1]);
    assert_true(g->n >= 220 - first + 1);
    journal_close(&j);
}

static void test_age_retention(void **state)
{
    struct fixture *f = *state;
    struct journal j;
    struct got *g = &f->got;
    open_j(&j, f->dir, 1 << 20, 3600, 200, T0);
    append_n(&j, 10, T0);        /* old by the time we look */
    append_n(&j, 10, T0 + 3000); /* fresh; retention at rotation keeps all */
    size_t before = j.n_segs;
    assert_true(before >= 3);
    journal_retain(&j, T0 + 4000);
    assert_true(j.n_segs < before);
    uint64_t first = journal_first_seq(&j);
    assert_true(first > 1 && first <= 11);
    read_all(&j, 0, g);
    for (size_t i = 0; i < g->n; i++)
        assert_int_equal(g->seq[i], first + i);
    assert_int_equal(g->seq[g->n - 1], 20);
    /* much later: everything but the newest segment goes; seq goes on */
    journal_retain(&j, T0 + 10 * 3600);
    assert_int_equal(j.n_segs, 1);
    assert_int_equal(count_segments(f->dir), 1);
    journal_close(&j);
    /* age on reopen uses the files' mtime */
    open_j(&j, f->dir, 1 << 20, 3600, 200, time(NULL) + 100 * 3600);
    assert_int_equal(journal_next_seq(&j), 21);
    journal_close(&j);
}

/* The seq skipped at a cut was only in memory: a second restart with no
 * event in between handed it out again, for a different event. */
static void test_fuzz_cut_seq_kept_across_reopen(void **state)
{
    struct fixture *f = *state;
    struct journal j;
    char path[256];
    struct got *g = &f->got;
    append_closed(f, 4, path, sizeof path);
    assert_int_equal(truncate(path, file_size(path) - 3), 0);
    open_std(&j, f);
    assert_int_equal(journal_next_seq(&j), 5); /* 4 is skipped */
    journal_close(&j);
    open_std(&j, f);
    assert_int_equal(journal_next_seq(&j), 5); /* and still is */
    append_n(&j, 1, T0);
    journal_close(&j);
    open_std(&j, f);
    assert_int_equal(journal_next_seq(&j), 6);
    read_all(&j, 0, g);
    assert_int_equal(g->n, 4);
    assert_int_equal(g->seq[2], 3);
    assert_int_equal(g->seq[3], 5);
    journal_close(&j);
}

/* A segment named 2^64 - 1 (or a record with that seq) made the next seq
 * wrap to 0; names and seqs above INT64_MAX (seq is a JSON integer) are
 * damage now: such a file is ignored, such a record cut. */
static void test_fuzz_seq_out_of_range(void **state)
{
    struct fixture *f = *state;
    struct journal j;
    struct got *g = &f->got;
    const uint64_t seqs[] = {1, 2, UINT64_MAX};
    write_segment(f->dir, "00000000000000000001.log", seqs, 3);
    write_segment(f->dir, "18446744073709551615.log", NULL, 0);
    write_segment(f->dir, "99999999999999999999.log", NULL, 0);
    write_segment(f->dir, "09223372036854775808.log", NULL, 0);
    open_std(&j, f);
    assert_int_equal(journal_next_seq(&j), 4); /* 1, 2, and 3 skipped */
    read_all(&j, 0, g);
    assert_int_equal(g->n, 2);
    assert_int_equal(g->seq[1], 2);
    append_n(&j, 1, T0);
    read_all(&j, 2, g);
    assert_int_equal(g->n, 1);
    assert_int_equal(g->seq[0], 4);
    journal_close(&j);
}

/* A record with seq INT64_MAX, then a torn tail: the cut opened a new
 * segment named 2^63 (a name the next open ignores), and an append took
 * seq 2^63 + 1, which no reader can ask for. The seq space is used up
 * now: appends and take_seq refuse, and nothing is written. */
static void test_fuzz_seq_exhausted(void **state)
{
    struct fixture *f = *state;
    struct journal j;
    char path[256];
    const uint64_t seqs[] = {5, (uint64_t)INT64_MAX};
    write_segment(f->dir, "00000000000000000005.log", seqs, 2);
    snprintf(path, sizeof path, "%s/00000000000000000005.log", f->dir);
    FILE *fp = fopen(path, "ab");
    assert_non_null(fp);
    fputs("CTJ1", fp); /* a torn header */
    fclose(fp);
    open_std(&j, f);
    uint64_t next = journal_next_seq(&j);
    assert_int_equal(next, (uint64_t)INT64_MAX + 1);
    assert_int_equal(count_segments(f->dir), 1);
    errno = 0;
    assert_int_equal(journal_append(&j, T0, journal_next_seq(&j), "x", 1),
                     -1);
    assert_int_equal(errno, ERANGE);
    assert_int_equal(journal_append(&j, T0, 0, "x", 1), -1);
    assert_int_equal(journal_take_seq(&j), 0);
    assert_int_equal(journal_next_seq(&j), next);
    journal_close(&j);
    assert_int_equal(count_segments(f->dir), 1);
    open_std(&j, f); /* and the same after a reopen */
    assert_int_equal(journal_next_seq(&j), next);
    journal_close(&j);
}

/* An older segment holding a seq at or past the next segment's name:
 * the reader delivered it although it was >= journal_next_seq(). */
static void test_fuzz_seq_past_segment_end(void **state)
{
    struct fixture *f = *state;
    struct journal j;
    struct got *g = &f->got;
    const uint64_t old[] = {1, 2, 20, 21};
    write_segment(f->dir, "00000000000000000001.log", old, 4);
    write_segment(f->dir, "00000000000000000010.log", NULL, 0);
    open_std(&j, f);
    assert_int_equal(journal_next_seq(&j), 10);
    read_all(&j, 0, g);
    assert_int_equal(g->n, 2); /* 20 and 21 are not delivered */
    assert_int_equal(g->seq[1], 2);
    append_n(&j, 1, T0);
    read_all(&j, 0, g);
    assert_int_equal(g->n, 3);
    assert_int_equal(g->seq[2], 10);
    journal_close(&j);
}

/* The newest segment starting with a seq below its name: recovery took
 * that as the last seq, below seqs already handed out (and a later cut's
 * new segment sorted before the old newest one). */
static void test_fuzz_seq_below_segment_name(void **state)
{
    struct fixture *f = *state;
    struct journal j;
    struct got *g = &f->got;
    const uint64_t old[] = {1, 2, 3}, newest[] = {10, 11};
    write_segment(f->dir, "00000000000000000001.log", old, 3);
    write_segment(f->dir, "00000000000000000020.log", newest, 2);
    open_std(&j, f);
    /* the whole segment is cut; 20 is skipped as any cut record is */
    assert_int_equal(journal_next_seq(&j), 21);
    append_n(&j, 1, T0);
    journal_close(&j);
    open_std(&j, f);
    assert_int_equal(journal_next_seq(&j), 22);
    read_all(&j, 0, g);
    assert_int_equal(g->n, 4);
    assert_int_equal(g->seq[2], 3);
    assert_int_equal(g->seq[3], 21);
    journal_close(&j);
}

static void test_bad_dir_fails(void **state)
{
    (void)state;
    struct journal j;
    char err[256] = "";
    assert_int_equal(journal_open(&j, "/proc/nonexistent/journal", 1 << 20,
                                  3600, 1 << 16, T0, err, sizeof err),
                     -1);
    assert_true(strstr(err, "journal") != NULL);
    journal_close(&j);
}

/* ---- the seq high-water mark (issue 10 bug 4) -------------------------- */

/* What a crash leaves: descriptors gone, nothing lowered or synced. */
static void crash_j(struct journal *j)
{
    close(j->fd);
    seqmark_close(&j->mark);
    free(j->segs);
    memset(j, 0, sizeof *j);
}

/* The stored mark as the newest valid slot says (0: none). */
static uint64_t stored_mark(const char *dir)
{
    struct seqmark m;
    uint64_t mark;
    assert_int_equal(seqmark_open(&m, dir, &mark), 0);
    seqmark_close(&m);
    return mark;
}

/* A seq that went out live but never reached the journal (disk full) is
 * not given again after a crash, nor after a clean restart. */
static void test_mark_taken_seq_never_reused(void **state)
{
    struct fixture *f = *state;
    struct journal j;
    open_std(&j, f);
    append_n(&j, 3, T0);
    assert_int_equal(journal_take_seq(&j), 4); /* sent live, not written */
    crash_j(&j);
    open_std(&j, f);
    /* Everything up to the reserved block may have gone out. */
    assert_true(journal_next_seq(&j) > 4);
    assert_int_equal(journal_next_seq(&j), JOURNAL_SEQ_BLOCK + 1);
    journal_close(&j);

    /* Clean close: the mark comes down to the last seq handed out, so
     * the next start skips nothing and reuses nothing. */
    open_std(&j, f);
    uint64_t s = journal_take_seq(&j);
    assert_int_equal(s, JOURNAL_SEQ_BLOCK + 1);
    journal_close(&j);
    assert_int_equal(stored_mark(f->dir), s);
    open_std(&j, f);
    assert_int_equal(journal_next_seq(&j), s + 1);
    journal_close(&j);
}

/* One store per JOURNAL_SEQ_BLOCK seqs, each a block above the seq. */
static void test_mark_reserves_blocks(void **state)
{
    struct fixture *f = *state;
    struct journal j;
    open_std(&j, f);
    assert_int_equal(journal_take_seq(&j), 1);
    assert_int_equal(stored_mark(f->dir), JOURNAL_SEQ_BLOCK);
    for (uint64_t k = 2; k <= JOURNAL_SEQ_BLOCK; k++)
        assert_int_equal(journal_take_seq(&j), k);
    assert_int_equal(stored_mark(f->dir), JOURNAL_SEQ_BLOCK);
    assert_int_equal(journal_take_seq(&j), JOURNAL_SEQ_BLOCK + 1);
    assert_int_equal(stored_mark(f->dir), 2 * JOURNAL_SEQ_BLOCK);
    /* journal_append reserves too, for callers that never take. */
    append_n(&j, 1, T0);
    journal_close(&j);
    assert_int_equal(stored_mark(f->dir), JOURNAL_SEQ_BLOCK + 2);
}

/* A mark that cannot be stored: no seq is handed out (the event goes
 * without one) and no record is written; once it can, seqs go on. */
static void test_mark_unstorable(void **state)
{
    struct fixture *f = *state;
    struct journal j;
    open_std(&j, f);
    append_n(&j, 2, T0);
    j.reserved = 2; /* as if the block were used up */
    int good = j.mark.fd;
    j.mark.fd = open("/dev/null", O_RDONLY | O_CLOEXEC); /* pwrite fails */
    assert_true(j.mark.fd >= 0);
    assert_int_equal(journal_take_seq(&j), 0);
    assert_int_equal(journal_take_seq(&j), 0);
    assert_int_equal(journal_append(&j, T0, 3, "{}\n", 3), -1);
    close(j.mark.fd);
    j.mark.fd = good;
    assert_int_equal(journal_take_seq(&j), 4); /* 3 was tried: spent */
    journal_close(&j);
}

/* A store torn by a crash damages only the slot being written: the other
 * slot's mark still counts. Both damaged: the journal alone decides. */
static void test_mark_torn_slot(void **state)
{
    struct fixture *f = *state;
    struct journal j;
    char path[256];
    tu_path(path, sizeof path, f->dir, SEQMARK_FILE);
    open_std(&j, f);
    append_n(&j, 1, T0);              /* mark 1000, generation 1 */
    j.reserved = 1;
    assert_int_equal(journal_take_seq(&j), 2); /* mark 1001, generation 2 */
    crash_j(&j);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    /* generation 2 is in slot 0: tear it */
    assert_int_equal(pwrite(fd, "\xff\xff", 2, 14), 2);
    open_std(&j, f);
    assert_int_equal(journal_next_seq(&j), JOURNAL_SEQ_BLOCK + 1);
    crash_j(&j);
    assert_int_equal(pwrite(fd, "\xff\xff", 2, SEQMARK_SLOT + 14), 2);
    close(fd);
    open_std(&j, f);
    assert_int_equal(journal_next_seq(&j), 2); /* last journaled: 1 */
    journal_close(&j);
}

/* A mark file cut short (a full disk while it was created) is made anew,
 * and an unreasonable mark is ignored rather than wrapping seqs. */
static void test_mark_short_file(void **state)
{
    struct fixture *f = *state;
    struct journal j;
    char path[256];
    tu_path(path, sizeof path, f->dir, SEQMARK_FILE);
    open_std(&j, f);
    append_n(&j, 2, T0);
    journal_close(&j);
    assert_int_equal(truncate(path, 100), 0);
    open_std(&j, f);
    assert_int_equal(journal_next_seq(&j), 3);
    assert_int_equal(file_size(path), SEQMARK_BYTES);
    assert_int_equal(seqmark_store(&j.mark, UINT64_MAX - 5), 0);
    crash_j(&j);
    open_std(&j, f);
    assert_int_equal(journal_next_seq(&j), 3);
    journal_close(&j);
}

/* The append succeeded but its sync failed (or a power cut came first):
 * the record is gone from the file after the restart, and its seq, which
 * went out live, is still never given again. */
static void test_mark_covers_lost_unsynced_record(void **state)
{
    struct fixture *f = *state;
    struct journal j;
    char path[256];
    open_std(&j, f);
    append_n(&j, 2, T0);
    uint64_t seq = journal_take_seq(&j);
    assert_int_equal(seq, 3);
    newest_segment(f->dir, path, sizeof path);
    off_t before = file_size(path);
    assert_int_equal(journal_write(&j, T0, seq, "{\"seq\":3}\n", 10), 0);
    crash_j(&j); /* no sync, no close */
    assert_int_equal(truncate(path, before), 0); /* the page never landed */
    open_std(&j, f);
    assert_true(journal_next_seq(&j) > seq);
    journal_close(&j);
}

/* The sync hook's record of what it was told. */
struct syncs {
    int n, failed;
    double total;
};

static void on_sync(void *arg, double seconds, bool failed)
{
    struct syncs *s = arg;
    s->n++;
    s->failed += failed;
    s->total += seconds;
}

static void write_n(struct journal *j, int n)
{
    for (int i = 0; i < n; i++) {
        char line[64];
        uint64_t seq = journal_next_seq(j);
        int len = snprintf(line, sizeof line, "{\"seq\":%llu}\n",
                           (unsigned long long)seq);
        assert_int_equal(journal_write(j, T0, seq, line, (size_t)len), 0);
    }
}

/* ctid_journal_unsynced_events and ctid_journal_sync_seconds: records
 * written are counted until their fdatasync, which the hook hears of
 * once per sync (not per record), and a sync with nothing to do is none. */
static void test_sync_hook_and_unsynced_count(void **state)
{
    struct fixture *f = *state;
    struct journal j;
    struct syncs s = {0};
    open_std(&j, f);
    journal_set_sync_hook(&j, on_sync, &s);
    assert_int_equal(j.unsynced_records, 0);
    write_n(&j, 3);
    assert_int_equal(j.unsynced_records, 3);
    assert_int_equal(s.n, 0);
    assert_int_equal(journal_sync(&j), 0);
    assert_int_equal(j.unsynced_records, 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.failed, 0);
    assert_true(s.total >= 0 && s.total < 60);
    assert_int_equal(journal_sync(&j), 0); /* nothing unsynced: no sync */
    assert_int_equal(s.n, 1);
    append_n(&j, 2, T0); /* append = write + sync, one sync each */
    assert_int_equal(s.n, 3);
    assert_int_equal(j.unsynced_records, 0);
    journal_close(&j);
    assert_int_equal(j.unsynced_records, 0);
    assert_null(j.on_sync); /* closed: the hook is gone with the rest */
}

/* A rotation syncs the old segment's records first: the hook hears of it
 * and the count starts again in the new segment. */
static void test_sync_hook_on_rotation(void **state)
{
    struct fixture *f = *state;
    struct journal j;
    struct syncs s = {0};
    open_j(&j, f->dir, 1 << 20, 3600, 200, T0); /* ~4 records a segment */
    journal_set_sync_hook(&j, on_sync, &s);
    write_n(&j, 4);
    assert_int_equal(count_segments(f->dir), 1);
    assert_int_equal(s.n, 0);
    write_n(&j, 2);
    assert_int_equal(count_segments(f->dir), 2);
    assert_int_equal(s.n, 1);
    assert_true(j.unsynced_records >= 1 && j.unsynced_records <= 2);
    assert_int_equal(journal_sync(&j), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(j.unsynced_records, 0);
    journal_close(&j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_known),
        cmocka_unit_test_setup_teardown(test_append_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_continues_after_reopen,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_truncated, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_flipped_byte_detected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rotation_and_size_retention,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_survives_retention, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_age_retention, setup, teardown),
        cmocka_unit_test(test_bad_dir_fails),
        cmocka_unit_test_setup_teardown(test_sync_hook_and_unsynced_count,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_hook_on_rotation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_mark_taken_seq_never_reused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_mark_covers_lost_unsynced_record,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_mark_reserves_blocks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_mark_unstorable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_mark_torn_slot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mark_short_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fuzz_cut_seq_kept_across_reopen,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_fuzz_seq_out_of_range, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fuzz_seq_exhausted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fuzz_seq_past_segment_end, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fuzz_seq_below_segment_name,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
