/* stats — see stats.h. */
#include "stats.h"

#include <stdlib.h>
#include <string.h>

tb_stats_t *tb_stats_new(size_t flow_capacity, size_t host_capacity, uint64_t seed)
{
    tb_stats_t *st = calloc(1, sizeof *st);
    if (st == NULL) {
        return NULL;
    }
    st->flows = tb_topk_new(flow_capacity, sizeof(tb_flow_key_t), seed);
    st->hosts = tb_topk_new(host_capacity, sizeof(tb_host_key_t), seed ^ 0x5bd1e995u);
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
        return; /* every non-IP packet is one "flow" */
    }
    k->proto = s->proto;
    if (s->flags & TB_SUM_PORTS) {
        k->sport = s->sport;
        k->dport = s->dport;
    }
    memcpy(k->src, s->src, 16);
    memcpy(k->dst, s->dst, 16);
}

static void s_host(tb_stats_t *st, uint8_t family, const uint8_t *addr, uint32_t len)
{
    tb_host_key_t hk;
    memset(&hk, 0, sizeof hk);
    hk.family = family;
    memcpy(hk.addr, addr, 16);
    tb_topk_add(st->hosts, &hk, len);
}

void tb_stats_add(tb_stats_t *st, const tb_summary_t *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const tb_summary_t *s = &items[i];
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
        tb_flow_key_t fk;
        tb_flow_key(s, &fk);
        tb_topk_add(st->flows, &fk, s->wire_len);
        if (s->family != 0) {
            s_host(st, s->family, s->src, s->wire_len);
            s_host(st, s->family, s->dst, s->wire_len);
        }
    }
    if (n > 0) {
        st->last_pkt = items[n - 1];
    }
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
