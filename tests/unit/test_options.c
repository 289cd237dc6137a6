/* test_options — the option table (tb_options): every type of option with
 * its range, repeatable options, a configuration file, the environment and
 * the command line in that order of strength, unknown options and missing
 * values refused with one line, words, setters, --help listing every option
 * and --print-config their defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tb_options.h"
#include "tb_secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const char *name;
    const char *peers[3];
    size_t npeers;
    uint32_t count;
    size_t big;
    int small;
    double speed;
    int level;
    int fast;
    int twice; /* set by a setter: the number, doubled */
    const char *words[4];
    size_t nwords;
    const char *n;
} cfg_t;

static int s_set_twice(void *cfg, const tb_option_t *opt, const tb_option_value_t *v, char *err,
                       size_t errsize)
{
    (void)opt;
    if (v->u == 13) {
        snprintf(err, errsize, "13 is unlucky");
        return TB_EINVAL;
    }
    ((cfg_t *)cfg)->twice = (int)v->u * 2;
    return 0;
}

static int s_set_stop(void *cfg, const tb_option_t *opt, const tb_option_value_t *v, char *err,
                      size_t errsize)
{
    (void)cfg, (void)opt, (void)v, (void)err, (void)errsize;
    return 42;
}

static void s_show_twice(const void *cfg, char *buf, size_t size)
{
    snprintf(buf, size, "%d (doubled)", ((const cfg_t *)cfg)->twice);
}

static int s_word(void *cfg, const char *word, char *err, size_t errsize)
{
    cfg_t *c = cfg;
    if (c->nwords == 4) {
        snprintf(err, errsize, "too many words");
        return TB_ELIMIT;
    }
    c->words[c->nwords++] = word;
    return 0;
}

#define F(m) TB_OPTION_FIELD(cfg_t, m)

static const tb_option_t s_table[] = {
    {TB_OPTION_TEXT, .help = "things:\n"},
    {TB_OPTION_STRING, "name", .arg = "NAME", F(name), .help = "a name (default {default})"},
    {TB_OPTION_LIST, "peer", .arg = "ENDPOINT", F(peers), TB_OPTION_COUNT(cfg_t, npeers), .max = 3,
     .help = "a peer (repeatable)"},
    {TB_OPTION_U64, "count", .letter = 'c', .arg = "N", F(count), .min = 1, .max = 100,
     .help = "how many, {range} (default {default})"},
    {TB_OPTION_U64, "big", .arg = "N", F(big), .min = 0, .max = UINT64_MAX, .help = "big"},
    {TB_OPTION_U64, "small", .arg = "N", F(small), .min = 5, .max = 9,
     .error = "--small must be five to nine", .help = "small\nsecond line"},
    {TB_OPTION_DOUBLE, "speed", .arg = "X", F(speed), .dmin = 0, .dmax = 10,
     .help = "speed, {range} (default {default})"},
    {TB_OPTION_ENUM, "level", .arg = "LEVEL", F(level), .words = "error|warn|info",
     .help = "level (default {default})"},
    {TB_OPTION_FLAG, "fast", .letter = 'f', F(fast), .help = "go fast"},
    {TB_OPTION_U64, "twice", .arg = "N", .min = 0, .max = 1000, .set = s_set_twice,
     .show = s_show_twice, .help = "doubled"},
    {TB_OPTION_FLAG, "stop", .set = s_set_stop, .flags = TB_OPTION_CLI_ONLY, .help = "stop here"},
    {TB_OPTION_STRING, NULL, .letter = 'n', .arg = "N", F(n), .error = "-n needs a number (-n N)"},
    {TB_OPTION_CONFIG, "config", .arg = "FILE", .flags = TB_OPTION_CLI_ONLY, .help = "a file"},
    {TB_OPTION_PRINT_CONFIG, "print-config", .flags = TB_OPTION_CLI_ONLY, .help = "print"},
    {TB_OPTION_HELP, "help", .letter = 'h', .flags = TB_OPTION_CLI_ONLY, .help = "this text"},
};

#undef F

static const tb_options_spec_t s_spec = {
    .env_prefix = "TBO",
    .usage = "usage: prog [options]\n\n",
    .footer = "the end\n",
    .options = s_table,
    .noptions = TB_OPTION_ARRAY_LEN(s_table),
    .help_column = 20,
};

static cfg_t s_defaults(void)
{
    cfg_t c = {.name = "anon", .count = 10, .small = 7, .speed = 1.5, .level = 2, .twice = 4};
    return c;
}

static char s_path[64];

static void s_write(const char *text)
{
    snprintf(s_path, sizeof s_path, "/tmp/tb-test-options-XXXXXX");
    int fd = mkstemp(s_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* Parse argv (NULL-terminated, without the program) with spec. */
static int s_parse(const tb_options_spec_t *spec, cfg_t *c, tb_options_t **o, char *err,
                   const char *first, ...)
{
    char *argv[32] = {"prog"};
    int argc = 1;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a != NULL && argc < 31; a = va_arg(ap, const char *)) {
        argv[argc++] = (char *)a;
    }
    va_end(ap);
    argv[argc] = NULL;
    *c = s_defaults();
    *o = tb_options_new(spec);
    assert_non_null(*o);
    err[0] = '\0';
    return tb_options_parse(*o, c, argc, argv, err, 512);
}

static void test_every_type(void **state)
{
    (void)state;
    cfg_t c;
    tb_options_t *o;
    char err[512];
    assert_int_equal(s_parse(&s_spec, &c, &o, err, "--name", "x", "--peer", "a", "--peer=b", "-c",
                             "100", "--big", "18446744073709551615", "--small", "9", "--speed",
                             "2.5", "--level", "error", "-f", "--twice", "21", "-n", "3", NULL),
                     0);
    assert_string_equal(c.name, "x");
    assert_int_equal(c.npeers, 2);
    assert_string_equal(c.peers[0], "a");
    assert_string_equal(c.peers[1], "b");
    assert_int_equal(c.count, 100);
    assert_true(c.big == UINT64_MAX);
    assert_int_equal(c.small, 9);
    assert_true(c.speed == 2.5);
    assert_int_equal(c.level, 0);
    assert_int_equal(c.fast, 1);
    assert_int_equal(c.twice, 42);
    assert_string_equal(c.n, "3");
    assert_true(tb_options_is_set(o, "count"));
    assert_true(tb_options_is_set(o, "fast"));
    assert_true(tb_options_is_set(o, "level"));
    assert_false(tb_options_is_set(o, "stop"));
    assert_false(tb_options_print_only(o));
    tb_options_destroy(&o);
    assert_null(o);
    tb_options_destroy(&o); /* NULL is fine */
}

static void test_ranges_and_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *opt, *value, *want;
    } cases[] = {
        {"--count", "0", "--count must be 1-100"},
        {"--count", "101", "--count must be 1-100"},
        {"--count", "-1", "--count must be 1-100"},
        {"--count", "5x", "--count must be 1-100"},
        {"--count", "", "--count must be 1-100"},
        {"--big", "18446744073709551616", "--big must be 0-18446744073709551615"},
        {"--small", "4", "--small must be five to nine"},
        {"--speed", "10.5", "--speed must be 0-10"},
        {"--speed", "-1", "--speed must be 0-10"},
        {"--speed", "nan", "--speed must be 0-10"},
        {"--speed", "1x", "--speed must be 0-10"},
        {"--level", "debug", "--level must be error, warn or info"},
        {"--twice", "13", "13 is unlucky"},
        {"--twice", "1001", "--twice must be 0-1000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cfg_t c;
        tb_options_t *o;
        char err[512];
        assert_int_equal(s_parse(&s_spec, &c, &o, err, cases[i].opt, cases[i].value, NULL),
                         TB_OPTIONS_EVALUE);
        assert_string_equal(err, cases[i].want);
        tb_options_destroy(&o);
    }
    /* A list holds at most max values. */
    cfg_t c;
    tb_options_t *o;
    char err[512];
    assert_int_equal(s_parse(&s_spec, &c, &o, err, "--peer", "a", "--peer", "b", "--peer", "c",
                             "--peer", "d", NULL),
                     TB_OPTIONS_EVALUE);
    assert_string_equal(err, "too many --peer options");
    tb_options_destroy(&o);
}

static void test_unknown_missing_and_words(void **state)
{
    (void)state;
    cfg_t c;
    tb_options_t *o;
    char err[512];
    assert_int_equal(s_parse(&s_spec, &c, &o, err, "--bogus", NULL), TB_OPTIONS_EUNKNOWN);
    assert_string_equal(err, "unknown or incomplete option '--bogus'");
    tb_options_destroy(&o);
    assert_int_equal(s_parse(&s_spec, &c, &o, err, "--count", NULL), TB_OPTIONS_EUNKNOWN);
    assert_string_equal(err, "unknown or incomplete option '--count'");
    tb_options_destroy(&o);
    assert_int_equal(s_parse(&s_spec, &c, &o, err, "-x", NULL), TB_OPTIONS_EUNKNOWN);
    assert_string_equal(err, "unknown option '-x'");
    tb_options_destroy(&o);
    assert_int_equal(s_parse(&s_spec, &c, &o, err, "-n", NULL), TB_OPTIONS_EMISSING);
    assert_string_equal(err, "-n needs a number (-n N)");
    tb_options_destroy(&o);
    assert_int_equal(s_parse(&s_spec, &c, &o, err, "-c", NULL), TB_OPTIONS_EMISSING);
    assert_string_equal(err, "-c needs a value");
    tb_options_destroy(&o);
    /* Without a word callback a word is refused... */
    assert_int_equal(s_parse(&s_spec, &c, &o, err, "-f", "word", NULL), TB_OPTIONS_EUNKNOWN);
    assert_string_equal(err, "unexpected argument 'word'");
    tb_options_destroy(&o);
    /* ... with one, words come in order, options between them, and after
     * "--" everything is a word. */
    tb_options_spec_t spec = s_spec;
    spec.word = s_word;
    assert_int_equal(s_parse(&spec, &c, &o, err, "one", "-f", "two", "--", "-three", NULL), 0);
    assert_int_equal(c.nwords, 3);
    assert_string_equal(c.words[0], "one");
    assert_string_equal(c.words[1], "two");
    assert_string_equal(c.words[2], "-three");
    assert_int_equal(c.fast, 1);
    tb_options_destroy(&o);
    assert_int_equal(s_parse(&spec, &c, &o, err, "a", "b", "c", "d", "e", NULL), TB_OPTIONS_EVALUE);
    assert_string_equal(err, "too many words");
    tb_options_destroy(&o);
    /* --help and a setter's positive code stop parsing. */
    assert_int_equal(s_parse(&s_spec, &c, &o, err, "-h", "--bogus", NULL), TB_OPTIONS_HELP);
    tb_options_destroy(&o);
    assert_int_equal(s_parse(&s_spec, &c, &o, err, "--stop", "--bogus", NULL), 42);
    tb_options_destroy(&o);
}

static void test_file_environment_command_line(void **state)
{
    (void)state;
    s_write("# settings\ncount = 3\npeer = p1\nname = \"from file\"\nfast\nlevel = warn\n");
    setenv("TBO_COUNT", "4", 1);
    setenv("TBO_PEER", "p2", 1);
    setenv("TBO_SPEED", "0.25", 1);
    cfg_t c;
    tb_options_t *o;
    char err[512];
    assert_int_equal(
        s_parse(&s_spec, &c, &o, err, "--config", s_path, "--count", "5", "--peer", "p3", NULL), 0);
    assert_int_equal(c.count, 5);  /* file 3 < environment 4 < command line 5 */
    assert_int_equal(c.npeers, 3); /* a list accumulates */
    assert_string_equal(c.peers[0], "p1");
    assert_string_equal(c.peers[1], "p2");
    assert_string_equal(c.peers[2], "p3");
    assert_string_equal(c.name, "from file");
    assert_int_equal(c.fast, 1);
    assert_int_equal(c.level, 1);
    assert_true(c.speed == 0.25);
    tb_options_destroy(&o);
    /* A bad value names the file and line, or the variable. */
    setenv("TBO_COUNT", "400", 1);
    assert_int_equal(s_parse(&s_spec, &c, &o, err, "--config", s_path, NULL), TB_OPTIONS_EVALUE);
    assert_string_equal(err, "$TBO_COUNT: --count must be 1-100");
    tb_options_destroy(&o);
    unsetenv("TBO_COUNT");
    unsetenv("TBO_PEER");
    unsetenv("TBO_SPEED");
    unlink(s_path);
    s_write("name = x\n\ncount = 0\n");
    assert_int_equal(s_parse(&s_spec, &c, &o, err, "--config", s_path, NULL), TB_OPTIONS_EVALUE);
    char want[128];
    snprintf(want, sizeof want, "%s:3: --count must be 1-100", s_path);
    assert_string_equal(err, want);
    tb_options_destroy(&o);
    unlink(s_path);
    /* An option the command line alone may give is an unknown key in a
     * file, and so is a letter-only option. */
    s_write("stop\n");
    assert_int_equal(s_parse(&s_spec, &c, &o, err, "--config", s_path, NULL), TB_OPTIONS_EVALUE);
    snprintf(want, sizeof want, "%s:1: unknown key 'stop'", s_path);
    assert_string_equal(err, want);
    tb_options_destroy(&o);
    unlink(s_path);
    setenv("TBO_STOP", "1", 1); /* not read from the environment either */
    assert_int_equal(s_parse(&s_spec, &c, &o, err, NULL), 0);
    tb_options_destroy(&o);
    unsetenv("TBO_STOP");
    /* The configuration file from the environment. */
    s_write("count = 8\n");
    setenv("TBO_CONFIG", s_path, 1);
    assert_int_equal(s_parse(&s_spec, &c, &o, err, NULL), 0);
    assert_int_equal(c.count, 8);
    tb_options_destroy(&o);
    unsetenv("TBO_CONFIG");
    unlink(s_path);
}

/* The text fn writes, in a malloc'ed string. */
static char *s_capture(void (*fn)(const tb_options_t *, const void *, FILE *),
                       const tb_options_t *o, const void *defaults)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    if (fn != NULL) {
        fn(o, defaults, f);
    } else {
        tb_options_help(&s_spec, defaults, f);
    }
    fclose(f);
    return text;
}

static void test_help_lists_every_option(void **state)
{
    (void)state;
    cfg_t d = s_defaults();
    char *help = s_capture(NULL, NULL, &d);
    assert_true(strncmp(help, "usage: prog [options]\n\nthings:\n", 31) == 0);
    for (size_t i = 0; i < s_spec.noptions; i++) {
        const tb_option_t *t = &s_table[i];
        if (t->name == NULL || t->type == TB_OPTION_TEXT) {
            continue;
        }
        char line[64];
        snprintf(line, sizeof line, "\n  --%s", t->name);
        assert_non_null(strstr(help, line));
    }
    assert_non_null(strstr(help, "\n  --count N         how many, 1-100 (default 10)\n"));
    assert_non_null(strstr(help, "\n  --small N         small\n                    second line\n"));
    assert_non_null(strstr(help, "speed, 0-10 (default 1.5)"));
    assert_non_null(strstr(help, "level (default info)"));
    assert_non_null(strstr(help, "a name (default anon)"));
    assert_null(strstr(help, "-n N")); /* no help text: not listed */
    assert_true(strlen(help) > 9 && strcmp(help + strlen(help) - 8, "the end\n") == 0);
    free(help);
}

static void test_print_config(void **state)
{
    (void)state;
    cfg_t c;
    tb_options_t *o;
    char err[512];
    assert_int_equal(s_parse(&s_spec, &c, &o, err, "--print-config", "--count", "7", NULL), 0);
    assert_true(tb_options_print_only(o));
    cfg_t d = s_defaults();
    char *text = s_capture(tb_options_print_config, o, &d);
    assert_non_null(strstr(text, "\ncount = \"7\"    # command line\n"));
    assert_null(strstr(text, "count = \"10\"")); /* set: no default shown */
    assert_non_null(strstr(text, "\nname = \"anon\"    # default\n"));
    assert_non_null(strstr(text, "\n# peer    # not set\n"));
    assert_non_null(strstr(text, "\n# fast    # not set\n"));
    assert_non_null(strstr(text, "\nlevel = \"info\"    # default\n"));
    assert_non_null(strstr(text, "\nspeed = \"1.5\"    # default\n"));
    assert_non_null(strstr(text, "\ntwice = \"4 (doubled)\"    # default\n"));
    assert_null(strstr(text, "help"));
    assert_null(strstr(text, "print-config ="));
    free(text);
    tb_options_destroy(&o);
}

static void test_secret_read(void **state)
{
    (void)state;
    char buf[16], err[512];
    s_write("user:pw\nsecond line\n");
    chmod(s_path, 0600);
    assert_int_equal(
        tb_secret_read(s_path, "credentials", TB_SECRET_PRIVATE, buf, sizeof buf, err, sizeof err),
        0);
    assert_string_equal(buf, "user:pw");
    chmod(s_path, 0644);
    assert_int_not_equal(
        tb_secret_read(s_path, "credentials", TB_SECRET_PRIVATE, buf, sizeof buf, err, sizeof err),
        0);
    assert_non_null(strstr(err, "is readable by others (mode 0644)"));
    assert_int_equal(tb_secret_read(s_path, NULL, 0, buf, sizeof buf, err, sizeof err), 0);
    unlink(s_path);
    s_write("0123456789abcdefghij\n"); /* longer than the buffer: refused, not cut */
    assert_int_not_equal(tb_secret_read(s_path, "token", 0, buf, sizeof buf, err, sizeof err), 0);
    assert_non_null(strstr(err, "longer than 14 characters"));
    unlink(s_path);
    s_write("");
    assert_int_not_equal(tb_secret_read(s_path, NULL, 0, buf, sizeof buf, err, sizeof err), 0);
    assert_non_null(strstr(err, "is empty"));
    unlink(s_path);
    assert_int_not_equal(tb_secret_read(s_path, NULL, 0, buf, sizeof buf, err, sizeof err), 0);
    assert_non_null(strstr(err, "cannot read /tmp/tb-test-options-"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type),
        cmocka_unit_test(test_ranges_and_refusals),
        cmocka_unit_test(test_unknown_missing_and_words),
        cmocka_unit_test(test_file_environment_command_line),
        cmocka_unit_test(test_help_lists_every_option),
        cmocka_unit_test(test_print_config),
        cmocka_unit_test(test_secret_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
