/* calls: the call table. Owns every struct call from construct to
 * release (keyed by process_id), the active and per-gateway counts, the
 * call-rate bucket, process-id allocation, the calls' ledger records and
 * the crash-recovery release of the calls a previous run left open.
 * construct.c is the table's way in (checks, capacity slots, placing);
 * call.c is one call's state machine, which reaches back here only
 * through the release hook of struct call_env. The server hears from the
 * table through struct calls_events: an event to deliver, a call gone. */
#include "calls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "cdr.h"
#include "journal.h"
#include "log.h"
#include "metrics.h"
#include "sip.h"

#define ON_RELEASED "ext.notify_call.on_released"
#define ON_PROGRESS "ext.notify_call.on_progress"

/* ---- reporting a release ------------------------------------------------ */

static json_t *calls_json_time(time_t t)
{
    return t ? json_integer((json_int_t)t) : json_null();
}

/* The on_released params in the contract's order (§4). */
static json_t *calls_released_params(const char *res_id, const char *error,
                              time_t begin, time_t answer, time_t end,
                              const char *dropped_by, const char *user_data,
                              int cause)
{
    json_t *params = json_object();
    json_object_set_new(params, "res_id", json_string(res_id));
    json_object_set_new(params, "error",
                        error ? json_string(error) : json_null());
    json_object_set_new(params, "begin_time", calls_json_time(begin));
    json_object_set_new(params, "answer_time", calls_json_time(answer));
    json_object_set_new(params, "end_time", json_integer((json_int_t)end));
    json_object_set_new(params, "dropped_by", json_string(dropped_by));
    json_object_set_new(params, "user_data", user_data_value(user_data));
    json_object_set_new(params, "cause", json_integer(cause));
    return params;
}

/* Issue 14's on_released fields, after the others (seq comes last):
 * keys and key_time when the construct had keys, played_ms and plays
 * always (0 and 0 for a call never answered, or left by a crashed run:
 * c NULL). */
static void calls_release_keys(json_t *params, const struct call *c)
{
    uint64_t played_ms = 0;
    unsigned plays = 0;
    if (c != NULL && c->has_keys) {
        int64_t first = keys_first_time(&c->keys);
        json_object_set_new(params, "keys",
                            json_string(keys_text(&c->keys)));
        json_object_set_new(params, "key_time",
                            first < 0 ? json_null()
                                      : json_integer((json_int_t)first));
    }
    if (c != NULL)
        call_figures(c, &played_ms, &plays);
    json_object_set_new(params, "played_ms",
                        json_integer((json_int_t)played_ms));
    json_object_set_new(params, "plays", json_integer((json_int_t)plays));
}

/* ext.notify_call.on_progress (issue 14), the hook of struct call_env:
 * journaled with a seq like on_released, to the creator and to the
 * subscribers that asked for progress. */
static void calls_progress(void *table, struct call *c, const char *state,
                           char key)
{
    struct calls *t = table;
    json_t *params = json_object();
    json_object_set_new(params, "res_id", json_string(c->res_id));
    json_object_set_new(params, "state", json_string(state));
    if (key != 0)
        json_object_set_new(params, "key", json_stringn(&key, 1));
    json_object_set_new(params, "time", json_integer((json_int_t)time(NULL)));
    json_object_set_new(params, "user_data", user_data_value(c->user_data));
    if (t->events.progress != NULL)
        t->events.progress(t->events.arg, c->creator_conn, ON_PROGRESS,
                           params);
    else
        json_decref(params);
}

/* The ledger has grown past its limit: rewrite it with the live calls. */
static void calls_ledger_rewrite(struct calls *t)
{
    struct ledger_rewrite rw;
    if (ledger_rewrite_begin(t->env.deps.ledger, &rw) < 0) {
        log_error("%s: cannot start a rewrite: %s", t->env.deps.ledger->path,
                  strerror(errno));
        return;
    }
    struct ledger_call lc;
    struct idmap_iter it = IDMAP_ITER_INIT;
    void *c;
    while (idmap_next(&t->map, &it, NULL, &c)) {
        call_ledger_entry(c, &lc);
        ledger_rewrite_add(&rw, &lc);
    }
    if (ledger_rewrite_commit(t->env.deps.ledger, &rw) < 0)
        log_error("%s: rewrite failed (%s); the file keeps growing",
                  t->env.deps.ledger->path, strerror(errno));
    else
        log_info("%s: rewritten with %u open call(s)",
                 t->env.deps.ledger->path,
                 t->active);
}

/* Reports a call's end: its CDR first (a billing record must exist for
 * every event an application has seen), then its on_released. One path for
 * live calls and for the calls a crashed run left open. Returns the
 * connections the event was queued on. */
static unsigned calls_report_release(struct calls *t,
                                     const struct ledger_call *lc,
                                     const char *error,
                                     const char *dropped_by, int cause,
                                     uint64_t creator_conn, json_t *attempts,
                                     const struct call *c)
{
    const struct call_deps *d = &t->env.deps;
    time_t end = time(NULL);
    struct cdr_record rec = {
        .uuid = lc->uuid, .node_id = d->conf->node_id,
        .process_id = lc->process_id, .call_id = lc->sip_call_id,
        .caller = lc->caller, .callee = lc->to_uri,
        .answered = lc->answer_time != 0, .end_type = dropped_by,
        .error = error, .cause = cause,
        .begin_time = (time_t)lc->begin_time,
        .answer_time = (time_t)lc->answer_time, .end_time = end,
        .res_id = lc->res_id};
    char *ud_cdr = user_data_cdr(lc->user_data);
    rec.user_data = ud_cdr;
    if (cdr_write(d->cdr, &rec) < 0)
        log_error("%s: CDR not written to %s: %s", lc->res_id, d->cdr->path,
                  strerror(errno));
    free(ud_cdr);
    metrics_on_released(d->metrics, error);
    json_t *params = calls_released_params(
        lc->res_id, error, (time_t)lc->begin_time, (time_t)lc->answer_time,
        end, dropped_by, lc->user_data, cause);
    if (attempts != NULL) /* beyond: only after a failover */
        json_object_set_new(params, "attempts", attempts);
    calls_release_keys(params, c);
    return t->events.deliver(t->events.arg, creator_conn, ON_RELEASED,
                             params);
}

/* The release hook of struct call_env: c leaves the table and its end is
 * reported; call_input frees c right after. */
static void calls_forget_released(void *table, struct call *c,
                                  const struct call_step *st)
{
    struct calls *t = table;
    log_info("%s: released error=%s dropped_by=%s cause=%d", c->res_id,
             st->error ? st->error : "null", st->dropped_by, st->cause);
    idmap_del(&t->map, c->process_id);
    t->active--;
    if (c->gateway >= 0)
        t->gateway_calls[c->gateway]--;
    struct ledger_call lc;
    call_ledger_entry(c, &lc);
    unsigned sent = calls_report_release(
        t, &lc, st->error, st->dropped_by, st->cause, c->creator_conn,
        calls_route_attempts(t, c, st->cause), c);
    log_info("%s: on_released sent to %u connection(s)", c->res_id, sent);
    /* After the journal has the event: a crash in between finds the event
     * there and does not release the call twice. */
    ledger_remove(t->env.deps.ledger, c->process_id);
    if (ledger_wants_rewrite(t->env.deps.ledger))
        calls_ledger_rewrite(t);
    t->events.released(t->events.arg, c->creator_conn);
}

/* ---- the table ------------------------------------------------------------ */

void calls_init(struct calls *t, const struct call_deps *deps,
                const struct call_ops *ops, const struct calls_events *ev)
{
    memset(t, 0, sizeof *t);
    t->env.deps = *deps;
    t->env.ops = *ops;
    t->env.release = calls_forget_released;
    t->env.entry_left = calls_route_entry_left;
    t->env.next_target = calls_route_next_target;
    t->env.progress = calls_progress;
    t->env.table = t;
    t->events = *ev;
    idmap_init(&t->map);
    rate_init(&t->rate, deps->conf->max_call_rate, rate_now_ns());
}

void calls_set_deps(struct calls *t, const struct call_deps *deps)
{
    t->env.deps = *deps;
}

void calls_free(struct calls *t)
{
    /* call_free does not touch the table: the walk stays valid. */
    struct idmap_iter it = IDMAP_ITER_INIT;
    void *c;
    while (idmap_next(&t->map, &it, NULL, &c))
        call_free(c);
    idmap_free(&t->map);
    t->active = 0;
}

int calls_reserve_ids(struct calls *t, const char *state_dir, char *err,
                      size_t errlen)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 40];
    snprintf(path, sizeof path, "%s/process_id", state_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (mkdir(state_dir, 0750) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "state_dir %s: %s", state_dir,
                 strerror(errno));
        return -1;
    }
    long long last = 0;
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        if (fscanf(f, "%lld", &last) != 1)
            last = 0;
        fclose(f);
    }
    long long now = (long long)time(NULL);
    /* A restart within the same second must not reuse that second's ids. */
    long long second = now > last ? now : last + 1;
    f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%lld\n", second) < 0 || fflush(f) != 0 ||
        fsync(fileno(f)) != 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    t->next_process_id = (uint64_t)second * 1000000ULL + 1;
    return 0;
}

unsigned calls_room(const struct calls *t, uint64_t now_ns)
{
    unsigned max = t->env.deps.conf->max_calls, used = t->active + t->pending;
    if (t->stopping || used >= max)
        return 0;
    unsigned tokens = rate_available(&t->rate, now_ns);
    return max - used < tokens ? max - used : tokens;
}

struct call *calls_find(struct calls *t, uint64_t process_id)
{
    return process_id ? idmap_get(&t->map, process_id) : NULL;
}

unsigned calls_active(const struct calls *t)
{
    return t->active;
}

void calls_set_gateway_usable(struct calls *t,
                              bool (*usable)(void *arg, int gateway,
                                             char *why, size_t len),
                              void *arg)
{
    t->env.gateway_usable = usable;
    t->env.gateway_usable_arg = arg;
}

const unsigned *calls_gateway_calls(const struct calls *t)
{
    return t->gateway_calls;
}

const uint64_t *calls_gateway_failovers(const struct calls *t)
{
    return t->gateway_failovers;
}

void calls_on_sip_event(void *arg, const struct sip_event *ev)
{
    struct calls *t = arg;
    struct call *c = idmap_get(&t->map, ev->call_id);
    if (c == NULL)
        return; /* released already; SIP was told to forget it */
    call_on_sip_event(c, ev);
}

void calls_reload(struct calls *t, const char (*old_names)[64], size_t n_old)
{
    const struct conf *conf = t->env.deps.conf;
    memset(t->gateway_calls, 0, sizeof t->gateway_calls);
    uint64_t failovers[CONF_MAX_GATEWAYS] = {0}; /* they follow the name */
    for (size_t o = 0; o < n_old; o++)
        for (size_t g = 0; g < conf->n_gateways; g++)
            if (strcmp(conf->gateways[g].name, old_names[o]) == 0)
                failovers[g] = t->gateway_failovers[o];
    memcpy(t->gateway_failovers, failovers, sizeof failovers);
    struct idmap_iter it = IDMAP_ITER_INIT;
    void *v;
    while (idmap_next(&t->map, &it, NULL, &v)) {
        struct call *c = v;
        if (c->gateway < 0 || (size_t)c->gateway >= n_old)
            continue;
        const char *name = old_names[c->gateway];
        c->gateway = -1;
        for (size_t g = 0; g < conf->n_gateways; g++)
            if (strcmp(conf->gateways[g].name, name) == 0) {
                c->gateway = (int)g;
                t->gateway_calls[g]++;
            }
    }
    rate_init(&t->rate, conf->max_call_rate, rate_now_ns());
}

void calls_stop(struct calls *t)
{
    t->stopping = true;
}

void calls_end_all(struct calls *t)
{
    calls_cancel_starts(t, "shutting down");
    if (t->active > 0)
        log_info("ending %u call(s) with \"shutdown\"", t->active);
    /* Collect first: releasing edits the table. */
    size_t n = 0;
    uint64_t *ids = malloc(idmap_count(&t->map) * sizeof *ids + 1);
    struct idmap_iter it = IDMAP_ITER_INIT;
    while (ids != NULL && idmap_next(&t->map, &it, &ids[n], NULL))
        n++;
    for (size_t i = 0; i < n; i++) {
        struct call *c = calls_find(t, ids[i]);
        if (c != NULL)
            call_input(c, CALL_IN_SHUTDOWN, 0, true);
    }
    free(ids);
}

/* ---- crash recovery -------------------------------------------------------- */

struct orphan_scan {
    const struct ledger_call *orphans;
    size_t n;
    bool *released;  /* per orphan: the journal has its on_released */
};

static void calls_scan_orphan_record(void *arg, uint64_t seq, int64_t t,
                               const char *data, size_t len)
{
    (void)seq;
    (void)t;
    struct orphan_scan *sc = arg;
    json_t *ev = json_loadb(data, len, 0, NULL);
    const char *method = json_string_value(json_object_get(ev, "method"));
    const char *res_id = json_string_value(
        json_object_get(json_object_get(ev, "params"), "res_id"));
    if (method != NULL && res_id != NULL && strcmp(method, ON_RELEASED) == 0)
        for (size_t i = 0; i < sc->n; i++)
            if (strcmp(sc->orphans[i].res_id, res_id) == 0)
                sc->released[i] = true;
    json_decref(ev);
}

void calls_release_orphans(struct calls *t, const struct ledger_call *orphans,
                           size_t n)
{
    if (n == 0)
        return;
    bool *released = calloc(n, sizeof *released);
    if (released == NULL) {
        log_error("recovery: out of memory; %zu call(s) not released", n);
        return;
    }
    /* The journal after the oldest orphan's construct tells which events
     * went out before the crash (the ledger's close may be missing). */
    uint64_t from = orphans[0].seq;
    for (size_t i = 1; i < n; i++)
        if (orphans[i].seq < from)
            from = orphans[i].seq;
    struct orphan_scan sc = {orphans, n, released};
    struct journal_cursor cur;
    journal_cursor_init(&cur, from ? from - 1 : 0);
    int r;
    while ((r = journal_read(t->env.deps.journal, &cur, 1u << 20,
                             calls_scan_orphan_record, &sc)) > 0)
        ;
    if (r < 0)
        log_error("recovery: journal unreadable (%s); releasing every "
                  "open call of the last run", strerror(errno));

    unsigned emitted = 0;
    for (size_t i = 0; i < n; i++) {
        const struct ledger_call *o = &orphans[i];
        if (released[i]) {
            log_info("%s: released before the restart; its event is in the "
                     "journal", o->res_id);
            continue;
        }
        calls_report_release(t, o, "daemon restart", "sys",
                             o->answer_time ? 200 : 487, 0, NULL, NULL);
        log_warn("%s: open when the last run stopped: released (daemon "
                 "restart), %s at the gateway", o->res_id,
                 !o->has_dialog              ? "no dialog known to end"
                 : o->dialog.established ? "BYE"
                                         : "CANCEL");
        emitted++;
    }
    log_warn("recovery: %zu call(s) were open when the last run stopped; "
             "%u released now with error \"daemon restart\"", n, emitted);
    free(released);
}
