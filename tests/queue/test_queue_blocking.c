/* Queues: a get on an empty queue times out (at once with a timeout of 0,
 * after the timeout otherwise), a get blocks until another process puts,
 * and a get_into too small for the message strands no other waiter. */
#include "queue_util.h"

/* ---- timeouts, blocking, snapshots -------------------------------------- */

START_TEST(get_on_empty_times_out)
{
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    void *buf;
    size_t len;
    char small[8];
    mproc_value *v;
    long long t0 = mproc_now_ns();
    TU_RC(mproc_queue_get(q, &buf, &len, 0), MPROC_ETIMEDOUT);
    TU_RC(mproc_queue_get_into(q, small, sizeof small, &len, 0), MPROC_ETIMEDOUT);
    TU_RC(mproc_queue_get_value(q, &v, 0), MPROC_ETIMEDOUT);
    ck_assert_int_lt(tu_ms_since(t0), 20 * TSCALE); /* at once */
    t0 = mproc_now_ns();
    TU_RC(mproc_queue_get(q, &buf, &len, 50), MPROC_ETIMEDOUT);
    long long el = tu_ms_since(t0);
    ck_assert_int_ge(el, 50);
    ck_assert_int_lt(el, 1000);
    t0 = mproc_now_ns();
    TU_RC(mproc_queue_get_into(q, small, sizeof small, &len, 50), MPROC_ETIMEDOUT);
    ck_assert_int_ge(tu_ms_since(t0), 50);
    t0 = mproc_now_ns();
    TU_RC(mproc_queue_get_value(q, &v, 50), MPROC_ETIMEDOUT);
    ck_assert_int_ge(tu_ms_since(t0), 50);
    mproc_queue_free(q);
}
END_TEST

static int put_later(void *arg)
{
    delayed *d = arg;
    tu_sleep_ms(d->delay_ms);
    return mproc_queue_put(d->q, "hello", 5, 0) ? 1 : 0;
}

START_TEST(get_blocks_until_another_process_puts)
{
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    delayed d;
    /* Zeroed first: its padding goes to the child too (see start() in test_wakeups.c). */
    memset(&d, 0, sizeof d);
    d.q = q;
    d.delay_ms = 150;
    mproc_process *p = start_child(put_later, &d, sizeof d, tu_methods[_i]);
    long long t0 = mproc_now_ns();
    expect_msg(q, "hello", 5, 10000);
    ck_assert_int_ge(tu_ms_since(t0), 100);
    ck_assert_int_eq(finish_child(p, 5000), 0);
    /* The same with no timeout at all. */
    d.delay_ms = 100;
    p = start_child(put_later, &d, sizeof d, tu_methods[_i]);
    expect_msg(q, "hello", 5, MPROC_FOREVER);
    ck_assert_int_eq(finish_child(p, 5000), 0);
    mproc_queue_free(q);
}
END_TEST

/* A get_into whose buffer is too small leaves the message: a consumer that
 * was waiting beside it must get it, not sleep on with a message queued.
 * Which waiter a put wakes first is not promised (with several asleep, all
 * are woken), so the small one may see the message (MPROC_ETOOSMALL) or find
 * it already taken and wait on until the queue is closed. */
static int get_into_small(void *arg)
{
    waiter_state *w = *(waiter_state **)arg;
    char small[10];
    size_t len = 0;
    __atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
    w->rc = mproc_queue_get_into(w->q, small, sizeof small, &len, 10000);
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    if (w->rc == MPROC_ETOOSMALL) return len == 100 ? 0 : 1;
    return w->rc == MPROC_ECLOSED ? 0 : 2;
}

START_TEST(a_too_small_get_into_does_not_strand_another_waiter)
{
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    waiter_state *w;
    TU_OK(mproc_arena_calloc((void **)&w, 2 * sizeof *w));
    w[0].q = w[1].q = q;
    waiter_state *w0 = &w[0], *w1 = &w[1];
    mproc_process *small = start_child(get_into_small, &w0, sizeof w0, tu_methods[_i]);
    wait_flag(&w[0].started, 1, 5000);
    tu_sleep_ms(50); /* asleep in get_into */
    mproc_process *any = start_child(get_any, &w1, sizeof w1, tu_methods[_i]);
    wait_flag(&w[1].started, 1, 5000);
    tu_sleep_ms(50); /* asleep in get */
    unsigned char m[100];
    pat_fill(m, sizeof m, 1);
    TU_OK(mproc_queue_put(q, m, sizeof m, 0));
    long long t0 = mproc_now_ns();
    while (!__atomic_load_n(&w[1].done, __ATOMIC_ACQUIRE) && tu_ms_since(t0) < 2000) tu_sleep_ms(1);
    long long el = tu_ms_since(t0);
    bool done = __atomic_load_n(&w[1].done, __ATOMIC_ACQUIRE);
    size_t left = mproc_queue_qsize(q);
    if (!done) {
        kill_child(any);
        ck_abort_msg("the other getter still waits %lld ms after the put, %zu message queued", el,
                     left);
    }
    ck_assert_int_eq(finish_child(any, 5000), 0);
    ck_assert_uint_eq(w[1].len, 100);
    ck_assert(mproc_queue_empty(q));
    mproc_queue_close(q); /* ends the small getter if it still waits */
    ck_assert_int_eq(finish_child(small, 5000), 0);
    TU_OK(mproc_arena_free(w));
    mproc_queue_free(q);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("queue_blocking");
    TCase *tc = q_tcase(s, "blocking", 30 * TSCALE);
    tcase_add_test(tc, get_on_empty_times_out);
    tcase_add_loop_test(tc, get_blocks_until_another_process_puts, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, a_too_small_get_into_does_not_strand_another_waiter, 0, TU_NMETHODS);
    return tu_run(s);
}
