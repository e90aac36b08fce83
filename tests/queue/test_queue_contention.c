/* Queues under contention: four producer and four consumer processes
 * passing a million self-checking messages, and threads inside processes
 * producing and consuming. */
#include "queue_util.h"

/* ---- many producers and consumers --------------------------------------- */

enum { MP_NP = 4, MP_NC = 4, MP_PER = 250000 }; /* 1,000,000 messages */

typedef struct {
    mproc_queue *q;
    uint8_t *seen; /* [MP_NP * MP_PER], in the arena */
    long got[MP_NC];
} mp_state;

typedef struct {
    mp_state *s;
    uint32_t id;
} mp_arg;

static int mp_producer(void *arg)
{
    mp_arg *a = arg;
    unsigned char m[64];
    for (uint32_t seq = 0; seq < MP_PER; seq++) {
        size_t n = MSG_MIN + (seq % 5) * 8;
        msg_fill(m, n, a->id, seq);
        if (mproc_queue_put(a->s->q, m, n, 20000)) return 1;
    }
    return 0;
}

/* Checks a message and records it; 0, or a reason to fail. */
static int mp_record(uint8_t *seen, uint32_t np, uint32_t per, int64_t *last, const void *buf,
                     size_t len)
{
    uint32_t pid, seq;
    if (!msg_check(buf, len, &pid, &seq)) return 10; /* corrupt */
    if (pid >= np || seq >= per) return 11;
    if ((int64_t)seq <= last[pid]) return 12; /* out of order for its producer */
    last[pid] = seq;
    if (__atomic_fetch_add(&seen[(size_t)pid * per + seq], 1, __ATOMIC_RELAXED)) return 13;
    return 0;
}

static int mp_consumer(void *arg)
{
    mp_arg *a = arg;
    int64_t last[MP_NP];
    for (int k = 0; k < MP_NP; k++) last[k] = -1;
    unsigned char buf[64];
    long n = 0;
    for (;;) {
        size_t len;
        int rc = mproc_queue_get_into(a->s->q, buf, sizeof buf, &len, 20000);
        if (rc) return rc == MPROC_ETIMEDOUT ? 2 : 3;
        if (len == 4 && memcmp(buf, "STOP", 4) == 0) break;
        if ((rc = mp_record(a->s->seen, MP_NP, MP_PER, last, buf, len))) return rc;
        n++;
    }
    a->s->got[a->id] = n;
    return 0;
}

START_TEST(four_producers_four_consumers_a_million_messages)
{
    mp_state *s;
    TU_OK(mproc_arena_calloc((void **)&s, sizeof *s));
    TU_OK(mproc_arena_calloc((void **)&s->seen, (size_t)MP_NP * MP_PER));
    TU_OK(mproc_queue_new(&s->q, &(mproc_queue_opts){.maxsize = 10000}));
    long long t0 = mproc_now_ns();
    mproc_process *c[MP_NC], *p[MP_NP];
    for (uint32_t k = 0; k < MP_NC; k++) {
        mp_arg a;
        /* Zeroed first: its padding goes to the child too (see start() in test_wakeups.c). */
        memset(&a, 0, sizeof a);
        a.s = s;
        a.id = k;
        c[k] = start_child(mp_consumer, &a, sizeof a, tu_methods[_i]);
    }
    for (uint32_t k = 0; k < MP_NP; k++) {
        mp_arg a;
        /* Zeroed first: its padding goes to the child too (see start() in test_wakeups.c). */
        memset(&a, 0, sizeof a);
        a.s = s;
        a.id = k;
        p[k] = start_child(mp_producer, &a, sizeof a, tu_methods[_i]);
    }
    for (int k = 0; k < MP_NP; k++) ck_assert_int_eq(finish_child(p[k], 100000), 0);
    for (int k = 0; k < MP_NC; k++) TU_OK(mproc_queue_put(s->q, "STOP", 4, 10000));
    for (int k = 0; k < MP_NC; k++) {
        int code = finish_child(c[k], 30000);
        ck_assert_msg(code == 0, "consumer %d failed with %d", k, code);
    }
    long total = 0;
    for (int k = 0; k < MP_NC; k++) total += s->got[k];
    ck_assert_int_eq(total, (long)MP_NP * MP_PER);
    for (size_t i = 0; i < (size_t)MP_NP * MP_PER; i++)
        ck_assert_msg(s->seen[i] == 1, "producer %zu seq %zu arrived %d times", i / MP_PER,
                      i % MP_PER, s->seen[i]);
    ck_assert(mproc_queue_empty(s->q));
    if (getenv("TU_VERBOSE"))
        fprintf(stderr, "1M messages: %lld ms (%ld %ld %ld %ld per consumer)\n", tu_ms_since(t0),
                s->got[0], s->got[1], s->got[2], s->got[3]);
    mproc_queue_free(s->q);
    TU_OK(mproc_arena_free(s->seen));
    TU_OK(mproc_arena_free(s));
}
END_TEST

/* Threads inside processes: 2 producer processes and 2 consumer
 * processes of 2 threads each; the end is signalled by close. */
enum { TH_PROCS = 2, TH_THREADS = 2, TH_NP = TH_PROCS * TH_THREADS, TH_PER = 50000 };

typedef struct {
    mproc_queue *q;
    uint8_t *seen; /* [TH_NP * TH_PER] */
    long got;
} th_state;

typedef struct {
    th_state *s;
    uint32_t id;
} th_arg;

static void *th_produce(void *arg)
{
    th_arg *a = arg;
    unsigned char m[128];
    for (uint32_t seq = 0; seq < TH_PER; seq++) {
        size_t n = MSG_MIN + (seq % 13) * 8;
        msg_fill(m, n, a->id, seq);
        if (mproc_queue_put(a->s->q, m, n, 20000)) return (void *)1;
    }
    return NULL;
}

static void *th_consume(void *arg)
{
    th_arg *a = arg;
    int64_t last[TH_NP];
    for (int k = 0; k < TH_NP; k++) last[k] = -1;
    for (;;) {
        void *buf;
        size_t len;
        int rc = mproc_queue_get(a->s->q, &buf, &len, 20000);
        if (rc == MPROC_ECLOSED) return NULL;
        if (rc) return (void *)(intptr_t)(rc == MPROC_ETIMEDOUT ? 2 : 3);
        rc = mp_record(a->s->seen, TH_NP, TH_PER, last, buf, len);
        free(buf);
        if (rc) return (void *)(intptr_t)rc;
        __atomic_fetch_add(&a->s->got, 1, __ATOMIC_RELAXED);
    }
}

static int th_process(void *arg)
{
    th_arg *a = arg; /* id: process number; consumers have id >= TH_PROCS */
    bool consumer = a->id >= TH_PROCS;
    pthread_t t[TH_THREADS];
    th_arg ta[TH_THREADS];
    for (uint32_t k = 0; k < TH_THREADS; k++) {
        ta[k].s = a->s;
        ta[k].id = (a->id % TH_PROCS) * TH_THREADS + k;
        if (pthread_create(&t[k], NULL, consumer ? th_consume : th_produce, &ta[k])) return 1;
    }
    int bad = 0;
    for (int k = 0; k < TH_THREADS; k++) {
        void *r;
        pthread_join(t[k], &r);
        if (r && !bad) bad = (int)(intptr_t)r;
    }
    return bad;
}

START_TEST(threads_in_processes_produce_and_consume)
{
    th_state *s;
    TU_OK(mproc_arena_calloc((void **)&s, sizeof *s));
    TU_OK(mproc_arena_calloc((void **)&s->seen, (size_t)TH_NP * TH_PER));
    TU_OK(mproc_queue_new(&s->q, NULL));
    mproc_process *p[2 * TH_PROCS];
    for (uint32_t k = 0; k < 2 * TH_PROCS; k++) {
        th_arg a;
        /* Zeroed first: its padding goes to the child too (see start() in test_wakeups.c). */
        memset(&a, 0, sizeof a);
        a.s = s;
        a.id = k;
        p[k] = start_child(th_process, &a, sizeof a, tu_methods[_i]);
    }
    for (int k = 0; k < TH_PROCS; k++) ck_assert_int_eq(finish_child(p[k], 60000), 0);
    mproc_queue_close(s->q); /* consumers drain, then see MPROC_ECLOSED */
    for (int k = TH_PROCS; k < 2 * TH_PROCS; k++) {
        int code = finish_child(p[k], 30000);
        ck_assert_msg(code == 0, "consumer process failed with %d", code);
    }
    ck_assert_int_eq(s->got, (long)TH_NP * TH_PER);
    for (size_t i = 0; i < (size_t)TH_NP * TH_PER; i++)
        ck_assert_msg(s->seen[i] == 1, "thread %zu seq %zu arrived %d times", i / TH_PER,
                      i % TH_PER, s->seen[i]);
    ck_assert(mproc_queue_empty(s->q));
    mproc_queue_free(s->q);
    TU_OK(mproc_arena_free(s->seen));
    TU_OK(mproc_arena_free(s));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("queue_contention");
    TCase *tc = q_tcase(s, "contention", 60 * TSCALE);
    tcase_add_loop_test(tc, four_producers_four_consumers_a_million_messages, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, threads_in_processes_produce_and_consume, 0, TU_NMETHODS);
    return tu_run(s);
}
