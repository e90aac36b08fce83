/* The manager's built-in queue and synchronisation types: Queue,
 * JoinableQueue, Lock, RLock, Semaphore, BoundedSemaphore, Condition,
 * Event, Barrier. Each wraps the mproc object of the same name; blocking
 * calls block the server thread of the calling connection, as in Python.
 * An optional timeout argument is in milliseconds. */
#include "internal/manager.h"
#include "mproc/queue.h"
#include "mproc/sync.h"

#include <stdlib.h>

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

/* ---- Queue ------------------------------------------------------------------------ */

static int queue_make(const mproc_value *args, void **state, bool joinable)
{
    mproc_queue_opts o = {.maxsize = (size_t)unsigned_arg(args, 0, 0), .joinable = joinable};
    int rc = mproc_queue_new((mproc_queue **)state, &o);
    return rc ? mproc__mgr_fail(rc, "cannot make the queue") : 0;
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
    mproc_queue *q = state;
    mproc_value *v;
    while (mproc_queue_get_value(q, &v, 0) == 0) { /* references it held */
        mproc__mgr_hold(v, -1);
        mproc_value_free(v);
    }
    mproc_queue_free(q);
}

static int q_put(void *s, const mproc_value *a, mproc_value **r)
{
    (void)r;
    const mproc_value *v = mproc__mgr_arg(a, 0);
    if (!v) return mproc__mgr_fail(MPROC_EINVAL, "put(item[, timeout_ms])");
    TIMEOUT(a, 1, ms);
    if (!mproc__mgr_hold_new(v))
        return mproc__mgr_fail(MPROC_EINVAL, "a reference names no object");
    int rc = mproc_queue_put_value(s, v, ms);
    if (rc) mproc__mgr_hold(v, -1);
    return rc == MPROC_ETIMEDOUT ? mproc__mgr_fail(rc, "queue.Full") : outcome(rc, r, false, "put");
}

static int q_get(void *s, const mproc_value *a, mproc_value **r)
{
    TIMEOUT(a, 0, ms);
    int rc = mproc_queue_get_value(s, r, ms);
    if (rc == MPROC_ETIMEDOUT) return mproc__mgr_fail(rc, "queue.Empty");
    if (rc == 0) mproc__mgr_result_owned(); /* the queue's references pass to the caller */
    return outcome(rc, r, false, "get");
}

static int q_qsize(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    return (*r = mproc_value_int((int64_t)mproc_queue_qsize(s))) ? 0 : MPROC_ENOMEM;
}

static int q_empty(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    return ret_bool(r, mproc_queue_empty(s));
}

static int q_full(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    return ret_bool(r, mproc_queue_full(s));
}

static int q_task_done(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    return outcome(mproc_queue_task_done(s), r, false, "task_done");
}

static int q_join(void *s, const mproc_value *a, mproc_value **r)
{
    TIMEOUT(a, 0, ms);
    return outcome(mproc_queue_join(s, ms), r, false, "join");
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
 * passes to the next acquirer instead of staying locked forever. */
static int lock_create(const mproc_value *args, void **state)
{
    (void)args;
    return mproc_lock_new((mproc_lock **)state);
}

static int rlock_create(const mproc_value *args, void **state)
{
    (void)args;
    return mproc_rlock_new((mproc_lock **)state);
}

static void lock_destroy(void *state)
{
    mproc_lock_free(state);
}

static int lk_acquire(void *s, const mproc_value *a, mproc_value **r)
{
    TIMEOUT(a, 0, ms);
    int rc = mproc_lock_acquire(s, ms);
    if (rc == MPROC_EOWNERDEAD) rc = mproc_lock_make_consistent(s);
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
    unsigned v;
    int rc = sem_value_arg(args, &v);
    return rc ? rc : mproc_sem_new((mproc_sem **)state, v);
}

static int bsem_create(const mproc_value *args, void **state)
{
    unsigned v;
    int rc = sem_value_arg(args, &v);
    return rc ? rc : mproc_bounded_sem_new((mproc_sem **)state, v);
}

static void sem_destroy(void *state)
{
    mproc_sem_free(state);
}

static int sm_acquire(void *s, const mproc_value *a, mproc_value **r)
{
    TIMEOUT(a, 0, ms);
    return outcome(mproc_sem_acquire(s, ms), r, true, "acquire");
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
    (void)args;
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

static int cd_acquire(void *s, const mproc_value *a, mproc_value **r)
{
    TIMEOUT(a, 0, ms);
    return outcome(mproc_cond_acquire(((condition *)s)->cond, ms), r, true, "acquire");
}

static int cd_release(void *s, const mproc_value *a, mproc_value **r)
{
    (void)a;
    return outcome(mproc_cond_release(((condition *)s)->cond), r, false, "release");
}

static int cd_wait(void *s, const mproc_value *a, mproc_value **r)
{
    TIMEOUT(a, 0, ms);
    return outcome(mproc_cond_wait(((condition *)s)->cond, ms), r, true, "wait");
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
    (void)args;
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

static int ev_wait(void *s, const mproc_value *a, mproc_value **r)
{
    TIMEOUT(a, 0, ms);
    return outcome(mproc_event_wait(s, ms), r, true, "wait");
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
    int n = unsigned_arg(args, 0, 0);
    if (n <= 0) return mproc__mgr_fail(MPROC_EINVAL, "Barrier(parties)");
    return mproc_barrier_new((mproc_barrier **)state, (unsigned)n, NULL, NULL);
}

static void barrier_destroy(void *state)
{
    mproc_barrier_free(state);
}

static int br_wait(void *s, const mproc_value *a, mproc_value **r)
{
    TIMEOUT(a, 0, ms);
    unsigned idx = 0;
    int rc = mproc_barrier_wait(s, ms, &idx);
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
