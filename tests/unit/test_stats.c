/* test_stats — unit tests for the collector's per-stream statistics
 * (collector/stats.c): what counts as a flow and a host.
 *
 * Frames are decoded by the real decoder, so the tests hold for what the
 * probe sends: non-IP packets count in the totals and as non_ip, never in
 * the top flows or hosts; a non-first IP fragment is a flow by its protocol,
 * with no ports. A snapshot of the statistics reads back as they were. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "batchagg.h"
#include "stats.h"
#include "tb_summary.h"

#include <string.h>

/* Ethernet frames: ARP request, and IPv4 TCP (BGP, 179) or UDP. */
static size_t s_eth(uint8_t *b, unsigned type)
{
    static const uint8_t macs[12] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1};
    memcpy(b, macs, 12);
    b[12] = (uint8_t)(type >> 8);
    b[13] = (uint8_t)type;
    return 14;
}

static size_t s_arp(uint8_t *b)
{
    size_t n = s_eth(b, 0x0806);
    static const uint8_t arp[28] = {0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1};
    memcpy(b + n, arp, sizeof arp);
    return n + sizeof arp;
}

/* IPv4 from 10.0.0.<src> to 10.0.0.<dst>, protocol proto, fragment field
 * frag, then 20 bytes of transport header with ports sport -> dport. */
static size_t s_ip(uint8_t *b, uint8_t src, uint8_t dst, uint8_t proto, uint16_t frag,
                   uint16_t sport, uint16_t dport)
{
    size_t n = s_eth(b, 0x0800);
    uint8_t *ip = b + n;
    memset(ip, 0, 40);
    ip[0] = 0x45;
    ip[3] = 40;
    ip[6] = (uint8_t)(frag >> 8);
    ip[7] = (uint8_t)frag;
    ip[8] = 64;
    ip[9] = proto;
    ip[12] = 10;
    ip[15] = src;
    ip[16] = 10;
    ip[19] = dst;
    ip[20] = (uint8_t)(sport >> 8);
    ip[21] = (uint8_t)sport;
    ip[22] = (uint8_t)(dport >> 8);
    ip[23] = (uint8_t)dport;
    ip[32] = 0x50;
    return n + 40;
}

/* A batch of decoded frames, accounted the way the collector does: grouped
 * by batchagg (whose seed is the one the tables were created with). */
typedef struct {
    tb_summary_t items[64];
    size_t n;
} batch_t;

static void s_add(batch_t *b, const uint8_t *frame, size_t len)
{
    assert_true(b->n < 64);
    assert_int_equal(
        tb_decode(TB_LINK_ETHERNET, frame, (uint32_t)len, (uint32_t)len, 1, &b->items[b->n]), 0);
    b->n++;
}

static tb_batchagg_t s_agg;

static void s_account(tb_stats_t *st, batch_t *b)
{
    tb_batchagg_init(&s_agg, 1);
    tb_batchagg_build(&s_agg, b->items, b->n, TB_AGG_GROUP_ALL);
    tb_stats_add(st, b->items, b->n, &s_agg);
    b->n = 0;
}

/* Guards issue 17: 12 ARP packets and 11 of one BGP session; the BGP
 * session is the most active tuple, the ARP packets no flow at all. */
static void test_non_ip_is_no_flow_or_host(void **state)
{
    (void)state;
    tb_stats_t *st = tb_stats_new(64, 64, 1);
    assert_non_null(st);
    uint8_t b[128];
    batch_t batch = {0};
    for (int i = 0; i < 12; i++) {
        s_add(&batch, b, s_arp(b));
        if (i < 11) {
            s_add(&batch, b, s_ip(b, 1, 2, 6, 0, 40000, 179));
        }
    }
    s_account(st, &batch);
    assert_int_equal(st->packets, 23);
    assert_int_equal(st->proto[TB_PC_NON_IP].packets, 12);
    assert_int_equal(st->proto[TB_PC_TCP].packets, 11);

    tb_topk_item_t top[4];
    assert_int_equal(tb_topk_top(st->flows, top, 4), 1);
    tb_flow_key_t k;
    memcpy(&k, top[0].key, sizeof k);
    assert_int_equal(k.family, TB_FAMILY_IPV4);
    assert_int_equal(k.proto, 6);
    assert_int_equal(k.sport, 40000);
    assert_int_equal(k.dport, 179);
    assert_int_equal(top[0].packets, 11);
    char src[TB_KEY_TEXT_MAX], dst[TB_KEY_TEXT_MAX];
    assert_string_equal(tb_flow_key_text(&k, src, dst), "tcp");
    assert_string_equal(src, "10.0.0.1");
    assert_string_equal(dst, "10.0.0.2");

    /* Hosts: the two IP addresses only. */
    assert_int_equal(tb_topk_top(st->hosts, top, 4), 2);
    for (int i = 0; i < 2; i++) {
        tb_host_key_t hk;
        memcpy(&hk, top[i].key, sizeof hk);
        assert_int_equal(hk.family, TB_FAMILY_IPV4);
        assert_int_equal(top[i].packets, 11);
    }

    /* Only non-IP traffic: no top flow, no top host. */
    tb_stats_reset(st);
    s_add(&batch, b, s_arp(b));
    s_add(&batch, b, s_arp(b));
    s_account(st, &batch);
    assert_int_equal(st->packets, 2);
    assert_int_equal(st->proto[TB_PC_NON_IP].packets, 2);
    assert_int_equal(tb_topk_top(st->flows, top, 4), 0);
    assert_int_equal(tb_topk_top(st->hosts, top, 4), 0);
    tb_stats_destroy(&st);
    assert_null(st);
}

/* A non-first fragment carries no transport header: it counts in its IP
 * protocol's class and as the flow (addresses, protocol, no ports), which is
 * not the flow of the first fragment (that one has the ports). */
static void test_non_first_fragment_counts_by_protocol(void **state)
{
    (void)state;
    tb_stats_t *st = tb_stats_new(64, 64, 1);
    assert_non_null(st);
    uint8_t b[128];
    batch_t batch = {0};
    s_add(&batch, b, s_ip(b, 1, 2, 17, 0x2000, 5000, 53)); /* first fragment: MF */
    s_add(&batch, b, s_ip(b, 1, 2, 17, 185, 5000, 53));    /* offset 1480: no ports */
    s_add(&batch, b, s_ip(b, 1, 2, 17, 370, 5000, 53));
    s_account(st, &batch);
    assert_int_equal(st->proto[TB_PC_UDP].packets, 3);
    assert_int_equal(st->proto[TB_PC_NON_IP].packets, 0);

    tb_topk_item_t top[4];
    assert_int_equal(tb_topk_top(st->flows, top, 4), 2);
    tb_flow_key_t k;
    memcpy(&k, top[0].key, sizeof k);
    assert_int_equal(top[0].packets, 2);
    assert_int_equal(k.proto, 17);
    assert_int_equal(k.sport, 0);
    assert_int_equal(k.dport, 0);
    memcpy(&k, top[1].key, sizeof k);
    assert_int_equal(top[1].packets, 1);
    assert_int_equal(k.sport, 5000);
    assert_int_equal(k.dport, 53);
    tb_stats_destroy(&st);
}

/* A snapshot of the statistics (tb_stats_pack) reads back into a fresh
 * table as they were: totals, extremes, classes, both top tables and the
 * points; a snapshot cut short is an error, never a crash. */
static void test_snapshot_round_trip(void **state)
{
    (void)state;
    tb_stats_t *st = tb_stats_new(64, 64, 1);
    tb_stats_t *back = tb_stats_new(64, 64, 1);
    assert_non_null(st);
    assert_non_null(back);
    uint8_t b[128];
    batch_t batch = {0};
    for (int i = 0; i < 5; i++) {
        s_add(&batch, b, s_ip(b, 1, 2, 6, 0, 40000, 179));
    }
    s_add(&batch, b, s_arp(b));
    s_add(&batch, b, s_ip(b, 3, 4, 17, 0, 5000, 53));
    s_account(st, &batch);
    assert_int_equal(tb_pointstats_slot(&st->points, "mp1", "eth0"), 0);
    st->points.e[0].packets = 7;
    st->points.unnamed_packets = 2;

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal(tb_stats_pack(st, &pk), 0);
    tb_mp_reader_t r;
    tb_mp_reader_init(&r, sb.data, sb.size);
    tb_stats_unpack(back, &r);
    assert_int_equal(r.error, 0);
    assert_int_equal(back->packets, 7);
    assert_int_equal(back->bytes, st->bytes);
    assert_int_equal(back->first_ts, st->first_ts);
    assert_int_equal(back->last_ts, st->last_ts);
    assert_int_equal(back->min_pkt.wire_len, st->min_pkt.wire_len);
    assert_int_equal(back->max_pkt.wire_len, st->max_pkt.wire_len);
    assert_memory_equal(&back->last_pkt, &st->last_pkt, sizeof st->last_pkt);
    for (int pc = 0; pc < TB_PC_COUNT; pc++) {
        assert_int_equal(back->proto[pc].packets, st->proto[pc].packets);
        assert_int_equal(back->proto[pc].bytes, st->proto[pc].bytes);
    }
    tb_topk_item_t a[4], z[4];
    assert_int_equal(tb_topk_top(back->flows, z, 4), tb_topk_top(st->flows, a, 4));
    assert_int_equal(z[0].packets, 5);
    assert_memory_equal(z[0].key, a[0].key, sizeof(tb_flow_key_t));
    assert_int_equal(tb_topk_top(back->hosts, z, 4), 4);
    assert_int_equal(back->points.n, 1);
    assert_string_equal(back->points.e[0].mp, "mp1");
    assert_int_equal(back->points.e[0].packets, 7);
    assert_int_equal(back->points.unnamed_packets, 2);

    tb_mp_reader_init(&r, sb.data, sb.size - 3);
    tb_stats_unpack(back, &r);
    assert_int_not_equal(r.error, 0);
    msgpack_sbuffer_destroy(&sb);
    tb_stats_destroy(&st);
    tb_stats_destroy(&back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_non_ip_is_no_flow_or_host),
        cmocka_unit_test(test_non_first_fragment_counts_by_protocol),
        cmocka_unit_test(test_snapshot_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
