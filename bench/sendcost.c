/* sendcost: sender CPU per RTP packet for several ways of sending ctid's
 * media, on loopback.
 *
 * What it measures. A sender (this process) plays N streams: every 20 ms
 * tick each stream sends one 172-byte RTP packet (12-byte header + 160
 * bytes of A-law, built the way src/media_worker.c builds it: header written,
 * payload copied from a clip). The tick is split into --slots slots (1: one
 * burst of N packets per tick; 20: ctid's wheel, N/20 packets every 1 ms).
 * The sender's CPU (getrusage RUSAGE_SELF, user + sys, from the first tick
 * to the last) divided by the packets sent is the figure. On this kernel
 * (tick accounting, no IRQ_TIME_ACCOUNTING) loopback delivery, which runs
 * as a softirq inline in the sender's send call, is charged to the sender,
 * as in ctid's profile (docs/performance.md).
 *
 * The receiver is a forked child modelled on `ctidbench sink`: UDP
 * socket(s) on 127.0.0.1 with a large SO_RCVBUF and SO_TIMESTAMPNS, never
 * sleeping on a socket (it naps 2 ms, then drains each socket with
 * recvmmsg, MSG_DONTWAIT), so the sender never pays for waking it.
 * --ports 1 (default): one sink socket, every stream sends to it (as in
 * bench/run). --ports M: M sink sockets on consecutive ports, stream i
 * sends to port base + i % M. The sink counts what it receives: loss =
 * packets sent - packets received.
 *
 * Variants (--variant, or all of them with --matrix):
 *   conn       N sockets, each bound to its own even port and connected to
 *              its destination; one send() per packet (ctid today)
 *   sendto     one unconnected socket; sendto() per packet, destination
 *              per packet
 *   mmsg:B     one unconnected socket; sendmmsg() of up to B messages, each
 *              with its own msg_name (a batch never spans two slots)
 *   uring:B    the N connected sockets of `conn`, registered with io_uring
 *              (raw system calls, no liburing); IORING_OP_SEND, B SQEs per
 *              io_uring_enter
 *   raw:B      one SOCK_RAW/IPPROTO_RAW socket; sendmmsg() of up to B
 *              IP+UDP datagrams built here, each with its stream's own
 *              source port (keeps one port per call in SDP; needs
 *              CAP_NET_RAW; UDP checksum computed here)
 *   none       builds the packets and sends nothing (the floor)
 *
 * Build and run (root or CAP_NET_RAW for raw:B; RLIMIT_NOFILE > N+M):
 *   cc -O2 -Wall -Wextra -Werror -o /tmp/sendcost bench/sendcost.c
 *   /tmp/sendcost --matrix --reps 3                # N=4000, 1 sink port
 *   /tmp/sendcost --matrix --reps 3 --ports 4000   # 4000 sink ports
 *   /tmp/sendcost --variant mmsg:64 --slots 20     # one run, ctid's wheel
 * Options: --streams N (4000) --packets P (2000000: 500 ticks, 10 s at
 * N=4000) --slots S (1) --ports M (1) --sink-port B (34000, moved up past
 * ports in use) --src-port B (42000, busy ports skipped) --reps R (3, with
 * --matrix) --variants LIST (comma-separated, with --matrix; default conn,
 * sendto, mmsg:16/64/256, uring:16/64/256, raw:64). Each run takes about
 * packets / (N * 50) s; everything stays on 127.0.0.1.
 *
 * Output: one line per run (µs/packet, user/sys split, sent, errors,
 * received, loss, the sink's CPU per packet, the largest lateness of a
 * slot, steal time, and "others": CPU used by other processes during the
 * run, % of one core, to spot a noisy run); then (--matrix) the medians
 * over the reps, and "/conn": the median of each rep's ratio to conn's
 * run of the same rep (runs go rep by rep, so a noisy machine's drifts
 * mostly cancel in it). The user/sys split comes from 4 ms ticks: only
 * their sum is precise.
 *
 * First results (2 vCPU EPYC VM, kernel 6.18, 9 reps on a quiet machine):
 * conn 3.27 µs/packet, sendto 1.00x, mmsg:16/64/256 0.84/0.85/0.88x,
 * uring:64/256 0.91/0.98x, raw:64 0.83x, no loss; 4000 sink ports and the
 * 20-slot wheel give the same ratios within noise (±10% run to run). */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAY 160
#define HDR 12
#define PKT (HDR + PAY)
#define RAWPKT (20 + 8 + PKT)
#define CLIP_FRAMES 360 /* 7.2 s, as the benchmark's prompt */
#define TICK_NS 20000000LL
#define MAXB 1024
#define SINK_BATCH 256

enum kind { K_CONN, K_SENDTO, K_MMSG, K_URING, K_RAW, K_NONE };

struct variant {
    enum kind kind;
    int batch;
    char name[32];
};

struct cfg {
    int streams, ports, slots, sink_port, src_port, reps;
    long packets;
};

struct result {
    double us_pkt, user_us, sys_us, sink_us, wall_s, max_late_ms, steal_ms;
    double other_pct; /* CPU of other processes during the run, % of a core */
    long sent, errors, received, loss;
};

struct stream {
    uint32_t ssrc, ts;
    uint16_t seq, frame, src_port;
    struct sockaddr_in dst;
};

static uint8_t clip[CLIP_FRAMES * PAY];
static volatile uint8_t sink_hole; /* keeps `none`'s packets built */

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* From /proc/stat, all CPUs, in ms: busy (not idle, not iowait, not
 * steal) and steal (the hypervisor's share). */
static void stat_ms(double *busy, double *steal)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    *busy = *steal = 0;
    if (!f)
        return;
    int got = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
                     &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (got != 8)
        return;
    double k = 1000.0 / (double)sysconf(_SC_CLK_TCK);
    *busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6]) * k;
    *steal = (double)v[7] * k;
}

static double tv_us(struct timeval tv)
{
    return (double)tv.tv_sec * 1e6 + (double)tv.tv_usec;
}

/* Writes the stream's next packet (header + payload) to pkt, as
 * media_worker.c does. */
static inline void build(uint8_t *pkt, struct stream *s)
{
    const uint32_t ts = s->ts, ssrc = s->ssrc;
    pkt[0] = 0x80;
    pkt[1] = 8; /* PCMA */
    pkt[2] = (uint8_t)(s->seq >> 8);
    pkt[3] = (uint8_t)s->seq;
    pkt[4] = (uint8_t)(ts >> 24);
    pkt[5] = (uint8_t)(ts >> 16);
    pkt[6] = (uint8_t)(ts >> 8);
    pkt[7] = (uint8_t)ts;
    pkt[8] = (uint8_t)(ssrc >> 24);
    pkt[9] = (uint8_t)(ssrc >> 16);
    pkt[10] = (uint8_t)(ssrc >> 8);
    pkt[11] = (uint8_t)ssrc;
    memcpy(pkt + HDR, clip + (size_t)s->frame * PAY, PAY);
    s->seq++;
    s->ts += PAY;
    if (++s->frame == CLIP_FRAMES)
        s->frame = 0;
}

/* ---- sink (child) ----------------------------------------------------- */

static volatile sig_atomic_t sink_stop;

static void on_usr1(int sig)
{
    (void)sig;
    sink_stop = 1;
}

static long sink_pass(const int *fds, int m)
{
    static uint8_t bufs[SINK_BATCH][2048];
    static char ctrl[SINK_BATCH][64];
    static struct sockaddr_in froms[SINK_BATCH];
    static struct iovec iov[SINK_BATCH];
    static struct mmsghdr msgs[SINK_BATCH];
    long got = 0;

    for (int k = 0; k < m; k++) {
        for (;;) {
            for (int i = 0; i < SINK_BATCH; i++) {
                iov[i].iov_base = bufs[i];
                iov[i].iov_len = sizeof bufs[i];
                msgs[i].msg_hdr.msg_name = &froms[i];
                msgs[i].msg_hdr.msg_namelen = sizeof froms[i];
                msgs[i].msg_hdr.msg_iov = &iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
                msgs[i].msg_hdr.msg_control = ctrl[i];
                msgs[i].msg_hdr.msg_controllen = sizeof ctrl[i];
                msgs[i].msg_hdr.msg_flags = 0;
            }
            int r = recvmmsg(fds[k], msgs, SINK_BATCH, MSG_DONTWAIT, NULL);
            if (r <= 0)
                break;
            for (int i = 0; i < r; i++)
                got += msgs[i].msg_len == PKT; /* count RTP-sized only */
            if (r < SINK_BATCH)
                break;
        }
    }
    return got;
}

/* Binds m sockets on consecutive ports (from c->sink_port, moving up past
 * ports others hold), writes the first port to wr, drains until SIGUSR1,
 * then writes the count of packets received to wr. */
static void sink_main(const struct cfg *c, int wr)
{
    int m = c->ports, one = 1, base = c->sink_port;
    int rb = m == 1 ? 64 << 20 : 1 << 20;
    int *fds = calloc((size_t)m, sizeof *fds);
    struct sigaction sa = {.sa_handler = on_usr1};

    sigaction(SIGUSR1, &sa, NULL);
    for (int i = 0; i < m; i++) {
        if (base + i > 65535) {
            fprintf(stderr, "sink: no %d free consecutive ports\n", m);
            exit(2);
        }
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)(base + i)),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (fds[i] < 0)
            die("sink socket");
        if (setsockopt(fds[i], SOL_SOCKET, SO_RCVBUFFORCE, &rb, sizeof rb))
            setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb);
        setsockopt(fds[i], SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
        if (bind(fds[i], (struct sockaddr *)&a, sizeof a) == 0)
            continue;
        if (errno != EADDRINUSE)
            die("sink bind");
        for (int k = 0; k <= i; k++) /* start again above the taken port */
            close(fds[k]);
        base += i + 1;
        i = -1;
    }
    long got = 0;
    if (write(wr, &base, sizeof base) != sizeof base)
        die("sink ready");
    while (!sink_stop) {
        struct timespec nap = {0, 2000000};
        nanosleep(&nap, NULL);
        got += sink_pass(fds, m);
    }
    for (long g; (g = sink_pass(fds, m)) > 0;)
        got += g;
    if (write(wr, &got, sizeof got) != sizeof got)
        die("sink report");
    _exit(0);
}

/* ---- io_uring, raw system calls ----------------------------------------- */

struct ring {
    int fd;
    void *q, *sq;
    size_t q_sz, sq_sz;
    unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
};

static int ring_init(struct ring *r, unsigned entries, const int *fds, int n)
{
    struct io_uring_params p;
    unsigned tries[] = {IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
                            IORING_SETUP_DEFER_TASKRUN,
                        IORING_SETUP_SUBMIT_ALL, 0};
    r->fd = -1;
    for (unsigned i = 0; i < 3 && r->fd < 0; i++) {
        memset(&p, 0, sizeof p);
        p.flags = tries[i];
        r->fd = (int)syscall(__NR_io_uring_setup, entries, &p);
    }
    if (r->fd < 0)
        return -1;
    size_t sq_sz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cq_sz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if (!(p.features & IORING_FEAT_SINGLE_MMAP))
        return -1;
    size_t sz = sq_sz > cq_sz ? sq_sz : cq_sz;
    uint8_t *q = mmap(NULL, sz, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
    if (q == MAP_FAILED)
        return -1;
    r->q = q;
    r->q_sz = sz;
    r->sq_tail = (unsigned *)(void *)(q + p.sq_off.tail);
    r->sq_mask = (unsigned *)(void *)(q + p.sq_off.ring_mask);
    r->sq_array = (unsigned *)(void *)(q + p.sq_off.array);
    r->cq_head = (unsigned *)(void *)(q + p.cq_off.head);
    r->cq_tail = (unsigned *)(void *)(q + p.cq_off.tail);
    r->cq_mask = (unsigned *)(void *)(q + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)(void *)(q + p.cq_off.cqes);
    r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe),
                   PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
                   IORING_OFF_SQES);
    if (r->sqes == MAP_FAILED)
        return -1;
    r->sq = r->sqes;
    r->sq_sz = p.sq_entries * sizeof(struct io_uring_sqe);
    if (syscall(__NR_io_uring_register, r->fd, IORING_REGISTER_FILES, fds,
                (unsigned)n) < 0)
        return -1;
    return 0;
}

/* Submits n sends (stream index, buffer) and waits for their completions.
 * Returns the number that failed. */
static long ring_send(struct ring *r, const int *idx, uint8_t (*bufs)[PKT],
                      int n)
{
    unsigned tail = *r->sq_tail, mask = *r->sq_mask;
    for (int i = 0; i < n; i++) {
        unsigned k = tail & mask;
        struct io_uring_sqe *e = &r->sqes[k];
        memset(e, 0, sizeof *e);
        e->opcode = IORING_OP_SEND;
        e->flags = IOSQE_FIXED_FILE;
        e->fd = idx[i];
        e->addr = (uint64_t)(uintptr_t)bufs[i];
        e->len = PKT;
        e->msg_flags = MSG_DONTWAIT;
        e->user_data = (uint64_t)i;
        r->sq_array[k] = k;
        tail++;
    }
    __atomic_store_n(r->sq_tail, tail, __ATOMIC_RELEASE);
    int done = 0;
    long errors = 0;
    while (done < n) {
        long rc = syscall(__NR_io_uring_enter, r->fd,
                          done == 0 ? (unsigned)n : 0u, (unsigned)(n - done),
                          IORING_ENTER_GETEVENTS, NULL, 0);
        if (rc < 0 && errno != EINTR && errno != EAGAIN && errno != EBUSY)
            die("io_uring_enter");
        unsigned head = *r->cq_head;
        unsigned ctail = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);
        for (; head != ctail; head++, done++)
            errors += r->cqes[head & *r->cq_mask].res < 0;
        __atomic_store_n(r->cq_head, head, __ATOMIC_RELEASE);
    }
    return errors;
}

/* ---- raw IP + UDP -------------------------------------------------------- */

static uint16_t udp_csum(const uint8_t *udp, size_t len, uint32_t src,
                         uint32_t dst)
{
    uint64_t sum = 0;
    sum += (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff);
    sum += htons(IPPROTO_UDP) + htons((uint16_t)len);
    for (size_t i = 0; i + 1 < len; i += 2) {
        uint16_t w;
        memcpy(&w, udp + i, 2);
        sum += w;
    }
    if (len & 1)
        sum += udp[len - 1];
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    uint16_t r = (uint16_t)~sum;
    return r ? r : 0xffff;
}

static void build_raw(uint8_t *out, struct stream *s)
{
    struct iphdr *ip = (struct iphdr *)(void *)out;
    struct udphdr *u = (struct udphdr *)(void *)(out + 20);
    memset(ip, 0, 20);
    ip->version = 4;
    ip->ihl = 5;
    ip->ttl = 64;
    ip->frag_off = htons(IP_DF);
    ip->protocol = IPPROTO_UDP;
    ip->saddr = htonl(INADDR_LOOPBACK);
    ip->daddr = s->dst.sin_addr.s_addr; /* tot_len, id, check: the kernel */
    u->source = htons(s->src_port);
    u->dest = s->dst.sin_port;
    u->len = htons(8 + PKT);
    u->check = 0;
    build(out + 28, s);
    u->check = udp_csum(out + 20, 8 + PKT, ip->saddr, ip->daddr);
}

/* ---- sender ------------------------------------------------------------- */

static int parse_variant(const char *s, struct variant *v)
{
    const char *colon = strchr(s, ':');
    size_t len = colon ? (size_t)(colon - s) : strlen(s);
    v->batch = colon ? atoi(colon + 1) : 1;
    if (v->batch < 1 || v->batch > MAXB)
        return -1;
    if (len == 4 && !strncmp(s, "conn", 4)) v->kind = K_CONN;
    else if (len == 6 && !strncmp(s, "sendto", 6)) v->kind = K_SENDTO;
    else if (len == 4 && !strncmp(s, "mmsg", 4)) v->kind = K_MMSG;
    else if (len == 5 && !strncmp(s, "uring", 5)) v->kind = K_URING;
    else if (len == 3 && !strncmp(s, "raw", 3)) v->kind = K_RAW;
    else if (len == 4 && !strncmp(s, "none", 4)) v->kind = K_NONE;
    else return -1;
    if ((v->kind == K_MMSG || v->kind == K_URING || v->kind == K_RAW) && !colon)
        v->batch = 64;
    if (v->kind == K_CONN || v->kind == K_SENDTO || v->kind == K_NONE)
        v->batch = 1;
    snprintf(v->name, sizeof v->name, "%.*s", (int)len, s);
    if (v->batch > 1 || colon)
        snprintf(v->name + len, sizeof v->name - len, ":%d", v->batch);
    return 0;
}

static bool is_err(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS ||
           e == ECONNREFUSED || e == EINTR;
}

static struct result run_one(const struct cfg *c, const struct variant *v)
{
    struct result res = {0};
    int pfd[2];
    int n = c->streams;

    if (pipe(pfd))
        die("pipe");
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        close(pfd[0]);
        sink_main(c, pfd[1]);
    }
    close(pfd[1]);
    int base;
    if (read(pfd[0], &base, sizeof base) != sizeof base)
        die("sink did not start");

    struct stream *st = calloc((size_t)n, sizeof *st);
    int *fds = calloc((size_t)n, sizeof *fds);
    uint64_t x = 0x9e3779b97f4a7c15ULL ^ (uint64_t)now_ns();
    for (int i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        st[i].ssrc = (uint32_t)x;
        st[i].ts = (uint32_t)(x >> 32);
        st[i].seq = (uint16_t)(x >> 16);
        st[i].frame = (uint16_t)(i % CLIP_FRAMES);
        st[i].dst.sin_family = AF_INET;
        st[i].dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        st[i].dst.sin_port = htons((uint16_t)(base + i % c->ports));
        fds[i] = -1;
    }

    /* Per-call sockets (conn, uring), each on its own even port. */
    int next_port = c->src_port;
    if (v->kind == K_CONN || v->kind == K_URING) {
        for (int i = 0; i < n; i++) {
            fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
            if (fds[i] < 0)
                die("socket");
            for (;; next_port += 2) {
                if (next_port > 65534) {
                    fprintf(stderr, "out of source ports\n");
                    exit(2);
                }
                struct sockaddr_in a = {.sin_family = AF_INET,
                                        .sin_port = htons((uint16_t)next_port),
                                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
                if (bind(fds[i], (struct sockaddr *)&a, sizeof a) == 0)
                    break;
                if (errno != EADDRINUSE)
                    die("bind");
            }
            st[i].src_port = (uint16_t)next_port;
            next_port += 2;
            if (connect(fds[i], (struct sockaddr *)&st[i].dst, sizeof st[i].dst))
                die("connect");
        }
    } else {
        for (int i = 0; i < n; i++)
            st[i].src_port = (uint16_t)(c->src_port + 2 * (i % 20000));
    }
    int one_fd = -1;
    if (v->kind == K_SENDTO || v->kind == K_MMSG) {
        one_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (one_fd < 0 || bind(one_fd, (struct sockaddr *)&a, sizeof a))
            die("socket");
    } else if (v->kind == K_RAW) {
        one_fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_RAW);
        if (one_fd < 0)
            die("raw socket (needs CAP_NET_RAW)");
    }
    struct ring ring;
    memset(&ring, 0, sizeof ring);
    if (v->kind == K_URING && ring_init(&ring, MAXB, fds, n) < 0)
        die("io_uring setup");

    static uint8_t bufs[MAXB][PKT];
    static uint8_t rbufs[MAXB][RAWPKT];
    static struct iovec iov[MAXB];
    static struct mmsghdr msgs[MAXB];
    static int idx[MAXB];

    long ticks = (c->packets + n - 1) / n;
    int per_slot = (n + c->slots - 1) / c->slots;
    int64_t slot_ns = TICK_NS / c->slots, max_late = 0;
    struct rusage r0, r1;
    long sent = 0, errors = 0;

    double busy0, steal0, busy1, steal1;
    stat_ms(&busy0, &steal0);
    getrusage(RUSAGE_SELF, &r0);
    int64_t t0 = now_ns() + 1000000, w0 = t0;
    for (long t = 0; t < ticks; t++) {
        for (int sl = 0; sl < c->slots; sl++) {
            int64_t due = t0 + t * TICK_NS + sl * slot_ns;
            struct timespec ts = {(time_t)(due / 1000000000LL),
                                  (long)(due % 1000000000LL)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)
                   == EINTR)
                ;
            int64_t late = now_ns() - due;
            if (late > max_late)
                max_late = late;
            int lo = sl * per_slot, hi = lo + per_slot > n ? n : lo + per_slot;
            for (int i = lo; i < hi;) {
                int b = hi - i < v->batch ? hi - i : v->batch;
                switch (v->kind) {
                case K_NONE:
                    build(bufs[0], &st[i]);
                    sink_hole = bufs[0][PKT - 1];
                    break;
                case K_CONN:
                    build(bufs[0], &st[i]);
                    if (send(fds[i], bufs[0], PKT, 0) < 0) {
                        if (!is_err(errno))
                            die("send");
                        errors++;
                    }
                    break;
                case K_SENDTO:
                    build(bufs[0], &st[i]);
                    if (sendto(one_fd, bufs[0], PKT, 0,
                               (struct sockaddr *)&st[i].dst,
                               sizeof st[i].dst) < 0) {
                        if (!is_err(errno))
                            die("sendto");
                        errors++;
                    }
                    break;
                case K_MMSG:
                case K_RAW:
                    for (int k = 0; k < b; k++) {
                        if (v->kind == K_MMSG) {
                            build(bufs[k], &st[i + k]);
                            iov[k].iov_base = bufs[k];
                            iov[k].iov_len = PKT;
                        } else {
                            build_raw(rbufs[k], &st[i + k]);
                            iov[k].iov_base = rbufs[k];
                            iov[k].iov_len = RAWPKT;
                        }
                        memset(&msgs[k].msg_hdr, 0, sizeof msgs[k].msg_hdr);
                        msgs[k].msg_hdr.msg_name = &st[i + k].dst;
                        msgs[k].msg_hdr.msg_namelen = sizeof st[i + k].dst;
                        msgs[k].msg_hdr.msg_iov = &iov[k];
                        msgs[k].msg_hdr.msg_iovlen = 1;
                    }
                    for (int k = 0; k < b;) {
                        int rc = sendmmsg(one_fd, msgs + k, (unsigned)(b - k), 0);
                        if (rc < 0) {
                            if (!is_err(errno))
                                die("sendmmsg");
                            errors++; /* that message is lost; go on */
                            k++;
                        } else {
                            k += rc;
                        }
                    }
                    break;
                case K_URING:
                    for (int k = 0; k < b; k++) {
                        build(bufs[k], &st[i + k]);
                        idx[k] = i + k;
                    }
                    errors += ring_send(&ring, idx, bufs, b);
                    break;
                }
                i += b;
                sent += b;
            }
        }
    }
    getrusage(RUSAGE_SELF, &r1);
    res.wall_s = (double)(now_ns() - w0) * 1e-9;
    stat_ms(&busy1, &steal1);
    res.steal_ms = steal1 - steal0;

    struct timespec settle = {0, 100000000};
    nanosleep(&settle, NULL);
    kill(pid, SIGUSR1);
    long got = 0;
    if (read(pfd[0], &got, sizeof got) != sizeof got)
        die("sink count");
    close(pfd[0]);
    int status;
    struct rusage rs;
    if (wait4(pid, &status, 0, &rs) < 0)
        die("wait4");

    res.sent = sent - errors;
    res.errors = errors;
    res.received = got;
    res.loss = v->kind == K_NONE ? 0 : sent - got;
    res.user_us = (tv_us(r1.ru_utime) - tv_us(r0.ru_utime)) / (double)sent;
    res.sys_us = (tv_us(r1.ru_stime) - tv_us(r0.ru_stime)) / (double)sent;
    res.us_pkt = res.user_us + res.sys_us;
    res.sink_us = (tv_us(rs.ru_utime) + tv_us(rs.ru_stime)) / (double)sent;
    res.max_late_ms = (double)max_late * 1e-6;
    /* The sink's CPU over its whole life stands in for its share of the
     * sending window (it idles before and after). */
    res.other_pct = ((busy1 - busy0) * 1e3 - res.us_pkt * (double)sent -
                     res.sink_us * (double)sent) / (res.wall_s * 1e6) * 100;
    if (res.other_pct < 0)
        res.other_pct = 0;

    if (v->kind == K_URING) {
        munmap(ring.sq, ring.sq_sz);
        munmap(ring.q, ring.q_sz);
        close(ring.fd);
    }
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (one_fd >= 0)
        close(one_fd);
    free(fds);
    free(st);
    return res;
}

static void print_run(const struct variant *v, const struct cfg *c, int rep,
                      const struct result *r)
{
    printf("run %-10s N=%d ports=%d slots=%d rep=%d  %.3f us/pkt (user %.3f "
           "sys %.3f)  sent %ld err %ld recv %ld loss %ld  sink %.3f us/pkt  "
           "wall %.1f s  max late %.1f ms  steal %.0f ms  others %.0f%%\n",
           v->name, c->streams, c->ports, c->slots, rep, r->us_pkt, r->user_us,
           r->sys_us, r->sent, r->errors, r->received, r->loss, r->sink_us,
           r->wall_s, r->max_late_ms, r->steal_ms, r->other_pct);
    fflush(stdout);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    struct cfg c = {.streams = 4000, .ports = 1, .slots = 1,
                    .sink_port = 34000, .src_port = 42000, .reps = 3,
                    .packets = 2000000};
    const char *one = NULL;
    char list[512] = "conn,sendto,mmsg:16,mmsg:64,mmsg:256,uring:16,uring:64,"
                     "uring:256,raw:64";
    bool matrix = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--matrix")) { matrix = true; continue; }
        if (!val) goto usage;
        i++;
        if (!strcmp(a, "--variant")) one = val;
        else if (!strcmp(a, "--variants")) snprintf(list, sizeof list, "%s", val);
        else if (!strcmp(a, "--streams")) c.streams = atoi(val);
        else if (!strcmp(a, "--packets")) c.packets = atol(val);
        else if (!strcmp(a, "--slots")) c.slots = atoi(val);
        else if (!strcmp(a, "--ports")) c.ports = atoi(val);
        else if (!strcmp(a, "--sink-port")) c.sink_port = atoi(val);
        else if (!strcmp(a, "--src-port")) c.src_port = atoi(val);
        else if (!strcmp(a, "--reps")) c.reps = atoi(val);
        else goto usage;
    }
    if (c.streams < 1 || c.ports < 1 || c.slots < 1 || c.slots > 1000 ||
        c.packets < 1 || c.reps < 1 || c.sink_port + c.ports > 65536 ||
        (!matrix && !one))
        goto usage;

    /* Clip: pseudo-random A-law-like bytes, shared by every stream. */
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof clip; i++) {
        x = x * 1103515245u + 12345u;
        clip[i] = (uint8_t)(x >> 16);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);

    struct variant vs[32];
    int nv = 0;
    if (!matrix) {
        if (parse_variant(one, &vs[0]) < 0)
            goto usage;
        struct result r = run_one(&c, &vs[0]);
        print_run(&vs[0], &c, 0, &r);
        return 0;
    }
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok && nv < 32;
         tok = strtok_r(NULL, ",", &save))
        if (parse_variant(tok, &vs[nv++]) < 0)
            goto usage;
    struct result *rs = calloc((size_t)(nv * c.reps), sizeof *rs);
    /* Repetition-major order, so slow drifts of a noisy machine spread over
     * every variant instead of hitting one. */
    for (int rep = 0; rep < c.reps; rep++)
        for (int k = 0; k < nv; k++) {
            rs[k * c.reps + rep] = run_one(&c, &vs[k]);
            print_run(&vs[k], &c, rep, &rs[k * c.reps + rep]);
        }
    printf("\nmedians over %d runs: N=%d streams, %d sink port(s), %d slot(s) "
           "per 20 ms tick, %ld packets per run\n",
           c.reps, c.streams, c.ports, c.slots, c.packets);
    printf("%-10s %9s %8s %8s %9s %10s %10s\n", "variant", "us/pkt", "user",
           "sys", "/conn", "loss(max)", "sink us");
    /* /conn: median over reps of (this variant / conn of the same rep), a
     * paired ratio that cancels most of a noisy machine's slow drifts. */
    int kc = -1;
    for (int k = 0; k < nv; k++)
        if (vs[k].kind == K_CONN && kc < 0)
            kc = k;
    for (int k = 0; k < nv; k++) {
        double t[64], u[64], s[64], sk[64];
        long maxloss = 0;
        for (int rep = 0; rep < c.reps && rep < 64; rep++) {
            const struct result *r = &rs[k * c.reps + rep];
            t[rep] = r->us_pkt, u[rep] = r->user_us, s[rep] = r->sys_us;
            sk[rep] = r->sink_us;
            if (r->loss > maxloss) /* attempted - received: errors too */
                maxloss = r->loss;
        }
        int m = c.reps < 64 ? c.reps : 64;
        double mt = median(t, m), ratio[64];
        char rel[16] = "-";
        if (kc >= 0) {
            for (int rep = 0; rep < m; rep++)
                ratio[rep] = rs[k * c.reps + rep].us_pkt /
                             rs[kc * c.reps + rep].us_pkt;
            snprintf(rel, sizeof rel, "%.2f", median(ratio, m));
        }
        printf("%-10s %9.3f %8.3f %8.3f %9s %10ld %10.3f\n", vs[k].name, mt,
               median(u, m), median(s, m), rel, maxloss, median(sk, m));
    }
    free(rs);
    return 0;
usage:
    fprintf(stderr, "usage: sendcost --variant V | --matrix [--variants "
                    "V,V,...] [--streams N] [--packets P] [--slots S] "
                    "[--ports M] [--sink-port B] [--src-port B] [--reps R]\n"
                    "V: conn sendto mmsg:B uring:B raw:B none\n");
    return 2;
}
