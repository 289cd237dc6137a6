/* cpus — how many CPUs the collector may use (--threads auto).
 *
 * The CPUs online, fewer if the process's affinity allows fewer (taskset,
 * a container's --cpuset-cpus), fewer still if a control group's CPU quota
 * gives it less time than that many CPUs, rounded up (a container's
 * --cpus, a systemd unit's CPUQuota=): cgroup v2's cpu.max, or v1's
 * cpu.cfs_quota_us over cpu.cfs_period_us, of the process's group and every
 * group above it, the smallest counting. */
#ifndef TB_CPUS_H
#define TB_CPUS_H

#include <stddef.h>

typedef struct {
    size_t online;   /* CPUs online (at least 1) */
    size_t affinity; /* CPUs in the affinity mask (0: unknown) */
    size_t quota;    /* CPUs the quota allows, rounded up (0: no quota) */
    size_t usable;   /* the smallest of them: at least 1 */
} tb_cpus_t;

/* This process's CPUs. */
void tb_cpus_get(tb_cpus_t *c);

/* The quota part alone, from a copy of /proc/self/cgroup (cgroup_file) and
 * the mount of the control groups (root: /sys/fs/cgroup, holding either
 * the v2 hierarchy or v1's cpu controller as cpu/ or cpu,cpuacct/): CPUs
 * rounded up, or 0 for none or nothing readable. */
size_t tb_cpus_quota_at(const char *cgroup_file, const char *root);

#endif
