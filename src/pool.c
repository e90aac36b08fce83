/* The pool, parent side (see internal/pool.h for the design): workers,
 * dispatch, the result thread and the monitor thread.
 *
 * Lock order: the pool lock, then nothing. Futures are completed and hooks
 * called with no lock held, so a callback may use the pool. */
#include "internal/future.h"
#include "internal/log.h"
#include "internal/pool.h"
#include "internal/process.h"
#include "internal/tcond.h"
#include "mproc/arena.h"
#include "mproc/value.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POOL_WINDOW   4 /* tasks in a worker's inbox, the running one included */
#define READY_TIMEOUT 60000
#define ST_STARTING   0
#define ST_OPEN       1
#define ST_CLOSED     2
#define ST_TERMINATED 3
#define ST_BROKEN     4

struct pool_task {
    uint64_t id;
    mproc_future *f; /* NULL for hook tasks */
    pool_task_hook hook;
    void *ud;
    uint64_t seq;
    void *msg; /* the task message until it is in an inbox */
    size_t len;
    int timeout_ms; /* 0: none */
    int64_t started_ns;
    pool_task *next, *prev;
};

typedef struct worker {
    mproc_process *p; /* NULL once gone for good */
    pid_t pid;
    int sentinel;
    uint32_t gen;
    pool_task *head, *tail; /* assigned, in inbox order; head runs */
    int nassigned;
    bool dying, retired, timed_out, stop_sent;
} worker;

struct mproc_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pool_shared *sh;
    int n;
    worker *w;
    mproc_start_method method;
    int task_timeout_ms;
    int state;
    int ready; /* workers that reported their initializer's success */
    int init_rc;
    char init_msg[512];
    pool_task *pend_head, *pend_tail;
    size_t unfinished; /* tasks pending or assigned */
    uint64_t next_id;
    pthread_t rthr, mthr;
    bool threads;
    int wake[2];
    bool stop_monitor;
};

/* ---- lists ----------------------------------------------------------------- */

static void list_push(pool_task **head, pool_task **tail, pool_task *t)
{
    t->next = NULL;
    t->prev = *tail;
    if (*tail)
        (*tail)->next = t;
    else
        *head = t;
    *tail = t;
}

static void list_unlink(pool_task **head, pool_task **tail, pool_task *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        *head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        *tail = t->prev;
    t->next = t->prev = NULL;
}

/* ---- completing tasks (no lock held) ---------------------------------------- */

static void task_end(pool_task *t, int rc, const void *res, size_t len, const char *msg, pid_t pid)
{
    if (t->hook) {
        t->hook(t->ud, t->seq, rc, res, len, msg, pid);
    } else if (rc == 0) {
        void *copy = NULL;
        if (len && (copy = malloc(len))) memcpy(copy, res, len);
        if (len && !copy)
            mproc__future_fail(t->f, MPROC_ENOMEM, "no memory for the result", pid);
        else
            mproc__future_finish(t->f, copy, copy ? len : 0);
    } else {
        mproc__future_fail(t->f, rc, msg, pid);
    }
    if (t->f) mproc_future_free(t->f);
    free(t->msg);
    free(t);
}

/* Tasks failed together (terminate, a broken pool): ends them all. */
static void end_all(pool_task *list, int rc, const char *msg)
{
    while (list) {
        pool_task *next = list->next;
        task_end(list, rc, NULL, 0, msg, 0);
        list = next;
    }
}

/* ---- workers ------------------------------------------------------------------ */

static void wake_monitor(mproc_pool *pool)
{
    char c = 1;
    if (write(pool->wake[1], &c, 1) < 0) { /* full: it will wake anyway */
    }
}

static int start_worker(mproc_pool *pool, int i)
{
    worker *w = &pool->w[i];
    pool_worker_arg a = {pool->sh, (uint32_t)i, w->gen + 1};
    char name[32];
    snprintf(name, sizeof name, "PoolWorker-%d", i + 1);
    mproc_process_opts o = {.name = name, .daemon = true, .start_method = pool->method};
    mproc_process *p;
    int rc = mproc_process_new(&p, mproc__pool_worker_main, &a, sizeof a, &o);
    if (rc == 0 && (rc = mproc_process_start(p)) != 0) mproc_process_free(p);
    if (rc) return rc;
    w->p = p;
    w->pid = mproc_process_pid(p);
    w->sentinel = mproc_process_sentinel(p);
    w->gen++;
    w->dying = w->retired = w->timed_out = false;
    if (w->head) w->head->started_ns = mproc_now_ns();
    wake_monitor(pool);
    return 0;
}

/* The worker's head task starts (now, as far as the parent can tell). */
static void head_started(mproc_pool *pool, worker *w)
{
    if (!w->head) return;
    w->head->started_ns = mproc_now_ns();
    if (w->head->f) mproc__future_set_running(w->head->f, w->pid);
    if (w->head->timeout_ms > 0) wake_monitor(pool); /* a new deadline */
}

/* Moves pending tasks into inboxes, least loaded worker first. */
static void dispatch_locked(mproc_pool *pool)
{
    while (pool->pend_head) {
        worker *best = NULL;
        for (int i = 0; i < pool->n; i++) {
            worker *w = &pool->w[i];
            if (!w->p || w->dying || w->stop_sent || w->nassigned >= POOL_WINDOW) continue;
            if (!best || w->nassigned < best->nassigned) best = w;
        }
        if (!best) return;
        pool_task *t = pool->pend_head;
        if (mproc_queue_put(pool->sh->slots[best - pool->w].inbox, t->msg, t->len, MPROC_FOREVER) !=
            0)
            return; /* no arena memory: retried at the next result */
        list_unlink(&pool->pend_head, &pool->pend_tail, t);
        free(t->msg);
        t->msg = NULL;
        list_push(&best->head, &best->tail, t);
        if (++best->nassigned == 1) head_started(pool, best);
    }
}

/* Once a closed pool has nothing pending, every worker gets STOP after
 * its tasks. */
static void send_stops_locked(mproc_pool *pool)
{
    if (pool->state != ST_CLOSED || pool->pend_head) return;
    pool_task_msg stop = {.type = MSG_STOP};
    for (int i = 0; i < pool->n; i++) {
        worker *w = &pool->w[i];
        if (!w->p || w->stop_sent) continue;
        if (mproc_queue_put(pool->sh->slots[i].inbox, &stop, sizeof stop, MPROC_FOREVER) == 0)
            w->stop_sent = true;
    }
}

/* ---- the result thread ---------------------------------------------------------- */

static void describe_death(char *buf, size_t cap, const worker *w, int code, uint64_t id,
                           const char *crash)
{
    char how[64];
    if (code < 0)
        snprintf(how, sizeof how, "was killed by signal %d (%s)", -code, strsignal(-code));
    else
        snprintf(how, sizeof how, "exited with code %d", code);
    snprintf(buf, cap, "worker %d %s%s while running task #%llu%s%s", (int)w->pid, how,
             w->timed_out ? " (killed: the task ran past its time limit)" : "",
             (unsigned long long)id, crash[0] ? "\n" : "", crash);
}

static void on_died(mproc_pool *pool, int i, uint32_t gen)
{
    MPROC__LOCK(&pool->mu);
    worker *w = &pool->w[i];
    if (w->gen != gen || !w->p) {
        MPROC__UNLOCK(&pool->mu);
        return;
    }
    mproc_process_join(w->p, MPROC_FOREVER);
    int code = 0;
    mproc_process_exitcode(w->p, &code);
    mproc_process_free(w->p);
    w->p = NULL;
    pool_task *lost = NULL;
    char *msg = NULL;
    int rc = w->timed_out ? MPROC_ETASKTIMEDOUT : MPROC_EWORKERDIED;
    pid_t pid = w->pid;
    if (w->head && !w->retired) { /* it took the head task: tasks go in order */
        lost = w->head;
        list_unlink(&w->head, &w->tail, lost);
        w->nassigned--;
        pool->unfinished--;
        if ((msg = malloc(POOL_CRASH_BYTES + 256)))
            describe_death(msg, POOL_CRASH_BYTES + 256, w, code, lost->id,
                           pool->sh->slots[i].crash);
        MPROC__INFO("pool: %s", msg ? msg : "a worker died");
    }
    pool->sh->slots[i].crash[0] = '\0';
    bool needed =
        pool->state == ST_OPEN || (pool->state == ST_CLOSED && (w->head || !w->stop_sent));
    if (pool->state == ST_STARTING) {
        if (pool->init_rc) goto out; /* its initializer's failure says more */
        pool->init_rc = MPROC_EWORKERDIED;
        snprintf(pool->init_msg, sizeof pool->init_msg,
                 "worker %d exited with code %d while "
                 "starting",
                 (int)pid, code);
    } else if (needed && start_worker(pool, i) != 0) {
        pool->state = ST_BROKEN;
        MPROC__INFO("pool: cannot replace worker %d", (int)pid);
    }
    if (w->p) head_started(pool, w);
    dispatch_locked(pool);
out:
    pthread_cond_broadcast(&pool->cv);
    MPROC__UNLOCK(&pool->mu);
    if (lost) task_end(lost, rc, NULL, 0, msg ? msg : "a worker died", pid);
    free(msg);
}

/* Every unfinished task, unlinked and chained through next. */
static pool_task *take_all_locked(mproc_pool *pool)
{
    pool_task *all = pool->pend_head;
    pool->pend_head = pool->pend_tail = NULL;
    for (int i = 0; i < pool->n; i++) {
        worker *w = &pool->w[i];
        while (w->head) {
            pool_task *t = w->head;
            list_unlink(&w->head, &w->tail, t);
            t->next = all;
            all = t;
        }
        w->nassigned = 0;
    }
    pool->unfinished = 0;
    return all;
}

/* The pool cannot go on (a replacement's initializer failed): every task
 * fails with that error. */
static void break_pool(mproc_pool *pool, int rc, const char *msg)
{
    MPROC__LOCK(&pool->mu);
    pool->state = ST_BROKEN;
    pool_task *all = take_all_locked(pool);
    for (int i = 0; i < pool->n; i++)
        if (pool->w[i].p) mproc_process_kill(pool->w[i].p);
    pthread_cond_broadcast(&pool->cv);
    MPROC__UNLOCK(&pool->mu);
    end_all(all, rc, msg);
}

static void on_result(mproc_pool *pool, const pool_result_msg *m, const char *msg, const void *res,
                      size_t len)
{
    MPROC__LOCK(&pool->mu);
    worker *w = &pool->w[m->worker];
    pool_task *t = w->head;
    while (t && t->id != m->id) t = t->next;
    if (!t || w->gen != m->gen) {
        MPROC__UNLOCK(&pool->mu);
        return;
    }
    bool was_head = t == w->head;
    list_unlink(&w->head, &w->tail, t);
    w->nassigned--;
    pool->unfinished--;
    if (was_head) head_started(pool, w);
    dispatch_locked(pool);
    send_stops_locked(pool);
    pthread_cond_broadcast(&pool->cv);
    MPROC__UNLOCK(&pool->mu);
    task_end(t, m->rc, res, len, msg, m->pid);
}

static void *result_thread(void *arg)
{
    mproc_pool *pool = arg;
    for (;;) {
        void *buf;
        size_t len;
        if (mproc_queue_get(pool->sh->results, &buf, &len, MPROC_FOREVER) != 0) return NULL;
        pool_result_msg m;
        if (len < sizeof m) {
            free(buf);
            continue;
        }
        memcpy(&m, buf, sizeof m);
        if (m.type == MSG_QUIT) {
            free(buf);
            return NULL;
        }
        bool bad = m.worker < 0 || m.worker >= pool->n || m.msglen > len - sizeof m;
        char *msg = NULL;
        if (!bad && m.msglen && (msg = malloc(m.msglen + 1))) {
            memcpy(msg, (char *)buf + sizeof m, m.msglen);
            msg[m.msglen] = '\0';
        }
        const char *res = (char *)buf + sizeof m + (bad ? 0 : m.msglen);
        size_t rlen = bad ? 0 : len - sizeof m - m.msglen;
        if (bad) {
        } else if (m.type == MSG_RESULT) {
            on_result(pool, &m, msg, res, rlen);
        } else if (m.type == MSG_DIED) {
            on_died(pool, m.worker, m.gen);
        } else if (m.type == MSG_RETIRE) {
            MPROC__LOCK(&pool->mu);
            if (pool->w[m.worker].gen == m.gen) pool->w[m.worker].retired = true;
            MPROC__UNLOCK(&pool->mu);
        } else if (m.type == MSG_READY) {
            MPROC__LOCK(&pool->mu);
            bool starting = pool->state == ST_STARTING;
            if (m.rc == 0) {
                pool->ready++;
            } else if (starting) {
                pool->init_rc = m.rc;
                snprintf(pool->init_msg, sizeof pool->init_msg, "%s",
                         msg ? msg : "the initializer failed");
            }
            pthread_cond_broadcast(&pool->cv);
            MPROC__UNLOCK(&pool->mu);
            if (m.rc && !starting) {
                MPROC__INFO("pool: a new worker's initializer failed: %s", msg ? msg : "");
                break_pool(pool, m.rc, msg ? msg : "a new worker's initializer failed");
            }
        }
        free(msg);
        free(buf);
    }
}

/* ---- the monitor thread -------------------------------------------------------- */

static void post_died(mproc_pool *pool, int i)
{
    pool_result_msg m = {.type = MSG_DIED, .worker = i, .gen = pool->w[i].gen};
    pool->w[i].dying = true;
    (void)mproc_queue_put(pool->sh->results, &m, sizeof m, MPROC_FOREVER);
}

static void *monitor_thread(void *arg)
{
    mproc_pool *pool = arg;
    struct pollfd *pf = calloc((size_t)pool->n + 1, sizeof *pf);
    int *idx = calloc((size_t)pool->n + 1, sizeof *idx);
    if (!pf || !idx) mproc__panic("pool monitor: out of memory");
    for (;;) {
        MPROC__LOCK(&pool->mu);
        if (pool->stop_monitor) {
            MPROC__UNLOCK(&pool->mu);
            break;
        }
        int k = 0;
        pf[k++] = (struct pollfd){.fd = pool->wake[0], .events = POLLIN};
        int64_t now = mproc_now_ns(), next = INT64_MAX;
        for (int i = 0; i < pool->n; i++) {
            worker *w = &pool->w[i];
            if (!w->p || w->dying) continue;
            idx[k] = i;
            pf[k++] = (struct pollfd){.fd = w->sentinel, .events = POLLIN};
            pool_task *t = w->head;
            if (t && t->timeout_ms > 0 && !w->timed_out) {
                int64_t due = t->started_ns + (int64_t)t->timeout_ms * 1000000;
                if (due <= now) {
                    w->timed_out = true;
                    mproc_process_kill(w->p);
                } else if (due < next) {
                    next = due;
                }
            }
        }
        MPROC__UNLOCK(&pool->mu);
        int ms = next == INT64_MAX ? -1 : (int)((next - now + 999999) / 1000000);
        if (poll(pf, (nfds_t)k, ms) < 0) continue;
        if (pf[0].revents) {
            char junk[64];
            while (read(pool->wake[0], junk, sizeof junk) > 0) {
            }
        }
        MPROC__LOCK(&pool->mu);
        for (int j = 1; j < k; j++) {
            worker *w = &pool->w[idx[j]];
            if (!pf[j].revents || !w->p || w->dying || w->sentinel != pf[j].fd) continue;
            if (!mproc_process_is_alive(w->p)) post_died(pool, idx[j]);
        }
        MPROC__UNLOCK(&pool->mu);
    }
    free(pf);
    free(idx);
    return NULL;
}

/* ---- creation ---------------------------------------------------------------- */

static void stop_threads(mproc_pool *pool)
{
    if (!pool->threads) return;
    MPROC__LOCK(&pool->mu);
    pool->stop_monitor = true;
    MPROC__UNLOCK(&pool->mu);
    wake_monitor(pool);
    pthread_join(pool->mthr, NULL);
    pool_result_msg q = {.type = MSG_QUIT};
    (void)mproc_queue_put(pool->sh->results, &q, sizeof q, MPROC_FOREVER);
    pthread_join(pool->rthr, NULL);
    pool->threads = false;
}

static void destroy(mproc_pool *pool)
{
    stop_threads(pool);
    if (pool->sh) {
        for (int i = 0; i < pool->n; i++) mproc_queue_free(pool->sh->slots[i].inbox);
        mproc_queue_free(pool->sh->results);
        mproc_shm_free(pool->sh->initargs);
        mproc_shm_free(pool->sh);
    }
    if (pool->wake[0] >= 0) close(pool->wake[0]);
    if (pool->wake[1] >= 0) close(pool->wake[1]);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->cv);
    free(pool->w);
    free(pool);
}

static int make_shared(mproc_pool *pool, const mproc_pool_opts *o)
{
    int rc = mproc_shm_calloc((void **)&pool->sh,
                              sizeof(pool_shared) + (size_t)pool->n * sizeof(pool_slot));
    if (rc) return rc;
    pool_shared *sh = pool->sh;
    sh->magic = POOL_SHARED_MAGIC;
    sh->nworkers = (uint32_t)pool->n;
    sh->maxtasks = o->maxtasksperchild;
    if ((rc = mproc__fnref_make((const void *)o->initializer, &sh->initializer))) return rc;
    if (o->initargs_len) {
        if ((rc = mproc_shm_alloc(&sh->initargs, o->initargs_len))) return rc;
        memcpy(sh->initargs, o->initargs, o->initargs_len);
        sh->initargs_len = o->initargs_len;
    }
    if ((rc = mproc_queue_new(&sh->results, NULL))) return rc;
    for (int i = 0; i < pool->n; i++)
        if ((rc = mproc_queue_new(&sh->slots[i].inbox, NULL))) return rc;
    return 0;
}

static void kill_all_locked(mproc_pool *pool)
{
    for (int i = 0; i < pool->n; i++) {
        worker *w = &pool->w[i];
        if (!w->p) continue;
        mproc_process_kill(w->p);
        mproc_process_join(w->p, MPROC_FOREVER);
        mproc_process_free(w->p);
        w->p = NULL;
        w->gen++; /* a DIED on its way is stale */
    }
}

int mproc_pool_new(mproc_pool **out, const mproc_pool_opts *opts)
{
    if (!out) return MPROC_EINVAL;
    mproc_pool_opts o = opts ? *opts : (mproc_pool_opts){0};
    if (o.processes < 0 || o.processes > POOL_MAX_WORKERS || (o.initargs_len && !o.initargs) ||
        o.task_timeout_ms < 0)
        return MPROC_EINVAL;
    mproc__init();
    mproc_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return MPROC_ENOMEM;
    pool->n = o.processes ? o.processes : mproc_cpu_count();
    pool->method = o.context ? mproc_context_method(o.context) : MPROC_START_DEFAULT;
    if (pool->method == MPROC_START_DEFAULT) pool->method = mproc__default_start_method();
    pool->task_timeout_ms = o.task_timeout_ms;
    pool->wake[0] = pool->wake[1] = -1;
    pthread_mutex_init(&pool->mu, NULL);
    mproc__tcond_init(&pool->cv);
    int rc = (pool->w = calloc((size_t)pool->n, sizeof *pool->w)) ? 0 : MPROC_ENOMEM;
    if (!rc && pipe2(pool->wake, O_CLOEXEC | O_NONBLOCK) != 0) rc = MPROC__ERRNO();
    if (!rc) rc = make_shared(pool, &o);
    if (rc) {
        destroy(pool);
        return rc;
    }
    MPROC__LOCK(&pool->mu);
    for (int i = 0; i < pool->n && !rc; i++) rc = start_worker(pool, i);
    if (!rc && pthread_create(&pool->rthr, NULL, result_thread, pool) != 0) rc = MPROC_EAGAIN;
    if (!rc && pthread_create(&pool->mthr, NULL, monitor_thread, pool) != 0) {
        pool_result_msg q = {.type = MSG_QUIT};
        (void)mproc_queue_put(pool->sh->results, &q, sizeof q, MPROC_FOREVER);
        MPROC__UNLOCK(&pool->mu);
        pthread_join(pool->rthr, NULL);
        MPROC__LOCK(&pool->mu);
        rc = MPROC_EAGAIN;
    }
    pool->threads = rc == 0;
    mproc__deadline dl;
    mproc__deadline_init(&dl, READY_TIMEOUT);
    while (!rc && pool->ready < pool->n && !pool->init_rc) {
        if (mproc__tcond_wait(&pool->cv, &pool->mu, &dl) == MPROC_ETIMEDOUT) {
            rc = MPROC_ECHILDSTART;
            snprintf(pool->init_msg, sizeof pool->init_msg, "workers did not start in time");
        }
    }
    if (!rc) rc = pool->init_rc;
    if (rc) {
        if (pool->init_msg[0]) mproc_log(MPROC_LOG_ERROR, "pool: %s", pool->init_msg);
        pool->state = ST_TERMINATED;
        kill_all_locked(pool);
        MPROC__UNLOCK(&pool->mu);
        destroy(pool);
        return rc;
    }
    pool->state = ST_OPEN;
    MPROC__UNLOCK(&pool->mu);
    *out = pool;
    return 0;
}

/* ---- submitting ------------------------------------------------------------------ */

static bool withdraw(void *owner, mproc_future *f)
{
    mproc_pool *pool = owner;
    MPROC__LOCK(&pool->mu);
    pool_task *t = pool->pend_head;
    while (t && t->f != f) t = t->next;
    if (t) {
        list_unlink(&pool->pend_head, &pool->pend_tail, t);
        pool->unfinished--;
        send_stops_locked(pool);
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
    if (rc) {
        MPROC__UNLOCK(&pool->mu);
        return rc;
    }
    t->id = ++pool->next_id;
    ((pool_task_msg *)t->msg)->id = t->id;
    list_push(&pool->pend_head, &pool->pend_tail, t);
    pool->unfinished++;
    dispatch_locked(pool);
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
                            pool_task_hook hook, void *ud, uint64_t seq)
{
    pool_task *t = calloc(1, sizeof *t);
    if (!t) {
        free(msg);
        return MPROC_ENOMEM;
    }
    *t = (pool_task){.hook = hook,
                     .ud = ud,
                     .seq = seq,
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
    return pool->n;
}

static int submit_future(mproc_pool *pool, uint32_t kind, const void *fn, const void *payload,
                         size_t plen, const mproc_task_opts *opts, mproc_future **out)
{
    mproc_task_opts o = opts ? *opts : (mproc_task_opts){0};
    if (!pool || !fn || !out || (!payload && plen) || o.timeout_ms < MPROC_FOREVER)
        return MPROC_EINVAL;
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
    return submit_future(pool, KIND_APPLY, (const void *)fn, arg, arglen, opts, out);
}

int mproc_pool_apply_value_async(mproc_pool *pool, mproc_value_task_fn fn, const mproc_value *arg,
                                 const mproc_task_opts *opts, mproc_future **out)
{
    void *buf = NULL;
    size_t len = 0;
    mproc_value *nil = arg ? NULL : mproc_value_nil();
    int rc = mproc_value_encode(arg ? arg : nil, &buf, &len);
    mproc_value_free(nil);
    if (rc) return rc;
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

/* ---- shutting down ------------------------------------------------------------- */

int mproc_pool_close(mproc_pool *pool)
{
    if (!pool) return MPROC_EINVAL;
    MPROC__LOCK(&pool->mu);
    if (pool->state == ST_OPEN) pool->state = ST_CLOSED;
    send_stops_locked(pool);
    MPROC__UNLOCK(&pool->mu);
    return 0;
}

int mproc_pool_terminate(mproc_pool *pool)
{
    if (!pool) return MPROC_EINVAL;
    MPROC__LOCK(&pool->mu);
    pool->state = ST_TERMINATED;
    pool_task *all = take_all_locked(pool);
    kill_all_locked(pool);
    pthread_cond_broadcast(&pool->cv);
    MPROC__UNLOCK(&pool->mu);
    end_all(all, MPROC_ESHUTDOWN, "the pool was terminated");
    return 0;
}

int mproc_pool_join(mproc_pool *pool, int timeout_ms)
{
    if (!pool) return MPROC_EINVAL;
    mproc__deadline dl;
    int rc = mproc__deadline_init(&dl, timeout_ms);
    if (rc) return rc;
    MPROC__LOCK(&pool->mu);
    if (pool->state == ST_OPEN) {
        MPROC__UNLOCK(&pool->mu);
        return MPROC_EBADSTATE;
    }
    for (;;) {
        bool alive = false;
        for (int i = 0; i < pool->n; i++) alive |= pool->w[i].p != NULL;
        if (!alive && pool->unfinished == 0) break;
        if (pool->state == ST_BROKEN) {
            kill_all_locked(pool);
            continue;
        }
        if (mproc__tcond_wait(&pool->cv, &pool->mu, &dl) == MPROC_ETIMEDOUT) {
            rc = MPROC_ETIMEDOUT;
            break;
        }
    }
    MPROC__UNLOCK(&pool->mu);
    return rc;
}

size_t mproc_pool_workers(mproc_pool *pool, pid_t *out, size_t cap)
{
    if (!pool) return 0;
    MPROC__LOCK(&pool->mu);
    size_t n = 0;
    for (int i = 0; i < pool->n; i++) {
        if (!pool->w[i].p) continue;
        if (out && n < cap) out[n] = pool->w[i].pid;
        n++;
    }
    MPROC__UNLOCK(&pool->mu);
    return n;
}

void mproc_pool_free(mproc_pool *pool)
{
    if (!pool) return;
    MPROC__LOCK(&pool->mu);
    bool open = pool->state == ST_OPEN || pool->state == ST_CLOSED;
    MPROC__UNLOCK(&pool->mu);
    if (open) mproc_pool_terminate(pool);
    MPROC__LOCK(&pool->mu);
    kill_all_locked(pool);
    MPROC__UNLOCK(&pool->mu);
    destroy(pool);
}
