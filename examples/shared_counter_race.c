/* shared_counter_race — C twin of seed 001's "Share data between processes".
 *
 * A shared int Value (0) and a shared double Array ([0.0, 100.0, 200.0])
 * live in the family arena. Two processes add 1 to the value 100 times; two
 * others add 1 to every element of the array 100 times. Nothing holds a
 * lock across the read and the write, so updates get lost: the end values
 * are usually below 200 and [200.0, 300.0, 400.0]. shared_counter_lock.c is
 * the fixed version.
 *
 * The Python original:
 *
 *     def add_100(number):
 *         for _ in range(100):
 *             time.sleep(0.01)
 *             number.value += 1
 *
 *     def add_100_array(numbers):
 *         for _ in range(100):
 *             time.sleep(0.01)
 *             for i in range(len(numbers)):
 *                 numbers[i] += 1
 *
 *     if __name__ == "__main__":
 *         shared_number = Value('i', 0)
 *         print('Value at beginning:', shared_number.value)
 *         shared_array = Array('d', [0.0, 100.0, 200.0])
 *         print('Array at beginning:', shared_array[:])
 *         process1 = Process(target=add_100, args=(shared_number,))
 *         process2 = Process(target=add_100, args=(shared_number,))
 *         process3 = Process(target=add_100_array, args=(shared_array,))
 *         process4 = Process(target=add_100_array, args=(shared_array,))
 *         ... start all four, join all four ...
 *         print('Value at end:', shared_number.value)
 *         print('Array at end:', shared_array[:])
 *         print('end main')
 *
 * Output of one run of the Python (the end values vary from run to run):
 *
 *     Value at beginning: 0
 *     Array at beginning: [0.0, 100.0, 200.0]
 *     Value at end: 144
 *     Array at end: [134.0, 237.0, 339.0]
 *     end main
 *
 * Why updates are lost: `number.value += 1` is a locked read followed by a
 * separate locked write. mproc_shared_get_int and mproc_shared_set_int are
 * the same two steps: each takes the value's own lock, but nothing holds it
 * between them. If the other process writes in between, one of the two
 * increments is overwritten.
 *
 * add_100 and add_100_array are one target here: 100 times, add 1 to every
 * element of a shared object (a Value has one). The values printed are
 * whole numbers, so "%.1f" prints them as Python's repr of a float does.
 */
#include <mproc.h>

#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

/* The gap, in microseconds, between reading a value and writing it back.
 * In Python, `x.value += 1` runs many bytecodes between the read and the
 * write, and the interpreter may switch away in the middle. In C the gap
 * is a few nanoseconds, so the race would almost never show. This pause
 * widens it to a size where lost updates really happen, as in the seed. */
#define RACE_WINDOW_US 200

/* The target of all four processes. arg holds the mproc_shared pointer:
 * the object lives in the arena, mapped at the same address here. */
static int add_100(void *arg)
{
    mproc_shared *numbers = *(mproc_shared **)arg;
    for (int n = 0; n < 100; n++) {
        usleep(10000); /* time.sleep(0.01) */
        for (size_t i = 0; i < mproc_shared_len(numbers); i++) {
            double d; /* numbers[i] += 1: a locked read, then a locked write */
            MPROC_CHECK(mproc_shared_get_double(numbers, i, &d));
            usleep(RACE_WINDOW_US); /* the widened race window, see above */
            MPROC_CHECK(mproc_shared_set_double(numbers, i, d + 1));
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
    mproc_shared *number, *array;
    int64_t v;
    /* Value('i', 0) and Array('d', ...): NULL options give each an RLock
     * of its own, as Python. */
    MPROC_CHECK(mproc_shared_value_new(&number, 'i', &(int){0}, NULL));
    MPROC_CHECK(mproc_shared_get_int(number, 0, &v));
    printf("Value at beginning: %lld\n", (long long)v);
    MPROC_CHECK(mproc_shared_array_new(&array, 'd', 3, (double[]){0.0, 100.0, 200.0}, NULL));
    print_array("Array at beginning:", array);

    /* Processes 1 and 2 get the Value, 3 and 4 the Array: the argument
     * bytes are the handle pointer itself. */
    mproc_process *p[4];
    for (int i = 0; i < 4; i++)
        MPROC_CHECK(
            mproc_process_new(&p[i], add_100, i < 2 ? &number : &array, sizeof number, NULL));
    MPROC_CHECK(mproc_process_start_all(p, 4));
    size_t failed;
    MPROC_CHECK(mproc_process_join_all(p, 4, MPROC_FOREVER, &failed));
    if (failed) fprintf(stderr, "shared_counter_race: %zu processes exited non-zero\n", failed);
    for (int i = 0; i < 4; i++) MPROC_CHECK(mproc_process_free(p[i]));

    MPROC_CHECK(mproc_shared_get_int(number, 0, &v));
    printf("Value at end: %lld\n", (long long)v);
    print_array("Array at end:", array);
    printf("end main\n");
    mproc_shared_free(array);
    mproc_shared_free(number);
    return failed != 0;
}
