/* Compiled by tests/pool/typed_mismatch.cmake, never linked: with
 * -DMISMATCH=n the short form n passes arrays whose element types are not
 * the function's (6: MPROC_FREE is given a process), and must not
 * compile; without it, every form compiles. */
#include "mproc.h"

static int64_t cube(int64_t x)
{
    return x * x * x;
}

static double twice(double x)
{
    return 2 * x;
}

int use(mproc_pool *p, mproc_imap **it);
int use(mproc_pool *p, mproc_imap **it)
{
    int64_t i64[4] = {0};
    double f64[4] = {0};
    (void)i64;
    (void)f64;
#if !defined(MISMATCH)
    return MPROC_POOL_MAP(p, cube, i64, 4, i64) | MPROC_POOL_MAP(p, twice, f64, 4, f64) |
           MPROC_POOL_MAP_RANGE(p, cube, MPROC_RANGE(4), i64) |
           MPROC_POOL_IMAP(p, twice, f64, 4, NULL, it) |
           MPROC_POOL_IMAP_RANGE(p, cube, MPROC_RANGE(1, 9, 2), NULL, it) |
           MPROC_POOL_APPLY(p, cube, i64, i64) | MPROC_POOL_APPLY_ASYNC(p, twice, f64, f64, NULL);
#elif MISMATCH == 1
    return MPROC_POOL_MAP(p, cube, i64, 4, f64); /* double results of an int64_t function */
#elif MISMATCH == 2
    return MPROC_POOL_MAP(p, cube, f64, 4, i64); /* double inputs */
#elif MISMATCH == 3
    return MPROC_POOL_MAP_RANGE(p, twice, MPROC_RANGE(4), f64); /* a range to a double fn */
#elif MISMATCH == 4
    return MPROC_POOL_IMAP(p, cube, f64, 4, NULL, it);
#elif MISMATCH == 5
    return MPROC_POOL_IMAP_RANGE(p, twice, MPROC_RANGE(4), NULL, it);
#else
    mproc_process *proc = NULL;
    MPROC_FREE(proc); /* a process is not among MPROC_FREE's types */
    return 0;
#endif
}
