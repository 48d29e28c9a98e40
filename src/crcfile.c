/* crcfile: appending to and rewriting the append-only files of CRC-checked
 * JSON lines (include/crcfile.h). */
#include "crcfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crcline.h"
#include "log.h"

int crcfile_append(int fd, const char *path, uint64_t *bytes, json_t *rec)
{
    size_t len = 0;
    char *line = crcline_format(rec, &len);
    if (line == NULL) {
        errno = ENOMEM;
        return -1;
    }
    ssize_t w = write(fd, line, len);
    int saved = errno;
    free(line);
    if (w == (ssize_t)len) {
        *bytes += len;
        return 0;
    }
    if (w >= 0) {
        /* Cut the partial line so the next record starts cleanly. */
        if (ftruncate(fd, (off_t)*bytes) < 0)
            log_error("%s: cannot cut a partial record: %s", path,
                      strerror(errno));
        saved = ENOSPC;
    }
    errno = saved;
    return -1;
}

int crcfile_sync(int fd, bool *unsynced)
{
    if (!*unsynced || fd < 0)
        return 0;
    *unsynced = false;
    return fdatasync(fd);
}

void crcfile_close(int *fd, bool *unsynced)
{
    (void)crcfile_sync(*fd, unsynced);
    *unsynced = false;
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

int crcfile_rewrite_begin(struct crcfile_rewrite *rw, const char *path)
{
    memset(rw, 0, sizeof *rw);
    snprintf(rw->tmp, sizeof rw->tmp, "%s.new", path);
    rw->fd = open(rw->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    return rw->fd < 0 ? -1 : 0;
}

void crcfile_rewrite_add(struct crcfile_rewrite *rw, json_t *rec)
{
    size_t len = 0;
    char *line = crcline_format(rec, &len);
    if (rw->failed || line == NULL ||
        write(rw->fd, line, len) != (ssize_t)len)
        rw->failed = true;
    else
        rw->bytes += len;
    free(line);
}

/* The rename must reach the disk before the old file's records are
 * forgotten. */
static void crcfile_sync_dir(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        return;
    *slash = '\0';
    int dfd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
}

int crcfile_rewrite_commit(struct crcfile_rewrite *rw, const char *path)
{
    int fd = rw->fd;
    rw->fd = -1;
    if (rw->failed || fsync(fd) < 0 || rename(rw->tmp, path) < 0) {
        int saved = errno;
        close(fd);
        unlink(rw->tmp);
        errno = rw->failed ? EIO : saved;
        return -1;
    }
    crcfile_sync_dir(path);
    close(fd);
    return open(path, O_RDWR | O_APPEND | O_CLOEXEC);
}
