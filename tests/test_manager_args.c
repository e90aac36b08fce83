/* Managers refuse bad arguments as Python does, instead of reading them
 * as something else: negative timeouts other than MPROC_FOREVER, values out
 * of range of an Array's or a Value's typecode, a Semaphore's value that is
 * negative, too large or not an int. Under every start method. */
#include "mgrutil.h"

/* method(args) (args freed) fails with MPROC_EMETHOD, the method's own
 * code being code. */
static void fails(mproc_proxy *p, const char *method, mproc_value *args, int code)
{
    mproc_value *r = NULL;
    int rc = mproc_proxy_call(p, method, args, &r);
    char *s = args ? mproc_value_repr_alloc(args) : strdup("None");
    mproc_value_free(args);
    mproc_value_free(r);
    int got = 0;
    const char *msg = "";
    mproc_manager_last_error(&got, &msg);
    ck_assert_msg(rc == MPROC_EMETHOD && got == code, "%s(%s) -> %s (method code %s: %s), want %s",
                  method, s, mproc_err_name(rc), mproc_err_name(got), msg, mproc_err_name(code));
    free(s);
}

/* method(args) (args freed) succeeds; its result is true if it is a bool. */
static bool works(mproc_proxy *p, const char *method, mproc_value *args)
{
    mproc_value *r = NULL;
    int rc = mproc_proxy_call(p, method, args, &r);
    mproc_value_free(args);
    ck_assert_msg(rc == 0, "%s -> %s", method, mproc_err_name(rc));
    bool b = true;
    mproc_value_get_bool(r, &b);
    mproc_value_free(r);
    return b;
}

/* method() succeeds with an int: that int (-1 if it is not one). */
static int64_t int_of(mproc_proxy *p, const char *method)
{
    mproc_value *r = NULL;
    TU_OK(mproc_proxy_call(p, method, NULL, &r));
    int64_t v = -1;
    mproc_value_get_int(r, &v);
    mproc_value_free(r);
    return v;
}

/* create typeid(args) (args freed) fails with MPROC_EMETHOD and code. */
static void create_fails(mproc_manager *m, const char *typeid, mproc_value *args, int code)
{
    mproc_proxy *p = NULL;
    char *s = args ? mproc_value_repr_alloc(args) : strdup("None");
    int rc = create_with(m, typeid, args, &p);
    int got = 0;
    const char *msg = "";
    mproc_manager_last_error(&got, &msg);
    if (rc == 0) mproc_proxy_free(p);
    ck_assert_msg(rc == MPROC_EMETHOD && got == code, "%s(%s) -> %s (method code %s: %s), want %s",
                  typeid, s, mproc_err_name(rc), mproc_err_name(got), msg, mproc_err_name(code));
    free(s);
}

static mproc_proxy *made(mproc_manager *m, const char *typeid, mproc_value *args)
{
    mproc_proxy *p;
    int rc = create_with(m, typeid, args, &p);
    ck_assert_msg(rc == 0, "create %s -> %s", typeid, mproc_err_name(rc));
    return p;
}

/* Every optional timeout: a negative one other than MPROC_FOREVER is
 * MPROC_EINVAL (each object is ready, so a timeout read as "forever"
 * would succeed at once rather than hang). MPROC_FOREVER still waits. */
START_TEST(negative_timeouts)
{
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_proxy *q = made(m, "Queue", NULL), *jq = made(m, "JoinableQueue", NULL);
    mproc_proxy *lk = made(m, "Lock", NULL), *rl = made(m, "RLock", NULL);
    mproc_proxy *sm = made(m, "Semaphore", args1(I(5)));
    mproc_proxy *cd = made(m, "Condition", NULL), *ev = made(m, "Event", NULL);
    mproc_proxy *br = made(m, "Barrier", args1(I(1)));
    works(q, "put", args1(I(1)));
    works(ev, "set", NULL);
    const int64_t bad[] = {-2, -1000, INT64_MIN};
    for (int k = 0; k < 3; k++) {
        fails(q, "put", lst(I(2), I(bad[k]), NULL), MPROC_EINVAL);
        fails(q, "get", args1(I(bad[k])), MPROC_EINVAL);
        fails(jq, "join", args1(I(bad[k])), MPROC_EINVAL);
        fails(lk, "acquire", args1(I(bad[k])), MPROC_EINVAL);
        fails(rl, "acquire", args1(I(bad[k])), MPROC_EINVAL);
        fails(sm, "acquire", args1(I(bad[k])), MPROC_EINVAL);
        fails(cd, "acquire", args1(I(bad[k])), MPROC_EINVAL);
        fails(ev, "wait", args1(I(bad[k])), MPROC_EINVAL);
        fails(br, "wait", args1(I(bad[k])), MPROC_EINVAL);
    }
    /* nothing was taken by the refused calls */
    ck_assert_int_eq(int_of(q, "qsize"), 1);
    /* MPROC_FOREVER, nil and 0 keep their meanings */
    mproc_value *r = NULL;
    TU_OK(call_with(q, "get", args1(I(MPROC_FOREVER)), &r));
    mproc_value_free(r);
    ck_assert(works(lk, "acquire", args1(I(MPROC_FOREVER))));
    works(lk, "release", NULL);
    ck_assert(works(lk, "acquire", args1(mproc_value_nil())));
    ck_assert(works(sm, "acquire", args1(I(MPROC_FOREVER))));
    ck_assert(works(ev, "wait", args1(I(MPROC_FOREVER))));
    ck_assert(works(cd, "acquire", args1(I(MPROC_FOREVER))));
    ck_assert(!works(cd, "wait", args1(I(0))));
    works(cd, "release", NULL);
    works(br, "wait", args1(I(MPROC_FOREVER)));
    fails(q, "get", args1(S("soon")), MPROC_EINVAL);
    mproc_proxy *ps[] = {q, jq, lk, rl, sm, cd, ev, br};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) mproc_proxy_free(ps[k]);
    mproc_manager_free(m);
}
END_TEST

/* Values out of the typecode's range are refused (Python's
 * OverflowError) as MPROC_ERANGE, at creation and at set; those at the
 * edges are kept. */
START_TEST(typecode_ranges)
{
    static const struct {
        const char *code;
        int64_t lo, hi; /* the range; lo - 1 and hi + 1 are refused, unless at int64's end */
    } ranges[] = {
        {"b", -128, 127},
        {"B", 0, 255},
        {"h", -32768, 32767},
        {"H", 0, 65535},
        {"i", INT32_MIN, INT32_MAX},
        {"I", 0, UINT32_MAX},
        {"l", INT64_MIN, INT64_MAX},
        {"q", INT64_MIN, INT64_MAX},
        {"L", 0, INT64_MAX},
        {"Q", 0, INT64_MAX},
    };
    mproc_manager *m = mgr_start(_i, NULL);
    for (size_t k = 0; k < sizeof ranges / sizeof ranges[0]; k++) {
        const char *c = ranges[k].code;
        int64_t lo = ranges[k].lo, hi = ranges[k].hi;
        mproc_proxy *a = made(m, "Array", lst(S(c), lst(I(lo), I(hi), NULL), NULL));
        mproc_proxy *v = made(m, "Value", lst(S(c), I(hi), NULL));
        works(v, "set", args1(I(lo)));
        works(a, "setitem", lst(I(0), I(hi), NULL));
        if (lo > INT64_MIN) {
            create_fails(m, "Array", lst(S(c), lst(I(0), I(lo - 1), NULL), NULL), MPROC_ERANGE);
            create_fails(m, "Value", lst(S(c), I(lo - 1), NULL), MPROC_ERANGE);
            fails(v, "set", args1(I(lo - 1)), MPROC_ERANGE);
            fails(a, "setitem", lst(I(1), I(lo - 1), NULL), MPROC_ERANGE);
        }
        if (hi < INT64_MAX) {
            create_fails(m, "Array", lst(S(c), lst(I(hi + 1), NULL), NULL), MPROC_ERANGE);
            create_fails(m, "Value", lst(S(c), I(hi + 1), NULL), MPROC_ERANGE);
            fails(v, "set", args1(I(hi + 1)), MPROC_ERANGE);
            fails(a, "setitem", lst(I(1), I(hi + 1), NULL), MPROC_ERANGE);
        }
        /* above INT64_MAX: only the unsigned 64-bit codes */
        bool u64 = c[0] == 'L' || c[0] == 'Q';
        mproc_value *big = mproc_value_uint(UINT64_MAX);
        if (u64) {
            works(v, "set", args1(big));
        } else {
            fails(v, "set", args1(big), MPROC_ERANGE);
        }
        /* what was refused left the values as they were */
        mproc_value *r = NULL;
        TU_OK(mproc_proxy_call(a, "copy", NULL, &r));
        int64_t x = 0;
        TU_OK(mproc_value_get_int(mproc_value_list_get(r, 0), &x));
        ck_assert_int_eq(x, hi);
        TU_OK(mproc_value_get_int(mproc_value_list_get(r, 1), &x));
        ck_assert_int_eq(x, hi);
        mproc_value_free(r);
        mproc_proxy_free(v);
        mproc_proxy_free(a);
    }
    /* Python's example: Array('b', [1000]) */
    create_fails(m, "Array", lst(S("b"), lst(I(1000), NULL), NULL), MPROC_ERANGE);
    mproc_manager_free(m);
}
END_TEST

/* Semaphore(value): an int from 0 to INT32_MAX, absent or nil for 1. */
START_TEST(semaphore_values)
{
    mproc_manager *m = mgr_start(_i, NULL);
    const char *types[] = {"Semaphore", "BoundedSemaphore"};
    for (int t = 0; t < 2; t++) {
        create_fails(m, types[t], args1(I(-1)), MPROC_EINVAL);
        create_fails(m, types[t], args1(I(INT64_MIN)), MPROC_EINVAL);
        create_fails(m, types[t], args1(I((int64_t)1 << 40)), MPROC_EOVERFLOW);
        create_fails(m, types[t], args1(I((int64_t)INT32_MAX + 1)), MPROC_EOVERFLOW);
        create_fails(m, types[t], args1(mproc_value_uint(UINT64_MAX)), MPROC_EOVERFLOW);
        create_fails(m, types[t], args1(S("x")), MPROC_EINVAL);
        create_fails(m, types[t], args1(mproc_value_float(2.0)), MPROC_EINVAL);
        const int64_t good[] = {0, 1, 7, INT32_MAX};
        for (int k = 0; k < 4; k++) {
            mproc_proxy *s = made(m, types[t], args1(I(good[k])));
            ck_assert_int_eq(int_of(s, "get_value"), good[k]);
            mproc_proxy_free(s);
        }
        mproc_proxy *d1 = made(m, types[t], NULL),
                    *d2 = made(m, types[t], args1(mproc_value_nil()));
        ck_assert_int_eq(int_of(d2, "get_value"), 1);
        mproc_proxy_free(d2);
        mproc_proxy_free(d1);
    }
    mproc_manager_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("manager_args");
    TCase *tc = tu_tcase(s, "args", 60);
    tcase_add_loop_test(tc, negative_timeouts, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, typecode_ranges, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, semaphore_values, 0, TU_NMETHODS);
    return tu_run(s);
}
