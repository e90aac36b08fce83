/* The set of this process's live connections (see conn/conn.h), so that
 * argument bytes can be scanned for connection handles quickly. */
#include "base/module.h"
#include "base/ptrset.h"
#include "conn/conn.h"

static mproc__ptrset live = MPROC__PTRSET_INIT;

int mproc__conn_register(const mproc_conn *c)
{
    return mproc__ptrset_add(&live, c);
}

void mproc__conn_unregister(const mproc_conn *c)
{
    mproc__ptrset_remove(&live, c);
}

typedef struct scan_out {
    mproc__conn_hit *hits;
    size_t cap, n;
} scan_out;

static int scan_hit(size_t off, uintptr_t word, void *ud)
{
    scan_out *o = ud;
    if (o->n < o->cap) o->hits[o->n] = (mproc__conn_hit){off, (mproc_conn *)word};
    o->n++;
    return 0;
}

size_t mproc__conn_scan(const void *bytes, size_t len, mproc__conn_hit *hits, size_t cap)
{
    scan_out o = {hits, cap, 0};
    mproc__ptrset_scan(&live, bytes, len, scan_hit, &o);
    return o.n;
}

static void registry_after_fork_child(void)
{
    mproc__ptrset_after_fork(&live);
}

static mproc__module registry_module = {
    .name = "conn.registry",
    .rank = MPROC__RANK_CONN,
    .after_fork_child = registry_after_fork_child,
};
MPROC__MODULE(registry_module)
