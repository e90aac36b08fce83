/* bench_cluster_floor: the floor of cluster.apply.rtt, a raw MPI ping-pong
 * between two ranks on this machine, with the same MPI as the cluster
 * layer: rank 0 sends 64 bytes (about a task message's size) and waits for
 * 64 bytes back, with blocking MPI_Send and MPI_Recv; rank 1 echoes.
 * run.py asks the launcher to bind each rank to a core of its own (MPICH:
 * -bind-to core), as the other rows' floors run their two processes on
 * two CPUs: unbound, the busy-polling ranks now and then share a CPU and
 * take turns by time slices, milliseconds a trip (sched_setaffinity in
 * the program did not avoid it here; the launcher's binding did).
 * Usage: mpiexec -n 2 bench_cluster_floor ROW; rank 0 prints the figure. */
#include "bench_util.h"

#include <mpi.h>
#include <stdio.h>

enum { TAG_PING = 1, TAG_STOP = 2, MSG = 64 };

static int pingpong(long n, double *secs)
{
    char buf[MSG] = {0};
    double t0 = 0;
    for (long i = -1; i < n; i++) { /* i == -1: warm-up trip */
        if (i == 0) t0 = bench_now();
        if (MPI_Send(buf, MSG, MPI_BYTE, 1, TAG_PING, MPI_COMM_WORLD) != MPI_SUCCESS ||
            MPI_Recv(buf, MSG, MPI_BYTE, 1, TAG_PING, MPI_COMM_WORLD, MPI_STATUS_IGNORE) !=
                MPI_SUCCESS) {
            fprintf(stderr, "pingpong: an MPI call failed\n");
            return -1;
        }
    }
    *secs = bench_now() - t0;
    return 0;
}

static const bench_row rows[] = {
    {"cluster.apply.rtt", pingpong, BENCH_US, 0},
};

int main(int argc, char **argv)
{
    int rank = 0, size = 0;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (rank != 0) { /* echo until told to stop */
        char buf[MSG];
        MPI_Status st;
        for (;;) {
            MPI_Recv(buf, MSG, MPI_BYTE, 0, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
            if (st.MPI_TAG == TAG_STOP) break;
            MPI_Send(buf, MSG, MPI_BYTE, 0, TAG_PING, MPI_COMM_WORLD);
        }
        MPI_Finalize();
        return 0;
    }
    int status = 1;
    if (size != 2)
        fprintf(stderr, "bench_cluster_floor: run with mpiexec -n 2 (got %d ranks)\n", size);
    else
        status = bench_main(argc, argv, (const bench_table[]){BENCH_TABLE(rows)}, 1);
    for (int r = 1; r < size; r++) MPI_Send(NULL, 0, MPI_BYTE, r, TAG_STOP, MPI_COMM_WORLD);
    MPI_Finalize();
    return status;
}
