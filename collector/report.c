/* report — see report.h. */
#include "report.h"

#include "tb_ctl.h"
#include "tb_mp.h"
#include "tb_time.h"

#include <string.h>

static void s_kv_time(msgpack_packer *pk, const char *key, uint64_t ns)
{
    char buf[48];
    tb_mp_kv_str(pk, key, ns ? tb_time_format(ns, 9, buf, sizeof buf) : "");
}

static void s_pack_packet(msgpack_packer *pk, const tb_summary_t *s)
{
    char src[64], dst[64];
    tb_summary_addr(s, 0, src, sizeof src);
    tb_summary_addr(s, 1, dst, sizeof dst);
    int ports = (s->flags & TB_SUM_PORTS) != 0;
    msgpack_pack_map(pk, 11);
    tb_mp_kv_u64(pk, "ts", s->ts_ns);
    s_kv_time(pk, "time", s->ts_ns);
    tb_mp_kv_u64(pk, "len", s->wire_len);
    tb_mp_kv_u64(pk, "caplen", s->cap_len);
    tb_mp_kv_str(pk, "class", tb_proto_class_name(tb_proto_class(s)));
    tb_mp_kv_u64(pk, "proto", s->family ? s->proto : 0);
    tb_mp_kv_str(pk, "src", src);
    tb_mp_kv_str(pk, "dst", dst);
    tb_mp_kv_u64(pk, "sport", ports ? s->sport : 0);
    tb_mp_kv_u64(pk, "dport", ports ? s->dport : 0);
    tb_mp_pack_cstr(pk, "vlan");
    if (s->flags & TB_SUM_VLAN) {
        msgpack_pack_uint16(pk, s->vlan);
    } else {
        msgpack_pack_nil(pk);
    }
}

static void s_pack_loss(msgpack_packer *pk, const tb_stream_t *st)
{
    tb_track_totals_t l;
    tb_track_totals(st->probes, st->nprobes, &l);
    msgpack_pack_map(pk, 11);
    tb_mp_kv_u64(pk, "seq_gaps", l.seq_gaps);
    tb_mp_kv_u64(pk, "seq_backward", l.seq_backward);
    tb_mp_kv_u64(pk, "lost_packets", l.lost_packets);
    tb_mp_kv_u64(pk, "capture_drops", l.capture_drops);
    tb_mp_kv_u64(pk, "bus_drops", l.bus_drops);
    tb_mp_kv_u64(pk, "bad_messages", st->bad_messages);
    tb_mp_kv_u64(pk, "probe_restarts", l.restarts);
    tb_mp_kv_u64(pk, "decode_errors", l.decode_errors);
    tb_mp_kv_u64(pk, "files_skipped", l.files_skipped);
    tb_mp_kv_u64(pk, "frames_lost", l.frames_lost);
    tb_mp_kv_u64(pk, "frames_bad", l.frames_bad);
}

static void s_pack_top_flows(tb_collector_t *c, msgpack_packer *pk, const tb_stats_t *stats)
{
    tb_topk_item_t top[64];
    size_t want = c->cfg.top_n < 64 ? c->cfg.top_n : 64;
    size_t n = tb_topk_top(stats->flows, top, want);
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        tb_flow_key_t k;
        memcpy(&k, top[i].key, sizeof k);
        char src[TB_KEY_TEXT_MAX], dst[TB_KEY_TEXT_MAX];
        const char *cls = tb_flow_key_text(&k, src, dst);
        msgpack_pack_map(pk, 9);
        tb_mp_kv_str(pk, "src", src);
        tb_mp_kv_str(pk, "dst", dst);
        tb_mp_kv_u64(pk, "sport", k.sport);
        tb_mp_kv_u64(pk, "dport", k.dport);
        tb_mp_kv_u64(pk, "proto", k.proto);
        tb_mp_kv_str(pk, "class", cls);
        tb_mp_kv_u64(pk, "packets", top[i].packets);
        tb_mp_kv_u64(pk, "bytes", top[i].bytes);
        tb_mp_kv_u64(pk, "error", top[i].error);
    }
}

static void s_pack_top_hosts(tb_collector_t *c, msgpack_packer *pk, const tb_stats_t *stats)
{
    tb_topk_item_t top[64];
    size_t want = c->cfg.top_n < 64 ? c->cfg.top_n : 64;
    size_t n = tb_topk_top(stats->hosts, top, want);
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        tb_host_key_t k;
        memcpy(&k, top[i].key, sizeof k);
        char addr[TB_KEY_TEXT_MAX];
        tb_host_key_text(&k, addr);
        msgpack_pack_map(pk, 4);
        tb_mp_kv_str(pk, "addr", addr);
        tb_mp_kv_u64(pk, "packets", top[i].packets);
        tb_mp_kv_u64(pk, "bytes", top[i].bytes);
        tb_mp_kv_u64(pk, "error", top[i].error);
    }
}

/* The breakdown by measurement point (DPMI MP/CI), sorted by MP and CI:
 * three keys, "points", "points_overflow" and "points_unnamed". */
static void s_pack_points(msgpack_packer *pk, const tb_pointstats_t *ps)
{
    size_t order[TB_POINTS_MAX];
    tb_pointstats_order(ps, order);
    tb_mp_pack_cstr(pk, "points");
    msgpack_pack_array(pk, ps->n);
    for (size_t i = 0; i < ps->n; i++) {
        const tb_pointstat_t *e = &ps->e[order[i]];
        msgpack_pack_map(pk, 4);
        tb_mp_kv_str(pk, "mp", e->mp);
        tb_mp_kv_str(pk, "ci", e->ci);
        tb_mp_kv_u64(pk, "packets", e->packets);
        tb_mp_kv_u64(pk, "bytes", e->bytes);
    }
    tb_mp_pack_cstr(pk, "points_overflow");
    msgpack_pack_map(pk, 2);
    tb_mp_kv_u64(pk, "packets", ps->overflow_packets);
    tb_mp_kv_u64(pk, "bytes", ps->overflow_bytes);
    tb_mp_pack_cstr(pk, "points_unnamed");
    msgpack_pack_map(pk, 2);
    tb_mp_kv_u64(pk, "packets", ps->unnamed_packets);
    tb_mp_kv_u64(pk, "bytes", ps->unnamed_bytes);
}

void tb_report_stats(tb_collector_t *c, msgpack_packer *pk, const tb_stream_t *st)
{
    tb_ctl_reply_begin(pk, NULL);
    const tb_stats_t *s = st->stats;
    int any = s->packets > 0;
    /* Only streams whose sources name points (DPMI) have a breakdown. */
    int points = tb_pointstats_any(&s->points);
    char reason[TB_STREAM_REASON_MAX];
    tb_stream_reason(c->streams, st, reason, sizeof reason);
    msgpack_pack_map(pk, 31 + (points ? 3 : 0));
    tb_mp_kv_str(pk, "stream", st->name);
    tb_mp_kv_u64(pk, "runs_ignored", st->runs_ignored);
    tb_mp_kv_u64(pk, "probes_expired", st->probes_expired);
    tb_mp_kv_u64(pk, "probes_refused", st->probes_refused);
    tb_mp_kv_u64(pk, "resumes", st->resumes);
    tb_mp_kv_double(pk, "unmeasured_s", (double)st->unmeasured_ns / 1e9);
    tb_mp_kv_str(pk, "state", tb_stream_state(st));
    tb_mp_kv_str(pk, "reason", reason);
    tb_mp_kv_u64(pk, "packets", s->packets);
    tb_mp_kv_u64(pk, "bytes", s->bytes);
    tb_mp_kv_u64(pk, "min_len", any ? s->min_pkt.wire_len : 0);
    tb_mp_kv_u64(pk, "max_len", any ? s->max_pkt.wire_len : 0);
    tb_mp_kv_double(pk, "avg_pps", tb_stats_avg_pps(s));
    tb_mp_kv_double(pk, "avg_bps",
                    s->last_ts > s->first_ts
                        ? (double)s->bytes * 8.0 / ((double)(s->last_ts - s->first_ts) / 1e9)
                        : 0.0);
    tb_mp_kv_u64(pk, "first_ts", s->first_ts);
    tb_mp_kv_u64(pk, "last_ts", s->last_ts);
    s_kv_time(pk, "first_time", s->first_ts);
    s_kv_time(pk, "last_time", s->last_ts);
    tb_mp_kv_u64(pk, "started_ns", st->started_ns);
    tb_mp_kv_u64(pk, "ended_ns", st->ended_ns);
    tb_mp_kv_u64(pk, "ts_outliers", s->ts_outliers);

    const tb_summary_t *pkts[3] = {&s->min_pkt, &s->max_pkt, &s->last_pkt};
    const char *names[3] = {"min_packet", "max_packet", "last_packet"};
    for (int i = 0; i < 3; i++) {
        tb_mp_pack_cstr(pk, names[i]);
        if (any) {
            s_pack_packet(pk, pkts[i]);
        } else {
            msgpack_pack_nil(pk);
        }
    }

    tb_mp_pack_cstr(pk, "protocols");
    msgpack_pack_map(pk, TB_PC_COUNT);
    for (int pc = 0; pc < TB_PC_COUNT; pc++) {
        tb_mp_pack_cstr(pk, tb_proto_class_name((tb_proto_class_t)pc));
        msgpack_pack_map(pk, 2);
        tb_mp_kv_u64(pk, "packets", s->proto[pc].packets);
        tb_mp_kv_u64(pk, "bytes", s->proto[pc].bytes);
    }
    tb_mp_pack_cstr(pk, "top_flows");
    s_pack_top_flows(c, pk, s);
    tb_mp_pack_cstr(pk, "top_hosts");
    s_pack_top_hosts(c, pk, s);
    /* Space-Saving's guarantee: no reported count is off by more than this. */
    tb_mp_kv_u64(pk, "top_flows_error_bound", tb_topk_error_bound(s->flows));
    tb_mp_kv_u64(pk, "top_hosts_error_bound", tb_topk_error_bound(s->hosts));
    tb_mp_kv_u64(pk, "run_resets", st->run_resets);
    tb_mp_pack_cstr(pk, "loss");
    s_pack_loss(pk, st);
    if (points) {
        s_pack_points(pk, &s->points);
    }
}

static void s_pack_probe_tracks(msgpack_packer *pk, const tb_stream_t *st, uint64_t now)
{
    msgpack_pack_array(pk, st->nprobes);
    for (size_t i = 0; i < st->nprobes; i++) {
        const tb_track_t *pt = &st->probes[i];
        double heard = (double)(now - pt->last_heard) / 1e9;
        msgpack_pack_map(pk, 13);
        tb_mp_kv_str(pk, "id", pt->probe_id);
        tb_mp_kv_double(pk, "last_heard_s", heard);
        /* Probes send a heartbeat every second; five missed ones mean the
         * probe or the path to it is gone. */
        tb_mp_kv_bool(pk, "silent", heard > 5.0);
        tb_mp_kv_str(pk, "source_state",
                     pt->src_state >= 0 ? tb_src_state_name(pt->src_state) : "unknown");
        tb_mp_kv_str(pk, "detail", pt->detail);
        tb_mp_kv_u64(pk, "received", pt->received);
        tb_mp_kv_u64(pk, "published", pt->have_hb ? pt->hb.packets : 0);
        tb_mp_kv_u64(pk, "sampled_out", pt->have_hb ? pt->hb.sampled_out : 0);
        tb_mp_kv_u64(pk, "capture_drops", tb_track_capture_drops(pt));
        tb_mp_kv_u64(pk, "seq_gaps", pt->seq_gaps);
        tb_mp_kv_u64(pk, "files_skipped", pt->have_hb ? pt->hb.files_skipped : 0);
        tb_mp_kv_u64(pk, "frames_lost", pt->have_hb ? pt->hb.frames_lost : 0);
        tb_mp_kv_u64(pk, "frames_bad", pt->have_hb ? pt->hb.frames_bad : 0);
    }
}

/* The offer table's counters: what it holds, its bounds, what it refused. */
static void s_pack_offer_counters(const tb_collector_t *c, msgpack_packer *pk)
{
    tb_offers_counters_t oc;
    tb_offers_counters(c->offers, &oc);
    msgpack_pack_map(pk, 9);
    tb_mp_kv_u64(pk, "probes", oc.probes);
    tb_mp_kv_u64(pk, "streams", oc.streams);
    tb_mp_kv_u64(pk, "max_probes", oc.max_probes);
    tb_mp_kv_u64(pk, "max_streams", oc.max_streams);
    tb_mp_kv_u64(pk, "received", oc.received);
    tb_mp_kv_u64(pk, "bad", oc.bad);
    tb_mp_kv_u64(pk, "refused_probes", oc.refused_probes);
    tb_mp_kv_u64(pk, "refused_streams", oc.refused_streams);
    tb_mp_kv_u64(pk, "expired", oc.expired);
}

/* streams: every stream a probe offers, with this collector's state of it
 * (nil when it does not measure it), then the streams it measures that no
 * probe offers (probe and kind nil). */
void tb_report_streams(tb_collector_t *c, msgpack_packer *pk)
{
    uint64_t now = tb_time_mono_ns();
    tb_offer_view_t v;
    size_t offered = 0, unoffered = 0;
    while (tb_offers_get(c->offers, offered, now, &v)) {
        offered++;
    }
    for (size_t i = 0; i < c->streams->max; i++) {
        unoffered += c->streams->slot[i].in_use &&
                     tb_offers_find(c->offers, c->streams->slot[i].name) == NULL;
    }
    tb_ctl_reply_begin(pk, NULL);
    msgpack_pack_map(pk, 2);
    tb_mp_pack_cstr(pk, "streams");
    msgpack_pack_array(pk, offered + unoffered);
    for (size_t i = 0; i < offered && tb_offers_get(c->offers, i, now, &v); i++) {
        const tb_stream_t *st = tb_streams_find(c->streams, v.stream);
        msgpack_pack_map(pk, 7);
        tb_mp_kv_str(pk, "stream", v.stream);
        tb_mp_kv_str(pk, "probe", v.probe_id);
        tb_mp_kv_str(pk, "kind", v.kind);
        tb_mp_kv_str(pk, "source_state", tb_src_state_name(v.state));
        tb_mp_kv_double(pk, "offered_s", v.age_s);
        tb_mp_kv_bool(pk, "measured", st != NULL && st->state != TB_STREAM_STOPPED);
        tb_mp_pack_cstr(pk, "state");
        if (st != NULL) {
            tb_mp_pack_cstr(pk, tb_stream_state(st));
        } else {
            msgpack_pack_nil(pk);
        }
    }
    for (size_t i = 0; i < c->streams->max; i++) {
        const tb_stream_t *st = &c->streams->slot[i];
        if (!st->in_use || tb_offers_find(c->offers, st->name) != NULL) {
            continue;
        }
        msgpack_pack_map(pk, 7);
        tb_mp_kv_str(pk, "stream", st->name);
        tb_mp_pack_cstr(pk, "probe");
        msgpack_pack_nil(pk);
        tb_mp_pack_cstr(pk, "kind");
        msgpack_pack_nil(pk);
        tb_mp_pack_cstr(pk, "source_state");
        msgpack_pack_nil(pk);
        tb_mp_pack_cstr(pk, "offered_s");
        msgpack_pack_nil(pk);
        tb_mp_kv_bool(pk, "measured", st->state != TB_STREAM_STOPPED);
        tb_mp_kv_str(pk, "state", tb_stream_state(st));
    }
    tb_mp_pack_cstr(pk, "offers");
    s_pack_offer_counters(c, pk);
}

/* CURVE: the allow-lists and everything refused (docs/security.md). */
static void s_pack_security(tb_collector_t *c, msgpack_packer *pk)
{
    tb_guard_counters_t g;
    tb_keybind_counters_t k;
    memset(&g, 0, sizeof g);
    memset(&k, 0, sizeof k);
    if (c->guard != NULL) {
        tb_guard_counters(c->guard, &g);
    }
    if (c->keybind != NULL) {
        tb_keybind_counters(c->keybind, &k);
    }
    msgpack_pack_map(pk, 9);
    tb_mp_kv_bool(pk, "curve", c->guard != NULL);
    tb_mp_pack_cstr(pk, "keys");
    msgpack_pack_map(pk, 3);
    tb_mp_kv_u64(pk, "act", g.act_keys);
    tb_mp_kv_u64(pk, "read", g.read_keys);
    tb_mp_kv_u64(pk, "probes", g.probe_keys);
    tb_mp_kv_u64(pk, "allowed", g.allowed);
    tb_mp_pack_cstr(pk, "refused_keys");
    msgpack_pack_map(pk, 2);
    tb_mp_kv_u64(pk, "control", g.refused_control);
    tb_mp_kv_u64(pk, "bus", g.refused_bus);
    tb_mp_kv_u64(pk, "failed_handshakes", g.control_handshake_failures);
    tb_mp_kv_u64(pk, "refused_read_only", c->ctl_refused_act);
    tb_mp_kv_u64(pk, "probe_ids", k.ids);
    tb_mp_kv_u64(pk, "refused_probe_ids", k.conflicts + k.full);
    tb_mp_pack_cstr(pk, "last_refused");
    msgpack_pack_map(pk, 2);
    tb_mp_kv_str(pk, "client", g.last_refused);
    tb_mp_kv_str(pk, "probe_id", k.last);
}

/* Status: the collector's own part (security, state, endpoints, requests,
 * bus and offer counters). */
static void s_pack_collector(tb_collector_t *c, msgpack_packer *pk, uint64_t now)
{
    msgpack_pack_map(pk, 12);
    tb_mp_pack_cstr(pk, "security");
    s_pack_security(c, pk);
    /* --state-dir: snapshots written and failed, streams brought back. */
    tb_mp_pack_cstr(pk, "state");
    if (c->cfg.state_dir != NULL) {
        msgpack_pack_map(pk, 5);
        tb_mp_kv_str(pk, "dir", c->cfg.state_dir);
        tb_mp_kv_u64(pk, "snapshots", c->state_saves);
        tb_mp_kv_u64(pk, "failures", c->state_failures);
        tb_mp_kv_str(pk, "error", c->state_error);
        tb_mp_kv_u64(pk, "restored", c->restored);
    } else {
        msgpack_pack_nil(pk);
    }
    tb_mp_kv_str(pk, "version", TAPBUS_VERSION);
    tb_mp_kv_double(pk, "uptime_s", (double)(now - c->started_mono) / 1e9);
    tb_mp_kv_str(pk, "control", c->cfg.control);
    /* --threads: the counting thread beside the loop, and the chunks it took. */
    tb_mp_kv_u64(pk, "threads", c->assist != NULL ? 2 : 1);
    tb_mp_kv_u64(pk, "chunks_assisted", c->streams->chunks_assisted);
    tb_mp_pack_cstr(pk, "probes");
    msgpack_pack_array(pk, c->cfg.nprobes);
    for (size_t i = 0; i < c->cfg.nprobes; i++) {
        tb_mp_pack_cstr(pk, c->cfg.probes[i]);
    }
    /* What became of each of them (and of --listen): refused, unresolvable... */
    tb_mp_pack_cstr(pk, "endpoints");
    tb_busmon_pack(c->mon, pk);
    tb_mp_pack_cstr(pk, "requests");
    msgpack_pack_map(pk, 4);
    tb_mp_kv_u64(pk, "received", c->ctl_received);
    tb_mp_kv_u64(pk, "malformed", c->ctl_malformed);
    tb_mp_kv_u64(pk, "dropped", c->ctl_dropped);
    tb_mp_kv_u64(pk, "replies_dropped", c->ctl_replies_dropped);
    tb_mp_pack_cstr(pk, "bus");
    msgpack_pack_map(pk, 5);
    tb_mp_kv_u64(pk, "messages", c->msgs);
    tb_mp_kv_u64(pk, "bad_frames", c->bad_frames);
    tb_mp_kv_u64(pk, "bad_bodies", c->bad_bodies);
    tb_mp_kv_u64(pk, "bad_topic", c->bad_topic);
    tb_mp_kv_u64(pk, "not_started", c->unknown_stream);
    tb_mp_pack_cstr(pk, "offers");
    s_pack_offer_counters(c, pk);
}

/* Status: one stream's entry. */
static void s_pack_stream_status(tb_collector_t *c, msgpack_packer *pk, const tb_stream_t *st,
                                 uint64_t now)
{
    char reason[TB_STREAM_REASON_MAX];
    tb_stream_reason(c->streams, st, reason, sizeof reason);
    msgpack_pack_map(pk, 12);
    tb_mp_kv_str(pk, "stream", st->name);
    tb_mp_kv_str(pk, "state", tb_stream_state(st));
    tb_mp_kv_str(pk, "reason", reason);
    tb_mp_kv_u64(pk, "resumes", st->resumes);
    tb_mp_kv_double(pk, "unmeasured_s", (double)st->unmeasured_ns / 1e9);
    tb_mp_kv_double(pk, "pps_now", st->pps_now);
    tb_mp_kv_u64(pk, "packets", st->stats->packets);
    tb_mp_kv_u64(pk, "bytes", st->stats->bytes);
    tb_mp_kv_double(pk, "avg_pps", tb_stats_avg_pps(st->stats));
    tb_mp_kv_u64(pk, "ts_outliers", st->stats->ts_outliers);
    tb_mp_pack_cstr(pk, "probes");
    s_pack_probe_tracks(pk, st, now);
    tb_mp_pack_cstr(pk, "loss");
    s_pack_loss(pk, st);
}

void tb_report_status(tb_collector_t *c, msgpack_packer *pk)
{
    uint64_t now = tb_time_mono_ns();
    size_t nstreams = 0;
    for (size_t i = 0; i < c->streams->max; i++) {
        nstreams += c->streams->slot[i].in_use != 0;
    }
    tb_ctl_reply_begin(pk, NULL);
    msgpack_pack_map(pk, 4);

    /* The database writer's health, nil without a database. */
    tb_mp_pack_cstr(pk, "database");
    if (c->db != NULL && c->db->ops->health != NULL) {
        c->db->ops->health(c->db, pk);
    } else {
        msgpack_pack_nil(pk);
    }

    tb_mp_pack_cstr(pk, "collector");
    s_pack_collector(c, pk, now);

    tb_mp_pack_cstr(pk, "streams");
    msgpack_pack_array(pk, nstreams);
    for (size_t i = 0; i < c->streams->max; i++) {
        if (c->streams->slot[i].in_use) {
            s_pack_stream_status(c, pk, &c->streams->slot[i], now);
        }
    }

    tb_mp_pack_cstr(pk, "limits");
    msgpack_pack_map(pk, 3);
    tb_mp_kv_u64(pk, "max_streams", c->cfg.max_streams);
    tb_mp_kv_u64(pk, "flow_capacity", c->cfg.flow_capacity);
    tb_mp_kv_u64(pk, "host_capacity", c->cfg.host_capacity);
}
