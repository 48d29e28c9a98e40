/* reqkey: construct's request_key table and its file (include/reqkey.h
 * says what it owns, the record format and what is synced when). */
#include "reqkey.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crcfile.h"
#include "crcline.h"
#include "log.h"
#include "rpc.h"

/* ---- the table -------------------------------------------------------- */

static uint64_t reqkey_hash(const char *key)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h;
}

void reqkey_init(struct reqkey *r, unsigned ttl, size_t max_keys)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->ttl = ttl;
    r->max_keys = max_keys;
    r->max_bytes = REQKEY_MAX_BYTES;
    r->compact_at = REQKEY_COMPACT_BYTES;
}

static size_t reqkey_text(const struct reqkey_entry *e)
{
    return strlen(e->key) + (e->result ? strlen(e->result) : 0);
}

static bool reqkey_full(const struct reqkey *r)
{
    return r->n >= r->max_keys || r->text_bytes >= r->max_bytes;
}

static struct reqkey_entry *reqkey_find(const struct reqkey *r,
                                        const char *key)
{
    if (r->n_buckets == 0)
        return NULL;
    struct reqkey_entry *e = r->buckets[reqkey_hash(key) & (r->n_buckets - 1)];
    while (e != NULL && strcmp(e->key, key) != 0)
        e = e->hnext;
    return e;
}

static void reqkey_age_unlink(struct reqkey *r, struct reqkey_entry *e)
{
    if (e->older)
        e->older->newer = e->newer;
    else
        r->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        r->newest = e->older;
    e->older = e->newer = NULL;
}

static void reqkey_age_append(struct reqkey *r, struct reqkey_entry *e)
{
    e->older = r->newest;
    e->newer = NULL;
    if (r->newest)
        r->newest->newer = e;
    else
        r->oldest = e;
    r->newest = e;
}

static void reqkey_remove(struct reqkey *r, struct reqkey_entry *e)
{
    struct reqkey_entry **pp =
        &r->buckets[reqkey_hash(e->key) & (r->n_buckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    reqkey_age_unlink(r, e);
    r->n--;
    r->text_bytes -= reqkey_text(e);
    free(e->key);
    free(e->result);
    free(e);
}

static int reqkey_grow(struct reqkey *r)
{
    size_t nb = r->n_buckets ? r->n_buckets * 2 : 64;
    struct reqkey_entry **b = calloc(nb, sizeof *b);
    if (b == NULL)
        return -1;
    for (size_t i = 0; i < r->n_buckets; i++)
        for (struct reqkey_entry *e = r->buckets[i], *next; e; e = next) {
            next = e->hnext;
            size_t h = reqkey_hash(e->key) & (nb - 1);
            e->hnext = b[h];
            b[h] = e;
        }
    free(r->buckets);
    r->buckets = b;
    r->n_buckets = nb;
    return 0;
}

static struct reqkey_entry *reqkey_insert(struct reqkey *r, const char *key,
                                          const char *digest, int64_t now)
{
    if (r->n >= r->n_buckets && reqkey_grow(r) < 0)
        return NULL;
    struct reqkey_entry *e = calloc(1, sizeof *e);
    if (e == NULL || (e->key = strdup(key)) == NULL) {
        free(e);
        return NULL;
    }
    snprintf(e->digest, sizeof e->digest, "%s", digest);
    e->created = now;
    size_t h = reqkey_hash(key) & (r->n_buckets - 1);
    e->hnext = r->buckets[h];
    r->buckets[h] = e;
    reqkey_age_append(r, e);
    r->n++;
    r->text_bytes += strlen(e->key);
    return e;
}

/* Drops stored keys whose ttl is over, oldest first. A pending key stops
 * the walk: it is still in use (and only as old as a prompt load). */
static void reqkey_expire(struct reqkey *r, int64_t now)
{
    while (r->oldest != NULL && r->oldest->result != NULL &&
           r->oldest->created + (int64_t)r->ttl <= now)
        reqkey_remove(r, r->oldest);
}

enum reqkey_found reqkey_lookup(struct reqkey *r, const char *key,
                                const char *digest, int64_t now,
                                const char **result)
{
    reqkey_expire(r, now);
    struct reqkey_entry *e = reqkey_find(r, key);
    if (e == NULL)
        return REQKEY_NEW;
    if (strcmp(e->digest, digest) != 0)
        return REQKEY_MISMATCH;
    if (e->result == NULL)
        return REQKEY_PENDING;
    *result = e->result;
    return REQKEY_DONE;
}

int reqkey_begin(struct reqkey *r, const char *key, const char *digest,
                 int64_t now)
{
    reqkey_expire(r, now);
    if (reqkey_full(r)) {
        errno = ENOSPC;
        return -1;
    }
    if (reqkey_insert(r, key, digest, now) == NULL) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

/* ---- records ------------------------------------------------------------ */

static json_t *reqkey_put_record(const struct reqkey_entry *e)
{
    json_t *res = json_loads(e->result, 0, NULL);
    if (res == NULL)
        return NULL;
    return json_pack("{s:s, s:s, s:s, s:I, s:o}", "op", "put", "key", e->key,
                     "digest", e->digest, "time", (json_int_t)e->created,
                     "result", res);
}


/* A key as construct accepts it: 1..128 bytes, no NUL. */
static const char *reqkey_valid_key(json_t *v)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (s == NULL || len == 0 || len > 128 || strlen(s) != len)
        return NULL;
    return s;
}

static bool reqkey_valid_digest(const char *d)
{
    if (d == NULL || strlen(d) != REQKEY_DIGEST_HEX)
        return false;
    for (const char *p = d; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* Applies one record. 0 applied, 1 invalid, -1 out of memory. */
static int reqkey_apply(struct reqkey *r, json_t *rec, int64_t now)
{
    const char *op = json_string_value(json_object_get(rec, "op"));
    const char *key = reqkey_valid_key(json_object_get(rec, "key"));
    if (op == NULL || key == NULL)
        return 1;
    struct reqkey_entry *old = reqkey_find(r, key);
    if (strcmp(op, "del") == 0) {
        if (old != NULL)
            reqkey_remove(r, old);
        return 0;
    }
    const char *digest = json_string_value(json_object_get(rec, "digest"));
    json_t *t = json_object_get(rec, "time");
    json_t *res = json_object_get(rec, "result");
    if (strcmp(op, "put") != 0 || !reqkey_valid_digest(digest) ||
        !json_is_integer(t) || json_integer_value(t) < 0 ||
        !json_is_object(res))
        return 1;
    if (old != NULL)
        reqkey_remove(r, old);
    int64_t created = json_integer_value(t);
    if (created + (int64_t)r->ttl <= now)
        return 0; /* expired */
    char *text = json_dumps(res, JSON_COMPACT);
    if (text == NULL)
        return -1;
    struct reqkey_entry *e = reqkey_insert(r, key, digest, created);
    if (e == NULL) {
        free(text);
        return -1;
    }
    e->result = text;
    r->text_bytes += strlen(text);
    e->written = true;
    /* Bounds lowered since the file was written: the oldest go. */
    while (r->n > r->max_keys || r->text_bytes > r->max_bytes) {
        log_warn("request_key: more keys on file than max_keys %zu or "
                 "max_bytes %zu; the oldest dropped", r->max_keys,
                 r->max_bytes);
        reqkey_remove(r, r->oldest);
    }
    return 0;
}

struct reqkey_loading {
    struct reqkey *r;
    int64_t now;
};

static int reqkey_apply_line(json_t *rec, void *arg)
{
    const struct reqkey_loading *l = arg;
    return reqkey_apply(l->r, rec, l->now);
}

int reqkey_load(struct reqkey *r, const char *buf, size_t len, int64_t now,
                unsigned *bad)
{
    struct reqkey_loading l = {r, now};
    if (crcline_each(buf, len, bad, reqkey_apply_line, &l) < 0)
        return -1;
    reqkey_expire(r, now); /* puts out of time order */
    return 0;
}

/* ---- the file ------------------------------------------------------------ */

static int reqkey_append(struct reqkey *r, json_t *rec)
{
    if (r->fd < 0) { /* in memory only */
        json_decref(rec);
        return 0;
    }
    return crcfile_append(r->fd, r->path, &r->bytes, rec);
}

int reqkey_commit(struct reqkey *r, const char *key, const char *result,
                  int64_t now)
{
    struct reqkey_entry *e = reqkey_find(r, key);
    if (e == NULL || e->result != NULL) {
        errno = EINVAL;
        return -1;
    }
    if ((e->result = strdup(result)) == NULL) {
        errno = ENOMEM;
        return -1;
    }
    r->text_bytes += strlen(result);
    e->created = now;
    reqkey_age_unlink(r, e);
    reqkey_age_append(r, e);
    if (reqkey_append(r, reqkey_put_record(e)) < 0) {
        int saved = errno;
        r->text_bytes -= strlen(e->result);
        free(e->result);
        e->result = NULL;
        errno = saved;
        return -1;
    }
    e->written = true;
    if (r->fd >= 0)
        r->unsynced = true;
    if (r->bytes >= r->compact_at && reqkey_compact(r) < 0)
        log_warn("%s: cannot compact: %s", r->path, strerror(errno));
    return 0;
}

void reqkey_abandon(struct reqkey *r, const char *key)
{
    struct reqkey_entry *e = reqkey_find(r, key);
    if (e == NULL)
        return;
    if (e->written &&
        reqkey_append(r, json_pack("{s:s, s:s}", "op", "del", "key", key)) < 0)
        log_warn("%s: cannot record that request_key %s placed no call: "
                 "%s", r->path, key, strerror(errno));
    reqkey_remove(r, e);
}

int reqkey_sync(struct reqkey *r)
{
    return crcfile_sync(r->fd, &r->unsynced);
}

int reqkey_compact(struct reqkey *r)
{
    struct crcfile_rewrite rw;
    if (crcfile_rewrite_begin(&rw, r->path) < 0)
        return -1;
    for (struct reqkey_entry *e = r->oldest; e != NULL && !rw.failed;
         e = e->newer)
        if (e->result != NULL) /* pending: its put comes later, if ever */
            crcfile_rewrite_add(&rw, reqkey_put_record(e));
    int nfd = crcfile_rewrite_commit(&rw, r->path);
    if (nfd < 0)
        return -1;
    if (r->fd >= 0)
        close(r->fd);
    r->fd = nfd;
    r->bytes = rw.bytes;
    r->compact_at = rw.bytes * 2 > REQKEY_COMPACT_BYTES ? rw.bytes * 2
                                                        : REQKEY_COMPACT_BYTES;
    r->unsynced = false; /* every put is in the synced new file */
    return 0;
}

static int reqkey_read_file(struct reqkey *r, int64_t now, unsigned *bad)
{
    int fd = open(r->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    struct stat st;
    char *buf = NULL;
    int rc = -1;
    if (fstat(fd, &st) == 0 && (uint64_t)st.st_size > REQKEY_MAX_FILE)
        errno = EFBIG;
    else if (fstat(fd, &st) == 0 &&
             (buf = malloc((size_t)st.st_size + 1)) != NULL) {
        size_t got = 0;
        ssize_t n = 1;
        while (got < (size_t)st.st_size &&
               (n = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
            got += (size_t)n;
        if (n >= 0)
            rc = reqkey_load(r, buf, got, now, bad);
    }
    int saved = errno;
    free(buf);
    close(fd);
    errno = saved;
    return rc;
}

int reqkey_open(struct reqkey *r, const char *state_dir, unsigned ttl,
                size_t max_keys, int64_t now, char *err, size_t errlen)
{
    reqkey_init(r, ttl, max_keys);
    snprintf(r->path, sizeof r->path, "%s/reqkeys.log", state_dir);
    unsigned bad = 0;
    if (reqkey_read_file(r, now, &bad) < 0) {
        snprintf(err, errlen, "%s: cannot read: %s", r->path,
                 strerror(errno));
        reqkey_close(r);
        return -1;
    }
    if (bad)
        log_warn("%s: %u damaged or torn record(s) skipped", r->path, bad);
    if (reqkey_compact(r) < 0) {
        snprintf(err, errlen, "%s: cannot rewrite: %s", r->path,
                 strerror(errno));
        reqkey_close(r);
        return -1;
    }
    if (r->n > 0)
        log_info("%s: %zu request_key(s) within request_key_ttl", r->path,
                 r->n);
    return 0;
}

void reqkey_close(struct reqkey *r)
{
    crcfile_close(&r->fd, &r->unsynced);
    while (r->oldest != NULL)
        reqkey_remove(r, r->oldest);
    free(r->buckets);
    r->buckets = NULL;
    r->n_buckets = 0;
}

/* ---- the digest ---------------------------------------------------------- */

int reqkey_digest(json_t *params, char hex[REQKEY_DIGEST_HEX + 1])
{
    static const char *const positional[] = {
        "from_uri", "to_uri", "play_content", "play_repeat",
        "max_ring_seconds", "user_data"};
    static const char *const named[] = {"keys", "progress"};
    json_t *canon = json_object();
    if (canon == NULL)
        return -1;
    /* rpc_param, as api_parse_construct reads them: a name with white
     * space around it ("user_data ") counts as the name, so two constructs
     * that parse differently never share a digest. */
    for (size_t i = 0; i < 6; i++) {
        json_t *v = rpc_param(params, positional[i], i);
        if (v != NULL && !json_is_null(v))
            json_object_set(canon, positional[i], v);
    }
    for (size_t i = 0; i < 2 && json_is_object(params); i++) {
        json_t *v = rpc_param(params, named[i], 0);
        if (v != NULL && !json_is_null(v))
            json_object_set(canon, named[i], v);
    }
    char *text = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(canon);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    int ok = text != NULL &&
             EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL);
    free(text);
    if (!ok || mdlen * 2 != REQKEY_DIGEST_HEX)
        return -1;
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}
