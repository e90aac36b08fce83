/* A pool whose workers are not processes of this machine (mproc/pool.h).
 *
 * A higher layer (the cluster, over MPI ranks) makes an mproc_pool that
 * runs its tasks elsewhere: the pool's public calls hand them to the
 * backend's operations, so that code written against the process pool
 * works on it unchanged (same task and map functions, same futures). The
 * pool layer never names the backend: it only calls these pointers. */
#ifndef MPROC_INTERNAL_POOL_BACKEND_H
#define MPROC_INTERNAL_POOL_BACKEND_H

#include "base/base.h"
#include "pool/pool.h"
#include "mproc/pool.h"

typedef struct mproc__pool_backend {
    /* The arguments are checked by the pool (non-NULL pool, fn, out;
     * payload sizes) before these run. */
    /* kind: KIND_APPLY (fn is an mproc_task_fn, arg its bytes) or
     * KIND_VALUE (an mproc_value_task_fn, arg the encoded value). */
    int (*apply_async)(void *ctx, uint32_t kind, const void *fn, const void *arg, size_t arglen,
                       const mproc_task_opts *opts, mproc_future **out);
    /* call: how fn is called (mproc_map_kind; the sizes fit it). */
    int (*map_async)(void *ctx, uint32_t call, mproc_any_fn fn, const void *in, size_t n,
                     size_t in_size, void *out, size_t out_size, const mproc_map_opts *opts,
                     mproc_future **fut);
    /* imap's chunks: count items of in_size bytes from in (copied before
     * it returns), ended through hook(ud, seq, count, ...) instead of a
     * future (no lock of the pool held); timeout_ms as mproc_imap_opts's.
     * Accepted after close while the pool is held. */
    int (*map_chunk)(void *ctx, uint32_t call, mproc_any_fn fn, const void *in, size_t count,
                     size_t in_size, size_t out_size, int timeout_ms, pool_task_hook hook, void *ud,
                     uint64_t seq);
    /* mproc__pool_hold (delta 1: MPROC_ESHUTDOWN unless open) and
     * mproc__pool_unhold (delta -1): see pool/pool.h. */
    int (*hold)(void *ctx, int delta);
    int (*close)(void *ctx);
    int (*terminate)(void *ctx);
    int (*join)(void *ctx, int timeout_ms);
    size_t (*workers)(void *ctx, pid_t *out, size_t cap);
    void (*free)(void *ctx); /* after terminate when the pool was open */
} mproc__pool_backend;

/* A map's progress bar on stderr (mproc_map_opts.progress_bar): done of
 * n items since t0 (mproc_now_ns); drawn at most every 100 ms (*last: when
 * it was last), and always when final (then with a newline). */
void mproc__map_bar(size_t done, size_t n, long long t0, long long *last, bool final);

/* A pool that runs its tasks through ops on ctx (owned by the pool from
 * now on: ops->free releases it). Errors: MPROC_EINVAL, MPROC_ENOMEM
 * (then ctx is not taken). */
int mproc__pool_new_backend(mproc_pool **out, const mproc__pool_backend *ops, void *ctx);

/* The backend of a pool, or NULL for a pool of processes (ctx: its
 * context). */
const mproc__pool_backend *mproc__pool_backend_of(const mproc_pool *pool, void **ctx);

#endif
