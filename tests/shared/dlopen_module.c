/* A module that the test_dlopen host loads with dlopen, linked with
 * libmproc.so: so mproc itself comes into the host by dlopen. Its children
 * under spawn and forkserver run a target of this module in a new image of
 * the host, which would not load mproc without the preload. */
#include "mproc.h"

#include <stdlib.h>
#include <string.h>

#define API __attribute__((visibility("default")))

/* In the child: runs at all (mproc's start-up code found this module
 * again), and sees the parent's LD_PRELOAD (unset) and nothing of mproc's. */
static int target(void *arg)
{
    (void)arg;
    if (getenv("LD_PRELOAD")) return 10;
    if (getenv("MPROC_PRELOAD_WAS")) return 11;
    return 42;
}

/* Starts a child of target under method and returns its exit code (or a
 * negative mproc error). */
API int dlopen_module_run(int method)
{
    mproc_process *p;
    mproc_process_opts o = {.start_method = (mproc_start_method)method};
    int rc = mproc_process_new(&p, target, NULL, 0, &o);
    if (rc) return rc;
    if ((rc = mproc_process_start(p)) == 0 && (rc = mproc_process_join(p, 30000)) == 0) {
        int code = -1000;
        rc = mproc_process_exitcode(p, &code);
        if (rc == 0) rc = code;
    }
    mproc_process_free(p);
    return rc;
}

API void dlopen_module_done(void)
{
    mproc_forkserver_stop();
}
