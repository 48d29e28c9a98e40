/* sip_leg: one outbound INVITE on the SIP thread, from the INVITE
 * command to nua's terminated state. Owns struct sip_leg's life (made by
 * sip_leg_invite, freed by sip_leg_free): the From/To/SDP of the INVITE,
 * digest answers (the password wiped once used), the responses that
 * become PROGRESS, ANSWERED and FAILED events, and CANCEL or BYE when main
 * hangs up. What happens once the call is answered is sip_dialog.c's. */
#include "sip_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "log.h"
#include "uri.h"

void sip_leg_free(struct sip *s, struct sip_leg *leg)
{
    if (leg->detached) {
        if (leg->prev)
            leg->prev->next = leg->next;
        else
            s->detached = leg->next;
        if (leg->next)
            leg->next->prev = leg->prev;
    } else {
        idmap_del(&s->legs, leg->call_id);
    }
    if (leg->nh != NULL) {
        nua_handle_bind(leg->nh, NULL);
        nua_handle_destroy(leg->nh);
    }
    explicit_bzero(leg->password, sizeof leg->password);
    free(leg);
    sip_stop_on_leg_gone(s);
}

unsigned sip_legs_drop(struct sip *s)
{
    unsigned n = 0;
    while (s->detached != NULL) {
        log_debug("%s: dropped at stop, its transaction still open",
                  s->detached->res_id);
        sip_leg_free(s, s->detached);
        n++;
    }
    for (;;) {
        /* a fresh walk each time: sip_leg_free changes the map */
        struct idmap_iter it = IDMAP_ITER_INIT;
        void *v;
        if (!idmap_next(&s->legs, &it, NULL, &v))
            break;
        struct sip_leg *leg = v;
        log_debug("%s: dropped at stop, its transaction still open",
                  leg->res_id);
        sip_leg_free(s, leg);
        n++;
    }
    return n;
}

/* The message's SDP body, or NULL (none, or another content type). */
const char *sip_sdp_body(const sip_t *sip, size_t *len)
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
    struct sip_event ev = sip_event_answered(
        leg->call_id, status, leg->ss.payload_type, &leg->ss.dest,
        leg->ss.dest_len, leg->ss.rtcp_port);
    ev.answered.te_payload_type = leg->ss.te_pt;
    return ev;
}

/* A leg that reported FAILED before answer leaves the legs map: the
 * call's next attempt (failover, same call_id) gets the map, and nothing
 * of this leg can reach main or be reached by main's HANGUP again. A 2xx
 * that still comes (a late answer after our Timer B) is ended with BYE. */
static void sip_leg_detach(struct sip *s, struct sip_leg *leg)
{
    if (idmap_get(&s->legs, leg->call_id) == leg)
        idmap_del(&s->legs, leg->call_id);
    leg->detached = true;
    leg->hangup = true;
    leg->reported = true;
    leg->prev = NULL;
    leg->next = s->detached;
    if (s->detached)
        s->detached->prev = leg;
    s->detached = leg;
}

/* host, or host:port, IPv6 in brackets. */
static void sip_host_text(char *buf, size_t len, const char *host,
                          uint16_t port)
{
    if (port != 0)
        uri_hostport(buf, len, host, port);
    else
        snprintf(buf, len, strchr(host, ':') ? "[%s]" : "%s", host);
}

/* From, To and the extra header lines (P-Asserted-Identity, a trunk's
 * headers) of inv; every part was checked by the main thread. For an
 * anonymous call From stays anonymous (with Privacy: id) and PAI carries
 * the identity a carrier checks. */
static void sip_leg_identities(const struct sip *s,
                               const struct sip_invite *inv, char *from,
                               size_t fromlen, char *to, size_t tolen,
                               char *extra, size_t extralen)
{
    char local[300], target[300];
    sip_host_text(local, sizeof local, conf_sip_public(&s->conf),
                  s->conf.sip_port);
    const char *from_host = inv->from_host[0] ? inv->from_host : local;
    sip_host_text(target, sizeof target, inv->to_host, inv->to_port);
    if (inv->anonymous)
        snprintf(from, fromlen,
                 "\"Anonymous\" <sip:anonymous@anonymous.invalid>");
    else
        snprintf(from, fromlen, "<sip:%s@%s>",
                 inv->from_user[0] ? inv->from_user : s->conf.default_from,
                 from_host);
    if (inv->to_user[0])
        snprintf(to, tolen, "<sip:%s@%s>", inv->to_user, target);
    else
        snprintf(to, tolen, "<sip:%s>", target);
    extra[0] = '\0';
    if (inv->pai_user[0])
        snprintf(extra, extralen, "P-Asserted-Identity: <sip:%s@%s>%s%s",
                 inv->pai_user, from_host, inv->headers[0] ? "\r\n" : "",
                 inv->headers);
    else
        snprintf(extra, extralen, "%s", inv->headers);
}

/* Contact is ctid's, not nua's: nua picks among its transports' own
 * (and with TLS enabled picks the sips: one, where ctid, a TLS client
 * with no certificate, cannot take a connection). UDP for udp and tls
 * trunks (see docs/operations.md: a tls trunk's requests inside the
 * dialog come over the TLS connection or to this address), TCP for a tcp
 * trunk. */
static void sip_leg_contact(const struct sip *s, const struct sip_invite *inv,
                            char *buf, size_t len)
{
    char local[300];
    sip_host_text(local, sizeof local, conf_sip_public(&s->conf),
                  s->conf.sip_port);
    snprintf(buf, len, "<sip:%s%s>", local,
             inv->transport == CONF_TP_TCP ? ";transport=tcp" : "");
}

void sip_leg_invite(struct sip *s, const struct sip_invite *inv)
{
    if (idmap_get(&s->legs, inv->call_id) != NULL) {
        /* main INVITEs again only after FAILED, which detached the leg */
        log_error("%s: an INVITE for a call with an INVITE in progress",
                  inv->res_id);
        sip_post(s, sip_event_failed(inv->call_id, 500, true));
        return;
    }
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

    char from[600], to[600], extra[1500], sdp[512];
    sip_leg_identities(s, inv, from, sizeof from, to, sizeof to, extra,
                       sizeof extra);
    snprintf(leg->to, sizeof leg->to, "%s", to);
    snprintf(leg->request_uri, sizeof leg->request_uri, "%.*s",
             (int)strlen(to) - 2, to + 1);
    uint32_t id;
    if (getrandom(&id, sizeof id, 0) != sizeof id)
        id = inv->rtp_port;
    session_init(&leg->ss, leg->res_id, conf_media_public(&s->conf),
                 inv->rtp_port, id);
    leg->ss.offer_te = inv->offer_te;
    session_offer(&leg->ss, sdp, sizeof sdp);

    /* Where packets go, when not to the Request-URI's host: a proxy is a
     * loose route (Route: <sip:PROXY;lr>, replaced by the callee's
     * Record-Route once answered); a trunk whose domain is not its host,
     * or that takes tcp or tls, is this handle's outbound proxy
     * (NUTAG_PROXY, nta's default proxy for every request of the handle):
     * the packets go to host:port over the transport while Request-URI
     * and To keep the domain, and no Route header tells the carrier
     * about it (a Route naming the carrier itself is one more thing
     * for its SBC to strip). NUTAG_PROXY is an nta tag, which nua_handle
     * drops from a handle's parameters (it keeps nua and soa tags only):
     * it is set with nua_set_hparams, which nua applies before the
     * INVITE queued after it. */
    leg->nh = nua_handle(s->nua, leg, SIPTAG_FROM_STR(from),
                         SIPTAG_TO_STR(to),
                         SIPTAG_CALL_ID_STR(inv->sip_call_id),
                         TAG_IF(inv->route[0],
                                NUTAG_INITIAL_ROUTE_STR(inv->route)),
                         TAG_END());
    if (leg->nh == NULL) {
        sip_post(s, sip_event_failed(leg->call_id, 500, true));
        sip_leg_free(s, leg);
        return;
    }
    if (inv->next_hop[0])
        nua_set_hparams(leg->nh, NUTAG_PROXY(inv->next_hop), TAG_END());
    if (inv->transport == CONF_TP_TLS)
        snprintf(leg->tls_hop, sizeof leg->tls_hop, "%s",
                 inv->route[0] ? inv->route : inv->next_hop);
    log_info("%s: INVITE %s from %s%s%s%s%s (rtp port %u)", leg->res_id, to,
             from, inv->route[0] ? " via " : "", inv->route,
             inv->next_hop[0] ? " to " : "", inv->next_hop, inv->rtp_port);
    char contact[400];
    sip_leg_contact(s, inv, contact, sizeof contact);
    nua_invite(leg->nh, SIPTAG_CONTENT_TYPE_STR("application/sdp"),
               SIPTAG_PAYLOAD_STR(sdp),
               SIPTAG_CONTACT_STR(contact),
               TAG_IF(inv->anonymous, SIPTAG_PRIVACY_STR("id")),
               TAG_IF(extra[0], SIPTAG_HEADER_STR(extra)), TAG_END());
}

void sip_leg_hangup(struct sip *s, uint64_t call_id)
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
bool sip_response_is_local(nua_t *nua, const sip_t *sip)
{
    if (sip == NULL)
        return true;
    msg_t *msg = nua_current_request(nua);
    su_addrinfo_t *ai = msg ? msg_addrinfo(msg) : NULL;
    return ai == NULL || ai->ai_protocol == 0;
}

/* One line saying what our own stack's failure of the INVITE means. nta's
 * "503 DNS Error": the name never resolved, so no connection was tried
 * (not blamed on a TLS certificate); a TLS hop's other 503 or 408: the
 * handshake or certificate, or silence. */
static void sip_leg_explain_local(const struct sip_leg *leg, int status,
                                  const char *phrase)
{
    if (status == 503 && phrase != NULL && strcmp(phrase, "DNS Error") == 0)
        log_warn("%s: the next hop's name did not resolve (no SRV, A or "
                 "AAAA record); the SIP stack asks the DNS servers of "
                 "/etc/resolv.conf and does not read /etc/hosts",
                 leg->res_id);
    else if (leg->tls_hop[0] && (status == 503 || status == 408))
        log_warn("%s: TLS to %s failed (%d): its certificate was refused "
                 "(not signed by a CA of tls_ca_file, or not for that host "
                 "name; tls_verify), or it did not answer; sofia-sip's line "
                 "above says which", leg->res_id, leg->tls_hop, status);
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
    size_t sdp_len = 0;
    bool sdp = sip_sdp_body(sip, &sdp_len) != NULL;
    log_info("%s: %d %s%s%s", leg->res_id, status, phrase,
             local ? " (from our stack)" : "",
             status < 200 && sdp ? " (with SDP: early media)" : "");
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
        struct sip_event ev = sip_event_progress(leg->call_id, status, local);
        ev.progress.sdp = sdp;
        sip_post(s, ev);
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
    if (local)
        sip_leg_explain_local(leg, status, phrase);
    if (!leg->reported) {
        leg->reported = true;
        sip_post(s, sip_event_failed(leg->call_id, status, local));
        sip_leg_detach(s, leg);
    }
    /* A challenge ctid does not answer (no credentials, or a second one
     * after ours: a wrong password) leaves nua's call waiting for
     * nua_authenticate, never terminated: without this its handle stays
     * until nua_shutdown gives up at exit. */
    if (status == 401 || status == 407)
        sip_leg_free(s, leg);
}

void sip_leg_on_invite_response(struct sip *s, struct sip_leg *leg,
                                int status, const char *phrase,
                                const sip_t *sip)
{
    sip_handle_invite_response(s, leg, status, phrase, sip,
                               sip_response_is_local(s->nua, sip));
}

void sip_leg_on_state(struct sip *s, struct sip_leg *leg, int status,
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
    sip_leg_free(s, leg);
}
