/* start_method_set — C twin of seed 004's "Option 1: set_start_method()".
 *
 * The Python original:
 *
 *     def foo(q):
 *         q.put('hello')
 *
 *     if __name__ == '__main__':
 *         mp.set_start_method('spawn')  # 'spawn', 'fork', or 'forkserver'
 *         q = mp.Queue()
 *         p = mp.Process(target=foo, args=(q,))
 *         p.start()
 *         print(q.get())
 *         p.join()
 *
 * Output:
 *
 *     hello
 *
 * Under spawn the child is a fresh exec of this program: mproc's start-up
 * code runs foo before main would, so main needs no
 * `if __name__ == '__main__'` guard. The queue lives in the family arena,
 * which the child maps at the same address, so its pointer is valid there.
 * A second mproc_set_start_method without force would fail, as in Python.
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
    MPROC_CHECK(mproc_set_start_method("spawn", false));
    mproc_queue *q;
    MPROC_CHECK(mproc_queue_new(&q, NULL));
    mproc_process *p;
    MPROC_CHECK(mproc_process_start_new(&p, foo, &q, sizeof q, NULL));
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
