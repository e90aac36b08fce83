/* Managers at their limits, on TCP and on the local transport, under
 * every start method: the message cap (requests and replies over it are
 * refused with MPROC_EMSGSIZE and the connection stays usable) and the
 * call deadline (a stopped server times its clients' calls out). */
#include "mgrutil.h"

#include <signal.h>
#include <stdatomic.h>

#define MIB ((size_t)1 << 20)

/* A manager on TCP loopback under tu_methods[i], its owner's handle on
 * the socket (local false) or on the local transport (local true). */
static mproc_manager *start_on(int i, bool local, const mproc_manager_opts *extra)
{
    mproc_manager_opts o = extra ? *extra : (mproc_manager_opts){0};
    o.address = "127.0.0.1:0";
    if (!local) setenv("MPROC_MANAGER_LOCAL", "0", 1);
    mproc_manager *m = mgr_start(i, &o);
    unsetenv("MPROC_MANAGER_LOCAL");
    return m;
}

/* A bytes value of n bytes (a pattern). */
static mproc_value *blob(size_t n)
{
    unsigned char *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    for (size_t k = 0; k < n; k++) p[k] = (unsigned char)(k * 31 + 7);
    mproc_value *v = mproc_value_bytes(p, n);
    free(p);
    ck_assert_ptr_nonnull(v);
    return v;
}

static int append_blob(mproc_proxy *l, size_t n)
{
    mproc_value *v = blob(n);
    int rc = mproc_proxy_append(l, v);
    mproc_value_free(v);
    return rc;
}

static void append_int(mproc_proxy *l, int64_t x)
{
    mproc_value *v = I(x);
    TU_OK(mproc_proxy_append(l, v));
    mproc_value_free(v);
}

/* The proxy's list has n items (the connection works). */
static void has_len(mproc_proxy *l, size_t n)
{
    size_t got = 0;
    TU_OK(mproc_proxy_len(l, &got));
    ck_assert_uint_eq(got, n);
}

/* Item k of l is a bytes value of n bytes. */
static void item_is_blob(mproc_proxy *l, int k, size_t n)
{
    mproc_value *key = mproc_value_int(k), *r = NULL;
    TU_OK(mproc_proxy_getitem(l, key, &r));
    mproc_value_free(key);
    size_t len = 0;
    ck_assert_ptr_nonnull(mproc_value_get_bytes(r, &len));
    ck_assert_uint_eq(len, n);
    mproc_value_free(r);
}

/* 70 MiB is over the default cap of 64 MiB: refused before anything is
 * sent, and the same handle goes on working. */
START_TEST(request_over_default_cap)
{
    for (int local = 0; local < 2; local++) {
        mproc_manager *m = start_on(_i, local, NULL);
        mproc_proxy *l;
        TU_OK(mproc_manager_create(m, "list", NULL, &l));
        int rc = append_blob(l, 70 * MIB);
        ck_assert_msg(rc == MPROC_EMSGSIZE, "%s: 70 MiB append -> %s, want MPROC_EMSGSIZE",
                      local ? "local" : "tcp", mproc_err_name(rc));
        append_int(l, 1);
        has_len(l, 1);
        mproc_proxy_free(l);
        mproc_manager_free(m);
    }
}
END_TEST

/* Just under the default cap: a request of 64 MiB less a few bytes of
 * framing, and a reply as large (one start method: the transfer is what
 * is tested, and it is slow under sanitizers). */
START_TEST(just_under_default_cap)
{
    for (int local = 0; local < 2; local++) {
        mproc_manager *m = start_on(0, local, NULL);
        mproc_proxy *l;
        TU_OK(mproc_manager_create(m, "list", NULL, &l));
        TU_OK(append_blob(l, 64 * MIB - 64));
        has_len(l, 1);
        item_is_blob(l, 0, 64 * MIB - 64);
        mproc_proxy_free(l);
        mproc_manager_free(m);
    }
}
END_TEST

/* A result over the cap: the method ran, its reply is an error, and the
 * connection goes on. */
START_TEST(reply_over_cap)
{
    for (int local = 0; local < 2; local++) {
        mproc_manager *m = start_on(_i, local, &(mproc_manager_opts){.max_message = MIB});
        mproc_proxy *l;
        TU_OK(mproc_manager_create(m, "list", NULL, &l));
        TU_OK(append_blob(l, 600 * 1024));
        TU_OK(append_blob(l, 600 * 1024));
        mproc_value *r = NULL;
        int rc = mproc_proxy_call(l, "copy", NULL, &r);
        ck_assert_msg(rc == MPROC_EMSGSIZE, "%s: copy of 1.2 MiB -> %s", local ? "local" : "tcp",
                      mproc_err_name(rc));
        ck_assert_ptr_null(r);
        const char *msg;
        mproc_manager_last_error(&rc, &msg);
        ck_assert_int_eq(rc, MPROC_EMSGSIZE);
        ck_assert_msg(strstr(msg, "reply"), "message: %s", msg);
        has_len(l, 2);
        item_is_blob(l, 1, 600 * 1024);
        mproc_proxy_free(l);
        mproc_manager_free(m);
    }
}
END_TEST

/* A server with a cap of 1 MiB: its owner's handle, a client that
 * connects with the default cap (it learns the server's), and a client
 * with a smaller cap (the server learns its). */
START_TEST(custom_cap)
{
    for (int local = 0; local < 2; local++) {
        const char *how = local ? "local" : "tcp";
        mproc_manager *m = start_on(_i, local, &(mproc_manager_opts){.max_message = MIB});
        mproc_proxy *l;
        TU_OK(mproc_manager_create(m, "list", NULL, &l));
        int rc = append_blob(l, 2 * MIB);
        ck_assert_msg(rc == MPROC_EMSGSIZE, "%s: owner 2 MiB -> %s", how, mproc_err_name(rc));
        TU_OK(append_blob(l, MIB - 64));
        has_len(l, 1);
        item_is_blob(l, 0, MIB - 64);

        if (!local) setenv("MPROC_MANAGER_LOCAL", "0", 1);
        mproc_manager *big, *small;
        TU_OK(mproc_manager_connect(&big, mproc_manager_address(m), NULL, 0));
        TU_OK(mproc_manager_connect_opts(
            &small,
            &(mproc_manager_opts){.address = mproc_manager_address(m), .max_message = 256 * 1024}));
        unsetenv("MPROC_MANAGER_LOCAL");
        mproc_value *ref = mproc_proxy_ref(l);
        mproc_proxy *lb, *ls;
        TU_OK(mproc_proxy_from_value(big, ref, &lb));
        TU_OK(mproc_proxy_from_value(small, ref, &ls));
        mproc_value_free(ref);
        rc = append_blob(lb, 2 * MIB);
        ck_assert_msg(rc == MPROC_EMSGSIZE, "%s: default-cap client 2 MiB -> %s", how,
                      mproc_err_name(rc));
        has_len(lb, 1);
        rc = append_blob(ls, 300 * 1024);
        ck_assert_msg(rc == MPROC_EMSGSIZE, "%s: small client 300 KiB -> %s", how,
                      mproc_err_name(rc));
        mproc_value *key = I(0), *r = NULL;
        rc = mproc_proxy_getitem(ls, key, &r); /* a reply of 1 MiB: over its cap */
        mproc_value_free(key);
        ck_assert_msg(rc == MPROC_EMSGSIZE, "%s: small client reads 1 MiB -> %s", how,
                      mproc_err_name(rc));
        has_len(ls, 1);
        TU_OK(append_blob(ls, 200 * 1024));
        has_len(l, 2);
        /* a queue get whose item is over the small client's cap: the item
         * goes back to the queue */
        mproc_proxy *q, *qs;
        TU_OK(mproc_manager_create(m, "Queue", NULL, &q));
        mproc_value *item = blob(600 * 1024), *qref = mproc_proxy_ref(q);
        TU_OK(call_with(q, "put", args1(item), NULL));
        TU_OK(mproc_proxy_from_value(small, qref, &qs));
        mproc_value_free(qref);
        rc = call_with(qs, "get", args1(I(0)), &r);
        ck_assert_msg(rc == MPROC_EMSGSIZE, "%s: small client gets 600 KiB -> %s", how,
                      mproc_err_name(rc));
        r = NULL;
        TU_OK(call_with(q, "get", args1(I(0)), &r)); /* still there, for the owner */
        size_t got = 0;
        ck_assert_ptr_nonnull(mproc_value_get_bytes(r, &got));
        ck_assert_uint_eq(got, 600 * 1024);
        mproc_value_free(r);
        mproc_proxy_free(qs);
        mproc_proxy_free(q);
        mproc_proxy_free(ls);
        mproc_proxy_free(lb);
        mproc_manager_free(small);
        mproc_manager_free(big);
        mproc_proxy_free(l);
        mproc_manager_free(m);
    }
}
END_TEST

/* In a pipelined batch, a call over the cap is refused alone. */
START_TEST(pipelined_call_over_cap)
{
    for (int local = 0; local < 2; local++) {
        mproc_manager *m = start_on(_i, local, &(mproc_manager_opts){.max_message = 64 * 1024});
        mproc_proxy *l;
        TU_OK(mproc_manager_create(m, "list", NULL, &l));
        enum { N = 150 };
        mproc_call calls[N];
        mproc_value *args[N], *res[N];
        int codes[N];
        for (int k = 0; k < N; k++) {
            args[k] = args1(k % 50 == 7 ? blob(100 * 1024) : I(k));
            calls[k] = (mproc_call){l, "append", args[k]};
        }
        TU_OK(mproc_manager_call_many(m, calls, N, res, codes));
        for (int k = 0; k < N; k++) {
            ck_assert_int_eq(codes[k], k % 50 == 7 ? MPROC_EMSGSIZE : 0);
            mproc_value_free(res[k]);
            mproc_value_free(args[k]);
        }
        has_len(l, N - 3);
        mproc_proxy_free(l);
        mproc_manager_free(m);
    }
}
END_TEST

START_TEST(options_out_of_range)
{
    mproc_manager *m;
    TU_RC(mproc_manager_start(&m, &(mproc_manager_opts){.max_message = 100}), MPROC_EINVAL);
    TU_RC(mproc_manager_start(&m, &(mproc_manager_opts){.call_timeout_ms = -2}), MPROC_EINVAL);
    TU_RC(mproc_manager_serve(&(mproc_manager_opts){.max_message = 1023}, NULL, NULL),
          MPROC_EINVAL);
    TU_RC(mproc_manager_connect_opts(&m, &(mproc_manager_opts){.address = "x", .max_message = 1}),
          MPROC_EINVAL);
    TU_RC(mproc_manager_connect_opts(
              &m, &(mproc_manager_opts){.address = "x", .call_timeout_ms = -1000}),
          MPROC_EINVAL);
    TU_RC(mproc_manager_connect_opts(&m, &(mproc_manager_opts){0}), MPROC_EINVAL);
}
END_TEST

/* ---- call deadlines ------------------------------------------------------------------- */

/* A server in a process of the test's own (so that it can be stopped):
 * it publishes its address in the arena. */
typedef struct served {
    char address[256];
    atomic_int ready;
} served;

static void on_ready(const char *address, void *ud)
{
    served *sv = ud;
    snprintf(sv->address, sizeof sv->address, "%s", address);
    atomic_store(&sv->ready, 1);
}

static int server_target(void *arg)
{
    served *sv = *(served **)arg;
    mproc_manager_opts o = {.address = "127.0.0.1:0"};
    return mproc_manager_serve(&o, on_ready, sv) == 0 ? 0 : 1;
}

/* A manager server on TCP in a child (opts: its start method), once it
 * serves: the child, and its address in *svp. */
static mproc_process *start_server(served **svp, const mproc_process_opts *opts)
{
    served *sv;
    TU_OK(mproc_arena_calloc((void **)&sv, sizeof *sv));
    mproc_process *p;
    TU_OK(mproc_process_new(&p, server_target, &sv, sizeof sv, opts));
    TU_OK(mproc_process_start(p));
    for (int k = 0; k < 2000 && !atomic_load(&sv->ready); k++) tu_sleep_ms(10);
    ck_assert(atomic_load(&sv->ready));
    *svp = sv;
    return p;
}

/* Asks the server of start_server to shut down, and joins it. */
static void shut_down_server(served *sv, mproc_process *p)
{
    mproc_manager *c;
    TU_OK(mproc_manager_connect(&c, sv->address, NULL, 0));
    TU_OK(mproc_manager_shutdown(c));
    mproc_manager_free(c);
    TU_OK(mproc_process_join(p, 20000));
}

/* Stops pid and waits until all its threads are stopped (a stop signal
 * takes effect a little after kill returns). */
static void stop(pid_t pid)
{
    ck_assert_int_eq(kill(pid, SIGSTOP), 0);
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
    for (int k = 0; k < 2000; k++) {
        bool all = true;
        DIR *d = opendir(dir);
        ck_assert_ptr_nonnull(d);
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.') continue;
            char path[384], buf[256] = "";
            snprintf(path, sizeof path, "%s/%s/stat", dir, e->d_name);
            FILE *f = fopen(path, "r");
            if (!f) continue; /* a thread that ended */
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = '\0';
            const char *st = strrchr(buf, ')'); /* "pid (comm) S ..." */
            if (st && st[1] == ' ' && st[2] != 'T' && st[2] != 't') all = false;
        }
        closedir(d);
        if (all) return;
        tu_sleep_ms(1);
    }
    ck_abort_msg("pid %d did not stop", (int)pid);
}

static double since(long long t0)
{
    return (double)(mproc_now_ns() - t0) / 1e9;
}

/* A call to a stopped server ends at its deadline; the handle is then
 * broken (MPROC_ECONNABORTED at once), and the server, continued, still
 * serves others. */
START_TEST(call_deadline_on_stopped_server)
{
    served *sv;
    mproc_process *p = start_server(&sv, TU_OPTS);
    for (int local = 0; local < 2; local++) {
        const char *how = local ? "local" : "tcp";
        if (!local) setenv("MPROC_MANAGER_LOCAL", "0", 1);
        mproc_manager *c;
        TU_OK(mproc_manager_connect_opts(
            &c, &(mproc_manager_opts){.address = sv->address, .call_timeout_ms = 300}));
        unsetenv("MPROC_MANAGER_LOCAL");
        mproc_proxy *l, *q;
        TU_OK(mproc_manager_create(c, "list", NULL, &l));
        TU_OK(mproc_manager_create(c, "Queue", NULL, &q));
        append_int(l, 1);
        /* a blocking method within the deadline is fine */
        mproc_value *r = NULL;
        ck_assert_int_eq(call_with(q, "get", args1(I(100)), &r), MPROC_EMETHOD);
        has_len(l, 1);

        stop(mproc_process_pid(p));
        long long t0 = mproc_now_ns();
        mproc_value *v = I(2);
        int rc = mproc_proxy_append(l, v);
        mproc_value_free(v);
        double s = since(t0);
        ck_assert_msg(rc == MPROC_ETIMEDOUT, "%s: call to a stopped server -> %s", how,
                      mproc_err_name(rc));
        ck_assert_msg(s >= 0.25 && s < 10, "%s: timed out after %.3f s", how, s);
        t0 = mproc_now_ns();
        size_t n;
        TU_RC(mproc_proxy_len(l, &n), MPROC_ECONNABORTED);
        mproc_proxy *x;
        TU_RC(mproc_manager_create(c, "dict", NULL, &x), MPROC_ECONNABORTED);
        mproc_call call = {l, "len", NULL};
        int code;
        TU_RC(mproc_manager_call_many(c, &call, 1, NULL, &code), MPROC_ECONNABORTED);
        ck_assert_msg(since(t0) < 1, "%s: a broken handle waited", how);
        ck_assert_int_eq(kill(mproc_process_pid(p), SIGCONT), 0);
        mproc_proxy_free(q);
        mproc_proxy_free(l);
        mproc_manager_free(c);

        /* the server goes on */
        mproc_manager *c2;
        TU_OK(mproc_manager_connect(&c2, sv->address, NULL, 0));
        TU_OK(mproc_manager_create(c2, "list", NULL, &l));
        has_len(l, 0);
        mproc_proxy_free(l);
        mproc_manager_free(c2);
    }
    shut_down_server(sv, p);
    int code = -1;
    TU_OK(mproc_process_exitcode(p, &code));
    ck_assert_int_eq(code, 0);
    TU_OK(mproc_process_free(p));
    mproc_arena_free(sv);
}
END_TEST

/* A deadline on a call whose request cannot even be sent (a stopped
 * server's socket full): the send too ends in time. */
START_TEST(call_deadline_while_sending)
{
    served *sv;
    mproc_process *p = start_server(&sv, TU_OPTS);
    setenv("MPROC_MANAGER_LOCAL", "0", 1);
    mproc_manager *c;
    TU_OK(mproc_manager_connect_opts(
        &c, &(mproc_manager_opts){.address = sv->address, .call_timeout_ms = 500}));
    unsetenv("MPROC_MANAGER_LOCAL");
    mproc_proxy *l;
    TU_OK(mproc_manager_create(c, "list", NULL, &l));
    stop(mproc_process_pid(p));
    long long t0 = mproc_now_ns();
    int rc = append_blob(l, 48 * MIB); /* more than the socket buffers hold */
    double s = since(t0);
    ck_assert_msg(rc == MPROC_ETIMEDOUT, "-> %s", mproc_err_name(rc));
    ck_assert_msg(s >= 0.4 && s < 10, "timed out after %.3f s", s);
    ck_assert_int_eq(kill(mproc_process_pid(p), SIGCONT), 0);
    mproc_proxy_free(l);
    mproc_manager_free(c);
    shut_down_server(sv, p);
    TU_OK(mproc_process_free(p));
    mproc_arena_free(sv);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("manager_limits");
    TCase *tc = tu_tcase(s, "message_cap", 120);
    tcase_add_loop_test(tc, request_over_default_cap, 0, TU_NMETHODS);
    tcase_add_test(tc, just_under_default_cap);
    tcase_add_loop_test(tc, reply_over_cap, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, custom_cap, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, pipelined_call_over_cap, 0, TU_NMETHODS);
    tcase_add_test(tc, options_out_of_range);
    tc = tu_tcase(s, "call_deadline", 60);
    tcase_add_loop_test(tc, call_deadline_on_stopped_server, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, call_deadline_while_sending, 0, TU_NMETHODS);
    return tu_run(s);
}
