/* queue_fifo — C twin of seed 001's first Queue program, "The queue".
 *
 * A queue is first in, first out: put 1, 2, 3, and get returns 1. No
 * second process here; the point is only the order.
 *
 * The Python original:
 *
 *     from multiprocessing import Queue
 *
 *     # create queue
 *     q = Queue()
 *
 *     # add elements
 *     q.put(1) # 1
 *     q.put(2) # 2 1
 *     q.put(3) # 3 2 1
 *
 *     # now q looks like this:
 *     # back --> 3 2 1 --> front
 *
 *     # get and remove first element
 *     first = q.get() # --> 1
 *     print(first)
 *
 *     # q looks like this:
 *     # back --> 3 2 --> front
 *
 * Output:
 *
 *     1
 *
 * The numbers travel as the bytes of a C int (mproc_queue_put copies
 * them, mproc_queue_get_into copies the oldest message out), where Python
 * pickles an int object. Freeing the queue frees the 2 and 3 still in it.
 */
#include <mproc.h>
#include <mproc/queue.h>

#include <stdio.h>

int main(void)
{
    mproc_queue *q;
    int first;
    size_t len;
    MPROC_CHECK(mproc_queue_new(&q, NULL));

    MPROC_CHECK(mproc_queue_put(q, &(int){1}, sizeof(int), MPROC_FOREVER)); /* 1 */
    MPROC_CHECK(mproc_queue_put(q, &(int){2}, sizeof(int), MPROC_FOREVER)); /* 2 1 */
    MPROC_CHECK(mproc_queue_put(q, &(int){3}, sizeof(int), MPROC_FOREVER)); /* 3 2 1 */

    /* first = q.get(): blocks until an item is there, like Python's get(). */
    MPROC_CHECK(mproc_queue_get_into(q, &first, sizeof first, &len, MPROC_FOREVER));
    printf("%d\n", first);

    /* back --> 3 2 --> front: two items left, freed with the queue. */
    if (mproc_queue_qsize(q) != 2) {
        fprintf(stderr, "queue_fifo: expected 2 items left, found %zu\n", mproc_queue_qsize(q));
        return 1;
    }
    mproc_queue_free(q);
    return 0;
}
