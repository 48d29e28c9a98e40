/* sip_gateway: each gateway's registration and OPTIONS health checks, on
 * the SIP thread. Owns struct sip_gw (one per configured gateway, in
 * s->gws, made here and freed here): a nua handle REGISTERing
 * username@domain with digest credentials (nua refreshes it before
 * expiry; a failure or refusal is retried on a fresh handle after a
 * back-off doubling from min(30 s, register_expires) to 10 min), and an
 * OPTIONS ping every options_interval seconds (two missed or failed in a
 * row: down; any answer from the peer: up). Each change is one log line
 * here and one SIP_EV_GATEWAY event to the main loop (gateways.c keeps the
 * visible state). nua_shutdown sends the un-REGISTERs at exit; a gateway
 * removed by SIGHUP is unregistered by destroying its handle. */
#include "sip_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateways.h"
#include "log.h"
#include "uri.h"

#define SIP_GW_FIRST_RETRY 30 /* s; register_expires when that is smaller */

struct sip_gw {
    struct sip *s;
    unsigned index;            /* in s->conf.gateways */
    struct conf_gateway g;     /* a copy, password wiped when freed */
    /* REGISTER */
    nua_handle_t *reg_nh;
    su_timer_t *reg_timer;     /* the next try after a failure */
    bool auth_tried;           /* credentials sent for this attempt */
    int reg_state;             /* -1 not yet, 0 refused/failed, 1 ok */
    unsigned failures;         /* in a row, for the back-off */
    /* OPTIONS */
    nua_handle_t *opt_nh;      /* the ping in flight */
    su_timer_t *opt_timer;
    unsigned missed;           /* pings in a row without an answer */
    int up;                    /* -1 unknown, 0 down, 1 up */
};

static void gw_post(struct sip_gw *gw, enum sip_gw_change what, int status,
                    bool local)
{
    sip_post(gw->s, sip_event_gateway(gw->index, gw->g.name, what, status,
                                      local));
}

/* Where the gateway's REGISTER and OPTIONS go: its proxy when it has
 * one, else host:port, over its transport. With no port in the file the
 * URI has none either, as the INVITE's (calls_invite_trunk), so that sofia
 * resolves a DNS name the RFC 3263 way (SRV for the transport, then
 * A/AAAA at the transport's default port) and pings and registers where
 * calls go; a port here would make it ask for A/AAAA only. */
static void gw_uri(const struct sip_gw *gw, char *buf, size_t len)
{
    char hp[300];
    if (gw->g.proxy[0])
        snprintf(hp, sizeof hp, "%s", gw->g.proxy);
    else if (gw->g.port != 0)
        uri_hostport(hp, sizeof hp, gw->g.host, gw->g.port);
    else
        snprintf(hp, sizeof hp, strchr(gw->g.host, ':') ? "[%s]" : "%s",
                 gw->g.host);
    snprintf(buf, len, "sip:%s;transport=%s", hp,
             conf_gateway_transport(&gw->g));
}

/* ---- REGISTER ----------------------------------------------------------- */

static void gw_register(struct sip_gw *gw);

static void gw_on_retry(struct sip *s, su_timer_t *t, void *arg)
{
    (void)s;
    (void)t;
    gw_register(arg);
}

/* A new REGISTER on a fresh handle (a failed one's usage is gone). */
static void gw_register(struct sip_gw *gw)
{
    char aor[400], registrar[320], expires[16];
    if (gw->reg_nh != NULL)
        nua_handle_destroy(gw->reg_nh);
    snprintf(aor, sizeof aor, "sip:%s@%s", gw->g.username,
             conf_gateway_domain(&gw->g));
    gw_uri(gw, registrar, sizeof registrar);
    snprintf(expires, sizeof expires, "%u", gw->g.register_expires);
    gw->auth_tried = false;
    gw->reg_nh = nua_handle(gw->s->nua, NULL, SIPTAG_TO_STR(aor),
                            SIPTAG_FROM_STR(aor), TAG_END());
    if (gw->reg_nh == NULL) {
        log_error("gateway %s: cannot make a REGISTER handle", gw->g.name);
        return;
    }
    nua_register(gw->reg_nh, NUTAG_REGISTRAR(registrar),
                 NUTAG_M_USERNAME(gw->g.username),
                 /* No keepalive OPTIONS or self-validation on the side:
                  * the registrar sees REGISTERs only. */
                 NUTAG_OUTBOUND("no-options-keepalive, no-validate"),
                 NUTAG_KEEPALIVE(0), SIPTAG_EXPIRES_STR(expires), TAG_END());
}

/* A failed or refused attempt: logged with the next try, retried later
 * on a fresh handle. Never sooner than the back-off says. */
static void gw_register_failed(struct sip_gw *gw, int status,
                               const char *phrase, bool local, bool refused)
{
    if (gw->reg_state == 1 && !refused && !local) {
        /* A refresh answered with an error: the registrar lost the
         * binding (a restart); once at once, then the back-off. */
        log_warn("gateway %s: registration refresh answered %d %s; "
                 "registering again", gw->g.name, status, phrase);
        gw->reg_state = -1;
        gw_register(gw);
        return;
    }
    gw->failures++;
    unsigned delay = gateways_retry_delay(
        gw->failures, gw->g.register_expires < SIP_GW_FIRST_RETRY
                          ? gw->g.register_expires
                          : SIP_GW_FIRST_RETRY);
    time_t at = time(NULL) + delay;
    struct tm tm;
    char when[32];
    gmtime_r(&at, &tm);
    strftime(when, sizeof when, "%H:%M:%SZ", &tm);
    log_warn("gateway %s: registration %s (%d %s%s); next try at %s (in "
             "%u s)", gw->g.name, refused ? "refused" : "failed", status,
             phrase, local ? ", from our stack" : "", when, delay);
    gw_post(gw, refused ? SIP_GW_REFUSED : SIP_GW_REG_FAILED, status, local);
    gw->reg_state = 0;
    nua_handle_destroy(gw->reg_nh);
    gw->reg_nh = NULL;
    if (gw->reg_timer != NULL)
        su_timer_set_interval(gw->reg_timer, gw_on_retry, gw,
                              (su_duration_t)delay * 1000);
}

/* Answers a challenge with the gateway's credentials, once per attempt. */
static bool gw_try_auth(struct sip_gw *gw, const sip_t *sip)
{
    if (gw->auth_tried || sip == NULL)
        return false;
    msg_auth_t const *au = sip->sip_proxy_authenticate
                               ? sip->sip_proxy_authenticate
                               : sip->sip_www_authenticate;
    const char *realm = au ? msg_params_find(au->au_params, "realm=") : NULL;
    if (realm == NULL)
        return false;
    char cred[512];
    snprintf(cred, sizeof cred, "%s:%s:%s:%s", au->au_scheme, realm,
             gw->g.username, gw->g.password);
    gw->auth_tried = true;
    nua_authenticate(gw->reg_nh, NUTAG_AUTH(cred), TAG_END());
    explicit_bzero(cred, sizeof cred);
    return true;
}

static void gw_on_register(struct sip_gw *gw, int status, const char *phrase,
                           const sip_t *sip)
{
    if (status < 200)
        return;
    bool local = sip_response_is_local(gw->s->nua, sip);
    if (status < 300) {
        if (gw->reg_state != 1)
            log_info("gateway %s: registered as %s@%s (%d %s)", gw->g.name,
                     gw->g.username, conf_gateway_domain(&gw->g), status,
                     phrase);
        else
            log_debug("gateway %s: registration refreshed (%d)", gw->g.name,
                      status);
        gw->reg_state = 1;
        gw->failures = 0;
        gw->auth_tried = false; /* the next refresh may be challenged */
        gw_post(gw, SIP_GW_REGISTERED, status, false);
        return;
    }
    if ((status == 401 || status == 407) && !local && gw_try_auth(gw, sip))
        return;
    bool refused = !local && (status == 401 || status == 407 || status == 403);
    gw_register_failed(gw, status, phrase, local, refused);
}

/* ---- OPTIONS ------------------------------------------------------------ */

static void gw_set_up(struct sip_gw *gw, int up, int status, bool local)
{
    if (gw->up == up)
        return;
    gw->up = up;
    if (up)
        log_info("gateway %s: up (OPTIONS answered %d)", gw->g.name, status);
    else if (status == 0)
        log_warn("gateway %s: down (2 OPTIONS pings in a row unanswered)",
                 gw->g.name);
    else
        log_warn("gateway %s: down (2 OPTIONS pings in a row failed, last "
                 "%d from our stack)", gw->g.name, status);
    gw_post(gw, up ? SIP_GW_UP : SIP_GW_DOWN, status, local);
}

static void gw_missed(struct sip_gw *gw, int status)
{
    if (++gw->missed >= 2)
        gw_set_up(gw, 0, status, true);
}

/* Every options_interval: the ping still in flight counts as missed (the
 * stack's own timeout, up to 32 s, is too slow), then a new one. */
static void gw_on_ping(struct sip *s, su_timer_t *t, void *arg)
{
    (void)s;
    (void)t;
    struct sip_gw *gw = arg;
    if (gw->opt_nh != NULL) {
        nua_handle_destroy(gw->opt_nh);
        gw->opt_nh = NULL;
        gw_missed(gw, 0);
    }
    char to[320];
    gw_uri(gw, to, sizeof to);
    gw->opt_nh = nua_handle(gw->s->nua, NULL, SIPTAG_TO_STR(to), TAG_END());
    if (gw->opt_nh != NULL)
        nua_options(gw->opt_nh, TAG_END());
}

/* Any final response from the peer, even 404 or 405, means the host is
 * alive; our own stack's (408 timeout, 503 transport error) does not. */
static void gw_on_options(struct sip_gw *gw, int status, const sip_t *sip)
{
    if (status < 200)
        return;
    bool local = sip_response_is_local(gw->s->nua, sip);
    nua_handle_destroy(gw->opt_nh);
    gw->opt_nh = NULL;
    if (local) {
        gw_missed(gw, status);
        return;
    }
    gw->missed = 0;
    gw_set_up(gw, 1, status, false);
}

/* ---- life ------------------------------------------------------------- */

static struct sip_gw *gw_new(struct sip *s, const struct conf_gateway *g,
                             unsigned index)
{
    struct sip_gw *gw = calloc(1, sizeof *gw);
    if (gw == NULL) {
        log_error("gateway %s: out of memory", g->name);
        return NULL;
    }
    gw->s = s;
    gw->index = index;
    gw->g = *g;
    gw->reg_state = -1;
    gw->up = -1;
    if (g->reg) {
        gw->reg_timer = su_timer_create(su_root_task(s->root), 0);
        gw_register(gw);
    }
    if (g->options_interval > 0) {
        gw->opt_timer = su_timer_create(
            su_root_task(s->root), (su_duration_t)g->options_interval * 1000);
        if (gw->opt_timer != NULL)
            su_timer_set_for_ever(gw->opt_timer, gw_on_ping, gw);
        /* The first ping at once, not an interval later. */
        gw_on_ping(s, gw->opt_timer, gw);
    }
    return gw;
}

/* Frees gw; its registration handle is destroyed, which un-REGISTERs. */
static void gw_free(struct sip_gw *gw)
{
    if (gw == NULL)
        return;
    if (gw->reg_timer != NULL)
        su_timer_destroy(gw->reg_timer);
    if (gw->opt_timer != NULL)
        su_timer_destroy(gw->opt_timer);
    if (gw->reg_nh != NULL)
        nua_handle_destroy(gw->reg_nh);
    if (gw->opt_nh != NULL)
        nua_handle_destroy(gw->opt_nh);
    explicit_bzero(&gw->g, sizeof gw->g);
    free(gw);
}

void sip_gateways_start(struct sip *s)
{
    s->n_gws = s->conf.n_gateways;
    for (size_t i = 0; i < s->n_gws; i++)
        s->gws[i] = gw_new(s, &s->conf.gateways[i], (unsigned)i);
}

/* Do a and b ask for the same REGISTER and pings? */
static bool gw_same(const struct conf_gateway *a, const struct conf_gateway *b)
{
    return strcmp(a->host, b->host) == 0 && a->port == b->port &&
           strcmp(a->domain, b->domain) == 0 &&
           strcmp(a->proxy, b->proxy) == 0 &&
           strcmp(a->transport, b->transport) == 0 &&
           strcmp(a->username, b->username) == 0 &&
           strcmp(a->password, b->password) == 0 && a->reg == b->reg &&
           a->register_expires == b->register_expires &&
           a->options_interval == b->options_interval;
}

void sip_gateways_apply(struct sip *s, const struct sip_gateway_list *l)
{
    struct sip_gw *next[CONF_MAX_GATEWAYS] = {0};
    for (size_t i = 0; i < l->n; i++) {
        const struct conf_gateway *g = &l->g[i];
        for (size_t j = 0; j < s->n_gws; j++) {
            struct sip_gw *old = s->gws[j];
            if (old != NULL && strcmp(old->g.name, g->name) == 0 &&
                gw_same(&old->g, g)) {
                next[i] = old; /* unchanged: keeps its state */
                old->index = (unsigned)i;
                old->g = *g;
                s->gws[j] = NULL;
                break;
            }
        }
    }
    for (size_t j = 0; j < s->n_gws; j++)
        gw_free(s->gws[j]); /* removed or changed */
    memcpy(s->conf.gateways, l->g, sizeof s->conf.gateways);
    s->conf.n_gateways = l->n;
    s->n_gws = l->n;
    for (size_t i = 0; i < l->n; i++)
        s->gws[i] = next[i] ? next[i] : gw_new(s, &l->g[i], (unsigned)i);
}

bool sip_gateways_on_response(struct sip *s, nua_event_t event, int status,
                              const char *phrase, nua_handle_t *nh,
                              const sip_t *sip)
{
    for (size_t i = 0; i < s->n_gws; i++) {
        struct sip_gw *gw = s->gws[i];
        if (gw == NULL || nh == NULL)
            continue;
        if (nh == gw->reg_nh && event == nua_r_register) {
            if (!s->shutting_down)
                gw_on_register(gw, status, phrase, sip);
            return true;
        }
        if (nh == gw->opt_nh && event == nua_r_options) {
            gw_on_options(gw, status, sip);
            return true;
        }
        if (nh == gw->reg_nh || nh == gw->opt_nh)
            return true;
    }
    return false;
}

void sip_gateways_stop(struct sip *s)
{
    for (size_t i = 0; i < s->n_gws; i++) {
        struct sip_gw *gw = s->gws[i];
        if (gw == NULL)
            continue;
        if (gw->reg_timer != NULL)
            su_timer_reset(gw->reg_timer);
        if (gw->opt_timer != NULL)
            su_timer_reset(gw->opt_timer);
    }
}

void sip_gateways_free(struct sip *s)
{
    for (size_t i = 0; i < s->n_gws; i++) {
        struct sip_gw *gw = s->gws[i];
        if (gw == NULL)
            continue;
        /* nua_destroy frees the handles. */
        gw->reg_nh = NULL;
        gw->opt_nh = NULL;
        gw_free(gw);
        s->gws[i] = NULL;
    }
    s->n_gws = 0;
}
