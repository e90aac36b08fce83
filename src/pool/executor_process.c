/* The process executor (ProcessPoolExecutor), built on the public pool
 * API only: a pool of max_workers processes runs the tasks; submit is
 * apply_async; shutdown is close (and join when waiting).
 *
 * cancel_futures needs the futures not yet started: the executor keeps a
 * reference to every future it handed out that was not done when last
 * looked at, and cancels those (the pool withdraws the pending ones; the
 * running ones refuse). Done futures are dropped from that list whenever
 * it fills up, so it stays about as long as the work in flight. */
#include "pool/executor.h"
#include "pool/future.h"
#include "pool/pool.h"
#include "mproc/process.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

/* terminate_workers: how long a worker has to exit on SIGTERM before it
 * gets SIGKILL. */
#define STOP_GRACE_MS 1000

typedef struct pexec {
    mproc_executor base;
    mproc_pool *pool;
    pthread_mutex_t mu;
    bool shutdown;
    mproc_future **live; /* with a reference each */
    size_t nlive, cap;
    pthread_mutex_t join_mu;
    bool joined;
} pexec;

/* With the lock held: room for one more live future. */
static int make_room(pexec *x)
{
    if (x->nlive < x->cap) return 0;
    size_t k = 0;
    for (size_t i = 0; i < x->nlive; i++) {
        if (mproc_future_done(x->live[i]))
            mproc_future_free(x->live[i]);
        else
            x->live[k++] = x->live[i];
    }
    x->nlive = k;
    if (k < x->cap / 2 + 1 && x->cap) return 0;
    size_t cap = x->cap ? 2 * x->cap : 64;
    mproc_future **live = realloc(x->live, cap * sizeof *live);
    if (!live) return MPROC_ENOMEM;
    x->live = live;
    x->cap = cap;
    return 0;
}

static int submit(mproc_executor *ex, mproc_task_fn fn, const void *arg, size_t arglen,
                  mproc_future **out)
{
    pexec *x = (pexec *)ex;
    MPROC__LOCK(&x->mu);
    int rc = x->shutdown ? MPROC_ESHUTDOWN : 0;
    MPROC__UNLOCK(&x->mu);
    /* The pool is called with no lock of ours held: its threads run
     * callbacks, which may submit. A submit racing with shutdown gets the
     * pool's MPROC_ESHUTDOWN, or slips in before the close. */
    if (!rc) rc = mproc_pool_apply_async(x->pool, fn, arg, arglen, NULL, out);
    if (rc) return rc;
    MPROC__LOCK(&x->mu);
    if ((rc = make_room(x)) == 0) {
        mproc__future_ref(*out);
        x->live[x->nlive++] = *out;
    }
    MPROC__UNLOCK(&x->mu);
    return 0; /* without room to track it, only cancel_futures misses it */
}

static int shutdown_(mproc_executor *ex, bool wait, bool cancel_futures)
{
    pexec *x = (pexec *)ex;
    MPROC__LOCK(&x->mu);
    bool first = !x->shutdown;
    x->shutdown = true;
    mproc_future **live = NULL;
    size_t nlive = 0;
    if (cancel_futures) {
        live = x->live, nlive = x->nlive;
        x->live = NULL, x->nlive = x->cap = 0;
    }
    MPROC__UNLOCK(&x->mu);
    /* Outside the lock (a cancel runs callbacks, which may submit), and
     * before close, so the pool never starts what is withdrawn. */
    for (size_t i = 0; i < nlive; i++) {
        (void)mproc_future_cancel(live[i]);
        mproc_future_free(live[i]);
    }
    free(live);
    int rc = first ? mproc_pool_close(x->pool) : 0;
    if (rc || !wait) return rc;
    MPROC__LOCK(&x->join_mu);
    if (!x->joined) {
        rc = mproc_pool_join(x->pool, MPROC_FOREVER);
        x->joined = rc == 0;
    }
    MPROC__UNLOCK(&x->join_mu);
    return rc;
}

static void free_(mproc_executor *ex)
{
    pexec *x = (pexec *)ex;
    mproc_pool_free(x->pool);
    for (size_t i = 0; i < x->nlive; i++) mproc_future_free(x->live[i]);
    free(x->live);
    pthread_mutex_destroy(&x->mu);
    pthread_mutex_destroy(&x->join_mu);
    free(x);
}

/* In a copy of the owner: the pool's free releases only the copy's memory
 * (see mproc_pool_free); the futures' references are the copy's. */
static void free_copy(mproc_executor *ex)
{
    pexec *x = (pexec *)ex;
    mproc_pool_free(x->pool);
    for (size_t i = 0; i < x->nlive; i++) mproc_future_free(x->live[i]);
    free(x->live);
    free(x);
}

/* terminate_workers / kill_workers: Python's order, shutdown(wait=False,
 * cancel_futures=True) first (the futures not started are cancelled),
 * then the workers are stopped; what was running fails. */
static int stop_workers(mproc_executor *ex, int sig)
{
    pexec *x = (pexec *)ex;
    int rc = shutdown_(ex, false, true);
    if (rc) return rc;
    return mproc__pool_stop(x->pool, sig, STOP_GRACE_MS,
                            sig == SIGKILL ? "the executor's workers were killed (kill_workers)"
                                           : "the executor's workers were terminated "
                                             "(terminate_workers)");
}

static const mproc__executor_ops process_ops = {submit, shutdown_, free_, free_copy, stop_workers};

int mproc__executor_process_new(mproc_executor **out, const mproc_executor_opts *opts)
{
    static const mproc_executor_opts none;
    if (!opts) opts = &none;
    pexec *x = calloc(1, sizeof *x);
    if (!x) return MPROC_ENOMEM;
    x->base.ops = &process_ops;
    x->base.workers = opts->max_workers ? opts->max_workers : mproc_cpu_count();
    mproc_pool_opts po = {
        .processes = x->base.workers,
        .initializer = opts->initializer,
        .initargs = opts->initargs,
        .initargs_len = opts->initargs_len,
        .maxtasksperchild = opts->max_tasks_per_child,
        .context = opts->context,
    };
    int rc = mproc_pool_new(&x->pool, &po);
    if (rc) {
        free(x);
        return rc;
    }
    pthread_mutex_init(&x->mu, NULL);
    pthread_mutex_init(&x->join_mu, NULL);
    *out = &x->base;
    return 0;
}

int mproc__executor_process_wrap(mproc_executor **out, mproc_pool *pool, int workers)
{
    if (!out || !pool || workers < 1) return MPROC_EINVAL;
    pexec *x = calloc(1, sizeof *x);
    if (!x) return MPROC_ENOMEM;
    x->base.ops = &process_ops;
    x->base.workers = workers;
    x->base.owner = mproc__self_pid();
    x->pool = pool;
    pthread_mutex_init(&x->mu, NULL);
    pthread_mutex_init(&x->join_mu, NULL);
    *out = &x->base;
    return 0;
}
