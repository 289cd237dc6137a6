/* batchagg — the packets of a chunk of a batch, grouped by flow and by host.
 *
 * Every consumer of a batch (the stream's statistics, the database sink's
 * interval tables and distinct-flow estimate) counts flows and hosts. The
 * collector builds this once per chunk of at most TB_AGG_CHUNK packets: each
 * packet's flow key and host keys are built and hashed once, and packets of
 * the same key are summed, so the top-N tables see one update per distinct
 * key instead of one per packet (a chunk of a real stream holds far fewer
 * flows than packets). Hosts are counted from the distinct flows (a flow's
 * packets are its two hosts' packets), so a packet costs one key, one hash
 * and one lookup in a table much smaller than the top-N tables. Each packet
 * keeps the index of its flow, and each flow those of its hosts, for a
 * consumer that must split the chunk (an interval that closes inside it).
 *
 * Hashes: flows with the collector's seed, hosts with TB_HOST_SEED(seed) —
 * the seeds every top-N table of the collector is created with, so that the
 * tables take these hashes as their own (tb_topk_add_n).
 *
 * Non-IP packets are one flow (family 0, empty key) and have no hosts; the
 * consumers leave that key out of their top tables and flow counts.
 * Fixed-size plain data (about 1.8 MiB, touched only as far as chunks fill
 * it): allocate it once; not thread-safe. */
#ifndef TB_BATCHAGG_H
#define TB_BATCHAGG_H

#include "hll.h"
#include "stats.h"
#include "topk.h"

#include <stddef.h>
#include <stdint.h>

/* Packets grouped at once: the collector stages consecutive batches of a
 * stream up to this many (stream.h). The bigger, the fewer distinct keys
 * per packet a skewed stream has (zipf, 10,000 flows: 0.58 per packet in
 * 1,024, 0.34 in 8,192); a chunk touches only the part of its own tables
 * its keys fill (every packet a new flow measured as fast in chunks of
 * 8,192 as of 1,024). */
#define TB_AGG_CHUNK 8192
#define TB_AGG_NONE  UINT16_MAX /* a packet without hosts (non-IP) */

/* The seed of host tables, from the collector's seed. */
#define TB_HOST_SEED(seed) ((seed) ^ 0x5bd1e995u)

typedef struct {
    tb_flow_key_t key;
    uint64_t hash;
    uint64_t bytes;
    uint32_t packets;
    uint16_t host[2]; /* indexes into hosts (src, dst), or TB_AGG_NONE (non-IP) */
} tb_agg_flow_t;

typedef struct {
    tb_host_key_t key;
    uint64_t hash;
    uint64_t bytes;
    uint32_t packets;
} tb_agg_host_t;

struct tb_batchagg_s {
    uint64_t flow_seed;
    uint64_t host_seed;
    size_t nflows;
    size_t nhosts;
    size_t host_keys;
    tb_agg_flow_t flows[TB_AGG_CHUNK];
    tb_agg_host_t hosts[2 * TB_AGG_CHUNK];
    uint16_t pkt_flow[TB_AGG_CHUNK]; /* index into flows, per packet */
    /* Open addressing over the chunk's keys: generation << 16 | index. */
    uint32_t gen;
    uint32_t fslot[4 * TB_AGG_CHUNK];
    uint32_t hslot[8 * TB_AGG_CHUNK];
    /* Hashes of a pass's keys, computed all first (independent multiplies
     * overlap) so that each lookup's slot can be prefetched ahead. */
    uint64_t hash[2 * TB_AGG_CHUNK];
};

/* What a build groups (tb_batchagg_build): packets by flow, flows' hosts
 * by host. A part not grouped gets an entry per key as it comes (per
 * packet; per flow's source and destination), duplicates and all: every
 * consumer counts them as it counts one grouped entry (a top-N table sums
 * the updates of a key, an estimate of distinct keys sees it again), so
 * the counts are the same. Grouping pays when keys repeat within a chunk
 * (a skewed stream); when nearly every key is new (a scan, a flood of
 * spoofed sources) it is a lookup per key that saves nothing, and the
 * collector skips it (stream_stage.c). */
#define TB_AGG_GROUP_FLOWS 1u
#define TB_AGG_GROUP_HOSTS 2u
#define TB_AGG_GROUP_ALL   (TB_AGG_GROUP_FLOWS | TB_AGG_GROUP_HOSTS)

/* Prepare for a collector whose tables use `seed`. */
void tb_batchagg_init(tb_batchagg_t *a, uint64_t seed);

/* Group items[0, n), n <= TB_AGG_CHUNK (more are not looked at), as far as
 * `group` (TB_AGG_GROUP_*) says. Afterwards nflows and nhosts are the
 * entries made, and host_keys the host keys looked at (two per IP flow
 * entry): with a part grouped, its entries against its keys tell how much
 * the grouping saved. */
void tb_batchagg_build(tb_batchagg_t *a, const tb_summary_t *items, size_t n, unsigned group);

/* Count the chunk's groups into top-N tables created with the collector's
 * seeds: every IP flow into flows (and its hash into seen, unless NULL),
 * every host into hosts. The non-IP packets' key (family 0) is left out:
 * they are no conversation between IP hosts. The tables' lookups miss the
 * cache; they are prefetched in stages a few keys ahead so that the misses
 * overlap. */
void tb_batchagg_count(const tb_batchagg_t *a, tb_topk_t *flows, tb_topk_t *hosts,
                       tb_hll_t *seen);

#endif
