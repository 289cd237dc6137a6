/* cpus — see cpus.h. */
#include "cpus.h"

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The first line of a small file, without its newline; 0 or -1. */
static int s_read_line(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    int ok = fgets(buf, (int)size, f) != NULL;
    fclose(f);
    if (!ok) {
        return -1;
    }
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

static int s_is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* CPUs (rounded up) a quota of `quota` microseconds per `period` allows;
 * 0 for no limit or values that make no sense. */
static size_t s_ratio(long long quota, long long period)
{
    if (quota <= 0 || period <= 0) {
        return 0;
    }
    long long n = (quota + period - 1) / period;
    return n < 1 ? 1 : (size_t)n;
}

/* The quota one group's directory sets: v2 "cpu.max" ("max 100000" or
 * "QUOTA PERIOD"), else v1's two files. */
static size_t s_group_quota(const char *dir, int v2)
{
    char path[PATH_MAX], line[128];
    if (v2) {
        if (snprintf(path, sizeof path, "%s/cpu.max", dir) >= (int)sizeof path ||
            s_read_line(path, line, sizeof line) != 0) {
            return 0;
        }
        long long quota, period;
        if (strncmp(line, "max", 3) == 0 || sscanf(line, "%lld %lld", &quota, &period) != 2) {
            return 0;
        }
        return s_ratio(quota, period);
    }
    long long quota, period;
    if (snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir) >= (int)sizeof path ||
        s_read_line(path, line, sizeof line) != 0 || sscanf(line, "%lld", &quota) != 1 ||
        snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir) >= (int)sizeof path ||
        s_read_line(path, line, sizeof line) != 0 || sscanf(line, "%lld", &period) != 1) {
        return 0;
    }
    return s_ratio(quota, period);
}

/* The smallest quota from the group at base + rel up to base itself. A
 * group path that is not there under base (a container that sees only its
 * own group, mounted at base, while /proc/self/cgroup names the host's
 * path) leaves base alone. */
static size_t s_walk(const char *base, const char *rel, int v2)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s%s", base, rel) >= (int)sizeof dir || !s_is_dir(dir)) {
        snprintf(dir, sizeof dir, "%s", base);
    }
    size_t best = 0;
    size_t blen = strlen(base);
    for (;;) {
        size_t q = s_group_quota(dir, v2);
        if (q != 0 && (best == 0 || q < best)) {
            best = q;
        }
        char *slash = strrchr(dir, '/');
        if (strlen(dir) <= blen || slash == NULL || (size_t)(slash - dir) < blen) {
            break;
        }
        *slash = '\0';
    }
    return best;
}

size_t tb_cpus_quota_at(const char *cgroup_file, const char *root)
{
    FILE *f = fopen(cgroup_file, "r");
    if (f == NULL) {
        return 0;
    }
    char line[PATH_MAX + 64];
    size_t best = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        /* hierarchy-id:controllers:path */
        char *c1 = strchr(line, ':');
        char *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
        if (c2 == NULL || c2[1] != '/') {
            continue;
        }
        *c1 = '\0';
        *c2 = '\0';
        const char *controllers = c1 + 1;
        const char *rel = strcmp(c2 + 1, "/") == 0 ? "" : c2 + 1;
        size_t q = 0;
        char base[PATH_MAX];
        if (strcmp(line, "0") == 0 && controllers[0] == '\0') {
            q = s_walk(root, rel, 1); /* v2 */
        } else {
            /* v1: the group of the cpu controller ("cpu" in the list). */
            char list[256];
            snprintf(list, sizeof list, ",%s,", controllers);
            if (strstr(list, ",cpu,") == NULL) {
                continue;
            }
            if (snprintf(base, sizeof base, "%s/%s", root, controllers) < (int)sizeof base &&
                s_is_dir(base)) {
                q = s_walk(base, rel, 0);
            } else if (snprintf(base, sizeof base, "%s/cpu", root) < (int)sizeof base &&
                       s_is_dir(base)) {
                q = s_walk(base, rel, 0);
            }
        }
        if (q != 0 && (best == 0 || q < best)) {
            best = q;
        }
    }
    fclose(f);
    return best;
}

void tb_cpus_get(tb_cpus_t *c)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    c->online = online > 0 ? (size_t)online : 1;
    cpu_set_t set;
    c->affinity = sched_getaffinity(0, sizeof set, &set) == 0 ? (size_t)CPU_COUNT(&set) : 0;
    c->quota = tb_cpus_quota_at("/proc/self/cgroup", "/sys/fs/cgroup");
    c->usable = c->online;
    if (c->affinity != 0 && c->affinity < c->usable) {
        c->usable = c->affinity;
    }
    if (c->quota != 0 && c->quota < c->usable) {
        c->usable = c->quota;
    }
}
