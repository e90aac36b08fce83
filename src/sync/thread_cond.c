/* Monotonic-clock condition variables (sync/thread_cond.h). */
#include "sync/thread_cond.h"

#include <time.h>

void mproc__thread_cond_init(pthread_cond_t *c)
{
    pthread_condattr_t a;
    int rc = pthread_condattr_init(&a);
    if (!rc) rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (!rc) rc = pthread_cond_init(c, &a);
    if (rc) mproc__panic("pthread_cond_init: %d", rc);
    pthread_condattr_destroy(&a);
}

int mproc__thread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m, const mproc__deadline *dl)
{
    int rc;
    if (dl->forever) {
        rc = pthread_cond_wait(c, m);
    } else {
        if (mproc__deadline_passed(dl)) return MPROC_ETIMEDOUT;
        struct timespec ts = {(time_t)(dl->at_ns / 1000000000), (long)(dl->at_ns % 1000000000)};
        rc = pthread_cond_timedwait(c, m, &ts);
    }
    if (rc == ETIMEDOUT) return MPROC_ETIMEDOUT;
    if (rc) mproc__panic("pthread_cond_wait: %d", rc);
    return 0;
}
