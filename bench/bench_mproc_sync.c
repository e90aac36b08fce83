/* bench_mproc rows for the shared-memory layer: Lock, shared values,
 * Semaphore/Event wake-ups and the arena allocator. */
#include "bench_mproc.h"

#include <stdlib.h>

/* The children are forked, so they find their work in these globals. */
static long g_n;
static bench_gate *g_gate; /* in the arena */

/* ---- lock.uncontended: acquire+release of a Lock in the arena ---------- */

static int lock_uncontended(long n, double *secs)
{
    mproc_lock *l;
    CHECK(mproc_lock_new(&l));
    int rc = 0;
    double t0 = bench_now();
    for (long i = 0; i < n && rc == 0; i++) {
        rc = mproc_lock_acquire(l, MPROC_FOREVER);
        if (rc == 0) rc = mproc_lock_release(l);
    }
    *secs = bench_now() - t0;
    mproc_lock_free(l);
    CHECK(rc);
    return 0;
}

/* ---- counter.locked.2proc: two children increment a shared int --------- */

static mproc_shared *g_value;

static int incrementer(void *arg)
{
    int who = *(const int *)arg;
    long n = g_n / 2 + (who < g_n % 2); /* the two together do g_n */
    mproc_lock *l = mproc_shared_get_lock(g_value);
    int *x = mproc_shared_ptr(g_value);
    int rc = 0;
    bench_pin_apart(who);
    bench_gate_wait(g_gate);
    for (long i = 0; i < n && rc == 0; i++) {
        rc = mproc_lock_acquire(l, MPROC_FOREVER);
        if (rc == 0) {
            ++*x;
            rc = mproc_lock_release(l);
        }
    }
    g_gate->end[who] = bench_now();
    if (rc != 0) fprintf(stderr, "incrementer: %s\n", mproc_err_name(rc));
    return rc != 0;
}

/* n increments in all; the clock runs from the gate opening until the last
 * child is done. The children run on different CPUs (bench_pin_apart), so
 * that they really contend, unless only one CPU is allowed.
 * lock_mode: MPROC_SHARED_RLOCK is Python's default (an RLock),
 * MPROC_SHARED_LOCK a plain Lock. */
static int counter(long n, double *secs, mproc_shared_lock_mode lock_mode)
{
    mproc_shared_opts opts = {.lock_mode = lock_mode};
    mproc_process *p[2];
    int started = 0, bad = 0;
    g_n = n;
    CHECK(mproc_shared_value_new(&g_value, 'i', NULL, &opts));
    CHECK(mproc_arena_calloc((void **)&g_gate, sizeof *g_gate));
    for (int who = 0; who < 2 && !bad; who++) {
        bad = start_child(&p[who], incrementer, &who, sizeof who) != 0;
        started += !bad;
    }
    if (bad) atomic_store(&g_gate->go, 1);
    double t0 = bench_gate_open(g_gate, started);
    for (int i = 0; i < started; i++) bad |= join_free(p[i], false) != 0;
    *secs = bench_gate_last_end(g_gate, started) - t0;
    int x = *(int *)mproc_shared_ptr(g_value);
    mproc_shared_free(g_value);
    mproc_arena_free(g_gate);
    if (!bad && x != n) {
        fprintf(stderr, "counter: %d increments, %ld expected\n", x, n);
        bad = 1;
    }
    return bad ? -1 : 0;
}

/* counter.locked.2proc uses a plain Lock (opts.lock_mode =
 * MPROC_SHARED_LOCK), what a C program would choose; .rlock uses the
 * default RLock, as Python's Value('i') does (Python's figure is that one
 * in both rows). */
static int counter_lock(long n, double *s)
{
    return counter(n, s, MPROC_SHARED_LOCK);
}
static int counter_rlock(long n, double *s)
{
    return counter(n, s, MPROC_SHARED_RLOCK);
}

/* ---- wake.pingpong: round trips between parent and child --------------- */

/* wake.pingpong uses two Semaphores (value 0): the parent releases s1 and
 * acquires s2, the child acquires s1 and releases s2. Semaphores are the
 * plain wake-up primitive and by far the faster pair in Python (Event there
 * is a Condition over a Lock and Semaphores); in mproc the two pairs are
 * within 10% of each other. wake.pingpong.event does the same with two
 * Events: the parent sets e1 and waits e2, the child waits e1, clears it and
 * sets e2, then the parent clears e2 (each side clears what it waited for
 * before it signals again, so no set is lost or seen twice). */
static mproc_sem *g_s1, *g_s2;
static mproc_event *g_e1, *g_e2;

static int sem_round(mproc_sem *give, mproc_sem *take)
{
    int rc = mproc_sem_release(give);
    return rc ? rc : mproc_sem_acquire(take, MPROC_FOREVER);
}

static int event_round(mproc_event *give, mproc_event *take)
{
    int rc = mproc_event_set(give);
    if (rc == 0) rc = mproc_event_wait(take, MPROC_FOREVER);
    return rc ? rc : mproc_event_clear(take);
}

static int sem_ponger(void *arg)
{
    (void)arg;
    bench_pin_apart(1);
    int rc = mproc_sem_acquire(g_s1, MPROC_FOREVER);
    for (long i = 0; i < g_n && rc == 0; i++) rc = sem_round(g_s2, g_s1);
    if (rc == 0) rc = mproc_sem_release(g_s2);
    if (rc != 0) fprintf(stderr, "sem_ponger: %s\n", mproc_err_name(rc));
    return rc != 0;
}

static int event_ponger(void *arg)
{
    (void)arg;
    bench_pin_apart(1);
    int rc = mproc_event_wait(g_e1, MPROC_FOREVER);
    if (rc == 0) rc = mproc_event_clear(g_e1);
    for (long i = 0; i < g_n && rc == 0; i++) rc = event_round(g_e2, g_e1);
    if (rc == 0) rc = mproc_event_set(g_e2);
    if (rc != 0) fprintf(stderr, "event_ponger: %s\n", mproc_err_name(rc));
    return rc != 0;
}

/* One warm-up round trip, then n timed ones; the child answers n + 1. The
 * two sides run on different CPUs unless only one is allowed. */
static int wake_pingpong(long n, double *secs, bool events)
{
    mproc_process *p;
    int rc = 0;
    g_n = n;
    if (events) {
        CHECK(mproc_event_new(&g_e1));
        CHECK(mproc_event_new(&g_e2));
    } else {
        CHECK(mproc_sem_new(&g_s1, 0));
        CHECK(mproc_sem_new(&g_s2, 0));
    }
    if (start_child(&p, events ? event_ponger : sem_ponger, NULL, 0) != 0) return -1;
    bench_pin_apart(0);
    double t0 = 0;
    for (long i = -1; i < n && rc == 0; i++) {
        if (i == 0) t0 = bench_now();
        rc = events ? event_round(g_e1, g_e2) : sem_round(g_s1, g_s2);
    }
    *secs = bench_now() - t0;
    int bad = join_free(p, rc != 0);
    if (events) {
        mproc_event_free(g_e1);
        mproc_event_free(g_e2);
    } else {
        mproc_sem_free(g_s1);
        mproc_sem_free(g_s2);
    }
    CHECK(rc);
    return bad;
}

static int wake_sem(long n, double *s)
{
    return wake_pingpong(n, s, false);
}
static int wake_event(long n, double *s)
{
    return wake_pingpong(n, s, true);
}

/* ---- arena.alloc_free.64B: the arena allocator, one process ------------ */

static int alloc_free(long n, double *secs)
{
    int rc = 0;
    double t0 = bench_now();
    for (long i = 0; i < n && rc == 0; i++) {
        void *p;
        rc = mproc_arena_alloc(&p, 64);
        if (rc == 0) rc = mproc_arena_free(p);
    }
    *secs = bench_now() - t0;
    CHECK(rc);
    return 0;
}

/* .batch: 1000 blocks allocated, then all freed (oldest first); the figure
 * is per alloc+free pair. */
#define BATCH 1000

static int alloc_free_batch(long n, double *secs)
{
    void *p[BATCH];
    int rc = 0;
    double t0 = bench_now();
    for (long done = 0; done < n && rc == 0; done += BATCH) {
        long k = n - done < BATCH ? n - done : BATCH, got;
        for (got = 0; got < k; got++)
            if ((rc = mproc_arena_alloc(&p[got], 64)) != 0) break;
        for (long i = 0; i < got; i++) {
            int frc = mproc_arena_free(p[i]);
            rc = rc ? rc : frc;
        }
    }
    *secs = bench_now() - t0;
    CHECK(rc);
    return 0;
}

static const bench_row rows[] = {
    {"lock.uncontended", lock_uncontended, BENCH_NS, 0},
    {"counter.locked.2proc", counter_lock, BENCH_PER_S, 0},
    {"counter.locked.2proc.rlock", counter_rlock, BENCH_PER_S, 0},
    {"wake.pingpong", wake_sem, BENCH_US, 0},
    {"wake.pingpong.event", wake_event, BENCH_US, 0},
    {"arena.alloc_free.64B", alloc_free, BENCH_NS, 0},
    {"arena.alloc_free.64B.batch", alloc_free_batch, BENCH_NS, 0},
};

const bench_table bench_mproc_sync = BENCH_TABLE(rows);
