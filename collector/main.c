/* tapbus-collector — subscribe to probes' streams, keep statistics, answer
 * tapbusctl. main() only parses options and wires the collector together. */
#include "collector.h"

#include "tb_log.h"
#include "tb_opt.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
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
            "  --control ENDPOINT   REP endpoint for tapbusctl (default tcp://*:5557)\n"
            "  --max-streams N      streams kept at once (default 256)\n"
            "  --flows N            top-flows table entries per stream (default 4096)\n"
            "  --hosts N            top-hosts table entries per stream (default 4096)\n"
            "  --top N              flows and hosts listed by stats, 1-64 (default 10)\n"
            "  --hwm N              bus receive high-water mark in messages (default 100)\n"
            "  --log-level LEVEL    error, warn, info or debug (default info)\n"
            "  --help               this text\n");
}

static int s_fail(const char *msg)
{
    fprintf(stderr, "tapbus-collector: %s\n", msg);
    return 2;
}

int main(int argc, char **argv)
{
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
        O_HELP
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
        {NULL, 0, NULL, 0},
    };
    char msg[512];
    int c;
    uint64_t v;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_PROBE:
            if (cfg.nprobes == TB_COLLECTOR_MAX_PROBES) {
                return s_fail("too many --probe options");
            }
            cfg.probes[cfg.nprobes++] = optarg;
            break;
        case O_LISTEN:
            if (cfg.nlisten == TB_COLLECTOR_MAX_PROBES) {
                return s_fail("too many --listen options");
            }
            cfg.listen[cfg.nlisten++] = optarg;
            break;
        case O_CONTROL:
            cfg.control = optarg;
            break;
        case O_MAXSTREAMS:
            if (tb_opt_u64(optarg, 1, 100000, &v) != 0) {
                return s_fail("--max-streams must be 1-100000");
            }
            cfg.max_streams = (size_t)v;
            break;
        case O_FLOWS:
        case O_HOSTS:
            if (tb_opt_u64(optarg, 1, 1u << 24, &v) != 0) {
                return s_fail(c == O_FLOWS ? "--flows must be 1-16777216"
                                           : "--hosts must be 1-16777216");
            }
            *(c == O_FLOWS ? &cfg.flow_capacity : &cfg.host_capacity) = (size_t)v;
            break;
        case O_TOP:
            if (tb_opt_u64(optarg, 1, 64, &v) != 0) {
                return s_fail("--top must be 1-64");
            }
            cfg.top_n = (size_t)v;
            break;
        case O_HWM:
            if (tb_opt_u64(optarg, 1, 10000000, &v) != 0) {
                return s_fail("--hwm must be 1-10000000");
            }
            cfg.rcvhwm = (int)v;
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
            return 0;
        default:
            snprintf(msg, sizeof msg, "unknown or incomplete option '%s' (see --help)",
                     argv[optind - 1]);
            return s_fail(msg);
        }
    }
    if (optind < argc) {
        snprintf(msg, sizeof msg, "unexpected argument '%s' (see --help)", argv[optind]);
        return s_fail(msg);
    }
    int stop_fd = tb_opt_stop_fd();
    if (stop_fd < 0) {
        return s_fail("cannot set up signal handling");
    }
    tb_collector_t *coll = tb_collector_new(&cfg, msg, sizeof msg);
    if (coll == NULL) {
        close(stop_fd);
        return s_fail(msg);
    }
    int rc = tb_collector_run(coll, stop_fd);
    tb_collector_destroy(&coll);
    close(stop_fd);
    tb_log(TB_LOG_INFO, "collector", "stopped");
    return rc == 0 ? 0 : 1;
}
