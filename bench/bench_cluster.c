/* bench_cluster: mproc's figures for the cluster.* rows (BENCH.md): the
 * process pool's calls over MPI ranks (mproc/cluster.h), in world mode.
 * Usage: mpiexec -n RANKS bench_cluster ROW; rank 0 prints the figure, the
 * other ranks serve. bench/run.py chooses RANKS per row (bench_cluster.cfg
 * names the launcher): 2 for cluster.apply.rtt (one worker rank), 3 for
 * cluster.submit.pipelined and cluster.map.cpu_bound (two, as the process
 * pool's rows have two workers), N + 1 for cluster.map.scaling.N. A row
 * run with another number of worker ranks fails. */
#include "bench_pool.h"
#include "bench_primes.h"
#include "bench_util.h"

#include <mproc.h>
#include <mproc/cluster.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A pool over exactly `workers` worker ranks; 0 or -1. */
static int pool_new(mproc_pool **pool, int workers)
{
    if (mproc_cluster_workers() != workers) {
        fprintf(stderr, "bench_cluster: this row wants %d worker rank(s) (mpiexec -n %d), got %d\n",
                workers, workers + 1, mproc_cluster_workers());
        return -1;
    }
    mproc_pool_opts opts = {.processes = workers};
    CHECK(mproc_cluster_pool_new(pool, &opts));
    return 0;
}

/* ---- cluster.apply.rtt: one task at a time, one worker rank ------------------ */

static int apply_rtt(long n, double *secs)
{
    mproc_pool *pool;
    if (pool_new(&pool, 1) != 0) return -1;
    int bad = bench_apply_wait(pool) != 0; /* warm-up, off the clock */
    double t0 = bench_now();
    for (long i = 0; i < n && !bad; i++) bad = bench_apply_wait(pool) != 0;
    *secs = bench_now() - t0;
    return bench_pool_end(pool) != 0 || bad ? -1 : 0;
}

/* ---- cluster.submit.pipelined: 10 000 tasks in flight, two worker ranks ------ */

/* As executor.submit.pipelined (bench_mproc_pool.c), with the executor
 * over the ranks (mpi4py.futures' MPIPoolExecutor). */
static int submit_pipelined(long n, double *secs)
{
    mproc_pool *probe;
    mproc_executor *ex;
    if (pool_new(&probe, 2) != 0) return -1; /* checks the ranks */
    mproc_pool_free(probe);
    CHECK(mproc_cluster_executor_new(&ex, &(mproc_cluster_pool_opts){.ranks = 2}));
    return bench_submit_pipelined(ex, n, secs);
}

/* ---- cluster.map.cpu_bound / .scaling.N: the prime check over the ranks ------ */

static int is_prime_item(const void *in, void *out)
{
    *(int *)out = bench_is_prime(*(const int64_t *)in);
    return 0;
}

/* One op: a map over the range of bench_primes.h, default chunks (as
 * pool.map.cpu_bound); only the maps are timed, the prime counts are
 * checked off the clock. */
static int map_primes(int workers, long n, double *secs)
{
    long k = bench_primes_n();
    int64_t *in = malloc((size_t)k * sizeof *in);
    int *out = malloc((size_t)k * sizeof *out);
    mproc_pool *pool;
    if (!in || !out || pool_new(&pool, workers) != 0) {
        free(in);
        free(out);
        return -1;
    }
    for (long i = 0; i < k; i++) in[i] = i;
    int bad = bench_apply_wait(pool) != 0; /* warm-up, off the clock */
    double t = 0;
    for (long i = 0; i < n && !bad; i++) {
        memset(out, 0xff, (size_t)k * sizeof *out);
        double t0 = bench_now();
        int rc =
            mproc_pool_map(pool, is_prime_item, in, (size_t)k, sizeof *in, out, sizeof *out, NULL);
        t += bench_now() - t0;
        if (rc != 0) fprintf(stderr, "mproc_pool_map: %s\n", mproc_err_name(rc));
        long primes = 0;
        for (long j = 0; j < k; j++) primes += out[j];
        if (rc == 0 && primes != bench_primes_count())
            fprintf(stderr, "map_primes: wrong prime count %ld\n", primes);
        bad = rc != 0 || primes != bench_primes_count();
    }
    *secs = t;
    free(in);
    free(out);
    return bench_pool_end(pool) != 0 || bad ? -1 : 0;
}

static int map_cpu_bound(long n, double *secs)
{
    return map_primes(2, n, secs);
}
static int scaling_1(long n, double *secs)
{
    return map_primes(1, n, secs);
}
static int scaling_2(long n, double *secs)
{
    return map_primes(2, n, secs);
}
static int scaling_4(long n, double *secs)
{
    return map_primes(4, n, secs);
}

static const bench_row rows[] = {
    {"cluster.apply.rtt", apply_rtt, BENCH_US, 0},
    {"cluster.submit.pipelined", submit_pipelined, BENCH_US, 0},
    {"cluster.map.cpu_bound", map_cpu_bound, BENCH_S, 0},
    {"cluster.map.scaling.1", scaling_1, BENCH_S, 0},
    {"cluster.map.scaling.2", scaling_2, BENCH_S, 0},
    {"cluster.map.scaling.4", scaling_4, BENCH_S, 0},
};

int main(int argc, char **argv)
{
    /* Ranks other than 0 serve tasks in here, then exit. */
    int rc = mproc_cluster_init(&argc, &argv);
    if (rc != 0) {
        fprintf(stderr, "mproc_cluster_init: %s\n", mproc_err_name(rc));
        return 1;
    }
    const bench_table tables[] = {BENCH_TABLE(rows)};
    int status = bench_main(argc, argv, tables, 1);
    mproc_cluster_shutdown();
    return status;
}
