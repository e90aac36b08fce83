/* Connections: whole messages over a stream fd, framed as Python's
 * multiprocessing.connection frames them.
 *
 * A connection has a read fd and a write fd: the same socket, or two pipes
 * for a duplex Pipe (pipes are cheaper than AF_UNIX sockets per message).
 *
 * Receiving reads into a per-connection buffer; large payloads are read
 * straight into their destination. On sockets a read takes all that is
 * there. On pipes a read asks for exactly the rest of the current message
 * plus the next header: draining a pipe makes every following write start
 * a new pipe page, which halves a small-message writer's speed.
 * A message interrupted by a timeout is kept (header parsed, partial payload
 * saved) and resumed by the next receive. The fd stays blocking: a receive
 * with a finite timeout sleeps in the read on a socket (SO_RCVTIMEO), and
 * in poll(2) before each read on a pipe. */
#include "base/base.h"
#include "base/io.h"
#include "conn/conn.h"
#include "platform/platform.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define RBUF_SIZE  (64 * 1024)
#define SMALL_SEND 512

struct mproc_conn {
    int fd;  /* the read fd if readable, else the write fd; -1 once closed */
    int wfd; /* the write fd (== fd unless a duplex pipe pair) */
    bool readable, writable;
    bool wsock;       /* wfd is a socket: send with MSG_NOSIGNAL */
    bool exact_reads; /* fd is a pipe: read one message at a time */
    int broken;       /* 0, or the error every later receive returns */
    size_t max_msg;
    /* receive buffer: bytes [rpos, rend) of rbuf are unread */
    char *rbuf;
    size_t rpos, rend;
    /* the message being received */
    bool have_hdr;
    uint64_t msg_len;
    size_t last_len;  /* payload size of the last message received */
    uint32_t spin_ns; /* see mproc__conn_set_spin */
    bool rcvtimeo;    /* this connection set the socket's SO_RCVTIMEO */
    char *pend;       /* msg_len bytes, pend_have of them filled, or NULL */
    size_t pend_have;
};

size_t mproc__frame_header(uint64_t len, uint8_t out[MPROC__FRAME_HDR_MAX])
{
    if (len <= 0x7fffffffu) {
        for (int i = 0; i < 4; i++) out[i] = (uint8_t)(len >> (24 - 8 * i));
        return 4;
    }
    memset(out, 0xff, 4);
    for (int i = 0; i < 8; i++) out[4 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 12;
}

/* A connection reading rfd and writing wfd (either may be -1). */
static mproc_conn *conn_new(int rfd, int wfd)
{
    mproc__init();
    mproc_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->fd = rfd >= 0 ? rfd : wfd;
    c->wfd = wfd;
    c->readable = rfd >= 0;
    c->writable = wfd >= 0;
    c->wsock = wfd >= 0 && mproc__is_socket(wfd);
    c->exact_reads = rfd >= 0 && !mproc__is_socket(rfd);
    c->max_msg = SIZE_MAX / 2;
    if (mproc__conn_register(c) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

static void conn_destroy(mproc_conn *c)
{
    if (!c) return;
    mproc__conn_unregister(c);
    free(c);
}

void mproc__conn_fds(const mproc_conn *c, int *rfd, int *wfd)
{
    *rfd = c->readable ? c->fd : -1;
    *wfd = c->writable ? c->wfd : -1;
}

static int set_rcvtimeo(mproc_conn *c, int64_t ns);

void mproc__conn_forget(mproc_conn *c)
{
    if (!c) return;
    (void)set_rcvtimeo(c, 0); /* the fd goes on without this connection's timeout */
    free(c->rbuf);
    free(c->pend);
    conn_destroy(c);
}

mproc_conn *mproc__conn_adopt(int rfd, int wfd)
{
    return conn_new(rfd, wfd);
}

int mproc_conn_from_fds(mproc_conn **out, int rfd, int wfd)
{
    if (!out || rfd < -1 || wfd < -1 || (rfd < 0 && wfd < 0)) return MPROC_EINVAL;
    mproc_conn *c = conn_new(rfd, wfd);
    if (!c) return MPROC_ENOMEM;
    *out = c;
    return 0;
}

int mproc_conn_from_fd(mproc_conn **out, int fd, bool readable, bool writable)
{
    if (fd < 0) return MPROC_EINVAL;
    return mproc_conn_from_fds(out, readable ? fd : -1, writable ? fd : -1);
}

int mproc_pipe(mproc_conn **a, mproc_conn **b, bool duplex)
{
    if (!a || !b) return MPROC_EINVAL;
    int p1[2], p2[2] = {-1, -1}; /* p1: b writes, a reads; p2: a writes, b reads */
    int rc = mproc__pipe_cloexec(p1);
    if (rc) return rc;
    if (duplex && (rc = mproc__pipe_cloexec(p2))) {
        close(p1[0]);
        close(p1[1]);
        return rc;
    }
    mproc_conn *ca = conn_new(p1[0], p2[1]), *cb = conn_new(p2[0], p1[1]);
    if (!ca || !cb) {
        conn_destroy(ca);
        conn_destroy(cb);
        for (int i = 0; i < 2; i++) {
            close(p1[i]);
            if (p2[i] >= 0) close(p2[i]);
        }
        return MPROC_ENOMEM;
    }
    *a = ca;
    *b = cb;
    return 0;
}

/* ---- sending ----------------------------------------------------------- */

/* One write of iov[0..cnt) to the conn's fd: sockets get no SIGPIPE. */
static ssize_t write_some(mproc_conn *c, struct iovec *iov, int cnt)
{
    if (c->wsock && cnt == 1) return send(c->wfd, iov->iov_base, iov->iov_len, MSG_NOSIGNAL);
    if (c->wsock) {
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
        return sendmsg(c->wfd, &mh, MSG_NOSIGNAL);
    }
    if (cnt == 1) return write(c->wfd, iov->iov_base, iov->iov_len);
    return writev(c->wfd, iov, cnt);
}

static int send_iov(mproc_conn *c, struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        ssize_t n;
        MPROC__RETRY_EINTR(n, write_some(c, iov, cnt));
        if (n < 0) return MPROC__ERRNO();
        while (cnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

int mproc_conn_send_bytes(mproc_conn *c, const void *buf, size_t len)
{
    if (!c || (!buf && len > 0)) return MPROC_EINVAL;
    if (c->fd < 0) return MPROC_ECLOSED;
    if (!c->writable) return MPROC_EBADF;
    uint8_t small[MPROC__FRAME_HDR_MAX + SMALL_SEND];
    size_t h = mproc__frame_header(len, small);
    if (len <= SMALL_SEND) {
        if (len) memcpy(small + h, buf, len);
        struct iovec iov = {small, h + len};
        return send_iov(c, &iov, 1);
    }
    struct iovec iov[2] = {{small, h}, {(void *)buf, len}};
    return send_iov(c, iov, 2);
}

/* ---- receiving --------------------------------------------------------- */

static int check_recv(const mproc_conn *c)
{
    if (!c) return MPROC_EINVAL;
    if (c->fd < 0) return MPROC_ECLOSED;
    if (!c->readable) return MPROC_EBADF;
    return c->broken;
}

/* Waits for the fd to be readable before the deadline. */
static int wait_readable(mproc_conn *c, const mproc__deadline *dl)
{
    if (dl->forever) return 0; /* the read itself blocks */
    return mproc__wait_fd(c->fd, POLLIN, dl);
}

/* Sets the socket's receive timeout (SO_RCVTIMEO) to the time left before
 * the deadline, or to none when forever (0 ns). */
static int set_rcvtimeo(mproc_conn *c, int64_t ns)
{
    if (ns == 0 && !c->rcvtimeo) return 0;
    int64_t us = (ns + 999) / 1000; /* rounded up: never short of the deadline */
    struct timeval tv = {.tv_sec = (time_t)(us / 1000000), .tv_usec = (suseconds_t)(us % 1000000)};
    if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) return MPROC__ERRNO();
    c->rcvtimeo = ns != 0;
    return 0;
}

/* One read of a socket. A timed wait sleeps in the read itself, bounded by
 * SO_RCVTIMEO, instead of in poll(2) first: waking from poll and then
 * reading costs a quarter more per round trip. A read that finds nothing
 * (the timeout ran out, or the fd is non-blocking) is followed by a poll
 * until the deadline, so that neither case spins. */
static ssize_t read_socket(mproc_conn *c, void *dst, size_t cap, const mproc__deadline *dl)
{
    for (;;) {
        int64_t left = 0;
        if (!dl->forever && (left = dl->at_ns - mproc_now_ns()) <= 0) left = -1;
        int rc = left < 0 ? 0 : set_rcvtimeo(c, left);
        if (rc) return rc;
        ssize_t n = recv(c->fd, dst, cap, left < 0 ? MSG_DONTWAIT : 0);
        if (n > 0) return n;
        if (n == 0) return MPROC_EEOF;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return MPROC__ERRNO();
        if (left < 0) return MPROC_ETIMEDOUT;
        if ((rc = mproc__wait_fd(c->fd, POLLIN, dl))) return rc;
    }
}

/* One read(2) into dst, after waiting. Returns bytes read (> 0) or an error;
 * end of file is MPROC_EEOF. */
static ssize_t read_some(mproc_conn *c, void *dst, size_t cap, const mproc__deadline *dl)
{
    if (c->spin_ns) {
        long long end = mproc_now_ns() + c->spin_ns;
        if (!dl->forever && dl->at_ns < end) end = dl->at_ns; /* never past the deadline */
        do {
            ssize_t n = recv(c->fd, dst, cap, MSG_DONTWAIT);
            if (n > 0) return n;
            if (n == 0) return MPROC_EEOF;
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return MPROC__ERRNO();
        } while (mproc_now_ns() < end);
    }
    if (!c->exact_reads) return read_socket(c, dst, cap, dl);
    for (;;) {
        int rc = wait_readable(c, dl);
        if (rc) return rc;
        ssize_t n = read(c->fd, dst, cap);
        if (n > 0) return n;
        if (n == 0) return MPROC_EEOF;
        if (errno != EINTR) return MPROC__ERRNO();
    }
}

/* Reads more bytes into the receive buffer: at least one, and on pipes at
 * most `want`. */
static int fill(mproc_conn *c, size_t want, const mproc__deadline *dl)
{
    if (!c->rbuf && !(c->rbuf = malloc(RBUF_SIZE))) return MPROC_ENOMEM;
    if (c->rpos == c->rend)
        c->rpos = c->rend = 0;
    else if (c->rend == RBUF_SIZE) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rend - c->rpos);
        c->rend -= c->rpos;
        c->rpos = 0;
    }
    size_t room = RBUF_SIZE - c->rend;
    ssize_t n = read_some(c, c->rbuf + c->rend, c->exact_reads && want < room ? want : room, dl);
    if (n < 0) return (int)n;
    c->rend += (size_t)n;
    return 0;
}

/* Ensures k bytes are buffered; on pipes each read asks for `extra` more
 * (a guess at what follows). */
static int need(mproc_conn *c, size_t k, size_t extra, const mproc__deadline *dl)
{
    while (c->rend - c->rpos < k) {
        int rc = fill(c, k - (c->rend - c->rpos) + extra, dl);
        if (rc) return rc;
    }
    return 0;
}

static int fail(mproc_conn *c, int code)
{
    c->broken = code == MPROC_EMSGSIZE ? MPROC_EMSGSIZE : MPROC_EPROTO;
    return code;
}

/* Parses the next frame header, unless one is parsed already. */
static int read_header(mproc_conn *c, const mproc__deadline *dl)
{
    if (c->have_hdr) return 0;
    /* Guess the message is as long as the last one: then a pipe delivers
     * header and payload in one read. */
    size_t guess = c->last_len < RBUF_SIZE / 2 ? c->last_len : 0;
    int rc = need(c, 4, guess, dl);
    if (rc) return rc;
    const uint8_t *p = (const uint8_t *)c->rbuf + c->rpos;
    int32_t v = (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
    uint64_t len;
    size_t hlen = 4;
    if (v == -1) {
        if ((rc = need(c, 12, 0, dl))) return rc;
        p = (const uint8_t *)c->rbuf + c->rpos;
        len = 0;
        for (int i = 4; i < 12; i++) len = len << 8 | p[i];
        hlen = 12;
    } else if (v < 0) {
        return fail(c, MPROC_EPROTO);
    } else {
        len = (uint64_t)v;
    }
    if (len > c->max_msg) return fail(c, MPROC_EMSGSIZE);
    c->rpos += hlen;
    c->have_hdr = true;
    c->msg_len = len;
    return 0;
}

/* Fills dst[have..msg_len) from the buffer and the fd. On an error *have
 * tells how far it got. */
static int read_payload(mproc_conn *c, char *dst, size_t *have, const mproc__deadline *dl)
{
    size_t len = (size_t)c->msg_len;
    while (*have < len) {
        size_t avail = c->rend - c->rpos;
        if (avail) {
            size_t k = len - *have < avail ? len - *have : avail;
            memcpy(dst + *have, c->rbuf + c->rpos, k);
            c->rpos += k;
            *have += k;
            continue;
        }
        int rc;
        if (len - *have >= RBUF_SIZE / 2) {
            ssize_t n = read_some(c, dst + *have, len - *have, dl);
            if (n < 0) return (int)n;
            *have += (size_t)n;
        } else if ((rc = fill(c, len - *have + 4, dl))) { /* and the next header */
            return rc;
        }
    }
    return 0;
}

static void finish_message(mproc_conn *c)
{
    c->last_len = (size_t)c->msg_len;
    c->have_hdr = false;
    c->pend = NULL;
    c->pend_have = 0;
}

/* After a failed payload read into dst (not owned by the conn): keep what
 * arrived so the next receive resumes; EOF drops the torn message. */
static int park(mproc_conn *c, int rc, char *dst, size_t have, bool dst_is_pend)
{
    if (rc == MPROC_EEOF) {
        if (dst_is_pend) free(dst);
        finish_message(c);
        return rc;
    }
    if (dst_is_pend) {
        c->pend = dst;
    } else if (have > 0) {
        char *p = malloc(c->msg_len ? (size_t)c->msg_len : 1);
        if (!p) return fail(c, MPROC_ENOMEM);
        memcpy(p, dst, have);
        c->pend = p;
    }
    c->pend_have = have;
    return rc;
}

int mproc_conn_recv_bytes(mproc_conn *c, void **buf, size_t *len, int timeout_ms)
{
    int rc = check_recv(c);
    if (rc) return rc;
    if (!buf || !len) return MPROC_EINVAL;
    mproc__deadline dl;
    if ((rc = mproc__deadline_init(&dl, timeout_ms))) return rc;
    if ((rc = read_header(c, &dl))) return rc;
    size_t n = (size_t)c->msg_len;
    char *dst = c->pend;
    size_t have = c->pend_have;
    /* No payload byte is read yet: the next receive tries again. */
    if (!dst && !(dst = malloc(n ? n : 1))) return MPROC_ENOMEM;
    if ((rc = read_payload(c, dst, &have, &dl))) return park(c, rc, dst, have, true);
    finish_message(c);
    *buf = dst;
    *len = n;
    return 0;
}

int mproc_conn_recv_bytes_into(mproc_conn *c, void *buf, size_t cap, size_t *len, int timeout_ms)
{
    int rc = check_recv(c);
    if (rc) return rc;
    if ((!buf && cap > 0) || !len) return MPROC_EINVAL;
    mproc__deadline dl;
    if ((rc = mproc__deadline_init(&dl, timeout_ms))) return rc;
    if ((rc = read_header(c, &dl))) return rc;
    size_t n = (size_t)c->msg_len;
    *len = n;
    if (n > cap) return MPROC_ETOOSMALL;
    size_t have = c->pend_have;
    if (c->pend) {
        memcpy(buf, c->pend, have);
        free(c->pend);
        c->pend = NULL;
        c->pend_have = 0;
    }
    if ((rc = read_payload(c, buf, &have, &dl))) return park(c, rc, buf, have, false);
    finish_message(c);
    return 0;
}

bool mproc__conn_has_message(const mproc_conn *c)
{
    if (c->broken) return true; /* a receive returns at once */
    size_t avail = c->rend - c->rpos;
    if (!c->have_hdr) {
        if (avail < 4) return false;
        const uint8_t *p = (const uint8_t *)c->rbuf + c->rpos;
        if (p[0] & 0x80) return true; /* -1 or malformed: let recv decide */
        uint64_t len = (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3];
        /* Over the cap, a receive fails at once (MPROC_EMSGSIZE): a poll
         * that waited for the rest would never learn it (found by the
         * conn_frames fuzz target). */
        return len > c->max_msg || avail - 4 >= len;
    }
    return c->pend_have + avail >= c->msg_len;
}

int mproc_conn_poll(mproc_conn *c, int timeout_ms)
{
    if (!c) return MPROC_EINVAL;
    if (c->fd < 0) return MPROC_ECLOSED;
    if (!c->readable) return MPROC_EBADF;
    mproc__deadline dl;
    int rc;
    if ((rc = mproc__deadline_init(&dl, timeout_ms))) return rc;
    if (mproc__conn_has_message(c)) return 0;
    return mproc__wait_fd(c->fd, POLLIN, &dl);
}

int mproc_conn_set_max_message(mproc_conn *c, size_t max)
{
    if (!c) return MPROC_EINVAL;
    c->max_msg = max;
    return 0;
}

void mproc__conn_set_spin(mproc_conn *c, uint32_t ns)
{
    c->spin_ns = c->wsock && c->fd == c->wfd ? ns : 0; /* sockets: recv with MSG_DONTWAIT */
}

size_t mproc__conn_max_message(const mproc_conn *c)
{
    return c->max_msg;
}

int mproc_conn_fileno(const mproc_conn *c)
{
    if (!c) return MPROC_EINVAL;
    return c->fd < 0 ? MPROC_ECLOSED : c->fd;
}

int mproc_conn_fds(const mproc_conn *c, int *rfd, int *wfd)
{
    if (!c || !rfd || !wfd) return MPROC_EINVAL;
    if (c->fd < 0) return MPROC_ECLOSED;
    mproc__conn_fds(c, rfd, wfd);
    return 0;
}

bool mproc_conn_readable(const mproc_conn *c)
{
    return c && c->readable;
}
bool mproc_conn_writable(const mproc_conn *c)
{
    return c && c->writable;
}
bool mproc_conn_closed(const mproc_conn *c)
{
    return !c || c->fd < 0;
}

void mproc_conn_close(mproc_conn *c)
{
    if (!c || c->fd < 0) return;
    close(c->fd);
    if (c->wfd >= 0 && c->wfd != c->fd) close(c->wfd);
    c->fd = c->wfd = -1;
    free(c->rbuf);
    free(c->pend);
    c->rbuf = c->pend = NULL;
    c->rpos = c->rend = c->pend_have = 0;
    c->have_hdr = false;
}

void mproc_conn_free(mproc_conn *c)
{
    if (!c) return;
    mproc_conn_close(c);
    conn_destroy(c);
}
