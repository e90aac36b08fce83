/* bench_floor rows under the shared-memory layer: process-shared pthread
 * mutexes, a bare futex ping-pong and malloc. */
#include "bench_floor.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A process-shared, not robust, mutex of the given type. 0 or an errno. */
static int pshared_mutex_init(pthread_mutex_t *m, int type)
{
    pthread_mutexattr_t a;
    int r = pthread_mutexattr_init(&a);
    if (r == 0) r = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (r == 0) r = pthread_mutexattr_settype(&a, type);
    if (r == 0) r = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return r;
}

/* ---- lock.uncontended: pshared mutex lock+unlock ----------------------- */

static int lock_uncontended(long n, double *secs)
{
    pthread_mutex_t *m = shared_map(sizeof *m);
    CHECK(m, "mmap");
    int r = pshared_mutex_init(m, PTHREAD_MUTEX_NORMAL);
    double t0 = bench_now();
    for (long i = 0; i < n && r == 0; i++) {
        r = pthread_mutex_lock(m);
        if (r == 0) r = pthread_mutex_unlock(m);
    }
    *secs = bench_now() - t0;
    pthread_mutex_destroy(m);
    munmap(m, sizeof *m);
    errno = r;
    CHECK(r == 0, "pthread_mutex");
    return 0;
}

/* ---- counter.locked.2proc: 2 forked children, pshared mutex + int ------ */

typedef struct counter_page {
    pthread_mutex_t m;
    int x;
    bench_gate gate;
} counter_page;

static void incrementer(counter_page *c, int who, long n)
{
    int r = 0;
    bench_pin_apart(who);
    bench_gate_wait(&c->gate);
    for (long i = 0; i < n && r == 0; i++) {
        r = pthread_mutex_lock(&c->m);
        if (r == 0) {
            ++c->x;
            r = pthread_mutex_unlock(&c->m);
        }
    }
    c->gate.end[who] = bench_now();
    _exit(r != 0);
}

/* n increments in all; the clock runs from the gate opening until the last
 * child is done. The children run on different CPUs (bench_pin_apart), so
 * that they really contend, unless only one CPU is allowed. */
static int counter(long n, double *secs, int type)
{
    counter_page *c = shared_map(sizeof *c);
    CHECK(c, "mmap");
    errno = pshared_mutex_init(&c->m, type);
    CHECK(errno == 0, "pthread_mutex_init");
    pid_t pid[2];
    int started = 0, bad = 0;
    for (int who = 0; who < 2; who++) {
        pid[who] = fork();
        if (pid[who] == 0) incrementer(c, who, n / 2 + (who < n % 2));
        if (pid[who] < 0) {
            perror("fork");
            bad = 1;
            atomic_store(&c->gate.go, 1);
            break;
        }
        started++;
    }
    double t0 = bench_gate_open(&c->gate, started);
    for (int i = 0; i < started; i++) bad |= reap(pid[i]) != 0;
    *secs = bench_gate_last_end(&c->gate, started) - t0;
    if (!bad && c->x != n) {
        fprintf(stderr, "counter: %d increments, %ld expected\n", c->x, n);
        bad = 1;
    }
    pthread_mutex_destroy(&c->m);
    munmap(c, sizeof *c);
    return bad ? -1 : 0;
}

static int counter_normal(long n, double *s)
{
    return counter(n, s, PTHREAD_MUTEX_NORMAL);
}
static int counter_recursive(long n, double *s)
{
    return counter(n, s, PTHREAD_MUTEX_RECURSIVE);
}

/* ---- wake.pingpong: futex ping-pong on two shared words ---------------- */

/* A word per direction: 0 empty, 1 posted, 2 empty with its waiter asleep
 * (so that post makes the wake-up syscall only when someone sleeps). post
 * sets it; await waits until it is posted and empties it. Non-private
 * futexes: the words are in a MAP_SHARED page used by two processes. */
static void post(atomic_uint *w)
{
    if (atomic_exchange(w, 1) == 2) syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static void await(atomic_uint *w)
{
    for (;;) {
        unsigned v = 1;
        if (atomic_compare_exchange_strong(w, &v, 0)) return;
        if (v == 2 || atomic_compare_exchange_strong(w, &v, 2))
            syscall(SYS_futex, w, FUTEX_WAIT, 2, NULL, NULL, 0);
    }
}

/* One warm-up round trip, then n timed ones; the child answers n + 1. The
 * two sides run on different CPUs unless only one is allowed. */
int futex_pingpong(long n, double *secs)
{
    atomic_uint *w = shared_map(2 * sizeof *w); /* w[0]: to the child, w[1]: back */
    CHECK(w, "mmap");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        bench_pin_apart(1);
        for (long i = 0; i <= n; i++) {
            await(&w[0]);
            post(&w[1]);
        }
        _exit(0);
    }
    bench_pin_apart(0);
    double t0 = 0;
    for (long i = -1; i < n; i++) {
        if (i == 0) t0 = bench_now();
        post(&w[0]);
        await(&w[1]);
    }
    *secs = bench_now() - t0;
    munmap(w, 2 * sizeof *w);
    return reap(pid);
}

/* ---- arena.alloc_free.64B: malloc+free --------------------------------- */

static int malloc_free(long n, double *secs)
{
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        void *p = malloc(64);
        CHECK(p, "malloc");
        bench_keep(p);
        free(p);
    }
    *secs = bench_now() - t0;
    return 0;
}

/* .batch: 1000 blocks allocated, then all freed (oldest first). */
#define BATCH 1000

static int malloc_free_batch(long n, double *secs)
{
    void *p[BATCH];
    double t0 = bench_now();
    for (long done = 0; done < n; done += BATCH) {
        long k = n - done < BATCH ? n - done : BATCH;
        for (long i = 0; i < k; i++) {
            p[i] = malloc(64);
            CHECK(p[i], "malloc");
            bench_keep(p[i]);
        }
        for (long i = 0; i < k; i++) free(p[i]);
    }
    *secs = bench_now() - t0;
    return 0;
}

static const bench_row rows[] = {
    {"lock.uncontended", lock_uncontended, BENCH_NS, 0},
    {"counter.locked.2proc", counter_normal, BENCH_PER_S, 0},
    {"counter.locked.2proc.rlock", counter_recursive, BENCH_PER_S, 0},
    {"wake.pingpong", futex_pingpong, BENCH_US, 0},
    {"wake.pingpong.event", futex_pingpong, BENCH_US, 0},
    {"arena.alloc_free.64B", malloc_free, BENCH_NS, 0},
    {"arena.alloc_free.64B.batch", malloc_free_batch, BENCH_NS, 0},
};

const bench_table bench_floor_sync = BENCH_TABLE(rows);
