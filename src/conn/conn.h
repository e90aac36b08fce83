/* Connection internals, exposed for tests and other layers. */
#ifndef MPROC_INTERNAL_CONN_H
#define MPROC_INTERNAL_CONN_H

#include "mproc/conn.h"

#include <stddef.h>
#include <stdint.h>

/* Largest frame header: -1 then an 8-byte length. */
#define MPROC__FRAME_HDR_MAX 12

/* Writes the header of a `len`-byte message (Python-compatible) into out;
 * returns its size, 4 or 12. */
size_t mproc__frame_header(uint64_t len, uint8_t out[MPROC__FRAME_HDR_MAX]);

/* Connections passed to a child of another program image (spawn,
 * forkserver) travel as fds: every live connection of this process is in a
 * registry, the argument bytes are scanned for their addresses (at
 * pointer-aligned offsets), and the child gets new connections on the same
 * fds, whose addresses replace the old ones in its copy of the bytes. */
typedef struct mproc__conn_hit {
    size_t off; /* where the handle is in the bytes */
    mproc_conn *conn;
} mproc__conn_hit;

int mproc__conn_register(const mproc_conn *c);
void mproc__conn_unregister(const mproc_conn *c);
/* Fills hits[0..cap) with the live connection handles found in bytes;
 * returns how many there are (may exceed cap). */
size_t mproc__conn_scan(const void *bytes, size_t len, mproc__conn_hit *hits, size_t cap);

/* The fds of c: its read fd (or -1) and write fd (or -1). */
void mproc__conn_fds(const mproc_conn *c, int *rfd, int *wfd);
/* Frees c without closing its fds (someone else closes them). */
void mproc__conn_forget(mproc_conn *c);
/* A connection on fds received from the parent (either may be -1). */
mproc_conn *mproc__conn_adopt(int rfd, int wfd);

/* The largest message a receive accepts (mproc_conn_set_max_message). */
size_t mproc__conn_max_message(const mproc_conn *c);

/* A receive on a socket first polls it without sleeping for up to ns
 * nanoseconds (0: never): a reply that comes within a round trip is then
 * read without the sleep and the wake-up, which cost more than the round
 * trip itself on an idle CPU. For request/reply connections, with a CPU to
 * spare, only. */
void mproc__conn_set_spin(mproc_conn *c, uint32_t ns);

/* True if a receive returns without reading: a whole message is buffered,
 * or a buffered header that the receive refuses at once (malformed, over
 * the cap), or the connection is broken. */
bool mproc__conn_has_message(const mproc_conn *c);

#endif
