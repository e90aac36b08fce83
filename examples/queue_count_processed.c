/* queue_count_processed — C twin of seed 000's Example 3, "Introducing
 * Synchronization with a Manager".
 *
 * The workers of queue_double_data.c now also count, across all of them,
 * how many items they processed: a shared integer, incremented with its
 * lock held, printed by each worker after its item and by the parent at
 * the end.
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
 *         initial_data = [ ... the same three dicts ... ]
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
 * The counter: the seed's manager.Value('i', 0) is a proxy, and a proxy
 * has no get_lock(), so in Python this program dies of an AttributeError
 * at the first item. What the article means is a Value('i', 0) with its
 * lock, and that is what this twin uses: mproc_shared_value_new('i') in
 * the arena, whose own lock mproc_shared_get_lock() returns (an RLock, as
 * Python's, so the get/set calls may take it again while we hold it).
 *
 * The seed reads processed_count.value for its print after releasing the
 * lock, so two workers could both print the later total. This twin keeps
 * the total it wrote while it held the lock, so every worker line shows a
 * different total. (Python's .value, like mproc_shared_get_int, takes the
 * lock by itself; the lock around the pair is what makes "+= 1" one step.)
 * Timeouts of get are handled as in queue_add_status.c.
 */
#include <mproc.h>
#include <mproc/queue.h>

#include <stdio.h>
#include <string.h>

#define NUM_WORKERS 3

/* What each worker gets, copied as bytes: the queue and the counter live
 * in the arena, at the same address in every process of the family. */
struct worker_args {
    mproc_queue *queue;
    mproc_shared *processed_count;
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
        /* with processed_count.get_lock(): processed_count.value += 1. The
         * total is the one written under the lock, so each line's differs. */
        int64_t total = -1;
        MPROC_WITH(mproc_shared_get_lock(a->processed_count))
        {
            MPROC_CHECK(mproc_shared_get_int(a->processed_count, 0, &total));
            MPROC_CHECK(mproc_shared_set_int(a->processed_count, 0, ++total));
        }
        if (total < 0) return 1; /* the lock could not be taken (logged) */
        printf("Process %s: processed %s, Total processed: %lld\n",
               mproc_process_name(mproc_current_process()), MPROC_REPR(item), (long long)total);
        mproc_value_free(item);
    }
    return 0;
}

int main(void)
{
    mproc_queue *queue;
    MPROC_CHECK(mproc_queue_new(&queue, NULL));
    /* processed_count = Value('i', 0), with its own lock */
    int zero = 0;
    struct worker_args args = {queue, NULL};
    MPROC_CHECK(mproc_shared_value_new(&args.processed_count, 'i', &zero, NULL));

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

    int64_t total;
    MPROC_CHECK(mproc_shared_get_int(args.processed_count, 0, &total));
    printf("Total items processed: %lld\n", (long long)total);
    MPROC_FREE(args.processed_count, queue);
    return 0;
}
