/* Waiting on many futures: mproc_futures_wait and as_completed.
 *
 * Both wait on the process-wide completion signal of pool/future.h: a
 * check of the completion numbers made under its lock followed by a wait
 * on its condition never misses a completion. as_completed yields the
 * done future with the smallest completion number: the completion order,
 * also for futures that were done before the iterator was made (two that
 * complete at the same moment in two threads may come in either order). Each
 * step scans the set: fine for the hundreds or thousands of futures these
 * calls are used with. */
#include "pool/future.h"

#include <stdlib.h>

/* A failure other than a cancel: what FIRST_EXCEPTION waits for. */
static bool failed(const mproc_future *f)
{
    return mproc_future_done(f) && !mproc_future_successful(f) && !mproc_future_cancelled(f);
}

/* Before sleeping: MPROC_ECHILD if one of the futures is pending in a
 * process that did not make it (a fork copy), where it never completes. */
static int foreign(mproc_future *const *fs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (mproc__future_foreign(fs[i])) return MPROC_ECHILD;
    return 0;
}

static bool condition_holds(mproc_future *const *fs, size_t n, mproc_wait_mode mode, size_t *ndone)
{
    size_t done = 0;
    bool any_failed = false;
    for (size_t i = 0; i < n; i++) {
        if (!mproc__future_seq(fs[i])) continue;
        done++;
        if (failed(fs[i])) any_failed = true;
    }
    *ndone = done;
    switch (mode) {
    case MPROC_FIRST_COMPLETED:
        return done > 0 || n == 0;
    case MPROC_FIRST_EXCEPTION:
        return any_failed || done == n;
    default:
        return done == n;
    }
}

int mproc_futures_wait(mproc_future *const *fs, size_t n, int timeout_ms, mproc_wait_mode mode,
                       size_t *ndone)
{
    mproc__deadline dl;
    if ((n && !fs) || mproc__deadline_init(&dl, timeout_ms)) return MPROC_EINVAL;
    if (mode != MPROC_FIRST_COMPLETED && mode != MPROC_FIRST_EXCEPTION &&
        mode != MPROC_ALL_COMPLETED)
        return MPROC_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i]) return MPROC_EINVAL;
    size_t done = 0;
    int rc = 0;
    if (mode == MPROC_ALL_COMPLETED) {
        /* Each in turn, sleeping on that future alone: the waiter is not
         * woken by every completion, and scans each future once. */
        for (; done < n && rc == 0; done += rc == 0) rc = mproc__future_wait_until(fs[done], &dl);
        if (rc) { /* timed out: how many are done */
            done = 0;
            for (size_t i = 0; i < n; i++) done += mproc_future_done(fs[i]);
        }
        if (ndone) *ndone = done;
        return rc;
    }
    mproc__futures_lock();
    while (!condition_holds(fs, n, mode, &done)) {
        if ((rc = foreign(fs, n)) || (rc = mproc__futures_wait_any(&dl))) {
            rc = condition_holds(fs, n, mode, &done) ? 0 : rc;
            break;
        }
    }
    mproc__futures_unlock();
    if (ndone) *ndone = done;
    return rc;
}

/* ---- as_completed ------------------------------------------------------------ */

struct mproc_as_completed {
    size_t n, left; /* left: not yet yielded, fs[0..left) */
    mproc_future **fs;
};

int mproc_as_completed_new(mproc_as_completed **out, mproc_future *const *fs, size_t n)
{
    if (!out || (n && !fs)) return MPROC_EINVAL;
    *out = NULL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i]) return MPROC_EINVAL;
    mproc_as_completed *it = calloc(1, sizeof *it);
    if (!it || (n && !(it->fs = malloc(n * sizeof *it->fs)))) {
        free(it);
        return MPROC_ENOMEM;
    }
    /* A future listed twice is yielded twice (Python takes a set). */
    for (size_t i = 0; i < n; i++) it->fs[i] = fs[i];
    it->n = it->left = n;
    *out = it;
    return 0;
}

/* The index in fs[0..left) of the earliest completed future, or left. */
static size_t earliest(const mproc_as_completed *it)
{
    size_t best = it->left;
    uint64_t best_seq = UINT64_MAX;
    for (size_t i = 0; i < it->left; i++) {
        uint64_t s = mproc__future_seq(it->fs[i]);
        if (s && s < best_seq) best_seq = s, best = i;
    }
    return best;
}

int mproc_as_completed_next(mproc_as_completed *it, mproc_future **f, int timeout_ms)
{
    mproc__deadline dl;
    if (!it || !f || mproc__deadline_init(&dl, timeout_ms)) return MPROC_EINVAL;
    *f = NULL;
    if (!it->left) return MPROC_EEOF;
    int rc = 0;
    mproc__futures_lock();
    size_t i;
    while ((i = earliest(it)) == it->left) {
        if ((rc = foreign(it->fs, it->left)) || (rc = mproc__futures_wait_any(&dl))) {
            if ((i = earliest(it)) != it->left) rc = 0;
            break;
        }
    }
    mproc__futures_unlock();
    if (rc) return rc;
    *f = it->fs[i];
    it->fs[i] = it->fs[--it->left]; /* order of the rest does not matter */
    return 0;
}

void mproc_as_completed_free(mproc_as_completed *it)
{
    if (!it) return;
    free(it->fs);
    free(it);
}
