/* ledger: the durable list of calls not yet released (include/ledger.h
 * says what it owns, the record format and what is synced when). */
#include "ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crcfile.h"
#include "crcline.h"
#include "idmap.h"
#include "journal.h"
#include "log.h"
#include "userdata.h"

/* ---- records <-> JSON ----------------------------------------------------- */

static json_t *dialog_to_json(const struct sip_dialog *d)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:b}", "ruri",
                     d->request_uri, "call_id", d->call_id, "from", d->from,
                     "to", d->to, "route", d->route, "branch", d->branch,
                     "cseq", (json_int_t)d->cseq, "established",
                     d->established);
}

static json_t *call_to_json(const struct ledger_call *lc)
{
    json_t *o = json_pack(
        "{s:s, s:I, s:s, s:I, s:I, s:I, s:s?, s:s, s:s, s:s, s:s}", "op",
        "open", "pid", (json_int_t)lc->process_id, "res_id", lc->res_id,
        "seq", (json_int_t)lc->seq, "begin", (json_int_t)lc->begin_time,
        "answer", (json_int_t)lc->answer_time, "user_data", NULL,
        "to_uri", lc->to_uri, "uuid", lc->uuid, "call_id", lc->sip_call_id,
        "caller", lc->caller);
    /* The value itself, not its text: a record of the previous version
     * holds a string there, which is still the right value. */
    if (o != NULL && lc->user_data != NULL)
        json_object_set_new(o, "user_data",
                            user_data_value(lc->user_data));
    if (o != NULL && lc->has_dialog)
        json_object_set_new(o, "d", dialog_to_json(&lc->dialog));
    return o;
}

/* Copies a string member into a fixed field; false if missing or too long. */
static bool get_str(json_t *o, const char *key, char *dst, size_t len)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL && (size_t)snprintf(dst, len, "%s", v) < len;
}

static bool get_u64(json_t *o, const char *key, uint64_t *dst)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *dst = (uint64_t)json_integer_value(v);
    return true;
}

static bool dialog_from_json(json_t *o, struct sip_dialog *d)
{
    uint64_t cseq = 0;
    json_t *est = json_object_get(o, "established");
    if (!json_is_object(o) || !json_is_boolean(est) ||
        !get_str(o, "ruri", d->request_uri, sizeof d->request_uri) ||
        !get_str(o, "call_id", d->call_id, sizeof d->call_id) ||
        !get_str(o, "from", d->from, sizeof d->from) ||
        !get_str(o, "to", d->to, sizeof d->to) ||
        !get_str(o, "route", d->route, sizeof d->route) ||
        !get_str(o, "branch", d->branch, sizeof d->branch) ||
        !get_u64(o, "cseq", &cseq) || cseq > UINT32_MAX)
        return false;
    d->cseq = (uint32_t)cseq;
    d->established = json_is_true(est);
    return true;
}

/* An open record into lc (user_data allocated). */
static bool call_from_json(json_t *o, struct ledger_call *lc)
{
    uint64_t begin = 0, answer = 0;
    json_t *ud = json_object_get(o, "user_data");
    json_t *d = json_object_get(o, "d");
    memset(lc, 0, sizeof *lc);
    if (!get_u64(o, "pid", &lc->process_id) || lc->process_id == 0 ||
        !get_u64(o, "seq", &lc->seq) || !get_u64(o, "begin", &begin) ||
        !get_u64(o, "answer", &answer) ||
        !get_str(o, "res_id", lc->res_id, sizeof lc->res_id) ||
        !get_str(o, "to_uri", lc->to_uri, sizeof lc->to_uri) ||
        !get_str(o, "uuid", lc->uuid, sizeof lc->uuid) ||
        !get_str(o, "call_id", lc->sip_call_id, sizeof lc->sip_call_id) ||
        !get_str(o, "caller", lc->caller, sizeof lc->caller) ||
        (d != NULL && !dialog_from_json(d, &lc->dialog)) ||
        begin > INT64_MAX || answer > INT64_MAX)
        return false;
    lc->begin_time = (int64_t)begin;
    lc->answer_time = (int64_t)answer;
    lc->has_dialog = d != NULL;
    if (ud != NULL && !json_is_null(ud)) {
        lc->user_data = user_data_text(ud);
        if (lc->user_data == NULL)
            return false;
    }
    return true;
}

/* ---- parsing -------------------------------------------------------------- */

void ledger_calls_free(struct ledger_call *calls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(calls[i].user_data);
    free(calls);
}

/* Applies one record to the open set (arg: pid -> struct ledger_call *):
 * 0, 1 for a record it cannot use, -1 out of memory (crcline_each). */
static int apply_record(json_t *rec, void *arg)
{
    struct idmap *open = arg;
    const char *op = json_string_value(json_object_get(rec, "op"));
    uint64_t pid = 0;
    if (op == NULL || !get_u64(rec, "pid", &pid) || pid == 0)
        return 1;
    struct ledger_call *lc = idmap_get(open, pid);
    if (strcmp(op, "open") == 0) {
        struct ledger_call *n = malloc(sizeof *n);
        if (n == NULL)
            return -1;
        if (!call_from_json(rec, n)) {
            free(n->user_data);
            free(n);
            return 1;
        }
        if (lc != NULL) { /* reopened: the later record wins */
            idmap_del(open, pid);
            free(lc->user_data);
            free(lc);
        }
        if (idmap_put(open, pid, n) < 0) {
            free(n->user_data);
            free(n);
            return -1;
        }
        return 0;
    }
    if (lc == NULL)
        return 0; /* closed already, or its open record was lost */
    if (strcmp(op, "close") == 0) {
        idmap_del(open, pid);
        free(lc->user_data);
        free(lc);
    } else if (strcmp(op, "answer") == 0) {
        uint64_t t = 0;
        if (!get_u64(rec, "t", &t) || t > INT64_MAX)
            return 1;
        lc->answer_time = (int64_t)t;
    } else if (strcmp(op, "dialog") == 0) {
        struct sip_dialog d;
        if (!dialog_from_json(json_object_get(rec, "d"), &d))
            return 1;
        lc->dialog = d;
        lc->has_dialog = true;
    } else {
        return 1;
    }
    return 0;
}

static int by_process_id(const void *a, const void *b)
{
    const struct ledger_call *x = a, *y = b;
    return x->process_id < y->process_id ? -1 : x->process_id > y->process_id;
}

int ledger_parse(const char *buf, size_t len, struct ledger_call **calls,
                 size_t *n, unsigned *bad)
{
    struct idmap open;
    idmap_init(&open);
    *calls = NULL;
    *n = 0;
    int rc = crcline_each(buf, len, bad, apply_record, &open);
    size_t count = idmap_count(&open);
    struct ledger_call *out = count ? calloc(count, sizeof *out) : NULL;
    if (count && out == NULL)
        rc = -1;
    size_t k = 0;
    struct idmap_iter it = IDMAP_ITER_INIT;
    void *v;
    while (idmap_next(&open, &it, NULL, &v)) {
        struct ledger_call *lc = v;
        if (out != NULL && rc == 0)
            out[k++] = *lc; /* takes user_data */
        else
            free(lc->user_data);
        free(lc);
    }
    idmap_free(&open);
    if (rc < 0) {
        ledger_calls_free(out, k);
        return -1;
    }
    /* process_ids grow with time, so this is the order of construction. */
    if (k > 1)
        qsort(out, k, sizeof *out, by_process_id);
    *calls = out;
    *n = k;
    return 0;
}

/* ---- the file --------------------------------------------------------------- */

static int read_file(int fd, char **buf, size_t *len)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -1;
    if ((uint64_t)st.st_size > LEDGER_MAX_FILE) {
        errno = EFBIG;
        return -1;
    }
    size_t size = (size_t)st.st_size;
    char *b = malloc(size ? size : 1);
    if (b == NULL)
        return -1;
    size_t got = 0;
    while (got < size) {
        ssize_t r = pread(fd, b + got, size - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    *buf = b;
    *len = got;
    return 0;
}

void ledger_init(struct ledger *l)
{
    memset(l, 0, sizeof *l);
    l->fd = -1;
}

int ledger_open(struct ledger *l, const char *state_dir,
                struct ledger_call **orphans, size_t *n_orphans, char *err,
                size_t errlen)
{
    *orphans = NULL;
    *n_orphans = 0;
    ledger_init(l); /* a ledger on the stack comes with garbage */
    if ((size_t)snprintf(l->path, sizeof l->path, "%s/calls.log",
                         state_dir) >= sizeof l->path) {
        snprintf(err, errlen, "state_dir too long");
        return -1;
    }
    l->fd = open(l->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (l->fd < 0) {
        snprintf(err, errlen, "%s: %s", l->path, strerror(errno));
        return -1;
    }
    char *buf = NULL;
    size_t len = 0;
    unsigned bad = 0;
    if (read_file(l->fd, &buf, &len) < 0 ||
        ledger_parse(buf, len, orphans, n_orphans, &bad) < 0) {
        snprintf(err, errlen, "%s: cannot read: %s", l->path,
                 strerror(errno));
        free(buf);
        ledger_close(l);
        return -1;
    }
    free(buf);
    l->bytes = len;
    if (bad)
        log_warn("%s: %u damaged or torn record(s) skipped", l->path, bad);
    return 0;
}

void ledger_close(struct ledger *l)
{
    crcfile_close(&l->fd, &l->unsynced);
}

static int append_line(struct ledger *l, json_t *rec)
{
    return crcfile_append(l->fd, l->path, &l->bytes, rec);
}

int ledger_add(struct ledger *l, const struct ledger_call *lc)
{
    if (append_line(l, call_to_json(lc)) < 0)
        return -1;
    l->unsynced = true;
    return 0;
}

int ledger_sync(struct ledger *l)
{
    return crcfile_sync(l->fd, &l->unsynced);
}

static int append_or_log(struct ledger *l, json_t *rec, uint64_t pid,
                         const char *what)
{
    if (append_line(l, rec) == 0)
        return 0;
    log_warn("%s: cannot record %s of call %" PRIu64 ": %s", l->path, what,
             pid, strerror(errno));
    return -1;
}

void ledger_note_dialog(struct ledger *l, uint64_t process_id,
                        const struct sip_dialog *d)
{
    json_t *rec = json_pack("{s:s, s:I, s:o}", "op", "dialog", "pid",
                            (json_int_t)process_id, "d", dialog_to_json(d));
    append_or_log(l, rec, process_id, "the dialog");
}

void ledger_note_answer(struct ledger *l, uint64_t process_id, int64_t t)
{
    json_t *rec = json_pack("{s:s, s:I, s:I}", "op", "answer", "pid",
                            (json_int_t)process_id, "t", (json_int_t)t);
    append_or_log(l, rec, process_id, "the answer");
}

void ledger_remove(struct ledger *l, uint64_t process_id)
{
    json_t *rec = json_pack("{s:s, s:I}", "op", "close", "pid",
                            (json_int_t)process_id);
    if (append_or_log(l, rec, process_id, "the release") < 0)
        l->close_lost = true;
}

bool ledger_wants_rewrite(const struct ledger *l)
{
    return l->bytes >= LEDGER_COMPACT_BYTES || l->close_lost;
}

int ledger_rewrite_begin(struct ledger *l, struct ledger_rewrite *rw)
{
    return crcfile_rewrite_begin(&rw->f, l->path);
}

void ledger_rewrite_add(struct ledger_rewrite *rw, const struct ledger_call *lc)
{
    crcfile_rewrite_add(&rw->f, call_to_json(lc));
}

int ledger_rewrite_commit(struct ledger *l, struct ledger_rewrite *rw)
{
    int nfd = crcfile_rewrite_commit(&rw->f, l->path);
    if (nfd < 0)
        return -1;
    /* Open records appended to the old file after the last sync are in
     * the new one (the rewrite copies every live call), synced. */
    close(l->fd);
    l->fd = nfd;
    l->bytes = rw->f.bytes;
    l->unsynced = false;
    l->close_lost = false;
    return 0;
}
