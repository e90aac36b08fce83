/* Proxy calls and creation from a format string (mproc_proxy_callf,
 * mproc_manager_createf, mproc_proxy_callf_unpack): Python's one-liners,
 * proxies passed as arguments, bad formats and results of the wrong kind
 * (a clear error, nothing sent when the format is bad, the 'o' values
 * freed: leaks show under ASan). Under every start method of the
 * manager. */
#include "mgrutil.h"

/* The repr of p's copy() (free it). */
static char *copy_repr(mproc_proxy *p)
{
    mproc_value *r = NULL;
    TU_OK(mproc_proxy_callf(p, "copy", &r, NULL));
    char *s = mproc_value_repr_alloc(r);
    mproc_value_free(r);
    return s;
}

#define ASSERT_COPY(p, want)                                                                       \
    do {                                                                                           \
        char *s_ = copy_repr(p);                                                                   \
        ck_assert_str_eq(s_, want);                                                                \
        free(s_);                                                                                  \
    } while (0)

/* v's repr is want; frees v. */
#define ASSERT_REPR_STR(v, want)                                                                   \
    do {                                                                                           \
        mproc_value *v_ = (v);                                                                     \
        char *s_ = mproc_value_repr_alloc(v_);                                                     \
        ck_assert_str_eq(s_, want);                                                                \
        free(s_);                                                                                  \
        mproc_value_free(v_);                                                                      \
    } while (0)

static int len_of(mproc_proxy *p)
{
    int n = -1;
    TU_OK(mproc_proxy_callf_unpack(p, "len", NULL, "i", &n));
    return n;
}

START_TEST(python_one_liners)
{
    mproc_manager *m = mgr_start(_i, NULL);

    /* l = manager.list([1, 2]); l.append(5); l.extend([6, 'x']) */
    mproc_proxy *l;
    TU_OK(mproc_manager_createf(m, "list", &l, "[ii]", 1, 2));
    TU_OK(mproc_proxy_callf(l, "append", NULL, "i", 5));
    TU_OK(mproc_proxy_callf(l, "extend", NULL, "[is]", 6, "x"));
    ASSERT_COPY(l, "[1, 2, 5, 6, 'x']");
    ck_assert_int_eq(len_of(l), 5);
    /* x = l[-2]; l.insert(0, None) */
    int x = 0;
    TU_OK(mproc_proxy_callf_unpack(l, "getitem", "i", "i", -2, &x));
    ck_assert_int_eq(x, 6);
    mproc_value *r = NULL;
    TU_OK(mproc_proxy_callf(l, "getitem", &r, "i", -1));
    ASSERT_REPR_STR(r, "'x'");
    TU_OK(mproc_proxy_callf(l, "insert", NULL, "i n", 0));
    ASSERT_COPY(l, "[None, 1, 2, 5, 6, 'x']");

    /* v = manager.Value('i', 0); v.value = v.value + 1 (three times) */
    mproc_proxy *v;
    TU_OK(mproc_manager_createf(m, "Value", &v, "si", "i", 0));
    for (int k = 0; k < 3; k++) {
        int c = -1;
        TU_OK(mproc_proxy_callf_unpack(v, "get", NULL, "i", &c));
        TU_OK(mproc_proxy_callf(v, "set", NULL, "i", c + 1));
    }
    int c = -1;
    TU_OK(mproc_proxy_callf_unpack(v, "get", "", "i", &c));
    ck_assert_int_eq(c, 3);
    /* a 'd' Value reads as a double */
    mproc_proxy *dv;
    TU_OK(mproc_manager_createf(m, "Value", &dv, "sf", "d", 0.25));
    double d = 0;
    TU_OK(mproc_proxy_callf_unpack(dv, "get", NULL, "f", &d));
    ck_assert(d == 0.25);

    /* d = manager.dict(); d['k'] = 5; d['pair'] = [1, 'a']; d['l'] = l */
    mproc_proxy *dict, *l2;
    TU_OK(mproc_manager_createf(m, "dict", &dict, NULL));
    TU_OK(mproc_proxy_callf(dict, "setitem", NULL, "si", "k", 5));
    TU_OK(mproc_proxy_callf(dict, "setitem", NULL, "s[is]", "pair", 1, "a"));
    TU_OK(mproc_proxy_callf(dict, "setitem", NULL, "so", "l", mproc_proxy_ref(l)));
    int k = 0;
    mproc_value *pair = NULL, *ref = NULL;
    TU_OK(mproc_proxy_callf_unpack(dict, "copy", NULL, "{s:i, s:O, s:O !}", "k", &k, "pair", &pair,
                                   "l", &ref));
    ck_assert_int_eq(k, 5);
    ASSERT_REPR_STR(pair, "[1, 'a']");
    /* the reference read back is the same list */
    TU_OK(mproc_proxy_from_value(m, ref, &l2));
    mproc_value_free(ref);
    ck_assert_int_eq(len_of(l2), 6);
    mproc_proxy_free(l2);
    /* a None result */
    TU_OK(mproc_proxy_callf_unpack(dict, "setitem", "sn", "n", "none"));
    int untouched = 7;
    TU_OK(mproc_proxy_callf_unpack(dict, "get", "s", "i?", "none", &untouched));
    ck_assert_int_eq(untouched, 7);
    r = (mproc_value *)1;
    TU_OK(mproc_proxy_callf(dict, "get", &r, "s", "none"));
    ck_assert_ptr_null(r);

    /* An empty format is no arguments: list() */
    mproc_proxy *empty;
    TU_OK(mproc_manager_createf(m, "list", &empty, ""));
    ck_assert_int_eq(len_of(empty), 0);
    mproc_proxy_free(empty);

    mproc_proxy_free(dict);
    mproc_proxy_free(dv);
    mproc_proxy_free(v);
    mproc_proxy_free(l);
    mproc_manager_free(m);
}
END_TEST

START_TEST(bad_formats_send_nothing)
{
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_proxy *l, *p = (mproc_proxy *)1;
    TU_OK(mproc_manager_createf(m, "list", &l, "[i]", 1));

    mproc_value *r = (mproc_value *)1;
    TU_RC(mproc_proxy_callf(l, "append", &r, "[i", 5), MPROC_EINVAL);
    ck_assert_ptr_null(r);
    TU_RC(mproc_proxy_callf(l, "append", NULL, "x", 5), MPROC_EINVAL);
    TU_RC(mproc_proxy_callf(l, "append", NULL, "s", (const char *)NULL), MPROC_EINVAL);
    TU_RC(mproc_proxy_callf(l, "append", NULL, "o", (mproc_value *)NULL), MPROC_EINVAL);
    /* 'o' values are taken whatever fails (ASan sees a leak otherwise) */
    TU_RC(mproc_proxy_callf(l, "append", NULL, "o [o", mproc_value_int(1), mproc_value_int(2)),
          MPROC_EINVAL);
    TU_RC(mproc_proxy_callf(l, "append", NULL, "o s o", mproc_value_int(1), (const char *)NULL,
                            mproc_value_int(2)),
          MPROC_EINVAL);
    TU_RC(mproc_proxy_callf(NULL, "append", NULL, "o", mproc_value_int(1)), MPROC_EINVAL);
    TU_RC(mproc_proxy_callf(l, NULL, NULL, "o", mproc_value_int(1)), MPROC_EINVAL);
    TU_RC(mproc_proxy_callf_unpack(l, "append", "o", "[i", mproc_value_int(1), NULL), MPROC_EINVAL);
    TU_RC(mproc_proxy_callf_unpack(l, "append", "o", NULL, mproc_value_int(1)), MPROC_EINVAL);
    TU_RC(mproc_manager_createf(m, "list", &p, "[o", mproc_value_int(1)), MPROC_EINVAL);
    TU_RC(mproc_manager_createf(NULL, "list", &p, "[o]", mproc_value_int(1)), MPROC_EINVAL);
    ck_assert_ptr_eq(p, (mproc_proxy *)1); /* not written */
    /* A result format that would point into the freed result is refused
     * before anything is sent. */
    const char *s = NULL;
    mproc_value *o = NULL;
    TU_RC(mproc_proxy_callf_unpack(l, "append", "i", "s", 9, &s), MPROC_EINVAL);
    TU_RC(mproc_proxy_callf_unpack(l, "append", "i", "[O s#]", 9, &o, &s, NULL), MPROC_EINVAL);
    TU_RC(mproc_proxy_callf_unpack(l, "append", "i", "{s:o}", 9, "k", &o), MPROC_EINVAL);
    TU_RC(mproc_proxy_callf_unpack(l, "append", "i", "y#?", 9, &s, NULL), MPROC_EINVAL);
    ck_assert_ptr_null(s);
    ck_assert_ptr_null(o);
    /* Nothing of the above reached the list. */
    ASSERT_COPY(l, "[1]");

    /* A key is only read: "{s:i}" is fine, and so is "{s#:O}". */
    mproc_proxy *d;
    TU_OK(mproc_manager_createf(m, "dict", &d, NULL));
    TU_OK(mproc_proxy_callf(d, "setitem", NULL, "sI", "big", (int64_t)1 << 40));
    int64_t big = 0;
    TU_OK(mproc_proxy_callf_unpack(d, "copy", NULL, "{s#:I}", "bigger", (size_t)3, &big));
    ck_assert(big == (int64_t)1 << 40);
    mproc_proxy_free(d);

    mproc_proxy_free(l);
    mproc_manager_free(m);
}
END_TEST

START_TEST(wrong_results_and_method_errors)
{
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_proxy *l, *v, *d;
    TU_OK(mproc_manager_createf(m, "list", &l, "[i s]", 1, "two"));
    TU_OK(mproc_manager_createf(m, "Value", &v, "sI", "l", (int64_t)1 << 40));
    TU_OK(mproc_manager_createf(m, "dict", &d, NULL));
    TU_OK(mproc_proxy_callf(d, "setitem", NULL, "si", "k", 1));

    /* The result's kind: MPROC_EINVAL, the variable untouched. */
    int n = 42;
    TU_RC(mproc_proxy_callf_unpack(l, "getitem", "i", "i", 1, &n), MPROC_EINVAL);
    TU_RC(mproc_proxy_callf_unpack(l, "copy", NULL, "i", &n), MPROC_EINVAL);
    TU_RC(mproc_proxy_callf_unpack(l, "copy", NULL, "[ii]", &n, &n), MPROC_EINVAL);
    TU_RC(mproc_proxy_callf_unpack(l, "copy", NULL, "[i]", &n), MPROC_EINVAL);   /* 2 items */
    TU_RC(mproc_proxy_callf_unpack(l, "append", "i", "i", 3, &n), MPROC_EINVAL); /* None */
    ck_assert_int_eq(n, 42);
    /* ... but the method has run. */
    ck_assert_int_eq(len_of(l), 3);
    TU_OK(mproc_proxy_callf_unpack(l, "copy", NULL, "[i O i]", &n, NULL, NULL));
    ck_assert_int_eq(n, 1);
    /* Range: an int over int's range. */
    n = 42;
    TU_RC(mproc_proxy_callf_unpack(v, "get", NULL, "i", &n), MPROC_ERANGE);
    ck_assert_int_eq(n, 42);
    unsigned u = 0;
    TU_RC(mproc_proxy_callf_unpack(v, "get", NULL, "u", &u), MPROC_ERANGE);
    /* A missing key. */
    TU_RC(mproc_proxy_callf_unpack(d, "copy", NULL, "{s:i}", "nope", &n), MPROC_ENOENT);
    TU_RC(mproc_proxy_callf_unpack(d, "copy", NULL, "{s:b}", "k", NULL), MPROC_EINVAL);

    /* The method's own failures stay MPROC_EMETHOD, with their code. */
    mproc_value *r = (mproc_value *)1;
    TU_RC(mproc_proxy_callf(l, "getitem", &r, "i", 99), MPROC_EMETHOD);
    ck_assert_ptr_null(r);
    int code = 0;
    const char *msg;
    mproc_manager_last_error(&code, &msg);
    ck_assert_int_eq(code, MPROC_ERANGE);
    TU_RC(mproc_proxy_callf_unpack(l, "getitem", "s", "i", "x", &n), MPROC_EMETHOD);
    TU_RC(mproc_proxy_callf(v, "set", NULL, "s", "not an int"), MPROC_EMETHOD);
    TU_RC(mproc_proxy_callf(l, "no_such_method", NULL, ""), MPROC_ENOENT);
    mproc_proxy *p = (mproc_proxy *)1;
    TU_RC(mproc_manager_createf(m, "no_such_type", &p, "i", 1), MPROC_ENOENT);
    TU_RC(mproc_manager_createf(m, "Value", &p, "ss", "i", "zero"), MPROC_EMETHOD);
    ck_assert_ptr_eq(p, (mproc_proxy *)1);

    mproc_proxy_free(d);
    mproc_proxy_free(v);
    mproc_proxy_free(l);
    mproc_manager_free(m);
}
END_TEST

/* Wrappers of one's own over the va_list forms, as over vprintf. */
static int my_create(mproc_manager *m, const char *typeid, mproc_proxy **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = mproc_manager_vcreatef(m, typeid, out, fmt, ap);
    va_end(ap);
    return rc;
}

static int my_call(mproc_proxy *p, const char *method, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = mproc_proxy_vcallf(p, method, NULL, fmt, ap);
    va_end(ap);
    return rc;
}

static int my_call_unpack(mproc_proxy *p, const char *method, const char *args_fmt,
                          const char *result_fmt, ...)
{
    va_list ap;
    va_start(ap, result_fmt);
    int rc = mproc_proxy_vcallf_unpack(p, method, args_fmt, result_fmt, ap);
    va_end(ap);
    return rc;
}

START_TEST(va_list_forms)
{
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_proxy *l;
    TU_OK(my_create(m, "list", &l, "[is]", 1, "a"));
    TU_OK(my_call(l, "append", "f", 2.5));
    ASSERT_COPY(l, "[1, 'a', 2.5]");
    int x = 0;
    TU_OK(my_call_unpack(l, "getitem", "i", "i", 0, &x));
    ck_assert_int_eq(x, 1);
    TU_RC(my_call(l, "append", "Z", 1), MPROC_EINVAL);
    TU_RC(my_call_unpack(l, "getitem", "i", "s", 1, &x), MPROC_EINVAL); /* borrowing */
    ASSERT_COPY(l, "[1, 'a', 2.5]");
    mproc_proxy_free(l);
    mproc_manager_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("manager_callf");
    TCase *tc = tu_tcase(s, "callf", 60);
    tcase_add_loop_test(tc, python_one_liners, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, bad_formats_send_nothing, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, wrong_results_and_method_errors, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, va_list_forms, 0, TU_NMETHODS);
    return tu_run(s);
}
