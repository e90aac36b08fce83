/* process_workers — C twin of seed 002's first program.
 *
 * Five processes each run worker(i): print "Worker i starting", sleep two
 * seconds, print "Worker i finished". The parent starts each process as it
 * creates it, then joins them all.
 *
 * The Python original:
 *
 *     def worker(name):
 *         print(f'Worker {name} starting')
 *         time.sleep(2)
 *         print(f'Worker {name} finished')
 *
 *     if __name__ == '__main__':
 *         processes = []
 *         for i in range(5):
 *             p = multiprocessing.Process(target=worker, args=(i,))
 *             processes.append(p)
 *             p.start()
 *         for p in processes:
 *             p.join()
 */
#include <mproc.h>

#include <stdio.h>
#include <unistd.h>

#define NUM_WORKERS 5

/* The target. arg points to the child's private copy of the int i that the
 * parent passed by value to mproc_process_new. */
static int worker(void *arg)
{
    int name = *(const int *)arg;

    printf("Worker %d starting\n", name);
    /* Show the line now, even when stdout is a pipe, rather than when the
     * child exits (the library flushes stdout at child exit anyway). */
    fflush(stdout);
    sleep(2);
    printf("Worker %d finished\n", name);
    return 0; /* the child's exit code */
}

int main(void)
{
    mproc_process *processes[NUM_WORKERS];

    /* Create each process and start it right away, as the Python does. */
    for (int i = 0; i < NUM_WORKERS; i++) {
        MPROC_CHECK(mproc_process_new(&processes[i], worker, &i, sizeof i, NULL));
        MPROC_CHECK(mproc_process_start(processes[i]));
    }

    /* Wait for every worker, and make sure each one exited cleanly. */
    size_t failed;
    MPROC_CHECK(mproc_process_join_all(processes, NUM_WORKERS, MPROC_FOREVER, &failed));
    if (failed) fprintf(stderr, "process_workers: %zu processes exited non-zero\n", failed);
    for (int i = 0; i < NUM_WORKERS; i++) MPROC_CHECK(mproc_process_free(processes[i]));
    return failed != 0;
}
