/* mproc_process_start_all / _join_all: a group started and joined in one
 * call each, under every start method (the loop index _i). */
#include "testutil.h"

#include <poll.h>
#include <signal.h>

static int ret_arg(void *arg)
{
    return *(int *)arg;
}

static int self_kill(void *arg)
{
    (void)arg;
    raise(SIGKILL);
    return 0;
}

static int sleeper(void *arg)
{
    (void)arg;
    tu_sleep_ms(10000);
    return 0;
}

static void free_all(mproc_process **ps, size_t n)
{
    for (size_t i = 0; i < n; i++) TU_OK(mproc_process_free(ps[i]));
}

START_TEST(all_succeed)
{
    mproc_process *ps[4];
    int zero = 0;
    for (int k = 0; k < 4; k++)
        TU_OK(mproc_process_new(&ps[k], ret_arg, &zero, sizeof zero, TU_OPTS));
    TU_OK(mproc_process_start_all(ps, 4));
    size_t nfailed = 99;
    TU_OK(mproc_process_join_all(ps, 4, MPROC_FOREVER, &nfailed));
    ck_assert_uint_eq(nfailed, 0);
    for (int k = 0; k < 4; k++) {
        int code = -1;
        TU_OK(mproc_process_exitcode(ps[k], &code)); /* every one has ended */
        ck_assert_int_eq(code, 0);
    }
    free_all(ps, 4);
}
END_TEST

START_TEST(failures_are_counted)
{
    static const int codes[] = {0, 3, 0, 255};
    mproc_process *ps[5];
    for (int k = 0; k < 4; k++)
        TU_OK(mproc_process_new(&ps[k], ret_arg, &codes[k], sizeof codes[k], TU_OPTS));
    TU_OK(mproc_process_new(&ps[4], self_kill, NULL, 0, TU_OPTS));
    TU_OK(mproc_process_start_all(ps, 5));
    size_t nfailed = 0;
    TU_OK(mproc_process_join_all(ps, 5, 10000, &nfailed));
    ck_assert_uint_eq(nfailed, 3); /* 3, 255 and -SIGKILL */
    int code;
    TU_OK(mproc_process_exitcode(ps[4], &code));
    ck_assert_int_eq(code, -SIGKILL);
    TU_OK(mproc_process_join_all(ps, 5, 0, NULL)); /* again, no count wanted */
    free_all(ps, 5);
}
END_TEST

START_TEST(timeout_leaves_the_sleepers_joinable)
{
    /* A quick one, three sleepers, then one that exits with 3. */
    int zero = 0, three = 3;
    mproc_process *ps[5];
    TU_OK(mproc_process_new(&ps[0], ret_arg, &zero, sizeof zero, TU_OPTS));
    for (int k = 1; k < 4; k++) TU_OK(mproc_process_new(&ps[k], sleeper, NULL, 0, TU_OPTS));
    TU_OK(mproc_process_new(&ps[4], ret_arg, &three, sizeof three, TU_OPTS));
    TU_OK(mproc_process_start_all(ps, 5));
    /* The last one has ended (not reaped) before the timeout starts. */
    struct pollfd pf = {.fd = mproc_process_sentinel(ps[4]), .events = POLLIN};
    ck_assert_int_ge(pf.fd, 0);
    ck_assert_int_eq(poll(&pf, 1, 10000), 1);
    size_t nfailed = 99;
    long long t0 = mproc_now_ns();
    TU_RC(mproc_process_join_all(ps, 5, 300, &nfailed), MPROC_ETIMEDOUT);
    long long ms = tu_ms_since(t0);
    /* One overall timeout: the three sleepers share it. */
    ck_assert_int_ge(ms, 290);
    ck_assert_int_lt(ms, 300 + 500);
    /* The one after the sleepers was still joined, with no time left. */
    ck_assert_uint_eq(nfailed, 1);
    for (int k = 1; k < 4; k++) ck_assert(mproc_process_is_alive(ps[k]));
    TU_RC(mproc_process_join_all(ps, 5, 0, &nfailed), MPROC_ETIMEDOUT);
    for (int k = 1; k < 4; k++) TU_OK(mproc_process_kill(ps[k]));
    TU_OK(mproc_process_join_all(ps, 5, 10000, &nfailed));
    ck_assert_uint_eq(nfailed, 4); /* the one with 3 and the sleepers, killed */
    free_all(ps, 5);
}
END_TEST

START_TEST(bad_input)
{
    int zero = 0;
    size_t nfailed = 99;
    TU_RC(mproc_process_start_all(NULL, 1), MPROC_EINVAL);
    TU_RC(mproc_process_join_all(NULL, 1, MPROC_FOREVER, &nfailed), MPROC_EINVAL);
    ck_assert_uint_eq(nfailed, 0);
    mproc_process *ps[3];
    TU_OK(mproc_process_new(&ps[0], ret_arg, &zero, sizeof zero, TU_OPTS));
    TU_OK(mproc_process_new(&ps[1], ret_arg, &zero, sizeof zero, TU_OPTS));
    ps[2] = NULL;
    /* A NULL element: refused before anything is started or joined. */
    TU_RC(mproc_process_start_all(ps, 3), MPROC_EINVAL);
    ck_assert_int_eq(mproc_process_pid(ps[0]), 0);
    ck_assert_int_eq(mproc_process_pid(ps[1]), 0);
    TU_RC(mproc_process_join_all(ps, 3, MPROC_FOREVER, NULL), MPROC_EINVAL);
    /* Not started: the join error. */
    TU_RC(mproc_process_join_all(ps, 2, 0, &nfailed), MPROC_ENOTSTARTED);
    /* Started before: the first failure stops it, the rest stay unstarted. */
    TU_OK(mproc_process_start(ps[0]));
    TU_RC(mproc_process_start_all(ps, 2), MPROC_ESTARTED);
    ck_assert_int_eq(mproc_process_pid(ps[1]), 0);
    /* A bad timeout: refused before anything is joined. */
    TU_RC(mproc_process_join_all(ps, 1, -2, &nfailed), MPROC_EINVAL);
    ck_assert(mproc_process_pid(ps[0]) > 0);
    TU_OK(mproc_process_join_all(ps, 1, 10000, &nfailed));
    ck_assert_uint_eq(nfailed, 0);
    free_all(ps, 2);
}
END_TEST

START_TEST(empty_group)
{
    size_t nfailed = 99;
    TU_OK(mproc_process_start_all(NULL, 0));
    TU_OK(mproc_process_join_all(NULL, 0, MPROC_FOREVER, &nfailed));
    ck_assert_uint_eq(nfailed, 0);
    mproc_process *p;
    TU_OK(mproc_process_new(&p, sleeper, NULL, 0, TU_OPTS));
    TU_OK(mproc_process_start_all(&p, 0)); /* n = 0: nothing started */
    ck_assert_int_eq(mproc_process_pid(p), 0);
    TU_OK(mproc_process_join_all(&p, 0, 0, NULL));
    TU_OK(mproc_process_free(p));
}
END_TEST

/* start_new: new + start; join_free: join, code, free. */
START_TEST(start_new_and_join_free)
{
    int three = 3;
    mproc_process *p = NULL;
    TU_OK(mproc_process_start_new(&p, ret_arg, &three, sizeof three, TU_OPTS));
    ck_assert(mproc_process_pid(p) > 0);
    int code = -1;
    TU_OK(mproc_process_join_free(p, 10000, &code));
    ck_assert_int_eq(code, 3);
    /* Still running at the deadline: kept, then joined and freed. */
    TU_OK(mproc_process_start_new(&p, sleeper, NULL, 0, TU_OPTS));
    TU_RC(mproc_process_join_free(p, 50, &code), MPROC_ETIMEDOUT);
    ck_assert_int_eq(code, 3); /* untouched */
    TU_OK(mproc_process_kill(p));
    TU_OK(mproc_process_join_free(p, 10000, NULL));
    /* Bad input: nothing made, nothing joined. */
    TU_RC(mproc_process_start_new(&p, NULL, NULL, 0, TU_OPTS), MPROC_EINVAL);
    TU_RC(mproc_process_start_new(NULL, ret_arg, &three, sizeof three, TU_OPTS), MPROC_EINVAL);
    TU_RC(mproc_process_join_free(NULL, 0, &code), MPROC_EINVAL);
    /* Not started: join_free refuses, and keeps the object. */
    TU_OK(mproc_process_new(&p, ret_arg, &three, sizeof three, TU_OPTS));
    TU_RC(mproc_process_join_free(p, 0, NULL), MPROC_ENOTSTARTED);
    TU_OK(mproc_process_free(p));
}
END_TEST

static int start_from_daemon(void *arg)
{
    (void)arg;
    int zero = 0;
    mproc_process *p = (mproc_process *)&zero; /* must come back NULL */
    int rc = mproc_process_start_new(&p, ret_arg, &zero, sizeof zero, NULL);
    if (rc != MPROC_EBADSTATE) return 10;
    return p == NULL ? 0 : 11;
}

/* A start that fails frees the object and leaves *out NULL: a daemon
 * process may not start children (checked in a daemon child). */
START_TEST(start_new_failure_frees)
{
    mproc_process_opts o = *TU_OPTS;
    o.daemon = true;
    mproc_process *p;
    TU_OK(mproc_process_start_new(&p, start_from_daemon, NULL, 0, &o));
    int code = -1;
    TU_OK(mproc_process_join_free(p, 10000, &code));
    ck_assert_int_eq(code, 0);
}
END_TEST

START_TEST(join_free_all_frees_when_all_ended)
{
    static const int codes[] = {0, 2, 0};
    mproc_process *ps[4];
    for (int k = 0; k < 3; k++)
        TU_OK(mproc_process_start_new(&ps[k], ret_arg, &codes[k], sizeof codes[k], TU_OPTS));
    TU_OK(mproc_process_start_new(&ps[3], sleeper, NULL, 0, TU_OPTS));
    size_t nfailed = 99;
    /* One still running: nothing freed, all still there. */
    TU_RC(mproc_process_join_free_all(ps, 4, 100, &nfailed), MPROC_ETIMEDOUT);
    for (int k = 0; k < 4; k++) ck_assert_ptr_nonnull(ps[k]);
    ck_assert_uint_eq(nfailed, 1);
    TU_OK(mproc_process_kill(ps[3]));
    TU_OK(mproc_process_join_free_all(ps, 4, 10000, &nfailed));
    ck_assert_uint_eq(nfailed, 2); /* the 2 and the killed one */
    for (int k = 0; k < 4; k++) ck_assert_ptr_null(ps[k]);
    TU_RC(mproc_process_join_free_all(NULL, 1, 0, NULL), MPROC_EINVAL);
    TU_OK(mproc_process_join_free_all(NULL, 0, 0, NULL));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("process_group");
    TCase *tc = tu_tcase(s, "group", 30);
    tcase_add_loop_test(tc, all_succeed, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, failures_are_counted, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, timeout_leaves_the_sleepers_joinable, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, bad_input, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, empty_group, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, start_new_and_join_free, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, start_new_failure_frees, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, join_free_all_frees_when_all_ended, 0, TU_NMETHODS);
    return tu_run(s);
}
