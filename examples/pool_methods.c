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
 * In C: map and imap_unordered take a map function (one input element in,
 * one output element out); imap_unordered reads its input from a producer
 * function, called as results are taken, so only a few items are in
 * flight. apply and apply_async take a task function, which gets its
 * argument bytes and sets its result bytes. An AsyncResult is an
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
#include <string.h>
#include <unistd.h>

/* Prints what failed and why, then exits: every mproc call is checked. */
static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "pool_methods: %s: %s\n", what, mproc_strerror(rc));
        exit(1);
    }
}

/* square(x) as a map function, for map and imap_unordered. */
static int square_map(const void *in, void *out)
{
    long x = *(const long *)in;
    *(long *)out = x * x;
    return 0;
}

/* square(x) as a task function, for apply. */
static int square_task(const void *arg, size_t arglen, mproc_result *res)
{
    long x;
    if (arglen != sizeof x) return mproc_task_fail("square: expected one long");
    memcpy(&x, arg, sizeof x);
    long r = x * x;
    return mproc_result_set(res, &r, sizeof r);
}

/* def slow_square(x): time.sleep(1); return x * x */
static int slow_square(const void *arg, size_t arglen, mproc_result *res)
{
    sleep(1);
    return square_task(arg, arglen, res);
}

/* def divide(a, b): return a / b. Its two arguments travel as one struct. */
struct divide_args {
    long a, b;
};

static int divide(const void *arg, size_t arglen, mproc_result *res)
{
    struct divide_args d;
    if (arglen != sizeof d) return mproc_task_fail("divide: expected (a, b)");
    memcpy(&d, arg, sizeof d);
    if (d.b == 0) return mproc_task_fail("division by zero"); /* ZeroDivisionError */
    double q = (double)d.a / (double)d.b;
    return mproc_result_set(res, &q, sizeof q);
}

/* The producer of range(5) for imap_unordered: writes the next number to
 * item and returns 1, or returns 0 at the end. */
static int produce_range(void *userdata, void *item)
{
    long *next = userdata;
    if (*next >= 5) return 0;
    *(long *)item = (*next)++;
    return 1;
}

/* Reads a future's result as one long (get). */
static long get_long(mproc_future *f, int timeout_ms)
{
    const void *buf;
    size_t len;
    check(mproc_future_result(f, &buf, &len, timeout_ms), "mproc_future_result");
    long r;
    if (buf == NULL || len != sizeof r) {
        fprintf(stderr, "pool_methods: expected a long result, got %zu bytes\n", len);
        exit(1);
    }
    memcpy(&r, buf, sizeof r);
    return r;
}

static const char *py_bool(bool b)
{
    return b ? "True" : "False";
}

int main(void)
{
    /* with Pool(processes=4) as pool: */
    mproc_pool *pool;
    check(mproc_pool_new(&pool, &(mproc_pool_opts){.processes = 4}), "mproc_pool_new");

    /* print('map:', pool.map(square, range(10))) */
    enum { N = 10 };
    long in[N], out[N];
    for (int i = 0; i < N; i++) in[i] = i;
    check(mproc_pool_map(pool, square_map, in, N, sizeof in[0], out, sizeof out[0], NULL),
          "mproc_pool_map");
    printf("map: [");
    for (int i = 0; i < N; i++) printf("%s%ld", i ? ", " : "", out[i]);
    printf("]\n");

    /* for r in pool.imap_unordered(square, range(5)):
     *     print('imap_unordered:', r) */
    long next = 0;
    mproc_imap *it;
    check(mproc_pool_imap(pool, square_map, sizeof(long), sizeof(long), produce_range, &next,
                          &(mproc_imap_opts){.unordered = true}, &it),
          "mproc_pool_imap");
    for (;;) {
        long r;
        int rc = mproc_imap_next(it, &r, NULL, MPROC_FOREVER);
        if (rc == MPROC_EEOF) break;
        check(rc, "mproc_imap_next");
        printf("imap_unordered: %ld\n", r);
    }
    mproc_imap_free(it);

    /* print('apply:', pool.apply(square, (7,))) */
    long seven = 7;
    void *buf;
    size_t len;
    check(mproc_pool_apply(pool, square_task, &seven, sizeof seven, &buf, &len),
          "mproc_pool_apply");
    long applied;
    if (buf == NULL || len != sizeof applied) {
        fprintf(stderr, "pool_methods: apply returned %zu bytes\n", len);
        return 1;
    }
    memcpy(&applied, buf, sizeof applied);
    free(buf);
    printf("apply: %ld\n", applied);

    /* result = pool.apply_async(slow_square, (8,)) */
    long eight = 8;
    mproc_future *result;
    check(mproc_pool_apply_async(pool, slow_square, &eight, sizeof eight, NULL, &result),
          "mproc_pool_apply_async");
    printf("ready: %s\n", py_bool(mproc_future_done(result)));

    /* result.get(timeout=0.1) raises TimeoutError: not done yet. */
    int rc = mproc_future_result(result, NULL, NULL, 100);
    if (rc != MPROC_ETIMEDOUT) {
        fprintf(stderr, "pool_methods: get(timeout=0.1) gave %s, not MPROC_ETIMEDOUT\n",
                rc == 0 ? "a result" : mproc_strerror(rc));
        return 1;
    }
    printf("get(timeout=0.1): TimeoutError\n");

    printf("get: %ld\n", get_long(result, 5000));
    printf("ready: %s\n", py_bool(mproc_future_done(result)));
    printf("successful: %s\n", py_bool(mproc_future_successful(result)));
    mproc_future_free(result);

    /* bad = pool.apply_async(divide, (1, 0)); bad.wait() */
    mproc_future *bad;
    struct divide_args d = {1, 0};
    check(mproc_pool_apply_async(pool, divide, &d, sizeof d, NULL, &bad), "mproc_pool_apply_async");
    check(mproc_future_wait(bad, MPROC_FOREVER), "mproc_future_wait");
    printf("ready: %s\n", py_bool(mproc_future_done(bad)));
    printf("successful: %s\n", py_bool(mproc_future_successful(bad)));

    /* bad.get() raises the task's error: MPROC_ETASK, with its message. */
    rc = mproc_future_result(bad, NULL, NULL, MPROC_FOREVER);
    if (rc != MPROC_ETASK) {
        fprintf(stderr, "pool_methods: divide(1, 0) gave %s, not MPROC_ETASK\n",
                mproc_strerror(rc));
        return 1;
    }
    const char *msg;
    check(mproc_future_error(bad, NULL, &msg, NULL), "mproc_future_error");
    printf("get failed: %s\n", msg);
    mproc_future_free(bad);

    /* Leaving the with block: Pool.__exit__ terminates the pool. Every task
     * is done, so close and join (the clean way) end it the same. */
    check(mproc_pool_close(pool), "mproc_pool_close");
    check(mproc_pool_join(pool, MPROC_FOREVER), "mproc_pool_join");
    mproc_pool_free(pool);
    return 0;
}
