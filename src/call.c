/* call: notify-call resources and their state machine.
 *
 * call_transition() is the whole state machine of contract §1 and the
 * outcome table of §4, top to bottom, with no side effects. call_input()
 * feeds it one input and carries out the actions it asks for: timers, RTP,
 * CANCEL/BYE, and on release the table's release hook (CDR, on_released,
 * ledger), then call_free. Turning a construct into a call (checks,
 * prompts, INVITE) is construct.c's; call_open gives a new call its RTP
 * port and timers.
 *
 * Every struct call is owned by the call table (calls.h, keyed by
 * process_id) from construct until release; call_free is its one
 * destructor. SIP and media are reached through c->env->ops, so tests can
 * stand fakes in for their threads. */
#include "call.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "conf.h"
#include "log.h"
#include "metrics.h"
#include "sip.h"
#include "uri.h"
#include "call_int.h"

/* ---- the state machine --------------------------------------------------- */

static struct call_step step_release(unsigned extra, const char *error,
                                     const char *dropped_by, int cause)
{
    return (struct call_step){.next = CALL_RELEASED,
                              .actions = CALL_ACT_RELEASE | extra,
                              .error = error,
                              .dropped_by = dropped_by,
                              .cause = cause};
}

static struct call_step step_stay(enum call_state state, unsigned actions)
{
    return (struct call_step){.next = state, .actions = actions};
}

/* Failover (issue 13, "Routing"): which failures before answer move a
 * call on to its next to_uri entry. The gateway's or the network's
 * failures do (no response, a transport or TLS error: whatever our own
 * stack reports; 408, 500, 502, 503, 504 from the peer); the callee's
 * answers (486, 404, 480, 603, 487, ...) do not. */
static bool retryable(const struct call_facts *f)
{
    int st = f->status;
    return f->local || st == 408 || st == 500 || st == 502 || st == 503 ||
           st == 504;
}

/* A final failure response before answer, by contract §4. */
static struct call_step dial_failure(const struct call_facts *f)
{
    int st = f->status;
    if (f->entry_left && retryable(f))
        return step_stay(CALL_INITIATED, CALL_ACT_NEXT_TARGET);
    if (f->local)
        /* Our own stack gave up: nothing ever answered is a dial error;
         * provisionals but no final response is a call timeout. */
        return f->responded ? step_release(0, "call timeout", "sys", st)
                            : step_release(0, "dial error", "sys", st);
    if (st == 486 || st == 600 || st == 603)
        return step_release(0, "call rejected", "usr", st);
    return step_release(0, "dial failed", "sys", st);
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
                return step_stay(state, CALL_ACT_RING_TIMER);
            return step_stay(state, 0);
        case CALL_IN_ANSWERED:
            return step_stay(CALL_ANSWERED, CALL_ACT_START_MEDIA);
        case CALL_IN_NO_CODEC:
            return step_release(CALL_ACT_HANGUP, "dial failed", "sys", 488);
        case CALL_IN_FAILED:
            return dial_failure(f);
        case CALL_IN_RING_TIMEOUT:
            return step_release(CALL_ACT_HANGUP, "ring timeout", "sys", 487);
        case CALL_IN_DIAL_TIMEOUT:
            /* The SIP stack fails an unanswered INVITE (Timer B) before
             * dial_timeout, so reaching it means provisionals came. */
            return step_release(CALL_ACT_HANGUP, "call timeout", "sys", 408);
        case CALL_IN_DROP:
            return step_release(CALL_ACT_HANGUP, "canceled", "sys", 487);
        case CALL_IN_SHUTDOWN:
            return step_release(CALL_ACT_HANGUP, "shutdown", "sys", 487);
        case CALL_IN_SESSION_LOST: /* no session yet: as a failure */
            return step_release(CALL_ACT_HANGUP, "dial failed", "sys",
                           f->status);
        case CALL_IN_PEER_BYE:   /* no dialog yet: cannot happen */
        case CALL_IN_PLAY_DONE:  /* no media yet */
        case CALL_IN_PLAY_ERROR:
        case CALL_IN_KEY:        /* keys count once answered */
        case CALL_IN_KEYS_TIMEOUT:
        case CALL_IN_KEYS_DONE:
            return step_stay(state, 0);
        }
        break;
    case CALL_ANSWERED:
        switch (input) {
        case CALL_IN_PLAY_DONE:
            /* Collecting keys: the keys rules decide (wait, `then`). */
            if (f->collecting)
                return step_stay(state, CALL_ACT_KEYS);
            return step_release(CALL_ACT_HANGUP, NULL, "sys", 200);
        case CALL_IN_KEY:
        case CALL_IN_KEYS_TIMEOUT:
            return step_stay(state, f->collecting ? CALL_ACT_KEYS : 0);
        case CALL_IN_KEYS_DONE:  /* keys in and `then` played, or no key */
            return step_release(CALL_ACT_HANGUP, NULL, "sys", 200);
        case CALL_IN_PLAY_ERROR:
            return step_release(CALL_ACT_HANGUP, "play error", "sys", 200);
        case CALL_IN_PEER_BYE:
            return step_release(0, NULL, "usr", 200);
        case CALL_IN_FAILED:     /* the dialog died under us */
            return step_release(CALL_ACT_HANGUP, NULL, "usr", 200);
        case CALL_IN_SESSION_LOST:
            /* A failed session refresh or an expired session: the prompt
             * did not play out, and the failing status says why. */
            return step_release(CALL_ACT_HANGUP, "play error", "sys",
                                f->status);
        case CALL_IN_DROP:
            return step_release(CALL_ACT_HANGUP, NULL, "sys", 200);
        case CALL_IN_SHUTDOWN:
            return step_release(CALL_ACT_HANGUP, "shutdown", "sys", 200);
        case CALL_IN_PROVISIONAL: /* late or retransmitted responses */
        case CALL_IN_ANSWERED:
        case CALL_IN_NO_CODEC:
        case CALL_IN_RING_TIMEOUT:
        case CALL_IN_DIAL_TIMEOUT:
            return step_stay(state, 0);
        }
        break;
    case CALL_RELEASED:
        break;
    }
    return step_stay(state, 0);
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
        "play-error",   "drop",         "shutdown",  "session-lost",
        "key",          "keys-timeout", "keys-done"};
    return (unsigned)in < sizeof names / sizeof names[0] ? names[in] : "?";
}

/* ---- carrying out the actions ------------------------------------------ */

void call_route_drop(struct call *c)
{
    if (c->route.dial == NULL)
        return;
    api_construct_free(c->route.dial);
    free(c->route.dial);
    c->route.dial = NULL;
}

void call_free(struct call *c)
{
    if (c == NULL)
        return;
    if (c->media != NULL)
        c->env->ops.media_close(c->media);
    if (c->ring_timer != NULL)
        event_free(c->ring_timer);
    if (c->dial_timer != NULL)
        event_free(c->dial_timer);
    if (c->keys_timer != NULL)
        event_free(c->keys_timer);
    prompt_clips_release(c->clips, c->n_clips);
    prompt_clips_release(c->then, c->n_then);
    free(c->dialog);
    free(c->user_data);
    call_route_drop(c);
    free(c->route.tried);
    free(c);
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
             c->env->deps.conf->dial_timeout);
    call_input(c, CALL_IN_DIAL_TIMEOUT, 0, true);
}

static void call_media_done(void *owner, int error,
                            const struct media_figures *f)
{
    struct call *c = owner;
    if (c->playing_then) {
        c->playing_then = false;
    } else if (c->playing) {
        c->playing = false;
        c->played_ms += f->played_ms;
        c->plays_done += f->plays;
    }
    if (error)
        log_warn("%s: RTP send failed", c->res_id);
    else
        log_info("%s: played %u time(s), %llu ms", c->res_id,
                 c->plays_done, (unsigned long long)c->played_ms);
    call_input(c, error ? CALL_IN_PLAY_ERROR : CALL_IN_PLAY_DONE, 0, true);
}

static void call_start_media(struct call *c)
{
    evtimer_del(c->ring_timer);
    evtimer_del(c->dial_timer);
    call_route_drop(c); /* answered: no failover any more */
    c->answer_time = time(NULL);
    ledger_note_answer(c->env->deps.ledger, c->process_id, c->answer_time);
    metrics_on_answered(c->env->deps.metrics);
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
    char hostport[INET6_ADDRSTRLEN + 8];
    uri_hostport(hostport, sizeof hostport, addr, port);
    log_info("%s: answered; playing %zu clip(s) x%u as %s to %s",
             c->res_id, c->n_clips, c->plays,
             c->payload_type == 8 ? "PCMA" : "PCMU", hostport);
    call_progress(c, "answered", 0);
    if (c->has_keys)
        call_keys_listen(c);
    if (c->env->ops.media_play(c->media,
                               (const struct sockaddr *)&c->media_dest,
                          c->media_dest_len, c->payload_type, c->clips,
                          c->n_clips, c->plays) < 0) {
        log_warn("%s: cannot start RTP", c->res_id);
        call_input(c, CALL_IN_PLAY_ERROR, 0, true);
        return;
    }
    c->playing = true;
    c->play_start_ms = clock_mono_ms();
}

void call_input(struct call *c, enum call_input input, int status,
                bool local)
{
    struct call_facts facts = {.ringing = c->ringing,
                               .responded = c->responded,
                               .status = status,
                               .local = local,
                               .collecting = c->has_keys &&
                                             c->keys.phase != KEYS_DONE};
    if (input == CALL_IN_FAILED && c->state == CALL_INITIATED &&
        c->env->entry_left != NULL)
        facts.entry_left = c->env->entry_left(c->env->table, c);
    struct call_step st = call_transition(c->state, &facts, input);
    if ((st.actions & CALL_ACT_NEXT_TARGET) &&
        c->env->next_target(c->env->table, c, status, local) < 0) {
        /* The next entry could not be dialled: end with this failure. */
        facts.entry_left = false;
        st = call_transition(c->state, &facts, input);
    }
    if (st.actions & CALL_ACT_NEXT_TARGET)
        return; /* a new attempt: next_target reset what it concerns */
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
        c->env->ops.hangup(c->env->deps.sip, c->process_id);
    if (st.actions & CALL_ACT_RELEASE) {
        c->env->release(c->env->table, c, &st);
        call_free(c);
        return;
    }
    if (st.actions & CALL_ACT_START_MEDIA)
        call_start_media(c); /* may release c on error: nothing after */
    else if (st.actions & CALL_ACT_KEYS)
        call_keys_step(c, input); /* may release c: nothing after */
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
    const struct sockaddr *dest =
        m->dest_len ? (const struct sockaddr *)&m->dest : NULL;
    if (c->env->ops.media_update(c->media, dest, m->dest_len, m->rtcp_port,
                                 m->paused) < 0)
        log_warn("%s: cannot change the RTP stream (%s)", c->res_id,
                 m->paused ? "hold" : "resume");
}

void call_on_sip_event(struct call *c, const struct sip_event *ev)
{
    const struct sip_ev_answered *a = &ev->answered;
    switch (ev->type) {
    case SIP_EV_DIALOG: /* comes before the PROGRESS/ANSWERED it is for */
        if (c->dialog == NULL)
            c->dialog = malloc(sizeof *c->dialog);
        if (c->dialog != NULL) {
            *c->dialog = *ev->dialog.record;
            ledger_note_dialog(c->env->deps.ledger, c->process_id,
                               c->dialog);
        }
        break;
    case SIP_EV_PROGRESS:
        if (c->state == CALL_INITIATED && !ev->progress.local) {
            if (ev->progress.status == 180 && !c->ring_sent) {
                c->ring_sent = true;
                call_progress(c, "ringing", 0);
            }
            if (ev->progress.sdp && !c->early_media) {
                c->early_media = true;
                call_progress(c, "early_media", 0);
            }
        }
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
        c->te_payload_type = a->te_payload_type;
        c->env->ops.media_set_rtcp_port(c->media, a->rtcp_port);
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
    case SIP_EV_KEY:
        call_key(c, ev->key.key);
        break;
    case SIP_EV_GATEWAY: /* no call's: the server routes it to gateways.c */
        break;
    }
}

/* ---- creating a call (the rest is construct.c) ------------------------- */

int call_open(struct call *c, uint16_t *rtp_port, struct rpc_error *err)
{
    struct call_env *env = c->env;
    char why[256];
    c->media = env->ops.media_open(env->deps.media, c, call_media_done,
                                   rtp_port, why, sizeof why);
    if (c->media == NULL) {
        log_warn("%s: no RTP port: %s", c->res_id, why);
        return rpc_fail(err, RPC_UNAVAILABLE, "at capacity: %s", why);
    }
    c->ring_timer = evtimer_new(env->deps.base, call_ring_timeout, c);
    c->dial_timer = evtimer_new(env->deps.base, call_dial_timeout, c);
    if (c->ring_timer == NULL || c->dial_timer == NULL)
        return rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory");
    if (c->has_keys &&
        (c->keys_timer = evtimer_new(env->deps.base, call_keys_timeout,
                                     c)) == NULL)
        return rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory");
    return 0;
}


