/* fuzz_rpc: libFuzzer harness for the JSON-RPC wire format and param
 * validation. The input is a byte stream from a client: it is fed to
 * rpc_framer_feed in chunks whose sizes are taken from the input itself,
 * so every split of a line across reads is explored, and every complete
 * line goes to rpc_parse_request. Each parsed request's params go through
 * api_parse_construct (URIs, play_content, integers, user_data) and
 * api_parse_res_id, and a reply or error line is serialised, so the
 * whole path from bytes to checked C values is covered. Everything is
 * freed: LeakSanitizer reports what is not. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small enough that the fuzzer reaches the oversize path easily. */
#define FUZZ_MAX_LINE 4096

static void fuzz_check_line(const char *line, size_t len)
{
    /* The framer's contract (rpc.h): NUL-terminated, no '\n', never blank.
     * Only one trailing '\r' is removed, so "a\r\r\n" leaves one: that is
     * by design (test_framer_only_one_cr_stripped). A violation is a bug. */
    if (len == 0 || line[len] != '\0' || memchr(line, '\n', len) != NULL
        || strspn(line, " \t\r\f\v") == len)
        abort();
}

static void fuzz_on_line(void *arg, char *line, size_t len)
{
    (void)arg;
    fuzz_check_line(line, len);

    struct rpc_request req;
    struct rpc_error err;
    json_t *id = NULL;
    size_t n;
    if (rpc_parse_request(line, len, &req, &id, &err) < 0) {
        free(rpc_error_line(id, &err, "0.0.0", &n));
        json_decref(id);
        return;
    }

    struct api_construct c;
    if (api_parse_construct(req.params, 60, &c, &err) < 0)
        free(rpc_error_line(req.id, &err, "0.0.0", &n));
    else
        free(rpc_result_line(req.id, json_string("ok"), &n));
    api_construct_free(&c);

    uint64_t process_id;
    if (api_parse_res_id(req.params, "0.0.0", &process_id, &err) < 0)
        free(rpc_error_line(req.id, &err, "0.0.0", &n));
    rpc_request_free(&req);
}

static void fuzz_on_oversize(void *arg)
{
    (void)arg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rpc_framer f;
    rpc_framer_init(&f, FUZZ_MAX_LINE);

    /* Chunk sizes come from a hash of the input, so they are a function
     * of it (reproducible) without taking bytes away from its content. */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;

    const char *p = (const char *)data;
    size_t left = size;
    while (left > 0) {
        h = h * 1103515245u + 12345u;
        size_t chunk = 1 + (h >> 16) % 64;
        if ((h & 7) == 0)
            chunk = left;  /* sometimes all the rest at once */
        if (chunk > left)
            chunk = left;
        if (rpc_framer_feed(&f, p, chunk, fuzz_on_line, fuzz_on_oversize,
                            NULL) < 0)
            break;
        p += chunk;
        left -= chunk;
    }
    rpc_framer_free(&f);
    return 0;
}
