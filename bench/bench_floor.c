/* bench_floor: the raw mechanism under each row, plain libc and syscalls;
 * this file has main, the process and pipe rows, and the helpers of
 * bench_floor.h.
 * Usage: bench_floor ROW. Prints the figure in the row's unit. */
#include "bench_floor.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int reap(pid_t pid)
{
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "child failed (status 0x%x)\n", st);
        return -1;
    }
    return 0;
}

void *shared_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* ---- process.start_join ------------------------------------------------ */

static int fork_exit(long n, double *secs)
{
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        CHECK(pid >= 0, "fork");
        if (pid == 0) _exit(0);
        if (reap(pid) != 0) return -1;
    }
    *secs = bench_now() - t0;
    return 0;
}

static int fork_exec_true(long n, double *secs)
{
    char *const args[] = {"true", NULL};
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        CHECK(pid >= 0, "fork");
        if (pid == 0) {
            execve("/bin/true", args, environ);
            _exit(127);
        }
        if (reap(pid) != 0) return -1;
    }
    *secs = bench_now() - t0;
    return 0;
}

/* ---- pipe.throughput: a child writes n messages, the parent reads ------ */

int pipe_throughput(long n, double *secs, size_t size, bool pin)
{
    int fds[2]; /* fds[0] is read by the parent, fds[1] written by the child */
    CHECK(pipe2(fds, O_CLOEXEC) == 0, "pipe2");
    char *buf = malloc(size < 8 ? 8 : size);
    CHECK(buf, "malloc");
    memset(buf, 'x', size);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        if (pin) bench_pin_apart(1);
        close(fds[0]);
        int bad = bench_write_full(fds[1], "ready!!!", 8);
        for (long i = 0; i < n && !bad; i++) bad = bench_write_full(fds[1], buf, size);
        _exit(bad ? 1 : 0);
    }
    if (pin) bench_pin_apart(0);
    close(fds[1]);
    /* The clock starts once the child is running and the channel is empty. */
    int bad = bench_read_full(fds[0], buf, 8);
    double t0 = bench_now();
    for (long i = 0; i < n && !bad; i++) bad = bench_read_full(fds[0], buf, size);
    *secs = bench_now() - t0;
    close(fds[0]);
    free(buf);
    if (bad) fprintf(stderr, "short read\n");
    return reap(pid) != 0 || bad ? -1 : 0;
}

static int pipe_8(long n, double *s)
{
    return pipe_throughput(n, s, 8, false);
}
static int pipe_1m(long n, double *s)
{
    return pipe_throughput(n, s, 1 << 20, false);
}

/* ---- pipe.pingpong: two pipes, the child echoes ------------------------ */

static int pingpong(long n, double *secs)
{
    int down[2], up[2];
    CHECK(pipe2(down, O_CLOEXEC) == 0 && pipe2(up, O_CLOEXEC) == 0, "pipe2");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        char m[8];
        close(down[1]);
        close(up[0]);
        while (bench_read_full(down[0], m, 8) == 0)
            if (bench_write_full(up[1], m, 8) != 0) _exit(1);
        _exit(0);
    }
    close(down[0]);
    close(up[1]);
    char m[8] = "pingpong";
    int bad = bench_write_full(down[1], m, 8) || bench_read_full(up[0], m, 8);
    double t0 = bench_now();
    for (long i = 0; i < n && !bad; i++)
        bad = bench_write_full(down[1], m, 8) || bench_read_full(up[0], m, 8);
    *secs = bench_now() - t0;
    close(down[1]);
    close(up[0]);
    if (bad) fprintf(stderr, "pingpong: short transfer\n");
    return reap(pid) != 0 || bad ? -1 : 0;
}

static const bench_row rows[] = {
    {"process.start_join.fork", fork_exit, BENCH_MS, 0},
    {"process.start_join.spawn", fork_exec_true, BENCH_MS, 0},
    {"process.start_join.forkserver", fork_exit, BENCH_MS, 0},
    {"pipe.throughput.8B", pipe_8, BENCH_PER_S, 8},
    {"pipe.throughput.1MiB", pipe_1m, BENCH_MB_PER_S, 1 << 20},
    /* mproc's duplex Pipe is two pipes: the raw floor is a pipe here too. */
    {"pipe.throughput.duplex.8B", pipe_8, BENCH_PER_S, 8},
    {"pipe.throughput.duplex.1MiB", pipe_1m, BENCH_MB_PER_S, 1 << 20},
    {"pipe.pingpong.8B", pingpong, BENCH_US, 8},
};

int main(int argc, char **argv)
{
    const bench_table tables[] = {BENCH_TABLE(rows), bench_floor_sync, bench_floor_queue,
                                  bench_floor_peers, bench_floor_pool, bench_floor_manager};
    return bench_main(argc, argv, tables, sizeof tables / sizeof tables[0]);
}
