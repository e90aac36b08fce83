/* Submitting to a pool: apply, apply_async, values, hook tasks for map,
 * and withdrawing a pending task (cancel). */
#include "base/log.h"
#include "pool/parent.h"
#include "process/process.h"
#include "sync/thread_cond.h"
#include "mproc/arena.h"
#include "mproc/value.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- submitting ------------------------------------------------------------------ */

static bool withdraw(void *owner, mproc_future *f)
{
    mproc_pool *pool = owner;
    MPROC__LOCK(&pool->mu);
    pool_task *t = pool_first(&pool->pend);
    while (t && t->f != f) t = pool_next(&pool->pend, t);
    if (t) {
        mproc__list_remove(&t->node);
        pool->unfinished--;
        mproc__pool_send_stops_locked(pool);
        pthread_cond_broadcast(&pool->cv);
    }
    MPROC__UNLOCK(&pool->mu);
    if (!t) return false;
    mproc_future_free(t->f); /* the pool's reference; the caller completes it */
    free(t->msg);
    free(t);
    return true;
}

static int state_error(const mproc_pool *pool)
{
    return pool->state == ST_OPEN ? 0 : MPROC_ESHUTDOWN;
}

/* Queues a task (msg taken over). */
static int submit(mproc_pool *pool, pool_task *t)
{
    MPROC__LOCK(&pool->mu);
    int rc = state_error(pool);
    if (rc && t->hook && pool->state == ST_CLOSED && pool->holds > 0) rc = 0; /* a held imap */
    if (rc) {
        MPROC__UNLOCK(&pool->mu);
        return rc;
    }
    t->id = ++pool->next_id;
    ((pool_task_msg *)t->msg)->id = t->id;
    mproc__list_insert_tail(&pool->pend, &t->node);
    pool->unfinished++;
    mproc__pool_dispatch_locked(pool);
    MPROC__UNLOCK(&pool->mu);
    return 0;
}

static int task_timeout(const mproc_pool *pool, int ms)
{
    return ms == MPROC_FOREVER ? 0 : ms > 0 ? ms : pool->task_timeout_ms;
}

/* A task message: the header and the payload in one block. */
static void *make_msg(uint32_t kind, mproc__fnref fn, const void *payload, size_t plen, size_t *len)
{
    if (plen > SIZE_MAX - sizeof(pool_task_msg)) return NULL;
    char *m = malloc(sizeof(pool_task_msg) + plen);
    if (!m) return NULL;
    pool_task_msg h = {.type = MSG_TASK, .kind = kind, .fn = fn};
    memcpy(m, &h, sizeof h);
    if (plen) memcpy(m + sizeof h, payload, plen);
    *len = sizeof h + plen;
    return m;
}

int mproc__pool_submit_hook(mproc_pool *pool, void *msg, size_t len, int timeout_ms,
                            pool_task_hook hook, pool_task_prep prep, void *ud, uint64_t seq,
                            size_t count)
{
    pool_task *t = calloc(1, sizeof *t);
    if (!t) {
        free(msg);
        return MPROC_ENOMEM;
    }
    *t = (pool_task){.hook = hook,
                     .prep = prep,
                     .ud = ud,
                     .seq = seq,
                     .count = count,
                     .msg = msg,
                     .len = len,
                     .timeout_ms = task_timeout(pool, timeout_ms)};
    int rc = submit(pool, t);
    if (rc) {
        free(msg);
        free(t);
    }
    return rc;
}

int mproc__pool_size(const mproc_pool *pool)
{
    if (pool->backend) return (int)pool->backend->workers(pool->backend_ctx, NULL, 0);
    return pool->n;
}

bool mproc__pool_owned(const mproc_pool *pool)
{
    return pool_owned(pool);
}

int mproc__pool_hold(mproc_pool *pool)
{
    if (pool->backend) return pool->backend->hold(pool->backend_ctx, 1);
    MPROC__LOCK(&pool->mu);
    int rc = state_error(pool);
    if (!rc) pool->holds++;
    MPROC__UNLOCK(&pool->mu);
    return rc;
}

void mproc__pool_unhold(mproc_pool *pool)
{
    if (pool->backend) {
        (void)pool->backend->hold(pool->backend_ctx, -1);
        return;
    }
    MPROC__LOCK(&pool->mu);
    if (--pool->holds == 0) {
        mproc__pool_send_stops_locked(pool);
        pthread_cond_broadcast(&pool->cv);
    }
    MPROC__UNLOCK(&pool->mu);
}

static int submit_future(mproc_pool *pool, uint32_t kind, const void *fn, const void *payload,
                         size_t plen, const mproc_task_opts *opts, mproc_future **out)
{
    mproc_task_opts o = opts ? *opts : (mproc_task_opts){0};
    if (!pool || !fn || !out || (!payload && plen) || o.timeout_ms < MPROC_FOREVER)
        return MPROC_EINVAL;
    if (!pool_owned(pool)) return MPROC_ECHILD;
    mproc__fnref ref;
    int rc = mproc__fnref_make(fn, &ref);
    if (rc) return rc;
    pool_task *t = calloc(1, sizeof *t);
    mproc_future *f = mproc__future_new(o.callback, o.error_callback, o.userdata);
    if (t) t->msg = make_msg(kind, ref, payload, plen, &t->len);
    if (!t || !f || !t->msg) {
        if (t) free(t->msg);
        free(t);
        if (f) {
            mproc_future_free(f);
            mproc_future_free(f);
        }
        return MPROC_ENOMEM;
    }
    t->f = f;
    t->timeout_ms = task_timeout(pool, o.timeout_ms);
    mproc__future_set_withdraw(f, withdraw, pool);
    if ((rc = submit(pool, t))) {
        free(t->msg);
        free(t);
        mproc_future_free(f);
        mproc_future_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

int mproc_pool_apply_async(mproc_pool *pool, mproc_task_fn fn, const void *arg, size_t arglen,
                           const mproc_task_opts *opts, mproc_future **out)
{
    if (pool && pool->backend) {
        if (!fn || !out || (!arg && arglen) || (opts && opts->timeout_ms < MPROC_FOREVER))
            return MPROC_EINVAL;
        if (!pool_owned(pool)) return MPROC_ECHILD;
        return pool->backend->apply_async(pool->backend_ctx, KIND_APPLY, (const void *)fn, arg,
                                          arglen, opts, out);
    }
    return submit_future(pool, KIND_APPLY, (const void *)fn, arg, arglen, opts, out);
}

int mproc_pool_apply_value_async(mproc_pool *pool, mproc_value_task_fn fn, const mproc_value *arg,
                                 const mproc_task_opts *opts, mproc_future **out)
{
    if (pool && !pool_owned(pool)) return MPROC_ECHILD;
    if (pool && pool->backend && (!fn || !out || (opts && opts->timeout_ms < MPROC_FOREVER)))
        return MPROC_EINVAL;
    void *buf = NULL;
    size_t len = 0;
    mproc_value *nil = arg ? NULL : mproc_value_nil();
    int rc = mproc_value_encode(arg ? arg : nil, &buf, &len);
    mproc_value_free(nil);
    if (rc) return rc;
    if (pool && pool->backend)
        rc = pool->backend->apply_async(pool->backend_ctx, KIND_VALUE, (const void *)fn, buf, len,
                                        opts, out);
    else
        rc = submit_future(pool, KIND_VALUE, (const void *)fn, buf, len, opts, out);
    free(buf);
    return rc;
}

int mproc_pool_apply(mproc_pool *pool, mproc_task_fn fn, const void *arg, size_t arglen, void **res,
                     size_t *reslen)
{
    mproc_future *f;
    int rc = mproc_pool_apply_async(pool, fn, arg, arglen, NULL, &f);
    if (rc) return rc;
    const void *buf;
    size_t len;
    rc = mproc_future_result(f, &buf, &len, MPROC_FOREVER);
    if (rc == 0 && res) {
        *res = NULL;
        if (buf && len && !(*res = malloc(len))) rc = MPROC_ENOMEM;
        if (*res) memcpy(*res, buf, len);
    }
    if (rc == 0 && reslen) *reslen = len;
    if (rc) {
        const char *msg = NULL;
        mproc_future_error(f, NULL, &msg, NULL);
        if (msg) MPROC__INFO("pool: apply failed: %s", msg);
    }
    mproc_future_free(f);
    return rc;
}
