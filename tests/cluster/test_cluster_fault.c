/* The fault suite's scenario for cluster waits: a worker rank is killed
 * (SIGKILL, from outside, by fault_kill.sh) while rank 0 waits for the
 * cluster's tasks, at a moment chosen by rank 0's progress (the tasks it
 * has acknowledged so far, written to PROGFILE).
 *
 *   test_cluster_fault WAIT PIDFILE PROGFILE   (under mpiexec -n N, N >= 3)
 *
 * WAIT is how rank 0 waits: as_completed (over N_TASKS futures), map (a
 * map with a progress callback), imap (ordered, chunks of one item) or
 * shutdown (an executor's shutdown(wait) with the tasks in flight, their
 * callbacks counting). PIDFILE gets rank 0's pid then the worker ranks'
 * (rank 1 is the one killed).
 *
 * When the launcher ends the job at a rank's death (mpiexec's default),
 * rank 0 dies too: fault_kill.sh checks that the job ended and left no
 * process. When it does not (MPICH's -disable-auto-cleanup), rank 0 checks
 * here: no wait hangs (each is bounded; an alarm ends rank 0 if one is
 * not), every task comes back once, with its right result or
 * MPROC_EWORKERDIED, and every result acknowledged stays right; it then
 * prints "test_cluster_fault: ok". */
#include <mproc.h>
#include <mproc/cluster.h>

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clutil.h"

enum { N_TASKS = 300, CHUNK = 5, WAIT_MS = 30000 };

static int progress_fd = -1;
static atomic_long acked;

/* One more result acknowledged: the count goes to PROGFILE, where
 * fault_kill.sh reads it (fixed width, written in one call). */
static void ack(long k)
{
    long n = atomic_fetch_add(&acked, k) + k;
    char buf[24];
    int len = snprintf(buf, sizeof buf, "%20ld\n", n);
    if (pwrite(progress_fd, buf, (size_t)len, 0) != len) perror("progress");
}

static int slow_square(const void *arg, size_t len, mproc_result *res)
{
    long x;
    if (len != sizeof x) return mproc_task_fail("want %zu bytes", sizeof x);
    memcpy(&x, arg, sizeof x);
    nanosleep(&(struct timespec){0, 3000000}, NULL);
    x *= x;
    return mproc_result_set(res, &x, sizeof x);
}

static int slow_cube(const void *in, void *out)
{
    long x = *(const long *)in;
    nanosleep(&(struct timespec){0, 600000}, NULL);
    *(long *)out = x * x * x;
    return 0;
}

static void write_pids(mproc_pool *p, const char *file)
{
    pid_t pids[64];
    size_t n = mproc_pool_workers(p, pids, 64);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", file);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        perror(tmp);
        exit(3);
    }
    fprintf(f, "%d\n", (int)getpid());
    for (size_t i = 0; i < n && i < 64; i++) fprintf(f, "%d\n", (int)pids[i]);
    fclose(f);
    if (rename(tmp, file)) perror(file);
}

static long failed_tasks; /* tasks that came back with MPROC_EWORKERDIED */

/* A task's outcome: its right result (acknowledged), or MPROC_EWORKERDIED. */
static void outcome(mproc_future *f, long x)
{
    const void *buf;
    size_t len;
    int rc = mproc_future_result(f, &buf, &len, 0);
    if (rc == MPROC_EWORKERDIED) {
        failed_tasks++;
        return;
    }
    CHECK(rc == 0, "task %ld: %s", x, mproc_strerror(rc));
    CHECK(len == sizeof(long) && *(const long *)buf == x * x, "task %ld: a wrong result", x);
}

static void wait_as_completed(mproc_pool *p)
{
    static mproc_future *fs[N_TASKS];
    for (long i = 0; i < N_TASKS; i++)
        CHECK(mproc_pool_apply_async(p, slow_square, &i, sizeof i, NULL, &fs[i]) == 0, "submit");
    mproc_as_completed *it;
    CHECK(mproc_as_completed_new(&it, fs, N_TASKS) == 0, "as_completed_new");
    int rc;
    long yielded = 0;
    mproc_future *f;
    while ((rc = mproc_as_completed_next(it, &f, WAIT_MS)) == 0) {
        yielded++;
        if (mproc_future_successful(f)) ack(1);
    }
    mproc_as_completed_free(it);
    CHECK(rc == MPROC_EEOF, "as_completed_next: %s after %ld", mproc_strerror(rc), yielded);
    CHECK(yielded == N_TASKS, "%ld yielded", yielded);
    for (long i = 0; i < N_TASKS; i++) {
        outcome(fs[i], i);
        mproc_future_free(fs[i]);
    }
}

static void on_progress(size_t done, size_t total, void *ud)
{
    (void)total;
    size_t *last = ud;
    ack((long)(done - *last));
    *last = done;
}

static void wait_map(mproc_pool *p)
{
    static long in[N_TASKS * 4], out[N_TASKS * 4];
    enum { N = N_TASKS * 4 };
    for (long i = 0; i < N; i++) in[i] = i, out[i] = -1;
    size_t last = 0;
    int rc = mproc_pool_map(p, slow_cube, in, N, sizeof in[0], out, sizeof out[0],
                            &(mproc_map_opts){.chunksize = CHUNK,
                                              .timeout_ms = 0,
                                              .progress = on_progress,
                                              .progress_userdata = &last});
    CHECK(rc == 0 || rc == MPROC_EWORKERDIED, "map: %s", mproc_strerror(rc));
    CHECK(last == N, "progress ended at %zu of %d: chunks lost", last, N);
    long unwritten = 0;
    for (long i = 0; i < N; i++) {
        if (out[i] == -1) {
            unwritten++;
            continue;
        }
        CHECK(out[i] == i * i * i, "item %ld: a wrong output", i);
    }
    /* only whole chunks fail; the map fails if one did */
    CHECK(unwritten % CHUNK == 0 && (unwritten > 0) == (rc != 0), "%ld items unwritten, map %s",
          unwritten, mproc_strerror(rc));
    failed_tasks = unwritten / CHUNK;
}

static void wait_imap(mproc_pool *p)
{
    static long in[N_TASKS];
    static char seen[N_TASKS];
    for (long i = 0; i < N_TASKS; i++) in[i] = i;
    mproc_imap *it;
    CHECK(mproc_pool_imap_array(p, slow_cube, in, N_TASKS, sizeof in[0], sizeof(long),
                                &(mproc_imap_opts){.chunksize = 1}, &it) == 0,
          "imap");
    int rc;
    long o;
    size_t idx = 0, expect = 0;
    while ((rc = mproc_imap_next(it, &o, &idx, WAIT_MS)) == 0 || rc == MPROC_EWORKERDIED) {
        CHECK(idx == expect && idx < N_TASKS && !seen[idx], "item %zu after %zu", idx, expect);
        seen[idx] = 1;
        expect++;
        if (rc == MPROC_EWORKERDIED) {
            failed_tasks++;
            continue;
        }
        CHECK(o == in[idx] * in[idx] * in[idx], "item %zu: a wrong output", idx);
        ack(1);
    }
    mproc_imap_free(it);
    CHECK(rc == MPROC_EEOF && expect == N_TASKS, "imap_next: %s after %zu", mproc_strerror(rc),
          expect);
}

static void on_done(mproc_future *f, void *ud)
{
    (void)ud;
    if (mproc_future_successful(f)) ack(1);
}

static void wait_shutdown(void)
{
    mproc_executor *ex;
    int rc = mproc_cluster_executor_new(&ex, NULL);
    CHECK(rc == 0, "executor: %s", mproc_strerror(rc));
    static mproc_future *fs[N_TASKS];
    for (long i = 0; i < N_TASKS; i++) {
        CHECK(mproc_executor_submit(ex, slow_square, &i, sizeof i, &fs[i]) == 0, "submit");
        CHECK(mproc_future_add_done_callback(fs[i], on_done, NULL) == 0, "callback");
    }
    rc = mproc_executor_shutdown(ex, true, false); /* the kill comes while it waits */
    CHECK(rc == 0, "shutdown: %s", mproc_strerror(rc));
    for (long i = 0; i < N_TASKS; i++) {
        CHECK(mproc_future_done(fs[i]), "task %ld not done after shutdown(wait)", i);
        outcome(fs[i], i);
        mproc_future_free(fs[i]);
    }
    mproc_executor_free(ex);
}

int main(int argc, char **argv)
{
    if (mproc_cluster_init(&argc, &argv) != 0) return 1;
    if (argc != 4) {
        fprintf(stderr, "usage: test_cluster_fault as_completed|map|imap|shutdown PIDFILE "
                        "PROGFILE\n");
        return 2;
    }
    const char *wait = argv[1];
    alarm(90); /* a wait that hangs ends rank 0, and the test fails */
    atomic_init(&acked, 0);
    if ((progress_fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0) {
        perror(argv[3]);
        return 3;
    }
    mproc_pool *p;
    int rc = mproc_cluster_pool_new(&p, NULL);
    if (rc) {
        fprintf(stderr, "test_cluster_fault: pool: %s\n", mproc_strerror(rc));
        return 1;
    }
    write_pids(p, argv[2]);
    if (strcmp(wait, "as_completed") == 0)
        wait_as_completed(p);
    else if (strcmp(wait, "map") == 0)
        wait_map(p);
    else if (strcmp(wait, "imap") == 0)
        wait_imap(p);
    else if (strcmp(wait, "shutdown") == 0)
        wait_shutdown();
    else
        return 2;
    /* The pool goes on with the ranks left. */
    long x = 12;
    mproc_future *f;
    if (mproc_pool_apply_async(p, slow_square, &x, sizeof x, NULL, &f) == 0) {
        long before = failed_tasks;
        mproc_future_wait(f, WAIT_MS);
        outcome(f, x);
        if (failed_tasks != before || !mproc_future_successful(f)) {
            fprintf(stderr, "test_cluster_fault: FAILED: a task after the death: %s\n",
                    mproc_strerror(mproc_future_wait(f, 0)));
            failures++;
        }
        mproc_future_free(f);
    } else {
        failures++;
    }
    mproc_pool_free(p);
    mproc_cluster_shutdown();
    printf("test_cluster_fault: %s %s: %ld acknowledged, %ld failed with MPROC_EWORKERDIED\n",
           failures ? "FAILED" : "ok", wait, atomic_load(&acked), failed_tasks);
    fflush(stdout);
    return failures ? 1 : 0;
}
