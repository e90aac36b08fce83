/* libFuzzer target: what a connection makes of arbitrary bytes arriving on
 * its socket or pipe (src/conn/conn.c: the 4-byte big-endian length, the -1 +
 * 8-byte length of large messages, partial messages kept across timeouts,
 * the size cap, broken connections).
 *
 * Input: [config] [n] [n schedule bytes] [stream bytes...]
 *   config bit 0: a pipe (else a socketpair); bits 1-2: the connection's
 *   maximum message (16, 300, 70000 or 1 MiB bytes); bit 3: receive with
 *   the socket spin (mproc__conn_set_spin).
 *   Each schedule byte is one step (low 3 bits the kind, the rest k):
 *     0 write the next 2^k stream bytes (k >= 20: all) to the peer end;
 *     1, 6, 7 mproc_conn_recv_bytes with timeout 0;
 *     2 mproc_conn_recv_bytes_into with timeout 0 and a buffer of 2^k - 1
 *       bytes;
 *     3 mproc_conn_recv_value with timeout 0;
 *     4 mproc_conn_poll with timeout 0;
 *     5 write as much of the stream as the peer end takes.
 *   Then the rest of the stream is written, the peer end closed, and the
 *   connection read (mproc_conn_recv_bytes) until it reports the end.
 * Writes never block (the peer end is non-blocking); receives with
 * timeout 0 find whatever was written: every run is deterministic.
 *
 * Every result is checked against a reference parser of the stream: each
 * message is the next frame's payload, byte for byte, and comes as soon as
 * its last byte was written; a timeout only while the next frame is
 * incomplete; MPROC_ETOOSMALL exactly when the next frame's header is in
 * (a torn last frame's too) and its payload is larger than the buffer
 * (and the message stays);
 * MPROC_EPROTO for a negative length other than -1, MPROC_EMSGSIZE for a
 * length over the cap, then the same error for ever; MPROC_EEOF at the end
 * of a clean or torn stream after the peer closed; a value received
 * decodes as mproc_value_decode decodes the frame. A failed check aborts.
 *
 * Build and run: `make fuzz` (FUZZ_SECONDS); seeds in
 * tests/fuzz/corpus/conn_frames (tests/fuzz/make_corpus.py). */
#include "conn/conn.h"
#include "mproc/conn.h"
#include "mproc/value.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FUZZ_MAX_INPUT (1 << 20)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_conn_frames: check failed at line %d: %s\n", __LINE__, #cond);   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* ---- the reference parser ------------------------------------------------ */

enum { END_CLEAN, END_TORN, END_PROTO, END_MSGSIZE };

typedef struct {
    size_t pay, len; /* where the payload starts in the stream, its length */
} ref_frame;

static ref_frame *refs;
static size_t nref, end_need; /* end_need: stream bytes that show a bad header */
static int end_kind;
static ref_frame torn; /* END_TORN: the last frame's, if its header is whole */

static void parse_stream(const uint8_t *s, size_t n, size_t max)
{
    refs = malloc((n / 4 + 1) * sizeof *refs);
    CHECK(refs);
    nref = 0;
    torn = (ref_frame){SIZE_MAX, 0};
    size_t pos = 0;
    for (;;) {
        if (pos == n) {
            end_kind = END_CLEAN;
            return;
        }
        if (n - pos < 4) break;
        int32_t v = (int32_t)((uint32_t)s[pos] << 24 | (uint32_t)s[pos + 1] << 16 |
                              (uint32_t)s[pos + 2] << 8 | s[pos + 3]);
        uint64_t len;
        size_t hlen = 4;
        if (v == -1) {
            if (n - pos < 12) break;
            len = 0;
            for (size_t i = 4; i < 12; i++) len = len << 8 | s[pos + i];
            hlen = 12;
        } else if (v < 0) {
            end_kind = END_PROTO;
            end_need = pos + 4;
            return;
        } else {
            len = (uint64_t)v;
        }
        if (len > max) {
            end_kind = END_MSGSIZE;
            end_need = pos + hlen;
            return;
        }
        if (n - pos - hlen < len) {
            torn = (ref_frame){pos + hlen, (size_t)len};
            break;
        }
        refs[nref++] = (ref_frame){pos + hlen, (size_t)len};
        pos += hlen + (size_t)len;
    }
    end_kind = END_TORN;
}

/* ---- the run ------------------------------------------------------------- */

static const uint8_t *stream;
static size_t stream_len, written, next; /* next: the frame to be received */
static int wfd, broken;                  /* broken: the error every receive now gives */
static bool closed;

static void write_some(size_t n)
{
    if (n > stream_len - written) n = stream_len - written;
    while (n > 0) {
        ssize_t k = write(wfd, stream + written, n);
        if (k < 0) {
            CHECK(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
            if (errno != EINTR) return;
            continue;
        }
        written += (size_t)k;
        n -= (size_t)k;
    }
}

static void close_writer(void)
{
    write_some(SIZE_MAX);
    if (written < stream_len) return;
    close(wfd);
    closed = true;
}

/* Stream bytes that must have been written for the next receive to return
 * something other than a timeout (SIZE_MAX: only end of file does). */
static size_t need_next(void)
{
    if (next < nref) return refs[next].pay + refs[next].len;
    return end_kind == END_PROTO || end_kind == END_MSGSIZE ? end_need : SIZE_MAX;
}

/* Checks a receive's error (not 0, nor ETOOSMALL). */
static void check_error(int rc)
{
    if (broken) {
        CHECK(rc == broken);
        return;
    }
    if (rc == MPROC_ETIMEDOUT) {
        CHECK(!closed && written < need_next());
    } else if (rc == MPROC_EPROTO || rc == MPROC_EMSGSIZE) {
        CHECK(next == nref && written >= end_need);
        CHECK(end_kind == (rc == MPROC_EPROTO ? END_PROTO : END_MSGSIZE));
        broken = rc;
    } else if (rc == MPROC_EEOF) {
        CHECK(closed && next == nref && (end_kind == END_CLEAN || end_kind == END_TORN));
    } else {
        fprintf(stderr, "fuzz_conn_frames: unexpected %s\n", mproc_err_name(rc));
        abort();
    }
}

/* Checks a message received. */
static void check_message(const void *buf, size_t len)
{
    CHECK(!broken && next < nref && written >= need_next());
    CHECK(len == refs[next].len && (len == 0 || memcmp(buf, stream + refs[next].pay, len) == 0));
    next++;
}

static int step_recv_bytes(mproc_conn *c, int timeout_ms)
{
    void *buf = NULL;
    size_t len = 0;
    int rc = mproc_conn_recv_bytes(c, &buf, &len, timeout_ms);
    if (rc == 0) {
        CHECK(buf);
        check_message(buf, len);
        free(buf);
    } else {
        check_error(rc);
    }
    return rc;
}

static void step_recv_into(mproc_conn *c, size_t cap)
{
    uint8_t *buf = malloc(cap ? cap : 1);
    CHECK(buf);
    size_t len = SIZE_MAX;
    int rc = mproc_conn_recv_bytes_into(c, cap ? buf : NULL, cap, &len, 0);
    /* The next frame's header, if it is all written (a torn last frame's
     * too: its length is known). */
    const ref_frame *f = next < nref ? &refs[next] : &torn;
    bool header_in = !broken && f->pay != SIZE_MAX && written >= f->pay;
    if (rc == 0) {
        CHECK(len <= cap);
        check_message(buf, len);
    } else if (rc == MPROC_ETOOSMALL) {
        CHECK(header_in && f->len > cap && len == f->len);
    } else {
        CHECK(!(header_in && f->len > cap)); /* that is ETOOSMALL */
        check_error(rc);
    }
    free(buf);
}

static void step_recv_value(mproc_conn *c)
{
    bool complete = !broken && next < nref && written >= need_next();
    mproc_value *v = NULL;
    int rc = mproc_conn_recv_value(c, &v, 0);
    if (!complete) {
        CHECK(rc != 0 && !v);
        check_error(rc);
        return;
    }
    /* The frame is in: it is consumed, and decodes as the reference does. */
    mproc_value *want = NULL;
    int wrc = mproc_value_decode(stream + refs[next].pay, refs[next].len, NULL, &want);
    CHECK(rc == wrc);
    CHECK(rc != 0 || mproc_value_equal(v, want));
    mproc_value_free(v);
    mproc_value_free(want);
    next++;
}

static void step_poll(mproc_conn *c)
{
    int rc = mproc_conn_poll(c, 0);
    CHECK(rc == 0 || rc == MPROC_ETIMEDOUT);
    if (broken || written >= need_next()) CHECK(rc == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > FUZZ_MAX_INPUT) return -1;
    static const size_t maxes[] = {16, 300, 70000, 1 << 20};
    uint8_t config = data[0];
    size_t nsteps = data[1];
    if (size < 2 + nsteps) return -1;
    const uint8_t *steps = data + 2;
    stream = data + 2 + nsteps;
    stream_len = size - 2 - nsteps;
    size_t max = maxes[(config >> 1) & 3];
    parse_stream(stream, stream_len, max);
    written = next = 0;
    broken = 0;
    closed = false;

    int fds[2], rfd;
    bool pipe_mode = config & 1;
    if (pipe_mode) {
        CHECK(pipe2(fds, O_CLOEXEC) == 0);
    } else {
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    }
    rfd = fds[0];
    wfd = fds[1];
    CHECK(fcntl(wfd, F_SETFL, O_NONBLOCK) == 0);
    mproc_conn *c;
    CHECK(mproc_conn_from_fd(&c, rfd, true, !pipe_mode) == 0);
    CHECK(mproc_conn_set_max_message(c, max) == 0);
    if (config & 8) mproc__conn_set_spin(c, 2000);

    for (size_t i = 0; i < nsteps; i++) {
        unsigned k = steps[i] >> 3;
        switch (steps[i] & 7) {
        case 0:
            write_some(k >= 20 ? SIZE_MAX : (size_t)1 << k);
            break;
        case 2:
            step_recv_into(c, ((size_t)1 << (k > 20 ? 20 : k)) - 1);
            break;
        case 3:
            step_recv_value(c);
            break;
        case 4:
            step_poll(c);
            break;
        case 5:
            write_some(SIZE_MAX);
            break;
        default:
            step_recv_bytes(c, 0);
        }
    }
    /* The rest of the stream, then end of file: receive until the end. */
    for (int idle = 0;;) {
        size_t before = written, got = next;
        if (!closed) close_writer();
        int rc = step_recv_bytes(c, closed ? MPROC_FOREVER : 0);
        if (rc != 0 && rc != MPROC_ETIMEDOUT) break;
        /* Each round writes or receives something, or the receiver is stuck. */
        idle = written == before && next == got ? idle + 1 : 0;
        CHECK(idle < 1000);
    }
    CHECK(next == nref);
    if (!closed) close(wfd);
    mproc_conn_free(c);
    free(refs);
    refs = NULL;
    return 0;
}
