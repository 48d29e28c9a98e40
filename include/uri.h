/* uri: the simplified SIP URI of contract §6, [[sip:]user@]host[:port].
 * Anything outside the grammar is refused, never copied into SIP. */
#ifndef CTID_URI_H
#define CTID_URI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct uri {
    char user[128];  /* dialled number; "" when absent */
    char host[256];  /* hostname, IPv4, or IPv6 without brackets */
    uint16_t port;   /* 5060 when absent */
    bool has_port;   /* the text named a port: "user@trunk1" without one
                        may name a configured gateway (conf_route_gateway) */
};

/* Returns 0, or -1 with a reason in err. */
int uri_parse(const char *text, struct uri *out, char *err, size_t errlen);
/* Is every character of user allowed in a SIP user part? */
int uri_user_valid(const char *user);
/* "user@host:port" (IPv6 in brackets) into buf; returns snprintf's count. */
int uri_format(const struct uri *u, char *buf, size_t len);
/* "host:port", or "[host]:port" when host is an IPv6 address (has a
 * colon); returns snprintf's count. The one place ctid writes that form. */
int uri_hostport(char *buf, size_t len, const char *host, unsigned port);
/* host alone, or "[host]" when host is an IPv6 address (has a colon):
 * a host with no port beside it; returns snprintf's count. */
int uri_host(char *buf, size_t len, const char *host);

#endif
