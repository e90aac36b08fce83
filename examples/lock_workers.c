/* lock_workers — C twin of seed 002's "Synchronization Primitives".
 *
 * Five processes share one Lock. Each takes it, prints that it is
 * accessing the shared resource, sleeps one second (as the seed does)
 * and releases it, so the five lines come one second apart, in whatever
 * order the workers got the lock, and the program takes about five seconds.
 *
 * The Python original:
 *
 *     def worker(lock, num):
 *         with lock:
 *             print(f'Worker {num} is accessing shared resource')
 *             time.sleep(1)
 *
 *     if __name__ == '__main__':
 *         lock = multiprocessing.Lock()
 *         processes = [multiprocessing.Process(target=worker, args=(lock, i))
 *                      for i in range(5)]
 *         for p in processes:
 *             p.start()
 *         for p in processes:
 *             p.join()
 *
 * Beyond the Python, each worker proves that it is alone while it holds the
 * lock: it counts itself into a shared `inside` counter on entry and out
 * before releasing, and fails if it ever finds someone else inside.
 */
#include <mproc.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define NUM_WORKERS 5

/* What each worker gets, copied as bytes: the Lock and the counter are
 * pointers into the family arena (valid at the same address in every
 * process of the family), num is its number. */
struct worker_args {
    mproc_lock *lock;
    int *inside; /* how many workers hold the lock: must stay 0 or 1 */
    int num;
};

/* Prints what failed and why, then exits: every mproc call is checked. */
static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "lock_workers: %s: %s\n", what, mproc_strerror(rc));
        exit(1);
    }
}

/* The target. */
static int worker(void *arg)
{
    const struct worker_args *a = arg;
    int failed = 0;

    /* with lock: */
    int rc = mproc_lock_acquire(a->lock, MPROC_FOREVER);
    if (rc < 0) {
        fprintf(stderr, "lock_workers: worker %d: mproc_lock_acquire: %s\n", a->num,
                mproc_strerror(rc));
        return 1;
    }

    /* Only the holder touches *inside, so a plain int is enough. */
    if (++*a->inside != 1) {
        fprintf(stderr, "lock_workers: worker %d is not alone under the lock\n", a->num);
        failed = 1;
    }
    printf("Worker %d is accessing shared resource\n", a->num);
    /* Show the line now, even when stdout is a pipe, rather than at exit. */
    fflush(stdout);
    sleep(1);
    --*a->inside;

    /* The end of the with block: release, also after a failure above. */
    if ((rc = mproc_lock_release(a->lock)) < 0) {
        fprintf(stderr, "lock_workers: worker %d: mproc_lock_release: %s\n", a->num,
                mproc_strerror(rc));
        return 1;
    }
    return failed;
}

int main(void)
{
    /* lock = multiprocessing.Lock(), in the arena so the children share it. */
    mproc_lock *lock;
    check(mproc_lock_new(&lock), "mproc_lock_new");
    int *inside;
    check(mproc_arena_calloc((void **)&inside, sizeof *inside), "mproc_arena_calloc");

    mproc_process *processes[NUM_WORKERS];
    for (int i = 0; i < NUM_WORKERS; i++) {
        const struct worker_args args = {lock, inside, i};
        check(mproc_process_new(&processes[i], worker, &args, sizeof args, NULL),
              "mproc_process_new");
    }
    for (int i = 0; i < NUM_WORKERS; i++)
        check(mproc_process_start(processes[i]), "mproc_process_start");

    int failed = 0;
    for (int i = 0; i < NUM_WORKERS; i++) {
        int code;
        check(mproc_process_join(processes[i], MPROC_FOREVER), "mproc_process_join");
        check(mproc_process_exitcode(processes[i], &code), "mproc_process_exitcode");
        if (code != 0) {
            fprintf(stderr, "lock_workers: %s exited with code %d\n",
                    mproc_process_name(processes[i]), code);
            failed = 1;
        }
        check(mproc_process_free(processes[i]), "mproc_process_free");
    }

    check(mproc_arena_free(inside), "mproc_arena_free");
    mproc_lock_free(lock);
    return failed;
}
