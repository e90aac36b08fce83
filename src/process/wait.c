/* mproc_wait: waits for connections, process sentinels and fds (poll(2))
 * and for queues (their futex words: one futex_waitv sleep when only
 * queues are waited on, else looked at every millisecond of the poll). */
#include "base/base.h"
#include "conn/conn.h"
#include "platform/platform.h"
#include "process/process.h"
#include "queue/queue.h"
#include "mproc/wait.h"

#include <poll.h>
#include <stdlib.h>

/* The fd to poll for item i, or a negative error. Sets *now if the item is
 * ready without polling. */
static int item_fd(mproc_waitable *w, bool *now)
{
    *now = false;
    switch (w->kind) {
    case MPROC_WAIT_CONN: {
        mproc_conn *c = w->u.conn;
        if (!c) return MPROC_EINVAL;
        int fd = mproc_conn_fileno(c);
        if (fd < 0) return fd;
        if (!mproc_conn_readable(c)) return MPROC_EBADF;
        *now = mproc__conn_has_message(c);
        return fd;
    }
    case MPROC_WAIT_PROCESS: {
        mproc_process *p = w->u.process;
        if (!p) return MPROC_EINVAL;
        if (p->kind == MPROC__CHILD && atomic_load(&p->reaped)) *now = true;
        int fd = mproc_process_sentinel(p);
        if (fd == MPROC_ENOSYS && *now) return -1;
        return fd;
    }
    case MPROC_WAIT_FD:
        return w->u.fd >= 0 ? w->u.fd : MPROC_EINVAL;
    default:
        return MPROC_EINVAL;
    }
}

/* One pass: marks what is ready now, fills the poll set (fd -1 for items
 * not polled) and the queues' futex words. Returns how many are ready, or
 * a negative error. */
static int scan(mproc_waitable *items, size_t n, struct pollfd *pf, _Atomic uint32_t **words,
                uint32_t *seen, size_t *nq, size_t *npoll)
{
    int ready = 0;
    *nq = *npoll = 0;
    for (size_t i = 0; i < n; i++) {
        bool now = false;
        int fd = -1;
        if (items[i].kind == MPROC_WAIT_QUEUE) {
            mproc_queue *q = items[i].u.queue;
            if (!mproc__queue_valid(q)) return MPROC_EINVAL;
            words[*nq] = mproc__queue_wait_word(q, &seen[*nq]); /* before the check */
            now = mproc__queue_ready(q);
            if (!now) (*nq)++;
        } else {
            fd = item_fd(&items[i], &now);
            if (fd < 0 && !now) return fd;
            if (!now) (*npoll)++;
        }
        items[i].ready = now;
        ready += now;
        pf[i] = (struct pollfd){.fd = now ? -1 : fd, .events = POLLIN};
    }
    return ready;
}

/* Registers on every queue, looks again (so that no put is missed: the
 * put's commit and its look at the pollers are sequentially consistent),
 * and sleeps on all their words. Sets *ready when the second look found
 * something. */
static int sleep_on_queues(mproc_waitable *items, size_t n, struct pollfd *pf,
                           _Atomic uint32_t **words, uint32_t *seen, const mproc__deadline *dl,
                           int *ready)
{
    for (size_t i = 0; i < n; i++) mproc__queue_poller(items[i].u.queue, +1);
    size_t nq, npoll;
    int rc = 0;
    if ((*ready = scan(items, n, pf, words, seen, &nq, &npoll)) == 0)
        rc = mproc__futex_waitv(words, seen, nq, dl);
    if (*ready < 0) rc = *ready;
    for (size_t i = 0; i < n; i++) mproc__queue_poller(items[i].u.queue, -1);
    return rc;
}

int mproc_wait(mproc_waitable *items, size_t n, int timeout_ms, size_t *nready)
{
    if (!items && n > 0) return MPROC_EINVAL;
    mproc__deadline dl;
    int rc = mproc__deadline_init(&dl, timeout_ms);
    if (rc) return rc;
    struct pollfd stack[16], *pf = n <= 16 ? stack : malloc(n * sizeof *pf);
    _Atomic uint32_t *wstack[16], **words = n <= 16 ? wstack : malloc(n * sizeof *words);
    uint32_t sstack[16], *seen = n <= 16 ? sstack : malloc(n * sizeof *seen);
    int ready = 0;
    if (!pf || !words || !seen) {
        rc = MPROC_ENOMEM;
        goto out;
    }
    for (;;) {
        size_t nq, npoll;
        if ((ready = scan(items, n, pf, words, seen, &nq, &npoll)) != 0) {
            if (ready < 0) rc = ready;
            break;
        }
        if (nq > 0 && npoll == 0) { /* queues only: one sleep on all of them */
            /* At most a second, as a queue's own sleepers (queue.c): a put
             * killed before its wake-up may have left a message there. */
            mproc__deadline slice = {.at_ns = mproc_now_ns() + 1000000000LL};
            if (!dl.forever && dl.at_ns < slice.at_ns) slice = dl;
            rc = sleep_on_queues(items, n, pf, words, seen, &slice, &ready);
            if (rc == MPROC_ETIMEDOUT && !mproc__deadline_passed(&dl)) {
                rc = 0;
                continue;
            }
            if (rc == MPROC_ETIMEDOUT || ready) break;
            if (rc != MPROC_ENOSYS) continue;
            rc = 0;
        }
        int ms = mproc__deadline_poll_ms(&dl);
        if (nq > 0 && (ms < 0 || ms > 1)) ms = 1; /* queues are checked every millisecond */
        int k = poll(pf, n, ms);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            rc = MPROC__ERRNO();
            break;
        }
        for (size_t i = 0; i < n; i++)
            if (pf[i].fd >= 0 && pf[i].revents) {
                items[i].ready = true;
                ready++;
            }
        if (ready) break;
        if (mproc__deadline_passed(&dl)) {
            rc = MPROC_ETIMEDOUT;
            break;
        }
        if (nq == 0 && k == 0) { /* nothing to re-check: the poll timed out */
            rc = MPROC_ETIMEDOUT;
            break;
        }
    }
out:
    if (pf != stack) free(pf);
    if (words != wstack) free(words);
    if (seen != sstack) free(seen);
    if (nready) *nready = rc ? 0 : (size_t)ready;
    return rc;
}
