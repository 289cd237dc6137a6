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

#include <pthread.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jobs_back_to_back),
        cmocka_unit_test(test_jobs_after_a_pause_wake_the_thread),
        cmocka_unit_test(test_long_job_and_end_without_job),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
