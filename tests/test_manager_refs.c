/* Managers: references carried by values (read out of containers and
 * queues, as dict keys and set members, naming no object), slow
 * handshakes, missing arguments, float Values — regressions of bugs once
 * found, under every start method. */
#include "mgrutil.h"

#include "manager/manager.h"

static int call(mproc_proxy *p, const char *m, mproc_value *a, mproc_value **r)
{
    int rc = mproc_proxy_call(p, m, a, r);
    mproc_value_free(a);
    return rc;
}

static uint64_t id_of(mproc_proxy *p)
{
    mproc_value *r = mproc_proxy_ref(p);
    uint32_t t;
    uint64_t id = 0;
    mproc_value_get_handle(r, &t, &id);
    mproc_value_free(r);
    return id;
}

START_TEST(last_reference_read_out_of_a_container)
{
    mproc_manager *m = mgr_start(_i, NULL);
    const char *how[] = {"Queue", "list", "dict"};
    for (int k = 0; k < 3; k++) {
        mproc_proxy *l, *c, *l2 = NULL;
        TU_OK(mproc_manager_create(m, "list", NULL, &l));
        TU_OK(mproc_manager_create(m, how[k], NULL, &c));
        if (k == 2) {
            mproc_value *a = mproc_value_list();
            mproc_value_list_append(a, mproc_value_str("x"));
            mproc_value_list_append(a, mproc_proxy_ref(l));
            TU_OK(call(c, "setitem", a, NULL));
        } else {
            TU_OK(call(c, k == 0 ? "put" : "append", args1(mproc_proxy_ref(l)), NULL));
        }
        mproc_proxy_free(l); /* the container holds the only reference */
        mproc_value *got = NULL;
        TU_OK(call(c, k == 0 ? "get" : "pop", k == 2 ? args1(mproc_value_str("x")) : NULL, &got));
        TU_OK(mproc_proxy_from_value(m, got, &l2));
        size_t n;
        TU_OK(mproc_proxy_len(l2, &n));
        ck_assert_str_eq(mproc_proxy_typeid(l2), "list");
        mproc_value_free(got);
        mproc_proxy_free(l2);
        mproc_proxy_free(c);
    }
    mproc_manager_free(m);
}
END_TEST

START_TEST(references_as_keys_and_members)
{
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_proxy *l, *s, *d;
    size_t n;
    TU_OK(mproc_manager_create(m, "list", NULL, &l));
    TU_OK(mproc_manager_create(m, "set", NULL, &s));
    TU_OK(call(s, "add", args1(mproc_proxy_ref(l)), NULL));
    mproc_proxy_free(s);
    TU_OK(mproc_proxy_len(l, &n)); /* not released by the set */
    TU_OK(mproc_manager_create(m, "dict", NULL, &d));
    mproc_value *a = mproc_value_list();
    mproc_value_list_append(a, mproc_proxy_ref(l));
    mproc_value_list_append(a, mproc_value_int(1));
    TU_OK(call(d, "setitem", a, NULL));
    TU_OK(call(d, "clear", NULL, NULL));
    TU_OK(mproc_proxy_len(l, &n));
    mproc_proxy_free(d);
    mproc_proxy_free(l);
    mproc_manager_free(m);
}
END_TEST

START_TEST(reference_to_no_object_is_refused)
{
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_proxy *l, *victim;
    size_t n;
    TU_OK(mproc_manager_create(m, "list", NULL, &l));
    TU_RC(call(l, "append", args1(mproc_value_handle(MPROC__HANDLE_OBJ, id_of(l) + 1)), NULL),
          MPROC_EMETHOD);
    int code;
    mproc_manager_last_error(&code, NULL);
    ck_assert_int_eq(code, MPROC_EINVAL);
    TU_OK(mproc_manager_create(m, "dict", NULL, &victim)); /* gets that id */
    mproc_proxy_free(l);
    TU_OK(mproc_proxy_len(victim, &n)); /* alive */
    mproc_proxy_free(victim);
    mproc_manager_free(m);
}
END_TEST

START_TEST(slow_and_silent_handshakes)
{
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_conn *c;
    TU_OK(mproc_client(&c, mproc_manager_address(m), NULL, 5000)); /* no handshake yet */
    tu_sleep_ms(300);
    mproc_auth au = {.family_key = true};
    TU_OK(mproc_answer_challenge(c, &au, 5000));
    TU_OK(mproc_deliver_challenge(c, &au, 5000));
    mproc_conn_free(c);
    mproc_conn *silent[10];
    for (int k = 0; k < 10; k++)
        TU_OK(mproc_client(&silent[k], mproc_manager_address(m), NULL, 5000));
    long long t0 = mproc_now_ns();
    mproc_manager *m2;
    TU_OK(mproc_manager_connect(&m2, mproc_manager_address(m), NULL, 0));
    ck_assert(mproc_now_ns() - t0 < 2000000000LL); /* not held up by them */
    mproc_manager_free(m2);
    for (int k = 0; k < 10; k++) mproc_conn_free(silent[k]);
    mproc_manager_free(m);
}
END_TEST

START_TEST(missing_arguments_and_float_values)
{
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_proxy *l, *v;
    int code;
    TU_OK(mproc_manager_create(m, "list", NULL, &l));
    TU_RC(call(l, "append", NULL, NULL), MPROC_EMETHOD);
    mproc_manager_last_error(&code, NULL);
    ck_assert_int_eq(code, MPROC_EINVAL);
    TU_RC(call(l, "insert", args1(mproc_value_int(0)), NULL), MPROC_EMETHOD);
    mproc_manager_last_error(&code, NULL);
    ck_assert_int_eq(code, MPROC_EINVAL);
    mproc_value *a = mproc_value_list();
    mproc_value_list_append(a, mproc_value_str("d"));
    mproc_value_list_append(a, mproc_value_int(1));
    TU_OK(mproc_manager_create(m, "Value", a, &v));
    mproc_value_free(a);
    mproc_value *got = NULL;
    TU_OK(call(v, "get", NULL, &got));
    ck_assert_int_eq(mproc_value_kind_of(got), MPROC_V_FLOAT);
    mproc_value_free(got);
    TU_OK(call(v, "set", args1(mproc_value_int(2)), NULL));
    TU_OK(call(v, "get", NULL, &got));
    ck_assert_int_eq(mproc_value_kind_of(got), MPROC_V_FLOAT);
    mproc_value_free(got);
    /* a timeout of the wrong type is an error, not "forever" */
    mproc_proxy *q;
    TU_OK(mproc_manager_create(m, "Queue", NULL, &q));
    TU_RC(call(q, "get", args1(mproc_value_str("x")), NULL), MPROC_EMETHOD);
    mproc_proxy_free(q);
    mproc_proxy_free(v);
    mproc_proxy_free(l);
    mproc_manager_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("manager_refs");
    TCase *tc = tu_tcase(s, "refs", 60);
    tcase_add_loop_test(tc, last_reference_read_out_of_a_container, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, references_as_keys_and_members, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, reference_to_no_object_is_refused, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, slow_and_silent_handshakes, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, missing_arguments_and_float_values, 0, TU_NMETHODS);
    return tu_run(s);
}
