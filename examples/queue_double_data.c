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
        fprintf(stderr, "queue_double_data: %s: %s\n", what, mproc_strerror(rc));
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

/* The target. arg points to the child's copy of the queue pointer: the
 * queue lives in the arena, at the same address in every process. */
static int worker(void *arg)
{
    mproc_queue *queue = *(mproc_queue **)arg;
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
            fprintf(stderr, "queue_double_data: %s: got an item that is not a dict\n", name);
            mproc_value_free(item);
            return 1;
        }

        check(double_data(item), "item['data'] * 2");
        /* item['status'] = 'processed' (the map takes the new value) */
        check(mproc_value_map_set_str(item, "status",
                                      check_alloc(mproc_value_str("processed"), "mproc_value_str")),
              "mproc_value_map_set_str");

        char *repr = check_alloc(mproc_value_repr_alloc(item), "mproc_value_repr_alloc");
        printf("Process %s: processed %s\n", name, repr);
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

    /* Three workers named Worker-0..2, each started as it is created. They
     * get the queue pointer as their argument bytes. */
    mproc_process *processes[NUM_WORKERS];
    for (int i = 0; i < NUM_WORKERS; i++) {
        char name[32];
        snprintf(name, sizeof name, "Worker-%d", i);
        mproc_process_opts opts = {.name = name};
        check(mproc_process_new(&processes[i], worker, &queue, sizeof queue, &opts),
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
            fprintf(stderr, "queue_double_data: %s exited with code %d\n",
                    mproc_process_name(processes[i]), code);
            failed = 1;
        }
        check(mproc_process_free(processes[i]), "mproc_process_free");
    }

    mproc_queue_free(queue);
    return failed;
}
