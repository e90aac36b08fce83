/* manager_records — C twin of seed 003's "Server process" program: a list
 * of records held by a Manager, a process that inserts a record and a
 * process that prints them all.
 *
 * The Python original:
 *
 *     import multiprocessing
 *
 *     def print_records(records):
 *         for record in records:
 *             print("Name: {0}\nScore: {1}\n".format(record[0], record[1]))
 *
 *     def insert_record(record, records):
 *         records.append(record)
 *         print("New record added!\n")
 *
 *     if __name__ == '__main__':
 *         with multiprocessing.Manager() as manager:
 *             records = manager.list([('Sam', 10), ('Adam', 9), ('Kevin', 9)])
 *             new_record = ('Jeff', 8)
 *             p1 = multiprocessing.Process(target=insert_record, args=(new_record, records))
 *             p2 = multiprocessing.Process(target=print_records, args=(records,))
 *             p1.start()
 *             p1.join()
 *             p2.start()
 *             p2.join()
 *
 * Output (each print ends its text with "\n", so a blank line follows):
 *
 *     New record added!
 *
 *     Name: Sam
 *     Score: 10
 *
 *     Name: Adam
 *     Score: 9
 *
 *     Name: Kevin
 *     Score: 9
 *
 *     Name: Jeff
 *     Score: 8
 *
 * In C: mproc_manager_start starts the server process and connects to it
 * (the with block's Manager()); manager.list([...]) is mproc_manager_create
 * of a "list" whose creation argument is the initial list; a record is a
 * two-item list (Python's tuple). Python pickles the proxy it passes to a
 * Process: the manager's address, the object's id, and the family authkey
 * the child inherits. The C child gets the same as argument bytes: a value
 * [address, reference, record] encoded with mproc_value_encode (the
 * reference is mproc_proxy_ref), behind its length. The child connects
 * with mproc_manager_connect (NULL key: the family authkey, inherited under
 * every start method) and makes its own proxy with mproc_proxy_from_value.
 * No pointer crosses, so this works under fork, spawn and forkserver. The
 * parent keeps its proxy until both children are joined, so the list lives
 * on between them; print_records walks the list by index (len, then
 * getitem), as Python's for loop over a list proxy calls __getitem__.
 */
#include <mproc.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints what failed and why, then exits: every mproc call is checked. */
static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "manager_records: %s: %s\n", what, mproc_strerror(rc));
        exit(1);
    }
}

/* Exits when an allocating call returned NULL (memory ran out). */
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

/* The record (name, score): a two-item list. */
static mproc_value *make_record(const char *name, int score)
{
    mproc_value *r = check_alloc(mproc_value_list(), "mproc_value_list");
    append(r, mproc_value_str(name));
    append(r, mproc_value_int(score));
    return r;
}

/* ---- argument bytes: a value behind its length ------------------------------------ */

/* The child's argument: the CBOR of a value, behind its length (a target
 * gets its bytes without their length). */
typedef struct packed {
    uint64_t len;
    unsigned char cbor[];
} packed;

/* Encodes v (and frees it) into new argument bytes of *size bytes. */
static packed *pack(mproc_value *v, size_t *size)
{
    void *cbor;
    size_t len;
    check(mproc_value_encode(v, &cbor, &len), "mproc_value_encode");
    mproc_value_free(v);
    packed *p = check_alloc(malloc(sizeof *p + len), "malloc");
    p->len = len;
    memcpy(p->cbor, cbor, len);
    free(cbor);
    *size = sizeof *p + len;
    return p;
}

/* [address, reference, ...] to the child's own manager connection and
 * proxy; returns the decoded value (free it after the proxy and m). */
static mproc_value *connect_args(const void *arg, mproc_manager **m, mproc_proxy **records)
{
    const packed *p = arg;
    mproc_value *v;
    check(mproc_value_decode(p->cbor, p->len, NULL, &v), "mproc_value_decode");
    const char *address = mproc_value_get_str(mproc_value_list_get(v, 0), NULL);
    if (address == NULL) check(MPROC_EINVAL, "the argument has no address");
    check(mproc_manager_connect(m, address, NULL, 0), "mproc_manager_connect");
    check(mproc_proxy_from_value(*m, mproc_value_list_get(v, 1), records),
          "mproc_proxy_from_value");
    return v;
}

/* ---- the targets ------------------------------------------------------------------- */

/* insert_record(record, records) */
static int insert_record(void *arg)
{
    mproc_manager *m;
    mproc_proxy *records;
    mproc_value *v = connect_args(arg, &m, &records);
    const mproc_value *record = mproc_value_list_get(v, 2);
    if (record == NULL) check(MPROC_EINVAL, "the argument has no record");

    /* records.append(record) */
    check(mproc_proxy_append(records, record), "records.append");
    printf("New record added!\n\n");

    mproc_proxy_free(records);
    mproc_manager_free(m);
    mproc_value_free(v);
    return 0;
}

/* print_records(records) */
static int print_records(void *arg)
{
    mproc_manager *m;
    mproc_proxy *records;
    mproc_value *v = connect_args(arg, &m, &records);

    size_t n;
    check(mproc_proxy_len(records, &n), "len(records)");
    for (size_t i = 0; i < n; i++) {
        mproc_value *index = check_alloc(mproc_value_int((int64_t)i), "mproc_value_int");
        mproc_value *record;
        check(mproc_proxy_getitem(records, index, &record), "records[i]");
        mproc_value_free(index);

        const char *name = mproc_value_get_str(mproc_value_list_get(record, 0), NULL);
        int64_t score;
        if (name == NULL || mproc_value_get_int(mproc_value_list_get(record, 1), &score) != 0) {
            fprintf(stderr, "manager_records: record %zu is not (name, score)\n", i);
            return 1;
        }
        printf("Name: %s\nScore: %" PRId64 "\n\n", name, score);
        mproc_value_free(record);
    }

    mproc_proxy_free(records);
    mproc_manager_free(m);
    mproc_value_free(v);
    return 0;
}

/* Starts target(arg) and joins it; exits if it failed. */
static void run(mproc_target_fn target, const packed *arg, size_t size, const char *name)
{
    mproc_process *p;
    mproc_process_opts opts = {.name = name};
    check(mproc_process_new(&p, target, arg, size, &opts), "mproc_process_new");
    check(mproc_process_start(p), "mproc_process_start");
    check(mproc_process_join(p, MPROC_FOREVER), "mproc_process_join");
    int code;
    check(mproc_process_exitcode(p, &code), "mproc_process_exitcode");
    if (code != 0) {
        fprintf(stderr, "manager_records: %s exited with code %d\n", name, code);
        exit(1);
    }
    check(mproc_process_free(p), "mproc_process_free");
}

int main(void)
{
    /* with multiprocessing.Manager() as manager: */
    mproc_manager *manager;
    check(mproc_manager_start(&manager, NULL), "mproc_manager_start");

    /* records = manager.list([('Sam', 10), ('Adam', 9), ('Kevin', 9)]):
     * the creation arguments are [initial list]. */
    mproc_value *initial = check_alloc(mproc_value_list(), "mproc_value_list");
    append(initial, make_record("Sam", 10));
    append(initial, make_record("Adam", 9));
    append(initial, make_record("Kevin", 9));
    mproc_value *create_args = check_alloc(mproc_value_list(), "mproc_value_list");
    append(create_args, initial);
    mproc_proxy *records;
    check(mproc_manager_create(manager, "list", create_args, &records), "manager.list");
    mproc_value_free(create_args);

    /* new_record = ('Jeff', 8), and each child's arguments:
     * p1 [address, records, new_record], p2 [address, records]. */
    mproc_value *a1 = check_alloc(mproc_value_list(), "mproc_value_list");
    append(a1, mproc_value_str(mproc_manager_address(manager)));
    append(a1, mproc_proxy_ref(records));
    append(a1, make_record("Jeff", 8));
    mproc_value *a2 = check_alloc(mproc_value_list(), "mproc_value_list");
    append(a2, mproc_value_str(mproc_manager_address(manager)));
    append(a2, mproc_proxy_ref(records));
    size_t size1, size2;
    packed *arg1 = pack(a1, &size1), *arg2 = pack(a2, &size2);

    /* p1.start(); p1.join(); p2.start(); p2.join(). stdout is flushed
     * first, so no buffered output is copied into a forked child. */
    fflush(stdout);
    run(insert_record, arg1, size1, "p1");
    run(print_records, arg2, size2, "p2");
    free(arg1);
    free(arg2);

    /* The end of the with block: the proxy goes, then the manager is shut
     * down (mproc_manager_free does both the shutdown and the join). */
    mproc_proxy_free(records);
    mproc_manager_free(manager);
    return 0;
}
