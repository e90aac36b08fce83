/* Shared harness of bench_mproc and bench_floor: timing, repetitions, row
 * lookup. A binary declares its rows and calls bench_main; the chosen row's
 * figure is printed alone on stdout. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>

/* Runs n operations and stores the elapsed seconds in *secs (only the timed
 * part: set-up such as starting a child may be left out). Returns 0, or -1
 * after printing the reason on stderr. */
typedef int (*bench_fn)(long n, double *secs);

/* How the best seconds-per-operation is turned into the row's figure. */
typedef enum bench_unit {
    BENCH_MS,      /* milliseconds per op */
    BENCH_US,      /* microseconds per op */
    BENCH_NS,      /* nanoseconds per op */
    BENCH_PER_S,   /* ops per second */
    BENCH_MB_PER_S /* bytes per op / 1e6 per second */
} bench_unit;

typedef struct bench_row {
    const char *name;
    bench_fn fn; /* NULL: not supported, the row yields no figure */
    bench_unit unit;
    size_t bytes; /* bytes per op, for BENCH_MB_PER_S */
} bench_row;

/* Monotonic clock in seconds. */
double bench_now(void);

/* True when BENCH_QUICK is set to something other than "" or "0". */
bool bench_quick(void);

/* Looks up argv[1] in rows, warms up, calibrates the op count so that one
 * repetition lasts a fixed time, takes the best of a few repetitions and
 * prints the figure. Returns the exit status: 0, 1 (failure) or 2 (usage,
 * unknown or unsupported row). */
int bench_main(int argc, char **argv, const bench_row *rows, size_t nrows);

/* write/read exactly len bytes, retrying on EINTR and short transfers.
 * 0 on success, -1 on error or end of file. */
int bench_write_full(int fd, const void *buf, size_t len);
int bench_read_full(int fd, void *buf, size_t len);

#endif
