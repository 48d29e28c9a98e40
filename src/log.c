/* log: formats one line per call of log_msg and writes it with a single
 * write(2), so lines from the main and SIP threads never interleave. The
 * destination is set once at start-up, before any thread; the level may
 * change on SIGHUP, so it is an atomic every thread reads relaxed (the
 * one value shared across threads outside a queue: a stale read costs one
 * line logged or not). */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static struct {
    atomic_int level; /* enum log_level */
    int fd;
    char path[4096]; /* "" for stderr */
} log_state = {LOGL_INFO, STDERR_FILENO, ""};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void log_set_level(enum log_level level)
{
    atomic_store_explicit(&log_state.level, (int)level, memory_order_relaxed);
}

int log_open(enum log_level level, const char *path)
{
    log_set_level(level);
    if (path == NULL || path[0] == '\0')
        return 0;
    snprintf(log_state.path, sizeof log_state.path, "%s", path);
    return log_reopen();
}

int log_reopen(void)
{
    if (log_state.path[0] == '\0')
        return 0;
    int fd = open(log_state.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                  0640);
    if (fd < 0)
        return -1;
    /* dup2 swaps the file under any thread mid-log_msg atomically. */
    if (log_state.fd == STDERR_FILENO) {
        log_state.fd = fd;
        return 0;
    }
    dup2(fd, log_state.fd);
    close(fd);
    return 0;
}

void log_close(void)
{
    if (log_state.fd != STDERR_FILENO)
        close(log_state.fd);
    log_state.fd = STDERR_FILENO;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if ((int)level >
        atomic_load_explicit(&log_state.level, memory_order_relaxed))
        return;
    int saved_errno = errno;
    char line[2048];
    int n = snprintf(line, sizeof line, "%s: ", level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    /* A short or failed write of a log line has no better place to go. */
    ssize_t ignored = write(log_state.fd, line, len);
    (void)ignored;
    errno = saved_errno;
}
