/* api: the params of the contract's methods (§3, §7), checked and turned
 * into C values before anything is dialled. */
#ifndef CTID_API_H
#define CTID_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "playlist.h"
#include "rpc.h"
#include "userdata.h"
#include "uri.h"

#define API_MAX_TO_URIS 16
#define API_RES_ID_MAX 96

/* construct(from_uri, to_uri, play_content, play_repeat,
 *           max_ring_seconds, user_data) */
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
};

/* Returns 0 or -1 with err (-32602 naming the param). play_repeat and
 * max_ring_seconds may be numbers or strings of digits (jnum_int), as the
 * original's clients send them. out is freed with api_construct_free
 * either way. */
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
