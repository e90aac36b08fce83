/* World mode: start-up, the program check, a serving rank's loop, and
 * shutdown (mproc/cluster.h, cluster/cluster.h). */
#include "cluster/cluster.h"
#include "base/log.h"
#include "pool/future.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { C_NONE, C_ACTIVE, C_DOWN };

static pthread_mutex_t state_mu = PTHREAD_MUTEX_INITIALIZER;
static int state;
static bool own_mpi; /* mproc_cluster_init initialized MPI: shutdown finalizes it */

/* ---- a serving rank ------------------------------------------------------------ */

static void send_result(MPI_Comm comm, uint64_t id, int rc, const char *msg, const void *res,
                        size_t len)
{
    size_t msglen = rc && msg ? strlen(msg) : 0;
    if (msglen > 65536) msglen = 65536;
    if (rc == 0 && len > (size_t)INT_MAX - sizeof(cl_result_hdr)) {
        rc = MPROC_EMSGSIZE;
        msg = "the task's result is too large for one MPI message";
        msglen = strlen(msg);
    }
    if (rc) len = 0;
    cl_result_hdr h = {
        .id = id, .rc = rc, .pid = (int32_t)getpid(), .msglen = (uint32_t)msglen, .len = len};
    size_t total = sizeof h + msglen + len;
    char *buf = malloc(total);
    if (!buf) { /* answer anyway, without the bytes */
        h = (cl_result_hdr){.id = id, .rc = MPROC_ENOMEM, .pid = (int32_t)getpid()};
        MPI_Send(&h, (int)sizeof h, MPI_BYTE, 0, CL_TAG_RESULT, comm);
        return;
    }
    memcpy(buf, &h, sizeof h);
    if (msglen) memcpy(buf + sizeof h, msg, msglen);
    if (len) memcpy(buf + sizeof h + msglen, res, len);
    MPI_Send(buf, (int)total, MPI_BYTE, 0, CL_TAG_RESULT, comm);
    free(buf);
}

static void run_task(MPI_Comm comm, const char *m, size_t n)
{
    cl_task_hdr h = {0};
    if (n < sizeof h) {
        mproc_log(MPROC_LOG_ERROR, "cluster: a malformed task message (%zu bytes)", n);
        return;
    }
    memcpy(&h, m, sizeof h);
    const char *path = m + sizeof h, *payload = path + h.pathlen;
    size_t plen = n - sizeof h - (h.pathlen <= n - sizeof h ? h.pathlen : 0);
    bool ok = h.pathlen <= n - sizeof h;
    if (ok && h.kind == CL_MAP)
        ok = h.in_size <= SIZE_MAX &&
             (h.count == 0 ||
              (h.in_size <= plen / h.count && h.out_size <= SIZE_MAX / 2 / h.count)) &&
             h.count * h.in_size == plen;
    if (!ok || (h.kind != CL_APPLY && h.kind != CL_MAP)) {
        send_result(comm, h.id, MPROC_EPROTO, "a malformed task message", NULL, 0);
        return;
    }
    void *fn = mproc__cluster_fn_resolve(path, h.pathlen, h.off);
    if (!fn) {
        send_result(comm, h.id, MPROC_EINVAL, "the task's function cannot be found on this rank",
                    NULL, 0);
        return;
    }
    char *msg = NULL;
    if (h.kind == CL_APPLY) {
        mproc_result res;
        int rc = mproc__task_run((mproc_task_fn)fn, payload, plen, &res, &msg);
        send_result(comm, h.id, rc, msg, res.buf, res.len);
        free(res.buf);
    } else {
        size_t olen = (size_t)(h.count * h.out_size);
        char *out = malloc(olen ? olen : 1);
        int rc = out ? mproc__task_run_map(fn, MPROC_MAP_BYTES, payload, out, (size_t)h.count,
                                           (size_t)h.in_size, (size_t)h.out_size, &msg)
                     : MPROC_ENOMEM;
        send_result(comm, h.id, rc, msg, out, olen);
        free(out);
    }
    free(msg);
}

/* How a rank waits for its next task (idle: 0 after a message came). For
 * IDLE_SPIN_NS after the last message it polls again at once, only
 * yielding the CPU: a rank kept busy by a stream of tasks takes the next
 * one within microseconds. Then it sleeps between polls, 20 us at first,
 * doubling up to IDLE_MAX_NS, so that a rank without work costs almost no
 * CPU and takes a new task within about IDLE_MAX_NS. (A blocking MPI
 * receive would not do: MPICH and Open MPI busy-poll in it, a core per
 * idle rank.) */
#define IDLE_SPIN_NS 2000000LL
#define IDLE_MAX_NS  1000000LL
static void idle_wait(unsigned *idle, long long *since)
{
    unsigned k = (*idle)++;
    long long now = mproc_now_ns();
    if (k == 0) *since = now;
    if (now - *since < IDLE_SPIN_NS) {
        *idle = 1; /* the sleeps below count from 1 */
        sched_yield();
        return;
    }
    long long ns = 20000LL << (k - 1 < 6 ? k - 1 : 6);
    if (ns > IDLE_MAX_NS) ns = IDLE_MAX_NS;
    struct timespec ts = {0, (long)ns};
    nanosleep(&ts, NULL);
}

static MPROC__NORETURN void serve(MPI_Comm comm)
{
    unsigned idle = 0;
    long long idle_since = 0;
    for (;;) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(0, MPI_ANY_TAG, comm, &flag, &st);
        if (!flag) {
            idle_wait(&idle, &idle_since);
            continue;
        }
        idle = 0;
        int n = 0;
        MPI_Get_count(&st, MPI_BYTE, &n);
        char *m = malloc(n > 0 ? (size_t)n : 1);
        if (!m) mproc__panic("cluster: out of memory for a task of %d bytes", n);
        MPI_Recv(m, n, MPI_BYTE, 0, st.MPI_TAG, comm, MPI_STATUS_IGNORE);
        if (st.MPI_TAG == CL_TAG_STOP) {
            free(m);
            break;
        }
        if (st.MPI_TAG == CL_TAG_TASK) run_task(comm, m, (size_t)n);
        free(m);
    }
    MPI_Comm_free(&comm);
    if (own_mpi) MPI_Finalize();
    exit(0);
}

/* ---- start-up -------------------------------------------------------------------- */

static void at_exit(void)
{
    (void)mproc_cluster_shutdown();
}

typedef struct rank_id {
    uint64_t program;
    int32_t pid;
    int32_t pad;
} rank_id;

int mproc_cluster_init(int *argc, char ***argv)
{
    MPROC__LOCK(&state_mu);
    if (state != C_NONE) {
        MPROC__UNLOCK(&state_mu);
        return MPROC_EBADSTATE;
    }
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (inited) {
        MPI_Query_thread(&provided);
    } else {
        if (MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
            MPROC__UNLOCK(&state_mu);
            return MPROC_EIO;
        }
        own_mpi = true;
    }
    int rank = 0, size = 0;
    MPI_Comm comm = MPI_COMM_NULL;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    rank_id me = {.program = mproc__cluster_program_id(), .pid = (int32_t)getpid()};
    rank_id *all = malloc((size_t)size * sizeof *all);
    int32_t *pids = malloc((size_t)size * sizeof *pids);
    if (!all || !pids) mproc__panic("cluster: out of memory at start-up");
    /* Every rank learns every rank's program and pid, and whether all
     * of them have the threads the root needs. */
    MPI_Allgather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE, MPI_COMM_WORLD);
    int threads_ok = provided >= MPI_THREAD_SERIALIZED, all_threads_ok = 0;
    MPI_Allreduce(&threads_ok, &all_threads_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    int rc = 0;
    if (!all_threads_ok) {
        if (rank == 0)
            mproc_log(MPROC_LOG_ERROR,
                      "cluster: the MPI library gives thread level %d, below "
                      "MPI_THREAD_SERIALIZED: the cluster needs a thread of its own on rank 0",
                      provided);
        rc = MPROC_ENOTSUP;
    }
    char ranks[256] = "";
    size_t used = 0;
    int differ = 0;
    for (int r = 1; r < size; r++) {
        pids[r] = all[r].pid;
        if (all[r].program == all[0].program && all[r].program != 0) continue;
        if (differ++ < 16 && used < sizeof ranks - 16)
            used +=
                (size_t)snprintf(ranks + used, sizeof ranks - used, "%s%d", used ? ", " : "", r);
    }
    pids[0] = all[0].pid;
    uint64_t all0 = all[0].program;
    if (!rc && differ) {
        /* On stderr, not only in the log: the job fails and must say why. */
        if (rank == 0)
            fprintf(stderr,
                    "mproc cluster: refused: %d rank(s) (%s%s) run another program than rank 0 "
                    "(their build id or executable differs); every rank must run the same "
                    "binary\n",
                    differ, ranks, differ > 16 ? ", ..." : "");
        else if (all[rank].program != all[0].program)
            fprintf(stderr, "mproc cluster: rank %d runs another program than rank 0: refused\n",
                    rank);
        rc = MPROC_EPROTO;
    }
    free(all);
    if (!rc && MPI_Comm_dup(MPI_COMM_WORLD, &comm) != MPI_SUCCESS) rc = MPROC_EIO;
    if (rc) {
        free(pids);
        if (own_mpi) MPI_Finalize();
        state = C_DOWN;
        MPROC__UNLOCK(&state_mu);
        /* A rank that runs another program fails; the others did nothing
         * wrong. */
        if (rank != 0) exit(rc == MPROC_EPROTO && me.program == all0 ? 0 : 1);
        return rc;
    }
    if (rank != 0) {
        free(pids);
        state = C_ACTIVE;
        MPROC__UNLOCK(&state_mu);
        serve(comm);
    }
    rc = mproc__cluster_root_start(comm, size, pids);
    free(pids);
    if (rc) {
        /* The ranks wait for tasks: tell them to stop. */
        for (int r = 1; r < size; r++) MPI_Send(NULL, 0, MPI_BYTE, r, CL_TAG_STOP, comm);
        MPI_Comm_free(&comm);
        if (own_mpi) MPI_Finalize();
        state = C_DOWN;
        MPROC__UNLOCK(&state_mu);
        return rc;
    }
    state = C_ACTIVE;
    MPROC__UNLOCK(&state_mu);
    atexit(at_exit);
    return 0;
}

bool mproc_cluster_active(void)
{
    MPROC__LOCK(&state_mu);
    bool a = state == C_ACTIVE;
    MPROC__UNLOCK(&state_mu);
    return a;
}

int mproc_cluster_workers(void)
{
    return mproc__cluster_root_workers();
}

int mproc_cluster_pool_new(mproc_pool **out, const mproc_pool_opts *opts)
{
    if (!out) return MPROC_EINVAL;
    mproc_pool_opts o = opts ? *opts : (mproc_pool_opts){0};
    if (o.processes < 0 || (o.initargs_len && !o.initargs) || o.task_timeout_ms < 0)
        return MPROC_EINVAL;
    if (o.initializer || o.initargs || o.maxtasksperchild || o.context || o.task_timeout_ms) {
        mproc_log(MPROC_LOG_ERROR, "cluster: initializer, maxtasksperchild, context and "
                                   "task_timeout_ms are not yet supported on a cluster pool");
        return MPROC_ENOSYS;
    }
    if (!mproc_cluster_active()) return MPROC_EBADSTATE;
    int n = mproc__cluster_root_workers();
    if (n == 0) {
        mproc_log(MPROC_LOG_ERROR, "cluster: no worker rank: start the program with mpiexec -n N, "
                                   "N >= 2 (rank 0 runs the program, the others serve)");
        return MPROC_EINVAL;
    }
    if (o.processes > n) {
        mproc_log(MPROC_LOG_ERROR, "cluster: %d worker ranks asked for, %d exist", o.processes, n);
        return MPROC_EINVAL;
    }
    return mproc__cluster_root_pool_new(out, o.processes ? o.processes : n);
}

int mproc_cluster_shutdown(void)
{
    MPROC__LOCK(&state_mu);
    if (state != C_ACTIVE) {
        MPROC__UNLOCK(&state_mu);
        return MPROC_EBADSTATE;
    }
    state = C_DOWN;
    mproc__cluster_root_stop();
    if (own_mpi) MPI_Finalize();
    MPROC__UNLOCK(&state_mu);
    return 0;
}
