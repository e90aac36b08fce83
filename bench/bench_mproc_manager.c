/* bench_mproc rows for managers: proxy operations on a dict and a list from
 * the process that started the manager (a process of the family, over the
 * local transport), dict sets over TCP loopback, and a manager's start +
 * shutdown.
 *
 * Every manager here is started under the default start method (forkserver
 * unless MPROC_START_METHOD says otherwise), whose server is started
 * before the clock, as in the pool rows. The operation rows start their
 * manager once per program (the first run of the row, off the clock) and
 * make a new dict or list for each run; py_anchor.py does the same with
 * Manager() and, for the remote row, a SyncManager (a BaseManager) on
 * ("127.0.0.1", 0). Sequential calls: one request, one reply. The remote
 * client is kept on its TCP socket (MPROC_MANAGER_LOCAL=0 while it
 * connects), though it is of the server's family. manager.pipelined.remote
 * sends the same dict sets with mproc_manager_call_many in batches of
 * 1000; Python has no pipelined proxy call (null). */
#include "bench_mproc.h"

#include <stdlib.h>
#include <string.h>

/* The operation rows' manager: local (NULL address) or TCP loopback; the
 * remote one is reached through a connection of its own
 * (mproc_manager_connect, BaseManager.connect()). */
static mproc_manager *g_mgr, *g_remote, *g_remote_owner;

static const char REMOTE_KEY[] = "bench-manager";

static int manager(bool remote, mproc_manager **out)
{
    if (ensure_server() != 0) return -1;
    if (!remote) {
        if (!g_mgr) CHECK(mproc_manager_start(&g_mgr, NULL));
        *out = g_mgr;
        return 0;
    }
    if (!g_remote_owner) {
        mproc_manager_opts o = {
            .address = "127.0.0.1:0", .authkey = REMOTE_KEY, .authkey_len = sizeof REMOTE_KEY - 1};
        CHECK(mproc_manager_start(&g_remote_owner, &o));
        setenv("MPROC_MANAGER_LOCAL", "0", 1);
        int rc = mproc_manager_connect(&g_remote, mproc_manager_address(g_remote_owner), REMOTE_KEY,
                                       sizeof REMOTE_KEY - 1);
        unsetenv("MPROC_MANAGER_LOCAL");
        CHECK(rc);
    }
    *out = g_remote;
    return 0;
}

typedef enum op { OP_DICT_SET, OP_DICT_GET, OP_LIST_APPEND } op;

/* n operations on a new dict or list; d["k"] is set before a get run. */
static int proxy_ops(op what, bool remote, long n, double *secs)
{
    mproc_manager *m;
    mproc_proxy *p;
    if (manager(remote, &m) != 0) return -1;
    CHECK(mproc_manager_create(m, what == OP_LIST_APPEND ? "list" : "dict", NULL, &p));
    mproc_value *key = mproc_value_str("k"), *got = NULL;
    int rc = key ? 0 : MPROC_ENOMEM;
    if (!rc && what == OP_DICT_GET) {
        mproc_value *v = mproc_value_int(1);
        rc = v ? mproc_proxy_setitem(p, key, v) : MPROC_ENOMEM;
        mproc_value_free(v);
    }
    double t0 = bench_now();
    for (long i = 0; i < n && !rc; i++) {
        if (what == OP_DICT_GET) {
            rc = mproc_proxy_getitem(p, key, &got);
            mproc_value_free(got);
            continue;
        }
        mproc_value *v = mproc_value_int(i);
        if (!v)
            rc = MPROC_ENOMEM;
        else if (what == OP_DICT_SET)
            rc = mproc_proxy_setitem(p, key, v);
        else
            rc = mproc_proxy_append(p, v);
        mproc_value_free(v);
    }
    *secs = bench_now() - t0;
    mproc_value_free(key);
    mproc_proxy_free(p);
    CHECK(rc);
    return 0;
}

static int dict_set_local(long n, double *secs)
{
    return proxy_ops(OP_DICT_SET, false, n, secs);
}

static int dict_get_local(long n, double *secs)
{
    return proxy_ops(OP_DICT_GET, false, n, secs);
}

static int list_append_local(long n, double *secs)
{
    return proxy_ops(OP_LIST_APPEND, false, n, secs);
}

static int dict_set_remote(long n, double *secs)
{
    return proxy_ops(OP_DICT_SET, true, n, secs);
}

/* n dict sets over TCP, pipelined in batches of 1000. */
static int pipelined_remote(long n, double *secs)
{
    mproc_manager *m;
    mproc_proxy *p;
    if (manager(true, &m) != 0) return -1;
    CHECK(mproc_manager_create(m, "dict", NULL, &p));
    enum { BATCH = 1000 };
    mproc_call *calls = malloc(BATCH * sizeof *calls);
    int *codes = malloc(BATCH * sizeof *codes);
    mproc_value *args = mproc_value_list();
    int rc = calls && codes && args ? 0 : MPROC_ENOMEM;
    if (!rc) rc = mproc_value_list_append(args, mproc_value_str("k"));
    if (!rc) rc = mproc_value_list_append(args, mproc_value_int(1));
    for (long i = 0; !rc && i < BATCH; i++) calls[i] = (mproc_call){p, "setitem", args};
    double t0 = bench_now();
    for (long done = 0; !rc && done < n; done += BATCH) {
        size_t k = (size_t)(n - done < BATCH ? n - done : BATCH);
        rc = mproc_manager_call_many(m, calls, k, NULL, codes);
        for (size_t i = 0; !rc && i < k; i++) rc = codes[i];
    }
    *secs = bench_now() - t0;
    mproc_value_free(args);
    free(calls);
    free(codes);
    mproc_proxy_free(p);
    CHECK(rc);
    return 0;
}

/* ---- manager.start_shutdown ------------------------------------------------ */

static int start_shutdown(long n, double *secs)
{
    if (ensure_server() != 0) return -1;
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        mproc_manager *m;
        CHECK(mproc_manager_start(&m, NULL));
        int rc = mproc_manager_shutdown(m);
        mproc_manager_free(m); /* joins the server */
        CHECK(rc);
    }
    *secs = bench_now() - t0;
    return 0;
}

static const bench_row rows[] = {
    {"manager.dict_set.local", dict_set_local, BENCH_PER_S, 0},
    {"manager.dict_get.local", dict_get_local, BENCH_PER_S, 0},
    {"manager.list_append.local", list_append_local, BENCH_PER_S, 0},
    {"manager.dict_set.remote", dict_set_remote, BENCH_PER_S, 0},
    {"manager.pipelined.remote", pipelined_remote, BENCH_PER_S, 0},
    {"manager.start_shutdown", start_shutdown, BENCH_MS, 0},
};

const bench_table bench_mproc_manager = BENCH_TABLE(rows);
