/* Helpers shared by the value test programs (tests/value/test_value_*.c):
 * a seeded random generator and random trees of every kind, hex input,
 * round trips through the codec, repr checks, and small sample values. */
#ifndef MPROC_TESTS_VALUE_UTIL_H
#define MPROC_TESTS_VALUE_UTIL_H

#include "testutil.h"
#include "value/value.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <sys/resource.h>

static uint64_t rng;

static inline uint64_t rnd(void) /* xorshift64* */
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dULL;
}

static inline size_t rnd_below(size_t n)
{
    return n ? (size_t)(rnd() % n) : 0;
}

/* Hex digits (spaces allowed) into out; returns the length. */
static inline size_t unhex(const char *hex, unsigned char *out)
{
    size_t n = 0;
    int hi = -1;
    for (const char *p = hex; *p; p++) {
        if (*p == ' ') continue;
        int d = *p <= '9' ? *p - '0' : (*p | 0x20) - 'a' + 10;
        if (hi < 0) {
            hi = d;
        } else {
            out[n++] = (unsigned char)(hi << 4 | d);
            hi = -1;
        }
    }
    ck_assert_msg(hi < 0, "odd hex string %s", hex);
    return n;
}

static inline int decode_hex(const char *hex, const mproc_value_limits *lim, mproc_value **out)
{
    unsigned char buf[512];
    ck_assert_uint_lt(strlen(hex) / 2, sizeof buf);
    size_t n = unhex(hex, buf);
    return mproc_value_decode(buf, n, lim, out);
}

#define ASSERT_REPR(v, want)                                                                       \
    do {                                                                                           \
        char *r_ = mproc_value_repr_alloc(v);                                                      \
        ck_assert_ptr_nonnull(r_);                                                                 \
        ck_assert_str_eq(r_, want);                                                                \
        free(r_);                                                                                  \
    } while (0)

/* decode(encode(v)), checked to succeed. */
static inline mproc_value *roundtrip(const mproc_value *v)
{
    void *buf;
    size_t len;
    TU_OK(mproc_value_encode(v, &buf, &len));
    mproc_value *w = NULL;
    mproc_value_limits lim = {.max_depth = 1000};
    TU_OK(mproc_value_decode(buf, len, &lim, &w));
    free(buf);
    return w;
}

/* v survives a round trip equal and of the same kind; frees v. */
static inline void check_roundtrip(mproc_value *v)
{
    ck_assert_ptr_nonnull(v);
    mproc_value *w = roundtrip(v);
    ck_assert_int_eq(mproc_value_kind_of(w), mproc_value_kind_of(v));
    ck_assert_int_eq(mproc_value_is_uint(w), mproc_value_is_uint(v));
    char *rv = mproc_value_repr_alloc(v), *rw = mproc_value_repr_alloc(w);
    ck_assert_msg(mproc_value_equal(v, w), "%s came back as %s", rv, rw);
    ck_assert_str_eq(rv, rw);
    free(rv);
    free(rw);
    mproc_value_free(v);
    mproc_value_free(w);
}

/* The seeds' message: {'id': 1, 'data': 'first data item'}. */
static inline mproc_value *seed_dict(void)
{
    mproc_value *d = mproc_value_map();
    TU_OK(mproc_value_map_set_str(d, "id", mproc_value_int(1)));
    TU_OK(mproc_value_map_set_str(d, "data", mproc_value_str("first data item")));
    return d;
}

static inline mproc_value *list_of(int n, ...)
{
    va_list ap;
    va_start(ap, n);
    mproc_value *l = mproc_value_list();
    for (int i = 0; i < n; i++) TU_OK(mproc_value_list_append(l, va_arg(ap, mproc_value *)));
    va_end(ap);
    return l;
}

/* A random valid UTF-8 string of pieces, some awkward. */
static inline mproc_value *gen_str(void)
{
    static const char *pieces[] = {"a", "Z", "'",  "\"", "\\",       "\n",   "\t", "\x01",
                                   " ", "é", "水", "𐅑",  "\xc2\x85", "\x7f", "0"};
    char buf[128];
    size_t n = 0, count = rnd_below(12);
    for (size_t i = 0; i < count; i++) {
        const char *p = pieces[rnd_below(sizeof pieces / sizeof *pieces)];
        size_t l = strlen(p);
        memcpy(buf + n, p, l);
        n += l;
    }
    if (rnd_below(4) == 0) buf[n++] = '\0'; /* a NUL inside */
    return mproc_value_strn(buf, n);
}

static inline mproc_value *gen(unsigned depth);

static inline mproc_value *gen_scalar(void)
{
    switch (rnd_below(10)) {
    case 0:
        return mproc_value_nil();
    case 1:
        return mproc_value_bool(rnd() & 1);
    case 2:
        return mproc_value_int((int64_t)rnd_below(50) - 25);
    case 3:
        return mproc_value_int((int64_t)rnd());
    case 4:
        return mproc_value_uint(rnd() | (1ULL << 63));
    case 5: {
        uint64_t bits = rnd(); /* any double: NaNs, infinities, subnormals */
        double d;
        memcpy(&d, &bits, sizeof d);
        return mproc_value_float(d);
    }
    case 6:
        return mproc_value_float((double)rnd_below(1000) / 8 - 60);
    case 7:
        return gen_str();
    case 8: {
        unsigned char b[16];
        size_t n = rnd_below(sizeof b);
        for (size_t i = 0; i < n; i++) b[i] = (unsigned char)rnd();
        return mproc_value_bytes(b, n);
    }
    default:
        return mproc_value_handle((uint32_t)rnd(), rnd() >> rnd_below(64));
    }
}

static inline mproc_value *gen(unsigned depth)
{
    unsigned k = (unsigned)rnd_below(depth < 6 ? 14 : 10);
    if (k < 10) return gen_scalar();
    if (k < 12) {
        mproc_value *l = mproc_value_list();
        for (size_t i = 0, n = rnd_below(7); i < n; i++)
            TU_OK(mproc_value_list_append(l, gen(depth + 1)));
        return l;
    }
    mproc_value *m = mproc_value_map();
    for (size_t i = 0, n = rnd_below(7); i < n; i++) {
        mproc_value *key = rnd_below(5) ? gen_scalar() : gen(depth + 4);
        TU_OK(mproc_value_map_set(m, key, gen(depth + 1)));
    }
    return m;
}

/* A nested value with every kind in it. */
static inline mproc_value *sample_value(void)
{
    mproc_value *m = seed_dict();
    mproc_value *inner = mproc_value_map();
    TU_OK(mproc_value_map_set(inner, mproc_value_int(-7), list_of(1, mproc_value_str("deep"))));
    TU_OK(mproc_value_map_set_str(
        m, "list",
        list_of(9, mproc_value_int(1), mproc_value_int(-300), mproc_value_float(3.5),
                mproc_value_strn("s\0t", 3), mproc_value_bytes("\x00\xff", 2), mproc_value_nil(),
                mproc_value_bool(true), list_of(2, mproc_value_list(), mproc_value_map()),
                mproc_value_handle(1, 2))));
    TU_OK(mproc_value_map_set_str(m, "map", inner));
    TU_OK(mproc_value_map_set_str(m, "big", mproc_value_uint(UINT64_MAX)));
    return m;
}

#endif
