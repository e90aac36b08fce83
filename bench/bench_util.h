/* Shared harness of bench_mproc and bench_floor: timing, repetitions, row
 * lookup. A binary declares its rows (in one table per source file) and
 * calls bench_main; the chosen row's figure is printed alone on stdout. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* Runs n operations and stores the elapsed seconds in *secs (only the timed
 * part: set-up such as starting a child may be left out). Returns 0, -1
 * after printing the reason on stderr, or BENCH_UNSUPPORTED after printing
 * why the row cannot be measured here (the row then yields no figure, as a
 * row without a function). */
typedef int (*bench_fn)(long n, double *secs);
#define BENCH_UNSUPPORTED 2

/* How the best seconds-per-operation is turned into the row's figure. */
typedef enum bench_unit {
    BENCH_S,       /* seconds per op */
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

/* The rows of one source file. */
typedef struct bench_table {
    const bench_row *rows;
    size_t n;
} bench_table;

#define BENCH_TABLE(rows)                                                                          \
    {                                                                                              \
        (rows), sizeof(rows) / sizeof((rows)[0])                                                   \
    }

/* Monotonic clock in seconds (CLOCK_MONOTONIC: comparable across processes). */
double bench_now(void);

/* True when BENCH_QUICK is set to something other than "" or "0". */
bool bench_quick(void);

/* Looks up argv[1] in the tables, warms up, calibrates the op count so that one
 * repetition lasts a fixed time, takes the best of a few repetitions and
 * prints the figure. Returns the exit status: 0, 1 (failure) or 2 (usage,
 * unknown or unsupported row). With two arguments ROW PEER, looks up the
 * row named "ROW PEER" (a peer's figure for a row, see BENCH.md). */
int bench_main(int argc, char **argv, const bench_table *tables, size_t ntables);

/* write/read exactly len bytes, retrying on EINTR and short transfers.
 * 0 on success, -1 on error or end of file. */
int bench_write_full(int fd, const void *buf, size_t len);
int bench_read_full(int fd, void *buf, size_t len);

/* Keeps the compiler from optimising p (and the allocation behind it) away. */
static inline void bench_keep(void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

/* Pins the calling process to the who-th CPU (modulo their number) of the
 * CPUs the benchmark process was allowed at start, if there were at least
 * two; with one (BENCH_CPUS=0) does nothing. Rows with two busy processes
 * call it in each, so that the two always run on different CPUs instead of
 * wherever the scheduler puts them (same CPU or not changes a ping-pong
 * tenfold on some machines). */
void bench_pin_apart(int who);

/* Lets the calling thread run on every CPU allowed at start again (undoes
 * bench_pin_apart), e.g. before creating threads that should not be pinned. */
void bench_unpin(void);

/* A start line for rows with several worker processes, placed in memory the
 * workers share: each worker calls bench_gate_wait, does its work and
 * stores bench_now() in end[its index]; the parent calls bench_gate_open,
 * which waits until `parties` workers are ready, then lets them all go at
 * once and returns the start time. Forking stays off the clock, and no
 * worker gets a head start while the others are still being forked. */
#define BENCH_GATE_MAX 8
typedef struct bench_gate {
    atomic_int ready, go;
    double end[BENCH_GATE_MAX];
} bench_gate;

void bench_gate_wait(bench_gate *g);
double bench_gate_open(bench_gate *g, int parties);
/* The latest end time of workers 0 .. parties-1. */
double bench_gate_last_end(const bench_gate *g, int parties);

#endif
