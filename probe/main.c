/* tapbus-probe — capture packets, summarise them, publish them on the bus.
 * main() only parses options and wires the probe together. */
#include "probe.h"

#include "tb_err.h"
#include "tb_conf.h"
#include "tb_curve.h"
#include "tb_log.h"
#include "tb_opt.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_SNAPLEN_MAX 262144
#define S_SAMPLE_MAX  1000000000

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: tapbus-probe --source STREAM=KIND:ARG [--source ...] [options]\n"
            "\n"
            "Capture packets, summarise each one and publish batches of summaries on a\n"
            "ZeroMQ XPUB socket, one stream (topic) per source. A file source is read\n"
            "when its stream is first subscribed, losslessly, and ends with an\n"
            "end-of-stream message. A live source captures while its stream has\n"
            "subscribers; a full bus drops (and counts) batches, never stalls capture.\n"
            "A directory source reads the files tcpdump -C/-G writes, in order, follows\n"
            "new ones, and resumes from its checkpoint after a restart.\n"
            "\n"
            "sources:\n"
            "  --source STREAM=file:PATH   a pcap or pcapng file (nanosecond timestamps kept)\n"
            "  --source STREAM=cap:PATH    a DPMI capfile (0.5 to 0.7, picoseconds kept to ns)\n"
            "  --source STREAM=iface:NAME  live capture on a network interface (libpcap)\n"
            "  --source STREAM=dir:PATH    capture files (pcap, pcapng, DPMI capfiles) in a\n"
            "                              directory, followed as written\n"
            "  --source STREAM=dpmi:IFACE[/ADDRESS]  a live DPMI measurement stream received\n"
            "                              on IFACE at ADDRESS (default: the stream's name,\n"
            "                              e.g. 01::10:01 = 01:00:00:00:10:01)\n"
            "  --replay-speed X     file and cap sources: replay at X times the capture's\n"
            "                       own pace (default 0: as fast as the bus takes it)\n"
            "\n"
            "directories (apply to every dir source):\n"
            "  --checkpoint-dir DIR  where checkpoints are kept (default: the directory\n"
            "                        itself, as .tapbus-STREAM.checkpoint, '/' as %%2F)\n"
            "  --after-read WHAT     keep, delete or move:DIR finished files (default keep)\n"
            "  --unreadable-timeout S  retry a file that cannot be opened for S seconds,\n"
            "                        then skip it and count it, 1-%d (default %d)\n"
            "\n"
            "live capture (applies to every iface source; --buffer-mb, --filter and\n"
            "--sample to dpmi sources too, the filter run on each record):\n"
            "  --snaplen N          bytes kept of each packet, 1-%d (default 128)\n"
            "  --buffer-mb N        capture buffer in MiB, 1-%d (default 128)\n"
            "  --promisc on|off     promiscuous mode (default on)\n"
            "  --filter EXPR        BPF filter (tcpdump syntax); a bad one is an error of\n"
            "                       the stream\n"
            "  --filter-for STREAM=EXPR  a filter for one stream only (wins over --filter)\n"
            "  --sample N           keep 1 in N packets the filter passed: the 1st, N+1th,\n"
            "                       2N+1th ... (default 1, every packet)\n"
            "\n"
            "options:\n"
            "  --id NAME            probe id (default: the host name)\n"
            "  --publish ENDPOINT   XPUB endpoint to bind (default tcp://*:5556 unless\n"
            "                       --connect is given)\n"
            "  --connect ENDPOINT   connect to a collector that binds (--listen), e.g.\n"
            "                       from behind NAT (repeatable)\n"
            "  --batch N            summaries per batch, 1-%u (default 1024)\n"
            "  --batch-ms MS        send a batch at the latest after MS ms (default 100)\n"
            "  --hwm N              bus high-water mark in messages (default 100)\n"
            "  --curve-key FILE     this probe's secret certificate (NAME_secret from\n"
            "                       tapbusctl keygen): CURVE on the bus, whichever side binds\n"
            "  --curve-server-key FILE  the collector's public certificate (with --curve-key)\n"
            "  --log-level LEVEL    error, warn, info or debug (default info)\n"
            "  --config FILE        read options from FILE (or $TAPBUS_PROBE_CONFIG):\n"
            "                       'name = value' per line; the environment (TAPBUS_PROBE_NAME)\n"
            "                       overrides it, the command line both\n"
            "  --print-config       print the options in effect and where they came from\n"
            "  --help               this text\n"
            "\n"
            "Stream names: 1-%d characters of A-Z a-z 0-9 . _ : / @ + - (e.g. 01::10:01).\n",
            TB_SOURCE_UNREADABLE_S_MAX, TB_SOURCE_UNREADABLE_S, S_SNAPLEN_MAX,
            TB_SOURCE_BUFFER_MB_MAX, TB_WIRE_MAX_BATCH, TB_STREAM_MAX);
}

/* The options as parsed: configuration file, environment, command line. */
static tb_conf_args_t s_conf;
static int s_parsing; /* a failure now is about the setting at optind - 1 */

static int s_fail(const char *msg)
{
    fprintf(stderr, "tapbus-probe: %s%s\n", s_parsing ? tb_conf_origin(&s_conf, optind - 1) : "",
            msg);
    tb_conf_free(&s_conf);
    return 2;
}

/* --print-config: what was set and where, then the defaults of the rest. */
static void s_print_config(const tb_probe_config_t *c, int log_level)
{
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    const tb_conf_args_t *ca = &s_conf;
    FILE *o = stdout;
    tb_conf_print(ca, o);
    tb_conf_print_default(ca, o, "id", "%s", c->id);
    tb_conf_print_default(ca, o, "source", NULL);
    tb_conf_print_default(ca, o, "publish", "%s", c->publish);
    tb_conf_print_default(ca, o, "connect", NULL);
    tb_conf_print_default(ca, o, "batch", "%zu", c->batch_size);
    tb_conf_print_default(ca, o, "batch-ms", "%u", (unsigned)c->batch_ms);
    tb_conf_print_default(ca, o, "hwm", "%d", c->sndhwm);
    tb_conf_print_default(ca, o, "snaplen", "%d", c->src.live.snaplen);
    tb_conf_print_default(ca, o, "buffer-mb", "%d", c->src.live.buffer_mb);
    tb_conf_print_default(ca, o, "promisc", "%s", c->src.live.promisc ? "on" : "off");
    tb_conf_print_default(ca, o, "filter", NULL);
    tb_conf_print_default(ca, o, "filter-for", NULL);
    tb_conf_print_default(ca, o, "sample", "%u", (unsigned)c->src.live.sample);
    tb_conf_print_default(ca, o, "replay-speed", "%g", c->src.replay_speed);
    tb_conf_print_default(ca, o, "checkpoint-dir", NULL);
    tb_conf_print_default(ca, o, "after-read", "keep");
    tb_conf_print_default(ca, o, "unreadable-timeout", "%u",
                          c->src.dir.unreadable_s ? (unsigned)c->src.dir.unreadable_s
                                                  : (unsigned)TB_SOURCE_UNREADABLE_S);
    tb_conf_print_default(ca, o, "curve-key", NULL);
    tb_conf_print_default(ca, o, "curve-server-key", NULL);
    tb_conf_print_default(ca, o, "log-level", "%s", levels[log_level & 3]);
}

int main(int argc, char **argv)
{
    static tb_curve_cert_t curve, server; /* --curve-key, --curve-server-key */
    tb_probe_config_t cfg;
    tb_probe_config_defaults(&cfg);
    int publish_given = 0;
    struct {
        char stream[TB_STREAM_MAX + 1];
        const char *expr;
    } filters[TB_PROBE_MAX_SOURCES];
    size_t nfilters = 0;
    if (gethostname(cfg.id, sizeof cfg.id - 1) != 0 || tb_wire_name_valid(cfg.id) != 0) {
        snprintf(cfg.id, sizeof cfg.id, "probe");
    }
    static tb_probe_config_t cfg_default;
    cfg_default = cfg;
    const int log_default = tb_log_get_level();
    enum {
        O_ID = 256,
        O_SOURCE,
        O_PUBLISH,
        O_CONNECT,
        O_BATCH,
        O_BATCH_MS,
        O_HWM,
        O_SNAPLEN,
        O_BUFFER_MB,
        O_PROMISC,
        O_FILTER,
        O_SAMPLE,
        O_FILTER_FOR,
        O_REPLAY_SPEED,
        O_CHECKPOINT_DIR,
        O_AFTER_READ,
        O_UNREADABLE,
        O_LOG,
        O_HELP,
        O_CONFIG,
        O_PRINTCONF,
        O_CURVE_KEY,
        O_CURVE_SERVER
    };
    static const struct option opts[] = {
        {"id", required_argument, NULL, O_ID},
        {"source", required_argument, NULL, O_SOURCE},
        {"publish", required_argument, NULL, O_PUBLISH},
        {"connect", required_argument, NULL, O_CONNECT},
        {"batch", required_argument, NULL, O_BATCH},
        {"batch-ms", required_argument, NULL, O_BATCH_MS},
        {"hwm", required_argument, NULL, O_HWM},
        {"snaplen", required_argument, NULL, O_SNAPLEN},
        {"buffer-mb", required_argument, NULL, O_BUFFER_MB},
        {"promisc", required_argument, NULL, O_PROMISC},
        {"filter", required_argument, NULL, O_FILTER},
        {"sample", required_argument, NULL, O_SAMPLE},
        {"filter-for", required_argument, NULL, O_FILTER_FOR},
        {"replay-speed", required_argument, NULL, O_REPLAY_SPEED},
        {"checkpoint-dir", required_argument, NULL, O_CHECKPOINT_DIR},
        {"after-read", required_argument, NULL, O_AFTER_READ},
        {"unreadable-timeout", required_argument, NULL, O_UNREADABLE},
        {"log-level", required_argument, NULL, O_LOG},
        {"help", no_argument, NULL, O_HELP},
        {"config", required_argument, NULL, O_CONFIG},
        {"print-config", no_argument, NULL, O_PRINTCONF},
        {"curve-key", required_argument, NULL, O_CURVE_KEY},
        {"curve-server-key", required_argument, NULL, O_CURVE_SERVER},
        {NULL, 0, NULL, 0},
    };
    char msg[512];
    int c;
    uint64_t v;
    /* Options from the configuration file, then the environment, then the
     * command line (which wins); the strings live until the end. */
    if (tb_conf_build("TAPBUS_PROBE", opts, argc, argv, &s_conf, msg, sizeof msg) != 0) {
        return s_fail(msg);
    }
    argc = s_conf.argc;
    argv = s_conf.argv;
    s_parsing = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_CONFIG:
        case O_PRINTCONF:
            break; /* taken by tb_conf_build */
        case O_ID:
            if (tb_wire_name_valid(optarg) != 0) {
                snprintf(msg, sizeof msg, "invalid --id '%s'", optarg);
                return s_fail(msg);
            }
            snprintf(cfg.id, sizeof cfg.id, "%s", optarg);
            break;
        case O_SOURCE: {
            const char *eq = strchr(optarg, '=');
            if (eq == NULL || eq == optarg) {
                snprintf(msg, sizeof msg, "--source '%s' is not STREAM=KIND:ARG", optarg);
                return s_fail(msg);
            }
            if ((size_t)(eq - optarg) > TB_STREAM_MAX) {
                snprintf(msg, sizeof msg, "stream name '%.*s...' is longer than %d characters", 20,
                         optarg, TB_STREAM_MAX);
                return s_fail(msg);
            }
            if (cfg.nsources == TB_PROBE_MAX_SOURCES) {
                return s_fail("too many --source options");
            }
            tb_probe_source_cfg_t *sc = &cfg.sources[cfg.nsources++];
            snprintf(sc->stream, sizeof sc->stream, "%.*s", (int)(eq - optarg), optarg);
            sc->spec = eq + 1;
            break;
        }
        case O_PUBLISH:
            cfg.publish = optarg;
            publish_given = 1;
            break;
        case O_CONNECT:
            if (cfg.nconnect == TB_PROBE_MAX_CONNECT) {
                return s_fail("too many --connect options");
            }
            cfg.connect[cfg.nconnect++] = optarg;
            break;
        case O_BATCH:
            if (tb_opt_u64(optarg, 1, TB_WIRE_MAX_BATCH, &v) != 0) {
                snprintf(msg, sizeof msg, "--batch must be 1-%u", TB_WIRE_MAX_BATCH);
                return s_fail(msg);
            }
            cfg.batch_size = (size_t)v;
            break;
        case O_UNREADABLE:
            if (tb_opt_u64(optarg, 1, TB_SOURCE_UNREADABLE_S_MAX, &v) != 0) {
                return s_fail("--unreadable-timeout must be 1-86400 seconds");
            }
            cfg.src.dir.unreadable_s = (uint32_t)v;
            break;
        case O_BATCH_MS:
            if (tb_opt_u64(optarg, 1, 60000, &v) != 0) {
                return s_fail("--batch-ms must be 1-60000");
            }
            cfg.batch_ms = (uint32_t)v;
            break;
        case O_HWM:
            if (tb_opt_u64(optarg, 1, 10000000, &v) != 0) {
                return s_fail("--hwm must be 1-10000000");
            }
            cfg.sndhwm = (int)v;
            break;
        case O_SNAPLEN:
            if (tb_opt_u64(optarg, 1, S_SNAPLEN_MAX, &v) != 0) {
                snprintf(msg, sizeof msg, "--snaplen must be 1-%d", S_SNAPLEN_MAX);
                return s_fail(msg);
            }
            cfg.src.live.snaplen = (int)v;
            break;
        case O_BUFFER_MB:
            if (tb_opt_u64(optarg, 1, TB_SOURCE_BUFFER_MB_MAX, &v) != 0) {
                snprintf(msg, sizeof msg, "--buffer-mb must be 1-%d", TB_SOURCE_BUFFER_MB_MAX);
                return s_fail(msg);
            }
            cfg.src.live.buffer_mb = (int)v;
            break;
        case O_PROMISC:
            if (strcmp(optarg, "on") != 0 && strcmp(optarg, "off") != 0) {
                return s_fail("--promisc must be on or off");
            }
            cfg.src.live.promisc = strcmp(optarg, "on") == 0;
            break;
        case O_REPLAY_SPEED: {
            char *end = NULL;
            errno = 0;
            double speed = strtod(optarg, &end);
            if (errno != 0 || end == optarg || *end != '\0' || !(speed >= 0) ||
                speed > TB_SOURCE_SPEED_MAX || (speed > 0 && speed < 1e-6)) {
                return s_fail("--replay-speed must be 0 (as fast as possible) or a factor "
                              "from 0.000001 to 1000000, e.g. 1.0 for the capture's own pace");
            }
            cfg.src.replay_speed = speed;
            break;
        }
        case O_CHECKPOINT_DIR:
            cfg.src.dir.checkpoint_dir = optarg;
            break;
        case O_AFTER_READ:
            if (strcmp(optarg, "keep") == 0) {
                cfg.src.dir.delete_done = 0;
                cfg.src.dir.move_to = NULL;
            } else if (strcmp(optarg, "delete") == 0) {
                cfg.src.dir.delete_done = 1;
                cfg.src.dir.move_to = NULL;
            } else if (strncmp(optarg, "move:", 5) == 0 && optarg[5] != '\0') {
                cfg.src.dir.move_to = optarg + 5;
                cfg.src.dir.delete_done = 0;
            } else {
                return s_fail("--after-read must be keep, delete or move:DIR");
            }
            break;
        case O_FILTER:
            cfg.src.live.filter = optarg;
            break;
        case O_FILTER_FOR: {
            const char *eq = strchr(optarg, '=');
            if (eq == NULL || eq == optarg || (size_t)(eq - optarg) > TB_STREAM_MAX) {
                return s_fail("--filter-for must be STREAM=EXPR");
            }
            if (nfilters == TB_PROBE_MAX_SOURCES) {
                return s_fail("too many --filter-for options");
            }
            snprintf(filters[nfilters].stream, sizeof filters[nfilters].stream, "%.*s",
                     (int)(eq - optarg), optarg);
            filters[nfilters++].expr = eq + 1;
            break;
        }
        case O_SAMPLE:
            if (tb_opt_u64(optarg, 1, S_SAMPLE_MAX, &v) != 0) {
                snprintf(msg, sizeof msg, "--sample must be 1-%d", S_SAMPLE_MAX);
                return s_fail(msg);
            }
            cfg.src.live.sample = (uint32_t)v;
            break;
        case O_CURVE_KEY:
            if (tb_curve_cert_load(optarg, 1, &curve, msg, sizeof msg) != 0) {
                return s_fail(msg);
            }
            cfg.curve = &curve;
            break;
        case O_CURVE_SERVER:
            if (tb_curve_cert_load(optarg, 0, &server, msg, sizeof msg) != 0) {
                return s_fail(msg);
            }
            cfg.curve_server_key = server.public_key;
            break;
        case O_LOG: {
            int level = tb_log_parse_level(optarg);
            if (level < 0) {
                return s_fail("--log-level must be error, warn, info or debug");
            }
            tb_log_set_level(level);
            break;
        }
        case O_HELP:
            s_usage(stdout);
            tb_conf_free(&s_conf);
            return 0;
        default:
            snprintf(msg, sizeof msg, "unknown or incomplete option '%s' (see --help)",
                     argv[optind - 1]);
            return s_fail(msg);
        }
    }
    s_parsing = 0;
    for (size_t i = 0; i < nfilters; i++) {
        size_t j = 0;
        while (j < cfg.nsources && strcmp(cfg.sources[j].stream, filters[i].stream) != 0) {
            j++;
        }
        if (j == cfg.nsources) {
            snprintf(msg, sizeof msg, "--filter-for names stream '%.64s', which no --source has",
                     filters[i].stream);
            return s_fail(msg);
        }
        if (strncmp(cfg.sources[j].spec, "iface:", 6) != 0 &&
            strncmp(cfg.sources[j].spec, "dpmi:", 5) != 0) {
            snprintf(msg, sizeof msg,
                     "--filter-for %.64s: filters apply to iface and dpmi sources only",
                     filters[i].stream);
            return s_fail(msg);
        }
        cfg.sources[j].filter = filters[i].expr;
    }
    if ((cfg.curve == NULL) != (cfg.curve_server_key == NULL)) {
        return s_fail(cfg.curve == NULL
                          ? "--curve-server-key needs --curve-key (this probe's secret "
                            "certificate)"
                          : "--curve-key needs --curve-server-key (the collector's public "
                            "certificate)");
    }
    if (cfg.nconnect > 0 && !publish_given) {
        cfg.publish = NULL; /* connecting only, unless a bind was asked for too */
    }
    if (optind < argc) {
        snprintf(msg, sizeof msg, "unexpected argument '%s' (see --help)", argv[optind]);
        return s_fail(msg);
    }
    if (s_conf.print_only) {
        s_print_config(&cfg_default, log_default);
        tb_conf_free(&s_conf);
        return 0;
    }

    int stop_fd = tb_opt_stop_fd();
    if (stop_fd < 0) {
        return s_fail("cannot set up signal handling");
    }
    tb_probe_t *probe = tb_probe_new(&cfg, msg, sizeof msg);
    if (probe == NULL) {
        close(stop_fd);
        return s_fail(msg);
    }
    int rc = tb_probe_run(probe, stop_fd);
    tb_probe_destroy(&probe);
    close(stop_fd);
    tb_log(TB_LOG_INFO, "probe", "stopped");
    tb_conf_free(&s_conf);
    return rc == 0 ? 0 : 1;
}
