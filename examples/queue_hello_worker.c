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
 * parent gets back a string, not raw bytes. The parent's get waits until
 * the worker has put the message, as Python's get() does (but, unlike it,
 * not for ever when the worker died first).
 */
#include <mproc.h>
#include <mproc/queue.h>

#include <stdio.h>
#include <stdlib.h>

/* Prints what failed and why, then exits: every mproc call is checked. */
static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "queue_hello_worker: %s: %s\n", what, mproc_strerror(rc));
        exit(1);
    }
}

/* The target. arg points to the child's copy of the queue pointer: the
 * queue lives in the arena, at the same address in every process. */
static int worker(void *arg)
{
    mproc_queue *queue = *(mproc_queue **)arg;

    /* queue.put('Hello from worker!') */
    mproc_value *msg;
    check(mproc_value_pack(&msg, "s", "Hello from worker!"), "'Hello from worker!'");
    check(mproc_queue_put_value(queue, msg, MPROC_FOREVER), "mproc_queue_put_value");
    mproc_value_free(msg);
    return 0;
}

int main(void)
{
    mproc_queue *queue;
    check(mproc_queue_new(&queue, NULL), "mproc_queue_new");

    mproc_process *p;
    check(mproc_process_new(&p, worker, &queue, sizeof queue, NULL), "mproc_process_new");
    check(mproc_process_start(p), "mproc_process_start");

    /* message = queue.get(). Python would block for ever if the worker
     * died before putting; this waits in 100 ms steps and gives up once
     * the worker has exited and the queue is still empty. */
    mproc_value *message;
    for (;;) {
        bool alive = mproc_process_is_alive(p); /* checked before the get */
        int rc = mproc_queue_get_value(queue, &message, 100);
        if (rc != MPROC_ETIMEDOUT) {
            check(rc, "mproc_queue_get_value");
            break;
        }
        if (!alive) {
            int code;
            check(mproc_process_join(p, MPROC_FOREVER), "mproc_process_join");
            check(mproc_process_exitcode(p, &code), "mproc_process_exitcode");
            fprintf(stderr,
                    "queue_hello_worker: %s exited with code %d without sending a message\n",
                    mproc_process_name(p), code);
            return 1;
        }
    }

    /* p.join(), and check that the worker exited cleanly. */
    int code;
    check(mproc_process_join(p, MPROC_FOREVER), "mproc_process_join");
    check(mproc_process_exitcode(p, &code), "mproc_process_exitcode");
    if (code != 0) {
        fprintf(stderr, "queue_hello_worker: %s exited with code %d\n", mproc_process_name(p),
                code);
        return 1;
    }
    check(mproc_process_free(p), "mproc_process_free");

    /* print(f'Received: {message}'): an f-string shows a str as it is (its
     * str(), not its repr() with quotes). */
    const char *text;
    check(mproc_value_unpack(message, "s", &text), "the message is a str");
    printf("Received: %s\n", text);

    mproc_value_free(message);
    mproc_queue_free(queue);
    return 0;
}
