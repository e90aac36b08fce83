/* cluster_map_cube — seed 001's "Process Pools" program, the p.map()
 * form, over MPI ranks: pool_map_cube.c with one line changed (the pool's
 * constructor) and the cluster started at the top of main. Run it with
 *
 *     mpiexec -n 3 examples/cluster_map_cube
 *
 * rank 0 runs main; ranks 1 and 2 compute the cubes, then exit when the
 * program ends (docs/cluster.md).
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
 * (The commented-out apply() form is pool_apply_cube.c; mproc_pool_apply
 * works on a cluster pool too.)
 *
 * A map function reads one input element and writes one output element:
 * mproc_pool_map cuts the array into chunks (Python's default chunk size),
 * sends each chunk's input bytes to a worker and copies the outputs back
 * in order. The workers are fresh program images under spawn and
 * forkserver, so cube gets its number as bytes, never a pointer into the
 * parent's memory.
 */
#include <mproc.h>
#include <mproc/cluster.h>

#include <stdio.h>
#include <stdlib.h>

/* def cube(number): return number * number * number */
static int cube(const void *in, void *out)
{
    long number = *(const long *)in;
    *(long *)out = number * number * number;
    return 0;
}

int main(int argc, char **argv)
{
    /* The other ranks serve from here and never return. */
    MPROC_CHECK(mproc_cluster_init(&argc, &argv));

    /* numbers = range(10) */
    enum { N = 10 };
    long numbers[N], result[N];
    for (int i = 0; i < N; i++) numbers[i] = i;

    /* p = Pool(), over every other rank: the one changed line. */
    mproc_pool *p;
    MPROC_CHECK(mproc_cluster_pool_new(&p, NULL));

    /* result = p.map(cube, numbers) */
    MPROC_CHECK(
        mproc_pool_map(p, cube, numbers, N, sizeof numbers[0], result, sizeof result[0], NULL));

    /* p.close(); p.join() */
    MPROC_CHECK(mproc_pool_close(p));
    MPROC_CHECK(mproc_pool_join(p, MPROC_FOREVER));
    mproc_pool_free(p);

    /* print(result): a Python list. */
    printf("[");
    for (int i = 0; i < N; i++) printf("%s%ld", i ? ", " : "", result[i]);
    printf("]\n");
    return 0;
}
