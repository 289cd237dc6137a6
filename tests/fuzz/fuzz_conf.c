/* libFuzzer target: a program's options from a configuration file and the
 * environment, as tb_options reads them (through tb_conf) with --config
 * FILE. The input is the file's text; after its first NUL byte come
 * environment variables, one a line, NAME=VALUE, seen as TBFUZZ_NAME (the
 * program's prefix) for this input only (the process's own environment is
 * out of sight meanwhile). The table is a collector-like one
 * with every kind of option: a list, strings, numbers stored in 4 and 1
 * bytes, a real, words, flags, a setter that refuses some values, and one
 * for the command line only.
 *
 * What must hold besides no crash, leak or UB:
 *   - a refusal is TB_OPTIONS_EVALUE (a file or the environment never makes
 *     an unknown option or a stray word) with one line that names where the
 *     value came from (the file, or $TBFUZZ_NAME);
 *   - what is accepted is in range: numbers within their bounds, words
 *     among theirs, a list within its length, the setter's value as it
 *     checks it, strings without a line end; an option whose value differs
 *     from its default is reported as set;
 *   - --print-config prints a comment or a known option on every line. */
#include "tb_err.h"
#include "tb_options.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

extern char **environ;

#define S_PREFIX   "TBFUZZ"
#define S_MAX_ENV  32 /* variables one input may set */
#define S_NAME_MAX 64 /* bytes of a variable's name after the prefix */
#define S_PROBES   8
#define S_ID_MAX   15

typedef struct {
    const char *probe[S_PROBES];
    size_t nprobes;
    const char *control;
    uint32_t max_streams;
    const char *influx_url;
    int create_db;
    int no_gzip;
    int log_level;
    const char *state_dir;
    double lateness;
    uint8_t top;
    char id[S_ID_MAX + 1];
    int verbose;
} s_cfg_t;

/* --id: 1-15 characters, none of them a space (TB_EINVAL otherwise). */
static int s_set_id(void *cfg, const tb_option_t *opt, const tb_option_value_t *v, char *err,
                    size_t errsize)
{
    (void)opt;
    size_t n = strlen(v->arg);
    if (n == 0 || n > S_ID_MAX || strchr(v->arg, ' ') != NULL) {
        snprintf(err, errsize, "--id must be 1-%d characters without spaces", S_ID_MAX);
        return TB_EINVAL;
    }
    memcpy(((s_cfg_t *)cfg)->id, v->arg, n + 1);
    return 0;
}

static void s_show_id(const void *cfg, char *buf, size_t size)
{
    snprintf(buf, size, "%s", ((const s_cfg_t *)cfg)->id);
}

#define F(m) TB_OPTION_FIELD(s_cfg_t, m)

static const tb_option_t s_table[] = {
    {TB_OPTION_TEXT, .help = "options:\n"},
    {TB_OPTION_LIST, "probe", .arg = "ENDPOINT", F(probe), TB_OPTION_COUNT(s_cfg_t, nprobes),
     .max = S_PROBES, .help = "a probe"},
    {TB_OPTION_STRING, "control", .arg = "ENDPOINT", F(control), .help = "control"},
    {TB_OPTION_U64, "max-streams", .arg = "N", F(max_streams), .min = 1, .max = 65536,
     .help = "streams, {range} (default {default})"},
    {TB_OPTION_STRING, "influx-url", .arg = "URL", F(influx_url), .help = "database"},
    {TB_OPTION_FLAG, "influx-create-db", F(create_db), .help = "create it"},
    {TB_OPTION_FLAG, "influx-no-gzip", F(no_gzip), .help = "no gzip"},
    {TB_OPTION_ENUM, "log-level", .arg = "LEVEL", F(log_level), .words = "error|warn|info|debug",
     .help = "log level (default {default})"},
    {TB_OPTION_STRING, "state-dir", .arg = "DIR", F(state_dir), .help = "state"},
    {TB_OPTION_DOUBLE, "lateness", .arg = "S", F(lateness), .dmin = 0, .dmax = 60,
     .help = "lateness, {range}"},
    {TB_OPTION_U64, "top", .letter = 't', .arg = "N", F(top), .min = 1, .max = 64, .help = "top N"},
    {TB_OPTION_STRING, "id", .arg = "ID", .set = s_set_id, .show = s_show_id, .help = "an id"},
    {TB_OPTION_FLAG, "verbose", .letter = 'v', F(verbose), .flags = TB_OPTION_CLI_ONLY,
     .help = "the command line only"},
    {TB_OPTION_CONFIG, "config", .arg = "FILE", .flags = TB_OPTION_CLI_ONLY, .help = "a file"},
    {TB_OPTION_PRINT_CONFIG, "print-config", .flags = TB_OPTION_CLI_ONLY, .help = "print"},
    {TB_OPTION_HELP, "help", .letter = 'h', .flags = TB_OPTION_CLI_ONLY, .help = "this text"},
};

#undef F

static const tb_options_spec_t s_spec = {
    .env_prefix = S_PREFIX,
    .usage = "usage: tapbus-fuzz [options]\n",
    .options = s_table,
    .noptions = TB_OPTION_ARRAY_LEN(s_table),
};

static const s_cfg_t s_defaults = {
    .max_streams = 256, .log_level = 2, .lateness = 2.0, .top = 10, .id = "fuzz"};

static char s_path[64];

static void s_remove(void)
{
    unlink(s_path);
}

/* The environment of one input: its second part's lines NAME=VALUE as
 * "TBFUZZ_NAME=VALUE" strings, in place of the process's environment while
 * the options are parsed (getenv reads environ). Not setenv: glibc keeps
 * every value ever set, and a long run would grow without end. */
static char s_env_text[S_MAX_ENV][sizeof S_PREFIX + S_NAME_MAX + 4096];
static char *s_env[S_MAX_ENV + 1];

static void s_env_build(const char *text, size_t len)
{
    size_t n = 0;
    for (const char *p = text, *end = text + len; p < end && n < S_MAX_ENV;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *lend = eol != NULL ? eol : end;
        const char *eq = memchr(p, '=', (size_t)(lend - p));
        if (eq != NULL && eq > p && (size_t)(eq - p) <= S_NAME_MAX &&
            memchr(p, '\0', (size_t)(lend - p)) == NULL) {
            snprintf(s_env_text[n], sizeof s_env_text[n], "%s_%.*s", S_PREFIX, (int)(lend - p), p);
            s_env[n] = s_env_text[n];
            n++;
        }
        p = lend + 1;
    }
    s_env[n] = NULL;
}

/* The option's value in cfg differs from the default's. */
static int s_changed(const tb_option_t *o, const s_cfg_t *cfg)
{
    char now[512], before[512];
    tb_options_default(o, cfg, now, sizeof now);
    tb_options_default(o, &s_defaults, before, sizeof before);
    return strcmp(now, before) != 0;
}

/* Every line of --print-config: "# ...", or a known option's name followed
 * by " = \"" or "    # ". */
static void s_check_printed(char *out)
{
    for (char *line = out, *next; line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL) {
            *next++ = '\0';
        }
        if (strncmp(line, "# ", 2) == 0) {
            continue;
        }
        int known = 0;
        for (size_t i = 0; i < s_spec.noptions && !known; i++) {
            const char *name = s_table[i].name;
            size_t n = name != NULL ? strlen(name) : 0;
            known = n > 0 && strncmp(line, name, n) == 0 &&
                    (strncmp(line + n, " = \"", 4) == 0 || strncmp(line + n, "    # ", 6) == 0);
        }
        if (!known) {
            abort();
        }
    }
}

static void s_check_accepted(const s_cfg_t *c, const tb_options_t *opts)
{
    if (c->nprobes > S_PROBES || c->max_streams < 1 || c->max_streams > 65536 || c->log_level < 0 ||
        c->log_level > 3 || !(c->lateness >= 0 && c->lateness <= 60) || c->top < 1 || c->top > 64 ||
        c->verbose != 0) {
        abort();
    }
    size_t idlen = strnlen(c->id, sizeof c->id);
    if (idlen == 0 || idlen > S_ID_MAX || strchr(c->id, ' ') != NULL) {
        abort();
    }
    const char *strings[S_PROBES + 3] = {c->control, c->influx_url, c->state_dir};
    memcpy(strings + 3, c->probe, sizeof c->probe);
    for (size_t i = 0; i < S_PROBES + 3; i++) {
        if (strings[i] != NULL && strchr(strings[i], '\n') != NULL) {
            abort(); /* a value is one line */
        }
    }
    /* Flags and lists show no default: they are off and empty. */
    if ((c->create_db && !tb_options_is_set(opts, "influx-create-db")) ||
        (c->no_gzip && !tb_options_is_set(opts, "influx-no-gzip")) ||
        (c->nprobes > 0 && !tb_options_is_set(opts, "probe"))) {
        abort();
    }
    for (size_t i = 0; i < s_spec.noptions; i++) {
        const tb_option_t *o = &s_table[i];
        if (o->name != NULL && o->type != TB_OPTION_TEXT && s_changed(o, c) &&
            !tb_options_is_set(opts, o->name)) {
            abort(); /* a value changed by an option nobody set */
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* One file for the whole run, rewritten for each input. */
    if (s_path[0] == '\0') {
        snprintf(s_path, sizeof s_path, "/tmp/tapbus-fuzz-conf-XXXXXX");
        int fd = mkstemp(s_path);
        if (fd < 0) {
            abort();
        }
        close(fd);
        atexit(s_remove);
    }
    const uint8_t *nul = memchr(data, '\0', size);
    size_t flen = nul != NULL ? (size_t)(nul - data) : size;
    FILE *f = fopen(s_path, "wb");
    if (f == NULL || fwrite(data, 1, flen, f) != flen || fclose(f) != 0) {
        abort();
    }
    s_env_build(nul != NULL ? (const char *)nul + 1 : "", nul != NULL ? size - flen - 1 : 0);

    char *argv[] = {"tapbus-fuzz", "--config", s_path, "--print-config", NULL};
    s_cfg_t cfg = s_defaults;
    char err[512];
    err[0] = '\0';
    tb_options_t *opts = tb_options_new(&s_spec);
    if (opts == NULL) {
        abort();
    }
    char **environ_saved = environ;
    environ = s_env;
    int rc = tb_options_parse(opts, &cfg, 4, argv, err, sizeof err);
    environ = environ_saved;
    if (rc != 0) {
        /* A refusal is a bad value, said on one line with its origin. */
        if (rc != TB_OPTIONS_EVALUE || strchr(err, '\n') != NULL ||
            (strncmp(err, s_path, strlen(s_path)) != 0 &&
             strncmp(err, "$" S_PREFIX "_", sizeof S_PREFIX + 1) != 0)) {
            abort();
        }
    } else {
        if (!tb_options_print_only(opts)) {
            abort();
        }
        s_check_accepted(&cfg, opts);
        char *out = NULL;
        size_t outlen = 0;
        FILE *m = open_memstream(&out, &outlen);
        if (m == NULL) {
            abort();
        }
        tb_options_print_config(opts, &s_defaults, m);
        fclose(m);
        s_check_printed(out);
        free(out);
    }
    tb_options_destroy(&opts);
    return 0;
}
