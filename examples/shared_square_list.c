/* shared_square_list — C twin of seed 003's "Sharing data between
 * processes".
 *
 * The fix for isolated_globals.c: the child writes the squares into a
 * shared Array('i', 4) and their sum into a shared Value('i'), both in the
 * family arena, so the parent sees what the child wrote.
 *
 * The Python original:
 *
 *     def square_list(mylist, result, square_sum):
 *         for idx, num in enumerate(mylist):
 *             result[idx] = num * num
 *         square_sum.value = sum(result)
 *         print("Result(in process p1): {}".format(result[:]))
 *         print("Sum of squares(in process p1): {}".format(square_sum.value))
 *
 *     if __name__ == "__main__":
 *         mylist = [1,2,3,4]
 *         result = multiprocessing.Array('i', 4)
 *         square_sum = multiprocessing.Value('i')
 *         p1 = multiprocessing.Process(target=square_list,
 *                                      args=(mylist, result, square_sum))
 *         p1.start()
 *         p1.join()
 *         print("Result(in main program): {}".format(result[:]))
 *         print("Sum of squares(in main program): {}".format(square_sum.value))
 *
 * Expected output:
 *
 *     Result(in process p1): [1, 4, 9, 16]
 *     Sum of squares(in process p1): 30
 *     Result(in main program): [1, 4, 9, 16]
 *     Sum of squares(in main program): 30
 *
 * Each element access takes the object's own lock, as in Python.
 */
#include <mproc.h>

#include <stdio.h>

#define LIST_LEN 4

/* The argument bytes of the child: mylist by value (a copy, as Python
 * pickles it), and the two shared objects by pointer (they live in the
 * arena, which the child maps at the same address). */
struct square_args {
    int mylist[LIST_LEN];
    mproc_shared *result, *square_sum;
};

/* print("Result(in WHERE): {}".format(result[:])) and the sum's line. */
static void print_shared(const char *where, const struct square_args *a)
{
    int64_t v, sum;
    printf("Result(in %s): [", where);
    for (size_t i = 0; i < LIST_LEN; i++) {
        MPROC_CHECK(mproc_shared_get_int(a->result, i, &v));
        printf("%s%lld", i ? ", " : "", (long long)v);
    }
    MPROC_CHECK(mproc_shared_get_int(a->square_sum, 0, &sum));
    printf("]\nSum of squares(in %s): %lld\n", where, (long long)sum);
}

/* The target, run by process p1. */
static int square_list(void *arg)
{
    const struct square_args *a = arg;
    int64_t sum = 0, v;
    for (size_t idx = 0; idx < LIST_LEN; idx++) /* result[idx] = num * num */
        MPROC_CHECK(mproc_shared_set_int(a->result, idx, a->mylist[idx] * a->mylist[idx]));
    for (size_t i = 0; i < LIST_LEN; i++) { /* sum(result) reads the array back */
        MPROC_CHECK(mproc_shared_get_int(a->result, i, &v));
        sum += v;
    }
    MPROC_CHECK(mproc_shared_set_int(a->square_sum, 0, sum));
    print_shared("process p1", a);
    return 0;
}

int main(void)
{
    struct square_args args = {.mylist = {1, 2, 3, 4}};
    mproc_process *p1;
    int code;

    /* Array('i', 4) and Value('i'): zeros, each with an RLock of its own. */
    MPROC_CHECK(mproc_shared_array_new(&args.result, 'i', LIST_LEN, NULL, NULL));
    MPROC_CHECK(mproc_shared_value_new(&args.square_sum, 'i', NULL, NULL));

    /* p1 = Process(target=square_list, args=(mylist, result, square_sum)) */
    MPROC_CHECK(mproc_process_new(&p1, square_list, &args, sizeof args, NULL));
    MPROC_CHECK(mproc_process_start(p1));
    MPROC_CHECK(mproc_process_join(p1, MPROC_FOREVER));
    MPROC_CHECK(mproc_process_exitcode(p1, &code));
    MPROC_CHECK(mproc_process_free(p1));
    if (code != 0) {
        fprintf(stderr, "shared_square_list: p1 exited with code %d\n", code);
        return 1;
    }

    print_shared("main program", &args); /* what the child wrote into shared memory */
    mproc_shared_free(args.square_sum);
    mproc_shared_free(args.result);
    return 0;
}
