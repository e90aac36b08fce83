/* Dynamic values: building, inspecting, copying, comparing and freeing the
 * tree. The layout is in value/value.h; the printer is value/repr.c and
 * the CBOR codec value/cbor.c.
 *
 * Maps keep their entries in insertion order. Up to MPROC__MAP_INDEX_MIN
 * entries a lookup is a linear scan with mproc_value_equal; past that the
 * map gets an open-addressing index (linear probing, load <= 1/2) of entry
 * numbers keyed by a hash of the key, so building a map of n entries costs
 * O(n). The hash is SipHash-1-3 under a per-process random key: a peer
 * that chooses the keys of a decoded map cannot make them collide.
 * Deleting an entry keeps the order, so it moves the later entries and
 * rebuilds the index: O(n). */
#include "base/base.h"
#include "platform/platform.h"
#include "value/value.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- hashing ------------------------------------------------------------ */

static uint64_t sip_k0, sip_k1;
static pthread_once_t sip_once = PTHREAD_ONCE_INIT;

static void sip_seed(void)
{
    uint64_t k[2];
    if (!mproc__random_bytes(k, sizeof k)) {
        k[0] = (uint64_t)mproc_now_ns() ^ ((uint64_t)getpid() << 32);
        k[1] = (uint64_t)(uintptr_t)&k * 0x9e3779b97f4a7c15u;
    }
    sip_k0 = k[0];
    sip_k1 = k[1];
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

/* SipHash-1-3 of p[0..len) under the process's key. */
static uint64_t siphash(const void *p, size_t len)
{
    pthread_once(&sip_once, sip_seed);
    uint64_t v0 = sip_k0 ^ 0x736f6d6570736575u, v1 = sip_k1 ^ 0x646f72616e646f6du;
    uint64_t v2 = sip_k0 ^ 0x6c7967656e657261u, v3 = sip_k1 ^ 0x7465646279746573u;
    const unsigned char *in = p;
    size_t whole = len & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m;
        memcpy(&m, in + i, 8);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = 0;
    memcpy(&b, in + whole, len & 7);
    b |= (uint64_t)len << 56;
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t hash2(uint64_t a, uint64_t b)
{
    uint64_t w[2] = {a, b};
    return siphash(w, sizeof w);
}

static uint64_t hash_str(mproc_value_kind kind, const void *p, size_t len)
{
    uint64_t h = siphash(p, len);
    return kind == MPROC_V_STR ? h : h ^ 0x5bd1e9955bd1e995u;
}

/* Consistent with equal(): equal values hash alike. */
static uint64_t hash_rec(const mproc_value *v, unsigned depth)
{
    if (depth > MPROC__VALUE_NEST_MAX) return 0;
    switch ((mproc_value_kind)v->kind) {
    case MPROC_V_NIL:
        return 0x6e696c;
    case MPROC_V_BOOL:
        return 0x626f6f6c + MPROC__VSCALAR(v)->u.b;
    case MPROC_V_INT:
        return hash2(1, (uint64_t)MPROC__VSCALAR(v)->u.i);
    case MPROC_V_FLOAT: {
        double d = MPROC__VSCALAR(v)->u.d;
        uint64_t bits;
        if (d == 0) d = 0; /* -0.0 == 0.0 */
        if (isnan(d)) return 0x6e616e;
        memcpy(&bits, &d, sizeof bits);
        return hash2(2, bits);
    }
    case MPROC_V_STR:
    case MPROC_V_BYTES:
        return hash_str(v->kind, MPROC__VSTR(v)->data, MPROC__VSTR(v)->len);
    case MPROC_V_HANDLE:
        return hash2(((uint64_t)3 << 32) | v->htype, MPROC__VSCALAR(v)->u.ref);
    case MPROC_V_LIST: {
        const mproc__vlist *l = MPROC__VLIST(v);
        uint64_t h = 0x6c697374 + l->len;
        for (size_t i = 0; i < l->len; i++) h = hash2(h, hash_rec(l->items[i], depth + 1));
        return h;
    }
    case MPROC_V_MAP: {
        /* Entry order does not matter: a sum of per-entry hashes. */
        const mproc__vmap *m = MPROC__VMAP(v);
        uint64_t sum = 0;
        for (size_t i = 0; i < m->len; i++)
            sum += hash2(hash_rec(m->ents[i].key, depth + 1), hash_rec(m->ents[i].val, depth + 1));
        return hash2(0x6d6170 + m->len, sum);
    }
    }
    return 0;
}

/* ---- UTF-8 -------------------------------------------------------------- */

bool mproc__utf8_valid(const void *p, size_t len)
{
    const unsigned char *s = p, *end = s + len;
    uint64_t any = 0; /* the common case first: all ASCII */
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        any |= w;
    }
    for (; i < len; i++) any |= s[i];
    if (!(any & 0x8080808080808080u)) return true;

    while (s < end) {
        if (end - s >= 8) {
            uint64_t w;
            memcpy(&w, s, 8);
            if (!(w & 0x8080808080808080u)) {
                s += 8;
                continue;
            }
        }
        unsigned c = *s;
        if (c < 0x80) {
            s++;
        } else if (c < 0xc2) { /* a stray continuation byte, or overlong */
            return false;
        } else if (c < 0xe0) {
            if (end - s < 2 || (s[1] & 0xc0) != 0x80) return false;
            s += 2;
        } else if (c < 0xf0) {
            if (end - s < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) return false;
            if (c == 0xe0 && s[1] < 0xa0) return false;  /* overlong */
            if (c == 0xed && s[1] >= 0xa0) return false; /* surrogate */
            s += 3;
        } else if (c < 0xf5) {
            if (end - s < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
                (s[3] & 0xc0) != 0x80)
                return false;
            if (c == 0xf0 && s[1] < 0x90) return false;  /* overlong */
            if (c == 0xf4 && s[1] >= 0x90) return false; /* above U+10FFFF */
            s += 4;
        } else {
            return false;
        }
    }
    return true;
}

/* ---- building ----------------------------------------------------------- */

static mproc_value *scalar_new(mproc_value_kind kind)
{
    mproc__vscalar *s = malloc(sizeof *s);
    if (!s) return NULL;
    s->h.kind = (uint8_t)kind;
    s->h.is_uint = 0;
    s->h.inl = 0;
    s->h.htype = 0;
    s->u.ref = 0;
    return &s->h;
}

mproc_value *mproc_value_nil(void)
{
    return scalar_new(MPROC_V_NIL);
}

mproc_value *mproc_value_bool(bool b)
{
    mproc_value *v = scalar_new(MPROC_V_BOOL);
    if (v) MPROC__VSCALAR(v)->u.b = b;
    return v;
}

mproc_value *mproc_value_int(int64_t i)
{
    mproc_value *v = scalar_new(MPROC_V_INT);
    if (v) MPROC__VSCALAR(v)->u.i = i;
    return v;
}

mproc_value *mproc_value_uint(uint64_t u)
{
    mproc_value *v = scalar_new(MPROC_V_INT);
    if (v) {
        MPROC__VSCALAR(v)->u.i = (int64_t)u;
        v->is_uint = u > INT64_MAX; /* small ones are plain ints: 1u == 1 */
    }
    return v;
}

mproc_value *mproc_value_float(double d)
{
    mproc_value *v = scalar_new(MPROC_V_FLOAT);
    if (v) MPROC__VSCALAR(v)->u.d = d;
    return v;
}

mproc_value *mproc_value_handle(uint32_t type, uint64_t ref)
{
    mproc_value *v = scalar_new(MPROC_V_HANDLE);
    if (v) {
        v->htype = type;
        MPROC__VSCALAR(v)->u.ref = ref;
    }
    return v;
}

/* A string or bytes block for len bytes (and the NUL after them), its
 * bytes not yet written; NULL when memory runs out. */
static mproc__vstr *vstr_new(mproc_value_kind kind, size_t len)
{
    if (len > SIZE_MAX - sizeof(mproc__vstr) - 1) return NULL;
    mproc__vstr *s = malloc(sizeof *s + len + 1);
    if (!s) return NULL;
    s->h.kind = (uint8_t)kind;
    s->h.is_uint = 0;
    s->h.inl = 0;
    s->h.htype = 0;
    s->len = len;
    s->data[len] = '\0';
    return s;
}

mproc_value *mproc__value_strn(mproc_value_kind kind, const void *p, size_t len)
{
    mproc__vstr *s = !p && len ? NULL : vstr_new(kind, len);
    if (!s) return NULL;
    if (len) memcpy(s->data, p, len);
    return &s->h;
}

mproc_value *mproc_value_str(const char *s)
{
    return s ? mproc__value_strn(MPROC_V_STR, s, strlen(s)) : NULL;
}

mproc_value *mproc_value_strn(const char *s, size_t len)
{
    return mproc__value_strn(MPROC_V_STR, s, len);
}

mproc_value *mproc_value_bytes(const void *p, size_t len)
{
    return mproc__value_strn(MPROC_V_BYTES, p, len);
}

mproc_value *mproc_value_list(void)
{
    mproc__vlist *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->h.kind = MPROC_V_LIST;
    return &l->h;
}

mproc_value *mproc_value_map(void)
{
    mproc__vmap *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->h.kind = MPROC_V_MAP;
    return &m->h;
}

mproc_value *mproc__value_container(mproc_value_kind kind, size_t n)
{
    size_t head = kind == MPROC_V_LIST ? sizeof(mproc__vlist) : sizeof(mproc__vmap);
    size_t size = kind == MPROC_V_LIST ? sizeof(mproc_value *) : sizeof(mproc__map_ent);
    if (n > (SIZE_MAX - head) / size || (kind == MPROC_V_MAP && n >= UINT32_MAX)) return NULL;
    mproc_value *v = malloc(head + n * size);
    if (!v) return NULL;
    v->kind = (uint8_t)kind;
    v->is_uint = 0;
    v->inl = n > 0;
    v->htype = 0;
    if (kind == MPROC_V_LIST) {
        mproc__vlist *l = MPROC__VLIST(v);
        l->items = n ? (mproc_value **)(l + 1) : NULL;
        l->len = 0;
        l->cap = n;
        l->up = NULL;
    } else {
        mproc__vmap *m = MPROC__VMAP(v);
        m->ents = n ? (mproc__map_ent *)(m + 1) : NULL;
        m->len = 0;
        m->cap = n;
        m->idx = NULL;
        m->icap = 0;
        m->up = NULL;
    }
    return v;
}

/* Room for n more elements of `size` bytes in *arr (cap *cap, len used):
 * at least doubles. *inl says *arr is inside the value's own block (not
 * to be passed to realloc); cleared when the array moves out. */
static int grow(void **arr, size_t *cap, size_t len, size_t n, size_t size, uint8_t *inl)
{
    if (n <= *cap - len) return 0;
    size_t max = SIZE_MAX / size;
    if (n > max - len) return MPROC_ENOMEM;
    size_t want = len + n, ncap = *cap ? *cap : 4;
    while (ncap < want) ncap = ncap > max / 2 ? max : ncap * 2;
    void *p;
    if (*inl) {
        if ((p = malloc(ncap * size))) memcpy(p, *arr, len * size);
    } else {
        p = realloc(*arr, ncap * size);
    }
    if (!p) return MPROC_ENOMEM;
    *arr = p;
    *cap = ncap;
    *inl = 0;
    return 0;
}

int mproc__list_reserve(mproc_value *list, size_t n)
{
    mproc__vlist *l = MPROC__VLIST(list);
    return grow((void **)&l->items, &l->cap, l->len, n, sizeof *l->items, &list->inl);
}

int mproc__map_reserve(mproc_value *map, size_t n)
{
    mproc__vmap *m = MPROC__VMAP(map);
    /* Entry numbers are stored in 32 bits in the index. */
    if (n >= UINT32_MAX || m->len >= UINT32_MAX - n) return MPROC_ENOMEM;
    return grow((void **)&m->ents, &m->cap, m->len, n, sizeof *m->ents, &map->inl);
}

int mproc_value_list_append(mproc_value *list, mproc_value *item)
{
    if (!list || !item || list->kind != MPROC_V_LIST) {
        mproc_value_free(item);
        return MPROC_EINVAL;
    }
    mproc__vlist *l = MPROC__VLIST(list);
    if (l->len == l->cap && mproc__list_reserve(list, 1)) {
        mproc_value_free(item);
        return MPROC_ENOMEM;
    }
    l->items[l->len++] = item;
    return 0;
}

/* ---- maps --------------------------------------------------------------- */

static bool equal_rec(const mproc_value *a, const mproc_value *b, unsigned depth);

static void idx_put(mproc__vmap *m, size_t e)
{
    size_t mask = m->icap - 1, slot = (size_t)m->ents[e].hash & mask;
    while (m->idx[slot]) slot = (slot + 1) & mask;
    m->idx[slot] = (uint32_t)(e + 1);
}

/* (Re)builds the index for the current entries with at least 2*len+2
 * slots; on failure drops the index (lookups fall back to scans).
 * `hashed` says whether the entries' hashes are already valid. */
static void idx_build(mproc__vmap *m, bool hashed)
{
    size_t icap = m->icap ? m->icap : 64;
    while (icap < 2 * m->len + 2) icap *= 2;
    if (icap != m->icap) {
        uint32_t *idx = calloc(icap, sizeof *idx);
        if (!idx) {
            free(m->idx);
            m->idx = NULL;
            m->icap = 0;
            return;
        }
        free(m->idx);
        m->idx = idx;
        m->icap = icap;
    } else {
        memset(m->idx, 0, icap * sizeof *m->idx);
    }
    for (size_t e = 0; e < m->len; e++) {
        if (!hashed) m->ents[e].hash = hash_rec(m->ents[e].key, 1);
        idx_put(m, e);
    }
}

/* Entry number of a string/bytes key, or -1. */
static ptrdiff_t find_str(const mproc__vmap *m, mproc_value_kind kind, const char *s, size_t len)
{
    if (m->idx) {
        uint64_t h = hash_str(kind, s, len);
        size_t mask = m->icap - 1;
        for (size_t slot = (size_t)h & mask; m->idx[slot]; slot = (slot + 1) & mask) {
            size_t e = m->idx[slot] - 1;
            const mproc_value *k = m->ents[e].key;
            if (m->ents[e].hash == h && k->kind == kind && MPROC__VSTR(k)->len == len &&
                memcmp(MPROC__VSTR(k)->data, s, len) == 0)
                return (ptrdiff_t)e;
        }
        return -1;
    }
    for (size_t e = 0; e < m->len; e++) {
        const mproc_value *k = m->ents[e].key;
        if (k->kind == kind && MPROC__VSTR(k)->len == len &&
            memcmp(MPROC__VSTR(k)->data, s, len) == 0)
            return (ptrdiff_t)e;
    }
    return -1;
}

/* Entry number of key, or -1; *hash gets the key's hash when the map has
 * an index. */
static ptrdiff_t find(const mproc__vmap *m, const mproc_value *key, uint64_t *hash, unsigned depth)
{
    if (key->kind == MPROC_V_STR || key->kind == MPROC_V_BYTES) {
        if (m->idx) *hash = hash_str(key->kind, MPROC__VSTR(key)->data, MPROC__VSTR(key)->len);
        return find_str(m, key->kind, MPROC__VSTR(key)->data, MPROC__VSTR(key)->len);
    }
    if (m->idx) {
        uint64_t h = *hash = hash_rec(key, 1);
        size_t mask = m->icap - 1;
        for (size_t slot = (size_t)h & mask; m->idx[slot]; slot = (slot + 1) & mask) {
            size_t e = m->idx[slot] - 1;
            if (m->ents[e].hash == h && equal_rec(m->ents[e].key, key, depth)) return (ptrdiff_t)e;
        }
        return -1;
    }
    for (size_t e = 0; e < m->len; e++)
        if (equal_rec(m->ents[e].key, key, depth)) return (ptrdiff_t)e;
    return -1;
}

/* Appends a new entry (the key is known absent); frees both on failure. */
static int map_append(mproc__vmap *m, mproc_value *key, mproc_value *val, uint64_t hash)
{
    if (m->len == m->cap && mproc__map_reserve(&m->h, 1)) {
        mproc_value_free(key);
        mproc_value_free(val);
        return MPROC_ENOMEM;
    }
    size_t e = m->len++;
    m->ents[e] = (mproc__map_ent){key, val, hash};
    if (m->idx) {
        if (2 * m->len + 2 > m->icap)
            idx_build(m, true);
        else
            idx_put(m, e);
    } else if (m->len > MPROC__MAP_INDEX_MIN) {
        idx_build(m, false);
    }
    return 0;
}

int mproc_value_map_set(mproc_value *map, mproc_value *key, mproc_value *val)
{
    if (!map || !key || !val || map->kind != MPROC_V_MAP) {
        mproc_value_free(key);
        mproc_value_free(val);
        return MPROC_EINVAL;
    }
    mproc__vmap *m = MPROC__VMAP(map);
    uint64_t h = 0;
    ptrdiff_t e = find(m, key, &h, 1);
    if (e >= 0) {
        mproc_value_free(m->ents[e].val);
        m->ents[e].val = val;
        mproc_value_free(key);
        return 0;
    }
    return map_append(m, key, val, h);
}

int mproc_value_map_set_str(mproc_value *map, const char *key, mproc_value *val)
{
    if (!map || !key || !val || map->kind != MPROC_V_MAP) {
        mproc_value_free(val);
        return MPROC_EINVAL;
    }
    mproc__vmap *m = MPROC__VMAP(map);
    size_t len = strlen(key);
    ptrdiff_t e = find_str(m, MPROC_V_STR, key, len);
    if (e >= 0) {
        mproc_value_free(m->ents[e].val);
        m->ents[e].val = val;
        return 0;
    }
    mproc_value *k = mproc__value_strn(MPROC_V_STR, key, len);
    if (!k) {
        mproc_value_free(val);
        return MPROC_ENOMEM;
    }
    return map_append(m, k, val, m->idx ? hash_str(MPROC_V_STR, key, len) : 0);
}

int mproc_value_list_append_copy(mproc_value *list, const mproc_value *item)
{
    if (!list || !item || list->kind != MPROC_V_LIST) return MPROC_EINVAL;
    mproc_value *c = mproc_value_copy(item);
    return c ? mproc_value_list_append(list, c) : MPROC_ENOMEM;
}

int mproc_value_map_set_copy(mproc_value *map, const mproc_value *key, const mproc_value *val)
{
    if (!map || !key || !val || map->kind != MPROC_V_MAP) return MPROC_EINVAL;
    mproc_value *k = mproc_value_copy(key), *v = k ? mproc_value_copy(val) : NULL;
    if (!v) {
        mproc_value_free(k);
        return MPROC_ENOMEM;
    }
    return mproc_value_map_set(map, k, v);
}

int mproc_value_map_set_str_copy(mproc_value *map, const char *key, const mproc_value *val)
{
    if (!map || !key || !val || map->kind != MPROC_V_MAP) return MPROC_EINVAL;
    mproc_value *v = mproc_value_copy(val);
    return v ? mproc_value_map_set_str(map, key, v) : MPROC_ENOMEM;
}

int mproc_value_map_del(mproc_value *map, const mproc_value *key)
{
    if (!map || !key || map->kind != MPROC_V_MAP) return MPROC_EINVAL;
    mproc__vmap *m = MPROC__VMAP(map);
    uint64_t h;
    ptrdiff_t e = find(m, key, &h, 1);
    if (e < 0) return MPROC_ENOENT;
    mproc__map_ent gone = m->ents[e];
    memmove(&m->ents[e], &m->ents[e + 1], (m->len - (size_t)e - 1) * sizeof *m->ents);
    m->len--;
    if (m->idx) idx_build(m, true);
    /* Free last: key may be a part of the entry being removed. */
    mproc_value_free(gone.key);
    mproc_value_free(gone.val);
    return 0;
}

/* ---- inspecting --------------------------------------------------------- */

mproc_value_kind mproc_value_kind_of(const mproc_value *v)
{
    return v ? (mproc_value_kind)v->kind : MPROC_V_NIL;
}

int mproc_value_get_bool(const mproc_value *v, bool *out)
{
    if (!v || !out || v->kind != MPROC_V_BOOL) return MPROC_EINVAL;
    *out = MPROC__VSCALAR(v)->u.b;
    return 0;
}

int mproc_value_get_int(const mproc_value *v, int64_t *out)
{
    if (!v || !out || v->kind != MPROC_V_INT) return MPROC_EINVAL;
    if (v->is_uint) return MPROC_ERANGE;
    *out = MPROC__VSCALAR(v)->u.i;
    return 0;
}

int mproc_value_get_uint(const mproc_value *v, uint64_t *out)
{
    if (!v || !out || v->kind != MPROC_V_INT) return MPROC_EINVAL;
    int64_t i = MPROC__VSCALAR(v)->u.i;
    if (!v->is_uint && i < 0) return MPROC_ERANGE;
    *out = (uint64_t)i;
    return 0;
}

bool mproc_value_is_uint(const mproc_value *v)
{
    return v && v->kind == MPROC_V_INT && v->is_uint;
}

int mproc_value_get_float(const mproc_value *v, double *out)
{
    if (!v || !out) return MPROC_EINVAL;
    if (v->kind == MPROC_V_FLOAT) {
        *out = MPROC__VSCALAR(v)->u.d;
    } else if (v->kind == MPROC_V_INT) {
        int64_t i = MPROC__VSCALAR(v)->u.i;
        *out = v->is_uint ? (double)(uint64_t)i : (double)i;
    } else {
        return MPROC_EINVAL;
    }
    return 0;
}

const char *mproc_value_get_str(const mproc_value *v, size_t *len)
{
    if (!v || v->kind != MPROC_V_STR) return NULL;
    if (len) *len = MPROC__VSTR(v)->len;
    return MPROC__VSTR(v)->data;
}

const void *mproc_value_get_bytes(const mproc_value *v, size_t *len)
{
    if (!v || v->kind != MPROC_V_BYTES) return NULL;
    if (len) *len = MPROC__VSTR(v)->len;
    return MPROC__VSTR(v)->data;
}

int mproc_value_get_handle(const mproc_value *v, uint32_t *type, uint64_t *ref)
{
    if (!v || v->kind != MPROC_V_HANDLE) return MPROC_EINVAL;
    if (type) *type = v->htype;
    if (ref) *ref = MPROC__VSCALAR(v)->u.ref;
    return 0;
}

size_t mproc_value_len(const mproc_value *v)
{
    if (!v) return 0;
    if (v->kind == MPROC_V_LIST) return MPROC__VLIST(v)->len;
    if (v->kind == MPROC_V_MAP) return MPROC__VMAP(v)->len;
    return 0;
}

mproc_value *mproc_value_list_get(const mproc_value *list, size_t i)
{
    if (!list || list->kind != MPROC_V_LIST || i >= MPROC__VLIST(list)->len) return NULL;
    return MPROC__VLIST(list)->items[i];
}

int mproc_value_map_entry(const mproc_value *map, size_t i, mproc_value **key, mproc_value **val)
{
    if (!map || map->kind != MPROC_V_MAP) return MPROC_EINVAL;
    const mproc__vmap *m = MPROC__VMAP(map);
    if (i >= m->len) return MPROC_ENOENT;
    if (key) *key = m->ents[i].key;
    if (val) *val = m->ents[i].val;
    return 0;
}

mproc_value *mproc_value_map_get(const mproc_value *map, const mproc_value *key)
{
    if (!map || !key || map->kind != MPROC_V_MAP) return NULL;
    const mproc__vmap *m = MPROC__VMAP(map);
    uint64_t h;
    ptrdiff_t e = find(m, key, &h, 1);
    return e >= 0 ? m->ents[e].val : NULL;
}

mproc_value *mproc_value_map_get_str(const mproc_value *map, const char *key)
{
    if (!map || !key || map->kind != MPROC_V_MAP) return NULL;
    const mproc__vmap *m = MPROC__VMAP(map);
    ptrdiff_t e = find_str(m, MPROC_V_STR, key, strlen(key));
    return e >= 0 ? m->ents[e].val : NULL;
}

/* ---- whole values ------------------------------------------------------- */

static mproc_value *copy_rec(const mproc_value *v, unsigned depth)
{
    if (depth > MPROC__VALUE_NEST_MAX) return NULL;
    switch ((mproc_value_kind)v->kind) {
    case MPROC_V_NIL:
    case MPROC_V_BOOL:
    case MPROC_V_INT:
    case MPROC_V_FLOAT:
    case MPROC_V_HANDLE: {
        mproc__vscalar *s = malloc(sizeof *s);
        if (s) memcpy(s, v, sizeof *s);
        return s ? &s->h : NULL;
    }
    case MPROC_V_STR:
    case MPROC_V_BYTES:
        return mproc__value_strn(v->kind, MPROC__VSTR(v)->data, MPROC__VSTR(v)->len);
    case MPROC_V_LIST: {
        const mproc__vlist *l = MPROC__VLIST(v);
        mproc_value *c = mproc__value_container(MPROC_V_LIST, l->len);
        if (!c) return NULL;
        for (size_t i = 0; i < l->len; i++) {
            mproc_value *item = copy_rec(l->items[i], depth + 1);
            if (!item) goto fail_list;
            MPROC__VLIST(c)->items[MPROC__VLIST(c)->len++] = item;
        }
        return c;
    fail_list:
        mproc_value_free(c);
        return NULL;
    }
    case MPROC_V_MAP: {
        const mproc__vmap *m = MPROC__VMAP(v);
        mproc_value *c = mproc__value_container(MPROC_V_MAP, m->len);
        if (!c) return NULL;
        mproc__vmap *cm = MPROC__VMAP(c);
        for (size_t i = 0; i < m->len; i++) {
            mproc_value *k = copy_rec(m->ents[i].key, depth + 1);
            mproc_value *val = k ? copy_rec(m->ents[i].val, depth + 1) : NULL;
            if (!val) {
                mproc_value_free(k);
                goto fail_map;
            }
            cm->ents[cm->len++] = (mproc__map_ent){k, val, m->ents[i].hash};
        }
        if (m->idx) { /* same keys, same hashes: the same index */
            cm->idx = malloc(m->icap * sizeof *m->idx);
            if (cm->idx) {
                memcpy(cm->idx, m->idx, m->icap * sizeof *m->idx);
                cm->icap = m->icap;
            }
        }
        return c;
    fail_map:
        mproc_value_free(c);
        return NULL;
    }
    }
    return NULL;
}

mproc_value *mproc_value_copy(const mproc_value *v)
{
    return v ? copy_rec(v, 0) : NULL;
}

static bool equal_rec(const mproc_value *a, const mproc_value *b, unsigned depth)
{
    if (a == b) return true;
    if (!a || !b || a->kind != b->kind || depth > MPROC__VALUE_NEST_MAX) return false;
    switch ((mproc_value_kind)a->kind) {
    case MPROC_V_NIL:
        return true;
    case MPROC_V_BOOL:
        return MPROC__VSCALAR(a)->u.b == MPROC__VSCALAR(b)->u.b;
    case MPROC_V_INT:
        return a->is_uint == b->is_uint && MPROC__VSCALAR(a)->u.i == MPROC__VSCALAR(b)->u.i;
    case MPROC_V_FLOAT: {
        double x = MPROC__VSCALAR(a)->u.d, y = MPROC__VSCALAR(b)->u.d;
        return x == y || (isnan(x) && isnan(y)); /* NaN equals NaN, as keys must */
    }
    case MPROC_V_HANDLE:
        return a->htype == b->htype && MPROC__VSCALAR(a)->u.ref == MPROC__VSCALAR(b)->u.ref;
    case MPROC_V_STR:
    case MPROC_V_BYTES:
        return MPROC__VSTR(a)->len == MPROC__VSTR(b)->len &&
               memcmp(MPROC__VSTR(a)->data, MPROC__VSTR(b)->data, MPROC__VSTR(a)->len) == 0;
    case MPROC_V_LIST: {
        const mproc__vlist *x = MPROC__VLIST(a), *y = MPROC__VLIST(b);
        if (x->len != y->len) return false;
        for (size_t i = 0; i < x->len; i++)
            if (!equal_rec(x->items[i], y->items[i], depth + 1)) return false;
        return true;
    }
    case MPROC_V_MAP: {
        const mproc__vmap *x = MPROC__VMAP(a), *y = MPROC__VMAP(b);
        if (x->len != y->len) return false;
        for (size_t i = 0; i < x->len; i++) {
            uint64_t h;
            ptrdiff_t e = find(y, x->ents[i].key, &h, depth + 1);
            if (e < 0 || !equal_rec(x->ents[i].val, y->ents[e].val, depth + 1)) return false;
        }
        return true;
    }
    }
    return false;
}

bool mproc_value_equal(const mproc_value *a, const mproc_value *b)
{
    return equal_rec(a, b, 0);
}

/* Iterative, so any depth is freed without recursion: containers whose
 * children are still being freed are chained through their `up` field. */
void mproc_value_free(mproc_value *v)
{
    mproc_value *pending = NULL;
    while (v || pending) {
        if (v) {
            if (v->kind == MPROC_V_LIST) {
                MPROC__VLIST(v)->up = pending;
                pending = v;
            } else if (v->kind == MPROC_V_MAP) {
                MPROC__VMAP(v)->up = pending;
                pending = v;
            } else {
                free(v);
            }
            v = NULL;
            continue;
        }
        /* The next child of the innermost pending container, or free it. */
        if (pending->kind == MPROC_V_LIST) {
            mproc__vlist *l = MPROC__VLIST(pending);
            if (l->len) {
                v = l->items[--l->len];
                continue;
            }
            pending = l->up;
            if (!l->h.inl) free(l->items);
            free(l);
        } else {
            mproc__vmap *m = MPROC__VMAP(pending);
            if (m->len) {
                mproc__map_ent *e = &m->ents[m->len - 1];
                if (e->key) {
                    v = e->key;
                    e->key = NULL;
                } else {
                    v = e->val;
                    m->len--;
                }
                continue;
            }
            pending = m->up;
            if (!m->h.inl) free(m->ents);
            free(m->idx);
            free(m);
        }
    }
}

/* Formats straight into the string's block: measured once, then written. */
mproc_value *mproc_value_strf(const char *fmt, ...)
{
    if (!fmt) return NULL;
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    mproc__vstr *s = n < 0 ? NULL : vstr_new(MPROC_V_STR, (size_t)n);
    if (s) vsnprintf(s->data, (size_t)n + 1, fmt, again);
    va_end(again);
    return s ? &s->h : NULL;
}
