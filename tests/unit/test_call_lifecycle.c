/* Unit tests of the call lifecycle: the call table (calls.c), construct
 * (construct.c) and call_input (call.c) together, with recording fakes
 * standing in for the SIP and media threads behind struct call_ops and for
 * the server behind struct calls_events. A real libevent base runs the
 * timers; a timer's expiry is simulated with event_active. No sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sndfile.h>

#include "calls.h"
#include "cdr.h"
#include "journal.h"
#include "ledger.h"
#include "metrics.h"
#include "prompt.h"
#include "sip.h"

/* ---- the fakes ----------------------------------------------------------- */

struct record {
    unsigned invites, hangups, opens, plays, updates, closes;
    uint64_t last_invite, last_hangup;
    struct sip_invite inv;             /* the last INVITE asked for */
    void *media_owner;                 /* the call, for play done */
    media_done_fn media_done;
    struct media_figures figures;      /* what the fake play done says */
    void (*on_key)(void *owner, char key); /* media_keys's */
    unsigned keys_calls, stop_plays;
    int keys_te;                       /* media_keys's te_payload_type */
    size_t last_n_clips;               /* the last media_play's */
    unsigned last_plays;
    char log[256];                     /* progress states and "released",
                                          in order, comma after each */
    json_t *last;                      /* the last on_released's params */
    unsigned delivered, released;
    char last_error[64];               /* on_released error, "null" */
    char last_dropped_by[8];
    int last_cause;
    struct sip_invite invite;          /* the last INVITE command */
    json_t *attempts;                  /* the last event's, NULL none */
};

static struct record rec;

/* A fresh record; the JSON it holds is let go. */
static void rec_reset(void)
{
    json_decref(rec.attempts);
    json_decref(rec.last);
    memset(&rec, 0, sizeof rec);
}
static char fake_streams[64];          /* stand-ins for struct media_stream */

static int fake_invite(struct sip *s, const struct sip_invite *inv)
{
    (void)s;
    rec.invites++;
    rec.last_invite = inv->call_id;
    rec.invite = *inv;
    return 0;
}

static int fake_hangup(struct sip *s, uint64_t call_id)
{
    (void)s;
    rec.hangups++;
    rec.last_hangup = call_id;
    return 0;
}

static struct media_stream *fake_media_open(struct media *m, void *owner,
                                            media_done_fn on_done,
                                            uint16_t *port, char *err,
                                            size_t errlen)
{
    (void)m;
    (void)err;
    (void)errlen;
    rec.media_owner = owner;
    rec.media_done = on_done;
    *port = (uint16_t)(40000 + 2 * (rec.opens % 1000));
    return (struct media_stream *)&fake_streams[rec.opens++ % 64];
}

static int fake_media_play(struct media_stream *s, const struct sockaddr *dest,
                           socklen_t dest_len, int pt,
                           struct prompt_clip *const *clips, size_t n_clips,
                           unsigned plays)
{
    (void)s;
    (void)dest;
    (void)dest_len;
    (void)pt;
    (void)clips;
    rec.last_n_clips = n_clips;
    rec.last_plays = plays;
    rec.plays++;
    return 0;
}

static int fake_media_update(struct media_stream *s,
                             const struct sockaddr *dest, socklen_t len,
                             uint16_t rtcp_port, bool paused)
{
    (void)s;
    (void)dest;
    (void)len;
    (void)rtcp_port;
    (void)paused;
    rec.updates++;
    return 0;
}

static void fake_media_rtcp(struct media_stream *s, uint16_t port)
{
    (void)s;
    (void)port;
}

static void fake_media_close(struct media_stream *s)
{
    (void)s;
    rec.closes++;
}

static int fake_media_keys(struct media_stream *s, int te, bool inband,
                           int audio_pt, void (*on_key)(void *, char))
{
    (void)s;
    (void)inband;
    (void)audio_pt;
    rec.keys_calls++;
    rec.keys_te = te;
    rec.on_key = on_key;
    return 0;
}

static int fake_media_stop_play(struct media_stream *s)
{
    (void)s;
    rec.stop_plays++;
    return 0;
}

static const struct call_ops fake_ops = {
    fake_invite,     fake_hangup,     fake_media_open,  fake_media_play,
    fake_media_update, fake_media_rtcp, fake_media_close, fake_media_keys,
    fake_media_stop_play,
};

static void log_add(const char *what)
{
    size_t n = strlen(rec.log);
    snprintf(rec.log + n, sizeof rec.log - n, "%s,", what);
}

static unsigned fake_progress(void *arg, uint64_t conn, const char *method,
                              json_t *params)
{
    (void)arg;
    (void)conn;
    assert_string_equal(method, "ext.notify_call.on_progress");
    /* {res_id, state, [key], time, user_data} */
    static const char *const order[] = {"res_id", "state", "key", "time",
                                        "user_data"};
    size_t i = 0;
    for (void *it = json_object_iter(params); it != NULL;
         it = json_object_iter_next(params, it), i++) {
        if (i == 2 && strcmp(json_object_iter_key(it), "key") != 0)
            i++;
        assert_string_equal(json_object_iter_key(it), order[i]);
    }
    char what[16];
    const char *key = json_string_value(json_object_get(params, "key"));
    snprintf(what, sizeof what, "%s%s",
             json_string_value(json_object_get(params, "state")),
             key ? key : "");
    log_add(what);
    json_decref(params);
    return 1;
}

static unsigned fake_deliver(void *arg, uint64_t conn, const char *method,
                             json_t *params)
{
    (void)arg;
    (void)conn;
    assert_string_equal(method, "ext.notify_call.on_released");
    const char *e = json_string_value(json_object_get(params, "error"));
    snprintf(rec.last_error, sizeof rec.last_error, "%s", e ? e : "null");
    snprintf(rec.last_dropped_by, sizeof rec.last_dropped_by, "%s",
             json_string_value(json_object_get(params, "dropped_by")));
    rec.last_cause = (int)json_integer_value(json_object_get(params, "cause"));
    rec.delivered++;
    json_decref(rec.attempts);
    rec.attempts = json_incref(json_object_get(params, "attempts"));
    /* After cause (beyond): "attempts" only after a failover, "keys" and
     * "key_time" only with keys, "played_ms" and "plays" always. */
    const char *after[4] = {NULL};
    bool seen_cause = false;
    size_t n = 0;
    for (void *it = json_object_iter(params); it != NULL;
         it = json_object_iter_next(params, it)) {
        if (seen_cause && n < 4)
            after[n++] = json_object_iter_key(it);
        if (strcmp(json_object_iter_key(it), "cause") == 0)
            seen_cause = true;
    }
    size_t i = 0;
    if (rec.attempts)
        assert_string_equal(after[i++], "attempts");
    if (json_object_get(params, "keys") != NULL) {
        assert_string_equal(after[i++], "keys");
        assert_string_equal(after[i++], "key_time");
    }
    assert_string_equal(after[i++], "played_ms");
    if (i < 4)
        assert_string_equal(after[i], "plays");
    assert_non_null(json_object_get(params, "plays"));
    log_add("released");
    json_decref(rec.last);
    rec.last = params;
    return 1;
}

static void fake_released(void *arg, uint64_t conn)
{
    (void)arg;
    (void)conn;
    rec.released++;
}

/* ---- the fixture ------------------------------------------------------------ */

struct fixture {
    char dir[64];
    struct conf conf;
    struct event_base *base;
    struct journal journal;
    struct ledger ledger;
    struct cdr cdr;
    struct metrics metrics;
    struct prompt_cache *prompts;
    struct calls calls;
    struct call *placed;      /* the waiter's result */
    int refused;              /* the waiter's error code, 0 none */
};

static void write_prompt(const char *dir)
{
    char path[128];
    snprintf(path, sizeof path, "%s/a.wav", dir);
    SF_INFO info = {.samplerate = 8000, .channels = 1,
                    .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    assert_non_null(sf);
    short pcm[800] = {0};
    for (size_t i = 0; i < 800; i++)
        pcm[i] = (short)((i % 16) * 500);
    sf_write_short(sf, pcm, 800);
    sf_close(sf);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char err[256];
    snprintf(f->dir, sizeof f->dir, "/tmp/ctid-lifecycle-XXXXXX");
    if (f == NULL || mkdtemp(f->dir) == NULL)
        return -1;
    rec_reset();
    conf_defaults(&f->conf);
    snprintf(f->conf.state_dir, sizeof f->conf.state_dir, "%s", f->dir);
    struct conf_gateway *g = &f->conf.gateways[0];
    snprintf(g->name, sizeof g->name, "gw");
    snprintf(g->host, sizeof g->host, "127.0.0.1");
    g->port = 5062;
    g = &f->conf.gateways[1]; /* failover's second entry */
    snprintf(g->name, sizeof g->name, "gw2");
    snprintf(g->host, sizeof g->host, "127.0.0.2");
    g->port = 5064;
    f->conf.n_gateways = 2;
    f->base = event_base_new();
    write_prompt(f->dir);
    f->prompts = prompt_cache_new(f->dir);
    char jdir[96];
    snprintf(jdir, sizeof jdir, "%s/journal", f->dir);
    struct ledger_call *orphans = NULL;
    size_t n = 0;
    if (f->base == NULL || f->prompts == NULL ||
        journal_open(&f->journal, jdir, 1 << 20, 0, 1 << 18, 1, err,
                     sizeof err) < 0 ||
        ledger_open(&f->ledger, f->dir, &orphans, &n, err, sizeof err) < 0 ||
        cdr_open(&f->cdr, "", err, sizeof err) < 0)
        return -1;
    ledger_calls_free(orphans, n);
    struct call_deps deps = {.conf = &f->conf, .base = f->base,
                             .prompts = f->prompts, .journal = &f->journal,
                             .ledger = &f->ledger, .cdr = &f->cdr,
                             .metrics = &f->metrics};
    struct calls_events ev = {fake_deliver, fake_released, f, fake_progress};
    calls_init(&f->calls, &deps, &fake_ops, &ev);
    if (calls_reserve_ids(&f->calls, f->dir, err, sizeof err) < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    calls_free(&f->calls);
    prompt_cache_free(f->prompts);
    journal_close(&f->journal);
    ledger_close(&f->ledger);
    cdr_close(&f->cdr);
    event_base_free(f->base);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    json_decref(rec.attempts);
    rec.attempts = NULL;
    json_decref(rec.last);
    rec.last = NULL;
    return 0;
}

static bool waiter_wanted(void *arg)
{
    (void)arg;
    return true;
}

static void waiter_done(void *arg, struct call *call,
                        const struct rpc_error *err)
{
    struct fixture *f = arg;
    f->placed = call;
    f->refused = call ? 0 : err->code;
}

/* A construct of params text, placing the waiter's hook (NULL: none);
 * the call it placed, or NULL with the refusal's code in f->refused. */
static struct call *construct_hooked(
    struct fixture *f, const char *text,
    int (*placing)(void *arg, struct call *call, struct rpc_error *err))
{
    json_t *params = json_loads(text, 0, NULL);
    assert_non_null(params);
    struct api_construct a;
    struct rpc_error err;
    assert_int_equal(api_parse_construct(params, 60, &a, &err), 0);
    struct calls_waiter w = {waiter_wanted, waiter_done, f, placing};
    f->placed = NULL;
    f->refused = -1;
    calls_construct(&f->calls, 7, &a, &w);
    api_construct_free(&a);
    json_decref(params);
    return f->placed;
}

static struct call *construct_text(struct fixture *f, const char *text)
{
    return construct_hooked(f, text, NULL);
}

/* A construct of params text that must be placed; the call. */
static struct call *construct_placed(struct fixture *f, const char *text)
{
    struct call *c = construct_text(f, text);
    assert_int_equal(f->refused, 0);
    assert_non_null(c);
    return c;
}

/* A construct of to_uri (JSON) to the fixture's gateways; the call. */
static struct call *construct_to(struct fixture *f, const char *to_uri,
                                 unsigned max_ring)
{
    char text[512];
    snprintf(text, sizeof text,
             "{\"to_uri\":%s,\"play_content\":\"a.wav\","
             "\"max_ring_seconds\":%u}",
             to_uri, max_ring);
    return construct_placed(f, text);
}

/* A construct with more named params (extra: ",\"keys\":{...}"). */
static struct call *construct_with(struct fixture *f, const char *extra)
{
    char text[512];
    snprintf(text, sizeof text,
             "{\"to_uri\":\"1000@127.0.0.1:5062\",\"play_content\":\"a.wav\""
             "%s}", extra);
    return construct_placed(f, text);
}

/* A construct to the fixture's gateway; the call it placed. */
static struct call *construct(struct fixture *f, unsigned max_ring)
{
    return construct_to(f, "\"1000@127.0.0.1:5062\"", max_ring);
}

/* The callee's RTP address in an answer: 127.0.0.1:30000; its length. */
static socklen_t callee_rtp(struct sockaddr_storage *dest)
{
    memset(dest, 0, sizeof *dest);
    struct sockaddr_in *sin = (struct sockaddr_in *)dest;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(30000);
    sin->sin_addr.s_addr = htonl(0x7f000001);
    return sizeof *sin;
}

/* The event the SIP thread would post, built by its own constructors;
 * local false: from the peer. */
static void sip_event(struct fixture *f, enum sip_event_type type,
                      uint64_t id, int status)
{
    struct sip_event ev;
    memset(&ev, 0, sizeof ev);
    struct sockaddr_storage dest;
    socklen_t dest_len = callee_rtp(&dest);
    switch (type) {
    case SIP_EV_PROGRESS:
        ev = sip_event_progress(id, status, false);
        break;
    case SIP_EV_ANSWERED:
        ev = sip_event_answered(id, status, 8, &dest, dest_len, 0);
        break;
    case SIP_EV_FAILED:
        ev = sip_event_failed(id, status, false);
        break;
    case SIP_EV_ENDED:
        ev = sip_event_ended(id, status, false, false);
        break;
    case SIP_EV_MEDIA:
        ev = sip_event_media(id, false, NULL, 0, 0);
        break;
    case SIP_EV_SESSION_LOST:
        ev = sip_event_session_lost(id, status, false);
        break;
    default:
        fail_msg("no stand-in for %s", sip_event_name(type));
    }
    calls_on_sip_event(&f->calls, &ev);
}

/* Fires a call's timer as if it had expired. */
static void expire(struct fixture *f, struct event *timer)
{
    event_active(timer, EV_TIMEOUT, 0);
    event_base_loop(f->base, EVLOOP_NONBLOCK);
}

static void ringing(struct fixture *f, struct call *c)
{
    sip_event(f, SIP_EV_PROGRESS, c->process_id, 180);
}

static void answered(struct fixture *f, struct call *c)
{
    ringing(f, c);
    sip_event(f, SIP_EV_ANSWERED, c->process_id, 200);
}

/* Exactly one release, reported once, with this outcome; the table and
 * its counts empty again. */
static void assert_released_once(struct fixture *f, uint64_t id,
                                 const char *error, const char *dropped_by,
                                 int cause)
{
    assert_int_equal(rec.delivered, 1);
    assert_int_equal(rec.released, 1);
    assert_string_equal(rec.last_error, error);
    assert_string_equal(rec.last_dropped_by, dropped_by);
    assert_int_equal(rec.last_cause, cause);
    assert_null(calls_find(&f->calls, id));
    assert_int_equal(f->calls.active, 0);
    assert_int_equal(f->calls.gateway_calls[0], 0);
    assert_int_equal(f->calls.gateway_calls[1], 0);
    assert_int_equal(rec.closes, rec.opens);
    /* A late SIP event for the released call changes nothing. */
    sip_event(f, SIP_EV_ANSWERED, id, 200);
    sip_event(f, SIP_EV_ENDED, id, 200);
    assert_int_equal(rec.delivered, 1);
    assert_int_equal(rec.released, 1);
}

/* An answer with telephone-event te (-1 none). */
static void answered_te(struct fixture *f, struct call *c, int te)
{
    struct sockaddr_storage dest;
    socklen_t dest_len = callee_rtp(&dest);
    ringing(f, c);
    struct sip_event ev =
        sip_event_answered(c->process_id, 200, 8, &dest, dest_len, 0);
    ev.answered.te_payload_type = te;
    calls_on_sip_event(&f->calls, &ev);
}

static void media_done_with(unsigned played_ms, unsigned plays)
{
    rec.figures = (struct media_figures){played_ms, plays};
    rec.media_done(rec.media_owner, 0, &rec.figures);
}

/* ---- the happy path ----------------------------------------------------------- */

static void test_construct_ring_answer_play(void **state)
{
    struct fixture *f = *state;
    struct call *c = construct(f, 30);
    uint64_t id = c->process_id;
    /* construct -> INVITE command, counted, dial timer armed */
    assert_int_equal(rec.invites, 1);
    assert_int_equal(rec.last_invite, id);
    assert_int_equal(rec.opens, 1);
    assert_ptr_equal(calls_find(&f->calls, id), c);
    assert_int_equal(f->calls.active, 1);
    assert_int_equal(f->calls.gateway_calls[0], 1);
    assert_true(evtimer_pending(c->dial_timer, NULL));
    assert_false(evtimer_pending(c->ring_timer, NULL));
    /* 100 does not ring; 180 starts the ring timer, stops the dial one */
    sip_event(f, SIP_EV_PROGRESS, id, 100);
    assert_false(evtimer_pending(c->ring_timer, NULL));
    ringing(f, c);
    assert_true(evtimer_pending(c->ring_timer, NULL));
    assert_false(evtimer_pending(c->dial_timer, NULL));
    /* 200 -> media starts, timers stop */
    sip_event(f, SIP_EV_ANSWERED, id, 200);
    assert_int_equal(c->state, CALL_ANSWERED);
    assert_int_equal(rec.plays, 1);
    assert_false(evtimer_pending(c->ring_timer, NULL));
    assert_int_not_equal(c->answer_time, 0);
    /* a re-INVITE's media change reaches the stream */
    sip_event(f, SIP_EV_MEDIA, id, 0);
    assert_int_equal(rec.updates, 1);
    assert_int_equal(rec.delivered, 0);
    /* play done -> BYE and exactly one release report */
    assert_ptr_equal(rec.media_owner, c);
    rec.media_done(rec.media_owner, 0, &rec.figures);
    assert_int_equal(rec.hangups, 1);
    assert_int_equal(rec.last_hangup, id);
    assert_released_once(f, id, "null", "sys", 200);
}

static void test_play_error(void **state)
{
    struct fixture *f = *state;
    struct call *c = construct(f, 30);
    uint64_t id = c->process_id;
    answered(f, c);
    rec.media_done(rec.media_owner, -1, &rec.figures);
    assert_int_equal(rec.hangups, 1);
    assert_released_once(f, id, "play error", "sys", 200);
}

/* ---- every ending in every state ----------------------------------------- */

enum phase { INITIATED, RINGING, ANSWERED };

static struct call *reach(struct fixture *f, enum phase p)
{
    struct call *c = construct(f, 30);
    if (p == RINGING)
        ringing(f, c);
    else if (p == ANSWERED)
        answered(f, c);
    return c;
}

static void test_drop(void **state)
{
    static const struct {
        enum phase p;
        const char *error;
        int cause;
    } rows[] = {{INITIATED, "canceled", 487},
                {RINGING, "canceled", 487},
                {ANSWERED, "null", 200}};
    for (size_t i = 0; i < 3; i++) {
        struct fixture *f = *state;
        rec_reset();
        struct call *c = reach(f, rows[i].p);
        uint64_t id = c->process_id;
        call_input(c, CALL_IN_DROP, 0, true);
        assert_int_equal(rec.hangups, 1);
        assert_released_once(f, id, rows[i].error, "sys", rows[i].cause);
    }
}

static void test_shutdown(void **state)
{
    static const struct {
        enum phase p;
        int cause;
    } rows[] = {{INITIATED, 487}, {RINGING, 487}, {ANSWERED, 200}};
    for (size_t i = 0; i < 3; i++) {
        struct fixture *f = *state;
        rec_reset();
        uint64_t id = reach(f, rows[i].p)->process_id;
        calls_end_all(&f->calls);
        assert_int_equal(rec.hangups, 1);
        assert_released_once(f, id, "shutdown", "sys", rows[i].cause);
    }
}

#define ONE_CALL \
    "{\"to_uri\":\"1000@127.0.0.1:5062\",\"play_content\":\"a.wav\"}"

static void test_shutdown_refuses_new_calls(void **state)
{
    struct fixture *f = *state;
    calls_stop(&f->calls);
    construct_text(f, ONE_CALL);
    assert_null(f->placed);
    assert_int_equal(f->refused, RPC_UNAVAILABLE);
    assert_int_equal(rec.invites, 0);
    assert_int_equal(f->calls.active, 0);
    assert_int_equal(f->calls.gateway_calls[0], 0);
}

static int placing_refuse(void *arg, struct call *call, struct rpc_error *err)
{
    struct fixture *f = arg;
    assert_int_equal(rec.invites, 0); /* called before the INVITE */
    assert_ptr_equal(calls_find(&f->calls, call->process_id), call);
    return rpc_fail(err, RPC_INTERNAL_ERROR, "cannot record it");
}

/* calls_waiter.placing (request_key's record) refusing: no INVITE, the
 * call is out of the table and the ledger, its slot free. */
static void test_placing_hook_refuses(void **state)
{
    struct fixture *f = *state;
    construct_hooked(f, ONE_CALL, placing_refuse);
    assert_null(f->placed);
    assert_int_equal(f->refused, RPC_INTERNAL_ERROR);
    assert_int_equal(rec.invites, 0);
    assert_int_equal(f->calls.active, 0);
    assert_int_equal(f->calls.gateway_calls[0], 0);
    /* A later construct without the hook is placed as usual. */
    construct(f, 60);
    assert_int_equal(rec.invites, 1);
}

static void test_ring_timeout(void **state)
{
    struct fixture *f = *state;
    struct call *c = reach(f, RINGING);
    uint64_t id = c->process_id;
    expire(f, c->ring_timer);
    assert_int_equal(rec.hangups, 1);
    assert_released_once(f, id, "ring timeout", "sys", 487);
}

static void test_dial_timeout(void **state)
{
    struct fixture *f = *state;
    struct call *c = reach(f, INITIATED);
    uint64_t id = c->process_id;
    sip_event(f, SIP_EV_PROGRESS, id, 100);
    expire(f, c->dial_timer);
    assert_int_equal(rec.hangups, 1);
    assert_released_once(f, id, "call timeout", "sys", 408);
}

/* Timers that may still be armed in a later state do nothing there. */
static void test_timers_after_answer(void **state)
{
    struct fixture *f = *state;
    struct call *c = reach(f, ANSWERED);
    expire(f, c->ring_timer);
    expire(f, c->dial_timer);
    assert_int_equal(rec.delivered, 0);
    assert_int_equal(c->state, CALL_ANSWERED);
    assert_int_equal(f->calls.active, 1);
}

static void test_callee_ends(void **state)
{
    struct fixture *f = *state;
    /* Before answer the callee refuses (486) or the INVITE fails. */
    struct call *c = reach(f, RINGING);
    uint64_t id = c->process_id;
    sip_event(f, SIP_EV_FAILED, id, 486);
    assert_int_equal(rec.hangups, 0); /* the stack ended it already */
    assert_released_once(f, id, "call rejected", "usr", 486);
    /* A BYE before answer cannot be (no dialog): ignored. */
    rec_reset();
    c = reach(f, INITIATED);
    id = c->process_id;
    sip_event(f, SIP_EV_ENDED, id, 200);
    assert_int_equal(rec.delivered, 0);
    assert_ptr_equal(calls_find(&f->calls, id), c);
    call_input(c, CALL_IN_DROP, 0, true);
    /* After answer: the callee's BYE, no BYE of ours. */
    rec_reset();
    c = reach(f, ANSWERED);
    id = c->process_id;
    sip_event(f, SIP_EV_ENDED, id, 200);
    assert_int_equal(rec.hangups, 0);
    assert_released_once(f, id, "null", "usr", 200);
}

/* Several calls: every count back to zero once all ended, whatever the
 * order and the way. */
static void test_counts_return_to_zero(void **state)
{
    struct fixture *f = *state;
    struct call *a = reach(f, INITIATED);
    struct call *b = reach(f, RINGING);
    struct call *c = reach(f, ANSWERED);
    (void)c;
    assert_int_equal(f->calls.active, 3);
    assert_int_equal(f->calls.gateway_calls[0], 3);
    assert_int_not_equal(a->process_id, b->process_id);
    call_input(b, CALL_IN_DROP, 0, true);
    assert_int_equal(f->calls.gateway_calls[0], 2);
    sip_event(f, SIP_EV_FAILED, a->process_id, 503);
    assert_int_equal(f->calls.gateway_calls[0], 1);
    calls_end_all(&f->calls);
    assert_int_equal(f->calls.active, 0);
    assert_int_equal(f->calls.gateway_calls[0], 0);
    assert_int_equal(f->calls.pending, 0);
    assert_int_equal(rec.delivered, 3);
    assert_int_equal(rec.released, 3);
    assert_int_equal(rec.closes, 3);
}

/* A reload that renames the gateway stops counting its calls; one that
 * keeps the name keeps the count. */
static void test_reload_recounts(void **state)
{
    struct fixture *f = *state;
    struct call *c = reach(f, RINGING);
    static const char old_names[1][64] = {"gw"};
    calls_reload(&f->calls, old_names, 1);
    assert_int_equal(f->calls.gateway_calls[0], 1);
    snprintf(f->conf.gateways[0].name, sizeof f->conf.gateways[0].name,
             "other");
    calls_reload(&f->calls, old_names, 1);
    assert_int_equal(f->calls.gateway_calls[0], 0);
    assert_int_equal(c->gateway, -1);
    call_input(c, CALL_IN_DROP, 0, true);
    assert_int_equal(f->calls.gateway_calls[0], 0);
    assert_int_equal(f->calls.active, 0);
}

/* ---- failover (issue 13, "Routing") ------------------------------------ */

/* Forgets the last call's record (and its attempts). */
static void reset_rec(void)
{
    json_decref(rec.attempts);
    rec_reset();
}

#define TWO_GATEWAYS "[\"1000@127.0.0.1:5062\",\"2000@127.0.0.2:5064\"]"

/* Entry i of the last event's attempts: to_uri, gateway, status. */
static void assert_attempt(size_t i, const char *to_uri, const char *gateway,
                           int status)
{
    json_t *at = json_array_get(rec.attempts, i);
    assert_non_null(at);
    assert_string_equal(json_string_value(json_object_get(at, "to_uri")),
                        to_uri);
    if (gateway == NULL)
        assert_true(json_is_null(json_object_get(at, "gateway")));
    else
        assert_string_equal(
            json_string_value(json_object_get(at, "gateway")), gateway);
    assert_int_equal(json_integer_value(json_object_get(at, "status")),
                     status);
}

/* A call to TWO_GATEWAYS whose first INVITE failed with status: its
 * process id; the call in *c unless c is NULL (for a failure that ends
 * the call, which frees it). */
static uint64_t first_failed(struct fixture *f, int status, struct call **c)
{
    struct call *call = construct_to(f, TWO_GATEWAYS, 30);
    uint64_t id = call->process_id;
    if (c != NULL)
        *c = call;
    sip_event(f, SIP_EV_FAILED, id, status);
    return id;
}

/* The open call's ledger record, as a restart would read it. */
static void ledger_record(struct fixture *f, uint64_t id,
                          struct ledger_call *out)
{
    char path[128], buf[1 << 16];
    snprintf(path, sizeof path, "%s/calls.log", f->dir);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t len = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    struct ledger_call *calls = NULL;
    size_t n = 0;
    unsigned bad = 0;
    assert_int_equal(ledger_parse(buf, len, &calls, &n, &bad), 0);
    assert_int_equal(bad, 0);
    assert_int_equal(n, 1);
    assert_int_equal(calls[0].process_id, id);
    *out = calls[0];
    out->user_data = NULL;
    ledger_calls_free(calls, n);
}

static void test_failover_503_then_answer(void **state)
{
    struct fixture *f = *state;
    struct call *c = construct_to(f, TWO_GATEWAYS, 30);
    uint64_t id = c->process_id;
    struct sip_invite first = rec.invite;
    assert_string_equal(first.to_host, "127.0.0.1");
    assert_int_equal(f->calls.gateway_calls[0], 1);
    ringing(f, c); /* the ring timer runs from here, across attempts */
    sip_event(f, SIP_EV_FAILED, id, 503);
    /* A second INVITE: the next entry, the same call and RTP port, a new
     * Call-ID; the call is still Initiated and counted at gw2 now. */
    assert_int_equal(rec.invites, 2);
    assert_int_equal(rec.delivered, 0);
    assert_int_equal(rec.hangups, 0);
    assert_ptr_equal(calls_find(&f->calls, id), c);
    assert_int_equal(c->state, CALL_INITIATED);
    assert_int_equal(rec.invite.call_id, id);
    assert_string_equal(rec.invite.res_id, first.res_id);
    assert_string_equal(rec.invite.to_user, "2000");
    assert_string_equal(rec.invite.to_host, "127.0.0.2");
    assert_int_equal(rec.invite.to_port, 5064);
    assert_int_equal(rec.invite.rtp_port, first.rtp_port);
    assert_string_not_equal(rec.invite.sip_call_id, first.sip_call_id);
    assert_int_equal(rec.opens, 1);
    assert_int_equal(f->calls.active, 1);
    assert_int_equal(f->calls.gateway_calls[0], 0);
    assert_int_equal(f->calls.gateway_calls[1], 1);
    assert_int_equal(f->calls.gateway_failovers[0], 1);
    assert_int_equal(f->calls.gateway_failovers[1], 0);
    assert_string_equal(c->to_uri, "2000@127.0.0.2:5064");
    assert_true(evtimer_pending(c->ring_timer, NULL)); /* not restarted */
    /* The ledger follows the attempt. */
    struct ledger_call lc;
    ledger_record(f, id, &lc);
    assert_string_equal(lc.to_uri, "2000@127.0.0.2:5064");
    assert_string_equal(lc.sip_call_id, rec.invite.sip_call_id);
    assert_false(lc.has_dialog);
    /* Answered there: played, released once with both attempts. */
    sip_event(f, SIP_EV_ANSWERED, id, 200);
    assert_null(c->route.dial);
    rec.media_done(rec.media_owner, 0, &rec.figures);
    assert_released_once(f, id, "null", "sys", 200);
    assert_int_equal(json_array_size(rec.attempts), 2);
    assert_attempt(0, "1000@127.0.0.1:5062", "gw", 503);
    assert_attempt(1, "2000@127.0.0.2:5064", "gw2", 200);
}

/* Out of entries: the last failure is the outcome. Our stack's failures
 * (Timer B 408, a transport error's 503) move on too. */
static void test_failover_runs_out(void **state)
{
    struct fixture *f = *state;
    struct call *c = construct_to(
        f, "[\"1000@127.0.0.1:5062\",\"2000@127.0.0.2:5064\","
           "\"3000@127.0.0.1:5062\"]", 30);
    uint64_t id = c->process_id;
    struct sip_event e = sip_event_failed(id, 408, true);
    calls_on_sip_event(&f->calls, &e);
    assert_int_equal(rec.invites, 2);
    e = sip_event_failed(id, 503, true);
    calls_on_sip_event(&f->calls, &e);
    assert_int_equal(rec.invites, 3);
    assert_string_equal(rec.invite.to_user, "3000");
    assert_int_equal(f->calls.gateway_calls[0], 1);
    assert_int_equal(f->calls.gateway_calls[1], 0);
    sip_event(f, SIP_EV_FAILED, id, 504);
    assert_int_equal(rec.invites, 3);
    assert_released_once(f, id, "dial failed", "sys", 504);
    assert_int_equal(json_array_size(rec.attempts), 3);
    assert_attempt(0, "1000@127.0.0.1:5062", "gw", 408);
    assert_attempt(1, "2000@127.0.0.2:5064", "gw2", 503);
    assert_attempt(2, "3000@127.0.0.1:5062", "gw", 504);
    assert_int_equal(f->calls.gateway_failovers[0], 1);
    assert_int_equal(f->calls.gateway_failovers[1], 1);
}

/* The callee's answer ends the call at the first entry: no attempts. */
static void test_failover_not_on_486(void **state)
{
    struct fixture *f = *state;
    uint64_t id = first_failed(f, 486, NULL);
    assert_int_equal(rec.invites, 1);
    assert_released_once(f, id, "call rejected", "usr", 486);
    assert_null(rec.attempts);
    assert_int_equal(f->calls.gateway_failovers[0], 0);
}

/* A drop, a timer or a shutdown during the second attempt ends it as
 * without failover (CANCEL to the call, the attempts reported). */
static void test_failover_then_drop(void **state)
{
    struct fixture *f = *state;
    struct call *c;
    uint64_t id = first_failed(f, 500, &c);
    assert_int_equal(rec.invites, 2);
    call_input(c, CALL_IN_DROP, 0, true);
    assert_int_equal(rec.hangups, 1);
    assert_int_equal(rec.last_hangup, id);
    assert_released_once(f, id, "canceled", "sys", 487);
    assert_attempt(0, "1000@127.0.0.1:5062", "gw", 500);
    assert_attempt(1, "2000@127.0.0.2:5064", "gw2", 487);

    reset_rec();
    id = first_failed(f, 502, &c);
    expire(f, c->dial_timer); /* the budget of the first INVITE */
    assert_released_once(f, id, "call timeout", "sys", 408);
    reset_rec();
    id = first_failed(f, 503, NULL);
    calls_end_all(&f->calls);
    assert_released_once(f, id, "shutdown", "sys", 487);
}

/* gw2 full, or unusable by the gateway-state hook: nothing to move to. */
static bool usable_not_gw2(void *arg, int gateway, char *why, size_t len)
{
    (void)arg;
    snprintf(why, len, "down");
    return gateway != 1;
}

static void test_failover_needs_capacity(void **state)
{
    struct fixture *f = *state;
    f->conf.gateways[1].max_calls = 1;
    f->calls.gateway_calls[1] = 1; /* another call holds gw2's slot */
    uint64_t id = first_failed(f, 503, NULL);
    assert_int_equal(rec.invites, 1);
    f->calls.gateway_calls[1] = 0;
    assert_released_once(f, id, "dial failed", "sys", 503);
    assert_null(rec.attempts);

    reset_rec();
    f->calls.env.gateway_usable = usable_not_gw2;
    id = first_failed(f, 503, NULL);
    assert_int_equal(rec.invites, 1);
    assert_released_once(f, id, "dial failed", "sys", 503);
}

/* Two entries through one gateway at max_calls 1: the call's own slot
 * moves with it. */
static void test_failover_same_gateway(void **state)
{
    struct fixture *f = *state;
    f->conf.gateways[0].max_calls = 1;
    struct call *c = construct_to(
        f, "[\"1000@127.0.0.1:5062\",\"2000@127.0.0.1:5062\"]", 30);
    uint64_t id = c->process_id;
    sip_event(f, SIP_EV_FAILED, id, 503);
    assert_int_equal(rec.invites, 2);
    assert_int_equal(f->calls.gateway_calls[0], 1);
    call_input(c, CALL_IN_DROP, 0, true);
    assert_released_once(f, id, "canceled", "sys", 487);
}

/* A to_uri naming the gateway: the INVITE the main thread asks for
 * carries the trunk's domain, next hop, identity and headers; the call
 * echoes the entry as sent. */
static void test_trunk_invite(void **state)
{
    struct fixture *f = *state;
    struct conf_gateway *g = &f->conf.gateways[0];
    snprintf(g->transport, sizeof g->transport, "tcp");
    snprintf(g->domain, sizeof g->domain, "carrier.example");
    snprintf(g->caller_id, sizeof g->caller_id, "4001");
    snprintf(g->headers, sizeof g->headers, "X-A: 1; X-B: <sip:b;lr>");
    g->pai = true;
    struct call *c = construct_text(
        f, "{\"to_uri\":\"1000@GW\",\"play_content\":\"a.wav\"}");
    assert_non_null(c);
    assert_string_equal(c->to_uri, "1000@GW");
    assert_int_equal(c->gateway, 0);
    assert_string_equal(rec.invite.to_user, "1000");
    assert_string_equal(rec.invite.to_host, "carrier.example");
    assert_int_equal(rec.invite.to_port, 0);
    assert_string_equal(rec.invite.next_hop, "sip:127.0.0.1:5062;transport=tcp");
    assert_string_equal(rec.invite.route, "");
    assert_int_equal(rec.invite.transport, CONF_TP_TCP);
    assert_string_equal(rec.invite.from_user, "4001");
    assert_string_equal(rec.invite.from_host, "carrier.example");
    assert_string_equal(rec.invite.pai_user, "4001");
    assert_string_equal(rec.invite.headers, "X-A: 1\r\nX-B: <sip:b;lr>");
    call_input(c, CALL_IN_DROP, 0, true);

    /* Anonymous: no From user, PAI the real caller_id; a proxy (Route);
     * no port configured: none in the next hop, so none here either. */
    g->port = 0;
    snprintf(g->proxy, sizeof g->proxy, "sbc.example:5070");
    c = construct_text(f, "{\"to_uri\":\"1000@gw\",\"from_uri\":"
                          "\"anonymous\",\"play_content\":\"a.wav\"}");
    assert_non_null(c);
    assert_true(rec.invite.anonymous);
    assert_string_equal(rec.invite.from_user, "");
    assert_string_equal(rec.invite.pai_user, "4001");
    assert_string_equal(rec.invite.route, "<sip:sbc.example:5070;transport=tcp;lr>");
    assert_string_equal(rec.invite.next_hop, "");
    call_input(c, CALL_IN_DROP, 0, true);

    /* A from_uri number wins over caller_id; no domain, no proxy, udp:
     * the plain INVITE of before, at host:port. */
    g->domain[0] = g->proxy[0] = g->headers[0] = '\0';
    g->pai = false;
    g->port = 5062;
    snprintf(g->transport, sizeof g->transport, "udp");
    c = construct_text(f, "{\"to_uri\":\"1000@127.0.0.1:5062\",\"from_uri\":"
                          "\"10086\",\"play_content\":\"a.wav\"}");
    assert_non_null(c);
    assert_string_equal(c->to_uri, "1000@127.0.0.1:5062");
    assert_string_equal(rec.invite.to_host, "127.0.0.1");
    assert_int_equal(rec.invite.to_port, 5062);
    assert_string_equal(rec.invite.next_hop, "");
    assert_string_equal(rec.invite.from_user, "10086");
    assert_string_equal(rec.invite.pai_user, "");
    assert_string_equal(rec.invite.headers, "");
    call_input(c, CALL_IN_DROP, 0, true);

    /* A name that is no gateway, or a gateway's name with a port: not a
     * configured gateway. */
    assert_null(construct_text(
        f, "{\"to_uri\":\"1000@gw:5062\",\"play_content\":\"a.wav\"}"));
    assert_int_equal(f->refused, -32602);
    assert_null(construct_text(
        f, "{\"to_uri\":\"1000@nosuch\",\"play_content\":\"a.wav\"}"));
    assert_int_equal(f->refused, -32602);
}

/* ---- keys and progress (issue 14) ------------------------------------------ */

/* The first key stops the prompt; `then` plays once the stopped prompt is
 * off the stream, and its end hangs up; the event has the key. */
static void test_keys_key_then(void **state)
{
    struct fixture *f = *state;
    struct call *c = construct_with(
        f, ",\"keys\":{\"then\":\"a.wav\"},\"progress\":true");
    uint64_t id = c->process_id;
    assert_true(rec.invite.offer_te);
    answered_te(f, c, 101);
    assert_int_equal(rec.keys_calls, 1);
    assert_int_equal(rec.keys_te, 101);
    assert_int_equal(rec.plays, 1);
    assert_int_equal(rec.last_n_clips, 1);
    assert_int_equal(rec.last_plays, 2); /* play_repeat 1 */
    rec.on_key(rec.media_owner, '1');
    assert_int_equal(rec.stop_plays, 1);
    assert_int_equal(rec.plays, 1); /* then waits for the prompt's end */
    media_done_with(700, 0);       /* the stopped prompt */
    assert_int_equal(rec.plays, 2);
    assert_int_equal(rec.last_plays, 1);
    assert_int_equal(rec.hangups, 0);
    /* a key while then plays changes nothing */
    rec.on_key(rec.media_owner, '2');
    media_done_with(100, 1);       /* then's end */
    assert_int_equal(rec.hangups, 1);
    assert_released_once(f, id, "null", "sys", 200);
    assert_string_equal(rec.log, "ringing,answered,key1,released,");
    assert_string_equal(json_string_value(json_object_get(rec.last, "keys")),
                        "1");
    assert_true(json_is_integer(json_object_get(rec.last, "key_time")));
    /* then's audio is not the prompt's */
    assert_int_equal(json_integer_value(json_object_get(rec.last,
                                                        "played_ms")), 700);
    assert_int_equal(json_integer_value(json_object_get(rec.last, "plays")),
                     0);
}

/* No key within wait_seconds after the prompt: hang up, keys "". */
static void test_keys_wait_expires(void **state)
{
    struct fixture *f = *state;
    struct call *c = construct_with(f, ",\"keys\":{\"wait_seconds\":3}");
    uint64_t id = c->process_id;
    answered_te(f, c, -1);
    assert_int_equal(rec.keys_calls, 0); /* no telephone-event: INFO only */
    media_done_with(200, 2);
    assert_int_equal(rec.hangups, 0);
    assert_true(evtimer_pending(c->keys_timer, NULL));
    expire(f, c->keys_timer);
    assert_int_equal(rec.hangups, 1);
    assert_released_once(f, id, "null", "sys", 200);
    assert_string_equal(rec.log, "released,"); /* no progress asked */
    assert_string_equal(json_string_value(json_object_get(rec.last, "keys")),
                        "");
    assert_true(json_is_null(json_object_get(rec.last, "key_time")));
    assert_int_equal(json_integer_value(json_object_get(rec.last,
                                                        "played_ms")), 200);
    assert_int_equal(json_integer_value(json_object_get(rec.last, "plays")),
                     2);
}

/* Keys by INFO, max 2 with an end key: the end key completes early and
 * is not collected; no then: hang up at once. */
static void test_keys_info_max_end(void **state)
{
    struct fixture *f = *state;
    struct call *c = construct_with(
        f, ",\"keys\":{\"max\":3,\"end\":\"#\",\"stop_play\":false},"
           "\"progress\":true");
    uint64_t id = c->process_id;
    answered_te(f, c, 96);
    struct sip_event k = sip_event_key(id, '4');
    calls_on_sip_event(&f->calls, &k);
    assert_int_equal(rec.stop_plays, 0); /* stop_play false */
    media_done_with(1000, 2);
    assert_true(evtimer_pending(c->keys_timer, NULL));
    k = sip_event_key(id, 'x'); /* not a key: nothing */
    calls_on_sip_event(&f->calls, &k);
    k = sip_event_key(id, '#');
    calls_on_sip_event(&f->calls, &k);
    assert_int_equal(rec.hangups, 1);
    assert_released_once(f, id, "null", "sys", 200);
    assert_string_equal(rec.log, "ringing,answered,key4,key#,released,");
    assert_string_equal(json_string_value(json_object_get(rec.last, "keys")),
                        "4");
}

/* The callee hangs up mid-collection: the keys so far; a drop too. The
 * prompt cut short counts by the clock. */
static void test_keys_bye_mid_collection(void **state)
{
    struct fixture *f = *state;
    struct call *c = construct_with(
        f, ",\"keys\":{\"max\":2,\"stop_play\":false}");
    uint64_t id = c->process_id;
    answered_te(f, c, 101);
    rec.on_key(rec.media_owner, '7');
    sip_event(f, SIP_EV_ENDED, id, 200);
    assert_released_once(f, id, "null", "usr", 200);
    assert_string_equal(json_string_value(json_object_get(rec.last, "keys")),
                        "7");
    /* a 100 ms clip x2, cut short: at most 200 ms, no complete play */
    assert_true(json_integer_value(json_object_get(rec.last, "played_ms")) <
                200);
    assert_int_equal(json_integer_value(json_object_get(rec.last, "plays")),
                     0);
}

/* Without keys or progress: no te offered, no keys fields, no progress;
 * the figures are there; an unanswered call's are 0 and 0. */
static void test_figures_without_keys(void **state)
{
    struct fixture *f = *state;
    struct call *c = construct(f, 30);
    uint64_t id = c->process_id;
    assert_false(rec.invite.offer_te);
    answered_te(f, c, 101);
    assert_int_equal(rec.keys_calls, 0);
    assert_null(rec.on_key);
    struct sip_event k = sip_event_key(id, '1'); /* an INFO: ignored */
    calls_on_sip_event(&f->calls, &k);
    media_done_with(1600, 2);
    assert_released_once(f, id, "null", "sys", 200);
    assert_string_equal(rec.log, "released,");
    assert_null(json_object_get(rec.last, "keys"));
    assert_null(json_object_get(rec.last, "key_time"));
    assert_int_equal(json_integer_value(json_object_get(rec.last,
                                                        "played_ms")), 1600);
    assert_int_equal(json_integer_value(json_object_get(rec.last, "plays")),
                     2);
}

static void test_figures_unanswered(void **state)
{
    struct fixture *f = *state;
    struct call *c = construct_with(f, ",\"progress\":true");
    uint64_t id = c->process_id;
    struct sip_event ev = sip_event_progress(id, 183, false);
    ev.progress.sdp = true;
    calls_on_sip_event(&f->calls, &ev);
    ringing(f, c);
    ringing(f, c); /* ringing once */
    sip_event(f, SIP_EV_FAILED, id, 486);
    assert_released_once(f, id, "call rejected", "usr", 486);
    assert_string_equal(rec.log, "early_media,ringing,released,");
    assert_int_equal(json_integer_value(json_object_get(rec.last,
                                                        "played_ms")), 0);
    assert_int_equal(json_integer_value(json_object_get(rec.last, "plays")),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_construct_ring_answer_play),
        T(test_play_error),
        T(test_drop),
        T(test_shutdown),
        T(test_shutdown_refuses_new_calls),
        T(test_placing_hook_refuses),
        T(test_ring_timeout),
        T(test_dial_timeout),
        T(test_timers_after_answer),
        T(test_callee_ends),
        T(test_counts_return_to_zero),
        T(test_reload_recounts),
        T(test_failover_503_then_answer),
        T(test_failover_runs_out),
        T(test_failover_not_on_486),
        T(test_failover_then_drop),
        T(test_failover_needs_capacity),
        T(test_failover_same_gateway),
        T(test_trunk_invite),
        T(test_keys_key_then),
        T(test_keys_wait_expires),
        T(test_keys_info_max_end),
        T(test_keys_bye_mid_collection),
        T(test_figures_without_keys),
        T(test_figures_unanswered),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
