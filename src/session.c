/* session: offer/answer for one call's dialog (include/session.h).
 *
 * ctid only sends audio, and nua runs without its media engine, so ctid
 * answers the callee's offers itself: 200 with its own SDP (same port and
 * codec, direction per RFC 3264 6.1) or 488 leaving everything as it was.
 * An offer or answer that is sendonly, inactive or has c=0.0.0.0 (RFC
 * 2543) pauses the RTP; a sendrecv or recvonly one resumes it; a new
 * address redirects it. The callers (sip_leg.c, sip_dialog.c) do the SIP
 * I/O and tell the main loop about the changes.
 *
 * Owns nothing beyond the struct session its caller embeds. */
#include "session.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "uri.h"

void session_init(struct session *ss, const char *res_id, const char *ip,
                  uint16_t rtp_port, uint32_t id)
{
    memset(ss, 0, sizeof *ss);
    ss->res_id = res_id;
    ss->ip = ip;
    ss->family = strchr(ip, ':') ? AF_INET6 : AF_INET;
    ss->rtp_port = rtp_port;
    ss->id = id & 0x7fffffff;
    ss->version = ss->id - 1; /* the offer's version equals the id */
    ss->payload_type = -1;
    ss->te_pt = -1;
}

/* Our next SDP: the version goes up by one for every new SDP (RFC 3264
 * section 8). */
static int session_write(struct session *ss, enum sdp_dir dir, char *buf,
                         size_t len)
{
    struct sdp_local l = {.ip = ss->ip,
                          .port = ss->rtp_port,
                          .session = ss->id,
                          .version = ++ss->version,
                          .payload_type = ss->payload_type,
                          .dir = dir,
                          .te = ss->offer_te,
                          .te_pt = ss->te_pt >= 0 ? ss->te_pt
                                                  : SESSION_TE_PT};
    return sdp_write(&l, buf, len);
}

int session_offer(struct session *ss, char *buf, size_t len)
{
    return session_write(ss, SDP_SENDRECV, buf, len);
}

static void addr_text(const struct sockaddr_storage *a, char *buf,
                      size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const void *)a;
        inet_ntop(AF_INET6, &a6->sin6_addr, ip, sizeof ip);
        uri_hostport(buf, len, ip, ntohs(a6->sin6_port));
    } else {
        const struct sockaddr_in *a4 = (const void *)a;
        inet_ntop(AF_INET, &a4->sin_addr, ip, sizeof ip);
        uri_hostport(buf, len, ip, ntohs(a4->sin_port));
    }
}

/* Takes what an accepted offer or answer says; one log line per change. */
static unsigned session_apply(struct session *ss, const struct sdp_peer *p,
                              const char *what)
{
    unsigned changes = 0;
    char where[INET6_ADDRSTRLEN + 10];
    if (p->addr_len > 0 && (p->addr_len != ss->dest_len ||
                            memcmp(&p->addr, &ss->dest, p->addr_len) != 0 ||
                            p->rtcp_port != ss->rtcp_port)) {
        ss->dest = p->addr;
        ss->dest_len = p->addr_len;
        ss->rtcp_port = p->rtcp_port;
        changes |= SESSION_MOVED;
    }
    if (p->paused != ss->paused)
        changes |= SESSION_HOLD;
    ss->paused = p->paused;
    addr_text(&ss->dest, where, sizeof where);
    if ((changes & SESSION_HOLD) && ss->paused)
        log_info("%s: hold (%s: %s%s); RTP paused, the prompt's clock runs "
                 "on", ss->res_id, what, sdp_dir_name(p->dir),
                 p->hold_address ? ", c=0.0.0.0" : "");
    else if (changes & SESSION_HOLD)
        log_info("%s: resume (%s: %s); RTP to %s", ss->res_id, what,
                 sdp_dir_name(p->dir), where);
    if (changes & SESSION_MOVED)
        log_info("%s: RTP redirected to %s (%s)", ss->res_id, where, what);
    return changes;
}

enum sdp_result session_answer(struct session *ss, const char *body,
                               size_t len, char *why, size_t whylen)
{
    struct sdp_peer p;
    enum sdp_result r =
        sdp_examine(body, len, -1, ss->family, false, &p, why, whylen);
    if (r != SDP_OK)
        return r;
    ss->payload_type = p.payload_type;
    ss->te_pt = ss->offer_te ? p.te_pt : -1;
    ss->dest = p.addr;
    ss->dest_len = p.addr_len;
    ss->rtcp_port = p.rtcp_port;
    ss->paused = p.paused;
    if (p.paused) /* an answer may say sendonly/inactive too */
        log_info("%s: hold (the answer says %s)", ss->res_id,
                 sdp_dir_name(p.dir));
    return SDP_OK;
}

void session_on_offer(struct session *ss, const char *body, size_t len,
                      bool update, struct session_reply *r)
{
    const char *what = update ? "UPDATE" : "re-INVITE";
    memset(r, 0, sizeof *r);
    r->status = 200;
    r->phrase = "OK";
    if (body == NULL && (update || ss->payload_type < 0)) {
        log_info("%s: %s without SDP (session refresh): 200", ss->res_id,
                 what);
        return;
    }
    if (body == NULL) {
        /* Our 200 offers (sendrecv, the codec in use); the ACK answers. */
        r->has_sdp = session_write(ss, SDP_SENDRECV, r->sdp,
                                   sizeof r->sdp) > 0;
        ss->offer_in_200 = true;
        log_info("%s: re-INVITE without SDP: 200 with our offer",
                 ss->res_id);
        return;
    }
    struct sdp_peer p;
    char why[160] = "offer before the call is answered";
    enum sdp_result res =
        ss->payload_type < 0
            ? SDP_REFUSED
            : sdp_examine(body, len, ss->payload_type, ss->family, true, &p,
                          why, sizeof why);
    if (res != SDP_OK) {
        log_warn("%s: %s refused with 488, the call goes on unchanged: %s",
                 ss->res_id, what, why);
        r->status = 488;
        r->phrase = "Not Acceptable Here";
        return;
    }
    enum sdp_dir dir = sdp_answer_dir(p.dir);
    r->has_sdp = session_write(ss, dir, r->sdp, sizeof r->sdp) > 0;
    log_info("%s: %s answered 200 (%s)", ss->res_id, what, sdp_dir_name(dir));
    r->changes = session_apply(ss, &p, what);
}

unsigned session_on_answer(struct session *ss, const char *what,
                           const char *body, size_t len)
{
    struct sdp_peer p;
    char why[160];
    if (body == NULL) {
        if (ss->offer_in_200)
            log_warn("%s: %s without the answer to our offer; media "
                     "unchanged", ss->res_id, what);
        ss->offer_in_200 = false;
        return 0;
    }
    ss->offer_in_200 = false;
    if (sdp_examine(body, len, ss->payload_type, ss->family, true, &p, why,
                    sizeof why) != SDP_OK) {
        log_warn("%s: answer in the %s unusable (%s); media unchanged",
                 ss->res_id, what, why);
        return 0;
    }
    return session_apply(ss, &p, what);
}
