/* Proxies travel as connections do: a proxy placed in a child's argument
 * bytes is, in the child, a proxy of the child's own on the same manager
 * (it connects on its first call, with the key its parent's handle used),
 * under every start method; a reference read from a queue becomes a proxy
 * with one call; objects shared under a name (mproc_manager_share,
 * mproc_manager_opts.shared) are got by name from any client; and a wrong
 * constructor argument list is refused with a message that names the
 * expected form. Children report through their exit status. */
#include "mgrutil.h"

#include <time.h>

static mproc_proxy *create(mproc_manager *m, const char *typeid, mproc_value *args)
{
    mproc_proxy *p;
    int rc = create_with(m, typeid, args, &p);
    ck_assert_msg(rc == 0, "create %s -> %s", typeid, mproc_err_name(rc));
    return p;
}

static size_t len_of(mproc_proxy *p)
{
    size_t n = 0;
    TU_OK(mproc_proxy_len(p, &n));
    return n;
}

/* ---- one proxy in the arguments -------------------------------------------------- */

static int append_one(void *arg)
{
    mproc_proxy *l = *(mproc_proxy **)arg;
    if (strcmp(mproc_proxy_typeid(l), "list") != 0) return 2;
    mproc_value *args = args1(I(42));
    int rc = mproc_proxy_call(l, "append", args, NULL);
    mproc_value_free(args);
    return rc == 0 ? 0 : 3;
}

START_TEST(proxy_in_args)
{
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_proxy *l = create(m, "list", NULL);
    ck_assert_int_eq(tu_run_child_opts(append_one, &l, sizeof l, TU_OPTS), 0);
    mproc_value *x = NULL, *k = I(0);
    TU_OK(mproc_proxy_getitem(l, k, &x));
    int64_t v = 0;
    TU_OK(mproc_value_get_int(x, &v));
    ck_assert_int_eq(v, 42);
    mproc_value_free(x);
    mproc_value_free(k);
    mproc_proxy_free(l);
    mproc_manager_free(m);
}
END_TEST

/* ---- several proxies in one block --------------------------------------------------- */

typedef struct several {
    mproc_proxy *list;
    int32_t marker;
    mproc_proxy *dict;
    char text[13];
    mproc_proxy *queue;
    mproc_proxy *list_again; /* the same proxy twice */
} several;

static int use_several(void *arg)
{
    several *s = arg;
    if (s->marker != 1234 || strcmp(s->text, "hello") != 0) return 2;
    if (s->list != s->list_again) return 3; /* one proxy, one handle */
    if (strcmp(mproc_proxy_typeid(s->dict), "dict") != 0) return 4;
    if (mproc_proxy_manager(s->list) != mproc_proxy_manager(s->queue)) return 5; /* one handle */
    mproc_value *a = args1(I(7)), *k = S("k"), *v = I(8), *q = args1(S("item"));
    int rc = mproc_proxy_call(s->list, "append", a, NULL);
    if (!rc) rc = mproc_proxy_setitem(s->dict, k, v);
    if (!rc) rc = mproc_proxy_call(s->queue, "put", q, NULL);
    mproc_value_free(a);
    mproc_value_free(k);
    mproc_value_free(v);
    mproc_value_free(q);
    return rc == 0 ? 0 : 6;
}

START_TEST(several_proxies)
{
    mproc_manager *m = mgr_start(_i, NULL);
    several s = {.marker = 1234, .text = "hello"};
    s.list = s.list_again = create(m, "list", NULL);
    s.dict = create(m, "dict", NULL);
    s.queue = create(m, "Queue", NULL);
    ck_assert_int_eq(tu_run_child_opts(use_several, &s, sizeof s, TU_OPTS), 0);
    ck_assert_uint_eq(len_of(s.list), 1);
    ck_assert_uint_eq(len_of(s.dict), 1);
    mproc_value *got = NULL, *t = args1(I(0));
    TU_OK(mproc_proxy_call(s.queue, "get", t, &got));
    ck_assert_str_eq(mproc_value_get_str(got, NULL), "item");
    mproc_value_free(got);
    mproc_value_free(t);
    mproc_proxy_free(s.queue);
    mproc_proxy_free(s.dict);
    mproc_proxy_free(s.list);
    mproc_manager_free(m);
}
END_TEST

/* ---- a child of a child ------------------------------------------------------------ */

typedef struct relay {
    mproc_proxy *list;
    mproc_start_method method;
} relay;

static int relay_on(void *arg)
{
    relay *r = arg;
    if (append_one(&r->list) != 0) return 2; /* the child itself */
    mproc_process *p;
    mproc_process_opts o = {.start_method = r->method};
    if (mproc_process_new(&p, append_one, &r->list, sizeof r->list, &o) || mproc_process_start(p) ||
        mproc_process_join(p, 20000))
        return 3;
    int code = -1;
    mproc_process_exitcode(p, &code);
    mproc_process_free(p);
    return code == 0 ? 0 : 4;
}

START_TEST(child_of_child)
{
    mproc_manager *m = mgr_start(_i, NULL);
    relay r;
    /* Zeroed first: its padding goes to the child too (see start() in test_wakeups.c). */
    memset(&r, 0, sizeof r);
    r.list = create(m, "list", NULL);
    r.method = tu_methods[_i];
    ck_assert_int_eq(tu_run_child_opts(relay_on, &r, sizeof r, TU_OPTS), 0);
    ck_assert_uint_eq(len_of(r.list), 2);
    mproc_proxy_free(r.list);
    mproc_manager_free(m);
}
END_TEST

/* ---- a proxy through a queue ------------------------------------------------------- */

typedef struct via_queue {
    mproc_proxy *mq; /* a manager Queue holding a list's reference */
    mproc_queue *pq; /* a plain queue holding the same reference, encoded */
} via_queue;

static int from_queues(void *arg)
{
    via_queue *v = arg;
    /* the manager Queue: one call */
    mproc_proxy *a = NULL, *b = NULL;
    mproc_value *t = args1(I(10000));
    int rc = mproc_proxy_call_proxy(v->mq, "get", t, &a);
    mproc_value_free(t);
    if (rc) return 2;
    /* the plain queue: the value, then one call on the same manager */
    mproc_value *ref = NULL;
    if (mproc_queue_get_value(v->pq, &ref, 10000)) return 3;
    rc = mproc_proxy_from_value(mproc_proxy_manager(v->mq), ref, &b);
    mproc_value_free(ref);
    if (rc) return 4;
    if (append_one(&a) || append_one(&b)) return 5;
    mproc_proxy_free(a);
    mproc_proxy_free(b);
    return 0;
}

START_TEST(proxy_in_queue)
{
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_proxy *l = create(m, "list", NULL);
    via_queue v = {create(m, "Queue", NULL), NULL};
    TU_OK(mproc_queue_new(&v.pq, NULL));
    mproc_value *ref = mproc_proxy_ref(l), *a = mproc_value_list();
    mproc_value_list_append(a, mproc_value_copy(ref));
    TU_OK(mproc_proxy_call(v.mq, "put", a, NULL));
    TU_OK(mproc_queue_put_value(v.pq, ref, MPROC_FOREVER));
    mproc_value_free(a);
    mproc_value_free(ref);
    ck_assert_int_eq(tu_run_child_opts(from_queues, &v, sizeof v, TU_OPTS), 0);
    ck_assert_uint_eq(len_of(l), 2);
    mproc_queue_free(v.pq);
    mproc_proxy_free(v.mq);
    mproc_proxy_free(l);
    mproc_manager_free(m);
}
END_TEST

/* ---- the manager gone before the child calls ------------------------------------ */

static int call_fails(void *arg)
{
    mproc_proxy *l = *(mproc_proxy **)arg;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    mproc_value *args = args1(I(1));
    int rc = mproc_proxy_call(l, "append", args, NULL);
    int rc2 = mproc_proxy_call(l, "append", args, NULL); /* again: still refused */
    mproc_value_free(args);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc == 0 || rc2 == 0) return 2;
    if (rc != MPROC_ECONNREFUSED && rc != MPROC_ENOENT) return 3;
    if (t1.tv_sec - t0.tv_sec > 5) return 4; /* no hang */
    return 0;
}

START_TEST(manager_gone)
{
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_proxy *l = create(m, "list", NULL);
    TU_OK(mproc_manager_shutdown(m));
    ck_assert_int_eq(tu_run_child_opts(call_fails, &l, sizeof l, TU_OPTS), 0);
    mproc_proxy_free(l);
    mproc_manager_free(m);
}
END_TEST

/* ---- an explicit key, and a TCP manager ------------------------------------------ */

#define KEY "abracadabra"

START_TEST(explicit_key_travels)
{
    mproc_manager_opts o = {.address = "127.0.0.1:0", .authkey = KEY, .authkey_len = strlen(KEY)};
    mproc_manager *m = mgr_start(_i, &o);
    mproc_proxy *l = create(m, "list", NULL);
    ck_assert_int_eq(tu_run_child_opts(append_one, &l, sizeof l, TU_OPTS), 0);
    ck_assert_uint_eq(len_of(l), 1);
    mproc_proxy_free(l);
    mproc_manager_free(m);
}
END_TEST

/* ---- shared objects ------------------------------------------------------------------ */

typedef struct client_arg {
    char address[128];
    bool put;
} client_arg;

/* A client of its own (not a proxy passed in): connect, get by name. */
static int queue_client(void *arg)
{
    client_arg *c = arg;
    mproc_manager *m;
    mproc_proxy *q;
    if (mproc_manager_connect(&m, c->address, KEY, strlen(KEY))) return 2;
    if (mproc_manager_get(m, "get_queue", &q)) return 3;
    int rc;
    if (c->put) {
        mproc_value *a = args1(S("hello"));
        rc = mproc_proxy_call(q, "put", a, NULL) ? 4 : 0;
        mproc_value_free(a);
    } else {
        mproc_value *a = args1(I(10000)), *got = NULL;
        rc = mproc_proxy_call(q, "get", a, &got) ? 5 : 0;
        if (!rc && strcmp(mproc_value_get_str(got, NULL) ? mproc_value_get_str(got, NULL) : "",
                          "hello") != 0)
            rc = 6;
        mproc_value_free(a);
        mproc_value_free(got);
    }
    mproc_proxy_free(q);
    mproc_manager_free(m);
    return rc;
}

static void two_clients(const char *address)
{
    client_arg g = {.put = false}, p = {.put = true};
    snprintf(g.address, sizeof g.address, "%s", address);
    snprintf(p.address, sizeof p.address, "%s", address);
    mproc_process *getter;
    TU_OK(mproc_process_new(&getter, queue_client, &g, sizeof g, NULL));
    TU_OK(mproc_process_start(getter));
    ck_assert_int_eq(tu_run_child(queue_client, &p, sizeof p, MPROC_START_DEFAULT), 0);
    TU_OK(mproc_process_join(getter, 20000));
    int code = -1;
    TU_OK(mproc_process_exitcode(getter, &code));
    ck_assert_int_eq(code, 0);
    TU_OK(mproc_process_free(getter));
}

START_TEST(shared_at_start)
{
    const mproc_manager_shared shared[] = {{.name = "get_queue", .typeid = "Queue"}};
    mproc_manager_opts o = {.address = "127.0.0.1:0",
                            .authkey = KEY,
                            .authkey_len = strlen(KEY),
                            .shared = shared,
                            .nshared = 1};
    mproc_manager *m = mgr_start(_i, &o);
    two_clients(mproc_manager_address(m));
    /* the owner asks by name too, and an unknown name is refused */
    mproc_proxy *q = NULL;
    TU_OK(mproc_manager_get(m, "get_queue", &q));
    ck_assert_str_eq(mproc_proxy_typeid(q), "Queue");
    mproc_proxy_free(q);
    TU_RC(mproc_manager_get(m, "nothing", &q), MPROC_ENOENT);
    mproc_manager_free(m);
}
END_TEST

START_TEST(shared_at_run_time)
{
    mproc_manager_opts o = {.address = "127.0.0.1:0", .authkey = KEY, .authkey_len = strlen(KEY)};
    mproc_manager *m = mgr_start(_i, &o);
    mproc_proxy *q = create(m, "Queue", NULL);
    TU_OK(mproc_manager_share(m, "get_queue", q));
    mproc_proxy_free(q); /* the name keeps it */
    two_clients(mproc_manager_address(m));
    /* unshared: gone by name */
    TU_OK(mproc_manager_share(m, "get_queue", NULL));
    TU_RC(mproc_manager_get(m, "get_queue", &q), MPROC_ENOENT);
    TU_RC(mproc_manager_share(m, "", NULL), MPROC_EINVAL);
    TU_RC(mproc_manager_get(NULL, "x", &q), MPROC_EINVAL);
    mproc_manager_free(m);
}
END_TEST

START_TEST(shared_bad)
{
    /* a shared object whose type is unknown, or whose arguments are bad,
     * fails the start */
    const mproc_manager_shared bad_type[] = {{.name = "x", .typeid = "NoSuchType"}};
    mproc_manager_opts o = {.shared = bad_type, .nshared = 1};
    const mproc_context *ctx;
    TU_OK(mproc_get_context(mproc_start_method_name(tu_methods[_i]), &ctx));
    o.context = ctx;
    mproc_manager *m = NULL;
    TU_RC(mproc_manager_start(&m, &o), MPROC_ENOENT);
    mproc_value *args = args1(S("not a number"));
    const mproc_manager_shared bad_args[] = {{.name = "x", .typeid = "Queue", .args = args}};
    o.shared = bad_args;
    TU_RC(mproc_manager_start(&m, &o), MPROC_EINVAL);
    const mproc_manager_shared no_name[] = {{.name = NULL, .typeid = "Queue"}};
    o.shared = no_name;
    TU_RC(mproc_manager_start(&m, &o), MPROC_EINVAL);
    o.shared = NULL; /* nshared without the array */
    TU_RC(mproc_manager_start(&m, &o), MPROC_EINVAL);
    mproc_value_free(args);
}
END_TEST

/* ---- constructor arguments ---------------------------------------------------------- */

/* create(typeid, args) fails with MPROC_EMETHOD and a last error whose
 * message holds `expect`. */
static void refused(mproc_manager *m, const char *typeid, mproc_value *args, const char *expect)
{
    mproc_proxy *p = NULL;
    int rc = create_with(m, typeid, args, &p);
    ck_assert_msg(rc == MPROC_EMETHOD, "%s: %s", typeid, mproc_err_name(rc));
    const char *msg = NULL;
    mproc_manager_last_error(NULL, &msg);
    ck_assert_msg(strstr(msg, expect) != NULL, "%s: \"%s\" does not say \"%s\"", typeid, msg,
                  expect);
}

/* create(typeid, args) works. */
static mproc_proxy *made(mproc_manager *m, const char *typeid, mproc_value *args)
{
    return create(m, typeid, args);
}

START_TEST(constructor_args)
{
    mproc_manager *m = mgr_start(0, NULL);
    /* list([1, 2]) is [[1, 2]]: [1, 2] alone is two arguments */
    refused(m, "list", lst(I(1), I(2), NULL), "[[1, 2]]");
    refused(m, "list", args1(I(1)), "list([...])");
    mproc_proxy *p = made(m, "list", args1(lst(I(1), I(2), NULL)));
    ck_assert_uint_eq(len_of(p), 2);
    mproc_proxy_free(p);
    /* dict({...}), dict(k=v) as a map, dict of pairs */
    mproc_value *map = mproc_value_map();
    mproc_value_map_set_str(map, "k", I(1));
    p = made(m, "dict", args1(map));
    ck_assert_uint_eq(len_of(p), 1);
    mproc_proxy_free(p);
    p = made(m, "dict", args1(lst(lst(S("a"), I(1), NULL), lst(S("b"), I(2), NULL), NULL)));
    ck_assert_uint_eq(len_of(p), 2);
    mproc_proxy_free(p);
    refused(m, "dict", args1(I(3)), "dict({...})");
    refused(m, "dict", args1(lst(I(3), NULL)), "pairs");
    refused(m, "dict", lst(mproc_value_map(), mproc_value_map(), NULL), "at most 1 argument");
    refused(m, "set", args1(I(1)), "set([...])");
    refused(m, "Namespace", args1(I(1)), "Namespace({...})");
    /* Value('i', 0), Array('d', [...]) */
    mproc_proxy_free(made(m, "Value", lst(S("i"), I(0), NULL)));
    refused(m, "Value", args1(I(0)), "Value(typecode, value)");
    refused(m, "Value", lst(S("i"), I(0), I(1), NULL), "at most 2 arguments");
    mproc_proxy_free(made(m, "Array", lst(S("d"), lst(mproc_value_float(1.5), NULL), NULL)));
    refused(m, "Array", lst(S("d"), NULL), "Array(typecode, [...])");
    /* Queue(maxsize), Semaphore(n), Barrier(parties), Lock() */
    mproc_proxy_free(made(m, "Queue", args1(I(3))));
    refused(m, "Queue", args1(S("3")), "Queue(maxsize)");
    refused(m, "Queue", lst(I(1), I(2), NULL), "at most 1 argument");
    mproc_proxy_free(made(m, "Semaphore", args1(I(2))));
    refused(m, "Semaphore", lst(I(1), I(2), NULL), "at most 1 argument");
    mproc_proxy_free(made(m, "Barrier", args1(I(2))));
    refused(m, "Barrier", NULL, "Barrier(parties)");
    refused(m, "Lock", args1(I(1)), "Lock() takes no arguments");
    refused(m, "Event", args1(I(1)), "Event() takes no arguments");
    mproc_manager_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("manager_travel");
    TCase *tc = tu_tcase(s, "args", 90);
    tcase_add_loop_test(tc, proxy_in_args, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, several_proxies, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, child_of_child, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, proxy_in_queue, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, manager_gone, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, explicit_key_travels, 0, TU_NMETHODS);
    tc = tu_tcase(s, "shared", 90);
    tcase_add_loop_test(tc, shared_at_start, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, shared_at_run_time, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, shared_bad, 0, TU_NMETHODS);
    tc = tu_tcase(s, "constructors", 60);
    tcase_add_test(tc, constructor_args);
    return tu_run(s);
}
