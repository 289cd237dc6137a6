/* tb-writer-bench — how many points per second the database writer delivers.
 *
 * Formats N per-second traffic points (the collector's most common kind,
 * spread over streams and protocol classes), hands them to the writer in
 * batches of B lines, and times until the database has accepted them all.
 *
 *   tb-writer-bench --url http://127.0.0.1:8086 --db bench --points 1000000
 *                   --batch 5000 [--no-gzip] [--version 2 --org O --bucket B]
 *
 * Prints one line: batch size, gzip, points, seconds, points/s, requests. */
#include "influx.h"
#include "lineproto.h"
#include "tb_opt.h"
#include "tb_time.h"
#include "writer.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int s_usage(void)
{
    fprintf(stderr, "usage: tb-writer-bench --url URL [--db DB] [--points N] [--batch N] "
                    "[--no-gzip] [--version 1|2 --org ORG --bucket B --token T]\n");
    return 2;
}

int main(int argc, char **argv)
{
    tb_writer_config_t cfg;
    tb_writer_config_defaults(&cfg);
    cfg.db.db = "bench";
    cfg.db.create_db = 1;
    uint64_t points = 1000000, batch = 5000, v;
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},    {"db", required_argument, NULL, 'd'},
        {"points", required_argument, NULL, 'n'}, {"batch", required_argument, NULL, 'b'},
        {"no-gzip", no_argument, NULL, 'z'},      {"version", required_argument, NULL, 'v'},
        {"org", required_argument, NULL, 'o'},    {"bucket", required_argument, NULL, 'k'},
        {"token", required_argument, NULL, 't'},  {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            cfg.db.url = optarg;
            break;
        case 'd':
            cfg.db.db = optarg;
            break;
        case 'n':
            if (tb_opt_u64(optarg, 1, 1000000000, &points) != 0) {
                return s_usage();
            }
            break;
        case 'b':
            if (tb_opt_u64(optarg, 1, 1000000, &batch) != 0) {
                return s_usage();
            }
            break;
        case 'z':
            cfg.db.gzip = 0;
            break;
        case 'v':
            if (tb_opt_u64(optarg, 1, 2, &v) != 0) {
                return s_usage();
            }
            cfg.db.version = (int)v;
            break;
        case 'o':
            cfg.db.org = optarg;
            break;
        case 'k':
            cfg.db.bucket = optarg;
            break;
        case 't':
            cfg.db.token = optarg;
            break;
        default:
            return s_usage();
        }
    }
    if (cfg.db.url == NULL || tb_influx_global_init() != 0) {
        return s_usage();
    }
    char err[256];
    tb_writer_t *w = tb_writer_new(&cfg, err, sizeof err);
    if (w == NULL || tb_writer_start(w, err, sizeof err) != 0) {
        fprintf(stderr, "tb-writer-bench: %s\n", err);
        tb_writer_destroy(&w);
        return 1;
    }
    size_t cap = (size_t)batch * 160 + 4096;
    char *buf = malloc(cap);
    if (buf == NULL) {
        return 1;
    }
    static const char *classes[] = {"tcp", "udp", "icmp", "icmpv6", "other", "non_ip"};
    tb_lp_t lp;
    tb_lp_init(&lp, buf, cap);
    uint64_t t0 = tb_time_mono_ns();
    uint64_t base = 1700000000ull * TB_NS_PER_SEC;
    char stream[32];
    for (uint64_t i = 0; i < points; i++) {
        snprintf(stream, sizeof stream, "s%llu", (unsigned long long)(i % 16));
        tb_lp_begin(&lp, "tapbus_traffic");
        tb_lp_tag(&lp, "stream", stream);
        tb_lp_tag(&lp, "class", classes[(i / 16) % 6]);
        tb_lp_field_u64(&lp, "packets", 1000 + i % 977);
        tb_lp_field_u64(&lp, "bytes", 600000 + i % 65521);
        tb_lp_end(&lp, base + (i / 96) * TB_NS_PER_SEC);
        if (lp.points == batch || i + 1 == points) {
            tb_writer_submit(w, lp.data, lp.len, lp.points);
            tb_lp_clear(&lp);
        }
    }
    tb_writer_health_t h;
    for (;;) {
        tb_writer_health(w, &h);
        if (h.written + h.rejected + h.dropped >= points) {
            break;
        }
        usleep(2000);
    }
    double secs = (double)(tb_time_mono_ns() - t0) / 1e9;
    printf("batch %6llu  gzip %-3s  %llu points in %.2f s = %.0f points/s  (%llu requests, "
           "%llu rejected, %llu dropped)\n",
           (unsigned long long)batch, cfg.db.gzip ? "on" : "off", (unsigned long long)points, secs,
           (double)points / secs, (unsigned long long)h.requests, (unsigned long long)h.rejected,
           (unsigned long long)h.dropped);
    tb_writer_destroy(&w);
    free(buf);
    return 0;
}
