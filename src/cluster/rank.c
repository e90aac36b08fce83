/* A serving rank's local process pools (cluster/cluster.h).
 *
 * A rank cannot be killed without ending the MPI job, so a task with a
 * time limit, and every task of a hybrid pool, runs in a process pool of
 * the rank's own (mproc_pool_new): the limit is that pool's (the overdue
 * worker is killed and replaced, the task fails with MPROC_ETIMELIMIT), and
 * a hybrid pool's tasks spread over the rank's processes. The rank keeps
 * one local pool per size it was asked for (one process for a ranks-only
 * pool's time limits), made on first use and freed at STOP.
 *
 * Everything here runs in the rank's one thread (serve in world.c): the
 * local tasks' futures are polled, never waited for, so the rank keeps
 * receiving while they run. */
#include "base/log.h"
#include "cluster/cluster.h"
#include "pool/pool.h"
#include "mproc/value.h"

#include <stdlib.h>
#include <string.h>

#define MAX_LOCAL_POOLS 8

typedef struct job {
    struct job *next;
    uint64_t id;
    uint32_t kind;
    mproc_future *f;
    char *in, *out; /* a map chunk's inputs (a copy) and outputs */
    size_t olen;
} job;

static job *jobs; /* running in a local pool, newest first */
static struct {
    uint32_t n;
    mproc_pool *p;
} pools[MAX_LOCAL_POOLS];
static int npools;

/* The local pool of n processes (CL_LOCAL_CPUS: this host's CPUs), made
 * on first use; NULL with *rc on failure. */
static mproc_pool *local_pool(uint32_t n, int *rc)
{
    for (int i = 0; i < npools; i++)
        if (pools[i].n == n) return pools[i].p;
    if (npools == MAX_LOCAL_POOLS) {
        *rc = MPROC_ENOMEM;
        return NULL;
    }
    int procs = n == CL_LOCAL_CPUS ? mproc_cpu_count() : n > 4096 ? 4096 : (int)n;
    mproc_pool *p;
    if ((*rc = mproc_pool_new(&p, &(mproc_pool_opts){.processes = procs}))) {
        mproc_log(MPROC_LOG_ERROR, "cluster: a rank's local pool of %d processes: %s", procs,
                  mproc_strerror(*rc));
        return NULL;
    }
    pools[npools].n = n;
    pools[npools++].p = p;
    return p;
}

void mproc__cluster_rank_submit(MPI_Comm comm, const cl_task_hdr *h, void *fn, const char *payload,
                                size_t plen)
{
    int rc = 0;
    mproc_pool *p = local_pool(h->local ? h->local : 1, &rc);
    if (!p) {
        mproc__cluster_send_result(comm, h->id, rc, "the rank could not start a local pool", NULL,
                                   0);
        return;
    }
    job *j = calloc(1, sizeof *j);
    if (!j) {
        mproc__cluster_send_result(comm, h->id, MPROC_ENOMEM, "no memory for the task", NULL, 0);
        return;
    }
    *j = (job){.id = h->id, .kind = h->kind};
    int limit = h->timeout_ms ? h->timeout_ms : MPROC_FOREVER;
    mproc_task_opts to = {.timeout_ms = limit};
    if (h->kind == CL_APPLY) {
        rc = mproc_pool_apply_async(p, (mproc_task_fn)fn, payload, plen, &to, &j->f);
    } else if (h->kind == CL_VALUE) {
        mproc_value *v = NULL;
        rc = plen ? mproc_value_decode(payload, plen, NULL, &v) : 0;
        if (!rc) rc = mproc_pool_apply_value_async(p, (mproc_value_task_fn)fn, v, &to, &j->f);
        mproc_value_free(v);
    } else {
        size_t count = (size_t)h->count;
        j->olen = count * (size_t)h->out_size;
        j->in = malloc(plen ? plen : 1);
        j->out = malloc(j->olen ? j->olen : 1);
        if (!j->in || !j->out) {
            rc = MPROC_ENOMEM;
        } else {
            if (plen) memcpy(j->in, payload, plen);
            /* A ranks-only pool's chunk is one local task, so that its time
             * limit is the chunk's, as in a process pool; a hybrid pool's
             * spreads over the local processes (the limit is then each
             * part's). */
            mproc_map_opts mo = {.chunksize = h->local ? 0 : count, .timeout_ms = limit};
            rc = mproc_pool_map_async_typed(p, (mproc_map_kind)h->call, (mproc_any_fn)fn, j->in,
                                            count, (size_t)h->in_size, j->out, (size_t)h->out_size,
                                            &mo, &j->f);
        }
    }
    if (rc) {
        mproc__cluster_send_result(comm, h->id, rc, "the rank's local pool refused the task", NULL,
                                   0);
        free(j->in);
        free(j->out);
        free(j);
        return;
    }
    j->next = jobs;
    jobs = j;
}

bool mproc__cluster_rank_poll(MPI_Comm comm)
{
    bool any = false;
    for (job **pp = &jobs; *pp;) {
        job *j = *pp;
        if (!mproc_future_done(j->f)) {
            pp = &j->next;
            continue;
        }
        *pp = j->next;
        const void *buf = NULL;
        size_t len = 0;
        int rc = mproc_future_result(j->f, &buf, &len, 0);
        const char *msg = NULL;
        if (rc) mproc_future_error(j->f, NULL, &msg, NULL);
        if (j->kind == CL_MAP) {
            buf = j->out;
            len = j->olen;
        }
        mproc__cluster_send_result(comm, j->id, rc, msg, rc ? NULL : buf, rc ? 0 : len);
        mproc_future_free(j->f);
        free(j->in);
        free(j->out);
        free(j);
        any = true;
    }
    return any;
}

void mproc__cluster_rank_stop(void)
{
    for (int i = 0; i < npools; i++) {
        mproc_pool_terminate(pools[i].p);
        mproc_pool_join(pools[i].p, MPROC_FOREVER);
        mproc_pool_free(pools[i].p);
    }
    npools = 0;
    while (jobs) { /* the root waits for every answer before STOP: none */
        job *j = jobs;
        jobs = j->next;
        mproc_future_free(j->f);
        free(j->in);
        free(j->out);
        free(j);
    }
}
