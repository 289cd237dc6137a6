/* test_influx_sink — the InfluxDB sink as a formatter (tb_influx_sink_formatter,
 * collector/db/influx_sink.c), without a server: three seconds of two TCP
 * flows and some ARP, fed as the collector feeds it, then the stream's end.
 * The points delivered must be the documented ones (docs/schema.md):
 * tapbus_traffic per second and class summing to the traffic, one
 * tapbus_interval with the totals, lengths and 2 flows, the top flows ranked
 * with exact counts (ARP never among them), and tapbus_stream with the
 * final totals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "batchagg.h"
#include "influx_sink.h"
#include "stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEC 1000000000ull
#define T0  (1700000000ull * SEC)

typedef struct {
    char *text;
    size_t len;
    uint64_t points;
    int deliveries;
} sink_out_t;

static void s_deliver(void *arg, const char *lines, size_t len, uint64_t points)
{
    sink_out_t *o = arg;
    char *more = realloc(o->text, o->len + len + 1);
    assert_non_null(more);
    o->text = more;
    memcpy(o->text + o->len, lines, len);
    o->len += len;
    o->text[o->len] = '\0';
    o->points += points;
    o->deliveries++;
}

static tb_summary_t s_pkt(uint64_t ts, uint8_t last, uint16_t sport, uint32_t len)
{
    tb_summary_t s;
    memset(&s, 0, sizeof s);
    s.ts_ns = ts;
    s.wire_len = s.cap_len = len;
    s.family = TB_FAMILY_IPV4;
    s.proto = 6;
    s.flags = TB_SUM_PORTS;
    s.sport = sport;
    s.dport = 80;
    s.ethertype = 0x0800;
    s.src[0] = 10, s.src[3] = last;
    s.dst[0] = 192, s.dst[1] = 0, s.dst[2] = 2, s.dst[3] = 1;
    return s;
}

/* The value of field `key` in a line ("key=123i" or "key=..."), as u64. */
static uint64_t s_field(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "%s=", key);
    const char *sp = strchr(line, ' '); /* fields after the first space */
    assert_non_null(sp);
    const char *p = sp;
    while ((p = strstr(p, pat)) != NULL && p[-1] != ' ' && p[-1] != ',') {
        p++;
    }
    if (p == NULL) {
        fail_msg("no field %s in %s", key, line);
    }
    return strtoull(p + strlen(pat), NULL, 10);
}

static void test_points_of_a_stream(void **state)
{
    (void)state;
    tb_influx_sink_config_t cfg;
    tb_influx_sink_config_defaults(&cfg);
    cfg.interval_s = 10;
    cfg.top_n = 5;
    sink_out_t out = {0};
    char err[256] = "";
    tb_sink_t *sink = tb_influx_sink_formatter(&cfg, 7, s_deliver, &out, err, sizeof err);
    assert_non_null(sink);
    void *st = sink->ops->stream_open(sink, "s1");
    assert_non_null(st);
    tb_stats_t *stats = tb_stats_new(64, 64, 7);
    static tb_batchagg_t agg;
    tb_batchagg_init(&agg, 7);
    /* Second 0: flow A 3 x 100, flow B 1 x 200; second 1: A 2 x 100, ARP 60;
     * second 2: B 4 x 300. */
    tb_summary_t pk[11];
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        pk[n++] = s_pkt(T0 + (uint64_t)i, 1, 1000, 100);
    }
    pk[n++] = s_pkt(T0 + 5, 2, 2000, 200);
    pk[n++] = s_pkt(T0 + SEC + 1, 1, 1000, 100);
    pk[n++] = s_pkt(T0 + SEC + 2, 1, 1000, 100);
    tb_summary_t arp;
    memset(&arp, 0, sizeof arp);
    arp.ts_ns = T0 + SEC + 3;
    arp.wire_len = arp.cap_len = 60;
    arp.ethertype = 0x0806;
    pk[n++] = arp;
    for (int i = 0; i < 4; i++) {
        pk[n++] = s_pkt(T0 + 2 * SEC + (uint64_t)i, 2, 2000, 300);
    }
    tb_batchagg_build(&agg, pk, n, TB_AGG_GROUP_ALL);
    tb_stats_add(stats, pk, n, &agg);
    sink->ops->stream_batch(sink, st, pk, n, &agg);
    sink->ops->stream_final(sink, st, "s1", "finished", "", stats);
    sink->ops->stream_close(sink, st);
    tb_sink_destroy(&sink); /* flushes */
    assert_true(out.deliveries >= 1);
    assert_non_null(out.text);

    uint64_t traffic_packets = 0, traffic_bytes = 0, tcp_seconds = 0, intervals = 0, tops = 0,
             streams = 0, lines = 0;
    for (char *save = NULL, *line = strtok_r(out.text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        lines++;
        assert_non_null(strstr(line, "stream=s1"));
        if (strncmp(line, "tapbus_traffic,", 15) == 0) {
            traffic_packets += s_field(line, "packets");
            traffic_bytes += s_field(line, "bytes");
            if (strstr(line, "class=tcp") != NULL) {
                tcp_seconds++;
                /* Time: the second's start, in ns. */
                uint64_t ts = strtoull(strrchr(line, ' ') + 1, NULL, 10);
                assert_true(ts % SEC == 0 && ts >= T0 && ts <= T0 + 2 * SEC);
            }
            if (strstr(line, "class=non_ip") != NULL) {
                assert_int_equal(s_field(line, "packets"), 1);
            }
        } else if (strncmp(line, "tapbus_interval,", 16) == 0) {
            intervals++;
            assert_int_equal(s_field(line, "packets"), 11);
            assert_int_equal(s_field(line, "bytes"), 3 * 100 + 200 + 2 * 100 + 60 + 4 * 300);
            assert_int_equal(s_field(line, "len_min"), 60);
            assert_int_equal(s_field(line, "len_max"), 300);
            assert_int_equal(s_field(line, "flows"), 2); /* ARP is no flow */
        } else if (strncmp(line, "tapbus_top_flow,", 16) == 0) {
            tops++;
            assert_null(strstr(line, "class=\"non_ip\""));
            if (strstr(line, "rank=1") != NULL) { /* A: 5 packets, B: 5; ties by bytes */
                assert_int_equal(s_field(line, "packets"), 5);
                assert_int_equal(s_field(line, "bytes"), 1400);
                assert_int_equal(s_field(line, "sport"), 2000);
            }
        } else if (strncmp(line, "tapbus_stream,", 14) == 0) {
            streams++;
            assert_non_null(strstr(line, "state=finished"));
            assert_int_equal(s_field(line, "packets"), 11);
            assert_int_equal(s_field(line, "first_ts"), T0);
        }
    }
    assert_int_equal(traffic_packets, 11);
    assert_int_equal(traffic_bytes, 1960);
    assert_int_equal(tcp_seconds, 3);
    assert_int_equal(intervals, 1);
    assert_int_equal(tops, 2);
    assert_int_equal(streams, 1);
    assert_int_equal(out.points, lines);
    tb_stats_destroy(&stats);
    free(out.text);
}

static void test_formatter_needs_a_delivery(void **state)
{
    (void)state;
    tb_influx_sink_config_t cfg;
    tb_influx_sink_config_defaults(&cfg);
    char err[256] = "";
    assert_null(tb_influx_sink_formatter(&cfg, 1, NULL, NULL, err, sizeof err));
    assert_true(err[0] != '\0');
    cfg.interval_s = 0;
    sink_out_t out = {0};
    assert_null(tb_influx_sink_formatter(&cfg, 1, s_deliver, &out, err, sizeof err));
    assert_non_null(strstr(err, "bad database point settings"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_points_of_a_stream),
        cmocka_unit_test(test_formatter_needs_a_delivery),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
