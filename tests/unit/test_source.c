/* test_source — the probe's source registry (probe/source.c): specs parsed
 * into sources of the right kind, bad specs refused with a reason, checkpoint
 * names that never collide, files that are not regular refused without
 * blocking; and a file source read from start to end, twice (a run per
 * subscriber), giving exactly the packets of the capture. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "source.h"
#include "tb_err.h"
#include "tb_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEMO TB_TEST_DATA "/demo.pcap"
#define DEMO_PACKETS 5000

static tb_source_cfg_t s_cfg(void)
{
    tb_source_cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    tb_source_live_cfg_defaults(&cfg.live);
    return cfg;
}

static void test_kinds(void **state)
{
    (void)state;
    tb_source_cfg_t cfg = s_cfg();
    char err[256];
    static const struct {
        const char *stream, *spec, *kind;
        int finite, lossless;
    } ok[] = {
        {"f", "file:" DEMO, "file", 1, 1},
        {"c", "cap:/nowhere/x.cap", "cap", 1, 1},
        {"i", "iface:eth0", "iface", 0, 0},
        {"01::10:01", "dpmi:eth1", "dpmi", 0, 0},
        {"m", "dpmi:eth1/01:00:00:00:10:02", "dpmi", 0, 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        err[0] = '\0';
        tb_source_t *src = tb_source_new(ok[i].stream, ok[i].spec, &cfg, err, sizeof err);
        assert_non_null(src);
        assert_string_equal(src->ops->kind, ok[i].kind);
        assert_int_equal(src->ops->finite, ok[i].finite);
        assert_int_equal(src->ops->lossless, ok[i].lossless);
        tb_source_destroy(&src);
        assert_null(src);
    }
    tb_source_destroy(NULL);
}

static void test_refusals(void **state)
{
    (void)state;
    tb_source_cfg_t cfg = s_cfg();
    static const struct {
        const char *stream, *spec, *says;
    } bad[] = {
        {"s", "nokind", "is not KIND:ARGUMENT"},
        {"s", "file:", "is not KIND:ARGUMENT"},
        {"s", "tape:/dev/st0", "unknown source kind 'tape'"},
        {"s", "iface:", "is not KIND:ARGUMENT"},
        {"uplink", "dpmi:eth0", "is not a stream address"},
        {"s", "dpmi:eth0/01::02::03", "is not a stream address"},
        {"s", "dpmi:/01::10:01", "needs an interface"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        tb_source_t *src = tb_source_new(bad[i].stream, bad[i].spec, &cfg, err, sizeof err);
        assert_null(src);
        if (strstr(err, bad[i].says) == NULL) {
            fail_msg("%s: '%s' does not say '%s'", bad[i].spec, err, bad[i].says);
        }
    }
    tb_source_cfg_t broken = s_cfg();
    broken.live.sample = 0;
    char err[256] = "";
    assert_null(tb_source_new("i", "iface:eth0", &broken, err, sizeof err));
    assert_non_null(strstr(err, "invalid capture settings"));
}

static void test_checkpoint_names_never_collide(void **state)
{
    (void)state;
    char a[128], b[128], la[128], lb[128];
    assert_int_equal(tb_source_checkpoint_name("x/y", a, sizeof a, la, sizeof la), 0);
    assert_int_equal(tb_source_checkpoint_name("x_y", b, sizeof b, lb, sizeof lb), 0);
    assert_string_equal(a, ".tapbus-x%2Fy.checkpoint");
    assert_string_equal(b, ".tapbus-x_y.checkpoint");
    assert_string_equal(la, ".tapbus-x_y.checkpoint"); /* the old name, for migration */
    assert_string_equal(lb, "");                        /* nothing to migrate */
    assert_string_not_equal(a, b);
    char small[16], lsmall[16];
    assert_int_equal(tb_source_checkpoint_name("a-long-stream-name", small, sizeof small, lsmall,
                                               sizeof lsmall),
                     TB_ELIMIT);
}

static void test_open_regular_refuses_what_is_not_a_file(void **state)
{
    (void)state;
    char dir[256], fifo[300], err[256];
    assert_int_equal(tb_test_tmpdir(dir, sizeof dir, "source"), 0);
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    FILE *fp = NULL;
    assert_int_equal(tb_source_open_regular(fifo, &fp, err, sizeof err), TB_EINVAL);
    assert_null(fp);
    assert_int_equal(tb_source_open_regular(dir, &fp, err, sizeof err), TB_EINVAL);
    char missing[300];
    snprintf(missing, sizeof missing, "%s/missing.pcap", dir);
    assert_int_equal(tb_source_open_regular(missing, &fp, err, sizeof err), TB_ENOENT);
    assert_int_equal(tb_source_open_regular(DEMO, &fp, err, sizeof err), 0);
    assert_non_null(fp);
    fclose(fp);
    tb_test_rmtree(dir);
}

/* Read a finite source to its end; returns the packets. */
static uint64_t s_drain(tb_source_t *src, uint64_t *bytes)
{
    static tb_summary_t out[256];
    uint64_t n = 0;
    *bytes = 0;
    for (int guard = 0; guard < 100000; guard++) {
        int eof = 0;
        char err[256] = "";
        int got = src->ops->read(src, out, 256, &eof, err, sizeof err);
        assert_true(got >= 0 && got <= 256);
        for (int i = 0; i < got; i++) {
            *bytes += out[i].wire_len;
        }
        n += (uint64_t)got;
        if (eof) {
            assert_string_equal(err, "");
            return n;
        }
    }
    fail_msg("the source never ended");
    return n;
}

static void test_file_source_runs_twice(void **state)
{
    (void)state;
    tb_source_cfg_t cfg = s_cfg();
    char err[256] = "";
    tb_source_t *src = tb_source_new("f", "file:" DEMO, &cfg, err, sizeof err);
    assert_non_null(src);
    uint64_t bytes1, bytes2;
    assert_int_equal(src->ops->open(src, err, sizeof err), 0);
    assert_int_equal(s_drain(src, &bytes1), DEMO_PACKETS);
    src->ops->close(src);
    assert_int_equal(src->ops->open(src, err, sizeof err), 0); /* a new run */
    assert_int_equal(s_drain(src, &bytes2), DEMO_PACKETS);
    assert_true(bytes1 == bytes2 && bytes1 > 0);
    tb_source_stats_t st;
    src->ops->stats(src, &st);
    assert_int_equal(st.files_skipped, 0);
    tb_source_destroy(&src);
}

static void test_missing_file_is_an_error_at_open(void **state)
{
    (void)state;
    tb_source_cfg_t cfg = s_cfg();
    char err[256] = "";
    tb_source_t *src = tb_source_new("f", "file:/nonexistent/x.pcap", &cfg, err, sizeof err);
    assert_non_null(src); /* the file may come later: only opening fails */
    assert_int_not_equal(src->ops->open(src, err, sizeof err), 0);
    assert_non_null(strstr(err, "/nonexistent/x.pcap"));
    tb_source_stats_t st;
    src->ops->stats(src, &st);
    assert_int_equal(st.files_skipped, 1);
    tb_source_destroy(&src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_checkpoint_names_never_collide),
        cmocka_unit_test(test_open_regular_refuses_what_is_not_a_file),
        cmocka_unit_test(test_file_source_runs_twice),
        cmocka_unit_test(test_missing_file_is_an_error_at_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
