/* Listener and Client (multiprocessing.connection's twins): bound
 * sockets, accept and connect with timeouts, and the authkey handshake on
 * every new connection. */
#include "internal/address.h"
#include "internal/auth.h"
#include "internal/base.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_BACKLOG 64

struct mproc_listener {
    int fd; /* non-blocking listening socket, -1 once closed */
    char *address;
    char *unlink_path; /* Unix path to remove on close, or NULL */
    char *tmpdir;      /* private directory to remove on close, or NULL */
    pid_t owner;       /* only the creator removes them */
    mproc__auth auth;
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
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
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
    l->owner = getpid();
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
    if (rc) {
        mproc_listener_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

/* Waits for the listening fd to be readable before the deadline. */
static int wait_fd(int fd, short events, const mproc__deadline *dl)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, mproc__deadline_poll_ms(dl));
        if (n > 0) return 0;
        if (n == 0) return MPROC_ETIMEDOUT;
        if (errno != EINTR) return MPROC__ERRNO();
    }
}

int mproc_listener_accept(mproc_listener *l, mproc_conn **out, int timeout_ms)
{
    if (!l || !out) return MPROC_EINVAL;
    if (l->fd < 0) return MPROC_ECLOSED;
    mproc__deadline dl;
    int rc = mproc__deadline_init(&dl, timeout_ms);
    if (rc) return rc;
    int s;
    for (;;) {
        if ((rc = wait_fd(l->fd, POLLIN, &dl))) return rc;
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
    mproc_conn *c;
    if ((rc = mproc_conn_from_fd(&c, s, true, true))) {
        close(s);
        return rc;
    }
    if (l->auth.on && ((rc = mproc__deliver_challenge(c, &l->auth, &dl)) ||
                       (rc = mproc__answer_challenge(c, &l->auth, &dl)))) {
        mproc_conn_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

const char *mproc_listener_address(const mproc_listener *l)
{
    return l && l->address ? l->address : "";
}

int mproc_listener_fileno(const mproc_listener *l)
{
    if (!l) return MPROC_EINVAL;
    return l->fd < 0 ? MPROC_ECLOSED : l->fd;
}

void mproc_listener_close(mproc_listener *l)
{
    if (!l || l->fd < 0) return;
    close(l->fd);
    l->fd = -1;
    if (l->owner == getpid()) {
        if (l->unlink_path) unlink(l->unlink_path);
        if (l->tmpdir) rmdir(l->tmpdir);
    }
}

void mproc_listener_free(mproc_listener *l)
{
    if (!l) return;
    mproc_listener_close(l);
    OPENSSL_cleanse(l->auth.key, l->auth.key_len);
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
        if (connect(fd, sa, len) == 0) break;
        if (errno == EINTR) continue;
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
        if ((rc = wait_fd(fd, POLLOUT, dl))) break;
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
