/* Barrier: Python's threading.Barrier across processes.
 *
 * State, in the object's 128 bytes: an internal robust Lock guarding every
 * update, the party count, the number arrived in the current generation,
 * the generation number (the futex word waiters sleep on), a broken flag
 * and a 128-bit history telling, for each of the last 128 generations,
 * whether it ended broken.
 *
 * An arrival takes the lock and an index (the count so far). The last one
 * runs the action (lock held, as in Python) and ends the generation:
 * passed, or broken when the action fails. Ending a generation writes its
 * history bit first, then clears the count and advances the generation
 * number, and wakes every sleeper. Other arrivals sleep until the
 * generation number moves, then read their own generation's bit, so a
 * waiter that wakes late still learns how *its* generation ended even if
 * later ones have passed or broken since. (One that sleeps through 128 more
 * generations can no longer know; it gets MPROC_EBROKEN.)
 * Breaking (timeout, abort, reset with waiters, failed action) ends the
 * current generation as broken and sets the flag; arrivals then fail at
 * once until reset clears it.
 *
 * Dead processes. If the internal lock comes back MPROC_EOWNERDEAD, a
 * party died holding it: in the action, or in the middle of an update. We
 * do not try to finish its update: the barrier is broken (the current
 * generation ends broken, its waiters get MPROC_EBROKEN) and the lock made
 * consistent; reset makes it usable again. Sleepers look for such a dead
 * holder every SLICE_NS, so a party dying in the action cannot leave the
 * others asleep forever. A party that dies while waiting (not holding the
 * lock) still counts as arrived, as in Python where parties are calls.
 *
 * Timeouts bound the wait for the other parties. Taking the internal lock
 * on arrival is not bounded: it is held only for a few stores, or while
 * the last party runs the action (as in Python, where the action runs
 * under the barrier's lock).
 *
 * The action is stored as a function reference (module and offset,
 * arena/fnref.h), so a party of another program image (spawn,
 * forkserver) runs the same function. */
#include "arena/arena.h"
#include "arena/fnref.h"
#include "platform/platform.h"
#include "sync/sync.h"

#include <stdatomic.h>
#include <stdint.h>

#define BARRIER_MAGIC 0x42617272u /* "Barr" */
#define HIST_BITS     128u
#define SLICE_NS      250000000LL

typedef struct barrier_impl {
    mproc_lock lock; /* a robust Lock */
    uint32_t magic;
    uint32_t parties;
    _Atomic uint32_t count;  /* arrived in the current generation */
    _Atomic uint32_t gen;    /* current generation: the futex word */
    _Atomic uint32_t broken; /* 1 until reset */
    uint32_t reserved;
    mproc__fnref action;
    void *arg;
    _Atomic uint64_t hist[HIST_BITS / 64]; /* bit g % 128: generation g broke */
} barrier_impl;

_Static_assert(sizeof(barrier_impl) <= sizeof(mproc_barrier), "barrier storage");
_Static_assert(_Alignof(barrier_impl) <= _Alignof(mproc_barrier), "barrier alignment");

static inline barrier_impl *impl(const mproc_barrier *b)
{
    return (barrier_impl *)(void *)b->opaque_;
}

static bool valid(const mproc_barrier *b)
{
    return b && impl(b)->magic == BARRIER_MAGIC;
}

/* Ends the current generation (lock held): history bit, count, broken
 * flag, then the generation number; wakes every sleeper. */
static void end_generation(barrier_impl *k, bool broken)
{
    uint32_t g = atomic_load(&k->gen);
    uint64_t bit = (uint64_t)1 << (g % 64);
    _Atomic uint64_t *h = &k->hist[(g % HIST_BITS) / 64];
    if (broken)
        atomic_fetch_or(h, bit);
    else
        atomic_fetch_and(h, ~bit);
    atomic_store(&k->count, 0);
    if (broken) atomic_store(&k->broken, 1);
    atomic_store(&k->gen, g + 1);
    mproc__futex_wake(&k->gen, INT32_MAX);
}

/* After MPROC_EOWNERDEAD on the internal lock (held now): break. */
static void recover(barrier_impl *k)
{
    end_generation(k, true);
    int rc = mproc_lock_make_consistent(&k->lock);
    if (rc) mproc__panic("mproc barrier: make consistent: %d", rc);
}

static int lock_barrier(barrier_impl *k)
{
    int rc = mproc_lock_acquire(&k->lock, MPROC_FOREVER);
    if (rc == MPROC_EOWNERDEAD) {
        recover(k);
        rc = 0;
    }
    return rc;
}

static void unlock_barrier(barrier_impl *k)
{
    int rc = mproc_lock_release(&k->lock);
    if (rc) mproc__panic("mproc barrier: release: %d", rc);
}

/* How generation g (which has ended) ended: 0 passed, MPROC_EBROKEN. */
static int outcome(barrier_impl *k, uint32_t g)
{
    uint64_t h = atomic_load(&k->hist[(g % HIST_BITS) / 64]);
    /* The bit of g is rewritten only while generation g + 128 ends. */
    if (atomic_load(&k->gen) - g >= HIST_BITS) return MPROC_EBROKEN;
    return (h >> (g % 64)) & 1 ? MPROC_EBROKEN : 0;
}

/* Sleeps until generation g ends (0), the deadline (MPROC_ETIMEDOUT) or
 * keep (if set) turns false (MPROC_ECONNRESET). At the end of each slice,
 * a holder of the lock that died is found and dealt with (which ends the
 * generation). */
static int wait_generation(barrier_impl *k, uint32_t g, const mproc__deadline *dl,
                           bool (*keep)(void))
{
    for (;;) {
        if (atomic_load(&k->gen) != g) return 0;
        if (mproc__deadline_passed(dl)) return MPROC_ETIMEDOUT;
        mproc__deadline slice = {.at_ns = mproc_now_ns() + SLICE_NS, .forever = false};
        if (!dl->forever && dl->at_ns < slice.at_ns) slice.at_ns = dl->at_ns;
        int rc = mproc__futex_wait(&k->gen, g, &slice);
        if (rc == 0 || mproc__deadline_passed(dl) || atomic_load(&k->gen) != g) continue;
        if (rc != MPROC_ETIMEDOUT) mproc__panic("mproc barrier: futex wait: %d", rc);
        if (keep && !keep()) return MPROC_ECONNRESET;
        rc = mproc_lock_acquire(&k->lock, 0);
        if (rc == 0 || rc == MPROC_EOWNERDEAD) {
            if (rc) recover(k);
            unlock_barrier(k);
        }
    }
}

int mproc_barrier_init(mproc_barrier *b, unsigned parties, mproc_barrier_action action, void *arg)
{
    if (!b || parties == 0 || parties > INT32_MAX) return MPROC_EINVAL;
    int rc = mproc__sync_placed(b, sizeof *b, "mproc_barrier");
    if (rc) return rc;
    barrier_impl *k = impl(b);
    if ((rc = mproc_lock_init(&k->lock))) return rc;
    k->parties = parties;
    atomic_store(&k->count, 0);
    atomic_store(&k->gen, 0);
    atomic_store(&k->broken, 0);
    k->reserved = 0;
    if ((rc = mproc__fnref_make((const void *)action, &k->action))) {
        mproc_lock_fini(&k->lock);
        return rc;
    }
    k->arg = arg;
    for (unsigned i = 0; i < HIST_BITS / 64; i++) atomic_store(&k->hist[i], 0);
    atomic_thread_fence(memory_order_release);
    k->magic = BARRIER_MAGIC;
    return 0;
}

void mproc_barrier_fini(mproc_barrier *b)
{
    if (!valid(b)) return;
    impl(b)->magic = 0;
    mproc_lock_fini(&impl(b)->lock);
}

int mproc_barrier_new(mproc_barrier **out, unsigned parties, mproc_barrier_action action, void *arg)
{
    if (!out) return MPROC_EINVAL;
    mproc_barrier *b;
    int rc = mproc_arena_alloc((void **)&b, sizeof *b);
    return rc ? rc : mproc__shm_adopt((void **)out, b, mproc_barrier_init(b, parties, action, arg));
}

void mproc_barrier_free(mproc_barrier *b)
{
    if (!b) return;
    mproc_barrier_fini(b);
    mproc_arena_free(b);
}

int mproc_barrier_wait(mproc_barrier *b, int timeout_ms, unsigned *index)
{
    return mproc__barrier_wait_while(b, timeout_ms, index, NULL);
}

int mproc__barrier_wait_while(mproc_barrier *b, int timeout_ms, unsigned *index, bool (*keep)(void))
{
    if (!valid(b)) return MPROC_EINVAL;
    mproc__deadline dl;
    int rc = mproc__deadline_init(&dl, timeout_ms);
    if (rc) return rc;
    barrier_impl *k = impl(b);
    if ((rc = lock_barrier(k))) return rc;
    if (atomic_load(&k->broken)) {
        unlock_barrier(k);
        return MPROC_EBROKEN;
    }
    uint32_t idx = atomic_load(&k->count), g = atomic_load(&k->gen);
    if (idx + 1 == k->parties) { /* the last to arrive */
        mproc_barrier_action fn = (mproc_barrier_action)mproc__fnref_resolve(k->action);
        bool ok = !k->action || (fn && fn(k->arg) == 0);
        end_generation(k, !ok);
        unlock_barrier(k);
        if (!ok) return MPROC_EBROKEN;
        if (index) *index = idx;
        return 0;
    }
    atomic_store(&k->count, idx + 1);
    unlock_barrier(k);

    int waited = wait_generation(k, g, &dl, keep);
    if (waited) { /* timed out, or gave up: this generation breaks */
        if ((rc = lock_barrier(k))) return rc;
        bool mine = atomic_load(&k->gen) == g; /* not ended meanwhile */
        if (mine) end_generation(k, true);
        unlock_barrier(k);
        if (mine) return waited;
    }
    if ((rc = outcome(k, g))) return rc;
    if (index) *index = idx;
    return 0;
}

int mproc_barrier_abort(mproc_barrier *b)
{
    if (!valid(b)) return MPROC_EINVAL;
    barrier_impl *k = impl(b);
    int rc = lock_barrier(k);
    if (rc) return rc;
    if (!atomic_load(&k->broken)) end_generation(k, true);
    unlock_barrier(k);
    return 0;
}

int mproc_barrier_reset(mproc_barrier *b)
{
    if (!valid(b)) return MPROC_EINVAL;
    barrier_impl *k = impl(b);
    int rc = lock_barrier(k);
    if (rc) return rc;
    if (!atomic_load(&k->broken) && atomic_load(&k->count) > 0) end_generation(k, true);
    atomic_store(&k->count, 0);
    atomic_store(&k->broken, 0);
    unlock_barrier(k);
    return 0;
}

unsigned mproc_barrier_parties(const mproc_barrier *b)
{
    return valid(b) ? impl(b)->parties : 0;
}

unsigned mproc_barrier_n_waiting(const mproc_barrier *b)
{
    if (!valid(b) || atomic_load(&impl(b)->broken)) return 0;
    return atomic_load(&impl(b)->count);
}

bool mproc_barrier_broken(const mproc_barrier *b)
{
    return valid(b) && atomic_load(&impl(b)->broken);
}
