/* Forking a sibling: clone(CLONE_PARENT), used by the forkserver so that
 * the children it makes are children of the process that asked for them
 * (which can then wait for them, get their exit codes and pidfds, and have
 * them die with it), as if that process had forked them itself.
 *
 * glibc's fork() takes no flags, so the clone is made here, and the child
 * is given what glibc's own fork gives it: its thread id in the thread
 * descriptor (written by the kernel through CLONE_CHILD_SETTID, as glibc
 * does; robust and error-checking mutexes record owners from it) and its
 * robust-mutex list registered with the kernel again. glibc keeps the
 * thread id 16 bytes before the robust list head in the thread descriptor
 * (struct pthread: tid, a spare pid, robust_prev, robust_head); that is
 * checked against gettid() before any use, and the method is reported
 * unavailable where it does not hold. Only a single-threaded caller that
 * holds no lock may use it (the forkserver): no fork handlers run. */
#include "base/base.h"
#include "platform/platform.h"

#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLONE_PARENT
#define CLONE_PARENT 0x00008000
#endif

/* The caller's thread-id field and robust list head, or false. */
static bool thread_fields(pid_t **tid, void **head, size_t *len)
{
    void *h = NULL;
    size_t l = 0;
    if (syscall(SYS_get_robust_list, 0, &h, &l) != 0 || !h || l != 3 * sizeof(void *)) return false;
    pid_t *t = (pid_t *)(void *)((char *)h - 16);
    if (*t != (pid_t)syscall(SYS_gettid)) return false;
    *tid = t;
    *head = h;
    *len = l;
    return true;
}

bool mproc__clone_parent_supported(void)
{
    pid_t *tid;
    void *head;
    size_t len;
    return thread_fields(&tid, &head, &len);
}

pid_t mproc__clone_parent(void)
{
    pid_t *tid;
    void *head;
    size_t len;
    if (!thread_fields(&tid, &head, &len)) return MPROC_ENOTSUP;
    const uint64_t flags = CLONE_PARENT | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID;
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = flags;
    args.child_tid = (uint64_t)(uintptr_t)tid;
    /* 0: with CLONE_PARENT the child takes the caller's exit signal. */
    args.exit_signal = 0;
    long r = syscall(SYS_clone3, &args, sizeof args);
#if defined(__x86_64__)
    if (r < 0 && errno == ENOSYS) /* x86-64 order: flags, stack, ptid, ctid, tls */
        r = syscall(SYS_clone, flags, 0, NULL, tid, 0);
#endif
    if (r < 0) return MPROC__ERRNO();
    if (r == 0) syscall(SYS_set_robust_list, head, len);
    return (pid_t)r;
}
