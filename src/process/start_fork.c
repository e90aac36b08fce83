/* The fork start method. Everything that can fail happens here in the
 * parent, so the parent need not wait for the child to report. */
#include "base/base.h"
#include "platform/platform.h"
#include "process/process.h"
#include "mproc/context.h"

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

/* An embedding runtime's calls around each fork (mproc_embed_set_fork_start_hooks). */
static _Atomic(mproc_embed_fork_fn) hook_before, hook_after_parent;

int mproc_embed_set_fork_start_hooks(mproc_embed_fork_fn before, mproc_embed_fork_fn after_parent)
{
    hook_before = before;
    hook_after_parent = after_parent;
    return 0;
}

static int fork_start(mproc_process *p)
{
    pid_t parent = mproc__self_pid();
    p->parent_is_thread = !mproc__on_main_thread(); /* for the child's copy */
    /* The child's mproc_parent_process() sentinel: a pidfd of ourselves,
     * opened before fork so it cannot name a recycled pid. */
    int parent_fd = mproc__pidfd_open(parent);
    if (parent_fd < 0 && parent_fd != MPROC_ENOSYS) return parent_fd;
    /* Output buffered in stdio would otherwise be written twice. */
    fflush(NULL);
    /* No signal handler may run in the child before it is set up. */
    sigset_t all, old;
    sigfillset(&all);
    mproc_embed_fork_fn before = hook_before, after_parent = hook_after_parent;
    if (before) before();
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        mproc__reset_signal_handlers();
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        mproc__child_main(p, parent, parent_fd);
    }
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (after_parent) after_parent();
    if (parent_fd >= 0) close(parent_fd);
    if (pid < 0) return mproc__err_from_errno(err);
    return mproc__process_started(p, pid);
}

const mproc__start_method mproc__fork_method = {"fork", fork_start};
