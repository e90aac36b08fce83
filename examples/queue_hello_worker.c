/* queue_hello_worker — C twin of seed 002's Queue program ("Inter-Process
 * Communication (IPC)").
 *
 * A worker process puts one message into a queue; the parent gets it,
 * joins the worker and prints what it received.
 *
 * The Python original:
 *
 *     def worker(queue):
 *         queue.put('Hello from worker!')
 *
 *     if __name__ == '__main__':
 *         queue = multiprocessing.Queue()
 *         p = multiprocessing.Process(target=worker, args=(queue,))
 *         p.start()
 *         message = queue.get()
 *         p.join()
 *         print(f'Received: {message}')
 *
 * Output:
 *
 *     Received: Hello from worker!
 *
 * The message travels as a string value (Python pickles a str), so the
 * parent gets back a string, not raw bytes. MPROC_CHECK stops the program
 * at a failed call, as an uncaught exception stops Python's. The get waits
 * 30 s, not for ever: a worker that died before putting is an error here,
 * where Python would hang.
 */
#include <mproc.h>

#include <stdio.h>

static int worker(void *arg)
{
    mproc_queue *queue = *(mproc_queue **)arg; /* the queue lives in the arena */
    return MPROC_CHECK(mproc_queue_putf(queue, MPROC_FOREVER, "s", "Hello from worker!"));
}

int main(void)
{
    mproc_queue *queue;
    MPROC_CHECK(mproc_queue_new(&queue, NULL));
    mproc_process *p;
    MPROC_CHECK(mproc_process_start_new(&p, worker, &queue, sizeof queue, NULL));
    mproc_value *message;
    MPROC_CHECK(mproc_queue_get_value(queue, &message, 30000));
    MPROC_CHECK(mproc_process_join_free(p, MPROC_FOREVER, NULL));
    printf("Received: %s\n", MPROC_STR(message)); /* an f-string shows a str's text */
    MPROC_FREE(message, queue);
    return 0;
}
