/* test_wire — the wire format v1: golden vectors (tests/data/wire/ files, the
 * same bytes spelled out below; batch_smallest.bin, the batch in the smallest
 * encodings, is only read), round trips, validation of every field,
 * truncation, forward-compatibility rules, msgpack-c as an independent
 * decoder, and seeded random garbage and mutations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tb_err.h"
#include "tb_mp.h"
#include "tb_wire.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------ golden vectors */

/* The golden vectors are laid out by hand, one field per line. */
/* clang-format off */

/* tests/data/wire/batch.bin: three summaries (IPv4 TCP, IPv6 UDP on VLAN
 * 100, ARP) from probe "p1", stream "01::10:01", seq 42; the lengths and
 * ports in 16 bits, every other integer in its smallest encoding. */
static const uint8_t k_batch[] = {
    0x98,                                                 /* envelope: array of 8 */
    0x01,                                                 /* version 1 */
    0x01,                                                 /* type 1 = batch */
    0xa2, 0x70, 0x31,                                     /* probe_id "p1" */
    0xcf, 0x17, 0x97, 0x9c, 0xfe, 0x36, 0x2a, 0x00, 0x00, /* boot_ns 1700000000000000000 */
    0xa9, 0x30, 0x31, 0x3a, 0x3a, 0x31, 0x30, 0x3a, 0x30, 0x31, /* stream "01::10:01" */
    0x2a,                                                 /* seq 42 */
    0x93,                                                 /* payload: array of 3 */
    /* 1: IPv4 TCP 192.0.2.1:49152 -> 198.51.100.2:443 SYN|ACK */
    0x9d,                                                 /* array of 13 */
    0xcf, 0x17, 0x97, 0x9c, 0xfe, 0x3d, 0x85, 0xcd, 0x15, /* ts_ns */
    0xcd, 0x00, 0x3c, 0xcd, 0x00, 0x3c,                   /* wire_len 60, cap_len 60 */
    0x04, 0x06,                                           /* family 4, proto 6 */
    0xc4, 0x04, 0xc0, 0x00, 0x02, 0x01,                   /* src */
    0xc4, 0x04, 0xc6, 0x33, 0x64, 0x02,                   /* dst */
    0xcd, 0xc0, 0x00, 0xcd, 0x01, 0xbb,                   /* sport 49152, dport 443 */
    0x12,                                                 /* tcp_flags */
    0x00,                                                 /* vlan */
    0x22,                                                 /* flags PORTS|TCPFLAGS */
    0xcd, 0x08, 0x00,                                     /* ethertype IPv4 */
    /* 2: IPv6 UDP 2001:db8::1:53 -> 2001:db8::2:5353, VLAN 100, 128 of 1514 */
    0x9d,                                                 /* array of 13 */
    0xcf, 0x17, 0x97, 0x9c, 0xfe, 0x43, 0x7b, 0xae, 0x15, /* ts_ns */
    0xcd, 0x05, 0xea, 0xcd, 0x00, 0x80,                   /* wire_len 1514, cap_len 128 */
    0x06, 0x11,                                           /* family 6, proto 17 */
    0xc4, 0x10,                                           /* src: bin of 16 */
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0xc4, 0x10,                                           /* dst: bin of 16 */
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
    0xcd, 0x00, 0x35, 0xcd, 0x14, 0xe9,                   /* sport 53, dport 5353 */
    0x00,                                                 /* tcp_flags */
    0x64,                                                 /* vlan 100 */
    0x03,                                                 /* flags VLAN|PORTS */
    0xcd, 0x86, 0xdd,                                     /* ethertype IPv6 */
    /* 3: ARP (not IP): no addresses */
    0x9d,                                                 /* array of 13 */
    0xcf, 0x17, 0x97, 0x9c, 0xfe, 0x49, 0x71, 0x8f, 0x15, /* ts_ns */
    0xcd, 0x00, 0x2a, 0xcd, 0x00, 0x2a,                   /* wire_len 42, cap_len 42 */
    0x00, 0x00,                                           /* family 0, proto 0 */
    0xc4, 0x00, 0xc4, 0x00,                               /* src, dst: empty bins */
    0xcd, 0x00, 0x00, 0xcd, 0x00, 0x00,                   /* ports 0 */
    0x00, 0x00, 0x00,                                     /* tcp_flags, vlan, flags */
    0xcd, 0x08, 0x06,                                     /* ethertype ARP */
    0x03,                                                 /* run 3 */
};

/* tests/data/wire/heartbeat.bin: stream "eth0", seq 7, running. */
static const uint8_t k_heartbeat[] = {
    0x98, 0x01, 0x02,                                     /* array of 8, v1, heartbeat */
    0xa2, 0x70, 0x31,                                     /* probe_id "p1" */
    0xcf, 0x17, 0x97, 0x9c, 0xfe, 0x36, 0x2a, 0x00, 0x00, /* boot_ns */
    0xa4, 0x65, 0x74, 0x68, 0x30,                         /* stream "eth0" */
    0x07,                                                 /* seq 7 */
    0x8b,                                                 /* payload: map of 11 */
    0xa5, 0x73, 0x74, 0x61, 0x74, 0x65, 0x01,             /* "state": 1 (running) */
    0xa4, 0x72, 0x65, 0x63, 0x76, 0xcd, 0x03, 0xe8,       /* "recv": 1000 */
    0xa4, 0x64, 0x72, 0x6f, 0x70, 0x02,                   /* "drop": 2 */
    0xa6, 0x69, 0x66, 0x64, 0x72, 0x6f, 0x70, 0x00,       /* "ifdrop": 0 */
    0xa7, 0x70, 0x61, 0x63, 0x6b, 0x65, 0x74, 0x73,       /* "packets": */
    0xcd, 0x03, 0xe6,                                     /*   998 */
    0xa7, 0x62, 0x61, 0x74, 0x63, 0x68, 0x65, 0x73, 0x0a, /* "batches": 10 */
    0xa9, 0x62, 0x75, 0x73, 0x5f, 0x64, 0x72, 0x6f, 0x70, /* "bus_drops": */
    0x73, 0x01,                                           /*   1 */
    0xad, 0x64, 0x65, 0x63, 0x6f, 0x64, 0x65, 0x5f, 0x65, /* "decode_errors": */
    0x72, 0x72, 0x6f, 0x72, 0x73, 0x03,                   /*   3 */
    0xab, 0x73, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x64, 0x5f, /* "sampled_out": */
    0x6f, 0x75, 0x74, 0x00,                               /*   0 */
    0xad, 0x66, 0x69, 0x6c, 0x65, 0x73, 0x5f, 0x73, 0x6b, /* "files_skipped": */
    0x69, 0x70, 0x70, 0x65, 0x64, 0x02,                   /*   2 */
    0xa6, 0x64, 0x65, 0x74, 0x61, 0x69, 0x6c, 0xa0,       /* "detail": "" */
    0x03,                                                 /* run 3 */
};

/* tests/data/wire/eos.bin: stream "file:/a.pcap", seq 11, clean end. */
static const uint8_t k_eos[] = {
    0x98, 0x01, 0x03,                                     /* array of 8, v1, eos */
    0xa2, 0x70, 0x31,                                     /* probe_id "p1" */
    0xcf, 0x17, 0x97, 0x9c, 0xfe, 0x36, 0x2a, 0x00, 0x00, /* boot_ns */
    0xac, 0x66, 0x69, 0x6c, 0x65, 0x3a, 0x2f, 0x61, 0x2e, /* stream "file:/a.pcap" */
    0x70, 0x63, 0x61, 0x70,
    0x0b,                                                 /* seq 11 */
    0x85,                                                 /* payload: map of 5 */
    0xa7, 0x70, 0x61, 0x63, 0x6b, 0x65, 0x74, 0x73,       /* "packets": */
    0xcd, 0x03, 0xe6,                                     /*   998 */
    0xa9, 0x66, 0x69, 0x72, 0x73, 0x74, 0x5f, 0x73, 0x65, /* "first_seq": */
    0x71, 0x01,                                           /*   1 */
    0xa7, 0x62, 0x61, 0x74, 0x63, 0x68, 0x65, 0x73, 0x0a, /* "batches": 10 */
    0xa5, 0x65, 0x72, 0x72, 0x6f, 0x72, 0x00,             /* "error": 0 */
    0xa6, 0x64, 0x65, 0x74, 0x61, 0x69, 0x6c,             /* "detail": */
    0xab, 0x65, 0x6e, 0x64, 0x20, 0x6f, 0x66, 0x20,       /*   "end of file" */
    0x66, 0x69, 0x6c, 0x65,
    0x03,                                                 /* run 3 */
};

/* tests/data/wire/batch_points.bin: two summaries naming measurement points
 * (DPMI MP/CI), stream "01::10:01", seq 43. The source's table holds three
 * pairs; the batch carries the two it uses. */
static const uint8_t k_batch_points[] = {
    0x99,                                                 /* envelope: array of 9 */
    0x01, 0x01,                                           /* version 1, batch */
    0xa2, 0x70, 0x31,                                     /* probe_id "p1" */
    0xcf, 0x17, 0x97, 0x9c, 0xfe, 0x36, 0x2a, 0x00, 0x00, /* boot_ns */
    0xa9, 0x30, 0x31, 0x3a, 0x3a, 0x31, 0x30, 0x3a, 0x30, 0x31, /* stream "01::10:01" */
    0x2b,                                                 /* seq 43 */
    0x92,                                                 /* payload: array of 2 */
    /* 1: the golden IPv4 TCP summary, at point 2 */
    0x9e,                                                 /* array of 14 */
    0xcf, 0x17, 0x97, 0x9c, 0xfe, 0x3d, 0x85, 0xcd, 0x15, /* ts_ns */
    0xcd, 0x00, 0x3c, 0xcd, 0x00, 0x3c,                   /* lengths */
    0x04, 0x06,                                           /* family, proto */
    0xc4, 0x04, 0xc0, 0x00, 0x02, 0x01,                   /* src */
    0xc4, 0x04, 0xc6, 0x33, 0x64, 0x02,                   /* dst */
    0xcd, 0xc0, 0x00, 0xcd, 0x01, 0xbb,                   /* ports */
    0x12, 0x00, 0x22,                                     /* tcp_flags, vlan, flags */
    0xcd, 0x08, 0x00,                                     /* ethertype */
    0x02,                                                 /* point 2 */
    /* 2: the golden ARP summary, at point 1 */
    0x9e,                                                 /* array of 14 */
    0xcf, 0x17, 0x97, 0x9c, 0xfe, 0x49, 0x71, 0x8f, 0x15, /* ts_ns */
    0xcd, 0x00, 0x2a, 0xcd, 0x00, 0x2a,                   /* lengths */
    0x00, 0x00,                                           /* family, proto */
    0xc4, 0x00, 0xc4, 0x00,                               /* src, dst: empty */
    0xcd, 0x00, 0x00, 0xcd, 0x00, 0x00,                   /* ports */
    0x00, 0x00, 0x00,                                     /* tcp_flags, vlan, flags */
    0xcd, 0x08, 0x06,                                     /* ethertype */
    0x01,                                                 /* point 1 */
    0x03,                                                 /* run 3 */
    0x92,                                                 /* points: array of 2 */
    0x92, 0xa4, 0x6d, 0x70, 0x2d, 0x37,                   /* 1: ["mp-7", */
    0xa4, 0x65, 0x74, 0x68, 0x30,                         /*     "eth0"] */
    0x92, 0xa4, 0x6d, 0x70, 0x2d, 0x37,                   /* 2: ["mp-7", */
    0xa4, 0x65, 0x74, 0x68, 0x31,                         /*     "eth1"] */
};

/* clang-format on */

#define BOOT_NS 1700000000000000000ull

static tb_wire_header_t s_header(const char *stream, uint64_t seq)
{
    tb_wire_header_t h;
    memset(&h, 0, sizeof h);
    strcpy(h.probe_id, "p1");
    h.boot_ns = BOOT_NS;
    strcpy(h.stream, stream);
    h.seq = seq;
    h.run = 3;
    return h;
}

static void s_golden_items(tb_summary_t it[3])
{
    static const uint8_t v6a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint8_t v6b[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    memset(it, 0, 3 * sizeof *it);
    it[0].ts_ns = 1700000000123456789ull;
    it[0].wire_len = 60;
    it[0].cap_len = 60;
    it[0].family = TB_FAMILY_IPV4;
    it[0].proto = 6;
    memcpy(it[0].src, "\xc0\x00\x02\x01", 4);
    memcpy(it[0].dst, "\xc6\x33\x64\x02", 4);
    it[0].sport = 49152;
    it[0].dport = 443;
    it[0].tcp_flags = 0x12;
    it[0].flags = TB_SUM_PORTS | TB_SUM_TCPFLAGS;
    it[0].ethertype = 0x0800;

    it[1].ts_ns = 1700000000223456789ull;
    it[1].wire_len = 1514;
    it[1].cap_len = 128;
    it[1].family = TB_FAMILY_IPV6;
    it[1].proto = 17;
    memcpy(it[1].src, v6a, 16);
    memcpy(it[1].dst, v6b, 16);
    it[1].sport = 53;
    it[1].dport = 5353;
    it[1].vlan = 100;
    it[1].flags = TB_SUM_VLAN | TB_SUM_PORTS;
    it[1].ethertype = 0x86dd;

    it[2].ts_ns = 1700000000323456789ull;
    it[2].wire_len = 42;
    it[2].cap_len = 42;
    it[2].ethertype = 0x0806;
}

/* The summaries and table of batch_points.bin (the table has a third pair
 * no summary uses). */
static void s_golden_points(tb_summary_t it[2], tb_point_table_t *t)
{
    tb_summary_t g[3];
    s_golden_items(g);
    it[0] = g[0];
    it[1] = g[2];
    memset(t, 0, sizeof *t);
    assert_int_equal(tb_point_table_intern(t, "mp-7", "eth0"), 1);
    assert_int_equal(tb_point_table_intern(t, "mp-7", "eth1"), 2);
    assert_int_equal(tb_point_table_intern(t, "mp-7", "eth2"), 3);
    it[0].point = 2;
    it[1].point = 1;
}

static tb_heartbeat_t s_golden_hb(void)
{
    tb_heartbeat_t hb;
    memset(&hb, 0, sizeof hb);
    hb.state = TB_SRC_RUNNING;
    hb.pcap_recv = 1000;
    hb.pcap_drop = 2;
    hb.packets = 998;
    hb.batches = 10;
    hb.bus_drops = 1;
    hb.decode_errors = 3;
    hb.files_skipped = 2;
    return hb;
}

static tb_eos_t s_golden_eos(void)
{
    tb_eos_t e;
    memset(&e, 0, sizeof e);
    e.packets = 998;
    e.first_seq = 1;
    e.batches = 10;
    strcpy(e.detail, "end of file");
    return e;
}

/* Read a file of tests/data into a malloc'd buffer. */
static uint8_t *s_load(const char *rel, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", TB_TEST_DATA, rel);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *buf = malloc(4096);
    assert_non_null(buf);
    *len = fread(buf, 1, 4096, f);
    assert_true(feof(f));
    fclose(f);
    return buf;
}

/* ----------------------------------------------------------- comparing */

static void s_assert_summary_eq(const tb_summary_t *a, const tb_summary_t *b)
{
    assert_true(a->ts_ns == b->ts_ns);
    assert_int_equal(a->wire_len, b->wire_len);
    assert_int_equal(a->cap_len, b->cap_len);
    assert_int_equal(a->family, b->family);
    assert_int_equal(a->proto, b->proto);
    assert_int_equal(a->tcp_flags, b->tcp_flags);
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->sport, b->sport);
    assert_int_equal(a->dport, b->dport);
    assert_int_equal(a->vlan, b->vlan);
    assert_int_equal(a->ethertype, b->ethertype);
    assert_memory_equal(a->src, b->src, 16);
    assert_memory_equal(a->dst, b->dst, 16);
    assert_int_equal(a->point, b->point);
}

static void s_assert_header_eq(const tb_wire_header_t *a, const tb_wire_header_t *b)
{
    assert_int_equal(a->type, b->type);
    assert_string_equal(a->probe_id, b->probe_id);
    assert_true(a->boot_ns == b->boot_ns);
    assert_string_equal(a->stream, b->stream);
    assert_true(a->seq == b->seq);
}

static void s_assert_hb_eq(const tb_heartbeat_t *a, const tb_heartbeat_t *b)
{
    assert_int_equal(a->state, b->state);
    assert_true(a->pcap_recv == b->pcap_recv);
    assert_true(a->pcap_drop == b->pcap_drop);
    assert_true(a->pcap_ifdrop == b->pcap_ifdrop);
    assert_true(a->packets == b->packets);
    assert_true(a->batches == b->batches);
    assert_true(a->bus_drops == b->bus_drops);
    assert_true(a->decode_errors == b->decode_errors);
    assert_true(a->sampled_out == b->sampled_out);
    assert_true(a->files_skipped == b->files_skipped);
    assert_string_equal(a->detail, b->detail);
}

static void s_assert_eos_eq(const tb_eos_t *a, const tb_eos_t *b)
{
    assert_true(a->packets == b->packets);
    assert_true(a->batches == b->batches);
    assert_int_equal(a->error, b->error);
    assert_string_equal(a->detail, b->detail);
}

static void s_assert_msg_eq(const tb_wire_msg_t *a, const tb_wire_msg_t *b)
{
    s_assert_header_eq(&a->hdr, &b->hdr);
    assert_int_equal(a->count, b->count);
    for (size_t i = 0; i < a->count; i++) {
        s_assert_summary_eq(&a->items[i], &b->items[i]);
    }
    s_assert_hb_eq(&a->hb, &b->hb);
    s_assert_eos_eq(&a->eos, &b->eos);
}

/* Encode a decoded message again. */
static int s_reencode(const tb_wire_msg_t *m, uint8_t *out, size_t cap, size_t *len)
{
    switch (m->hdr.type) {
    case TB_MSG_BATCH:
        return tb_wire_encode_batch_points(&m->hdr, m->items, m->count, &m->points, out, cap,
                                           len);
    case TB_MSG_HEARTBEAT:
        return tb_wire_encode_heartbeat(&m->hdr, &m->hb, out, cap, len);
    default:
        return tb_wire_encode_eos(&m->hdr, &m->eos, out, cap, len);
    }
}

/* --------------------------------------------------------- golden tests */

static void test_golden_encode(void **state)
{
    (void)state;
    uint8_t out[1024];
    size_t len = 0;
    tb_summary_t it[3];
    s_golden_items(it);
    tb_wire_header_t h = s_header("01::10:01", 42);
    assert_int_equal(tb_wire_encode_batch(&h, it, 3, out, sizeof out, &len), 0);
    assert_int_equal(len, sizeof k_batch);
    assert_memory_equal(out, k_batch, len);

    h = s_header("eth0", 7);
    tb_heartbeat_t hb = s_golden_hb();
    assert_int_equal(tb_wire_encode_heartbeat(&h, &hb, out, sizeof out, &len), 0);
    assert_int_equal(len, sizeof k_heartbeat);
    assert_memory_equal(out, k_heartbeat, len);

    h = s_header("file:/a.pcap", 11);
    tb_eos_t e = s_golden_eos();
    assert_int_equal(tb_wire_encode_eos(&h, &e, out, sizeof out, &len), 0);
    assert_int_equal(len, sizeof k_eos);
    assert_memory_equal(out, k_eos, len);
}

static void test_golden_files(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        const uint8_t *bytes;
        size_t len;
    } g[] = {
        {"wire/batch.bin", k_batch, sizeof k_batch},
        {"wire/heartbeat.bin", k_heartbeat, sizeof k_heartbeat},
        {"wire/eos.bin", k_eos, sizeof k_eos},
        {"wire/batch_points.bin", k_batch_points, sizeof k_batch_points},
    };
    for (size_t i = 0; i < N(g); i++) {
        size_t len;
        uint8_t *buf = s_load(g[i].file, &len);
        assert_int_equal(len, g[i].len);
        assert_memory_equal(buf, g[i].bytes, len);
        free(buf);
    }
}

static void test_golden_decode(void **state)
{
    (void)state;
    size_t len;
    tb_summary_t want[3], got[8];
    tb_wire_msg_t m;
    s_golden_items(want);

    tb_wire_header_t h = s_header("01::10:01", 42);
    h.type = TB_MSG_BATCH;
    /* The batch as written, and as tests/data/wire/batch_smallest.bin: with
     * every integer in its smallest encoding, as encoders before the 16-bit
     * lengths and ports wrote it (and as any msgpack library may). */
    static const char *const batches[] = {"wire/batch.bin", "wire/batch_smallest.bin"};
    uint8_t *buf;
    for (size_t b = 0; b < N(batches); b++) {
        buf = s_load(batches[b], &len);
        if (b == 1) {
            /* The file holds what its name says: 15 bytes fewer, summary 1's
             * lengths (after the envelope's 26 bytes, the summary's array
             * and its 9 of ts_ns) as positive fixints. */
            assert_int_equal(len, sizeof k_batch - 15);
            assert_int_equal(k_batch[37], 0xcd);
            assert_int_equal(buf[37], 0x3c);
            assert_int_equal(buf[38], 0x3c);
        }
        assert_int_equal(tb_wire_decode(buf, len, &m, got, N(got)), 0);
        s_assert_header_eq(&m.hdr, &h);
        assert_ptr_equal(m.items, got);
        assert_int_equal(m.count, 3);
        for (size_t i = 0; i < 3; i++) {
            s_assert_summary_eq(&got[i], &want[i]);
        }
        free(buf);
    }

    buf = s_load("wire/heartbeat.bin", &len);
    assert_int_equal(tb_wire_decode(buf, len, &m, got, N(got)), 0);
    h = s_header("eth0", 7);
    h.type = TB_MSG_HEARTBEAT;
    s_assert_header_eq(&m.hdr, &h);
    tb_heartbeat_t hb = s_golden_hb();
    s_assert_hb_eq(&m.hb, &hb);
    assert_int_equal(m.count, 0);
    free(buf);

    buf = s_load("wire/eos.bin", &len);
    assert_int_equal(tb_wire_decode(buf, len, &m, NULL, 0), 0);
    h = s_header("file:/a.pcap", 11);
    h.type = TB_MSG_EOS;
    s_assert_header_eq(&m.hdr, &h);
    tb_eos_t e = s_golden_eos();
    s_assert_eos_eq(&m.eos, &e);
    free(buf);
}

/* msgpack-c's own unpacker, an independent decoder, reads the golden batch
 * as the values the format document promises. */
static void s_assert_obj_uint(const msgpack_object *o, uint64_t v)
{
    assert_int_equal(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_true(o->via.u64 == v);
}

static void s_assert_obj_str(const msgpack_object *o, const char *s)
{
    assert_int_equal(o->type, MSGPACK_OBJECT_STR);
    assert_int_equal(o->via.str.size, strlen(s));
    assert_memory_equal(o->via.str.ptr, s, strlen(s));
}

static void test_golden_msgpack_c_oracle(void **state)
{
    (void)state;
    tb_summary_t want[3];
    s_golden_items(want);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, (const char *)k_batch, sizeof k_batch, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, sizeof k_batch);
    const msgpack_object *env = &u.data;
    assert_int_equal(env->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(env->via.array.size, 8);
    const msgpack_object *e = env->via.array.ptr;
    s_assert_obj_uint(&e[7], 3); /* run */
    s_assert_obj_uint(&e[0], 1);
    s_assert_obj_uint(&e[1], TB_MSG_BATCH);
    s_assert_obj_str(&e[2], "p1");
    s_assert_obj_uint(&e[3], BOOT_NS);
    s_assert_obj_str(&e[4], "01::10:01");
    s_assert_obj_uint(&e[5], 42);
    assert_int_equal(e[6].type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(e[6].via.array.size, 3);
    for (size_t i = 0; i < 3; i++) {
        const msgpack_object *s = &e[6].via.array.ptr[i];
        const tb_summary_t *w = &want[i];
        size_t alen = w->family == 4 ? 4 : w->family == 6 ? 16 : 0;
        assert_int_equal(s->type, MSGPACK_OBJECT_ARRAY);
        assert_int_equal(s->via.array.size, 13);
        const msgpack_object *f = s->via.array.ptr;
        s_assert_obj_uint(&f[0], w->ts_ns);
        s_assert_obj_uint(&f[1], w->wire_len);
        s_assert_obj_uint(&f[2], w->cap_len);
        s_assert_obj_uint(&f[3], w->family);
        s_assert_obj_uint(&f[4], w->proto);
        assert_int_equal(f[5].type, MSGPACK_OBJECT_BIN);
        assert_int_equal(f[5].via.bin.size, alen);
        assert_memory_equal(f[5].via.bin.ptr, w->src, alen);
        assert_int_equal(f[6].type, MSGPACK_OBJECT_BIN);
        assert_int_equal(f[6].via.bin.size, alen);
        assert_memory_equal(f[6].via.bin.ptr, w->dst, alen);
        s_assert_obj_uint(&f[7], w->sport);
        s_assert_obj_uint(&f[8], w->dport);
        s_assert_obj_uint(&f[9], w->tcp_flags);
        s_assert_obj_uint(&f[10], w->vlan);
        s_assert_obj_uint(&f[11], w->flags);
        s_assert_obj_uint(&f[12], w->ethertype);
    }
    msgpack_unpacked_destroy(&u);

    /* The heartbeat and eos are well-formed msgpack too, of their length. */
    msgpack_unpacked_init(&u);
    off = 0;
    assert_int_equal(msgpack_unpack_next(&u, (const char *)k_heartbeat, sizeof k_heartbeat, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, sizeof k_heartbeat);
    assert_int_equal(u.data.via.array.ptr[6].type, MSGPACK_OBJECT_MAP);
    assert_int_equal(u.data.via.array.ptr[6].via.map.size, 11);
    off = 0;
    assert_int_equal(msgpack_unpack_next(&u, (const char *)k_eos, sizeof k_eos, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, sizeof k_eos);
    msgpack_unpacked_destroy(&u);
}

/* ---------------------------------------------------------- round trips */

static tb_summary_t s_max_summary(uint8_t family)
{
    tb_summary_t s;
    memset(&s, 0, sizeof s);
    s.ts_ns = UINT64_MAX;
    s.wire_len = UINT32_MAX;
    s.cap_len = UINT32_MAX;
    s.family = family;
    s.proto = UINT8_MAX;
    size_t alen = family == 4 ? 4 : family == 6 ? 16 : 0;
    memset(s.src, 0xff, alen);
    memset(s.dst, 0xfe, alen);
    s.sport = UINT16_MAX;
    s.dport = UINT16_MAX;
    s.tcp_flags = UINT8_MAX;
    s.vlan = 4095;
    s.flags = TB_SUM_VLAN | TB_SUM_PORTS | TB_SUM_TRUNC | TB_SUM_MALFORMED | TB_SUM_FRAGMENT |
              TB_SUM_TCPFLAGS;
    s.ethertype = UINT16_MAX;
    return s;
}

static void s_long_name(char *dst, char c)
{
    memset(dst, c, TB_STREAM_MAX);
    dst[TB_STREAM_MAX] = '\0';
}

static void test_roundtrip_batch_max(void **state)
{
    (void)state;
    tb_summary_t in[6], out[6];
    in[0] = s_max_summary(4);
    in[1] = s_max_summary(6);
    in[2] = s_max_summary(0);
    memset(&in[3], 0, sizeof in[3]); /* all zero */
    in[4] = s_max_summary(6);
    in[4].ts_ns = 0;
    in[5] = s_max_summary(4);
    in[5].wire_len = 128;
    tb_wire_header_t h;
    memset(&h, 0, sizeof h);
    s_long_name(h.probe_id, 'P');
    s_long_name(h.stream, '9');
    h.boot_ns = UINT64_MAX;
    h.seq = UINT64_MAX;
    h.type = TB_MSG_BATCH;
    uint8_t buf[TB_WIRE_HEADER_MAX_BYTES + N(in) * TB_WIRE_SUMMARY_MAX_BYTES];
    size_t len;
    assert_int_equal(tb_wire_encode_batch(&h, in, N(in), buf, sizeof buf, &len), 0);
    tb_wire_msg_t m;
    assert_int_equal(tb_wire_decode(buf, len, &m, out, N(out)), 0);
    s_assert_header_eq(&m.hdr, &h);
    assert_int_equal(m.count, N(in));
    for (size_t i = 0; i < N(in); i++) {
        s_assert_summary_eq(&out[i], &in[i]);
    }
    /* Every capacity short of the size fails cleanly. */
    for (size_t cap = 0; cap < len; cap++) {
        size_t l2 = 12345;
        assert_int_equal(tb_wire_encode_batch(&h, in, N(in), buf, cap, &l2), TB_ELIMIT);
        assert_int_equal(l2, 12345);
    }
    /* The empty batch. */
    assert_int_equal(tb_wire_encode_batch(&h, NULL, 0, buf, sizeof buf, &len), 0);
    assert_int_equal(tb_wire_decode(buf, len, &m, NULL, 0), 0);
    assert_int_equal(m.count, 0);
}

/* Summaries of the usual shapes (read at fixed offsets) and of every
 * shape beside them: each field at, just below and just above the values
 * where its encoding changes, in batches where each summary lies early
 * (plenty of bytes after it) and last. All decode to what was encoded. */
static void test_roundtrip_every_shape(void **state)
{
    (void)state;
    enum { N_SUM = 400 };
    static const uint64_t ts[] = {0, 127, 128, UINT32_MAX, 1ull << 32, 1764600000123456789ull};
    static const uint32_t len[] = {0, 60, 127, 128, 1514, 65535, 65536, UINT32_MAX};
    static const uint8_t families[] = {TB_FAMILY_IPV4, TB_FAMILY_IPV6, TB_FAMILY_NONE};
    static const uint8_t u8[] = {0, 6, 17, 127, 128, 255};
    static const uint16_t u16[] = {0, 53, 127, 128, 443, 65535};
    static const uint16_t vlan[] = {0, 1, 127, 128, 4095};
    static const uint8_t flags[] = {0, TB_SUM_PORTS, TB_SUM_PORTS | TB_SUM_TCPFLAGS,
                                    TB_SUM_VLAN | TB_SUM_PORTS | TB_SUM_FRAGMENT,
                                    TB_SUM_TRUNC | TB_SUM_MALFORMED};
    static const uint16_t eth[] = {0, 127, 128, 0x0800, 0x86dd, 0xffff};
    static tb_summary_t in[N_SUM], out[N_SUM];
    uint64_t rng = 12345;
#define PICK(a) (a)[((rng = rng * 6364136223846793005ull + 1442695040888963407ull) >> 33) % N(a)]
    for (size_t i = 0; i < N_SUM; i++) {
        tb_summary_t *x = &in[i];
        memset(x, 0, sizeof *x);
        /* Every other summary of the usual shape, varied only in value. */
        int usual = i % 2 == 0;
        x->ts_ns = usual ? 1764600000000000000ull + i * 977 : PICK(ts);
        x->wire_len = usual ? 60 + (uint32_t)(i * 37 % 1455) : PICK(len);
        x->cap_len = usual ? x->wire_len : PICK(len);
        x->family = usual ? (i % 4 == 0 ? TB_FAMILY_IPV4 : TB_FAMILY_IPV6) : PICK(families);
        x->proto = usual ? (i % 3 == 0 ? 6 : 17) : PICK(u8);
        size_t alen = x->family == TB_FAMILY_IPV4 ? 4 : x->family == TB_FAMILY_IPV6 ? 16 : 0;
        for (size_t k = 0; k < sizeof x->src; k++) {
            x->src[k] = k < alen ? (uint8_t)(i * 7 + k) : 0;
            x->dst[k] = k < alen ? (uint8_t)(i * 13 + k * 3) : 0;
        }
        x->sport = usual ? (uint16_t)(i * 101) : PICK(u16);
        x->dport = usual ? (uint16_t)(i * 7) : PICK(u16);
        x->tcp_flags = usual ? (uint8_t)(i % 0x80) : PICK(u8);
        x->vlan = usual ? (uint16_t)(i % 8 == 0 ? 200 + i : i % 100) : PICK(vlan);
        x->flags = usual ? TB_SUM_PORTS | TB_SUM_TCPFLAGS : PICK(flags);
        x->ethertype = usual ? 0x0800 : PICK(eth);
    }
#undef PICK
    tb_wire_header_t h = s_header("shapes", 1);
    h.type = TB_MSG_BATCH;
    static uint8_t buf[TB_WIRE_HEADER_MAX_BYTES + N_SUM * TB_WIRE_SUMMARY_MAX_BYTES];
    for (size_t n = 1; n <= N_SUM; n += n < 16 ? 1 : 37) {
        size_t blen;
        assert_int_equal(tb_wire_encode_batch(&h, in, n, buf, sizeof buf, &blen), 0);
        tb_wire_msg_t m;
        memset(out, 0, sizeof out);
        assert_int_equal(tb_wire_decode(buf, blen, &m, out, N_SUM), 0);
        assert_int_equal(m.count, n);
        for (size_t i = 0; i < n; i++) {
            s_assert_summary_eq(&out[i], &in[i]);
        }
    }
    /* The last one alone, at a batch's end. */
    for (size_t i = 0; i < N_SUM; i++) {
        size_t blen;
        assert_int_equal(tb_wire_encode_batch(&h, &in[i], 1, buf, sizeof buf, &blen), 0);
        tb_wire_msg_t m;
        tb_summary_t one;
        assert_int_equal(tb_wire_decode(buf, blen, &m, &one, 1), 0);
        s_assert_summary_eq(&one, &in[i]);
    }
}

/* The documented size bound holds for the largest batch of the largest
 * summaries, and that batch decodes. */
static void test_batch_size_bound(void **state)
{
    (void)state;
    size_t n = TB_WIRE_MAX_BATCH;
    size_t cap = TB_WIRE_HEADER_MAX_BYTES + n * TB_WIRE_SUMMARY_MAX_BYTES;
    tb_summary_t *items = malloc(n * sizeof *items);
    tb_summary_t *back = malloc(n * sizeof *back);
    uint8_t *buf = malloc(cap);
    assert_non_null(items);
    assert_non_null(back);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++) {
        items[i] = s_max_summary(6);
    }
    tb_wire_header_t h;
    memset(&h, 0, sizeof h);
    s_long_name(h.probe_id, 'x');
    s_long_name(h.stream, 'y');
    h.boot_ns = UINT64_MAX;
    h.seq = UINT64_MAX;
    size_t len;
    assert_int_equal(tb_wire_encode_batch(&h, items, n, buf, cap, &len), 0);
    assert_true(len <= cap);
    assert_true(len <= TB_WIRE_MAX_MSG);
    tb_wire_msg_t m;
    assert_int_equal(tb_wire_decode(buf, len, &m, back, n), 0);
    assert_int_equal(m.count, n);
    s_assert_summary_eq(&back[n - 1], &items[n - 1]);
    /* One more summary than a batch may hold. */
    assert_int_equal(tb_wire_encode_batch(&h, items, n + 1, buf, cap, &len), TB_ELIMIT);
    free(items);
    free(back);
    free(buf);
}

static void test_roundtrip_heartbeat_eos(void **state)
{
    (void)state;
    uint8_t buf[1024];
    size_t len;
    tb_wire_msg_t m;
    tb_wire_header_t h = s_header("01::10:01", 0);
    h.type = TB_MSG_HEARTBEAT;
    for (int st = 0; st < TB_SRC_STATE_COUNT; st++) {
        tb_heartbeat_t hb;
        memset(&hb, 0, sizeof hb);
        hb.state = (uint8_t)st;
        hb.pcap_recv = UINT64_MAX;
        hb.pcap_drop = UINT64_MAX - 1;
        hb.pcap_ifdrop = 1ull << 32;
        hb.packets = 65536;
        hb.batches = 255;
        hb.bus_drops = 128;
        hb.decode_errors = 127;
        memset(hb.detail, 'd', TB_DETAIL_MAX); /* longest detail */
        hb.detail[TB_DETAIL_MAX] = '\0';
        assert_int_equal(tb_wire_encode_heartbeat(&h, &hb, buf, sizeof buf, &len), 0);
        assert_int_equal(tb_wire_decode(buf, len, &m, NULL, 0), 0);
        s_assert_header_eq(&m.hdr, &h);
        s_assert_hb_eq(&m.hb, &hb);
    }
    h.type = TB_MSG_EOS;
    tb_eos_t e;
    memset(&e, 0, sizeof e);
    e.packets = UINT64_MAX;
    e.batches = 1;
    e.error = 1;
    strcpy(e.detail, "read error: \"disk\" \xc3\xa9"); /* UTF-8 passes through */
    assert_int_equal(tb_wire_encode_eos(&h, &e, buf, sizeof buf, &len), 0);
    assert_int_equal(tb_wire_decode(buf, len, &m, NULL, 0), 0);
    s_assert_header_eq(&m.hdr, &h);
    s_assert_eos_eq(&m.eos, &e);
}

static void test_encode_refuses_invalid(void **state)
{
    (void)state;
    uint8_t buf[1024];
    size_t len;
    tb_summary_t it[3];
    s_golden_items(it);
    tb_wire_header_t h = s_header("eth0", 1);

    it[0].family = 5;
    assert_int_equal(tb_wire_encode_batch(&h, it, 3, buf, sizeof buf, &len), TB_EINVAL);
    s_golden_items(it);
    it[1].vlan = 4096;
    assert_int_equal(tb_wire_encode_batch(&h, it, 3, buf, sizeof buf, &len), TB_EINVAL);
    s_golden_items(it);

    strcpy(h.stream, "a b");
    assert_int_equal(tb_wire_encode_batch(&h, it, 3, buf, sizeof buf, &len), TB_EINVAL);
    h = s_header("", 1);
    assert_int_equal(tb_wire_encode_batch(&h, it, 3, buf, sizeof buf, &len), TB_EINVAL);
    h = s_header("eth0", 1);
    strcpy(h.probe_id, "p\n");
    assert_int_equal(tb_wire_encode_batch(&h, it, 3, buf, sizeof buf, &len), TB_EINVAL);
    h = s_header("eth0", 1);
    memset(h.stream, 'a', sizeof h.stream); /* no terminator */
    assert_int_equal(tb_wire_encode_batch(&h, it, 3, buf, sizeof buf, &len), TB_EINVAL);

    h = s_header("eth0", 1);
    tb_heartbeat_t hb = s_golden_hb();
    hb.state = TB_SRC_STATE_COUNT;
    assert_int_equal(tb_wire_encode_heartbeat(&h, &hb, buf, sizeof buf, &len), TB_EINVAL);
    hb = s_golden_hb();
    memset(hb.detail, 'x', sizeof hb.detail); /* no terminator */
    assert_int_equal(tb_wire_encode_heartbeat(&h, &hb, buf, sizeof buf, &len), TB_EINVAL);
    hb = s_golden_hb();
    assert_int_equal(tb_wire_encode_heartbeat(&h, &hb, buf, 20, &len), TB_ELIMIT);

    tb_eos_t e = s_golden_eos();
    e.error = 2;
    assert_int_equal(tb_wire_encode_eos(&h, &e, buf, sizeof buf, &len), TB_EINVAL);
    e = s_golden_eos();
    assert_int_equal(tb_wire_encode_eos(&h, &e, buf, 40, &len), TB_ELIMIT);
}

/* ------------------------------------------------------ hand-made bodies */

/* A summary with arbitrary (possibly invalid) field values. */
typedef struct {
    uint64_t ts, wire_len, cap_len, family, proto;
    uint32_t src_len, dst_len;
    uint64_t sport, dport, tcp_flags, vlan, flags, ethertype;
    int extra; /* trailing elements appended */
    int style; /* integer encodings: RAW_SMALLEST, RAW_WIDEST, RAW_SIGNED */
} raw_sum_t;

/* RAW_PROBE: as a probe writes them (the timestamp in 64 bits, lengths,
 * ports and ethertype in 16 bits at least, the rest smallest): the shapes
 * the decoder reads at fixed offsets. */
enum { RAW_SMALLEST, RAW_WIDEST, RAW_SIGNED, RAW_PROBE };

static raw_sum_t s_raw_ok(void)
{
    raw_sum_t r = {1, 60, 60, 4, 6, 4, 4, 1, 2, 0, 0, 0, 0x0800, 0, RAW_SMALLEST};
    return r;
}

/* An unsigned value in the smallest encoding, in the widest (uint 64), or
 * as a signed integer (int 64): all the same number to a reader. */
static void s_pack_u(msgpack_packer *pk, uint64_t v, int style)
{
    if (style == RAW_WIDEST) {
        msgpack_pack_fix_uint64(pk, v);
    } else if (style == RAW_SIGNED && v <= INT64_MAX) {
        msgpack_pack_fix_int64(pk, (int64_t)v);
    } else {
        msgpack_pack_uint64(pk, v);
    }
}

/* A length, port or ethertype: as s_pack_u, or in 16 bits at least. */
static void s_pack_u16up(msgpack_packer *pk, uint64_t v, int style)
{
    if (style == RAW_PROBE && v <= UINT16_MAX) {
        msgpack_pack_fix_uint16(pk, (uint16_t)v);
    } else if (style == RAW_PROBE && v <= UINT32_MAX) {
        msgpack_pack_fix_uint32(pk, (uint32_t)v);
    } else {
        s_pack_u(pk, v, style);
    }
}

static void s_pack_raw(msgpack_packer *pk, const raw_sum_t *r)
{
    static const uint8_t addr[16] = {10, 0, 0, 1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    msgpack_pack_array(pk, 13 + (size_t)r->extra);
    if (r->style == RAW_PROBE) {
        msgpack_pack_fix_uint64(pk, r->ts);
    } else {
        s_pack_u(pk, r->ts, r->style);
    }
    s_pack_u16up(pk, r->wire_len, r->style);
    s_pack_u16up(pk, r->cap_len, r->style);
    s_pack_u(pk, r->family, r->style);
    s_pack_u(pk, r->proto, r->style);
    msgpack_pack_bin_with_body(pk, addr, r->src_len);
    msgpack_pack_bin_with_body(pk, addr, r->dst_len);
    s_pack_u16up(pk, r->sport, r->style);
    s_pack_u16up(pk, r->dport, r->style);
    s_pack_u(pk, r->tcp_flags, r->style);
    s_pack_u(pk, r->vlan, r->style);
    s_pack_u(pk, r->flags, r->style);
    s_pack_u16up(pk, r->ethertype, r->style);
    for (int i = 0; i < r->extra; i++) {
        /* Things a later revision might append: a string, a map, an array. */
        if (i == 0) {
            msgpack_pack_uint8(pk, 0); /* the 14th: no point */
        } else if (i % 3 == 0) {
            tb_mp_pack_cstr(pk, "future");
        } else if (i % 3 == 1) {
            msgpack_pack_map(pk, 1);
            msgpack_pack_uint8(pk, 1);
            msgpack_pack_array(pk, 0);
        } else {
            msgpack_pack_double(pk, 0.5);
        }
    }
}

/* Envelope with arbitrary version/type/element count; no payload. */
static void s_pack_env(msgpack_packer *pk, size_t nelem, uint64_t version, uint64_t type,
                       const char *probe, const char *stream)
{
    msgpack_pack_array(pk, nelem);
    msgpack_pack_uint64(pk, version);
    msgpack_pack_uint64(pk, type);
    tb_mp_pack_cstr(pk, probe);
    msgpack_pack_uint64(pk, BOOT_NS);
    tb_mp_pack_cstr(pk, stream);
    msgpack_pack_uint64(pk, 5);
}

/* A batch of `r` followed by `after` good summaries in the smallest
 * encoding; decodes it, and when it decodes, checks the good ones. */
static int s_decode_raw_before(const raw_sum_t *r, size_t after, tb_summary_t *out)
{
    uint8_t buf[4096];
    tb_mp_buf_t b;
    msgpack_packer pk;
    tb_mp_buf_init(&b, &pk, buf, sizeof buf);
    s_pack_env(&pk, 7, 1, 1, "p", "s");
    msgpack_pack_array(&pk, 1 + after);
    s_pack_raw(&pk, r);
    raw_sum_t ok = s_raw_ok();
    ok.sport = 4343;
    for (size_t i = 0; i < after; i++) {
        s_pack_raw(&pk, &ok);
    }
    assert_false(b.overflow);
    tb_wire_msg_t m;
    tb_summary_t items[16];
    memset(items, 0, sizeof items); /* padding compared too */
    assert_true(after < 16);
    int rc = tb_wire_decode(buf, b.len, &m, items, 16);
    if (rc == 0) {
        assert_int_equal(m.count, 1 + after);
        for (size_t i = 1; i <= after; i++) {
            assert_int_equal(items[i].sport, 4343);
            assert_int_equal(items[i].ethertype, 0x0800);
        }
        if (out != NULL) {
            *out = items[0];
        }
    }
    return rc;
}

/* A batch of one summary `r`; returns the decode result. The decoder reads
 * a summary with plenty of bytes after it by a fast path and the last ones
 * of a body with every bound checked: `r` is decoded both ways (alone, and
 * first of eight), in each integer encoding, and both must agree. */
static int s_decode_raw(const raw_sum_t *r, tb_summary_t *out)
{
    tb_summary_t first;
    int rc = s_decode_raw_before(r, 0, out != NULL ? out : &first);
    for (int style = RAW_SMALLEST; style <= RAW_PROBE; style++) {
        raw_sum_t v = *r;
        v.style = style;
        tb_summary_t alone, lead;
        memset(&alone, 0, sizeof alone);
        memset(&lead, 0, sizeof lead);
        assert_int_equal(s_decode_raw_before(&v, 0, &alone), rc);
        assert_int_equal(s_decode_raw_before(&v, 7, &lead), rc);
        if (rc == 0) {
            assert_memory_equal(&alone, &lead, sizeof alone);
            assert_memory_equal(&alone, out != NULL ? out : &first, sizeof alone);
        }
    }
    return rc;
}

static void test_summary_validation(void **state)
{
    (void)state;
    raw_sum_t r;
    tb_summary_t s;

    r = s_raw_ok();
    assert_int_equal(s_decode_raw(&r, &s), 0);
    assert_memory_equal(s.src, "\x0a\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
                        16); /* IPv4: the rest is zero */

#define EXPECT_RAW(field, value, want)                                                             \
    do {                                                                                           \
        r = s_raw_ok();                                                                            \
        r.field = (value);                                                                         \
        assert_int_equal(s_decode_raw(&r, NULL), (want));                                          \
    } while (0)

    EXPECT_RAW(wire_len, UINT32_MAX, 0);
    EXPECT_RAW(wire_len, (uint64_t)UINT32_MAX + 1, TB_EPROTO);
    EXPECT_RAW(cap_len, (uint64_t)UINT32_MAX + 1, TB_EPROTO);
    EXPECT_RAW(family, 5, TB_EPROTO);
    EXPECT_RAW(family, 260, TB_EPROTO); /* 260 & 0xff == 4 */
    EXPECT_RAW(proto, 255, 0);
    EXPECT_RAW(proto, 256, TB_EPROTO);
    EXPECT_RAW(src_len, 16, TB_EPROTO); /* family 4 with 16 bytes */
    EXPECT_RAW(dst_len, 0, TB_EPROTO);
    EXPECT_RAW(dst_len, 5, TB_EPROTO);
    EXPECT_RAW(sport, 65535, 0);
    EXPECT_RAW(sport, 65536, TB_EPROTO);
    EXPECT_RAW(dport, 65536, TB_EPROTO);
    EXPECT_RAW(tcp_flags, 256, TB_EPROTO);
    EXPECT_RAW(vlan, 4095, 0);
    EXPECT_RAW(vlan, 4096, TB_EPROTO);
    EXPECT_RAW(flags, 256, TB_EPROTO);
    EXPECT_RAW(ethertype, 65536, TB_EPROTO);
    EXPECT_RAW(ts, UINT64_MAX, 0);
#undef EXPECT_RAW

    /* Family and address length agree: 0/0, 6/16. */
    r = s_raw_ok();
    r.family = 0;
    r.src_len = r.dst_len = 0;
    assert_int_equal(s_decode_raw(&r, &s), 0);
    r.src_len = 4;
    assert_int_equal(s_decode_raw(&r, &s), TB_EPROTO);
    r = s_raw_ok();
    r.family = 6;
    r.src_len = r.dst_len = 16;
    assert_int_equal(s_decode_raw(&r, &s), 0);
    assert_int_equal(s.src[15], 16);
    r.dst_len = 4;
    assert_int_equal(s_decode_raw(&r, &s), TB_EPROTO);

    /* Unknown flag bits are masked off, known ones kept. */
    r = s_raw_ok();
    r.flags = 0xff;
    assert_int_equal(s_decode_raw(&r, &s), 0);
    assert_int_equal(s.flags, 0x3f);

    /* Extra trailing summary elements are skipped. */
    r = s_raw_ok();
    r.extra = 4;
    r.sport = 4242;
    assert_int_equal(s_decode_raw(&r, &s), 0);
    assert_int_equal(s.sport, 4242);
}

static void test_summary_shape(void **state)
{
    (void)state;
    uint8_t buf[256];
    tb_mp_buf_t b;
    msgpack_packer pk;
    tb_wire_msg_t m;
    tb_summary_t s[2];

    /* A summary of 12 elements. */
    tb_mp_buf_init(&b, &pk, buf, sizeof buf);
    s_pack_env(&pk, 7, 1, 1, "p", "s");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 12);
    for (int i = 0; i < 12; i++) {
        msgpack_pack_uint8(&pk, 0);
    }
    assert_int_equal(tb_wire_decode(buf, b.len, &m, s, 2), TB_EPROTO);

    /* A summary that is a map. */
    tb_mp_buf_init(&b, &pk, buf, sizeof buf);
    s_pack_env(&pk, 7, 1, 1, "p", "s");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 0);
    assert_int_equal(tb_wire_decode(buf, b.len, &m, s, 2), TB_EPROTO);

    /* A negative port. */
    tb_mp_buf_init(&b, &pk, buf, sizeof buf);
    s_pack_env(&pk, 7, 1, 1, "p", "s");
    msgpack_pack_array(&pk, 1);
    raw_sum_t r = s_raw_ok();
    r.extra = 0;
    s_pack_raw(&pk, &r);
    /* The summary ends with sport 1, dport 2, tcp_flags 0, vlan 0, flags 0,
     * ethertype (0xcd 0x08 0x00): sport is 8 bytes from the end. */
    size_t at = b.len - 8;
    assert_int_equal(buf[at], 0x01);
    buf[at] = 0xff; /* -1 */
    assert_int_equal(tb_wire_decode(buf, b.len, &m, s, 2), TB_ELIMIT);

    /* A payload that is not an array. */
    tb_mp_buf_init(&b, &pk, buf, sizeof buf);
    s_pack_env(&pk, 7, 1, 1, "p", "s");
    msgpack_pack_map(&pk, 0);
    assert_int_equal(tb_wire_decode(buf, b.len, &m, s, 2), TB_EPROTO);
}

static void test_envelope(void **state)
{
    (void)state;
    uint8_t buf[512];
    tb_mp_buf_t b;
    msgpack_packer pk;
    tb_wire_msg_t m;
    tb_summary_t s[4];

    /* Wrong versions: judged before anything else. */
    static const uint64_t bad_versions[] = {0, 2, 255, UINT64_MAX};
    for (size_t i = 0; i < N(bad_versions); i++) {
        tb_mp_buf_init(&b, &pk, buf, sizeof buf);
        s_pack_env(&pk, 7, bad_versions[i], 1, "p", "s");
        msgpack_pack_array(&pk, 0);
        assert_int_equal(tb_wire_decode(buf, b.len, &m, s, 4), TB_EVERSION);
    }
    static const uint8_t v2_short[] = {0x92, 0x02, 0xc0}; /* [2, nil] */
    assert_int_equal(tb_wire_decode(v2_short, sizeof v2_short, &m, s, 4), TB_EVERSION);
    static const uint8_t v_str[] = {0x91, 0xa1, '1'}; /* ["1"] */
    assert_int_equal(tb_wire_decode(v_str, sizeof v_str, &m, s, 4), TB_EVERSION);
    static const uint8_t v_neg[] = {0x91, 0xff}; /* [-1] */
    assert_int_equal(tb_wire_decode(v_neg, sizeof v_neg, &m, s, 4), TB_EVERSION);

    /* Too short an envelope, not an array, empty array. */
    for (size_t n = 1; n < 7; n++) {
        tb_mp_buf_init(&b, &pk, buf, sizeof buf);
        msgpack_pack_array(&pk, n);
        msgpack_pack_uint8(&pk, 1);
        for (size_t i = 1; i < n; i++) {
            msgpack_pack_uint8(&pk, 1);
        }
        assert_int_equal(tb_wire_decode(buf, b.len, &m, s, 4), TB_EPROTO);
    }
    static const uint8_t empty[] = {0x90};
    assert_int_equal(tb_wire_decode(empty, 1, &m, s, 4), TB_EPROTO);
    static const uint8_t map[] = {0x80};
    assert_int_equal(tb_wire_decode(map, 1, &m, s, 4), TB_EPROTO);
    assert_int_equal(tb_wire_decode(NULL, 0, &m, s, 4), TB_ETRUNC);

    /* Unknown types. */
    static const uint64_t bad_types[] = {0, 4, 1000};
    for (size_t i = 0; i < N(bad_types); i++) {
        tb_mp_buf_init(&b, &pk, buf, sizeof buf);
        s_pack_env(&pk, 7, 1, bad_types[i], "p", "s");
        msgpack_pack_array(&pk, 0);
        assert_int_equal(tb_wire_decode(buf, b.len, &m, s, 4), TB_EPROTO);
    }

    /* Extra envelope elements are ignored (forward compatibility). */
    tb_mp_buf_init(&b, &pk, buf, sizeof buf);
    s_pack_env(&pk, 11, 1, 3, "p", "s");
    msgpack_pack_map(&pk, 0);
    msgpack_pack_uint64(&pk, 9); /* run */
    tb_mp_pack_cstr(&pk, "future");
    msgpack_pack_map(&pk, 1);
    tb_mp_pack_cstr(&pk, "k");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_nil(&pk);
    msgpack_pack_ext_with_body(&pk, "ab", 2, 1);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    assert_int_equal(tb_wire_decode(buf, b.len, &m, s, 4), 0);
    assert_int_equal(m.hdr.type, TB_MSG_EOS);
    assert_true(m.hdr.seq == 5);
    assert_true(m.hdr.run == 9);
    /* ...but they must be well-formed. */
    assert_int_equal(tb_wire_decode(buf, b.len - 1, &m, s, 4), TB_ETRUNC);

    /* Trailing bytes after the body. */
    uint8_t tail[sizeof k_eos + 1];
    memcpy(tail, k_eos, sizeof k_eos);
    tail[sizeof k_eos] = 0xc0;
    assert_int_equal(tb_wire_decode(tail, sizeof tail, &m, s, 4), TB_EPROTO);
    uint8_t two[2 * sizeof k_eos];
    memcpy(two, k_eos, sizeof k_eos);
    memcpy(two + sizeof k_eos, k_eos, sizeof k_eos);
    assert_int_equal(tb_wire_decode(two, sizeof two, &m, s, 4), TB_EPROTO);

    /* Bodies larger than TB_WIRE_MAX_MSG are refused unread. */
    uint8_t *big = calloc(1, TB_WIRE_MAX_MSG + 1);
    assert_non_null(big);
    memcpy(big, k_eos, sizeof k_eos);
    assert_int_equal(tb_wire_decode(big, TB_WIRE_MAX_MSG + 1, &m, s, 4), TB_ELIMIT);
    free(big);
}

/* ------------------------------------------------------ points (MP/CI) */

static void test_golden_points(void **state)
{
    (void)state;
    tb_summary_t it[2], got[4];
    tb_point_table_t t;
    s_golden_points(it, &t);
    uint8_t out[1024];
    size_t len = 0;
    tb_wire_header_t h = s_header("01::10:01", 43);
    assert_int_equal(tb_wire_encode_batch_points(&h, it, 2, &t, out, sizeof out, &len), 0);
    assert_int_equal(len, sizeof k_batch_points);
    assert_memory_equal(out, k_batch_points, len);

    size_t flen;
    uint8_t *buf = s_load("wire/batch_points.bin", &flen);
    tb_wire_msg_t m;
    assert_int_equal(tb_wire_decode(buf, flen, &m, got, N(got)), 0);
    free(buf);
    h.type = TB_MSG_BATCH;
    s_assert_header_eq(&m.hdr, &h);
    assert_true(m.hdr.run == 3);
    assert_int_equal(m.count, 2);
    s_assert_summary_eq(&got[0], &it[0]);
    s_assert_summary_eq(&got[1], &it[1]);
    assert_int_equal(m.points.n, 2); /* the pairs used, not the third */
    assert_string_equal(m.points.p[got[0].point - 1].ci, "eth1");
    assert_string_equal(m.points.p[got[1].point - 1].ci, "eth0");
    assert_string_equal(m.points.p[0].mp, "mp-7");

    /* msgpack-c reads the 9th envelope element and the 14th of a summary. */
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, (const char *)k_batch_points, sizeof k_batch_points,
                                         &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, sizeof k_batch_points);
    const msgpack_object *e = u.data.via.array.ptr;
    assert_int_equal(u.data.via.array.size, 9);
    assert_int_equal(e[6].via.array.ptr[0].via.array.size, 14);
    s_assert_obj_uint(&e[6].via.array.ptr[0].via.array.ptr[13], 2);
    assert_int_equal(e[8].type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(e[8].via.array.size, 2);
    s_assert_obj_str(&e[8].via.array.ptr[1].via.array.ptr[0], "mp-7");
    s_assert_obj_str(&e[8].via.array.ptr[1].via.array.ptr[1], "eth1");
    msgpack_unpacked_destroy(&u);

    /* A batch naming no point is the plain batch, table or not. */
    tb_summary_t g[3];
    s_golden_items(g);
    h = s_header("01::10:01", 42);
    assert_int_equal(tb_wire_encode_batch_points(&h, g, 3, &t, out, sizeof out, &len), 0);
    assert_int_equal(len, sizeof k_batch);
    assert_memory_equal(out, k_batch, len);
    /* ... and a plain batch decodes with no points. */
    assert_int_equal(tb_wire_decode(k_batch, sizeof k_batch, &m, got, N(got)), 0);
    assert_int_equal(m.points.n, 0);
    for (size_t i = 0; i < m.count; i++) {
        assert_int_equal(got[i].point, 0);
    }
}

static void test_points_roundtrip_full_table(void **state)
{
    (void)state;
    tb_point_table_t t;
    tb_point_table_reset(&t);
    char mp[16], ci[16];
    for (int i = 0; i < TB_POINTS_MAX; i++) {
        snprintf(mp, sizeof mp, "mp%06d", i % 3);
        snprintf(ci, sizeof ci, "ci%06d", i); /* 8 bytes: the longest name */
        assert_int_equal(tb_point_table_intern(&t, mp, ci), i + 1);
    }
    enum { COUNT = 200 };
    static tb_summary_t in[COUNT], out[COUNT];
    for (size_t i = 0; i < COUNT; i++) {
        in[i] = s_max_summary(i % 2 ? 4 : 6);
        in[i].point = (uint16_t)(i % (TB_POINTS_MAX + 1)); /* 0 too */
    }
    tb_wire_header_t h = s_header("eth0", 9);
    static uint8_t buf[TB_WIRE_HEADER_MAX_BYTES + TB_WIRE_POINTS_MAX_BYTES +
                       COUNT * TB_WIRE_SUMMARY_MAX_BYTES];
    size_t len;
    assert_int_equal(tb_wire_encode_batch_points(&h, in, COUNT, &t, buf, sizeof buf, &len), 0);
    tb_wire_msg_t m;
    assert_int_equal(tb_wire_decode(buf, len, &m, out, COUNT), 0);
    assert_int_equal(m.count, COUNT);
    assert_int_equal(m.points.n, TB_POINTS_MAX);
    for (size_t i = 0; i < COUNT; i++) {
        s_assert_summary_eq(&out[i], &in[i]);
    }
    for (size_t i = 0; i < TB_POINTS_MAX; i++) {
        assert_string_equal(m.points.p[i].mp, t.p[i].mp);
        assert_string_equal(m.points.p[i].ci, t.p[i].ci);
    }
    /* The table's bound: everything but the summaries within the two. */
    size_t summaries = 0;
    for (size_t i = 0; i < COUNT; i++) {
        summaries += TB_WIRE_SUMMARY_MAX_BYTES;
    }
    assert_true(len <= TB_WIRE_HEADER_MAX_BYTES + TB_WIRE_POINTS_MAX_BYTES + summaries);
    /* Every capacity short of the size fails cleanly. */
    for (size_t cap = len - 1300; cap < len; cap++) {
        assert_int_equal(tb_wire_encode_batch_points(&h, in, COUNT, &t, buf, cap, &len),
                         TB_ELIMIT);
    }
}

static void test_points_refused(void **state)
{
    (void)state;
    tb_summary_t it[2], got[4];
    tb_point_table_t t;
    s_golden_points(it, &t);
    uint8_t out[1024];
    size_t len;
    tb_wire_header_t h = s_header("01::10:01", 43);
    tb_wire_msg_t m;

    /* Encoding: a point beyond the table, or with no table. */
    it[0].point = 4;
    assert_int_equal(tb_wire_encode_batch_points(&h, it, 2, &t, out, sizeof out, &len), TB_EINVAL);
    it[0].point = 1;
    assert_int_equal(tb_wire_encode_batch_points(&h, it, 2, NULL, out, sizeof out, &len),
                     TB_EINVAL);
    assert_int_equal(tb_wire_encode_batch(&h, it, 2, out, sizeof out, &len), TB_EINVAL);
    s_golden_points(it, &t);
    memset(t.p[0].ci, 'x', sizeof t.p[0].ci); /* no terminator */
    assert_int_equal(tb_wire_encode_batch_points(&h, it, 2, &t, out, sizeof out, &len), TB_EINVAL);

    /* Decoding: an index the batch's table does not hold. */
    uint8_t b[sizeof k_batch_points];
    memcpy(b, k_batch_points, sizeof b);
    size_t at_point1 = 27 + 1 + 41; /* the envelope to the payload, summary 1, its 41 bytes */
    assert_int_equal(b[at_point1], 0x02);
    b[at_point1] = 0x03;
    assert_int_equal(tb_wire_decode(b, sizeof b, &m, got, N(got)), TB_EPROTO);
    b[at_point1] = 0x41; /* 65: beyond any table */
    assert_int_equal(tb_wire_decode(b, sizeof b, &m, got, N(got)), TB_EPROTO);
    b[at_point1] = 0xc0; /* nil instead of an index */
    assert_int_equal(tb_wire_decode(b, sizeof b, &m, got, N(got)), TB_EPROTO);
    b[at_point1] = 0x00; /* 0: no point, fine */
    assert_int_equal(tb_wire_decode(b, sizeof b, &m, got, N(got)), 0);
    assert_int_equal(got[0].point, 0);

    /* Without its table (an envelope of 8) the indexes name nothing. */
    memcpy(b, k_batch_points, sizeof b);
    b[0] = 0x98;
    size_t table = sizeof k_batch_points - 23;
    assert_int_equal(k_batch_points[table], 0x92);
    assert_int_equal(tb_wire_decode(b, table, &m, got, N(got)), TB_EPROTO);

    /* A table of the wrong shape. */
    memcpy(b, k_batch_points, sizeof b);
    b[table] = 0x80; /* a map */
    assert_int_equal(tb_wire_decode(b, table + 1, &m, got, N(got)), TB_EPROTO);
    memcpy(b, k_batch_points, sizeof b);
    b[table + 1] = 0x91; /* a pair of one */
    assert_int_equal(tb_wire_decode(b, sizeof b, &m, got, N(got)), TB_EPROTO);
    memcpy(b, k_batch_points, sizeof b);
    b[table + 2] = 0x04; /* an MP that is not a string */
    assert_int_equal(tb_wire_decode(b, sizeof b, &m, got, N(got)), TB_EPROTO);

    /* Names longer than 8 bytes, a table longer than 64. */
    tb_mp_buf_t mb;
    msgpack_packer pk;
    uint8_t big[4096];
    for (int variant = 0; variant < 3; variant++) {
        tb_mp_buf_init(&mb, &pk, big, sizeof big);
        memcpy(big, k_batch_points, table);
        mb.len = table;
        size_t n = variant == 2 ? TB_POINTS_MAX + 1 : 2;
        msgpack_pack_array(&pk, n);
        for (size_t i = 0; i < n; i++) {
            msgpack_pack_array(&pk, variant == 1 ? 3 : 2);
            tb_mp_pack_cstr(&pk, variant == 0 && i == 1 ? "123456789" : "mp");
            tb_mp_pack_cstr(&pk, "ci");
            if (variant == 1) {
                tb_mp_pack_cstr(&pk, "later"); /* a third element is skipped */
            }
        }
        assert_false(mb.overflow);
        int want = variant == 1 ? 0 : TB_ELIMIT;
        assert_int_equal(tb_wire_decode(big, mb.len, &m, got, N(got)), want);
    }

    /* A heartbeat's 9th element is not a table: skipped as before. */
    tb_mp_buf_init(&mb, &pk, big, sizeof big);
    s_pack_env(&pk, 9, 1, 2, "p", "s");
    msgpack_pack_map(&pk, 0);
    msgpack_pack_uint8(&pk, 1);
    tb_mp_pack_cstr(&pk, "not a table");
    assert_int_equal(tb_wire_decode(big, mb.len, &m, got, N(got)), 0);
}

static void test_names(void **state)
{
    (void)state;
    static const char *const good[] = {
        "a",          "eth0",
        "01::10:01",  "file:/var/cap/a.pcap",
        "probe@host", "x+y-z_w.v",
        "ABCxyz0189", "0123456789012345678901234567890123456789012345678901234567890123",
    };
    static const char *const bad[] = {
        "",
        "a b",
        "a\tb",
        "tab\n",
        "\xc3\xa9",
        "a,b",
        "a*",
        "a#b",
        "a\\b",
        "a'b",
        "01234567890123456789012345678901234567890123456789012345678901234",
    };
    for (size_t i = 0; i < N(good); i++) {
        assert_int_equal(tb_wire_name_valid(good[i]), 0);
    }
    for (size_t i = 0; i < N(bad); i++) {
        assert_int_equal(tb_wire_name_valid(bad[i]), TB_EINVAL);
    }
    assert_int_equal(tb_wire_name_valid(NULL), TB_EINVAL);

    /* Decoding applies the same rule to probe ids and stream names. */
    uint8_t buf[256];
    tb_mp_buf_t b;
    msgpack_packer pk;
    tb_wire_msg_t m;
    for (size_t i = 0; i < N(bad); i++) {
        for (int which = 0; which < 2; which++) {
            tb_mp_buf_init(&b, &pk, buf, sizeof buf);
            s_pack_env(&pk, 7, 1, 3, which ? "p" : bad[i], which ? bad[i] : "s");
            msgpack_pack_map(&pk, 0);
            assert_int_equal(tb_wire_decode(buf, b.len, &m, NULL, 0), TB_EPROTO);
        }
    }
    /* A name with an embedded NUL. */
    tb_mp_buf_init(&b, &pk, buf, sizeof buf);
    s_pack_env(&pk, 7, 1, 3, "p", "s");
    msgpack_pack_map(&pk, 0);
    static const uint8_t ab_nul[] = {0xa3, 'a', 0, 'b'};
    uint8_t buf2[256];
    /* Replace the stream "s" (0xa1 's') with "a\0b". */
    size_t at = 0;
    for (size_t i = 0; i + 1 < b.len; i++) {
        if (buf[i] == 0xa1 && buf[i + 1] == 's') {
            at = i;
        }
    }
    assert_true(at > 0);
    memcpy(buf2, buf, at);
    memcpy(buf2 + at, ab_nul, sizeof ab_nul);
    memcpy(buf2 + at + sizeof ab_nul, buf + at + 2, b.len - at - 2);
    assert_int_equal(tb_wire_decode(buf2, b.len + 2, &m, NULL, 0), TB_EPROTO);
    /* A name that is not a string. */
    tb_mp_buf_init(&b, &pk, buf, sizeof buf);
    msgpack_pack_array(&pk, 7);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 3);
    msgpack_pack_bin_with_body(&pk, "p", 1);
    msgpack_pack_uint64(&pk, BOOT_NS);
    tb_mp_pack_cstr(&pk, "s");
    msgpack_pack_uint8(&pk, 5);
    msgpack_pack_map(&pk, 0);
    assert_int_equal(tb_wire_decode(buf, b.len, &m, NULL, 0), TB_EPROTO);
}

static void test_topic(void **state)
{
    (void)state;
    uint8_t t[TB_TOPIC_MAX];
    assert_int_equal(tb_wire_topic("a", t, sizeof t), 2);
    assert_memory_equal(t, "a\0", 2);
    assert_int_equal(tb_wire_topic("01::10:01", t, sizeof t), 10);
    assert_memory_equal(t, "01::10:01\0", 10);
    char longest[TB_STREAM_MAX + 1];
    s_long_name(longest, 'z');
    assert_int_equal(tb_wire_topic(longest, t, sizeof t), TB_TOPIC_MAX);
    assert_int_equal(t[TB_STREAM_MAX], 0);
    assert_int_equal(tb_wire_topic(longest, t, TB_TOPIC_MAX - 1), TB_EINVAL);
    assert_int_equal(tb_wire_topic("a b", t, sizeof t), TB_EINVAL);
    assert_int_equal(tb_wire_topic("", t, sizeof t), TB_EINVAL);
    assert_int_equal(tb_wire_topic("a", t, 1), TB_EINVAL);
}

static void test_type_names(void **state)
{
    (void)state;
    assert_string_equal(tb_wire_type_name(TB_MSG_BATCH), "batch");
    assert_string_equal(tb_wire_type_name(TB_MSG_HEARTBEAT), "heartbeat");
    assert_string_equal(tb_wire_type_name(TB_MSG_EOS), "eos");
    assert_string_equal(tb_wire_type_name(0), "unknown");
    assert_string_equal(tb_wire_type_name(5), "unknown");
    assert_string_equal(tb_src_state_name(TB_SRC_WAITING), "waiting");
    assert_string_equal(tb_src_state_name(TB_SRC_RUNNING), "running");
    assert_string_equal(tb_src_state_name(TB_SRC_FINISHED), "finished");
    assert_string_equal(tb_src_state_name(TB_SRC_ERROR), "error");
    assert_string_equal(tb_src_state_name(TB_SRC_STATE_COUNT), "unknown");
    assert_string_equal(tb_src_state_name(-1), "unknown");
}

static void test_max_items(void **state)
{
    (void)state;
    tb_summary_t it[3], out[3];
    s_golden_items(it);
    tb_wire_msg_t m;
    /* The golden batch has 3 summaries. */
    assert_int_equal(tb_wire_decode(k_batch, sizeof k_batch, &m, out, 3), 0);
    assert_int_equal(tb_wire_decode(k_batch, sizeof k_batch, &m, out, 2), TB_ELIMIT);
    assert_int_equal(tb_wire_decode(k_batch, sizeof k_batch, &m, NULL, 0), TB_ELIMIT);

    /* A batch header claiming more than TB_WIRE_MAX_BATCH is refused before
     * any summary is read, whatever max_items says. */
    size_t n = TB_WIRE_MAX_BATCH + 1;
    uint8_t *buf = malloc(64 + n);
    assert_non_null(buf);
    tb_mp_buf_t b;
    msgpack_packer pk;
    tb_mp_buf_init(&b, &pk, buf, 64 + n);
    s_pack_env(&pk, 7, 1, 1, "p", "s");
    msgpack_pack_array(&pk, n);
    memset(buf + b.len, 0xc0, n); /* nils: each one byte */
    size_t len = b.len + n;
    tb_summary_t *many = malloc(n * sizeof *many);
    assert_non_null(many);
    assert_int_equal(tb_wire_decode(buf, len, &m, many, n), TB_ELIMIT);
    free(many);
    free(buf);
}

static void test_heartbeat_keys(void **state)
{
    (void)state;
    uint8_t buf[512];
    tb_mp_buf_t b;
    msgpack_packer pk;
    tb_wire_msg_t m;

    /* Unknown keys (with nested values) skipped, order free, missing = 0. */
    tb_mp_buf_init(&b, &pk, buf, sizeof buf);
    s_pack_env(&pk, 7, 1, 2, "p", "s");
    msgpack_pack_map(&pk, 4);
    tb_mp_pack_cstr(&pk, "future");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_map(&pk, 1);
    tb_mp_pack_cstr(&pk, "x");
    msgpack_pack_double(&pk, 1.0);
    msgpack_pack_bin_with_body(&pk, "zz", 2);
    tb_mp_pack_cstr(&pk, "detail");
    tb_mp_pack_cstr(&pk, "no such device");
    tb_mp_pack_cstr(&pk, "drop");
    msgpack_pack_uint64(&pk, 77);
    tb_mp_pack_cstr(&pk, "state");
    msgpack_pack_uint8(&pk, TB_SRC_ERROR);
    assert_int_equal(tb_wire_decode(buf, b.len, &m, NULL, 0), 0);
    assert_int_equal(m.hb.state, TB_SRC_ERROR);
    assert_true(m.hb.pcap_drop == 77);
    assert_true(m.hb.pcap_recv == 0);
    assert_true(m.hb.packets == 0);
    assert_true(m.hb.files_skipped == 0); /* absent, as from a probe before it existed */
    assert_string_equal(m.hb.detail, "no such device");

    /* An empty map: everything zero / "". */
    tb_mp_buf_init(&b, &pk, buf, sizeof buf);
    s_pack_env(&pk, 7, 1, 2, "p", "s");
    msgpack_pack_map(&pk, 0);
    assert_int_equal(tb_wire_decode(buf, b.len, &m, NULL, 0), 0);
    assert_int_equal(m.hb.state, TB_SRC_WAITING);
    assert_string_equal(m.hb.detail, "");

    /* Invalid state, duplicate key, non-string key, wrong value type,
     * overlong detail. */
    struct {
        int what;
        int want;
    } cases[] = {{0, TB_EPROTO}, {1, TB_EPROTO}, {2, TB_EPROTO},
                 {3, TB_EPROTO}, {4, TB_ELIMIT}, {5, 0}};
    for (size_t i = 0; i < N(cases); i++) {
        tb_mp_buf_init(&b, &pk, buf, sizeof buf);
        s_pack_env(&pk, 7, 1, 2, "p", "s");
        msgpack_pack_map(&pk, 2);
        switch (cases[i].what) {
        case 0:
            tb_mp_pack_cstr(&pk, "state");
            msgpack_pack_uint8(&pk, TB_SRC_STATE_COUNT);
            break;
        case 1:
            tb_mp_pack_cstr(&pk, "recv");
            msgpack_pack_uint8(&pk, 1);
            break;
        case 2:
            msgpack_pack_uint8(&pk, 1);
            msgpack_pack_uint8(&pk, 1);
            break;
        case 3:
            tb_mp_pack_cstr(&pk, "packets");
            tb_mp_pack_cstr(&pk, "12");
            break;
        case 4: {
            char d[TB_DETAIL_MAX + 2];
            memset(d, 'd', TB_DETAIL_MAX + 1);
            d[TB_DETAIL_MAX + 1] = '\0';
            tb_mp_pack_cstr(&pk, "detail");
            tb_mp_pack_cstr(&pk, d);
            break;
        }
        default:
            tb_mp_pack_cstr(&pk, "ifdrop");
            msgpack_pack_uint8(&pk, 3);
            break;
        }
        tb_mp_pack_cstr(&pk, "recv");
        msgpack_pack_uint8(&pk, 2);
        assert_int_equal(tb_wire_decode(buf, b.len, &m, NULL, 0), cases[i].want);
    }
}

static void test_eos_keys(void **state)
{
    (void)state;
    uint8_t buf[256];
    tb_mp_buf_t b;
    msgpack_packer pk;
    tb_wire_msg_t m;
    for (uint64_t err = 0; err < 4; err++) {
        tb_mp_buf_init(&b, &pk, buf, sizeof buf);
        s_pack_env(&pk, 7, 1, 3, "p", "s");
        msgpack_pack_map(&pk, 2);
        tb_mp_pack_cstr(&pk, "error");
        msgpack_pack_uint64(&pk, err);
        tb_mp_pack_cstr(&pk, "extra");
        msgpack_pack_true(&pk);
        assert_int_equal(tb_wire_decode(buf, b.len, &m, NULL, 0), err <= 1 ? 0 : TB_EPROTO);
        if (err <= 1) {
            assert_int_equal(m.eos.error, err);
            assert_true(m.eos.packets == 0);
        }
    }
    /* Duplicate key. */
    tb_mp_buf_init(&b, &pk, buf, sizeof buf);
    s_pack_env(&pk, 7, 1, 3, "p", "s");
    msgpack_pack_map(&pk, 2);
    tb_mp_pack_cstr(&pk, "packets");
    msgpack_pack_uint8(&pk, 1);
    tb_mp_pack_cstr(&pk, "packets");
    msgpack_pack_uint8(&pk, 2);
    assert_int_equal(tb_wire_decode(buf, b.len, &m, NULL, 0), TB_EPROTO);
    /* Bool is not a uint. */
    tb_mp_buf_init(&b, &pk, buf, sizeof buf);
    s_pack_env(&pk, 7, 1, 3, "p", "s");
    msgpack_pack_map(&pk, 1);
    tb_mp_pack_cstr(&pk, "error");
    msgpack_pack_true(&pk);
    assert_int_equal(tb_wire_decode(buf, b.len, &m, NULL, 0), TB_EPROTO);
}

static void test_truncation_every_prefix(void **state)
{
    (void)state;
    tb_summary_t out[8];
    tb_wire_msg_t m;
    static const struct {
        const uint8_t *b;
        size_t n;
    } g[] = {{k_batch, sizeof k_batch}, {k_heartbeat, sizeof k_heartbeat}, {k_eos, sizeof k_eos}};
    for (size_t i = 0; i < N(g); i++) {
        for (size_t k = 0; k < g[i].n; k++) {
            /* A copy of exactly k bytes, so ASan catches any over-read. */
            uint8_t *p = malloc(k ? k : 1);
            assert_non_null(p);
            memcpy(p, g[i].b, k);
            assert_int_equal(tb_wire_decode(p, k, &m, out, N(out)), TB_ETRUNC);
            free(p);
        }
        assert_int_equal(tb_wire_decode(g[i].b, g[i].n, &m, out, N(out)), 0);
    }
}

/* ----------------------------------------------------------- fuzz-ish */

static uint64_t s_rng = 0x9e3779b97f4a7c15ull;

static uint64_t s_rand(void)
{
    /* xorshift64*: deterministic, so a failure reproduces. */
    s_rng ^= s_rng >> 12;
    s_rng ^= s_rng << 25;
    s_rng ^= s_rng >> 27;
    return s_rng * 0x2545f4914f6cdd1dull;
}

/* Whatever decodes must be a valid message: it encodes again, and the
 * re-encoding decodes to the same message. */
static void s_check_any(const uint8_t *buf, size_t len, int *accepted)
{
    static tb_summary_t items[64], items2[64];
    tb_wire_msg_t m, m2;
    int rc = tb_wire_decode(buf, len, &m, items, N(items));
    if (rc != 0) {
        assert_true(rc == TB_EPROTO || rc == TB_ETRUNC || rc == TB_ELIMIT || rc == TB_EVERSION);
        return;
    }
    (*accepted)++;
    uint8_t out[TB_WIRE_HEADER_MAX_BYTES + N(items) * TB_WIRE_SUMMARY_MAX_BYTES + 512];
    size_t olen;
    assert_int_equal(s_reencode(&m, out, sizeof out, &olen), 0);
    assert_int_equal(tb_wire_decode(out, olen, &m2, items2, N(items2)), 0);
    s_assert_msg_eq(&m, &m2);
}

/* A length as encoders write it: uint 16 when it fits, uint 32 otherwise
 * (wire-format.md, 5.1). */
static void s_pack_uint16_up(msgpack_packer *pk, uint32_t v)
{
    if (v <= UINT16_MAX) {
        msgpack_pack_fix_uint16(pk, (uint16_t)v);
    } else {
        msgpack_pack_fix_uint32(pk, v);
    }
}

/* A summary as msgpack-c's packer functions write it in the documented
 * layout: the lengths as above, the ports always uint 16, every other
 * integer in its smallest encoding. */
static void s_pack_summary_c(msgpack_packer *pk, const tb_summary_t *s, size_t alen)
{
    msgpack_pack_array(pk, s->point != 0 ? 14 : 13);
    msgpack_pack_uint64(pk, s->ts_ns);
    s_pack_uint16_up(pk, s->wire_len);
    s_pack_uint16_up(pk, s->cap_len);
    msgpack_pack_uint64(pk, s->family);
    msgpack_pack_uint64(pk, s->proto);
    msgpack_pack_bin_with_body(pk, s->src, alen);
    msgpack_pack_bin_with_body(pk, s->dst, alen);
    msgpack_pack_fix_uint16(pk, s->sport);
    msgpack_pack_fix_uint16(pk, s->dport);
    msgpack_pack_uint64(pk, s->tcp_flags);
    msgpack_pack_uint64(pk, s->vlan);
    msgpack_pack_uint64(pk, s->flags);
    msgpack_pack_uint64(pk, s->ethertype);
    if (s->point != 0) {
        msgpack_pack_uint64(pk, s->point);
    }
}

#define S_BODY_CAP (TB_WIRE_HEADER_MAX_BYTES + 64 * TB_WIRE_SUMMARY_MAX_BYTES)

/* Encode items[0, n) into buffers of every size from the least the encoder
 * takes (it wants TB_WIRE_SUMMARY_MAX_BYTES of room for each summary) to
 * some 100 bytes more, then into a large one, and compare each summary's
 * bytes with msgpack-c's. The summaries' bytes are the body's after the
 * header and the array's head, up to the run (0: one byte) at the end. */
static void s_assert_summaries_as_msgpack_c(const tb_summary_t *items, size_t n)
{
    static uint8_t body[S_BODY_CAP];
    static uint8_t want[64 * TB_WIRE_SUMMARY_MAX_BYTES];
    assert_true(n > 0 && n <= 64);
    tb_wire_header_t h = s_header("eth0", 1);
    size_t empty_len, len;
    assert_int_equal(tb_wire_encode_batch(&h, NULL, 0, body, sizeof body, &empty_len), 0);
    size_t head = empty_len - 2; /* the array's head (0x90) and the run follow */
    size_t at = head + (n < 16 ? 1 : 3);
    tb_mp_buf_t b;
    msgpack_packer pk;
    tb_mp_buf_init(&b, &pk, want, sizeof want);
    size_t last = 0;
    for (size_t i = 0; i < n; i++) {
        last = b.len;
        s_pack_summary_c(&pk, &items[i], items[i].family == 4 ? 4 : items[i].family == 6 ? 16 : 0);
    }
    assert_false(b.overflow);
    size_t least = at + last + TB_WIRE_SUMMARY_MAX_BYTES;
    int encoded = 0;
    for (size_t room = least; room <= least + 100 || room == S_BODY_CAP;
         room = room == least + 100 ? S_BODY_CAP : room + 1) {
        if (tb_wire_encode_batch(&h, items, n, body, room, &len) != 0) {
            continue;
        }
        encoded++;
        assert_int_equal(len, at + b.len + 1);
        assert_memory_equal(body + at, want, b.len);
        if (room == S_BODY_CAP) {
            break;
        }
    }
    assert_true(encoded > 90);
}

/* The summaries' integers, written by hand for speed, come out as
 * msgpack-c writes them: every value at each encoding's edges, field by
 * field, and random values of random sizes, whatever room the buffer has
 * left. (The point index, the 14th field, is written by the same function:
 * test_golden_points.) */
/* Set an unsigned field of `size` bytes (1, 2, 4 or 8) at p to v. */
static void s_set_uint(void *p, size_t size, uint64_t v)
{
    uint8_t u8 = (uint8_t)v;
    uint16_t u16 = (uint16_t)v;
    uint32_t u32 = (uint32_t)v;
    memcpy(p,
           size == 1   ? (void *)&u8
           : size == 2 ? (void *)&u16
           : size == 4 ? (void *)&u32
                       : &v,
           size);
}

static void test_encode_as_msgpack_c(void **state)
{
    (void)state;
    static const uint64_t edges[] = {0,          1,           0x7f,           0x80,
                                     0xff,       0x100,       0xffff,         0x10000,
                                     0xffffffff, 0x100000000, UINT64_MAX - 1, UINT64_MAX};
#define F(name, max)                                                                               \
    {                                                                                              \
        offsetof(tb_summary_t, name), sizeof(((tb_summary_t *)0)->name), max                       \
    }
    static const struct {
        size_t off, size;
        uint64_t max;
    } fields[] = {F(ts_ns, UINT64_MAX),    F(wire_len, UINT32_MAX), F(cap_len, UINT32_MAX),
                  F(proto, UINT8_MAX),     F(sport, UINT16_MAX),    F(dport, UINT16_MAX),
                  F(tcp_flags, UINT8_MAX), F(vlan, 4095),           F(flags, UINT8_MAX),
                  F(ethertype, UINT16_MAX)};
#undef F
    tb_summary_t base = s_max_summary(4);
    base.point = 0;
    for (size_t f = 0; f < N(fields); f++) {
        tb_summary_t it[N(edges)];
        size_t n = 0;
        for (size_t e = 0; e < N(edges) && edges[e] <= fields[f].max; e++) {
            it[n] = base;
            s_set_uint((uint8_t *)&it[n] + fields[f].off, fields[f].size, edges[e]);
            n++;
        }
        s_assert_summaries_as_msgpack_c(it, n);
    }
    s_rng = 0x5eed5eed5eed5eedull;
    for (int round = 0; round < 500; round++) {
        tb_summary_t it[40];
        for (size_t i = 0; i < N(it); i++) {
            it[i] = s_max_summary(i % 3 == 0 ? 6 : 4);
            it[i].point = 0;
            for (size_t f = 0; f < N(fields); f++) {
                /* A random value of 0 to 64 bits, in the field's range. */
                unsigned bits = (unsigned)(s_rand() % 65);
                uint64_t v = bits == 0 ? 0 : s_rand() >> (64 - bits);
                if (fields[f].max < UINT64_MAX) {
                    v %= fields[f].max + 1;
                }
                s_set_uint((uint8_t *)&it[i] + fields[f].off, fields[f].size, v);
            }
        }
        s_assert_summaries_as_msgpack_c(it, N(it));
    }
}

static void test_random_buffers(void **state)
{
    (void)state;
    s_rng = 0x1234567887654321ull;
    uint8_t buf[256];
    int accepted = 0;
    for (int iter = 0; iter < 100000; iter++) {
        size_t len = (size_t)(s_rand() % sizeof buf);
        for (size_t i = 0; i < len; i++) {
            buf[i] = (uint8_t)s_rand();
        }
        /* Half of them start like a real message so the decoder gets past
         * the envelope. */
        if (iter % 2 && len > 8) {
            size_t keep = (size_t)(s_rand() % 30);
            const uint8_t *g = (iter / 2) % 3 == 0   ? k_batch
                               : (iter / 2) % 3 == 1 ? k_heartbeat
                                                     : k_eos;
            memcpy(buf, g, keep < len ? keep : len);
        }
        uint8_t *p = malloc(len ? len : 1);
        assert_non_null(p);
        memcpy(p, buf, len);
        s_check_any(p, len, &accepted);
        free(p);
    }
    (void)accepted;
}

static void test_random_mutations(void **state)
{
    (void)state;
    s_rng = 0xdeadbeefcafef00dull;
    static const struct {
        const uint8_t *b;
        size_t n;
    } g[] = {{k_batch, sizeof k_batch}, {k_heartbeat, sizeof k_heartbeat}, {k_eos, sizeof k_eos}};
    uint8_t buf[sizeof k_batch];
    int accepted = 0;
    for (int iter = 0; iter < 100000; iter++) {
        size_t which = (size_t)iter % N(g);
        size_t n = g[which].n;
        memcpy(buf, g[which].b, n);
        size_t pos = (size_t)(s_rand() % n);
        uint8_t v = (uint8_t)s_rand();
        if (v == buf[pos]) {
            v ^= 0x01;
        }
        buf[pos] = v;
        s_check_any(buf, n, &accepted);
    }
    /* Some mutations (a port, a counter, a name character) stay valid. */
    assert_true(accepted > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_encode),
        cmocka_unit_test(test_golden_files),
        cmocka_unit_test(test_golden_decode),
        cmocka_unit_test(test_golden_msgpack_c_oracle),
        cmocka_unit_test(test_golden_points),
        cmocka_unit_test(test_points_roundtrip_full_table),
        cmocka_unit_test(test_points_refused),
        cmocka_unit_test(test_roundtrip_batch_max),
        cmocka_unit_test(test_roundtrip_every_shape),
        cmocka_unit_test(test_batch_size_bound),
        cmocka_unit_test(test_encode_as_msgpack_c),
        cmocka_unit_test(test_roundtrip_heartbeat_eos),
        cmocka_unit_test(test_encode_refuses_invalid),
        cmocka_unit_test(test_summary_validation),
        cmocka_unit_test(test_summary_shape),
        cmocka_unit_test(test_envelope),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_topic),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_max_items),
        cmocka_unit_test(test_heartbeat_keys),
        cmocka_unit_test(test_eos_keys),
        cmocka_unit_test(test_truncation_every_prefix),
        cmocka_unit_test(test_random_buffers),
        cmocka_unit_test(test_random_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
