/* What every part of the manager shares (manager/manager.h): the spin of
 * its connections, and a method's side of a call: its arguments, its
 * failure, and what it tells the server of its call (a result that carries
 * its container's references, what to give back when the reply is lost)
 * or asks of it (whether its client is still there). The server sets a
 * call up and reads what the method said through the mproc__mgr_call_*
 * functions, on the connection's thread, so the built-in types below the
 * server never name it. */
#include "manager/manager.h"
#include "pool/future.h"

#include <stdarg.h>
#include <stdio.h>

uint32_t mproc__mgr_spin_ns(uint32_t ns)
{
    static _Atomic int cpus; /* counted once */
    int n = atomic_load(&cpus);
    if (!n) atomic_store(&cpus, n = mproc_cpu_count());
    return n > 1 ? ns : 0;
}

/* ---- a method's side of a call ---------------------------------------------------- */

int mproc__mgr_fail(int code, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    (void)mproc_task_fail("%s", buf);
    return code;
}

int mproc__mgr_at_most(const mproc_value *args, size_t max, const char *call, const char *example)
{
    size_t n = mproc_value_len(args);
    if (n <= max) return 0;
    if (max == 0)
        return mproc__mgr_fail(MPROC_EINVAL, "%s takes no arguments (%zu given)", call, n);
    return mproc__mgr_fail(MPROC_EINVAL,
                           "%s takes at most %zu argument%s (%zu given): the arguments are "
                           "the list of its arguments, as %s",
                           call, max, max == 1 ? "" : "s", n, example);
}

const mproc_value *mproc__mgr_arg(const mproc_value *args, size_t n)
{
    return args && mproc_value_kind_of(args) == MPROC_V_LIST && n < mproc_value_len(args)
               ? mproc_value_list_get(args, n)
               : NULL;
}

static _Thread_local bool result_owned;
static _Thread_local mproc__mgr_undo_fn method_undo;
static _Thread_local bool (*watch_alive)(void *ud); /* the client a call works for */
static _Thread_local void *watch_ud;

void mproc__mgr_result_owned(void)
{
    result_owned = true;
}

void mproc__mgr_on_undelivered(mproc__mgr_undo_fn undo)
{
    method_undo = undo;
}

bool mproc__mgr_client_alive(void)
{
    return !watch_alive || watch_alive(watch_ud);
}

/* ---- the server's side of a call -------------------------------------------------- */

void mproc__mgr_call_watch(bool (*alive)(void *ud), void *ud)
{
    watch_alive = alive;
    watch_ud = ud;
}

void mproc__mgr_call_begin(void)
{
    result_owned = false;
    method_undo = NULL;
}

bool mproc__mgr_call_owned(void)
{
    return result_owned;
}

mproc__mgr_undo_fn mproc__mgr_call_undo(void)
{
    return method_undo;
}
