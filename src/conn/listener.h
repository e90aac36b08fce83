/* The listener's non-blocking side of the authkey handshake
 * (listener_handshake.c), used by accept to run the handshakes of all its
 * new connections at once (listener.c). */
#ifndef MPROC_INTERNAL_LISTENER_H
#define MPROC_INTERNAL_LISTENER_H

#include "conn/auth.h"
#include "base/base.h"
#include "mproc/listener.h"

#include <stddef.h>
#include <stdint.h>

/* One connection's handshake: what we sent and what came so far. */
typedef struct mproc__hs {
    int fd;                      /* the accepted socket (blocking; I/O uses MSG_DONTWAIT) */
    int state;                   /* see listener_handshake.c */
    mproc__deadline deadline;    /* its own bound (auth.timeout_ms from its accept) */
    bool refused;                /* we refused its legacy challenge */
    uint8_t chal[MPROC__HS_MAX]; /* our challenge */
    size_t clen;
    uint8_t out[4 + MPROC__HS_MAX]; /* a frame being sent */
    size_t outlen, outoff;
    uint8_t in[12 + MPROC__HS_MAX]; /* a frame being read */
    size_t inlen;
} mproc__hs;

/* Starts the handshake on fd (the listener speaks first): 0 or MPROC_EIO. */
int mproc__hs_begin(mproc__hs *h, int fd, const mproc__auth *a, const mproc__deadline *dl);

/* Goes on as far as it can without blocking: 0 (the peer is
 * authenticated, and we to it), MPROC_EAGAIN (*events: POLLIN or POLLOUT
 * to wait for), MPROC_EAUTH (the peer failed, broke off or misbehaved), or
 * another error. The deadline is the caller's to watch. */
int mproc__hs_step(mproc__hs *h, const mproc__auth *a, short *events);

/* What closing l would remove, and a process killed with it open leaves
 * behind: its socket file and its private directory (a temporary
 * address), each NULL where there is none or it is another process's. For
 * a process that removes them from a signal handler. */
void mproc__listener_leftovers(const mproc_listener *l, const char **file, const char **dir);

#endif
