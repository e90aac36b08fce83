/* pool_methods — C twin of seed 004's "A pool of workers" section (its
 * practical example 11): the Pool methods map, imap_unordered, apply and
 * apply_async, and the AsyncResult methods get, ready and successful.
 *
 * The seed describes these methods but does not include the example's
 * code, so this Python program, which uses each method as the seed
 * describes it, stands for it:
 *
 *     import time
 *     from multiprocessing import Pool, TimeoutError
 *
 *     def square(x):
 *         return x * x
 *
 *     def slow_square(x):
 *         time.sleep(1)
 *         return x * x
 *
 *     def divide(a, b):
 *         return a / b
 *
 *     if __name__ == '__main__':
 *         with Pool(processes=4) as pool:
 *             print('map:', pool.map(square, range(10)))
 *             for r in pool.imap_unordered(square, range(5)):
 *                 print('imap_unordered:', r)
 *             print('apply:', pool.apply(square, (7,)))
 *             result = pool.apply_async(slow_square, (8,))
 *             print('ready:', result.ready())
 *             try:
 *                 result.get(timeout=0.1)
 *             except TimeoutError:
 *                 print('get(timeout=0.1): TimeoutError')
 *             print('get:', result.get(timeout=5))
 *             print('ready:', result.ready())
 *             print('successful:', result.successful())
 *             bad = pool.apply_async(divide, (1, 0))
 *             bad.wait()
 *             print('ready:', bad.ready())
 *             print('successful:', bad.successful())
 *             try:
 *                 bad.get()
 *             except ZeroDivisionError as e:
 *                 print('get failed:', e)
 *
 * Output (the imap_unordered lines come in any order):
 *
 *     map: [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]
 *     imap_unordered: 0
 *     imap_unordered: 1
 *     imap_unordered: 4
 *     imap_unordered: 9
 *     imap_unordered: 16
 *     apply: 49
 *     ready: False
 *     get(timeout=0.1): TimeoutError
 *     get: 64
 *     ready: True
 *     successful: True
 *     ready: True
 *     successful: False
 *     get failed: division by zero
 *
 * In C: map and imap_unordered take a typed function, int64_t
 * square(int64_t), over range(10) and range(5): MPROC_POOL_MAP_RANGE
 * fills an int64_t array, MPROC_POOL_IMAP_RANGE gives an iterator whose
 * results are int64_t (unordered: in completion order), with only a few
 * items in flight. apply and apply_async take a task function, which gets
 * its argument bytes and sets its result bytes. An AsyncResult is an
 * mproc_future: get is mproc_future_result (MPROC_ETIMEDOUT when the
 * time is up, the task's error when it failed), ready is
 * mproc_future_done, successful is mproc_future_successful. Python's
 * ZeroDivisionError becomes a task that fails with mproc_task_fail; its
 * message comes back through mproc_future_error. slow_square sleeps 1 s so
 * that it is surely not ready just after it was submitted.
 */
#include <mproc.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* def square(x): return x * x, for map and imap_unordered. */
static int64_t square(int64_t x)
{
    return x * x;
}

/* def slow_square(x): time.sleep(1); return x * x */
static int64_t slow_square(int64_t x)
{
    sleep(1);
    return x * x;
}

/* def divide(a, b): return a / b. Its two arguments travel as one array. */
static int divide(const void *arg, size_t arglen, mproc_result *res)
{
    if (arglen != 2 * sizeof(long)) return mproc_task_fail("divide: expected (a, b)");
    const long *ab = arg;
    if (ab[1] == 0) return mproc_task_fail("division by zero"); /* ZeroDivisionError */
    double q = (double)ab[0] / (double)ab[1];
    return mproc_result_set(res, &q, sizeof q);
}

static const char *py_bool(bool b)
{
    return b ? "True" : "False";
}

int main(void)
{
    /* with Pool(processes=4) as pool: */
    mproc_pool *pool;
    MPROC_CHECK(mproc_pool_new(&pool, &(mproc_pool_opts){.processes = 4}));

    /* print('map:', pool.map(square, range(10))) */
    int64_t out[10];
    MPROC_CHECK(MPROC_POOL_MAP_RANGE(pool, square, MPROC_RANGE(10), out));
    for (int i = 0; i < 10; i++) printf("%s%lld", i ? ", " : "map: [", (long long)out[i]);
    printf("]\n");

    /* for r in pool.imap_unordered(square, range(5)): print('imap_unordered:', r) */
    mproc_imap *it;
    MPROC_CHECK(MPROC_POOL_IMAP_RANGE(pool, square, MPROC_RANGE(5),
                                      &(mproc_imap_opts){.unordered = true}, &it));
    int64_t r;
    int rc;
    while ((rc = mproc_imap_next(it, &r, NULL, MPROC_FOREVER)) == 0)
        printf("imap_unordered: %lld\n", (long long)r);
    MPROC_CHECK(rc == MPROC_EEOF ? 0 : rc);
    mproc_imap_free(it);

    /* print('apply:', pool.apply(square, (7,))) */
    MPROC_CHECK(MPROC_POOL_APPLY(pool, square, &(int64_t){7}, &r));
    printf("apply: %lld\n", (long long)r);

    /* result = pool.apply_async(slow_square, (8,)); print('ready:', result.ready()) */
    mproc_future *result;
    MPROC_CHECK(MPROC_POOL_APPLY_ASYNC(pool, slow_square, &(int64_t){8}, &r, &result));
    printf("ready: %s\n", py_bool(mproc_future_done(result)));

    /* result.get(timeout=0.1) raises TimeoutError: not done yet. */
    if (mproc_future_wait(result, 100) == MPROC_ETIMEDOUT)
        printf("get(timeout=0.1): TimeoutError\n");

    /* print('get:', result.get(timeout=5)): r is written once it is done. */
    MPROC_CHECK(mproc_future_result(result, NULL, NULL, 5000));
    printf("get: %lld\n", (long long)r);
    printf("ready: %s\n", py_bool(mproc_future_done(result)));
    printf("successful: %s\n", py_bool(mproc_future_successful(result)));
    mproc_future_free(result);

    /* bad = pool.apply_async(divide, (1, 0)); bad.wait() */
    mproc_future *bad;
    long args[2] = {1, 0};
    MPROC_CHECK(mproc_pool_apply_async(pool, divide, args, sizeof args, NULL, &bad));
    MPROC_CHECK(mproc_future_wait(bad, MPROC_FOREVER));
    printf("ready: %s\n", py_bool(mproc_future_done(bad)));
    printf("successful: %s\n", py_bool(mproc_future_successful(bad)));

    /* bad.get() raises the task's error (MPROC_ETASK), with its message. */
    const char *msg;
    if (mproc_future_result(bad, NULL, NULL, MPROC_FOREVER) == MPROC_ETASK &&
        mproc_future_error(bad, NULL, &msg, NULL) == 0)
        printf("get failed: %s\n", msg);
    mproc_future_free(bad);

    /* Leaving the with block: Pool.__exit__ terminates the pool, as freeing
     * an open pool does. */
    mproc_pool_free(pool);
    return 0;
}
