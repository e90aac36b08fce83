/* SimpleQueue and JoinableQueue: the simple queue between processes, the
 * joinable queue's task counts, and join waiting for consumers in other
 * processes. */
#include "queue_util.h"

/* ---- SimpleQueue and JoinableQueue -------------------------------------- */

static int get_two_and_check(void *arg)
{
    mproc_queue *q = *(mproc_queue **)arg;
    char buf[8];
    size_t len;
    if (mproc_queue_get_into(q, buf, sizeof buf, &len, 5000) || len != 3 || memcmp(buf, "one", 3))
        return 1;
    if (mproc_queue_get_into(q, buf, sizeof buf, &len, 5000) || len != 3 || memcmp(buf, "two", 3))
        return 2;
    return 0;
}

START_TEST(simple_queue_basics)
{
    mproc_queue *q;
    TU_OK(mproc_simple_queue_new(&q));
    ck_assert(mproc_queue_empty(q));
    ck_assert(!mproc_queue_full(q));
    TU_OK(mproc_queue_put(q, "one", 3, 0));
    TU_OK(mproc_queue_put(q, "two", 3, MPROC_FOREVER));
    ck_assert_uint_eq(mproc_queue_qsize(q), 2);
    ck_assert(!mproc_queue_empty(q));
    ck_assert_int_eq(tu_run_child(get_two_and_check, &q, sizeof q, tu_methods[_i]), 0);
    ck_assert(mproc_queue_empty(q));
    TU_OK(mproc_queue_put(q, "three", 5, 0));
    expect_msg(q, "three", 5, 0);
    /* Not joinable. */
    TU_RC(mproc_queue_task_done(q), MPROC_EBADSTATE);
    TU_RC(mproc_queue_join(q, 0), MPROC_EBADSTATE);
    TU_RC(mproc_queue_join(q, MPROC_FOREVER), MPROC_EBADSTATE);
    mproc_queue_close(q);
    TU_RC(mproc_queue_put(q, "x", 1, 0), MPROC_ECLOSED);
    mproc_queue_free(q);
    /* Neither is a plain Queue. */
    TU_OK(mproc_queue_new(&q, NULL));
    TU_OK(mproc_queue_put(q, "x", 1, 0));
    TU_RC(mproc_queue_task_done(q), MPROC_EBADSTATE);
    TU_RC(mproc_queue_join(q, 0), MPROC_EBADSTATE);
    TU_RC(mproc_queue_join(q, 10), MPROC_EBADSTATE);
    mproc_queue_free(q);
}
END_TEST

static void joinable_counts(mproc_queue *q)
{
    TU_OK(mproc_queue_join(q, 0)); /* nothing put yet */
    TU_OK(mproc_queue_join(q, MPROC_FOREVER));
    TU_RC(mproc_queue_task_done(q), MPROC_EBADSTATE);
    for (int i = 0; i < 3; i++) TU_OK(mproc_queue_put(q, "t", 1, 0));
    TU_RC(mproc_queue_join(q, 0), MPROC_ETIMEDOUT);
    long long t0 = mproc_now_ns();
    TU_RC(mproc_queue_join(q, 50), MPROC_ETIMEDOUT);
    ck_assert_int_ge(tu_ms_since(t0), 50);
    for (int i = 0; i < 3; i++) expect_msg(q, "t", 1, 0);
    TU_RC(mproc_queue_join(q, 0), MPROC_ETIMEDOUT); /* got, not done */
    TU_OK(mproc_queue_task_done(q));
    TU_OK(mproc_queue_task_done(q));
    TU_RC(mproc_queue_join(q, 10), MPROC_ETIMEDOUT);
    TU_OK(mproc_queue_task_done(q));
    TU_OK(mproc_queue_join(q, 0));
    TU_OK(mproc_queue_join(q, MPROC_FOREVER));
    TU_RC(mproc_queue_task_done(q), MPROC_EBADSTATE); /* one too many */
    TU_RC(mproc_queue_task_done(q), MPROC_EBADSTATE);
    /* The failed calls did not make a debt: one put, one done, joined. */
    TU_OK(mproc_queue_put(q, "u", 1, 0));
    TU_RC(mproc_queue_join(q, 0), MPROC_ETIMEDOUT);
    expect_msg(q, "u", 1, 0);
    TU_OK(mproc_queue_task_done(q));
    TU_OK(mproc_queue_join(q, 0));
}

START_TEST(joinable_queue_counts_tasks)
{
    mproc_queue *q;
    TU_OK(mproc_joinable_queue_new(&q, 0));
    joinable_counts(q);
    mproc_queue_free(q);
    TU_OK(mproc_queue_new(&q, &(mproc_queue_opts){.joinable = true}));
    joinable_counts(q);
    mproc_queue_free(q);
    /* JoinableQueue(maxsize). */
    TU_OK(mproc_joinable_queue_new(&q, 2));
    TU_OK(mproc_queue_put(q, "a", 1, 0));
    TU_OK(mproc_queue_put(q, "b", 1, 0));
    ck_assert(mproc_queue_full(q));
    TU_RC(mproc_queue_put(q, "c", 1, 0), MPROC_ETIMEDOUT);
    TU_RC(mproc_queue_join(q, 0), MPROC_ETIMEDOUT);
    expect_msg(q, "a", 1, 0);
    expect_msg(q, "b", 1, 0);
    TU_OK(mproc_queue_task_done(q));
    TU_OK(mproc_queue_task_done(q));
    TU_OK(mproc_queue_join(q, 0));
    mproc_queue_free(q);
}
END_TEST

#define JQ_ITEMS 300

typedef struct {
    mproc_queue *q;
    volatile int done_count;
    volatile int bad;
} jq_state;

static int jq_worker(void *arg)
{
    jq_state *s = *(jq_state **)arg;
    for (;;) {
        void *buf;
        size_t len;
        int rc = mproc_queue_get(s->q, &buf, &len, 300);
        if (rc == MPROC_ETIMEDOUT) return 0; /* everything was put before we started */
        if (rc) return 2;
        uint32_t pid, seq;
        if (!msg_check(buf, len, &pid, &seq)) return 3;
        free(buf);
        if (seq % 16 == 0) sleep_us(500); /* some work */
        __atomic_fetch_add(&s->done_count, 1, __ATOMIC_SEQ_CST);
        if (mproc_queue_task_done(s->q)) return 4;
    }
}

static int jq_joiner(void *arg)
{
    jq_state *s = *(jq_state **)arg;
    int rc = mproc_queue_join(s->q, 20000);
    if (rc) return 1;
    return __atomic_load_n(&s->done_count, __ATOMIC_SEQ_CST) == JQ_ITEMS ? 0 : 2;
}

START_TEST(join_waits_for_consumers_in_other_processes)
{
    jq_state *s;
    TU_OK(mproc_arena_calloc((void **)&s, sizeof *s));
    TU_OK(mproc_joinable_queue_new(&s->q, 0));
    unsigned char m[300];
    for (uint32_t i = 0; i < JQ_ITEMS; i++) {
        size_t n = MSG_MIN + i % 200;
        msg_fill(m, n, 1, i);
        TU_OK(mproc_queue_put(s->q, m, n, 0));
    }
    mproc_process *joiner = start_child(jq_joiner, &s, sizeof s, tu_methods[_i]);
    mproc_process *w[3];
    for (int k = 0; k < 3; k++) w[k] = start_child(jq_worker, &s, sizeof s, tu_methods[_i]);
    TU_OK(mproc_queue_join(s->q, 20000));
    ck_assert_int_eq(__atomic_load_n(&s->done_count, __ATOMIC_SEQ_CST), JQ_ITEMS);
    ck_assert(mproc_queue_empty(s->q));
    for (int k = 0; k < 3; k++) ck_assert_int_eq(finish_child(w[k], 10000), 0);
    ck_assert_int_eq(finish_child(joiner, 10000), 0);
    TU_RC(mproc_queue_task_done(s->q), MPROC_EBADSTATE);
    mproc_queue_free(s->q);
    TU_OK(mproc_arena_free(s));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("queue_simple_joinable");
    TCase *tc = q_tcase(s, "simple_joinable", 30 * TSCALE);
    tcase_add_loop_test(tc, simple_queue_basics, 0, TU_NMETHODS);
    tcase_add_test(tc, joinable_queue_counts_tasks);
    tcase_add_loop_test(tc, join_waits_for_consumers_in_other_processes, 0, TU_NMETHODS);
    return tu_run(s);
}
