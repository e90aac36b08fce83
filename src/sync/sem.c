/* Semaphore and BoundedSemaphore: a value word and a waiter count in shared
 * memory, driven by C11 atomics and shared futexes.
 *
 * acquire takes one unit with a CAS while the value is positive; otherwise
 * it registers as a waiter and sleeps on the value word while it reads 0.
 * release adds one unit with a CAS (refusing to pass the bound) and wakes
 * one sleeper if any is registered. The waiter count is only a hint that
 * saves the wake-up syscall when nobody sleeps: a waiter that dies while
 * registered leaves it too high, which costs a syscall per release, never
 * correctness.
 *
 * A Semaphore has no owner. A process that dies after acquiring never
 * releases: the value simply stays lower (as in Python). Other acquirers
 * then wait for their timeout and get MPROC_ETIMEDOUT; nothing hangs that
 * was given a timeout.
 *
 * A release wakes exactly one sleeper. Should that sleeper die between its
 * wake-up and taking the unit, the unit stays available while others may
 * still sleep; so sleepers re-check the value at least every SLICE_NS. */
#include "arena/arena.h"
#include "platform/platform.h"
#include "sync/sync.h"

#include <stdatomic.h>
#include <stdint.h>

#define SEM_MAGIC  0x53656d31u /* "Sem1" */
#define BSEM_MAGIC 0x42536d31u /* "BSm1" */
#define SLICE_NS   1000000000LL

typedef struct sem_impl {
    uint32_t magic;
    _Atomic uint32_t value;   /* 0 .. INT32_MAX; the futex word */
    _Atomic uint32_t waiters; /* registered sleepers (a hint) */
    uint32_t bound;           /* the largest value release may reach */
} sem_impl;

_Static_assert(sizeof(sem_impl) <= sizeof(mproc_sem), "semaphore storage");
_Static_assert(_Alignof(sem_impl) <= _Alignof(mproc_sem), "semaphore alignment");

static inline sem_impl *impl(const mproc_sem *s)
{
    return (sem_impl *)(void *)s->opaque_;
}

static bool valid(const mproc_sem *s)
{
    return s && (impl(s)->magic == SEM_MAGIC || impl(s)->magic == BSEM_MAGIC);
}

static int init(mproc_sem *s, unsigned value, bool bounded)
{
    if (!s || value > INT32_MAX) return MPROC_EINVAL;
    int rc = mproc__sync_placed(s, sizeof *s, bounded ? "mproc_bounded_sem" : "mproc_sem");
    if (rc) return rc;
    sem_impl *k = impl(s);
    atomic_store(&k->value, value);
    atomic_store(&k->waiters, 0);
    k->bound = bounded ? value : INT32_MAX;
    atomic_thread_fence(memory_order_release);
    k->magic = bounded ? BSEM_MAGIC : SEM_MAGIC;
    return 0;
}

int mproc_sem_init(mproc_sem *s, unsigned value)
{
    return init(s, value, false);
}
int mproc_bounded_sem_init(mproc_sem *s, unsigned value)
{
    return init(s, value, true);
}

void mproc_sem_fini(mproc_sem *s)
{
    if (valid(s)) impl(s)->magic = 0;
}

static int new_sem(mproc_sem **out, unsigned value, bool bounded)
{
    if (!out || value > INT32_MAX) return MPROC_EINVAL;
    mproc_sem *s;
    int rc = mproc_arena_alloc((void **)&s, sizeof *s);
    return rc ? rc : mproc__shm_adopt((void **)out, s, init(s, value, bounded));
}

int mproc_sem_new(mproc_sem **out, unsigned value)
{
    return new_sem(out, value, false);
}
int mproc_bounded_sem_new(mproc_sem **out, unsigned value)
{
    return new_sem(out, value, true);
}

void mproc_sem_free(mproc_sem *s)
{
    if (!s) return;
    mproc_sem_fini(s);
    mproc_arena_free(s);
}

/* Takes one unit if there is one. */
static bool try_take(sem_impl *k)
{
    uint32_t v = atomic_load_explicit(&k->value, memory_order_relaxed);
    while (v > 0)
        if (atomic_compare_exchange_weak_explicit(&k->value, &v, v - 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
}

int mproc_sem_acquire(mproc_sem *s, int timeout_ms)
{
    if (!valid(s)) return MPROC_EINVAL;
    mproc__deadline dl;
    int rc = mproc__deadline_init(&dl, timeout_ms);
    if (rc) return rc;
    sem_impl *k = impl(s);
    for (;;) {
        if (try_take(k)) return 0;
        if (mproc__deadline_passed(&dl)) return MPROC_ETIMEDOUT;
        /* Sleep until the deadline or the end of this slice, whichever is
         * first; the caller's deadline is never extended. */
        mproc__deadline slice = {.at_ns = mproc_now_ns() + SLICE_NS, .forever = false};
        if (!dl.forever && dl.at_ns < slice.at_ns) slice.at_ns = dl.at_ns;
        /* Seq-cst on both sides: either release sees us registered, or the
         * futex sees the value it made non-zero. */
        atomic_fetch_add(&k->waiters, 1);
        rc = mproc__futex_wait(&k->value, 0, &slice);
        atomic_fetch_sub(&k->waiters, 1);
        if (rc && rc != MPROC_ETIMEDOUT) mproc__panic("mproc semaphore: futex wait: %d", rc);
    }
}

int mproc_sem_release(mproc_sem *s)
{
    if (!valid(s)) return MPROC_EINVAL;
    sem_impl *k = impl(s);
    uint32_t v = atomic_load_explicit(&k->value, memory_order_relaxed);
    do {
        if (v >= k->bound) return MPROC_EOVERFLOW;
    } while (!atomic_compare_exchange_weak(&k->value, &v, v + 1));
    if (atomic_load(&k->waiters)) mproc__futex_wake(&k->value, 1);
    return 0;
}

int mproc_sem_get_value(const mproc_sem *s, unsigned *value)
{
    if (!valid(s) || !value) return MPROC_EINVAL;
    *value = atomic_load(&impl(s)->value);
    return 0;
}
