/* Process internals shared by the object API, the start methods, the child
 * bootstrap and wait. */
#ifndef MPROC_INTERNAL_PROCESS_H
#define MPROC_INTERNAL_PROCESS_H

#include "base/base.h"
#include "base/list.h"
#include "mproc/process.h"

#include <pthread.h>
#include <stdatomic.h>

typedef enum { MPROC__CHILD = 0, MPROC__SELF, MPROC__PARENT } mproc__proc_kind;

struct mproc_process {
    pthread_mutex_t mu; /* guards start and renames */
    mproc__proc_kind kind;
    mproc_target_fn target;
    void *arg; /* private copy of the argument bytes, or NULL; like identity
                * and name (unless name_owned) it lives in the object's block */
    size_t arglen;
    /* The handles of higher layers found in the argument bytes
     * (process/passer.h), described at start for the child; NULL when
     * none. The parent's copy is freed once the child is started. */
    struct mproc_value *passed;
    char *name;
    bool name_owned; /* name was malloc'd apart (set_name) */
    char *identity;  /* "1", "1:2", ...: the child's position in the family */
    bool daemon;
    /* Set at start, for the child: its parent is a thread other than the
     * main one, which may end before the parent process does. */
    bool parent_is_thread;
    bool unchecked_args; /* opts.unchecked_args: see process/arg_check.h */
    mproc_start_method method;
    pid_t creator; /* the process that made the object; only it may use it */
    bool started;
    pid_t pid;
    int sentinel; /* pidfd, or -1 */
    int exitcode; /* valid once reaped */
    bool lost;    /* reaped by someone else's waitpid: no exit code */
    atomic_bool reaped;
    /* its node in the creator's registry of started, unfreed children
     * (process_self.c); zeroed when not in it */
    mproc__list reg;
};

/* A start method: creates the child for p (validated, p->mu held), sets
 * p->pid and p->sentinel, and returns 0 or the start error. In the child
 * each one ends in mproc__child_main. */
typedef struct mproc__start_method {
    const char *name;
    int (*start)(mproc_process *p);
} mproc__start_method;

extern const mproc__start_method mproc__fork_method;
extern const mproc__start_method mproc__spawn_method;
extern const mproc__start_method mproc__forkserver_method;

/* Whether a method works in this process (context.c), and the default
 * (fixed on first use). */
bool mproc__start_method_available(mproc_start_method m);
mproc_start_method mproc__default_start_method(void);

/* The child side, common to every start method: becomes p's process (name,
 * identity, daemon flag; `parent` and its pidfd `parent_fd`, or -1, become
 * mproc_parent_process()), runs the target, runs the exit handler, flushes
 * stdio and _exits with the target's code. Nothing in it can fail, so the
 * fork method need not wait for the child. */
MPROC__NORETURN void mproc__child_main(mproc_process *p, pid_t parent, int parent_fd);

/* A start method's last step: p is child `pid` (its sentinel opened).
 * When no pidfd can be had for want of an fd or memory (not merely
 * ENOSYS), the child could not be watched: it is killed and reaped, and
 * that error returned for the start. */
int mproc__process_started(mproc_process *p, pid_t pid);

/* Registry of this process's children. */
void mproc__registry_add(mproc_process *p);
void mproc__registry_remove(mproc_process *p);

/* Reaps p if it has exited (waiting for it when block). Lock-free; safe
 * from several threads. Returns true once p is reaped. */
bool mproc__reap(mproc_process *p, bool block);

/* The current process: its pid is mproc__self_pid() (base.h); its
 * identity string ("" at the root), the next child number, daemon flag. */
const char *mproc__self_identity(void);
int mproc__next_child_number(void);
bool mproc__self_is_daemon(void);

/* In a daemon child: the signal it gets when its parent dies becomes sig
 * (SIGKILL from its start), for a child that has a handler to run then.
 * 0 (also in a process that is not a daemon child), MPROC_ESRCH when the
 * parent has already died. */
int mproc__die_with_parent_by(int sig);

/* Registers fn to run at this process's exit (after its children are
 * ended), for what the process keeps in the family arena for itself: the
 * arena outlives the process, so that would be lost to the family. At most
 * 8 hooks; a fork child inherits them (each must check that what it frees
 * is its own process's). */
void mproc__on_process_exit(void (*fn)(void));

#endif
