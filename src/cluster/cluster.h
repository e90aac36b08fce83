/* The cluster layer's internals (mproc/cluster.h).
 *
 * Rank 0 (the root) runs the program; ranks 1..size-1 serve. Every
 * message goes over a communicator of the cluster's own, whose rank 0 is
 * the root: a duplicate of the world (world mode), the merge of the
 * program and the workers it spawned (spawn mode), or a split of the
 * program's communicator with the chosen root first (communicator mode):
 *
 *   root -> rank  TAG_TASK    cl_task_hdr, the module path, the payload
 *                             (an apply's argument bytes, a map chunk's
 *                             inputs)
 *   rank -> root  TAG_RESULT  cl_result_hdr, the failure message, the
 *                             result bytes (a map chunk's outputs)
 *   root -> rank  TAG_STOP    one byte, 1 if a rank died (then exit
 *                             without MPI_Finalize): stop serving (world and spawn
 *                             mode: finalize MPI and exit(0); communicator
 *                             mode: return to the program)
 *   root <-> rank TAG_BEAT    one byte every T/5 ms each way, on a
 *                             duplicate communicator of its own (beat.c),
 *                             when the heartbeat is on
 *
 * A rank runs its tasks in the order they came and answers each one; a
 * task with a time limit, or of a hybrid pool (cl_task_hdr.local), runs in
 * a local process pool of the rank (rank.c) and may answer out of order. The
 * root has one thread (root.c) that makes every MPI call of the library
 * after start-up: it sends the queued tasks, at most the pool's depth to
 * a rank at a time (CL_DEPTH; two per local process in the hybrid
 * layout), receives the results, and completes the futures.
 *
 * Files, bottom up: wire.c (function references and messages), rank.c
 * (a serving rank's local process pools, for time limits and the hybrid
 * layout), beat.c (the heartbeat's set-up and a serving rank's side), root.c (the root's thread and
 * the pool over ranks), world.c (start-up, the program check, a rank's loop, shutdown), exec.c (the
 * pool with cluster options, the executor over ranks). */
#ifndef MPROC_INTERNAL_CLUSTER_H
#define MPROC_INTERNAL_CLUSTER_H

#include "base/base.h"
#include "mproc/cluster.h"

#include <mpi.h>
#include <stdint.h>

/* The messages (wire.c): a rank's tasks and its STOP (one byte: 1 when a
 * rank died, so exit without MPI_Finalize) come with CL_TAG_TASK, its
 * answers with CL_TAG_RESULT, each side receiving them into a receive it
 * posted before they come (CL_POST_BYTES). A larger message is sent with
 * CL_TAG_BODY, followed by an empty one with the tag that announces it. */
enum { CL_TAG_TASK = 7301, CL_TAG_RESULT, CL_TAG_BODY, CL_TAG_BEAT, CL_TAG_BEAT_END };
#define CL_POST_BYTES  (64u << 10)
#define CL_EAGER_BYTES 1024u
/* Task kinds, and two messages a rank does not answer: CL_SETUP, the
 * local process pool of a cluster pool's setup (cl_task_hdr.setup; local:
 * its processes, count: maxtasksperchild, the function: its initializer
 * (off 0: none), the payload: the initargs), sent before the first task of
 * that pool that runs in a local pool of the rank; CL_DROP, that pool
 * ended: the rank ends its local pool. */
enum { CL_APPLY = 1, CL_MAP = 2, CL_VALUE = 3, CL_SETUP = 4, CL_DROP = 5 };

#define CL_DEPTH     2    /* tasks sent to one rank and not yet answered */
#define CL_MAX_SPAWN 4096 /* spawn mode: workers at most */
/* A serving rank looks whether its root's process (on the same host) is
 * still there this often while it waits for tasks. */
#define CL_WATCH_NS 200000000L

typedef struct cl_task_hdr {
    uint64_t id;
    uint32_t kind;
    uint32_t pathlen; /* the module's path; 0: the program */
    uint64_t off;     /* the function's offset in its module */
    uint64_t count;   /* CL_MAP: items, of in_size bytes in, out_size out */
    uint64_t in_size, out_size;
    uint32_t call;      /* CL_MAP: how fn is called (mproc_map_kind) */
    int32_t timeout_ms; /* the task's time limit; 0: none */
    uint32_t local;     /* run in a local pool of this many processes (CL_LOCAL_CPUS:
                           the host's CPUs); 0: in the rank, unless timeout_ms */
    uint32_t setup;     /* the local pool is that of this CL_SETUP (its pool's
                           initializer, maxtasksperchild); 0: one of `local` processes */
} cl_task_hdr;

#define CL_LOCAL_CPUS UINT32_MAX

typedef struct cl_result_hdr {
    uint64_t id;
    int32_t rc;
    int32_t pid;
    uint32_t msglen;
    uint32_t pad;
    uint64_t len;
} cl_result_hdr;

/* A function named so that another rank running the same program finds
 * it: its module's path (empty for the program) and its offset. */
typedef struct cl_fn {
    uint32_t pathlen;
    uint64_t off;
    char path[1024];
} cl_fn;

/* ---- buf.c: buffers that keep their pages ---- */

/* A buffer kept from one message to the next. */
typedef struct cl_kbuf {
    char *p;
    size_t cap;
} cl_kbuf;
/* At least n bytes of b (what it held is not kept), or NULL. */
char *mproc__cluster_kbuf(cl_kbuf *b, size_t n);
void mproc__cluster_kbuf_free(cl_kbuf *b);
/* The root's task messages: n bytes (NULL: no memory), freed by
 * mproc__cluster_msg_free, which keeps large ones for the next. */
void *mproc__cluster_msg_alloc(size_t n);
void mproc__cluster_msg_free(void *m);
/* At shutdown: the kept messages are freed. */
void mproc__cluster_msg_cache_drop(void);

/* ---- wire.c ---- */

/* Names fn (as spawn does, arena/fnref.h). Errors: MPROC_EINVAL (not the
 * code of a loaded module: logged), MPROC_ENAMETOOLONG, the arena's. */
int mproc__cluster_fn_make(const void *fn, cl_fn *out);
/* The address of a named function in this process, or NULL. */
void *mproc__cluster_fn_resolve(const char *path, uint32_t pathlen, uint64_t off);
/* A task message (mproc__cluster_msg_alloc'd): the header h (its kind, count, sizes, call,
 * timeout_ms and local; the rest is filled in), fn, the payload (NULL:
 * its plen bytes, the message's last, are left to the caller). NULL:
 * MPROC_ENOMEM, or a message larger than MPI can send in one piece (*rc:
 * MPROC_EMSGSIZE). */
void *mproc__cluster_task_msg(const cl_fn *fn, const cl_task_hdr *h, const void *payload,
                              size_t plen, size_t *len, int *rc);
/* The same message written at m, which holds sizeof(cl_task_hdr) +
 * fn->pathlen + plen bytes. */
void mproc__cluster_task_msg_at(void *m, const cl_fn *fn, const cl_task_hdr *h, const void *payload,
                                size_t plen);
/* Sends n bytes (n <= INT_MAX) to dest with tag as one message when they
 * fit a posted receive (CL_POST_BYTES), else as a CL_TAG_BODY message and
 * an empty announcement with tag. *req is the send of buf, which stays
 * until it completes. */
void mproc__cluster_isend(const void *buf, size_t n, int dest, int tag, MPI_Comm comm,
                          MPI_Request *req);
/* Whether the next message from src (MPI_ANY_SOURCE too) with tag has
 * come into post: its receive is posted first when *req holds none (post
 * then gets CL_POST_BYTES), then tested; *st its status when it came. */
bool mproc__cluster_posted(MPI_Comm comm, int src, int tag, cl_kbuf *post, MPI_Request *req,
                           MPI_Status *st);
/* A message from src taken into the posted buffer post (st: its status):
 * its bytes and *n, the body of an announcement received into big (which
 * came before it: it is there). Panics without memory for it. */
const char *mproc__cluster_taken(MPI_Comm comm, const MPI_Status *st, const cl_kbuf *post,
                                 cl_kbuf *big, size_t *n);
/* This program's identity: its build id, or a hash of the executable. */
uint64_t mproc__cluster_program_id(void);

/* ---- rank.c: a serving rank's local pools ---- */

/* Runs the task of header h (fn resolved, payload its bytes, copied) in
 * a local process pool of this rank (h->local processes, or one to
 * enforce a time limit); its answer is sent by a later
 * mproc__cluster_rank_poll. */
void mproc__cluster_rank_submit(MPI_Comm comm, const cl_task_hdr *h, void *fn, const char *payload,
                                size_t plen);
/* CL_SETUP (h, the initializer resolved or NULL, the initargs) and
 * CL_DROP (h->setup): kept, and the local pool made on its first task;
 * ended. A bad one is logged, and the tasks that name it fail. */
void mproc__cluster_rank_setup(const cl_task_hdr *h, void *init, const char *args, size_t len);
void mproc__cluster_rank_drop(uint32_t setup);
/* Sends the answers of the local tasks that ended; whether any did. */
bool mproc__cluster_rank_poll(MPI_Comm comm);
/* At STOP: the local pools are ended and freed. */
void mproc__cluster_rank_stop(void);

/* ---- beat.c: the heartbeat ---- */

/* Collective over comm (rank 0: the root), after the ranks' check: the
 * heartbeat's timeout T in ms (the root's MPROC_CLUSTER_HEARTBEAT_MS) and a
 * duplicate of comm for it in *hb, when T > 0 and every rank has
 * MPI_THREAD_MULTIPLE; otherwise 0 and MPI_COMM_NULL (logged on the root
 * when the thread level is the reason). */
int mproc__cluster_beat_setup(MPI_Comm comm, int provided, MPI_Comm *hb);
/* Whether the ranks on the root's host are watched by pidfd
 * (MPROC_CLUSTER_PIDFD_WATCH, not 0). */
bool mproc__cluster_pidfd_watch(void);
/* A serving rank: starts the thread that sends the root a beat every T/5
 * ms and exits the process (status 1) when none came from the root for T
 * ms (hb and ms from mproc__cluster_beat_setup; nothing when ms is 0). */
void mproc__cluster_beat_rank_start(MPI_Comm hb, int ms);
/* A serving rank at STOP: the thread is joined, the heartbeat closed
 * (mproc__cluster_beat_close) and its communicator freed. */
void mproc__cluster_beat_rank_stop(void);
/* Ends the heartbeat on hb once this side sends no more beats: an end
 * mark to each of the n peers (ranks[0..n)), then their beats taken and
 * dropped until each one's end mark has come, or ms (at least 2 s) have
 * passed. So no beat is left unreceived when hb is freed (UCX warns of
 * such messages on stdout at exit). */
void mproc__cluster_beat_close(MPI_Comm hb, const int *peers, int n, int ms);

/* ---- world.c ---- */

/* A serving rank's answer to task id (rc, msg; or the result bytes). */
void mproc__cluster_send_result(MPI_Comm comm, uint64_t id, int rc, const char *msg,
                                const void *res, size_t len);

/* ---- root.c ---- */

/* Starts the root's thread over comm (size ranks; pids[r]: rank r's pid;
 * pidfds[r]: a pidfd of rank r when it runs on the root's host, else -1:
 * a rank whose process is gone is dead, and the tasks it held fail with
 * MPROC_EWORKERDIED). pidfds (malloc'd) is taken over on success.
 * Errors: MPROC_EAGAIN, MPROC_ENOMEM. */
int mproc__cluster_root_start(MPI_Comm comm, int size, const int32_t *pids, int *pidfds);
/* Shuts down: pools terminated (tasks not sent fail with MPROC_ESHUTDOWN),
 * the tasks the ranks hold waited for, STOP sent to every live rank (its
 * byte: 1 when a rank died, so that they exit without MPI_Finalize), the
 * communicator freed, the thread joined. Returns the number of ranks that
 * died. */
int mproc__cluster_root_stop(void);
/* Before mproc__cluster_root_start: the heartbeat's communicator and
 * timeout (mproc__cluster_beat_setup; ms 0: none), taken over by the next
 * start (freed by it on failure, by the root's thread at its end). A rank
 * silent for ms is dead as a rank whose process is gone is. */
void mproc__cluster_root_heartbeat(MPI_Comm hb, int ms);
/* The number of worker ranks; 0 when the root is not running. */
int mproc__cluster_root_workers(void);
/* A pool over ranks 1..nworkers; local: cl_task_hdr.local of its tasks
 * (0: ranks only); depth: tasks one rank may hold; task_timeout_ms: the
 * pool's default time limit; init (may be NULL): with initargs, run by
 * each process of the ranks' local pools for this pool (CL_SETUP) and,
 * ranks only, once on each of its ranks, in the rank, before the call
 * returns (its failure fails the call, and no pool is left);
 * max_tasks: the local processes' maxtasksperchild (0: none). */
int mproc__cluster_root_pool_new(mproc_pool **out, int nworkers, uint32_t local, int depth,
                                 int task_timeout_ms, mproc_task_fn init, const void *initargs,
                                 size_t initargs_len, int max_tasks);

#endif
