/* sip_dialog: the dialog of an answered call, on the SIP thread. Owns the
 * dialog record main keeps for crash recovery (sip_fill_dialog, and
 * keeping it in step after refreshes and target refreshes: DIALOG
 * events), and what happens inside the established dialog: the callee's
 * re-INVITE and UPDATE offers (answered here: ctid runs nua without soa),
 * the ACK's answer, and the responses to nua's session refreshes (RFC
 * 4028), and the callee's INFO requests carrying keys (issue 14). The
 * SDP state itself is session.c's, embedded in the leg. */
#include "sip_int.h"

#include <stdio.h>
#include <string.h>

#include "dtmf_info.h"
#include "log.h"

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
bool sip_fill_dialog(const struct sip_leg *leg, const sip_t *sip,
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

/* Tells main what an offer or answer changed (enum session_change). */
void sip_post_media(struct sip *s, struct sip_leg *leg,
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
void sip_on_offer(struct sip *s, struct sip_leg *leg, nua_handle_t *nh,
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
void sip_on_ack(struct sip *s, struct sip_leg *leg, const sip_t *sip)
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
void sip_on_refresh_response(struct sip *s, struct sip_leg *leg,
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

/* An INFO inside the call (RFC 6086; nua leaves it to ctid, NUTAG_APPL_
 * METHOD). Once answered, a DTMF body (dtmf_info.c: application/dtmf-relay or
 * application/dtmf) is a key for main and 200; no body at all is a
 * keepalive, 200; another content type is 415 naming the two it takes;
 * a DTMF type whose body names no key is 400 with the reason. Nothing
 * but a key changes the call. */
void sip_on_info(struct sip *s, struct sip_leg *leg, nua_handle_t *nh,
                 const sip_t *sip)
{
    if (leg->hangup || leg->bye_sent || leg->reported) {
        nua_respond(nh, 481, "Call Is Being Terminated",
                    NUTAG_WITH_THIS(s->nua), TAG_END());
        return;
    }
    if (!leg->answered) {
        /* An early dialog's INFO (RFC 6086 allows it): keys count from
         * the answer on, so it is taken and changes nothing. */
        log_info("%s: INFO before the answer: 200, not a key", leg->res_id);
        nua_respond(nh, SIP_200_OK, NUTAG_WITH_THIS(s->nua), TAG_END());
        return;
    }
    const sip_payload_t *pl = sip ? sip->sip_payload : NULL;
    const sip_content_type_t *ct = sip ? sip->sip_content_type : NULL;
    size_t len = pl ? pl->pl_len : 0;
    if (len == 0 && (ct == NULL || ct->c_type == NULL)) {
        nua_respond(nh, SIP_200_OK, NUTAG_WITH_THIS(s->nua), TAG_END());
        return;
    }
    char key = 0;
    const char *why = "";
    enum dtmf_info_result r =
        dtmf_info_parse(ct ? ct->c_type : NULL, len ? pl->pl_data : "", len,
                        &key, &why);
    if (r == DTMF_INFO_KEY) {
        nua_respond(nh, SIP_200_OK, NUTAG_WITH_THIS(s->nua), TAG_END());
        log_info("%s: key %c (info)", leg->res_id, key);
        sip_post(s, sip_event_key(leg->call_id, key));
        return;
    }
    if (r == DTMF_INFO_NOT_DTMF) {
        log_info("%s: INFO of type %s refused with 415; the call goes on",
                 leg->res_id, ct && ct->c_type ? ct->c_type : "(none)");
        nua_respond(nh, SIP_415_UNSUPPORTED_MEDIA,
                    SIPTAG_ACCEPT_STR("application/dtmf-relay, "
                                      "application/dtmf"),
                    NUTAG_WITH_THIS(s->nua), TAG_END());
        return;
    }
    log_info("%s: INFO refused with 400 (%s); the call goes on",
             leg->res_id, why);
    char phrase[128];
    snprintf(phrase, sizeof phrase, "Bad DTMF: %s", why);
    nua_respond(nh, 400, phrase, NUTAG_WITH_THIS(s->nua), TAG_END());
}
