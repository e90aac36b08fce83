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

/* foo(q): q.put('hello') */
static int foo(void *arg)
{
    return MPROC_CHECK(mproc_queue_putf(*(mproc_queue **)arg, MPROC_FOREVER, "s", "hello"));
}

int main(void)
{
    const mproc_context *ctx;
    MPROC_CHECK(mproc_get_context("spawn", &ctx));
    mproc_queue *q;
    MPROC_CHECK(mproc_queue_new(&q, NULL));
    mproc_process *p;
    MPROC_CHECK(mproc_context_process_new(ctx, &p, foo, &q, sizeof q, NULL));
    MPROC_CHECK(mproc_process_start(p));
    /* print(q.get()), waiting 30 s rather than for ever: a dead child is
     * an error, not a hang. MPROC_CHECK stops the program at a failed
     * call, as an uncaught exception stops Python's. */
    mproc_value *v;
    MPROC_CHECK(mproc_queue_get_value(q, &v, 30000));
    printf("%s\n", MPROC_STR(v));
    MPROC_CHECK(mproc_process_join_free(p, MPROC_FOREVER, NULL));
    MPROC_FREE(v, q);
    return 0;
}
