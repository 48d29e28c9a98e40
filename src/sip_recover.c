/* sip_recover: crash recovery on the SIP thread, before nua starts.
 * Owns nothing past sip_recover's return: a bare nta agent, its
 * transactions and a deadline timer, all gone when it returns. The
 * dialogs it ends are the ledger's (docs/reliability.md, "Crash
 * recovery"), lent by sip_start's caller. */
#include "sip_int.h"

#include <string.h>

#include "log.h"
#include "version.h"

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

void sip_recover(struct sip *s, const char *url)
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
