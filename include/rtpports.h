/* rtpports: the RTP port range. Owns the bind address, the bitmap of port
 * pairs (RTP on an even port, RTCP on the odd one after it, both inside
 * the configured range) handed out round-robin, and binding a pair's two
 * sockets with a filter that drops everything they receive (and the
 * filter of a stream that listens for keys). Main thread only, but for
 * rtp_ports_filter. */
#ifndef CTID_RTPPORTS_H
#define CTID_RTPPORTS_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct rtp_ports {
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } addr;             /* bind address, port 0 */
    socklen_t addr_len;
    uint16_t first;     /* first even port of the range */
    uint32_t n;         /* pairs in the range */
    uint32_t cursor;    /* next pair index to try: round-robin */
    uint64_t *used;     /* bitmap over pair indexes */
};

/* Range port_min..port_max on address ip (IPv4 or IPv6). -1 with err when
 * the range holds no pair or ip is not an address. */
int rtp_ports_init(struct rtp_ports *p, const char *ip, uint16_t port_min,
                   uint16_t port_max, char *err, size_t errlen);
void rtp_ports_free(struct rtp_ports *p);
/* Binds the next free pair: *rtp_fd on *port, *rtcp_fd on *port + 1,
 * both non-blocking, close-on-exec, dropping what they receive. A pair
 * with either port held by someone else is skipped (and tried again next
 * round). -1 with err when no pair is free or sockets fail. */
int rtp_ports_open(struct rtp_ports *p, int *rtp_fd, int *rtcp_fd,
                   uint16_t *port, char *err, size_t errlen);
/* Replaces the RTP socket's drop-everything filter (issue 14's keys): with
 * te_pt 0-127, a classic BPF program that lets through only RTP version
 * 2 datagrams whose payload type (byte 1 & 0x7f) is te_pt, every other
 * one still dropped in the kernel; with te_pt RTP_FILTER_ALL, everything
 * (in-band DTMF reads the audio); RTP_FILTER_NONE: nothing again, as
 * rtp_ports_open leaves it. 0, or -1 with errno. Any thread. */
#define RTP_FILTER_ALL (-1)
#define RTP_FILTER_NONE (-2)
int rtp_ports_filter(int fd, int te_pt);
/* Gives back the pair of RTP port `port` (its sockets closed by the
 * caller). */
void rtp_ports_release(struct rtp_ports *p, uint16_t port);

#endif
