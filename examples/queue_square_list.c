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
 * squares travel as the bytes of a C int. p1 has exited before p2 starts,
 * and mproc's put copies an item into the queue before it returns, so all
 * four are there for p2 to find.
 */
#include <mproc.h>
#include <mproc/queue.h>

#include <stdio.h>
#include <stdlib.h>

/* Arguments of square_list: the list itself (copied into the child with
 * the argument bytes, as Python pickles mylist) and the queue pointer. */
struct square_args {
    int mylist[4];
    mproc_queue *q;
};

/* Target of p1: for num in mylist: q.put(num * num) */
static int square_list(void *arg)
{
    const struct square_args *a = arg;
    for (int i = 0; i < 4; i++)
        MPROC_CHECK(
            mproc_queue_put(a->q, &(int){a->mylist[i] * a->mylist[i]}, sizeof(int), MPROC_FOREVER));
    return 0;
}

/* Target of p2: prints the queue's elements until it is empty. arg points
 * to the child's copy of the queue pointer. */
static int print_queue(void *arg)
{
    mproc_queue *q = *(mproc_queue **)arg;
    printf("Queue elements:\n");
    while (!mproc_queue_empty(q)) {
        int n;
        size_t len;
        MPROC_CHECK(mproc_queue_get_into(q, &n, sizeof n, &len, MPROC_FOREVER));
        printf("%d\n", n);
    }
    printf("Queue is now empty!\n");
    return 0;
}

/* p.start(); p.join(); and the child must have exited with 0. */
static void run(mproc_target_fn target, const void *arg, size_t size)
{
    mproc_process *p;
    int code;
    MPROC_CHECK(mproc_process_new(&p, target, arg, size, NULL));
    MPROC_CHECK(mproc_process_start(p));
    MPROC_CHECK(mproc_process_join(p, MPROC_FOREVER));
    MPROC_CHECK(mproc_process_exitcode(p, &code));
    if (code != 0) {
        fprintf(stderr, "queue_square_list: %s exited with code %d\n", mproc_process_name(p), code);
        exit(1);
    }
    MPROC_CHECK(mproc_process_free(p));
}

int main(void)
{
    mproc_queue *q;
    MPROC_CHECK(mproc_queue_new(&q, NULL));
    struct square_args args = {.mylist = {1, 2, 3, 4}, .q = q};
    run(square_list, &args, sizeof args); /* all squares are in the queue after this */
    run(print_queue, &q, sizeof q);
    mproc_queue_free(q);
    return 0;
}
