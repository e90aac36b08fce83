/* The heartbeat between the root and the serving ranks (cluster/cluster.h).
 *
 * A rank's process may be gone on another host than the root's (no pidfd
 * can watch it there) or be frozen without dying (SIGSTOP, a hung node):
 * MPI says nothing of either, and the tasks it holds would wait for ever.
 * So, when the timeout T (MPROC_CLUSTER_HEARTBEAT_MS) is not 0, the root
 * and every serving rank send each other a one-byte message every T/5 ms
 * on a duplicate communicator of their own, and each side takes the other
 * for dead after T ms of silence: the root's thread fails the rank's tasks
 * (root.c), a serving rank exits (here).
 *
 * On a serving rank a thread of its own sends and receives the beats, so
 * that a task that runs longer than T (in the rank's own thread) is not
 * taken for a death. That thread makes MPI calls while the rank's thread
 * makes others: it needs MPI_THREAD_MULTIPLE on every rank, and without it
 * the heartbeat is off (a warning on the root) and only the pidfd watch
 * remains. */
#include "base/log.h"
#include "base/settings.h"
#include "cluster/cluster.h"
#include "sync/thread_cond.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BEAT_DEFAULT_MS 10000

/* The root's setting: T in ms, 0 for none. */
static int beat_setting(void)
{
    const char *v = mproc__setting(MPROC__SET_CLUSTER_BEAT);
    char *end = NULL;
    errno = 0;
    long ms = strtol(v, &end, 10);
    if (errno || end == v || *end || ms < 0 || ms > 24L * 3600 * 1000) {
        mproc_log(MPROC_LOG_WARNING,
                  "cluster: %s=%s is not a number of ms (0 to 86400000): %d used",
                  mproc__setting_name(MPROC__SET_CLUSTER_BEAT), v, BEAT_DEFAULT_MS);
        return BEAT_DEFAULT_MS;
    }
    return (int)ms;
}

bool mproc__cluster_pidfd_watch(void)
{
    return strcmp(mproc__setting(MPROC__SET_CLUSTER_PIDFD), "0") != 0;
}

int mproc__cluster_beat_setup(MPI_Comm comm, int provided, MPI_Comm *hb)
{
    int rank = 0, multi = provided >= MPI_THREAD_MULTIPLE, all_multi = 0;
    MPI_Comm_rank(comm, &rank);
    int ms = rank == 0 ? beat_setting() : 0;
    MPI_Bcast(&ms, 1, MPI_INT, 0, comm);
    MPI_Allreduce(&multi, &all_multi, 1, MPI_INT, MPI_MIN, comm);
    *hb = MPI_COMM_NULL;
    if (ms > 0 && !all_multi) {
        if (rank == 0)
            mproc_log(MPROC_LOG_WARNING,
                      "cluster: a rank's MPI library gives less than MPI_THREAD_MULTIPLE: no "
                      "heartbeat (a rank that dies on another host, or freezes, is not detected)");
        ms = 0;
    }
    if (ms > 0 && MPI_Comm_dup(comm, hb) != MPI_SUCCESS) { /* collective: fails everywhere */
        *hb = MPI_COMM_NULL;
        ms = 0;
    }
    return ms;
}

/* ---- a serving rank's side ----------------------------------------------------- */

static pthread_mutex_t bmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bcv;
static bool quit, started;
static pthread_t bthr;
static MPI_Comm bcomm = MPI_COMM_NULL;
static int bms;

static void *rank_beat(void *arg)
{
    (void)arg;
    static const char beat = 0; /* MPI may read it after the request is freed */
    long long t_ns = (long long)bms * 1000000LL, period = t_ns / 5 > 0 ? t_ns / 5 : 1;
    long long last = mproc_now_ns();
    MPROC__LOCK(&bmu);
    while (!quit) {
        MPROC__UNLOCK(&bmu);
        MPI_Request rq;
        MPI_Isend(&beat, 1, MPI_BYTE, 0, CL_TAG_BEAT, bcomm, &rq);
        MPI_Request_free(&rq);
        for (;;) { /* the root's beats */
            int flag = 0;
            char b;
            MPI_Iprobe(0, CL_TAG_BEAT, bcomm, &flag, MPI_STATUS_IGNORE);
            if (!flag) break;
            MPI_Recv(&b, 1, MPI_BYTE, 0, CL_TAG_BEAT, bcomm, MPI_STATUS_IGNORE);
            last = mproc_now_ns();
        }
        long long now = mproc_now_ns();
        if (now - last > t_ns) {
            fprintf(stderr,
                    "mproc cluster: no heartbeat from the root (rank 0) for %lld ms: rank exits\n",
                    (now - last) / 1000000LL);
            _exit(1); /* MPI cannot end cleanly without the root */
        }
        mproc__deadline dl = {.at_ns = now + period, .forever = false};
        MPROC__LOCK(&bmu);
        while (!quit && mproc__thread_cond_wait(&bcv, &bmu, &dl) == 0) {
        }
    }
    MPROC__UNLOCK(&bmu);
    return NULL;
}

void mproc__cluster_beat_rank_start(MPI_Comm hb, int ms)
{
    static bool cond;
    if (!cond) {
        mproc__thread_cond_init(&bcv);
        cond = true;
    }
    bcomm = hb;
    bms = ms;
    if (ms <= 0 || hb == MPI_COMM_NULL) return;
    quit = false;
    if (pthread_create(&bthr, NULL, rank_beat, NULL) != 0) {
        /* The root will take this rank for dead after T: say why. */
        mproc_log(MPROC_LOG_ERROR, "cluster: a rank cannot start its heartbeat thread");
        return;
    }
    started = true;
}

void mproc__cluster_beat_close(MPI_Comm hb, const int *peers, int n, int ms)
{
    static const char end = 0;
    if (hb == MPI_COMM_NULL || n <= 0) return;
    bool *done = calloc((size_t)n, sizeof *done);
    for (int i = 0; i < n; i++) MPI_Send(&end, 1, MPI_BYTE, peers[i], CL_TAG_BEAT_END, hb);
    long long stop = mproc_now_ns() + (ms > 2000 ? ms : 2000) * 1000000LL;
    int left = done ? n : 0;
    while (left > 0 && mproc_now_ns() < stop) {
        int flag = 0;
        MPI_Status st;
        char b;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, hb, &flag, &st);
        if (!flag) {
            usleep(100);
            continue;
        }
        MPI_Recv(&b, 1, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, hb, MPI_STATUS_IGNORE);
        if (st.MPI_TAG != CL_TAG_BEAT_END) continue;
        for (int i = 0; i < n; i++)
            if (peers[i] == st.MPI_SOURCE && !done[i]) {
                done[i] = true;
                left--;
            }
    }
    free(done);
}

void mproc__cluster_beat_rank_stop(void)
{
    if (started) {
        MPROC__LOCK(&bmu);
        quit = true;
        pthread_cond_broadcast(&bcv);
        MPROC__UNLOCK(&bmu);
        pthread_join(bthr, NULL);
        started = false;
        static const int root = 0;
        mproc__cluster_beat_close(bcomm, &root, 1, 2 * bms);
    }
    if (bcomm != MPI_COMM_NULL) MPI_Comm_free(&bcomm);
    bcomm = MPI_COMM_NULL;
}
