/* Links against mproc::cluster: the installed package's cluster library
 * and its MPI resolve (it is linked, not run). */
#include <mproc.h>
#include <mproc/cluster.h>

int main(int argc, char **argv)
{
    if (mproc_cluster_init(&argc, &argv) != 0) return 1;
    mproc_cluster_shutdown();
    return 0;
}
