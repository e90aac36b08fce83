/* Queues: close (puts fail, gets drain, waiters in other processes wake),
 * a burst from a producer that exits before its messages are taken, and a
 * queue freed with messages in it leaks nothing. */
#include "queue_util.h"

/* ---- close -------------------------------------------------------------- */

START_TEST(close_fails_puts_and_drains_gets)
{
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    ck_assert(!mproc_queue_closed(q));
    TU_OK(mproc_queue_put(q, "a", 1, 0));
    unsigned char *big = patterned(1 << 20, 9);
    TU_OK(mproc_queue_put(q, big, 1 << 20, 0));
    mproc_value *v = mproc_value_int(3), *got = NULL;
    TU_OK(mproc_queue_put_value(q, v, 0));
    mproc_queue_close(q);
    ck_assert(mproc_queue_closed(q));
    long long t0 = mproc_now_ns();
    TU_RC(mproc_queue_put(q, "x", 1, 0), MPROC_ECLOSED);
    TU_RC(mproc_queue_put(q, "x", 1, MPROC_FOREVER), MPROC_ECLOSED);
    TU_RC(mproc_queue_put_value(q, v, MPROC_FOREVER), MPROC_ECLOSED);
    ck_assert_uint_eq(mproc_queue_qsize(q), 3);
    expect_msg(q, "a", 1, MPROC_FOREVER);
    expect_patterned(q, 1 << 20, 9, true);
    TU_OK(mproc_queue_get_value(q, &got, 0));
    ck_assert(mproc_value_equal(v, got));
    mproc_value_free(got);
    void *buf;
    size_t len;
    char small[4];
    TU_RC(mproc_queue_get(q, &buf, &len, MPROC_FOREVER), MPROC_ECLOSED);
    TU_RC(mproc_queue_get(q, &buf, &len, 0), MPROC_ECLOSED);
    TU_RC(mproc_queue_get_into(q, small, sizeof small, &len, 1000), MPROC_ECLOSED);
    TU_RC(mproc_queue_get_value(q, &got, MPROC_FOREVER), MPROC_ECLOSED);
    ck_assert_int_lt(tu_ms_since(t0), 500 * TSCALE); /* nothing waited */
    mproc_queue_close(q);                            /* harmless */
    ck_assert(mproc_queue_closed(q));
    TU_RC(mproc_queue_put(q, "x", 1, 0), MPROC_ECLOSED);
    ck_assert(mproc_queue_empty(q));

    /* A full bounded queue: a put after close fails at once, gets drain. */
    mproc_queue *b;
    TU_OK(mproc_queue_new(&b, &(mproc_queue_opts){.maxsize = 1}));
    TU_OK(mproc_queue_put(b, "z", 1, 0));
    mproc_queue_close(b);
    t0 = mproc_now_ns();
    TU_RC(mproc_queue_put(b, "x", 1, MPROC_FOREVER), MPROC_ECLOSED);
    ck_assert_int_lt(tu_ms_since(t0), 500 * TSCALE);
    expect_msg(b, "z", 1, 0);
    TU_RC(mproc_queue_get(b, &buf, &len, MPROC_FOREVER), MPROC_ECLOSED);
    mproc_value_free(v);
    free(big);
    mproc_queue_free(b);
    mproc_queue_free(q);
}
END_TEST

static int get_expect_closed(void *arg)
{
    waiter_state *w = *(waiter_state **)arg;
    void *buf;
    size_t len;
    __atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
    w->rc = mproc_queue_get(w->q, &buf, &len, MPROC_FOREVER);
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    if (w->rc == 0) return 1;
    return w->rc == MPROC_ECLOSED ? 0 : 2;
}

static int put_expect_closed(void *arg)
{
    waiter_state *w = *(waiter_state **)arg;
    __atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
    w->rc = mproc_queue_put(w->q, "p", 1, MPROC_FOREVER);
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    if (w->rc == 0) return 1;
    return w->rc == MPROC_ECLOSED ? 0 : 2;
}

static void *thread_get_expect_closed(void *arg)
{
    return (void *)(intptr_t)get_expect_closed(&arg);
}

static int close_later(void *arg)
{
    delayed *d = arg;
    tu_sleep_ms(d->delay_ms);
    mproc_queue_close(d->q);
    return 0;
}

START_TEST(close_wakes_waiters_in_other_processes)
{
    mproc_queue *empty, *full, *tq;
    TU_OK(mproc_queue_new(&empty, NULL));
    TU_OK(mproc_queue_new(&full, &(mproc_queue_opts){.maxsize = 1}));
    TU_OK(mproc_queue_new(&tq, NULL));
    TU_OK(mproc_queue_put(full, "f", 1, 0));
    waiter_state *w;
    TU_OK(mproc_arena_calloc((void **)&w, 3 * sizeof *w));
    w[0].q = empty;
    w[1].q = full;
    w[2].q = tq;
    waiter_state *w0 = &w[0], *w1 = &w[1];
    mproc_process *g = start_child(get_expect_closed, &w0, sizeof w0, tu_methods[_i]);
    mproc_process *p = start_child(put_expect_closed, &w1, sizeof w1, tu_methods[_i]);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, thread_get_expect_closed, &w[2]), 0);
    for (int k = 0; k < 3; k++) wait_flag(&w[k].started, 1, 5000);
    tu_sleep_ms(150);
    for (int k = 0; k < 3; k++) ck_assert_int_eq(__atomic_load_n(&w[k].done, __ATOMIC_ACQUIRE), 0);
    mproc_queue_close(empty);
    mproc_queue_close(full);
    mproc_queue_close(tq);
    ck_assert_int_eq(finish_child(g, 5000), 0);
    ck_assert_int_eq(finish_child(p, 5000), 0);
    void *r;
    pthread_join(t, &r);
    ck_assert_int_eq((int)(intptr_t)r, 0);
    expect_msg(full, "f", 1, 0); /* the waiting put did not get in */

    /* The other way: this process waits, a child closes. */
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    delayed d;
    /* Zeroed first: its padding goes to the child too (see start() in test_wakeups.c). */
    memset(&d, 0, sizeof d);
    d.q = q;
    d.delay_ms = 100;
    mproc_process *c = start_child(close_later, &d, sizeof d, tu_methods[_i]);
    void *buf;
    size_t len;
    long long t0 = mproc_now_ns();
    TU_RC(mproc_queue_get(q, &buf, &len, 10000), MPROC_ECLOSED);
    ck_assert_int_lt(tu_ms_since(t0), 5000);
    ck_assert_int_eq(finish_child(c, 5000), 0);
    TU_OK(mproc_arena_free(w));
    mproc_queue_free(q);
    mproc_queue_free(empty);
    mproc_queue_free(full);
    mproc_queue_free(tq);
}
END_TEST

/* ---- a burst from a producer that exits --------------------------------- */

#define BURST_BIG   200 /* 1 MiB messages: 200 MiB */
#define BURST_SMALL 5   /* small ones after each big one */
#define BURST_N     (BURST_BIG * (1 + BURST_SMALL))

static size_t burst_size(uint32_t i)
{
    return i % (1 + BURST_SMALL) == 0 ? (size_t)1 << 20 : MSG_MIN + (i * 37) % 500;
}

static int put_burst_and_exit(void *arg)
{
    mproc_queue *q = *(mproc_queue **)arg;
    unsigned char *m = malloc((size_t)1 << 20);
    if (!m) return 1;
    for (uint32_t i = 0; i < BURST_N; i++) {
        size_t n = burst_size(i);
        msg_fill(m, n, 7, i);
        int rc = mproc_queue_put(q, m, n, 0); /* never waits */
        if (rc) return rc == MPROC_ETIMEDOUT ? 2 : 3;
    }
    free(m);
    return 0;
}

START_TEST(unbounded_burst_from_a_producer_that_exits)
{
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    size_t before = tu_arena_allocated();
    /* Joined before anything is read: no feeder, no join deadlock. */
    ck_assert_int_eq(tu_run_child(put_burst_and_exit, &q, sizeof q, tu_methods[_i]), 0);
    ck_assert_uint_eq(mproc_queue_qsize(q), BURST_N);
    ck_assert_uint_ge(tu_arena_allocated() - before, (size_t)BURST_BIG << 20);
    for (uint32_t i = 0; i < BURST_N; i++) {
        void *buf;
        size_t len;
        TU_OK(mproc_queue_get(q, &buf, &len, 0));
        uint32_t pid, seq;
        ck_assert_msg(msg_check(buf, len, &pid, &seq), "message %u corrupt", i);
        ck_assert_uint_eq(pid, 7);
        ck_assert_uint_eq(seq, i);
        ck_assert_uint_eq(len, burst_size(i));
        free(buf);
    }
    ck_assert(mproc_queue_empty(q));
    void *buf;
    size_t len;
    TU_RC(mproc_queue_get(q, &buf, &len, 0), MPROC_ETIMEDOUT);
    mproc_queue_free(q);
}
END_TEST

/* ---- freeing a queue with messages in it -------------------------------- */

static int put_some_and_exit(void *arg)
{
    mproc_queue *q = *(mproc_queue **)arg;
    static const size_t n[] = {10, 5000, 100000, 3 << 20};
    for (int i = 0; i < 4; i++) {
        unsigned char *m = calloc(1, n[i]);
        if (!m || mproc_queue_put(q, m, n[i], 0)) return 1;
        free(m);
    }
    return 0;
}

START_TEST(free_with_messages_left_leaks_nothing)
{
    size_t before = tu_arena_allocated();
    static const size_t n[] = {0, 8, 100, 4096, 40000, 1 << 20, 16 << 20, 3 << 20, 17};
    unsigned char *m = patterned(16 << 20, 1);
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    for (int i = 0; i < 9; i++) TU_OK(mproc_queue_put(q, m, n[i], 0));
    expect_msg(q, m, 0, 0);
    expect_msg(q, m, 8, 0);
    mproc_queue_free(q);
    ck_assert_uint_eq(tu_arena_allocated(), before);

    /* Bounded, joinable, closed; and messages a child put. */
    TU_OK(mproc_queue_new(
        &q, &(mproc_queue_opts){.maxsize = 5, .max_bytes = 64 << 20, .joinable = true}));
    for (int i = 2; i < 7; i++) TU_OK(mproc_queue_put(q, m, n[i], 0));
    mproc_queue_close(q);
    mproc_queue_free(q);
    ck_assert_uint_eq(tu_arena_allocated(), before);

    TU_OK(mproc_simple_queue_new(&q));
    ck_assert_int_eq(tu_run_child(put_some_and_exit, &q, sizeof q, tu_methods[_i]), 0);
    ck_assert_uint_eq(mproc_queue_qsize(q), 4);
    mproc_queue_free(q);
    ck_assert_uint_eq(tu_arena_allocated(), before);
    free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("queue_lifetime");
    TCase *tc = q_tcase(s, "lifetime", 30 * TSCALE);
    tcase_add_test(tc, close_fails_puts_and_drains_gets);
    tcase_add_loop_test(tc, close_wakes_waiters_in_other_processes, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, unbounded_burst_from_a_producer_that_exits, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, free_with_messages_left_leaks_nothing, 0, TU_NMETHODS);
    return tu_run(s);
}
