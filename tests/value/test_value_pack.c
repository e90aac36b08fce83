/* Values by format string: mproc_value_pack and mproc_value_unpack (every
 * code, nesting, '?', strictness marks), bad formats (refused with a log
 * line naming the offset), wrong kinds and ranges, the steal rule of 'o'
 * on failure (leaks show under ASan), and the _copy twins of the
 * builders. */
#include "value_util.h"

#include <limits.h>

/* The last log line, and a logger that keeps it. */
static char last_log[512];

static void keep_log(int level, const char *name, const char *msg, void *ud)
{
    (void)level;
    (void)name;
    (void)ud;
    snprintf(last_log, sizeof last_log, "%s", msg);
}

static void capture_logs(void)
{
    last_log[0] = '\0';
    mproc_set_logger(keep_log, MPROC_LOG_DEBUG, NULL);
}

/* Packs fmt, asserts success and the repr; frees the value. */
#define PACK_REPR(want, ...)                                                                       \
    do {                                                                                           \
        mproc_value *v_ = NULL;                                                                    \
        TU_OK(mproc_value_pack(&v_, __VA_ARGS__));                                                 \
        ASSERT_REPR(v_, want);                                                                     \
        mproc_value_free(v_);                                                                      \
    } while (0)

/* ---- pack ----------------------------------------------------------------- */

START_TEST(pack_every_code)
{
    PACK_REPR("None", "n");
    PACK_REPR("True", "b", 7);
    PACK_REPR("False", "b", 0);
    PACK_REPR("-5", "i", -5);
    PACK_REPR("-9223372036854775808", "I", INT64_MIN);
    PACK_REPR("4294967295", "u", UINT_MAX);
    PACK_REPR("18446744073709551615", "U", UINT64_MAX);
    PACK_REPR("2.5", "f", 2.5);
    PACK_REPR("'hé'", "s", "hé");
    PACK_REPR("'a\\x00b'", "s#", "a\0b", (size_t)3);
    PACK_REPR("''", "s#", (const char *)NULL, (size_t)0);
    PACK_REPR("b'\\x00\\xff'", "y#", "\x00\xff", (size_t)2);
    PACK_REPR("b''", "y#", (const void *)NULL, (size_t)0);

    mproc_value *v = NULL, *given = mproc_value_int(9);
    TU_OK(mproc_value_pack(&v, "o", given));
    ck_assert_ptr_eq(v, given); /* taken as it is */
    mproc_value_free(v);

    given = seed_dict();
    TU_OK(mproc_value_pack(&v, "O", given));
    ck_assert_ptr_ne(v, given); /* a copy */
    ck_assert(mproc_value_equal(v, given));
    mproc_value_free(v);
    mproc_value_free(given);

    TU_OK(mproc_value_pack(&v, "U", (uint64_t)UINT64_MAX));
    ck_assert(mproc_value_is_uint(v));
    mproc_value_free(v);
}
END_TEST

START_TEST(pack_nested_and_separators)
{
    /* The issue's example. */
    PACK_REPR("[1, 'x', {'k': 2}]", "[is{s:i}]", 1, "x", "k", 2);
    PACK_REPR("{'id': 1, 'data': [2, 'x']}", "{s:i, s:[is]}", "id", 1, "data", 2, "x");
    PACK_REPR("{'id': 1, 'data': [2, 'x']}", " { s i\n\ts [ i , s ] } ", "id", 1, "data", 2, "x");
    PACK_REPR("[]", "[]");
    PACK_REPR("{}", "{ }");
    PACK_REPR("[[], [[None]], {}]", "[[][[n]]{}]");
    /* Keys of any format; an equal key again replaces the value, as in a
     * Python dict display. */
    PACK_REPR("{1: 'one', [1, 2]: None, b'k': 2.0}", "{i:s, [ii]:n, y#:f}", 1, "one", 1, 2, "k",
              (size_t)1, 2.0);
    PACK_REPR("{'k': 2}", "{s:i s:i}", "k", 1, "k", 2);
    /* o and O inside containers */
    mproc_value *v, *l = list_of(1, mproc_value_int(3));
    TU_OK(mproc_value_pack(&v, "{s:o, s:O}", "taken", mproc_value_str("t"), "copied", l));
    ASSERT_REPR(v, "{'taken': 't', 'copied': [3]}");
    mproc_value_free(v);
    mproc_value_free(l);
    /* Deep but within the limit of 64. */
    char fmt[140];
    memset(fmt, '[', 64);
    memset(fmt + 64, ']', 64);
    fmt[128] = '\0';
    TU_OK(mproc_value_pack(&v, fmt));
    ck_assert_int_eq(mproc_value_kind_of(v), MPROC_V_LIST);
    mproc_value_free(v);
}
END_TEST

START_TEST(pack_optional_null)
{
    PACK_REPR("[None, None, None, None, None]", "[s? s#? y#? o? O?]", (const char *)NULL,
              (const char *)NULL, (size_t)4, (const void *)NULL, (size_t)4, (mproc_value *)NULL,
              (mproc_value *)NULL);
    /* Not NULL: '?' changes nothing. */
    PACK_REPR("['a', 1]", "[s? o?]", "a", mproc_value_int(1));
    /* Without '?', NULL is an error, logged. */
    capture_logs();
    mproc_value *v = (mproc_value *)1;
    TU_RC(mproc_value_pack(&v, "[i s]", 1, (const char *)NULL), MPROC_EINVAL);
    ck_assert_ptr_null(v);
    ck_assert_msg(strstr(last_log, "offset 3") && strstr(last_log, "NULL"), "log: %s", last_log);
    TU_RC(mproc_value_pack(&v, "s#", (const char *)NULL, (size_t)2), MPROC_EINVAL);
    TU_RC(mproc_value_pack(&v, "O", (mproc_value *)NULL), MPROC_EINVAL);
    TU_RC(mproc_value_pack(&v, "{s:o}", "k", (mproc_value *)NULL), MPROC_EINVAL);
    ck_assert_ptr_null(v);
}
END_TEST

/* Each bad format is refused with MPROC_EINVAL, *out NULL, and a log line
 * that names the offset given. */
START_TEST(pack_bad_formats)
{
    static const struct {
        const char *fmt;
        int offset;
    } cases[] = {
        {"", 0},    {"   ", 3},     {"ii", 1},  {"[i", 0},   {"i]", 1},      {"]", 0},
        {"{s}", 2}, {"{s:i s}", 6}, {"x", 0},   {"y", 0},    {"y:", 0},      {"i?", 1},
        {"n?", 1},  {"[i]?", 3},    {"?", 0},   {"[i!]", 2}, {"{s:i *}", 5}, {"[i#]", 2},
        {"s##", 2}, {"{[i}", 3},    {"[ii", 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        capture_logs();
        mproc_value *v = (mproc_value *)1;
        int rc = mproc_value_pack(&v, cases[k].fmt, 1, "s", 2, 3);
        ck_assert_msg(rc == MPROC_EINVAL, "\"%s\" -> %s", cases[k].fmt, mproc_err_name(rc));
        ck_assert_ptr_null(v);
        char want[32];
        snprintf(want, sizeof want, "at offset %d:", cases[k].offset);
        ck_assert_msg(strstr(last_log, want), "\"%s\": log '%s' lacks '%s'", cases[k].fmt, last_log,
                      want);
    }
    /* Nesting past 64 levels. */
    char fmt[200];
    memset(fmt, '[', 65);
    memset(fmt + 65, ']', 65);
    fmt[130] = '\0';
    mproc_value *v = NULL;
    TU_RC(mproc_value_pack(&v, fmt), MPROC_EINVAL);
    ck_assert_ptr_null(v);
    TU_RC(mproc_value_pack(&v, NULL), MPROC_EINVAL);
    TU_RC(mproc_value_pack(NULL, "i", 1), MPROC_EINVAL);
}
END_TEST

/* 'o' takes its value whatever happens (run under ASan: a leak fails). */
START_TEST(pack_steals_on_failure)
{
    mproc_value *v = NULL;
    /* A bad format: every 'o' before the bad character is freed. */
    TU_RC(mproc_value_pack(&v, "[o o x]", mproc_value_int(1), seed_dict()), MPROC_EINVAL);
    TU_RC(mproc_value_pack(&v, "[o {s:o}", mproc_value_int(1), "k", seed_dict()), MPROC_EINVAL);
    TU_RC(mproc_value_pack(&v, "o o", mproc_value_int(1), mproc_value_int(2)), MPROC_EINVAL);
    mproc_value *kept = mproc_value_nil();
    /* A NULL string in the middle: the one before is in the freed tree,
     * the ones after are read and freed. */
    TU_RC(mproc_value_pack(&v, "[o s# {s:o} o y#? O o]", mproc_value_int(1), (const char *)NULL,
                           (size_t)1, "k", sample_value(), mproc_value_str("x"), (const void *)NULL,
                           (size_t)0, kept, seed_dict()),
          MPROC_EINVAL);
    ASSERT_REPR(kept, "None"); /* 'O' copies: the caller's still */
    mproc_value_free(kept);
    /* A NULL 'o' in the middle of others. */
    TU_RC(mproc_value_pack(&v, "{s:o s:o s:o}", "a", mproc_value_int(1), "b", (mproc_value *)NULL,
                           "c", mproc_value_int(3)),
          MPROC_EINVAL);
    /* No place to put the result. */
    TU_RC(mproc_value_pack(NULL, "[oo]", mproc_value_int(1), mproc_value_int(2)), MPROC_EINVAL);
    ck_assert_ptr_null(v);
}
END_TEST

static int vpack_wrap(mproc_value **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = mproc_value_vpack(out, fmt, ap);
    va_end(ap);
    return rc;
}

static int vunpack_wrap(const mproc_value *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = mproc_value_vunpack(v, fmt, ap);
    va_end(ap);
    return rc;
}

START_TEST(va_list_forms)
{
    mproc_value *v;
    TU_OK(vpack_wrap(&v, "[i s f]", 4, "four", 4.5));
    ASSERT_REPR(v, "[4, 'four', 4.5]");
    int i = 0;
    const char *s = NULL;
    double d = 0;
    TU_OK(vunpack_wrap(v, "[isf]", &i, &s, &d));
    ck_assert_int_eq(i, 4);
    ck_assert_str_eq(s, "four");
    ck_assert(d == 4.5);
    TU_RC(vunpack_wrap(v, "[iss]", &i, &s, &s), MPROC_EINVAL);
    mproc_value_free(v);
}
END_TEST

/* ---- unpack --------------------------------------------------------------- */

START_TEST(unpack_every_code)
{
    mproc_value *v;
    TU_OK(mproc_value_pack(&v, "[n b i I u U f i s s# y# o o]", 1, -7, INT64_MIN, 7u,
                           (uint64_t)UINT64_MAX, 1.5, 3, "hé", "a\0b", (size_t)3, "\x01", (size_t)1,
                           mproc_value_str("o"), mproc_value_str("O")));
    int b = 0, i = 0;
    int64_t I = 0;
    unsigned u = 0;
    uint64_t U = 0;
    double f1 = 0, f2 = 0;
    const char *s = NULL, *s2 = NULL;
    const void *y = NULL;
    size_t n2 = 0, ny = 0;
    mproc_value *o = NULL, *O = NULL;
    TU_OK(mproc_value_unpack(v, "[n b i I u U f f s s# y# o O]", &b, &i, &I, &u, &U, &f1, &f2, &s,
                             &s2, &n2, &y, &ny, &o, &O));
    ck_assert_int_eq(b, 1);
    ck_assert_int_eq(i, -7);
    ck_assert(I == INT64_MIN);
    ck_assert_uint_eq(u, 7);
    ck_assert(U == UINT64_MAX);
    ck_assert(f1 == 1.5);
    ck_assert(f2 == 3.0); /* an int read as a float */
    ck_assert_str_eq(s, "hé");
    ck_assert_ptr_eq(s, mproc_value_get_str(mproc_value_list_get(v, 8), NULL)); /* borrowed */
    ck_assert_uint_eq(n2, 3);
    ck_assert(memcmp(s2, "a\0b", 3) == 0);
    ck_assert_uint_eq(ny, 1);
    ck_assert(memcmp(y, "\x01", 1) == 0);
    ck_assert_ptr_eq(o, mproc_value_list_get(v, 11)); /* borrowed */
    ck_assert_ptr_ne(O, mproc_value_list_get(v, 12)); /* a copy */
    ASSERT_REPR(O, "'O'");
    mproc_value_free(O);
    /* NULL variables: checked, not stored. */
    TU_OK(mproc_value_unpack(v, "[n b i I u U f f s s# y# o O]", NULL, NULL, NULL, NULL, NULL, NULL,
                             NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL));
    TU_RC(mproc_value_unpack(v, "[n n i I u U f f s s# y# o O]", NULL, NULL, NULL, NULL, NULL, NULL,
                             NULL, NULL, NULL, NULL, NULL, NULL, NULL),
          MPROC_EINVAL);
    mproc_value_free(v);

    /* A NULL value is nil. */
    TU_OK(mproc_value_unpack(NULL, "n"));
    TU_RC(mproc_value_unpack(NULL, "i", &i), MPROC_EINVAL);
    o = (mproc_value *)1;
    TU_OK(mproc_value_unpack(NULL, "o", &o));
    ck_assert_ptr_null(o);
    TU_OK(mproc_value_unpack(NULL, "O", &O));
    ck_assert_int_eq(mproc_value_kind_of(O), MPROC_V_NIL);
    ck_assert_ptr_nonnull(O);
    mproc_value_free(O);
}
END_TEST

/* A wrong kind or range: the code, a log line with the offset, and no
 * variable written. */
START_TEST(unpack_kinds_and_ranges)
{
    mproc_value *v;
    /* [nil, true, 2^31, "a\0b"] */
    TU_OK(mproc_value_pack(&v, "[n b I s#]", 1, (int64_t)1 << 31, "a\0b", (size_t)3));
    int i = 42;
    TU_RC(mproc_value_unpack(v, "[n b i *]", NULL, &i), MPROC_ERANGE); /* over INT_MAX */
    ck_assert_int_eq(i, 42);
    unsigned u = 42;
    TU_OK(mproc_value_unpack(v, "[n b u *]", NULL, &u)); /* fits an unsigned */
    ck_assert_uint_eq(u, 1u << 31);
    int b = 42;
    capture_logs();
    TU_RC(mproc_value_unpack(v, "[b *]", &b), MPROC_EINVAL);
    ck_assert_msg(strstr(last_log, "offset 1") && strstr(last_log, "bool") &&
                      strstr(last_log, "nil"),
                  "log: %s", last_log);
    TU_RC(mproc_value_unpack(v, "[n i *]", &i), MPROC_EINVAL); /* a bool is not an int */
    TU_RC(mproc_value_unpack(v, "[n b f f]", NULL, NULL, NULL), MPROC_EINVAL);
    TU_RC(mproc_value_unpack(v, "[n b f s]", NULL, NULL, NULL), MPROC_EINVAL); /* NUL inside */
    ck_assert_msg(strstr(last_log, "s#"), "log: %s", last_log);
    TU_RC(mproc_value_unpack(v, "[n b f y#]", NULL, NULL, NULL, NULL), MPROC_EINVAL);
    TU_RC(mproc_value_unpack(v, "[n b f [s]]", NULL, NULL, NULL), MPROC_EINVAL);
    TU_RC(mproc_value_unpack(v, "[n b f {}]", NULL, NULL), MPROC_EINVAL);
    /* Lengths: exact unless '*'. */
    TU_RC(mproc_value_unpack(v, "[n b]", NULL), MPROC_EINVAL);
    ck_assert_msg(strstr(last_log, "longer"), "log: %s", last_log);
    TU_RC(mproc_value_unpack(v, "[n b f s# n]", NULL, NULL, NULL, NULL), MPROC_EINVAL);
    ck_assert_msg(strstr(last_log, "shorter"), "log: %s", last_log);
    TU_OK(mproc_value_unpack(v, "[n b f s# !]", NULL, NULL, NULL, NULL));
    TU_OK(mproc_value_unpack(v, "[*]"));
    mproc_value_free(v);

    /* Ranges at the edges. */
    int64_t I = 0;
    uint64_t U = 0;
    TU_OK(mproc_value_pack(&v, "[I I U U i]", (int64_t)INT_MAX, (int64_t)INT_MIN,
                           (uint64_t)UINT_MAX + 1, (uint64_t)UINT64_MAX, -1));
    int lo = 0, hi = 0;
    TU_OK(mproc_value_unpack(v, "[i i *]", &hi, &lo));
    ck_assert_int_eq(hi, INT_MAX);
    ck_assert_int_eq(lo, INT_MIN);
    TU_RC(mproc_value_unpack(v, "[n n u *]", &u), MPROC_EINVAL); /* wrong kinds first */
    TU_RC(mproc_value_unpack(v, "[i i u *]", NULL, NULL, &u), MPROC_ERANGE);
    TU_OK(mproc_value_unpack(v, "[i i U *]", NULL, NULL, &U));
    ck_assert(U == (uint64_t)UINT_MAX + 1);
    TU_RC(mproc_value_unpack(v, "[i i I I *]", NULL, NULL, &I, &I), MPROC_ERANGE);
    TU_RC(mproc_value_unpack(v, "[i i U U U]", NULL, NULL, &U, &U, &U), MPROC_ERANGE); /* -1 */
    TU_OK(mproc_value_unpack(v, "[i i U U I]", NULL, NULL, &U, &U, &I));
    ck_assert(I == -1);
    mproc_value_free(v);
}
END_TEST

START_TEST(unpack_maps)
{
    mproc_value *v = seed_dict(); /* {'id': 1, 'data': 'first data item'} */
    int id = 0;
    const char *data = NULL;
    TU_OK(mproc_value_unpack(v, "{s:i, s:s}", "id", &id, "data", &data));
    ck_assert_int_eq(id, 1);
    ck_assert_str_eq(data, "first data item");
    /* Other keys are allowed unless the format ends with '!'. */
    id = 0;
    TU_OK(mproc_value_unpack(v, "{s:i}", "id", &id));
    ck_assert_int_eq(id, 1);
    TU_RC(mproc_value_unpack(v, "{s:i !}", "id", &id), MPROC_EINVAL);
    TU_OK(mproc_value_unpack(v, "{s:i s:s !}", "id", NULL, "data", NULL));
    /* The same key twice does not count as two. */
    TU_RC(mproc_value_unpack(v, "{s:i s:i !}", "id", NULL, "id", NULL), MPROC_EINVAL);
    /* A missing key: MPROC_ENOENT, logged with the key; '?' allows it. */
    capture_logs();
    id = 42;
    TU_RC(mproc_value_unpack(v, "{s:i, s:i}", "id", &id, "nope", &id), MPROC_ENOENT);
    ck_assert_int_eq(id, 42);
    ck_assert_msg(strstr(last_log, "'nope'") && strstr(last_log, "offset 6"), "log: %s", last_log);
    int other = 7;
    TU_OK(mproc_value_unpack(v, "{s:i, s?:i, s?:[ii]}", "id", &id, "nope", &other, "none", &other,
                             &other));
    ck_assert_int_eq(id, 1);
    ck_assert_int_eq(other, 7);
    /* A present optional key is checked as any other. */
    TU_RC(mproc_value_unpack(v, "{s?:s}", "id", &data), MPROC_EINVAL);
    /* Not a map. */
    TU_RC(mproc_value_unpack(v, "[*]"), MPROC_EINVAL);
    mproc_value_free(v);

    /* Keys of other kinds, read as pack reads them. */
    TU_OK(
        mproc_value_pack(&v, "{i:s, [ii]:n, y#:{s:f}}", 5, "five", 1, 2, "k", (size_t)1, "x", 0.5));
    const char *five = NULL;
    double x = 0;
    TU_OK(
        mproc_value_unpack(v, "{i:s, [ii]:n, y#:{s:f}}", 5, &five, 1, 2, "k", (size_t)1, "x", &x));
    ck_assert_str_eq(five, "five");
    ck_assert(x == 0.5);
    TU_RC(mproc_value_unpack(v, "{i:s}", 6, &five), MPROC_ENOENT);
    TU_RC(mproc_value_unpack(v, "{s:s}", "5", &five), MPROC_ENOENT); /* '5' is not 5 */
    mproc_value *key = mproc_value_int(5);
    TU_OK(mproc_value_unpack(v, "{O:s}", key, &five)); /* a value as the key */
    mproc_value_free(key);
    TU_RC(mproc_value_unpack(v, "{s:s}", (const char *)NULL, &five), MPROC_EINVAL);
    mproc_value_free(v);
}
END_TEST

/* '?' lets nil through and leaves the variables alone. */
START_TEST(unpack_optional_nil)
{
    mproc_value *v;
    TU_OK(mproc_value_pack(&v, "[n n n {s:n}]", "k"));
    int i = 3;
    const char *s = "default";
    int a = 1, b = 2;
    TU_OK(mproc_value_unpack(v, "[i? s? [ii]? {s:{s:i}?}]", &i, &s, &a, &b, "k", "x", &a));
    ck_assert_int_eq(i, 3);
    ck_assert_str_eq(s, "default");
    ck_assert_int_eq(a, 1);
    ck_assert_int_eq(b, 2);
    TU_RC(mproc_value_unpack(v, "[i s? [ii]? {s:{s:i}?}]", &i, &s, &a, &b, "k", "x", &a),
          MPROC_EINVAL);
    mproc_value_free(v);
    /* Not nil: '?' changes nothing. */
    TU_OK(mproc_value_pack(&v, "[i]", 8));
    TU_OK(mproc_value_unpack(v, "[i?]", &i));
    ck_assert_int_eq(i, 8);
    TU_RC(mproc_value_unpack(v, "[s?]", &s), MPROC_EINVAL);
    mproc_value_free(v);
}
END_TEST

/* A failure found late writes nothing: the checks come first. */
START_TEST(unpack_writes_nothing_on_failure)
{
    mproc_value *v;
    TU_OK(mproc_value_pack(&v, "[i s {s:i}]", 1, "two", "k", 3));
    int i = 0, k = 0;
    const char *s = NULL;
    mproc_value *copy = NULL;
    TU_RC(mproc_value_unpack(v, "[i s {s:i s:i}]", &i, &s, "k", &k, "no", &k), MPROC_ENOENT);
    TU_RC(mproc_value_unpack(v, "[O s {s:s}]", &copy, &s, "k", &s), MPROC_EINVAL);
    ck_assert_int_eq(i, 0);
    ck_assert_int_eq(k, 0);
    ck_assert_ptr_null(s);
    ck_assert_ptr_null(copy); /* and nothing to leak */
    TU_OK(mproc_value_unpack(v, "[O s {s:i}]", &copy, &s, "k", &k));
    ck_assert_int_eq(k, 3);
    ASSERT_REPR(copy, "1");
    mproc_value_free(copy);
    mproc_value_free(v);
}
END_TEST

START_TEST(unpack_bad_formats)
{
    static const struct {
        const char *fmt;
        int offset;
    } cases[] = {
        {"", 0},         {"ii", 1},      {"[i", 0},      {"x", 0},     {"{s}", 2},
        {"{o:i}", 1},    {"{s??:i}", 3}, {"{s:i} !", 6}, {"[! i]", 1}, {"y", 0},
        {"{[s?]:i}", 3}, {"{s!}", 2},    {"?", 0},
    };
    mproc_value *v = seed_dict();
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        capture_logs();
        int i = 42;
        int rc = mproc_value_unpack(v, cases[k].fmt, "id", &i, &i);
        ck_assert_msg(rc == MPROC_EINVAL, "\"%s\" -> %s", cases[k].fmt, mproc_err_name(rc));
        ck_assert_int_eq(i, 42);
        char want[32];
        snprintf(want, sizeof want, "at offset %d:", cases[k].offset);
        ck_assert_msg(strstr(last_log, want), "\"%s\": log '%s' lacks '%s'", cases[k].fmt, last_log,
                      want);
    }
    TU_RC(mproc_value_unpack(v, NULL), MPROC_EINVAL);
    mproc_value_free(v);
}
END_TEST

/* pack(unpack(v, "O")) over random trees gives v back. */
START_TEST(random_round_trip)
{
    rng = 0x9e3779b97f4a7c15ULL;
    for (int k = 0; k < 300; k++) {
        mproc_value *v = gen(0), *c = NULL, *w = NULL;
        TU_OK(mproc_value_unpack(v, "O", &c));
        TU_OK(mproc_value_pack(&w, "[O o]", v, c));
        ck_assert(mproc_value_equal(mproc_value_list_get(w, 0), v));
        ck_assert(mproc_value_equal(mproc_value_list_get(w, 1), v));
        mproc_value *b0, *b1;
        TU_OK(mproc_value_unpack(w, "[o o]", &b0, &b1));
        ck_assert(mproc_value_equal(b0, b1));
        mproc_value_free(w);
        mproc_value_free(v);
    }
}
END_TEST

/* ---- the ownership rule ---------------------------------------------------------- */

/* Builders take their items, also on failure (a leak or a double free
 * shows under ASan); the _copy twins never do. */
START_TEST(builders_take_copies_borrow)
{
    mproc_value *notlist = mproc_value_int(0);
    TU_RC(mproc_value_list_append(notlist, seed_dict()), MPROC_EINVAL); /* freed */
    TU_RC(mproc_value_list_append(NULL, seed_dict()), MPROC_EINVAL);
    TU_RC(mproc_value_map_set(notlist, mproc_value_str("k"), seed_dict()), MPROC_EINVAL);
    TU_RC(mproc_value_map_set(NULL, mproc_value_str("k"), NULL), MPROC_EINVAL);
    TU_RC(mproc_value_map_set_str(notlist, "k", seed_dict()), MPROC_EINVAL);

    mproc_value *item = seed_dict(), *list = mproc_value_list(), *map = mproc_value_map();
    TU_OK(mproc_value_list_append_copy(list, item));
    TU_OK(mproc_value_list_append_copy(list, item));
    TU_OK(mproc_value_map_set_copy(map, item, item)); /* a map as a key, a copy of it */
    TU_OK(mproc_value_map_set_str_copy(map, "k", item));
    TU_OK(mproc_value_map_set_str_copy(map, "k", list)); /* replaces */
    ck_assert_ptr_ne(mproc_value_list_get(list, 0), item);
    ck_assert(mproc_value_equal(mproc_value_list_get(list, 1), item));
    ck_assert(mproc_value_equal(mproc_value_map_get(map, item), item));
    ck_assert(mproc_value_equal(mproc_value_map_get_str(map, "k"), list));
    /* A list appending a copy of itself. */
    TU_OK(mproc_value_list_append_copy(list, list));
    ck_assert_uint_eq(mproc_value_len(list), 3);
    ck_assert_uint_eq(mproc_value_len(mproc_value_list_get(list, 2)), 2);
    /* Failures leave the caller's value alone (freed once below). */
    TU_RC(mproc_value_list_append_copy(notlist, item), MPROC_EINVAL);
    TU_RC(mproc_value_list_append_copy(list, NULL), MPROC_EINVAL);
    TU_RC(mproc_value_map_set_copy(notlist, item, item), MPROC_EINVAL);
    TU_RC(mproc_value_map_set_copy(map, NULL, item), MPROC_EINVAL);
    TU_RC(mproc_value_map_set_str_copy(list, "k", item), MPROC_EINVAL);
    TU_RC(mproc_value_map_set_str_copy(map, NULL, item), MPROC_EINVAL);
    ASSERT_REPR(item, "{'id': 1, 'data': 'first data item'}");
    mproc_value_free(item);
    mproc_value_free(list);
    mproc_value_free(map);
    mproc_value_free(notlist);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("value_pack");
    TCase *tc = tu_tcase(s, "pack", 30);
    tcase_add_test(tc, pack_every_code);
    tcase_add_test(tc, pack_nested_and_separators);
    tcase_add_test(tc, pack_optional_null);
    tcase_add_test(tc, pack_bad_formats);
    tcase_add_test(tc, pack_steals_on_failure);
    tcase_add_test(tc, va_list_forms);
    tc = tu_tcase(s, "unpack", 30);
    tcase_add_test(tc, unpack_every_code);
    tcase_add_test(tc, unpack_kinds_and_ranges);
    tcase_add_test(tc, unpack_maps);
    tcase_add_test(tc, unpack_optional_nil);
    tcase_add_test(tc, unpack_writes_nothing_on_failure);
    tcase_add_test(tc, unpack_bad_formats);
    tcase_add_test(tc, random_round_trip);
    tc = tu_tcase(s, "ownership", 30);
    tcase_add_test(tc, builders_take_copies_borrow);
    return tu_run(s);
}
