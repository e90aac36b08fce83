/* mproc — futures (the twin of multiprocessing's AsyncResult and of
 * concurrent.futures.Future), and the task functions pools and executors
 * run.
 *
 * One future type serves both. A future belongs to the process that made
 * it; any of its threads may wait on it, read it, cancel it. It is
 * reference-counted: the pool or executor holds a reference until the task
 * ends, the caller holds one until mproc_future_free. Only that process
 * completes it: in another one with a copy (a plain fork()), a future done
 * at the fork can be read, but waiting on, cancelling or adding a callback
 * to one not done gives MPROC_ECHILD (it would never complete there).
 */
#ifndef MPROC_FUTURE_H
#define MPROC_FUTURE_H

#include "base.h"

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- tasks ------------------------------------------------------------- */

/* What a task writes its result into (see mproc_result_set). */
typedef struct mproc_result mproc_result;

/* A task function: gets a private copy of its argument bytes (arg may be
 * NULL when arglen is 0), may set result bytes, and returns 0, or fails by
 * returning mproc_task_fail(...) (or any negative mproc code). Under spawn
 * and forkserver it runs in a new program image: it must be a function of
 * the program or of a loaded library, and the argument bytes follow the
 * rules of process arguments (see context.h). */
typedef int (*mproc_task_fn)(const void *arg, size_t arglen, mproc_result *res);

/* Sets the task's result to a copy of buf[0..len) (replacing an earlier
 * one). Errors: MPROC_EINVAL, MPROC_ENOMEM. */
MPROC_API int mproc_result_set(mproc_result *res, const void *buf, size_t len);

/* Sets the task's result to v, CBOR-encoded (read it back with
 * mproc_future_result_value). Errors: as mproc_value_encode. */
struct mproc_value;
MPROC_API int mproc_result_set_value(mproc_result *res, const struct mproc_value *v);

/* Records why the running task fails (printf-style) and returns
 * MPROC_ETASK, for `return mproc_task_fail("bad input %d", x);`. The
 * message reaches the future (mproc_future_error) and the error callback.
 * Called outside a task, it only returns MPROC_ETASK. */
MPROC_API int mproc_task_fail(const char *fmt, ...) MPROC_PRINTF(1, 2);

/* ---- futures ----------------------------------------------------------- */

/* A future (opaque). */
typedef struct mproc_future mproc_future;

/* Waits until the future is done (finished, failed or cancelled): 0, or
 * MPROC_ETIMEDOUT. Errors: MPROC_EINVAL, MPROC_ECHILD (not done, and not
 * this process's future). */
MPROC_API int mproc_future_wait(mproc_future *f, int timeout_ms);

/* Waits and gives the result: 0 with *buf and *len the result bytes (owned by
 * the future, valid until it is freed; *buf is NULL when the task set
 * none); or the task's failure: MPROC_ETASK (the task failed),
 * MPROC_EWORKERDIED, MPROC_ETIMELIMIT, MPROC_ECANCELLED, MPROC_ESHUTDOWN
 * (details: mproc_future_error); or MPROC_ETIMEDOUT (not done yet), or
 * MPROC_ECHILD (as mproc_future_wait). buf/len may be NULL. */
MPROC_API int mproc_future_result(mproc_future *f, const void **buf, size_t *len, int timeout_ms);

/* As mproc_future_result, decoding the bytes as a value (*out: free it). */
MPROC_API int mproc_future_result_value(mproc_future *f, struct mproc_value **out, int timeout_ms);

/* State, without waiting. done: finished, failed or cancelled. running:
 * a worker has it now. successful: done without failure. cancelled. */
MPROC_API bool mproc_future_done(const mproc_future *f);
MPROC_API bool mproc_future_running(const mproc_future *f);
MPROC_API bool mproc_future_successful(const mproc_future *f);
MPROC_API bool mproc_future_cancelled(const mproc_future *f);

/* Cancels a task that has not started: 0 (it will never run; the future is
 * done with MPROC_ECANCELLED, callbacks run), MPROC_ERUNNING (running),
 * MPROC_EBADSTATE (already done). Errors: MPROC_EINVAL, MPROC_ECHILD (not
 * this process's future). */
MPROC_API int mproc_future_cancel(mproc_future *f);

/* Why a done future failed: *code (as mproc_future_result returns it),
 * *msg (a string owned by the future: the task's mproc_task_fail message,
 * or what happened to its worker, with a backtrace for a crash when one
 * could be had), *pid (the worker's, 0 if none ran it). Any out-pointer may
 * be NULL. Returns 0 if it failed, MPROC_ENOENT if it succeeded,
 * MPROC_EBADSTATE if not done. */
MPROC_API int mproc_future_error(const mproc_future *f, int *code, const char **msg, pid_t *pid);

/* Runs fn(f, userdata) when the future is done: at once, in the calling
 * thread, if it already is; otherwise in the thread that completes it (a
 * pool's or executor's internal thread, or a thread that cancels it).
 * Callbacks run in the order they were added. Keep them short.
 * Errors: MPROC_EINVAL, MPROC_ENOMEM, MPROC_ECHILD (not done, and not this
 * process's future). */
typedef void (*mproc_future_cb)(mproc_future *f, void *userdata);
MPROC_API int mproc_future_add_done_callback(mproc_future *f, mproc_future_cb fn, void *userdata);

/* Drops the caller's reference. A task still pending or running goes on
 * (its result is dropped). NULL is a no-op. */
MPROC_API void mproc_future_free(mproc_future *f);

/* ---- waiting on many ----------------------------------------------------- */

/* When mproc_futures_wait returns (Python's return_when). */
typedef enum mproc_wait_mode {
    MPROC_FIRST_COMPLETED = 1,
    MPROC_FIRST_EXCEPTION = 2, /* ALL_COMPLETED unless one fails first */
    MPROC_ALL_COMPLETED = 3,
} mproc_wait_mode;

/* Waits for fs[0..n) per mode. Returns 0 when the condition holds,
 * MPROC_ETIMEDOUT otherwise; *ndone (may be NULL) gets how many are done.
 * Use mproc_future_done to tell which. Errors: MPROC_EINVAL, MPROC_ECHILD
 * (it would wait on a future of another process, see above). */
MPROC_API int mproc_futures_wait(mproc_future *const *fs, size_t n, int timeout_ms,
                                 mproc_wait_mode mode, size_t *ndone);

/* as_completed: yields the futures of a set as they complete. */
typedef struct mproc_as_completed mproc_as_completed;

/* Errors: MPROC_EINVAL, MPROC_ENOMEM. The futures must outlive it. */
MPROC_API int mproc_as_completed_new(mproc_as_completed **out, mproc_future *const *fs, size_t n);

/* The next future to complete (*f), waiting up to timeout_ms: 0,
 * MPROC_ETIMEDOUT, or MPROC_EEOF once every future was yielded;
 * MPROC_ECHILD as mproc_futures_wait. */
MPROC_API int mproc_as_completed_next(mproc_as_completed *it, mproc_future **f, int timeout_ms);

/* Frees the iterator. NULL is a no-op. */
MPROC_API void mproc_as_completed_free(mproc_as_completed *it);

#ifdef __cplusplus
}
#endif
#endif
