/* The pool's two threads: the result thread (results, deaths, worker
 * start-up reports) and the monitor thread (worker pidfds, task time
 * limits). See pool/pool.h. */
#include "base/log.h"
#include "pool/parent.h"
#include "queue/queue.h"
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
#include <time.h>
#include <unistd.h>

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

static void break_pool(mproc_pool *pool, int rc, const char *msg);

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
    int rc = w->timed_out ? MPROC_ETIMELIMIT : MPROC_EWORKERDIED;
    pid_t pid = w->pid;
    /* Did it take its head task? Tasks go in inbox order and the n-th
     * message of an inbox is the task with claim number n, so it did if
     * more than that many messages were taken. If not, the task is still
     * in the inbox, for the replacement. */
    pool_task *head = pool_first(&w->tasks);
    bool took = head && mproc__queue_taken(pool->sh->slots[i].inbox, head->claim);
    if (took && !w->retired) {
        lost = head;
        mproc__list_remove(&lost->node);
        w->nassigned--;
        pool->unfinished--;
        if ((msg = malloc(POOL_CRASH_BYTES + 256)))
            describe_death(msg, POOL_CRASH_BYTES + 256, w, code, lost->id,
                           pool->sh->slots[i].crash);
        MPROC__INFO("pool: %s", msg ? msg : "a worker died");
    }
    pool->sh->slots[i].crash[0] = '\0';
    int start_rc = 0;
    char why[160];
    bool needed = pool->state == ST_OPEN ||
                  (pool->state == ST_CLOSED && (!mproc__list_empty(&w->tasks) || !w->stop_sent));
    if (pool->state == ST_STARTING) {
        if (pool->init_rc) goto out; /* its initializer's failure says more */
        pool->init_rc = MPROC_EWORKERDIED;
        snprintf(pool->init_msg, sizeof pool->init_msg,
                 "worker %d exited with code %d while "
                 "starting",
                 (int)pid, code);
    } else if (needed && (start_rc = mproc__pool_start_worker(pool, i)) != 0) {
        pool->state = ST_BROKEN; /* broken below: its tasks could wait for ever */
        snprintf(why, sizeof why, "pool: cannot start a worker to replace worker %d: %s", (int)pid,
                 mproc_strerror(start_rc));
        MPROC__INFO("%s", why);
    }
    if (w->p) mproc__pool_head_started(pool, w);
    mproc__pool_dispatch_locked(pool);
out:
    pthread_cond_broadcast(&pool->cv);
    MPROC__UNLOCK(&pool->mu);
    if (lost) mproc__pool_task_end(lost, rc, NULL, 0, msg ? msg : "a worker died", pid);
    free(msg);
    if (start_rc) break_pool(pool, start_rc, why);
}

/* The pool cannot go on (a replacement could not be started, or its
 * initializer failed): every task fails with that error. */
static void break_pool(mproc_pool *pool, int rc, const char *msg)
{
    MPROC__LOCK(&pool->mu);
    pool->state = ST_BROKEN;
    mproc__list all;
    mproc__pool_take_all_locked(pool, &all);
    for (int i = 0; i < pool->n; i++)
        if (pool->w[i].p) mproc_process_kill(pool->w[i].p);
    pthread_cond_broadcast(&pool->cv);
    MPROC__UNLOCK(&pool->mu);
    mproc__pool_end_all(&all, rc, msg);
}

static void on_result(mproc_pool *pool, const pool_result_msg *m, const char *msg, const void *res,
                      size_t len)
{
    MPROC__LOCK(&pool->mu);
    worker *w = &pool->w[m->worker];
    pool_task *t = pool_first(&w->tasks);
    while (t && t->id != m->id) t = pool_next(&w->tasks, t);
    if (!t || w->gen != m->gen) {
        MPROC__UNLOCK(&pool->mu);
        return;
    }
    bool was_head = t == pool_first(&w->tasks);
    if (was_head) mproc__pool_task_timed(pool, mproc_now_ns() - t->started_ns);
    mproc__list_remove(&t->node);
    w->nassigned--;
    pool->unfinished--;
    if (was_head) mproc__pool_head_started(pool, w);
    mproc__pool_dispatch_locked(pool);
    mproc__pool_send_stops_locked(pool);
    pthread_cond_broadcast(&pool->cv);
    MPROC__UNLOCK(&pool->mu);
    mproc__pool_task_end(t, m->rc, res, len, msg, m->pid);
}

void *mproc__pool_result_thread(void *arg)
{
    mproc_pool *pool = arg;
    for (int nomem = 0;;) {
        void *buf;
        size_t len;
        int rc = mproc_queue_get(pool->sh->results, &buf, &len, MPROC_FOREVER);
        if (rc == MPROC_ENOMEM) { /* the message stays: try again in a moment */
            if (nomem < 100) nomem++;
            struct timespec ts = {0, nomem * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        if (rc) return NULL;
        nomem = 0;
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
        } else if (m.type == MSG_STARTED) { /* an idle worker may take part of it */
            MPROC__LOCK(&pool->mu);
            mproc__pool_dispatch_locked(pool);
            MPROC__UNLOCK(&pool->mu);
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
    if (mproc_queue_put(pool->sh->results, &m, sizeof m, MPROC_FOREVER) == 0)
        pool->w[i].dying = true;
    else /* no arena memory: its sentinel is looked at again in a moment */
        pool->stalled = true;
}

void *mproc__pool_monitor_thread(void *arg)
{
    mproc_pool *pool = arg;
    struct pollfd *pf = pool->mon_pf;
    int *idx = pool->mon_idx;
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
            pool_task *t = pool_first(&w->tasks);
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
        bool stalled = pool->stalled;
        MPROC__UNLOCK(&pool->mu);
        int ms = next == INT64_MAX ? -1 : (int)((next - now + 999999) / 1000000);
        if (stalled) { /* a put found no arena memory: try again in a moment */
            struct timespec ts = {0, 20000000};
            nanosleep(&ts, NULL);
            ms = 0;
        }
        if (poll(pf, (nfds_t)k, ms) < 0) continue;
        if (pf[0].revents) {
            char junk[64];
            while (read(pool->wake[0], junk, sizeof junk) > 0) {
            }
        }
        MPROC__LOCK(&pool->mu);
        if (pool->stalled) {
            pool->stalled = false; /* set again by what fails again */
            mproc__pool_dispatch_locked(pool);
            mproc__pool_send_stops_locked(pool);
        }
        for (int j = 1; j < k; j++) {
            worker *w = &pool->w[idx[j]];
            if (!pf[j].revents || !w->p || w->dying || w->sentinel != pf[j].fd) continue;
            if (!mproc_process_is_alive(w->p)) post_died(pool, idx[j]);
        }
        MPROC__UNLOCK(&pool->mu);
    }
    return NULL;
}
