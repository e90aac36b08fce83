/* The process object: create, start, join, signal, inspect, free. */
#include "base/base.h"
#include "base/io.h"
#include "base/log.h"
#include "platform/platform.h"
#include "process/arg_check.h"
#include "process/passer.h"
#include "process/process.h"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const mproc__start_method *method_for(mproc_start_method m)
{
    if (m == MPROC_START_DEFAULT) m = mproc__default_start_method();
    if (!mproc__start_method_available(m)) return NULL;
    switch (m) {
    case MPROC_START_FORK:
        return &mproc__fork_method;
    case MPROC_START_SPAWN:
        return &mproc__spawn_method;
    case MPROC_START_FORKSERVER:
        return &mproc__forkserver_method;
    default:
        return NULL;
    }
}

int mproc_process_new(mproc_process **out, mproc_target_fn target, const void *arg, size_t arglen,
                      const mproc_process_opts *opts)
{
    if (!out || !target || (!arg && arglen > 0)) return MPROC_EINVAL;
    mproc__init();
    mproc_process_opts o = opts ? *opts : (mproc_process_opts){0};
    if (o.start_method < MPROC_START_DEFAULT || o.start_method > MPROC_START_FORKSERVER)
        return MPROC_EINVAL;
    const char *self = mproc__self_identity();
    char ident[256], defname[272];
    snprintf(ident, sizeof ident, "%s%s%d", self, *self ? ":" : "", mproc__next_child_number());
    snprintf(defname, sizeof defname, "Process-%s", ident);
    const char *name = o.name ? o.name : defname;
    size_t il = strlen(ident) + 1, nl = strlen(name) + 1;
    /* One block: the object, then the argument bytes, identity and name, so
     * that a start touches as few pages as possible. */
    size_t head = (sizeof(mproc_process) + 15) & ~(size_t)15;
    if (arglen > SIZE_MAX - head - il - nl) return MPROC_ENOMEM;
    mproc_process *p = calloc(1, head + arglen + il + nl);
    if (!p) return MPROC_ENOMEM;
    char *tail = (char *)p + head;
    pthread_mutex_init(&p->mu, NULL);
    p->kind = MPROC__CHILD;
    p->target = target;
    p->daemon = o.daemon;
    p->unchecked_args = o.unchecked_args;
    p->method = o.start_method;
    p->creator = mproc__self_pid();
    p->sentinel = -1;
    p->arglen = arglen;
    if (arglen) p->arg = memcpy(tail, arg, arglen);
    p->identity = memcpy(tail + arglen, ident, il);
    p->name = memcpy(tail + arglen + il, name, nl);
    *out = p;
    return 0;
}

/* Checks that the caller may act on p as its parent. */
static int check_child(const mproc_process *p)
{
    if (!p) return MPROC_EINVAL;
    if (p->kind != MPROC__CHILD || p->creator != mproc__self_pid()) return MPROC_ECHILD;
    return 0;
}

int mproc_process_start(mproc_process *p)
{
    if (!p) return MPROC_EINVAL;
    if (p->kind == MPROC__SELF) return MPROC_ESTARTED;
    int rc = check_child(p);
    if (rc) return rc;
    if (mproc__self_is_daemon()) return MPROC_EBADSTATE;
    const mproc__start_method *m = method_for(p->method);
    if (!m) return MPROC_ENOTSUP;
    if (m != &mproc__fork_method && (rc = mproc__arg_check(p))) return rc;
    MPROC__LOCK(&p->mu);
    if (p->started) {
        MPROC__UNLOCK(&p->mu);
        return MPROC_ESTARTED;
    }
    /* Registered before the child exists, so the parent writes less
     * shared memory while the child runs. */
    mproc__registry_add(p);
    rc = mproc__args_describe(p->arg, p->arglen, &p->passed);
    if (!rc) rc = m->start(p);
    mproc_value_free(p->passed); /* the child has its own */
    p->passed = NULL;
    if (rc == 0)
        p->started = true;
    else
        mproc__registry_remove(p);
    MPROC__UNLOCK(&p->mu);
    return rc;
}

int mproc__process_started(mproc_process *p, pid_t pid)
{
    p->pid = pid;
    int fd = mproc__pidfd_open(pid);
    if (fd < 0 && fd != MPROC_ENOSYS) { /* EMFILE, ENFILE, ENOMEM */
        kill(pid, SIGKILL);
        pid_t r;
        MPROC__RETRY_EINTR(r, waitpid(pid, NULL, 0));
        return fd;
    }
    p->sentinel = fd >= 0 ? fd : -1;
    return 0;
}

bool mproc__reap(mproc_process *p, bool block)
{
    if (atomic_load(&p->reaped)) return true;
    int st;
    pid_t r;
    MPROC__RETRY_EINTR(r, waitpid(p->pid, &st, block ? 0 : WNOHANG));
    if (r == p->pid) {
        p->exitcode = WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st);
        atomic_store(&p->reaped, true);
        return true;
    }
    if (r == 0) return false;
    /* ECHILD: another thread reaped it and is publishing the code, or the
     * program reaped our child with its own waitpid. */
    for (int spins = 0; spins < 10000 && !atomic_load(&p->reaped); spins++) sched_yield();
    if (!atomic_load(&p->reaped)) {
        p->lost = true;
        atomic_store(&p->reaped, true);
    }
    return true;
}

/* Waits for a pid that has no pidfd by polling waitpid. */
static int join_by_polling(mproc_process *p, const mproc__deadline *dl)
{
    long sleep_ns = 100000;
    for (;;) {
        if (mproc__reap(p, false)) return 0;
        if (mproc__deadline_passed(dl)) return MPROC_ETIMEDOUT;
        struct timespec ts = {0, sleep_ns};
        nanosleep(&ts, NULL);
        if (sleep_ns < 10000000) sleep_ns *= 2;
    }
}

int mproc_process_join(mproc_process *p, int timeout_ms)
{
    if (!p) return MPROC_EINVAL;
    mproc__deadline dl;
    int rc = mproc__deadline_init(&dl, timeout_ms);
    if (rc) return rc;
    if (p->kind == MPROC__SELF) return MPROC_EDEADLK;
    if (p->kind == MPROC__PARENT)
        return p->sentinel >= 0 ? mproc__wait_fd(p->sentinel, POLLIN, &dl) : MPROC_ENOSYS;
    if ((rc = check_child(p))) return rc;
    if (!p->started) return MPROC_ENOTSTARTED;
    if (dl.forever)
        mproc__reap(p, true);
    else if (p->sentinel < 0)
        rc = join_by_polling(p, &dl);
    else if ((rc = mproc__wait_fd(p->sentinel, POLLIN, &dl)) == 0)
        mproc__reap(p, true); /* exited: no wait */
    if (rc == 0 && p->lost) rc = MPROC_ECHILD;
    return rc;
}

bool mproc_process_is_alive(mproc_process *p)
{
    if (!p) return false;
    if (p->kind == MPROC__SELF) return true;
    if (p->kind == MPROC__PARENT) {
        mproc__deadline dl = {0};
        return p->sentinel >= 0 && mproc__wait_fd(p->sentinel, POLLIN, &dl) == MPROC_ETIMEDOUT;
    }
    if (check_child(p) || !p->started) return false;
    return !mproc__reap(p, false);
}

int mproc_process_exitcode(mproc_process *p, int *code)
{
    if (!p || !code) return MPROC_EINVAL;
    if (p->kind == MPROC__SELF) return MPROC_ERUNNING;
    int rc = check_child(p);
    if (rc) return rc;
    if (!p->started) return MPROC_ENOTSTARTED;
    if (!mproc__reap(p, false)) return MPROC_ERUNNING;
    if (p->lost) return MPROC_ECHILD;
    *code = p->exitcode;
    return 0;
}

pid_t mproc_process_pid(const mproc_process *p)
{
    return p ? p->pid : 0;
}

const char *mproc_process_name(const mproc_process *p)
{
    return p && p->name ? p->name : "";
}

int mproc_process_set_name(mproc_process *p, const char *name)
{
    if (!p || !name) return MPROC_EINVAL;
    char *n = strdup(name);
    if (!n) return MPROC_ENOMEM;
    MPROC__LOCK(&p->mu);
    char *old = p->name_owned ? p->name : NULL;
    p->name = n;
    p->name_owned = true;
    MPROC__UNLOCK(&p->mu);
    /* The current process's old name may still be read by a logging
     * thread: it is kept (renaming oneself is rare). */
    if (p->kind == MPROC__SELF)
        mproc__log_set_name(n);
    else
        free(old);
    return 0;
}

bool mproc_process_daemon(const mproc_process *p)
{
    return p && p->daemon;
}

int mproc_process_set_daemon(mproc_process *p, bool daemon)
{
    if (!p) return MPROC_EINVAL;
    if (p->kind != MPROC__CHILD || p->started) return MPROC_ESTARTED;
    p->daemon = daemon;
    return 0;
}

static int send_signal(mproc_process *p, int sig)
{
    int rc = check_child(p);
    if (rc) return rc;
    if (!p->started) return MPROC_ENOTSTARTED;
    if (atomic_load(&p->reaped)) return 0;
    /* Through the pidfd the signal cannot reach a process that reused the
     * pid after the child was reaped. */
    if (p->sentinel >= 0)
        rc = mproc__pidfd_signal(p->sentinel, sig);
    else
        rc = kill(p->pid, sig) == 0 ? 0 : MPROC__ERRNO();
    return rc == MPROC_ESRCH ? 0 : rc;
}

int mproc_process_terminate(mproc_process *p)
{
    return send_signal(p, SIGTERM);
}
int mproc_process_kill(mproc_process *p)
{
    return send_signal(p, SIGKILL);
}
int mproc_process_interrupt(mproc_process *p)
{
    return send_signal(p, SIGINT);
}

int mproc_process_sentinel(mproc_process *p)
{
    if (!p) return MPROC_EINVAL;
    if (p->kind == MPROC__CHILD && !p->started) return MPROC_ENOTSTARTED;
    if (p->kind == MPROC__SELF) return MPROC_EBADSTATE;
    return p->sentinel >= 0 ? p->sentinel : MPROC_ENOSYS;
}

int mproc_process_free(mproc_process *p)
{
    if (!p || p->kind != MPROC__CHILD) return 0;
    if (p->started && p->creator == mproc__self_pid()) {
        if (!mproc__reap(p, false)) return MPROC_ERUNNING;
        mproc__registry_remove(p);
    }
    if (p->sentinel >= 0) close(p->sentinel);
    mproc_value_free(p->passed);
    pthread_mutex_destroy(&p->mu);
    if (p->name_owned) free(p->name);
    free(p);
    return 0;
}
