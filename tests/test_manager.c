/* Managers: built-in types, proxies across processes, custom types,
 * references, remote (TCP) managers and shutdown, under every start method.
 * Hostile clients are in test_manager_hostile.c. */
#include "mgrutil.h"

#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdarg.h>
#include <stdatomic.h>

static int64_t as_int(mproc_value *v)
{
    int64_t x = -999;
    mproc_value_get_int(v, &x);
    mproc_value_free(v);
    return x;
}

/* Calls method(args) (args freed), asserting success; the result. */
static mproc_value *callv(mproc_proxy *p, const char *method, mproc_value *args)
{
    mproc_value *r = NULL;
    int rc = mproc_proxy_call(p, method, args, &r);
    mproc_value_free(args);
    ck_assert_msg(rc == 0, "%s -> %s", method, mproc_err_name(rc));
    return r;
}

static int64_t call_int(mproc_proxy *p, const char *method, mproc_value *args)
{
    return as_int(callv(p, method, args));
}

static bool call_bool(mproc_proxy *p, const char *method, mproc_value *args)
{
    mproc_value *r = callv(p, method, args);
    bool b = false;
    ck_assert_msg(mproc_value_get_bool(r, &b) == 0, "%s: not a bool", method);
    mproc_value_free(r);
    return b;
}

/* Calls and compares the result's repr with want ("None" for no result). */
static void call_repr(mproc_proxy *p, const char *method, mproc_value *args, const char *want)
{
    mproc_value *r = callv(p, method, args);
    char *s = r ? mproc_value_repr_alloc(r) : strdup("None");
    ck_assert_msg(strcmp(s, want) == 0, "%s() gave %s, want %s", method, s, want);
    free(s);
    mproc_value_free(r);
}

static void call_ok(mproc_proxy *p, const char *method, mproc_value *args)
{
    mproc_value_free(callv(p, method, args));
}

/* Asserts method(args) fails with MPROC_EMETHOD, the method's code being
 * code and its message containing msg (if not NULL). */
static void call_fails(mproc_proxy *p, const char *method, mproc_value *args, int code,
                       const char *msg)
{
    mproc_value *r = NULL;
    int rc = mproc_proxy_call(p, method, args, &r);
    mproc_value_free(args);
    mproc_value_free(r);
    ck_assert_msg(rc == MPROC_EMETHOD, "%s -> %s, want MPROC_EMETHOD", method, mproc_err_name(rc));
    int got;
    const char *m;
    mproc_manager_last_error(&got, &m);
    ck_assert_msg(got == code, "%s: method code %s, want %s", method, mproc_err_name(got),
                  mproc_err_name(code));
    if (msg) ck_assert_msg(strstr(m, msg), "%s: message '%s' lacks '%s'", method, m, msg);
}

static mproc_proxy *create(mproc_manager *m, const char *typeid, mproc_value *args)
{
    mproc_proxy *p;
    int rc = mproc_manager_create(m, typeid, args, &p);
    mproc_value_free(args);
    ck_assert_msg(rc == 0, "create %s -> %s", typeid, mproc_err_name(rc));
    return p;
}

/* ---- children ---------------------------------------------------------------------------- */

/* What a child gets: the manager's address, a key (none: the family's),
 * and up to three object references, each CBOR-encoded. */
typedef struct child_arg {
    char address[256];
    uint8_t key[32];
    size_t key_len;
    int k;
    size_t reflen[3];
    uint8_t ref[3][64];
} child_arg;

static void put_ref(child_arg *a, int n, mproc_proxy *p)
{
    mproc_value *v = mproc_proxy_ref(p);
    void *buf;
    size_t len;
    TU_OK(mproc_value_encode(v, &buf, &len));
    mproc_value_free(v);
    ck_assert_uint_le(len, sizeof a->ref[n]);
    memcpy(a->ref[n], buf, len);
    a->reflen[n] = len;
    free(buf);
}

static child_arg make_arg(mproc_manager *m, mproc_proxy *p0, mproc_proxy *p1, mproc_proxy *p2)
{
    child_arg a = {0};
    snprintf(a.address, sizeof a.address, "%s", mproc_manager_address(m));
    if (p0) put_ref(&a, 0, p0);
    if (p1) put_ref(&a, 1, p1);
    if (p2) put_ref(&a, 2, p2);
    return a;
}

/* In a child: connects (0 or nonzero). */
static int child_connect(const child_arg *a, mproc_manager **m)
{
    return mproc_manager_connect(m, a->address, a->key_len ? a->key : NULL, a->key_len);
}

/* In a child: a proxy for reference n (NULL on failure). */
static mproc_proxy *child_proxy(mproc_manager *m, const child_arg *a, int n)
{
    mproc_value *v;
    if (mproc_value_decode(a->ref[n], a->reflen[n], NULL, &v)) return NULL;
    mproc_proxy *p = NULL;
    if (mproc_proxy_from_value(m, v, &p)) p = NULL;
    mproc_value_free(v);
    return p;
}

/* In a child: method(args) (args freed) gives a bool true result. */
static bool child_true(mproc_proxy *p, const char *method, mproc_value *args)
{
    mproc_value *r = NULL;
    int rc = mproc_proxy_call(p, method, args, &r);
    mproc_value_free(args);
    bool b = false;
    if (rc || mproc_value_get_bool(r, &b)) b = false;
    mproc_value_free(r);
    return b;
}

static mproc_process *start_child(mproc_target_fn fn, child_arg *a, int i)
{
    mproc_process *p;
    TU_OK(mproc_process_new(&p, fn, a, sizeof *a,
                            &(mproc_process_opts){.start_method = tu_methods[i]}));
    TU_OK(mproc_process_start(p));
    return p;
}

static int join_child(mproc_process *p)
{
    TU_OK(mproc_process_join(p, 30000));
    int code = -1000;
    TU_OK(mproc_process_exitcode(p, &code));
    TU_OK(mproc_process_free(p));
    return code;
}

/* ---- the first tests ---------------------------------------------------------------------- */

START_TEST(dict_list_and_nesting)
{
    mproc_manager *m = mgr_start(_i, NULL);
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

/* A child connects on its own (seed 003). */
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
    mproc_manager *m = mgr_start(_i, NULL);
    child_arg a = {.k = 1};
    snprintf(a.address, sizeof a.address, "%s", mproc_manager_address(m));
    ck_assert_int_eq(tu_run_child(appender, &a, sizeof a, tu_methods[_i]), 0);
    /* a wrong key is refused */
    mproc_manager *bad;
    TU_RC(mproc_manager_connect(&bad, a.address, "nope", 4), MPROC_EAUTH);
    mproc_manager_free(m);
}
END_TEST

/* ---- built-in containers ------------------------------------------------------------------ */

START_TEST(list_calls)
{
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_proxy *l = create(m, "list", args1(lst(I(1), I(2), NULL)));
    ck_assert_str_eq(mproc_proxy_typeid(l), "list");
    call_ok(l, "append", args1(I(3)));
    call_ok(l, "extend", args1(lst(I(4), I(5), NULL)));
    call_repr(l, "copy", NULL, "[1, 2, 3, 4, 5]");
    ck_assert_int_eq(call_int(l, "len", NULL), 5);
    ck_assert_int_eq(call_int(l, "getitem", args1(I(-1))), 5);
    ck_assert_int_eq(call_int(l, "getitem", args1(I(-5))), 1);
    call_fails(l, "getitem", args1(I(-6)), MPROC_ERANGE, "out of range");
    call_fails(l, "getitem", args1(I(5)), MPROC_ERANGE, "out of range");
    call_fails(l, "getitem", args1(S("x")), MPROC_EINVAL, "int");
    call_ok(l, "setitem", lst(I(-2), S("four"), NULL));
    call_fails(l, "setitem", lst(I(9), I(0), NULL), MPROC_ERANGE, NULL);
    call_ok(l, "delitem", args1(I(-1)));
    call_fails(l, "delitem", args1(I(-9)), MPROC_ERANGE, NULL);
    call_repr(l, "copy", NULL, "[1, 2, 3, 'four']");
    call_repr(l, "getslice", lst(I(1), I(3), NULL), "[2, 3]");
    call_repr(l, "getslice", lst(I(-2), mproc_value_nil(), NULL), "[3, 'four']");
    call_repr(l, "getslice", lst(I(3), I(1), NULL), "[]");
    call_repr(l, "getslice", lst(I(-100), I(100), NULL), "[1, 2, 3, 'four']");
    call_ok(l, "setslice", lst(I(0), I(2), lst(S("a"), S("b"), S("c"), NULL), NULL));
    call_repr(l, "copy", NULL, "['a', 'b', 'c', 3, 'four']");
    call_ok(l, "setslice", lst(I(-2), mproc_value_nil(), lst(NULL), NULL));
    call_repr(l, "copy", NULL, "['a', 'b', 'c']");
    call_repr(l, "pop", NULL, "'c'");
    call_repr(l, "pop", args1(I(0)), "'a'");
    call_repr(l, "pop", args1(I(-1)), "'b'");
    call_fails(l, "pop", NULL, MPROC_ERANGE, "empty");
    call_ok(l, "insert", lst(I(0), I(10), NULL));
    call_ok(l, "insert", lst(I(100), I(30), NULL));
    call_ok(l, "insert", lst(I(-1), I(20), NULL)); /* before the last, as Python */
    call_ok(l, "insert", lst(I(-100), I(0), NULL));
    call_repr(l, "copy", NULL, "[0, 10, 20, 30]");
    call_ok(l, "append", args1(I(10)));
    ck_assert_int_eq(call_int(l, "count", args1(I(10))), 2);
    ck_assert_int_eq(call_int(l, "count", args1(I(99))), 0);
    ck_assert_int_eq(call_int(l, "index", args1(I(10))), 1);
    call_fails(l, "index", args1(I(99)), MPROC_ENOENT, "not in list");
    call_ok(l, "remove", args1(I(10)));
    call_repr(l, "copy", NULL, "[0, 20, 30, 10]");
    call_fails(l, "remove", args1(I(99)), MPROC_ENOENT, "not in list");
    ck_assert(call_bool(l, "contains", args1(I(30))));
    ck_assert(!call_bool(l, "contains", args1(S("30"))));
    call_ok(l, "reverse", NULL);
    call_repr(l, "copy", NULL, "[10, 30, 20, 0]");
    call_ok(l, "sort", NULL);
    call_repr(l, "copy", NULL, "[0, 10, 20, 30]");
    call_ok(l, "append", args1(mproc_value_float(15.5)));
    call_ok(l, "sort", NULL); /* ints and floats order together */
    call_repr(l, "copy", NULL, "[0, 10, 15.5, 20, 30]");
    mproc_proxy *s = create(m, "list", args1(lst(S("pear"), S("apple"), S("fig"), NULL)));
    call_ok(s, "sort", NULL);
    call_repr(s, "copy", NULL, "['apple', 'fig', 'pear']");
    call_ok(s, "append", args1(I(1)));
    call_fails(s, "sort", NULL, MPROC_EINVAL, "order");
    ck_assert_int_eq(call_int(s, "len", NULL), 4); /* nothing lost */
    /* the constructor checks its argument */
    mproc_proxy *bad;
    TU_RC(create_with(m, "list", args1(I(3)), &bad), MPROC_EMETHOD);
    mproc_proxy_free(s);
    mproc_proxy_free(l);
    mproc_manager_free(m);
}
END_TEST

START_TEST(dict_calls)
{
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_proxy *d = create(m, "dict", NULL);
    call_ok(d, "setitem", lst(S("a"), I(1), NULL));
    call_ok(d, "setitem", lst(I(2), S("two"), NULL));
    call_ok(d, "setitem", lst(S("a"), I(10), NULL)); /* keeps its place */
    ck_assert_int_eq(call_int(d, "getitem", args1(S("a"))), 10);
    call_fails(d, "getitem", args1(S("zz")), MPROC_ENOENT, "KeyError");
    call_repr(d, "get", args1(S("zz")), "None");
    call_repr(d, "get", lst(S("zz"), I(7), NULL), "7");
    call_repr(d, "get", lst(I(2), I(7), NULL), "'two'");
    call_repr(d, "keys", NULL, "['a', 2]");
    call_repr(d, "values", NULL, "[10, 'two']");
    call_repr(d, "items", NULL, "[['a', 10], [2, 'two']]");
    mproc_value *up = mproc_value_map();
    mproc_value_map_set_str(up, "b", I(20));
    mproc_value_map_set_str(up, "a", I(11));
    call_ok(d, "update", args1(up));
    call_fails(d, "update", args1(I(1)), MPROC_EINVAL, NULL);
    call_repr(d, "copy", NULL, "{'a': 11, 2: 'two', 'b': 20}");
    ck_assert_int_eq(call_int(d, "len", NULL), 3);
    ck_assert(call_bool(d, "contains", args1(I(2))));
    ck_assert(!call_bool(d, "contains", args1(S("2"))));
    call_repr(d, "pop", args1(S("b")), "20");
    call_fails(d, "pop", args1(S("b")), MPROC_ENOENT, "KeyError");
    call_repr(d, "pop", lst(S("b"), S("dflt"), NULL), "'dflt'");
    call_repr(d, "setdefault", lst(S("c"), I(3), NULL), "3");
    call_repr(d, "setdefault", lst(S("c"), I(4), NULL), "3");
    call_repr(d, "setdefault", args1(S("n")), "None");
    ck_assert(call_bool(d, "contains", args1(S("n"))));
    call_ok(d, "delitem", args1(S("n")));
    call_fails(d, "delitem", args1(S("n")), MPROC_ENOENT, "KeyError");
    call_repr(d, "copy", NULL, "{'a': 11, 2: 'two', 'c': 3}");
    call_ok(d, "clear", NULL);
    ck_assert_int_eq(call_int(d, "len", NULL), 0);
    call_repr(d, "copy", NULL, "{}");
    mproc_value *init = mproc_value_map();
    mproc_value_map_set_str(init, "x", lst(I(1), NULL));
    mproc_proxy *d2 = create(m, "dict", args1(init));
    call_repr(d2, "getitem", args1(S("x")), "[1]");
    mproc_proxy *bad;
    TU_RC(create_with(m, "dict", args1(I(1)), &bad), MPROC_EMETHOD); /* dict(1) */
    mproc_proxy_free(d2);
    mproc_proxy_free(d);
    mproc_manager_free(m);
}
END_TEST

START_TEST(set_and_namespace_calls)
{
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_proxy *s = create(m, "set", args1(lst(I(1), I(2), I(2), NULL)));
    ck_assert_int_eq(call_int(s, "len", NULL), 2);
    call_ok(s, "add", args1(S("x")));
    call_ok(s, "add", args1(I(1)));
    ck_assert_int_eq(call_int(s, "len", NULL), 3);
    ck_assert(call_bool(s, "contains", args1(S("x"))));
    ck_assert(!call_bool(s, "contains", args1(I(3))));
    call_ok(s, "discard", args1(I(3))); /* absent: fine */
    call_ok(s, "discard", args1(I(2)));
    call_ok(s, "remove", args1(I(1)));
    call_fails(s, "remove", args1(I(1)), MPROC_ENOENT, NULL);
    call_repr(s, "copy", NULL, "['x']");
    call_ok(s, "clear", NULL);
    ck_assert_int_eq(call_int(s, "len", NULL), 0);

    mproc_proxy *ns = create(m, "Namespace", NULL);
    call_ok(ns, "setattr", lst(S("x"), I(1), NULL));
    call_ok(ns, "setattr", lst(S("y"), S("why"), NULL));
    call_ok(ns, "setattr", lst(S("x"), I(2), NULL));
    ck_assert_int_eq(call_int(ns, "getattr", args1(S("x"))), 2);
    call_ok(ns, "delattr", args1(S("x")));
    call_fails(ns, "getattr", args1(S("x")), MPROC_ENOENT, NULL);
    call_fails(ns, "delattr", args1(S("x")), MPROC_ENOENT, NULL);
    call_repr(ns, "copy", NULL, "{'y': 'why'}");
    TU_RC(mproc_proxy_call(ns, "keys", NULL, NULL), MPROC_ENOENT); /* not a dict method here */
    mproc_proxy_free(ns);
    mproc_proxy_free(s);
    mproc_manager_free(m);
}
END_TEST

START_TEST(value_and_array_calls)
{
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_proxy *vi = create(m, "Value", lst(S("i"), I(5), NULL));
    ck_assert_int_eq(call_int(vi, "get", NULL), 5);
    call_ok(vi, "set", args1(I(-7)));
    ck_assert_int_eq(call_int(vi, "get", NULL), -7);
    call_fails(vi, "set", args1(mproc_value_float(1.5)), MPROC_EINVAL, "typecode");
    call_fails(vi, "set", args1(S("x")), MPROC_EINVAL, "typecode");
    call_fails(vi, "set", NULL, MPROC_EINVAL, "typecode");
    ck_assert_int_eq(call_int(vi, "get", NULL), -7);
    mproc_proxy *vd = create(m, "Value", lst(S("d"), mproc_value_float(1.25), NULL));
    double d = 0;
    mproc_value *r = callv(vd, "get", NULL);
    TU_OK(mproc_value_get_float(r, &d));
    mproc_value_free(r);
    ck_assert_double_eq(d, 1.25);
    call_ok(vd, "set", args1(I(2))); /* an int is a fine double */
    r = callv(vd, "get", NULL);
    TU_OK(mproc_value_get_float(r, &d));
    mproc_value_free(r);
    ck_assert_double_eq(d, 2.0);
    call_fails(vd, "set", args1(S("2")), MPROC_EINVAL, NULL);
    mproc_proxy *v0 = create(m, "Value", args1(S("i")));
    ck_assert_int_eq(call_int(v0, "get", NULL), 0);
    mproc_proxy *bad;
    TU_RC(create_with(m, "Value", lst(S("z"), I(1), NULL), &bad), MPROC_EMETHOD);
    TU_RC(create_with(m, "Value", lst(S("i"), S("one"), NULL), &bad), MPROC_EMETHOD);
    TU_RC(mproc_manager_create(m, "Value", NULL, &bad), MPROC_EMETHOD);

    mproc_proxy *a = create(m, "Array", lst(S("i"), lst(I(1), I(2), I(3), NULL), NULL));
    ck_assert_int_eq(call_int(a, "len", NULL), 3);
    ck_assert_int_eq(call_int(a, "getitem", args1(I(-1))), 3);
    call_ok(a, "setitem", lst(I(0), I(9), NULL));
    call_fails(a, "setitem", lst(I(1), S("x"), NULL), MPROC_EINVAL, "typecode");
    call_fails(a, "setitem", lst(I(3), I(1), NULL), MPROC_ERANGE, NULL);
    call_fails(a, "getitem", args1(I(3)), MPROC_ERANGE, NULL);
    call_repr(a, "copy", NULL, "[9, 2, 3]");
    TU_RC(call_with(a, "append", args1(I(1)), NULL), MPROC_ENOENT); /* fixed size */
    TU_RC(create_with(m, "Array", lst(S("i"), lst(S("x"), NULL), NULL), &bad), MPROC_EMETHOD);
    TU_RC(create_with(m, "Array", lst(S("i"), I(3), NULL), &bad), MPROC_EMETHOD);
    mproc_proxy_free(a);
    mproc_proxy_free(v0);
    mproc_proxy_free(vd);
    mproc_proxy_free(vi);
    mproc_manager_free(m);
}
END_TEST

/* ---- queues ----------------------------------------------------------------------------- */

static int queue_putter(void *arg)
{
    child_arg *a = arg;
    mproc_manager *m;
    if (child_connect(a, &m)) return 1;
    mproc_proxy *q = child_proxy(m, a, 0);
    int rc = q ? 0 : 2;
    for (int k = 0; k < a->k && !rc; k++) {
        mproc_value *args = args1(I(k));
        if (mproc_proxy_call(q, "put", args, NULL)) rc = 3;
        mproc_value_free(args);
    }
    mproc_proxy_free(q);
    mproc_manager_free(m);
    return rc;
}

START_TEST(queue_calls)
{
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_proxy *q = create(m, "Queue", args1(I(2)));
    ck_assert(call_bool(q, "empty", NULL));
    ck_assert(!call_bool(q, "full", NULL));
    call_fails(q, "get", args1(I(50)), MPROC_ETIMEDOUT, "Empty");
    call_ok(q, "put", args1(S("a")));
    call_ok(q, "put", lst(lst(I(1), I(2), NULL), I(50), NULL));
    ck_assert(call_bool(q, "full", NULL));
    ck_assert_int_eq(call_int(q, "qsize", NULL), 2);
    call_fails(q, "put", lst(S("c"), I(50), NULL), MPROC_ETIMEDOUT, "Full");
    call_fails(q, "put", NULL, MPROC_EINVAL, NULL);
    call_repr(q, "get", NULL, "'a'");
    call_repr(q, "get", args1(I(50)), "[1, 2]");
    ck_assert(call_bool(q, "empty", NULL));
    TU_RC(mproc_proxy_call(q, "task_done", NULL, NULL), MPROC_ENOENT); /* not joinable */

    /* a child puts, the parent gets */
    child_arg a = make_arg(m, q, NULL, NULL);
    a.k = 5;
    mproc_process *p = start_child(queue_putter, &a, _i);
    for (int k = 0; k < 5; k++) ck_assert_int_eq(call_int(q, "get", args1(I(10000))), k);
    ck_assert_int_eq(join_child(p), 0);

    mproc_proxy *jq = create(m, "JoinableQueue", NULL);
    call_ok(jq, "put", args1(I(1)));
    call_ok(jq, "put", args1(I(2)));
    ck_assert(!call_bool(jq, "full", NULL)); /* no maxsize */
    call_ok(jq, "get", NULL);
    call_ok(jq, "task_done", NULL);
    call_fails(jq, "join", args1(I(50)), MPROC_ETIMEDOUT, NULL);
    call_ok(jq, "get", NULL);
    call_ok(jq, "task_done", NULL);
    call_ok(jq, "join", args1(I(1000)));
    call_ok(jq, "join", NULL);
    mproc_value *r = NULL;
    TU_RC(mproc_proxy_call(jq, "task_done", NULL, &r), MPROC_EMETHOD); /* too many */
    mproc_proxy_free(jq);
    mproc_proxy_free(q);
    mproc_manager_free(m);
}
END_TEST

/* ---- locks and semaphores ------------------------------------------------------------------ */

/* A second connection of this process: its calls run on another server
 * thread, as another process's would. */
static mproc_manager *second(mproc_manager *m)
{
    mproc_manager *m2;
    TU_OK(mproc_manager_connect(&m2, mproc_manager_address(m), NULL, 0));
    return m2;
}

static mproc_proxy *same_object(mproc_manager *m2, mproc_proxy *p)
{
    mproc_value *ref = mproc_proxy_ref(p);
    mproc_proxy *p2;
    TU_OK(mproc_proxy_from_value(m2, ref, &p2));
    mproc_value_free(ref);
    return p2;
}

static int lock_holder_killed(void *arg)
{
    child_arg *a = arg;
    mproc_manager *m;
    if (child_connect(a, &m)) return 1;
    mproc_proxy *l = child_proxy(m, a, 0), *ev = child_proxy(m, a, 1);
    if (!l || !ev) return 2;
    if (!child_true(l, "acquire", NULL)) return 3;
    mproc_proxy_call(ev, "set", NULL, NULL);
    for (;;) pause(); /* killed holding the lock */
}

START_TEST(lock_calls)
{
    mproc_manager *m = mgr_start(_i, NULL), *m2 = second(m);
    const char *types[] = {"Lock", "RLock"};
    for (int t = 0; t < 2; t++) {
        mproc_proxy *l = create(m, types[t], NULL), *l2 = same_object(m2, l);
        ck_assert(call_bool(l, "acquire", NULL));
        if (t == 1) ck_assert(call_bool(l, "acquire", args1(I(0)))); /* recursive */
        ck_assert(!call_bool(l2, "acquire", args1(I(50))));          /* timeout: false */
        ck_assert(!call_bool(l2, "acquire", args1(I(0))));
        if (t == 1) {
            call_ok(l, "release", NULL);
            ck_assert(!call_bool(l2, "acquire", args1(I(20)))); /* still held once */
            call_fails(l2, "release", NULL, MPROC_EPERM, NULL); /* not the owner */
        }
        call_ok(l, "release", NULL);
        ck_assert(call_bool(l2, "acquire", args1(I(1000))));
        call_ok(l2, "release", NULL);
        call_fails(l, "release", NULL, MPROC_EPERM, NULL); /* not held */
        mproc_proxy_free(l2);
        mproc_proxy_free(l);
    }
    /* a client killed holding a Lock: the next acquire gets it */
    mproc_proxy *l = create(m, "Lock", NULL), *ev = create(m, "Event", NULL);
    child_arg a = make_arg(m, l, ev, NULL);
    mproc_process *p = start_child(lock_holder_killed, &a, _i);
    ck_assert(call_bool(ev, "wait", args1(I(20000))));
    ck_assert(!call_bool(l, "acquire", args1(I(20))));
    TU_OK(mproc_process_kill(p));
    ck_assert_int_eq(join_child(p), -SIGKILL);
    ck_assert(call_bool(l, "acquire", args1(I(5000))));
    call_ok(l, "release", NULL);
    mproc_proxy_free(ev);
    mproc_proxy_free(l);
    mproc_manager_free(m2);
    mproc_manager_free(m);
}
END_TEST

START_TEST(semaphore_calls)
{
    mproc_manager *m = mgr_start(_i, NULL), *m2 = second(m);
    mproc_proxy *s = create(m, "Semaphore", args1(I(2)));
    ck_assert_int_eq(call_int(s, "get_value", NULL), 2);
    ck_assert(call_bool(s, "acquire", NULL));
    ck_assert(call_bool(s, "acquire", args1(I(0))));
    ck_assert(!call_bool(s, "acquire", args1(I(50))));
    ck_assert_int_eq(call_int(s, "get_value", NULL), 0);
    mproc_proxy *s2 = same_object(m2, s);
    call_ok(s2, "release", NULL); /* anyone may release a semaphore */
    ck_assert(call_bool(s, "acquire", args1(I(1000))));
    for (int k = 0; k < 3; k++) call_ok(s, "release", NULL); /* above the start: fine */
    ck_assert_int_eq(call_int(s, "get_value", NULL), 3);
    mproc_proxy *dflt = create(m, "Semaphore", NULL);
    ck_assert_int_eq(call_int(dflt, "get_value", NULL), 1);

    mproc_proxy *b = create(m, "BoundedSemaphore", args1(I(1)));
    mproc_value *r = NULL;
    TU_RC(mproc_proxy_call(b, "release", NULL, &r), MPROC_EMETHOD); /* over-release */
    ck_assert(call_bool(b, "acquire", NULL));
    ck_assert(!call_bool(b, "acquire", args1(I(10))));
    call_ok(b, "release", NULL);
    TU_RC(mproc_proxy_call(b, "release", NULL, &r), MPROC_EMETHOD);
    ck_assert_int_eq(call_int(b, "get_value", NULL), 1);
    mproc_proxy_free(b);
    mproc_proxy_free(dflt);
    mproc_proxy_free(s2);
    mproc_proxy_free(s);
    mproc_manager_free(m2);
    mproc_manager_free(m);
}
END_TEST

/* ---- Condition, Event, Barrier across processes ---------------------------------------------- */

static int cond_waiter(void *arg)
{
    child_arg *a = arg;
    mproc_manager *m;
    if (child_connect(a, &m)) return 1;
    mproc_proxy *c = child_proxy(m, a, 0), *ready = child_proxy(m, a, 1);
    if (!c || !ready) return 2;
    int rc = 0;
    if (!child_true(c, "acquire", NULL)) rc = 3;
    if (!rc && mproc_proxy_call(ready, "set", NULL, NULL)) rc = 4;
    if (!rc && !child_true(c, "wait", args1(I(20000)))) rc = 5; /* notified */
    if (!rc && mproc_proxy_call(c, "release", NULL, NULL)) rc = 6;
    mproc_proxy_free(ready);
    mproc_proxy_free(c);
    mproc_manager_free(m);
    return rc;
}

START_TEST(condition_across_processes)
{
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_proxy *c = create(m, "Condition", NULL), *ready = create(m, "Event", NULL);
    /* alone: wait times out (false), notify without waiters is fine */
    ck_assert(call_bool(c, "acquire", NULL));
    ck_assert(!call_bool(c, "wait", args1(I(30))));
    call_ok(c, "notify", NULL);
    call_ok(c, "notify_all", NULL);
    call_ok(c, "release", NULL);
    mproc_value *r = NULL;
    TU_RC(call_with(c, "wait", args1(I(10)), &r), MPROC_EMETHOD); /* not held */

    child_arg a = make_arg(m, c, ready, NULL);
    mproc_process *p = start_child(cond_waiter, &a, _i);
    ck_assert(call_bool(ready, "wait", args1(I(20000))));
    /* the child holds the lock until it waits */
    ck_assert(call_bool(c, "acquire", args1(I(20000))));
    call_ok(c, "notify", args1(I(1)));
    call_ok(c, "release", NULL);
    ck_assert_int_eq(join_child(p), 0);
    mproc_proxy_free(ready);
    mproc_proxy_free(c);
    mproc_manager_free(m);
}
END_TEST

static int event_waiter(void *arg)
{
    child_arg *a = arg;
    mproc_manager *m;
    if (child_connect(a, &m)) return 1;
    mproc_proxy *ev = child_proxy(m, a, 0), *done = child_proxy(m, a, 1);
    if (!ev || !done) return 2;
    int rc = child_true(ev, "wait", args1(I(20000))) ? 0 : 3;
    if (!rc && !child_true(ev, "is_set", NULL)) rc = 4;
    if (!rc && mproc_proxy_call(done, "set", NULL, NULL)) rc = 5;
    mproc_proxy_free(done);
    mproc_proxy_free(ev);
    mproc_manager_free(m);
    return rc;
}

START_TEST(event_across_processes)
{
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_proxy *ev = create(m, "Event", NULL), *done = create(m, "Event", NULL);
    ck_assert(!call_bool(ev, "is_set", NULL));
    ck_assert(!call_bool(ev, "wait", args1(I(20))));
    child_arg a = make_arg(m, ev, done, NULL);
    mproc_process *p = start_child(event_waiter, &a, _i);
    ck_assert(!call_bool(done, "wait", args1(I(100)))); /* the child waits */
    call_ok(ev, "set", NULL);
    ck_assert(call_bool(done, "wait", args1(I(20000))));
    ck_assert_int_eq(join_child(p), 0);
    call_ok(ev, "clear", NULL);
    ck_assert(!call_bool(ev, "is_set", NULL));
    mproc_proxy_free(done);
    mproc_proxy_free(ev);
    mproc_manager_free(m);
}
END_TEST

static int barrier_party(void *arg)
{
    child_arg *a = arg;
    mproc_manager *m;
    if (child_connect(a, &m)) return 1;
    mproc_proxy *b = child_proxy(m, a, 0);
    if (!b) return 2;
    mproc_value *args = args1(I(20000)), *r = NULL;
    int rc = mproc_proxy_call(b, "wait", args, &r);
    mproc_value_free(args);
    int64_t idx = -1;
    if (rc || mproc_value_get_int(r, &idx) || idx < 0 || idx > 2) rc = 3;
    mproc_value_free(r);
    mproc_proxy_free(b);
    mproc_manager_free(m);
    return rc ? rc : 10 + (int)idx;
}

START_TEST(barrier_across_processes)
{
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_proxy *b = create(m, "Barrier", args1(I(3)));
    ck_assert_int_eq(call_int(b, "parties", NULL), 3);
    ck_assert_int_eq(call_int(b, "n_waiting", NULL), 0);
    ck_assert(!call_bool(b, "broken", NULL));
    child_arg a = make_arg(m, b, NULL, NULL);
    mproc_process *p1 = start_child(barrier_party, &a, _i);
    mproc_process *p2 = start_child(barrier_party, &a, _i);
    int64_t mine = call_int(b, "wait", args1(I(20000)));
    int c1 = join_child(p1), c2 = join_child(p2);
    ck_assert_msg(c1 >= 10 && c2 >= 10, "children: %d %d", c1, c2);
    /* the three got the indexes 0, 1 and 2 */
    ck_assert_int_eq((1 << mine) | (1 << (c1 - 10)) | (1 << (c2 - 10)), 7);
    /* alone, a wait times out and breaks the barrier */
    call_fails(b, "wait", args1(I(30)), MPROC_ETIMEDOUT, "BrokenBarrierError");
    ck_assert(call_bool(b, "broken", NULL));
    call_ok(b, "reset", NULL);
    ck_assert(!call_bool(b, "broken", NULL));
    call_ok(b, "abort", NULL);
    call_fails(b, "wait", args1(I(1000)), MPROC_EBROKEN, "BrokenBarrierError");
    mproc_proxy *bad;
    TU_RC(mproc_manager_create(m, "Barrier", NULL, &bad), MPROC_EMETHOD);
    mproc_proxy_free(b);
    mproc_manager_free(m);
}
END_TEST

/* ---- proxies across processes, nesting ---------------------------------------------------- */

/* Works on the parent's dict (ref 0) holding the parent's list, and on a
 * queue (ref 1) carrying a reference to another list. */
static int nested_worker(void *arg)
{
    child_arg *a = arg;
    mproc_manager *m;
    if (child_connect(a, &m)) return 1;
    mproc_proxy *d = child_proxy(m, a, 0), *q = child_proxy(m, a, 1);
    if (!d || !q) return 2;
    int rc = 0;
    mproc_value *args = args1(S("numbers")), *got = NULL;
    mproc_proxy *l = NULL;
    if (mproc_proxy_call(d, "getitem", args, &got) || mproc_proxy_from_value(m, got, &l)) rc = 3;
    mproc_value_free(args);
    mproc_value_free(got);
    args = S("from child");
    if (!rc && mproc_proxy_append(l, args)) rc = 4;
    mproc_value_free(args);
    mproc_proxy_free(l);
    /* the queue gives a reference: a proxy here */
    args = args1(I(10000));
    got = NULL;
    mproc_proxy *l2 = NULL;
    if (!rc && (mproc_proxy_call(q, "get", args, &got) || mproc_proxy_from_value(m, got, &l2)))
        rc = 5;
    mproc_value_free(args);
    mproc_value_free(got);
    args = I(a->k);
    if (!rc && mproc_proxy_append(l2, args)) rc = 6;
    mproc_value_free(args);
    mproc_proxy_free(l2);
    /* a new list, put into the dict by reference */
    mproc_proxy *l3 = NULL;
    if (!rc && mproc_manager_create(m, "list", NULL, &l3)) rc = 7;
    args = lst(S("child list"), mproc_proxy_ref(l3), NULL);
    if (!rc && mproc_proxy_call(d, "setitem", args, NULL)) rc = 8;
    mproc_value_free(args);
    args = S("made here");
    if (!rc && mproc_proxy_append(l3, args)) rc = 9;
    mproc_value_free(args);
    mproc_proxy_free(l3);
    mproc_proxy_free(q);
    mproc_proxy_free(d);
    mproc_manager_free(m);
    return rc;
}

START_TEST(proxies_across_processes)
{
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_proxy *d = create(m, "dict", NULL), *l = create(m, "list", NULL);
    mproc_proxy *q = create(m, "Queue", NULL), *l2 = create(m, "list", NULL);
    call_ok(d, "setitem", lst(S("numbers"), mproc_proxy_ref(l), NULL));
    call_ok(q, "put", args1(mproc_proxy_ref(l2)));
    child_arg a = make_arg(m, d, q, NULL);
    a.k = 42;
    ck_assert_int_eq(tu_run_child(nested_worker, &a, sizeof a, tu_methods[_i]), 0);
    call_repr(l, "copy", NULL, "['from child']");
    call_repr(l2, "copy", NULL, "[42]");
    /* the child's own list outlived the child: the dict holds it */
    mproc_value *got = callv(d, "getitem", args1(S("child list")));
    mproc_proxy *l3;
    TU_OK(mproc_proxy_from_value(m, got, &l3));
    mproc_value_free(got);
    call_repr(l3, "copy", NULL, "['made here']");
    /* a reference that is not one, and one of another kind */
    mproc_proxy *bad;
    mproc_value *v = I(3);
    TU_RC(mproc_proxy_from_value(m, v, &bad), MPROC_EINVAL);
    mproc_value_free(v);
    v = mproc_value_handle(1, 1);
    TU_RC(mproc_proxy_from_value(m, v, &bad), MPROC_EINVAL);
    mproc_value_free(v);
    mproc_proxy_free(l3);
    mproc_proxy_free(l2);
    mproc_proxy_free(q);
    mproc_proxy_free(l);
    mproc_proxy_free(d);
    mproc_manager_free(m);
}
END_TEST

/* ---- custom types ------------------------------------------------------------------------ */

/* A counter whose destruction is counted in the family arena (the
 * manager server shares it): created with [destroyed counter address,
 * start value]. */
typedef struct counter {
    atomic_int *destroyed;
    int64_t n;
} counter;

static int counter_create(const mproc_value *args, void **state)
{
    uint64_t addr = 0;
    int64_t n = 0;
    if (mproc_value_get_uint(mproc_value_list_get(args, 0), &addr) || addr == 0)
        return mproc_task_fail("Counter(address[, start])");
    if (mproc_value_len(args) > 1 && mproc_value_get_int(mproc_value_list_get(args, 1), &n))
        return MPROC_EINVAL; /* a bare code, no message */
    counter *c = calloc(1, sizeof *c);
    if (!c) return MPROC_ENOMEM;
    c->destroyed = (atomic_int *)(uintptr_t)addr;
    c->n = n;
    *state = c;
    return 0;
}

static void counter_destroy(void *state)
{
    counter *c = state;
    atomic_fetch_add(c->destroyed, 1);
    free(c);
}

static int counter_add(void *state, const mproc_value *args, mproc_value **result)
{
    counter *c = state;
    int64_t by = 1;
    if (mproc_value_len(args) > 0 && mproc_value_get_int(mproc_value_list_get(args, 0), &by))
        return mproc_task_fail("add() takes an int");
    c->n += by;
    *result = mproc_value_int(c->n);
    return 0;
}

static int counter_fail(void *state, const mproc_value *args, mproc_value **result)
{
    (void)args;
    *result = mproc_value_int(1); /* dropped on failure */
    return mproc_task_fail("counter %lld says no", (long long)((counter *)state)->n);
}

/* Returns the constructor argument of a new counter (returns_typeid). */
static int counter_spawn(void *state, const mproc_value *args, mproc_value **result)
{
    (void)args;
    *result = mproc_value_uint((uint64_t)(uintptr_t)((counter *)state)->destroyed);
    return 0;
}

/* Makes a plain fork() of the server and terminates it: returns the
 * signal it died of. */
static int counter_fork_term(void *state, const mproc_value *args, mproc_value **result)
{
    (void)state;
    (void)args;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives the server */
        for (;;) pause();
    }
    if (pid < 0) return mproc_task_fail("fork failed");
    kill(pid, SIGTERM);
    int st = 0;
    if (waitpid(pid, &st, 0) != pid) return mproc_task_fail("waitpid failed");
    *result = mproc_value_int(WIFSIGNALED(st) ? WTERMSIG(st) : -1);
    return 0;
}

static const mproc_method_def counter_methods[] = {
    {"add", counter_add, NULL},
    {"fail", counter_fail, NULL},
    {"spawn", counter_spawn, "Counter"},
    {"spawn_list", counter_spawn, "list"}, /* list(uint): the constructor fails */
    {"fork_term", counter_fork_term, NULL},
};
static const mproc_type_def counter_type = {"Counter", counter_create, counter_destroy,
                                            counter_methods, 5};

static atomic_int *new_counter(void)
{
    void *p;
    TU_OK(mproc_arena_calloc(&p, sizeof(atomic_int)));
    return p;
}

static mproc_manager *start_counting(int i)
{
    return mgr_start(i, &(mproc_manager_opts){.types = &counter_type, .ntypes = 1});
}

static mproc_proxy *new_counter_proxy(mproc_manager *m, atomic_int *destroyed, int64_t n)
{
    return create(m, "Counter", lst(mproc_value_uint((uintptr_t)destroyed), I(n), NULL));
}

START_TEST(custom_type)
{
    atomic_int *destroyed = new_counter();
    mproc_manager *m = start_counting(_i);
    mproc_proxy *c = new_counter_proxy(m, destroyed, 5);
    ck_assert_str_eq(mproc_proxy_typeid(c), "Counter");
    ck_assert_int_eq(call_int(c, "add", NULL), 6);
    ck_assert_int_eq(call_int(c, "add", args1(I(10))), 16);
    call_fails(c, "add", args1(S("x")), MPROC_ETASK, "takes an int");
    call_fails(c, "fail", NULL, MPROC_ETASK, "counter 16 says no");
    /* only registered methods */
    TU_RC(mproc_proxy_call(c, "destroy", NULL, NULL), MPROC_ENOENT);
    TU_RC(mproc_proxy_call(c, "", NULL, NULL), MPROC_ENOENT);
    TU_RC(mproc_proxy_call(c, "ADD", NULL, NULL), MPROC_ENOENT);
    /* a method returning a new object */
    mproc_proxy *c2;
    TU_OK(mproc_proxy_call_proxy(c, "spawn", NULL, &c2));
    ck_assert_str_eq(mproc_proxy_typeid(c2), "Counter");
    ck_assert_int_eq(call_int(c2, "add", args1(I(2))), 2);
    ck_assert_int_eq(call_int(c, "add", args1(I(0))), 16);
    TU_RC(mproc_proxy_call_proxy(c, "spawn_list", NULL, &c2), MPROC_EMETHOD);
    /* through mproc_proxy_call the new object is dropped at once */
    mproc_value *r = (mproc_value *)1;
    TU_OK(mproc_proxy_call(c, "spawn", NULL, &r));
    ck_assert_ptr_null(r);
    ck_assert_int_eq(atomic_load(destroyed), 1);
    /* constructor failures */
    mproc_proxy *bad;
    TU_RC(mproc_manager_create(m, "Counter", NULL, &bad), MPROC_EMETHOD);
    int code;
    const char *msg;
    mproc_manager_last_error(&code, &msg);
    ck_assert_int_eq(code, MPROC_ETASK);
    ck_assert_str_eq(msg, "Counter(address[, start])");
    mproc_value *args = lst(mproc_value_uint((uintptr_t)destroyed), S("x"), NULL);
    TU_RC(mproc_manager_create(m, "Counter", args, &bad), MPROC_EMETHOD);
    mproc_value_free(args);
    mproc_manager_last_error(&code, &msg);
    ck_assert_int_eq(code, MPROC_EINVAL);
    TU_RC(mproc_manager_create(m, "NoSuchType", NULL, &bad), MPROC_ENOENT);
    TU_RC(mproc_manager_create(m, "counter", NULL, &bad), MPROC_ENOENT);
    mproc_proxy_free(c2);
    mproc_proxy_free(c);
    ck_assert_int_eq(atomic_load(destroyed), 3);
    mproc_manager_free(m);
    /* a manager without it does not know the type */
    m = mgr_start(_i, NULL);
    TU_RC(mproc_manager_create(m, "Counter", NULL, &bad), MPROC_ENOENT);
    mproc_manager_free(m);
    mproc_arena_free(destroyed);
}
END_TEST

/* A plain fork() of the server inherits its SIGTERM handler; that copy,
 * terminated, must leave the server's socket file alone. */
START_TEST(server_fork_leaves_the_socket)
{
    atomic_int *destroyed = new_counter();
    mproc_manager *m = start_counting(_i);
    mproc_proxy *c = new_counter_proxy(m, destroyed, 0);
    ck_assert_int_eq(call_int(c, "fork_term", NULL), SIGTERM);
    const char *addr = mproc_manager_address(m);
    ck_assert_msg(addr[0] == '/', "a local manager's address: %s", addr);
    ck_assert_msg(access(addr, F_OK) == 0, "%s was removed", addr);
    mproc_manager *again;
    TU_OK(mproc_manager_connect(&again, addr, NULL, 0));
    ck_assert_int_eq(call_int(c, "add", NULL), 1);
    mproc_manager_free(again);
    mproc_proxy_free(c);
    mproc_manager_free(m);
    mproc_arena_free(destroyed);
}
END_TEST

START_TEST(custom_type_bad_definitions)
{
    mproc_manager *m;
    mproc_type_def no_create = {"X", NULL, NULL, NULL, 0};
    TU_RC(mproc_manager_start(&m, &(mproc_manager_opts){.types = &no_create, .ntypes = 1}),
          MPROC_EINVAL);
    mproc_method_def nameless = {NULL, counter_add, NULL};
    mproc_type_def t = {"X", counter_create, NULL, &nameless, 1};
    TU_RC(mproc_manager_start(&m, &(mproc_manager_opts){.types = &t, .ntypes = 1}), MPROC_EINVAL);
    TU_RC(mproc_manager_start(&m, &(mproc_manager_opts){.types = NULL, .ntypes = 1}), MPROC_EINVAL);
    TU_RC(mproc_manager_start(&m, &(mproc_manager_opts){.authkey = "k", .authkey_len = 0}),
          MPROC_EINVAL);
}
END_TEST

/* ---- references ---------------------------------------------------------------------------- */

/* Polls until *n reaches want (the server drops a dead client's
 * references when it sees the connection close). */
static bool reaches(atomic_int *n, int want)
{
    for (int k = 0; k < 1000 && atomic_load(n) != want; k++) tu_sleep_ms(10);
    return atomic_load(n) == want;
}

START_TEST(freed_with_last_proxy)
{
    atomic_int *destroyed = new_counter();
    mproc_manager *m = start_counting(_i), *m2 = second(m);
    mproc_proxy *c = new_counter_proxy(m, destroyed, 0);
    /* a second proxy on this connection, and one on another */
    mproc_proxy *c2 = same_object(m, c), *c3 = same_object(m2, c);
    mproc_proxy_free(c);
    mproc_proxy_free(c3);
    ck_assert_int_eq(atomic_load(destroyed), 0);
    ck_assert_int_eq(call_int(c2, "add", NULL), 1);
    mproc_proxy_free(c2);
    ck_assert_int_eq(atomic_load(destroyed), 1);

    /* held by a list, a dict value, a queue item */
    mproc_proxy *l = create(m, "list", NULL), *d = create(m, "dict", NULL);
    mproc_proxy *q = create(m, "Queue", NULL);
    c = new_counter_proxy(m, destroyed, 0);
    call_ok(l, "append", args1(mproc_proxy_ref(c)));
    call_ok(l, "append", args1(mproc_proxy_ref(c)));
    call_ok(d, "setitem", lst(S("c"), mproc_proxy_ref(c), NULL));
    call_ok(q, "put", args1(lst(mproc_proxy_ref(c), NULL)));
    mproc_proxy_free(c);
    call_ok(l, "delitem", args1(I(0)));
    call_ok(l, "setitem", lst(I(0), I(0), NULL)); /* replaced */
    call_ok(d, "setitem", lst(S("c"), S("gone"), NULL));
    ck_assert_int_eq(atomic_load(destroyed), 1);
    mproc_proxy_free(q); /* the queue's item was the last */
    ck_assert_int_eq(atomic_load(destroyed), 2);

    /* a container freed drops what it holds */
    c = new_counter_proxy(m, destroyed, 0);
    call_ok(d, "setitem", lst(S("c"), mproc_proxy_ref(c), NULL));
    call_ok(l, "extend", args1(lst(mproc_proxy_ref(c), mproc_proxy_ref(c), NULL)));
    mproc_proxy_free(c);
    mproc_proxy_free(l);
    ck_assert_int_eq(atomic_load(destroyed), 2);
    call_ok(d, "clear", NULL);
    ck_assert_int_eq(atomic_load(destroyed), 3);
    /* a Namespace attribute; the whole dict */
    c = new_counter_proxy(m, destroyed, 0);
    mproc_proxy *ns = create(m, "Namespace", NULL);
    call_ok(ns, "setattr", lst(S("c"), mproc_proxy_ref(c), NULL));
    call_ok(d, "setitem", lst(S("c"), mproc_proxy_ref(c), NULL));
    mproc_proxy_free(c);
    mproc_proxy_free(ns);
    ck_assert_int_eq(atomic_load(destroyed), 3);
    mproc_proxy_free(d);
    ck_assert_int_eq(atomic_load(destroyed), 4);
    mproc_manager_free(m2);
    mproc_manager_free(m);
    mproc_arena_free(destroyed);
}
END_TEST

typedef struct {
    child_arg a;
    atomic_int *destroyed;
    atomic_int *ready;
} ref_child_arg;

/* Makes two counters and adds a proxy to the parent's, then exits without
 * freeing anything (a->k == 0) or waits to be killed (a->k == 1). */
static int leaving_client(void *arg)
{
    ref_child_arg *r = arg;
    mproc_manager *m;
    if (child_connect(&r->a, &m)) return 1;
    for (int k = 0; k < 2; k++) {
        mproc_value *args = lst(mproc_value_uint((uintptr_t)r->destroyed), NULL);
        mproc_proxy *c;
        int rc = mproc_manager_create(m, "Counter", args, &c);
        mproc_value_free(args);
        if (rc) return 2;
    }
    if (!child_proxy(m, &r->a, 0)) return 3; /* the parent's counter */
    atomic_store(r->ready, 1);
    if (r->a.k == 0) return 0;
    for (;;) pause();
}

START_TEST(freed_when_client_goes)
{
    atomic_int *destroyed = new_counter(), *ready = new_counter();
    mproc_manager *m = start_counting(_i);
    mproc_proxy *mine = new_counter_proxy(m, destroyed, 0);
    ref_child_arg r = {.a = make_arg(m, mine, NULL, NULL), .destroyed = destroyed, .ready = ready};
    /* the child exits without freeing */
    ck_assert_int_eq(tu_run_child(leaving_client, &r, sizeof r, tu_methods[_i]), 0);
    ck_assert(reaches(destroyed, 2));
    /* the child is killed */
    r.a.k = 1;
    atomic_store(ready, 0);
    mproc_process *p;
    TU_OK(mproc_process_new(&p, leaving_client, &r, sizeof r, TU_OPTS));
    TU_OK(mproc_process_start(p));
    for (int k = 0; k < 2000 && !atomic_load(ready); k++) tu_sleep_ms(10);
    ck_assert(atomic_load(ready));
    ck_assert_int_eq(atomic_load(destroyed), 2);
    TU_OK(mproc_process_kill(p));
    ck_assert_int_eq(join_child(p), -SIGKILL);
    ck_assert(reaches(destroyed, 4));
    /* the parent's counter survived both; the server drops a dead
     * client's references in turn, so the killed child's reference to it
     * may go after its two counters were destroyed, and after the
     * parent's own: the counter goes with whichever is last */
    ck_assert_int_eq(call_int(mine, "add", NULL), 1);
    mproc_proxy_free(mine);
    ck_assert(reaches(destroyed, 5));
    mproc_manager_free(m);
    mproc_arena_free(ready);
    mproc_arena_free(destroyed);
}
END_TEST

/* ---- remote managers ------------------------------------------------------------------------- */

static int remote_client(void *arg)
{
    child_arg *a = arg;
    mproc_manager *m;
    if (mproc_manager_connect(&m, a->address, NULL, 0) != MPROC_EAUTH) return 1; /* family key */
    if (child_connect(a, &m)) return 2;
    mproc_proxy *q = child_proxy(m, a, 0);
    if (!q) return 3;
    mproc_value *args = args1(S("over tcp"));
    int rc = mproc_proxy_call(q, "put", args, NULL) ? 4 : 0;
    mproc_value_free(args);
    mproc_proxy_free(q);
    mproc_manager_free(m);
    return rc;
}

START_TEST(remote_manager)
{
    static const char key[] = "remote secret";
    mproc_manager *m =
        mgr_start(_i, &(mproc_manager_opts){
                          .address = "127.0.0.1:0", .authkey = key, .authkey_len = sizeof key - 1});
    const char *addr = mproc_manager_address(m);
    ck_assert_msg(strncmp(addr, "127.0.0.1:", 10) == 0 && atoi(addr + 10) > 0, "address %s", addr);
    mproc_manager *c;
    TU_OK(mproc_manager_connect(&c, addr, key, sizeof key - 1));
    mproc_proxy *q = create(c, "Queue", NULL);
    mproc_manager *bad;
    TU_RC(mproc_manager_connect(&bad, addr, "remote secreT", 13), MPROC_EAUTH);
    TU_RC(mproc_manager_connect(&bad, addr, NULL, 0), MPROC_EAUTH);
    TU_RC(mproc_manager_connect(&bad, addr, "remote secre", 12), MPROC_EAUTH);
    child_arg a = make_arg(c, q, NULL, NULL);
    memcpy(a.key, key, sizeof key - 1);
    a.key_len = sizeof key - 1;
    ck_assert_int_eq(tu_run_child(remote_client, &a, sizeof a, tu_methods[_i]), 0);
    call_repr(q, "get", args1(I(5000)), "'over tcp'");
    /* the owner's connection works too */
    mproc_proxy *d = create(m, "dict", NULL);
    mproc_proxy_free(d);
    mproc_proxy_free(q);
    mproc_manager_free(c);
    mproc_manager_free(m);
    /* nothing listens there any more */
    TU_RC(mproc_manager_connect(&bad, a.address, key, sizeof key - 1), MPROC_ECONNREFUSED);
}
END_TEST

/* ---- shutdown ------------------------------------------------------------------------------- */

START_TEST(explicit_shutdown)
{
    mproc_manager *m = mgr_start(_i, NULL), *m2 = second(m);
    char addr[256];
    snprintf(addr, sizeof addr, "%s", mproc_manager_address(m));
    mproc_proxy *l = create(m, "list", NULL), *l2 = same_object(m2, l);
    mproc_proxy *q2 = create(m2, "Queue", NULL);
    call_ok(l2, "append", args1(I(1)));
    TU_OK(mproc_manager_shutdown(m));
    /* the other client: a transport error, at once */
    mproc_value *args = args1(I(2));
    int rc = mproc_proxy_call(l2, "append", args, NULL);
    mproc_value_free(args);
    ck_assert_msg(rc != 0 && rc != MPROC_EMETHOD, "after shutdown: %s", mproc_err_name(rc));
    rc = mproc_proxy_call(q2, "get", NULL, NULL); /* would block forever on a live server */
    ck_assert_msg(rc != 0 && rc != MPROC_EMETHOD, "after shutdown: %s", mproc_err_name(rc));
    /* the owner's own handle too */
    size_t n;
    rc = mproc_proxy_len(l, &n);
    ck_assert_msg(rc != 0 && rc != MPROC_EMETHOD, "after shutdown: %s", mproc_err_name(rc));
    mproc_proxy *x;
    ck_assert_int_ne(mproc_manager_create(m, "list", NULL, &x), 0);
    mproc_manager *m3;
    ck_assert_int_ne(mproc_manager_connect(&m3, addr, NULL, 0), 0);
    mproc_proxy_free(q2);
    mproc_proxy_free(l2);
    mproc_proxy_free(l);
    mproc_manager_free(m2);
    mproc_manager_free(m);
}
END_TEST

/* A client blocked in a call when the manager shuts down is woken. */
static int blocked_getter(void *arg)
{
    child_arg *a = arg;
    mproc_manager *m;
    if (child_connect(a, &m)) return 1;
    mproc_proxy *q = child_proxy(m, a, 0), *ev = child_proxy(m, a, 1);
    if (!q || !ev) return 2;
    mproc_proxy_call(ev, "set", NULL, NULL);
    int rc = mproc_proxy_call(q, "get", NULL, NULL);
    mproc_proxy_free(ev);
    mproc_proxy_free(q);
    mproc_manager_free(m);
    return rc != 0 && rc != MPROC_EMETHOD ? 0 : 3;
}

START_TEST(shutdown_wakes_blocked_client)
{
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_proxy *q = create(m, "Queue", NULL), *ev = create(m, "Event", NULL);
    child_arg a = make_arg(m, q, ev, NULL);
    mproc_process *p = start_child(blocked_getter, &a, _i);
    ck_assert(call_bool(ev, "wait", args1(I(20000))));
    tu_sleep_ms(50); /* into its get */
    mproc_proxy_free(ev);
    mproc_proxy_free(q);
    TU_OK(mproc_manager_shutdown(m));
    ck_assert_int_eq(join_child(p), 0);
    mproc_manager_free(m);
}
END_TEST

typedef struct {
    int i;
    mproc_manager *m;
    int rc;
} thread_start;

/* (Not mgr_start: a child process must not use Check's asserts.) */
static void *start_in_thread(void *arg)
{
    thread_start *t = arg;
    const mproc_context *ctx;
    t->rc = mproc_get_context(mproc_start_method_name(tu_methods[t->i]), &ctx);
    if (!t->rc) t->rc = mproc_manager_start(&t->m, &(mproc_manager_opts){.context = ctx});
    return NULL;
}

/* Starts a manager, publishes its address, then returns (k == 0) or waits
 * to be killed (k == 1; k == 2: after starting it from a thread that has
 * ended). */
typedef struct {
    int method;
    int k;
    atomic_int *ready, *go;
    char *address; /* in the arena, 256 bytes */
} owner_arg;

static int manager_owner(void *arg)
{
    owner_arg *o = arg;
    const mproc_context *ctx;
    if (mproc_get_context(mproc_start_method_name(tu_methods[o->method]), &ctx)) return 1;
    mproc_manager *m;
    if (o->k == 2) {
        thread_start t = {.i = o->method};
        pthread_t th;
        if (pthread_create(&th, NULL, start_in_thread, &t) || pthread_join(th, NULL)) return 2;
        if (t.rc) {
            fprintf(stderr, "manager start from a thread: %s\n", mproc_strerror(t.rc));
            return 3;
        }
        m = t.m;
    } else if (mproc_manager_start(&m, &(mproc_manager_opts){.context = ctx})) {
        return 2;
    }
    snprintf(o->address, 256, "%s", mproc_manager_address(m));
    atomic_store(o->ready, 1);
    if (o->k == 0) { /* returns when told, m never freed */
        for (int k = 0; k < 3000 && !atomic_load(o->go); k++) usleep(10000);
        return 0;
    }
    for (;;) pause();
}

/* True once nobody serves at address (within 10 s). A server dying
 * during the handshake fails it (MPROC_EAUTH): try again. */
static bool server_gone(const char *address)
{
    for (int k = 0; k < 1000; k++) {
        mproc_manager *m;
        int rc = mproc_manager_connect(&m, address, NULL, 0);
        if (rc == MPROC_ECONNREFUSED || rc == MPROC_ENOENT) return true;
        if (rc == 0) mproc_manager_free(m);
        tu_sleep_ms(10);
    }
    return false;
}

static void owner_goes(int i, int how)
{
    owner_arg o = {.method = i, .k = how, .ready = new_counter(), .go = new_counter()};
    TU_OK(mproc_arena_calloc((void **)&o.address, 256));
    mproc_process *p;
    TU_OK(mproc_process_new(&p, manager_owner, &o, sizeof o,
                            &(mproc_process_opts){.start_method = tu_methods[i]}));
    TU_OK(mproc_process_start(p));
    for (int k = 0; k < 2000 && !atomic_load(o.ready); k++) tu_sleep_ms(10);
    ck_assert(atomic_load(o.ready));
    mproc_manager *m;
    TU_OK(mproc_manager_connect(&m, o.address, NULL, 0)); /* it serves */
    mproc_proxy *l = create(m, "list", NULL);
    if (how)
        TU_OK(mproc_process_kill(p));
    else
        atomic_store(o.go, 1);
    ck_assert_int_eq(join_child(p), how ? -SIGKILL : 0);
    ck_assert_msg(server_gone(o.address), "the manager at %s outlived its owner", o.address);
    /* Terminated at its owner's exit, or at its owner's death (SIGTERM,
     * its parent-death signal), the server removed its socket file and
     * private directory. */
    char dir[256];
    snprintf(dir, sizeof dir, "%s", o.address);
    char *slash = strrchr(dir, '/');
    ck_assert_msg(slash && dir[0] == '/', "a local manager's address: %s", o.address);
    *slash = '\0';
    for (int k = 0; k < 500 && access(dir, F_OK) == 0; k++) tu_sleep_ms(10);
    bool file_left = access(o.address, F_OK) == 0, dir_left = access(dir, F_OK) == 0;
    unlink(o.address);
    rmdir(dir);
    ck_assert_msg(!file_left, "%s was left behind", o.address);
    ck_assert_msg(!dir_left, "%s was left behind", dir);
    size_t n;
    ck_assert_int_ne(mproc_proxy_len(l, &n), 0);
    mproc_proxy_free(l);
    mproc_manager_free(m);
    mproc_arena_free(o.address);
    mproc_arena_free(o.ready);
    mproc_arena_free(o.go);
}

/* The server is a daemon child of the thread that starts it (the kernel's
 * parent-death signal follows that thread): the thread's end must not
 * end the server. */
START_TEST(server_outlives_the_thread_that_started_it)
{
    thread_start t = {.i = _i};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, start_in_thread, &t), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    TU_OK(t.rc);
    tu_sleep_ms(200);
    mproc_proxy *l;
    TU_OK(mproc_manager_create(t.m, "list", NULL, &l));
    size_t n = 1;
    TU_OK(mproc_proxy_len(l, &n));
    ck_assert_uint_eq(n, 0);
    mproc_proxy_free(l);
    mproc_manager_free(t.m);
}
END_TEST

START_TEST(owner_exits)
{
    owner_goes(_i, 0);
}
END_TEST

START_TEST(owner_killed)
{
    owner_goes(_i, 1);
}
END_TEST

/* The server's parent is a thread that has ended: the owner's death comes
 * to it through the parent-death signal's handler (processes.md). */
START_TEST(owner_killed_after_thread_start)
{
    owner_goes(_i, 2);
}
END_TEST

START_TEST(pipelined_calls_remote_and_local)
{
    for (int local = 0; local < 2; local++) {
        if (!local) setenv("MPROC_MANAGER_LOCAL", "0", 1);
        mproc_manager *m = mgr_start(
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
    tc = tu_tcase(s, "builtin", 60);
    tcase_add_loop_test(tc, list_calls, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, dict_calls, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, set_and_namespace_calls, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, value_and_array_calls, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, queue_calls, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, lock_calls, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, semaphore_calls, 0, TU_NMETHODS);
    tc = tu_tcase(s, "across_processes", 60);
    tcase_add_loop_test(tc, condition_across_processes, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, event_across_processes, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, barrier_across_processes, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, proxies_across_processes, 0, TU_NMETHODS);
    tc = tu_tcase(s, "custom_and_refs", 60);
    tcase_add_loop_test(tc, custom_type, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, server_fork_leaves_the_socket, 0, TU_NMETHODS);
    tcase_add_test(tc, custom_type_bad_definitions);
    tcase_add_loop_test(tc, freed_with_last_proxy, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, freed_when_client_goes, 0, TU_NMETHODS);
    tc = tu_tcase(s, "remote_and_shutdown", 60);
    tcase_add_loop_test(tc, remote_manager, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, explicit_shutdown, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, shutdown_wakes_blocked_client, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, server_outlives_the_thread_that_started_it, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, owner_exits, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, owner_killed, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, owner_killed_after_thread_start, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, pipelined_calls_remote_and_local, 0, TU_NMETHODS);
    return tu_run(s);
}
