/* cluster_primes — seed 004's prime-checking program (pool_primes.c)
 * over MPI ranks: pool_primes.c with one line changed (the pool's
 * constructor, mproc_cluster_pool_new instead of mproc_pool_new) and the
 * cluster started at the top of main. Run it with
 *
 *     mpiexec -n 3 examples/cluster_primes
 *
 * rank 0 runs main (the sequential and the thread runs happen there);
 * ranks 1 and 2 check the numbers of the pool's map, then exit when the
 * program ends (docs/cluster.md). The Python original and the output are
 * pool_primes.c's:
 *
 *     Checking 10000 numbers from 1000000000000 with 2 workers
 *     Sequential: 335 primes in 0.62 s
 *     Threads:    335 primes in 0.33 s
 *     Processes:  335 primes in 0.34 s
 *     Speed-up with threads:   1.88x
 *     Speed-up with processes: 1.82x
 *
 * ("Processes" are the worker ranks here.) The pool uses as many ranks as
 * the machine has cores (mproc_cpu_count()), so the job needs that many
 * ranks besides rank 0: mpiexec -n 3 on a 2-core machine.
 *
 * The C twin checks the numbers 10^12 to 10^12 + 9999 (2.5 times the
 * Python range; 335 of them are prime), about 0.6 s of trial division on
 * one core, so the whole run (sequential, threads, pool) takes about 2 s on
 * a 2-core machine, well under 5 s. The times, and so the speed-ups, vary
 * with the machine and its load; only the counts are fixed.
 *
 * Unlike Python's, C threads have no GIL: the thread executor
 * (mproc_executor_new_thread, the ThreadPoolExecutor twin) speeds the work
 * up as much as the process pool does. The pool's time includes starting
 * its workers, as in the Python (the `with Pool()` is inside the timing).
 * is_prime is a typed function, int64_t is_prime(int64_t): the pool maps
 * it over the range itself (MPROC_POOL_MAP_RANGE, no array of inputs);
 * the thread executor's map takes bytes, so a two-line wrapper serves it.
 */
#include <mproc.h>
#include <mproc/cluster.h>

#include <stdio.h>

#define START INT64_C(1000000000000) /* 10**12 */
#define COUNT 10000

/* def is_prime(n): trial division by 2, then by the odd numbers up to
 * isqrt(n). 1 for a prime, else 0. */
static int64_t is_prime(int64_t n)
{
    if (n < 2) return 0;
    if (n % 2 == 0) return n == 2;
    for (int64_t i = 3; i * i <= n; i += 2)
        if (n % i == 0) return 0;
    return 1;
}

/* is_prime for the thread executor's map: one int64_t in, one out. */
static int is_prime_bytes(const void *in, void *out)
{
    *(int64_t *)out = is_prime(*(const int64_t *)in);
    return 0;
}

/* time.perf_counter() */
static double perf_counter(void)
{
    return (double)mproc_now_ns() / 1e9;
}

static int64_t sum(const int64_t *v)
{
    int64_t k = 0;
    for (size_t i = 0; i < COUNT; i++) k += v[i];
    return k;
}

int main(int argc, char **argv)
{
    /* The other ranks serve from here and never return. */
    MPROC_CHECK(mproc_cluster_init(&argc, &argv));
    static int64_t numbers[COUNT], seq[COUNT], thr[COUNT], par[COUNT];
    for (size_t i = 0; i < COUNT; i++) numbers[i] = START + (int64_t)i;
    int workers = mproc_cpu_count();
    printf("Checking %d numbers from %lld with %d workers\n", COUNT, (long long)START, workers);

    /* seq = [is_prime(n) for n in numbers] */
    double t0 = perf_counter();
    for (size_t i = 0; i < COUNT; i++) seq[i] = is_prime(numbers[i]);
    double t_seq = perf_counter() - t0;
    printf("Sequential: %lld primes in %.2f s\n", (long long)sum(seq), t_seq);

    /* with ThreadPoolExecutor(max_workers=workers) as ex:
     *     thr = list(ex.map(is_prime, numbers)) */
    t0 = perf_counter();
    mproc_executor *ex;
    MPROC_CHECK(mproc_executor_new_thread(&ex, &(mproc_executor_opts){.max_workers = workers}));
    MPROC_CHECK(mproc_executor_map(ex, is_prime_bytes, numbers, COUNT, sizeof *numbers, thr,
                                   sizeof *thr, MPROC_FOREVER));
    mproc_executor_free(ex); /* the with block's shutdown(wait=True) */
    double t_thr = perf_counter() - t0;
    printf("Threads:    %lld primes in %.2f s\n", (long long)sum(thr), t_thr);

    /* with Pool(processes=workers) as pool:
     *     par = pool.map(is_prime, numbers) */
    t0 = perf_counter();
    mproc_pool *pool;
    /* Pool(processes=workers), over worker ranks: the one changed line. */
    MPROC_CHECK(mproc_cluster_pool_new(&pool, &(mproc_pool_opts){.processes = workers}));
    MPROC_CHECK(MPROC_POOL_MAP_RANGE(pool, is_prime, MPROC_RANGE(START, START + COUNT), par));
    MPROC_CHECK(mproc_pool_close(pool));
    MPROC_CHECK(mproc_pool_join(pool, MPROC_FOREVER));
    mproc_pool_free(pool);
    double t_proc = perf_counter() - t0;
    printf("Processes:  %lld primes in %.2f s\n", (long long)sum(par), t_proc);

    printf("Speed-up with threads:   %.2fx\n", t_seq / t_thr);
    printf("Speed-up with processes: %.2fx\n", t_seq / t_proc);

    /* The three ways must agree, number by number. */
    for (size_t i = 0; i < COUNT; i++)
        if (thr[i] != seq[i] || par[i] != seq[i]) {
            fprintf(stderr, "cluster_primes: the results for %lld differ\n", (long long)numbers[i]);
            return 1;
        }
    return 0;
}
