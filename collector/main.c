/* tapbus-collector — subscribe to probes' streams, keep statistics, answer
 * tapbusctl. main() only parses options and wires the collector together. */
#include "collector.h"
#include "series.h"

#include "tb_curve.h"

#include "tb_conf.h"
#include "tb_log.h"
#include "tb_opt.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: tapbus-collector (--probe ENDPOINT | --listen ENDPOINT)... [options]\n"
            "\n"
            "Subscribe to the streams tapbusctl starts, on every probe given, and keep\n"
            "their statistics.\n"
            "\n"
            "options:\n"
            "  --probe ENDPOINT     a probe's XPUB endpoint, e.g. tcp://probe1:5556 (repeatable)\n"
            "  --listen ENDPOINT    bind for probes that connect (--connect), e.g. from\n"
            "                       behind NAT (repeatable)\n"
            "  --control ENDPOINT   control endpoint for tapbusctl (default tcp://*:5557)\n"
            "  --max-streams N      streams kept at once (default 256)\n"
            "  --flows N            top-flows table entries per stream (default 4096)\n"
            "  --hosts N            top-hosts table entries per stream (default 4096)\n"
            "  --top N              flows and hosts listed by stats, 1-64 (default 10)\n"
            "  --hwm N              bus receive high-water mark in messages (default 100)\n"
            "  --state-dir DIR      keep the streams started and their statistics here;\n"
            "                       after a restart (even kill -9) they carry on\n"
            "  --log-level LEVEL    error, warn, info or debug (default info)\n"
            "  --config FILE        read options from FILE (or $TAPBUS_COLLECTOR_CONFIG):\n"
            "                       'name = value' per line; the environment\n"
            "                       (TAPBUS_COLLECTOR_NAME) overrides it, the command line both\n"
            "  --print-config       print the options in effect and where they came from\n"
            "\n"
            "security (CURVE on the bus and on control; see docs/security.md):\n"
            "  --curve-key FILE        this collector's secret certificate (NAME_secret from\n"
            "                          tapbusctl keygen): CURVE on every connection, probes\n"
            "                          and tapbusctl need its public certificate\n"
            "  --curve-allow-probes DIR  public certificates of the probes that may send\n"
            "  --curve-allow DIR       ... of control clients that may act (start, stop,\n"
            "                          forget) and read\n"
            "  --curve-allow-read DIR  ... of control clients that may only read (status,\n"
            "                          stats, probes, streams, db)\n"
            "\n"
            "database (InfluxDB; without --influx-url nothing is written):\n"
            "  --influx-url URL        e.g. http://db:8086 or https://db:8086\n"
            "  --influx-version 1|2    server API (default 1)\n"
            "  --influx-db NAME        1.x database (default tapbus)\n"
            "  --influx-rp NAME        1.x retention policy (default: the database's)\n"
            "  --influx-user USER      1.x user; password from TAPBUS_INFLUX_PASSWORD or\n"
            "  --influx-password-file FILE\n"
            "  --influx-create-db      1.x: create the database if it is missing\n"
            "  --influx-org ORG        2.x organisation\n"
            "  --influx-bucket NAME    2.x bucket\n"
            "  --influx-token-file FILE  2.x token (or TAPBUS_INFLUX_TOKEN)\n"
            "  --influx-ca FILE        CA bundle for https\n"
            "  --influx-timeout-ms N   per request (default 10000)\n"
            "  --influx-no-gzip        send request bodies uncompressed\n"
            "  --batch-lines N         points per request (default 5000)\n"
            "  --batch-ms N            longest a point waits for its batch (default 1000)\n"
            "  --queue-mb N            in-memory queue for the writer (default 64)\n"
            "  --spool-dir DIR         keep batches here while the database is away\n"
            "  --spool-mb N            spool limit; the oldest data goes first (default 1024)\n"
            "  --interval S            interval points every S s of capture time (default 10)\n"
            "  --lateness S            a second stays open S s for late packets (default 5)\n"
            "  --interval-flows N      entries of each interval's top-N tables (default 1024)\n"
            "  --help               this text\n");
}

static int s_fail(const char *msg)
{
    fprintf(stderr, "tapbus-collector: %s\n", msg);
    return 2;
}

/* The first line of a file holding a secret (malloc'ed), or NULL. */
static char *s_read_secret(const char *path, char *msg, size_t size)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(msg, size, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    char line[4096];
    char *r = fgets(line, sizeof line, f);
    fclose(f);
    if (r == NULL) {
        snprintf(msg, size, "%s is empty", path);
        return NULL;
    }
    line[strcspn(line, "\r\n")] = '\0';
    char *dup = strdup(line);
    if (dup == NULL) {
        snprintf(msg, size, "out of memory");
    }
    return dup;
}

/* A number option within [lo, hi], or a one-line complaint. */
static int s_num(const char *name, const char *arg, uint64_t lo, uint64_t hi, uint64_t *v,
                 char *msg, size_t size)
{
    if (tb_opt_u64(arg, lo, hi, v) != 0) {
        snprintf(msg, size, "--%s must be %llu-%llu", name, (unsigned long long)lo,
                 (unsigned long long)hi);
        return -1;
    }
    return 0;
}

/* --print-config: what was set and where, then the defaults of the rest. */
static void s_print_config(const tb_conf_args_t *ca, const tb_collector_config_t *c,
                           const tb_influx_sink_config_t *d, int log_level)
{
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    const tb_influx_config_t *i = &d->writer.db;
    FILE *o = stdout;
    tb_conf_print(ca, o);
    tb_conf_print_default(ca, o, "probe", NULL);
    tb_conf_print_default(ca, o, "listen", NULL);
    tb_conf_print_default(ca, o, "control", "%s", c->control);
    tb_conf_print_default(ca, o, "max-streams", "%zu", c->max_streams);
    tb_conf_print_default(ca, o, "flows", "%zu", c->flow_capacity);
    tb_conf_print_default(ca, o, "hosts", "%zu", c->host_capacity);
    tb_conf_print_default(ca, o, "top", "%zu", c->top_n);
    tb_conf_print_default(ca, o, "hwm", "%d", c->rcvhwm);
    tb_conf_print_default(ca, o, "state-dir", NULL);
    tb_conf_print_default(ca, o, "curve-key", NULL);
    tb_conf_print_default(ca, o, "curve-allow-probes", NULL);
    tb_conf_print_default(ca, o, "curve-allow", NULL);
    tb_conf_print_default(ca, o, "curve-allow-read", NULL);
    tb_conf_print_default(ca, o, "log-level", "%s", levels[log_level & 3]);
    tb_conf_print_default(ca, o, "influx-url", NULL);
    tb_conf_print_default(ca, o, "influx-version", "%d", i->version);
    tb_conf_print_default(ca, o, "influx-db", "%s", i->db);
    tb_conf_print_default(ca, o, "influx-rp", NULL);
    tb_conf_print_default(ca, o, "influx-user", NULL);
    tb_conf_print_default(ca, o, "influx-password-file", NULL);
    tb_conf_print_default(ca, o, "influx-create-db", NULL);
    tb_conf_print_default(ca, o, "influx-org", NULL);
    tb_conf_print_default(ca, o, "influx-bucket", NULL);
    tb_conf_print_default(ca, o, "influx-token-file", NULL);
    tb_conf_print_default(ca, o, "influx-ca", NULL);
    tb_conf_print_default(ca, o, "influx-timeout-ms", "%ld", i->timeout_ms);
    tb_conf_print_default(ca, o, "influx-no-gzip", NULL);
    tb_conf_print_default(ca, o, "batch-lines", "%zu", d->batch_lines);
    tb_conf_print_default(ca, o, "batch-ms", "%u", (unsigned)d->batch_ms);
    tb_conf_print_default(ca, o, "queue-mb", "%llu",
                          (unsigned long long)(d->writer.queue_bytes >> 20));
    tb_conf_print_default(ca, o, "spool-dir", NULL);
    tb_conf_print_default(ca, o, "spool-mb", "%llu",
                          (unsigned long long)(d->writer.spool_bytes >> 20));
    tb_conf_print_default(ca, o, "interval", "%u", (unsigned)d->interval_s);
    tb_conf_print_default(ca, o, "lateness", "%u", (unsigned)d->lateness_s);
    tb_conf_print_default(ca, o, "interval-flows", "%zu", d->table_capacity);
}

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
        return -1;
    }
    if (cfg->curve != NULL && cfg->curve_allow_probes == NULL) {
        snprintf(msg, size, "--curve-key needs --curve-allow-probes DIR (the public "
                            "certificates of the probes that may send)");
        return -1;
    }
    if (cfg->curve != NULL && cfg->curve_allow == NULL && cfg->curve_allow_read == NULL) {
        snprintf(msg, size, "--curve-key needs --curve-allow DIR and/or --curve-allow-read DIR "
                            "(the public certificates of tapbusctl and gateways)");
        return -1;
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

int main(int argc, char **argv)
{
    static tb_curve_cert_t curve; /* --curve-key: lives as long as the collector */
    tb_collector_config_t cfg;
    tb_collector_config_defaults(&cfg);
    enum {
        O_LISTEN = 255,
        O_PROBE = 256,
        O_CONTROL,
        O_MAXSTREAMS,
        O_FLOWS,
        O_HOSTS,
        O_TOP,
        O_HWM,
        O_LOG,
        O_HELP,
        O_CONFIG,
        O_PRINTCONF,
        O_IURL,
        O_IVER,
        O_IDB,
        O_IRP,
        O_IUSER,
        O_IPASSF,
        O_ICREATE,
        O_IORG,
        O_IBUCKET,
        O_ITOKENF,
        O_ICA,
        O_ITIMEOUT,
        O_INOGZIP,
        O_BLINES,
        O_BMS,
        O_QMB,
        O_SPOOL,
        O_SPOOLMB,
        O_INTERVAL,
        O_LATENESS,
        O_IFLOWS,
        O_STATEDIR,
        O_CURVE_KEY,
        O_CURVE_ALLOW,
        O_CURVE_READ,
        O_CURVE_PROBES
    };
    static const struct option opts[] = {
        {"probe", required_argument, NULL, O_PROBE},
        {"listen", required_argument, NULL, O_LISTEN},
        {"control", required_argument, NULL, O_CONTROL},
        {"max-streams", required_argument, NULL, O_MAXSTREAMS},
        {"flows", required_argument, NULL, O_FLOWS},
        {"hosts", required_argument, NULL, O_HOSTS},
        {"top", required_argument, NULL, O_TOP},
        {"hwm", required_argument, NULL, O_HWM},
        {"log-level", required_argument, NULL, O_LOG},
        {"help", no_argument, NULL, O_HELP},
        {"config", required_argument, NULL, O_CONFIG},
        {"print-config", no_argument, NULL, O_PRINTCONF},
        {"influx-url", required_argument, NULL, O_IURL},
        {"influx-version", required_argument, NULL, O_IVER},
        {"influx-db", required_argument, NULL, O_IDB},
        {"influx-rp", required_argument, NULL, O_IRP},
        {"influx-user", required_argument, NULL, O_IUSER},
        {"influx-password-file", required_argument, NULL, O_IPASSF},
        {"influx-create-db", no_argument, NULL, O_ICREATE},
        {"influx-org", required_argument, NULL, O_IORG},
        {"influx-bucket", required_argument, NULL, O_IBUCKET},
        {"influx-token-file", required_argument, NULL, O_ITOKENF},
        {"influx-ca", required_argument, NULL, O_ICA},
        {"influx-timeout-ms", required_argument, NULL, O_ITIMEOUT},
        {"influx-no-gzip", no_argument, NULL, O_INOGZIP},
        {"batch-lines", required_argument, NULL, O_BLINES},
        {"batch-ms", required_argument, NULL, O_BMS},
        {"queue-mb", required_argument, NULL, O_QMB},
        {"spool-dir", required_argument, NULL, O_SPOOL},
        {"spool-mb", required_argument, NULL, O_SPOOLMB},
        {"interval", required_argument, NULL, O_INTERVAL},
        {"lateness", required_argument, NULL, O_LATENESS},
        {"interval-flows", required_argument, NULL, O_IFLOWS},
        {"state-dir", required_argument, NULL, O_STATEDIR},
        {"curve-key", required_argument, NULL, O_CURVE_KEY},
        {"curve-allow", required_argument, NULL, O_CURVE_ALLOW},
        {"curve-allow-read", required_argument, NULL, O_CURVE_READ},
        {"curve-allow-probes", required_argument, NULL, O_CURVE_PROBES},
        {NULL, 0, NULL, 0},
    };
    char msg[512];
    int c;
    uint64_t v;
    tb_influx_sink_config_t db;
    tb_influx_sink_config_defaults(&db);
    const tb_collector_config_t cfg_default = cfg;
    const tb_influx_sink_config_t db_default = db;
    const int log_default = tb_log_get_level();
    tb_influx_config_t *ic = &db.writer.db;
    char *password = NULL, *token = NULL;
    int rc = 2;
    /* Options from the configuration file, then the environment, then the
     * command line (which wins). */
    tb_conf_args_t ca;
    if (tb_conf_build("TAPBUS_COLLECTOR", opts, argc, argv, &ca, msg, sizeof msg) != 0) {
        return s_fail(msg);
    }
    argc = ca.argc;
    argv = ca.argv;
    int parsing = 1; /* errors name the file and line of a bad setting */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_CONFIG:
        case O_PRINTCONF:
            break; /* taken by tb_conf_build */
        case O_PROBE:
            if (cfg.nprobes == TB_COLLECTOR_MAX_PROBES) {
                snprintf(msg, sizeof msg, "%s", "too many --probe options");
                goto fail;
            }
            cfg.probes[cfg.nprobes++] = optarg;
            break;
        case O_LISTEN:
            if (cfg.nlisten == TB_COLLECTOR_MAX_PROBES) {
                snprintf(msg, sizeof msg, "%s", "too many --listen options");
                goto fail;
            }
            cfg.listen[cfg.nlisten++] = optarg;
            break;
        case O_CONTROL:
            cfg.control = optarg;
            break;
        case O_MAXSTREAMS:
            if (tb_opt_u64(optarg, 1, 100000, &v) != 0) {
                snprintf(msg, sizeof msg, "%s", "--max-streams must be 1-100000");
                goto fail;
            }
            cfg.max_streams = (size_t)v;
            break;
        case O_FLOWS:
        case O_HOSTS:
            if (tb_opt_u64(optarg, 1, 1u << 24, &v) != 0) {
                snprintf(msg, sizeof msg, "%s must be 1-16777216",
                         c == O_FLOWS ? "--flows" : "--hosts");
                goto fail;
            }
            *(c == O_FLOWS ? &cfg.flow_capacity : &cfg.host_capacity) = (size_t)v;
            break;
        case O_TOP:
            if (tb_opt_u64(optarg, 1, 64, &v) != 0) {
                snprintf(msg, sizeof msg, "%s", "--top must be 1-64");
                goto fail;
            }
            cfg.top_n = (size_t)v;
            break;
        case O_HWM:
            if (tb_opt_u64(optarg, 1, 10000000, &v) != 0) {
                snprintf(msg, sizeof msg, "%s", "--hwm must be 1-10000000");
                goto fail;
            }
            cfg.rcvhwm = (int)v;
            break;
        case O_LOG: {
            int level = tb_log_parse_level(optarg);
            if (level < 0) {
                snprintf(msg, sizeof msg, "%s", "--log-level must be error, warn, info or debug");
                goto fail;
            }
            tb_log_set_level(level);
            break;
        }
        case O_HELP:
            s_usage(stdout);
            free(password);
            free(token);
            tb_conf_free(&ca);
            return 0;
        case O_IURL:
            ic->url = optarg;
            break;
        case O_IVER:
            if (s_num("influx-version", optarg, 1, 2, &v, msg, sizeof msg) != 0) {
                goto fail;
            }
            ic->version = (int)v;
            break;
        case O_IDB:
            ic->db = optarg;
            break;
        case O_IRP:
            ic->rp = optarg;
            break;
        case O_IUSER:
            ic->user = optarg;
            break;
        case O_IPASSF:
            free(password);
            if ((password = s_read_secret(optarg, msg, sizeof msg)) == NULL) {
                goto fail;
            }
            break;
        case O_ICREATE:
            ic->create_db = 1;
            break;
        case O_IORG:
            ic->org = optarg;
            break;
        case O_IBUCKET:
            ic->bucket = optarg;
            break;
        case O_ITOKENF:
            free(token);
            if ((token = s_read_secret(optarg, msg, sizeof msg)) == NULL) {
                goto fail;
            }
            break;
        case O_ICA:
            ic->ca_file = optarg;
            break;
        case O_ITIMEOUT:
            if (s_num("influx-timeout-ms", optarg, 100, 600000, &v, msg, sizeof msg) != 0) {
                goto fail;
            }
            ic->timeout_ms = (long)v;
            ic->connect_timeout_ms = v < 5000 ? (long)v : 5000;
            db.writer.shutdown_ms = (uint32_t)v;
            break;
        case O_INOGZIP:
            ic->gzip = 0;
            break;
        case O_BLINES:
            if (s_num("batch-lines", optarg, 1, 1000000, &v, msg, sizeof msg) != 0) {
                goto fail;
            }
            db.batch_lines = (size_t)v;
            break;
        case O_BMS:
            if (s_num("batch-ms", optarg, 1, 3600000, &v, msg, sizeof msg) != 0) {
                goto fail;
            }
            db.batch_ms = (uint32_t)v;
            break;
        case O_QMB:
            if (s_num("queue-mb", optarg, 1, 65536, &v, msg, sizeof msg) != 0) {
                goto fail;
            }
            db.writer.queue_bytes = v << 20;
            break;
        case O_SPOOL:
            db.writer.spool_dir = optarg;
            break;
        case O_STATEDIR:
            cfg.state_dir = optarg;
            break;
        case O_CURVE_KEY:
            if (tb_curve_cert_load(optarg, 1, &curve, msg, sizeof msg) != 0) {
                goto fail;
            }
            cfg.curve = &curve;
            break;
        case O_CURVE_ALLOW:
            cfg.curve_allow = optarg;
            break;
        case O_CURVE_READ:
            cfg.curve_allow_read = optarg;
            break;
        case O_CURVE_PROBES:
            cfg.curve_allow_probes = optarg;
            break;
        case O_SPOOLMB:
            if (s_num("spool-mb", optarg, 1, 1u << 24, &v, msg, sizeof msg) != 0) {
                goto fail;
            }
            db.writer.spool_bytes = v << 20;
            break;
        case O_INTERVAL:
            if (s_num("interval", optarg, 1, 86400, &v, msg, sizeof msg) != 0) {
                goto fail;
            }
            db.interval_s = (uint32_t)v;
            break;
        case O_LATENESS:
            if (s_num("lateness", optarg, 0, TB_SERIES_MAX_LATENESS, &v, msg, sizeof msg) != 0) {
                goto fail;
            }
            db.lateness_s = (uint32_t)v;
            break;
        case O_IFLOWS:
            if (s_num("interval-flows", optarg, 1, 1u << 20, &v, msg, sizeof msg) != 0) {
                goto fail;
            }
            db.table_capacity = (size_t)v;
            break;
        default:
            snprintf(msg, sizeof msg, "unknown or incomplete option '%s' (see --help)",
                     argv[optind - 1]);
            goto fail;
        }
    }
    if (optind < argc) {
        snprintf(msg, sizeof msg, "unexpected argument '%s' (see --help)", argv[optind]);
        optind++; /* its origin is optind - 1 */
        goto fail;
    }
    parsing = 0;
    if (ca.print_only) {
        s_print_config(&ca, &cfg_default, &db_default, log_default);
        tb_conf_free(&ca);
        free(password);
        free(token);
        return 0;
    }
    if (ic->url != NULL) {
        const char *env = getenv("TAPBUS_INFLUX_PASSWORD");
        ic->password = password != NULL ? password : env;
        env = getenv("TAPBUS_INFLUX_TOKEN");
        ic->token = token != NULL ? token : env;
        db.top_n = cfg.top_n;
        cfg.db = &db;
        if (tb_influx_global_init() != 0) {
            snprintf(msg, sizeof msg, "cannot initialise libcurl");
            goto fail;
        }
    } else if (db.writer.spool_dir != NULL) {
        snprintf(msg, sizeof msg, "--spool-dir needs --influx-url");
        goto fail;
    }
    if (s_check_curve(&cfg, msg, sizeof msg) != 0) {
        goto fail;
    }
    s_raise_nofile();
    int stop_fd = tb_opt_stop_fd();
    if (stop_fd < 0) {
        snprintf(msg, sizeof msg, "cannot set up signal handling");
        goto fail;
    }
    tb_collector_t *coll = tb_collector_new(&cfg, msg, sizeof msg);
    if (coll == NULL) {
        close(stop_fd);
        goto fail;
    }
    rc = tb_collector_run(coll, stop_fd) == 0 ? 0 : 1;
    tb_collector_destroy(&coll);
    close(stop_fd);
    tb_log(TB_LOG_INFO, "collector", "stopped");
    explicit_bzero(&curve, sizeof curve);
    free(password);
    free(token);
    tb_conf_free(&ca);
    return rc;
fail:
    free(password);
    free(token);
    if (parsing && tb_conf_origin(&ca, optind - 1)[0] != '\0') {
        char full[1024];
        snprintf(full, sizeof full, "%s%s", tb_conf_origin(&ca, optind - 1), msg);
        tb_conf_free(&ca);
        return s_fail(full);
    }
    tb_conf_free(&ca);
    return s_fail(msg);
}
