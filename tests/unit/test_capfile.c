/* test_capfile — unit tests for the DPMI capfile decoder (probe/capfile.c).
 *
 * Hand-made headers and records in byte arrays pin the layout and the byte
 * order (little-endian as DPMI's x86 writers store them; big-endian told by
 * the swapped magic); the legacy headers of 0.5 and 0.6 are read, with the
 * same records after them; versions that are not read are refused with
 * their version; every prefix of a small capfile is read without a crash, giving
 * exactly the whole records it holds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "capfile.h"
#include "tb_err.h"

#include <stdio.h>
#include <string.h>

/* A 0.7 header, little-endian, comment "hello", mpid "mp-x". */
static void s_header_le(uint8_t *b)
{
    memset(b, 0, TB_CAPFILE_HEADER_LEN);
    static const uint8_t head[16] = {0x6e, 0x9b, 0x3d, 0xc5, 0x47, 0xe2, 0x1a, 0x8f, /* magic */
                                     0x00, 0x00, 0x07, 0x00, /* version 0.7 */
                                     0xd8, 0x00,             /* header_offset 216 */
                                     0x05, 0x00};            /* comment_size 5 */
    memcpy(b, head, sizeof head);
    memcpy(b + 16, "mp-x", 4);
}

static void test_header_little_endian(void **state)
{
    (void)state;
    uint8_t b[TB_CAPFILE_HEADER_LEN];
    s_header_le(b);
    tb_capfile_header_t h;
    char err[128] = "";
    assert_int_equal(tb_capfile_header_parse(b, sizeof b, &h, err, sizeof err), 0);
    assert_int_equal(h.big_endian, 0);
    assert_int_equal(h.major, 0);
    assert_int_equal(h.minor, 7);
    assert_int_equal(h.header_offset, 216);
    assert_int_equal(h.comment_size, 5);
    assert_string_equal(h.mpid, "mp-x");
    assert_true(tb_capfile_is_magic(b, 8));
    assert_false(tb_capfile_is_magic(b, 7));
}

static void test_header_big_endian(void **state)
{
    (void)state;
    uint8_t b[TB_CAPFILE_HEADER_LEN] = {0};
    static const uint8_t head[16] = {0x8f, 0x1a, 0xe2, 0x47, 0xc5, 0x3d, 0x9b, 0x6e,
                                     0x00, 0x00, 0x00, 0x07, 0x01, 0x00, 0x01, 0x02};
    memcpy(b, head, sizeof head);
    tb_capfile_header_t h;
    char err[128] = "";
    assert_int_equal(tb_capfile_header_parse(b, sizeof b, &h, err, sizeof err), 0);
    assert_int_equal(h.big_endian, 1);
    assert_int_equal(h.minor, 7);
    assert_int_equal(h.header_offset, 256);
    assert_int_equal(h.comment_size, 258);
    assert_string_equal(h.mpid, "");
}

static void test_record_byte_order(void **state)
{
    (void)state;
    static const uint8_t le[TB_CAPFILE_REC_LEN] = {
        'e',  't',  'h',  '0',  0,    0,    0,    0,    /* CI */
        'm',  'p',  '-',  '1',  0,    0,    0,    0,    /* MP */
        0x00, 0x80, 0x92, 0x65,                         /* sec 0x65928000 */
        0x14, 0x1a, 0x99, 0xbe, 0x1c, 0x00, 0x00, 0x00, /* psec 123456789012 */
        0xea, 0x05, 0x00, 0x00,                         /* len 1514 */
        0x3c, 0x00, 0x00, 0x00};                        /* caplen 60 */
    tb_capfile_rec_t r;
    tb_capfile_rec_parse(le, 0, &r);
    assert_string_equal(r.ci, "eth0");
    assert_string_equal(r.mp, "mp-1");
    assert_int_equal(r.sec, 0x65928000u);
    assert_true(r.psec == 123456789012ull);
    assert_int_equal(r.len, 1514);
    assert_int_equal(r.caplen, 60);
    assert_true(tb_capfile_rec_ns(&r) == 0x65928000ull * 1000000000ull + 123456789ull);

    uint8_t be[TB_CAPFILE_REC_LEN];
    memcpy(be, le, 16);
    static const uint8_t be_tail[20] = {0x65, 0x92, 0x80, 0x00, 0x00, 0x00, 0x00, 0x1c, 0xbe, 0x99,
                                        0x1a, 0x14, 0x00, 0x00, 0x05, 0xea, 0x00, 0x00, 0x00, 0x3c};
    memcpy(be + 16, be_tail, sizeof be_tail);
    tb_capfile_rec_t rb;
    tb_capfile_rec_parse(be, 1, &rb);
    assert_int_equal(rb.sec, r.sec);
    assert_true(rb.psec == r.psec);
    assert_int_equal(rb.len, r.len);
    assert_int_equal(rb.caplen, r.caplen);

    /* A full 8-byte name has no NUL; it is still cut at 8. */
    uint8_t full[TB_CAPFILE_REC_LEN];
    memcpy(full, le, sizeof full);
    memcpy(full, "abcdefgh", 8);
    tb_capfile_rec_parse(full, 0, &rb);
    assert_string_equal(rb.ci, "abcdefgh");
    assert_string_equal(rb.mp, "mp-1");
}

static void test_refused(void **state)
{
    (void)state;
    uint8_t b[TB_CAPFILE_HEADER_LEN];
    tb_capfile_header_t h;
    char err[128] = "";

    s_header_le(b);
    b[10] = 8; /* 0.8 */
    assert_int_equal(tb_capfile_header_parse(b, sizeof b, &h, err, sizeof err), TB_EVERSION);
    assert_non_null(strstr(err, "0.8"));

    s_header_le(b);
    b[8] = 1; /* 1.7 */
    assert_int_equal(tb_capfile_header_parse(b, sizeof b, &h, err, sizeof err), TB_EVERSION);

    s_header_le(b);
    b[12] = 100; /* header smaller than the header */
    assert_int_equal(tb_capfile_header_parse(b, sizeof b, &h, err, sizeof err), TB_EPROTO);

    /* Legacy headers cut short. */
    memset(b, 0, sizeof b);
    b[8] = 5;
    assert_int_equal(tb_capfile_header_parse(b, 211, &h, err, sizeof err), TB_ETRUNC);
    assert_non_null(strstr(err, "0.5"));
    memset(b, 0, sizeof b);
    b[5] = 6;
    assert_int_equal(tb_capfile_header_parse(b, 207, &h, err, sizeof err), TB_ETRUNC);
    assert_non_null(strstr(err, "0.6"));
    /* 0.6's version bytes with another minor: not a capfile. */
    b[5] = 9;
    assert_int_equal(tb_capfile_header_parse(b, 208, &h, err, sizeof err), TB_EPROTO);

    memset(b, 'x', sizeof b);
    assert_int_equal(tb_capfile_header_parse(b, sizeof b, &h, err, sizeof err), TB_EPROTO);
    assert_non_null(strstr(err, "not a DPMI capfile"));

    s_header_le(b);
    assert_int_equal(tb_capfile_header_parse(b, 100, &h, err, sizeof err), TB_ETRUNC);
    assert_int_equal(tb_capfile_header_parse(b, 0, &h, err, sizeof err), TB_ETRUNC);
}

/* The legacy headers: 0.5 (u32 comment_size, u32 major, u32 minor,
 * mpid[200]: 212 bytes) and 0.6 (u32 comment_size, u8 major, u8 minor,
 * mpid[200], 2 bytes of padding: 208), little-endian. */
static size_t s_legacy_header(uint8_t *b, int minor, uint32_t comment_size, const char *mpid)
{
    size_t size = minor == 5 ? TB_CAPFILE_HEADER05_LEN : TB_CAPFILE_HEADER06_LEN;
    memset(b, 0, size);
    b[0] = (uint8_t)comment_size;
    b[1] = (uint8_t)(comment_size >> 8);
    b[2] = (uint8_t)(comment_size >> 16);
    b[3] = (uint8_t)(comment_size >> 24);
    if (minor == 5) {
        b[8] = 5;
        memcpy(b + 12, mpid, strlen(mpid));
    } else {
        b[5] = 6;
        memcpy(b + 6, mpid, strlen(mpid));
    }
    return size;
}

static void test_legacy_headers(void **state)
{
    (void)state;
    uint8_t b[TB_CAPFILE_HEADER_LEN];
    tb_capfile_header_t h;
    char err[128] = "";
    for (int minor = 5; minor <= 6; minor++) {
        size_t size = s_legacy_header(b, minor, 70000, "old-mp");
        assert_int_equal(tb_capfile_header_parse(b, size, &h, err, sizeof err), 0);
        assert_int_equal(h.major, 0);
        assert_int_equal(h.minor, minor);
        assert_int_equal(h.big_endian, 0);
        assert_int_equal(h.header_offset, size);
        assert_int_equal(h.comment_size, 70000); /* 32 bits wide */
        assert_string_equal(h.mpid, "old-mp");
        assert_false(tb_capfile_is_magic(b, size));
    }
    /* A 200-byte MP id without a terminator. */
    s_legacy_header(b, 6, 0, "");
    memset(b + 6, 'm', 200);
    assert_int_equal(tb_capfile_header_parse(b, TB_CAPFILE_HEADER06_LEN, &h, err, sizeof err), 0);
    assert_int_equal(strlen(h.mpid), 200);
}

/* A whole legacy file: header, comment, then 0.7's records. */
static void test_legacy_files(void **state)
{
    (void)state;
    for (int minor = 5; minor <= 6; minor++) {
        uint8_t buf[512];
        size_t n = s_legacy_header(buf, minor, 3, "mp");
        memcpy(buf + n, "abc", 3);
        n += 3;
        for (int i = 0; i < 2; i++) {
            uint8_t *r = buf + n;
            memset(r, 0, TB_CAPFILE_REC_LEN);
            memcpy(r, i ? "eth1" : "eth0", 4);
            memcpy(r + 8, "mp-old", 6);
            r[16] = (uint8_t)(10 + i); /* sec */
            r[20] = 0xe8;              /* psec 1000: 1 ns */
            r[21] = 0x03;
            r[28] = 64; /* len */
            r[32] = 20; /* caplen */
            n += TB_CAPFILE_REC_LEN;
            memset(buf + n, 0x11 * (i + 1), 20);
            n += 20;
        }
        FILE *fp = tmpfile();
        assert_non_null(fp);
        assert_int_equal(fwrite(buf, 1, n, fp), n);
        rewind(fp);
        tb_capfile_t *cf = NULL;
        char err[128] = "";
        assert_int_equal(tb_capfile_open(fp, &cf, err, sizeof err), 0);
        assert_int_equal(tb_capfile_header(cf)->minor, minor);
        tb_capfile_rec_t rec;
        const uint8_t *data = NULL;
        for (int i = 0; i < 2; i++) {
            assert_int_equal(tb_capfile_next(cf, &rec, &data, err, sizeof err), 1);
            assert_string_equal(rec.ci, i ? "eth1" : "eth0");
            assert_string_equal(rec.mp, "mp-old");
            assert_int_equal(rec.sec, 10 + i);
            assert_true(tb_capfile_rec_ns(&rec) == (uint64_t)(10 + i) * 1000000000u + 1);
            assert_int_equal(rec.len, 64);
            assert_int_equal(rec.caplen, 20);
            assert_int_equal(data[19], 0x11 * (i + 1));
        }
        assert_int_equal(tb_capfile_next(cf, &rec, &data, err, sizeof err), 0);
        tb_capfile_destroy(&cf);

        /* Cut inside the comment. */
        fp = tmpfile();
        assert_non_null(fp);
        size_t cut = (minor == 5 ? TB_CAPFILE_HEADER05_LEN : TB_CAPFILE_HEADER06_LEN) + 2;
        assert_int_equal(fwrite(buf, 1, cut, fp), cut);
        rewind(fp);
        assert_int_equal(tb_capfile_open(fp, &cf, err, sizeof err), TB_ETRUNC);
        fclose(fp);
    }
}

/* header + "hello" + records of 0, 3 and 60 captured bytes. */
static size_t s_small_file(uint8_t *buf)
{
    size_t n = 0;
    s_header_le(buf);
    n = TB_CAPFILE_HEADER_LEN;
    memcpy(buf + n, "hello", 5);
    n += 5;
    static const uint32_t caplens[3] = {0, 3, 60};
    for (int i = 0; i < 3; i++) {
        uint8_t *r = buf + n;
        memset(r, 0, TB_CAPFILE_REC_LEN);
        memcpy(r, "ci", 2);
        r[16] = (uint8_t)(i + 1);           /* sec i+1 */
        r[28] = (uint8_t)(caplens[i] + 10); /* len */
        r[32] = (uint8_t)caplens[i];        /* caplen */
        n += TB_CAPFILE_REC_LEN;
        memset(buf + n, 0xab, caplens[i]);
        n += caplens[i];
    }
    return n;
}

static void test_every_prefix(void **state)
{
    (void)state;
    uint8_t buf[1024];
    size_t total = s_small_file(buf);
    const size_t first = TB_CAPFILE_HEADER_LEN + 5;
    const size_t ends[3] = {first + 36, first + 36 + 39, first + 36 + 39 + 96};
    assert_int_equal(ends[2], total);
    for (size_t len = 0; len <= total; len++) {
        FILE *fp = tmpfile();
        assert_non_null(fp);
        assert_int_equal(fwrite(buf, 1, len, fp), len);
        rewind(fp);
        tb_capfile_t *cf = NULL;
        char err[128] = "";
        int rc = tb_capfile_open(fp, &cf, err, sizeof err);
        if (len < first) {
            assert_int_equal(rc, TB_ETRUNC);
            assert_null(cf);
            fclose(fp);
            continue;
        }
        assert_int_equal(rc, 0);
        int whole = 0;
        size_t at = first;
        for (int i = 0; i < 3; i++) {
            if (ends[i] <= len) {
                whole++;
                at = ends[i];
            }
        }
        tb_capfile_rec_t rec;
        const uint8_t *data = NULL;
        int got = 0;
        while ((rc = tb_capfile_next(cf, &rec, &data, err, sizeof err)) == 1) {
            got++;
            assert_int_equal(rec.sec, (uint32_t)got);
            assert_int_equal(rec.len, rec.caplen + 10);
            for (uint32_t k = 0; k < rec.caplen; k++) {
                assert_int_equal(data[k], 0xab);
            }
        }
        assert_int_equal(got, whole);
        assert_int_equal(rc, len == at ? 0 : TB_ETRUNC);
        assert_int_equal(ftell(tb_capfile_file(cf)), (long)at); /* after the last whole record */
        tb_capfile_destroy(&cf);
        assert_null(cf);
    }
    tb_capfile_destroy(NULL);
}

static void test_corrupt_caplen(void **state)
{
    (void)state;
    uint8_t buf[1024];
    size_t total = s_small_file(buf);
    uint8_t *r = buf + TB_CAPFILE_HEADER_LEN + 5;
    r[32] = 0xff;
    r[35] = 0x7f; /* caplen far beyond any frame */
    FILE *fp = tmpfile();
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, total, fp), total);
    rewind(fp);
    tb_capfile_t *cf = NULL;
    char err[128] = "";
    assert_int_equal(tb_capfile_open(fp, &cf, err, sizeof err), 0);
    tb_capfile_rec_t rec;
    const uint8_t *data = NULL;
    assert_int_equal(tb_capfile_next(cf, &rec, &data, err, sizeof err), TB_EPROTO);
    assert_non_null(strstr(err, "captured length"));
    tb_capfile_destroy(&cf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_little_endian), cmocka_unit_test(test_header_big_endian),
        cmocka_unit_test(test_record_byte_order),    cmocka_unit_test(test_refused),
        cmocka_unit_test(test_legacy_headers),       cmocka_unit_test(test_legacy_files),
        cmocka_unit_test(test_every_prefix),         cmocka_unit_test(test_corrupt_caplen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
