/* Monotonic time and deadlines: the one timeout convention. */
#include "base/base.h"

#include <limits.h>
#include <time.h>

long long mproc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int mproc__deadline_init(mproc__deadline *d, int timeout_ms)
{
    if (timeout_ms < 0 && timeout_ms != MPROC_FOREVER) return MPROC_EINVAL;
    d->forever = timeout_ms == MPROC_FOREVER;
    /* A zero timeout has passed already, so a try reads no clock (the
     * monotonic clock is never below 0). */
    d->at_ns = d->forever || timeout_ms == 0 ? 0 : mproc_now_ns() + (int64_t)timeout_ms * 1000000;
    return 0;
}

int mproc__deadline_poll_ms(const mproc__deadline *d)
{
    if (d->forever) return -1;
    int64_t left = d->at_ns - mproc_now_ns();
    if (left <= 0) return 0;
    int64_t ms = (left + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

bool mproc__deadline_passed(const mproc__deadline *d)
{
    return !d->forever && mproc_now_ns() >= d->at_ns;
}
