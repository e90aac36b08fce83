/* Shared values, arrays and raw blocks: one arena allocation holding the
 * handle, an optional lock of its own, and the C storage. */
#include "base/base.h"
#include "mproc/arena.h"
#include "mproc/shm.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#define SHARED_MAGIC 0x53686172u /* "Shar" */

typedef enum { K_SIGNED, K_UNSIGNED, K_FLOAT, K_BOOL } kind;

typedef struct {
    char tc;
    unsigned char size;
    kind k;
} typeinfo;

static const typeinfo types[] = {
    {'b', 1, K_SIGNED},
    {'B', 1, K_UNSIGNED},
    {'h', sizeof(short), K_SIGNED},
    {'H', sizeof(unsigned short), K_UNSIGNED},
    {'i', sizeof(int), K_SIGNED},
    {'I', sizeof(unsigned), K_UNSIGNED},
    {'l', sizeof(long), K_SIGNED},
    {'L', sizeof(unsigned long), K_UNSIGNED},
    {'q', 8, K_SIGNED},
    {'Q', 8, K_UNSIGNED},
    {'f', sizeof(float), K_FLOAT},
    {'d', sizeof(double), K_FLOAT},
    {'c', 1, K_SIGNED},
    {'?', sizeof(bool), K_BOOL},
    {'z', sizeof(size_t), K_UNSIGNED},
    {'n', sizeof(ssize_t), K_SIGNED},
};

struct mproc_shared {
    uint32_t magic;
    char tc;        /* 0 for a raw block */
    bool owns_lock; /* own_lock is initialised and used */
    size_t itemsize, n;
    mproc_lock *lock;
    void *data;
    mproc_lock own_lock;
};

static const typeinfo *lookup(char tc)
{
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (types[i].tc == tc) return &types[i];
    return NULL;
}

static int create(mproc_shared **out, char tc, size_t itemsize, size_t n, size_t align,
                  const mproc_shared_opts *opts)
{
    mproc_shared_opts o = opts ? *opts : (mproc_shared_opts){0};
    if (!out || o.lock_mode > MPROC_SHARED_USE_LOCK) return MPROC_EINVAL;
    if (o.lock_mode == MPROC_SHARED_USE_LOCK && !o.lock) return MPROC_EINVAL;
    if (align == 0) align = 16;
    if ((align & (align - 1)) || align > 4096) return MPROC_EINVAL;
    if (n && itemsize > (SIZE_MAX - sizeof(mproc_shared) - align) / n) return MPROC_ENOMEM;
    size_t bytes = itemsize * n;
    mproc_shared *s;
    int rc = mproc_arena_alloc_aligned((void **)&s, sizeof *s + (align > 16 ? align : 0) + bytes,
                                       align > 16 ? align : 16);
    if (rc) return rc;
    memset(s, 0, sizeof *s);
    uintptr_t d = ((uintptr_t)(s + 1) + align - 1) & ~(uintptr_t)(align - 1);
    s->data = (void *)d;
    memset(s->data, 0, bytes);
    s->tc = tc;
    s->itemsize = itemsize;
    s->n = n;
    if (o.lock_mode == MPROC_SHARED_USE_LOCK) {
        s->lock = o.lock;
    } else if (o.lock_mode != MPROC_SHARED_NOLOCK) {
        rc = o.lock_mode == MPROC_SHARED_LOCK ? mproc_lock_init(&s->own_lock)
                                              : mproc_rlock_init(&s->own_lock);
        if (rc) {
            mproc_arena_free(s);
            return rc;
        }
        s->owns_lock = true;
        s->lock = &s->own_lock;
    }
    s->magic = SHARED_MAGIC;
    *out = s;
    return 0;
}

int mproc_shared_array_new(mproc_shared **out, char tc, size_t n, const void *init,
                           const mproc_shared_opts *opts)
{
    const typeinfo *t = lookup(tc);
    if (!t || tc == 0) return MPROC_EINVAL;
    int rc = create(out, tc, t->size, n, 16, opts);
    if (rc == 0 && init) memcpy((*out)->data, init, t->size * n);
    return rc;
}

int mproc_shared_value_new(mproc_shared **out, char tc, const void *init,
                           const mproc_shared_opts *opts)
{
    return mproc_shared_array_new(out, tc, 1, init, opts);
}

int mproc_shared_raw_new(mproc_shared **out, size_t size, size_t align,
                         const mproc_shared_opts *opts)
{
    return create(out, 0, 1, size, align, opts);
}

static bool valid(const mproc_shared *s)
{
    return s && s->magic == SHARED_MAGIC;
}

void mproc_shared_free(mproc_shared *s)
{
    if (!valid(s)) return;
    if (s->owns_lock) mproc_lock_fini(&s->own_lock);
    s->magic = 0;
    mproc_arena_free(s);
}

void *mproc_shared_ptr(const mproc_shared *s)
{
    return valid(s) ? s->data : NULL;
}
size_t mproc_shared_len(const mproc_shared *s)
{
    return valid(s) ? s->n : 0;
}
char mproc_shared_typecode(const mproc_shared *s)
{
    return valid(s) ? s->tc : 0;
}
size_t mproc_shared_itemsize(const mproc_shared *s)
{
    return valid(s) ? s->itemsize : 0;
}
mproc_lock *mproc_shared_get_lock(const mproc_shared *s)
{
    return valid(s) ? s->lock : NULL;
}

/* ---- locked element access ------------------------------------------------ */

static int lock(mproc_shared *s)
{
    if (!s->lock) return 0;
    int rc = mproc_lock_acquire(s->lock, MPROC_FOREVER);
    /* A number is never half-written: the value is consistent as it is. */
    if (rc == MPROC_EOWNERDEAD) rc = mproc_lock_make_consistent(s->lock);
    return rc;
}

static void unlock(mproc_shared *s)
{
    if (s->lock) mproc_lock_release(s->lock);
}

static int element(mproc_shared *s, size_t i, const typeinfo **t, void **p)
{
    if (!valid(s) || s->tc == 0) return MPROC_EINVAL;
    if (i >= s->n) return MPROC_ERANGE;
    if (!(*t = lookup(s->tc))) return MPROC_EINVAL; /* not a code of ours: a bad header */
    *p = (char *)s->data + i * s->itemsize;
    return 0;
}

/* Reads element p of type t as a signed/unsigned integer or double. */
static void load(const typeinfo *t, const void *p, int64_t *i, uint64_t *u, double *d)
{
    *i = 0;
    *u = 0;
    *d = 0;
    switch (t->k) {
    case K_BOOL:
        *i = *(const bool *)p;
        break;
    case K_FLOAT:
        *d = t->size == 4 ? *(const float *)p : *(const double *)p;
        return;
    case K_SIGNED:
        if (t->size == 1)
            *i = *(const int8_t *)p;
        else if (t->size == 2)
            *i = *(const int16_t *)p;
        else if (t->size == 4)
            *i = *(const int32_t *)p;
        else
            *i = *(const int64_t *)p;
        break;
    case K_UNSIGNED:
        if (t->size == 1)
            *u = *(const uint8_t *)p;
        else if (t->size == 2)
            *u = *(const uint16_t *)p;
        else if (t->size == 4)
            *u = *(const uint32_t *)p;
        else
            *u = *(const uint64_t *)p;
        *d = (double)*u;
        *i = (int64_t)*u;
        return;
    }
    *d = (double)*i;
    *u = (uint64_t)*i;
}

/* Stores v (an integer given as int64) into p of type t, if it fits. */
static int store_int(const typeinfo *t, void *p, int64_t v)
{
    switch (t->k) {
    case K_BOOL:
        *(bool *)p = v != 0;
        return 0;
    case K_FLOAT:
        if (t->size == 4)
            *(float *)p = (float)v;
        else
            *(double *)p = (double)v;
        return 0;
    case K_SIGNED: {
        int bits = t->size * 8;
        if (bits < 64 && (v < -(INT64_C(1) << (bits - 1)) || v >= (INT64_C(1) << (bits - 1))))
            return MPROC_ERANGE;
        if (t->size == 1)
            *(int8_t *)p = (int8_t)v;
        else if (t->size == 2)
            *(int16_t *)p = (int16_t)v;
        else if (t->size == 4)
            *(int32_t *)p = (int32_t)v;
        else
            *(int64_t *)p = v;
        return 0;
    }
    case K_UNSIGNED: {
        int bits = t->size * 8;
        if (v < 0 || (bits < 64 && (uint64_t)v >= (UINT64_C(1) << bits))) return MPROC_ERANGE;
        if (t->size == 1)
            *(uint8_t *)p = (uint8_t)v;
        else if (t->size == 2)
            *(uint16_t *)p = (uint16_t)v;
        else if (t->size == 4)
            *(uint32_t *)p = (uint32_t)v;
        else
            *(uint64_t *)p = (uint64_t)v;
        return 0;
    }
    }
    return MPROC_EINVAL;
}

/* Element i read under the lock, as a signed, unsigned and double value. */
static int read_locked(mproc_shared *s, size_t i, const void *out, const typeinfo **t, int64_t *iv,
                       uint64_t *uv, double *dv)
{
    void *p;
    int rc = element(s, i, t, &p);
    if (rc || !out) return rc ? rc : MPROC_EINVAL;
    if ((rc = lock(s))) return rc;
    load(*t, p, iv, uv, dv);
    unlock(s);
    return 0;
}

int mproc_shared_get_int(mproc_shared *s, size_t i, int64_t *out)
{
    const typeinfo *t;
    int64_t iv;
    uint64_t uv;
    double dv;
    int rc = read_locked(s, i, out, &t, &iv, &uv, &dv);
    if (rc) return rc;
    if (t->k == K_FLOAT) {
        if (!(dv >= -9223372036854775808.0 && dv < 9223372036854775808.0)) return MPROC_ERANGE;
        iv = (int64_t)dv;
    } else if (t->k == K_UNSIGNED && uv > INT64_MAX) {
        return MPROC_ERANGE;
    }
    *out = iv;
    return 0;
}

int mproc_shared_get_double(mproc_shared *s, size_t i, double *out)
{
    const typeinfo *t;
    int64_t iv;
    uint64_t uv;
    double dv;
    int rc = read_locked(s, i, out, &t, &iv, &uv, &dv);
    if (rc == 0) *out = dv;
    return rc;
}

int mproc_shared_set_int(mproc_shared *s, size_t i, int64_t v)
{
    const typeinfo *t;
    void *p;
    int rc = element(s, i, &t, &p);
    if (rc) return rc;
    if ((rc = lock(s))) return rc;
    rc = store_int(t, p, v);
    unlock(s);
    return rc;
}

int mproc_shared_set_double(mproc_shared *s, size_t i, double v)
{
    const typeinfo *t;
    void *p;
    int rc = element(s, i, &t, &p);
    if (rc) return rc;
    if (t->k != K_FLOAT) { /* an integer element takes only integral values */
        if (v != floor(v) || !(v >= -9223372036854775808.0 && v < 9223372036854775808.0))
            return MPROC_ERANGE;
        return mproc_shared_set_int(s, i, (int64_t)v);
    }
    if ((rc = lock(s))) return rc;
    if (t->size == 4)
        *(float *)p = (float)v;
    else
        *(double *)p = v;
    unlock(s);
    return 0;
}
