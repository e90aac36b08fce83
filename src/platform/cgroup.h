/* cgroup CPU quotas (platform/platform.h: mproc__cgroup_cpu_quota), exposed
 * for tests. */
#ifndef MPROC_INTERNAL_CGROUP_H
#define MPROC_INTERNAL_CGROUP_H

/* The CPU quota, in whole CPUs rounded up, that the cgroup files under
 * `root` impose on a process whose /proc/self/cgroup text is `self_cgroup`;
 * 0 when there is no quota. cgroup v2 (cpu.max, walked up to the root,
 * the smallest wins) and v1 (cpu.cfs_quota_us / cpu.cfs_period_us). */
int mproc__cgroup_quota_at(const char *root, const char *self_cgroup);

#endif
