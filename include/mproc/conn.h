/* mproc — connections and pipes (the twin of multiprocessing.connection).
 *
 * A connection carries whole messages of any size. Frames are
 * byte-compatible with Python's multiprocessing.connection: a 4-byte
 * big-endian signed length, or for messages over 2^31-1 bytes the value -1
 * followed by an 8-byte big-endian length, then the payload.
 *
 * Threads: one connection may be used by one sending and one receiving
 * thread at a time; calls of the same direction must be serialised by the
 * caller (as with Python's Connection). Different connections are
 * independent.
 *
 * Processes: a child started with the fork method inherits every
 * connection; under spawn and forkserver, the connection handles found in
 * the argument bytes travel to the child as fds (see context.h). Either
 * way both processes then hold the ends passed, so close the end a process
 * does not use, or the reader never sees end of file.
 */
#ifndef MPROC_CONN_H
#define MPROC_CONN_H

#include "base.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One end of a connection (opaque). */
typedef struct mproc_conn mproc_conn;

/* Creates a pair of connected connections. duplex: both ends read and write
 * (two pipes, one each way: cheaper than a socketpair). Not duplex: *a only
 * reads, *b only writes (one pipe), as Python's Pipe(duplex=False). All fds
 * are close-on-exec.
 * Errors: MPROC_EINVAL (NULL out-pointer), MPROC_EMFILE, MPROC_ENOMEM. */
MPROC_API int mproc_pipe(mproc_conn **a, mproc_conn **b, bool duplex);

/* Wraps an existing fd (a pipe, a stream socket) as a connection, which
 * takes ownership of it. readable/writable give its directions.
 * Errors: MPROC_EINVAL, MPROC_ENOMEM. */
MPROC_API int mproc_conn_from_fd(mproc_conn **out, int fd, bool readable, bool writable);

/* Wraps the fd it reads and the fd it writes (the same fd for a socket,
 * two pipes for a duplex Pipe end; -1 for a direction it lacks, not both),
 * taking ownership of them: the inverse of mproc_conn_fds, for an end
 * whose fds were passed to another process.
 * Errors: MPROC_EINVAL, MPROC_ENOMEM. */
MPROC_API int mproc_conn_from_fds(mproc_conn **out, int rfd, int wfd);

/* Sends buf[0..len) as one message, blocking until all of it is written.
 * Errors: MPROC_EINVAL (buf NULL with len > 0), MPROC_ECLOSED,
 * MPROC_EBADF (read-only end), MPROC_EPIPE (the reader is gone; the message
 * may be partly written and the connection is then unusable for sending). */
MPROC_API int mproc_conn_send_bytes(mproc_conn *c, const void *buf, size_t len);

/* Receives one whole message into a new malloc'd buffer (*buf, free it with
 * free(); never NULL on success, even for an empty message) of *len bytes.
 * A message that is half-read when the timeout expires is kept and resumed
 * by the next receive: nothing is lost.
 * Errors: MPROC_ETIMEDOUT, MPROC_EEOF (the peer closed and everything was
 * read), MPROC_ECLOSED, MPROC_EBADF (write-only end), MPROC_EMSGSIZE (the
 * frame is longer than the maximum; the connection is then broken),
 * MPROC_EPROTO (a malformed frame; the connection is then broken),
 * MPROC_ENOMEM. */
MPROC_API int mproc_conn_recv_bytes(mproc_conn *c, void **buf, size_t *len, int timeout_ms);

/* Receives one whole message into buf[0..cap). On success *len is its size.
 * If the message is larger than cap, returns MPROC_ETOOSMALL with *len set
 * to the size needed; the message stays queued for the next call.
 * Errors: as mproc_conn_recv_bytes, plus MPROC_ETOOSMALL. */
MPROC_API int mproc_conn_recv_bytes_into(mproc_conn *c, void *buf, size_t cap, size_t *len,
                                         int timeout_ms);

/* Waits until a message (or end of file) can be read. Returns 0 when a
 * receive will not block, MPROC_ETIMEDOUT when none arrived in time.
 * Errors: MPROC_ECLOSED, MPROC_EBADF (write-only end). */
MPROC_API int mproc_conn_poll(mproc_conn *c, int timeout_ms);

/* Sends v as one message, CBOR-encoded (see value.h). Errors: as
 * mproc_conn_send_bytes, MPROC_EINVAL, MPROC_ENOMEM. */
struct mproc_value;
MPROC_API int mproc_conn_send_value(mproc_conn *c, const struct mproc_value *v);

/* Receives one message and decodes it as a value (*out, free it with
 * mproc_value_free) under the default decoding limits. Errors: as
 * mproc_conn_recv_bytes, and mproc_value_decode's (MPROC_EPROTO,
 * MPROC_E2BIG); a message that does not decode is consumed. */
MPROC_API int mproc_conn_recv_value(mproc_conn *c, struct mproc_value **out, int timeout_ms);

/* Largest message a receive accepts (default: SIZE_MAX/2, i.e. no limit
 * beyond memory). A longer frame fails with MPROC_EMSGSIZE. */
MPROC_API int mproc_conn_set_max_message(mproc_conn *c, size_t max);

/* The fd to poll for reading (for a write-only end, the fd it writes), or
 * MPROC_ECLOSED. The connection still owns it. A duplex Pipe end has a
 * second fd for writing. */
MPROC_API int mproc_conn_fileno(const mproc_conn *c);

/* The fd the end reads and the fd it writes (-1 for a direction it lacks;
 * the same fd for a socket). The connection still owns them.
 * Errors: MPROC_EINVAL (NULL argument), MPROC_ECLOSED. */
MPROC_API int mproc_conn_fds(const mproc_conn *c, int *rfd, int *wfd);

/* What the end may do, and whether it was closed. */
MPROC_API bool mproc_conn_readable(const mproc_conn *c);
MPROC_API bool mproc_conn_writable(const mproc_conn *c);
MPROC_API bool mproc_conn_closed(const mproc_conn *c);

/* Closes the fd and drops buffered input; the handle stays valid and later
 * calls return MPROC_ECLOSED. A second close is harmless; NULL is a no-op. */
MPROC_API void mproc_conn_close(mproc_conn *c);

/* Closes (if open) and frees the connection. NULL is a no-op. */
MPROC_API void mproc_conn_free(mproc_conn *c);

#ifdef __cplusplus
}
#endif
#endif
