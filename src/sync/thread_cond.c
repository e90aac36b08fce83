/* Monotonic-clock condition variables (sync/thread_cond.h). */
#include "sync/thread_cond.h"

#include <time.h>

/* The attributes, made once: a future's condition variable is made on
 * every task's round trip. */
static pthread_condattr_t mono;
static pthread_once_t mono_once = PTHREAD_ONCE_INIT;

static void mono_init(void)
{
    int rc = pthread_condattr_init(&mono);
    if (!rc) rc = pthread_condattr_setclock(&mono, CLOCK_MONOTONIC);
    if (rc) mproc__panic("pthread_condattr_setclock: %d", rc);
}

void mproc__thread_cond_init(pthread_cond_t *c)
{
    pthread_once(&mono_once, mono_init);
    int rc = pthread_cond_init(c, &mono);
    if (rc) mproc__panic("pthread_cond_init: %d", rc);
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
