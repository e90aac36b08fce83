/* Future internals for the pool and the executors (mproc/future.h). */
#ifndef MPROC_INTERNAL_FUTURE_H
#define MPROC_INTERNAL_FUTURE_H

#include "internal/base.h"
#include "mproc/future.h"
#include "mproc/pool.h"

#include <sys/types.h>

/* Asks the owner to withdraw a task that has not started: returns true if
 * it did (the task will never run). Called with no future lock held. */
typedef bool (*mproc__future_withdraw_fn)(void *owner, mproc_future *f);

/* A new pending future with two references (the caller's and the
 * owner's). callback/error_callback (may be NULL) are added as done
 * callbacks that run on success / on failure other than cancel. NULL on
 * ENOMEM. */
mproc_future *mproc__future_new(mproc_future_cb callback, mproc_future_cb error_callback,
                                void *userdata);

/* The owner's reference: another mproc_future_free. */
void mproc__future_ref(mproc_future *f);

/* Sets who can withdraw the task while it is pending (for cancel). */
void mproc__future_set_withdraw(mproc_future *f, mproc__future_withdraw_fn fn, void *owner);

/* Pending -> running (false if it was cancelled meanwhile: do not run). */
bool mproc__future_set_running(mproc_future *f, pid_t worker);

/* Completes the future: with result bytes (taken over: malloc'd, or NULL),
 * or with a failure (code < 0, msg copied, may be NULL, pid of the worker
 * or 0). The first completion wins; later ones are ignored (and buf is
 * freed). Wakes waiters and runs the callbacks in this thread. */
void mproc__future_finish(mproc_future *f, void *buf, size_t len);
void mproc__future_fail(mproc_future *f, int code, const char *msg, pid_t pid);

/* ---- tasks: the runner side ---------------------------------------------- */

struct mproc_result {
    void *buf;
    size_t len;
};

/* Runs fn on arg with a fresh result; on failure *msg (malloc'd, or NULL)
 * holds the mproc_task_fail message. Returns fn's code. */
int mproc__task_run(mproc_task_fn fn, const void *arg, size_t arglen, mproc_result *res,
                    char **msg);

/* Runs a value task: decodes arg, encodes the result into res. */
int mproc__value_task_run(mproc_value_task_fn fn, const void *arg, size_t arglen, mproc_result *res,
                          char **msg);

#endif
