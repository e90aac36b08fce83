/* Failure injection (base/inject.h): the counter and the wrappers.
 * Built into the library only with -DMPROC_INJECT=ON. */
#ifdef MPROC_INJECT
/* The force-included header defined the wrapping macros before this line
 * could ask it not to: the wrappers call the real functions. */
#undef malloc
#undef calloc
#undef realloc
#undef strdup
#undef strndup
#undef pipe
#undef pipe2
#undef socketpair
#undef socket
#undef accept4
#undef eventfd
#undef memfd_create
#undef fork
#undef posix_spawn
#undef pthread_create
#undef mmap
#undef read
#undef write
#undef recv
#undef send
#undef recvmsg
#undef sendmsg
#undef writev
#undef poll
#include "base/inject.h"

#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>

static _Atomic pid_t armed_pid; /* 0: disarmed */
static _Atomic unsigned armed_kinds;
static _Atomic unsigned long target, count;
static const char *_Atomic fired_site;
static _Atomic unsigned fired_kind;

void mproc__inject_arm(unsigned long n, unsigned kinds)
{
    atomic_store(&armed_pid, 0);
    atomic_store(&count, 0);
    atomic_store(&target, n);
    atomic_store(&fired_site, NULL);
    atomic_store(&armed_kinds, kinds);
    atomic_store(&armed_pid, getpid());
}

unsigned long mproc__inject_disarm(void)
{
    atomic_store(&armed_pid, 0);
    return atomic_load(&count);
}

static const char *kind_name(unsigned kind)
{
    switch (kind) {
    case MPROC__INJ_ALLOC:
        return "alloc";
    case MPROC__INJ_FD:
        return "fd";
    case MPROC__INJ_PROC:
        return "proc";
    case MPROC__INJ_MAP:
        return "map";
    case MPROC__INJ_IO:
        return "eintr";
    case MPROC__INJ_WAKE:
        return "wake";
    case MPROC__INJ_SHORT:
        return "short";
    default:
        return "?";
    }
}

bool mproc__inject_fired(char *where, size_t cap)
{
    const char *site = atomic_load(&fired_site);
    if (where && cap) snprintf(where, cap, "%s %s", site ? site : "-", kind_name(fired_kind));
    return site != NULL;
}

/* Whether calls of this kind count in this process now (cheap when not). */
static bool counting(unsigned kind)
{
    pid_t pid = atomic_load_explicit(&armed_pid, memory_order_relaxed);
    return pid && (atomic_load_explicit(&armed_kinds, memory_order_relaxed) & kind) &&
           getpid() == pid;
}

bool mproc__inject_hit(unsigned kind, const char *site)
{
    if (!counting(kind)) return false;
    unsigned long k = atomic_fetch_add(&count, 1) + 1;
    if (k != atomic_load(&target)) return false;
    fired_kind = kind;
    atomic_store(&fired_site, site);
    return true;
}

/* ---- allocation --------------------------------------------------------------- */

void *mproc__inj_malloc(size_t n, const char *site)
{
    if (mproc__inject_hit(MPROC__INJ_ALLOC, site)) {
        errno = ENOMEM;
        return NULL;
    }
    return malloc(n);
}

void *mproc__inj_calloc(size_t n, size_t size, const char *site)
{
    if (mproc__inject_hit(MPROC__INJ_ALLOC, site)) {
        errno = ENOMEM;
        return NULL;
    }
    return calloc(n, size);
}

void *mproc__inj_realloc(void *p, size_t n, const char *site)
{
    if (mproc__inject_hit(MPROC__INJ_ALLOC, site)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, n);
}

char *mproc__inj_strdup(const char *s, const char *site)
{
    if (mproc__inject_hit(MPROC__INJ_ALLOC, site)) {
        errno = ENOMEM;
        return NULL;
    }
    return strdup(s);
}

char *mproc__inj_strndup(const char *s, size_t n, const char *site)
{
    if (mproc__inject_hit(MPROC__INJ_ALLOC, site)) {
        errno = ENOMEM;
        return NULL;
    }
    return strndup(s, n);
}

void *mproc__inj_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off,
                      const char *site)
{
    if (mproc__inject_hit(MPROC__INJ_MAP, site)) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    return mmap(addr, len, prot, flags, fd, off);
}

/* ---- I/O ---------------------------------------------------------------------- */

/* 0: not a pipe or socket (files are left alone); 1: a pipe; 2: a socket. */
static int stream_kind(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0) return 0;
    return S_ISFIFO(st.st_mode) ? 1 : S_ISSOCK(st.st_mode) ? 2 : 0;
}

/* What an I/O call on fd of n bytes does: 0 the real call, 1 fail with
 * EINTR (only where the call can sleep: a blocking fd, no MSG_DONTWAIT),
 * 2 a short count (ask for half). */
static int io_fate(int fd, size_t n, bool is_write, int flags, const char *site)
{
    if (!counting(MPROC__INJ_IO | MPROC__INJ_SHORT)) return 0;
    int k = stream_kind(fd);
    if (!k) return 0;
    bool can_sleep = !(fcntl(fd, F_GETFL) & O_NONBLOCK) && !(flags & MSG_DONTWAIT);
    if (can_sleep && mproc__inject_hit(MPROC__INJ_IO, site)) return 1;
    bool short_ok = is_write ? (k == 1 ? n > PIPE_BUF : n > 1) : n > 1;
    if (short_ok && mproc__inject_hit(MPROC__INJ_SHORT, site)) return 2;
    return 0;
}

ssize_t mproc__inj_read(int fd, void *buf, size_t n, const char *site)
{
    int f = io_fate(fd, n, false, 0, site);
    if (f == 1) {
        errno = EINTR;
        return -1;
    }
    return read(fd, buf, f == 2 ? n / 2 : n);
}

ssize_t mproc__inj_write(int fd, const void *buf, size_t n, const char *site)
{
    int f = io_fate(fd, n, true, 0, site);
    if (f == 1) {
        errno = EINTR;
        return -1;
    }
    return write(fd, buf, f == 2 ? n / 2 : n);
}

ssize_t mproc__inj_recv(int fd, void *buf, size_t n, int flags, const char *site)
{
    int f = io_fate(fd, n, false, flags, site);
    if (f == 1) {
        errno = EINTR;
        return -1;
    }
    return recv(fd, buf, f == 2 ? n / 2 : n, flags);
}

ssize_t mproc__inj_send(int fd, const void *buf, size_t n, int flags, const char *site)
{
    int f = io_fate(fd, n, true, flags, site);
    if (f == 1) {
        errno = EINTR;
        return -1;
    }
    return send(fd, buf, f == 2 ? n / 2 : n, flags);
}

static size_t iov_bytes(const struct iovec *iov, size_t cnt)
{
    size_t n = 0;
    for (size_t i = 0; i < cnt; i++) n += iov[i].iov_len;
    return n;
}

/* The first half of the bytes of iov, in out (up to 64 entries). */
static size_t iov_half(const struct iovec *iov, size_t cnt, struct iovec *out)
{
    size_t want = iov_bytes(iov, cnt) / 2, k = 0;
    for (size_t i = 0; i < cnt && k < 64 && want; i++) {
        out[k] = iov[i];
        if (out[k].iov_len > want) out[k].iov_len = want;
        want -= out[k++].iov_len;
    }
    return k;
}

ssize_t mproc__inj_writev(int fd, const struct iovec *iov, int cnt, const char *site)
{
    int f = cnt > 0 ? io_fate(fd, iov_bytes(iov, (size_t)cnt), true, 0, site) : 0;
    if (f == 1) {
        errno = EINTR;
        return -1;
    }
    if (f == 2) {
        struct iovec half[64];
        return writev(fd, half, (int)iov_half(iov, (size_t)cnt, half));
    }
    return writev(fd, iov, cnt);
}

ssize_t mproc__inj_sendmsg(int fd, const struct msghdr *m, int flags, const char *site)
{
    int f = io_fate(fd, iov_bytes(m->msg_iov, m->msg_iovlen), true, flags, site);
    if (f == 1) {
        errno = EINTR;
        return -1;
    }
    if (f == 2) {
        struct iovec half[64];
        struct msghdr h = *m;
        h.msg_iovlen = iov_half(m->msg_iov, m->msg_iovlen, half);
        h.msg_iov = half;
        return sendmsg(fd, &h, flags);
    }
    return sendmsg(fd, m, flags);
}

ssize_t mproc__inj_recvmsg(int fd, struct msghdr *m, int flags, const char *site)
{
    int f = io_fate(fd, iov_bytes(m->msg_iov, m->msg_iovlen), false, flags, site);
    if (f == 1) {
        errno = EINTR;
        return -1;
    }
    if (f == 2) {
        struct iovec half[64], *orig = m->msg_iov;
        size_t olen = m->msg_iovlen;
        m->msg_iovlen = iov_half(orig, olen, half);
        m->msg_iov = half;
        ssize_t r = recvmsg(fd, m, flags);
        m->msg_iov = orig;
        m->msg_iovlen = olen;
        return r;
    }
    return recvmsg(fd, m, flags);
}

int mproc__inj_poll(struct pollfd *pf, nfds_t n, int ms, const char *site)
{
    if (ms != 0 && mproc__inject_hit(MPROC__INJ_IO, site)) { /* poll(0) never sleeps */
        errno = EINTR;
        return -1;
    }
    return poll(pf, n, ms);
}

#else
typedef int mproc__inject_off; /* an empty unit is not ISO C */
#endif
