/* Rank 0 returns from main with a pool open and tasks in flight, never
 * shutting the cluster down: exit() must still stop every rank (the test
 * times out otherwise) and the process must exit 0. With
 * CLUSTER_OTHER_PROGRAM it is another program (another build id): run as
 * the other ranks of a job whose rank 0 is test_cluster_exit, it must be
 * refused at start-up. */
#include <mproc.h>
#include <mproc/cluster.h>

#include <stdio.h>
#include <string.h>

static int add_one(const void *arg, size_t len, mproc_result *res)
{
    long x;
    if (len != sizeof x) return mproc_task_fail("bad length");
    memcpy(&x, arg, sizeof x);
    x += 1;
#ifdef CLUSTER_OTHER_PROGRAM
    x += 1000;
#endif
    return mproc_result_set(res, &x, sizeof x);
}

int main(int argc, char **argv)
{
    int rc = mproc_cluster_init(&argc, &argv);
    if (argc > 1 && strcmp(argv[1], "--expect-refused") == 0) {
        /* On stderr, unbuffered, at once: Open MPI's launcher ends the job
         * soon after the refused ranks exit 1. */
        if (rc == MPROC_EPROTO) fprintf(stderr, "cluster_exit: refused as expected\n");
        fprintf(stderr, "cluster_exit: init: %s\n", mproc_strerror(rc));
        return rc == MPROC_EPROTO ? 0 : 1;
    }
    if (rc) {
        fprintf(stderr, "cluster_exit: init: %s\n", mproc_strerror(rc));
        return 1;
    }
    mproc_pool *p;
    if ((rc = mproc_cluster_pool_new(&p, NULL))) return 1;
    mproc_future *f = NULL;
    for (long i = 0; i < 50; i++) {
        if (f) mproc_future_free(f);
        if (mproc_pool_apply_async(p, add_one, &i, sizeof i, NULL, &f)) return 1;
    }
    const void *buf;
    size_t len;
    rc = mproc_future_result(f, &buf, &len, 60000);
    if (rc || len != sizeof(long) || *(const long *)buf != 50) {
        fprintf(stderr, "cluster_exit: %s\n", mproc_strerror(rc));
        return 1;
    }
    /* more in flight, and no close, free or shutdown */
    for (long i = 0; i < 20; i++) mproc_pool_apply_async(p, add_one, &i, sizeof i, NULL, &f);
    printf("cluster_exit: returning from main\n");
    return 0;
}
