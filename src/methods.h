/* methods: the JSON-RPC method handlers (private to src/; methods.c).
 * Main thread. */
#ifndef CTID_METHODS_H
#define CTID_METHODS_H

#include "calls.h"
#include "conn.h"
#include "gateways.h"
#include "reqkey.h"

struct key_wait;

/* What the methods work on, none of it owned. */
struct methods {
    const struct conf *conf;   /* the server's; a reload changes it */
    struct calls *calls;
    struct conns *conns;
    struct metrics *metrics;
    const struct gateways *gateways; /* sys.gateways */
    struct reqkey *reqkeys;    /* construct's request_key (reqkey.h);
                                  NULL: request_key is ignored */
    /* Repeats of a request_key whose first construct is still being
     * placed (prompts loading): owned here, answered with its outcome. */
    struct key_wait *key_waits;
};

/* The request handler of struct conns (conn_request_fn); arg is a struct
 * methods. Runs the method and queues its reply on c. */
void methods_on_request(void *arg, struct conn *c, struct rpc_request *req);

#endif
