/* Pool internals shared by the parent side (lifecycle.c, scheduler.c, map.c ...) and the
 * worker side (worker.c).
 *
 * Every worker has an inbox queue in the arena; the parent puts the tasks
 * it assigns to a worker there, at most pool_window() in scheduler.c at a time, and keeps
 * them in that worker's `assigned` list in order. Workers run their tasks
 * one by one and put results on the pool's one result queue. A worker takes
 * tasks in order, so when it dies the first task of its list (if any) is the
 * one it held; the rest are still in its inbox, which its replacement
 * takes over. The death is learnt from the worker's pidfd and announced by
 * a DIED message the parent puts on the result queue: the queue's single
 * commit order puts it after every result the dead worker committed, so
 * the result thread decides with all of them in hand. */
#ifndef MPROC_INTERNAL_POOL_H
#define MPROC_INTERNAL_POOL_H

#include "base/base.h"
#include "arena/fnref.h"
#include "mproc/pool.h"
#include "mproc/queue.h"

#include <stdatomic.h>
#include <stdint.h>

#define POOL_MAX_WORKERS 1024
#define POOL_CRASH_BYTES 3072

enum { /* message types */
       MSG_TASK = 1,
       MSG_STOP,
       MSG_READY,
       MSG_RESULT,
       MSG_RETIRE,
       MSG_DIED,
       MSG_QUIT,
       MSG_STARTED, /* a splittable chunk started while a worker was idle */
};

enum { /* task kinds */
       KIND_APPLY = 1,
       KIND_VALUE,
       KIND_MAP_COPY, /* inputs in the message, outputs in the result */
       KIND_MAP_INPLACE,
};

/* Parent -> worker. Followed by the payload. */
typedef struct pool_task_msg {
    uint32_t type, kind;
    uint64_t id;
    mproc__fnref fn;
    uint64_t in_ptr, out_ptr; /* MAP_INPLACE: arena addresses */
    uint64_t count;           /* MAP_*: elements */
    uint32_t in_size, out_size;
    uint64_t claim; /* the task's number in this worker's inbox (see pool_slot) */
    uint32_t call;  /* MAP_*: how fn is called (mproc_map_kind) */
    uint32_t pad;
} pool_task_msg;

/* Worker (or parent, for DIED/QUIT) -> result thread. Followed by msglen
 * bytes of message, then the result bytes. */
typedef struct pool_result_msg {
    uint32_t type;
    int32_t worker;
    uint32_t gen;
    int32_t rc;
    uint64_t id;
    int32_t pid;
    uint32_t msglen;
} pool_result_msg;

/* A task in an inbox can be taken back before its worker starts it, so
 * that an idle worker runs it instead: the parent sets its claim word to
 * (claim << 2 | CLAIM_QUEUED) before queuing it; the worker moves it to
 * CLAIM_TAKEN before running it, the parent to CLAIM_REVOKED when it takes
 * it back (one compare-and-swap each, so exactly one wins); a worker skips
 * a revoked task. The ring is larger than the most tasks an inbox holds. */
#define POOL_CLAIMS   64
#define CLAIM_QUEUED  1u
#define CLAIM_TAKEN   2u
#define CLAIM_REVOKED 3u

/* A map chunk worked on in place can be split while it runs, so that an
 * idle worker takes the rest of it: the worker claims its items in blocks
 * from the slot's run word [tag:16 | next:24 | limit:24] (tag: the low
 * bits of the chunk's claim number; next: the first item not yet claimed;
 * limit: the end of the chunk), and the parent lowers the limit, both with
 * a compare-and-swap, so that no item is run twice or lost. The worker
 * reports how many items it ran (its final limit). Chunks of more than
 * RUN_MAX items are not split. */
#define RUN_BITS 24
#define RUN_MAX  ((1u << RUN_BITS) - 1)
#define RUN_PACK(claim, next, limit)                                                               \
    (((uint64_t)(claim)&0xffffu) << 48 | (uint64_t)(next) << RUN_BITS | (uint64_t)(limit))
#define RUN_TAG(w)   ((w) >> 48)
#define RUN_NEXT(w)  (((w) >> RUN_BITS) & RUN_MAX)
#define RUN_LIMIT(w) ((w)&RUN_MAX)

typedef struct pool_slot {
    mproc_queue *inbox;
    _Atomic uint64_t claims[POOL_CLAIMS];
    _Atomic uint64_t run;         /* see RUN_PACK */
    char crash[POOL_CRASH_BYTES]; /* what a crashing worker wrote */
} pool_slot;

/* In the arena: what workers need. */
typedef struct pool_shared {
    uint32_t magic;
    uint32_t nworkers;
    mproc_queue *results;
    mproc__fnref initializer;
    void *initargs; /* arena copy, or NULL */
    uint64_t initargs_len;
    uint32_t maxtasks;
    /* Set by the parent while a worker is idle (before it looks for a chunk
     * to split): a worker starting a splittable chunk then says so
     * (MSG_STARTED), so that the parent looks again. */
    _Atomic uint32_t idle;
    pool_slot slots[];
} pool_shared;

#define POOL_SHARED_MAGIC 0x6c6f6f50u /* "Pool" */

/* The argument bytes of a worker process. */
typedef struct pool_worker_arg {
    pool_shared *sh;
    uint32_t idx, gen;
} pool_worker_arg;

/* The worker process's target. */
int mproc__pool_worker_main(void *arg);

/* ---- the parent side, for map.c ------------------------------------- */

typedef struct pool_task pool_task;

/* Called (no pool lock held) when an internal task ends: rc 0 with the
 * result bytes, or the failure. count: the items the task stood for (a
 * map chunk split while it ran stands for fewer than it was sent with; the
 * split-off part is a task of its own, with seq + the items left behind). */
typedef void (*pool_task_hook)(void *ud, uint64_t seq, size_t count, int rc, const void *res,
                               size_t len, const char *msg, pid_t pid);

/* Called (pool lock held) just before an internal task is put in a
 * worker's inbox: the last moment to stage its input. */
typedef void (*pool_task_prep)(void *ud, uint64_t seq);

/* Submits a task whose completion goes to hook(ud, seq, ...) instead of a
 * future; prep (may be NULL) runs when it is handed to a worker. msg is the
 * whole task message (taken over, malloc'd). */
int mproc__pool_submit_hook(mproc_pool *pool, void *msg, size_t len, int timeout_ms,
                            pool_task_hook hook, pool_task_prep prep, void *ud, uint64_t seq,
                            size_t count);

/* map_async with the function's kind given (mproc_pool_map_typed without
 * the wait): for the cluster's ranks, which run map chunks in a local
 * pool. */
int mproc__pool_map_async_typed(mproc_pool *pool, mproc_map_kind call, mproc_any_fn fn,
                                const void *in, size_t n, size_t in_size, void *out,
                                size_t out_size, const mproc_map_opts *opts, mproc_future **fut);

/* Ends the pool as mproc_pool_terminate does, stopping its workers with
 * sig (SIGTERM: a worker still alive grace_ms later gets SIGKILL; SIGKILL)
 * and waiting for them; the unfinished tasks fail with MPROC_ESHUTDOWN
 * and `why`. For the process executor's terminate_workers and
 * kill_workers. */
int mproc__pool_stop(mproc_pool *pool, int sig, int grace_ms, const char *why);

/* Number of workers. */
int mproc__pool_size(const mproc_pool *pool);

/* Whether the calling process owns the pool (see pool_owned). */
bool mproc__pool_owned(const mproc_pool *pool);

/* An imap keeps the pool going while it still produces: after close, its
 * chunks are still accepted and the workers are not stopped until every
 * hold is let go. Hold: MPROC_ESHUTDOWN unless the pool is open. */
int mproc__pool_hold(mproc_pool *pool);
void mproc__pool_unhold(mproc_pool *pool);

/* Staging for a copy-mode map: an arena block of at least `bytes` (NULL:
 * no memory). The process keeps the last block given back (up to
 * POOL_STAGE_KEEP bytes) for the next map, so that its pages stay mapped;
 * give it back once no worker can touch it. */
#define POOL_STAGE_KEEP ((size_t)64 << 20)
void *mproc__pool_stage_take(size_t bytes);
#ifdef MPROC_TESTING /* test hook (docs/testing.md) */
/* Larger blocks are refused (as when the arena is full). */
extern size_t mproc__pool_stage_limit;
#endif
void mproc__pool_stage_give(void *stage);

#endif
