/* tapbus-probe — capture packets, summarise them, publish them on the bus.
 * The options are a table (tb_options); main() reads them, creates the
 * probe, runs it until SIGINT or SIGTERM, and stops it. */
#include "probe.h"

#include "tb_curve.h"
#include "tb_err.h"
#include "tb_log.h"
#include "tb_opt.h"
#include "tb_options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_SNAPLEN_MAX 262144
#define S_SAMPLE_MAX  1000000000
#define S_STR2(x)     #x
#define S_STR(x)      S_STR2(x)

/* Everything the options set. */
typedef struct {
    tb_probe_config_t cfg;
    struct {
        char stream[TB_STREAM_MAX + 1];
        const char *expr;
    } filters[TB_PROBE_MAX_SOURCES]; /* --filter-for, matched to sources after parsing */
    size_t nfilters;
    tb_curve_cert_t curve, server; /* --curve-key, --curve-server-key */
    int log_level;
} s_opts_t;

static int s_set_id(void *cfg, const tb_option_t *opt, const tb_option_value_t *v, char *err,
                    size_t errsize)
{
    (void)opt;
    s_opts_t *o = cfg;
    if (tb_wire_name_valid(v->arg) != 0) {
        snprintf(err, errsize, "invalid --id '%s'", v->arg);
        return TB_EINVAL;
    }
    snprintf(o->cfg.id, sizeof o->cfg.id, "%s", v->arg);
    return 0;
}

static void s_show_id(const void *cfg, char *buf, size_t size)
{
    snprintf(buf, size, "%s", ((const s_opts_t *)cfg)->cfg.id);
}

static int s_set_source(void *cfg, const tb_option_t *opt, const tb_option_value_t *v, char *err,
                        size_t errsize)
{
    (void)opt;
    s_opts_t *o = cfg;
    const char *arg = v->arg, *eq = strchr(arg, '=');
    if (eq == NULL || eq == arg) {
        snprintf(err, errsize, "--source '%s' is not STREAM=KIND:ARG", arg);
        return TB_EINVAL;
    }
    if ((size_t)(eq - arg) > TB_STREAM_MAX) {
        snprintf(err, errsize, "stream name '%.*s...' is longer than %d characters", 20, arg,
                 TB_STREAM_MAX);
        return TB_EINVAL;
    }
    if (o->cfg.nsources == TB_PROBE_MAX_SOURCES) {
        snprintf(err, errsize, "too many --source options");
        return TB_EINVAL;
    }
    tb_probe_source_cfg_t *sc = &o->cfg.sources[o->cfg.nsources++];
    snprintf(sc->stream, sizeof sc->stream, "%.*s", (int)(eq - arg), arg);
    sc->spec = eq + 1;
    return 0;
}

static int s_set_filter_for(void *cfg, const tb_option_t *opt, const tb_option_value_t *v,
                            char *err, size_t errsize)
{
    (void)opt;
    s_opts_t *o = cfg;
    const char *arg = v->arg, *eq = strchr(arg, '=');
    if (eq == NULL || eq == arg || (size_t)(eq - arg) > TB_STREAM_MAX) {
        snprintf(err, errsize, "--filter-for must be STREAM=EXPR");
        return TB_EINVAL;
    }
    if (o->nfilters == TB_PROBE_MAX_SOURCES) {
        snprintf(err, errsize, "too many --filter-for options");
        return TB_EINVAL;
    }
    snprintf(o->filters[o->nfilters].stream, sizeof o->filters[o->nfilters].stream, "%.*s",
             (int)(eq - arg), arg);
    o->filters[o->nfilters++].expr = eq + 1;
    return 0;
}

static int s_set_promisc(void *cfg, const tb_option_t *opt, const tb_option_value_t *v, char *err,
                         size_t errsize)
{
    (void)opt, (void)err, (void)errsize;
    ((s_opts_t *)cfg)->cfg.src.live.promisc = v->u == 0; /* "on|off" */
    return 0;
}

static void s_show_promisc(const void *cfg, char *buf, size_t size)
{
    snprintf(buf, size, "%s", ((const s_opts_t *)cfg)->cfg.src.live.promisc ? "on" : "off");
}

static int s_set_replay_speed(void *cfg, const tb_option_t *opt, const tb_option_value_t *v,
                              char *err, size_t errsize)
{
    if (v->d > 0 && v->d < 1e-6) {
        snprintf(err, errsize, "%s", opt->error);
        return TB_EINVAL;
    }
    ((s_opts_t *)cfg)->cfg.src.replay_speed = v->d;
    return 0;
}

static int s_set_after_read(void *cfg, const tb_option_t *opt, const tb_option_value_t *v,
                            char *err, size_t errsize)
{
    (void)opt;
    tb_source_dir_cfg_t *d = &((s_opts_t *)cfg)->cfg.src.dir;
    if (strcmp(v->arg, "keep") == 0 || strcmp(v->arg, "delete") == 0) {
        d->delete_done = strcmp(v->arg, "delete") == 0;
        d->move_to = NULL;
    } else if (strncmp(v->arg, "move:", 5) == 0 && v->arg[5] != '\0') {
        d->move_to = v->arg + 5;
        d->delete_done = 0;
    } else {
        snprintf(err, errsize, "--after-read must be keep, delete or move:DIR");
        return TB_EINVAL;
    }
    return 0;
}

static void s_show_after_read(const void *cfg, char *buf, size_t size)
{
    const tb_source_dir_cfg_t *d = &((const s_opts_t *)cfg)->cfg.src.dir;
    snprintf(buf, size, "%s%s",
             d->move_to       ? "move:"
             : d->delete_done ? "delete"
                              : "keep",
             d->move_to ? d->move_to : "");
}

static void s_show_unreadable(const void *cfg, char *buf, size_t size)
{
    uint32_t s = ((const s_opts_t *)cfg)->cfg.src.dir.unreadable_s;
    snprintf(buf, size, "%u", s ? (unsigned)s : (unsigned)TB_SOURCE_UNREADABLE_S);
}

static int s_set_curve_key(void *cfg, const tb_option_t *opt, const tb_option_value_t *v, char *err,
                           size_t errsize)
{
    (void)opt;
    s_opts_t *o = cfg;
    int rc = tb_curve_cert_load(v->arg, 1, &o->curve, err, errsize);
    if (rc != 0) {
        return rc;
    }
    o->cfg.curve = &o->curve;
    return 0;
}

static int s_set_curve_server(void *cfg, const tb_option_t *opt, const tb_option_value_t *v,
                              char *err, size_t errsize)
{
    (void)opt;
    s_opts_t *o = cfg;
    int rc = tb_curve_cert_load(v->arg, 0, &o->server, err, errsize);
    if (rc != 0) {
        return rc;
    }
    o->cfg.curve_server_key = o->server.public_key;
    return 0;
}

#define F(m) TB_OPTION_FIELD(s_opts_t, m)

static const tb_option_t s_options[] = {
    {TB_OPTION_TEXT, .help = "sources:\n"},
    {TB_OPTION_STRING, "source", .arg = "STREAM=KIND:ARG", .set = s_set_source,
     .help = "a source, one stream (repeatable); KIND:ARG is one of\n"
             "  file:PATH   a pcap or pcapng file (nanosecond timestamps kept)\n"
             "  cap:PATH    a DPMI capfile (0.5 to 0.7, picoseconds kept to ns)\n"
             "  iface:NAME  live capture on a network interface (libpcap)\n"
             "  dir:PATH    capture files (pcap, pcapng, DPMI capfiles) in a\n"
             "              directory, followed as written\n"
             "  dpmi:IFACE[/ADDRESS]  a live DPMI measurement stream received\n"
             "              on IFACE at ADDRESS (default: the stream's name,\n"
             "              e.g. 01::10:01 = 01:00:00:00:10:01)"},
    {TB_OPTION_DOUBLE, "replay-speed", .arg = "X", F(cfg.src.replay_speed), .dmin = 0,
     .dmax = TB_SOURCE_SPEED_MAX, .set = s_set_replay_speed,
     .error = "--replay-speed must be 0 (as fast as possible) or a factor from 0.000001 to "
              "1000000, e.g. 1.0 for the capture's own pace",
     .help = "file and cap sources: replay at X times the capture's\n"
             "own pace (default {default}: as fast as the bus takes it)"},
    {TB_OPTION_TEXT, .help = "\ndirectories (apply to every dir source):\n"},
    {TB_OPTION_STRING, "checkpoint-dir", .arg = "DIR", F(cfg.src.dir.checkpoint_dir),
     .help = "where checkpoints are kept (default: the directory\n"
             "itself, as .tapbus-STREAM.checkpoint, '/' as %2F)"},
    {TB_OPTION_STRING, "after-read", .arg = "WHAT", .set = s_set_after_read,
     .show = s_show_after_read,
     .help = "keep, delete or move:DIR finished files (default {default})"},
    {TB_OPTION_U64, "unreadable-timeout", .arg = "S", F(cfg.src.dir.unreadable_s), .min = 1,
     .max = TB_SOURCE_UNREADABLE_S_MAX, .show = s_show_unreadable,
     .error = "--unreadable-timeout must be 1-86400 seconds",
     .help = "retry a file that cannot be opened for S seconds,\n"
             "then skip it and count it, {range} (default {default})"},
    {TB_OPTION_TEXT,
     .help = "\nlive capture (applies to every iface source; --buffer-mb, --filter and\n"
             "--sample to dpmi sources too, the filter run on each record):\n"},
    {TB_OPTION_U64, "snaplen", .arg = "N", F(cfg.src.live.snaplen), .min = 1, .max = S_SNAPLEN_MAX,
     .help = "bytes kept of each packet, {range} (default {default})"},
    {TB_OPTION_U64, "buffer-mb", .arg = "N", F(cfg.src.live.buffer_mb), .min = 1,
     .max = TB_SOURCE_BUFFER_MB_MAX, .help = "capture buffer in MiB, {range} (default {default})"},
    {TB_OPTION_ENUM, "promisc", .arg = "on|off", .words = "on|off", .set = s_set_promisc,
     .show = s_show_promisc, .error = "--promisc must be on or off",
     .help = "promiscuous mode (default {default})"},
    {TB_OPTION_STRING, "filter", .arg = "EXPR", F(cfg.src.live.filter),
     .help = "BPF filter (tcpdump syntax); a bad one is an error of\nthe stream"},
    {TB_OPTION_STRING, "filter-for", .arg = "STREAM=EXPR", .set = s_set_filter_for,
     .help = "a filter for one stream only (wins over --filter)"},
    {TB_OPTION_U64, "sample", .arg = "N", F(cfg.src.live.sample), .min = 1, .max = S_SAMPLE_MAX,
     .help = "keep 1 in N packets the filter passed: the 1st, N+1th,\n"
             "2N+1th ... (default {default}, every packet)"},
    {TB_OPTION_TEXT, .help = "\noptions:\n"},
    {TB_OPTION_STRING, "id", .arg = "NAME", .set = s_set_id, .show = s_show_id,
     .help = "probe id (default: the host name)"},
    {TB_OPTION_STRING, "publish", .arg = "ENDPOINT", F(cfg.publish),
     .help = "XPUB endpoint to bind (default {default} unless\n--connect is given)"},
    {TB_OPTION_LIST, "connect", .arg = "ENDPOINT", F(cfg.connect),
     TB_OPTION_COUNT(s_opts_t, cfg.nconnect), .max = TB_PROBE_MAX_CONNECT,
     .help = "connect to a collector that binds (--listen), e.g.\nfrom behind NAT (repeatable)"},
    {TB_OPTION_U64, "batch", .arg = "N", F(cfg.batch_size), .min = 1, .max = TB_WIRE_MAX_BATCH,
     .help = "summaries per batch, {range} (default {default})"},
    {TB_OPTION_U64, "batch-ms", .arg = "MS", F(cfg.batch_ms), .min = 1, .max = 60000,
     .help = "send a batch at the latest after MS ms, {range} (default {default})"},
    {TB_OPTION_U64, "hwm", .arg = "N", F(cfg.sndhwm), .min = 1, .max = 10000000,
     .help = "bus high-water mark in messages, {range} (default {default})"},
    {TB_OPTION_STRING, "curve-key", .arg = "FILE", .set = s_set_curve_key,
     .help = "this probe's secret certificate (NAME_secret from\n"
             "tapbusctl keygen): CURVE on the bus, whichever side binds"},
    {TB_OPTION_STRING, "curve-server-key", .arg = "FILE", .set = s_set_curve_server,
     .help = "the collector's public certificate (with --curve-key)"},
    {TB_OPTION_ENUM, "log-level", .arg = "LEVEL", F(log_level), .words = "error|warn|info|debug",
     .help = "error, warn, info or debug (default {default})"},
    {TB_OPTION_CONFIG, "config", .arg = "FILE", .flags = TB_OPTION_CLI_ONLY,
     .help = "read options from FILE (or $TAPBUS_PROBE_CONFIG):\n"
             "'name = value' per line; the environment (TAPBUS_PROBE_NAME)\n"
             "overrides it, the command line both"},
    {TB_OPTION_PRINT_CONFIG, "print-config", .flags = TB_OPTION_CLI_ONLY,
     .help = "print the options in effect and where they came from"},
    {TB_OPTION_HELP, "help", .flags = TB_OPTION_CLI_ONLY, .help = "this text"},
};

#undef F

static const tb_options_spec_t s_spec = {
    .env_prefix = "TAPBUS_PROBE",
    .usage = "usage: tapbus-probe --source STREAM=KIND:ARG [--source ...] [options]\n"
             "\n"
             "Capture packets, summarise each one and publish batches of summaries on a\n"
             "ZeroMQ XPUB socket, one stream (topic) per source. A file source is read\n"
             "when its stream is first subscribed, losslessly, and ends with an\n"
             "end-of-stream message. A live source captures while its stream has\n"
             "subscribers; a full bus drops (and counts) batches, never stalls capture.\n"
             "A directory source reads the files tcpdump -C/-G writes, in order, follows\n"
             "new ones, and resumes from its checkpoint after a restart.\n"
             "\n",
    .footer = "\nStream names: 1-" S_STR(
        TB_STREAM_MAX) " characters of A-Z a-z 0-9 . _ : / @ + - (e.g. 01::10:01).\n",
    .options = s_options,
    .noptions = TB_OPTION_ARRAY_LEN(s_options),
    .help_column = 23,
};

/* What no single option can check: each --filter-for names an iface or dpmi
 * source; CURVE comes as a pair; --connect alone means no bind. */
static int s_check(s_opts_t *o, const tb_options_t *opts, char *msg, size_t size)
{
    tb_probe_config_t *cfg = &o->cfg;
    for (size_t i = 0; i < o->nfilters; i++) {
        size_t j = 0;
        while (j < cfg->nsources && strcmp(cfg->sources[j].stream, o->filters[i].stream) != 0) {
            j++;
        }
        if (j == cfg->nsources) {
            snprintf(msg, size, "--filter-for names stream '%.64s', which no --source has",
                     o->filters[i].stream);
            return TB_EINVAL;
        }
        if (strncmp(cfg->sources[j].spec, "iface:", 6) != 0 &&
            strncmp(cfg->sources[j].spec, "dpmi:", 5) != 0) {
            snprintf(msg, size, "--filter-for %.64s: filters apply to iface and dpmi sources only",
                     o->filters[i].stream);
            return TB_EINVAL;
        }
        cfg->sources[j].filter = o->filters[i].expr;
    }
    if ((cfg->curve == NULL) != (cfg->curve_server_key == NULL)) {
        snprintf(msg, size, "%s",
                 cfg->curve == NULL ? "--curve-server-key needs --curve-key (this probe's secret "
                                      "certificate)"
                                    : "--curve-key needs --curve-server-key (the collector's "
                                      "public certificate)");
        return TB_EINVAL;
    }
    if (cfg->nconnect > 0 && !tb_options_is_set(opts, "publish")) {
        cfg->publish = NULL; /* connecting only, unless a bind was asked for too */
    }
    return 0;
}

static int s_fail(const char *msg)
{
    fprintf(stderr, "tapbus-probe: %s\n", msg);
    return 2;
}

int main(int argc, char **argv)
{
    static s_opts_t o, defaults; /* certificates: large, and alive as long as the probe */
    tb_probe_config_defaults(&o.cfg);
    if (gethostname(o.cfg.id, sizeof o.cfg.id - 1) != 0 || tb_wire_name_valid(o.cfg.id) != 0) {
        snprintf(o.cfg.id, sizeof o.cfg.id, "probe");
    }
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
    if (rc == 0 && s_check(&o, opts, msg, sizeof msg) != 0) {
        rc = TB_OPTIONS_EVALUE;
    }
    if (rc != 0) {
        if (rc == TB_OPTIONS_EUNKNOWN) {
            strncat(msg, " (see --help)", sizeof msg - strlen(msg) - 1);
        }
        tb_options_destroy(&opts);
        return s_fail(msg);
    }
    if (tb_options_print_only(opts)) {
        tb_options_print_config(opts, &defaults, stdout);
        tb_options_destroy(&opts);
        return 0;
    }
    tb_log_set_level(o.log_level);

    int stop_fd = tb_opt_stop_fd();
    tb_probe_t *probe = NULL;
    if (stop_fd < 0) {
        snprintf(msg, sizeof msg, "cannot set up signal handling");
    } else {
        probe = tb_probe_new(&o.cfg, msg, sizeof msg);
    }
    if (probe != NULL && tb_probe_start(probe, msg, sizeof msg) != 0) {
        tb_probe_destroy(&probe);
    }
    if (probe == NULL) {
        if (stop_fd >= 0) {
            close(stop_fd);
        }
        tb_options_destroy(&opts);
        return s_fail(msg);
    }
    rc = tb_probe_run(probe, stop_fd);
    tb_probe_destroy(&probe);
    close(stop_fd);
    tb_log(TB_LOG_INFO, "probe", "stopped");
    explicit_bzero(&o.curve, sizeof o.curve);
    tb_options_destroy(&opts);
    return rc == 0 ? 0 : 1;
}
