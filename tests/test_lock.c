/* Lock and RLock: exclusion across processes and threads, timeouts,
 * recursion, misuse, and the death of a holder at the worst moment. */
#include "sync/sync.h"
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

START_TEST(lock_basics_and_misuse)
{
    mproc_lock *l;
    TU_OK(mproc_lock_new(&l));
    ck_assert(!mproc_lock_is_recursive(l));
    TU_OK(mproc_lock_acquire(l, MPROC_FOREVER));
    ck_assert(mproc__lock_held(l));
    TU_RC(mproc_lock_acquire(l, MPROC_FOREVER), MPROC_EDEADLK); /* Python would hang */
    TU_RC(mproc_lock_acquire(l, 0), MPROC_EDEADLK);
    TU_RC(mproc_lock_make_consistent(l), MPROC_EINVAL); /* not after an owner death */
    TU_OK(mproc_lock_release(l));
    TU_RC(mproc_lock_release(l), MPROC_EPERM);
    TU_RC(mproc_lock_acquire(l, -5), MPROC_EINVAL);
    TU_RC(mproc_lock_make_consistent(l), MPROC_EPERM);
    mproc_lock_free(l);

    mproc_lock bad;
    memset(&bad, 0, sizeof bad);
    TU_RC(mproc_lock_acquire(&bad, 0), MPROC_EINVAL);
    TU_RC(mproc_lock_release(&bad), MPROC_EINVAL);
    TU_RC(mproc_lock_acquire(NULL, 0), MPROC_EINVAL);
    TU_RC(mproc_lock_init(NULL), MPROC_EINVAL);
    TU_RC(mproc_lock_new(NULL), MPROC_EINVAL);
    mproc_lock_free(NULL);
    mproc_lock_fini(NULL);
}
END_TEST

START_TEST(rlock_recursion)
{
    mproc_lock *l;
    TU_OK(mproc_rlock_new(&l));
    ck_assert(mproc_lock_is_recursive(l));
    for (int i = 0; i < 5; i++) TU_OK(mproc_lock_acquire(l, i % 2 ? 0 : MPROC_FOREVER));
    unsigned depth;
    TU_OK(mproc__lock_release_all(l, &depth));
    ck_assert_uint_eq(depth, 5);
    ck_assert(!mproc__lock_held(l));
    TU_OK(mproc__lock_reacquire(l, depth));
    for (int i = 0; i < 5; i++) TU_OK(mproc_lock_release(l));
    TU_RC(mproc_lock_release(l), MPROC_EPERM);
    mproc_lock_free(l);
}
END_TEST

static void *release_from_other_thread(void *arg)
{
    return (void *)(intptr_t)mproc_lock_release(arg);
}

START_TEST(only_the_owner_releases)
{
    mproc_lock *l;
    TU_OK(mproc_lock_new(&l));
    TU_OK(mproc_lock_acquire(l, MPROC_FOREVER));
    pthread_t t;
    pthread_create(&t, NULL, release_from_other_thread, l);
    void *r;
    pthread_join(t, &r);
    ck_assert_int_eq((int)(intptr_t)r, MPROC_EPERM);
    TU_OK(mproc_lock_release(l));
    mproc_lock_free(l);
}
END_TEST

typedef struct {
    mproc_lock lock; /* embedded, as in a user's shared struct */
    int hold_ms;
    volatile int held;
} held_lock;

static int hold_for_a_while(void *arg)
{
    held_lock *h = *(held_lock **)arg;
    if (mproc_lock_acquire(&h->lock, MPROC_FOREVER)) return 1;
    h->held = 1;
    tu_sleep_ms(h->hold_ms);
    h->held = 0;
    return mproc_lock_release(&h->lock) ? 2 : 0;
}

START_TEST(timeouts_against_another_process)
{
    held_lock *h;
    TU_OK(mproc_arena_calloc((void **)&h, sizeof *h));
    TU_OK(mproc_lock_init(&h->lock));
    h->hold_ms = 300;
    mproc_process *p;
    TU_OK(mproc_process_new(&p, hold_for_a_while, &h, sizeof h, TU_OPTS));
    TU_OK(mproc_process_start(p));
    while (!h->held) tu_sleep_ms(1);
    /* An attempt that does not wait leaves no mark that a thread sleeps on
     * the lock (a mark costs a futex call per attempt and one more, a
     * wake-up, at the holder's release). */
    for (int i = 0; i < 3; i++) TU_RC(mproc_lock_acquire(&h->lock, 0), MPROC_ETIMEDOUT);
    ck_assert(!mproc__lock_waiters(&h->lock));
    long long t0 = mproc_now_ns();
    TU_RC(mproc_lock_acquire(&h->lock, 50), MPROC_ETIMEDOUT);
    ck_assert(mproc_now_ns() - t0 >= 50000000LL);
    TU_OK(mproc_lock_acquire(&h->lock, 10000)); /* once the child lets go */
    ck_assert_int_eq(h->held, 0);
    TU_OK(mproc_lock_release(&h->lock));
    TU_OK(mproc_process_join(p, 10000));
    TU_OK(mproc_process_free(p));
    mproc_lock_fini(&h->lock);
    TU_OK(mproc_arena_free(h));
}
END_TEST

typedef struct {
    mproc_lock lock;
    long counter;
    int rounds;
} counted;

static void *count_thread(void *arg)
{
    counted *c = arg;
    for (int i = 0; i < c->rounds; i++) {
        if (mproc_lock_acquire(&c->lock, MPROC_FOREVER)) return (void *)1;
        long v = c->counter; /* a non-atomic read-modify-write */
        c->counter = v + 1;
        if (mproc_lock_release(&c->lock)) return (void *)2;
    }
    return NULL;
}

static int count_process(void *arg)
{
    counted *c = *(counted **)arg;
    pthread_t t[2];
    for (int k = 0; k < 2; k++) pthread_create(&t[k], NULL, count_thread, c);
    int bad = 0;
    for (int k = 0; k < 2; k++) {
        void *r;
        pthread_join(t[k], &r);
        bad |= r != NULL;
    }
    return bad;
}

static void exclusion(bool recursive, int method)
{
    counted *c;
    TU_OK(mproc_arena_calloc((void **)&c, sizeof *c));
    TU_OK(recursive ? mproc_rlock_init(&c->lock) : mproc_lock_init(&c->lock));
    c->rounds = 20000;
    mproc_process *p[4];
    for (int k = 0; k < 4; k++) {
        TU_OK(mproc_process_new(&p[k], count_process, &c, sizeof c,
                                &(mproc_process_opts){.start_method = method}));
        TU_OK(mproc_process_start(p[k]));
    }
    for (int k = 0; k < 4; k++) {
        TU_OK(mproc_process_join(p[k], 60000));
        int code;
        TU_OK(mproc_process_exitcode(p[k], &code));
        ck_assert_int_eq(code, 0);
        TU_OK(mproc_process_free(p[k]));
    }
    ck_assert_int_eq(c->counter, 4 * 2 * 20000);
    mproc_lock_fini(&c->lock);
    TU_OK(mproc_arena_free(c));
}

START_TEST(lock_excludes_processes_and_threads)
{
    exclusion(false, tu_methods[_i]);
}
END_TEST
START_TEST(rlock_excludes_processes_and_threads)
{
    exclusion(true, tu_methods[_i]);
}
END_TEST

/* ---- owner death -------------------------------------------------------- */

static int die_holding(void *arg)
{
    mproc_lock *l = *(mproc_lock **)arg;
    if (mproc_lock_acquire(l, MPROC_FOREVER)) return 1;
    if (mproc_lock_is_recursive(l) && mproc_lock_acquire(l, MPROC_FOREVER)) return 2;
    raise(SIGKILL);
    return 3;
}

static void owner_death(bool recursive, int method)
{
    mproc_lock *l;
    TU_OK(recursive ? mproc_rlock_new(&l) : mproc_lock_new(&l));
    ck_assert_int_eq(tu_run_child(die_holding, &l, sizeof l, method), -SIGKILL);
    TU_RC(mproc_lock_acquire(l, 1000), MPROC_EOWNERDEAD);
    ck_assert(mproc__lock_held(l));
    TU_OK(mproc_lock_make_consistent(l));
    TU_OK(mproc_lock_release(l));
    TU_OK(mproc_lock_acquire(l, 0)); /* usable as before */
    TU_OK(mproc_lock_release(l));

    /* Released without being made consistent: unusable, but no hang. */
    ck_assert_int_eq(tu_run_child(die_holding, &l, sizeof l, method), -SIGKILL);
    TU_RC(mproc_lock_acquire(l, MPROC_FOREVER), MPROC_EOWNERDEAD);
    TU_OK(mproc_lock_release(l));
    TU_RC(mproc_lock_acquire(l, MPROC_FOREVER), MPROC_ENOTRECOVERABLE);
    TU_RC(mproc_lock_acquire(l, 0), MPROC_ENOTRECOVERABLE);
    TU_RC(mproc_lock_acquire(l, 0), MPROC_ENOTRECOVERABLE); /* still, not held by the caller */
    TU_RC(mproc_lock_acquire(l, 50), MPROC_ENOTRECOVERABLE);
    TU_RC(mproc_lock_acquire(l, MPROC_FOREVER), MPROC_ENOTRECOVERABLE);
    mproc_lock_free(l);
}

START_TEST(lock_holder_death_is_reported)
{
    owner_death(false, tu_methods[_i]);
}
END_TEST
START_TEST(rlock_holder_death_is_reported)
{
    owner_death(true, tu_methods[_i]);
}
END_TEST

static void *exit_holding(void *arg)
{
    mproc_lock_acquire(arg, MPROC_FOREVER);
    return NULL; /* the thread ends holding the lock */
}

START_TEST(thread_death_is_reported_too)
{
    mproc_lock *l;
    TU_OK(mproc_lock_new(&l));
    pthread_t t;
    pthread_create(&t, NULL, exit_holding, l);
    pthread_join(t, NULL);
    TU_RC(mproc_lock_acquire(l, 1000), MPROC_EOWNERDEAD);
    TU_OK(mproc_lock_make_consistent(l));
    TU_OK(mproc_lock_release(l));
    mproc_lock_free(l);
}
END_TEST

/* Two fields that must stay equal; a holder killed between the two writes
 * leaves them unequal, which the next owner sees through MPROC_EOWNERDEAD. */
typedef struct {
    mproc_lock lock;
    volatile long a, b;
} pair;

static int update_pairs_forever(void *arg)
{
    pair *p = *(pair **)arg;
    for (;;) {
        int rc = mproc_lock_acquire(&p->lock, MPROC_FOREVER);
        if (rc == MPROC_EOWNERDEAD) {
            p->b = p->a;
            mproc_lock_make_consistent(&p->lock);
        } else if (rc) {
            return 1;
        }
        if (p->a != p->b) return 2; /* a broken invariant got past the lock */
        p->a++;
        for (volatile int spin = 0; spin < 50; spin++) {
        }
        p->b++;
        mproc_lock_release(&p->lock);
    }
}

START_TEST(sigkill_of_holders_at_random_moments)
{
    pair *p;
    TU_OK(mproc_arena_calloc((void **)&p, sizeof *p));
    TU_OK(mproc_lock_init(&p->lock));
    unsigned seed = 7;
    int owner_dead = 0;
    for (int round = 0; round < 60; round++) {
        mproc_process *w[2];
        for (int k = 0; k < 2; k++) {
            TU_OK(mproc_process_new(&w[k], update_pairs_forever, &p, sizeof p, TU_OPTS));
            TU_OK(mproc_process_start(w[k]));
        }
        tu_sleep_ms(1 + rand_r(&seed) % 10);
        for (int k = 0; k < 2; k++) TU_OK(mproc_process_kill(w[k]));
        for (int k = 0; k < 2; k++) {
            TU_OK(mproc_process_join(w[k], 10000));
            int code;
            TU_OK(mproc_process_exitcode(w[k], &code));
            ck_assert_msg(code == -SIGKILL, "worker failed with %d", code);
            TU_OK(mproc_process_free(w[k]));
        }
        int rc = mproc_lock_acquire(&p->lock, 5000);
        ck_assert_msg(rc == 0 || rc == MPROC_EOWNERDEAD, "acquire: %s", mproc_err_name(rc));
        if (rc == MPROC_EOWNERDEAD) {
            owner_dead++;
            p->b = p->a;
            TU_OK(mproc_lock_make_consistent(&p->lock));
        }
        ck_assert_int_eq(p->a, p->b);
        TU_OK(mproc_lock_release(&p->lock));
    }
    ck_assert_int_gt(owner_dead, 0); /* the test did hit holders */
    mproc_lock_fini(&p->lock);
    TU_OK(mproc_arena_free(p));
}
END_TEST

/* Contenders of one lock, each counting its own turns. */
typedef struct contenders {
    mproc_lock lock;
    _Atomic uint64_t turns[4];
} contenders;

typedef struct contender_arg {
    contenders *c;
    int slot;
} contender_arg;

static int contend_forever(void *arg)
{
    contender_arg *a = arg;
    for (unsigned r = (unsigned)getpid();; r = r * 1103515245u + 12345u) {
        int rc = mproc_lock_acquire(&a->c->lock, MPROC_FOREVER);
        if (rc == MPROC_EOWNERDEAD) rc = mproc_lock_make_consistent(&a->c->lock);
        if (rc) return 1;
        long long t0 = mproc_now_ns(); /* 0..20 us inside */
        while (mproc_now_ns() - t0 < (long long)(r >> 8) % 20000) {
        }
        if (mproc_lock_release(&a->c->lock)) return 2;
        atomic_fetch_add(&a->c->turns[a->slot], 1);
    }
}

static mproc_process *start_contender(contenders *c, int slot, int _i)
{
    contender_arg a;
    /* Zeroed first: its padding goes to the child too (see start() in test_wakeups.c). */
    memset(&a, 0, sizeof a);
    a.c = c;
    a.slot = slot;
    mproc_process *p;
    TU_OK(mproc_process_new(&p, contend_forever, &a, sizeof a, TU_OPTS));
    TU_OK(mproc_process_start(p));
    return p;
}

/* A contender killed at any moment (also a waiter just woken to take the
 * lock, which takes the wake-up with it while another takes the lock
 * without knowing of the sleepers) never leaves the others asleep on a
 * free lock. */
START_TEST(no_waiter_sleeps_on_when_a_contender_is_killed)
{
    contenders *c;
    TU_OK(mproc_arena_calloc((void **)&c, sizeof *c));
    TU_OK(mproc_lock_init(&c->lock));
    mproc_process *w[4];
    for (int k = 0; k < 4; k++) w[k] = start_contender(c, k, _i);
    unsigned seed = 11;
    for (int kill = 0; kill < 200; kill++) {
        tu_sleep_ms(rand_r(&seed) % 3);
        int v = (int)(rand_r(&seed) % 4);
        TU_OK(mproc_process_kill(w[v]));
        TU_OK(mproc_process_join(w[v], 10000));
        TU_OK(mproc_process_free(w[v]));
        /* every survivor gets the lock again, soon */
        uint64_t seen[4];
        for (int k = 0; k < 4; k++) seen[k] = atomic_load(&c->turns[k]);
        for (int k = 0; k < 4; k++) {
            if (k == v) continue;
            long long t0 = mproc_now_ns();
            while (atomic_load(&c->turns[k]) == (uint64_t)seen[k]) {
                ck_assert_msg(mproc_now_ns() - t0 < 3000000000LL,
                              "kill %d: contender %d had no turn in 3 s (lock word %#x)", kill, k,
                              *(unsigned *)(void *)&c->lock);
                tu_sleep_ms(1);
            }
        }
        w[v] = start_contender(c, v, _i);
    }
    for (int k = 0; k < 4; k++) {
        TU_OK(mproc_process_kill(w[k]));
        TU_OK(mproc_process_join(w[k], 10000));
        TU_OK(mproc_process_free(w[k]));
    }
    TU_OK(mproc_arena_free(c));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lock");
    TCase *tc = tu_tcase(s, "basics", 30);
    tcase_add_test(tc, lock_basics_and_misuse);
    tcase_add_test(tc, rlock_recursion);
    tcase_add_test(tc, only_the_owner_releases);
    tcase_add_test(tc, thread_death_is_reported_too);
    tcase_add_loop_test(tc, timeouts_against_another_process, 0, TU_NMETHODS);
    tc = tu_tcase(s, "contention", 120);
    tcase_add_loop_test(tc, lock_excludes_processes_and_threads, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, rlock_excludes_processes_and_threads, 0, TU_NMETHODS);
    tc = tu_tcase(s, "faults", 120);
    tcase_add_loop_test(tc, lock_holder_death_is_reported, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, rlock_holder_death_is_reported, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, sigkill_of_holders_at_random_moments, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, no_waiter_sleeps_on_when_a_contender_is_killed, 0, TU_NMETHODS);
    return tu_run(s);
}
