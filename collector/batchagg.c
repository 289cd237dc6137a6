/* batchagg — see batchagg.h. */
#include "batchagg.h"

#include "tb_hash.h"

#include <string.h>

#define FSLOTS (4 * TB_AGG_CHUNK)
#define HSLOTS (8 * TB_AGG_CHUNK)
#define SLOT_AHEAD 8 /* keys between a slot's prefetch and its lookup */

void tb_batchagg_init(tb_batchagg_t *a, uint64_t seed)
{
    memset(a, 0, sizeof *a);
    a->flow_seed = seed;
    a->host_seed = TB_HOST_SEED(seed);
}

/* A stored key against a key's words: loads of the stored key (written
 * long before) compared with the words in registers. */
static inline int s_eq_words(const void *stored, const uint64_t *w, size_t nwords, size_t size)
{
    const uint8_t *p = stored;
    uint64_t diff = 0;
    for (size_t i = 0; i + 1 < nwords; i++) {
        uint64_t v;
        memcpy(&v, p + 8 * i, 8);
        diff |= v ^ w[i];
    }
    uint64_t last = 0;
    memcpy(&last, p + 8 * (nwords - 1), size - 8 * (nwords - 1));
    return (diff | (last ^ w[nwords - 1])) == 0;
}

/* A key's words stored into an entry's key of size bytes, a word at a
 * time: a copy of the array (memcpy of w) read the words back from the
 * stack with loads wider than the stores that put them there, which the
 * core cannot forward, a stall on every key (tb-ingest-bench, every packet
 * a new flow: 52 -> 47.5 ns per packet). Word by word, the words stay in
 * registers. */
static inline void s_store_words(void *key, const uint64_t *w, size_t nwords, size_t size)
{
    uint8_t *p = key;
    for (size_t i = 0; i + 1 < nwords; i++) {
        memcpy(p + 8 * i, &w[i], 8);
    }
    memcpy(p + 8 * (nwords - 1), &w[nwords - 1], size - 8 * (nwords - 1));
}

/* Index of the flow key w (hash h) in the chunk, added if new. */
static uint16_t s_flow(tb_batchagg_t *a, const uint64_t w[TB_FLOW_KEY_WORDS], uint64_t h)
{
    uint32_t tag = a->gen << 16;
    size_t i = (size_t)h & (FSLOTS - 1);
    for (;;) {
        uint32_t sl = a->fslot[i];
        if ((sl & 0xffff0000u) != tag) {
            uint16_t idx = (uint16_t)a->nflows++;
            tb_agg_flow_t *f = &a->flows[idx];
            s_store_words(&f->key, w, TB_FLOW_KEY_WORDS, sizeof f->key);
            f->hash = h;
            f->bytes = 0;
            f->packets = 0;
            a->fslot[i] = tag | idx;
            return idx;
        }
        const tb_agg_flow_t *f = &a->flows[sl & 0xffffu];
        if (f->hash == h && s_eq_words(&f->key, w, TB_FLOW_KEY_WORDS, sizeof f->key)) {
            return (uint16_t)(sl & 0xffffu);
        }
        i = (i + 1) & (FSLOTS - 1);
    }
}

static uint16_t s_host(tb_batchagg_t *a, uint8_t family, const uint8_t *addr, uint64_t h,
                       uint32_t packets, uint64_t bytes)
{
    uint64_t w[TB_HOST_KEY_WORDS];
    tb_host_key_words(family, addr, w);
    uint32_t tag = a->gen << 16;
    size_t i = (size_t)h & (HSLOTS - 1);
    for (;;) {
        uint32_t sl = a->hslot[i];
        tb_agg_host_t *e;
        if ((sl & 0xffff0000u) != tag) {
            uint16_t idx = (uint16_t)a->nhosts++;
            e = &a->hosts[idx];
            s_store_words(&e->key, w, TB_HOST_KEY_WORDS, sizeof e->key);
            e->hash = h;
            e->bytes = 0;
            e->packets = 0;
            a->hslot[i] = tag | idx;
        } else {
            e = &a->hosts[sl & 0xffffu];
            if (e->hash != h || !s_eq_words(&e->key, w, TB_HOST_KEY_WORDS, sizeof e->key)) {
                i = (i + 1) & (HSLOTS - 1);
                continue;
            }
        }
        e->packets += packets;
        e->bytes += bytes;
        return (uint16_t)(e - a->hosts);
    }
}

/* Flows, grouped: every packet's hash first, then the lookups, each slot
 * prefetched SLOT_AHEAD packets before. */
static void s_group_flows(tb_batchagg_t *a, const tb_summary_t *items, size_t n)
{
    uint64_t *hash = a->hash;
    for (size_t i = 0; i < n; i++) {
        uint64_t w[TB_FLOW_KEY_WORDS];
        tb_flow_key_words(&items[i], w);
        hash[i] = tb_hash_words(w, sizeof(tb_flow_key_t), a->flow_seed);
    }
    for (size_t i = 0; i < n; i++) {
        if (i + SLOT_AHEAD < n) {
            __builtin_prefetch(&a->fslot[hash[i + SLOT_AHEAD] & (FSLOTS - 1)]);
        }
        const tb_summary_t *s = &items[i];
        uint64_t w[TB_FLOW_KEY_WORDS];
        tb_flow_key_words(s, w);
        uint16_t fi = s_flow(a, w, hash[i]);
        a->flows[fi].packets++;
        a->flows[fi].bytes += s->wire_len;
        a->pkt_flow[i] = fi;
    }
}

/* Flows, one entry per packet. */
static void s_each_flow(tb_batchagg_t *a, const tb_summary_t *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const tb_summary_t *s = &items[i];
        uint64_t w[TB_FLOW_KEY_WORDS];
        tb_flow_key_words(s, w);
        tb_agg_flow_t *f = &a->flows[i];
        s_store_words(&f->key, w, TB_FLOW_KEY_WORDS, sizeof f->key);
        f->hash = tb_hash_words(w, sizeof(tb_flow_key_t), a->flow_seed);
        f->packets = 1;
        f->bytes = s->wire_len;
        a->pkt_flow[i] = (uint16_t)i;
    }
    a->nflows = n;
}

/* Hosts, grouped, from the flow entries: source and destination of flow f
 * are keys 2f and 2f + 1. */
static void s_group_hosts(tb_batchagg_t *a)
{
    uint64_t *hash = a->hash;
    size_t nf = a->nflows;
    for (size_t f = 0; f < nf; f++) {
        const tb_agg_flow_t *e = &a->flows[f];
        uint64_t w[TB_HOST_KEY_WORDS];
        tb_host_key_words(e->key.family, e->key.src, w);
        hash[2 * f] = tb_hash_words(w, sizeof(tb_host_key_t), a->host_seed);
        tb_host_key_words(e->key.family, e->key.dst, w);
        hash[2 * f + 1] = tb_hash_words(w, sizeof(tb_host_key_t), a->host_seed);
    }
    for (size_t f = 0; f < nf; f++) {
        if (f + SLOT_AHEAD / 2 < nf) {
            __builtin_prefetch(&a->hslot[hash[2 * (f + SLOT_AHEAD / 2)] & (HSLOTS - 1)]);
            __builtin_prefetch(&a->hslot[hash[2 * (f + SLOT_AHEAD / 2) + 1] & (HSLOTS - 1)]);
        }
        tb_agg_flow_t *e = &a->flows[f];
        if (e->key.family != 0) {
            e->host[0] = s_host(a, e->key.family, e->key.src, hash[2 * f], e->packets, e->bytes);
            e->host[1] =
                s_host(a, e->key.family, e->key.dst, hash[2 * f + 1], e->packets, e->bytes);
            a->host_keys += 2;
        } else {
            e->host[0] = e->host[1] = TB_AGG_NONE;
        }
    }
}

/* Hosts, an entry per flow's source and destination. */
static void s_each_host(tb_batchagg_t *a)
{
    size_t nf = a->nflows;
    for (size_t f = 0; f < nf; f++) {
        tb_agg_flow_t *e = &a->flows[f];
        if (e->key.family == 0) {
            e->host[0] = e->host[1] = TB_AGG_NONE;
            continue;
        }
        for (int k = 0; k < 2; k++) {
            uint64_t w[TB_HOST_KEY_WORDS];
            tb_host_key_words(e->key.family, k == 0 ? e->key.src : e->key.dst, w);
            tb_agg_host_t *h = &a->hosts[a->nhosts];
            s_store_words(&h->key, w, TB_HOST_KEY_WORDS, sizeof h->key);
            h->hash = tb_hash_words(w, sizeof(tb_host_key_t), a->host_seed);
            h->packets = e->packets;
            h->bytes = e->bytes;
            e->host[k] = (uint16_t)a->nhosts++;
        }
    }
    a->host_keys = a->nhosts;
}

void tb_batchagg_build(tb_batchagg_t *a, const tb_summary_t *items, size_t n, unsigned group)
{
    if (n > TB_AGG_CHUNK) {
        n = TB_AGG_CHUNK;
    }
    /* A new generation makes every slot free without clearing the tables;
     * generation 0 is never used, so zeroed slots are free too. */
    a->gen = (a->gen + 1) & 0xffffu;
    if (a->gen == 0) {
        memset(a->fslot, 0, sizeof a->fslot);
        memset(a->hslot, 0, sizeof a->hslot);
        a->gen = 1;
    }
    a->nflows = 0;
    a->nhosts = 0;
    a->host_keys = 0;
    if (group & TB_AGG_GROUP_FLOWS) {
        s_group_flows(a, items, n);
    } else {
        s_each_flow(a, items, n);
    }
    if (group & TB_AGG_GROUP_HOSTS) {
        s_group_hosts(a);
    } else {
        s_each_host(a);
    }
}

/* Prefetch distances: a key's hash slot and filter counter are asked for
 * SLOT_AHEAD_TOPK keys before its update, its entry and count (which the slot
 * names) ENTRY_AHEAD keys before, when the table expects the chunk's keys to
 * be in it (tb_topk_expect_hits). A chunk holds thousands of keys: slots
 * asked for all at once would leave the cache before their turn. */
#define SLOT_AHEAD_TOPK 24
#define ENTRY_AHEAD     8

static inline void s_prefetch(tb_topk_t *t, const uint64_t *hash, size_t i, size_t n,
                              size_t stride, int entries)
{
    if (i + SLOT_AHEAD_TOPK < n) {
        tb_topk_prefetch_slot(t, hash[(i + SLOT_AHEAD_TOPK) * stride]);
    }
    if (entries && i + ENTRY_AHEAD < n) {
        tb_topk_prefetch_entry(t, hash[(i + ENTRY_AHEAD) * stride]);
    }
}

/* Every call inlined (with link-time optimisation, the top-N tables' too):
 * with every packet a new flow this loop calls tb_topk_add_n three times a
 * packet, and the calls' register saves and restores cost 2-3 % of the
 * collector's time (tb-ingest-bench: 72.6-73.0 -> 70.2-71.8 ns per packet,
 * with InfluxDB 109.5-110.6 -> 106.8-107.6; zipf the same). */
#if defined(__GNUC__)
__attribute__((flatten))
#endif
void tb_batchagg_count(const tb_batchagg_t *a, tb_topk_t *flows, tb_topk_t *hosts,
                       tb_hll_t *seen)
{
    _Static_assert(sizeof(tb_agg_flow_t) % sizeof(uint64_t) == 0 &&
                       sizeof(tb_agg_host_t) % sizeof(uint64_t) == 0,
                   "hashes a whole number of words apart");
    const size_t fstride = sizeof(tb_agg_flow_t) / sizeof(uint64_t);
    const size_t hstride = sizeof(tb_agg_host_t) / sizeof(uint64_t);
    const uint64_t *fhash = &a->flows[0].hash;
    const uint64_t *hhash = &a->hosts[0].hash;
    int entries = tb_topk_expect_hits(flows);
    size_t keys = 0, hits = 0;
    for (size_t i = 0; i < SLOT_AHEAD_TOPK && i < a->nflows; i++) {
        tb_topk_prefetch_slot(flows, a->flows[i].hash);
    }
    for (size_t i = 0; i < a->nflows; i++) {
        s_prefetch(flows, fhash, i, a->nflows, fstride, entries);
        const tb_agg_flow_t *f = &a->flows[i];
        if (f->key.family == 0) {
            continue;
        }
        if (seen != NULL) {
            tb_hll_add(seen, f->hash);
        }
        hits += (size_t)tb_topk_add_n(flows, &f->key, f->hash, f->packets, f->bytes);
        keys++;
    }
    tb_topk_note_hits(flows, keys, hits);
    entries = tb_topk_expect_hits(hosts);
    hits = 0;
    for (size_t i = 0; i < SLOT_AHEAD_TOPK && i < a->nhosts; i++) {
        tb_topk_prefetch_slot(hosts, a->hosts[i].hash);
    }
    for (size_t i = 0; i < a->nhosts; i++) {
        s_prefetch(hosts, hhash, i, a->nhosts, hstride, entries);
        const tb_agg_host_t *h = &a->hosts[i];
        hits += (size_t)tb_topk_add_n(hosts, &h->key, h->hash, h->packets, h->bytes);
    }
    tb_topk_note_hits(hosts, a->nhosts, hits);
}
