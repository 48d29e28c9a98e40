/* seqmark: the persisted event seq high-water mark (include/seqmark.h
 * says what it owns and why). A slot is: magic "CTM1", generation (u64),
 * mark (u64), CRC-32 of bytes 4..20, little-endian, then zeros to 512. */
#include "seqmark.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32.h"
#include "log.h"

#define SEQMARK_MAGIC 0x314d5443u /* "CTM1" little-endian */
#define SLOT_USED 24              /* bytes of a slot that carry data */

static void put_le(unsigned char *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        b[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *b, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

/* Returns 1 with gen and mark from a valid slot, 0 for an invalid one. */
static int slot_parse(const unsigned char *b, uint64_t *gen, uint64_t *mark)
{
    if (get_le(b, 4) != SEQMARK_MAGIC ||
        get_le(b + 20, 4) != journal_crc32(0, b + 4, 16))
        return 0;
    *gen = get_le(b + 4, 8);
    *mark = get_le(b + 12, 8);
    return 1;
}

/* Creates the file at its full size (zeros: no valid slot yet), synced
 * with its directory, so later stores never allocate. */
static int seqmark_create(struct seqmark *m)
{
    char tmp[PATH_MAX + 8];
    static const unsigned char zeros[SEQMARK_BYTES];
    snprintf(tmp, sizeof tmp, "%s.tmp", m->path);
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    if (pwrite(fd, zeros, sizeof zeros, 0) != (ssize_t)sizeof zeros) {
        int saved = errno ? errno : ENOSPC;
        close(fd);
        unlink(tmp);
        errno = saved;
        return -1;
    }
    if (fdatasync(fd) < 0 || rename(tmp, m->path) < 0) {
        int saved = errno;
        close(fd);
        unlink(tmp);
        errno = saved;
        return -1;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", m->path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL) {
        *slash = '\0';
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            if (fsync(dfd) < 0)
                log_warn("%s: fsync: %s", dir, strerror(errno));
            close(dfd);
        }
    }
    m->fd = fd;
    m->gen = 0;
    return 0;
}

int seqmark_open(struct seqmark *m, const char *dir, uint64_t *mark)
{
    *mark = 0;
    m->fd = -1;
    m->gen = 0;
    snprintf(m->path, sizeof m->path, "%s/" SEQMARK_FILE, dir);
    int fd = open(m->path, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size >= SEQMARK_BYTES) {
        unsigned char b[SEQMARK_BYTES];
        if (pread(fd, b, sizeof b, 0) != (ssize_t)sizeof b) {
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
        uint64_t g[2] = {0, 0}, v[2] = {0, 0};
        int ok0 = slot_parse(b, &g[0], &v[0]);
        int ok1 = slot_parse(b + SEQMARK_SLOT, &g[1], &v[1]);
        /* The newer generation wins; a torn write only ever damages the
         * slot being written, so the other one is still a safe mark. */
        int pick = ok0 && ok1 ? (g[1] > g[0]) : ok1;
        if (ok0 || ok1) {
            m->gen = g[pick];
            *mark = v[pick];
        } else if (get_le(b, 4) != 0 || get_le(b + SEQMARK_SLOT, 4) != 0) {
            log_warn("%s: no valid slot (damaged); the journal's last "
                     "record alone gives the next seq", m->path);
        }
        m->fd = fd;
        return 0;
    }
    /* Missing, or cut short by a crash or a full disk while created. */
    if (fd >= 0)
        close(fd);
    return seqmark_create(m);
}

int seqmark_store(struct seqmark *m, uint64_t mark)
{
    if (m->fd < 0 && seqmark_create(m) < 0)
        return -1;
    unsigned char b[SLOT_USED];
    uint64_t gen = m->gen + 1;
    put_le(b, SEQMARK_MAGIC, 4);
    put_le(b + 4, gen, 8);
    put_le(b + 12, mark, 8);
    put_le(b + 20, journal_crc32(0, b + 4, 16), 4);
    off_t off = (off_t)(gen % 2) * SEQMARK_SLOT;
    ssize_t w = pwrite(m->fd, b, sizeof b, off);
    if (w != (ssize_t)sizeof b) {
        if (w >= 0)
            errno = ENOSPC;
        return -1;
    }
    if (fdatasync(m->fd) < 0)
        return -1;
    m->gen = gen;
    return 0;
}

void seqmark_close(struct seqmark *m)
{
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
}
