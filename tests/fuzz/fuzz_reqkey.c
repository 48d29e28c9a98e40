/* fuzz_reqkey: libFuzzer harness for the request_key file reader
 * (reqkey_load), what a restart reads to keep answering repeats. The
 * input is the file's content. Whatever loads must be sane (keys 1..128
 * bytes, 64 hex digest, a result that parses as a JSON object, within
 * max_keys, nothing expired) and must survive a round trip: compacted to
 * a file and read back with reqkey_open, the same keys, digests and
 * results come out. Aborts otherwise. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "reqkey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64]; /* one per process, reused */

#define NOW 100000
#define TTL 1000
#define MAX_KEYS 64

static void check_entry(const struct reqkey_entry *e)
{
    size_t n = strlen(e->key);
    if (n == 0 || n > 128 || strlen(e->digest) != REQKEY_DIGEST_HEX ||
        e->result == NULL || e->created + TTL <= NOW)
        abort();
    json_t *r = json_loads(e->result, 0, NULL);
    if (!json_is_object(r))
        abort();
    json_decref(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (dir[0] == '\0') {
        log_open(getenv("FUZZ_REQKEY_LOG") ? LOGL_DEBUG : LOGL_ERROR, NULL);
        snprintf(dir, sizeof dir, "%s/fuzz-reqkey-XXXXXX",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        if (mkdtemp(dir) == NULL)
            abort();
    }
    struct reqkey r;
    unsigned bad = 0;
    reqkey_init(&r, TTL, MAX_KEYS);
    if (reqkey_load(&r, (const char *)data, size, NOW, &bad) < 0) {
        reqkey_close(&r);
        return 0; /* out of memory */
    }
    if (r.n > MAX_KEYS)
        abort();
    size_t count = 0;
    for (const struct reqkey_entry *e = r.oldest; e != NULL; e = e->newer) {
        check_entry(e);
        const char *res = NULL;
        if (reqkey_lookup(&r, e->key, e->digest, NOW, &res) != REQKEY_DONE ||
            res != e->result)
            abort();
        count++;
    }
    if (count != r.n)
        abort();

    /* Round trip through the file. */
    char path[128];
    snprintf(path, sizeof path, "%s/reqkeys.log", dir);
    snprintf(r.path, sizeof r.path, "%s", path);
    if (reqkey_compact(&r) < 0)
        abort();
    struct reqkey back;
    char err[256];
    if (reqkey_open(&back, dir, TTL, MAX_KEYS, NOW, err, sizeof err) < 0)
        abort();
    if (back.n != r.n)
        abort();
    for (const struct reqkey_entry *e = r.oldest; e != NULL; e = e->newer) {
        const char *res = NULL;
        if (reqkey_lookup(&back, e->key, e->digest, NOW, &res) != REQKEY_DONE
            || strcmp(res, e->result) != 0)
            abort();
    }
    reqkey_close(&back);
    reqkey_close(&r);
    unlink(path);
    return 0;
}
