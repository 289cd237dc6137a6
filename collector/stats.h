/* stats — the statistics of one stream since its measurement started.
 *
 * Fed batch-wise with packet summaries; keeps totals, extremes, the last
 * packet, per-protocol-class counters and bounded top flows / top hosts.
 * Memory is fixed at creation (the top-N tables have a configured capacity).
 * Not thread-safe: owned by the collector's loop. */
#ifndef TB_STATS_H
#define TB_STATS_H

#include "pointstats.h"
#include "tb_summary.h"
#include "topk.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Key of a flow in the top-flows table (padding zeroed, compared bytewise). */
typedef struct {
    uint8_t family;
    uint8_t proto;
    uint16_t sport;
    uint16_t dport;
    uint8_t pad[2];
    uint8_t src[16];
    uint8_t dst[16];
} tb_flow_key_t;

/* Key of a host in the top-hosts table. */
typedef struct {
    uint8_t family;
    uint8_t pad[3];
    uint8_t addr[16];
} tb_host_key_t;

typedef struct {
    uint64_t packets;
    uint64_t bytes;
} tb_counter_t;

/* Collector-local summary flag (never on the wire): the packet's capture
 * time was absurd and was replaced by the stream's (see series.h). */
#define TB_SUM_TS_OUTLIER (1u << 7)

typedef struct {
    uint64_t packets;
    uint64_t bytes;
    uint64_t first_ts;     /* capture time of the earliest packet, ns */
    uint64_t last_ts;      /* capture time of the latest packet, ns */
    tb_summary_t min_pkt;  /* first packet of the smallest wire length */
    tb_summary_t max_pkt;  /* first packet of the largest wire length */
    tb_summary_t last_pkt; /* the packet that arrived last */
    tb_counter_t proto[TB_PC_COUNT];
    uint64_t decode_flagged; /* summaries marked truncated or malformed */
    uint64_t ts_outliers;    /* packets with an absurd capture time (series.h) */
    tb_topk_t *flows;        /* owned */
    tb_topk_t *hosts;        /* owned */
    tb_pointstats_t points;  /* by measurement point (fed beside tb_stats_add) */
} tb_stats_t;

/* Create with top-N tables of the given capacities. NULL on failure. */
tb_stats_t *tb_stats_new(size_t flow_capacity, size_t host_capacity, uint64_t seed);
void tb_stats_destroy(tb_stats_t **p);

/* Start over (a new measurement). */
void tb_stats_reset(tb_stats_t *st);

/* Account n summaries (borrowed), grouped by agg (tb_batchagg_build over
 * the same items; tables created with the seed agg was prepared with): every
 * one in the totals and protocol classes, IP ones (family != 0) also in the
 * top flows and hosts. */
struct tb_batchagg_s;
typedef struct tb_batchagg_s tb_batchagg_t;
void tb_stats_add(tb_stats_t *st, const tb_summary_t *items, size_t n, const tb_batchagg_t *agg);

/* tb_stats_add without the top tables: for a caller that counts those
 * itself (tb_batchagg_count), on another thread (stream_stage.c). */
void tb_stats_add_totals(tb_stats_t *st, const tb_summary_t *items, size_t n);

/* Average packets per second over the capture-time span (packets if the span
 * is zero). */
double tb_stats_avg_pps(const tb_stats_t *st);

/* Flow key of a summary (also used to print top flows), and host key of one
 * address of a packet, as the words a key's bytes fill when copied into
 * uint64_t (tb_hash_words hashes them exactly as tb_hash_bytes hashes the
 * key): on the hot path the key is built, hashed and compared in registers.
 * A key written to memory field by field and read back by wider loads stalls
 * the core on every packet (the loads cannot take their bytes from the
 * pending narrower stores). A host key's third word holds its last 4 bytes,
 * then zeros. */
#define TB_FLOW_KEY_WORDS 5
#define TB_HOST_KEY_WORDS 3

static inline void tb_flow_key_words(const tb_summary_t *s, uint64_t w[TB_FLOW_KEY_WORDS])
{
    _Static_assert(sizeof(tb_flow_key_t) == 8 * TB_FLOW_KEY_WORDS &&
                       offsetof(tb_flow_key_t, src) == 8,
                   "tb_flow_key_t layout");
    uint16_t sport = (s->flags & TB_SUM_PORTS) ? s->sport : 0;
    uint16_t dport = (s->flags & TB_SUM_PORTS) ? s->dport : 0;
    if (s->family == 0) {
        /* non-IP: one empty key, kept out of the top tables */
        for (int i = 0; i < TB_FLOW_KEY_WORDS; i++) {
            w[i] = 0;
        }
        return;
    }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    w[0] = (uint64_t)s->family | (uint64_t)s->proto << 8 | (uint64_t)sport << 16 |
           (uint64_t)dport << 32;
    memcpy(&w[1], s->src, 16);
    memcpy(&w[3], s->dst, 16);
#else
    tb_flow_key_t k;
    memset(&k, 0, sizeof k);
    k.family = s->family;
    k.proto = s->proto;
    k.sport = sport;
    k.dport = dport;
    memcpy(k.src, s->src, 16);
    memcpy(k.dst, s->dst, 16);
    memcpy(w, &k, sizeof k);
#endif
}

static inline void tb_host_key_words(uint8_t family, const uint8_t *addr,
                                     uint64_t w[TB_HOST_KEY_WORDS])
{
    _Static_assert(sizeof(tb_host_key_t) == 20 && offsetof(tb_host_key_t, addr) == 4,
                   "tb_host_key_t layout");
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint32_t a0, a3;
    memcpy(&a0, addr, 4);
    memcpy(&w[1], addr + 4, 8);
    memcpy(&a3, addr + 12, 4);
    w[0] = (uint64_t)family | (uint64_t)a0 << 32;
    w[2] = a3;
#else
    tb_host_key_t k;
    memset(&k, 0, sizeof k);
    k.family = family;
    memcpy(k.addr, addr, 16);
    w[2] = 0;
    memcpy(w, &k, sizeof k);
#endif
}

static inline void tb_flow_key(const tb_summary_t *s, tb_flow_key_t *k)
{
    uint64_t w[TB_FLOW_KEY_WORDS];
    tb_flow_key_words(s, w);
    memcpy(k, w, sizeof *k);
}

static inline void tb_host_key(tb_host_key_t *k, uint8_t family, const uint8_t *addr)
{
    uint64_t w[TB_HOST_KEY_WORDS];
    tb_host_key_words(family, addr, w);
    memcpy(k, w, sizeof *k);
}

/* A top-N key as text: addresses (empty for non-IP) and the protocol
 * class name. src/dst/addr need TB_KEY_TEXT_MAX bytes. */
#define TB_KEY_TEXT_MAX 64
const char *tb_flow_key_text(const tb_flow_key_t *k, char *src, char *dst);
void tb_host_key_text(const tb_host_key_t *k, char *addr);

/* A snapshot of the statistics (--state-dir, state.h): one msgpack map of
 * the totals, the extremes and last packet, the protocol classes, both top
 * tables (tb_topk_pack) and the points (tb_pointstats_pack). 0, or
 * TB_ENOMEM (the packer then holds an incomplete map). */
int tb_stats_pack(const tb_stats_t *st, msgpack_packer *pk);

/* Read back what tb_stats_pack wrote into st (reset first; its tables keep
 * their capacities and seeds). Keys not known are skipped; anything
 * malformed sets r->error. */
void tb_stats_unpack(tb_stats_t *st, tb_mp_reader_t *r);

#endif
