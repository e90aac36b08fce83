/* The pool's lifecycle, parent side: creation and shutdown. It starts the
 * pool's threads (threads.c) and uses the scheduler (scheduler.c). See
 * pool/pool.h for the design and pool/parent.h for the parts.
 *
 * Lock order: the pool lock, then nothing. Futures are completed and hooks
 * called with no lock held, so a callback may use the pool. */
#include "base/log.h"
#include "pool/parent.h"
#include "process/process.h"
#include "queue/queue.h"
#include "sync/thread_cond.h"
#include "mproc/arena.h"
#include "mproc/value.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- creation ---------------------------------------------------------------- */

static void stop_threads(mproc_pool *pool)
{
    if (!pool->threads) return;
    MPROC__LOCK(&pool->mu);
    pool->stop_monitor = true;
    MPROC__UNLOCK(&pool->mu);
    mproc__pool_wake_monitor(pool);
    pthread_join(pool->mthr, NULL);
    pool_result_msg q = {.type = MSG_QUIT};
    if (mproc_queue_put(pool->sh->results, &q, sizeof q, MPROC_FOREVER) != 0)
        mproc_queue_close(pool->sh->results); /* no memory for QUIT: it ends on this */
    pthread_join(pool->rthr, NULL);
    pool->threads = false;
}

static void destroy(mproc_pool *pool)
{
    stop_threads(pool);
    if (pool->sh) {
        for (int i = 0; i < pool->n; i++) mproc_queue_free(pool->sh->slots[i].inbox);
        mproc_queue_free(pool->sh->results);
        mproc_arena_free(pool->sh->initargs);
        mproc_arena_free(pool->sh);
    }
    if (pool->wake[0] >= 0) close(pool->wake[0]);
    if (pool->wake[1] >= 0) close(pool->wake[1]);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->cv);
    free(pool->w);
    free(pool->mon_pf);
    free(pool->mon_idx);
    free(pool);
}

static int make_shared(mproc_pool *pool, const mproc_pool_opts *o)
{
    int rc = mproc_arena_calloc((void **)&pool->sh,
                                sizeof(pool_shared) + (size_t)pool->n * sizeof(pool_slot));
    if (rc) return rc;
    pool_shared *sh = pool->sh;
    sh->magic = POOL_SHARED_MAGIC;
    sh->nworkers = (uint32_t)pool->n;
    sh->maxtasks = o->maxtasksperchild;
    if ((rc = mproc__fnref_make((const void *)o->initializer, &sh->initializer))) return rc;
    if (o->initargs_len) {
        if ((rc = mproc_arena_alloc(&sh->initargs, o->initargs_len))) return rc;
        memcpy(sh->initargs, o->initargs, o->initargs_len);
        sh->initargs_len = o->initargs_len;
    }
    if ((rc = mproc_queue_new(&sh->results, NULL))) return rc;
    mproc__queue_for_sleepers(sh->results, POOL_SPIN_NS);
    for (int i = 0; i < pool->n; i++) {
        if ((rc = mproc_queue_new(&sh->slots[i].inbox, NULL))) return rc;
        mproc__queue_for_sleepers(sh->slots[i].inbox, POOL_SPIN_NS);
    }
    return 0;
}

/* With the pool lock held. */
static void kill_all_locked(mproc_pool *pool)
{
    for (int i = 0; i < pool->n; i++) {
        worker *w = &pool->w[i];
        if (!w->p) continue;
        mproc_process_kill(w->p);
        mproc_process_join(w->p, MPROC_FOREVER);
        mproc_process_free(w->p);
        w->p = NULL;
        w->gen++; /* a DIED on its way is stale */
    }
}

/* With the pool lock held: SIGTERM to every worker, and SIGKILL to those
 * still alive grace_ms later (one deadline for all). */
static void terminate_all_locked(mproc_pool *pool, int grace_ms)
{
    for (int i = 0; i < pool->n; i++)
        if (pool->w[i].p) (void)mproc_process_terminate(pool->w[i].p);
    mproc__deadline dl;
    mproc__deadline_init(&dl, grace_ms);
    for (int i = 0; i < pool->n; i++) {
        worker *w = &pool->w[i];
        if (!w->p) continue;
        if (mproc_process_join(w->p, mproc__deadline_poll_ms(&dl)) != 0) {
            mproc_process_kill(w->p);
            mproc_process_join(w->p, MPROC_FOREVER);
        }
        mproc_process_free(w->p);
        w->p = NULL;
        w->gen++; /* a DIED on its way is stale */
    }
}

int mproc_pool_new(mproc_pool **out, const mproc_pool_opts *opts)
{
    if (!out) return MPROC_EINVAL;
    mproc_pool_opts o = opts ? *opts : (mproc_pool_opts){0};
    if (o.processes < 0 || o.processes > POOL_MAX_WORKERS || (o.initargs_len && !o.initargs) ||
        o.task_timeout_ms < 0)
        return MPROC_EINVAL;
    mproc__init();
    mproc_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return MPROC_ENOMEM;
    pool->owner = mproc__self_pid();
    pool->n = o.processes ? o.processes : mproc_cpu_count();
    pool->method = o.context ? mproc_context_method(o.context) : MPROC_START_DEFAULT;
    if (pool->method == MPROC_START_DEFAULT) pool->method = mproc__default_start_method();
    pool->task_timeout_ms = o.task_timeout_ms;
    pool->wake[0] = pool->wake[1] = -1;
    pthread_mutex_init(&pool->mu, NULL);
    mproc__thread_cond_init(&pool->cv);
    pool->w = calloc((size_t)pool->n, sizeof *pool->w);
    mproc__list_init(&pool->pend);
    for (int i = 0; pool->w && i < pool->n; i++) mproc__list_init(&pool->w[i].tasks);
    pool->mon_pf = calloc((size_t)pool->n + 1, sizeof *pool->mon_pf);
    pool->mon_idx = calloc((size_t)pool->n + 1, sizeof *pool->mon_idx);
    int rc = pool->w && pool->mon_pf && pool->mon_idx ? 0 : MPROC_ENOMEM;
    if (!rc && pipe2(pool->wake, O_CLOEXEC | O_NONBLOCK) != 0) rc = MPROC__ERRNO();
    if (!rc) rc = make_shared(pool, &o);
    if (rc) {
        destroy(pool);
        return rc;
    }
    MPROC__LOCK(&pool->mu);
    for (int i = 0; i < pool->n && !rc; i++) rc = mproc__pool_start_worker(pool, i);
    if (!rc && pthread_create(&pool->rthr, NULL, mproc__pool_result_thread, pool) != 0)
        rc = MPROC_EAGAIN;
    if (!rc && pthread_create(&pool->mthr, NULL, mproc__pool_monitor_thread, pool) != 0) {
        pool_result_msg q = {.type = MSG_QUIT};
        if (mproc_queue_put(pool->sh->results, &q, sizeof q, MPROC_FOREVER) != 0)
            mproc_queue_close(pool->sh->results);
        MPROC__UNLOCK(&pool->mu);
        pthread_join(pool->rthr, NULL);
        MPROC__LOCK(&pool->mu);
        rc = MPROC_EAGAIN;
    }
    pool->threads = rc == 0;
    mproc__deadline dl;
    mproc__deadline_init(&dl, READY_TIMEOUT);
    while (!rc && pool->ready < pool->n && !pool->init_rc) {
        if (mproc__thread_cond_wait(&pool->cv, &pool->mu, &dl) == MPROC_ETIMEDOUT) {
            rc = MPROC_ECHILDSTART;
            snprintf(pool->init_msg, sizeof pool->init_msg, "workers did not start in time");
        }
    }
    if (!rc) rc = pool->init_rc;
    if (rc) {
        if (pool->init_msg[0]) mproc_log(MPROC_LOG_ERROR, "pool: %s", pool->init_msg);
        pool->state = ST_TERMINATED;
        kill_all_locked(pool);
        MPROC__UNLOCK(&pool->mu);
        destroy(pool);
        return rc;
    }
    pool->state = ST_OPEN;
    MPROC__UNLOCK(&pool->mu);
    *out = pool;
    return 0;
}

int mproc__pool_new_backend(mproc_pool **out, const mproc__pool_backend *ops, void *ctx)
{
    if (!out || !ops || !ctx) return MPROC_EINVAL;
    mproc__init();
    mproc_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return MPROC_ENOMEM;
    pool->owner = mproc__self_pid();
    pool->backend = ops;
    pool->backend_ctx = ctx;
    *out = pool;
    return 0;
}

const mproc__pool_backend *mproc__pool_backend_of(const mproc_pool *pool, void **ctx)
{
    if (ctx) *ctx = pool->backend_ctx;
    return pool->backend;
}

/* ---- shutting down ------------------------------------------------------------- */

int mproc_pool_close(mproc_pool *pool)
{
    if (!pool) return MPROC_EINVAL;
    if (!pool_owned(pool)) return MPROC_ECHILD;
    if (pool->backend) return pool->backend->close(pool->backend_ctx);
    MPROC__LOCK(&pool->mu);
    if (pool->state == ST_OPEN) pool->state = ST_CLOSED;
    mproc__pool_send_stops_locked(pool);
    MPROC__UNLOCK(&pool->mu);
    return 0;
}

int mproc_pool_terminate(mproc_pool *pool)
{
    if (!pool) return MPROC_EINVAL;
    if (!pool_owned(pool)) return MPROC_ECHILD;
    if (pool->backend) return pool->backend->terminate(pool->backend_ctx);
    MPROC__LOCK(&pool->mu);
    pool->state = ST_TERMINATED;
    mproc__list all;
    mproc__pool_take_all_locked(pool, &all);
    kill_all_locked(pool);
    pthread_cond_broadcast(&pool->cv);
    MPROC__UNLOCK(&pool->mu);
    mproc__pool_end_all(&all, MPROC_ESHUTDOWN, "the pool was terminated");
    return 0;
}

int mproc__pool_stop(mproc_pool *pool, int sig, int grace_ms, const char *why)
{
    if (!pool || (sig != SIGTERM && sig != SIGKILL) || grace_ms < 0) return MPROC_EINVAL;
    if (!pool_owned(pool)) return MPROC_ECHILD;
    /* Workers elsewhere cannot be signalled from here: their tasks fail. */
    if (pool->backend) return pool->backend->terminate(pool->backend_ctx);
    MPROC__LOCK(&pool->mu);
    pool->state = ST_TERMINATED;
    mproc__list all;
    mproc__pool_take_all_locked(pool, &all);
    if (sig == SIGTERM)
        terminate_all_locked(pool, grace_ms);
    else
        kill_all_locked(pool);
    pthread_cond_broadcast(&pool->cv);
    MPROC__UNLOCK(&pool->mu);
    mproc__pool_end_all(&all, MPROC_ESHUTDOWN, why);
    return 0;
}

int mproc_pool_join(mproc_pool *pool, int timeout_ms)
{
    if (!pool) return MPROC_EINVAL;
    if (!pool_owned(pool)) return MPROC_ECHILD;
    if (pool->backend) return pool->backend->join(pool->backend_ctx, timeout_ms);
    mproc__deadline dl;
    int rc = mproc__deadline_init(&dl, timeout_ms);
    if (rc) return rc;
    MPROC__LOCK(&pool->mu);
    if (pool->state == ST_OPEN) {
        MPROC__UNLOCK(&pool->mu);
        return MPROC_EBADSTATE;
    }
    for (;;) {
        bool alive = false;
        for (int i = 0; i < pool->n; i++) alive |= pool->w[i].p != NULL;
        if (!alive && pool->unfinished == 0) break;
        if (pool->state == ST_BROKEN) {
            kill_all_locked(pool);
            continue;
        }
        if (mproc__thread_cond_wait(&pool->cv, &pool->mu, &dl) == MPROC_ETIMEDOUT) {
            rc = MPROC_ETIMEDOUT;
            break;
        }
    }
    MPROC__UNLOCK(&pool->mu);
    return rc;
}

size_t mproc_pool_workers(mproc_pool *pool, pid_t *out, size_t cap)
{
    if (!pool || !pool_owned(pool)) return 0;
    if (pool->backend) return pool->backend->workers(pool->backend_ctx, out, cap);
    MPROC__LOCK(&pool->mu);
    size_t n = 0;
    for (int i = 0; i < pool->n; i++) {
        if (!pool->w[i].p) continue;
        if (out && n < cap) out[n] = pool->w[i].pid;
        n++;
    }
    MPROC__UNLOCK(&pool->mu);
    return n;
}

/* A task's private memory, in a copy of the owner (no hook, no future
 * completed: the owner does that). */
static void drop_copied_tasks(mproc__list *list)
{
    MPROC__LIST_FOREACH_SAFE (n, list) {
        pool_task *t = MPROC__CONTAINER_OF(n, pool_task, node);
        if (t->f) mproc_future_free(t->f);
        free(t->msg);
        free(t);
    }
}

/* mproc_pool_free in a process that does not own the pool: frees what
 * the fork copied into this process (the struct, task records, process
 * objects, its copies of the fds) and nothing of the owner's (workers,
 * queues, threads, arena blocks, the lock). */
static void free_copy(mproc_pool *pool)
{
    drop_copied_tasks(&pool->pend);
    for (int i = 0; i < pool->n; i++) {
        drop_copied_tasks(&pool->w[i].tasks);
        if (pool->w[i].p) (void)mproc_process_free(pool->w[i].p);
    }
    if (pool->wake[0] >= 0) close(pool->wake[0]);
    if (pool->wake[1] >= 0) close(pool->wake[1]);
    free(pool->w);
    free(pool);
}

void mproc_pool_free(mproc_pool *pool)
{
    if (!pool) return;
    if (pool->backend) { /* in a fork copy, the backend's memory is the owner's */
        if (pool_owned(pool)) pool->backend->free(pool->backend_ctx);
        free(pool);
        return;
    }
    if (!pool_owned(pool)) {
        free_copy(pool);
        return;
    }
    MPROC__LOCK(&pool->mu);
    bool open = pool->state == ST_OPEN || pool->state == ST_CLOSED;
    MPROC__UNLOCK(&pool->mu);
    if (open) mproc_pool_terminate(pool);
    MPROC__LOCK(&pool->mu);
    kill_all_locked(pool);
    MPROC__UNLOCK(&pool->mu);
    destroy(pool);
}
