/* The thread executor (ThreadPoolExecutor): worker threads of this
 * process, started as tasks arrive (one more whenever the pending tasks
 * outnumber the idle workers) up to the limit, taking tasks from one FIFO.
 *
 * Cancel: the withdraw hook takes a pending task out of the FIFO. A worker
 * pops a task, then marks its future running: a cancel that comes between
 * finds the task gone from the FIFO and the future still pending, and
 * reports MPROC_ERUNNING (it is about to run).
 *
 * Initializer: each worker runs it once, before its first task. If it
 * fails in any worker, the executor is broken (as Python's
 * BrokenThreadPool): the pending tasks, and every task submitted later,
 * fail with the initializer's code and a message saying so; the workers
 * exit. submit still gives a future (an already failed one).
 *
 * Shutdown: no more submits; cancel_futures fails the pending tasks with
 * MPROC_ECANCELLED; the workers run what is left in the FIFO and exit;
 * wait joins them. */
#include "base/list.h"
#include "pool/executor.h"
#include "pool/future.h"
#include "mproc/process.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct xtask {
    mproc__list node; /* in the FIFO, or in a detached list */
    mproc_task_fn fn;
    void *arg;
    size_t arglen;
    mproc_future *f; /* the executor's reference */
} xtask;

typedef struct texec {
    mproc_executor base;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* idle workers wait here */
    mproc__list fifo;  /* pending tasks, oldest first */
    size_t npending;
    int nthreads, nidle;
    pthread_t *threads; /* base.workers slots */
    bool shutdown;
    int broken;       /* the initializer's code; 0: not broken */
    char *broken_msg; /* set once with broken */
    mproc_task_fn init;
    void *initargs;
    size_t initargs_len;
    pthread_mutex_t join_mu;
    bool joined;
} texec;

static void unlink_task(texec *x, xtask *t)
{
    mproc__list_remove(&t->node);
    x->npending--;
}

static void task_free(xtask *t)
{
    mproc_future_free(t->f);
    free(t->arg);
    free(t);
}

/* Fails every task of a detached list (code and message) and frees them. */
static void fail_one(xtask *t, int code, const char *msg)
{
    mproc__future_fail(t->f, code, msg, 0);
    task_free(t);
}

static void fail_all(mproc__list *list, int code, const char *msg)
{
    MPROC__LIST_FOREACH_SAFE (n, list) fail_one(MPROC__CONTAINER_OF(n, xtask, node), code, msg);
    mproc__list_init(list);
}

/* Moves every pending task to the empty list `to`. */
static void detach_all(texec *x, mproc__list *to)
{
    mproc__list_move(&x->fifo, to);
    x->npending = 0;
}

static void run_task(xtask *t)
{
    pid_t me = getpid();
    if (mproc__future_set_running(t->f, me)) {
        mproc_result res;
        char *msg = NULL;
        int rc = mproc__task_run(t->fn, t->arg, t->arglen, &res, &msg);
        if (rc == 0)
            mproc__future_finish(t->f, res.buf, res.len);
        else
            mproc__future_fail(t->f, rc, msg, me);
        free(msg);
    }
    task_free(t);
}

static void break_executor(texec *x, int code, const char *why)
{
    char *msg = NULL;
    if (asprintf(&msg, "the executor's initializer failed: %s", why ? why : mproc_strerror(code)) <
        0)
        msg = NULL;
    MPROC__LOCK(&x->mu);
    mproc__list list = MPROC__LIST_INIT(list);
    if (!x->broken) {
        x->broken = code;
        x->broken_msg = msg;
        msg = NULL;
        detach_all(x, &list);
        mproc_log(MPROC_LOG_ERROR, "%s", x->broken_msg ? x->broken_msg : mproc_strerror(code));
    }
    pthread_cond_broadcast(&x->cv);
    MPROC__UNLOCK(&x->mu);
    free(msg);
    fail_all(&list, x->broken, x->broken_msg); /* fixed once set */
}

static void *worker(void *arg)
{
    texec *x = arg;
    if (x->init) {
        mproc_result res;
        char *msg = NULL;
        int rc = mproc__task_run(x->init, x->initargs, x->initargs_len, &res, &msg);
        free(res.buf);
        if (rc) {
            break_executor(x, rc, msg);
            free(msg);
            return NULL;
        }
    }
    for (;;) {
        MPROC__LOCK(&x->mu);
        while (mproc__list_empty(&x->fifo) && !x->shutdown && !x->broken) {
            x->nidle++;
            pthread_cond_wait(&x->cv, &x->mu);
            x->nidle--;
        }
        xtask *t = MPROC__LIST_FIRST(&x->fifo, xtask, node);
        if (t) unlink_task(x, t);
        MPROC__UNLOCK(&x->mu);
        if (!t) return NULL; /* shut down and drained, or broken */
        run_task(t);
    }
}

static bool withdraw(void *owner, mproc_future *f)
{
    texec *x = owner;
    MPROC__LOCK(&x->mu);
    xtask *t = NULL;
    MPROC__LIST_FOREACH (n, &x->fifo) {
        xtask *c = MPROC__CONTAINER_OF(n, xtask, node);
        if (c->f == f) {
            t = c;
            break;
        }
    }
    if (t) unlink_task(x, t);
    MPROC__UNLOCK(&x->mu);
    if (t) task_free(t); /* drops our reference; the canceller holds one */
    return t != NULL;
}

/* With the lock held: one more worker if the pending tasks outnumber the
 * idle ones. Fails only if there would be no worker at all. */
static int maybe_start_worker(texec *x)
{
    if (x->npending <= (size_t)x->nidle || x->nthreads >= x->base.workers) return 0;
    int rc = pthread_create(&x->threads[x->nthreads], NULL, worker, x);
    if (rc == 0) {
        x->nthreads++;
        return 0;
    }
    return x->nthreads ? 0 : mproc__err_from_errno(rc);
}

static int submit(mproc_executor *ex, mproc_task_fn fn, const void *arg, size_t arglen,
                  mproc_future **out)
{
    texec *x = (texec *)ex;
    xtask *t = calloc(1, sizeof *t);
    if (!t) return MPROC_ENOMEM;
    if ((arglen && !(t->arg = malloc(arglen))) || !(t->f = mproc__future_new(NULL, NULL, NULL))) {
        free(t->arg);
        free(t);
        return MPROC_ENOMEM;
    }
    if (arglen) memcpy(t->arg, arg, arglen);
    t->fn = fn;
    t->arglen = arglen;
    mproc__future_set_withdraw(t->f, withdraw, x);
    mproc_future *f = t->f;
    int rc = 0;
    MPROC__LOCK(&x->mu);
    if (x->shutdown) {
        rc = MPROC_ESHUTDOWN;
    } else if (x->broken) {
        MPROC__UNLOCK(&x->mu);
        fail_one(t, x->broken, x->broken_msg);
        *out = f;
        return 0;
    } else {
        mproc__list_insert_tail(&x->fifo, &t->node);
        x->npending++;
        if ((rc = maybe_start_worker(x)))
            unlink_task(x, t);
        else
            pthread_cond_signal(&x->cv);
    }
    MPROC__UNLOCK(&x->mu);
    if (rc) {
        task_free(t);
        mproc_future_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

static int shutdown_(mproc_executor *ex, bool wait, bool cancel_futures)
{
    texec *x = (texec *)ex;
    MPROC__LOCK(&x->mu);
    x->shutdown = true;
    mproc__list cancelled = MPROC__LIST_INIT(cancelled);
    if (cancel_futures) detach_all(x, &cancelled);
    pthread_cond_broadcast(&x->cv);
    MPROC__UNLOCK(&x->mu);
    fail_all(&cancelled, MPROC_ECANCELLED, NULL);
    if (!wait) return 0;
    int rc = 0;
    MPROC__LOCK(&x->join_mu);
    if (!x->joined) {
        /* No worker starts after shutdown: nthreads is final. */
        MPROC__LOCK(&x->mu);
        int n = x->nthreads;
        MPROC__UNLOCK(&x->mu);
        for (int i = 0; i < n && !rc; i++)
            if (pthread_equal(x->threads[i], pthread_self())) rc = MPROC_EDEADLK;
        for (int i = 0; i < n && !rc; i++) pthread_join(x->threads[i], NULL);
        x->joined = !rc;
    }
    MPROC__UNLOCK(&x->join_mu);
    return rc;
}

static void free_(mproc_executor *ex)
{
    texec *x = (texec *)ex;
    pthread_mutex_destroy(&x->mu);
    pthread_mutex_destroy(&x->join_mu);
    pthread_cond_destroy(&x->cv);
    free(x->threads);
    free(x->initargs);
    free(x->broken_msg);
    free(x);
}

/* In a copy of the owner: no worker thread exists here, the tasks still
 * queued are the copy's memory (their futures never complete here). */
static void free_copy(mproc_executor *ex)
{
    texec *x = (texec *)ex;
    MPROC__LIST_FOREACH_SAFE (n, &x->fifo) task_free(MPROC__CONTAINER_OF(n, xtask, node));
    free(x->threads);
    free(x->initargs);
    free(x->broken_msg);
    free(x);
}

static const mproc__executor_ops thread_ops = {submit, shutdown_, free_, free_copy, NULL};

int mproc__executor_thread_new(mproc_executor **out, const mproc_executor_opts *opts)
{
    static const mproc_executor_opts none;
    if (!opts) opts = &none;
    texec *x = calloc(1, sizeof *x);
    if (!x) return MPROC_ENOMEM;
    x->base.ops = &thread_ops;
    x->base.workers = opts->max_workers ? opts->max_workers : mproc_cpu_count() + 4;
    x->init = opts->initializer;
    x->initargs_len = opts->initargs_len;
    x->threads = calloc((size_t)x->base.workers, sizeof *x->threads);
    if (!x->threads || (x->initargs_len && !(x->initargs = malloc(x->initargs_len)))) {
        free(x->threads);
        free(x);
        return MPROC_ENOMEM;
    }
    if (x->initargs_len) memcpy(x->initargs, opts->initargs, x->initargs_len);
    mproc__list_init(&x->fifo);
    pthread_mutex_init(&x->mu, NULL);
    pthread_mutex_init(&x->join_mu, NULL);
    pthread_cond_init(&x->cv, NULL);
    *out = &x->base;
    return 0;
}
