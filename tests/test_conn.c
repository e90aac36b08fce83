/* Connections and pipes: framing, sizes, timeouts, EOF, errors, and byte
 * compatibility with Python's multiprocessing.connection. */
#include "base/base.h"
#include "conn/conn.h"
#include "testutil.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

static void fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(i * 131 + seed + (i >> 12));
}

static bool check_pattern(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(i * 131 + seed + (i >> 12))) return false;
    return true;
}

START_TEST(frame_header_is_python_compatible)
{
    uint8_t h[MPROC__FRAME_HDR_MAX];
    ck_assert_uint_eq(mproc__frame_header(5, h), 4);
    ck_assert(memcmp(h, "\0\0\0\5", 4) == 0);
    ck_assert_uint_eq(mproc__frame_header(0x7fffffff, h), 4);
    ck_assert(memcmp(h, "\x7f\xff\xff\xff", 4) == 0);
    ck_assert_uint_eq(mproc__frame_header(0x80000000u, h), 12);
    ck_assert(memcmp(h, "\xff\xff\xff\xff\0\0\0\0\x80\0\0\0", 12) == 0);
}
END_TEST

/* Sends and receives messages of many sizes over one pair. */
static void roundtrip_sizes(bool duplex)
{
    mproc_conn *a, *b;
    TU_OK(mproc_pipe(&a, &b, duplex));
    static const size_t sizes[] = {0, 1, 8, 511, 512, 513, 4096, 65535, 65536, 100000};
    /* Small messages may all be in flight at once; a reader thread is not
     * needed because they fit in the kernel buffer one at a time. */
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *msg = malloc(n + 1);
        fill_pattern(msg, n, (unsigned)i);
        if (n <= 4096) {
            TU_OK(mproc_conn_send_bytes(b, msg, n));
        } else {
            pid_t pid = fork();
            if (pid == 0) _exit(mproc_conn_send_bytes(b, msg, n) == 0 ? 0 : 1);
            void *got;
            size_t len;
            TU_OK(mproc_conn_recv_bytes(a, &got, &len, 10000));
            int st;
            waitpid(pid, &st, 0);
            ck_assert_int_eq(WEXITSTATUS(st), 0);
            ck_assert_uint_eq(len, n);
            ck_assert(check_pattern(got, n, (unsigned)i));
            free(got);
            free(msg);
            continue;
        }
        void *got = NULL;
        size_t len = 99;
        TU_OK(mproc_conn_recv_bytes(a, &got, &len, 1000));
        ck_assert_ptr_nonnull(got);
        ck_assert_uint_eq(len, n);
        ck_assert(check_pattern(got, n, (unsigned)i));
        free(got);
        free(msg);
    }
    if (duplex) { /* and the other way */
        TU_OK(mproc_conn_send_bytes(a, "back", 4));
        char buf[8];
        size_t len;
        TU_OK(mproc_conn_recv_bytes_into(b, buf, sizeof buf, &len, 1000));
        ck_assert_uint_eq(len, 4);
        ck_assert(memcmp(buf, "back", 4) == 0);
    }
    mproc_conn_free(a);
    mproc_conn_free(b);
}

START_TEST(sizes_over_oneway_pipe)
{
    roundtrip_sizes(false);
}
END_TEST
START_TEST(sizes_over_duplex_pipe)
{
    roundtrip_sizes(true);
}
END_TEST

typedef struct {
    mproc_conn *w, *r;
    size_t size;
    int count;
} sender_args;

/* Child: sends `count` patterned messages of `size` bytes. */
static int sender(void *arg)
{
    sender_args *s = arg;
    mproc_conn_close(s->r);
    unsigned char *msg = malloc(s->size ? s->size : 1);
    if (!msg) return 2;
    for (int i = 0; i < s->count; i++) {
        fill_pattern(msg, s->size, (unsigned)i);
        if (mproc_conn_send_bytes(s->w, msg, s->size) != 0) return 3;
    }
    free(msg);
    return 0;
}

static void big_messages_from_child(size_t size, int count, int method)
{
    mproc_conn *r, *w;
    TU_OK(mproc_pipe(&r, &w, false));
    sender_args s;
    /* Zeroed first: its padding goes to the child too (see start() in test_wakeups.c). */
    memset(&s, 0, sizeof s);
    s.w = w;
    s.r = r;
    s.size = size;
    s.count = count;
    mproc_process *p;
    TU_OK(
        mproc_process_new(&p, sender, &s, sizeof s, &(mproc_process_opts){.start_method = method}));
    TU_OK(mproc_process_start(p));
    mproc_conn_close(w);
    for (int i = 0; i < count; i++) {
        void *got;
        size_t len;
        TU_OK(mproc_conn_recv_bytes(r, &got, &len, 60000));
        ck_assert_uint_eq(len, size);
        ck_assert_msg(check_pattern(got, len, (unsigned)i), "message %d corrupted", i);
        free(got);
    }
    void *got;
    size_t len;
    TU_RC(mproc_conn_recv_bytes(r, &got, &len, 10000), MPROC_EEOF);
    TU_OK(mproc_process_join(p, 10000));
    int code;
    TU_OK(mproc_process_exitcode(p, &code));
    ck_assert_int_eq(code, 0);
    TU_OK(mproc_process_free(p));
    mproc_conn_free(r);
    mproc_conn_free(w);
}

START_TEST(messages_of_64MiB_between_processes)
{
    big_messages_from_child((size_t)64 << 20, 2, tu_methods[_i]);
}
END_TEST

START_TEST(many_small_messages_between_processes)
{
    big_messages_from_child(8, 100000, tu_methods[_i]);
}
END_TEST

START_TEST(message_over_2GiB_uses_the_long_header)
{
    big_messages_from_child(((size_t)1 << 31) + 16, 1, tu_methods[_i]);
}
END_TEST

START_TEST(recv_into_too_small_keeps_the_message)
{
    mproc_conn *a, *b;
    TU_OK(mproc_pipe(&a, &b, true));
    TU_OK(mproc_conn_send_bytes(b, "0123456789", 10));
    TU_OK(mproc_conn_send_bytes(b, "xy", 2));
    char buf[16];
    size_t len = 0;
    TU_RC(mproc_conn_recv_bytes_into(a, buf, 4, &len, 1000), MPROC_ETOOSMALL);
    ck_assert_uint_eq(len, 10);
    TU_RC(mproc_conn_recv_bytes_into(a, buf, 9, &len, 0), MPROC_ETOOSMALL);
    TU_OK(mproc_conn_recv_bytes_into(a, buf, sizeof buf, &len, 0));
    ck_assert_uint_eq(len, 10);
    ck_assert(memcmp(buf, "0123456789", 10) == 0);
    TU_OK(mproc_conn_recv_bytes_into(a, buf, 2, &len, 0));
    ck_assert(memcmp(buf, "xy", 2) == 0);
    TU_OK(mproc_conn_send_bytes(b, NULL, 0));
    TU_OK(mproc_conn_recv_bytes_into(a, NULL, 0, &len, 0));
    ck_assert_uint_eq(len, 0);
    mproc_conn_free(a);
    mproc_conn_free(b);
}
END_TEST

START_TEST(poll_and_timeouts)
{
    mproc_conn *a, *b;
    TU_OK(mproc_pipe(&a, &b, true));
    TU_RC(mproc_conn_poll(a, 0), MPROC_ETIMEDOUT);
    long long t0 = mproc_now_ns();
    TU_RC(mproc_conn_poll(a, 50), MPROC_ETIMEDOUT);
    ck_assert(mproc_now_ns() - t0 >= 50000000LL);
    void *got;
    size_t len;
    TU_RC(mproc_conn_recv_bytes(a, &got, &len, 30), MPROC_ETIMEDOUT);
    TU_RC(mproc_conn_recv_bytes(a, &got, &len, -5), MPROC_EINVAL);
    TU_RC(mproc_conn_poll(a, -7), MPROC_EINVAL);
    TU_OK(mproc_conn_send_bytes(b, "hi", 2));
    TU_OK(mproc_conn_poll(a, 0));
    TU_OK(mproc_conn_poll(a, MPROC_FOREVER));
    TU_OK(mproc_conn_recv_bytes(a, &got, &len, 0));
    ck_assert_uint_eq(len, 2);
    free(got);
    TU_RC(mproc_conn_poll(a, 0), MPROC_ETIMEDOUT);
    mproc_conn_free(a);
    mproc_conn_free(b);
}
END_TEST

START_TEST(eof_after_peer_closes_and_drain)
{
    mproc_conn *r, *w;
    TU_OK(mproc_pipe(&r, &w, false));
    TU_OK(mproc_conn_send_bytes(w, "last", 4));
    mproc_conn_close(w);
    TU_OK(mproc_conn_poll(r, 0));
    void *got;
    size_t len;
    TU_OK(mproc_conn_recv_bytes(r, &got, &len, 0));
    free(got);
    TU_OK(mproc_conn_poll(r, 0)); /* end of file counts as readable */
    TU_RC(mproc_conn_recv_bytes(r, &got, &len, MPROC_FOREVER), MPROC_EEOF);
    TU_RC(mproc_conn_recv_bytes(r, &got, &len, 100), MPROC_EEOF);
    mproc_conn_free(r);
    mproc_conn_free(w);
}
END_TEST

START_TEST(send_to_a_closed_reader_is_epipe)
{
    for (int duplex = 0; duplex < 2; duplex++) {
        mproc_conn *r, *w;
        TU_OK(mproc_pipe(&r, &w, duplex));
        mproc_conn_close(r);
        TU_RC(mproc_conn_send_bytes(w, "x", 1), MPROC_EPIPE);
        mproc_conn_free(r);
        mproc_conn_free(w);
    }
}
END_TEST

START_TEST(directions_closed_and_null)
{
    mproc_conn *r, *w;
    TU_OK(mproc_pipe(&r, &w, false));
    ck_assert(mproc_conn_readable(r) && !mproc_conn_writable(r));
    ck_assert(!mproc_conn_readable(w) && mproc_conn_writable(w));
    TU_RC(mproc_conn_send_bytes(r, "x", 1), MPROC_EBADF);
    void *got;
    size_t len;
    char buf[4];
    TU_RC(mproc_conn_recv_bytes(w, &got, &len, 0), MPROC_EBADF);
    TU_RC(mproc_conn_recv_bytes_into(w, buf, 4, &len, 0), MPROC_EBADF);
    TU_RC(mproc_conn_poll(w, 0), MPROC_EBADF);
    TU_RC(mproc_conn_send_bytes(w, NULL, 3), MPROC_EINVAL);
    TU_RC(mproc_conn_recv_bytes(r, NULL, &len, 0), MPROC_EINVAL);
    TU_RC(mproc_conn_send_bytes(NULL, "x", 1), MPROC_EINVAL);
    TU_RC(mproc_pipe(NULL, &w, true), MPROC_EINVAL);
    TU_RC(mproc_conn_from_fd(&r, -1, true, true), MPROC_EINVAL);
    ck_assert_int_ge(mproc_conn_fileno(r), 0);
    mproc_conn_close(r);
    mproc_conn_close(r); /* harmless */
    ck_assert(mproc_conn_closed(r));
    TU_RC(mproc_conn_fileno(r), MPROC_ECLOSED);
    TU_RC(mproc_conn_recv_bytes(r, &got, &len, 0), MPROC_ECLOSED);
    TU_RC(mproc_conn_poll(r, 0), MPROC_ECLOSED);
    mproc_conn_close(w);
    TU_RC(mproc_conn_send_bytes(w, "x", 1), MPROC_ECLOSED);
    mproc_conn_free(r);
    mproc_conn_free(w);
    mproc_conn_free(NULL);
    mproc_conn_close(NULL);
}
END_TEST

/* A raw fd pair: the test writes frames by hand into fds[1]. */
static mproc_conn *raw_reader(int fds[2])
{
    ck_assert_int_eq(pipe(fds), 0);
    mproc_conn *c;
    TU_OK(mproc_conn_from_fd(&c, fds[0], true, false));
    return c;
}

START_TEST(long_header_accepted_for_small_message)
{
    int fds[2];
    mproc_conn *c = raw_reader(fds);
    ck_assert_int_eq(write(fds[1], "\xff\xff\xff\xff\0\0\0\0\0\0\0\3abc", 15), 15);
    void *got;
    size_t len;
    TU_OK(mproc_conn_recv_bytes(c, &got, &len, 1000));
    ck_assert_uint_eq(len, 3);
    ck_assert(memcmp(got, "abc", 3) == 0);
    free(got);
    close(fds[1]);
    mproc_conn_free(c);
}
END_TEST

START_TEST(malformed_and_oversized_frames_break_the_connection)
{
    int fds[2];
    mproc_conn *c = raw_reader(fds);
    ck_assert_int_eq(write(fds[1], "\x80\0\0\5hello", 9), 9);
    void *got;
    size_t len;
    TU_RC(mproc_conn_recv_bytes(c, &got, &len, 1000), MPROC_EPROTO);
    TU_RC(mproc_conn_recv_bytes(c, &got, &len, 1000), MPROC_EPROTO);
    TU_OK(mproc_conn_poll(c, 0)); /* a receive would not block */
    close(fds[1]);
    mproc_conn_free(c);

    c = raw_reader(fds);
    TU_OK(mproc_conn_set_max_message(c, 100));
    ck_assert_int_eq(write(fds[1], "\0\0\0\x65", 4), 4);
    TU_RC(mproc_conn_recv_bytes(c, &got, &len, 1000), MPROC_EMSGSIZE);
    TU_RC(mproc_conn_recv_bytes(c, &got, &len, 1000), MPROC_EMSGSIZE);
    close(fds[1]);
    mproc_conn_free(c);

    /* A length of 2^63 is refused before any allocation. */
    c = raw_reader(fds);
    ck_assert_int_eq(write(fds[1], "\xff\xff\xff\xff\x80\0\0\0\0\0\0\0", 12), 12);
    TU_RC(mproc_conn_recv_bytes(c, &got, &len, 1000), MPROC_EMSGSIZE);
    close(fds[1]);
    mproc_conn_free(c);
}
END_TEST

/* An oversized header read along with the message before it: poll and
 * wait report it at once, as the receive fails at once (they used to wait
 * for a payload that would never be accepted). */
START_TEST(oversized_header_behind_a_message_is_reported_by_poll)
{
    int fds[2];
    mproc_conn *c = raw_reader(fds);
    TU_OK(mproc_conn_set_max_message(c, 100));
    ck_assert_int_eq(write(fds[1], "\0\0\0\2ok\0\x20\0\0", 10), 10);
    void *got;
    size_t len;
    TU_OK(mproc_conn_recv_bytes(c, &got, &len, 1000)); /* reads all ten bytes */
    ck_assert(len == 2 && memcmp(got, "ok", 2) == 0);
    free(got);
    TU_OK(mproc_conn_poll(c, 0));
    mproc_waitable w = MPROC_WAITABLE_CONN(c);
    TU_OK(mproc_wait(&w, 1, 0, NULL));
    ck_assert(w.ready);
    TU_RC(mproc_conn_recv_bytes(c, &got, &len, 0), MPROC_EMSGSIZE);
    close(fds[1]);
    mproc_conn_free(c);
}
END_TEST

START_TEST(timeout_mid_message_resumes_without_loss)
{
    int fds[2];
    mproc_conn *c = raw_reader(fds);
    ck_assert_int_eq(write(fds[1],
                           "\0\0\0\x0a"
                           "01234",
                           9),
                     9);
    void *got;
    size_t len;
    char buf[16];
    TU_RC(mproc_conn_recv_bytes(c, &got, &len, 30), MPROC_ETIMEDOUT);
    TU_RC(mproc_conn_poll(c, 0), MPROC_ETIMEDOUT);
    ck_assert_int_eq(write(fds[1], "567", 3), 3);
    TU_RC(mproc_conn_recv_bytes_into(c, buf, sizeof buf, &len, 30), MPROC_ETIMEDOUT);
    ck_assert_int_eq(write(fds[1], "89", 2), 2);
    TU_OK(mproc_conn_recv_bytes_into(c, buf, sizeof buf, &len, 1000));
    ck_assert_uint_eq(len, 10);
    ck_assert(memcmp(buf, "0123456789", 10) == 0);

    /* Large message: half arrives, the receive times out, then resumes. */
    size_t n = 1 << 20;
    unsigned char *msg = malloc(n);
    fill_pattern(msg, n, 9);
    uint8_t h[MPROC__FRAME_HDR_MAX];
    size_t hl = mproc__frame_header(n, h);
    pid_t pid = fork();
    if (pid == 0) {
        int ok = write(fds[1], h, hl) == (ssize_t)hl;
        ok = ok && mproc__write_all(fds[1], msg, n / 2) == 0;
        tu_sleep_ms(150);
        ok = ok && mproc__write_all(fds[1], msg + n / 2, n - n / 2) == 0;
        _exit(ok ? 0 : 1);
    }
    int rc;
    int timeouts = 0;
    while ((rc = mproc_conn_recv_bytes(c, &got, &len, 20)) == MPROC_ETIMEDOUT) timeouts++;
    TU_OK(rc);
    ck_assert_int_gt(timeouts, 0);
    ck_assert_uint_eq(len, n);
    ck_assert(check_pattern(got, n, 9));
    free(got);
    free(msg);
    int st;
    waitpid(pid, &st, 0);
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    close(fds[1]);
    mproc_conn_free(c);
}
END_TEST

START_TEST(writer_dying_mid_message_gives_eof_not_a_torn_message)
{
    int fds[2];
    mproc_conn *c = raw_reader(fds);
    ck_assert_int_eq(write(fds[1],
                           "\0\0\0\x0a"
                           "abc",
                           7),
                     7);
    close(fds[1]);
    void *got;
    size_t len;
    TU_RC(mproc_conn_recv_bytes(c, &got, &len, 1000), MPROC_EEOF);
    TU_RC(mproc_conn_recv_bytes(c, &got, &len, 1000), MPROC_EEOF);
    mproc_conn_free(c);
}
END_TEST

/* On a socket, reads take everything there: many frames per read, frames
 * split across reads, sizes mixed. */
/* Two connections on the ends of a Unix stream socketpair. */
static void socket_conns(mproc_conn **a, mproc_conn **b)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    TU_OK(mproc_conn_from_fd(a, sv[0], true, true));
    TU_OK(mproc_conn_from_fd(b, sv[1], true, true));
}

START_TEST(mixed_messages_over_a_socket)
{
    mproc_conn *a, *b;
    socket_conns(&a, &b);
    pid_t pid = fork();
    if (pid == 0) {
        unsigned char *m = malloc(200000);
        int bad = 0;
        for (unsigned i = 0; i < 3000 && !bad; i++) {
            size_t n = (i % 7 == 0) ? 1000 + i * 50 : i % 13;
            fill_pattern(m, n, i);
            bad = mproc_conn_send_bytes(b, m, n) != 0;
        }
        _exit(bad);
    }
    for (unsigned i = 0; i < 3000; i++) {
        void *got;
        size_t len, n = (i % 7 == 0) ? 1000 + i * 50 : i % 13;
        TU_OK(mproc_conn_recv_bytes(a, &got, &len, 10000));
        ck_assert_uint_eq(len, n);
        ck_assert(check_pattern(got, n, i));
        free(got);
    }
    int st;
    waitpid(pid, &st, 0);
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    mproc_conn_free(a);
    mproc_conn_free(b);
}
END_TEST

/* The socket's receive timeout (SO_RCVTIMEO), in microseconds. */
static long long rcvtimeo_us(mproc_conn *c)
{
    struct timeval tv;
    socklen_t n = sizeof tv;
    ck_assert_int_eq(getsockopt(mproc_conn_fileno(c), SOL_SOCKET, SO_RCVTIMEO, &tv, &n), 0);
    return (long long)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* CPU time of this process so far, in ms. */
static long long cpu_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* A child that sends one int on b after delay_ms; returns its pid. */
static pid_t send_later(mproc_conn *b, int delay_ms, int value)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        tu_sleep_ms(delay_ms);
        _exit(mproc_conn_send_bytes(b, &value, sizeof value) != 0);
    }
    return pid;
}

static void recv_int(mproc_conn *a, int timeout_ms, int want)
{
    int got = -1;
    size_t len;
    TU_OK(mproc_conn_recv_bytes_into(a, &got, sizeof got, &len, timeout_ms));
    ck_assert_int_eq(got, want);
}

/* On a socket a timed receive sleeps in the read, bounded by the socket's
 * SO_RCVTIMEO; a later receive without a timeout clears it, one timeout
 * left by another user of the socket only costs a wake-up, a non-blocking
 * fd is waited for without spinning, and a connection forgotten (its fd
 * handed on) leaves the socket without a timeout. */
START_TEST(timed_socket_receive_sleeps_in_the_read)
{
    mproc_conn *a, *b;
    socket_conns(&a, &b);
    int got, st;
    size_t len;
    /* whole seconds left, less a few ns: the timeout is rounded up to
     * microseconds without overflowing them (setsockopt's EDOM) */
    for (int i = 0; i < 200; i++) {
        TU_OK(mproc_conn_send_bytes(b, &i, sizeof i));
        recv_int(a, 1000 * (1 + i % 3), i);
    }
    long long t0 = mproc_now_ns();
    TU_RC(mproc_conn_recv_bytes_into(a, &got, sizeof got, &len, 30), MPROC_ETIMEDOUT);
    long long took = mproc_now_ns() - t0;
    ck_assert_msg(took >= 30000000LL && took < 1000000000LL, "a 30 ms wait took %lld ns", took);
    long long set = rcvtimeo_us(a); /* in jiffies: rounded up a little */
    ck_assert_msg(set > 0 && set <= 40000, "SO_RCVTIMEO %lld us after a 30 ms wait", set);

    pid_t pid = send_later(b, 100, 1); /* later than the 30 ms left on the socket */
    recv_int(a, MPROC_FOREVER, 1);
    ck_assert_int_eq(rcvtimeo_us(a), 0);
    waitpid(pid, &st, 0);
    ck_assert_int_eq(st, 0);

    struct timeval stale = {0, 10000}; /* another user's 10 ms */
    ck_assert_int_eq(
        setsockopt(mproc_conn_fileno(a), SOL_SOCKET, SO_RCVTIMEO, &stale, sizeof stale), 0);
    pid = send_later(b, 100, 2);
    recv_int(a, MPROC_FOREVER, 2);
    waitpid(pid, &st, 0);
    ck_assert_int_eq(st, 0);

    int fd = mproc_conn_fileno(a);
    ck_assert_int_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    long long cpu0 = cpu_ms();
    t0 = mproc_now_ns();
    TU_RC(mproc_conn_recv_bytes_into(a, &got, sizeof got, &len, 200), MPROC_ETIMEDOUT);
    ck_assert(mproc_now_ns() - t0 >= 200000000LL);
    pid = send_later(b, 200, 3);
    recv_int(a, MPROC_FOREVER, 3);
    pid_t pid2 = send_later(b, 200, 4);
    recv_int(a, 5000, 4);
    long long spent = cpu_ms() - cpu0;
    ck_assert_msg(spent < 150, "waits of 600 ms on a non-blocking fd took %lld ms of CPU", spent);
    waitpid(pid, &st, 0);
    ck_assert_int_eq(st, 0);
    waitpid(pid2, &st, 0);
    ck_assert_int_eq(st, 0);

    TU_RC(mproc_conn_recv_bytes_into(a, &got, sizeof got, &len, 20), MPROC_ETIMEDOUT);
    ck_assert_int_gt(rcvtimeo_us(a), 0);
    int afd = mproc_conn_fileno(a);
    mproc__conn_forget(a);
    struct timeval tv;
    socklen_t n = sizeof tv;
    ck_assert_int_eq(getsockopt(afd, SOL_SOCKET, SO_RCVTIMEO, &tv, &n), 0);
    ck_assert(tv.tv_sec == 0 && tv.tv_usec == 0);
    close(afd);
    mproc_conn_free(b);
}
END_TEST

/* The fds of each kind of end, and an end rebuilt from copies of them
 * (as a process that received them rebuilds it) talks to the other end. */
START_TEST(fds_and_an_end_rebuilt_from_them)
{
    int r, w;
    TU_RC(mproc_conn_fds(NULL, &r, &w), MPROC_EINVAL);
    mproc_conn *x;
    TU_RC(mproc_conn_from_fds(&x, -1, -1), MPROC_EINVAL);
    TU_RC(mproc_conn_from_fds(NULL, 3, 3), MPROC_EINVAL);
    TU_RC(mproc_conn_from_fds(&x, -2, 3), MPROC_EINVAL);
    for (int kind = 0; kind < 3; kind++) { /* duplex pipes, one-way pipe, socket */
        mproc_conn *a, *b;
        if (kind == 2)
            socket_conns(&a, &b);
        else
            TU_OK(mproc_pipe(&a, &b, kind == 0));
        TU_OK(mproc_conn_fds(b, &r, &w));
        ck_assert(kind == 1 ? r == -1 : r >= 0);
        ck_assert(w >= 0);
        ck_assert(kind == 2 ? r == w : r != w);
        ck_assert_int_eq(mproc_conn_fileno(b), kind == 1 ? w : r);
        mproc_conn *c;
        TU_OK(mproc_conn_from_fds(&c, r < 0 ? -1 : dup(r), r == w ? -1 : dup(w)));
        if (r == w) { /* a socket: one fd both ways */
            mproc_conn_free(c);
            TU_OK(mproc_conn_from_fds(&c, dup(r), -1));
            int fd = mproc_conn_fileno(c);
            mproc__conn_forget(c);
            TU_OK(mproc_conn_from_fds(&c, fd, fd));
        }
        mproc_conn_free(b);
        ck_assert_int_eq(mproc_conn_readable(c), kind != 1);
        ck_assert(mproc_conn_writable(c));
        TU_OK(mproc_conn_send_bytes(c, "to a", 4));
        void *got;
        size_t len;
        TU_OK(mproc_conn_recv_bytes(a, &got, &len, 5000));
        ck_assert_uint_eq(len, 4);
        free(got);
        if (kind != 1) {
            TU_OK(mproc_conn_send_bytes(a, "to c", 4));
            TU_OK(mproc_conn_recv_bytes(c, &got, &len, 5000));
            ck_assert(len == 4 && memcmp(got, "to c", 4) == 0);
            free(got);
        }
        mproc_conn_close(c);
        TU_RC(mproc_conn_fds(c, &r, &w), MPROC_ECLOSED);
        mproc_conn_free(c);
        mproc_conn_free(a);
    }
}
END_TEST

/* A spinning receive (mproc__conn_set_spin) reads what is there, what
 * comes during the spin, what comes after it (then it sleeps), honours a
 * timeout and sees end of file. */
START_TEST(spinning_receive)
{
    mproc_conn *a, *b;
    socket_conns(&a, &b);
    mproc__conn_set_spin(a, 5000000); /* 5 ms */
    pid_t pid = fork();
    if (pid == 0) { /* one at once, one within the spin, one after it */
        static const int delay_ms[3] = {0, 1, 50};
        int bad = 0;
        for (int i = 0; i < 3 && !bad; i++) {
            tu_sleep_ms(delay_ms[i]);
            bad = mproc_conn_send_bytes(b, &i, sizeof i) != 0;
        }
        _exit(bad);
    }
    mproc_conn_free(b);
    for (int i = 0; i < 3; i++) {
        int got = -1;
        size_t len;
        TU_OK(mproc_conn_recv_bytes_into(a, &got, sizeof got, &len, 10000));
        ck_assert_int_eq(got, i);
    }
    int st;
    waitpid(pid, &st, 0);
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    int got;
    size_t len;
    TU_RC(mproc_conn_recv_bytes_into(a, &got, sizeof got, &len, 100), MPROC_EEOF);
    mproc_conn_free(a);

    /* a timeout (shorter than the spin: it cuts the spin short) with
     * nothing to read; then a message is read whole */
    socket_conns(&a, &b);
    mproc__conn_set_spin(a, 2000000000u);
    long long t0 = mproc_now_ns();
    TU_RC(mproc_conn_recv_bytes_into(a, &got, sizeof got, &len, 10), MPROC_ETIMEDOUT);
    ck_assert(mproc_now_ns() - t0 < 1000000000LL);
    int seven = 7;
    TU_OK(mproc_conn_send_bytes(b, &seven, sizeof seven));
    TU_OK(mproc_conn_recv_bytes_into(a, &got, sizeof got, &len, 1000));
    ck_assert_int_eq(got, 7);
    mproc_conn_free(a);
    mproc_conn_free(b);
}
END_TEST

/* Python's multiprocessing.connection on the other end of a socketpair. */
static const char *py_echo = "import sys\n"
                             "from multiprocessing.connection import Connection\n"
                             "c = Connection(int(sys.argv[1]))\n"
                             "while True:\n"
                             "    m = c.recv_bytes()\n"
                             "    if m == b'quit': break\n"
                             "    c.send_bytes(m[::-1])\n"
                             "c.send_bytes(b'x' * 70_000_000)\n";

START_TEST(python_connection_speaks_our_frames)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        char fd[16];
        snprintf(fd, sizeof fd, "%d", sv[1]);
        execlp("python3", "python3", "-c", py_echo, fd, (char *)NULL);
        _exit(127);
    }
    close(sv[1]);
    mproc_conn *c;
    TU_OK(mproc_conn_from_fd(&c, sv[0], true, true));
    static const size_t sizes[] = {0, 5, 70000, 3 << 20};
    for (size_t i = 0; i < 4; i++) {
        unsigned char *m = malloc(sizes[i] + 1);
        fill_pattern(m, sizes[i], 3);
        TU_OK(mproc_conn_send_bytes(c, m, sizes[i]));
        void *got;
        size_t len;
        TU_OK(mproc_conn_recv_bytes(c, &got, &len, 20000));
        ck_assert_uint_eq(len, sizes[i]);
        for (size_t k = 0; k < len; k++) ck_assert(((unsigned char *)got)[k] == m[len - 1 - k]);
        free(got);
        free(m);
    }
    TU_OK(mproc_conn_send_bytes(c, "quit", 4));
    void *got;
    size_t len;
    TU_OK(mproc_conn_recv_bytes(c, &got, &len, 20000));
    ck_assert_uint_eq(len, 70000000);
    free(got);
    int st;
    waitpid(pid, &st, 0);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    mproc_conn_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conn");
    TCase *tc = tu_tcase(s, "frames", 30);
    tcase_add_test(tc, frame_header_is_python_compatible);
    tcase_add_test(tc, sizes_over_oneway_pipe);
    tcase_add_test(tc, sizes_over_duplex_pipe);
    tcase_add_test(tc, recv_into_too_small_keeps_the_message);
    tcase_add_test(tc, long_header_accepted_for_small_message);
    tcase_add_test(tc, malformed_and_oversized_frames_break_the_connection);
    tcase_add_test(tc, oversized_header_behind_a_message_is_reported_by_poll);
    tcase_add_test(tc, mixed_messages_over_a_socket);
    tc = tu_tcase(s, "semantics", 30);
    tcase_add_test(tc, poll_and_timeouts);
    tcase_add_test(tc, eof_after_peer_closes_and_drain);
    tcase_add_test(tc, send_to_a_closed_reader_is_epipe);
    tcase_add_test(tc, directions_closed_and_null);
    tcase_add_test(tc, timeout_mid_message_resumes_without_loss);
    tcase_add_test(tc, writer_dying_mid_message_gives_eof_not_a_torn_message);
    tc = tu_tcase(s, "processes", 120);
    tcase_add_loop_test(tc, messages_of_64MiB_between_processes, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, many_small_messages_between_processes, 0, TU_NMETHODS);
    /* The long header is framing, which no start method changes (the two
     * cases above cross every method): one method, as it moves 2 GiB
     * through a pipe (20 s a method here, a minute under ASan). */
    tcase_add_loop_test(tc, message_over_2GiB_uses_the_long_header, 0, 1);
    tc = tu_tcase(s, "python", 60);
    tcase_add_test(tc, python_connection_speaks_our_frames);
    tcase_add_test(tc, spinning_receive);
    tcase_add_test(tc, timed_socket_receive_sleeps_in_the_read);
    tcase_add_test(tc, fds_and_an_end_rebuilt_from_them);
    return tu_run(s);
}
