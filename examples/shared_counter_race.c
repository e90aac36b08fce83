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
 */
#include <mproc.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ITERATIONS 100
#define ARRAY_LEN  3

/* The gap, in microseconds, between reading a value and writing it back.
 * In Python, `x.value += 1` runs many bytecodes between the read and the
 * write, and the interpreter may switch away in the middle. In C the gap
 * is a few nanoseconds, so the race would almost never show. This pause
 * widens it to a size where lost updates really happen, as in the seed. */
#define RACE_WINDOW_US 200

/* Prints what failed and why, then exits: every mproc call is checked. */
static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "shared_counter_race: %s: %s\n", what, mproc_strerror(rc));
        exit(1);
    }
}

/* In a child: prints what failed and returns the exit code to report. */
static int child_fail(int rc, const char *what)
{
    fprintf(stderr, "shared_counter_race: %s: %s: %s\n",
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

/* Target of processes 1 and 2. arg holds the mproc_shared pointer of the
 * Value: the object lives in the arena, mapped at the same address here. */
static int add_100(void *arg)
{
    mproc_shared *number = *(mproc_shared **)arg;
    int rc;

    for (int n = 0; n < ITERATIONS; n++) {
        usleep(10000); /* time.sleep(0.01) */
        /* number.value += 1, as Python does it: read, then write. */
        int64_t v;
        if ((rc = mproc_shared_get_int(number, 0, &v)) < 0)
            return child_fail(rc, "mproc_shared_get_int");
        usleep(RACE_WINDOW_US); /* the widened race window, see above */
        if ((rc = mproc_shared_set_int(number, 0, v + 1)) < 0)
            return child_fail(rc, "mproc_shared_set_int");
    }
    return 0;
}

/* Target of processes 3 and 4: the same for every element of the Array. */
static int add_100_array(void *arg)
{
    mproc_shared *numbers = *(mproc_shared **)arg;
    int rc;

    for (int n = 0; n < ITERATIONS; n++) {
        usleep(10000); /* time.sleep(0.01) */
        for (size_t i = 0; i < mproc_shared_len(numbers); i++) {
            /* numbers[i] += 1: a locked read, then a locked write. */
            double d;
            if ((rc = mproc_shared_get_double(numbers, i, &d)) < 0)
                return child_fail(rc, "mproc_shared_get_double");
            usleep(RACE_WINDOW_US);
            if ((rc = mproc_shared_set_double(numbers, i, d + 1.0)) < 0)
                return child_fail(rc, "mproc_shared_set_double");
        }
    }
    return 0;
}

int main(void)
{
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

    /* The argument bytes are the handle pointers themselves: each child
     * gets a copy of the pointer, which is valid in the child because the
     * arena is mapped at the same address in every process of the family. */
    mproc_process *processes[4];
    check(mproc_process_new(&processes[0], add_100, &shared_number, sizeof shared_number, NULL),
          "mproc_process_new");
    check(mproc_process_new(&processes[1], add_100, &shared_number, sizeof shared_number, NULL),
          "mproc_process_new");
    check(mproc_process_new(&processes[2], add_100_array, &shared_array, sizeof shared_array, NULL),
          "mproc_process_new");
    check(mproc_process_new(&processes[3], add_100_array, &shared_array, sizeof shared_array, NULL),
          "mproc_process_new");

    for (int i = 0; i < 4; i++) check(mproc_process_start(processes[i]), "mproc_process_start");

    int failed = 0;
    for (int i = 0; i < 4; i++) {
        int code;
        check(mproc_process_join(processes[i], MPROC_FOREVER), "mproc_process_join");
        check(mproc_process_exitcode(processes[i], &code), "mproc_process_exitcode");
        if (code != 0) {
            fprintf(stderr, "shared_counter_race: %s exited with code %d\n",
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
    return failed;
}
