/* Managers: built-in types, proxies across processes, custom types,
 * references, errors, hostile clients, under every start method. */
#include "testutil.h"

#include <signal.h>
#include <stdatomic.h>

static mproc_manager *start(int i, const mproc_manager_opts *extra)
{
    mproc_manager_opts o = extra ? *extra : (mproc_manager_opts){0};
    const mproc_context *ctx;
    TU_OK(mproc_get_context(mproc_start_method_name(tu_methods[i]), &ctx));
    o.context = ctx;
    mproc_manager *m;
    TU_OK(mproc_manager_start(&m, &o));
    return m;
}

static mproc_value *args1(mproc_value *a)
{
    mproc_value *l = mproc_value_list();
    mproc_value_list_append(l, a);
    return l;
}

static int64_t as_int(mproc_value *v)
{
    int64_t x = -999;
    mproc_value_get_int(v, &x);
    mproc_value_free(v);
    return x;
}

static int64_t call_int(mproc_proxy *p, const char *method, mproc_value *args)
{
    mproc_value *r = NULL;
    TU_OK(mproc_proxy_call(p, method, args, &r));
    mproc_value_free(args);
    return as_int(r);
}

START_TEST(dict_list_and_nesting)
{
    mproc_manager *m = start(_i, NULL);
    mproc_proxy *d, *l;
    TU_OK(mproc_manager_create(m, "dict", NULL, &d));
    TU_OK(mproc_manager_create(m, "list", NULL, &l));
    for (int k = 0; k < 5; k++) {
        mproc_value *v = mproc_value_int(k * 10);
        TU_OK(mproc_proxy_append(l, v));
        mproc_value_free(v);
    }
    size_t n;
    TU_OK(mproc_proxy_len(l, &n));
    ck_assert_uint_eq(n, 5);
    ck_assert_int_eq(call_int(l, "getitem", args1(mproc_value_int(-1))), 40);
    ck_assert_int_eq(call_int(l, "pop", args1(mproc_value_int(0))), 0);
    ck_assert_int_eq(call_int(l, "index", args1(mproc_value_int(30))), 2);
    mproc_value *a99 = args1(mproc_value_int(99));
    TU_RC(mproc_proxy_call(l, "getitem", a99, NULL), MPROC_EMETHOD);
    mproc_value_free(a99);
    int code;
    const char *msg;
    mproc_manager_last_error(&code, &msg);
    ck_assert_int_eq(code, MPROC_ERANGE);
    ck_assert_str_eq(msg, "list index out of range");
    TU_RC(mproc_proxy_call(l, "no_such_method", NULL, NULL), MPROC_ENOENT);

    /* a dict holding the list proxy */
    mproc_value *k = mproc_value_str("numbers"), *ref = mproc_proxy_ref(l);
    TU_OK(mproc_proxy_setitem(d, k, ref));
    mproc_value_free(ref);
    mproc_proxy_free(l); /* the dict still holds it */
    mproc_value *got;
    TU_OK(mproc_proxy_getitem(d, k, &got));
    mproc_proxy *l2;
    TU_OK(mproc_proxy_from_value(m, got, &l2));
    mproc_value_free(got);
    ck_assert_str_eq(mproc_proxy_typeid(l2), "list");
    TU_OK(mproc_proxy_len(l2, &n));
    ck_assert_uint_eq(n, 4);
    mproc_proxy_free(l2);
    mproc_value *missing = mproc_value_str("missing");
    TU_RC(mproc_proxy_getitem(d, missing, &got), MPROC_EMETHOD);
    mproc_value_free(missing);
    mproc_value_free(k);
    mproc_proxy_free(d);
    mproc_manager_free(m);
}
END_TEST

/* A child connects on its own and appends records (seed 003). */
typedef struct {
    char address[256];
    int k;
} child_arg;

static int appender(void *arg)
{
    child_arg *a = arg;
    mproc_manager *m;
    if (mproc_manager_connect(&m, a->address, NULL, 0)) return 1;
    mproc_proxy *q;
    int rc = 0;
    if (mproc_manager_create(m, "Namespace", NULL, &q)) rc = 2;
    mproc_proxy_free(q);
    mproc_manager_free(m);
    return rc;
}

START_TEST(children_connect_with_the_family_key)
{
    mproc_manager *m = start(_i, NULL);
    child_arg a = {.k = 1};
    snprintf(a.address, sizeof a.address, "%s", mproc_manager_address(m));
    ck_assert_int_eq(tu_run_child(appender, &a, sizeof a, tu_methods[_i]), 0);
    /* a wrong key is refused */
    mproc_manager *bad;
    TU_RC(mproc_manager_connect(&bad, a.address, "nope", 4), MPROC_EAUTH);
    mproc_manager_free(m);
}
END_TEST

START_TEST(pipelined_calls_remote_and_local)
{
    for (int local = 0; local < 2; local++) {
        if (!local) setenv("MPROC_MANAGER_LOCAL", "0", 1);
        mproc_manager *m = start(
            _i,
            &(mproc_manager_opts){.address = "127.0.0.1:0", .authkey = "key", .authkey_len = 3});
        unsetenv("MPROC_MANAGER_LOCAL");
        mproc_proxy *l;
        TU_OK(mproc_manager_create(m, "list", NULL, &l));
        enum { N = 300 };
        mproc_call calls[N];
        mproc_value *args[N];
        mproc_value *res[N];
        int codes[N];
        for (int k = 0; k < N; k++) {
            args[k] = args1(mproc_value_int(k));
            calls[k] = (mproc_call){l, k == 7 ? "bogus" : "append", args[k]};
        }
        TU_OK(mproc_manager_call_many(m, calls, N, res, codes));
        for (int k = 0; k < N; k++) {
            ck_assert_int_eq(codes[k], k == 7 ? MPROC_ENOENT : 0);
            mproc_value_free(res[k]);
            mproc_value_free(args[k]);
        }
        size_t n;
        TU_OK(mproc_proxy_len(l, &n));
        ck_assert_uint_eq(n, N - 1);
        ck_assert_int_eq(call_int(l, "getitem", args1(mproc_value_int(7))), 8);
        mproc_proxy_free(l);
        mproc_manager_free(m);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("manager");
    TCase *tc = tu_tcase(s, "basics", 60);
    tcase_add_loop_test(tc, dict_list_and_nesting, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, children_connect_with_the_family_key, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, pipelined_calls_remote_and_local, 0, TU_NMETHODS);
    return tu_run(s);
}
