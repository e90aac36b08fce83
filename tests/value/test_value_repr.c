/* Values: the Python-like printer, and float reprs checked against
 * Python's. */
#include "value_util.h"

/* ---- repr --------------------------------------------------------------- */

START_TEST(repr_is_pythons)
{
    mproc_value *v = seed_dict();
    ASSERT_REPR(v, "{'id': 1, 'data': 'first data item'}");

    /* Truncation behaves like snprintf. */
    char buf[64];
    size_t full = strlen("{'id': 1, 'data': 'first data item'}");
    ck_assert_uint_eq(mproc_value_repr(v, NULL, 0), full);
    memset(buf, 'X', sizeof buf);
    ck_assert_uint_eq(mproc_value_repr(v, buf, 0), full);
    ck_assert_int_eq(buf[0], 'X');
    ck_assert_uint_eq(mproc_value_repr(v, buf, 1), full);
    ck_assert_str_eq(buf, "");
    ck_assert_uint_eq(mproc_value_repr(v, buf, 10), full);
    ck_assert_str_eq(buf, "{'id': 1,");
    ck_assert_int_eq(buf[10], 'X');
    ck_assert_uint_eq(mproc_value_repr(v, buf, full), full);
    ck_assert_uint_eq(strlen(buf), full - 1);
    ck_assert_uint_eq(mproc_value_repr(v, buf, full + 1), full);
    ck_assert_str_eq(buf, "{'id': 1, 'data': 'first data item'}");
    for (size_t cap = 1; cap <= full + 1; cap++) { /* every cut is a prefix */
        char small[64];
        mproc_value_repr(v, small, cap);
        ck_assert_uint_eq(strlen(small), cap - 1 < full ? cap - 1 : full);
        ck_assert(strncmp(small, buf, strlen(small)) == 0);
    }
    mproc_value_free(v);

    static const struct {
        double d;
        const char *want;
    } floats[] = {
        {0.1, "0.1"},
        {1.0, "1.0"},
        {1e100, "1e+100"},
        {-0.0, "-0.0"},
        {0.0, "0.0"},
        {2.5, "2.5"},
        {1e16, "1e+16"},
        {1e15, "1000000000000000.0"},
        {123456.789, "123456.789"},
        {1e-4, "0.0001"},
        {1e-5, "1e-05"},
        {1.5e-7, "1.5e-07"},
        {0.1 + 0.2, "0.30000000000000004"},
        {5e-324, "5e-324"},
        {DBL_MAX, "1.7976931348623157e+308"},
        {9007199254740993.0, "9007199254740992.0"},
        {-1234.5, "-1234.5"},
        {1e22, "1e+22"},
        {INFINITY, "inf"},
        {-INFINITY, "-inf"},
        {NAN, "nan"},
    };
    for (size_t k = 0; k < sizeof floats / sizeof *floats; k++) {
        v = mproc_value_float(floats[k].d);
        ASSERT_REPR(v, floats[k].want);
        mproc_value_free(v);
    }

    static const struct {
        const char *s;
        size_t len;
        const char *want;
    } strs[] = {
        {"plain", 5, "'plain'"},
        {"it's", 4, "\"it's\""},
        {"say \"hi\"", 8, "'say \"hi\"'"},
        {"both ' and \"", 12, "'both \\' and \"'"},
        {"a\nb\tc\r", 6, "'a\\nb\\tc\\r'"},
        {"back\\slash", 10, "'back\\\\slash'"},
        {"\x01\x7f\x00", 3, "'\\x01\\x7f\\x00'"},
        {"héllo 水 𐅑", 15, "'héllo 水 𐅑'"},
        {"\xc2\x85\xc2\xa0\xc2\xa1", 6, "'\\x85\\xa0¡'"},
        {"", 0, "''"},
    };
    for (size_t k = 0; k < sizeof strs / sizeof *strs; k++) {
        v = mproc_value_strn(strs[k].s, strs[k].len);
        ASSERT_REPR(v, strs[k].want);
        mproc_value_free(v);
    }
    v = mproc_value_bytes("\x00\xff"
                          "ab'\"\n\\",
                          8);
    ASSERT_REPR(v, "b'\\x00\\xffab\\'\"\\n\\\\'");
    mproc_value_free(v);
    v = mproc_value_bytes("it's", 4);
    ASSERT_REPR(v, "b\"it's\"");
    mproc_value_free(v);
    v = mproc_value_str("bad \xff utf8");
    ASSERT_REPR(v, "'bad \\xff utf8'");
    mproc_value_free(v);

    v = list_of(7, mproc_value_int(1), mproc_value_float(2.5), mproc_value_nil(),
                mproc_value_bool(true), mproc_value_bool(false), mproc_value_handle(3, 7),
                mproc_value_uint(UINT64_MAX));
    ASSERT_REPR(v, "[1, 2.5, None, True, False, <handle 3:7>, 18446744073709551615]");
    mproc_value_free(v);
    v = list_of(3, mproc_value_list(), mproc_value_map(), mproc_value_int(INT64_MIN));
    ASSERT_REPR(v, "[[], {}, -9223372036854775808]");
    mproc_value_free(v);
}
END_TEST

/* Random doubles printed by us and read by Python: the same repr. */
START_TEST(float_repr_matches_python)
{
    char path[] = "/tmp/mproc_float_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    rng = 777;
    for (int k = 0; k < 3000; k++) {
        double d;
        if (k % 3 == 0) {
            uint64_t bits = rnd();
            memcpy(&d, &bits, sizeof d);
        } else if (k % 3 == 1) {
            d = (double)(int64_t)rnd() / (double)(1ULL << rnd_below(64)) / 1e10;
        } else {
            d = (double)rnd_below(100000) * pow(10, (double)rnd_below(40) - 20);
        }
        if (isnan(d)) continue;
        mproc_value *v = mproc_value_float(d);
        char r[64];
        mproc_value_repr(v, r, sizeof r);
        mproc_value_free(v);
        fprintf(f, "%a %s\n", d, r);
    }
    fclose(f);
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import sys\n"
             "bad = [l for l in open(sys.argv[1]) if repr(float.fromhex(l.split()[0])) != "
             "l.split()[1]]\n"
             "print(\"\".join(bad[:5]), end=\"\")\n"
             "sys.exit(len(bad) > 0)' %s",
             path);
    int st = system(cmd);
    unlink(path);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127) return; /* no python3 */
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "reprs differ from Python's");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("value_repr");
    TCase *tc = tu_tcase(s, "repr", 30);
    tcase_add_test(tc, repr_is_pythons);
    tcase_add_test(tc, float_repr_matches_python);
    return tu_run(s);
}
