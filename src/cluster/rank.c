/* A serving rank's local process pools (cluster/cluster.h).
 *
 * A rank cannot be killed without ending the MPI job, so a task with a
 * time limit, and every task of a hybrid pool, runs in a process pool of
 * the rank's own (mproc_pool_new): the limit is that pool's (the overdue
 * worker is killed and replaced, the task fails with MPROC_ETIMELIMIT), and
 * a hybrid pool's tasks spread over the rank's processes. The rank keeps
 * one local pool per size it was asked for (one process for a ranks-only
 * pool's time limits), made on first use and freed at STOP, and one per
 * cluster pool with an initializer or maxtasksperchild for its local
 * processes: the root sends that setup (CL_SETUP) before the pool's first
 * local task to the rank, and says when the pool ended (CL_DROP).
 *
 * Everything here runs in the rank's one thread (serve in world.c): the
 * local tasks' futures are polled, never waited for, so the rank keeps
 * receiving while they run. */
#include "base/log.h"
#include "cluster/cluster.h"
#include "pool/pool.h"
#include "mproc/value.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LOCAL_POOLS 4096

typedef struct job {
    struct job *next;
    uint64_t id;
    uint32_t kind;
    mproc_future *f;
    mproc_pool *pool;
    char *in, *out; /* a map chunk's inputs (a copy) and outputs */
    size_t olen;
} job;

static job *jobs; /* running in a local pool, newest first */

/* The local pools: one per size asked for (setup 0), and one per cluster
 * pool with a setup (CL_SETUP: its initializer and maxtasksperchild), made
 * on its first task and ended by CL_DROP. */
typedef struct lpool {
    uint32_t setup, n;
    mproc_pool *p;
    bool bad;   /* a setup whose initializer cannot be found here */
    bool nomem; /* a setup whose initargs found no memory to be kept in */
    int max_tasks;
    void *init;
    char *args;
    size_t alen;
} lpool;

static lpool *lpools;
static int nlpools, cap_lpools;

static lpool *find_lpool(uint32_t setup, uint32_t n)
{
    for (int i = 0; i < nlpools; i++)
        if (lpools[i].setup == setup && (setup || lpools[i].n == n)) return &lpools[i];
    return NULL;
}

static lpool *add_lpool(void)
{
    if (nlpools == cap_lpools) {
        int c = cap_lpools ? 2 * cap_lpools : 8;
        if (c > MAX_LOCAL_POOLS) c = MAX_LOCAL_POOLS;
        lpool *a = c > cap_lpools ? realloc(lpools, (size_t)c * sizeof *a) : NULL;
        if (!a) return NULL;
        lpools = a;
        cap_lpools = c;
    }
    lpool *l = &lpools[nlpools++];
    *l = (lpool){0};
    return l;
}

static void end_lpool(lpool *l)
{
    if (l->p) {
        mproc_pool_terminate(l->p);
        mproc_pool_join(l->p, MPROC_FOREVER);
        mproc_pool_free(l->p);
    }
    free(l->args);
}

/* The local pool of a task (setup: its cluster pool's, or 0 for n
 * processes, CL_LOCAL_CPUS: this host's CPUs), made on first use; NULL
 * with *rc and *why on failure. */
static mproc_pool *local_pool(uint32_t setup, uint32_t n, int *rc, const char **why)
{
    lpool *l = find_lpool(setup, n);
    *why = "the rank could not start a local pool";
    if (setup && l && l->nomem) {
        *rc = MPROC_ENOMEM;
        *why = "the rank had no memory for the pool's setup";
        return NULL;
    }
    if (setup && (!l || l->bad)) {
        *rc = MPROC_EPROTO;
        *why = l ? "the pool's initializer cannot be found on this rank"
                 : "the rank has no setup for the task's pool";
        return NULL;
    }
    if (l && l->p) return l->p;
    if (!l && !(l = add_lpool())) {
        *rc = MPROC_ENOMEM;
        return NULL;
    }
    if (!setup) l->n = n;
    int procs = l->n == CL_LOCAL_CPUS ? mproc_cpu_count() : l->n > 4096 ? 4096 : (int)l->n;
    mproc_pool_opts o = {.processes = procs,
                         .maxtasksperchild = l->max_tasks,
                         .initializer = (mproc_task_fn)l->init,
                         .initargs = l->args,
                         .initargs_len = l->alen};
    if ((*rc = mproc_pool_new(&l->p, &o))) {
        mproc_log(MPROC_LOG_ERROR, "cluster: a rank's local pool of %d processes: %s", procs,
                  mproc_strerror(*rc));
        l->p = NULL;
        if (!setup) *l = lpools[--nlpools];
        return NULL;
    }
    return l->p;
}

/* (The analyzer takes the initargs' copy, kept in the global table, for
 * a leak.) */
MPROC__ANALYZER_OFF("-Wanalyzer-malloc-leak")
void mproc__cluster_rank_setup(const cl_task_hdr *h, void *init, const char *args, size_t len)
{
    if (!h->setup || find_lpool(h->setup, 0)) {
        mproc_log(MPROC_LOG_ERROR, "cluster: a malformed local pool setup (%u)", h->setup);
        return;
    }
    lpool *l = add_lpool();
    char *a = len ? malloc(len) : NULL;
    if (!l || (len && !a)) {
        /* Its tasks fail: with MPROC_ENOMEM while the setup's record is
         * kept (until the pool's drop), else as tasks of no setup. */
        if (l) *l = (lpool){.setup = h->setup, .nomem = true};
        free(a);
        mproc_log(MPROC_LOG_ERROR, "cluster: no memory for a local pool setup (%zu bytes)", len);
        return;
    }
    if (len) memcpy(a, args, len);
    *l = (lpool){.setup = h->setup,
                 .n = h->local ? h->local : 1,
                 .bad = (h->off || h->pathlen) && !init,
                 .max_tasks = h->count > INT_MAX ? INT_MAX : (int)h->count,
                 .init = init,
                 .args = a,
                 .alen = len};
}
MPROC__ANALYZER_ON

void mproc__cluster_rank_drop(uint32_t setup)
{
    lpool *l = setup ? find_lpool(setup, 0) : NULL;
    if (!l) return;
    for (job *j = jobs; j; j = j->next)
        if (l->p && j->pool == l->p) { /* the root drops a pool once its tasks ended */
            mproc_log(MPROC_LOG_ERROR, "cluster: a local pool dropped with tasks: kept");
            return;
        }
    end_lpool(l);
    *l = lpools[--nlpools];
}

void mproc__cluster_rank_submit(MPI_Comm comm, const cl_task_hdr *h, void *fn, const char *payload,
                                size_t plen)
{
    int rc = 0;
    const char *why;
    mproc_pool *p = local_pool(h->setup, h->local ? h->local : 1, &rc, &why);
    if (!p) {
        mproc__cluster_send_result(comm, h->id, rc, why, NULL, 0);
        return;
    }
    job *j = calloc(1, sizeof *j);
    if (!j) {
        mproc__cluster_send_result(comm, h->id, MPROC_ENOMEM, "no memory for the task", NULL, 0);
        return;
    }
    *j = (job){.id = h->id, .kind = h->kind, .pool = p};
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
    for (int i = 0; i < nlpools; i++) end_lpool(&lpools[i]);
    free(lpools);
    lpools = NULL;
    nlpools = cap_lpools = 0;
    while (jobs) { /* the root waits for every answer before STOP: none */
        job *j = jobs;
        jobs = j->next;
        mproc_future_free(j->f);
        free(j->in);
        free(j->out);
        free(j);
    }
}
