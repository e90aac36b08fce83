/* queue_double_data — C twin of seed 000's Example 2, "Modifying the
 * Process's Work Logic".
 *
 * The program of queue_add_status.c with more work in the worker: before
 * adding 'status': 'processed', it doubles the 'data' string (Python's
 * item['data'] * 2 repeats it). Three workers, three items, one "STOP" per
 * worker, as before.
 *
 * The Python original (main() is the same as in Example 1):
 *
 *     def worker(queue):
 *         while True:
 *             try:
 *                 item = queue.get(timeout=1)
 *                 if item == 'STOP':
 *                     break
 *                 item['data'] = item['data'] * 2
 *                 item['status'] = 'processed'
 *                 print(f"Process {multiprocessing.current_process().name}: processed {item}")
 *             except multiprocessing.Queue.Empty:
 *                 continue
 *
 *     def main():
 *         queue = multiprocessing.Queue()
 *         processes = []
 *         initial_data = [
 *             {'id': 1, 'data': 'first data item'},
 *             {'id': 2, 'data': 'second data item'},
 *             {'id': 3, 'data': 'third data item'}
 *         ]
 *         for i in range(3):
 *             p = multiprocessing.Process(target=worker, args=(queue,), name=f"Worker-{i}")
 *             processes.append(p)
 *             p.start()
 *         for item in initial_data:
 *             queue.put(item)
 *         for _ in range(len(processes)):
 *            queue.put('STOP')
 *         for p in processes:
 *             p.join()
 *
 * Output (one line per item, wrapped here to fit; which worker takes which
 * item, and the order of the lines, change from run to run):
 *
 *     Process Worker-0: processed {'id': 1, 'data': 'first data itemfirst data item',
 *         'status': 'processed'}
 *     Process Worker-1: processed {'id': 2, 'data': 'second data itemsecond data item',
 *         'status': 'processed'}
 *     Process Worker-2: processed {'id': 3, 'data': 'third data itemthird data item',
 *         'status': 'processed'}
 *
 * Each worker changes its own decoded copy of the item, so, as the seed
 * says, the change carries no race: nothing is shared but the queue.
 * Replacing 'data' in the map keeps the key in its place, as assigning to
 * an existing key of a Python dict does. Timeouts of get are handled as in
 * queue_add_status.c.
 */
#include <mproc.h>
#include <mproc/queue.h>

#include <stdio.h>
#include <string.h>

#define NUM_WORKERS 3

static int worker(void *arg)
{
    mproc_queue *queue = *(mproc_queue **)arg; /* in the arena: the same in every process */
    for (;;) {
        mproc_value *item;
        const char *data;
        int rc = mproc_queue_get_value(queue, &item, 1000); /* queue.get(timeout=1) */
        if (rc == MPROC_ETIMEDOUT) continue;                /* except ...Empty: continue */
        MPROC_CHECK(rc);
        if (mproc_value_unpack(item, "s", &data) == 0 && strcmp(data, "STOP") == 0) {
            mproc_value_free(item);
            break;
        }
        /* item['data'] = item['data'] * 2; the map frees the old string. */
        MPROC_CHECK(mproc_value_unpack(item, "{s:s}", "data", &data));
        MPROC_CHECK(mproc_value_map_set_str(item, "data", mproc_value_strf("%s%s", data, data)));
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
    fflush(stdout); /* nothing buffered is copied into a forked child */
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
