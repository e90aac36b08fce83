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
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { P_OPEN, P_CLOSED, P_TERMINATED };

typedef struct cpool {
    mproc__list node; /* in the list of pools */
    int state;
    int nworkers; /* it uses ranks 1..nworkers */
    size_t unfinished;
    int refs;
    int holds;           /* imaps still producing (pool/backend.h hold) */
    uint32_t local;      /* cl_task_hdr.local of its tasks: 0, ranks only */
    int depth;           /* tasks one rank holds for it at most */
    size_t width;        /* processes that run its tasks: ranks x local */
    int task_timeout_ms; /* its tasks' default time limit; 0: none */
    /* The setup of its ranks' local pools (CL_SETUP: an initializer or
     * maxtasksperchild for them; 0 and NULL: none), and the ranks sent it. */
    uint32_t setup;
    void *setup_msg;
    size_t setup_len;
    bool *setup_sent; /* [size] */
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
    /* Progress (mproc_map_opts): items whose chunks ended, of n. */
    size_t n, done;
    void (*progress)(size_t done, size_t total, void *userdata);
    void *progress_ud;
    bool bar;
    long long t0, last_bar;
    pthread_mutex_t pmu; /* the progress calls, one at a time and in order */
} cmap;

typedef struct ctask {
    mproc__list node;
    uint64_t id;
    cpool *pool;
    mproc_future *f;     /* an apply's */
    cmap *map;           /* a map chunk's */
    pool_task_hook hook; /* an imap chunk's (pool/backend.h map_chunk) */
    void *ud;
    uint64_t seq;
    bool hook_ended; /* its hook was called (terminate): not again */
    size_t first, count;
    void *msg;
    size_t len;
    /* A map chunk's inputs, copied into the end of msg when it is sent
     * (not before: the ranks start on the first chunk at once). Only
     * while the task is pending: the map's caller keeps them until the
     * map is done, and a pending chunk is never sent after that. */
    const char *inputs;
    size_t inputs_len;
    bool local_run;  /* it runs in a local pool of its rank (cl_task_hdr.setup applies) */
    bool with_setup; /* its pool's setup is sent to its rank before it */
    int rank;        /* 0 until sent */
    int want;        /* the rank it must go to (a pool's initializer); 0: any */
    bool detached;   /* its pool was terminated while a rank held it */
    bool kept;       /* its rank died: MPI may still read msg, left allocated */
    MPI_Request req;
} ctask;

/* A zeroed task, with room for a message of `inline_len` bytes after it
 * (0: none). Malloc'd, not calloc'd: glibc's calloc skips its per-thread
 * cache, and a round trip makes one task; a small task's message is in
 * the same block, one allocation less. */
static ctask *task_new(size_t inline_len)
{
    ctask *t = malloc(sizeof *t + inline_len);
    if (t) *t = (ctask){0};
    return t;
}

static void task_free(ctask *t)
{
    if (t->kept) return;
    if (t->msg != (void *)(t + 1)) mproc__cluster_msg_free(t->msg);
    free(t);
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_cv; /* wakes the thread */
static pthread_cond_t done_cv; /* a task ended */
static bool running, stopping;
static MPI_Comm comm;
static int size;
static int32_t *pids;
static pthread_t thr;
static mproc__list pend = MPROC__LIST_INIT(pend);
/* Whether pend may hold tasks (or drops pools): set when one is queued,
 * cleared by a round or a sending caller that finds both empty (all under
 * mu), read by a round without the lock, so that the polls while a task
 * runs take no lock. */
static _Atomic bool queued;
static mproc__list *held; /* [size]: the tasks each rank holds, in order */
static int *nheld;        /* [size] */
static size_t inflight;   /* tasks the ranks hold */
static mproc__list pools = MPROC__LIST_INIT(pools);
static uint64_t next_id;
static int *pidfds;              /* [size]: a pidfd of each rank on the root's host, or -1 */
static bool *dead;               /* [size]: ranks whose process is gone */
static int max_depth = CL_DEPTH; /* the largest depth of any pool */
/* The heartbeat (beat.c): its communicator, T in ms (0: none), when each
 * rank's last beat came, and when the root sends its next ones. Only the
 * root's thread uses them once it runs. */
static MPI_Comm beat_comm = MPI_COMM_NULL;
static int beat_ms;
static long long *beat_last; /* [size] */
/* The next beat's time: written by the maker of the MPI calls, read by
 * the thread when it sleeps while a caller makes them. */
static _Atomic long long beat_next;

/* Pools whose tasks all ended, whose ranks hold their setup: the maker of
 * the MPI calls tells those ranks (CL_DROP), then frees them. */
static mproc__list drops = MPROC__LIST_INIT(drops);
static void pool_free(cpool *p)
{
    bool sent_to_dead = false; /* MPI may still read the setup: left allocated */
    for (int r = 1; p->setup_sent && dead && r < size; r++)
        sent_to_dead |= p->setup_sent[r] && dead[r];
    if (!sent_to_dead) mproc__cluster_msg_free(p->setup_msg);
    free(p->setup_sent);
    free(p);
}

static void pool_unref_locked(cpool *p)
{
    if (--p->refs) return;
    bool told = false;
    for (int r = 1; p->setup_sent && running && !stopping && r < size; r++)
        told |= p->setup_sent[r];
    if (!told) {
        pool_free(p);
        return;
    }
    mproc__list_insert_tail(&drops, &p->node); /* not in pools: be_free took it out */
    atomic_store_explicit(&queued, true, memory_order_release);
    pthread_cond_signal(&wake_cv);
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
    pthread_mutex_destroy(&m->pmu);
    free(m);
}

/* A map's chunk of count items ended (no lock held): its progress call
 * and bar, as a process pool's map makes them. */
static void map_progress(cmap *m, size_t count)
{
    if (!m->progress && !m->bar) return;
    MPROC__LOCK(&m->pmu);
    m->done += count;
    if (m->progress) m->progress(m->done, m->n, m->progress_ud);
    if (m->bar) mproc__map_bar(m->done, m->n, m->t0, &m->last_bar, m->done == m->n);
    MPROC__UNLOCK(&m->pmu);
}

/* Ends t (no lock held): its future or its part of a map; res is taken
 * over (malloc'd) for an apply, view (not taken over) holds the bytes of
 * a map's or an imap's chunk. The map's first error message is freed by
 * map_release when its last chunk ends (the analyzer, which follows one
 * chunk, sees it leak). */
MPROC__ANALYZER_OFF("-Wanalyzer-malloc-leak")
static void task_end(ctask *t, int rc, void *res, size_t len, const char *msg, pid_t pid,
                     const void *view)
{
    const void *bytes = res ? res : view;
    cmap *done_map = NULL;
    if (t->hook) {
        MPROC__LOCK(&mu);
        bool call = !t->hook_ended;
        t->hook_ended = true;
        MPROC__UNLOCK(&mu);
        if (call) t->hook(t->ud, t->seq, t->count, rc, bytes, len, msg, pid);
    }
    if (t->f) {
        if (rc == 0)
            mproc__future_finish(t->f, res, len);
        else
            mproc__future_fail(t->f, rc, msg, pid);
        mproc_future_free(t->f);
        res = NULL;
    }
    bool report = false; /* a map's progress: not after terminate failed it */
    MPROC__LOCK(&mu);
    if (t->map) {
        cmap *m = t->map;
        report = !m->dead;
        if (rc == 0 && len != t->count * m->out_size) {
            rc = MPROC_EPROTO;
            msg = "a rank sent a map chunk's outputs of the wrong size";
        }
        if (rc == 0 && !m->dead && len && bytes)
            memcpy(m->out + t->first * m->out_size, bytes, len);
        if (rc && !m->rc) {
            m->rc = rc;
            m->msg = msg ? strdup(msg) : NULL;
            m->pid = pid;
        }
    }
    if (!t->detached) t->pool->unfinished--;
    pool_unref_locked(t->pool);
    pthread_cond_broadcast(&done_cv);
    MPROC__UNLOCK(&mu);
    if (t->map) { /* the map lives until its last chunk is counted */
        if (report) map_progress(t->map, t->count);
        MPROC__LOCK(&mu);
        if (--t->map->chunks_left == 0) done_map = t->map;
        MPROC__UNLOCK(&mu);
    }
    if (done_map) map_release(done_map);
    free(res);
    task_free(t);
}
MPROC__ANALYZER_ON

static void end_list(mproc__list *l, int rc, const char *msg)
{
    MPROC__LIST_FOREACH_SAFE (n, l) {
        mproc__list_remove(n);
        task_end(MPROC__CONTAINER_OF(n, ctask, node), rc, NULL, 0, msg, 0, NULL);
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
 * p->depth; 0 if none. */
static int pick_locked(const cpool *p)
{
    int best = 0;
    for (int r = 1; r <= p->nworkers; r++)
        if (nheld[r] < p->depth && (!best || nheld[r] < nheld[best])) best = r;
    return best;
}

/* The results are received into a buffer kept from one to the next
 * (buf.c: a map chunk's outputs are megabytes). A result is used before
 * its task ends, so a callback that steps (and receives) finds it free. */
static cl_kbuf rx;
/* A result is received into rxp by a receive from any rank posted before
 * it comes (wire.c), one larger than that into rx. */
static cl_kbuf rxp;
static MPI_Request rx_req = MPI_REQUEST_NULL;

static void receive(int src, const char *buf, size_t n)
{
    cl_result_hdr h = {0};
    bool ok = n >= sizeof h;
    if (ok) memcpy(&h, buf, sizeof h);
    ok = ok && h.msglen <= n - sizeof h && h.len == n - sizeof h - h.msglen;
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
    /* A rank taken for dead (no heartbeat) that was only frozen may answer
     * later: its tasks have failed already. */
    bool late = !t && src > 0 && src < size && dead[src];
    MPROC__UNLOCK(&mu);
    if (!t) {
        if (!late)
            mproc_log(MPROC_LOG_ERROR, "cluster: rank %d sent a result for no task it held", src);
        return;
    }
    if (t->req != MPI_REQUEST_NULL) MPI_Wait(&t->req, MPI_STATUS_IGNORE); /* the send is over */
    if (!ok) {
        task_end(t, MPROC_EPROTO, NULL, 0, "a rank sent a malformed result", 0, NULL);
        return;
    }
    char *msg = NULL;
    if (h.rc && h.msglen && (msg = malloc(h.msglen + 1))) {
        memcpy(msg, buf + sizeof h, h.msglen);
        msg[h.msglen] = '\0';
    }
    /* An apply's future takes its result over (a copy); a map's chunk is
     * copied from here into its outputs, an imap's by its hook. */
    const char *bytes = buf + sizeof h + h.msglen;
    void *res = NULL;
    if (h.rc == 0 && h.len && t->f) {
        if (!(res = malloc(h.len))) {
            task_end(t, MPROC_ENOMEM, NULL, 0, "no memory for the task's result", h.pid, NULL);
            return;
        }
        memcpy(res, bytes, h.len);
    }
    task_end(t, h.rc > 0 ? MPROC_EPROTO : h.rc, res, h.len, msg, h.pid, bytes);
    free(msg);
}

/* How the thread waits while ranks hold tasks and nothing came (idle: 0
 * after anything happened). For BACKOFF_SPIN_NS after the last event it
 * polls MPI again at once, only yielding the CPU, so that a result that
 * comes soon (a short task) is seen within microseconds. Then it sleeps
 * between polls, 20 us at first, doubling up to BACKOFF_MAX_NS: a long
 * task costs little CPU here, and its result waits at most that long (a
 * rank holds CL_DEPTH tasks, so it does not wait for the root meanwhile).
 * When the wait before the last event outlasted the spin (results come
 * far apart: long tasks, a map's chunks), the next wait sleeps at once:
 * spinning after every result would take a CPU from the ranks when they
 * share the host's CPUs (a yield does not give it back for long), and its
 * first sleep is a quarter of that last wait, not 20 us: fewer wake-ups
 * while the ranks, each holding its next task, need nothing. A result
 * that comes within 200 us makes the waits spin again.
 * A sleep is a wait on wake_cv, so a task queued meanwhile is sent at
 * once; it is not taken when a pending task can be sent now. With no task
 * held by any rank the thread does not come here: it waits on wake_cv. */
/* With mu held: whether a pending task can be sent now, or a pool's end
 * told its ranks. */
static bool sendable_locked(void)
{
    if (!mproc__list_empty(&drops)) return true;
    int room = 0;
    for (int r = 1; r < size; r++) room += nheld[r] < CL_DEPTH;
    if (room)
        MPROC__LIST_FOREACH (n, &pend)
            if (pick_locked(MPROC__CONTAINER_OF(n, ctask, node)->pool)) return true;
    return false;
}

#define BACKOFF_SPIN_NS 200000LL
#define BACKOFF_MAX_NS  500000LL
/* The thread's: its last poll of the current wait, whether it spins, and
 * its first sleep. */
static long long wait_last, wait_first_ns;
static bool wait_spins = true;
static void backoff(unsigned *idle, long long *since)
{
    unsigned k = (*idle)++;
    long long now = mproc_now_ns();
    if (k == 0) { /* an event ended the wait from *since to wait_last (if any) */
        long long waited = *since ? wait_last - *since : 0;
        wait_spins = waited < BACKOFF_SPIN_NS;
        wait_first_ns = wait_spins ? 20000LL : waited / 4;
        *since = now;
    }
    wait_last = now;
    if (wait_spins && now - *since < BACKOFF_SPIN_NS) {
        *idle = 1; /* the sleeps below count from 1 */
        sched_yield();
        return;
    }
    unsigned doublings = k > 1 ? k - 1 : 0;
    long long ns = wait_first_ns << (doublings < 8 ? doublings : 8);
    if (ns > BACKOFF_MAX_NS) ns = BACKOFF_MAX_NS;
    mproc__deadline dl = {.at_ns = now + ns, .forever = false};
    MPROC__LOCK(&mu);
    if (!sendable_locked() && !stopping) mproc__thread_cond_wait(&wake_cv, &mu, &dl);
    MPROC__UNLOCK(&mu);
}

/* ---- ranks that die --------------------------------------------------------- */

/* With mu held: whether every rank of p died. */
static bool pool_dead_locked(const cpool *p)
{
    for (int r = 1; r <= p->nworkers; r++)
        if (!dead[r]) return false;
    return true;
}

/* With mu held: moves the pending tasks of pools whose ranks all died to l. */
static void take_orphans_locked(mproc__list *l)
{
    MPROC__LIST_FOREACH_SAFE (n, &pend) {
        ctask *t = MPROC__CONTAINER_OF(n, ctask, node);
        if (!pool_dead_locked(t->pool)) continue;
        mproc__list_remove(n);
        mproc__list_insert_tail(l, n);
    }
}

/* The root's thread: rank r is dead (why: "died", "sent no heartbeat
 * for N ms"). The tasks it held fail with MPROC_EWORKERDIED (their messages are
 * left allocated: MPI may still read them), it gets no more tasks, and the
 * tasks of a pool left with no rank fail too. */
static void rank_dead(int r, const char *why)
{
    mproc__list gone;
    mproc__list_init(&gone);
    char msg[160];
    MPROC__LOCK(&mu);
    pid_t pid = pids[r];
    snprintf(msg, sizeof msg, "cluster rank %d (pid %d) %s", r, (int)pid, why);
    mproc_log(MPROC_LOG_ERROR, "cluster: rank %d (pid %d) %s: its tasks fail", r, (int)pid, why);
    dead[r] = true;
    MPROC__LIST_FOREACH_SAFE (n, &held[r]) {
        ctask *t = MPROC__CONTAINER_OF(n, ctask, node);
        if (t->req != MPI_REQUEST_NULL) MPI_Request_free(&t->req);
        t->kept = true; /* MPI may still read its message: left allocated */
        mproc__list_remove(n);
        mproc__list_insert_tail(&gone, n);
        inflight--;
    }
    nheld[r] = INT_MAX / 2; /* never picked again, whatever a pool's depth */
    take_orphans_locked(&gone);
    MPROC__LIST_FOREACH_SAFE (n, &pend) { /* tasks that must go to r alone */
        if (MPROC__CONTAINER_OF(n, ctask, node)->want != r) continue;
        mproc__list_remove(n);
        mproc__list_insert_tail(&gone, n);
    }
    MPROC__UNLOCK(&mu);
    MPROC__LIST_FOREACH_SAFE (n, &gone) {
        mproc__list_remove(n);
        task_end(MPROC__CONTAINER_OF(n, ctask, node), MPROC_EWORKERDIED, NULL, 0, msg, pid, NULL);
    }
}

/* The root's thread, every CL_WATCH_NS: a rank on this host whose process
 * is gone is dead. (dead[] is written by this thread only.) */
static void watch_ranks(struct timespec *last)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((now.tv_sec - last->tv_sec) * 1000000000L + (now.tv_nsec - last->tv_nsec) < CL_WATCH_NS)
        return;
    *last = now;
    for (int r = 1; r < size; r++) {
        if (dead[r] || pidfds[r] < 0) continue;
        struct pollfd p = {.fd = pidfds[r], .events = POLLIN};
        if (poll(&p, 1, 0) > 0) rank_dead(r, "died");
    }
}

/* The root's thread, every T/5 ms when the heartbeat is on (no lock
 * held): a beat to every live rank, the ranks' beats taken, and a rank
 * silent for T ms is dead. The beats are taken before the silences are
 * judged, so that a root that was itself held up (a long callback) takes
 * no rank for dead. */
static void heartbeat(void)
{
    static const char beat = 0; /* MPI may read it after the request is freed */
    long long now = mproc_now_ns(), t_ns = (long long)beat_ms * 1000000LL;
    atomic_store_explicit(&beat_next, now + (t_ns / 5 > 0 ? t_ns / 5 : 1), memory_order_relaxed);
    for (int r = 1; r < size; r++) {
        if (dead[r]) continue;
        MPI_Request rq;
        MPI_Isend(&beat, 1, MPI_BYTE, r, CL_TAG_BEAT, beat_comm, &rq);
        MPI_Request_free(&rq);
    }
    for (;;) {
        int flag = 0;
        char b;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, CL_TAG_BEAT, beat_comm, &flag, &st);
        if (!flag) break;
        MPI_Recv(&b, 1, MPI_BYTE, st.MPI_SOURCE, CL_TAG_BEAT, beat_comm, MPI_STATUS_IGNORE);
        if (st.MPI_SOURCE > 0 && st.MPI_SOURCE < size) beat_last[st.MPI_SOURCE] = now;
    }
    for (int r = 1; r < size; r++) {
        if (dead[r] || now - beat_last[r] <= t_ns) continue;
        char why[64];
        snprintf(why, sizeof why, "sent no heartbeat for %lld ms",
                 (now - beat_last[r]) / 1000000LL);
        rank_dead(r, why);
    }
}

/* The tasks being sent (the root's thread only): picked under mu, sent
 * without it. A batch is sent in full before any result is received, so
 * that a callback run meanwhile (which may step, below) finds it free. */
static ctask **batch;
static size_t batch_cap;
static struct timespec watched; /* watch_ranks' last look */

/* A batch copies at most BATCH_COPY_BYTES of map inputs into its chunks'
 * messages, or one chunk's: the first chunk of a map goes out before the
 * next ones are copied (the next round picks them). */
#define BATCH_COPY_BYTES (256u << 10)

/* With mu held: the pending tasks the ranks have room for, oldest first,
 * moved to their ranks' lists and to batch; how many. (The analyzer, on
 * the longer paths through a submit that sends, takes batch's realloc
 * for a leak when it fails.) */
MPROC__ANALYZER_OFF("-Wanalyzer-malloc-leak")
static size_t pick_batch_locked(void)
{
    size_t nb = 0, copied = 0;
    int room = 0; /* ranks that can take a task: the scan ends when none can */
    for (int r = 1; r < size; r++) room += nheld[r] < max_depth;
    MPROC__LIST_FOREACH_SAFE (n, &pend) {
        if (room == 0) break;
        ctask *t = MPROC__CONTAINER_OF(n, ctask, node);
        int r = t->want ? (nheld[t->want] < t->pool->depth ? t->want : 0) : pick_locked(t->pool);
        if (!r) continue;
        if (nb && t->inputs && copied + t->inputs_len > BATCH_COPY_BYTES) break;
        if (t->f && !mproc__future_set_running(t->f, 0)) continue; /* being cancelled */
        if (nb == batch_cap) {
            size_t c = batch_cap ? 2 * batch_cap : 64;
            ctask **b = realloc(batch, c * sizeof *b);
            if (!b) break;
            batch = b;
            batch_cap = c;
        }
        if (t->inputs) {
            memcpy((char *)t->msg + t->len - t->inputs_len, t->inputs, t->inputs_len);
            copied += t->inputs_len;
            t->inputs = NULL;
        }
        if (t->local_run && t->pool->setup_sent && !t->pool->setup_sent[r])
            t->with_setup = t->pool->setup_sent[r] = true;
        mproc__list_remove(n);
        mproc__list_insert_tail(&held[r], n);
        if (++nheld[r] == max_depth) room--;
        inflight++;
        t->rank = r;
        batch[nb++] = t;
    }
    return nb;
}
MPROC__ANALYZER_ON

/* No lock held: the tasks batch[0..nb) sent to their ranks. */
static void send_batch(size_t nb)
{
    for (size_t i = 0; i < nb; i++) {
        ctask *t = batch[i];
        if (t->with_setup) {  /* first: a rank takes its messages in order */
            MPI_Request sreq; /* its bytes are kept until the pool is freed: after the answer */
            mproc__cluster_isend(t->pool->setup_msg, t->pool->setup_len, t->rank, CL_TAG_TASK, comm,
                                 &sreq);
            MPI_Request_free(&sreq);
        }
        if (t->len <= CL_EAGER_BYTES) { /* the answer will say it was sent */
            MPI_Isend(t->msg, (int)t->len, MPI_BYTE, t->rank, CL_TAG_TASK, comm, &t->req);
            MPI_Request_free(&t->req);
            continue;
        }
        mproc__cluster_isend(t->msg, t->len, t->rank, CL_TAG_TASK, comm, &t->req);
    }
}

/* No lock held: sends batch[0..nb), then receives every result that has
 * come (their futures complete here), or only until the future `until`
 * (if not NULL) is done: a caller waiting for it returns at once, and the
 * receive of the next result is posted by the next round, while a task is
 * on its way, not on a round trip's path. Whether anything was sent or
 * came. */
static bool send_and_receive(size_t nb, const mproc_future *until)
{
    send_batch(nb);
    bool any = nb > 0;
    MPI_Status st;
    while (mproc__cluster_posted(comm, MPI_ANY_SOURCE, CL_TAG_RESULT, &rxp, &rx_req, &st)) {
        size_t n = 0;
        const char *buf = mproc__cluster_taken(comm, &st, &rxp, &rx, &n);
        receive(st.MPI_SOURCE, buf, n);
        any = true;
        if (until && mproc_future_done(until)) break;
    }
    return any;
}

/* With mu held (dropped meanwhile): when no task can be sent and no rank
 * holds one, the pending tasks of pools whose ranks all died fail;
 * whether any did. */
static bool end_orphans_locked(size_t nb)
{
    if (nb || inflight || mproc__list_empty(&pend)) return false;
    mproc__list orphans;
    mproc__list_init(&orphans);
    take_orphans_locked(&orphans);
    bool took = !mproc__list_empty(&orphans);
    MPROC__UNLOCK(&mu);
    end_list(&orphans, MPROC_EWORKERDIED, "every rank of the pool died");
    MPROC__LOCK(&mu);
    return took;
}

/* The maker of the MPI calls, no lock held: the ranks that hold the setup
 * of a pool of l are told that it ended (CL_DROP), and the pools freed. */
static void send_drops(mproc__list *l)
{
    MPROC__LIST_FOREACH_SAFE (n, l) {
        cpool *p = MPROC__CONTAINER_OF(n, cpool, node);
        mproc__list_remove(n);
        cl_task_hdr h = {.kind = CL_DROP, .setup = p->setup};
        for (int r = 1; r < size; r++) /* tiny: MPI sends it at once */
            if (p->setup_sent[r] && !dead[r])
                MPI_Send(&h, (int)sizeof h, MPI_BYTE, r, CL_TAG_TASK, comm);
        MPROC__LOCK(&mu);
        pool_free(p);
        MPROC__UNLOCK(&mu);
    }
}

/* One round of the MPI calls (their maker only, no lock held): the
 * heartbeat when due, the pending tasks the ranks have room for sent, the
 * results that came received (until: send_and_receive's), the ranks on
 * this host watched; whether anything was sent or came. */
static bool round_of_calls(bool timers, const mproc_future *until)
{
    if (timers && beat_ms &&
        mproc_now_ns() >= atomic_load_explicit(&beat_next, memory_order_relaxed))
        heartbeat();
    size_t nb = 0;
    bool any = false;
    mproc__list gone;
    mproc__list_init(&gone);
    if (atomic_load_explicit(&queued, memory_order_acquire)) {
        MPROC__LOCK(&mu);
        nb = pick_batch_locked();
        any = end_orphans_locked(nb);
        MPROC__LIST_FOREACH_SAFE (n, &drops) {
            mproc__list_remove(n);
            mproc__list_insert_tail(&gone, n);
        }
        if (mproc__list_empty(&pend)) atomic_store_explicit(&queued, false, memory_order_relaxed);
        MPROC__UNLOCK(&mu);
    }
    if (!mproc__list_empty(&gone)) {
        send_drops(&gone);
        any = true;
    }
    any |= send_and_receive(nb, until);
    if (timers) watch_ranks(&watched);
    return any;
}

/* The maker of the MPI calls makes them in a callback that waits for
 * another task (a future's result, apply, map, futures_wait,
 * as_completed, an imap, a join): nobody else would (pool/future.h step).
 * One round, then, if nothing happened, a sleep of up to STEP_SLEEP_NS
 * (never past dl), cut short when a task is queued. */
#define STEP_SLEEP_NS 50000LL
static void step(void *ctx, const mproc__deadline *dl)
{
    (void)ctx;
    if (round_of_calls(true, NULL)) return;
    mproc__deadline nap = {.at_ns = mproc_now_ns() + STEP_SLEEP_NS, .forever = false};
    if (!dl->forever && dl->at_ns < nap.at_ns) nap.at_ns = dl->at_ns;
    MPROC__LOCK(&mu);
    if (!sendable_locked()) mproc__thread_cond_wait(&wake_cv, &mu, &nap);
    MPROC__UNLOCK(&mu);
}

/* ---- a waiting caller makes the calls ---------------------------------------- */

/* A thread that waits for a task's future makes the MPI calls itself
 * while results keep coming (drive): a round trip then costs no hand-over
 * between it and the root's thread, which on a loaded or bound host costs
 * more than the trip (two wake-ups). Whoever makes the calls holds
 * `maker` (under mu): the thread, a driving caller, or a submitting
 * caller that sends its task at once (queued_locked). The MPI calls are
 * never made by two threads at once, so MPI_THREAD_SERIALIZED is
 * enough. */
enum { MAKER_NONE, MAKER_THREAD, MAKER_CALLER, MAKER_SENDER };
static int maker;
/* When a caller last drove. While callers drive, the thread is not woken
 * when a task is queued (the caller sends it, and will drive for its
 * result): it looks every LAZY_NS instead. DRIVE_RECENT_NS after the last
 * drive it is woken again, as for callers that never wait (imap, done
 * callbacks). */
static long long last_drive = LLONG_MIN / 2;
#define DRIVE_RECENT_NS 10000000LL
#define LAZY_NS         1000000LL
/* A driving caller polls without yielding the CPU for DRIVE_SPIN_NS after
 * the last event, then yielding it; after DRIVE_IDLE_NS with nothing it
 * hands the calls back to the thread and sleeps on its future. */
#define DRIVE_SPIN_NS 50000LL
#define DRIVE_IDLE_NS 200000LL
#define DRIVE_CHECK   32

/* The coarse clock (a few ns, against some 30 for the precise one), which
 * is never ahead of the precise clock and at most a tick behind it. */
static long long coarse_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Read on every submit, with the coarse clock: "lately" may last a tick
 * longer. */
static bool drove_lately_locked(void)
{
    return coarse_now_ns() - last_drive < DRIVE_RECENT_NS;
}

/* The drive hook of the cluster's futures (pool/future.h). Tasks that end
 * meanwhile end in this thread: their callbacks run here. */
static void drive(void *owner, mproc_future *f, const mproc__deadline *dl)
{
    (void)owner;
    long long t0 = 0; /* when it began to wait for the calls' maker */
    MPROC__LOCK(&mu);
    for (;;) { /* the calls are taken over when nobody makes them */
        if (!running || stopping || maker == MAKER_CALLER || mproc_future_done(f)) {
            MPROC__UNLOCK(&mu); /* another caller drives */
            return;
        }
        if (maker == MAKER_NONE) break;
        MPROC__UNLOCK(&mu); /* the thread's round, or a send, ends soon */
        sched_yield();
        long long t = mproc_now_ns();
        if (!t0) t0 = t;
        if (t - t0 > DRIVE_IDLE_NS) return; /* the thread is long in a callback */
        MPROC__LOCK(&mu);
    }
    maker = MAKER_CALLER;
    last_drive = coarse_now_ns();
    MPROC__UNLOCK(&mu);
    mproc__future_set_thread_step(step, NULL); /* for a callback that waits */
    /* The precise clock is read, and the heartbeat and the ranks looked
     * after, every DRIVE_CHECK rounds and after each event that did not
     * end the wait: a round is a poll of a fraction of a microsecond, a
     * clock read is not much less. A round trip whose result comes within
     * DRIVE_CHECK rounds reads no clock here (a wait with a deadline reads
     * it first, to stop at once when it has passed). The spin and idle
     * windows count from the first read. */
    long long now = dl->forever ? 0 : mproc_now_ns(), since = now;
    for (unsigned n = 1; !mproc_future_done(f); n++) {
        bool timers = n % DRIVE_CHECK == 0, any = round_of_calls(timers, f);
        if (any && mproc_future_done(f)) break;
        if (any || timers) now = mproc_now_ns();
        if (any || !since) since = now;
        if (now - since > DRIVE_IDLE_NS || (!dl->forever && now >= dl->at_ns)) break;
        if (!any && now - since > DRIVE_SPIN_NS) sched_yield();
    }
    mproc__future_set_thread_step(NULL, NULL);
    MPROC__LOCK(&mu);
    maker = MAKER_NONE;
    if (now) last_drive = now;
    /* What is left is the thread's again. */
    if (inflight || !mproc__list_empty(&pend) || stopping) pthread_cond_signal(&wake_cv);
    MPROC__UNLOCK(&mu);
}

/* With mu held, after tasks were queued: when nobody makes the calls,
 * the caller sends what the ranks have room for (no result is received:
 * no callback runs in a submitting thread); the thread is woken unless
 * callers drive lately. */
static void queued_locked(void)
{
    if (maker == MAKER_NONE && running && !stopping) {
        maker = MAKER_SENDER;
        size_t nb = pick_batch_locked();
        MPROC__UNLOCK(&mu);
        send_batch(nb);
        MPROC__LOCK(&mu);
        maker = MAKER_NONE;
        /* All sent: the next round need not take the lock to look. */
        if (mproc__list_empty(&pend) && mproc__list_empty(&drops))
            atomic_store_explicit(&queued, false, memory_order_relaxed);
    }
    if (!drove_lately_locked()) pthread_cond_signal(&wake_cv);
}

static void *root_thread(void *arg)
{
    (void)arg;
    unsigned idle = 0;
    long long idle_since = 0;
    /* A done callback run here that waits for a task makes the progress
     * itself (step). */
    mproc__future_set_thread_step(step, NULL);
    MPROC__LOCK(&mu);
    for (;;) {
        if (stopping && mproc__list_empty(&pend) && inflight == 0 && maker == MAKER_NONE) break;
        mproc__deadline until = {
            .at_ns = beat_ms ? atomic_load_explicit(&beat_next, memory_order_relaxed) : LLONG_MAX,
            .forever = !beat_ms};
        if (maker == MAKER_CALLER) { /* a waiting caller makes the calls */
            mproc__deadline lazy = {.at_ns = mproc_now_ns() + LAZY_NS, .forever = false};
            mproc__thread_cond_wait(&wake_cv, &mu, &lazy);
            idle = 0;
            continue;
        }
        if (maker == MAKER_SENDER) { /* a submitting caller sends: soon done */
            MPROC__UNLOCK(&mu);
            sched_yield();
            MPROC__LOCK(&mu);
            continue;
        }
        maker = MAKER_THREAD;
        MPROC__UNLOCK(&mu);
        bool any = round_of_calls(true, NULL);
        MPROC__LOCK(&mu);
        maker = MAKER_NONE;
        if (any) {
            idle = 0;
            continue;
        }
        if (inflight) { /* ranks hold tasks: poll again soon */
            MPROC__UNLOCK(&mu);
            backoff(&idle, &idle_since);
            MPROC__LOCK(&mu);
            continue;
        }
        if (sendable_locked()) continue;
        /* Nothing to send, nothing to wait for. */
        if (drove_lately_locked()) { /* callers send and drive: look now and then */
            mproc__deadline lazy = {.at_ns = mproc_now_ns() + LAZY_NS, .forever = false};
            if (beat_ms && until.at_ns < lazy.at_ns) lazy = until;
            mproc__thread_cond_wait(&wake_cv, &mu, &lazy);
        } else if (idle == 0 || mproc_now_ns() - idle_since < BACKOFF_SPIN_NS) {
            /* A caller that waits for a result often queues the next task
             * at once: look again for a while before sleeping. */
            if (idle++ == 0) idle_since = mproc_now_ns();
            MPROC__UNLOCK(&mu);
            sched_yield();
            MPROC__LOCK(&mu);
            continue;
        } else {
            mproc__thread_cond_wait(&wake_cv, &mu,
                                    &until); /* with the heartbeat on, until the next beat */
        }
        idle = 0;
    }
    MPROC__LIST_FOREACH_SAFE (n, &drops) { /* STOP ends the ranks' local pools */
        mproc__list_remove(n);
        pool_free(MPROC__CONTAINER_OF(n, cpool, node));
    }
    MPROC__UNLOCK(&mu);
    mproc__future_set_thread_step(NULL, NULL);
    free(batch);
    batch = NULL;
    batch_cap = 0;
    if (rx_req != MPI_REQUEST_NULL) { /* the posted receive, which nothing will match */
        MPI_Cancel(&rx_req);
        MPI_Wait(&rx_req, MPI_STATUS_IGNORE);
    }
    mproc__cluster_kbuf_free(&rx);
    mproc__cluster_kbuf_free(&rxp);
    /* After a rank's death MPI_Finalize would wait for it for ever: the
     * STOP message tells the others to exit without it. */
    char no_finalize = 0;
    for (int r = 1; r < size; r++) no_finalize |= dead[r];
    for (int r = 1; r < size; r++)
        if (!dead[r]) MPI_Send(&no_finalize, 1, MPI_BYTE, r, CL_TAG_TASK, comm);
    MPI_Comm_free(&comm);
    if (beat_comm != MPI_COMM_NULL) { /* the live ranks' last beats taken */
        int *live = malloc((size_t)size * sizeof *live), nlive = 0;
        for (int r = 1; live && r < size; r++)
            if (!dead[r]) live[nlive++] = r;
        mproc__cluster_beat_close(beat_comm, live, nlive, 2 * beat_ms);
        free(live);
        MPI_Comm_free(&beat_comm);
    }
    beat_comm = MPI_COMM_NULL;
    return NULL;
}

void mproc__cluster_root_heartbeat(MPI_Comm hb, int ms)
{
    beat_comm = hb;
    beat_ms = hb != MPI_COMM_NULL && ms > 0 ? ms : 0;
}

/* The root's start failed: the heartbeat's communicator is freed. */
static void beat_drop(void)
{
    if (beat_comm != MPI_COMM_NULL) MPI_Comm_free(&beat_comm);
    beat_comm = MPI_COMM_NULL;
    free(beat_last);
    beat_last = NULL;
}

int mproc__cluster_root_start(MPI_Comm c, int n, const int32_t *p, int *fds)
{
    static bool conds; /* communicator mode may start the root again */
    if (!conds) {
        mproc__thread_cond_init(&wake_cv);
        mproc__thread_cond_init(&done_cv);
        conds = true;
    }
    held = calloc((size_t)n, sizeof *held);
    nheld = calloc((size_t)n, sizeof *nheld);
    pids = malloc((size_t)n * sizeof *pids);
    dead = calloc((size_t)n, sizeof *dead);
    beat_last = malloc((size_t)n * sizeof *beat_last);
    if (!held || !nheld || !pids || !dead || !beat_last) {
        free(held);
        free(nheld);
        free(pids);
        free(dead);
        beat_drop();
        return MPROC_ENOMEM;
    }
    for (int r = 0; r < n; r++) beat_last[r] = mproc_now_ns();
    atomic_store_explicit(&beat_next, 0, memory_order_relaxed);
    memcpy(pids, p, (size_t)n * sizeof *pids);
    for (int r = 0; r < n; r++) mproc__list_init(&held[r]);
    comm = c;
    size = n;
    pidfds = fds;
    stopping = false;
    clock_gettime(CLOCK_MONOTONIC, &watched); /* before a caller may drive */
    if (pthread_create(&thr, NULL, root_thread, NULL) != 0) {
        free(held);
        free(nheld);
        free(pids);
        free(dead);
        beat_drop();
        pidfds = NULL;
        return MPROC_EAGAIN;
    }
    MPROC__LOCK(&mu); /* read under mu by the pools' calls */
    running = true;
    MPROC__UNLOCK(&mu);
    return 0;
}

/* An imap chunk a rank holds, ended by terminate. */
typedef struct hook_rec {
    pool_task_hook hook;
    void *ud;
    uint64_t seq;
    size_t count;
} hook_rec;

/* With mu held: terminates p (its pending tasks to l; the futures of the
 * tasks ranks hold, referenced, to fs/maps, and their imap chunks to hs,
 * failed by the caller). */
static void terminate_locked(cpool *p, mproc__list *l, mproc_future ***fs, size_t *nfs,
                             hook_rec **hs, size_t *nhs)
{
    p->state = P_TERMINATED;
    take_pending_locked(p, l);
    for (int r = 1; held && r < size; r++) /* none held after shutdown */
        MPROC__LIST_FOREACH (n, &held[r]) {
            ctask *t = MPROC__CONTAINER_OF(n, ctask, node);
            if (t->pool != p || t->detached) continue;
            t->detached = true;
            p->unfinished--;
            if (t->hook && !t->hook_ended) {
                hook_rec *nh = realloc(*hs, (*nhs + 1) * sizeof *nh);
                if (!nh) continue; /* it ends when its rank answers */
                *hs = nh;
                t->hook_ended = true;
                (*hs)[(*nhs)++] = (hook_rec){t->hook, t->ud, t->seq, t->count};
                continue;
            }
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

int mproc__cluster_root_stop(void)
{
    MPROC__LOCK(&mu);
    if (!running) {
        MPROC__UNLOCK(&mu);
        return 0;
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
    int ndead = 0;
    for (int r = 0; r < size; r++) {
        ndead += dead[r];
        if (pidfds[r] >= 0) close(pidfds[r]);
    }
    free(pidfds);
    free(held);
    free(nheld);
    free(pids);
    free(dead);
    free(beat_last);
    beat_last = NULL;
    held = NULL;
    nheld = NULL;
    pids = NULL;
    pidfds = NULL;
    dead = NULL;
    MPROC__UNLOCK(&mu);
    mproc__cluster_msg_cache_drop();
    return ndead;
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

/* A task's time limit: timeout_ms as mproc_task_opts's (0: the pool's). */
static int32_t time_limit(const cpool *p, int timeout_ms)
{
    return timeout_ms == MPROC_FOREVER ? 0 : timeout_ms > 0 ? timeout_ms : p->task_timeout_ms;
}

static void queue_locked(ctask *t, cpool *p)
{
    t->pool = p;
    t->id = ++next_id;
    memcpy(t->msg, &t->id, sizeof t->id); /* cl_task_hdr.id */
    p->unfinished++;
    p->refs++;
    mproc__list_insert_tail(&pend, &t->node);
    atomic_store_explicit(&queued, true, memory_order_release);
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
    task_free(t);
    return true;
}

/* An apply (kind as be_apply_async's) of p, sent to rank want (0: any). */
static int apply_to(cpool *p, int want, uint32_t kind, const void *fn, const void *arg,
                    size_t arglen, const mproc_task_opts *opts, mproc_future **out)
{
    mproc_task_opts o = opts ? *opts : (mproc_task_opts){0};
    cl_fn ref;
    int rc = mproc__cluster_fn_make(fn, &ref);
    if (rc) return rc;
    size_t len = sizeof(cl_task_hdr) + ref.pathlen + arglen;
    bool small = arglen <= CL_EAGER_BYTES && len <= CL_EAGER_BYTES;
    ctask *t = task_new(small ? len : 0);
    if (!t) return MPROC_ENOMEM;
    cl_task_hdr h = {.kind = kind == KIND_VALUE ? CL_VALUE : CL_APPLY,
                     .timeout_ms = time_limit(p, o.timeout_ms),
                     .local = p->local,
                     .setup = p->setup};
    t->local_run = h.local || h.timeout_ms;
    if (small) {
        t->msg = t + 1;
        t->len = len;
        mproc__cluster_task_msg_at(t->msg, &ref, &h, arg, arglen);
    } else {
        t->msg = mproc__cluster_task_msg(&ref, &h, arg, arglen, &t->len, &rc);
    }
    t->f = t->msg ? mproc__future_new(o.callback, o.error_callback, o.userdata) : NULL;
    if (!t->f) {
        task_free(t);
        return rc ? rc : MPROC_ENOMEM;
    }
    mproc__future_set_withdraw(t->f, withdraw, p);
    mproc__future_set_drive(t->f, drive, p);
    t->want = want;
    /* Once queued, t is the MPI calls' maker's: it may end and be freed
     * before this thread reads it again. */
    mproc_future *f = t->f;
    MPROC__LOCK(&mu);
    rc = state_error_locked(p);
    if (!rc && want && dead[want]) rc = MPROC_EWORKERDIED; /* it would wait for ever */
    if (!rc) {
        queue_locked(t, p);
        queued_locked();
    }
    MPROC__UNLOCK(&mu);
    if (rc) {
        mproc_future_free(t->f);
        mproc_future_free(t->f);
        task_free(t);
        return rc;
    }
    *out = f;
    return 0;
}

static int be_apply_async(void *ctx, uint32_t kind, const void *fn, const void *arg, size_t arglen,
                          const mproc_task_opts *opts, mproc_future **out)
{
    return apply_to(ctx, 0, kind, fn, arg, arglen, opts, out);
}

/* The length of a map's chunk that starts at item first of n: the
 * chunksize asked for, or, by default:
 * - the first width chunks are small, so that every rank starts on a
 *   short message while the large chunks behind them are copied and sent
 *   (a rank holds two tasks);
 * - then a share of the items left that shrinks as they run out, a
 *   (2 x width)th of them: a rank cannot give back part of a chunk it
 *   holds, as the process pool's workers do, so small last chunks even
 *   out the ranks' finish;
 * - never fewer than n / (CHUNK_LEAST_PER x width) items. */
#define CHUNK_LEAST_PER 64
static size_t chunk_len(const cpool *p, size_t chunksize, size_t first, size_t n)
{
    size_t left = n - first, w = p->width ? p->width : 1, len = chunksize;
    if (!len) {
        size_t least = (n + CHUNK_LEAST_PER * w - 1) / (CHUNK_LEAST_PER * w);
        len = first < w * least ? least : (left + 2 * w - 1) / (2 * w);
        if (len < least) len = least;
    }
    return len < left ? len : left;
}

/* Every chunk task is either queued (then the thread owns it) or freed
 * below; the analyzer loses them across the loops. */
MPROC__ANALYZER_OFF("-Wanalyzer-malloc-leak")
static int be_map_async(void *ctx, uint32_t call, mproc_any_fn fn, const void *in, size_t n,
                        size_t in_size, void *out, size_t out_size, const mproc_map_opts *opts,
                        mproc_future **fut)
{
    cpool *p = ctx;
    const mproc_map_opts o = *opts;
    if ((n && ((!in && in_size) || (!out && out_size))) ||
        (n && in_size + out_size > SIZE_MAX / 2 / n) || o.timeout_ms < MPROC_FOREVER)
        return MPROC_EINVAL;
    cl_fn ref;
    int rc = mproc__cluster_fn_make((const void *)fn, &ref);
    if (rc) return rc;
    size_t nchunks = 0;
    for (size_t first = 0; first < n; nchunks++) first += chunk_len(p, o.chunksize, first, n);
    cmap *m = calloc(1, sizeof *m);
    mproc_future *f = mproc__future_new(NULL, NULL, NULL);
    ctask **ts = calloc(nchunks ? nchunks : 1, sizeof *ts);
    rc = m && f && ts ? 0 : MPROC_ENOMEM;
    for (size_t c = 0, first = 0, count; c < nchunks && !rc; c++, first += count) {
        count = chunk_len(p, o.chunksize, first, n);
        if (!(ts[c] = task_new(0))) {
            rc = MPROC_ENOMEM;
            break;
        }
        *ts[c] = (ctask){.map = m,
                         .first = first,
                         .count = count,
                         .inputs = (const char *)in + first * in_size,
                         .inputs_len = count * in_size,
                         .local_run = p->local || time_limit(p, o.timeout_ms)};
        if (count * out_size > (size_t)INT_MAX - sizeof(cl_result_hdr) - 4096)
            rc = MPROC_EMSGSIZE; /* the outputs would not come back in one message */
        else
            ts[c]->msg =
                mproc__cluster_task_msg(&ref,
                                        &(cl_task_hdr){.kind = CL_MAP,
                                                       .count = count,
                                                       .in_size = in_size,
                                                       .out_size = out_size,
                                                       .call = call,
                                                       .timeout_ms = time_limit(p, o.timeout_ms),
                                                       .local = p->local,
                                                       .setup = p->setup},
                                        NULL, count * in_size, &ts[c]->len, &rc);
    }
    if (!rc) {
        (void)mproc__future_set_running(f, 0); /* a map is not cancelled (its out is written) */
        mproc__future_set_drive(f, drive, p);
        *m = (cmap){.f = f,
                    .out = out,
                    .out_size = out_size,
                    .chunks_left = nchunks,
                    .n = n,
                    .progress = o.progress,
                    .progress_ud = o.progress_userdata,
                    .bar = o.progress_bar,
                    .t0 = mproc_now_ns()};
        pthread_mutex_init(&m->pmu, NULL);
        MPROC__LOCK(&mu);
        rc = state_error_locked(p);
        for (size_t c = 0; c < nchunks && !rc; c++) queue_locked(ts[c], p);
        if (!rc && nchunks) queued_locked();
        MPROC__UNLOCK(&mu);
    }
    if (rc) {
        if (ts) {
            for (size_t c = 0; c < nchunks; c++) {
                ctask *t = ts[c];
                if (t) task_free(t);
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

static int be_map_chunk(void *ctx, uint32_t call, mproc_any_fn fn, const void *in, size_t count,
                        size_t in_size, size_t out_size, int timeout_ms, pool_task_hook hook,
                        void *ud, uint64_t seq)
{
    cpool *p = ctx;
    if (count && out_size > ((size_t)INT_MAX - sizeof(cl_result_hdr) - 4096) / count)
        return MPROC_EMSGSIZE; /* the outputs would not come back in one message */
    cl_fn ref;
    int rc = mproc__cluster_fn_make((const void *)fn, &ref);
    if (rc) return rc;
    ctask *t = task_new(0);
    if (!t) return MPROC_ENOMEM;
    t->hook = hook;
    t->ud = ud;
    t->seq = seq;
    t->count = count;
    cl_task_hdr h = {.kind = CL_MAP,
                     .count = count,
                     .in_size = in_size,
                     .out_size = out_size,
                     .call = call,
                     .timeout_ms = time_limit(p, timeout_ms),
                     .local = p->local,
                     .setup = p->setup};
    t->local_run = h.local || h.timeout_ms;
    if (!(t->msg = mproc__cluster_task_msg(&ref, &h, in, count * in_size, &t->len, &rc))) {
        free(t);
        return rc;
    }
    MPROC__LOCK(&mu);
    rc = state_error_locked(p);
    if (rc && running && !stopping && p->state == P_CLOSED && p->holds > 0) rc = 0; /* held */
    if (!rc) {
        queue_locked(t, p);
        queued_locked();
    }
    MPROC__UNLOCK(&mu);
    if (rc) {
        task_free(t);
    }
    return rc;
}

static int be_hold(void *ctx, int delta)
{
    cpool *p = ctx;
    MPROC__LOCK(&mu);
    int rc = delta > 0 ? state_error_locked(p) : 0;
    if (!rc) p->holds += delta > 0 ? 1 : -1;
    if (p->holds == 0) pthread_cond_broadcast(&done_cv);
    MPROC__UNLOCK(&mu);
    return rc;
}

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
    hook_rec *hs = NULL;
    size_t nfs = 0, nhs = 0;
    MPROC__LOCK(&mu);
    terminate_locked(p, &l, &fs, &nfs, &hs, &nhs);
    MPROC__UNLOCK(&mu);
    end_list(&l, MPROC_ESHUTDOWN, "the pool was terminated");
    fail_all(fs, nfs, "the pool was terminated");
    for (size_t i = 0; i < nhs; i++)
        hs[i].hook(hs[i].ud, hs[i].seq, hs[i].count, MPROC_ESHUTDOWN, NULL, 0,
                   "the pool was terminated", 0);
    free(hs);
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
    while (!rc && (p->unfinished || (p->holds && p->state == P_CLOSED && running && !stopping))) {
        if (mproc__deadline_passed(&dl)) {
            rc = MPROC_ETIMEDOUT;
            break;
        }
        if (mproc__future_thread_has_step()) { /* in a callback on the root's thread */
            MPROC__UNLOCK(&mu);
            mproc__future_thread_step(&dl);
            MPROC__LOCK(&mu);
        } else if (mproc__thread_cond_wait(&done_cv, &mu, &dl) == MPROC_ETIMEDOUT) {
            rc = MPROC_ETIMEDOUT;
        }
    }
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
    .map_chunk = be_map_chunk,
    .hold = be_hold,
    .close = be_close,
    .terminate = be_terminate,
    .join = be_join,
    .workers = be_workers,
    .free = be_free,
};

/* Runs p's initializer once on each of its ranks, in the rank itself
 * (before any task of p is queued): 0, or the first failure (logged with
 * the rank and the initializer's message). */
static int run_initializer(cpool *p, mproc_task_fn init, const void *args, size_t len)
{
    mproc_future **fs = calloc((size_t)p->nworkers, sizeof *fs);
    if (!fs) return MPROC_ENOMEM;
    int rc = 0, r;
    /* KIND_APPLY, in the rank itself (no time limit, no local pool) */
    for (r = 1; r <= p->nworkers && !rc; r++)
        rc = apply_to(p, r, KIND_APPLY, (const void *)init, args, len,
                      &(mproc_task_opts){.timeout_ms = MPROC_FOREVER}, &fs[r - 1]);
    if (rc) mproc_log(MPROC_LOG_ERROR, "cluster: the initializer: %s", mproc_strerror(rc));
    for (int i = 0; i < p->nworkers && fs[i]; i++) {
        int frc = mproc_future_wait(fs[i], MPROC_FOREVER), code = 0;
        const char *msg = NULL;
        if (!frc && mproc_future_error(fs[i], &code, &msg, NULL) == 0) frc = code;
        if (frc && !rc) {
            rc = frc;
            mproc_log(MPROC_LOG_ERROR, "cluster: the initializer failed on rank %d: %s", i + 1,
                      msg ? msg : mproc_strerror(frc));
        }
        mproc_future_free(fs[i]);
    }
    free(fs);
    return rc;
}

/* p's setup for its ranks' local pools (cpool.setup): the CL_SETUP
 * message, sent to a rank before the first task of p it runs locally. */
static int make_setup(cpool *p, mproc_task_fn init, const void *args, size_t len, int max_tasks)
{
    static uint32_t next_setup; /* under mu */
    cl_fn ref;
    int rc = mproc__cluster_fn_make((const void *)init, &ref);
    if (rc) return rc;
    cl_task_hdr h = {
        .kind = CL_SETUP, .local = p->local ? p->local : 1, .count = (uint64_t)max_tasks};
    if (!(p->setup_sent = calloc((size_t)size, sizeof *p->setup_sent)) ||
        !(p->setup_msg = mproc__cluster_task_msg(&ref, &h, args, len, &p->setup_len, &rc)))
        return rc ? rc : MPROC_ENOMEM;
    MPROC__LOCK(&mu);
    if (++next_setup == 0) next_setup = 1;
    p->setup = next_setup;
    MPROC__UNLOCK(&mu);
    memcpy((char *)p->setup_msg + offsetof(cl_task_hdr, setup), &p->setup, sizeof p->setup);
    return 0;
}

int mproc__cluster_root_pool_new(mproc_pool **out, int nworkers, uint32_t local, int depth,
                                 int task_timeout_ms, mproc_task_fn init, const void *initargs,
                                 size_t initargs_len, int max_tasks)
{
    cpool *p = calloc(1, sizeof *p);
    if (!p) return MPROC_ENOMEM;
    size_t per = local == 0 ? 1 : local == CL_LOCAL_CPUS ? (size_t)mproc_cpu_count() : local;
    *p = (cpool){.state = P_OPEN,
                 .nworkers = nworkers,
                 .refs = 1,
                 .local = local,
                 .depth = depth,
                 .width = (size_t)nworkers * per,
                 .task_timeout_ms = task_timeout_ms};
    int rc = init || max_tasks ? make_setup(p, init, initargs, initargs_len, max_tasks) : 0;
    if (!rc) rc = mproc__pool_new_backend(out, &ops, p);
    if (rc) {
        pool_free(p);
        return rc;
    }
    MPROC__LOCK(&mu);
    mproc__list_insert_tail(&pools, &p->node);
    if (depth > max_depth) max_depth = depth;
    MPROC__UNLOCK(&mu);
    /* A ranks-only pool's tasks run in the ranks: the initializer too. */
    if (init && !local && (rc = run_initializer(p, init, initargs, initargs_len))) {
        mproc_pool_free(*out);
        *out = NULL;
    }
    return rc;
}
