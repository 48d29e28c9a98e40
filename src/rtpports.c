/* rtpports: the RTP port range (a bitmap of port pairs handed out
 * round-robin) and binding a pair's sockets. Main thread only.
 *
 * A call takes a pair: RTP on an even port, RTCP on the odd port after it
 * (RFC 3550 §11), both inside the range, so 20000-29999 holds 5,000 pairs.
 * The RTCP port is bound even though ctid reads nothing there, so the
 * callee's RTCP meets no ICMP port unreachable. Both sockets carry a
 * one-instruction socket filter that drops every incoming datagram in
 * the kernel: it costs no system call and never fills a buffer. */

#include "rtpports.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int rtp_ports_init(struct rtp_ports *p, const char *ip, uint16_t port_min,
                   uint16_t port_max, char *err, size_t errlen)
{
    uint32_t first = port_min + (port_min & 1u);

    memset(p, 0, sizeof *p);
    if (port_min == 0 || port_min > port_max || first >= port_max) {
        snprintf(err, errlen, "RTP port range %u-%u holds no port pair (an "
                 "even RTP port and the RTCP port after it)",
                 port_min, port_max);
        return -1;
    }
    if (inet_pton(AF_INET, ip, &p->addr.in4.sin_addr) == 1) {
        p->addr.in4.sin_family = AF_INET;
        p->addr_len = sizeof p->addr.in4;
    } else if (inet_pton(AF_INET6, ip, &p->addr.in6.sin6_addr) == 1) {
        p->addr.in6.sin6_family = AF_INET6;
        p->addr_len = sizeof p->addr.in6;
    } else {
        snprintf(err, errlen, "media IP %s is not an IPv4 or IPv6 address",
                 ip);
        return -1;
    }
    p->first = (uint16_t)first;
    p->n = (port_max - first + 1) / 2; /* pairs: both ports in range */
    p->used = calloc((p->n + 63) / 64, sizeof *p->used);
    if (!p->used) {
        snprintf(err, errlen, "media: out of memory");
        return -1;
    }
    return 0;
}

void rtp_ports_free(struct rtp_ports *p)
{
    free(p->used);
    p->used = NULL;
}

static bool pair_used(const struct rtp_ports *p, uint32_t i)
{
    return p->used[i / 64] >> (i % 64) & 1;
}

static void pair_mark(struct rtp_ports *p, uint32_t i, bool used)
{
    if (used)
        p->used[i / 64] |= 1ULL << (i % 64);
    else
        p->used[i / 64] &= ~(1ULL << (i % 64));
}

void rtp_ports_release(struct rtp_ports *p, uint16_t port)
{
    pair_mark(p, (uint32_t)(port - p->first) / 2, false);
}

/* A one-instruction classic BPF program that accepts no packet: incoming
 * RTP and RTCP are dropped before they are queued. */
static int drop_incoming(int fd)
{
    static struct sock_filter drop_all[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
    struct sock_fprog prog = {.len = 1, .filter = drop_all};
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
}

/* A UDP socket filter sees the datagram from its UDP header on (the
 * kernel runs it before pulling the header), so the RTP header's first
 * byte is at offset 8. A load past the end of a short datagram ends the
 * program with 0: dropped. */
#define RTP_AT 8
int rtp_ports_filter(int fd, int te_pt)
{
    if (te_pt > 127 || te_pt < RTP_FILTER_NONE) {
        errno = EINVAL;
        return -1;
    }
    struct sock_filter te[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, RTP_AT),     /* V P X CC */
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xc0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x80, 0, 4), /* version 2 */
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, RTP_AT + 1), /* M PT */
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x7f),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)te_pt, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, 0xffff),              /* accept */
        BPF_STMT(BPF_RET | BPF_K, 0),                   /* drop */
    };
    if (te_pt == RTP_FILTER_NONE)
        return drop_incoming(fd);
    struct sock_filter all[] = {BPF_STMT(BPF_RET | BPF_K, 0xffff)};
    struct sock_fprog prog = {.len = te_pt < 0 ? 1 : 8,
                              .filter = te_pt < 0 ? all : te};
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
}

/* A UDP socket of the range's family that drops all it receives; -1 with
 * errno. */
static int new_socket(const struct rtp_ports *p)
{
    int fd = socket(p->addr.sa.sa_family,
                    SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && drop_incoming(fd) < 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

static int bind_port(const struct rtp_ports *p, int fd, uint16_t port)
{
    struct sockaddr_storage a;

    memcpy(&a, &p->addr, p->addr_len);
    if (p->addr.sa.sa_family == AF_INET)
        ((struct sockaddr_in *)(void *)&a)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)(void *)&a)->sin6_port = htons(port);
    return bind(fd, (struct sockaddr *)&a, p->addr_len);
}

/* A socket binds only once: one that got the RTP port of a pair whose
 * RTCP port is taken is closed and replaced for the next pair. */
int rtp_ports_open(struct rtp_ports *p, int *rtp_fd, int *rtcp_fd,
                   uint16_t *port_out, char *err, size_t errlen)
{
    int rtp = -1, rtcp = -1;

    for (uint32_t k = 0; k < p->n; k++) {
        uint32_t i = (p->cursor + k) % p->n;
        uint16_t port = (uint16_t)(p->first + 2 * i);

        if (pair_used(p, i))
            continue;
        if ((rtp < 0 && (rtp = new_socket(p)) < 0) ||
            (rtcp < 0 && (rtcp = new_socket(p)) < 0)) {
            snprintf(err, errlen, "RTP socket: %s", strerror(errno));
            goto fail;
        }
        if (bind_port(p, rtp, port) < 0) {
            if (errno == EADDRINUSE)
                continue; /* held by someone else; try it again next round */
            snprintf(err, errlen, "RTP bind port %u: %s", port,
                     strerror(errno));
            goto fail;
        }
        if (bind_port(p, rtcp, (uint16_t)(port + 1)) < 0) {
            int e = errno;
            close(rtp);
            rtp = -1;
            if (e == EADDRINUSE)
                continue;
            snprintf(err, errlen, "RTCP bind port %u: %s", port + 1,
                     strerror(e));
            goto fail;
        }
        pair_mark(p, i, true);
        p->cursor = (i + 1) % p->n;
        *rtp_fd = rtp;
        *rtcp_fd = rtcp;
        *port_out = port;
        return 0;
    }
    snprintf(err, errlen, "no free RTP port pair in %u-%u", p->first,
             p->first + 2 * p->n - 1);
fail:
    if (rtp >= 0)
        close(rtp);
    if (rtcp >= 0)
        close(rtcp);
    return -1;
}
