/* tapbusctl — start, stop and inspect measurements on a collector.
 *
 * Exit codes: 0 success; 1 the collector refused the command (its reason is
 * printed); 2 usage error; 3 the collector did not answer within --timeout
 * (commands that change nothing are retried on a new connection within it);
 * 4 the reply was malformed. With several collectors (fanout.h) a partial
 * answer is printed and the exit code is that of the first failure.
 *
 * The options are a table (tb_options); main() reads them, and s_run looks
 * the command up (cmd.h) and hands it over: keygen (keygen.h), serve
 * (serve.h), or a request to the collectors (cmd_run.h). */
#include "cmd.h"
#include "cmd_run.h"
#include "fanout.h"
#include "keygen.h"
#include "serve.h"

#include "tb_ctl.h"
#include "tb_curve.h"
#include "tb_err.h"
#include "tb_options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --curve-key and --curve-server-key into the fanout: both or neither. */
static int s_curve_options(tb_fanout_t *fan, const char *key, const char *server)
{
    char msg[600];
    if ((key == NULL) != (server == NULL)) {
        return tb_cmd_usage_error(key == NULL
                                      ? "--curve-server-key needs --curve-key (this client's "
                                        "secret certificate)"
                                      : "--curve-key needs --curve-server-key (the "
                                        "collectors' public certificate)");
    }
    if (key == NULL) {
        return 0;
    }
    tb_curve_cert_t srv;
    if (tb_curve_cert_load(key, 1, &fan->curve_own, msg, sizeof msg) != 0 ||
        tb_curve_cert_load(server, 0, &srv, msg, sizeof msg) != 0) {
        fprintf(stderr, "tapbusctl: %s\n", msg);
        return TB_CALL_USAGE;
    }
    if (!tb_curve_available()) {
        fprintf(stderr, "tapbusctl: this libzmq has no CURVE support\n");
        return TB_CALL_USAGE;
    }
    memcpy(fan->curve_server, srv.public_key, sizeof fan->curve_server);
    fan->curve = 1;
    return 0;
}

/* Everything the options set, and the words: the command and its
 * arguments. */
typedef struct {
    tb_fanout_t fan;
    int fan_level; /* where the list came from: -1 none, 0 file, 1 environment, 2 command line */
    int json_out;
    uint64_t timeout, retries;
    tb_serve_opts_t serve;
    int serve_option; /* a serve option on the command line */
    const char *curve_key, *curve_server;
    const char *n_text; /* -n */
    const char *cmd;
    tb_cmd_words_t words;
    int command_help; /* `COMMAND --help` */
} s_opts_t;

/* --collector: repeated, they add up; the command line's list replaces the
 * environment's, which replaces the file's. */
static int s_set_collector(void *cfg, const tb_option_t *opt, const tb_option_value_t *v, char *err,
                           size_t errsize)
{
    (void)opt;
    s_opts_t *o = cfg;
    int level = v->origin[0] == '\0' ? 2 : v->origin[0] == '$' ? 1 : 0;
    if (level > o->fan_level) {
        o->fan.n = 0;
        o->fan_level = level;
    }
    return tb_fanout_add(&o->fan, v->arg, err, errsize);
}

static void s_show_collector(const void *cfg, char *buf, size_t size)
{
    (void)cfg;
    const char *env = getenv("TAPBUS_COLLECTOR");
    snprintf(buf, size, "%s", env != NULL && env[0] != '\0' ? env : "tcp://127.0.0.1:5557");
}

/* serve's options: from a file or the environment they wait for serve; on
 * the command line of another command they are a mistake. */
static int s_set_serve(void *cfg, const tb_option_t *opt, const tb_option_value_t *v, char *err,
                       size_t errsize)
{
    (void)err, (void)errsize;
    s_opts_t *o = cfg;
    memcpy((char *)cfg + opt->offset, &v->arg, sizeof v->arg);
    o->serve_option |= v->origin[0] == '\0';
    return 0;
}

static int s_set_help(void *cfg, const tb_option_t *opt, const tb_option_value_t *v, char *err,
                      size_t errsize)
{
    (void)opt, (void)v, (void)err, (void)errsize;
    s_opts_t *o = cfg;
    if (o->cmd == NULL) {
        return TB_OPTIONS_HELP;
    }
    o->command_help = 1;
    return 0;
}

/* The command, then its arguments, in order. */
static int s_word(void *cfg, const char *word, char *err, size_t errsize)
{
    s_opts_t *o = cfg;
    if (o->cmd == NULL) {
        o->cmd = word;
        return 0;
    }
    return tb_cmd_words_add(&o->words, word, err, errsize);
}

/* The defaults: --timeout 3000, --retries 2, no collector yet. */
static const s_opts_t s_defaults = {.fan_level = -1, .timeout = 3000, .retries = 2};

#define F(m) TB_OPTION_FIELD(s_opts_t, m)

static const tb_option_t s_options[] = {
    {TB_OPTION_STRING, "collector", .arg = "ENDPOINT", .set = s_set_collector,
     .show = s_show_collector,
     .help = "control endpoint (default $TAPBUS_COLLECTOR or\n"
             "tcp://127.0.0.1:5557); repeat it or list several\n"
             "(commas) to talk to several collectors at once: a\n"
             "stream lives on one, answers are merged"},
    {TB_OPTION_FLAG, "json", F(json_out), .help = "print the reply as one JSON document"},
    {TB_OPTION_U64, "timeout", .arg = "MS", F(timeout), .min = 1, .max = 3600000,
     .error = "--timeout must be 1-3600000 milliseconds",
     .help = "give up after MS milliseconds, {range} (default {default})"},
    {TB_OPTION_CONFIG, "config", .arg = "FILE", .flags = TB_OPTION_CLI_ONLY,
     .help = "options from FILE (or $TAPBUSCTL_CONFIG), e.g.\n"
             "'collector = tcp://central:5557'; TAPBUSCTL_NAME\n"
             "variables override it, the command line both"},
    {TB_OPTION_PRINT_CONFIG, "print-config", .flags = TB_OPTION_CLI_ONLY,
     .help = "print the options in effect, where they came from, and\n"
             "the defaults of the rest"},
    {TB_OPTION_U64, "retries", .arg = "N", F(retries), .min = 0, .max = 10,
     .help = "ask status, stats and probes again N times with a new\n"
             "connection within the timeout, {range} (default {default})"},
    {TB_OPTION_STRING, "curve-key", .arg = "FILE", F(curve_key),
     .help = "this client's secret certificate (NAME_secret from\n"
             "keygen): CURVE to the collectors (docs/security.md)"},
    {TB_OPTION_STRING, "curve-server-key", .arg = "FILE", F(curve_server),
     .help = "the collectors' public certificate (with\n--curve-key)"},
    {TB_OPTION_STRING, "http", .arg = "ADDR:PORT", F(serve.http), .set = s_set_serve,
     .help = "serve: where the HTTP gateway listens"},
    {TB_OPTION_STRING, "credentials", .arg = "FILE", F(serve.credentials), .set = s_set_serve,
     .help = "serve: USER:PASSWORD on the file's first line (the\n"
             "file readable by its owner only, e.g. mode 0600)"},
    {TB_OPTION_STRING, "tls-cert", .arg = "FILE", F(serve.tls_cert), .set = s_set_serve,
     .help = "serve: HTTPS only, with this PEM certificate (chain)"},
    {TB_OPTION_STRING, "tls-key", .arg = "FILE", F(serve.tls_key), .set = s_set_serve,
     .help = "serve: the PEM private key of --tls-cert"},
    /* top and db: -n N, checked against the command's range later. */
    {TB_OPTION_STRING, NULL, .letter = 'n', .arg = "N", F(n_text),
     .error = "-n needs a number (-n N)"},
    {TB_OPTION_HELP, "help", .letter = 'h', .set = s_set_help, .flags = TB_OPTION_CLI_ONLY,
     .help = "this text"},
};

#undef F

static const tb_options_spec_t s_spec = {
    .env_prefix = "TAPBUSCTL",
    .usage = "usage: tapbusctl [--collector ENDPOINT] [--json] [--timeout MS] COMMAND [ARGS]\n"
             "\n"
             "commands:\n"
             "  start STREAM...    start measuring streams (subscribes; file sources begin)\n"
             "  stop [STREAM...]   stop streams (all when none is named); statistics are kept\n"
             "  forget STREAM...   drop stopped, finished, failed or never-fed streams and\n"
             "                     their statistics (a typo does not stay forever)\n"
             "  status             collector, streams, probes and loss at a glance\n"
             "  stats STREAM       the statistics of one stream\n"
             "  probes             every probe heard, its streams and drops\n"
             "  streams            the streams probes offer, and who measures them\n"
             "  top STREAM [-n N]  live view: rates, top flows and hosts, protocols, loss\n"
             "  serve --http ADDR:PORT  HTTP gateway for curl (basic authentication)\n"
             "  db [MEASUREMENT [STREAM] [-n N]]\n"
             "                     what the database holds: its measurements, or the\n"
             "                     latest N points of one (of one stream)\n"
             "  keygen NAME        write a CURVE key pair: NAME (public certificate) and\n"
             "                     NAME_secret (mode 0600), as CZMQ's zcert_save does\n"
             "  help [COMMAND]     this text, or a command's (also: COMMAND --help)\n"
             "\n"
             "options (before or after the command; '--' ends them, for a stream name\n"
             "that begins with '-'):\n",
    .footer = "\n"
              "exit codes: 0 ok, 1 command refused, 2 usage error, 3 collector unreachable\n"
              "            (with several: one of them, the others' answer printed),\n"
              "            4 malformed reply\n",
    .options = s_options,
    .noptions = TB_OPTION_ARRAY_LEN(s_options),
    .help_column = 24,
    .word = s_word,
};

static void s_usage(FILE *out)
{
    tb_options_help(&s_spec, &s_defaults, out);
}

/* After the options: the command, checked and run. Returns the exit code. */
static int s_run(s_opts_t *o, const tb_options_t *opts)
{
    char msg[1024];
    tb_fanout_t *fanp = &o->fan;
    const char *cmd = o->cmd;
    const tb_cmd_words_t *wp = &o->words;
    const char *env = getenv("TAPBUS_COLLECTOR");
    if (fanp->n == 0 &&
        tb_fanout_add(fanp, env != NULL && env[0] != '\0' ? env : "tcp://127.0.0.1:5557", msg,
                      sizeof msg) != 0) {
        fprintf(stderr, "tapbusctl: $TAPBUS_COLLECTOR: %s\n", msg);
        return TB_CALL_USAGE;
    }
    fanp->timeout_ms = (int)o->timeout;
    fanp->attempts = (int)o->retries + 1;
    fanp->pinned = -1;
    if (tb_options_print_only(opts) && tb_options_is_set(opts, "print-config")) {
        tb_options_print_config(opts, &s_defaults, stdout);
        return 0;
    }
    if (cmd == NULL) {
        return tb_cmd_usage_error("no command given");
    }
    if (strcmp(cmd, "help") == 0) {
        const tb_cmd_t *asked = wp->n > 0 ? tb_cmd_find(wp->word[0]) : NULL;
        if (wp->n > 0 && asked == NULL) {
            snprintf(msg, sizeof msg, "unknown command '%s'", wp->word[0]);
            return tb_cmd_usage_error(msg);
        }
        if (asked != NULL) {
            tb_cmd_usage(asked, stdout);
        } else {
            s_usage(stdout);
        }
        return 0;
    }
    const tb_cmd_t *command = tb_cmd_find(cmd);
    if (command == NULL) {
        snprintf(msg, sizeof msg, "unknown command '%s'", cmd);
        return tb_cmd_usage_error(msg);
    }
    if (o->command_help) {
        tb_cmd_usage(command, stdout);
        return 0;
    }
    if (strcmp(cmd, "keygen") == 0) {
        return tb_keygen_run(wp);
    }
    int curve_rc = s_curve_options(fanp, o->curve_key, o->curve_server);
    if (curve_rc != 0) {
        return curve_rc;
    }
    if (strcmp(cmd, "serve") == 0) {
        return tb_serve_run(&o->serve, wp, fanp);
    }
    if (o->serve_option) {
        return tb_cmd_usage_error("--http, --credentials, --tls-cert and --tls-key are options of "
                                  "serve");
    }
    tb_ctl_request_t req;
    memset(&req, 0, sizeof req);
    uint64_t n = 10;
    if (tb_cmd_request(command, wp, o->n_text, &req, &n, msg, sizeof msg) != 0) {
        return tb_cmd_usage_error(msg);
    }
    return tb_cmd_run(fanp, cmd, &req, n, o->json_out);
}

int main(int argc, char **argv)
{
    static s_opts_t o; /* large (the fanout): not on the stack */
    o = s_defaults;
    char msg[1024];
    tb_options_t *opts = tb_options_new(&s_spec);
    if (opts == NULL) {
        fprintf(stderr, "tapbusctl: out of memory\n");
        return TB_CALL_USAGE;
    }
    /* Options from the configuration file ($TAPBUSCTL_CONFIG), then the
     * environment (TAPBUSCTL_COLLECTOR, ...), then the command line; options
     * before and after the command (`tapbusctl status --json`), the other
     * words in order; "--" ends the options, so a stream name may begin with
     * '-'. */
    int rc = tb_options_parse(opts, &o, argc, argv, msg, sizeof msg);
    if (rc == TB_OPTIONS_HELP) {
        s_usage(stdout);
        rc = 0;
    } else if (rc < 0) {
        if (rc == TB_OPTIONS_EUNKNOWN && o.cmd != NULL) {
            strncat(msg, "; '--' before a stream name that begins with '-'",
                    sizeof msg - strlen(msg) - 1);
        }
        rc = tb_cmd_usage_error(msg);
    } else {
        rc = s_run(&o, opts);
    }
    tb_options_destroy(&opts);
    return rc;
}
