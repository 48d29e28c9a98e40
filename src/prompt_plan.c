/* prompt_plan: what a play list needs, and loading it off the main loop.
 * Owns the walk from play list items to clip sources (files, type 7 lists,
 * the prompt pack names of spoken types 1-6, type 10 texts) and the plan
 * that results: prompt_plan_make (main thread: path checks, cache hits),
 * prompt_plan_load (any thread, typically a worker: decoding and speech
 * for what the cache lacked), prompt_plan_finish (main thread: the cache
 * adopts the new clips). A plan is owned by whoever holds it; only
 * prompt_plan_load may run off the main thread, and it touches nothing but
 * the plan. */
#include "prompt.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clip.h"
#include "speech.h"
#include "tts.h"

/* What one clip of a play list comes from: a file relative to the prompt
 * directory, or (text set) a type 10 text in lang. item is the index in
 * the list, for errors. */
struct prompt_src {
    const char *name;
    const char *text;
    enum speech_lang lang;
    size_t item;
};

/* Calls fn for each clip's source of the list, in play order; stops at the
 * first non-zero return. Names of a type 7 item are copied out of the
 * '|'-joined string into a buffer; a spoken item names its pack's files. */
typedef int (*prompt_src_fn)(void *arg, const struct prompt_src *src,
                             struct rpc_error *err);

/* playlist_parse accepted the item, so the option and text checks here
 * fail only if the two disagree; say which item anyway. */
static int prompt_item_fail(size_t i, struct rpc_error *err)
{
    struct rpc_error why = *err;

    return rpc_fail(err, RPC_INVALID_PARAMS, "play_content: item %zu: %s", i,
                    why.message);
}

static int prompt_each_spoken(const struct play_item *it, size_t i,
                              prompt_src_fn fn, void *arg,
                              struct rpc_error *err)
{
    struct prompt_src src = {NULL, NULL, SPEECH_ZH, i};
    struct speech_opts opts;
    struct speech sp;
    char name[64];

    if (speech_read_options(it->options, &opts, err) < 0)
        return prompt_item_fail(i, err);
    src.lang = opts.lang;
    if (it->type == PLAY_TTS) {
        src.text = it->content;
        return fn(arg, &src, err);
    }
    if (speech_say_opts(it->type, it->content, &opts, &sp, err) < 0)
        return prompt_item_fail(i, err);
    src.name = name;
    for (size_t k = 0; k < sp.n; k++) {
        snprintf(name, sizeof name, "%s/%s.wav", speech_lang_dir(src.lang),
                 sp.names[k]);
        if (fn(arg, &src, err) < 0)
            return -1;
    }
    return 0;
}

static int prompt_each_src(const struct playlist *pl, prompt_src_fn fn,
                           void *arg, struct rpc_error *err)
{
    char name[PATH_MAX];

    for (size_t i = 0; i < pl->n; i++) {
        const struct play_item *it = &pl->items[i];
        struct prompt_src src = {name, NULL, SPEECH_ZH, i};
        const char *p = it->content;

        if (it->type == PLAY_FILE) {
            src.name = p;
            if (fn(arg, &src, err) < 0)
                return -1;
            continue;
        }
        if (speech_is_spoken(it->type) || it->type == PLAY_TTS) {
            if (prompt_each_spoken(it, i, fn, arg, err) < 0)
                return -1;
            continue;
        }
        if (it->type != PLAY_FILES)
            return rpc_fail(err, RPC_INVALID_PARAMS,
                            "play_content: item %zu: type %d is not playable",
                            i, it->type);
        for (;;) {
            size_t len = strcspn(p, "|");

            if (len >= sizeof name)
                return rpc_fail(err, RPC_INVALID_PARAMS,
                                "play_content: item %zu: file name too long",
                                i);
            memcpy(name, p, len);
            name[len] = '\0';
            if (fn(arg, &src, err) < 0)
                return -1;
            if (p[len] == '\0')
                break;
            p += len + 1;
        }
    }
    return 0;
}

/* ---- making a plan (main thread) ---------------------------------------- */

static int plan_fail_item(size_t item, struct rpc_error *err)
{
    struct rpc_error why = *err;

    return rpc_fail(err, why.code, "play_content: item %zu: %s", item,
                    why.message);
}

struct plan_maker {
    struct prompt_cache *pc;
    struct prompt_plan *plan;
    size_t cap;
};

static int plan_add_one(void *arg, const struct prompt_src *src,
                        struct rpc_error *err)
{
    struct plan_maker *mk = arg;
    struct prompt_plan *pl = mk->plan;
    struct prompt_need *nd;
    char real[PATH_MAX];
    struct stat st;

    if (pl->n >= PROMPT_MAX_CLIPS)
        return rpc_fail(err, RPC_INVALID_PARAMS,
                        "play_content: more than %d prompts (files and "
                        "spoken words) in one play list",
                        PROMPT_MAX_CLIPS);
    if (pl->n == mk->cap) {
        size_t cap = mk->cap ? mk->cap * 2 : 8;
        struct prompt_need *n = realloc(pl->needs, cap * sizeof *n);

        if (!n)
            return rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory");
        pl->needs = n;
        mk->cap = cap;
    }
    nd = &pl->needs[pl->n];
    memset(nd, 0, sizeof *nd);
    nd->item = src->item;
    nd->lang = src->lang;
    if (src->text) {
        if (tts_text_check(src->text, strlen(src->text), err) < 0)
            return plan_fail_item(src->item, err);
        nd->key = prompt_tts_key(src->lang, src->text);
        nd->text = strdup(src->text);
    } else {
        if (prompt_resolve(mk->pc, src->name, real, &st, err) < 0)
            return -1;
        nd->key = strdup(real);
        nd->name = strdup(src->name);
        nd->mtime = st.st_mtim;
        nd->size = st.st_size;
    }
    pl->n++; /* from here plan_free frees what it holds */
    if (!nd->key || (!nd->text && !nd->name))
        return rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory");
    nd->clip = prompt_cache_lookup(mk->pc, nd->key, src->text ? NULL : &st);
    if (nd->clip)
        return 0;
    /* A header that claims hours is refused now, not after the wait. */
    if (!src->text && clip_check_length(real, src->name, src->item,
                                        pl->max_seconds, err) < 0)
        return -1;
    pl->missing++;
    return 0;
}

int prompt_plan_make(struct prompt_cache *pc, const struct playlist *pl,
                     struct prompt_plan *plan, struct rpc_error *err)
{
    struct plan_maker mk = {pc, plan, 0};

    memset(plan, 0, sizeof *plan);
    plan->max_seconds = prompt_cache_max_seconds(pc);
    if (prompt_each_src(pl, plan_add_one, &mk, err) < 0) {
        prompt_plan_free(plan);
        return -1;
    }
    if (plan->n == 0)
        return rpc_fail(err, RPC_INVALID_PARAMS, "play_content: empty");
    return 0;
}

/* ---- loading (any thread) ------------------------------------------------ */

/* A clip this same load made already for key (one text said twice), or
 * NULL. Clips from the cache are not shared from here: their reference
 * counts are the main thread's. */
static struct prompt_clip *plan_made(struct prompt_plan *plan, size_t upto,
                                     const char *key)
{
    for (size_t i = 0; i < upto; i++)
        if (plan->needs[i].loaded && strcmp(plan->needs[i].key, key) == 0)
            return plan->needs[i].clip;
    return NULL;
}

int prompt_plan_load(struct prompt_plan *plan, const atomic_bool *cancel,
                     struct rpc_error *err)
{
    for (size_t i = 0; i < plan->n; i++) {
        struct prompt_need *nd = &plan->needs[i];

        if (nd->clip)
            continue;
        if (cancel && atomic_load(cancel))
            return rpc_fail(err, RPC_UNAVAILABLE, "cancelled");
        nd->clip = plan_made(plan, i, nd->key);
        if (nd->clip) {
            prompt_clip_ref(nd->clip);
        } else if (nd->text) {
            nd->clip = clip_from_text(nd->key, nd->lang, nd->text, err);
            if (!nd->clip)
                return plan_fail_item(nd->item, err);
        } else {
            nd->clip = clip_from_file(nd->key, nd->name, nd->item,
                                      plan->max_seconds, err);
            if (!nd->clip) {
                plan->failed = nd->key;
                return -1;
            }
            nd->clip->mtime = nd->mtime;
            nd->clip->size = nd->size;
        }
        nd->loaded = true;
    }
    return 0;
}

/* ---- finishing (main thread) --------------------------------------------- */

int prompt_plan_finish(struct prompt_cache *pc, struct prompt_plan *plan,
                       struct prompt_clip ***clips, size_t *n,
                       struct rpc_error *err)
{
    *clips = NULL;
    *n = 0;
    for (size_t i = 0; i < plan->n; i++) {
        struct prompt_need *nd = &plan->needs[i];

        if (!nd->loaded)
            continue;
        nd->loaded = false;
        nd->clip = prompt_cache_adopt(pc, nd->clip, err);
        if (!nd->clip)
            return -1;
    }
    *clips = malloc(plan->n * sizeof **clips);
    if (!*clips)
        return rpc_fail(err, RPC_INTERNAL_ERROR, "out of memory");
    for (size_t i = 0; i < plan->n; i++) {
        (*clips)[i] = plan->needs[i].clip;
        plan->needs[i].clip = NULL;
    }
    *n = plan->n;
    return 0;
}

int prompt_plan_append_then(struct prompt_plan *plan,
                            struct prompt_plan *more)
{
    struct prompt_need *needs =
        realloc(plan->needs, (plan->n + more->n) * sizeof *needs);
    if (needs == NULL)
        return -1;
    memcpy(needs + plan->n, more->needs, more->n * sizeof *needs);
    plan->needs = needs;
    plan->n += more->n;
    plan->n_then += more->n;
    plan->missing += more->missing;
    free(more->needs);
    memset(more, 0, sizeof *more);
    return 0;
}

void prompt_plan_forget_failed(struct prompt_cache *pc,
                               const struct prompt_plan *plan)
{
    if (plan->failed)
        prompt_cache_forget(pc, plan->failed); /* its cached audio is stale */
}

void prompt_plan_free(struct prompt_plan *plan)
{
    for (size_t i = 0; i < plan->n; i++) {
        prompt_clip_unref(plan->needs[i].clip);
        free(plan->needs[i].key);
        free(plan->needs[i].name);
        free(plan->needs[i].text);
    }
    free(plan->needs);
    memset(plan, 0, sizeof *plan);
}

int prompt_load_playlist(struct prompt_cache *pc, const struct playlist *pl,
                         struct prompt_clip ***clips, size_t *n,
                         struct rpc_error *err)
{
    struct prompt_plan plan;
    int rc;

    *clips = NULL;
    *n = 0;
    if (prompt_plan_make(pc, pl, &plan, err) < 0)
        return -1;
    rc = prompt_plan_load(&plan, NULL, err);
    if (rc < 0)
        prompt_plan_forget_failed(pc, &plan);
    else
        rc = prompt_plan_finish(pc, &plan, clips, n, err);
    prompt_plan_free(&plan);
    return rc;
}
