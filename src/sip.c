/* sip: outbound calls with sofia-sip's nua, on the SIP thread.
 *
 * sofia-sip runs its own su_root loop and offers libevent no descriptor to
 * watch, so nua lives on a thread of its own (docs/architecture.md records
 * the measurement behind that choice). Two struct queue carry everything
 * across: commands (struct sip_cmd: INVITE, HANGUP, GATEWAYS, STOP) from the main
 * loop to this thread, watched by su_root through the queue's eventfd,
 * and events (struct sip_event: PROGRESS, ANSWERED, FAILED, ENDED,
 * MEDIA, SESSION_LOST, DIALOG) back, watched by libevent. The start-up
 * result is a semaphore the thread posts once.
 *
 * This file owns struct sip, the SIP thread's life (set-up, loop,
 * tear-down), the nua stack and its callback, the command queue's reader
 * and the event queue's writer, and the main loop's side (sip_start,
 * sip_stop, sip_invite, sip_hangup). One call's INVITE is sip_leg.c's,
 * its established dialog sip_dialog.c's, crash recovery sip_recover.c's,
 * the gateways' REGISTER and OPTIONS sip_gateway.c's (all share
 * src/sip_int.h). The main loop only ever names a leg by
 * call_id. */
#include "sip_int.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sipguard.h"
#include "uri.h"
#include "version.h"

/* ---- SIP thread: helpers ------------------------------------------------ */

void sip_post(struct sip *s, struct sip_event ev)
{
    if (queue_push(s->events, &ev) < 0) {
        log_error("sip: out of memory queueing an event for call %llu",
                  (unsigned long long)ev.call_id);
        sip_event_release(&ev);
    }
}

/* Sends main a copy of the leg's dialog record (a DIALOG event). */
void sip_post_dialog(struct sip *s, const struct sip_leg *leg,
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

/* ---- SIP thread: the stop --------------------------------------------------
 * nua_shutdown waits for every transaction still open, and nua_destroy
 * refuses to free a stack whose shutdown has not completed. A peer may
 * never end one (an INVITE whose CANCEL nobody answers lives until the
 * peer's 487 or Timer C, minutes), and the only way to give one up is to
 * destroy its handle, which sofia-sip 1.12 refuses once nua_shutdown has
 * been called. So the stop goes in that order: the calls' legs first
 * (main has sent their BYE or CANCEL; nua frees each at its terminated
 * state), the legs still open after SIP_STOP_GRACE_MS are dropped (their
 * handles destroyed), and then nua_shutdown (the un-REGISTERs), which
 * nua_r_shutdown ends. */

/* nua_shutdown, once: the legs are gone. */
static void sip_stop_nua(struct sip *s)
{
    if (s->nua_stopping)
        return;
    s->nua_stopping = true;
    nua_shutdown(s->nua);
}

void sip_stop_on_leg_gone(struct sip *s)
{
    if (s->shutting_down && idmap_count(&s->legs) == 0 &&
        s->detached == NULL)
        sip_stop_nua(s);
}

/* The stop timer: at SIP_STOP_GRACE_MS the legs left are dropped and
 * nua_shutdown given SIP_STOP_FINAL_MS more; after that (or with no leg
 * to drop: nua_shutdown itself is what waits) the loop ends anyway and
 * the stack is left unfreed. */
static void sip_stop_deadline(struct sip *s, su_timer_t *t, void *arg)
{
    (void)arg;
    unsigned legs = s->stop_dropped ? 0 : sip_legs_drop(s);
    if (legs == 0) {
        log_error("sip: shutdown not complete %d ms after stop (a gateway's "
                  "un-REGISTER unanswered?); exiting without freeing the "
                  "SIP stack", SIP_STOP_GRACE_MS +
                  (s->stop_dropped ? SIP_STOP_FINAL_MS : 0));
        su_root_break(s->root);
        return;
    }
    s->stop_dropped = true;
    log_warn("sip: dialogs still open %d ms after shutdown; dropping %u "
             "call(s) whose peer never ended them", SIP_STOP_GRACE_MS, legs);
    sip_stop_nua(s); /* sip_legs_drop has (sip_stop_on_leg_gone) */
    if (su_timer_set_interval(t, sip_stop_deadline, NULL,
                              SIP_STOP_FINAL_MS) < 0)
        su_root_break(s->root);
}

/* The STOP command: no more gateway traffic, then the order above. */
static void sip_stop_begin(struct sip *s)
{
    s->shutting_down = true;
    sip_gateways_stop(s);
    s->stop_timer = su_timer_create(su_root_task(s->root), 0);
    if (s->stop_timer == NULL ||
        su_timer_set_interval(s->stop_timer, sip_stop_deadline, NULL,
                              SIP_STOP_GRACE_MS) < 0) {
        su_root_break(s->root);
        return;
    }
    sip_stop_on_leg_gone(s); /* no leg: nua_shutdown now */
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
                sip_leg_invite(s, cmd.invite);
            sip_invite_free(cmd.invite);
            break;
        case SIP_CMD_GATEWAYS:
            if (!s->shutting_down)
                sip_gateways_apply(s, cmd.gateways);
            explicit_bzero(cmd.gateways, sizeof *cmd.gateways);
            free(cmd.gateways);
            break;
        case SIP_CMD_HANGUP:
            sip_leg_hangup(s, cmd.call_id);
            break;
        case SIP_CMD_STOP:
            if (!s->shutting_down)
                sip_stop_begin(s);
            break;
        }
    }
    return 0;
}

/* nua_r_bye and nua_r_cancel. A BYE ctid did not ask for is nua's
 * session timer: it saw the session expire without the callee's refresh. */
static void sip_on_bye_cancel_response(struct sip *s, struct sip_leg *leg,
                                       nua_event_t event, int status,
                                       const char *phrase)
{
    if (leg == NULL)
        return;
    if (event == nua_r_bye && !leg->bye_sent && !leg->reported &&
        leg->answered && status >= 200) {
        log_warn("%s: session expired without a refresh; BYE sent "
                 "(answered %d)", leg->res_id, status);
        leg->reported = true;
        leg->bye_sent = true;
        sip_post(s, sip_event_session_lost(leg->call_id, 408, true));
        return;
    }
    log_debug("%s: %s answered %d %s", leg->res_id, nua_event_name(event),
              status, phrase);
}

/* nua's one callback: every response and request, routed by kind. */
static void sip_callback(nua_event_t event, int status, char const *phrase,
                         nua_t *nua, struct sip *s, nua_handle_t *nh,
                         struct sip_leg *leg, sip_t const *sip,
                         tagi_t tags[])
{
    if (leg == NULL && !nua_event_is_incoming_request(event) &&
        sip_gateways_on_response(s, event, status, phrase, nh, sip))
        return; /* REGISTER and OPTIONS of the gateways (sip_gateway.c) */
    if (leg == NULL && nua_event_is_incoming_request(event)) {
        /* Not one of ctid's calls: answered and released, nothing else. */
        sipguard_on_stray_request(nua, event, status, nh, sip);
        return;
    }
    switch (event) {
    case nua_r_invite:
        if (leg != NULL)
            sip_leg_on_invite_response(s, leg, status, phrase, sip);
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
            sip_leg_on_state(s, leg, status, tags);
        break;
    case nua_i_invite: /* a re-INVITE: requests with no leg left above */
        sip_on_offer(s, leg, nh, sip, false);
        break;
    case nua_i_update:
        sip_on_offer(s, leg, nh, sip, true);
        break;
    case nua_i_info: /* requests with no leg left above */
        sip_on_info(s, leg, nh, sip);
        break;
    case nua_i_ack:
        if (leg != NULL)
            sip_on_ack(s, leg, sip);
        break;
    case nua_r_update:
        /* Only nua's session timer sends UPDATE. */
        if (leg != NULL && status >= 200)
            sip_on_refresh_response(s, leg, "UPDATE", status, phrase, sip,
                                    sip_response_is_local(s->nua, sip));
        break;
    case nua_r_shutdown:
        if (status >= 200) {
            log_info("sip: stack shut down (%d %s)", status, phrase);
            su_root_break(s->root);
        }
        break;
    case nua_r_bye:
    case nua_r_cancel:
        sip_on_bye_cancel_response(s, leg, event, status, phrase);
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

/* Timer B: how long an INVITE that gets no response at all may live. */
static unsigned sip_timer_b_ms(const struct conf *c)
{
    unsigned ms = c->dial_timeout * 1000 * 3 / 4;
    return ms < 32000 ? ms : 32000; /* RFC 3261's 64 * T1 */
}

/* ---- SIP thread: life ----------------------------------------------------- */

/* nua with ctid's settings, bound to url (and sips_url with TLS from
 * tls_dir when not NULL); NULL when it cannot bind. Longer than most
 * functions because nua_create's tag list is one call with a comment per
 * tag. */
static nua_t *sip_nua_create(struct sip *s, const char *url,
                             const char *sips_url, const char *tls_dir)
{
    return nua_create(s->root, sip_callback, s, NUTAG_URL(url),
                    /* TLS, client side, only when a gateway uses it: its
                     * trust is tls_dir/cafile.pem (sip_tls.c). With
                     * tls_verify the server's certificate must chain to
                     * it and name the host ctid connects to (sofia checks
                     * subjectAltName DNS entries and the CN against the
                     * host of the next hop: the gateway's host, or its
                     * proxy). TLS version 0: the highest both sides
                     * speak (1 would be TLS 1.0 only). */
                    TAG_IF(sips_url, NUTAG_SIPS_URL(sips_url)),
                    TAG_IF(sips_url, TPTAG_CERTIFICATE(tls_dir)),
                    TAG_IF(sips_url, TPTAG_TLS_VERSION(0)),
                    TAG_IF(sips_url, TPTAG_TLS_VERIFY_POLICY(
                                         sip_tls_verify(&s->conf)
                                             ? TPTLS_VERIFY_SUBJECTS_OUT
                                             : TPTLS_VERIFY_NONE)),
                    /* A TCP or TLS connection closed under a pending
                     * request (a TLS handshake or certificate refused, the
                     * peer gone) fails that request at once (local 503)
                     * instead of after Timer B. */
                    TPTAG_SDWN_ERROR(1),
                    NUTAG_MEDIA_ENABLE(0),
                    /* What ctid handles in its dialogs; nua answers
                     * anything else (REFER: no transfer, no NOTIFY)
                     * 405 with this list. UPDATE is answered by ctid
                     * (sip_on_offer), not nua: with no soa nua would
                     * answer an offer without SDP. INFO too (keys,
                     * sip_on_info): nua would answer every one 200. */
                    SIPTAG_ALLOW_STR(SIP_ALLOWED_METHODS),
                    NUTAG_APPL_METHOD("UPDATE"),
                    NUTAG_APPL_METHOD("INFO"),
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
}

/* nua's addresses: "sip:PUBLIC:PORT;maddr=BIND" (the sip bind address,
 * with public_address in Contact and Via; sofia binds maddr and
 * advertises the host), over UDP and TCP both: TCP always, since a
 * trunk may be set to tcp by a SIGHUP and RFC 3261 has every UA take
 * TCP; TLS ("sips:", on a port of the kernel's choice: ctid only dials
 * out over TLS) only when a gateway names it at start. */
static void sip_urls(const struct conf *c, char *url, size_t len,
                     char *sips_url, size_t sips_len)
{
    char pub[300], bind[300];
    uri_hostport(pub, sizeof pub, conf_sip_public(c), c->sip_port);
    uri_host(bind, sizeof bind, c->sip_host);
    if (strcmp(conf_sip_public(c), c->sip_host) == 0)
        snprintf(url, len, "sip:%s", pub);
    else
        snprintf(url, len, "sip:%s;maddr=%s", pub, bind);
    uri_host(pub, sizeof pub, conf_sip_public(c));
    snprintf(sips_url, sips_len, "sips:%s:*;maddr=%s", pub, bind);
}

/* Set-up: the root, crash recovery, nua, the command queue's watch; host
 * gets the SIP address. False with start_error set. */
static bool sip_thread_setup(struct sip *s, char *host, size_t hostlen)
{
    char url[640], sips_url[640], recover_url[320], tls_dir[PATH_MAX + 8];
    bool tls = conf_uses_tls(&s->conf);
    s->root = su_root_create(s);
    if (s->root == NULL) {
        snprintf(s->start_error, sizeof s->start_error,
                 "sofia-sip: su_root_create failed");
        return false;
    }
    /* Without this nua_create starts a stack thread of its own and talks
     * to it through su_msg: a third thread with no work of its own. */
    su_root_threading(s->root, 0);
    sipguard_log_start(s->root);
    uri_hostport(host, hostlen, s->conf.sip_host, s->conf.sip_port);
    snprintf(recover_url, sizeof recover_url, "sip:%s;transport=udp", host);
    sip_recover(s, recover_url);
    if (tls && sip_tls_prepare(&s->conf, tls_dir, sizeof tls_dir,
                               s->start_error, sizeof s->start_error) < 0)
        return false;
    sip_urls(&s->conf, url, sizeof url, sips_url, sizeof sips_url);
    s->nua = sip_nua_create(s, url, tls ? sips_url : NULL, tls_dir);
    if (s->nua == NULL) {
        snprintf(s->start_error, sizeof s->start_error,
                 "cannot bind SIP to udp and tcp %s%s (address in use or "
                 "not local?)", host, tls ? " and tls" : "");
        return false;
    }
    su_wait_create(&s->commands_wait, queue_fd(s->commands), SU_WAIT_IN);
    s->commands_index = su_root_register(s->root, &s->commands_wait,
                                         sip_on_commands, NULL, 0);
    if (s->commands_index < 0) {
        snprintf(s->start_error, sizeof s->start_error,
                 "sofia-sip: cannot watch the command queue");
        return false;
    }
    sip_gateways_start(s);
    return true;
}

/* Tear-down after the loop (ran: set-up succeeded), or after a failed
 * set-up: what exists is freed. */
static void sip_thread_teardown(struct sip *s, bool ran)
{
    if (ran) {
        /* nua_shutdown has ended every dialog; drop what is left. */
        struct idmap_iter it = IDMAP_ITER_INIT;
        void *v;
        while (idmap_next(&s->legs, &it, NULL, &v)) {
            struct sip_leg *leg = v;
            explicit_bzero(leg->password, sizeof leg->password);
            free(leg); /* its handle: nua_destroy frees the handles */
        }
        idmap_free(&s->legs);
        while (s->detached != NULL) {
            struct sip_leg *leg = s->detached;
            s->detached = leg->next;
            explicit_bzero(leg->password, sizeof leg->password);
            free(leg);
        }
        if (s->stop_timer != NULL)
            su_timer_destroy(s->stop_timer);
        su_root_deregister(s->root, s->commands_index);
    }
    sip_gateways_free(s);
    if (s->nua != NULL)
        nua_destroy(s->nua);
    if (s->root != NULL) {
        sipguard_log_stop(s->root);
        su_root_destroy(s->root);
    }
}

/* The SIP thread: set-up, the start-up handshake, the loop, tear-down. */
static void *sip_thread_main(void *arg)
{
    struct sip *s = arg;
    char host[300];

    su_init();
    su_home_t *home = su_home_create();
    bool ok = sip_thread_setup(s, host, sizeof host);
    if (ok) {
        s->start_ok = true;
        sem_post(&s->started);
        log_info("sip: listening on udp and tcp %s%s%s%s", host,
                 conf_uses_tls(&s->conf) ? " (and tls, for tls gateways)"
                                         : "",
                 s->conf.public_address[0] ? ", Contact and Via " : "",
                 s->conf.public_address);
        su_root_run(s->root);
    }
    sip_thread_teardown(s, ok);
    su_home_unref(home);
    su_deinit();
    if (!ok)
        sem_post(&s->started); /* start_ok false: sip_start joins */
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
        const struct sip_handlers *h = &s->handlers;
        if (ev.type == SIP_EV_GATEWAY) {
            if (h->on_gateway != NULL)
                h->on_gateway(h->gateway_arg, &ev);
        } else if (h->on_call != NULL) {
            h->on_call(h->call_arg, &ev);
        }
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
        if (cmd.type == SIP_CMD_INVITE) {
            sip_invite_free(cmd.invite);
        } else if (cmd.type == SIP_CMD_GATEWAYS) {
            explicit_bzero(cmd.gateways, sizeof *cmd.gateways);
            free(cmd.gateways);
        }
    struct sip_event ev;
    while (s->events != NULL && queue_pop(s->events, &ev))
        sip_event_release(&ev);
    queue_free(s->commands);
    queue_free(s->events);
}

struct sip *sip_start(const struct conf *conf, struct event_base *base,
                      const struct sip_handlers *h,
                      const struct sip_dialog *orphans, size_t n_orphans,
                      char *err, size_t errlen)
{
    struct sip *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->conf = *conf;
    s->handlers = *h;
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

int sip_gateways_update(struct sip *s, const struct conf *conf)
{
    struct sip_cmd cmd = {.type = SIP_CMD_GATEWAYS};
    cmd.gateways = malloc(sizeof *cmd.gateways);
    if (cmd.gateways == NULL)
        return -1;
    cmd.gateways->n = conf->n_gateways;
    memcpy(cmd.gateways->g, conf->gateways, sizeof cmd.gateways->g);
    if (queue_push(s->commands, &cmd) < 0) {
        explicit_bzero(cmd.gateways, sizeof *cmd.gateways);
        free(cmd.gateways);
        return -1;
    }
    return 0;
}

int sip_hangup(struct sip *s, uint64_t call_id)
{
    struct sip_cmd cmd = {.type = SIP_CMD_HANGUP, .call_id = call_id};
    return queue_push(s->commands, &cmd);
}
