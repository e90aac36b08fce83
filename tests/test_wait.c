/* mproc_wait over connections, process sentinels and fds. */
#include "testutil.h"

#include <fcntl.h>

static int sleeper(void *arg)
{
    tu_sleep_ms(*(int *)arg);
    return 0;
}

START_TEST(wait_picks_the_ready_connection)
{
    mproc_conn *r[3], *w[3];
    for (int k = 0; k < 3; k++) TU_OK(mproc_pipe(&r[k], &w[k], k != 1));
    mproc_waitable items[3];
    for (int k = 0; k < 3; k++) items[k] = MPROC_WAITABLE_CONN(r[k]);
    size_t n = 99;
    TU_RC(mproc_wait(items, 3, 0, &n), MPROC_ETIMEDOUT);
    ck_assert_uint_eq(n, 0);
    long long t0 = mproc_now_ns();
    TU_RC(mproc_wait(items, 3, 40, NULL), MPROC_ETIMEDOUT);
    ck_assert(mproc_now_ns() - t0 >= 40000000LL);
    TU_OK(mproc_conn_send_bytes(w[1], "a", 1));
    TU_OK(mproc_wait(items, 3, MPROC_FOREVER, &n));
    ck_assert_uint_eq(n, 1);
    ck_assert(!items[0].ready && items[1].ready && !items[2].ready);
    /* Two messages in one read: after the first is taken, the second is
     * buffered inside the connection and wait must still see it. */
    TU_OK(mproc_conn_send_bytes(w[1], "b", 1));
    void *got;
    size_t len;
    TU_OK(mproc_conn_recv_bytes(r[1], &got, &len, 0));
    free(got);
    TU_OK(mproc_wait(items, 3, 0, &n));
    ck_assert(items[1].ready);
    TU_OK(mproc_conn_recv_bytes(r[1], &got, &len, 0));
    ck_assert_uint_eq(len, 1);
    ck_assert(memcmp(got, "b", 1) == 0);
    free(got);
    TU_RC(mproc_wait(items, 3, 0, &n), MPROC_ETIMEDOUT);
    /* End of file is ready too. */
    mproc_conn_close(w[2]);
    TU_OK(mproc_wait(items, 3, 1000, &n));
    ck_assert(items[2].ready && n == 1);
    for (int k = 0; k < 3; k++) {
        mproc_conn_free(r[k]);
        mproc_conn_free(w[k]);
    }
}
END_TEST

START_TEST(wait_on_processes_and_connections_together)
{
    int quick = 50, slow = 10000;
    mproc_process *a, *b;
    TU_OK(mproc_process_new(&a, sleeper, &quick, sizeof quick, TU_OPTS));
    TU_OK(mproc_process_new(&b, sleeper, &slow, sizeof slow, TU_OPTS));
    TU_OK(mproc_process_start(a));
    TU_OK(mproc_process_start(b));
    mproc_conn *r, *w;
    TU_OK(mproc_pipe(&r, &w, false));
    mproc_waitable items[] = {MPROC_WAITABLE_PROCESS(a), MPROC_WAITABLE_PROCESS(b),
                              MPROC_WAITABLE_CONN(r)};
    size_t n;
    TU_OK(mproc_wait(items, 3, 10000, &n));
    ck_assert(items[0].ready && !items[1].ready && !items[2].ready);
    TU_OK(mproc_process_join(a, 0));
    /* A reaped process stays ready. */
    TU_OK(mproc_wait(items, 1, 0, &n));
    ck_assert(items[0].ready);
    TU_OK(mproc_process_kill(b));
    TU_OK(mproc_wait(items + 1, 1, 10000, &n));
    ck_assert(items[1].ready);
    TU_OK(mproc_process_join(b, 10000));
    TU_OK(mproc_process_free(a));
    TU_OK(mproc_process_free(b));
    mproc_conn_free(r);
    mproc_conn_free(w);
}
END_TEST

START_TEST(wait_on_raw_fds_and_many_items)
{
    enum { N = 40 };
    int fds[N][2];
    mproc_waitable items[N];
    for (int k = 0; k < N; k++) {
        ck_assert_int_eq(pipe2(fds[k], O_CLOEXEC), 0);
        items[k] = MPROC_WAITABLE_FD(fds[k][0]);
    }
    ck_assert_int_eq(write(fds[37][1], "z", 1), 1);
    size_t n;
    TU_OK(mproc_wait(items, N, 1000, &n));
    ck_assert_uint_eq(n, 1);
    ck_assert(items[37].ready);
    for (int k = 0; k < N; k++) {
        close(fds[k][0]);
        close(fds[k][1]);
    }
}
END_TEST

typedef struct {
    mproc_queue *q;
    int delay_ms;
} delayed_put;

static int put_later(void *arg)
{
    delayed_put *d = arg;
    tu_sleep_ms(d->delay_ms);
    return mproc_queue_put(d->q, "x", 1, 1000) ? 1 : 0;
}

START_TEST(wait_on_queues_alone_and_with_connections)
{
    mproc_queue *q[2];
    for (int k = 0; k < 2; k++) TU_OK(mproc_queue_new(&q[k], NULL));
    mproc_waitable items[3] = {MPROC_WAITABLE_QUEUE(q[0]), MPROC_WAITABLE_QUEUE(q[1])};
    size_t n;
    TU_RC(mproc_wait(items, 2, 0, &n), MPROC_ETIMEDOUT);
    long long t0 = mproc_now_ns();
    TU_RC(mproc_wait(items, 2, 30, &n), MPROC_ETIMEDOUT);
    ck_assert(mproc_now_ns() - t0 >= 30000000LL);
    /* Queues alone: woken by a put in another process. */
    delayed_put d;
    /* Zeroed first: its padding goes to the child too (see start() in test_wakeups.c). */
    memset(&d, 0, sizeof d);
    d.q = q[1];
    d.delay_ms = 50;
    mproc_process *p;
    TU_OK(mproc_process_new(&p, put_later, &d, sizeof d, TU_OPTS));
    TU_OK(mproc_process_start(p));
    TU_OK(mproc_wait(items, 2, 10000, &n));
    ck_assert(!items[0].ready && items[1].ready && n == 1);
    TU_OK(mproc_process_join(p, 10000));
    TU_OK(mproc_process_free(p));
    void *got;
    size_t len;
    TU_OK(mproc_queue_get(q[1], &got, &len, 0));
    free(got);
    /* Mixed with a connection: the queue is still noticed. */
    mproc_conn *r, *w;
    TU_OK(mproc_pipe(&r, &w, false));
    items[2] = MPROC_WAITABLE_CONN(r);
    d.q = q[0];
    TU_OK(mproc_process_new(&p, put_later, &d, sizeof d, TU_OPTS));
    TU_OK(mproc_process_start(p));
    TU_OK(mproc_wait(items, 3, 10000, &n));
    ck_assert(items[0].ready && !items[1].ready && !items[2].ready);
    TU_OK(mproc_process_join(p, 10000));
    TU_OK(mproc_process_free(p));
    TU_OK(mproc_conn_send_bytes(w, "y", 1));
    TU_OK(mproc_wait(items + 1, 2, 1000, &n));
    ck_assert(items[2].ready && n == 1);
    /* A closed queue is ready: a get returns at once. */
    mproc_queue_close(q[1]);
    TU_OK(mproc_wait(items + 1, 1, 0, &n));
    ck_assert(items[1].ready);
    items[0] = MPROC_WAITABLE_QUEUE(NULL);
    TU_RC(mproc_wait(items, 1, 0, &n), MPROC_EINVAL);
    mproc_conn_free(r);
    mproc_conn_free(w);
    for (int k = 0; k < 2; k++) mproc_queue_free(q[k]);
}
END_TEST

START_TEST(wait_rejects_bad_items)
{
    mproc_conn *r, *w;
    TU_OK(mproc_pipe(&r, &w, false));
    mproc_waitable it = MPROC_WAITABLE_CONN(w);
    TU_RC(mproc_wait(&it, 1, 0, NULL), MPROC_EBADF);
    it = MPROC_WAITABLE_CONN(NULL);
    TU_RC(mproc_wait(&it, 1, 0, NULL), MPROC_EINVAL);
    it = MPROC_WAITABLE_FD(-1);
    TU_RC(mproc_wait(&it, 1, 0, NULL), MPROC_EINVAL);
    it = (mproc_waitable){.kind = 42};
    TU_RC(mproc_wait(&it, 1, 0, NULL), MPROC_EINVAL);
    TU_RC(mproc_wait(NULL, 1, 0, NULL), MPROC_EINVAL);
    it = MPROC_WAITABLE_CONN(r);
    TU_RC(mproc_wait(&it, 1, -9, NULL), MPROC_EINVAL);
    mproc_conn_close(r);
    TU_RC(mproc_wait(&it, 1, 0, NULL), MPROC_ECLOSED);
    mproc_process *p;
    int ms = 0;
    TU_OK(mproc_process_new(&p, sleeper, &ms, sizeof ms, NULL));
    it = MPROC_WAITABLE_PROCESS(p);
    TU_RC(mproc_wait(&it, 1, 0, NULL), MPROC_ENOTSTARTED);
    TU_OK(mproc_process_free(p));
    TU_RC(mproc_wait(NULL, 0, 0, NULL), MPROC_ETIMEDOUT);
    mproc_conn_free(r);
    mproc_conn_free(w);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wait");
    TCase *tc = tu_tcase(s, "wait", 30);
    tcase_add_test(tc, wait_picks_the_ready_connection);
    tcase_add_loop_test(tc, wait_on_processes_and_connections_together, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, wait_on_queues_alone_and_with_connections, 0, TU_NMETHODS);
    tcase_add_test(tc, wait_on_raw_fds_and_many_items);
    tcase_add_test(tc, wait_rejects_bad_items);
    return tu_run(s);
}
