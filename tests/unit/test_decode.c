/* test_decode — unit tests for the packet decoder (tb_decode.c).
 *
 * Hand-made frames for every supported link type and header, every prefix of
 * them (truncation), malformed headers, and a sweep over the tcpdump capture
 * corpus (TB_TEST_CORPUS) checking the summary invariants on every packet. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tb_err.h"
#include "tb_summary.h"

#include <dirent.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef TB_TEST_CORPUS
#error "TB_TEST_CORPUS must name the capture corpus folder"
#endif

/* ---- frame builder ------------------------------------------------------ */

typedef struct {
    uint8_t b[1024];
    size_t n;
} frame_t;

static void put8(frame_t *f, unsigned v)
{
    assert_true(f->n < sizeof(f->b));
    f->b[f->n++] = (uint8_t)v;
}

static void put16(frame_t *f, unsigned v)
{
    put8(f, v >> 8);
    put8(f, v);
}

static void put32(frame_t *f, uint32_t v)
{
    put16(f, v >> 16);
    put16(f, v & 0xffff);
}

static void put_bytes(frame_t *f, const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        put8(f, d[i]);
    }
}

static void put_zero(frame_t *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        put8(f, 0);
    }
}

static const uint8_t V4_SRC[4] = {192, 0, 2, 1};
static const uint8_t V4_DST[4] = {198, 51, 100, 2};
static const uint8_t V6_SRC[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
static const uint8_t V6_DST[16] = {0x20, 0x01, 0x0d, 0xb8, [14] = 0xab, [15] = 2};

static void eth(frame_t *f, unsigned type)
{
    static const uint8_t macs[12] = {0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2};
    put_bytes(f, macs, sizeof(macs));
    put16(f, type);
}

static void vlan(frame_t *f, unsigned tci, unsigned type)
{
    put16(f, tci);
    put16(f, type);
}

/* IPv4 header with 4 * (ihl - 5) bytes of NOP options. */
static void ipv4_full(frame_t *f, unsigned ihl, unsigned total, unsigned frag, unsigned proto)
{
    put8(f, 0x40 | ihl);
    put8(f, 0);
    put16(f, total);
    put16(f, 0x1234);
    put16(f, frag);
    put8(f, 64);
    put8(f, proto);
    put16(f, 0);
    put_bytes(f, V4_SRC, 4);
    put_bytes(f, V4_DST, 4);
    for (unsigned i = 5; i < ihl; i++) {
        put32(f, 0x01010101);
    }
}

static void ipv4(frame_t *f, unsigned proto, unsigned payload)
{
    ipv4_full(f, 5, 20 + payload, 0, proto);
}

static void ipv6(frame_t *f, unsigned nh, unsigned payload)
{
    put32(f, 0x60000000);
    put16(f, payload);
    put8(f, nh);
    put8(f, 64);
    put_bytes(f, V6_SRC, 16);
    put_bytes(f, V6_DST, 16);
}

/* Hop-by-hop / routing / destination options: (len8 + 1) * 8 bytes. */
static void ext(frame_t *f, unsigned nh, unsigned len8)
{
    put8(f, nh);
    put8(f, len8);
    put_zero(f, (len8 + 1) * 8 - 2);
}

static void frag6(frame_t *f, unsigned nh, unsigned offset, int more)
{
    put8(f, nh);
    put8(f, 0);
    put16(f, (offset << 3) | (more ? 1 : 0));
    put32(f, 0xdeadbeef);
}

static void tcp(frame_t *f, unsigned sport, unsigned dport, unsigned flags)
{
    put16(f, sport);
    put16(f, dport);
    put32(f, 1000);
    put32(f, 0);
    put8(f, 5 << 4);
    put8(f, flags);
    put16(f, 65535);
    put16(f, 0);
    put16(f, 0);
}

static void udp(frame_t *f, unsigned sport, unsigned dport)
{
    put16(f, sport);
    put16(f, dport);
    put16(f, 8);
    put16(f, 0);
}

/* ---- helpers ----------------------------------------------------------- */

static int decode(int linktype, const frame_t *f, tb_summary_t *s)
{
    return tb_decode(linktype, f->b, (uint32_t)f->n, (uint32_t)f->n, 42, s);
}

static void assert_v4_addrs(const tb_summary_t *s)
{
    static const uint8_t zero[12];
    assert_int_equal(s->family, TB_FAMILY_IPV4);
    assert_memory_equal(s->src, V4_SRC, 4);
    assert_memory_equal(s->dst, V4_DST, 4);
    assert_memory_equal(s->src + 4, zero, 12);
    assert_memory_equal(s->dst + 4, zero, 12);
}

static void assert_v6_addrs(const tb_summary_t *s)
{
    assert_int_equal(s->family, TB_FAMILY_IPV6);
    assert_memory_equal(s->src, V6_SRC, 16);
    assert_memory_equal(s->dst, V6_DST, 16);
}

/* Invariants every summary must satisfy, whatever the input. */
static void check_invariants(int linktype, int rc, const tb_summary_t *s, uint32_t caplen,
                             uint32_t wirelen, uint64_t ts)
{
    static const uint8_t zero[16];
    assert_int_equal(s->cap_len, caplen);
    assert_int_equal(s->wire_len, wirelen);
    assert_true(s->ts_ns == ts);
    assert_true(s->family == TB_FAMILY_NONE || s->family == TB_FAMILY_IPV4 ||
                s->family == TB_FAMILY_IPV6);
    switch (rc) {
    case 0:
        assert_false(s->flags & (TB_SUM_TRUNC | TB_SUM_MALFORMED));
        break;
    case TB_ETRUNC:
        assert_true(s->flags & TB_SUM_TRUNC);
        assert_false(s->flags & TB_SUM_MALFORMED);
        break;
    case TB_EPROTO:
        assert_true(s->flags & TB_SUM_MALFORMED);
        assert_false(s->flags & TB_SUM_TRUNC);
        break;
    case TB_ENOTSUP:
        assert_false(tb_decode_linktype_supported(linktype));
        assert_int_equal(s->flags, 0);
        assert_int_equal(s->family, TB_FAMILY_NONE);
        assert_int_equal(s->ethertype, 0);
        break;
    default:
        fail_msg("unexpected return %d", rc);
    }
    if (rc != TB_ENOTSUP) {
        assert_true(tb_decode_linktype_supported(linktype));
    }
    if (s->family == TB_FAMILY_NONE) {
        assert_memory_equal(s->src, zero, 16);
        assert_memory_equal(s->dst, zero, 16);
        assert_int_equal(s->proto, 0);
        assert_false(s->flags & (TB_SUM_PORTS | TB_SUM_FRAGMENT | TB_SUM_TCPFLAGS));
        assert_int_equal(tb_proto_class(s), TB_PC_NON_IP);
    } else {
        assert_int_equal(s->ethertype, s->family == TB_FAMILY_IPV4 ? 0x0800 : 0x86dd);
        assert_int_not_equal(tb_proto_class(s), TB_PC_NON_IP);
        char buf[64];
        assert_true(strlen(tb_summary_addr(s, 0, buf, sizeof(buf))) > 0);
        assert_true(strlen(tb_summary_addr(s, 1, buf, sizeof(buf))) > 0);
    }
    if (s->family == TB_FAMILY_IPV4) {
        assert_memory_equal(s->src + 4, zero, 12);
        assert_memory_equal(s->dst + 4, zero, 12);
    }
    if (s->flags & TB_SUM_PORTS) {
        assert_false(s->flags & TB_SUM_FRAGMENT);
        assert_true(s->proto == 6 || s->proto == 17 || s->proto == 33 || s->proto == 132 ||
                    s->proto == 136 || s->proto == 1 || s->proto == 58);
        if (s->proto == 1 || s->proto == 58) {
            assert_true(s->sport <= 255 && s->dport <= 255);
        }
    } else {
        assert_int_equal(s->sport, 0);
        assert_int_equal(s->dport, 0);
    }
    if (s->flags & TB_SUM_TCPFLAGS) {
        assert_int_equal(s->proto, 6);
        assert_true(s->flags & TB_SUM_PORTS);
    } else {
        assert_int_equal(s->tcp_flags, 0);
    }
    if (s->flags & TB_SUM_VLAN) {
        assert_true(s->vlan <= 0x0fff);
    } else {
        assert_int_equal(s->vlan, 0);
    }
    assert_int_equal(s->flags & ~0x3fu, 0);
}

/* Decode every strict prefix of a complete frame: each must report TRUNC and
 * agree with the full decode on whatever it did decode. */
static void check_prefixes(int linktype, const frame_t *f)
{
    tb_summary_t full;
    assert_int_equal(decode(linktype, f, &full), 0);
    for (size_t n = 0; n < f->n; n++) {
        uint8_t copy[sizeof(f->b)];
        memcpy(copy, f->b, n);
        tb_summary_t s;
        int rc = tb_decode(linktype, copy, (uint32_t)n, (uint32_t)f->n, 7, &s);
        check_invariants(linktype, rc, &s, (uint32_t)n, (uint32_t)f->n, 7);
        assert_int_equal(rc, TB_ETRUNC);
        if (s.family != TB_FAMILY_NONE) {
            assert_int_equal(s.family, full.family);
            assert_memory_equal(s.src, full.src, 16);
            assert_memory_equal(s.dst, full.dst, 16);
            assert_int_equal(s.ethertype, full.ethertype);
        }
        if (s.flags & TB_SUM_PORTS) {
            assert_int_equal(s.proto, full.proto);
            assert_int_equal(s.sport, full.sport);
            assert_int_equal(s.dport, full.dport);
        }
        if (s.flags & TB_SUM_TCPFLAGS) {
            assert_int_equal(s.tcp_flags, full.tcp_flags);
        }
        if (s.flags & TB_SUM_VLAN) {
            assert_int_equal(s.vlan, full.vlan);
        }
    }
}

/* ---- link layers ------------------------------------------------------- */

static void test_ethernet_ipv4_tcp(void **state)
{
    (void)state;
    frame_t f = {0};
    eth(&f, 0x0800);
    ipv4(&f, 6, 20);
    tcp(&f, 49152, 443, 0x12);
    tb_summary_t s;
    assert_int_equal(tb_decode(TB_LINK_ETHERNET, f.b, (uint32_t)f.n, 1514, 123456789012345ull, &s),
                     0);
    check_invariants(TB_LINK_ETHERNET, 0, &s, (uint32_t)f.n, 1514, 123456789012345ull);
    assert_v4_addrs(&s);
    assert_int_equal(s.ethertype, 0x0800);
    assert_int_equal(s.proto, 6);
    assert_int_equal(s.sport, 49152);
    assert_int_equal(s.dport, 443);
    assert_int_equal(s.tcp_flags, 0x12);
    assert_int_equal(s.flags, TB_SUM_PORTS | TB_SUM_TCPFLAGS);
    assert_int_equal(tb_proto_class(&s), TB_PC_TCP);
    assert_string_equal(tb_proto_class_name(tb_proto_class(&s)), "tcp");
    char buf[64];
    assert_string_equal(tb_summary_addr(&s, 0, buf, sizeof(buf)), "192.0.2.1");
    assert_string_equal(tb_summary_addr(&s, 1, buf, sizeof(buf)), "198.51.100.2");
}

static void test_ethernet_ipv6_ext_headers_udp(void **state)
{
    (void)state;
    frame_t f = {0};
    eth(&f, 0x86dd);
    ipv6(&f, 0, 8 + 24 + 8 + 8);
    ext(&f, 43, 0);      /* hop-by-hop, 8 bytes */
    ext(&f, 44, 2);      /* routing, 24 bytes */
    frag6(&f, 17, 0, 1); /* first fragment */
    udp(&f, 5353, 53);
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_ETHERNET, &f, &s), 0);
    check_invariants(TB_LINK_ETHERNET, 0, &s, (uint32_t)f.n, (uint32_t)f.n, 42);
    assert_v6_addrs(&s);
    assert_int_equal(s.ethertype, 0x86dd);
    assert_int_equal(s.proto, 17);
    assert_int_equal(s.sport, 5353);
    assert_int_equal(s.dport, 53);
    assert_int_equal(s.flags, TB_SUM_PORTS);
    assert_int_equal(tb_proto_class(&s), TB_PC_UDP);
    char buf[64];
    assert_string_equal(tb_summary_addr(&s, 0, buf, sizeof(buf)), "2001:db8::1");
    assert_string_equal(tb_summary_addr(&s, 1, buf, sizeof(buf)), "2001:db8::ab02");
    check_prefixes(TB_LINK_ETHERNET, &f);
}

static void test_ipv6_ah_and_dstopts_walked(void **state)
{
    (void)state;
    frame_t f = {0};
    ipv6(&f, 51, 16 + 8 + 20);
    put8(&f, 60); /* AH: next header, payload len (16 bytes = (2+2)*4) */
    put8(&f, 2);
    put_zero(&f, 14);
    ext(&f, 6, 0);
    tcp(&f, 22, 40000, 0x10);
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_IPV6, &f, &s), 0);
    assert_int_equal(s.proto, 6);
    assert_int_equal(s.sport, 22);
    assert_int_equal(s.tcp_flags, 0x10);
    check_prefixes(TB_LINK_IPV6, &f);
}

static void test_ipv6_upper_layer_without_ports(void **state)
{
    (void)state;
    static const unsigned protos[] = {50, 59, 135, 47};
    for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
        frame_t f = {0};
        ipv6(&f, 0, 8 + 8);
        ext(&f, protos[i], 0);
        put_zero(&f, 8);
        tb_summary_t s;
        assert_int_equal(decode(TB_LINK_IPV6, &f, &s), 0);
        assert_int_equal(s.proto, protos[i]);
        assert_int_equal(s.flags, 0);
        assert_int_equal(tb_proto_class(&s), TB_PC_OTHER);
    }
}

static void test_ipv6_extension_header_limit(void **state)
{
    (void)state;
    frame_t f = {0};
    ipv6(&f, 60, 17 * 8 + 8);
    for (int i = 0; i < 17; i++) {
        ext(&f, i < 16 ? 60 : 17, 0);
    }
    udp(&f, 1, 2);
    tb_summary_t s;
    int rc = decode(TB_LINK_IPV6, &f, &s);
    check_invariants(TB_LINK_IPV6, rc, &s, (uint32_t)f.n, (uint32_t)f.n, 42);
    assert_int_equal(rc, TB_EPROTO);
    assert_v6_addrs(&s);

    /* 16 headers are fine. */
    frame_t g = {0};
    ipv6(&g, 60, 16 * 8 + 8);
    for (int i = 0; i < 16; i++) {
        ext(&g, i < 15 ? 60 : 17, 0);
    }
    udp(&g, 1, 2);
    assert_int_equal(decode(TB_LINK_IPV6, &g, &s), 0);
    assert_int_equal(s.proto, 17);
    assert_int_equal(s.dport, 2);
}

static void test_vlan_single(void **state)
{
    (void)state;
    frame_t f = {0};
    eth(&f, 0x8100);
    vlan(&f, 0xa000 | 100, 0x0800); /* PCP 5, VID 100 */
    ipv4(&f, 17, 8);
    udp(&f, 123, 123);
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_ETHERNET, &f, &s), 0);
    assert_int_equal(s.flags, TB_SUM_VLAN | TB_SUM_PORTS);
    assert_int_equal(s.vlan, 100);
    assert_int_equal(s.ethertype, 0x0800);
    assert_v4_addrs(&s);
    assert_int_equal(s.proto, 17);
    assert_int_equal(tb_proto_class(&s), TB_PC_UDP);
    check_prefixes(TB_LINK_ETHERNET, &f);
}

static void test_vlan_stack_records_outermost(void **state)
{
    (void)state;
    static const unsigned outer_types[] = {0x88a8, 0x9100, 0x8100};
    for (size_t i = 0; i < 3; i++) {
        frame_t f = {0};
        eth(&f, outer_types[i]);
        vlan(&f, 200, 0x8100);
        vlan(&f, 0x1000 | 300, 0x86dd);
        ipv6(&f, 6, 20);
        tcp(&f, 1, 2, 0x02);
        tb_summary_t s;
        assert_int_equal(decode(TB_LINK_ETHERNET, &f, &s), 0);
        assert_int_equal(s.vlan, 200);
        assert_true(s.flags & TB_SUM_VLAN);
        assert_v6_addrs(&s);
        assert_int_equal(s.tcp_flags, 0x02);
        check_prefixes(TB_LINK_ETHERNET, &f);
    }
}

static void test_vlan_stack_too_deep_is_non_ip(void **state)
{
    (void)state;
    frame_t f = {0};
    eth(&f, 0x8100);
    for (int i = 0; i < 9; i++) {
        vlan(&f, 10 + i, i < 8 ? 0x8100 : 0x0800);
    }
    ipv4(&f, 17, 8);
    udp(&f, 1, 2);
    tb_summary_t s;
    int rc = decode(TB_LINK_ETHERNET, &f, &s);
    check_invariants(TB_LINK_ETHERNET, rc, &s, (uint32_t)f.n, (uint32_t)f.n, 42);
    assert_int_equal(rc, 0);
    assert_int_equal(s.family, TB_FAMILY_NONE);
    assert_int_equal(s.vlan, 10);
}

static void test_linux_sll_v1(void **state)
{
    (void)state;
    frame_t f = {0};
    put16(&f, 0);    /* packet type: to us */
    put16(&f, 1);    /* ARPHRD_ETHER */
    put16(&f, 6);    /* address length */
    put_zero(&f, 8); /* address */
    put16(&f, 0x0800);
    ipv4(&f, 6, 20);
    tcp(&f, 80, 50000, 0x18);
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_LINUX_SLL, &f, &s), 0);
    assert_v4_addrs(&s);
    assert_int_equal(s.ethertype, 0x0800);
    assert_int_equal(s.sport, 80);
    assert_int_equal(s.tcp_flags, 0x18);
    check_prefixes(TB_LINK_LINUX_SLL, &f);

    /* Protocol 0x0004: 802.2 LLC, non-IP. */
    f.b[14] = 0x00;
    f.b[15] = 0x04;
    assert_int_equal(decode(TB_LINK_LINUX_SLL, &f, &s), 0);
    assert_int_equal(s.family, TB_FAMILY_NONE);
    assert_int_equal(s.ethertype, 0);
}

static void test_linux_sll_v1_vlan(void **state)
{
    (void)state;
    frame_t f = {0};
    put16(&f, 4); /* outgoing */
    put16(&f, 1);
    put16(&f, 6);
    put_zero(&f, 8);
    put16(&f, 0x8100);
    vlan(&f, 42, 0x0800);
    ipv4(&f, 17, 8);
    udp(&f, 67, 68);
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_LINUX_SLL, &f, &s), 0);
    assert_int_equal(s.vlan, 42);
    assert_int_equal(s.dport, 68);
}

static void test_linux_sll_v2(void **state)
{
    (void)state;
    frame_t f = {0};
    put16(&f, 0x86dd); /* protocol */
    put16(&f, 0);      /* reserved */
    put32(&f, 3);      /* interface index */
    put16(&f, 1);      /* ARPHRD_ETHER */
    put8(&f, 0);       /* packet type */
    put8(&f, 6);       /* address length */
    put_zero(&f, 8);
    ipv6(&f, 17, 8);
    udp(&f, 546, 547);
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_LINUX_SLL2, &f, &s), 0);
    assert_v6_addrs(&s);
    assert_int_equal(s.ethertype, 0x86dd);
    assert_int_equal(s.sport, 546);
    assert_int_equal(s.dport, 547);
    check_prefixes(TB_LINK_LINUX_SLL2, &f);
}

static void test_raw_ip_all_linktypes(void **state)
{
    (void)state;
    static const int links[] = {TB_LINK_RAW_DLT, TB_LINK_RAW_DLT_ALT, TB_LINK_RAW};
    for (size_t i = 0; i < 3; i++) {
        frame_t f4 = {0};
        ipv4(&f4, 6, 20);
        tcp(&f4, 1, 2, 0x01);
        tb_summary_t s;
        assert_int_equal(decode(links[i], &f4, &s), 0);
        assert_v4_addrs(&s);
        assert_int_equal(s.ethertype, 0x0800);
        check_prefixes(links[i], &f4);

        frame_t f6 = {0};
        ipv6(&f6, 17, 8);
        udp(&f6, 3, 4);
        assert_int_equal(decode(links[i], &f6, &s), 0);
        assert_v6_addrs(&s);
        assert_int_equal(s.ethertype, 0x86dd);
        assert_int_equal(s.sport, 3);
        check_prefixes(links[i], &f6);

        f6.b[0] = 0x50; /* version 5 */
        int rc = decode(links[i], &f6, &s);
        check_invariants(links[i], rc, &s, (uint32_t)f6.n, (uint32_t)f6.n, 42);
        assert_int_equal(rc, TB_EPROTO);
        assert_int_equal(s.ethertype, 0);
    }
}

static void test_ipv4_and_ipv6_linktypes(void **state)
{
    (void)state;
    frame_t f4 = {0};
    ipv4(&f4, 17, 8);
    udp(&f4, 1000, 2000);
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_IPV4, &f4, &s), 0);
    assert_v4_addrs(&s);
    assert_int_equal(s.dport, 2000);
    check_prefixes(TB_LINK_IPV4, &f4);

    frame_t f6 = {0};
    ipv6(&f6, 6, 20);
    tcp(&f6, 1000, 2000, 0x11);
    assert_int_equal(decode(TB_LINK_IPV6, &f6, &s), 0);
    assert_v6_addrs(&s);
    assert_int_equal(s.tcp_flags, 0x11);
    check_prefixes(TB_LINK_IPV6, &f6);

    /* The link type promises a version: the other one is malformed. */
    assert_int_equal(decode(TB_LINK_IPV4, &f6, &s), TB_EPROTO);
    assert_int_equal(s.family, TB_FAMILY_NONE);
    assert_int_equal(decode(TB_LINK_IPV6, &f4, &s), TB_EPROTO);
    assert_int_equal(s.flags, TB_SUM_MALFORMED);
}

static void null_frame(frame_t *f, uint32_t family, int big_endian, int v6)
{
    if (big_endian) {
        put32(f, family);
    } else {
        put8(f, family & 0xff);
        put8(f, (family >> 8) & 0xff);
        put8(f, (family >> 16) & 0xff);
        put8(f, family >> 24);
    }
    if (v6) {
        ipv6(f, 17, 8);
    } else {
        ipv4(f, 17, 8);
    }
    udp(f, 7, 9);
}

static void test_null_both_byte_orders(void **state)
{
    (void)state;
    for (int be = 0; be < 2; be++) {
        frame_t f = {0};
        null_frame(&f, 2, be, 0);
        tb_summary_t s;
        assert_int_equal(decode(TB_LINK_NULL, &f, &s), 0);
        assert_v4_addrs(&s);
        assert_int_equal(s.ethertype, 0x0800);
        assert_int_equal(s.dport, 9);
        check_prefixes(TB_LINK_NULL, &f);

        static const uint32_t inet6[] = {10, 24, 28, 30};
        for (size_t i = 0; i < 4; i++) {
            frame_t g = {0};
            null_frame(&g, inet6[i], be, 1);
            assert_int_equal(decode(TB_LINK_NULL, &g, &s), 0);
            assert_v6_addrs(&s);
            assert_int_equal(s.ethertype, 0x86dd);
        }

        frame_t h = {0};
        null_frame(&h, 7, be, 0); /* AF_ISO-ish: non-IP */
        assert_int_equal(decode(TB_LINK_NULL, &h, &s), 0);
        assert_int_equal(s.family, TB_FAMILY_NONE);
        assert_int_equal(s.ethertype, 0);
    }
}

static void test_loop_network_order(void **state)
{
    (void)state;
    frame_t f = {0};
    null_frame(&f, 2, 1, 0);
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_LOOP, &f, &s), 0);
    assert_v4_addrs(&s);
    check_prefixes(TB_LINK_LOOP, &f);

    frame_t g = {0};
    null_frame(&g, 24, 1, 1);
    assert_int_equal(decode(TB_LINK_LOOP, &g, &s), 0);
    assert_v6_addrs(&s);

    /* Host order is not accepted on LOOP: 0x02000000 is no family. */
    frame_t h = {0};
    null_frame(&h, 2, 0, 0);
    assert_int_equal(decode(TB_LINK_LOOP, &h, &s), 0);
    assert_int_equal(s.family, TB_FAMILY_NONE);
}

/* ---- network and upper layers ------------------------------------------ */

static void test_icmp_type_code(void **state)
{
    (void)state;
    frame_t f = {0};
    eth(&f, 0x0800);
    ipv4(&f, 1, 4);
    put8(&f, 3);  /* destination unreachable */
    put8(&f, 1);  /* host unreachable */
    put16(&f, 0); /* checksum: the end of what the decoder needs */
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_ETHERNET, &f, &s), 0);
    assert_int_equal(s.flags, TB_SUM_PORTS);
    assert_int_equal(s.sport, 3);
    assert_int_equal(s.dport, 1);
    assert_int_equal(tb_proto_class(&s), TB_PC_ICMP);
    assert_string_equal(tb_proto_class_name(TB_PC_ICMP), "icmp");
    check_prefixes(TB_LINK_ETHERNET, &f);

    frame_t g = {0};
    ipv6(&g, 58, 4);
    put8(&g, 128); /* echo request */
    put8(&g, 0);
    put16(&g, 0);
    assert_int_equal(decode(TB_LINK_IPV6, &g, &s), 0);
    assert_int_equal(s.sport, 128);
    assert_int_equal(s.dport, 0);
    assert_int_equal(tb_proto_class(&s), TB_PC_ICMPV6);
    assert_string_equal(tb_proto_class_name(TB_PC_ICMPV6), "icmpv6");
    check_prefixes(TB_LINK_IPV6, &g);

    /* Classified by protocol number only: proto 1 in IPv6 is "icmp". */
    g.b[6] = 1;
    assert_int_equal(decode(TB_LINK_IPV6, &g, &s), 0);
    assert_int_equal(tb_proto_class(&s), TB_PC_ICMP);
}

static void test_sctp_dccp_udplite_ports(void **state)
{
    (void)state;
    static const unsigned protos[] = {132, 33, 136};
    for (size_t i = 0; i < 3; i++) {
        frame_t f = {0};
        ipv4(&f, protos[i], 16);
        put16(&f, 3868);
        put16(&f, 2905);
        put_zero(&f, 12);
        tb_summary_t s;
        assert_int_equal(decode(TB_LINK_RAW, &f, &s), 0);
        assert_int_equal(s.proto, protos[i]);
        assert_int_equal(s.flags, TB_SUM_PORTS);
        assert_int_equal(s.sport, 3868);
        assert_int_equal(s.dport, 2905);
        assert_int_equal(tb_proto_class(&s), TB_PC_OTHER);
        assert_string_equal(tb_proto_class_name(TB_PC_OTHER), "other");
    }
}

static void test_ipv4_non_first_fragment(void **state)
{
    (void)state;
    frame_t f = {0};
    eth(&f, 0x0800);
    ipv4_full(&f, 5, 20 + 8, 185, 17); /* offset 185 * 8 */
    udp(&f, 1, 2);                     /* payload bytes, not a header */
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_ETHERNET, &f, &s), 0);
    assert_v4_addrs(&s);
    assert_int_equal(s.proto, 17);
    assert_int_equal(s.flags, TB_SUM_FRAGMENT);
    assert_int_equal(s.sport, 0);
    assert_int_equal(tb_proto_class(&s), TB_PC_UDP);

    /* The first fragment (MF, offset 0) carries the ports. */
    frame_t g = {0};
    ipv4_full(&g, 5, 20 + 8, 0x2000, 17);
    udp(&g, 1, 2);
    assert_int_equal(decode(TB_LINK_IPV4, &g, &s), 0);
    assert_int_equal(s.flags, TB_SUM_PORTS);
    assert_int_equal(s.dport, 2);

    /* A first fragment that ends inside the TCP header: the rest is in the
     * next fragment, so it is a truncation, not a malformation. */
    frame_t h = {0};
    ipv4_full(&h, 5, 20 + 8, 0x2000, 6);
    tcp(&h, 5, 6, 0x02);
    assert_int_equal(decode(TB_LINK_IPV4, &h, &s), TB_ETRUNC);
    assert_int_equal(s.sport, 5);
    assert_false(s.flags & TB_SUM_TCPFLAGS);
}

static void test_ipv6_non_first_fragment(void **state)
{
    (void)state;
    frame_t f = {0};
    ipv6(&f, 44, 8);
    frag6(&f, 6, 100, 0); /* payload left out: the frame ends with the header */
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_IPV6, &f, &s), 0);
    assert_v6_addrs(&s);
    assert_int_equal(s.proto, 6);
    assert_int_equal(s.flags, TB_SUM_FRAGMENT);
    check_prefixes(TB_LINK_IPV6, &f);
}

static void test_tunnels_not_unwrapped(void **state)
{
    (void)state;
    /* GRE (RFC 2784) carrying IPv4: summarised as the outer header. */
    frame_t f = {0};
    eth(&f, 0x0800);
    ipv4(&f, 47, 4 + 28);
    put16(&f, 0);
    put16(&f, 0x0800);
    put32(&f, 0x4500001c);
    put_zero(&f, 8);
    put32(&f, 0x0a000001);
    put32(&f, 0x0a000002);
    udp(&f, 1, 2);
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_ETHERNET, &f, &s), 0);
    assert_v4_addrs(&s);
    assert_int_equal(s.proto, 47);
    assert_int_equal(s.flags, 0);
    assert_int_equal(tb_proto_class(&s), TB_PC_OTHER);

    /* IP-in-IP (4) and 6in4 (41). */
    static const unsigned protos[] = {4, 41};
    for (size_t i = 0; i < 2; i++) {
        frame_t g = {0};
        ipv4(&g, protos[i], 40);
        ipv6(&g, 59, 0);
        assert_int_equal(decode(TB_LINK_IPV4, &g, &s), 0);
        assert_v4_addrs(&s);
        assert_int_equal(s.proto, protos[i]);
    }
}

static void test_arp_is_non_ip(void **state)
{
    (void)state;
    frame_t f = {0};
    eth(&f, 0x0806);
    put16(&f, 1);
    put16(&f, 0x0800);
    put8(&f, 6);
    put8(&f, 4);
    put16(&f, 1);
    put_zero(&f, 20);
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_ETHERNET, &f, &s), 0);
    check_invariants(TB_LINK_ETHERNET, 0, &s, (uint32_t)f.n, (uint32_t)f.n, 42);
    assert_int_equal(s.family, TB_FAMILY_NONE);
    assert_int_equal(s.ethertype, 0x0806);
    assert_int_equal(s.flags, 0);
    assert_int_equal(tb_proto_class(&s), TB_PC_NON_IP);
    assert_string_equal(tb_proto_class_name(TB_PC_NON_IP), "non_ip");
    char buf[64] = "x";
    assert_string_equal(tb_summary_addr(&s, 0, buf, sizeof(buf)), "");

    /* PPPoE discovery: non-IP, the ethertype is still recorded. */
    frame_t g = {0};
    eth(&g, 0x8863);
    put16(&g, 0x1109);
    put16(&g, 0);
    put16(&g, 0);
    assert_int_equal(decode(TB_LINK_ETHERNET, &g, &s), 0);
    assert_int_equal(s.family, TB_FAMILY_NONE);
    assert_int_equal(s.ethertype, 0x8863);
}

static void test_llc_snap(void **state)
{
    (void)state;
    frame_t f = {0};
    eth(&f, 8 + 20 + 8); /* 802.3 length */
    put8(&f, 0xaa);
    put8(&f, 0xaa);
    put8(&f, 0x03);
    put8(&f, 0);
    put8(&f, 0);
    put8(&f, 0);
    put16(&f, 0x0800);
    ipv4(&f, 17, 8);
    udp(&f, 520, 520);
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_ETHERNET, &f, &s), 0);
    assert_v4_addrs(&s);
    assert_int_equal(s.ethertype, 0x0800);
    assert_int_equal(s.sport, 520);
    check_prefixes(TB_LINK_ETHERNET, &f);

    /* SNAP with a non-ethertype OUI (Cisco CDP): non-IP. */
    f.b[19] = 0x0c;
    assert_int_equal(decode(TB_LINK_ETHERNET, &f, &s), 0);
    assert_int_equal(s.family, TB_FAMILY_NONE);
    assert_int_equal(s.ethertype, 0);

    /* Plain LLC (spanning tree, SAP 0x42): non-IP. */
    frame_t g = {0};
    eth(&g, 38);
    put8(&g, 0x42);
    put8(&g, 0x42);
    put8(&g, 0x03);
    put_zero(&g, 35);
    assert_int_equal(decode(TB_LINK_ETHERNET, &g, &s), 0);
    assert_int_equal(s.family, TB_FAMILY_NONE);
    assert_int_equal(s.ethertype, 0);
    assert_int_equal(s.flags, 0);
}

/* ---- link types and encapsulations of tb_decode_link.c ----------------- */

static void put16le(frame_t *f, unsigned v)
{
    put8(f, v);
    put8(f, v >> 8);
}

static void put32le(frame_t *f, uint32_t v)
{
    put16le(f, v & 0xffff);
    put16le(f, v >> 16);
}

/* Host byte order, as NFLOG TLV headers are. */
static void put16he(frame_t *f, uint16_t v)
{
    uint8_t b[2];
    memcpy(b, &v, 2);
    put_bytes(f, b, 2);
}

/* IPv4 UDP 1234 -> 53, or IPv6 TCP 40000 -> 179 (a BGP session). */
static void v4_udp(frame_t *f)
{
    ipv4(f, 17, 8);
    udp(f, 1234, 53);
}

static void v6_tcp(frame_t *f)
{
    ipv6(f, 6, 20);
    tcp(f, 40000, 179, 0x18);
}

/* A complete frame decodes to the v4_udp / v6_tcp summary, and every prefix
 * of it is a truncation that never reads past its end. */
static void expect_v4_udp(int linktype, const frame_t *f)
{
    tb_summary_t s;
    assert_int_equal(decode(linktype, f, &s), 0);
    check_invariants(linktype, 0, &s, (uint32_t)f->n, (uint32_t)f->n, 42);
    assert_v4_addrs(&s);
    assert_int_equal(s.proto, 17);
    assert_int_equal(s.sport, 1234);
    assert_int_equal(s.dport, 53);
    assert_int_equal(s.ethertype, 0x0800);
    check_prefixes(linktype, f);
}

static void expect_v6_tcp(int linktype, const frame_t *f)
{
    tb_summary_t s;
    assert_int_equal(decode(linktype, f, &s), 0);
    check_invariants(linktype, 0, &s, (uint32_t)f->n, (uint32_t)f->n, 42);
    assert_v6_addrs(&s);
    assert_int_equal(s.proto, 6);
    assert_int_equal(s.sport, 40000);
    assert_int_equal(s.dport, 179);
    assert_int_equal(s.ethertype, 0x86dd);
    check_prefixes(linktype, f);
}

/* A complete frame that is valid and non-IP, with this ethertype. */
static void expect_non_ip(int linktype, const frame_t *f, unsigned ethertype)
{
    tb_summary_t s;
    assert_int_equal(decode(linktype, f, &s), 0);
    check_invariants(linktype, 0, &s, (uint32_t)f->n, (uint32_t)f->n, 42);
    assert_int_equal(s.family, TB_FAMILY_NONE);
    assert_int_equal(s.flags, 0);
    assert_int_equal(s.ethertype, ethertype);
}

static void mpls_label(frame_t *f, unsigned label, int bottom)
{
    put32(f, (label << 12) | (bottom ? 0x100u : 0) | 64);
}

static void test_mpls_label_stack(void **state)
{
    (void)state;
    /* Two labels on Ethernet, then IPv4 (the version nibble decides). */
    frame_t f = {0};
    eth(&f, 0x8847);
    mpls_label(&f, 16, 0);
    mpls_label(&f, 17, 1);
    v4_udp(&f);
    expect_v4_udp(TB_LINK_ETHERNET, &f);

    /* Multicast MPLS behind a VLAN tag, then IPv6. */
    frame_t g = {0};
    eth(&g, 0x8100);
    vlan(&g, 0x0064, 0x8848);
    mpls_label(&g, 2, 1);
    v6_tcp(&g);
    expect_v6_tcp(TB_LINK_ETHERNET, &g);
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_ETHERNET, &g, &s), 0);
    assert_int_equal(s.vlan, 100);

    /* A pseudowire control word (first nibble 0) after the stack: non-IP,
     * the MPLS ethertype kept. */
    frame_t h = {0};
    eth(&h, 0x8847);
    mpls_label(&h, 100, 1);
    put32(&h, 0x00000001);
    put_zero(&h, 14);
    expect_non_ip(TB_LINK_ETHERNET, &h, 0x8847);

    /* A stack deeper than any real one: non-IP, no loop per byte. */
    frame_t d = {0};
    eth(&d, 0x8847);
    for (int i = 0; i < 40; i++) {
        mpls_label(&d, 16, 0);
    }
    v4_udp(&d);
    expect_non_ip(TB_LINK_ETHERNET, &d, 0x8847);
}

static void test_ppp_framings(void **state)
{
    (void)state;
    /* RFC 1662 framing, address and control present. */
    frame_t f = {0};
    put8(&f, 0xff);
    put8(&f, 0x03);
    put16(&f, 0x0021);
    v4_udp(&f);
    expect_v4_udp(TB_LINK_PPP, &f);
    expect_v4_udp(TB_LINK_PPP_HDLC, &f);

    /* Address and control compressed, and the protocol too. */
    frame_t g = {0};
    put16(&g, 0x0057);
    v6_tcp(&g);
    expect_v6_tcp(TB_LINK_PPP, &g);
    frame_t h = {0};
    put8(&h, 0x21);
    v4_udp(&h);
    expect_v4_udp(TB_LINK_PPP, &h);

    /* With a direction byte (LINKTYPE_PPP_WITH_DIR). */
    frame_t d = {0};
    put8(&d, 1);
    put8(&d, 0xff);
    put8(&d, 0x03);
    put16(&d, 0x0021);
    v4_udp(&d);
    expect_v4_udp(TB_LINK_PPP_WITH_DIR, &d);

    /* PPP carrying MPLS (0x0281, multicast 0x0283). */
    static const unsigned mpls[] = {0x0281, 0x0283};
    for (size_t i = 0; i < 2; i++) {
        frame_t m = {0};
        put8(&m, 0xff);
        put8(&m, 0x03);
        put16(&m, mpls[i]);
        mpls_label(&m, 299792, 1);
        v4_udp(&m);
        expect_v4_udp(TB_LINK_PPP, &m);
    }

    /* LCP: non-IP. */
    frame_t l = {0};
    put8(&l, 0xff);
    put8(&l, 0x03);
    put16(&l, 0xc021);
    put32(&l, 0x01010004);
    expect_non_ip(TB_LINK_PPP, &l, 0);
}

static void pppoe(frame_t *f, unsigned payload)
{
    put8(f, 0x11);
    put8(f, 0x00);
    put16(f, 0x1234);
    put16(f, payload);
}

static void test_pppoe_session(void **state)
{
    (void)state;
    frame_t f = {0};
    eth(&f, 0x8864);
    pppoe(&f, 2 + 28);
    put16(&f, 0x0021);
    v4_udp(&f);
    expect_v4_udp(TB_LINK_ETHERNET, &f);

    /* LINKTYPE_PPP_ETHER: the PPPoE header without Ethernet, IPv6. */
    frame_t g = {0};
    pppoe(&g, 2 + 60);
    put16(&g, 0x0057);
    v6_tcp(&g);
    expect_v6_tcp(TB_LINK_PPP_ETHER, &g);

    /* The payload length bounds the PPP frame: padding after it is not
     * read, a length cutting the IP header short makes it truncated. */
    frame_t h = {0};
    eth(&h, 0x8864);
    pppoe(&h, 2 + 10);
    put16(&h, 0x0021);
    v4_udp(&h);
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_ETHERNET, &h, &s), TB_ETRUNC);
    assert_int_equal(s.family, TB_FAMILY_NONE);

    /* A session carrying LCP: non-IP. */
    frame_t l = {0};
    eth(&l, 0x8864);
    pppoe(&l, 6);
    put16(&l, 0xc021);
    put32(&l, 0x09010004);
    expect_non_ip(TB_LINK_ETHERNET, &l, 0x8864);
}

static void test_cisco_hdlc(void **state)
{
    (void)state;
    frame_t f = {0};
    put8(&f, 0x0f);
    put8(&f, 0x00);
    put16(&f, 0x0800);
    v4_udp(&f);
    expect_v4_udp(TB_LINK_C_HDLC, &f);
    /* LINKTYPE_PPP_HDLC also carries Cisco HDLC (RFC 1547 4.3.1). */
    expect_v4_udp(TB_LINK_PPP_HDLC, &f);

    frame_t g = {0};
    put8(&g, 0x8f);
    put8(&g, 0x00);
    put16(&g, 0x86dd);
    v6_tcp(&g);
    expect_v6_tcp(TB_LINK_C_HDLC, &g);

    /* SLARP (0x8035): non-IP. A protocol below 0x0600 is no ethertype. */
    frame_t h = {0};
    put8(&h, 0x8f);
    put8(&h, 0x00);
    put16(&h, 0x8035);
    put_zero(&h, 20);
    expect_non_ip(TB_LINK_C_HDLC, &h, 0x8035);
    h.b[2] = 0x00;
    h.b[3] = 0xfe;
    expect_non_ip(TB_LINK_C_HDLC, &h, 0);
}

static void test_frame_relay(void **state)
{
    (void)state;
    /* Two-byte Q.922 address (DLCI 100), UI, NLPID IPv4. */
    frame_t f = {0};
    put16(&f, 0x1841);
    put8(&f, 0x03);
    put8(&f, 0xcc);
    v4_udp(&f);
    expect_v4_udp(TB_LINK_FRELAY, &f);

    /* NLPID IPv6, three-byte address. */
    frame_t g = {0};
    put8(&g, 0x18);
    put8(&g, 0x40);
    put8(&g, 0x01);
    put8(&g, 0x03);
    put8(&g, 0x8e);
    v6_tcp(&g);
    expect_v6_tcp(TB_LINK_FRELAY, &g);

    /* Pad and SNAP with an ethertype OUI. */
    frame_t h = {0};
    put16(&h, 0x1841);
    put8(&h, 0x03);
    put8(&h, 0x00);
    put8(&h, 0x80);
    put8(&h, 0);
    put16(&h, 0);
    put16(&h, 0x0800);
    v4_udp(&h);
    expect_v4_udp(TB_LINK_FRELAY, &h);

    /* Cisco's encapsulation: an ethertype right after the address. */
    frame_t c = {0};
    put16(&c, 0x1841);
    put16(&c, 0x0800);
    v4_udp(&c);
    expect_v4_udp(TB_LINK_FRELAY, &c);

    /* IS-IS (NLPID 0x83): non-IP. An address that never ends: malformed. */
    frame_t i = {0};
    put16(&i, 0x1841);
    put8(&i, 0x03);
    put8(&i, 0x83);
    put_zero(&i, 20);
    expect_non_ip(TB_LINK_FRELAY, &i, 0);
    frame_t m = {0};
    put32(&m, 0x18401840);
    put_zero(&m, 20);
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_FRELAY, &m, &s), TB_EPROTO);
}

static void juniper_hdr(frame_t *f, unsigned flags)
{
    put8(f, 'M');
    put8(f, 'G');
    put8(f, 'C');
    put8(f, flags);
    if (flags & 0x80) {
        put16(f, 9); /* TLVs: media type (3), ifindex (1) */
        put8(f, 3);
        put8(f, 1);
        put8(f, 1);
        put8(f, 1);
        put8(f, 4);
        put32(f, 140);
    }
}

static void test_juniper_ether(void **state)
{
    (void)state;
    frame_t f = {0};
    juniper_hdr(&f, 0x80);
    eth(&f, 0x0800);
    v4_udp(&f);
    expect_v4_udp(TB_LINK_JUNIPER_ETHER, &f);

    /* Without extensions; and without an L2 header (flag 0x02). */
    frame_t g = {0};
    juniper_hdr(&g, 0x01);
    eth(&g, 0x86dd);
    v6_tcp(&g);
    expect_v6_tcp(TB_LINK_JUNIPER_ETHER, &g);
    frame_t h = {0};
    juniper_hdr(&h, 0x82);
    v4_udp(&h);
    expect_v4_udp(TB_LINK_JUNIPER_ETHER, &h);

    /* No magic: malformed. */
    f.b[0] = 'X';
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_JUNIPER_ETHER, &f, &s), TB_EPROTO);
    assert_int_equal(s.family, TB_FAMILY_NONE);
}

static void sectag(frame_t *f, unsigned tci)
{
    put8(f, tci);
    put8(f, 0);
    put32(f, 77);
    if (tci & 0x20) {
        put32(f, 0x02000000);
        put32(f, 0x00010001);
    }
}

static void test_macsec(void **state)
{
    (void)state;
    /* Integrity only (E and C clear), with an SCI: the ethertype follows the
     * SecTAG in clear. The ICV (16 bytes) ends the frame. */
    frame_t f = {0};
    eth(&f, 0x88e5);
    sectag(&f, 0x20);
    put16(&f, 0x0800);
    v4_udp(&f);
    expect_v4_udp(TB_LINK_ETHERNET, &f);
    put_zero(&f, 16);
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_ETHERNET, &f, &s), 0);
    assert_v4_addrs(&s);
    assert_int_equal(s.dport, 53);

    /* Without SCI, IPv6. */
    frame_t g = {0};
    eth(&g, 0x88e5);
    sectag(&g, 0x01);
    put16(&g, 0x86dd);
    v6_tcp(&g);
    expect_v6_tcp(TB_LINK_ETHERNET, &g);

    /* Encrypted (E and C set): non-IP, the MACsec ethertype kept. */
    frame_t h = {0};
    eth(&h, 0x88e5);
    sectag(&h, 0x2c);
    put_zero(&h, 60);
    expect_non_ip(TB_LINK_ETHERNET, &h, 0x88e5);
}

static void test_arista_timestamp(void **state)
{
    (void)state;
    /* 64-bit timestamp (version 0x0010), then the original ethertype. */
    frame_t f = {0};
    eth(&f, 0xd28b);
    put16(&f, 0x0001);
    put16(&f, 0x0010);
    put32(&f, 1700000000);
    put32(&f, 123456789);
    put16(&f, 0x0800);
    v4_udp(&f);
    expect_v4_udp(TB_LINK_ETHERNET, &f);

    /* 48-bit UTC timestamp (0x0120), a VLAN tag after it. */
    frame_t g = {0};
    eth(&g, 0xd28b);
    put16(&g, 0x0001);
    put16(&g, 0x0120);
    put16(&g, 1234);
    put32(&g, 5678);
    put16(&g, 0x8100);
    vlan(&g, 7, 0x86dd);
    v6_tcp(&g);
    expect_v6_tcp(TB_LINK_ETHERNET, &g);

    /* An unknown subtype: non-IP. */
    frame_t h = {0};
    eth(&h, 0xd28b);
    put16(&h, 0x0002);
    put16(&h, 0x0010);
    put_zero(&h, 40);
    expect_non_ip(TB_LINK_ETHERNET, &h, 0xd28b);
}

/* An 802.11 data frame header: frame control, duration, 3 or 4 addresses,
 * sequence control, QoS control for QoS subtypes, HT control with +HTC. */
static void wlan_hdr(frame_t *f, unsigned fc0, unsigned fc1)
{
    put8(f, fc0);
    put8(f, fc1);
    put16(f, 0);
    put_zero(f, 18);
    put16(f, 0x1230);
    if ((fc1 & 3) == 3) {
        put_zero(f, 6);
    }
    if (fc0 & 0x80) {
        put16(f, 0x0600);
        if (fc1 & 0x80) {
            put32(f, 0);
        }
    }
}

static void snap(frame_t *f, unsigned type)
{
    put8(f, 0xaa);
    put8(f, 0xaa);
    put8(f, 0x03);
    put8(f, 0);
    put16(f, 0);
    put16(f, type);
}

static void test_ieee80211_data(void **state)
{
    (void)state;
    /* Data, ToDS. */
    frame_t f = {0};
    wlan_hdr(&f, 0x08, 0x01);
    snap(&f, 0x0800);
    v4_udp(&f);
    expect_v4_udp(TB_LINK_IEEE802_11, &f);

    /* QoS data, ToDS and FromDS (address 4), +HTC. */
    frame_t g = {0};
    wlan_hdr(&g, 0x88, 0x83);
    snap(&g, 0x86dd);
    v6_tcp(&g);
    expect_v6_tcp(TB_LINK_IEEE802_11, &g);

    /* Protected, null-function, beacon, A-MSDU: non-IP. */
    frame_t p = {0};
    wlan_hdr(&p, 0x08, 0x41);
    put_zero(&p, 40);
    expect_non_ip(TB_LINK_IEEE802_11, &p, 0);
    frame_t n = {0};
    wlan_hdr(&n, 0x48, 0x01);
    expect_non_ip(TB_LINK_IEEE802_11, &n, 0);
    frame_t b = {0};
    wlan_hdr(&b, 0x80, 0x00);
    put_zero(&b, 30);
    expect_non_ip(TB_LINK_IEEE802_11, &b, 0);
    frame_t a = {0};
    wlan_hdr(&a, 0x88, 0x01);
    a.b[24] = 0x80;
    put_zero(&a, 40);
    expect_non_ip(TB_LINK_IEEE802_11, &a, 0);
}

static void test_radiotap(void **state)
{
    (void)state;
    /* Radiotap with TSFT and Flags (data pad), then a QoS data frame whose
     * 26-byte header is padded to 28. */
    frame_t f = {0};
    put8(&f, 0);
    put8(&f, 0);
    put16le(&f, 24);
    put32le(&f, 0x00000003);
    put32le(&f, 0x11111111); /* TSFT at 8 */
    put32le(&f, 0x22222222);
    put8(&f, 0x20); /* Flags: data pad */
    put_zero(&f, 7);
    wlan_hdr(&f, 0x88, 0x02);
    put16(&f, 0);
    snap(&f, 0x0800);
    v4_udp(&f);
    expect_v4_udp(TB_LINK_RADIOTAP, &f);

    /* An extended present bitmap, no Flags: no padding. */
    frame_t g = {0};
    put8(&g, 0);
    put8(&g, 0);
    put16le(&g, 16);
    put32le(&g, 0x80000000);
    put32le(&g, 0x00000000);
    put32le(&g, 0);
    wlan_hdr(&g, 0x08, 0x02);
    snap(&g, 0x86dd);
    v6_tcp(&g);
    expect_v6_tcp(TB_LINK_RADIOTAP, &g);

    /* Version 1, or a length below the fixed header: malformed. */
    tb_summary_t s;
    g.b[0] = 1;
    assert_int_equal(decode(TB_LINK_RADIOTAP, &g, &s), TB_EPROTO);
    g.b[0] = 0;
    g.b[2] = 4;
    assert_int_equal(decode(TB_LINK_RADIOTAP, &g, &s), TB_EPROTO);
}

static void pktap_hdr(frame_t *f, uint32_t dlt)
{
    put32le(f, 108);
    put32le(f, 1);
    put32le(f, dlt);
    put8(f, 'e');
    put8(f, 'n');
    put8(f, '0');
    put_zero(f, 108 - 15);
}

static void test_pktap(void **state)
{
    (void)state;
    static const int links[] = {TB_LINK_PKTAP, TB_LINK_PKTAP_DLT};
    for (size_t i = 0; i < 2; i++) {
        frame_t f = {0};
        pktap_hdr(&f, 1);
        eth(&f, 0x0800);
        v4_udp(&f);
        expect_v4_udp(links[i], &f);
        frame_t g = {0};
        pktap_hdr(&g, 12);
        v6_tcp(&g);
        expect_v6_tcp(links[i], &g);
        /* PKTAP inside PKTAP, and an inner link type tapbus does not
         * decode: non-IP. */
        frame_t h = {0};
        pktap_hdr(&h, 258);
        pktap_hdr(&h, 1);
        eth(&h, 0x0800);
        v4_udp(&h);
        expect_non_ip(links[i], &h, 0);
        frame_t u = {0};
        pktap_hdr(&u, 147);
        v4_udp(&u);
        expect_non_ip(links[i], &u, 0);
    }
}

static void test_arcnet(void **state)
{
    (void)state;
    /* BSD, RFC 1201: source, destination, type, split flag, sequence. */
    frame_t f = {0};
    put8(&f, 1);
    put8(&f, 2);
    put8(&f, 0xd4);
    put8(&f, 0);
    put16(&f, 7);
    v4_udp(&f);
    expect_v4_udp(TB_LINK_ARCNET_BSD, &f);

    /* BSD, RFC 1201 exception packet (flag 0xff), IPv6. */
    frame_t e = {0};
    put8(&e, 1);
    put8(&e, 2);
    put8(&e, 0xc4);
    put8(&e, 0xff);
    put16(&e, 0xffff);
    put8(&e, 0xc4);
    put8(&e, 0);
    put16(&e, 7);
    v6_tcp(&e);
    expect_v6_tcp(TB_LINK_ARCNET_BSD, &e);

    /* BSD, RFC 1051: source, destination, type. */
    frame_t o = {0};
    put8(&o, 1);
    put8(&o, 2);
    put8(&o, 0xf0);
    v4_udp(&o);
    expect_v4_udp(TB_LINK_ARCNET_BSD, &o);

    /* A fragment other than the first (even split flag): non-IP. */
    frame_t n = {0};
    put8(&n, 1);
    put8(&n, 2);
    put8(&n, 0xd4);
    put8(&n, 2);
    put16(&n, 7);
    put_zero(&n, 30);
    expect_non_ip(TB_LINK_ARCNET_BSD, &n, 0);

    /* Linux: source, destination, offset, then as BSD. */
    frame_t l = {0};
    put8(&l, 1);
    put8(&l, 2);
    put16(&l, 0);
    put8(&l, 0xd4);
    put8(&l, 0);
    put16(&l, 7);
    v4_udp(&l);
    expect_v4_udp(TB_LINK_ARCNET_LINUX, &l);
    frame_t m = {0};
    put8(&m, 1);
    put8(&m, 2);
    put16(&m, 0);
    put8(&m, 0xf0);
    v4_udp(&m);
    expect_v4_udp(TB_LINK_ARCNET_LINUX, &m);

    /* ARP (RFC 1201 type 0xd5): non-IP. */
    l.b[4] = 0xd5;
    expect_non_ip(TB_LINK_ARCNET_LINUX, &l, 0);
}

static void nflog_tlv(frame_t *f, unsigned type, unsigned vlen)
{
    put16he(f, (uint16_t)(4 + vlen));
    put16he(f, (uint16_t)type);
}

static void test_nflog(void **state)
{
    (void)state;
    /* Header, a packet-header TLV (type 1, 4 bytes), a prefix TLV (type 10,
     * 5 bytes, padded to 8), then the payload (type 9). */
    frame_t f = {0};
    put8(&f, 2);
    put8(&f, 0);
    put16(&f, 5);
    nflog_tlv(&f, 1, 4);
    put16(&f, 0x0800);
    put16(&f, 0);
    nflog_tlv(&f, 10, 5);
    put_bytes(&f, (const uint8_t *)"drop", 5);
    put_zero(&f, 3);
    nflog_tlv(&f, 9, 28);
    v4_udp(&f);
    expect_v4_udp(TB_LINK_NFLOG, &f);

    frame_t g = {0};
    put8(&g, 10);
    put8(&g, 0);
    put16(&g, 5);
    nflog_tlv(&g, 9, 60);
    v6_tcp(&g);
    expect_v6_tcp(TB_LINK_NFLOG, &g);

    /* No payload TLV in a whole capture: non-IP. A TLV shorter than its
     * header: malformed. */
    frame_t h = {0};
    put8(&h, 2);
    put8(&h, 0);
    put16(&h, 5);
    nflog_tlv(&h, 1, 4);
    put32(&h, 0x08000000);
    expect_non_ip(TB_LINK_NFLOG, &h, 0);
    h.b[4] = 0;
    h.b[5] = 0;
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_NFLOG, &h, &s), TB_EPROTO);
}

static void test_ipoib_and_ipnet(void **state)
{
    (void)state;
    frame_t f = {0};
    put16(&f, 0x0800);
    put16(&f, 0);
    v4_udp(&f);
    expect_v4_udp(TB_LINK_IPOIB, &f);
    frame_t a = {0};
    put16(&a, 0x0806);
    put16(&a, 0);
    put_zero(&a, 28);
    expect_non_ip(TB_LINK_IPOIB, &a, 0x0806);

    /* IPNET: version, family (2 IPv4, 26 IPv6), 22 more header bytes. */
    frame_t g = {0};
    put8(&g, 1);
    put8(&g, 26);
    put16(&g, 0);
    put32(&g, 60);
    put_zero(&g, 16);
    v6_tcp(&g);
    expect_v6_tcp(TB_LINK_IPNET, &g);
    frame_t h = {0};
    put8(&h, 1);
    put8(&h, 2);
    put16(&h, 0);
    put32(&h, 28);
    put_zero(&h, 16);
    v4_udp(&h);
    expect_v4_udp(TB_LINK_IPNET, &h);
    h.b[1] = 17;
    expect_non_ip(TB_LINK_IPNET, &h, 0);
}

/* ---- truncation and malformation --------------------------------------- */

static void test_truncated_tcp_every_prefix(void **state)
{
    (void)state;
    frame_t f = {0};
    eth(&f, 0x0800);
    ipv4(&f, 6, 20);
    tcp(&f, 1234, 80, 0x02);
    assert_int_equal(f.n, 54);
    for (size_t n = 0; n <= f.n; n++) {
        tb_summary_t s;
        int rc = tb_decode(TB_LINK_ETHERNET, f.b, (uint32_t)n, 54, 9, &s);
        check_invariants(TB_LINK_ETHERNET, rc, &s, (uint32_t)n, 54, 9);
        assert_int_equal(rc, n == 54 ? 0 : TB_ETRUNC);
        assert_int_equal(s.ethertype, n < 14 ? 0 : 0x0800);
        if (n < 34) {
            assert_int_equal(s.family, TB_FAMILY_NONE); /* IPv4 fixed header incomplete */
            continue;
        }
        assert_v4_addrs(&s);
        assert_int_equal(s.proto, 6);
        assert_int_equal(!!(s.flags & TB_SUM_PORTS), n >= 38);
        assert_int_equal(!!(s.flags & TB_SUM_TCPFLAGS), n >= 48);
        if (n >= 38) {
            assert_int_equal(s.sport, 1234);
            assert_int_equal(s.dport, 80);
        }
        if (n >= 48) {
            assert_int_equal(s.tcp_flags, 0x02);
        }
    }
}

static void test_truncated_ipv4_options_keep_addresses(void **state)
{
    (void)state;
    frame_t f = {0};
    ipv4_full(&f, 8, 32 + 8, 0, 17);
    udp(&f, 1, 2);
    tb_summary_t s;
    assert_int_equal(tb_decode(TB_LINK_IPV4, f.b, 28, 40, 0, &s), TB_ETRUNC);
    assert_v4_addrs(&s);
    assert_int_equal(s.proto, 17);
    assert_int_equal(s.flags, TB_SUM_TRUNC);
    assert_int_equal(decode(TB_LINK_IPV4, &f, &s), 0);
    assert_int_equal(s.sport, 1);
}

static void test_malformed_ipv4_ihl_below_five(void **state)
{
    (void)state;
    frame_t f = {0};
    eth(&f, 0x0800);
    ipv4_full(&f, 4, 28, 0, 17);
    udp(&f, 1, 2);
    tb_summary_t s;
    int rc = decode(TB_LINK_ETHERNET, &f, &s);
    check_invariants(TB_LINK_ETHERNET, rc, &s, (uint32_t)f.n, (uint32_t)f.n, 42);
    assert_int_equal(rc, TB_EPROTO);
    assert_int_equal(s.flags, TB_SUM_MALFORMED);
    assert_int_equal(s.family, TB_FAMILY_NONE);
    assert_int_equal(s.ethertype, 0x0800);
}

static void test_malformed_ip_bad_version(void **state)
{
    (void)state;
    frame_t f = {0};
    eth(&f, 0x0800);
    ipv4(&f, 17, 8);
    udp(&f, 1, 2);
    f.b[14] = 0x65; /* version 6 under ethertype IPv4 */
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_ETHERNET, &f, &s), TB_EPROTO);
    assert_int_equal(s.family, TB_FAMILY_NONE);

    frame_t g = {0};
    eth(&g, 0x86dd);
    ipv6(&g, 17, 8);
    udp(&g, 1, 2);
    g.b[14] = 0x45;
    assert_int_equal(decode(TB_LINK_ETHERNET, &g, &s), TB_EPROTO);
    assert_int_equal(s.flags, TB_SUM_MALFORMED);
    assert_int_equal(s.family, TB_FAMILY_NONE);
}

static void test_malformed_total_length_keeps_addresses(void **state)
{
    (void)state;
    frame_t f = {0};
    eth(&f, 0x0800);
    ipv4_full(&f, 6, 20, 0, 6); /* total 20 < header 24 */
    tcp(&f, 1, 2, 0);
    tb_summary_t s;
    int rc = decode(TB_LINK_ETHERNET, &f, &s);
    check_invariants(TB_LINK_ETHERNET, rc, &s, (uint32_t)f.n, (uint32_t)f.n, 42);
    assert_int_equal(rc, TB_EPROTO);
    assert_int_equal(s.flags, TB_SUM_MALFORMED);
    assert_v4_addrs(&s);
    assert_int_equal(s.proto, 6);
}

static void test_transport_cut_by_ip_length_is_malformed(void **state)
{
    (void)state;
    frame_t f = {0};
    ipv4(&f, 6, 10); /* says 10 bytes of TCP, 20 captured */
    tcp(&f, 1, 2, 0x10);
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_IPV4, &f, &s), TB_EPROTO);
    assert_int_equal(s.flags, TB_SUM_MALFORMED | TB_SUM_PORTS);
    assert_int_equal(s.dport, 2);

    /* Same when the capture ends exactly with the datagram: all of it is
     * there, and it is too short for its transport header. */
    frame_t e = {0};
    ipv4(&e, 6, 10);
    put_zero(&e, 10);
    assert_int_equal(decode(TB_LINK_IPV4, &e, &s), TB_EPROTO);
    assert_int_equal(s.flags, TB_SUM_MALFORMED | TB_SUM_PORTS);

    frame_t g = {0};
    ipv6(&g, 17, 6);
    udp(&g, 1, 2);
    assert_int_equal(decode(TB_LINK_IPV6, &g, &s), TB_EPROTO);
    assert_int_equal(s.flags, TB_SUM_MALFORMED | TB_SUM_PORTS);
}

static void test_ethernet_padding_ignored(void **state)
{
    (void)state;
    frame_t f = {0};
    eth(&f, 0x0800);
    ipv4(&f, 17, 8);
    udp(&f, 1, 2);
    put_zero(&f, 60 - f.n);
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_ETHERNET, &f, &s), 0);
    assert_int_equal(s.flags, TB_SUM_PORTS);
}

static void test_tso_zero_total_length(void **state)
{
    (void)state;
    frame_t f = {0};
    eth(&f, 0x0800);
    ipv4_full(&f, 5, 0, 0x4000, 6);
    tcp(&f, 1, 2, 0x18);
    put_zero(&f, 100);
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_ETHERNET, &f, &s), 0);
    assert_int_equal(s.flags, TB_SUM_PORTS | TB_SUM_TCPFLAGS);

    /* IPv6 payload length 0 (jumbogram / big TCP): bounded by the capture. */
    frame_t g = {0};
    ipv6(&g, 0, 0);
    ext(&g, 6, 0);
    tcp(&g, 3, 4, 0x18);
    assert_int_equal(decode(TB_LINK_IPV6, &g, &s), 0);
    assert_int_equal(s.sport, 3);
}

static void test_caplen_above_wirelen_kept(void **state)
{
    (void)state;
    frame_t f = {0};
    ipv4(&f, 17, 8);
    udp(&f, 1, 2);
    tb_summary_t s;
    assert_int_equal(tb_decode(TB_LINK_RAW, f.b, (uint32_t)f.n, 10, 5, &s), 0);
    assert_int_equal(s.cap_len, f.n);
    assert_int_equal(s.wire_len, 10);
}

static void test_unsupported_linktype(void **state)
{
    (void)state;
    static const int links[] = {-1, 6, 123, 147, 100000};
    uint8_t b[64] = {0x45};
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
        tb_summary_t s;
        memset(&s, 0xff, sizeof(s));
        int rc = tb_decode(links[i], b, sizeof(b), 100, 77, &s);
        assert_int_equal(rc, TB_ENOTSUP);
        check_invariants(links[i], rc, &s, sizeof(b), 100, 77);
        assert_false(tb_decode_linktype_supported(links[i]));
    }
    static const int ok[] = {0,   1,   7,   9,   12,  14,  50,  51,  101, 104, 105, 107, 108,
                             113, 127, 129, 149, 178, 204, 226, 228, 229, 239, 242, 258, 276};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_true(tb_decode_linktype_supported(ok[i]));
    }
}

/* Every protocol number's class, over IPv4 and IPv6, and none without IP. */
static void test_proto_class_of_every_number(void **state)
{
    (void)state;
    tb_summary_t s;
    memset(&s, 0, sizeof s);
    for (unsigned p = 0; p < 256; p++) {
        s.proto = (uint8_t)p;
        tb_proto_class_t want = p == 6    ? TB_PC_TCP
                                : p == 17 ? TB_PC_UDP
                                : p == 1  ? TB_PC_ICMP
                                : p == 58 ? TB_PC_ICMPV6
                                          : TB_PC_OTHER;
        s.family = TB_FAMILY_IPV4;
        assert_int_equal(tb_proto_class(&s), want);
        s.family = TB_FAMILY_IPV6;
        assert_int_equal(tb_proto_class(&s), want);
        s.family = TB_FAMILY_NONE;
        assert_int_equal(tb_proto_class(&s), TB_PC_NON_IP);
    }
}

static void test_names_and_addr_formatting(void **state)
{
    (void)state;
    assert_string_equal(tb_proto_class_name(TB_PC_UDP), "udp");
    assert_string_equal(tb_proto_class_name(TB_PC_COUNT), "unknown");
    frame_t f = {0};
    ipv4(&f, 17, 8);
    udp(&f, 1, 2);
    tb_summary_t s;
    assert_int_equal(decode(TB_LINK_RAW, &f, &s), 0);
    char small[8] = "xxxxxxx";
    assert_string_equal(tb_summary_addr(&s, 0, small, sizeof(small)), ""); /* too small */
    char exact[10];
    assert_string_equal(tb_summary_addr(&s, 0, exact, sizeof(exact)), "192.0.2.1");
    assert_ptr_equal(tb_summary_addr(&s, 0, small, 0), small);
}

/* ---- corpus sweep ------------------------------------------------------ */

typedef struct {
    unsigned files, refused, packets, truncated, malformed, unsupported, read_errors;
    unsigned ipv4, ipv6, ports;
} sweep_t;

static void sweep_file(const char *path, sweep_t *sw)
{
    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t *pc = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, errbuf);
    if (pc == NULL) {
        sw->refused++;
        return;
    }
    sw->files++;
    int linktype = pcap_datalink(pc);
    struct pcap_pkthdr *h;
    const u_char *data;
    int r;
    while ((r = pcap_next_ex(pc, &h, &data)) == 1) {
        uint64_t ts = (uint64_t)h->ts.tv_sec * 1000000000u + (uint64_t)h->ts.tv_usec;
        tb_summary_t s;
        int rc = tb_decode(linktype, data, h->caplen, h->len, ts, &s);
        check_invariants(linktype, rc, &s, h->caplen, h->len, ts);
        sw->packets++;
        sw->truncated += rc == TB_ETRUNC;
        sw->malformed += rc == TB_EPROTO;
        sw->unsupported += rc == TB_ENOTSUP;
        sw->ipv4 += s.family == TB_FAMILY_IPV4;
        sw->ipv6 += s.family == TB_FAMILY_IPV6;
        sw->ports += !!(s.flags & TB_SUM_PORTS);
    }
    if (r == PCAP_ERROR) {
        sw->read_errors++; /* deliberately truncated files end this way */
    }
    pcap_close(pc);
}

static void test_corpus_sweep(void **state)
{
    (void)state;
    struct dirent **names;
    int n = scandir(TB_TEST_CORPUS, &names, NULL, alphasort);
    if (n <= 0) {
        fail_msg("capture corpus missing or empty: %s (tests/data/corpus in the repository)",
                 TB_TEST_CORPUS);
    }
    sweep_t sw = {0};
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", TB_TEST_CORPUS, names[i]->d_name);
        const char *dot = strrchr(names[i]->d_name, '.');
        int capture = dot != NULL && (strcmp(dot, ".pcap") == 0 || strcmp(dot, ".pcapng") == 0);
        if (capture && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            sweep_file(path, &sw);
        }
        free(names[i]);
    }
    free(names);
    printf("corpus: %u files opened, %u refused, %u packets, %u truncated, %u malformed, "
           "%u unsupported, %u read errors; %u ipv4, %u ipv6, %u with ports\n",
           sw.files, sw.refused, sw.packets, sw.truncated, sw.malformed, sw.unsupported,
           sw.read_errors, sw.ipv4, sw.ipv6, sw.ports);
    /* Lower bounds a little under what the corpus gives (546 files, 7483
     * packets, 3601 IP, 2499 with ports): a sweep that silently skips files or stops decoding
     * IP fails here. */
    assert_true(sw.files >= 500);
    assert_true(sw.packets >= 7000);
    assert_true(sw.ipv4 + sw.ipv6 >= 3300);
    assert_true(sw.ports >= 2200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ethernet_ipv4_tcp),
        cmocka_unit_test(test_ethernet_ipv6_ext_headers_udp),
        cmocka_unit_test(test_ipv6_ah_and_dstopts_walked),
        cmocka_unit_test(test_ipv6_upper_layer_without_ports),
        cmocka_unit_test(test_ipv6_extension_header_limit),
        cmocka_unit_test(test_vlan_single),
        cmocka_unit_test(test_vlan_stack_records_outermost),
        cmocka_unit_test(test_vlan_stack_too_deep_is_non_ip),
        cmocka_unit_test(test_linux_sll_v1),
        cmocka_unit_test(test_linux_sll_v1_vlan),
        cmocka_unit_test(test_linux_sll_v2),
        cmocka_unit_test(test_raw_ip_all_linktypes),
        cmocka_unit_test(test_ipv4_and_ipv6_linktypes),
        cmocka_unit_test(test_null_both_byte_orders),
        cmocka_unit_test(test_loop_network_order),
        cmocka_unit_test(test_icmp_type_code),
        cmocka_unit_test(test_sctp_dccp_udplite_ports),
        cmocka_unit_test(test_ipv4_non_first_fragment),
        cmocka_unit_test(test_ipv6_non_first_fragment),
        cmocka_unit_test(test_tunnels_not_unwrapped),
        cmocka_unit_test(test_arp_is_non_ip),
        cmocka_unit_test(test_llc_snap),
        cmocka_unit_test(test_mpls_label_stack),
        cmocka_unit_test(test_ppp_framings),
        cmocka_unit_test(test_pppoe_session),
        cmocka_unit_test(test_cisco_hdlc),
        cmocka_unit_test(test_frame_relay),
        cmocka_unit_test(test_juniper_ether),
        cmocka_unit_test(test_macsec),
        cmocka_unit_test(test_arista_timestamp),
        cmocka_unit_test(test_ieee80211_data),
        cmocka_unit_test(test_radiotap),
        cmocka_unit_test(test_pktap),
        cmocka_unit_test(test_arcnet),
        cmocka_unit_test(test_nflog),
        cmocka_unit_test(test_ipoib_and_ipnet),
        cmocka_unit_test(test_truncated_tcp_every_prefix),
        cmocka_unit_test(test_truncated_ipv4_options_keep_addresses),
        cmocka_unit_test(test_malformed_ipv4_ihl_below_five),
        cmocka_unit_test(test_malformed_ip_bad_version),
        cmocka_unit_test(test_malformed_total_length_keeps_addresses),
        cmocka_unit_test(test_transport_cut_by_ip_length_is_malformed),
        cmocka_unit_test(test_ethernet_padding_ignored),
        cmocka_unit_test(test_tso_zero_total_length),
        cmocka_unit_test(test_caplen_above_wirelen_kept),
        cmocka_unit_test(test_unsupported_linktype),
        cmocka_unit_test(test_proto_class_of_every_number),
        cmocka_unit_test(test_names_and_addr_formatting),
        cmocka_unit_test(test_corpus_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
