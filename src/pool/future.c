/* Futures (mproc/future.h, pool/future.h).
 *
 * A future has a mutex and a condition variable of its own. Its state
 * (pending, running, done) is also an atomic, so the state queries take no
 * lock; the outcome fields (code, result, message, pid) are written once,
 * before the state turns done with a release store, and never change
 * after: whoever sees done may read them without the lock.
 *
 * Completion: under the future's lock the outcome is stored, the state
 * turns done, waiters are woken and the callback list is detached; then
 * the future gets its completion number (an atomic count), and the
 * condition of mproc_futures_wait and as_completed is broadcast under the
 * process-wide futures lock if a thread holds that lock (they wait on it
 * holding it: see complete); then the callbacks run, in order, in the
 * completing thread, with no lock held. A callback added after that runs
 * at once. */
#include "pool/future.h"
#include "process/process.h"
#include "platform/platform.h"
#include "sync/thread_cond.h"
#include "mproc/value.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

enum { PENDING, RUNNING, DONE };
enum { CB_ALWAYS, CB_SUCCESS, CB_FAILURE }; /* CB_FAILURE: not on cancel */

typedef struct cbnode {
    struct cbnode *next;
    mproc_future_cb fn;
    void *userdata;
    int when;
} cbnode;

struct mproc_future {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int refs;
    atomic_int state;
    int code; /* 0, or the failure */
    void *buf;
    size_t len;
    char *msg;
    pid_t pid;
    _Atomic uint64_t seq; /* completion number */
    cbnode *cbs, *cbs_tail;
    mproc__future_withdraw_fn withdraw;
    void *owner;
    mproc__future_drive_fn drive; /* set before the future is handed out */
    void *drive_owner;
    pid_t pid_owner; /* the process that made it, where it completes */
};

/* ---- the process-wide completion signal ----------------------------------- */

static pthread_mutex_t all_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t all_cv;
static pthread_once_t all_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t all_seq;
/* Threads that hold the futures lock: a completion broadcasts only when
 * one may be waiting (see complete). */
static atomic_int all_holders;

static void all_init(void)
{
    mproc__thread_cond_init(&all_cv);
}

void mproc__futures_lock(void)
{
    pthread_once(&all_once, all_init);
    MPROC__LOCK(&all_mu);
    atomic_fetch_add(&all_holders, 1);
}

void mproc__futures_unlock(void)
{
    atomic_fetch_sub(&all_holders, 1);
    MPROC__UNLOCK(&all_mu);
}

/* The calling thread's step function (mproc__future_set_thread_step). */
static _Thread_local mproc__future_step_fn step_fn;
static _Thread_local void *step_ctx;

void mproc__future_set_thread_step(mproc__future_step_fn fn, void *ctx)
{
    step_fn = fn;
    step_ctx = ctx;
}

bool mproc__future_thread_has_step(void)
{
    return step_fn != NULL;
}

bool mproc__future_thread_step(const mproc__deadline *dl)
{
    if (!step_fn) return false;
    step_fn(step_ctx, dl);
    return true;
}

int mproc__futures_wait_any(const mproc__deadline *dl)
{
    if (!step_fn) return mproc__thread_cond_wait(&all_cv, &all_mu, dl);
    /* This thread completes futures itself: make progress until one
     * completes (a completion takes this lock: step without it). */
    uint64_t seen = atomic_load(&all_seq);
    while (atomic_load(&all_seq) == seen) {
        if (mproc__deadline_passed(dl)) return MPROC_ETIMEDOUT;
        MPROC__UNLOCK(&all_mu);
        step_fn(step_ctx, dl);
        MPROC__LOCK(&all_mu);
    }
    return 0;
}

uint64_t mproc__future_seq(const mproc_future *f)
{
    return atomic_load(&((mproc_future *)f)->seq);
}

static int state_of(const mproc_future *f)
{
    return atomic_load_explicit(&((mproc_future *)f)->state, memory_order_acquire);
}

bool mproc__future_foreign(const mproc_future *f)
{
    return f->pid_owner != mproc__self_pid() && state_of(f) != DONE;
}

/* ---- life ------------------------------------------------------------------ */

static int add_cb(mproc_future *f, mproc_future_cb fn, void *userdata, int when)
{
    cbnode *n = malloc(sizeof *n);
    if (!n) return MPROC_ENOMEM;
    *n = (cbnode){.fn = fn, .userdata = userdata, .when = when};
    if (f->cbs_tail)
        f->cbs_tail->next = n;
    else
        f->cbs = n;
    f->cbs_tail = n;
    return 0;
}

static void free_cbs(cbnode *n)
{
    while (n) {
        cbnode *next = n->next;
        free(n);
        n = next;
    }
}

mproc_future *mproc__future_new(mproc_future_cb callback, mproc_future_cb error_callback,
                                void *userdata)
{
    mproc_future *f = malloc(sizeof *f); /* not calloc: glibc's skips its per-thread cache */
    if (!f) return NULL;
    *f = (mproc_future){0};
    if ((callback && add_cb(f, callback, userdata, CB_SUCCESS)) ||
        (error_callback && add_cb(f, error_callback, userdata, CB_FAILURE))) {
        free_cbs(f->cbs);
        free(f);
        return NULL;
    }
    pthread_mutex_init(&f->mu, NULL);
    mproc__thread_cond_init(&f->cv);
    atomic_init(&f->refs, 2);
    atomic_init(&f->state, PENDING);
    f->pid_owner = mproc__self_pid();
    return f;
}

void mproc__future_ref(mproc_future *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void mproc_future_free(mproc_future *f)
{
    if (!f || atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1) return;
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    free_cbs(f->cbs);
    free(f->buf);
    free(f->msg);
    free(f);
}

void mproc__future_set_withdraw(mproc_future *f, mproc__future_withdraw_fn fn, void *owner)
{
    f->withdraw = fn; /* no other thread has f yet */
    f->owner = owner;
}

void mproc__future_set_drive(mproc_future *f, mproc__future_drive_fn fn, void *owner)
{
    f->drive = fn;
    f->drive_owner = owner;
}

bool mproc__future_set_running(mproc_future *f, pid_t worker)
{
    MPROC__LOCK(&f->mu);
    bool ok = atomic_load_explicit(&f->state, memory_order_relaxed) == PENDING;
    if (ok) {
        f->pid = worker;
        atomic_store_explicit(&f->state, RUNNING, memory_order_release);
    }
    MPROC__UNLOCK(&f->mu);
    return ok;
}

/* ---- completion ------------------------------------------------------------ */

static bool cb_applies(const cbnode *n, int code)
{
    switch (n->when) {
    case CB_SUCCESS:
        return code == 0;
    case CB_FAILURE:
        return code != 0 && code != MPROC_ECANCELLED;
    default:
        return true;
    }
}

/* Stores the outcome (buf and msg taken over) unless already done, or,
 * with only_pending, unless no longer pending. True if it did. */
static bool complete(mproc_future *f, int code, void *buf, size_t len, char *msg, pid_t pid,
                     bool only_pending)
{
    MPROC__LOCK(&f->mu);
    int state = atomic_load_explicit(&f->state, memory_order_relaxed);
    if (state == DONE || (only_pending && state != PENDING)) {
        MPROC__UNLOCK(&f->mu);
        free(buf);
        free(msg);
        return false;
    }
    f->code = code;
    f->buf = buf;
    f->len = buf ? len : 0;
    f->msg = msg;
    if (pid) f->pid = pid;
    f->withdraw = NULL;
    cbnode *cbs = f->cbs;
    f->cbs = f->cbs_tail = NULL;
    atomic_store_explicit(&f->state, DONE, memory_order_release);
    pthread_cond_broadcast(&f->cv);
    MPROC__UNLOCK(&f->mu);

    /* A waiter counts itself a holder before it looks at the numbers, and
     * stays one until it unlocks: either it sees this number, or this
     * sees it (both sequentially consistent) and broadcasts under the
     * lock, which the waiter lets go only inside its wait. Most
     * completions have no such waiter, and take no process-wide lock. */
    atomic_store(&f->seq, atomic_fetch_add(&all_seq, 1) + 1);
    if (atomic_load(&all_holders)) {
        MPROC__LOCK(&all_mu);
        pthread_cond_broadcast(&all_cv);
        MPROC__UNLOCK(&all_mu);
    }

    for (cbnode *n = cbs; n; n = n->next)
        if (cb_applies(n, code)) n->fn(f, n->userdata);
    free_cbs(cbs);
    return true;
}

void mproc__future_finish(mproc_future *f, void *buf, size_t len)
{
    (void)complete(f, 0, buf, len, NULL, 0, false);
}

void mproc__future_fail(mproc_future *f, int code, const char *msg, pid_t pid)
{
    if (code >= 0) code = MPROC_EUNKNOWN;
    (void)complete(f, code, NULL, 0, msg ? strdup(msg) : NULL, pid, false);
}

int mproc_future_cancel(mproc_future *f)
{
    if (!f) return MPROC_EINVAL;
    MPROC__LOCK(&f->mu);
    int state = atomic_load_explicit(&f->state, memory_order_relaxed);
    mproc__future_withdraw_fn withdraw = f->withdraw;
    void *owner = f->owner;
    MPROC__UNLOCK(&f->mu);
    if (state == DONE) return MPROC_EBADSTATE;
    /* In a copy of the owner, the withdraw hook would act on the owner's
     * pool or executor. */
    if (f->pid_owner != mproc__self_pid()) return MPROC_ECHILD;
    if (state == RUNNING) return MPROC_ERUNNING;
    mproc__future_ref(f); /* the owner may drop its reference in withdraw */
    int rc;
    /* Without an owner's hook, the done state is what stops the task:
     * set_running then refuses. A withdrawn task stays pending (unless its
     * owner completed it, perhaps as cancelled). Not withdrawn: a worker
     * has it, or is about to run it. */
    if ((!withdraw || withdraw(owner, f)) && complete(f, MPROC_ECANCELLED, NULL, 0, NULL, 0, true))
        rc = 0;
    else if (mproc_future_cancelled(f))
        rc = 0;
    else
        rc = state_of(f) == DONE ? MPROC_EBADSTATE : MPROC_ERUNNING;
    mproc_future_free(f);
    return rc;
}

int mproc_future_add_done_callback(mproc_future *f, mproc_future_cb fn, void *userdata)
{
    if (!f || !fn) return MPROC_EINVAL;
    if (mproc__future_foreign(f)) return MPROC_ECHILD; /* it never completes here */
    MPROC__LOCK(&f->mu);
    if (atomic_load_explicit(&f->state, memory_order_relaxed) != DONE) {
        int rc = add_cb(f, fn, userdata, CB_ALWAYS);
        MPROC__UNLOCK(&f->mu);
        return rc;
    }
    MPROC__UNLOCK(&f->mu);
    fn(f, userdata);
    return 0;
}

/* ---- reading ----------------------------------------------------------------- */

/* How long a waiter looks at a future that is not done before it sleeps.
 * A result often comes within tens of microseconds (a short task's round
 * trip), and a sleep and a wake-up cost more than that on a virtual
 * machine, where waking a thread on an idle CPU means waking the CPU
 * first: the C pool's apply_async + get round trip took 62-78 us with an
 * immediate sleep and 14-19 us with this spin (docs/performance.md).
 *
 * A spin pays only while the machine has a CPU to spare. On a crowded one
 * it takes the CPU that the worker and the completing thread wait for,
 * even when the result then comes within it: with six busy loops on two
 * CPUs, a spin before every sleep made a Python apply_async round trip
 * 2-4 ms instead of 0.1-1 ms, while 93 % of its spins ended with the
 * future done. What tells is the scheduler taking the CPU from the
 * spinning thread (an involuntary context switch, counted by the kernel).
 * So a spin that was preempted, or that ran out of time, is a failure:
 * the thread skips the spin in its next wait, and in twice as many after
 * each further failure in a row, up to SPIN_SKIP_MAX; a spin that
 * succeeds makes the next wait spin again. A crowded machine and long
 * tasks thus see one spin in SPIN_SKIP_MAX + 1 waits at most, short round
 * trips on an idle machine one in every wait. With one CPU there is never
 * one to spare. */
#define WAIT_SPIN_NS  100000
#define SPIN_SKIP_MAX 64

static _Thread_local unsigned spin_skip, spin_backoff; /* this thread's */

/* Spins until f is done (true), the spin's time or the deadline passes,
 * yielding now and then in case the thread that completes f shares our
 * CPU. */
static bool spin_until_done(const mproc_future *f, const mproc__deadline *dl)
{
    long long until = mproc_now_ns() + WAIT_SPIN_NS;
    for (unsigned i = 1;; i++) {
        if (state_of(f) == DONE) return true;
        mproc__cpu_relax();
        if (i % 64 == 0) {
            if (mproc_now_ns() >= until || mproc__deadline_passed(dl)) return false;
            if (i % 1024 == 0) sched_yield();
        }
    }
}

static long preemptions(void)
{
    struct rusage r;
    return getrusage(RUSAGE_THREAD, &r) ? -1 : r.ru_nivcsw;
}

/* Spins first if this thread's last spins say it pays: true if f is done. */
static bool spin_first(const mproc_future *f, const mproc__deadline *dl)
{
    if (mproc__cpus_allowed() < 2) return false;
    if (spin_skip) {
        spin_skip--;
        return false;
    }
    long before = preemptions();
    bool done = spin_until_done(f, dl);
    if (done && before >= 0 && preemptions() == before) {
        spin_backoff = 0;
        return true;
    }
    spin_backoff = !spin_backoff                  ? 1
                   : spin_backoff < SPIN_SKIP_MAX ? spin_backoff * 2
                                                  : SPIN_SKIP_MAX;
    spin_skip = spin_backoff;
    return done;
}

int mproc__future_wait_until(mproc_future *f, const mproc__deadline *dl)
{
    if (state_of(f) == DONE) return 0;
    if (f->pid_owner != mproc__self_pid()) return MPROC_ECHILD; /* it never completes here */
    if (step_fn) { /* this thread completes futures: it makes the progress itself */
        while (state_of(f) != DONE) {
            if (mproc__deadline_passed(dl)) return MPROC_ETIMEDOUT;
            step_fn(step_ctx, dl);
        }
        return 0;
    }
    if (f->drive) {
        f->drive(f->drive_owner, f, dl);
        if (state_of(f) == DONE) return 0;
    }
    if (mproc__deadline_passed(dl)) return MPROC_ETIMEDOUT; /* a poll, not a wait */
    if (spin_first(f, dl)) return 0;
    int rc = 0;
    MPROC__LOCK(&f->mu);
    while (rc == 0 && atomic_load_explicit(&f->state, memory_order_relaxed) != DONE)
        rc = mproc__thread_cond_wait(&f->cv, &f->mu, dl);
    if (atomic_load_explicit(&f->state, memory_order_relaxed) == DONE) rc = 0;
    MPROC__UNLOCK(&f->mu);
    return rc;
}

int mproc_future_wait(mproc_future *f, int timeout_ms)
{
    mproc__deadline dl;
    if (!f || mproc__deadline_init(&dl, timeout_ms)) return MPROC_EINVAL;
    return mproc__future_wait_until(f, &dl);
}

int mproc_future_result(mproc_future *f, const void **buf, size_t *len, int timeout_ms)
{
    if (buf) *buf = NULL;
    if (len) *len = 0;
    int rc = mproc_future_wait(f, timeout_ms);
    if (rc) return rc;
    if (f->code) return f->code;
    if (buf) *buf = f->buf;
    if (len) *len = f->len;
    return 0;
}

int mproc_future_result_value(mproc_future *f, struct mproc_value **out, int timeout_ms)
{
    if (!out) return MPROC_EINVAL;
    *out = NULL;
    const void *buf;
    size_t len;
    int rc = mproc_future_result(f, &buf, &len, timeout_ms);
    if (rc) return rc;
    if (!buf) return 0; /* no result: NULL, Python's None */
    return mproc_value_decode(buf, len, NULL, out);
}

bool mproc_future_done(const mproc_future *f)
{
    return f && state_of(f) == DONE;
}

bool mproc_future_running(const mproc_future *f)
{
    return f && state_of(f) == RUNNING;
}

bool mproc_future_successful(const mproc_future *f)
{
    return f && state_of(f) == DONE && f->code == 0;
}

bool mproc_future_cancelled(const mproc_future *f)
{
    return f && state_of(f) == DONE && f->code == MPROC_ECANCELLED;
}

int mproc_future_error(const mproc_future *f, int *code, const char **msg, pid_t *pid)
{
    if (!f) return MPROC_EINVAL;
    if (state_of(f) != DONE) return MPROC_EBADSTATE;
    if (f->code == 0) return MPROC_ENOENT;
    if (code) *code = f->code;
    if (msg) *msg = f->msg ? f->msg : mproc_strerror(f->code);
    if (pid) *pid = f->pid;
    return 0;
}
