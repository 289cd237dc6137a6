/* tapbus-collector — subscribe to probes' streams, keep statistics, answer
 * tapbusctl. The options are a table (tb_options); main() reads them,
 * creates the collector, runs it until SIGINT or SIGTERM, and stops it. */
#include "collector.h"
#include "series.h"

#include "tb_curve.h"
#include "tb_err.h"
#include "tb_log.h"
#include "tb_opt.h"
#include "tb_options.h"
#include "tb_secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Everything the options set. */
typedef struct {
    tb_collector_config_t c;
    tb_influx_sink_config_t db;
    tb_curve_cert_t curve; /* --curve-key: lives as long as the collector */
    char password[4096];   /* --influx-password-file's first line, or "" */
    char token[4096];      /* --influx-token-file's */
    int log_level;
} s_opts_t;

static int s_set_curve_key(void *cfg, const tb_option_t *opt, const tb_option_value_t *v, char *err,
                           size_t errsize)
{
    (void)opt;
    s_opts_t *o = cfg;
    if (tb_curve_cert_load(v->arg, 1, &o->curve, err, errsize) != 0) {
        return TB_EINVAL;
    }
    o->c.curve = &o->curve;
    return 0;
}

/* --influx-password-file, --influx-token-file: read at once, into the
 * field's buffer. */
static int s_set_secret(void *cfg, const tb_option_t *opt, const tb_option_value_t *v, char *err,
                        size_t errsize)
{
    char *buf = (char *)cfg + opt->offset;
    return tb_secret_read(v->arg, NULL, 0, buf, opt->size, err, errsize) == 0 ? 0 : -1;
}

static int s_set_timeout(void *cfg, const tb_option_t *opt, const tb_option_value_t *v, char *err,
                         size_t errsize)
{
    (void)opt, (void)err, (void)errsize;
    tb_influx_sink_config_t *db = &((s_opts_t *)cfg)->db;
    db->writer.db.timeout_ms = (long)v->u;
    db->writer.db.connect_timeout_ms = v->u < 5000 ? (long)v->u : 5000;
    db->writer.shutdown_ms = (uint32_t)v->u;
    return 0;
}

static int s_set_no_gzip(void *cfg, const tb_option_t *opt, const tb_option_value_t *v, char *err,
                         size_t errsize)
{
    (void)opt, (void)v, (void)err, (void)errsize;
    ((s_opts_t *)cfg)->db.writer.db.gzip = 0;
    return 0;
}

/* A size in MiB into a field of bytes. */
static int s_set_mib(void *cfg, const tb_option_t *opt, const tb_option_value_t *v, char *err,
                     size_t errsize)
{
    (void)err, (void)errsize;
    uint64_t bytes = v->u << 20;
    memcpy((char *)cfg + opt->offset, &bytes, sizeof bytes);
    return 0;
}

static void s_show_queue_mb(const void *cfg, char *buf, size_t size)
{
    snprintf(buf, size, "%llu",
             (unsigned long long)(((const s_opts_t *)cfg)->db.writer.queue_bytes >> 20));
}

static void s_show_spool_mb(const void *cfg, char *buf, size_t size)
{
    snprintf(buf, size, "%llu",
             (unsigned long long)(((const s_opts_t *)cfg)->db.writer.spool_bytes >> 20));
}

#define F(m) TB_OPTION_FIELD(s_opts_t, m)
#define I(m) TB_OPTION_FIELD(s_opts_t, db.writer.db.m)

static const tb_option_t s_options[] = {
    {TB_OPTION_TEXT, .help = "options:\n"},
    {TB_OPTION_LIST, "probe", .arg = "ENDPOINT", F(c.probes), TB_OPTION_COUNT(s_opts_t, c.nprobes),
     .max = TB_COLLECTOR_MAX_PROBES,
     .help = "a probe's XPUB endpoint, e.g. tcp://probe1:5556 (repeatable)"},
    {TB_OPTION_LIST, "listen", .arg = "ENDPOINT", F(c.listen), TB_OPTION_COUNT(s_opts_t, c.nlisten),
     .max = TB_COLLECTOR_MAX_PROBES,
     .help = "bind for probes that connect (--connect), e.g. from\nbehind NAT (repeatable)"},
    {TB_OPTION_STRING, "control", .arg = "ENDPOINT", F(c.control),
     .help = "control endpoint for tapbusctl (default {default})"},
    {TB_OPTION_U64, "max-streams", .arg = "N", F(c.max_streams), .min = 1, .max = 100000,
     .help = "streams kept at once, {range} (default {default})"},
    {TB_OPTION_U64, "flows", .arg = "N", F(c.flow_capacity), .min = 1, .max = 1u << 24,
     .help = "top-flows table entries per stream, {range} (default {default})"},
    {TB_OPTION_U64, "hosts", .arg = "N", F(c.host_capacity), .min = 1, .max = 1u << 24,
     .help = "top-hosts table entries per stream, {range} (default {default})"},
    {TB_OPTION_U64, "top", .arg = "N", F(c.top_n), .min = 1, .max = 64,
     .help = "flows and hosts listed by stats, {range} (default {default})"},
    {TB_OPTION_ENUM, "threads", .arg = "N", F(c.threads), .words = "auto|1|2",
     .help = "threads counting packets: 2 counts each chunk's top\n"
             "tables beside the loop thread, 1 on the loop alone,\n"
             "auto 2 with at least 4 CPUs it may use, affinity\n"
             "and CPU quota counted (default {default})"},
    {TB_OPTION_U64, "hwm", .arg = "N", F(c.rcvhwm), .min = 1, .max = 10000000,
     .help = "bus receive high-water mark in messages (default {default})"},
    {TB_OPTION_STRING, "state-dir", .arg = "DIR", F(c.state_dir),
     .help = "keep the streams started and their statistics here;\n"
             "after a restart (even kill -9) they carry on"},
    {TB_OPTION_ENUM, "log-level", .arg = "LEVEL", F(log_level), .words = "error|warn|info|debug",
     .help = "error, warn, info or debug (default {default})"},
    {TB_OPTION_CONFIG, "config", .arg = "FILE", .flags = TB_OPTION_CLI_ONLY,
     .help = "read options from FILE (or $TAPBUS_COLLECTOR_CONFIG):\n"
             "'name = value' per line; the environment\n"
             "(TAPBUS_COLLECTOR_NAME) overrides it, the command line both"},
    {TB_OPTION_PRINT_CONFIG, "print-config", .flags = TB_OPTION_CLI_ONLY,
     .help = "print the options in effect and where they came from"},
    {TB_OPTION_TEXT,
     .help = "\nsecurity (CURVE on the bus and on control; see docs/security.md):\n"},
    {TB_OPTION_STRING, "curve-key", .arg = "FILE", .set = s_set_curve_key,
     .help = "this collector's secret certificate (NAME_secret from\n"
             "tapbusctl keygen): CURVE on every connection, probes\n"
             "and tapbusctl need its public certificate"},
    {TB_OPTION_STRING, "curve-allow-probes", .arg = "DIR", F(c.curve_allow_probes),
     .help = "public certificates of the probes that may send"},
    {TB_OPTION_STRING, "curve-allow", .arg = "DIR", F(c.curve_allow),
     .help = "... of control clients that may act (start, stop,\nforget) and read"},
    {TB_OPTION_STRING, "curve-allow-read", .arg = "DIR", F(c.curve_allow_read),
     .help = "... of control clients that may only read (status,\nstats, probes, streams, db)"},
    {TB_OPTION_TEXT, .help = "\ndatabase (InfluxDB; without --influx-url nothing is written):\n"},
    {TB_OPTION_STRING, "influx-url", .arg = "URL", I(url),
     .help = "e.g. http://db:8086 or https://db:8086"},
    {TB_OPTION_U64, "influx-version", .arg = "1|2", I(version), .min = 1, .max = 2,
     .help = "server API (default {default})"},
    {TB_OPTION_STRING, "influx-db", .arg = "NAME", I(db),
     .help = "1.x database (default {default})"},
    {TB_OPTION_STRING, "influx-rp", .arg = "NAME", I(rp),
     .help = "1.x retention policy (default: the database's)"},
    {TB_OPTION_STRING, "influx-user", .arg = "USER", I(user),
     .help = "1.x user; password from TAPBUS_INFLUX_PASSWORD or\n--influx-password-file"},
    {TB_OPTION_STRING, "influx-password-file", .arg = "FILE", F(password), .set = s_set_secret,
     .help = "1.x password on the file's first line"},
    {TB_OPTION_FLAG, "influx-create-db", I(create_db),
     .help = "1.x: create the database if it is missing"},
    {TB_OPTION_STRING, "influx-org", .arg = "ORG", I(org), .help = "2.x organisation"},
    {TB_OPTION_STRING, "influx-bucket", .arg = "NAME", I(bucket), .help = "2.x bucket"},
    {TB_OPTION_STRING, "influx-token-file", .arg = "FILE", F(token), .set = s_set_secret,
     .help = "2.x token (or TAPBUS_INFLUX_TOKEN)"},
    {TB_OPTION_STRING, "influx-ca", .arg = "FILE", I(ca_file), .help = "CA bundle for https"},
    {TB_OPTION_U64, "influx-timeout-ms", .arg = "N", I(timeout_ms), .min = 100, .max = 600000,
     .set = s_set_timeout, .help = "per request, {range} (default {default})"},
    {TB_OPTION_FLAG, "influx-no-gzip", .set = s_set_no_gzip,
     .help = "send request bodies uncompressed"},
    {TB_OPTION_U64, "batch-lines", .arg = "N", F(db.batch_lines), .min = 1, .max = 1000000,
     .help = "points per request, {range} (default {default})"},
    {TB_OPTION_U64, "batch-ms", .arg = "N", F(db.batch_ms), .min = 1, .max = 3600000,
     .help = "longest a point waits for its batch, {range} (default {default})"},
    {TB_OPTION_U64, "queue-mb", .arg = "N", F(db.writer.queue_bytes), .min = 1, .max = 65536,
     .set = s_set_mib, .show = s_show_queue_mb,
     .help = "in-memory queue for the writer, {range} (default {default})"},
    {TB_OPTION_STRING, "spool-dir", .arg = "DIR", F(db.writer.spool_dir),
     .help = "keep batches here while the database is away"},
    {TB_OPTION_U64, "spool-mb", .arg = "N", F(db.writer.spool_bytes), .min = 1, .max = 1u << 24,
     .set = s_set_mib, .show = s_show_spool_mb,
     .help = "spool limit; the oldest data goes first (default {default})"},
    {TB_OPTION_U64, "interval", .arg = "S", F(db.interval_s), .min = 1, .max = 86400,
     .help = "interval points every S s of capture time (default {default})"},
    {TB_OPTION_U64, "lateness", .arg = "S", F(db.lateness_s), .min = 0,
     .max = TB_SERIES_MAX_LATENESS,
     .help = "a second stays open S s for late packets, {range} (default {default})"},
    {TB_OPTION_U64, "interval-flows", .arg = "N", F(db.table_capacity), .min = 1, .max = 1u << 20,
     .help = "entries of each interval's top-N tables (default {default})"},
    {TB_OPTION_HELP, "help", .flags = TB_OPTION_CLI_ONLY, .help = "this text"},
};

#undef F
#undef I

static const tb_options_spec_t s_spec = {
    .env_prefix = "TAPBUS_COLLECTOR",
    .usage = "usage: tapbus-collector (--probe ENDPOINT | --listen ENDPOINT)... [options]\n"
             "\n"
             "Subscribe to the streams tapbusctl starts, on every probe given, and keep\n"
             "their statistics.\n"
             "\n",
    .options = s_options,
    .noptions = TB_OPTION_ARRAY_LEN(s_options),
    .help_column = 23,
};

/* CURVE comes whole: the collector's key and who may connect, on the bus
 * and on control; an allow-list without the key would protect nothing. */
static int s_check_curve(const tb_collector_config_t *cfg, char *msg, size_t size)
{
    const char *list = cfg->curve_allow_probes != NULL ? "--curve-allow-probes"
                       : cfg->curve_allow != NULL      ? "--curve-allow"
                       : cfg->curve_allow_read != NULL ? "--curve-allow-read"
                                                       : NULL;
    if (cfg->curve == NULL && list != NULL) {
        snprintf(msg, size, "%s needs --curve-key (this collector's secret certificate)", list);
        return TB_EINVAL;
    }
    if (cfg->curve != NULL && cfg->curve_allow_probes == NULL) {
        snprintf(msg, size,
                 "--curve-key needs --curve-allow-probes DIR (the public "
                 "certificates of the probes that may send)");
        return TB_EINVAL;
    }
    if (cfg->curve != NULL && cfg->curve_allow == NULL && cfg->curve_allow_read == NULL) {
        snprintf(msg, size,
                 "--curve-key needs --curve-allow DIR and/or --curve-allow-read DIR "
                 "(the public certificates of tapbusctl and gateways)");
        return TB_EINVAL;
    }
    return 0;
}

/* Every probe or stray peer connected to --listen (and every control client)
 * holds a descriptor. With the usual soft limit of 1,024, some 1,000 idle
 * connections from anybody would leave none for control or the database:
 * the soft limit goes up to the hard one (which only root raises). */
static void s_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        /* "unlimited" is not a descriptor count the kernel takes. */
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            tb_log(TB_LOG_WARN, "collector", "cannot raise the descriptor limit from %llu: %s",
                   (unsigned long long)was, strerror(errno));
            return;
        }
    }
    tb_log(rl.rlim_cur < 4096 ? TB_LOG_WARN : TB_LOG_DEBUG, "collector",
           "descriptor limit %llu (connections from probes and clients count against it)",
           (unsigned long long)rl.rlim_cur);
}

/* What no single option can check, and the database's secrets. */
static int s_check(s_opts_t *o, char *msg, size_t size)
{
    tb_influx_config_t *ic = &o->db.writer.db;
    if (ic->url != NULL) {
        const char *env = getenv("TAPBUS_INFLUX_PASSWORD");
        ic->password = o->password[0] != '\0' ? o->password : env;
        env = getenv("TAPBUS_INFLUX_TOKEN");
        ic->token = o->token[0] != '\0' ? o->token : env;
        o->db.top_n = o->c.top_n;
        o->c.db = &o->db;
    } else if (o->db.writer.spool_dir != NULL) {
        snprintf(msg, size, "--spool-dir needs --influx-url");
        return TB_EINVAL;
    }
    return s_check_curve(&o->c, msg, size);
}

static int s_fail(const char *msg)
{
    fprintf(stderr, "tapbus-collector: %s\n", msg);
    return 2;
}

int main(int argc, char **argv)
{
    static s_opts_t o, defaults; /* large: certificate and secrets */
    tb_collector_config_defaults(&o.c);
    tb_influx_sink_config_defaults(&o.db);
    o.log_level = tb_log_get_level();
    defaults = o;
    char msg[1024];
    tb_options_t *opts = tb_options_new(&s_spec);
    if (opts == NULL) {
        return s_fail("out of memory");
    }
    int rc = tb_options_parse(opts, &o, argc, argv, msg, sizeof msg);
    if (rc == TB_OPTIONS_HELP) {
        tb_options_help(&s_spec, &defaults, stdout);
        tb_options_destroy(&opts);
        return 0;
    }
    if (rc == TB_OPTIONS_EUNKNOWN) {
        strncat(msg, " (see --help)", sizeof msg - strlen(msg) - 1);
    }
    if (rc == 0 && tb_options_print_only(opts)) {
        tb_options_print_config(opts, &defaults, stdout);
        tb_options_destroy(&opts);
        return 0;
    }
    if (rc == 0 && s_check(&o, msg, sizeof msg) != 0) {
        rc = TB_OPTIONS_EVALUE;
    }
    if (rc == 0 && o.c.db != NULL && tb_influx_global_init() != 0) {
        snprintf(msg, sizeof msg, "cannot initialise libcurl");
        rc = TB_OPTIONS_EVALUE;
    }
    int stop_fd = -1;
    tb_collector_t *coll = NULL;
    if (rc == 0) {
        tb_log_set_level(o.log_level);
        s_raise_nofile();
        stop_fd = tb_opt_stop_fd();
        if (stop_fd < 0) {
            snprintf(msg, sizeof msg, "cannot set up signal handling");
        } else {
            coll = tb_collector_new(&o.c, msg, sizeof msg);
        }
        if (coll != NULL && tb_collector_start(coll, msg, sizeof msg) != 0) {
            tb_collector_destroy(&coll);
        }
    }
    if (coll != NULL) {
        rc = tb_collector_run(coll, stop_fd) == 0 ? 0 : 1;
        tb_collector_destroy(&coll);
        tb_log(TB_LOG_INFO, "collector", "stopped");
    } else {
        rc = s_fail(msg);
    }
    if (stop_fd >= 0) {
        close(stop_fd);
    }
    explicit_bzero(&o.curve, sizeof o.curve);
    explicit_bzero(o.password, sizeof o.password);
    explicit_bzero(o.token, sizeof o.token);
    tb_options_destroy(&opts);
    return rc;
}
