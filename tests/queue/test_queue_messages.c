/* Queues: messages of every size (0 B to 16 MiB, across the chunk and
 * page boundaries) in one process and between processes, get_into with a
 * buffer too small, values and a message that is not one, argument checks
 * and oversized messages. */
#include "queue_util.h"

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
        pat_fill(m, sizes[i], tu_mix64(a->seed + i + 1) | 1);
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
        if (!pat_check(buf, len, tu_mix64(a->seed + i + 1) | 1)) return 3;
        free(buf);
    }
    return 0;
}

START_TEST(every_size_between_processes)
{
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    q_seed a;
    /* Zeroed first: its padding goes to the child too (see start() in test_wakeups.c). */
    memset(&a, 0, sizeof a);
    a.q = q;
    a.seed = 500;
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

/* putf in a child; the parent reads the value it built. */
static int put_formatted(void *arg)
{
    mproc_queue *q = *(mproc_queue **)arg;
    return mproc_queue_putf(q, 1000, "[is{s:f}]", 7, "x", "k", 2.5) ? 1 : 0;
}

START_TEST(putf_packs_and_puts)
{
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    ck_assert_int_eq(tu_run_child(put_formatted, &q, sizeof q, tu_methods[_i]), 0);
    mproc_value *got = NULL;
    TU_OK(mproc_queue_get_value(q, &got, 1000));
    int i;
    const char *str;
    double d;
    TU_OK(mproc_value_unpack(got, "[is{s:f}]", &i, &str, "k", &d));
    ck_assert_int_eq(i, 7);
    ck_assert_str_eq(str, "x");
    ck_assert(d == 2.5);
    mproc_value_free(got);
    /* A bad format, a NULL string, a NULL queue: nothing put. */
    TU_RC(mproc_queue_putf(q, 0, "[iZ]", 1), MPROC_EINVAL);
    TU_RC(mproc_queue_putf(q, 0, "s", (const char *)NULL), MPROC_EINVAL);
    TU_RC(mproc_queue_putf(NULL, 0, "i", 1), MPROC_EINVAL);
    TU_RC(mproc_queue_putf(q, 0, NULL), MPROC_EINVAL);
    ck_assert_uint_eq(mproc_queue_qsize(q), 0);
    mproc_queue_free(q);
}
END_TEST

/* getf reads a value through a format; borrowing codes are refused before
 * anything is taken; a value of another kind is taken and dropped. */
START_TEST(getf_unpacks)
{
    mproc_queue *q;
    TU_OK(mproc_queue_new(&q, NULL));
    TU_OK(mproc_queue_putf(q, 0, "[if]", 3, 0.5));
    TU_OK(mproc_queue_putf(q, 0, "s", "text"));
    int i = 0;
    double d = 0;
    TU_OK(mproc_queue_getf(q, 0, "[if]", &i, &d));
    ck_assert_int_eq(i, 3);
    ck_assert(d == 0.5);
    const char *s = NULL;
    TU_RC(mproc_queue_getf(q, 0, "s", &s), MPROC_EINVAL); /* would dangle */
    ck_assert_uint_eq(mproc_queue_qsize(q), 1);           /* nothing taken */
    mproc_value *copy = NULL;
    TU_OK(mproc_queue_getf(q, 0, "O", &copy)); /* a copy is fine */
    ck_assert_str_eq(MPROC_STR(copy), "text");
    mproc_value_free(copy);
    TU_OK(mproc_queue_putf(q, 0, "s", "not an int"));
    TU_RC(mproc_queue_getf(q, 0, "i", &i), MPROC_EINVAL);
    ck_assert_uint_eq(mproc_queue_qsize(q), 0); /* taken and dropped */
    TU_RC(mproc_queue_getf(q, 0, "i", &i), MPROC_ETIMEDOUT);
    TU_RC(mproc_queue_getf(q, 0, "[i", &i), MPROC_EINVAL);
    TU_RC(mproc_queue_getf(NULL, 0, "i", &i), MPROC_EINVAL);
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
    size_t before = tu_arena_allocated();
    TU_RC(mproc_queue_put(q, zeros, MPROC_QUEUE_MAX_MESSAGE + 1, 0), MPROC_EMSGSIZE);
    TU_RC(mproc_queue_put(q, zeros, MPROC_QUEUE_MAX_MESSAGE + 1, MPROC_FOREVER), MPROC_EMSGSIZE);
    TU_RC(mproc_queue_put(q, zeros, SIZE_MAX, 0), MPROC_EMSGSIZE);
    TU_RC(mproc_queue_put(q, zeros, SIZE_MAX - 15, 0), MPROC_EMSGSIZE);
    ck_assert_uint_eq(tu_arena_allocated(), before);
    ck_assert(mproc_queue_empty(q));
    munmap(zeros, n);
    mproc_queue_free(q);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("queue_messages");
    TCase *tc = q_tcase(s, "messages", 30 * TSCALE);
    tcase_add_test(tc, every_size_roundtrips);
    tcase_add_loop_test(tc, every_size_between_processes, 0, TU_NMETHODS);
    tcase_add_test(tc, get_into_too_small_keeps_the_message);
    tcase_add_loop_test(tc, values_roundtrip, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, putf_packs_and_puts, 0, TU_NMETHODS);
    tcase_add_test(tc, getf_unpacks);
    tcase_add_test(tc, a_non_value_message_is_eproto_and_consumed);
    tcase_add_test(tc, invalid_arguments);
    tcase_add_test(tc, oversized_messages_are_emsgsize);
    return tu_run(s);
}
