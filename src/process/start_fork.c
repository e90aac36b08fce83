/* The fork start method. Everything that can fail happens here in the
 * parent, so the parent need not wait for the child to report. */
#include "base/base.h"
#include "platform/platform.h"
#include "process/process.h"

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static int fork_start(mproc_process *p)
{
    pid_t parent = mproc__self_pid();
    /* The child's mproc_parent_process() sentinel: a pidfd of ourselves,
     * opened before fork so it cannot name a recycled pid. */
    int parent_fd = mproc__pidfd_open(parent);
    if (parent_fd < 0 && parent_fd != MPROC_ENOSYS) return parent_fd;
    /* Output buffered in stdio would otherwise be written twice. */
    fflush(NULL);
    /* No signal handler may run in the child before it is set up. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        mproc__reset_signal_handlers();
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        mproc__child_main(p, parent, parent_fd);
    }
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (parent_fd >= 0) close(parent_fd);
    if (pid < 0) return mproc__err_from_errno(err);
    return mproc__process_started(p, pid);
}

const mproc__start_method mproc__fork_method = {"fork", fork_start};
