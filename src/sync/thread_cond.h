/* Condition variables between the threads of one process, on the
 * monotonic clock, waited on with mproc__deadline. */
#ifndef MPROC_INTERNAL_THREAD_COND_H
#define MPROC_INTERNAL_THREAD_COND_H

#include "base/base.h"

#include <pthread.h>

/* A condition variable that times out on CLOCK_MONOTONIC. Panics on
 * failure (it cannot fail on Linux). */
void mproc__thread_cond_init(pthread_cond_t *c);

/* Waits on c (mutex m held) once: 0 when woken (perhaps spuriously),
 * MPROC_ETIMEDOUT when the deadline has passed. */
int mproc__thread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m, const mproc__deadline *dl);

#endif
