/* Event: one futex word in shared memory.
 *
 * The word holds the flag in bit 0 and, above it, a count of the times the
 * flag was set. A waiter remembers the word it saw clear and sleeps while
 * the word is unchanged; clear() does not change a clear word, so any
 * change means a set happened since. A waiter therefore returns 0 even if
 * the flag was set and cleared again before it ran, as in Python, where
 * set() notifies every waiter. A waiter count spares set() the wake-up
 * syscall when nobody sleeps (a waiter that dies leaves it too high, which
 * only costs that syscall). A set() killed between its store and its
 * wake-up would leave the sleepers asleep with the flag set (a later set()
 * finds it set and wakes nobody): sleepers look again every SLICE_NS. */
#include "arena/arena.h"
#include "platform/platform.h"
#include "sync/sync.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#define EVENT_MAGIC   0x45766e74u /* "Evnt" */
#define FLAG          1u
#define SLICE_NS      1000000000LL /* how often a waiter looks again */
#define KEEP_SLICE_NS 200000000LL  /* how often a wait with keep asks it */

#ifdef MPROC_TESTING
bool mproc__event_crash_before_wake;
#endif

typedef struct event_impl {
    uint32_t magic;
    _Atomic uint32_t word;    /* bit 0: set; bits 1..31: count of sets */
    _Atomic uint32_t waiters; /* registered sleepers (a hint) */
    uint32_t reserved;
} event_impl;

_Static_assert(sizeof(event_impl) <= sizeof(mproc_event), "event storage");
_Static_assert(_Alignof(event_impl) <= _Alignof(mproc_event), "event alignment");

static inline event_impl *impl(const mproc_event *e)
{
    return (event_impl *)(void *)e->opaque_;
}

static bool valid(const mproc_event *e)
{
    return e && impl(e)->magic == EVENT_MAGIC;
}

int mproc_event_init(mproc_event *e)
{
    int rc = mproc__sync_placed(e, sizeof *e, "mproc_event");
    if (rc) return rc;
    event_impl *k = impl(e);
    atomic_store(&k->word, 0);
    atomic_store(&k->waiters, 0);
    k->reserved = 0;
    atomic_thread_fence(memory_order_release);
    k->magic = EVENT_MAGIC;
    return 0;
}

void mproc_event_fini(mproc_event *e)
{
    if (valid(e)) impl(e)->magic = 0;
}

int mproc_event_new(mproc_event **out)
{
    if (!out) return MPROC_EINVAL;
    mproc_event *e;
    int rc = mproc_arena_alloc((void **)&e, sizeof *e);
    return rc ? rc : mproc__shm_adopt((void **)out, e, mproc_event_init(e));
}

void mproc_event_free(mproc_event *e)
{
    if (!e) return;
    mproc_event_fini(e);
    mproc_arena_free(e);
}

int mproc_event_set(mproc_event *e)
{
    if (!valid(e)) return MPROC_EINVAL;
    event_impl *k = impl(e);
    uint32_t w = atomic_load_explicit(&k->word, memory_order_relaxed);
    do {
        if (w & FLAG) return 0; /* already set: its waiters were woken */
    } while (!atomic_compare_exchange_weak(&k->word, &w, (w + 2) | FLAG));
    if (atomic_load(&k->waiters)) {
#ifdef MPROC_TESTING
        if (MPROC__UNLIKELY(mproc__event_crash_before_wake)) raise(SIGKILL);
#endif
        mproc__futex_wake(&k->word, INT32_MAX);
    }
    return 0;
}

int mproc_event_clear(mproc_event *e)
{
    if (!valid(e)) return MPROC_EINVAL;
    atomic_fetch_and(&impl(e)->word, ~FLAG);
    return 0;
}

bool mproc_event_is_set(const mproc_event *e)
{
    return valid(e) && (atomic_load(&impl(e)->word) & FLAG);
}

int mproc_event_wait(mproc_event *e, int timeout_ms)
{
    return mproc__event_wait_while(e, timeout_ms, NULL);
}

int mproc__event_wait_while(mproc_event *e, int timeout_ms, bool (*keep)(void))
{
    if (!valid(e)) return MPROC_EINVAL;
    mproc__deadline dl;
    int rc = mproc__deadline_init(&dl, timeout_ms);
    if (rc) return rc;
    event_impl *k = impl(e);
    uint32_t w = atomic_load(&k->word);
    if (w & FLAG) return 0;
    if (timeout_ms == 0) return MPROC_ETIMEDOUT;
    /* Seq-cst on both sides: either set() sees us registered, or the futex
     * sees the word it changed. */
    atomic_fetch_add(&k->waiters, 1);
    for (;;) {
        if (atomic_load(&k->word) != w) {
            rc = 0;
            break;
        }
        mproc__deadline slice = {.at_ns = mproc_now_ns() + (keep ? KEEP_SLICE_NS : SLICE_NS)};
        if (!dl.forever && dl.at_ns < slice.at_ns) slice.at_ns = dl.at_ns;
        rc = mproc__futex_wait(&k->word, w, &slice);
        if (rc == MPROC_ETIMEDOUT) {
            if (atomic_load(&k->word) != w) {
                rc = 0;
                break;
            }
            if (mproc__deadline_passed(&dl)) break;
            if (keep && !keep()) {
                rc = MPROC_ECONNRESET;
                break;
            }
            continue; /* a slice ended */
        }
        if (rc) mproc__panic("mproc event: futex wait: %d", rc);
    }
    atomic_fetch_sub(&k->waiters, 1);
    return rc;
}
