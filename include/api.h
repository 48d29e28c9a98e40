/* api: the params of the contract's methods (§3, §7), checked and turned
 * into C values before anything is dialled. */
#ifndef CTID_API_H
#define CTID_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "keys.h"
#include "playlist.h"
#include "rpc.h"
#include "userdata.h"
#include "uri.h"

#define API_MAX_TO_URIS 16
#define API_RES_ID_MAX 96
#define API_REQUEST_KEY_MAX 128

/* construct's keys object (issue 14). Parsed, not yet acted on: nothing
 * in the daemon reads it so far. */
struct api_keys {
    struct keys_rules rules;  /* rules.then: a then list was given */
    bool inband;              /* default false */
    struct playlist then;     /* owned (api_construct_free); n == 0 when
                                 not given */
};

/* construct(from_uri, to_uri, play_content, play_repeat,
 *           max_ring_seconds, user_data), and by name only keys, progress,
 *           request_key (issue 14: keys and progress parsed, not yet
 *           acted on; request_key is methods.c's, reqkey.h) */
struct api_construct {
    bool from_given;          /* false: from_uri null or "", the line
                                 decides */
    bool from_anonymous;      /* "anonymous": anonymous From + Privacy: id */
    struct uri from;          /* when from_given && !from_anonymous; a bare
                                 number leaves host "" */
    struct uri to[API_MAX_TO_URIS];
    size_t n_to;
    struct playlist playlist;
    unsigned play_repeat;     /* default 1 */
    unsigned max_ring_seconds;/* default default_max_ring */
    char *user_data;          /* owned; compact JSON text; NULL for null */
    bool has_keys;            /* keys was an object; false: absent or null */
    struct api_keys keys;     /* when has_keys */
    bool progress;            /* default false */
    char request_key[API_REQUEST_KEY_MAX + 1]; /* "" when not given */
};

/* Returns 0 or -1 with err (-32602 naming the param). play_repeat and
 * max_ring_seconds may be numbers or strings of digits (jnum_int), as the
 * original's clients send them; so may keys.max and keys.wait_seconds. A
 * refusal inside keys names the field ("keys.max: ...") and carries param
 * "keys"; keys refuses fields it does not know. keys, progress and
 * request_key have no position: in array params they are absent. out is
 * freed with api_construct_free either way. */
int api_parse_construct(json_t *params, unsigned default_max_ring,
                        struct api_construct *out, struct rpc_error *err);
void api_construct_free(struct api_construct *c);


/* res_id = "<node_id>-ext.notify_call-<process_id>" */
void api_format_res_id(const char *node_id, uint64_t process_id, char *buf,
                       size_t len);
/* Reads param res_id (position 0). Returns 0 and *process_id (0 if the
 * string is well-typed but not one of this node's ids), or -1 with err
 * -32602 when missing or not a string. */
int api_parse_res_id(json_t *params, const char *node_id,
                     uint64_t *process_id, struct rpc_error *err);

#endif
