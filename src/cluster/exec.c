/* The cluster pool with its own options (the hybrid layout) and the
 * executor over ranks (mproc/cluster.h). The executor is the process
 * executor (pool/executor.h) with a cluster pool inside: submit, map,
 * shutdown, cancel_futures and the futures behave as they do there. */
#include "base/log.h"
#include "cluster/cluster.h"
#include "pool/executor.h"

int mproc_cluster_pool_new_opts(mproc_pool **out, const mproc_cluster_pool_opts *opts)
{
    if (!out) return MPROC_EINVAL;
    mproc_cluster_pool_opts o = opts ? *opts : (mproc_cluster_pool_opts){0};
    if (o.ranks < 0 || o.rank_processes < 0 || o.rank_processes > 4096 || o.task_timeout_ms < 0 ||
        o.max_tasks_per_child < 0 ||
        (o.layout != MPROC_CLUSTER_RANKS && o.layout != MPROC_CLUSTER_HYBRID) ||
        (o.layout == MPROC_CLUSTER_RANKS && o.rank_processes)) {
        mproc_log(MPROC_LOG_ERROR,
                  "cluster: bad pool options (ranks %d, layout %d, rank_processes %d, "
                  "task_timeout_ms %d, max_tasks_per_child %d)",
                  o.ranks, (int)o.layout, o.rank_processes, o.task_timeout_ms,
                  o.max_tasks_per_child);
        return MPROC_EINVAL;
    }
    if (o.initargs_len && !o.initargs) return MPROC_EINVAL;
    if (o.max_tasks_per_child && o.layout == MPROC_CLUSTER_RANKS) {
        mproc_log(MPROC_LOG_ERROR, "cluster: max_tasks_per_child applies to a hybrid pool's "
                                   "local processes; a rank cannot be replaced");
        return MPROC_ENOTSUP;
    }
    if (!mproc_cluster_active()) return MPROC_EBADSTATE;
    int n = mproc__cluster_root_workers();
    if (n == 0) {
        mproc_log(MPROC_LOG_ERROR, "cluster: no worker rank: start the program with mpiexec -n N, "
                                   "N >= 2 (rank 0 runs the program, the others serve)");
        return MPROC_EINVAL;
    }
    if (o.ranks > n) {
        mproc_log(MPROC_LOG_ERROR, "cluster: %d worker ranks asked for, %d exist", o.ranks, n);
        return MPROC_EINVAL;
    }
    uint32_t local = 0;
    int depth = CL_DEPTH;
    if (o.layout == MPROC_CLUSTER_HYBRID) {
        /* Each rank holds two tasks per local process: one running, one
         * ready (the root cannot know another host's CPUs: it assumes its
         * own when rank_processes is 0). */
        local = o.rank_processes ? (uint32_t)o.rank_processes : CL_LOCAL_CPUS;
        int per = o.rank_processes ? o.rank_processes : mproc_cpu_count();
        depth = per > 512 ? 1024 : 2 * per;
    }
    return mproc__cluster_root_pool_new(out, o.ranks ? o.ranks : n, local, depth, o.task_timeout_ms,
                                        o.initializer, o.initargs, o.initargs_len,
                                        o.max_tasks_per_child);
}

int mproc_cluster_executor_new(mproc_executor **out, const mproc_cluster_pool_opts *opts)
{
    if (!out) return MPROC_EINVAL;
    *out = NULL;
    mproc_pool *p;
    int rc = mproc_cluster_pool_new_opts(&p, opts);
    if (rc) return rc;
    int ranks = opts && opts->ranks ? opts->ranks : mproc__cluster_root_workers();
    int per = !opts || opts->layout != MPROC_CLUSTER_HYBRID ? 1
              : opts->rank_processes                        ? opts->rank_processes
                                                            : mproc_cpu_count();
    if ((rc = mproc__executor_process_wrap(out, p, ranks * per))) mproc_pool_free(p);
    return rc;
}
