/* tb-ingest-bench — the collector's work per bus message, without the bus.
 *
 *   tb-ingest-bench RECORDING [ROUNDS [SETUP]]
 *
 * Reads a recording of one stream's bus messages (tb-bus-sink --record),
 * then applies every message to the collector's table of streams as its
 * loop does (tb_wire_decode, tb_streams_apply, a flush after every 256
 * messages), with the collector's default tables, in four set-ups: without
 * a sink and with the InfluxDB sink as a formatter (points formatted and
 * dropped, no server), each on the loop thread alone (--threads 1) and with
 * the counting thread beside it (--threads 2). Prints, best of ROUNDS
 * (default 3), the elapsed time and the CPU time of the process per packet
 * (SETUP: one of them only, "none1", "none2", "db1" or "db2", for a profile):
 * elapsed time is what a core feeding the collector sees, CPU time what it
 * costs the machine. No ZeroMQ transport, no database, no other process:
 * the figures move far less from run to run than the suite's. */
#include "collector.h"
#include "influx_sink.h"
#include "recording.h"
#include "stream.h"
#include "tb_log.h"
#include "tb_time.h"
#include "tb_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define FLUSH_EVERY 256 /* the collector's RECV_BUDGET */

static double s_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void s_drop(void *arg, const char *lines, size_t len, uint64_t points)
{
    (void)lines, (void)len;
    *(uint64_t *)arg += points;
}

typedef struct {
    double wall, cpu;
    uint64_t packets, points;
} result_t;

/* One pass over the recording; 0 or -1 (with a message). */
static int s_round(const uint8_t *buf, size_t len, int threads, int db, tb_summary_t *items,
                   void *sub, result_t *out)
{
    tb_collector_config_t ccfg;
    tb_collector_config_defaults(&ccfg);
    tb_streams_t *t = tb_streams_new(1, ccfg.flow_capacity, ccfg.host_capacity, 1);
    tb_offers_t *offers = tb_offers_new(8, 64);
    tb_ratelog_t log;
    tb_ratelog_init(&log, "bench", TB_NS_PER_SEC, 5);
    tb_assist_t *assist = threads > 1 ? tb_assist_start() : NULL;
    uint64_t points = 0;
    char err[256] = "out of memory";
    int rc = -1;
    if (t == NULL || offers == NULL || (threads > 1 && assist == NULL) ||
        (assist != NULL && tb_streams_set_assist(t, assist) != 0)) {
        goto done;
    }
    t->sub = sub;
    t->offers = offers;
    t->log = &log;
    if (db) {
        tb_influx_sink_config_t icfg;
        tb_influx_sink_config_defaults(&icfg);
        tb_sink_t *sink = tb_influx_sink_formatter(&icfg, 1, s_drop, &points, err, sizeof err);
        if (sink == NULL || tb_streams_add_sink(t, &sink) != 0) {
            tb_sink_destroy(&sink);
            goto done;
        }
    }
    tb_stream_t *st = NULL;
    uint64_t packets = 0;
    size_t off = 0, since_flush = 0;
    const uint8_t *body;
    uint32_t n;
    int more;
    double w0 = s_clock(CLOCK_MONOTONIC), c0 = s_clock(CLOCK_PROCESS_CPUTIME_ID);
    while ((more = tb_rec_next(buf, len, &off, &body, &n)) != 0) {
        tb_wire_msg_t msg;
        if (more < 0 || tb_wire_decode(body, n, &msg, items, TB_WIRE_MAX_BATCH) != 0) {
            snprintf(err, sizeof err, "a message of the recording is cut short or bad");
            goto done;
        }
        if (st == NULL) {
            if (tb_streams_start(t, msg.hdr.stream) != 0 ||
                (st = tb_streams_find(t, msg.hdr.stream)) == NULL) {
                snprintf(err, sizeof err, "cannot start stream %s", msg.hdr.stream);
                goto done;
            }
        }
        if (msg.hdr.type == TB_MSG_BATCH) {
            packets += msg.count;
        }
        tb_streams_apply(t, st, &msg);
        if (++since_flush == FLUSH_EVERY) {
            tb_streams_flush(t);
            since_flush = 0;
        }
    }
    tb_streams_flush(t);
    out->wall = s_clock(CLOCK_MONOTONIC) - w0;
    out->cpu = s_clock(CLOCK_PROCESS_CPUTIME_ID) - c0;
    out->packets = packets;
    if (st == NULL || st->stats->packets != packets) {
        snprintf(err, sizeof err, "counted %llu of %llu packets",
                 st != NULL ? (unsigned long long)st->stats->packets : 0ull,
                 (unsigned long long)packets);
        goto done;
    }
    rc = 0;
done:
    tb_streams_destroy(&t); /* the sink's last points */
    tb_assist_stop(&assist);
    tb_offers_destroy(&offers);
    out->points = points;
    if (rc != 0) {
        fprintf(stderr, "tb-ingest-bench: %s\n", err);
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: tb-ingest-bench RECORDING [ROUNDS [none1|none2|db1|db2]]\n");
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    const char *only = argc > 3 ? argv[3] : NULL;
    tb_log_set_level(TB_LOG_ERROR);
    size_t len;
    uint8_t *buf = tb_rec_load(argv[1], &len);
    tb_summary_t *items = malloc(TB_WIRE_MAX_BATCH * sizeof *items);
    void *zctx = zmq_ctx_new();
    void *sub = zctx != NULL ? zmq_socket(zctx, ZMQ_SUB) : NULL;
    if (buf == NULL || items == NULL || sub == NULL) {
        fprintf(stderr, "tb-ingest-bench: cannot read %s\n", argv[1]);
        return 1;
    }
    int rc = 0;
    for (int db = 0; db <= 1 && rc == 0; db++) {
        for (int threads = 1; threads <= 2 && rc == 0; threads++) {
            char name[8];
            snprintf(name, sizeof name, "%s%d", db ? "db" : "none", threads);
            if (only != NULL && strcmp(only, name) != 0) {
                continue;
            }
            result_t best = {0};
            for (int r = 0; r < (rounds > 0 ? rounds : 1); r++) {
                result_t res;
                if (s_round(buf, len, threads, db, items, sub, &res) != 0) {
                    rc = 1;
                    break;
                }
                if (r == 0 || res.wall < best.wall) {
                    best = res;
                }
            }
            if (rc == 0) {
                printf("%-22s threads %d: %6.1f ns/packet elapsed, %6.1f ns/packet CPU "
                       "(%llu packets, %llu points)\n",
                       db ? "InfluxDB sink" : "no sink", threads, best.wall * 1e9 / best.packets,
                       best.cpu * 1e9 / best.packets, (unsigned long long)best.packets,
                       (unsigned long long)best.points);
            }
        }
    }
    int linger = 0;
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(sub);
    zmq_ctx_term(zctx);
    free(items);
    free(buf);
    return rc;
}
