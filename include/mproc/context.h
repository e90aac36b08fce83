/* mproc — start methods and contexts (the twin of multiprocessing's
 * get_context / set_start_method).
 *
 * Three start methods exist on Linux:
 *  - "fork": the child is a copy of the parent (fast; unsafe in a parent
 *    with threads that hold locks, as in Python).
 *  - "spawn": the child is a fresh exec of the same program. mproc's
 *    start-up code takes over before main: the program's main body (and
 *    the constructors of the program itself and of libraries loaded after
 *    mproc) never run in the child; it runs only the target.
 *  - "forkserver": a single-threaded server, itself a fresh exec of the
 *    program started on first use, forks each child. The children are
 *    children of the process that asked (not of the server).
 * Under spawn and forkserver the child is a new program image: pointers
 * into the parent's heap, stack or globals mean nothing there. What works
 * in the argument bytes under every method: values, pointers into the
 * family arena (queues, locks, shared values...), and connection handles
 * (mproc_conn *), which travel as fds. A target must be a function of the
 * program or of a shared library it had loaded.
 *
 * Default: "forkserver" where it works, else "spawn", like Python 3.14 on
 * Linux. MPROC_START_METHOD=fork|spawn|forkserver in the environment sets
 * the default for any mproc program.
 */
#ifndef MPROC_CONTEXT_H
#define MPROC_CONTEXT_H

#include "base.h"
#include "process.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A context (opaque): a start method, as get_context() gives. */
typedef struct mproc_context mproc_context;

/* The context of a start method: "fork", "spawn", "forkserver", or NULL
 * for the default one (the default method is then fixed, as in Python).
 * Contexts are static: never freed.
 * Errors: MPROC_EINVAL (NULL out, unknown name), MPROC_ENOTSUP (the method
 * does not work here). */
MPROC_API int mproc_get_context(const char *method, const mproc_context **out);

/* The context's start method name / number. */
MPROC_API const char *mproc_context_start_method(const mproc_context *ctx);
MPROC_API mproc_start_method mproc_context_method(const mproc_context *ctx);

/* mproc_process_new with the context's start method (opts->start_method,
 * if set, is overridden). Errors: as mproc_process_new. */
MPROC_API int mproc_context_process_new(const mproc_context *ctx, mproc_process **out,
                                        mproc_target_fn target, const void *arg, size_t arglen,
                                        const mproc_process_opts *opts);

/* Sets the process-wide default start method. Once the default is set or
 * used (by a start with MPROC_START_DEFAULT or mproc_get_context(NULL)), a
 * second call fails with MPROC_EBADSTATE unless force is true. NULL with
 * force resets to "not set".
 * Errors: MPROC_EINVAL (unknown name), MPROC_ENOTSUP, MPROC_EBADSTATE. */
MPROC_API int mproc_set_start_method(const char *method, bool force);

/* The default start method's name. With allow_none and no default set
 * yet, NULL (and the default stays unset); otherwise the default is
 * fixed now. */
MPROC_API const char *mproc_get_start_method(bool allow_none);

/* The methods that work here, the default first. Fills out[0..cap) and
 * returns how many there are. */
MPROC_API size_t mproc_get_all_start_methods(const char **out, size_t cap);

/* "fork", "spawn", "forkserver" (NULL for others, including DEFAULT). */
MPROC_API const char *mproc_start_method_name(mproc_start_method m);
/* Parses a method name. Errors: MPROC_EINVAL. */
MPROC_API int mproc_start_method_parse(const char *name, mproc_start_method *out);

/* Starts this process's forkserver now if it is not running (it is
 * otherwise started by the first forkserver start). Each process that
 * starts forkserver children has its own server; a fork child does not
 * share its parent's. The server exits when this process exits or calls
 * mproc_forkserver_stop. If the server dies, the next start starts a new
 * one. Errors: MPROC_ENOTSUP, MPROC_ECHILDSTART, and spawn's errors. */
MPROC_API int mproc_forkserver_ensure_running(void);

/* Stops this process's forkserver (if running) and reaps it. Children it
 * made are not affected. */
MPROC_API int mproc_forkserver_stop(void);

/* A function the forkserver runs once when it starts (to load libraries
 * or warm caches every child then inherits), or NULL. Applies to a server
 * started afterwards. Errors: MPROC_EINVAL (fn cannot be found in another
 * program image). */
typedef void (*mproc_preload_fn)(void);
MPROC_API int mproc_forkserver_set_preload(mproc_preload_fn fn);

/* ---- embedding runtimes ------------------------------------------------ */

/* For a runtime that embeds mproc (an interpreter that loaded it, such as
 * the Python package) and whose children must run its own start-up before
 * their target: sets the argv of the new images of spawn and forkserver
 * (the program file is still the running one, /proc/self/exe), argv[0]
 * first, NULL-terminated, copied. In such an image mproc's start-up code
 * maps the family arena and starts the library as usual, then leaves the
 * child pending and returns to the program's main: the runtime starts,
 * loads what it needs and calls mproc_embed_child_main, from which the
 * child runs (its target is looked up then, so it may live in a module the
 * runtime loaded). The parent's start waits for that call (up to 60 s); an
 * image that exits before it fails the start with MPROC_ECHILDSTART. NULL
 * restores the default argv (and start-up). Process-wide; applies to
 * images started afterwards, including the next forkserver.
 * Errors: MPROC_EINVAL (argv with no argv[0]), MPROC_ENOMEM. */
MPROC_API int mproc_embed_set_argv(const char *const *argv);

/* A runtime's own calls around a fork it does not make itself. */
typedef void (*mproc_embed_fork_fn)(void);

/* In a forkserver image of an embedding runtime, before
 * mproc_embed_child_main: functions the server calls before each fork of
 * a child, and after it in the server (an interpreter's PyOS_BeforeFork
 * and PyOS_AfterFork_Parent; the child's side is the target's business).
 * NULL for none. They run in the server's one thread. Returns 0. */
MPROC_API int mproc_embed_set_fork_hooks(mproc_embed_fork_fn before,
                                         mproc_embed_fork_fn after_parent);

/* Functions the fork start method calls around its fork(), in the parent,
 * in the thread that starts the child: before it, and after it (the fork
 * done or failed). That thread may be one the runtime never saw (a pool's
 * internal thread, replacing a worker): the hooks must make it fit to be
 * copied (Python takes its GIL there and calls PyOS_BeforeFork), and the
 * child's side is the target's business. NULL for none. Process-wide;
 * returns 0. */
MPROC_API int mproc_embed_set_fork_start_hooks(mproc_embed_fork_fn before,
                                               mproc_embed_fork_fn after_parent);

/* True in a new image started with an embedding argv whose child (or
 * forkserver) waits for mproc_embed_child_main. */
MPROC_API bool mproc_embed_child_pending(void);

/* In such an image, before mproc_embed_child_main: true when what is
 * pending is a forkserver (the call will serve, forking the children from
 * this image, so what the runtime loads now they all inherit: Python's
 * forkserver preload), false for a spawn child or nothing pending. */
MPROC_API bool mproc_embed_child_is_server(void);

/* In such an image: builds the pending child, reports its start to the
 * parent and runs its target, then exits with its code, as a spawn child
 * does; for a pending forkserver, serves until its parent goes. Signal
 * handlers the runtime installed stay in place in a spawn child. Does not
 * return on success. Errors: MPROC_EBADSTATE (nothing pending: not such an
 * image, or called before). A child that cannot be built (its target not
 * found) reports the failure to the parent and exits with 1. */
MPROC_API int mproc_embed_child_main(void);

#ifdef __cplusplus
}
#endif
#endif
