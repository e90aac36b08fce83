/* bench_mproc rows for queues and the value codec that carries values
 * through them.
 *
 * Every message carries a sequence number in its first 8 bytes, which the
 * consumer checks (order, and no message lost or seen twice), so that a
 * broken queue cannot give a fast wrong figure. The queues are unbounded
 * (Python's Queue() default), except for 1 MiB messages: there max_bytes
 * keeps a producer that runs ahead from filling the arena with the whole
 * run's gigabytes. */
#include "bench_mproc.h"

#include <mproc/queue.h>
#include <mproc/value.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MIB ((size_t)1 << 20)

/* The children are forked, so they find their work in these globals. */
static mproc_queue *g_q, *g_q2;
static long g_n;
static size_t g_size;

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

/* A message buffer of size bytes (at least 8), filled with 'x'. */
static char *message(size_t size)
{
    char *buf = malloc(size < 8 ? 8 : size);
    if (buf) memset(buf, 'x', size < 8 ? 8 : size);
    return buf;
}

/* ---- value.codec.seed_dict: encode + decode of a small dict ------------ */

/* {'id': 1, 'data': 'first data item'}, built once; each op encodes it,
 * decodes the bytes and frees both (pickle.loads(pickle.dumps(d))). The
 * first decoded value of a run is compared with the original, every
 * encoding's length with the first one's. */
static int codec_seed_dict(long n, double *secs)
{
    mproc_value *d = mproc_value_map();
    if (!d) return -1;
    CHECK(mproc_value_map_set_str(d, "id", mproc_value_int(1)));
    CHECK(mproc_value_map_set_str(d, "data", mproc_value_str("first data item")));
    size_t first_len = 0;
    int rc = 0;
    double t0 = bench_now();
    for (long i = 0; i < n && rc == 0; i++) {
        void *buf;
        size_t len;
        mproc_value *v;
        if ((rc = mproc_value_encode(d, &buf, &len)) != 0) break;
        rc = mproc_value_decode(buf, len, NULL, &v);
        free(buf);
        if (rc != 0) break;
        if (i == 0) {
            first_len = len;
            if (!mproc_value_equal(d, v)) rc = MPROC_EPROTO;
        } else if (len != first_len) {
            rc = MPROC_EPROTO;
        }
        mproc_value_free(v);
    }
    *secs = bench_now() - t0;
    mproc_value_free(d);
    CHECK(rc);
    return 0;
}

/* ---- queue.spsc: a child puts 0..n, the parent gets -------------------- */

static int producer(void *arg)
{
    (void)arg;
    bench_pin_apart(1);
    char *buf = message(g_size);
    if (!buf) return 1;
    int rc = 0;
    for (uint64_t i = 0; i <= (uint64_t)g_n && rc == 0; i++) {
        put_seq(buf, i);
        rc = mproc_queue_put(g_q, buf, g_size, MPROC_FOREVER);
    }
    free(buf);
    if (rc != 0) fprintf(stderr, "producer: %s\n", mproc_err_name(rc));
    return rc != 0;
}

/* The clock starts when the parent has message 0 (the child is running).
 * The two run on different CPUs unless only one is allowed. */
static int spsc(long n, double *secs, size_t size)
{
    mproc_queue_opts opts = {.max_bytes = size >= MIB ? 32 * MIB : 0};
    mproc_process *p;
    char *buf = message(size);
    if (!buf) return -1;
    g_n = n;
    g_size = size;
    CHECK(mproc_queue_new(&g_q, &opts));
    if (start_child(&p, producer, NULL, 0) != 0) return -1;
    bench_pin_apart(0);
    int rc = 0;
    double t0 = 0;
    for (uint64_t i = 0; i <= (uint64_t)n && rc == 0; i++) {
        size_t len;
        rc = mproc_queue_get_into(g_q, buf, size, &len, MPROC_FOREVER);
        if (rc == 0 && (len != size || get_seq(buf) != i)) {
            fprintf(stderr, "spsc: message %lu: %zu bytes, number %lu\n", (unsigned long)i, len,
                    (unsigned long)get_seq(buf));
            rc = MPROC_EPROTO;
        }
        if (i == 0) t0 = bench_now();
    }
    *secs = bench_now() - t0;
    free(buf);
    int bad = join_free(p, rc != 0);
    mproc_queue_free(g_q);
    CHECK(rc);
    return bad;
}

static int spsc_8(long n, double *s)
{
    return spsc(n, s, 8);
}
static int spsc_1m(long n, double *s)
{
    return spsc(n, s, MIB);
}

/* ---- queue.mpmc.2x2.8B: 2 producers, 2 consumers, one queue ------------ */

/* Producer `who` puts its half of n messages numbered (who << 56) + 0, 1,
 * ...; each consumer checks that each producer's numbers come in order and
 * adds up what it got. The clock runs from the gate opening until the last
 * consumer sees the queue closed (the parent closes it once both producers
 * exited). No pinning: four processes, two CPUs at most. */
typedef struct mpmc_page {
    bench_gate gate; /* end[0], end[1]: the consumers' */
    atomic_long count;
    atomic_ulong sum;
} mpmc_page;

static mpmc_page *g_page; /* in the arena */

#define SEQ_BITS 56

static long share(long n, int who)
{
    return n / 2 + (who < n % 2);
}

static int mpmc_producer(void *arg)
{
    int who = *(const int *)arg;
    long k = share(g_n, who);
    char m[8];
    int rc = 0;
    bench_gate_wait(&g_page->gate);
    for (uint64_t i = 0; i < (uint64_t)k && rc == 0; i++) {
        put_seq(m, (uint64_t)who << SEQ_BITS | i);
        rc = mproc_queue_put(g_q, m, sizeof m, MPROC_FOREVER);
    }
    if (rc != 0) fprintf(stderr, "mpmc_producer: %s\n", mproc_err_name(rc));
    return rc != 0;
}

static int mpmc_consumer(void *arg)
{
    int who = *(const int *)arg;
    uint64_t next[2] = {0, 0}, sum = 0;
    long count = 0;
    char m[8];
    size_t len;
    int rc;
    bench_gate_wait(&g_page->gate);
    while ((rc = mproc_queue_get_into(g_q, m, sizeof m, &len, MPROC_FOREVER)) == 0) {
        uint64_t seq = get_seq(m), from = seq >> SEQ_BITS,
                 i = seq & (((uint64_t)1 << SEQ_BITS) - 1);
        if (len != sizeof m || from > 1 || i < next[from]) {
            fprintf(stderr, "mpmc_consumer: message %lu of producer %lu after %lu\n",
                    (unsigned long)i, (unsigned long)from, (unsigned long)next[from & 1]);
            return 1;
        }
        next[from] = i + 1;
        sum += i;
        count++;
    }
    g_page->gate.end[who] = bench_now();
    atomic_fetch_add(&g_page->count, count);
    atomic_fetch_add(&g_page->sum, sum);
    if (rc != MPROC_ECLOSED) fprintf(stderr, "mpmc_consumer: %s\n", mproc_err_name(rc));
    return rc != MPROC_ECLOSED;
}

static int mpmc(long n, double *secs)
{
    mproc_process *prod[2], *cons[2];
    int nprod = 0, ncons = 0, bad = 0;
    g_n = n;
    CHECK(mproc_queue_new(&g_q, NULL));
    CHECK(mproc_arena_calloc((void **)&g_page, sizeof *g_page));
    for (int who = 0; who < 2 && !bad; who++) {
        bad = start_child(&cons[who], mpmc_consumer, &who, sizeof who) != 0;
        ncons += !bad;
    }
    for (int who = 0; who < 2 && !bad; who++) {
        bad = start_child(&prod[who], mpmc_producer, &who, sizeof who) != 0;
        nprod += !bad;
    }
    if (bad) atomic_store(&g_page->gate.go, 1);
    double t0 = bench_gate_open(&g_page->gate, nprod + ncons);
    for (int i = 0; i < nprod; i++) bad |= join_free(prod[i], bad) != 0;
    mproc_queue_close(g_q); /* the consumers drain the queue, then stop */
    for (int i = 0; i < ncons; i++) bad |= join_free(cons[i], bad) != 0;
    *secs = bench_gate_last_end(&g_page->gate, ncons) - t0;
    long count = atomic_load(&g_page->count);
    uint64_t sum = atomic_load(&g_page->sum), want = 0;
    for (int who = 0; who < 2; who++) {
        uint64_t k = (uint64_t)share(n, who);
        want += k * (k - 1) / 2; /* 0 + 1 + ... + k-1 (0 when k is 0) */
    }
    mproc_arena_free(g_page);
    mproc_queue_free(g_q);
    if (!bad && (count != n || sum != want)) {
        fprintf(stderr, "mpmc: %ld messages (sum %lu), %ld expected (sum %lu)\n", count,
                (unsigned long)sum, n, (unsigned long)want);
        bad = 1;
    }
    return bad ? -1 : 0;
}

/* ---- queue.pingpong.8B: the child echoes from one queue to the other --- */

static int echo(void *arg)
{
    (void)arg;
    char m[8];
    size_t len;
    int rc;
    bench_pin_apart(1);
    while ((rc = mproc_queue_get_into(g_q, m, sizeof m, &len, MPROC_FOREVER)) == 0)
        if ((rc = mproc_queue_put(g_q2, m, len, MPROC_FOREVER)) != 0) break;
    if (rc != MPROC_ECLOSED) fprintf(stderr, "echo: %s\n", mproc_err_name(rc));
    return rc != MPROC_ECLOSED;
}

/* One warm-up round trip, then n timed ones; the two sides run on different
 * CPUs unless only one is allowed. The parent closes the first queue to
 * stop the child. */
static int pingpong(long n, double *secs)
{
    mproc_process *p;
    CHECK(mproc_queue_new(&g_q, NULL));
    CHECK(mproc_queue_new(&g_q2, NULL));
    if (start_child(&p, echo, NULL, 0) != 0) return -1;
    bench_pin_apart(0);
    int rc = 0;
    double t0 = 0;
    for (long i = -1; i < n && rc == 0; i++) {
        char m[8];
        size_t len;
        if (i == 0) t0 = bench_now();
        put_seq(m, (uint64_t)(i + 1));
        rc = mproc_queue_put(g_q, m, sizeof m, MPROC_FOREVER);
        if (rc == 0) rc = mproc_queue_get_into(g_q2, m, sizeof m, &len, MPROC_FOREVER);
        if (rc == 0 && (len != sizeof m || get_seq(m) != (uint64_t)(i + 1))) {
            fprintf(stderr, "pingpong: wrong answer to %ld\n", i + 1);
            rc = MPROC_EPROTO;
        }
    }
    *secs = bench_now() - t0;
    mproc_queue_close(g_q);
    int bad = join_free(p, rc != 0);
    mproc_queue_free(g_q);
    mproc_queue_free(g_q2);
    CHECK(rc);
    return bad;
}

static const bench_row rows[] = {
    {"value.codec.seed_dict", codec_seed_dict, BENCH_PER_S, 0},
    {"queue.spsc.8B", spsc_8, BENCH_PER_S, 8},
    {"queue.mpmc.2x2.8B", mpmc, BENCH_PER_S, 8},
    {"queue.spsc.1MiB", spsc_1m, BENCH_MB_PER_S, MIB},
    {"queue.pingpong.8B", pingpong, BENCH_US, 8},
};

const bench_table bench_mproc_queue = BENCH_TABLE(rows);
