/* crcfile: the I/O of ctid's small append-only files of CRC-checked JSON
 * lines (crcline.h): the call ledger (ledger.c) and the request_key file
 * (reqkey.c). Appending one line, cutting a partial one, syncing and
 * closing the file, and replacing the whole file by a rewrite (temporary file, fsync, rename, fsync of
 * the directory). Owns nothing past a call; the caller owns its fds.
 * Main thread. */
#ifndef CTID_CRCFILE_H
#define CTID_CRCFILE_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

/* Appends rec (a reference it takes) as one line to fd (O_APPEND), whose
 * length is *bytes (grown by the line). A partial write is cut off again
 * so the next line starts cleanly (errno ENOSPC). 0, or -1 with errno;
 * path is for the log. */
int crcfile_append(int fd, const char *path, uint64_t *bytes, json_t *rec);

/* fdatasync(fd) when *unsynced says a line is waiting for it, clearing
 * *unsynced; 0 when there is nothing to sync or fd is -1 (closed). 0, or
 * -1 with errno. */
int crcfile_sync(int fd, bool *unsynced);
/* Syncs what is waiting (crcfile_sync), closes *fd and sets it to -1;
 * *unsynced is false after. An fd of -1 is already closed. */
void crcfile_close(int *fd, bool *unsynced);

/* A whole new file, written beside the old one and then renamed over it. */
struct crcfile_rewrite {
    char tmp[PATH_MAX + 8];
    int fd;
    uint64_t bytes;
    bool failed;
};
/* Opens path.new; 0, or -1 with errno. */
int crcfile_rewrite_begin(struct crcfile_rewrite *rw, const char *path);
/* One line (rec a reference it takes); a failure is kept for commit. */
void crcfile_rewrite_add(struct crcfile_rewrite *rw, json_t *rec);
/* Syncs path.new, renames it over path and syncs the directory. Returns
 * path opened again for appending (O_RDWR | O_APPEND), or -1 with errno
 * (the old file stays as it was; path.new is removed). */
int crcfile_rewrite_commit(struct crcfile_rewrite *rw, const char *path);

#endif
