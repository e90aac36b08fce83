/* The CPU quota of the process's cgroup (platform/cgroup.h), from
 * /proc/self/cgroup and the cgroup files under /sys/fs/cgroup. */
#include "platform/cgroup.h"
#include "platform/platform.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "re");
    if (!f) return NULL;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* CPUs allowed by a "quota period" pair, rounded up; 0 for no quota. */
static int quota_cpus(long long quota, long long period)
{
    if (quota <= 0 || period <= 0) return 0;
    long long n = (quota + period - 1) / period;
    return n > INT_MAX ? INT_MAX : (int)n;
}

static int v2_quota(const char *root, const char *rel)
{
    char dir[PATH_MAX], buf[128];
    int best = 0;
    snprintf(dir, sizeof dir, "%s%s", root, rel);
    for (;;) {
        char path[PATH_MAX + 16];
        snprintf(path, sizeof path, "%s/cpu.max", dir);
        if (slurp(path, buf, sizeof buf)) {
            long long q = 0, p = 0;
            if (strncmp(buf, "max", 3) != 0 && sscanf(buf, "%lld %lld", &q, &p) == 2) {
                int n = quota_cpus(q, p);
                if (n > 0 && (best == 0 || n < best)) best = n;
            }
        }
        char *slash = strrchr(dir, '/');
        if (!slash || (size_t)(slash - dir) < strlen(root)) break;
        *slash = '\0';
    }
    return best;
}

static int v1_quota(const char *root)
{
    char path[PATH_MAX], buf[64];
    long long q = 0, p = 0;
    snprintf(path, sizeof path, "%s/cpu/cpu.cfs_quota_us", root);
    if (!slurp(path, buf, sizeof buf) || sscanf(buf, "%lld", &q) != 1) return 0;
    snprintf(path, sizeof path, "%s/cpu/cpu.cfs_period_us", root);
    if (!slurp(path, buf, sizeof buf) || sscanf(buf, "%lld", &p) != 1) return 0;
    return quota_cpus(q, p);
}

int mproc__cgroup_quota_at(const char *root, const char *self_cgroup)
{
    /* cgroup v2: the line "0::/path". */
    const char *line = self_cgroup;
    while (line && *line) {
        if (strncmp(line, "0::", 3) == 0) {
            char rel[PATH_MAX];
            size_t n = strcspn(line + 3, "\n");
            if (n >= sizeof rel) n = sizeof rel - 1;
            memcpy(rel, line + 3, n);
            rel[n] = '\0';
            if (n == 1 && rel[0] == '/') rel[0] = '\0';
            return v2_quota(root, rel);
        }
        line = strchr(line, '\n');
        if (line) line++;
    }
    return v1_quota(root);
}

int mproc__cgroup_cpu_quota(void)
{
    char buf[4096];
    if (!slurp("/proc/self/cgroup", buf, sizeof buf)) return 0;
    return mproc__cgroup_quota_at("/sys/fs/cgroup", buf);
}
