/* test_assist — the collector's counting thread (collector/assist.c): a
 * job runs on another thread, and once tb_assist_end returns it has
 * returned and everything it wrote is there; jobs back to back (the thread
 * polls) and jobs after a pause (the thread slept and must be woken) both
 * run, each once; ending without a job returns at once; stopping waits for
 * a job under way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "assist.h"
#include "cpus.h"
#include "tb_test.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/stat.h>
#include <string.h>
#include <time.h>

typedef struct {
    pthread_t ran_on;
    uint64_t runs;
    uint64_t sum; /* written by the job, read after tb_assist_end */
    uint64_t values[256];
    int sleep_ms;
} job_t;

static void s_job(void *arg)
{
    job_t *j = arg;
    if (j->sleep_ms > 0) {
        struct timespec ts = {0, (long)j->sleep_ms * 1000000L};
        nanosleep(&ts, NULL);
    }
    j->ran_on = pthread_self();
    uint64_t sum = 0;
    for (size_t i = 0; i < 256; i++) {
        j->values[i] = j->runs + i;
        sum += j->values[i];
    }
    j->sum = sum;
    j->runs++;
}

static void s_pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_jobs_back_to_back(void **state)
{
    (void)state;
    tb_assist_t *a = tb_assist_start();
    assert_non_null(a);
    job_t j;
    memset(&j, 0, sizeof j);
    for (uint64_t round = 0; round < 20000; round++) {
        tb_assist_begin(a, s_job, &j);
        tb_assist_end(a);
        /* Every write of the job is seen, and it ran exactly once. */
        assert_int_equal(j.runs, round + 1);
        assert_int_equal(j.values[255], round + 255);
        assert_int_equal(j.sum, 256 * round + 255 * 256 / 2);
    }
    assert_false(pthread_equal(j.ran_on, pthread_self()));
    tb_assist_stop(&a);
    assert_null(a);
}

static void test_jobs_after_a_pause_wake_the_thread(void **state)
{
    (void)state;
    tb_assist_t *a = tb_assist_start();
    assert_non_null(a);
    job_t j;
    memset(&j, 0, sizeof j);
    for (uint64_t round = 0; round < 20; round++) {
        s_pause_ms(5); /* far longer than the thread polls: it sleeps */
        tb_assist_begin(a, s_job, &j);
        tb_assist_end(a);
        assert_int_equal(j.runs, round + 1);
    }
    tb_assist_stop(&a);
}

static void test_long_job_and_end_without_job(void **state)
{
    (void)state;
    tb_assist_t *a = tb_assist_start();
    assert_non_null(a);
    tb_assist_end(a); /* nothing under way: returns */
    job_t j;
    memset(&j, 0, sizeof j);
    j.sleep_ms = 30; /* longer than the loop polls before it sleeps */
    tb_assist_begin(a, s_job, &j);
    tb_assist_end(a);
    assert_int_equal(j.runs, 1);
    tb_assist_end(a);
    assert_int_equal(j.runs, 1);
    /* Stopping with a job under way lets it finish. */
    tb_assist_begin(a, s_job, &j);
    tb_assist_stop(&a);
    assert_int_equal(j.runs, 2);
    tb_assist_stop(&a); /* NULL: nothing */
}

/* Write `text` to dir/rel (its directories made first). */
static void s_put(const char *dir, const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    for (char *p = path + strlen(dir) + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0700);
            *p = '/';
        }
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A control group's CPU quota, read as the kernel shows it: cgroup v2's
 * cpu.max of the group and every group above (the smallest counts,
 * rounded up to whole CPUs), v1's quota and period, a group that is not
 * there under the mount (a container's view), no quota at all. */
static void test_cpu_quota_of_control_groups(void **state)
{
    (void)state;
    char dir[256], self[300], root[300];
    assert_int_equal(tb_test_tmpdir(dir, sizeof dir, "cpus"), 0);
    snprintf(self, sizeof self, "%s/self-cgroup", dir);
    snprintf(root, sizeof root, "%s/fs", dir);
    /* v2: 2.5 CPUs for the unit, no limit above it, none below */
    s_put(dir, "fs/cpu.max", "max 100000\n");
    s_put(dir, "fs/system.slice/cpu.max", "max 100000\n");
    s_put(dir, "fs/system.slice/tapbus.service/cpu.max", "250000 100000\n");
    s_put(dir, "fs/system.slice/tapbus.service/collector/cpu.max", "max 100000\n");
    s_put(dir, "self-cgroup", "0::/system.slice/tapbus.service/collector\n");
    assert_int_equal(tb_cpus_quota_at(self, root), 3);
    /* a tighter limit above wins */
    s_put(dir, "fs/system.slice/cpu.max", "50000 100000\n");
    assert_int_equal(tb_cpus_quota_at(self, root), 1);
    /* the group is not under the mount: the mount's own group counts */
    s_put(dir, "self-cgroup", "0::/docker/0123abcd\n");
    s_put(dir, "fs/cpu.max", "200000 100000\n");
    assert_int_equal(tb_cpus_quota_at(self, root), 2);
    s_put(dir, "fs/cpu.max", "max 100000\n");
    assert_int_equal(tb_cpus_quota_at(self, root), 0);
    /* v1: the cpu controller's group, -1 for none */
    s_put(dir, "self-cgroup", "5:memory:/x\n4:cpu,cpuacct:/x\n1:name=systemd:/x\n");
    s_put(dir, "fs/cpu,cpuacct/x/cpu.cfs_quota_us", "400000\n");
    s_put(dir, "fs/cpu,cpuacct/x/cpu.cfs_period_us", "100000\n");
    assert_int_equal(tb_cpus_quota_at(self, root), 4);
    s_put(dir, "fs/cpu,cpuacct/x/cpu.cfs_quota_us", "-1\n");
    assert_int_equal(tb_cpus_quota_at(self, root), 0);
    /* nothing to read, or nonsense */
    s_put(dir, "self-cgroup", "garbage\n::\n0::relative\n");
    assert_int_equal(tb_cpus_quota_at(self, root), 0);
    snprintf(self, sizeof self, "%s/missing", dir);
    assert_int_equal(tb_cpus_quota_at(self, root), 0);
    tb_test_rmtree(dir);
}

/* This process: an affinity mask of one CPU makes one usable. */
static void test_affinity_limits_the_cpus(void **state)
{
    (void)state;
    tb_cpus_t c;
    tb_cpus_get(&c);
    assert_true(c.online >= 1);
    assert_true(c.usable >= 1 && c.usable <= c.online);
    cpu_set_t old, one;
    assert_int_equal(sched_getaffinity(0, sizeof old, &old), 0);
    CPU_ZERO(&one);
    for (int i = 0; i < CPU_SETSIZE; i++) {
        if (CPU_ISSET(i, &old)) {
            CPU_SET(i, &one);
            break;
        }
    }
    assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
    tb_cpus_get(&c);
    assert_int_equal(c.affinity, 1);
    assert_int_equal(c.usable, 1);
    assert_int_equal(sched_setaffinity(0, sizeof old, &old), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jobs_back_to_back),
        cmocka_unit_test(test_jobs_after_a_pause_wake_the_thread),
        cmocka_unit_test(test_long_job_and_end_without_job),
        cmocka_unit_test(test_cpu_quota_of_control_groups),
        cmocka_unit_test(test_affinity_limits_the_cpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
