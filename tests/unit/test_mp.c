/* test_mp — tb_mp: every msgpack format read, truncation, hostile counts,
 * depth limits, sticky errors, bounded strings and the fixed-buffer writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tb_err.h"
#include "tb_mp.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Every strict prefix of a single value must fail with TB_ETRUNC when
 * skipped, and the full value must be consumed exactly. */
static void s_check_prefixes(const uint8_t *b, size_t n)
{
    tb_mp_reader_t r;
    for (size_t k = 0; k < n; k++) {
        tb_mp_reader_init(&r, b, k);
        tb_mp_skip(&r);
        assert_int_equal(r.error, TB_ETRUNC);
    }
    tb_mp_reader_init(&r, b, n);
    tb_mp_skip(&r);
    assert_int_equal(r.error, 0);
    assert_int_equal(tb_mp_remaining(&r), 0);
}

static void s_expect_uint(const uint8_t *b, size_t n, uint64_t v)
{
    tb_mp_reader_t r;
    tb_mp_reader_init(&r, b, n);
    assert_int_equal(tb_mp_peek(&r), TB_MP_UINT);
    assert_true(tb_mp_read_uint(&r) == v);
    assert_int_equal(r.error, 0);
    assert_int_equal(tb_mp_remaining(&r), 0);
    /* The same value through the float reader. */
    tb_mp_reader_init(&r, b, n);
    assert_true(tb_mp_read_float(&r) == (double)v);
    assert_int_equal(r.error, 0);
    /* read_int: in range up to INT64_MAX. */
    tb_mp_reader_init(&r, b, n);
    int64_t i = tb_mp_read_int(&r);
    if (v <= (uint64_t)INT64_MAX) {
        assert_int_equal(r.error, 0);
        assert_true(i == (int64_t)v);
    } else {
        assert_int_equal(r.error, TB_ELIMIT);
        assert_true(i == 0);
    }
    s_check_prefixes(b, n);
}

static void s_expect_int(const uint8_t *b, size_t n, int64_t v)
{
    tb_mp_reader_t r;
    tb_mp_reader_init(&r, b, n);
    assert_int_equal(tb_mp_peek(&r), TB_MP_INT);
    assert_true(tb_mp_read_int(&r) == v);
    assert_int_equal(r.error, 0);
    assert_int_equal(tb_mp_remaining(&r), 0);
    /* A negative value is out of range for read_uint. */
    tb_mp_reader_init(&r, b, n);
    assert_true(tb_mp_read_uint(&r) == 0);
    assert_int_equal(r.error, TB_ELIMIT);
    assert_ptr_equal(r.ptr, b); /* nothing consumed */
    s_check_prefixes(b, n);
}

static void test_uint_formats(void **state)
{
    (void)state;
    static const uint8_t fix0[] = {0x00};
    static const uint8_t fix127[] = {0x7f};
    static const uint8_t u8lo[] = {0xcc, 0x80};
    static const uint8_t u8hi[] = {0xcc, 0xff};
    static const uint8_t u16lo[] = {0xcd, 0x01, 0x00};
    static const uint8_t u16hi[] = {0xcd, 0xff, 0xff};
    static const uint8_t u32lo[] = {0xce, 0x00, 0x01, 0x00, 0x00};
    static const uint8_t u32hi[] = {0xce, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t u64lo[] = {0xcf, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00};
    static const uint8_t u64mid[] = {0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t u64hi[] = {0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    /* Non-minimal encodings are accepted: the value is what counts. */
    static const uint8_t u64small[] = {0xcf, 0, 0, 0, 0, 0, 0, 0, 5};
    /* Signed formats holding non-negative values are unsigned integers. */
    static const uint8_t i8pos[] = {0xd0, 0x05};
    static const uint8_t i64max[] = {0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    s_expect_uint(fix0, sizeof fix0, 0);
    s_expect_uint(fix127, sizeof fix127, 127);
    s_expect_uint(u8lo, sizeof u8lo, 128);
    s_expect_uint(u8hi, sizeof u8hi, 255);
    s_expect_uint(u16lo, sizeof u16lo, 256);
    s_expect_uint(u16hi, sizeof u16hi, 65535);
    s_expect_uint(u32lo, sizeof u32lo, 65536);
    s_expect_uint(u32hi, sizeof u32hi, UINT32_MAX);
    s_expect_uint(u64lo, sizeof u64lo, (uint64_t)UINT32_MAX + 1);
    s_expect_uint(u64mid, sizeof u64mid, (uint64_t)INT64_MAX);
    s_expect_uint(u64hi, sizeof u64hi, UINT64_MAX);
    s_expect_uint(u64small, sizeof u64small, 5);
    s_expect_uint(i8pos, sizeof i8pos, 5);
    s_expect_uint(i64max, sizeof i64max, (uint64_t)INT64_MAX);
}

static void test_int_formats(void **state)
{
    (void)state;
    static const uint8_t nfix1[] = {0xff};
    static const uint8_t nfix32[] = {0xe0};
    static const uint8_t i8a[] = {0xd0, 0xdf};
    static const uint8_t i8b[] = {0xd0, 0x80};
    static const uint8_t i16a[] = {0xd1, 0xff, 0x7f};
    static const uint8_t i16b[] = {0xd1, 0x80, 0x00};
    static const uint8_t i32a[] = {0xd2, 0xff, 0xff, 0x7f, 0xff};
    static const uint8_t i32b[] = {0xd2, 0x80, 0x00, 0x00, 0x00};
    static const uint8_t i64a[] = {0xd3, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff};
    static const uint8_t i64b[] = {0xd3, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    s_expect_int(nfix1, sizeof nfix1, -1);
    s_expect_int(nfix32, sizeof nfix32, -32);
    s_expect_int(i8a, sizeof i8a, -33);
    s_expect_int(i8b, sizeof i8b, -128);
    s_expect_int(i16a, sizeof i16a, -129);
    s_expect_int(i16b, sizeof i16b, INT16_MIN);
    s_expect_int(i32a, sizeof i32a, -32769);
    s_expect_int(i32b, sizeof i32b, INT32_MIN);
    s_expect_int(i64a, sizeof i64a, (int64_t)INT32_MIN - 1);
    s_expect_int(i64b, sizeof i64b, INT64_MIN);
}

/* msgpack-c's packer picks the smallest format; our reader reads them back. */
static void test_ints_via_msgpack_c(void **state)
{
    (void)state;
    static const uint64_t uv[] = {0,
                                  1,
                                  127,
                                  128,
                                  255,
                                  256,
                                  65535,
                                  65536,
                                  UINT32_MAX,
                                  (uint64_t)UINT32_MAX + 1,
                                  UINT64_MAX - 1,
                                  UINT64_MAX};
    static const int64_t iv[] = {-1,
                                 -32,
                                 -33,
                                 -128,
                                 -129,
                                 INT16_MIN,
                                 -32769,
                                 INT32_MIN,
                                 (int64_t)INT32_MIN - 1,
                                 INT64_MIN + 1,
                                 INT64_MIN};
    uint8_t storage[16 * 32];
    tb_mp_buf_t b;
    msgpack_packer pk;
    tb_mp_buf_init(&b, &pk, storage, sizeof storage);
    for (size_t i = 0; i < N(uv); i++) {
        assert_int_equal(msgpack_pack_uint64(&pk, uv[i]), 0);
    }
    for (size_t i = 0; i < N(iv); i++) {
        assert_int_equal(msgpack_pack_int64(&pk, iv[i]), 0);
    }
    assert_false(b.overflow);
    tb_mp_reader_t r;
    tb_mp_reader_init(&r, b.data, b.len);
    for (size_t i = 0; i < N(uv); i++) {
        assert_true(tb_mp_read_uint(&r) == uv[i]);
    }
    for (size_t i = 0; i < N(iv); i++) {
        assert_true(tb_mp_read_int(&r) == iv[i]);
    }
    assert_int_equal(r.error, 0);
    assert_int_equal(tb_mp_remaining(&r), 0);
}

static void test_nil_bool_float(void **state)
{
    (void)state;
    static const uint8_t buf[] = {
        0xc0,                                                 /* nil */
        0xc2, 0xc3,                                           /* false, true */
        0xca, 0x3f, 0xc0, 0x00, 0x00,                         /* float32 1.5 */
        0xcb, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18, /* float64 pi */
        0xcb, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* float64 -2 */
        0xe0,                                                 /* -32 as a float */
    };
    tb_mp_reader_t r;
    tb_mp_reader_init(&r, buf, sizeof buf);
    assert_int_equal(tb_mp_peek(&r), TB_MP_NIL);
    tb_mp_read_nil(&r);
    assert_int_equal(tb_mp_peek(&r), TB_MP_BOOL);
    assert_int_equal(tb_mp_read_bool(&r), 0);
    assert_int_equal(tb_mp_read_bool(&r), 1);
    assert_int_equal(tb_mp_peek(&r), TB_MP_FLOAT);
    assert_true(tb_mp_read_float(&r) == 1.5);
    assert_true(tb_mp_read_float(&r) == 3.141592653589793);
    assert_true(tb_mp_read_float(&r) == -2.0);
    assert_true(tb_mp_read_float(&r) == -32.0);
    assert_int_equal(r.error, 0);
    assert_int_equal(tb_mp_remaining(&r), 0);
    assert_int_equal(tb_mp_peek(&r), TB_MP_INVALID); /* at the end */

    /* Truncated floats. */
    for (size_t k = 3; k < 8; k++) {
        tb_mp_reader_init(&r, buf + 3, k - 3);
        assert_true(tb_mp_read_float(&r) == 0.0);
        assert_int_equal(r.error, TB_ETRUNC);
    }
    /* A float is not an integer. */
    tb_mp_reader_init(&r, buf + 3, 5);
    assert_true(tb_mp_read_uint(&r) == 0);
    assert_int_equal(r.error, TB_EPROTO);
}

/* A str or bin value of `len` bytes with header `hdr`/`hlen`, checked with the
 * matching reader. */
static void s_check_blob(int is_str, const uint8_t *hdr, size_t hlen, uint32_t len)
{
    size_t n = hlen + len;
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    memcpy(buf, hdr, hlen);
    for (uint32_t i = 0; i < len; i++) {
        buf[hlen + i] = (uint8_t)('a' + i % 26);
    }
    tb_mp_reader_t r;
    uint32_t got = 0;
    tb_mp_reader_init(&r, buf, n);
    assert_int_equal(tb_mp_peek(&r), is_str ? TB_MP_STR : TB_MP_BIN);
    const void *p =
        is_str ? (const void *)tb_mp_read_str(&r, &got) : (const void *)tb_mp_read_bin(&r, &got);
    assert_int_equal(r.error, 0);
    assert_ptr_equal(p, buf + hlen);
    assert_int_equal(got, len);
    assert_int_equal(tb_mp_remaining(&r), 0);

    /* Cut one byte short of the payload, and inside the header. */
    tb_mp_reader_init(&r, buf, n - 1);
    p = is_str ? (const void *)tb_mp_read_str(&r, &got) : (const void *)tb_mp_read_bin(&r, &got);
    assert_null(p);
    assert_int_equal(got, 0);
    assert_int_equal(r.error, TB_ETRUNC);
    assert_ptr_equal(r.ptr, buf);
    if (hlen > 1) {
        tb_mp_reader_init(&r, buf, hlen - 1);
        assert_int_equal(tb_mp_peek(&r), TB_MP_INVALID);
        tb_mp_skip(&r);
        assert_int_equal(r.error, TB_ETRUNC);
    }

    /* The other reader refuses it. */
    tb_mp_reader_init(&r, buf, n);
    p = is_str ? (const void *)tb_mp_read_bin(&r, &got) : (const void *)tb_mp_read_str(&r, &got);
    assert_null(p);
    assert_int_equal(r.error, TB_EPROTO);

    /* Skip consumes exactly the value. */
    tb_mp_reader_init(&r, buf, n);
    tb_mp_skip(&r);
    assert_int_equal(r.error, 0);
    assert_int_equal(tb_mp_remaining(&r), 0);
    free(buf);
}

static void test_str_formats(void **state)
{
    (void)state;
    const uint8_t fix0[] = {0xa0};
    const uint8_t fix31[] = {0xbf};
    const uint8_t s8lo[] = {0xd9, 32};
    const uint8_t s8hi[] = {0xd9, 255};
    const uint8_t s16lo[] = {0xda, 0x01, 0x00};
    const uint8_t s16hi[] = {0xda, 0xff, 0xff};
    const uint8_t s32[] = {0xdb, 0x00, 0x01, 0x00, 0x00};
    const uint8_t s32small[] = {0xdb, 0x00, 0x00, 0x00, 0x03};
    s_check_blob(1, fix0, 1, 0);
    s_check_blob(1, fix31, 1, 31);
    s_check_blob(1, s8lo, 2, 32);
    s_check_blob(1, s8hi, 2, 255);
    s_check_blob(1, s16lo, 3, 256);
    s_check_blob(1, s16hi, 3, 65535);
    s_check_blob(1, s32, 5, 65536);
    s_check_blob(1, s32small, 5, 3);
}

static void test_bin_formats(void **state)
{
    (void)state;
    const uint8_t b8a[] = {0xc4, 0};
    const uint8_t b8b[] = {0xc4, 255};
    const uint8_t b16[] = {0xc5, 0x01, 0x00};
    const uint8_t b16hi[] = {0xc5, 0xff, 0xff};
    const uint8_t b32[] = {0xc6, 0x00, 0x01, 0x00, 0x00};
    s_check_blob(0, b8a, 2, 0);
    s_check_blob(0, b8b, 2, 255);
    s_check_blob(0, b16, 3, 256);
    s_check_blob(0, b16hi, 3, 65535);
    s_check_blob(0, b32, 5, 65536);
}

static void test_array_map_formats(void **state)
{
    (void)state;
    tb_mp_reader_t r;
    /* fixarray of 15 nils, array16 of 16 nils, array32 of 2 nils. */
    uint8_t buf[1 + 15 + 3 + 16 + 5 + 2];
    size_t o = 0;
    buf[o++] = 0x9f;
    memset(buf + o, 0xc0, 15);
    o += 15;
    buf[o++] = 0xdc;
    buf[o++] = 0x00;
    buf[o++] = 0x10;
    memset(buf + o, 0xc0, 16);
    o += 16;
    buf[o++] = 0xdd;
    buf[o++] = 0;
    buf[o++] = 0;
    buf[o++] = 0;
    buf[o++] = 2;
    buf[o++] = 0xc0;
    buf[o++] = 0xc0;
    assert_int_equal(o, sizeof buf);
    tb_mp_reader_init(&r, buf, sizeof buf);
    assert_int_equal(tb_mp_peek(&r), TB_MP_ARRAY);
    assert_int_equal(tb_mp_read_array(&r), 15);
    for (int i = 0; i < 15; i++) {
        tb_mp_read_nil(&r);
    }
    assert_int_equal(tb_mp_read_array(&r), 16);
    for (int i = 0; i < 16; i++) {
        tb_mp_skip(&r);
    }
    assert_int_equal(tb_mp_read_array(&r), 2);
    tb_mp_skip(&r);
    tb_mp_skip(&r);
    assert_int_equal(r.error, 0);
    assert_int_equal(tb_mp_remaining(&r), 0);

    /* fixmap {"a": 1}, map16 {1: 2}, map32 {} */
    static const uint8_t m[] = {0x81, 0xa1, 'a',  0x01, 0xde, 0x00, 0x01,
                                0x01, 0x02, 0xdf, 0x00, 0x00, 0x00, 0x00};
    tb_mp_reader_init(&r, m, sizeof m);
    assert_int_equal(tb_mp_peek(&r), TB_MP_MAP);
    assert_int_equal(tb_mp_read_map(&r), 1);
    assert_true(tb_mp_next_str_is(&r, "a"));
    assert_true(tb_mp_read_uint(&r) == 1);
    assert_int_equal(tb_mp_read_map(&r), 1);
    assert_true(tb_mp_read_uint(&r) == 1);
    assert_true(tb_mp_read_uint(&r) == 2);
    assert_int_equal(tb_mp_read_map(&r), 0);
    assert_int_equal(r.error, 0);
    assert_int_equal(tb_mp_remaining(&r), 0);
    s_check_prefixes(m, 4);
    s_check_prefixes(m + 4, 5);
    s_check_prefixes(m + 9, 5);
}

static void test_ext_formats(void **state)
{
    (void)state;
    static const uint8_t v[] = {
        0xd4, 0x01, 0xaa,                                 /* fixext1 */
        0xd5, 0x01, 1,    2,                              /* fixext2 */
        0xd6, 0xff, 1,    2,    3,    4,                  /* fixext4 (timestamp32) */
        0xd7, 0x01, 1,    2,    3,    4,    5,  6,  7, 8, /* fixext8 */
        0xd8, 0x01, 1,    2,    3,    4,    5,  6,  7, 8,
        9,    10,   11,   12,   13,   14,   15, 16, /* fixext16 */
        0xc7, 0x03, 0x01, 1,    2,    3,            /* ext8 */
        0xc8, 0x00, 0x02, 0x01, 1,    2,            /* ext16 */
        0xc9, 0x00, 0x00, 0x00, 0x01, 0x01, 9,      /* ext32 */
        0xc7, 0x00, 0x05,                           /* ext8, empty */
    };
    static const size_t sizes[] = {3, 4, 6, 10, 18, 6, 6, 7, 3};
    tb_mp_reader_t r;
    tb_mp_reader_init(&r, v, sizeof v);
    size_t off = 0;
    for (size_t i = 0; i < N(sizes); i++) {
        assert_int_equal(tb_mp_peek(&r), TB_MP_EXT);
        tb_mp_skip(&r);
        off += sizes[i];
        assert_int_equal(r.error, 0);
        assert_ptr_equal(r.ptr, v + off);
        s_check_prefixes(v + off - sizes[i], sizes[i]);
    }
    assert_int_equal(tb_mp_remaining(&r), 0);
    /* An ext is none of the typed values. */
    tb_mp_reader_init(&r, v, sizeof v);
    uint32_t len;
    assert_null(tb_mp_read_bin(&r, &len));
    assert_int_equal(r.error, TB_EPROTO);
}

/* A composite value: every strict prefix is a truncation. */
static void test_truncation_every_prefix(void **state)
{
    (void)state;
    uint8_t storage[256];
    tb_mp_buf_t b;
    msgpack_packer pk;
    tb_mp_buf_init(&b, &pk, storage, sizeof storage);
    msgpack_pack_map(&pk, 3);
    tb_mp_pack_cstr(&pk, "list");
    msgpack_pack_array(&pk, 7);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_int64(&pk, -200);
    tb_mp_pack_cstr(&pk, "xyz");
    msgpack_pack_bin_with_body(&pk, "\x01\x02\x03", 3);
    msgpack_pack_double(&pk, 1.5);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_nil(&pk);
    msgpack_pack_true(&pk);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    tb_mp_pack_cstr(&pk, "ext");
    msgpack_pack_ext_with_body(&pk, "abcdefgh", 8, 7);
    tb_mp_pack_cstr(&pk, "nested");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 0);
    assert_false(b.overflow);
    s_check_prefixes(b.data, b.len);

    /* And reading it field by field from a prefix fails with TB_ETRUNC too. */
    for (size_t k = 0; k < b.len; k++) {
        tb_mp_reader_t r;
        uint32_t len;
        tb_mp_reader_init(&r, b.data, k);
        uint32_t n = tb_mp_read_map(&r);
        (void)n;
        tb_mp_read_str(&r, &len);
        uint32_t m = tb_mp_read_array(&r);
        (void)m;
        tb_mp_read_uint(&r);
        tb_mp_read_int(&r);
        tb_mp_read_str(&r, &len);
        tb_mp_read_bin(&r, &len);
        tb_mp_read_float(&r);
        tb_mp_read_map(&r);
        tb_mp_read_nil(&r);
        tb_mp_read_bool(&r);
        tb_mp_read_uint(&r);
        tb_mp_skip(&r);
        tb_mp_skip(&r);
        tb_mp_skip(&r);
        tb_mp_skip(&r);
        assert_int_equal(r.error, TB_ETRUNC);
    }
}

static void test_hostile_counts(void **state)
{
    (void)state;
    tb_mp_reader_t r;
    /* array32 claiming 4e9 elements in ten bytes. */
    static const uint8_t a32[] = {0xdd, 0xee, 0x6b, 0x28, 0x00, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0};
    tb_mp_reader_init(&r, a32, sizeof a32);
    assert_int_equal(tb_mp_read_array(&r), 0);
    assert_int_equal(r.error, TB_ETRUNC);
    assert_ptr_equal(r.ptr, a32);
    tb_mp_reader_init(&r, a32, sizeof a32);
    tb_mp_skip(&r);
    assert_int_equal(r.error, TB_ETRUNC);

    /* map32 of 0xffffffff pairs. */
    static const uint8_t m32[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0};
    tb_mp_reader_init(&r, m32, sizeof m32);
    assert_int_equal(tb_mp_read_map(&r), 0);
    assert_int_equal(r.error, TB_ETRUNC);
    tb_mp_reader_init(&r, m32, sizeof m32);
    tb_mp_skip(&r);
    assert_int_equal(r.error, TB_ETRUNC);

    /* str32 / bin32 / ext32 claiming 4 GiB. */
    static const uint8_t s32[] = {0xdb, 0xff, 0xff, 0xff, 0xff, 'a'};
    static const uint8_t b32[] = {0xc6, 0xff, 0xff, 0xff, 0xff, 'a'};
    static const uint8_t e32[] = {0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 'a'};
    uint32_t len = 1;
    tb_mp_reader_init(&r, s32, sizeof s32);
    assert_null(tb_mp_read_str(&r, &len));
    assert_int_equal(len, 0);
    assert_int_equal(r.error, TB_ETRUNC);
    tb_mp_reader_init(&r, b32, sizeof b32);
    assert_null(tb_mp_read_bin(&r, &len));
    assert_int_equal(r.error, TB_ETRUNC);
    tb_mp_reader_init(&r, e32, sizeof e32);
    tb_mp_skip(&r);
    assert_int_equal(r.error, TB_ETRUNC);

    /* Boundaries: count == bytes left is accepted, count == bytes left + 1
     * is not; a map needs two bytes per pair. */
    static const uint8_t a3[] = {0x93, 0xc0, 0xc0, 0xc0};
    tb_mp_reader_init(&r, a3, sizeof a3);
    assert_int_equal(tb_mp_read_array(&r), 3);
    assert_int_equal(r.error, 0);
    tb_mp_reader_init(&r, a3, sizeof a3 - 1);
    assert_int_equal(tb_mp_read_array(&r), 0);
    assert_int_equal(r.error, TB_ETRUNC);
    static const uint8_t m2[] = {0x82, 0xc0, 0xc0, 0xc0, 0xc0};
    tb_mp_reader_init(&r, m2, sizeof m2);
    assert_int_equal(tb_mp_read_map(&r), 2);
    assert_int_equal(r.error, 0);
    tb_mp_reader_init(&r, m2, sizeof m2 - 1);
    assert_int_equal(tb_mp_read_map(&r), 0);
    assert_int_equal(r.error, TB_ETRUNC);
}

static void test_depth_bomb(void **state)
{
    (void)state;
    tb_mp_reader_t r;
    uint8_t nest[TB_MP_MAX_DEPTH + 2];
    /* TB_MP_MAX_DEPTH nested arrays around a nil are fine... */
    memset(nest, 0x91, TB_MP_MAX_DEPTH);
    nest[TB_MP_MAX_DEPTH] = 0xc0;
    tb_mp_reader_init(&r, nest, TB_MP_MAX_DEPTH + 1);
    tb_mp_skip(&r);
    assert_int_equal(r.error, 0);
    assert_int_equal(tb_mp_remaining(&r), 0);
    /* ...one more is refused. */
    memset(nest, 0x91, TB_MP_MAX_DEPTH + 1);
    nest[TB_MP_MAX_DEPTH + 1] = 0xc0;
    tb_mp_reader_init(&r, nest, sizeof nest);
    tb_mp_skip(&r);
    assert_int_equal(r.error, TB_ELIMIT);

    /* A million nested arrays and maps: refused quickly, no stack overflow. */
    size_t n = 1000000;
    uint8_t *bomb = malloc(n);
    assert_non_null(bomb);
    for (size_t i = 0; i < n; i++) {
        bomb[i] = (i % 2) ? 0x91 : 0x81;
    }
    tb_mp_reader_init(&r, bomb, n);
    tb_mp_skip(&r);
    assert_int_equal(r.error, TB_ELIMIT);
    free(bomb);

    /* Wide is fine: a flat array of 100000 nils. */
    n = 100000;
    uint8_t *wide = malloc(n + 5);
    assert_non_null(wide);
    wide[0] = 0xdd;
    wide[1] = 0;
    wide[2] = 0x01;
    wide[3] = 0x86;
    wide[4] = 0xa0;
    memset(wide + 5, 0xc0, n);
    tb_mp_reader_init(&r, wide, n + 5);
    tb_mp_skip(&r);
    assert_int_equal(r.error, 0);
    assert_int_equal(tb_mp_remaining(&r), 0);
    free(wide);
}

static void test_reserved_c1(void **state)
{
    (void)state;
    static const uint8_t c1[] = {0xc1, 0x00};
    static const uint8_t in_array[] = {0x92, 0x01, 0xc1};
    tb_mp_reader_t r;
    uint32_t len;
    tb_mp_reader_init(&r, c1, sizeof c1);
    assert_int_equal(tb_mp_peek(&r), TB_MP_INVALID);
    assert_int_equal(r.error, 0); /* peeking never sets an error */
    assert_true(tb_mp_read_uint(&r) == 0);
    assert_int_equal(r.error, TB_EPROTO);
    tb_mp_reader_init(&r, c1, sizeof c1);
    tb_mp_skip(&r);
    assert_int_equal(r.error, TB_EPROTO);
    tb_mp_reader_init(&r, c1, sizeof c1);
    assert_null(tb_mp_read_str(&r, &len));
    assert_int_equal(r.error, TB_EPROTO);
    tb_mp_reader_init(&r, in_array, sizeof in_array);
    tb_mp_skip(&r);
    assert_int_equal(r.error, TB_EPROTO);
}

static void test_type_mismatch(void **state)
{
    (void)state;
    static const uint8_t one[] = {0x01};
    static const uint8_t str[] = {0xa1, 'x'};
    static const uint8_t map[] = {0x80};
    static const uint8_t arr[] = {0x90};
    static const uint8_t nil[] = {0xc0};
    static const uint8_t tru[] = {0xc3};
    tb_mp_reader_t r;
    uint32_t len;

    tb_mp_reader_init(&r, one, 1);
    assert_null(tb_mp_read_str(&r, &len));
    assert_int_equal(r.error, TB_EPROTO);
    tb_mp_reader_init(&r, str, 2);
    assert_true(tb_mp_read_uint(&r) == 0);
    assert_int_equal(r.error, TB_EPROTO);
    tb_mp_reader_init(&r, str, 2);
    assert_true(tb_mp_read_int(&r) == 0);
    assert_int_equal(r.error, TB_EPROTO);
    tb_mp_reader_init(&r, map, 1);
    assert_int_equal(tb_mp_read_array(&r), 0);
    assert_int_equal(r.error, TB_EPROTO);
    tb_mp_reader_init(&r, arr, 1);
    assert_int_equal(tb_mp_read_map(&r), 0);
    assert_int_equal(r.error, TB_EPROTO);
    tb_mp_reader_init(&r, one, 1);
    tb_mp_read_nil(&r);
    assert_int_equal(r.error, TB_EPROTO);
    tb_mp_reader_init(&r, nil, 1);
    assert_int_equal(tb_mp_read_bool(&r), 0);
    assert_int_equal(r.error, TB_EPROTO);
    tb_mp_reader_init(&r, tru, 1);
    assert_true(tb_mp_read_uint(&r) == 0);
    assert_int_equal(r.error, TB_EPROTO);
    tb_mp_reader_init(&r, str, 2);
    assert_true(tb_mp_read_float(&r) == 0.0);
    assert_int_equal(r.error, TB_EPROTO);

    /* Empty input: every reader reports truncation. */
    tb_mp_reader_init(&r, NULL, 0);
    assert_int_equal(tb_mp_remaining(&r), 0);
    assert_int_equal(tb_mp_peek(&r), TB_MP_INVALID);
    assert_true(tb_mp_read_uint(&r) == 0);
    assert_int_equal(r.error, TB_ETRUNC);
}

static void test_sticky_error(void **state)
{
    (void)state;
    static const uint8_t buf[] = {0xa1, 'x', 0x05, 0x93, 0x01, 0x02, 0x03};
    tb_mp_reader_t r;
    uint32_t len;
    tb_mp_reader_init(&r, buf, sizeof buf);
    assert_true(tb_mp_read_uint(&r) == 0); /* a string: EPROTO */
    assert_int_equal(r.error, TB_EPROTO);
    const uint8_t *at = r.ptr;
    assert_ptr_equal(at, buf);
    /* Everything after fails without moving or changing the error. */
    assert_null(tb_mp_read_str(&r, &len));
    assert_true(tb_mp_read_uint(&r) == 0);
    assert_int_equal(tb_mp_read_array(&r), 0);
    assert_int_equal(tb_mp_peek(&r), TB_MP_INVALID);
    assert_false(tb_mp_next_str_is(&r, "x"));
    tb_mp_skip(&r);
    char dst[8] = "junk";
    assert_int_equal(tb_mp_read_str_copy(&r, dst, sizeof dst), 0);
    assert_string_equal(dst, "");
    assert_int_equal(r.error, TB_EPROTO);
    assert_ptr_equal(r.ptr, at);
}

static void test_str_copy(void **state)
{
    (void)state;
    static const uint8_t abc[] = {0xa3, 'a', 'b', 'c'};
    static const uint8_t nul[] = {0xa3, 'a', 0, 'c'};
    static const uint8_t empty[] = {0xa0};
    tb_mp_reader_t r;
    char dst[4];

    tb_mp_reader_init(&r, abc, sizeof abc);
    assert_int_equal(tb_mp_read_str_copy(&r, dst, sizeof dst), 3); /* exactly fits */
    assert_string_equal(dst, "abc");
    assert_int_equal(r.error, 0);

    tb_mp_reader_init(&r, abc, sizeof abc);
    assert_int_equal(tb_mp_read_str_copy(&r, dst, 3), 0); /* one byte short */
    assert_int_equal(r.error, TB_ELIMIT);
    assert_string_equal(dst, "");

    tb_mp_reader_init(&r, abc, sizeof abc);
    assert_int_equal(tb_mp_read_str_copy(&r, dst, 0), 0);
    assert_int_equal(r.error, TB_ELIMIT);

    tb_mp_reader_init(&r, nul, sizeof nul);
    assert_int_equal(tb_mp_read_str_copy(&r, dst, sizeof dst), 0);
    assert_int_equal(r.error, TB_EPROTO);
    assert_string_equal(dst, "");

    tb_mp_reader_init(&r, empty, sizeof empty);
    strcpy(dst, "zz");
    assert_int_equal(tb_mp_read_str_copy(&r, dst, sizeof dst), 0);
    assert_int_equal(r.error, 0);
    assert_string_equal(dst, "");

    tb_mp_reader_init(&r, abc, 3); /* truncated */
    assert_int_equal(tb_mp_read_str_copy(&r, dst, sizeof dst), 0);
    assert_int_equal(r.error, TB_ETRUNC);
}

static void test_next_str_is(void **state)
{
    (void)state;
    static const uint8_t buf[] = {0xa2, 'a', 'b', 0x01, 0xa2, 'a', 'b'};
    tb_mp_reader_t r;
    tb_mp_reader_init(&r, buf, sizeof buf);
    assert_false(tb_mp_next_str_is(&r, "a"));   /* shorter */
    assert_false(tb_mp_next_str_is(&r, "abc")); /* longer */
    assert_false(tb_mp_next_str_is(&r, "ax"));  /* different */
    assert_ptr_equal(r.ptr, buf);
    assert_true(tb_mp_next_str_is(&r, "ab"));
    assert_ptr_equal(r.ptr, buf + 3);
    assert_false(tb_mp_next_str_is(&r, "ab")); /* not a string */
    assert_ptr_equal(r.ptr, buf + 3);
    assert_int_equal(r.error, 0);
    tb_mp_read_uint(&r);
    assert_true(tb_mp_next_str_is(&r, "ab"));
    assert_int_equal(tb_mp_remaining(&r), 0);
    assert_false(tb_mp_next_str_is(&r, "ab")); /* at the end */
    assert_int_equal(r.error, 0);

    /* A truncated string does not match and does not fail. */
    tb_mp_reader_init(&r, buf, 2);
    assert_false(tb_mp_next_str_is(&r, "ab"));
    assert_int_equal(r.error, 0);
    assert_ptr_equal(r.ptr, buf);

    static const uint8_t empty[] = {0xa0};
    tb_mp_reader_init(&r, empty, 1);
    assert_true(tb_mp_next_str_is(&r, ""));
}

static void test_writer(void **state)
{
    (void)state;
    uint8_t storage[8];
    tb_mp_buf_t b;
    msgpack_packer pk;

    /* Exactly full. */
    tb_mp_buf_init(&b, &pk, storage, 8);
    assert_int_equal(msgpack_pack_array(&pk, 2), 0);
    assert_int_equal(msgpack_pack_uint8(&pk, 1), 0);
    assert_int_equal(tb_mp_pack_cstr(&pk, "abcd"), 0);
    assert_int_equal(b.len, 7);
    assert_int_equal(msgpack_pack_nil(&pk), 0);
    assert_int_equal(b.len, 8);
    assert_false(b.overflow);
    static const uint8_t want[] = {0x92, 0x01, 0xa4, 'a', 'b', 'c', 'd', 0xc0};
    assert_memory_equal(storage, want, sizeof want);

    /* One byte too many. */
    assert_int_equal(msgpack_pack_nil(&pk), -1);
    assert_true(b.overflow);
    assert_int_equal(b.len, 8);

    /* A write that does not fit fails; later ones fail too, even small. */
    tb_mp_buf_init(&b, &pk, storage, 8);
    assert_int_equal(msgpack_pack_uint8(&pk, 1), 0);
    assert_int_equal(msgpack_pack_uint64(&pk, UINT64_MAX), -1);
    assert_true(b.overflow);
    assert_int_equal(b.len, 1);
    assert_int_equal(msgpack_pack_nil(&pk), -1);
    assert_int_equal(b.len, 1);

    /* A string body that does not fit. */
    tb_mp_buf_init(&b, &pk, storage, 8);
    assert_int_equal(tb_mp_pack_cstr(&pk, "abcdefghij"), TB_ENOMEM);
    assert_true(b.overflow);

    /* Zero capacity, NULL storage. */
    tb_mp_buf_init(&b, &pk, NULL, 100);
    assert_int_equal(msgpack_pack_nil(&pk), -1);
    assert_true(b.overflow);
    assert_int_equal(b.len, 0);
    assert_int_equal(tb_mp_pack_cstr(&pk, NULL), TB_EINVAL);

    /* Re-initialising clears the overflow. */
    tb_mp_buf_init(&b, &pk, storage, sizeof storage);
    assert_false(b.overflow);
    assert_int_equal(tb_mp_pack_cstr(&pk, ""), 0);
    assert_int_equal(b.len, 1);
    assert_int_equal(storage[0], 0xa0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uint_formats),
        cmocka_unit_test(test_int_formats),
        cmocka_unit_test(test_ints_via_msgpack_c),
        cmocka_unit_test(test_nil_bool_float),
        cmocka_unit_test(test_str_formats),
        cmocka_unit_test(test_bin_formats),
        cmocka_unit_test(test_array_map_formats),
        cmocka_unit_test(test_ext_formats),
        cmocka_unit_test(test_truncation_every_prefix),
        cmocka_unit_test(test_hostile_counts),
        cmocka_unit_test(test_depth_bomb),
        cmocka_unit_test(test_reserved_c1),
        cmocka_unit_test(test_type_mismatch),
        cmocka_unit_test(test_sticky_error),
        cmocka_unit_test(test_str_copy),
        cmocka_unit_test(test_next_str_is),
        cmocka_unit_test(test_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
