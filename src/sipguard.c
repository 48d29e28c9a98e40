/* sipguard: what ctid's SIP side does with what it never asked for, on
 * the SIP thread (include/sipguard.h).
 *
 * Owns two things and no state besides sofia-sip's log hooks:
 *
 * 1. sofia-sip's log. Every sofia module logs through an su_log_t of its
 *    own (nua_log, nta_log, tport_log, ...) to stderr by default, in
 *    sofia's format, bypassing ctid's level and log file. Each is
 *    redirected here and each of its lines becomes one ctid log line. The
 *    logger is not told a message's level, only that it passed the
 *    module's threshold: at sofia's usual threshold (3 or less: errors,
 *    warnings and progress) lines are logged as "warn"; a module raised
 *    above 3 (NUA_DEBUG=9 and the like, for a developer) logs as "debug".
 *
 * 2. Requests outside ctid's calls. nua makes a handle for each incoming
 *    request that belongs to no dialog and hands it to the application,
 *    which must answer it (if nua did not) and destroy it: ctid never
 *    did, so every OPTIONS or MESSAGE cost ~1.5 KB for ever. Here each
 *    gets exactly one final response and its handle is released; no call
 *    is looked at. */
#include "sipguard.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "log.h"

#include <sofia-sip/nua.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_log.h>
#include <sofia-sip/su_wait.h>

/* ---- sofia-sip's log ----------------------------------------------------- */

/* The modules' log objects: exported by libsofia-sip-ua but, except
 * soa_log, declared in no public header. */
extern su_log_t nua_log[], nta_log[], tport_log[], soa_log[], iptsec_log[],
    nea_log[], sresolv_log[], stun_log[];

/* One line being assembled: sofia logs some lines in pieces, and some
 * events as a line plus "\t..." continuation lines (tport's ICMP report),
 * which are joined into one. A finished line is held until the next piece
 * shows it has no continuation, or until the SIP loop is about to sleep
 * (the prepoll hook), so nothing waits longer than the current burst of
 * work. All sofia logging happens on the SIP thread; thread-local storage
 * keeps a stray call from another thread from mixing into it. */
static _Thread_local struct {
    const su_log_t *from;
    size_t len;
    bool ended;  /* the line's '\n' was seen */
    char text[1024];
} pending;

static enum log_level sofia_level(const su_log_t *from)
{
    unsigned threshold =
        from->log_init > 1 ? from->log_level : su_log_default->log_level;
    return threshold <= 3 ? LOGL_WARN : LOGL_DEBUG;
}

static void pending_flush(void)
{
    size_t n = pending.len;
    while (n > 0 && (pending.text[n - 1] == '\r' || pending.text[n - 1] == ' '))
        n--;
    const char *name = pending.from && pending.from->log_name
                           ? pending.from->log_name
                           : "?";
    size_t skip = 0, nl = strlen(name);
    /* "nta: INVITE ...", not "nta: nta: INVITE ..." */
    if (n > nl + 2 && strncmp(pending.text, name, nl) == 0 &&
        pending.text[nl] == ':' && pending.text[nl + 1] == ' ')
        skip = nl + 2;
    if (n > skip && pending.from != NULL)
        log_msg(sofia_level(pending.from), "sofia-sip %s: %.*s", name,
                (int)(n - skip), pending.text + skip);
    pending.len = 0;
    pending.ended = false;
}

static void pending_add(char c)
{
    if (pending.len == sizeof pending.text - 1)
        pending_flush(); /* an overlong line goes out in parts */
    pending.text[pending.len++] = c;
}

static void sofia_logger(void *stream, char const *fmt, va_list ap)
{
    const su_log_t *from = stream;
    char piece[2048];
    int n = vsnprintf(piece, sizeof piece, fmt, ap);
    if (n <= 0)
        return;
    size_t len = (size_t)n < sizeof piece ? (size_t)n : sizeof piece - 1;
    if (pending.len > 0 && pending.from != from)
        pending_flush();
    pending.from = from;
    for (size_t i = 0; i < len; i++) {
        char c = piece[i];
        if (pending.ended) {
            if (c == '\t') {
                pending.ended = false;
                pending_add(';');
                pending_add(' ');
                continue;
            }
            pending_flush();
            pending.from = from;
        }
        if (c == '\n')
            pending.ended = true;
        else
            pending_add(c == '\t' ? ' ' : c);
    }
}

static void sofia_log_prepoll(void *magic, su_root_t *root)
{
    (void)magic;
    (void)root;
    if (pending.ended)
        pending_flush();
}

void sipguard_log_start(su_root_t *root)
{
    if (su_root_add_prepoll(root, sofia_log_prepoll, NULL) < 0)
        log_warn("sip: cannot hook the SIP loop; a sofia-sip log line may "
                 "wait for the next one");
    su_log_t *const logs[] = {su_log_default, su_log_global, nua_log,
                              nta_log,        tport_log,     soa_log,
                              iptsec_log,     nea_log,       sresolv_log,
                              stun_log};
    for (size_t i = 0; i < sizeof logs / sizeof logs[0]; i++)
        su_log_redirect(logs[i], sofia_logger, logs[i]);
    log_debug("sip: sofia-sip logs through ctid's log (default threshold "
              "%u)", su_log_default->log_level);
}

void sipguard_log_stop(su_root_t *root)
{
    su_root_remove_prepoll(root);
    if (pending.len > 0)
        pending_flush();
}

/* ---- requests outside ctid's calls ------------------------------------- */

/* A flood is worth one info line; a gateway's OPTIONS keepalive is not.
 * Counted on the SIP thread only. */
#define STRAY_WINDOW_S 10
#define STRAY_FLOOD 100

static struct {
    uint64_t start_ns;
    unsigned long count;
} stray_window;

static void stray_count(const char *method, const char *host)
{
    uint64_t now = clock_mono_ns();
    if (now - stray_window.start_ns >= STRAY_WINDOW_S * 1000000000ULL) {
        stray_window.start_ns = now;
        stray_window.count = 0;
    }
    if (++stray_window.count == STRAY_FLOOD)
        log_info("sip: %d requests outside any call within %d s (this one "
                 "%s from %s); each answered and released",
                 STRAY_FLOOD, STRAY_WINDOW_S, method, host);
}

/* The answer ctid gives a request nua left to it, by method. */
static int stray_status(nua_event_t event, const char **phrase)
{
    switch (event) {
    case nua_i_options:
        *phrase = sip_200_OK;
        return 200;
    case nua_i_bye:
    case nua_i_cancel:
    case nua_i_prack:
    case nua_i_update:
    case nua_i_info: /* a key for no call of ours (RFC 6086 4.2.2) */
        *phrase = sip_481_No_transaction;
        return 481;
    default:
        /* INVITE (ctid places calls, it takes none), MESSAGE, SUBSCRIBE,
         * NOTIFY, REFER, PUBLISH, REGISTER, anything else: ctid
         * understood the request and serves nothing of the kind. */
        *phrase = sip_403_Forbidden;
        return 403;
    }
}

void sipguard_on_stray_request(nua_t *nua, int event, int status,
                               nua_handle_t *nh, const sip_t *sip)
{
    const char *phrase = "";
    int answer = status;
    if (status < 200) {
        answer = stray_status((nua_event_t)event, &phrase);
        nua_respond(nh, answer, phrase, NUTAG_WITH_THIS(nua),
                    TAG_IF(answer == 200,
                           SIPTAG_ACCEPT_STR("application/sdp")),
                    TAG_END());
    }
    /* A request nua refused before making a handle is reported on the
     * stack's default handle, which must live on. */
    if (nh != nua_default(nua))
        nua_handle_destroy(nh);
    const char *method = sip && sip->sip_request
                             ? sip->sip_request->rq_method_name
                             : nua_event_name((nua_event_t)event);
    const char *host = sip && sip->sip_from && sip->sip_from->a_url->url_host
                           ? sip->sip_from->a_url->url_host
                           : "?";
    /* Debug, not info: a flood must not flood the log too. */
    log_debug("sip: %s outside any call from %s (Call-ID %s): %d", method,
              host, sip && sip->sip_call_id ? sip->sip_call_id->i_id : "?",
              answer);
    stray_count(method, host);
}

void sipguard_on_unhandled_request(nua_t *nua, int event, const char *res_id,
                                   nua_handle_t *nh)
{
    nua_respond(nh, SIP_403_FORBIDDEN, NUTAG_WITH_THIS(nua), TAG_END());
    log_info("%s: %s inside the call refused with 403; the call goes on",
             res_id, nua_event_name((nua_event_t)event));
}
