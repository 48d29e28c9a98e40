/*
 * ctidbench: the measuring instrument of ctid's benchmark (bench/run).
 *
 *   ctidbench sink --port P --expect FILE.al --plays N --report OUT.json
 *                  [--idle S] [--timeout S] [--max-streams N]
 *                  [--reply FILE.al [--key-at I --key-pt PT [--key-digit D]]]
 *       The RTP sink: one UDP socket on 127.0.0.1:P, recvmmsg batches, kernel
 *       receive timestamps (SO_TIMESTAMPNS).  Streams are keyed by (source
 *       address, SSRC).  Checks every payload against FILE.al (the prompt's
 *       A-law, a whole number of 160-byte frames) played N times, and
 *       measures loss, order, RFC 3550 jitter, gaps and lateness.  Ends on
 *       SIGTERM/SIGINT, after S idle seconds (no packet; only once packets
 *       arrived), or after --timeout seconds, and writes a JSON report.
 *       --reply: the sink is also the callee's media, as a gateway with
 *       symmetric RTP is: for each new packet of a stream it sends one
 *       PCMA packet (PT 8, the next 160 bytes of FILE.al, cycled; its own
 *       SSRC, seq and timestamp) from its port back to the stream's
 *       source, so the callee's audio arrives on the call's socket (ctid's
 *       RTP socket is connected to this port and takes nothing from
 *       anywhere else).  --key-at I: the replies I..I+4 of every stream
 *       are an RFC 4733 telephone-event for digit D (default 1) with
 *       payload type PT instead of audio (marker on the first, duration
 *       growing 160 per packet, the end packet sent three times: §2.5),
 *       audio after it; a stream whose key went out may then end early
 *       (the key stops the prompt): its expected packets are those up to
 *       its last one, and the report gives how long the prompt ran on
 *       after the key's first packet.
 *
 *   ctidbench load --host H --port P --conns K --rate R --seconds T
 *                  --to URI --play FILE [--repeat N] [--wait S]
 *                  [--keys JSON] [--latencies FILE] --report OUT.json
 *       The application server: K JSON-RPC connections to ctid, sends
 *       ext.notify_call.construct at R/s for T s (absolute schedule on
 *       CLOCK_MONOTONIC, round robin over the connections), measures each
 *       construct's reply latency, then waits up to S s for every
 *       constructed call's on_released, and writes a JSON report.
 *       --keys: a JSON object sent as every construct's `keys` (issue 14).
 *       The report counts the on_released events by their `keys` value
 *       (keys_seen) and sums the call lengths and played_ms.
 *       --latencies: one line per reply, "SENT_S MS" (seconds since the
 *       load began, reply latency), to see when slow replies happened.
 *
 * Definitions (also in bench/README.md):
 *   jitter   RFC 3550 6.4.1 interarrival jitter J += (|D| - J)/16, D from
 *            the kernel arrival time and the RTP timestamp (8 kHz); the
 *            report gives each stream's maximum J and percentiles over
 *            streams.
 *   late     a packet with index i = seq - first_seq arriving more than
 *            20 ms after first_arrival + i * 20 ms (its due time on the
 *            stream's own clock, anchored at its first packet).
 *   gap      the time between two consecutive arrivals of one stream.
 *   lost     expected - unique packets received, expected = frames of
 *            FILE.al * N.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define FRAME 160

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0.0;
    size_t k = (size_t)ceil(p / 100.0 * (double)n);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

static int write_report(json_t *rep, const char *path)
{
    int rc = json_dump_file(rep, path, JSON_INDENT(1) | JSON_SORT_KEYS);
    if (rc != 0)
        fprintf(stderr, "ctidbench: cannot write %s\n", path);
    return rc;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* ======================================================================
 * sink
 */

struct stream {
    uint32_t addr;       /* network order */
    uint16_t port;       /* network order */
    uint32_t ssrc;
    bool used;
    uint16_t first_seq;
    uint32_t first_ts;
    uint8_t pt;
    double first_arrival; /* seconds (CLOCK_REALTIME of the kernel stamp) */
    double last_arrival;
    double last_transit;  /* arrival*8000 - ts, in timestamp units */
    double jitter;        /* J, timestamp units */
    double max_jitter;
    double max_gap;
    int32_t max_index;
    uint32_t received;
    uint32_t unique;
    uint32_t dups;
    uint32_t out_of_order;
    uint32_t before_first;
    uint32_t beyond;      /* index >= expected */
    uint32_t mismatched;
    uint32_t late;
    uint8_t *seen;        /* bitmap of expected bits */
    uint32_t replies;     /* --reply: packets answered (reply index) */
    uint16_t r_seq;       /* --reply: the callee's next seq */
    double r_last;        /* --reply: when the last reply went out */
    bool key_started;     /* --key-at: the key's first packet went out */
    bool key_sent;        /* --key-at: the key's end packets went out */
};

/* --reply: packets queued for one sendmmsg after each receive batch */
#define RBATCH (256 * 3)
#define RTP_HDR 12
struct reply_q {
    int n;
    uint8_t buf[RBATCH][RTP_HDR + 160];
    size_t len[RBATCH];
    struct sockaddr_in to[RBATCH];
};

struct sink {
    const uint8_t *expect;
    size_t frames_per_play;
    uint32_t expected;     /* per stream */
    struct stream *tab;
    size_t cap;            /* power of two */
    size_t nstreams;
    size_t max_streams;
    uint64_t packets;
    uint64_t bytes;
    uint64_t malformed;
    uint64_t no_timestamp;
    uint64_t overflow_streams;
    /* --reply */
    const uint8_t *reply;  /* the callee's audio, NULL: no replies */
    size_t reply_frames;
    int32_t key_at;        /* reply index of the key, -1 none */
    int key_pt;
    int key_event;         /* RFC 4733 event code of the digit */
    struct reply_q *q;
    uint64_t replies_sent, reply_errors, keys_sent;
    struct stream **pressing; /* streams whose key is under way */
    size_t npressing;
};

static uint64_t hash3(uint32_t a, uint16_t p, uint32_t s)
{
    uint64_t h = ((uint64_t)a << 32) ^ ((uint64_t)p << 16) ^ s;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static struct stream *sink_find(struct sink *s, uint32_t addr, uint16_t port,
                                uint32_t ssrc)
{
    size_t mask = s->cap - 1;
    size_t i = (size_t)hash3(addr, port, ssrc) & mask;
    for (;;) {
        struct stream *st = &s->tab[i];
        if (!st->used) {
            if (s->nstreams >= s->max_streams) {
                s->overflow_streams++;
                return NULL;
            }
            memset(st, 0, sizeof *st);
            st->used = true;
            st->addr = addr;
            st->port = port;
            st->ssrc = ssrc;
            st->seen = calloc((s->expected + 7) / 8 + 1, 1);
            if (!st->seen)
                die("calloc");
            st->max_index = -1;
            s->nstreams++;
            return st;
        }
        if (st->addr == addr && st->port == port && st->ssrc == ssrc)
            return st;
        i = (i + 1) & mask;
    }
}

/* --reply: queue the callee's packet number st->replies of this stream:
 * PCMA audio, or (--key-at) one of the key's five event packets, the
 * last of them three times. */
static void sink_reply(struct sink *s, struct stream *st)
{
    uint32_t r = st->replies;
    uint32_t ssrc = ~st->ssrc;
    int32_t k = (int32_t)r - s->key_at;
    bool event = s->key_at >= 0 && k >= 0 && k < 5;
    int copies = event && k == 4 ? 3 : 1;
    uint32_t ts = 160u * (event ? (uint32_t)s->key_at : r);
    if (s->q->n + copies > RBATCH)
        return; /* cannot happen: flushed after each batch of <= 256 */
    st->replies++;
    uint16_t seq = st->r_seq++;
    st->r_last = mono_now();
    if (event && k == 0) {
        st->key_started = true;
        s->pressing[s->npressing++] = st;
    }
    for (int c = 0; c < copies; c++) {
        uint8_t *b = s->q->buf[s->q->n];
        b[0] = 0x80;
        b[1] = (uint8_t)(event ? s->key_pt : 8);
        if (event && k == 0)
            b[1] |= 0x80; /* marker: the event's first packet */
        b[2] = (uint8_t)(seq >> 8);
        b[3] = (uint8_t)seq;
        b[4] = (uint8_t)(ts >> 24);
        b[5] = (uint8_t)(ts >> 16);
        b[6] = (uint8_t)(ts >> 8);
        b[7] = (uint8_t)ts;
        b[8] = (uint8_t)(ssrc >> 24);
        b[9] = (uint8_t)(ssrc >> 16);
        b[10] = (uint8_t)(ssrc >> 8);
        b[11] = (uint8_t)ssrc;
        size_t len;
        if (event) {
            uint16_t dur = (uint16_t)(160 * (k + 1));
            b[12] = (uint8_t)s->key_event;
            b[13] = (uint8_t)((k == 4 ? 0x80 : 0) | 10); /* E, volume 10 */
            b[14] = (uint8_t)(dur >> 8);
            b[15] = (uint8_t)dur;
            len = RTP_HDR + 4;
        } else {
            memcpy(b + RTP_HDR, s->reply + (r % s->reply_frames) * 160, 160);
            len = RTP_HDR + 160;
        }
        struct sockaddr_in *to = &s->q->to[s->q->n];
        memset(to, 0, sizeof *to);
        to->sin_family = AF_INET;
        to->sin_addr.s_addr = st->addr;
        to->sin_port = st->port;
        s->q->len[s->q->n++] = len;
    }
    if (event && k == 4) {
        st->key_sent = true;
        s->keys_sent++;
    }
}

/* --key-at: a key press goes on to its end packets on the callee's own
 * 20 ms clock once ctid's packets stop coming (the key stopped the
 * prompt), as a caller's phone finishes the event it started. */
static void sink_press_on(struct sink *s)
{
    double now = mono_now();
    for (size_t i = 0; i < s->npressing;) {
        struct stream *st = s->pressing[i];
        if (st->key_sent) {
            s->pressing[i] = s->pressing[--s->npressing];
            continue;
        }
        if (now - st->r_last >= 0.020 && s->q->n + 3 <= RBATCH)
            sink_reply(s, st);
        i++;
    }
}

static void sink_flush_replies(struct sink *s, int fd)
{
    static struct mmsghdr m[RBATCH];
    static struct iovec iv[RBATCH];
    int done = 0;
    while (done < s->q->n) {
        int n = s->q->n - done;
        for (int i = 0; i < n; i++) {
            iv[i].iov_base = s->q->buf[done + i];
            iv[i].iov_len = s->q->len[done + i];
            memset(&m[i].msg_hdr, 0, sizeof m[i].msg_hdr);
            m[i].msg_hdr.msg_name = &s->q->to[done + i];
            m[i].msg_hdr.msg_namelen = sizeof s->q->to[done + i];
            m[i].msg_hdr.msg_iov = &iv[i];
            m[i].msg_hdr.msg_iovlen = 1;
        }
        int w = sendmmsg(fd, m, (unsigned)n, MSG_DONTWAIT);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            /* a full send buffer or a refused port: skip one, counted */
            s->reply_errors++;
            done++;
            continue;
        }
        s->replies_sent += (uint64_t)w;
        done += w;
    }
    s->q->n = 0;
}

static void sink_packet(struct sink *s, const struct sockaddr_in *from,
                        const uint8_t *p, size_t len, double arrival)
{
    s->packets++;
    s->bytes += len;
    if (len < 12 || (p[0] >> 6) != 2) {
        s->malformed++;
        return;
    }
    size_t hl = 12 + 4 * (size_t)(p[0] & 0x0f);
    if (p[0] & 0x10) { /* header extension */
        if (len < hl + 4) {
            s->malformed++;
            return;
        }
        hl += 4 + 4 * (size_t)((p[hl + 2] << 8) | p[hl + 3]);
    }
    if (len < hl) {
        s->malformed++;
        return;
    }
    size_t plen = len - hl;
    if ((p[0] & 0x20) && plen > 0) /* padding */
        plen -= p[len - 1] <= plen ? p[len - 1] : plen;
    uint16_t seq = (uint16_t)((p[2] << 8) | p[3]);
    uint32_t ts = ((uint32_t)p[4] << 24) | ((uint32_t)p[5] << 16) |
                  ((uint32_t)p[6] << 8) | p[7];
    uint32_t ssrc = ((uint32_t)p[8] << 24) | ((uint32_t)p[9] << 16) |
                    ((uint32_t)p[10] << 8) | p[11];
    struct stream *st = sink_find(s, from->sin_addr.s_addr, from->sin_port, ssrc);
    if (!st)
        return;
    if (st->received == 0) {
        st->first_seq = seq;
        st->first_ts = ts;
        st->pt = p[1] & 0x7f;
        st->first_arrival = arrival;
        st->last_arrival = arrival;
        st->last_transit = 0.0; /* transit relative to the first packet */
    } else {
        /* timestamps wrap: use the 32-bit difference to the first packet */
        double tsrel = (double)(int32_t)(ts - st->first_ts);
        double tr = (arrival - st->first_arrival) * 8000.0 - tsrel;
        double d = fabs(tr - st->last_transit);
        st->jitter += (d - st->jitter) / 16.0;
        if (st->jitter > st->max_jitter)
            st->max_jitter = st->jitter;
        st->last_transit = tr;
        double gap = arrival - st->last_arrival;
        if (gap > st->max_gap)
            st->max_gap = gap;
        if (arrival > st->last_arrival)
            st->last_arrival = arrival;
    }
    st->received++;
    uint16_t d16 = (uint16_t)(seq - st->first_seq);
    int32_t idx = (int16_t)d16;
    /* streams longer than 32767 packets: extend the index from the
     * highest index seen so far */
    if (st->max_index > 16384) {
        int32_t cand = (st->max_index & ~0xffff) + (int32_t)d16;
        if (cand > st->max_index + 32768)
            cand -= 65536;
        else if (cand < st->max_index - 32768)
            cand += 65536;
        idx = cand;
    }
    if (idx < 0) {
        /* arrived before the stream's first packet (reordered start):
         * cannot be placed; counted, never matched */
        st->before_first++;
        st->out_of_order++;
        return;
    }
    if (idx < st->max_index) {
        st->out_of_order++;
    } else {
        if (s->reply != NULL && idx > st->max_index)
            sink_reply(s, st); /* one callee packet per new packet */
        st->max_index = idx;
    }
    double due = st->first_arrival + (double)idx * 0.020;
    if (arrival > due + 0.020)
        st->late++;
    if ((uint32_t)idx >= s->expected) {
        st->beyond++;
        return;
    }
    if (st->seen[idx >> 3] & (1u << (idx & 7))) {
        st->dups++;
        return;
    }
    st->seen[idx >> 3] |= (uint8_t)(1u << (idx & 7));
    st->unique++;
    size_t f = (size_t)idx % s->frames_per_play;
    if (plen != FRAME || memcmp(p + hl, s->expect + f * FRAME, FRAME) != 0)
        st->mismatched++;
}

static json_t *sink_report(struct sink *s, double elapsed)
{
    size_t n = s->nstreams;
    double *jit = calloc(n + 1, sizeof *jit);
    double *gaps = calloc(n + 1, sizeof *gaps);
    if (!jit || !gaps)
        die("calloc");
    uint64_t unique = 0, lost = 0, dups = 0, ooo = 0, mism = 0, late = 0,
             beyond = 0, complete = 0, intact = 0, before_first = 0;
    uint32_t worst_lost = 0;
    double max_gap = 0, max_jit = 0;
    size_t k = 0, nk = 0;
    double *after_key = calloc(n + 1, sizeof *after_key);
    if (!after_key)
        die("calloc");
    for (size_t i = 0; i < s->cap; i++) {
        struct stream *st = &s->tab[i];
        if (!st->used)
            continue;
        unique += st->unique;
        uint32_t exp = s->expected;
        if (st->key_started) {
            /* the key may stop the prompt: packets up to the last one */
            if ((uint32_t)(st->max_index + 1) < exp)
                exp = (uint32_t)(st->max_index + 1);
            after_key[nk++] = (double)(st->max_index - s->key_at) * 20.0;
        }
        uint32_t l = exp > st->unique ? exp - st->unique : 0;
        lost += l;
        if (l > worst_lost)
            worst_lost = l;
        dups += st->dups;
        ooo += st->out_of_order;
        mism += st->mismatched;
        late += st->late;
        beyond += st->beyond;
        before_first += st->before_first;
        if (l == 0)
            complete++;
        if (l == 0 && st->mismatched == 0 && st->beyond == 0)
            intact++;
        jit[k] = st->max_jitter / 8.0; /* timestamp units -> ms */
        gaps[k] = st->max_gap * 1000.0;
        if (jit[k] > max_jit)
            max_jit = jit[k];
        if (gaps[k] > max_gap)
            max_gap = gaps[k];
        k++;
    }
    qsort(jit, k, sizeof *jit, cmp_double);
    qsort(gaps, k, sizeof *gaps, cmp_double);
    qsort(after_key, nk, sizeof *after_key, cmp_double);
    json_t *r = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
        " s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f}",
        "streams", (json_int_t)n,
        "streams_complete", (json_int_t)complete,
        "streams_intact", (json_int_t)intact,
        "expected_per_stream", (json_int_t)s->expected,
        "packets", (json_int_t)s->packets,
        "bytes", (json_int_t)s->bytes,
        "unique", (json_int_t)unique,
        "lost", (json_int_t)lost,
        "worst_stream_lost", (json_int_t)worst_lost,
        "duplicates", (json_int_t)dups,
        "out_of_order", (json_int_t)ooo,
        "before_first", (json_int_t)before_first,
        "beyond_end", (json_int_t)beyond,
        "payload_mismatch", (json_int_t)mism,
        "late", (json_int_t)late,
        "malformed", (json_int_t)s->malformed,
        "no_kernel_timestamp", (json_int_t)s->no_timestamp,
        "streams_dropped_table_full", (json_int_t)s->overflow_streams,
        "jitter_p50_ms", pct(jit, k, 50),
        "jitter_p99_ms", pct(jit, k, 99),
        "jitter_max_ms", max_jit,
        "gap_p50_ms", pct(gaps, k, 50),
        "gap_p99_ms", pct(gaps, k, 99),
        "gap_max_ms", max_gap,
        "elapsed_s", elapsed);
    json_object_set_new(r, "replies_sent", json_integer((json_int_t)s->replies_sent));
    json_object_set_new(r, "reply_errors", json_integer((json_int_t)s->reply_errors));
    json_object_set_new(r, "keys_sent", json_integer((json_int_t)s->keys_sent));
    /* how long each keyed stream's prompt ran after the key's first
     * packet left (frames x 20 ms; the end packet leaves 80 ms after it) */
    json_object_set_new(r, "prompt_after_key_p50_ms",
                        nk ? json_real(pct(after_key, nk, 50)) : json_null());
    json_object_set_new(r, "prompt_after_key_max_ms",
                        nk ? json_real(after_key[nk - 1]) : json_null());
    free(after_key);
    free(jit);
    free(gaps);
    return r;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path);
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0)
        die(path);
    uint8_t *buf = malloc((size_t)sb.st_size + 1);
    if (!buf)
        die("malloc");
    *len = fread(buf, 1, (size_t)sb.st_size, f);
    fclose(f);
    return buf;
}

#define BATCH 256
#define PKTMAX 2048

/* Over 80 lines: options, the socket, then one receive loop that owns the
 * batch buffers; split up, each part would take all of that state. */
static int cmd_sink(int argc, char **argv)
{
    int port = 0, plays = 1;
    const char *expect = NULL, *report = NULL;
    double idle = 0, timeout = 0;
    size_t max_streams = 200000;
    const char *reply = NULL, *key_digit = "1";
    int key_at = -1, key_pt = -1;
    static const struct option opts[] = {
        {"reply", required_argument, 0, 'R'},
        {"key-at", required_argument, 0, 'k'},
        {"key-pt", required_argument, 0, 'P'},
        {"key-digit", required_argument, 0, 'D'},
        {"port", required_argument, 0, 'p'},
        {"expect", required_argument, 0, 'e'},
        {"plays", required_argument, 0, 'n'},
        {"report", required_argument, 0, 'r'},
        {"idle", required_argument, 0, 'i'},
        {"duration", required_argument, 0, 'i'},
        {"timeout", required_argument, 0, 't'},
        {"max-streams", required_argument, 0, 'm'},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p': port = atoi(optarg); break;
        case 'e': expect = optarg; break;
        case 'n': plays = atoi(optarg); break;
        case 'r': report = optarg; break;
        case 'i': idle = atof(optarg); break;
        case 't': timeout = atof(optarg); break;
        case 'm': max_streams = (size_t)atol(optarg); break;
        case 'R': reply = optarg; break;
        case 'k': key_at = atoi(optarg); break;
        case 'P': key_pt = atoi(optarg); break;
        case 'D': key_digit = optarg; break;
        default: return 2;
        }
    }
    static const char digits[] = "0123456789*#ABCD";
    const char *dpos = strlen(key_digit) == 1 ? strchr(digits, key_digit[0]) : NULL;
    if (!port || !expect || !report || plays < 1 ||
        (key_at >= 0 && (!reply || key_pt < 96 || key_pt > 127 || !dpos))) {
        fprintf(stderr, "usage: ctidbench sink --port P --expect FILE.al "
                        "--plays N --report OUT.json [--idle S] [--timeout S]\n"
                        "       [--reply FILE.al [--key-at I --key-pt 96..127 "
                        "[--key-digit 0-9*#A-D]]]\n");
        return 2;
    }
    struct sink s;
    memset(&s, 0, sizeof s);
    size_t elen;
    s.expect = read_file(expect, &elen);
    if (elen == 0 || elen % FRAME) {
        fprintf(stderr, "ctidbench: %s: %zu bytes, not a whole number of "
                        "160-byte frames\n", expect, elen);
        return 2;
    }
    s.frames_per_play = elen / FRAME;
    s.expected = (uint32_t)(s.frames_per_play * (size_t)plays);
    s.key_at = key_at;
    s.key_pt = key_pt;
    s.key_event = dpos ? (int)(dpos - digits) : 0;
    if (reply != NULL) {
        size_t rlen;
        s.reply = read_file(reply, &rlen);
        if (rlen < FRAME) {
            fprintf(stderr, "ctidbench: %s: under one 160-byte frame\n", reply);
            return 2;
        }
        s.reply_frames = rlen / FRAME;
        s.q = calloc(1, sizeof *s.q);
        s.pressing = calloc(max_streams + 1, sizeof *s.pressing);
        if (!s.q || !s.pressing)
            die("calloc");
    }
    s.max_streams = max_streams;
    s.cap = 1;
    while (s.cap < max_streams * 2)
        s.cap <<= 1;
    s.tab = calloc(s.cap, sizeof *s.tab);
    if (!s.tab)
        die("calloc");

    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        die("socket");
    int one = 1, rb = 64 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rb, sizeof rb) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb);
    int sb = 8 << 20;
    if (reply != NULL &&
        setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sb, sizeof sb) != 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        die("bind");
    int got = 0;
    socklen_t gl = sizeof got;
    getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &gl);
    install_signals();
    fprintf(stderr, "ctidbench sink: 127.0.0.1:%d, %zu frames x %d plays, "
                    "rcvbuf %d\n", port, s.frames_per_play, plays, got);

    static uint8_t bufs[BATCH][PKTMAX];
    static char ctrl[BATCH][CMSG_SPACE(sizeof(struct timespec)) + 64];
    static struct sockaddr_in froms[BATCH];
    static struct iovec iov[BATCH];
    static struct mmsghdr msgs[BATCH];

    double start = mono_now(), last_pkt = 0;
    bool any = false;
    uint64_t drops_reported = 0;
    (void)drops_reported;
    while (!g_stop) {
        double now = mono_now();
        if (timeout > 0 && now - start > timeout)
            break;
        if (idle > 0 && any && now - last_pkt > idle)
            break;
        /* Poll every 2 ms instead of sleeping on the socket. A reader that
         * sleeps on the socket makes every sender pay for waking it, in
         * the sender's own system time (loopback delivery runs in the
         * sender's context): 22% of ctid's CPU in a profile, a cost that
         * belongs to the sink, not to ctid or sipp. Arrival times are the
         * kernel's delivery timestamps, so polling does not blur them, and
         * the 64 MiB buffer holds far more than 2 ms of traffic. */
        struct timespec nap = {0, 2000000};
        nanosleep(&nap, NULL);
        for (;;) {
            for (int i = 0; i < BATCH; i++) {
                iov[i].iov_base = bufs[i];
                iov[i].iov_len = PKTMAX;
                msgs[i].msg_hdr.msg_name = &froms[i];
                msgs[i].msg_hdr.msg_namelen = sizeof froms[i];
                msgs[i].msg_hdr.msg_iov = &iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
                msgs[i].msg_hdr.msg_control = ctrl[i];
                msgs[i].msg_hdr.msg_controllen = sizeof ctrl[i];
                msgs[i].msg_hdr.msg_flags = 0;
            }
            int m = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
            if (m <= 0)
                break;
            struct timespec fallback;
            clock_gettime(CLOCK_REALTIME, &fallback);
            for (int i = 0; i < m; i++) {
                double arrival = -1;
                for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msgs[i].msg_hdr); cm;
                     cm = CMSG_NXTHDR(&msgs[i].msg_hdr, cm)) {
                    if (cm->cmsg_level == SOL_SOCKET &&
                        cm->cmsg_type == SCM_TIMESTAMPNS) {
                        struct timespec t;
                        memcpy(&t, CMSG_DATA(cm), sizeof t);
                        arrival = (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
                    }
                }
                if (arrival < 0) {
                    s.no_timestamp++;
                    arrival = (double)fallback.tv_sec + (double)fallback.tv_nsec * 1e-9;
                }
                sink_packet(&s, &froms[i], bufs[i], msgs[i].msg_len, arrival);
            }
            if (s.q != NULL && s.q->n > 0)
                sink_flush_replies(&s, fd);
            any = true;
            last_pkt = mono_now();
            if (m < BATCH)
                break;
        }
        if (s.npressing > 0) {
            sink_press_on(&s);
            if (s.q->n > 0)
                sink_flush_replies(&s, fd);
        }
    }
    json_t *r = sink_report(&s, mono_now() - start);
    int rc = write_report(r, report);
    json_decref(r);
    close(fd);
    for (size_t i = 0; i < s.cap; i++)
        free(s.tab[i].seen);
    free(s.tab);
    free((void *)s.expect);
    free((void *)s.reply);
    free(s.q);
    free(s.pressing);
    return rc ? 1 : 0;
}

/* ======================================================================
 * load
 */

struct conn {
    int fd;
    char *out;
    size_t out_len, out_cap;
    char *in;
    size_t in_len, in_cap;
    bool dead;
};

struct req {
    double sent;
    double replied;   /* 0 until the reply */
    double released;  /* 0 until on_released */
    int state;        /* 0 unsent, 1 sent, 2 constructed, 3 error reply, 4 released */
    int conn;
};

struct load {
    struct conn *conns;
    int nconns;
    struct req *reqs;
    long total;
    long sent, replied, constructed, error_replies, released;
    long ev_ok, ev_error, ev_unknown;
    long concurrent, peak_concurrent;
    double t0;
    double max_lag;
    json_t *outcomes;   /* "error/dropped_by/cause" -> count */
    json_t *reply_errors; /* code -> count */
    json_t *keys_seen;  /* on_released's `keys` ("(absent)" without) -> count */
    double played_ms_sum; /* on_released's played_ms, summed */
};

static void conn_flush(struct conn *c)
{
    while (c->out_len > 0 && !c->dead) {
        ssize_t w = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR)
                continue;
            c->dead = true;
            return;
        }
        memmove(c->out, c->out + w, c->out_len - (size_t)w);
        c->out_len -= (size_t)w;
    }
}

static void conn_append(struct conn *c, const char *s, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 65536;
        while (cap < c->out_len + n)
            cap *= 2;
        c->out = realloc(c->out, cap);
        if (!c->out)
            die("realloc");
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
}

static void count_key(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    json_object_set_new(obj, key, json_integer(v ? json_integer_value(v) + 1 : 1));
}

static void load_line(struct load *L, const char *line, size_t len)
{
    json_error_t err;
    json_t *j = json_loadb(line, len, 0, &err);
    if (!j) {
        L->ev_unknown++;
        return;
    }
    json_t *id = json_object_get(j, "id");
    json_t *method = json_object_get(j, "method");
    double now = mono_now();
    if (json_is_integer(id)) {
        json_int_t i = json_integer_value(id);
        if (i >= 0 && i < L->total && L->reqs[i].state == 1) {
            struct req *r = &L->reqs[i];
            r->replied = now;
            L->replied++;
            if (json_object_get(j, "result")) {
                r->state = 2;
                L->constructed++;
                L->concurrent++;
                if (L->concurrent > L->peak_concurrent)
                    L->peak_concurrent = L->concurrent;
            } else {
                r->state = 3;
                L->error_replies++;
                char key[64];
                json_t *e = json_object_get(j, "error");
                snprintf(key, sizeof key, "%lld",
                         (long long)json_integer_value(json_object_get(e, "code")));
                count_key(L->reply_errors, key);
            }
        } else {
            L->ev_unknown++;
        }
    } else if (json_is_string(method) &&
               strcmp(json_string_value(method), "ext.notify_call.on_released") == 0) {
        json_t *p = json_object_get(j, "params");
        const char *ud = json_string_value(json_object_get(p, "user_data"));
        long i = ud ? strtol(ud, NULL, 10) : -1;
        if (i >= 0 && i < L->total && L->reqs[i].state == 2) {
            L->reqs[i].state = 4;
            L->reqs[i].released = mono_now();
            L->released++;
            L->concurrent--;
            json_t *e = json_object_get(p, "error");
            if (json_is_null(e))
                L->ev_ok++;
            else
                L->ev_error++;
            char key[160];
            snprintf(key, sizeof key, "%s/%s/%lld",
                     json_is_string(e) ? json_string_value(e) : "null",
                     json_is_string(json_object_get(p, "dropped_by"))
                         ? json_string_value(json_object_get(p, "dropped_by")) : "?",
                     (long long)json_integer_value(json_object_get(p, "cause")));
            count_key(L->outcomes, key);
            json_t *kv = json_object_get(p, "keys");
            count_key(L->keys_seen, json_is_string(kv) ? json_string_value(kv)
                                    : kv == NULL ? "(absent)" : "(not a string)");
            json_t *pm = json_object_get(p, "played_ms");
            if (json_is_number(pm))
                L->played_ms_sum += json_number_value(pm);
        } else {
            L->ev_unknown++;
        }
    } else {
        L->ev_unknown++;
    }
    json_decref(j);
}

static void conn_read(struct load *L, struct conn *c)
{
    for (;;) {
        if (c->in_cap - c->in_len < 65536) {
            c->in_cap = c->in_cap ? c->in_cap * 2 : 262144;
            c->in = realloc(c->in, c->in_cap);
            if (!c->in)
                die("realloc");
        }
        ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (r == 0) {
            c->dead = true;
            return;
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                c->dead = true;
            return;
        }
        c->in_len += (size_t)r;
        size_t start = 0;
        for (size_t i = c->in_len - (size_t)r; i < c->in_len; i++) {
            if (c->in[i] == '\n') {
                if (i > start)
                    load_line(L, c->in + start, i - start);
                start = i + 1;
            }
        }
        memmove(c->in, c->in + start, c->in_len - start);
        c->in_len -= start;
    }
}

/* --keys: construct's keys as one compact JSON member ",\"keys\":{...}"
 * in out, or "" without; -1 (said on stderr) unless a JSON object that
 * fits. */
static int load_keys_member(const char *arg, char *out, size_t size)
{
    if (arg == NULL)
        return 0;
    json_error_t jerr;
    json_t *kj = json_loads(arg, 0, &jerr);
    char *text = json_is_object(kj) ? json_dumps(kj, JSON_COMPACT) : NULL;
    int n = text ? snprintf(out, size, ",\"keys\":%s", text) : -1;
    free(text);
    json_decref(kj);
    if (n < 0 || (size_t)n >= size) {
        out[0] = '\0';
        fprintf(stderr, "ctidbench: --keys: not a JSON object of under %zu "
                        "bytes: %s\n", size - 10, arg);
        return -1;
    }
    return 0;
}

/* Over 80 lines: options, connections, the send/receive loop and the
 * report share the load's state; it reads top to bottom as one run. */
static int cmd_load(int argc, char **argv)
{
    const char *host = "127.0.0.1", *to = NULL, *play = NULL, *report = NULL;
    const char *keys_arg = NULL, *lat_path = NULL;
    int port = 7010, conns = 8, repeat = 0;
    double rate = 0, seconds = 0, wait = 60;
    static const struct option opts[] = {
        {"host", required_argument, 0, 'h'},
        {"port", required_argument, 0, 'p'},
        {"conns", required_argument, 0, 'k'},
        {"rate", required_argument, 0, 'R'},
        {"seconds", required_argument, 0, 'T'},
        {"to", required_argument, 0, 'u'},
        {"play", required_argument, 0, 'f'},
        {"repeat", required_argument, 0, 'n'},
        {"wait", required_argument, 0, 'w'},
        {"report", required_argument, 0, 'r'},
        {"keys", required_argument, 0, 'K'},
        {"latencies", required_argument, 0, 'L'},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'k': conns = atoi(optarg); break;
        case 'R': rate = atof(optarg); break;
        case 'T': seconds = atof(optarg); break;
        case 'u': to = optarg; break;
        case 'f': play = optarg; break;
        case 'n': repeat = atoi(optarg); break;
        case 'w': wait = atof(optarg); break;
        case 'r': report = optarg; break;
        case 'K': keys_arg = optarg; break;
        case 'L': lat_path = optarg; break;
        default: return 2;
        }
    }
    if (!to || !play || !report || rate <= 0 || seconds <= 0 || conns < 1) {
        fprintf(stderr, "usage: ctidbench load --host H --port P --conns K "
                        "--rate R --seconds T --to URI --play FILE [--repeat N] "
                        "[--wait S] [--keys JSON] [--latencies FILE] "
                        "--report OUT.json\n");
        return 2;
    }
    char keys_member[256] = "";
    if (load_keys_member(keys_arg, keys_member, sizeof keys_member) < 0)
        return 2;
    install_signals();
    struct load L;
    memset(&L, 0, sizeof L);
    L.total = (long)llround(rate * seconds);
    L.reqs = calloc((size_t)L.total + 1, sizeof *L.reqs);
    L.nconns = conns;
    L.conns = calloc((size_t)conns, sizeof *L.conns);
    L.outcomes = json_object();
    L.keys_seen = json_object();
    L.reply_errors = json_object();
    if (!L.reqs || !L.conns)
        die("calloc");

    int ep = epoll_create1(0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "ctidbench: bad host %s\n", host);
        return 2;
    }
    for (int i = 0; i < conns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            die("socket");
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
            die("connect");
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        L.conns[i].fd = fd;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct epoll_event tev = {.events = EPOLLIN, .data.u32 = 0xffffffffu};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);

    struct timespec t0ts;
    clock_gettime(CLOCK_MONOTONIC, &t0ts);
    L.t0 = (double)t0ts.tv_sec + (double)t0ts.tv_nsec * 1e-9;
    double interval = 1.0 / rate;
    double send_end = 0, deadline = 0;
    char line[1024];
    bool sending = true;
    while (!g_stop) {
        double now = mono_now();
        if (sending) {
            /* send everything that is due (catch up, never drift) */
            while (L.sent < L.total && L.t0 + (double)L.sent * interval <= now) {
                long i = L.sent;
                struct conn *cn = &L.conns[i % conns];
                int n = snprintf(line, sizeof line,
                    "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"ext.notify_call.construct\","
                    "\"params\":{\"to_uri\":\"%s\",\"play_content\":\"%s\","
                    "\"play_repeat\":%d,\"user_data\":\"%ld\"%s}}\n",
                    i, to, play, repeat, i, keys_member);
                double lag = now - (L.t0 + (double)i * interval);
                if (lag > L.max_lag)
                    L.max_lag = lag;
                L.reqs[i].sent = mono_now();
                L.reqs[i].state = 1;
                L.reqs[i].conn = (int)(i % conns);
                conn_append(cn, line, (size_t)n);
                conn_flush(cn);
                L.sent++;
            }
            if (L.sent >= L.total) {
                sending = false;
                send_end = now;
                deadline = now + wait;
            } else {
                double next = L.t0 + (double)L.sent * interval;
                struct itimerspec its;
                memset(&its, 0, sizeof its);
                its.it_value.tv_sec = (time_t)next;
                its.it_value.tv_nsec = (long)((next - (double)(time_t)next) * 1e9);
                timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
            }
        }
        if (!sending) {
            if (L.replied >= L.sent && L.released >= L.constructed)
                break;
            if (now > deadline)
                break;
        }
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, sending ? 50 : 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int k = 0; k < n; k++) {
            if (evs[k].data.u32 == 0xffffffffu) {
                uint64_t x;
                if (read(tfd, &x, sizeof x) < 0) { /* spurious */ }
                continue;
            }
            struct conn *cn = &L.conns[evs[k].data.u32];
            if (evs[k].events & EPOLLOUT)
                conn_flush(cn);
            if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                conn_read(&L, cn);
        }
    }
    double end = mono_now();
    /* reply latencies */
    double *lat = calloc((size_t)L.total + 1, sizeof *lat);
    size_t nl = 0;
    for (long i = 0; i < L.sent; i++)
        if (L.reqs[i].replied > 0)
            lat[nl++] = (L.reqs[i].replied - L.reqs[i].sent) * 1000.0;
    if (lat_path != NULL) { /* one line per reply: sent (s from start), ms */
        FILE *lf = fopen(lat_path, "w");
        if (lf == NULL)
            die(lat_path);
        for (long i = 0; i < L.sent; i++)
            if (L.reqs[i].replied > 0)
                fprintf(lf, "%.6f %.3f\n", L.reqs[i].sent - L.t0,
                        (L.reqs[i].replied - L.reqs[i].sent) * 1000.0);
        fclose(lf);
    }
    qsort(lat, nl, sizeof *lat, cmp_double);
    /* call lengths: construct sent to on_released */
    double *len = calloc((size_t)L.total + 1, sizeof *len);
    size_t nlen = 0;
    double len_sum = 0;
    for (long i = 0; i < L.sent; i++)
        if (L.reqs[i].released > 0) {
            len[nlen] = (L.reqs[i].released - L.reqs[i].sent) * 1000.0;
            len_sum += len[nlen++];
        }
    qsort(len, nlen, sizeof *len, cmp_double);
    long dead = 0;
    for (int i = 0; i < conns; i++)
        dead += L.conns[i].dead;
    long missing_replies = L.sent - L.replied;
    long missing_events = L.constructed - L.released;
    long failed = L.error_replies + L.ev_error + missing_replies + missing_events +
                  (L.total - L.sent);
    json_t *r = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
        " s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:o, s:o, s:b}",
        "placed", (json_int_t)L.total,
        "sent", (json_int_t)L.sent,
        "ok", (json_int_t)L.ev_ok,
        "failed", (json_int_t)failed,
        "constructed", (json_int_t)L.constructed,
        "error_replies", (json_int_t)L.error_replies,
        "missing_replies", (json_int_t)missing_replies,
        "released", (json_int_t)L.released,
        "released_with_error", (json_int_t)L.ev_error,
        "missing_events", (json_int_t)missing_events,
        "unmatched_lines", (json_int_t)L.ev_unknown,
        "peak_concurrent", (json_int_t)L.peak_concurrent,
        "conns", (json_int_t)conns,
        "dead_conns", (json_int_t)dead,
        "rate", rate,
        "construct_p50_ms", pct(lat, nl, 50),
        "construct_p99_ms", pct(lat, nl, 99),
        "construct_max_ms", nl ? lat[nl - 1] : 0.0,
        "call_p50_ms", pct(len, nlen, 50),
        "call_max_ms", nlen ? len[nlen - 1] : 0.0,
        "send_seconds", (send_end > 0 ? send_end : end) - L.t0,
        "elapsed_s", end - L.t0,
        "schedule_max_lag_ms", L.max_lag * 1000.0,
        "seconds", seconds,
        "outcomes", L.outcomes,
        "reply_errors", L.reply_errors,
        "interrupted", (int)g_stop);
    /* issue 14's keys bench: what each call collected, how long the calls
     * lasted and how much prompt they played, in total */
    json_object_set_new(r, "keys_seen", L.keys_seen);
    json_object_set_new(r, "call_sum_ms", json_real(len_sum));
    json_object_set_new(r, "played_ms_sum", json_real(L.played_ms_sum));
    int rc = write_report(r, report);
    json_decref(r);
    free(lat);
    free(len);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "sink") == 0)
        return cmd_sink(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "load") == 0)
        return cmd_load(argc - 1, argv + 1);
    fprintf(stderr, "usage: ctidbench sink|load ... (see bench/README.md)\n");
    return 2;
}
