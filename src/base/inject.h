/* Failure injection, for test builds only (CMake -DMPROC_INJECT=ON; see
 * docs/testing.md).
 *
 * In such a build this header is force-included (-include) before every
 * source file of the library, and the libc calls below become wrappers that
 * count every call and make the Nth one fail as it can fail for real:
 *
 *   MPROC__INJ_ALLOC  malloc, calloc, realloc, strdup, strndup (NULL,
 *                     ENOMEM) and arena allocation (MPROC_ENOMEM)
 *   MPROC__INJ_FD     pipe, pipe2, socketpair, socket, accept4, eventfd,
 *                     memfd_create (-1, EMFILE)
 *   MPROC__INJ_PROC   fork (-1, EAGAIN), posix_spawn and pthread_create
 *                     (EAGAIN)
 *   MPROC__INJ_MAP    mmap (MAP_FAILED, ENOMEM)
 *   MPROC__INJ_IO     read, write, send, recv, sendmsg, recvmsg, writev on
 *                     a blocking pipe or socket (no MSG_DONTWAIT), and
 *                     poll with a timeout: EINTR (where they can sleep)
 *   MPROC__INJ_WAKE   a futex wait returns at once (a spurious wake-up)
 *   MPROC__INJ_SHORT  the same I/O calls, where a short count is legal (a
 *                     read of more than a byte; a write of more than
 *                     PIPE_BUF bytes to a pipe, of more than one to a
 *                     socket): half the bytes are asked for
 *
 * The first four are "hard" failures, the last three "soft" ones that a
 * correct caller absorbs. Only the process that armed the injection
 * (mproc__inject_arm) counts and fails calls: its fork children, spawn
 * children and forkserver run unharmed. Calls of every thread of that
 * process count.
 *
 * Without MPROC_INJECT the header is not force-included; a file that
 * includes it for MPROC__INJ_HIT gets a constant 0, so the release library
 * carries no cost. */
#ifndef MPROC_INTERNAL_INJECT_H
#define MPROC_INTERNAL_INJECT_H

#define MPROC__INJ_ALLOC 0x01u
#define MPROC__INJ_FD    0x02u
#define MPROC__INJ_PROC  0x04u
#define MPROC__INJ_MAP   0x08u
#define MPROC__INJ_IO    0x10u
#define MPROC__INJ_WAKE  0x20u
#define MPROC__INJ_SHORT 0x40u
#define MPROC__INJ_HARD  (MPROC__INJ_ALLOC | MPROC__INJ_FD | MPROC__INJ_PROC | MPROC__INJ_MAP)

#ifdef MPROC_INJECT

/* Every header that declares a wrapped name comes first, so that the
 * macros below never rewrite a declaration. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

/* Arms the injection in the calling process: from now on calls of the
 * kinds in `kinds` are counted, and the nth of them (n >= 1) fails, once;
 * n == 0 only counts. Resets the count. */
void mproc__inject_arm(unsigned long n, unsigned kinds);
/* Disarms; returns the number of calls counted since the arm. */
unsigned long mproc__inject_disarm(void);
/* Whether the armed failure has happened, and where ("file:line kind"). */
bool mproc__inject_fired(char *where, size_t cap);

/* True when the call at `site` is the one to fail (counts it). */
bool mproc__inject_hit(unsigned kind, const char *site);
#define MPROC__INJ_STR2(x)   #x
#define MPROC__INJ_STR(x)    MPROC__INJ_STR2(x)
#define MPROC__INJ_SITE      __FILE__ ":" MPROC__INJ_STR(__LINE__)
#define MPROC__INJ_HIT(kind) mproc__inject_hit((kind), MPROC__INJ_SITE)

void *mproc__inj_malloc(size_t n, const char *site);
void *mproc__inj_calloc(size_t n, size_t size, const char *site);
void *mproc__inj_realloc(void *p, size_t n, const char *site);
char *mproc__inj_strdup(const char *s, const char *site);
char *mproc__inj_strndup(const char *s, size_t n, const char *site);
void *mproc__inj_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off,
                      const char *site);
ssize_t mproc__inj_read(int fd, void *buf, size_t n, const char *site);
ssize_t mproc__inj_write(int fd, const void *buf, size_t n, const char *site);
ssize_t mproc__inj_recv(int fd, void *buf, size_t n, int flags, const char *site);
ssize_t mproc__inj_send(int fd, const void *buf, size_t n, int flags, const char *site);
ssize_t mproc__inj_recvmsg(int fd, struct msghdr *m, int flags, const char *site);
ssize_t mproc__inj_sendmsg(int fd, const struct msghdr *m, int flags, const char *site);
ssize_t mproc__inj_writev(int fd, const struct iovec *iov, int cnt, const char *site);
int mproc__inj_poll(struct pollfd *pf, nfds_t n, int ms, const char *site);

/* inject.c undefines these, to call the real functions. */
#define malloc(n)     mproc__inj_malloc((n), MPROC__INJ_SITE)
#define calloc(n, s)  mproc__inj_calloc((n), (s), MPROC__INJ_SITE)
#define realloc(p, n) mproc__inj_realloc((p), (n), MPROC__INJ_SITE)
#define strdup(s)     mproc__inj_strdup((s), MPROC__INJ_SITE)
#define strndup(s, n) mproc__inj_strndup((s), (n), MPROC__INJ_SITE)
/* -1 with errno = e when the call is the one to fail, else the call. */
#define MPROC__INJ_OR(kind, e, call) (MPROC__INJ_HIT(kind) ? (errno = (e), -1) : (call))
#define pipe(f)                      MPROC__INJ_OR(MPROC__INJ_FD, EMFILE, pipe(f))
#define pipe2(f, fl)                 MPROC__INJ_OR(MPROC__INJ_FD, EMFILE, pipe2((f), (fl)))
#define socketpair(d, t, p, sv)                                                                    \
    MPROC__INJ_OR(MPROC__INJ_FD, EMFILE, socketpair((d), (t), (p), (sv)))
#define socket(d, t, p)     MPROC__INJ_OR(MPROC__INJ_FD, EMFILE, socket((d), (t), (p)))
#define accept4(s, a, l, f) MPROC__INJ_OR(MPROC__INJ_FD, EMFILE, accept4((s), (a), (l), (f)))
#define eventfd(v, f)       MPROC__INJ_OR(MPROC__INJ_FD, EMFILE, eventfd((v), (f)))
#define memfd_create(n, f)  MPROC__INJ_OR(MPROC__INJ_FD, EMFILE, memfd_create((n), (f)))
#define fork()              MPROC__INJ_OR(MPROC__INJ_PROC, EAGAIN, fork())
/* These two return the error number. */
#define posix_spawn(...)       (MPROC__INJ_HIT(MPROC__INJ_PROC) ? EAGAIN : posix_spawn(__VA_ARGS__))
#define pthread_create(...)    (MPROC__INJ_HIT(MPROC__INJ_PROC) ? EAGAIN : pthread_create(__VA_ARGS__))
#define mmap(a, l, p, f, d, o) mproc__inj_mmap((a), (l), (p), (f), (d), (o), MPROC__INJ_SITE)
#define read(d, b, n)          mproc__inj_read((d), (b), (n), MPROC__INJ_SITE)
#define write(d, b, n)         mproc__inj_write((d), (b), (n), MPROC__INJ_SITE)
#define recv(d, b, n, f)       mproc__inj_recv((d), (b), (n), (f), MPROC__INJ_SITE)
#define send(d, b, n, f)       mproc__inj_send((d), (b), (n), (f), MPROC__INJ_SITE)
#define recvmsg(d, m, f)       mproc__inj_recvmsg((d), (m), (f), MPROC__INJ_SITE)
#define sendmsg(d, m, f)       mproc__inj_sendmsg((d), (m), (f), MPROC__INJ_SITE)
#define writev(d, v, c)        mproc__inj_writev((d), (v), (c), MPROC__INJ_SITE)
#define poll(p, n, t)          mproc__inj_poll((p), (n), (t), MPROC__INJ_SITE)

#else /* no injection: nothing fails */
#define MPROC__INJ_HIT(kind) 0
#endif

#endif
