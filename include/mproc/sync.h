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
 *
 * Placement is checked: every mproc_X_init refuses an object outside the
 * family arena with MPROC_EINVAL and a warning in the log (under fork a
 * child would lock its own copy, under spawn the address means nothing),
 * unless the memory was declared shared with mproc_sync_allow_memory.
 *
 * Scoped forms (MPROC_WITH and its kin, at the end) release on every exit
 * from a block, as Python's `with lock:`.
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

/* ---- where sync objects may live --------------------------------------- */

/* Declares [addr, addr + len) memory that every process using the sync
 * objects placed in it maps (MAP_SHARED memory of the program's own,
 * shared with plain fork children; a named segment mapped at the same
 * address), so that the mproc_X_init calls accept objects there. A
 * Condition or Barrier also needs the arena (it allocates there), and a
 * spawn or forkserver child must make the same declaration itself.
 * Declarations are per process, inherited by fork; up to 16 at once.
 * Errors: MPROC_EINVAL (NULL addr, len 0, a range that wraps),
 * MPROC_ENOMEM (16 ranges already). */
MPROC_API int mproc_sync_allow_memory(const void *addr, size_t len);
/* Withdraws the declaration that starts at addr. Errors: MPROC_ENOENT. */
MPROC_API int mproc_sync_disallow_memory(const void *addr);

/* Initialise embedded storage as a Lock / an RLock.
 * Errors: MPROC_EINVAL (NULL; outside the arena and any memory declared
 * with mproc_sync_allow_memory, which also logs a warning),
 * MPROC_ENOMEM. */
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

/* Python's Lock.locked() and RLock.locked() (3.14): true while some
 * thread of some process holds the lock (a snapshot: it may change at
 * once). A lock whose holder died reads as not locked (the next acquire
 * takes it, with MPROC_EOWNERDEAD). False for NULL or a non-lock. */
MPROC_API bool mproc_lock_locked(const mproc_lock *l);

/* Python's SemLock._is_mine(): true if the calling thread holds l. False
 * for NULL or a non-lock. */
MPROC_API bool mproc_lock_owned(const mproc_lock *l);

/* ---- Semaphore and BoundedSemaphore ------------------------------------ */

typedef struct mproc_sem {
    _Alignas(16) unsigned char opaque_[16];
} mproc_sem;

/* A Semaphore with the given initial value (0 .. INT32_MAX), or a
 * BoundedSemaphore whose value may never exceed its initial value.
 * Errors: MPROC_EINVAL (NULL, value, placed outside the arena: see
 * mproc_lock_init). */
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
 * Errors: MPROC_EINVAL (NULL c, or lock not an initialised lock, or c
 * placed outside the arena: see mproc_lock_init), MPROC_ENOMEM. */
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

/* An Event, clear. Errors: MPROC_EINVAL (NULL, or placed outside the
 * arena: see mproc_lock_init). */
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
 * function, or b is placed outside the arena (see mproc_lock_init).
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

/* ---- scoped forms: Python's `with lock:` ------------------------------- */

/* MPROC_WITH(lock) { body } acquires the Lock or RLock (waiting without a
 * deadline), runs the body once, and releases the lock on every way out of
 * the body: its end, break, continue, return, and goto out of it (the
 * release is a GCC/Clang __attribute__((cleanup)) variable; longjmp,
 * exit() and a signal that kills the process skip it, as they skip
 * pthread_cleanup_pop). Scopes nest, and an RLock may be taken again in a
 * nested scope.
 *
 * break and continue: MPROC_WITH is a one-pass for loop, so a break or a
 * continue in its body leaves the MPROC_WITH block (releasing the lock)
 * and goes on after it. They do not reach a loop around it (Python's
 * `break` in a `with` inside a loop would leave that loop): to leave an
 * enclosing loop from inside the block, use return, goto, or a flag
 * tested after the block.
 *
 * The body runs only if the acquire returned 0. Otherwise the body is
 * skipped and the failure logged (MPROC_LOG_ERROR, with file and line):
 * MPROC_EDEADLK (a Lock this thread holds already), MPROC_ENOTRECOVERABLE,
 * MPROC_EINVAL, and MPROC_EOWNERDEAD: the holder died in its critical
 * section, and MPROC_WITH cannot repair what the lock protects, so it
 * releases the lock unrepaired, which makes it not recoverable: every
 * later acquire fails (logged again) rather than use half-updated data.
 * Code that can repair uses MPROC_WITH_TIMEOUT. */
#define MPROC_WITH(lock) MPROC__WITH_LOCK((lock), MPROC_FOREVER, (int *)0, MPROC__WITH_NAME)

/* MPROC_WITH_TIMEOUT(lock, timeout_ms, &rc) { body }: as MPROC_WITH, with a
 * timeout, and the acquire's result in rc (an int) instead of the log.
 * The body runs when the lock is held: rc is 0, or MPROC_EOWNERDEAD (the
 * body repairs the data and calls mproc_lock_make_consistent). After the
 * block, rc is one of those or the acquire's error (MPROC_ETIMEDOUT, ...),
 * the body skipped. */
#define MPROC_WITH_TIMEOUT(lock, timeout_ms, rcp)                                                  \
    MPROC__WITH_LOCK((lock), (timeout_ms), (rcp), MPROC__WITH_NAME)

/* MPROC_WITH_COND(cond) { body }: MPROC_WITH on the Condition's lock, as
 * Python's `with cond:`; call mproc_cond_wait and mproc_cond_notify in
 * the body. */
#define MPROC_WITH_COND(cond) MPROC_WITH(mproc_cond_lock(cond))

/* MPROC_WITH_SEM(sem) { body }: acquires a Semaphore or BoundedSemaphore
 * (waiting without a deadline), runs the body, and releases it on every
 * way out, as MPROC_WITH (break and continue leave this block). The body
 * is skipped, and the failure logged, if the acquire fails (MPROC_EINVAL);
 * a failed release (MPROC_EOVERFLOW: the body released it too) is logged. */
#define MPROC_WITH_SEM(sem) MPROC__WITH_SEM((sem), MPROC_FOREVER, (int *)0, MPROC__WITH_NAME)

/* MPROC_WITH_SEM_TIMEOUT(sem, timeout_ms, &rc) { body }: with a timeout;
 * the body runs when rc is 0, and is skipped with rc MPROC_ETIMEDOUT or
 * MPROC_EINVAL (not logged). */
#define MPROC_WITH_SEM_TIMEOUT(sem, timeout_ms, rcp)                                               \
    MPROC__WITH_SEM((sem), (timeout_ms), (rcp), MPROC__WITH_NAME)

/* The machinery of the scoped forms. */
#define MPROC__WITH_CAT2(a, b) a##b
#define MPROC__WITH_CAT(a, b)  MPROC__WITH_CAT2(a, b)
#define MPROC__WITH_NAME       MPROC__WITH_CAT(mproc__with_guard_, __COUNTER__)

#define MPROC__WITH_LOCK(l, ms, rcp, g)                                                            \
    for (mproc_lock * g __attribute__((cleanup(mproc__with_lock_exit))) =                          \
             mproc__with_lock_enter((l), (ms), (rcp), __FILE__, __LINE__);                         \
         g; mproc__with_lock_exit(&g))
#define MPROC__WITH_SEM(s, ms, rcp, g)                                                             \
    for (mproc_sem * g __attribute__((cleanup(mproc__with_sem_exit))) =                            \
             mproc__with_sem_enter((s), (ms), (rcp), __FILE__, __LINE__);                          \
         g; mproc__with_sem_exit(&g))

static inline mproc_lock *mproc__with_lock_enter(mproc_lock *l, int ms, int *rcp, const char *file,
                                                 int line)
{
    int rc = mproc_lock_acquire(l, ms);
    if (rcp) *rcp = rc;
    if (rc == 0 || (rcp && rc == MPROC_EOWNERDEAD)) return l;
    if (!rcp) {
        if (rc == MPROC_EOWNERDEAD) (void)mproc_lock_release(l); /* unrepaired: see MPROC_WITH */
        mproc_log(MPROC_LOG_ERROR, "%s:%d: MPROC_WITH: lock not taken (%s): block skipped", file,
                  line, mproc_err_name(rc));
    }
    return (mproc_lock *)0;
}

static inline void mproc__with_lock_exit(mproc_lock **g)
{
    if (!*g) return;
    int rc = mproc_lock_release(*g);
    *g = (mproc_lock *)0;
    if (rc) mproc_log(MPROC_LOG_ERROR, "MPROC_WITH: release at the end: %s", mproc_err_name(rc));
}

static inline mproc_sem *mproc__with_sem_enter(mproc_sem *s, int ms, int *rcp, const char *file,
                                               int line)
{
    int rc = mproc_sem_acquire(s, ms);
    if (rcp) *rcp = rc;
    if (rc == 0) return s;
    if (!rcp)
        mproc_log(MPROC_LOG_ERROR, "%s:%d: MPROC_WITH_SEM: not acquired (%s): block skipped", file,
                  line, mproc_err_name(rc));
    return (mproc_sem *)0;
}

static inline void mproc__with_sem_exit(mproc_sem **g)
{
    if (!*g) return;
    int rc = mproc_sem_release(*g);
    *g = (mproc_sem *)0;
    if (rc)
        mproc_log(MPROC_LOG_ERROR, "MPROC_WITH_SEM: release at the end: %s", mproc_err_name(rc));
}

#ifdef __cplusplus
}
#endif
#endif
