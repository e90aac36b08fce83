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
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Prints what failed and why, then exits: every mproc call is checked. */
static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "executor_futures: %s: %s\n", what, mproc_strerror(rc));
        exit(1);
    }
}

/* The two arguments of power, slow_power and divide. */
struct args {
    long a, b;
};

static int get_args(const void *arg, size_t arglen, struct args *out)
{
    if (arglen != sizeof *out) return mproc_task_fail("expected two longs, got %zu bytes", arglen);
    memcpy(out, arg, sizeof *out);
    return 0;
}

static long ipow(long base, long exp)
{
    long r = 1;
    while (exp-- > 0) r *= base;
    return r;
}

/* def power(base, exp): time.sleep(0.5); return base ** exp */
static int power(const void *arg, size_t arglen, mproc_result *res)
{
    struct args x;
    int rc = get_args(arg, arglen, &x);
    if (rc < 0) return rc;
    usleep(500 * 1000);
    long r = ipow(x.a, x.b);
    return mproc_result_set(res, &r, sizeof r);
}

/* def slow_power(base, exp): time.sleep(0.1 * (5 - exp)); return base ** exp */
static int slow_power(const void *arg, size_t arglen, mproc_result *res)
{
    struct args x;
    int rc = get_args(arg, arglen, &x);
    if (rc < 0) return rc;
    usleep((useconds_t)(100 * 1000 * (5 - x.b)));
    long r = ipow(x.a, x.b);
    return mproc_result_set(res, &r, sizeof r);
}

/* def divide(a, b): return a / b (ZeroDivisionError when b is 0) */
static int divide(const void *arg, size_t arglen, mproc_result *res)
{
    struct args x;
    int rc = get_args(arg, arglen, &x);
    if (rc < 0) return rc;
    if (x.b == 0) return mproc_task_fail("division by zero");
    double q = (double)x.a / (double)x.b;
    return mproc_result_set(res, &q, sizeof q);
}

/* f.result() for a long result. */
static long result_long(mproc_future *f)
{
    const void *buf;
    size_t len;
    check(mproc_future_result(f, &buf, &len, MPROC_FOREVER), "mproc_future_result");
    long r;
    if (buf == NULL || len != sizeof r) {
        fprintf(stderr, "executor_futures: expected a long result, got %zu bytes\n", len);
        exit(1);
    }
    memcpy(&r, buf, sizeof r);
    return r;
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
    struct args x = {a, b};
    mproc_future *f;
    check(mproc_executor_submit(ex, fn, &x, sizeof x, &f), "mproc_executor_submit");
    return f;
}

static void run(const char *name, bool processes)
{
    printf("--- %s ---\n", name);

    /* with executor_class(max_workers=4) as executor: */
    mproc_executor *executor;
    const mproc_executor_opts opts = {.max_workers = 4};
    if (processes)
        check(mproc_executor_new_process(&executor, &opts), "mproc_executor_new_process");
    else
        check(mproc_executor_new_thread(&executor, &opts), "mproc_executor_new_thread");

    /* future = executor.submit(power, 2, 10): returns at once. */
    mproc_future *future = submit(executor, power, 2, 10);

    /* Check if done without blocking. */
    if (mproc_future_done(future))
        printf("Task completed\n");
    else
        printf("Task not done yet\n");

    /* result = future.result(): waits until it is ready. */
    printf("result: %ld\n", result_long(future));
    printf("done: %s\n", py_bool(mproc_future_done(future)));
    /* Already done: the callback runs now, in this thread. */
    check(mproc_future_add_done_callback(future, print_result, NULL),
          "mproc_future_add_done_callback");
    mproc_future_free(future);

    /* futures = {executor.submit(slow_power, 3, n): n for n in range(1, 5)} */
    enum { NF = 4 };
    mproc_future *futures[NF];
    long exps[NF];
    for (int i = 0; i < NF; i++) {
        exps[i] = i + 1;
        futures[i] = submit(executor, slow_power, 3, exps[i]);
    }

    /* for f in as_completed(futures): ... futures[f] is the exponent. */
    mproc_as_completed *it;
    check(mproc_as_completed_new(&it, futures, NF), "mproc_as_completed_new");
    for (;;) {
        mproc_future *f;
        int rc = mproc_as_completed_next(it, &f, MPROC_FOREVER);
        if (rc == MPROC_EEOF) break;
        check(rc, "mproc_as_completed_next");
        int i = 0;
        while (futures[i] != f) i++;
        printf("as_completed: 3 ** %ld = %ld\n", exps[i], result_long(f));
    }
    mproc_as_completed_free(it);
    for (int i = 0; i < NF; i++) mproc_future_free(futures[i]);

    /* bad = executor.submit(divide, 1, 0)
     * print('exception:', bad.exception()): waits, then gives the error. */
    mproc_future *bad = submit(executor, divide, 1, 0);
    check(mproc_future_wait(bad, MPROC_FOREVER), "mproc_future_wait");
    const char *msg;
    int rc = mproc_future_error(bad, NULL, &msg, NULL);
    if (rc == MPROC_ENOENT)
        printf("exception: None\n");
    else {
        check(rc, "mproc_future_error");
        printf("exception: %s\n", msg);
    }
    printf("cancelled: %s\n", py_bool(mproc_future_cancelled(bad)));
    mproc_future_free(bad);

    /* Leaving the with block: shutdown(wait=True). */
    check(mproc_executor_shutdown(executor, true, false), "mproc_executor_shutdown");
    mproc_executor_free(executor);
}

int main(void)
{
    run("ThreadPoolExecutor", false);
    run("ProcessPoolExecutor", true);
    return 0;
}
