/* Re-executing the program (/proc/self/exe) so that mproc's start-up code
 * takes over before main: the spawn start method, the forkserver and the
 * named-shm tracker. */
#ifndef MPROC_INTERNAL_EXEC_SELF_H
#define MPROC_INTERNAL_EXEC_SELF_H

#include "base/base.h"

typedef struct mproc__exec_env {
    char **envp;   /* the new image's environment */
    char *preload; /* strings owned here */
    char *was;
} mproc__exec_env;

/* The environment for a re-executed image: ours, with `assign` ("NAME=v")
 * set. When mproc's code is in a shared library that the program dlopen'ed
 * (not linked, not loaded by the program's start-up), that library goes in
 * LD_PRELOAD so that its start-up code runs in the new image
 * (mproc__exec_env_restore puts LD_PRELOAD back there). Errors: MPROC_ENOTSUP (the program cannot
 * be re-executed: setuid, or mproc's code cannot be located), MPROC_ENOMEM. */
int mproc__exec_env_make(const char *assign, mproc__exec_env *out);
void mproc__exec_env_free(mproc__exec_env *e);

/* In the new image: LD_PRELOAD as the program had it. */
void mproc__exec_env_restore(void);

/* Whether the program can be re-executed at all (see above). */
bool mproc__exec_self_possible(void);

/* A path that exec(2) and access(2) take for the running program's own
 * image (/proc/self/exe), and the name it was started as (its argv[0]). */
const char *mproc__self_exe(void);
char *mproc__program_name(void);

#endif
