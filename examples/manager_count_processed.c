/* manager_count_processed — C twin of seed 000's Example 3, "Introducing
 * Synchronization with a Manager", with the count held by a Manager as the
 * seed writes it: processed_count = manager.Value('i', 0).
 *
 * queue_count_processed.c twins the same program with a shared Value in
 * memory; this one keeps the counter in the manager's server process and
 * reaches it through proxies.
 *
 * The Python original (two long lines wrapped):
 *
 *     def worker(queue, processed_count):
 *         while True:
 *             try:
 *                 item = queue.get(timeout=1)
 *                 if item == 'STOP':
 *                     break
 *                 item['data'] = item['data'] * 2
 *                 item['status'] = 'processed'
 *                 with processed_count.get_lock():
 *                    processed_count.value += 1
 *                 print(f"Process {multiprocessing.current_process().name}: "
 *                       f"processed {item}, Total processed: {processed_count.value}")
 *             except multiprocessing.Queue.Empty:
 *                  continue
 *
 *     def main():
 *         queue = multiprocessing.Queue()
 *         manager = multiprocessing.Manager()
 *         processed_count = manager.Value('i',0)
 *         processes = []
 *         initial_data = [
 *             {'id': 1, 'data': 'first data item'},
 *             {'id': 2, 'data': 'second data item'},
 *             {'id': 3, 'data': 'third data item'}
 *         ]
 *         for i in range(3):
 *             p = multiprocessing.Process(target=worker, args=(queue, processed_count),
 *                                         name=f"Worker-{i}")
 *             processes.append(p)
 *             p.start()
 *         for item in initial_data:
 *             queue.put(item)
 *         for _ in range(len(processes)):
 *            queue.put('STOP')
 *         for p in processes:
 *             p.join()
 *         print(f"Total items processed: {processed_count.value}")
 *
 * Output (the three worker lines, wrapped here to fit, come in any order,
 * from any workers, with the totals 1, 2 and 3 each once):
 *
 *     Process Worker-0: processed {'id': 1, 'data': 'first data itemfirst data item',
 *         'status': 'processed'}, Total processed: 1
 *     Process Worker-1: processed {'id': 2, 'data': 'second data itemsecond data item',
 *         'status': 'processed'}, Total processed: 2
 *     Process Worker-2: processed {'id': 3, 'data': 'third data itemthird data item',
 *         'status': 'processed'}, Total processed: 3
 *     Total items processed: 3
 *
 * The lock: a manager's Value proxy has only get(), set() and .value, no
 * get_lock(), so the Python as written dies of an AttributeError at the
 * first item. The manager's own fix is a second shared object,
 * lock = manager.Lock(), passed to the workers with the Value, and
 *
 *     with lock:
 *         processed_count.value += 1
 *         total = processed_count.value
 *
 * which is what this twin does: a manager "Value" made with "si", "i", 0 and a
 * manager "Lock", each worker holding the lock across get() and set(v + 1)
 * (each one call to the server: without the lock two workers could read
 * the same v). Each worker prints the total it wrote, so the totals 1, 2
 * and 3 each appear once; the parent prints the final get().
 *
 * What the workers get, as argument bytes, is Python's args=(queue,
 * processed_count, lock): the queue's pointer (the queue lives in the
 * family arena, at the same address in every process: that is how queue.h
 * says to pass it) and the two proxies, which in each worker are proxies
 * of its own on the same manager (they connect on first use, with the
 * family authkey; manager.h, "Processes"), under fork, spawn and
 * forkserver.
 * Timeouts of get are handled as in queue_add_status.c. Each manager call
 * is one format call: mproc_proxy_callf(count, "set", NULL, "i", v) is
 * count.set(v), and mproc_proxy_callf_unpack(count, "get", NULL, "i", &v)
 * reads the result into an int.
 */
#include <mproc.h>
#include <mproc/queue.h>

#include <stdio.h>
#include <string.h>

#define NUM_WORKERS 3

/* args=(queue, processed_count, lock): the queue is in the arena, at the
 * same address in every process; the proxies become the child's own. */
struct worker_args {
    mproc_queue *queue;
    mproc_proxy *processed_count, *lock;
};

/* The target. */
static int worker(void *arg)
{
    struct worker_args *a = arg;
    mproc_queue *queue = a->queue;
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
        /* with lock: processed_count.value += 1 (the manager Lock's
         * acquire() waits without a deadline, as Python's does) */
        int total;
        MPROC_CHECK(mproc_proxy_callf(a->lock, "acquire", NULL, NULL));
        MPROC_CHECK(mproc_proxy_callf_unpack(a->processed_count, "get", NULL, "i", &total));
        MPROC_CHECK(mproc_proxy_callf(a->processed_count, "set", NULL, "i", ++total));
        MPROC_CHECK(mproc_proxy_callf(a->lock, "release", NULL, NULL));
        printf("Process %s: processed %s, Total processed: %d\n",
               mproc_process_name(mproc_current_process()), MPROC_REPR(item), total);
        mproc_value_free(item);
    }
    return 0;
}

int main(void)
{
    mproc_queue *queue;
    MPROC_CHECK(mproc_queue_new(&queue, NULL));

    /* manager = multiprocessing.Manager(); processed_count =
     * manager.Value('i', 0); and lock = manager.Lock() */
    mproc_manager *manager;
    struct worker_args args = {queue, NULL, NULL};
    MPROC_CHECK(mproc_manager_start(&manager, NULL));
    MPROC_CHECK(mproc_manager_createf(manager, "Value", &args.processed_count, "si", "i", 0));
    MPROC_CHECK(mproc_manager_createf(manager, "Lock", &args.lock, NULL));

    /* Three workers named Worker-0..2, each started as it is created. */
    fflush(stdout); /* nothing buffered is copied into a forked child */
    mproc_process *processes[NUM_WORKERS];
    for (int i = 0; i < NUM_WORKERS; i++) {
        char name[32];
        snprintf(name, sizeof name, "Worker-%d", i);
        mproc_process_opts opts = {.name = name};
        MPROC_CHECK(mproc_process_start_new(&processes[i], worker, &args, sizeof args, &opts));
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

    int total;
    MPROC_CHECK(mproc_proxy_callf_unpack(args.processed_count, "get", NULL, "i", &total));
    printf("Total items processed: %d\n", total);
    MPROC_FREE(args.lock, args.processed_count, manager, queue);
    return 0;
}
