/* Values over connections: a pipe in one process, and an echo child
 * under every start method. */
#include "value_util.h"

/* ---- values over connections -------------------------------------------- */

START_TEST(values_over_a_pipe)
{
    mproc_conn *a, *b;
    TU_OK(mproc_pipe(&a, &b, true));
    mproc_value *v = seed_dict(), *w = NULL;
    TU_OK(mproc_conn_send_value(b, v));
    TU_OK(mproc_conn_recv_value(a, &w, 1000));
    ck_assert(mproc_value_equal(v, w));
    mproc_value_free(w);

    /* A message that is not CBOR is consumed: the next value arrives. */
    TU_OK(mproc_conn_send_bytes(b, "\xff\xfe not cbor", 11));
    TU_OK(mproc_conn_send_bytes(b, "\x01\x02", 2)); /* trailing bytes */
    TU_OK(mproc_conn_send_bytes(b, NULL, 0));       /* empty */
    TU_OK(mproc_conn_send_value(b, v));
    w = (mproc_value *)1;
    TU_RC(mproc_conn_recv_value(a, &w, 1000), MPROC_EPROTO);
    ck_assert_ptr_null(w);
    TU_RC(mproc_conn_recv_value(a, &w, 1000), MPROC_EPROTO);
    TU_RC(mproc_conn_recv_value(a, &w, 1000), MPROC_EPROTO);
    TU_OK(mproc_conn_recv_value(a, &w, 1000));
    ck_assert(mproc_value_equal(v, w));
    mproc_value_free(w);

    /* A value that cannot be encoded is not sent at all. */
    mproc_value *bad = list_of(1, mproc_value_str("\xff"));
    TU_RC(mproc_conn_send_value(b, bad), MPROC_EINVAL);
    mproc_value_free(bad);
    TU_RC(mproc_conn_recv_value(a, &w, 0), MPROC_ETIMEDOUT);
    TU_RC(mproc_conn_recv_value(a, &w, 30), MPROC_ETIMEDOUT);

    /* Both directions, many values. */
    rng = 99;
    for (int k = 0; k < 200; k++) {
        mproc_value *x = gen(0);
        TU_OK(mproc_conn_send_value(k % 2 ? a : b, x));
        TU_OK(mproc_conn_recv_value(k % 2 ? b : a, &w, 1000));
        ck_assert(mproc_value_equal(x, w));
        mproc_value_free(x);
        mproc_value_free(w);
    }

    TU_RC(mproc_conn_send_value(NULL, v), MPROC_EINVAL);
    TU_RC(mproc_conn_send_value(b, NULL), MPROC_EINVAL);
    TU_RC(mproc_conn_recv_value(NULL, &w, 0), MPROC_EINVAL);
    TU_RC(mproc_conn_recv_value(a, NULL, 0), MPROC_EINVAL);
    mproc_conn_close(b);
    TU_RC(mproc_conn_recv_value(a, &w, 1000), MPROC_EEOF);
    TU_RC(mproc_conn_send_value(b, v), MPROC_ECLOSED);
    mproc_value_free(v);
    mproc_conn_free(a);
    mproc_conn_free(b);
}
END_TEST

typedef struct {
    mproc_conn *mine, *theirs;
} echo_args;

/* Child: receives values until nil, answers each with
 * {'echo': value, 'n': count}; then sends a 100k-item list. */
static int echo_child(void *arg)
{
    echo_args *e = arg;
    mproc_conn_close(e->theirs);
    for (int n = 0;; n++) {
        mproc_value *v;
        if (mproc_conn_recv_value(e->mine, &v, 20000) != 0) return 2;
        if (mproc_value_kind_of(v) == MPROC_V_NIL) {
            mproc_value_free(v);
            break;
        }
        mproc_value *m = mproc_value_map();
        if (mproc_value_map_set_str(m, "echo", v) ||
            mproc_value_map_set_str(m, "n", mproc_value_int(n)))
            return 3;
        if (mproc_conn_send_value(e->mine, m)) return 4;
        mproc_value_free(m);
    }
    mproc_value *big = mproc_value_list();
    for (int k = 0; k < 100000; k++)
        if (mproc_value_list_append(big, mproc_value_int(k))) return 5;
    if (mproc_conn_send_value(e->mine, big)) return 6;
    mproc_value_free(big);
    return 0;
}

START_TEST(values_between_processes)
{
    echo_args e;
    TU_OK(mproc_pipe(&e.theirs, &e.mine, true));
    mproc_process *p;
    TU_OK(mproc_process_new(&p, echo_child, &e, sizeof e, TU_OPTS));
    TU_OK(mproc_process_start(p));
    mproc_conn_close(e.mine);
    rng = 4242;
    for (int n = 0; n < 100; n++) {
        mproc_value *v = n ? gen(0) : seed_dict(), *w;
        if (mproc_value_kind_of(v) == MPROC_V_NIL) {
            mproc_value_free(v);
            v = mproc_value_int(0);
        }
        TU_OK(mproc_conn_send_value(e.theirs, v));
        TU_OK(mproc_conn_recv_value(e.theirs, &w, 20000));
        ck_assert(mproc_value_equal(mproc_value_map_get_str(w, "echo"), v));
        int64_t i;
        TU_OK(mproc_value_get_int(mproc_value_map_get_str(w, "n"), &i));
        ck_assert_int_eq(i, n);
        mproc_value_free(v);
        mproc_value_free(w);
    }
    mproc_value *nil = mproc_value_nil(), *big;
    TU_OK(mproc_conn_send_value(e.theirs, nil));
    mproc_value_free(nil);
    TU_OK(mproc_conn_recv_value(e.theirs, &big, 20000));
    ck_assert_uint_eq(mproc_value_len(big), 100000);
    mproc_value_free(big);
    TU_OK(mproc_process_join(p, 20000));
    int code;
    TU_OK(mproc_process_exitcode(p, &code));
    ck_assert_int_eq(code, 0);
    TU_OK(mproc_process_free(p));
    mproc_conn_free(e.theirs);
    mproc_conn_free(e.mine);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("value_conn");
    TCase *tc = tu_tcase(s, "conn", 60);
    tcase_add_test(tc, values_over_a_pipe);
    tcase_add_loop_test(tc, values_between_processes, 0, TU_NMETHODS);
    return tu_run(s);
}
