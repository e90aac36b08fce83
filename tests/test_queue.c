/* Queues: messages of every size, get_into and values, timeouts, bounds,
 * close, SimpleQueue and JoinableQueue, many producers and consumers
 * (processes and threads), and the death of a producer or consumer at the
 * worst moment (SIGKILL mid-put, mid-get, while waiting). */
#include "mproc/queue.h"
#include "testutil.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>

/* Sanitized builds run slower: longer tcase timeouts, never looser checks. */
#define TSCALE (TU_ASAN ? 2 : 1)

/* ---- helpers ------------------------------------------------------------ */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* A pattern that depends on the key and the position: a torn copy, a zero
 * page, a shifted or a foreign block all fail the check. */
static void pat_fill(unsigned char *p, size_t n, uint64_t key)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = key ^ ((i + 1) * 0x9E3779B97F4A7C15ULL);
        memcpy(p + i, &w, 8);
    }
    for (; i < n; i++) p[i] = (unsigned char)((key >> ((i & 7) * 8)) ^ (i * 131) ^ 0x5a);
}

static bool pat_check(const unsigned char *p, size_t n, uint64_t key)
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

static uint64_t msg_key(uint32_t pid, uint32_t seq)
{
    return mix64(((uint64_t)pid << 32) | seq) | 1;
}

static void msg_fill(unsigned char *p, size_t len, uint32_t pid, uint32_t seq)
{
    msg_hdr h = {MSG_MAGIC, pid, seq, (uint32_t)len};
    memcpy(p, &h, sizeof h);
    pat_fill(p + sizeof h, len - sizeof h, msg_key(pid, seq));
}

/* True if p[0..len) is a whole, intact message; gives its producer and seq. */
static bool msg_check(const void *buf, size_t len, uint32_t *pid, uint32_t *seq)
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
static size_t mixed_size(uint32_t pid, uint32_t seq)
{
    uint64_t r = mix64(((uint64_t)pid << 32) ^ seq ^ 0xabcdef12345ULL);
    unsigned k = (unsigned)(r % 100);
    r >>= 8;
    if (k < 70) return MSG_MIN + r % 240;
    if (k < 92) return 256 + r % 16128;
    return 16384 + r % ((1 << 20) - 16384 + 1);
}

static long long ms_since(long long t0)
{
    return (mproc_now_ns() - t0) / 1000000;
}

static mproc_process *start_child(mproc_target_fn fn, const void *arg, size_t len, int method)
{
    mproc_process *p;
    TU_OK(mproc_process_new(&p, fn, arg, len,
                            &(mproc_process_opts){.start_method = (mproc_start_method)method}));
    TU_OK(mproc_process_start(p));
    return p;
}

/* Joins (killing it after timeout_ms), frees, and returns the exit code;
 * -1000 if it had to be killed. */
static int finish_child(mproc_process *p, int timeout_ms)
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

static void kill_child(mproc_process *p)
{
    TU_OK(mproc_process_kill(p));
    TU_OK(mproc_process_join(p, 10000));
    int code;
    TU_OK(mproc_process_exitcode(p, &code));
    ck_assert_msg(code == -SIGKILL, "the killed child ended with %d", code);
    TU_OK(mproc_process_free(p));
}

static void wait_flag(volatile int *flag, int want, int timeout_ms)
{
    long long t0 = mproc_now_ns();
    while (__atomic_load_n(flag, __ATOMIC_ACQUIRE) != want) {
        ck_assert_msg(ms_since(t0) < timeout_ms, "flag never reached %d", want);
        tu_sleep_ms(1);
    }
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Gets one message and checks it is exactly want[0..n). */
static void expect_msg(mproc_queue *q, const void *want, size_t n, int timeout_ms)
{
    void *buf = NULL;
    size_t len = 12345;
    TU_OK(mproc_queue_get(q, &buf, &len, timeout_ms));
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(len, n);
    ck_assert(n == 0 || memcmp(buf, want, n) == 0);
    free(buf);
}

static size_t arena_allocated(void)
{
    mproc_arena_info info;
    TU_OK(mproc_arena_info_get(&info));
    return info.allocated;
}

/* ---- sizes, get_into, values -------------------------------------------- */

static const size_t sizes[] = {0,
                               1,
                               7,
                               8,
                               9,
                               15,
                               16,
                               17,
                               4095,
                               4096,
                               4097,
                               32767,
                               32768,
                               32769,
                               (1 << 20) - 1,
                               1 << 20,
                               (1 << 20) + 1,
                               (16 << 20) - 1,
                               16 << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static unsigned char *patterned(size_t n, unsigned seed)
{
    unsigned char *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    pat_fill(p, n, mix64(seed + 1) | 1);
    return p;
}

static void expect_patterned(mproc_queue *q, size_t n, unsigned seed, bool into)
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
    ck_assert_msg(pat_check(buf, n, mix64(seed + 1) | 1), "message of %zu bytes corrupt", n);
    free(buf);
}

START_TEST(every_size_roundtrips)
{
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    /* One at a time. */
    for (unsigned i = 0; i < NSIZES; i++) {
        unsigned char *m = patterned(sizes[i], i);
        TU_OK(mproc_queue_put(q, m, sizes[i], 0));
        ck_assert_uint_eq(mproc_queue_qsize(q), 1);
        free(m);
        expect_patterned(q, sizes[i], i, i % 2);
        ck_assert(mproc_queue_empty(q));
    }
    /* All at once, in order. */
    for (unsigned i = 0; i < NSIZES; i++) {
        unsigned char *m = patterned(sizes[i], 100 + i);
        TU_OK(mproc_queue_put(q, m, sizes[i], 0));
        free(m);
    }
    ck_assert_uint_eq(mproc_queue_qsize(q), NSIZES);
    ck_assert(!mproc_queue_empty(q));
    ck_assert(!mproc_queue_full(q)); /* unbounded: never full */
    for (unsigned i = 0; i < NSIZES; i++) expect_patterned(q, sizes[i], 100 + i, i % 3 == 0);
    ck_assert(mproc_queue_empty(q));
    ck_assert_uint_eq(mproc_queue_qsize(q), 0);
    mproc_queue_free(q);
}
END_TEST

typedef struct {
    mproc_queue *q;
    unsigned seed;
} q_seed;

static int put_every_size(void *arg)
{
    q_seed *a = arg;
    for (unsigned i = 0; i < NSIZES; i++) {
        unsigned char *m = malloc(sizes[i] ? sizes[i] : 1);
        if (!m) return 1;
        pat_fill(m, sizes[i], mix64(a->seed + i + 1) | 1);
        if (mproc_queue_put(a->q, m, sizes[i], MPROC_FOREVER)) return 2;
        free(m);
    }
    return 0;
}

static int get_every_size(void *arg)
{
    q_seed *a = arg;
    for (unsigned i = 0; i < NSIZES; i++) {
        void *buf;
        size_t len;
        if (mproc_queue_get(a->q, &buf, &len, 10000)) return 1;
        if (len != sizes[i]) return 2;
        if (!pat_check(buf, len, mix64(a->seed + i + 1) | 1)) return 3;
        free(buf);
    }
    return 0;
}

START_TEST(every_size_between_processes)
{
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    q_seed a = {q, 500};
    mproc_process *p = start_child(put_every_size, &a, sizeof a, tu_methods[_i]);
    for (unsigned i = 0; i < NSIZES; i++) expect_patterned(q, sizes[i], 500 + i, false);
    ck_assert_int_eq(finish_child(p, 20000), 0);
    /* And the other way. */
    a.seed = 900;
    p = start_child(get_every_size, &a, sizeof a, tu_methods[_i]);
    for (unsigned i = 0; i < NSIZES; i++) {
        unsigned char *m = patterned(sizes[i], 900 + i);
        TU_OK(mproc_queue_put(q, m, sizes[i], 0));
        free(m);
    }
    ck_assert_int_eq(finish_child(p, 20000), 0);
    ck_assert(mproc_queue_empty(q));
    mproc_queue_free(q);
}
END_TEST

START_TEST(get_into_too_small_keeps_the_message)
{
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    unsigned char *big = patterned(100000, 1);
    TU_OK(mproc_queue_put(q, big, 100000, 0));
    TU_OK(mproc_queue_put(q, "tail", 4, 0));
    char small[10];
    size_t len = 0;
    TU_RC(mproc_queue_get_into(q, small, sizeof small, &len, 0), MPROC_ETOOSMALL);
    ck_assert_uint_eq(len, 100000);
    ck_assert_uint_eq(mproc_queue_qsize(q), 2);
    len = 0;
    TU_RC(mproc_queue_get_into(q, big, 99999, &len, 1000), MPROC_ETOOSMALL);
    ck_assert_uint_eq(len, 100000);
    ck_assert_uint_eq(mproc_queue_qsize(q), 2);
    /* The kept message is still the first one, intact; a plain get works. */
    expect_patterned(q, 100000, 1, false);
    len = 0;
    TU_OK(mproc_queue_get_into(q, small, sizeof small, &len, 0));
    ck_assert_uint_eq(len, 4);
    ck_assert(memcmp(small, "tail", 4) == 0);
    /* Exact fit, and a zero-length message into a zero-capacity buffer. */
    TU_OK(mproc_queue_put(q, "0123456789", 10, 0));
    TU_OK(mproc_queue_put(q, "", 0, 0));
    TU_RC(mproc_queue_get_into(q, small, 9, &len, 0), MPROC_ETOOSMALL);
    ck_assert_uint_eq(len, 10);
    TU_OK(mproc_queue_get_into(q, small, 10, &len, 0));
    ck_assert_uint_eq(len, 10);
    ck_assert(memcmp(small, "0123456789", 10) == 0);
    len = 99;
    TU_OK(mproc_queue_get_into(q, small, 0, &len, 0));
    ck_assert_uint_eq(len, 0);
    TU_RC(mproc_queue_get_into(q, small, sizeof small, &len, 0), MPROC_ETIMEDOUT);
    free(big);
    mproc_queue_free(q);
}
END_TEST

/* Also built in children: no Check asserts here. */
static mproc_value *nested_value(void)
{
    mproc_value *m = mproc_value_map();
    mproc_value_map_set_str(m, "id", mproc_value_int(42));
    mproc_value *l = mproc_value_list();
    mproc_value_list_append(l, mproc_value_int(-7));
    mproc_value_list_append(l, mproc_value_uint(UINT64_MAX));
    mproc_value_list_append(l, mproc_value_float(2.5));
    mproc_value_list_append(l, mproc_value_str("h\xc3\xa9llo"));
    mproc_value_list_append(l, mproc_value_bytes("\0\1\2", 3));
    mproc_value_list_append(l, mproc_value_nil());
    mproc_value_list_append(l, mproc_value_bool(true));
    mproc_value_list_append(l, mproc_value_handle(3, 99));
    mproc_value *inner = mproc_value_map();
    mproc_value *deep = mproc_value_list();
    mproc_value_list_append(deep, mproc_value_list());
    mproc_value_map_set_str(inner, "deep", deep);
    mproc_value_list_append(l, inner);
    mproc_value_map_set_str(m, "items", l);
    unsigned char *blob = malloc(100000);
    if (blob) pat_fill(blob, 100000, 77);
    mproc_value_map_set(m, mproc_value_int(1), mproc_value_bytes(blob, blob ? 100000 : 0));
    free(blob);
    return m;
}

static int put_nested_value(void *arg)
{
    mproc_queue *q = *(mproc_queue **)arg;
    mproc_value *v = nested_value();
    int rc = mproc_queue_put_value(q, v, MPROC_FOREVER);
    mproc_value_free(v);
    return rc ? 1 : 0;
}

START_TEST(values_roundtrip)
{
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    mproc_value *v = nested_value(), *got = NULL;
    ck_assert_uint_eq(mproc_value_len(v), 3);
    ck_assert_uint_eq(mproc_value_len(mproc_value_map_get_str(v, "items")), 9);
    TU_OK(mproc_queue_put_value(q, v, 0));
    ck_assert_uint_eq(mproc_queue_qsize(q), 1);
    TU_OK(mproc_queue_get_value(q, &got, 0));
    ck_assert(mproc_value_equal(v, got));
    mproc_value_free(got);
    /* From another process. */
    ck_assert_int_eq(tu_run_child(put_nested_value, &q, sizeof q, tu_methods[_i]), 0);
    got = NULL;
    TU_OK(mproc_queue_get_value(q, &got, 1000));
    ck_assert(mproc_value_equal(v, got));
    mproc_value_free(got);
    /* A scalar, and a value read as raw bytes is its CBOR encoding. */
    mproc_value *s = mproc_value_str("x");
    TU_OK(mproc_queue_put_value(q, s, 0));
    expect_msg(q, "\x61x", 2, 0);
    mproc_value_free(s);
    TU_RC(mproc_queue_get_value(q, &got, 0), MPROC_ETIMEDOUT);
    mproc_value_free(v);
    mproc_queue_free(q);
}
END_TEST

START_TEST(a_non_value_message_is_eproto_and_consumed)
{
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    TU_OK(mproc_queue_put(q, "\xff", 1, 0));     /* a lone "break" */
    TU_OK(mproc_queue_put(q, "", 0, 0));         /* nothing at all */
    TU_OK(mproc_queue_put(q, "\x82\x01", 2, 0)); /* a list of 2 with 1 item */
    TU_OK(mproc_queue_put(q, "\x01\x02", 2, 0)); /* trailing bytes */
    mproc_value *v = mproc_value_int(5), *got;
    TU_OK(mproc_queue_put_value(q, v, 0));
    for (size_t left = 5; left > 1; left--) {
        ck_assert_uint_eq(mproc_queue_qsize(q), left);
        got = NULL;
        TU_RC(mproc_queue_get_value(q, &got, 0), MPROC_EPROTO);
    }
    ck_assert_uint_eq(mproc_queue_qsize(q), 1);
    got = NULL;
    TU_OK(mproc_queue_get_value(q, &got, 0));
    ck_assert(mproc_value_equal(v, got));
    mproc_value_free(got);
    mproc_value_free(v);
    ck_assert(mproc_queue_empty(q));
    mproc_queue_free(q);
}
END_TEST

/* ---- argument checks ------------------------------------------------------ */

START_TEST(invalid_arguments)
{
    mproc_queue *q, *jq;
    TU_RC(mproc_queue_new(NULL, NULL), MPROC_EINVAL);
    TU_RC(mproc_simple_queue_new(NULL), MPROC_EINVAL);
    TU_RC(mproc_joinable_queue_new(NULL, 0), MPROC_EINVAL);
    TU_OK(mproc_queue_new(&q, NULL));
    TU_OK(mproc_joinable_queue_new(&jq, 0));
    TU_OK(mproc_queue_put(q, "keep", 4, 0));

    void *buf = NULL;
    size_t len = 0;
    char small[16];
    mproc_value *v = mproc_value_int(1), *out = NULL;
    TU_RC(mproc_queue_put(NULL, "x", 1, 0), MPROC_EINVAL);
    TU_RC(mproc_queue_put(q, NULL, 5, 0), MPROC_EINVAL);
    TU_RC(mproc_queue_get(NULL, &buf, &len, 0), MPROC_EINVAL);
    TU_RC(mproc_queue_get(q, NULL, &len, 0), MPROC_EINVAL);
    TU_RC(mproc_queue_get(q, &buf, NULL, 0), MPROC_EINVAL);
    TU_RC(mproc_queue_get_into(NULL, small, sizeof small, &len, 0), MPROC_EINVAL);
    TU_RC(mproc_queue_get_into(q, NULL, sizeof small, &len, 0), MPROC_EINVAL);
    TU_RC(mproc_queue_get_into(q, small, sizeof small, NULL, 0), MPROC_EINVAL);
    TU_RC(mproc_queue_put_value(NULL, v, 0), MPROC_EINVAL);
    TU_RC(mproc_queue_put_value(q, NULL, 0), MPROC_EINVAL);
    TU_RC(mproc_queue_get_value(NULL, &out, 0), MPROC_EINVAL);
    TU_RC(mproc_queue_get_value(q, NULL, 0), MPROC_EINVAL);
    TU_RC(mproc_queue_task_done(NULL), MPROC_EINVAL);
    TU_RC(mproc_queue_join(NULL, 0), MPROC_EINVAL);

    /* Bad timeouts, even when the call could succeed at once. */
    static const int bad[] = {-2, -1000, INT_MIN};
    for (int i = 0; i < 3; i++) {
        TU_RC(mproc_queue_put(q, "x", 1, bad[i]), MPROC_EINVAL);
        TU_RC(mproc_queue_get(q, &buf, &len, bad[i]), MPROC_EINVAL);
        TU_RC(mproc_queue_get_into(q, small, sizeof small, &len, bad[i]), MPROC_EINVAL);
        TU_RC(mproc_queue_put_value(q, v, bad[i]), MPROC_EINVAL);
        TU_RC(mproc_queue_get_value(q, &out, bad[i]), MPROC_EINVAL);
        TU_RC(mproc_queue_join(jq, bad[i]), MPROC_EINVAL);
    }
    /* Nothing was taken or added by the failed calls. */
    ck_assert_uint_eq(mproc_queue_qsize(q), 1);
    expect_msg(q, "keep", 4, 0);
    ck_assert(mproc_queue_empty(q));
    mproc_value_free(v);
    mproc_queue_free(NULL);
    mproc_queue_free(q);
    mproc_queue_free(jq);
}
END_TEST

/* The header: put fails with MPROC_EMSGSIZE when len > MPROC_QUEUE_MAX_MESSAGE.
 * The source buffer is a read-only mapping of the zero page, so the test
 * itself commits no memory even if the queue read it. */
START_TEST(oversized_messages_are_emsgsize)
{
    size_t n = MPROC_QUEUE_MAX_MESSAGE + 4096;
    void *zeros = mmap(NULL, n, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ck_assert(zeros != MAP_FAILED);
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    size_t before = arena_allocated();
    TU_RC(mproc_queue_put(q, zeros, MPROC_QUEUE_MAX_MESSAGE + 1, 0), MPROC_EMSGSIZE);
    TU_RC(mproc_queue_put(q, zeros, MPROC_QUEUE_MAX_MESSAGE + 1, MPROC_FOREVER), MPROC_EMSGSIZE);
    TU_RC(mproc_queue_put(q, zeros, SIZE_MAX, 0), MPROC_EMSGSIZE);
    TU_RC(mproc_queue_put(q, zeros, SIZE_MAX - 15, 0), MPROC_EMSGSIZE);
    ck_assert_uint_eq(arena_allocated(), before);
    ck_assert(mproc_queue_empty(q));
    munmap(zeros, n);
    mproc_queue_free(q);
}
END_TEST

/* ---- timeouts, blocking, snapshots -------------------------------------- */

START_TEST(get_on_empty_times_out)
{
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    void *buf;
    size_t len;
    char small[8];
    mproc_value *v;
    long long t0 = mproc_now_ns();
    TU_RC(mproc_queue_get(q, &buf, &len, 0), MPROC_ETIMEDOUT);
    TU_RC(mproc_queue_get_into(q, small, sizeof small, &len, 0), MPROC_ETIMEDOUT);
    TU_RC(mproc_queue_get_value(q, &v, 0), MPROC_ETIMEDOUT);
    ck_assert_int_lt(ms_since(t0), 20 * TSCALE); /* at once */
    t0 = mproc_now_ns();
    TU_RC(mproc_queue_get(q, &buf, &len, 50), MPROC_ETIMEDOUT);
    long long el = ms_since(t0);
    ck_assert_int_ge(el, 50);
    ck_assert_int_lt(el, 1000);
    t0 = mproc_now_ns();
    TU_RC(mproc_queue_get_into(q, small, sizeof small, &len, 50), MPROC_ETIMEDOUT);
    ck_assert_int_ge(ms_since(t0), 50);
    t0 = mproc_now_ns();
    TU_RC(mproc_queue_get_value(q, &v, 50), MPROC_ETIMEDOUT);
    ck_assert_int_ge(ms_since(t0), 50);
    mproc_queue_free(q);
}
END_TEST

typedef struct {
    mproc_queue *q;
    int delay_ms;
} delayed;

static int put_later(void *arg)
{
    delayed *d = arg;
    tu_sleep_ms(d->delay_ms);
    return mproc_queue_put(d->q, "hello", 5, 0) ? 1 : 0;
}

START_TEST(get_blocks_until_another_process_puts)
{
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    delayed d = {q, 150};
    mproc_process *p = start_child(put_later, &d, sizeof d, tu_methods[_i]);
    long long t0 = mproc_now_ns();
    expect_msg(q, "hello", 5, 10000);
    ck_assert_int_ge(ms_since(t0), 100);
    ck_assert_int_eq(finish_child(p, 5000), 0);
    /* The same with no timeout at all. */
    d.delay_ms = 100;
    p = start_child(put_later, &d, sizeof d, tu_methods[_i]);
    expect_msg(q, "hello", 5, MPROC_FOREVER);
    ck_assert_int_eq(finish_child(p, 5000), 0);
    mproc_queue_free(q);
}
END_TEST

typedef struct {
    mproc_queue *q;
    volatile int started, done;
    int rc;
    size_t len; /* what get_any got */
} waiter_state;

static int put_d_forever(void *arg)
{
    waiter_state *w = *(waiter_state **)arg;
    __atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
    w->rc = mproc_queue_put(w->q, "d", 1, MPROC_FOREVER);
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    return w->rc ? 1 : 0;
}

START_TEST(bounded_queue_blocks_and_a_get_unblocks_a_put)
{
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, &(mproc_queue_opts){.maxsize = 3}));
    ck_assert(mproc_queue_empty(q));
    ck_assert(!mproc_queue_full(q));
    ck_assert_uint_eq(mproc_queue_qsize(q), 0);
    TU_OK(mproc_queue_put(q, "a", 1, 0));
    ck_assert(!mproc_queue_empty(q));
    ck_assert(!mproc_queue_full(q));
    TU_OK(mproc_queue_put(q, "b", 1, 0));
    TU_OK(mproc_queue_put(q, "c", 1, MPROC_FOREVER));
    ck_assert(mproc_queue_full(q));
    ck_assert_uint_eq(mproc_queue_qsize(q), 3);
    long long t0 = mproc_now_ns();
    TU_RC(mproc_queue_put(q, "x", 1, 0), MPROC_ETIMEDOUT);
    ck_assert_int_lt(ms_since(t0), 20 * TSCALE);
    t0 = mproc_now_ns();
    TU_RC(mproc_queue_put(q, "x", 1, 50), MPROC_ETIMEDOUT);
    ck_assert_int_ge(ms_since(t0), 50);
    ck_assert_uint_eq(mproc_queue_qsize(q), 3);

    waiter_state *w;
    TU_OK(mproc_shm_calloc((void **)&w, sizeof *w));
    w->q = q;
    mproc_process *p = start_child(put_d_forever, &w, sizeof w, tu_methods[_i]);
    wait_flag(&w->started, 1, 5000);
    tu_sleep_ms(150);
    ck_assert_int_eq(__atomic_load_n(&w->done, __ATOMIC_ACQUIRE), 0); /* still waiting */
    ck_assert_uint_eq(mproc_queue_qsize(q), 3);
    expect_msg(q, "a", 1, 0); /* makes room */
    ck_assert_int_eq(finish_child(p, 5000), 0);
    ck_assert_int_eq(w->done, 1);
    ck_assert(mproc_queue_full(q));
    expect_msg(q, "b", 1, 0);
    expect_msg(q, "c", 1, 0);
    expect_msg(q, "d", 1, 0);
    ck_assert(mproc_queue_empty(q));
    ck_assert(!mproc_queue_full(q));
    TU_OK(mproc_shm_free(w));
    mproc_queue_free(q);
}
END_TEST

static int put_500_forever(void *arg)
{
    waiter_state *w = *(waiter_state **)arg;
    unsigned char m[500];
    pat_fill(m, sizeof m, 500);
    __atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
    w->rc = mproc_queue_put(w->q, m, sizeof m, MPROC_FOREVER);
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    return w->rc ? 1 : 0;
}

START_TEST(max_bytes_bounds_the_queue)
{
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, &(mproc_queue_opts){.max_bytes = 1000}));
    unsigned char *m = patterned(5000, 3);
    TU_OK(mproc_queue_put(q, m, 600, 0));
    TU_RC(mproc_queue_put(q, m, 600, 0), MPROC_ETIMEDOUT); /* 1200 > 1000 */
    TU_RC(mproc_queue_put(q, m, 401, 0), MPROC_ETIMEDOUT);
    TU_OK(mproc_queue_put(q, m, 400, 0)); /* exactly 1000 */
    TU_RC(mproc_queue_put(q, m, 1, 0), MPROC_ETIMEDOUT);
    long long t0 = mproc_now_ns();
    TU_RC(mproc_queue_put(q, m, 1, 50), MPROC_ETIMEDOUT);
    ck_assert_int_ge(ms_since(t0), 50);
    ck_assert_uint_eq(mproc_queue_qsize(q), 2);
    expect_msg(q, m, 600, 0);
    expect_msg(q, m, 400, 0);
    ck_assert(mproc_queue_empty(q));
    /* A message larger than max_bytes goes in alone, and then fills it. */
    TU_OK(mproc_queue_put(q, m, 5000, 0));
    TU_RC(mproc_queue_put(q, m, 1, 0), MPROC_ETIMEDOUT);
    expect_msg(q, m, 5000, 0);
    /* A put waiting for bytes in another process is let in by a get. */
    TU_OK(mproc_queue_put(q, m, 900, 0));
    waiter_state *w;
    TU_OK(mproc_shm_calloc((void **)&w, sizeof *w));
    w->q = q;
    mproc_process *p = start_child(put_500_forever, &w, sizeof w, tu_methods[_i]);
    wait_flag(&w->started, 1, 5000);
    tu_sleep_ms(100);
    ck_assert_int_eq(__atomic_load_n(&w->done, __ATOMIC_ACQUIRE), 0);
    expect_msg(q, m, 900, 0);
    ck_assert_int_eq(finish_child(p, 5000), 0);
    unsigned char m500[500];
    pat_fill(m500, sizeof m500, 500);
    expect_msg(q, m500, 500, 0);
    TU_OK(mproc_shm_free(w));
    free(m);
    mproc_queue_free(q);
}
END_TEST

/* ---- close -------------------------------------------------------------- */

START_TEST(close_fails_puts_and_drains_gets)
{
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    ck_assert(!mproc_queue_closed(q));
    TU_OK(mproc_queue_put(q, "a", 1, 0));
    unsigned char *big = patterned(1 << 20, 9);
    TU_OK(mproc_queue_put(q, big, 1 << 20, 0));
    mproc_value *v = mproc_value_int(3), *got = NULL;
    TU_OK(mproc_queue_put_value(q, v, 0));
    mproc_queue_close(q);
    ck_assert(mproc_queue_closed(q));
    long long t0 = mproc_now_ns();
    TU_RC(mproc_queue_put(q, "x", 1, 0), MPROC_ECLOSED);
    TU_RC(mproc_queue_put(q, "x", 1, MPROC_FOREVER), MPROC_ECLOSED);
    TU_RC(mproc_queue_put_value(q, v, MPROC_FOREVER), MPROC_ECLOSED);
    ck_assert_uint_eq(mproc_queue_qsize(q), 3);
    expect_msg(q, "a", 1, MPROC_FOREVER);
    expect_patterned(q, 1 << 20, 9, true);
    TU_OK(mproc_queue_get_value(q, &got, 0));
    ck_assert(mproc_value_equal(v, got));
    mproc_value_free(got);
    void *buf;
    size_t len;
    char small[4];
    TU_RC(mproc_queue_get(q, &buf, &len, MPROC_FOREVER), MPROC_ECLOSED);
    TU_RC(mproc_queue_get(q, &buf, &len, 0), MPROC_ECLOSED);
    TU_RC(mproc_queue_get_into(q, small, sizeof small, &len, 1000), MPROC_ECLOSED);
    TU_RC(mproc_queue_get_value(q, &got, MPROC_FOREVER), MPROC_ECLOSED);
    ck_assert_int_lt(ms_since(t0), 500 * TSCALE); /* nothing waited */
    mproc_queue_close(q);                         /* harmless */
    ck_assert(mproc_queue_closed(q));
    TU_RC(mproc_queue_put(q, "x", 1, 0), MPROC_ECLOSED);
    ck_assert(mproc_queue_empty(q));

    /* A full bounded queue: a put after close fails at once, gets drain. */
    mproc_queue *b;
    TU_OK(mproc_queue_new(&b, &(mproc_queue_opts){.maxsize = 1}));
    TU_OK(mproc_queue_put(b, "z", 1, 0));
    mproc_queue_close(b);
    t0 = mproc_now_ns();
    TU_RC(mproc_queue_put(b, "x", 1, MPROC_FOREVER), MPROC_ECLOSED);
    ck_assert_int_lt(ms_since(t0), 500 * TSCALE);
    expect_msg(b, "z", 1, 0);
    TU_RC(mproc_queue_get(b, &buf, &len, MPROC_FOREVER), MPROC_ECLOSED);
    mproc_value_free(v);
    free(big);
    mproc_queue_free(b);
    mproc_queue_free(q);
}
END_TEST

static int get_expect_closed(void *arg)
{
    waiter_state *w = *(waiter_state **)arg;
    void *buf;
    size_t len;
    __atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
    w->rc = mproc_queue_get(w->q, &buf, &len, MPROC_FOREVER);
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    if (w->rc == 0) return 1;
    return w->rc == MPROC_ECLOSED ? 0 : 2;
}

static int put_expect_closed(void *arg)
{
    waiter_state *w = *(waiter_state **)arg;
    __atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
    w->rc = mproc_queue_put(w->q, "p", 1, MPROC_FOREVER);
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    if (w->rc == 0) return 1;
    return w->rc == MPROC_ECLOSED ? 0 : 2;
}

static void *thread_get_expect_closed(void *arg)
{
    return (void *)(intptr_t)get_expect_closed(&arg);
}

static int close_later(void *arg)
{
    delayed *d = arg;
    tu_sleep_ms(d->delay_ms);
    mproc_queue_close(d->q);
    return 0;
}

START_TEST(close_wakes_waiters_in_other_processes)
{
    mproc_queue *empty, *full, *tq;
    TU_OK(mproc_queue_new(&empty, NULL));
    TU_OK(mproc_queue_new(&full, &(mproc_queue_opts){.maxsize = 1}));
    TU_OK(mproc_queue_new(&tq, NULL));
    TU_OK(mproc_queue_put(full, "f", 1, 0));
    waiter_state *w;
    TU_OK(mproc_shm_calloc((void **)&w, 3 * sizeof *w));
    w[0].q = empty;
    w[1].q = full;
    w[2].q = tq;
    waiter_state *w0 = &w[0], *w1 = &w[1];
    mproc_process *g = start_child(get_expect_closed, &w0, sizeof w0, tu_methods[_i]);
    mproc_process *p = start_child(put_expect_closed, &w1, sizeof w1, tu_methods[_i]);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, thread_get_expect_closed, &w[2]), 0);
    for (int k = 0; k < 3; k++) wait_flag(&w[k].started, 1, 5000);
    tu_sleep_ms(150);
    for (int k = 0; k < 3; k++) ck_assert_int_eq(__atomic_load_n(&w[k].done, __ATOMIC_ACQUIRE), 0);
    mproc_queue_close(empty);
    mproc_queue_close(full);
    mproc_queue_close(tq);
    ck_assert_int_eq(finish_child(g, 5000), 0);
    ck_assert_int_eq(finish_child(p, 5000), 0);
    void *r;
    pthread_join(t, &r);
    ck_assert_int_eq((int)(intptr_t)r, 0);
    expect_msg(full, "f", 1, 0); /* the waiting put did not get in */

    /* The other way: this process waits, a child closes. */
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    delayed d = {q, 100};
    mproc_process *c = start_child(close_later, &d, sizeof d, tu_methods[_i]);
    void *buf;
    size_t len;
    long long t0 = mproc_now_ns();
    TU_RC(mproc_queue_get(q, &buf, &len, 10000), MPROC_ECLOSED);
    ck_assert_int_lt(ms_since(t0), 5000);
    ck_assert_int_eq(finish_child(c, 5000), 0);
    TU_OK(mproc_shm_free(w));
    mproc_queue_free(q);
    mproc_queue_free(empty);
    mproc_queue_free(full);
    mproc_queue_free(tq);
}
END_TEST

/* ---- a burst from a producer that exits --------------------------------- */

#define BURST_BIG   200 /* 1 MiB messages: 200 MiB */
#define BURST_SMALL 5   /* small ones after each big one */
#define BURST_N     (BURST_BIG * (1 + BURST_SMALL))

static size_t burst_size(uint32_t i)
{
    return i % (1 + BURST_SMALL) == 0 ? (size_t)1 << 20 : MSG_MIN + (i * 37) % 500;
}

static int put_burst_and_exit(void *arg)
{
    mproc_queue *q = *(mproc_queue **)arg;
    unsigned char *m = malloc((size_t)1 << 20);
    if (!m) return 1;
    for (uint32_t i = 0; i < BURST_N; i++) {
        size_t n = burst_size(i);
        msg_fill(m, n, 7, i);
        int rc = mproc_queue_put(q, m, n, 0); /* never waits */
        if (rc) return rc == MPROC_ETIMEDOUT ? 2 : 3;
    }
    free(m);
    return 0;
}

START_TEST(unbounded_burst_from_a_producer_that_exits)
{
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    size_t before = arena_allocated();
    /* Joined before anything is read: no feeder, no join deadlock. */
    ck_assert_int_eq(tu_run_child(put_burst_and_exit, &q, sizeof q, tu_methods[_i]), 0);
    ck_assert_uint_eq(mproc_queue_qsize(q), BURST_N);
    ck_assert_uint_ge(arena_allocated() - before, (size_t)BURST_BIG << 20);
    for (uint32_t i = 0; i < BURST_N; i++) {
        void *buf;
        size_t len;
        TU_OK(mproc_queue_get(q, &buf, &len, 0));
        uint32_t pid, seq;
        ck_assert_msg(msg_check(buf, len, &pid, &seq), "message %u corrupt", i);
        ck_assert_uint_eq(pid, 7);
        ck_assert_uint_eq(seq, i);
        ck_assert_uint_eq(len, burst_size(i));
        free(buf);
    }
    ck_assert(mproc_queue_empty(q));
    void *buf;
    size_t len;
    TU_RC(mproc_queue_get(q, &buf, &len, 0), MPROC_ETIMEDOUT);
    mproc_queue_free(q);
}
END_TEST

/* ---- SimpleQueue and JoinableQueue -------------------------------------- */

static int get_two_and_check(void *arg)
{
    mproc_queue *q = *(mproc_queue **)arg;
    char buf[8];
    size_t len;
    if (mproc_queue_get_into(q, buf, sizeof buf, &len, 5000) || len != 3 || memcmp(buf, "one", 3))
        return 1;
    if (mproc_queue_get_into(q, buf, sizeof buf, &len, 5000) || len != 3 || memcmp(buf, "two", 3))
        return 2;
    return 0;
}

START_TEST(simple_queue_basics)
{
    mproc_queue *q;
    TU_OK(mproc_simple_queue_new(&q));
    ck_assert(mproc_queue_empty(q));
    ck_assert(!mproc_queue_full(q));
    TU_OK(mproc_queue_put(q, "one", 3, 0));
    TU_OK(mproc_queue_put(q, "two", 3, MPROC_FOREVER));
    ck_assert_uint_eq(mproc_queue_qsize(q), 2);
    ck_assert(!mproc_queue_empty(q));
    ck_assert_int_eq(tu_run_child(get_two_and_check, &q, sizeof q, tu_methods[_i]), 0);
    ck_assert(mproc_queue_empty(q));
    TU_OK(mproc_queue_put(q, "three", 5, 0));
    expect_msg(q, "three", 5, 0);
    /* Not joinable. */
    TU_RC(mproc_queue_task_done(q), MPROC_EBADSTATE);
    TU_RC(mproc_queue_join(q, 0), MPROC_EBADSTATE);
    TU_RC(mproc_queue_join(q, MPROC_FOREVER), MPROC_EBADSTATE);
    mproc_queue_close(q);
    TU_RC(mproc_queue_put(q, "x", 1, 0), MPROC_ECLOSED);
    mproc_queue_free(q);
    /* Neither is a plain Queue. */
    TU_OK(mproc_queue_new(&q, NULL));
    TU_OK(mproc_queue_put(q, "x", 1, 0));
    TU_RC(mproc_queue_task_done(q), MPROC_EBADSTATE);
    TU_RC(mproc_queue_join(q, 0), MPROC_EBADSTATE);
    TU_RC(mproc_queue_join(q, 10), MPROC_EBADSTATE);
    mproc_queue_free(q);
}
END_TEST

static void joinable_counts(mproc_queue *q)
{
    TU_OK(mproc_queue_join(q, 0)); /* nothing put yet */
    TU_OK(mproc_queue_join(q, MPROC_FOREVER));
    TU_RC(mproc_queue_task_done(q), MPROC_EBADSTATE);
    for (int i = 0; i < 3; i++) TU_OK(mproc_queue_put(q, "t", 1, 0));
    TU_RC(mproc_queue_join(q, 0), MPROC_ETIMEDOUT);
    long long t0 = mproc_now_ns();
    TU_RC(mproc_queue_join(q, 50), MPROC_ETIMEDOUT);
    ck_assert_int_ge(ms_since(t0), 50);
    for (int i = 0; i < 3; i++) expect_msg(q, "t", 1, 0);
    TU_RC(mproc_queue_join(q, 0), MPROC_ETIMEDOUT); /* got, not done */
    TU_OK(mproc_queue_task_done(q));
    TU_OK(mproc_queue_task_done(q));
    TU_RC(mproc_queue_join(q, 10), MPROC_ETIMEDOUT);
    TU_OK(mproc_queue_task_done(q));
    TU_OK(mproc_queue_join(q, 0));
    TU_OK(mproc_queue_join(q, MPROC_FOREVER));
    TU_RC(mproc_queue_task_done(q), MPROC_EBADSTATE); /* one too many */
    TU_RC(mproc_queue_task_done(q), MPROC_EBADSTATE);
    /* The failed calls did not make a debt: one put, one done, joined. */
    TU_OK(mproc_queue_put(q, "u", 1, 0));
    TU_RC(mproc_queue_join(q, 0), MPROC_ETIMEDOUT);
    expect_msg(q, "u", 1, 0);
    TU_OK(mproc_queue_task_done(q));
    TU_OK(mproc_queue_join(q, 0));
}

START_TEST(joinable_queue_counts_tasks)
{
    mproc_queue *q;
    TU_OK(mproc_joinable_queue_new(&q, 0));
    joinable_counts(q);
    mproc_queue_free(q);
    TU_OK(mproc_queue_new(&q, &(mproc_queue_opts){.joinable = true}));
    joinable_counts(q);
    mproc_queue_free(q);
    /* JoinableQueue(maxsize). */
    TU_OK(mproc_joinable_queue_new(&q, 2));
    TU_OK(mproc_queue_put(q, "a", 1, 0));
    TU_OK(mproc_queue_put(q, "b", 1, 0));
    ck_assert(mproc_queue_full(q));
    TU_RC(mproc_queue_put(q, "c", 1, 0), MPROC_ETIMEDOUT);
    TU_RC(mproc_queue_join(q, 0), MPROC_ETIMEDOUT);
    expect_msg(q, "a", 1, 0);
    expect_msg(q, "b", 1, 0);
    TU_OK(mproc_queue_task_done(q));
    TU_OK(mproc_queue_task_done(q));
    TU_OK(mproc_queue_join(q, 0));
    mproc_queue_free(q);
}
END_TEST

#define JQ_ITEMS 300

typedef struct {
    mproc_queue *q;
    volatile int done_count;
    volatile int bad;
} jq_state;

static int jq_worker(void *arg)
{
    jq_state *s = *(jq_state **)arg;
    for (;;) {
        void *buf;
        size_t len;
        int rc = mproc_queue_get(s->q, &buf, &len, 300);
        if (rc == MPROC_ETIMEDOUT) return 0; /* everything was put before we started */
        if (rc) return 2;
        uint32_t pid, seq;
        if (!msg_check(buf, len, &pid, &seq)) return 3;
        free(buf);
        if (seq % 16 == 0) sleep_us(500); /* some work */
        __atomic_fetch_add(&s->done_count, 1, __ATOMIC_SEQ_CST);
        if (mproc_queue_task_done(s->q)) return 4;
    }
}

static int jq_joiner(void *arg)
{
    jq_state *s = *(jq_state **)arg;
    int rc = mproc_queue_join(s->q, 20000);
    if (rc) return 1;
    return __atomic_load_n(&s->done_count, __ATOMIC_SEQ_CST) == JQ_ITEMS ? 0 : 2;
}

START_TEST(join_waits_for_consumers_in_other_processes)
{
    jq_state *s;
    TU_OK(mproc_shm_calloc((void **)&s, sizeof *s));
    TU_OK(mproc_joinable_queue_new(&s->q, 0));
    unsigned char m[300];
    for (uint32_t i = 0; i < JQ_ITEMS; i++) {
        size_t n = MSG_MIN + i % 200;
        msg_fill(m, n, 1, i);
        TU_OK(mproc_queue_put(s->q, m, n, 0));
    }
    mproc_process *joiner = start_child(jq_joiner, &s, sizeof s, tu_methods[_i]);
    mproc_process *w[3];
    for (int k = 0; k < 3; k++) w[k] = start_child(jq_worker, &s, sizeof s, tu_methods[_i]);
    TU_OK(mproc_queue_join(s->q, 20000));
    ck_assert_int_eq(__atomic_load_n(&s->done_count, __ATOMIC_SEQ_CST), JQ_ITEMS);
    ck_assert(mproc_queue_empty(s->q));
    for (int k = 0; k < 3; k++) ck_assert_int_eq(finish_child(w[k], 10000), 0);
    ck_assert_int_eq(finish_child(joiner, 10000), 0);
    TU_RC(mproc_queue_task_done(s->q), MPROC_EBADSTATE);
    mproc_queue_free(s->q);
    TU_OK(mproc_shm_free(s));
}
END_TEST

/* ---- many producers and consumers --------------------------------------- */

enum { MP_NP = 4, MP_NC = 4, MP_PER = 250000 }; /* 1,000,000 messages */

typedef struct {
    mproc_queue *q;
    uint8_t *seen; /* [MP_NP * MP_PER], in the arena */
    long got[MP_NC];
} mp_state;

typedef struct {
    mp_state *s;
    uint32_t id;
} mp_arg;

static int mp_producer(void *arg)
{
    mp_arg *a = arg;
    unsigned char m[64];
    for (uint32_t seq = 0; seq < MP_PER; seq++) {
        size_t n = MSG_MIN + (seq % 5) * 8;
        msg_fill(m, n, a->id, seq);
        if (mproc_queue_put(a->s->q, m, n, 20000)) return 1;
    }
    return 0;
}

/* Checks a message and records it; 0, or a reason to fail. */
static int mp_record(uint8_t *seen, uint32_t np, uint32_t per, int64_t *last, const void *buf,
                     size_t len)
{
    uint32_t pid, seq;
    if (!msg_check(buf, len, &pid, &seq)) return 10; /* corrupt */
    if (pid >= np || seq >= per) return 11;
    if ((int64_t)seq <= last[pid]) return 12; /* out of order for its producer */
    last[pid] = seq;
    if (__atomic_fetch_add(&seen[(size_t)pid * per + seq], 1, __ATOMIC_RELAXED)) return 13;
    return 0;
}

static int mp_consumer(void *arg)
{
    mp_arg *a = arg;
    int64_t last[MP_NP];
    for (int k = 0; k < MP_NP; k++) last[k] = -1;
    unsigned char buf[64];
    long n = 0;
    for (;;) {
        size_t len;
        int rc = mproc_queue_get_into(a->s->q, buf, sizeof buf, &len, 20000);
        if (rc) return rc == MPROC_ETIMEDOUT ? 2 : 3;
        if (len == 4 && memcmp(buf, "STOP", 4) == 0) break;
        if ((rc = mp_record(a->s->seen, MP_NP, MP_PER, last, buf, len))) return rc;
        n++;
    }
    a->s->got[a->id] = n;
    return 0;
}

START_TEST(four_producers_four_consumers_a_million_messages)
{
    mp_state *s;
    TU_OK(mproc_shm_calloc((void **)&s, sizeof *s));
    TU_OK(mproc_shm_calloc((void **)&s->seen, (size_t)MP_NP * MP_PER));
    TU_OK(mproc_queue_new(&s->q, &(mproc_queue_opts){.maxsize = 10000}));
    long long t0 = mproc_now_ns();
    mproc_process *c[MP_NC], *p[MP_NP];
    for (uint32_t k = 0; k < MP_NC; k++) {
        mp_arg a = {s, k};
        c[k] = start_child(mp_consumer, &a, sizeof a, tu_methods[_i]);
    }
    for (uint32_t k = 0; k < MP_NP; k++) {
        mp_arg a = {s, k};
        p[k] = start_child(mp_producer, &a, sizeof a, tu_methods[_i]);
    }
    for (int k = 0; k < MP_NP; k++) ck_assert_int_eq(finish_child(p[k], 100000), 0);
    for (int k = 0; k < MP_NC; k++) TU_OK(mproc_queue_put(s->q, "STOP", 4, 10000));
    for (int k = 0; k < MP_NC; k++) {
        int code = finish_child(c[k], 30000);
        ck_assert_msg(code == 0, "consumer %d failed with %d", k, code);
    }
    long total = 0;
    for (int k = 0; k < MP_NC; k++) total += s->got[k];
    ck_assert_int_eq(total, (long)MP_NP * MP_PER);
    for (size_t i = 0; i < (size_t)MP_NP * MP_PER; i++)
        ck_assert_msg(s->seen[i] == 1, "producer %zu seq %zu arrived %d times", i / MP_PER,
                      i % MP_PER, s->seen[i]);
    ck_assert(mproc_queue_empty(s->q));
    if (getenv("TU_VERBOSE"))
        fprintf(stderr, "1M messages: %lld ms (%ld %ld %ld %ld per consumer)\n", ms_since(t0),
                s->got[0], s->got[1], s->got[2], s->got[3]);
    mproc_queue_free(s->q);
    TU_OK(mproc_shm_free(s->seen));
    TU_OK(mproc_shm_free(s));
}
END_TEST

/* Threads inside processes: 2 producer processes and 2 consumer
 * processes of 2 threads each; the end is signalled by close. */
enum { TH_PROCS = 2, TH_THREADS = 2, TH_NP = TH_PROCS * TH_THREADS, TH_PER = 50000 };

typedef struct {
    mproc_queue *q;
    uint8_t *seen; /* [TH_NP * TH_PER] */
    long got;
} th_state;

typedef struct {
    th_state *s;
    uint32_t id;
} th_arg;

static void *th_produce(void *arg)
{
    th_arg *a = arg;
    unsigned char m[128];
    for (uint32_t seq = 0; seq < TH_PER; seq++) {
        size_t n = MSG_MIN + (seq % 13) * 8;
        msg_fill(m, n, a->id, seq);
        if (mproc_queue_put(a->s->q, m, n, 20000)) return (void *)1;
    }
    return NULL;
}

static void *th_consume(void *arg)
{
    th_arg *a = arg;
    int64_t last[TH_NP];
    for (int k = 0; k < TH_NP; k++) last[k] = -1;
    for (;;) {
        void *buf;
        size_t len;
        int rc = mproc_queue_get(a->s->q, &buf, &len, 20000);
        if (rc == MPROC_ECLOSED) return NULL;
        if (rc) return (void *)(intptr_t)(rc == MPROC_ETIMEDOUT ? 2 : 3);
        rc = mp_record(a->s->seen, TH_NP, TH_PER, last, buf, len);
        free(buf);
        if (rc) return (void *)(intptr_t)rc;
        __atomic_fetch_add(&a->s->got, 1, __ATOMIC_RELAXED);
    }
}

static int th_process(void *arg)
{
    th_arg *a = arg; /* id: process number; consumers have id >= TH_PROCS */
    bool consumer = a->id >= TH_PROCS;
    pthread_t t[TH_THREADS];
    th_arg ta[TH_THREADS];
    for (uint32_t k = 0; k < TH_THREADS; k++) {
        ta[k].s = a->s;
        ta[k].id = (a->id % TH_PROCS) * TH_THREADS + k;
        if (pthread_create(&t[k], NULL, consumer ? th_consume : th_produce, &ta[k])) return 1;
    }
    int bad = 0;
    for (int k = 0; k < TH_THREADS; k++) {
        void *r;
        pthread_join(t[k], &r);
        if (r && !bad) bad = (int)(intptr_t)r;
    }
    return bad;
}

START_TEST(threads_in_processes_produce_and_consume)
{
    th_state *s;
    TU_OK(mproc_shm_calloc((void **)&s, sizeof *s));
    TU_OK(mproc_shm_calloc((void **)&s->seen, (size_t)TH_NP * TH_PER));
    TU_OK(mproc_queue_new(&s->q, NULL));
    mproc_process *p[2 * TH_PROCS];
    for (uint32_t k = 0; k < 2 * TH_PROCS; k++) {
        th_arg a = {s, k};
        p[k] = start_child(th_process, &a, sizeof a, tu_methods[_i]);
    }
    for (int k = 0; k < TH_PROCS; k++) ck_assert_int_eq(finish_child(p[k], 60000), 0);
    mproc_queue_close(s->q); /* consumers drain, then see MPROC_ECLOSED */
    for (int k = TH_PROCS; k < 2 * TH_PROCS; k++) {
        int code = finish_child(p[k], 30000);
        ck_assert_msg(code == 0, "consumer process failed with %d", code);
    }
    ck_assert_int_eq(s->got, (long)TH_NP * TH_PER);
    for (size_t i = 0; i < (size_t)TH_NP * TH_PER; i++)
        ck_assert_msg(s->seen[i] == 1, "thread %zu seq %zu arrived %d times", i / TH_PER,
                      i % TH_PER, s->seen[i]);
    ck_assert(mproc_queue_empty(s->q));
    mproc_queue_free(s->q);
    TU_OK(mproc_shm_free(s->seen));
    TU_OK(mproc_shm_free(s));
}
END_TEST

/* ---- faults: producers killed mid-put ----------------------------------- */

enum { KP_ROUNDS = 50, KP_PRODS = 2 };

typedef struct {
    mproc_queue *q;
    volatile uint32_t acked[KP_ROUNDS * KP_PRODS];  /* puts that returned 0 */
    volatile uint32_t expect[KP_ROUNDS * KP_PRODS]; /* next seq the consumer wants */
    volatile int marker;                            /* last marker the consumer saw */
    volatile int bad;                               /* the consumer's first failure */
    volatile long got;
} kp_state;

typedef struct {
    kp_state *s;
    uint32_t pid;
} kp_arg;

static int kp_producer(void *arg)
{
    kp_arg *a = arg;
    unsigned char *m = malloc((size_t)1 << 20);
    if (!m) return 1;
    for (uint32_t seq = 0;; seq++) {
        size_t n = mixed_size(a->pid, seq);
        msg_fill(m, n, a->pid, seq);
        if (mproc_queue_put(a->s->q, m, n, MPROC_FOREVER)) return 2;
        __atomic_store_n(&a->s->acked[a->pid], seq + 1, __ATOMIC_RELEASE);
    }
}

/* The surviving consumer: every message intact, each producer's messages
 * in order with none missing and none twice. Markers end rounds. */
static int kp_consumer(void *arg)
{
    kp_state *s = *(kp_state **)arg;
    for (;;) {
        void *buf;
        size_t len;
        int rc = mproc_queue_get(s->q, &buf, &len, 15000);
        if (rc) {
            s->bad = rc == MPROC_ETIMEDOUT ? 2 : 3;
            return s->bad;
        }
        uint32_t pid, seq;
        if (!msg_check(buf, len, &pid, &seq)) {
            s->bad = 10;
            return s->bad;
        }
        free(buf);
        if (pid == MARKER_PID) {
            __atomic_store_n(&s->marker, (int)seq, __ATOMIC_RELEASE);
            if (seq == KP_ROUNDS) return 0; /* the last */
            continue;
        }
        if (pid >= KP_ROUNDS * KP_PRODS) {
            s->bad = 11;
            return s->bad;
        }
        if (seq != s->expect[pid]) { /* lost, repeated or reordered */
            s->bad = 12;
            return s->bad;
        }
        __atomic_store_n(&s->expect[pid], seq + 1, __ATOMIC_RELEASE);
        s->got++;
    }
}

static void put_marker(mproc_queue *q, uint32_t round)
{
    unsigned char m[MSG_MIN + 8];
    msg_fill(m, sizeof m, MARKER_PID, round);
    TU_OK(mproc_queue_put(q, m, sizeof m, 10000));
}

/* After faults and a full drain, a bounded queue still takes as many small
 * messages as its bounds allow, without waiting (its counts of messages and
 * bytes were not skewed by the deaths). */
static void bounds_still_exact(mproc_queue *q, size_t maxsize)
{
    ck_assert(mproc_queue_empty(q));
    for (size_t i = 0; i < maxsize; i++)
        ck_assert_msg(mproc_queue_put(q, "0123456789abcdef", 16, 0) == 0,
                      "an empty queue refused message %zu of %zu", i + 1, maxsize);
    ck_assert(mproc_queue_full(q));
    TU_RC(mproc_queue_put(q, "x", 1, 0), MPROC_ETIMEDOUT);
    for (size_t i = 0; i < maxsize; i++) expect_msg(q, "0123456789abcdef", 16, 0);
    ck_assert(mproc_queue_empty(q));
}

static void producers_killed_mid_put(const mproc_queue_opts *opts, int method)
{
    size_t arena_before = arena_allocated();
    kp_state *s;
    TU_OK(mproc_shm_calloc((void **)&s, sizeof *s));
    TU_OK(mproc_queue_new(&s->q, opts));
    s->marker = -1;
    mproc_process *c = start_child(kp_consumer, &s, sizeof s, method);
    unsigned seed = 12345;
    for (uint32_t round = 0; round < KP_ROUNDS; round++) {
        mproc_process *p[KP_PRODS];
        for (uint32_t k = 0; k < KP_PRODS; k++) {
            kp_arg a = {s, round * KP_PRODS + k};
            p[k] = start_child(kp_producer, &a, sizeof a, method);
        }
        sleep_us(500 + rand_r(&seed) % 15000);
        for (int k = 0; k < KP_PRODS; k++) kill_child(p[k]);
        put_marker(s->q, round);
        long long t0 = mproc_now_ns();
        while (__atomic_load_n(&s->marker, __ATOMIC_ACQUIRE) != (int)round) {
            ck_assert_msg(s->bad == 0, "round %u: the consumer failed with %d", round, s->bad);
            ck_assert_msg(ms_since(t0) < 15000, "round %u: the consumer is stuck", round);
            tu_sleep_ms(1);
        }
        /* Everything before the marker was taken: nothing left, and each
         * producer's acknowledged messages all arrived (plus at most the
         * one it was putting, if that one got wholly in). */
        ck_assert_uint_eq(mproc_queue_qsize(s->q), 0);
        ck_assert(mproc_queue_empty(s->q));
        for (uint32_t k = 0; k < KP_PRODS; k++) {
            uint32_t pid = round * KP_PRODS + k, a = s->acked[pid], e = s->expect[pid];
            ck_assert_msg(e == a || e == a + 1, "round %u producer %u: %u acknowledged, %u got",
                          round, k, a, e);
        }
    }
    put_marker(s->q, KP_ROUNDS); /* the consumer's last */
    ck_assert_int_eq(finish_child(c, 15000), 0);
    ck_assert_int_eq(s->bad, 0);
    ck_assert_int_gt(s->got, 0);
    if (opts && opts->maxsize) bounds_still_exact(s->q, opts->maxsize);
    mproc_queue_close(s->q);
    ck_assert(mproc_queue_empty(s->q));
    mproc_queue_free(s->q);
    TU_OK(mproc_shm_free(s));
    /* Not a promise of the header: what the deaths left allocated. */
    if (getenv("TU_VERBOSE"))
        fprintf(stderr, "producers killed: %zu bytes of the arena leaked\n",
                arena_allocated() - arena_before);
}

START_TEST(producers_killed_mid_put_unbounded)
{
    producers_killed_mid_put(NULL, tu_methods[_i]);
}
END_TEST

START_TEST(producers_killed_mid_put_bounded)
{
    /* Producers also die while waiting for room. */
    producers_killed_mid_put(&(mproc_queue_opts){.maxsize = 8, .max_bytes = 2 << 20},
                             tu_methods[_i]);
}
END_TEST

/* ---- faults: consumers killed mid-get ----------------------------------- */

enum { KC_ROUNDS = 30, KC_K = 1500, KC_VICTIMS = 2 };

typedef struct {
    mproc_queue *q;
    uint8_t seen[KC_ROUNDS * KC_K];
    volatile int marker;
    volatile int bad;
} kc_state;

typedef struct {
    kc_state *s;
    uint32_t round;
} kc_arg;

static int kc_produce(void *arg)
{
    kc_state *s = ((kc_arg *)arg)->s;
    uint32_t round = ((kc_arg *)arg)->round;
    unsigned char *m = malloc((size_t)1 << 20);
    if (!m) return 1;
    for (uint32_t i = 0; i < KC_K; i++) {
        uint32_t seq = round * KC_K + i;
        size_t n = mixed_size(1, seq) / 4 + MSG_MIN;
        msg_fill(m, n, 1, seq);
        if (mproc_queue_put(s->q, m, n, 15000)) return 2;
    }
    free(m);
    return 0;
}

/* A consumer; the survivor (arg survivor) also follows the markers. */
static int kc_consume(bool survivor, kc_state *s)
{
    int64_t last = -1;
    for (;;) {
        void *buf;
        size_t len;
        int rc = mproc_queue_get(s->q, &buf, &len, 15000);
        if (rc) return s->bad = (rc == MPROC_ETIMEDOUT ? 2 : 3);
        uint32_t pid, seq;
        if (!msg_check(buf, len, &pid, &seq)) return s->bad = 10;
        free(buf);
        if (pid == MARKER_PID) {
            if (!survivor) return s->bad = 14; /* victims die before markers */
            __atomic_store_n(&s->marker, (int)seq, __ATOMIC_RELEASE);
            if (seq == KC_ROUNDS) return 0;
            continue;
        }
        if (pid != 1 || seq >= KC_ROUNDS * KC_K) return s->bad = 11;
        if ((int64_t)seq <= last) return s->bad = 12;
        last = seq;
        if (__atomic_fetch_add(&s->seen[seq], 1, __ATOMIC_RELAXED)) return s->bad = 13;
    }
}

static int kc_survivor(void *arg)
{
    return kc_consume(true, *(kc_state **)arg);
}

static int kc_victim(void *arg)
{
    return kc_consume(false, *(kc_state **)arg);
}

START_TEST(consumers_killed_mid_get)
{
    size_t arena_before = arena_allocated();
    kc_state *s;
    TU_OK(mproc_shm_calloc((void **)&s, sizeof *s));
    /* Bounds wide enough not to slow the producer much, there to be checked. */
    TU_OK(mproc_queue_new(&s->q, &(mproc_queue_opts){.maxsize = 1000, .max_bytes = 32 << 20}));
    s->marker = -1;
    mproc_process *surv = start_child(kc_survivor, &s, sizeof s, tu_methods[_i]);
    unsigned seed = 4242;
    int lost_total = 0;
    for (uint32_t round = 0; round < KC_ROUNDS; round++) {
        kc_arg ka = {s, round};
        mproc_process *prod = start_child(kc_produce, &ka, sizeof ka, tu_methods[_i]);
        mproc_process *v[KC_VICTIMS];
        for (int k = 0; k < KC_VICTIMS; k++)
            v[k] = start_child(kc_victim, &s, sizeof s, tu_methods[_i]);
        sleep_us(1000 + rand_r(&seed) % 8000);
        for (int k = 0; k < KC_VICTIMS; k++) kill_child(v[k]);
        ck_assert_int_eq(finish_child(prod, 20000), 0); /* every put acknowledged */
        put_marker(s->q, round);
        long long t0 = mproc_now_ns();
        while (__atomic_load_n(&s->marker, __ATOMIC_ACQUIRE) != (int)round) {
            ck_assert_msg(s->bad == 0, "round %u: a consumer failed with %d", round, s->bad);
            ck_assert_msg(ms_since(t0) < 15000, "round %u: the survivor is stuck", round);
            tu_sleep_ms(1);
        }
        ck_assert_msg(s->bad == 0, "round %u: a consumer failed with %d", round, s->bad);
        ck_assert_uint_eq(mproc_queue_qsize(s->q), 0);
        ck_assert(mproc_queue_empty(s->q));
        /* Each acknowledged message was delivered once, except at most
         * one per killed consumer (taken, not yet recorded). */
        int lost = 0;
        for (uint32_t i = round * KC_K; i < (round + 1) * KC_K; i++) {
            ck_assert_msg(s->seen[i] <= 1, "message %u delivered %d times", i, s->seen[i]);
            lost += s->seen[i] == 0;
        }
        ck_assert_msg(lost <= KC_VICTIMS, "round %u: %d messages lost", round, lost);
        lost_total += lost;
    }
    put_marker(s->q, KC_ROUNDS); /* the survivor's last */
    ck_assert_int_eq(finish_child(surv, 15000), 0);
    ck_assert_int_eq(s->bad, 0);
    bounds_still_exact(s->q, 1000);
    mproc_queue_free(s->q);
    TU_OK(mproc_shm_free(s));
    if (getenv("TU_VERBOSE"))
        fprintf(stderr, "consumers killed: %d messages lost, %zu bytes of the arena leaked\n",
                lost_total, arena_allocated() - arena_before);
}
END_TEST

/* ---- faults: waiters killed --------------------------------------------- */

static int get_expect_x(void *arg)
{
    waiter_state *w = *(waiter_state **)arg;
    void *buf;
    size_t len;
    __atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
    w->rc = mproc_queue_get(w->q, &buf, &len, MPROC_FOREVER);
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    if (w->rc) return 1;
    int ok = len == 1 && memcmp(buf, "x", 1) == 0;
    free(buf);
    return ok ? 0 : 2;
}

START_TEST(killed_waiters_do_not_disturb_the_others)
{
    waiter_state *w;
    TU_OK(mproc_shm_calloc((void **)&w, 4 * sizeof *w));
    waiter_state *wp[4] = {&w[0], &w[1], &w[2], &w[3]};
    /* Two processes wait in get on an empty queue; one is killed. */
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    w[0].q = w[1].q = q;
    mproc_process *a = start_child(get_expect_x, &wp[0], sizeof wp[0], tu_methods[_i]);
    mproc_process *b = start_child(get_expect_x, &wp[1], sizeof wp[1], tu_methods[_i]);
    wait_flag(&w[0].started, 1, 5000);
    wait_flag(&w[1].started, 1, 5000);
    tu_sleep_ms(100);
    kill_child(a);
    ck_assert_int_eq(w[1].done, 0);
    TU_OK(mproc_queue_put(q, "x", 1, 0));
    ck_assert_int_eq(finish_child(b, 5000), 0);
    ck_assert(mproc_queue_empty(q));
    TU_OK(mproc_queue_put(q, "y", 1, 0));
    expect_msg(q, "y", 1, 0);

    /* Two processes wait in put on a full queue; one is killed. */
    mproc_queue *f;
    TU_OK(mproc_queue_new(&f, &(mproc_queue_opts){.maxsize = 2}));
    TU_OK(mproc_queue_put(f, "1", 1, 0));
    TU_OK(mproc_queue_put(f, "2", 1, 0));
    w[2].q = w[3].q = f;
    mproc_process *c = start_child(put_d_forever, &wp[2], sizeof wp[2], tu_methods[_i]);
    wait_flag(&w[2].started, 1, 5000);
    tu_sleep_ms(50);
    mproc_process *d = start_child(put_d_forever, &wp[3], sizeof wp[3], tu_methods[_i]);
    wait_flag(&w[3].started, 1, 5000);
    tu_sleep_ms(100);
    kill_child(c);
    ck_assert_uint_eq(mproc_queue_qsize(f), 2);
    ck_assert_int_eq(w[3].done, 0);
    expect_msg(f, "1", 1, 0); /* room for the live waiter */
    ck_assert_int_eq(finish_child(d, 5000), 0);
    expect_msg(f, "2", 1, 0);
    expect_msg(f, "d", 1, 0);
    TU_RC(mproc_queue_get(f, &(void *){0}, &(size_t){0}, 0), MPROC_ETIMEDOUT);
    /* No slot is held for the dead waiter. */
    TU_OK(mproc_queue_put(f, "3", 1, 0));
    TU_OK(mproc_queue_put(f, "4", 1, 0));
    ck_assert(mproc_queue_full(f));
    TU_RC(mproc_queue_put(f, "5", 1, 0), MPROC_ETIMEDOUT);
    expect_msg(f, "3", 1, 0);
    expect_msg(f, "4", 1, 0);
    TU_OK(mproc_shm_free(w));
    mproc_queue_free(q);
    mproc_queue_free(f);
}
END_TEST

/* A consumer killed inside get while its parent (the one that would reap
 * it) is the next to get: the dead holder is a zombie until reaped, and
 * the header promises its lock is taken over, not waited on. The child
 * spends most of its time inside get (copying 4 MiB messages). */
static int consume_big_forever(void *arg)
{
    waiter_state *w = *(waiter_state **)arg;
    __atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
    for (;;) {
        void *buf;
        size_t len;
        if (mproc_queue_get(w->q, &buf, &len, MPROC_FOREVER)) return 1;
        free(buf);
    }
}

START_TEST(consumer_killed_in_get_and_not_yet_reaped)
{
    enum { BIG = 4 << 20, N = 12 };
    unsigned char *m = patterned(BIG, 5);
    waiter_state *w;
    TU_OK(mproc_shm_calloc((void **)&w, sizeof *w));
    /* A round where the consumer emptied the queue before the kill tests
     * nothing: it is not counted, and the next one kills sooner. */
    int exercised = 0;
    for (int round = 0, delay_us = 1000; round < 20 && exercised < 5; round++) {
        TU_OK(mproc_queue_new(&w->q, NULL));
        for (int i = 0; i < N; i++) TU_OK(mproc_queue_put(w->q, m, BIG, 0));
        w->started = 0;
        mproc_process *p = start_child(consume_big_forever, &w, sizeof w, tu_methods[_i]);
        wait_flag(&w->started, 1, 5000);
        sleep_us(delay_us + (round % 4) * 700);
        TU_OK(mproc_process_kill(p)); /* killed, not reaped yet */
        tu_sleep_ms(20);
        size_t left = mproc_queue_qsize(w->q);
        if (left == 0) {
            TU_OK(mproc_process_join(p, 5000));
            TU_OK(mproc_process_free(p));
            mproc_queue_free(w->q);
            delay_us = delay_us > 100 ? delay_us / 2 : 0;
            continue;
        }
        exercised++;
        long long t0 = mproc_now_ns();
        void *buf;
        size_t len;
        int rc = mproc_queue_get(w->q, &buf, &len, 2000);
        long long el = ms_since(t0);
        TU_OK(mproc_process_join(p, 5000));
        TU_OK(mproc_process_free(p));
        ck_assert_msg(rc == 0, "round %d: get with %zu messages queued -> %s after %lld ms", round,
                      left, mproc_err_name(rc), el);
        ck_assert_uint_eq(len, BIG);
        ck_assert(pat_check(buf, len, mix64(5 + 1) | 1));
        free(buf);
        ck_assert_uint_eq(mproc_queue_qsize(w->q), left - 1);
        mproc_queue_free(w->q);
    }
    ck_assert_int_ge(exercised, 3);
    TU_OK(mproc_shm_free(w));
    free(m);
}
END_TEST

/* A get_into whose buffer is too small leaves the message: a consumer that
 * was waiting beside it must get it, not sleep on with a message queued.
 * Which waiter a put wakes first is not promised (with several asleep, all
 * are woken), so the small one may see the message (MPROC_ETOOSMALL) or find
 * it already taken and wait on until the queue is closed. */
static int get_into_small(void *arg)
{
    waiter_state *w = *(waiter_state **)arg;
    char small[10];
    size_t len = 0;
    __atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
    w->rc = mproc_queue_get_into(w->q, small, sizeof small, &len, 10000);
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    if (w->rc == MPROC_ETOOSMALL) return len == 100 ? 0 : 1;
    return w->rc == MPROC_ECLOSED ? 0 : 2;
}

static int get_any(void *arg)
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

START_TEST(a_too_small_get_into_does_not_strand_another_waiter)
{
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    waiter_state *w;
    TU_OK(mproc_shm_calloc((void **)&w, 2 * sizeof *w));
    w[0].q = w[1].q = q;
    waiter_state *w0 = &w[0], *w1 = &w[1];
    mproc_process *small = start_child(get_into_small, &w0, sizeof w0, tu_methods[_i]);
    wait_flag(&w[0].started, 1, 5000);
    tu_sleep_ms(50); /* asleep in get_into */
    mproc_process *any = start_child(get_any, &w1, sizeof w1, tu_methods[_i]);
    wait_flag(&w[1].started, 1, 5000);
    tu_sleep_ms(50); /* asleep in get */
    unsigned char m[100];
    pat_fill(m, sizeof m, 1);
    TU_OK(mproc_queue_put(q, m, sizeof m, 0));
    long long t0 = mproc_now_ns();
    while (!__atomic_load_n(&w[1].done, __ATOMIC_ACQUIRE) && ms_since(t0) < 2000) tu_sleep_ms(1);
    long long el = ms_since(t0);
    bool done = __atomic_load_n(&w[1].done, __ATOMIC_ACQUIRE);
    size_t left = mproc_queue_qsize(q);
    if (!done) {
        kill_child(any);
        ck_abort_msg("the other getter still waits %lld ms after the put, %zu message queued", el,
                     left);
    }
    ck_assert_int_eq(finish_child(any, 5000), 0);
    ck_assert_uint_eq(w[1].len, 100);
    ck_assert(mproc_queue_empty(q));
    mproc_queue_close(q); /* ends the small getter if it still waits */
    ck_assert_int_eq(finish_child(small, 5000), 0);
    TU_OK(mproc_shm_free(w));
    mproc_queue_free(q);
}
END_TEST

/* max_bytes: a get that makes room for a small waiting put (but not for a
 * larger one that waited first) must let the small one in. */
typedef struct {
    waiter_state w;
    size_t n;
} sized_waiter;

static int put_n_bytes(void *arg)
{
    sized_waiter *s = *(sized_waiter **)arg;
    unsigned char m[1000];
    memset(m, 7, sizeof m);
    __atomic_store_n(&s->w.started, 1, __ATOMIC_RELEASE);
    s->w.rc = mproc_queue_put(s->w.q, m, s->n, 10000);
    __atomic_store_n(&s->w.done, 1, __ATOMIC_RELEASE);
    return s->w.rc == 0 ? 0 : s->w.rc == MPROC_ETIMEDOUT ? 1 : 2;
}

START_TEST(max_bytes_room_for_a_small_put_is_not_missed)
{
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, &(mproc_queue_opts){.max_bytes = 1000}));
    unsigned char m[500];
    memset(m, 1, sizeof m);
    TU_OK(mproc_queue_put(q, m, 500, 0));
    TU_OK(mproc_queue_put(q, m, 450, 0));
    sized_waiter *s;
    TU_OK(mproc_shm_calloc((void **)&s, 2 * sizeof *s));
    s[0].w.q = s[1].w.q = q;
    s[0].n = 600; /* fits only when the queue is nearly empty */
    s[1].n = 60;  /* fits once the first message is gone */
    sized_waiter *s0 = &s[0], *s1 = &s[1];
    mproc_process *big = start_child(put_n_bytes, &s0, sizeof s0, tu_methods[_i]);
    wait_flag(&s[0].w.started, 1, 5000);
    tu_sleep_ms(50);
    mproc_process *small = start_child(put_n_bytes, &s1, sizeof s1, tu_methods[_i]);
    wait_flag(&s[1].w.started, 1, 5000);
    tu_sleep_ms(50);
    expect_msg(q, m, 500, 0); /* 450 left: room for 60, not for 600 */
    long long t0 = mproc_now_ns();
    while (!__atomic_load_n(&s[1].w.done, __ATOMIC_ACQUIRE) && ms_since(t0) < 2000) tu_sleep_ms(1);
    long long el = ms_since(t0);
    if (!__atomic_load_n(&s[1].w.done, __ATOMIC_ACQUIRE)) {
        kill_child(small);
        kill_child(big);
        ck_abort_msg("a put of 60 bytes into 450 of 1000 still waits after %lld ms", el);
    }
    ck_assert_int_eq(finish_child(small, 5000), 0);
    ck_assert_int_eq(s[0].w.done, 0); /* 510 + 600 > 1000 */
    expect_msg(q, m, 450, 0);         /* now room for 600 */
    ck_assert_int_eq(finish_child(big, 5000), 0);
    ck_assert_uint_eq(mproc_queue_qsize(q), 2);
    TU_OK(mproc_shm_free(s));
    mproc_queue_free(q);
}
END_TEST

/* Two consumers asleep in get; a put wakes one (the longest waiter), and
 * that one is killed while it copies the message out. The message stays
 * (the header: "a consumer killed before it removed a message leaves it
 * for the next one") and the other sleeper must get it. */
START_TEST(a_woken_consumer_killed_before_taking_strands_no_one)
{
    enum { BIG = 8 << 20 };
    unsigned char *m = patterned(BIG, 8);
    waiter_state *w;
    TU_OK(mproc_shm_calloc((void **)&w, 2 * sizeof *w));
    int conclusive = 0;
    for (int round = 0; round < 3; round++) {
        memset(w, 0, 2 * sizeof *w);
        TU_OK(mproc_queue_new(&w[0].q, NULL));
        mproc_queue *q = w[1].q = w[0].q;
        waiter_state *w0 = &w[0], *w1 = &w[1];
        mproc_process *a = start_child(get_any, &w0, sizeof w0, tu_methods[_i]);
        wait_flag(&w[0].started, 1, 5000);
        tu_sleep_ms(50); /* asleep first: the one a put wakes */
        mproc_process *b = start_child(get_any, &w1, sizeof w1, tu_methods[_i]);
        wait_flag(&w[1].started, 1, 5000);
        tu_sleep_ms(50);
        TU_OK(mproc_queue_put(q, m, BIG, 0));
        TU_OK(mproc_process_kill(a)); /* while it copies 8 MiB out, or before */
        TU_OK(mproc_process_join(a, 5000));
        TU_OK(mproc_process_free(a));
        long long t0 = mproc_now_ns();
        while (!__atomic_load_n(&w[1].done, __ATOMIC_ACQUIRE) && ms_since(t0) < 2000)
            tu_sleep_ms(1);
        long long el = ms_since(t0);
        size_t left = mproc_queue_qsize(q);
        if (!__atomic_load_n(&w[1].done, __ATOMIC_ACQUIRE)) {
            kill_child(b);
            /* Unless a took the message wholly before it died. */
            ck_assert_msg(left == 0,
                          "round %d: the live consumer still waits %lld ms after the put, with "
                          "%zu message queued",
                          round, el, left);
        } else {
            ck_assert_int_eq(finish_child(b, 5000), 0);
            ck_assert_uint_eq(w[1].len, BIG);
            conclusive++;
        }
        ck_assert(mproc_queue_empty(q));
        mproc_queue_free(q);
    }
    ck_assert_int_gt(conclusive, 0); /* the kill did land before a took it */
    TU_OK(mproc_shm_free(w));
    free(m);
}
END_TEST

/* ---- faults: a JoinableQueue's producer killed mid-put ------------------ */

START_TEST(joinable_producer_killed_mid_put_leaves_no_phantom_task)
{
    kp_state *s;
    TU_OK(mproc_shm_calloc((void **)&s, sizeof *s));
    TU_OK(mproc_joinable_queue_new(&s->q, 0));
    unsigned seed = 777;
    for (uint32_t round = 0; round < 20; round++) {
        kp_arg a = {s, round};
        mproc_process *p = start_child(kp_producer, &a, sizeof a, tu_methods[_i]);
        sleep_us(500 + rand_r(&seed) % 10000);
        kill_child(p);
        uint32_t n = 0;
        for (;;) {
            void *buf;
            size_t len;
            int rc = mproc_queue_get(s->q, &buf, &len, 50);
            if (rc == MPROC_ETIMEDOUT) break;
            TU_OK(rc);
            uint32_t pid, seq;
            ck_assert_msg(msg_check(buf, len, &pid, &seq), "round %u: message %u corrupt", round,
                          n);
            ck_assert_uint_eq(pid, round);
            ck_assert_uint_eq(seq, n);
            free(buf);
            n++;
            TU_OK(mproc_queue_task_done(s->q));
        }
        uint32_t acked = s->acked[round];
        ck_assert_msg(n == acked || n == acked + 1, "round %u: %u acknowledged, %u got", round,
                      acked, n);
        ck_assert(mproc_queue_empty(s->q));
        TU_OK(mproc_queue_join(s->q, 2000)); /* no task of a half-put message */
        TU_RC(mproc_queue_task_done(s->q), MPROC_EBADSTATE);
    }
    mproc_queue_free(s->q);
    TU_OK(mproc_shm_free(s));
}
END_TEST

/* ---- freeing a queue with messages in it -------------------------------- */

static int put_some_and_exit(void *arg)
{
    mproc_queue *q = *(mproc_queue **)arg;
    static const size_t n[] = {10, 5000, 100000, 3 << 20};
    for (int i = 0; i < 4; i++) {
        unsigned char *m = calloc(1, n[i]);
        if (!m || mproc_queue_put(q, m, n[i], 0)) return 1;
        free(m);
    }
    return 0;
}

START_TEST(free_with_messages_left_leaks_nothing)
{
    size_t before = arena_allocated();
    static const size_t n[] = {0, 8, 100, 4096, 40000, 1 << 20, 16 << 20, 3 << 20, 17};
    unsigned char *m = patterned(16 << 20, 1);
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    for (int i = 0; i < 9; i++) TU_OK(mproc_queue_put(q, m, n[i], 0));
    expect_msg(q, m, 0, 0);
    expect_msg(q, m, 8, 0);
    mproc_queue_free(q);
    ck_assert_uint_eq(arena_allocated(), before);

    /* Bounded, joinable, closed; and messages a child put. */
    TU_OK(mproc_queue_new(
        &q, &(mproc_queue_opts){.maxsize = 5, .max_bytes = 64 << 20, .joinable = true}));
    for (int i = 2; i < 7; i++) TU_OK(mproc_queue_put(q, m, n[i], 0));
    mproc_queue_close(q);
    mproc_queue_free(q);
    ck_assert_uint_eq(arena_allocated(), before);

    TU_OK(mproc_simple_queue_new(&q));
    ck_assert_int_eq(tu_run_child(put_some_and_exit, &q, sizeof q, tu_methods[_i]), 0);
    ck_assert_uint_eq(mproc_queue_qsize(q), 4);
    mproc_queue_free(q);
    ck_assert_uint_eq(arena_allocated(), before);
    free(m);
}
END_TEST

/* TU_VERBOSE=1: how long each test took (on success). */
static long long test_t0;
static void time_setup(void)
{
    test_t0 = mproc_now_ns();
}
static void time_teardown(void)
{
    if (getenv("TU_VERBOSE")) fprintf(stderr, "  test took %lld ms\n", ms_since(test_t0));
}

static TCase *q_tcase(Suite *s, const char *name, double timeout)
{
    TCase *tc = tu_tcase(s, name, timeout);
    tcase_add_checked_fixture(tc, time_setup, time_teardown);
    return tc;
}

int main(void)
{
    Suite *s = suite_create("queue");
    TCase *tc = q_tcase(s, "messages", 30 * TSCALE);
    tcase_add_test(tc, every_size_roundtrips);
    tcase_add_loop_test(tc, every_size_between_processes, 0, TU_NMETHODS);
    tcase_add_test(tc, get_into_too_small_keeps_the_message);
    tcase_add_loop_test(tc, values_roundtrip, 0, TU_NMETHODS);
    tcase_add_test(tc, a_non_value_message_is_eproto_and_consumed);
    tcase_add_test(tc, invalid_arguments);
    tcase_add_test(tc, oversized_messages_are_emsgsize);
    tc = q_tcase(s, "semantics", 30 * TSCALE);
    tcase_add_test(tc, get_on_empty_times_out);
    tcase_add_loop_test(tc, get_blocks_until_another_process_puts, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, bounded_queue_blocks_and_a_get_unblocks_a_put, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, max_bytes_bounds_the_queue, 0, TU_NMETHODS);
    tcase_add_test(tc, close_fails_puts_and_drains_gets);
    tcase_add_loop_test(tc, close_wakes_waiters_in_other_processes, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, a_too_small_get_into_does_not_strand_another_waiter, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, max_bytes_room_for_a_small_put_is_not_missed, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, unbounded_burst_from_a_producer_that_exits, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, simple_queue_basics, 0, TU_NMETHODS);
    tcase_add_test(tc, joinable_queue_counts_tasks);
    tcase_add_loop_test(tc, join_waits_for_consumers_in_other_processes, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, free_with_messages_left_leaks_nothing, 0, TU_NMETHODS);
    tc = q_tcase(s, "contention", 60 * TSCALE);
    tcase_add_loop_test(tc, four_producers_four_consumers_a_million_messages, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, threads_in_processes_produce_and_consume, 0, TU_NMETHODS);
    tc = q_tcase(s, "faults", 60 * TSCALE);
    tcase_add_loop_test(tc, producers_killed_mid_put_unbounded, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, producers_killed_mid_put_bounded, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, consumers_killed_mid_get, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, killed_waiters_do_not_disturb_the_others, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, consumer_killed_in_get_and_not_yet_reaped, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, a_woken_consumer_killed_before_taking_strands_no_one, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, joinable_producer_killed_mid_put_leaves_no_phantom_task, 0,
                        TU_NMETHODS);
    return tu_run(s);
}
