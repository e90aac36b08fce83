/* The manager's built-in queue and synchronisation types: Queue,
 * JoinableQueue, Lock, RLock, Semaphore, BoundedSemaphore, Condition,
 * Event, Barrier. The synchronisation types wrap the mproc object of the
 * same name; a Queue is the server's own (its items are values, and one
 * taken for a client that died goes back to its head). Blocking calls
 * block the server thread of the calling connection, as in Python, in
 * slices, between which they give up if their client is gone (see
 * mproc__mgr_client_alive); what a call took for a client that does not
 * get the reply is given back (mproc__mgr_on_undelivered). An optional
 * timeout argument is in milliseconds. */
#include "manager/manager.h"
#include "sync/sync.h"
#include "mproc/sync.h"

#include <stdlib.h>
#include <time.h>

/* The optional timeout argument n: *ms (MPROC_FOREVER when absent, nil or
 * MPROC_FOREVER), or a method failure: not an int, or another negative
 * (base.h's rule; Python's ValueError). */
static int timeout_arg(const mproc_value *a, size_t n, int *ms)
{
    int64_t v;
    const mproc_value *x = mproc__mgr_arg(a, n);
    *ms = MPROC_FOREVER;
    if (!x || mproc_value_kind_of(x) == MPROC_V_NIL) return 0;
    if (mproc_value_kind_of(x) != MPROC_V_INT)
        return mproc__mgr_fail(MPROC_EINVAL, "timeout_ms must be an int");
    if (mproc_value_is_uint(x)) { /* above INT64_MAX */
        *ms = INT32_MAX;
        return 0;
    }
    mproc_value_get_int(x, &v);
    if (v < 0 && v != MPROC_FOREVER)
        return mproc__mgr_fail(MPROC_EINVAL, "timeout_ms must be >= 0, or MPROC_FOREVER (-1)");
    *ms = v < 0 ? MPROC_FOREVER : v > INT32_MAX ? INT32_MAX : (int)v;
    return 0;
}

/* Declares int ms from argument n, returning the failure of a bad one. */
#define TIMEOUT(a, n, ms)                                                                          \
    int ms;                                                                                        \
    do {                                                                                           \
        int trc_ = timeout_arg(a, n, &ms);                                                         \
        if (trc_) return trc_;                                                                     \
    } while (0)

static int unsigned_arg(const mproc_value *a, size_t n, unsigned dflt)
{
    int64_t v;
    if (mproc_value_get_int(mproc__mgr_arg(a, n), &v) || v < 0 || v > INT32_MAX) return (int)dflt;
    return (int)v;
}

static int ret_bool(mproc_value **r, bool b)
{
    return (*r = mproc_value_bool(b)) ? 0 : MPROC_ENOMEM;
}

/* A blocking call's outcome: 0, a timeout as false (want_bool) or as a
 * method error, or another failure. */
static int outcome(int rc, mproc_value **r, bool want_bool, const char *what)
{
    if (rc == 0) return want_bool ? ret_bool(r, true) : 0;
    if (rc == MPROC_ETIMEDOUT && want_bool) return ret_bool(r, false);
    return mproc__mgr_fail(rc, "%s: %s", what, mproc_strerror(rc));
}

/* ---- waiting in slices ------------------------------------------------------------- */

/* The next slice of a wait until dl: at most MPROC__MGR_WAIT_SLICE_MS, 0
 * once dl has passed. */
static int next_slice(const mproc__deadline *dl)
{
    int left = mproc__deadline_poll_ms(dl);
    return left < 0 || left > MPROC__MGR_WAIT_SLICE_MS ? MPROC__MGR_WAIT_SLICE_MS : left;
}

/* Waits with wait(s, slice_ms), which returns 0, MPROC_ETIMEDOUT at the
 * end of a slice, or a failure, for up to ms: MPROC_ETIMEDOUT after ms,
 * MPROC_ECONNRESET once the client is gone (then nothing was taken). */
static int sliced(int (*wait)(void *s, int slice_ms), void *s, int ms)
{
    mproc__deadline dl;
    int rc = mproc__deadline_init(&dl, ms);
    if (rc) return rc;
    for (bool waited = false;; waited = true) {
        if (waited && !mproc__mgr_client_alive()) return MPROC_ECONNRESET;
        rc = wait(s, next_slice(&dl));
        if (rc != MPROC_ETIMEDOUT || mproc__deadline_passed(&dl)) return rc;
    }
}

/* ---- Queue ------------------------------------------------------------------------ */

/* A FIFO of values (with the references they hold) under a mutex, in the
 * server only: a ring of items[cap] from head. */
typedef struct mqueue {
    pthread_mutex_t mu;
    pthread_cond_t items, room, done; /* CLOCK_MONOTONIC */
    mproc_value **ring;
    size_t head, len, cap, maxsize;
    bool joinable;
    uint64_t unfinished; /* items put and not yet task_done */
} mqueue;

/* Waits on cv (q->mu held) for up to ms. */
static void mq_sleep(mqueue *q, pthread_cond_t *cv, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(cv, &q->mu, &ts);
}

/* Sleeps on cv (q->mu held) while blocked(q), for up to ms: 0 once it is
 * not, MPROC_ETIMEDOUT, MPROC_ECONNRESET (the client is gone). */
static int mq_wait(mqueue *q, pthread_cond_t *cv, bool (*blocked)(const mqueue *), int ms)
{
    mproc__deadline dl;
    int rc = mproc__deadline_init(&dl, ms);
    for (bool waited = false; !rc && blocked(q); waited = true) {
        if (waited && !mproc__mgr_client_alive()) return MPROC_ECONNRESET;
        if (mproc__deadline_passed(&dl)) return MPROC_ETIMEDOUT;
        mq_sleep(q, cv, next_slice(&dl));
    }
    return rc;
}

static bool mq_empty(const mqueue *q)
{
    return q->len == 0;
}

static bool mq_full(const mqueue *q)
{
    return q->maxsize && q->len >= q->maxsize;
}

static bool mq_unfinished(const mqueue *q)
{
    return q->unfinished > 0;
}

/* The ring moved to an array of nc slots (q->mu held). */
static int mq_resize(mqueue *q, size_t nc)
{
    mproc_value **n = malloc(nc * sizeof *n);
    if (!n) return MPROC_ENOMEM;
    for (size_t i = 0; i < q->len; i++) n[i] = q->ring[(q->head + i) % q->cap];
    free(q->ring);
    q->ring = n;
    q->cap = nc;
    q->head = 0;
    return 0;
}

/* Room for one more item (q->mu held). */
static int mq_reserve(mqueue *q)
{
    return q->len < q->cap ? 0 : mq_resize(q, q->cap ? q->cap * 2 : 16);
}

/* Appends v (taken over on success). */
static int mq_put(mqueue *q, mproc_value *v, int ms)
{
    MPROC__LOCK(&q->mu);
    int rc = mq_wait(q, &q->room, mq_full, ms);
    if (!rc) rc = mq_reserve(q);
    if (!rc) {
        q->ring[(q->head + q->len++) % q->cap] = v;
        if (q->joinable) q->unfinished++;
        pthread_cond_signal(&q->items);
    }
    MPROC__UNLOCK(&q->mu);
    return rc;
}

/* Takes the head item into *out. */
static int mq_get(mqueue *q, mproc_value **out, int ms)
{
    MPROC__LOCK(&q->mu);
    int rc = mq_wait(q, &q->items, mq_empty, ms);
    if (!rc) {
        *out = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->len--;
        if (q->cap > 64 && q->len < q->cap / 4) (void)mq_resize(q, q->cap / 2); /* memory back */
        pthread_cond_signal(&q->room);
    }
    MPROC__UNLOCK(&q->mu);
    return rc;
}

/* An item taken for a client that never got it goes back to the head
 * (above maxsize if need be); its unfinished task was never done. */
static void mq_unget(mqueue *q, mproc_value *v)
{
    MPROC__LOCK(&q->mu);
    if (mq_reserve(q) == 0) {
        q->head = (q->head + q->cap - 1) % q->cap;
        q->ring[q->head] = v;
        q->len++;
        v = NULL;
        pthread_cond_signal(&q->items);
    }
    MPROC__UNLOCK(&q->mu);
    if (v) { /* no memory: lost */
        mproc__mgr_hold(v, -1);
        mproc_value_free(v);
    }
}

static int queue_make(const mproc_value *args, void **state, bool joinable)
{
    const char *call = joinable ? "JoinableQueue()" : "Queue()";
    int rc = mproc__mgr_at_most(args, 1, call, "[3] makes Queue(3)");
    if (rc) return rc;
    /* maxsize: absent, nil, or an int (0 or less: no limit, as in Python) */
    const mproc_value *x = mproc__mgr_arg(args, 0);
    int64_t maxsize = 0;
    if (x && mproc_value_kind_of(x) != MPROC_V_NIL) {
        if (mproc_value_kind_of(x) != MPROC_V_INT)
            return mproc__mgr_fail(MPROC_EINVAL,
                                   "%s(maxsize) takes an int (0 or less: no limit): [3] makes "
                                   "Queue(3), [] Queue()",
                                   joinable ? "JoinableQueue" : "Queue");
        if (mproc_value_is_uint(x) || mproc_value_get_int(x, &maxsize)) maxsize = INT64_MAX;
        if (maxsize < 0) maxsize = 0;
    }
    mqueue *q = calloc(1, sizeof *q);
    if (!q) return MPROC_ENOMEM;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->items, &ca);
    pthread_cond_init(&q->room, &ca);
    pthread_cond_init(&q->done, &ca);
    pthread_condattr_destroy(&ca);
    q->maxsize = (uint64_t)maxsize > SIZE_MAX ? SIZE_MAX : (size_t)maxsize;
    q->joinable = joinable;
    *state = q;
    return 0;
}

static int queue_create(const mproc_value *args, void **state)
{
    return queue_make(args, state, false);
}

static int jqueue_create(const mproc_value *args, void **state)
{
    return queue_make(args, state, true);
}

static void queue_destroy(void *state)
{
    mqueue *q = state;
    for (size_t i = 0; i < q->len; i++) { /* references they held */
        mproc_value *v = q->ring[(q->head + i) % q->cap];
        mproc__mgr_hold(v, -1);
        mproc_value_free(v);
    }
    free(q->ring);
    pthread_cond_destroy(&q->items);
    pthread_cond_destroy(&q->room);
    pthread_cond_destroy(&q->done);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

static int q_put(void *s, const mproc_value *a, mproc_value **r)
{
    (void)r;
    const mproc_value *v = mproc__mgr_arg(a, 0);
    if (!v) return mproc__mgr_fail(MPROC_EINVAL, "put(item[, timeout_ms])");
    TIMEOUT(a, 1, ms);
    mproc_value *c = mproc_value_copy(v);
    if (!c) return MPROC_ENOMEM;
    if (!mproc__mgr_hold_new(c)) {
        mproc_value_free(c);
        return mproc__mgr_fail(MPROC_EINVAL, "a reference names no object");
    }
    int rc = mq_put(s, c, ms);
    if (rc) {
        mproc__mgr_hold(c, -1);
        mproc_value_free(c);
    }
    return rc == MPROC_ETIMEDOUT ? mproc__mgr_fail(rc, "queue.Full") : outcome(rc, r, false, "put");
}

/* A get whose item did not reach its client: the item goes back to the
 * head, with references of its own again (the dead connection's, which
 * the result lent it, are dropped when its thread ends). */
static void q_unget(void *s, const mproc_value *item)
{
    mproc_value *c = item ? mproc_value_copy(item) : NULL;
    if (!c) return;
    mproc__mgr_hold(c, +1);
    mq_unget(s, c);
}

static int q_get(void *s, const mproc_value *a, mproc_value **r)
{
    TIMEOUT(a, 0, ms);
    int rc = mq_get(s, r, ms);
    if (rc == MPROC_ETIMEDOUT) return mproc__mgr_fail(rc, "queue.Empty");
    if (rc == 0) {
        mproc__mgr_result_owned(); /* the queue's references pass to the caller */
        mproc__mgr_on_undelivered(q_unget);
    }
    return outcome(rc, r, false, "get");
}

/* One of the counts, read under the lock. */
static size_t q_count(mqueue *q, int what)
{
    MPROC__LOCK(&q->mu);
    size_t n = what == 0 ? q->len : what == 1 ? mq_empty(q) : mq_full(q);
    MPROC__UNLOCK(&q->mu);
    return n;
}

static int q_qsize(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    return (*r = mproc_value_int((int64_t)q_count(s, 0))) ? 0 : MPROC_ENOMEM;
}

static int q_empty(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    return ret_bool(r, q_count(s, 1));
}

static int q_full(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    return ret_bool(r, q_count(s, 2));
}

static int q_task_done(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    (void)r;
    mqueue *q = s;
    MPROC__LOCK(&q->mu);
    bool ok = q->unfinished > 0;
    if (ok && --q->unfinished == 0) pthread_cond_broadcast(&q->done);
    MPROC__UNLOCK(&q->mu);
    return ok ? 0
              : mproc__mgr_fail(MPROC_EBADSTATE, "task_done: task_done() called too many times");
}

static int q_join(void *s, const mproc_value *a, mproc_value **r)
{
    TIMEOUT(a, 0, ms);
    mqueue *q = s;
    MPROC__LOCK(&q->mu);
    int rc = mq_wait(q, &q->done, mq_unfinished, ms);
    MPROC__UNLOCK(&q->mu);
    return outcome(rc, r, false, "join");
}

static const mproc_method_def queue_methods[] = {
    {"put", q_put, NULL},     {"get", q_get, NULL},   {"qsize", q_qsize, NULL},
    {"empty", q_empty, NULL}, {"full", q_full, NULL},
};

static const mproc_method_def jqueue_methods[] = {
    {"put", q_put, NULL},     {"get", q_get, NULL},   {"qsize", q_qsize, NULL},
    {"empty", q_empty, NULL}, {"full", q_full, NULL}, {"task_done", q_task_done, NULL},
    {"join", q_join, NULL},
};

/* ---- Lock, RLock --------------------------------------------------------------------- */

/* A Lock is owned by the connection that acquired it (unlike Python's,
 * which any thread may release): when that connection goes, even by a
 * crash of its client, its server thread ends and the lock's robust mutex
 * passes to the next acquirer instead of staying locked forever. A lock
 * acquired for a client that died waiting is released at once. */
static int lock_create(const mproc_value *args, void **state)
{
    int rc = mproc__mgr_at_most(args, 0, "Lock()", "[]");
    return rc ? rc : mproc_lock_new((mproc_lock **)state);
}

static int rlock_create(const mproc_value *args, void **state)
{
    int rc = mproc__mgr_at_most(args, 0, "RLock()", "[]");
    return rc ? rc : mproc_rlock_new((mproc_lock **)state);
}

static void lock_destroy(void *state)
{
    mproc_lock_free(state);
}

/* Acquires l, taking it over from a dead owner. */
static int lock_take(void *l, int ms)
{
    int rc = mproc_lock_acquire(l, ms);
    return rc == MPROC_EOWNERDEAD ? mproc_lock_make_consistent(l) : rc;
}

/* The lock (this connection's thread holds it) for a client that is gone:
 * released, however deep. */
static void lock_drop(void *l, const mproc_value *result)
{
    (void)result;
    unsigned depth;
    mproc__lock_release_all(l, &depth);
}

static int lk_acquire(void *s, const mproc_value *a, mproc_value **r)
{
    TIMEOUT(a, 0, ms);
    int rc = sliced(lock_take, s, ms);
    if (rc == 0) mproc__mgr_on_undelivered(lock_drop);
    return outcome(rc, r, true, "acquire");
}

static int lk_release(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    return outcome(mproc_lock_release(s), r, false, "release");
}

static const mproc_method_def lock_methods[] = {
    {"acquire", lk_acquire, NULL},
    {"release", lk_release, NULL},
};

/* ---- Semaphore, BoundedSemaphore ------------------------------------------------------------ */

/* A semaphore's initial value: absent or nil for 1, else an int from 0 to
 * INT32_MAX (not an int or negative: MPROC_EINVAL, Python's TypeError and
 * ValueError; above: MPROC_EOVERFLOW). */
static int sem_value_arg(const mproc_value *args, unsigned *out)
{
    const mproc_value *x = mproc__mgr_arg(args, 0);
    int64_t v = 1;
    if (x && mproc_value_kind_of(x) != MPROC_V_NIL) {
        if (mproc_value_kind_of(x) != MPROC_V_INT)
            return mproc__mgr_fail(MPROC_EINVAL, "the semaphore's value must be an int");
        if (mproc_value_is_uint(x) || (mproc_value_get_int(x, &v) == 0 && v > INT32_MAX))
            return mproc__mgr_fail(MPROC_EOVERFLOW, "the semaphore's value must be <= %d",
                                   INT32_MAX);
        if (v < 0) return mproc__mgr_fail(MPROC_EINVAL, "the semaphore's value must be >= 0");
    }
    *out = (unsigned)v;
    return 0;
}

static int sem_create(const mproc_value *args, void **state)
{
    unsigned v = 0; /* (set by sem_value_arg when it succeeds) */
    int rc = mproc__mgr_at_most(args, 1, "Semaphore()", "[2] makes Semaphore(2)");
    if (!rc) rc = sem_value_arg(args, &v);
    return rc ? rc : mproc_sem_new((mproc_sem **)state, v);
}

static int bsem_create(const mproc_value *args, void **state)
{
    unsigned v = 0; /* (set by sem_value_arg when it succeeds) */
    int rc = mproc__mgr_at_most(args, 1, "BoundedSemaphore()", "[2] makes BoundedSemaphore(2)");
    if (!rc) rc = sem_value_arg(args, &v);
    return rc ? rc : mproc_bounded_sem_new((mproc_sem **)state, v);
}

static void sem_destroy(void *state)
{
    mproc_sem_free(state);
}

static int sem_take(void *s, int ms)
{
    return mproc_sem_acquire(s, ms);
}

/* A unit taken for a client that did not get it goes back. */
static void sem_unget(void *s, const mproc_value *result)
{
    (void)result;
    mproc_sem_release(s);
}

static int sm_acquire(void *s, const mproc_value *a, mproc_value **r)
{
    TIMEOUT(a, 0, ms);
    int rc = sliced(sem_take, s, ms);
    if (rc == 0) mproc__mgr_on_undelivered(sem_unget);
    return outcome(rc, r, true, "acquire");
}

static int sm_release(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    return outcome(mproc_sem_release(s), r, false, "release");
}

static int sm_value(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    unsigned v = 0;
    mproc_sem_get_value(s, &v);
    return (*r = mproc_value_int(v)) ? 0 : MPROC_ENOMEM;
}

static const mproc_method_def sem_methods[] = {
    {"acquire", sm_acquire, NULL},
    {"release", sm_release, NULL},
    {"get_value", sm_value, NULL},
};

/* ---- Condition ----------------------------------------------------------------------------- */

typedef struct condition {
    mproc_lock *lock;
    mproc_cond *cond;
} condition;

static void cond_destroy(void *state)
{
    condition *c = state;
    mproc_cond_free(c->cond);
    mproc_lock_free(c->lock);
    free(c);
}

static int cond_create(const mproc_value *args, void **state)
{
    /* Condition(lock=None): the lock is always one of its own here */
    int rc0 = mproc__mgr_at_most(args, 1, "Condition()", "[] makes Condition()");
    if (rc0) return rc0;
    if (mproc_value_kind_of(mproc__mgr_arg(args, 0)) != MPROC_V_NIL)
        return mproc__mgr_fail(MPROC_EINVAL, "Condition(lock) takes no lock here: it has an "
                                             "RLock of its own; [] makes Condition()");
    condition *c = calloc(1, sizeof *c);
    if (!c) return MPROC_ENOMEM;
    int rc = mproc_rlock_new(&c->lock);
    if (!rc) rc = mproc_cond_new(&c->cond, c->lock);
    if (rc) {
        cond_destroy(c);
        return rc;
    }
    *state = c;
    return 0;
}

static int cond_take(void *s, int ms)
{
    return lock_take(((condition *)s)->lock, ms);
}

/* The condition's lock for a client that is gone: released. */
static void cond_drop(void *s, const mproc_value *result)
{
    lock_drop(((condition *)s)->lock, result);
}

static int cd_acquire(void *s, const mproc_value *a, mproc_value **r)
{
    TIMEOUT(a, 0, ms);
    int rc = sliced(cond_take, s, ms);
    if (rc == 0) mproc__mgr_on_undelivered(cond_drop);
    return outcome(rc, r, true, "acquire");
}

static int cd_release(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    return outcome(mproc_cond_release(((condition *)s)->cond), r, false, "release");
}

/* A notification that woke a client that did not learn of it goes to the
 * next waiter; the client, gone, holds the lock no more. */
static void cond_unwait(void *s, const mproc_value *result)
{
    mproc_cond_notify(((condition *)s)->cond, 1);
    cond_drop(s, result);
}

/* One slice of a wait. A lock taken back from a dead owner is made
 * consistent, and counts as a wake-up (which a condition may have). */
static int cond_wait_slice(void *s, int ms)
{
    condition *c = s;
    int rc = mproc_cond_wait(c->cond, ms);
    return rc == MPROC_EOWNERDEAD ? mproc_lock_make_consistent(c->lock) : rc;
}

/* Waits in slices: each gives the lock back and takes it again, and a
 * notify, made with the lock held, cannot fall between two. */
static int cd_wait(void *s, const mproc_value *a, mproc_value **r)
{
    TIMEOUT(a, 0, ms);
    int rc = sliced(cond_wait_slice, s, ms);
    if (rc == MPROC_ECONNRESET) /* the client is gone: the lock it held goes */
        cond_drop(s, NULL);
    else if (rc == 0)
        mproc__mgr_on_undelivered(cond_unwait);
    return outcome(rc, r, true, "wait");
}

static int cd_notify(void *s, const mproc_value *a, mproc_value **r)
{
    return outcome(mproc_cond_notify(((condition *)s)->cond, (unsigned)unsigned_arg(a, 0, 1)), r,
                   false, "notify");
}

static int cd_notify_all(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    return outcome(mproc_cond_notify_all(((condition *)s)->cond), r, false, "notify_all");
}

static const mproc_method_def cond_methods[] = {
    {"acquire", cd_acquire, NULL}, {"release", cd_release, NULL},       {"wait", cd_wait, NULL},
    {"notify", cd_notify, NULL},   {"notify_all", cd_notify_all, NULL},
};

/* ---- Event ------------------------------------------------------------------------------------
 */

static int event_create(const mproc_value *args, void **state)
{
    int rc = mproc__mgr_at_most(args, 0, "Event()", "[]");
    if (rc) return rc;
    return mproc_event_new((mproc_event **)state);
}

static void event_destroy(void *state)
{
    mproc_event_free(state);
}

static int ev_set(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    return outcome(mproc_event_set(s), r, false, "set");
}

static int ev_clear(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    return outcome(mproc_event_clear(s), r, false, "clear");
}

static int ev_is_set(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    return ret_bool(r, mproc_event_is_set(s));
}

/* In one wait, watching the client (waits in slices would miss a set()
 * followed at once by clear() between two). */
static int ev_wait(void *s, const mproc_value *a, mproc_value **r)
{
    TIMEOUT(a, 0, ms);
    return outcome(mproc__event_wait_while(s, ms, mproc__mgr_client_alive), r, true, "wait");
}

static const mproc_method_def event_methods[] = {
    {"set", ev_set, NULL},
    {"clear", ev_clear, NULL},
    {"is_set", ev_is_set, NULL},
    {"wait", ev_wait, NULL},
};

/* ---- Barrier ----------------------------------------------------------------------------------
 */

static int barrier_create(const mproc_value *args, void **state)
{
    int rc = mproc__mgr_at_most(args, 1, "Barrier()", "[3] makes Barrier(3)");
    if (rc) return rc;
    int n = unsigned_arg(args, 0, 0);
    if (n <= 0)
        return mproc__mgr_fail(MPROC_EINVAL,
                               "Barrier(parties) takes an int > 0: [3] makes Barrier(3)");
    return mproc_barrier_new((mproc_barrier **)state, (unsigned)n, NULL, NULL);
}

static void barrier_destroy(void *state)
{
    mproc_barrier_free(state);
}

/* A party whose client dies while it waits breaks the barrier, as a
 * timeout does: it cannot pass, and the others must not wait for it. */
static int br_wait(void *s, const mproc_value *a, mproc_value **r)
{
    TIMEOUT(a, 0, ms);
    unsigned idx = 0;
    int rc = mproc__barrier_wait_while(s, ms, &idx, mproc__mgr_client_alive);
    if (rc) return mproc__mgr_fail(rc, "BrokenBarrierError");
    return (*r = mproc_value_int(idx)) ? 0 : MPROC_ENOMEM;
}

static int br_abort(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    return outcome(mproc_barrier_abort(s), r, false, "abort");
}

static int br_reset(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    return outcome(mproc_barrier_reset(s), r, false, "reset");
}

static int br_parties(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    return (*r = mproc_value_int(mproc_barrier_parties(s))) ? 0 : MPROC_ENOMEM;
}

static int br_waiting(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    return (*r = mproc_value_int(mproc_barrier_n_waiting(s))) ? 0 : MPROC_ENOMEM;
}

static int br_broken(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    return ret_bool(r, mproc_barrier_broken(s));
}

static const mproc_method_def barrier_methods[] = {
    {"wait", br_wait, NULL},       {"abort", br_abort, NULL},       {"reset", br_reset, NULL},
    {"parties", br_parties, NULL}, {"n_waiting", br_waiting, NULL}, {"broken", br_broken, NULL},
};

const mproc_type_def mproc__mgr_sync_types[] = {
    {"Queue", queue_create, queue_destroy, queue_methods, MPROC__COUNTOF(queue_methods)},
    {"JoinableQueue", jqueue_create, queue_destroy, jqueue_methods, MPROC__COUNTOF(jqueue_methods)},
    {"Lock", lock_create, lock_destroy, lock_methods, MPROC__COUNTOF(lock_methods)},
    {"RLock", rlock_create, lock_destroy, lock_methods, MPROC__COUNTOF(lock_methods)},
    {"Semaphore", sem_create, sem_destroy, sem_methods, MPROC__COUNTOF(sem_methods)},
    {"BoundedSemaphore", bsem_create, sem_destroy, sem_methods, MPROC__COUNTOF(sem_methods)},
    {"Condition", cond_create, cond_destroy, cond_methods, MPROC__COUNTOF(cond_methods)},
    {"Event", event_create, event_destroy, event_methods, MPROC__COUNTOF(event_methods)},
    {"Barrier", barrier_create, barrier_destroy, barrier_methods, MPROC__COUNTOF(barrier_methods)},
};
const size_t mproc__mgr_nsync = MPROC__COUNTOF(mproc__mgr_sync_types);
