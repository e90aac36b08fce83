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

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NUM_WORKERS 3
#define NUM_ITEMS   3

static const char *const initial_data[NUM_ITEMS] = {
    "first data item",
    "second data item",
    "third data item",
};

/* Prints what failed and why, then exits: every mproc call is checked. */
static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "queue_count_processed: %s: %s\n", what, mproc_strerror(rc));
        exit(1);
    }
}

/* Exits when an allocating call (a value constructor, the repr) returned
 * NULL, which means memory ran out; otherwise returns p. */
static void *check_alloc(void *p, const char *what)
{
    if (p == NULL) check(MPROC_ENOMEM, what);
    return p;
}

/* True when v is the string "STOP" (Python's item == 'STOP'). */
static bool is_stop(const mproc_value *v)
{
    size_t len;
    const char *s = mproc_value_get_str(v, &len);
    return s != NULL && len == 4 && memcmp(s, "STOP", 4) == 0;
}

/* Builds the dict {'id': id, 'data': data}. */
static mproc_value *make_item(int id, const char *data)
{
    mproc_value *item = check_alloc(mproc_value_map(), "mproc_value_map");
    check(mproc_value_map_set_str(item, "id", check_alloc(mproc_value_int(id), "mproc_value_int")),
          "mproc_value_map_set_str");
    check(mproc_value_map_set_str(item, "data",
                                  check_alloc(mproc_value_str(data), "mproc_value_str")),
          "mproc_value_map_set_str");
    return item;
}

/* item['data'] = item['data'] * 2: the string twice over. */
static int double_data(mproc_value *item)
{
    size_t len = 0;
    const mproc_value *old = mproc_value_map_get_str(item, "data");
    const char *data = old != NULL ? mproc_value_get_str(old, &len) : NULL;
    if (data == NULL) return MPROC_EINVAL; /* no 'data', or not a string */

    char *twice = check_alloc(malloc(2 * len + 1), "malloc");
    memcpy(twice, data, len);
    memcpy(twice + len, data, len);
    /* The old string is freed by the map, so data is not used after this. */
    int rc = mproc_value_map_set_str(
        item, "data", check_alloc(mproc_value_strn(twice, 2 * len), "mproc_value_strn"));
    free(twice);
    return rc;
}

/* with processed_count.get_lock(): processed_count.value += 1
 * Returns the new count in *total. */
static int count_one(mproc_shared *processed_count, int64_t *total)
{
    mproc_lock *lock = mproc_shared_get_lock(processed_count);
    int rc = mproc_lock_acquire(lock, MPROC_FOREVER);
    if (rc == MPROC_EOWNERDEAD) {
        /* We hold the lock, but a worker died holding it. The count is one
         * int written by one set call, so it is whole: mark the lock
         * usable again and go on. */
        if ((rc = mproc_lock_make_consistent(lock)) < 0) {
            mproc_lock_release(lock);
            return rc;
        }
    } else if (rc < 0) {
        return rc;
    }
    int64_t v;
    if ((rc = mproc_shared_get_int(processed_count, 0, &v)) >= 0 &&
        (rc = mproc_shared_set_int(processed_count, 0, v + 1)) >= 0)
        *total = v + 1;
    /* Released also when the update failed. */
    int rc_release = mproc_lock_release(lock);
    return rc < 0 ? rc : rc_release;
}

/* What each worker gets, copied as bytes: the queue and the counter live
 * in the arena, at the same address in every process of the family. */
struct worker_args {
    mproc_queue *queue;
    mproc_shared *processed_count;
};

/* The target. */
static int worker(void *arg)
{
    const struct worker_args *a = arg;
    mproc_queue *queue = a->queue;
    const char *name = mproc_process_name(mproc_current_process());

    for (;;) {
        mproc_value *item;
        /* item = queue.get(timeout=1) */
        int rc = mproc_queue_get_value(queue, &item, 1000);
        if (rc == MPROC_ETIMEDOUT) continue; /* except ...Empty: continue */
        check(rc, "mproc_queue_get_value");

        if (is_stop(item)) {
            mproc_value_free(item);
            break;
        }
        if (mproc_value_kind_of(item) != MPROC_V_MAP) {
            fprintf(stderr, "queue_count_processed: %s: got an item that is not a dict\n", name);
            mproc_value_free(item);
            return 1;
        }

        check(double_data(item), "item['data'] * 2");
        /* item['status'] = 'processed' (the map takes the new value) */
        check(mproc_value_map_set_str(item, "status",
                                      check_alloc(mproc_value_str("processed"), "mproc_value_str")),
              "mproc_value_map_set_str");

        int64_t total = 0;
        check(count_one(a->processed_count, &total), "counting the item");

        char *repr = check_alloc(mproc_value_repr_alloc(item), "mproc_value_repr_alloc");
        printf("Process %s: processed %s, Total processed: %lld\n", name, repr, (long long)total);
        free(repr);
        mproc_value_free(item);
    }
    return 0;
}

int main(void)
{
    /* queue = multiprocessing.Queue(): unbounded, in the arena. */
    mproc_queue *queue;
    check(mproc_queue_new(&queue, NULL), "mproc_queue_new");

    /* processed_count = Value('i', 0), with an RLock of its own. */
    mproc_shared *processed_count;
    int zero = 0;
    check(mproc_shared_value_new(&processed_count, 'i', &zero, NULL), "mproc_shared_value_new");

    /* Three workers named Worker-0..2, each started as it is created. They
     * get the queue and the counter as their argument bytes. */
    const struct worker_args args = {queue, processed_count};
    mproc_process *processes[NUM_WORKERS];
    for (int i = 0; i < NUM_WORKERS; i++) {
        char name[32];
        snprintf(name, sizeof name, "Worker-%d", i);
        mproc_process_opts opts = {.name = name};
        check(mproc_process_new(&processes[i], worker, &args, sizeof args, &opts),
              "mproc_process_new");
        check(mproc_process_start(processes[i]), "mproc_process_start");
    }

    /* for item in initial_data: queue.put(item). The queue keeps a copy
     * (put encodes the value), so the parent frees its own at once. */
    for (int i = 0; i < NUM_ITEMS; i++) {
        mproc_value *item = make_item(i + 1, initial_data[i]);
        check(mproc_queue_put_value(queue, item, MPROC_FOREVER), "mproc_queue_put_value");
        mproc_value_free(item);
    }

    /* One "STOP" per worker: each worker stops at the first it gets. */
    mproc_value *stop = check_alloc(mproc_value_str("STOP"), "mproc_value_str");
    for (int i = 0; i < NUM_WORKERS; i++)
        check(mproc_queue_put_value(queue, stop, MPROC_FOREVER), "mproc_queue_put_value");
    mproc_value_free(stop);

    int failed = 0;
    for (int i = 0; i < NUM_WORKERS; i++) {
        int code;
        check(mproc_process_join(processes[i], MPROC_FOREVER), "mproc_process_join");
        check(mproc_process_exitcode(processes[i], &code), "mproc_process_exitcode");
        if (code != 0) {
            fprintf(stderr, "queue_count_processed: %s exited with code %d\n",
                    mproc_process_name(processes[i]), code);
            failed = 1;
        }
        check(mproc_process_free(processes[i]), "mproc_process_free");
    }

    int64_t total;
    check(mproc_shared_get_int(processed_count, 0, &total), "mproc_shared_get_int");
    printf("Total items processed: %lld\n", (long long)total);

    mproc_shared_free(processed_count);
    mproc_queue_free(queue);
    return failed;
}
