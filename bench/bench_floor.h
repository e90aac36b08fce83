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

/* The rows of bench_floor_sync.c: mutexes, futexes, malloc. */
extern const bench_table bench_floor_sync;

#endif
