/* client: a blocking JSON-RPC client of ctid, for ctictl and the tests.
 * One connection; requests go out as one line each, replies are matched to
 * their request by id, and events that arrive first are queued in order so
 * none is lost while waiting for a reply. Blocking sockets and poll(): it
 * is for command-line tools, never for the daemon's event loop. */
#ifndef CTID_CLIENT_H
#define CTID_CLIENT_H

#include <jansson.h>
#include <stddef.h>

#define CLIENT_DEFAULT_PORT "7010"

/* Return values of the functions below: 0 or one of the negative causes,
 * whose text client_error() gives. */
enum client_rc {
    CLIENT_OK = 0,
    CLIENT_TIMEOUT = -1, /* nothing arrived within the timeout */
    CLIENT_CLOSED = -2,  /* the daemon closed the connection */
    CLIENT_IO = -3,      /* resolve, connect, read or write failed */
    CLIENT_PROTO = -4,   /* the daemon sent a line that is not a JSON object */
};

/* One line received: the raw text (for --json output, byte for byte as
 * sent, without its line end) and its parse. Owned by whoever the client
 * handed it to; freed with client_msg_free. */
struct client_msg {
    char *line;
    json_t *json;            /* always an object */
    struct client_msg *next; /* the client's queue link; NULL once handed out */
};

void client_msg_free(struct client_msg *m);

struct client;

/* Splits "HOST:PORT", "[V6]:PORT", "HOST" or "[V6]" (port defaults to
 * CLIENT_DEFAULT_PORT; a bare address with several ':' is IPv6 without a
 * port). Returns 0, or -1 if malformed or a part does not fit. */
int client_parse_hostport(const char *s, char *host, size_t hostlen,
                          char *port, size_t portlen);

/* Resolves and connects, trying each address until one answers within
 * timeout_ms (< 0: no limit; name resolution itself is not bounded).
 * Returns 0 with *out, or a CLIENT_* cause with its text in err. */
int client_connect(const char *hostport, int timeout_ms, struct client **out,
                   char *err, size_t errlen);
/* A client on an already connected stream socket (tests use a
 * socketpair); takes ownership of fd. NULL if out of memory (fd closed). */
struct client *client_attach(int fd);
/* Closes the socket and frees everything still queued. */
void client_free(struct client *c);

/* Why the last call failed. Valid until the next call on c. */
const char *client_error(const struct client *c);

/* Sends one request with a new integer id (in *id if not NULL). Steals
 * params (NULL: none sent). */
int client_request(struct client *c, const char *method, json_t *params,
                   json_int_t *id);
/* The reply to request id: an object with "result" or "error". An error
 * reply with id null (the daemon could not read our id) counts as the
 * reply, since ctictl has one request in flight at a time. Events read
 * meanwhile stay queued for client_next_event. timeout_ms < 0: no limit. */
int client_wait_reply(struct client *c, json_int_t id, int timeout_ms,
                      struct client_msg **reply);
/* client_request then client_wait_reply. */
int client_call(struct client *c, const char *method, json_t *params,
                int timeout_ms, struct client_msg **reply);
/* The oldest queued event (an object with "method" and no "id"), reading
 * more if none is queued. Replies nobody waits for are dropped on the way.
 * timeout_ms < 0: no limit; 0: only what is already readable. */
int client_next_event(struct client *c, int timeout_ms,
                      struct client_msg **event);

#endif
