/* lock_workers — C twin of seed 002's "Synchronization Primitives".
 *
 * Five processes share one Lock. Each, holding it (MPROC_WITH, Python's
 * `with lock:`), prints that it is accessing the shared resource and sleeps
 * one second, so the five lines come one second apart. Beyond the Python,
 * each worker checks with a counter in the arena that it is alone under
 * the lock.
 */
#include <mproc.h>

#include <stdio.h>
#include <unistd.h>

struct worker_args {
    mproc_lock *lock; /* in the arena, like inside: valid in every process */
    int *inside;      /* workers holding the lock: must stay 0 or 1 */
    int num;
};

static int worker(void *arg)
{
    const struct worker_args *a = arg;
    int failed = 1; /* if the lock is not taken (MPROC_WITH logs why) */
    MPROC_WITH(a->lock)
    {
        failed = ++*a->inside != 1;
        printf("Worker %d is accessing shared resource\n", a->num);
        fflush(stdout); /* now, even into a pipe */
        sleep(1);
        --*a->inside;
    }
    return failed;
}

int main(void)
{
    mproc_lock *lock;
    int *inside;
    MPROC_CHECK(mproc_lock_new(&lock));
    MPROC_CHECK(mproc_arena_calloc((void **)&inside, sizeof *inside));
    mproc_process *p[5];
    for (int i = 0; i < 5; i++) {
        struct worker_args args = {lock, inside, i};
        MPROC_CHECK(mproc_process_new(&p[i], worker, &args, sizeof args, NULL));
    }
    MPROC_CHECK(mproc_process_start_all(p, 5));
    size_t failed;
    MPROC_CHECK(mproc_process_join_all(p, 5, MPROC_FOREVER, &failed));
    for (int i = 0; i < 5; i++) MPROC_CHECK(mproc_process_free(p[i]));
    MPROC_CHECK(mproc_arena_free(inside));
    mproc_lock_free(lock);
    return failed != 0;
}
