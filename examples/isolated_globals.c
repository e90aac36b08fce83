/* isolated_globals — C twin of seed 003's first program.
 *
 * A child process appends the squares of [1, 2, 3, 4] to a global list and
 * prints it; the parent then prints the same global and finds it still
 * empty. Each process has its own memory: the child changed its own copy of
 * `result`, never the parent's.
 *
 * The Python original:
 *
 *     result = []
 *
 *     def square_list(mylist):
 *         global result
 *         for num in mylist:
 *             result.append(num * num)
 *         print("Result(in process p1): {}".format(result))
 *
 *     if __name__ == "__main__":
 *         mylist = [1,2,3,4]
 *         p1 = multiprocessing.Process(target=square_list, args=(mylist,))
 *         p1.start()
 *         p1.join()
 *         print("Result(in main program): {}".format(result))
 *
 * Expected output:
 *
 *     Result(in process p1): [1, 4, 9, 16]
 *     Result(in main program): []
 *
 * The global list is an mproc_value list, printed by mproc_value_repr as
 * Python prints a list. Under spawn and forkserver the child is a new
 * program image whose globals start as the program declares them (as
 * Python's child re-imports the module and runs `result = []` again), so
 * the list is made on first use, in whichever process uses it.
 */
#include <mproc.h>

#include <stdio.h>
#include <stdlib.h>

static mproc_value *result; /* the global list: made empty on first use */

/* print("Result(in WHERE): {}".format(result)) */
static void print_result(const char *where)
{
    if (result == NULL) MPROC_CHECK(mproc_value_pack(&result, "[]"));
    char *repr = mproc_value_repr_alloc(result);
    if (repr == NULL) MPROC_CHECK(MPROC_ENOMEM);
    printf("Result(in %s): %s\n", where, repr);
    free(repr);
}

/* The target. arg points to the child's private copy of mylist. */
static int square_list(void *arg)
{
    const int *mylist = arg;
    if (result == NULL) MPROC_CHECK(mproc_value_pack(&result, "[]"));
    /* Appends to the child's copy of the global; the parent never sees it. */
    for (int i = 0; i < 4; i++)
        MPROC_CHECK(mproc_value_list_append(result, mproc_value_int(mylist[i] * mylist[i])));
    print_result("process p1");
    return 0;
}

int main(void)
{
    int mylist[] = {1, 2, 3, 4};
    mproc_process *p1;
    int code;

    /* The list travels to the child as argument bytes (a copy). */
    MPROC_CHECK(mproc_process_new(&p1, square_list, mylist, sizeof mylist, NULL));
    MPROC_CHECK(mproc_process_start(p1));
    MPROC_CHECK(mproc_process_join(p1, MPROC_FOREVER));
    MPROC_CHECK(mproc_process_exitcode(p1, &code));
    if (code != 0) {
        fprintf(stderr, "isolated_globals: p1 exited with code %d\n", code);
        return 1;
    }
    MPROC_CHECK(mproc_process_free(p1));

    print_result("main program"); /* still empty: the parent's `result` was never touched */
    mproc_value_free(result);
    return 0;
}
