/* lock_workers — C twin of seed 002's "Synchronization Primitives".
 *
 * Five processes share one Lock. Each, holding it (MPROC_WITH, Python's
 * `with lock:`), prints that it is accessing the shared resource and sleeps
 * one second, so the five lines come one second apart. (That no two
 * processes are ever inside the lock together is what the test suite's
 * lock_excludes_processes_and_threads checks.)
 */
#include <mproc.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct worker_args {
    mproc_lock *lock; /* in the family arena: valid in every process */
    int num;
};

static int worker(void *arg)
{
    const struct worker_args *a = arg;
    MPROC_WITH(a->lock)
    {
        printf("Worker %d is accessing shared resource\n", a->num);
        sleep(1);
    }
    return 0;
}

int main(void)
{
    mproc_lock *lock;
    MPROC_CHECK(mproc_lock_new(&lock));
    mproc_process *p[5];
    for (int i = 0; i < 5; i++) { /* args=(lock, i): the bytes of a worker_args */
        /* Zeroed first: the padding after num is copied too, and stale stack
         * bytes there could look like a pointer, which a spawn or forkserver
         * start refuses. */
        struct worker_args args;
        memset(&args, 0, sizeof args);
        args.lock = lock;
        args.num = i;
        MPROC_CHECK(mproc_process_start_new(&p[i], worker, &args, sizeof args, NULL));
    }
    MPROC_CHECK(mproc_process_join_free_all(p, 5, MPROC_FOREVER, NULL));
    MPROC_FREE(lock);
    return 0;
}
