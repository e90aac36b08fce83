/* mproc — the process pool over MPI ranks (the twin of mpi4py.futures).
 *
 * Optional: declared here always, built into a library of its own,
 * libmproc_cluster.a, only when an MPI implementation was found (standard
 * MPI only; MPICH in development). A program that uses it links that
 * library (it brings the static libmproc and MPI) and starts under
 * mpiexec (or alone, in spawn mode).
 *
 * World mode, as `mpiexec -n N python -m mpi4py.futures prog.py`:
 *
 *     int main(int argc, char **argv)
 *     {
 *         if (mproc_cluster_init(&argc, &argv) != 0) return 1;
 *         ... rank 0 only from here: the other ranks serve tasks ...
 *         mproc_pool *p;
 *         mproc_cluster_pool_new(&p, NULL);   (instead of mproc_pool_new)
 *         mproc_pool_map(p, ...);  mproc_pool_apply_async(p, ...);
 *         mproc_pool_close(p); mproc_pool_join(p, MPROC_FOREVER);
 *         mproc_pool_free(p);
 *         mproc_cluster_shutdown();        (or let exit() do it)
 *     }
 *
 * mproc_cluster_init returns on rank 0 only. Every other rank runs the
 * tasks rank 0 sends until rank 0 shuts the cluster down (by
 * mproc_cluster_shutdown, or at exit() if it did not), then finalizes MPI
 * and exits with status 0. Every rank must run the same program: the
 * ranks compare the program's build id (or, without one, a hash of the
 * executable) at start-up and a rank that differs is refused.
 *
 * The pool a cluster makes is an mproc_pool: mproc_pool_apply_async,
 * mproc_pool_apply, mproc_pool_apply_value_async, mproc_pool_map,
 * mproc_pool_map_async, the imaps (mproc_pool_imap, with unordered, and
 * the range, array and typed forms, with bounded work in flight), the
 * typed maps, close, terminate, join, free and mproc_pool_workers take it,
 * with the same task and map functions (found on the other ranks by module
 * and offset, as spawn finds them) and the same futures. A task that fails
 * gives the same error and message as in a process pool. Task time limits
 * (mproc_task_opts, mproc_map_opts, mproc_imap_opts timeout_ms; the pool's
 * task_timeout_ms) work as in a process pool (MPROC_ETIMELIMIT): a rank
 * cannot be killed without ending the MPI job, so a rank runs a task that
 * has a limit in a local process pool of its own, whose overdue worker is
 * killed. mproc_cluster_executor_new gives the executor (submit, map,
 * shutdown with cancel_futures) over ranks. The hybrid layout
 * (mproc_cluster_pool_opts) runs a local process pool on every rank, so
 * that the work spreads over ranks x cores. A map's progress callback and
 * bar work as on a process pool; an initializer runs once on each rank of
 * the pool (in the rank) and in each process of a rank's local pool that
 * runs the pool's tasks (hybrid layout, time limits); maxtasksperchild and
 * a context do not apply to ranks (MPROC_ENOTSUP: the launcher starts
 * them, and one cannot be replaced without ending the job), and
 * max_tasks_per_child of mproc_cluster_pool_opts applies to a hybrid
 * pool's local processes. A done callback (run in rank 0's
 * thread, which makes the MPI calls) may wait for other cluster tasks:
 * the wait makes the progress itself.
 *
 * Launch modes: world (mproc_cluster_init under mpiexec -n N), spawn
 * (mproc_cluster_spawn: the program starts its workers) and communicator
 * (mproc_cluster_init_comm over a communicator the program has).
 *
 * A rank that dies: with MPICH and Open MPI as launched by their mpiexec,
 * the launcher ends the whole job (every rank, rank 0 included), so
 * nothing hangs but the futures see no error; a serving rank whose root
 * dies exits by itself when the launcher leaves it running (spawn mode's
 * workers, ranks on the root's host). When the launcher leaves the job
 * running, a rank's death fails the tasks it held with MPROC_EWORKERDIED
 * (message naming the rank), and the pool goes on with the other ranks:
 * seen at once on the root's host (a pidfd per rank), and on any host by
 * a heartbeat: the root and each serving rank send each other a message
 * every T/5 ms, T being the root's MPROC_CLUSTER_HEARTBEAT_MS (10000 by
 * default, 0: off). A rank silent for T (dead, or frozen) is dead ("sent
 * no heartbeat for N ms"); a serving rank that hears nothing from its root
 * for T exits (status 1). A serving rank beats from a thread of its own,
 * so a task longer than T is no death; this needs MPI_THREAD_MULTIPLE on
 * every rank (without it the heartbeat is off, with a warning). The root
 * beats from its internal thread, which runs the futures' callbacks: a
 * callback longer than T (other than in a wait for cluster tasks, which
 * beats as it waits) loses the ranks. docs/cluster.md says what
 * survives a rank's death and what does not.
 *
 * Threads: rank 0 runs one internal thread that makes every MPI call of
 * the library (MPI_THREAD_SERIALIZED at least; MPI_THREAD_MULTIPLE is
 * asked for, so the program's own MPI calls stay legal).
 */
#ifndef MPROC_CLUSTER_H
#define MPROC_CLUSTER_H

#include "base.h"
#include "pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* World mode: initializes MPI (unless the program did) and the cluster
 * over MPI_COMM_WORLD, with rank 0 as the root. Returns 0 on rank 0; on
 * every other rank it never returns (serves tasks, then exit(0)). In a
 * process that mproc_cluster_spawn started, it serves that program
 * instead (as mproc_cluster_spawn does there). argc/argv: main's (may be
 * NULL). Errors on rank 0: MPROC_EBADSTATE (called twice, after
 * shutdown, or after MPI_Finalize), MPROC_ENOTSUP (the MPI library gives
 * less than MPI_THREAD_SERIALIZED), MPROC_EPROTO (a rank runs another
 * program: refused, the ranks named on stderr; those ranks exit with
 * status 1, the others with 0), MPROC_EIO (an MPI call failed). */
MPROC_API int mproc_cluster_init(int *argc, char ***argv);

/* Spawn mode (mpi4py's MPIPoolExecutor): a program started alone, or
 * under mpiexec -n 1, starts nworkers processes of its own executable
 * with MPI_Comm_spawn (given argv[1..]) and is their root. Returns 0 in
 * the program. In the processes it started, the same call (or
 * mproc_cluster_init) never returns: they serve the program's tasks,
 * then exit(0) at its shutdown; they exit(1) if it is gone (on the same
 * host) without shutting down. The ranks' programs are compared as in
 * world mode. MPI is initialized here unless the program did it, and
 * finalized at shutdown if so. Errors: MPROC_EINVAL (nworkers < 1 or
 * above 4096; or the world has more than one rank: use
 * mproc_cluster_init), MPROC_EBADSTATE (as mproc_cluster_init),
 * MPROC_ENOTSUP (thread level), MPROC_EIO (MPI_Comm_spawn failed: its
 * message is logged), MPROC_EPROTO (a worker runs another program). */
MPROC_API int mproc_cluster_spawn(int *argc, char ***argv, int nworkers);

/* Communicator mode (mpi4py's MPICommExecutor(comm, root)): the cluster
 * over the ranks of a communicator the program has, `comm` being the
 * address of an MPI_Comm (an intracommunicator; this header does not
 * include mpi.h), with `root` its rank that runs the program. Collective
 * over comm. On the root it returns 0 with *is_root true, and the
 * cluster is active until mproc_cluster_shutdown. On every other rank it
 * serves the root's tasks until the root shuts down, then returns 0 with
 * *is_root false. MPI stays the program's: it must be initialized (at
 * MPI_THREAD_SERIALIZED or above) before, it is never finalized here,
 * and the root must shut the cluster down before MPI_Finalize. After
 * shutdown the call may be made again. Errors: MPROC_EINVAL (NULL
 * arguments, MPI_COMM_NULL, an intercommunicator, root out of range),
 * MPROC_EBADSTATE (MPI not initialized or finalized; a cluster already
 * active), MPROC_ENOTSUP, MPROC_EPROTO, MPROC_EIO (as mproc_cluster_init;
 * returned on every rank, none exits). */
MPROC_API int mproc_cluster_init_comm(const void *comm, int root, bool *is_root);

/* Whether mproc_cluster_init succeeded and shutdown has not yet come. */
MPROC_API bool mproc_cluster_active(void);

/* The number of worker ranks (the cluster's ranks less the root: the
 * world's size less one in world mode, the processes spawned in spawn
 * mode, the communicator's size less one in communicator mode), or 0
 * when the cluster is not active on this process as its root. */
MPROC_API int mproc_cluster_workers(void);

/* A pool over the worker ranks. opts (may be NULL): processes, the number
 * of ranks to use (0: all of them), task_timeout_ms, and initializer with
 * initargs (run once on each rank of the pool, in the rank, before this
 * returns, and in the local process that runs the pool's tasks that have
 * a time limit). Ranks-only layout (see mproc_cluster_pool_new_opts for the
 * hybrid one). Several pools may share the ranks. Errors: MPROC_EBADSTATE
 * (no active cluster), MPROC_EINVAL (no worker rank: run with mpiexec -n
 * 2 or more; or more processes than ranks), MPROC_ENOTSUP
 * (maxtasksperchild or a context: they do not apply to ranks, which the
 * launcher starts and which cannot be replaced), the initializer's
 * failure (its code; the rank and message logged; no pool is left),
 * MPROC_ENOMEM. */
MPROC_API int mproc_cluster_pool_new(mproc_pool **out, const mproc_pool_opts *opts);

/* How a cluster pool uses its ranks. */
typedef enum mproc_cluster_layout {
    MPROC_CLUSTER_RANKS = 0, /* each worker rank runs its tasks itself, one at a time */
    MPROC_CLUSTER_HYBRID,    /* each worker rank runs a local process pool: ranks x cores */
} mproc_cluster_layout;

/* Options of a cluster pool or executor (zero: defaults; NULL: all). */
typedef struct mproc_cluster_pool_opts {
    int ranks;                   /* worker ranks to use; 0: all of them */
    mproc_cluster_layout layout; /* ranks only, or a local process pool on each rank */
    /* MPROC_CLUSTER_HYBRID: the processes of each rank's local pool; 0:
     * the rank's host's mproc_cpu_count() (rank 0 assumes its own count
     * when it decides how many tasks a rank may hold). Must be 0 for
     * MPROC_CLUSTER_RANKS; at most 4096. */
    int rank_processes;
    int task_timeout_ms; /* default time limit of a task, as mproc_pool_opts's; 0: none */
    /* Run with a copy of initargs (NULL: none) where the pool's tasks run:
     * - MPROC_CLUSTER_RANKS: once on each of the pool's ranks, in the rank
     *   itself, before the pool is returned (a failure fails the pool's
     *   creation with its code, the rank and the message logged); and in
     *   each process of a rank's local pool that runs the pool's tasks
     *   with a time limit, as a process pool's initializer;
     * - MPROC_CLUSTER_HYBRID: in each process of the ranks' local pools
     *   for this pool, as a process pool's initializer (a failure there
     *   fails the task that started the process). */
    mproc_task_fn initializer;
    const void *initargs;
    size_t initargs_len;
    /* MPROC_CLUSTER_HYBRID: each process of a rank's local pool for this
     * pool is replaced after this many tasks, as a process pool's
     * maxtasksperchild; 0: never. Must be 0 for MPROC_CLUSTER_RANKS (a
     * rank cannot be replaced: MPROC_ENOTSUP). */
    int max_tasks_per_child;
} mproc_cluster_pool_opts;

/* A pool over the worker ranks with the cluster's own options: as
 * mproc_cluster_pool_new, with the layout chosen. A hybrid pool's tasks
 * run in a local process pool on each rank (started on a rank's first
 * task of that pool; kept until shutdown, or, with an initializer or
 * max_tasks_per_child, until the pool is freed and its tasks ended); a
 * map chunk sent to a rank is spread over its processes. Errors:
 * MPROC_EBADSTATE (no active cluster), MPROC_EINVAL (bad options, logged;
 * no worker rank; more ranks than exist), MPROC_ENOTSUP
 * (max_tasks_per_child with the ranks-only layout), the initializer's
 * failure (ranks only, as mproc_cluster_pool_new), MPROC_ENOMEM. */
MPROC_API int mproc_cluster_pool_new_opts(mproc_pool **out, const mproc_cluster_pool_opts *opts);

/* An executor over the worker ranks (mpi4py.futures' MPIPoolExecutor):
 * the process executor with a cluster pool inside, so that
 * mproc_executor_submit, mproc_executor_map, mproc_executor_shutdown
 * (wait, cancel_futures), mproc_executor_free and the futures
 * (callbacks, mproc_futures_wait, as_completed) work unchanged. Its size
 * is ranks (x rank_processes in the hybrid layout).
 * mproc_executor_terminate_workers and _kill_workers fail the tasks the
 * ranks hold with MPROC_ESHUTDOWN at once, but the ranks run them to
 * their end (a rank is not killed). Errors: as
 * mproc_cluster_pool_new_opts. */
MPROC_API int mproc_cluster_executor_new(mproc_executor **out, const mproc_cluster_pool_opts *opts);

/* Shuts the cluster down from the root: tasks not yet sent fail with
 * MPROC_ESHUTDOWN, the tasks the ranks hold are waited for, every rank is
 * told to stop (world and spawn mode: it finalizes MPI and exits 0;
 * communicator mode: its mproc_cluster_init_comm returns), and MPI is
 * finalized here if mproc_cluster_init or mproc_cluster_spawn
 * initialized it. Pools still open are terminated. Runs at exit() when
 * the program did not call it. 0, or MPROC_EBADSTATE (no active cluster
 * on this process, or MPI already finalized). */
MPROC_API int mproc_cluster_shutdown(void);

#ifdef __cplusplus
}
#endif
#endif
