/* Starting a new image of the program (spawn, and the forkserver itself). */
#ifndef MPROC_INTERNAL_SPAWN_H
#define MPROC_INTERNAL_SPAWN_H

#include "base/base.h"
#include "process/bootstrap.h"

#include <sys/types.h>

/* Starts a new image that reads the description blob[0..len) and receives
 * fds[0..nfds) (see start_spawn.c for the fd numbers), and waits for its
 * start-up status. On 0, *pid is the child's; with ctl non-NULL the control
 * socket stays open and goes to *ctl. Errors: posix_spawn's, the arena's,
 * MPROC_ECHILDSTART or the code the image reported (logged). */
int mproc__spawn_image(const void *blob, size_t len, const int *fds, size_t nfds, pid_t *pid,
                       int *ctl);

/* The start-up status an image sends: rc and an optional message. */
void mproc__spawn_report(int fd, int rc, const char *msg);

#ifdef MPROC_TESTING /* test hooks (docs/testing.md) */
/* A preload function that sets this makes the server exit after it has
 * read the next request, before it answers (the requester must then fail
 * that start, not hang or start it twice). */
extern volatile int mproc__forkserver_die_after_read;
#endif

/* The forkserver's life, in its new image: reports its status on ctl and
 * serves requests until ctl reaches end of file. */
MPROC__NORETURN void mproc__forkserver_serve(mproc__boot *b, int ctl);

#endif
