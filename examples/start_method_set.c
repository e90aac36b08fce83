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
#include <stdlib.h>

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "start_method_set: %s: %s\n", what, mproc_strerror(rc));
        exit(1);
    }
}

/* foo(q): q.put('hello') */
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
    check(mproc_set_start_method("spawn", false), "mproc_set_start_method");

    mproc_queue *q;
    check(mproc_queue_new(&q, NULL), "mproc_queue_new");
    mproc_process *p;
    check(mproc_process_new(&p, foo, &q, sizeof q, NULL), "mproc_process_new");
    check(mproc_process_start(p), "mproc_process_start");

    /* print(q.get()): a timeout instead of for ever, so a dead child is an
     * error, not a hang. */
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
