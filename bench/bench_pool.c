/* A pool's plain operations for the pool rows (bench_pool.h). */
#include "bench_pool.h"
#include "bench_util.h"

#include <stdlib.h>

int bench_pool_end(mproc_pool *pool)
{
    int rc = mproc_pool_close(pool);
    if (rc == 0) rc = mproc_pool_join(pool, MPROC_FOREVER);
    mproc_pool_free(pool);
    CHECK(rc);
    return 0;
}

int bench_noop_task(const void *arg, size_t arglen, mproc_result *res)
{
    (void)arg, (void)arglen, (void)res;
    return 0;
}

int bench_apply_wait(mproc_pool *pool)
{
    mproc_future *f;
    CHECK(mproc_pool_apply_async(pool, bench_noop_task, NULL, 0, NULL, &f));
    int rc = mproc_future_result(f, NULL, NULL, MPROC_FOREVER);
    mproc_future_free(f);
    CHECK(rc);
    return 0;
}

int bench_wait_all(mproc_future **fs, long k)
{
    int rc = mproc_futures_wait(fs, (size_t)k, MPROC_FOREVER, MPROC_ALL_COMPLETED, NULL);
    for (long i = 0; i < k; i++) {
        int r = mproc_future_result(fs[i], NULL, NULL, 0);
        if (rc == 0) rc = r;
        mproc_future_free(fs[i]);
    }
    CHECK(rc);
    return 0;
}

int bench_submit_pipelined(mproc_executor *ex, long n, double *secs)
{
    long batch = bench_quick() ? 1000 : 10000, nb = (n + batch - 1) / batch;
    mproc_future **fs = malloc((size_t)batch * sizeof *fs);
    int bad = !fs || mproc_executor_submit(ex, bench_noop_task, NULL, 0, &fs[0]) != 0 ||
              bench_wait_all(fs, 1) != 0; /* warm-up, off the clock */
    double t0 = bench_now();
    for (long b = 0; b < nb && !bad; b++) {
        long k = 0;
        int rc = 0;
        for (; k < batch && rc == 0; k++)
            rc = mproc_executor_submit(ex, bench_noop_task, NULL, 0, &fs[k]);
        if (rc != 0) {
            fprintf(stderr, "mproc_executor_submit: %s\n", mproc_err_name(rc));
            k--;
            bad = 1;
        }
        bad |= bench_wait_all(fs, k) != 0;
    }
    *secs = (bench_now() - t0) * (double)n / ((double)nb * (double)batch);
    free(fs);
    int rc = mproc_executor_shutdown(ex, true, false);
    mproc_executor_free(ex);
    CHECK(rc);
    return bad ? -1 : 0;
}
