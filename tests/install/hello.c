/* The program built against an installed mproc (tests/install): a child
 * puts a message on a queue, the parent gets it; the header's version and
 * the linked library's must agree. Exit status 0 when all went well. */
#include <mproc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int worker(void *arg)
{
    mproc_queue *q = *(mproc_queue **)arg;
    return mproc_queue_put(q, "hello", 5, MPROC_FOREVER) == 0 ? 0 : 3;
}

int main(void)
{
    if (strcmp(mproc_version(), MPROC_VERSION_STRING) != 0 ||
        mproc_version_number() != MPROC_VERSION_NUMBER) {
        fprintf(stderr, "hello: header %s, library %s\n", MPROC_VERSION_STRING, mproc_version());
        return 1;
    }
    mproc_queue *q;
    mproc_process *p;
    int rc = mproc_queue_new(&q, NULL);
    if (rc == 0) rc = mproc_process_new(&p, worker, &q, sizeof q, NULL);
    if (rc == 0) rc = mproc_process_start(p);
    void *buf = NULL;
    size_t len = 0;
    if (rc == 0) rc = mproc_queue_get(q, &buf, &len, 30000);
    int code = -1;
    if (rc == 0) rc = mproc_process_join(p, 30000);
    if (rc == 0) rc = mproc_process_exitcode(p, &code);
    if (rc != 0 || code != 0 || len != 5 || memcmp(buf, "hello", 5) != 0) {
        fprintf(stderr, "hello: %s (child exit code %d)\n", mproc_strerror(rc), code);
        return 1;
    }
    printf("hello from a child, mproc %s\n", mproc_version());
    free(buf);
    mproc_process_free(p);
    mproc_queue_free(q);
    return 0;
}
