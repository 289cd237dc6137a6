/* test_wire_offer — the OFFER message of the wire format (section 5.5 of
 * docs/wire-format.md): the golden vector (tests/data/wire/offer.bin, the
 * same bytes spelled out below), round trips, validation of every field,
 * truncation, forward compatibility, and that the data decoder refuses it. */
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

/* clang-format off */
/* tests/data/wire/offer.bin: probe "p1" offers "a" (a file source, waiting)
 * and "eth0" (a live interface, running); seq 5, ttl 6000 ms. */
static const uint8_t k_offer[] = {
    0x97,                                                 /* envelope: array of 7 */
    0x01,                                                 /* version 1 */
    0x04,                                                 /* type 4 = offer */
    0xa2, 0x70, 0x31,                                     /* probe_id "p1" */
    0xcf, 0x17, 0x97, 0x9c, 0xfe, 0x36, 0x2a, 0x00, 0x00, /* boot_ns 1700000000000000000 */
    0x05,                                                 /* seq 5 */
    0xcd, 0x17, 0x70,                                     /* ttl_ms 6000 */
    0x92,                                                 /* streams: array of 2 */
    0x93, 0xa1, 0x61,                                     /*   ["a", */
    0xa4, 0x66, 0x69, 0x6c, 0x65,                         /*    "file", */
    0x00,                                                 /*    0 (waiting)] */
    0x93, 0xa4, 0x65, 0x74, 0x68, 0x30,                   /*   ["eth0", */
    0xa5, 0x69, 0x66, 0x61, 0x63, 0x65,                   /*    "iface", */
    0x01,                                                 /*    1 (running)] */
};
/* clang-format on */

static void s_golden(tb_wire_offer_t *o)
{
    memset(o, 0, sizeof *o);
    strcpy(o->probe_id, "p1");
    o->boot_ns = 1700000000000000000ull;
    o->seq = 5;
    o->ttl_ms = 6000;
    o->n = 2;
    strcpy(o->entries[0].stream, "a");
    strcpy(o->entries[0].kind, "file");
    o->entries[0].state = TB_SRC_WAITING;
    strcpy(o->entries[1].stream, "eth0");
    strcpy(o->entries[1].kind, "iface");
    o->entries[1].state = TB_SRC_RUNNING;
}

static tb_wire_offer_t s_o, s_got; /* large: kept off the stack */

static void test_golden(void **state)
{
    (void)state;
    uint8_t out[512];
    size_t len = 0;
    s_golden(&s_o);
    assert_int_equal(tb_wire_encode_offer(&s_o, out, sizeof out, &len), 0);
    assert_int_equal(len, sizeof k_offer);
    assert_memory_equal(out, k_offer, len);

    char path[512];
    snprintf(path, sizeof path, "%s/wire/offer.bin", TB_TEST_DATA);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t file[512];
    size_t flen = fread(file, 1, sizeof file, f);
    fclose(f);
    assert_int_equal(flen, sizeof k_offer);
    assert_memory_equal(file, k_offer, flen);

    assert_int_equal(tb_wire_decode_offer(file, flen, &s_got), 0);
    assert_string_equal(s_got.probe_id, "p1");
    assert_true(s_got.boot_ns == 1700000000000000000ull);
    assert_int_equal(s_got.seq, 5);
    assert_int_equal(s_got.ttl_ms, 6000);
    assert_int_equal(s_got.n, 2);
    assert_string_equal(s_got.entries[0].stream, "a");
    assert_string_equal(s_got.entries[0].kind, "file");
    assert_int_equal(s_got.entries[0].state, TB_SRC_WAITING);
    assert_string_equal(s_got.entries[1].stream, "eth0");
    assert_string_equal(s_got.entries[1].kind, "iface");
    assert_int_equal(s_got.entries[1].state, TB_SRC_RUNNING);
    assert_string_equal(tb_wire_type_name(TB_MSG_OFFER), "offer");
}

/* msgpack-c's own unpacker, an independent decoder, reads the golden offer
 * as the table of section 5.5 says. */
static void test_golden_msgpack_c_oracle(void **state)
{
    (void)state;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, (const char *)k_offer, sizeof k_offer, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, sizeof k_offer);
    const msgpack_object *o = &u.data;
    assert_int_equal(o->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(o->via.array.size, 7);
    const msgpack_object *f = o->via.array.ptr;
    assert_int_equal(f[0].via.u64, 1);
    assert_int_equal(f[1].via.u64, TB_MSG_OFFER);
    assert_int_equal(f[2].type, MSGPACK_OBJECT_STR);
    assert_memory_equal(f[2].via.str.ptr, "p1", 2);
    assert_true(f[3].via.u64 == 1700000000000000000ull);
    assert_int_equal(f[4].via.u64, 5);
    assert_int_equal(f[5].via.u64, 6000);
    assert_int_equal(f[6].type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(f[6].via.array.size, 2);
    const msgpack_object *e = f[6].via.array.ptr[1].via.array.ptr;
    assert_int_equal(f[6].via.array.ptr[1].via.array.size, 3);
    assert_memory_equal(e[0].via.str.ptr, "eth0", 4);
    assert_memory_equal(e[1].via.str.ptr, "iface", 5);
    assert_int_equal(e[2].via.u64, TB_SRC_RUNNING);
    msgpack_unpacked_destroy(&u);
}

/* The topic no stream can produce: it starts with a byte no name has. */
static void test_topic_reserved(void **state)
{
    (void)state;
    assert_int_equal(sizeof TB_OFFER_TOPIC, TB_OFFER_TOPIC_LEN);
    assert_int_equal(tb_wire_name_valid(TB_OFFER_TOPIC), TB_EINVAL);
    uint8_t topic[TB_TOPIC_MAX];
    assert_int_equal(tb_wire_topic("!offer", topic, sizeof topic), TB_EINVAL);
}

/* The data decoder refuses an offer (type 4 is not a stream message), and the
 * offer decoder refuses stream messages. */
static void test_not_mixed(void **state)
{
    (void)state;
    tb_wire_msg_t m;
    tb_summary_t items[4];
    assert_int_equal(tb_wire_decode(k_offer, sizeof k_offer, &m, items, 4), TB_EPROTO);
    tb_wire_header_t h;
    memset(&h, 0, sizeof h);
    strcpy(h.probe_id, "p1");
    strcpy(h.stream, "a");
    tb_eos_t eos;
    memset(&eos, 0, sizeof eos);
    uint8_t out[512];
    size_t len = 0;
    assert_int_equal(tb_wire_encode_eos(&h, &eos, out, sizeof out, &len), 0);
    assert_int_equal(tb_wire_decode_offer(out, len, &s_got), TB_EPROTO);
}

static void test_roundtrip_max(void **state)
{
    (void)state;
    memset(&s_o, 0, sizeof s_o);
    memset(s_o.probe_id, 'p', TB_PROBE_ID_MAX);
    s_o.boot_ns = UINT64_MAX;
    s_o.seq = UINT64_MAX;
    s_o.ttl_ms = TB_OFFER_TTL_MAX;
    s_o.n = TB_WIRE_MAX_OFFERS;
    for (size_t i = 0; i < s_o.n; i++) {
        memset(s_o.entries[i].stream, 's', TB_STREAM_MAX);
        snprintf(s_o.entries[i].stream, 8, "%06zu", i);
        s_o.entries[i].stream[6] = 'x'; /* the NUL snprintf wrote */
        memset(s_o.entries[i].kind, 'k', TB_KIND_MAX);
        s_o.entries[i].state = (uint8_t)(i % TB_SRC_STATE_COUNT);
    }
    static uint8_t out[64 * 1024];
    size_t len = 0;
    assert_int_equal(tb_wire_encode_offer(&s_o, out, sizeof out, &len), 0);
    assert_int_equal(tb_wire_decode_offer(out, len, &s_got), 0);
    assert_int_equal(s_got.n, TB_WIRE_MAX_OFFERS);
    for (size_t i = 0; i < s_got.n; i++) {
        assert_string_equal(s_got.entries[i].stream, s_o.entries[i].stream);
        assert_string_equal(s_got.entries[i].kind, s_o.entries[i].kind);
        assert_int_equal(s_got.entries[i].state, s_o.entries[i].state);
    }
    /* Too small a buffer: TB_ELIMIT, never an overrun. */
    assert_int_equal(tb_wire_encode_offer(&s_o, out, len - 1, &len), TB_ELIMIT);
    s_o.n = TB_WIRE_MAX_OFFERS + 1;
    assert_int_equal(tb_wire_encode_offer(&s_o, out, sizeof out, &len), TB_ELIMIT);
}

static void test_encode_refuses_invalid(void **state)
{
    (void)state;
    uint8_t out[512];
    size_t len = 0;
    s_golden(&s_o);
    s_o.ttl_ms = 0;
    assert_int_equal(tb_wire_encode_offer(&s_o, out, sizeof out, &len), TB_EINVAL);
    s_golden(&s_o);
    s_o.ttl_ms = TB_OFFER_TTL_MAX + 1;
    assert_int_equal(tb_wire_encode_offer(&s_o, out, sizeof out, &len), TB_EINVAL);
    s_golden(&s_o);
    strcpy(s_o.entries[1].kind, "Iface");
    assert_int_equal(tb_wire_encode_offer(&s_o, out, sizeof out, &len), TB_EINVAL);
    s_golden(&s_o);
    s_o.entries[1].kind[0] = '\0';
    assert_int_equal(tb_wire_encode_offer(&s_o, out, sizeof out, &len), TB_EINVAL);
    s_golden(&s_o);
    strcpy(s_o.entries[0].stream, "a b");
    assert_int_equal(tb_wire_encode_offer(&s_o, out, sizeof out, &len), TB_EINVAL);
    s_golden(&s_o);
    s_o.entries[0].state = TB_SRC_STATE_COUNT;
    assert_int_equal(tb_wire_encode_offer(&s_o, out, sizeof out, &len), TB_EINVAL);
    s_golden(&s_o);
    strcpy(s_o.probe_id, "");
    assert_int_equal(tb_wire_encode_offer(&s_o, out, sizeof out, &len), TB_EINVAL);
}

/* A copy of the golden vector with byte `at` replaced by `v`. */
static int s_decode_patched(size_t at, uint8_t v)
{
    uint8_t b[sizeof k_offer];
    memcpy(b, k_offer, sizeof b);
    b[at] = v;
    return tb_wire_decode_offer(b, sizeof b, &s_got);
}

static void test_decode_validation(void **state)
{
    (void)state;
    assert_int_equal(s_decode_patched(1, 2), TB_EVERSION);   /* version 2 */
    assert_int_equal(s_decode_patched(2, 1), TB_EPROTO);     /* type batch */
    assert_int_equal(s_decode_patched(0, 0x96), TB_EPROTO);  /* envelope of 6 */
    assert_int_equal(s_decode_patched(4, '!'), TB_EPROTO);   /* probe id "!1" */
    assert_int_equal(s_decode_patched(24, 'F'), TB_EPROTO);  /* kind "File" */
    assert_int_equal(s_decode_patched(28, 4), TB_EPROTO);    /* state 4 */
    assert_int_equal(s_decode_patched(20, 0x92), TB_EPROTO); /* entry of 2 */
    assert_int_equal(s_decode_patched(22, '\0'), TB_EPROTO); /* stream with a NUL */
    assert_int_equal(tb_wire_decode_offer(NULL, 0, &s_got), TB_ETRUNC);

    /* ttl 0 and above the limit. */
    uint8_t b[64];
    memcpy(b, k_offer, 16);
    b[16] = 0x00; /* ttl 0 */
    memcpy(b + 17, k_offer + 19, sizeof k_offer - 19);
    assert_int_equal(tb_wire_decode_offer(b, sizeof k_offer - 2, &s_got), TB_EPROTO);
    memcpy(b, k_offer, 16);
    b[16] = 0xce; /* ttl 0x00ffffff > 3600000 */
    b[17] = 0x00;
    b[18] = 0xff;
    b[19] = 0xff;
    b[20] = 0xff;
    memcpy(b + 21, k_offer + 19, sizeof k_offer - 19);
    assert_int_equal(tb_wire_decode_offer(b, sizeof k_offer + 2, &s_got), TB_EPROTO);

    /* Trailing bytes. */
    memcpy(b, k_offer, sizeof k_offer);
    b[sizeof k_offer] = 0x00;
    assert_int_equal(tb_wire_decode_offer(b, sizeof k_offer + 1, &s_got), TB_EPROTO);

    /* Every prefix is cut short. */
    for (size_t k = 0; k < sizeof k_offer; k++) {
        int rc = tb_wire_decode_offer(k_offer, k, &s_got);
        if (rc != TB_ETRUNC) {
            fail_msg("prefix of %zu bytes: %d", k, rc);
        }
    }
}

/* Later revisions may append envelope elements and entry elements. */
static void test_forward_compatible(void **state)
{
    (void)state;
    uint8_t b[128];
    size_t n = 0;
    b[n++] = 0x98;                  /* array of 8 */
    memcpy(b + n, k_offer + 1, 18); /* version .. ttl_ms */
    n += 18;
    b[n++] = 0x91; /* one entry of 4 elements */
    b[n++] = 0x94;
    static const uint8_t entry[] = {0xa1, 'x', 0xa3, 'd', 'i', 'r', 0x03}; /* "x", "dir", 3 */
    memcpy(b + n, entry, sizeof entry);
    n += sizeof entry;
    b[n++] = 0xc0; /* the entry's extra element: nil */
    b[n++] = 0x81; /* the envelope's extra element: {"k": 1} */
    b[n++] = 0xa1;
    b[n++] = 'k';
    b[n++] = 0x01;
    assert_int_equal(tb_wire_decode_offer(b, n, &s_got), 0);
    assert_int_equal(s_got.n, 1);
    assert_string_equal(s_got.entries[0].stream, "x");
    assert_string_equal(s_got.entries[0].kind, "dir");
    assert_int_equal(s_got.entries[0].state, TB_SRC_ERROR);
}

/* More than TB_WIRE_MAX_OFFERS entries is refused as a whole. */
static void test_too_many(void **state)
{
    (void)state;
    static uint8_t buf[64 * 1024];
    tb_mp_buf_t b;
    msgpack_packer pk;
    tb_mp_buf_init(&b, &pk, buf, sizeof buf);
    msgpack_pack_array(&pk, 7);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, TB_MSG_OFFER);
    tb_mp_pack_cstr(&pk, "p1");
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, 0);
    msgpack_pack_uint32(&pk, 1000);
    msgpack_pack_array(&pk, TB_WIRE_MAX_OFFERS + 1);
    for (unsigned i = 0; i < TB_WIRE_MAX_OFFERS + 1; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%u", i);
        msgpack_pack_array(&pk, 3);
        tb_mp_pack_cstr(&pk, name);
        tb_mp_pack_cstr(&pk, "file");
        msgpack_pack_uint8(&pk, 0);
    }
    assert_false(b.overflow);
    assert_int_equal(tb_wire_decode_offer(buf, b.len, &s_got), TB_ELIMIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_golden_msgpack_c_oracle),
        cmocka_unit_test(test_topic_reserved),
        cmocka_unit_test(test_not_mixed),
        cmocka_unit_test(test_roundtrip_max),
        cmocka_unit_test(test_encode_refuses_invalid),
        cmocka_unit_test(test_decode_validation),
        cmocka_unit_test(test_forward_compatible),
        cmocka_unit_test(test_too_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
