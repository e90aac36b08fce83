/* A pool's plain operations for the pool rows (bench_pool.h). */
#include "bench_pool.h"

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
