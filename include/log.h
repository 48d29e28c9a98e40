/* log: one line per event worth knowing, to stderr (journald adds the
 * timestamp) or to a file. Safe from any thread: each line is one write(). */
#ifndef CTID_LOG_H
#define CTID_LOG_H

enum log_level { LOGL_ERROR, LOGL_WARN, LOGL_INFO, LOGL_DEBUG };

/* Parses "error", "warn", "info" or "debug"; returns -1 on anything else. */
int log_level_parse(const char *name);
/* path NULL or "" logs to stderr. Returns -1 (errno set) if the file cannot
 * be opened; logging then stays on stderr. */
int log_open(enum log_level level, const char *path);
void log_close(void);
/* Changes the level at run time (SIGHUP), from the main thread. */
void log_set_level(enum log_level level);
/* Reopens the log file (after logrotate moved it). No-op on stderr.
 * Returns 0, or -1 (logging goes on to the old file). */
int log_reopen(void);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOGL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOGL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOGL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOGL_DEBUG, __VA_ARGS__)

#endif
