/* ShareableList's index and count (Python's ShareableList.index/count) and
 * the item constructors, in the creating process and in a child of every
 * start method. */
#include "testutil.h"

#include <math.h>
#include <string.h>

static const unsigned char raw[] = {0, 1, 2, 255};

/* [7, 2.5, true, "ab", b"\0\1\2\377", None, 7, "ab", b"ab", 7.0, false, "", NaN] */
static mproc_shareable_list *make(void)
{
    mproc_shareable_item items[] = {
        MPROC_SHAREABLE_INT_ITEM(7),
        MPROC_SHAREABLE_DOUBLE_ITEM(2.5),
        MPROC_SHAREABLE_BOOL_ITEM(true),
        MPROC_SHAREABLE_STR_ITEM("ab"),
        MPROC_SHAREABLE_BYTES_ITEM(raw, sizeof raw),
        MPROC_SHAREABLE_NIL_ITEM,
        MPROC_SHAREABLE_INT_ITEM(7),
        MPROC_SHAREABLE_STR_N_ITEM("abc", 2),
        MPROC_SHAREABLE_BYTES_ITEM("ab", 2),
        MPROC_SHAREABLE_DOUBLE_ITEM(7.0),
        MPROC_SHAREABLE_BOOL_ITEM(false),
        MPROC_SHAREABLE_STR_ITEM(""),
        MPROC_SHAREABLE_DOUBLE_ITEM(NAN),
    };
    mproc_shareable_list *l;
    TU_OK(mproc_shareable_list_create(&l, NULL, items, sizeof items / sizeof items[0]));
    return l;
}

/* 0 when index and count find what they should in l; else the failing step. */
static int check_finds(const mproc_shareable_list *l)
{
    size_t i = 99, n = 99;
    struct {
        mproc_shareable_item it;
        size_t index, count; /* index SIZE_MAX: absent */
    } want[] = {
        {MPROC_SHAREABLE_INT_ITEM(7), 0, 2},
        {MPROC_SHAREABLE_DOUBLE_ITEM(2.5), 1, 1},
        {MPROC_SHAREABLE_BOOL_ITEM(true), 2, 1},
        {MPROC_SHAREABLE_STR_ITEM("ab"), 3, 2},
        {MPROC_SHAREABLE_BYTES_ITEM(raw, sizeof raw), 4, 1},
        {MPROC_SHAREABLE_NIL_ITEM, 5, 1},
        {MPROC_SHAREABLE_BYTES_ITEM("ab", 2), 8, 1}, /* not the STR "ab" */
        {MPROC_SHAREABLE_DOUBLE_ITEM(7.0), 9, 1},    /* not the INT 7 */
        {MPROC_SHAREABLE_DOUBLE_ITEM(-0.0), SIZE_MAX, 0},
        {MPROC_SHAREABLE_BOOL_ITEM(false), 10, 1},
        {MPROC_SHAREABLE_STR_ITEM(""), 11, 1},
        {MPROC_SHAREABLE_INT_ITEM(1), SIZE_MAX, 0}, /* not true */
        {MPROC_SHAREABLE_STR_ITEM("a"), SIZE_MAX, 0},
        {MPROC_SHAREABLE_BYTES_ITEM(raw, 3), SIZE_MAX, 0},
        {MPROC_SHAREABLE_DOUBLE_ITEM(NAN), SIZE_MAX, 0}, /* NaN equals nothing, as in Python */
        {MPROC_SHAREABLE_BYTES_ITEM(NULL, 0), SIZE_MAX, 0},
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        int rc = mproc_shareable_list_index(l, &want[k].it, &i);
        if (want[k].index == SIZE_MAX ? rc != MPROC_ENOENT : rc != 0 || i != want[k].index)
            return 10 + (int)k;
        if (mproc_shareable_list_count(l, &want[k].it, &n) || n != want[k].count)
            return 40 + (int)k;
    }
    return 0;
}

static int child_finds(void *arg)
{
    mproc_shareable_list *l;
    if (mproc_shareable_list_attach(&l, arg)) return 1;
    int rc = check_finds(l);
    /* the parent sees this */
    if (!rc && mproc_shareable_list_set(l, 6, &MPROC_SHAREABLE_STR_N_ITEM("ab", 2))) rc = 2;
    mproc_shareable_list_close(l);
    return rc;
}

START_TEST(index_and_count)
{
    mproc_shareable_list *l = make();
    ck_assert_int_eq(check_finds(l), 0);
    const char *name = mproc_shm_name(mproc_shareable_list_shm(l));
    ck_assert_int_eq(tu_run_child(child_finds, name, strlen(name) + 1, tu_methods[_i]), 0);
    size_t i, n;
    TU_OK(mproc_shareable_list_count(l, &MPROC_SHAREABLE_STR_ITEM("ab"), &n));
    ck_assert_uint_eq(n, 3);
    TU_OK(mproc_shareable_list_count(l, &MPROC_SHAREABLE_INT_ITEM(7), &n));
    ck_assert_uint_eq(n, 1);
    TU_OK(mproc_shareable_list_index(l, &MPROC_SHAREABLE_STR_ITEM("ab"), &i));
    ck_assert_uint_eq(i, 3);
    /* an item set later is found at its place */
    TU_OK(mproc_shareable_list_set(l, 3, &MPROC_SHAREABLE_NIL_ITEM));
    TU_OK(mproc_shareable_list_index(l, &MPROC_SHAREABLE_STR_ITEM("ab"), &i));
    ck_assert_uint_eq(i, 6);
    TU_OK(mproc_shareable_list_index(l, &MPROC_SHAREABLE_NIL_ITEM, &i));
    ck_assert_uint_eq(i, 3);
    mproc_shm_unlink(mproc_shareable_list_shm(l));
    mproc_shareable_list_close(l);
}
END_TEST

START_TEST(misuse_and_empty_lists)
{
    mproc_shareable_list *l = make();
    size_t i = 5, n = 5;
    mproc_shareable_item it = MPROC_SHAREABLE_INT_ITEM(7);
    TU_RC(mproc_shareable_list_index(NULL, &it, &i), MPROC_EINVAL);
    TU_RC(mproc_shareable_list_index(l, NULL, &i), MPROC_EINVAL);
    TU_RC(mproc_shareable_list_index(l, &it, NULL), MPROC_EINVAL);
    TU_RC(mproc_shareable_list_count(NULL, &it, &n), MPROC_EINVAL);
    TU_RC(mproc_shareable_list_count(l, NULL, &n), MPROC_EINVAL);
    TU_RC(mproc_shareable_list_count(l, &it, NULL), MPROC_EINVAL);
    /* items that could never be stored */
    mproc_shareable_item bad_type = {.type = (mproc_shareable_type)77};
    TU_RC(mproc_shareable_list_index(l, &bad_type, &i), MPROC_EINVAL);
    TU_RC(mproc_shareable_list_count(l, &bad_type, &n), MPROC_EINVAL);
    TU_RC(mproc_shareable_list_index(l, &MPROC_SHAREABLE_STR_N_ITEM("\xff", 1), &i), MPROC_EINVAL);
    TU_RC(mproc_shareable_list_count(l, &MPROC_SHAREABLE_BYTES_ITEM(NULL, 3), &n), MPROC_EINVAL);
    ck_assert_uint_eq(i, 5); /* untouched on error */
    ck_assert_uint_eq(n, 5);

    /* a scribbled entry: MPROC_EPROTO when the walk reaches it */
    unsigned char *b = mproc_shm_buf(mproc_shareable_list_shm(l));
    uint32_t junk = 99;
    memcpy(b + 16 + 2 * 32, &junk, 4); /* entry 2's type */
    TU_OK(mproc_shareable_list_index(l, &MPROC_SHAREABLE_DOUBLE_ITEM(2.5), &i)); /* before it */
    ck_assert_uint_eq(i, 1);
    TU_RC(mproc_shareable_list_index(l, &MPROC_SHAREABLE_STR_ITEM("ab"), &i), MPROC_EPROTO);
    TU_RC(mproc_shareable_list_count(l, &MPROC_SHAREABLE_INT_ITEM(7), &n), MPROC_EPROTO);
    mproc_shm_unlink(mproc_shareable_list_shm(l));
    mproc_shareable_list_close(l);

    mproc_shareable_list *e;
    TU_OK(mproc_shareable_list_create(&e, NULL, NULL, 0));
    TU_RC(mproc_shareable_list_index(e, &MPROC_SHAREABLE_NIL_ITEM, &i), MPROC_ENOENT);
    TU_OK(mproc_shareable_list_count(e, &MPROC_SHAREABLE_NIL_ITEM, &n));
    ck_assert_uint_eq(n, 0);
    mproc_shm_unlink(mproc_shareable_list_shm(e));
    mproc_shareable_list_close(e);
}
END_TEST

START_TEST(item_constructors)
{
    mproc_shareable_item b = MPROC_SHAREABLE_BYTES_ITEM(raw, 3);
    ck_assert_int_eq(b.type, MPROC_SHAREABLE_BYTES);
    ck_assert_ptr_eq(b.u.s.data, raw);
    ck_assert_uint_eq(b.u.s.len, 3);
    mproc_shareable_item s = MPROC_SHAREABLE_STR_N_ITEM("hello", 4);
    ck_assert_int_eq(s.type, MPROC_SHAREABLE_STR);
    ck_assert_uint_eq(s.u.s.len, 4);
    mproc_shareable_list *l;
    TU_OK(mproc_shareable_list_create(&l, NULL, (mproc_shareable_item[]){b, s}, 2));
    mproc_shareable_item got;
    TU_OK(mproc_shareable_list_get(l, 0, &got));
    ck_assert(got.type == MPROC_SHAREABLE_BYTES && got.u.s.len == 3 &&
              memcmp(got.u.s.data, raw, 3) == 0);
    TU_OK(mproc_shareable_list_get(l, 1, &got));
    ck_assert(got.type == MPROC_SHAREABLE_STR && got.u.s.len == 4 &&
              memcmp(got.u.s.data, "hell", 4) == 0);
    mproc_shm_unlink(mproc_shareable_list_shm(l));
    mproc_shareable_list_close(l);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("shareable_list");
    TCase *tc = tu_tcase(s, "find", 30);
    tcase_add_loop_test(tc, index_and_count, 0, TU_NMETHODS);
    tcase_add_test(tc, misuse_and_empty_lists);
    tcase_add_test(tc, item_constructors);
    return tu_run(s);
}
