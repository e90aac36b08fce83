/* Scoped locks (MPROC_WITH and its kin), mproc_lock_locked,
 * mproc_lock_owned, and the refusal of sync objects placed outside the
 * family arena. */
#include "sync/sync.h"
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- a logger that counts ------------------------------------------------ */

static int n_logged;
static char last_log[512];

static void count_log(int level, const char *process_name, const char *msg, void *ud)
{
    (void)process_name;
    (void)ud;
    if (level < MPROC_LOG_WARNING) return;
    n_logged++;
    snprintf(last_log, sizeof last_log, "%s", msg);
}

static void catch_log(void)
{
    n_logged = 0;
    last_log[0] = 0;
    mproc_set_logger(count_log, MPROC_LOG_WARNING, NULL);
}

/* ---- every exit from a block releases ------------------------------------ */

static int return_from_inside(mproc_lock *l)
{
    MPROC_WITH(l)
    {
        if (mproc__lock_held(l)) return 7;
    }
    return 0;
}

START_TEST(with_releases_on_every_exit)
{
    mproc_lock *l;
    TU_OK(mproc_lock_new(&l));
    int ran = 0;

    MPROC_WITH(l) /* to the end */
    {
        ck_assert(mproc__lock_held(l));
        ran++;
    }
    ck_assert(!mproc_lock_locked(l));

    MPROC_WITH(l) /* break */
    {
        ran++;
        if (ran) break;
        ck_abort_msg("not reached");
    }
    ck_assert(!mproc_lock_locked(l));

    MPROC_WITH(l) /* continue */
    {
        ran++;
        if (ran) continue;
        ck_abort_msg("not reached");
    }
    ck_assert(!mproc_lock_locked(l));

    ck_assert_int_eq(return_from_inside(l), 7); /* return */
    ck_assert(!mproc_lock_locked(l));

    MPROC_WITH(l) /* goto out of it */
    {
        ran++;
        goto out;
    }
    ck_abort_msg("not reached");
out:
    ck_assert(!mproc_lock_locked(l));
    ck_assert_int_eq(ran, 4);
    TU_OK(mproc_lock_acquire(l, 0)); /* and nothing left it held */
    TU_OK(mproc_lock_release(l));
    mproc_lock_free(l);
}
END_TEST

/* break and continue in a MPROC_WITH inside a loop of the user's leave
 * the MPROC_WITH block only: the loop goes on (documented). */
START_TEST(break_inside_a_user_loop_leaves_the_block_only)
{
    mproc_lock *l;
    TU_OK(mproc_lock_new(&l));
    int bodies = 0, after = 0;
    for (int i = 0; i < 3; i++) {
        MPROC_WITH(l)
        {
            bodies++;
            break;
        }
        ck_assert(!mproc_lock_locked(l));
        after++;
    }
    ck_assert_int_eq(bodies, 3);
    ck_assert_int_eq(after, 3);
    /* to leave the loop: a flag tested after the block */
    bool stop = false;
    int i;
    for (i = 0; i < 10; i++) {
        MPROC_WITH(l)
        {
            stop = i == 4;
        }
        if (stop) break;
    }
    ck_assert_int_eq(i, 4);
    ck_assert(!mproc_lock_locked(l));
    mproc_lock_free(l);
}
END_TEST

START_TEST(nested_scopes)
{
    mproc_lock *a, *b;
    TU_OK(mproc_lock_new(&a));
    TU_OK(mproc_lock_new(&b));
    int inner = 0;
    MPROC_WITH(a)
    {
        MPROC_WITH(b)
        {
            ck_assert(mproc__lock_held(a) && mproc__lock_held(b));
            inner++;
            break; /* leaves the inner block only */
        }
        ck_assert(mproc__lock_held(a));
        ck_assert(!mproc_lock_locked(b));
        MPROC_WITH(b) MPROC_WITH(b) inner += 100; /* a Lock taken twice: the inner is skipped */
    }
    ck_assert(!mproc_lock_locked(a));
    ck_assert(!mproc_lock_locked(b));
    ck_assert_int_eq(inner, 1);
    mproc_lock_free(a);
    mproc_lock_free(b);
}
END_TEST

START_TEST(rlock_recursion_in_scopes)
{
    mproc_lock *r;
    TU_OK(mproc_rlock_new(&r));
    int depth = 0;
    MPROC_WITH(r)
    {
        MPROC_WITH(r)
        {
            MPROC_WITH(r) depth = 3;
            ck_assert(mproc__lock_held(r));
        }
        ck_assert(mproc__lock_held(r));
        ck_assert(mproc_lock_locked(r));
    }
    ck_assert_int_eq(depth, 3);
    ck_assert(!mproc_lock_locked(r));
    TU_RC(mproc_lock_release(r), MPROC_EPERM); /* released exactly as often as taken */
    mproc_lock_free(r);
}
END_TEST

/* ---- failures: skipped and logged, or reported ---------------------------- */

START_TEST(failed_acquire_skips_the_body_and_logs)
{
    catch_log();
    mproc_lock bad;
    memset(&bad, 0, sizeof bad);
    int ran = 0;
    MPROC_WITH(&bad) ran++;
    MPROC_WITH((mproc_lock *)NULL) ran++;
    ck_assert_int_eq(ran, 0);
    ck_assert_int_eq(n_logged, 2);
    ck_assert_msg(strstr(last_log, "MPROC_EINVAL") && strstr(last_log, "test_sync_scoped.c"), "%s",
                  last_log);

    mproc_lock *l;
    TU_OK(mproc_lock_new(&l));
    MPROC_WITH(l) MPROC_WITH(l) ran++; /* EDEADLK */
    ck_assert_int_eq(ran, 0);
    ck_assert_msg(strstr(last_log, "MPROC_EDEADLK"), "%s", last_log);
    ck_assert(!mproc_lock_locked(l));

    int rc = 1; /* the rc form reports instead of logging */
    n_logged = 0;
    MPROC_WITH_TIMEOUT(&bad, 0, &rc) ran++;
    ck_assert_int_eq(rc, MPROC_EINVAL);
    ck_assert_int_eq(ran, 0);
    ck_assert_int_eq(n_logged, 0);
    MPROC_WITH_TIMEOUT(l, -7, &rc) ran++;
    ck_assert_int_eq(rc, MPROC_EINVAL);
    MPROC_WITH_TIMEOUT(l, 0, &rc)
    {
        ck_assert_int_eq(rc, 0);
        ran++;
    }
    ck_assert_int_eq(ran, 1);

    /* a body that releases the lock itself: the release at the end fails, logged */
    MPROC_WITH(l) TU_OK(mproc_lock_release(l));
    ck_assert_int_eq(n_logged, 1);
    ck_assert_msg(strstr(last_log, "MPROC_EPERM"), "%s", last_log);
    mproc_set_logger(NULL, MPROC_LOG_OFF, NULL);
    mproc_lock_free(l);
}
END_TEST

static void *hold_for_a_while(void *arg)
{
    mproc_lock *l = arg;
    if (mproc_lock_acquire(l, MPROC_FOREVER)) return (void *)1;
    tu_sleep_ms(300);
    return (void *)(intptr_t)mproc_lock_release(l);
}

START_TEST(timeout_form)
{
    mproc_lock *l;
    TU_OK(mproc_lock_new(&l));
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, hold_for_a_while, l), 0);
    while (!mproc_lock_locked(l)) tu_sleep_ms(1);
    int rc = 0, ran = 0;
    MPROC_WITH_TIMEOUT(l, 20, &rc) ran++;
    ck_assert_int_eq(rc, MPROC_ETIMEDOUT);
    ck_assert_int_eq(ran, 0);
    MPROC_WITH_TIMEOUT(l, 5000, &rc)
    {
        ck_assert_int_eq(rc, 0);
        ck_assert(mproc__lock_held(l));
        ran++;
    }
    ck_assert_int_eq(ran, 1);
    void *r;
    pthread_join(t, &r);
    ck_assert_ptr_null(r);
    ck_assert(!mproc_lock_locked(l));
    mproc_lock_free(l);
}
END_TEST

static int die_holding(void *arg)
{
    mproc_lock *l = *(mproc_lock **)arg;
    if (mproc_lock_acquire(l, MPROC_FOREVER)) return 1;
    raise(SIGKILL);
    return 2;
}

/* The holder died: MPROC_WITH skips and leaves the lock not recoverable;
 * MPROC_WITH_TIMEOUT hands the repair to the body. */
START_TEST(owner_death_in_both_forms)
{
    catch_log();
    mproc_lock *l;
    TU_OK(mproc_lock_new(&l));
    ck_assert_int_eq(tu_run_child(die_holding, &l, sizeof l, tu_methods[_i]), -SIGKILL);
    ck_assert(!mproc_lock_locked(l)); /* a dead holder reads as unlocked */
    int rc = 0, ran = 0;
    MPROC_WITH_TIMEOUT(l, 1000, &rc)
    {
        ck_assert_int_eq(rc, MPROC_EOWNERDEAD);
        TU_OK(mproc_lock_make_consistent(l));
        ran++;
    }
    ck_assert_int_eq(ran, 1);
    ck_assert_int_eq(n_logged, 0);
    MPROC_WITH(l) ran++; /* repaired: usable */
    ck_assert_int_eq(ran, 2);

    ck_assert_int_eq(tu_run_child(die_holding, &l, sizeof l, tu_methods[_i]), -SIGKILL);
    MPROC_WITH(l) ran++;
    ck_assert_int_eq(ran, 2);
    ck_assert_int_eq(n_logged, 1);
    ck_assert_msg(strstr(last_log, "MPROC_EOWNERDEAD"), "%s", last_log);
    TU_RC(mproc_lock_acquire(l, 0), MPROC_ENOTRECOVERABLE);
    mproc_set_logger(NULL, MPROC_LOG_OFF, NULL);
    mproc_lock_free(l);
}
END_TEST

/* ---- semaphores and conditions --------------------------------------------- */

static int sem_return(mproc_sem *s)
{
    MPROC_WITH_SEM(s) return 5;
    return 0;
}

START_TEST(with_sem)
{
    mproc_sem *s;
    TU_OK(mproc_bounded_sem_new(&s, 2));
    unsigned v;
    MPROC_WITH_SEM(s)
    {
        TU_OK(mproc_sem_get_value(s, &v));
        ck_assert_uint_eq(v, 1);
        MPROC_WITH_SEM(s)
        {
            TU_OK(mproc_sem_get_value(s, &v));
            ck_assert_uint_eq(v, 0);
            int rc = 0, ran = 0;
            MPROC_WITH_SEM_TIMEOUT(s, 10, &rc) ran++;
            ck_assert_int_eq(rc, MPROC_ETIMEDOUT);
            ck_assert_int_eq(ran, 0);
            break;
        }
        TU_OK(mproc_sem_get_value(s, &v));
        ck_assert_uint_eq(v, 1);
    }
    ck_assert_int_eq(sem_return(s), 5);
    TU_OK(mproc_sem_get_value(s, &v));
    ck_assert_uint_eq(v, 2);

    catch_log();
    MPROC_WITH_SEM(s) TU_OK(mproc_sem_release(s)); /* bounded: the release at the end overflows */
    ck_assert_msg(strstr(last_log, "MPROC_EOVERFLOW"), "%s", last_log);
    MPROC_WITH_SEM((mproc_sem *)NULL) ck_abort_msg("ran");
    ck_assert_msg(strstr(last_log, "MPROC_EINVAL"), "%s", last_log);
    mproc_set_logger(NULL, MPROC_LOG_OFF, NULL);
    mproc_sem_free(s);
}
END_TEST

START_TEST(with_cond)
{
    mproc_cond *c;
    TU_OK(mproc_cond_new(&c, NULL));
    MPROC_WITH_COND(c)
    {
        ck_assert(mproc__lock_held(mproc_cond_lock(c)));
        TU_OK(mproc_cond_notify_all(c)); /* the lock is held: no MPROC_EPERM */
        TU_RC(mproc_cond_wait(c, 10), MPROC_ETIMEDOUT);
        ck_assert(mproc__lock_held(mproc_cond_lock(c)));
    }
    ck_assert(!mproc_lock_locked(mproc_cond_lock(c)));
    TU_RC(mproc_cond_notify(c, 1), MPROC_EPERM);
    mproc_cond_free(c);
}
END_TEST

/* ---- two processes count under MPROC_WITH ---------------------------------- */

typedef struct counter {
    mproc_lock lock;
    long value;
    int rounds;
} counter;

static int count_with(void *arg)
{
    counter *c = *(counter **)arg;
    for (int i = 0; i < c->rounds; i++) {
        MPROC_WITH(&c->lock)
        {
            long v = c->value;
            if (i % 7 == 0) sched_yield(); /* widen the window a lost update needs */
            c->value = v + 1;
            if (i % 3 == 0) continue; /* leaves the block, released */
        }
    }
    return mproc__lock_held(&c->lock) ? 1 : 0; /* not left held by this process */
}

START_TEST(contended_counter_two_processes)
{
    counter *c;
    TU_OK(mproc_arena_calloc((void **)&c, sizeof *c));
    TU_OK(mproc_lock_init(&c->lock));
    c->rounds = 20000;
    mproc_process *p[2];
    for (int k = 0; k < 2; k++) {
        TU_OK(mproc_process_new(&p[k], count_with, &c, sizeof c, TU_OPTS));
        TU_OK(mproc_process_start(p[k]));
    }
    for (int k = 0; k < 2; k++) {
        TU_OK(mproc_process_join(p[k], 60000));
        int code;
        TU_OK(mproc_process_exitcode(p[k], &code));
        ck_assert_int_eq(code, 0);
        TU_OK(mproc_process_free(p[k]));
    }
    ck_assert_int_eq(c->value, 2L * 20000);
    mproc_lock_fini(&c->lock);
    TU_OK(mproc_arena_free(c));
}
END_TEST

/* ---- mproc_lock_locked ------------------------------------------------------ */

static void *probe_locked(void *arg)
{
    return (void *)(intptr_t)mproc_lock_locked(arg);
}

static void *probe_owned(void *arg)
{
    return (void *)(intptr_t)mproc_lock_owned(arg);
}

static bool seen_by_another_thread(void *(*probe)(void *), mproc_lock *l)
{
    pthread_t t;
    void *r;
    ck_assert_int_eq(pthread_create(&t, NULL, probe, l), 0);
    pthread_join(t, &r);
    return r != NULL;
}

static bool locked_seen_by_another_thread(mproc_lock *l)
{
    return seen_by_another_thread(probe_locked, l);
}

START_TEST(locked_as_python)
{
    mproc_lock *l, *r;
    TU_OK(mproc_lock_new(&l));
    TU_OK(mproc_rlock_new(&r));
    ck_assert(!mproc_lock_locked(l));
    ck_assert(!mproc_lock_owned(l));
    TU_OK(mproc_lock_acquire(l, 0));
    ck_assert(mproc_lock_locked(l));
    ck_assert(locked_seen_by_another_thread(l)); /* held by anyone, not only the caller */
    ck_assert(mproc_lock_owned(l));
    ck_assert(!seen_by_another_thread(probe_owned, l)); /* only by the caller */
    TU_OK(mproc_lock_release(l));
    ck_assert(!mproc_lock_locked(l));
    ck_assert(!mproc_lock_owned(l));
    ck_assert(!locked_seen_by_another_thread(l));

    TU_OK(mproc_lock_acquire(r, 0));
    TU_OK(mproc_lock_acquire(r, 0));
    ck_assert(mproc_lock_locked(r));
    TU_OK(mproc_lock_release(r));
    ck_assert(mproc_lock_locked(r)); /* still held once */
    ck_assert(mproc_lock_owned(r));
    ck_assert(locked_seen_by_another_thread(r));
    ck_assert(!seen_by_another_thread(probe_owned, r));
    TU_OK(mproc_lock_release(r));
    ck_assert(!mproc_lock_locked(r));
    ck_assert(!mproc_lock_owned(r));

    mproc_lock bad;
    memset(&bad, 0, sizeof bad);
    ck_assert(!mproc_lock_locked(NULL));
    ck_assert(!mproc_lock_locked(&bad));
    ck_assert(!mproc_lock_owned(NULL));
    ck_assert(!mproc_lock_owned(&bad));
    mproc_lock_free(l);
    mproc_lock_free(r);
}
END_TEST

static int hold_and_wait(void *arg)
{
    mproc_lock **pair = arg;
    if (mproc_lock_acquire(pair[0], MPROC_FOREVER)) return 1;
    /* the parent sees it locked, then releases pair[1] */
    int rc = mproc_lock_acquire(pair[1], 10000);
    if (rc) return 2;
    mproc_lock_release(pair[1]);
    return mproc_lock_release(pair[0]) ? 3 : 0;
}

START_TEST(locked_across_processes)
{
    mproc_lock *pair[2];
    TU_OK(mproc_lock_new(&pair[0]));
    TU_OK(mproc_lock_new(&pair[1]));
    TU_OK(mproc_lock_acquire(pair[1], 0));
    mproc_process *p;
    TU_OK(mproc_process_new(&p, hold_and_wait, pair, sizeof pair, TU_OPTS));
    TU_OK(mproc_process_start(p));
    for (int i = 0; i < 10000 && !mproc_lock_locked(pair[0]); i++) tu_sleep_ms(1);
    ck_assert(mproc_lock_locked(pair[0]));
    ck_assert(!mproc__lock_held(pair[0]));
    TU_OK(mproc_lock_release(pair[1]));
    TU_OK(mproc_process_join(p, 30000));
    int code;
    TU_OK(mproc_process_exitcode(p, &code));
    ck_assert_int_eq(code, 0);
    TU_OK(mproc_process_free(p));
    ck_assert(!mproc_lock_locked(pair[0]));
    mproc_lock_free(pair[0]);
    mproc_lock_free(pair[1]);
}
END_TEST

/* ---- placement ----------------------------------------------------------------- */

static mproc_lock global_lock;

START_TEST(init_outside_the_arena_is_refused)
{
    catch_log();
    mproc_lock l;
    mproc_sem s;
    mproc_cond c;
    mproc_event e;
    mproc_barrier b;
    TU_RC(mproc_lock_init(&l), MPROC_EINVAL);
    ck_assert_msg(strstr(last_log, "mproc_lock") && strstr(last_log, "arena"), "%s", last_log);
    TU_RC(mproc_rlock_init(&l), MPROC_EINVAL);
    TU_RC(mproc_sem_init(&s, 1), MPROC_EINVAL);
    TU_RC(mproc_bounded_sem_init(&s, 1), MPROC_EINVAL);
    TU_RC(mproc_cond_init(&c, NULL), MPROC_EINVAL);
    TU_RC(mproc_event_init(&e), MPROC_EINVAL);
    TU_RC(mproc_barrier_init(&b, 2, NULL, NULL), MPROC_EINVAL);
    ck_assert_int_eq(n_logged, 7);
    TU_RC(mproc_lock_init(&global_lock), MPROC_EINVAL);
    mproc_lock *heap = malloc(sizeof *heap);
    ck_assert_ptr_nonnull(heap);
    TU_RC(mproc_lock_init(heap), MPROC_EINVAL);
    ck_assert_int_eq(n_logged, 9);

    /* declared memory is accepted, and refused again once withdrawn */
    TU_OK(mproc_sync_allow_memory(heap, sizeof *heap));
    TU_OK(mproc_lock_init(heap));
    TU_OK(mproc_lock_acquire(heap, 0));
    ck_assert(mproc_lock_locked(heap));
    TU_OK(mproc_lock_release(heap));
    mproc_lock_fini(heap);
    TU_OK(mproc_sync_disallow_memory(heap));
    TU_RC(mproc_lock_init(heap), MPROC_EINVAL);
    TU_RC(mproc_sync_disallow_memory(heap), MPROC_ENOENT);
    /* an object only partly inside a declared range */
    TU_OK(mproc_sync_allow_memory(heap, sizeof *heap - 1));
    TU_RC(mproc_lock_init(heap), MPROC_EINVAL);
    TU_OK(mproc_sync_disallow_memory(heap));
    free(heap);

    /* the arena is fine, the embedded way */
    mproc_lock *a;
    TU_OK(mproc_arena_alloc((void **)&a, sizeof *a));
    TU_OK(mproc_lock_init(a));
    mproc_lock_fini(a);
    TU_OK(mproc_arena_free(a));
    mproc_set_logger(NULL, MPROC_LOG_OFF, NULL);
}
END_TEST

START_TEST(allow_memory_misuse)
{
    static char area[64];
    TU_RC(mproc_sync_allow_memory(NULL, 8), MPROC_EINVAL);
    TU_RC(mproc_sync_allow_memory(area, 0), MPROC_EINVAL);
    TU_RC(mproc_sync_allow_memory(area, SIZE_MAX), MPROC_EINVAL); /* wraps */
    TU_RC(mproc_sync_disallow_memory(NULL), MPROC_ENOENT);
    TU_RC(mproc_sync_disallow_memory(area), MPROC_ENOENT);
    for (int i = 0; i < 16; i++) TU_OK(mproc_sync_allow_memory(area + i, 1));
    TU_RC(mproc_sync_allow_memory(area + 20, 1), MPROC_ENOMEM);
    for (int i = 0; i < 16; i++) TU_OK(mproc_sync_disallow_memory(area + i));
    TU_OK(mproc_sync_allow_memory(area + 20, 1));
    TU_OK(mproc_sync_disallow_memory(area + 20));
}
END_TEST

/* Memory the program maps shared itself, declared, works with a fork child. */
static int bump_twice(void *arg)
{
    counter *c = *(counter **)arg;
    for (int i = 0; i < 1000; i++) MPROC_WITH(&c->lock) c->value++;
    return 0;
}

START_TEST(declared_shared_memory_with_fork)
{
    counter *c = mmap(NULL, sizeof *c, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert(c != MAP_FAILED);
    TU_RC(mproc_lock_init(&c->lock), MPROC_EINVAL);
    TU_OK(mproc_sync_allow_memory(c, sizeof *c));
    TU_OK(mproc_lock_init(&c->lock));
    ck_assert_int_eq(tu_run_child(bump_twice, &c, sizeof c, MPROC_START_FORK), 0);
    ck_assert_int_eq(bump_twice(&c), 0);
    ck_assert_int_eq(c->value, 2000);
    mproc_lock_fini(&c->lock);
    TU_OK(mproc_sync_disallow_memory(c));
    munmap(c, sizeof *c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sync_scoped");
    TCase *tc = tu_tcase(s, "with", 30);
    tcase_add_test(tc, with_releases_on_every_exit);
    tcase_add_test(tc, break_inside_a_user_loop_leaves_the_block_only);
    tcase_add_test(tc, nested_scopes);
    tcase_add_test(tc, rlock_recursion_in_scopes);
    tcase_add_test(tc, failed_acquire_skips_the_body_and_logs);
    tcase_add_test(tc, timeout_form);
    tcase_add_test(tc, with_sem);
    tcase_add_test(tc, with_cond);
    tcase_add_loop_test(tc, owner_death_in_both_forms, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, contended_counter_two_processes, 0, TU_NMETHODS);
    tc = tu_tcase(s, "locked", 30);
    tcase_add_test(tc, locked_as_python);
    tcase_add_loop_test(tc, locked_across_processes, 0, TU_NMETHODS);
    tc = tu_tcase(s, "placement", 30);
    tcase_add_test(tc, init_outside_the_arena_is_refused);
    tcase_add_test(tc, allow_memory_misuse);
    tcase_add_test(tc, declared_shared_memory_with_fork);
    return tu_run(s);
}
