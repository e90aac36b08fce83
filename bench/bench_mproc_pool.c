/* bench_mproc rows for pools and executors: task round trips, pipelined
 * tasks, map (copy mode, zero-copy in the arena, CPU-bound) and a pool's
 * life cycle.
 *
 * Every pool and executor here uses the default start method: forkserver
 * (as Python 3.14 on Linux), unless MPROC_START_METHOD says otherwise. Its
 * server is started before the clock, once per program, as Python starts
 * its own once (py_anchor.py uses 'forkserver' for these rows too). The
 * workers are new images of this program: the task and map functions are
 * found again there by module and offset, and read no globals. Two workers,
 * except where the row says otherwise. */
#include "bench_mproc.h"
#include "bench_primes.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WORKERS 2

int ensure_server(void)
{
    const char *m = mproc_get_start_method(false);
    if (m && strcmp(m, "forkserver") == 0) CHECK(mproc_forkserver_ensure_running());
    return 0;
}

/* A pool of 2 workers under the default method. */
static int pool_new(mproc_pool **pool)
{
    mproc_pool_opts opts = {.processes = WORKERS};
    if (ensure_server() != 0) return -1;
    CHECK(mproc_pool_new(pool, &opts));
    return 0;
}

/* ---- pool.apply_async.rtt: one task at a time --------------------------- */

static int apply_rtt(long n, double *secs)
{
    mproc_pool *pool;
    if (pool_new(&pool) != 0) return -1;
    int bad = bench_apply_wait(pool) != 0; /* warm-up, off the clock */
    double t0 = bench_now();
    for (long i = 0; i < n && !bad; i++) bad = bench_apply_wait(pool) != 0;
    *secs = bench_now() - t0;
    return bench_pool_end(pool) != 0 || bad ? -1 : 0;
}

/* ---- pipelined rows: a batch of tasks in flight, then wait for all ------- */

/* Rows that count per task or per item do whole batches (BATCH tasks in
 * flight, or a map over BATCH items), ceil(n / batch) of them, and report
 * the time of n at the rate measured: each op is then one task or item of
 * a full batch, whatever n the calibration asks for. */
static long batches(long n, long batch)
{
    return (n + batch - 1) / batch;
}

static double scaled(double secs, long n, long nbatches, long batch)
{
    return secs * (double)n / ((double)nbatches * (double)batch);
}

/* 10 000 tasks in flight (BENCH_QUICK: 1 000, to keep CI short). */
static long inflight(void)
{
    return bench_quick() ? 1000 : 10000;
}

static int apply_pipelined(long n, double *secs)
{
    long batch = inflight(), nb = batches(n, batch);
    mproc_future **fs = malloc((size_t)batch * sizeof *fs);
    mproc_pool *pool;
    if (!fs || pool_new(&pool) != 0) {
        free(fs);
        return -1;
    }
    int bad = bench_apply_wait(pool) != 0; /* warm-up, off the clock */
    double t0 = bench_now();
    for (long b = 0; b < nb && !bad; b++) {
        long k = 0;
        int rc = 0;
        for (; k < batch && rc == 0; k++)
            rc = mproc_pool_apply_async(pool, bench_noop_task, NULL, 0, NULL, &fs[k]);
        if (rc != 0) {
            fprintf(stderr, "mproc_pool_apply_async: %s\n", mproc_err_name(rc));
            k--;
            bad = 1;
        }
        bad |= bench_wait_all(fs, k) != 0;
    }
    *secs = scaled(bench_now() - t0, n, nb, batch);
    free(fs);
    return bench_pool_end(pool) != 0 || bad ? -1 : 0;
}

/* ---- executor.submit.pipelined: the process executor --------------------- */

static int submit_pipelined(long n, double *secs)
{
    mproc_executor_opts opts = {.max_workers = WORKERS};
    mproc_executor *ex;
    if (ensure_server() != 0) return -1;
    CHECK(mproc_executor_new_process(&ex, &opts));
    return bench_submit_pipelined(ex, n, secs);
}

/* ---- pool.map.trivial_100k: x+1 over ints outside the arena (copy mode) -- */

static int inc_int(const void *in, void *out)
{
    *(int *)out = *(const int *)in + 1;
    return 0;
}

/* 100 000 items per map (BENCH_QUICK too: one map takes milliseconds). */
#define MAP_ITEMS 100000L

static int map_trivial(long n, double *secs)
{
    long nb = batches(n, MAP_ITEMS);
    int *in = malloc(MAP_ITEMS * sizeof *in), *out = malloc(MAP_ITEMS * sizeof *out);
    mproc_pool *pool;
    if (!in || !out || pool_new(&pool) != 0) {
        free(in);
        free(out);
        return -1;
    }
    for (long i = 0; i < MAP_ITEMS; i++) in[i] = (int)i;
    int bad = bench_apply_wait(pool) != 0; /* warm-up, off the clock */
    double t0 = bench_now();
    for (long b = 0; b < nb && !bad; b++) {
        memset(out, 0, MAP_ITEMS * sizeof *out); /* so that each map is checked */
        int rc = mproc_pool_map(pool, inc_int, in, MAP_ITEMS, sizeof *in, out, sizeof *out, NULL);
        if (rc != 0) fprintf(stderr, "mproc_pool_map: %s\n", mproc_err_name(rc));
        bad = rc != 0 || out[0] != 1 || out[MAP_ITEMS - 1] != MAP_ITEMS;
    }
    *secs = scaled(bench_now() - t0, n, nb, MAP_ITEMS);
    for (long i = 0; i < MAP_ITEMS && !bad; i++) bad = out[i] != in[i] + 1;
    if (bad) fprintf(stderr, "map_trivial: wrong results\n");
    free(in);
    free(out);
    return bench_pool_end(pool) != 0 || bad ? -1 : 0;
}

/* ---- pool.map.zero_copy_10M: x+1 over doubles in the arena, in place ---- */

static int inc_double(const void *in, void *out)
{
    *(double *)out = *(const double *)in + 1.0;
    return 0;
}

/* One op: a map over ZC_ITEMS doubles; the row counts its input and output
 * bytes (bench_mproc_pool's table: 2 * ZC_ITEMS * 8). */
#define ZC_ITEMS 10000000L

static int map_zero_copy(long n, double *secs)
{
    double *in = NULL, *out = NULL;
    mproc_pool *pool;
    CHECK(mproc_arena_alloc((void **)&in, ZC_ITEMS * sizeof *in));
    int rc = mproc_arena_alloc((void **)&out, ZC_ITEMS * sizeof *out);
    if (rc != 0 || pool_new(&pool) != 0) {
        mproc_arena_free(in);
        mproc_arena_free(out);
        CHECK(rc);
        return -1;
    }
    /* Every page touched before the clock, the output's too. */
    for (long i = 0; i < ZC_ITEMS; i++) in[i] = (double)i;
    memset(out, 0, ZC_ITEMS * sizeof *out);
    int bad = bench_apply_wait(pool) != 0; /* warm-up, off the clock */
    double t0 = bench_now();
    for (long i = 0; i < n && !bad; i++) {
        rc = mproc_pool_map(pool, inc_double, in, ZC_ITEMS, sizeof *in, out, sizeof *out, NULL);
        if (rc != 0) fprintf(stderr, "mproc_pool_map: %s\n", mproc_err_name(rc));
        bad = rc != 0;
    }
    *secs = bench_now() - t0;
    for (long i = 0; i < ZC_ITEMS && !bad; i++) bad = out[i] != in[i] + 1.0;
    if (bad) fprintf(stderr, "map_zero_copy: wrong results\n");
    mproc_arena_free(in);
    mproc_arena_free(out);
    return bench_pool_end(pool) != 0 || bad ? -1 : 0;
}

/* ---- pool.map.cpu_bound: prime check over a fixed range (copy mode) ----- */

static int is_prime_item(const void *in, void *out)
{
    *(int *)out = bench_is_prime(*(const int64_t *)in);
    return 0;
}

/* One op: a map over the whole range (bench_primes.h); only the maps are
 * timed, the checks of their results are not. */
static int map_cpu_bound(long n, double *secs)
{
    long k = bench_primes_n();
    int64_t *in = malloc((size_t)k * sizeof *in);
    int *out = malloc((size_t)k * sizeof *out);
    mproc_pool *pool;
    if (!in || !out || pool_new(&pool) != 0) {
        free(in);
        free(out);
        return -1;
    }
    for (long i = 0; i < k; i++) in[i] = i;
    int bad = bench_apply_wait(pool) != 0; /* warm-up, off the clock */
    double t = 0;
    for (long i = 0; i < n && !bad; i++) {
        memset(out, 0xff, (size_t)k * sizeof *out); /* so that each map is checked */
        double t0 = bench_now();
        int rc =
            mproc_pool_map(pool, is_prime_item, in, (size_t)k, sizeof *in, out, sizeof *out, NULL);
        t += bench_now() - t0;
        if (rc != 0) fprintf(stderr, "mproc_pool_map: %s\n", mproc_err_name(rc));
        long primes = 0;
        for (long j = 0; j < k; j++) primes += out[j];
        bad = rc != 0 || primes != bench_primes_count();
    }
    *secs = t;
    if (bad) fprintf(stderr, "map_cpu_bound: wrong prime count\n");
    free(in);
    free(out);
    return bench_pool_end(pool) != 0 || bad ? -1 : 0;
}

/* ---- pool.create_close_join (.fork: under the fork method) -------------- */

static int create_close_join_with(const char *method, long n, double *secs)
{
    const mproc_context *ctx;
    CHECK(mproc_get_context(method, &ctx));
    mproc_pool_opts opts = {.processes = WORKERS, .context = ctx};
    if (ensure_server() != 0) return -1;
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        mproc_pool *pool;
        CHECK(mproc_pool_new(&pool, &opts));
        if (bench_pool_end(pool) != 0) return -1;
    }
    *secs = bench_now() - t0;
    return 0;
}

static int create_close_join(long n, double *secs)
{
    return create_close_join_with(NULL, n, secs); /* the default method */
}

static int create_close_join_fork(long n, double *secs)
{
    return create_close_join_with("fork", n, secs);
}

static const bench_row rows[] = {
    {"pool.apply_async.rtt", apply_rtt, BENCH_US, 0},
    {"pool.apply_async.pipelined", apply_pipelined, BENCH_US, 0},
    {"executor.submit.pipelined", submit_pipelined, BENCH_US, 0},
    {"pool.map.trivial_100k", map_trivial, BENCH_US, 0},
    {"pool.map.zero_copy_10M", map_zero_copy, BENCH_MB_PER_S, 2 * ZC_ITEMS * sizeof(double)},
    {"pool.map.cpu_bound", map_cpu_bound, BENCH_S, 0},
    {"pool.create_close_join", create_close_join, BENCH_MS, 0},
    {"pool.create_close_join.fork", create_close_join_fork, BENCH_MS, 0},
};

const bench_table bench_mproc_pool = BENCH_TABLE(rows);
