/* sync_primitives — Barrier, Condition, Event (and a Semaphore) between
 * processes. Not from a seed: it shows the synchronisation primitives
 * that seed 002 lists besides Lock, in three short acts.
 *
 *  1. Barrier: three workers wait at a start line. The last to arrive runs
 *     the barrier's action, which prints "Barrier: all 3 workers started";
 *     then all three pass. Each records its arrival index (0, 1, 2 in some
 *     order) for the parent to print.
 *  2. Condition: a producer hands the items 1..5 to a consumer through a
 *     one-item slot. Each waits on the same Condition until the slot is
 *     empty (producer) or full (consumer) and notifies the other after
 *     changing it. The consumer prints each item and checks the order.
 *  3. Event: two "stoppers" work (here: wait in 5 ms steps) until the
 *     parent sets a stop Event. A Semaphore tells the parent when both are
 *     running.
 *
 * In Python, the same would read (abridged):
 *
 *     def all_started():
 *         print("Barrier: all 3 workers started")
 *
 *     def runner(barrier):
 *         index = barrier.wait()
 *
 *     def producer(cond, slot):
 *         for item in range(1, 6):
 *             with cond:
 *                 cond.wait_for(lambda: slot.value == 0)
 *                 slot.value = item
 *                 cond.notify()
 *
 *     def consumer(cond, slot):
 *         for _ in range(5):
 *             with cond:
 *                 cond.wait_for(lambda: slot.value != 0)
 *                 print(f"Consumer got item {slot.value}")
 *                 slot.value = 0
 *                 cond.notify()
 *
 *     def stopper(stop, running):
 *         running.release()
 *         while not stop.wait(0.005):
 *             pass  # a bit of work
 *
 *     barrier = Barrier(3, action=all_started)
 *     ...
 *     stop.set()
 *
 * Only one process prints at a time (the action's process, then the
 * consumer, then the parent after joining the children), so the output is
 * always:
 *
 *     Barrier: all 3 workers started
 *     Worker 0 passed the barrier
 *     Worker 1 passed the barrier
 *     Worker 2 passed the barrier
 *     Barrier arrival indices: [0, 1, 2]
 *     Consumer got item 1
 *     ...
 *     Consumer got item 5
 *     Condition: 5 items handed over in order
 *     Stoppers running: 2
 *     Parent: setting the stop event
 *     Stopper 0 saw the stop event
 *     Stopper 1 saw the stop event
 *     end main
 *
 * Every primitive is embedded in one struct allocated in the family arena
 * with mproc_arena_calloc (the mproc_X_init / mproc_X_fini way, like
 * pthread_mutex_t); children get a pointer to it in their argument bytes.
 */
#include <mproc.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NUM_PARTIES  3
#define NUM_ITEMS    5
#define NUM_STOPPERS 2

/* Every wait in a child gives up after 10 s, so that a bug shows up as an
 * error and an exit code rather than a hang. */
#define WAIT_MS 10000

/* Everything the processes share, in one arena block. */
struct shared_state {
    /* Act 1 */
    mproc_barrier start_line;
    int action_runs;             /* written by the barrier action */
    unsigned index[NUM_PARTIES]; /* worker i's arrival index */
    bool passed[NUM_PARTIES];    /* worker i got through the barrier */
    /* Act 2: the slot is guarded by the condition's lock. */
    mproc_cond cond;
    bool has_item;
    int slot;
    /* Act 3 */
    mproc_sem running; /* released once by each stopper when it starts */
    mproc_event stop;
    bool saw_stop[NUM_STOPPERS];
};

/* The argument bytes of every child. */
struct child_args {
    struct shared_state *st; /* in the arena: the same address everywhere */
    int num;
};

/* In a child: prints what failed and returns the exit code to report. */
static int child_fail(int rc, const char *what)
{
    fprintf(stderr, "sync_primitives: %s: %s: %s\n", mproc_process_name(mproc_current_process()),
            what, mproc_strerror(rc));
    return 1;
}

/* Creates and starts one child per entry of procs, child i getting
 * {st, i} as its argument. */
static void start_children(mproc_process **procs, int n, mproc_target_fn target,
                           struct shared_state *st)
{
    for (int i = 0; i < n; i++) {
        /* Zeroed first: the padding after num is copied too, and stale
         * stack bytes there could look like a pointer, which a spawn or
         * forkserver start refuses. */
        struct child_args args;
        memset(&args, 0, sizeof args);
        args.st = st;
        args.num = i;
        MPROC_CHECK(mproc_process_new(&procs[i], target, &args, sizeof args, NULL));
        MPROC_CHECK(mproc_process_start(procs[i]));
    }
}

/* Joins and frees the children; returns how many did not exit with 0. */
static int join_children(mproc_process **procs, int n)
{
    int failed = 0;
    for (int i = 0; i < n; i++) {
        int code;
        MPROC_CHECK(mproc_process_join(procs[i], MPROC_FOREVER));
        MPROC_CHECK(mproc_process_exitcode(procs[i], &code));
        if (code != 0) {
            fprintf(stderr, "sync_primitives: %s exited with code %d\n",
                    mproc_process_name(procs[i]), code);
            failed++;
        }
        MPROC_CHECK(mproc_process_free(procs[i]));
    }
    return failed;
}

/* ---- Act 1: Barrier ------------------------------------------------------ */

/* The barrier's action: run once, by the last worker to arrive, before any
 * worker is released. Both it and its argument (in the arena) are valid in
 * every worker, as fork children share the parent's code and arena. */
static int all_started(void *arg)
{
    struct shared_state *st = arg;
    st->action_runs++;
    printf("Barrier: all %d workers started\n", NUM_PARTIES);
    fflush(stdout); /* out now, before the parent prints anything more */
    return 0;       /* non-zero would break the barrier */
}

static int runner(void *arg)
{
    const struct child_args *a = arg;
    unsigned index;
    int rc = mproc_barrier_wait(&a->st->start_line, WAIT_MS, &index);
    if (rc < 0) return child_fail(rc, "mproc_barrier_wait");
    a->st->index[a->num] = index;
    a->st->passed[a->num] = true;
    return 0;
}

/* ---- Act 2: Condition ---------------------------------------------------- */

/* The predicates for mproc_cond_wait_for, called with the lock held. */
static bool slot_empty(void *arg)
{
    return !((struct shared_state *)arg)->has_item;
}
static bool slot_full(void *arg)
{
    return ((struct shared_state *)arg)->has_item;
}

static int producer(void *arg)
{
    struct shared_state *st = ((const struct child_args *)arg)->st;
    for (int item = 1; item <= NUM_ITEMS; item++) {
        int rc = MPROC_EUNKNOWN;   /* stays so if the lock is not taken (logged) */
        MPROC_WITH_COND(&st->cond) /* with cond: */
        {
            if ((rc = mproc_cond_wait_for(&st->cond, slot_empty, st, WAIT_MS)) == 0) {
                st->slot = item;
                st->has_item = true;
                rc = mproc_cond_notify(&st->cond, 1);
            }
        }
        if (rc < 0) return child_fail(rc, "producer");
    }
    return 0;
}

static int consumer(void *arg)
{
    struct shared_state *st = ((const struct child_args *)arg)->st;
    for (int expected = 1; expected <= NUM_ITEMS; expected++) {
        int rc = MPROC_EUNKNOWN, item = 0;
        MPROC_WITH_COND(&st->cond)
        {
            if ((rc = mproc_cond_wait_for(&st->cond, slot_full, st, WAIT_MS)) == 0) {
                item = st->slot;
                st->has_item = false;
                rc = mproc_cond_notify(&st->cond, 1);
            }
        }
        if (rc < 0) return child_fail(rc, "consumer");
        printf("Consumer got item %d\n", item);
        fflush(stdout);
        if (item != expected) {
            fprintf(stderr, "sync_primitives: consumer expected item %d, got %d\n", expected, item);
            return 1;
        }
    }
    return 0;
}

/* ---- Act 3: Event (and Semaphore) ---------------------------------------- */

static int stopper(void *arg)
{
    const struct child_args *a = arg;
    struct shared_state *st = a->st;

    /* running.release(): tell the parent this stopper is at work. */
    int rc = mproc_sem_release(&st->running);
    if (rc < 0) return child_fail(rc, "mproc_sem_release");

    /* while not stop.wait(0.005): work. Each wait returns 0 once the event
     * is set, MPROC_ETIMEDOUT after 5 ms without it. Give up after about
     * WAIT_MS (2000 rounds of 5 ms) rather than loop for ever. */
    for (int rounds = 0; (rc = mproc_event_wait(&st->stop, 5)) == MPROC_ETIMEDOUT; rounds++) {
        if (rounds >= WAIT_MS / 5) return child_fail(MPROC_ETIMEDOUT, "waiting for stop");
        /* ... a slice of real work would go here ... */
    }
    if (rc < 0) return child_fail(rc, "mproc_event_wait");
    st->saw_stop[a->num] = true;
    return 0;
}

int main(void)
{
    int failed = 0;

    /* One zeroed arena block holds every shared object; initialise each. */
    struct shared_state *st;
    MPROC_CHECK(mproc_arena_calloc((void **)&st, sizeof *st));
    MPROC_CHECK(mproc_barrier_init(&st->start_line, NUM_PARTIES, all_started, st));
    MPROC_CHECK(mproc_cond_init(&st->cond, NULL)); /* its own RLock */
    MPROC_CHECK(mproc_sem_init(&st->running, 0));
    MPROC_CHECK(mproc_event_init(&st->stop));

    /* Act 1: three runners meet at the barrier. */
    mproc_process *runners[NUM_PARTIES];
    start_children(runners, NUM_PARTIES, runner, st);
    failed += join_children(runners, NUM_PARTIES);
    if (st->action_runs != 1) {
        fprintf(stderr, "sync_primitives: the barrier action ran %d times\n", st->action_runs);
        failed++;
    }
    /* The arrival indices, sorted: 0, 1, 2 whichever worker got which. */
    unsigned sorted[NUM_PARTIES];
    int n = 0;
    for (int i = 0; i < NUM_PARTIES; i++) {
        if (!st->passed[i]) continue;
        printf("Worker %d passed the barrier\n", i);
        int k = n++;
        for (; k > 0 && sorted[k - 1] > st->index[i]; k--) sorted[k] = sorted[k - 1];
        sorted[k] = st->index[i];
    }
    printf("Barrier arrival indices: [");
    for (int k = 0; k < n; k++) printf("%s%u", k ? ", " : "", sorted[k]);
    printf("]\n");

    /* Act 2: producer and consumer share the Condition. */
    mproc_process *pair[2];
    start_children(&pair[0], 1, producer, st);
    start_children(&pair[1], 1, consumer, st);
    int pair_failed = join_children(pair, 2);
    failed += pair_failed;
    if (pair_failed == 0) printf("Condition: %d items handed over in order\n", NUM_ITEMS);

    /* Act 3: start the stoppers, wait until both run, then stop them. */
    mproc_process *stoppers[NUM_STOPPERS];
    start_children(stoppers, NUM_STOPPERS, stopper, st);
    for (int i = 0; i < NUM_STOPPERS; i++) MPROC_CHECK(mproc_sem_acquire(&st->running, WAIT_MS));
    printf("Stoppers running: %d\n", NUM_STOPPERS);
    usleep(50000); /* let them work for 50 ms */
    printf("Parent: setting the stop event\n");
    MPROC_CHECK(mproc_event_set(&st->stop));
    failed += join_children(stoppers, NUM_STOPPERS);
    for (int i = 0; i < NUM_STOPPERS; i++)
        if (st->saw_stop[i]) printf("Stopper %d saw the stop event\n", i);

    printf("end main\n");

    mproc_event_fini(&st->stop);
    mproc_sem_fini(&st->running);
    mproc_cond_fini(&st->cond);
    mproc_barrier_fini(&st->start_line);
    MPROC_CHECK(mproc_arena_free(st));
    return failed ? 1 : 0;
}
