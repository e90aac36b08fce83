/* pool_primes — C twin of seed 004's "CPU-bound task: Prime number
 * checking" (its practical example 12): the same primality test run
 * sequentially, in threads and in a process pool, with timings and
 * speed-ups.
 *
 * The seed describes the comparison but does not include the example's
 * code, so this Python program stands for it:
 *
 *     import math
 *     import time
 *     from concurrent.futures import ThreadPoolExecutor
 *     from multiprocessing import Pool, cpu_count
 *
 *     def is_prime(n):
 *         if n < 2:
 *             return False
 *         if n % 2 == 0:
 *             return n == 2
 *         for i in range(3, math.isqrt(n) + 1, 2):
 *             if n % i == 0:
 *                 return False
 *         return True
 *
 *     START, COUNT = 10**12, 4000
 *
 *     if __name__ == '__main__':
 *         numbers = range(START, START + COUNT)
 *         workers = cpu_count()
 *         print(f'Checking {COUNT} numbers from {START} with {workers} workers')
 *
 *         t0 = time.perf_counter()
 *         seq = [is_prime(n) for n in numbers]
 *         t_seq = time.perf_counter() - t0
 *         print(f'Sequential: {sum(seq)} primes in {t_seq:.2f} s')
 *
 *         t0 = time.perf_counter()
 *         with ThreadPoolExecutor(max_workers=workers) as ex:
 *             thr = list(ex.map(is_prime, numbers))
 *         t_thr = time.perf_counter() - t0
 *         print(f'Threads:    {sum(thr)} primes in {t_thr:.2f} s')
 *
 *         t0 = time.perf_counter()
 *         with Pool(processes=workers) as pool:
 *             par = pool.map(is_prime, numbers)
 *         t_proc = time.perf_counter() - t0
 *         print(f'Processes:  {sum(par)} primes in {t_proc:.2f} s')
 *
 *         print(f'Speed-up with threads:   {t_seq / t_thr:.2f}x')
 *         print(f'Speed-up with processes: {t_seq / t_proc:.2f}x')
 *
 * Output on a 2-core machine (the times vary):
 *
 *     Checking 4000 numbers from 1000000000000 with 2 workers
 *     Sequential: 138 primes in 2.51 s
 *     Threads:    138 primes in 2.38 s
 *     Processes:  138 primes in 2.35 s
 *     Speed-up with threads:   1.06x
 *     Speed-up with processes: 1.07x
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

int main(void)
{
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
    MPROC_CHECK(mproc_pool_new(&pool, &(mproc_pool_opts){.processes = workers}));
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
            fprintf(stderr, "pool_primes: the results for %lld differ\n", (long long)numbers[i]);
            return 1;
        }
    return 0;
}
