/* Semaphore, BoundedSemaphore, Event, Condition and Barrier: semantics,
 * timeouts, contention between processes and threads, dead processes, and
 * misuse. Shared state lives in the arena so that children share it; every
 * multi-process test runs under each start method (the loop index _i).
 * Children report through their exit codes only. */
#include "testutil.h"

#include "sync/cond.h"
#include "sync/sync.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

/* ---- helpers ------------------------------------------------------------- */

/* What a child gets: the shared block and its number. */
typedef struct targ {
    void *sh;
    int id;
} targ;

static mproc_process *start(mproc_target_fn fn, void *sh, int id, mproc_start_method m)
{
    targ a;
    /* Zeroed first: its padding goes to the child too (see start() in test_wakeups.c). */
    memset(&a, 0, sizeof a);
    a.sh = sh;
    a.id = id;
    mproc_process *p;
    TU_OK(mproc_process_new(&p, fn, &a, sizeof a, &(mproc_process_opts){.start_method = m}));
    TU_OK(mproc_process_start(p));
    return p;
}

/* Joins and frees p, returning its exit code. */
static int finish(mproc_process *p)
{
    TU_OK(mproc_process_join(p, 30000));
    int code = -1000;
    TU_OK(mproc_process_exitcode(p, &code));
    TU_OK(mproc_process_free(p));
    return code;
}

static int kill_and_finish(mproc_process *p)
{
    TU_OK(mproc_process_kill(p));
    return finish(p);
}

static void *shm_zalloc(size_t n)
{
    void *p;
    TU_OK(mproc_arena_calloc(&p, n));
    return p;
}

/* Parent side: waits (polling, generously) until expr holds. */
#define POLL_UNTIL(expr)                                                                           \
    do {                                                                                           \
        long long end_ = mproc_now_ns() + 10000000000LL;                                           \
        while (!(expr)) {                                                                          \
            ck_assert_msg(mproc_now_ns() < end_, "timed out waiting for %s", #expr);               \
            tu_sleep_ms(1);                                                                        \
        }                                                                                          \
    } while (0)

/* Child side: the same, returning `code` from the child on timeout. */
#define CHILD_POLL_UNTIL(expr, code)                                                               \
    do {                                                                                           \
        long long end_ = mproc_now_ns() + 10000000000LL;                                           \
        while (!(expr)) {                                                                          \
            if (mproc_now_ns() >= end_) return (code);                                             \
            tu_sleep_ms(1);                                                                        \
        }                                                                                          \
    } while (0)

/* The state letter of process pid ('R', 'S', ...), '?' if unknown. */
static char proc_state(pid_t pid)
{
    char buf[512];
    const char *rest = tu_proc_stat(pid, buf, sizeof buf);
    return rest ? rest[0] : '?';
}

/* Waits until the (single-threaded) child p sleeps: used only after it
 * announced that it is about to block, so it is then blocked there. */
static void wait_asleep(mproc_process *p)
{
    POLL_UNTIL(proc_state(mproc_process_pid(p)) == 'S');
}

/* ---- Semaphore ----------------------------------------------------------- */

START_TEST(sem_counts_and_timeouts)
{
    mproc_sem *s;
    TU_OK(mproc_sem_new(&s, 2));
    unsigned v = 99;
    TU_OK(mproc_sem_get_value(s, &v));
    ck_assert_uint_eq(v, 2);
    TU_OK(mproc_sem_acquire(s, 0));
    TU_OK(mproc_sem_acquire(s, MPROC_FOREVER));
    TU_RC(mproc_sem_acquire(s, 0), MPROC_ETIMEDOUT);
    long long t0 = mproc_now_ns();
    TU_RC(mproc_sem_acquire(s, 120), MPROC_ETIMEDOUT);
    long long dt = tu_ms_since(t0);
    ck_assert_msg(dt >= 120 && dt < 2000, "waited %lld ms", dt);
    TU_OK(mproc_sem_get_value(s, &v));
    ck_assert_uint_eq(v, 0);
    for (int k = 0; k < 3; k++) TU_OK(mproc_sem_release(s)); /* unbounded: above 2 */
    TU_OK(mproc_sem_get_value(s, &v));
    ck_assert_uint_eq(v, 3);
    TU_OK(mproc_sem_acquire(s, 50));
    TU_OK(mproc_sem_get_value(s, &v));
    ck_assert_uint_eq(v, 2);
    mproc_sem_free(s);

    mproc_sem *m;
    TU_OK(mproc_arena_alloc((void **)&m, sizeof *m));
    TU_OK(mproc_sem_init(m, INT32_MAX));
    TU_RC(mproc_sem_release(m), MPROC_EOVERFLOW);
    TU_OK(mproc_sem_get_value(m, &v));
    ck_assert_uint_eq(v, INT32_MAX);
    mproc_sem_fini(m);
    TU_RC(mproc_sem_init(m, (unsigned)INT32_MAX + 1), MPROC_EINVAL);
    TU_OK(mproc_sem_init(m, 0));
    TU_RC(mproc_sem_acquire(m, 0), MPROC_ETIMEDOUT);
    mproc_sem_fini(m);
    TU_OK(mproc_arena_free(m));
}
END_TEST

START_TEST(bounded_sem_refuses_over_release)
{
    mproc_sem *s;
    TU_OK(mproc_bounded_sem_new(&s, 2));
    unsigned v;
    TU_RC(mproc_sem_release(s), MPROC_EOVERFLOW);
    TU_OK(mproc_sem_get_value(s, &v));
    ck_assert_uint_eq(v, 2);
    TU_OK(mproc_sem_acquire(s, 0));
    TU_OK(mproc_sem_acquire(s, 0));
    TU_OK(mproc_sem_release(s));
    TU_OK(mproc_sem_release(s));
    TU_RC(mproc_sem_release(s), MPROC_EOVERFLOW);
    TU_OK(mproc_sem_get_value(s, &v));
    ck_assert_uint_eq(v, 2);
    mproc_sem_free(s);

    mproc_sem *z;
    TU_OK(mproc_arena_alloc((void **)&z, sizeof *z));
    TU_OK(mproc_bounded_sem_init(z, 0));
    TU_RC(mproc_sem_release(z), MPROC_EOVERFLOW);
    TU_OK(mproc_sem_get_value(z, &v));
    ck_assert_uint_eq(v, 0);
    mproc_sem_fini(z);
    TU_OK(mproc_arena_free(z));
}
END_TEST

#define SEM_ITERS   3000
#define SEM_PROCS   4
#define SEM_THREADS 2

typedef struct sem_shared {
    mproc_sem sem;
    _Atomic int inside;
    _Atomic int violations;
    _Atomic int flag;
    long counter; /* guarded by the semaphore only */
    long long woke_ns;
} sem_shared;

static void *sem_worker(void *arg)
{
    sem_shared *s = arg;
    for (int i = 0; i < SEM_ITERS; i++) {
        if (mproc_sem_acquire(&s->sem, 20000)) return (void *)1;
        if (atomic_fetch_add(&s->inside, 1) != 0) atomic_fetch_add(&s->violations, 1);
        long c = s->counter;
        if ((i & 63) == 0) sched_yield(); /* widen the window */
        s->counter = c + 1;
        atomic_fetch_sub(&s->inside, 1);
        if (mproc_sem_release(&s->sem)) return (void *)2;
    }
    return NULL;
}

static int sem_contender(void *arg)
{
    sem_shared *s = ((targ *)arg)->sh;
    pthread_t t[SEM_THREADS];
    for (int k = 0; k < SEM_THREADS; k++)
        if (pthread_create(&t[k], NULL, sem_worker, s)) return 10;
    int rc = 0;
    for (int k = 0; k < SEM_THREADS; k++) {
        void *r;
        pthread_join(t[k], &r);
        if (r) rc = (int)(intptr_t)r;
    }
    return rc;
}

START_TEST(sem_mutual_exclusion_between_processes_and_threads)
{
    sem_shared *s = shm_zalloc(sizeof *s);
    TU_OK(mproc_sem_init(&s->sem, 1));
    mproc_process *p[SEM_PROCS];
    for (int k = 0; k < SEM_PROCS; k++) p[k] = start(sem_contender, s, k, tu_methods[_i]);
    for (int k = 0; k < SEM_PROCS; k++) ck_assert_int_eq(finish(p[k]), 0);
    int violations = atomic_load(&s->violations);
    ck_assert_int_eq(violations, 0);
    ck_assert_int_eq(s->counter, (long)SEM_PROCS * SEM_THREADS * SEM_ITERS);
    unsigned v;
    TU_OK(mproc_sem_get_value(&s->sem, &v));
    ck_assert_uint_eq(v, 1);
    mproc_sem_fini(&s->sem);
    mproc_arena_free(s);
}
END_TEST

static int sem_waiter(void *arg)
{
    sem_shared *s = ((targ *)arg)->sh;
    atomic_store(&s->flag, 1);
    if (mproc_sem_acquire(&s->sem, 20000)) return 1;
    s->woke_ns = mproc_now_ns();
    return 0;
}

START_TEST(sem_release_wakes_a_waiting_process)
{
    sem_shared *s = shm_zalloc(sizeof *s);
    TU_OK(mproc_sem_init(&s->sem, 0));
    mproc_process *p = start(sem_waiter, s, 0, tu_methods[_i]);
    POLL_UNTIL(atomic_load(&s->flag));
    wait_asleep(p); /* so that the wake-up is what we time */
    long long t0 = mproc_now_ns();
    TU_OK(mproc_sem_release(&s->sem));
    ck_assert_int_eq(finish(p), 0);
    /* Woken by the release, not by a periodic re-check (every second). */
    ck_assert_msg(s->woke_ns - t0 < 500000000LL, "woke after %lld ms", (s->woke_ns - t0) / 1000000);
    unsigned v;
    TU_OK(mproc_sem_get_value(&s->sem, &v));
    ck_assert_uint_eq(v, 0);
    mproc_sem_fini(&s->sem);
    mproc_arena_free(s);
}
END_TEST

static int sem_holder(void *arg)
{
    sem_shared *s = ((targ *)arg)->sh;
    if (mproc_sem_acquire(&s->sem, 0)) return 1;
    atomic_store(&s->flag, 1);
    tu_sleep_ms(30000);
    return 0;
}

static int sem_times_out(void *arg)
{
    sem_shared *s = ((targ *)arg)->sh;
    return mproc_sem_acquire(&s->sem, 200) == MPROC_ETIMEDOUT ? 0 : 1;
}

START_TEST(sem_holder_killed_never_releases)
{
    sem_shared *s = shm_zalloc(sizeof *s);
    TU_OK(mproc_bounded_sem_init(&s->sem, 1));
    mproc_process *h = start(sem_holder, s, 0, tu_methods[_i]);
    POLL_UNTIL(atomic_load(&s->flag));
    ck_assert_int_eq(kill_and_finish(h), -SIGKILL);
    unsigned v;
    TU_OK(mproc_sem_get_value(&s->sem, &v));
    ck_assert_uint_eq(v, 0);
    /* Others time out cleanly, in another process and here. */
    mproc_process *w = start(sem_times_out, s, 1, tu_methods[_i]);
    long long t0 = mproc_now_ns();
    TU_RC(mproc_sem_acquire(&s->sem, 100), MPROC_ETIMEDOUT);
    ck_assert(tu_ms_since(t0) >= 100);
    ck_assert_int_eq(finish(w), 0);
    /* The unit can be given back by someone else. */
    TU_OK(mproc_sem_release(&s->sem));
    TU_OK(mproc_sem_acquire(&s->sem, 0));
    mproc_sem_fini(&s->sem);
    mproc_arena_free(s);
}
END_TEST

/* ---- Event --------------------------------------------------------------- */

START_TEST(event_set_clear_wait)
{
    mproc_event *e;
    TU_OK(mproc_event_new(&e));
    ck_assert(!mproc_event_is_set(e));
    TU_RC(mproc_event_wait(e, 0), MPROC_ETIMEDOUT);
    long long t0 = mproc_now_ns();
    TU_RC(mproc_event_wait(e, 80), MPROC_ETIMEDOUT);
    long long dt = tu_ms_since(t0);
    ck_assert_msg(dt >= 80 && dt < 2000, "waited %lld ms", dt);
    TU_OK(mproc_event_set(e));
    ck_assert(mproc_event_is_set(e));
    TU_OK(mproc_event_set(e)); /* again: still set */
    ck_assert(mproc_event_is_set(e));
    TU_OK(mproc_event_wait(e, 0));
    TU_OK(mproc_event_wait(e, MPROC_FOREVER));
    TU_OK(mproc_event_clear(e));
    ck_assert(!mproc_event_is_set(e));
    TU_OK(mproc_event_clear(e));
    TU_RC(mproc_event_wait(e, 10), MPROC_ETIMEDOUT);
    mproc_event_free(e);
}
END_TEST

#define EV_PROCS 5

typedef struct event_shared {
    mproc_event ev;
    _Atomic int arrived;
} event_shared;

static int event_waiter(void *arg)
{
    event_shared *s = ((targ *)arg)->sh;
    atomic_fetch_add(&s->arrived, 1);
    if (mproc_event_wait(&s->ev, 20000)) return 1;
    return mproc_event_is_set(&s->ev) ? 0 : 2;
}

/* Exit 0 when its wait returns 0, whatever the flag is by then. */
static int event_waiter_any(void *arg)
{
    event_shared *s = ((targ *)arg)->sh;
    atomic_fetch_add(&s->arrived, 1);
    return mproc_event_wait(&s->ev, 5000) ? 1 : 0;
}

static void *event_thread(void *arg)
{
    event_shared *s = arg;
    atomic_fetch_add(&s->arrived, 1);
    return (void *)(intptr_t)mproc_event_wait(&s->ev, 20000);
}

START_TEST(event_set_releases_every_waiting_process)
{
    event_shared *s = shm_zalloc(sizeof *s);
    TU_OK(mproc_event_init(&s->ev));
    mproc_process *p[EV_PROCS];
    for (int k = 0; k < EV_PROCS; k++) p[k] = start(event_waiter, s, k, tu_methods[_i]);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, event_thread, s), 0);
    POLL_UNTIL(atomic_load(&s->arrived) == EV_PROCS + 1);
    tu_sleep_ms(20); /* most are asleep by now; either way they must pass */
    long long t0 = mproc_now_ns();
    TU_OK(mproc_event_set(&s->ev));
    for (int k = 0; k < EV_PROCS; k++) ck_assert_int_eq(finish(p[k]), 0);
    void *r;
    pthread_join(t, &r);
    ck_assert_ptr_null(r);
    ck_assert(tu_ms_since(t0) < 5000);
    /* A late waiter passes at once. */
    p[0] = start(event_waiter, s, 0, tu_methods[_i]);
    ck_assert_int_eq(finish(p[0]), 0);
    mproc_event_fini(&s->ev);
    mproc_arena_free(s);
}
END_TEST

START_TEST(event_set_then_clear_still_releases_sleepers)
{
    event_shared *s = shm_zalloc(sizeof *s);
    TU_OK(mproc_event_init(&s->ev));
    mproc_process *p = start(event_waiter_any, s, 0, tu_methods[_i]);
    POLL_UNTIL(atomic_load(&s->arrived) == 1);
    wait_asleep(p);
    /* As in Python, set() releases those waiting even if the flag is
     * cleared again before they run. */
    TU_OK(mproc_event_set(&s->ev));
    TU_OK(mproc_event_clear(&s->ev));
    ck_assert_int_eq(finish(p), 0);
    ck_assert(!mproc_event_is_set(&s->ev));
    mproc_event_fini(&s->ev);
    mproc_arena_free(s);
}
END_TEST

/* ---- Condition ----------------------------------------------------------- */

static bool is_true(void *arg)
{
    return *(bool *)arg;
}

START_TEST(cond_ownership_and_timeouts)
{
    mproc_lock *l;
    TU_OK(mproc_lock_new(&l));
    mproc_cond *c;
    TU_OK(mproc_cond_new(&c, l));
    ck_assert_ptr_eq(mproc_cond_lock(c), l);
    bool f = false, t = true;
    TU_RC(mproc_cond_wait(c, 0), MPROC_EPERM);
    TU_RC(mproc_cond_wait_for(c, is_true, &t, 0), MPROC_EPERM);
    TU_RC(mproc_cond_notify(c, 1), MPROC_EPERM);
    TU_RC(mproc_cond_notify_all(c), MPROC_EPERM);
    TU_RC(mproc_cond_release(c), MPROC_EPERM);

    TU_OK(mproc_cond_acquire(c, MPROC_FOREVER));
    TU_OK(mproc_cond_notify(c, 1)); /* nobody waits: nothing happens */
    TU_OK(mproc_cond_notify_all(c));
    TU_RC(mproc_cond_wait(c, 0), MPROC_ETIMEDOUT);
    ck_assert(mproc__lock_held(l));
    long long t0 = mproc_now_ns();
    TU_RC(mproc_cond_wait(c, 100), MPROC_ETIMEDOUT);
    long long dt = tu_ms_since(t0);
    ck_assert_msg(dt >= 100 && dt < 2000, "waited %lld ms", dt);
    ck_assert(mproc__lock_held(l));
    TU_RC(mproc_cond_wait(c, -2), MPROC_EINVAL);
    TU_OK(mproc_cond_wait_for(c, is_true, &t, 0));
    TU_OK(mproc_cond_wait_for(c, is_true, &t, MPROC_FOREVER));
    t0 = mproc_now_ns();
    TU_RC(mproc_cond_wait_for(c, is_true, &f, 60), MPROC_ETIMEDOUT);
    ck_assert(tu_ms_since(t0) >= 60);
    ck_assert(mproc__lock_held(l));
    TU_RC(mproc_cond_wait_for(c, NULL, NULL, 0), MPROC_EINVAL);
    ck_assert_int_eq(mproc__cond_n_waiters(c), 0);
    TU_OK(mproc_cond_release(c));
    ck_assert(!mproc__lock_held(l));
    mproc_cond_free(c);
    mproc_lock_free(l);
}
END_TEST

typedef struct rl_shared {
    mproc_cond cond;
    mproc_lock rlock;
    _Atomic int waiting;
    bool flag;
} rl_shared;

static void *rl_notifier(void *arg)
{
    rl_shared *s = arg;
    while (!atomic_load(&s->waiting)) tu_sleep_ms(1);
    /* Succeeds only if the waiter released the RLock completely. */
    if (mproc_cond_acquire(&s->cond, 10000)) return (void *)1;
    s->flag = true;
    int rc = mproc_cond_notify(&s->cond, 1);
    mproc_cond_release(&s->cond);
    return (void *)(intptr_t)(rc ? 2 : 0);
}

START_TEST(cond_with_rlock_held_recursively)
{
    rl_shared *s = shm_zalloc(sizeof *s);
    /* Its own RLock. */
    TU_OK(mproc_cond_init(&s->cond, NULL));
    ck_assert(mproc_lock_is_recursive(mproc_cond_lock(&s->cond)));
    for (int k = 0; k < 3; k++) TU_OK(mproc_cond_acquire(&s->cond, 0));
    TU_RC(mproc_cond_wait(&s->cond, 20), MPROC_ETIMEDOUT);
    for (int k = 0; k < 3; k++) TU_OK(mproc_cond_release(&s->cond));
    TU_RC(mproc_cond_release(&s->cond), MPROC_EPERM);
    mproc_cond_fini(&s->cond);
    mproc_cond_fini(&s->cond); /* twice: harmless */

    /* A given RLock, held twice, notified by another thread. */
    TU_OK(mproc_rlock_init(&s->rlock));
    TU_OK(mproc_cond_init(&s->cond, &s->rlock));
    TU_OK(mproc_lock_acquire(&s->rlock, 0));
    TU_OK(mproc_lock_acquire(&s->rlock, 0));
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, rl_notifier, s), 0);
    atomic_store(&s->waiting, 1); /* the notifier needs the lock: we hold it until wait */
    TU_OK(mproc_cond_wait_for(&s->cond, is_true, &s->flag, 10000));
    void *r;
    pthread_join(t, &r);
    ck_assert_ptr_null(r);
    TU_OK(mproc_lock_release(&s->rlock));
    TU_OK(mproc_lock_release(&s->rlock));
    TU_RC(mproc_lock_release(&s->rlock), MPROC_EPERM);
    mproc_cond_fini(&s->cond);
    mproc_lock_fini(&s->rlock);
    mproc_arena_free(s);
}
END_TEST

#define PC_ITEMS 1500
#define PC_CAP   4

typedef struct pc_shared {
    mproc_lock lock;
    mproc_cond not_empty, not_full; /* two conditions over one lock */
    int buf[PC_CAP];
    int head, count;
    long sums[2];
} pc_shared;

static int producer(void *arg)
{
    pc_shared *s = ((targ *)arg)->sh;
    for (int v = 1; v <= PC_ITEMS; v++) {
        if (mproc_lock_acquire(&s->lock, 10000)) return 1;
        while (s->count == PC_CAP)
            if (mproc_cond_wait(&s->not_full, 10000)) return 2;
        s->buf[(s->head + s->count) % PC_CAP] = v;
        s->count++;
        if (mproc_cond_notify(&s->not_empty, 1)) return 3;
        mproc_lock_release(&s->lock);
    }
    return 0;
}

static int consumer(void *arg)
{
    targ *a = arg;
    pc_shared *s = a->sh;
    long sum = 0;
    for (int k = 0; k < PC_ITEMS; k++) {
        if (mproc_lock_acquire(&s->lock, 10000)) return 1;
        while (s->count == 0)
            if (mproc_cond_wait(&s->not_empty, 10000)) return 2;
        sum += s->buf[s->head];
        s->head = (s->head + 1) % PC_CAP;
        s->count--;
        if (mproc_cond_notify(&s->not_full, 1)) return 3;
        mproc_lock_release(&s->lock);
    }
    s->sums[a->id] = sum;
    return 0;
}

START_TEST(cond_producers_and_consumers)
{
    pc_shared *s = shm_zalloc(sizeof *s);
    TU_OK(mproc_lock_init(&s->lock));
    TU_OK(mproc_cond_init(&s->not_empty, &s->lock));
    TU_OK(mproc_cond_init(&s->not_full, &s->lock));
    mproc_process *p[4];
    p[0] = start(consumer, s, 0, tu_methods[_i]);
    p[1] = start(consumer, s, 1, tu_methods[_i]);
    p[2] = start(producer, s, 0, tu_methods[_i]);
    p[3] = start(producer, s, 1, tu_methods[_i]);
    for (int k = 0; k < 4; k++) ck_assert_int_eq(finish(p[k]), 0);
    ck_assert_int_eq(s->sums[0] + s->sums[1], 2L * PC_ITEMS * (PC_ITEMS + 1) / 2);
    ck_assert_int_eq(s->count, 0);
    TU_OK(mproc_lock_acquire(&s->lock, 0));
    ck_assert_int_eq(mproc__cond_n_waiters(&s->not_empty), 0);
    ck_assert_int_eq(mproc__cond_n_waiters(&s->not_full), 0);
    TU_OK(mproc_lock_release(&s->lock));
    mproc_cond_fini(&s->not_empty);
    mproc_cond_fini(&s->not_full);
    mproc_lock_fini(&s->lock);
    mproc_arena_free(s);
}
END_TEST

#define NW 4

typedef struct nt_shared {
    mproc_lock lock;
    mproc_cond cond;
    _Atomic int ready; /* waiters that entered wait (incremented under the lock) */
    _Atomic int woken; /* waiters that returned */
    int order[NW];     /* ids in the order they returned */
    int crash_point;   /* for the crash tests */
    int timeout_ms;    /* waiters' timeout; 0 means 20 s */
} nt_shared;

/* Waits its turn (so waiters queue in id order), then waits on the
 * condition; records its wake-up. Exit 0 when notified. */
static int cond_waiter(void *arg)
{
    targ *a = arg;
    nt_shared *s = a->sh;
    CHILD_POLL_UNTIL(atomic_load(&s->ready) == a->id, 20);
    if (mproc_lock_acquire(&s->lock, 10000)) return 21;
    atomic_fetch_add(&s->ready, 1);
    int rc = mproc_cond_wait(&s->cond, s->timeout_ms ? s->timeout_ms : 20000);
    if (rc == MPROC_EOWNERDEAD) {
        if (mproc_lock_make_consistent(&s->lock)) return 22;
        rc = 0;
    }
    if (!mproc__lock_held(&s->lock)) return 23;
    s->order[atomic_fetch_add(&s->woken, 1)] = a->id;
    mproc_lock_release(&s->lock);
    return rc == 0 ? 0 : rc == MPROC_ETIMEDOUT ? 24 : 25;
}

static nt_shared *nt_new(void)
{
    nt_shared *s = shm_zalloc(sizeof *s);
    TU_OK(mproc_lock_init(&s->lock));
    TU_OK(mproc_cond_init(&s->cond, &s->lock));
    return s;
}

static void nt_free(nt_shared *s)
{
    mproc_cond_fini(&s->cond);
    mproc_lock_fini(&s->lock);
    mproc_arena_free(s);
}

static int n_waiters(nt_shared *s)
{
    TU_OK(mproc_lock_acquire(&s->lock, 10000));
    int n = mproc__cond_n_waiters(&s->cond);
    TU_OK(mproc_lock_release(&s->lock));
    return n;
}

/* Starts n waiters (ids first .. first+n-1) and waits until all wait. */
static void start_waiters(nt_shared *s, mproc_process **p, int first, int n, int method)
{
    for (int k = first; k < first + n; k++) p[k] = start(cond_waiter, s, k, method);
    POLL_UNTIL(atomic_load(&s->ready) == first + n);
}

static void notify(nt_shared *s, unsigned n)
{
    TU_OK(mproc_lock_acquire(&s->lock, 10000));
    TU_OK(mproc_cond_notify(&s->cond, n));
    TU_OK(mproc_lock_release(&s->lock));
}

START_TEST(cond_notify_wakes_exactly_n)
{
    nt_shared *s = nt_new();
    mproc_process *p[NW];
    start_waiters(s, p, 0, 3, tu_methods[_i]);
    ck_assert_int_eq(n_waiters(s), 3);
    notify(s, 1);
    ck_assert_int_eq(n_waiters(s), 2);
    POLL_UNTIL(atomic_load(&s->woken) == 1);
    tu_sleep_ms(150); /* room for a wrong extra wake-up to show */
    ck_assert_int_eq(atomic_load(&s->woken), 1);
    ck_assert_int_eq(s->order[0], 0);
    notify(s, 2);
    ck_assert_int_eq(n_waiters(s), 0);
    POLL_UNTIL(atomic_load(&s->woken) == 3);
    for (int k = 0; k < 3; k++) ck_assert_int_eq(finish(p[k]), 0);

    /* notify(2) of three, then notify_all. */
    atomic_store(&s->ready, 0);
    atomic_store(&s->woken, 0);
    start_waiters(s, p, 0, 3, tu_methods[_i]);
    notify(s, 2);
    ck_assert_int_eq(n_waiters(s), 1);
    POLL_UNTIL(atomic_load(&s->woken) == 2);
    tu_sleep_ms(150);
    ck_assert_int_eq(atomic_load(&s->woken), 2);
    TU_OK(mproc_lock_acquire(&s->lock, 10000));
    TU_OK(mproc_cond_notify_all(&s->cond));
    ck_assert_int_eq(mproc__cond_n_waiters(&s->cond), 0);
    TU_OK(mproc_lock_release(&s->lock));
    POLL_UNTIL(atomic_load(&s->woken) == 3);
    for (int k = 0; k < 3; k++) ck_assert_int_eq(finish(p[k]), 0);
    nt_free(s);
}
END_TEST

START_TEST(cond_notify_is_fifo)
{
    nt_shared *s = nt_new();
    mproc_process *p[NW];
    start_waiters(s, p, 0, NW, tu_methods[_i]);
    for (int k = 0; k < NW; k++) {
        notify(s, 1);
        POLL_UNTIL(atomic_load(&s->woken) == k + 1);
        ck_assert_int_eq(s->order[k], k);
    }
    for (int k = 0; k < NW; k++) ck_assert_int_eq(finish(p[k]), 0);
    nt_free(s);
}
END_TEST

START_TEST(cond_timed_out_waiter_leaves_the_queue)
{
    nt_shared *s = nt_new();
    s->timeout_ms = 100;
    mproc_process *p[NW];
    start_waiters(s, p, 0, 1, tu_methods[_i]);
    ck_assert_int_eq(finish(p[0]), 24); /* timed out */
    ck_assert_int_eq(n_waiters(s), 0);
    /* A later notify goes to the live waiter, not to the one that left. */
    s->timeout_ms = 0;
    start_waiters(s, p, 1, 1, tu_methods[_i]);
    notify(s, 1);
    ck_assert_int_eq(finish(p[1]), 0);
    nt_free(s);
}
END_TEST

START_TEST(cond_killed_waiter_does_not_eat_a_notification)
{
    nt_shared *s = nt_new();
    mproc_process *p[NW];
    start_waiters(s, p, 0, 2, tu_methods[_i]);
    ck_assert_int_eq(kill_and_finish(p[0]), -SIGKILL); /* the longest waiting */
    ck_assert_int_eq(n_waiters(s), 2);                 /* its node is still queued */
    notify(s, 1);
    ck_assert_int_eq(n_waiters(s), 0); /* dropped, and the live one notified */
    ck_assert_int_eq(finish(p[1]), 0);
    ck_assert_int_eq(s->order[0], 1);
    nt_free(s);
}
END_TEST

typedef struct wf_shared {
    mproc_cond cond;
    int value;
} wf_shared;

static bool reached_5(void *arg)
{
    return ((wf_shared *)arg)->value >= 5;
}

static int stepper(void *arg)
{
    wf_shared *s = ((targ *)arg)->sh;
    for (int k = 0; k < 5; k++) {
        if (mproc_cond_acquire(&s->cond, 10000)) return 1;
        s->value++;
        if (mproc_cond_notify_all(&s->cond)) return 2;
        mproc_cond_release(&s->cond);
        tu_sleep_ms(5);
    }
    return 0;
}

START_TEST(cond_wait_for_predicate_across_processes)
{
    wf_shared *s = shm_zalloc(sizeof *s);
    TU_OK(mproc_cond_init(&s->cond, NULL));
    TU_OK(mproc_cond_acquire(&s->cond, 0));
    mproc_process *p = start(stepper, s, 0, tu_methods[_i]);
    TU_OK(mproc_cond_wait_for(&s->cond, reached_5, s, 10000));
    ck_assert_int_eq(s->value, 5);
    TU_OK(mproc_cond_release(&s->cond));
    ck_assert_int_eq(finish(p), 0);
    mproc_cond_fini(&s->cond);
    mproc_arena_free(s);
}
END_TEST

/* A child that dies holding the condition's lock in the middle of a list
 * update (see sync/cond.h). */
static int crasher(void *arg)
{
    nt_shared *s = ((targ *)arg)->sh;
    mproc__cond_crash_at = (mproc__cond_crash_point)s->crash_point;
    if (mproc_lock_acquire(&s->lock, 10000)) return 1;
    if (s->crash_point == MPROC__COND_CRASH_NOTIFY_MARKED)
        mproc_cond_notify(&s->cond, 1);
    else
        mproc_cond_wait(&s->cond, 10);
    return 2; /* should have died */
}

static void recover_lock(nt_shared *s)
{
    TU_RC(mproc_lock_acquire(&s->lock, 10000), MPROC_EOWNERDEAD);
    TU_OK(mproc_lock_make_consistent(&s->lock));
    TU_OK(mproc_lock_release(&s->lock));
}

START_TEST(cond_repairs_after_death_mid_append)
{
    nt_shared *s = nt_new();
    mproc_process *p[NW];
    start_waiters(s, p, 0, 1, tu_methods[_i]);
    s->crash_point = MPROC__COND_CRASH_APPEND_LINKED;
    ck_assert_int_eq(finish(start(crasher, s, 9, tu_methods[_i])), -SIGKILL);
    recover_lock(s);
    ck_assert_int_eq(n_waiters(s), 2); /* the live waiter and the dead node */
    notify(s, 1);
    ck_assert_int_eq(finish(p[0]), 0);
    ck_assert_int_eq(n_waiters(s), 1);
    /* A new waiter queues behind the dead node (tail was repaired). */
    start_waiters(s, p, 1, 1, tu_methods[_i]);
    ck_assert_int_eq(n_waiters(s), 2);
    notify(s, 1);
    ck_assert_int_eq(finish(p[1]), 0);
    ck_assert_int_eq(n_waiters(s), 0);
    nt_free(s);
}
END_TEST

START_TEST(cond_repairs_after_death_mid_notify)
{
    nt_shared *s = nt_new();
    mproc_process *p[NW];
    start_waiters(s, p, 0, 2, tu_methods[_i]);
    s->crash_point = MPROC__COND_CRASH_NOTIFY_MARKED;
    ck_assert_int_eq(finish(start(crasher, s, 9, tu_methods[_i])), -SIGKILL);
    /* Waiter 0 was notified; it gets the lock back from the dead owner. */
    ck_assert_int_eq(finish(p[0]), 0);
    ck_assert_int_eq(n_waiters(s), 1);
    notify(s, 1);
    ck_assert_int_eq(finish(p[1]), 0);
    ck_assert_int_eq(n_waiters(s), 0);
    nt_free(s);
}
END_TEST

START_TEST(cond_repairs_after_death_mid_unlink)
{
    nt_shared *s = nt_new();
    mproc_process *p[NW];
    start_waiters(s, p, 0, 1, tu_methods[_i]);
    /* The crasher queues last, times out and dies unlinking its own node,
     * leaving the tail pointing at it. */
    s->crash_point = MPROC__COND_CRASH_UNLINKED;
    ck_assert_int_eq(finish(start(crasher, s, 9, tu_methods[_i])), -SIGKILL);
    recover_lock(s);
    ck_assert_int_eq(n_waiters(s), 1);
    start_waiters(s, p, 1, 1, tu_methods[_i]);
    ck_assert_int_eq(n_waiters(s), 2);
    notify(s, 1);
    ck_assert_int_eq(finish(p[0]), 0);
    notify(s, 1);
    ck_assert_int_eq(finish(p[1]), 0);
    ck_assert_int_eq(n_waiters(s), 0);
    nt_free(s);
}
END_TEST

/* ---- Barrier ------------------------------------------------------------- */

#define BP   4
#define BGEN 25

typedef struct bar_shared {
    mproc_barrier bar;
    _Atomic int action_runs;
    _Atomic int fail_action;
    pid_t die_in_action_unless; /* a pid: any other process dies in the action */
    int idx[BGEN][BP];
} bar_shared;

static int count_action(void *arg)
{
    bar_shared *s = arg;
    if (s->die_in_action_unless && getpid() != s->die_in_action_unless) raise(SIGKILL);
    atomic_fetch_add(&s->action_runs, 1);
    return atomic_load(&s->fail_action);
}

static bar_shared *bar_new(unsigned parties)
{
    bar_shared *s = shm_zalloc(sizeof *s);
    TU_OK(mproc_barrier_init(&s->bar, parties, count_action, s));
    return s;
}

static void bar_free(bar_shared *s)
{
    mproc_barrier_fini(&s->bar);
    mproc_arena_free(s);
}

static int bar_party(void *arg)
{
    targ *a = arg;
    bar_shared *s = a->sh;
    for (int g = 0; g < BGEN; g++) {
        unsigned idx = 99;
        if (mproc_barrier_wait(&s->bar, 20000, &idx)) return 1;
        if (idx >= BP) return 2;
        s->idx[g][a->id] = (int)idx;
        /* The action ran exactly once for this generation, before release. */
        if (atomic_load(&s->action_runs) != g + 1) return 3;
    }
    return 0;
}

START_TEST(barrier_parties_pass_together)
{
    bar_shared *s = bar_new(BP);
    ck_assert_uint_eq(mproc_barrier_parties(&s->bar), BP);
    mproc_process *p[BP];
    for (int k = 0; k < BP; k++) p[k] = start(bar_party, s, k, tu_methods[_i]);
    for (int k = 0; k < BP; k++) ck_assert_int_eq(finish(p[k]), 0);
    ck_assert_int_eq(atomic_load(&s->action_runs), BGEN);
    for (int g = 0; g < BGEN; g++) {
        int seen = 0;
        for (int k = 0; k < BP; k++) seen |= 1 << s->idx[g][k];
        ck_assert_msg(seen == (1 << BP) - 1, "generation %d: indices are not a permutation", g);
    }
    ck_assert_uint_eq(mproc_barrier_n_waiting(&s->bar), 0);
    ck_assert(!mproc_barrier_broken(&s->bar));
    bar_free(s);
}
END_TEST

START_TEST(barrier_of_one)
{
    bar_shared *s = bar_new(1);
    for (int k = 0; k < 3; k++) {
        unsigned idx = 9;
        TU_OK(mproc_barrier_wait(&s->bar, 0, &idx));
        ck_assert_uint_eq(idx, 0);
    }
    TU_OK(mproc_barrier_wait(&s->bar, 0, NULL));
    ck_assert_int_eq(atomic_load(&s->action_runs), 4);
    bar_free(s);
}
END_TEST

/* Waits once; exit 0 on MPROC_EBROKEN (what these tests expect), 10 on
 * success, 11 on anything else. */
static int expect_broken(void *arg)
{
    bar_shared *s = ((targ *)arg)->sh;
    int rc = mproc_barrier_wait(&s->bar, 20000, NULL);
    return rc == MPROC_EBROKEN ? 0 : rc == 0 ? 10 : 11;
}

static int expect_pass(void *arg)
{
    bar_shared *s = ((targ *)arg)->sh;
    return mproc_barrier_wait(&s->bar, 20000, NULL) == 0 ? 0 : 1;
}

/* The barrier works again: `parties` parties pass (parent included). */
static void check_usable(bar_shared *s, unsigned parties, int method)
{
    mproc_process *p[BP];
    for (unsigned k = 0; k + 1 < parties; k++) p[k] = start(expect_pass, s, (int)k, method);
    TU_OK(mproc_barrier_wait(&s->bar, 20000, NULL));
    for (unsigned k = 0; k + 1 < parties; k++) ck_assert_int_eq(finish(p[k]), 0);
}

START_TEST(barrier_timeout_breaks_it)
{
    bar_shared *s = bar_new(3);
    mproc_process *p = start(expect_broken, s, 0, tu_methods[_i]);
    POLL_UNTIL(mproc_barrier_n_waiting(&s->bar) == 1);
    long long t0 = mproc_now_ns();
    TU_RC(mproc_barrier_wait(&s->bar, 150, NULL), MPROC_ETIMEDOUT);
    long long dt = tu_ms_since(t0);
    ck_assert_msg(dt >= 150 && dt < 2000, "waited %lld ms", dt);
    ck_assert_int_eq(finish(p), 0);
    ck_assert(mproc_barrier_broken(&s->bar));
    ck_assert_uint_eq(mproc_barrier_n_waiting(&s->bar), 0);
    TU_RC(mproc_barrier_wait(&s->bar, 0, NULL), MPROC_EBROKEN);
    TU_RC(mproc_barrier_wait(&s->bar, MPROC_FOREVER, NULL), MPROC_EBROKEN);
    ck_assert_int_eq(atomic_load(&s->action_runs), 0);
    TU_OK(mproc_barrier_reset(&s->bar));
    ck_assert(!mproc_barrier_broken(&s->bar));
    check_usable(s, 3, tu_methods[_i]);
    ck_assert_int_eq(atomic_load(&s->action_runs), 1);
    /* A timeout of 0 for a party that is not the last breaks it too. */
    TU_RC(mproc_barrier_wait(&s->bar, 0, NULL), MPROC_ETIMEDOUT);
    ck_assert(mproc_barrier_broken(&s->bar));
    bar_free(s);
}
END_TEST

START_TEST(barrier_abort)
{
    bar_shared *s = bar_new(2);
    mproc_process *p = start(expect_broken, s, 0, tu_methods[_i]);
    POLL_UNTIL(mproc_barrier_n_waiting(&s->bar) == 1);
    TU_OK(mproc_barrier_abort(&s->bar));
    ck_assert_int_eq(finish(p), 0);
    ck_assert(mproc_barrier_broken(&s->bar));
    TU_OK(mproc_barrier_abort(&s->bar)); /* again: still broken */
    TU_RC(mproc_barrier_wait(&s->bar, 1000, NULL), MPROC_EBROKEN);
    TU_OK(mproc_barrier_reset(&s->bar));
    check_usable(s, 2, tu_methods[_i]);
    bar_free(s);
}
END_TEST

START_TEST(barrier_reset_while_waiting)
{
    bar_shared *s = bar_new(3);
    mproc_process *p[2];
    for (int k = 0; k < 2; k++) p[k] = start(expect_broken, s, k, tu_methods[_i]);
    POLL_UNTIL(mproc_barrier_n_waiting(&s->bar) == 2);
    TU_OK(mproc_barrier_reset(&s->bar));
    ck_assert(!mproc_barrier_broken(&s->bar));
    ck_assert_uint_eq(mproc_barrier_n_waiting(&s->bar), 0);
    for (int k = 0; k < 2; k++) ck_assert_int_eq(finish(p[k]), 0);
    check_usable(s, 3, tu_methods[_i]);
    check_usable(s, 3, tu_methods[_i]);
    ck_assert_int_eq(atomic_load(&s->action_runs), 2);
    bar_free(s);
}
END_TEST

START_TEST(barrier_failing_action_breaks_it)
{
    bar_shared *s = bar_new(2);
    atomic_store(&s->fail_action, 1);
    mproc_process *p = start(expect_broken, s, 0, tu_methods[_i]);
    POLL_UNTIL(mproc_barrier_n_waiting(&s->bar) == 1);
    TU_RC(mproc_barrier_wait(&s->bar, 10000, NULL), MPROC_EBROKEN); /* we run the action */
    ck_assert_int_eq(finish(p), 0);
    ck_assert_int_eq(atomic_load(&s->action_runs), 1);
    ck_assert(mproc_barrier_broken(&s->bar));
    atomic_store(&s->fail_action, 0);
    TU_OK(mproc_barrier_reset(&s->bar));
    check_usable(s, 2, tu_methods[_i]);
    bar_free(s);
}
END_TEST

START_TEST(barrier_late_waker_learns_how_its_generation_ended)
{
    bar_shared *s = bar_new(2);
    mproc_process *p = start(expect_broken, s, 0, tu_methods[_i]);
    POLL_UNTIL(mproc_barrier_n_waiting(&s->bar) == 1);
    /* Stopped, it cannot see its generation broken by the reset, nor the
     * generations that pass after it. */
    ck_assert_int_eq(kill(mproc_process_pid(p), SIGSTOP), 0);
    TU_OK(mproc_barrier_reset(&s->bar));
    for (int k = 0; k < 3; k++) check_usable(s, 2, tu_methods[_i]);
    ck_assert(!mproc_barrier_broken(&s->bar));
    ck_assert_int_eq(kill(mproc_process_pid(p), SIGCONT), 0);
    ck_assert_int_eq(finish(p), 0); /* MPROC_EBROKEN, not success */
    ck_assert_int_eq(atomic_load(&s->action_runs), 3);
    bar_free(s);
}
END_TEST

static int last_party(void *arg)
{
    bar_shared *s = ((targ *)arg)->sh;
    CHILD_POLL_UNTIL(mproc_barrier_n_waiting(&s->bar) == 1, 1);
    mproc_barrier_wait(&s->bar, 10000, NULL); /* runs the action and dies there */
    return 2;
}

START_TEST(barrier_party_dying_in_action_breaks_it)
{
    bar_shared *s = bar_new(2);
    s->die_in_action_unless = getpid();
    mproc_process *p = start(last_party, s, 0, tu_methods[_i]);
    long long t0 = mproc_now_ns();
    TU_RC(mproc_barrier_wait(&s->bar, MPROC_FOREVER, NULL), MPROC_EBROKEN);
    ck_assert(tu_ms_since(t0) < 5000);
    ck_assert_int_eq(finish(p), -SIGKILL);
    ck_assert(mproc_barrier_broken(&s->bar));
    s->die_in_action_unless = 0;
    TU_OK(mproc_barrier_reset(&s->bar));
    check_usable(s, 2, tu_methods[_i]);
    bar_free(s);
}
END_TEST

/* ---- misuse -------------------------------------------------------------- */

START_TEST(misuse_gets_einval)
{
    mproc_sem zs = {0};
    mproc_event ze = {0};
    mproc_cond zc = {0};
    mproc_barrier zb = {0};
    unsigned v;
    /* NULL and uninitialised objects. */
    TU_RC(mproc_sem_init(NULL, 1), MPROC_EINVAL);
    TU_RC(mproc_bounded_sem_init(NULL, 1), MPROC_EINVAL);
    TU_RC(mproc_sem_new(NULL, 1), MPROC_EINVAL);
    mproc_sem *sp;
    TU_RC(mproc_sem_new(&sp, UINT_MAX), MPROC_EINVAL);
    TU_RC(mproc_bounded_sem_new(&sp, (unsigned)INT32_MAX + 1), MPROC_EINVAL);
    TU_RC(mproc_sem_acquire(NULL, 0), MPROC_EINVAL);
    TU_RC(mproc_sem_acquire(&zs, 0), MPROC_EINVAL);
    TU_RC(mproc_sem_release(NULL), MPROC_EINVAL);
    TU_RC(mproc_sem_release(&zs), MPROC_EINVAL);
    TU_RC(mproc_sem_get_value(&zs, &v), MPROC_EINVAL);
    TU_RC(mproc_sem_get_value(NULL, &v), MPROC_EINVAL);
    TU_RC(mproc_event_init(NULL), MPROC_EINVAL);
    TU_RC(mproc_event_new(NULL), MPROC_EINVAL);
    TU_RC(mproc_event_set(NULL), MPROC_EINVAL);
    TU_RC(mproc_event_set(&ze), MPROC_EINVAL);
    TU_RC(mproc_event_clear(&ze), MPROC_EINVAL);
    TU_RC(mproc_event_wait(&ze, 0), MPROC_EINVAL);
    ck_assert(!mproc_event_is_set(NULL));
    ck_assert(!mproc_event_is_set(&ze));
    TU_RC(mproc_cond_init(NULL, NULL), MPROC_EINVAL);
    TU_RC(mproc_cond_new(NULL, NULL), MPROC_EINVAL);
    TU_RC(mproc_cond_wait(NULL, 0), MPROC_EINVAL);
    TU_RC(mproc_cond_wait(&zc, 0), MPROC_EINVAL);
    TU_RC(mproc_cond_wait_for(&zc, is_true, NULL, 0), MPROC_EINVAL);
    TU_RC(mproc_cond_notify(&zc, 1), MPROC_EINVAL);
    TU_RC(mproc_cond_notify_all(NULL), MPROC_EINVAL);
    TU_RC(mproc_cond_acquire(&zc, 0), MPROC_EINVAL);
    TU_RC(mproc_cond_release(&zc), MPROC_EINVAL);
    ck_assert_ptr_null(mproc_cond_lock(&zc));
    ck_assert_int_eq(mproc__cond_n_waiters(&zc), -1);
    TU_RC(mproc_barrier_init(NULL, 2, NULL, NULL), MPROC_EINVAL);
    TU_RC(mproc_barrier_init(&zb, 0, NULL, NULL), MPROC_EINVAL);
    mproc_barrier *bp;
    TU_RC(mproc_barrier_new(&bp, 0, NULL, NULL), MPROC_EINVAL);
    TU_RC(mproc_barrier_new(NULL, 2, NULL, NULL), MPROC_EINVAL);
    TU_RC(mproc_barrier_wait(NULL, 0, NULL), MPROC_EINVAL);
    TU_RC(mproc_barrier_wait(&zb, 0, NULL), MPROC_EINVAL);
    TU_RC(mproc_barrier_abort(&zb), MPROC_EINVAL);
    TU_RC(mproc_barrier_reset(NULL), MPROC_EINVAL);
    ck_assert_uint_eq(mproc_barrier_parties(&zb), 0);
    ck_assert_uint_eq(mproc_barrier_n_waiting(NULL), 0);
    ck_assert(!mproc_barrier_broken(&zb));
    /* fini / free of NULL or of an uninitialised object: no-ops. */
    mproc_sem_fini(NULL);
    mproc_sem_free(NULL);
    mproc_sem_fini(&zs);
    mproc_event_fini(NULL);
    mproc_event_free(NULL);
    mproc_cond_fini(NULL);
    mproc_cond_free(NULL);
    mproc_cond_fini(&zc);
    mproc_barrier_fini(NULL);
    mproc_barrier_free(NULL);
    mproc_barrier_fini(&zb);

    /* Bad timeouts, on valid objects. */
    mproc_sem *s;
    mproc_event *e;
    mproc_cond *c;
    mproc_barrier *b;
    TU_OK(mproc_sem_new(&s, 0));
    TU_OK(mproc_event_new(&e));
    TU_OK(mproc_cond_new(&c, NULL));
    TU_OK(mproc_barrier_new(&b, 2, NULL, NULL));
    TU_RC(mproc_sem_acquire(s, -2), MPROC_EINVAL);
    TU_RC(mproc_sem_acquire(s, INT_MIN), MPROC_EINVAL);
    TU_RC(mproc_event_wait(e, -2), MPROC_EINVAL);
    TU_OK(mproc_cond_acquire(c, 0));
    TU_RC(mproc_cond_wait(c, -5), MPROC_EINVAL);
    TU_RC(mproc_cond_wait_for(c, is_true, &(bool){false}, -5), MPROC_EINVAL);
    TU_OK(mproc_cond_release(c));
    TU_RC(mproc_barrier_wait(b, -2, NULL), MPROC_EINVAL);
    ck_assert(!mproc_barrier_broken(b)); /* a rejected call changes nothing */
    ck_assert_uint_eq(mproc_barrier_n_waiting(b), 0);
    /* A finished object is no longer usable. */
    mproc_sem_fini(s);
    TU_RC(mproc_sem_release(s), MPROC_EINVAL);
    mproc_sem_free(s);
    mproc_event_free(e);
    mproc_cond_free(c);
    mproc_barrier_free(b);
}
END_TEST

/* A constructor whose initialisation fails returns the error and gives
 * its arena block back. */
START_TEST(failed_constructors_free_what_they_took)
{
    mproc_arena_info info;
    TU_OK(mproc_arena_info_get(&info));
    size_t before = info.allocated;
    mproc_barrier *b = NULL;
    TU_RC(mproc_barrier_new(&b, 0, NULL, NULL), MPROC_EINVAL);
    ck_assert_ptr_null(b);
    mproc_lock junk;
    memset(&junk, 0x5a, sizeof junk);
    mproc_cond *c = NULL;
    TU_RC(mproc_cond_new(&c, &junk), MPROC_EINVAL);
    ck_assert_ptr_null(c);
    TU_OK(mproc_arena_info_get(&info));
    ck_assert_uint_eq(info.allocated, before);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sync");
    TCase *tc = tu_tcase(s, "semaphore", 30);
    tcase_add_test(tc, sem_counts_and_timeouts);
    tcase_add_test(tc, bounded_sem_refuses_over_release);
    tcase_add_loop_test(tc, sem_mutual_exclusion_between_processes_and_threads, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, sem_release_wakes_a_waiting_process, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, sem_holder_killed_never_releases, 0, TU_NMETHODS);
    tc = tu_tcase(s, "event", 30);
    tcase_add_test(tc, event_set_clear_wait);
    tcase_add_loop_test(tc, event_set_releases_every_waiting_process, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, event_set_then_clear_still_releases_sleepers, 0, TU_NMETHODS);
    tc = tu_tcase(s, "condition", 30);
    tcase_add_test(tc, cond_ownership_and_timeouts);
    tcase_add_test(tc, cond_with_rlock_held_recursively);
    tcase_add_loop_test(tc, cond_producers_and_consumers, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, cond_notify_wakes_exactly_n, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, cond_notify_is_fifo, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, cond_timed_out_waiter_leaves_the_queue, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, cond_killed_waiter_does_not_eat_a_notification, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, cond_wait_for_predicate_across_processes, 0, TU_NMETHODS);
    tc = tu_tcase(s, "condition-crash", 30);
    tcase_add_loop_test(tc, cond_repairs_after_death_mid_append, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, cond_repairs_after_death_mid_notify, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, cond_repairs_after_death_mid_unlink, 0, TU_NMETHODS);
    tc = tu_tcase(s, "barrier", 30);
    tcase_add_loop_test(tc, barrier_parties_pass_together, 0, TU_NMETHODS);
    tcase_add_test(tc, barrier_of_one);
    tcase_add_loop_test(tc, barrier_timeout_breaks_it, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, barrier_abort, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, barrier_reset_while_waiting, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, barrier_failing_action_breaks_it, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, barrier_party_dying_in_action_breaks_it, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, barrier_late_waker_learns_how_its_generation_ended, 0, TU_NMETHODS);
    tc = tu_tcase(s, "misuse", 30);
    tcase_add_test(tc, failed_constructors_free_what_they_took);
    tcase_add_test(tc, misuse_gets_einval);
    return tu_run(s);
}
