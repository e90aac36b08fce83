/* queue_square_list — C twin of seed 003's Queue program ("Communication
 * between processes").
 *
 * Process p1 puts the squares of [1, 2, 3, 4] into a queue and is joined;
 * then process p2 prints "Queue elements:", every element while the queue
 * is not empty, and "Queue is now empty!".
 *
 * The Python original:
 *
 *     def square_list(mylist, q):
 *         """
 *         function to square a given list
 *         """
 *         # append squares of mylist to queue
 *         for num in mylist:
 *             q.put(num * num)
 *
 *     def print_queue(q):
 *         """
 *         function to print queue elements
 *         """
 *         print("Queue elements:")
 *         while not q.empty():
 *             print(q.get())
 *         print("Queue is now empty!")
 *
 *     if __name__ == "__main__":
 *         # input list
 *         mylist = [1,2,3,4]
 *         # creating multiprocessing Queue
 *         q = multiprocessing.Queue()
 *         # creating new processes
 *         p1 = multiprocessing.Process(target=square_list, args=(mylist, q))
 *         p2 = multiprocessing.Process(target=print_queue, args=(q,))
 *         # running process p1 to square list
 *         p1.start()
 *         p1.join()
 *         # running process p2 to get queue elements
 *         p2.start()
 *         p2.join()
 *
 * Output:
 *
 *     Queue elements:
 *     1
 *     4
 *     9
 *     16
 *     Queue is now empty!
 *
 * The items pass from one child to another, never through the parent: the
 * queue is in the arena, which every process of the family maps. The
 * squares travel as int values. p1 has exited before p2 starts, and mproc's
 * put copies an item into the queue before it returns, so all four are
 * there for p2 to find.
 */
#include <mproc.h>
#include <mproc/queue.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define LIST_LEN 4

/* Arguments of square_list: the list itself (copied into the child with
 * the argument bytes, as Python pickles mylist) and the queue pointer. */
struct square_args {
    int mylist[LIST_LEN];
    mproc_queue *q;
};

/* Prints what failed and why, then exits: every mproc call is checked. */
static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "queue_square_list: %s: %s\n", what, mproc_strerror(rc));
        exit(1);
    }
}

/* Target of p1: puts num * num for each num of the list. */
static int square_list(void *arg)
{
    const struct square_args *a = arg;
    for (int i = 0; i < LIST_LEN; i++) {
        int64_t num = a->mylist[i];
        mproc_value *v = mproc_value_int(num * num);
        if (v == NULL) check(MPROC_ENOMEM, "mproc_value_int");
        check(mproc_queue_put_value(a->q, v, MPROC_FOREVER), "mproc_queue_put_value");
        mproc_value_free(v);
    }
    return 0;
}

/* Target of p2: prints the queue's elements until it is empty. arg points
 * to the child's copy of the queue pointer. */
static int print_queue(void *arg)
{
    mproc_queue *q = *(mproc_queue **)arg;

    printf("Queue elements:\n");
    while (!mproc_queue_empty(q)) {
        mproc_value *item;
        int64_t n;
        check(mproc_queue_get_value(q, &item, MPROC_FOREVER), "mproc_queue_get_value");
        check(mproc_value_get_int(item, &n), "mproc_value_get_int");
        printf("%lld\n", (long long)n);
        mproc_value_free(item);
    }
    printf("Queue is now empty!\n");
    return 0;
}

/* Joins p, reports a non-zero exit code, frees p. Returns 1 on failure. */
static int join_and_free(mproc_process *p)
{
    int code;
    check(mproc_process_join(p, MPROC_FOREVER), "mproc_process_join");
    check(mproc_process_exitcode(p, &code), "mproc_process_exitcode");
    int failed = 0;
    if (code != 0) {
        fprintf(stderr, "queue_square_list: %s exited with code %d\n", mproc_process_name(p), code);
        failed = 1;
    }
    check(mproc_process_free(p), "mproc_process_free");
    return failed;
}

int main(void)
{
    mproc_queue *q;
    check(mproc_queue_new(&q, NULL), "mproc_queue_new");

    const struct square_args args = {.mylist = {1, 2, 3, 4}, .q = q};
    mproc_process *p1, *p2;
    check(mproc_process_new(&p1, square_list, &args, sizeof args, NULL), "mproc_process_new");
    check(mproc_process_new(&p2, print_queue, &q, sizeof q, NULL), "mproc_process_new");

    /* p1.start(); p1.join(): all squares are in the queue after this. */
    check(mproc_process_start(p1), "mproc_process_start");
    int failed = join_and_free(p1);

    /* p2.start(); p2.join() */
    check(mproc_process_start(p2), "mproc_process_start");
    failed |= join_and_free(p2);

    mproc_queue_free(q);
    return failed;
}
