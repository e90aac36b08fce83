/* start_method_context — C twin of seed 004's "Option 2: get_context()".
 *
 * The Python original:
 *
 *     def foo(q):
 *         q.put('hello')
 *
 *     if __name__ == '__main__':
 *         ctx = mp.get_context('spawn')
 *         q = ctx.Queue()
 *         p = ctx.Process(target=foo, args=(q,))
 *         p.start()
 *         print(q.get())
 *         p.join()
 *
 * Output:
 *
 *     hello
 *
 * A context chooses the start method for the processes made through it and
 * leaves the program-wide default alone (what a library should do). Queues
 * do not depend on the start method in mproc (they live in the family
 * arena, shared by children of every method), so there is no ctx.Queue:
 * mproc_queue_new serves every context.
 */
#include <mproc.h>

#include <stdio.h>
#include <stdlib.h>

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "start_method_context: %s: %s\n", what, mproc_strerror(rc));
        exit(1);
    }
}

static int foo(void *arg)
{
    mproc_queue *q = *(mproc_queue **)arg;
    mproc_value *v = mproc_value_str("hello");
    if (!v) return 1;
    int rc = mproc_queue_put_value(q, v, MPROC_FOREVER);
    mproc_value_free(v);
    return rc ? 1 : 0;
}

int main(void)
{
    const mproc_context *ctx;
    check(mproc_get_context("spawn", &ctx), "mproc_get_context");

    mproc_queue *q;
    check(mproc_queue_new(&q, NULL), "mproc_queue_new");
    mproc_process *p;
    check(mproc_context_process_new(ctx, &p, foo, &q, sizeof q, NULL), "mproc_context_process_new");
    check(mproc_process_start(p), "mproc_process_start");

    mproc_value *v;
    check(mproc_queue_get_value(q, &v, 30000), "mproc_queue_get_value");
    printf("%s\n", mproc_value_get_str(v, NULL));
    mproc_value_free(v);

    check(mproc_process_join(p, MPROC_FOREVER), "mproc_process_join");
    int code;
    check(mproc_process_exitcode(p, &code), "mproc_process_exitcode");
    check(mproc_process_free(p), "mproc_process_free");
    mproc_queue_free(q);
    return code == 0 ? 0 : 1;
}
