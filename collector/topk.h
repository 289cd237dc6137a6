/* topk — bounded heavy hitters (Space-Saving, Metwally et al., ICDT 2005,
 * with the filter of Filtered Space-Saving, Homem and Carvalho, 2010).
 *
 * Counts packets (and bytes) per fixed-size key in at most `capacity` entries.
 * A key not in the table adds its packets to one of a fixed array of filter
 * counters (picked by its hash); once the table is full, it takes over the
 * entry with the smallest count only when its counter plus its packets
 * exceed that count, and then starts from that sum, with its counter as its
 * error bound. A key that goes out leaves its count in its counter.
 * Guarantees: a key's reported count overestimates its true count by at
 * most its error, every key with more packets than the smallest count is in
 * the table, and the smallest count bounds every error
 * (tb_topk_error_bound). The filter spares the table a take-over and a heap
 * sift for each key seen once or twice (a stream of new flows), which plain
 * Space-Saving pays for every one. Memory is fixed at creation, whatever the
 * traffic.
 *
 * Layout: entries never move; a min-heap of entry indices finds the smallest
 * count; an open-addressing hash table (linear probing, backward-shift
 * deletion) maps keys to entries. An update costs one hash lookup and a heap
 * sift of O(log capacity). Not thread-safe. */
#ifndef TB_TOPK_H
#define TB_TOPK_H

#include "tb_mp.h"

#include <stddef.h>
#include <stdint.h>

#define TB_TOPK_KEY_MAX 40

typedef struct tb_topk tb_topk_t;

typedef struct {
    const uint8_t *key; /* borrowed: valid until the next add or reset */
    uint64_t packets;   /* estimated packets (true count <= packets) */
    uint64_t bytes;     /* bytes counted since the key took its entry */
    uint64_t error;     /* packets - error <= true count */
} tb_topk_item_t;

/* capacity >= 1 entries of key_size bytes (a multiple of 4, at most
 * TB_TOPK_KEY_MAX). NULL on bad
 * arguments or out of memory. */
tb_topk_t *tb_topk_new(size_t capacity, size_t key_size, uint64_t seed);
void tb_topk_destroy(tb_topk_t **p);

/* Count one packet of `bytes` bytes for key (key_size bytes, borrowed). */
void tb_topk_add(tb_topk_t *t, const void *key, uint64_t bytes);

/* The same in steps, for callers that work through a batch: hash every key
 * first and prefetch its slot and filter counter, then, a few keys ahead,
 * its entry and its count (the landed slot names them), then add, so that
 * cache misses overlap instead of queueing up. */
uint64_t tb_topk_hash(const tb_topk_t *t, const void *key);
void tb_topk_prefetch_slot(const tb_topk_t *t, uint64_t hash);
void tb_topk_prefetch_entry(const tb_topk_t *t, uint64_t hash);
void tb_topk_add_hashed(tb_topk_t *t, const void *key, uint64_t hash, uint64_t bytes);

/* Count `packets` packets of `bytes` bytes in all for a key at once (the
 * packets of one key in a batch, grouped first: tb_batchagg). Space-Saving
 * with weights keeps its guarantees: a key that takes over the smallest
 * entry inherits that entry's count as its error. hash as tb_topk_hash.
 * Returns 1 if the key had an entry, 0 if not (or packets is 0). */
int tb_topk_add_n(tb_topk_t *t, const void *key, uint64_t hash, uint64_t packets,
                  uint64_t bytes);

/* Whether the entries are worth prefetching: a key that has none (most keys
 * of a stream of new flows) costs that prefetch a slot read for nothing.
 * The caller tells the table how many keys of a batch it added and how many
 * had an entry (tb_topk_add_n's results); the next batch expects the same
 * (a batch of fewer than 256 keys changes nothing). A new table expects
 * hits. */
int tb_topk_expect_hits(const tb_topk_t *t);
void tb_topk_note_hits(tb_topk_t *t, size_t keys, size_t hits);

/* Put back a key with the counts a table held (a snapshot being restored):
 * the entry takes `packets`, `bytes` and `error` as they were. Restore the
 * heaviest keys first: once the table is full, the rest are refused. Returns
 * 0, TB_ELIMIT when the table is full, or TB_EPROTO when the key is there
 * already or packets is 0 or below error. The table's total is not changed
 * (tb_topk_set_total). */
int tb_topk_restore(tb_topk_t *t, const void *key, uint64_t packets, uint64_t bytes,
                    uint64_t error);

/* Set the packets counted since the last reset (a snapshot being restored). */
void tb_topk_set_total(tb_topk_t *t, uint64_t total);

/* A snapshot of the table (--state-dir), as one msgpack map: its total and
 * every key with its counts, heaviest first. Returns 0 or TB_ENOMEM. */
int tb_topk_pack(const tb_topk_t *t, msgpack_packer *pk);

/* Read a snapshot written by tb_topk_pack into t (reset first). Keys that
 * do not fit a smaller table are left out, the lightest first. Errors set
 * r->error. */
void tb_topk_unpack(tb_topk_t *t, tb_mp_reader_t *r);

/* Forget every key. */
void tb_topk_reset(tb_topk_t *t);

/* The n heaviest keys, most packets first; returns how many were written. */
size_t tb_topk_top(const tb_topk_t *t, tb_topk_item_t *out, size_t n);

/* The most any reported count can exceed the truth, and the most packets a
 * key not in the table can have had: the smallest count in the table once
 * it is full, 0 while it is not. */
uint64_t tb_topk_error_bound(const tb_topk_t *t);

/* Packets counted since the last reset, and the table's capacity. */
uint64_t tb_topk_total(const tb_topk_t *t);
size_t tb_topk_capacity(const tb_topk_t *t);

#endif
