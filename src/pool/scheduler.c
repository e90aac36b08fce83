/* The pool's scheduling, parent side: starting a worker, handing pending
 * tasks to the workers' inboxes (taking back or splitting what an idle
 * worker should run), stopping the workers of a closed pool, and ending
 * tasks. The lifecycle (lifecycle.c) and the pool's threads (threads.c)
 * call it; it calls neither. See pool/pool.h for the design and
 * pool/parent.h for the parts.
 *
 * All but the ending of tasks run with the pool lock held; tasks are
 * ended (futures completed, hooks called) with no lock held. */
#include "pool/parent.h"
#include "process/process.h"
#include "queue/queue.h"

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

/* ---- workers (pool lock held from here on)
 * ------------------------------------------------------------------ */

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

static int pool_window(const mproc_pool *pool)
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

/* Moves pending tasks into inboxes, least loaded worker first. */
void mproc__pool_dispatch_locked(mproc_pool *pool)
{
    int window = pool_window(pool);
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
        pool_task *t = pool_first(&pool->pend); /* (steal_locked filled it) */
        if (!t) return;
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

/* ---- taking every task back ------------------------------------------------- */

/* Every unfinished task, moved to the list `all` (its head need not be
 * initialised): each worker's, last worker first and each worker's last
 * task first, then the pending ones in order. */
void mproc__pool_take_all_locked(mproc_pool *pool, mproc__list *all)
{
    mproc__list_move(&pool->pend, all);
    for (int i = 0; i < pool->n; i++) {
        worker *w = &pool->w[i];
        pool_task *t;
        while ((t = pool_first(&w->tasks))) {
            mproc__list_remove(&t->node);
            mproc__list_insert_head(all, &t->node);
        }
        w->nassigned = 0;
    }
    pool->unfinished = 0;
}
