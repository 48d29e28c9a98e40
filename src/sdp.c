/* sdp: writing ctid's SDP and judging a peer's (include/sdp.h).
 *
 * ctid only sends audio, so what it needs from a peer's SDP is one audio
 * stream: where to send (c= and m= port), which G.711 law, and whether
 * the peer wants audio at all (direction, RFC 2543's c=0.0.0.0 hold).
 * Everything it must never stream to is refused here, in one place:
 * ports 0 and above 65535, multicast, broadcast, reserved and unspecified
 * addresses, and an address family the media socket cannot reach.
 *
 * Owns nothing: pure functions over the caller's buffers. Parsing is
 * sofia-sip's sdp parser, on a home freed before returning. */
#include "sdp.h"
#include "rtcp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/sdp.h>
#include <sofia-sip/su_alloc.h>

static const char *const dir_names[] = {"inactive", "sendonly", "recvonly",
                                        "sendrecv"};

const char *sdp_dir_name(enum sdp_dir d)
{
    return (unsigned)d < 4 ? dir_names[d] : "?";
}

enum sdp_dir sdp_answer_dir(enum sdp_dir offer)
{
    switch (offer) {
    case SDP_SENDONLY:
        return SDP_RECVONLY;
    case SDP_RECVONLY:
        return SDP_SENDONLY;
    case SDP_INACTIVE:
        return SDP_INACTIVE;
    case SDP_SENDRECV:
        break;
    }
    return SDP_SENDRECV;
}

bool sdp_addr_usable(const struct sockaddr *sa, const char **why)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)sa;
        uint32_t ip = ntohl(a->sin_addr.s_addr);
        if (ip == 0)
            *why = "unspecified address";
        else if (ip == 0xffffffffu)
            *why = "broadcast address";
        else if ((ip >> 28) == 0xe)
            *why = "multicast address";
        else if ((ip >> 28) == 0xf)
            *why = "reserved address (240.0.0.0/4)";
        else
            return true;
        return false;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)sa;
        if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr))
            *why = "unspecified address";
        else if (IN6_IS_ADDR_MULTICAST(&a->sin6_addr))
            *why = "multicast address";
        else
            return true;
        return false;
    }
    *why = "not an IP address";
    return false;
}

/* The payload type to use from this m= line, or -1. */
static int pick_pt(const sdp_media_t *m, int want_pt)
{
    for (const sdp_rtpmap_t *rm = m->m_rtpmaps; rm != NULL; rm = rm->rm_next)
        if (want_pt < 0 ? (rm->rm_pt == 8 || rm->rm_pt == 0)
                        : rm->rm_pt == (unsigned)want_pt)
            return (int)rm->rm_pt;
    return -1;
}

/* The payload type of telephone-event/8000 on this m= line, -1 none:
 * whatever dynamic number the peer chose (RFC 4733 section 7.1.1). */
static int find_te(const sdp_media_t *m)
{
    for (const sdp_rtpmap_t *rm = m->m_rtpmaps; rm != NULL; rm = rm->rm_next)
        if (rm->rm_encoding != NULL &&
            strcasecmp(rm->rm_encoding, "telephone-event") == 0 &&
            rm->rm_rate == 8000)
            return (int)rm->rm_pt;
    return -1;
}

/* Fills out's address from c= and the port; false with why if unusable. */
static bool take_address(const sdp_connection_t *c, unsigned long port,
                         int family, bool allow_hold, struct sdp_peer *out,
                         char *why, size_t whylen)
{
    const char *bad = NULL;
    memset(&out->addr, 0, sizeof out->addr);
    out->addr_len = 0;
    out->hold_address = false;
    if (c == NULL || c->c_address == NULL) {
        snprintf(why, whylen, "no c= line for the audio stream");
        return false;
    }
    if (c->c_addrtype == sdp_addr_ip6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&out->addr;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, c->c_address, &a6->sin6_addr) != 1)
            bad = "not a numeric IPv6 address";
        out->addr_len = sizeof *a6;
    } else if (c->c_addrtype == sdp_addr_ip4) {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&out->addr;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, c->c_address, &a4->sin_addr) != 1)
            bad = "not a numeric IPv4 address";
        out->addr_len = sizeof *a4;
    } else {
        bad = "not an IN IP4 or IN IP6 address";
    }
    if (bad == NULL && out->addr_len > 0) {
        const char *reason = NULL;
        if (!sdp_addr_usable((struct sockaddr *)&out->addr, &reason)) {
            if (allow_hold && strcmp(reason, "unspecified address") == 0) {
                /* RFC 2543 hold: the peer wants no audio for now. */
                out->hold_address = true;
                memset(&out->addr, 0, sizeof out->addr);
                out->addr_len = 0;
                return true;
            }
            bad = reason;
        } else if (out->addr.ss_family != family) {
            bad = "address family differs from ctid's media address";
        }
    }
    if (bad != NULL) {
        snprintf(why, whylen, "c= %s: %s", c->c_address, bad);
        out->addr_len = 0;
        return false;
    }
    return true;
}

/* Judges one audio m= line; SDP_NO_CODEC lets the caller try the next. */
static enum sdp_result examine_media(const sdp_session_t *sdp,
                                     const sdp_media_t *m, int want_pt,
                                     int family, bool allow_hold,
                                     struct sdp_peer *out, char *why,
                                     size_t whylen)
{
    if (m->m_port > 65535) {
        snprintf(why, whylen, "m=audio port %lu is above 65535", m->m_port);
        return SDP_REFUSED;
    }
    int pt = pick_pt(m, want_pt);
    if (pt < 0) {
        snprintf(why, whylen, want_pt < 0 ? "offers neither PCMA nor PCMU"
                              : want_pt == 8 ? "lacks PCMA, the codec in use"
                                             : "lacks PCMU, the codec in use");
        return SDP_NO_CODEC;
    }
    const sdp_connection_t *c =
        m->m_connections ? m->m_connections : sdp->sdp_connection;
    if (!take_address(c, m->m_port, family, allow_hold, out, why, whylen))
        return SDP_REFUSED;
    out->payload_type = pt;
    out->te_pt = find_te(m);
    /* RFC 3605: the callee's RTCP port when it is not RTP + 1. */
    const sdp_attribute_t *rtcp = sdp_attribute_find(m->m_attributes, "rtcp");
    out->rtcp_port = rtcp_sdp_port(rtcp ? rtcp->a_value : NULL,
                                   c ? c->c_address : NULL);
    out->dir = (enum sdp_dir)(m->m_mode & 3);
    out->paused = out->hold_address || out->dir == SDP_SENDONLY ||
                  out->dir == SDP_INACTIVE;
    return SDP_OK;
}

enum sdp_result sdp_examine(const char *body, size_t len, int want_pt,
                            int family, bool allow_hold, struct sdp_peer *out,
                            char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    out->payload_type = -1;
    out->te_pt = -1;
    snprintf(why, whylen, "no audio stream");
    if (body == NULL || len == 0) {
        snprintf(why, whylen, "no SDP");
        return SDP_REFUSED;
    }
    su_home_t *home = su_home_new(sizeof(su_home_t));
    if (home == NULL) {
        snprintf(why, whylen, "out of memory");
        return SDP_REFUSED;
    }
    enum sdp_result r = SDP_REFUSED;
    bool no_codec = false, rejected = false;
    sdp_parser_t *p = sdp_parse(home, body, (issize_t)len, 0);
    sdp_session_t *sdp = p ? sdp_session(p) : NULL;
    if (sdp == NULL) {
        snprintf(why, whylen, "SDP does not parse: %s",
                 p ? sdp_parsing_error(p) : "out of memory");
        goto done;
    }
    for (sdp_media_t *m = sdp->sdp_media; m != NULL; m = m->m_next) {
        if (m->m_type != sdp_media_audio)
            continue;
        if (m->m_port == 0 || m->m_rejected) {
            rejected = true; /* the peer refused this stream */
            continue;
        }
        char mwhy[160];
        r = examine_media(sdp, m, want_pt, family, allow_hold, out, mwhy,
                          sizeof mwhy);
        if (r != SDP_NO_CODEC) {
            if (r != SDP_OK)
                snprintf(why, whylen, "%s", mwhy);
            goto done;
        }
        no_codec = true;
        snprintf(why, whylen, "%s", mwhy);
    }
    if (no_codec)
        r = SDP_NO_CODEC;
    else if (rejected)
        snprintf(why, whylen, "the audio stream is refused (m=audio port 0)");
    else
        r = SDP_REFUSED;
done:
    if (r != SDP_OK) {
        out->payload_type = -1;
        out->te_pt = -1;
    }
    if (p != NULL)
        sdp_parser_free(p);
    su_home_unref(home);
    return r;
}

int sdp_write(const struct sdp_local *l, char *buf, size_t len)
{
    const char *family = strchr(l->ip, ':') ? "IP6" : "IP4";
    char fmts[16], maps[160];
    int f, m;
    if (l->payload_type < 0) {
        f = snprintf(fmts, sizeof fmts, "8 0");
        m = snprintf(maps, sizeof maps,
                     "a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n");
    } else {
        f = snprintf(fmts, sizeof fmts, "%d", l->payload_type);
        m = snprintf(maps, sizeof maps, "a=rtpmap:%d %s/8000\r\n",
                     l->payload_type, l->payload_type == 8 ? "PCMA" : "PCMU");
    }
    if (l->te) { /* RFC 4733 section 7.1.1: the 16 DTMF events */
        snprintf(fmts + f, sizeof fmts - (size_t)f, " %d", l->te_pt & 127);
        snprintf(maps + m, sizeof maps - (size_t)m,
                 "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-15\r\n",
                 l->te_pt & 127, l->te_pt & 127);
    }
    int n = snprintf(buf, len,
                     "v=0\r\n"
                     "o=ctid %u %u IN %s %s\r\n"
                     "s=ctid\r\n"
                     "c=IN %s %s\r\n"
                     "t=0 0\r\n"
                     "m=audio %u RTP/AVP %s\r\n"
                     "%s"
                     "a=ptime:20\r\n"
                     "a=%s\r\n",
                     l->session, l->version, family, l->ip, family, l->ip,
                     l->port, fmts, maps, sdp_dir_name(l->dir));
    return n < 0 || (size_t)n >= len ? -1 : n;
}
