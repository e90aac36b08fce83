/* pool_apply_cube — C twin of seed 001's "Process Pools" program, the
 * p.apply() form the seed gives as a comment.
 *
 * The Python original (pool_map_cube.c is the same with p.map()):
 *
 *     from multiprocessing import Pool
 *
 *     def cube(number):
 *         return number * number * number
 *
 *     if __name__ == "__main__":
 *         numbers = range(10)
 *
 *         p = Pool()
 *
 *         # or
 *         result = [p.apply(cube, args=(i,)) for i in numbers]
 *
 *         p.close()
 *         p.join()
 *
 *         print(result)
 *
 * Output:
 *
 *     [0, 1, 8, 27, 64, 125, 216, 343, 512, 729]
 *
 * apply runs one call in one worker and blocks until it is done, so the
 * ten cubes are computed one after another (as the seed's text says,
 * "func is only executed in ONE of the workers of the pool"). A task
 * function gets its argument bytes (args=(i,) becomes the bytes of one
 * long) and sets its result bytes with mproc_result_set; apply hands back
 * a malloc'd copy of them.
 */
#include <mproc.h>

#include <stdio.h>
#include <stdlib.h>

/* def cube(number): return number * number * number */
static int cube(const void *arg, size_t arglen, mproc_result *res)
{
    if (arglen != sizeof(long)) return mproc_task_fail("cube: expected one long");
    long number = *(const long *)arg, cubed = number * number * number;
    return mproc_result_set(res, &cubed, sizeof cubed);
}

int main(void)
{
    /* p = Pool() */
    mproc_pool *p;
    MPROC_CHECK(mproc_pool_new(&p, NULL));

    /* result = [p.apply(cube, args=(i,)) for i in numbers]: apply gives a
     * malloc'd copy of the result bytes (one long, as cube sets them). */
    long result[10];
    for (long i = 0; i < 10; i++) {
        void *buf;
        MPROC_CHECK(mproc_pool_apply(p, cube, &i, sizeof i, &buf, NULL));
        result[i] = *(long *)buf;
        free(buf);
    }

    /* p.close(); p.join() */
    MPROC_CHECK(mproc_pool_close(p));
    MPROC_CHECK(mproc_pool_join(p, MPROC_FOREVER));
    mproc_pool_free(p);

    /* print(result) */
    for (int i = 0; i < 10; i++) printf("%s%ld", i ? ", " : "[", result[i]);
    printf("]\n");
    return 0;
}
