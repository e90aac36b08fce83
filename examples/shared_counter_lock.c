/* shared_counter_lock — C twin of seed 001's "Avoid race conditions with
 * Locks".
 *
 * The same four processes as shared_counter_race.c, but a Lock is created
 * and passed to every worker, which holds it around each read-modify-write.
 * No update is lost: the value ends at exactly 200 and the array at exactly
 * [200.0, 300.0, 400.0].
 *
 * The Python original (the changes from the racy version are the lock):
 *
 *     def add_100(number, lock):
 *         for _ in range(100):
 *             time.sleep(0.01)
 *             lock.acquire()
 *             number.value += 1
 *             lock.release()
 *
 *     def add_100_array(numbers, lock):
 *         for _ in range(100):
 *             time.sleep(0.01)
 *             for i in range(len(numbers)):
 *                 lock.acquire()
 *                 numbers[i] += 1
 *                 lock.release()
 *
 *     if __name__ == "__main__":
 *         lock = Lock()
 *         shared_number = Value('i', 0)
 *         print('Value at beginning:', shared_number.value)
 *         shared_array = Array('d', [0.0, 100.0, 200.0])
 *         print('Array at beginning:', shared_array[:])
 *         process1 = Process(target=add_100, args=(shared_number, lock))
 *         process2 = Process(target=add_100, args=(shared_number, lock))
 *         process3 = Process(target=add_100_array, args=(shared_array, lock))
 *         process4 = Process(target=add_100_array, args=(shared_array, lock))
 *         ... start all four, join all four ...
 *         print('Value at end:', shared_number.value)
 *         print('Array at end:', shared_array[:])
 *         print('end main')
 *
 * Expected output:
 *
 *     Value at beginning: 0
 *     Array at beginning: [0.0, 100.0, 200.0]
 *     Value at end: 200
 *     Array at end: [200.0, 300.0, 400.0]
 *     end main
 *
 * As in Python, the Value and the Array keep their own RLocks, taken by
 * each mproc_shared_get_* / mproc_shared_set_* call; the extra Lock is what
 * makes the read and the write one step. (The value's own lock, from
 * mproc_shared_get_lock, would do as well: it is an RLock, so the get and
 * set calls may take it again while we hold it.)
 */
#include <mproc.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ITERATIONS 100
#define ARRAY_LEN  3

/* The same pause between read and write as in shared_counter_race.c,
 * where it widens the race window so that lost updates really happen. Here
 * the lock is held across it, so it can do no harm. */
#define RACE_WINDOW_US 200

/* The argument bytes of every worker: the shared object and the Lock, both
 * pointers into the arena, which is mapped at the same address in every
 * process of the family. */
struct worker_args {
    mproc_shared *shared;
    mproc_lock *lock;
};

/* Prints what failed and why, then exits: every mproc call is checked. */
static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "shared_counter_lock: %s: %s\n", what, mproc_strerror(rc));
        exit(1);
    }
}

/* In a child: prints what failed and returns the exit code to report. */
static int child_fail(int rc, const char *what)
{
    fprintf(stderr, "shared_counter_lock: %s: %s: %s\n",
            mproc_process_name(mproc_current_process()), what, mproc_strerror(rc));
    return 1;
}

/* Formats d the way Python's repr() does for the values printed here:
 * the fewest digits that read back as d, and at least one decimal
 * ("200.0", "134.5"). */
static void format_double(char *buf, size_t len, double d)
{
    char tmp[32];
    int prec;
    /* The shortest "%.*e" form that round-trips gives the significant digits. */
    for (prec = 0; prec < 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec, d);
        if (strtod(tmp, NULL) == d) break;
    }
    int exp10 = atoi(strchr(tmp, 'e') + 1);
    if (exp10 < -4 || exp10 >= 16) {
        snprintf(buf, len, "%s", tmp); /* Python too switches to exponent form */
        return;
    }
    int decimals = prec - exp10;
    snprintf(buf, len, "%.*f", decimals < 1 ? 1 : decimals, d);
}

/* Prints "LABEL [a, b, c]" like Python's print(label, array[:]). */
static void print_array(const char *label, mproc_shared *array)
{
    printf("%s [", label);
    for (size_t i = 0; i < mproc_shared_len(array); i++) {
        double d;
        char buf[40];
        check(mproc_shared_get_double(array, i, &d), "mproc_shared_get_double");
        format_double(buf, sizeof buf, d);
        printf("%s%s", i ? ", " : "", buf);
    }
    printf("]\n");
}

/* Target of processes 1 and 2: add 1 to the Value 100 times. */
static int add_100(void *arg)
{
    const struct worker_args *a = arg;
    int rc;

    for (int n = 0; n < ITERATIONS; n++) {
        usleep(10000); /* time.sleep(0.01) */
        /* lock.acquire() */
        if ((rc = mproc_lock_acquire(a->lock, MPROC_FOREVER)) < 0)
            return child_fail(rc, "mproc_lock_acquire");
        /* number.value += 1: read, then write, now with the lock held
         * across both. */
        int64_t v;
        const char *what = "mproc_shared_get_int";
        if ((rc = mproc_shared_get_int(a->shared, 0, &v)) >= 0) {
            usleep(RACE_WINDOW_US);
            what = "mproc_shared_set_int";
            rc = mproc_shared_set_int(a->shared, 0, v + 1);
        }
        /* lock.release(), also when the update failed. */
        int rc_release = mproc_lock_release(a->lock);
        if (rc < 0) return child_fail(rc, what);
        if (rc_release < 0) return child_fail(rc_release, "mproc_lock_release");
    }
    return 0;
}

/* Target of processes 3 and 4: add 1 to every element of the Array 100
 * times, taking the lock around each element's update as the Python does. */
static int add_100_array(void *arg)
{
    const struct worker_args *a = arg;
    int rc;

    for (int n = 0; n < ITERATIONS; n++) {
        usleep(10000); /* time.sleep(0.01) */
        for (size_t i = 0; i < mproc_shared_len(a->shared); i++) {
            if ((rc = mproc_lock_acquire(a->lock, MPROC_FOREVER)) < 0)
                return child_fail(rc, "mproc_lock_acquire");
            /* numbers[i] += 1 */
            double d;
            const char *what = "mproc_shared_get_double";
            if ((rc = mproc_shared_get_double(a->shared, i, &d)) >= 0) {
                usleep(RACE_WINDOW_US);
                what = "mproc_shared_set_double";
                rc = mproc_shared_set_double(a->shared, i, d + 1.0);
            }
            int rc_release = mproc_lock_release(a->lock);
            if (rc < 0) return child_fail(rc, what);
            if (rc_release < 0) return child_fail(rc_release, "mproc_lock_release");
        }
    }
    return 0;
}

int main(void)
{
    /* lock = Lock(): allocated in the arena, so every child can use it. */
    mproc_lock *lock;
    check(mproc_lock_new(&lock), "mproc_lock_new");

    /* Value('i', 0): NULL options give it an RLock of its own, as Python. */
    mproc_shared *shared_number;
    int zero = 0;
    check(mproc_shared_value_new(&shared_number, 'i', &zero, NULL), "mproc_shared_value_new");
    int64_t v;
    check(mproc_shared_get_int(shared_number, 0, &v), "mproc_shared_get_int");
    printf("Value at beginning: %lld\n", (long long)v);

    /* Array('d', [0.0, 100.0, 200.0]) */
    mproc_shared *shared_array;
    const double init[ARRAY_LEN] = {0.0, 100.0, 200.0};
    check(mproc_shared_array_new(&shared_array, 'd', ARRAY_LEN, init, NULL),
          "mproc_shared_array_new");
    print_array("Array at beginning:", shared_array);

    /* Each worker gets its shared object and the lock, copied as bytes. */
    const struct worker_args value_args = {shared_number, lock};
    const struct worker_args array_args = {shared_array, lock};
    mproc_process *processes[4];
    for (int i = 0; i < 2; i++)
        check(mproc_process_new(&processes[i], add_100, &value_args, sizeof value_args, NULL),
              "mproc_process_new");
    for (int i = 2; i < 4; i++)
        check(mproc_process_new(&processes[i], add_100_array, &array_args, sizeof array_args, NULL),
              "mproc_process_new");

    for (int i = 0; i < 4; i++) check(mproc_process_start(processes[i]), "mproc_process_start");

    int failed = 0;
    for (int i = 0; i < 4; i++) {
        int code;
        check(mproc_process_join(processes[i], MPROC_FOREVER), "mproc_process_join");
        check(mproc_process_exitcode(processes[i], &code), "mproc_process_exitcode");
        if (code != 0) {
            fprintf(stderr, "shared_counter_lock: %s exited with code %d\n",
                    mproc_process_name(processes[i]), code);
            failed = 1;
        }
        check(mproc_process_free(processes[i]), "mproc_process_free");
    }

    check(mproc_shared_get_int(shared_number, 0, &v), "mproc_shared_get_int");
    printf("Value at end: %lld\n", (long long)v);
    print_array("Array at end:", shared_array);
    printf("end main\n");

    mproc_shared_free(shared_array);
    mproc_shared_free(shared_number);
    mproc_lock_free(lock);
    return failed;
}
