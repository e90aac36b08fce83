/* bench_mproc: mproc's figure for each row; this file has main, the process
 * and pipe rows, and the helpers of bench_mproc.h.
 * Usage: bench_mproc ROW. Prints the figure in the row's unit. A row whose
 * feature mproc lacks yet prints nothing and exits non-zero. */
#include "bench_mproc.h"

#include <stdlib.h>
#include <string.h>

int join_free(mproc_process *p, bool kill)
{
    int code = -1;
    if (kill) mproc_process_kill(p);
    CHECK(mproc_process_join(p, MPROC_FOREVER));
    CHECK(mproc_process_exitcode(p, &code));
    CHECK(mproc_process_free(p));
    if (code != 0 && !kill) {
        fprintf(stderr, "child exit code %d\n", code);
        return -1;
    }
    return 0;
}

int start_child(mproc_process **p, mproc_target_fn target, const void *arg, size_t arglen)
{
    mproc_process_opts opts = {.start_method = MPROC_START_FORK};
    CHECK(mproc_process_new(p, target, arg, arglen, &opts));
    int rc = mproc_process_start(*p);
    if (rc != 0) {
        fprintf(stderr, "mproc_process_start: %s\n", mproc_err_name(rc));
        mproc_process_free(*p);
        return -1;
    }
    return 0;
}

/* ---- process.start_join.fork ------------------------------------------- */

static int noop(void *arg)
{
    (void)arg;
    return 0;
}

static int start_join_fork(long n, double *secs)
{
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        mproc_process *p;
        if (start_child(&p, noop, NULL, 0) != 0 || join_free(p, false) != 0) return -1;
    }
    *secs = bench_now() - t0;
    return 0;
}

static int start_join_with(mproc_start_method m, long n, double *secs)
{
    /* The forkserver is started once per program, as in Python: not timed. */
    if (m == MPROC_START_FORKSERVER) CHECK(mproc_forkserver_ensure_running());
    mproc_process_opts opts = {.start_method = m};
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        mproc_process *p;
        CHECK(mproc_process_new(&p, noop, NULL, 0, &opts));
        CHECK(mproc_process_start(p));
        if (join_free(p, false) != 0) return -1;
    }
    *secs = bench_now() - t0;
    return 0;
}

static int start_join_spawn(long n, double *secs)
{
    return start_join_with(MPROC_START_SPAWN, n, secs);
}

static int start_join_forkserver(long n, double *secs)
{
    return start_join_with(MPROC_START_FORKSERVER, n, secs);
}

/* ---- pipe.throughput: a child sends n messages, the parent receives ---- */

/* The children are forked, so they find their work in these globals. */
static mproc_conn *g_rx, *g_tx; /* the parent's end and the child's end */
static long g_n;
static size_t g_size;

static int sender(void *arg)
{
    (void)arg;
    mproc_conn_close(g_rx);
    char *buf = malloc(g_size);
    if (!buf) return 1;
    memset(buf, 'x', g_size);
    int rc = mproc_conn_send_bytes(g_tx, "ready", 5);
    for (long i = 0; i < g_n && rc == 0; i++) rc = mproc_conn_send_bytes(g_tx, buf, g_size);
    free(buf);
    if (rc != 0) fprintf(stderr, "sender: %s\n", mproc_err_name(rc));
    return rc != 0;
}

static int throughput(long n, double *secs, bool duplex, size_t size)
{
    mproc_process *p;
    size_t len;
    char *buf = malloc(size < 8 ? 8 : size);
    if (!buf) return -1;
    g_n = n;
    g_size = size;
    CHECK(mproc_pipe(&g_rx, &g_tx, duplex));
    if (start_child(&p, sender, NULL, 0) != 0) return -1;
    mproc_conn_close(g_tx);
    /* The clock starts once the child is running and the pipe is empty. */
    int rc = mproc_conn_recv_bytes_into(g_rx, buf, size < 8 ? 8 : size, &len, MPROC_FOREVER);
    double t0 = bench_now();
    for (long i = 0; i < n && rc == 0; i++) {
        rc = mproc_conn_recv_bytes_into(g_rx, buf, size, &len, MPROC_FOREVER);
        if (rc == 0 && len != size) rc = MPROC_EPROTO;
    }
    *secs = bench_now() - t0;
    free(buf);
    mproc_conn_free(g_rx);
    mproc_conn_free(g_tx);
    CHECK(rc);
    return join_free(p, false);
}

static int pipe_8(long n, double *s)
{
    return throughput(n, s, false, 8);
}
static int pipe_1m(long n, double *s)
{
    return throughput(n, s, false, 1 << 20);
}
static int duplex_8(long n, double *s)
{
    return throughput(n, s, true, 8);
}
static int duplex_1m(long n, double *s)
{
    return throughput(n, s, true, 1 << 20);
}

/* ---- pipe.pingpong.8B: the child echoes over a duplex pipe ------------- */

static int echo(void *arg)
{
    (void)arg;
    char m[8];
    size_t len;
    int rc;
    mproc_conn_close(g_rx);
    while ((rc = mproc_conn_recv_bytes_into(g_tx, m, sizeof m, &len, MPROC_FOREVER)) == 0)
        if ((rc = mproc_conn_send_bytes(g_tx, m, len)) != 0) break;
    if (rc != MPROC_EEOF) fprintf(stderr, "echo: %s\n", mproc_err_name(rc));
    return rc != MPROC_EEOF;
}

static int pingpong(long n, double *secs)
{
    mproc_process *p;
    char m[8] = "pingpong";
    size_t len;
    CHECK(mproc_pipe(&g_rx, &g_tx, true));
    if (start_child(&p, echo, NULL, 0) != 0) return -1;
    mproc_conn_close(g_tx);
    int rc = 0;
    double t0 = 0;
    for (long i = -1; i < n && rc == 0; i++) { /* i == -1: warm-up trip */
        if (i == 0) t0 = bench_now();
        rc = mproc_conn_send_bytes(g_rx, m, 8);
        if (rc == 0) rc = mproc_conn_recv_bytes_into(g_rx, m, sizeof m, &len, MPROC_FOREVER);
        if (rc == 0 && len != 8) rc = MPROC_EPROTO;
    }
    *secs = bench_now() - t0;
    mproc_conn_free(g_rx);
    mproc_conn_free(g_tx);
    CHECK(rc);
    return join_free(p, false);
}

static const bench_row rows[] = {
    {"process.start_join.fork", start_join_fork, BENCH_MS, 0},
    {"process.start_join.spawn", start_join_spawn, BENCH_MS, 0},
    {"process.start_join.forkserver", start_join_forkserver, BENCH_MS, 0},
    {"pipe.throughput.8B", pipe_8, BENCH_PER_S, 8},
    {"pipe.throughput.1MiB", pipe_1m, BENCH_MB_PER_S, 1 << 20},
    {"pipe.throughput.duplex.8B", duplex_8, BENCH_PER_S, 8},
    {"pipe.throughput.duplex.1MiB", duplex_1m, BENCH_MB_PER_S, 1 << 20},
    {"pipe.pingpong.8B", pingpong, BENCH_US, 8},
};

int main(int argc, char **argv)
{
    const bench_table tables[] = {BENCH_TABLE(rows), bench_mproc_sync, bench_mproc_queue,
                                  bench_mproc_pool, bench_mproc_manager};
    return bench_main(argc, argv, tables, sizeof tables / sizeof tables[0]);
}
