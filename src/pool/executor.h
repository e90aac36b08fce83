/* Executors (mproc/pool.h): the two kinds behind one interface.
 *
 * executor.c dispatches the public calls; executor_thread.c and
 * executor_process.c implement the kinds; executor_map.c is map, built on
 * submit for both. */
#ifndef MPROC_INTERNAL_EXECUTOR_H
#define MPROC_INTERNAL_EXECUTOR_H

#include "base/base.h"
#include "process/process.h"
#include "mproc/pool.h"

typedef struct mproc__executor_ops {
    int (*submit)(mproc_executor *ex, mproc_task_fn fn, const void *arg, size_t arglen,
                  mproc_future **out);
    int (*shutdown)(mproc_executor *ex, bool wait, bool cancel_futures);
    void (*free)(mproc_executor *ex); /* after a shutdown with wait */
    /* In a process that does not own it (a fork copy): frees the copy's
     * private memory only, touching no lock, thread, worker or shared
     * state of the owner's. */
    void (*free_copy)(mproc_executor *ex);
    /* terminate_workers / kill_workers (sig: SIGTERM or SIGKILL); NULL:
     * the kind has none (threads). */
    int (*stop_workers)(mproc_executor *ex, int sig);
} mproc__executor_ops;

/* The common head of every executor. */
struct mproc_executor {
    const mproc__executor_ops *ops;
    int workers; /* the number of workers it may have */
    pid_t owner; /* the process that made it: the only one that may use it */
};

/* Whether the calling process owns ex (one compare of the cached pid). */
static inline bool mproc__executor_owned(const mproc_executor *ex)
{
    return ex->owner == mproc__self_pid();
}

int mproc__executor_thread_new(mproc_executor **out, const mproc_executor_opts *opts);
int mproc__executor_process_new(mproc_executor **out, const mproc_executor_opts *opts);
/* A process executor over a ready pool (taken over: the executor frees
 * it), for the cluster's executor, whose pool runs on MPI ranks. workers:
 * what the executor reports as its size. Errors: MPROC_EINVAL,
 * MPROC_ENOMEM (then the pool is not taken). */
int mproc__executor_process_wrap(mproc_executor **out, mproc_pool *pool, int workers);

#endif
