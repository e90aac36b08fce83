/* mproc_process_start_all / _join_all: a group of processes in one call
 * each (Python's `for p in ps: p.start()` and `for p in ps: p.join()`). */
#include "base/base.h"
#include "mproc/process.h"

/* MPROC_EINVAL for a NULL array with n > 0 or a NULL element. */
static int check_group(mproc_process **ps, size_t n)
{
    if (n > 0 && !ps) return MPROC_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!ps[i]) return MPROC_EINVAL;
    return 0;
}

int mproc_process_start_all(mproc_process **ps, size_t n)
{
    int rc = check_group(ps, n);
    for (size_t i = 0; rc == 0 && i < n; i++) rc = mproc_process_start(ps[i]);
    return rc;
}

int mproc_process_join_all(mproc_process **ps, size_t n, int timeout_ms, size_t *nfailed)
{
    if (nfailed) *nfailed = 0;
    mproc__deadline dl;
    int rc = mproc__deadline_init(&dl, timeout_ms);
    if (rc == 0) rc = check_group(ps, n);
    if (rc) return rc;
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        /* What is left of the one deadline; 0 once it has passed, so the
         * ones that have ended are still reaped and counted. */
        int jrc =
            mproc_process_join(ps[i], dl.forever ? MPROC_FOREVER : mproc__deadline_poll_ms(&dl));
        if (jrc == MPROC_ETIMEDOUT) {
            rc = jrc;
            continue;
        }
        if (jrc) {
            rc = jrc;
            break;
        }
        int code;
        if ((jrc = mproc_process_exitcode(ps[i], &code))) {
            rc = jrc;
            break;
        }
        failed += code != 0;
    }
    if (nfailed) *nfailed = failed;
    return rc;
}

int mproc_process_start_new(mproc_process **out, mproc_target_fn target, const void *arg,
                            size_t arglen, const mproc_process_opts *opts)
{
    int rc = mproc_process_new(out, target, arg, arglen, opts);
    if (rc) return rc;
    if ((rc = mproc_process_start(*out))) {
        mproc_process_free(*out);
        *out = NULL;
    }
    return rc;
}

int mproc_process_join_free(mproc_process *p, int timeout_ms, int *exitcode)
{
    int code = 0;
    int rc = mproc_process_join(p, timeout_ms);
    if (!rc) rc = mproc_process_exitcode(p, &code);
    if (!rc) rc = mproc_process_free(p);
    if (!rc && exitcode) *exitcode = code;
    return rc;
}

int mproc_process_join_free_all(mproc_process **ps, size_t n, int timeout_ms, size_t *nfailed)
{
    int rc = mproc_process_join_all(ps, n, timeout_ms, nfailed);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = mproc_process_free(ps[i]);
        if (!rc) ps[i] = NULL;
    }
    return rc;
}
