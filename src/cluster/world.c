/* The launch modes (world, spawn, communicator): start-up, the program
 * check, a serving rank's loop, and shutdown (mproc/cluster.h, cluster/cluster.h). */
#include "cluster/cluster.h"
#include "base/log.h"
#include "platform/platform.h"
#include "pool/future.h"

#include <poll.h>

#include <limits.h>
#include <linux/limits.h>
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

/* A serving rank's messages: received into rx, answered from tx[0] and
 * tx[1] in turn, all kept from one task to the next (buf.c: a map chunk's
 * bytes would otherwise cost a page fault a page, in and out). An answer
 * is sent without waiting for the root to take it, so the rank goes on
 * with its next task meanwhile; its buffer is reused two answers later,
 * once that send is over. */
static cl_kbuf rx, tx[2];
/* The next task is received into rxp by a receive posted before it comes
 * (wire.c): MPI matches it straight into that buffer, where a probe and a
 * receive would take it from MPI's queue of unexpected messages, in two
 * calls (together a third of a microsecond on a round trip of one). */
static cl_kbuf rxp;
static MPI_Request rx_req = MPI_REQUEST_NULL;
static int32_t self_pid; /* in each answer */
static MPI_Request tx_req[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
static int tx_cur;

/* The buffer for the next answer, n bytes at least (NULL: no memory). */
static char *tx_get(size_t n)
{
    MPI_Wait(&tx_req[tx_cur], MPI_STATUS_IGNORE);
    return mproc__cluster_kbuf(&tx[tx_cur], n);
}

/* Sends the answer whose header is h and whose bytes were written into
 * the buffer tx_get gave, at sizeof *h + h->msglen (h->len of them). */
static void send_tx(MPI_Comm comm, const cl_result_hdr *h)
{
    char *p = tx[tx_cur].p;
    memcpy(p, h, sizeof *h);
    mproc__cluster_isend(p, sizeof *h + h->msglen + h->len, 0, CL_TAG_RESULT, comm,
                         &tx_req[tx_cur]);
    tx_cur ^= 1;
}

/* At STOP: the answers' sends are over (the root took every answer before
 * it said stop), and the buffers freed. */
static void tx_end(void)
{
    for (int i = 0; i < 2; i++) MPI_Wait(&tx_req[i], MPI_STATUS_IGNORE);
    mproc__cluster_kbuf_free(&tx[0]);
    mproc__cluster_kbuf_free(&tx[1]);
    mproc__cluster_kbuf_free(&rx);
    mproc__cluster_kbuf_free(&rxp);
}

/* The header of an answer to task id: rc, with a message of msglen bytes
 * (cut to 64 KiB) or len result bytes. */
static cl_result_hdr result_hdr(uint64_t id, int rc, const char *msg, size_t len)
{
    size_t msglen = rc && msg ? strlen(msg) : 0;
    if (msglen > 65536) msglen = 65536;
    return (cl_result_hdr){
        .id = id, .rc = rc, .pid = self_pid, .msglen = (uint32_t)msglen, .len = rc ? 0 : len};
}

static void send_result(MPI_Comm comm, uint64_t id, int rc, const char *msg, const void *res,
                        size_t len)
{
    if (rc == 0 && len > (size_t)INT_MAX - sizeof(cl_result_hdr)) {
        rc = MPROC_EMSGSIZE;
        msg = "the task's result is too large for one MPI message";
    }
    cl_result_hdr h = result_hdr(id, rc, msg, len);
    if (sizeof h + h.msglen + h.len <= CL_EAGER_BYTES) { /* sent at once: no buffer kept */
        char b[CL_EAGER_BYTES];
        memcpy(b, &h, sizeof h);
        if (h.msglen) memcpy(b + sizeof h, msg, h.msglen);
        if (h.len) memcpy(b + sizeof h + h.msglen, res, h.len);
        MPI_Send(b, (int)(sizeof h + h.msglen + h.len), MPI_BYTE, 0, CL_TAG_RESULT, comm);
        return;
    }
    char *p = tx_get(sizeof h + h.msglen + h.len);
    if (!p) { /* answer anyway, without the bytes */
        h = (cl_result_hdr){.id = id, .rc = MPROC_ENOMEM, .pid = self_pid};
        MPI_Send(&h, (int)sizeof h, MPI_BYTE, 0, CL_TAG_RESULT, comm);
        return;
    }
    if (h.msglen) memcpy(p + sizeof h, msg, h.msglen);
    if (h.len) memcpy(p + sizeof h + h.msglen, res, h.len);
    send_tx(comm, &h);
}

/* A map chunk, its outputs written straight into the answer's buffer. */
static void run_map(MPI_Comm comm, const cl_task_hdr *h, void *fn, const char *payload)
{
    size_t olen = (size_t)(h->count * h->out_size);
    if (olen > (size_t)INT_MAX - sizeof(cl_result_hdr)) {
        send_result(comm, h->id, MPROC_EMSGSIZE,
                    "the task's result is too large for one MPI message", NULL, 0);
        return;
    }
    char *msg = NULL, *p = tx_get(sizeof(cl_result_hdr) + olen);
    int rc = MPROC_ENOMEM;
    if (p)
        rc = mproc__task_run_map(fn, h->call, payload, p + sizeof(cl_result_hdr), (size_t)h->count,
                                 (size_t)h->in_size, (size_t)h->out_size, &msg);
    if (rc == 0) {
        cl_result_hdr rh = result_hdr(h->id, 0, NULL, olen);
        send_tx(comm, &rh);
    } else {
        send_result(comm, h->id, rc, msg, NULL, 0);
    }
    free(msg);
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
             h.count * h.in_size == plen && h.call <= MPROC_MAP_F64_F64 &&
             (h.call == MPROC_MAP_BYTES || (h.in_size == 8 && h.out_size == 8));
    if (ok && h.kind == CL_DROP) {
        mproc__cluster_rank_drop(h.setup);
        return;
    }
    if (ok && h.kind == CL_SETUP) { /* its initializer: none when off is 0 */
        void *init = h.off || h.pathlen ? mproc__cluster_fn_resolve(path, h.pathlen, h.off) : NULL;
        mproc__cluster_rank_setup(&h, init, payload, plen);
        return;
    }
    if (!ok || h.timeout_ms < 0 || (h.kind != CL_APPLY && h.kind != CL_MAP && h.kind != CL_VALUE)) {
        send_result(comm, h.id, MPROC_EPROTO, "a malformed task message", NULL, 0);
        return;
    }
    void *fn = mproc__cluster_fn_resolve(path, h.pathlen, h.off);
    if (!fn) {
        send_result(comm, h.id, MPROC_EINVAL, "the task's function cannot be found on this rank",
                    NULL, 0);
        return;
    }
    if (h.local || h.timeout_ms) { /* in a local pool (rank.c) */
        mproc__cluster_rank_submit(comm, &h, fn, payload, plen);
        return;
    }
    if (h.kind == CL_MAP) {
        run_map(comm, &h, fn, payload);
        return;
    }
    char *msg = NULL;
    mproc_result res;
    int rc = h.kind == CL_APPLY
                 ? mproc__task_run((mproc_task_fn)fn, payload, plen, &res, &msg)
                 : mproc__value_task_run((mproc_value_task_fn)fn, payload, plen, &res, &msg);
    send_result(comm, h.id, rc, msg, res.buf, res.len);
    free(res.buf);
    free(msg);
}

void mproc__cluster_send_result(MPI_Comm comm, uint64_t id, int rc, const char *msg,
                                const void *res, size_t len)
{
    send_result(comm, id, rc, msg, res, len);
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
/* Before that, for IDLE_POLLS polls after the last message, the rank
 * polls without yielding the CPU or reading the clock (a system call on
 * some virtual machines): tens of microseconds. */
#define IDLE_POLLS 2048
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

/* The root's process, when it runs on this host (a pidfd, or -1): a
 * serving rank whose root is gone exits (a launcher that does not end the
 * job when rank 0 dies, or spawn mode's workers after their parent). */
static int root_pidfd = -1;
/* The heartbeat (beat.c) agreed on by check_ranks, for serve or root_start. */
static MPI_Comm beat_comm = MPI_COMM_NULL;
static int beat_ms;

static bool root_gone(void)
{
    if (root_pidfd < 0) return false;
    struct pollfd p = {.fd = root_pidfd, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

/* Runs the root's tasks until it says stop (then frees comm and returns
 * whether MPI can still be finalized: not after a rank's death), or until
 * the root's process is gone (then _exit(1): MPI cannot end cleanly
 * without it). */
static bool serve(MPI_Comm comm)
{
    bool can_finalize = true;
    unsigned idle = 0, polls = 0;
    self_pid = (int32_t)getpid();
    struct timespec last;
    clock_gettime(CLOCK_MONOTONIC, &last);
    long long idle_since = 0;
    mproc__cluster_beat_rank_start(beat_comm, beat_ms);
    beat_comm = MPI_COMM_NULL;
    for (;;) {
        MPI_Status st;
        bool answered = mproc__cluster_rank_poll(comm); /* local pools' tasks */
        bool flag = mproc__cluster_posted(comm, 0, CL_TAG_TASK, &rxp, &rx_req, &st);
        if (!flag && !answered && polls < IDLE_POLLS) {
            polls++; /* a stream of tasks: the next is taken within a microsecond */
            continue;
        }
        if (!flag) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if ((now.tv_sec - last.tv_sec) * 1000000000L + (now.tv_nsec - last.tv_nsec) >
                CL_WATCH_NS) {
                last = now;
                if (root_gone()) {
                    fprintf(stderr, "mproc cluster: the root (rank 0) is gone: rank exits\n");
                    _exit(1);
                }
            }
            if (answered)
                idle = polls = 0;
            else
                idle_wait(&idle, &idle_since);
            continue;
        }
        idle = polls = 0;
        size_t n = 0;
        const char *m = mproc__cluster_taken(comm, &st, &rxp, &rx, &n);
        if (n == 1) { /* STOP */
            can_finalize = m[0] != 1;
            break;
        }
        run_task(comm, m, n);
    }
    tx_end();
    mproc__cluster_rank_stop();
    mproc__cluster_beat_rank_stop();
    MPI_Comm_free(&comm);
    if (root_pidfd >= 0) close(root_pidfd);
    root_pidfd = -1;
    return can_finalize;
}

/* ---- start-up -------------------------------------------------------------------- */

enum { M_WORLD, M_SPAWN, M_COMM };

static int mode;
static MPI_Comm inter = MPI_COMM_NULL; /* spawn mode: the program and its workers */
static bool atexit_set;
static bool root_here; /* this process is the root of the active cluster */

static void at_exit(void)
{
    (void)mproc_cluster_shutdown();
}

typedef struct rank_id {
    uint64_t program;
    uint64_t host;
    int32_t pid;
    int32_t pad;
} rank_id;

static uint64_t host_id(void)
{
    char name[MPI_MAX_PROCESSOR_NAME + 1] = "";
    int len = 0;
    if (MPI_Get_processor_name(name, &len) != MPI_SUCCESS || len <= 0) return 0;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int i = 0; i < len; i++) h = (h ^ (unsigned char)name[i]) * 0x100000001b3ULL;
    return h;
}

/* Checks the ranks of comm (rank 0 is the root): the thread level
 * (provided, this rank's), and that every rank runs the root's program.
 * On the root, *pids gets every rank's pid and *pidfds a pidfd of each
 * rank on this host, -1 for the others (both malloc'd); on the others,
 * root_pidfd watches the root when it runs on this host (no pidfd at all
 * with MPROC_CLUSTER_PIDFD_WATCH=0). On success the heartbeat is agreed on
 * (beat_comm, beat_ms). On error comm is freed, and *own_fault says
 * whether this rank is the one at fault. */
static int check_ranks(MPI_Comm comm, int provided, int32_t **pids, int **pidfds, bool *own_fault)
{
    int rank = 0, size = 0;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    rank_id me = {
        .program = mproc__cluster_program_id(), .host = host_id(), .pid = (int32_t)getpid()};
    rank_id *all = malloc((size_t)size * sizeof *all);
    *pids = malloc((size_t)size * sizeof **pids);
    if (!all || !*pids) mproc__panic("cluster: out of memory at start-up");
    /* Every rank learns every rank's program, host and pid, and whether
     * all of them have the threads the root needs. */
    MPI_Allgather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE, comm);
    int threads_ok = provided >= MPI_THREAD_SERIALIZED, all_threads_ok = 0;
    MPI_Allreduce(&threads_ok, &all_threads_ok, 1, MPI_INT, MPI_MIN, comm);
    int rc = 0;
    *own_fault = false;
    if (!all_threads_ok) {
        if (rank == 0)
            mproc_log(MPROC_LOG_ERROR,
                      "cluster: the MPI library gives thread level %d, below "
                      "MPI_THREAD_SERIALIZED: the cluster needs a thread of its own on rank 0",
                      provided);
        rc = MPROC_ENOTSUP;
        *own_fault = !threads_ok;
    }
    char ranks[256] = "";
    size_t used = 0;
    int differ = 0;
    for (int r = 0; r < size; r++) {
        (*pids)[r] = all[r].pid;
        if (r == 0 || (all[r].program == all[0].program && all[r].program != 0)) continue;
        if (differ++ < 16 && used < sizeof ranks - 16)
            used +=
                (size_t)snprintf(ranks + used, sizeof ranks - used, "%s%d", used ? ", " : "", r);
    }
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
        *own_fault = rank != 0 && all[rank].program != all[0].program;
    }
    if (!rc) beat_ms = mproc__cluster_beat_setup(comm, provided, &beat_comm);
    bool watch = mproc__cluster_pidfd_watch();
    if (!rc && watch && rank != 0 && all[0].host == me.host && me.host != 0) {
        int fd = mproc__pidfd_open((pid_t)all[0].pid);
        root_pidfd = fd >= 0 ? fd : -1;
    }
    *pidfds = NULL;
    if (!rc && rank == 0) {
        if (!(*pidfds = malloc((size_t)size * sizeof **pidfds)))
            mproc__panic("cluster: out of memory at start-up");
        for (int r = 0; r < size; r++) {
            int fd = watch && r > 0 && all[r].host == me.host && me.host != 0
                         ? mproc__pidfd_open((pid_t)all[r].pid)
                         : -1;
            (*pidfds)[r] = fd >= 0 ? fd : -1;
        }
    }
    free(all);
    if (rc) {
        free(*pids);
        *pids = NULL;
        MPI_Comm_free(&comm);
    }
    return rc;
}

/* With state_mu held, on the root, after check_ranks: starts the root's
 * thread over comm. On error the ranks are told to stop and comm freed. */
static int root_start(MPI_Comm comm, int32_t *pids, int *pidfds)
{
    int size = 0;
    MPI_Comm_size(comm, &size);
    mproc__cluster_root_heartbeat(beat_comm, beat_ms);
    beat_comm = MPI_COMM_NULL;
    int rc = mproc__cluster_root_start(comm, size, pids, pidfds);
    free(pids);
    if (rc) {
        for (int r = 0; pidfds && r < size; r++)
            if (pidfds[r] >= 0) close(pidfds[r]);
        free(pidfds);
        /* The ranks wait for tasks: tell them to stop. */
        static const char stop = 0;
        for (int r = 1; r < size; r++) MPI_Send(&stop, 1, MPI_BYTE, r, CL_TAG_TASK, comm);
        MPI_Comm_free(&comm);
        return rc;
    }
    state = C_ACTIVE;
    root_here = true;
    if (!atexit_set) atexit(at_exit);
    atexit_set = true;
    return 0;
}

/* With state_mu held: MPI initialized (unless the program did) with the
 * thread level *provided. */
static int mpi_up(int *argc, char ***argv, int *provided)
{
    int inited = 0, fin = 0;
    MPI_Finalized(&fin);
    if (fin) return MPROC_EBADSTATE;
    MPI_Initialized(&inited);
    if (inited) {
        MPI_Query_thread(provided);
        return 0;
    }
    if (MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, provided) != MPI_SUCCESS) return MPROC_EIO;
    own_mpi = true;
    return 0;
}

/* A process that MPI_Comm_spawn started (spawn mode's workers): it
 * serves its parent, then disconnects and exits. Called with state_mu
 * held. */
static MPROC__NORETURN void spawned_worker(MPI_Comm parent, int provided)
{
    MPI_Comm comm = MPI_COMM_NULL;
    int rc = MPI_Intercomm_merge(parent, 1, &comm) == MPI_SUCCESS ? 0 : MPROC_EIO;
    int32_t *pids = NULL;
    int *pidfds = NULL;
    bool own_fault = true;
    if (!rc) rc = check_ranks(comm, provided, &pids, &pidfds, &own_fault);
    free(pids);
    if (!rc) {
        mode = M_SPAWN;
        state = C_ACTIVE;
        MPROC__UNLOCK(&state_mu);
        bool fin = serve(comm);
        if (!fin) _exit(0); /* a rank died: disconnect and finalize would wait for it */
        MPROC__LOCK(&state_mu);
    }
    state = C_DOWN;
    MPROC__UNLOCK(&state_mu);
    MPI_Comm_disconnect(&parent);
    if (own_mpi) MPI_Finalize();
    exit(rc && own_fault ? 1 : 0);
}

/* The start of world and spawn mode: with state_mu taken (held on 0),
 * no cluster yet, MPI up (*provided: its thread level); a process that
 * MPI_Comm_spawn started serves its parent here and never returns. */
static int begin(int *argc, char ***argv, int *provided)
{
    MPROC__LOCK(&state_mu);
    int rc = state != C_NONE ? MPROC_EBADSTATE : mpi_up(argc, argv, provided);
    if (rc) {
        MPROC__UNLOCK(&state_mu);
        return rc;
    }
    MPI_Comm parent = MPI_COMM_NULL;
    MPI_Comm_get_parent(&parent);
    if (parent != MPI_COMM_NULL) spawned_worker(parent, *provided);
    return 0;
}

int mproc_cluster_init(int *argc, char ***argv)
{
    int provided = 0;
    int rc = begin(argc, argv, &provided);
    if (rc) return rc;
    int rank = 0;
    MPI_Comm comm = MPI_COMM_NULL;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    int32_t *pids = NULL;
    int *pidfds = NULL;
    bool own_fault = false;
    rc = MPI_Comm_dup(MPI_COMM_WORLD, &comm) == MPI_SUCCESS ? 0 : MPROC_EIO;
    if (!rc) rc = check_ranks(comm, provided, &pids, &pidfds, &own_fault);
    if (!rc && rank != 0) {
        free(pids);
        mode = M_WORLD;
        state = C_ACTIVE;
        MPROC__UNLOCK(&state_mu);
        bool fin = serve(comm);
        MPROC__LOCK(&state_mu);
        state = C_DOWN;
        MPROC__UNLOCK(&state_mu);
        if (!fin) _exit(0); /* a rank died: MPI_Finalize would wait for it */
        if (own_mpi) MPI_Finalize();
        exit(0);
    }
    if (!rc) {
        mode = M_WORLD;
        rc = root_start(comm, pids, pidfds);
    }
    if (rc) {
        if (own_mpi) MPI_Finalize();
        state = C_DOWN;
        MPROC__UNLOCK(&state_mu);
        /* A rank that runs another program fails; the others did nothing
         * wrong. */
        if (rank != 0) exit(own_fault ? 1 : 0);
        return rc;
    }
    MPROC__UNLOCK(&state_mu);
    return 0;
}

int mproc_cluster_spawn(int *argc, char ***argv, int nworkers)
{
    if (nworkers < 1 || nworkers > CL_MAX_SPAWN) {
        mproc_log(MPROC_LOG_ERROR, "cluster: %d workers asked for spawn mode (1 to %d)", nworkers,
                  CL_MAX_SPAWN);
        return MPROC_EINVAL;
    }
    int provided = 0;
    int rc = begin(argc, argv, &provided);
    if (rc) return rc;
    int wsize = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &wsize);
    char exe[PATH_MAX];
    ssize_t elen = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (wsize != 1) {
        mproc_log(MPROC_LOG_ERROR,
                  "cluster: spawn mode runs alone or under mpiexec -n 1 (this "
                  "world has %d ranks): use mproc_cluster_init",
                  wsize);
        rc = MPROC_EINVAL;
    } else if (provided < MPI_THREAD_SERIALIZED) {
        mproc_log(MPROC_LOG_ERROR,
                  "cluster: the MPI library gives thread level %d, below "
                  "MPI_THREAD_SERIALIZED",
                  provided);
        rc = MPROC_ENOTSUP;
    } else if (elen <= 0) {
        rc = MPROC_EIO;
    }
    char **args = NULL;
    int *errs = NULL;
    if (!rc) {
        exe[elen] = '\0';
        int n = argc && argv && *argv && *argc > 1 ? *argc - 1 : 0;
        args = calloc((size_t)n + 1, sizeof *args);
        errs = calloc((size_t)nworkers, sizeof *errs);
        if (!args || !errs) rc = MPROC_ENOMEM;
        for (int i = 0; !rc && i < n; i++) args[i] = (*argv)[i + 1];
    }
    MPI_Comm merged = MPI_COMM_NULL;
    if (!rc) {
        MPI_Errhandler old;
        MPI_Comm_get_errhandler(MPI_COMM_SELF, &old);
        MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN);
        int mrc =
            MPI_Comm_spawn(exe, args, nworkers, MPI_INFO_NULL, 0, MPI_COMM_SELF, &inter, errs);
        MPI_Comm_set_errhandler(MPI_COMM_SELF, old);
        MPI_Errhandler_free(&old);
        if (mrc != MPI_SUCCESS) {
            char why[MPI_MAX_ERROR_STRING] = "";
            int wl = 0;
            MPI_Error_string(mrc, why, &wl);
            mproc_log(MPROC_LOG_ERROR, "cluster: MPI_Comm_spawn of %d workers (%s): %s", nworkers,
                      exe, why);
            rc = MPROC_EIO;
            inter = MPI_COMM_NULL;
        } else if (MPI_Intercomm_merge(inter, 0, &merged) != MPI_SUCCESS) {
            rc = MPROC_EIO;
        }
    }
    free(args);
    free(errs);
    int32_t *pids = NULL;
    int *pidfds = NULL;
    bool own_fault = false;
    if (!rc) rc = check_ranks(merged, provided, &pids, &pidfds, &own_fault);
    if (!rc) {
        mode = M_SPAWN;
        rc = root_start(merged, pids, pidfds);
    }
    if (rc) {
        if (inter != MPI_COMM_NULL) MPI_Comm_disconnect(&inter);
        inter = MPI_COMM_NULL;
        if (own_mpi) MPI_Finalize();
        state = C_DOWN;
    }
    MPROC__UNLOCK(&state_mu);
    return rc;
}

int mproc_cluster_init_comm(const void *comm, int root, bool *is_root)
{
    if (!comm || !is_root) return MPROC_EINVAL;
    *is_root = false;
    int inited = 0, fin = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&fin);
    if (!inited || fin) {
        mproc_log(MPROC_LOG_ERROR, "cluster: communicator mode needs MPI initialized by the "
                                   "program (and not finalized)");
        return MPROC_EBADSTATE;
    }
    MPI_Comm user = *(const MPI_Comm *)comm;
    int inter_flag = 0, size = 0, rank = 0;
    if (user == MPI_COMM_NULL || MPI_Comm_test_inter(user, &inter_flag) != MPI_SUCCESS ||
        inter_flag)
        return MPROC_EINVAL;
    MPI_Comm_size(user, &size);
    MPI_Comm_rank(user, &rank);
    if (root < 0 || root >= size) return MPROC_EINVAL;
    MPROC__LOCK(&state_mu);
    if (state != C_NONE) {
        MPROC__UNLOCK(&state_mu);
        return MPROC_EBADSTATE;
    }
    int provided = 0;
    MPI_Query_thread(&provided);
    /* The cluster's own communicator: the root first, the others in order. */
    MPI_Comm mine = MPI_COMM_NULL;
    int rc = MPI_Comm_split(user, 0, rank == root ? 0 : 1, &mine) == MPI_SUCCESS ? 0 : MPROC_EIO;
    int32_t *pids = NULL;
    int *pidfds = NULL;
    bool own_fault = false;
    if (!rc) rc = check_ranks(mine, provided, &pids, &pidfds, &own_fault);
    if (!rc && rank != root) {
        free(pids);
        mode = M_COMM;
        state = C_ACTIVE;
        MPROC__UNLOCK(&state_mu);
        serve(mine);
        MPROC__LOCK(&state_mu);
        state = C_NONE;
        MPROC__UNLOCK(&state_mu);
        return 0;
    }
    if (!rc) {
        mode = M_COMM;
        rc = root_start(mine, pids, pidfds);
        *is_root = rc == 0;
    }
    MPROC__UNLOCK(&state_mu);
    return rc;
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
    /* A rank is started by the launcher and cannot be replaced without
     * ending the MPI job: no start method to choose, no worker to retire. */
    if (o.maxtasksperchild || o.context) {
        mproc_log(MPROC_LOG_ERROR,
                  "cluster: %s does not apply to MPI ranks (the launcher starts "
                  "them; one cannot be replaced without ending the job)",
                  o.context ? "a context" : "maxtasksperchild");
        return MPROC_ENOTSUP;
    }
    /* The ranks-only layout of the cluster's own options (exec.c). */
    mproc_cluster_pool_opts co = {.ranks = o.processes,
                                  .task_timeout_ms = o.task_timeout_ms,
                                  .initializer = o.initializer,
                                  .initargs = o.initargs,
                                  .initargs_len = o.initargs_len};
    return mproc_cluster_pool_new_opts(out, &co);
}

int mproc_cluster_shutdown(void)
{
    MPROC__LOCK(&state_mu);
    if (state != C_ACTIVE || !root_here) {
        MPROC__UNLOCK(&state_mu);
        return MPROC_EBADSTATE;
    }
    int fin = 0;
    MPI_Finalized(&fin);
    if (fin) { /* the program finalized MPI under the cluster: nothing can be sent */
        mproc_log(MPROC_LOG_ERROR, "cluster: MPI was finalized before mproc_cluster_shutdown");
        state = C_DOWN;
        root_here = false;
        MPROC__UNLOCK(&state_mu);
        return MPROC_EBADSTATE;
    }
    root_here = false;
    int ndead = mproc__cluster_root_stop();
    /* After a rank's death, disconnect and MPI_Finalize would wait for it
     * for ever: MPI is left as it is (the process may exit; the launcher
     * may call the job failed). */
    if (ndead)
        mproc_log(MPROC_LOG_WARNING,
                  "cluster: %d rank(s) died: MPI is not finalized (it would wait for them)", ndead);
    if (inter != MPI_COMM_NULL && !ndead) MPI_Comm_disconnect(&inter);
    inter = MPI_COMM_NULL;
    /* Communicator mode leaves MPI to the program, and may start again. */
    state = mode == M_COMM ? C_NONE : C_DOWN;
    if (own_mpi && mode != M_COMM && !ndead) MPI_Finalize();
    MPROC__UNLOCK(&state_mu);
    return 0;
}
