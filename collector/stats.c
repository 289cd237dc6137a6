/* stats — see stats.h. */
#include "stats.h"

#include "batchagg.h"
#include "tb_err.h"

#include <stdlib.h>
#include <string.h>

tb_stats_t *tb_stats_new(size_t flow_capacity, size_t host_capacity, uint64_t seed)
{
    tb_stats_t *st = calloc(1, sizeof *st);
    if (st == NULL) {
        return NULL;
    }
    st->flows = tb_topk_new(flow_capacity, sizeof(tb_flow_key_t), seed);
    st->hosts = tb_topk_new(host_capacity, sizeof(tb_host_key_t), TB_HOST_SEED(seed));
    if (st->flows == NULL || st->hosts == NULL) {
        tb_stats_destroy(&st);
        return NULL;
    }
    tb_stats_reset(st);
    return st;
}

void tb_stats_destroy(tb_stats_t **p)
{
    if (p == NULL || *p == NULL) {
        return;
    }
    tb_stats_t *st = *p;
    *p = NULL;
    tb_topk_destroy(&st->flows);
    tb_topk_destroy(&st->hosts);
    free(st);
}

void tb_stats_reset(tb_stats_t *st)
{
    tb_topk_t *flows = st->flows;
    tb_topk_t *hosts = st->hosts;
    memset(st, 0, sizeof *st);
    st->flows = flows;
    st->hosts = hosts;
    tb_topk_reset(flows);
    tb_topk_reset(hosts);
}

const char *tb_flow_key_text(const tb_flow_key_t *k, char *src, char *dst)
{
    tb_summary_t s;
    memset(&s, 0, sizeof s);
    s.family = k->family;
    s.proto = k->proto;
    memcpy(s.src, k->src, 16);
    memcpy(s.dst, k->dst, 16);
    tb_summary_addr(&s, 0, src, TB_KEY_TEXT_MAX);
    tb_summary_addr(&s, 1, dst, TB_KEY_TEXT_MAX);
    return tb_proto_class_name(tb_proto_class(&s));
}

void tb_host_key_text(const tb_host_key_t *k, char *addr)
{
    tb_summary_t s;
    memset(&s, 0, sizeof s);
    s.family = k->family;
    memcpy(s.src, k->addr, 16);
    tb_summary_addr(&s, 0, addr, TB_KEY_TEXT_MAX);
}

/* Totals, extremes and protocol classes of one packet. */
static void s_scalar(tb_stats_t *st, const tb_summary_t *s)
{
    if (st->packets == 0) {
        st->first_ts = s->ts_ns;
        st->last_ts = s->ts_ns;
        st->min_pkt = *s;
        st->max_pkt = *s;
    } else {
        if (s->ts_ns < st->first_ts) {
            st->first_ts = s->ts_ns;
        }
        if (s->ts_ns > st->last_ts) {
            st->last_ts = s->ts_ns;
        }
        if (s->wire_len < st->min_pkt.wire_len) {
            st->min_pkt = *s;
        }
        if (s->wire_len > st->max_pkt.wire_len) {
            st->max_pkt = *s;
        }
    }
    st->packets++;
    st->bytes += s->wire_len;
    tb_counter_t *pc = &st->proto[tb_proto_class(s)];
    pc->packets++;
    pc->bytes += s->wire_len;
    if (s->flags & (TB_SUM_TRUNC | TB_SUM_MALFORMED)) {
        st->decode_flagged++;
    }
    if (s->flags & TB_SUM_TS_OUTLIER) {
        st->ts_outliers++;
    }
}

void tb_stats_add_totals(tb_stats_t *st, const tb_summary_t *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        s_scalar(st, &items[i]);
    }
    if (n > 0) {
        st->last_pkt = items[n - 1];
    }
}

void tb_stats_add(tb_stats_t *st, const tb_summary_t *items, size_t n, const tb_batchagg_t *agg)
{
    tb_stats_add_totals(st, items, n);
    /* Non-IP packets count in the totals and as non_ip in the protocol
     * classes, but they are no conversation between IP hosts: no flow (and
     * batchagg gives them no hosts), so an ARP lump is never the most active
     * tuple. */
    tb_batchagg_count(agg, st->flows, st->hosts, NULL);
}

double tb_stats_avg_pps(const tb_stats_t *st)
{
    if (st->packets == 0) {
        return 0.0;
    }
    uint64_t span = st->last_ts - st->first_ts;
    if (span == 0) {
        return (double)st->packets;
    }
    return (double)st->packets / ((double)span / 1e9);
}

/* --- snapshots ----------------------------------------------------------- */

/* A summary in a snapshot: an array of its fields. */
#define SUMMARY_FIELDS 13

static void s_pack_summary(msgpack_packer *pk, const tb_summary_t *s)
{
    msgpack_pack_array(pk, SUMMARY_FIELDS);
    msgpack_pack_uint64(pk, s->ts_ns);
    msgpack_pack_uint32(pk, s->wire_len);
    msgpack_pack_uint32(pk, s->cap_len);
    msgpack_pack_uint8(pk, s->family);
    msgpack_pack_uint8(pk, s->proto);
    msgpack_pack_uint8(pk, s->tcp_flags);
    msgpack_pack_uint8(pk, s->flags);
    msgpack_pack_uint16(pk, s->sport);
    msgpack_pack_uint16(pk, s->dport);
    msgpack_pack_uint16(pk, s->vlan);
    msgpack_pack_uint16(pk, s->ethertype);
    msgpack_pack_bin(pk, sizeof s->src);
    msgpack_pack_bin_body(pk, s->src, sizeof s->src);
    msgpack_pack_bin(pk, sizeof s->dst);
    msgpack_pack_bin_body(pk, s->dst, sizeof s->dst);
}

int tb_stats_pack(const tb_stats_t *s, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 13);
    tb_mp_kv_u64(pk, "packets", s->packets);
    tb_mp_kv_u64(pk, "bytes", s->bytes);
    tb_mp_kv_u64(pk, "first_ts", s->first_ts);
    tb_mp_kv_u64(pk, "last_ts", s->last_ts);
    tb_mp_pack_cstr(pk, "min");
    s_pack_summary(pk, &s->min_pkt);
    tb_mp_pack_cstr(pk, "max");
    s_pack_summary(pk, &s->max_pkt);
    tb_mp_pack_cstr(pk, "last");
    s_pack_summary(pk, &s->last_pkt);
    tb_mp_pack_cstr(pk, "proto");
    msgpack_pack_array(pk, TB_PC_COUNT);
    for (int pc = 0; pc < TB_PC_COUNT; pc++) {
        msgpack_pack_array(pk, 2);
        msgpack_pack_uint64(pk, s->proto[pc].packets);
        msgpack_pack_uint64(pk, s->proto[pc].bytes);
    }
    tb_mp_kv_u64(pk, "decode_flagged", s->decode_flagged);
    tb_mp_kv_u64(pk, "ts_outliers", s->ts_outliers);
    tb_mp_pack_cstr(pk, "flows");
    int rc = tb_topk_pack(s->flows, pk);
    tb_mp_pack_cstr(pk, "hosts");
    int rc_hosts = tb_topk_pack(s->hosts, pk);
    tb_mp_pack_cstr(pk, "points");
    tb_pointstats_pack(&s->points, pk);
    return rc != 0 ? rc : rc_hosts;
}

static void s_read_summary(tb_mp_reader_t *r, tb_summary_t *s)
{
    memset(s, 0, sizeof *s);
    if (tb_mp_read_array(r) != SUMMARY_FIELDS) {
        r->error = r->error ? r->error : TB_EPROTO;
        return;
    }
    s->ts_ns = tb_mp_read_uint(r);
    uint64_t v[10];
    for (int i = 0; i < 10; i++) {
        v[i] = tb_mp_read_uint(r);
    }
    s->wire_len = (uint32_t)v[0];
    s->cap_len = (uint32_t)v[1];
    s->family = (uint8_t)v[2];
    s->proto = (uint8_t)v[3];
    s->tcp_flags = (uint8_t)v[4];
    s->flags = (uint8_t)v[5];
    s->sport = (uint16_t)v[6];
    s->dport = (uint16_t)v[7];
    s->vlan = (uint16_t)v[8];
    s->ethertype = (uint16_t)v[9];
    uint32_t len;
    const uint8_t *a = tb_mp_read_bin(r, &len);
    if (a != NULL && len == sizeof s->src) {
        memcpy(s->src, a, len);
    }
    const uint8_t *b = tb_mp_read_bin(r, &len);
    if (b != NULL && len == sizeof s->dst) {
        memcpy(s->dst, b, len);
    }
    /* Values that would not fit their fields, or a family this version does
     * not know, mean the file is not ours. */
    if (v[0] > UINT32_MAX || v[1] > UINT32_MAX ||
        (v[2] != TB_FAMILY_NONE && v[2] != TB_FAMILY_IPV4 && v[2] != TB_FAMILY_IPV6) ||
        v[3] > UINT8_MAX || v[4] > UINT8_MAX || v[5] > UINT8_MAX || v[6] > UINT16_MAX ||
        v[7] > UINT16_MAX || v[8] > UINT16_MAX || v[9] > UINT16_MAX || a == NULL || b == NULL) {
        r->error = r->error ? r->error : TB_EPROTO;
    }
}

void tb_stats_unpack(tb_stats_t *s, tb_mp_reader_t *r)
{
    tb_stats_reset(s);
    uint32_t pairs = tb_mp_read_map(r);
    for (uint32_t i = 0; i < pairs && !r->error; i++) {
        if (tb_mp_next_str_is(r, "packets")) {
            s->packets = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "bytes")) {
            s->bytes = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "first_ts")) {
            s->first_ts = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "last_ts")) {
            s->last_ts = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "min")) {
            s_read_summary(r, &s->min_pkt);
        } else if (tb_mp_next_str_is(r, "max")) {
            s_read_summary(r, &s->max_pkt);
        } else if (tb_mp_next_str_is(r, "last")) {
            s_read_summary(r, &s->last_pkt);
        } else if (tb_mp_next_str_is(r, "proto")) {
            uint32_t n = tb_mp_read_array(r);
            for (uint32_t pc = 0; pc < n && !r->error; pc++) {
                if (tb_mp_read_array(r) != 2) {
                    r->error = r->error ? r->error : TB_EPROTO;
                    break;
                }
                uint64_t p = tb_mp_read_uint(r), b = tb_mp_read_uint(r);
                if (pc < TB_PC_COUNT) {
                    s->proto[pc].packets = p;
                    s->proto[pc].bytes = b;
                }
            }
        } else if (tb_mp_next_str_is(r, "decode_flagged")) {
            s->decode_flagged = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "ts_outliers")) {
            s->ts_outliers = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "flows")) {
            tb_topk_unpack(s->flows, r);
        } else if (tb_mp_next_str_is(r, "hosts")) {
            tb_topk_unpack(s->hosts, r);
        } else if (tb_mp_next_str_is(r, "points")) {
            tb_pointstats_unpack(&s->points, r);
        } else {
            tb_mp_skip(r);
            tb_mp_skip(r);
        }
    }
}
