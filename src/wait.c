/* mproc_wait: poll(2) over connections, process sentinels and fds. */
#include "internal/base.h"
#include "internal/conn.h"
#include "internal/process.h"
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

int mproc_wait(mproc_waitable *items, size_t n, int timeout_ms, size_t *nready)
{
    if (!items && n > 0) return MPROC_EINVAL;
    mproc__deadline dl;
    int rc = mproc__deadline_init(&dl, timeout_ms);
    if (rc) return rc;
    struct pollfd stack[16], *pf = n <= 16 ? stack : malloc(n * sizeof *pf);
    if (!pf) return MPROC_ENOMEM;
    size_t ready = 0;
    for (size_t i = 0; i < n; i++) {
        bool now;
        int fd = item_fd(&items[i], &now);
        if (fd < 0 && !now) {
            rc = fd;
            goto out;
        }
        items[i].ready = now;
        ready += now;
        pf[i] = (struct pollfd){.fd = now ? -1 : fd, .events = POLLIN};
    }
    while (ready == 0) {
        int k = poll(pf, n, mproc__deadline_poll_ms(&dl));
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            rc = MPROC__ERRNO();
            goto out;
        }
        if (k == 0) {
            rc = MPROC_ETIMEDOUT;
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            if (pf[i].fd >= 0 && pf[i].revents) {
                items[i].ready = true;
                ready++;
            }
    }
out:
    if (pf != stack) free(pf);
    if (nready) *nready = rc ? 0 : ready;
    return rc;
}
