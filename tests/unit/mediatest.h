/* Helpers shared by the media unit tests (test_media.c, test_media_keys.c):
 * a range of UDP ports free right now for media_new, the test's own UDP
 * socket on loopback, a received packet's fields and a clip built by
 * hand.
 *
 * Header only (static inline), as testutil.h, so each test stays one
 * self-contained cmocka binary. The caller owns what it gets: the socket
 * (close), the clip (prompt_clip_unref). Single-threaded: cmocka's setup
 * and tests; failures fail the running test through cmocka. */
#ifndef CTID_MEDIATEST_H
#define CTID_MEDIATEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "media.h"

/* The even base of n UDP ports on 127.0.0.1 that are free right now:
 * tried at from + (pid * step + k * step) % span for k = 0, 1, ... so
 * that tests running at once start apart. Fails the test when none is. */
static inline uint16_t mt_free_range(unsigned from, unsigned span,
                                     unsigned step, unsigned n)
{
    for (unsigned k = 0; k < 200; k++) {
        uint16_t base = (uint16_t)(from + ((unsigned)getpid() * step +
                                           k * step) % span);
        int ok = 1;

        base &= (uint16_t)~1u;
        for (uint16_t p = base; p < base + n && ok; p++) {
            int fd = socket(AF_INET, SOCK_DGRAM, 0);
            struct sockaddr_in a = {.sin_family = AF_INET,
                                    .sin_port = htons(p)};

            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
            close(fd);
        }
        if (ok)
            return base;
    }
    fail_msg("no free port range");
    return 0;
}

/* A non-blocking UDP socket bound to 127.0.0.1 on a port the kernel
 * picks, with room for a burst of RTP; its address in *addr. */
static inline int mt_udp_socket(struct sockaddr_in *addr)
{
    socklen_t len = sizeof *addr;
    int buf = 1 << 20;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);

    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)addr, sizeof *addr), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)addr, &len), 0);
    return fd;
}

/* A received packet's big-endian fields. */
static inline uint16_t mt_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t mt_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

/* A silent clip of n_frames, built by hand (one spare byte per buffer);
 * freeable by prompt_clip_unref. */
static inline struct prompt_clip *mt_clip(size_t n_frames)
{
    struct prompt_clip *c = calloc(1, sizeof *c);
    size_t n = n_frames * PROMPT_FRAME_SAMPLES;

    assert_non_null(c);
    c->path = strdup("test");
    c->n_frames = n_frames;
    c->pcm = calloc(n + 1, sizeof *c->pcm);
    c->alaw = calloc(n + 1, 1);
    c->ulaw = calloc(n + 1, 1);
    c->refs = 1;
    return c;
}

#endif
