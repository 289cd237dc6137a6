/* topk — see topk.h. */
#include "topk.h"

#include "tb_err.h"
#include "tb_hash.h"

#include <stdlib.h>
#include <string.h>

#define EMPTY UINT32_MAX

/* Hash slots per entry: 8, so that the table is at most an eighth full. A
 * key not in the table (most keys of a stream of new flows) then finds a
 * free slot in 1.07 probes on average instead of 2.5 at half full, and the
 * probe loop's exit is predictable: with every packet a new flow, the
 * statistics cost 20-30 % less time (tb-stats-bench, tb-ingest-bench) for
 * 48 more bytes per entry. */
#define SLOTS_PER_ENTRY 8

/* Filter counters per entry (of the capacity rounded up to a power of
 * two): the more there are, the fewer keys seen once share a counter with
 * others and get in, each taking over an entry and sifting the heap (some
 * 250 cycles, 150 of them the sift from the root). With every packet a new
 * flow, 16 counters per entry cost 15 % less time than 8 (tb-stats-bench),
 * 32 another 6 % (tb-ingest-bench: 83-86 -> 77-81 ns per packet), and 64 of
 * 16 bits (alpha_t), in the bytes 32 of 32 bits took, another 3 %
 * (71.0-72.6 -> 69.2-71.0 ns; take-overs 4.4 -> 2.8 % of updates), zipf
 * the same. 128 gained 1 % more there and lost 1-2 % on zipf. */
#define ALPHA_PER_ENTRY 64

/* A filter counter never exceeds the table's smallest count (it only ever
 * takes a count at most that, and the smallest count never falls), and the
 * counters that matter lie close below it. So a counter holds its value
 * above the table's alpha_base in 16 bits, and when a value would not fit,
 * the base moves up to ALPHA_KEEP below the smallest count: every counter
 * is lowered by as much, and one that would fall below the new base is
 * raised to it. Raising a counter only overestimates what its keys had,
 * which the guarantees allow (a key's error stays at most the smallest
 * count). The smallest count must grow by more than 2^16 - ALPHA_KEEP
 * between two moves, so they cost nothing per packet (some 2^27 packets
 * apart at 4,096 entries, at the least). While the table is not full every
 * counter is 0 and the base 0 (only reset writes them then). */
typedef uint16_t alpha_t;
#define ALPHA_KEEP 16384

/* An entry's count lives in the heap beside its index (heap_t), and its
 * place in the heap in pos[]: sifting reads and writes only those two small
 * arrays, never the entries, which are too many to stay in a core's cache. */
typedef struct {
    uint64_t bytes;
    uint64_t error;
    uint64_t hash; /* of key: kept so deletion never rehashes */
    uint8_t key[TB_TOPK_KEY_MAX];
} entry_t;

_Static_assert(sizeof(entry_t) == 64, "an entry fills one cache line");

typedef struct {
    uint64_t packets;
    uint32_t entry;
    uint32_t tag; /* the entry's slot tag (low 32 bits of its hash) */
} heap_t;

/* The heap is 4-ary, its elements 16 bytes, and placed so that the four
 * children of an element fill one 64-byte cache line: a sift from the root
 * of a 4,096-entry table reads 6 lines instead of 12 levels of pairs. */
#define D_ARY      4
#define HEAP_SKEW  3 /* elements before heap[0] in the allocation */
#define HEAP_ALIGN 64

/* A hash slot: the entry index, and the low 32 bits of the key's hash: a
 * lookup compares keys only when they agree, and they hold the slot's home
 * (hash & slot_mask, the table has at most 2^27 slots), so moving slots
 * never reads the entries. */
typedef struct {
    uint32_t entry;
    uint32_t tag;
} slot_t;

struct tb_topk {
    size_t capacity;
    size_t key_size;
    uint64_t seed;
    size_t used;       /* entries in use */
    uint64_t total;    /* packets counted */
    entry_t *entries;  /* capacity entries */
    heap_t *heap;      /* (packets, entry index), a 4-ary min-heap by packets */
    heap_t *heap_mem;  /* its allocation (heap = heap_mem + HEAP_SKEW) */
    uint32_t *pos;     /* per entry: its place in heap */
    slot_t *slots;     /* hash table, entry EMPTY when free */
    size_t slot_mask;  /* table size - 1 (power of two, >= 8 * capacity) */
    alpha_t *alpha;    /* the filter's counters, above alpha_base */
    uint64_t alpha_base;
    size_t alpha_mask; /* their number - 1 (ALPHA_PER_ENTRY per entry, rounded up) */
    int hits_expected; /* the last batch's keys were mostly in the table */
};

/* The filter's counter of a key: from its slot tag (the hash's low 32 bits,
 * which the heap keeps beside each count), multiplied so that the counter's
 * index takes the tag's high bits, not the slot index's low ones. The heap
 * then names the counter of the entry that goes out next without reading
 * the entry. */
static inline size_t s_alpha_of(const tb_topk_t *t, uint64_t hash)
{
    return (size_t)(((uint64_t)(uint32_t)hash * 0x9e3779b97f4a7c15ull) >> 32) & t->alpha_mask;
}

/* A counter's value. */
static inline uint64_t s_alpha_get(const tb_topk_t *t, alpha_t a)
{
    return t->alpha_base + a;
}

/* Move the base up to ALPHA_KEEP below the smallest count (see alpha_t). */
#if defined(__GNUC__)
__attribute__((noinline, cold))
#endif
static void s_alpha_rebase(tb_topk_t *t)
{
    uint64_t smallest = t->heap[0].packets;
    uint64_t base = smallest > ALPHA_KEEP ? smallest - ALPHA_KEEP : 0;
    uint64_t shift = base - t->alpha_base;
    for (size_t i = 0; i <= t->alpha_mask; i++) {
        t->alpha[i] = t->alpha[i] > shift ? (alpha_t)(t->alpha[i] - shift) : 0;
    }
    t->alpha_base = base;
}

/* Set a counter to v, at least its value and at most the smallest count
 * (the table is full); v may lie below the base a move just made. */
static inline void s_alpha_set(tb_topk_t *t, alpha_t *a, uint64_t v)
{
    if (v - t->alpha_base > UINT16_MAX) {
        s_alpha_rebase(t);
        if (v < t->alpha_base) {
            /* Below the new base: raised to it, like the others. */
            v = t->alpha_base;
        }
    }
    *a = (alpha_t)(v - t->alpha_base);
}

tb_topk_t *tb_topk_new(size_t capacity, size_t key_size, uint64_t seed)
{
    if (capacity == 0 || capacity > (1u << 24) || key_size == 0 || key_size > TB_TOPK_KEY_MAX ||
        key_size % 4 != 0) {
        return NULL;
    }
    tb_topk_t *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return NULL;
    }
    size_t cap2 = 2; /* capacity rounded up to a power of two, at least 2 */
    while (cap2 < capacity) {
        cap2 *= 2;
    }
    size_t nalpha = cap2 * ALPHA_PER_ENTRY;
    size_t nslots = cap2 * SLOTS_PER_ENTRY;
    t->capacity = capacity;
    t->key_size = key_size;
    t->seed = seed;
    t->slot_mask = nslots - 1;
    /* Entries of one cache line each, aligned: a lookup's key comparison
     * and the update after it touch one line. */
    size_t ebytes = capacity * sizeof(entry_t);
    t->entries = aligned_alloc(64, (ebytes + 63) / 64 * 64);
    if (t->entries != NULL) {
        memset(t->entries, 0, ebytes);
    }
    size_t hbytes = (capacity + HEAP_SKEW) * sizeof(heap_t);
    hbytes = (hbytes + HEAP_ALIGN - 1) / HEAP_ALIGN * HEAP_ALIGN;
    t->heap_mem = aligned_alloc(HEAP_ALIGN, hbytes);
    t->heap = t->heap_mem != NULL ? t->heap_mem + HEAP_SKEW : NULL;
    t->pos = calloc(capacity, sizeof *t->pos);
    t->slots = malloc(nslots * sizeof *t->slots);
    t->alpha_mask = nalpha - 1;
    t->alpha = malloc(nalpha * sizeof *t->alpha);
    if (t->entries == NULL || t->heap == NULL || t->pos == NULL || t->slots == NULL ||
        t->alpha == NULL) {
        tb_topk_destroy(&t);
        return NULL;
    }
    tb_topk_reset(t);
    t->hits_expected = 1;
    return t;
}

void tb_topk_destroy(tb_topk_t **p)
{
    if (p == NULL || *p == NULL) {
        return;
    }
    tb_topk_t *t = *p;
    *p = NULL;
    free(t->entries);
    free(t->heap_mem);
    free(t->pos);
    free(t->slots);
    free(t->alpha);
    free(t);
}

void tb_topk_reset(tb_topk_t *t)
{
    for (size_t i = 0; i <= t->slot_mask; i++) {
        t->slots[i].entry = EMPTY;
    }
    memset(t->alpha, 0, (t->alpha_mask + 1) * sizeof *t->alpha);
    t->alpha_base = 0;
    t->used = 0;
    t->total = 0;
}

/* Out of line: its length is the table's key size, known only at run time.
 * Inlined (link-time optimisation) into a caller whose key is a smaller
 * object than some size the compiler cannot rule out, it would read as an
 * over-read to the compiler. The per-packet path hashes in batchagg, not
 * here. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static uint64_t s_hash(const tb_topk_t *t, const void *key)
{
    return tb_hash_bytes(key, t->key_size, t->seed);
}

/* Keys are compared in 4-byte words inline: a libc memcmp call per lookup
 * cost more than the rest of the lookup. key_size is a multiple of 4 (checked
 * at creation). */
static inline int s_key_eq(const uint8_t *a, const uint8_t *b, size_t size)
{
    uint32_t diff = 0;
    for (size_t i = 0; i < size; i += 4) {
        uint32_t x, y;
        memcpy(&x, a + i, 4);
        memcpy(&y, b + i, 4);
        diff |= x ^ y;
    }
    return diff == 0;
}

/* Slot holding the key with this hash, or the free slot ending its probe run
 * (*found says which). */
static size_t s_find(const tb_topk_t *t, const void *key, uint64_t hash, int *found)
{
    size_t i = (size_t)hash & t->slot_mask;
    uint32_t tag = (uint32_t)hash;
    for (;;) {
        const slot_t *sl = &t->slots[i];
        if (sl->entry == EMPTY) {
            *found = 0;
            return i;
        }
        if (sl->tag == tag && s_key_eq(t->entries[sl->entry].key, key, t->key_size)) {
            *found = 1;
            return i;
        }
        i = (i + 1) & t->slot_mask;
    }
}

/* Remove the key in slot i, shifting later members of its probe run back so
 * that lookups never meet a hole (Knuth, TAOCP vol. 3, algorithm R). */
static void s_slot_delete(tb_topk_t *t, size_t i)
{
    size_t j = i;
    for (;;) {
        j = (j + 1) & t->slot_mask;
        slot_t sl = t->slots[j];
        if (sl.entry == EMPTY) {
            break;
        }
        size_t home = (size_t)sl.tag & t->slot_mask;
        /* Move it to the hole at i if its home does not lie cyclically in (i, j]. */
        int in_range = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_range) {
            t->slots[i] = sl;
            i = j;
        }
    }
    t->slots[i].entry = EMPTY;
}

/* The first of the four children at first with the smallest count, without
 * a branch: which child it is is as good as random. A sift from the root
 * (every take-over of a full table) took 152 instead of 164 cycles. */
static inline size_t s_min_of_4(const heap_t *h, size_t first)
{
    _Static_assert(D_ARY == 4, "s_min_of_4 picks among four children");
    uint64_t p0 = h[first].packets, p1 = h[first + 1].packets;
    uint64_t p2 = h[first + 2].packets, p3 = h[first + 3].packets;
    size_t c01 = p1 < p0 ? first + 1 : first;
    uint64_t m01 = p1 < p0 ? p1 : p0;
    size_t c23 = p3 < p2 ? first + 3 : first + 2;
    uint64_t m23 = p3 < p2 ? p3 : p2;
    return m23 < m01 ? c23 : c01;
}

/* Sift the heap element at pos down (its count grew) or up (a new element
 * at the end), moving the others instead of swapping: one write per level. */
static void s_sift_down(tb_topk_t *t, size_t pos)
{
    heap_t *h = t->heap;
    heap_t x = h[pos];
    for (;;) {
        size_t first = D_ARY * pos + 1;
        if (first >= t->used) {
            break;
        }
        size_t c;
        if (first + D_ARY <= t->used) {
            c = s_min_of_4(h, first);
        } else {
            c = first;
            for (size_t k = first + 1; k < t->used; k++) {
                if (h[k].packets < h[c].packets) {
                    c = k;
                }
            }
        }
        if (h[c].packets >= x.packets) {
            break;
        }
        h[pos] = h[c];
        t->pos[h[pos].entry] = (uint32_t)pos;
        pos = c;
    }
    h[pos] = x;
    t->pos[x.entry] = (uint32_t)pos;
}

static void s_sift_up(tb_topk_t *t, size_t pos)
{
    heap_t *h = t->heap;
    heap_t x = h[pos];
    while (pos > 0) {
        size_t parent = (pos - 1) / D_ARY;
        if (h[parent].packets <= x.packets) {
            break;
        }
        h[pos] = h[parent];
        t->pos[h[pos].entry] = (uint32_t)pos;
        pos = parent;
    }
    h[pos] = x;
    t->pos[x.entry] = (uint32_t)pos;
}

uint64_t tb_topk_hash(const tb_topk_t *t, const void *key)
{
    return s_hash(t, key);
}

/* A key's slot, and the filter counter it reads if it is not in the table
 * (the counter's place comes from the hash alone). */
void tb_topk_prefetch_slot(const tb_topk_t *t, uint64_t hash)
{
    __builtin_prefetch(&t->slots[(size_t)hash & t->slot_mask]);
    __builtin_prefetch(&t->alpha[s_alpha_of(t, hash)]);
}

/* Once the slot has landed: the entry it names and the entry's count in the
 * heap (positions and heap are small enough to stay in the cache, so the
 * position is read at once). One read of the slot per key: a third stage,
 * the count asked for apart from the entry, read the slot again for every
 * key and cost 2-5 % of the collector's time. */
void tb_topk_prefetch_entry(const tb_topk_t *t, uint64_t hash)
{
    uint32_t e = t->slots[(size_t)hash & t->slot_mask].entry;
    if (e != EMPTY) {
        __builtin_prefetch(&t->entries[e]);
        __builtin_prefetch(&t->heap[t->pos[e]]);
    }
}

/* Keys a batch must have for its hits to say what the next batch's will
 * be: fewer say too little (a quiet stream, a flush). */
#define HITS_JUDGE_MIN 256

void tb_topk_add(tb_topk_t *t, const void *key, uint64_t bytes)
{
    tb_topk_add_hashed(t, key, s_hash(t, key), bytes);
}

void tb_topk_add_hashed(tb_topk_t *t, const void *key, uint64_t hash, uint64_t bytes)
{
    (void)tb_topk_add_n(t, key, hash, 1, bytes);
}

int tb_topk_expect_hits(const tb_topk_t *t)
{
    return t->hits_expected;
}

void tb_topk_note_hits(tb_topk_t *t, size_t keys, size_t hits)
{
    if (keys >= HITS_JUDGE_MIN) {
        t->hits_expected = hits * 2 >= keys;
    }
}

/* A key not in the table that gets an entry (count: what it may have had,
 * its counter's value and its packets; slot: the free slot that ends its
 * probe run): a fresh entry while the table fills, else the smallest's.
 * Out of line: with every packet a new flow, 2.8 % of the updates come
 * here, and inlined into the counting loop (tb_batchagg_count) its code
 * crowded the loop's registers and the path of a key that stays out
 * (tb-ingest-bench: 46-49 -> 43-47 ns per packet, with InfluxDB 74-79 ->
 * 71-72; zipf the same). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void s_take_in(tb_topk_t *t, const void *key, uint64_t hash, uint64_t count,
                      uint64_t packets, uint64_t bytes, size_t slot)
{
    uint32_t idx;
    entry_t *e;
    int fresh = t->used < t->capacity;
    if (fresh) {
        idx = (uint32_t)t->used++;
        e = &t->entries[idx];
        t->heap[idx] = (heap_t){.packets = count, .entry = idx, .tag = (uint32_t)hash};
        t->pos[idx] = idx;
    } else {
        /* Full: the new key takes over the entry with the smallest count. */
        idx = t->heap[0].entry;
        e = &t->entries[idx];
        /* Its slot: the one in its probe run that points at it (no key
         * compared, no entry read: the heap holds its home). */
        size_t old_slot = (size_t)t->heap[0].tag & t->slot_mask;
        while (t->slots[old_slot].entry != idx && t->slots[old_slot].entry != EMPTY) {
            old_slot = (old_slot + 1) & t->slot_mask;
        }
        if (t->slots[old_slot].entry == idx) {
            s_slot_delete(t, old_slot);
        }
        /* The key going out may have had up to its count: its counter must
         * say so, for when it comes back. */
        alpha_t *out = &t->alpha[s_alpha_of(t, t->heap[0].tag)];
        if (s_alpha_get(t, *out) < t->heap[0].packets) {
            s_alpha_set(t, out, t->heap[0].packets);
        }
        t->heap[0].packets = count;
        t->heap[0].tag = (uint32_t)hash;
        /* Deletion may have shifted the free slot found before. */
        int found;
        slot = s_find(t, key, hash, &found);
    }
    e->error = count - packets;
    memcpy(e->key, key, t->key_size);
    e->hash = hash;
    e->bytes = bytes;
    t->slots[slot].entry = idx;
    t->slots[slot].tag = (uint32_t)hash;
    if (fresh) {
        s_sift_up(t, t->pos[idx]); /* a new entry, at the heap's end */
    } else {
        s_sift_down(t, 0); /* took over the root */
        /* The next to go out, in a stream of new keys soon: its slot, its
         * counter and its entry, on their way while other keys are
         * counted. */
        __builtin_prefetch(&t->slots[(size_t)t->heap[0].tag & t->slot_mask], 1);
        __builtin_prefetch(&t->alpha[s_alpha_of(t, t->heap[0].tag)]);
        __builtin_prefetch(&t->entries[t->heap[0].entry], 1);
    }
}

int tb_topk_add_n(tb_topk_t *t, const void *key, uint64_t hash, uint64_t packets, uint64_t bytes)
{
    if (packets == 0) {
        return 0;
    }
    t->total += packets;
    int found;
    size_t slot = s_find(t, key, hash, &found);
    if (found) {
        uint32_t idx = t->slots[slot].entry;
        t->entries[idx].bytes += bytes;
        size_t p = t->pos[idx];
        t->heap[p].packets += packets;
        s_sift_down(t, p);
        return 1;
    }
    /* A key not in the table: what its filter counter says it may have had
     * before (every packet of a key left out went to its counter). */
    alpha_t *alpha = &t->alpha[s_alpha_of(t, hash)];
    uint64_t count = s_alpha_get(t, *alpha) + packets;
    if (t->used == t->capacity && count <= t->heap[0].packets) {
        /* Full, and the key could not outrank the smallest entry: it stays
         * out and its counter keeps its packets (a stream of keys seen once
         * costs one counter each, not a take-over and a sift). */
        s_alpha_set(t, alpha, count);
        return 0;
    }
    s_take_in(t, key, hash, count, packets, bytes, slot);
    return 0;
}

int tb_topk_pack(const tb_topk_t *t, msgpack_packer *pk)
{
    tb_topk_item_t *items = malloc(t->capacity * sizeof *items);
    if (items == NULL) {
        return TB_ENOMEM;
    }
    size_t n = tb_topk_top(t, items, t->capacity);
    msgpack_pack_map(pk, 2);
    tb_mp_kv_u64(pk, "total", t->total);
    tb_mp_pack_cstr(pk, "keys");
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_array(pk, 4);
        msgpack_pack_bin(pk, t->key_size);
        msgpack_pack_bin_body(pk, items[i].key, t->key_size);
        msgpack_pack_uint64(pk, items[i].packets);
        msgpack_pack_uint64(pk, items[i].bytes);
        msgpack_pack_uint64(pk, items[i].error);
    }
    free(items);
    return 0;
}

void tb_topk_unpack(tb_topk_t *t, tb_mp_reader_t *r)
{
    tb_topk_reset(t);
    uint32_t pairs = tb_mp_read_map(r);
    for (uint32_t i = 0; i < pairs && !r->error; i++) {
        if (tb_mp_next_str_is(r, "total")) {
            t->total = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "keys")) {
            uint32_t n = tb_mp_read_array(r);
            for (uint32_t k = 0; k < n && !r->error; k++) {
                uint32_t len = 0;
                const uint8_t *key = NULL;
                if (tb_mp_read_array(r) == 4) {
                    key = tb_mp_read_bin(r, &len);
                }
                uint64_t packets = tb_mp_read_uint(r);
                uint64_t bytes = tb_mp_read_uint(r);
                uint64_t error = tb_mp_read_uint(r);
                if (key == NULL || len != t->key_size) {
                    r->error = r->error ? r->error : TB_EPROTO;
                    break;
                }
                (void)tb_topk_restore(t, key, packets, bytes, error);
            }
        } else {
            tb_mp_skip(r);
            tb_mp_skip(r);
        }
    }
    /* The filter's counters are not kept: a key that was out had at most
     * the smallest count kept (the table left out only lighter ones), so
     * that count is a safe start for every counter. */
    if (t->used == t->capacity) {
        memset(t->alpha, 0, (t->alpha_mask + 1) * sizeof *t->alpha);
        t->alpha_base = t->heap[0].packets;
    }
}

int tb_topk_restore(tb_topk_t *t, const void *key, uint64_t packets, uint64_t bytes, uint64_t error)
{
    if (packets == 0 || error > packets) {
        return TB_EPROTO;
    }
    if (t->used == t->capacity) {
        return TB_ELIMIT;
    }
    uint64_t hash = s_hash(t, key);
    int found;
    size_t slot = s_find(t, key, hash, &found);
    if (found) {
        return TB_EPROTO;
    }
    uint32_t idx = (uint32_t)t->used++;
    entry_t *e = &t->entries[idx];
    memcpy(e->key, key, t->key_size);
    e->hash = hash;
    e->bytes = bytes;
    e->error = error;
    t->heap[idx] = (heap_t){.packets = packets, .entry = idx, .tag = (uint32_t)hash};
    t->pos[idx] = idx;
    t->slots[slot].entry = idx;
    t->slots[slot].tag = (uint32_t)hash;
    s_sift_up(t, idx);
    return 0;
}

void tb_topk_set_total(tb_topk_t *t, uint64_t total)
{
    t->total = total;
}

static int s_cmp_desc(const void *a, const void *b)
{
    const tb_topk_item_t *x = a;
    const tb_topk_item_t *y = b;
    if (x->packets != y->packets) {
        return x->packets < y->packets ? 1 : -1;
    }
    if (x->bytes != y->bytes) {
        return x->bytes < y->bytes ? 1 : -1;
    }
    return 0;
}

size_t tb_topk_top(const tb_topk_t *t, tb_topk_item_t *out, size_t n)
{
    if (n == 0 || t->used == 0) {
        return 0;
    }
    /* Partial selection: keep the n best seen so far in out, sorted. For the
     * small n a report asks for this beats sorting the whole table. */
    size_t have = 0;
    for (size_t i = 0; i < t->used; i++) {
        const entry_t *e = &t->entries[i];
        tb_topk_item_t item = {e->key, t->heap[t->pos[i]].packets, e->bytes, e->error};
        if (have == n && s_cmp_desc(&item, &out[n - 1]) >= 0) {
            continue;
        }
        size_t pos = have < n ? have++ : n - 1;
        while (pos > 0 && s_cmp_desc(&item, &out[pos - 1]) < 0) {
            out[pos] = out[pos - 1];
            pos--;
        }
        out[pos] = item;
    }
    return have;
}

uint64_t tb_topk_error_bound(const tb_topk_t *t)
{
    return t->used == t->capacity ? t->heap[0].packets : 0;
}

uint64_t tb_topk_total(const tb_topk_t *t)
{
    return t->total;
}

size_t tb_topk_capacity(const tb_topk_t *t)
{
    return t->capacity;
}
