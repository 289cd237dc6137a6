/* test_gateway — the HTTP gateway's mapping of a request to a control
 * request (tb_gw_request, controller/gateway.c) and of a call's result to
 * an HTTP status, without a server (e2e_gateway drives the real one with
 * curl): every path, every way to name streams, the refusals and their
 * messages, and that nothing a client sends can reach the log unprintable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gateway.h"

#include <stdio.h>
#include <string.h>

#define ARGS(...) ((const tb_gw_arg_t[]){__VA_ARGS__})

static void test_start_stop_forget(void **state)
{
    (void)state;
    tb_ctl_request_t r;
    char err[256] = "";
    assert_int_equal(tb_gw_request("/start",
                                   ARGS({"streamname1", "01::10:01"}, {"streamname2", "b"},
                                        {"stream", "c"}, {"stream7", "d"}),
                                   4, &r, err, sizeof err),
                     0);
    assert_string_equal(r.cmd, "start");
    assert_int_equal(r.nstreams, 4);
    assert_string_equal(r.streams[0], "01::10:01");
    assert_string_equal(r.streams[3], "d");
    assert_int_equal(tb_gw_request("/stop", NULL, 0, &r, err, sizeof err), 0); /* all */
    assert_string_equal(r.cmd, "stop");
    assert_int_equal(r.nstreams, 0);
    assert_int_equal(tb_gw_request("/forget", ARGS({"stream", "x"}), 1, &r, err, sizeof err), 0);
    assert_string_equal(r.cmd, "forget");
    /* Refusals. */
    assert_int_equal(tb_gw_request("/start", NULL, 0, &r, err, sizeof err), 400);
    assert_non_null(strstr(err, "name the streams to start"));
    assert_int_equal(tb_gw_request("/forget", NULL, 0, &r, err, sizeof err), 400);
    assert_int_equal(tb_gw_request("/start", ARGS({"streamname", "x"}), 1, &r, err, sizeof err),
                     400); /* streamname without a number */
    assert_non_null(strstr(err, "unknown argument 'streamname'"));
    assert_int_equal(tb_gw_request("/stop", ARGS({"streamx", "x"}), 1, &r, err, sizeof err), 400);
    assert_int_equal(tb_gw_request("/start", ARGS({"stream", "a b"}), 1, &r, err, sizeof err), 400);
    assert_non_null(strstr(err, "write %2B")); /* a '+' decoded to a space */
    assert_int_equal(tb_gw_request("/start", ARGS({"stream", NULL}), 1, &r, err, sizeof err), 400);
    assert_int_equal(tb_gw_request("/start", ARGS({"ev\x1b[2Jil", "x"}), 1, &r, err, sizeof err),
                     400);
    for (const char *p = err; *p; p++) {
        assert_true(*p >= 0x20 && *p < 0x7f); /* nothing unprintable echoed */
    }
    tb_gw_arg_t many[TB_CTL_MAX_STREAMS + 1];
    char names[TB_CTL_MAX_STREAMS + 1][8];
    for (size_t i = 0; i <= TB_CTL_MAX_STREAMS; i++) {
        snprintf(names[i], sizeof names[i], "s%zu", i);
        many[i].key = "stream";
        many[i].value = names[i];
    }
    assert_int_equal(tb_gw_request("/start", many, TB_CTL_MAX_STREAMS, &r, err, sizeof err), 0);
    assert_int_equal(tb_gw_request("/start", many, TB_CTL_MAX_STREAMS + 1, &r, err, sizeof err),
                     400);
    assert_non_null(strstr(err, "too many streams"));
}

static void test_reading_paths(void **state)
{
    (void)state;
    tb_ctl_request_t r;
    char err[256] = "";
    static const char *const plain[] = {"/status", "/streams", "/probes"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(tb_gw_request(plain[i], ARGS({"ignored", "x"}), 1, &r, err, sizeof err),
                         0);
        assert_string_equal(r.cmd, plain[i] + 1);
    }
    assert_int_equal(tb_gw_request("/stats", ARGS({"stream", "s1"}), 1, &r, err, sizeof err), 0);
    assert_string_equal(r.cmd, "stats");
    assert_string_equal(r.streams[0], "s1");
    assert_int_equal(tb_gw_request("/stats", NULL, 0, &r, err, sizeof err), 400);
    assert_int_equal(tb_gw_request("/stats", ARGS({"stream", "bad name"}), 1, &r, err, sizeof err),
                     400);
    /* db: what the database holds, or the latest N points. */
    assert_int_equal(tb_gw_request("/db", NULL, 0, &r, err, sizeof err), 0);
    assert_int_equal(r.nargs, 1);
    assert_string_equal(r.args[0], "measurements");
    assert_int_equal(tb_gw_request("/db", ARGS({"measurement", "tapbus_loss"}, {"stream", "s"},
                                               {"n", "25"}),
                                   3, &r, err, sizeof err),
                     0);
    assert_int_equal(r.nargs, 3);
    assert_string_equal(r.args[0], "points");
    assert_string_equal(r.args[1], "tapbus_loss");
    assert_string_equal(r.args[2], "25");
    assert_string_equal(r.streams[0], "s");
    assert_int_equal(tb_gw_request("/db", ARGS({"measurement", "m"}), 1, &r, err, sizeof err), 0);
    assert_string_equal(r.args[2], "10"); /* the default */
    assert_int_equal(tb_gw_request("/db", ARGS({"measurement", "m"}, {"n", "0"}), 2, &r, err,
                                   sizeof err),
                     400);
    assert_int_equal(tb_gw_request("/db", ARGS({"measurement", "m"}, {"n", "10001"}), 2, &r, err,
                                   sizeof err),
                     400);
    assert_int_equal(tb_gw_request("/db", ARGS({"measurement", ""}), 1, &r, err, sizeof err), 400);
    assert_int_equal(tb_gw_request("/nope", NULL, 0, &r, err, sizeof err), 404);
    assert_non_null(strstr(err, "unknown path"));
    assert_int_equal(tb_gw_request("/", NULL, 0, &r, err, sizeof err), 404);
}

static void test_status_of_results(void **state)
{
    (void)state;
    assert_int_equal(tb_gw_status_of(TB_GW_OK, ""), 200);
    assert_int_equal(tb_gw_status_of(TB_GW_REFUSED, "unknown stream 'x'"), 404);
    assert_int_equal(tb_gw_status_of(TB_GW_REFUSED, "every stream slot is taken"), 409);
    assert_int_equal(tb_gw_status_of(TB_GW_UNREACHABLE, "no reply"), 504);
    assert_int_equal(tb_gw_status_of(TB_GW_BADREPLY, "garbage"), 502);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_stop_forget),
        cmocka_unit_test(test_reading_paths),
        cmocka_unit_test(test_status_of_results),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
