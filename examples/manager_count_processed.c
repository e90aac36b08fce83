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
 * which is what this twin does: a manager "Value" made with ['i', 0] and a
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
 * Timeouts of get are handled as in queue_add_status.c; a manager call is
 * bounded too (the lock is taken with a 10 s timeout).
 */
#include <mproc.h>
#include <mproc/queue.h>

#include <inttypes.h>
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
        fprintf(stderr, "manager_count_processed: %s: %s\n", what, mproc_strerror(rc));
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

/* Appends item to list, exiting on failure. */
static void append(mproc_value *list, mproc_value *item)
{
    check(mproc_value_list_append(list, check_alloc(item, "making a value")),
          "mproc_value_list_append");
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

/* Calls a method with one argument (NULL: none). */
static int call1(mproc_proxy *p, const char *method, mproc_value *arg, mproc_value **result)
{
    mproc_value *args = check_alloc(mproc_value_list(), "mproc_value_list");
    if (arg != NULL) append(args, arg);
    int rc = mproc_proxy_call(p, method, args, result);
    mproc_value_free(args);
    return rc;
}

/* processed_count.value, as an int. */
static int get_count(mproc_proxy *processed_count, int64_t *out)
{
    mproc_value *v = NULL;
    int rc = call1(processed_count, "get", NULL, &v);
    if (rc == 0 && mproc_value_get_int(v, out) != 0) rc = MPROC_EPROTO;
    mproc_value_free(v);
    return rc;
}

/* with lock: processed_count.value += 1; total = processed_count.value */
static int count_one(mproc_proxy *processed_count, mproc_proxy *lock, int64_t *total)
{
    /* lock.acquire(timeout=10): the result says whether it was taken. */
    mproc_value *taken = NULL;
    int rc = call1(lock, "acquire", mproc_value_int(10000), &taken);
    bool ok = false;
    if (rc == 0 && (mproc_value_get_bool(taken, &ok) != 0 || !ok)) rc = MPROC_ETIMEDOUT;
    mproc_value_free(taken);
    if (rc != 0) return rc;

    int64_t v;
    if ((rc = get_count(processed_count, &v)) == 0 &&
        (rc = call1(processed_count, "set", mproc_value_int(v + 1), NULL)) == 0)
        *total = v + 1;
    /* Released also when the update failed. */
    int rc_release = call1(lock, "release", NULL, NULL);
    return rc != 0 ? rc : rc_release;
}

/* ---- what each worker gets --------------------------------------------------------- */

/* args=(queue, processed_count, lock) */
struct worker_args {
    mproc_queue *queue;
    mproc_proxy *processed_count, *lock;
};

/* The target. */
static int worker(void *arg)
{
    const struct worker_args *a = arg;
    mproc_queue *queue = a->queue;
    mproc_proxy *processed_count = a->processed_count, *lock = a->lock;
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
            fprintf(stderr, "manager_count_processed: %s: got an item that is not a dict\n", name);
            mproc_value_free(item);
            return 1;
        }

        check(double_data(item), "item['data'] * 2");
        /* item['status'] = 'processed' (the map takes the new value) */
        check(mproc_value_map_set_str(item, "status",
                                      check_alloc(mproc_value_str("processed"), "mproc_value_str")),
              "mproc_value_map_set_str");

        int64_t total = 0;
        check(count_one(processed_count, lock, &total), "counting the item");

        char *repr = check_alloc(mproc_value_repr_alloc(item), "mproc_value_repr_alloc");
        printf("Process %s: processed %s, Total processed: %" PRId64 "\n", name, repr, total);
        free(repr);
        mproc_value_free(item);
    }

    return 0; /* (the proxies passed in are freed with the worker) */
}

int main(void)
{
    /* queue = multiprocessing.Queue(): unbounded, in the arena. */
    mproc_queue *queue;
    check(mproc_queue_new(&queue, NULL), "mproc_queue_new");

    /* manager = multiprocessing.Manager() */
    mproc_manager *manager;
    check(mproc_manager_start(&manager, NULL), "mproc_manager_start");

    /* processed_count = manager.Value('i', 0); lock = manager.Lock() */
    mproc_value *value_args = check_alloc(mproc_value_list(), "mproc_value_list");
    append(value_args, mproc_value_str("i"));
    append(value_args, mproc_value_int(0));
    mproc_proxy *processed_count, *lock;
    check(mproc_manager_create(manager, "Value", value_args, &processed_count), "manager.Value");
    mproc_value_free(value_args);
    check(mproc_manager_create(manager, "Lock", NULL, &lock), "manager.Lock");

    /* The workers' argument bytes: args=(queue, processed_count, lock). */
    struct worker_args args = {queue, processed_count, lock};

    /* Three workers named Worker-0..2, each started as it is created. */
    fflush(stdout); /* nothing buffered is copied into a forked child */
    mproc_process *processes[NUM_WORKERS];
    for (int i = 0; i < NUM_WORKERS; i++) {
        char name[32];
        snprintf(name, sizeof name, "Worker-%d", i);
        mproc_process_opts opts = {.name = name};
        check(mproc_process_new(&processes[i], worker, &args, sizeof args, &opts),
              "mproc_process_new");
        check(mproc_process_start(processes[i]), "mproc_process_start");
    }

    /* for item in initial_data: queue.put(item) */
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
            fprintf(stderr, "manager_count_processed: %s exited with code %d\n",
                    mproc_process_name(processes[i]), code);
            failed = 1;
        }
        check(mproc_process_free(processes[i]), "mproc_process_free");
    }

    /* print(f"Total items processed: {processed_count.value}") */
    int64_t total;
    check(get_count(processed_count, &total), "processed_count.value");
    printf("Total items processed: %" PRId64 "\n", total);

    mproc_proxy_free(lock);
    mproc_proxy_free(processed_count);
    mproc_manager_free(manager);
    mproc_queue_free(queue);
    return failed;
}
