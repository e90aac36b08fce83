/* The base layer's I/O idioms on file descriptors: the EINTR retry, a
 * wait for an fd before a deadline, and a read of exactly n bytes before
 * one. (mproc__write_all, the whole-buffer write, is in base/base.h.) */
#ifndef MPROC_INTERNAL_IO_H
#define MPROC_INTERNAL_IO_H

#include "base/base.h"

#include <stddef.h>

/* Evaluates `call` into `var` again as long as it fails with EINTR (a
 * negative result and errno EINTR): the one form of the EINTR retry. The
 * call's arguments are evaluated again each time, so a timeout computed
 * from a deadline (mproc__deadline_poll_ms) shrinks as it should.
 *
 *     ssize_t n;
 *     MPROC__RETRY_EINTR(n, read(fd, buf, len));
 *
 * Loops whose EINTR does something else (looks at a deadline, retries
 * other errors too, retakes a lock) are written out where they are. */
#define MPROC__RETRY_EINTR(var, call)                                                              \
    do {                                                                                           \
        (var) = (call);                                                                            \
    } while ((var) < 0 && errno == EINTR)

/* Waits until fd has one of `events` (poll(2) flags) or the deadline
 * passes: 0, MPROC_ETIMEDOUT, or an error. EINTR is retried. */
int mproc__wait_fd(int fd, short events, const mproc__deadline *dl);

/* Reads exactly len bytes from a blocking fd before the deadline, waiting
 * for it to be readable before each read: 0, MPROC_EEOF (the writer
 * closed first), MPROC_ETIMEDOUT, or an error. On a failure an unknown
 * part of buf has been read. */
int mproc__read_exact(int fd, void *buf, size_t len, const mproc__deadline *dl);

#endif
