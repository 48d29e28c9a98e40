/* sipguard: what ctid's SIP side does with what it never asked for.
 * Both functions run on the SIP thread only (src/sip.c calls them); they
 * own no state across calls besides sofia-sip's log hooks.
 *
 * - sofia-sip's own log output (nua, nta, tport, ... every su_log_t) is
 *   sent through ctid's log (include/log.h) instead of raw stderr;
 * - requests that belong to no call of ctid's (OPTIONS probes, MESSAGE,
 *   SUBSCRIBE, REFER, a stray INVITE, ...) get one final answer and the
 *   nua handle nua made for them is destroyed, so a flood of them costs
 *   no memory (docs/reliability.md, "Hardening (issue 10)"). */
#ifndef CTID_SIPGUARD_H
#define CTID_SIPGUARD_H

struct nua_s;
struct su_root_s;
struct nua_handle_s;
struct sip_s;

/* Redirects every sofia-sip log object into ctid's log. Call on the SIP
 * thread once root exists, before nta or nua are created; its hook on
 * root flushes a held line before the loop sleeps. Lines keep sofia's
 * text, prefixed "sofia-sip <module>: ", one ctid line per event. */
void sipguard_log_start(struct su_root_s *root);
/* Before root is destroyed: unhooks it and writes any held line. The
 * redirection stays (sofia may log until the process ends). */
void sipguard_log_stop(struct su_root_s *root);

/* Answers and releases an incoming request nua reported on a handle that
 * belongs to no call (hmagic NULL). event is a nua_event_t for which
 * nua_event_is_incoming_request() is true; status is what nua already
 * answered (< 200: nothing yet, ctid must). Never touches any call. */
void sipguard_on_stray_request(struct nua_s *nua, int event, int status,
                               struct nua_handle_s *nh,
                               const struct sip_s *sip);

/* Answers a request inside a call that nothing else in ctid handles and
 * nua left unanswered (status < 200): 403, the call is left as it was. */
void sipguard_on_unhandled_request(struct nua_s *nua, int event,
                                   const char *res_id,
                                   struct nua_handle_s *nh);

#endif
