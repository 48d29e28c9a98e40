/* client: owns one blocking JSON-RPC connection to ctid (struct client):
 * connecting with a timeout, writing request lines, splitting what comes
 * back into lines with the daemon's own rpc_framer, and the queue of lines
 * read but not yet asked for, so a reply can be found behind events and
 * events are handed out in arrival order. */
#include "client.h"
#include "clock.h"
#include "rpc.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

/* Far above any reply or event ctid writes; only a sanity bound. */
#define CLIENT_MAX_LINE (16u << 20)
#define CLIENT_READ_CHUNK 65536

struct client {
    int fd;
    struct rpc_framer framer;
    struct client_msg *head, *tail; /* lines read, not yet handed out */
    json_int_t next_id;
    bool eof;        /* the daemon closed its side */
    bool bad_line;   /* a line that is not a JSON object was read */
    char error[256];
};

void client_msg_free(struct client_msg *m)
{
    if (m == NULL)
        return;
    free(m->line);
    json_decref(m->json);
    free(m);
}

static int client_fail(struct client *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int client_fail(struct client *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
    return rc;
}

const char *client_error(const struct client *c)
{
    return c->error;
}

/* ---- addresses and connecting ----------------------------------------- */

static int client_copy(char *dst, size_t cap, const char *src, size_t len)
{
    if (len == 0 || len >= cap)
        return -1;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

int client_parse_hostport(const char *s, char *host, size_t hostlen,
                          char *port, size_t portlen)
{
    const char *h = s, *p = NULL;
    size_t hlen;

    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL)
            return -1;
        h = s + 1;
        hlen = (size_t)(end - h);
        if (end[1] == ':')
            p = end + 2;
        else if (end[1] != '\0')
            return -1;
    } else {
        const char *colon = strchr(s, ':');
        if (colon != NULL && strchr(colon + 1, ':') == NULL) {
            hlen = (size_t)(colon - s);
            p = colon + 1;
        } else {
            hlen = strlen(s); /* no port, or a bare IPv6 address */
        }
    }
    if (client_copy(host, hostlen, h, hlen) < 0)
        return -1;
    if (p == NULL)
        p = CLIENT_DEFAULT_PORT;
    return client_copy(port, portlen, p, strlen(p));
}

/* Milliseconds left until deadline as a poll() timeout: -1 for none. */
static int client_left(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t left = deadline - (int64_t)clock_mono_ms();
    if (left <= 0)
        return 0;
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

static int64_t client_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : (int64_t)clock_mono_ms() + timeout_ms;
}

/* One address: a non-blocking connect so the timeout holds, then back to
 * blocking for the plain read/write code. Returns the fd or -1 (errno). */
static int client_connect_one(const struct addrinfo *ai, int64_t deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS)
            goto fail;
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int n;
        do
            n = poll(&pfd, 1, client_left(deadline));
        while (n < 0 && errno == EINTR);
        if (n < 0)
            goto fail;
        if (n == 0) {
            errno = ETIMEDOUT;
            goto fail;
        }
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
            goto fail;
        if (soerr != 0) {
            errno = soerr;
            goto fail;
        }
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
        goto fail;
    return fd;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

int client_connect(const char *hostport, int timeout_ms, struct client **out,
                   char *err, size_t errlen)
{
    char host[256], port[64];
    *out = NULL;
    if (client_parse_hostport(hostport, host, sizeof host, port,
                              sizeof port) < 0) {
        snprintf(err, errlen, "bad address '%s' (HOST:PORT expected)",
                 hostport);
        return CLIENT_IO;
    }
    /* No AI_ADDRCONFIG: it hides ::1 and 127.0.0.1 on hosts whose only
     * addresses are loopback ones, which is where ctid usually listens. */
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve %s port %s: %s", host, port,
                 gai_strerror(gai));
        return CLIENT_IO;
    }
    int64_t deadline = client_deadline(timeout_ms);
    int fd = -1, saved = 0;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = client_connect_one(ai, deadline);
        if (fd < 0)
            saved = errno;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "cannot connect to %s: %s", hostport,
                 saved == ETIMEDOUT ? "timed out" : strerror(saved));
        return CLIENT_IO;
    }
    *out = client_attach(fd);
    if (*out == NULL) {
        snprintf(err, errlen, "out of memory");
        return CLIENT_IO;
    }
    return CLIENT_OK;
}

struct client *client_attach(int fd)
{
    struct client *c = calloc(1, sizeof *c);
    if (c == NULL) {
        close(fd);
        return NULL;
    }
    c->fd = fd;
    c->next_id = 1;
    rpc_framer_init(&c->framer, CLIENT_MAX_LINE);
    return c;
}

void client_free(struct client *c)
{
    if (c == NULL)
        return;
    while (c->head != NULL) {
        struct client_msg *m = c->head;
        c->head = m->next;
        client_msg_free(m);
    }
    rpc_framer_free(&c->framer);
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

/* ---- reading ------------------------------------------------------------ */

static void client_on_line(void *arg, char *line, size_t len)
{
    struct client *c = arg;
    if (c->bad_line)
        return; /* the stream is not ctid's protocol; stop trusting it */
    json_error_t jerr;
    json_t *v = json_loadb(line, len, JSON_DECODE_ANY, &jerr);
    struct client_msg *m = NULL;
    if (v == NULL || !json_is_object(v)) {
        c->bad_line = true;
        client_fail(c, CLIENT_PROTO, "the daemon sent a line that is not "
                    "a JSON object: %.80s", line);
        json_decref(v);
        return;
    }
    m = calloc(1, sizeof *m);
    if (m == NULL || (m->line = strndup(line, len)) == NULL) {
        /* Treated like a bad stream: the caller gives up either way. */
        c->bad_line = true;
        client_fail(c, CLIENT_PROTO, "out of memory");
        json_decref(v);
        free(m);
        return;
    }
    m->json = v;
    if (c->tail != NULL)
        c->tail->next = m;
    else
        c->head = m;
    c->tail = m;
}

static void client_on_oversize(void *arg)
{
    struct client *c = arg;
    c->bad_line = true;
    client_fail(c, CLIENT_PROTO, "the daemon sent a line longer than %u bytes",
                CLIENT_MAX_LINE);
}

/* Reads once (waiting until deadline) and queues the complete lines. */
static int client_fill(struct client *c, int64_t deadline)
{
    if (c->bad_line)
        return CLIENT_PROTO;
    if (c->eof)
        return client_fail(c, CLIENT_CLOSED, "connection closed by the daemon");
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    int n = poll(&pfd, 1, client_left(deadline));
    if (n < 0 && errno == EINTR)
        return CLIENT_OK; /* the caller loops and recomputes the time left */
    if (n < 0)
        return client_fail(c, CLIENT_IO, "poll: %s", strerror(errno));
    if (n == 0)
        return client_fail(c, CLIENT_TIMEOUT, "timed out waiting for the daemon");
    char buf[CLIENT_READ_CHUNK];
    ssize_t r = read(c->fd, buf, sizeof buf);
    if (r < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return CLIENT_OK;
        return client_fail(c, CLIENT_IO, "read: %s", strerror(errno));
    }
    if (r == 0) {
        c->eof = true;
        return client_fail(c, CLIENT_CLOSED, "connection closed by the daemon");
    }
    if (rpc_framer_feed(&c->framer, buf, (size_t)r, client_on_line,
                        client_on_oversize, c) < 0)
        return client_fail(c, CLIENT_IO, "out of memory");
    return c->bad_line ? CLIENT_PROTO : CLIENT_OK;
}

static bool client_is_reply(const json_t *v)
{
    return json_object_get(v, "id") != NULL
           && (json_object_get(v, "result") != NULL
               || json_object_get(v, "error") != NULL);
}

static bool client_is_event(const json_t *v)
{
    return json_object_get(v, "id") == NULL
           && json_is_string(json_object_get(v, "method"));
}

/* Unlinks m, whose predecessor in the queue is prev (NULL: the head). */
static struct client_msg *client_unlink(struct client *c,
                                        struct client_msg *prev,
                                        struct client_msg *m)
{
    if (prev != NULL)
        prev->next = m->next;
    else
        c->head = m->next;
    if (c->tail == m)
        c->tail = prev;
    m->next = NULL;
    return m;
}

static bool client_reply_matches(const json_t *v, json_int_t id)
{
    json_t *vid = json_object_get(v, "id");
    if (json_is_integer(vid))
        return json_integer_value(vid) == id;
    return json_is_null(vid) && json_object_get(v, "error") != NULL;
}

int client_wait_reply(struct client *c, json_int_t id, int timeout_ms,
                      struct client_msg **reply)
{
    int64_t deadline = client_deadline(timeout_ms);
    *reply = NULL;
    for (;;) {
        struct client_msg *prev = NULL;
        for (struct client_msg *m = c->head; m != NULL; prev = m, m = m->next)
            if (client_is_reply(m->json) && client_reply_matches(m->json, id)) {
                *reply = client_unlink(c, prev, m);
                return CLIENT_OK;
            }
        int rc = client_fill(c, deadline);
        if (rc < 0)
            return rc;
    }
}

int client_next_event(struct client *c, int timeout_ms,
                      struct client_msg **event)
{
    int64_t deadline = client_deadline(timeout_ms);
    *event = NULL;
    for (;;) {
        while (c->head != NULL) {
            struct client_msg *m = client_unlink(c, NULL, c->head);
            if (client_is_event(m->json)) {
                *event = m;
                return CLIENT_OK;
            }
            client_msg_free(m); /* a late reply nobody waits for */
        }
        int rc = client_fill(c, deadline);
        if (rc < 0)
            return rc;
    }
}

/* ---- writing ------------------------------------------------------------ */

static int client_write_all(struct client *c, const char *data, size_t len)
{
    while (len > 0) {
        /* MSG_NOSIGNAL: a daemon gone away is an error to report, not a
         * SIGPIPE that kills the tool without a word. */
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EPIPE || errno == ECONNRESET)
                return client_fail(c, CLIENT_CLOSED,
                                   "connection closed by the daemon");
            return client_fail(c, CLIENT_IO, "write: %s", strerror(errno));
        }
        data += n;
        len -= (size_t)n;
    }
    return CLIENT_OK;
}

int client_request(struct client *c, const char *method, json_t *params,
                   json_int_t *id)
{
    json_int_t rid = c->next_id++;
    json_t *req = json_pack("{s:s, s:I, s:s}", "jsonrpc", "2.0", "id", rid,
                            "method", method);
    if (req == NULL) {
        json_decref(params);
        return client_fail(c, CLIENT_IO, "out of memory");
    }
    if (params != NULL && json_object_set_new(req, "params", params) < 0) {
        json_decref(req);
        return client_fail(c, CLIENT_IO, "out of memory");
    }
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (text == NULL)
        return client_fail(c, CLIENT_IO, "cannot encode the request");
    size_t len = strlen(text);
    char *line = realloc(text, len + 2);
    if (line == NULL) {
        free(text);
        return client_fail(c, CLIENT_IO, "out of memory");
    }
    line[len] = '\n';
    line[len + 1] = '\0';
    int rc = client_write_all(c, line, len + 1);
    free(line);
    if (rc == CLIENT_OK && id != NULL)
        *id = rid;
    return rc;
}

int client_call(struct client *c, const char *method, json_t *params,
                int timeout_ms, struct client_msg **reply)
{
    json_int_t id;
    *reply = NULL;
    int rc = client_request(c, method, params, &id);
    if (rc < 0)
        return rc;
    return client_wait_reply(c, id, timeout_ms, reply);
}
