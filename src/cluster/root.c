/* The root's side: its thread, and the pool over ranks (cluster/cluster.h).
 *
 * Everything below is under one lock, `mu`, except the MPI calls, which
 * only the root's thread makes, and the completion of futures, which
 * happens with no lock held (a callback may call the pool). A task is in
 * the pending list until the thread sends it, then in its rank's list
 * until the rank answers. A pool is reference-counted: by its mproc_pool
 * and by each of its tasks not yet ended, so that a task ending after the
 * pool was freed finds it still there. */
#include "cluster/cluster.h"
#include "base/list.h"
#include "base/log.h"
#include "pool/backend.h"
#include "pool/future.h"
#include "sync/thread_cond.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { P_OPEN, P_CLOSED, P_TERMINATED };

typedef struct cpool {
    mproc__list node; /* in the list of pools */
    int state;
    int nworkers; /* it uses ranks 1..nworkers */
    size_t unfinished;
    int refs;
} cpool;

typedef struct cmap {
    mproc_future *f;
    char *out;
    size_t out_size;
    size_t chunks_left;
    bool dead; /* terminated: write nothing more into out */
    int rc;
    char *msg;
    pid_t pid;
} cmap;

typedef struct ctask {
    mproc__list node;
    uint64_t id;
    cpool *pool;
    mproc_future *f; /* an apply's */
    cmap *map;       /* a map chunk's */
    size_t first, count;
    void *msg;
    size_t len;
    int rank;      /* 0 until sent */
    bool detached; /* its pool was terminated while a rank held it */
    MPI_Request req;
} ctask;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_cv; /* wakes the thread */
static pthread_cond_t done_cv; /* a task ended */
static bool running, stopping;
static MPI_Comm comm;
static int size;
static int32_t *pids;
static pthread_t thr;
static mproc__list pend = MPROC__LIST_INIT(pend);
static mproc__list *held; /* [size]: the tasks each rank holds, in order */
static int *nheld;        /* [size] */
static size_t inflight;   /* tasks the ranks hold */
static mproc__list pools = MPROC__LIST_INIT(pools);
static uint64_t next_id;

static void pool_unref_locked(cpool *p)
{
    if (--p->refs == 0) free(p);
}

/* ---- ending tasks ------------------------------------------------------------ */

static void map_release(cmap *m)
{
    if (m->rc)
        mproc__future_fail(m->f, m->rc, m->msg, m->pid);
    else
        mproc__future_finish(m->f, NULL, 0);
    mproc_future_free(m->f);
    free(m->msg);
    free(m);
}

/* Ends t (no lock held): its future or its part of a map; res is taken
 * over (malloc'd) for an apply. The map's first error message is freed by
 * map_release when its last chunk ends (the analyzer, which follows one
 * chunk, sees it leak). */
MPROC__ANALYZER_OFF("-Wanalyzer-malloc-leak")
static void task_end(ctask *t, int rc, void *res, size_t len, const char *msg, pid_t pid)
{
    cmap *done_map = NULL;
    if (t->f) {
        if (rc == 0)
            mproc__future_finish(t->f, res, len);
        else
            mproc__future_fail(t->f, rc, msg, pid);
        mproc_future_free(t->f);
        res = NULL;
    }
    MPROC__LOCK(&mu);
    if (t->map) {
        cmap *m = t->map;
        if (rc == 0 && len != t->count * m->out_size) {
            rc = MPROC_EPROTO;
            msg = "a rank sent a map chunk's outputs of the wrong size";
        }
        if (rc == 0 && !m->dead && len && res) memcpy(m->out + t->first * m->out_size, res, len);
        if (rc && !m->rc) {
            m->rc = rc;
            m->msg = msg ? strdup(msg) : NULL;
            m->pid = pid;
        }
        if (--m->chunks_left == 0) done_map = m;
    }
    if (!t->detached) t->pool->unfinished--;
    pool_unref_locked(t->pool);
    pthread_cond_broadcast(&done_cv);
    MPROC__UNLOCK(&mu);
    if (done_map) map_release(done_map);
    free(res);
    free(t->msg);
    free(t);
}
MPROC__ANALYZER_ON

static void end_list(mproc__list *l, int rc, const char *msg)
{
    MPROC__LIST_FOREACH_SAFE (n, l) {
        mproc__list_remove(n);
        task_end(MPROC__CONTAINER_OF(n, ctask, node), rc, NULL, 0, msg, 0);
    }
}

/* With mu held: moves the pool's pending tasks (every pool's: NULL) to l. */
static void take_pending_locked(cpool *p, mproc__list *l)
{
    MPROC__LIST_FOREACH_SAFE (n, &pend) {
        ctask *t = MPROC__CONTAINER_OF(n, ctask, node);
        if (p && t->pool != p) continue;
        mproc__list_remove(n);
        mproc__list_insert_tail(l, n);
    }
}

/* ---- the root's thread --------------------------------------------------------- */

/* With mu held: the rank of p that holds the fewest tasks, if fewer than
 * CL_DEPTH; 0 if none. */
static int pick_locked(const cpool *p)
{
    int best = 0;
    for (int r = 1; r <= p->nworkers; r++)
        if (nheld[r] < CL_DEPTH && (!best || nheld[r] < nheld[best])) best = r;
    return best;
}

static void receive(MPI_Status *st)
{
    int n = 0, src = st->MPI_SOURCE;
    MPI_Get_count(st, MPI_BYTE, &n);
    char *buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf) mproc__panic("cluster: out of memory for a result of %d bytes", n);
    MPI_Recv(buf, n, MPI_BYTE, src, CL_TAG_RESULT, comm, MPI_STATUS_IGNORE);
    cl_result_hdr h = {0};
    bool ok = (size_t)n >= sizeof h;
    if (ok) memcpy(&h, buf, sizeof h);
    ok = ok && h.msglen <= (size_t)n - sizeof h && h.len == (size_t)n - sizeof h - h.msglen;
    MPROC__LOCK(&mu);
    ctask *t = NULL;
    if (src > 0 && src < size)
        MPROC__LIST_FOREACH (node, &held[src]) {
            ctask *c = MPROC__CONTAINER_OF(node, ctask, node);
            if (c->id == h.id) {
                t = c;
                break;
            }
        }
    if (t) {
        mproc__list_remove(&t->node);
        nheld[src]--;
        inflight--;
    }
    MPROC__UNLOCK(&mu);
    if (!t) {
        mproc_log(MPROC_LOG_ERROR, "cluster: rank %d sent a result for no task it held", src);
        free(buf);
        return;
    }
    MPI_Wait(&t->req, MPI_STATUS_IGNORE); /* the rank had the task: the send is over */
    if (!ok) {
        free(buf);
        task_end(t, MPROC_EPROTO, NULL, 0, "a rank sent a malformed result", 0);
        return;
    }
    char *msg = NULL;
    if (h.rc && h.msglen && (msg = malloc(h.msglen + 1))) {
        memcpy(msg, buf + sizeof h, h.msglen);
        msg[h.msglen] = '\0';
    }
    void *res = NULL;
    if (h.rc == 0 && h.len) {
        if (!(res = malloc(h.len))) {
            free(buf);
            task_end(t, MPROC_ENOMEM, NULL, 0, "no memory for the task's result", h.pid);
            return;
        }
        memcpy(res, buf + sizeof h + h.msglen, h.len);
    }
    free(buf);
    task_end(t, h.rc > 0 ? MPROC_EPROTO : h.rc, res, h.len, msg, h.pid);
    free(msg);
}

/* How the thread waits while ranks hold tasks and nothing came (idle: 0
 * after anything happened). For BACKOFF_SPIN_NS after the last event it
 * polls MPI again at once, only yielding the CPU, so that a result that
 * comes soon (a short task) is seen within microseconds. Then it sleeps
 * between polls, 20 us at first, doubling up to BACKOFF_MAX_NS: a long
 * task costs little CPU here, and its result waits at most that long (a
 * rank holds CL_DEPTH tasks, so it does not wait for the root meanwhile).
 * A sleep is a wait on wake_cv, so a task queued meanwhile is sent at
 * once; it is not taken when a pending task can be sent now. With no task
 * held by any rank the thread does not come here: it waits on wake_cv. */
#define BACKOFF_SPIN_NS 200000LL
#define BACKOFF_MAX_NS  200000LL
static void backoff(unsigned *idle, long long *since)
{
    unsigned k = (*idle)++;
    long long now = mproc_now_ns();
    if (k == 0) *since = now;
    if (now - *since < BACKOFF_SPIN_NS) {
        *idle = 1; /* the sleeps below count from 1 */
        sched_yield();
        return;
    }
    long long ns = 20000LL << (k - 1 < 8 ? k - 1 : 8);
    if (ns > BACKOFF_MAX_NS) ns = BACKOFF_MAX_NS;
    mproc__deadline dl = {.at_ns = now + ns, .forever = false};
    MPROC__LOCK(&mu);
    bool sendable = false;
    int room = 0;
    for (int r = 1; r < size; r++) room += nheld[r] < CL_DEPTH;
    if (room)
        MPROC__LIST_FOREACH (n, &pend)
            if (pick_locked(MPROC__CONTAINER_OF(n, ctask, node)->pool)) {
                sendable = true;
                break;
            }
    if (!sendable && !stopping) mproc__thread_cond_wait(&wake_cv, &mu, &dl);
    MPROC__UNLOCK(&mu);
}

static void *root_thread(void *arg)
{
    (void)arg;
    unsigned idle = 0;
    long long idle_since = 0;
    mproc__deadline forever;
    mproc__deadline_init(&forever, MPROC_FOREVER);
    ctask **batch = NULL;
    size_t cap = 0;
    MPROC__LOCK(&mu);
    for (;;) {
        /* Send what the ranks have room for, oldest first. */
        size_t nb = 0;
        int room = 0; /* ranks that can take a task: the scan ends when none can */
        for (int r = 1; r < size; r++) room += nheld[r] < CL_DEPTH;
        MPROC__LIST_FOREACH_SAFE (n, &pend) {
            if (room == 0) break;
            ctask *t = MPROC__CONTAINER_OF(n, ctask, node);
            int r = pick_locked(t->pool);
            if (!r) continue;
            if (t->f && !mproc__future_set_running(t->f, 0)) continue; /* being cancelled */
            if (nb == cap) {
                size_t c = cap ? 2 * cap : 64;
                ctask **b = realloc(batch, c * sizeof *b);
                if (!b) break;
                batch = b;
                cap = c;
            }
            mproc__list_remove(n);
            mproc__list_insert_tail(&held[r], n);
            if (++nheld[r] == CL_DEPTH) room--;
            inflight++;
            t->rank = r;
            batch[nb++] = t;
        }
        if (stopping && mproc__list_empty(&pend) && inflight == 0) break;
        if (nb == 0 && inflight == 0) { /* nothing to send, nothing to wait for */
            if (idle == 0 || mproc_now_ns() - idle_since < BACKOFF_SPIN_NS) {
                /* A caller that waits for a result often queues the next
                 * task at once: look again for a while before sleeping. */
                if (idle++ == 0) idle_since = mproc_now_ns();
                MPROC__UNLOCK(&mu);
                sched_yield();
                MPROC__LOCK(&mu);
                continue;
            }
            mproc__thread_cond_wait(&wake_cv, &mu, &forever);
            idle = 0;
            continue;
        }
        MPROC__UNLOCK(&mu);
        for (size_t i = 0; i < nb; i++) {
            ctask *t = batch[i];
            MPI_Isend(t->msg, (int)t->len, MPI_BYTE, t->rank, CL_TAG_TASK, comm, &t->req);
        }
        bool any = nb > 0;
        for (;;) {
            int flag = 0;
            MPI_Status st;
            MPI_Iprobe(MPI_ANY_SOURCE, CL_TAG_RESULT, comm, &flag, &st);
            if (!flag) break;
            receive(&st);
            any = true;
        }
        if (any)
            idle = 0;
        else
            backoff(&idle, &idle_since);
        MPROC__LOCK(&mu);
    }
    MPROC__UNLOCK(&mu);
    free(batch);
    for (int r = 1; r < size; r++) MPI_Send(NULL, 0, MPI_BYTE, r, CL_TAG_STOP, comm);
    MPI_Comm_free(&comm);
    return NULL;
}

int mproc__cluster_root_start(MPI_Comm c, int n, const int32_t *p)
{
    mproc__thread_cond_init(&wake_cv);
    mproc__thread_cond_init(&done_cv);
    held = calloc((size_t)n, sizeof *held);
    nheld = calloc((size_t)n, sizeof *nheld);
    pids = malloc((size_t)n * sizeof *pids);
    if (!held || !nheld || !pids) {
        free(held);
        free(nheld);
        free(pids);
        return MPROC_ENOMEM;
    }
    memcpy(pids, p, (size_t)n * sizeof *pids);
    for (int r = 0; r < n; r++) mproc__list_init(&held[r]);
    comm = c;
    size = n;
    stopping = false;
    if (pthread_create(&thr, NULL, root_thread, NULL) != 0) {
        free(held);
        free(nheld);
        free(pids);
        return MPROC_EAGAIN;
    }
    running = true;
    return 0;
}

/* With mu held: terminates p (its pending tasks to l; the futures of the
 * tasks ranks hold, referenced, to fs/maps, failed by the caller). */
static void terminate_locked(cpool *p, mproc__list *l, mproc_future ***fs, size_t *nfs)
{
    p->state = P_TERMINATED;
    take_pending_locked(p, l);
    for (int r = 1; held && r < size; r++) /* none held after shutdown */
        MPROC__LIST_FOREACH (n, &held[r]) {
            ctask *t = MPROC__CONTAINER_OF(n, ctask, node);
            if (t->pool != p || t->detached) continue;
            t->detached = true;
            p->unfinished--;
            mproc_future *f = t->f;
            if (t->map && !t->map->dead) {
                t->map->dead = true;
                f = t->map->f;
            } else if (t->map) {
                f = NULL;
            }
            if (!f) continue;
            mproc_future **nf = realloc(*fs, (*nfs + 1) * sizeof *nf);
            if (!nf) continue; /* it completes when its rank answers */
            *fs = nf;
            mproc__future_ref(f);
            (*fs)[(*nfs)++] = f;
        }
    pthread_cond_broadcast(&done_cv);
}

static void fail_all(mproc_future **fs, size_t n, const char *msg)
{
    for (size_t i = 0; i < n; i++) {
        mproc__future_fail(fs[i], MPROC_ESHUTDOWN, msg, 0);
        mproc_future_free(fs[i]);
    }
    free(fs);
}

void mproc__cluster_root_stop(void)
{
    MPROC__LOCK(&mu);
    if (!running) {
        MPROC__UNLOCK(&mu);
        return;
    }
    mproc__list l;
    mproc__list_init(&l);
    MPROC__LIST_FOREACH (n, &pools) {
        cpool *p = MPROC__CONTAINER_OF(n, cpool, node);
        p->state = P_TERMINATED;
    }
    take_pending_locked(NULL, &l);
    stopping = true;
    pthread_cond_broadcast(&wake_cv);
    MPROC__UNLOCK(&mu);
    end_list(&l, MPROC_ESHUTDOWN, "the cluster was shut down");
    pthread_join(thr, NULL);
    MPROC__LOCK(&mu);
    running = false;
    free(held);
    free(nheld);
    free(pids);
    held = NULL;
    nheld = NULL;
    pids = NULL;
    MPROC__UNLOCK(&mu);
}

int mproc__cluster_root_workers(void)
{
    MPROC__LOCK(&mu);
    int n = running && !stopping ? size - 1 : 0;
    MPROC__UNLOCK(&mu);
    return n;
}

/* ---- the pool over ranks (pool/backend.h) ------------------------------------- */

/* With mu held: the error of a new task of p, or 0. */
static int state_error_locked(const cpool *p)
{
    return running && !stopping && p->state == P_OPEN ? 0 : MPROC_ESHUTDOWN;
}

static void queue_locked(ctask *t, cpool *p)
{
    t->pool = p;
    t->id = ++next_id;
    memcpy(t->msg, &t->id, sizeof t->id); /* cl_task_hdr.id */
    p->unfinished++;
    p->refs++;
    mproc__list_insert_tail(&pend, &t->node);
}

/* Cancel: a task still pending is taken out and never sent. */
static bool withdraw(void *owner, mproc_future *f)
{
    (void)owner;
    ctask *t = NULL;
    MPROC__LOCK(&mu);
    MPROC__LIST_FOREACH (n, &pend) {
        ctask *c = MPROC__CONTAINER_OF(n, ctask, node);
        if (c->f == f) {
            t = c;
            break;
        }
    }
    if (t) {
        mproc__list_remove(&t->node);
        t->pool->unfinished--;
        pool_unref_locked(t->pool);
        pthread_cond_broadcast(&done_cv);
    }
    MPROC__UNLOCK(&mu);
    if (!t) return false;
    mproc_future_free(t->f); /* the owner's reference */
    free(t->msg);
    free(t);
    return true;
}

static int be_apply_async(void *ctx, mproc_task_fn fn, const void *arg, size_t arglen,
                          const mproc_task_opts *opts, mproc_future **out)
{
    cpool *p = ctx;
    mproc_task_opts o = opts ? *opts : (mproc_task_opts){0};
    if (o.timeout_ms > 0) return MPROC_ENOSYS; /* time limits: not yet on a cluster */
    cl_fn ref;
    int rc = mproc__cluster_fn_make((const void *)fn, &ref);
    if (rc) return rc;
    ctask *t = calloc(1, sizeof *t);
    if (!t) return MPROC_ENOMEM;
    t->msg = mproc__cluster_task_msg(&ref, CL_APPLY, 0, 0, 0, arg, arglen, &t->len, &rc);
    t->f = t->msg ? mproc__future_new(o.callback, o.error_callback, o.userdata) : NULL;
    if (!t->f) {
        free(t->msg);
        free(t);
        return rc ? rc : MPROC_ENOMEM;
    }
    mproc__future_set_withdraw(t->f, withdraw, p);
    MPROC__LOCK(&mu);
    rc = state_error_locked(p);
    if (!rc) {
        queue_locked(t, p);
        pthread_cond_signal(&wake_cv);
    }
    MPROC__UNLOCK(&mu);
    if (rc) {
        mproc_future_free(t->f);
        mproc_future_free(t->f);
        free(t->msg);
        free(t);
        return rc;
    }
    *out = t->f;
    return 0;
}

/* Every chunk task is either queued (then the thread owns it) or freed
 * below; the analyzer loses them across the loops. */
MPROC__ANALYZER_OFF("-Wanalyzer-malloc-leak")
static int be_map_async(void *ctx, mproc_map_fn fn, const void *in, size_t n, size_t in_size,
                        void *out, size_t out_size, const mproc_map_opts *opts, mproc_future **fut)
{
    cpool *p = ctx;
    const mproc_map_opts o = *opts;
    if ((n && ((!in && in_size) || (!out && out_size))) ||
        (n && in_size + out_size > SIZE_MAX / 2 / n) || o.timeout_ms < MPROC_FOREVER)
        return MPROC_EINVAL;
    if (o.timeout_ms > 0 || o.progress || o.progress_bar) return MPROC_ENOSYS;
    cl_fn ref;
    int rc = mproc__cluster_fn_make((const void *)fn, &ref);
    if (rc) return rc;
    size_t w = (size_t)p->nworkers;
    size_t cs = o.chunksize ? o.chunksize : (n + 4 * w - 1) / (4 * w);
    if (cs == 0) cs = 1;
    size_t nchunks = (n + cs - 1) / cs;
    cmap *m = calloc(1, sizeof *m);
    mproc_future *f = mproc__future_new(NULL, NULL, NULL);
    ctask **ts = calloc(nchunks ? nchunks : 1, sizeof *ts);
    rc = m && f && ts ? 0 : MPROC_ENOMEM;
    for (size_t c = 0; c < nchunks && !rc; c++) {
        size_t first = c * cs, count = n - first < cs ? n - first : cs;
        if (!(ts[c] = calloc(1, sizeof **ts))) {
            rc = MPROC_ENOMEM;
            break;
        }
        *ts[c] = (ctask){.map = m, .first = first, .count = count};
        if (count * out_size > (size_t)INT_MAX - sizeof(cl_result_hdr) - 4096)
            rc = MPROC_EMSGSIZE; /* the outputs would not come back in one message */
        else
            ts[c]->msg = mproc__cluster_task_msg(&ref, CL_MAP, count, in_size, out_size,
                                                 (const char *)in + first * in_size,
                                                 count * in_size, &ts[c]->len, &rc);
    }
    if (!rc) {
        (void)mproc__future_set_running(f, 0); /* a map is not cancelled (its out is written) */
        *m = (cmap){.f = f, .out = out, .out_size = out_size, .chunks_left = nchunks};
        MPROC__LOCK(&mu);
        rc = state_error_locked(p);
        for (size_t c = 0; c < nchunks && !rc; c++) queue_locked(ts[c], p);
        if (!rc && nchunks) pthread_cond_signal(&wake_cv);
        MPROC__UNLOCK(&mu);
    }
    if (rc) {
        if (ts) {
            for (size_t c = 0; c < nchunks; c++) {
                ctask *t = ts[c];
                if (t) free(t->msg);
                free(t);
            }
            free(ts);
        }
        free(m);
        if (f) mproc_future_free(f), mproc_future_free(f);
        return rc;
    }
    free(ts);
    if (nchunks == 0) map_release(m); /* an empty map is done at once */
    *fut = f;
    return 0;
}
MPROC__ANALYZER_ON

static int be_close(void *ctx)
{
    cpool *p = ctx;
    MPROC__LOCK(&mu);
    if (p->state == P_OPEN) p->state = P_CLOSED;
    MPROC__UNLOCK(&mu);
    return 0;
}

static int be_terminate(void *ctx)
{
    cpool *p = ctx;
    mproc__list l;
    mproc__list_init(&l);
    mproc_future **fs = NULL;
    size_t nfs = 0;
    MPROC__LOCK(&mu);
    terminate_locked(p, &l, &fs, &nfs);
    MPROC__UNLOCK(&mu);
    end_list(&l, MPROC_ESHUTDOWN, "the pool was terminated");
    fail_all(fs, nfs, "the pool was terminated");
    return 0;
}

static int be_join(void *ctx, int timeout_ms)
{
    cpool *p = ctx;
    mproc__deadline dl;
    int rc = mproc__deadline_init(&dl, timeout_ms);
    if (rc) return rc;
    MPROC__LOCK(&mu);
    if (p->state == P_OPEN && running && !stopping) rc = MPROC_EBADSTATE;
    while (!rc && p->unfinished)
        if (mproc__thread_cond_wait(&done_cv, &mu, &dl) == MPROC_ETIMEDOUT) rc = MPROC_ETIMEDOUT;
    MPROC__UNLOCK(&mu);
    return rc;
}

static size_t be_workers(void *ctx, pid_t *out, size_t cap)
{
    cpool *p = ctx;
    MPROC__LOCK(&mu);
    size_t n = running && !stopping && p->state != P_TERMINATED ? (size_t)p->nworkers : 0;
    for (size_t i = 0; out && i < n && i < cap; i++) out[i] = pids[i + 1];
    MPROC__UNLOCK(&mu);
    return n;
}

static void be_free(void *ctx)
{
    cpool *p = ctx;
    MPROC__LOCK(&mu);
    bool open = p->state != P_TERMINATED;
    MPROC__UNLOCK(&mu);
    if (open) be_terminate(p);
    MPROC__LOCK(&mu);
    mproc__list_remove(&p->node);
    pool_unref_locked(p);
    MPROC__UNLOCK(&mu);
}

static const mproc__pool_backend ops = {
    .apply_async = be_apply_async,
    .map_async = be_map_async,
    .close = be_close,
    .terminate = be_terminate,
    .join = be_join,
    .workers = be_workers,
    .free = be_free,
};

int mproc__cluster_root_pool_new(mproc_pool **out, int nworkers)
{
    cpool *p = calloc(1, sizeof *p);
    if (!p) return MPROC_ENOMEM;
    *p = (cpool){.state = P_OPEN, .nworkers = nworkers, .refs = 1};
    int rc = mproc__pool_new_backend(out, &ops, p);
    if (rc) {
        free(p);
        return rc;
    }
    MPROC__LOCK(&mu);
    mproc__list_insert_tail(&pools, &p->node);
    MPROC__UNLOCK(&mu);
    return 0;
}
