/* call: notify-call resources and their state machine.
 *
 * call_transition() is the whole state machine of contract §1 and the
 * outcome table of §4, top to bottom, with no side effects. call_input()
 * feeds it one input and carries out the actions it asks for: timers, RTP,
 * CANCEL/BYE, and on release the on_released event. Turning a construct
 * into a call (checks, prompts, INVITE) is construct.c's; call_open gives
 * a new call its RTP port and timers.
 *
 * Every struct call is owned by the server's call table (keyed by
 * process_id) from call_start until release, where call_release frees it. */
#include "call.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <uuid/uuid.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cdr.h"
#include "log.h"
#include "media.h"
#include "server.h"
#include "sip.h"

#define ON_RELEASED "ext.notify_call.on_released"

/* ---- the state machine --------------------------------------------------- */

static struct call_step release(unsigned extra, const char *error,
                                const char *dropped_by, int cause)
{
    return (struct call_step){.next = CALL_RELEASED,
                              .actions = CALL_ACT_RELEASE | extra,
                              .error = error,
                              .dropped_by = dropped_by,
                              .cause = cause};
}

static struct call_step stay(enum call_state state, unsigned actions)
{
    return (struct call_step){.next = state, .actions = actions};
}

/* A final failure response before answer, by contract §4. */
static struct call_step dial_failure(const struct call_facts *f)
{
    int st = f->status;
    if (f->local)
        /* Our own stack gave up: nothing ever answered is a dial error;
         * provisionals but no final response is a call timeout. */
        return f->responded ? release(0, "call timeout", "sys", st)
                            : release(0, "dial error", "sys", st);
    if (st == 486 || st == 600 || st == 603)
        return release(0, "call rejected", "usr", st);
    return release(0, "dial failed", "sys", st);
}

struct call_step call_transition(enum call_state state,
                                 const struct call_facts *f,
                                 enum call_input input)
{
    switch (state) {
    case CALL_INITIATED:
        switch (input) {
        case CALL_IN_PROVISIONAL:
            if (!f->ringing && (f->status == 180 || f->status == 183))
                return stay(state, CALL_ACT_RING_TIMER);
            return stay(state, 0);
        case CALL_IN_ANSWERED:
            return stay(CALL_ANSWERED, CALL_ACT_START_MEDIA);
        case CALL_IN_NO_CODEC:
            return release(CALL_ACT_HANGUP, "dial failed", "sys", 488);
        case CALL_IN_FAILED:
            return dial_failure(f);
        case CALL_IN_RING_TIMEOUT:
            return release(CALL_ACT_HANGUP, "ring timeout", "sys", 487);
        case CALL_IN_DIAL_TIMEOUT:
            /* The SIP stack fails an unanswered INVITE (Timer B) before
             * dial_timeout, so reaching it means provisionals came. */
            return release(CALL_ACT_HANGUP, "call timeout", "sys", 408);
        case CALL_IN_DROP:
            return release(CALL_ACT_HANGUP, "canceled", "sys", 487);
        case CALL_IN_SHUTDOWN:
            return release(CALL_ACT_HANGUP, "shutdown", "sys", 487);
        case CALL_IN_SESSION_LOST: /* no session yet: as a failure */
            return release(CALL_ACT_HANGUP, "dial failed", "sys",
                           f->status);
        case CALL_IN_PEER_BYE:   /* no dialog yet: cannot happen */
        case CALL_IN_PLAY_DONE:  /* no media yet */
        case CALL_IN_PLAY_ERROR:
            return stay(state, 0);
        }
        break;
    case CALL_ANSWERED:
        switch (input) {
        case CALL_IN_PLAY_DONE:
            return release(CALL_ACT_HANGUP, NULL, "sys", 200);
        case CALL_IN_PLAY_ERROR:
            return release(CALL_ACT_HANGUP, "play error", "sys", 200);
        case CALL_IN_PEER_BYE:
            return release(0, NULL, "usr", 200);
        case CALL_IN_FAILED:     /* the dialog died under us */
            return release(CALL_ACT_HANGUP, NULL, "usr", 200);
        case CALL_IN_SESSION_LOST:
            /* A failed session refresh or an expired session: the prompt
             * did not play out, and the failing status says why. */
            return release(CALL_ACT_HANGUP, "play error", "sys", f->status);
        case CALL_IN_DROP:
            return release(CALL_ACT_HANGUP, NULL, "sys", 200);
        case CALL_IN_SHUTDOWN:
            return release(CALL_ACT_HANGUP, "shutdown", "sys", 200);
        case CALL_IN_PROVISIONAL: /* late or retransmitted responses */
        case CALL_IN_ANSWERED:
        case CALL_IN_NO_CODEC:
        case CALL_IN_RING_TIMEOUT:
        case CALL_IN_DIAL_TIMEOUT:
            return stay(state, 0);
        }
        break;
    case CALL_RELEASED:
        break;
    }
    return stay(state, 0);
}

const char *call_state_name(enum call_state s)
{
    static const char *const names[] = {"Initiated", "Answered", "Released"};
    return (unsigned)s < 3 ? names[s] : "?";
}

const char *call_input_name(enum call_input in)
{
    static const char *const names[] = {
        "provisional",  "answered",     "no-codec",  "failed",
        "peer-bye",     "ring-timeout", "dial-timeout", "play-done",
        "play-error",   "drop",         "shutdown",  "session-lost"};
    return (unsigned)in < sizeof names / sizeof names[0] ? names[in] : "?";
}

/* ---- carrying out the actions ------------------------------------------ */

void call_free(struct call *c)
{
    if (c == NULL)
        return;
    if (c->media != NULL)
        media_stream_close(c->media);
    if (c->ring_timer != NULL)
        event_free(c->ring_timer);
    if (c->dial_timer != NULL)
        event_free(c->dial_timer);
    prompt_clips_release(c->clips, c->n_clips);
    free(c->dialog);
    free(c->user_data);
    free(c);
}

static json_t *json_time_or_null(time_t t)
{
    return t ? json_integer((json_int_t)t) : json_null();
}

/* The on_released params in the contract's order (§4). */
static json_t *release_params(const char *res_id, const char *error,
                              time_t begin, time_t answer, time_t end,
                              const char *dropped_by, const char *user_data,
                              int cause)
{
    json_t *params = json_object();
    json_object_set_new(params, "res_id", json_string(res_id));
    json_object_set_new(params, "error",
                        error ? json_string(error) : json_null());
    json_object_set_new(params, "begin_time", json_time_or_null(begin));
    json_object_set_new(params, "answer_time", json_time_or_null(answer));
    json_object_set_new(params, "end_time", json_integer((json_int_t)end));
    json_object_set_new(params, "dropped_by", json_string(dropped_by));
    json_object_set_new(params, "user_data",
                        user_data ? json_string(user_data) : json_null());
    json_object_set_new(params, "cause", json_integer(cause));
    return params;
}

void call_ledger_entry(const struct call *c, struct ledger_call *lc)
{
    memset(lc, 0, sizeof *lc);
    lc->process_id = c->process_id;
    snprintf(lc->res_id, sizeof lc->res_id, "%s", c->res_id);
    lc->seq = c->ledger_seq;
    lc->begin_time = c->begin_time;
    lc->answer_time = c->answer_time;
    lc->user_data = c->user_data;
    snprintf(lc->to_uri, sizeof lc->to_uri, "%s", c->to_uri);
    snprintf(lc->uuid, sizeof lc->uuid, "%s", c->uuid);
    snprintf(lc->sip_call_id, sizeof lc->sip_call_id, "%s", c->sip_call_id);
    snprintf(lc->caller, sizeof lc->caller, "%s", c->caller);
    if (c->dialog != NULL) {
        lc->has_dialog = true;
        lc->dialog = *c->dialog;
    }
}

/* The ledger has grown past its limit: rewrite it with the live calls. */
static void call_ledger_rewrite(struct server *srv)
{
    struct ledger_rewrite rw;
    if (ledger_rewrite_begin(&srv->ledger, &rw) < 0) {
        log_error("%s: cannot start a rewrite: %s", srv->ledger.path,
                  strerror(errno));
        return;
    }
    struct ledger_call lc;
    struct idmap_iter it = IDMAP_ITER_INIT;
    void *c;
    while (idmap_next(&srv->calls, &it, NULL, &c)) {
        call_ledger_entry(c, &lc);
        ledger_rewrite_add(&rw, &lc);
    }
    if (ledger_rewrite_commit(&srv->ledger, &rw) < 0)
        log_error("%s: rewrite failed (%s); the file keeps growing",
                  srv->ledger.path, strerror(errno));
    else
        log_info("%s: rewritten with %u open call(s)", srv->ledger.path,
                 srv->active_calls);
}

/* Reports a call's end: its CDR first (a billing record must exist for
 * every event an application has seen), then its on_released. One path for
 * live calls and for the calls a crashed run left open. Returns the
 * connections the event was queued on. */
static unsigned call_report_release(struct server *srv,
                                    const struct ledger_call *lc,
                                    const char *error, const char *dropped_by,
                                    int cause, uint64_t creator_conn)
{
    time_t end = time(NULL);
    struct cdr_record rec = {
        .uuid = lc->uuid, .node_id = srv->conf.node_id,
        .process_id = lc->process_id, .call_id = lc->sip_call_id,
        .caller = lc->caller, .callee = lc->to_uri,
        .answered = lc->answer_time != 0, .end_type = dropped_by,
        .error = error, .cause = cause,
        .begin_time = (time_t)lc->begin_time,
        .answer_time = (time_t)lc->answer_time, .end_time = end,
        .res_id = lc->res_id, .user_data = lc->user_data};
    if (cdr_write(&srv->cdr, &rec) < 0)
        log_error("%s: CDR not written to %s: %s", lc->res_id, srv->cdr.path,
                  strerror(errno));
    metrics_on_released(&srv->metrics, error);
    json_t *params = release_params(lc->res_id, error, (time_t)lc->begin_time,
                                    (time_t)lc->answer_time, end, dropped_by,
                                    lc->user_data, cause);
    return server_emit_event(srv, creator_conn, ON_RELEASED, params);
}

static void call_release(struct call *c, const struct call_step *st)
{
    struct server *srv = c->server;
    log_info("%s: released error=%s dropped_by=%s cause=%d", c->res_id,
             st->error ? st->error : "null", st->dropped_by, st->cause);
    idmap_del(&srv->calls, c->process_id);
    srv->active_calls--;
    if (c->gateway >= 0)
        srv->gateway_calls[c->gateway]--;
    struct ledger_call lc;
    call_ledger_entry(c, &lc);
    unsigned sent = call_report_release(srv, &lc, st->error, st->dropped_by,
                                        st->cause, c->creator_conn);
    log_info("%s: on_released sent to %u connection(s)", c->res_id, sent);
    /* After the journal has the event: a crash in between finds the event
     * there and does not release the call twice. */
    ledger_remove(&srv->ledger, c->process_id);
    if (ledger_wants_rewrite(&srv->ledger))
        call_ledger_rewrite(srv);
    server_call_released(srv, c->creator_conn);
    call_free(c);
}

static void call_ring_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct call *c = arg;
    log_info("%s: ringing longer than %us", c->res_id, c->max_ring_seconds);
    call_input(c, CALL_IN_RING_TIMEOUT, 0, true);
}

static void call_dial_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct call *c = arg;
    log_info("%s: no final response within %us", c->res_id,
             c->server->conf.dial_timeout);
    call_input(c, CALL_IN_DIAL_TIMEOUT, 0, true);
}

static void call_media_done(void *owner, int error)
{
    struct call *c = owner;
    if (error)
        log_warn("%s: RTP send failed", c->res_id);
    else
        log_info("%s: played %u time(s)", c->res_id, c->plays);
    call_input(c, error ? CALL_IN_PLAY_ERROR : CALL_IN_PLAY_DONE, 0, true);
}

static void call_start_media(struct call *c)
{
    evtimer_del(c->ring_timer);
    evtimer_del(c->dial_timer);
    c->answer_time = time(NULL);
    ledger_note_answer(&c->server->ledger, c->process_id, c->answer_time);
    metrics_on_answered(&c->server->metrics);
    char addr[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (c->media_dest.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)&c->media_dest;
        inet_ntop(AF_INET6, &a->sin6_addr, addr, sizeof addr);
        port = ntohs(a->sin6_port);
    } else {
        const struct sockaddr_in *a = (const void *)&c->media_dest;
        inet_ntop(AF_INET, &a->sin_addr, addr, sizeof addr);
        port = ntohs(a->sin_port);
    }
    log_info("%s: answered; playing %zu clip(s) x%u as %s to %s:%u",
             c->res_id, c->n_clips, c->plays,
             c->payload_type == 8 ? "PCMA" : "PCMU", addr, port);
    if (media_stream_play(c->media, (const struct sockaddr *)&c->media_dest,
                          c->media_dest_len, c->payload_type, c->clips,
                          c->n_clips, c->plays) < 0) {
        log_warn("%s: cannot start RTP", c->res_id);
        call_input(c, CALL_IN_PLAY_ERROR, 0, true);
    }
}

void call_input(struct call *c, enum call_input input, int status,
                bool local)
{
    struct call_facts facts = {.ringing = c->ringing,
                               .responded = c->responded,
                               .status = status,
                               .local = local};
    struct call_step st = call_transition(c->state, &facts, input);
    log_debug("%s: %s in %s -> %s", c->res_id, call_input_name(input),
              call_state_name(c->state), call_state_name(st.next));

    if (input == CALL_IN_PROVISIONAL || (input == CALL_IN_FAILED && !local))
        c->responded = true;
    c->state = st.next;

    if (st.actions & CALL_ACT_RING_TIMER) {
        c->ringing = true;
        evtimer_del(c->dial_timer);
        struct timeval tv = {.tv_sec = c->max_ring_seconds};
        evtimer_add(c->ring_timer, &tv);
    }
    if (st.actions & CALL_ACT_HANGUP)
        sip_hangup(c->server->sip, c->process_id);
    if (st.actions & CALL_ACT_RELEASE) {
        call_release(c, &st);
        return;
    }
    if (st.actions & CALL_ACT_START_MEDIA)
        call_start_media(c); /* may release c on error: nothing after */
}

/* A re-INVITE or UPDATE moved or held the callee's media (the SIP thread
 * logged what and why): the stream follows. */
static void call_on_media_change(struct call *c, const struct sip_event *ev)
{
    if (c->state != CALL_ANSWERED)
        return;
    const struct sip_ev_media *m = &ev->media;
    if (m->dest_len > 0) {
        c->media_dest = m->dest;
        c->media_dest_len = m->dest_len;
    }
    if (media_stream_update(c->media, m->dest_len ? (const void *)&m->dest
                                                  : NULL,
                            m->dest_len, m->rtcp_port, m->paused) < 0)
        log_warn("%s: cannot change the RTP stream (%s)", c->res_id,
                 m->paused ? "hold" : "resume");
}

void call_on_sip_event(struct server *srv, const struct sip_event *ev)
{
    struct call *c = idmap_get(&srv->calls, ev->call_id);
    if (c == NULL)
        return; /* released already; SIP was told to forget it */
    const struct sip_ev_answered *a = &ev->answered;
    switch (ev->type) {
    case SIP_EV_DIALOG: /* comes before the PROGRESS/ANSWERED it is for */
        if (c->dialog == NULL)
            c->dialog = malloc(sizeof *c->dialog);
        if (c->dialog != NULL) {
            *c->dialog = *ev->dialog.record;
            ledger_note_dialog(&srv->ledger, c->process_id, c->dialog);
        }
        break;
    case SIP_EV_PROGRESS:
        call_input(c, CALL_IN_PROVISIONAL, ev->progress.status,
                   ev->progress.local);
        break;
    case SIP_EV_ANSWERED:
        if (a->payload_type < 0) {
            if (a->media_refused)
                log_warn("%s: answer refused: %s", c->res_id, a->reason);
            else
                log_warn("%s: answer offers neither PCMA nor PCMU",
                         c->res_id);
            call_input(c, CALL_IN_NO_CODEC, a->status, false);
            break;
        }
        c->media_dest = a->dest;
        c->media_dest_len = a->dest_len;
        c->payload_type = a->payload_type;
        media_stream_set_rtcp_port(c->media, a->rtcp_port);
        call_input(c, CALL_IN_ANSWERED, a->status, false);
        break;
    case SIP_EV_FAILED:
        call_input(c, CALL_IN_FAILED, ev->failed.status, ev->failed.local);
        break;
    case SIP_EV_ENDED:
        call_input(c, CALL_IN_PEER_BYE, ev->ended.status, ev->ended.local);
        break;
    case SIP_EV_MEDIA:
        call_on_media_change(c, ev);
        break;
    case SIP_EV_SESSION_LOST:
        call_input(c, CALL_IN_SESSION_LOST, ev->session_lost.status,
                   ev->session_lost.local);
        break;
    }
}

/* ---- creating a call (the rest is construct.c) ------------------------- */

int call_open(struct call *c, uint16_t *rtp_port, struct rpc_error *err)
{
    struct server *srv = c->server;
    char why[256];
    c->media = media_stream_open(srv->media, c, call_media_done, rtp_port,
                                 why, sizeof why);
    if (c->media == NULL) {
        log_warn("%s: no RTP port: %s", c->res_id, why);
        return rpc_fail(err, RPC_UNAVAILABLE, "at capacity: %s", why);
    }
    c->ring_timer = evtimer_new(srv->base, call_ring_timeout, c);
    c->dial_timer = evtimer_new(srv->base, call_dial_timeout, c);
    if (c->ring_timer == NULL || c->dial_timer == NULL)
        return rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory");
    return 0;
}

struct call *call_find(struct server *srv, uint64_t process_id)
{
    return process_id ? idmap_get(&srv->calls, process_id) : NULL;
}

/* ---- crash recovery -------------------------------------------------------- */

struct orphan_scan {
    const struct ledger_call *orphans;
    size_t n;
    bool *released;  /* per orphan: the journal has its on_released */
};

static void orphan_scan_record(void *arg, uint64_t seq, int64_t t,
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

void call_release_orphans(struct server *srv, const struct ledger_call *orphans,
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
    while ((r = journal_read(&srv->journal, &cur, 1u << 20,
                             orphan_scan_record, &sc)) > 0)
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
        call_report_release(srv, o, "daemon restart", "sys",
                            o->answer_time ? 200 : 487, 0);
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
