/* shared_counter_lock — C twin of seed 001's "Avoid race conditions with
 * Locks".
 *
 * The same four processes as shared_counter_race.c, but each holds one
 * Lock (MPROC_WITH, Python's `with lock:`) around every read-modify-write,
 * so no update is lost. Output:
 *
 *     Value at beginning: 0
 *     Array at beginning: [0.0, 100.0, 200.0]
 *     Value at end: 200
 *     Array at end: [200.0, 300.0, 400.0]
 *     end main
 *
 * As in Python, the Value and the Array keep RLocks of their own, taken by
 * each get and set; the Lock is what makes the read and the write one step.
 */
#include <mproc.h>

#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

struct worker_args {
    mproc_shared *shared; /* both in the arena: valid in every process */
    mproc_lock *lock;
};

/* add_100 and add_100_array in one: 100 times, add 1 to every element. */
static int add_100(void *arg)
{
    const struct worker_args *a = arg;
    for (int n = 0; n < 100; n++) {
        usleep(10000); /* time.sleep(0.01) */
        for (size_t i = 0; i < mproc_shared_len(a->shared); i++) {
            int rc = MPROC_EUNKNOWN; /* stays so if the lock is not taken (logged) */
            MPROC_WITH(a->lock)
            {
                double d;
                if ((rc = mproc_shared_get_double(a->shared, i, &d)) == 0) {
                    usleep(200); /* shared_counter_race.c's race window: harmless here */
                    rc = mproc_shared_set_double(a->shared, i, d + 1);
                }
            }
            MPROC_CHECK(rc);
        }
    }
    return 0;
}

/* print(label, shared[:]) for the values printed here (whole numbers). */
static void print_array(const char *label, mproc_shared *s)
{
    printf("%s [", label);
    for (size_t i = 0; i < mproc_shared_len(s); i++) {
        double d;
        MPROC_CHECK(mproc_shared_get_double(s, i, &d));
        printf("%s%.1f", i ? ", " : "", d);
    }
    printf("]\n");
}

int main(void)
{
    mproc_lock *lock;
    mproc_shared *number, *array;
    int64_t v;
    MPROC_CHECK(mproc_lock_new(&lock));
    MPROC_CHECK(mproc_shared_value_new(&number, 'i', &(int){0}, NULL));
    MPROC_CHECK(mproc_shared_get_int(number, 0, &v));
    printf("Value at beginning: %lld\n", (long long)v);
    MPROC_CHECK(mproc_shared_array_new(&array, 'd', 3, (double[]){0.0, 100.0, 200.0}, NULL));
    print_array("Array at beginning:", array);

    mproc_process *p[4];
    for (int i = 0; i < 4; i++) {
        struct worker_args args = {i < 2 ? number : array, lock};
        MPROC_CHECK(mproc_process_new(&p[i], add_100, &args, sizeof args, NULL));
    }
    MPROC_CHECK(mproc_process_start_all(p, 4));
    size_t failed;
    MPROC_CHECK(mproc_process_join_all(p, 4, MPROC_FOREVER, &failed));
    for (int i = 0; i < 4; i++) MPROC_CHECK(mproc_process_free(p[i]));

    MPROC_CHECK(mproc_shared_get_int(number, 0, &v));
    printf("Value at end: %lld\n", (long long)v);
    print_array("Array at end:", array);
    printf("end main\n");
    mproc_shared_free(array);
    mproc_shared_free(number);
    mproc_lock_free(lock);
    return failed != 0;
}
