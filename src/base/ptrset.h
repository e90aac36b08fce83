/* A set of live addresses under its own lock: the registries of handles
 * that travel in a child's argument bytes (connections, manager proxies).
 * Sorted, so that a scan of argument bytes for members is a binary search
 * per word. */
#ifndef MPROC_INTERNAL_PTRSET_H
#define MPROC_INTERNAL_PTRSET_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mproc__ptrset {
    pthread_mutex_t mu;
    uintptr_t *set; /* ascending */
    size_t count, cap;
} mproc__ptrset;

#define MPROC__PTRSET_INIT                                                                         \
    {                                                                                              \
        PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0                                                      \
    }

/* 0, or MPROC_ENOMEM (p is then not a member). */
int mproc__ptrset_add(mproc__ptrset *s, const void *p);
void mproc__ptrset_remove(mproc__ptrset *s, const void *p);
bool mproc__ptrset_contains(mproc__ptrset *s, uintptr_t word);

/* Calls hit(off, word, ud), under the set's lock, for each pointer-aligned
 * word of bytes that is a member, in order; stops at the first non-zero
 * return of hit and returns it; else 0. */
int mproc__ptrset_scan(mproc__ptrset *s, const void *bytes, size_t len,
                       int (*hit)(size_t off, uintptr_t word, void *ud), void *ud);

/* In a fork child: the lock made anew (another thread may have held it
 * at the fork). */
void mproc__ptrset_after_fork(mproc__ptrset *s);

#endif
