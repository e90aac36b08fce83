/* mproc — waiting on many objects at once (multiprocessing.connection.wait).
 */
#ifndef MPROC_WAIT_H
#define MPROC_WAIT_H

#include "conn.h"
#include "process.h"
#include "queue.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What an mproc_waitable refers to. */
typedef enum mproc_wait_kind {
    MPROC_WAIT_CONN = 1,    /* ready: a message or end of file can be read */
    MPROC_WAIT_PROCESS = 2, /* ready: the process has exited */
    MPROC_WAIT_FD = 3,      /* ready: the fd is readable (or hung up) */
    MPROC_WAIT_QUEUE = 4,   /* ready: a get would not wait (a message, or closed) */
} mproc_wait_kind;

/* One object to wait on. Fill kind and the matching member; `ready` is set
 * by mproc_wait. */
typedef struct mproc_waitable {
    mproc_wait_kind kind; /* which member of u is set */
    union {
        mproc_conn *conn;
        mproc_process *process;
        int fd;
        mproc_queue *queue;
    } u;        /* the object */
    bool ready; /* set by mproc_wait */
} mproc_waitable;

/* A waitable for each kind of object. */
#define MPROC_WAITABLE_CONN(c)    ((mproc_waitable){.kind = MPROC_WAIT_CONN, .u.conn = (c)})
#define MPROC_WAITABLE_PROCESS(p) ((mproc_waitable){.kind = MPROC_WAIT_PROCESS, .u.process = (p)})
#define MPROC_WAITABLE_FD(f)      ((mproc_waitable){.kind = MPROC_WAIT_FD, .u.fd = (f)})
#define MPROC_WAITABLE_QUEUE(q)   ((mproc_waitable){.kind = MPROC_WAIT_QUEUE, .u.queue = (q)})

/* Waits until at least one object is ready, sets each one's `ready` flag,
 * and stores how many are ready in *nready (may be NULL). Returns 0, or
 * MPROC_ETIMEDOUT (every flag false) when none became ready in time.
 * Queues have no fd: waiting on queues alone sleeps on their futex words
 * together (futex_waitv); queues mixed with fds are checked at least every
 * millisecond while the fds are polled.
 * Errors: MPROC_EINVAL (NULL items with n > 0, an unknown kind, a NULL or
 * invalid object), MPROC_ECLOSED (a closed connection), MPROC_EBADF (a
 * write-only connection), MPROC_ENOTSTARTED (an unstarted process).
 * Thread-safe as long as no other thread receives on the same connections. */
MPROC_API int mproc_wait(mproc_waitable *items, size_t n, int timeout_ms, size_t *nready);

#ifdef __cplusplus
}
#endif
#endif
