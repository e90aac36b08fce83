/* The work of pool.map.cpu_bound, shared by bench_mproc and bench_floor: a
 * trial-division prime check over the integers [0, bench_primes_n()).
 * py_anchor.py checks the same range the same way (keep them in step). */
#ifndef BENCH_PRIMES_H
#define BENCH_PRIMES_H

#include "bench_util.h"

#include <stdint.h>

/* 10^6 integers: Python's Pool(2) takes about a second on a 2-core machine
 * (C about 1/50 of that); BENCH_QUICK: 10^5. */
#define BENCH_PRIMES_N       1000000L
#define BENCH_PRIMES_N_QUICK 100000L
/* How many primes each range holds, to check the results. */
#define BENCH_PRIMES_COUNT       78498L
#define BENCH_PRIMES_COUNT_QUICK 9592L

static inline long bench_primes_n(void)
{
    return bench_quick() ? BENCH_PRIMES_N_QUICK : BENCH_PRIMES_N;
}

static inline long bench_primes_count(void)
{
    return bench_quick() ? BENCH_PRIMES_COUNT_QUICK : BENCH_PRIMES_COUNT;
}

/* 1 if x is prime, else 0: odd divisors up to the square root. */
static inline int bench_is_prime(int64_t x)
{
    if (x < 2) return 0;
    if (x % 2 == 0) return x == 2;
    for (int64_t d = 3; d * d <= x; d += 2)
        if (x % d == 0) return 0;
    return 1;
}

#endif
