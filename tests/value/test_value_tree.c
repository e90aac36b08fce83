/* Values: building and inspecting the tree of every kind, maps (small and
 * hash-indexed), kind errors and NULL handling, copy and equal. */
#include "value_util.h"

/* ---- building and inspecting -------------------------------------------- */

START_TEST(build_and_inspect_every_kind)
{
    bool b;
    int64_t i;
    uint64_t u;
    double d;
    size_t len;
    uint32_t t;

    mproc_value *v = mproc_value_nil();
    ck_assert_int_eq(mproc_value_kind_of(v), MPROC_V_NIL);
    mproc_value_free(v);

    v = mproc_value_bool(true);
    ck_assert_int_eq(mproc_value_kind_of(v), MPROC_V_BOOL);
    TU_OK(mproc_value_get_bool(v, &b));
    ck_assert(b);
    mproc_value_free(v);

    v = mproc_value_int(-42);
    ck_assert_int_eq(mproc_value_kind_of(v), MPROC_V_INT);
    TU_OK(mproc_value_get_int(v, &i));
    ck_assert_int_eq(i, -42);
    TU_RC(mproc_value_get_uint(v, &u), MPROC_ERANGE);
    TU_OK(mproc_value_get_float(v, &d));
    ck_assert(d == -42.0);
    ck_assert(!mproc_value_is_uint(v));
    mproc_value_free(v);

    v = mproc_value_int(INT64_MIN);
    TU_OK(mproc_value_get_int(v, &i));
    ck_assert(i == INT64_MIN);
    mproc_value_free(v);

    v = mproc_value_uint(7); /* small: a plain int */
    ck_assert(!mproc_value_is_uint(v));
    TU_OK(mproc_value_get_int(v, &i));
    TU_OK(mproc_value_get_uint(v, &u));
    ck_assert(i == 7 && u == 7);
    mproc_value_free(v);

    v = mproc_value_uint(UINT64_MAX);
    ck_assert_int_eq(mproc_value_kind_of(v), MPROC_V_INT);
    ck_assert(mproc_value_is_uint(v));
    TU_OK(mproc_value_get_uint(v, &u));
    ck_assert(u == UINT64_MAX);
    TU_RC(mproc_value_get_int(v, &i), MPROC_ERANGE);
    TU_OK(mproc_value_get_float(v, &d));
    ck_assert(d == 18446744073709551615.0);
    mproc_value_free(v);

    v = mproc_value_float(2.5);
    ck_assert_int_eq(mproc_value_kind_of(v), MPROC_V_FLOAT);
    TU_OK(mproc_value_get_float(v, &d));
    ck_assert(d == 2.5);
    TU_RC(mproc_value_get_int(v, &i), MPROC_EINVAL);
    mproc_value_free(v);

    v = mproc_value_str("héllo");
    ck_assert_int_eq(mproc_value_kind_of(v), MPROC_V_STR);
    const char *s = mproc_value_get_str(v, &len);
    ck_assert_uint_eq(len, 6);
    ck_assert_str_eq(s, "héllo");
    ck_assert_ptr_nonnull(mproc_value_get_str(v, NULL));
    ck_assert_ptr_null(mproc_value_get_bytes(v, &len));
    mproc_value_free(v);

    v = mproc_value_strn("a\0b", 3);
    s = mproc_value_get_str(v, &len);
    ck_assert_uint_eq(len, 3);
    ck_assert(memcmp(s, "a\0b", 4) == 0); /* and NUL-terminated */
    mproc_value_free(v);

    v = mproc_value_bytes("\0\1\2", 3);
    ck_assert_int_eq(mproc_value_kind_of(v), MPROC_V_BYTES);
    const unsigned char *p = mproc_value_get_bytes(v, &len);
    ck_assert_uint_eq(len, 3);
    ck_assert(memcmp(p, "\0\1\2", 3) == 0);
    ck_assert_ptr_null(mproc_value_get_str(v, &len));
    mproc_value_free(v);

    v = mproc_value_bytes(NULL, 0);
    ck_assert_ptr_nonnull(v);
    ck_assert_ptr_nonnull(mproc_value_get_bytes(v, &len));
    ck_assert_uint_eq(len, 0);
    mproc_value_free(v);

    v = mproc_value_handle(5, 1ULL << 40);
    ck_assert_int_eq(mproc_value_kind_of(v), MPROC_V_HANDLE);
    TU_OK(mproc_value_get_handle(v, &t, &u));
    ck_assert(t == 5 && u == 1ULL << 40);
    TU_OK(mproc_value_get_handle(v, NULL, NULL));
    mproc_value_free(v);

    v = mproc_value_list();
    ck_assert_int_eq(mproc_value_kind_of(v), MPROC_V_LIST);
    ck_assert_uint_eq(mproc_value_len(v), 0);
    for (int k = 0; k < 100; k++) TU_OK(mproc_value_list_append(v, mproc_value_int(k * 3)));
    ck_assert_uint_eq(mproc_value_len(v), 100);
    for (int k = 0; k < 100; k++) {
        TU_OK(mproc_value_get_int(mproc_value_list_get(v, (size_t)k), &i));
        ck_assert_int_eq(i, k * 3);
    }
    ck_assert_ptr_null(mproc_value_list_get(v, 100));
    mproc_value_free(v);

    v = seed_dict();
    ck_assert_int_eq(mproc_value_kind_of(v), MPROC_V_MAP);
    ck_assert_uint_eq(mproc_value_len(v), 2);
    mproc_value *key, *val;
    TU_OK(mproc_value_map_entry(v, 1, &key, &val));
    ck_assert_str_eq(mproc_value_get_str(key, NULL), "data");
    ck_assert_str_eq(mproc_value_get_str(val, NULL), "first data item");
    TU_RC(mproc_value_map_entry(v, 2, &key, &val), MPROC_ENOENT);
    TU_OK(mproc_value_get_int(mproc_value_map_get_str(v, "id"), &i));
    ck_assert_int_eq(i, 1);
    ck_assert_ptr_null(mproc_value_map_get_str(v, "nope"));
    mproc_value_free(v);
}
END_TEST

START_TEST(map_set_replace_del_get)
{
    int64_t i;
    mproc_value *m = mproc_value_map();
    TU_OK(mproc_value_map_set_str(m, "a", mproc_value_int(1)));
    TU_OK(mproc_value_map_set_str(m, "b", mproc_value_int(2)));
    TU_OK(mproc_value_map_set(m, mproc_value_int(3), mproc_value_str("three")));
    TU_OK(mproc_value_map_set(m, list_of(2, mproc_value_int(1), mproc_value_str("x")),
                              mproc_value_str("list")));
    TU_OK(mproc_value_map_set(m, mproc_value_bytes("a", 1), mproc_value_nil()));
    ck_assert_uint_eq(mproc_value_len(m), 5);
    ASSERT_REPR(m, "{'a': 1, 'b': 2, 3: 'three', [1, 'x']: 'list', b'a': None}");

    /* Replacing keeps the entry's place. */
    TU_OK(mproc_value_map_set(m, mproc_value_str("a"), mproc_value_int(10)));
    TU_OK(mproc_value_map_set_str(m, "b", mproc_value_float(2.5)));
    TU_OK(mproc_value_map_set(m, mproc_value_uint(3), mproc_value_str("THREE"))); /* 3u == 3 */
    ck_assert_uint_eq(mproc_value_len(m), 5);
    ASSERT_REPR(m, "{'a': 10, 'b': 2.5, 3: 'THREE', [1, 'x']: 'list', b'a': None}");

    /* Lookups by str and by other kinds. */
    TU_OK(mproc_value_get_int(mproc_value_map_get_str(m, "a"), &i));
    ck_assert_int_eq(i, 10);
    mproc_value *k = mproc_value_int(3);
    ck_assert_str_eq(mproc_value_get_str(mproc_value_map_get(m, k), NULL), "THREE");
    mproc_value_free(k);
    k = mproc_value_float(3.0); /* a float never equals an int */
    ck_assert_ptr_null(mproc_value_map_get(m, k));
    mproc_value_free(k);
    k = list_of(2, mproc_value_int(1), mproc_value_str("x"));
    ck_assert_str_eq(mproc_value_get_str(mproc_value_map_get(m, k), NULL), "list");
    mproc_value_free(k);
    k = list_of(2, mproc_value_int(1), mproc_value_str("y"));
    ck_assert_ptr_null(mproc_value_map_get(m, k));
    mproc_value_free(k);
    k = mproc_value_bytes("a", 1);
    ck_assert_int_eq(mproc_value_kind_of(mproc_value_map_get(m, k)), MPROC_V_NIL);
    ck_assert_ptr_nonnull(mproc_value_map_get(m, k));
    mproc_value_free(k);

    /* Deleting. */
    k = mproc_value_str("b");
    TU_OK(mproc_value_map_del(m, k));
    TU_RC(mproc_value_map_del(m, k), MPROC_ENOENT);
    mproc_value_free(k);
    mproc_value *key;
    TU_OK(mproc_value_map_entry(m, 3, &key, NULL));
    TU_OK(mproc_value_map_del(m, key)); /* the map's own key object */
    ASSERT_REPR(m, "{'a': 10, 3: 'THREE', [1, 'x']: 'list'}");

    /* Map keys compare as sets of entries. */
    mproc_value *mk1 = mproc_value_map(), *mk2 = mproc_value_map();
    TU_OK(mproc_value_map_set_str(mk1, "x", mproc_value_int(1)));
    TU_OK(mproc_value_map_set_str(mk1, "y", mproc_value_int(2)));
    TU_OK(mproc_value_map_set_str(mk2, "y", mproc_value_int(2)));
    TU_OK(mproc_value_map_set_str(mk2, "x", mproc_value_int(1)));
    TU_OK(mproc_value_map_set(m, mk1, mproc_value_str("map key")));
    ck_assert_str_eq(mproc_value_get_str(mproc_value_map_get(m, mk2), NULL), "map key");
    mproc_value_free(mk2);
    mproc_value_free(m);
}
END_TEST

/* Past 16 entries a map has a hash index: lookups, replacement, deletion
 * and copies must agree with it. */
START_TEST(large_map_keeps_order_and_finds_keys)
{
    enum { N = 20000 };
    char name[32];
    int64_t i;
    mproc_value *m = mproc_value_map();
    for (int k = 0; k < N; k++) {
        mproc_value *key;
        if (k % 2) {
            key = mproc_value_int(k);
        } else {
            snprintf(name, sizeof name, "k%d", k);
            key = mproc_value_str(name);
        }
        TU_OK(mproc_value_map_set(m, key, mproc_value_int(k)));
    }
    ck_assert_uint_eq(mproc_value_len(m), N);
    for (int k = 0; k < N; k += 3) { /* replace: the place stays */
        snprintf(name, sizeof name, "k%d", k);
        if (k % 2)
            TU_OK(mproc_value_map_set(m, mproc_value_int(k), mproc_value_int(-k)));
        else
            TU_OK(mproc_value_map_set_str(m, name, mproc_value_int(-k)));
    }
    ck_assert_uint_eq(mproc_value_len(m), N);
    for (int k = 0; k < 1000; k += 2) { /* delete some */
        mproc_value *key = mproc_value_int(k * 7 + 1);
        TU_OK(mproc_value_map_del(m, key));
        mproc_value_free(key);
    }
    ck_assert_uint_eq(mproc_value_len(m), N - 500);
    mproc_value *c = mproc_value_copy(m);
    ck_assert(mproc_value_equal(m, c));
    for (int pass = 0; pass < 2; pass++) {
        mproc_value *map = pass ? c : m;
        size_t e = 0;
        for (int k = 0; k < N; k++) {
            bool deleted =
                k % 2 && (k - 1) % 7 == 0 && (k - 1) / 7 < 1000 && ((k - 1) / 7) % 2 == 0;
            mproc_value *key = k % 2 ? mproc_value_int(k) : NULL;
            if (!key) {
                snprintf(name, sizeof name, "k%d", k);
                key = mproc_value_str(name);
            }
            mproc_value *val = mproc_value_map_get(map, key);
            if (deleted) {
                ck_assert_ptr_null(val);
            } else {
                TU_OK(mproc_value_get_int(val, &i));
                ck_assert_int_eq(i, k % 3 ? k : -k);
                mproc_value *ek;
                TU_OK(mproc_value_map_entry(map, e++, &ek, NULL));
                ck_assert(mproc_value_equal(ek, key)); /* insertion order */
            }
            mproc_value_free(key);
        }
    }
    mproc_value_free(c);
    mproc_value_free(m);

    /* 100k entries: linear, not quadratic (the timeout says so). */
    m = mproc_value_map();
    long long t0 = mproc_now_ns();
    for (int k = 0; k < 100000; k++) {
        snprintf(name, sizeof name, "%d", k);
        TU_OK(mproc_value_map_set_str(m, name, mproc_value_int(k)));
    }
    ck_assert_uint_eq(mproc_value_len(m), 100000);
    ck_assert_ptr_nonnull(mproc_value_map_get_str(m, "99999"));
    ck_assert_msg(mproc_now_ns() - t0 < 5000000000LL, "100k-entry map too slow");
    mproc_value_free(m);
}
END_TEST

START_TEST(kind_errors_and_null_handling)
{
    int64_t i;
    uint64_t u;
    double d;
    bool b;
    size_t len = 77;
    mproc_value *s = mproc_value_str("x"), *m = mproc_value_map(), *l = mproc_value_list();
    TU_RC(mproc_value_get_int(s, &i), MPROC_EINVAL);
    TU_RC(mproc_value_get_uint(s, &u), MPROC_EINVAL);
    TU_RC(mproc_value_get_bool(s, &b), MPROC_EINVAL);
    TU_RC(mproc_value_get_float(s, &d), MPROC_EINVAL);
    TU_RC(mproc_value_get_handle(s, NULL, NULL), MPROC_EINVAL);
    ck_assert_uint_eq(mproc_value_len(s), 0);
    ck_assert_ptr_null(mproc_value_list_get(s, 0));
    ck_assert_ptr_null(mproc_value_map_get_str(s, "x"));
    ck_assert_ptr_null(mproc_value_map_get(s, s));
    TU_RC(mproc_value_map_entry(s, 0, NULL, NULL), MPROC_EINVAL);
    TU_RC(mproc_value_map_entry(l, 0, NULL, NULL), MPROC_EINVAL);
    TU_RC(mproc_value_map_entry(m, 0, NULL, NULL), MPROC_ENOENT);

    /* NULL everywhere. */
    ck_assert_int_eq(mproc_value_kind_of(NULL), MPROC_V_NIL);
    TU_RC(mproc_value_get_int(NULL, &i), MPROC_EINVAL);
    TU_RC(mproc_value_get_uint(NULL, &u), MPROC_EINVAL);
    TU_RC(mproc_value_get_bool(NULL, &b), MPROC_EINVAL);
    TU_RC(mproc_value_get_float(NULL, &d), MPROC_EINVAL);
    TU_RC(mproc_value_get_handle(NULL, NULL, NULL), MPROC_EINVAL);
    mproc_value *one = mproc_value_int(1);
    TU_RC(mproc_value_get_int(one, NULL), MPROC_EINVAL);
    TU_RC(mproc_value_get_float(one, NULL), MPROC_EINVAL);
    ck_assert(!mproc_value_is_uint(NULL));
    ck_assert_ptr_null(mproc_value_get_str(NULL, &len));
    ck_assert_ptr_null(mproc_value_get_bytes(NULL, &len));
    ck_assert_uint_eq(len, 77);
    ck_assert_uint_eq(mproc_value_len(NULL), 0);
    ck_assert_ptr_null(mproc_value_list_get(NULL, 0));
    ck_assert_ptr_null(mproc_value_map_get(NULL, one));
    ck_assert_ptr_null(mproc_value_map_get(m, NULL));
    ck_assert_ptr_null(mproc_value_map_get_str(NULL, "x"));
    ck_assert_ptr_null(mproc_value_map_get_str(m, NULL));
    TU_RC(mproc_value_map_entry(NULL, 0, NULL, NULL), MPROC_EINVAL);
    ck_assert_ptr_null(mproc_value_str(NULL));
    ck_assert_ptr_null(mproc_value_strn(NULL, 3));
    ck_assert_ptr_null(mproc_value_bytes(NULL, 3));
    mproc_value *empty = mproc_value_strn(NULL, 0);
    ck_assert_ptr_nonnull(empty);
    ck_assert_str_eq(mproc_value_get_str(empty, NULL), "");
    mproc_value_free(empty);

    /* Ownership passes even on failure: the sanitizer build sees leaks. */
    TU_RC(mproc_value_list_append(NULL, mproc_value_int(1)), MPROC_EINVAL);
    TU_RC(mproc_value_list_append(l, NULL), MPROC_EINVAL);
    TU_RC(mproc_value_list_append(s, mproc_value_int(1)), MPROC_EINVAL);
    TU_RC(mproc_value_map_set(NULL, mproc_value_int(1), mproc_value_int(2)), MPROC_EINVAL);
    TU_RC(mproc_value_map_set(m, NULL, mproc_value_int(2)), MPROC_EINVAL);
    TU_RC(mproc_value_map_set(m, mproc_value_int(1), NULL), MPROC_EINVAL);
    TU_RC(mproc_value_map_set(l, mproc_value_int(1), mproc_value_int(2)), MPROC_EINVAL);
    TU_RC(mproc_value_map_set_str(m, NULL, mproc_value_int(2)), MPROC_EINVAL);
    TU_RC(mproc_value_map_set_str(NULL, "k", mproc_value_int(2)), MPROC_EINVAL);
    TU_RC(mproc_value_map_set_str(m, "k", NULL), MPROC_EINVAL);
    ck_assert_uint_eq(mproc_value_len(m), 0);
    ck_assert_uint_eq(mproc_value_len(l), 0);
    TU_RC(mproc_value_map_del(m, NULL), MPROC_EINVAL);
    TU_RC(mproc_value_map_del(NULL, one), MPROC_EINVAL);
    TU_RC(mproc_value_map_del(l, one), MPROC_EINVAL);
    TU_RC(mproc_value_map_del(m, one), MPROC_ENOENT);

    ck_assert_ptr_null(mproc_value_copy(NULL));
    ck_assert(mproc_value_equal(NULL, NULL));
    ck_assert(!mproc_value_equal(NULL, one));
    ck_assert(!mproc_value_equal(one, NULL));
    mproc_value_free(NULL);

    void *buf = NULL;
    mproc_value *out = one;
    TU_RC(mproc_value_encode(NULL, &buf, &len), MPROC_EINVAL);
    TU_RC(mproc_value_encode(one, NULL, &len), MPROC_EINVAL);
    TU_RC(mproc_value_encode(one, &buf, NULL), MPROC_EINVAL);
    TU_RC(mproc_value_decode(NULL, 3, NULL, &out), MPROC_EINVAL);
    TU_RC(mproc_value_decode("\x01", 1, NULL, NULL), MPROC_EINVAL);
    TU_RC(mproc_value_decode(NULL, 0, NULL, &out), MPROC_EPROTO); /* empty: no item */
    ck_assert_ptr_null(out);
    char r[8];
    ck_assert_uint_eq(mproc_value_repr(NULL, r, sizeof r), 4);
    ck_assert_str_eq(r, "None");

    mproc_value_free(one);
    mproc_value_free(s);
    mproc_value_free(m);
    mproc_value_free(l);
}
END_TEST

START_TEST(equal_and_copy)
{
    mproc_value *a, *b;
#define NE(x, y)                                                                                   \
    a = (x), b = (y);                                                                              \
    ck_assert_msg(!mproc_value_equal(a, b), "%s == %s", #x, #y);                                   \
    mproc_value_free(a), mproc_value_free(b)
#define EQ(x, y)                                                                                   \
    a = (x), b = (y);                                                                              \
    ck_assert_msg(mproc_value_equal(a, b), "%s != %s", #x, #y);                                    \
    mproc_value_free(a), mproc_value_free(b)
    EQ(mproc_value_int(1), mproc_value_uint(1));
    NE(mproc_value_int(-1), mproc_value_uint(UINT64_MAX));
    EQ(mproc_value_uint(UINT64_MAX), mproc_value_uint(UINT64_MAX));
    NE(mproc_value_float(1.0), mproc_value_int(1));
    EQ(mproc_value_float(0.0), mproc_value_float(-0.0));
    EQ(mproc_value_float(NAN), mproc_value_float(NAN));
    NE(mproc_value_str("a"), mproc_value_bytes("a", 1));
    NE(mproc_value_str("a"), mproc_value_strn("a\0", 2));
    EQ(mproc_value_strn("a\0b", 3), mproc_value_strn("a\0b", 3));
    NE(mproc_value_nil(), mproc_value_bool(false));
    NE(mproc_value_bool(true), mproc_value_bool(false));
    EQ(mproc_value_handle(1, 2), mproc_value_handle(1, 2));
    NE(mproc_value_handle(1, 2), mproc_value_handle(2, 2));
    NE(mproc_value_handle(1, 2), mproc_value_handle(1, 3));
    NE(list_of(2, mproc_value_int(1), mproc_value_int(2)),
       list_of(2, mproc_value_int(2), mproc_value_int(1)));
    NE(list_of(1, mproc_value_int(1)), list_of(2, mproc_value_int(1), mproc_value_int(1)));
    EQ(mproc_value_list(), mproc_value_list());
    NE(mproc_value_list(), mproc_value_map());
#undef EQ
#undef NE

    /* Maps are sets of entries: order does not matter, values do. */
    mproc_value *m1 = seed_dict(), *m2 = mproc_value_map();
    TU_OK(mproc_value_map_set_str(m2, "data", mproc_value_str("first data item")));
    TU_OK(mproc_value_map_set_str(m2, "id", mproc_value_int(1)));
    ck_assert(mproc_value_equal(m1, m2));
    TU_OK(mproc_value_map_set_str(m2, "id", mproc_value_int(2)));
    ck_assert(!mproc_value_equal(m1, m2));
    TU_OK(mproc_value_map_set_str(m2, "id", mproc_value_int(1)));
    TU_OK(mproc_value_map_set_str(m2, "extra", mproc_value_nil()));
    ck_assert(!mproc_value_equal(m1, m2));
    mproc_value_free(m1);
    mproc_value_free(m2);

    /* A copy is deep: changing it leaves the original alone. */
    mproc_value *v = sample_value();
    mproc_value *c = mproc_value_copy(v);
    ck_assert_ptr_ne(c, v);
    ck_assert(mproc_value_equal(v, c));
    char *rv = mproc_value_repr_alloc(v), *rc = mproc_value_repr_alloc(c);
    ck_assert_str_eq(rv, rc);
    free(rc);
    mproc_value *inner = mproc_value_map_get_str(c, "list");
    TU_OK(mproc_value_list_append(mproc_value_list_get(inner, 7), mproc_value_int(5)));
    ck_assert(!mproc_value_equal(v, c));
    rc = mproc_value_repr_alloc(v);
    ck_assert_str_eq(rv, rc);
    free(rv);
    free(rc);
    mproc_value_free(c);
    mproc_value_free(v);
}
END_TEST

/* strf, and the printing forms: str (a string's own text) and repr, cut
 * with "..." when the buffer is too small. */
START_TEST(strf_and_printing)
{
    mproc_value *v = mproc_value_strf("%s-%d", "ab", 42);
    ck_assert_ptr_nonnull(v);
    ck_assert_str_eq(mproc_value_get_str(v, NULL), "ab-42");
    ck_assert_str_eq(MPROC_STR(v), "ab-42");
    ck_assert_str_eq(MPROC_REPR(v), "'ab-42'");
    char small[5];
    ck_assert_str_eq(mproc_value_str_buf(v, small, sizeof small), "a...");
    ck_assert_str_eq(mproc_value_repr_buf(v, small, sizeof small), "'...");
    char exact[6]; /* "ab-42" and its NUL: not cut */
    ck_assert_str_eq(mproc_value_str_buf(v, exact, sizeof exact), "ab-42");
    ck_assert_str_eq(mproc_value_repr_buf(v, exact, sizeof exact), "'a...");
    mproc_value_free(v);
    mproc_value *l;
    TU_OK(mproc_value_pack(&l, "[is n]", 1, "x"));
    ck_assert_str_eq(MPROC_STR(l), "[1, 'x', None]"); /* str of a list: reprs */
    ck_assert_str_eq(MPROC_REPR(l), "[1, 'x', None]");
    mproc_value_free(l);
    ck_assert_str_eq(MPROC_STR(NULL), "None");
    ck_assert_ptr_null(mproc_value_strf(NULL));
    v = mproc_value_strf("%s", "");
    ck_assert_str_eq(MPROC_STR(v), "");
    mproc_value_free(v);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("value_tree");
    TCase *tc = tu_tcase(s, "tree", 30);
    tcase_add_test(tc, build_and_inspect_every_kind);
    tcase_add_test(tc, map_set_replace_del_get);
    tcase_add_test(tc, large_map_keeps_order_and_finds_keys);
    tcase_add_test(tc, kind_errors_and_null_handling);
    tcase_add_test(tc, equal_and_copy);
    tcase_add_test(tc, strf_and_printing);
    return tu_run(s);
}
