/* cdr: call detail records as CSV (RFC 4180: fields quoted only when they
 * hold a comma, quote or line break; quotes doubled). One line per call,
 * flushed at once so a crash loses none that was reported. The column
 * order is the original platform's CDR order for an outbound call. */
#include "cdr.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

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
    size_t off = 0;

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
    size_t n = sizeof fields / sizeof fields[0];
    for (size_t i = 0; i < n; i++)
        cdr_field(buf, len, &off, fields[i], i == n - 1);
    if (len > 0)
        buf[off < len ? off : len - 1] = '\0';
    return (int)off;
}

int cdr_open(struct cdr *c, const char *path, char *err, size_t errlen)
{
    c->f = NULL;
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
    int n = cdr_format(r, line, sizeof line);
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
