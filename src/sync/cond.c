/* Condition: Python's semantics over a Lock or RLock, across processes.
 *
 * Waiters queue in a FIFO list of nodes allocated in the arena, one node
 * per wait, protected by the condition's lock (every list access happens
 * with it held). A node carries its own futex word (0 waiting, 1
 * notified), so notify(n) wakes exactly the n longest-waiting waiters and
 * nobody else, and a robust mutex that its waiting thread holds for as long
 * as the node exists: a notifier that finds it owner-dead (trylock gives
 * EOWNERDEAD) knows the waiter died, drops and frees the node and moves on,
 * so a dead waiter never eats a notification. (This is immune to pid
 * reuse, unlike kill(pid, 0).)
 *
 * wait: append the node, release the lock completely, sleep on the node's
 * word until it is 1 or the deadline passes (looking again every second: a
 * notifier killed between its mark and its wake-up owes one), take the
 * lock back. Then the word decides, under the lock: 1 means a notifier
 * took the node off the list and the wait returns 0; 0 means it timed out,
 * and the waiter unlinks its own node and returns MPROC_ETIMEDOUT. A
 * waiter that times out just as it is notified therefore reports the
 * notification instead of swallowing it. The waiter frees its node.
 *
 * Crash tolerance. The lock may come back MPROC_EOWNERDEAD: a process died
 * holding it, possibly in the middle of a list update. Every update is
 * bracketed by a `dirty` word set to 1 before and 0 after, and its stores
 * are ordered (seq-cst atomics) so that at any point the chain from `head`
 * is a well-formed list of allocated nodes, with only `tail` and already
 * notified nodes possibly out of date:
 *   append: link from tail (or head), then move tail;
 *   notify: mark and wake the node, then unlink it;
 *   unlink: relink the predecessor (or head), then fix tail;
 * and a node is freed only after it is unlinked. Whoever holds the lock and
 * finds `dirty` set walks the chain from head, drops notified nodes,
 * recomputes tail and clears `dirty` (idempotent, so a crash during the
 * repair is repaired again). A node its dying owner was about to add or
 * had just removed is leaked, never corrupting. */
#include "arena/arena.h"
#include "sync/cond.h"
#include "platform/platform.h"
#include "sync/sync.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#define COND_MAGIC 0x436f6e64u  /* "Cond" */
#define SLICE_NS   1000000000LL /* a sleeping waiter looks at its word again */
#define NODE_MAGIC 0x436e6f64u  /* "Cnod" */
#define WALK_LIMIT (1u << 24)   /* no list is longer; guards the repair walk */

typedef struct cnode {
    pthread_mutex_t alive; /* robust, process-shared; held by the waiter */
    _Atomic uint32_t word; /* 0 waiting, 1 notified: the futex word */
    uint32_t magic;
    struct cnode *_Atomic next;
} cnode;

typedef struct cond_impl {
    mproc_lock own;   /* the condition's own RLock, when given none */
    mproc_lock *lock; /* the lock in use: &own or the caller's */
    cnode *_Atomic head;
    cnode *_Atomic tail;
    _Atomic uint32_t dirty; /* a list update is under way */
    uint32_t magic;
} cond_impl;

_Static_assert(sizeof(cond_impl) <= sizeof(mproc_cond), "condition storage");
_Static_assert(_Alignof(cond_impl) <= _Alignof(mproc_cond), "condition alignment");

#ifdef MPROC_TESTING
mproc__cond_crash_point mproc__cond_crash_at;

#define CRASH_POINT(p)                                                                             \
    do {                                                                                           \
        if (MPROC__UNLIKELY(mproc__cond_crash_at == (p))) raise(SIGKILL);                          \
    } while (0)
#else
#define CRASH_POINT(p) ((void)0)
#endif

static inline cond_impl *impl(const mproc_cond *c)
{
    return (cond_impl *)(void *)c->opaque_;
}

static bool valid(const mproc_cond *c)
{
    return c && impl(c)->magic == COND_MAGIC;
}

/* ---- the waiter list (lock held) ----------------------------------------- */

static void begin_update(cond_impl *k)
{
    atomic_store(&k->dirty, 1);
}
static void end_update(cond_impl *k)
{
    atomic_store(&k->dirty, 0);
}

/* Rebuilds the list after a holder died mid-update (see the top). */
static void repair(cond_impl *k)
{
    cnode *prev = NULL, *n = atomic_load(&k->head);
    for (unsigned steps = 0; n; steps++) {
        if (n->magic != NODE_MAGIC || steps >= WALK_LIMIT) { /* cannot happen: cut */
            if (prev)
                atomic_store(&prev->next, NULL);
            else
                atomic_store(&k->head, NULL);
            break;
        }
        cnode *next = atomic_load(&n->next);
        if (atomic_load(&n->word)) { /* notified: its waiter frees it */
            if (prev)
                atomic_store(&prev->next, next);
            else
                atomic_store(&k->head, next);
        } else {
            prev = n;
        }
        n = next;
    }
    atomic_store(&k->tail, prev);
    end_update(k);
}

static void check_list(cond_impl *k)
{
    if (MPROC__UNLIKELY(atomic_load(&k->dirty))) repair(k);
}

static void append(cond_impl *k, cnode *n)
{
    begin_update(k);
    cnode *t = atomic_load(&k->tail);
    if (t)
        atomic_store(&t->next, n);
    else
        atomic_store(&k->head, n);
    CRASH_POINT(MPROC__COND_CRASH_APPEND_LINKED);
    atomic_store(&k->tail, n);
    end_update(k);
}

/* Unlinks n, whose predecessor is prev (NULL: n is the head). Within an
 * update. */
static void unlink_after(cond_impl *k, cnode *prev, cnode *n)
{
    cnode *next = atomic_load(&n->next);
    if (prev)
        atomic_store(&prev->next, next);
    else
        atomic_store(&k->head, next);
    CRASH_POINT(MPROC__COND_CRASH_UNLINKED);
    if (atomic_load(&k->tail) == n) atomic_store(&k->tail, prev);
}

/* Unlinks n wherever it is; false if it is not in the list. */
static bool remove_node(cond_impl *k, cnode *n)
{
    cnode *prev = NULL;
    for (cnode *p = atomic_load(&k->head); p; prev = p, p = atomic_load(&p->next)) {
        if (p != n) continue;
        begin_update(k);
        unlink_after(k, prev, n);
        end_update(k);
        return true;
    }
    return false;
}

/* ---- nodes ---------------------------------------------------------------- */

static int node_new(cnode **out)
{
    cnode *n;
    int rc = mproc_arena_alloc((void **)&n, sizeof *n);
    if (rc) return rc;
    pthread_mutexattr_t a;
    if (pthread_mutexattr_init(&a)) {
        mproc_arena_free(n);
        return MPROC_ENOMEM;
    }
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    int r = pthread_mutex_init(&n->alive, &a);
    pthread_mutexattr_destroy(&a);
    if (r) {
        mproc_arena_free(n);
        return -r;
    }
    /* A fresh mutex: trylock takes it. No one ever waits for it (notifiers
     * only try it), and with trylock ThreadSanitizer's deadlock detector
     * sees no order between it and the condition's lock, which the waiter
     * takes again while holding it. */
    if ((r = pthread_mutex_trylock(&n->alive))) mproc__panic("mproc condition: node lock: %d", r);
    atomic_store(&n->word, 0);
    atomic_store(&n->next, NULL);
    n->magic = NODE_MAGIC;
    *out = n;
    return 0;
}

/* Frees a node whose mutex the caller holds (or held and lost to death). */
static void node_free(cnode *n, bool unlock)
{
    if (unlock) pthread_mutex_unlock(&n->alive);
    pthread_mutex_destroy(&n->alive);
    n->magic = 0;
    mproc_arena_free(n);
}

/* ---- public API ----------------------------------------------------------- */

int mproc_cond_init(mproc_cond *c, mproc_lock *lock)
{
    int rc = mproc__sync_placed(c, sizeof *c, "mproc_cond");
    if (rc) return rc;
    cond_impl *k = impl(c);
    if (lock && !mproc__lock_valid(lock)) return MPROC_EINVAL;
    if (!lock) {
        rc = mproc_rlock_init(&k->own);
        if (rc) return rc;
        lock = &k->own;
    }
    k->lock = lock;
    atomic_store(&k->head, NULL);
    atomic_store(&k->tail, NULL);
    atomic_store(&k->dirty, 0);
    atomic_thread_fence(memory_order_release);
    k->magic = COND_MAGIC;
    return 0;
}

void mproc_cond_fini(mproc_cond *c)
{
    if (!valid(c)) return;
    cond_impl *k = impl(c);
    /* Nodes left behind by waiters that died: free them. A live waiter's
     * node (misuse: finishing a condition in use) is left alone. */
    cnode *n = atomic_load(&k->head);
    for (unsigned steps = 0; n && n->magic == NODE_MAGIC && steps < WALK_LIMIT; steps++) {
        cnode *next = atomic_load(&n->next);
        int r = pthread_mutex_trylock(&n->alive);
        if (r != EBUSY) node_free(n, r == 0 || r == EOWNERDEAD);
        n = next;
    }
    atomic_store(&k->head, NULL);
    atomic_store(&k->tail, NULL);
    k->magic = 0;
    if (k->lock == &k->own) mproc_lock_fini(&k->own);
}

int mproc_cond_new(mproc_cond **out, mproc_lock *lock)
{
    if (!out) return MPROC_EINVAL;
    mproc_cond *c;
    int rc = mproc_arena_alloc((void **)&c, sizeof *c);
    return rc ? rc : mproc__shm_adopt((void **)out, c, mproc_cond_init(c, lock));
}

void mproc_cond_free(mproc_cond *c)
{
    if (!c) return;
    mproc_cond_fini(c);
    mproc_arena_free(c);
}

mproc_lock *mproc_cond_lock(mproc_cond *c)
{
    return valid(c) ? impl(c)->lock : NULL;
}

int mproc_cond_acquire(mproc_cond *c, int timeout_ms)
{
    if (!valid(c)) return MPROC_EINVAL;
    return mproc_lock_acquire(impl(c)->lock, timeout_ms);
}

int mproc_cond_release(mproc_cond *c)
{
    if (!valid(c)) return MPROC_EINVAL;
    return mproc_lock_release(impl(c)->lock);
}

/* One wait with a deadline made by the caller (valid c, lock held). */
static int wait_dl(cond_impl *k, const mproc__deadline *dl)
{
    cnode *n;
    int rc = node_new(&n);
    if (rc) return rc;
    check_list(k);
    append(k, n);

    unsigned depth;
    if ((rc = mproc__lock_release_all(k->lock, &depth)))
        mproc__panic("mproc condition: release of a held lock: %d", rc);
    while (atomic_load(&n->word) == 0) {
        /* A notifier killed between its mark and its wake-up leaves us
         * asleep though notified: look again every SLICE_NS. */
        mproc__deadline slice = {.at_ns = mproc_now_ns() + SLICE_NS};
        if (!dl->forever && dl->at_ns < slice.at_ns) slice.at_ns = dl->at_ns;
        rc = mproc__futex_wait(&n->word, 0, &slice);
        if (rc == MPROC_ETIMEDOUT && mproc__deadline_passed(dl)) break;
        if (rc && rc != MPROC_ETIMEDOUT) mproc__panic("mproc condition: futex wait: %d", rc);
    }
    int lrc = mproc__lock_reacquire(k->lock, depth);
    if (lrc && lrc != MPROC_EOWNERDEAD) {
        /* Not holding the lock we cannot touch the list: give the node up.
         * Its mutex, now free, tells a notifier it is stale. */
        pthread_mutex_unlock(&n->alive);
        return lrc;
    }
    check_list(k);
    if (atomic_load(&n->word)) {
        rc = 0; /* notified: the notifier (or the repair) unlinked it */
    } else {
        remove_node(k, n);
        rc = MPROC_ETIMEDOUT;
    }
    node_free(n, true);
    return lrc ? lrc : rc;
}

int mproc_cond_wait(mproc_cond *c, int timeout_ms)
{
    if (!valid(c)) return MPROC_EINVAL;
    mproc__deadline dl;
    int rc = mproc__deadline_init(&dl, timeout_ms);
    if (rc) return rc;
    cond_impl *k = impl(c);
    if (!mproc__lock_held(k->lock)) return MPROC_EPERM;
    return wait_dl(k, &dl);
}

/* A lock that came back from a dead owner ends the loop at once (the
 * caller must repair what the lock protects before the predicate means
 * anything). */
int mproc_cond_wait_for(mproc_cond *c, bool (*pred)(void *arg), void *arg, int timeout_ms)
{
    if (!valid(c) || !pred) return MPROC_EINVAL;
    mproc__deadline dl;
    int rc = mproc__deadline_init(&dl, timeout_ms);
    if (rc) return rc;
    cond_impl *k = impl(c);
    if (!mproc__lock_held(k->lock)) return MPROC_EPERM;
    while (!pred(arg)) {
        rc = wait_dl(k, &dl);
        if (rc == MPROC_ETIMEDOUT) return pred(arg) ? 0 : MPROC_ETIMEDOUT;
        if (rc) return rc;
    }
    return 0;
}

int mproc_cond_notify(mproc_cond *c, unsigned n)
{
    if (!valid(c)) return MPROC_EINVAL;
    cond_impl *k = impl(c);
    if (!mproc__lock_held(k->lock)) return MPROC_EPERM;
    check_list(k);
    while (n > 0) {
        cnode *h = atomic_load(&k->head);
        if (!h) break;
        int r = pthread_mutex_trylock(&h->alive);
        begin_update(k);
        if (r == EBUSY) { /* a live waiter */
            atomic_store(&h->word, 1);
            CRASH_POINT(MPROC__COND_CRASH_NOTIFY_BEFORE_WAKE);
            mproc__futex_wake(&h->word, 1);
            CRASH_POINT(MPROC__COND_CRASH_NOTIFY_MARKED);
            n--;
        }
        unlink_after(k, NULL, h);
        end_update(k);
        /* Otherwise the waiter died (EOWNERDEAD, or ENOTRECOVERABLE after
         * a notifier died here), or gave the node up (0): free it. */
        if (r != EBUSY) node_free(h, r == 0 || r == EOWNERDEAD);
    }
    return 0;
}

int mproc_cond_notify_all(mproc_cond *c)
{
    return mproc_cond_notify(c, UINT_MAX);
}

#ifdef MPROC_TESTING
int mproc__cond_n_waiters(mproc_cond *c)
{
    if (!valid(c) || !mproc__lock_held(impl(c)->lock)) return -1;
    cond_impl *k = impl(c);
    check_list(k);
    int count = 0;
    for (cnode *n = atomic_load(&k->head); n; n = atomic_load(&n->next)) count++;
    return count;
}
#endif
