/* The names of mproc 0.1 still compile and do what the new names do, for
 * one release, and every use of one warns (the CTest deprecated_names_warn
 * builds this file with the warnings on and -Werror: it must fail, naming
 * each old name). */
#ifndef MPROC_WANT_DEPRECATION_WARNINGS
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
#include "testutil.h"

START_TEST(arena_block_names)
{
    void *p = NULL, *q = NULL, *r = NULL;
    TU_OK(mproc_shm_alloc(&p, 100));
    TU_OK(mproc_shm_calloc(&q, 64));
    TU_OK(mproc_shm_alloc_aligned(&r, 10, 256));
    ck_assert(mproc_shm_contains(p) && mproc_arena_contains(q));
    ck_assert_uint_ge(mproc_shm_usable_size(p), 100);
    ck_assert_uint_eq(mproc_shm_usable_size(p), mproc_arena_usable_size(p));
    ck_assert_uint_eq((uintptr_t)r % 256, 0);
    ck_assert_int_eq(((char *)q)[63], 0);
    TU_OK(mproc_shm_free(p));
    TU_RC(mproc_shm_free(p), MPROC_EINVAL); /* the same checks as mproc_arena_free */
    TU_OK(mproc_arena_free(q));
    TU_OK(mproc_shm_free(r));
}
END_TEST

START_TEST(shareable_list_names)
{
    char name[64];
    snprintf(name, sizeof name, "mproct%d_deprecated", (int)getpid());
    mproc_sl *l;
    mproc_sl_item items[] = {MPROC_SL_INT_ITEM(7), MPROC_SL_DOUBLE_ITEM(1.5), MPROC_SL_BOOL_ITEM(1),
                             MPROC_SL_STR_ITEM("abc"), MPROC_SL_NIL_ITEM};
    TU_OK(mproc_sl_create(&l, name, items, 5));
    ck_assert_uint_eq(mproc_sl_len(l), 5);
    mproc_sl_item it;
    TU_OK(mproc_sl_get(l, 0, &it));
    ck_assert(it.type == MPROC_SL_INT && it.u.i == 7);
    TU_OK(mproc_sl_set(l, 0, &MPROC_SL_INT_ITEM(-1)));
    mproc_shareable_item now;
    TU_OK(mproc_shareable_list_get(l, 0, &now));
    ck_assert(now.type == MPROC_SHAREABLE_INT && now.u.i == -1);
    TU_OK(mproc_sl_get(l, 3, &it));
    ck_assert(it.type == MPROC_SL_STR && it.u.s.len == 3);
    TU_OK(mproc_sl_get(l, 4, &it));
    ck_assert(it.type == MPROC_SL_NIL);
    ck_assert_int_eq(MPROC_SL_DOUBLE, MPROC_SHAREABLE_DOUBLE);
    ck_assert_int_eq(MPROC_SL_BOOL, MPROC_SHAREABLE_BOOL);
    ck_assert_int_eq(MPROC_SL_BYTES, MPROC_SHAREABLE_BYTES);
    mproc_sl_type t = MPROC_SL_STR;
    ck_assert_int_eq(t, MPROC_SHAREABLE_STR);
    mproc_shm *seg = mproc_sl_shm(l);
    ck_assert_ptr_nonnull(seg);
    TU_OK(mproc_shm_unlink(seg));
    mproc_sl_close(l);
    TU_RC(mproc_sl_attach(&l, name), MPROC_ENOENT);
}
END_TEST

START_TEST(error_names)
{
    ck_assert_int_eq(MPROC_ETASKTIMEDOUT, MPROC_ETIMELIMIT);
    ck_assert_str_eq(mproc_err_name(MPROC_ETASKTIMEDOUT), "MPROC_ETIMELIMIT");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("deprecated_names");
    TCase *tc = tu_tcase(s, "names", 30);
    tcase_add_test(tc, arena_block_names);
    tcase_add_test(tc, shareable_list_names);
    tcase_add_test(tc, error_names);
    return tu_run(s);
}
