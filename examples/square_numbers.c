/* square_numbers — C twin of seed 001's first program.
 *
 * Creates one process per CPU, each computing i * i for i < 1000, starts
 * them all, then joins them all. The Python prints nothing; this prints one
 * line at the end saying how many processes finished.
 *
 * The Python original:
 *
 *     def square_numbers():
 *         for i in range(1000):
 *             result = i * i
 *
 *     if __name__ == "__main__":
 *         processes = []
 *         num_processes = os.cpu_count()
 *         for i in range(num_processes):
 *             process = Process(target=square_numbers)
 *             processes.append(process)
 *         for process in processes:
 *             process.start()
 *         for process in processes:
 *             process.join()
 *
 * mproc_cpu_count() counts the CPUs this process may actually use (affinity
 * and cgroup quota), which is what os.process_cpu_count() gives in Python
 * 3.13; MPROC_CPU_COUNT in the environment overrides it.
 */
#include <mproc.h>

#include <stdio.h>
#include <stdlib.h>

/* The target; it takes no argument (arg is NULL). */
static int square_numbers(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        volatile int result = i * i; /* volatile: the unused work is kept */
        (void)result;
    }
    return 0;
}

int main(void)
{
    /* num_processes = os.cpu_count(): at least 1, or an error code. */
    int num_processes = mproc_cpu_count();
    MPROC_CHECK(num_processes);
    mproc_process **processes = calloc((size_t)num_processes, sizeof *processes);
    MPROC_CHECK(processes ? 0 : MPROC_ENOMEM);

    for (int i = 0; i < num_processes; i++)
        MPROC_CHECK(mproc_process_new(&processes[i], square_numbers, NULL, 0, NULL));
    for (int i = 0; i < num_processes; i++) MPROC_CHECK(mproc_process_start(processes[i]));
    for (int i = 0; i < num_processes; i++) {
        MPROC_CHECK(mproc_process_join(processes[i], MPROC_FOREVER));
        MPROC_CHECK(mproc_process_free(processes[i]));
    }
    free(processes);
    printf("%d processes finished\n", num_processes);
    return 0;
}
