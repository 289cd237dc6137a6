/* test_conf — configuration files and environment variables (tb_conf):
 * the order file < environment < command line, every line form (quotes,
 * comments, options without a value), booleans, and each kind of bad line
 * refused with its file and line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tb_conf.h"
#include "tb_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct option s_opts[] = {
    {"probe", required_argument, NULL, 1},
    {"max-streams", required_argument, NULL, 2},
    {"create-db", no_argument, NULL, 3},
    {"config", required_argument, NULL, 4},
    {"print-config", no_argument, NULL, 5},
    {"help", no_argument, NULL, 6},
    {NULL, 0, NULL, 0},
};

static char s_path[64];

static void s_write(const char *text)
{
    snprintf(s_path, sizeof s_path, "/tmp/tb-test-conf-XXXXXX");
    int fd = mkstemp(s_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* Build from a file (and the given command line); returns tb_conf_build's
 * result, err holds the message. */
static int s_build(const char *text, int argc, char **argv, tb_conf_args_t *a, char *err)
{
    s_write(text);
    char *full[16] = {"prog", "--config", s_path};
    for (int i = 0; i < argc && i < 13; i++) {
        full[3 + i] = argv[i];
    }
    int rc = tb_conf_build("TBT", s_opts, 3 + argc, full, a, err, 256);
    unlink(s_path);
    return rc;
}

static void test_order_and_forms(void **state)
{
    (void)state;
    setenv("TBT_MAX_STREAMS", "7", 1);
    setenv("TBT_CREATE_DB", "off", 1);
    tb_conf_args_t a;
    char err[256] = "";
    char *cl[] = {"--max-streams", "9"};
    assert_int_equal(s_build("# comment\n\n  probe = tcp://a:1   # trailing\n"
                             "probe=\"tcp://b:2 # not a comment\"\ncreate-db\nmax-streams = 3\n",
                             2, cl, &a, err),
                     0);
    /* prog, file: --probe x2, --create-db, --max-streams 3; env: --max-streams 7
     * (create-db off adds nothing); command line: --config F --max-streams 9. */
    const char *want[] = {"prog",
                          "--probe",
                          "tcp://a:1",
                          "--probe",
                          "tcp://b:2 # not a comment",
                          "--create-db",
                          "--max-streams",
                          "3",
                          "--max-streams",
                          "7",
                          "--config",
                          NULL,
                          "--max-streams",
                          "9"};
    assert_int_equal(a.argc, 14);
    for (int i = 0; i < 14; i++) {
        if (want[i] != NULL) {
            assert_string_equal(a.argv[i], want[i]);
        }
    }
    assert_null(a.argv[14]);
    assert_non_null(strstr(tb_conf_origin(&a, 2), ":3: "));
    assert_string_equal(tb_conf_origin(&a, 9), "$TBT_MAX_STREAMS: ");
    assert_string_equal(tb_conf_origin(&a, 13), "");
    tb_conf_free(&a);
    unsetenv("TBT_MAX_STREAMS");
    unsetenv("TBT_CREATE_DB");
}

static void test_bad_lines(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"probe = x\nflows = 3\n", ":2: unknown key 'flows'"},
        {"probe\n", ":1: 'probe' needs a value"},
        {"create-db = maybe\n", ":1: 'create-db' is on or off"},
        {"probe = \"x\n", ":1: unterminated quote"},
        {"probe = \"x\" y\n", ":1: unexpected text after the quoted value"},
        {"probe x\n", ":1: expected 'key = value' or 'key'"},
        {"probe =   # nothing\n", ":1: empty value"},
        {"help\n", ":1: unknown key 'help'"},
        {"config = other\n", ":1: unknown key 'config'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tb_conf_args_t a;
        char err[256] = "";
        assert_int_equal(s_build(cases[i].text, 0, NULL, &a, err), TB_EINVAL);
        if (strstr(err, cases[i].want) == NULL || strstr(err, "/tmp/tb-test-conf-") == NULL) {
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].want);
        }
        assert_null(a.argv);
    }
}

static void test_long_line_and_missing_file(void **state)
{
    (void)state;
    char *text = malloc(6000);
    assert_non_null(text);
    memset(text, 'a', 5000);
    strcpy(text + 5000, " = 1\n");
    tb_conf_args_t a;
    char err[256] = "";
    assert_int_equal(s_build(text, 0, NULL, &a, err), TB_ELIMIT);
    assert_non_null(strstr(err, ":1: line longer than"));
    free(text);
    char *argv[] = {"prog", "--config=/nonexistent/tapbus.conf"};
    assert_int_equal(tb_conf_build("TBT", s_opts, 2, argv, &a, err, sizeof err), TB_EIO);
    assert_non_null(strstr(err, "cannot read configuration /nonexistent/tapbus.conf"));
}

static void test_config_from_environment_and_print(void **state)
{
    (void)state;
    s_write("probe = tcp://c:3\n");
    setenv("TBT_CONFIG", s_path, 1);
    char *argv[] = {"prog", "--print-config", "--create-db"};
    tb_conf_args_t a;
    char err[256] = "";
    assert_int_equal(tb_conf_build("TBT", s_opts, 3, argv, &a, err, sizeof err), 0);
    unsetenv("TBT_CONFIG");
    unlink(s_path);
    assert_true(a.print_only);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    tb_conf_print(&a, f);
    fclose(f);
    assert_non_null(strstr(out, "probe = \"tcp://c:3\"    # /tmp/tb-test-conf-"));
    assert_non_null(strstr(out, "create-db    # command line"));
    assert_null(strstr(out, "print-config ="));
    free(out);
    tb_conf_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_forms),
        cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_long_line_and_missing_file),
        cmocka_unit_test(test_config_from_environment_and_print),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
