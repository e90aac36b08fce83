/* Helpers shared by the queue test programs (tests/queue/test_queue_*.c):
 * self-checking messages and patterns, starting, joining and killing
 * children, waiting for a flag in shared memory, the arena's allocated
 * bytes, waiter states and the children that block in put or get, and
 * q_tcase (a tu_tcase that times each test under TU_VERBOSE=1). */
#ifndef MPROC_TESTS_QUEUE_UTIL_H
#define MPROC_TESTS_QUEUE_UTIL_H

#include "mproc/queue.h"
#include "mix64.h"
#include "testutil.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>

/* Sanitized builds run slower: longer tcase timeouts, never looser checks. */
#define TSCALE (TU_ASAN ? 2 : 1)

/* A pattern that depends on the key and the position: a torn copy, a zero
 * page, a shifted or a foreign block all fail the check. */
static inline void pat_fill(unsigned char *p, size_t n, uint64_t key)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = key ^ ((i + 1) * 0x9E3779B97F4A7C15ULL);
        memcpy(p + i, &w, 8);
    }
    for (; i < n; i++) p[i] = (unsigned char)((key >> ((i & 7) * 8)) ^ (i * 131) ^ 0x5a);
}

static inline bool pat_check(const unsigned char *p, size_t n, uint64_t key)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = key ^ ((i + 1) * 0x9E3779B97F4A7C15ULL), g;
        memcpy(&g, p + i, 8);
        if (g != w) return false;
    }
    for (; i < n; i++)
        if (p[i] != (unsigned char)((key >> ((i & 7) * 8)) ^ (i * 131) ^ 0x5a)) return false;
    return true;
}

/* Self-checking messages: a header naming the producer, its sequence
 * number and the length, then a pattern keyed by (producer, seq). */
typedef struct {
    uint32_t magic;
    uint32_t pid;
    uint32_t seq;
    uint32_t len;
} msg_hdr;
#define MSG_MAGIC  0x51554555u
#define MSG_MIN    ((size_t)sizeof(msg_hdr))
#define MARKER_PID 0xffffffffu /* a marker message, not data */

static inline uint64_t msg_key(uint32_t pid, uint32_t seq)
{
    return tu_mix64(((uint64_t)pid << 32) | seq) | 1;
}

static inline void msg_fill(unsigned char *p, size_t len, uint32_t pid, uint32_t seq)
{
    msg_hdr h = {MSG_MAGIC, pid, seq, (uint32_t)len};
    memcpy(p, &h, sizeof h);
    pat_fill(p + sizeof h, len - sizeof h, msg_key(pid, seq));
}

/* True if p[0..len) is a whole, intact message; gives its producer and seq. */
static inline bool msg_check(const void *buf, size_t len, uint32_t *pid, uint32_t *seq)
{
    msg_hdr h;
    if (!buf || len < sizeof h) return false;
    memcpy(&h, buf, sizeof h);
    if (h.magic != MSG_MAGIC || h.len != len) return false;
    if (!pat_check((const unsigned char *)buf + sizeof h, len - sizeof h, msg_key(h.pid, h.seq)))
        return false;
    *pid = h.pid;
    *seq = h.seq;
    return true;
}

/* Sizes of a mixed stream: mostly small, some medium, some up to 1 MiB. */
static inline size_t mixed_size(uint32_t pid, uint32_t seq)
{
    uint64_t r = tu_mix64(((uint64_t)pid << 32) ^ seq ^ 0xabcdef12345ULL);
    unsigned k = (unsigned)(r % 100);
    r >>= 8;
    if (k < 70) return MSG_MIN + r % 240;
    if (k < 92) return 256 + r % 16128;
    return 16384 + r % ((1 << 20) - 16384 + 1);
}

static inline mproc_process *start_child(mproc_target_fn fn, const void *arg, size_t len,
                                         int method)
{
    mproc_process *p;
    TU_OK(mproc_process_new(&p, fn, arg, len,
                            &(mproc_process_opts){.start_method = (mproc_start_method)method}));
    TU_OK(mproc_process_start(p));
    return p;
}

/* Joins (killing it after timeout_ms), frees, and returns the exit code;
 * -1000 if it had to be killed. */
static inline int finish_child(mproc_process *p, int timeout_ms)
{
    int code = -1000;
    if (mproc_process_join(p, timeout_ms) == MPROC_ETIMEDOUT) {
        TU_OK(mproc_process_kill(p));
        TU_OK(mproc_process_join(p, 10000));
    } else {
        TU_OK(mproc_process_exitcode(p, &code));
    }
    TU_OK(mproc_process_free(p));
    return code;
}

static inline void kill_child(mproc_process *p)
{
    TU_OK(mproc_process_kill(p));
    TU_OK(mproc_process_join(p, 10000));
    int code;
    TU_OK(mproc_process_exitcode(p, &code));
    ck_assert_msg(code == -SIGKILL, "the killed child ended with %d", code);
    TU_OK(mproc_process_free(p));
}

static inline void wait_flag(volatile int *flag, int want, int timeout_ms)
{
    long long t0 = mproc_now_ns();
    while (__atomic_load_n(flag, __ATOMIC_ACQUIRE) != want) {
        ck_assert_msg(tu_ms_since(t0) < timeout_ms, "flag never reached %d", want);
        tu_sleep_ms(1);
    }
}

static inline void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Gets one message and checks it is exactly want[0..n). */
static inline void expect_msg(mproc_queue *q, const void *want, size_t n, int timeout_ms)
{
    void *buf = NULL;
    size_t len = 12345;
    TU_OK(mproc_queue_get(q, &buf, &len, timeout_ms));
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(len, n);
    ck_assert(n == 0 || memcmp(buf, want, n) == 0);
    free(buf);
}

static inline unsigned char *patterned(size_t n, unsigned seed)
{
    unsigned char *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    pat_fill(p, n, tu_mix64(seed + 1) | 1);
    return p;
}

static inline void expect_patterned(mproc_queue *q, size_t n, unsigned seed, bool into)
{
    void *buf = NULL;
    size_t len = 12345;
    if (into) {
        buf = malloc(n ? n : 1);
        TU_OK(mproc_queue_get_into(q, buf, n, &len, 10000));
    } else {
        TU_OK(mproc_queue_get(q, &buf, &len, 10000));
        ck_assert_ptr_nonnull(buf);
    }
    ck_assert_uint_eq(len, n);
    ck_assert_msg(pat_check(buf, n, tu_mix64(seed + 1) | 1), "message of %zu bytes corrupt", n);
    free(buf);
}

/* A child's argument: a queue, and how long to wait before acting on it. */
typedef struct {
    mproc_queue *q;
    int delay_ms;
} delayed;

/* A child blocked in put or get, as its parent sees it (the state lives in
 * the arena; the child gets its address): started before the call, done
 * after it, and the call's code. */
typedef struct {
    mproc_queue *q;
    volatile int started, done;
    int rc;
    size_t len; /* what get_any got */
} waiter_state;

/* Child: puts "d" with no timeout (on a full bounded queue, it waits). */
static inline int put_d_forever(void *arg)
{
    waiter_state *w = *(waiter_state **)arg;
    __atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
    w->rc = mproc_queue_put(w->q, "d", 1, MPROC_FOREVER);
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    return w->rc ? 1 : 0;
}

/* Child: gets any message within 10 s and records its length. */
static inline int get_any(void *arg)
{
    waiter_state *w = *(waiter_state **)arg;
    void *buf;
    size_t len;
    __atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
    w->rc = mproc_queue_get(w->q, &buf, &len, 10000);
    if (w->rc == 0) {
        w->len = len;
        free(buf);
    }
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    return w->rc ? 1 : 0;
}

/* TU_VERBOSE=1: how long each test took (on success). */
static long long test_t0;
static inline void time_setup(void)
{
    test_t0 = mproc_now_ns();
}
static inline void time_teardown(void)
{
    if (getenv("TU_VERBOSE")) fprintf(stderr, "  test took %lld ms\n", tu_ms_since(test_t0));
}

static inline TCase *q_tcase(Suite *s, const char *name, double timeout)
{
    TCase *tc = tu_tcase(s, name, timeout);
    tcase_add_checked_fixture(tc, time_setup, time_teardown);
    return tc;
}

#endif
