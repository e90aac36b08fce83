/* bench_floor rows for managers: the floor of manager.dict_set.remote, a
 * raw TCP ping-pong over loopback with the message sizes of mproc's
 * sequential dict set (a request of REQ bytes, a reply of REP bytes,
 * frame headers included), between this process and a forked child
 * serving the connection. Both ends set TCP_NODELAY, as mproc does.
 * The other manager rows have no floor (BENCH.md). */
#include "bench_floor.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

/* mproc's dict set: the frame header (4) + [CALL, id, "setitem", ["k", i]]
 * in CBOR (17 to 19 bytes for the ids and i of a run); the reply: 4 +
 * [OK, nil] (3). */
#define REQ 24
#define REP 8

static void nodelay(int fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int tcp_pingpong(long n, double *secs)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(l >= 0, "socket");
    CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 1) == 0, "bind/listen");
    CHECK(getsockname(l, (struct sockaddr *)&a, &alen) == 0, "getsockname");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) { /* the server: answers each request until end of file */
        int c = accept(l, NULL, NULL);
        if (c < 0) _exit(1);
        nodelay(c);
        char req[REQ], rep[REP] = {0};
        while (bench_read_full(c, req, REQ) == 0)
            if (bench_write_full(c, rep, REP) != 0) _exit(1);
        _exit(0);
    }
    close(l);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(c >= 0, "socket");
    CHECK(connect(c, (struct sockaddr *)&a, sizeof a) == 0, "connect");
    nodelay(c);
    char req[REQ] = {0}, rep[REP];
    int bad = bench_write_full(c, req, REQ) || bench_read_full(c, rep, REP); /* warm-up */
    double t0 = bench_now();
    for (long i = 0; i < n && !bad; i++)
        bad = bench_write_full(c, req, REQ) || bench_read_full(c, rep, REP);
    *secs = bench_now() - t0;
    close(c);
    if (bad) fprintf(stderr, "tcp ping-pong: short transfer\n");
    return reap(pid) != 0 || bad ? -1 : 0;
}

static const bench_row rows[] = {
    {"manager.dict_set.remote", tcp_pingpong, BENCH_PER_S, 0},
};

const bench_table bench_floor_manager = BENCH_TABLE(rows);
