/* The executor API of mproc/pool.h: argument checks and dispatch to the
 * kind (executor_thread.c, executor_process.c). */
#include "pool/executor.h"

#include <signal.h>

/* The new executor belongs to the calling process. */
static int owned(mproc_executor **out, int rc)
{
    if (rc == 0) (*out)->owner = mproc__self_pid();
    return rc;
}

int mproc_executor_new_thread(mproc_executor **out, const mproc_executor_opts *opts)
{
    if (!out) return MPROC_EINVAL;
    *out = NULL;
    if (opts && (opts->max_workers < 0 || (!opts->initargs && opts->initargs_len)))
        return MPROC_EINVAL;
    mproc__init();
    return owned(out, mproc__executor_thread_new(out, opts));
}

int mproc_executor_new_process(mproc_executor **out, const mproc_executor_opts *opts)
{
    if (!out) return MPROC_EINVAL;
    *out = NULL;
    if (opts && (opts->max_workers < 0 || (!opts->initargs && opts->initargs_len)))
        return MPROC_EINVAL;
    mproc__init();
    return owned(out, mproc__executor_process_new(out, opts));
}

int mproc_executor_submit(mproc_executor *ex, mproc_task_fn fn, const void *arg, size_t arglen,
                          mproc_future **out)
{
    if (out) *out = NULL;
    if (!ex || !fn || !out || (!arg && arglen)) return MPROC_EINVAL;
    if (!mproc__executor_owned(ex)) return MPROC_ECHILD;
    return ex->ops->submit(ex, fn, arg, arglen, out);
}

int mproc_executor_shutdown(mproc_executor *ex, bool wait, bool cancel_futures)
{
    if (!ex) return MPROC_EINVAL;
    if (!mproc__executor_owned(ex)) return MPROC_ECHILD;
    return ex->ops->shutdown(ex, wait, cancel_futures);
}

static int stop_workers(mproc_executor *ex, int sig)
{
    if (!ex) return MPROC_EINVAL;
    if (!mproc__executor_owned(ex)) return MPROC_ECHILD;
    if (!ex->ops->stop_workers) return MPROC_ENOTSUP;
    return ex->ops->stop_workers(ex, sig);
}

int mproc_executor_terminate_workers(mproc_executor *ex)
{
    return stop_workers(ex, SIGTERM);
}

int mproc_executor_kill_workers(mproc_executor *ex)
{
    return stop_workers(ex, SIGKILL);
}

void mproc_executor_free(mproc_executor *ex)
{
    if (!ex) return;
    if (!mproc__executor_owned(ex)) {
        ex->ops->free_copy(ex);
        return;
    }
    int rc = ex->ops->shutdown(ex, true, false);
    if (rc == MPROC_EDEADLK) {
        /* Only from one of its own workers: it cannot wait for itself. */
        mproc_log(MPROC_LOG_ERROR, "mproc_executor_free: %s; the executor is leaked",
                  mproc_strerror(rc));
        return;
    }
    ex->ops->free(ex);
}
