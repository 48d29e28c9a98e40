/* cdr: call detail records, one CSV line per call in the configured file,
 * written when the call is released and before its on_released event is
 * sent. The file is reopened on SIGHUP so logrotate can move it away.
 * Columns (docs/operations.md): uuid, node_id, process_id, call_id,
 * caller, callee, direction, answered, end_type, failure_cause,
 * begin_time, answer_time, end_time, talk_seconds, project_id, flow_id,
 * res_id, user_data. cdr_format = ipsc writes the original platform's
 * 29 columns instead (cdr_format_ipsc; docs/operations.md). */
#ifndef CTID_CDR_H
#define CTID_CDR_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* Which columns a line has: ctid's 18 or the original platform's. */
enum cdr_style { CDR_CTID, CDR_IPSC };

/* The CDR file. Owned by struct server; closed by cdr_close. */
struct cdr {
    FILE *f;              /* NULL when no cdr_file is configured */
    enum cdr_style style; /* CDR_CTID after cdr_open; cdr_set_style */
    char path[PATH_MAX];
};

/* One call's record; strings are borrowed, NULL reads as empty. */
struct cdr_record {
    const char *uuid;
    const char *node_id;
    uint64_t process_id;
    const char *call_id;       /* the SIP Call-ID */
    const char *caller;        /* From user, "anonymous" when hidden */
    const char *callee;        /* to_uri dialled, user@host:port */
    bool answered;
    const char *end_type;      /* dropped_by: "sys" or "usr" */
    const char *error;         /* on_released error, NULL when none */
    int cause;                 /* SIP status that ended the dial */
    time_t begin_time;
    time_t answer_time;        /* 0 when never answered */
    time_t end_time;
    const char *project_id;    /* not in ctid's API yet: empty */
    const char *flow_id;
    const char *res_id;
    const char *user_data;
};

/* path "" disables CDRs. Returns 0, or -1 with err. */
int cdr_open(struct cdr *c, const char *path, char *err, size_t errlen);
/* "ctid" or "ipsc" (the cdr_format key) to *style; -1 for anything else. */
int cdr_style_parse(const char *name, enum cdr_style *style);
void cdr_set_style(struct cdr *c, enum cdr_style style);
/* Reopens the same path (after logrotate moved it). Returns 0 or -1. */
int cdr_reopen(struct cdr *c);
void cdr_close(struct cdr *c);
/* Appends one record and flushes it. Returns 0, or -1 (logged by the
 * caller; a CDR failure never fails the call). */
int cdr_write(struct cdr *c, const struct cdr_record *r);
/* The record as one CSV line with its '\n' (RFC 4180 quoting); returns
 * the length snprintf would have written. Exposed for tests. */
int cdr_format(const struct cdr_record *r, char *buf, size_t len);
/* The same record in the original platform's columns (cdr_format = ipsc):
 * times as YYYY-MM-DD HH:MM:SS in local time (TZ), same quoting. */
int cdr_format_ipsc(const struct cdr_record *r, char *buf, size_t len);

#endif
