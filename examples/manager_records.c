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
 * (the with block's Manager()); manager.list([...]) is
 * mproc_manager_createf with the list packed from a format (a record is a
 * two-item list, Python's tuple); records.append(record) is
 * mproc_proxy_callf. As in Python, the proxy goes to each child in its
 * arguments: a proxy pointer placed in the argument bytes becomes, in the
 * child, a proxy of the child's own that connects with the family authkey
 * on its first call, under fork, spawn and forkserver alike (so the record
 * travels as bytes in the struct, never as a pointer). The parent keeps
 * its proxy until both children are joined, so the list lives on between
 * them. print_records fetches the list in one call (copy(), records[:]),
 * then walks it.
 */
#include <mproc.h>

#include <stdio.h>
#include <string.h>

/* insert_record's arguments (record, records). */
struct insert_args {
    mproc_proxy *records;
    char name[8];
    int score;
};

static int insert_record(void *arg)
{
    struct insert_args *a = arg;
    MPROC_CHECK(mproc_proxy_callf(a->records, "append", NULL, "[si]", a->name, a->score));
    printf("New record added!\n\n");
    return 0;
}

static int print_records(void *arg)
{
    mproc_value *list;
    MPROC_CHECK(mproc_proxy_callf(*(mproc_proxy **)arg, "copy", &list, NULL));
    for (size_t i = 0; i < mproc_value_len(list); i++) {
        const char *name;
        int score;
        MPROC_CHECK(mproc_value_unpack(mproc_value_list_get(list, i), "[si]", &name, &score));
        printf("Name: %s\nScore: %d\n\n", name, score);
    }
    mproc_value_free(list);
    return 0;
}

int main(void)
{
    mproc_manager *manager;
    mproc_proxy *records;
    MPROC_CHECK(mproc_manager_start(&manager, NULL));
    MPROC_CHECK(mproc_manager_createf(manager, "list", &records, "[[si][si][si]]", "Sam", 10,
                                      "Adam", 9, "Kevin", 9));
    /* Zeroed first: the padding after score is copied too, and stale stack
     * bytes there could look like a pointer, which a spawn or forkserver
     * start refuses. */
    struct insert_args a1;
    memset(&a1, 0, sizeof a1);
    a1.records = records;
    snprintf(a1.name, sizeof a1.name, "%s", "Jeff");
    a1.score = 8;

    /* stdout is flushed first, so no buffered output is copied into a
     * forked child. */
    fflush(stdout);
    mproc_process *p1, *p2;
    MPROC_CHECK(mproc_process_start_new(&p1, insert_record, &a1, sizeof a1, NULL));
    MPROC_CHECK(mproc_process_join_free(p1, MPROC_FOREVER, NULL));
    MPROC_CHECK(mproc_process_start_new(&p2, print_records, &records, sizeof records, NULL));
    MPROC_CHECK(mproc_process_join_free(p2, MPROC_FOREVER, NULL));
    /* The end of the with block: freeing the manager shuts its server down. */
    MPROC_FREE(records, manager);
    return 0;
}
