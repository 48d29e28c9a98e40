/* conf: the daemon's configuration: defaults, the config file
 * (conf/ctid.conf documents every key) and command-line overrides, all
 * read through the key tables of conf.c (top-level keys) and
 * conf_gateway.c (a [gateway NAME] section's). A struct conf is filled once at
 * start-up (or into a scratch copy on SIGHUP, see conf_reload) and is
 * read-only afterwards; it holds no pointers, so copying it is a deep
 * copy. Main thread. */
#ifndef CTID_CONF_H
#define CTID_CONF_H

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#define CONF_MAX_GATEWAYS 64
#define CONF_HOST_MAX 256

/* Transports a gateway is reached over (its `transport` key). */
enum conf_transport { CONF_TP_UDP, CONF_TP_TCP, CONF_TP_TLS };

#define CONF_GW_HEADERS_MAX 1024
#define CONF_GW_CA_MAX 512
/* Where tls_ca_file points by default: Debian's system store. */
#define CONF_SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"

/* A VoIP gateway or carrier trunk calls are sent to; named by a to_uri
 * as host:port or, without a port, by its section name
 * (conf_route_gateway). */
struct conf_gateway {
    char name[64];              /* section name: logs, "user@NAME" */
    char host[CONF_HOST_MAX];   /* where packets go (and to_uri's host) */
    uint16_t port;              /* 0: by transport (conf_gateway_port) */
    unsigned max_calls;         /* concurrent calls; 0 = no per-gateway limit */
    char username[128];         /* digest credentials; empty = none */
    char password[128];
    /* Carrier trunks (issue 13): how the INVITE is built and sent. */
    char transport[8];          /* "udp", "tcp" or "tls" (conf_gateway_tp) */
    char domain[CONF_HOST_MAX]; /* R-URI/To/From domain; "" = host */
    char proxy[CONF_HOST_MAX + 8]; /* outbound proxy HOST[:PORT]; "" none */
    char caller_id[128];        /* From user when from_uri is null */
    bool pai;                   /* add P-Asserted-Identity */
    char headers[CONF_GW_HEADERS_MAX]; /* extra headers (sipheaders.h) */
    bool tls_verify;            /* verify the server's certificate + name */
    char tls_ca_file[CONF_GW_CA_MAX]; /* "" = CONF_SYSTEM_CA_FILE */
    bool reg;                   /* register = yes: REGISTER username@domain */
    unsigned register_expires;  /* s asked of the registrar */
    unsigned options_interval;  /* s between OPTIONS pings; 0 = none */
};

/* The SIP domain of a gateway (Request-URI, To, From, REGISTER's AOR):
 * its host for now (issue 13's `domain` key will take over here). */
const char *conf_gateway_domain(const struct conf_gateway *g);
/* Its transport's name: "udp" (issue 13's `transport` key). */
const char *conf_gateway_transport(const struct conf_gateway *g);

struct conf {
    char listen_host[CONF_HOST_MAX]; /* JSON-RPC listener */
    uint16_t listen_port;
    char sip_host[CONF_HOST_MAX];    /* local SIP bind address (UDP) */
    uint16_t sip_port;
    char public_address[CONF_HOST_MAX]; /* Contact/Via host; "" = sip_host */
    char media_ip[CONF_HOST_MAX];    /* RTP bind + SDP c= address; "" = sip_host */
    char media_public_address[CONF_HOST_MAX]; /* SDP c=/o=; "" = media_ip */
    uint16_t rtp_port_min;           /* even ports in [min, max] are used */
    uint16_t rtp_port_max;
    unsigned media_threads;          /* threads sending RTP */
    unsigned worker_threads;         /* decoding and speech off the main loop */
    unsigned max_prompt_seconds;     /* audio per prompt file; 0 = no limit */
    unsigned max_tts_bytes;          /* type 10 text per construct */
    char prompt_dir[PATH_MAX];
    char prompt_roots[PATH_MAX];     /* comma-separated absolute dirs; "" = none */
    char state_dir[PATH_MAX];
    char node_id[32];                /* area.station.instance */
    char default_from[128];          /* user part of From when from_uri is null */
    unsigned max_calls;              /* global concurrent calls */
    unsigned max_line;               /* bytes per JSON-RPC line */
    unsigned max_connections;
    unsigned max_connections_per_ip; /* per source address; 0 = no cap */
    unsigned handshake_timeout;      /* s to sys.auth (or a first request) */
    unsigned max_call_rate;          /* new calls per second; 0 = unlimited */
    unsigned max_output_bytes;       /* queued output per connection */
    unsigned dial_timeout;           /* s from INVITE to a final response */
    unsigned default_max_ring;       /* max_ring_seconds when not given */
    unsigned session_expires;        /* RFC 4028 Session-Expires, s; 0 off */
    unsigned min_se;                 /* RFC 4028 Min-SE, s */
    char log_level[16];
    char log_file[PATH_MAX];
    char cdr_file[PATH_MAX];         /* "" = no CDRs */
    char cdr_format[8];              /* "ctid" or "ipsc" (cdr.h) */
    char metrics_host[CONF_HOST_MAX]; /* metrics_listen; "" = off (default) */
    uint16_t metrics_port;
    uint64_t journal_max_bytes;      /* event journal: total size kept */
    unsigned journal_max_age;        /* event journal: seconds kept */
    unsigned request_key_ttl;        /* construct's request_key: seconds
                                        a key is remembered */
    unsigned shutdown_grace;         /* SIGTERM: seconds calls may finish */
    char auth_token[256];            /* "" = no sys.auth; required off loopback */
    bool allow_unlisted_gateways;    /* dial a to_uri host:port with no [gateway] */
    char redis[PATH_MAX];            /* events bus: HOST:PORT, unix:PATH; "" off */
    char redis_password[256];        /* AUTH; "" = none */
    char redis_prefix[64];           /* key prefix: PREFIX:events, ... */
    uint64_t redis_events_maxlen;    /* XADD MAXLEN ~ of PREFIX:events */
    bool redis_requests;             /* read the request streams (busreq) */
    unsigned redis_claim_idle;       /* s: a dead node's entries taken over */
    uint64_t redis_replies_maxlen;   /* XADD MAXLEN ~ of each reply_to */
    struct conf_gateway gateways[CONF_MAX_GATEWAYS];
    size_t n_gateways;
};

/* Where a configuration comes from: kept so SIGHUP can build it again. */
#define CONF_MAX_OVERRIDES 16
struct conf_source {
    char path[PATH_MAX];             /* config file; "" for none */
    struct {
        char key[32];
        char value[PATH_MAX];
    } set[CONF_MAX_OVERRIDES];       /* command-line overrides, in order */
    size_t n_set;
};

void conf_defaults(struct conf *c);
/* Defaults, then the file, then the overrides, then conf_validate.
 * Returns 0 or -1 with err (its message names the file or the flag). */
int conf_build(struct conf *c, const struct conf_source *src, char *err,
               size_t errlen);
/* SIGHUP: copies into cur what can change while calls run (the keys the
 * table marks reloadable: limits, shutdown_grace, log_level, auth_token,
 * allow_unlisted_gateways; and the gateways), logging each change; every
 * other key that differs is logged as needing a restart and keeps its
 * value. Returns the number of keys changed. */
unsigned conf_reload(struct conf *cur, const struct conf *next);
/* Splits a redis value: "unix:/PATH" (path in host, *is_unix) or
 * HOST:PORT / [V6]:PORT. Returns 0 or -1 when malformed. */
int conf_redis_parse(const char *value, char *host, size_t hostlen,
                     uint16_t *port, bool *is_unix);
/* Is host (a numeric address or "localhost") a loopback address? */
bool conf_is_loopback(const char *host);
/* Reads KEY = VALUE lines and [gateway NAME] sections. Returns 0, or -1
 * with "FILE:LINE: reason" in err. */
int conf_load_file(struct conf *c, const char *path, char *err, size_t errlen);
/* Sets one top-level key (the same names as the file and the long
 * command-line flags with '-' read as '_'). Returns 0 or -1 with err. */
int conf_set(struct conf *c, const char *key, const char *value, char *err,
             size_t errlen);
/* Cross-field checks after everything is loaded. */
int conf_validate(const struct conf *c, char *err, size_t errlen);
/* The address RTP binds to and SDP advertises. */
const char *conf_media_ip(const struct conf *c);
/* The address SDP announces (c= and o=): media_public_address, else
 * conf_media_ip. */
const char *conf_media_public(const struct conf *c);
/* The host Contact and Via carry: public_address, else sip's host. */
const char *conf_sip_public(const struct conf *c);
/* The configured gateway at host:port, or NULL (port: the effective one,
 * conf_gateway_port). */
const struct conf_gateway *conf_find_gateway(const struct conf *c,
                                             const char *host, uint16_t port);
/* Which gateway a to_uri entry names, or NULL: the gateway whose section
 * name is the host of an entry without a port ("13800000000@trunk1"),
 * else the one at the entry's host and port (an entry without a port
 * matches a gateway at its transport's default port: 5060, 5061 for
 * tls). The one answer the allow-list, the capacity pick and the INVITE
 * share. */
struct uri;
const struct conf_gateway *conf_route_gateway(const struct conf *c,
                                              const struct uri *to);
/* Does the entry name its gateway by section name (so it echoes as
 * "user@NAME")? */
bool conf_route_by_name(const struct conf *c, const struct uri *to);
/* The entry as the result, events and CDR echo it: as the client wrote
 * it when it names a gateway ("13800000000@trunk1"), else user@host:port
 * (uri_format). Returns snprintf's count. */
int conf_route_echo(const struct conf *c, const struct uri *to, char *buf,
                    size_t len);
/* The gateway's transport, and its port in effect (port, else 5060 or
 * 5061 for tls). */
enum conf_transport conf_gateway_tp(const struct conf_gateway *g);
/* Its transport's name: "udp", "tcp" or "tls". */
const char *conf_gateway_transport(const struct conf_gateway *g);
uint16_t conf_gateway_port(const struct conf_gateway *g);
/* The SIP domain of the trunk: domain, else host. */
const char *conf_gateway_domain(const struct conf_gateway *g);
/* Does any gateway use tls? */
bool conf_uses_tls(const struct conf *c);
/* Writes the effective configuration as a config file would say it. */
void conf_print(const struct conf *c, FILE *out);

/* One row of a key table (conf.c, conf_gateway.c), for tests and tools. */
struct conf_key_info {
    const char *name;
    const char *def;  /* the default, as the file would write it */
    bool reload;      /* SIGHUP applies it; otherwise it takes a restart */
    bool secret;      /* printed only as "(set)", never logged */
};
/* Row i of the top-level keys, or of a [gateway NAME] section's keys when
 * gateway is true, in --check-config order; false past the last row. */
bool conf_key_at(bool gateway, size_t i, struct conf_key_info *out);
/* A top-level key's default as the file would write it ("" for none), or
 * NULL for an unknown key. */
const char *conf_default(const char *key);

#endif
