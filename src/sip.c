/* sip: outbound calls with sofia-sip's nua, on the SIP thread.
 *
 * sofia-sip runs its own su_root loop and offers libevent no descriptor to
 * watch, so nua lives on a thread of its own (docs/architecture.md records
 * the measurement behind that choice). Two struct queue carry everything
 * across: commands (INVITE, HANGUP, STOP) from the main loop to this
 * thread, watched by su_root through the queue's eventfd, and events
 * (PROGRESS, ANSWERED, FAILED, ENDED) back, watched by libevent.
 *
 * This file owns the SIP thread, the nua stack and one struct sip_leg per
 * INVITE dialog. A leg lives from the INVITE until nua reports the call
 * terminated; the main loop only ever names it by call_id. */
#include "sip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "idmap.h"
#include "log.h"
#include "queue.h"
#include "session.h"
#include "sipguard.h"
#include "uri.h"
#include "version.h"

struct sip;
struct sip_leg;
#define NUA_MAGIC_T struct sip
#define NUA_HMAGIC_T struct sip_leg
#define NTA_AGENT_MAGIC_T struct sip
#define NTA_OUTGOING_MAGIC_T struct sip
#define SU_ROOT_MAGIC_T struct sip
#define SU_WAKEUP_ARG_T void
#define SU_TIMER_ARG_T void

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/nta.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/sdp.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/tport_tag.h>

enum sip_cmd_type { SIP_CMD_INVITE, SIP_CMD_HANGUP, SIP_CMD_STOP };

/* A command from the main loop: one small struct per kind. */
struct sip_cmd {
    enum sip_cmd_type type;
    union {
        /* INVITE: a heap copy, the only message with the gateway's
         * password; the SIP thread's once popped, wiped and freed by
         * sip_invite_free when the INVITE is out. */
        struct sip_invite *invite;
        uint64_t call_id; /* HANGUP */
        /* STOP: nothing */
    };
};

#define SIP_STOP_GRACE_MS 5000
#define SIP_ALLOWED_METHODS "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE"
#define SIP_RECOVER_WAIT_MS 2000
#define SIP_SOCKET_BUFFER (4u << 20)

/* One outbound INVITE dialog, owned by the SIP thread. */
struct sip_leg {
    uint64_t call_id;
    char res_id[96];
    nua_handle_t *nh;
    char request_uri[320];  /* the INVITE's, for a CANCEL after a crash */
    char to[600];           /* the INVITE's To, likewise */
    uint32_t reported_cseq; /* CSeq of the last dialog sent to main */
    char username[128];     /* digest credentials, copied from the command */
    char password[128];
    bool auth_tried;        /* one answer per challenge, never a loop */
    bool answered;          /* a 2xx was received (ACK sent by nua) */
    bool hangup;            /* main has forgotten the call: end it quietly */
    bool bye_sent;
    bool reported;          /* FAILED or ENDED has gone to main */
    struct session ss;      /* offer/answer: SDP, codec, RTP address */
    struct sip_dialog dialog; /* as last sent to main, once answered */
    bool has_dialog;
};

struct sip {
    struct conf conf;           /* a copy: SIGHUP edits the server's */
    pthread_t thread;
    struct queue *commands;     /* main -> SIP thread, struct sip_cmd */
    struct queue *events;       /* SIP thread -> main, struct sip_event */
    struct event *events_ev;    /* libevent watch on events' eventfd */
    sip_event_fn on_event;
    void *arg;
    /* Below: touched by the SIP thread only. */
    su_root_t *root;
    nua_t *nua;
    su_wait_t commands_wait;
    int commands_index;         /* su_root registration of commands_wait */
    struct idmap legs;          /* call_id -> struct sip_leg * */
    bool shutting_down;
    su_timer_t *stop_timer;     /* bounds the wait for nua_shutdown */
    /* Start-up handshake: the thread writes these, then posts started
     * once; sip_start reads them after its wait. */
    sem_t started;
    bool start_ok;
    char start_error[256];
    /* Crash recovery, before nua starts (sip_recover). */
    const struct sip_dialog *orphans;
    size_t n_orphans;
    unsigned recover_pending;   /* answers (and 487s to ACK) still awaited */
};

/* ---- SIP thread: helpers ------------------------------------------------ */

static void sip_post(struct sip *s, struct sip_event ev)
{
    if (queue_push(s->events, &ev) < 0) {
        log_error("sip: out of memory queueing an event for call %llu",
                  (unsigned long long)ev.call_id);
        sip_event_release(&ev);
    }
}

/* Sends main a copy of the leg's dialog record (a DIALOG event). */
static void sip_post_dialog(struct sip *s, const struct sip_leg *leg,
                            const struct sip_dialog *d)
{
    struct sip_event ev;
    if (sip_event_dialog(&ev, leg->call_id, d) < 0)
        log_error("sip: out of memory queueing an event for call %llu",
                  (unsigned long long)leg->call_id);
    else
        sip_post(s, ev);
}

/* The INVITE command's copy: the password wiped before it is freed. */
static void sip_invite_free(struct sip_invite *inv)
{
    explicit_bzero(inv, sizeof *inv);
    free(inv);
}

static void leg_free(struct sip *s, struct sip_leg *leg)
{
    idmap_del(&s->legs, leg->call_id);
    if (leg->nh != NULL) {
        nua_handle_bind(leg->nh, NULL);
        nua_handle_destroy(leg->nh);
    }
    explicit_bzero(leg->password, sizeof leg->password);
    free(leg);
}

/* The message's SDP body, or NULL (none, or another content type). */
static const char *sip_sdp_body(const sip_t *sip, size_t *len)
{
    if (sip == NULL || sip->sip_payload == NULL ||
        sip->sip_payload->pl_len == 0)
        return NULL;
    if (sip->sip_content_type != NULL && sip->sip_content_type->c_type &&
        strcasecmp(sip->sip_content_type->c_type, "application/sdp") != 0)
        return NULL;
    *len = sip->sip_payload->pl_len;
    return sip->sip_payload->pl_data;
}

/* Finds where to send RTP and with which payload type in a 2xx's SDP:
 * the answerer's first listed PCMA or PCMU, at an address and port ctid
 * may stream to (sdp_examine). Anything else leaves payload_type -1. */
static struct sip_event parse_answer(struct sip_leg *leg, const sip_t *sip,
                                     int status)
{
    size_t len = 0;
    const char *body = sip_sdp_body(sip, &len);
    char reason[sizeof ((struct sip_ev_answered *)0)->reason] = "";
    enum sdp_result r = session_answer(&leg->ss, body, len, reason,
                                       sizeof reason);
    if (r != SDP_OK) {
        struct sip_event ev = sip_event_answered(leg->call_id, status, -1,
                                                 NULL, 0, 0);
        ev.answered.media_refused = r == SDP_REFUSED;
        memcpy(ev.answered.reason, reason, sizeof reason);
        log_debug("%s: SDP answer unusable: %s", leg->res_id, reason);
        return ev;
    }
    return sip_event_answered(leg->call_id, status, leg->ss.payload_type,
                              &leg->ss.dest, leg->ss.dest_len,
                              leg->ss.rtcp_port);
}

/* Copies src into a fixed field; false (and nothing useful) if it does not
 * fit, since a cut header would name another dialog. */
static bool copy_field(char *dst, size_t len, const char *src)
{
    return src != NULL && (size_t)snprintf(dst, len, "%s", src) < len;
}

/* Records in d what a restarted daemon needs to end this call if ctid
 * dies now: for a CANCEL the INVITE's request line, From, To, CSeq and
 * Via branch; once answered, the peer's tag, Contact and route set for a
 * BYE. False when the response lacks any of it. */
static bool sip_fill_dialog(const struct sip_leg *leg, const sip_t *sip,
                            bool established, struct sip_dialog *d)
{
    memset(d, 0, sizeof *d);
    if (sip == NULL || sip->sip_call_id == NULL || sip->sip_from == NULL ||
        sip->sip_to == NULL || sip->sip_via == NULL ||
        sip->sip_via->v_branch == NULL || sip->sip_cseq == NULL)
        return false;
    su_home_t home[1] = {SU_HOME_INIT(home)};
    bool ok = copy_field(d->call_id, sizeof d->call_id,
                         sip->sip_call_id->i_id) &&
              copy_field(d->from, sizeof d->from,
                         sip_header_as_string(home, (const sip_header_t *)
                                                        sip->sip_from)) &&
              copy_field(d->branch, sizeof d->branch, sip->sip_via->v_branch);
    d->cseq = sip->sip_cseq->cs_seq;
    d->established = established;
    d->route[0] = '\0';
    if (ok && !established) {
        /* A CANCEL repeats the INVITE's To, without the peer's tag. */
        ok = copy_field(d->to, sizeof d->to, leg->to) &&
             copy_field(d->request_uri, sizeof d->request_uri,
                        leg->request_uri);
    } else if (ok) {
        ok = copy_field(d->to, sizeof d->to,
                        sip_header_as_string(home, (const sip_header_t *)
                                                       sip->sip_to)) &&
             copy_field(d->request_uri, sizeof d->request_uri,
                        sip->sip_contact
                            ? url_as_string(home, sip->sip_contact->m_url)
                            : leg->request_uri);
        /* The UAC's route set is the Record-Route list reversed. */
        const sip_record_route_t *rr[16];
        size_t n = 0;
        for (const sip_record_route_t *r = sip->sip_record_route;
             r != NULL && n < 16; r = r->r_next)
            rr[n++] = r;
        size_t used = 0;
        while (ok && n > 0) {
            const char *u = url_as_string(home, rr[--n]->r_url);
            int w = snprintf(d->route + used, sizeof d->route - used,
                             "%s<%s>", used ? "," : "", u ? u : "");
            ok = u != NULL && w > 0 && (size_t)w < sizeof d->route - used;
            used += ok ? (size_t)w : 0;
        }
    }
    su_home_deinit(home);
    if (!ok)
        log_warn("%s: dialog identifiers too long to keep; a crash now "
                 "would leave this call for the gateway to time out",
                 leg->res_id);
    return ok;
}

/* ---- SIP thread: commands ------------------------------------------------ */

static void sip_do_invite(struct sip *s, const struct sip_invite *inv)
{
    struct sip_leg *leg = calloc(1, sizeof *leg);
    if (leg == NULL || idmap_put(&s->legs, inv->call_id, leg) < 0) {
        free(leg);
        sip_post(s, sip_event_failed(inv->call_id, 500, true));
        return;
    }
    leg->call_id = inv->call_id;
    snprintf(leg->res_id, sizeof leg->res_id, "%s", inv->res_id);
    snprintf(leg->username, sizeof leg->username, "%s", inv->username);
    snprintf(leg->password, sizeof leg->password, "%s", inv->password);

    char local[300], target[300], from[600], to[600], sdp[512];
    uri_hostport(local, sizeof local, s->conf.sip_host, s->conf.sip_port);
    uri_hostport(target, sizeof target, inv->to_host, inv->to_port);
    if (inv->anonymous)
        snprintf(from, sizeof from,
                 "\"Anonymous\" <sip:anonymous@anonymous.invalid>");
    else
        snprintf(from, sizeof from, "<sip:%s@%s>",
                 inv->from_user[0] ? inv->from_user : s->conf.default_from,
                 inv->from_host[0] ? inv->from_host : local);
    if (inv->to_user[0])
        snprintf(to, sizeof to, "<sip:%s@%s>", inv->to_user, target);
    else
        snprintf(to, sizeof to, "<sip:%s>", target);
    snprintf(leg->to, sizeof leg->to, "%s", to);
    snprintf(leg->request_uri, sizeof leg->request_uri, "%.*s",
             (int)strlen(to) - 2, to + 1);
    uint32_t id;
    if (getrandom(&id, sizeof id, 0) != sizeof id)
        id = inv->rtp_port;
    session_init(&leg->ss, leg->res_id, conf_media_ip(&s->conf),
                 inv->rtp_port, id);
    session_offer(&leg->ss, sdp, sizeof sdp);

    leg->nh = nua_handle(s->nua, leg, SIPTAG_FROM_STR(from),
                         SIPTAG_TO_STR(to),
                         SIPTAG_CALL_ID_STR(inv->sip_call_id), TAG_END());
    if (leg->nh == NULL) {
        sip_post(s, sip_event_failed(leg->call_id, 500, true));
        leg_free(s, leg);
        return;
    }
    log_info("%s: INVITE %s from %s (rtp port %u)", leg->res_id, to, from,
             inv->rtp_port);
    nua_invite(leg->nh, SIPTAG_CONTENT_TYPE_STR("application/sdp"),
               SIPTAG_PAYLOAD_STR(sdp),
               TAG_IF(inv->anonymous, SIPTAG_PRIVACY_STR("id")), TAG_END());
}

static void sip_do_hangup(struct sip *s, uint64_t call_id)
{
    struct sip_leg *leg = idmap_get(&s->legs, call_id);
    if (leg == NULL || leg->hangup)
        return;
    leg->hangup = true;
    leg->reported = true; /* main has released the call: no more events */
    if (leg->bye_sent) {
        log_debug("%s: BYE already on its way", leg->res_id);
    } else if (leg->answered) {
        log_info("%s: BYE", leg->res_id);
        leg->bye_sent = true;
        nua_bye(leg->nh, TAG_END());
    } else {
        log_info("%s: CANCEL", leg->res_id);
        nua_cancel(leg->nh, TAG_END());
    }
}

static void sip_stop_deadline(struct sip *s, su_timer_t *t, void *arg)
{
    (void)t;
    (void)arg;
    log_warn("sip: dialogs still open %d ms after shutdown; closing anyway",
             SIP_STOP_GRACE_MS);
    su_root_break(s->root);
}

static int sip_on_commands(struct sip *s, su_wait_t *w, void *arg)
{
    (void)w;
    (void)arg;
    struct sip_cmd cmd;
    while (queue_pop(s->commands, &cmd)) {
        switch (cmd.type) {
        case SIP_CMD_INVITE:
            if (s->shutting_down)
                sip_post(s, sip_event_failed(cmd.invite->call_id, 503, true));
            else
                sip_do_invite(s, cmd.invite);
            sip_invite_free(cmd.invite);
            break;
        case SIP_CMD_HANGUP:
            sip_do_hangup(s, cmd.call_id);
            break;
        case SIP_CMD_STOP:
            if (!s->shutting_down) {
                s->shutting_down = true;
                /* nua_shutdown ends every dialog it still holds, but waits
                 * for transactions a silent peer never answers (Timer B,
                 * up to 32 s): a stopping daemon gives them
                 * SIP_STOP_GRACE_MS, then exits without freeing the stack
                 * (nua_destroy refuses before shutdown completes). */
                nua_shutdown(s->nua);
                s->stop_timer = su_timer_create(su_root_task(s->root), 0);
                if (s->stop_timer == NULL ||
                    su_timer_set_interval(s->stop_timer, sip_stop_deadline,
                                          NULL, SIP_STOP_GRACE_MS) < 0)
                    su_root_break(s->root);
            }
            break;
        }
    }
    return 0;
}

/* ---- SIP thread: nua callbacks ------------------------------------------- */

/* Answers a 401/407 with the gateway's credentials, once. */
static bool sip_try_auth(struct sip_leg *leg, const sip_t *sip)
{
    if (leg->auth_tried || leg->username[0] == '\0' || sip == NULL)
        return false;
    msg_auth_t const *au = sip->sip_proxy_authenticate
                               ? sip->sip_proxy_authenticate
                               : sip->sip_www_authenticate;
    if (au == NULL)
        return false;
    const char *realm = msg_params_find(au->au_params, "realm=");
    if (realm == NULL)
        return false;
    char cred[512];
    snprintf(cred, sizeof cred, "%s:%s:%s:%s", au->au_scheme, realm,
             leg->username, leg->password);
    leg->auth_tried = true;
    /* One answer per leg: the password is not needed again. */
    explicit_bzero(leg->password, sizeof leg->password);
    log_info("%s: answering %s challenge for realm %s as %s", leg->res_id,
             au->au_scheme, realm, leg->username);
    nua_authenticate(leg->nh, NUTAG_AUTH(cred), TAG_END());
    explicit_bzero(cred, sizeof cred); /* nua keeps its own copy */
    return true;
}

/* Did our own stack make this response (timeout, ICMP error, DNS failure)
 * rather than the peer? nta synthesises those complete with headers and a
 * To tag; what they lack is the transport the tport layer records on every
 * message it reads from the network (ai_protocol stays 0). Inside a nua
 * callback, nua_current_request() is the message of the event at hand,
 * here the response. */
static bool response_is_local(nua_t *nua, const sip_t *sip)
{
    if (sip == NULL)
        return true;
    msg_t *msg = nua_current_request(nua);
    su_addrinfo_t *ai = msg ? msg_addrinfo(msg) : NULL;
    return ai == NULL || ai->ai_protocol == 0;
}

/* ---- SIP thread: the established dialog (re-INVITE, UPDATE, refresh) ---- */

/* Tells main what an offer or answer changed (enum session_change). */
static void sip_post_media(struct sip *s, struct sip_leg *leg,
                           unsigned changes)
{
    if (changes == 0)
        return;
    bool moved = changes & SESSION_MOVED;
    sip_post(s, sip_event_media(leg->call_id, leg->ss.paused,
                                moved ? &leg->ss.dest : NULL,
                                moved ? leg->ss.dest_len : 0,
                                leg->ss.rtcp_port));
}

/* Keeps main's dialog record (the ledger, for a BYE after a crash) in step
 * with the dialog: our refresh used a higher CSeq (the BYE must go above
 * it, RFC 3261 12.2.2), or the callee's re-INVITE/UPDATE moved its
 * Contact (a target refresh: the BYE goes there). */
static void sip_note_dialog(struct sip *s, struct sip_leg *leg,
                            const sip_t *sip, bool ours)
{
    if (!leg->has_dialog || sip == NULL)
        return;
    bool changed = false;
    if (ours && sip->sip_cseq != NULL &&
        sip->sip_cseq->cs_seq > leg->dialog.cseq) {
        leg->dialog.cseq = sip->sip_cseq->cs_seq;
        changed = true;
    }
    if (!ours && sip->sip_contact != NULL) {
        su_home_t home[1] = {SU_HOME_INIT(home)};
        char *u = url_as_string(home, sip->sip_contact->m_url);
        if (u != NULL && strcmp(u, leg->dialog.request_uri) != 0 &&
            strlen(u) < sizeof leg->dialog.request_uri) {
            strcpy(leg->dialog.request_uri, u);
            changed = true;
        }
        su_home_deinit(home);
    }
    if (changed)
        sip_post_dialog(s, leg, &leg->dialog);
}

/* A re-INVITE or UPDATE inside the call. With no soa (NUTAG_MEDIA_ENABLE
 * 0) ctid answers the offer itself (session_on_offer decides): 200 with
 * its SDP, or 488 leaving the call as it was. */
static void sip_on_offer(struct sip *s, struct sip_leg *leg, nua_handle_t *nh,
                         const sip_t *sip, bool update)
{
    size_t len = 0;
    const char *body = sip_sdp_body(sip, &len);
    if (leg->hangup || leg->bye_sent) {
        nua_respond(nh, 481, "Call Is Being Terminated",
                    NUTAG_WITH_THIS(s->nua), TAG_END());
        return;
    }
    if (body == NULL && sip != NULL && sip->sip_payload != NULL &&
        sip->sip_payload->pl_len > 0) {
        log_warn("%s: %s with a body that is not SDP: 415", leg->res_id,
                 update ? "UPDATE" : "re-INVITE");
        nua_respond(nh, SIP_415_UNSUPPORTED_MEDIA,
                    SIPTAG_ACCEPT_STR("application/sdp"),
                    NUTAG_WITH_THIS(s->nua), TAG_END());
        return;
    }
    struct session_reply r;
    session_on_offer(&leg->ss, body, len, update, &r);
    nua_respond(nh, r.status, r.phrase, NUTAG_WITH_THIS(s->nua),
                TAG_IF(r.has_sdp,
                       SIPTAG_CONTENT_TYPE_STR("application/sdp")),
                TAG_IF(r.has_sdp, SIPTAG_PAYLOAD_STR(r.sdp)), TAG_END());
    sip_post_media(s, leg, r.changes);
    if (r.status < 300)
        sip_note_dialog(s, leg, sip, false);
}

/* The ACK to our 200: when that 200 carried an offer, its answer. */
static void sip_on_ack(struct sip *s, struct sip_leg *leg, const sip_t *sip)
{
    if (!leg->ss.offer_in_200)
        return;
    size_t len = 0;
    const char *body = sip_sdp_body(sip, &len);
    sip_post_media(s, leg, session_on_answer(&leg->ss, "ACK", body, len));
}

/* The final response to our session refresh (re-INVITE or UPDATE, sent by
 * nua's session timer). A failure ends the call: main reports "play
 * error" with this status (RFC 4028 section 10); the BYE is nua's. */
static void sip_on_refresh_response(struct sip *s, struct sip_leg *leg,
                                    const char *what, int status,
                                    const char *phrase, const sip_t *sip,
                                    bool local)
{
    if (status < 300) {
        log_info("%s: session refreshed (%s %d)", leg->res_id, what, status);
        size_t len = 0;
        const char *body = sip_sdp_body(sip, &len);
        if (body != NULL) /* a refresh re-INVITE's answer */
            sip_post_media(s, leg,
                           session_on_answer(&leg->ss, what, body, len));
        sip_note_dialog(s, leg, sip, true);
        return;
    }
    if (leg->reported || leg->hangup)
        return;
    log_warn("%s: session refresh (%s) failed: %d %s%s; ending the call",
             leg->res_id, what, status, phrase,
             local ? " (from our stack)" : "");
    leg->reported = true;
    sip_post(s, sip_event_session_lost(leg->call_id, status, local));
    /* nua itself ends the dialog now: after a 481 or 408 it removes the
     * session without a BYE (RFC 5057: the callee has no such dialog or
     * it timed out), after other errors it sends the BYE (RFC 4028
     * section 10). Main's hangup must not send another. */
    leg->bye_sent = true;
}

static void sip_handle_invite_response(struct sip *s, struct sip_leg *leg,
                                       int status, const char *phrase,
                                       const sip_t *sip, bool local)
{
    if (leg->answered) {
        /* A response to a refresh re-INVITE: not news for main (and its
         * dialog record must stay "established"). */
        if (status >= 200)
            sip_on_refresh_response(s, leg, "re-INVITE", status, phrase,
                                    sip, local);
        return;
    }
    log_info("%s: %d %s%s", leg->res_id, status, phrase,
             local ? " (from our stack)" : "");
    if (status < 200) {
        if (leg->hangup)
            return;
        /* The dialog record once per INVITE (a digest answer sends a new
         * one), just before the PROGRESS it came with. */
        struct sip_dialog d;
        if (!local && sip != NULL && sip->sip_cseq != NULL &&
            sip->sip_cseq->cs_seq != leg->reported_cseq &&
            sip_fill_dialog(leg, sip, false, &d)) {
            leg->reported_cseq = sip->sip_cseq->cs_seq;
            sip_post_dialog(s, leg, &d);
        }
        sip_post(s, sip_event_progress(leg->call_id, status, local));
        return;
    }
    if (status < 300) {
        leg->answered = true;
        if (leg->hangup) {
            /* 200 crossed our CANCEL: the call exists, so end it. */
            if (!leg->bye_sent) {
                log_info("%s: BYE (answer crossed CANCEL)", leg->res_id);
                leg->bye_sent = true;
                nua_bye(leg->nh, TAG_END());
            }
            return;
        }
        struct sip_event ev = parse_answer(leg, sip, status);
        leg->has_dialog = sip_fill_dialog(leg, sip, true, &leg->dialog);
        if (leg->has_dialog)
            sip_post_dialog(s, leg, &leg->dialog);
        sip_post(s, ev);
        if (ev.answered.payload_type >= 0 && leg->ss.paused)
            sip_post_media(s, leg, SESSION_HOLD);
        /* Session refresh (RFC 4028) by UPDATE without SDP where the
         * callee allows it: a re-INVITE refresh would resend the INVITE,
         * offer and all. */
        if (sip != NULL && sip->sip_allow != NULL &&
            sip_is_allowed(sip->sip_allow, sip_method_update, "UPDATE"))
            nua_set_hparams(leg->nh, NUTAG_UPDATE_REFRESH(1), TAG_END());
        return;
    }
    if ((status == 401 || status == 407) && !leg->hangup &&
        sip_try_auth(leg, sip))
        return;
    if (!leg->reported) {
        leg->reported = true;
        sip_post(s, sip_event_failed(leg->call_id, status, local));
    }
}

static void sip_on_invite_response(struct sip *s, struct sip_leg *leg,
                                   int status, const char *phrase,
                                   const sip_t *sip)
{
    sip_handle_invite_response(s, leg, status, phrase, sip,
                               response_is_local(s->nua, sip));
}

static void sip_on_state(struct sip *s, struct sip_leg *leg, int status,
                         tagi_t tags[])
{
    int state = nua_callstate_init;
    tl_gets(tags, NUTAG_CALLSTATE_REF(state), TAG_END());
    if (state != nua_callstate_terminated)
        return;
    if (!leg->reported) {
        leg->reported = true;
        if (leg->answered) {
            /* Neither side's BYE: nua ended the dialog itself (a session
             * that expired, a refresh answered 481). */
            log_warn("%s: dialog lost (%d); ending the call", leg->res_id,
                     status);
            sip_post(s, sip_event_session_lost(
                            leg->call_id, status >= 300 ? status : 408,
                            true));
        } else {
            sip_post(s, sip_event_failed(leg->call_id,
                                         status ? status : 500, true));
        }
    }
    log_debug("%s: dialog terminated", leg->res_id);
    leg_free(s, leg);
}

static void sip_callback(nua_event_t event, int status, char const *phrase,
                         nua_t *nua, struct sip *s, nua_handle_t *nh,
                         struct sip_leg *leg, sip_t const *sip,
                         tagi_t tags[])
{
    if (leg == NULL && nua_event_is_incoming_request(event)) {
        /* Not one of ctid's calls: answered and released, nothing else. */
        sipguard_on_stray_request(nua, event, status, nh, sip);
        return;
    }
    switch (event) {
    case nua_r_invite:
        if (leg != NULL)
            sip_on_invite_response(s, leg, status, phrase, sip);
        break;
    case nua_i_bye:
        if (leg != NULL && !leg->reported) {
            log_info("%s: BYE from callee", leg->res_id);
            leg->reported = true;
            sip_post(s, sip_event_ended(leg->call_id, 200, false, true));
        }
        break;
    case nua_i_state:
        if (leg != NULL)
            sip_on_state(s, leg, status, tags);
        break;
    case nua_i_invite: /* a re-INVITE: requests with no leg left above */
        sip_on_offer(s, leg, nh, sip, false);
        break;
    case nua_i_update:
        sip_on_offer(s, leg, nh, sip, true);
        break;
    case nua_i_ack:
        if (leg != NULL)
            sip_on_ack(s, leg, sip);
        break;
    case nua_r_update:
        /* Only nua's session timer sends UPDATE. */
        if (leg != NULL && status >= 200)
            sip_on_refresh_response(s, leg, "UPDATE", status, phrase, sip,
                                    response_is_local(s->nua, sip));
        break;
    case nua_r_shutdown:
        if (status >= 200)
            su_root_break(s->root);
        break;
    case nua_r_bye:
        if (leg != NULL && !leg->bye_sent && !leg->reported &&
            leg->answered && status >= 200) {
            /* A BYE ctid did not ask for: nua's session timer saw the
             * session expire without the callee's refresh. */
            log_warn("%s: session expired without a refresh; BYE sent "
                     "(answered %d)", leg->res_id, status);
            leg->reported = true;
            leg->bye_sent = true;
            sip_post(s, sip_event_session_lost(leg->call_id, 408, true));
            break;
        }
        /* fall through */
    case nua_r_cancel:
        if (leg != NULL)
            log_debug("%s: %s answered %d %s", leg->res_id,
                      nua_event_name(event), status, phrase);
        break;
    default:
        if (leg != NULL && status < 200 &&
            nua_event_is_incoming_request(event)) {
            /* A request in a call nua left to ctid and no case above
             * answers: refused, so its transaction does not hang. */
            sipguard_on_unhandled_request(nua, event, leg->res_id, nh);
            break;
        }
        if (status >= 300 && leg != NULL)
            log_debug("%s: %s %d %s", leg->res_id, nua_event_name(event),
                      status, phrase);
        break;
    }
}

/* ---- SIP thread: crash recovery ------------------------------------------ */

/* A crashed run may have left calls open at the gateway. Before nua binds
 * the SIP address, a bare nta agent on that same address (so a CANCEL's
 * Via matches the INVITE's) sends BYE for each answered dialog and CANCEL
 * for each ringing one, ACKs the 487 a CANCEL provokes, and waits at most
 * SIP_RECOVER_WAIT_MS for the answers. Best effort: a gateway that does
 * not answer ends the call by its own timers. */

static void recover_one_done(struct sip *s)
{
    if (s->recover_pending > 0 && --s->recover_pending == 0)
        su_root_break(s->root);
}

static msg_t *recover_request(nta_agent_t *ag, const struct sip_dialog *d,
                              sip_method_t method, const char *name,
                              const char *to, uint32_t cseq)
{
    msg_t *msg = nta_msg_create(ag, 0);
    if (msg == NULL)
        return NULL;
    sip_t *sip = sip_object(msg);
    su_home_t *home = msg_home(msg);
    url_t *ruri = url_make(home, d->request_uri);
    sip_request_t *rq = ruri ? sip_request_create(home, method, name,
                                                  (url_string_t *)ruri, NULL)
                             : NULL;
    sip_cseq_t *cs = sip_cseq_create(home, cseq, method, name);
    if (rq == NULL || cs == NULL ||
        sip_add_tl(msg, sip, SIPTAG_REQUEST(rq),
                   SIPTAG_CALL_ID_STR(d->call_id), SIPTAG_FROM_STR(d->from),
                   SIPTAG_TO_STR(to), SIPTAG_CSEQ(cs),
                   TAG_IF(d->route[0], SIPTAG_ROUTE_STR(d->route)),
                   SIPTAG_MAX_FORWARDS_STR("70"),
                   SIPTAG_USER_AGENT_STR("ctid/" CTID_VERSION),
                   TAG_END()) < 0) {
        msg_destroy(msg);
        return NULL;
    }
    return msg;
}

static int recover_on_response(struct sip *s, nta_outgoing_t *orq,
                               const sip_t *sip)
{
    int status = nta_outgoing_status(orq);
    if (status < 200)
        return 0;
    bool cancel = nta_outgoing_method(orq) == sip_method_cancel;
    log_info("recovery: %s for Call-ID %s answered %d",
             nta_outgoing_method_name(orq),
             sip && sip->sip_call_id ? sip->sip_call_id->i_id : "?", status);
    nta_outgoing_destroy(orq);
    if (cancel && status < 300)
        s->recover_pending++; /* the INVITE's 487 follows, to be ACKed */
    recover_one_done(s);
    return 0;
}

/* Responses no transaction of this agent owns: the 487 (or a late final
 * response) to an INVITE the crashed run sent. ACK it, as its client
 * transaction would have, so the gateway stops retransmitting. */
static int recover_on_stray(struct sip *s, nta_agent_t *ag, msg_t *msg,
                            sip_t *sip)
{
    const struct sip_dialog *d = NULL;
    if (sip != NULL && sip->sip_status != NULL && sip->sip_call_id &&
        sip->sip_cseq != NULL && sip->sip_to != NULL &&
        sip->sip_cseq->cs_method == sip_method_invite &&
        sip->sip_status->st_status >= 300)
        for (size_t i = 0; i < s->n_orphans && d == NULL; i++)
            if (!s->orphans[i].established &&
                strcmp(s->orphans[i].call_id, sip->sip_call_id->i_id) == 0)
                d = &s->orphans[i];
    if (d != NULL) {
        su_home_t home[1] = {SU_HOME_INIT(home)};
        char *to = sip_header_as_string(home, (const sip_header_t *)sip->sip_to);
        msg_t *ack = to ? recover_request(ag, d, SIP_METHOD_ACK, to,
                                          sip->sip_cseq->cs_seq)
                        : NULL;
        if (ack != NULL)
            nta_outgoing_mcreate(ag, NULL, NULL, NULL, ack,
                                 NTATAG_BRANCH_KEY(d->branch),
                                 NTATAG_STATELESS(1), TAG_END());
        su_home_deinit(home);
        log_info("recovery: ACK for %d to the INVITE of Call-ID %s",
                 sip->sip_status->st_status, d->call_id);
        recover_one_done(s);
    }
    msg_destroy(msg);
    return 0;
}

static void recover_deadline(struct sip *s, su_timer_t *t, void *arg)
{
    (void)t;
    (void)arg;
    log_warn("recovery: %u answer(s) still missing after %d ms; going on",
             s->recover_pending, SIP_RECOVER_WAIT_MS);
    su_root_break(s->root);
}

static void sip_recover(struct sip *s, const char *url)
{
    if (s->n_orphans == 0)
        return;
    nta_agent_t *ag = nta_agent_create(s->root, URL_STRING_MAKE(url),
                                       recover_on_stray, s, TAG_END());
    if (ag == NULL) {
        log_error("recovery: cannot bind %s; %zu call(s) left to the "
                  "gateway's timers", url, s->n_orphans);
        return;
    }
    for (size_t i = 0; i < s->n_orphans; i++) {
        const struct sip_dialog *d = &s->orphans[i];
        msg_t *msg = d->established
                         ? recover_request(ag, d, SIP_METHOD_BYE, d->to,
                                           d->cseq + 1)
                         : recover_request(ag, d, SIP_METHOD_CANCEL, d->to,
                                           d->cseq);
        nta_outgoing_t *orq =
            msg == NULL ? NULL
                        : nta_outgoing_mcreate(
                              ag, recover_on_response, s, NULL, msg,
                              TAG_IF(!d->established,
                                     NTATAG_BRANCH_KEY(d->branch)),
                              TAG_END());
        log_info("recovery: %s Call-ID %s to %s%s",
                 d->established ? "BYE" : "CANCEL", d->call_id,
                 d->request_uri, orq ? "" : ": cannot send");
        if (orq != NULL)
            s->recover_pending++;
    }
    su_timer_t *t = su_timer_create(su_root_task(s->root), 0);
    if (s->recover_pending > 0 && t != NULL &&
        su_timer_set_interval(t, recover_deadline, NULL,
                              SIP_RECOVER_WAIT_MS) == 0)
        su_root_run(s->root);
    if (t != NULL)
        su_timer_destroy(t);
    /* nta_agent_destroy ends the transactions still waiting. */
    nta_agent_destroy(ag);
    s->recover_pending = 0;
}

/* Timer B: how long an INVITE that gets no response at all may live. */
static unsigned sip_timer_b_ms(const struct conf *c)
{
    unsigned ms = c->dial_timeout * 1000 * 3 / 4;
    return ms < 32000 ? ms : 32000; /* RFC 3261's 64 * T1 */
}

/* ---- SIP thread: life ----------------------------------------------------- */

/* The SIP thread: set-up, the loop, tear-down. Longer than most functions
 * because nua_create's tag list is one call with a comment per tag. */
static void *sip_thread_main(void *arg)
{
    struct sip *s = arg;
    char url[320], host[300];

    su_init();
    su_home_t *home = su_home_create();
    s->root = su_root_create(s);
    if (s->root == NULL) {
        snprintf(s->start_error, sizeof s->start_error,
                 "sofia-sip: su_root_create failed");
        goto fail;
    }
    /* Without this nua_create starts a stack thread of its own and talks
     * to it through su_msg: a third thread with no work of its own. */
    su_root_threading(s->root, 0);
    sipguard_log_start(s->root);
    uri_hostport(host, sizeof host, s->conf.sip_host, s->conf.sip_port);
    snprintf(url, sizeof url, "sip:%s;transport=udp", host);
    sip_recover(s, url);
    s->nua = nua_create(s->root, sip_callback, s, NUTAG_URL(url),
                        NUTAG_MEDIA_ENABLE(0),
                        /* What ctid handles in its dialogs; nua answers
                         * anything else (REFER: no transfer, no NOTIFY)
                         * 405 with this list. UPDATE is answered by ctid
                         * (sip_on_offer), not nua: with no soa nua would
                         * answer an offer without SDP. */
                        SIPTAG_ALLOW_STR(SIP_ALLOWED_METHODS),
                        NUTAG_APPL_METHOD("UPDATE"),
                        /* RFC 4028 session timer; 0 turns it off. */
                        NUTAG_SESSION_TIMER(s->conf.session_expires),
                        NUTAG_MIN_SE(s->conf.min_se),
                        SIPTAG_SUPPORTED_STR(s->conf.session_expires
                                                 ? "timer, 100rel"
                                                 : "100rel"),
                        /* A silent peer must fail the INVITE (local 408,
                         * "dial error") before dial_timeout can fire, which
                         * then means provisionals came but no final
                         * response ("call timeout"). Passing 100 Trying up
                         * instead (NTATAG_PASS_100) leaks each 100's
                         * message in nua 1.12.11. */
                        NTATAG_SIP_T1X64(sip_timer_b_ms(&s->conf)),
                        /* Bursts of hundreds of responses must wait in
                         * the socket, not be dropped, while the thread
                         * is busy (the kernel caps this at rmem_max). */
                        TPTAG_UDP_RMEM(SIP_SOCKET_BUFFER),
                        TPTAG_UDP_WMEM(SIP_SOCKET_BUFFER),
                        SIPTAG_USER_AGENT_STR("ctid/" CTID_VERSION),
                        /* A 3xx is a failed dial, never followed: its
                         * Contact is a destination no allow-list passed
                         * (toll fraud). nua would re-INVITE it. */
                        NUTAG_AUTO302(0), NUTAG_AUTO305(0),
                        /* MESSAGE gets 403 from nua itself, before it
                         * makes a handle (else: 200 and a handle). */
                        NUTAG_ENABLEMESSAGE(0),
                        TAG_END());
    if (s->nua == NULL) {
        snprintf(s->start_error, sizeof s->start_error,
                 "cannot bind SIP to udp %s (address in use or not local?)",
                 host);
        goto fail;
    }
    su_wait_create(&s->commands_wait, queue_fd(s->commands), SU_WAIT_IN);
    s->commands_index = su_root_register(s->root, &s->commands_wait,
                                         sip_on_commands, NULL, 0);
    if (s->commands_index < 0) {
        snprintf(s->start_error, sizeof s->start_error,
                 "sofia-sip: cannot watch the command queue");
        goto fail;
    }
    s->start_ok = true;
    sem_post(&s->started);
    log_info("sip: listening on udp %s", host);

    su_root_run(s->root);

    /* nua_shutdown has ended every dialog; drop what is left. */
    struct idmap_iter it = IDMAP_ITER_INIT;
    void *leg;
    while (idmap_next(&s->legs, &it, NULL, &leg))
        free(leg); /* its handle: nua_destroy frees the handles */
    idmap_free(&s->legs);
    if (s->stop_timer != NULL)
        su_timer_destroy(s->stop_timer);
    su_root_deregister(s->root, s->commands_index);
    nua_destroy(s->nua);
    sipguard_log_stop(s->root);
    su_root_destroy(s->root);
    su_home_unref(home);
    su_deinit();
    return NULL;

fail:
    if (s->nua != NULL)
        nua_destroy(s->nua);
    if (s->root != NULL) {
        sipguard_log_stop(s->root);
        su_root_destroy(s->root);
    }
    su_home_unref(home);
    su_deinit();
    sem_post(&s->started); /* start_ok false */
    return NULL;
}

/* ---- main loop side ----------------------------------------------------- */

static void sip_on_events(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sip *s = arg;
    struct sip_event ev;
    while (queue_pop(s->events, &ev)) {
        s->on_event(s->arg, &ev);
        sip_event_release(&ev);
    }
}

/* Waits for the thread's start-up result (the semaphore it posts once). */
static int sip_wait_started(struct sip *s)
{
    while (sem_wait(&s->started) < 0)
        if (errno != EINTR)
            return -1;
    return s->start_ok ? 0 : -1;
}

/* Frees what is left in both queues once the thread is gone: INVITE
 * copies (the password wiped) and DIALOG records nobody will read. */
static void sip_free_queues(struct sip *s)
{
    struct sip_cmd cmd;
    while (s->commands != NULL && queue_pop(s->commands, &cmd))
        if (cmd.type == SIP_CMD_INVITE)
            sip_invite_free(cmd.invite);
    struct sip_event ev;
    while (s->events != NULL && queue_pop(s->events, &ev))
        sip_event_release(&ev);
    queue_free(s->commands);
    queue_free(s->events);
}

struct sip *sip_start(const struct conf *conf, struct event_base *base,
                      sip_event_fn on_event, void *arg,
                      const struct sip_dialog *orphans, size_t n_orphans,
                      char *err, size_t errlen)
{
    struct sip *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->conf = *conf;
    s->on_event = on_event;
    s->arg = arg;
    s->orphans = orphans; /* read by the thread before it reports started */
    s->n_orphans = n_orphans;
    idmap_init(&s->legs);
    sem_init(&s->started, 0, 0);
    s->commands = queue_new(sizeof(struct sip_cmd));
    s->events = queue_new(sizeof(struct sip_event));
    if (s->commands == NULL || s->events == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (pthread_create(&s->thread, NULL, sip_thread_main, s) != 0) {
        snprintf(err, errlen, "cannot start the SIP thread");
        goto fail;
    }
    if (sip_wait_started(s) < 0) {
        pthread_join(s->thread, NULL);
        snprintf(err, errlen, "%s", s->start_error);
        goto fail;
    }
    s->events_ev = event_new(base, queue_fd(s->events), EV_READ | EV_PERSIST,
                             sip_on_events, s);
    if (s->events_ev == NULL || event_add(s->events_ev, NULL) < 0) {
        snprintf(err, errlen, "cannot watch the SIP event queue");
        struct sip_cmd stop = {.type = SIP_CMD_STOP};
        queue_push(s->commands, &stop);
        pthread_join(s->thread, NULL);
        goto fail;
    }
    return s;
fail:
    if (s->events_ev != NULL)
        event_free(s->events_ev);
    sip_free_queues(s);
    sem_destroy(&s->started);
    free(s);
    return NULL;
}

void sip_stop(struct sip *s)
{
    if (s == NULL)
        return;
    struct sip_cmd stop = {.type = SIP_CMD_STOP};
    if (queue_push(s->commands, &stop) == 0)
        pthread_join(s->thread, NULL);
    event_free(s->events_ev);
    sip_free_queues(s);
    sem_destroy(&s->started);
    free(s);
}

int sip_invite(struct sip *s, const struct sip_invite *inv)
{
    struct sip_cmd cmd = {.type = SIP_CMD_INVITE};
    cmd.invite = malloc(sizeof *cmd.invite);
    if (cmd.invite == NULL)
        return -1;
    *cmd.invite = *inv;
    if (queue_push(s->commands, &cmd) < 0) {
        sip_invite_free(cmd.invite);
        return -1;
    }
    return 0;
}

int sip_hangup(struct sip *s, uint64_t call_id)
{
    struct sip_cmd cmd = {.type = SIP_CMD_HANGUP, .call_id = call_id};
    return queue_push(s->commands, &cmd);
}
