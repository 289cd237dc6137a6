/* influx_sink — see influx_sink.h; the schema is in docs/schema.md. */
#include "influx_sink.h"

#include "batchagg.h"

#include "hll.h"
#include "lineproto.h"
#include "series.h"
#include "tb_err.h"
#include "tb_hash.h"
#include "tb_log.h"
#include "tb_mp.h"
#include "tb_time.h"
#include "tb_wire.h"
#include "topk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_COMPONENT "dbsink"
#define POINT_MAX     2048 /* room kept free for one more point */
#define TOP_MAX       64

typedef struct isink isink_t;

/* One stream's open seconds and interval. */
typedef struct {
    isink_t *sink;
    char name[TB_STREAM_MAX + 1];
    tb_series_t *series;
    uint64_t ival_start; /* capture-time second the current interval starts at */
    uint64_t ival_next;  /* no interval starts before this: earlier ones are written */
    uint64_t last_sec, last_start; /* the last packet's second and its interval's start */
    int ival_open;
    uint64_t clock_sec; /* the capture clock's second at the last clock call */
    uint64_t packets, bytes;
    uint64_t outliers; /* packets of the interval with absurd timestamps */
    uint32_t min_len, max_len;
    tb_hll_t flows_seen;
    tb_topk_t *flows;
    tb_topk_t *hosts;
} dbstream_t;

struct isink {
    tb_sink_t base;
    tb_influx_sink_config_t cfg;
    uint64_t seed;
    tb_writer_t *writer;               /* the database's, or NULL (a formatter) */
    tb_influx_sink_deliver_fn deliver; /* without a writer: where batches go */
    void *deliver_arg;
    char *buf;
    size_t bufsize;
    tb_lp_t lp;
    uint64_t batch_started; /* monotonic ns of the oldest point in the batch */
    uint64_t points;        /* points formatted */
    uint64_t lost;          /* points that did not fit (a bug if ever seen) */
    uint64_t late;          /* packets too late for their second (series) */
    uint64_t zero_seconds;  /* seconds without traffic written as zeros */
};

void tb_influx_sink_config_defaults(tb_influx_sink_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    tb_writer_config_defaults(&cfg->writer);
    cfg->interval_s = 10;
    cfg->lateness_s = 5;
    cfg->top_n = 10;
    cfg->table_capacity = 1024;
    cfg->batch_lines = 5000;
    cfg->batch_ms = 1000;
}

static void s_flush(isink_t *d)
{
    if (d->lp.points == 0) {
        return;
    }
    if (d->writer != NULL) {
        tb_writer_submit(d->writer, d->lp.data, d->lp.len, d->lp.points);
    } else {
        d->deliver(d->deliver_arg, d->lp.data, d->lp.len, d->lp.points);
    }
    tb_lp_clear(&d->lp);
    d->batch_started = 0;
}

/* Open a point; the batch is handed on first when it is full. */
static void s_begin(isink_t *d, const char *measurement, const char *stream)
{
    if (d->lp.points >= d->cfg.batch_lines || d->lp.len + POINT_MAX > d->lp.cap) {
        s_flush(d);
    }
    tb_lp_begin(&d->lp, measurement);
    tb_lp_tag(&d->lp, "stream", stream);
}

static void s_end(isink_t *d, uint64_t ts_ns)
{
    if (tb_lp_end(&d->lp, ts_ns) != 0) {
        d->lost++;
        tb_log(TB_LOG_ERROR, LOG_COMPONENT, "a point did not fit its batch and was dropped");
        return;
    }
    d->points++;
    if (d->batch_started == 0) {
        d->batch_started = tb_time_mono_ns();
    }
}

static void s_emit_interval(isink_t *d, dbstream_t *ds, int keep);

/* A closed second: one point per protocol class that had traffic; a second
 * the stream's clock lived through gets a point for every class, zeros
 * included, so an idle link shows as 0 rather than as a gap. Such a second
 * also opens its interval when none is open: an idle interval is written
 * with zero counts. */
static void s_emit_second(void *arg, const tb_second_t *sec)
{
    dbstream_t *ds = arg;
    isink_t *d = ds->sink;
    if (sec->lived) {
        uint64_t start = sec->sec - sec->sec % d->cfg.interval_s;
        if (ds->ival_open && start > ds->ival_start) {
            s_emit_interval(d, ds, 0);
        }
        if (!ds->ival_open && start >= ds->ival_next) {
            ds->ival_open = 1;
            ds->ival_start = start;
        }
        uint64_t any = 0;
        for (int pc = 0; pc < TB_PC_COUNT; pc++) {
            any += sec->proto[pc].packets;
        }
        d->zero_seconds += any == 0;
    }
    for (int pc = 0; pc < TB_PC_COUNT; pc++) {
        if (sec->proto[pc].packets == 0 && !sec->lived) {
            continue;
        }
        s_begin(d, "tapbus_traffic", ds->name);
        tb_lp_tag(&d->lp, "class", tb_proto_class_name((tb_proto_class_t)pc));
        tb_lp_field_u64(&d->lp, "packets", sec->proto[pc].packets);
        tb_lp_field_u64(&d->lp, "bytes", sec->proto[pc].bytes);
        s_end(d, sec->sec * TB_NS_PER_SEC);
    }
}

static void s_rank(char *buf, size_t size, size_t i)
{
    snprintf(buf, size, "%zu", i + 1);
}

static void s_emit_top(isink_t *d, dbstream_t *ds, uint64_t ts)
{
    tb_topk_item_t top[TOP_MAX];
    size_t want = d->cfg.top_n < TOP_MAX ? d->cfg.top_n : TOP_MAX;
    char rank[24], src[TB_KEY_TEXT_MAX], dst[TB_KEY_TEXT_MAX];
    size_t n = tb_topk_top(ds->flows, top, want);
    for (size_t i = 0; i < n; i++) {
        tb_flow_key_t k;
        memcpy(&k, top[i].key, sizeof k);
        const char *cls = tb_flow_key_text(&k, src, dst);
        s_rank(rank, sizeof rank, i);
        s_begin(d, "tapbus_top_flow", ds->name);
        tb_lp_tag(&d->lp, "rank", rank);
        tb_lp_field_str(&d->lp, "src", src);
        tb_lp_field_str(&d->lp, "dst", dst);
        tb_lp_field_u64(&d->lp, "sport", k.sport);
        tb_lp_field_u64(&d->lp, "dport", k.dport);
        tb_lp_field_u64(&d->lp, "proto", k.proto);
        tb_lp_field_str(&d->lp, "class", cls);
        tb_lp_field_u64(&d->lp, "packets", top[i].packets);
        tb_lp_field_u64(&d->lp, "bytes", top[i].bytes);
        tb_lp_field_u64(&d->lp, "error", top[i].error);
        s_end(d, ts);
    }
    n = tb_topk_top(ds->hosts, top, want);
    for (size_t i = 0; i < n; i++) {
        tb_host_key_t k;
        memcpy(&k, top[i].key, sizeof k);
        tb_host_key_text(&k, src);
        s_rank(rank, sizeof rank, i);
        s_begin(d, "tapbus_top_host", ds->name);
        tb_lp_tag(&d->lp, "rank", rank);
        tb_lp_field_str(&d->lp, "addr", src);
        tb_lp_field_u64(&d->lp, "packets", top[i].packets);
        tb_lp_field_u64(&d->lp, "bytes", top[i].bytes);
        tb_lp_field_u64(&d->lp, "error", top[i].error);
        s_end(d, ts);
    }
}

static void s_interval_reset(dbstream_t *ds)
{
    ds->ival_open = 0;
    ds->packets = ds->bytes = 0;
    ds->outliers = 0;
    ds->min_len = ds->max_len = 0;
    tb_hll_reset(&ds->flows_seen);
    tb_topk_reset(ds->flows);
    tb_topk_reset(ds->hosts);
}

/* Emit the open interval; keep: leave it open (its final counts are
 * written again when it closes). */
static void s_emit_interval(isink_t *d, dbstream_t *ds, int keep)
{
    if (!ds->ival_open) {
        return;
    }
    uint64_t ts = ds->ival_start * TB_NS_PER_SEC;
    double secs = (double)d->cfg.interval_s;
    s_begin(d, "tapbus_interval", ds->name);
    tb_lp_field_u64(&d->lp, "packets", ds->packets);
    tb_lp_field_u64(&d->lp, "bytes", ds->bytes);
    tb_lp_field_f64(&d->lp, "pps", (double)ds->packets / secs);
    tb_lp_field_f64(&d->lp, "bps", (double)ds->bytes * 8.0 / secs);
    tb_lp_field_u64(&d->lp, "len_min", ds->min_len);
    tb_lp_field_f64(&d->lp, "len_avg", ds->packets ? (double)ds->bytes / (double)ds->packets : 0);
    tb_lp_field_u64(&d->lp, "len_max", ds->max_len);
    tb_lp_field_u64(&d->lp, "flows", (uint64_t)(tb_hll_estimate(&ds->flows_seen) + 0.5));
    tb_lp_field_u64(&d->lp, "interval_s", d->cfg.interval_s);
    tb_lp_field_u64(&d->lp, "top_flows_error_bound", tb_topk_error_bound(ds->flows));
    tb_lp_field_u64(&d->lp, "top_hosts_error_bound", tb_topk_error_bound(ds->hosts));
    tb_lp_field_u64(&d->lp, "ts_outliers", ds->outliers);
    s_end(d, ts);
    s_emit_top(d, ds, ts);
    if (!keep) {
        ds->ival_next = ds->ival_start + d->cfg.interval_s;
        s_interval_reset(ds);
    }
}

static void s_stream_close(tb_sink_t *sink, void *state)
{
    (void)sink;
    dbstream_t *ds = state;
    if (ds == NULL) {
        return;
    }
    tb_series_destroy(&ds->series);
    tb_topk_destroy(&ds->flows);
    tb_topk_destroy(&ds->hosts);
    free(ds);
}

static void *s_stream_open(tb_sink_t *sink, const char *stream)
{
    isink_t *d = (isink_t *)sink;
    dbstream_t *ds = calloc(1, sizeof *ds);
    if (ds == NULL) {
        tb_log(TB_LOG_ERROR, LOG_COMPONENT, "out of memory: stream %s not written", stream);
        return NULL;
    }
    ds->sink = d;
    snprintf(ds->name, sizeof ds->name, "%s", stream);
    ds->series = tb_series_new(d->cfg.lateness_s, s_emit_second, ds);
    ds->flows = tb_topk_new(d->cfg.table_capacity, sizeof(tb_flow_key_t), d->seed);
    ds->hosts = tb_topk_new(d->cfg.table_capacity, sizeof(tb_host_key_t), TB_HOST_SEED(d->seed));
    if (ds->series == NULL || ds->flows == NULL || ds->hosts == NULL) {
        tb_log(TB_LOG_ERROR, LOG_COMPONENT, "out of memory: stream %s not written", stream);
        s_stream_close(sink, ds);
        return NULL;
    }
    s_interval_reset(ds);
    return ds;
}

static void s_stream_save(tb_sink_t *sink, void *state, msgpack_packer *pk)
{
    (void)sink;
    dbstream_t *ds = state;
    msgpack_pack_map(pk, 13);
    tb_mp_kv_u64(pk, "ival_start", ds->ival_start);
    tb_mp_kv_u64(pk, "ival_next", ds->ival_next);
    tb_mp_kv_bool(pk, "ival_open", ds->ival_open);
    tb_mp_kv_u64(pk, "clock_sec", ds->clock_sec);
    tb_mp_kv_u64(pk, "packets", ds->packets);
    tb_mp_kv_u64(pk, "bytes", ds->bytes);
    tb_mp_kv_u64(pk, "outliers", ds->outliers);
    tb_mp_kv_u64(pk, "min_len", ds->min_len);
    tb_mp_kv_u64(pk, "max_len", ds->max_len);
    tb_mp_pack_cstr(pk, "flows_seen");
    msgpack_pack_bin(pk, sizeof ds->flows_seen.reg);
    msgpack_pack_bin_body(pk, ds->flows_seen.reg, sizeof ds->flows_seen.reg);
    tb_mp_pack_cstr(pk, "flows");
    (void)tb_topk_pack(ds->flows, pk);
    tb_mp_pack_cstr(pk, "hosts");
    (void)tb_topk_pack(ds->hosts, pk);
    tb_mp_pack_cstr(pk, "series");
    tb_series_pack(ds->series, pk);
}

static void s_stream_load(tb_sink_t *sink, void *state, tb_mp_reader_t *r)
{
    (void)sink;
    dbstream_t *ds = state;
    uint32_t pairs = tb_mp_read_map(r);
    for (uint32_t i = 0; i < pairs && !r->error; i++) {
        if (tb_mp_next_str_is(r, "ival_start")) {
            ds->ival_start = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "ival_next")) {
            ds->ival_next = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "ival_open")) {
            ds->ival_open = tb_mp_read_bool(r);
        } else if (tb_mp_next_str_is(r, "clock_sec")) {
            ds->clock_sec = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "packets")) {
            ds->packets = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "bytes")) {
            ds->bytes = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "outliers")) {
            ds->outliers = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "min_len")) {
            ds->min_len = (uint32_t)tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "max_len")) {
            ds->max_len = (uint32_t)tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "flows_seen")) {
            uint32_t len;
            const uint8_t *reg = tb_mp_read_bin(r, &len);
            if (reg != NULL && len == sizeof ds->flows_seen.reg) {
                memcpy(ds->flows_seen.reg, reg, len);
            } else {
                r->error = r->error ? r->error : TB_EPROTO;
            }
        } else if (tb_mp_next_str_is(r, "flows")) {
            tb_topk_unpack(ds->flows, r);
        } else if (tb_mp_next_str_is(r, "hosts")) {
            tb_topk_unpack(ds->hosts, r);
        } else if (tb_mp_next_str_is(r, "series")) {
            tb_series_unpack(ds->series, r);
        } else {
            tb_mp_skip(r);
            tb_mp_skip(r);
        }
    }
}

static void s_stream_reset(tb_sink_t *sink, void *state)
{
    isink_t *d = (isink_t *)sink;
    dbstream_t *ds = state;
    if (ds == NULL) {
        return;
    }
    tb_series_t *fresh = tb_series_new(d->cfg.lateness_s, s_emit_second, ds);
    if (fresh != NULL) {
        tb_series_destroy(&ds->series);
        ds->series = fresh;
    }
    s_interval_reset(ds);
    ds->ival_next = 0;
    ds->clock_sec = 0;
}

/* Count packets [from, to) of the chunk in the interval's flow and host
 * tables one by one (the chunk is split by an interval that closes in it). */
static void s_keys_each(dbstream_t *ds, const tb_summary_t *items, size_t from, size_t to,
                        const tb_batchagg_t *agg)
{
    for (size_t i = from; i < to; i++) {
        uint32_t len = items[i].wire_len;
        const tb_agg_flow_t *f = &agg->flows[agg->pkt_flow[i]];
        if (f->key.family == 0) {
            continue; /* non-IP: no flow, no host (s_keys_grouped) */
        }
        tb_hll_add(&ds->flows_seen, f->hash);
        tb_topk_add_n(ds->flows, &f->key, f->hash, 1, len);
        for (int k = 0; k < 2; k++) {
            if (f->host[k] != TB_AGG_NONE) {
                const tb_agg_host_t *h = &agg->hosts[f->host[k]];
                tb_topk_add_n(ds->hosts, &h->key, h->hash, 1, len);
            }
        }
    }
}

/* Count the whole chunk, grouped: one update per distinct key, and each IP
 * flow into the distinct-flow estimate. */
static void s_keys_grouped(dbstream_t *ds, const tb_batchagg_t *agg)
{
    tb_batchagg_count(agg, ds->flows, ds->hosts, &ds->flows_seen);
}

static void s_stream_batch(tb_sink_t *sink, void *state, const tb_summary_t *items, size_t n,
                           const tb_batchagg_t *agg)
{
    isink_t *d = (isink_t *)sink;
    dbstream_t *ds = state;
    if (ds == NULL) {
        return;
    }
    size_t seg = 0; /* the packets of the open interval start here */
    int split = 0;
    for (size_t i = 0; i < n; i++) {
        const tb_summary_t *s = &items[i];
        d->late += (uint64_t)tb_series_add(ds->series, s);
        /* The interval follows the stream's capture clock: a packet of a
         * later interval closes the current one; a late packet joins the
         * open one (or the next, when the clock closed its own). Its start
         * is worked out once per second of packets: a division per packet
         * stood out in this loop's profile. */
        uint64_t sec = s->ts_ns / TB_NS_PER_SEC;
        if (sec != ds->last_sec) {
            ds->last_sec = sec;
            ds->last_start = sec - sec % d->cfg.interval_s;
        }
        uint64_t start = ds->last_start;
        if (ds->ival_open && start > ds->ival_start) {
            s_keys_each(ds, items, seg, i, agg);
            seg = i;
            split = 1;
            s_emit_interval(d, ds, 0);
        }
        if (!ds->ival_open) {
            ds->ival_open = 1;
            ds->ival_start = start > ds->ival_next ? start : ds->ival_next;
        }
        if (ds->packets == 0) {
            ds->min_len = s->wire_len;
            ds->max_len = s->wire_len;
        }
        ds->outliers += (s->flags & TB_SUM_TS_OUTLIER) != 0;
        ds->packets++;
        ds->bytes += s->wire_len;
        if (s->wire_len < ds->min_len) {
            ds->min_len = s->wire_len;
        }
        if (s->wire_len > ds->max_len) {
            ds->max_len = s->wire_len;
        }
    }
    if (split) {
        s_keys_each(ds, items, seg, n, agg);
    } else {
        s_keys_grouped(ds, agg);
    }
}

/* The capture clock of a source running in real time moved on: seconds
 * and the interval older than the lateness window close, and the seconds
 * it passed without traffic are written as zeros. */
static void s_stream_clock(tb_sink_t *sink, void *state, uint64_t now_ts)
{
    isink_t *d = (isink_t *)sink;
    dbstream_t *ds = state;
    uint64_t now_sec = now_ts / TB_NS_PER_SEC;
    if (ds == NULL || now_sec == ds->clock_sec) {
        return;
    }
    ds->clock_sec = now_sec;
    tb_series_advance(ds->series, now_sec);
    uint64_t limit = now_sec >= d->cfg.lateness_s ? now_sec - d->cfg.lateness_s : 0;
    if (ds->ival_open && ds->ival_start + d->cfg.interval_s <= limit) {
        s_emit_interval(d, ds, 0);
    }
}

static void s_stream_skip(tb_sink_t *sink, void *state, uint64_t now_ts)
{
    isink_t *d = (isink_t *)sink;
    dbstream_t *ds = state;
    uint64_t now_sec = now_ts / TB_NS_PER_SEC;
    if (ds == NULL) {
        return;
    }
    ds->clock_sec = now_sec;
    tb_series_skip(ds->series, now_sec);
    uint64_t limit = now_sec >= d->cfg.lateness_s ? now_sec - d->cfg.lateness_s : 0;
    if (ds->ival_open && ds->ival_start + d->cfg.interval_s <= limit) {
        s_emit_interval(d, ds, 0);
    }
}

static void s_stream_loss(tb_sink_t *sink, void *state, const char *stream, const tb_loss_t *l)
{
    isink_t *d = (isink_t *)sink;
    (void)state;
    s_begin(d, "tapbus_loss", stream);
    tb_lp_tag(&d->lp, "probe", l->probe);
    tb_lp_field_u64(&d->lp, "received", l->received);
    tb_lp_field_u64(&d->lp, "capture_drops", l->capture_drops);
    tb_lp_field_u64(&d->lp, "bus_drops", l->bus_drops);
    tb_lp_field_u64(&d->lp, "seq_gaps", l->seq_gaps);
    tb_lp_field_u64(&d->lp, "lost_packets", l->lost_packets);
    tb_lp_field_u64(&d->lp, "restarts", l->restarts);
    tb_lp_field_u64(&d->lp, "decode_errors", l->decode_errors);
    tb_lp_field_u64(&d->lp, "files_skipped", l->files_skipped);
    tb_lp_field_u64(&d->lp, "frames_lost", l->frames_lost);
    tb_lp_field_u64(&d->lp, "frames_bad", l->frames_bad);
    tb_lp_field_u64(&d->lp, "unmeasured_ms", l->unmeasured_ms);
    /* Wall time, to the millisecond: the moment these counters were read. */
    s_end(d, tb_time_now_ns() / TB_NS_PER_MS * TB_NS_PER_MS);
}

static void s_stream_final(tb_sink_t *sink, void *state, const char *stream, const char *how,
                           const char *reason, const tb_stats_t *st)
{
    isink_t *d = (isink_t *)sink;
    dbstream_t *ds = state;
    if (ds != NULL && strcmp(how, "stopped") == 0) {
        /* A stopped stream may be started again and carry on (a live or
         * directory source): what is open is written as it stands and stays
         * open, so a restart adds to it instead of overwriting it. */
        tb_series_emit_open(ds->series);
        s_emit_interval(d, ds, 1);
    } else if (ds != NULL) {
        tb_series_flush(ds->series);
        s_emit_interval(d, ds, 0);
    }
    s_begin(d, "tapbus_stream", stream);
    tb_lp_tag(&d->lp, "state", how);
    tb_lp_field_u64(&d->lp, "packets", st->packets);
    tb_lp_field_u64(&d->lp, "bytes", st->bytes);
    tb_lp_field_u64(&d->lp, "len_min", st->packets ? st->min_pkt.wire_len : 0);
    tb_lp_field_u64(&d->lp, "len_max", st->packets ? st->max_pkt.wire_len : 0);
    tb_lp_field_f64(&d->lp, "avg_pps", tb_stats_avg_pps(st));
    tb_lp_field_u64(&d->lp, "first_ts", st->first_ts);
    tb_lp_field_u64(&d->lp, "last_ts", st->last_ts);
    if (reason[0] != '\0') {
        tb_lp_field_str(&d->lp, "reason", reason);
    }
    tb_lp_field_u64(&d->lp, "ts_outliers", st->ts_outliers);
    tb_topk_item_t top;
    if (tb_topk_top(st->flows, &top, 1) == 1) {
        tb_flow_key_t k;
        memcpy(&k, top.key, sizeof k);
        char src[TB_KEY_TEXT_MAX], dst[TB_KEY_TEXT_MAX];
        tb_flow_key_text(&k, src, dst);
        tb_lp_field_str(&d->lp, "top_src", src);
        tb_lp_field_str(&d->lp, "top_dst", dst);
        tb_lp_field_u64(&d->lp, "top_sport", k.sport);
        tb_lp_field_u64(&d->lp, "top_dport", k.dport);
        tb_lp_field_u64(&d->lp, "top_proto", k.proto);
        tb_lp_field_u64(&d->lp, "top_packets", top.packets);
    }
    uint64_t at = tb_time_now_ns() / TB_NS_PER_MS * TB_NS_PER_MS;
    s_end(d, at);
    /* The breakdown by measurement point (DPMI MP/CI), at most 64 points,
     * stamped like tapbus_stream; an empty name leaves its tag out. */
    const tb_pointstats_t *ps = &st->points;
    for (size_t i = 0; i < ps->n; i++) {
        s_begin(d, "tapbus_point", stream);
        tb_lp_tag(&d->lp, "state", how);
        tb_lp_tag(&d->lp, "mp", ps->e[i].mp);
        tb_lp_tag(&d->lp, "ci", ps->e[i].ci);
        tb_lp_field_u64(&d->lp, "packets", ps->e[i].packets);
        tb_lp_field_u64(&d->lp, "bytes", ps->e[i].bytes);
        s_end(d, at);
    }
    /* Final statistics go out now, not after batch_ms. */
    s_flush(d);
}

static void s_tick(tb_sink_t *sink, uint64_t now)
{
    isink_t *d = (isink_t *)sink;
    if (d->batch_started != 0 &&
        now - d->batch_started >= (uint64_t)d->cfg.batch_ms * TB_NS_PER_MS) {
        s_flush(d);
    }
}

static void s_health(tb_sink_t *sink, msgpack_packer *pk)
{
    isink_t *d = (isink_t *)sink;
    tb_writer_health_t h;
    memset(&h, 0, sizeof h);
    if (d->writer != NULL) {
        tb_writer_health(d->writer, &h);
    } else {
        snprintf(h.target, sizeof h.target, "(formatter)");
    }
    uint64_t now = tb_time_now_ns();
    msgpack_pack_map(pk, 19);
    tb_mp_kv_str(pk, "target", h.target);
    tb_mp_kv_bool(pk, "connected", h.connected);
    tb_mp_kv_u64(pk, "points", d->points);
    tb_mp_kv_u64(pk, "batch_points", d->lp.points);
    tb_mp_kv_u64(pk, "queued_points", h.queued_points);
    tb_mp_kv_u64(pk, "queued_bytes", h.queued_bytes);
    tb_mp_kv_u64(pk, "spool_points", h.spool_points);
    tb_mp_kv_u64(pk, "spool_bytes", h.spool_bytes);
    tb_mp_kv_u64(pk, "spool_batches", h.spool_batches);
    tb_mp_kv_double(pk, "oldest_unsent_s",
                    h.oldest_unsent_ns && now > h.oldest_unsent_ns
                        ? (double)(now - h.oldest_unsent_ns) / 1e9
                        : 0.0);
    tb_mp_kv_u64(pk, "written", h.written);
    tb_mp_kv_u64(pk, "retried", h.retried);
    tb_mp_kv_u64(pk, "rejected", h.rejected);
    tb_mp_kv_u64(pk, "dropped", h.dropped + d->lost);
    tb_mp_kv_u64(pk, "requests", h.requests);
    tb_mp_kv_u64(pk, "late_packets", d->late);
    tb_mp_kv_u64(pk, "zero_seconds", d->zero_seconds);
    tb_mp_kv_str(pk, "last_error", h.last_error);
    tb_mp_kv_double(pk, "last_error_age_s",
                    h.last_error_ns && now > h.last_error_ns ? (double)(now - h.last_error_ns) / 1e9
                                                             : -1.0);
}

static void s_destroy(tb_sink_t *sink)
{
    isink_t *d = (isink_t *)sink;
    s_flush(d);
    tb_writer_destroy(&d->writer);
    free(d->buf);
    free(d);
}

static const tb_sink_ops_t s_ops = {
    .name = "influxdb",
    .stream_open = s_stream_open,
    .stream_batch = s_stream_batch,
    .stream_reset = s_stream_reset,
    .stream_clock = s_stream_clock,
    .stream_skip = s_stream_skip,
    .stream_loss = s_stream_loss,
    .stream_final = s_stream_final,
    .stream_save = s_stream_save,
    .stream_load = s_stream_load,
    .stream_close = s_stream_close,
    .tick = s_tick,
    .health = s_health,
    .destroy = s_destroy,
};

/* The sink without its writer: deliver (or the writer, when NULL) gets the
 * batches. */
static isink_t *s_new(const tb_influx_sink_config_t *cfg, uint64_t seed, char *err, size_t errsize)
{
    if (cfg->interval_s == 0 || cfg->top_n == 0 || cfg->table_capacity == 0 ||
        cfg->batch_lines == 0 || cfg->batch_ms == 0 || cfg->lateness_s > TB_SERIES_MAX_LATENESS) {
        snprintf(err, errsize, "bad database point settings");
        return NULL;
    }
    isink_t *d = calloc(1, sizeof *d);
    if (d == NULL) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    d->base.ops = &s_ops;
    d->cfg = *cfg;
    d->seed = seed;
    /* Room for a full batch of typical points; a larger one is sent early. */
    d->bufsize = cfg->batch_lines * 256 + POINT_MAX;
    if (d->bufsize > (64u << 20)) {
        d->bufsize = 64u << 20;
    }
    d->buf = malloc(d->bufsize);
    if (d->buf == NULL) {
        snprintf(err, errsize, "out of memory");
        free(d);
        return NULL;
    }
    tb_lp_init(&d->lp, d->buf, d->bufsize);
    return d;
}

tb_sink_t *tb_influx_sink_new(const tb_influx_sink_config_t *cfg, uint64_t seed, char *err,
                              size_t errsize)
{
    isink_t *d = s_new(cfg, seed, err, errsize);
    if (d == NULL) {
        return NULL;
    }
    d->writer = tb_writer_new(&cfg->writer, err, errsize);
    if (d->writer == NULL) {
        free(d->buf);
        free(d);
        return NULL;
    }
    return &d->base;
}

int tb_influx_sink_start(tb_sink_t *sink, char *err, size_t errsize)
{
    isink_t *d = (isink_t *)sink;
    return d->writer != NULL ? tb_writer_start(d->writer, err, errsize) : 0;
}

tb_sink_t *tb_influx_sink_formatter(const tb_influx_sink_config_t *cfg, uint64_t seed,
                                    tb_influx_sink_deliver_fn deliver, void *arg, char *err,
                                    size_t errsize)
{
    if (deliver == NULL) {
        snprintf(err, errsize, "a formatter needs somewhere to deliver");
        return NULL;
    }
    isink_t *d = s_new(cfg, seed, err, errsize);
    if (d != NULL) {
        d->deliver = deliver;
        d->deliver_arg = arg;
    }
    return d != NULL ? &d->base : NULL;
}
