/* queue_square_negative — C twin of seed 001's "Using a queue in
 * multiprocessing".
 *
 * Two producer processes put into one queue: square() puts i*i and
 * make_negative() puts -i, for i = 1..5. The parent joins both, then
 * empties the queue, printing each item, and prints "end main".
 *
 * The Python original:
 *
 *     # communicate between processes with the multiprocessing Queue
 *     # Queues are thread and process safe
 *     from multiprocessing import Process, Queue
 *
 *     def square(numbers, queue):
 *         for i in numbers:
 *             queue.put(i*i)
 *
 *     def make_negative(numbers, queue):
 *         for i in numbers:
 *             queue.put(i*-1)
 *
 *     if __name__ == "__main__":
 *         numbers = range(1, 6)
 *         q = Queue()
 *         p1 = Process(target=square, args=(numbers,q))
 *         p2 = Process(target=make_negative, args=(numbers,q))
 *         p1.start()
 *         p2.start()
 *         p1.join()
 *         p2.join()
 *         # order might not be sequential
 *         while not q.empty():
 *             print(q.get())
 *         print('end main')
 *
 * Output, as in the seed when p1 runs first:
 *
 *     1
 *     4
 *     9
 *     16
 *     25
 *     -1
 *     -2
 *     -3
 *     -4
 *     -5
 *     end main
 *
 * "Order might not be sequential": the queue keeps each producer's items
 * in the order it put them (1 4 9 16 25 and -1 -2 -3 -4 -5), but the two
 * producers run at the same time, so their items may interleave, e.g.
 * 1 -1 4 9 -2 ...
 *
 * The numbers travel as the bytes of a C int. Joining the producers before draining
 * the queue is safe here (in Python it is safe only for small items, which
 * a producer's feeder thread must flush before it can exit): mproc's put
 * copies the item into the queue before it returns, so a producer that
 * has exited has delivered everything, and the parent's empty() sees it.
 */
#include <mproc.h>
#include <mproc/queue.h>

#include <stdio.h>

/* Target of p1. arg points to the child's copy of the queue pointer: the
 * queue lives in the arena, at the same address in every process. */
static int square(void *arg)
{
    for (int i = 1; i < 6; i++) /* for i in numbers: queue.put(i*i) */
        MPROC_CHECK(
            mproc_queue_put(*(mproc_queue **)arg, &(int){i * i}, sizeof(int), MPROC_FOREVER));
    return 0;
}

/* Target of p2. */
static int make_negative(void *arg)
{
    for (int i = 1; i < 6; i++) /* for i in numbers: queue.put(i*-1) */
        MPROC_CHECK(
            mproc_queue_put(*(mproc_queue **)arg, &(int){i * -1}, sizeof(int), MPROC_FOREVER));
    return 0;
}

int main(void)
{
    mproc_queue *q;
    mproc_process *p[2];
    MPROC_CHECK(mproc_queue_new(&q, NULL));
    MPROC_CHECK(mproc_process_new(&p[0], square, &q, sizeof q, NULL));
    MPROC_CHECK(mproc_process_new(&p[1], make_negative, &q, sizeof q, NULL));
    MPROC_CHECK(mproc_process_start_all(p, 2));
    size_t failed;
    MPROC_CHECK(mproc_process_join_all(p, 2, MPROC_FOREVER, &failed));
    if (failed) fprintf(stderr, "queue_square_negative: %zu processes exited non-zero\n", failed);
    for (int i = 0; i < 2; i++) MPROC_CHECK(mproc_process_free(p[i]));

    /* while not q.empty(): print(q.get()) */
    while (!mproc_queue_empty(q)) {
        int n;
        size_t len;
        MPROC_CHECK(mproc_queue_get_into(q, &n, sizeof n, &len, MPROC_FOREVER));
        printf("%d\n", n);
    }
    printf("end main\n");
    mproc_queue_free(q);
    return failed != 0;
}
