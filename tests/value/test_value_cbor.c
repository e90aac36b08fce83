/* Values: the CBOR codec, round trips of every kind, deep and large and
 * random trees, the RFC 8949 vectors, and exact decoding limits. */
#include "value_util.h"

/* ---- the codec ---------------------------------------------------------- */

START_TEST(roundtrip_every_kind)
{
    check_roundtrip(mproc_value_nil());
    check_roundtrip(mproc_value_bool(true));
    check_roundtrip(mproc_value_bool(false));
    static const int64_t ints[] = {0,
                                   1,
                                   23,
                                   24,
                                   255,
                                   256,
                                   65535,
                                   65536,
                                   UINT32_MAX,
                                   (int64_t)UINT32_MAX + 1,
                                   INT64_MAX,
                                   -1,
                                   -24,
                                   -25,
                                   -256,
                                   -257,
                                   -65536,
                                   -65537,
                                   -(int64_t)UINT32_MAX - 1,
                                   -(int64_t)UINT32_MAX - 2,
                                   INT64_MIN + 1,
                                   INT64_MIN};
    for (size_t k = 0; k < sizeof ints / sizeof *ints; k++)
        check_roundtrip(mproc_value_int(ints[k]));
    check_roundtrip(mproc_value_uint((uint64_t)INT64_MAX + 1));
    check_roundtrip(mproc_value_uint(UINT64_MAX));
    static const double floats[] = {0.0,     1.5,     0.1,      -2.75,     1e300,   5e-324,
                                    DBL_MIN, DBL_MAX, INFINITY, -INFINITY, 65504.0, 3.0};
    for (size_t k = 0; k < sizeof floats / sizeof *floats; k++)
        check_roundtrip(mproc_value_float(floats[k]));
    double d;
    mproc_value *v = mproc_value_float(-0.0), *w = roundtrip(v);
    TU_OK(mproc_value_get_float(w, &d));
    ck_assert(d == 0 && signbit(d));
    mproc_value_free(v);
    mproc_value_free(w);
    v = mproc_value_float(NAN);
    w = roundtrip(v);
    TU_OK(mproc_value_get_float(w, &d));
    ck_assert(isnan(d));
    mproc_value_free(v);
    mproc_value_free(w);

    check_roundtrip(mproc_value_str(""));
    check_roundtrip(mproc_value_str("x"));
    check_roundtrip(mproc_value_strn("nul\0inside\0", 11));
    check_roundtrip(mproc_value_str("héllo 水 𐅑"));
    check_roundtrip(mproc_value_bytes("", 0));
    unsigned char all[256];
    for (int k = 0; k < 256; k++) all[k] = (unsigned char)k;
    check_roundtrip(mproc_value_bytes(all, sizeof all));
    char *big = malloc(70000);
    memset(big, 'q', 70000);
    check_roundtrip(mproc_value_strn(big, 70000));
    check_roundtrip(mproc_value_bytes(big, 70000));
    free(big);
    check_roundtrip(mproc_value_list());
    check_roundtrip(mproc_value_map());
    check_roundtrip(list_of(2, mproc_value_list(), mproc_value_map()));
    check_roundtrip(mproc_value_handle(0, 0));
    check_roundtrip(mproc_value_handle(UINT32_MAX, UINT64_MAX));
    check_roundtrip(seed_dict());
    check_roundtrip(sample_value());

    /* What the encoder writes, byte for byte. */
    static const struct {
        mproc_value *(*make)(void);
        const char *hex;
    } enc[] = {
        {seed_dict, "a2 62 6964 01 64 64617461 6f 66697273742064617461206974656d"},
    };
    for (size_t k = 0; k < sizeof enc / sizeof *enc; k++) {
        unsigned char want[64];
        size_t n = unhex(enc[k].hex, want), len;
        void *buf;
        v = enc[k].make();
        TU_OK(mproc_value_encode(v, &buf, &len));
        ck_assert_uint_eq(len, n);
        ck_assert(memcmp(buf, want, n) == 0);
        free(buf);
        mproc_value_free(v);
    }
    struct {
        mproc_value *v;
        const char *hex;
    } enc2[] = {
        {mproc_value_handle(3, 7), "d96d70 82 03 07"},
        {mproc_value_float(1.5), "fb 3ff8000000000000"},
        {mproc_value_uint(UINT64_MAX), "1b ffffffffffffffff"},
        {mproc_value_int(INT64_MIN), "3b 7fffffffffffffff"},
        {mproc_value_bytes("\x01\x02", 2), "42 0102"},
        {mproc_value_nil(), "f6"},
    };
    for (size_t k = 0; k < sizeof enc2 / sizeof *enc2; k++) {
        unsigned char want[64];
        size_t n = unhex(enc2[k].hex, want), len;
        void *buf;
        TU_OK(mproc_value_encode(enc2[k].v, &buf, &len));
        ck_assert_msg(len == n && memcmp(buf, want, n) == 0, "encoding %zu differs", k);
        free(buf);
        mproc_value_free(enc2[k].v);
    }

    /* A text string must be UTF-8 to be sent: raw bytes go as bytes. */
    static const char *bad_utf8[] = {"\xff", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                     "\x80", "\xe2\x82", "ok then \xfe"};
    for (size_t k = 0; k < sizeof bad_utf8 / sizeof *bad_utf8; k++) {
        v = list_of(1, mproc_value_str(bad_utf8[k]));
        void *buf = NULL;
        size_t len;
        TU_RC(mproc_value_encode(v, &buf, &len), MPROC_EINVAL);
        ck_assert_ptr_null(buf);
        mproc_value_free(v);
    }
}
END_TEST

/* depth 60, a 100k-item list, 10k- and 100k-entry maps. */
START_TEST(roundtrip_deep_and_large)
{
    mproc_value *v = mproc_value_int(1);
    for (int k = 0; k < 60; k++) {
        mproc_value *l = mproc_value_list();
        TU_OK(mproc_value_list_append(l, v));
        if (k % 3 == 0) {
            mproc_value *m = mproc_value_map();
            TU_OK(mproc_value_map_set_str(m, "k", l));
            l = m;
            k++;
        }
        v = l;
    }
    void *buf;
    size_t len;
    TU_OK(mproc_value_encode(v, &buf, &len));
    mproc_value *w;
    TU_OK(mproc_value_decode(buf, len, NULL, &w)); /* within the default depth of 64 */
    ck_assert(mproc_value_equal(v, w));
    free(buf);
    mproc_value_free(v);
    mproc_value_free(w);

    v = mproc_value_list();
    for (int k = 0; k < 100000; k++) {
        mproc_value *item = k % 10 == 0 ? mproc_value_str("ten") : mproc_value_int(k * 1000);
        TU_OK(mproc_value_list_append(v, item));
    }
    w = roundtrip(v);
    ck_assert_uint_eq(mproc_value_len(w), 100000);
    ck_assert(mproc_value_equal(v, w));
    int64_t i;
    TU_OK(mproc_value_get_int(mproc_value_list_get(w, 99999), &i));
    ck_assert_int_eq(i, 99999000);
    mproc_value_free(v);
    mproc_value_free(w);

    for (int n = 10000; n <= 100000; n *= 10) {
        v = mproc_value_map();
        char name[32];
        for (int k = 0; k < n; k++) {
            snprintf(name, sizeof name, "key%d", k);
            TU_OK(mproc_value_map_set_str(v, name, mproc_value_int(k)));
        }
        w = roundtrip(v);
        ck_assert_uint_eq(mproc_value_len(w), (size_t)n);
        ck_assert(mproc_value_equal(v, w));
        for (int k = 0; k < n; k += 97) {
            snprintf(name, sizeof name, "key%d", k);
            TU_OK(mproc_value_get_int(mproc_value_map_get_str(w, name), &i));
            ck_assert_int_eq(i, k);
            mproc_value *key;
            TU_OK(mproc_value_map_entry(w, (size_t)k, &key, NULL));
            ck_assert_str_eq(mproc_value_get_str(key, NULL), name);
        }
        mproc_value_free(v);
        mproc_value_free(w);
    }
}
END_TEST

START_TEST(random_trees_roundtrip)
{
    rng = 0x9e3779b97f4a7c15ULL;
    for (int t = 0; t < 400; t++) {
        mproc_value *v = gen(0);
        void *b1, *b2;
        size_t l1, l2;
        TU_OK(mproc_value_encode(v, &b1, &l1));
        mproc_value *w;
        TU_OK(mproc_value_decode(b1, l1, NULL, &w));
        char *rv = mproc_value_repr_alloc(v);
        ck_assert_msg(mproc_value_equal(v, w), "tree %d: %s", t, rv);
        /* Encoding is deterministic: the copy encodes to the same bytes. */
        TU_OK(mproc_value_encode(w, &b2, &l2));
        ck_assert_uint_eq(l1, l2);
        ck_assert(memcmp(b1, b2, l1) == 0);
        mproc_value *c = mproc_value_copy(v);
        ck_assert(mproc_value_equal(c, v));
        char *rc = mproc_value_repr_alloc(c);
        ck_assert_str_eq(rv, rc);
        free(rv);
        free(rc);
        free(b1);
        free(b2);
        mproc_value_free(v);
        mproc_value_free(w);
        mproc_value_free(c);
    }
}
END_TEST

/* RFC 8949 Appendix A, checked through repr (itself tested by
 * test_value_repr.c). `canon`: our encoder gives back exactly these bytes. */
static const struct {
    const char *hex, *repr;
    bool canon;
} rfc_vectors[] = {
    {"00", "0", true},
    {"01", "1", true},
    {"0a", "10", true},
    {"17", "23", true},
    {"1818", "24", true},
    {"1819", "25", true},
    {"1864", "100", true},
    {"1903e8", "1000", true},
    {"1a000f4240", "1000000", true},
    {"1b000000e8d4a51000", "1000000000000", true},
    {"1bffffffffffffffff", "18446744073709551615", true},
    {"20", "-1", true},
    {"29", "-10", true},
    {"3863", "-100", true},
    {"3903e7", "-1000", true},
    {"3b7fffffffffffffff", "-9223372036854775808", true},
    {"f90000", "0.0", false},
    {"f98000", "-0.0", false},
    {"f93c00", "1.0", false},
    {"fb3ff199999999999a", "1.1", true},
    {"f93e00", "1.5", false},
    {"f97bff", "65504.0", false},
    {"fa47c35000", "100000.0", false},
    {"fa7f7fffff", "3.4028234663852886e+38", false},
    {"fb7e37e43c8800759c", "1e+300", true},
    {"f90001", "5.960464477539063e-08", false},
    {"f90400", "6.103515625e-05", false},
    {"f9c400", "-4.0", false},
    {"fbc010666666666666", "-4.1", true},
    {"f97c00", "inf", false},
    {"f97e00", "nan", false},
    {"f9fc00", "-inf", false},
    {"fa7f800000", "inf", false},
    {"fa7fc00000", "nan", false},
    {"faff800000", "-inf", false},
    {"fb7ff0000000000000", "inf", true},
    {"fbfff0000000000000", "-inf", true},
    {"f4", "False", true},
    {"f5", "True", true},
    {"f6", "None", true},
    {"40", "b''", true},
    {"4401020304", "b'\\x01\\x02\\x03\\x04'", true},
    {"60", "''", true},
    {"6161", "'a'", true},
    {"6449455446", "'IETF'", true},
    {"62225c", "'\"\\\\'", true},
    {"62c3bc", "'ü'", true},
    {"63e6b0b4", "'水'", true},
    {"64f0908591", "'𐅑'", true},
    {"80", "[]", true},
    {"83010203", "[1, 2, 3]", true},
    {"8301820203820405", "[1, [2, 3], [4, 5]]", true},
    {"98190102030405060708090a0b0c0d0e0f101112131415161718181819",
     "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, "
     "25]",
     true},
    {"a0", "{}", true},
    {"a201020304", "{1: 2, 3: 4}", true},
    {"a26161016162820203", "{'a': 1, 'b': [2, 3]}", true},
    {"826161a161626163", "['a', {'b': 'c'}]", true},
    {"a56161614161626142616361436164614461656145",
     "{'a': 'A', 'b': 'B', 'c': 'C', 'd': 'D', 'e': 'E'}", true},
    /* indefinite lengths */
    {"5f42010243030405ff", "b'\\x01\\x02\\x03\\x04\\x05'", false},
    {"7f657374726561646d696e67ff", "'streaming'", false},
    {"5fff", "b''", false},
    {"9fff", "[]", false},
    {"9f018202039f0405ffff", "[1, [2, 3], [4, 5]]", false},
    {"9f01820203820405ff", "[1, [2, 3], [4, 5]]", false},
    {"83018202039f0405ff", "[1, [2, 3], [4, 5]]", false},
    {"83019f0203ff820405", "[1, [2, 3], [4, 5]]", false},
    {"9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff",
     "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, "
     "25]",
     false},
    {"bf61610161629f0203ffff", "{'a': 1, 'b': [2, 3]}", false},
    {"826161bf61626163ff", "['a', {'b': 'c'}]", false},
    {"bf6346756ef563416d7421ff", "{'Fun': True, 'Amt': -2}", false},
    /* ours: the handle tag, and a repeated key (first place, last value) */
    {"d96d70820307", "<handle 3:7>", true},
    {"a3616101616202616103", "{'a': 3, 'b': 2}", false},
};

START_TEST(rfc8949_vectors_decode)
{
    for (size_t k = 0; k < sizeof rfc_vectors / sizeof *rfc_vectors; k++) {
        mproc_value *v = NULL;
        int rc = decode_hex(rfc_vectors[k].hex, NULL, &v);
        ck_assert_msg(rc == 0, "%s -> %s", rfc_vectors[k].hex, mproc_err_name(rc));
        char *r = mproc_value_repr_alloc(v);
        ck_assert_msg(strcmp(r, rfc_vectors[k].repr) == 0, "%s decoded as %s, want %s",
                      rfc_vectors[k].hex, r, rfc_vectors[k].repr);
        free(r);
        if (rfc_vectors[k].canon) {
            unsigned char want[128];
            size_t n = unhex(rfc_vectors[k].hex, want), len;
            void *buf;
            TU_OK(mproc_value_encode(v, &buf, &len));
            ck_assert_msg(len == n && memcmp(buf, want, n) == 0, "%s re-encoded differently",
                          rfc_vectors[k].hex);
            free(buf);
        }
        mproc_value_free(v);
    }
    /* A few checked without repr. */
    mproc_value *v;
    double d;
    TU_OK(decode_hex("f93e00", NULL, &v));
    TU_OK(mproc_value_get_float(v, &d));
    ck_assert(d == 1.5);
    mproc_value_free(v);
    TU_OK(decode_hex("1bffffffffffffffff", NULL, &v));
    ck_assert(mproc_value_is_uint(v));
    mproc_value_free(v);
    TU_OK(decode_hex("6461000062", NULL, &v)); /* a NUL inside a string */
    size_t len;
    const char *s = mproc_value_get_str(v, &len);
    ck_assert_uint_eq(len, 4);
    ck_assert(memcmp(s, "a\0\0b", 5) == 0);
    mproc_value_free(v);
}
END_TEST

static void nested_lists(unsigned char *buf, size_t depth)
{
    memset(buf, 0x81, depth - 1);
    buf[depth - 1] = 0x80;
}

START_TEST(limits_are_exact)
{
    unsigned char buf[4096];
    mproc_value *v;
    /* depth: n nested lists */
    for (unsigned n = 1; n <= 70; n += 23) {
        nested_lists(buf, n);
        mproc_value_limits lim = {.max_depth = n};
        TU_OK(mproc_value_decode(buf, n, &lim, &v));
        mproc_value_free(v);
        lim.max_depth = n - 1 ? n - 1 : 0;
        if (n > 1) TU_RC(mproc_value_decode(buf, n, &lim, &v), MPROC_E2BIG);
    }
    nested_lists(buf, 64); /* the default */
    TU_OK(mproc_value_decode(buf, 64, NULL, &v));
    mproc_value_free(v);
    nested_lists(buf, 65);
    TU_RC(mproc_value_decode(buf, 65, NULL, &v), MPROC_E2BIG);
    /* a map inside a list is depth 2 */
    mproc_value_limits lim = {.max_depth = 1};
    TU_RC(decode_hex("81a0", &lim, &v), MPROC_E2BIG);
    lim.max_depth = 2;
    TU_OK(decode_hex("81a0", &lim, &v));
    mproc_value_free(v);
    lim.max_depth = 1;
    TU_OK(decode_hex("81d96d70820102", &lim, &v)); /* a handle's array is no level */
    mproc_value_free(v);

    /* items: a list of k ints is k + 1 values; a map of k entries 2k + 1. */
    for (size_t k = 0; k < 24; k += 5) { /* 0x80 + k: an array of k */
        buf[0] = (unsigned char)(0x80 + k);
        memset(buf + 1, 0x05, k);
        mproc_value_limits il = {.max_items = k + 1};
        TU_OK(mproc_value_decode(buf, k + 1, &il, &v));
        mproc_value_free(v);
        il.max_items = k;
        if (k) TU_RC(mproc_value_decode(buf, k + 1, &il, &v), MPROC_E2BIG);
        /* indefinite: counted as they come */
        buf[0] = 0x9f;
        buf[k + 1] = 0xff;
        TU_RC(mproc_value_decode(buf, k + 2, &il, &v), k ? MPROC_E2BIG : 0);
        if (!k) mproc_value_free(v);
        il.max_items = k + 1;
        TU_OK(mproc_value_decode(buf, k + 2, &il, &v));
        mproc_value_free(v);
    }
    mproc_value_limits il = {.max_items = 5};
    TU_OK(decode_hex("a2 0102 0304", &il, &v));
    mproc_value_free(v);
    il.max_items = 4;
    TU_RC(decode_hex("a2 0102 0304", &il, &v), MPROC_E2BIG);
    TU_RC(decode_hex("bf 0102 0304 ff", &il, &v), MPROC_E2BIG);
    il.max_items = 3;
    TU_OK(decode_hex("82 f6 d96d70820102", &il, &v)); /* a handle is one value */
    mproc_value_free(v);
    il.max_items = 2;
    TU_RC(decode_hex("82 f6 d96d70820102", &il, &v), MPROC_E2BIG);

    /* bytes: string and byte-string payload together. */
    mproc_value_limits bl = {.max_bytes = 5};
    TU_OK(decode_hex("82 63616263 42 6465", &bl, &v));
    mproc_value_free(v);
    TU_OK(decode_hex("82 7f 6161 6462636465 ff 40", &bl, &v)); /* chunks add up */
    mproc_value_free(v);
    bl.max_bytes = 4;
    TU_RC(decode_hex("82 63616263 42 6465", &bl, &v), MPROC_E2BIG);
    TU_RC(decode_hex("82 7f 6161 6462636465 ff 40", &bl, &v), MPROC_E2BIG);
    TU_RC(decode_hex("5f 4161 4162 4163 4164 4165 ff", &bl, &v), MPROC_E2BIG);
    bl.max_bytes = 1;
    TU_OK(decode_hex("a1 6161 40", &bl, &v)); /* keys count too */
    mproc_value_free(v);
    TU_RC(decode_hex("a1 6161 4100", &bl, &v), MPROC_E2BIG);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("value_cbor");
    TCase *tc = tu_tcase(s, "cbor", 60);
    tcase_add_test(tc, roundtrip_every_kind);
    tcase_add_test(tc, roundtrip_deep_and_large);
    tcase_add_test(tc, random_trees_roundtrip);
    tcase_add_test(tc, rfc8949_vectors_decode);
    tcase_add_test(tc, limits_are_exact);
    return tu_run(s);
}
