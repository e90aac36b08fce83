/* Task functions: results, failure messages, and running a task
 * (mproc/future.h, pool/future.h).
 *
 * The message of mproc_task_fail lives in a thread-local while the task
 * runs; mproc__task_run clears it before the run and hands it over after.
 * Outside a run (no runner on this thread) mproc_task_fail keeps nothing. */
#include "pool/future.h"
#include "mproc/value.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local int in_task;    /* runs under way on this thread */
static _Thread_local char *fail_msg; /* the running task's message */
static _Thread_local bool failed;    /* mproc_task_fail was called (typed map functions) */

int mproc_result_set(mproc_result *res, const void *buf, size_t len)
{
    if (!res || (!buf && len)) return MPROC_EINVAL;
    void *copy = NULL;
    if (len) {
        if (!(copy = malloc(len))) return MPROC_ENOMEM;
        memcpy(copy, buf, len);
    }
    free(res->buf);
    res->buf = copy;
    res->len = len;
    return 0;
}

int mproc_result_set_value(mproc_result *res, const struct mproc_value *v)
{
    if (!res) return MPROC_EINVAL;
    void *buf;
    size_t len;
    int rc = mproc_value_encode(v, &buf, &len);
    if (rc) return rc;
    free(res->buf);
    res->buf = buf;
    res->len = len;
    return 0;
}

int mproc_task_fail(const char *fmt, ...)
{
    if (!in_task || !fmt) return MPROC_ETASK;
    failed = true;
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0) msg = NULL; /* out of memory: no message */
    va_end(ap);
    free(fail_msg);
    fail_msg = msg;
    return MPROC_ETASK;
}

/* A run: the task context around fn, nested runs keeping the outer one's
 * message aside. */
typedef struct run_ctx {
    char *outer_msg;
} run_ctx;

static void run_begin(run_ctx *c, mproc_result *res)
{
    res->buf = NULL;
    res->len = 0;
    c->outer_msg = fail_msg;
    fail_msg = NULL;
    in_task++;
}

static int run_end(run_ctx *c, int rc, mproc_result *res, char **msg)
{
    in_task--;
    char *m = fail_msg;
    fail_msg = c->outer_msg;
    if (rc > 0) {
        free(m);
        m = NULL;
        if (asprintf(&m, "the task returned %d, neither 0 nor an error code", rc) < 0) m = NULL;
        rc = MPROC_ETASK;
    }
    if (rc == 0) {
        free(m);
        m = NULL;
    } else {
        free(res->buf);
        res->buf = NULL;
        res->len = 0;
    }
    if (msg)
        *msg = m;
    else
        free(m);
    return rc;
}

int mproc__task_run(mproc_task_fn fn, const void *arg, size_t arglen, mproc_result *res, char **msg)
{
    run_ctx c;
    run_begin(&c, res);
    return run_end(&c, fn(arglen ? arg : NULL, arglen, res), res, msg);
}

int mproc__value_task_run(mproc_value_task_fn fn, const void *arg, size_t arglen, mproc_result *res,
                          char **msg)
{
    run_ctx c;
    run_begin(&c, res);
    mproc_value *in = NULL, *out = NULL;
    int rc = arglen ? mproc_value_decode(arg, arglen, NULL, &in) : 0;
    if (rc) {
        (void)mproc_task_fail("cannot decode the task's argument: %s", mproc_strerror(rc));
    } else {
        rc = fn(in, &out);
        if (rc == 0 && out && (rc = mproc_result_set_value(res, out)))
            (void)mproc_task_fail("cannot encode the task's result: %s", mproc_strerror(rc));
    }
    mproc_value_free(in);
    mproc_value_free(out);
    return run_end(&c, rc, res, msg);
}

/* One item of a typed map function: its argument and result are 8 bytes
 * (checked when the map was made). */
static int call_typed(void *fn, uint32_t call, const char *in, char *out)
{
    int64_t i = 0, ri = 0;
    double d = 0, rd = 0;
    if (call == MPROC_MAP_I64_I64 || call == MPROC_MAP_I64_F64)
        memcpy(&i, in, sizeof i);
    else
        memcpy(&d, in, sizeof d);
    failed = false;
    switch (call) {
    case MPROC_MAP_I64_I64:
        ri = ((int64_t(*)(int64_t))fn)(i);
        break;
    case MPROC_MAP_I64_F64:
        rd = ((double (*)(int64_t))fn)(i);
        break;
    case MPROC_MAP_F64_I64:
        ri = ((int64_t(*)(double))fn)(d);
        break;
    case MPROC_MAP_F64_F64:
        rd = ((double (*)(double))fn)(d);
        break;
    default:
        return mproc_task_fail("unknown map call kind %u", call);
    }
    if (failed) return MPROC_ETASK;
    if (call == MPROC_MAP_I64_I64 || call == MPROC_MAP_F64_I64)
        memcpy(out, &ri, sizeof ri);
    else
        memcpy(out, &rd, sizeof rd);
    return 0;
}

int mproc__task_run_map(void *fn, uint32_t call, const char *in, char *out, size_t count,
                        size_t in_size, size_t out_size, char **msg)
{
    run_ctx c;
    mproc_result r;
    run_begin(&c, &r);
    int rc = 0;
    if (call == MPROC_MAP_BYTES)
        for (size_t i = 0; i < count && rc == 0; i++)
            rc = ((mproc_map_fn)fn)(in + i * in_size, out + i * out_size);
    else
        for (size_t i = 0; i < count && rc == 0; i++)
            rc = call_typed(fn, call, in + i * in_size, out + i * out_size);
    return run_end(&c, rc, &r, msg);
}

int mproc__task_run_call(int (*call)(void *ctx), void *ctx, char **msg)
{
    run_ctx c;
    mproc_result r;
    run_begin(&c, &r);
    return run_end(&c, call(ctx), &r, msg);
}
