/* The light owner-checked lock of sync/tid_lock.h. */
#include "base/module.h"
#include "sync/tid_lock.h"
#include "platform/platform.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#define TID_LOCK_WAITERS  0x80000000u
#define TID_LOCK_SLICE_NS 10000000LL /* how often a waiter checks its holder */
#define TID_LOCK_SPINS    100
#define BIAS_RUN          256        /* uncontended takes in a row that earn a bias */
#define BIAS_RUN_MAX      (1u << 24) /* the most a run of revocations can raise it to */

/* The holder is gone, or a zombie (killed, not yet reaped: its thread
 * will never run again). */
static bool holder_dead(uint32_t w)
{
    return mproc__thread_dead((pid_t)(w & ~TID_LOCK_WAITERS));
}

int mproc__tid_lock_acquire(mproc__tid_lock *l, const mproc__deadline *dl)
{
    uint32_t me = (uint32_t)mproc__tid(), w = 0;
    if (MPROC__LIKELY(atomic_compare_exchange_strong_explicit(
            &l->word, &w, me, memory_order_acquire, memory_order_relaxed)))
        return 0;
    for (int i = 0; i < TID_LOCK_SPINS; i++) {
        w = 0;
        if (atomic_load_explicit(&l->word, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong_explicit(&l->word, &w, me, memory_order_acquire,
                                                    memory_order_relaxed))
            return 0;
        mproc__cpu_relax();
    }
    for (;;) {
        w = atomic_load(&l->word);
        if (w == 0) {
            /* Others may be asleep: keep the waiters bit so release wakes one. */
            if (atomic_compare_exchange_strong(&l->word, &w, me | TID_LOCK_WAITERS)) return 0;
            continue;
        }
        if (!(w & TID_LOCK_WAITERS)) {
            if (!atomic_compare_exchange_strong(&l->word, &w, w | TID_LOCK_WAITERS)) continue;
            w |= TID_LOCK_WAITERS;
        }
        mproc__deadline slice = {.at_ns = mproc_now_ns() + TID_LOCK_SLICE_NS};
        if (!dl->forever && dl->at_ns < slice.at_ns) slice.at_ns = dl->at_ns;
        if (mproc__futex_wait(&l->word, w, &slice) != MPROC_ETIMEDOUT) continue;
        if (holder_dead(w) && atomic_compare_exchange_strong(&l->word, &w, me | TID_LOCK_WAITERS))
            return MPROC_EOWNERDEAD;
        if (mproc__deadline_passed(dl)) return MPROC_ETIMEDOUT;
    }
}

void mproc__tid_lock_release(mproc__tid_lock *l)
{
    if (atomic_exchange_explicit(&l->word, 0, memory_order_release) & TID_LOCK_WAITERS)
        mproc__futex_wake(&l->word, 1);
}

/* ---- biased mode -------------------------------------------------------------- */

/* This process: 0 not yet asked, 1 registered for the global expedited
 * membarrier, -1 none (a forked child asks again: registration belongs to
 * the process). */
static _Atomic int barrier_state;

_Thread_local uint32_t mproc__tid_lock_self __attribute__((tls_model("initial-exec")));

/* In a new child process (fork, or the forkserver's clone): forget the
 * parent's thread id and its membarrier registration. */
static void tid_lock_after_fork_child(void)
{
    mproc__tid_lock_self = 0; /* the parent's tid, not ours */
    if (atomic_load_explicit(&barrier_state, memory_order_relaxed) > 0)
        atomic_store_explicit(&barrier_state, 0, memory_order_relaxed);
}

/* Started with the library, or on its own by the first biased take (a
 * program may use locks without starting the library). */
static mproc__module tid_lock_module = {
    .name = "sync.tid_lock",
    .rank = MPROC__RANK_SYNC,
    .after_fork_child = tid_lock_after_fork_child,
};
MPROC__MODULE(tid_lock_module)

/* Whether this process may hold a lock through its bias. */
static bool barrier_registered(void)
{
    /* ThreadSanitizer cannot see the order membarrier gives the biased
     * holder's plain stores: under it locks never bias (every take is the
     * word's CAS, which it models). */
    if (MPROC__TSAN) return false;
    int st = atomic_load_explicit(&barrier_state, memory_order_relaxed);
    if (MPROC__LIKELY(st != 0)) return st > 0;
    mproc__module_start(&tid_lock_module);
    st = mproc__membarrier_register() ? 1 : -1;
    atomic_store_explicit(&barrier_state, st, memory_order_relaxed);
    return st > 0;
}

int mproc__heavy_barrier(void)
{
    atomic_thread_fence(memory_order_seq_cst);
    return mproc__membarrier();
}

/* Waits (holding the word) until no thread holds the lock through a bias
 * (the bias cleared and the heavy barrier issued): 0, MPROC_EOWNERDEAD if
 * the holder died inside, MPROC_ETIMEDOUT. Short: a critical section,
 * unless its holder was descheduled or stopped in it. */
static int wait_unheld(mproc__tid_lock *l, const mproc__deadline *dl)
{
    long long check_at = mproc_now_ns() + TID_LOCK_SLICE_NS;
    for (unsigned i = 0;; i++) {
        uint32_t h = atomic_load_explicit(&l->held, memory_order_acquire);
        if (!h) return 0;
        if (i < 64) {
            mproc__cpu_relax();
            continue;
        }
        if (i < 256) {
            sched_yield();
            continue;
        }
        nanosleep(&(struct timespec){.tv_nsec = 50000}, NULL);
        if (mproc__deadline_passed(dl)) return MPROC_ETIMEDOUT;
        if (mproc_now_ns() < check_at) continue;
        check_at = mproc_now_ns() + TID_LOCK_SLICE_NS;
        if (holder_dead(h) && atomic_compare_exchange_strong(&l->held, &h, 0))
            return MPROC_EOWNERDEAD;
    }
}

int mproc__tid_lock_take_slow(mproc__tid_lock *l, const mproc__deadline *dl, bool *biased)
{
    uint32_t me = (uint32_t)mproc__tid();
    *biased = false;
    int rc = mproc__tid_lock_acquire(l, dl);
    if (rc && rc != MPROC_EOWNERDEAD) return rc;
    uint32_t b = atomic_load(&l->bias);
    if (b == me) { /* ours, but this process may not use it (a new process with our tid) */
        atomic_store(&l->bias, 0);
    } else if (b) {                    /* another thread's bias: revoke it */
        l->revoked = b;                /* first: kept should we die below */
        atomic_store(&l->revoking, 1); /* before the bias goes: see sleeper_fence */
        atomic_store(&l->bias, 0);
        uint32_t after = l->bias_after ? l->bias_after : BIAS_RUN;
        l->bias_after = after < BIAS_RUN_MAX ? after * 2 : BIAS_RUN_MAX;
    }
    if (atomic_load(&l->revoking)) {     /* ours, or one whose revoker died or timed out */
        if (mproc__heavy_barrier() != 0) /* not here: stores drain in far less */
            nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
        int w = wait_unheld(l, dl);
        if (w == MPROC_ETIMEDOUT) {
            mproc__tid_lock_release(l);
            return w;
        }
        if (w) rc = w;
        atomic_store(&l->revoking, 0);
    }
    if (l->revoked == me) l->revoked = 0; /* past any late store of held */
    if (l->run_tid != me) {
        l->run_tid = me;
        l->run = 0;
    }
    if (++l->run >= (l->bias_after ? l->bias_after : BIAS_RUN)) {
        l->run = 0;
        if (l->revoked && holder_dead(l->revoked)) l->revoked = 0;
        if (!l->revoked && barrier_registered()) {
            mproc__tid_lock_self = me;
            atomic_store(&l->bias, me); /* from the next take on */
            /* The biased holder's looks at sleepers must come after this
             * store in the total order (see sleeper_fence). */
            atomic_thread_fence(memory_order_seq_cst);
        }
    }
    return rc;
}

int mproc__tid_lock_sleeper_fence(mproc__tid_lock *l)
{
    /* A biased holder may store and look without a full barrier while the
     * bias is set or being revoked. Either is seen here (bias first: a
     * revocation sets `revoking` before it clears the bias); if neither,
     * any later bias is set, with a full barrier, after our registration,
     * so its holder sees it. */
    if (!atomic_load(&l->bias) && !atomic_load(&l->revoking)) return 0;
    return mproc__heavy_barrier();
}
