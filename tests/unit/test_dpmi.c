/* test_dpmi — unit tests for DPMI measurement frames (probe/dpmi.c).
 *
 * Hand-made frames in byte arrays pin the layout: the sendhead in network
 * order, the records in the sender's order (little-endian, or big-endian
 * told by the records filling the frame), picosecond timestamps; frames
 * whose records do not fill them exactly, of another version or cut short
 * at any byte are refused; stream addresses with "::"; sequence gaps across
 * the wrap at 0xFFFF. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "dpmi.h"
#include "tb_err.h"

#include <stdlib.h>
#include <string.h>

/* An Ethernet frame to 01:00:00:00:10:01 from 02:00:00:00:00:07, sequence
 * 0x00010203, two records (CI "d00", MP "mp-x"; 1.5 s + 250 ps, wire 60
 * captured 4 bytes; CI "d01", 7 s + 999999999999 ps, wire 1514, captured 2),
 * little-endian records. 30 + (36 + 4) + (36 + 2) = 108 bytes. */
static size_t s_frame(uint8_t *b, int be)
{
    static const uint8_t head[30] = {
        0x01, 0x00, 0x00, 0x00, 0x10, 0x01, /* destination */
        0x02, 0x00, 0x00, 0x00, 0x00, 0x07, /* source */
        0x08, 0x10,                         /* ethertype */
        0x00, 0x01, 0x02, 0x03,             /* sequencenr */
        0x00, 0x00, 0x00, 0x02,             /* nopkts */
        0x00, 0x00, 0x00, 0x00,             /* flags */
        0x00, 0x00, 0x00, 0x07,             /* version 0.7 */
    };
    memcpy(b, head, sizeof head);
    size_t off = sizeof head;
    struct {
        const char *ci;
        uint32_t sec;
        uint64_t psec;
        uint32_t len, caplen;
    } recs[2] = {{"d00", 1, 500000000250ull, 60, 4}, {"d01", 7, 999999999999ull, 1514, 2}};
    for (int i = 0; i < 2; i++) {
        uint8_t *r = b + off;
        memset(r, 0, 36);
        memcpy(r, recs[i].ci, strlen(recs[i].ci));
        memcpy(r + 8, "mp-x", 4);
        uint64_t v[4] = {recs[i].sec, recs[i].psec, recs[i].len, recs[i].caplen};
        int at[4] = {16, 20, 28, 32}, size[4] = {4, 8, 4, 4};
        for (int k = 0; k < 4; k++) {
            for (int j = 0; j < size[k]; j++) {
                int shift = be ? 8 * (size[k] - 1 - j) : 8 * j;
                r[at[k] + j] = (uint8_t)(v[k] >> shift);
            }
        }
        off += 36;
        for (uint32_t j = 0; j < recs[i].caplen; j++) {
            b[off++] = (uint8_t)(0xa0 + i * 16 + j);
        }
    }
    return off;
}

static void s_check_records(const uint8_t *b, const tb_dpmi_frame_t *f)
{
    size_t off = TB_DPMI_HEADERS_LEN;
    tb_capfile_rec_t rec;
    const uint8_t *data;
    tb_dpmi_record(b, f, &off, &rec, &data);
    assert_string_equal(rec.ci, "d00");
    assert_string_equal(rec.mp, "mp-x");
    assert_int_equal(rec.sec, 1);
    assert_true(rec.psec == 500000000250ull);
    assert_int_equal(rec.len, 60);
    assert_int_equal(rec.caplen, 4);
    assert_true(tb_capfile_rec_ns(&rec) == 1500000000ull); /* 250 ps are below 1 ns */
    assert_int_equal(data[0], 0xa0);
    assert_int_equal(data[3], 0xa3);
    tb_dpmi_record(b, f, &off, &rec, &data);
    assert_string_equal(rec.ci, "d01");
    assert_int_equal(rec.len, 1514);
    assert_int_equal(rec.caplen, 2);
    assert_true(tb_capfile_rec_ns(&rec) == 7999999999ull);
    assert_int_equal(data[1], 0xb1);
    assert_int_equal(off, 108);
}

static void test_frame_little_endian(void **state)
{
    (void)state;
    uint8_t b[256];
    size_t len = s_frame(b, 0);
    assert_int_equal(len, 108);
    tb_dpmi_frame_t f;
    char err[160] = "";
    assert_int_equal(tb_dpmi_frame_parse(b, len, &f, err, sizeof err), 0);
    assert_int_equal(f.seq, 0x00010203);
    assert_int_equal(f.count, 2);
    assert_int_equal(f.flags, 0);
    assert_int_equal(f.major, 0);
    assert_int_equal(f.minor, 7);
    assert_int_equal(f.big_endian, 0);
    assert_int_equal(f.dst[5], 0x01);
    assert_int_equal(f.src[5], 0x07);
    s_check_records(b, &f);
}

static void test_frame_big_endian_records(void **state)
{
    (void)state;
    uint8_t b[256];
    size_t len = s_frame(b, 1);
    b[14 + 11] = TB_DPMI_FLAG_TERMINATE;
    tb_dpmi_frame_t f;
    char err[160] = "";
    assert_int_equal(tb_dpmi_frame_parse(b, len, &f, err, sizeof err), 0);
    assert_int_equal(f.big_endian, 1);
    assert_int_equal(f.flags, TB_DPMI_FLAG_TERMINATE);
    s_check_records(b, &f);
}

static void test_frame_refusals(void **state)
{
    (void)state;
    uint8_t b[256];
    size_t len = s_frame(b, 0);
    tb_dpmi_frame_t f;
    char err[160] = "";
    /* A frame longer than its records. */
    b[len] = 0;
    assert_int_equal(tb_dpmi_frame_parse(b, len + 1, &f, err, sizeof err), TB_EPROTO);
    assert_non_null(strstr(err, "do not fill"));
    /* One record more announced than there is. */
    b[14 + 7] = 3;
    assert_int_equal(tb_dpmi_frame_parse(b, len, &f, err, sizeof err), TB_EPROTO);
    b[14 + 7] = 2;
    /* A record of 0 captured bytes. */
    uint8_t c[256];
    memcpy(c, b, len);
    memset(c + 30 + 32, 0, 4);
    assert_int_equal(tb_dpmi_frame_parse(c, len, &f, err, sizeof err), TB_EPROTO);
    /* Another record version. */
    memcpy(c, b, len);
    c[14 + 15] = 6;
    assert_int_equal(tb_dpmi_frame_parse(c, len, &f, err, sizeof err), TB_EVERSION);
    assert_non_null(strstr(err, "0.6"));
    /* Another ethertype. */
    memcpy(c, b, len);
    c[13] = 0x11;
    assert_int_equal(tb_dpmi_frame_parse(c, len, &f, err, sizeof err), TB_EPROTO);
    /* Every prefix is refused, never read beyond (ASan sees the copy's end). */
    for (size_t n = 0; n < len; n++) {
        uint8_t *p = malloc(n > 0 ? n : 1);
        assert_non_null(p);
        memcpy(p, b, n);
        int rc = tb_dpmi_frame_parse(p, n, &f, err, sizeof err);
        assert_true(rc == (n < TB_DPMI_HEADERS_LEN ? TB_ETRUNC : TB_EPROTO));
        free(p);
    }
}

static void test_frame_without_records_and_padding(void **state)
{
    (void)state;
    uint8_t full[256];
    s_frame(full, 0);
    uint8_t b[TB_DPMI_MIN_FRAME] = {0};
    memcpy(b, full, TB_DPMI_HEADERS_LEN); /* only the headers */
    b[14 + 7] = 0;                        /* no records */
    tb_dpmi_frame_t f;
    char err[160] = "";
    assert_int_equal(tb_dpmi_frame_parse(b, TB_DPMI_HEADERS_LEN, &f, err, sizeof err), 0);
    memset(b + TB_DPMI_HEADERS_LEN, 0, sizeof b - TB_DPMI_HEADERS_LEN);
    assert_int_equal(tb_dpmi_frame_parse(b, sizeof b, &f, err, sizeof err), 0); /* padded */
    assert_int_equal(tb_dpmi_frame_parse(b, 59, &f, err, sizeof err), TB_EPROTO);
}

static void test_addresses(void **state)
{
    (void)state;
    uint8_t a[6];
    char text[TB_DPMI_ADDR_TEXT];
    static const struct {
        const char *in, *out;
    } ok[] = {
        {"01::10:01", "01:00:00:00:10:01"},      {"01:00:00:00:10:01", "01:00:00:00:10:01"},
        {"1:2:3:4:5:6", "01:02:03:04:05:06"},    {"01:00:5E::", "01:00:5e:00:00:00"},
        {"::1", "00:00:00:00:00:01"},            {"ff:ff:ff:ff:ff:ff", "ff:ff:ff:ff:ff:ff"},
        {"01:02::05:06", "01:02:00:00:05:06"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(tb_dpmi_addr_parse(ok[i].in, a), 0);
        tb_dpmi_addr_format(a, text, sizeof text);
        assert_string_equal(text, ok[i].out);
    }
    static const char *const bad[] = {"",           "01",          "01:02:03:04:05",
                                      "1:2:3:4:5:6:7", "01::02::03", "01:",
                                      "001::1",     "0g::1",       "01:02:03:04:05:06:",
                                      "1:2:3::4:5:6", "eth0",      "01-00-00-00-10-01"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(tb_dpmi_addr_parse(bad[i], a), TB_EINVAL);
    }
    assert_int_equal(tb_dpmi_addr_parse(NULL, a), TB_EINVAL);
    tb_dpmi_addr_parse("01::10:01", a);
    assert_true(tb_dpmi_addr_is_multicast(a));
    tb_dpmi_addr_parse("02::10:01", a);
    assert_false(tb_dpmi_addr_is_multicast(a));
}

static void test_sequence(void **state)
{
    (void)state;
    assert_int_equal(tb_dpmi_seq_gap(5, 5), 0);
    assert_int_equal(tb_dpmi_seq_gap(5, 9), 4);
    assert_int_equal(tb_dpmi_seq_gap(0xFFFE, 0), 1); /* 0xFFFE missing, then the wrap to 0 */
    assert_int_equal(tb_dpmi_seq_gap(0xFFFD, 1), 3);
    assert_int_equal(tb_dpmi_seq_gap(9, 5), 0xFFFF - 4); /* backwards: far ahead */
    assert_int_equal(tb_dpmi_seq_next(0), 1);
    assert_int_equal(tb_dpmi_seq_next(0xFFFE), 0);
    assert_int_equal(tb_dpmi_seq_next(0xFFFF), 1); /* out of range: taken modulo */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_little_endian),
        cmocka_unit_test(test_frame_big_endian_records),
        cmocka_unit_test(test_frame_refusals),
        cmocka_unit_test(test_frame_without_records_and_padding),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_sequence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
