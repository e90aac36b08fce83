/* executor_futures — C twin of seed 004's "Concurrent Executors and
 * Futures": ThreadPoolExecutor and ProcessPoolExecutor, submit, and the
 * Future methods done, result, add_done_callback, exception and
 * cancelled, plus as_completed.
 *
 * The seed gives only fragments (`with ThreadPoolExecutor(max_workers=4)
 * as executor:`, the same with ProcessPoolExecutor, and
 * `future = executor.submit(function, arg1, arg2)`, `if future.done():
 * print("Task completed")`, `result = future.result()`), so this Python
 * program, built from them, stands for the example:
 *
 *     import time
 *     from concurrent.futures import (ThreadPoolExecutor,
 *                                     ProcessPoolExecutor, as_completed)
 *
 *     def power(base, exp):
 *         time.sleep(0.5)
 *         return base ** exp
 *
 *     def slow_power(base, exp):
 *         time.sleep(0.1 * (5 - exp))  # the larger exp, the sooner done
 *         return base ** exp
 *
 *     def divide(a, b):
 *         return a / b
 *
 *     def run(executor_class):
 *         print(f'--- {executor_class.__name__} ---')
 *         with executor_class(max_workers=4) as executor:
 *             future = executor.submit(power, 2, 10)  # Returns immediately
 *
 *             # Check if done without blocking
 *             if future.done():
 *                 print("Task completed")
 *             else:
 *                 print("Task not done yet")
 *
 *             # Get result (will block until ready)
 *             result = future.result()
 *             print('result:', result)
 *             print('done:', future.done())
 *             future.add_done_callback(
 *                 lambda f: print('callback: result', f.result()))
 *
 *             futures = {executor.submit(slow_power, 3, n): n
 *                        for n in range(1, 5)}
 *             for f in as_completed(futures):
 *                 print(f'as_completed: 3 ** {futures[f]} = {f.result()}')
 *
 *             bad = executor.submit(divide, 1, 0)
 *             print('exception:', bad.exception())
 *             print('cancelled:', bad.cancelled())
 *
 *     if __name__ == '__main__':
 *         run(ThreadPoolExecutor)
 *         run(ProcessPoolExecutor)
 *
 * Output (the as_completed lines come in completion order, usually this
 * one):
 *
 *     --- ThreadPoolExecutor ---
 *     Task not done yet
 *     result: 1024
 *     done: True
 *     callback: result 1024
 *     as_completed: 3 ** 4 = 81
 *     as_completed: 3 ** 3 = 27
 *     as_completed: 3 ** 2 = 9
 *     as_completed: 3 ** 1 = 3
 *     exception: division by zero
 *     cancelled: False
 *     --- ProcessPoolExecutor ---
 *     (the same nine lines)
 *
 * In C one task function serves both executors: it gets its arguments as
 * bytes (a struct of the two numbers; under spawn and forkserver a process
 * worker is a new program image, so no pointers) and sets its result
 * bytes. A future's done callback added after it is done runs at once, in
 * the caller's thread, as in Python. A task that fails returns
 * mproc_task_fail(...); exception() is mproc_future_error, whose message
 * is the one the task gave (MPROC_ENOENT: no exception, Python's None).
 * The `with` block's exit is mproc_executor_shutdown(wait=true).
 */
#include <mproc.h>

#include <stdio.h>
#include <unistd.h>

static long ipow(long base, long exp)
{
    long r = 1;
    while (exp-- > 0) r *= base;
    return r;
}

/* The tasks' two arguments arrive as an array of two longs (x[0], x[1]). */
#define TWO_LONGS(arg, arglen)                                                                     \
    if ((arglen) != 2 * sizeof(long)) return mproc_task_fail("expected two longs");                \
    const long *x = (arg)

/* def power(base, exp): time.sleep(0.5); return base ** exp */
static int power(const void *arg, size_t arglen, mproc_result *res)
{
    TWO_LONGS(arg, arglen);
    usleep(500 * 1000);
    long r = ipow(x[0], x[1]);
    return mproc_result_set(res, &r, sizeof r);
}

/* def slow_power(base, exp): time.sleep(0.1 * (5 - exp)); return base ** exp */
static int slow_power(const void *arg, size_t arglen, mproc_result *res)
{
    TWO_LONGS(arg, arglen);
    usleep((useconds_t)(100 * 1000 * (5 - x[1])));
    long r = ipow(x[0], x[1]);
    return mproc_result_set(res, &r, sizeof r);
}

/* def divide(a, b): return a / b (ZeroDivisionError when b is 0) */
static int divide(const void *arg, size_t arglen, mproc_result *res)
{
    TWO_LONGS(arg, arglen);
    if (x[1] == 0) return mproc_task_fail("division by zero");
    double q = (double)x[0] / (double)x[1];
    return mproc_result_set(res, &q, sizeof q);
}

/* f.result() for a long result (the tasks above set one long). */
static long result_long(mproc_future *f)
{
    const void *buf;
    MPROC_CHECK(mproc_future_result(f, &buf, NULL, MPROC_FOREVER));
    return *(const long *)buf;
}

/* lambda f: print('callback: result', f.result()) */
static void print_result(mproc_future *f, void *userdata)
{
    (void)userdata;
    printf("callback: result %ld\n", result_long(f));
}

static const char *py_bool(bool b)
{
    return b ? "True" : "False";
}

/* executor.submit(fn, a, b) */
static mproc_future *submit(mproc_executor *ex, mproc_task_fn fn, long a, long b)
{
    long x[2] = {a, b};
    mproc_future *f;
    MPROC_CHECK(mproc_executor_submit(ex, fn, x, sizeof x, &f));
    return f;
}

static void run(const char *name, bool processes)
{
    printf("--- %s ---\n", name);

    /* with executor_class(max_workers=4) as executor: */
    mproc_executor *executor;
    const mproc_executor_opts opts = {.max_workers = 4};
    MPROC_CHECK(processes ? mproc_executor_new_process(&executor, &opts)
                          : mproc_executor_new_thread(&executor, &opts));

    /* future = executor.submit(power, 2, 10): returns at once. */
    mproc_future *future = submit(executor, power, 2, 10);
    /* Check if done without blocking. */
    printf(mproc_future_done(future) ? "Task completed\n" : "Task not done yet\n");
    /* result = future.result(): waits until it is ready. */
    printf("result: %ld\n", result_long(future));
    printf("done: %s\n", py_bool(mproc_future_done(future)));
    /* Already done: the callback runs now, in this thread. */
    MPROC_CHECK(mproc_future_add_done_callback(future, print_result, NULL));
    mproc_future_free(future);

    /* futures = {executor.submit(slow_power, 3, n): n for n in range(1, 5)} */
    mproc_future *futures[4];
    for (int n = 1; n <= 4; n++) futures[n - 1] = submit(executor, slow_power, 3, n);

    /* for f in as_completed(futures): ... futures[f] is the exponent. */
    mproc_as_completed *it;
    MPROC_CHECK(mproc_as_completed_new(&it, futures, 4));
    mproc_future *f;
    int rc;
    while ((rc = mproc_as_completed_next(it, &f, MPROC_FOREVER)) == 0) {
        int n = 1;
        while (futures[n - 1] != f) n++;
        printf("as_completed: 3 ** %d = %ld\n", n, result_long(f));
    }
    MPROC_CHECK(rc == MPROC_EEOF ? 0 : rc);
    mproc_as_completed_free(it);
    for (int i = 0; i < 4; i++) mproc_future_free(futures[i]);

    /* bad = executor.submit(divide, 1, 0)
     * print('exception:', bad.exception()): waits, then gives the error
     * (MPROC_ENOENT: no exception, Python's None). */
    mproc_future *bad = submit(executor, divide, 1, 0);
    MPROC_CHECK(mproc_future_wait(bad, MPROC_FOREVER));
    const char *msg = "None";
    rc = mproc_future_error(bad, NULL, &msg, NULL);
    MPROC_CHECK(rc == MPROC_ENOENT ? 0 : rc);
    printf("exception: %s\n", msg);
    printf("cancelled: %s\n", py_bool(mproc_future_cancelled(bad)));
    mproc_future_free(bad);

    /* Leaving the with block: shutdown(wait=True), as freeing does. */
    mproc_executor_free(executor);
}

int main(void)
{
    run("ThreadPoolExecutor", false);
    run("ProcessPoolExecutor", true);
    return 0;
}
