/* cdr: call detail records as CSV (RFC 4180: fields quoted only when they
 * hold a comma, quote or line break; quotes doubled). One line per call,
 * flushed at once so a crash loses none that was reported. The column
 * order is the original platform's CDR order for an outbound call;
 * cdr_format = ipsc writes the original's own 29 columns instead
 * (cdr_format_ipsc, documented in docs/operations.md). */
#include "cdr.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <strings.h>

/* Appends a field (and a comma unless it is the last) to buf at *off. */
static void cdr_field(char *buf, size_t len, size_t *off, const char *v,
                      bool last)
{
    const char *s = v ? v : "";
    bool quote = strpbrk(s, ",\"\r\n") != NULL;
    size_t o = *off;

#define PUT(ch)                                                              \
    do {                                                                     \
        if (o + 1 < len)                                                     \
            buf[o] = (ch);                                                   \
        o++;                                                                 \
    } while (0)
    if (quote)
        PUT('"');
    for (; *s; s++) {
        if (*s == '"')
            PUT('"');
        PUT(*s);
    }
    if (quote)
        PUT('"');
    PUT(last ? '\n' : ',');
#undef PUT
    *off = o;
}

/* The n fields as one line (RFC 4180 quoting, '\n' at the end) in buf;
 * the length it needed, as snprintf. */
static int cdr_join(char *buf, size_t len, const char *const *fields,
                    size_t n)
{
    size_t off = 0;
    for (size_t i = 0; i < n; i++)
        cdr_field(buf, len, &off, fields[i], i == n - 1);
    if (len > 0)
        buf[off < len ? off : len - 1] = '\0';
    return (int)off;
}

static void cdr_num(char *out, size_t len, long long v, bool empty_if_zero)
{
    if (empty_if_zero && v == 0)
        out[0] = '\0';
    else
        snprintf(out, len, "%lld", v);
}

int cdr_format(const struct cdr_record *r, char *buf, size_t len)
{
    char pid[24], answered[2], cause[80], begin[24], answer[24], end[24],
        talk[24];
    snprintf(pid, sizeof pid, "%" PRIu64, r->process_id);
    snprintf(answered, sizeof answered, "%d", r->answered ? 1 : 0);
    if (r->error)
        snprintf(cause, sizeof cause, "%s (%d)", r->error, r->cause);
    else
        cause[0] = '\0';
    cdr_num(begin, sizeof begin, (long long)r->begin_time, false);
    cdr_num(answer, sizeof answer, (long long)r->answer_time, true);
    cdr_num(end, sizeof end, (long long)r->end_time, false);
    cdr_num(talk, sizeof talk,
            r->answer_time ? (long long)(r->end_time - r->answer_time) : 0,
            false);

    const char *fields[] = {
        r->uuid,     r->node_id, pid,          r->call_id,   r->caller,
        r->callee,   "outbound", answered,     r->end_type,  cause,
        begin,       answer,     end,          talk,         r->project_id,
        r->flow_id,  r->res_id,  r->user_data,
    };
    return cdr_join(buf, len, fields, sizeof fields / sizeof fields[0]);
}

/* Local time as the original writes it; "" for 0 (never answered). */
static void cdr_time(char *out, size_t len, time_t t)
{
    struct tm tm;
    if (t == 0 || localtime_r(&t, &tm) == NULL)
        out[0] = '\0';
    else
        strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm);
}

/* dnis: the number dialled, the user part of callee ("user@host:port",
 * possibly with a sip: scheme); the whole value when it has no '@'. */
static void cdr_dnis(char *out, size_t len, const char *callee)
{
    const char *s = callee ? callee : "";
    if (strncasecmp(s, "sips:", 5) == 0)
        s += 5;
    else if (strncasecmp(s, "sip:", 4) == 0)
        s += 4;
    size_t n = strcspn(s, "@");
    if (s[n] == '\0')
        n = strlen(s);
    snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), s);
}

int cdr_format_ipsc(const struct cdr_record *r, char *buf, size_t len)
{
    char pid[24], dnis[256], status[2], endtype[2], cause[16], begin[32],
        answer[32], end[32], talk[24];
    snprintf(pid, sizeof pid, "%" PRIu64, r->process_id);
    cdr_dnis(dnis, sizeof dnis, r->callee);
    snprintf(status, sizeof status, "%d", r->answered ? 1 : 0);
    /* endtype: 1 = the local side (ctid, "sys") hung up, 2 = the remote
     * side ("usr"). */
    snprintf(endtype, sizeof endtype, "%s",
             r->end_type == NULL                 ? ""
             : strcmp(r->end_type, "usr") == 0   ? "2"
             : strcmp(r->end_type, "sys") == 0   ? "1"
                                                 : "");
    cdr_num(cause, sizeof cause, r->error ? r->cause : 0, true);
    cdr_time(begin, sizeof begin, r->begin_time);
    cdr_time(answer, sizeof answer, r->answer_time);
    cdr_time(end, sizeof end, r->end_time);
    cdr_num(talk, sizeof talk,
            r->answer_time ? (long long)(r->end_time - r->answer_time) : 0,
            false);

    const char *fields[] = {
        "",           r->node_id,   r->uuid,    pid,       r->call_id,
        "",           "",           r->caller,  dnis,      "",
        r->callee,    "1",          "2",        "",        status,
        endtype,      r->error,     cause,      begin,     answer,
        end,          talk,         r->project_id,         r->flow_id,
        r->res_id,    r->user_data, "",         "",        "",
    };
    return cdr_join(buf, len, fields, sizeof fields / sizeof fields[0]);
}

int cdr_style_parse(const char *name, enum cdr_style *style)
{
    if (strcmp(name, "ctid") == 0)
        *style = CDR_CTID;
    else if (strcmp(name, "ipsc") == 0)
        *style = CDR_IPSC;
    else
        return -1;
    return 0;
}

void cdr_set_style(struct cdr *c, enum cdr_style style)
{
    c->style = style;
}

int cdr_open(struct cdr *c, const char *path, char *err, size_t errlen)
{
    c->f = NULL;
    c->style = CDR_CTID;
    snprintf(c->path, sizeof c->path, "%s", path);
    if (path[0] == '\0')
        return 0;
    if (cdr_reopen(c) < 0) {
        snprintf(err, errlen, "cdr_file %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int cdr_reopen(struct cdr *c)
{
    if (c->path[0] == '\0')
        return 0;
    FILE *f = fopen(c->path, "ae");
    if (f == NULL)
        return -1; /* keep writing to the old file rather than to none */
    if (c->f != NULL)
        fclose(c->f);
    c->f = f;
    return 0;
}

void cdr_close(struct cdr *c)
{
    if (c->f != NULL)
        fclose(c->f);
    c->f = NULL;
}

int cdr_write(struct cdr *c, const struct cdr_record *r)
{
    char line[16384];

    if (c->f == NULL)
        return 0;
    int n = c->style == CDR_IPSC ? cdr_format_ipsc(r, line, sizeof line)
                                 : cdr_format(r, line, sizeof line);
    if (n < 0 || (size_t)n >= sizeof line) {
        /* user_data is bounded (4 KiB), so only a pathological record gets
         * here; a cut line would corrupt the CSV, so it is refused. */
        errno = EMSGSIZE;
        return -1;
    }
    if (fwrite(line, 1, (size_t)n, c->f) != (size_t)n || fflush(c->f) != 0)
        return -1;
    return 0;
}
