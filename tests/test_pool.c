/* Pools: every call and error path under every start method, worker
 * deaths (1000 random kills), time limits, backpressure, terminate. */
#include "pool/pool.h"
#include "testutil.h"

#include <signal.h>
#include <stdatomic.h>

#define METHOD_CTX(i) ctx_of(tu_methods[i])

static const mproc_context *ctx_of(mproc_start_method m)
{
    const mproc_context *c = NULL;
    mproc_get_context(mproc_start_method_name(m), &c);
    return c;
}

static mproc_pool *new_pool(int i, int n)
{
    mproc_pool *p;
    mproc_pool_opts o = {.processes = n, .context = METHOD_CTX(i)};
    TU_OK(mproc_pool_new(&p, &o));
    return p;
}

/* ---- task functions ------------------------------------------------------- */

static int square(const void *arg, size_t len, mproc_result *res)
{
    if (len != sizeof(long)) return mproc_task_fail("want a long, got %zu bytes", len);
    long x = *(const long *)arg, y = x * x;
    return mproc_result_set(res, &y, sizeof y);
}

static int fail_on_3(const void *arg, size_t len, mproc_result *res)
{
    (void)len;
    int x = *(const int *)arg;
    if (x == 3) return mproc_task_fail("three is not allowed (got %d)", x);
    return mproc_result_set(res, &x, sizeof x);
}

static int sleep_ms(const void *arg, size_t len, mproc_result *res)
{
    (void)len;
    (void)res;
    tu_sleep_ms(*(const int *)arg);
    return 0;
}

/* Waits (up to 30 s) for the flag in the arena that arg points to. */
static int wait_gate(const void *arg, size_t len, mproc_result *res)
{
    (void)len;
    (void)res;
    atomic_int *gate = *(atomic_int *const *)arg;
    for (int k = 0; k < 30000 && !atomic_load(gate); k++) tu_sleep_ms(1);
    return atomic_load(gate) ? 0 : mproc_task_fail("the gate never opened");
}

static int crash(const void *arg, size_t len, mproc_result *res)
{
    (void)arg;
    (void)len;
    (void)res;
    raise(SIGSEGV);
    return 0;
}

static int exit_7(const void *arg, size_t len, mproc_result *res)
{
    (void)arg;
    (void)len;
    (void)res;
    exit(7);
}

static int cube(const void *in, void *out)
{
    long x = *(const long *)in;
    *(long *)out = x * x * x;
    return 0;
}

static int neg_or_fail(const void *in, void *out)
{
    int x = *(const int *)in;
    if (x == 500) return mproc_task_fail("no 500");
    *(int *)out = -x;
    return 0;
}

static int value_double(const mproc_value *arg, mproc_value **result)
{
    int64_t x;
    if (mproc_value_get_int(mproc_value_map_get_str(arg, "data"), &x))
        return mproc_task_fail("no data");
    *result = mproc_value_int(2 * x);
    return *result ? 0 : MPROC_ENOMEM;
}

static int init_fails(const void *arg, size_t len, mproc_result *res)
{
    (void)arg;
    (void)len;
    (void)res;
    return mproc_task_fail("initializer says no");
}

/* ---- apply ------------------------------------------------------------------- */

static atomic_int cb_ok, cb_err;

static void on_ok(mproc_future *f, void *ud)
{
    (void)f;
    (void)ud;
    atomic_fetch_add(&cb_ok, 1);
}

static void on_err(mproc_future *f, void *ud)
{
    (void)f;
    (void)ud;
    atomic_fetch_add(&cb_err, 1);
}

START_TEST(apply_and_apply_async)
{
    mproc_pool *pool = new_pool(_i, 2);
    long x = 12;
    void *res;
    size_t len;
    TU_OK(mproc_pool_apply(pool, square, &x, sizeof x, &res, &len));
    ck_assert_int_eq(len, sizeof(long));
    ck_assert_int_eq(*(long *)res, 144);
    free(res);

    atomic_store(&cb_ok, 0);
    atomic_store(&cb_err, 0);
    mproc_future *fs[6];
    mproc_task_opts o = {.callback = on_ok, .error_callback = on_err};
    for (int k = 0; k < 6; k++)
        TU_OK(mproc_pool_apply_async(pool, fail_on_3, &k, sizeof k, &o, &fs[k]));
    for (int k = 0; k < 6; k++) {
        const void *buf;
        int rc = mproc_future_result(fs[k], &buf, &len, 20000);
        ck_assert(mproc_future_done(fs[k]));
        if (k == 3) {
            ck_assert_int_eq(rc, MPROC_ETASK);
            ck_assert(!mproc_future_successful(fs[k]));
            int code;
            const char *msg;
            pid_t pid;
            TU_OK(mproc_future_error(fs[k], &code, &msg, &pid));
            ck_assert_int_eq(code, MPROC_ETASK);
            ck_assert_str_eq(msg, "three is not allowed (got 3)");
            ck_assert_int_gt(pid, 0);
        } else {
            TU_OK(rc);
            ck_assert(mproc_future_successful(fs[k]));
            ck_assert_int_eq(*(const int *)buf, k);
        }
        mproc_future_free(fs[k]);
    }
    /* Callbacks run after waiters are woken (as in Python): give them time. */
    for (int w = 0; w < 5000 && (atomic_load(&cb_ok) < 5 || atomic_load(&cb_err) < 1); w++)
        tu_sleep_ms(1);
    ck_assert_int_eq(atomic_load(&cb_ok), 5);
    ck_assert_int_eq(atomic_load(&cb_err), 1);

    /* a bad argument is the task's error, not a crash */
    TU_RC(mproc_pool_apply(pool, square, "ab", 2, NULL, NULL), MPROC_ETASK);

    /* values */
    mproc_value *arg = mproc_value_map();
    mproc_value_map_set_str(arg, "data", mproc_value_int(21));
    mproc_future *vf;
    TU_OK(mproc_pool_apply_value_async(pool, value_double, arg, NULL, &vf));
    mproc_value *v;
    TU_OK(mproc_future_result_value(vf, &v, 20000));
    int64_t got;
    TU_OK(mproc_value_get_int(v, &got));
    ck_assert_int_eq(got, 42);
    mproc_value_free(v);
    mproc_value_free(arg);
    mproc_future_free(vf);

    TU_RC(mproc_pool_join(pool, 0), MPROC_EBADSTATE); /* not closed */
    TU_OK(mproc_pool_close(pool));
    mproc_future *late;
    TU_RC(mproc_pool_apply_async(pool, square, &x, sizeof x, NULL, &late), MPROC_ESHUTDOWN);
    TU_OK(mproc_pool_join(pool, 20000));
    mproc_pool_free(pool);
}
END_TEST

START_TEST(bad_arguments)
{
    mproc_pool *pool;
    TU_RC(mproc_pool_new(NULL, NULL), MPROC_EINVAL);
    TU_RC(mproc_pool_new(&pool, &(mproc_pool_opts){.processes = -1}), MPROC_EINVAL);
    pool = new_pool(_i, 1);
    mproc_future *f;
    static unsigned char data[8];
    TU_RC(mproc_pool_apply_async(pool, NULL, NULL, 0, NULL, &f), MPROC_EINVAL);
    TU_RC(mproc_pool_apply_async(pool, (mproc_task_fn)(void *)data, NULL, 0, NULL, &f),
          MPROC_EINVAL);
    TU_RC(mproc_pool_map(pool, cube, NULL, 3, 8, NULL, 8, NULL), MPROC_EINVAL);
    mproc_pool_free(pool); /* open: terminated */
}
END_TEST

/* ---- map ----------------------------------------------------------------------- */

/* A map over heap arrays (staged in the arena); 0 if every result is right. */
static int heap_map_ok(mproc_pool *pool, size_t n, long mod)
{
    long *hin = malloc(n * sizeof *hin), *hout = calloc(n, sizeof *hout);
    if (!hin || !hout) return 0;
    for (size_t k = 0; k < n; k++) hin[k] = (long)k % mod;
    int bad = mproc_pool_map(pool, cube, hin, n, sizeof(long), hout, sizeof(long), NULL) != 0;
    for (size_t k = 0; k < n && !bad; k++) bad = hout[k] != hin[k] * hin[k] * hin[k];
    free(hin);
    free(hout);
    return bad;
}

/* In a child: its own pool maps heap arrays (the parent's kept staging
 * block is not the child's to use). */
static int child_maps(void *arg)
{
    mproc_pool *pool;
    mproc_pool_opts o = {.processes = 2, .context = ctx_of(*(const mproc_start_method *)arg)};
    if (mproc_pool_new(&pool, &o) != 0) return 2;
    int bad = heap_map_ok(pool, 50000, 501) || heap_map_ok(pool, 70000, 333);
    mproc_pool_free(pool);
    return bad ? 1 : 0;
}

/* In a child: a staged map of 3 MiB, then a clean end of the pool. */
static int child_stages_and_exits(void *arg)
{
    mproc_pool *pool;
    mproc_pool_opts o = {.processes = 2, .context = ctx_of(*(const mproc_start_method *)arg)};
    if (mproc_pool_new(&pool, &o) != 0) return 2;
    int bad = heap_map_ok(pool, 200000, 77);
    if (mproc_pool_close(pool) || mproc_pool_join(pool, 20000)) bad = 3;
    mproc_pool_free(pool);
    return bad;
}

/* The staging block a process keeps from map to map is given back when
 * that process exits: the family arena does not lose it. */
START_TEST(staging_block_freed_at_exit)
{
    mproc_start_method m = tu_methods[_i];
    ck_assert_int_eq(tu_run_child(child_stages_and_exits, &m, sizeof m, m), 0); /* warm */
    size_t before = tu_arena_allocated();
    ck_assert_int_eq(tu_run_child(child_stages_and_exits, &m, sizeof m, m), 0);
    size_t after = tu_arena_allocated();
    ck_assert_msg(after < before + (256 << 10), "the arena grew by %zu bytes", after - before);
}
END_TEST

START_TEST(map_copies_and_in_place)
{
    mproc_pool *pool = new_pool(_i, 2);
    long in[10], out[10];
    for (long k = 0; k < 10; k++) in[k] = k;
    TU_OK(mproc_pool_map(pool, cube, in, 10, sizeof(long), out, sizeof(long), NULL));
    for (long k = 0; k < 10; k++) ck_assert_int_eq(out[k], k * k * k);

    /* in the arena: in place */
    size_t n = 100000;
    long *ain, *aout;
    TU_OK(mproc_arena_alloc((void **)&ain, n * sizeof(long)));
    TU_OK(mproc_arena_alloc((void **)&aout, n * sizeof(long)));
    for (size_t k = 0; k < n; k++) ain[k] = (long)k % 1000;
    TU_OK(mproc_pool_map(pool, cube, ain, n, sizeof(long), aout, sizeof(long),
                         &(mproc_map_opts){.chunksize = 777}));
    for (size_t k = 0; k < n; k++) ck_assert_int_eq(aout[k], ain[k] * ain[k] * ain[k]);
    mproc_arena_free(ain);
    mproc_arena_free(aout);

    /* large arrays outside the arena: staged in it (copied in, worked on in
     * place, copied out) */
    long *hin = malloc(n * sizeof *hin), *hout = calloc(n, sizeof *hout);
    ck_assert(hin && hout);
    for (size_t k = 0; k < n; k++) hin[k] = (long)k % 777;
    TU_OK(mproc_pool_map(pool, cube, hin, n, sizeof(long), hout, sizeof(long), NULL));
    for (size_t k = 0; k < n; k++) ck_assert_int_eq(hout[k], hin[k] * hin[k] * hin[k]);
    free(hin);
    free(hout);

    /* two maps at once over heap arrays (one kept staging block between
     * them), and a child (fork: it sees the parent's block) mapping too */
    size_t n2 = 30000;
    long *h1 = malloc(n * sizeof *h1), *o1 = calloc(n, sizeof *o1);
    long *h2 = malloc(n2 * sizeof *h2), *o2 = calloc(n2, sizeof *o2);
    ck_assert(h1 && o1 && h2 && o2);
    for (size_t k = 0; k < n; k++) h1[k] = (long)k % 101;
    for (size_t k = 0; k < n2; k++) h2[k] = (long)k % 103;
    mproc_future *f1, *f2;
    TU_OK(mproc_pool_map_async(pool, cube, h1, n, sizeof(long), o1, sizeof(long), NULL, &f1));
    TU_OK(mproc_pool_map_async(pool, cube, h2, n2, sizeof(long), o2, sizeof(long), NULL, &f2));
    TU_OK(mproc_future_result(f2, NULL, NULL, 20000));
    TU_OK(mproc_future_result(f1, NULL, NULL, 20000));
    for (size_t k = 0; k < n; k++) ck_assert_int_eq(o1[k], h1[k] * h1[k] * h1[k]);
    for (size_t k = 0; k < n2; k++) ck_assert_int_eq(o2[k], h2[k] * h2[k] * h2[k]);
    mproc_future_free(f1);
    mproc_future_free(f2);
    free(h1);
    free(o1);
    free(h2);
    free(o2);
    ck_assert_int_eq(heap_map_ok(pool, n, 999), 0);
    mproc_start_method m = tu_methods[_i];
    ck_assert_int_eq(tu_run_child(child_maps, &m, sizeof m, m), 0);
    ck_assert_int_eq(heap_map_ok(pool, n, 555), 0);

    /* no room for a staging block: the inputs travel in the chunk
     * messages and the outputs in the results */
    mproc__pool_stage_limit = 0;
    ck_assert_int_eq(heap_map_ok(pool, n, 321), 0);
    mproc__pool_stage_limit = SIZE_MAX;

    /* an element that fails: its chunk's error; the others are written */
    int iin[1000], iout[1000];
    for (int k = 0; k < 1000; k++) iin[k] = k, iout[k] = 1;
    TU_RC(mproc_pool_map(pool, neg_or_fail, iin, 1000, sizeof(int), iout, sizeof(int),
                         &(mproc_map_opts){.chunksize = 100}),
          MPROC_ETASK);
    ck_assert_int_eq(iout[499], -499);
    ck_assert_int_eq(iout[600], -600);

    /* empty */
    TU_OK(mproc_pool_map(pool, cube, in, 0, sizeof(long), out, sizeof(long), NULL));
    mproc_future *f;
    TU_OK(mproc_pool_map_async(pool, cube, in, 10, sizeof(long), out, sizeof(long), NULL, &f));
    TU_OK(mproc_future_result(f, NULL, NULL, 20000));
    mproc_future_free(f);
    mproc_pool_free(pool);
}
END_TEST

/* An item of the split tests: its index and a counter per item in the
 * arena; the function spins `us` µs, counts the run, writes its pid. */
typedef struct split_item {
    long idx;
    long us;
    _Atomic int *runs;
} split_item;

static int count_and_pid(const void *in, void *out)
{
    const split_item *it = in;
    long long end = mproc_now_ns() + it->us * 1000;
    while (mproc_now_ns() < end) {
    }
    atomic_fetch_add(&it->runs[it->idx], 1);
    *(pid_t *)out = getpid();
    return 0;
}

static split_item *split_items(size_t n, long us, _Atomic int **runs)
{
    TU_OK(mproc_arena_calloc((void **)runs, n * sizeof **runs));
    split_item *in = malloc(n * sizeof *in);
    ck_assert_ptr_nonnull(in);
    for (size_t k = 0; k < n; k++) in[k] = (split_item){(long)k, us, *runs};
    return in;
}

/* One chunk of the whole map: the idle workers split it while it runs,
 * so every worker runs part of it, and every item runs exactly once (in
 * place and staged alike). A worker killed during such a map fails the map
 * with its death, and nothing hangs. */
START_TEST(running_chunks_are_split_for_idle_workers)
{
    mproc_pool *pool = new_pool(_i, 3);
    size_t n = 3000;
    for (int arena = 0; arena < 2; arena++) {
        _Atomic int *runs;
        split_item *in = split_items(n, 20, &runs);
        pid_t *out = malloc(n * sizeof *out);
        split_item *ain = NULL;
        pid_t *aout = NULL;
        if (arena) {
            TU_OK(mproc_arena_alloc((void **)&ain, n * sizeof *ain));
            TU_OK(mproc_arena_alloc((void **)&aout, n * sizeof *aout));
            memcpy(ain, in, n * sizeof *in);
        }
        TU_OK(mproc_pool_map(pool, count_and_pid, arena ? ain : in, n, sizeof *in,
                             arena ? aout : out, sizeof *out, &(mproc_map_opts){.chunksize = n}));
        if (arena) memcpy(out, aout, n * sizeof *out);
        pid_t seen[3] = {0};
        size_t nseen = 0;
        for (size_t k = 0; k < n; k++) {
            ck_assert_int_eq(atomic_load(&runs[k]), 1);
            bool known = false;
            for (size_t j = 0; j < nseen; j++) known |= seen[j] == out[k];
            if (!known) {
                ck_assert_uint_lt(nseen, 3);
                seen[nseen++] = out[k];
            }
        }
        ck_assert_msg(nseen == 3, "%s map: %zu of 3 workers ran items",
                      arena ? "in-place" : "staged", nseen);
        mproc_arena_free(runs);
        mproc_arena_free(ain);
        mproc_arena_free(aout);
        free(in);
        free(out);
    }

    _Atomic int *runs;
    split_item *in = split_items(n, 300, &runs); /* about 0.3 s per worker */
    pid_t *out = malloc(n * sizeof *out);
    mproc_future *f;
    TU_OK(mproc_pool_map_async(pool, count_and_pid, in, n, sizeof *in, out, sizeof *out,
                               &(mproc_map_opts){.chunksize = n}, &f));
    tu_sleep_ms(100);
    pid_t pids[3];
    ck_assert_uint_eq(mproc_pool_workers(pool, pids, 3), 3);
    ck_assert_int_eq(kill(pids[1], SIGKILL), 0);
    TU_RC(mproc_future_result(f, NULL, NULL, 20000), MPROC_EWORKERDIED);
    mproc_future_free(f);
    mproc_arena_free(runs);
    free(in);
    free(out);
    mproc_pool_free(pool);
}
END_TEST

static size_t progress_last;

static void progress(size_t done, size_t total, void *ud)
{
    (void)ud;
    ck_assert_uint_le(done, total);
    progress_last = done;
}

START_TEST(map_progress)
{
    mproc_pool *pool = new_pool(_i, 2);
    long in[1000], out[1000];
    for (long k = 0; k < 1000; k++) in[k] = k;
    progress_last = 0;
    TU_OK(mproc_pool_map(pool, cube, in, 1000, sizeof(long), out, sizeof(long),
                         &(mproc_map_opts){.chunksize = 10, .progress = progress}));
    ck_assert_uint_eq(progress_last, 1000);
    mproc_pool_free(pool);
}
END_TEST

/* ---- imap --------------------------------------------------------------------------- */

typedef struct {
    long next, end;
    long consumed;
    long max_ahead;
} counter;

static int produce(void *ud, void *item)
{
    counter *c = ud;
    if (c->next == c->end) return 0;
    long ahead = c->next - c->consumed;
    if (ahead > c->max_ahead) c->max_ahead = ahead;
    *(long *)item = c->next++;
    return 1;
}

START_TEST(imap_ordered_and_unordered)
{
    mproc_pool *pool = new_pool(_i, 2);
    for (int unordered = 0; unordered < 2; unordered++) {
        counter c = {.end = 500};
        mproc_imap *it;
        TU_OK(mproc_pool_imap(pool, cube, sizeof(long), sizeof(long), produce, &c,
                              &(mproc_imap_opts){.unordered = unordered, .chunksize = 7}, &it));
        long sum = 0, expect = 0;
        size_t idx;
        long v;
        int rc;
        size_t k = 0;
        while ((rc = mproc_imap_next(it, &v, &idx, 20000)) == 0) {
            if (!unordered) ck_assert_uint_eq(idx, k);
            ck_assert_int_eq(v, (long)idx * (long)idx * (long)idx);
            sum += v;
            k++;
            c.consumed++;
        }
        ck_assert_int_eq(rc, MPROC_EEOF);
        for (long j = 0; j < 500; j++) expect += j * j * j;
        ck_assert_int_eq(sum, expect);
        mproc_imap_free(it);
    }
    mproc_pool_free(pool);
}
END_TEST

/* An endless-looking producer: 10 M items, at most max_inflight ahead. */
START_TEST(imap_backpressure)
{
    mproc_pool *pool = new_pool(_i, 2);
    long total = TU_ASAN ? 1000000 : 10000000;
    counter c = {.end = total};
    mproc_imap *it;
    size_t inflight = 4 * 2 * 20000;
    TU_OK(mproc_pool_imap(pool, cube, sizeof(long), sizeof(long), produce, &c,
                          &(mproc_imap_opts){.chunksize = 20000, .max_inflight = inflight}, &it));
    long v, n = 0;
    while (mproc_imap_next(it, &v, NULL, 60000) == 0) {
        n++;
        c.consumed++;
    }
    ck_assert_int_eq(n, total);
    ck_assert_int_le(c.max_ahead, (long)inflight + 20000);
    mproc_imap_free(it);
    mproc_pool_free(pool);
}
END_TEST

/* As in Python, an imap made before close still yields all its results
 * after it (its chunks are still taken), and join waits for it; one freed
 * unfinished lets join return. Made after close: MPROC_ESHUTDOWN. */
START_TEST(imap_outlives_close)
{
    mproc_pool *pool = new_pool(_i, 2);
    counter c = {.end = 5000};
    mproc_imap *it, *left;
    mproc_imap_opts o = {.chunksize = 50, .max_inflight = 200};
    TU_OK(mproc_pool_imap(pool, cube, sizeof(long), sizeof(long), produce, &c, &o, &it));
    counter c2 = {.end = 1000000};
    TU_OK(mproc_pool_imap(pool, cube, sizeof(long), sizeof(long), produce, &c2, &o, &left));
    long v;
    TU_OK(mproc_imap_next(left, &v, NULL, 20000)); /* started, then abandoned */
    TU_OK(mproc_pool_close(pool));
    mproc_imap *late;
    TU_RC(mproc_pool_imap(pool, cube, sizeof(long), sizeof(long), produce, &c, &o, &late),
          MPROC_ESHUTDOWN);
    long n = 0;
    size_t idx;
    int rc;
    while ((rc = mproc_imap_next(it, &v, &idx, 20000)) == 0) {
        ck_assert_int_eq(v, (long)idx * (long)idx * (long)idx);
        n++;
        c.consumed++;
    }
    TU_RC(rc, MPROC_EEOF);
    ck_assert_int_eq(n, 5000);
    TU_RC(mproc_pool_join(pool, 200), MPROC_ETIMEDOUT); /* `left` still holds it */
    mproc_imap_free(left);
    TU_OK(mproc_pool_join(pool, 20000));
    mproc_imap_free(it);
    mproc_pool_free(pool);
}
END_TEST

/* ---- faults -------------------------------------------------------------------------- */

START_TEST(crash_and_exit_fail_only_their_task)
{
    mproc_pool *pool = new_pool(_i, 2);
    mproc_future *a, *b, *c;
    long x = 5;
    TU_OK(mproc_pool_apply_async(pool, crash, NULL, 0, NULL, &a));
    TU_OK(mproc_pool_apply_async(pool, exit_7, NULL, 0, NULL, &b));
    TU_OK(mproc_pool_apply_async(pool, square, &x, sizeof x, NULL, &c));
    TU_RC(mproc_future_result(a, NULL, NULL, 20000), MPROC_EWORKERDIED);
    TU_RC(mproc_future_result(b, NULL, NULL, 20000), MPROC_EWORKERDIED);
    TU_OK(mproc_future_result(c, NULL, NULL, 20000));
    const char *msg;
    pid_t pid;
    TU_OK(mproc_future_error(a, NULL, &msg, &pid));
    ck_assert_msg(strstr(msg, "signal 11") && strstr(msg, "backtrace"), "message: %s", msg);
    ck_assert_int_gt(pid, 0);
    TU_OK(mproc_future_error(b, NULL, &msg, NULL));
    ck_assert_msg(strstr(msg, "exited with code 7"), "message: %s", msg);
    mproc_future_free(a);
    mproc_future_free(b);
    mproc_future_free(c);
    /* the pool goes on with replaced workers */
    for (long k = 0; k < 20; k++) {
        void *res;
        TU_OK(mproc_pool_apply(pool, square, &k, sizeof k, &res, NULL));
        ck_assert_int_eq(*(long *)res, k * k);
        free(res);
    }
    TU_OK(mproc_pool_close(pool));
    TU_OK(mproc_pool_join(pool, 20000));
    mproc_pool_free(pool);
}
END_TEST

/* Tasks that announce the worker running them, then sleep. */
static _Atomic int *announce; /* in the arena: pid per task */

typedef struct {
    int k, ms;
    _Atomic int *slots;
} busy_arg;

static int busy(const void *arg, size_t len, mproc_result *res)
{
    (void)len;
    const busy_arg *a = arg;
    atomic_store(&a->slots[a->k], (int)getpid());
    tu_sleep_ms(a->ms);
    return mproc_result_set(res, &a->k, sizeof a->k);
}

START_TEST(random_worker_kills)
{
    int trials = tu_methods[_i] == MPROC_START_FORKSERVER ? 1000 : 150;
    if (TU_ASAN) trials /= 5;
    mproc_pool *pool = new_pool(_i, 3);
    TU_OK(mproc_arena_calloc((void **)&announce, 8 * sizeof *announce));
    srand(12345);
    for (int t = 0; t < trials; t++) {
        mproc_future *fs[6];
        int victim = rand() % 6;
        for (int k = 0; k < 6; k++) {
            atomic_store(&announce[k], 0);
            busy_arg a = {k, k == victim ? 20000 : 2, announce};
            TU_OK(mproc_pool_apply_async(pool, busy, &a, sizeof a, NULL, &fs[k]));
        }
        /* once the victim task runs, kill its worker */
        pid_t pid = 0;
        for (int w = 0; w < 20000 && !(pid = atomic_load(&announce[victim])); w++) tu_sleep_ms(1);
        ck_assert_int_gt(pid, 0);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_int_eq(mproc_future_result(fs[victim], NULL, NULL, 20000), MPROC_EWORKERDIED);
        const char *msg;
        TU_OK(mproc_future_error(fs[victim], NULL, &msg, NULL));
        ck_assert_msg(strstr(msg, "signal 9"), "message: %s", msg);
        for (int k = 0; k < 6; k++) { /* every other task is done, correctly */
            if (k == victim) continue;
            const void *buf;
            TU_OK(mproc_future_result(fs[k], &buf, NULL, 20000));
            ck_assert_int_eq(*(const int *)buf, k);
        }
        for (int k = 0; k < 6; k++) mproc_future_free(fs[k]);
    }
    mproc_arena_free((void *)announce);
    TU_OK(mproc_pool_terminate(pool));
    TU_OK(mproc_pool_join(pool, 20000));
    mproc_pool_free(pool);
}
END_TEST

/* Workers killed at random moments of maps whose chunks are being split:
 * the map fails with the death or succeeds, never hangs, no item runs
 * twice, and after a success every item ran once. */
START_TEST(random_kills_during_split_maps)
{
    int trials = TU_ASAN ? 8 : 30;
    mproc_pool *pool = new_pool(_i, 3);
    size_t n = 1500;
    _Atomic int *runs;
    split_item *hin = split_items(n, 20, &runs), *in;
    pid_t *out;
    TU_OK(mproc_arena_alloc((void **)&in, n * sizeof *in));
    TU_OK(mproc_arena_alloc((void **)&out, n * sizeof *out));
    memcpy(in, hin, n * sizeof *in);
    srand(777);
    int failed = 0;
    for (int t = 0; t < trials; t++) {
        for (size_t k = 0; k < n; k++) atomic_store(&runs[k], 0);
        mproc_future *f;
        TU_OK(mproc_pool_map_async(pool, count_and_pid, in, n, sizeof *in, out, sizeof *out,
                                   &(mproc_map_opts){.chunksize = n / (size_t)(1 + rand() % 4)},
                                   &f));
        tu_sleep_ms(rand() % 12);
        pid_t pids[3];
        size_t nw = mproc_pool_workers(pool, pids, 3);
        ck_assert_uint_gt(nw, 0);
        kill(pids[(size_t)rand() % nw], SIGKILL);
        int rc = mproc_future_result(f, NULL, NULL, 20000);
        ck_assert_msg(rc == 0 || rc == MPROC_EWORKERDIED, "trial %d: %s", t, mproc_err_name(rc));
        failed += rc != 0;
        for (size_t k = 0; k < n; k++)
            ck_assert_msg(atomic_load(&runs[k]) <= 1, "trial %d (%s): item %zu ran %d times", t,
                          mproc_err_name(rc), k, atomic_load(&runs[k]));
        if (rc == 0)
            for (size_t k = 0; k < n; k++) ck_assert_int_eq(atomic_load(&runs[k]), 1);
        mproc_future_free(f);
    }
    ck_assert_int_gt(failed, 0); /* the kills did land in maps */
    mproc_arena_free(runs);
    mproc_arena_free(in);
    mproc_arena_free(out);
    free(hin);
    mproc_pool_free(pool);
}
END_TEST

START_TEST(task_time_limits)
{
    mproc_pool *pool;
    TU_OK(mproc_pool_new(
        &pool,
        &(mproc_pool_opts){.processes = 2, .context = METHOD_CTX(_i), .task_timeout_ms = 300}));
    int long_ms = 10000, short_ms = 10;
    mproc_future *a, *b, *c;
    long long t0 = mproc_now_ns();
    TU_OK(mproc_pool_apply_async(pool, sleep_ms, &long_ms, sizeof long_ms, NULL, &a));
    TU_OK(mproc_pool_apply_async(pool, sleep_ms, &short_ms, sizeof short_ms, NULL, &b));
    TU_OK(mproc_pool_apply_async(pool, sleep_ms, &long_ms, sizeof long_ms,
                                 &(mproc_task_opts){.timeout_ms = 100}, &c));
    TU_RC(mproc_future_result(a, NULL, NULL, 20000), MPROC_ETIMELIMIT);
    TU_OK(mproc_future_result(b, NULL, NULL, 20000));
    TU_RC(mproc_future_result(c, NULL, NULL, 20000), MPROC_ETIMELIMIT);
    ck_assert(mproc_now_ns() - t0 < 5000000000LL);
    mproc_future_free(a);
    mproc_future_free(b);
    mproc_future_free(c);
    /* MPROC_FOREVER: no limit for this task */
    int ms = 500;
    TU_OK(mproc_pool_apply_async(pool, sleep_ms, &ms, sizeof ms,
                                 &(mproc_task_opts){.timeout_ms = MPROC_FOREVER}, &a));
    TU_OK(mproc_future_result(a, NULL, NULL, 20000));
    mproc_future_free(a);
    mproc_pool_free(pool);
}
END_TEST

/* Succeeds for the first two workers of a pool, then fails: the counter
 * is in the arena (its address is the argument). */
static int init_twice(const void *arg, size_t len, mproc_result *res)
{
    (void)len;
    (void)res;
    _Atomic int *runs;
    memcpy(&runs, arg, sizeof runs);
    int k = atomic_fetch_add(runs, 1);
    return k < 2 ? 0 : mproc_task_fail("initializer run %d says no", k + 1);
}

/* A replacement worker whose initializer fails breaks the pool: the tasks
 * in flight and later calls fail with that error, no worker is started
 * again and again, and the pool still shuts down. */
START_TEST(replacement_initializer_failure_breaks_the_pool)
{
    _Atomic int *runs;
    TU_OK(mproc_arena_calloc((void **)&runs, sizeof *runs));
    mproc_pool *pool;
    TU_OK(mproc_pool_new(&pool, &(mproc_pool_opts){.processes = 2,
                                                   .context = METHOD_CTX(_i),
                                                   .initializer = init_twice,
                                                   .initargs = &runs,
                                                   .initargs_len = sizeof runs}));
    int ms = 20000;
    mproc_future *f[2];
    for (int k = 0; k < 2; k++)
        TU_OK(mproc_pool_apply_async(pool, sleep_ms, &ms, sizeof ms, NULL, &f[k]));
    pid_t pids[2];
    ck_assert_uint_eq(mproc_pool_workers(pool, pids, 2), 2);
    ck_assert_int_eq(kill(pids[0], SIGKILL), 0);
    for (int k = 0; k < 2; k++) { /* the killed one's task, and the other */
        int rc = mproc_future_result(f[k], NULL, NULL, 10000);
        ck_assert_msg(rc == MPROC_EWORKERDIED || rc == MPROC_ETASK, "task %d: %s", k,
                      mproc_err_name(rc));
        mproc_future_free(f[k]);
    }
    mproc_future *g;
    int rc = mproc_pool_apply_async(pool, sleep_ms, &ms, sizeof ms, NULL, &g);
    ck_assert_msg(rc == MPROC_ESHUTDOWN, "%s", mproc_err_name(rc));
    tu_sleep_ms(300);
    int seen = atomic_load(runs);
    ck_assert_int_eq(seen, 3); /* two at creation, one replacement */
    TU_OK(mproc_pool_terminate(pool));
    TU_OK(mproc_pool_join(pool, 10000));
    ck_assert_uint_eq(mproc_pool_workers(pool, NULL, 0), 0);
    mproc_pool_free(pool);
    mproc_arena_free(runs);
}
END_TEST

START_TEST(initializer_failure_fails_creation)
{
    mproc_pool *pool = NULL;
    TU_RC(mproc_pool_new(&pool, &(mproc_pool_opts){.processes = 3,
                                                   .context = METHOD_CTX(_i),
                                                   .initializer = init_fails}),
          MPROC_ETASK);
    ck_assert_ptr_null(pool);
    size_t n = 9;
    TU_OK(mproc_active_children(NULL, 0, &n));
    ck_assert_uint_eq(n, 0);
}
END_TEST

static int pid_task(const void *arg, size_t len, mproc_result *res)
{
    (void)arg;
    (void)len;
    pid_t p = getpid();
    return mproc_result_set(res, &p, sizeof p);
}

START_TEST(maxtasksperchild_replaces_workers)
{
    mproc_pool *pool;
    TU_OK(mproc_pool_new(
        &pool,
        &(mproc_pool_opts){.processes = 2, .context = METHOD_CTX(_i), .maxtasksperchild = 3}));
    pid_t seen[30];
    for (int k = 0; k < 30; k++) {
        void *res;
        TU_OK(mproc_pool_apply(pool, pid_task, NULL, 0, &res, NULL));
        seen[k] = *(pid_t *)res;
        free(res);
    }
    for (int k = 0; k < 30; k++) {
        int same = 0;
        for (int j = 0; j < 30; j++) same += seen[j] == seen[k];
        ck_assert_int_le(same, 3);
    }
    TU_OK(mproc_pool_close(pool));
    TU_OK(mproc_pool_join(pool, 20000));
    mproc_pool_free(pool);
}
END_TEST

static int sleep_pid(const void *arg, size_t len, mproc_result *res)
{
    (void)len;
    tu_sleep_ms(*(const int *)arg);
    pid_t p = getpid();
    return mproc_result_set(res, &p, sizeof p);
}

/* A task queued behind a long one is taken back for an idle worker: A
 * (long) and C go to the first worker's inbox, B and D to the second's,
 * which is then idle while C waits behind A. */
START_TEST(idle_worker_takes_back_queued_task)
{
    mproc_pool *pool = new_pool(_i, 2);
    int ms[4] = {1500, 0, 0, 0};
    mproc_future *f[4];
    long long t0 = mproc_now_ns();
    for (int k = 0; k < 4; k++)
        TU_OK(mproc_pool_apply_async(pool, sleep_pid, &ms[k], sizeof ms[k], NULL, &f[k]));
    pid_t pid[4];
    for (int k = 1; k < 4; k++) {
        const void *r;
        size_t len;
        TU_OK(mproc_future_result(f[k], &r, &len, 5000));
        ck_assert_uint_eq(len, sizeof(pid_t));
        memcpy(&pid[k], r, sizeof(pid_t));
    }
    long long quick_ms = (mproc_now_ns() - t0) / 1000000;
    ck_assert_msg(quick_ms < 1000, "the short tasks took %lld ms: one waited behind the long one",
                  quick_ms);
    const void *r;
    TU_OK(mproc_future_result(f[0], &r, NULL, 5000));
    memcpy(&pid[0], r, sizeof(pid_t));
    for (int k = 1; k < 4; k++) ck_assert_int_ne(pid[k], pid[0]);
    for (int k = 0; k < 4; k++) mproc_future_free(f[k]);
    TU_OK(mproc_pool_close(pool));
    TU_OK(mproc_pool_join(pool, 20000));
    mproc_pool_free(pool);
}
END_TEST

/* A stopped worker's queued tasks are taken back again and again while
 * new ones are queued to it: its inbox must never hold more messages than
 * its claim ring has words (a lapped claim made it skip a task: a hang). */
START_TEST(stopped_worker_inbox_is_bounded)
{
    mproc_pool *pool = new_pool(_i, 2);
    long x = 3;
    for (int k = 0; k < 50; k++) TU_OK(mproc_pool_apply(pool, square, &x, sizeof x, NULL, NULL));
    pid_t pids[2];
    ck_assert_uint_eq(mproc_pool_workers(pool, pids, 2), 2);
    ck_assert_int_eq(kill(pids[0], SIGSTOP), 0);
    enum { N = 3000 };
    mproc_future **fs = malloc(N * sizeof *fs);
    ck_assert_ptr_nonnull(fs);
    for (int k = 0; k < N; k++)
        TU_OK(mproc_pool_apply_async(pool, square, &x, sizeof x, NULL, &fs[k]));
    tu_sleep_ms(300);
    ck_assert_int_eq(kill(pids[0], SIGCONT), 0);
    TU_OK(mproc_futures_wait(fs, N, 10000, MPROC_ALL_COMPLETED, NULL));
    for (int k = 0; k < N; k++) {
        TU_OK(mproc_future_result(fs[k], NULL, NULL, 0));
        mproc_future_free(fs[k]);
    }
    free(fs);
    TU_OK(mproc_pool_close(pool));
    TU_OK(mproc_pool_join(pool, 20000));
    mproc_pool_free(pool);
}
END_TEST

START_TEST(terminate_with_tasks_in_flight)
{
    mproc_pool *pool = new_pool(_i, 2);
    mproc_future *fs[20];
    int ms = 10000;
    for (int k = 0; k < 20; k++)
        TU_OK(mproc_pool_apply_async(pool, sleep_ms, &ms, sizeof ms, NULL, &fs[k]));
    tu_sleep_ms(100);
    long long t0 = mproc_now_ns();
    TU_OK(mproc_pool_terminate(pool));
    TU_OK(mproc_pool_join(pool, 20000));
    ck_assert(mproc_now_ns() - t0 < 3000000000LL);
    for (int k = 0; k < 20; k++) {
        TU_RC(mproc_future_result(fs[k], NULL, NULL, 0), MPROC_ESHUTDOWN);
        mproc_future_free(fs[k]);
    }
    ck_assert_uint_eq(mproc_pool_workers(pool, NULL, 0), 0);
    mproc_pool_free(pool);
}
END_TEST

START_TEST(cancel_pending_and_running)
{
    mproc_pool *pool = new_pool(_i, 1);
    int ms = 500;
    mproc_future *run, *pend[10];
    TU_OK(mproc_pool_apply_async(pool, sleep_ms, &ms, sizeof ms, NULL, &run));
    for (int k = 0; k < 10; k++)
        TU_OK(mproc_pool_apply_async(pool, sleep_ms, &ms, sizeof ms, NULL, &pend[k]));
    for (int w = 0; w < 5000 && !mproc_future_running(run); w++) tu_sleep_ms(1);
    TU_RC(mproc_future_cancel(run), MPROC_ERUNNING);
    /* the last ones are still pending (beyond the worker's window) */
    TU_OK(mproc_future_cancel(pend[9]));
    ck_assert(mproc_future_cancelled(pend[9]));
    TU_RC(mproc_future_result(pend[9], NULL, NULL, 0), MPROC_ECANCELLED);
    TU_OK(mproc_pool_terminate(pool));
    TU_OK(mproc_pool_join(pool, 20000));
    mproc_future_free(run);
    for (int k = 0; k < 10; k++) mproc_future_free(pend[k]);
    mproc_pool_free(pool);
}
END_TEST

/* ---- a fork copy of the owner ------------------------------------------------ */

/* What a plain fork() copy of the pool's owner may do: every call is
 * MPROC_ECHILD, a pending future cannot be waited on there, a done one can
 * be read, and the frees release the copy's memory only. Returns 0, or the
 * number of the first step that went wrong (the copy's exit code). */
static int copy_calls(mproc_pool *pool, mproc_imap *it, mproc_future *pending, mproc_future *done)
{
    int step = 0;
#define EXPECT(expr, want)                                                                         \
    do {                                                                                           \
        step++;                                                                                    \
        if ((long)(expr) != (long)(want)) return step;                                             \
    } while (0)
    long x = 3, in[4] = {1, 2, 3, 4}, out[4];
    mproc_future *f = NULL;
    EXPECT(mproc_pool_close(pool), MPROC_ECHILD);
    EXPECT(mproc_pool_terminate(pool), MPROC_ECHILD);
    EXPECT(mproc_pool_join(pool, 0), MPROC_ECHILD);
    EXPECT(mproc_pool_join(pool, MPROC_FOREVER), MPROC_ECHILD);
    EXPECT(mproc_pool_apply_async(pool, square, &x, sizeof x, NULL, &f), MPROC_ECHILD);
    EXPECT(mproc_pool_apply(pool, square, &x, sizeof x, NULL, NULL), MPROC_ECHILD);
    mproc_value *arg = mproc_value_map();
    mproc_value_map_set_str(arg, "data", mproc_value_int(1));
    EXPECT(mproc_pool_apply_value_async(pool, value_double, arg, NULL, &f), MPROC_ECHILD);
    mproc_value_free(arg);
    EXPECT(mproc_pool_map(pool, cube, in, 4, sizeof *in, out, sizeof *out, NULL), MPROC_ECHILD);
    EXPECT(mproc_pool_map_async(pool, cube, in, 4, sizeof *in, out, sizeof *out, NULL, &f),
           MPROC_ECHILD);
    counter c = {.end = 10};
    mproc_imap *it2;
    EXPECT(mproc_pool_imap(pool, cube, sizeof(long), sizeof(long), produce, &c, NULL, &it2),
           MPROC_ECHILD);
    EXPECT(mproc_imap_next(it, &x, NULL, MPROC_FOREVER), MPROC_ECHILD);
    EXPECT(mproc_pool_workers(pool, NULL, 0), 0);
    EXPECT(mproc_future_cancel(pending), MPROC_ECHILD);
    EXPECT(mproc_future_wait(pending, MPROC_FOREVER), MPROC_ECHILD);
    EXPECT(mproc_future_result(pending, NULL, NULL, MPROC_FOREVER), MPROC_ECHILD);
    EXPECT(mproc_future_add_done_callback(pending, on_ok, NULL), MPROC_ECHILD);
    mproc_future *both[2] = {pending, done};
    EXPECT(mproc_futures_wait(both, 2, MPROC_FOREVER, MPROC_ALL_COMPLETED, NULL), MPROC_ECHILD);
    EXPECT(mproc_futures_wait(&pending, 1, MPROC_FOREVER, MPROC_FIRST_COMPLETED, NULL),
           MPROC_ECHILD);
    EXPECT(mproc_futures_wait(both, 2, MPROC_FOREVER, MPROC_FIRST_COMPLETED, NULL), 0);
    mproc_as_completed *ac;
    EXPECT(mproc_as_completed_new(&ac, both, 2), 0);
    EXPECT(mproc_as_completed_next(ac, &f, MPROC_FOREVER), 0); /* the done one */
    EXPECT(f == done, 1);
    EXPECT(mproc_as_completed_next(ac, &f, MPROC_FOREVER), MPROC_ECHILD);
    mproc_as_completed_free(ac);
    const void *buf;
    size_t len;
    EXPECT(mproc_future_result(done, &buf, &len, MPROC_FOREVER), 0);
    EXPECT(len == sizeof(long) && *(const long *)buf == 49, 1);
    EXPECT(mproc_future_cancel(done), MPROC_EBADSTATE);
    /* The copy's own references and memory. */
    mproc_future_free(pending);
    mproc_future_free(done);
    mproc_imap_free(it);
    mproc_pool_free(pool);
#undef EXPECT
    return 0;
}

/* A plain fork() copy of the process that owns a pool (not a worker, not
 * an mproc child) uses the pool: it gets MPROC_ECHILD everywhere, and the
 * owner's pool, futures and imap go on untouched, every task done. */
START_TEST(forked_copy_cannot_touch_the_pool)
{
    mproc_pool *pool = new_pool(_i, 2);
    long seven = 7;
    mproc_future *done, *fs[6];
    TU_OK(mproc_pool_apply_async(pool, square, &seven, sizeof seven, NULL, &done));
    TU_OK(mproc_future_wait(done, 20000));
    counter c = {.end = 100};
    mproc_imap *it;
    TU_OK(mproc_pool_imap(pool, cube, sizeof(long), sizeof(long), produce, &c,
                          &(mproc_imap_opts){.chunksize = 5}, &it));
    long v;
    size_t idx;
    TU_OK(mproc_imap_next(it, &v, &idx, 20000));
    ck_assert(idx == 0 && v == 0);
    /* Tasks that wait for a flag in the arena: none is done at the fork. */
    atomic_int *gate;
    TU_OK(mproc_arena_calloc((void **)&gate, sizeof *gate));
    for (int k = 0; k < 6; k++)
        TU_OK(mproc_pool_apply_async(pool, wait_gate, &gate, sizeof gate, NULL, &fs[k]));

    fflush(NULL);
    pid_t copy = fork();
    ck_assert_int_ge(copy, 0);
    if (copy == 0) {
        alarm(30); /* a copy that hangs fails the test, it does not hang it */
        _exit(copy_calls(pool, it, fs[5], done));
    }
    int st;
    ck_assert_int_eq(waitpid(copy, &st, 0), copy);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the copy failed at step %d (signal %d)",
                  WIFEXITED(st) ? WEXITSTATUS(st) : 0, WIFSIGNALED(st) ? WTERMSIG(st) : 0);

    /* The owner's pool is untouched: what was queued runs, the imap goes
     * on, new work runs, and close/join end it. */
    atomic_store(gate, 1);
    for (int k = 0; k < 6; k++) {
        TU_OK(mproc_future_result(fs[k], NULL, NULL, 20000));
        mproc_future_free(fs[k]);
    }
    for (long k = 1; k < 100; k++) {
        TU_OK(mproc_imap_next(it, &v, &idx, 20000));
        ck_assert(idx == (size_t)k && v == k * k * k);
    }
    TU_RC(mproc_imap_next(it, &v, &idx, 20000), MPROC_EEOF);
    mproc_imap_free(it);
    void *res;
    size_t len;
    TU_OK(mproc_pool_apply(pool, square, &seven, sizeof seven, &res, &len));
    ck_assert(len == sizeof(long) && *(long *)res == 49);
    free(res);
    long in[50], out[50];
    for (int k = 0; k < 50; k++) in[k] = k;
    TU_OK(mproc_pool_map(pool, cube, in, 50, sizeof *in, out, sizeof *out, NULL));
    for (int k = 0; k < 50; k++) ck_assert_int_eq(out[k], (long)k * k * k);
    ck_assert_uint_eq(mproc_pool_workers(pool, NULL, 0), 2);
    mproc_future_free(done);
    TU_OK(mproc_pool_close(pool));
    TU_OK(mproc_pool_join(pool, 20000));
    mproc_pool_free(pool);
    mproc_arena_free(gate);
}
END_TEST

/* The plain case: a fork copy closes and frees the pool, as if it were
 * its own. Before, close returned 0 and sent the owner's workers their
 * STOP: the owner's tasks never ran again. */
START_TEST(forked_copy_close_leaves_the_owner_working)
{
    mproc_pool *pool = new_pool(_i, 2);
    long x = 5;
    TU_OK(mproc_pool_apply(pool, square, &x, sizeof x, NULL, NULL));
    fflush(NULL);
    pid_t copy = fork();
    ck_assert_int_ge(copy, 0);
    if (copy == 0) {
        alarm(30);
        int rc = mproc_pool_close(pool);
        mproc_pool_free(pool);
        _exit(rc == MPROC_ECHILD ? 0 : 1);
    }
    int st;
    ck_assert_int_eq(waitpid(copy, &st, 0), copy);
    mproc_future *fs[8];
    for (long k = 0; k < 8; k++)
        TU_OK(mproc_pool_apply_async(pool, square, &k, sizeof k, NULL, &fs[k]));
    for (long k = 0; k < 8; k++) {
        const void *buf;
        size_t len;
        TU_OK(mproc_future_result(fs[k], &buf, &len, 10000));
        ck_assert_int_eq(*(const long *)buf, k * k);
        mproc_future_free(fs[k]);
    }
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "the copy's close was not MPROC_ECHILD (status %#x)", st);
    TU_OK(mproc_pool_close(pool));
    TU_OK(mproc_pool_join(pool, 20000));
    mproc_pool_free(pool);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tu_tcase(s, "calls", 120);
    tcase_add_loop_test(tc, apply_and_apply_async, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, bad_arguments, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, map_copies_and_in_place, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, staging_block_freed_at_exit, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, map_progress, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, running_chunks_are_split_for_idle_workers, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, imap_ordered_and_unordered, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, imap_backpressure, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, imap_outlives_close, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, forked_copy_close_leaves_the_owner_working, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, forked_copy_cannot_touch_the_pool, 0, TU_NMETHODS);
    tc = tu_tcase(s, "faults", 600);
    tcase_add_loop_test(tc, crash_and_exit_fail_only_their_task, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, random_worker_kills, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, random_kills_during_split_maps, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, task_time_limits, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, initializer_failure_fails_creation, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, replacement_initializer_failure_breaks_the_pool, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, maxtasksperchild_replaces_workers, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, terminate_with_tasks_in_flight, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, stopped_worker_inbox_is_bounded, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, idle_worker_takes_back_queued_task, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, cancel_pending_and_running, 0, TU_NMETHODS);
    return tu_run(s);
}
