/* The pool's parent side, shared by lifecycle.c (creation, shutdown),
 * submit.c, threads.c (the result and monitor threads) and scheduler.c
 * (workers, dispatch, the ending of tasks), in that order from the top:
 * each calls only those after it. See pool/pool.h for the design. */
#ifndef MPROC_INTERNAL_POOL_PARENT_H
#define MPROC_INTERNAL_POOL_PARENT_H

#include "base/list.h"
#include "pool/backend.h"
#include "pool/future.h"
#include "pool/pool.h"
#include "process/process.h"

#include <poll.h>
#include <pthread.h>

#define POOL_SPIN_NS 2000 /* queue waiters' spin: see mproc__queue_for_sleepers */
/* Tasks in a worker's inbox, the running one included: few when tasks are
 * long (an idle worker should get the next one), more when they are short
 * (fewer wake-ups per task). See pool_window in scheduler.c. */
#define POOL_WINDOW_START 2
#define POOL_WINDOW_MIN   2
#define POOL_WINDOW_MAX   32
/* Task messages up to this size are kept while queued, so that a task can
 * be taken back from a busy worker's inbox for an idle one (see pool_slot). */
#define POOL_STEAL_MSG 512
_Static_assert(POOL_WINDOW_MAX < POOL_CLAIMS, "the claim ring outlasts a window");
#define READY_TIMEOUT 60000
#define ST_STARTING   0
#define ST_OPEN       1
#define ST_CLOSED     2
#define ST_TERMINATED 3
#define ST_BROKEN     4

struct pool_task {
    uint64_t id;
    mproc_future *f; /* NULL for hook tasks */
    pool_task_hook hook;
    pool_task_prep prep;
    void *ud;
    uint64_t seq;
    size_t count;   /* hook tasks: the items it stands for */
    uint64_t claim; /* its number in its worker's inbox */
    void *msg;      /* the task message until it is in an inbox (kept if small) */
    size_t len;
    int timeout_ms; /* 0: none */
    int64_t started_ns;
    mproc__list node; /* in the pending list, a worker's, or a list being ended */
};

typedef struct worker {
    mproc_process *p; /* NULL once gone for good */
    pid_t pid;
    int sentinel;
    uint32_t gen;
    mproc__list tasks; /* assigned, in inbox order; the first (the head) runs */
    int nassigned;
    uint64_t claims; /* tasks ever queued to this slot */
    bool dying, retired, timed_out, stop_sent;
} worker;

struct mproc_pool {
    pid_t owner; /* the process that made it: the only one that may use it */
    /* A pool of another kind (pool/backend.h): the public calls go to it
     * and nothing below is used. */
    const mproc__pool_backend *backend;
    void *backend_ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pool_shared *sh;
    int n;
    worker *w;
    mproc_start_method method;
    int task_timeout_ms;
    int state;
    int ready; /* workers that reported their initializer's success */
    int init_rc;
    char init_msg[512];
    mproc__list pend;  /* tasks not yet in an inbox, oldest first */
    size_t unfinished; /* tasks pending or assigned */
    uint64_t next_id;
    pthread_t rthr, mthr;
    bool threads;
    int wake[2];
    bool stop_monitor;
    int64_t avg_ns; /* moving average of a task's time in a worker (0: none yet) */
    int holds;      /* imaps still producing: a closed pool goes on for them */
    /* The monitor thread's poll set (n + 1 entries) and the worker of each
     * entry, made with the pool: the thread itself cannot fail. */
    struct pollfd *mon_pf;
    int *mon_idx;
    /* A put to a queue found no arena memory (a task or STOP for an inbox,
     * a death notice): the monitor thread tries again every 20 ms. */
    bool stalled;
};

/* ---- lists ----------------------------------------------------------------- */

/* The first or last task of a list (pend, a worker's tasks), or the one
 * after t: NULL past the ends. */
static inline pool_task *pool_first(const mproc__list *l)
{
    return MPROC__LIST_FIRST(l, pool_task, node);
}

static inline pool_task *pool_last(const mproc__list *l)
{
    return MPROC__LIST_LAST(l, pool_task, node);
}

static inline pool_task *pool_next(const mproc__list *l, const pool_task *t)
{
    return MPROC__LIST_ENTRY(mproc__list_next(l, &t->node), pool_task, node);
}

/* Whether the calling process owns the pool. Any other process (a fork
 * copy of the owner, a worker) has a private copy of the pool's struct that
 * points at the owner's shared state: it gets MPROC_ECHILD and must touch
 * nothing, not even the lock (another thread may have held it at the
 * fork). One compare of the cached pid. */
static inline bool pool_owned(const mproc_pool *pool)
{
    return pool->owner == mproc__self_pid();
}

/* ---- the scheduler (scheduler.c) ---- */

/* Ends a task: its future or hook (no lock held); frees it. */
void mproc__pool_task_end(pool_task *t, int rc, const void *res, size_t len, const char *msg,
                          pid_t pid);
/* Ends every task of a list with one failure; the list is left empty. */
void mproc__pool_end_all(mproc__list *list, int rc, const char *msg);

/* With the pool lock held: */
void mproc__pool_task_timed(mproc_pool *pool, int64_t service_ns);
void mproc__pool_wake_monitor(mproc_pool *pool);
int mproc__pool_start_worker(mproc_pool *pool, int i);
void mproc__pool_head_started(mproc_pool *pool, worker *w);
void mproc__pool_dispatch_locked(mproc_pool *pool);
void mproc__pool_send_stops_locked(mproc_pool *pool);
void mproc__pool_take_all_locked(mproc_pool *pool, mproc__list *all);

/* ---- the pool's threads (threads.c; arg: the pool) ---- */
void *mproc__pool_result_thread(void *arg);
void *mproc__pool_monitor_thread(void *arg);

#endif
