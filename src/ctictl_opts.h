/* ctictl_opts: ctictl's command line: the exit statuses, struct
 * ctictl_opts (what the command line says) and the parser that fills it,
 * the --help text and usage errors. Pure apart from writing usage and
 * errors to stdout/stderr; ctictl.c runs the command. */
#ifndef CTID_CTICTL_OPTS_H
#define CTID_CTICTL_OPTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

/* The exit status: documented in --help and the man page, tested by
 * tests/integration/test_ctictl.py. */
enum {
    CTICTL_OK = 0,      /* success; call --wait: error null */
    CTICTL_FAILED = 1,  /* call --wait: the event's error is set; exists: false */
    CTICTL_USAGE = 2,   /* bad command line */
    CTICTL_CONN = 3,    /* cannot connect, connection lost, timeout, garbage */
    CTICTL_RPC = 4,     /* the daemon answered with a JSON-RPC error */
};

#define DEFAULT_CONNECT "127.0.0.1:7010"
#define DEFAULT_TIMEOUT_MS 5000

/* Everything the command line says. Owned by main(); ctictl_opts_free. */
struct ctictl_opts {
    const char *connect;
    const char *token;    /* sys.auth first when set */
    bool json;
    int timeout_ms;
    const char *command;
    const char *res_id;   /* exists, drop */
    /* call */
    json_t *to;           /* array of strings */
    json_t *play;         /* array of strings */
    long long repeat, max_ring;
    bool has_repeat, has_max_ring;
    const char *from, *user_data;
    bool wait;
    int wait_timeout_ms;  /* -1: none */
    long long keys;       /* --keys N: keys {"max": N}; 0 none */
    bool progress;
    /* events */
    long long since;
    bool has_since;
};

/* Frees what o owns (its JSON arrays). */
void ctictl_opts_free(struct ctictl_opts *o);
/* Global options, the command, then the command's own options (globals
 * are accepted there too). Returns -1 to go on, else the exit status. */
int ctictl_parse_command_line(struct ctictl_opts *o, int argc, char **argv);
/* "ctictl: MESSAGE" on stderr and the usage hint; returns CTICTL_USAGE. */
int ctictl_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

#endif
