/* Proxies in a child's argument bytes: the manager's argument passer
 * (process/passer.h). Every live proxy of this process is in a set (a
 * sorted array of addresses); at a start the bytes are scanned for them at
 * pointer-aligned offsets, as for connections. The description is one
 * entry per manager handle: [address, key, max_message, call_timeout_ms,
 * [[offset, id, typeid], ...]]. In the child each entry becomes a handle
 * of the child's own that connects on its first call with the parent's
 * key, and each object a proxy on it (one, however many times it is
 * found) that takes its reference on its first call; they are freed when
 * the target returns. */
#include "base/module.h"
#include "base/ptrset.h"
#include "manager/manager.h"
#include "process/passer.h"

#include <stdlib.h>
#include <string.h>

/* ---- the set of live proxies ---------------------------------------------------- */

static mproc__ptrset live = MPROC__PTRSET_INIT;

int mproc__mgr_proxy_register(const mproc_proxy *p)
{
    return mproc__ptrset_add(&live, p);
}

void mproc__mgr_proxy_unregister(const mproc_proxy *p)
{
    mproc__ptrset_remove(&live, p);
}

/* ---- the parent's side ------------------------------------------------------------ */

/* The entry of m in desc (made if new), or NULL when memory ran out. */
static mproc_value *entry_for(mproc_value *desc, mproc_manager **ms, size_t *nms, mproc_manager *m)
{
    for (size_t i = 0; i < *nms; i++)
        if (ms[i] == m) return mproc_value_list_get(mproc_value_list_get(desc, i), 4);
    mproc__mgr_link l;
    mproc__mgr_link_of(m, &l);
    mproc_value *e = mproc_value_list(), *refs = mproc_value_list();
    int rc = e && refs ? 0 : MPROC_ENOMEM;
    if (!rc) rc = mproc_value_list_append(e, mproc_value_str(l.address));
    if (!rc) rc = mproc_value_list_append(e, mproc_value_bytes(l.key, l.key_len));
    if (!rc) rc = mproc_value_list_append(e, mproc_value_uint(l.max_msg));
    if (!rc) rc = mproc_value_list_append(e, mproc_value_int(l.call_ms));
    if (!rc) {
        rc = mproc_value_list_append(e, refs);
        refs = NULL;
    }
    mproc_value_free(refs);
    if (!rc) {
        rc = mproc_value_list_append(desc, e);
        e = NULL;
    }
    mproc_value_free(e);
    if (rc) return NULL;
    ms[(*nms)++] = m;
    return mproc_value_list_get(mproc_value_list_get(desc, *nms - 1), 4);
}

typedef struct proxy_hit {
    size_t off;
    mproc_proxy *p;
} proxy_hit;

typedef struct found {
    proxy_hit *hits;
    size_t n, cap;
} found;

static int found_hit(size_t off, uintptr_t word, void *ud)
{
    found *f = ud;
    if (f->n == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 8;
        proxy_hit *h = realloc(f->hits, nc * sizeof *h);
        if (!h) return MPROC_ENOMEM;
        f->hits = h;
        f->cap = nc;
    }
    f->hits[f->n++] = (proxy_hit){off, (mproc_proxy *)word};
    return 0;
}

static int describe(const void *bytes, size_t len, mproc_value **out)
{
    *out = NULL;
    /* the proxies found, held under the set's lock only while looking */
    found f = {0};
    int rc = mproc__ptrset_scan(&live, bytes, len, found_hit, &f);
    size_t n = f.n;
    proxy_hit *hits = f.hits;
    if (rc || n == 0) {
        free(hits);
        return rc;
    }
    mproc_value *desc = mproc_value_list();
    mproc_manager **ms = malloc(n * sizeof *ms);
    size_t nms = 0;
    if (!desc || !ms) rc = MPROC_ENOMEM;
    for (size_t i = 0; i < n && !rc; i++) {
        uint64_t id;
        mproc_manager *m = mproc__mgr_proxy_link(hits[i].p, &id);
        mproc_value *refs = entry_for(desc, ms, &nms, m), *r = mproc_value_list();
        rc = refs && r ? 0 : MPROC_ENOMEM;
        if (!rc) rc = mproc_value_list_append(r, mproc_value_uint(hits[i].off));
        if (!rc) rc = mproc_value_list_append(r, mproc_value_uint(id));
        if (!rc) rc = mproc_value_list_append(r, mproc_value_str(mproc_proxy_typeid(hits[i].p)));
        if (!rc) {
            rc = mproc_value_list_append(refs, r);
            r = NULL;
        }
        mproc_value_free(r);
    }
    free(ms);
    free(hits);
    if (rc) {
        mproc_value_free(desc);
        return rc;
    }
    *out = desc;
    return 0;
}

/* ---- the child's side -------------------------------------------------------------- */

/* What a child made: freed when its target returns. */
typedef struct kept_set {
    mproc_manager **ms;
    size_t nms;
    mproc_proxy **ps;
    size_t nps;
} kept_set;

static void release(void *k)
{
    kept_set *ks = k;
    if (!ks) return;
    for (size_t i = 0; i < ks->nps; i++) mproc_proxy_free(ks->ps[i]);
    for (size_t i = 0; i < ks->nms; i++) mproc_manager_free(ks->ms[i]);
    free(ks->ps);
    free(ks->ms);
    free(ks);
}

static int adopt(const mproc_value *desc, void *bytes, size_t len, void **kept)
{
    size_t ne = mproc_value_len(desc), np = 0;
    for (size_t i = 0; i < ne; i++)
        np += mproc_value_len(mproc_value_list_get(mproc_value_list_get(desc, i), 4));
    kept_set *ks = calloc(1, sizeof *ks);
    if (!ks || !(ks->ms = calloc(ne ? ne : 1, sizeof *ks->ms)) ||
        !(ks->ps = calloc(np ? np : 1, sizeof *ks->ps))) {
        release(ks);
        return MPROC_ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; i < ne && !rc; i++) {
        const mproc_value *e = mproc_value_list_get(desc, i);
        mproc__mgr_link l = {0};
        uint64_t max_msg = 0;
        int64_t call_ms = 0;
        l.address = mproc_value_get_str(mproc_value_list_get(e, 0), NULL);
        l.key = mproc_value_get_bytes(mproc_value_list_get(e, 1), &l.key_len);
        if (!l.address || mproc_value_kind_of(mproc_value_list_get(e, 1)) != MPROC_V_BYTES ||
            mproc_value_get_uint(mproc_value_list_get(e, 2), &max_msg) ||
            mproc_value_get_int(mproc_value_list_get(e, 3), &call_ms)) {
            rc = MPROC_EPROTO;
            break;
        }
        l.max_msg = (size_t)max_msg;
        l.call_ms = (int)call_ms;
        mproc_manager *m;
        if ((rc = mproc__mgr_client_lazy(&m, &l))) break;
        ks->ms[ks->nms++] = m;
        const mproc_value *refs = mproc_value_list_get(e, 4);
        size_t first = ks->nps;
        for (size_t k = 0; k < mproc_value_len(refs) && !rc; k++) {
            const mproc_value *r = mproc_value_list_get(refs, k);
            uint64_t off, id;
            const char *typeid = mproc_value_get_str(mproc_value_list_get(r, 2), NULL);
            if (mproc_value_get_uint(mproc_value_list_get(r, 0), &off) ||
                mproc_value_get_uint(mproc_value_list_get(r, 1), &id) || !typeid || off > len ||
                len - off < sizeof(mproc_proxy *)) {
                rc = MPROC_EPROTO;
                break;
            }
            /* one proxy per object and handle (a proxy passed twice is one) */
            mproc_proxy *p = NULL;
            for (size_t j = first; j < ks->nps && !p; j++) {
                uint64_t jid;
                if (mproc__mgr_proxy_link(ks->ps[j], &jid) == m && jid == id) p = ks->ps[j];
            }
            if (!p) {
                if ((rc = mproc__mgr_proxy_lazy(m, id, typeid, &p))) break;
                ks->ps[ks->nps++] = p;
            }
            memcpy((char *)bytes + off, &p, sizeof p);
        }
    }
    if (rc) {
        release(ks);
        return rc;
    }
    *kept = ks;
    return 0;
}

/* A live proxy of this process: a handle the start translates, not a
 * stray heap pointer (process/arg_check.h). */
static bool is_live_proxy(uintptr_t word)
{
    return mproc__ptrset_contains(&live, word);
}

static const mproc__arg_passer proxy_passer = {
    .name = "manager.proxy",
    .describe = describe,
    .adopt = adopt,
    .release = release,
    .is_handle = is_live_proxy,
};

static void travel_init(void)
{
    mproc__arg_passer_register(&proxy_passer);
}

/* In a fork child: another thread may have held the lock at the fork. */
static void travel_after_fork_child(void)
{
    mproc__ptrset_after_fork(&live);
}

static mproc__module travel_module = {
    .name = "manager.travel",
    .rank = MPROC__RANK_MANAGER,
    .init = travel_init,
    .after_fork_child = travel_after_fork_child,
};
MPROC__MODULE(travel_module)
