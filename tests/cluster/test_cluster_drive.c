/* A thread that waits on a cluster task's future makes the MPI calls
 * itself (src/cluster/root.c, drive), and rank 0's thread steps aside.
 * Run under mpiexec -n N (N >= 2): rank 0 checks that no waiting pattern
 * loses a result or hangs. Each wait is bounded, so a hang fails. */
#include <mproc.h>
#include <mproc/cluster.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clutil.h"

static int square(const void *arg, size_t len, mproc_result *res)
{
    long x;
    if (len != sizeof x) return mproc_task_fail("want %zu bytes, got %zu", sizeof x, len);
    memcpy(&x, arg, sizeof x);
    x *= x;
    return mproc_result_set(res, &x, sizeof x);
}

/* Sleeps the milliseconds it is given. */
static int nap(const void *arg, size_t len, mproc_result *res)
{
    (void)res;
    int ms = 0;
    if (len == sizeof ms) memcpy(&ms, arg, sizeof ms);
    nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000L}, NULL);
    return 0;
}

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* n round trips, each checked; 0 or the first failure. */
static int round_trips(mproc_pool *c, long n)
{
    for (long i = 0; i < n; i++) {
        long r = 0;
        size_t len = 0;
        mproc_future *f;
        int rc = mproc_pool_apply_async(c, square, &i, sizeof i, NULL, &f);
        if (rc) return rc;
        const void *buf;
        rc = mproc_future_result(f, &buf, &len, 20000);
        if (rc == 0 && len == sizeof r) memcpy(&r, buf, sizeof r);
        mproc_future_free(f);
        if (rc) return rc;
        if (len != sizeof r || r != i * i) return MPROC_EPROTO;
    }
    return 0;
}

/* A task that runs longer than a caller drives: the caller hands the
 * calls back to rank 0's thread and sleeps; the result still comes. */
static void test_long_task(mproc_pool *c)
{
    int ms = 300;
    mproc_future *f;
    CHECK(mproc_pool_apply_async(c, nap, &ms, sizeof ms, NULL, &f) == 0, "submit");
    long long t0 = now_ms();
    int rc = mproc_future_result(f, NULL, NULL, 20000);
    long long took = now_ms() - t0;
    mproc_future_free(f);
    CHECK(rc == 0 && took >= 250, "a 300 ms task: %s after %lld ms", mproc_strerror(rc), took);
}

/* A wait that times out while it drives returns at its deadline, and the
 * task's result comes to a later wait. */
static void test_timeout_while_driving(mproc_pool *c)
{
    int ms = 400;
    mproc_future *f;
    CHECK(mproc_pool_apply_async(c, nap, &ms, sizeof ms, NULL, &f) == 0, "submit");
    long long t0 = now_ms();
    int rc = mproc_future_wait(f, 50);
    long long took = now_ms() - t0;
    if (rc != MPROC_ETIMEDOUT || took > 300) mproc_future_wait(f, 20000);
    CHECK(rc == MPROC_ETIMEDOUT && took < 300, "wait 50 ms: %s after %lld ms", mproc_strerror(rc),
          took);
    rc = mproc_future_wait(f, 20000);
    mproc_future_free(f);
    CHECK(rc == 0, "then: %s", mproc_strerror(rc));
}

/* After round trips (callers drive lately, so rank 0's thread is not
 * woken when a task is queued), a task nobody waits for still ends: its
 * done callback runs within bounded time, from rank 0's thread. */
static atomic_int called;

static void on_done(mproc_future *f, void *ud)
{
    (void)f;
    (void)ud;
    atomic_fetch_add(&called, 1);
}

static void test_nobody_waits(mproc_pool *c)
{
    CHECK(round_trips(c, 200) == 0, "round trips");
    for (int k = 0; k < 3; k++) {
        atomic_store(&called, 0);
        long x = 5;
        mproc_future *f;
        CHECK(mproc_pool_apply_async(c, square, &x, sizeof x,
                                     &(mproc_task_opts){.callback = on_done}, &f) == 0,
              "submit");
        long long t0 = now_ms();
        while (atomic_load(&called) == 0 && now_ms() - t0 < 10000)
            nanosleep(&(struct timespec){0, 200000}, NULL);
        long long took = now_ms() - t0;
        bool done = mproc_future_done(f);
        mproc_future_wait(f, 20000);
        mproc_future_free(f);
        CHECK(atomic_load(&called) == 1 && done && took < 2000,
              "a task nobody waits for: callback %d, done %d after %lld ms", atomic_load(&called),
              done, took);
        CHECK(round_trips(c, 50) == 0, "round trips between");
    }
}

/* Threads that wait at once: one drives, the others sleep on their
 * futures, which the driver or rank 0's thread completes. */
typedef struct waiter {
    mproc_pool *c;
    int rc;
} waiter;

static void *waiter_main(void *arg)
{
    waiter *w = arg;
    w->rc = round_trips(w->c, 3000);
    return NULL;
}

static void test_threads_wait(mproc_pool *c)
{
    enum { T = 3 };
    waiter ws[T];
    pthread_t th[T];
    for (int i = 0; i < T; i++) {
        ws[i] = (waiter){.c = c};
        CHECK(pthread_create(&th[i], NULL, waiter_main, &ws[i]) == 0, "thread");
    }
    for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < T; i++) CHECK(ws[i].rc == 0, "thread %d: %s", i, mproc_strerror(ws[i].rc));
}

/* Many tasks with callbacks, waited for in one call: the callbacks of the
 * tasks that end while the caller drives run in it, each exactly once. */
static atomic_int cb_count;
static atomic_long cb_sum;

static void add_result(mproc_future *f, void *ud)
{
    (void)ud;
    const void *buf;
    size_t len;
    if (mproc_future_result(f, &buf, &len, 0) == 0 && len == sizeof(long))
        atomic_fetch_add(&cb_sum, *(const long *)buf);
    atomic_fetch_add(&cb_count, 1);
}

static void test_callbacks_in_driver(mproc_pool *c)
{
    enum { N = 2000 };
    static mproc_future *fs[N];
    atomic_store(&cb_count, 0);
    atomic_store(&cb_sum, 0);
    long want = 0;
    for (long i = 0; i < N; i++) {
        want += i * i;
        CHECK(mproc_pool_apply_async(c, square, &i, sizeof i,
                                     &(mproc_task_opts){.callback = add_result}, &fs[i]) == 0,
              "submit %ld", i);
    }
    size_t ndone = 0;
    int rc = mproc_futures_wait(fs, N, 60000, MPROC_ALL_COMPLETED, &ndone);
    for (long i = 0; i < N; i++) mproc_future_free(fs[i]);
    CHECK(rc == 0 && ndone == N, "futures_wait: %s, %zu done", mproc_strerror(rc), ndone);
    /* A callback runs after its future is done: the last may still run. */
    long long t0 = now_ms();
    while (atomic_load(&cb_count) < N && now_ms() - t0 < 10000)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    CHECK(atomic_load(&cb_count) == N && atomic_load(&cb_sum) == want,
          "callbacks: %d of %d, sum %ld of %ld", atomic_load(&cb_count), N, atomic_load(&cb_sum),
          want);
}

int main(int argc, char **argv)
{
    int rc = mproc_cluster_init(&argc, &argv);
    if (rc) {
        fprintf(stderr, "test_cluster_drive: mproc_cluster_init: %s\n", mproc_strerror(rc));
        return 1;
    }
    mproc_pool *c;
    if ((rc = mproc_cluster_pool_new(&c, NULL))) {
        fprintf(stderr, "test_cluster_drive: pool: %s\n", mproc_strerror(rc));
        return 1;
    }
    int bad = round_trips(c, 5000);
    if (bad) {
        fprintf(stderr, "test_cluster_drive: round trips: %s\n", mproc_strerror(bad));
        failures++;
    }
    test_long_task(c);
    test_timeout_while_driving(c);
    test_nobody_waits(c);
    test_threads_wait(c);
    test_callbacks_in_driver(c);
    mproc_pool_close(c);
    if ((rc = mproc_pool_join(c, 60000))) failures++;
    mproc_pool_free(c);
    if ((rc = mproc_cluster_shutdown())) {
        fprintf(stderr, "test_cluster_drive: shutdown: %s\n", mproc_strerror(rc));
        failures++;
    }
    printf("test_cluster_drive: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
