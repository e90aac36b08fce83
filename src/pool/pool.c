/* The pool, parent side: creation, workers and dispatch, shutdown. See
 * pool/pool.h for the design and pool/parent.h for the parts.
 *
 * Lock order: the pool lock, then nothing. Futures are completed and hooks
 * called with no lock held, so a callback may use the pool. */
#include "base/log.h"
#include "pool/parent.h"
#include "process/process.h"
#include "queue/queue.h"
#include "sync/tcond.h"
#include "mproc/arena.h"
#include "mproc/value.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- completing tasks (no lock held) ---------------------------------------- */

void mproc__pool_task_end(pool_task *t, int rc, const void *res, size_t len, const char *msg,
                          pid_t pid)
{
    if (t->hook) {
        t->hook(t->ud, t->seq, t->count, rc, res, len, msg, pid);
    } else if (rc == 0) {
        void *copy = NULL;
        if (len && (copy = malloc(len))) memcpy(copy, res, len);
        if (len && !copy)
            mproc__future_fail(t->f, MPROC_ENOMEM, "no memory for the result", pid);
        else
            mproc__future_finish(t->f, copy, copy ? len : 0);
    } else {
        mproc__future_fail(t->f, rc, msg, pid);
    }
    if (t->f) mproc_future_free(t->f);
    free(t->msg);
    free(t);
}

/* Tasks failed together (terminate, a broken pool): ends them all. */
void mproc__pool_end_all(mproc__list *list, int rc, const char *msg)
{
    MPROC__LIST_FOREACH_SAFE (n, list) {
        mproc__list_remove(n);
        mproc__pool_task_end(MPROC__CONTAINER_OF(n, pool_task, node), rc, NULL, 0, msg, 0);
    }
}

/* ---- workers ------------------------------------------------------------------ */

void mproc__pool_wake_monitor(mproc_pool *pool)
{
    char c = 1;
    if (write(pool->wake[1], &c, 1) < 0) { /* full: it will wake anyway */
    }
}

int mproc__pool_start_worker(mproc_pool *pool, int i)
{
    worker *w = &pool->w[i];
    pool_worker_arg a = {pool->sh, (uint32_t)i, w->gen + 1};
    char name[32];
    snprintf(name, sizeof name, "PoolWorker-%d", i + 1);
    mproc_process_opts o = {.name = name, .daemon = true, .start_method = pool->method};
    mproc_process *p;
    int rc = mproc_process_new(&p, mproc__pool_worker_main, &a, sizeof a, &o);
    if (rc == 0 && (rc = mproc_process_start(p)) != 0) mproc_process_free(p);
    if (rc) return rc;
    w->p = p;
    w->pid = mproc_process_pid(p);
    w->sentinel = mproc_process_sentinel(p);
    w->gen++;
    w->dying = w->retired = w->timed_out = false;
    pool_task *head = pool_first(&w->tasks);
    if (head) head->started_ns = mproc_now_ns();
    mproc__pool_wake_monitor(pool);
    return 0;
}

/* The worker's head task starts (now, as far as the parent can tell). */
void mproc__pool_head_started(mproc_pool *pool, worker *w)
{
    pool_task *head = pool_first(&w->tasks);
    if (!head) return;
    head->started_ns = mproc_now_ns();
    if (head->f) mproc__future_set_running(head->f, w->pid);
    if (head->timeout_ms > 0) mproc__pool_wake_monitor(pool); /* a new deadline */
}

/* Moves pending tasks into inboxes, least loaded worker first. */
int mproc__pool_window(const mproc_pool *pool)
{
    if (pool->avg_ns == 0) return POOL_WINDOW_START;
    if (pool->avg_ns < 50000) return POOL_WINDOW_MAX;
    if (pool->avg_ns < 1000000) return 8;
    return POOL_WINDOW_MIN;
}

void mproc__pool_task_timed(mproc_pool *pool, int64_t service_ns)
{
    if (service_ns < 0) service_ns = 0;
    pool->avg_ns = pool->avg_ns ? pool->avg_ns + (service_ns - pool->avg_ns) / 8 : service_ns + 1;
}

/* The part of a running map chunk that an idle worker should take (see
 * RUN_PACK): the later half of what is not yet claimed, if that is worth
 * a task of its own. Splits it off into a new pending task: true. */
static bool split_locked(mproc_pool *pool)
{
    worker *best = NULL;
    uint64_t best_left = 0, best_run = 0;
    for (int i = 0; i < pool->n; i++) {
        worker *w = &pool->w[i];
        pool_task *t = pool_first(&w->tasks);
        if (!w->p || w->dying || !t || !t->msg || t->count > RUN_MAX) continue;
        const pool_task_msg *m = t->msg;
        if (m->kind != KIND_MAP_INPLACE) continue;
        uint64_t run = atomic_load(&pool->sh->slots[i].run);
        if (RUN_TAG(run) != (t->claim & 0xffffu) || RUN_LIMIT(run) != t->count) continue;
        uint64_t left = RUN_LIMIT(run) - RUN_NEXT(run);
        if (left > best_left) best = w, best_left = left, best_run = run;
    }
    /* Worth it: at least two items and, by the pool's average task time,
     * some 100 µs of work left. */
    if (!best || best_left < 2) return false;
    pool_task *t = pool_first(&best->tasks);
    if (pool->avg_ns && (uint64_t)pool->avg_ns / 1000 * best_left / t->count < 100) return false;
    pool_task *nt = calloc(1, sizeof *nt);
    pool_task_msg *nm = malloc(t->len);
    _Atomic uint64_t *word = &pool->sh->slots[best - pool->w].run;
    uint64_t cut = 0;
    /* The worker claims a block meanwhile now and then (every 10 µs or
     * more): then look again. A failed swap leaves the word in best_run. */
    for (int tries = 0; nt && nm && tries < 64; tries++) {
        uint64_t next = RUN_NEXT(best_run), left = RUN_LIMIT(best_run) - next;
        if (RUN_TAG(best_run) != (t->claim & 0xffffu) || RUN_LIMIT(best_run) != t->count ||
            next >= RUN_LIMIT(best_run) || left < 2)
            break; /* it has finished: a result is on its way */
        if (atomic_compare_exchange_strong(word, &best_run,
                                           RUN_PACK(t->claim, next, next + (left + 1) / 2))) {
            cut = next + (left + 1) / 2;
            break;
        }
    }
    if (!cut) {
        free(nt);
        free(nm);
        return false;
    }
    memcpy(nm, t->msg, t->len);
    nm->in_ptr += cut * nm->in_size;
    nm->out_ptr += cut * nm->out_size;
    nm->count = t->count - cut;
    *nt = (pool_task){.hook = t->hook,
                      .ud = t->ud,
                      .seq = t->seq + cut,
                      .count = t->count - cut,
                      .msg = nm,
                      .len = t->len,
                      .timeout_ms = t->timeout_ms};
    t->count = cut;
    ((pool_task_msg *)t->msg)->count = cut;
    nt->id = ++pool->next_id;
    nm->id = nt->id;
    mproc__list_insert_tail(&pool->pend, &nt->node);
    pool->unfinished++;
    return true;
}

/* An idle worker, while tasks wait in a busy one's inbox, takes the last
 * of them back (see pool_slot), or else the rest of a running map chunk
 * (split_locked): true if a task is pending again. */
static bool steal_locked(mproc_pool *pool)
{
    worker *idle = NULL, *busy = NULL;
    for (int i = 0; i < pool->n; i++) {
        worker *w = &pool->w[i];
        if (!w->p || w->dying) continue;
        if (w->nassigned == 0 && !w->stop_sent && !idle) idle = w;
        if (w->nassigned >= 2 && (!busy || w->nassigned > busy->nassigned)) busy = w;
    }
    /* Before looking at the run words (a worker sets its run word, then
     * reads this): one of the two sees the other. A flag already right is
     * not stored again: this runs at every result. */
    if (atomic_load(&pool->sh->idle) != (idle != NULL)) atomic_store(&pool->sh->idle, idle != NULL);
    if (!idle) return false;
    if (!busy || !pool_last(&busy->tasks)->msg) return split_locked(pool);
    pool_task *t = pool_last(&busy->tasks); /* not the head: it has not started */
    uint64_t q = t->claim << 2 | CLAIM_QUEUED;
    if (!atomic_compare_exchange_strong(
            &pool->sh->slots[busy - pool->w].claims[t->claim % POOL_CLAIMS], &q,
            t->claim << 2 | CLAIM_REVOKED))
        return false; /* its worker has just taken it: a result is on its way */
    mproc__list_remove(&t->node);
    busy->nassigned--;
    mproc__list_insert_tail(&pool->pend, &t->node);
    return true;
}

void mproc__pool_dispatch_locked(mproc_pool *pool)
{
    int window = mproc__pool_window(pool);
    while (!mproc__list_empty(&pool->pend) || steal_locked(pool)) {
        worker *best = NULL;
        for (int i = 0; i < pool->n; i++) {
            worker *w = &pool->w[i];
            if (!w->p || w->dying || w->stop_sent || w->nassigned >= window) continue;
            /* Taken-back tasks stay in the inbox until the worker skips
             * them: the claim ring must outlast every message there. */
            uint32_t in_inbox = mproc__queue_untaken(pool->sh->slots[i].inbox, w->claims);
            if (in_inbox >= POOL_CLAIMS - 1) continue;
            if (!best || w->nassigned < best->nassigned) best = w;
        }
        if (!best) return;
        pool_task *t = pool_first(&pool->pend);
        if (t->prep) {
            t->prep(t->ud, t->seq);
            t->prep = NULL;
        }
        pool_slot *slot = &pool->sh->slots[best - pool->w];
        uint64_t claim = best->claims;
        ((pool_task_msg *)t->msg)->claim = claim;
        atomic_store(&slot->claims[claim % POOL_CLAIMS], claim << 2 | CLAIM_QUEUED);
        if (mproc_queue_put(slot->inbox, t->msg, t->len, MPROC_FOREVER) != 0) {
            pool->stalled = true; /* no arena memory: the monitor tries again */
            mproc__pool_wake_monitor(pool);
            return;
        }
        best->claims++;
        t->claim = claim;
        mproc__list_remove(&t->node);
        if (t->len > POOL_STEAL_MSG) {
            free(t->msg);
            t->msg = NULL;
        }
        mproc__list_insert_tail(&best->tasks, &t->node);
        if (++best->nassigned == 1) mproc__pool_head_started(pool, best);
    }
}

/* Once a closed pool has nothing pending, every worker gets STOP after
 * its tasks. */
void mproc__pool_send_stops_locked(mproc_pool *pool)
{
    if (pool->state != ST_CLOSED || !mproc__list_empty(&pool->pend) || pool->holds) return;
    pool_task_msg stop = {.type = MSG_STOP};
    for (int i = 0; i < pool->n; i++) {
        worker *w = &pool->w[i];
        if (!w->p || w->stop_sent) continue;
        if (mproc_queue_put(pool->sh->slots[i].inbox, &stop, sizeof stop, MPROC_FOREVER) == 0)
            w->stop_sent = true;
        else if (!pool->stalled) { /* no arena memory: the monitor tries again */
            pool->stalled = true;
            mproc__pool_wake_monitor(pool);
        }
    }
}

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
        mproc_shm_free(pool->sh->initargs);
        mproc_shm_free(pool->sh);
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
    int rc = mproc_shm_calloc((void **)&pool->sh,
                              sizeof(pool_shared) + (size_t)pool->n * sizeof(pool_slot));
    if (rc) return rc;
    pool_shared *sh = pool->sh;
    sh->magic = POOL_SHARED_MAGIC;
    sh->nworkers = (uint32_t)pool->n;
    sh->maxtasks = o->maxtasksperchild;
    if ((rc = mproc__fnref_make((const void *)o->initializer, &sh->initializer))) return rc;
    if (o->initargs_len) {
        if ((rc = mproc_shm_alloc(&sh->initargs, o->initargs_len))) return rc;
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

void mproc__pool_kill_all_locked(mproc_pool *pool)
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
    mproc__tcond_init(&pool->cv);
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
        if (mproc__tcond_wait(&pool->cv, &pool->mu, &dl) == MPROC_ETIMEDOUT) {
            rc = MPROC_ECHILDSTART;
            snprintf(pool->init_msg, sizeof pool->init_msg, "workers did not start in time");
        }
    }
    if (!rc) rc = pool->init_rc;
    if (rc) {
        if (pool->init_msg[0]) mproc_log(MPROC_LOG_ERROR, "pool: %s", pool->init_msg);
        pool->state = ST_TERMINATED;
        mproc__pool_kill_all_locked(pool);
        MPROC__UNLOCK(&pool->mu);
        destroy(pool);
        return rc;
    }
    pool->state = ST_OPEN;
    MPROC__UNLOCK(&pool->mu);
    *out = pool;
    return 0;
}

/* ---- shutting down ------------------------------------------------------------- */

int mproc_pool_close(mproc_pool *pool)
{
    if (!pool) return MPROC_EINVAL;
    if (!pool_owned(pool)) return MPROC_ECHILD;
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
    MPROC__LOCK(&pool->mu);
    pool->state = ST_TERMINATED;
    mproc__list all;
    mproc__pool_take_all_locked(pool, &all);
    mproc__pool_kill_all_locked(pool);
    pthread_cond_broadcast(&pool->cv);
    MPROC__UNLOCK(&pool->mu);
    mproc__pool_end_all(&all, MPROC_ESHUTDOWN, "the pool was terminated");
    return 0;
}

int mproc_pool_join(mproc_pool *pool, int timeout_ms)
{
    if (!pool) return MPROC_EINVAL;
    if (!pool_owned(pool)) return MPROC_ECHILD;
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
            mproc__pool_kill_all_locked(pool);
            continue;
        }
        if (mproc__tcond_wait(&pool->cv, &pool->mu, &dl) == MPROC_ETIMEDOUT) {
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
    if (!pool_owned(pool)) {
        free_copy(pool);
        return;
    }
    MPROC__LOCK(&pool->mu);
    bool open = pool->state == ST_OPEN || pool->state == ST_CLOSED;
    MPROC__UNLOCK(&pool->mu);
    if (open) mproc_pool_terminate(pool);
    MPROC__LOCK(&pool->mu);
    mproc__pool_kill_all_locked(pool);
    MPROC__UNLOCK(&pool->mu);
    destroy(pool);
}
