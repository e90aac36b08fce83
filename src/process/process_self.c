/* The current process: its identity, its parent, its registry of children,
 * and the exit handler that terminates daemonic children and joins the
 * others (as Python's multiprocessing does at exit). */
#include "arena/arena.h"
#include "base/base.h"
#include "base/list.h"
#include "base/log.h"
#include "base/module.h"
#include "platform/platform.h"
#include "process/passer.h"
#include "process/process.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static mproc__list reg = MPROC__LIST_INIT(reg); /* started, unfreed children */
static atomic_int child_counter;
static mproc_process root_obj = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .kind = MPROC__SELF,
    .name = "MainProcess",
    .identity = "",
    .started = true,
    .sentinel = -1,
};
/* The root's object, or in a child its own process object. */
static mproc_process *self = &root_obj;
static mproc_process parent_obj = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .kind = MPROC__PARENT,
    .started = true,
    .sentinel = -1,
};
static bool have_parent;

const char *mproc__self_identity(void)
{
    return self->identity;
}
int mproc__next_child_number(void)
{
    return atomic_fetch_add(&child_counter, 1) + 1;
}
bool mproc__self_is_daemon(void)
{
    return self->daemon;
}

/* At start-up: the root process. */
static void self_init(void)
{
    root_obj.pid = mproc__self_pid_v;
}

/* In every child of a fork (ours or the program's own) after the lower
 * layers' hooks, the pid already new: no children yet, and locks other
 * threads may have held at fork time. */
static void self_after_fork_child(void)
{
    self->pid = mproc__self_pid_v;
    reg_mu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    self->mu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    mproc__list_init(&reg);
}

static void exit_function(void);

/* At exit(): Python's exit function (before the arena takes back this
 * thread's cache: the lower layers' at_exit hooks run after). */
static mproc__module self_module = {
    .name = "process.self",
    .rank = MPROC__RANK_PROCESS,
    .init = self_init,
    .after_fork_child = self_after_fork_child,
    .at_exit = exit_function,
};
MPROC__MODULE(self_module)

mproc_process *mproc_current_process(void)
{
    mproc__init();
    return self;
}

mproc_process *mproc_parent_process(void)
{
    return have_parent ? &parent_obj : NULL;
}

void mproc__registry_add(mproc_process *p)
{
    MPROC__LOCK(&reg_mu);
    mproc__list_insert_tail(&reg, &p->reg);
    MPROC__UNLOCK(&reg_mu);
}

static void unlink_locked(mproc_process *p)
{
    if (mproc__list_linked(&p->reg)) mproc__list_remove(&p->reg);
}

void mproc__registry_remove(mproc_process *p)
{
    MPROC__LOCK(&reg_mu);
    unlink_locked(p);
    MPROC__UNLOCK(&reg_mu);
}

int mproc_active_children(mproc_process **out, size_t cap, size_t *n)
{
    if ((!out && cap > 0) || !n) return MPROC_EINVAL;
    size_t k = 0;
    MPROC__LOCK(&reg_mu);
    MPROC__LIST_FOREACH_SAFE (node, &reg) {
        mproc_process *p = MPROC__CONTAINER_OF(node, mproc_process, reg);
        if (mproc__reap(p, false)) {
            unlink_locked(p);
            continue;
        }
        if (k < cap) out[k] = p;
        k++;
    }
    MPROC__UNLOCK(&reg_mu);
    *n = k;
    return 0;
}

/* What the process gives back at its exit (mproc__on_process_exit). */
static void (*exit_hooks[8])(void);
static atomic_int nexit_hooks;

void mproc__on_process_exit(void (*fn)(void))
{
    int i = atomic_fetch_add(&nexit_hooks, 1);
    if (i >= (int)(sizeof exit_hooks / sizeof exit_hooks[0]))
        mproc__panic("too many process exit hooks");
    exit_hooks[i] = fn;
}

static void end_children(void)
{
    size_t n = 0;
    mproc_active_children(NULL, 0, &n);
    if (n == 0) return;
    mproc_process **kids = malloc(n * sizeof *kids);
    if (!kids) return;
    mproc_active_children(kids, n, &n);
    for (size_t i = 0; i < n; i++)
        if (kids[i]->daemon) {
            MPROC__INFO("calling terminate() for daemon %s", kids[i]->name);
            mproc_process_terminate(kids[i]);
        }
    for (size_t i = 0; i < n; i++) {
        MPROC__INFO("calling join() for process %s", kids[i]->name);
        mproc_process_join(kids[i], MPROC_FOREVER);
    }
    free(kids);
}

/* Python's exit function: terminate daemonic children, join the others;
 * then run the process exit hooks. Run at exit() and by a child's exit. */
static void exit_function(void)
{
    if (mproc__self_pid_v != getpid()) return; /* a copy made by vfork/clone */
    MPROC__DEBUG("running all \"atexit\" finalizers");
    end_children();
    int n = atomic_load(&nexit_hooks);
    for (int i = 0; i < n && i < (int)(sizeof exit_hooks / sizeof exit_hooks[0]); i++)
        exit_hooks[i]();
}

/* In the child, before the target: p (the child's copy) becomes the
 * current process and the old current process becomes the parent. */
static void become_child(mproc_process *p, pid_t parent, int parent_fd)
{
    parent_obj.pid = parent;
    parent_obj.name = self->name;
    parent_obj.daemon = self->daemon;
    parent_obj.sentinel = parent_fd;
    have_parent = true;

    p->kind = MPROC__SELF;
    p->pid = mproc__self_pid_v;
    p->sentinel = -1;
    p->creator = 0;
    atomic_store(&p->reaped, false);
    self = p;
    atomic_store(&child_counter, 0);
    mproc__log_set_name(p->name);
}

int mproc__die_with_parent_by(int sig)
{
    if (!self->daemon || !have_parent) return 0;
    return mproc__die_with_parent(parent_obj.pid, self->parent_is_thread, sig);
}

void mproc__child_main(mproc_process *p, pid_t parent, int parent_fd)
{
    become_child(p, parent, parent_fd);
    /* A daemon dies with its parent, also when the parent is already gone. */
    if (p->daemon && mproc__die_with_parent(parent, p->parent_is_thread, SIGKILL) != 0)
        raise(SIGKILL);
    if (p->passed) { /* the handles of higher layers in the bytes become the child's */
        const char *what = "";
        int rc = mproc__args_adopt(p->passed, p->arg, p->arglen, &what);
        mproc_value_free(p->passed);
        p->passed = NULL;
        if (rc) {
            mproc_log(MPROC_LOG_ERROR, "cannot adopt the %s handles passed in the arguments: %s",
                      what, mproc_strerror(rc));
            exit_function();
            fflush(NULL);
            _exit(1);
        }
    }
    MPROC__INFO("child process calling self.run()");
    int code = p->target(p->arg);
    mproc__args_release();
    MPROC__INFO("process shutting down");
    exit_function();
    mproc__arena_thread_flush();
    MPROC__INFO("process exiting with exitcode %d", code & 0xff);
    fflush(NULL);
    _exit(code & 0xff);
}
