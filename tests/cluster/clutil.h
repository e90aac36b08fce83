/* What the cluster test programs share: they run under mpiexec, outside
 * Check (rank 0 checks, the other ranks serve), and count their failures. */
#ifndef MPROC_TESTS_CLUTIL_H
#define MPROC_TESTS_CLUTIL_H

#include <mproc.h>
#include <mproc/cluster.h>

#include <stdio.h>

static int failures;

/* On a false cond: report it with the file, line and a printf message,
 * count it, and leave the test function (a void function). */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: FAILED: %s: ", __FILE__, __LINE__, #cond);                     \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            failures++;                                                                            \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* The start of a test program that compares a cluster pool with a process
 * pool: the cluster (rank 0 goes on, the others serve), a cluster pool
 * over every worker rank and a local pool of 2 processes. 0, or 1 after
 * saying why (prog names the program). */
static inline int clu_start(const char *prog, int *argc, char ***argv, mproc_pool **cluster,
                            mproc_pool **local)
{
    int rc = mproc_cluster_init(argc, argv);
    if (rc) {
        fprintf(stderr, "%s: mproc_cluster_init: %s\n", prog, mproc_strerror(rc));
        return 1;
    }
    printf("%s: %d worker ranks\n", prog, mproc_cluster_workers());
    mproc_pool_opts two = {.processes = 2};
    if ((rc = mproc_cluster_pool_new(cluster, NULL)) || (rc = mproc_pool_new(local, &two))) {
        fprintf(stderr, "%s: pools: %s\n", prog, mproc_strerror(rc));
        return 1;
    }
    return 0;
}

#endif
