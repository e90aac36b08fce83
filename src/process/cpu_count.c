/* mproc_cpu_count: affinity, capped by the cgroup quota, overridable. */
#include "base/base.h"
#include "mproc/process.h"
#include "platform/platform.h"

#include <limits.h>
#include <stdlib.h>

int mproc_cpu_count(void)
{
    const char *env = mproc__setting(MPROC__SET_CPU_COUNT);
    if (env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == '\0' && v > 0 && v <= INT_MAX) return (int)v;
        mproc_log(MPROC_LOG_WARNING, "ignoring MPROC_CPU_COUNT=%s: not a positive integer", env);
    }
    int n = mproc__affinity_cpus();
    int q = mproc__cgroup_cpu_quota();
    if (q > 0 && q < n) n = q;
    return n;
}
