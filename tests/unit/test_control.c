/* test_control — the collector's control requests (collector/control.c),
 * asked of a real collector (tb_collector_new and tb_collector_start: its
 * sockets bound on ipc endpoints in a temporary directory, its loop not
 * running) by calling the handler the loop calls: every command's reply
 * shape, the stream slots
 * (start until they are taken, forget to free them), the refusals with
 * their messages, and malformed or unknown requests answered, never
 * crashing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "collector.h"
#include "control.h"
#include "mpjson.h"
#include "tb_ctl.h"
#include "tb_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char dir[256];
    char probe[300], control[300];
    tb_collector_t *c;
} fixture_t;

static int s_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL || tb_test_tmpdir(f->dir, sizeof f->dir, "control") != 0) {
        free(f);
        return -1;
    }
    snprintf(f->probe, sizeof f->probe, "ipc://%s/probe", f->dir); /* nobody there */
    snprintf(f->control, sizeof f->control, "ipc://%s/control", f->dir);
    tb_collector_config_t cfg;
    tb_collector_config_defaults(&cfg);
    cfg.probes[0] = f->probe;
    cfg.nprobes = 1;
    cfg.control = f->control;
    cfg.max_streams = 2;
    char err[256] = "";
    f->c = tb_collector_new(&cfg, err, sizeof err);
    if (f->c == NULL || tb_collector_start(f->c, err, sizeof err) != 0) {
        fprintf(stderr, "collector: %s\n", err);
        tb_collector_destroy(&f->c);
        tb_test_rmtree(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fixture_t *f = *state;
    tb_collector_destroy(&f->c);
    tb_test_rmtree(f->dir);
    free(f);
    return 0;
}

/* Ask a request of raw bytes; returns the reply's data (new reference, or
 * NULL for an error reply, whose message goes to err). */
static json_t *s_raw(fixture_t *f, const uint8_t *buf, size_t len, char *err)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(tb_control_handle(f->c, buf, len, &sb), 0);
    int ok = 0;
    tb_mp_reader_t data;
    err[0] = '\0';
    assert_int_equal(tb_ctl_reply_decode((const uint8_t *)sb.data, sb.size, &ok, err, 256, &data),
                     0);
    json_t *j = ok ? tb_mpjson_read(&data) : NULL;
    msgpack_sbuffer_destroy(&sb);
    if (ok) {
        assert_non_null(j);
    } else {
        assert_true(err[0] != '\0');
    }
    return j;
}

static json_t *s_ask(fixture_t *f, const char *cmd, const char *s1, const char *s2, char *err)
{
    tb_ctl_request_t req;
    memset(&req, 0, sizeof req);
    snprintf(req.cmd, sizeof req.cmd, "%s", cmd);
    if (s1 != NULL) {
        assert_int_equal(tb_ctl_request_add_stream(&req, s1), 0);
    }
    if (s2 != NULL) {
        assert_int_equal(tb_ctl_request_add_stream(&req, s2), 0);
    }
    uint8_t buf[4096];
    size_t len = 0;
    assert_int_equal(tb_ctl_request_encode(&req, buf, sizeof buf, &len), 0);
    return s_raw(f, buf, len, err);
}

static void test_status_of_an_idle_collector(void **state)
{
    fixture_t *f = *state;
    char err[256];
    json_t *d = s_ask(f, "status", NULL, NULL, err);
    assert_non_null(d);
    assert_int_equal(json_array_size(json_object_get(d, "streams")), 0);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(d, "limits"), "max_streams")), 2);
    assert_non_null(json_object_get(d, "collector"));
    assert_true(json_is_null(json_object_get(d, "database"))); /* none configured */
    json_decref(d);
}

static void test_streams_take_slots_and_forget_frees_them(void **state)
{
    fixture_t *f = *state;
    char err[256];
    json_t *d = s_ask(f, "start", "a", "b", err);
    assert_non_null(d);
    assert_int_equal(json_array_size(json_object_get(d, "started")), 2);
    /* Nobody offers them: started all the same, with a warning each. */
    assert_int_equal(json_array_size(json_object_get(d, "warnings")), 2);
    assert_non_null(strstr(json_string_value(json_array_get(json_object_get(d, "warnings"), 0)),
                           "no probe offers"));
    json_decref(d);
    d = s_ask(f, "stats", "a", NULL, err);
    assert_non_null(d);
    assert_string_equal(json_string_value(json_object_get(d, "state")), "waiting");
    assert_int_equal(json_integer_value(json_object_get(d, "packets")), 0);
    json_decref(d);
    /* Both slots taken by streams still measured: a third is refused. */
    assert_null(s_ask(f, "start", "c", NULL, err));
    assert_non_null(strstr(err, "c"));
    /* Stopped and forgotten: the slot is free again. */
    d = s_ask(f, "stop", "a", NULL, err);
    assert_non_null(d);
    json_decref(d);
    d = s_ask(f, "forget", "a", NULL, err);
    assert_non_null(d);
    json_decref(d);
    assert_null(s_ask(f, "stats", "a", NULL, err));
    assert_non_null(strstr(err, "unknown stream 'a'"));
    d = s_ask(f, "start", "c", NULL, err);
    assert_non_null(d);
    json_decref(d);
    d = s_ask(f, "status", NULL, NULL, err);
    assert_int_equal(json_array_size(json_object_get(d, "streams")), 2);
    json_decref(d);
}

static void test_refusals(void **state)
{
    fixture_t *f = *state;
    char err[256];
    assert_null(s_ask(f, "stats", NULL, NULL, err));
    assert_non_null(strstr(err, "exactly one stream"));
    assert_null(s_ask(f, "stats", "nosuch", NULL, err));
    assert_non_null(strstr(err, "unknown stream 'nosuch'"));
    assert_null(s_ask(f, "forget", "nosuch", NULL, err));
    assert_null(s_ask(f, "db", NULL, NULL, err));
    assert_non_null(strstr(err, "no database"));
    /* Malformed and unknown requests get an error reply each. */
    static const uint8_t junk[] = {0xc1, 0x00, 0xff};
    assert_null(s_raw(f, junk, sizeof junk, err));
    assert_null(s_raw(f, junk, 0, err));
    tb_ctl_request_t req;
    memset(&req, 0, sizeof req);
    snprintf(req.cmd, sizeof req.cmd, "explode");
    uint8_t buf[256];
    size_t len = 0;
    if (tb_ctl_request_encode(&req, buf, sizeof buf, &len) == 0) {
        assert_null(s_raw(f, buf, len, err));
        assert_non_null(strstr(err, "explode"));
    }
    /* The collector still answers. */
    json_t *d = s_ask(f, "status", NULL, NULL, err);
    assert_non_null(d);
    json_decref(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_status_of_an_idle_collector, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_streams_take_slots_and_forget_frees_them, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_refusals, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
