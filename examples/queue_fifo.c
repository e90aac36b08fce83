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
 * The numbers travel as values (mproc_queue_put_value / _get_value), as
 * Python pickles them; mproc_value_get_int reads the number back. Freeing
 * the queue frees the 2 and 3 still in it.
 */
#include <mproc.h>
#include <mproc/queue.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Prints what failed and why, then exits: every mproc call is checked. */
static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "queue_fifo: %s: %s\n", what, mproc_strerror(rc));
        exit(1);
    }
}

/* q.put(n): n as an int value. The queue keeps its own copy. */
static void put_int(mproc_queue *q, int64_t n)
{
    mproc_value *v = mproc_value_int(n);
    if (v == NULL) check(MPROC_ENOMEM, "mproc_value_int");
    check(mproc_queue_put_value(q, v, MPROC_FOREVER), "mproc_queue_put_value");
    mproc_value_free(v);
}

int main(void)
{
    /* q = Queue() */
    mproc_queue *q;
    check(mproc_queue_new(&q, NULL), "mproc_queue_new");

    put_int(q, 1); /* 1 */
    put_int(q, 2); /* 2 1 */
    put_int(q, 3); /* 3 2 1 */

    /* first = q.get(): blocks until an item is there, like Python's get(). */
    mproc_value *first;
    check(mproc_queue_get_value(q, &first, MPROC_FOREVER), "mproc_queue_get_value");
    int64_t n;
    check(mproc_value_get_int(first, &n), "mproc_value_get_int");
    printf("%lld\n", (long long)n);
    mproc_value_free(first);

    /* back --> 3 2 --> front: two items left, freed with the queue. */
    if (mproc_queue_qsize(q) != 2) {
        fprintf(stderr, "queue_fifo: expected 2 items left, found %zu\n", mproc_queue_qsize(q));
        return 1;
    }
    mproc_queue_free(q);
    return 0;
}
