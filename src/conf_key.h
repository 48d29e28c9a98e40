/* conf_key: the shape of one row of the configuration key table (the
 * tables themselves: conf_keys in conf.c, conf_gateway_keys in
 * conf_gateway.c) and the value types it names: reading a value from its
 * text, printing it as --check-config does, comparing and copying it for
 * SIGHUP; and the walks over a whole table. Private to conf.c,
 * conf_key.c, conf_gateway.c and conf_trunk.c. A row is static const
 * data; base is the struct conf or struct conf_gateway the row's offsets
 * point into, owned by the caller. Main thread, or any one thread at a
 * time. */
#ifndef CTID_CONF_KEY_H
#define CTID_CONF_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum conf_type {
    CONF_UINT,     /* unsigned in [min, max] */
    CONF_U64,      /* uint64_t in [min, max] */
    CONF_PORT,     /* uint16_t in [min, max] */
    CONF_BOOL,     /* bool: yes or no */
    CONF_STR,      /* char[size]; check, if any, runs before the copy */
    CONF_HOSTPORT, /* HOST:PORT or [V6]:PORT: char[size] at off, uint16_t
                      at off2 */
    CONF_PORTS,    /* LO-HI within [min, max], at least two ports: uint16_t
                      at off and off2 */
};

enum {
    CONF_RELOAD = 1 << 0,     /* SIGHUP applies it; else a change is logged
                                 as needing a restart */
    CONF_SECRET = 1 << 1,     /* CONF_STR never printed nor logged: "(set)" */
    CONF_OPTIONAL = 1 << 2,   /* CONF_HOSTPORT: empty means off, prints empty */
    CONF_OMIT_EMPTY = 1 << 3, /* CONF_STR printed only when set */
    CONF_RAW_HOST = 1 << 4,   /* CONF_HOSTPORT printed HOST:PORT even for an
                                 IPv6 host, as --check-config always has */
};

struct conf_key {
    const char *name;
    enum conf_type type;
    size_t off, size;        /* the field (the host of a CONF_HOSTPORT) */
    size_t off2;             /* the port, or the high end of CONF_PORTS */
    unsigned long min, max;  /* numbers */
    const char *def;
    unsigned flags;
    /* Refuses a value the type alone would take; err names the key. */
    int (*check)(const char *key, const char *value, char *err, size_t errlen);
    /* Prints in place of the field (media_ip: the effective address). */
    const char *(*shown)(const void *base);
};

/* Writing a row: KEY("name", CONF_UINT), AT(struct conf, field), ... */
#define KEY(n, t) .name = n, .type = t
#define AT(s, f) .off = offsetof(s, f), .size = sizeof(((s *)0)->f)
#define RANGE(lo, hi) .min = (lo), .max = (hi)

/* Top-level keys' checks (conf_key.c). */
int conf_check_node_id(const char *key, const char *value, char *err,
                       size_t errlen);
int conf_check_cdr_format(const char *key, const char *value, char *err,
                          size_t errlen);
int conf_check_redis(const char *key, const char *value, char *err,
                     size_t errlen);
int conf_check_redis_prefix(const char *key, const char *value, char *err,
                            size_t errlen);

/* conf_trunk.c: the checks of the carrier-trunk keys (a row's check),
 * and the cross-field checks conf_validate adds for them. */
int conf_check_transport(const char *key, const char *value, char *err,
                         size_t errlen);
int conf_check_host(const char *key, const char *value, char *err,
                    size_t errlen);
int conf_check_ip(const char *key, const char *value, char *err,
                  size_t errlen);
int conf_check_proxy(const char *key, const char *value, char *err,
                     size_t errlen);
int conf_check_caller_id(const char *key, const char *value, char *err,
                         size_t errlen);
int conf_check_headers(const char *key, const char *value, char *err,
                       size_t errlen);
int conf_check_ca_file(const char *key, const char *value, char *err,
                       size_t errlen);
struct conf;
int conf_validate_trunks(const struct conf *c, char *err, size_t errlen);

/* Writes the formatted reason into err; returns -1. */
int conf_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets the key's field in base from text; -1 with "KEY: reason" in err. */
int conf_key_set(const struct conf_key *k, void *base, const char *value,
                 char *err, size_t errlen);
/* The key's value as --check-config prints it (a secret as "(set)"). */
void conf_key_format(const struct conf_key *k, const void *base, char *buf,
                     size_t len);
/* Do a and b hold the same value for the key? */
bool conf_key_same(const struct conf_key *k, const void *a, const void *b);
/* Copies the key's value from src into dst. */
void conf_key_copy(const struct conf_key *k, void *dst, const void *src);

/* The n rows of a table (keys) at once. The row named name, or NULL. */
const struct conf_key *conf_keys_find(const struct conf_key *keys, size_t n,
                                      const char *name);
/* Every row's default into base. */
void conf_keys_default(const struct conf_key *keys, size_t n, void *base);
/* "name = value" lines, as --check-config prints them. */
void conf_keys_print(const struct conf_key *keys, size_t n, const void *base,
                     FILE *out);

#endif
