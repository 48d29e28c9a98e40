/* conf_gateway: the [gateway NAME] sections of the configuration file,
 * as conf.c's parser, --check-config and SIGHUP reload meet them: their
 * key table (conf_gateway_keys), starting a section and setting its keys,
 * the checks conf_validate makes of each section and across sections,
 * their --check-config lines and their part of a reload (the gateways
 * are replaced as a whole, one log line per change). The checks of the
 * carrier-trunk keys and their values in effect are conf_trunk.c's.
 * Private to conf.c and conf_gateway.c. Owns nothing: the gateways live
 * in the caller's struct conf. Main thread, or any one thread at a time. */
#ifndef CTID_CONF_GATEWAY_H
#define CTID_CONF_GATEWAY_H

#include <stddef.h>
#include <stdio.h>

#include "conf.h"
#include "conf_key.h"

/* A section's keys, in --check-config order. */
extern const struct conf_key conf_gateway_keys[];
extern const size_t conf_n_gateway_keys;

/* A "[SECTION]" header (the text between the brackets, trimmed): must be
 * "gateway NAME"; adds a gateway with every key at its default. -1 with
 * the reason in err. */
int conf_gateway_start(struct conf *c, const char *section, char *err,
                       size_t errlen);
/* One KEY = VALUE line inside a section; -1 with the reason in err. */
int conf_gateway_set(struct conf_gateway *g, const char *key,
                     const char *value, char *err, size_t errlen);
/* Each section complete (host; username and password together, and for
 * register) and no two with the same host:port; -1 with the reason. */
int conf_gateway_validate(const struct conf *c, char *err, size_t errlen);
/* Every section as --check-config prints it, each after a blank line. */
void conf_gateway_print(const struct conf *c, FILE *out);
/* SIGHUP: next's gateways replace cur's, each one added, removed or
 * changed key logged; returns how many changes there were. */
unsigned conf_gateway_reload(struct conf *cur, const struct conf *next);

#endif
