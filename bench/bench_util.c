#include "bench_util.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The CPUs allowed at start (before any bench_pin_apart); count 0: unknown. */
static cpu_set_t g_cpus;
static int g_ncpus;

void bench_pin_apart(int who)
{
    if (g_ncpus < 2) return;
    int k = who % g_ncpus;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &g_cpus) || k-- > 0) continue;
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        if (sched_setaffinity(0, sizeof one, &one) != 0) perror("sched_setaffinity");
        return;
    }
}

void bench_unpin(void)
{
    if (g_ncpus > 0 && sched_setaffinity(0, sizeof g_cpus, &g_cpus) != 0)
        perror("sched_setaffinity");
}

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

bool bench_quick(void)
{
    const char *q = getenv("BENCH_QUICK");
    return q && *q && strcmp(q, "0") != 0;
}

/* Best seconds per op (0), or the failing run's status. n starts at 1 and is steered so that one
 * run lasts about `target` seconds; shorter runs are warm-up, and the fastest of the first `reps`
 * runs of a fair length counts. */
static int best_per_op(bench_fn fn, double *per_op)
{
    double target = bench_quick() ? 0.02 : 0.2;
    int reps = bench_quick() ? 3 : 5;
    double best = INFINITY, t;
    long n = 1;
    for (int done = 0; done < reps;) {
        int rc = fn(n, &t);
        if (rc != 0) return rc == BENCH_UNSUPPORTED ? rc : -1;
        if (t >= target / 2) {
            done++;
            if (t / (double)n < best) best = t / (double)n;
        }
        if (t < target / 2 || t > 2 * target) {
            double grow = t > 0 ? target / t : 100;
            grow = grow > 100 ? 100 : grow;
            double next = (double)n * grow;
            n = next < 1 ? 1 : next > 1e9 ? 1000000000L : (long)next;
        }
    }
    *per_op = best;
    return 0;
}

static double figure(const bench_row *row, double per_op)
{
    switch (row->unit) {
    case BENCH_S:
        return per_op;
    case BENCH_MS:
        return per_op * 1e3;
    case BENCH_US:
        return per_op * 1e6;
    case BENCH_NS:
        return per_op * 1e9;
    case BENCH_PER_S:
        return 1.0 / per_op;
    case BENCH_MB_PER_S:
        return (double)row->bytes / 1e6 / per_op;
    }
    return NAN;
}

static int run_row(const char *prog, const bench_row *row)
{
    if (!row->fn) {
        fprintf(stderr, "%s: row %s is not supported\n", prog, row->name);
        return 2;
    }
    double per_op;
    int rc = best_per_op(row->fn, &per_op);
    if (rc != 0) return rc == BENCH_UNSUPPORTED ? 2 : 1;
    double v = figure(row, per_op);
    if (!isfinite(v) || per_op <= 0) {
        fprintf(stderr, "%s: %s: no usable timing\n", prog, row->name);
        return 1;
    }
    printf("%.6g\n", v);
    return 0;
}

int bench_main(int argc, char **argv, const bench_table *tables, size_t ntables)
{
    if (sched_getaffinity(0, sizeof g_cpus, &g_cpus) == 0) g_ncpus = CPU_COUNT(&g_cpus);
    char name[256];
    if (argc == 3 && (size_t)snprintf(name, sizeof name, "%s %s", argv[1], argv[2]) < sizeof name) {
        argv[1] = name; /* "ROW PEER" */
    } else if (argc != 2) {
        fprintf(stderr, "usage: %s ROW [PEER]\nrows:\n", argv[0]);
        for (size_t t = 0; t < ntables; t++)
            for (size_t i = 0; i < tables[t].n; i++)
                fprintf(stderr, "  %s\n", tables[t].rows[i].name);
        return 2;
    }
    for (size_t t = 0; t < ntables; t++)
        for (size_t i = 0; i < tables[t].n; i++)
            if (strcmp(tables[t].rows[i].name, argv[1]) == 0)
                return run_row(argv[0], &tables[t].rows[i]);
    fprintf(stderr, "%s: unknown row %s\n", argv[0], argv[1]);
    return 2;
}

void bench_gate_wait(bench_gate *g)
{
    atomic_fetch_add(&g->ready, 1);
    while (!atomic_load(&g->go)) sched_yield();
}

double bench_gate_open(bench_gate *g, int parties)
{
    while (atomic_load(&g->ready) < parties) sched_yield();
    double t0 = bench_now();
    atomic_store(&g->go, 1);
    return t0;
}

double bench_gate_last_end(const bench_gate *g, int parties)
{
    double last = 0;
    for (int i = 0; i < parties; i++) last = g->end[i] > last ? g->end[i] : last;
    return last;
}

int bench_write_full(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

int bench_read_full(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t k = read(fd, p, len);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        len -= (size_t)k;
    }
    return 0;
}
