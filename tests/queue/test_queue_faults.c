/* Queues and the death of a producer or consumer at the worst moment:
 * SIGKILL mid-put (unbounded, bounded, JoinableQueue), mid-get, while
 * waiting, and before a woken consumer takes its message; the survivors
 * see every message intact and the bounds still exact. */
#include "queue_util.h"

/* ---- faults: producers killed mid-put ----------------------------------- */

enum { KP_ROUNDS = 50, KP_PRODS = 2 };

typedef struct {
    mproc_queue *q;
    volatile uint32_t acked[KP_ROUNDS * KP_PRODS];  /* puts that returned 0 */
    volatile uint32_t expect[KP_ROUNDS * KP_PRODS]; /* next seq the consumer wants */
    volatile int marker;                            /* last marker the consumer saw */
    volatile int bad;                               /* the consumer's first failure */
    volatile long got;
} kp_state;

typedef struct {
    kp_state *s;
    uint32_t pid;
} kp_arg;

static int kp_producer(void *arg)
{
    kp_arg *a = arg;
    unsigned char *m = malloc((size_t)1 << 20);
    if (!m) return 1;
    for (uint32_t seq = 0;; seq++) {
        size_t n = mixed_size(a->pid, seq);
        msg_fill(m, n, a->pid, seq);
        if (mproc_queue_put(a->s->q, m, n, MPROC_FOREVER)) return 2;
        __atomic_store_n(&a->s->acked[a->pid], seq + 1, __ATOMIC_RELEASE);
    }
}

/* The surviving consumer: every message intact, each producer's messages
 * in order with none missing and none twice. Markers end rounds. */
static int kp_consumer(void *arg)
{
    kp_state *s = *(kp_state **)arg;
    for (;;) {
        void *buf;
        size_t len;
        int rc = mproc_queue_get(s->q, &buf, &len, 15000);
        if (rc) {
            s->bad = rc == MPROC_ETIMEDOUT ? 2 : 3;
            return s->bad;
        }
        uint32_t pid, seq;
        if (!msg_check(buf, len, &pid, &seq)) {
            s->bad = 10;
            return s->bad;
        }
        free(buf);
        if (pid == MARKER_PID) {
            __atomic_store_n(&s->marker, (int)seq, __ATOMIC_RELEASE);
            if (seq == KP_ROUNDS) return 0; /* the last */
            continue;
        }
        if (pid >= KP_ROUNDS * KP_PRODS) {
            s->bad = 11;
            return s->bad;
        }
        if (seq != s->expect[pid]) { /* lost, repeated or reordered */
            s->bad = 12;
            return s->bad;
        }
        __atomic_store_n(&s->expect[pid], seq + 1, __ATOMIC_RELEASE);
        s->got++;
    }
}

static void put_marker(mproc_queue *q, uint32_t round)
{
    unsigned char m[MSG_MIN + 8];
    msg_fill(m, sizeof m, MARKER_PID, round);
    TU_OK(mproc_queue_put(q, m, sizeof m, 10000));
}

/* After faults and a full drain, a bounded queue still takes as many small
 * messages as its bounds allow, without waiting (its counts of messages and
 * bytes were not skewed by the deaths). */
static void bounds_still_exact(mproc_queue *q, size_t maxsize)
{
    ck_assert(mproc_queue_empty(q));
    for (size_t i = 0; i < maxsize; i++)
        ck_assert_msg(mproc_queue_put(q, "0123456789abcdef", 16, 0) == 0,
                      "an empty queue refused message %zu of %zu", i + 1, maxsize);
    ck_assert(mproc_queue_full(q));
    TU_RC(mproc_queue_put(q, "x", 1, 0), MPROC_ETIMEDOUT);
    for (size_t i = 0; i < maxsize; i++) expect_msg(q, "0123456789abcdef", 16, 0);
    ck_assert(mproc_queue_empty(q));
}

static void producers_killed_mid_put(const mproc_queue_opts *opts, int method)
{
    size_t arena_before = tu_arena_allocated();
    kp_state *s;
    TU_OK(mproc_arena_calloc((void **)&s, sizeof *s));
    TU_OK(mproc_queue_new(&s->q, opts));
    s->marker = -1;
    mproc_process *c = start_child(kp_consumer, &s, sizeof s, method);
    unsigned seed = 12345;
    for (uint32_t round = 0; round < KP_ROUNDS; round++) {
        mproc_process *p[KP_PRODS];
        for (uint32_t k = 0; k < KP_PRODS; k++) {
            kp_arg a;
            /* Zeroed first: its padding goes to the child too (see start() in test_wakeups.c). */
            memset(&a, 0, sizeof a);
            a.s = s;
            a.pid = round * KP_PRODS + k;
            p[k] = start_child(kp_producer, &a, sizeof a, method);
        }
        sleep_us(500 + rand_r(&seed) % 15000);
        for (int k = 0; k < KP_PRODS; k++) kill_child(p[k]);
        put_marker(s->q, round);
        long long t0 = mproc_now_ns();
        while (__atomic_load_n(&s->marker, __ATOMIC_ACQUIRE) != (int)round) {
            ck_assert_msg(s->bad == 0, "round %u: the consumer failed with %d", round, s->bad);
            ck_assert_msg(tu_ms_since(t0) < 15000, "round %u: the consumer is stuck", round);
            tu_sleep_ms(1);
        }
        /* Everything before the marker was taken: nothing left, and each
         * producer's acknowledged messages all arrived (plus at most the
         * one it was putting, if that one got wholly in). */
        ck_assert_uint_eq(mproc_queue_qsize(s->q), 0);
        ck_assert(mproc_queue_empty(s->q));
        for (uint32_t k = 0; k < KP_PRODS; k++) {
            uint32_t pid = round * KP_PRODS + k, a = s->acked[pid], e = s->expect[pid];
            ck_assert_msg(e == a || e == a + 1, "round %u producer %u: %u acknowledged, %u got",
                          round, k, a, e);
        }
    }
    put_marker(s->q, KP_ROUNDS); /* the consumer's last */
    ck_assert_int_eq(finish_child(c, 15000), 0);
    ck_assert_int_eq(s->bad, 0);
    ck_assert_int_gt(s->got, 0);
    if (opts && opts->maxsize) bounds_still_exact(s->q, opts->maxsize);
    mproc_queue_close(s->q);
    ck_assert(mproc_queue_empty(s->q));
    mproc_queue_free(s->q);
    TU_OK(mproc_arena_free(s));
    /* Not a promise of the header: what the deaths left allocated. */
    if (getenv("TU_VERBOSE"))
        fprintf(stderr, "producers killed: %zu bytes of the arena leaked\n",
                tu_arena_allocated() - arena_before);
}

START_TEST(producers_killed_mid_put_unbounded)
{
    producers_killed_mid_put(NULL, tu_methods[_i]);
}
END_TEST

START_TEST(producers_killed_mid_put_bounded)
{
    /* Producers also die while waiting for room. */
    producers_killed_mid_put(&(mproc_queue_opts){.maxsize = 8, .max_bytes = 2 << 20},
                             tu_methods[_i]);
}
END_TEST

/* ---- faults: consumers killed mid-get ----------------------------------- */

enum { KC_ROUNDS = 30, KC_K = 1500, KC_VICTIMS = 2 };

typedef struct {
    mproc_queue *q;
    uint8_t seen[KC_ROUNDS * KC_K];
    volatile int marker;
    volatile int bad;
} kc_state;

typedef struct {
    kc_state *s;
    uint32_t round;
} kc_arg;

static int kc_produce(void *arg)
{
    kc_state *s = ((kc_arg *)arg)->s;
    uint32_t round = ((kc_arg *)arg)->round;
    unsigned char *m = malloc((size_t)1 << 20);
    if (!m) return 1;
    for (uint32_t i = 0; i < KC_K; i++) {
        uint32_t seq = round * KC_K + i;
        size_t n = mixed_size(1, seq) / 4 + MSG_MIN;
        msg_fill(m, n, 1, seq);
        if (mproc_queue_put(s->q, m, n, 15000)) return 2;
    }
    free(m);
    return 0;
}

/* A consumer; the survivor (arg survivor) also follows the markers. */
static int kc_consume(bool survivor, kc_state *s)
{
    int64_t last = -1;
    for (;;) {
        void *buf;
        size_t len;
        int rc = mproc_queue_get(s->q, &buf, &len, 15000);
        if (rc) return s->bad = (rc == MPROC_ETIMEDOUT ? 2 : 3);
        uint32_t pid, seq;
        if (!msg_check(buf, len, &pid, &seq)) return s->bad = 10;
        free(buf);
        if (pid == MARKER_PID) {
            if (!survivor) return s->bad = 14; /* victims die before markers */
            __atomic_store_n(&s->marker, (int)seq, __ATOMIC_RELEASE);
            if (seq == KC_ROUNDS) return 0;
            continue;
        }
        if (pid != 1 || seq >= KC_ROUNDS * KC_K) return s->bad = 11;
        if ((int64_t)seq <= last) return s->bad = 12;
        last = seq;
        if (__atomic_fetch_add(&s->seen[seq], 1, __ATOMIC_RELAXED)) return s->bad = 13;
    }
}

static int kc_survivor(void *arg)
{
    return kc_consume(true, *(kc_state **)arg);
}

static int kc_victim(void *arg)
{
    return kc_consume(false, *(kc_state **)arg);
}

START_TEST(consumers_killed_mid_get)
{
    size_t arena_before = tu_arena_allocated();
    kc_state *s;
    TU_OK(mproc_arena_calloc((void **)&s, sizeof *s));
    /* Bounds wide enough not to slow the producer much, there to be checked. */
    TU_OK(mproc_queue_new(&s->q, &(mproc_queue_opts){.maxsize = 1000, .max_bytes = 32 << 20}));
    s->marker = -1;
    mproc_process *surv = start_child(kc_survivor, &s, sizeof s, tu_methods[_i]);
    unsigned seed = 4242;
    int lost_total = 0;
    for (uint32_t round = 0; round < KC_ROUNDS; round++) {
        kc_arg ka;
        /* Zeroed first: its padding goes to the child too (see start() in test_wakeups.c). */
        memset(&ka, 0, sizeof ka);
        ka.s = s;
        ka.round = round;
        mproc_process *prod = start_child(kc_produce, &ka, sizeof ka, tu_methods[_i]);
        mproc_process *v[KC_VICTIMS];
        for (int k = 0; k < KC_VICTIMS; k++)
            v[k] = start_child(kc_victim, &s, sizeof s, tu_methods[_i]);
        sleep_us(1000 + rand_r(&seed) % 8000);
        for (int k = 0; k < KC_VICTIMS; k++) kill_child(v[k]);
        ck_assert_int_eq(finish_child(prod, 20000), 0); /* every put acknowledged */
        put_marker(s->q, round);
        long long t0 = mproc_now_ns();
        while (__atomic_load_n(&s->marker, __ATOMIC_ACQUIRE) != (int)round) {
            ck_assert_msg(s->bad == 0, "round %u: a consumer failed with %d", round, s->bad);
            ck_assert_msg(tu_ms_since(t0) < 15000, "round %u: the survivor is stuck", round);
            tu_sleep_ms(1);
        }
        ck_assert_msg(s->bad == 0, "round %u: a consumer failed with %d", round, s->bad);
        ck_assert_uint_eq(mproc_queue_qsize(s->q), 0);
        ck_assert(mproc_queue_empty(s->q));
        /* Each acknowledged message was delivered once, except at most
         * one per killed consumer (taken, not yet recorded). */
        int lost = 0;
        for (uint32_t i = round * KC_K; i < (round + 1) * KC_K; i++) {
            ck_assert_msg(s->seen[i] <= 1, "message %u delivered %d times", i, s->seen[i]);
            lost += s->seen[i] == 0;
        }
        ck_assert_msg(lost <= KC_VICTIMS, "round %u: %d messages lost", round, lost);
        lost_total += lost;
    }
    put_marker(s->q, KC_ROUNDS); /* the survivor's last */
    ck_assert_int_eq(finish_child(surv, 15000), 0);
    ck_assert_int_eq(s->bad, 0);
    bounds_still_exact(s->q, 1000);
    mproc_queue_free(s->q);
    TU_OK(mproc_arena_free(s));
    if (getenv("TU_VERBOSE"))
        fprintf(stderr, "consumers killed: %d messages lost, %zu bytes of the arena leaked\n",
                lost_total, tu_arena_allocated() - arena_before);
}
END_TEST

/* ---- faults: waiters killed --------------------------------------------- */

static int get_expect_x(void *arg)
{
    waiter_state *w = *(waiter_state **)arg;
    void *buf;
    size_t len;
    __atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
    w->rc = mproc_queue_get(w->q, &buf, &len, MPROC_FOREVER);
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    if (w->rc) return 1;
    int ok = len == 1 && memcmp(buf, "x", 1) == 0;
    free(buf);
    return ok ? 0 : 2;
}

START_TEST(killed_waiters_do_not_disturb_the_others)
{
    waiter_state *w;
    TU_OK(mproc_arena_calloc((void **)&w, 4 * sizeof *w));
    waiter_state *wp[4] = {&w[0], &w[1], &w[2], &w[3]};
    /* Two processes wait in get on an empty queue; one is killed. */
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    w[0].q = w[1].q = q;
    mproc_process *a = start_child(get_expect_x, &wp[0], sizeof wp[0], tu_methods[_i]);
    mproc_process *b = start_child(get_expect_x, &wp[1], sizeof wp[1], tu_methods[_i]);
    wait_flag(&w[0].started, 1, 5000);
    wait_flag(&w[1].started, 1, 5000);
    tu_sleep_ms(100);
    kill_child(a);
    ck_assert_int_eq(w[1].done, 0);
    TU_OK(mproc_queue_put(q, "x", 1, 0));
    ck_assert_int_eq(finish_child(b, 5000), 0);
    ck_assert(mproc_queue_empty(q));
    TU_OK(mproc_queue_put(q, "y", 1, 0));
    expect_msg(q, "y", 1, 0);

    /* Two processes wait in put on a full queue; one is killed. */
    mproc_queue *f;
    TU_OK(mproc_queue_new(&f, &(mproc_queue_opts){.maxsize = 2}));
    TU_OK(mproc_queue_put(f, "1", 1, 0));
    TU_OK(mproc_queue_put(f, "2", 1, 0));
    w[2].q = w[3].q = f;
    mproc_process *c = start_child(put_d_forever, &wp[2], sizeof wp[2], tu_methods[_i]);
    wait_flag(&w[2].started, 1, 5000);
    tu_sleep_ms(50);
    mproc_process *d = start_child(put_d_forever, &wp[3], sizeof wp[3], tu_methods[_i]);
    wait_flag(&w[3].started, 1, 5000);
    tu_sleep_ms(100);
    kill_child(c);
    ck_assert_uint_eq(mproc_queue_qsize(f), 2);
    ck_assert_int_eq(w[3].done, 0);
    expect_msg(f, "1", 1, 0); /* room for the live waiter */
    ck_assert_int_eq(finish_child(d, 5000), 0);
    expect_msg(f, "2", 1, 0);
    expect_msg(f, "d", 1, 0);
    TU_RC(mproc_queue_get(f, &(void *){0}, &(size_t){0}, 0), MPROC_ETIMEDOUT);
    /* No slot is held for the dead waiter. */
    TU_OK(mproc_queue_put(f, "3", 1, 0));
    TU_OK(mproc_queue_put(f, "4", 1, 0));
    ck_assert(mproc_queue_full(f));
    TU_RC(mproc_queue_put(f, "5", 1, 0), MPROC_ETIMEDOUT);
    expect_msg(f, "3", 1, 0);
    expect_msg(f, "4", 1, 0);
    TU_OK(mproc_arena_free(w));
    mproc_queue_free(q);
    mproc_queue_free(f);
}
END_TEST

/* A consumer killed inside get while its parent (the one that would reap
 * it) is the next to get: the dead holder is a zombie until reaped, and
 * the header promises its lock is taken over, not waited on. The child
 * spends most of its time inside get (copying 4 MiB messages). */
static int consume_big_forever(void *arg)
{
    waiter_state *w = *(waiter_state **)arg;
    __atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
    for (;;) {
        void *buf;
        size_t len;
        if (mproc_queue_get(w->q, &buf, &len, MPROC_FOREVER)) return 1;
        free(buf);
    }
}

START_TEST(consumer_killed_in_get_and_not_yet_reaped)
{
    enum { BIG = 4 << 20, N = 12 };
    unsigned char *m = patterned(BIG, 5);
    waiter_state *w;
    TU_OK(mproc_arena_calloc((void **)&w, sizeof *w));
    /* A round where the consumer emptied the queue before the kill tests
     * nothing: it is not counted, and the next one kills sooner. */
    int exercised = 0;
    for (int round = 0, delay_us = 1000; round < 20 && exercised < 5; round++) {
        TU_OK(mproc_queue_new(&w->q, NULL));
        for (int i = 0; i < N; i++) TU_OK(mproc_queue_put(w->q, m, BIG, 0));
        w->started = 0;
        mproc_process *p = start_child(consume_big_forever, &w, sizeof w, tu_methods[_i]);
        wait_flag(&w->started, 1, 5000);
        sleep_us(delay_us + (round % 4) * 700);
        TU_OK(mproc_process_kill(p)); /* killed, not reaped yet */
        tu_sleep_ms(20);
        size_t left = mproc_queue_qsize(w->q);
        if (left == 0) {
            TU_OK(mproc_process_join(p, 5000));
            TU_OK(mproc_process_free(p));
            mproc_queue_free(w->q);
            delay_us = delay_us > 100 ? delay_us / 2 : 0;
            continue;
        }
        exercised++;
        long long t0 = mproc_now_ns();
        void *buf;
        size_t len;
        int rc = mproc_queue_get(w->q, &buf, &len, 2000);
        long long el = tu_ms_since(t0);
        TU_OK(mproc_process_join(p, 5000));
        TU_OK(mproc_process_free(p));
        ck_assert_msg(rc == 0, "round %d: get with %zu messages queued -> %s after %lld ms", round,
                      left, mproc_err_name(rc), el);
        ck_assert_uint_eq(len, BIG);
        ck_assert(pat_check(buf, len, tu_mix64(5 + 1) | 1));
        free(buf);
        ck_assert_uint_eq(mproc_queue_qsize(w->q), left - 1);
        mproc_queue_free(w->q);
    }
    ck_assert_int_ge(exercised, 3);
    TU_OK(mproc_arena_free(w));
    free(m);
}
END_TEST

/* Two consumers asleep in get; a put wakes one (the longest waiter), and
 * that one is killed while it copies the message out. The message stays
 * (the header: "a consumer killed before it removed a message leaves it
 * for the next one") and the other sleeper must get it. */
START_TEST(a_woken_consumer_killed_before_taking_strands_no_one)
{
    enum { BIG = 8 << 20 };
    unsigned char *m = patterned(BIG, 8);
    waiter_state *w;
    TU_OK(mproc_arena_calloc((void **)&w, 2 * sizeof *w));
    int conclusive = 0;
    for (int round = 0; round < 3; round++) {
        memset(w, 0, 2 * sizeof *w);
        TU_OK(mproc_queue_new(&w[0].q, NULL));
        mproc_queue *q = w[1].q = w[0].q;
        waiter_state *w0 = &w[0], *w1 = &w[1];
        mproc_process *a = start_child(get_any, &w0, sizeof w0, tu_methods[_i]);
        wait_flag(&w[0].started, 1, 5000);
        tu_sleep_ms(50); /* asleep first: the one a put wakes */
        mproc_process *b = start_child(get_any, &w1, sizeof w1, tu_methods[_i]);
        wait_flag(&w[1].started, 1, 5000);
        tu_sleep_ms(50);
        TU_OK(mproc_queue_put(q, m, BIG, 0));
        TU_OK(mproc_process_kill(a)); /* while it copies 8 MiB out, or before */
        TU_OK(mproc_process_join(a, 5000));
        TU_OK(mproc_process_free(a));
        long long t0 = mproc_now_ns();
        while (!__atomic_load_n(&w[1].done, __ATOMIC_ACQUIRE) && tu_ms_since(t0) < 2000)
            tu_sleep_ms(1);
        long long el = tu_ms_since(t0);
        size_t left = mproc_queue_qsize(q);
        if (!__atomic_load_n(&w[1].done, __ATOMIC_ACQUIRE)) {
            kill_child(b);
            /* Unless a took the message wholly before it died. */
            ck_assert_msg(left == 0,
                          "round %d: the live consumer still waits %lld ms after the put, with "
                          "%zu message queued",
                          round, el, left);
        } else {
            ck_assert_int_eq(finish_child(b, 5000), 0);
            ck_assert_uint_eq(w[1].len, BIG);
            conclusive++;
        }
        ck_assert(mproc_queue_empty(q));
        mproc_queue_free(q);
    }
    ck_assert_int_gt(conclusive, 0); /* the kill did land before a took it */
    TU_OK(mproc_arena_free(w));
    free(m);
}
END_TEST

/* ---- faults: a JoinableQueue's producer killed mid-put ------------------ */

START_TEST(joinable_producer_killed_mid_put_leaves_no_phantom_task)
{
    kp_state *s;
    TU_OK(mproc_arena_calloc((void **)&s, sizeof *s));
    TU_OK(mproc_joinable_queue_new(&s->q, 0));
    unsigned seed = 777;
    for (uint32_t round = 0; round < 20; round++) {
        kp_arg a;
        /* Zeroed first: its padding goes to the child too (see start() in test_wakeups.c). */
        memset(&a, 0, sizeof a);
        a.s = s;
        a.pid = round;
        mproc_process *p = start_child(kp_producer, &a, sizeof a, tu_methods[_i]);
        sleep_us(500 + rand_r(&seed) % 10000);
        kill_child(p);
        uint32_t n = 0;
        for (;;) {
            void *buf;
            size_t len;
            int rc = mproc_queue_get(s->q, &buf, &len, 50);
            if (rc == MPROC_ETIMEDOUT) break;
            TU_OK(rc);
            uint32_t pid, seq;
            ck_assert_msg(msg_check(buf, len, &pid, &seq), "round %u: message %u corrupt", round,
                          n);
            ck_assert_uint_eq(pid, round);
            ck_assert_uint_eq(seq, n);
            free(buf);
            n++;
            TU_OK(mproc_queue_task_done(s->q));
        }
        uint32_t acked = s->acked[round];
        ck_assert_msg(n == acked || n == acked + 1, "round %u: %u acknowledged, %u got", round,
                      acked, n);
        ck_assert(mproc_queue_empty(s->q));
        TU_OK(mproc_queue_join(s->q, 2000)); /* no task of a half-put message */
        TU_RC(mproc_queue_task_done(s->q), MPROC_EBADSTATE);
    }
    mproc_queue_free(s->q);
    TU_OK(mproc_arena_free(s));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("queue_faults");
    TCase *tc = q_tcase(s, "faults", 60 * TSCALE);
    tcase_add_loop_test(tc, producers_killed_mid_put_unbounded, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, producers_killed_mid_put_bounded, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, consumers_killed_mid_get, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, killed_waiters_do_not_disturb_the_others, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, consumer_killed_in_get_and_not_yet_reaped, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, a_woken_consumer_killed_before_taking_strands_no_one, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, joinable_producer_killed_mid_put_leaves_no_phantom_task, 0,
                        TU_NMETHODS);
    return tu_run(s);
}
