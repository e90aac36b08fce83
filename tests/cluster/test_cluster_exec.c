/* The cluster's task engine beyond apply and map (mproc/cluster.h), in
 * world mode under mpiexec -n N (N >= 2): imap and its forms, typed maps,
 * value tasks, the executor over ranks (submit, map, callbacks, wait,
 * as_completed, shutdown with tasks in flight, cancel_futures), task time
 * limits, and the hybrid layout. Each result is compared with a process
 * pool's (or process executor's) on the same inputs. Rank 0 exits non-zero
 * on a failure; the other ranks serve, then exit 0 at shutdown. */
#include <mproc.h>
#include <mproc/cluster.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clutil.h"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int square(const void *arg, size_t len, mproc_result *res)
{
    long x;
    if (len != sizeof x) return mproc_task_fail("want %zu bytes, got %zu", sizeof x, len);
    memcpy(&x, arg, sizeof x);
    if (x == 13) return mproc_task_fail("bad input %ld", x);
    x *= x;
    return mproc_result_set(res, &x, sizeof x);
}

/* Sleeps the argument's milliseconds, returns it. */
static int sleeper(const void *arg, size_t len, mproc_result *res)
{
    long ms = 0;
    if (len == sizeof ms) memcpy(&ms, arg, sizeof ms);
    sleep_ms(ms);
    return mproc_result_set(res, &ms, sizeof ms);
}

/* Sleeps the argument's milliseconds, returns its pid. */
static int whoami(const void *arg, size_t len, mproc_result *res)
{
    long ms = 0;
    if (len == sizeof ms) memcpy(&ms, arg, sizeof ms);
    sleep_ms(ms);
    pid_t me = getpid();
    return mproc_result_set(res, &me, sizeof me);
}

static int cube(const void *in, void *out)
{
    long x = *(const long *)in;
    if (x == 777) return mproc_task_fail("no cube for %ld", x);
    if (x == -1) sleep_ms(5000); /* past any time limit of these tests */
    *(long *)out = x * x * x;
    return 0;
}

static int64_t tcube(int64_t x)
{
    return x * x * x;
}

static double half(int64_t x)
{
    return x / 2.0;
}

static int value_double(const mproc_value *arg, mproc_value **result)
{
    int64_t i = 0;
    if (mproc_value_get_int(arg, &i) != 0) return mproc_task_fail("not an int");
    if (i == 13) return mproc_task_fail("no double for %lld", (long long)i);
    *result = mproc_value_int(2 * i);
    return *result ? 0 : MPROC_ENOMEM;
}

/* ---- imap ---------------------------------------------------------------------- */

typedef struct counter {
    long next, n;
    size_t *delivered;
    size_t max_inflight, worst; /* the most items produced and not yet delivered */
} counter;

static int produce(void *ud, void *item)
{
    counter *c = ud;
    if (c->next >= c->n) return 0;
    size_t ahead = (size_t)c->next + 1 - *c->delivered;
    if (ahead > c->worst) c->worst = ahead;
    long x = c->next++;
    memcpy(item, &x, sizeof x);
    return 1;
}

enum { IN = 200 };

/* Runs an imap of cube over 0..IN-1 on p: out[i] and rcs[i] by index. */
static int imap_all(mproc_pool *p, const mproc_imap_opts *o, long *out, int *rcs, size_t *worst)
{
    size_t delivered = 0;
    counter c = {.n = IN, .delivered = &delivered};
    mproc_imap *it;
    int rc = mproc_pool_imap(p, cube, sizeof(long), sizeof(long), produce, &c, o, &it);
    if (rc) return rc;
    for (;;) {
        long v = 0;
        size_t idx = 0;
        rc = mproc_imap_next(it, &v, &idx, 60000);
        if (rc == MPROC_EEOF || rc == MPROC_ETIMEDOUT) break;
        if (idx < IN) {
            out[idx] = v;
            rcs[idx] = rc;
        }
        delivered++;
    }
    mproc_imap_free(it);
    if (worst) *worst = c.worst;
    return rc == MPROC_EEOF && delivered == IN ? 0 : rc ? rc : MPROC_EPROTO;
}

static void test_imap(mproc_pool *c, mproc_pool *local)
{
    static long a[IN], b[IN];
    static int ra[IN], rb[IN];
    size_t chunks[] = {1, 3, 50};
    size_t flights[] = {0, 4, 7};
    for (int unordered = 0; unordered < 2; unordered++)
        for (size_t k = 0; k < 3; k++) {
            mproc_imap_opts o = {
                .unordered = unordered, .chunksize = chunks[k], .max_inflight = flights[k]};
            memset(a, 0, sizeof a);
            memset(b, 0, sizeof b);
            size_t worst = 0;
            int rc1 = imap_all(c, &o, a, ra, &worst);
            int rc2 = imap_all(local, &o, b, rb, NULL);
            CHECK(rc1 == 0 && rc2 == 0, "unordered %d chunk %zu: %s %s", unordered, chunks[k],
                  mproc_strerror(rc1), mproc_strerror(rc2));
            CHECK(memcmp(a, b, sizeof a) == 0 && memcmp(ra, rb, sizeof ra) == 0,
                  "unordered %d chunk %zu: the results differ", unordered, chunks[k]);
            CHECK(a[IN - 1] == (long)(IN - 1) * (IN - 1) * (IN - 1), "%ld", a[IN - 1]);
            size_t bound = flights[k] < chunks[k] ? chunks[k] : flights[k];
            if (flights[k]) /* bounded work in flight */
                CHECK(worst <= bound, "chunk %zu: %zu items ahead, bound %zu", chunks[k], worst,
                      bound);
        }
}

static void test_imap_error(mproc_pool *c, mproc_pool *local)
{
    enum { N = 1000 };
    static long in[N], outs[2][N];
    static int rcs[2][N];
    for (long i = 0; i < N; i++) in[i] = i;
    mproc_pool *ps[2] = {c, local};
    for (int k = 0; k < 2; k++) {
        mproc_imap *it;
        mproc_imap_opts o = {.chunksize = 10};
        int rc = mproc_pool_imap_array(ps[k], cube, in, N, sizeof in[0], sizeof(long), &o, &it);
        CHECK(rc == 0, "%s", mproc_strerror(rc));
        size_t idx, got = 0;
        long v;
        while ((rc = mproc_imap_next(it, &v, &idx, 60000)) != MPROC_EEOF) {
            CHECK(rc == 0 || rc == MPROC_ETASK, "%s", mproc_strerror(rc));
            outs[k][idx] = rc ? 0 : v;
            rcs[k][idx] = rc;
            got++;
        }
        mproc_imap_free(it);
        CHECK(got == N, "%zu items", got);
    }
    CHECK(memcmp(outs[0], outs[1], sizeof outs[0]) == 0 &&
              memcmp(rcs[0], rcs[1], sizeof rcs[0]) == 0,
          "the results differ");
    CHECK(rcs[0][777] == MPROC_ETASK && rcs[0][770] == MPROC_ETASK && rcs[0][769] == 0 &&
              rcs[0][780] == 0,
          "the failing chunk (770..779) gives ETASK for each of its items, and only it");
}

static void test_imap_typed(mproc_pool *c, mproc_pool *local)
{
    enum { N = 300 };
    int64_t a[N], b[N];
    mproc_pool *ps[2] = {c, local};
    int64_t *outs[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        mproc_imap *it;
        mproc_imap_opts o = {.chunksize = 7, .unordered = true};
        int rc = MPROC_POOL_IMAP_RANGE(ps[k], tcube, MPROC_RANGE(-100, 500, 2), &o, &it);
        CHECK(rc == 0, "%s", mproc_strerror(rc));
        size_t idx, got = 0;
        int64_t v;
        while ((rc = mproc_imap_next(it, &v, &idx, 60000)) == 0 && idx < N) {
            outs[k][idx] = v;
            got++;
        }
        CHECK(rc == MPROC_EEOF && got == N, "%s after %zu", mproc_strerror(rc), got);
        mproc_imap_free(it);
    }
    CHECK(memcmp(a, b, sizeof a) == 0 && a[0] == -1000000 && a[N - 1] == 498LL * 498 * 498,
          "imap_range typed: the results differ");
    /* typed imap over an array, and typed maps */
    int64_t in[N];
    double d1[N], d2[N];
    for (int i = 0; i < N; i++) in[i] = i * 3 - 17;
    for (int k = 0; k < 2; k++) {
        mproc_imap *it;
        int rc = MPROC_POOL_IMAP(ps[k], half, in, N, NULL, &it);
        CHECK(rc == 0, "%s", mproc_strerror(rc));
        size_t idx;
        double v;
        while ((rc = mproc_imap_next(it, &v, &idx, 60000)) == 0) (k ? d2 : d1)[idx] = v;
        CHECK(rc == MPROC_EEOF, "%s", mproc_strerror(rc));
        mproc_imap_free(it);
    }
    CHECK(memcmp(d1, d2, sizeof d1) == 0 && d1[1] == -7.0, "imap_array typed: differ");
    int rc1 = MPROC_POOL_MAP_RANGE(c, tcube, MPROC_RANGE(N), a);
    int rc2 = MPROC_POOL_MAP_RANGE(local, tcube, MPROC_RANGE(N), b);
    CHECK(rc1 == 0 && rc2 == 0 && memcmp(a, b, sizeof a) == 0, "map_range typed: %s %s",
          mproc_strerror(rc1), mproc_strerror(rc2));
    rc1 = MPROC_POOL_MAP(c, half, in, N, d1);
    rc2 = MPROC_POOL_MAP(local, half, in, N, d2);
    CHECK(rc1 == 0 && rc2 == 0 && memcmp(d1, d2, sizeof d1) == 0, "map typed: %s %s",
          mproc_strerror(rc1), mproc_strerror(rc2));
}

/* An imap made before close still yields everything; join waits for it. */
static void test_imap_after_close(void)
{
    mproc_pool *p;
    int rc = mproc_cluster_pool_new(&p, NULL);
    CHECK(rc == 0, "%s", mproc_strerror(rc));
    mproc_imap *it;
    rc = mproc_pool_imap_range(p, cube, MPROC_RANGE(100), sizeof(long),
                               &(mproc_imap_opts){.max_inflight = 4}, &it);
    CHECK(rc == 0, "%s", mproc_strerror(rc));
    CHECK(mproc_pool_close(p) == 0, "close");
    CHECK(mproc_pool_join(p, 50) == MPROC_ETIMEDOUT, "join returned while the imap produces");
    mproc_imap *late;
    CHECK(mproc_pool_imap_range(p, cube, MPROC_RANGE(3), sizeof(long), NULL, &late) ==
              MPROC_ESHUTDOWN,
          "imap after close");
    long v, sum = 0;
    size_t n = 0;
    while ((rc = mproc_imap_next(it, &v, NULL, 60000)) == 0) sum += v, n++;
    CHECK(rc == MPROC_EEOF && n == 100 && sum == 24502500L, "%s: %zu items, sum %ld",
          mproc_strerror(rc), n, sum);
    mproc_imap_free(it);
    CHECK(mproc_pool_join(p, 60000) == 0, "join");
    mproc_pool_free(p);
}

/* ---- value tasks ------------------------------------------------------------------ */

static void test_value_tasks(mproc_pool *c, mproc_pool *local)
{
    int64_t xs[] = {0, 21, -5, 13};
    for (size_t k = 0; k < 4; k++) {
        int rcs[2];
        int64_t got[2] = {0, 0};
        char msgs[2][128] = {"", ""};
        mproc_pool *ps[2] = {c, local};
        for (int j = 0; j < 2; j++) {
            mproc_value *arg = mproc_value_int(xs[k]);
            mproc_future *f;
            int rc = mproc_pool_apply_value_async(ps[j], value_double, arg, NULL, &f);
            mproc_value_free(arg);
            CHECK(rc == 0, "%s", mproc_strerror(rc));
            mproc_value *v = NULL;
            rcs[j] = mproc_future_result_value(f, &v, 60000);
            if (rcs[j] == 0) mproc_value_get_int(v, &got[j]);
            const char *m = NULL;
            if (rcs[j]) mproc_future_error(f, NULL, &m, NULL);
            snprintf(msgs[j], sizeof msgs[j], "%s", m ? m : "");
            mproc_value_free(v);
            mproc_future_free(f);
        }
        CHECK(rcs[0] == rcs[1] && got[0] == got[1] && strcmp(msgs[0], msgs[1]) == 0,
              "x=%lld: %s %lld '%s' vs %s %lld '%s'", (long long)xs[k], mproc_strerror(rcs[0]),
              (long long)got[0], msgs[0], mproc_strerror(rcs[1]), (long long)got[1], msgs[1]);
    }
}

/* ---- time limits ----------------------------------------------------------------- */

/* apply with a limit: the same error on both pools. */
static void test_time_limits(mproc_pool *c, mproc_pool *local)
{
    mproc_pool *ps[2] = {c, local};
    for (int j = 0; j < 2; j++) {
        long ms = 3000;
        mproc_future *slow, *quick;
        mproc_task_opts o = {.timeout_ms = 300};
        int rc = mproc_pool_apply_async(ps[j], sleeper, &ms, sizeof ms, &o, &slow);
        CHECK(rc == 0, "%s", mproc_strerror(rc));
        long q = 1;
        rc = mproc_pool_apply_async(ps[j], sleeper, &q, sizeof q, &o, &quick);
        CHECK(rc == 0, "%s", mproc_strerror(rc));
        rc = mproc_future_result(slow, NULL, NULL, 60000);
        const char *m = NULL;
        mproc_future_error(slow, NULL, &m, NULL);
        CHECK(rc == MPROC_ETIMELIMIT && m && strstr(m, "time limit"), "pool %d: %s '%s'", j,
              mproc_strerror(rc), m ? m : "");
        const void *buf;
        size_t len;
        rc = mproc_future_result(quick, &buf, &len, 60000);
        CHECK(rc == 0 && len == sizeof q && *(const long *)buf == 1, "pool %d: quick %s", j,
              mproc_strerror(rc));
        mproc_future_free(slow);
        mproc_future_free(quick);
        /* a map chunk with a limit: the chunk of -1 runs past it */
        long in[8] = {1, 2, 3, -1, 5, 6, 7, 8}, out[8] = {0};
        mproc_map_opts mo = {.chunksize = 4, .timeout_ms = 300};
        rc = mproc_pool_map(ps[j], cube, in, 8, sizeof in[0], out, sizeof out[0], &mo);
        CHECK(rc == MPROC_ETIMELIMIT && out[5] == 216, "pool %d: map %s, out[5] %ld", j,
              mproc_strerror(rc), out[5]);
        /* imap with a limit */
        mproc_imap *it;
        rc = mproc_pool_imap_array(ps[j], cube, in, 8, sizeof in[0], sizeof(long),
                                   &(mproc_imap_opts){.timeout_ms = 300}, &it);
        CHECK(rc == 0, "%s", mproc_strerror(rc));
        size_t idx;
        long v;
        int bad = 0, good = 0;
        while ((rc = mproc_imap_next(it, &v, &idx, 60000)) != MPROC_EEOF) {
            CHECK(rc == 0 || (rc == MPROC_ETIMELIMIT && idx == 3), "pool %d: item %zu %s", j, idx,
                  mproc_strerror(rc));
            rc ? bad++ : good++;
        }
        mproc_imap_free(it);
        CHECK(bad == 1 && good == 7, "pool %d: imap %d bad %d good", j, bad, good);
    }
    /* the pool's default limit, and MPROC_FOREVER to lift it */
    mproc_pool *p;
    int rc = mproc_cluster_pool_new(&p, &(mproc_pool_opts){.task_timeout_ms = 300});
    CHECK(rc == 0, "%s", mproc_strerror(rc));
    long ms = 3000, ok = 500;
    mproc_future *f, *g;
    CHECK(mproc_pool_apply_async(p, sleeper, &ms, sizeof ms, NULL, &f) == 0, "apply");
    CHECK(mproc_pool_apply_async(p, sleeper, &ok, sizeof ok,
                                 &(mproc_task_opts){.timeout_ms = MPROC_FOREVER}, &g) == 0,
          "apply");
    rc = mproc_future_result(f, NULL, NULL, 60000);
    CHECK(rc == MPROC_ETIMELIMIT, "default limit: %s", mproc_strerror(rc));
    rc = mproc_future_result(g, NULL, NULL, 60000);
    CHECK(rc == 0, "no limit: %s", mproc_strerror(rc));
    mproc_future_free(f);
    mproc_future_free(g);
    mproc_pool_close(p);
    CHECK(mproc_pool_join(p, 60000) == 0, "join");
    mproc_pool_free(p);
}

/* ---- the executor ---------------------------------------------------------------- */

static int done_calls;
static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;

static void on_done(mproc_future *f, void *ud)
{
    (void)f;
    (void)ud;
    pthread_mutex_lock(&done_mu);
    done_calls++;
    pthread_mutex_unlock(&done_mu);
}

static void test_executor(mproc_executor *ex, mproc_executor *pex)
{
    enum { N = 60 };
    mproc_future *fs[N];
    done_calls = 0;
    for (long i = 0; i < N; i++) {
        int rc = mproc_executor_submit(ex, square, &i, sizeof i, &fs[i]);
        CHECK(rc == 0, "%s", mproc_strerror(rc));
        CHECK(mproc_future_add_done_callback(fs[i], on_done, NULL) == 0, "callback");
    }
    size_t ndone = 0;
    int rc = mproc_futures_wait(fs, N, 60000, MPROC_ALL_COMPLETED, &ndone);
    CHECK(rc == 0 && ndone == N, "wait: %s %zu", mproc_strerror(rc), ndone);
    mproc_as_completed *ac;
    CHECK(mproc_as_completed_new(&ac, fs, N) == 0, "as_completed");
    mproc_future *f;
    size_t seen = 0;
    while ((rc = mproc_as_completed_next(ac, &f, 60000)) == 0) seen++;
    mproc_as_completed_free(ac);
    CHECK(rc == MPROC_EEOF && seen == N, "as_completed: %s %zu", mproc_strerror(rc), seen);
    for (long i = 0; i < N; i++) {
        const void *buf;
        size_t len;
        rc = mproc_future_result(fs[i], &buf, &len, 0);
        const char *m = NULL;
        if (rc) mproc_future_error(fs[i], NULL, &m, NULL);
        if (i == 13)
            CHECK(rc == MPROC_ETASK && m && strcmp(m, "bad input 13") == 0, "%s '%s'",
                  mproc_strerror(rc), m ? m : "");
        else
            CHECK(rc == 0 && *(const long *)buf == i * i, "task %ld: %s", i, mproc_strerror(rc));
        mproc_future_free(fs[i]);
    }
    /* A callback runs just after its future is done: give the last ones
     * a moment. */
    int calls = 0;
    for (int k = 0; k < 500 && calls < N; k++) {
        pthread_mutex_lock(&done_mu);
        calls = done_calls;
        pthread_mutex_unlock(&done_mu);
        if (calls < N) sleep_ms(10);
    }
    CHECK(calls == N, "%d callbacks", calls);
    /* executor map, compared with the process executor's */
    enum { M = 500 };
    static long in[M], a[M], b[M];
    for (long i = 0; i < M; i++) in[i] = i - 250;
    int rc1 = mproc_executor_map(ex, cube, in, M, sizeof in[0], a, sizeof a[0], 60000);
    int rc2 = mproc_executor_map(pex, cube, in, M, sizeof in[0], b, sizeof b[0], 60000);
    CHECK(rc1 == 0 && rc2 == 0 && memcmp(a, b, sizeof a) == 0, "map: %s %s", mproc_strerror(rc1),
          mproc_strerror(rc2));
    in[100] = 777;
    rc1 = mproc_executor_map(ex, cube, in, M, sizeof in[0], a, sizeof a[0], 60000);
    rc2 = mproc_executor_map(pex, cube, in, M, sizeof in[0], b, sizeof b[0], 60000);
    CHECK(rc1 == MPROC_ETASK && rc1 == rc2, "failing map: %s %s", mproc_strerror(rc1),
          mproc_strerror(rc2));
}

/* shutdown(wait) with tasks in flight: every one runs to its end. */
static void test_executor_shutdown_wait(void)
{
    mproc_executor *ex;
    int rc = mproc_cluster_executor_new(&ex, NULL);
    CHECK(rc == 0, "%s", mproc_strerror(rc));
    enum { N = 20 };
    mproc_future *fs[N];
    long ms = 30;
    for (int i = 0; i < N; i++)
        CHECK(mproc_executor_submit(ex, sleeper, &ms, sizeof ms, &fs[i]) == 0, "submit");
    CHECK(mproc_executor_shutdown(ex, true, false) == 0, "shutdown");
    mproc_future *late;
    CHECK(mproc_executor_submit(ex, sleeper, &ms, sizeof ms, &late) == MPROC_ESHUTDOWN,
          "submit after shutdown");
    for (int i = 0; i < N; i++) {
        CHECK(mproc_future_done(fs[i]) && mproc_future_successful(fs[i]), "task %d", i);
        mproc_future_free(fs[i]);
    }
    mproc_executor_free(ex);
}

/* shutdown(cancel_futures): the tasks not started are cancelled, the
 * started ones finish; as in the process executor. */
static void test_executor_cancel(int which)
{
    mproc_executor *ex;
    int rc = which ? mproc_executor_new_process(&ex, &(mproc_executor_opts){.max_workers = 2})
                   : mproc_cluster_executor_new(&ex, NULL);
    CHECK(rc == 0, "%s", mproc_strerror(rc));
    enum { N = 40 };
    mproc_future *fs[N];
    long ms = 100;
    for (int i = 0; i < N; i++)
        CHECK(mproc_executor_submit(ex, sleeper, &ms, sizeof ms, &fs[i]) == 0, "submit");
    CHECK(mproc_future_wait(fs[0], 60000) == 0, "the first ran");
    CHECK(mproc_executor_shutdown(ex, true, true) == 0, "shutdown");
    int cancelled = 0, ran = 0;
    for (int i = 0; i < N; i++) {
        int r = mproc_future_result(fs[i], NULL, NULL, 0);
        CHECK(r == 0 || r == MPROC_ECANCELLED, "executor %d task %d: %s", which, i,
              mproc_strerror(r));
        r ? cancelled++ : ran++;
        mproc_future_free(fs[i]);
    }
    CHECK(cancelled > 0 && ran > 0, "executor %d: %d cancelled %d ran", which, cancelled, ran);
    mproc_executor_free(ex);
}

/* terminate_workers: the tasks the ranks hold fail at once, not later. */
static void test_executor_terminate(void)
{
    mproc_executor *ex;
    int rc = mproc_cluster_executor_new(&ex, NULL);
    CHECK(rc == 0, "%s", mproc_strerror(rc));
    enum { N = 10 };
    mproc_future *fs[N];
    long ms = 200;
    for (int i = 0; i < N; i++)
        CHECK(mproc_executor_submit(ex, sleeper, &ms, sizeof ms, &fs[i]) == 0, "submit");
    CHECK(mproc_executor_terminate_workers(ex) == 0, "terminate_workers");
    for (int i = 0; i < N; i++) {
        int r = mproc_future_result(fs[i], NULL, NULL, 0);
        CHECK(r == 0 || r == MPROC_ECANCELLED || r == MPROC_ESHUTDOWN, "task %d: %s", i,
              mproc_strerror(r));
        mproc_future_free(fs[i]);
    }
    mproc_executor_free(ex);
}

/* ---- the hybrid layout ------------------------------------------------------------- */

static void test_hybrid(mproc_pool *local)
{
    mproc_pool *h;
    mproc_cluster_pool_opts o = {.layout = MPROC_CLUSTER_HYBRID, .rank_processes = 2};
    int rc = mproc_cluster_pool_new_opts(&h, &o);
    CHECK(rc == 0, "%s", mproc_strerror(rc));
    enum { N = 2000 };
    static long in[N], a[N], b[N];
    for (long i = 0; i < N; i++) in[i] = i + 1000;
    int rc1 = mproc_pool_map(h, cube, in, N, sizeof in[0], a, sizeof a[0], NULL);
    int rc2 = mproc_pool_map(local, cube, in, N, sizeof in[0], b, sizeof b[0], NULL);
    CHECK(rc1 == 0 && rc2 == 0 && memcmp(a, b, sizeof a) == 0, "map: %s %s", mproc_strerror(rc1),
          mproc_strerror(rc2));
    in[1777] = 777;
    rc1 = mproc_pool_map(h, cube, in, N, sizeof in[0], a, sizeof a[0], NULL);
    rc2 = mproc_pool_map(local, cube, in, N, sizeof in[0], b, sizeof b[0], NULL);
    CHECK(rc1 == MPROC_ETASK && rc2 == rc1, "failing map: %s %s", mproc_strerror(rc1),
          mproc_strerror(rc2));
    for (long x = 10; x < 16; x++) {
        mproc_future *f;
        CHECK(mproc_pool_apply_async(h, square, &x, sizeof x, NULL, &f) == 0, "apply");
        const void *buf;
        rc = mproc_future_result(f, &buf, NULL, 60000);
        const char *m = NULL;
        if (rc) mproc_future_error(f, NULL, &m, NULL);
        CHECK(x == 13 ? rc == MPROC_ETASK && m && strcmp(m, "bad input 13") == 0
                      : rc == 0 && *(const long *)buf == x * x,
              "x=%ld: %s '%s'", x, mproc_strerror(rc), m ? m : "");
        mproc_future_free(f);
    }
    static long ia[IN], ib[IN];
    static int ra[IN], rb[IN];
    rc1 = imap_all(h, &(mproc_imap_opts){.unordered = true, .chunksize = 4}, ia, ra, NULL);
    rc2 = imap_all(local, &(mproc_imap_opts){.unordered = true, .chunksize = 4}, ib, rb, NULL);
    CHECK(rc1 == 0 && rc2 == 0 && memcmp(ia, ib, sizeof ia) == 0 && memcmp(ra, rb, sizeof ra) == 0,
          "imap: %s %s", mproc_strerror(rc1), mproc_strerror(rc2));
    /* the work spreads: the tasks run in more processes than there are ranks */
    enum { T = 16 };
    mproc_future *fs[T];
    long ms = 100;
    for (int i = 0; i < T; i++)
        CHECK(mproc_pool_apply_async(h, whoami, &ms, sizeof ms, NULL, &fs[i]) == 0, "apply");
    pid_t pids[T];
    int distinct = 0;
    for (int i = 0; i < T; i++) {
        const void *buf;
        CHECK(mproc_future_result(fs[i], &buf, NULL, 60000) == 0, "whoami %d", i);
        memcpy(&pids[i], buf, sizeof pids[i]);
        int seen = 0;
        for (int k = 0; k < i; k++) seen |= pids[k] == pids[i];
        distinct += !seen;
        mproc_future_free(fs[i]);
    }
    CHECK(distinct > mproc_cluster_workers(), "%d processes ran the tasks, over %d ranks", distinct,
          mproc_cluster_workers());
    /* a time limit in the hybrid layout */
    long slow = 3000;
    mproc_future *f;
    CHECK(mproc_pool_apply_async(h, sleeper, &slow, sizeof slow,
                                 &(mproc_task_opts){.timeout_ms = 300}, &f) == 0,
          "apply");
    rc = mproc_future_result(f, NULL, NULL, 60000);
    CHECK(rc == MPROC_ETIMELIMIT, "hybrid limit: %s", mproc_strerror(rc));
    mproc_future_free(f);
    mproc_pool_close(h);
    CHECK(mproc_pool_join(h, 60000) == 0, "join");
    mproc_pool_free(h);
    /* the hybrid executor */
    mproc_executor *ex;
    rc = mproc_cluster_executor_new(&ex, &o);
    CHECK(rc == 0, "%s", mproc_strerror(rc));
    rc1 = mproc_executor_map(ex, cube, in, 300, sizeof in[0], a, sizeof a[0], 60000);
    CHECK(rc1 == 0 && memcmp(a, b, 300 * sizeof a[0]) == 0, "hybrid executor map: %s",
          mproc_strerror(rc1));
    mproc_executor_free(ex);
    /* bad options */
    mproc_cluster_pool_opts bad = {.rank_processes = 2}; /* ranks-only */
    CHECK(mproc_cluster_pool_new_opts(&h, &bad) == MPROC_EINVAL, "rank_processes, ranks only");
    bad = (mproc_cluster_pool_opts){.layout = 7};
    CHECK(mproc_cluster_pool_new_opts(&h, &bad) == MPROC_EINVAL, "layout 7");
    bad = (mproc_cluster_pool_opts){.ranks = mproc_cluster_workers() + 1};
    CHECK(mproc_cluster_pool_new_opts(&h, &bad) == MPROC_EINVAL, "too many ranks");
}

/* mproc_cluster_shutdown with tasks in flight in ranks' local pools (a
 * hybrid pool, a time limit): the tasks the ranks hold end, the others
 * fail with MPROC_ESHUTDOWN; nothing hangs. */
enum { NF = 40 };
static mproc_future *inflight[NF];
static mproc_pool *h, *l;

static void start_inflight(void)
{
    int rc = mproc_cluster_pool_new_opts(
        &h, &(mproc_cluster_pool_opts){.layout = MPROC_CLUSTER_HYBRID, .rank_processes = 2});
    CHECK(rc == 0, "%s", mproc_strerror(rc));
    rc = mproc_cluster_pool_new(&l, &(mproc_pool_opts){.task_timeout_ms = 5000});
    CHECK(rc == 0, "%s", mproc_strerror(rc));
    long ms = 200;
    for (int i = 0; i < NF; i++)
        CHECK(mproc_pool_apply_async(i % 2 ? h : l, sleeper, &ms, sizeof ms, NULL, &inflight[i]) ==
                  0,
              "apply");
    /* Both pools' first tasks are with ranks (then they end, at shutdown,
     * rather than fail); the pools stay open: shutdown terminates them. */
    for (int k = 0;
         k < 1000 && !(mproc_future_running(inflight[0]) && mproc_future_running(inflight[1])); k++)
        sleep_ms(10);
}

static void check_inflight(void)
{
    int ran = 0, shut = 0;
    for (int i = 0; i < NF; i++) {
        if (!inflight[i]) continue;
        int r = mproc_future_result(inflight[i], NULL, NULL, 0);
        CHECK(r == 0 || r == MPROC_ESHUTDOWN, "task %d: %s", i, mproc_strerror(r));
        r ? shut++ : ran++;
        mproc_future_free(inflight[i]);
    }
    mproc_pool_free(h);
    mproc_pool_free(l);
    CHECK(ran > 0 && shut > 0, "%d ran, %d shut down", ran, shut);
}

int main(int argc, char **argv)
{
    mproc_pool *c, *local;
    if (clu_start("test_cluster_exec", &argc, &argv, &c, &local)) return 1;
    int rc;
    const char *only = getenv("CLUSTER_CASE");
#define RUN(name, call)                                                                            \
    do {                                                                                           \
        if (!only || strcmp(only, name) == 0) {                                                    \
            int before = failures;                                                                 \
            call;                                                                                  \
            printf("test_cluster_exec: %s %s\n", name, failures == before ? "ok" : "FAILED");      \
            fflush(stdout);                                                                        \
        }                                                                                          \
    } while (0)
    RUN("imap", test_imap(c, local));
    RUN("imap_error", test_imap_error(c, local));
    RUN("imap_typed", test_imap_typed(c, local));
    RUN("imap_after_close", test_imap_after_close());
    RUN("value_tasks", test_value_tasks(c, local));
    RUN("time_limits", test_time_limits(c, local));
    mproc_executor *ex = NULL, *pex = NULL;
    if ((rc = mproc_cluster_executor_new(&ex, NULL)) ||
        (rc = mproc_executor_new_process(&pex, &(mproc_executor_opts){.max_workers = 2}))) {
        fprintf(stderr, "test_cluster_exec: executors: %s\n", mproc_strerror(rc));
        return 1;
    }
    RUN("executor", test_executor(ex, pex));
    mproc_executor_free(ex);
    mproc_executor_free(pex);
    RUN("executor_shutdown_wait", test_executor_shutdown_wait());
    RUN("executor_cancel", test_executor_cancel(0));
    RUN("executor_cancel_process", test_executor_cancel(1));
    RUN("executor_terminate", test_executor_terminate());
    RUN("hybrid", test_hybrid(local));
    mproc_pool_close(local);
    mproc_pool_join(local, MPROC_FOREVER);
    mproc_pool_free(local);
    mproc_pool_close(c);
    mproc_pool_join(c, MPROC_FOREVER);
    mproc_pool_free(c);
    if (!only) start_inflight();
    if ((rc = mproc_cluster_shutdown())) {
        fprintf(stderr, "test_cluster_exec: shutdown: %s\n", mproc_strerror(rc));
        failures++;
    }
    if (!only) RUN("shutdown_in_flight", check_inflight());
    printf("test_cluster_exec: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
