/* The pool over MPI ranks (mproc/cluster.h), in world mode: run under
 * mpiexec -n N (N >= 2). Rank 0 runs the checks and compares every result
 * with a process pool's on the same inputs; it exits non-zero at the first
 * failure (the other ranks serve, then exit 0 at shutdown). */
#include <mproc.h>
#include <mproc/cluster.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clutil.h"

static int square(const void *arg, size_t len, mproc_result *res)
{
    long x;
    if (len != sizeof x) return mproc_task_fail("want %zu bytes, got %zu", sizeof x, len);
    memcpy(&x, arg, sizeof x);
    if (x == 13) return mproc_task_fail("bad input %ld", x);
    if (x == 14) return 3; /* breaks the contract: neither 0 nor an error code */
    x *= x;
    return mproc_result_set(res, &x, sizeof x);
}

static int greet(const void *arg, size_t len, mproc_result *res)
{
    char buf[64];
    int n = snprintf(buf, sizeof buf, "hello %.*s", (int)len, (const char *)arg);
    return mproc_result_set(res, buf, (size_t)n);
}

static int nap(const void *arg, size_t len, mproc_result *res)
{
    (void)arg;
    (void)len;
    (void)res;
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return 0;
}

/* Its input, reversed. */
static int reverse(const void *arg, size_t len, mproc_result *res)
{
    char *out = malloc(len ? len : 1);
    if (!out) return MPROC_ENOMEM;
    for (size_t i = 0; i < len; i++) out[i] = ((const char *)arg)[len - 1 - i];
    int rc = mproc_result_set(res, out, len);
    free(out);
    return rc;
}

static int flip(const void *in, void *out)
{
    uint64_t x;
    memcpy(&x, in, sizeof x);
    x = ~x;
    memcpy(out, &x, sizeof x);
    return 0;
}

static int cube(const void *in, void *out)
{
    long x = *(const long *)in;
    if (x == 777) return mproc_task_fail("no cube for %ld", x);
    *(long *)out = x * x * x;
    return 0;
}

/* A pair in, a double out (map over structs: starmap). */
typedef struct pair {
    int a;
    double b;
} pair;

static int mul(const void *in, void *out)
{
    const pair *p = in;
    *(double *)out = p->a * p->b;
    return 0;
}

/* One apply on a pool: its code, message and result. */
typedef struct outcome {
    int rc;
    char msg[256];
    long value;
    size_t len;
} outcome;

static outcome apply_one(mproc_pool *p, mproc_task_fn fn, long x)
{
    outcome o = {0};
    mproc_future *f;
    o.rc = mproc_pool_apply_async(p, fn, &x, sizeof x, NULL, &f);
    if (o.rc) return o;
    const void *buf;
    o.rc = mproc_future_result(f, &buf, &o.len, 60000);
    if (o.rc == 0 && o.len == sizeof o.value) memcpy(&o.value, buf, sizeof o.value);
    const char *msg = NULL;
    if (o.rc && mproc_future_error(f, NULL, &msg, NULL) == 0 && msg)
        snprintf(o.msg, sizeof o.msg, "%s", msg);
    mproc_future_free(f);
    return o;
}

static void test_apply_same_as_process_pool(mproc_pool *c, mproc_pool *local)
{
    for (long x = 0; x < 20; x++) {
        outcome a = apply_one(c, square, x), b = apply_one(local, square, x);
        CHECK(a.rc == b.rc, "x=%ld: cluster %s, process pool %s", x, mproc_strerror(a.rc),
              mproc_strerror(b.rc));
        CHECK(strcmp(a.msg, b.msg) == 0, "x=%ld: cluster '%s', process pool '%s'", x, a.msg, b.msg);
        CHECK(a.value == b.value && a.len == b.len, "x=%ld: %ld vs %ld", x, a.value, b.value);
    }
    outcome e = apply_one(c, square, 13);
    CHECK(e.rc == MPROC_ETASK && strcmp(e.msg, "bad input 13") == 0, "%s '%s'",
          mproc_strerror(e.rc), e.msg);
    e = apply_one(c, square, 14);
    CHECK(e.rc == MPROC_ETASK && strstr(e.msg, "returned 3"), "%s '%s'", mproc_strerror(e.rc),
          e.msg);
    /* mproc_pool_apply: the bytes come back */
    void *res = NULL;
    size_t len = 0;
    int rc = mproc_pool_apply(c, greet, "ranks", 5, &res, &len);
    CHECK(rc == 0 && len == 11 && memcmp(res, "hello ranks", 11) == 0, "%s", mproc_strerror(rc));
    free(res);
    rc = mproc_pool_apply(c, greet, NULL, 0, &res, &len);
    CHECK(rc == 0 && len == 6 && memcmp(res, "hello ", 6) == 0, "%s", mproc_strerror(rc));
    free(res);
}

static void test_many_async(mproc_pool *c)
{
    enum { N = 300 };
    mproc_future *fs[N];
    for (long i = 0; i < N; i++) {
        long x = i + 100;
        int rc = mproc_pool_apply_async(c, square, &x, sizeof x, NULL, &fs[i]);
        CHECK(rc == 0, "%s", mproc_strerror(rc));
    }
    for (long i = 0; i < N; i++) {
        const void *buf;
        size_t len;
        int rc = mproc_future_result(fs[i], &buf, &len, 60000);
        CHECK(rc == 0 && len == sizeof(long) && *(const long *)buf == (i + 100) * (i + 100),
              "task %ld: %s", i, mproc_strerror(rc));
        mproc_future_free(fs[i]);
    }
}

/* A done callback runs in rank 0's thread, the one that makes the MPI
 * calls: when it waits for another task of the cluster, that wait must
 * make the progress itself (it hung before: nothing else receives). Every
 * way of waiting, each bounded (10 s) so that a hang shows as a failure:
 * a future's result, apply, map, futures_wait, as_completed, imap, and
 * close + join of another pool. */
typedef struct in_callback {
    mproc_pool *pool;
    atomic_int step; /* 0 while the callback runs, then 1 + the number of checks failed */
    char why[256];
} in_callback;

static void waits_in_callback(mproc_future *f, void *ud)
{
    (void)f;
    in_callback *cb = ud;
    int bad = 0;
#define CB_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond) && bad++ == 0) snprintf(cb->why, sizeof cb->why, __VA_ARGS__);                 \
    } while (0)
    long x = 9;
    mproc_future *g;
    int rc = mproc_pool_apply_async(cb->pool, square, &x, sizeof x, NULL, &g);
    CB_CHECK(rc == 0, "submit: %s", mproc_strerror(rc));
    if (rc == 0) {
        const void *buf = NULL;
        size_t len = 0;
        rc = mproc_future_result(g, &buf, &len, 10000);
        CB_CHECK(rc == 0 && len == sizeof(long) && *(const long *)buf == 81, "result: %s",
                 mproc_strerror(rc));
        mproc_future_free(g);
    }
    void *res = NULL;
    size_t len = 0;
    rc = mproc_pool_apply(cb->pool, greet, "cb", 2, &res, &len);
    CB_CHECK(rc == 0 && len == 8 && memcmp(res, "hello cb", 8) == 0, "apply: %s",
             mproc_strerror(rc));
    free(res);
    long in[40], out[40];
    for (int i = 0; i < 40; i++) in[i] = i;
    rc = mproc_pool_map(cb->pool, cube, in, 40, sizeof in[0], out, sizeof out[0],
                        &(mproc_map_opts){.chunksize = 3, .timeout_ms = 0});
    CB_CHECK(rc == 0 && out[39] == 39L * 39 * 39, "map: %s", mproc_strerror(rc));
    enum { K = 6 };
    mproc_future *fs[K];
    int n = 0;
    for (; n < K; n++) {
        long v = n;
        if (mproc_pool_apply_async(cb->pool, square, &v, sizeof v, NULL, &fs[n])) break;
    }
    CB_CHECK(n == K, "submit %d", n);
    size_t ndone = 0;
    rc = mproc_futures_wait(fs, (size_t)n, 10000, MPROC_ALL_COMPLETED, &ndone);
    CB_CHECK(rc == 0 && ndone == (size_t)n, "futures_wait: %s, %zu done", mproc_strerror(rc),
             ndone);
    for (int i = 0; i < n; i++) mproc_future_free(fs[i]);
    for (n = 0; n < K; n++) {
        long v = n;
        if (mproc_pool_apply_async(cb->pool, square, &v, sizeof v, NULL, &fs[n])) break;
    }
    mproc_as_completed *it = NULL;
    rc = mproc_as_completed_new(&it, fs, (size_t)n);
    int yielded = 0;
    mproc_future *next;
    while (rc == 0 && (rc = mproc_as_completed_next(it, &next, 10000)) == 0) yielded++;
    CB_CHECK(rc == MPROC_EEOF && yielded == K, "as_completed: %s after %d", mproc_strerror(rc),
             yielded);
    mproc_as_completed_free(it);
    for (int i = 0; i < n; i++) mproc_future_free(fs[i]);
    mproc_imap *im = NULL;
    rc = mproc_pool_imap_array(cb->pool, cube, in, 40, sizeof in[0], sizeof out[0],
                               &(mproc_imap_opts){.chunksize = 4}, &im);
    size_t got = 0, idx;
    long o;
    while (rc == 0 && (rc = mproc_imap_next(im, &o, &idx, 10000)) == 0)
        got += o == in[idx] * in[idx] * in[idx];
    CB_CHECK(rc == MPROC_EEOF && got == 40, "imap: %s after %zu", mproc_strerror(rc), got);
    mproc_imap_free(im);
    mproc_pool *q = NULL;
    rc = mproc_cluster_pool_new(&q, NULL);
    if (rc == 0) {
        for (n = 0; n < K; n++)
            if (mproc_pool_apply_async(q, nap, NULL, 0, NULL, &fs[n])) break;
        mproc_pool_close(q);
        rc = mproc_pool_join(q, 10000);
        CB_CHECK(rc == 0, "join: %s", mproc_strerror(rc));
        for (int i = 0; i < n; i++) mproc_future_free(fs[i]);
        mproc_pool_free(q);
    }
#undef CB_CHECK
    atomic_store(&cb->step, 1 + bad);
}

static void test_wait_in_callback(mproc_pool *c)
{
    static in_callback cb;
    cb.pool = c;
    atomic_init(&cb.step, 0);
    mproc_future *f;
    long x = 3;
    int rc = mproc_pool_apply_async(
        c, square, &x, sizeof x, &(mproc_task_opts){.callback = waits_in_callback, .userdata = &cb},
        &f);
    CHECK(rc == 0, "%s", mproc_strerror(rc));
    rc = mproc_future_result(f, NULL, NULL, 60000);
    mproc_future_free(f);
    CHECK(rc == 0, "%s", mproc_strerror(rc));
    for (int i = 0; i < 12000 && atomic_load(&cb.step) == 0; i++)
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    int step = atomic_load(&cb.step);
    CHECK(step == 1, "waits in a callback: %s", step == 0 ? "still waiting after 120 s" : cb.why);
}

static void test_map_same_as_process_pool(mproc_pool *c, mproc_pool *local)
{
    enum { N = 1000 };
    static long in[N], a[N], b[N];
    for (long i = 0; i < N; i++) in[i] = i - 500;
    size_t sizes[] = {0, 1, 7, 1000, 5000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        mproc_map_opts o = {.chunksize = sizes[k]};
        memset(a, 0, sizeof a);
        memset(b, 0, sizeof b);
        int rc1 = mproc_pool_map(c, cube, in, N, sizeof in[0], a, sizeof a[0], &o);
        int rc2 = mproc_pool_map(local, cube, in, N, sizeof in[0], b, sizeof b[0], &o);
        CHECK(rc1 == 0 && rc2 == 0, "chunksize %zu: %s %s", sizes[k], mproc_strerror(rc1),
              mproc_strerror(rc2));
        CHECK(memcmp(a, b, sizeof a) == 0, "chunksize %zu: the outputs differ", sizes[k]);
        CHECK(a[N - 1] == 499L * 499 * 499, "chunksize %zu: %ld", sizes[k], a[N - 1]);
    }
    /* structs in, another size out */
    pair ps[50];
    double d1[50], d2[50];
    for (int i = 0; i < 50; i++) ps[i] = (pair){i, i * 0.5};
    int rc1 = mproc_pool_map(c, mul, ps, 50, sizeof ps[0], d1, sizeof d1[0], NULL);
    int rc2 = mproc_pool_map(local, mul, ps, 50, sizeof ps[0], d2, sizeof d2[0], NULL);
    CHECK(rc1 == 0 && rc2 == 0 && memcmp(d1, d2, sizeof d1) == 0, "%s %s", mproc_strerror(rc1),
          mproc_strerror(rc2));
}

/* Tasks and results of every size around the receive a side posts for
 * the next message (64 KiB: a larger one is sent in two messages), and
 * far beyond it, as an apply and as a map, each byte checked. */
static void test_message_sizes(mproc_pool *c, mproc_pool *local)
{
    size_t max = (3u << 20) + 11;
    unsigned char *in = malloc(max), *want = malloc(max);
    CHECK(in && want, "no memory");
    for (size_t i = 0; i < max; i++) in[i] = (unsigned char)(i * 131 + (i >> 9));
    size_t sizes[200], ns = 0;
    for (size_t len = 65536 - 100; len <= 65536 + 8; len++) sizes[ns++] = len;
    sizes[ns++] = 1;
    sizes[ns++] = 1u << 20;
    sizes[ns++] = max;
    for (size_t k = 0; k < ns; k++) {
        size_t len = sizes[k];
        mproc_future *f = NULL;
        int rc = mproc_pool_apply_async(c, reverse, in, len, NULL, &f);
        const void *got = NULL;
        size_t glen = 0;
        if (!rc) rc = mproc_future_result(f, &got, &glen, 60000);
        for (size_t i = 0; i < len; i++) want[i] = in[len - 1 - i];
        bool same = !rc && glen == len && memcmp(got, want, len) == 0;
        mproc_future_free(f);
        if (!same) free(in), free(want);
        CHECK(same, "%zu bytes: %s, %zu bytes back", len, mproc_strerror(rc), glen);
    }
    /* a map of 3 MiB in and out, in chunks of every size the defaults give */
    size_t n = max / 8;
    long *a = calloc(n, sizeof *a), *b = calloc(n, sizeof *b);
    int rc1 = a && b ? mproc_pool_map(c, flip, in, n, 8, a, 8, NULL) : MPROC_ENOMEM;
    int rc2 = a && b ? mproc_pool_map(local, flip, in, n, 8, b, 8, NULL) : MPROC_ENOMEM;
    long first;
    memcpy(&first, in, sizeof first);
    bool same = rc1 == 0 && rc2 == 0 && memcmp(a, b, n * 8) == 0 && a[0] == ~first;
    free(a);
    free(b);
    free(in);
    free(want);
    CHECK(same, "map of %zu items: %s %s", n, mproc_strerror(rc1), mproc_strerror(rc2));
}

/* A map's progress (mproc_map_opts.progress), as a process pool reports
 * it: (done, total) after each chunk, done rising to total. */
typedef struct prog {
    size_t calls, last, total;
    int bad; /* done went down, or a wrong total */
} prog;

static void on_progress(size_t done, size_t total, void *ud)
{
    prog *g = ud;
    g->bad += done < g->last || done > total || (g->total && total != g->total);
    g->calls++;
    g->last = done;
    g->total = total;
}

static void test_map_progress(mproc_pool *c, mproc_pool *local)
{
    enum { N = 500 };
    static long in[N], a[N], b[N];
    for (long i = 0; i < N; i++) in[i] = i;
    prog pc = {0}, pl = {0};
    int rc1 = mproc_pool_map(
        c, cube, in, N, sizeof in[0], a, sizeof a[0],
        &(mproc_map_opts){.chunksize = 10, .progress = on_progress, .progress_userdata = &pc});
    int rc2 = mproc_pool_map(
        local, cube, in, N, sizeof in[0], b, sizeof b[0],
        &(mproc_map_opts){.chunksize = 10, .progress = on_progress, .progress_userdata = &pl});
    CHECK(rc1 == 0 && rc2 == 0, "%s %s", mproc_strerror(rc1), mproc_strerror(rc2));
    CHECK(memcmp(a, b, sizeof a) == 0, "outputs differ");
    CHECK(pc.bad == 0 && pc.last == N && pc.total == N && pc.calls == N / 10,
          "cluster: %zu calls, last %zu of %zu, %d bad", pc.calls, pc.last, pc.total, pc.bad);
    CHECK(pl.last == pc.last && pl.total == pc.total, "process pool: last %zu of %zu", pl.last,
          pl.total);
    /* the bar: drawn on stderr, the map's result unchanged */
    memset(a, 0, sizeof a);
    rc1 = mproc_pool_map(c, cube, in, N, sizeof in[0], a, sizeof a[0],
                         &(mproc_map_opts){.chunksize = 50, .progress_bar = true});
    CHECK(rc1 == 0 && memcmp(a, b, sizeof a) == 0, "with a bar: %s", mproc_strerror(rc1));
}

static void test_map_failure(mproc_pool *c, mproc_pool *local)
{
    enum { N = 1000 };
    static long in[N], a[N], b[N];
    for (long i = 0; i < N; i++) in[i] = i;
    mproc_future *fa, *fb;
    int rc = mproc_pool_map_async(c, cube, in, N, sizeof in[0], a, sizeof a[0], NULL, &fa);
    CHECK(rc == 0, "%s", mproc_strerror(rc));
    rc = mproc_pool_map_async(local, cube, in, N, sizeof in[0], b, sizeof b[0], NULL, &fb);
    CHECK(rc == 0, "%s", mproc_strerror(rc));
    int ra = mproc_future_result(fa, NULL, NULL, 60000);
    int rb = mproc_future_result(fb, NULL, NULL, 60000);
    const char *ma = NULL, *mb = NULL;
    mproc_future_error(fa, NULL, &ma, NULL);
    mproc_future_error(fb, NULL, &mb, NULL);
    CHECK(ra == MPROC_ETASK && ra == rb, "%s vs %s", mproc_strerror(ra), mproc_strerror(rb));
    CHECK(ma && mb && strcmp(ma, mb) == 0 && strcmp(ma, "no cube for 777") == 0, "'%s' vs '%s'",
          ma ? ma : "", mb ? mb : "");
    CHECK(a[2] == 8 && a[999] == 999L * 999 * 999, "the other chunks' outputs: %ld %ld", a[2],
          a[999]);
    mproc_future_free(fa);
    mproc_future_free(fb);
}

static void test_empty_map(mproc_pool *c)
{
    long out[1] = {42};
    int rc = mproc_pool_map(c, cube, NULL, 0, sizeof(long), NULL, sizeof(long), NULL);
    CHECK(rc == 0, "%s", mproc_strerror(rc));
    mproc_future *f;
    rc = mproc_pool_map_async(c, cube, out, 0, sizeof(long), out, sizeof(long), NULL, &f);
    CHECK(rc == 0 && mproc_future_done(f) && mproc_future_successful(f), "%s", mproc_strerror(rc));
    mproc_future_free(f);
    CHECK(out[0] == 42, "an empty map wrote %ld", out[0]);
}

static void test_bad_input(mproc_pool *c)
{
    mproc_future *f;
    CHECK(mproc_pool_apply_async(c, NULL, NULL, 0, NULL, &f) == MPROC_EINVAL, "NULL fn");
    CHECK(mproc_pool_apply_async(c, square, NULL, 3, NULL, &f) == MPROC_EINVAL, "NULL arg");
    CHECK(mproc_pool_apply_async(c, (mproc_task_fn)(void *)&failures, NULL, 0, NULL, &f) ==
              MPROC_EINVAL,
          "data pointer as function");
    CHECK(mproc_pool_map(c, cube, NULL, 5, sizeof(long), NULL, sizeof(long), NULL) == MPROC_EINVAL,
          "NULL arrays");
    mproc_imap *it;
    CHECK(mproc_pool_imap(c, cube, sizeof(long), sizeof(long), NULL, NULL, NULL, &it) ==
              MPROC_EINVAL,
          "imap without producer");
    mproc_pool *p;
    mproc_pool_opts too_many = {.processes = mproc_cluster_workers() + 1};
    CHECK(mproc_cluster_pool_new(&p, &too_many) == MPROC_EINVAL, "more ranks than exist");
    mproc_pool_opts retire = {.maxtasksperchild = 10};
    CHECK(mproc_cluster_pool_new(&p, &retire) == MPROC_ENOTSUP, "maxtasksperchild");
    const mproc_context *ctx;
    CHECK(mproc_get_context("spawn", &ctx) == 0, "context");
    mproc_pool_opts with_ctx = {.context = ctx};
    CHECK(mproc_cluster_pool_new(&p, &with_ctx) == MPROC_ENOTSUP, "context");
    mproc_pool_opts no_args = {.initializer = square, .initargs_len = 3};
    CHECK(mproc_cluster_pool_new(&p, &no_args) == MPROC_EINVAL, "initargs NULL");
    CHECK(mproc_cluster_init(NULL, NULL) == MPROC_EBADSTATE, "init twice");
}

/* The initializer: once on each rank, in the rank, before the pool is
 * returned; its failure fails the pool's creation. */
static long init_value; /* set on a rank by set_init */
static int init_runs;

static int set_init(const void *arg, size_t len, mproc_result *res)
{
    (void)res;
    if (len != sizeof init_value) return mproc_task_fail("want %zu bytes", sizeof init_value);
    memcpy(&init_value, arg, sizeof init_value);
    if (init_value < 0) return mproc_task_fail("init refused %ld", init_value);
    init_runs++;
    return 0;
}

typedef struct init_seen {
    long value;
    int runs;
    pid_t pid;
} init_seen;

static int read_init(const void *arg, size_t len, mproc_result *res)
{
    (void)arg;
    (void)len;
    nanosleep(&(struct timespec){0, 2000000}, NULL); /* so that every rank takes some */
    init_seen s = {init_value, init_runs, getpid()};
    return mproc_result_set(res, &s, sizeof s);
}

/* The initializer and max_tasks_per_child reach the processes of a rank's
 * local pools: a hybrid pool's, and the one that runs a ranks-only pool's
 * tasks that have a time limit. A process that ran the initializer knows
 * it by its pid (a local process may be forked from its rank, and start
 * with the rank's globals). */
static long local_value;
static pid_t local_init_pid;

typedef struct local_seen {
    long value;
    pid_t init_pid, pid;
} local_seen;

static int set_local(const void *arg, size_t len, mproc_result *res)
{
    (void)res;
    if (len != sizeof local_value) return mproc_task_fail("want %zu bytes", sizeof local_value);
    memcpy(&local_value, arg, sizeof local_value);
    local_init_pid = getpid();
    return 0;
}

static int read_local(const void *arg, size_t len, mproc_result *res)
{
    (void)arg;
    (void)len;
    nanosleep(&(struct timespec){0, 1000000}, NULL); /* so that every process takes some */
    local_seen s = {local_value, local_init_pid, getpid()};
    return mproc_result_set(res, &s, sizeof s);
}

/* n tasks of read_local on p (opts: their options); each one's sight in
 * seen[0..n). 0 or the first failure's code. */
static int read_all(mproc_pool *p, int n, const mproc_task_opts *opts, local_seen *seen)
{
    mproc_future *fs[128];
    int rc = 0;
    for (int i = 0; i < n; i++)
        if ((rc = mproc_pool_apply_async(p, read_local, NULL, 0, opts, &fs[i]))) return rc;
    for (int i = 0; i < n; i++) {
        const void *buf;
        size_t len;
        int r = mproc_future_result(fs[i], &buf, &len, 60000);
        if (!r && len == sizeof *seen) memcpy(&seen[i], buf, sizeof *seen);
        if (!rc) rc = r;
        mproc_future_free(fs[i]);
    }
    return rc;
}

static bool is_rank(const pid_t *ranks, size_t n, pid_t pid)
{
    for (size_t i = 0; i < n; i++)
        if (ranks[i] == pid) return true;
    return false;
}

static void test_local_setup(mproc_pool *c)
{
    pid_t ranks[64];
    size_t nr = mproc_pool_workers(c, ranks, 64);
    mproc_pool *p;
    long v = 99;
    mproc_cluster_pool_opts ho = {.layout = MPROC_CLUSTER_HYBRID,
                                  .rank_processes = 2,
                                  .initializer = set_local,
                                  .initargs = &v,
                                  .initargs_len = sizeof v,
                                  .max_tasks_per_child = 3};
    int rc = mproc_cluster_pool_new_opts(&p, &ho);
    CHECK(rc == 0, "hybrid pool with an initializer: %s", mproc_strerror(rc));
    enum { N = 60 };
    local_seen seen[N];
    rc = read_all(p, N, NULL, seen);
    CHECK(rc == 0, "hybrid tasks: %s", mproc_strerror(rc));
    int distinct = 0;
    for (int i = 0; i < N; i++) {
        CHECK(seen[i].value == 99 && seen[i].init_pid == seen[i].pid &&
                  !is_rank(ranks, nr, seen[i].pid),
              "task %d: value %ld, initializer in %d, pid %d", i, seen[i].value,
              (int)seen[i].init_pid, (int)seen[i].pid);
        int same = 0, first = 1;
        for (int k = 0; k < N; k++) {
            same += seen[k].pid == seen[i].pid;
            if (k < i && seen[k].pid == seen[i].pid) first = 0;
        }
        CHECK(same <= 3, "process %d ran %d tasks (max_tasks_per_child 3)", (int)seen[i].pid, same);
        distinct += first;
    }
    CHECK(distinct >= N / 3, "%d processes for %d tasks", distinct, N);
    /* Another hybrid pool over the same ranks, another value: its own
     * local pools, while the first one's end tells the ranks to drop its
     * (more pools one after the other than a rank would keep otherwise). */
    mproc_pool_close(p);
    mproc_pool_join(p, 60000);
    mproc_pool_free(p);
    pid_t gone[12];
    for (long k = 1; k <= 12; k++) {
        ho = (mproc_cluster_pool_opts){.layout = MPROC_CLUSTER_HYBRID,
                                       .rank_processes = 1,
                                       .initializer = set_local,
                                       .initargs = &k,
                                       .initargs_len = sizeof k};
        rc = mproc_cluster_pool_new_opts(&p, &ho);
        CHECK(rc == 0, "pool %ld: %s", k, mproc_strerror(rc));
        rc = read_all(p, 4, NULL, seen);
        mproc_pool_close(p);
        mproc_pool_join(p, 60000);
        mproc_pool_free(p);
        CHECK(rc == 0, "pool %ld: %s", k, mproc_strerror(rc));
        for (int i = 0; i < 4; i++)
            CHECK(seen[i].value == k && seen[i].init_pid == seen[i].pid,
                  "pool %ld, task %d: value %ld, initializer in %d, pid %d", k, i, seen[i].value,
                  (int)seen[i].init_pid, (int)seen[i].pid);
        gone[k - 1] = seen[0].pid;
    }
    /* The ranks ended those pools' processes (the ranks run on this host). */
    for (int i = 0, tries = 0; i < 12; tries++) {
        if (kill(gone[i], 0) != 0) {
            i++;
            continue;
        }
        CHECK(tries < 1000, "the local process %d of a freed pool still runs", (int)gone[i]);
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    /* Ranks only: the initializer runs in each rank, and in the local
     * process that runs the tasks with a time limit. */
    v = 55;
    rc = mproc_cluster_pool_new(
        &p, &(mproc_pool_opts){.initializer = set_local, .initargs = &v, .initargs_len = sizeof v});
    CHECK(rc == 0, "ranks-only pool: %s", mproc_strerror(rc));
    local_seen in_rank[8], limited[8];
    int rc1 = read_all(p, 8, NULL, in_rank);
    int rc2 = read_all(p, 8, &(mproc_task_opts){.timeout_ms = 30000}, limited);
    mproc_pool_close(p);
    mproc_pool_join(p, 60000);
    mproc_pool_free(p);
    CHECK(rc1 == 0 && rc2 == 0, "ranks-only tasks: %s %s", mproc_strerror(rc1),
          mproc_strerror(rc2));
    for (int i = 0; i < 8; i++) {
        CHECK(in_rank[i].value == 55 && in_rank[i].init_pid == in_rank[i].pid &&
                  is_rank(ranks, nr, in_rank[i].pid),
              "in the rank: value %ld, initializer in %d, pid %d", in_rank[i].value,
              (int)in_rank[i].init_pid, (int)in_rank[i].pid);
        CHECK(limited[i].value == 55 && limited[i].init_pid == limited[i].pid &&
                  !is_rank(ranks, nr, limited[i].pid),
              "with a time limit: value %ld, initializer in %d, pid %d", limited[i].value,
              (int)limited[i].init_pid, (int)limited[i].pid);
    }
    /* A local initializer that fails: the task that needed its local pool
     * fails with its code (the rank logs its message). */
    ho = (mproc_cluster_pool_opts){.layout = MPROC_CLUSTER_HYBRID,
                                   .rank_processes = 1,
                                   .initializer = set_local,
                                   .initargs = &v,
                                   .initargs_len = 1};
    rc = mproc_cluster_pool_new_opts(&p, &ho);
    CHECK(rc == 0, "hybrid pool, failing initializer: %s", mproc_strerror(rc));
    rc = read_all(p, 2, NULL, seen);
    mproc_pool_close(p);
    mproc_pool_join(p, 60000);
    mproc_pool_free(p);
    CHECK(rc == MPROC_ETASK, "a task whose local initializer failed: %s", mproc_strerror(rc));
    /* Bad options. */
    CHECK(mproc_cluster_pool_new_opts(&p, &(mproc_cluster_pool_opts){.max_tasks_per_child = 2}) ==
              MPROC_ENOTSUP,
          "max_tasks_per_child, ranks only");
    CHECK(mproc_cluster_pool_new_opts(&p, &(mproc_cluster_pool_opts){.layout = MPROC_CLUSTER_HYBRID,
                                                                     .max_tasks_per_child = -1}) ==
              MPROC_EINVAL,
          "max_tasks_per_child < 0");
}

static void test_initializer(void)
{
    long v = 4242;
    mproc_pool *p = NULL;
    int rc = mproc_cluster_pool_new(
        &p, &(mproc_pool_opts){.initializer = set_init, .initargs = &v, .initargs_len = sizeof v});
    CHECK(rc == 0, "%s", mproc_strerror(rc));
    pid_t pids[64];
    size_t nw = mproc_pool_workers(p, pids, 64);
    enum { N = 40 };
    mproc_future *fs[N];
    for (int i = 0; i < N; i++)
        CHECK(mproc_pool_apply_async(p, read_init, NULL, 0, NULL, &fs[i]) == 0, "submit");
    size_t ranks_seen = 0;
    bool seen[64] = {0};
    for (int i = 0; i < N; i++) {
        const void *buf;
        size_t len;
        rc = mproc_future_result(fs[i], &buf, &len, 60000);
        CHECK(rc == 0 && len == sizeof(init_seen), "%s", mproc_strerror(rc));
        init_seen s;
        memcpy(&s, buf, sizeof s);
        CHECK(s.value == 4242 && s.runs == 1, "task %d: value %ld, %d runs", i, s.value, s.runs);
        for (size_t k = 0; k < nw && k < 64; k++)
            if (pids[k] == s.pid && !seen[k]) seen[k] = true, ranks_seen++;
        mproc_future_free(fs[i]);
    }
    CHECK(ranks_seen == nw, "the tasks ran on %zu of %zu ranks", ranks_seen, nw);
    mproc_pool_close(p);
    mproc_pool_join(p, 60000);
    mproc_pool_free(p);
    /* A failing initializer: no pool, the task's code. */
    v = -1;
    p = NULL;
    rc = mproc_cluster_pool_new(
        &p, &(mproc_pool_opts){.initializer = set_init, .initargs = &v, .initargs_len = sizeof v});
    CHECK(rc == MPROC_ETASK && p == NULL, "a failing initializer: %s", mproc_strerror(rc));
    /* The executor's: on one rank. */
    v = 7;
    mproc_executor *ex;
    rc = mproc_cluster_executor_new(
        &ex, &(mproc_cluster_pool_opts){
                 .ranks = 1, .initializer = set_init, .initargs = &v, .initargs_len = sizeof v});
    CHECK(rc == 0, "executor: %s", mproc_strerror(rc));
    mproc_future *f;
    CHECK(mproc_executor_submit(ex, read_init, NULL, 0, &f) == 0, "submit");
    const void *buf;
    size_t len;
    rc = mproc_future_result(f, &buf, &len, 60000);
    init_seen s = {0};
    if (rc == 0 && len == sizeof s) memcpy(&s, buf, sizeof s);
    mproc_future_free(f);
    mproc_executor_free(ex);
    CHECK(rc == 0 && s.value == 7 && s.runs == 2, "executor: %s, value %ld, %d runs",
          mproc_strerror(rc), s.value, s.runs);
}

static void test_cancel_and_terminate(void)
{
    mproc_pool *p;
    int rc = mproc_cluster_pool_new(&p, NULL);
    CHECK(rc == 0, "%s", mproc_strerror(rc));
    enum { N = 40 };
    mproc_future *fs[N];
    for (int i = 0; i < N; i++) {
        rc = mproc_pool_apply_async(p, nap, NULL, 0, NULL, &fs[i]);
        CHECK(rc == 0, "%s", mproc_strerror(rc));
    }
    /* The last one cannot have started: the ranks hold at most a few. */
    rc = mproc_future_cancel(fs[N - 1]);
    CHECK(rc == 0 && mproc_future_cancelled(fs[N - 1]), "cancel: %s", mproc_strerror(rc));
    CHECK(mproc_future_result(fs[N - 1], NULL, NULL, 0) == MPROC_ECANCELLED, "cancelled result");
    CHECK(mproc_future_result(fs[0], NULL, NULL, 60000) == 0, "the first ran");
    CHECK(mproc_pool_join(p, 0) == MPROC_EBADSTATE, "join of an open pool");
    CHECK(mproc_pool_terminate(p) == 0, "terminate");
    int shut = 0;
    for (int i = 0; i < N - 1; i++) {
        int r = mproc_future_result(fs[i], NULL, NULL, 60000);
        CHECK(r == 0 || r == MPROC_ESHUTDOWN, "task %d: %s", i, mproc_strerror(r));
        shut += r == MPROC_ESHUTDOWN;
    }
    CHECK(shut > 0, "terminate failed no task");
    CHECK(mproc_pool_join(p, 60000) == 0, "join after terminate");
    mproc_future *f;
    CHECK(mproc_pool_apply_async(p, nap, NULL, 0, NULL, &f) == MPROC_ESHUTDOWN, "after terminate");
    for (int i = 0; i < N; i++) mproc_future_free(fs[i]);
    mproc_pool_free(p);
}

static void test_close_join(void)
{
    mproc_pool *p;
    mproc_pool_opts one = {.processes = 1};
    int rc = mproc_cluster_pool_new(&p, &one);
    CHECK(rc == 0, "%s", mproc_strerror(rc));
    pid_t pids[8];
    CHECK(mproc_pool_workers(p, pids, 8) == 1 && pids[0] > 0, "one worker rank");
    mproc_future *fs[6];
    for (int i = 0; i < 6; i++)
        CHECK(mproc_pool_apply_async(p, nap, NULL, 0, NULL, &fs[i]) == 0, "submit");
    CHECK(mproc_pool_close(p) == 0, "close");
    CHECK(mproc_pool_apply_async(p, nap, NULL, 0, NULL, &fs[0]) == MPROC_ESHUTDOWN, "closed");
    CHECK(mproc_pool_join(p, 60000) == 0, "join");
    for (int i = 0; i < 6; i++) {
        CHECK(mproc_future_done(fs[i]) && mproc_future_successful(fs[i]), "task %d after join", i);
        mproc_future_free(fs[i]);
    }
    mproc_pool_free(p);
}

/* A pool left open at shutdown is terminated; its calls still work. */
static void test_after_shutdown(mproc_pool *p)
{
    mproc_future *f;
    CHECK(!mproc_cluster_active() && mproc_cluster_workers() == 0, "still active");
    CHECK(mproc_pool_apply_async(p, nap, NULL, 0, NULL, &f) == MPROC_ESHUTDOWN, "apply");
    CHECK(mproc_pool_workers(p, NULL, 0) == 0, "workers");
    CHECK(mproc_pool_terminate(p) == 0 && mproc_pool_join(p, 1000) == 0, "terminate, join");
    mproc_pool *q;
    CHECK(mproc_cluster_pool_new(&q, NULL) == MPROC_EBADSTATE, "a pool after shutdown");
    mproc_pool_free(p);
}

int main(int argc, char **argv)
{
    mproc_pool *c, *local;
    if (clu_start("test_cluster", &argc, &argv, &c, &local)) return 1;
    int rc;
    test_apply_same_as_process_pool(c, local);
    test_many_async(c);
    test_wait_in_callback(c);
    test_map_same_as_process_pool(c, local);
    test_message_sizes(c, local);
    test_map_progress(c, local);
    test_map_failure(c, local);
    test_empty_map(c);
    test_bad_input(c);
    test_initializer();
    test_local_setup(c);
    test_cancel_and_terminate();
    test_close_join();
    mproc_pool_close(local);
    mproc_pool_join(local, MPROC_FOREVER);
    mproc_pool_free(local);
    mproc_pool_close(c);
    mproc_pool_join(c, MPROC_FOREVER);
    mproc_pool_free(c);
    mproc_pool *open;
    if ((rc = mproc_cluster_pool_new(&open, NULL))) failures++;
    rc = mproc_cluster_shutdown();
    if (rc) {
        fprintf(stderr, "test_cluster: shutdown: %s\n", mproc_strerror(rc));
        failures++;
    }
    test_after_shutdown(open);
    if (mproc_cluster_shutdown() != MPROC_EBADSTATE) failures++;
    printf("test_cluster: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
