/* stats — see stats.h. */
#include "stats.h"

#include "batchagg.h"

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

void tb_flow_key(const tb_summary_t *s, tb_flow_key_t *k)
{
    memset(k, 0, sizeof *k);
    k->family = s->family;
    if (s->family == 0) {
        return; /* non-IP: one empty key, kept out of the top tables */
    }
    k->proto = s->proto;
    if (s->flags & TB_SUM_PORTS) {
        k->sport = s->sport;
        k->dport = s->dport;
    }
    memcpy(k->src, s->src, 16);
    memcpy(k->dst, s->dst, 16);
}

void tb_host_key(tb_host_key_t *hk, uint8_t family, const uint8_t *addr)
{
    memset(hk, 0, sizeof *hk);
    hk->family = family;
    memcpy(hk->addr, addr, 16);
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

void tb_stats_add(tb_stats_t *st, const tb_summary_t *items, size_t n, const tb_batchagg_t *agg)
{
    for (size_t i = 0; i < n; i++) {
        s_scalar(st, &items[i]);
    }
    if (n > 0) {
        st->last_pkt = items[n - 1];
    }
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
