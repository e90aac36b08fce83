/* mproc — synchronisation primitives (the twin of multiprocessing.synchronize):
 * Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event, Barrier.
 *
 * Every object works across processes and threads. Each comes two ways:
 *  - embedded: a complete type of fixed size that you place in your own
 *    shared struct (in the family arena), initialised with mproc_X_init and
 *    finished with mproc_X_fini, like pthread_mutex_t;
 *  - allocated: mproc_X_new puts one in the arena, mproc_X_free frees it.
 * Either way the object must live in memory every user process maps at the
 * same address: the family arena (mproc_arena_alloc, a shared value's
 * storage, ...). A pointer to it can be passed to children as bytes.
 *
 * Blocking calls take the timeout convention of base.h (milliseconds,
 * MPROC_FOREVER, 0 tries once) and return MPROC_ETIMEDOUT on timeout.
 *
 * Robustness, beyond Python: Lock and RLock know their owner. If a process
 * (or thread) dies holding one, the next acquire returns MPROC_EOWNERDEAD
 * and the caller holds the lock; it repairs what the lock protects and
 * calls mproc_lock_make_consistent, then uses the lock as usual. Releasing
 * it without doing so makes the lock unusable: later acquires return
 * MPROC_ENOTRECOVERABLE (never a hang). A Condition or Barrier whose
 * internal lock was held by a dying process repairs itself.
 * A Semaphore has no owner: a process that dies after acquiring it simply
 * never releases it (the count stays lower), as in Python.
 *
 * Ownership differs from Python in one place: a Lock may only be released
 * by the thread that holds it (MPROC_EPERM otherwise), as owner death can
 * only be detected for an owned lock.
 */
#ifndef MPROC_SYNC_H
#define MPROC_SYNC_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Lock and RLock ---------------------------------------------------- */

/* A Lock or an RLock (recursive: the owner may acquire it again and must
 * release it as many times). */
typedef struct mproc_lock {
    _Alignas(16) unsigned char opaque_[64];
} mproc_lock;

/* Initialise embedded storage as a Lock / an RLock.
 * Errors: MPROC_EINVAL (NULL), MPROC_ENOMEM. */
MPROC_API int mproc_lock_init(mproc_lock *l);
MPROC_API int mproc_rlock_init(mproc_lock *l);
/* Finishes an embedded lock (not held by anyone). NULL is a no-op. */
MPROC_API void mproc_lock_fini(mproc_lock *l);

/* Allocate a Lock / RLock in the arena. Errors: MPROC_EINVAL, MPROC_ENOMEM. */
MPROC_API int mproc_lock_new(mproc_lock **out);
MPROC_API int mproc_rlock_new(mproc_lock **out);
/* Finishes and frees an allocated lock. NULL is a no-op. */
MPROC_API void mproc_lock_free(mproc_lock *l);

/* Acquires the lock. Returns 0, or MPROC_EOWNERDEAD (acquired; the last
 * owner died holding it, see above), MPROC_ETIMEDOUT, MPROC_EDEADLK (a Lock
 * acquired again by the thread holding it: Python would hang),
 * MPROC_ENOTRECOVERABLE, MPROC_EINVAL. */
MPROC_API int mproc_lock_acquire(mproc_lock *l, int timeout_ms);

/* Releases the lock. Errors: MPROC_EPERM (the caller does not hold it),
 * MPROC_EINVAL. */
MPROC_API int mproc_lock_release(mproc_lock *l);

/* After MPROC_EOWNERDEAD: marks the lock usable again. The caller must hold
 * it. Errors: MPROC_EINVAL (not in the owner-died state), MPROC_EPERM. */
MPROC_API int mproc_lock_make_consistent(mproc_lock *l);

/* True for an RLock. */
MPROC_API bool mproc_lock_is_recursive(const mproc_lock *l);

/* ---- Semaphore and BoundedSemaphore ------------------------------------ */

typedef struct mproc_sem {
    _Alignas(16) unsigned char opaque_[16];
} mproc_sem;

/* A Semaphore with the given initial value (0 .. INT32_MAX), or a
 * BoundedSemaphore whose value may never exceed its initial value.
 * Errors: MPROC_EINVAL. */
MPROC_API int mproc_sem_init(mproc_sem *s, unsigned value);
MPROC_API int mproc_bounded_sem_init(mproc_sem *s, unsigned value);
MPROC_API void mproc_sem_fini(mproc_sem *s);
MPROC_API int mproc_sem_new(mproc_sem **out, unsigned value);
MPROC_API int mproc_bounded_sem_new(mproc_sem **out, unsigned value);
MPROC_API void mproc_sem_free(mproc_sem *s);

/* Decrements the value, waiting while it is 0. Errors: MPROC_ETIMEDOUT,
 * MPROC_EINVAL. */
MPROC_API int mproc_sem_acquire(mproc_sem *s, int timeout_ms);
/* Increments the value and wakes one waiter. Errors: MPROC_EOVERFLOW (a
 * BoundedSemaphore released above its initial value, or the value would
 * pass INT32_MAX), MPROC_EINVAL. */
MPROC_API int mproc_sem_release(mproc_sem *s);
/* The current value (a snapshot). */
MPROC_API int mproc_sem_get_value(const mproc_sem *s, unsigned *value);

/* ---- Condition --------------------------------------------------------- */

typedef struct mproc_cond {
    _Alignas(16) unsigned char opaque_[128];
} mproc_cond;

/* A Condition over `lock` (a Lock or RLock that must live as long as the
 * condition), or over an RLock of its own when lock is NULL.
 * Errors: MPROC_EINVAL (NULL c, or lock not an initialised lock),
 * MPROC_ENOMEM. */
MPROC_API int mproc_cond_init(mproc_cond *c, mproc_lock *lock);
MPROC_API void mproc_cond_fini(mproc_cond *c);
MPROC_API int mproc_cond_new(mproc_cond **out, mproc_lock *lock);
MPROC_API void mproc_cond_free(mproc_cond *c);

/* The condition's lock (its own or the one given). */
MPROC_API mproc_lock *mproc_cond_lock(mproc_cond *c);
/* Shorthands for acquiring and releasing the condition's lock. */
MPROC_API int mproc_cond_acquire(mproc_cond *c, int timeout_ms);
MPROC_API int mproc_cond_release(mproc_cond *c);

/* Releases the lock (the caller must hold it), waits to be notified, and
 * acquires the lock again before returning (also on timeout). Returns 0
 * when notified, MPROC_ETIMEDOUT, MPROC_EOWNERDEAD (notified or timed out,
 * and the lock came back from a dead owner), MPROC_EPERM (lock not held),
 * MPROC_ENOMEM (each wait takes a small node from the arena; the lock is
 * still held). An RLock held recursively is fully released and restored.
 * A waiter that died is skipped by notify: its notification goes to the
 * next waiter. */
MPROC_API int mproc_cond_wait(mproc_cond *c, int timeout_ms);

/* Waits until pred(arg) is true, checking it first and after each wake-up,
 * with the lock held. Returns 0 once it is true, MPROC_ETIMEDOUT if the
 * deadline passed with it false. Errors as mproc_cond_wait; on
 * MPROC_EOWNERDEAD it returns at once, without checking pred, so the caller
 * repairs the data the lock protects first. */
MPROC_API int mproc_cond_wait_for(mproc_cond *c, bool (*pred)(void *arg), void *arg,
                                  int timeout_ms);

/* Wakes up to n waiters (the longest waiting first) / all waiters. The
 * caller must hold the lock. Errors: MPROC_EPERM, MPROC_EINVAL. */
MPROC_API int mproc_cond_notify(mproc_cond *c, unsigned n);
MPROC_API int mproc_cond_notify_all(mproc_cond *c);

/* ---- Event ------------------------------------------------------------- */

typedef struct mproc_event {
    _Alignas(16) unsigned char opaque_[16];
} mproc_event;

MPROC_API int mproc_event_init(mproc_event *e);
MPROC_API void mproc_event_fini(mproc_event *e);
MPROC_API int mproc_event_new(mproc_event **out);
MPROC_API void mproc_event_free(mproc_event *e);
/* Sets the flag and wakes every waiter. */
MPROC_API int mproc_event_set(mproc_event *e);
MPROC_API int mproc_event_clear(mproc_event *e);
MPROC_API bool mproc_event_is_set(const mproc_event *e);
/* Waits until the flag is set: 0, or MPROC_ETIMEDOUT. */
MPROC_API int mproc_event_wait(mproc_event *e, int timeout_ms);

/* ---- Barrier ----------------------------------------------------------- */

typedef struct mproc_barrier {
    _Alignas(16) unsigned char opaque_[128];
} mproc_barrier;

/* Run by one party (the last to arrive) before the others are released; a
 * non-zero return breaks the barrier. Both the function and arg must be
 * valid in every party (arg in the arena, or NULL). */
typedef int (*mproc_barrier_action)(void *arg);

/* A Barrier for `parties` (>= 1) parties, with an optional action (a
 * function of the program or a loaded library, found again in children of
 * every start method; arg is passed as is, so under spawn and forkserver
 * it must point into the arena). MPROC_EINVAL if action is not such a
 * function.
 * Errors: MPROC_EINVAL, MPROC_ENOMEM. */
MPROC_API int mproc_barrier_init(mproc_barrier *b, unsigned parties, mproc_barrier_action action,
                                 void *arg);
MPROC_API void mproc_barrier_fini(mproc_barrier *b);
MPROC_API int mproc_barrier_new(mproc_barrier **out, unsigned parties, mproc_barrier_action action,
                                void *arg);
MPROC_API void mproc_barrier_free(mproc_barrier *b);

/* Waits until `parties` parties have called it. On 0, *index (may be NULL)
 * is this party's arrival index, 0 .. parties-1, as in Python.
 * Errors: MPROC_EBROKEN (the barrier is or became broken: aborted, reset
 * while waiting, a failed action, another party's timeout),
 * MPROC_ETIMEDOUT (this party timed out; the barrier is now broken). */
MPROC_API int mproc_barrier_wait(mproc_barrier *b, int timeout_ms, unsigned *index);
/* Breaks the barrier: current and future waiters get MPROC_EBROKEN. */
MPROC_API int mproc_barrier_abort(mproc_barrier *b);
/* Back to the empty, unbroken state; current waiters get MPROC_EBROKEN. */
MPROC_API int mproc_barrier_reset(mproc_barrier *b);
MPROC_API unsigned mproc_barrier_parties(const mproc_barrier *b);
MPROC_API unsigned mproc_barrier_n_waiting(const mproc_barrier *b);
MPROC_API bool mproc_barrier_broken(const mproc_barrier *b);

#ifdef __cplusplus
}
#endif
#endif
