/* Lost wake-ups: one stress test per place where the library sleeps.
 *
 * Every sleep follows the rules of docs/sync.md, the first of which: read
 * the word (or take the lock the condition is under), then check the
 * condition, then sleep on the word as read. A sleeper that breaks it can
 * sleep for ever on a value that will not change again, with nothing wrong
 * to see from outside. Each test here drives one wait site as hard and as
 * often as it can, for a bounded time, under a watchdog that fails the
 * test when progress stops (killing what it started) instead of hanging.
 *
 * The participants count their progress on a board in the arena; the
 * parent looks at the counts every few milliseconds and, after a while,
 * asks them to stop; each then finishes its protocol (end markers, last
 * releases), still watched. Sites whose sleepers wake on their own after a
 * slice (semaphore: 1 s, barrier: 250 ms, a manager's local channel:
 * 500 ms) would turn a lost wake-up into a wait of one slice rather than a
 * hang: there each wait is timed, and waits as long as the slice fail the
 * test when they repeat. A waker killed between its commit and its
 * wake-up is made to die exactly there by test hooks
 * (mproc__queue_crash_at, mproc__event_crash_before_wake,
 * mproc__cond_crash_at). */
#include "sync/cond.h"
#include "manager/manager.h"
#include "queue/queue.h"
#include "sync/sync.h"
#include "mgrutil.h"
#include "mproc/queue.h"
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

/* Sanitized builds run slower: longer bounds, never looser checks. */
#define TSCALE (TU_ASAN ? 3 : 1)
/* No progress for this long is a stall: far beyond any scheduling delay
 * of a loaded machine, far below the test's timeout. */
#define STALL_MS (3000 * TSCALE)
#define PUT_MS   700 /* how long bounded puts are driven, per start method */
#define RUN_MS   500 /* the other queue sites */
#define SYNC_MS  300 /* the other sites */
#define NPART    8   /* participants on a board, at most */
/* Slice-long waits allowed per participant and run (a descheduled process
 * can make one; a lost wake-up makes them again and again). */
#define SLOW_MAX 1

/* ---- the board and the watchdog ------------------------------------------- */

typedef struct board {
    _Atomic uint64_t count[NPART]; /* progress of each participant */
    _Atomic uint32_t slow[NPART];  /* its waits of slow_ns or more */
    long long slow_ns;             /* 0: waits are not timed */
    _Atomic uint32_t stop;         /* the parent asks them to finish */
    _Atomic uint32_t quit;         /* the participants agreed to end */
    _Atomic uint32_t acks;
    _Atomic uint32_t round, entered, returned;
    _Atomic int32_t bad_rc; /* what a participant got, when it fails */
    int nproducers, nconsumers;
    size_t msg_len;   /* queue messages: 0 for 1..8 bytes, varying */
    bool closing;     /* the queue gets closed: MPROC_ECLOSED is an answer */
    int turn, tokens; /* under the condition's lock */
    uint64_t shared;  /* under the lock */
    mproc_queue *q, *q2, *q3;
    mproc_lock *lock;
    mproc_sem *s1, *s2;
    mproc_cond *cond;
    mproc_event *e1, *e2, *go[2];
    mproc_barrier *bar;
} board;

typedef struct part {
    board *b;
    int me; /* the participant's slot on the board */
} part;

static board *board_new(void)
{
    board *b;
    TU_OK(mproc_arena_calloc((void **)&b, sizeof *b));
    return b;
}

static uint64_t progress(const board *b)
{
    uint64_t s = 0;
    for (int i = 0; i < NPART; i++) s += atomic_load(&((board *)b)->count[i]);
    return s;
}

static uint64_t count_of(board *b, int i)
{
    return atomic_load(&b->count[i]);
}

static void counts(const board *b, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < NPART && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%llu", i ? " " : "",
                              (unsigned long long)atomic_load(&((board *)b)->count[i]));
}

/* A participant's wait, timed when the site has a slice. */
static long long wait_begin(void)
{
    return mproc_now_ns();
}

static void wait_end(board *b, int me, long long t0)
{
    if (b->slow_ns && mproc_now_ns() - t0 >= b->slow_ns) atomic_fetch_add(&b->slow[me], 1);
}

static void progressed(board *b, int me)
{
    atomic_fetch_add(&b->count[me], 1);
}

/* A participant gives up: what it got, and an exit code naming where. */
static int failed(board *b, int rc, int code)
{
    atomic_store(&b->bad_rc, rc);
    return code;
}

typedef void (*describe_fn)(const board *b, char *buf, size_t cap);

/* Joins and frees participant number k (what's `who`), which must have
 * exited with 0. */
static void join_ok(board *b, mproc_process *p, const char *what, const char *who, int k)
{
    int code = -1000;
    TU_OK(mproc_process_join(p, 10000));
    TU_OK(mproc_process_exitcode(p, &code));
    TU_OK(mproc_process_free(p));
    ck_assert_msg(code == 0, "%s: %s %d exited with %d (%s)", what, who, k, code,
                  mproc_err_name(atomic_load(&b->bad_rc)));
}

static void kill_all(mproc_process **ps, int n)
{
    for (int i = 0; i < n; i++) {
        (void)mproc_process_kill(ps[i]);
        (void)mproc_process_join(ps[i], 10000);
        (void)mproc_process_free(ps[i]);
    }
}

/* Watches processes ps[0..n) until each has exited: asks them to stop
 * after run_ms, fails (killing them all) if the board's progress stands
 * still for STALL_MS, and checks that each exited with 0 and that no wait
 * lasted a slice more than SLOW_MAX times. */
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
        if (tu_ms_since(t0) >= run_ms) atomic_store(&b->stop, 1);
        if (tu_ms_since(last) >= STALL_MS) {
            char c[256], d[256] = "";
            counts(b, c, sizeof c);
            if (describe) describe(b, d, sizeof d);
            kill_all(ps, n);
            ck_abort_msg("%s: no progress for %d ms (a lost wake-up), %lld ms in; counts [%s] %s",
                         what, STALL_MS, tu_ms_since(t0), c, d);
        }
    }
    if (getenv("TU_VERBOSE")) {
        char c[256];
        counts(b, c, sizeof c);
        fprintf(stderr, "%s: %lld ms, counts [%s]\n", what, tu_ms_since(t0), c);
    }
    for (int i = 0; i < n; i++) join_ok(b, ps[i], what, "participant", i);
    for (int i = 0; i < NPART; i++)
        ck_assert_msg(atomic_load(&b->slow[i]) <= SLOW_MAX,
                      "%s: participant %d waited %u times for %lld ms or more (lost wake-ups "
                      "caught by the slice)",
                      what, i, atomic_load(&b->slow[i]), b->slow_ns / 1000000);
}

static mproc_process *start(mproc_target_fn fn, board *b, int me, int method)
{
    /* Zeroed first: the padding after `me` would otherwise hold whatever
     * the stack held, and the start's check of spawn arguments refuses
     * bytes that happen to form an address of this thread's stack
     * (MPROC_EINVAL), for every start of a run whose stack straddles the
     * matching 4 GiB boundary. */
    part a;
    memset(&a, 0, sizeof a);
    a.b = b;
    a.me = me;
    mproc_process *p;
    TU_OK(mproc_process_new(&p, fn, &a, sizeof a,
                            &(mproc_process_opts){.start_method = tu_methods[method]}));
    TU_OK(mproc_process_start(p));
    return p;
}

static part arg_part(const void *arg)
{
    part a;
    memcpy(&a, arg, sizeof a);
    return a;
}

static const char *site_name(char *buf, size_t cap, const char *what, int i)
{
    snprintf(buf, cap, "%s (%s)", what, mproc_start_method_name(tu_methods[i]));
    return buf;
}

/* Starts n followers in slots 1..n, then the leader in slot 0, under
 * start method number i, and watches them (see watch). */
static void run_led(board *b, mproc_target_fn leader, mproc_target_fn follower, int n, int i,
                    int run_ms, const char *what, describe_fn describe)
{
    mproc_process *ps[NPART];
    for (int k = 0; k < n; k++) ps[k] = start(follower, b, 1 + k, i);
    ps[n] = start(leader, b, 0, i);
    char name[128];
    watch(b, ps, n + 1, run_ms, site_name(name, sizeof name, what, i), describe);
}

/* ---- queue: put waiting for room, get waiting for a message --------------- */

/* A message: its sequence number (4 bytes), then its producer (1 byte),
 * as far as its length allows; a zero-length one ends a consumer. */
static size_t msg_len(const board *b, uint32_t seq)
{
    return b->msg_len ? b->msg_len : 1 + seq % 8;
}

static int q_producer(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    uint32_t seq = 0;
    for (; !atomic_load(&b->stop); seq++) {
        unsigned char m[8] = {0};
        memcpy(m, &seq, sizeof seq);
        m[4] = (unsigned char)a.me;
        int rc = mproc_queue_put(b->q, m, msg_len(b, seq), MPROC_FOREVER);
        if (rc) return failed(b, rc, 10);
        progressed(b, a.me);
    }
    /* The last producer to finish ends the consumers. */
    if (atomic_fetch_add(&b->acks, 1) + 1 == (uint32_t)b->nproducers)
        for (int c = 0; c < b->nconsumers; c++) {
            int rc = mproc_queue_put(b->q, "", 0, MPROC_FOREVER);
            if (rc) return failed(b, rc, 11);
        }
    return 0;
}

/* Takes messages until its end marker; checks each is whole and that each
 * producer's sequence only grows. */
static int q_consumer(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    int64_t last[NPART];
    for (int i = 0; i < NPART; i++) last[i] = -1;
    for (;;) {
        unsigned char m[8];
        size_t len;
        int rc = mproc_queue_get_into(b->q, m, sizeof m, &len, MPROC_FOREVER);
        if (rc) return failed(b, rc, 20);
        if (len == 0) return 0;
        if (len >= 5) {
            uint32_t seq;
            memcpy(&seq, m, sizeof seq);
            if (m[4] >= NPART || len != msg_len(b, seq)) return 22;
            if ((int64_t)seq <= last[m[4]]) return 23;
            last[m[4]] = seq;
        }
        progressed(b, a.me);
    }
}

static void q_describe(const board *b, char *buf, size_t cap)
{
    snprintf(buf, cap, "qsize %zu", mproc_queue_qsize(b->q));
}

/* Producers putting with no timeout into a bounded queue, consumers
 * getting with no timeout, under start method number i. Producers have
 * slots 0.., consumers the slots after them. */
static void put_get_run(int i, const mproc_queue_opts *qo, size_t len, int np, int nc,
                        const char *what)
{
    board *b = board_new();
    TU_OK(mproc_queue_new(&b->q, qo));
    b->msg_len = len;
    b->nproducers = np;
    b->nconsumers = nc;
    mproc_process *ps[NPART];
    for (int c = 0; c < nc; c++) ps[c] = start(q_consumer, b, np + c, i);
    for (int p = 0; p < np; p++) ps[nc + p] = start(q_producer, b, p, i);
    char name[128];
    watch(b, ps, np + nc, PUT_MS, site_name(name, sizeof name, what, i), q_describe);
    uint64_t put = 0, got = 0;
    for (int p = 0; p < np; p++) put += count_of(b, p);
    for (int c = 0; c < nc; c++) got += count_of(b, np + c);
    ck_assert_msg(got == put, "%s: %llu put, %llu got", name, (unsigned long long)put,
                  (unsigned long long)got);
    ck_assert_uint_eq(mproc_queue_qsize(b->q), 0);
    mproc_queue_free(b->q);
    TU_OK(mproc_arena_free(b));
}

/* The set-up of the report: one producer, maxsize 1 or 3 or max_bytes 8,
 * one or two consumers. */
START_TEST(put_into_maxsize_1)
{
    put_get_run(_i, &(mproc_queue_opts){.maxsize = 1}, 8, 1, 1, "put, maxsize 1, one consumer");
}
END_TEST

START_TEST(put_into_maxsize_3_two_consumers)
{
    put_get_run(_i, &(mproc_queue_opts){.maxsize = 3}, 0, 1, 2, "put, maxsize 3, two consumers");
}
END_TEST

START_TEST(put_into_max_bytes_8)
{
    put_get_run(_i, &(mproc_queue_opts){.max_bytes = 8}, 0, 1, 1, "put, max_bytes 8, one consumer");
}
END_TEST

START_TEST(put_into_max_bytes_8_two_consumers)
{
    put_get_run(_i, &(mproc_queue_opts){.max_bytes = 8}, 0, 1, 2,
                "put, max_bytes 8, two consumers");
}
END_TEST

/* Three producers and two consumers: both sides' locks contended (their
 * waits, the revocation of a bias), puts waiting for room behind other
 * puts. */
START_TEST(three_producers_two_consumers_maxsize_2)
{
    put_get_run(_i, &(mproc_queue_opts){.maxsize = 2}, 8, 3, 2,
                "put and get, three producers, two consumers, maxsize 2");
}
END_TEST

/* ---- queue: a waker killed between its commit and its wake-up ------------ */

/* A get (put, task_done) killed after its commit and before it wakes the
 * other side's sleepers leaves them asleep with room (a message, every
 * task done) there. The victim dies at that point through the test hook
 * mproc__queue_crash_at; then the survivors must all finish. */

static int dw_putter(void *arg)
{
    part a = arg_part(arg);
    int rc = mproc_queue_put(a.b->q, "p", 1, MPROC_FOREVER);
    if (rc && !(rc == MPROC_ECLOSED && a.b->closing)) return failed(a.b, rc, 130);
    progressed(a.b, a.me);
    return 0;
}

static int dw_getter(void *arg)
{
    part a = arg_part(arg);
    unsigned char m[8];
    size_t len;
    int rc = mproc_queue_get_into(a.b->q, m, sizeof m, &len, MPROC_FOREVER);
    if (rc && !(rc == MPROC_ECLOSED && a.b->closing)) return failed(a.b, rc, 131);
    progressed(a.b, a.me);
    return 0;
}

/* A getter (putter) that only ever tries, with no timeout, until it
 * succeeds. */
static int dw_try_getter(void *arg)
{
    part a = arg_part(arg);
    for (;;) {
        unsigned char m[8];
        size_t len;
        int rc = mproc_queue_get_into(a.b->q, m, sizeof m, &len, 0);
        if (rc == 0) break;
        if (rc != MPROC_ETIMEDOUT) return failed(a.b, rc, 135);
        tu_sleep_ms(1);
    }
    progressed(a.b, a.me);
    return 0;
}

static int dw_try_putter(void *arg)
{
    part a = arg_part(arg);
    for (;;) {
        int rc = mproc_queue_put(a.b->q, "p", 1, 0);
        if (rc == 0) break;
        if (rc != MPROC_ETIMEDOUT) return failed(a.b, rc, 136);
        tu_sleep_ms(1);
    }
    progressed(a.b, a.me);
    return 0;
}

static int dw_poller(void *arg)
{
    part a = arg_part(arg);
    mproc_waitable w = MPROC_WAITABLE_QUEUE(a.b->q);
    size_t n;
    int rc = mproc_wait(&w, 1, MPROC_FOREVER, &n);
    if (rc || !w.ready) return failed(a.b, rc, 132);
    progressed(a.b, a.me);
    return 0;
}

static int dw_joiner(void *arg)
{
    part a = arg_part(arg);
    int rc = mproc_queue_join(a.b->q, MPROC_FOREVER);
    if (rc) return failed(a.b, rc, 133);
    progressed(a.b, a.me);
    return 0;
}

/* Dies at the crash point b->turn in its one put, get, task_done or
 * close; exits 0 if it was not reached (nobody was asleep yet). */
static int dw_victim(void *arg)
{
    part a = arg_part(arg);
    mproc__queue_crash_at = (mproc__queue_crash_point)a.b->turn;
    unsigned char m[8];
    size_t len;
    int rc;
    if (a.b->turn == MPROC__QUEUE_CRASH_CLOSE_WAKE) {
        mproc_queue_close(a.b->q);
        rc = 0;
    } else if (a.b->turn == MPROC__QUEUE_CRASH_PUT_WAKE)
        rc = mproc_queue_put(a.b->q, "v", 1, MPROC_FOREVER);
    else if ((rc = mproc_queue_get_into(a.b->q, m, sizeof m, &len, MPROC_FOREVER)) == 0 &&
             a.b->turn == MPROC__QUEUE_CRASH_TASK_DONE_WAKE)
        rc = mproc_queue_task_done(a.b->q);
    return rc ? failed(a.b, rc, 134) : 0;
}

/* Runs a victim (in the last slot) under start method number i: it dies
 * at its crash point (-SIGKILL), or exits 0 if nobody was asleep there to
 * be woken. Returns its exit code. */
static int run_victim(board *b, mproc_target_fn victim, int i, const char *name)
{
    mproc_process *v = start(victim, b, NPART - 1, i);
    int code = -1000;
    TU_OK(mproc_process_join(v, STALL_MS));
    TU_OK(mproc_process_exitcode(v, &code));
    TU_OK(mproc_process_free(v));
    ck_assert_msg(code == 0 || code == -SIGKILL, "%s: the victim exited with %d (%s)", name, code,
                  mproc_err_name(atomic_load(&b->bad_rc)));
    return code;
}

/* Starts the sleepers, lets them fall asleep, has the victim die at
 * point, then starts the survivors and watches sleepers and survivors
 * finish. The victim reaches its point only if a sleeper had registered:
 * if it did not (a loaded machine), the round is played again. */
static void dead_waker_run(int i, const mproc_queue_opts *qo, int point, const char *before,
                           mproc_target_fn *sleepers, int nsleepers, mproc_target_fn *survivors,
                           int nsurvivors, const char *what)
{
    char name[128];
    site_name(name, sizeof name, what, i);
    for (int attempt = 0;; attempt++) {
        ck_assert_msg(attempt < 5, "%s: the victim never found a sleeper to wake", name);
        board *b = board_new();
        TU_OK(mproc_queue_new(&b->q, qo));
        if (before) TU_OK(mproc_queue_put(b->q, before, strlen(before), 0));
        b->turn = point;
        b->closing = point == MPROC__QUEUE_CRASH_CLOSE_WAKE;
        mproc_process *ps[NPART];
        int n = 0;
        for (int k = 0; k < nsleepers; k++, n++) ps[n] = start(sleepers[k], b, n, i);
        tu_sleep_ms(100 * (attempt + 1) * TSCALE); /* past their spin: asleep */
        int code = run_victim(b, dw_victim, i, name);
        for (int k = 0; k < nsurvivors; k++, n++) ps[n] = start(survivors[k], b, n, i);
        watch(b, ps, n, 0, name, q_describe);
        mproc_queue_free(b->q);
        TU_OK(mproc_arena_free(b));
        if (code == -SIGKILL) return;
    }
}

START_TEST(get_killed_before_it_wakes_a_waiting_put)
{
    mproc_target_fn sleepers[] = {dw_putter}, survivors[] = {dw_getter}, pollers[] = {dw_poller};
    dead_waker_run(_i, &(mproc_queue_opts){.maxsize = 1}, MPROC__QUEUE_CRASH_GET_WAKE, "m",
                   sleepers, 1, survivors, 1, "a get killed before its wake-up");
    /* The same, with an mproc_wait caller left instead of a getter, or a
     * getter that only tries. */
    dead_waker_run(_i, &(mproc_queue_opts){.maxsize = 1}, MPROC__QUEUE_CRASH_GET_WAKE, "m",
                   sleepers, 1, pollers, 1, "a get killed before its wake-up, a poller left");
    mproc_target_fn tries[] = {dw_try_getter};
    dead_waker_run(_i, &(mproc_queue_opts){.maxsize = 1}, MPROC__QUEUE_CRASH_GET_WAKE, "m",
                   sleepers, 1, tries, 1, "a get killed before its wake-up, a try-getter left");
    /* Nobody left to pay the wake-up: the sleeper looks again by itself. */
    dead_waker_run(_i, &(mproc_queue_opts){.maxsize = 1}, MPROC__QUEUE_CRASH_GET_WAKE, "m",
                   sleepers, 1, NULL, 0, "a get killed before its wake-up, nobody left");
}
END_TEST

START_TEST(put_killed_before_it_wakes_a_waiting_get)
{
    mproc_target_fn sleepers[] = {dw_getter, dw_poller}, survivors[] = {dw_putter};
    dead_waker_run(_i, &(mproc_queue_opts){.maxsize = 1}, MPROC__QUEUE_CRASH_PUT_WAKE, NULL,
                   sleepers, 2, survivors, 1, "a put killed before its wake-up");
    mproc_target_fn tries[] = {dw_try_putter};
    dead_waker_run(_i, &(mproc_queue_opts){.maxsize = 1}, MPROC__QUEUE_CRASH_PUT_WAKE, NULL,
                   sleepers, 2, tries, 1, "a put killed before its wake-up, a try-putter left");
    /* Nobody left to pay the wake-up: a getter, or an mproc_wait caller,
     * alone, looks again by itself. */
    dead_waker_run(_i, &(mproc_queue_opts){.maxsize = 1}, MPROC__QUEUE_CRASH_PUT_WAKE, NULL,
                   sleepers, 1, NULL, 0, "a put killed before its wake-up, a getter alone");
    dead_waker_run(_i, &(mproc_queue_opts){.maxsize = 1}, MPROC__QUEUE_CRASH_PUT_WAKE, NULL,
                   sleepers + 1, 1, NULL, 0, "a put killed before its wake-up, a poller alone");
}
END_TEST

START_TEST(close_killed_before_it_wakes_anyone)
{
    mproc_target_fn sleepers[] = {dw_getter, dw_poller}, survivors[] = {dw_getter};
    dead_waker_run(_i, NULL, MPROC__QUEUE_CRASH_CLOSE_WAKE, NULL, sleepers, 2, survivors, 1,
                   "a close killed before its wake-ups");
    mproc_target_fn putters[] = {dw_putter};
    dead_waker_run(_i, &(mproc_queue_opts){.maxsize = 1}, MPROC__QUEUE_CRASH_CLOSE_WAKE, "m",
                   putters, 1, putters, 1, "a close killed before its wake-ups, a put waiting");
}
END_TEST

START_TEST(task_done_killed_before_it_wakes_join)
{
    mproc_target_fn sleepers[] = {dw_joiner};
    dead_waker_run(_i, &(mproc_queue_opts){.joinable = true}, MPROC__QUEUE_CRASH_TASK_DONE_WAKE,
                   "t", sleepers, 1, NULL, 0, "a task_done killed before its wake-up");
}
END_TEST

/* Requests and replies: the driver puts one to three requests at a time
 * and waits for as many replies; three responders wait on the requests,
 * so that a put finds one waiting getter (woken alone) or several (all
 * woken). */
static int rr_driver(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    for (uint32_t seq = 0; !atomic_load(&b->stop);) {
        int k = 1 + (int)(seq % 3);
        for (int j = 0; j < k; j++, seq++) {
            int rc = mproc_queue_put(b->q, &seq, sizeof seq, MPROC_FOREVER);
            if (rc) return failed(b, rc, 30);
        }
        for (int j = 0; j < k; j++) {
            uint32_t r;
            size_t len;
            int rc = mproc_queue_get_into(b->q2, &r, sizeof r, &len, MPROC_FOREVER);
            if (rc) return failed(b, rc, 31);
            progressed(b, a.me);
        }
    }
    for (int c = 0; c < b->nconsumers; c++) {
        int rc = mproc_queue_put(b->q, "", 0, MPROC_FOREVER);
        if (rc) return failed(b, rc, 32);
    }
    return 0;
}

static int rr_responder(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    for (;;) {
        uint32_t m;
        size_t len;
        int rc = mproc_queue_get_into(b->q, &m, sizeof m, &len, MPROC_FOREVER);
        if (rc) return failed(b, rc, 33);
        if (len == 0) return 0;
        if ((rc = mproc_queue_put(b->q2, &m, len, MPROC_FOREVER))) return failed(b, rc, 34);
        progressed(b, a.me);
    }
}

static void rr_describe(const board *b, char *buf, size_t cap)
{
    snprintf(buf, cap, "requests %zu, replies %zu", mproc_queue_qsize(b->q),
             mproc_queue_qsize(b->q2));
}

START_TEST(get_wakes_one_or_all_of_three_getters)
{
    board *b = board_new();
    TU_OK(mproc_queue_new(&b->q, NULL));
    TU_OK(mproc_queue_new(&b->q2, NULL));
    b->nconsumers = 3;
    run_led(b, rr_driver, rr_responder, 3, _i, RUN_MS, "get, three getters", rr_describe);
    ck_assert_uint_eq(count_of(b, 1) + count_of(b, 2) + count_of(b, 3), count_of(b, 0));
    mproc_queue_free(b->q);
    mproc_queue_free(b->q2);
    TU_OK(mproc_arena_free(b));
}
END_TEST

/* ---- queue: JoinableQueue join and task_done ---------------------------- */

static int jq_producer(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    int rc;
    for (uint32_t seq = 0; !atomic_load(&b->stop); seq++) {
        for (uint32_t j = 0; j <= seq % 4; j++)
            if ((rc = mproc_queue_put(b->q, &seq, sizeof seq, MPROC_FOREVER)))
                return failed(b, rc, 40);
        if ((rc = mproc_queue_join(b->q, MPROC_FOREVER))) return failed(b, rc, 41);
        progressed(b, a.me);
    }
    for (int c = 0; c < b->nconsumers; c++)
        if ((rc = mproc_queue_put(b->q, "", 0, MPROC_FOREVER))) return failed(b, rc, 42);
    if ((rc = mproc_queue_join(b->q, MPROC_FOREVER))) return failed(b, rc, 43);
    return 0;
}

static int jq_consumer(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    for (;;) {
        uint32_t m;
        size_t len;
        int rc = mproc_queue_get_into(b->q, &m, sizeof m, &len, MPROC_FOREVER);
        if (rc) return failed(b, rc, 44);
        if ((rc = mproc_queue_task_done(b->q))) return failed(b, rc, 45);
        if (len == 0) return 0;
        progressed(b, a.me);
    }
}

START_TEST(join_waits_for_task_done)
{
    board *b = board_new();
    TU_OK(mproc_joinable_queue_new(&b->q, 0));
    b->nconsumers = 2;
    run_led(b, jq_producer, jq_consumer, 2, _i, RUN_MS, "JoinableQueue join", q_describe);
    TU_OK(mproc_queue_join(b->q, 0));
    mproc_queue_free(b->q);
    TU_OK(mproc_arena_free(b));
}
END_TEST

/* ---- queue: mproc_wait on queues ------------------------------------------ */

/* Busy for 0 to 12 µs, varying with seq: moves a put across the few
 * microseconds in which a woken waiter goes back to sleep. */
static void jitter(uint32_t seq)
{
    long long until = mproc_now_ns() + (seq * 7919u) % 12000u;
    while (mproc_now_ns() < until) {
    }
}

/* The driver puts one message on either of two queues and waits for the
 * reply; two pollers wait on both queues with mproc_wait, take what is
 * there (the other poller may have been first) and reply. */
static int poll_driver(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    int rc;
    for (uint32_t seq = 0; !atomic_load(&b->stop); seq++) {
        jitter(seq);
        if ((rc = mproc_queue_put(seq % 2 ? b->q2 : b->q, &seq, sizeof seq, MPROC_FOREVER)))
            return failed(b, rc, 50);
        uint32_t r;
        size_t len;
        if ((rc = mproc_queue_get_into(b->q3, &r, sizeof r, &len, MPROC_FOREVER)))
            return failed(b, rc, 51);
        if (len != sizeof r || r != seq) return 52;
        progressed(b, a.me);
    }
    for (int c = 0; c < b->nconsumers; c++)
        if ((rc = mproc_queue_put(b->q, "", 0, MPROC_FOREVER))) return failed(b, rc, 53);
    return 0;
}

static int poller(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    for (;;) {
        mproc_waitable w[2] = {MPROC_WAITABLE_QUEUE(b->q), MPROC_WAITABLE_QUEUE(b->q2)};
        size_t n;
        int rc = mproc_wait(w, 2, MPROC_FOREVER, &n);
        if (rc) return failed(b, rc, 54);
        for (int i = 0; i < 2; i++) {
            if (!w[i].ready) continue;
            uint32_t m;
            size_t len;
            rc = mproc_queue_get_into(w[i].u.queue, &m, sizeof m, &len, 0);
            if (rc == MPROC_ETIMEDOUT) continue; /* the other poller took it */
            if (rc) return failed(b, rc, 55);
            if (len == 0) return 0;
            if ((rc = mproc_queue_put(b->q3, &m, len, MPROC_FOREVER))) return failed(b, rc, 56);
            progressed(b, a.me);
        }
    }
}

START_TEST(mproc_wait_on_queues)
{
    board *b = board_new();
    TU_OK(mproc_queue_new(&b->q, NULL));
    TU_OK(mproc_queue_new(&b->q2, NULL));
    TU_OK(mproc_queue_new(&b->q3, NULL));
    b->nconsumers = 2;
    run_led(b, poll_driver, poller, 2, _i, RUN_MS, "mproc_wait on two queues", rr_describe);
    ck_assert_uint_eq(count_of(b, 1) + count_of(b, 2), count_of(b, 0));
    mproc_queue_free(b->q);
    mproc_queue_free(b->q2);
    mproc_queue_free(b->q3);
    TU_OK(mproc_arena_free(b));
}
END_TEST

/* ---- queue: close wakes every waiter --------------------------------------- */

/* Round after round, a getter on an empty queue, a putter on a full one
 * and an mproc_wait caller on the empty one go to sleep, and the parent
 * closes both queues at a moment that varies around their falling
 * asleep: each must come back (closed). */
enum { CW_GET, CW_PUT, CW_POLL, CW_N };

static int close_waiter(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    for (uint32_t r = 0;;) {
        uint32_t nr;
        while ((nr = atomic_load(&b->round)) == r) tu_sleep_ms(0);
        if (nr == UINT32_MAX) return 0;
        r = nr;
        mproc_queue *empty = b->q, *full = b->q2;
        atomic_fetch_add(&b->entered, 1);
        unsigned char m[8];
        size_t len;
        int rc;
        if (a.me == CW_GET) {
            rc = mproc_queue_get_into(empty, m, sizeof m, &len, MPROC_FOREVER);
            if (rc != MPROC_ECLOSED) return failed(b, rc, 60);
        } else if (a.me == CW_PUT) {
            rc = mproc_queue_put(full, "x", 1, MPROC_FOREVER);
            if (rc != MPROC_ECLOSED) return failed(b, rc, 61);
        } else {
            mproc_waitable w = MPROC_WAITABLE_QUEUE(empty);
            rc = mproc_wait(&w, 1, MPROC_FOREVER, &len);
            if (rc || !w.ready || !mproc_queue_closed(empty)) return failed(b, rc, 62);
        }
        progressed(b, a.me);
        atomic_fetch_add(&b->returned, 1);
    }
}

/* Waits until *v reaches want, failing after STALL_MS. */
static void await_count(_Atomic uint32_t *v, uint32_t want, mproc_process **ps, int n,
                        const char *what, uint32_t round)
{
    long long t0 = mproc_now_ns();
    while (atomic_load(v) < want) {
        if (tu_ms_since(t0) >= STALL_MS) {
            uint32_t got = atomic_load(v);
            kill_all(ps, n);
            ck_abort_msg("%s: round %u stalled (%u of %u) for %d ms: a waiter was not woken", what,
                         round, got, want, STALL_MS);
        }
        sched_yield();
    }
}

START_TEST(close_wakes_getters_putters_and_pollers)
{
    board *b = board_new();
    mproc_process *ps[CW_N];
    for (int k = 0; k < CW_N; k++) ps[k] = start(close_waiter, b, k, _i);
    char name[128];
    site_name(name, sizeof name, "close", _i);
    long long t0 = mproc_now_ns();
    uint32_t r = 1;
    for (; tu_ms_since(t0) < RUN_MS; r++) {
        TU_OK(mproc_queue_new(&b->q, NULL));
        TU_OK(mproc_queue_new(&b->q2, &(mproc_queue_opts){.maxsize = 1}));
        TU_OK(mproc_queue_put(b->q2, "f", 1, 0));
        atomic_store(&b->entered, 0);
        atomic_store(&b->round, r);
        await_count(&b->entered, CW_N, ps, CW_N, name, r);
        /* Close at once, after a yield, or after up to 80 µs: waiters
         * spin some 30 µs before they register and sleep. */
        if (r % 4 == 1) sched_yield();
        if (r % 4 >= 2) {
            long long until = mproc_now_ns() + (r * 7919) % 80000;
            while (mproc_now_ns() < until) {
            }
        }
        mproc_queue_close(b->q);
        mproc_queue_close(b->q2);
        await_count(&b->returned, CW_N * r, ps, CW_N, name, r);
        mproc_queue_free(b->q);
        mproc_queue_free(b->q2);
    }
    atomic_store(&b->round, UINT32_MAX);
    for (int k = 0; k < CW_N; k++) join_ok(b, ps[k], name, "waiter", k);
    if (getenv("TU_VERBOSE")) fprintf(stderr, "%s: %u rounds\n", name, r - 1);
    TU_OK(mproc_arena_free(b));
}
END_TEST

/* ---- Lock ------------------------------------------------------------------------ */

static int lock_worker(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    while (!atomic_load(&b->stop)) {
        int rc = mproc_lock_acquire(b->lock, MPROC_FOREVER);
        if (rc) return failed(b, rc, 70);
        b->shared++;
        for (volatile int k = 0; k < 50; k++) {
        }
        if ((rc = mproc_lock_release(b->lock))) return failed(b, rc, 71);
        progressed(b, a.me);
    }
    return 0;
}

START_TEST(lock_contended_by_three)
{
    board *b = board_new();
    TU_OK(mproc_lock_new(&b->lock));
    mproc_process *ps[3];
    for (int k = 0; k < 3; k++) ps[k] = start(lock_worker, b, k, _i);
    char name[128];
    watch(b, ps, 3, SYNC_MS, site_name(name, sizeof name, "Lock", _i), NULL);
    ck_assert_uint_eq(b->shared, count_of(b, 0) + count_of(b, 1) + count_of(b, 2));
    mproc_lock_free(b->lock);
    TU_OK(mproc_arena_free(b));
}
END_TEST

/* ---- Semaphore -------------------------------------------------------------------- */

#define SEM_SLOW_NS 900000000LL /* its sleepers look again every second */

static int sem_acquire_timed(board *b, int me, mproc_sem *s)
{
    long long t0 = wait_begin();
    int rc = mproc_sem_acquire(s, MPROC_FOREVER);
    wait_end(b, me, t0);
    return rc;
}

/* Ping-pong: A takes s1 and gives s2, B takes s2 and gives s1. */
static int sem_ping(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    for (;;) {
        int rc = sem_acquire_timed(b, a.me, b->s1);
        if (rc) return failed(b, rc, 80);
        bool end = atomic_load(&b->stop);
        if (end) atomic_store(&b->quit, 1);
        if ((rc = mproc_sem_release(b->s2))) return failed(b, rc, 81);
        if (end) return 0;
        progressed(b, a.me);
    }
}

static int sem_pong(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    for (;;) {
        int rc = sem_acquire_timed(b, a.me, b->s2);
        if (rc) return failed(b, rc, 82);
        if (atomic_load(&b->quit)) return 0;
        if ((rc = mproc_sem_release(b->s1))) return failed(b, rc, 83);
        progressed(b, a.me);
    }
}

/* One releaser, three acquirers: each unit wakes one of the sleepers,
 * which acknowledges it on s2. */
static int sem_releaser(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    int rc;
    while (!atomic_load(&b->stop)) {
        if ((rc = mproc_sem_release(b->s1))) return failed(b, rc, 84);
        if ((rc = sem_acquire_timed(b, a.me, b->s2))) return failed(b, rc, 85);
        progressed(b, a.me);
    }
    atomic_store(&b->quit, 1);
    for (int k = 0; k < b->nconsumers; k++)
        if ((rc = mproc_sem_release(b->s1))) return failed(b, rc, 86);
    return 0;
}

static int sem_acquirer(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    for (;;) {
        int rc = sem_acquire_timed(b, a.me, b->s1);
        if (rc) return failed(b, rc, 87);
        if (atomic_load(&b->quit)) return 0;
        if ((rc = mproc_sem_release(b->s2))) return failed(b, rc, 88);
        progressed(b, a.me);
    }
}

START_TEST(semaphore_ping_pong_and_one_of_three)
{
    board *b = board_new();
    b->slow_ns = SEM_SLOW_NS;
    TU_OK(mproc_sem_new(&b->s1, 1));
    TU_OK(mproc_sem_new(&b->s2, 0));
    run_led(b, sem_ping, sem_pong, 1, _i, SYNC_MS, "Semaphore ping-pong", NULL);
    mproc_sem_free(b->s1);
    mproc_sem_free(b->s2);
    TU_OK(mproc_arena_free(b));

    b = board_new();
    b->slow_ns = SEM_SLOW_NS;
    b->nconsumers = 3;
    TU_OK(mproc_sem_new(&b->s1, 0));
    TU_OK(mproc_sem_new(&b->s2, 0));
    run_led(b, sem_releaser, sem_acquirer, 3, _i, SYNC_MS, "Semaphore, three acquirers", NULL);
    ck_assert_uint_eq(count_of(b, 1) + count_of(b, 2) + count_of(b, 3), count_of(b, 0));
    mproc_sem_free(b->s1);
    mproc_sem_free(b->s2);
    TU_OK(mproc_arena_free(b));
}
END_TEST

/* ---- Condition -------------------------------------------------------------------- */

/* Ping-pong on a turn under the condition's lock: 0 A's turn, 1 B's, 2
 * the end. */
static int cond_ping(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    int rc = mproc_cond_acquire(b->cond, MPROC_FOREVER);
    if (rc) return failed(b, rc, 90);
    for (;;) {
        while (b->turn != 0)
            if ((rc = mproc_cond_wait(b->cond, MPROC_FOREVER))) return failed(b, rc, 91);
        b->turn = atomic_load(&b->stop) ? 2 : 1;
        if ((rc = mproc_cond_notify(b->cond, 1))) return failed(b, rc, 92);
        if (b->turn == 2) break;
        progressed(b, a.me);
    }
    return (rc = mproc_cond_release(b->cond)) ? failed(b, rc, 93) : 0;
}

static int cond_pong(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    int rc = mproc_cond_acquire(b->cond, MPROC_FOREVER);
    if (rc) return failed(b, rc, 94);
    for (;;) {
        while (b->turn == 0)
            if ((rc = mproc_cond_wait(b->cond, MPROC_FOREVER))) return failed(b, rc, 95);
        if (b->turn == 2) break;
        b->turn = 0;
        if ((rc = mproc_cond_notify(b->cond, 1))) return failed(b, rc, 96);
        progressed(b, a.me);
    }
    return (rc = mproc_cond_release(b->cond)) ? failed(b, rc, 97) : 0;
}

/* One producer hands out one to three tokens and notifies as many
 * waiters; three consumers take them; the last one taken wakes the
 * producer. */
static int cond_producer(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    int rc = mproc_cond_acquire(b->cond, MPROC_FOREVER);
    if (rc) return failed(b, rc, 100);
    for (unsigned seq = 0;; seq++) {
        while (b->tokens > 0)
            if ((rc = mproc_cond_wait(b->cond, MPROC_FOREVER))) return failed(b, rc, 101);
        if (atomic_load(&b->stop)) {
            atomic_store(&b->quit, 1);
            if ((rc = mproc_cond_notify_all(b->cond))) return failed(b, rc, 102);
            break;
        }
        b->tokens = 1 + (int)(seq % 3);
        if ((rc = mproc_cond_notify(b->cond, (unsigned)b->tokens))) return failed(b, rc, 103);
        progressed(b, a.me);
    }
    return (rc = mproc_cond_release(b->cond)) ? failed(b, rc, 104) : 0;
}

static int cond_consumer(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    int rc = mproc_cond_acquire(b->cond, MPROC_FOREVER);
    if (rc) return failed(b, rc, 105);
    for (;;) {
        while (b->tokens == 0 && !atomic_load(&b->quit))
            if ((rc = mproc_cond_wait(b->cond, MPROC_FOREVER))) return failed(b, rc, 106);
        if (b->tokens == 0) break; /* quit */
        if (--b->tokens == 0 && (rc = mproc_cond_notify_all(b->cond))) return failed(b, rc, 107);
        progressed(b, a.me);
    }
    return (rc = mproc_cond_release(b->cond)) ? failed(b, rc, 108) : 0;
}

START_TEST(condition_ping_pong_and_notify_n)
{
    board *b = board_new();
    TU_OK(mproc_cond_new(&b->cond, NULL));
    run_led(b, cond_ping, cond_pong, 1, _i, SYNC_MS, "Condition ping-pong", NULL);
    mproc_cond_free(b->cond);
    TU_OK(mproc_arena_free(b));

    b = board_new();
    TU_OK(mproc_cond_new(&b->cond, NULL));
    run_led(b, cond_producer, cond_consumer, 3, _i, SYNC_MS, "Condition, notify(n) of three", NULL);
    mproc_cond_free(b->cond);
    TU_OK(mproc_arena_free(b));
}
END_TEST

/* ---- Event -------------------------------------------------------------------------- */

/* Ping-pong: A waits for e1, clears it and sets e2; B the other way. */
static int event_ping(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    for (;;) {
        int rc = mproc_event_wait(b->e1, MPROC_FOREVER);
        if (rc) return failed(b, rc, 110);
        mproc_event_clear(b->e1);
        bool end = atomic_load(&b->stop);
        if (end) atomic_store(&b->quit, 1);
        mproc_event_set(b->e2);
        if (end) return 0;
        progressed(b, a.me);
    }
}

static int event_pong(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    for (;;) {
        int rc = mproc_event_wait(b->e2, MPROC_FOREVER);
        if (rc) return failed(b, rc, 111);
        mproc_event_clear(b->e2);
        if (atomic_load(&b->quit)) return 0;
        mproc_event_set(b->e1);
        progressed(b, a.me);
    }
}

/* One setter, three waiters, in rounds: round r sets go[r % 2] (the other
 * one cleared before), every waiter acknowledges, the last one sets e1. */
static int event_setter(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    for (uint32_t r = 0;; r++) {
        mproc_event_clear(b->go[(r + 1) % 2]);
        mproc_event_clear(b->e1);
        atomic_store(&b->acks, 0);
        bool end = atomic_load(&b->stop);
        if (end) atomic_store(&b->quit, 1);
        mproc_event_set(b->go[r % 2]);
        int rc = mproc_event_wait(b->e1, MPROC_FOREVER);
        if (rc) return failed(b, rc, 112);
        if (end) return 0;
        progressed(b, a.me);
    }
}

static int event_waiter(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    for (uint32_t r = 0;; r++) {
        int rc = mproc_event_wait(b->go[r % 2], MPROC_FOREVER);
        if (rc) return failed(b, rc, 113);
        bool end = atomic_load(&b->quit);
        if (atomic_fetch_add(&b->acks, 1) + 1 == (uint32_t)b->nconsumers) mproc_event_set(b->e1);
        if (end) return 0;
        progressed(b, a.me);
    }
}

START_TEST(event_ping_pong_and_three_waiters)
{
    board *b = board_new();
    TU_OK(mproc_event_new(&b->e1));
    TU_OK(mproc_event_new(&b->e2));
    TU_OK(mproc_event_set(b->e1));
    run_led(b, event_ping, event_pong, 1, _i, SYNC_MS, "Event ping-pong", NULL);
    mproc_event_free(b->e1);
    mproc_event_free(b->e2);
    TU_OK(mproc_arena_free(b));

    b = board_new();
    b->nconsumers = 3;
    TU_OK(mproc_event_new(&b->e1));
    TU_OK(mproc_event_new(&b->go[0]));
    TU_OK(mproc_event_new(&b->go[1]));
    run_led(b, event_setter, event_waiter, 3, _i, SYNC_MS, "Event, three waiters", NULL);
    mproc_event_free(b->e1);
    mproc_event_free(b->go[0]);
    mproc_event_free(b->go[1]);
    TU_OK(mproc_arena_free(b));
}
END_TEST

/* ---- Event and Condition: a waker killed before its wake-up ---------------- */

static int ev_sleeper(void *arg)
{
    part a = arg_part(arg);
    int rc = mproc_event_wait(a.b->e1, MPROC_FOREVER);
    if (rc) return failed(a.b, rc, 140);
    progressed(a.b, a.me);
    return 0;
}

/* Dies in set() after its store, if someone sleeps; else exits 0. */
static int ev_victim(void *arg)
{
    part a = arg_part(arg);
    mproc__event_crash_before_wake = true;
    int rc = mproc_event_set(a.b->e1);
    return rc ? failed(a.b, rc, 141) : 0;
}

static int cv_sleeper(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    int rc = mproc_cond_acquire(b->cond, MPROC_FOREVER);
    if (rc) return failed(b, rc, 142);
    while (b->tokens == 0) {
        rc = mproc_cond_wait(b->cond, MPROC_FOREVER);
        /* The notifier died holding the lock: repair, which here means
         * the notifications it may still have owed. */
        if (rc == MPROC_EOWNERDEAD &&
            (rc = mproc_lock_make_consistent(mproc_cond_lock(b->cond))) == 0)
            rc = mproc_cond_notify_all(b->cond);
        if (rc) return failed(b, rc, 143);
    }
    if ((rc = mproc_cond_release(b->cond))) return failed(b, rc, 144);
    progressed(b, a.me);
    return 0;
}

/* Dies in notify after marking a waiter, before waking it (holding the
 * lock); exits 0 if nobody waited yet. */
static int cv_victim(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    mproc__cond_crash_at = MPROC__COND_CRASH_NOTIFY_BEFORE_WAKE;
    int rc = mproc_cond_acquire(b->cond, MPROC_FOREVER);
    if (rc) return failed(b, rc, 145);
    b->tokens = 1;
    if ((rc = mproc_cond_notify_all(b->cond))) return failed(b, rc, 146);
    return (rc = mproc_cond_release(b->cond)) ? failed(b, rc, 147) : 0;
}

/* Two sleepers fall asleep, the victim dies before it wakes them: they
 * must still return (their slice), under start method i. The round is
 * played again if the victim found nobody asleep. */
static void dead_sync_run(int i, bool cond, const char *what)
{
    char name[128];
    site_name(name, sizeof name, what, i);
    for (int attempt = 0;; attempt++) {
        ck_assert_msg(attempt < 5, "%s: the victim never found a sleeper to wake", name);
        board *b = board_new();
        if (cond)
            TU_OK(mproc_cond_new(&b->cond, NULL));
        else
            TU_OK(mproc_event_new(&b->e1));
        mproc_process *ps[2];
        for (int k = 0; k < 2; k++) ps[k] = start(cond ? cv_sleeper : ev_sleeper, b, k, i);
        tu_sleep_ms(100 * (attempt + 1) * TSCALE);
        int code = run_victim(b, cond ? cv_victim : ev_victim, i, name);
        watch(b, ps, 2, 0, name, NULL);
        if (cond)
            mproc_cond_free(b->cond);
        else
            mproc_event_free(b->e1);
        TU_OK(mproc_arena_free(b));
        if (code == -SIGKILL) return;
    }
}

START_TEST(event_set_killed_before_it_wakes)
{
    dead_sync_run(_i, false, "Event, a set() killed before its wake-up");
}
END_TEST

START_TEST(condition_notify_killed_before_it_wakes)
{
    dead_sync_run(_i, true, "Condition, a notify killed before its wake-up");
}
END_TEST

/* ---- Barrier -------------------------------------------------------------------------- */

#define BARRIER_SLOW_NS 225000000LL /* its sleepers look again every 250 ms */

/* Run by the last party of each generation, before the others go: every
 * party of that generation sees the same decision. */
static int barrier_action(void *arg)
{
    board *b = arg;
    if (atomic_load(&b->stop)) atomic_store(&b->quit, 1);
    return 0;
}

static int barrier_party(void *arg)
{
    part a = arg_part(arg);
    board *b = a.b;
    for (;;) {
        long long t0 = wait_begin();
        int rc = mproc_barrier_wait(b->bar, MPROC_FOREVER, NULL);
        wait_end(b, a.me, t0);
        if (rc) return failed(b, rc, 120);
        if (atomic_load(&b->quit)) return 0;
        progressed(b, a.me);
    }
}

START_TEST(barrier_of_three)
{
    board *b = board_new();
    b->slow_ns = BARRIER_SLOW_NS;
    TU_OK(mproc_barrier_new(&b->bar, 3, barrier_action, b));
    mproc_process *ps[3];
    for (int k = 0; k < 3; k++) ps[k] = start(barrier_party, b, k, _i);
    char name[128];
    watch(b, ps, 3, SYNC_MS, site_name(name, sizeof name, "Barrier", _i), NULL);
    ck_assert_uint_eq(count_of(b, 0), count_of(b, 1));
    ck_assert_uint_eq(count_of(b, 0), count_of(b, 2));
    mproc_barrier_free(b->bar);
    TU_OK(mproc_arena_free(b));
}
END_TEST

/* ---- pool, futures, executors (waits in this process's threads) ------------------ */

static const mproc_context *ctx_of(int i)
{
    const mproc_context *c = NULL;
    TU_OK(mproc_get_context(mproc_start_method_name(tu_methods[i]), &c));
    return c;
}

static int inc(const void *arg, size_t len, mproc_result *res)
{
    uint64_t v = 0;
    memcpy(&v, arg, len < sizeof v ? len : sizeof v);
    v++;
    return mproc_result_set(res, &v, sizeof v);
}

static int inc_map(const void *in, void *out)
{
    uint64_t v;
    memcpy(&v, in, sizeof v);
    v++;
    memcpy(out, &v, sizeof v);
    return 0;
}

/* A wait of this thread that must end soon: a timeout is a stall, and so
 * is a wait that ended only when its timeout came (a wait that sees the
 * outcome at its deadline reports it as a success). */
#define EXPECT_DONE(expr, what, n)                                                                 \
    do {                                                                                           \
        long long t0_ = mproc_now_ns();                                                            \
        int rc_ = (expr);                                                                          \
        ck_assert_msg(rc_ != MPROC_ETIMEDOUT && tu_ms_since(t0_) < STALL_MS,                       \
                      "%s: no result for %lld ms (a lost wake-up) after %llu round trips", what,   \
                      tu_ms_since(t0_), (unsigned long long)(n));                                  \
        ck_assert_msg(rc_ == 0, "%s: %s", what, mproc_err_name(rc_));                              \
    } while (0)

static void expect_inc(mproc_future *f, uint64_t v, const char *what, uint64_t n)
{
    const void *buf;
    size_t len;
    EXPECT_DONE(mproc_future_result(f, &buf, &len, STALL_MS), what, n);
    uint64_t got;
    ck_assert_uint_eq(len, sizeof got);
    memcpy(&got, buf, sizeof got);
    ck_assert_uint_eq(got, v + 1);
}

typedef struct counter {
    uint64_t next, end;
} counter;

static int produce(void *ud, void *item)
{
    counter *c = ud;
    if (c->next == c->end) return 0;
    memcpy(item, &c->next, sizeof c->next);
    c->next++;
    return 1;
}

/* One task at a time (a worker asleep on its inbox, the result thread on
 * the results, the caller on the future), then three at once waited for
 * as the first completes and in completion order, then an imap; at the
 * end close and join. */
START_TEST(pool_round_trips)
{
    char name[128];
    site_name(name, sizeof name, "pool", _i);
    mproc_pool *pool;
    TU_OK(mproc_pool_new(&pool, &(mproc_pool_opts){.processes = 2, .context = ctx_of(_i)}));
    long long t0 = mproc_now_ns();
    uint64_t n = 0;
    for (; tu_ms_since(t0) < SYNC_MS; n++) {
        mproc_future *f;
        TU_OK(mproc_pool_apply_async(pool, inc, &n, sizeof n, NULL, &f));
        expect_inc(f, n, name, n);
        mproc_future_free(f);
        if (n % 4 != 3) continue;
        mproc_future *fs[3];
        uint64_t v[3] = {n, n + 1, n + 2};
        for (int k = 0; k < 3; k++)
            TU_OK(mproc_pool_apply_async(pool, inc, &v[k], sizeof v[k], NULL, &fs[k]));
        size_t ndone;
        EXPECT_DONE(mproc_futures_wait(fs, 3, STALL_MS, MPROC_FIRST_COMPLETED, &ndone), name, n);
        ck_assert_uint_ge(ndone, 1);
        mproc_as_completed *it;
        TU_OK(mproc_as_completed_new(&it, fs, 3));
        for (int k = 0; k < 3; k++) {
            mproc_future *f1;
            EXPECT_DONE(mproc_as_completed_next(it, &f1, STALL_MS), name, n);
        }
        mproc_as_completed_free(it);
        for (int k = 0; k < 3; k++) {
            expect_inc(fs[k], v[k], name, n);
            mproc_future_free(fs[k]);
        }
        if (n % 16 != 15) continue;
        counter c = {n, n + 12};
        mproc_imap *im;
        TU_OK(mproc_pool_imap(pool, inc_map, sizeof(uint64_t), sizeof(uint64_t), produce, &c,
                              &(mproc_imap_opts){.max_inflight = 4}, &im));
        for (uint64_t k = n; k < n + 12; k++) {
            uint64_t out;
            EXPECT_DONE(mproc_imap_next(im, &out, NULL, STALL_MS), name, n);
            ck_assert_uint_eq(out, k + 1);
        }
        uint64_t out;
        TU_RC(mproc_imap_next(im, &out, NULL, STALL_MS), MPROC_EEOF);
        mproc_imap_free(im);
    }
    TU_OK(mproc_pool_close(pool));
    EXPECT_DONE(mproc_pool_join(pool, STALL_MS), name, n);
    mproc_pool_free(pool);
    if (getenv("TU_VERBOSE"))
        fprintf(stderr, "%s: %llu round trips\n", name, (unsigned long long)n);
}
END_TEST

/* Bursts of one to four tasks, each burst waited for whole: idle workers
 * asleep on the executor's FIFO (threads) or on their inboxes
 * (processes), the caller on each future in turn. */
static void executor_bursts(mproc_executor *ex, const char *name)
{
    long long t0 = mproc_now_ns();
    uint64_t n = 0;
    for (; tu_ms_since(t0) < SYNC_MS; n++) {
        mproc_future *fs[4];
        uint64_t v[4];
        int k = 1 + (int)(n % 4);
        for (int j = 0; j < k; j++) {
            v[j] = n * 4 + (uint64_t)j;
            TU_OK(mproc_executor_submit(ex, inc, &v[j], sizeof v[j], &fs[j]));
        }
        EXPECT_DONE(mproc_futures_wait(fs, (size_t)k, STALL_MS, MPROC_ALL_COMPLETED, NULL), name,
                    n);
        for (int j = 0; j < k; j++) {
            expect_inc(fs[j], v[j], name, n);
            mproc_future_free(fs[j]);
        }
    }
    TU_OK(mproc_executor_shutdown(ex, true, false));
    mproc_executor_free(ex);
    if (getenv("TU_VERBOSE")) fprintf(stderr, "%s: %llu bursts\n", name, (unsigned long long)n);
}

START_TEST(thread_executor_bursts)
{
    mproc_executor *ex;
    TU_OK(mproc_executor_new_thread(&ex, &(mproc_executor_opts){.max_workers = 3}));
    executor_bursts(ex, "thread executor");
}
END_TEST

START_TEST(process_executor_bursts)
{
    char name[128];
    mproc_executor *ex;
    TU_OK(mproc_executor_new_process(
        &ex, &(mproc_executor_opts){.max_workers = 2, .context = ctx_of(_i)}));
    executor_bursts(ex, site_name(name, sizeof name, "process executor", _i));
}
END_TEST

/* ---- a manager's local channel ------------------------------------------------------ */

#define CHANNEL_SLOW_NS ((long long)MPROC__MGR_LOCAL_SLICE_MS * 900000)

/* Calls on a manager of the family: each a request and a reply through
 * the pair of queues in the arena, the server thread and this thread
 * asleep on them in turn. A lost wake-up there costs a slice. */
START_TEST(manager_local_channel_round_trips)
{
    char name[128];
    site_name(name, sizeof name, "manager local channel", _i);
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_proxy *d;
    TU_OK(mproc_manager_create(m, "dict", NULL, &d));
    long long t0 = mproc_now_ns();
    unsigned slow = 0;
    uint64_t n = 0;
    for (; tu_ms_since(t0) < SYNC_MS; n++) {
        long long c0 = mproc_now_ns();
        size_t len = 99;
        TU_OK(mproc_proxy_len(d, &len));
        ck_assert_uint_eq(len, 0);
        slow += mproc_now_ns() - c0 >= CHANNEL_SLOW_NS;
    }
    mproc_proxy_free(d);
    mproc_manager_free(m);
    ck_assert_msg(slow <= SLOW_MAX, "%s: %u of %llu calls took a slice (%d ms) or more", name, slow,
                  (unsigned long long)n, MPROC__MGR_LOCAL_SLICE_MS);
    if (getenv("TU_VERBOSE")) fprintf(stderr, "%s: %llu calls\n", name, (unsigned long long)n);
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
    tcase_add_loop_test(tc, three_producers_two_consumers_maxsize_2, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, get_wakes_one_or_all_of_three_getters, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, join_waits_for_task_done, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, mproc_wait_on_queues, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, close_wakes_getters_putters_and_pollers, 0, TU_NMETHODS);
    tc = tu_tcase(s, "faults", 60 * TSCALE);
    tcase_add_loop_test(tc, get_killed_before_it_wakes_a_waiting_put, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, put_killed_before_it_wakes_a_waiting_get, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, task_done_killed_before_it_wakes_join, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, close_killed_before_it_wakes_anyone, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, event_set_killed_before_it_wakes, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, condition_notify_killed_before_it_wakes, 0, TU_NMETHODS);
    tc = tu_tcase(s, "sync", 60 * TSCALE);
    tcase_add_loop_test(tc, lock_contended_by_three, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, semaphore_ping_pong_and_one_of_three, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, condition_ping_pong_and_notify_n, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, event_ping_pong_and_three_waiters, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, barrier_of_three, 0, TU_NMETHODS);
    tc = tu_tcase(s, "pool", 60 * TSCALE);
    tcase_add_loop_test(tc, pool_round_trips, 0, TU_NMETHODS);
    tcase_add_test(tc, thread_executor_bursts);
    tcase_add_loop_test(tc, process_executor_bursts, 0, TU_NMETHODS);
    tc = tu_tcase(s, "manager", 60 * TSCALE);
    tcase_add_loop_test(tc, manager_local_channel_round_trips, 0, TU_NMETHODS);
    return tu_run(s);
}
