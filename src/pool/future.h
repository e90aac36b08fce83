/* Future internals for the pool and the executors (mproc/future.h). */
#ifndef MPROC_INTERNAL_FUTURE_H
#define MPROC_INTERNAL_FUTURE_H

#include "base/base.h"
#include "mproc/future.h"
#include "mproc/pool.h"
#include "mproc/value.h"

#include <stdint.h>
#include <sys/types.h>

/* Asks the owner to withdraw a task that has not started: returns true if
 * it did (the task will never run; the owner drops its reference as after
 * a run, and need not complete the future: mproc_future_cancel then does,
 * with MPROC_ECANCELLED). Called with no future lock held, while the
 * canceller holds a reference. */
typedef bool (*mproc__future_withdraw_fn)(void *owner, mproc_future *f);

/* Whether f is pending in a process other than the one that made it (a
 * fork copy): nothing completes it there. */
bool mproc__future_foreign(const mproc_future *f);

/* A new pending future with two references (the caller's and the
 * owner's). callback/error_callback (may be NULL) are added as done
 * callbacks that run on success / on failure other than cancel. NULL on
 * ENOMEM. */
mproc_future *mproc__future_new(mproc_future_cb callback, mproc_future_cb error_callback,
                                void *userdata);

/* The owner's reference: another mproc_future_free. */
void mproc__future_ref(mproc_future *f);

/* Sets who can withdraw the task while it is pending (for cancel), before
 * the future is handed out. */
void mproc__future_set_withdraw(mproc_future *f, mproc__future_withdraw_fn fn, void *owner);

/* Lets the owner make progress in a thread that waits for f: called by
 * mproc__future_wait_until (no lock held, f not done, the thread without
 * a step function) before it sleeps on f; it returns when f is done or
 * when it gives up (then the waiter sleeps as without it). dl is the
 * waiter's deadline. */
typedef void (*mproc__future_drive_fn)(void *owner, mproc_future *f, const mproc__deadline *dl);
/* Sets the owner's drive hook, before the future is handed out. */
void mproc__future_set_drive(mproc_future *f, mproc__future_drive_fn fn, void *owner);

/* Pending -> running (false if it was cancelled meanwhile: do not run). */
bool mproc__future_set_running(mproc_future *f, pid_t worker);

/* Completes the future: with result bytes (taken over: malloc'd, or NULL),
 * or with a failure (code < 0, msg copied, may be NULL, pid of the worker
 * or 0). The first completion wins; later ones are ignored (and buf is
 * freed). Wakes waiters and runs the callbacks in this thread. */
void mproc__future_finish(mproc_future *f, void *buf, size_t len);
void mproc__future_fail(mproc_future *f, int code, const char *msg, pid_t pid);

/* A thread that alone completes some futures (the cluster root's thread,
 * which makes every MPI call, and runs done callbacks as it completes
 * futures) registers a step function for itself (NULL: none). A wait made
 * in that thread (mproc__future_wait_until, mproc__futures_wait_any, an
 * imap's next), which would sleep until some other thread made progress,
 * calls step in a loop instead, so that the wait makes the progress
 * itself: step makes one round of progress (no lock of the waiter held)
 * and may sleep a little, never past dl. */
typedef void (*mproc__future_step_fn)(void *ctx, const mproc__deadline *dl);
void mproc__future_set_thread_step(mproc__future_step_fn fn, void *ctx);
/* In a thread with a step function: runs it once and returns true; false
 * (and nothing done) in any other thread. */
bool mproc__future_thread_step(const mproc__deadline *dl);
/* Whether the calling thread has a step function. A wait on a condition
 * variable asks this before it lets its lock go: unlocking to step in a
 * thread without one, then waiting, would miss a signal sent meanwhile. */
bool mproc__future_thread_has_step(void);

/* ---- waiting on many (mproc_futures_wait, as_completed) ------------------ */

/* Every completion in the process stamps the future with a completion
 * number (1, 2, ... in completion order) and broadcasts one condition
 * variable, under one process-wide lock, when a thread holds that lock
 * (a waiter holds it from its first look at the numbers to its unlock,
 * letting it go only inside mproc__futures_wait_any). */
void mproc__futures_lock(void);
void mproc__futures_unlock(void);
/* With that lock held: waits for some completion, 0 or MPROC_ETIMEDOUT. */
int mproc__futures_wait_any(const mproc__deadline *dl);
/* With that lock held: the future's completion number, 0 if not done. */
uint64_t mproc__future_seq(const mproc_future *f);
/* Waits for f alone to be done, until dl: 0, MPROC_ETIMEDOUT, or
 * MPROC_ECHILD (not done, and this process is not the one that made it:
 * a fork copy, where it never completes). */
int mproc__future_wait_until(mproc_future *f, const mproc__deadline *dl);

/* ---- tasks: the runner side ---------------------------------------------- */

struct mproc_result {
    void *buf;
    size_t len;
};

/* Runs fn on arg with a fresh result; on failure *msg (malloc'd, or NULL)
 * holds the mproc_task_fail message and res is left empty. Returns fn's
 * code (a positive return, which breaks the contract, becomes
 * MPROC_ETASK with a message). */
int mproc__task_run(mproc_task_fn fn, const void *arg, size_t arglen, mproc_result *res,
                    char **msg);

/* Runs a map function, called as `call` says (mproc_map_kind), over count
 * elements (out may be NULL when out_size is 0), stopping at the first
 * failure, with the same failure message handling. A typed function fails
 * by calling mproc_task_fail. */
int mproc__task_run_map(void *fn, uint32_t call, const char *in, char *out, size_t count,
                        size_t in_size, size_t out_size, char **msg);

/* Runs call(ctx) the same way: what it says through mproc_task_fail comes
 * back in *msg (for the manager, which runs its methods so). */
int mproc__task_run_call(int (*call)(void *ctx), void *ctx, char **msg);

/* Runs a value task: decodes arg, encodes the result into res. */
int mproc__value_task_run(mproc_value_task_fn fn, const void *arg, size_t arglen, mproc_result *res,
                          char **msg);

#endif
