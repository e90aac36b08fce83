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
 */
#include <mproc.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#define LIST_CAP 16

/* A small fixed-capacity stand-in for a Python list of ints. */
struct int_list {
    size_t len;
    int items[LIST_CAP];
};

/* The global list, empty at start. */
static struct int_list result;

/* Prints what failed and why, then exits: every mproc call is checked. */
static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "isolated_globals: %s: %s\n", what, mproc_strerror(rc));
        exit(1);
    }
}

static void list_append(struct int_list *list, int value)
{
    if (list->len < LIST_CAP) list->items[list->len++] = value;
}

/* Prints "Result(in WHERE): [a, b, ...]" the way Python formats a list. */
static void print_result(const char *where)
{
    printf("Result(in %s): [", where);
    for (size_t i = 0; i < result.len; i++) printf("%s%d", i > 0 ? ", " : "", result.items[i]);
    printf("]\n");
}

/* The target. arg points to the child's private copy of mylist. */
static int square_list(void *arg)
{
    const struct int_list *mylist = arg;

    /* Appends to the child's copy of the global; the parent never sees it. */
    for (size_t i = 0; i < mylist->len; i++)
        list_append(&result, mylist->items[i] * mylist->items[i]);
    print_result("process p1");
    return 0;
}

int main(void)
{
    struct int_list mylist = {.len = 4, .items = {1, 2, 3, 4}};
    mproc_process *p1;

    /* The list travels to the child as argument bytes (a copy). */
    check(mproc_process_new(&p1, square_list, &mylist, sizeof mylist, NULL), "mproc_process_new");
    check(mproc_process_start(p1), "mproc_process_start");
    check(mproc_process_join(p1, MPROC_FOREVER), "mproc_process_join");

    int code;
    check(mproc_process_exitcode(p1, &code), "mproc_process_exitcode");
    if (code != 0) {
        fprintf(stderr, "isolated_globals: p1 exited with code %d\n", code);
        return 1;
    }
    check(mproc_process_free(p1), "mproc_process_free");

    /* Still empty here: the parent's `result` was never touched. */
    print_result("main program");
    return 0;
}
