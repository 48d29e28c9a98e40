/* Unit tests for work (the worker pool) and prompt_plan (a play list's
 * clips loaded off the main thread): every job's done runs exactly once on
 * the loop's thread, run on a worker; freeing the pool with jobs queued or
 * running neither hangs nor loses a done; a plan loaded on another thread
 * is adopted by the cache, two plans for one new file end up sharing one
 * clip, and a file whose header is over max_prompt_seconds is refused
 * before any decoding. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <limits.h>
#include <pthread.h>
#include <sndfile.h>
#include <unistd.h>

#include "playlist.h"
#include "prompt.h"
#include "work.h"
#include "testutil.h"

/* ---- the pool ------------------------------------------------------------ */

struct test_job {
    struct work_job job; /* first */
    pthread_t ran_on, done_on;
    int dones;
    atomic_bool *hold;   /* run spins while this is true (and not cancelled) */
    unsigned *left;      /* jobs not yet done */
    struct event_base *base;
};

static void tj_run(struct work_job *job)
{
    struct test_job *j = (struct test_job *)job;

    j->ran_on = pthread_self();
    while (j->hold && atomic_load(j->hold) && !atomic_load(&job->cancelled))
        usleep(1000);
}

static void tj_done(struct work_job *job)
{
    struct test_job *j = (struct test_job *)job;

    j->done_on = pthread_self();
    j->dones++;
    if (--*j->left == 0 && j->base)
        event_base_loopbreak(j->base);
}

static void test_jobs_run_on_workers_done_on_loop(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct work_pool *p = work_pool_new(base, 2);
    struct test_job jobs[20];
    unsigned left = 20;

    assert_non_null(p);
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < 20; i++) {
        jobs[i].job.run = tj_run;
        jobs[i].job.done = tj_done;
        jobs[i].left = &left;
        jobs[i].base = base;
        work_submit(p, &jobs[i].job);
    }
    assert_int_equal(work_pending(p), 20);
    event_base_dispatch(base);
    assert_int_equal(left, 0);
    assert_int_equal(work_pending(p), 0);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(jobs[i].dones, 1);
        assert_true(jobs[i].job.ran);
        assert_false(pthread_equal(jobs[i].ran_on, pthread_self()));
        assert_true(pthread_equal(jobs[i].done_on, pthread_self()));
    }
    work_pool_free(p);
    event_base_free(base);
}

/* One worker busy with a job that waits for cancellation, two queued
 * behind it: freeing the pool cancels the queued ones (done, never run)
 * and joins the worker once its job notices the cancel. */
static void test_free_with_jobs_in_flight(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct work_pool *p = work_pool_new(base, 1);
    struct test_job jobs[3];
    atomic_bool hold = true;
    unsigned left = 3;

    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < 3; i++) {
        jobs[i].job.run = tj_run;
        jobs[i].job.done = tj_done;
        jobs[i].left = &left;
        jobs[i].hold = &hold;
        work_submit(p, &jobs[i].job);
    }
    /* Let the worker take the first job. */
    for (int i = 0; i < 2000 && !jobs[0].ran_on; i++)
        usleep(1000);
    /* The owner cancels what it started (as call_cancel_starts does). */
    atomic_store(&jobs[0].job.cancelled, true);
    work_pool_free(p);
    assert_int_equal(left, 0);
    assert_true(jobs[0].job.ran);
    for (int i = 0; i < 3; i++)
        assert_int_equal(jobs[i].dones, 1);
    assert_false(jobs[1].job.ran);
    assert_false(jobs[2].job.ran);
    assert_true(atomic_load(&jobs[1].job.cancelled));
    event_base_free(base);
}

/* ---- prompt plans ---------------------------------------------------------- */

struct fixture {
    char dir[TU_DIR_MAX];
    struct prompt_cache *pc;
};

static void write_wav(const char *dir, const char *name, int rate,
                      size_t frames)
{
    char path[PATH_MAX];
    SF_INFO info = {.samplerate = rate, .channels = 1,
                    .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
    int16_t *buf = calloc(frames, sizeof *buf);
    SNDFILE *sf;

    tu_path(path, sizeof path, dir, name);
    sf = sf_open(path, SFM_WRITE, &info);
    assert_non_null(sf);
    for (size_t i = 0; i < frames; i++)
        buf[i] = (int16_t)(i * 37);
    sf_writef_short(sf, buf, (sf_count_t)frames);
    sf_close(sf);
    free(buf);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);

    assert_int_equal(tu_mkdtemp(fx->dir, sizeof fx->dir, "test-work"), 0);
    write_wav(fx->dir, "a.wav", 8000, 8000);   /* 1 s */
    write_wav(fx->dir, "b.wav", 16000, 4000);  /* 0.25 s, resampled */
    write_wav(fx->dir, "long.wav", 8000, 24000); /* 3 s */
    fx->pc = prompt_cache_new(fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    prompt_cache_free(fx->pc);
    assert_int_equal(tu_rmtree(fx->dir), 0);
    free(fx);
    return 0;
}

static void set_item(struct playlist *pl, int type, const char *content)
{
    pl->items[pl->n].type = type;
    pl->items[pl->n].content = strdup(content);
    pl->items[pl->n].options = strdup("");
    pl->n++;
}

static void *load_thread(void *arg)
{
    struct rpc_error err;

    return (void *)(intptr_t)prompt_plan_load(arg, NULL, &err);
}

static void test_plan_loaded_elsewhere_is_adopted(void **state)
{
    struct fixture *fx = *state;
    struct playlist pl = {0};
    struct prompt_plan p1, p2;
    struct prompt_clip **c1, **c2, *again;
    struct rpc_error err;
    pthread_t th1, th2;
    void *rc1, *rc2;
    size_t n1, n2;

    set_item(&pl, PLAY_FILE, "a.wav");
    set_item(&pl, PLAY_FILES, "b.wav|a.wav");
    /* Two constructs for the same new files at once. */
    assert_int_equal(prompt_plan_make(fx->pc, &pl, &p1, &err), 0);
    assert_int_equal(prompt_plan_make(fx->pc, &pl, &p2, &err), 0);
    assert_int_equal(p1.n, 3);
    assert_int_equal(p1.missing, 3);
    assert_int_equal(p2.missing, 3);
    assert_int_equal(pthread_create(&th1, NULL, load_thread, &p1), 0);
    assert_int_equal(pthread_create(&th2, NULL, load_thread, &p2), 0);
    pthread_join(th1, &rc1);
    pthread_join(th2, &rc2);
    assert_int_equal((intptr_t)rc1, 0);
    assert_int_equal((intptr_t)rc2, 0);
    /* One load shares a file said twice. */
    assert_ptr_equal(p1.needs[0].clip, p1.needs[2].clip);
    assert_int_equal(prompt_plan_finish(fx->pc, &p1, &c1, &n1, &err), 0);
    assert_int_equal(prompt_plan_finish(fx->pc, &p2, &c2, &n2, &err), 0);
    prompt_plan_free(&p1);
    prompt_plan_free(&p2);
    assert_int_equal(n1, 3);
    assert_int_equal(n2, 3);
    /* The second load's copies were dropped for the first's. */
    for (size_t i = 0; i < 3; i++)
        assert_ptr_equal(c1[i], c2[i]);
    assert_ptr_equal(c1[0], c1[2]);
    assert_int_equal(c1[0]->n_frames, 50);
    assert_int_equal(c1[1]->n_frames, 13); /* 2000 samples at 8 kHz */
    /* cache + two in each list */
    assert_int_equal(c1[0]->refs, 5);
    assert_int_equal(c1[1]->refs, 3);
    /* The cache has them now: a new plan needs no work. */
    assert_int_equal(prompt_cache_get(fx->pc, "a.wav", &again, &err), 0);
    assert_ptr_equal(again, c1[0]);
    prompt_clip_unref(again);
    assert_int_equal(prompt_plan_make(fx->pc, &pl, &p1, &err), 0);
    assert_int_equal(p1.missing, 0);
    prompt_plan_free(&p1);
    prompt_clips_release(c1, n1);
    prompt_clips_release(c2, n2);
    playlist_free(&pl);
}

static void test_plan_refuses_long_file_from_header(void **state)
{
    struct fixture *fx = *state;
    struct playlist pl = {0};
    struct prompt_plan plan;
    struct rpc_error err;

    set_item(&pl, PLAY_FILE, "a.wav");
    set_item(&pl, PLAY_FILE, "long.wav");
    prompt_cache_set_max_seconds(fx->pc, 2);
    assert_int_equal(prompt_plan_make(fx->pc, &pl, &plan, &err), -1);
    assert_int_equal(err.code, RPC_INVALID_PARAMS);
    assert_string_equal(err.message, "play_content[1]: long.wav is 3 s long, "
                                     "over max_prompt_seconds 2");
    assert_null(plan.needs);
    /* 0 is no limit */
    prompt_cache_set_max_seconds(fx->pc, 0);
    assert_int_equal(prompt_plan_make(fx->pc, &pl, &plan, &err), 0);
    assert_int_equal(plan.missing, 2);
    prompt_plan_free(&plan);
    playlist_free(&pl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jobs_run_on_workers_done_on_loop),
        cmocka_unit_test(test_free_with_jobs_in_flight),
        cmocka_unit_test_setup_teardown(test_plan_loaded_elsewhere_is_adopted,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_plan_refuses_long_file_from_header, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
