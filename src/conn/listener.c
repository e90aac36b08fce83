/* Listener and Client (multiprocessing.connection's twins): bound
 * sockets, accept and connect with timeouts, and the authkey handshake on
 * every new connection.
 *
 * With a key, accept runs the handshakes of all the connections it has
 * taken from the socket at once, without blocking on any
 * (listener_handshake.c), each with its own deadline, and returns the
 * first that ends: a silent client holds nobody. They are watched in one
 * epoll set with the listening socket (which is what fileno gives then).
 * A handshake still under way when accept returns stays for the next
 * accept, in any thread. Threads run the set at once, each step under the
 * listener's lock. A fork child starts with a set of its own (its copies
 * of the parent's connections closed: their handshakes are the
 * parent's). */
#include "conn/address.h"
#include "conn/auth.h"
#include "base/base.h"
#include "base/io.h"
#include "conn/listener.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_BACKLOG 64
#define MAX_PENDING     256 /* handshakes under way at once, at most (and at most the backlog) */
#define LISTEN_KEY      UINT64_MAX /* the listening socket's epoll key */
#define RESETTING       ((pid_t)-1)

struct mproc_listener {
    int fd; /* non-blocking listening socket, -1 once closed */
    char *address;
    char *unlink_path; /* Unix path to remove on close, or NULL */
    char *tmpdir;      /* private directory to remove on close, or NULL */
    pid_t owner;       /* only the creator removes them */
    mproc__auth auth;
    /* With a key: the handshakes under way (see the top of the file). */
    _Atomic pid_t pid;  /* the process the set and the lock belong to */
    pthread_mutex_t mu; /* guards what follows */
    int epfd;           /* the listening socket and every pending one; -1 without a key */
    mproc__hs *pend;    /* maxpend slots */
    size_t npend, maxpend;
    bool watching; /* the listening socket is in the set (not while pend is full) */
};

/* A socket of the family, close-on-exec and non-blocking. */
static int new_socket(int family)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    return fd < 0 ? MPROC__ERRNO() : fd;
}

static void tcp_nodelay(int fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Binds and listens on one socket address; returns the fd or an error. */
static int bind_listen(const struct sockaddr *sa, socklen_t len, int backlog)
{
    int fd = new_socket(sa->sa_family);
    if (fd < 0) return fd;
    int one = 1;
    if (sa->sa_family != AF_UNIX) (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, sa, len) != 0 || listen(fd, backlog) != 0) {
        int rc = MPROC__ERRNO();
        close(fd);
        return rc;
    }
    return fd;
}

static int listen_tcp(const mproc__addr *a, int backlog)
{
    struct addrinfo *res;
    int rc = mproc__addr_resolve(a, true, &res);
    if (rc) return rc;
    rc = MPROC_EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = bind_listen(ai->ai_addr, ai->ai_addrlen, backlog);
        if (fd >= 0) {
            rc = fd;
            break;
        }
        rc = fd;
    }
    freeaddrinfo(res);
    return rc;
}

/* A private directory and a socket path in it (Python's
 * arbitrary_address). */
static int temp_address(mproc_listener *l, mproc__addr *a)
{
    const char *tmp = mproc__setting(MPROC__SET_TMPDIR);
    size_t n = strlen(tmp) + 32;
    if (!(l->tmpdir = malloc(n))) return MPROC_ENOMEM;
    snprintf(l->tmpdir, n, "%s/mproc-XXXXXX", tmp);
    if (!mkdtemp(l->tmpdir)) {
        int rc = MPROC__ERRNO();
        free(l->tmpdir);
        l->tmpdir = NULL;
        return rc;
    }
    char path[sizeof a->un.sun_path + 16];
    snprintf(path, sizeof path, "%s/listener-%d", l->tmpdir, (int)getpid());
    return mproc__addr_parse(path, a);
}

/* ---- the handshakes under way ---------------------------------------------- */

static int watch(mproc_listener *l, int op, int fd, uint32_t events, uint64_t key)
{
    struct epoll_event ev = {.events = events, .data.u64 = key};
    return epoll_ctl(l->epfd, op, fd, &ev) == 0 ? 0 : MPROC__ERRNO();
}

/* The set for a listener with a key: the listening socket in a new epoll
 * instance. */
static int make_set(mproc_listener *l)
{
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) return MPROC__ERRNO();
    l->watching = true;
    return watch(l, EPOLL_CTL_ADD, l->fd, EPOLLIN, LISTEN_KEY);
}

/* Takes handshake i out of the set; its socket is closed unless keep. */
static void drop_pending(mproc_listener *l, size_t i, bool keep)
{
    mproc__hs *h = &l->pend[i];
    (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, h->fd, NULL);
    if (!keep) close(h->fd);
    OPENSSL_cleanse(h, sizeof *h);
    l->pend[i] = l->pend[--l->npend];
    if (!l->watching && l->fd >= 0 && watch(l, EPOLL_CTL_MOD, l->fd, EPOLLIN, LISTEN_KEY) == 0)
        l->watching = true;
}

/* In a process other than the one the set was made in (a fork child): a
 * set of its own. The inherited epoll instance is the parent's, so it is
 * only closed here, never changed; the pending sockets are the parent's
 * handshakes, so this process's copies are closed; the lock may have been
 * held by a thread that does not exist here. */
static int adopt(mproc_listener *l)
{
    pid_t me = getpid(), seen = atomic_load(&l->pid);
    if (seen == me) return 0;
    if (seen == RESETTING || !atomic_compare_exchange_strong(&l->pid, &seen, RESETTING)) {
        while (atomic_load(&l->pid) != me) sched_yield(); /* another thread does it */
        return 0;
    }
    pthread_mutex_init(&l->mu, NULL);
    for (size_t i = 0; i < l->npend; i++) close(l->pend[i].fd);
    l->npend = 0;
    if (l->epfd >= 0) close(l->epfd);
    int rc = l->fd >= 0 ? make_set(l) : 0;
    atomic_store(&l->pid, me);
    return rc;
}

/* The deadline of the handshake that ends first, or of the call. */
static int wait_ms(const mproc_listener *l, const mproc__deadline *dl)
{
    int ms = mproc__deadline_poll_ms(dl);
    for (size_t i = 0; i < l->npend; i++) {
        int m = mproc__deadline_poll_ms(&l->pend[i].deadline);
        if (m >= 0 && (ms < 0 || m < ms)) ms = m;
    }
    return ms;
}

/* Steps handshake i: 0 and *out (done: its connection), MPROC_EAGAIN
 * (waiting), or its failure (dropped). */
static int step_pending(mproc_listener *l, size_t i, mproc_conn **out)
{
    mproc__hs *h = &l->pend[i];
    short events = 0;
    int rc = mproc__hs_step(h, &l->auth, &events);
    if (rc == MPROC_EAGAIN) {
        uint32_t ev = events == POLLOUT ? EPOLLOUT : EPOLLIN;
        if ((rc = watch(l, EPOLL_CTL_MOD, h->fd, ev, (uint64_t)h->fd)) == 0) return MPROC_EAGAIN;
    }
    if (rc == 0) {
        int fd = h->fd;
        drop_pending(l, i, true);
        if ((rc = mproc_conn_from_fd(out, fd, true, true)) != 0) close(fd);
        return rc;
    }
    drop_pending(l, i, false);
    return rc;
}

/* Takes new connections from the socket while there is room, starting
 * their handshakes: 0, or a connection that is done already (*out). */
static int take_new(mproc_listener *l, mproc_conn **out)
{
    while (l->npend < l->maxpend) {
        int s = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        if (s < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return MPROC__ERRNO();
        }
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        if (getsockname(s, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family != AF_UNIX)
            tcp_nodelay(s);
        mproc__deadline dl;
        mproc__deadline_init(&dl, l->auth.timeout_ms);
        mproc__hs *h = &l->pend[l->npend];
        int rc = mproc__hs_begin(h, s, &l->auth, &dl);
        if (rc == 0) rc = watch(l, EPOLL_CTL_ADD, s, EPOLLIN, (uint64_t)s);
        if (rc) {
            close(s);
            return rc;
        }
        l->npend++;
        rc = step_pending(l, l->npend - 1, out); /* the challenge goes out now */
        if (rc != MPROC_EAGAIN) return rc == 0 ? 1 : rc;
    }
    if (l->watching && watch(l, EPOLL_CTL_MOD, l->fd, 0, LISTEN_KEY) == 0) l->watching = false;
    return 0;
}

/* accept with a key. Returns with the lock not held. */
static int accept_auth(mproc_listener *l, mproc_conn **out, const mproc__deadline *dl)
{
    int rc = adopt(l);
    if (rc) return rc;
    MPROC__LOCK(&l->mu);
    for (;;) {
        if (l->fd < 0) {
            rc = MPROC_ECLOSED;
            break;
        }
        /* A handshake past its own bound fails (the caller's passing is
         * only a timeout: its handshakes go on at the next accept). */
        size_t i = 0;
        while (i < l->npend && !mproc__deadline_passed(&l->pend[i].deadline)) i++;
        if (i < l->npend) {
            drop_pending(l, i, false);
            rc = MPROC_EAUTH;
            break;
        }
        int ms = wait_ms(l, dl);
        MPROC__UNLOCK(&l->mu);
        struct epoll_event ev[16];
        int n = epoll_wait(l->epfd, ev, 16, ms);
        int e = errno;
        MPROC__LOCK(&l->mu);
        if (n < 0 && e != EINTR) {
            rc = mproc__err_from_errno(e);
            break;
        }
        rc = MPROC_EAGAIN;
        for (int k = 0; k < n && rc == MPROC_EAGAIN; k++) {
            if (ev[k].data.u64 == LISTEN_KEY) {
                int r = l->fd >= 0 ? take_new(l, out) : 0;
                rc = r == 1 ? 0 : r < 0 ? r : MPROC_EAGAIN;
                continue;
            }
            /* Another thread may have ended it (and the fd number be
             * another's now: then it only steps sooner). */
            for (i = 0; i < l->npend && l->pend[i].fd != (int)ev[k].data.u64; i++) {
            }
            if (i < l->npend) rc = step_pending(l, i, out);
        }
        if (rc != MPROC_EAGAIN) break;
        if (mproc__deadline_passed(dl)) {
            rc = MPROC_ETIMEDOUT;
            break;
        }
    }
    MPROC__UNLOCK(&l->mu);
    return rc;
}

int mproc_listener_new(mproc_listener **out, const char *address, const mproc_listener_opts *opts)
{
    if (!out) return MPROC_EINVAL;
    static const mproc_listener_opts defaults;
    if (!opts) opts = &defaults;
    if (opts->backlog < 0) return MPROC_EINVAL;
    mproc__init();
    mproc_listener *l = calloc(1, sizeof *l);
    if (!l) return MPROC_ENOMEM;
    l->fd = -1;
    l->epfd = -1;
    l->owner = getpid();
    atomic_init(&l->pid, l->owner);
    pthread_mutex_init(&l->mu, NULL);
    mproc__addr a = {0}; /* set on success; zeroed for gcc 12's analyzer, which loses
                          * temp_address's error return */
    int rc = mproc__auth_resolve(&opts->auth, &l->auth);
    if (!rc) rc = address && *address ? mproc__addr_parse(address, &a) : temp_address(l, &a);
    int backlog = opts->backlog ? opts->backlog : DEFAULT_BACKLOG;
    if (!rc) {
        int fd = a.kind == MPROC__ADDR_TCP
                     ? listen_tcp(&a, backlog)
                     : bind_listen((const struct sockaddr *)&a.un, a.un_len, backlog);
        if (fd < 0)
            rc = fd;
        else
            l->fd = fd;
    }
    if (!rc && a.kind == MPROC__ADDR_UNIX && !a.abstract &&
        !(l->unlink_path = strdup(a.un.sun_path)))
        rc = MPROC_ENOMEM;
    if (!rc) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        if (getsockname(l->fd, (struct sockaddr *)&ss, &len) != 0)
            rc = MPROC__ERRNO();
        else if (!(l->address = mproc__addr_format((struct sockaddr *)&ss, len)))
            rc = MPROC_ENOMEM;
    }
    if (!rc && l->auth.on) {
        l->maxpend = backlog < MAX_PENDING ? (size_t)backlog : MAX_PENDING;
        if (!(l->pend = calloc(l->maxpend, sizeof *l->pend)))
            rc = MPROC_ENOMEM;
        else
            rc = make_set(l);
    }
    if (rc) {
        mproc_listener_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

int mproc_listener_accept(mproc_listener *l, mproc_conn **out, int timeout_ms)
{
    if (!l || !out) return MPROC_EINVAL;
    if (l->fd < 0) return MPROC_ECLOSED;
    mproc__deadline dl;
    int rc = mproc__deadline_init(&dl, timeout_ms);
    if (rc) return rc;
    if (l->auth.on) return accept_auth(l, out, &dl);
    int s;
    for (;;) {
        if ((rc = mproc__wait_fd(l->fd, POLLIN, &dl))) return rc;
        s = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        if (s >= 0) break;
        /* Another thread or process took it, or it went away: wait again. */
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED ||
            errno == EPROTO)
            continue;
        return MPROC__ERRNO();
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(s, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family != AF_UNIX)
        tcp_nodelay(s);
    if ((rc = mproc_conn_from_fd(out, s, true, true))) close(s);
    return rc;
}

const char *mproc_listener_address(const mproc_listener *l)
{
    return l && l->address ? l->address : "";
}

int mproc_listener_fileno(const mproc_listener *l)
{
    if (!l) return MPROC_EINVAL;
    if (l->fd < 0) return MPROC_ECLOSED;
    if (!l->auth.on) return l->fd;
    int rc = adopt((mproc_listener *)l); /* a fork child's set is its own */
    return rc ? rc : l->epfd;
}

void mproc_listener_close(mproc_listener *l)
{
    if (!l || l->fd < 0) return;
    if (l->auth.on && adopt(l) == 0) {
        MPROC__LOCK(&l->mu);
        while (l->npend) drop_pending(l, l->npend - 1, false);
        MPROC__UNLOCK(&l->mu);
    }
    if (l->epfd >= 0) close(l->epfd);
    l->epfd = -1;
    close(l->fd);
    l->fd = -1;
    if (l->owner == getpid()) {
        if (l->unlink_path) unlink(l->unlink_path);
        if (l->tmpdir) rmdir(l->tmpdir);
    }
}

void mproc__listener_leftovers(const mproc_listener *l, const char **file, const char **dir)
{
    bool mine = l && l->owner == getpid();
    *file = mine ? l->unlink_path : NULL;
    *dir = mine ? l->tmpdir : NULL;
}

void mproc_listener_free(mproc_listener *l)
{
    if (!l) return;
    mproc_listener_close(l);
    OPENSSL_cleanse(l->auth.key, l->auth.key_len);
    pthread_mutex_destroy(&l->mu);
    free(l->pend);
    free(l->address);
    free(l->unlink_path);
    free(l->tmpdir);
    free(l);
}

/* ---- client ------------------------------------------------------------------ */

/* Connects a new non-blocking socket to sa before the deadline; returns
 * the fd (made blocking again) or an error. */
static int connect_one(const struct sockaddr *sa, socklen_t len, const mproc__deadline *dl)
{
    int fd = new_socket(sa->sa_family);
    if (fd < 0) return fd;
    int rc = 0;
    for (;;) {
        int r;
        MPROC__RETRY_EINTR(r, connect(fd, sa, len));
        if (r == 0) break;
        if (errno == EAGAIN && sa->sa_family == AF_UNIX) { /* the backlog is full */
            if (mproc__deadline_passed(dl)) {
                rc = MPROC_ETIMEDOUT;
                break;
            }
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
            continue;
        }
        if (errno != EINPROGRESS) {
            rc = MPROC__ERRNO();
            break;
        }
        if ((rc = mproc__wait_fd(fd, POLLOUT, dl))) break;
        int err = 0;
        socklen_t elen = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) err = errno;
        rc = err ? mproc__err_from_errno(err) : 0;
        break;
    }
    if (!rc && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) rc = MPROC__ERRNO();
    if (rc) {
        close(fd);
        return rc;
    }
    if (sa->sa_family != AF_UNIX) tcp_nodelay(fd);
    return fd;
}

static int connect_addr(const mproc__addr *a, const mproc__deadline *dl)
{
    if (a->kind == MPROC__ADDR_UNIX)
        return connect_one((const struct sockaddr *)&a->un, a->un_len, dl);
    struct addrinfo *res;
    int rc = mproc__addr_resolve(a, false, &res);
    if (rc) return rc;
    rc = MPROC_ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        rc = connect_one(ai->ai_addr, ai->ai_addrlen, dl);
        if (rc >= 0 || rc == MPROC_ETIMEDOUT) break;
    }
    freeaddrinfo(res);
    return rc;
}

int mproc_client(mproc_conn **out, const char *address, const mproc_client_opts *opts,
                 int timeout_ms)
{
    if (!out || !address || !*address) return MPROC_EINVAL;
    mproc__init();
    mproc__deadline dl;
    int rc = mproc__deadline_init(&dl, timeout_ms);
    if (rc) return rc;
    mproc__addr a;
    if ((rc = mproc__addr_parse(address, &a))) return rc;
    mproc__auth *auth = malloc(sizeof *auth);
    if (!auth) return MPROC_ENOMEM;
    if ((rc = mproc__auth_resolve(opts ? &opts->auth : NULL, auth))) goto done;
    int fd = connect_addr(&a, &dl);
    if (fd < 0) {
        rc = fd;
        goto done;
    }
    mproc_conn *c;
    if ((rc = mproc_conn_from_fd(&c, fd, true, true))) {
        close(fd);
        goto done;
    }
    if (auth->on && ((rc = mproc__answer_challenge(c, auth, &dl)) ||
                     (rc = mproc__deliver_challenge(c, auth, &dl)))) {
        mproc_conn_free(c);
        goto done;
    }
    *out = c;
done:
    OPENSSL_cleanse(auth->key, auth->key_len);
    free(auth);
    return rc;
}
