/* Connection internals, exposed for tests and other layers. */
#ifndef MPROC_INTERNAL_CONN_H
#define MPROC_INTERNAL_CONN_H

#include "mproc/conn.h"

#include <stdint.h>

/* Largest frame header: -1 then an 8-byte length. */
#define MPROC__FRAME_HDR_MAX 12

/* Writes the header of a `len`-byte message (Python-compatible) into out;
 * returns its size, 4 or 12. */
size_t mproc__frame_header(uint64_t len, uint8_t out[MPROC__FRAME_HDR_MAX]);

/* True if a whole message is buffered in the connection (no read needed). */
bool mproc__conn_has_message(const mproc_conn *c);

#endif
