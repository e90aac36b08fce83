/* pool_map_cube — C twin of seed 001's "Process Pools" program, the
 * p.map() form.
 *
 * The Python original:
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
 *         # by default this allocates the maximum number of available
 *         # processors for this task --> os.cpu_count()
 *         result = p.map(cube,  numbers)
 *
 *         # or
 *         # result = [p.apply(cube, args=(i,)) for i in numbers]
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
 * (The commented-out apply() form is pool_apply_cube.c.)
 *
 * cube is a typed function, int64_t cube(int64_t), and
 * MPROC_POOL_MAP_RANGE is p.map(cube, range(10)): the pool cuts the range
 * into chunks (Python's default chunk size), each worker calls cube on its
 * numbers, and the results come back in order into an int64_t array (the
 * macro refuses, at compile time, an array of another type). The workers
 * are fresh program images under spawn and forkserver: cube is found there
 * by its place in the program, never by a pointer into this process.
 */
#include <mproc.h>

#include <stdio.h>

/* def cube(number): return number * number * number */
static int64_t cube(int64_t number)
{
    return number * number * number;
}

int main(void)
{
    /* p = Pool(): processes = 0 means mproc_cpu_count() workers. */
    mproc_pool *p;
    MPROC_CHECK(mproc_pool_new(&p, NULL));

    /* result = p.map(cube, range(10)) */
    int64_t result[10];
    MPROC_CHECK(MPROC_POOL_MAP_RANGE(p, cube, MPROC_RANGE(10), result));

    /* p.close(); p.join() */
    MPROC_CHECK(mproc_pool_close(p));
    MPROC_CHECK(mproc_pool_join(p, MPROC_FOREVER));
    mproc_pool_free(p);

    /* print(result): a Python list. */
    for (int i = 0; i < 10; i++) printf("%s%lld", i ? ", " : "[", (long long)result[i]);
    printf("]\n");
    return 0;
}
