/* Differential test of the batch encoder's hand-written hot path against
 * msgpack-c: random summaries covering every integer width must encode to
 * exactly the bytes msgpack-c's packer produces for the documented layout
 * (summaries naming measurement points with the batch's point table too),
 * and decode back to the same summaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tb_err.h"
#include "tb_wire.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

static uint64_t s_state = 0x243f6a8885a308d3ull;

static uint64_t s_rand(void)
{
    uint64_t x = s_state; /* xorshift64*: deterministic */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s_state = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* A value of random width, so every msgpack integer encoding occurs. */
static uint64_t s_any(uint64_t max)
{
    static const uint64_t widths[] = {0x7f, 0xff, 0xffff, 0xffffffffull, UINT64_MAX};
    uint64_t v = s_rand() & widths[s_rand() % 5];
    return max == UINT64_MAX ? v : v % (max + 1);
}

static void s_pack_len(msgpack_packer *pk, uint32_t v)
{
    if (v <= UINT16_MAX) {
        msgpack_pack_fix_uint16(pk, (uint16_t)v);
    } else {
        msgpack_pack_fix_uint32(pk, v);
    }
}

static void s_random_summary(tb_summary_t *s)
{
    static const uint8_t families[] = {TB_FAMILY_NONE, TB_FAMILY_IPV4, TB_FAMILY_IPV6};
    memset(s, 0, sizeof *s);
    s->ts_ns = s_any(UINT64_MAX);
    s->wire_len = (uint32_t)s_any(UINT32_MAX);
    s->cap_len = (uint32_t)s_any(UINT32_MAX);
    s->family = families[s_rand() % 3];
    s->proto = (uint8_t)s_any(UINT8_MAX);
    size_t alen = s->family == TB_FAMILY_IPV4 ? 4 : s->family == TB_FAMILY_IPV6 ? 16 : 0;
    for (size_t i = 0; i < alen; i++) {
        s->src[i] = (uint8_t)s_rand();
        s->dst[i] = (uint8_t)s_rand();
    }
    s->sport = (uint16_t)s_any(UINT16_MAX);
    s->dport = (uint16_t)s_any(UINT16_MAX);
    s->tcp_flags = (uint8_t)s_any(UINT8_MAX);
    s->vlan = (uint16_t)s_any(4095);
    s->flags = (uint8_t)(s_any(UINT8_MAX) & 0x3f);
    s->ethertype = (uint16_t)s_any(UINT16_MAX);
}

static void s_pack_cstr(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* A point table of 0..TB_POINTS_MAX pairs with names of 0..8 bytes. */
static void s_random_points(tb_point_table_t *t)
{
    tb_point_table_reset(t);
    size_t want = (size_t)(s_rand() % (TB_POINTS_MAX + 1));
    while (t->n < want) {
        char mp[TB_POINT_NAME_MAX + 1], ci[TB_POINT_NAME_MAX + 1];
        size_t nm = (size_t)(s_rand() % (TB_POINT_NAME_MAX + 1));
        size_t nc = (size_t)(s_rand() % (TB_POINT_NAME_MAX + 1));
        for (size_t i = 0; i < nm; i++) {
            mp[i] = (char)('a' + s_rand() % 3);
        }
        for (size_t i = 0; i < nc; i++) {
            ci[i] = (char)(1 + s_rand() % 255); /* any byte but NUL */
        }
        mp[nm] = '\0';
        ci[nc] = '\0';
        (void)tb_point_table_intern(t, mp, ci);
    }
}

/* The reference: the whole batch body packed field by field with msgpack-c
 * (points: the summaries' table, or NULL); smallest: the lengths and ports
 * in their smallest encoding too, as encoders before the 16-bit ones wrote
 * them (the same values to a decoder). */
static void s_reference(msgpack_sbuffer *sb, const tb_wire_header_t *h, const tb_summary_t *it,
                        size_t n, const tb_point_table_t *points, int smallest)
{
    size_t maxpoint = 0;
    for (size_t i = 0; i < n; i++) {
        maxpoint = it[i].point > maxpoint ? it[i].point : maxpoint;
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, maxpoint > 0 ? 9 : 8);
    msgpack_pack_uint8(&pk, TB_WIRE_VERSION);
    msgpack_pack_uint8(&pk, TB_MSG_BATCH);
    s_pack_cstr(&pk, h->probe_id);
    msgpack_pack_uint64(&pk, h->boot_ns);
    s_pack_cstr(&pk, h->stream);
    msgpack_pack_uint64(&pk, h->seq);
    msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++) {
        const tb_summary_t *s = &it[i];
        size_t alen = s->family == TB_FAMILY_IPV4 ? 4 : s->family == TB_FAMILY_IPV6 ? 16 : 0;
        msgpack_pack_array(&pk, s->point != 0 ? 14 : 13);
        msgpack_pack_uint64(&pk, s->ts_ns);
        /* lengths: uint 16 at least; ports: always uint 16 (5.1) */
        if (smallest) {
            msgpack_pack_uint32(&pk, s->wire_len);
            msgpack_pack_uint32(&pk, s->cap_len);
        } else {
            s_pack_len(&pk, s->wire_len);
            s_pack_len(&pk, s->cap_len);
        }
        msgpack_pack_uint8(&pk, s->family);
        msgpack_pack_uint8(&pk, s->proto);
        msgpack_pack_bin(&pk, alen);
        msgpack_pack_bin_body(&pk, s->src, alen);
        msgpack_pack_bin(&pk, alen);
        msgpack_pack_bin_body(&pk, s->dst, alen);
        if (smallest) {
            msgpack_pack_uint16(&pk, s->sport);
            msgpack_pack_uint16(&pk, s->dport);
        } else {
            msgpack_pack_fix_uint16(&pk, s->sport);
            msgpack_pack_fix_uint16(&pk, s->dport);
        }
        msgpack_pack_uint8(&pk, s->tcp_flags);
        msgpack_pack_uint16(&pk, s->vlan);
        msgpack_pack_uint8(&pk, s->flags);
        msgpack_pack_uint16(&pk, s->ethertype);
        if (s->point != 0) {
            msgpack_pack_uint16(&pk, s->point);
        }
    }
    msgpack_pack_uint64(&pk, h->run);
    if (maxpoint > 0) {
        msgpack_pack_array(&pk, maxpoint);
        for (size_t i = 0; i < maxpoint; i++) {
            msgpack_pack_array(&pk, 2);
            s_pack_cstr(&pk, points->p[i].mp);
            s_pack_cstr(&pk, points->p[i].ci);
        }
    }
}

static void test_batches_match_msgpack_c(void **state)
{
    (void)state;
    enum { N = 500 };
    tb_summary_t *items = calloc(N, sizeof *items);
    tb_summary_t *back = calloc(N, sizeof *back);
    size_t cap =
        TB_WIRE_HEADER_MAX_BYTES + TB_WIRE_POINTS_MAX_BYTES + N * TB_WIRE_SUMMARY_MAX_BYTES;
    uint8_t *out = malloc(cap);
    assert_non_null(items);
    assert_non_null(back);
    assert_non_null(out);
    for (int round = 0; round < 200; round++) {
        size_t n = (size_t)(s_rand() % (N + 1));
        /* Every other round names measurement points (DPMI MP/CI). */
        tb_point_table_t t;
        s_random_points(&t);
        int with_points = round % 2 == 1;
        for (size_t i = 0; i < n; i++) {
            s_random_summary(&items[i]);
            if (with_points && s_rand() % 4 != 0) {
                items[i].point = (uint16_t)(s_rand() % (t.n + 1));
            }
        }
        tb_wire_header_t h = {
            .type = TB_MSG_BATCH, .boot_ns = s_any(UINT64_MAX), .seq = s_any(UINT64_MAX)};
        memcpy(h.probe_id, "probe-1", 8);
        memcpy(h.stream, "01::10:01", 10);
        size_t len = 0;
        assert_int_equal(
            tb_wire_encode_batch_points(&h, items, n, with_points ? &t : NULL, out, cap, &len), 0);

        msgpack_sbuffer ref;
        msgpack_sbuffer_init(&ref);
        s_reference(&ref, &h, items, n, &t, 0);
        assert_int_equal(len, ref.size);
        assert_memory_equal(out, ref.data, len);
        msgpack_sbuffer_destroy(&ref);

        /* The smallest encodings decode to the same summaries. */
        tb_wire_msg_t m;
        msgpack_sbuffer_init(&ref);
        s_reference(&ref, &h, items, n, &t, 1);
        assert_true(ref.size <= len);
        assert_int_equal(tb_wire_decode((const uint8_t *)ref.data, ref.size, &m, back, N), 0);
        assert_int_equal(m.count, n);
        if (n > 0) {
            assert_memory_equal(back, items, n * sizeof *items);
        }
        msgpack_sbuffer_destroy(&ref);

        assert_int_equal(tb_wire_decode(out, len, &m, back, N), 0);
        assert_int_equal(m.count, n);
        if (n > 0) {
            assert_memory_equal(back, items, n * sizeof *items);
        }
        for (size_t i = 0; i < n; i++) {
            if (items[i].point != 0) {
                assert_string_equal(m.points.p[items[i].point - 1].mp, t.p[items[i].point - 1].mp);
                assert_string_equal(m.points.p[items[i].point - 1].ci, t.p[items[i].point - 1].ci);
            }
        }
    }
    free(items);
    free(back);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches_match_msgpack_c),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
