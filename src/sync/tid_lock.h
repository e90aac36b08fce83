/* A light lock for short critical sections whose holder may die: the
 * holder's thread id sits in the futex word. Taking it is one CAS and
 * dropping it one exchange (a robust pthread mutex costs three times more,
 * for its robust-list bookkeeping). A waiter that has waited TID_LOCK_SLICE
 * checks that the holder thread still exists (a zombie counts as gone) and,
 * if it does not, takes the lock over and reports MPROC_EOWNERDEAD. Limit: if the dead holder's
 * thread id were reused by a new thread within that slice, the waiter
 * would keep waiting while that thread lives (thread ids are reused only
 * after the kernel's pid space wraps around).
 *
 * Biased mode (mproc__tid_lock_take / mproc__tid_lock_drop): a thread that takes
 * the lock many times in a row with nobody else in between gets the lock
 * biased to it, and from then on takes and drops it with plain stores
 * only, no locked instruction: it writes its tid into `held`, then checks
 * that the bias is still its own. Another thread that wants the lock takes
 * the word as above, clears the bias, issues a memory barrier on every CPU
 * (membarrier(2), MEMBARRIER_CMD_GLOBAL_EXPEDITED: the owner's store of
 * `held` and its look at `bias` cannot both miss the revoker's) and waits
 * until `held` is 0 (or its thread is dead). The revoked owner may still
 * be between its first look at the bias and its store of `held` (if it was
 * descheduled there): that late store must not hit a later owner, so no
 * thread gets a bias until the revoked one has come through the word
 * itself (then it is past that point) or is dead (`revoked`). Only
 * processes registered for the barrier take the biased path; without
 * membarrier the lock never biases. A revocation costs tens of
 * microseconds, so each one doubles the run of takes that earns a bias. */
#ifndef MPROC_INTERNAL_TID_LOCK_H
#define MPROC_INTERNAL_TID_LOCK_H

#include "base/base.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct mproc__tid_lock {
    _Atomic uint32_t word; /* 0 free, else holder tid | TID_LOCK_WAITERS */
    _Atomic uint32_t bias; /* the tid the lock is biased to, or 0 */
    _Atomic uint32_t held; /* the biased owner's tid while it holds the lock */
    uint32_t run_tid;      /* under word: the last taker and its run of takes */
    uint32_t run;
    uint32_t bias_after;       /* the run that earns a bias (0: the initial value) */
    uint32_t revoked;          /* under word: the last revoked owner until it comes back */
    _Atomic uint32_t revoking; /* a revocation may still have a holder inside */
} mproc__tid_lock;

/* 0, MPROC_EOWNERDEAD (taken over from a dead holder: repair, then use),
 * MPROC_ETIMEDOUT. */
int mproc__tid_lock_acquire(mproc__tid_lock *l, const mproc__deadline *dl);
void mproc__tid_lock_release(mproc__tid_lock *l);

/* This thread's tid once its process may hold locks through a bias (it
 * is registered for the heavy barrier), else 0; reset in a forked child. */
extern _Thread_local uint32_t mproc__tid_lock_self;

/* The slow path of mproc__tid_lock_take: the word, revoking another thread's
 * bias, perhaps earning one. */
int mproc__tid_lock_take_slow(mproc__tid_lock *l, const mproc__deadline *dl, bool *biased);

/* The same as mproc__tid_lock_acquire, with biasing. *biased tells whether the
 * lock was taken through the bias; pass it to mproc__tid_lock_drop. A holder
 * through the bias has executed no full barrier: see
 * mproc__tid_lock_sleeper_fence. */
static inline int mproc__tid_lock_take(mproc__tid_lock *l, const mproc__deadline *dl, bool *biased)
{
    uint32_t me = mproc__tid_lock_self;
    if (MPROC__LIKELY(me) && atomic_load_explicit(&l->bias, memory_order_relaxed) == me) {
        /* In, unless a revoker cleared the bias: it then waits for held to
         * be 0 again. Only a compiler barrier between the store and the
         * load: the revoker's membarrier orders them on this CPU. */
        atomic_store_explicit(&l->held, me, memory_order_relaxed);
        atomic_signal_fence(memory_order_seq_cst);
        if (MPROC__LIKELY(atomic_load_explicit(&l->bias, memory_order_relaxed) == me)) {
            atomic_thread_fence(memory_order_acquire);
            *biased = true;
            return 0;
        }
        atomic_store_explicit(&l->held, 0, memory_order_release);
    }
    return mproc__tid_lock_take_slow(l, dl, biased);
}

static inline void mproc__tid_lock_drop(mproc__tid_lock *l, bool biased)
{
    if (MPROC__LIKELY(biased))
        atomic_store_explicit(&l->held, 0, memory_order_release);
    else
        mproc__tid_lock_release(l);
}

/* A full memory barrier on every CPU running a process that may hold a
 * lock through its bias (membarrier GLOBAL_EXPEDITED). 0, or -1 if this
 * process cannot issue one. */
int mproc__heavy_barrier(void);

/* For a sleeper whose wake-up depends on a holder of l seeing its
 * registration (Dekker: the holder stores, then looks at the sleepers
 * count; the sleeper registers, then looks at the store). A holder through
 * the bias stores and looks without a full barrier, so the sleeper calls
 * this between its registration and its look: a heavy barrier, while l
 * is biased or a revocation is under way. 0, or -1 if the barrier failed
 * (then the sleeper must not sleep without a timer). */
int mproc__tid_lock_sleeper_fence(mproc__tid_lock *l);

#endif
