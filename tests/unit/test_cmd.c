/* test_cmd — tapbusctl's command table and the requests its words make
 * (controller/cmd.c), without a collector: every command found and its
 * usage, the streams each takes, -n and its range, db's forms, stream names
 * refused, the limit on words; and the usage error's exit code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cmd.h"
#include "fanout.h"
#include "tb_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The request of `name words...` with -n n_text (NULL: none); *n starts at
 * 10 (tapbusctl's default). Returns tb_cmd_request's result. */
static int s_request(const char *name, const char *n_text, tb_ctl_request_t *req, uint64_t *n,
                     char *msg, size_t size, const char *const *words, size_t nwords)
{
    const tb_cmd_t *c = tb_cmd_find(name);
    assert_non_null(c);
    tb_cmd_words_t w;
    memset(&w, 0, sizeof w);
    for (size_t i = 0; i < nwords; i++) {
        assert_int_equal(tb_cmd_words_add(&w, words[i], msg, size), 0);
    }
    memset(req, 0, sizeof *req);
    *n = 10;
    msg[0] = '\0';
    return tb_cmd_request(c, &w, n_text, req, n, msg, size);
}

#define WORDS(...)                                                                                 \
    (const char *const[]){__VA_ARGS__},                                                            \
        sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)
#define NONE NULL, 0

static void test_table_and_usage(void **state)
{
    (void)state;
    static const char *const names[] = {"start",   "stop", "forget", "status", "stats", "probes",
                                        "streams", "top",  "serve",  "keygen", "db"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const tb_cmd_t *c = tb_cmd_find(names[i]);
        assert_non_null(c);
        assert_string_equal(c->name, names[i]);
        assert_true(c->help[0] != '\0' && c->help[strlen(c->help) - 1] == '\n');
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        assert_non_null(f);
        tb_cmd_usage(c, f);
        fclose(f);
        char want[64];
        snprintf(want, sizeof want, "[--timeout MS] %s", names[i]);
        assert_non_null(strstr(out, want));
        assert_non_null(strstr(out, c->help));
        free(out);
    }
    assert_null(tb_cmd_find("help")); /* help is tapbusctl's, not a command's */
    assert_null(tb_cmd_find("stat"));
    assert_null(tb_cmd_find(""));
    assert_int_equal(tb_cmd_usage_error("a test of the usage error"), TB_CALL_USAGE);
}

static void test_streams_each_command_takes(void **state)
{
    (void)state;
    tb_ctl_request_t r;
    uint64_t n;
    char msg[256];
    assert_int_equal(s_request("start", NULL, &r, &n, msg, sizeof msg, WORDS("a", "b.c")), 0);
    assert_string_equal(r.cmd, "start");
    assert_int_equal(r.nstreams, 2);
    assert_string_equal(r.streams[1], "b.c");
    assert_int_equal(s_request("start", NULL, &r, &n, msg, sizeof msg, NONE), TB_EINVAL);
    assert_string_equal(msg, "start needs at least one stream");
    assert_int_equal(s_request("forget", NULL, &r, &n, msg, sizeof msg, NONE), TB_EINVAL);
    assert_string_equal(msg, "forget needs at least one stream");
    assert_int_equal(s_request("stop", NULL, &r, &n, msg, sizeof msg, NONE), 0); /* all */
    assert_int_equal(r.nstreams, 0);
    assert_int_equal(s_request("stats", NULL, &r, &n, msg, sizeof msg, WORDS("a", "b")), TB_EINVAL);
    assert_string_equal(msg, "stats needs exactly one stream");
    assert_int_equal(s_request("status", NULL, &r, &n, msg, sizeof msg, WORDS("a")), TB_EINVAL);
    assert_string_equal(msg, "status takes no stream");
    /* probes is status seen from the probes' side. */
    assert_int_equal(s_request("probes", NULL, &r, &n, msg, sizeof msg, NONE), 0);
    assert_string_equal(r.cmd, "status");
    assert_int_equal(s_request("streams", NULL, &r, &n, msg, sizeof msg, NONE), 0);
    assert_string_equal(r.cmd, "streams");
    /* A name the protocol refuses. */
    assert_int_equal(s_request("start", NULL, &r, &n, msg, sizeof msg, WORDS("ok", "bad name")),
                     TB_EINVAL);
    assert_non_null(strstr(msg, "invalid stream name 'bad name' (1-"));
}

static void test_count(void **state)
{
    (void)state;
    tb_ctl_request_t r;
    uint64_t n;
    char msg[256];
    assert_int_equal(s_request("top", NULL, &r, &n, msg, sizeof msg, WORDS("a")), 0);
    assert_int_equal(n, 10); /* the default stays */
    assert_string_equal(r.cmd, "top");
    assert_int_equal(s_request("top", "64", &r, &n, msg, sizeof msg, WORDS("a")), 0);
    assert_int_equal(n, 64);
    assert_int_equal(s_request("top", "65", &r, &n, msg, sizeof msg, WORDS("a")), TB_EINVAL);
    assert_string_equal(msg, "-n needs a number of flows and hosts, 1-64");
    assert_int_equal(s_request("top", "0", &r, &n, msg, sizeof msg, WORDS("a")), TB_EINVAL);
    assert_int_equal(s_request("top", "5x", &r, &n, msg, sizeof msg, WORDS("a")), TB_EINVAL);
    assert_int_equal(s_request("stats", "5", &r, &n, msg, sizeof msg, WORDS("a")), TB_EINVAL);
    assert_string_equal(msg, "-n is an option of top and db");
}

static void test_db(void **state)
{
    (void)state;
    tb_ctl_request_t r;
    uint64_t n;
    char msg[256];
    assert_int_equal(s_request("db", NULL, &r, &n, msg, sizeof msg, NONE), 0);
    assert_string_equal(r.cmd, "db");
    assert_int_equal(r.nargs, 1);
    assert_string_equal(r.args[0], "measurements");
    assert_int_equal(s_request("db", NULL, &r, &n, msg, sizeof msg, WORDS("measurements")), 0);
    assert_string_equal(r.args[0], "measurements");
    assert_int_equal(s_request("db", NULL, &r, &n, msg, sizeof msg, WORDS("measurements", "s")),
                     TB_EINVAL);
    assert_string_equal(msg, "db measurements takes no stream");
    assert_int_equal(
        s_request("db", "10000", &r, &n, msg, sizeof msg, WORDS("tapbus_traffic", "s1")), 0);
    assert_int_equal(r.nargs, 3);
    assert_string_equal(r.args[0], "points");
    assert_string_equal(r.args[1], "tapbus_traffic");
    assert_string_equal(r.args[2], "10000");
    assert_int_equal(r.nstreams, 1);
    assert_string_equal(r.streams[0], "s1");
    assert_int_equal(s_request("db", NULL, &r, &n, msg, sizeof msg, WORDS("tapbus_loss")), 0);
    assert_string_equal(r.args[2], "10");
    assert_int_equal(r.nstreams, 0);
    assert_int_equal(s_request("db", "10001", &r, &n, msg, sizeof msg, WORDS("m")), TB_EINVAL);
    assert_string_equal(msg, "-n needs a number of points, 1-10000");
    assert_int_equal(s_request("db", NULL, &r, &n, msg, sizeof msg, WORDS("m", "s", "t")),
                     TB_EINVAL);
    assert_string_equal(msg, "db takes a measurement and at most one stream");
    char longname[80];
    memset(longname, 'm', 65);
    longname[65] = '\0';
    assert_int_equal(s_request("db", NULL, &r, &n, msg, sizeof msg, WORDS(longname)), TB_EINVAL);
    assert_string_equal(msg, "measurement name too long");
    assert_int_equal(s_request("db", NULL, &r, &n, msg, sizeof msg, WORDS("m", "bad name")),
                     TB_EINVAL);
    assert_string_equal(msg, "invalid stream name 'bad name'");
}

static void test_words_limit(void **state)
{
    (void)state;
    tb_cmd_words_t w;
    memset(&w, 0, sizeof w);
    char msg[128] = "";
    for (int i = 0; i < TB_CTL_MAX_STREAMS; i++) {
        assert_int_equal(tb_cmd_words_add(&w, "s", msg, sizeof msg), 0);
    }
    assert_int_equal(tb_cmd_words_add(&w, "one too many", msg, sizeof msg), TB_ELIMIT);
    assert_int_equal(w.n, TB_CTL_MAX_STREAMS);
    assert_non_null(strstr(msg, "too many streams in one command (at most 64)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_and_usage), cmocka_unit_test(test_streams_each_command_takes),
        cmocka_unit_test(test_count),           cmocka_unit_test(test_db),
        cmocka_unit_test(test_words_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
