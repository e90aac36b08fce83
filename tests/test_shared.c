/* Shared values, arrays and raw blocks. */
#include "testutil.h"

#include <float.h>
#include <signal.h>
#include <stdint.h>

START_TEST(every_typecode_round_trips)
{
    static const char tcs[] = "bBhHiIlLqQfdc?zn";
    for (const char *tc = tcs; *tc; tc++) {
        mproc_shared *v;
        TU_OK(mproc_shared_value_new(&v, *tc, NULL, NULL));
        ck_assert_int_eq(mproc_shared_typecode(v), *tc);
        ck_assert_uint_eq(mproc_shared_len(v), 1);
        int64_t i = -1;
        TU_OK(mproc_shared_get_int(v, 0, &i));
        ck_assert_int_eq(i, 0);
        TU_OK(mproc_shared_set_int(v, 0, 1));
        double d;
        TU_OK(mproc_shared_get_double(v, 0, &d));
        ck_assert(d == 1.0);
        mproc_shared_free(v);
    }
    mproc_shared *v;
    TU_RC(mproc_shared_value_new(&v, 'x', NULL, NULL), MPROC_EINVAL);
    TU_RC(mproc_shared_value_new(&v, 0, NULL, NULL), MPROC_EINVAL);
}
END_TEST

START_TEST(ranges_and_conversions)
{
    mproc_shared *v;
    TU_OK(mproc_shared_value_new(&v, 'b', NULL, NULL));
    TU_OK(mproc_shared_set_int(v, 0, -128));
    TU_RC(mproc_shared_set_int(v, 0, 128), MPROC_ERANGE);
    TU_RC(mproc_shared_set_double(v, 0, 1.5), MPROC_ERANGE);
    TU_OK(mproc_shared_set_double(v, 0, 7.0));
    int64_t i;
    TU_OK(mproc_shared_get_int(v, 0, &i));
    ck_assert_int_eq(i, 7);
    TU_RC(mproc_shared_get_int(v, 1, &i), MPROC_ERANGE);
    TU_RC(mproc_shared_get_int(v, 0, NULL), MPROC_EINVAL);
    mproc_shared_free(v);

    uint64_t big = UINT64_MAX;
    TU_OK(mproc_shared_value_new(&v, 'Q', &big, NULL));
    TU_RC(mproc_shared_get_int(v, 0, &i), MPROC_ERANGE);
    TU_RC(mproc_shared_set_int(v, 0, -1), MPROC_ERANGE);
    double d;
    TU_OK(mproc_shared_get_double(v, 0, &d));
    ck_assert(d > 1.8e19);
    mproc_shared_free(v);

    double init = 2.75;
    TU_OK(mproc_shared_value_new(&v, 'd', &init, NULL));
    TU_OK(mproc_shared_get_int(v, 0, &i));
    ck_assert_int_eq(i, 2);
    TU_OK(mproc_shared_set_double(v, 0, DBL_MAX));
    TU_RC(mproc_shared_get_int(v, 0, &i), MPROC_ERANGE);
    mproc_shared_free(v);
}
END_TEST

START_TEST(arrays_and_raw_blocks)
{
    double init[3] = {0.0, 100.0, 200.0};
    mproc_shared *a;
    TU_OK(mproc_shared_array_new(&a, 'd', 3, init, NULL));
    double *p = mproc_shared_ptr(a);
    ck_assert(p[0] == 0.0 && p[1] == 100.0 && p[2] == 200.0);
    ck_assert_uint_eq(mproc_shared_itemsize(a), sizeof(double));
    mproc_shared_free(a);

    mproc_shared *r;
    TU_OK(mproc_shared_raw_new(&r, 10000, 4096, NULL));
    ck_assert_uint_eq((uintptr_t)mproc_shared_ptr(r) % 4096, 0);
    ck_assert_uint_eq(mproc_shared_len(r), 10000);
    ck_assert_int_eq(mproc_shared_typecode(r), 0);
    unsigned char *bytes = mproc_shared_ptr(r);
    for (int k = 0; k < 10000; k++) ck_assert_int_eq(bytes[k], 0);
    int64_t i;
    TU_RC(mproc_shared_get_int(r, 0, &i), MPROC_EINVAL);
    mproc_shared_free(r);
    TU_RC(mproc_shared_raw_new(&r, 8, 24, NULL), MPROC_EINVAL);
    mproc_shared_free(NULL);
    ck_assert_ptr_null(mproc_shared_ptr(NULL));
}
END_TEST

START_TEST(lock_modes)
{
    mproc_shared *v;
    TU_OK(mproc_shared_value_new(&v, 'i', NULL, NULL));
    ck_assert(mproc_lock_is_recursive(mproc_shared_get_lock(v))); /* Python's default */
    mproc_shared_free(v);
    TU_OK(mproc_shared_value_new(&v, 'i', NULL,
                                 &(mproc_shared_opts){.lock_mode = MPROC_SHARED_LOCK}));
    ck_assert(!mproc_lock_is_recursive(mproc_shared_get_lock(v)));
    mproc_shared_free(v);
    TU_OK(mproc_shared_value_new(&v, 'i', NULL,
                                 &(mproc_shared_opts){.lock_mode = MPROC_SHARED_NOLOCK}));
    ck_assert_ptr_null(mproc_shared_get_lock(v));
    TU_OK(mproc_shared_set_int(v, 0, 3));
    mproc_shared_free(v);
    mproc_lock *mine;
    TU_OK(mproc_lock_new(&mine));
    mproc_shared_opts use = {.lock_mode = MPROC_SHARED_USE_LOCK, .lock = mine};
    TU_OK(mproc_shared_array_new(&v, 'i', 4, NULL, &use));
    ck_assert_ptr_eq(mproc_shared_get_lock(v), mine);
    mproc_shared_free(v);
    mproc_lock_free(mine);
    TU_RC(mproc_shared_value_new(&v, 'i', NULL,
                                 &(mproc_shared_opts){.lock_mode = MPROC_SHARED_USE_LOCK}),
          MPROC_EINVAL);
}
END_TEST

typedef struct {
    mproc_shared *value, *array;
    int rounds;
} workers;

static int add_locked(void *arg)
{
    workers *w = arg;
    mproc_lock *l = mproc_shared_get_lock(w->value);
    for (int k = 0; k < w->rounds; k++) {
        if (mproc_lock_acquire(l, MPROC_FOREVER)) return 1;
        int64_t v;
        mproc_shared_get_int(w->value, 0, &v); /* the RLock nests */
        mproc_shared_set_int(w->value, 0, v + 1);
        double *a = mproc_shared_ptr(w->array);
        for (int e = 0; e < 3; e++) a[e] += 1;
        mproc_lock_release(l);
    }
    return 0;
}

START_TEST(locked_increments_from_two_processes_are_exact)
{
    double init[3] = {0.0, 100.0, 200.0};
    workers w = {.rounds = 20000};
    TU_OK(mproc_shared_value_new(&w.value, 'i', NULL, NULL));
    TU_OK(mproc_shared_array_new(&w.array, 'd', 3, init,
                                 &(mproc_shared_opts){.lock_mode = MPROC_SHARED_USE_LOCK,
                                                      .lock = mproc_shared_get_lock(w.value)}));
    mproc_process *p[2];
    for (int k = 0; k < 2; k++) {
        TU_OK(mproc_process_new(&p[k], add_locked, &w, sizeof w, TU_OPTS));
        TU_OK(mproc_process_start(p[k]));
    }
    for (int k = 0; k < 2; k++) {
        TU_OK(mproc_process_join(p[k], 60000));
        TU_OK(mproc_process_free(p[k]));
    }
    ck_assert_int_eq(*(int *)mproc_shared_ptr(w.value), 40000);
    double *a = mproc_shared_ptr(w.array);
    ck_assert(a[0] == 40000.0 && a[1] == 40100.0 && a[2] == 40200.0);
    mproc_shared_free(w.array);
    mproc_shared_free(w.value);
}
END_TEST

static int die_holding_value_lock(void *arg)
{
    mproc_shared *v = *(mproc_shared **)arg;
    if (mproc_lock_acquire(mproc_shared_get_lock(v), MPROC_FOREVER)) return 1;
    raise(SIGKILL);
    return 2;
}

START_TEST(value_access_survives_a_dead_lock_holder)
{
    mproc_shared *v;
    TU_OK(mproc_shared_value_new(&v, 'q', NULL, NULL));
    ck_assert_int_eq(tu_run_child(die_holding_value_lock, &v, sizeof v, tu_methods[_i]), -SIGKILL);
    TU_OK(mproc_shared_set_int(v, 0, 5)); /* repaired, not passed on */
    int64_t i;
    TU_OK(mproc_shared_get_int(v, 0, &i));
    ck_assert_int_eq(i, 5);
    TU_OK(mproc_lock_acquire(mproc_shared_get_lock(v), 0));
    TU_OK(mproc_lock_release(mproc_shared_get_lock(v)));
    mproc_shared_free(v);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("shared");
    TCase *tc = tu_tcase(s, "values", 30);
    tcase_add_test(tc, every_typecode_round_trips);
    tcase_add_test(tc, ranges_and_conversions);
    tcase_add_test(tc, arrays_and_raw_blocks);
    tcase_add_test(tc, lock_modes);
    tc = tu_tcase(s, "processes", 60);
    tcase_add_loop_test(tc, locked_increments_from_two_processes_are_exact, 0, TU_NMETHODS);
    tcase_add_loop_test(tc, value_access_survives_a_dead_lock_holder, 0, TU_NMETHODS);
    return tu_run(s);
}
