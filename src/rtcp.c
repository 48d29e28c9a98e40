/* rtcp: RTCP sender reports for ctid's send-only RTP streams (RFC 3550
 * §6). Owns each stream's RTCP socket after media.c bound it, the callee's
 * RTCP address, the CNAME and the report schedule.
 *
 * What ctid sends: every report is a compound packet SR (no report blocks:
 * ctid receives no RTP) + SDES with the CNAME; when the stream ends, the
 * same followed by BYE (§6.6). The RTP timestamp of an SR is the stream's
 * own clock at the instant of its NTP time: packet k carries ts0 + 160 k
 * and is due at t0 + 20 ms * k, so the instant `now` is ts0 + 8 samples
 * per millisecond since t0.
 *
 * When: §6.3.1's deterministic interval Td is max(RTCP_MIN_TIME, n * C).
 * For one G.711 sender and one receiver (session bandwidth about
 * 80 kbit/s with headers, RTCP 5 % of it = 500 bytes/s, compound packets
 * of about 90 bytes with IP/UDP) n * C is about 0.4 s, so Td is the 5 s
 * minimum (2.5 s before the first report, §6.2). Each interval is Td times
 * a uniform factor in [0.5, 1.5), divided by e - 3/2 (§6.3.1): 2.05 s to
 * 6.16 s, 4.1 s on average. ctid never reads the peer's RTCP (a socket
 * filter drops it), so membership never changes those numbers and timer
 * reconsideration has nothing to reconsider.
 *
 * The socket is bound but not connected: a connected UDP socket would
 * answer RTCP from any other source (a phone sending RTCP from its RTP
 * port, a NAT) with ICMP port unreachable, the very thing the bound port
 * is there to avoid. Reports go out with sendto, one every few seconds. */

#include "rtcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define RTCP_PT_SR 200
#define RTCP_PT_SDES 202
#define RTCP_PT_BYE 203
#define RTCP_SDES_CNAME 1
#define RTCP_NTP_OFFSET 2208988800ULL /* 1900-01-01 to 1970-01-01, seconds */
#define RTCP_NS_PER_SAMPLE 125000ULL  /* 8 kHz RTP clock of G.711 */
#define RTCP_PAYLOAD_OCTETS 160       /* per 20 ms G.711 packet */

static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* A common header: V=2, P=0, count, type, length in 32-bit words - 1. */
static void rtcp_header(uint8_t *p, unsigned count, unsigned type,
                        size_t bytes)
{
    p[0] = (uint8_t)(0x80 | (count & 0x1F));
    p[1] = (uint8_t)type;
    put16(p + 2, (uint32_t)(bytes / 4 - 1));
}

uint64_t rtcp_ntp(const struct timespec *wall)
{
    uint64_t sec = (uint64_t)wall->tv_sec + RTCP_NTP_OFFSET;
    uint64_t frac = ((uint64_t)wall->tv_nsec << 32) / 1000000000ULL;
    return (sec << 32) | (frac & 0xFFFFFFFFULL);
}

size_t rtcp_build(uint8_t *out, size_t cap, const struct rtcp_sender_info *sr,
                  const char *cname, bool bye)
{
    size_t clen = strlen(cname);
    /* SDES chunk: SSRC, CNAME item (type, length, text), then at least
     * one zero octet ending the item list, padded to 32 bits. */
    size_t chunk = (4 + 2 + clen + 1 + 3) & ~(size_t)3;
    size_t len = 28 + 4 + chunk + (bye ? 8 : 0);

    if (clen > 255 || len > cap)
        return 0;
    memset(out, 0, len);
    rtcp_header(out, 0, RTCP_PT_SR, 28);
    put32(out + 4, sr->ssrc);
    put32(out + 8, (uint32_t)(sr->ntp >> 32));
    put32(out + 12, (uint32_t)sr->ntp);
    put32(out + 16, sr->rtp_ts);
    put32(out + 20, sr->packets);
    put32(out + 24, sr->octets);
    uint8_t *p = out + 28;
    rtcp_header(p, 1, RTCP_PT_SDES, 4 + chunk);
    put32(p + 4, sr->ssrc);
    p[8] = RTCP_SDES_CNAME;
    p[9] = (uint8_t)clen;
    memcpy(p + 10, cname, clen);
    if (bye) {
        p += 4 + chunk;
        rtcp_header(p, 1, RTCP_PT_BYE, 8);
        put32(p + 4, sr->ssrc);
    }
    return len;
}

uint64_t rtcp_interval_ns(uint32_t rnd, bool initial)
{
    const double e_minus_1_5 = 2.718281828459045 - 1.5;
    double td = initial ? RTCP_MIN_NS / 2.0 : (double)RTCP_MIN_NS;
    double factor = 0.5 + rnd / 4294967296.0;
    return (uint64_t)(td * factor / e_minus_1_5);
}

/* Both strings are addresses of one family and the same address. */
static bool same_address(const char *a, const char *b)
{
    struct in6_addr x, y;
    int family = strchr(a, ':') ? AF_INET6 : AF_INET;

    return inet_pton(family, a, &x) == 1 && inet_pton(family, b, &y) == 1 &&
           memcmp(&x, &y, family == AF_INET ? 4 : 16) == 0;
}

uint16_t rtcp_sdp_port(const char *value, const char *rtp_addr)
{
    char net[8], type[8], addr[64], extra;
    unsigned port;
    int used = 0;

    if (value == NULL || sscanf(value, "%5u%n", &port, &used) != 1 ||
        port == 0 || port > 65535 || (value[used] != '\0' &&
                                      value[used] != ' '))
        return 0;
    int n = sscanf(value + used, " %7s %7s %63s %c", net, type, addr, &extra);
    if (n == EOF || n == 0)
        return (uint16_t)port; /* the port alone */
    if (n != 3 || strcmp(net, "IN") != 0 ||
        (strcmp(type, "IP4") != 0 && strcmp(type, "IP6") != 0) ||
        rtp_addr == NULL || !same_address(addr, rtp_addr))
        return 0;
    return (uint16_t)port;
}

void rtcp_cname(char out[RTCP_CNAME_LEN + 1], const uint8_t rnd[12])
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 4; i++) {
        const uint8_t *g = rnd + 3 * i;
        uint32_t v = (uint32_t)g[0] << 16 | (uint32_t)g[1] << 8 | g[2];
        for (int k = 0; k < 4; k++)
            out[4 * i + k] = b64[(v >> (18 - 6 * k)) & 0x3F];
    }
    out[RTCP_CNAME_LEN] = '\0';
}

/* Random bytes for CNAMEs and interval seeds; never blocks. Only needs to
 * differ between calls and hosts, not to be secret. */
static void rtcp_random(void *buf, size_t len)
{
    if (getrandom(buf, len, GRND_NONBLOCK) == (ssize_t)len)
        return;
    uint64_t x = clock_mono_ns() ^ (uintptr_t)buf ^ (uint64_t)getpid();
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ((uint8_t *)buf)[i] = (uint8_t)x;
    }
}

void rtcp_open(struct rtcp_stream *r, int fd, uint16_t port)
{
    uint8_t rnd[12];

    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->port = port;
    rtcp_random(rnd, sizeof rnd);
    rtcp_cname(r->cname, rnd);
}

int rtcp_set_peer(struct rtcp_stream *r, const struct sockaddr *rtp_dest,
                  socklen_t len, uint16_t rtcp_port)
{
    uint16_t rtp_port;

    if (rtp_dest->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *a = (const void *)rtp_dest;
        rtp_port = ntohs(a->sin_port);
        len = sizeof *a;
    } else if (rtp_dest->sa_family == AF_INET6 &&
               len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *a = (const void *)rtp_dest;
        rtp_port = ntohs(a->sin6_port);
        len = sizeof *a;
    } else {
        errno = EINVAL;
        return -1;
    }
    if (rtcp_port == 0)
        rtcp_port = rtp_port < 65535 ? (uint16_t)(rtp_port + 1) : 0;
    r->peer_len = 0;
    if (rtp_port == 0 || rtcp_port == 0)
        return 0;
    memcpy(&r->peer, rtp_dest, len);
    if (rtp_dest->sa_family == AF_INET)
        ((struct sockaddr_in *)(void *)&r->peer)->sin_port = htons(rtcp_port);
    else
        ((struct sockaddr_in6 *)(void *)&r->peer)->sin6_port =
            htons(rtcp_port);
    r->peer_len = len;
    rtcp_random(&r->rnd, sizeof r->rnd);
    r->rnd |= 1; /* xorshift32 never leaves 0 */
    return 0;
}

void rtcp_close(struct rtcp_stream *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}

static uint32_t rtcp_next_random(struct rtcp_stream *r)
{
    uint32_t x = r->rnd;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return r->rnd = x;
}

void rtcp_start(struct rtcp_stream *r, uint64_t t0, uint32_t ts0)
{
    r->t0 = t0;
    r->ts0 = ts0;
    r->reports = 0;
    r->lost_logged = false;
    r->due = r->peer_len ? t0 + rtcp_interval_ns(rtcp_next_random(r), true)
                         : UINT64_MAX;
}

void rtcp_send(struct rtcp_stream *r, uint32_t ssrc, uint64_t packets,
               bool bye)
{
    struct timespec wall;
    uint8_t pkt[RTCP_PACKET_MAX];

    if (r->peer_len == 0 || r->fd < 0) {
        r->due = UINT64_MAX;
        return;
    }
    /* The two clocks read back to back: one instant, two scales. */
    uint64_t now = clock_mono_ns();
    clock_gettime(CLOCK_REALTIME, &wall);
    uint64_t since = now > r->t0 ? now - r->t0 : 0;
    struct rtcp_sender_info sr = {
        .ssrc = ssrc,
        .ntp = rtcp_ntp(&wall),
        .rtp_ts = r->ts0 + (uint32_t)(since / RTCP_NS_PER_SAMPLE),
        .packets = (uint32_t)packets,
        .octets = (uint32_t)(packets * RTCP_PAYLOAD_OCTETS),
    };
    size_t len = rtcp_build(pkt, sizeof pkt, &sr, r->cname, bye);
    r->due = now + rtcp_interval_ns(rtcp_next_random(r), false);
    if (sendto(r->fd, pkt, len, 0, (const struct sockaddr *)&r->peer,
               r->peer_len) < 0) {
        /* Like a lost RTP packet: never the call's concern. Counted
         * each time, logged once per stream, so an unreachable peer does
         * not flood the log. */
        if (r->errors != NULL)
            atomic_fetch_add(r->errors, 1);
        if (!r->lost_logged) {
            r->lost_logged = true;
            log_info("media: RTCP port %u: sendto: %s; report lost, the "
                     "stream plays on", r->port, strerror(errno));
        }
        return;
    }
    r->reports++;
}
