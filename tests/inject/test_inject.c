/* The failure-injection driver (built with -DMPROC_INJECT=ON only; see
 * docs/testing.md), in the spirit of curl's torture tests.
 *
 * Each scenario (a queue's life, a pool's, processes and pipes under every
 * start method, the base helpers and arena objects) first runs once with
 * every call counted. Then, for every N from 1 to that count, a fresh
 * child of the test runs it again with call N made to fail:
 *
 *   hard pass  an allocation (malloc & co., the arena) fails with ENOMEM,
 *              an fd-making call with EMFILE, fork/spawn/pthread_create
 *              with EAGAIN, mmap with ENOMEM. Every step must succeed or
 *              return the code that says so (MPROC_ENOMEM, MPROC_EMFILE,
 *              MPROC_EAGAIN), and the same step, tried again on the same
 *              objects, must then succeed.
 *   eintr pass a read, write or poll on a pipe or socket fails with EINTR,
 *              or a futex wait wakes up spuriously: nothing may show.
 *   short pass a read or write where the kernel may return a short count
 *              does: nothing may show.
 *
 * After the scenario the child runs it once more without injection (the
 * library is still usable) if a call did fail, frees everything and checks that no fd, arena
 * byte or child process is left; it exits through exit(), so LeakSanitizer
 * checks the heap in an ASan build. A child that does not finish within
 * CHILD_TIMEOUT_S is a hang. Any failure prints N, the call that failed
 * ("file:line kind") and what went wrong.
 *
 * INJECT_PASS=hard|eintr|short runs only that pass; INJECT_N=k only N = k
 * (of the hard pass unless INJECT_PASS says) and prints what happens; INJECT_VERBOSE=1 prints every
 * injected failure; INJECT_GDB=1 prints the threads' stacks of a child that hangs. */
#include "base/base.h"
#include "base/inject.h"
#include "pool/pool.h"
#include "testutil.h"

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>

#define CHILD_TIMEOUT_S 60

typedef struct pass {
    const char *name;
    unsigned kinds;
    bool may_fail; /* a step may return a clear error */
} pass;

static const pass passes[] = {
    {"hard", MPROC__INJ_HARD, true},
    {"eintr", MPROC__INJ_IO | MPROC__INJ_WAKE, false},
    {"short", MPROC__INJ_SHORT, false},
};

/* ---- steps ------------------------------------------------------------------- */

static const pass *cur_pass; /* NULL: no injection (the check run) */
static int failed_steps;     /* steps that returned a clear error (then passed) */

static void bad(const char *fmt, ...) MPROC_PRINTF(1, 2);
static void bad(const char *fmt, ...)
{
    char where[256] = "";
    mproc__inject_fired(where, sizeof where);
    unsigned long n = mproc__inject_disarm();
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "inject: FAIL (pass %s, injected at %s, %lu calls): ",
            cur_pass ? cur_pass->name : "none", where, n);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(90);
}

/* The code that says what failed: MPROC_ENOMEM for an allocation or an
 * mmap, MPROC_EMFILE for an fd, MPROC_EAGAIN for a fork, spawn or thread. */
static bool clear_code(int rc)
{
    char where[256];
    if (!mproc__inject_fired(where, sizeof where)) return false;
    const char *kind = strrchr(where, ' ') + 1;
    if (strcmp(kind, "alloc") == 0 || strcmp(kind, "map") == 0) return rc == MPROC_ENOMEM;
    if (strcmp(kind, "fd") == 0) return rc == MPROC_EMFILE;
    if (strcmp(kind, "proc") == 0) return rc == MPROC_EAGAIN;
    return false;
}

/* Runs a step; one that fails must fail with a clear code (in the hard
 * pass only) and then succeed when tried again. */
#define STEP(expr)                                                                                 \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ == 0) break;                                                                       \
        if (!cur_pass || !cur_pass->may_fail || !clear_code(rc_))                                  \
            bad("line %d: %s -> %s", __LINE__, #expr, mproc_err_name(rc_));                        \
        failed_steps++;                                                                            \
        if ((rc_ = (expr)) != 0)                                                                   \
            bad("line %d: %s failed again -> %s", __LINE__, #expr, mproc_err_name(rc_));           \
    } while (0)

/* A constructor that returns NULL when memory runs out, as a step. */
#define NEW(dst, expr)                                                                             \
    do {                                                                                           \
        if (((dst) = (expr)) != NULL) break;                                                       \
        if (!cur_pass || !cur_pass->may_fail) bad("line %d: %s -> NULL", __LINE__, #expr);         \
        failed_steps++;                                                                            \
        if (((dst) = (expr)) == NULL) bad("line %d: %s -> NULL again", __LINE__, #expr);           \
    } while (0)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) bad("line %d: %s does not hold", __LINE__, #cond);                            \
    } while (0)

static const mproc_context *ctx_of(mproc_start_method m)
{
    const mproc_context *c = NULL;
    mproc_get_context(mproc_start_method_name(m), &c);
    return c;
}

/* ---- scenario: a queue -------------------------------------------------------- */

typedef struct echo_args {
    mproc_queue *in, *out;
} echo_args;

/* A consumer process: every message of `in` goes back on `out` until
 * `in` is closed. */
static int echo_main(void *arg)
{
    echo_args *a = arg;
    for (;;) {
        char buf[256];
        size_t n;
        int rc = mproc_queue_get_into(a->in, buf, sizeof buf, &n, 30000);
        if (rc == MPROC_ECLOSED) return 0;
        if (rc) return 1;
        if (mproc_queue_put(a->out, buf, n, 30000)) return 2;
    }
}

/* Steps on values: the item made in the step, so that a retry makes it
 * again (the list or map takes it over, also on failure). */
static int append_item(mproc_value *list, mproc_value *item)
{
    return item ? mproc_value_list_append(list, item) : MPROC_ENOMEM;
}

static int set_item(mproc_value *map, const char *key, mproc_value *val)
{
    return val ? mproc_value_map_set_str(map, key, val) : MPROC_ENOMEM;
}

static void queue_scenario(int unused)
{
    (void)unused;
    mproc_queue *q, *r;
    STEP(mproc_queue_new(&q, &(mproc_queue_opts){.maxsize = 4}));
    STEP(mproc_queue_new(&r, NULL));
    /* small, large (outside the chunk), and enough to cross chunks */
    static char big[20000];
    memset(big, 'x', sizeof big);
    STEP(mproc_queue_put(r, "hello", 5, MPROC_FOREVER));
    STEP(mproc_queue_put(r, big, sizeof big, MPROC_FOREVER));
    char buf[64];
    size_t n;
    STEP(mproc_queue_get_into(r, buf, sizeof buf, &n, 0));
    CHECK(n == 5 && memcmp(buf, "hello", 5) == 0);
    void *got;
    STEP(mproc_queue_get(r, &got, &n, 0));
    CHECK(n == sizeof big && memcmp(got, big, n) == 0);
    free(got);
    for (int i = 0; i < 2500; i++) {
        char m[40];
        snprintf(m, sizeof m, "message %d", i);
        STEP(mproc_queue_put(r, m, sizeof m, 0));
    }
    for (int i = 0; i < 2500; i++) {
        char m[40], want[40];
        snprintf(want, sizeof want, "message %d", i);
        STEP(mproc_queue_get_into(r, m, sizeof m, &n, 0));
        CHECK(n == sizeof m && strcmp(m, want) == 0);
    }
    mproc_value *v;
    NEW(v, mproc_value_list());
    STEP(append_item(v, mproc_value_str("a string")));
    STEP(append_item(v, mproc_value_int(42)));
    STEP(mproc_queue_put_value(r, v, 0));
    mproc_value *w;
    STEP(mproc_queue_get_value(r, &w, 0));
    CHECK(mproc_value_equal(v, w));
    mproc_value_free(v);
    mproc_value_free(w);
    /* across processes: a bounded queue, so puts wait for room */
    echo_args a = {q, r};
    mproc_process *p;
    STEP(mproc_process_new(&p, echo_main, &a, sizeof a,
                           &(mproc_process_opts){.start_method = MPROC_START_FORK}));
    STEP(mproc_process_start(p));
    for (int i = 0; i < 200; i++) {
        int k = i;
        STEP(mproc_queue_put(q, &k, sizeof k, 30000));
        if (i % 3 == 2) {
            for (int j = i - 2; j <= i; j++) {
                STEP(mproc_queue_get_into(r, &k, sizeof k, &n, 30000));
                CHECK(n == sizeof k && k == j);
            }
        }
    }
    int k;
    STEP(mproc_queue_get_into(r, &k, sizeof k, &n, 30000));
    CHECK(k == 198);
    STEP(mproc_queue_get_into(r, &k, sizeof k, &n, 30000));
    CHECK(k == 199);
    mproc_queue_close(q);
    STEP(mproc_process_join(p, 30000));
    int code = -1;
    STEP(mproc_process_exitcode(p, &code));
    CHECK(code == 0);
    STEP(mproc_process_free(p));
    mproc_queue_free(q);
    mproc_queue_free(r);
}

/* ---- scenario: a pool ---------------------------------------------------------- */

static int square_task(const void *arg, size_t len, mproc_result *res)
{
    int x;
    if (len != sizeof x) return mproc_task_fail("bad argument");
    memcpy(&x, arg, sizeof x);
    x *= x;
    return mproc_result_set(res, &x, sizeof x);
}

static int square_map(const void *in, void *out)
{
    int x = *(const int *)in;
    *(int *)out = x * x;
    return 0;
}

static int apply_square(mproc_pool *pool, int x)
{
    void *res = NULL;
    size_t len = 0;
    int rc = mproc_pool_apply(pool, square_task, &x, sizeof x, &res, &len);
    if (rc == 0) CHECK(len == sizeof x && *(int *)res == x * x);
    free(res);
    return rc;
}

static int async_squares(mproc_pool *pool)
{
    mproc_future *f[8];
    for (int i = 0; i < 8; i++) {
        int rc = mproc_pool_apply_async(pool, square_task, &i, sizeof i, NULL, &f[i]);
        if (rc) {
            while (i--) mproc_future_free(f[i]);
            return rc;
        }
    }
    int first = 0;
    for (int i = 0; i < 8; i++) {
        const void *buf;
        size_t len;
        int rc = mproc_future_result(f[i], &buf, &len, 30000);
        if (rc == 0) CHECK(len == sizeof(int) && *(const int *)buf == i * i);
        if (rc && !first) first = rc;
        mproc_future_free(f[i]);
    }
    return first;
}

static int map_squares(mproc_pool *pool, const int *in, int *out, size_t n)
{
    memset(out, 0, n * sizeof *out);
    int rc = mproc_pool_map(pool, square_map, in, n, sizeof *in, out, sizeof *out,
                            &(mproc_map_opts){.chunksize = 16});
    for (size_t i = 0; rc == 0 && i < n; i++) CHECK(out[i] == in[i] * in[i]);
    return rc;
}

static void pool_scenario(int unused)
{
    (void)unused;
    mproc_pool *pool;
    STEP(mproc_pool_new(&pool,
                        &(mproc_pool_opts){.processes = 2, .context = ctx_of(MPROC_START_FORK)}));
    STEP(apply_square(pool, 7));
    STEP(async_squares(pool));
    int in[100], out[100];
    for (int i = 0; i < 100; i++) in[i] = i;
    STEP(map_squares(pool, in, out, 100)); /* copy mode */
    int *sin, *sout;
    STEP(mproc_arena_alloc((void **)&sin, 400 * sizeof(int)));
    STEP(mproc_arena_alloc((void **)&sout, 400 * sizeof(int)));
    for (int i = 0; i < 400; i++) sin[i] = i;
    STEP(map_squares(pool, sin, sout, 400)); /* in place */
    mproc_arena_free(sin);
    mproc_arena_free(sout);
    STEP(mproc_pool_close(pool));
    STEP(mproc_pool_join(pool, 30000));
    mproc_pool_free(pool);
}

/* ---- scenario: processes and pipes under every start method -------------------- */

typedef struct talk_args {
    mproc_conn *c; /* duplex: the child echoes what it reads, until an empty message */
    int code;
} talk_args;

static int talk_main(void *arg)
{
    talk_args *a = arg;
    for (;;) {
        void *buf;
        size_t n;
        int rc = mproc_conn_recv_bytes(a->c, &buf, &n, 30000);
        if (rc) return 1;
        if (n == 0) { /* the end (under fork the child holds our end too: no EOF) */
            free(buf);
            return a->code;
        }
        rc = mproc_conn_send_bytes(a->c, buf, n);
        free(buf);
        if (rc) return 2;
    }
}

/* Under start method number m (one scenario each: they are the longest). */
static void process_scenario(int m)
{
    static char big[100000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (char)(i * 7);
    mproc_conn *mine;
    talk_args a = {.code = 3 + m};
    STEP(mproc_pipe(&mine, &a.c, true));
    mproc_process *p;
    STEP(mproc_process_new(&p, talk_main, &a, sizeof a,
                           &(mproc_process_opts){.start_method = tu_methods[m]}));
    STEP(mproc_process_start(p));
    mproc_conn_free(a.c);
    for (int round = 0; round < 3; round++) {
        size_t len = round == 1 ? sizeof big : 16;
        STEP(mproc_conn_send_bytes(mine, big, len));
        void *back;
        size_t n;
        STEP(mproc_conn_recv_bytes(mine, &back, &n, 30000));
        CHECK(n == len && memcmp(back, big, n) == 0);
        free(back);
    }
    STEP(mproc_conn_send_bytes(mine, "", 0));
    mproc_conn_free(mine);
    STEP(mproc_process_join(p, 30000));
    int code = -1;
    STEP(mproc_process_exitcode(p, &code));
    CHECK(code == 3 + m);
    STEP(mproc_process_free(p));
}

/* ---- scenario: base helpers and arena objects ----------------------------------- */

static int logged;
static void count_log(int level, const char *name, const char *msg, void *ud)
{
    (void)level, (void)name, (void)msg, (void)ud;
    logged++;
}

static void base_scenario(int unused)
{
    (void)unused;
    char buf[64];
    CHECK(strcmp(mproc_strerror_r(MPROC_ENOMEM, buf, sizeof buf), "out of memory") == 0);
    mproc_set_logger(count_log, MPROC_LOG_INFO, NULL);
    logged = 0;
    mproc_log(MPROC_LOG_INFO, "a line of %d bytes", 25);
    CHECK(logged == 1);
    mproc_set_logger(NULL, MPROC_LOG_OFF, NULL);
    mproc_lock *l;
    STEP(mproc_lock_new(&l));
    STEP(mproc_lock_acquire(l, 1000));
    STEP(mproc_lock_release(l));
    mproc_sem *s;
    STEP(mproc_sem_new(&s, 1));
    STEP(mproc_sem_acquire(s, 1000));
    STEP(mproc_sem_release(s));
    mproc_cond *c;
    STEP(mproc_cond_new(&c, l));
    STEP(mproc_cond_acquire(c, 1000));
    STEP(mproc_cond_notify_all(c));
    STEP(mproc_cond_release(c));
    mproc_event *e;
    STEP(mproc_event_new(&e));
    STEP(mproc_event_set(e));
    STEP(mproc_event_wait(e, 1000));
    mproc_barrier *b;
    STEP(mproc_barrier_new(&b, 1, NULL, NULL));
    STEP(mproc_barrier_wait(b, 1000, NULL));
    mproc_shared *sv;
    int64_t x = 5;
    STEP(mproc_shared_value_new(&sv, 'q', &x, NULL));
    STEP(mproc_shared_set_int(sv, 0, 6));
    STEP(mproc_shared_get_int(sv, 0, &x));
    CHECK(x == 6);
    mproc_shared_free(sv);
    mproc_barrier_free(b);
    mproc_event_free(e);
    mproc_cond_free(c);
    mproc_sem_free(s);
    mproc_lock_free(l);
    /* the value codec */
    mproc_value *m;
    NEW(m, mproc_value_map());
    STEP(set_item(m, "k", mproc_value_str("v")));
    void *enc;
    size_t len;
    STEP(mproc_value_encode(m, &enc, &len));
    mproc_value *d;
    STEP(mproc_value_decode(enc, len, NULL, &d));
    CHECK(mproc_value_equal(m, d));
    free(enc);
    mproc_value_free(d);
    mproc_value_free(m);
}

/* ---- the driver --------------------------------------------------------------------- */

typedef struct scenario {
    const char *name;
    void (*run)(int arg);
    int arg;
} scenario;

static size_t arena_allocated(void)
{
    mproc_arena_info ai;
    return mproc_arena_info_get(&ai) == 0 ? ai.allocated : 0;
}

/* In a fresh child: the scenario with call n of the pass's kinds failing
 * (n == 0: counting only, reported through the pipe fd `report`). */
static MPROC__NORETURN void child(const scenario *s, const pass *p, unsigned long n, int report)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fds = tu_count_fds() - (report >= 0); /* report is closed before the end */
    /* A copy-mode map keeps its staging block for the next one: one is
     * made now, so that the arena's count is the same before and after. */
    void *stage = mproc__pool_stage_take(1 << 16);
    if (stage) mproc__pool_stage_give(stage);
    size_t arena = arena_allocated();
    cur_pass = p;
    failed_steps = 0;
    mproc__inject_arm(n, p->kinds);
    s->run(s->arg);
    char where[256] = "";
    bool fired = mproc__inject_fired(where, sizeof where);
    unsigned long calls = mproc__inject_disarm();
    if (report >= 0) {
        if (write(report, &calls, sizeof calls) != (ssize_t)sizeof calls) exit(91);
        close(report);
    }
    if (getenv("INJECT_VERBOSE") || getenv("INJECT_N"))
        fprintf(stderr, "inject %s %s N=%lu: %s%s, %d step(s) failed and passed again\n", s->name,
                p->name, n, fired ? "failed " : "nothing failed", fired ? where : "", failed_steps);
    cur_pass = NULL;
    if (fired) s->run(s->arg); /* still usable (else it ran unharmed already) */
    mproc_forkserver_stop();   /* this child's own server, if it made one */
    if (tu_count_fds() != fds) bad("fd leak: %d fds before, %d after", fds, tu_count_fds());
    pid_t z = waitpid(-1, NULL, WNOHANG);
    if (z != -1 || errno != ECHILD) bad("a child process was left behind");
    if (arena_allocated() != arena)
        bad("arena leak: %zu bytes before, %zu after", arena, arena_allocated());
    exit(fired ? 0 : 1); /* through exit: LeakSanitizer looks at the heap */
}

/* Runs child() and waits for it: its exit code, or -1 for a hang. */
static int run_child(const scenario *s, const pass *p, unsigned long n, unsigned long *calls)
{
    int pf[2] = {-1, -1};
    if (calls) ck_assert_int_eq(pipe2(pf, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (calls) close(pf[0]);
        child(s, p, n, calls ? pf[1] : -1);
    }
    int st = 0;
    for (int waited = 0;; waited++) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) break;
        if (waited >= CHILD_TIMEOUT_S * 100) {
            if (getenv("INJECT_GDB")) { /* where it hangs */
                char cmd[160];
                snprintf(cmd, sizeof cmd,
                         "gdb -p %d -batch -ex 'p *(char **)&fired_site' "
                         "-ex 'thread apply all bt' >&2 2>/dev/null",
                         (int)pid);
                if (system(cmd) != 0) fprintf(stderr, "inject: gdb failed\n");
            }
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            if (calls) close(pf[0]), close(pf[1]);
            return -1;
        }
        tu_sleep_ms(10);
    }
    if (calls) {
        close(pf[1]);
        *calls = 0;
        if (read(pf[0], calls, sizeof *calls) != (ssize_t)sizeof *calls) *calls = 0;
        close(pf[0]);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void drive(const scenario *s)
{
    long only = getenv("INJECT_N") ? atol(getenv("INJECT_N")) : 0;
    const char *only_pass = getenv("INJECT_PASS");
    for (size_t k = 0; k < MPROC__COUNTOF(passes); k++) {
        const pass *p = &passes[k];
        if ((only || only_pass) && strcmp(p->name, only_pass ? only_pass : "hard") != 0) continue;
        long long t0 = mproc_now_ns();
        unsigned long calls = 0;
        int code = run_child(s, p, 0, &calls);
        ck_assert_msg(code == 1, "inject %s %s: the counting run ended with %d", s->name, p->name,
                      code);
        unsigned long fired = 0, from = only ? (unsigned long)only : 1;
        unsigned long to = only ? (unsigned long)only : calls + calls / 10 + 2;
        for (unsigned long n = from; n <= to; n++) {
            code = run_child(s, p, n, NULL);
            ck_assert_msg(code == 0 || code == 1,
                          "inject %s %s N=%lu: %s (exit %d); rerun with "
                          "INJECT_N=%lu INJECT_PASS=%s",
                          s->name, p->name, n,
                          code < 0      ? "hang"
                          : code >= 128 ? "killed by a signal"
                                        : "failed",
                          code, n, p->name);
            fired += code == 0;
        }
        printf("inject %s %s calls=%lu injected=%lu failed=0 (%.1f s)\n", s->name, p->name, calls,
               fired, (double)(mproc_now_ns() - t0) / 1e9);
        fflush(stdout);
    }
}

static const scenario scenarios[] = {
    {"queue", queue_scenario, 0},
    {"pool", pool_scenario, 0},
    {"process_fork", process_scenario, 0},
    {"process_spawn", process_scenario, 1},
    {"process_forkserver", process_scenario, 2},
    {"base", base_scenario, 0},
};

START_TEST(test_inject)
{
    drive(&scenarios[_i]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("inject");
    for (size_t i = 0; i < MPROC__COUNTOF(scenarios); i++) {
        TCase *tc = tu_tcase(s, scenarios[i].name, 1800);
        tcase_add_loop_test(tc, test_inject, (int)i, (int)i + 1);
    }
    return tu_run(s);
}
