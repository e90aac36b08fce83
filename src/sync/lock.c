/* Lock and RLock: robust, process-shared pthread mutexes. The kernel's
 * robust-futex list turns an owner's death into EOWNERDEAD for the next
 * acquirer. The mutex itself knows its owner and recursion count (read
 * through the platform layer), which Condition needs to release an RLock
 * completely and restore it; the lock adds nothing to the mutex's own
 * fast path. */
#include "arena/arena.h"
#include "platform/platform.h"
#include "sync/sync.h"

#include <pthread.h>
#include <time.h>

#define LOCK_MAGIC  0x4c6f636bu /* "Lock" */
#define RLOCK_MAGIC 0x524c636bu /* "RLck" */

typedef struct lock_impl {
    pthread_mutex_t m;
    uint32_t magic;
} lock_impl;

_Static_assert(sizeof(lock_impl) <= sizeof(mproc_lock), "lock storage");

static inline lock_impl *impl(const mproc_lock *l)
{
    return (lock_impl *)(void *)l->opaque_;
}

static bool valid(const mproc_lock *l)
{
    return l && (impl(l)->magic == LOCK_MAGIC || impl(l)->magic == RLOCK_MAGIC);
}

static int init(mproc_lock *l, bool recursive)
{
    int rc = mproc__sync_placed(l, sizeof *l, recursive ? "mproc_rlock" : "mproc_lock");
    if (rc) return rc;
    lock_impl *k = impl(l);
    pthread_mutexattr_t a;
    if (pthread_mutexattr_init(&a)) return MPROC_ENOMEM;
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutexattr_settype(&a, recursive ? PTHREAD_MUTEX_RECURSIVE : PTHREAD_MUTEX_ERRORCHECK);
    int r = pthread_mutex_init(&k->m, &a);
    pthread_mutexattr_destroy(&a);
    if (r) return -r;
    k->magic = recursive ? RLOCK_MAGIC : LOCK_MAGIC;
    return 0;
}

int mproc_lock_init(mproc_lock *l)
{
    return init(l, false);
}
int mproc_rlock_init(mproc_lock *l)
{
    return init(l, true);
}

void mproc_lock_fini(mproc_lock *l)
{
    if (!valid(l)) return;
    pthread_mutex_destroy(&impl(l)->m);
    impl(l)->magic = 0;
}

static int new_lock(mproc_lock **out, bool recursive)
{
    if (!out) return MPROC_EINVAL;
    mproc_lock *l;
    int rc = mproc_arena_alloc((void **)&l, sizeof *l);
    return rc ? rc : mproc__shm_adopt((void **)out, l, init(l, recursive));
}

int mproc_lock_new(mproc_lock **out)
{
    return new_lock(out, false);
}
int mproc_rlock_new(mproc_lock **out)
{
    return new_lock(out, true);
}

void mproc_lock_free(mproc_lock *l)
{
    if (!l) return;
    mproc_lock_fini(l);
    mproc_arena_free(l);
}

bool mproc_lock_is_recursive(const mproc_lock *l)
{
    return valid(l) && impl(l)->magic == RLOCK_MAGIC;
}

bool mproc_lock_locked(const mproc_lock *l)
{
    return valid(l) && mproc__mutex_owner(&impl(l)->m) != 0;
}

bool mproc_lock_owned(const mproc_lock *l)
{
    return mproc__lock_held(l);
}

bool mproc__lock_valid(const mproc_lock *l)
{
    return valid(l);
}

bool mproc__lock_held(const mproc_lock *l)
{
    return valid(l) && mproc__mutex_owner(&impl(l)->m) == mproc__tid();
}

bool mproc__lock_waiters(const mproc_lock *l)
{
    return valid(l) && mproc__mutex_waiters(&impl(l)->m);
}

/* A sleeper on a robust mutex can miss its wake-up for good: an unlock
 * clears the waiters bit and wakes one sleeper; if that one is killed
 * before it takes the mutex, and another thread takes it meanwhile with a
 * plain compare-and-swap (so without the bit), the kernel sees a live owner
 * at the death and passes nothing on, and no later unlock wakes anyone:
 * the others sleep on while the mutex changes hands. So a wait never sleeps
 * longer than this in one go; it looks again (and sets the bit again) after
 * each slice. */
#define WAIT_SLICE_NS (250 * 1000000LL)

#if MPROC__TSAN
/* ThreadSanitizer intercepts neither clocklock nor an owner's death seen
 * by timedlock, and would not know we hold the lock: under it an acquire
 * tries (trylock, which it sees, death included) until its deadline. */
static int tsan_acquire(const mproc_lock *l, lock_impl *k, int timeout_ms)
{
    mproc__deadline dl;
    mproc__deadline_init(&dl, timeout_ms);
    int r;
    while ((r = pthread_mutex_trylock(&k->m)) == EBUSY) {
        if (k->magic == LOCK_MAGIC && mproc__lock_held(l)) return EDEADLK; /* as clocklock */
        if (timeout_ms == 0 || mproc__deadline_passed(&dl)) break;
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
    return r;
}
#endif

int mproc_lock_acquire(mproc_lock *l, int timeout_ms)
{
    if (MPROC__UNLIKELY(!valid(l))) return MPROC_EINVAL;
    if (timeout_ms < 0 && timeout_ms != MPROC_FOREVER) return MPROC_EINVAL;
    lock_impl *k = impl(l);
#if MPROC__TSAN
    int r = tsan_acquire(l, k, timeout_ms);
#else
    /* First one attempt that does not sleep (a deadline in the past; not
     * trylock, which leaves a not-recoverable mutex locked by the caller,
     * so that its next call would say EDEADLK, or succeed for an RLock).
     * The deadline is before the epoch: glibc answers ETIMEDOUT for it
     * before it marks the mutex as slept on. At the epoch itself it marks
     * the mutex and makes the futex call, which fails at once: a system
     * call per busy attempt (26 us here), and one more, a wake-up, at the
     * holder's release. */
    static const struct timespec past = {-1, 0};
    int r = pthread_mutex_clocklock(&k->m, CLOCK_MONOTONIC, &past);
    if (MPROC__LIKELY(r == 0)) return 0;
    if (r == ETIMEDOUT && timeout_ms != 0) {
        mproc__deadline dl;
        mproc__deadline_init(&dl, timeout_ms);
        for (;;) {
            int64_t at = mproc_now_ns() + WAIT_SLICE_NS;
            bool last = !dl.forever && dl.at_ns <= at;
            if (last) at = dl.at_ns;
            struct timespec ts = {at / 1000000000, at % 1000000000};
            r = pthread_mutex_clocklock(&k->m, CLOCK_MONOTONIC, &ts);
            if (r != ETIMEDOUT || last) break;
        }
    }
#endif
    if (MPROC__LIKELY(r == 0)) return 0;
    if (r == EOWNERDEAD) return MPROC_EOWNERDEAD;
    if (r == EBUSY || r == ETIMEDOUT) return MPROC_ETIMEDOUT;
    return mproc__err_from_errno(r);
}

int mproc_lock_release(mproc_lock *l)
{
    if (MPROC__UNLIKELY(!valid(l))) return MPROC_EINVAL;
#if MPROC__TSAN
    /* A non-owner is refused before the unlock, as the error-checking and
     * recursive robust mutexes refuse it (EPERM): ThreadSanitizer takes
     * the attempt itself for a bug. */
    if (mproc__mutex_owner(&impl(l)->m) != mproc__tid()) return MPROC_EPERM;
#endif
    int r = pthread_mutex_unlock(&impl(l)->m);
    return r ? mproc__err_from_errno(r) : 0;
}

int mproc_lock_make_consistent(mproc_lock *l)
{
    if (!valid(l)) return MPROC_EINVAL;
    if (!mproc__lock_held(l)) return MPROC_EPERM;
    int r = pthread_mutex_consistent(&impl(l)->m);
    return r ? -r : 0;
}

int mproc__lock_release_all(mproc_lock *l, unsigned *depth)
{
    if (!mproc__lock_held(l)) return MPROC_EPERM;
    lock_impl *k = impl(l);
    unsigned d = k->magic == RLOCK_MAGIC ? mproc__mutex_count(&k->m) : 1;
    *depth = d;
    for (unsigned i = 0; i < d; i++)
        if (pthread_mutex_unlock(&k->m)) mproc__panic("mproc lock: unlock while releasing all");
    return 0;
}

int mproc__lock_reacquire(mproc_lock *l, unsigned depth)
{
    int rc = mproc_lock_acquire(l, MPROC_FOREVER);
    if (rc && rc != MPROC_EOWNERDEAD) return rc;
    for (unsigned i = 1; i < depth; i++)
        if (pthread_mutex_lock(&impl(l)->m)) mproc__panic("mproc lock: relock of a held RLock");
    return rc;
}
