/* tapbusctl — start, stop and inspect measurements on a collector.
 *
 * Exit codes: 0 success; 1 the collector refused the command (its reason is
 * printed); 2 usage error; 3 the collector did not answer within --timeout
 * (commands that change nothing are retried on a new connection within it);
 * 4 the reply was malformed. With several collectors (fanout.h) a partial
 * answer is printed and the exit code is that of the first failure. */
#include "fanout.h"
#include "print.h"
#include "gateway.h"
#include "tb_secret.h"
#include "tls.h"
#include "top.h"

#include "tb_conf.h"
#include "tb_ctl.h"
#include "tb_curve.h"
#include "tb_err.h"
#include "tb_opt.h"
#include "tb_options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

enum {
    EXIT_REFUSED = TB_CALL_REFUSED,
    EXIT_USAGE = TB_CALL_USAGE,
    EXIT_UNREACHABLE = TB_CALL_UNREACHABLE,
    EXIT_BADREPLY = TB_CALL_BADREPLY
};

/* How many streams a command names. */
typedef enum {
    S_ANY,  /* none (all) or several */
    S_SOME, /* at least one */
    S_ONE,  /* exactly one */
    S_NONE, /* none */
    S_OWN   /* words of its own (db, serve, keygen, help) */
} streams_t;

/* A command: one line of usage and a paragraph, for `COMMAND --help`, and
 * its arguments: its streams, and -n N in 1..nmax (0: no -n). */
typedef struct {
    const char *name;
    const char *args;
    const char *help;
    streams_t streams;
    uint64_t nmax;
    const char *n_what; /* what N counts */
} command_t;

static const command_t s_commands[] = {
    {"start", "STREAM...",
     "Start measuring the streams: the collector subscribes to them, a file source on a\n"
     "probe starts reading from its beginning (a new run), a live one starts capturing.\n"
     "A stream already running starts over. A stream no probe offers starts all the\n"
     "same, with a warning: it shows as waiting until a probe sends it.\n"
     "All or nothing: if the collector has no\n"
     "room for every new stream, none is started. Room is a free slot or that of an\n"
     "ended stream whose statistics were read (or that got nothing), each printed as\n"
     "forgotten; statistics nobody has read are never pushed out. With several\n"
     "collectors, a stream starts on the one holding it, a new one on the one with\n"
     "the fewest running.\n",
     .streams = S_SOME},
    {"stop", "[STREAM...]",
     "Stop the streams named, or every running or finished one. Their statistics are\n"
     "kept and can still be read with stats.\n",
     .streams = S_ANY},
    {"forget", "STREAM...",
     "Drop the streams and their statistics from the collector, freeing their slots:\n"
     "streams that are stopped, finished, failed (every probe's source in error), or\n"
     "started but never sent by any probe (a mistyped name). A stream a probe is\n"
     "sending is refused: stop it first. All or nothing: with one name unknown or\n"
     "refused, nothing is forgotten. With several collectors, each stream is\n"
     "forgotten on the one holding it.\n",
     .streams = S_SOME},
    {"status", "",
     "The collector (version, uptime, endpoints, bus counters), every stream (state,\n"
     "packets, bytes, loss) and every probe heard on it (source state, last heard,\n"
     "silent after five missed heartbeats, capture drops).\n",
     .streams = S_NONE},
    {"stats", "STREAM",
     "The statistics of one stream: totals, smallest/largest/last packet, capture time\n"
     "span, averages, per-protocol counts, top flows and hosts, loss.\n",
     .streams = S_ONE},
    {"probes", "",
     "Every probe the collector hears, with the streams it feeds, when it was last\n"
     "heard, whether it is silent, and its packets and capture drops summed over them.\n",
     .streams = S_NONE},
    {"streams", "",
     "Every stream the probes offer (they announce them on the bus): its probe, the\n"
     "kind of its source (file, iface, dir), the source's state, and which collector\n"
     "measures it in which state. A stream started that no probe offers is listed with\n"
     "probe '-'. With several collectors, what all of them hear, merged.\n",
     .streams = S_NONE},
    {"top", "STREAM [-n N]",
     "A live view of one stream, refreshed every second: current packets and bits per\n"
     "second, totals, loss, protocol mix, the top N flows and hosts (default 10). Quits\n"
     "on q. When standard output is not a terminal, the view is printed once.\n",
     .streams = S_ONE, .nmax = 64, .n_what = "flows and hosts"},
    {"serve",
     "--http ADDR:PORT|[V6ADDR]:PORT [--credentials FILE] [--tls-cert FILE --tls-key FILE]",
     "An HTTP gateway in front of the collector(s) for scripts that use curl: /start,\n"
     "/stop, /forget, /status, /stats?stream=NAME, /probes, /streams, /db, answering\n"
     "JSON. HTTP basic authentication is required: USER:PASSWORD from the first line of\n"
     "FILE or from $TAPBUS_HTTP_CREDENTIALS (there is no default); a FILE that its group\n"
     "or others may read is refused (chmod 600 FILE). With --tls-cert and --tls-key\n"
     "(PEM; both or neither) it serves HTTPS only. With --curve-key, the gateway talks\n"
     "to the collector with that key, and every HTTP user has its rights\n"
     "(docs/security.md). Runs until SIGINT or SIGTERM.\n",
     .streams = S_OWN},
    {"keygen", "NAME",
     "Write a new CURVE key pair in CZMQ's certificate format: NAME holds the public key\n"
     "(copy it to the hosts that must know it), NAME_secret both keys (mode 0600; it\n"
     "stays on the host whose program uses it, given with --curve-key). Existing files\n"
     "are never overwritten. See docs/security.md for a set-up step by step.\n",
     .streams = S_OWN},
    {"db", "[measurements | MEASUREMENT [STREAM] [-n N]]",
     "What the collector's database holds, asked through the collector (which has the\n"
     "credentials): without arguments the measurements; with one, its latest N points\n"
     "(default 10, at most 10000), newest first, of one stream when STREAM is given.\n"
     "Measurements and fields are described in docs/schema.md.\n",
     .streams = S_OWN, .nmax = 10000, .n_what = "points"},
};

static const command_t *s_command(const char *name)
{
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++) {
        if (strcmp(s_commands[i].name, name) == 0) {
            return &s_commands[i];
        }
    }
    return NULL;
}

static void s_command_usage(const command_t *c)
{
    printf("usage: tapbusctl [--collector ENDPOINT] [--json] [--timeout MS] %s%s%s\n\n%s", c->name,
           c->args[0] ? " " : "", c->args, c->help);
}

static int s_usage_error(const char *msg)
{
    fprintf(stderr, "tapbusctl: %s (see --help)\n", msg);
    return EXIT_USAGE;
}

/* The words after the command, at most TB_CTL_MAX_STREAMS. Options may
 * come before or after the command; "--" ends them (a stream name may begin
 * with '-'). */
typedef struct {
    const char *word[TB_CTL_MAX_STREAMS];
    size_t n;
} words_t;

static int s_add_word(words_t *w, const char *word, char *msg, size_t size)
{
    if (w->n == TB_CTL_MAX_STREAMS) {
        snprintf(msg, size, "too many streams in one command (at most %d)", TB_CTL_MAX_STREAMS);
        return -1;
    }
    w->word[w->n++] = word;
    return 0;
}

/* -n N where the command has it (nmax > 0: N in 1..nmax, "what" names N). */
static int s_count(const char *text, uint64_t nmax, const char *what, uint64_t *n, char *msg,
                   size_t size)
{
    if (text == NULL) {
        return 0;
    }
    if (nmax == 0) {
        snprintf(msg, size, "-n is an option of top and db");
        return -1;
    }
    if (tb_opt_u64(text, 1, nmax, n) != 0) {
        snprintf(msg, size, "-n needs a number of %s, 1-%llu", what, (unsigned long long)nmax);
        return -1;
    }
    return 0;
}

/* db [measurements | MEASUREMENT [STREAM] [-n N]] -> the request's args. */
static int s_db_request(const words_t *w, uint64_t n, tb_ctl_request_t *req, char *msg, size_t size)
{
    const char *const *words = w->word;
    size_t nwords = w->n;
    if (nwords > 2) {
        snprintf(msg, size, "db takes a measurement and at most one stream");
        return -1;
    }
    if (nwords == 0 || strcmp(words[0], "measurements") == 0) {
        if (nwords > 1) {
            snprintf(msg, size, "db measurements takes no stream");
            return -1;
        }
        req->nargs = 1;
        snprintf(req->args[0], sizeof req->args[0], "measurements");
        return 0;
    }
    if (strlen(words[0]) > 64) {
        snprintf(msg, size, "measurement name too long");
        return -1;
    }
    req->nargs = 3;
    snprintf(req->args[0], sizeof req->args[0], "points");
    snprintf(req->args[1], sizeof req->args[1], "%s", words[0]);
    snprintf(req->args[2], sizeof req->args[2], "%llu", (unsigned long long)n);
    if (nwords == 2 && tb_ctl_request_add_stream(req, words[1]) != 0) {
        snprintf(msg, size, "invalid stream name '%s'", words[1]);
        return -1;
    }
    return 0;
}

/* One command's request and where it goes. */
typedef struct {
    tb_fanout_t *fan;
    const tb_ctl_request_t *req;
    int json_out;
    const char *name; /* the command as the operator typed it (top sends stats) */
} call_t;

/* Send the request, return the reply's data (a new reference), or NULL with
 * the exit code in *code and the reason printed. A partial answer (some
 * collector failed) is returned with its code, the reason printed. */
static json_t *s_fetch(void *arg, int *code)
{
    const call_t *c = arg;
    char err[1024], shown[1024];
    json_t *j = tb_fanout_call(c->fan, c->req, code, err, sizeof err);
    if (*code == TB_CALL_OK) {
        return j;
    }
    /* The reason may quote the collector: printable on the terminal, exact
     * in the JSON document. */
    tb_print_text(shown, sizeof shown, err, strlen(err));
    if (j != NULL) {
        fprintf(stderr, "tapbusctl: %s: partial answer: %s\n", c->name, shown);
    } else if (*code == TB_CALL_REFUSED) {
        fprintf(stderr, "tapbusctl: %s: %s\n", c->name, shown);
    } else {
        fprintf(stderr, "tapbusctl: %s\n", shown);
    }
    if (j == NULL && c->json_out && *code == TB_CALL_REFUSED) {
        json_t *e = json_pack("{s:s, s:s}", "status", "error", "error", err);
        json_dumpf(e, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(e);
    }
    return j;
}

/* The gateway's way to the collectors: one request, its data or a reason. */
static json_t *s_gateway_call(void *arg, const tb_ctl_request_t *req, int *result, char *err,
                              size_t errsize)
{
    /* Each connection has its own thread: a copy, so no state is shared
     * (the pinning of top does not apply to single requests). */
    tb_fanout_t fan_copy = *(const tb_fanout_t *)arg;
    tb_fanout_t *fan = &fan_copy;
    fan->pinned = -1;
    tb_ctl_request_t r = *req;
    int probes = strcmp(r.cmd, "probes") == 0;
    if (probes) {
        snprintf(r.cmd, sizeof r.cmd, "status");
    }
    int code = 0;
    json_t *j = tb_fanout_call(fan, &r, &code, err, errsize);
    *result = j != NULL                     ? TB_GW_OK /* partial: "collectors" tells */
              : code == TB_CALL_REFUSED     ? TB_GW_REFUSED
              : code == TB_CALL_UNREACHABLE ? TB_GW_UNREACHABLE
                                            : TB_GW_BADREPLY;
    if (j != NULL && probes) {
        json_t *view = tb_status_probes(j);
        json_decref(j);
        j = view;
    }
    if (j != NULL && strcmp(r.cmd, "stats") == 0) {
        /* The name scripts know for top_flows[0]. */
        json_t *top = json_array_get(json_object_get(j, "top_flows"), 0);
        json_object_set(j, "most_active_tuple", top != NULL ? top : json_null());
    }
    return j;
}

/* keygen NAME: a key pair into NAME and NAME_secret. */
static int s_keygen(const words_t *words)
{
    if (words->n != 1) {
        return s_usage_error("keygen needs exactly one NAME (NAME and NAME_secret are written)");
    }
    const char *path = words->word[0];
    const char *base = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
    tb_curve_cert_t cert;
    char err[512];
    if (base[0] == '\0') {
        return s_usage_error("keygen: NAME is a file name, not a directory");
    }
    if (tb_curve_cert_generate(&cert, base) != 0) {
        fprintf(stderr, "tapbusctl: keygen: this libzmq has no CURVE support\n");
        return EXIT_REFUSED;
    }
    int rc = tb_curve_cert_save(&cert, path, err, sizeof err);
    explicit_bzero(&cert.secret_key, sizeof cert.secret_key);
    if (rc != 0) {
        fprintf(stderr, "tapbusctl: keygen: %s\n", err);
        return EXIT_REFUSED;
    }
    printf("public key %s\n"
           "wrote %s (public certificate: copy it to the hosts that must know this key)\n"
           "wrote %s%s (secret certificate, mode 0600: keep it here, give it with --curve-key)\n",
           cert.public_key, path, path, TB_CURVE_SECRET_SUFFIX);
    return 0;
}

/* --curve-key and --curve-server-key into the fanout: both or neither. */
static int s_curve_options(tb_fanout_t *fan, const char *key, const char *server)
{
    char msg[600];
    if ((key == NULL) != (server == NULL)) {
        return s_usage_error(key == NULL ? "--curve-server-key needs --curve-key (this client's "
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
        return EXIT_USAGE;
    }
    if (!tb_curve_available()) {
        fprintf(stderr, "tapbusctl: this libzmq has no CURVE support\n");
        return EXIT_USAGE;
    }
    memcpy(fan->curve_server, srv.public_key, sizeof fan->curve_server);
    fan->curve = 1;
    return 0;
}

/* The serve options as given. */
typedef struct {
    const char *http;
    const char *credentials;
    const char *tls_cert;
    const char *tls_key;
} serve_opts_t;

/* serve --http ADDR:PORT [--credentials FILE] [--tls-cert FILE --tls-key
 * FILE]: credentials "user:password" from the file's first line or
 * $TAPBUS_HTTP_CREDENTIALS; none is built in. */
static int s_serve(const serve_opts_t *o, const words_t *words, tb_fanout_t *fan)
{
    const char *listen = o->http, *file = o->credentials;
    if (words->n > 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "serve: unexpected argument '%.200s'", words->word[0]);
        return s_usage_error(msg);
    }
    if (listen == NULL) {
        return s_usage_error("serve needs --http ADDR:PORT");
    }
    if ((o->tls_cert == NULL) != (o->tls_key == NULL)) {
        return s_usage_error(o->tls_cert == NULL ? "--tls-key needs --tls-cert (its certificate)"
                                                 : "--tls-cert needs --tls-key (its private key)");
    }
    char cred[512] = "";
    if (file != NULL) {
        /* As ssh does with its keys, a file that its group or others may
         * read or write is refused: the password would be theirs too. */
        char err[1024];
        if (tb_secret_read(file, "credentials", TB_SECRET_PRIVATE, cred, sizeof cred, err,
                           sizeof err) != 0) {
            fprintf(stderr, "tapbusctl: %s\n", err);
            return EXIT_USAGE;
        }
    } else if (getenv("TAPBUS_HTTP_CREDENTIALS") != NULL) {
        if (strlen(getenv("TAPBUS_HTTP_CREDENTIALS")) >= sizeof cred) {
            fprintf(stderr, "tapbusctl: $TAPBUS_HTTP_CREDENTIALS longer than %zu characters\n",
                    sizeof cred - 1);
            return EXIT_USAGE;
        }
        snprintf(cred, sizeof cred, "%s", getenv("TAPBUS_HTTP_CREDENTIALS"));
    }
    char *colon = strchr(cred, ':');
    if (colon == NULL || colon == cred || colon[1] == '\0') {
        return s_usage_error("serve needs credentials USER:PASSWORD (--credentials FILE or "
                             "$TAPBUS_HTTP_CREDENTIALS); there is no default");
    }
    *colon = '\0';
    tb_gw_tls_t tls = {NULL, NULL};
    char err[1200];
    if (o->tls_cert != NULL &&
        tb_gw_tls_load(&tls, o->tls_cert, o->tls_key, err, sizeof err) != 0) {
        explicit_bzero(cred, sizeof cred);
        fprintf(stderr, "tapbusctl: %s\n", err);
        return EXIT_USAGE;
    }
    tb_gateway_config_t g = {listen, cred, colon + 1, s_gateway_call, fan, tls.cert, tls.key};
    int rc = tb_gateway_run(&g);
    tb_gw_tls_clear(&tls);
    explicit_bzero(cred, sizeof cred);
    return rc;
}

/* Everything the options set, and the words: the command and its
 * arguments. */
typedef struct {
    tb_fanout_t fan;
    int fan_level; /* where the list came from: -1 none, 0 file, 1 environment, 2 command line */
    int json_out;
    uint64_t timeout, retries;
    serve_opts_t serve;
    int serve_option; /* a serve option on the command line */
    const char *curve_key, *curve_server;
    const char *n_text; /* -n */
    const char *cmd;
    words_t words;
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
    return tb_fanout_add(&o->fan, v->arg, err, errsize) == 0 ? 0 : -1;
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
    return s_add_word(&o->words, word, err, errsize);
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

/* The request of a command that asks the collector (not help, keygen,
 * serve): its words checked, -n within the command's range. Returns 0, or -1
 * with a usage error in msg. */
static int s_request(const s_opts_t *o, const command_t *c, tb_ctl_request_t *req, uint64_t *np,
                     char *msg, size_t size)
{
    const words_t *wp = &o->words;
    int db = strcmp(c->name, "db") == 0;
    if (s_count(o->n_text, c->nmax, c->n_what, np, msg, size) != 0) {
        return -1;
    }
    if (db) {
        snprintf(req->cmd, sizeof req->cmd, "db");
        return s_db_request(wp, *np, req, msg, size);
    }
    /* probes is status seen from the probes' side: the same request. */
    snprintf(req->cmd, sizeof req->cmd, "%s", strcmp(c->name, "probes") == 0 ? "status" : c->name);
    for (size_t i = 0; i < wp->n; i++) {
        if (tb_ctl_request_add_stream(req, wp->word[i]) != 0) {
            snprintf(msg, size,
                     "invalid stream name '%s' (1-%d characters of A-Z a-z 0-9 . _ : / @ + -)",
                     wp->word[i], TB_STREAM_MAX);
            return -1;
        }
    }
    const char *wrong = c->streams == S_SOME && req->nstreams == 0   ? "needs at least one stream"
                        : c->streams == S_ONE && req->nstreams != 1  ? "needs exactly one stream"
                        : c->streams == S_NONE && req->nstreams != 0 ? "takes no stream"
                                                                     : NULL;
    if (wrong != NULL) {
        snprintf(msg, size, "%s %s", c->name, wrong);
        return -1;
    }
    return 0;
}

/* The reply, as JSON or as text for the terminal. */
static void s_print_reply(const char *cmd, int json_out, json_t *j)
{
    int probes = strcmp(cmd, "probes") == 0, db = strcmp(cmd, "db") == 0;
    /* start's warnings (a stream no probe offers) go to stderr; it succeeded. */
    size_t wi;
    json_t *warning;
    json_array_foreach(strcmp(cmd, "start") == 0 ? json_object_get(j, "warnings") : NULL, wi,
                       warning)
    {
        if (json_is_string(warning)) {
            fprintf(stderr, "tapbusctl: warning: %s\n", json_string_value(warning));
        }
    }
    if (json_out) {
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
    } else if (strcmp(cmd, "start") == 0) {
        tb_print_names(stdout, "started", json_object_get(j, "started"),
                       json_object_get(j, "collector_of"));
        size_t k;
        json_t *name;
        json_array_foreach(json_object_get(j, "forgotten"), k, name)
        {
            if (json_is_string(name)) {
                printf("forgotten to make room: %s (ended; its statistics were read, or it "
                       "had none)\n",
                       json_string_value(name));
            }
        }
    } else if (strcmp(cmd, "streams") == 0) {
        tb_print_streams(stdout, j);
    } else if (strcmp(cmd, "stop") == 0) {
        tb_print_names(stdout, "stopped", json_object_get(j, "stopped"),
                       json_object_get(j, "collector_of"));
    } else if (strcmp(cmd, "forget") == 0) {
        tb_print_names(stdout, "forgotten", json_object_get(j, "forgotten"),
                       json_object_get(j, "collector_of"));
    } else if (strcmp(cmd, "status") == 0) {
        tb_print_status(stdout, j);
    } else if (probes) {
        tb_print_probes(stdout, j);
    } else if (db) {
        tb_print_table(stdout, json_object_get(j, "columns"), json_object_get(j, "rows"));
    } else {
        tb_print_stats(stdout, j);
    }
}

/* After the options: the command, checked and run. Returns the exit code. */
static int s_run(s_opts_t *o, const tb_options_t *opts)
{
    char msg[1024];
    tb_fanout_t *fanp = &o->fan;
    const char *cmd = o->cmd;
    const words_t *wp = &o->words;
    const char *env = getenv("TAPBUS_COLLECTOR");
    if (fanp->n == 0 &&
        tb_fanout_add(fanp, env != NULL && env[0] != '\0' ? env : "tcp://127.0.0.1:5557", msg,
                      sizeof msg) != 0) {
        fprintf(stderr, "tapbusctl: $TAPBUS_COLLECTOR: %s\n", msg);
        return EXIT_USAGE;
    }
    fanp->timeout_ms = (int)o->timeout;
    fanp->attempts = (int)o->retries + 1;
    fanp->pinned = -1;
    if (tb_options_print_only(opts) && tb_options_is_set(opts, "print-config")) {
        tb_options_print_config(opts, &s_defaults, stdout);
        return 0;
    }
    if (cmd == NULL) {
        return s_usage_error("no command given");
    }
    tb_ctl_request_t req;
    memset(&req, 0, sizeof req);
    if (strcmp(cmd, "help") == 0) {
        const command_t *asked = wp->n > 0 ? s_command(wp->word[0]) : NULL;
        if (wp->n > 0 && asked == NULL) {
            snprintf(msg, sizeof msg, "unknown command '%s'", wp->word[0]);
            return s_usage_error(msg);
        }
        if (asked != NULL) {
            s_command_usage(asked);
        } else {
            s_usage(stdout);
        }
        return 0;
    }
    const command_t *command = s_command(cmd);
    if (command == NULL) {
        snprintf(msg, sizeof msg, "unknown command '%s'", cmd);
        return s_usage_error(msg);
    }
    if (o->command_help) {
        s_command_usage(command);
        return 0;
    }
    if (strcmp(cmd, "keygen") == 0) {
        return s_keygen(wp);
    }
    int curve_rc = s_curve_options(fanp, o->curve_key, o->curve_server);
    if (curve_rc != 0) {
        return curve_rc;
    }
    if (strcmp(cmd, "serve") == 0) {
        return s_serve(&o->serve, wp, fanp);
    }
    if (o->serve_option) {
        return s_usage_error("--http, --credentials, --tls-cert and --tls-key are options of "
                             "serve");
    }
    uint64_t n = 10;
    if (s_request(o, command, &req, &n, msg, sizeof msg) != 0) {
        return s_usage_error(msg);
    }
    int probes = strcmp(cmd, "probes") == 0;
    call_t call = {fanp, &req, o->json_out, cmd};
    if (strcmp(cmd, "top") == 0) {
        snprintf(req.cmd, sizeof req.cmd, "stats");
        return tb_top_run(s_fetch, &call, n, 1.0);
    }
    int rc = 0;
    json_t *j = s_fetch(&call, &rc);
    if (j == NULL) {
        return rc;
    }
    if (probes) {
        json_t *view = tb_status_probes(j);
        json_decref(j);
        j = view;
        if (j == NULL) {
            fprintf(stderr, "tapbusctl: out of memory\n");
            return EXIT_BADREPLY;
        }
    }
    s_print_reply(cmd, o->json_out, j);
    json_decref(j);
    return rc; /* not 0 after a partial answer */
}

int main(int argc, char **argv)
{
    static s_opts_t o; /* large (the fanout): not on the stack */
    o = s_defaults;
    char msg[1024];
    tb_options_t *opts = tb_options_new(&s_spec);
    if (opts == NULL) {
        fprintf(stderr, "tapbusctl: out of memory\n");
        return EXIT_USAGE;
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
        rc = s_usage_error(msg);
    } else {
        rc = s_run(&o, opts);
    }
    tb_options_destroy(&opts);
    return rc;
}
