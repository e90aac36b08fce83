/* What the cluster test programs share: they run under mpiexec, outside
 * Check (rank 0 checks, the other ranks serve), and count their failures. */
#ifndef MPROC_TESTS_CLUTIL_H
#define MPROC_TESTS_CLUTIL_H

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

#endif
