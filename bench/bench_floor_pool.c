/* bench_floor rows under the pool layer: the futex ping-pong (a task round
 * trip is two wake-ups), memcpy of large buffers (what a zero-copy map
 * moves), and the prime check of pool.map.cpu_bound with two OpenMP
 * threads (two pthreads where the compiler has no OpenMP) and in one
 * thread (the "sequential" peer). */
#include "bench_floor.h"
#include "bench_primes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#ifndef _OPENMP
#include <pthread.h>
#include <stdatomic.h>
#endif

/* ---- pool.map.zero_copy_10M: memcpy of 10 M doubles ---------------------- */

/* One op copies ZC_BYTES: it reads ZC_BYTES and writes ZC_BYTES, the bytes
 * the zero-copy map reads and writes (the row counts both). Both buffers
 * are touched before the clock, as there. */
#define ZC_BYTES ((size_t)10000000 * sizeof(double))

static int big_memcpy(long n, double *secs)
{
    char *src = malloc(ZC_BYTES), *dst = src ? malloc(ZC_BYTES) : NULL;
    if (!dst) free(src);
    CHECK(dst, "malloc");
    memset(src, 'x', ZC_BYTES);
    memset(dst, 'y', ZC_BYTES);
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        src[(size_t)i % ZC_BYTES] = 'x'; /* a new source each time for the compiler */
        memcpy(dst, src, ZC_BYTES);
        bench_keep(dst);
    }
    *secs = bench_now() - t0;
    int bad = dst[0] != 'x' || dst[ZC_BYTES - 1] != 'x';
    free(src);
    free(dst);
    if (bad) fprintf(stderr, "big_memcpy: copy lost\n");
    return bad ? -1 : 0;
}

/* ---- pool.map.cpu_bound: the prime check over the range ------------------ */

/* Chunks of ceil(range / (4 * 2)) numbers, handed out in turn to whichever
 * thread is free: the split of the pool's map with two workers (Python's
 * default chunksize), so that only the mechanism differs. */
#define THREADS 2

static long chunk_size(long k)
{
    return (k + 4 * THREADS - 1) / (4 * THREADS);
}

#ifdef _OPENMP
static void check_range(int *out, long k)
{
    long chunk = chunk_size(k);
#pragma omp parallel for num_threads(THREADS) schedule(dynamic, chunk)
    for (long i = 0; i < k; i++) out[i] = bench_is_prime(i);
}
#else
typedef struct split {
    int *out;
    long k, chunk;
    atomic_long next;
} split;

static void *check_chunks(void *arg)
{
    split *s = arg;
    for (;;) {
        long lo = atomic_fetch_add(&s->next, s->chunk);
        if (lo >= s->k) return NULL;
        long hi = lo + s->chunk < s->k ? lo + s->chunk : s->k;
        for (long i = lo; i < hi; i++) s->out[i] = bench_is_prime(i);
    }
}

/* The calling thread is the second one. */
static void check_range(int *out, long k)
{
    split s = {.out = out, .k = k, .chunk = chunk_size(k)};
    pthread_t th;
    int r = pthread_create(&th, NULL, check_chunks, &s);
    if (r != 0) {
        errno = r;
        perror("pthread_create (going on in one thread)");
    }
    check_chunks(&s);
    if (r == 0) pthread_join(th, NULL);
}
#endif

static void check_sequential(int *out, long k)
{
    for (long i = 0; i < k; i++) out[i] = bench_is_prime(i);
}

/* One op: the whole range; the count of primes is checked off the clock. */
static int primes(long n, double *secs, void (*check)(int *, long))
{
    long k = bench_primes_n();
    int *out = malloc((size_t)k * sizeof *out);
    CHECK(out, "malloc");
    double t = 0;
    int bad = 0;
    for (long i = 0; i < n && !bad; i++) {
        memset(out, 0xff, (size_t)k * sizeof *out);
        double t0 = bench_now();
        check(out, k);
        t += bench_now() - t0;
        long count = 0;
        for (long j = 0; j < k; j++) count += out[j];
        bad = count != bench_primes_count();
    }
    *secs = t;
    free(out);
    if (bad) fprintf(stderr, "primes: wrong prime count\n");
    return bad ? -1 : 0;
}

static int primes_parallel(long n, double *secs)
{
    return primes(n, secs, check_range);
}

static int primes_sequential(long n, double *secs)
{
    return primes(n, secs, check_sequential);
}

static const bench_row rows[] = {
    {"pool.apply_async.rtt", futex_pingpong, BENCH_US, 0},
    {"pool.map.zero_copy_10M", big_memcpy, BENCH_MB_PER_S, 2 * ZC_BYTES},
    {"pool.map.cpu_bound", primes_parallel, BENCH_S, 0},
    {"pool.map.cpu_bound sequential", primes_sequential, BENCH_S, 0},
};

const bench_table bench_floor_pool = BENCH_TABLE(rows);
