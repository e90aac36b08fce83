/* The module registry: what each part of the library does at start-up, at
 * a fork and at exit, without the base layer naming any of them
 * (docs/architecture.md, "Start-up and fork hooks").
 *
 * A module describes itself with an mproc__module and registers it with
 * MPROC__MODULE(var) in its own file: a constructor that only links the
 * description into the registry, before any code of the library can run
 * (the start-up constructors of the tracker and of spawn come after it).
 * mproc__init then starts every registered module once, in rank order;
 * one pthread_atfork handler and one atexit handler run the modules' hooks:
 *
 *   init               mproc__init, rank order (lowest first)
 *   before_fork        before every fork(), reverse rank order
 *   after_fork_parent  in the parent after it, rank order
 *   after_fork_child   in the child after it, rank order, at most once per
 *                      child (also for the forkserver's clone, which runs
 *                      mproc__modules_after_fork_child itself)
 *   at_exit            at exit(), reverse rank order
 *
 * Any of them may be NULL. Only the hooks of started modules run. Modules
 * of one rank run in the order they registered, which is not fixed across
 * files: a module that must follow another of its layer takes a greater
 * rank (MPROC__RANK_CONN + 1, say). */
#ifndef MPROC_INTERNAL_MODULE_H
#define MPROC_INTERNAL_MODULE_H

#include <stdatomic.h>
#include <stdbool.h>

/* The ranks of the layers, bottom up (the folders of src/): a module takes
 * its layer's, plus a small number to come after another of its layer. */
enum {
    MPROC__RANK_BASE = 0,
    MPROC__RANK_PLATFORM = 10,
    MPROC__RANK_ARENA = 20,
    MPROC__RANK_SYNC = 30,
    MPROC__RANK_SHM = 40,
    MPROC__RANK_VALUE = 50,
    MPROC__RANK_CONN = 60,
    MPROC__RANK_QUEUE = 70,
    MPROC__RANK_PROCESS = 80,
    MPROC__RANK_POOL = 90,
    MPROC__RANK_MANAGER = 100,
};

typedef struct mproc__module {
    const char *name;
    int rank;
    void (*init)(void);
    void (*before_fork)(void);
    void (*after_fork_parent)(void);
    void (*after_fork_child)(void);
    void (*at_exit)(void);
    /* The registry's own (zero in the description). */
    struct mproc__module *prev, *next;
    atomic_bool started;
} mproc__module;

/* Links m into the registry (by MPROC__MODULE, from a constructor). A
 * module registered after mproc__init ran is started at once. m must live
 * as long as the program; registering it twice is a no-op. */
void mproc__module_register(mproc__module *m);

/* Starts m ahead of mproc__init (its init, then its fork hooks run at
 * every fork of this process), for a module whose state needs its fork
 * hooks before the library is started as a whole. Idempotent. */
void mproc__module_start(mproc__module *m);

/* The after_fork_child hooks, for a child made without fork() (clone runs
 * no pthread_atfork handlers). Runs them at most once per process: a no-op
 * where they already ran for this pid. */
void mproc__modules_after_fork_child(void);

/* In an after_fork_child hook: whether the before_fork hooks ran for this
 * child (a fork(), not the forkserver's clone), so that what a module
 * locked in before_fork is this thread's to unlock. False elsewhere. */
bool mproc__fork_was_prepared(void);

/* The first registered module, by rank (then m->next): for tests and
 * diagnostics; the list only grows. */
const mproc__module *mproc__modules(void);

/* Registers `var` (a static mproc__module) before the library can be used:
 * constructor priority 101, the first an application may use (the shm
 * tracker's constructor, also at 101, needs no module; spawn's, at 102,
 * calls mproc__init). */
#define MPROC__MODULE(var)                                                                         \
    __attribute__((constructor(101))) static void mproc__register_##var(void)                      \
    {                                                                                              \
        mproc__module_register(&(var));                                                            \
    }

#endif
