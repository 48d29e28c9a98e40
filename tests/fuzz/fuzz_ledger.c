/* fuzz_ledger: libFuzzer harness for the ledger reader (ledger_parse), the
 * file a restart after a crash reads to release the calls left open. The
 * input is the file's content. Whatever parses must be sane (non-zero,
 * unique, increasing process ids; every string terminated) and must
 * survive a round trip: written back with the rewrite functions and read
 * with ledger_open, the same calls come out. Aborts otherwise. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64]; /* one per process, reused */

#define TERMINATED(field) (memchr((field), '\0', sizeof(field)) != NULL)

static void check_call(const struct ledger_call *lc)
{
    if (lc->process_id == 0 || !TERMINATED(lc->res_id) ||
        !TERMINATED(lc->to_uri) || !TERMINATED(lc->uuid) ||
        !TERMINATED(lc->sip_call_id) || !TERMINATED(lc->caller) ||
        lc->begin_time < 0 || lc->answer_time < 0)
        abort();
    if (lc->has_dialog &&
        (!TERMINATED(lc->dialog.request_uri) ||
         !TERMINATED(lc->dialog.call_id) || !TERMINATED(lc->dialog.from) ||
         !TERMINATED(lc->dialog.to) || !TERMINATED(lc->dialog.route) ||
         !TERMINATED(lc->dialog.branch)))
        abort();
}

static bool same_call(const struct ledger_call *a, const struct ledger_call *b)
{
    bool ud = (a->user_data == NULL) == (b->user_data == NULL) &&
              (a->user_data == NULL || strcmp(a->user_data, b->user_data) == 0);
    bool d = a->has_dialog == b->has_dialog &&
             (!a->has_dialog ||
              (strcmp(a->dialog.request_uri, b->dialog.request_uri) == 0 &&
               strcmp(a->dialog.call_id, b->dialog.call_id) == 0 &&
               strcmp(a->dialog.from, b->dialog.from) == 0 &&
               strcmp(a->dialog.to, b->dialog.to) == 0 &&
               strcmp(a->dialog.route, b->dialog.route) == 0 &&
               strcmp(a->dialog.branch, b->dialog.branch) == 0 &&
               a->dialog.cseq == b->dialog.cseq &&
               a->dialog.established == b->dialog.established));
    return ud && d && a->process_id == b->process_id && a->seq == b->seq &&
           a->begin_time == b->begin_time &&
           a->answer_time == b->answer_time &&
           strcmp(a->res_id, b->res_id) == 0 &&
           strcmp(a->to_uri, b->to_uri) == 0 &&
           strcmp(a->uuid, b->uuid) == 0 &&
           strcmp(a->sip_call_id, b->sip_call_id) == 0 &&
           strcmp(a->caller, b->caller) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (dir[0] == '\0') {
        log_open(getenv("FUZZ_LEDGER_LOG") ? LOGL_DEBUG : LOGL_ERROR, NULL);
        snprintf(dir, sizeof dir, "%s/fuzz-ledger-XXXXXX",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        if (mkdtemp(dir) == NULL)
            abort();
    }
    struct ledger_call *calls = NULL;
    size_t n = 0;
    unsigned bad = 0;
    if (ledger_parse((const char *)data, size, &calls, &n, &bad) < 0)
        return 0; /* out of memory */
    for (size_t i = 0; i < n; i++) {
        check_call(&calls[i]);
        if (i > 0 && calls[i].process_id <= calls[i - 1].process_id)
            abort();
    }

    /* Round trip through the file. */
    struct ledger l;
    struct ledger_call *back = NULL;
    size_t n_back = 0;
    char err[256];
    char path[128];
    snprintf(path, sizeof path, "%s/calls.log", dir);
    unlink(path);
    if (ledger_open(&l, dir, &back, &n_back, err, sizeof err) < 0)
        abort();
    ledger_calls_free(back, n_back);
    struct ledger_rewrite rw;
    if (ledger_rewrite_begin(&l, &rw) < 0)
        abort();
    for (size_t i = 0; i < n; i++)
        ledger_rewrite_add(&rw, &calls[i]);
    if (ledger_rewrite_commit(&l, &rw) < 0)
        abort();
    ledger_close(&l);
    if (ledger_open(&l, dir, &back, &n_back, err, sizeof err) < 0)
        abort();
    ledger_close(&l);
    if (n_back != n)
        abort();
    for (size_t i = 0; i < n; i++)
        if (!same_call(&calls[i], &back[i]))
            abort();
    ledger_calls_free(back, n_back);
    ledger_calls_free(calls, n);
    return 0;
}
