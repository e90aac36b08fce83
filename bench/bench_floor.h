/* Shared by the bench_floor source files: one file per layer, each with its
 * table of rows; bench_floor.c holds main and the helpers. */
#ifndef BENCH_FLOOR_H
#define BENCH_FLOOR_H

#include "bench_util.h"

#include <stdio.h>
#include <sys/types.h>

/* Returns -1 from the calling function, after perror(what), unless cond. */
#define CHECK(cond, what)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            perror(what);                                                                          \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

/* Waits for pid; 0 if it exited with status 0. */
int reap(pid_t pid);

/* A zeroed MAP_SHARED anonymous mapping (shared with forked children), or
 * NULL. */
void *shared_map(size_t size);

/* Row functions shared between the files (see bench_util.h, bench_fn). */
/* A forked child writes n messages of size bytes into a pipe, the parent
 * reads them (bench_floor.c); with pin, the two run on different CPUs
 * (bench_pin_apart). */
int pipe_throughput(long n, double *secs, size_t size, bool pin);
/* Round trips over two futex words between two processes on different
 * CPUs (bench_floor_sync.c). */
int futex_pingpong(long n, double *secs);

/* The rows of bench_floor_sync.c: mutexes, futexes, malloc. */
extern const bench_table bench_floor_sync;
/* The rows of bench_floor_queue.c: a bare shared-memory ring, memcpy. */
extern const bench_table bench_floor_queue;
/* The peers of the queue rows (bench_floor_peers.c): pipes, POSIX message
 * queues, ZeroMQ. */
extern const bench_table bench_floor_peers;
/* The rows of bench_floor_pool.c: memcpy, a parallel prime check (OpenMP,
 * or two threads) and its sequential peer. */
extern const bench_table bench_floor_pool;
/* The rows of bench_floor_manager.c: a TCP ping-pong. */
extern const bench_table bench_floor_manager;

#endif
