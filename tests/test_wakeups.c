/* Lost wake-ups: one stress test per place where the library sleeps.
 *
 * Every sleep follows one rule (docs/sync.md): read the word (or take the
 * lock the condition is under), then check the condition, then sleep on
 * the word as read. A sleeper that breaks it can sleep for ever on a value
 * that will not change again, with nothing wrong to see from outside. Each
 * test here drives one wait site as hard as it can, as often as it can,
 * for a bounded time, with a watchdog that fails the test when progress
 * stops (and kills what it started), instead of hanging.
 *
 * The participants count their progress in a board in the arena; the
 * parent looks at the counts every few milliseconds. After RUN_MS it asks
 * them to stop, and each finishes its protocol (end markers, last
 * releases), still watched. */
#include "mproc/queue.h"
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

/* Sanitized builds run slower: longer bounds, never looser checks. */
#define TSCALE (TU_ASAN ? 3 : 1)
/* No progress for this long is a stall: far beyond any scheduling delay
 * of a loaded machine, far below the test's timeout. */
#define STALL_MS (3000 * TSCALE)
#define RUN_MS   700 /* how long each site is driven, per start method */
#define NPART    8   /* participants per board, at most */

/* ---- the board and the watchdog ---------------------------------------- */

typedef struct board {
    _Atomic uint64_t count[NPART]; /* progress of each participant */
    _Atomic uint32_t stop;         /* the parent asks them to finish */
    int nconsumers;
    /* the site under test */
    mproc_queue *q;
    size_t msg_len; /* 0: 1..8 bytes, varying */
} board;

static board *board_new(void)
{
    board *b;
    TU_OK(mproc_shm_calloc((void **)&b, sizeof *b));
    return b;
}

static uint64_t progress(const board *b)
{
    uint64_t s = 0;
    for (int i = 0; i < NPART; i++) s += atomic_load(&((board *)b)->count[i]);
    return s;
}

static long long ms_since(long long t0)
{
    return (mproc_now_ns() - t0) / 1000000;
}

static void counts(const board *b, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < NPART && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%llu", i ? " " : "",
                              (unsigned long long)atomic_load(&((board *)b)->count[i]));
}

typedef void (*describe_fn)(const board *b, char *buf, size_t cap);

/* Watches processes ps[0..n) until each has exited: asks them to stop
 * after run_ms, fails (killing them all) if the board's progress stands
 * still for STALL_MS, and checks that each exited with 0. */
static void watch(board *b, mproc_process **ps, int n, int run_ms, const char *what,
                  describe_fn describe)
{
    long long t0 = mproc_now_ns(), last = t0;
    uint64_t seen = progress(b);
    for (;;) {
        tu_sleep_ms(5);
        bool alive = false;
        for (int i = 0; i < n; i++) alive |= mproc_process_is_alive(ps[i]);
        if (!alive) break;
        uint64_t now = progress(b);
        if (now != seen) seen = now, last = mproc_now_ns();
        if (ms_since(t0) >= run_ms) atomic_store(&b->stop, 1);
        if (ms_since(last) >= STALL_MS) {
            char c[256], d[256] = "";
            counts(b, c, sizeof c);
            if (describe) describe(b, d, sizeof d);
            for (int i = 0; i < n; i++) {
                (void)mproc_process_kill(ps[i]);
                (void)mproc_process_join(ps[i], 10000);
                (void)mproc_process_free(ps[i]);
            }
            ck_abort_msg("%s: no progress for %d ms (a lost wake-up), %lld ms in; counts [%s] %s",
                         what, STALL_MS, ms_since(t0), c, d);
        }
    }
    if (getenv("TU_VERBOSE")) {
        char c[256];
        counts(b, c, sizeof c);
        fprintf(stderr, "%s: %lld ms, counts [%s]\n", what, ms_since(t0), c);
    }
    for (int i = 0; i < n; i++) {
        int code = -1000;
        TU_OK(mproc_process_join(ps[i], 10000));
        TU_OK(mproc_process_exitcode(ps[i], &code));
        TU_OK(mproc_process_free(ps[i]));
        ck_assert_msg(code == 0, "%s: participant %d exited with %d", what, i, code);
    }
}

static mproc_process *start(mproc_target_fn fn, board *b, int method)
{
    mproc_process *p;
    TU_OK(mproc_process_new(&p, fn, &b, sizeof b,
                            &(mproc_process_opts){.start_method = tu_methods[method]}));
    TU_OK(mproc_process_start(p));
    return p;
}

static board *arg_board(void *arg)
{
    board *b;
    memcpy(&b, arg, sizeof b);
    return b;
}

/* ---- queue: put waiting for room, get waiting for a message ------------- */

/* Messages carry their sequence number; a zero-length one ends a
 * consumer. */
static size_t msg_len(const board *b, uint32_t seq)
{
    return b->msg_len ? b->msg_len : 1 + seq % 8;
}

static int q_producer(void *arg)
{
    board *b = arg_board(arg);
    uint32_t seq = 0;
    for (; !atomic_load(&b->stop); seq++) {
        unsigned char m[8] = {0};
        memcpy(m, &seq, sizeof seq);
        if (mproc_queue_put(b->q, m, msg_len(b, seq), MPROC_FOREVER)) return 10;
        atomic_fetch_add(&b->count[0], 1);
    }
    for (int c = 0; c < b->nconsumers; c++)
        if (mproc_queue_put(b->q, "", 0, MPROC_FOREVER)) return 11;
    return 0;
}

/* Takes messages until its end marker; checks each is whole and that the
 * one producer's sequence only grows. */
static int q_consumer(void *arg)
{
    board *b = arg_board(arg);
    int me = -1;
    for (int i = 1; i < NPART && me < 0; i++) {
        uint64_t z = 0;
        if (atomic_compare_exchange_strong(&b->count[i], &z, 1)) me = i; /* claims a slot */
    }
    if (me < 0) return 20;
    int64_t last = -1;
    for (;;) {
        unsigned char m[8];
        size_t len;
        if (mproc_queue_get_into(b->q, m, sizeof m, &len, MPROC_FOREVER)) return 21;
        if (len == 0) return 0;
        uint32_t seq = 0;
        memcpy(&seq, m, len < sizeof seq ? len : sizeof seq);
        if (len != msg_len(b, seq) && len >= sizeof seq) return 22;
        if (len >= sizeof seq && (int64_t)seq <= last) return 23;
        if (len >= sizeof seq) last = seq;
        atomic_fetch_add(&b->count[me], 1);
    }
}

static void q_describe(const board *b, char *buf, size_t cap)
{
    snprintf(buf, cap, "qsize %zu", mproc_queue_qsize(b->q));
}

/* One producer putting with no timeout into a bounded queue, consumers
 * getting with no timeout, under start method number i. */
static void put_get_run(int i, const mproc_queue_opts *qo, size_t len, int nconsumers,
                        const char *what)
{
    board *b = board_new();
    TU_OK(mproc_queue_new(&b->q, qo));
    b->msg_len = len;
    b->nconsumers = nconsumers;
    mproc_process *ps[3];
    for (int c = 0; c < nconsumers; c++) ps[c] = start(q_consumer, b, i);
    ps[nconsumers] = start(q_producer, b, i);
    char name[128];
    snprintf(name, sizeof name, "%s (%s)", what, mproc_start_method_name(tu_methods[i]));
    watch(b, ps, nconsumers + 1, RUN_MS, name, q_describe);
    uint64_t got = 0;
    for (int c = 1; c <= nconsumers; c++) got += atomic_load(&b->count[c]) - 1;
    ck_assert_msg(got == atomic_load(&b->count[0]), "%s: %llu put, %llu got", name,
                  (unsigned long long)atomic_load(&b->count[0]), (unsigned long long)got);
    ck_assert_uint_eq(mproc_queue_qsize(b->q), 0);
    mproc_queue_free(b->q);
    TU_OK(mproc_shm_free(b));
}

START_TEST(put_into_maxsize_1)
{
    put_get_run(_i, &(mproc_queue_opts){.maxsize = 1}, 8, 1, "put, maxsize 1, one consumer");
}
END_TEST

START_TEST(put_into_maxsize_3_two_consumers)
{
    put_get_run(_i, &(mproc_queue_opts){.maxsize = 3}, 0, 2, "put, maxsize 3, two consumers");
}
END_TEST

START_TEST(put_into_max_bytes_8)
{
    put_get_run(_i, &(mproc_queue_opts){.max_bytes = 8}, 0, 1, "put, max_bytes 8, one consumer");
}
END_TEST

START_TEST(put_into_max_bytes_8_two_consumers)
{
    put_get_run(_i, &(mproc_queue_opts){.max_bytes = 8}, 0, 2, "put, max_bytes 8, two consumers");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wakeups");
    TCase *tc = tu_tcase(s, "queue", 60 * TSCALE);
    tcase_add_loop_test(tc, put_into_maxsize_1, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, put_into_maxsize_3_two_consumers, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, put_into_max_bytes_8, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, put_into_max_bytes_8_two_consumers, 0, TU_NMETHODS);
    return tu_run(s);
}
