/* mproc — process pools (the twin of multiprocessing.Pool) and executors
 * (the twin of concurrent.futures' ProcessPoolExecutor and
 * ThreadPoolExecutor).
 *
 * Beyond Python: a worker that dies (signal, exit) fails only the task it
 * was running, with an error naming the signal or exit code, the pid and
 * the task, and is replaced; tasks may have a time limit (the overdue
 * worker is killed and replaced); an initializer that fails makes creation
 * fail; map over arrays in the family arena is zero-copy; imap takes its
 * input from a producer with bounded work in flight.
 *
 * Threads: a pool or executor may be used from several threads of the
 * process that created it (its owner). Any other process with a copy of it
 * (a plain fork() of the owner, a worker) gets MPROC_ECHILD from every call
 * and never touches the owner's shared state; there mproc_pool_free,
 * mproc_imap_free and mproc_executor_free release only the copy's private
 * memory and fds, and mproc_pool_workers gives 0.
 */
#ifndef MPROC_POOL_H
#define MPROC_POOL_H

#include "base.h"
#include "context.h"
#include "future.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mproc_pool mproc_pool;

typedef struct mproc_pool_opts {
    int processes;             /* workers; 0: mproc_cpu_count() */
    mproc_task_fn initializer; /* run once in each worker before tasks */
    const void *initargs;      /* its argument bytes (copied) */
    size_t initargs_len;
    unsigned maxtasksperchild;    /* a worker is replaced after this many tasks; 0: never */
    const mproc_context *context; /* start method; NULL: the default */
    int task_timeout_ms;          /* default time limit of a task; 0: none */
} mproc_pool_opts;

/* Starts a pool and waits until every worker has run its initializer.
 * Errors: MPROC_EINVAL, MPROC_ENOMEM, the start method's errors, or the
 * initializer's failure (its code; the message is logged): then no pool
 * exists and no worker is left. */
MPROC_API int mproc_pool_new(mproc_pool **out, const mproc_pool_opts *opts);

/* Options of one task. */
typedef struct mproc_task_opts {
    mproc_future_cb callback;       /* on success, in the pool's result thread */
    mproc_future_cb error_callback; /* on failure (not on cancel) */
    void *userdata;
    int timeout_ms; /* time limit once running; 0: the pool's default; MPROC_FOREVER: none */
} mproc_task_opts;

/* apply_async: runs fn(arg copy) in a worker. *out: the future (free it).
 * Errors: MPROC_EINVAL, MPROC_ENOMEM, MPROC_EINVAL (fn cannot be found in
 * a new image), MPROC_ESHUTDOWN (closed or terminated), MPROC_ECHILD (the
 * calling process is not the pool's owner, see above). */
MPROC_API int mproc_pool_apply_async(mproc_pool *pool, mproc_task_fn fn, const void *arg,
                                     size_t arglen, const mproc_task_opts *opts,
                                     mproc_future **out);

/* apply: runs fn and waits. On 0, *res (malloc'd, free it; NULL if no
 * result) and *reslen receive the result (both may be NULL). Otherwise the
 * task's error (see mproc_future_result); the message is logged. */
MPROC_API int mproc_pool_apply(mproc_pool *pool, mproc_task_fn fn, const void *arg, size_t arglen,
                               void **res, size_t *reslen);

/* A task on values: arg decoded, *result encoded back (may stay NULL). */
struct mproc_value;
typedef int (*mproc_value_task_fn)(const struct mproc_value *arg, struct mproc_value **result);
MPROC_API int mproc_pool_apply_value_async(mproc_pool *pool, mproc_value_task_fn fn,
                                           const struct mproc_value *arg,
                                           const mproc_task_opts *opts, mproc_future **out);

/* A map function: reads one input element, writes one output element;
 * returns 0 or fails (mproc_task_fail). */
typedef int (*mproc_map_fn)(const void *in, void *out);

typedef struct mproc_map_opts {
    size_t chunksize; /* 0: ceil(n / (4 * workers)), Python's rule */
    int timeout_ms;   /* time limit of each chunk; 0: the pool's default */
    /* Progress: called with (done, total) items as chunks finish, in the
     * pool's result thread. */
    void (*progress)(size_t done, size_t total, void *userdata);
    void *progress_userdata;
    bool progress_bar; /* a bar on stderr: percent, rate, ETA */
} mproc_map_opts;

/* map (and starmap: map over an array of argument structs): out[i] =
 * fn(in[i]) for i < n; in and out are arrays of in_size- and out_size-byte
 * elements. When both live in the family arena, workers read and write
 * them in place (nothing is copied); otherwise inputs travel to workers
 * and outputs back in chunks. Returns 0, or the error of the first chunk
 * that failed (the other chunks still run; their outputs are written).
 * Errors: as mproc_pool_apply_async. */
MPROC_API int mproc_pool_map(mproc_pool *pool, mproc_map_fn fn, const void *in, size_t n,
                             size_t in_size, void *out, size_t out_size,
                             const mproc_map_opts *opts);
#define mproc_pool_starmap mproc_pool_map

/* map_async: as map, returning at once; the future completes when every
 * chunk has (its result has no bytes; its error is the first chunk's).
 * in and out must stay valid until then. */
MPROC_API int mproc_pool_map_async(mproc_pool *pool, mproc_map_fn fn, const void *in, size_t n,
                                   size_t in_size, void *out, size_t out_size,
                                   const mproc_map_opts *opts, mproc_future **fut);

/* imap / imap_unordered over a producer: produce(userdata, item) writes the
 * next in_size-byte input to item and returns 1, or returns 0 at the end
 * (or a negative code: an error that ends the input). It is called by
 * mproc_imap_next, in the caller's thread, to keep at most max_inflight
 * items in flight: an endless producer never floods memory. */
typedef int (*mproc_producer_fn)(void *userdata, void *item);

typedef struct mproc_imap_opts {
    bool unordered;      /* results in completion order (imap_unordered) */
    size_t chunksize;    /* items per task; 0: 1 */
    size_t max_inflight; /* items; 0: 4 * workers * chunksize */
    int timeout_ms;      /* time limit of each task; 0: the pool's default */
} mproc_imap_opts;

typedef struct mproc_imap mproc_imap;

MPROC_API int mproc_pool_imap(mproc_pool *pool, mproc_map_fn fn, size_t in_size, size_t out_size,
                              mproc_producer_fn produce, void *userdata,
                              const mproc_imap_opts *opts, mproc_imap **out);

/* The next result into out (out_size bytes): 0; MPROC_EEOF after the last;
 * MPROC_ETIMEDOUT; or that item's task error (the iteration goes on with
 * the next item); or the producer's error. index (may be NULL) gets the
 * item's position in the input. */
MPROC_API int mproc_imap_next(mproc_imap *it, void *out, size_t *index, int timeout_ms);

/* Frees the iterator (before its pool); tasks still in flight finish and
 * are dropped. An imap holds its pool until its producer is exhausted or
 * it is freed: after close its chunks are still taken, and join waits for
 * it (as Python's imap made before close still yields everything). Made
 * after close: MPROC_ESHUTDOWN. */
MPROC_API void mproc_imap_free(mproc_imap *it);

/* close: no more tasks; workers exit once the queued ones are done.
 * terminate: stops the workers now (SIGTERM, then SIGKILL); unfinished
 * tasks fail with MPROC_ESHUTDOWN. join: waits for the workers to exit;
 * MPROC_EBADSTATE unless close or terminate came first. All three:
 * MPROC_ECHILD outside the owner. */
MPROC_API int mproc_pool_close(mproc_pool *pool);
MPROC_API int mproc_pool_terminate(mproc_pool *pool);
MPROC_API int mproc_pool_join(mproc_pool *pool, int timeout_ms);

/* The workers' pids (for tests and monitoring): fills out[0..cap), returns
 * how many workers there are. */
MPROC_API size_t mproc_pool_workers(mproc_pool *pool, pid_t *out, size_t cap);

/* Frees the pool; an open pool is terminated first. NULL is a no-op. */
MPROC_API void mproc_pool_free(mproc_pool *pool);

/* ---- executors -------------------------------------------------------- */

typedef struct mproc_executor mproc_executor;

typedef struct mproc_executor_opts {
    int max_workers;           /* 0: mproc_cpu_count() (threads: + 4, as Python) */
    mproc_task_fn initializer; /* run once in each worker */
    const void *initargs;
    size_t initargs_len;
    unsigned max_tasks_per_child; /* process executor only; 0: never replaced */
    const mproc_context *context; /* process executor only */
} mproc_executor_opts;

/* A ProcessPoolExecutor (workers are processes, a pool underneath) or a
 * ThreadPoolExecutor (workers are threads of this process, started as
 * needed). Errors: as mproc_pool_new. */
MPROC_API int mproc_executor_new_process(mproc_executor **out, const mproc_executor_opts *opts);
MPROC_API int mproc_executor_new_thread(mproc_executor **out, const mproc_executor_opts *opts);

/* submit: *out gets the future. Errors: MPROC_ESHUTDOWN, MPROC_EINVAL,
 * MPROC_ENOMEM, MPROC_ECHILD (outside the owner; as map and shutdown). */
MPROC_API int mproc_executor_submit(mproc_executor *ex, mproc_task_fn fn, const void *arg,
                                    size_t arglen, mproc_future **out);

/* map: out[i] = fn(in[i]), results in order, at most a few tasks per
 * worker in flight; waits up to timeout_ms in all (MPROC_ETIMEDOUT). Returns
 * the first item's error, if any. */
MPROC_API int mproc_executor_map(mproc_executor *ex, mproc_map_fn fn, const void *in, size_t n,
                                 size_t in_size, void *out, size_t out_size, int timeout_ms);

/* shutdown: no more submits; cancel_futures cancels the ones not started;
 * wait: waits for the running ones and for the workers to exit. */
MPROC_API int mproc_executor_shutdown(mproc_executor *ex, bool wait, bool cancel_futures);

/* Frees the executor, shutting it down (wait, no cancel) if needed. */
MPROC_API void mproc_executor_free(mproc_executor *ex);

#ifdef __cplusplus
}
#endif
#endif
