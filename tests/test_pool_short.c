/* The short forms of map and imap (ranges, arrays, typed functions) and
 * the process executor's terminate_workers / kill_workers, under every
 * start method; bad arguments get MPROC_EINVAL, never a crash. */
#include "testutil.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

static const mproc_context *ctx_of(int i)
{
    const mproc_context *c = NULL;
    TU_OK(mproc_get_context(mproc_start_method_name(tu_methods[i]), &c));
    return c;
}

static mproc_pool *new_pool(int i, int n)
{
    mproc_pool *p;
    TU_OK(mproc_pool_new(&p, &(mproc_pool_opts){.processes = n, .context = ctx_of(i)}));
    return p;
}

static void end_pool(mproc_pool *p)
{
    TU_OK(mproc_pool_close(p));
    TU_OK(mproc_pool_join(p, 30000));
    mproc_pool_free(p);
}

/* ---- map functions -------------------------------------------------------- */

static int64_t cube(int64_t x)
{
    return x * x * x;
}

static int64_t same(int64_t x)
{
    return x;
}

static double half(int64_t x)
{
    return (double)x / 2;
}

static int64_t floor_of(double x)
{
    return (int64_t)x - (x < 0 && (double)(int64_t)x != x);
}

static double twice(double x)
{
    return 2 * x;
}

/* Fails on 7: a typed function fails through mproc_task_fail. */
static int64_t no_seven(int64_t x)
{
    if (x == 7) return mproc_task_fail("seven is not allowed"), -1;
    return x + 100;
}

/* The bytes form over a range: the item arrives as an int64_t. */
static int square_bytes(const void *in, void *out)
{
    int64_t x;
    memcpy(&x, in, sizeof x);
    int32_t y = (int32_t)(x * x);
    memcpy(out, &y, sizeof y);
    return 0;
}

typedef struct pair {
    int32_t a, b;
} pair;

static int add_pair(const void *in, void *out)
{
    const pair *p = in;
    *(int64_t *)out = (int64_t)p->a + p->b;
    return 0;
}

/* ---- map over ranges -------------------------------------------------------- */

START_TEST(map_range_typed)
{
    mproc_pool *p = new_pool(_i, 2);
    /* Python: pool.map(cube, range(10)) */
    int64_t out[10];
    TU_OK(MPROC_POOL_MAP_RANGE(p, cube, MPROC_RANGE(10), out));
    for (int64_t i = 0; i < 10; i++) ck_assert_int_eq(out[i], i * i * i);
    /* range(2, 20, 3): 2 5 8 11 14 17 */
    ck_assert_uint_eq(mproc_range_len(MPROC_RANGE(2, 20, 3)), 6);
    double h[6];
    TU_OK(MPROC_POOL_MAP_RANGE(p, half, MPROC_RANGE(2, 20, 3), h));
    for (int i = 0; i < 6; i++) ck_assert(h[i] == (2 + 3 * i) / 2.0);
    /* A negative step: range(10, -10, -3) is 10 7 4 1 -2 -5 -8. */
    ck_assert_uint_eq(mproc_range_len(MPROC_RANGE(10, -10, -3)), 7);
    TU_OK(MPROC_POOL_MAP_RANGE(p, same, MPROC_RANGE(10, -10, -3), out));
    for (int i = 0; i < 7; i++) ck_assert_int_eq(out[i], 10 - 3 * i);
    /* The whole int64_t range: range(INT64_MAX, INT64_MIN, INT64_MIN) is
     * INT64_MAX, -1. */
    mproc_range wide = MPROC_RANGE(INT64_MAX, INT64_MIN, INT64_MIN);
    ck_assert_uint_eq(mproc_range_len(wide), 2);
    TU_OK(MPROC_POOL_MAP_RANGE(p, same, wide, out));
    ck_assert(out[0] == INT64_MAX && out[1] == -1);
    ck_assert_uint_eq(mproc_range_len(MPROC_RANGE(INT64_MIN, INT64_MAX, 1)), UINT64_MAX);
    end_pool(p);
}
END_TEST

START_TEST(map_range_bytes_and_arena)
{
    mproc_pool *p = new_pool(_i, 2);
    /* The bytes form, into the caller's memory (copied back). */
    int32_t sq[50];
    TU_OK(mproc_pool_map_range(p, square_bytes, MPROC_RANGE(-25, 25), sq, sizeof *sq, NULL));
    for (int i = 0; i < 50; i++) ck_assert_int_eq(sq[i], (i - 25) * (i - 25));
    /* Into the arena: worked on in place. */
    int64_t *out;
    enum { N = 5000 };
    TU_OK(mproc_arena_alloc((void **)&out, N * sizeof *out));
    TU_OK(mproc_pool_map_range_typed(p, MPROC_MAP_I64_I64, (mproc_any_fn)cube,
                                     MPROC_RANGE(N - 1, -1, -1), out, sizeof *out, NULL));
    for (int64_t i = 0; i < N; i++)
        ck_assert_int_eq(out[i], (N - 1 - i) * (N - 1 - i) * (N - 1 - i));
    TU_OK(mproc_arena_free(out));
    end_pool(p);
}
END_TEST

START_TEST(empty_ranges)
{
    mproc_pool *p = new_pool(_i, 1);
    int64_t out[1] = {42};
    TU_OK(MPROC_POOL_MAP_RANGE(p, cube, MPROC_RANGE(5, 5), out));
    TU_OK(MPROC_POOL_MAP_RANGE(p, cube, MPROC_RANGE(0, 10, -1), out));
    TU_OK(MPROC_POOL_MAP_RANGE(p, cube, MPROC_RANGE(-3), out));
    ck_assert_int_eq(out[0], 42); /* nothing written */
    mproc_imap *it;
    TU_OK(MPROC_POOL_IMAP_RANGE(p, cube, MPROC_RANGE(10, 0), NULL, &it));
    TU_RC(mproc_imap_next(it, out, NULL, 10000), MPROC_EEOF);
    TU_RC(mproc_imap_next(it, out, NULL, 10000), MPROC_EEOF);
    mproc_imap_free(it);
    TU_OK(MPROC_POOL_IMAP(p, twice, (double *)NULL, 0, NULL, &it));
    TU_RC(mproc_imap_next(it, out, NULL, 10000), MPROC_EEOF);
    mproc_imap_free(it);
    end_pool(p);
}
END_TEST

/* ---- imap over ranges and arrays ------------------------------------------------ */

START_TEST(imap_range_steps)
{
    mproc_pool *p = new_pool(_i, 2);
    /* imap(same, range(100, -100, -7)), in order, with the positions. */
    mproc_range r = MPROC_RANGE(100, -100, -7);
    uint64_t n = mproc_range_len(r);
    ck_assert_uint_eq(n, 29);
    mproc_imap *it;
    TU_OK(MPROC_POOL_IMAP_RANGE(p, same, r, &(mproc_imap_opts){.chunksize = 3}, &it));
    int64_t v;
    size_t idx;
    for (uint64_t k = 0; k < n; k++) {
        TU_OK(mproc_imap_next(it, &v, &idx, 20000));
        ck_assert_uint_eq(idx, k);
        ck_assert_int_eq(v, 100 - 7 * (int64_t)k);
    }
    TU_RC(mproc_imap_next(it, &v, NULL, 20000), MPROC_EEOF);
    mproc_imap_free(it);
    /* imap_unordered over the bytes form: every square once. */
    TU_OK(mproc_pool_imap_range(p, square_bytes, MPROC_RANGE(1, 41, 2), sizeof(int32_t),
                                &(mproc_imap_opts){.unordered = true}, &it));
    bool seen[20] = {0};
    int32_t sq;
    for (int k = 0; k < 20; k++) {
        TU_OK(mproc_imap_next(it, &sq, &idx, 20000));
        ck_assert(idx < 20 && !seen[idx]);
        seen[idx] = true;
        ck_assert_int_eq(sq, (int32_t)((2 * idx + 1) * (2 * idx + 1)));
    }
    TU_RC(mproc_imap_next(it, &sq, NULL, 20000), MPROC_EEOF);
    mproc_imap_free(it);
    end_pool(p);
}
END_TEST

/* A range of 2^62 items: only max_inflight are ever produced ahead, so the
 * first results come at once and freeing the iterator ends it. */
START_TEST(imap_huge_range_bounded)
{
    mproc_pool *p = new_pool(_i, 2);
    mproc_imap *it;
    TU_OK(MPROC_POOL_IMAP_RANGE(p, cube, MPROC_RANGE(0, INT64_C(1) << 62, 1),
                                &(mproc_imap_opts){.max_inflight = 8}, &it));
    for (int64_t k = 0; k < 200; k++) {
        int64_t v;
        TU_OK(mproc_imap_next(it, &v, NULL, 20000));
        ck_assert_int_eq(v, k * k * k);
    }
    mproc_imap_free(it);
    end_pool(p);
}
END_TEST

START_TEST(imap_arrays)
{
    mproc_pool *p = new_pool(_i, 2);
    /* Typed: imap(twice, xs). */
    double xs[37];
    for (int i = 0; i < 37; i++) xs[i] = i * 0.25 - 3;
    mproc_imap *it;
    TU_OK(MPROC_POOL_IMAP(p, twice, xs, 37, &(mproc_imap_opts){.chunksize = 4}, &it));
    for (int i = 0; i < 37; i++) {
        double d;
        size_t idx;
        TU_OK(mproc_imap_next(it, &d, &idx, 20000));
        ck_assert(idx == (size_t)i && d == 2 * xs[i]);
    }
    double d;
    TU_RC(mproc_imap_next(it, &d, NULL, 20000), MPROC_EEOF);
    mproc_imap_free(it);
    /* The bytes form over structs (starmap's arguments). */
    pair ps[25];
    for (int i = 0; i < 25; i++) ps[i] = (pair){i, 1000 * i};
    TU_OK(mproc_pool_imap_array(p, add_pair, ps, 25, sizeof *ps, sizeof(int64_t), NULL, &it));
    for (int i = 0; i < 25; i++) {
        int64_t s;
        TU_OK(mproc_imap_next(it, &s, NULL, 20000));
        ck_assert_int_eq(s, 1001 * i);
    }
    mproc_imap_free(it); /* before its end: fine */
    end_pool(p);
}
END_TEST

/* ---- typed map over arrays, and typed failures ---------------------------------- */

START_TEST(typed_map_arrays)
{
    mproc_pool *p = new_pool(_i, 2);
    double in[9] = {-2.5, -1, -0.5, 0, 0.5, 1, 1.5, 1e15, -1e15};
    int64_t fl[9];
    TU_OK(MPROC_POOL_MAP(p, floor_of, in, 9, fl));
    int64_t want[9] = {
        -3, -1, -1, 0, 0, 1, 1, INT64_C(1000000000000000), -INT64_C(1000000000000000)};
    for (int i = 0; i < 9; i++) ck_assert_int_eq(fl[i], want[i]);
    double tw[9];
    TU_OK(MPROC_POOL_MAP(p, twice, in, 9, tw));
    for (int i = 0; i < 9; i++) ck_assert(tw[i] == 2 * in[i]);
    /* The bytes form through the same macro: the sizes are the elements'. */
    pair ps[6] = {{1, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 10}, {11, 12}};
    int64_t sums[6];
    TU_OK(MPROC_POOL_MAP(p, add_pair, ps, 6, sums));
    for (int i = 0; i < 6; i++) ck_assert_int_eq(sums[i], 4 * i + 3);
    end_pool(p);
}
END_TEST

/* apply and apply_async of a typed function: one element through map. */
START_TEST(typed_apply)
{
    mproc_pool *p = new_pool(_i, 2);
    int64_t r = 0;
    TU_OK(MPROC_POOL_APPLY(p, cube, &(int64_t){-3}, &r));
    ck_assert_int_eq(r, -27);
    double h = 0;
    TU_OK(MPROC_POOL_APPLY(p, half, &(int64_t){5}, &h));
    ck_assert(h == 2.5);
    mproc_future *f, *bad;
    int64_t r2 = 0, r3 = 0;
    TU_OK(MPROC_POOL_APPLY_ASYNC(p, cube, &(int64_t){4}, &r2, &f));
    TU_OK(MPROC_POOL_APPLY_ASYNC(p, no_seven, &(int64_t){7}, &r3, &bad));
    TU_OK(mproc_future_wait(f, 20000));
    ck_assert(mproc_future_successful(f));
    ck_assert_int_eq(r2, 64);
    TU_RC(mproc_future_result(bad, NULL, NULL, 20000), MPROC_ETASK);
    const char *msg = NULL;
    TU_OK(mproc_future_error(bad, NULL, &msg, NULL));
    ck_assert_ptr_nonnull(strstr(msg, "seven"));
    MPROC_FREE(f, bad);
    /* A failed apply gives the task's error. */
    TU_RC(MPROC_POOL_APPLY(p, no_seven, &(int64_t){7}, &r), MPROC_ETASK);
    end_pool(p);
}
END_TEST

START_TEST(typed_failure)
{
    mproc_pool *p = new_pool(_i, 2);
    int64_t out[20];
    TU_RC(MPROC_POOL_MAP_RANGE(p, no_seven, MPROC_RANGE(20), out), MPROC_ETASK);
    ck_assert_int_eq(out[0], 100);
    ck_assert_int_eq(out[19], 119); /* the other chunks ran */
    mproc_imap *it;
    TU_OK(MPROC_POOL_IMAP_RANGE(p, no_seven, MPROC_RANGE(5, 10), NULL, &it));
    for (int64_t k = 5; k < 10; k++) {
        int64_t v = 0;
        if (k == 7) {
            TU_RC(mproc_imap_next(it, &v, NULL, 20000), MPROC_ETASK);
            continue;
        }
        TU_OK(mproc_imap_next(it, &v, NULL, 20000));
        ck_assert_int_eq(v, k + 100);
    }
    TU_RC(mproc_imap_next(it, out, NULL, 20000), MPROC_EEOF);
    mproc_imap_free(it);
    end_pool(p);
}
END_TEST

/* ---- bad arguments ---------------------------------------------------------------- */

START_TEST(bad_arguments)
{
    mproc_pool *p = new_pool(_i, 1);
    int64_t out[4], in[4] = {1, 2, 3, 4};
    mproc_imap *it = NULL;
    /* A step of 0 (Python: ValueError). */
    TU_RC(MPROC_POOL_MAP_RANGE(p, cube, MPROC_RANGE(0, 10, 0), out), MPROC_EINVAL);
    TU_RC(MPROC_POOL_IMAP_RANGE(p, cube, MPROC_RANGE(0, 10, 0), NULL, &it), MPROC_EINVAL);
    TU_RC(mproc_pool_map_range(p, square_bytes, MPROC_RANGE(1, 2, 0), out, 4, NULL), MPROC_EINVAL);
    ck_assert_ptr_null(it);
    /* NULLs. */
    TU_RC(MPROC_POOL_MAP_RANGE(NULL, cube, MPROC_RANGE(3), out), MPROC_EINVAL);
    TU_RC(mproc_pool_map_range(p, NULL, MPROC_RANGE(3), out, 8, NULL), MPROC_EINVAL);
    TU_RC(mproc_pool_map_range(p, square_bytes, MPROC_RANGE(3), NULL, 4, NULL), MPROC_EINVAL);
    TU_RC(mproc_pool_imap_range(p, square_bytes, MPROC_RANGE(3), 4, NULL, NULL), MPROC_EINVAL);
    TU_RC(mproc_pool_imap_range(NULL, square_bytes, MPROC_RANGE(3), 4, NULL, &it), MPROC_EINVAL);
    TU_RC(mproc_pool_imap_array(p, add_pair, NULL, 3, sizeof(pair), 8, NULL, &it), MPROC_EINVAL);
    TU_RC(mproc_pool_imap_array(p, NULL, in, 4, 8, 8, NULL, &it), MPROC_EINVAL);
    /* Sizes that do not fit the typed function. */
    TU_RC(mproc_pool_map_typed(p, MPROC_MAP_I64_I64, (mproc_any_fn)cube, in, 4, 4, out, 8, NULL),
          MPROC_EINVAL);
    TU_RC(mproc_pool_map_typed(p, MPROC_MAP_I64_I64, (mproc_any_fn)cube, in, 4, 8, out, 16, NULL),
          MPROC_EINVAL);
    TU_RC(mproc_pool_map_range_typed(p, MPROC_MAP_I64_F64, (mproc_any_fn)half, MPROC_RANGE(4), out,
                                     4, NULL),
          MPROC_EINVAL);
    TU_RC(mproc_pool_imap_array_typed(p, MPROC_MAP_F64_F64, (mproc_any_fn)twice, in, 4, 2, 8, NULL,
                                      &it),
          MPROC_EINVAL);
    /* A range gives int64_t items: a function of a double cannot take them. */
    TU_RC(mproc_pool_map_range_typed(p, MPROC_MAP_F64_F64, (mproc_any_fn)twice, MPROC_RANGE(4), out,
                                     8, NULL),
          MPROC_EINVAL);
    TU_RC(mproc_pool_imap_range_typed(p, MPROC_MAP_F64_I64, (mproc_any_fn)floor_of, MPROC_RANGE(4),
                                      8, NULL, &it),
          MPROC_EINVAL);
    /* An unknown kind. */
    TU_RC(mproc_pool_map_typed(p, (mproc_map_kind)99, (mproc_any_fn)cube, in, 4, 8, out, 8, NULL),
          MPROC_EINVAL);
    /* A range longer than memory. */
    TU_RC(MPROC_POOL_MAP_RANGE(p, cube, MPROC_RANGE(INT64_MIN, INT64_MAX), out), MPROC_EINVAL);
    ck_assert_ptr_null(it);
    /* The pool still works. */
    TU_OK(MPROC_POOL_MAP(p, cube, in, 4, out));
    ck_assert_int_eq(out[3], 64);
    end_pool(p);
}
END_TEST

/* ---- terminate_workers / kill_workers ---------------------------------------------- */

/* In the arena: how many tasks started, and their workers' pids. */
typedef struct board {
    atomic_int started;
    atomic_int pids[8];
} board;

typedef struct hold_arg {
    board *b;
    bool ignore_term;
} hold_arg;

/* Counts itself in, then sleeps up to 30 s (the test stops it first). */
static int hold(const void *arg, size_t len, mproc_result *res)
{
    (void)res;
    if (len != sizeof(hold_arg)) return mproc_task_fail("bad argument");
    const hold_arg *a = arg;
    if (a->ignore_term) signal(SIGTERM, SIG_IGN);
    int k = atomic_fetch_add(&a->b->started, 1);
    if (k < 8) atomic_store(&a->b->pids[k], (int)getpid());
    for (int i = 0; i < 3000; i++) tu_sleep_ms(10);
    return 0;
}

static int quick(const void *arg, size_t len, mproc_result *res)
{
    (void)arg;
    (void)len;
    return mproc_result_set(res, "ok", 2);
}

static void wait_started(board *b, int n)
{
    for (int k = 0; k < 20000 && atomic_load(&b->started) < n; k++) tu_sleep_ms(1);
    ck_assert_int_ge(atomic_load(&b->started), n);
}

/* Two workers hold a task each, four wait: stop the workers. */
static void stop_with_pending(int i, int how, bool ignore_term)
{
    board *b;
    TU_OK(mproc_arena_calloc((void **)&b, sizeof *b));
    mproc_executor *ex;
    TU_OK(mproc_executor_new_process(
        &ex, &(mproc_executor_opts){.max_workers = 2, .context = ctx_of(i)}));
    hold_arg a = {b, ignore_term};
    mproc_future *fs[6];
    for (int k = 0; k < 6; k++) TU_OK(mproc_executor_submit(ex, hold, &a, sizeof a, &fs[k]));
    wait_started(b, 2);
    long long t0 = mproc_now_ns();
    if (how == SIGTERM)
        TU_OK(mproc_executor_terminate_workers(ex));
    else
        TU_OK(mproc_executor_kill_workers(ex));
    double secs = (mproc_now_ns() - t0) / 1e9;
    ck_assert_msg(secs < (ignore_term ? 5.0 : 3.0), "stopping took %.2f s", secs);
    int failed = 0, cancelled = 0;
    for (int k = 0; k < 6; k++) {
        ck_assert(mproc_future_done(fs[k])); /* nothing left pending */
        int rc = mproc_future_result(fs[k], NULL, NULL, 0);
        if (rc == MPROC_ESHUTDOWN) {
            failed++;
            const char *msg;
            TU_OK(mproc_future_error(fs[k], NULL, &msg, NULL));
            ck_assert_ptr_nonnull(
                strstr(msg, how == SIGTERM ? "terminate_workers" : "kill_workers"));
        } else {
            TU_RC(rc, MPROC_ECANCELLED);
            ck_assert(mproc_future_cancelled(fs[k]));
            cancelled++;
        }
    }
    ck_assert_int_eq(atomic_load(&b->started), 2); /* the pending ones never ran */
    /* The two running fail, and so do those already queued to a worker
     * (Python's call queue: BrokenProcessPool); the last one, surely
     * never handed out, is cancelled. */
    ck_assert_int_ge(failed, 2);
    ck_assert_int_ge(cancelled, 1);
    ck_assert(mproc_future_cancelled(fs[5]));
    for (int k = 0; k < 2; k++) /* the workers are gone, and reaped */
        ck_assert(kill((pid_t)atomic_load(&b->pids[k]), 0) == -1 && errno == ESRCH);
    mproc_future *g = NULL;
    TU_RC(mproc_executor_submit(ex, quick, NULL, 0, &g), MPROC_ESHUTDOWN);
    ck_assert_ptr_null(g);
    /* Again, and shutdown with wait: at once. */
    TU_OK(mproc_executor_terminate_workers(ex));
    TU_OK(mproc_executor_shutdown(ex, true, false));
    for (int k = 0; k < 6; k++) mproc_future_free(fs[k]);
    mproc_executor_free(ex);
    TU_OK(mproc_arena_free(b));
}

START_TEST(terminate_workers_pending)
{
    stop_with_pending(_i, SIGTERM, false);
}
END_TEST

START_TEST(kill_workers_pending)
{
    stop_with_pending(_i, SIGKILL, false);
}
END_TEST

/* A worker that ignores SIGTERM gets SIGKILL after the grace period. */
START_TEST(terminate_workers_stubborn)
{
    stop_with_pending(_i, SIGTERM, true);
}
END_TEST

START_TEST(stop_workers_edges)
{
    mproc_executor *ex;
    /* Idle workers, and after a shutdown that waited: nothing to stop. */
    TU_OK(mproc_executor_new_process(
        &ex, &(mproc_executor_opts){.max_workers = 2, .context = ctx_of(_i)}));
    mproc_future *f;
    TU_OK(mproc_executor_submit(ex, quick, NULL, 0, &f));
    TU_OK(mproc_future_result(f, NULL, NULL, 20000));
    TU_OK(mproc_executor_kill_workers(ex));
    ck_assert(mproc_future_successful(f)); /* a done future stays done */
    mproc_future_free(f);
    mproc_executor_free(ex);
    TU_OK(mproc_executor_new_process(
        &ex, &(mproc_executor_opts){.max_workers = 1, .context = ctx_of(_i)}));
    TU_OK(mproc_executor_shutdown(ex, true, false));
    TU_OK(mproc_executor_terminate_workers(ex));
    mproc_executor_free(ex);
    /* A thread executor has neither (as Python's ThreadPoolExecutor). */
    TU_OK(mproc_executor_new_thread(&ex, &(mproc_executor_opts){.max_workers = 1}));
    TU_RC(mproc_executor_terminate_workers(ex), MPROC_ENOTSUP);
    TU_RC(mproc_executor_kill_workers(ex), MPROC_ENOTSUP);
    mproc_executor_free(ex);
    TU_RC(mproc_executor_terminate_workers(NULL), MPROC_EINVAL);
    TU_RC(mproc_executor_kill_workers(NULL), MPROC_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pool_short");
    TCase *tc = tu_tcase(s, "ranges", 120);
    tcase_add_loop_test(tc, map_range_typed, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, map_range_bytes_and_arena, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, empty_ranges, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, imap_range_steps, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, imap_huge_range_bounded, 0, TU_NMETHODS);
    tc = tu_tcase(s, "arrays", 120);
    tcase_add_loop_test(tc, imap_arrays, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, typed_map_arrays, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, typed_failure, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, typed_apply, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, bad_arguments, 0, TU_NMETHODS);
    tc = tu_tcase(s, "stop_workers", 120);
    tcase_add_loop_test(tc, terminate_workers_pending, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, kill_workers_pending, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, terminate_workers_stubborn, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, stop_workers_edges, 0, TU_NMETHODS);
    return tu_run(s);
}
