/* mproc — processes (the twin of multiprocessing.Process).
 *
 * A target is `int target(void *arg)`: it gets a private copy of the bytes
 * given to mproc_process_new, and its return value is the child's exit code
 * (0..255). Handles placed in the bytes at pointer-aligned offsets travel
 * as what they stand for, under every start method: a connection (conn.h)
 * or a manager proxy (manager.h) is, in the child's copy, a handle of the
 * child's own (docs/processes.md, "Handles in the argument bytes"). Exit codes follow Python: N
 * when the child exited with N, -SIGNUM when a signal killed it.
 *
 * Threads: a process object may be used from several threads of its
 * creator; the calls are serialised internally. Only the creating process
 * may start, join or signal it (others get MPROC_ECHILD).
 */
#ifndef MPROC_PROCESS_H
#define MPROC_PROCESS_H

#include "base.h"

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A process (opaque). */
typedef struct mproc_process mproc_process;

/* A process target. arg points to a private copy of the argument bytes
 * (NULL when none were given), valid until the target returns. */
typedef int (*mproc_target_fn)(void *arg);

/* How a child is created (see context.h). A method that does not work
 * here makes mproc_process_start return MPROC_ENOTSUP. */
typedef enum mproc_start_method {
    MPROC_START_DEFAULT = 0, /* the process-wide default, resolved at start */
    MPROC_START_FORK = 1,
    MPROC_START_SPAWN = 2,
    MPROC_START_FORKSERVER = 3,
} mproc_start_method;

/* Options for mproc_process_new; zero (or NULL) means defaults. */
typedef struct mproc_process_opts {
    /* Name; NULL gives "Process-N" (children of children "Process-N:M"). */
    const char *name;
    /* A daemon child is killed when its parent exits, even by SIGKILL, and
     * may not start children of its own. */
    bool daemon;
    mproc_start_method start_method;
    /* Under spawn and forkserver, mproc_process_start refuses (MPROC_EINVAL,
     * and a warning naming the offset) argument bytes that hold a pointer
     * into this process's heap or the calling thread's stack, which would
     * mean nothing in the child; connection handles are translated and
     * pass. True skips that check, for bytes whose integers may look like
     * such addresses by chance. */
    bool unchecked_args;
} mproc_process_opts;

/* Creates a process object (not yet started) that will run target(arg
 * copy). arg may be NULL when arglen is 0; the bytes are copied now.
 * Errors: MPROC_EINVAL (NULL out or target, NULL arg with arglen > 0),
 * MPROC_ENOMEM. */
MPROC_API int mproc_process_new(mproc_process **out, mproc_target_fn target, const void *arg,
                                size_t arglen, const mproc_process_opts *opts);

/* Starts the child. Under fork this returns as soon as the child exists
 * (its start-up cannot fail); start methods whose start-up can fail report
 * that failure here.
 * Errors: MPROC_EINVAL (NULL), MPROC_ESTARTED (started before),
 * MPROC_EBADSTATE (called from a daemon process, or on the handle of the
 * current/parent process), MPROC_EINVAL (a pointer into this process's
 * heap or stack in the argument bytes, under spawn or forkserver: see
 * opts.unchecked_args), MPROC_ECHILD (the object belongs to another
 * process), MPROC_ENOTSUP (start method not available), MPROC_EAGAIN /
 * MPROC_ENOMEM (fork failed), MPROC_ECHILDSTART or the child's own code. */
MPROC_API int mproc_process_start(mproc_process *p);

/* mproc_process_new and mproc_process_start in one call (Python's
 * `p = Process(target=f, args=a); p.start()`). On a start failure the
 * object is freed and *out set to NULL. Errors: those of the two calls. */
MPROC_API int mproc_process_start_new(mproc_process **out, mproc_target_fn target, const void *arg,
                                      size_t arglen, const mproc_process_opts *opts);

/* Waits for the child to exit and reaps it. Returns 0 once it has exited
 * (then mproc_process_exitcode gives its code), MPROC_ETIMEDOUT if it is
 * still running at the deadline.
 * Errors: MPROC_EINVAL, MPROC_ENOTSTARTED, MPROC_EDEADLK (joining the
 * current process), MPROC_ECHILD (not a child of the caller). */
MPROC_API int mproc_process_join(mproc_process *p, int timeout_ms);

/* Starts ps[0..n) in order (mproc_process_start on each). On the first
 * failure returns its code and leaves the rest unstarted: ps[0..i) are
 * running and must still be joined, ps[i] is as mproc_process_start left it.
 * n = 0 does nothing and returns 0 (ps may then be NULL).
 * Errors: MPROC_EINVAL (NULL ps with n > 0, or a NULL element: nothing is
 * started), or any error of mproc_process_start. */
MPROC_API int mproc_process_start_all(mproc_process **ps, size_t n);

/* Joins ps[0..n) in order, all within one overall timeout (MPROC_FOREVER:
 * none): each join gets what is left of it, 0 once it has passed, so every
 * child that has ended is reaped. Returns 0 once all have ended,
 * MPROC_ETIMEDOUT if some are still running at the deadline (those stay
 * joinable), or the first other join error (the rest are then not joined).
 * *nfailed (nfailed may be NULL) receives how many of the joined ones exited
 * non-zero or were killed by a signal (Python's exitcode != 0). The objects
 * are not freed: mproc_process_free each one.
 * Errors: MPROC_EINVAL (NULL ps with n > 0, a NULL element, a bad timeout:
 * nothing is joined), or any error of mproc_process_join. */
MPROC_API int mproc_process_join_all(mproc_process **ps, size_t n, int timeout_ms, size_t *nfailed);

/* mproc_process_join, then, once the child has ended, its exit code into
 * *exitcode (may be NULL) and mproc_process_free: the end of a process
 * in one call. On any error (MPROC_ETIMEDOUT: still running) the object
 * is kept, as mproc_process_join leaves it. */
MPROC_API int mproc_process_join_free(mproc_process *p, int timeout_ms, int *exitcode);

/* mproc_process_join_all, then, when every child has ended, frees them all
 * and sets ps[0..n) to NULL. *nfailed as for mproc_process_join_all. On
 * any error nothing is freed: the ended ones are reaped, and every object
 * stays for mproc_process_free. */
MPROC_API int mproc_process_join_free_all(mproc_process **ps, size_t n, int timeout_ms,
                                          size_t *nfailed);

/* True while the child runs (started and not exited). Reaps it if it has
 * exited. False for NULL and for unstarted processes; for the current
 * process, true. */
MPROC_API bool mproc_process_is_alive(mproc_process *p);

/* On 0, *code is the exit code (N, or -SIGNUM). Reaps the child if it has
 * exited. Errors: MPROC_ERUNNING (not exited yet), MPROC_ENOTSTARTED,
 * MPROC_EINVAL. */
MPROC_API int mproc_process_exitcode(mproc_process *p, int *code);

/* The pid, or 0 before start. */
MPROC_API pid_t mproc_process_pid(const mproc_process *p);

/* The name ("" for NULL). The string lives as long as the object. */
MPROC_API const char *mproc_process_name(const mproc_process *p);

/* Renames the process object (and, for the current process, its log name).
 * Errors: MPROC_EINVAL, MPROC_ENOMEM. */
MPROC_API int mproc_process_set_name(mproc_process *p, const char *name);

/* Whether the process is a daemon. */
MPROC_API bool mproc_process_daemon(const mproc_process *p);

/* Sets the daemon flag. Errors: MPROC_ESTARTED after start, MPROC_EINVAL. */
MPROC_API int mproc_process_set_daemon(mproc_process *p, bool daemon);

/* Send SIGTERM / SIGKILL / SIGINT to a running child. A child that has
 * already exited is left alone (returns 0).
 * Errors: MPROC_EINVAL, MPROC_ENOTSTARTED, MPROC_ECHILD. */
MPROC_API int mproc_process_terminate(mproc_process *p);
MPROC_API int mproc_process_kill(mproc_process *p);
MPROC_API int mproc_process_interrupt(mproc_process *p);

/* An fd that becomes readable when the process exits (a pidfd), for
 * poll(2) or mproc_wait. Owned by the object.
 * Errors: MPROC_EINVAL, MPROC_ENOTSTARTED. */
MPROC_API int mproc_process_sentinel(mproc_process *p);

/* Frees the object. A process that was started must have exited (it is
 * reaped here); otherwise MPROC_ERUNNING and nothing is freed. NULL and the
 * handles of the current and parent process are no-ops returning 0.
 * It returns an int, unlike the other _free calls: freeing a running
 * process is refused, as Python's Process.close raises ValueError. */
MPROC_API int mproc_process_free(mproc_process *p);

/* The current process ("MainProcess" at the root). Never NULL; not to be
 * freed. */
MPROC_API mproc_process *mproc_current_process(void);

/* The parent of the current process, or NULL in the root process. Its
 * is_alive/join/sentinel watch the parent's death (a parent that ended
 * before the child started is seen ended at once). Not to be freed. */
MPROC_API mproc_process *mproc_parent_process(void);

/* Reaps finished children and fills out[0..cap) with those still running,
 * oldest first; *n receives how many are running (may exceed cap).
 * out may be NULL when cap is 0. Errors: MPROC_EINVAL. */
MPROC_API int mproc_active_children(mproc_process **out, size_t cap, size_t *n);

/* CPUs this process may use: the CPU affinity mask, further capped by a
 * cgroup CPU quota (v2 cpu.max or v1 cfs quota), at least 1.
 * MPROC_CPU_COUNT in the environment (a positive integer) overrides. */
MPROC_API int mproc_cpu_count(void);

#ifdef __cplusplus
}
#endif
#endif
