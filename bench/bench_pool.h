/* What bench_mproc's pool rows and bench_cluster share: the CHECK macro
 * and a pool's plain operations (bench_pool.c). */
#ifndef BENCH_POOL_H
#define BENCH_POOL_H

#include <mproc.h>

#include <stdio.h>

/* Returns -1 from the calling function, after saying why, unless call is 0. */
#define CHECK(call)                                                                                \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != 0) {                                                                            \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, mproc_err_name(rc_));    \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

/* close + join + free; 0 or -1. */
int bench_pool_end(mproc_pool *pool);

/* A task that does nothing (its result has no bytes). */
int bench_noop_task(const void *arg, size_t arglen, mproc_result *res);

/* One apply_async of bench_noop_task and the wait for its result; 0 or -1. */
int bench_apply_wait(mproc_pool *pool);

/* Waits for fs[0..k), checks that each succeeded, frees them; 0 or -1. */
int bench_wait_all(mproc_future **fs, long k);

/* executor.submit.pipelined's loop, for any executor: a warm-up task,
 * then batches of 10 000 no-op tasks in flight (BENCH_QUICK: 1 000), each
 * batch waited for and checked; *secs: the time of n at the rate
 * measured. Shuts ex down (wait) and frees it, also on failure; 0 or -1. */
int bench_submit_pipelined(mproc_executor *ex, long n, double *secs);

#endif
