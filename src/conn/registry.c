/* The set of this process's live connections (see conn/conn.h): a
 * sorted array of addresses, so that argument bytes can be scanned for
 * connection handles quickly. */
#include "base/module.h"
#include "conn/conn.h"

#include <pthread.h>
#include <stdlib.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t *set;
static size_t count, cap;

/* The index of the first element >= v. */
static size_t lower_bound(uintptr_t v)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (set[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int mproc__conn_register(const mproc_conn *c)
{
    int rc = 0;
    pthread_mutex_lock(&mu);
    if (count == cap) {
        size_t ncap = cap ? cap * 2 : 16;
        uintptr_t *n = realloc(set, ncap * sizeof *n);
        if (!n) rc = MPROC_ENOMEM;
        if (n) {
            set = n;
            cap = ncap;
        }
    }
    if (rc == 0) {
        size_t i = lower_bound((uintptr_t)c);
        for (size_t j = count; j > i; j--) set[j] = set[j - 1];
        set[i] = (uintptr_t)c;
        count++;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

void mproc__conn_unregister(const mproc_conn *c)
{
    pthread_mutex_lock(&mu);
    size_t i = lower_bound((uintptr_t)c);
    if (i < count && set[i] == (uintptr_t)c) {
        for (size_t j = i + 1; j < count; j++) set[j - 1] = set[j];
        count--;
    }
    pthread_mutex_unlock(&mu);
}

size_t mproc__conn_scan(const void *bytes, size_t len, mproc__conn_hit *hits, size_t cap)
{
    size_t n = 0;
    pthread_mutex_lock(&mu);
    if (count) {
        uintptr_t lo = set[0], hi = set[count - 1];
        const unsigned char *b = bytes;
        for (size_t off = 0; off + sizeof(uintptr_t) <= len; off += sizeof(uintptr_t)) {
            uintptr_t v;
            __builtin_memcpy(&v, b + off, sizeof v);
            if (v < lo || v > hi) continue;
            size_t i = lower_bound(v);
            if (i == count || set[i] != v) continue;
            if (n < cap) hits[n] = (mproc__conn_hit){off, (mproc_conn *)v};
            n++;
        }
    }
    pthread_mutex_unlock(&mu);
    return n;
}

/* In a fork child: another thread may have held the lock at the fork. */
static void registry_after_fork_child(void)
{
    mu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
}

static mproc__module registry_module = {
    .name = "conn.registry",
    .rank = MPROC__RANK_CONN,
    .after_fork_child = registry_after_fork_child,
};
MPROC__MODULE(registry_module)
