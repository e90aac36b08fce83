/* Managers and their owner: a process that did not start or connect a
 * manager handle (a plain fork() copy of its owner, or a child started by
 * the fork method, which inherits the handle's memory) gets MPROC_ECHILD
 * from every call on it, and freeing the handle and its proxies there
 * touches nothing the owner uses. The owner's manager keeps working. */
#include "mgrutil.h"

#include <sys/wait.h>

static mproc_proxy *create(mproc_manager *m, const char *typeid, mproc_value *args)
{
    mproc_proxy *p;
    int rc = create_with(m, typeid, args, &p);
    ck_assert_msg(rc == 0, "create %s -> %s", typeid, mproc_err_name(rc));
    return p;
}

/* In a process that is not the owner: every call is refused. 0, or the
 * number of the first call that was not refused. */
static int calls_refused(mproc_manager *m, mproc_proxy *l)
{
    mproc_value *args = args1(I(2));
    int rc = mproc_proxy_call(l, "append", args, NULL);
    mproc_value_free(args);
    if (rc != MPROC_ECHILD) return 1;
    size_t n;
    if (mproc_proxy_len(l, &n) != MPROC_ECHILD) return 2;
    mproc_proxy *x = NULL;
    if (mproc_manager_create(m, "dict", NULL, &x) != MPROC_ECHILD) return 3;
    mproc_value *ref = mproc_proxy_ref(l);
    rc = mproc_proxy_from_value(m, ref, &x);
    mproc_value_free(ref);
    if (rc != MPROC_ECHILD) return 4;
    if (mproc_proxy_call_proxy(l, "copy", NULL, &x) != MPROC_ECHILD) return 5;
    mproc_call c = {.proxy = l, .method = "len"};
    int code = 0;
    if (mproc_manager_call_many(m, &c, 1, NULL, &code) != MPROC_ECHILD) return 6;
    if (mproc_manager_shutdown(m) != MPROC_ECHILD) return 7;
    if (strcmp(mproc_manager_address(m), "") == 0) return 8; /* reading it is fine */
    return 0;
}

/* In a process that is not the owner: the calls (if try_calls) are
 * refused, then freeing the handles releases private memory only: no
 * DECREF, no shutdown, the owner's connection and channel untouched. */
static int as_not_owner(mproc_manager *m, mproc_proxy *l, bool try_calls)
{
    int rc = try_calls ? calls_refused(m, l) : 0;
    mproc_proxy_free(l);
    mproc_manager_free(m);
    return rc;
}

/* A plain fork() copy of the owner; its exit status. */
static int in_forked_copy(mproc_manager *m, mproc_proxy *l, bool free_only)
{
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) _exit(as_not_owner(m, l, !free_only));
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

/* The owner's manager and proxy still work, and the copy changed
 * nothing: the list holds only what the owner appended. */
static void owner_still_works(mproc_manager *m, mproc_proxy *l, size_t want)
{
    size_t n = 0;
    TU_OK(mproc_proxy_len(l, &n));
    ck_assert_uint_eq(n, want);
    TU_OK(call_with(l, "append", args1(I(7)), NULL));
    TU_OK(mproc_proxy_len(l, &n));
    ck_assert_uint_eq(n, want + 1);
    mproc_proxy *d = create(m, "dict", NULL);
    mproc_value *k = S("k"), *v = I(1);
    TU_OK(mproc_proxy_setitem(d, k, v));
    mproc_value_free(k);
    mproc_value_free(v);
    mproc_proxy_free(d);
}

static void forked_copy(int i, bool socket)
{
    if (socket)
        setenv("MPROC_MANAGER_LOCAL", "0", 1);
    else
        unsetenv("MPROC_MANAGER_LOCAL");
    /* one started by this process, one it connected to */
    mproc_manager *m = mgr_start(i, NULL), *m2;
    TU_OK(mproc_manager_connect(&m2, mproc_manager_address(m), NULL, 0));
    mproc_proxy *l = create(m, "list", NULL);
    TU_OK(call_with(l, "append", args1(I(1)), NULL));
    mproc_value *ref = mproc_proxy_ref(l);
    mproc_proxy *l2;
    TU_OK(mproc_proxy_from_value(m2, ref, &l2));
    mproc_value_free(ref);
    /* a copy that only frees what it inherited, then one that tries every call */
    for (int round = 0; round < 2; round++) {
        ck_assert_int_eq(in_forked_copy(m2, l2, round == 0), 0);
        ck_assert_int_eq(in_forked_copy(m, l, round == 0), 0);
        owner_still_works(m, l, 1 + (size_t)round * 2);
        owner_still_works(m2, l2, 2 + (size_t)round * 2);
    }
    mproc_proxy_free(l2);
    mproc_manager_free(m2);
    mproc_proxy_free(l);
    mproc_manager_free(m);
    unsetenv("MPROC_MANAGER_LOCAL");
}

START_TEST(forked_copy_local)
{
    forked_copy(_i, false);
}
END_TEST

START_TEST(forked_copy_socket)
{
    forked_copy(_i, true);
}
END_TEST

/* A child of the fork method inherits the handles' memory: refused as
 * well. (Proxies placed in the argument bytes are the exception: they
 * become the child's own, tests/test_manager_travel.c; these are reached
 * through globals.) */
static mproc_manager *inherited_m;
static mproc_proxy *inherited_l;

static int inherited_user(void *arg)
{
    (void)arg;
    return as_not_owner(inherited_m, inherited_l, true);
}

START_TEST(fork_child_inherits_handles)
{
    mproc_manager *m = mgr_start(_i, NULL);
    mproc_proxy *l = create(m, "list", NULL);
    inherited_m = m;
    inherited_l = l;
    ck_assert_int_eq(tu_run_child(inherited_user, NULL, 0, MPROC_START_FORK), 0);
    owner_still_works(m, l, 0);
    mproc_proxy_free(l);
    mproc_manager_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("manager_owner");
    TCase *tc = tu_tcase(s, "owner", 60);
    tcase_add_loop_test(tc, forked_copy_local, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, forked_copy_socket, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, fork_child_inherits_handles, 0, TU_NMETHODS);
    return tu_run(s);
}
