/* queue_add_status — C twin of seed 000's Example 1, "Modifying Shared Data
 * Structure".
 *
 * Three worker processes take {'id': ..., 'data': ...} dicts from one
 * queue, add a 'status': 'processed' field and print the result, until
 * each gets a "STOP" sentinel. The parent starts the workers, puts the
 * three items, then one "STOP" per worker, and joins them.
 *
 * The Python original:
 *
 *     def worker(queue):
 *         while True:
 *             try:
 *                 item = queue.get(timeout=1) # Add timeout to exit process gracefully
 *                 if item == 'STOP':
 *                     break
 *                 item['status'] = 'processed'
 *                 print(f"Process {multiprocessing.current_process().name}: processed {item}")
 *             except multiprocessing.Queue.Empty:
 *                 continue # Continue checking for queue items if timeout reached
 *
 *     def main():
 *         queue = multiprocessing.Queue()
 *         processes = []
 *         initial_data = [
 *             {'id': 1, 'data': 'first data item'},
 *             {'id': 2, 'data': 'second data item'},
 *             {'id': 3, 'data': 'third data item'}
 *         ]
 *         for i in range(3):  # Assuming 3 worker processes for this example
 *             p = multiprocessing.Process(target=worker, args=(queue,), name=f"Worker-{i}")
 *             processes.append(p)
 *             p.start()
 *         for item in initial_data:
 *             queue.put(item)
 *         for _ in range(len(processes)):
 *             queue.put("STOP")  # Send stop signals to terminate worker processes
 *         for p in processes:
 *           p.join()
 *
 * Output (one line per item; which worker takes which item, and the order
 * of the lines, change from run to run):
 *
 *     Process Worker-0: processed {'id': 1, 'data': 'first data item', 'status': 'processed'}
 *     Process Worker-1: processed {'id': 2, 'data': 'second data item', 'status': 'processed'}
 *     Process Worker-2: processed {'id': 3, 'data': 'third data item', 'status': 'processed'}
 *
 * The dicts travel as mproc_value maps, packed from a format
 * (mproc_value_pack(&item, "{s:i, s:s}", "id", 1, "data", "...")) and
 * encoded as CBOR by mproc_queue_put_value, as Python pickles them;
 * mproc_value_repr prints them the way Python prints a dict. A map keeps
 * its insertion order, so 'status' comes last, as in the Python dict.
 *
 * queue.get(timeout=1) is mproc_queue_get_value(..., 1000), whose timeout
 * is MPROC_ETIMEDOUT, the twin of queue.Empty. (The seed catches
 * multiprocessing.Queue.Empty, which does not exist: in Python a worker
 * that really waited a whole second would die of an AttributeError. The
 * items come at once, so that never happens there; here a timeout is
 * handled the way the seed means it: try again.)
 */
#include <mproc.h>
#include <mproc/queue.h>

#include <stdio.h>
#include <string.h>

#define NUM_WORKERS 3

/* The target. arg points to the child's copy of the queue pointer: the
 * queue lives in the arena, at the same address in every process. */
static int worker(void *arg)
{
    mproc_queue *queue = *(mproc_queue **)arg;
    for (;;) {
        mproc_value *item;
        const char *stop;
        int rc = mproc_queue_get_value(queue, &item, 1000); /* queue.get(timeout=1) */
        if (rc == MPROC_ETIMEDOUT) continue;                /* except ...Empty: continue */
        MPROC_CHECK(rc);
        if (mproc_value_unpack(item, "s", &stop) == 0 && strcmp(stop, "STOP") == 0) {
            mproc_value_free(item);
            break;
        }
        /* item['status'] = 'processed' (the map takes the new value) */
        MPROC_CHECK(mproc_value_map_set_str(item, "status", mproc_value_str("processed")));
        printf("Process %s: processed %s\n", mproc_process_name(mproc_current_process()),
               MPROC_REPR(item));
        mproc_value_free(item);
    }
    return 0;
}

int main(void)
{
    mproc_queue *queue;
    MPROC_CHECK(mproc_queue_new(&queue, NULL));

    /* Three workers named Worker-0..2, each started as it is created. They
     * get the queue pointer as their argument bytes. */
    mproc_process *processes[NUM_WORKERS];
    for (int i = 0; i < NUM_WORKERS; i++) {
        char name[32];
        snprintf(name, sizeof name, "Worker-%d", i);
        mproc_process_opts opts = {.name = name};
        MPROC_CHECK(mproc_process_start_new(&processes[i], worker, &queue, sizeof queue, &opts));
    }

    /* for item in initial_data: queue.put(item) */
    MPROC_CHECK(
        mproc_queue_putf(queue, MPROC_FOREVER, "{s:i, s:s}", "id", 1, "data", "first data item"));
    MPROC_CHECK(
        mproc_queue_putf(queue, MPROC_FOREVER, "{s:i, s:s}", "id", 2, "data", "second data item"));
    MPROC_CHECK(
        mproc_queue_putf(queue, MPROC_FOREVER, "{s:i, s:s}", "id", 3, "data", "third data item"));
    for (int i = 0; i < NUM_WORKERS; i++) /* one STOP per worker */
        MPROC_CHECK(mproc_queue_putf(queue, MPROC_FOREVER, "s", "STOP"));
    MPROC_CHECK(mproc_process_join_free_all(processes, NUM_WORKERS, MPROC_FOREVER, NULL));
    MPROC_FREE(queue);
    return 0;
}
