/* Futures, futures_wait, as_completed, tasks, and the executors. The
 * thread executor and the futures themselves are tested here in full; the
 * process executor (built on the pool) has its own test case,
 * "process_executor". */
#include "testutil.h"

#include "pool/future.h"

#include <pthread.h>
#include <stdatomic.h>

/* Polls cond every 2 ms for up to 10 s, then asserts it. */
#define WAIT_UNTIL(cond)                                                                           \
    do {                                                                                           \
        for (int w_ = 0; !(cond) && w_ < 5000; w_++) tu_sleep_ms(2);                               \
        ck_assert_msg((cond), "timed out waiting for %s", #cond);                                  \
    } while (0)

/* ---- a gate the thread tasks wait behind --------------------------------- */

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_is_open;
static atomic_int started, ran;

static void gate_open(void)
{
    pthread_mutex_lock(&gate_mu);
    gate_is_open = true;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

static void gate_pass(void)
{
    pthread_mutex_lock(&gate_mu);
    while (!gate_is_open) pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
}

/* ---- task functions ---------------------------------------------------------- */

static int echo_task(const void *arg, size_t len, mproc_result *res)
{
    atomic_fetch_add(&ran, 1);
    return mproc_result_set(res, arg, len);
}

static int gated_task(const void *arg, size_t len, mproc_result *res)
{
    atomic_fetch_add(&started, 1);
    gate_pass();
    return echo_task(arg, len, res);
}

static int sleep_task(const void *arg, size_t len, mproc_result *res)
{
    (void)len;
    int ms;
    memcpy(&ms, arg, sizeof ms);
    tu_sleep_ms(ms);
    return mproc_result_set(res, &ms, sizeof ms);
}

static int fail_task(const void *arg, size_t len, mproc_result *res)
{
    (void)len;
    int x;
    memcpy(&x, arg, sizeof x);
    (void)mproc_result_set(res, "dropped", 7);
    return mproc_task_fail("bad input %d", x);
}

static int code_task(const void *arg, size_t len, mproc_result *res)
{
    (void)arg, (void)len, (void)res;
    return MPROC_EIO;
}

static int fail_then_succeed_task(const void *arg, size_t len, mproc_result *res)
{
    (void)arg, (void)len, (void)res;
    (void)mproc_task_fail("changed my mind");
    return 0;
}

static int value_task(const void *arg, size_t len, mproc_result *res)
{
    (void)arg, (void)len;
    mproc_value *v = mproc_value_list();
    int rc = v ? mproc_value_list_append(v, mproc_value_int(42)) : MPROC_ENOMEM;
    if (!rc) rc = mproc_value_list_append(v, mproc_value_str("hi"));
    if (!rc) rc = mproc_result_set_value(res, v);
    mproc_value_free(v);
    return rc;
}

static int square(const void *in, void *out)
{
    int x;
    memcpy(&x, in, sizeof x);
    if (x == 13) return mproc_task_fail("unlucky %d", x);
    if (x % 7 == 0) tu_sleep_ms(x % 3); /* scramble completion order a bit */
    long long y = (long long)x * x;
    memcpy(out, &y, sizeof y);
    return 0;
}

static int gated_square(const void *in, void *out)
{
    atomic_fetch_add(&started, 1);
    int x;
    memcpy(&x, in, sizeof x);
    if (x == 0) gate_pass();
    long long y = (long long)x * x;
    memcpy(out, &y, sizeof y);
    return 0;
}

static atomic_int inits;

static int counting_init(const void *arg, size_t len, mproc_result *res)
{
    (void)res;
    if (len != 4 || memcmp(arg, "init", 4) != 0) return mproc_task_fail("wrong initargs");
    atomic_fetch_add(&inits, 1);
    return 0;
}

static int failing_init(const void *arg, size_t len, mproc_result *res)
{
    (void)arg, (void)len, (void)res;
    return mproc_task_fail("no database");
}

static mproc_executor *thread_ex(int workers)
{
    mproc_executor *ex;
    TU_OK(mproc_executor_new_thread(&ex, &(mproc_executor_opts){.max_workers = workers}));
    return ex;
}

/* ---- futures ------------------------------------------------------------------ */

START_TEST(result_states_and_timeouts)
{
    mproc_executor *ex = thread_ex(1);
    mproc_future *f;
    TU_OK(mproc_executor_submit(ex, gated_task, "abc", 3, &f));
    WAIT_UNTIL(mproc_future_running(f));
    ck_assert(!mproc_future_done(f) && !mproc_future_successful(f) && !mproc_future_cancelled(f));
    const void *buf = (void *)1;
    size_t len = 99;
    TU_RC(mproc_future_result(f, &buf, &len, 0), MPROC_ETIMEDOUT);
    ck_assert(buf == NULL && len == 0);
    long long t0 = mproc_now_ns();
    TU_RC(mproc_future_wait(f, 40), MPROC_ETIMEDOUT);
    ck_assert(tu_ms_since(t0) >= 40);
    TU_RC(mproc_future_error(f, NULL, NULL, NULL), MPROC_EBADSTATE);
    TU_RC(mproc_future_wait(f, -5), MPROC_EINVAL);
    TU_RC(mproc_future_wait(NULL, 0), MPROC_EINVAL);
    gate_open();
    TU_OK(mproc_future_result(f, &buf, &len, 5000));
    ck_assert_uint_eq(len, 3);
    ck_assert(memcmp(buf, "abc", 3) == 0);
    ck_assert(mproc_future_done(f) && mproc_future_successful(f));
    ck_assert(!mproc_future_running(f) && !mproc_future_cancelled(f));
    TU_RC(mproc_future_error(f, NULL, NULL, NULL), MPROC_ENOENT);
    TU_OK(mproc_future_wait(f, 0));
    TU_OK(mproc_future_result(f, NULL, NULL, 0)); /* buf/len may be NULL */
    mproc_future_free(f);
    mproc_future_free(NULL);
    mproc_executor_free(ex);
}
END_TEST

START_TEST(results_as_values_and_none)
{
    mproc_executor *ex = thread_ex(2);
    mproc_future *f, *g;
    TU_OK(mproc_executor_submit(ex, value_task, NULL, 0, &f));
    TU_OK(mproc_executor_submit(ex, echo_task, NULL, 0, &g));
    mproc_value *v;
    TU_OK(mproc_future_result_value(f, &v, 5000));
    char repr[64];
    mproc_value_repr(v, repr, sizeof repr);
    ck_assert_str_eq(repr, "[42, 'hi']");
    mproc_value_free(v);
    const void *buf = (void *)1;
    size_t len = 5;
    TU_OK(mproc_future_result(g, &buf, &len, 5000));
    ck_assert(buf == NULL && len == 0); /* the task set no result */
    TU_OK(mproc_future_result_value(g, &v, 0));
    ck_assert_ptr_null(v);
    mproc_future_free(f);
    mproc_future_free(g);
    mproc_executor_free(ex);
}
END_TEST

START_TEST(task_failures_carry_messages)
{
    TU_RC(mproc_task_fail("outside %d", 1), MPROC_ETASK); /* no task: only the code */
    mproc_executor *ex = thread_ex(2);
    int seven = 7;
    mproc_future *f, *g, *h;
    TU_OK(mproc_executor_submit(ex, fail_task, &seven, sizeof seven, &f));
    TU_OK(mproc_executor_submit(ex, code_task, NULL, 0, &g));
    TU_OK(mproc_executor_submit(ex, fail_then_succeed_task, NULL, 0, &h));
    const void *buf = (void *)1;
    TU_RC(mproc_future_result(f, &buf, NULL, 5000), MPROC_ETASK);
    ck_assert_ptr_null(buf);
    ck_assert(mproc_future_done(f) && !mproc_future_successful(f) && !mproc_future_cancelled(f));
    int code = 0;
    const char *msg = NULL;
    pid_t pid = 0;
    TU_OK(mproc_future_error(f, &code, &msg, &pid));
    ck_assert_int_eq(code, MPROC_ETASK);
    ck_assert_str_eq(msg, "bad input 7");
    ck_assert_int_eq(pid, getpid()); /* thread workers: this process */
    TU_RC(mproc_future_result(g, NULL, NULL, 5000), MPROC_EIO);
    TU_OK(mproc_future_error(g, &code, &msg, NULL));
    ck_assert_int_eq(code, MPROC_EIO);
    ck_assert_str_eq(msg, mproc_strerror(MPROC_EIO)); /* no message: the code's */
    TU_OK(mproc_future_result(h, NULL, NULL, 5000));  /* a message, then 0: success */
    TU_RC(mproc_future_error(h, NULL, NULL, NULL), MPROC_ENOENT);
    mproc_future_free(f);
    mproc_future_free(g);
    mproc_future_free(h);
    mproc_executor_free(ex);
}
END_TEST

static int double_value(const mproc_value *arg, mproc_value **result)
{
    int64_t x;
    if (mproc_value_get_int(arg, &x)) return mproc_task_fail("not an int");
    *result = mproc_value_int(2 * x);
    return *result ? 0 : MPROC_ENOMEM;
}

START_TEST(value_task_runner)
{
    mproc_value *v = mproc_value_int(21), *got;
    void *buf;
    size_t len;
    TU_OK(mproc_value_encode(v, &buf, &len));
    mproc_value_free(v);
    mproc_result res;
    char *msg;
    TU_OK(mproc__value_task_run(double_value, buf, len, &res, &msg));
    free(buf);
    TU_OK(mproc_value_decode(res.buf, res.len, NULL, &got));
    int64_t x;
    TU_OK(mproc_value_get_int(got, &x));
    ck_assert_int_eq(x, 42);
    mproc_value_free(got);
    free(res.buf);
    TU_RC(mproc__value_task_run(double_value, NULL, 0, &res, &msg), MPROC_ETASK); /* None */
    ck_assert_str_eq(msg, "not an int");
    free(msg);
    TU_RC(mproc__value_task_run(double_value, "\xff\xff", 2, &res, &msg), MPROC_EPROTO);
    ck_assert_msg(msg && strstr(msg, "decode"), "msg: %s", msg ? msg : "(null)");
    free(msg);
}
END_TEST

START_TEST(task_runner_messages)
{
    mproc_result res;
    char *msg = (char *)1;
    int seven = 7;
    TU_RC(mproc__task_run(fail_task, &seven, sizeof seven, &res, &msg), MPROC_ETASK);
    ck_assert_str_eq(msg, "bad input 7");
    ck_assert(res.buf == NULL && res.len == 0); /* a failed task's result is dropped */
    free(msg);
    TU_RC(mproc__task_run(code_task, NULL, 0, &res, &msg), MPROC_EIO);
    ck_assert_ptr_null(msg); /* no stale message from the run before */
    TU_OK(mproc__task_run(fail_then_succeed_task, NULL, 0, &res, &msg));
    ck_assert_ptr_null(msg);
    TU_OK(mproc__task_run(echo_task, "xy", 2, &res, &msg));
    ck_assert(res.len == 2 && memcmp(res.buf, "xy", 2) == 0);
    free(res.buf);
    TU_RC(mproc_result_set(NULL, "a", 1), MPROC_EINVAL);
}
END_TEST

/* ---- cancel ---------------------------------------------------------------------- */

START_TEST(cancel_before_and_after_start)
{
    mproc_executor *ex = thread_ex(1);
    mproc_future *a, *b, *c;
    TU_OK(mproc_executor_submit(ex, gated_task, "a", 1, &a));
    TU_OK(mproc_executor_submit(ex, echo_task, "b", 1, &b));
    TU_OK(mproc_executor_submit(ex, echo_task, "c", 1, &c));
    WAIT_UNTIL(mproc_future_running(a));
    TU_OK(mproc_future_cancel(b));
    ck_assert(mproc_future_done(b) && mproc_future_cancelled(b) && !mproc_future_successful(b));
    TU_RC(mproc_future_result(b, NULL, NULL, 0), MPROC_ECANCELLED);
    int code;
    TU_OK(mproc_future_error(b, &code, NULL, NULL));
    ck_assert_int_eq(code, MPROC_ECANCELLED);
    TU_RC(mproc_future_cancel(b), MPROC_EBADSTATE);
    TU_RC(mproc_future_cancel(a), MPROC_ERUNNING);
    TU_RC(mproc_future_cancel(NULL), MPROC_EINVAL);
    gate_open();
    TU_OK(mproc_future_result(a, NULL, NULL, 5000));
    TU_OK(mproc_future_result(c, NULL, NULL, 5000));
    TU_RC(mproc_future_cancel(a), MPROC_EBADSTATE);
    ck_assert_int_eq(atomic_load(&ran), 2); /* b never ran */
    mproc_future_free(a);
    mproc_future_free(b);
    mproc_future_free(c);
    mproc_executor_free(ex);
}
END_TEST

/* ---- callbacks ----------------------------------------------------------------- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int cb_log[16];
static pthread_t cb_thread[16];
static atomic_int ncb;

static void record_cb(mproc_future *f, void *userdata)
{
    (void)f;
    pthread_mutex_lock(&log_mu);
    int i = atomic_load(&ncb);
    cb_log[i] = (int)(intptr_t)userdata;
    cb_thread[i] = pthread_self();
    atomic_store(&ncb, i + 1);
    pthread_mutex_unlock(&log_mu);
}

START_TEST(callbacks_run_in_order)
{
    mproc_executor *ex = thread_ex(1);
    mproc_future *f;
    TU_OK(mproc_executor_submit(ex, gated_task, "x", 1, &f));
    for (intptr_t k = 1; k <= 3; k++)
        TU_OK(mproc_future_add_done_callback(f, record_cb, (void *)k));
    TU_RC(mproc_future_add_done_callback(f, NULL, NULL), MPROC_EINVAL);
    tu_sleep_ms(20);
    ck_assert_int_eq(atomic_load(&ncb), 0);
    gate_open();
    WAIT_UNTIL(atomic_load(&ncb) == 3); /* waiters may wake before callbacks run */
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(cb_log[k], k + 1);
        ck_assert(!pthread_equal(cb_thread[k], pthread_self())); /* the worker's thread */
    }
    /* Added after done: runs at once, here. */
    TU_OK(mproc_future_add_done_callback(f, record_cb, (void *)4));
    ck_assert_int_eq(atomic_load(&ncb), 4);
    ck_assert_int_eq(cb_log[3], 4);
    ck_assert(pthread_equal(cb_thread[3], pthread_self()));
    mproc_future_free(f);
    mproc_executor_free(ex);
}
END_TEST

START_TEST(callbacks_run_on_cancel_in_the_cancelling_thread)
{
    mproc_executor *ex = thread_ex(1);
    mproc_future *a, *b;
    TU_OK(mproc_executor_submit(ex, gated_task, "a", 1, &a));
    TU_OK(mproc_executor_submit(ex, echo_task, "b", 1, &b));
    TU_OK(mproc_future_add_done_callback(b, record_cb, (void *)7));
    TU_OK(mproc_future_cancel(b));
    ck_assert_int_eq(atomic_load(&ncb), 1);
    ck_assert_int_eq(cb_log[0], 7);
    ck_assert(pthread_equal(cb_thread[0], pthread_self()));
    gate_open();
    mproc_future_free(a);
    mproc_future_free(b);
    mproc_executor_free(ex); /* waits for a */
}
END_TEST

static atomic_int ok_cbs, err_cbs;
static void ok_cb(mproc_future *f, void *ud)
{
    (void)f;
    ck_assert_ptr_eq(ud, &ok_cbs);
    atomic_fetch_add(&ok_cbs, 1);
}
static void err_cb(mproc_future *f, void *ud)
{
    (void)f;
    ck_assert_ptr_eq(ud, &ok_cbs);
    atomic_fetch_add(&err_cbs, 1);
}

START_TEST(internal_futures_and_owner_callbacks)
{
    /* Success: the callback, not the error callback. */
    mproc_future *f = mproc__future_new(ok_cb, err_cb, &ok_cbs);
    ck_assert_ptr_nonnull(f);
    TU_OK(mproc_future_add_done_callback(f, record_cb, (void *)1));
    ck_assert(mproc__future_set_running(f, 1234));
    ck_assert(mproc_future_running(f));
    mproc__future_finish(f, strdup("r"), 1);
    mproc__future_fail(f, MPROC_ETASK, "late", 0); /* the first completion wins */
    mproc__future_finish(f, strdup("s"), 1);       /* (its buffer is freed) */
    ck_assert(atomic_load(&ok_cbs) == 1 && atomic_load(&err_cbs) == 0);
    ck_assert_int_eq(atomic_load(&ncb), 1); /* the owner's callback ran first */
    const void *buf;
    size_t len;
    TU_OK(mproc_future_result(f, &buf, &len, 0));
    ck_assert(len == 1 && memcmp(buf, "r", 1) == 0);
    mproc_future_free(f);
    mproc_future_free(f); /* two references */

    /* Failure: the error callback, with the message and pid. */
    f = mproc__future_new(ok_cb, err_cb, &ok_cbs);
    mproc__future_fail(f, MPROC_EWORKERDIED, "killed by SIGKILL", 4321);
    ck_assert(atomic_load(&ok_cbs) == 1 && atomic_load(&err_cbs) == 1);
    int code;
    const char *msg;
    pid_t pid;
    TU_OK(mproc_future_error(f, &code, &msg, &pid));
    ck_assert(code == MPROC_EWORKERDIED && pid == 4321);
    ck_assert_str_eq(msg, "killed by SIGKILL");
    ck_assert(!mproc__future_set_running(f, 1));
    mproc_future_free(f);
    mproc_future_free(f);

    /* Cancel with no withdraw hook: neither callback; set_running refuses. */
    f = mproc__future_new(ok_cb, err_cb, &ok_cbs);
    TU_OK(mproc_future_cancel(f));
    ck_assert(mproc_future_cancelled(f));
    ck_assert(!mproc__future_set_running(f, 1));
    ck_assert(atomic_load(&ok_cbs) == 1 && atomic_load(&err_cbs) == 1);
    mproc_future_free(f);
    mproc_future_free(f);

    /* Dropped while pending: freed with its callbacks, none run. */
    f = mproc__future_new(ok_cb, err_cb, &ok_cbs);
    TU_OK(mproc_future_add_done_callback(f, record_cb, (void *)2));
    mproc_future_free(f);
    mproc_future_free(f);
    ck_assert_int_eq(atomic_load(&ncb), 1);
}
END_TEST

static bool refuse_withdraw(void *owner, mproc_future *f)
{
    (void)f;
    atomic_fetch_add((atomic_int *)owner, 1);
    return false;
}

START_TEST(cancel_asks_the_owner)
{
    atomic_int asked = 0;
    mproc_future *f = mproc__future_new(NULL, NULL, NULL);
    mproc__future_set_withdraw(f, refuse_withdraw, &asked);
    TU_RC(mproc_future_cancel(f), MPROC_ERUNNING); /* the owner could not withdraw it */
    ck_assert_int_eq(atomic_load(&asked), 1);
    ck_assert(!mproc_future_done(f));
    ck_assert(mproc__future_set_running(f, 1));
    TU_RC(mproc_future_cancel(f), MPROC_ERUNNING); /* running: the owner is not asked */
    ck_assert_int_eq(atomic_load(&asked), 1);
    mproc__future_finish(f, NULL, 0);
    mproc_future_free(f);
    mproc_future_free(f);
}
END_TEST

/* ---- futures_wait and as_completed -------------------------------------------- */

typedef struct later {
    mproc_future *f;
    int ms, code;
} later;

static void *complete_later(void *p)
{
    later *l = p;
    tu_sleep_ms(l->ms);
    if (l->code == MPROC_ECANCELLED)
        TU_OK(mproc_future_cancel(l->f));
    else if (l->code)
        mproc__future_fail(l->f, l->code, "boom", 0);
    else
        mproc__future_finish(l->f, NULL, 0);
    return NULL;
}

static pthread_t start_later(later *l)
{
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, complete_later, l), 0);
    return t;
}

static void new_futures(mproc_future **fs, int n)
{
    for (int i = 0; i < n; i++) ck_assert_ptr_nonnull(fs[i] = mproc__future_new(NULL, NULL, NULL));
}

static void free_futures(mproc_future **fs, int n)
{
    for (int i = 0; i < n; i++) {
        mproc_future_free(fs[i]);
        mproc_future_free(fs[i]);
    }
}

START_TEST(wait_first_completed)
{
    mproc_future *fs[3];
    new_futures(fs, 3);
    size_t nd = 99;
    long long t0 = mproc_now_ns();
    TU_RC(mproc_futures_wait(fs, 3, 30, MPROC_FIRST_COMPLETED, &nd), MPROC_ETIMEDOUT);
    ck_assert(tu_ms_since(t0) >= 30 && nd == 0);
    later l = {fs[1], 50, 0};
    pthread_t t = start_later(&l);
    TU_OK(mproc_futures_wait(fs, 3, 10000, MPROC_FIRST_COMPLETED, &nd));
    ck_assert_uint_eq(nd, 1);
    ck_assert(!mproc_future_done(fs[0]) && mproc_future_done(fs[1]) && !mproc_future_done(fs[2]));
    pthread_join(t, NULL);
    TU_OK(mproc_futures_wait(fs, 0, 0, MPROC_FIRST_COMPLETED, NULL)); /* nothing to wait for */
    TU_RC(mproc_futures_wait(fs, 3, 0, (mproc_wait_mode)0, NULL), MPROC_EINVAL);
    TU_RC(mproc_futures_wait(NULL, 3, 0, MPROC_ALL_COMPLETED, NULL), MPROC_EINVAL);
    TU_RC(mproc_futures_wait(fs, 3, -7, MPROC_ALL_COMPLETED, NULL), MPROC_EINVAL);
    mproc_future *withnull[2] = {fs[0], NULL};
    TU_RC(mproc_futures_wait(withnull, 2, 0, MPROC_ALL_COMPLETED, NULL), MPROC_EINVAL);
    free_futures(fs, 3);
}
END_TEST

START_TEST(wait_first_exception)
{
    mproc_future *fs[4];
    new_futures(fs, 4);
    mproc__future_finish(fs[0], NULL, 0); /* a success does not end the wait */
    TU_OK(mproc_future_cancel(fs[1]));    /* nor does a cancel */
    size_t nd;
    TU_RC(mproc_futures_wait(fs, 4, 30, MPROC_FIRST_EXCEPTION, &nd), MPROC_ETIMEDOUT);
    ck_assert_uint_eq(nd, 2);
    later l = {fs[3], 50, MPROC_ETASK};
    pthread_t t = start_later(&l);
    long long t0 = mproc_now_ns();
    TU_OK(mproc_futures_wait(fs, 4, 10000, MPROC_FIRST_EXCEPTION, &nd));
    ck_assert(nd == 3 && !mproc_future_done(fs[2]) && tu_ms_since(t0) < 5000);
    pthread_join(t, NULL);
    /* With no failure, FIRST_EXCEPTION is ALL_COMPLETED. */
    mproc_future *gs[2];
    new_futures(gs, 2);
    mproc__future_finish(gs[0], NULL, 0);
    later l2 = {gs[1], 30, 0};
    t = start_later(&l2);
    TU_OK(mproc_futures_wait(gs, 2, 10000, MPROC_FIRST_EXCEPTION, &nd));
    ck_assert_uint_eq(nd, 2);
    pthread_join(t, NULL);
    free_futures(fs, 4);
    free_futures(gs, 2);
}
END_TEST

START_TEST(wait_all_completed)
{
    mproc_future *fs[3];
    new_futures(fs, 3);
    later l[3] = {{fs[0], 10, 0}, {fs[1], 40, MPROC_ETASK}, {fs[2], 70, MPROC_ECANCELLED}};
    pthread_t t[3];
    for (int i = 0; i < 3; i++) t[i] = start_later(&l[i]);
    size_t nd;
    TU_RC(mproc_futures_wait(fs, 3, 20, MPROC_ALL_COMPLETED, &nd), MPROC_ETIMEDOUT);
    ck_assert_uint_lt(nd, 3);
    TU_OK(mproc_futures_wait(fs, 3, 10000, MPROC_ALL_COMPLETED, &nd));
    ck_assert_uint_eq(nd, 3);
    ck_assert(mproc_future_successful(fs[0]) && mproc_future_cancelled(fs[2]));
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    free_futures(fs, 3);
}
END_TEST

START_TEST(as_completed_in_completion_order)
{
    mproc_future *fs[4];
    new_futures(fs, 4);
    mproc__future_finish(fs[2], NULL, 0); /* done before the iterator: first */
    mproc__future_fail(fs[0], MPROC_ETASK, NULL, 0);
    mproc_as_completed *it;
    TU_OK(mproc_as_completed_new(&it, fs, 4));
    mproc_future *f;
    TU_OK(mproc_as_completed_next(it, &f, 0));
    ck_assert_ptr_eq(f, fs[2]);
    TU_OK(mproc_as_completed_next(it, &f, 0));
    ck_assert_ptr_eq(f, fs[0]);
    long long t0 = mproc_now_ns();
    TU_RC(mproc_as_completed_next(it, &f, 30), MPROC_ETIMEDOUT);
    ck_assert(tu_ms_since(t0) >= 30 && f == NULL);
    later l[2] = {{fs[3], 20, 0}, {fs[1], 80, 0}};
    pthread_t t[2] = {start_later(&l[0]), start_later(&l[1])};
    TU_OK(mproc_as_completed_next(it, &f, 10000));
    ck_assert_ptr_eq(f, fs[3]);
    TU_OK(mproc_as_completed_next(it, &f, 10000));
    ck_assert_ptr_eq(f, fs[1]);
    TU_RC(mproc_as_completed_next(it, &f, MPROC_FOREVER), MPROC_EEOF);
    TU_RC(mproc_as_completed_next(it, &f, 0), MPROC_EEOF);
    mproc_as_completed_free(it);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    TU_RC(mproc_as_completed_new(&it, NULL, 2), MPROC_EINVAL);
    TU_OK(mproc_as_completed_new(&it, NULL, 0));
    TU_RC(mproc_as_completed_next(it, &f, 0), MPROC_EEOF);
    mproc_as_completed_free(it);
    mproc_as_completed_free(NULL);
    free_futures(fs, 4);
}
END_TEST

START_TEST(as_completed_over_executor_tasks)
{
    mproc_executor *ex = thread_ex(4);
    int ms[4] = {120, 10, 80, 40};
    mproc_future *fs[4];
    for (int i = 0; i < 4; i++) TU_OK(mproc_executor_submit(ex, sleep_task, &ms[i], 4, &fs[i]));
    mproc_as_completed *it;
    TU_OK(mproc_as_completed_new(&it, fs, 4));
    int want[4] = {1, 3, 2, 0};
    for (int k = 0; k < 4; k++) {
        mproc_future *f;
        TU_OK(mproc_as_completed_next(it, &f, 10000));
        ck_assert_ptr_eq(f, fs[want[k]]);
    }
    mproc_as_completed_free(it);
    for (int i = 0; i < 4; i++) mproc_future_free(fs[i]);
    mproc_executor_free(ex);
}
END_TEST

/* ---- the thread executor ----------------------------------------------------- */

START_TEST(shutdown_cancels_pending_futures)
{
    mproc_executor *ex = thread_ex(1);
    mproc_future *fs[5];
    TU_OK(mproc_executor_submit(ex, gated_task, "0", 1, &fs[0]));
    for (int i = 1; i < 5; i++) TU_OK(mproc_executor_submit(ex, echo_task, "x", 1, &fs[i]));
    WAIT_UNTIL(mproc_future_running(fs[0]));
    TU_OK(mproc_future_add_done_callback(fs[4], record_cb, (void *)9));
    TU_OK(mproc_executor_shutdown(ex, false, true));
    for (int i = 1; i < 5; i++) ck_assert(mproc_future_cancelled(fs[i]));
    ck_assert_int_eq(atomic_load(&ncb), 1); /* callbacks run on cancel */
    mproc_future *g = (mproc_future *)1;
    TU_RC(mproc_executor_submit(ex, echo_task, "y", 1, &g), MPROC_ESHUTDOWN);
    ck_assert_ptr_null(g);
    ck_assert(!mproc_future_done(fs[0]));
    gate_open();
    TU_OK(mproc_executor_shutdown(ex, true, false));
    ck_assert(mproc_future_successful(fs[0])); /* the running one finished */
    ck_assert_int_eq(atomic_load(&ran), 1);
    for (int i = 0; i < 5; i++) mproc_future_free(fs[i]);
    mproc_executor_free(ex);
}
END_TEST

START_TEST(shutdown_wait_runs_the_pending_ones)
{
    mproc_executor *ex = thread_ex(2);
    mproc_future *fs[20];
    for (int i = 0; i < 20; i++) TU_OK(mproc_executor_submit(ex, echo_task, &i, sizeof i, &fs[i]));
    TU_OK(mproc_executor_shutdown(ex, true, false));
    for (int i = 0; i < 20; i++) {
        const void *buf;
        size_t len;
        TU_OK(mproc_future_result(fs[i], &buf, &len, 0)); /* all done already */
        ck_assert(len == sizeof i && memcmp(buf, &i, sizeof i) == 0);
        mproc_future_free(fs[i]);
    }
    TU_OK(mproc_executor_shutdown(ex, true, true)); /* again: harmless */
    mproc_executor_free(ex);
    TU_RC(mproc_executor_new_thread(NULL, NULL), MPROC_EINVAL);
    TU_RC(mproc_executor_new_thread(&ex, &(mproc_executor_opts){.max_workers = -1}), MPROC_EINVAL);
    mproc_executor_free(NULL);
}
END_TEST

START_TEST(free_waits_for_running_tasks)
{
    mproc_executor *ex;
    TU_OK(mproc_executor_new_thread(&ex, NULL)); /* default worker count */
    int ms = 100;
    mproc_future *f, *g = (mproc_future *)1;
    TU_RC(mproc_executor_submit(ex, NULL, NULL, 0, &g), MPROC_EINVAL);
    ck_assert_ptr_null(g);
    TU_RC(mproc_executor_submit(ex, sleep_task, NULL, 4, &g), MPROC_EINVAL);
    TU_OK(mproc_executor_submit(ex, sleep_task, &ms, sizeof ms, &g));
    mproc_future_free(g); /* dropped: the task goes on */
    TU_OK(mproc_executor_submit(ex, sleep_task, &ms, sizeof ms, &f));
    long long t0 = mproc_now_ns();
    mproc_executor_free(ex);
    ck_assert(tu_ms_since(t0) >= 50);
    ck_assert(mproc_future_successful(f));
    mproc_future_free(f);
}
END_TEST

START_TEST(workers_start_lazily_and_run_the_initializer_once)
{
    mproc_executor *ex;
    TU_OK(mproc_executor_new_thread(&ex, &(mproc_executor_opts){.max_workers = 3,
                                                                .initializer = counting_init,
                                                                .initargs = "init",
                                                                .initargs_len = 4}));
    ck_assert_int_eq(atomic_load(&inits), 0); /* no worker yet */
    mproc_future *f;
    for (int k = 0; k < 5; k++) { /* one at a time: one worker suffices */
        TU_OK(mproc_executor_submit(ex, echo_task, "a", 1, &f));
        TU_OK(mproc_future_result(f, NULL, NULL, 5000));
        mproc_future_free(f);
        /* The worker counts as idle once it is back for the next task, a
         * moment after the result (as Python's): give it that moment, with
         * room for a loaded machine and for TSan. */
        tu_sleep_ms(50);
    }
    ck_assert_int_eq(atomic_load(&inits), 1);
    mproc_future *fs[6];
    for (int k = 0; k < 6; k++) TU_OK(mproc_executor_submit(ex, gated_task, "b", 1, &fs[k]));
    WAIT_UNTIL(atomic_load(&started) == 3); /* three workers at most */
    tu_sleep_ms(20);
    ck_assert_int_eq(atomic_load(&started), 3);
    ck_assert_int_eq(atomic_load(&inits), 3);
    gate_open();
    TU_OK(mproc_futures_wait(fs, 6, 10000, MPROC_ALL_COMPLETED, NULL));
    for (int k = 0; k < 6; k++) mproc_future_free(fs[k]);
    mproc_executor_free(ex);
    ck_assert_int_eq(atomic_load(&inits), 3);
}
END_TEST

START_TEST(failing_initializer_breaks_the_executor)
{
    mproc_executor *ex;
    TU_OK(mproc_executor_new_thread(
        &ex, &(mproc_executor_opts){.max_workers = 2, .initializer = failing_init}));
    mproc_future *f, *g;
    TU_OK(mproc_executor_submit(ex, echo_task, "a", 1, &f));
    TU_RC(mproc_future_result(f, NULL, NULL, 5000), MPROC_ETASK);
    const char *msg;
    TU_OK(mproc_future_error(f, NULL, &msg, NULL));
    ck_assert_msg(strstr(msg, "initializer") && strstr(msg, "no database"), "msg: %s", msg);
    TU_OK(mproc_executor_submit(ex, echo_task, "b", 1, &g)); /* later tasks fail too */
    ck_assert(mproc_future_done(g));
    TU_RC(mproc_future_result(g, NULL, NULL, 0), MPROC_ETASK);
    ck_assert_int_eq(atomic_load(&ran), 0);
    mproc_future_free(f);
    mproc_future_free(g);
    mproc_executor_free(ex);
}
END_TEST

static mproc_executor *cb_ex;
static mproc_future *_Atomic cb_sub;
static atomic_int cb_rc = 1;

static void submit_from_callback(mproc_future *f, void *ud)
{
    (void)f, (void)ud;
    mproc_future *g;
    atomic_store(&cb_rc, mproc_executor_submit(cb_ex, echo_task, "again", 5, &g));
    atomic_store(&cb_sub, g);
}

START_TEST(callbacks_may_submit)
{
    cb_ex = thread_ex(1);
    mproc_future *f;
    TU_OK(mproc_executor_submit(cb_ex, echo_task, "x", 1, &f));
    TU_OK(mproc_future_add_done_callback(f, submit_from_callback, NULL));
    TU_OK(mproc_future_wait(f, 5000));
    WAIT_UNTIL(atomic_load(&cb_rc) != 1);
    TU_OK(atomic_load(&cb_rc));
    TU_OK(mproc_future_result(cb_sub, NULL, NULL, 5000));
    mproc_future_free(cb_sub);
    mproc_future_free(f);
    mproc_executor_free(cb_ex);
}
END_TEST

/* ---- map ----------------------------------------------------------------------- */

START_TEST(map_keeps_order)
{
    mproc_executor *ex = thread_ex(4);
    enum { N = 1000 };
    static int in[N];
    static long long out[N];
    for (int i = 0; i < N; i++) in[i] = i + 14; /* no 13 */
    TU_OK(mproc_executor_map(ex, square, in, N, sizeof *in, out, sizeof *out, 20000));
    for (int i = 0; i < N; i++) ck_assert_int_eq(out[i], (long long)in[i] * in[i]);
    TU_OK(mproc_executor_map(ex, square, in, 0, sizeof *in, out, sizeof *out, 0));
    TU_RC(mproc_executor_map(ex, square, NULL, 3, sizeof *in, out, sizeof *out, 0), MPROC_EINVAL);
    mproc_executor_free(ex);
}
END_TEST

START_TEST(map_returns_the_first_error_and_fills_the_rest)
{
    mproc_executor *ex = thread_ex(3);
    int in[40];
    long long out[40];
    for (int i = 0; i < 40; i++) in[i] = i;
    in[30] = 13;
    memset(out, 0, sizeof out);
    TU_RC(mproc_executor_map(ex, square, in, 40, sizeof *in, out, sizeof *out, 20000), MPROC_ETASK);
    for (int i = 0; i < 40; i++)
        if (in[i] != 13) ck_assert_int_eq(out[i], (long long)in[i] * in[i]);
    /* After shutdown: ESHUTDOWN. */
    TU_OK(mproc_executor_shutdown(ex, false, false));
    TU_RC(mproc_executor_map(ex, square, in, 40, sizeof *in, out, sizeof *out, 20000),
          MPROC_ESHUTDOWN);
    mproc_executor_free(ex);
}
END_TEST

typedef struct map_call {
    mproc_executor *ex;
    int *in;
    long long *out;
    size_t n;
    int timeout, rc;
} map_call;

static void *map_thread(void *p)
{
    map_call *c = p;
    c->rc = mproc_executor_map(c->ex, gated_square, c->in, c->n, sizeof *c->in, c->out,
                               sizeof *c->out, c->timeout);
    return NULL;
}

START_TEST(map_bounds_the_work_in_flight)
{
    mproc_executor *ex = thread_ex(2);
    int in[100];
    long long out[100];
    for (int i = 0; i < 100; i++) in[i] = i;
    map_call c = {ex, in, out, 100, MPROC_FOREVER, -1};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, map_thread, &c), 0);
    /* Item 0 blocks, so nothing is collected: at most 2 per worker start. */
    WAIT_UNTIL(atomic_load(&started) >= 4);
    tu_sleep_ms(50);
    ck_assert_int_eq(atomic_load(&started), 4);
    gate_open();
    pthread_join(t, NULL);
    TU_OK(c.rc);
    for (int i = 0; i < 100; i++) ck_assert_int_eq(out[i], (long long)i * i);
    mproc_executor_free(ex);
}
END_TEST

START_TEST(map_times_out)
{
    mproc_executor *ex = thread_ex(2);
    int in[10];
    long long out[10];
    for (int i = 0; i < 10; i++) in[i] = i;
    long long t0 = mproc_now_ns();
    TU_RC(mproc_executor_map(ex, gated_square, in, 10, sizeof *in, out, sizeof *out, 50),
          MPROC_ETIMEDOUT);
    ck_assert(tu_ms_since(t0) >= 50 && tu_ms_since(t0) < 5000);
    gate_open();
    mproc_executor_free(ex); /* the task left running finishes into nothing */
}
END_TEST

/* ---- the process executor (needs the pool) ----------------------------------- */

static const mproc_context *ctx_of(int i)
{
    const mproc_context *ctx;
    TU_OK(mproc_get_context(mproc_start_method_name(tu_methods[i]), &ctx));
    return ctx;
}

START_TEST(process_executor_submit_and_errors)
{
    mproc_executor *ex;
    TU_OK(mproc_executor_new_process(
        &ex, &(mproc_executor_opts){.max_workers = 2, .context = ctx_of(_i)}));
    mproc_future *f, *g;
    TU_OK(mproc_executor_submit(ex, echo_task, "hello", 5, &f));
    int seven = 7;
    TU_OK(mproc_executor_submit(ex, fail_task, &seven, sizeof seven, &g));
    const void *buf;
    size_t len;
    TU_OK(mproc_future_result(f, &buf, &len, 20000));
    ck_assert(len == 5 && memcmp(buf, "hello", 5) == 0);
    TU_RC(mproc_future_result(g, NULL, NULL, 20000), MPROC_ETASK);
    const char *msg;
    pid_t pid;
    TU_OK(mproc_future_error(g, NULL, &msg, &pid));
    ck_assert_str_eq(msg, "bad input 7");
    ck_assert(pid > 0 && pid != getpid()); /* a worker process */
    mproc_future_free(f);
    mproc_future_free(g);
    TU_OK(mproc_executor_shutdown(ex, true, false));
    TU_RC(mproc_executor_submit(ex, echo_task, "x", 1, &f), MPROC_ESHUTDOWN);
    mproc_executor_free(ex);
}
END_TEST

START_TEST(process_executor_map)
{
    mproc_executor *ex;
    TU_OK(mproc_executor_new_process(
        &ex, &(mproc_executor_opts){.max_workers = 3, .context = ctx_of(_i)}));
    int in[60];
    long long out[60];
    for (int i = 0; i < 60; i++) in[i] = i;
    TU_RC(mproc_executor_map(ex, square, in, 60, sizeof *in, out, sizeof *out, 30000), MPROC_ETASK);
    for (int i = 0; i < 60; i++)
        if (i != 13) ck_assert_int_eq(out[i], (long long)i * i);
    mproc_executor_free(ex);
}
END_TEST

START_TEST(process_executor_shutdown_cancels)
{
    mproc_executor *ex;
    TU_OK(mproc_executor_new_process(
        &ex, &(mproc_executor_opts){.max_workers = 1, .context = ctx_of(_i)}));
    int ms = 300, zero = 0;
    mproc_future *fs[6];
    TU_OK(mproc_executor_submit(ex, sleep_task, &ms, sizeof ms, &fs[0]));
    for (int i = 1; i < 6; i++) TU_OK(mproc_executor_submit(ex, sleep_task, &zero, 4, &fs[i]));
    WAIT_UNTIL(mproc_future_running(fs[0]));
    TU_OK(mproc_executor_shutdown(ex, true, true));
    ck_assert(mproc_future_successful(fs[0]));
    ck_assert(mproc_future_cancelled(fs[5])); /* the last was surely not started */
    for (int i = 0; i < 6; i++) {
        ck_assert(mproc_future_done(fs[i]));
        mproc_future_free(fs[i]);
    }
    mproc_executor_free(ex);
}
END_TEST

START_TEST(process_executor_initializer)
{
    mproc_executor *ex = (mproc_executor *)1;
    TU_RC(mproc_executor_new_process(&ex, &(mproc_executor_opts){.max_workers = 2,
                                                                 .initializer = failing_init,
                                                                 .context = ctx_of(_i)}),
          MPROC_ETASK); /* as mproc_pool_new: creation fails */
    ck_assert_ptr_null(ex);
    TU_OK(mproc_executor_new_process(&ex, &(mproc_executor_opts){.max_workers = 2,
                                                                 .initializer = counting_init,
                                                                 .initargs = "init",
                                                                 .initargs_len = 4,
                                                                 .context = ctx_of(_i)}));
    mproc_future *f;
    TU_OK(mproc_executor_submit(ex, echo_task, "z", 1, &f));
    TU_OK(mproc_future_result(f, NULL, NULL, 20000));
    mproc_future_free(f);
    mproc_executor_free(ex);
}
END_TEST

/* ---- a fork copy of an executor's owner ------------------------------------- */

/* Waits (up to 30 s) for the flag in the arena that arg points to: a gate
 * that worker processes see too. */
static int arena_gate_task(const void *arg, size_t len, mproc_result *res)
{
    (void)len;
    atomic_int *gate = *(atomic_int *const *)arg;
    for (int k = 0; k < 30000 && !atomic_load(gate); k++) tu_sleep_ms(1);
    if (!atomic_load(gate)) return mproc_task_fail("the gate never opened");
    return mproc_result_set(res, "gated", 5);
}

/* What a plain fork() copy of an executor's owner may do: every call is
 * MPROC_ECHILD, a pending future cannot be waited on or cancelled there,
 * a done one can be read, and free releases the copy's memory only.
 * Returns 0, or the number of the first step that went wrong. */
static int executor_copy_calls(mproc_executor *ex, mproc_future *pending, mproc_future *done)
{
    int step = 0;
#define EXPECT(expr, want)                                                                         \
    do {                                                                                           \
        step++;                                                                                    \
        if ((long)(expr) != (long)(want)) return step;                                             \
    } while (0)
    mproc_future *f = NULL;
    int in[3] = {1, 2, 3};
    long long out[3];
    EXPECT(mproc_executor_submit(ex, echo_task, "x", 1, &f), MPROC_ECHILD);
    EXPECT(mproc_executor_map(ex, square, in, 3, sizeof *in, out, sizeof *out, 1000), MPROC_ECHILD);
    EXPECT(mproc_executor_shutdown(ex, false, false), MPROC_ECHILD);
    EXPECT(mproc_executor_shutdown(ex, true, true), MPROC_ECHILD);
    EXPECT(mproc_future_cancel(pending), MPROC_ECHILD);
    EXPECT(mproc_future_wait(pending, MPROC_FOREVER), MPROC_ECHILD);
    EXPECT(mproc_future_result(pending, NULL, NULL, MPROC_FOREVER), MPROC_ECHILD);
    const void *buf;
    size_t len;
    EXPECT(mproc_future_result(done, &buf, &len, MPROC_FOREVER), 0);
    EXPECT(len == 4 && memcmp(buf, "done", 4) == 0, 1);
    mproc_future_free(pending);
    mproc_future_free(done);
    mproc_executor_free(ex);
#undef EXPECT
    return 0;
}

/* Runs executor_copy_calls in a fork copy of this process; asserts it
 * passed. */
static void check_fork_copy(mproc_executor *ex, mproc_future *pending, mproc_future *done)
{
    fflush(NULL);
    pid_t copy = fork();
    ck_assert_int_ge(copy, 0);
    if (copy == 0) {
        alarm(30); /* a copy that hangs fails the test, it does not hang it */
        _exit(executor_copy_calls(ex, pending, done));
    }
    int st;
    ck_assert_int_eq(waitpid(copy, &st, 0), copy);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the copy failed at step %d (signal %d)",
                  WIFEXITED(st) ? WEXITSTATUS(st) : 0, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* Afterwards the owner's executor works on: the pending tasks, new ones,
 * map, shutdown. */
static void owner_goes_on(mproc_executor *ex, mproc_future **fs, int n, const char *want)
{
    for (int k = 0; k < n; k++) {
        const void *buf;
        size_t len;
        TU_OK(mproc_future_result(fs[k], &buf, &len, 20000));
        ck_assert(len == strlen(want) && memcmp(buf, want, len) == 0);
        mproc_future_free(fs[k]);
    }
    mproc_future *f;
    TU_OK(mproc_executor_submit(ex, echo_task, "again", 5, &f));
    TU_OK(mproc_future_result(f, NULL, NULL, 20000));
    mproc_future_free(f);
    int in[20];
    long long out[20];
    for (int k = 0; k < 20; k++) in[k] = k + 14;
    TU_OK(mproc_executor_map(ex, square, in, 20, sizeof *in, out, sizeof *out, 20000));
    for (int k = 0; k < 20; k++) ck_assert_int_eq(out[k], (long long)in[k] * in[k]);
    TU_OK(mproc_executor_shutdown(ex, true, false));
    mproc_executor_free(ex);
}

START_TEST(thread_executor_refuses_a_fork_copy)
{
    mproc_executor *ex = thread_ex(2);
    mproc_future *done, *fs[4];
    TU_OK(mproc_executor_submit(ex, echo_task, "done", 4, &done));
    TU_OK(mproc_future_wait(done, 20000));
    for (int k = 0; k < 4; k++) TU_OK(mproc_executor_submit(ex, gated_task, "gated", 5, &fs[k]));
    check_fork_copy(ex, fs[3], done);
    mproc_future_free(done);
    gate_open();
    owner_goes_on(ex, fs, 4, "gated");
}
END_TEST

START_TEST(process_executor_refuses_a_fork_copy)
{
    mproc_executor *ex;
    TU_OK(mproc_executor_new_process(
        &ex, &(mproc_executor_opts){.max_workers = 2, .context = ctx_of(_i)}));
    mproc_future *done, *fs[4];
    TU_OK(mproc_executor_submit(ex, echo_task, "done", 4, &done));
    TU_OK(mproc_future_wait(done, 20000));
    atomic_int *gate;
    TU_OK(mproc_arena_calloc((void **)&gate, sizeof *gate));
    for (int k = 0; k < 4; k++)
        TU_OK(mproc_executor_submit(ex, arena_gate_task, &gate, sizeof gate, &fs[k]));
    check_fork_copy(ex, fs[3], done);
    mproc_future_free(done);
    atomic_store(gate, 1);
    owner_goes_on(ex, fs, 4, "gated");
    mproc_arena_free(gate);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("future");
    TCase *tc = tu_tcase(s, "future", 30);
    tcase_add_test(tc, result_states_and_timeouts);
    tcase_add_test(tc, results_as_values_and_none);
    tcase_add_test(tc, task_failures_carry_messages);
    tcase_add_test(tc, task_runner_messages);
    tcase_add_test(tc, value_task_runner);
    tcase_add_test(tc, cancel_before_and_after_start);
    tcase_add_test(tc, internal_futures_and_owner_callbacks);
    tcase_add_test(tc, cancel_asks_the_owner);
    tc = tu_tcase(s, "callbacks", 30);
    tcase_add_test(tc, callbacks_run_in_order);
    tcase_add_test(tc, callbacks_run_on_cancel_in_the_cancelling_thread);
    tcase_add_test(tc, callbacks_may_submit);
    tc = tu_tcase(s, "wait", 30);
    tcase_add_test(tc, wait_first_completed);
    tcase_add_test(tc, wait_first_exception);
    tcase_add_test(tc, wait_all_completed);
    tcase_add_test(tc, as_completed_in_completion_order);
    tcase_add_test(tc, as_completed_over_executor_tasks);
    tc = tu_tcase(s, "thread_executor", 30);
    tcase_add_test(tc, shutdown_cancels_pending_futures);
    tcase_add_test(tc, shutdown_wait_runs_the_pending_ones);
    tcase_add_test(tc, free_waits_for_running_tasks);
    tcase_add_test(tc, workers_start_lazily_and_run_the_initializer_once);
    tcase_add_test(tc, failing_initializer_breaks_the_executor);
    tcase_add_test(tc, map_keeps_order);
    tcase_add_test(tc, map_returns_the_first_error_and_fills_the_rest);
    tcase_add_test(tc, map_bounds_the_work_in_flight);
    tcase_add_test(tc, map_times_out);
    tcase_add_test(tc, thread_executor_refuses_a_fork_copy);
    /* Fails until the pool (src/pool*.c) exists: mproc_pool_new is a stub. */
    tc = tu_tcase(s, "process_executor", 60);
    tcase_add_loop_test(tc, process_executor_submit_and_errors, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, process_executor_map, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, process_executor_shutdown_cancels, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, process_executor_initializer, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, process_executor_refuses_a_fork_copy, 0, TU_NMETHODS);
    return tu_run(s);
}
