/* The listener's side of the authkey handshake (Python's deliver_challenge
 * then answer_challenge, see auth.c) as a state machine that never blocks:
 * the listener runs those of all its new connections at once (listener.c).
 * Messages are read exactly, header then body, so nothing the client
 * sends after the handshake is taken from the socket. */
#include "base/io.h"
#include "conn/listener.h"

#include <openssl/crypto.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

enum {
    HS_SEND_CHALLENGE, /* our challenge goes out */
    HS_READ_ANSWER,    /* its answer to it */
    HS_READ_CHALLENGE, /* (our verdict went out) its challenge */
    HS_READ_VERDICT,   /* (our answer went out) its verdict */
};

/* Queues one frame: 4-byte big-endian length, then the bytes. */
static void queue(mproc__hs *h, const uint8_t *msg, size_t len)
{
    h->out[0] = (uint8_t)(len >> 24);
    h->out[1] = (uint8_t)(len >> 16);
    h->out[2] = (uint8_t)(len >> 8);
    h->out[3] = (uint8_t)len;
    memcpy(h->out + 4, msg, len);
    h->outlen = 4 + len;
    h->outoff = 0;
}

/* The peer's misbehaviour or loss is an authentication failure, as in
 * auth.c's hs_err. */
static int io_err(int e)
{
    switch (e) {
    case ECONNRESET:
    case EPIPE:
    case ECONNABORTED:
        return MPROC_EAUTH;
    default:
        return mproc__err_from_errno(e);
    }
}

/* Sends what is queued: 0 once all is out, MPROC_EAGAIN, or an error. */
static int flush(mproc__hs *h)
{
    while (h->outoff < h->outlen) {
        ssize_t n;
        MPROC__RETRY_EINTR(
            n, send(h->fd, h->out + h->outoff, h->outlen - h->outoff, MSG_DONTWAIT | MSG_NOSIGNAL));
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return MPROC_EAGAIN;
        if (n < 0) return io_err(errno);
        h->outoff += (size_t)n;
    }
    return 0;
}

/* Reads up to `want` bytes in all into h->in: 0 once there, MPROC_EAGAIN,
 * or an error (the peer closing: MPROC_EAUTH). */
static int fill(mproc__hs *h, size_t want)
{
    while (h->inlen < want) {
        ssize_t n;
        MPROC__RETRY_EINTR(n, recv(h->fd, h->in + h->inlen, want - h->inlen, MSG_DONTWAIT));
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return MPROC_EAGAIN;
        if (n < 0) return io_err(errno);
        if (n == 0) return MPROC_EAUTH;
        h->inlen += (size_t)n;
    }
    return 0;
}

/* Reads one whole frame of at most MPROC__HS_MAX bytes: 0 (*msg, *len
 * point into h->in), MPROC_EAGAIN, or MPROC_EAUTH (too big, malformed, or
 * the peer is gone). The 64-bit form of a length (-1, then 8 bytes) is
 * understood, as the connections do. */
static int read_frame(mproc__hs *h, const uint8_t **msg, size_t *len)
{
    int rc = fill(h, 4);
    if (rc) return rc;
    uint32_t v =
        (uint32_t)h->in[0] << 24 | (uint32_t)h->in[1] << 16 | (uint32_t)h->in[2] << 8 | h->in[3];
    size_t hlen = 4;
    uint64_t n = v;
    if (v == 0xffffffffu) {
        if ((rc = fill(h, 12))) return rc;
        n = 0;
        for (int i = 4; i < 12; i++) n = n << 8 | h->in[i];
        hlen = 12;
    } else if (v & 0x80000000u) {
        return MPROC_EAUTH;
    }
    if (n > MPROC__HS_MAX) return MPROC_EAUTH;
    if ((rc = fill(h, hlen + (size_t)n))) return rc;
    *msg = h->in + hlen;
    *len = (size_t)n;
    h->inlen = 0; /* the next frame starts afresh; *msg stays valid until then */
    return 0;
}

int mproc__hs_begin(mproc__hs *h, int fd, const mproc__auth *a, const mproc__deadline *dl)
{
    *h = (mproc__hs){.fd = fd, .state = HS_SEND_CHALLENGE, .deadline = *dl};
    size_t clen;
    int rc = mproc__auth_challenge(a, h->chal, &clen);
    if (rc) return rc;
    h->clen = clen;
    queue(h, h->chal, clen);
    return 0;
}

int mproc__hs_step(mproc__hs *h, const mproc__auth *a, short *events)
{
    for (;;) {
        int rc = flush(h);
        if (rc == MPROC_EAGAIN) *events = POLLOUT;
        if (rc) return rc;
        const uint8_t *msg;
        size_t len;
        if (h->state == HS_SEND_CHALLENGE) {
            h->state = HS_READ_ANSWER;
            continue;
        }
        rc = read_frame(h, &msg, &len);
        if (rc == MPROC_EAGAIN) *events = POLLIN;
        if (rc) return rc;
        switch (h->state) {
        case HS_READ_ANSWER: {
            bool ok = mproc__auth_verify(a, h->chal, h->clen, msg, len);
            const uint8_t *verdict;
            size_t vlen;
            mproc__auth_verdict(ok, &verdict, &vlen);
            queue(h, verdict, vlen);
            if (!ok) {
                (void)flush(h); /* tell it, if that can be done now */
                return MPROC_EAUTH;
            }
            h->state = HS_READ_CHALLENGE;
            break;
        }
        case HS_READ_CHALLENGE: {
            uint8_t resp[MPROC__HS_MAX];
            size_t rlen;
            if ((rc = mproc__auth_answer(a, msg, len, resp, &rlen, &h->refused))) return rc;
            queue(h, resp, rlen);
            OPENSSL_cleanse(resp, sizeof resp);
            h->state = HS_READ_VERDICT;
            break;
        }
        default: /* HS_READ_VERDICT */
            if (h->refused) return MPROC_EAUTH;
            return mproc__auth_welcomed(msg, len) ? 0 : MPROC_EAUTH;
        }
    }
}
