/* Peers of the queue rows (BENCH.md, "peers"): other ways to move messages
 * from one process to another, each measured the way bench_mproc measures
 * its queue. Row names are "ROW PEER" (bench_floor ROW PEER):
 *   pipe      write/read on a pipe (the pipe.throughput floor)
 *   posix_mq  a POSIX message queue, mq_send/mq_receive
 *   zeromq    libzmq PUSH → PULL over ipc://, when bench_floor was built
 *             with libzmq (CMake finds it; otherwise the figure is null)
 * As in the queue rows, producer and consumer run on different CPUs unless
 * only one is allowed, and the consumer checks a sequence number in the
 * first 8 bytes of every message. */
#include "bench_floor.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef MPROC_BENCH_HAVE_ZMQ
#include <zmq.h>
#endif

#define MIB ((size_t)1 << 20)

/* A message buffer of size bytes (at least 8), filled with 'x'. */
static char *message(size_t size)
{
    char *buf = malloc(size < 8 ? 8 : size);
    if (buf) memset(buf, 'x', size < 8 ? 8 : size);
    return buf;
}

static void put_seq(char *buf, uint64_t seq)
{
    memcpy(buf, &seq, sizeof seq);
}

static uint64_t get_seq(const char *buf)
{
    uint64_t seq;
    memcpy(&seq, buf, sizeof seq);
    return seq;
}

/* ---- pipe -------------------------------------------------------------- */

static int pipe_8(long n, double *s)
{
    return pipe_throughput(n, s, 8, true);
}
static int pipe_1m(long n, double *s)
{
    return pipe_throughput(n, s, MIB, true);
}

/* ---- posix_mq: one queue, the child sends 0..n, the parent receives ---- */

/* Reads a number from /proc/sys/fs/mqueue/NAME, or -1. */
static long mq_limit(const char *name)
{
    char path[64];
    long v = -1;
    snprintf(path, sizeof path, "/proc/sys/fs/mqueue/%s", name);
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%ld", &v) != 1) v = -1;
        fclose(f);
    }
    return v;
}

static int posix_mq(long n, double *secs, size_t size)
{
    /* The system's ceiling for unprivileged callers (root may pass it, but
     * then the figure would not be one an ordinary program can get). */
    long max = mq_limit("msgsize_max");
    if (max >= 0 && (size_t)max < size) {
        fprintf(stderr, "posix_mq: a %zu-byte message is over fs.mqueue.msgsize_max (%ld)\n", size,
                max);
        return BENCH_UNSUPPORTED;
    }
    long maxmsg = mq_limit("msg_default");
    struct mq_attr attr = {.mq_maxmsg = maxmsg > 0 ? maxmsg : 10, .mq_msgsize = (long)size};
    char name[64];
    snprintf(name, sizeof name, "/mproc-bench-%d", (int)getpid());
    mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
    if (q == (mqd_t)-1) {
        fprintf(stderr, "posix_mq: mq_open (%ld messages of %zu bytes): %s\n", attr.mq_maxmsg, size,
                strerror(errno));
        return BENCH_UNSUPPORTED;
    }
    mq_unlink(name); /* the child inherits the descriptor */
    char *buf = message(size);
    CHECK(buf, "malloc");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        bench_pin_apart(1);
        int bad = 0;
        for (uint64_t i = 0; i <= (uint64_t)n && !bad; i++) {
            put_seq(buf, i);
            while ((bad = mq_send(q, buf, size, 0)) != 0 && errno == EINTR) {
            }
        }
        if (bad) perror("mq_send");
        _exit(bad != 0);
    }
    bench_pin_apart(0);
    double t0 = 0;
    int bad = 0;
    for (uint64_t i = 0; i <= (uint64_t)n && !bad; i++) {
        ssize_t k;
        while ((k = mq_receive(q, buf, size, NULL)) < 0 && errno == EINTR) {
        }
        if (k < 0) perror("mq_receive");
        bad = k != (ssize_t)size || get_seq(buf) != i;
        if (i == 0) t0 = bench_now();
    }
    *secs = bench_now() - t0;
    if (bad) {
        fprintf(stderr, "posix_mq: wrong message\n");
        kill(pid, SIGKILL);
    }
    bad |= reap(pid) != 0;
    mq_close(q);
    free(buf);
    return bad ? -1 : 0;
}

static int mq_8(long n, double *s)
{
    return posix_mq(n, s, 8);
}
static int mq_1m(long n, double *s)
{
    return posix_mq(n, s, MIB);
}

/* ---- zeromq: PUSH (child) → PULL (parent) over ipc:// ------------------ */

#ifdef MPROC_BENCH_HAVE_ZMQ
/* Prints what failed (with zmq's reason) and returns -1 unless cond. */
#define ZCHECK(cond, what)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s: %s\n", what, zmq_strerror(zmq_errno()));                          \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

/* The child's side: its own context (a context must not cross a fork),
 * made before its main thread is pinned, so that zmq's I/O thread is not
 * pinned with it. Sends 0..n, then waits until the parent says it has them
 * all (a byte on `done`) before it closes: the PULL side drops what is
 * still in flight when its peer disconnects, even with an infinite linger
 * (seen with libzmq 4.3.4). */
static int zmq_pusher(const char *endpoint, long n, char *buf, size_t size, int done)
{
    void *ctx = zmq_ctx_new();
    ZCHECK(ctx, "zmq_ctx_new");
    void *s = zmq_socket(ctx, ZMQ_PUSH);
    ZCHECK(s, "zmq_socket");
    ZCHECK(zmq_connect(s, endpoint) == 0, "zmq_connect");
    bench_pin_apart(1);
    for (uint64_t i = 0; i <= (uint64_t)n; i++) {
        put_seq(buf, i);
        ZCHECK(zmq_send(s, buf, size, 0) == (int)size, "zmq_send");
    }
    CHECK(bench_read_full(done, buf, 1) == 0, "read");
    ZCHECK(zmq_close(s) == 0, "zmq_close");
    ZCHECK(zmq_ctx_term(ctx) == 0, "zmq_ctx_term");
    return 0;
}

static int zeromq(long n, double *secs, size_t size)
{
    static int runs;
    char endpoint[128], *path;
    const char *tmp = getenv("TMPDIR");
    snprintf(endpoint, sizeof endpoint, "ipc://%s/mproc-bench-zmq-%d-%d",
             tmp && *tmp ? tmp : "/tmp", (int)getpid(), runs++);
    path = endpoint + strlen("ipc://");
    char *buf = message(size);
    CHECK(buf, "malloc");
    /* The parent's I/O thread starts with the socket, before the pinning
     * below; the parent was pinned by an earlier run of this function. */
    bench_unpin();
    void *ctx = zmq_ctx_new();
    ZCHECK(ctx, "zmq_ctx_new");
    void *s = zmq_socket(ctx, ZMQ_PULL);
    ZCHECK(s, "zmq_socket");
    ZCHECK(zmq_bind(s, endpoint) == 0, "zmq_bind");
    int done[2];
    CHECK(pipe2(done, O_CLOEXEC) == 0, "pipe2");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) _exit(zmq_pusher(endpoint, n, buf, size, done[0]) != 0);
    bench_pin_apart(0);
    double t0 = 0;
    int bad = 0;
    for (uint64_t i = 0; i <= (uint64_t)n && !bad; i++) {
        int k = zmq_recv(s, buf, size, 0);
        if (k < 0) fprintf(stderr, "zmq_recv: %s\n", zmq_strerror(zmq_errno()));
        bad = k != (int)size || get_seq(buf) != i;
        if (i == 0) t0 = bench_now();
    }
    *secs = bench_now() - t0;
    if (bad) {
        fprintf(stderr, "zeromq: wrong message\n");
        kill(pid, SIGKILL);
    }
    bad |= bench_write_full(done[1], "!", 1) != 0 && !bad;
    close(done[0]);
    close(done[1]);
    bad |= reap(pid) != 0;
    zmq_close(s);
    zmq_ctx_term(ctx);
    unlink(path);
    free(buf);
    return bad ? -1 : 0;
}
#else
static int zeromq(long n, double *secs, size_t size)
{
    (void)n, (void)secs, (void)size;
    fprintf(stderr, "zeromq: bench_floor was built without libzmq (Debian: libzmq3-dev)\n");
    return BENCH_UNSUPPORTED;
}
#endif

static int zmq_8(long n, double *s)
{
    return zeromq(n, s, 8);
}
static int zmq_1m(long n, double *s)
{
    return zeromq(n, s, MIB);
}

static const bench_row rows[] = {
    {"queue.spsc.8B pipe", pipe_8, BENCH_PER_S, 8},
    {"queue.spsc.8B posix_mq", mq_8, BENCH_PER_S, 8},
    {"queue.spsc.8B zeromq", zmq_8, BENCH_PER_S, 8},
    {"queue.spsc.1MiB pipe", pipe_1m, BENCH_MB_PER_S, MIB},
    {"queue.spsc.1MiB posix_mq", mq_1m, BENCH_MB_PER_S, MIB},
    {"queue.spsc.1MiB zeromq", zmq_1m, BENCH_MB_PER_S, MIB},
};

const bench_table bench_floor_peers = BENCH_TABLE(rows);
