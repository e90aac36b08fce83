/* bench_floor rows under the queue and value layer: a bare busy-polling
 * ring in shared memory, memcpy of cold memory, and the futex ping-pong. */
#include "bench_floor.h"

#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() __asm__ volatile("" ::: "memory")
#endif

/* ---- queue.spsc.8B: a single-producer single-consumer ring ------------- */

/* Fixed 8-byte slots; head (next slot to fill) is written only by the
 * producer, tail (next slot to empty) only by the consumer, each on a cache
 * line of its own, published with release stores and read with acquire
 * loads. Each side keeps a private copy of the other's index and reloads it
 * only when the ring looks full (or empty), so that the shared lines move
 * between the CPUs as rarely as possible. */
#define RING_SLOTS 4096 /* a power of two */

typedef struct ring {
    _Alignas(64) atomic_ulong head;
    _Alignas(64) atomic_ulong tail;
    _Alignas(64) uint64_t slot[RING_SLOTS];
} ring;

/* Busy-polling: pause a while, then yield the CPU, which matters only when
 * both sides share one CPU (BENCH_CPUS=0). */
static void spin(unsigned *k)
{
    if (++*k < 1024)
        cpu_relax();
    else
        sched_yield();
}

/* The producer puts 0, 1, ..., n; the consumer checks every number. The
 * clock starts when the consumer has 0 (the producer is running). The two
 * run on different CPUs unless only one is allowed. */
static int ring_spsc(long n, double *secs)
{
    ring *r = shared_map(sizeof *r);
    CHECK(r, "mmap");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        bench_pin_apart(1);
        unsigned long head = 0, tail = 0;
        for (uint64_t i = 0; i <= (uint64_t)n; i++) {
            for (unsigned k = 0; head - tail == RING_SLOTS; spin(&k))
                tail = atomic_load_explicit(&r->tail, memory_order_acquire);
            r->slot[head % RING_SLOTS] = i;
            atomic_store_explicit(&r->head, ++head, memory_order_release);
        }
        _exit(0);
    }
    bench_pin_apart(0);
    unsigned long head = 0, tail = 0;
    double t0 = 0;
    int bad = 0;
    for (uint64_t i = 0; i <= (uint64_t)n && !bad; i++) {
        for (unsigned k = 0; head == tail; spin(&k))
            head = atomic_load_explicit(&r->head, memory_order_acquire);
        bad = r->slot[tail % RING_SLOTS] != i;
        atomic_store_explicit(&r->tail, ++tail, memory_order_release);
        if (i == 0) t0 = bench_now();
    }
    *secs = bench_now() - t0;
    if (bad) {
        fprintf(stderr, "ring: message %lu out of order\n", tail - 1);
        kill(pid, SIGKILL);
    }
    bad |= reap(pid) != 0;
    munmap(r, sizeof *r);
    return bad ? -1 : 0;
}

/* ---- queue.spsc.1MiB: memcpy of a cold 1 MiB buffer -------------------- */

#define MIB ((size_t)1 << 20)

#if defined(__x86_64__) || defined(__i386__)
/* The source is flushed from every cache level before each (timed) copy:
 * "cold" whatever the size of the caches (some machines have L3 caches of
 * hundreds of MiB, which a buffer cycled through would fit in). */
static int cold_memcpy(long n, double *secs)
{
    char *src = malloc(MIB), *dst = malloc(MIB);
    CHECK(src && dst, "malloc");
    memset(src, 'x', MIB);
    memset(dst, 'y', MIB);
    double t = 0;
    for (long i = 0; i < n; i++) {
        for (size_t off = 0; off < MIB; off += 64) _mm_clflush(src + off);
        _mm_mfence();
        double t0 = bench_now();
        memcpy(dst, src, MIB);
        bench_keep(dst);
        t += bench_now() - t0;
    }
    *secs = t;
    int bad = dst[0] != 'x' || dst[MIB - 1] != 'x';
    free(src);
    free(dst);
    if (bad) fprintf(stderr, "cold_memcpy: copy lost\n");
    return bad ? -1 : 0;
}
#else
/* The source cycles through a buffer of 4 × the last-level cache (at least
 * 64 MiB), made once per process. */
static int cold_memcpy(long n, double *secs)
{
    static char *src;
    static size_t size;
    char *dst = malloc(MIB);
    CHECK(dst, "malloc");
    if (!src) {
        long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
        size = l3 > 0 && (size_t)l3 * 4 > 64 * MIB ? (size_t)l3 * 4 : 64 * MIB;
        size -= size % MIB;
        src = malloc(size);
        CHECK(src, "malloc");
        memset(src, 'x', size);
    }
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        memcpy(dst, src + (size_t)i * MIB % size, MIB);
        bench_keep(dst);
    }
    *secs = bench_now() - t0;
    free(dst);
    return 0;
}
#endif

static const bench_row rows[] = {
    {"value.codec.seed_dict", NULL, BENCH_PER_S, 0}, /* no raw mechanism under a codec */
    {"queue.spsc.8B", ring_spsc, BENCH_PER_S, 8},
    {"queue.mpmc.2x2.8B", NULL, BENCH_PER_S, 8},
    {"queue.spsc.1MiB", cold_memcpy, BENCH_MB_PER_S, MIB},
    {"queue.pingpong.8B", futex_pingpong, BENCH_US, 8},
};

const bench_table bench_floor_queue = BENCH_TABLE(rows);
