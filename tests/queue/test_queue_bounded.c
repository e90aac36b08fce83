/* Queues with bounds: maxsize blocks a put until a get makes room,
 * max_bytes bounds the bytes queued, and room made for a small waiting put
 * is not missed. */
#include "queue_util.h"

START_TEST(bounded_queue_blocks_and_a_get_unblocks_a_put)
{
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, &(mproc_queue_opts){.maxsize = 3}));
    ck_assert(mproc_queue_empty(q));
    ck_assert(!mproc_queue_full(q));
    ck_assert_uint_eq(mproc_queue_qsize(q), 0);
    TU_OK(mproc_queue_put(q, "a", 1, 0));
    ck_assert(!mproc_queue_empty(q));
    ck_assert(!mproc_queue_full(q));
    TU_OK(mproc_queue_put(q, "b", 1, 0));
    TU_OK(mproc_queue_put(q, "c", 1, MPROC_FOREVER));
    ck_assert(mproc_queue_full(q));
    ck_assert_uint_eq(mproc_queue_qsize(q), 3);
    long long t0 = mproc_now_ns();
    TU_RC(mproc_queue_put(q, "x", 1, 0), MPROC_ETIMEDOUT);
    ck_assert_int_lt(tu_ms_since(t0), 20 * TSCALE);
    t0 = mproc_now_ns();
    TU_RC(mproc_queue_put(q, "x", 1, 50), MPROC_ETIMEDOUT);
    ck_assert_int_ge(tu_ms_since(t0), 50);
    ck_assert_uint_eq(mproc_queue_qsize(q), 3);

    waiter_state *w;
    TU_OK(mproc_arena_calloc((void **)&w, sizeof *w));
    w->q = q;
    mproc_process *p = start_child(put_d_forever, &w, sizeof w, tu_methods[_i]);
    wait_flag(&w->started, 1, 5000);
    tu_sleep_ms(150);
    ck_assert_int_eq(__atomic_load_n(&w->done, __ATOMIC_ACQUIRE), 0); /* still waiting */
    ck_assert_uint_eq(mproc_queue_qsize(q), 3);
    expect_msg(q, "a", 1, 0); /* makes room */
    ck_assert_int_eq(finish_child(p, 5000), 0);
    ck_assert_int_eq(w->done, 1);
    ck_assert(mproc_queue_full(q));
    expect_msg(q, "b", 1, 0);
    expect_msg(q, "c", 1, 0);
    expect_msg(q, "d", 1, 0);
    ck_assert(mproc_queue_empty(q));
    ck_assert(!mproc_queue_full(q));
    TU_OK(mproc_arena_free(w));
    mproc_queue_free(q);
}
END_TEST

static int put_500_forever(void *arg)
{
    waiter_state *w = *(waiter_state **)arg;
    unsigned char m[500];
    pat_fill(m, sizeof m, 500);
    __atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
    w->rc = mproc_queue_put(w->q, m, sizeof m, MPROC_FOREVER);
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    return w->rc ? 1 : 0;
}

START_TEST(max_bytes_bounds_the_queue)
{
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, &(mproc_queue_opts){.max_bytes = 1000}));
    unsigned char *m = patterned(5000, 3);
    TU_OK(mproc_queue_put(q, m, 600, 0));
    TU_RC(mproc_queue_put(q, m, 600, 0), MPROC_ETIMEDOUT); /* 1200 > 1000 */
    TU_RC(mproc_queue_put(q, m, 401, 0), MPROC_ETIMEDOUT);
    TU_OK(mproc_queue_put(q, m, 400, 0)); /* exactly 1000 */
    TU_RC(mproc_queue_put(q, m, 1, 0), MPROC_ETIMEDOUT);
    long long t0 = mproc_now_ns();
    TU_RC(mproc_queue_put(q, m, 1, 50), MPROC_ETIMEDOUT);
    ck_assert_int_ge(tu_ms_since(t0), 50);
    ck_assert_uint_eq(mproc_queue_qsize(q), 2);
    expect_msg(q, m, 600, 0);
    expect_msg(q, m, 400, 0);
    ck_assert(mproc_queue_empty(q));
    /* A message larger than max_bytes goes in alone, and then fills it. */
    TU_OK(mproc_queue_put(q, m, 5000, 0));
    TU_RC(mproc_queue_put(q, m, 1, 0), MPROC_ETIMEDOUT);
    expect_msg(q, m, 5000, 0);
    /* A put waiting for bytes in another process is let in by a get. */
    TU_OK(mproc_queue_put(q, m, 900, 0));
    waiter_state *w;
    TU_OK(mproc_arena_calloc((void **)&w, sizeof *w));
    w->q = q;
    mproc_process *p = start_child(put_500_forever, &w, sizeof w, tu_methods[_i]);
    wait_flag(&w->started, 1, 5000);
    tu_sleep_ms(100);
    ck_assert_int_eq(__atomic_load_n(&w->done, __ATOMIC_ACQUIRE), 0);
    expect_msg(q, m, 900, 0);
    ck_assert_int_eq(finish_child(p, 5000), 0);
    unsigned char m500[500];
    pat_fill(m500, sizeof m500, 500);
    expect_msg(q, m500, 500, 0);
    TU_OK(mproc_arena_free(w));
    free(m);
    mproc_queue_free(q);
}
END_TEST

/* max_bytes: a get that makes room for a small waiting put (but not for a
 * larger one that waited first) must let the small one in. */
typedef struct {
    waiter_state w;
    size_t n;
} sized_waiter;

static int put_n_bytes(void *arg)
{
    sized_waiter *s = *(sized_waiter **)arg;
    unsigned char m[1000];
    memset(m, 7, sizeof m);
    __atomic_store_n(&s->w.started, 1, __ATOMIC_RELEASE);
    s->w.rc = mproc_queue_put(s->w.q, m, s->n, 10000);
    __atomic_store_n(&s->w.done, 1, __ATOMIC_RELEASE);
    return s->w.rc == 0 ? 0 : s->w.rc == MPROC_ETIMEDOUT ? 1 : 2;
}

START_TEST(max_bytes_room_for_a_small_put_is_not_missed)
{
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, &(mproc_queue_opts){.max_bytes = 1000}));
    unsigned char m[500];
    memset(m, 1, sizeof m);
    TU_OK(mproc_queue_put(q, m, 500, 0));
    TU_OK(mproc_queue_put(q, m, 450, 0));
    sized_waiter *s;
    TU_OK(mproc_arena_calloc((void **)&s, 2 * sizeof *s));
    s[0].w.q = s[1].w.q = q;
    s[0].n = 600; /* fits only when the queue is nearly empty */
    s[1].n = 60;  /* fits once the first message is gone */
    sized_waiter *s0 = &s[0], *s1 = &s[1];
    mproc_process *big = start_child(put_n_bytes, &s0, sizeof s0, tu_methods[_i]);
    wait_flag(&s[0].w.started, 1, 5000);
    tu_sleep_ms(50);
    mproc_process *small = start_child(put_n_bytes, &s1, sizeof s1, tu_methods[_i]);
    wait_flag(&s[1].w.started, 1, 5000);
    tu_sleep_ms(50);
    expect_msg(q, m, 500, 0); /* 450 left: room for 60, not for 600 */
    long long t0 = mproc_now_ns();
    while (!__atomic_load_n(&s[1].w.done, __ATOMIC_ACQUIRE) && tu_ms_since(t0) < 2000)
        tu_sleep_ms(1);
    long long el = tu_ms_since(t0);
    if (!__atomic_load_n(&s[1].w.done, __ATOMIC_ACQUIRE)) {
        kill_child(small);
        kill_child(big);
        ck_abort_msg("a put of 60 bytes into 450 of 1000 still waits after %lld ms", el);
    }
    ck_assert_int_eq(finish_child(small, 5000), 0);
    ck_assert_int_eq(s[0].w.done, 0); /* 510 + 600 > 1000 */
    expect_msg(q, m, 450, 0);         /* now room for 600 */
    ck_assert_int_eq(finish_child(big, 5000), 0);
    ck_assert_uint_eq(mproc_queue_qsize(q), 2);
    TU_OK(mproc_arena_free(s));
    mproc_queue_free(q);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("queue_bounded");
    TCase *tc = q_tcase(s, "bounded", 30 * TSCALE);
    tcase_add_loop_test(tc, bounded_queue_blocks_and_a_get_unblocks_a_put, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, max_bytes_bounds_the_queue, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, max_bytes_room_for_a_small_put_is_not_missed, 0, TU_NMETHODS);
    return tu_run(s);
}
