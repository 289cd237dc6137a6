/* Unit tests for the collector's Space-Saving top-N table and statistics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "batchagg.h"
#include "stats.h"
#include "tb_err.h"
#include "tb_hash.h"
#include "topk.h"

#include <stdlib.h>
#include <string.h>

static uint64_t s_rng(uint64_t *state)
{
    /* xorshift64*: deterministic, good enough to make keys */
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

static void test_exact_below_capacity(void **state)
{
    (void)state;
    tb_topk_t *t = tb_topk_new(64, sizeof(uint32_t), 42);
    assert_non_null(t);
    /* key k seen k times, k = 1..50: fits, so counts are exact. */
    for (uint32_t k = 1; k <= 50; k++) {
        for (uint32_t i = 0; i < k; i++) {
            tb_topk_add(t, &k, 100);
        }
    }
    tb_topk_item_t top[5];
    assert_int_equal(tb_topk_top(t, top, 5), 5);
    for (uint32_t i = 0; i < 5; i++) {
        uint32_t key;
        memcpy(&key, top[i].key, sizeof key);
        assert_int_equal(key, 50 - i);
        assert_int_equal(top[i].packets, 50 - i);
        assert_int_equal(top[i].bytes, 100 * (50 - i));
        assert_int_equal(top[i].error, 0);
    }
    assert_int_equal(tb_topk_total(t), 50 * 51 / 2);
    tb_topk_destroy(&t);
    assert_null(t);
    tb_topk_destroy(&t); /* NULL is accepted */
}

/* A flood of one-packet random keys must not push out the heavy hitters, and
 * every reported count must respect the Space-Saving bounds. */
static void test_heavy_hitters_survive_flood(void **state)
{
    (void)state;
    const size_t cap = 256;
    tb_topk_t *t = tb_topk_new(cap, sizeof(uint64_t), 7);
    assert_non_null(t);
    uint64_t rng = 0x1234567;
    uint64_t heavy_count[4] = {0};
    for (int i = 0; i < 200000; i++) {
        uint64_t r = s_rng(&rng);
        uint64_t key;
        if (r % 10 < 4) {
            key = r % 4 + 1; /* 40% of packets from four heavy keys */
            heavy_count[key - 1]++;
        } else {
            key = (r | (1ull << 63)); /* almost always new */
        }
        tb_topk_add(t, &key, 1);
    }
    tb_topk_item_t top[4];
    assert_int_equal(tb_topk_top(t, top, 4), 4);
    uint64_t bound = tb_topk_total(t) / cap;
    for (int i = 0; i < 4; i++) {
        uint64_t key;
        memcpy(&key, top[i].key, sizeof key);
        assert_true(key >= 1 && key <= 4);
        uint64_t truth = heavy_count[key - 1];
        assert_true(top[i].packets >= truth);
        assert_true(top[i].packets - top[i].error <= truth);
        assert_true(top[i].error <= bound);
    }
    tb_topk_destroy(&t);
}

/* Lookups stay correct while entries are evicted and the hash table's probe
 * runs are rewritten: every key in the table is found again. */
static void test_eviction_keeps_index_consistent(void **state)
{
    (void)state;
    tb_topk_t *t = tb_topk_new(8, sizeof(uint32_t), 3);
    assert_non_null(t);
    for (uint32_t round = 0; round < 2000; round++) {
        uint32_t k = round % 37;
        tb_topk_add(t, &k, 1);
    }
    tb_topk_item_t top[8];
    size_t n = tb_topk_top(t, top, 8);
    assert_int_equal(n, 8);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            assert_memory_not_equal(top[i].key, top[j].key, sizeof(uint32_t));
        }
        /* Each of the 37 keys came 54 or 55 times: no count below that,
         * none whose lower bound is above it. */
        uint32_t k;
        memcpy(&k, top[i].key, sizeof k);
        uint64_t truth = 2000 / 37 + (k < 2000 % 37);
        assert_true(top[i].packets >= truth);
        assert_true(top[i].packets - top[i].error <= truth);
        assert_true(top[i].error <= tb_topk_error_bound(t));
    }
    assert_int_equal(tb_topk_total(t), 2000);
    tb_topk_reset(t);
    assert_int_equal(tb_topk_top(t, top, 8), 0);
    tb_topk_destroy(&t);
}

/* A table packed into a snapshot and read back (with another seed, as after
 * a restart) reports the same keys and counts, and goes on counting from
 * them; a smaller table keeps the heaviest keys; damaged input is an error. */
static void test_snapshot_round_trip(void **state)
{
    (void)state;
    tb_topk_t *t = tb_topk_new(32, sizeof(uint32_t), 1);
    assert_non_null(t);
    uint64_t rng = 99;
    for (int i = 0; i < 5000; i++) {
        uint32_t k = (uint32_t)(s_rng(&rng) % 20);
        k = k < 10 ? k : (uint32_t)(s_rng(&rng) % 1000); /* ten heavy keys and a tail */
        tb_topk_add(t, &k, 64);
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal(tb_topk_pack(t, &pk), 0);

    tb_topk_t *u = tb_topk_new(32, sizeof(uint32_t), 2);
    tb_mp_reader_t r;
    tb_mp_reader_init(&r, sb.data, sb.size);
    tb_topk_unpack(u, &r);
    assert_int_equal(r.error, 0);
    assert_int_equal(tb_mp_remaining(&r), 0);
    assert_int_equal(tb_topk_total(u), tb_topk_total(t));
    assert_int_equal(tb_topk_error_bound(u), tb_topk_error_bound(t));
    tb_topk_item_t a[32], b[32];
    size_t na = tb_topk_top(t, a, 32), nb = tb_topk_top(u, b, 32);
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_memory_equal(a[i].key, b[i].key, sizeof(uint32_t));
        assert_int_equal(a[i].packets, b[i].packets);
        assert_int_equal(a[i].bytes, b[i].bytes);
        assert_int_equal(a[i].error, b[i].error);
    }
    /* It counts on: the heaviest key gets one more. */
    uint32_t heavy;
    memcpy(&heavy, a[0].key, sizeof heavy);
    tb_topk_add(u, &heavy, 64);
    assert_int_equal(tb_topk_top(u, b, 1), 1);
    assert_int_equal(b[0].packets, a[0].packets + 1);

    /* A smaller table keeps the heaviest. */
    tb_topk_t *small = tb_topk_new(4, sizeof(uint32_t), 3);
    tb_mp_reader_init(&r, sb.data, sb.size);
    tb_topk_unpack(small, &r);
    assert_int_equal(r.error, 0);
    assert_int_equal(tb_topk_top(small, b, 32), 4);
    for (size_t i = 0; i < 4; i++) {
        assert_memory_equal(a[i].key, b[i].key, sizeof(uint32_t));
    }
    /* Every prefix of the snapshot is refused or read partly, never more. */
    for (size_t cut = 0; cut < sb.size; cut++) {
        tb_mp_reader_init(&r, sb.data, cut);
        tb_topk_unpack(small, &r);
        assert_int_not_equal(r.error, 0);
    }
    /* Keys of the wrong size are an error. */
    tb_topk_t *wide = tb_topk_new(32, 8, 3);
    tb_mp_reader_init(&r, sb.data, sb.size);
    tb_topk_unpack(wide, &r);
    assert_int_not_equal(r.error, 0);
    /* Restoring refuses duplicates, zero counts and errors above counts, */
    tb_topk_reset(small);
    uint32_t k1 = 1;
    assert_int_equal(tb_topk_restore(small, &k1, 5, 10, 0), 0);
    assert_int_equal(tb_topk_restore(small, &k1, 5, 10, 0), TB_EPROTO);
    uint32_t k2 = 2;
    assert_int_equal(tb_topk_restore(small, &k2, 0, 0, 0), TB_EPROTO);
    assert_int_equal(tb_topk_restore(small, &k2, 3, 0, 4), TB_EPROTO);
    /* ... and keys beyond its capacity (4). */
    for (uint32_t k = 2; k <= 4; k++) {
        assert_int_equal(tb_topk_restore(small, &k, 4, 8, 0), 0);
    }
    uint32_t k5 = 5;
    assert_int_equal(tb_topk_restore(small, &k5, 3, 6, 0), TB_ELIMIT);
    tb_topk_destroy(&wide);
    tb_topk_destroy(&small);
    tb_topk_destroy(&u);
    tb_topk_destroy(&t);
    msgpack_sbuffer_destroy(&sb);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    assert_null(tb_topk_new(0, 4, 0));
    assert_null(tb_topk_new(4, 0, 0));
    assert_null(tb_topk_new(4, TB_TOPK_KEY_MAX + 1, 0));
    assert_null(tb_topk_new(4, 6, 0)); /* not a multiple of 4 */
}

static tb_summary_t s_pkt(uint8_t last, uint16_t sport, uint32_t len, uint64_t ts, uint8_t proto)
{
    tb_summary_t s;
    memset(&s, 0, sizeof s);
    s.ts_ns = ts;
    s.wire_len = len;
    s.cap_len = len;
    s.family = TB_FAMILY_IPV4;
    s.proto = proto;
    s.flags = TB_SUM_PORTS;
    s.sport = sport;
    s.dport = 80;
    uint8_t src[4] = {10, 0, 0, last};
    uint8_t dst[4] = {192, 0, 2, 1};
    memcpy(s.src, src, 4);
    memcpy(s.dst, dst, 4);
    return s;
}

static tb_batchagg_t s_agg;

/* Account items the way the collector does: grouped by batchagg. */
static void s_stats_add(tb_stats_t *st, const tb_summary_t *items, size_t n, uint64_t seed)
{
    tb_batchagg_init(&s_agg, seed);
    tb_batchagg_build(&s_agg, items, n, TB_AGG_GROUP_ALL);
    tb_stats_add(st, items, n, &s_agg);
}

static void test_stats_totals_and_extremes(void **state)
{
    (void)state;
    tb_stats_t *st = tb_stats_new(16, 16, 1);
    assert_non_null(st);
    tb_summary_t pk[5] = {
        s_pkt(1, 1000, 100, 5000000000ull, 6),   s_pkt(1, 1000, 60, 3000000000ull, 6),
        s_pkt(2, 2000, 1500, 4000000000ull, 17), s_pkt(1, 1000, 60, 6000000000ull, 6),
        s_pkt(3, 3000, 200, 7000000000ull, 1),
    };
    pk[4].family = TB_FAMILY_NONE; /* non-IP: no flow addresses, no hosts */
    memset(pk[4].src, 0, 16);
    memset(pk[4].dst, 0, 16);
    s_stats_add(st, pk, 3, 1);
    s_stats_add(st, pk + 3, 2, 1);
    assert_int_equal(st->packets, 5);
    assert_int_equal(st->bytes, 1920);
    assert_int_equal(st->first_ts, 3000000000ull);
    assert_int_equal(st->last_ts, 7000000000ull);
    assert_int_equal(st->min_pkt.wire_len, 60);
    assert_int_equal(st->min_pkt.ts_ns, 3000000000ull); /* the first of the smallest */
    assert_int_equal(st->max_pkt.wire_len, 1500);
    assert_int_equal(st->last_pkt.ts_ns, 7000000000ull);
    assert_int_equal(st->proto[TB_PC_TCP].packets, 3);
    assert_int_equal(st->proto[TB_PC_TCP].bytes, 220);
    assert_int_equal(st->proto[TB_PC_UDP].packets, 1);
    assert_int_equal(st->proto[TB_PC_NON_IP].packets, 1);
    assert_true(tb_stats_avg_pps(st) > 1.24 && tb_stats_avg_pps(st) < 1.26); /* 5 / 4 s */

    tb_topk_item_t top[2];
    assert_int_equal(tb_topk_top(st->flows, top, 2), 2);
    tb_flow_key_t want;
    tb_flow_key(&pk[0], &want);
    assert_memory_equal(top[0].key, &want, sizeof want);
    assert_int_equal(top[0].packets, 3);
    assert_int_equal(top[0].bytes, 220);
    /* hosts: 192.0.2.1 is in four IP packets, 10.0.0.1 in three */
    assert_int_equal(tb_topk_top(st->hosts, top, 2), 2);
    assert_int_equal(top[0].packets, 4);
    assert_int_equal(top[1].packets, 3);

    tb_stats_reset(st);
    assert_int_equal(st->packets, 0);
    assert_int_equal(tb_topk_total(st->flows), 0);
    assert_true(tb_stats_avg_pps(st) == 0.0);
    tb_stats_destroy(&st);
    assert_null(st);
}

/* Adding n packets at once is adding them one by one, below capacity. */
static void test_add_n_matches_single_adds(void **state)
{
    (void)state;
    tb_topk_t *a = tb_topk_new(64, 8, 7);
    tb_topk_t *b = tb_topk_new(64, 8, 7);
    assert_non_null(a);
    assert_non_null(b);
    uint64_t rng = 5;
    for (int round = 0; round < 200; round++) {
        uint64_t key = s_rng(&rng) % 40, n = 1 + s_rng(&rng) % 9;
        for (uint64_t i = 0; i < n; i++) {
            tb_topk_add(a, &key, 100);
        }
        tb_topk_add_n(b, &key, tb_topk_hash(b, &key), n, 100 * n);
    }
    tb_topk_item_t x[64], y[64];
    size_t nx = tb_topk_top(a, x, 64), ny = tb_topk_top(b, y, 64);
    assert_int_equal(nx, ny);
    for (size_t i = 0; i < nx; i++) {
        assert_memory_equal(x[i].key, y[i].key, 8);
        assert_int_equal(x[i].packets, y[i].packets);
        assert_int_equal(x[i].bytes, y[i].bytes);
        assert_int_equal(x[i].error, 0);
    }
    assert_int_equal(tb_topk_total(a), tb_topk_total(b));
    tb_topk_destroy(&a);
    tb_topk_destroy(&b);
}

/* Weighted updates into a full table keep Space-Saving's guarantees: each
 * reported count is at least the truth and at most truth + error, the
 * error is at most total / capacity, and a key heavier than that is in. */
/* Zipf-like keys in weighted updates of n * scale packets: every reported
 * count within its bounds, every key heavier than total / capacity in. */
static void s_weighted_updates(uint64_t scale)
{
    enum { KEYS = 2000, CAP = 32 };
    tb_topk_t *t = tb_topk_new(CAP, 8, 3);
    assert_non_null(t);
    static uint64_t truth[KEYS];
    memset(truth, 0, sizeof truth);
    uint64_t rng = 11, total = 0;
    for (int round = 0; round < 20000; round++) {
        /* Zipf-like: small keys far more often. */
        uint64_t r = s_rng(&rng) % 1000000;
        uint64_t key = (r * r) / (1000000ull * 1000000ull / KEYS);
        uint64_t n = (1 + s_rng(&rng) % 5) * scale;
        truth[key] += n;
        total += n;
        tb_topk_add_n(t, &key, tb_topk_hash(t, &key), n, n);
    }
    assert_int_equal(tb_topk_total(t), total);
    tb_topk_item_t top[CAP];
    size_t n = tb_topk_top(t, top, CAP);
    assert_int_equal(n, CAP);
    for (size_t i = 0; i < n; i++) {
        uint64_t key;
        memcpy(&key, top[i].key, 8);
        assert_true(top[i].packets >= truth[key]);
        assert_true(top[i].packets - top[i].error <= truth[key]);
        assert_true(top[i].error <= total / CAP);
    }
    for (uint64_t k = 0; k < KEYS; k++) {
        if (truth[k] > total / CAP) {
            int in = 0;
            for (size_t i = 0; i < n; i++) {
                in |= memcmp(top[i].key, &k, 8) == 0;
            }
            assert_true(in);
        }
    }
    tb_topk_destroy(&t);
}

static void test_weighted_updates_keep_the_bounds(void **state)
{
    (void)state;
    s_weighted_updates(1);
}

/* Counts beyond 2^32 (the filter's counters hold 16 bits above a base that
 * follows the smallest count up). */
static void test_counts_beyond_32_bits_keep_the_bounds(void **state)
{
    (void)state;
    s_weighted_updates(3ull << 30);
}

/* The filter's counters hold 16 bits above a base: with the smallest count
 * far beyond 2^16, a key that went out still comes back with its count (its
 * counter moved with the base, not saturated), and keys seen once still
 * stay out. */
static void test_filter_beyond_16_bits(void **state)
{
    (void)state;
    enum { CAP = 64, ONCE = 2000 };
    const uint64_t heavy = 1000000;
    tb_topk_t *t = tb_topk_new(CAP, 8, 5);
    assert_non_null(t);
    for (uint64_t k = 0; k < CAP; k++) {
        assert_int_equal(tb_topk_add_n(t, &k, tb_topk_hash(t, &k), heavy + k, 0), 0);
    }
    /* Key 1000 takes over key 0 (heavy packets), whose counter keeps them. */
    uint64_t big = 1000, out = 0;
    tb_topk_add_n(t, &big, tb_topk_hash(t, &big), 3 * heavy, 0);
    assert_int_equal(tb_topk_error_bound(t), heavy + 1);
    for (uint64_t i = 0; i < ONCE; i++) {
        uint64_t k = 100000 + i;
        assert_int_equal(tb_topk_add_n(t, &k, tb_topk_hash(t, &k), 1, 0), 0);
    }
    /* A key seen once gets in only through a counter at the smallest count
     * (key 0's, then those of the keys it pushes out): a few in 2,000 with
     * 4,096 counters. Counters that the base's move had raised to the
     * smallest count would let in every one. */
    tb_topk_item_t top[CAP];
    size_t n = tb_topk_top(t, top, CAP);
    assert_int_equal(n, CAP);
    size_t once_in = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t k;
        memcpy(&k, top[i].key, 8);
        once_in += k >= 100000;
    }
    assert_true(once_in <= 8);
    /* Key 0 comes back with 100 packets: in again, counted with the packets
     * it had (a count below its true one would break the guarantee), its
     * error at most the smallest count. */
    tb_topk_add_n(t, &out, tb_topk_hash(t, &out), 100, 0);
    n = tb_topk_top(t, top, CAP);
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t k;
        memcpy(&k, top[i].key, 8);
        if (k == out) {
            found = 1;
            assert_true(top[i].packets >= heavy + 100);
            assert_true(top[i].packets - top[i].error <= heavy + 100);
            assert_true(top[i].error <= tb_topk_error_bound(t));
        }
    }
    assert_true(found);
    tb_topk_destroy(&t);
}

/* A counter written with a value that no longer fits 16 bits above the base
 * while the smallest count lies far above it: the base moves past that
 * value, and the counter is raised to the base, not wrapped. The key's
 * error then stays within the bound. */
static void test_filter_move_past_a_value(void **state)
{
    (void)state;
    enum { CAP = 4 };
    tb_topk_t *t = tb_topk_new(CAP, 8, 5);
    assert_non_null(t);
    for (uint64_t k = 0; k < CAP; k++) {
        tb_topk_add_n(t, &k, tb_topk_hash(t, &k), 200000, 0);
    }
    uint64_t x = 77;
    tb_topk_add_n(t, &x, tb_topk_hash(t, &x), 70000, 0);
    tb_topk_add_n(t, &x, tb_topk_hash(t, &x), 1, 0);
    tb_topk_item_t top[CAP];
    size_t n = tb_topk_top(t, top, CAP);
    uint64_t bound = tb_topk_error_bound(t);
    for (size_t i = 0; i < n; i++) {
        assert_true(top[i].error <= bound);
        uint64_t k;
        memcpy(&k, top[i].key, 8);
        assert_true(k < CAP); /* 70,001 packets outrank none of 200,000 */
    }
    tb_topk_destroy(&t);
}

/* A stream of keys seen once (every packet a new flow) interleaved with a
 * few heavy keys: the heavy keys stay in with counts within their bounds,
 * the keys seen once mostly stay out (their packets go to the filter's
 * counters instead of taking over entries), and the smallest count, which
 * bounds every error, stays far below total / capacity. */
static void test_keys_seen_once_stay_out(void **state)
{
    (void)state;
    enum { CAP = 64, HEAVY = 8, ROUNDS = 200000 };
    tb_topk_t *t = tb_topk_new(CAP, 8, 5);
    assert_non_null(t);
    uint64_t truth[HEAVY] = {0};
    uint64_t total = 0;
    for (uint64_t r = 0; r < ROUNDS; r++) {
        uint64_t key = r % 4 == 0 ? r % (4 * HEAVY) / 4 : 1000 + r; /* heavy: 0..7 */
        if (key < HEAVY) {
            truth[key]++;
        }
        total++;
        tb_topk_add_n(t, &key, tb_topk_hash(t, &key), 1, 60);
    }
    assert_int_equal(tb_topk_total(t), total);
    tb_topk_item_t top[CAP];
    size_t n = tb_topk_top(t, top, CAP);
    assert_int_equal(n, CAP);
    for (size_t i = 0; i < HEAVY; i++) {
        uint64_t key;
        memcpy(&key, top[i].key, 8);
        assert_true(key < HEAVY);
        assert_true(top[i].packets >= truth[key]);
        assert_true(top[i].packets - top[i].error <= truth[key]);
    }
    uint64_t bound = tb_topk_error_bound(t);
    for (size_t i = 0; i < n; i++) {
        assert_true(top[i].error <= bound);
    }
    assert_true(bound < total / CAP / 4);
    tb_topk_destroy(&t);
}

/* Keys built as words (tb_flow_key_words, tb_host_key_words) are the keys
 * field by field, and tb_hash_words hashes words as tb_hash_bytes hashes
 * their bytes, for every length. */
static void test_keys_and_hashes_by_words(void **state)
{
    (void)state;
    uint64_t rng = 7;
    for (int round = 0; round < 2000; round++) {
        tb_summary_t s;
        memset(&s, 0, sizeof s);
        uint64_t r = s_rng(&rng);
        s.family = r % 3 == 0 ? TB_FAMILY_NONE : r % 3 == 1 ? TB_FAMILY_IPV4 : TB_FAMILY_IPV6;
        s.proto = (uint8_t)(r >> 8);
        s.sport = (uint16_t)(r >> 16);
        s.dport = (uint16_t)(r >> 32);
        s.flags = (r >> 48) % 2 ? TB_SUM_PORTS : 0;
        size_t alen = s.family == TB_FAMILY_IPV4 ? 4 : s.family == TB_FAMILY_IPV6 ? 16 : 0;
        for (size_t i = 0; i < alen; i++) {
            s.src[i] = (uint8_t)s_rng(&rng);
            s.dst[i] = (uint8_t)s_rng(&rng);
        }
        tb_flow_key_t want, got;
        memset(&want, 0, sizeof want);
        if (s.family != TB_FAMILY_NONE) {
            want.family = s.family;
            want.proto = s.proto;
            if (s.flags & TB_SUM_PORTS) {
                want.sport = s.sport;
                want.dport = s.dport;
            }
            memcpy(want.src, s.src, 16);
            memcpy(want.dst, s.dst, 16);
        }
        memset(&got, 0xa5, sizeof got);
        tb_flow_key(&s, &got);
        assert_memory_equal(&got, &want, sizeof want);
        uint64_t w[TB_FLOW_KEY_WORDS];
        tb_flow_key_words(&s, w);
        assert_true(tb_hash_words(w, sizeof want, 42) == tb_hash_bytes(&want, sizeof want, 42));

        tb_host_key_t hwant, hgot;
        memset(&hwant, 0, sizeof hwant);
        hwant.family = s.family;
        memcpy(hwant.addr, s.dst, 16);
        memset(&hgot, 0xa5, sizeof hgot);
        tb_host_key(&hgot, s.family, s.dst);
        assert_memory_equal(&hgot, &hwant, sizeof hwant);
        uint64_t hw[TB_HOST_KEY_WORDS];
        tb_host_key_words(s.family, s.dst, hw);
        assert_true(tb_hash_words(hw, sizeof hwant, 9) == tb_hash_bytes(&hwant, sizeof hwant, 9));
    }
    for (size_t len = 0; len <= 64; len++) {
        uint8_t bytes[64];
        uint64_t words[8];
        memset(words, 0, sizeof words);
        for (size_t i = 0; i < len; i++) {
            bytes[i] = (uint8_t)s_rng(&rng);
        }
        memcpy(words, bytes, len);
        assert_true(tb_hash_words(words, len, len) == tb_hash_bytes(bytes, len, len));
    }
}

/* batchagg groups a chunk exactly: every distinct flow once with its
 * packets and bytes, every packet pointing at its flow and hosts, hashes
 * equal to the tables' own. */
static void test_batchagg_groups_exactly(void **state)
{
    (void)state;
    enum { N = TB_AGG_CHUNK };
    static tb_summary_t pk[N];
    uint64_t rng = 99;
    for (size_t i = 0; i < N; i++) {
        uint64_t r = s_rng(&rng);
        pk[i] = s_pkt((uint8_t)(r % 7), (uint16_t)(1000 + (r >> 8) % 3), 60 + (uint32_t)(r % 1400),
                      i, (r >> 16) % 2 ? 6 : 17);
        if ((r >> 20) % 10 == 0) {
            pk[i].family = TB_FAMILY_NONE;
            memset(pk[i].src, 0, 16);
            memset(pk[i].dst, 0, 16);
        } else if ((r >> 24) % 4 == 0) {
            pk[i].family = TB_FAMILY_IPV6;
            pk[i].src[15] = 1;
        }
    }
    tb_batchagg_init(&s_agg, 42);
    for (int round = 0; round < 3; round++) { /* the generations reuse the slots */
        size_t n = round == 1 ? 17 : N;
        tb_batchagg_build(&s_agg, pk, n, TB_AGG_GROUP_ALL);
        uint64_t packets = 0, bytes = 0, host_packets = 0, ip = 0;
        for (size_t f = 0; f < s_agg.nflows; f++) {
            const tb_agg_flow_t *e = &s_agg.flows[f];
            assert_true(e->hash == tb_hash_bytes(&e->key, sizeof e->key, 42));
            for (size_t g = 0; g < f; g++) {
                assert_false(memcmp(&s_agg.flows[g].key, &e->key, sizeof e->key) == 0);
            }
            uint64_t want_p = 0, want_b = 0;
            for (size_t i = 0; i < n; i++) {
                tb_flow_key_t k;
                tb_flow_key(&pk[i], &k);
                if (memcmp(&k, &e->key, sizeof k) == 0) {
                    want_p++;
                    want_b += pk[i].wire_len;
                    assert_int_equal(s_agg.pkt_flow[i], f);
                }
            }
            assert_int_equal(e->packets, want_p);
            assert_int_equal(e->bytes, want_b);
            packets += e->packets;
            bytes += e->bytes;
        }
        for (size_t h = 0; h < s_agg.nhosts; h++) {
            const tb_agg_host_t *e = &s_agg.hosts[h];
            assert_true(e->hash == tb_hash_bytes(&e->key, sizeof e->key, TB_HOST_SEED(42)));
            host_packets += e->packets;
        }
        uint64_t want_bytes = 0;
        for (size_t i = 0; i < n; i++) {
            want_bytes += pk[i].wire_len;
            ip += pk[i].family != TB_FAMILY_NONE;
            assert_int_equal(s_agg.flows[s_agg.pkt_flow[i]].host[0] == TB_AGG_NONE,
                             pk[i].family == TB_FAMILY_NONE);
        }
        assert_int_equal(packets, n);
        assert_int_equal(bytes, want_bytes);
        assert_int_equal(host_packets, 2 * ip);
        assert_true(s_agg.nflows < n || n < 40);
    }
}

/* Every way of building a chunk (each part grouped or one entry per key)
 * counts the same: the same top tables, to the packet and byte, and the
 * same distinct-flow estimate; a part not grouped has one entry per packet
 * (flows) or per IP flow entry's source and destination (hosts), each
 * pointing where it should. */
static void test_batchagg_every_build_counts_the_same(void **state)
{
    (void)state;
    enum { N = 3000, CAP = 512 };
    static tb_summary_t pk[N];
    uint64_t rng = 7;
    for (size_t i = 0; i < N; i++) {
        uint64_t r = s_rng(&rng);
        /* 13 sources, 3 ports, 2 protocols, 6 destinations: 468 flows */
        pk[i] = s_pkt((uint8_t)(r % 13), (uint16_t)(1000 + (r >> 8) % 3), 60 + (uint32_t)(r % 1400),
                      i, (r >> 16) % 2 ? 6 : 17);
        pk[i].dst[3] = (uint8_t)((r >> 28) % 6);
        if ((r >> 20) % 10 == 0) {
            pk[i].family = TB_FAMILY_NONE;
            memset(pk[i].src, 0, 16);
            memset(pk[i].dst, 0, 16);
        }
    }
    static tb_topk_item_t want_f[CAP], want_h[CAP], got[CAP];
    static uint8_t want_keys[2][CAP][TB_TOPK_KEY_MAX];
    size_t nwant_f = 0, nwant_h = 0;
    tb_hll_t want_seen;
    for (int m = TB_AGG_GROUP_ALL; m >= 0; m--) {
        unsigned group = (unsigned)m;
        tb_topk_t *flows = tb_topk_new(CAP, sizeof(tb_flow_key_t), 42);
        tb_topk_t *hosts = tb_topk_new(CAP, sizeof(tb_host_key_t), TB_HOST_SEED(42));
        assert_non_null(flows);
        assert_non_null(hosts);
        tb_hll_t seen;
        tb_hll_reset(&seen);
        tb_batchagg_init(&s_agg, 42);
        for (size_t off = 0; off < N; off += 1000) { /* three chunks */
            tb_batchagg_build(&s_agg, pk + off, 1000, group);
            if (!(group & TB_AGG_GROUP_FLOWS)) {
                assert_int_equal(s_agg.nflows, 1000);
                for (size_t i = 0; i < 1000; i++) {
                    tb_flow_key_t k;
                    tb_flow_key(&pk[off + i], &k);
                    assert_int_equal(s_agg.pkt_flow[i], i);
                    assert_memory_equal(&s_agg.flows[i].key, &k, sizeof k);
                    assert_int_equal(s_agg.flows[i].packets, 1);
                    assert_int_equal(s_agg.flows[i].bytes, pk[off + i].wire_len);
                }
            } else {
                assert_true(s_agg.nflows < 1000);
            }
            size_t ip_flows = 0;
            for (size_t f = 0; f < s_agg.nflows; f++) {
                const tb_agg_flow_t *e = &s_agg.flows[f];
                if (e->key.family == 0) {
                    assert_int_equal(e->host[0], TB_AGG_NONE);
                    assert_int_equal(e->host[1], TB_AGG_NONE);
                    continue;
                }
                ip_flows++;
                tb_host_key_t hk;
                tb_host_key(&hk, e->key.family, e->key.src);
                assert_memory_equal(&s_agg.hosts[e->host[0]].key, &hk, sizeof hk);
                tb_host_key(&hk, e->key.family, e->key.dst);
                assert_memory_equal(&s_agg.hosts[e->host[1]].key, &hk, sizeof hk);
            }
            assert_int_equal(s_agg.host_keys, 2 * ip_flows);
            if (group & TB_AGG_GROUP_HOSTS) {
                assert_true(s_agg.nhosts < s_agg.host_keys);
            } else {
                assert_int_equal(s_agg.nhosts, s_agg.host_keys);
            }
            tb_batchagg_count(&s_agg, flows, hosts, &seen);
        }
        if (group == TB_AGG_GROUP_ALL) {
            /* Kept with copies of their keys (an item's key is the
             * table's). */
            nwant_f = tb_topk_top(flows, want_f, CAP);
            nwant_h = tb_topk_top(hosts, want_h, CAP);
            for (size_t i = 0; i < nwant_f; i++) {
                memcpy(want_keys[0][i], want_f[i].key, sizeof(tb_flow_key_t));
                want_f[i].key = want_keys[0][i];
            }
            for (size_t i = 0; i < nwant_h; i++) {
                memcpy(want_keys[1][i], want_h[i].key, sizeof(tb_host_key_t));
                want_h[i].key = want_keys[1][i];
            }
            want_seen = seen;
            assert_true(nwant_f > 400 && nwant_f <= 468);
            assert_int_equal(nwant_h, 19);
        } else {
            const tb_topk_item_t *want[2] = {want_f, want_h};
            size_t nwant[2] = {nwant_f, nwant_h};
            const tb_topk_t *tables[2] = {flows, hosts};
            size_t ksize[2] = {sizeof(tb_flow_key_t), sizeof(tb_host_key_t)};
            for (int k = 0; k < 2; k++) {
                assert_int_equal(tb_topk_top(tables[k], got, CAP), nwant[k]);
                /* Equal counts may come in another order: every key is
                 * looked up among the wanted ones. */
                for (size_t i = 0; i < nwant[k]; i++) {
                    size_t j = 0;
                    while (j < nwant[k] && memcmp(want[k][j].key, got[i].key, ksize[k]) != 0) {
                        j++;
                    }
                    assert_true(j < nwant[k]);
                    assert_int_equal(got[i].packets, want[k][j].packets);
                    assert_int_equal(got[i].bytes, want[k][j].bytes);
                    assert_int_equal(got[i].error, 0);
                }
            }
            assert_memory_equal(&seen, &want_seen, sizeof seen);
        }
        tb_topk_destroy(&flows);
        tb_topk_destroy(&hosts);
    }
}

/* tb_topk_add_n says whether a key had an entry, and tb_batchagg_count
 * tells each table how many of a chunk's keys did: a chunk of new keys
 * turns entry prefetching off for the next, a chunk of known keys turns it
 * back on, a chunk of fewer than 256 keys changes nothing. */
static void test_hits_decide_entry_prefetch(void **state)
{
    (void)state;
    enum { CAP = 64, N = 1000 };
    tb_topk_t *t = tb_topk_new(CAP, 8, 5);
    assert_non_null(t);
    uint64_t key = 1;
    assert_int_equal(tb_topk_add_n(t, &key, tb_topk_hash(t, &key), 0, 0), 0);
    assert_int_equal(tb_topk_add_n(t, &key, tb_topk_hash(t, &key), 3, 300), 0);
    assert_int_equal(tb_topk_add_n(t, &key, tb_topk_hash(t, &key), 1, 100), 1);
    assert_true(tb_topk_expect_hits(t));
    tb_topk_note_hits(t, 1000, 499);
    assert_false(tb_topk_expect_hits(t));
    tb_topk_note_hits(t, 255, 0);
    assert_false(tb_topk_expect_hits(t));
    tb_topk_note_hits(t, 1000, 500);
    assert_true(tb_topk_expect_hits(t));
    tb_topk_destroy(&t);

    /* Through a chunk: N new flows (new hosts too), then the same again
     * with the first CAP flows' keys repeated (in the tables now). */
    static tb_summary_t pk[N];
    for (size_t i = 0; i < N; i++) {
        pk[i] = s_pkt(0, 1000, 100, i, 6);
        memcpy(pk[i].src, &i, sizeof(uint32_t));
        pk[i].dst[0] = 10;
        memcpy(pk[i].dst + 1, &i, 2);
    }
    tb_topk_t *flows = tb_topk_new(CAP, sizeof(tb_flow_key_t), 42);
    tb_topk_t *hosts = tb_topk_new(CAP, sizeof(tb_host_key_t), TB_HOST_SEED(42));
    assert_non_null(flows);
    assert_non_null(hosts);
    tb_batchagg_init(&s_agg, 42);
    tb_batchagg_build(&s_agg, pk, N, 0);
    tb_batchagg_count(&s_agg, flows, hosts, NULL);
    assert_false(tb_topk_expect_hits(flows));
    assert_false(tb_topk_expect_hits(hosts));
    for (size_t i = 0; i < N; i++) {
        pk[i] = pk[i % (CAP / 4)];
    }
    tb_batchagg_build(&s_agg, pk, N, 0);
    tb_batchagg_count(&s_agg, flows, hosts, NULL);
    assert_true(tb_topk_expect_hits(flows));
    assert_true(tb_topk_expect_hits(hosts));
    assert_int_equal(tb_topk_total(flows), 2 * N);
    assert_int_equal(tb_topk_total(hosts), 4 * N);
    tb_topk_destroy(&flows);
    tb_topk_destroy(&hosts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_below_capacity),
        cmocka_unit_test(test_heavy_hitters_survive_flood),
        cmocka_unit_test(test_eviction_keeps_index_consistent),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_snapshot_round_trip),
        cmocka_unit_test(test_stats_totals_and_extremes),
        cmocka_unit_test(test_add_n_matches_single_adds),
        cmocka_unit_test(test_weighted_updates_keep_the_bounds),
        cmocka_unit_test(test_counts_beyond_32_bits_keep_the_bounds),
        cmocka_unit_test(test_filter_beyond_16_bits),
        cmocka_unit_test(test_filter_move_past_a_value),
        cmocka_unit_test(test_keys_seen_once_stay_out),
        cmocka_unit_test(test_keys_and_hashes_by_words),
        cmocka_unit_test(test_batchagg_groups_exactly),
        cmocka_unit_test(test_batchagg_every_build_counts_the_same),
        cmocka_unit_test(test_hits_decide_entry_prefetch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
