/* tb_wire_batch — batches of packet summaries, the bus's hot path: encoded
 * byte by byte, decoded with inline fast paths (docs/wire-format.md section
 * 5.1). See tb_wire.h; the rest of the format is tb_wire.c. */
#include "tb_wire.h"
#include "tb_wire_int.h"

#include "tb_err.h"
#include "tb_mp.h"

#include <stddef.h>
#include <string.h>

/* Address bytes carried for a family, or -1 for a family the format has no
 * room for. */
static int s_addr_len(uint8_t family)
{
    switch (family) {
    case TB_FAMILY_NONE:
        return 0;
    case TB_FAMILY_IPV4:
        return 4;
    case TB_FAMILY_IPV6:
        return 16;
    default:
        return -1;
    }
}

/* Append v as msgpack's smallest unsigned encoding: the same bytes msgpack-c's
 * msgpack_pack_uint8/16/32/64 produce (positive fixint, 0xcc, 0xcd, 0xce or
 * 0xcf, big-endian). On a little-endian machine the wider ones are one
 * byte-swapped store each. */
static inline uint8_t *s_put_uint(uint8_t *p, uint64_t v)
{
    if (v < 0x80) {
        *p++ = (uint8_t)v;
    } else if (v <= UINT8_MAX) {
        *p++ = 0xcc;
        *p++ = (uint8_t)v;
    } else if (v <= UINT16_MAX) {
        *p++ = 0xcd;
        *p++ = (uint8_t)(v >> 8);
        *p++ = (uint8_t)v;
    } else if (v <= UINT32_MAX) {
        *p++ = 0xce;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        uint32_t be = __builtin_bswap32((uint32_t)v);
        memcpy(p, &be, 4);
        p += 4;
#else
        for (int shift = 24; shift >= 0; shift -= 8) {
            *p++ = (uint8_t)(v >> shift);
        }
#endif
    } else {
        *p++ = 0xcf;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        uint64_t be = __builtin_bswap64(v);
        memcpy(p, &be, 8);
        p += 8;
#else
        for (int shift = 56; shift >= 0; shift -= 8) {
            *p++ = (uint8_t)(v >> shift);
        }
#endif
    }
    return p;
}

/* Append v as uint 16 (0xcd) when it fits, as uint 32 (0xce) otherwise: the
 * bytes of msgpack-c's msgpack_pack_fix_uint16/32. For the lengths and the
 * ports (docs/wire-format.md, section 5.1): their smallest encoding changes
 * from packet to packet (a 60-byte ACK, a 1514-byte segment; port 53 and
 * port 5353), and a decoder's branch on it then goes wrong for a good part
 * of the packets; one width keeps it on one path. */
static inline uint8_t *s_put_uint16_up(uint8_t *p, uint32_t v)
{
    if (v > UINT16_MAX) {
        *p++ = 0xce;
        *p++ = (uint8_t)(v >> 24);
        *p++ = (uint8_t)(v >> 16);
    } else {
        *p++ = 0xcd;
    }
    *p++ = (uint8_t)(v >> 8);
    *p++ = (uint8_t)v;
    return p;
}

/* An address: bin 8 of n bytes, n 0, 4 or 16 (copies of a constant size
 * are a move or two, not a call). */
static inline uint8_t *s_put_bin(uint8_t *p, const uint8_t *data, size_t n)
{
    *p++ = 0xc4;
    *p++ = (uint8_t)n;
    if (n == 4) {
        memcpy(p, data, 4);
    } else if (n == 16) {
        memcpy(p, data, 16);
    } else {
        memcpy(p, data, n);
    }
    return p + n;
}

/* One summary: a fixarray of S_SUMMARY_LEN fields, at most 75 bytes (array 1,
 * ts 9, lengths 5+5, family 1, proto 2, addresses 18+18, ports 3+3,
 * tcp_flags 2, vlan 3, flags 2, ethertype 3), and a 14th, the point index
 * (1 byte: at most TB_POINTS_MAX), when it names one; TB_WIRE_SUMMARY_MAX_BYTES
 * leaves a margin. The lengths and ports are written in 16 bits at least
 * (s_put_uint16_up), every other integer in its smallest encoding.
 *
 * Why not msgpack-c's packer here: this is the probe's per-packet hot path,
 * and the packer reaches the buffer through a callback for each of the 16
 * pieces of a summary, which made encoding cost more than decoding the packet.
 * Writing the bytes directly is about three times faster and produces exactly
 * the bytes msgpack-c's packer functions would (checked against them in
 * tests/unit/test_wire.c); everything else in the format goes through
 * msgpack-c. */
static uint8_t *s_put_summary(uint8_t *p, const tb_summary_t *s, size_t alen)
{
    *p++ = (uint8_t)(0x90 | (s->point != 0 ? S_SUMMARY_LEN + 1 : S_SUMMARY_LEN));
    p = s_put_uint(p, s->ts_ns);
    p = s_put_uint16_up(p, s->wire_len);
    p = s_put_uint16_up(p, s->cap_len);
    p = s_put_uint(p, s->family);
    p = s_put_uint(p, s->proto);
    p = s_put_bin(p, s->src, alen);
    p = s_put_bin(p, s->dst, alen);
    p = s_put_uint16_up(p, s->sport);
    p = s_put_uint16_up(p, s->dport);
    p = s_put_uint(p, s->tcp_flags);
    p = s_put_uint(p, s->vlan);
    p = s_put_uint(p, s->flags);
    p = s_put_uint(p, s->ethertype);
    if (s->point != 0) {
        p = s_put_uint(p, s->point);
    }
    return p;
}

/* The batch's point table: entries 1..upto of t, each [mp, ci]. */
static int s_pack_points(uint8_t *p, size_t room, const tb_point_table_t *t, size_t upto,
                         size_t *used)
{
    tb_mp_buf_t b;
    msgpack_packer pk;
    tb_mp_buf_init(&b, &pk, p, room);
    msgpack_pack_array(&pk, upto);
    for (size_t i = 0; i < upto; i++) {
        size_t nm = strnlen(t->p[i].mp, sizeof t->p[i].mp);
        size_t nc = strnlen(t->p[i].ci, sizeof t->p[i].ci);
        if (nm > TB_POINT_NAME_MAX || nc > TB_POINT_NAME_MAX) {
            return TB_EINVAL;
        }
        msgpack_pack_array(&pk, 2);
        tb_wire_pack_strn(&pk, t->p[i].mp, nm);
        tb_wire_pack_strn(&pk, t->p[i].ci, nc);
    }
    if (b.overflow) {
        return TB_ELIMIT;
    }
    *used = b.len;
    return 0;
}

int tb_wire_encode_batch(const tb_wire_header_t *h, const tb_summary_t *items, size_t n,
                         uint8_t *out, size_t cap, size_t *len)
{
    return tb_wire_encode_batch_points(h, items, n, NULL, out, cap, len);
}

int tb_wire_encode_batch_points(const tb_wire_header_t *h, const tb_summary_t *items, size_t n,
                                const tb_point_table_t *points, uint8_t *out, size_t cap,
                                size_t *len)
{
    tb_mp_buf_t b;
    msgpack_packer pk;
    size_t npoints = points != NULL ? points->n : 0;
    size_t maxpoint = 0;
    if (n > TB_WIRE_MAX_BATCH) {
        return TB_ELIMIT;
    }
    if (npoints > TB_POINTS_MAX) {
        return TB_EINVAL;
    }
    tb_mp_buf_init(&b, &pk, out, cap);
    int rc = tb_wire_pack_header(&pk, h, TB_MSG_BATCH);
    if (rc != 0) {
        return rc;
    }
    msgpack_pack_array(&pk, n);
    if (b.overflow) {
        return TB_ELIMIT;
    }
    uint8_t *p = out + b.len;
    const uint8_t *end = out + cap;
    for (size_t i = 0; i < n; i++) {
        const tb_summary_t *s = &items[i];
        int alen = s_addr_len(s->family);
        /* Refuse what every receiver would refuse, rather than publish it. */
        if (alen < 0 || s->vlan > S_VLAN_MAX || s->point > npoints) {
            return TB_EINVAL;
        }
        if (s->point > maxpoint) {
            maxpoint = s->point;
        }
        if ((size_t)(end - p) < TB_WIRE_SUMMARY_MAX_BYTES) {
            return TB_ELIMIT;
        }
        p = s_put_summary(p, s, (size_t)alen);
    }
    if ((size_t)(end - p) < 9) {
        return TB_ELIMIT;
    }
    p = s_put_uint(p, h->run);
    if (maxpoint > 0) {
        /* The envelope gains its 9th element, the table: the fixarray
         * header written first is patched rather than every summary's
         * point looked at twice. */
        out[0] = (uint8_t)(0x90 | S_ENVELOPE_PTS);
        size_t used = 0;
        int prc = s_pack_points(p, (size_t)(end - p), points, maxpoint, &used);
        if (prc != 0) {
            return prc;
        }
        p += used;
    }
    *len = (size_t)(p - out);
    return 0;
}

/* ------------------------------------------------------------- decoding */

/* Hot-path readers: every unsigned encoding inline when at least 9 bytes
 * are left (the widest one fits, so one bounds check covers the read),
 * anything else (other types, errors, the last bytes of a body) through the
 * generic checked reader. A decoder error is sticky in r->error and checked
 * by the caller after each group of reads. */
static inline uint64_t s_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

static inline uint64_t s_uint(tb_mp_reader_t *r)
{
    const uint8_t *p = r->ptr;
    if (r->end - p >= 9) {
        uint8_t c = *p;
        if (c < 0x80) {
            r->ptr = p + 1;
            return c;
        }
        if (c >= 0xcc && c <= 0xcf) {
            int n = 1 << (c - 0xcc); /* 1, 2, 4 or 8 bytes, big-endian */
            r->ptr = p + 1 + n;
            switch (n) {
            case 1:
                return p[1];
            case 2:
                return s_be(p + 1, 2);
            case 4:
                return s_be(p + 1, 4);
            default:
                return s_be(p + 1, 8);
            }
        }
    }
    return tb_mp_read_uint(r);
}

static int s_read_addr(tb_mp_reader_t *r, uint8_t dst[16], uint32_t want)
{
    uint32_t n;
    const uint8_t *p;
    if (r->end - r->ptr >= 2 && r->ptr[0] == 0xc4 && (size_t)(r->end - r->ptr) - 2 >= r->ptr[1]) {
        n = r->ptr[1];
        p = r->ptr + 2;
        r->ptr += 2 + n;
    } else {
        p = tb_mp_read_bin(r, &n);
        if (r->error) {
            return r->error;
        }
    }
    if (n != want) {
        return TB_EPROTO;
    }
    memset(dst, 0, 16);
    memcpy(dst, p, n);
    return 0;
}

/* A summary's integer fields as read, before their ranges are checked. */
typedef struct {
    uint64_t ts, wire_len, cap_len, family, proto;
    uint64_t sport, dport, tcp_flags, vlan, flags, ethertype;
} s_fields_t;

/* The ranges of the fields before the addresses, and of those after. */
static inline int s_head_ok(const s_fields_t *v)
{
    return v->wire_len <= UINT32_MAX && v->cap_len <= UINT32_MAX && v->proto <= UINT8_MAX;
}

static inline int s_tail_ok(const s_fields_t *v)
{
    return v->sport <= UINT16_MAX && v->dport <= UINT16_MAX && v->tcp_flags <= UINT8_MAX &&
           v->vlan <= S_VLAN_MAX && v->flags <= UINT8_MAX && v->ethertype <= UINT16_MAX;
}

/* Checked fields into s (addresses and point apart; point 0). */
static inline void s_store(const s_fields_t *v, tb_summary_t *s)
{
    s->ts_ns = v->ts;
    s->wire_len = (uint32_t)v->wire_len;
    s->cap_len = (uint32_t)v->cap_len;
    s->family = (uint8_t)v->family;
    s->proto = (uint8_t)v->proto;
    s->sport = (uint16_t)v->sport;
    s->dport = (uint16_t)v->dport;
    s->tcp_flags = (uint8_t)v->tcp_flags;
    s->vlan = (uint16_t)v->vlan;
    s->flags = (uint8_t)(v->flags & S_KNOWN_FLAGS);
    s->ethertype = (uint16_t)v->ethertype;
    s->point = 0;
}

static int s_read_summary(tb_mp_reader_t *r, tb_summary_t *s)
{
    uint32_t n;
    if (r->ptr < r->end && *r->ptr == (0x90 | S_SUMMARY_LEN)) {
        n = S_SUMMARY_LEN;
        r->ptr++;
    } else {
        n = tb_mp_read_array(r);
        if (r->error) {
            return r->error;
        }
    }
    if (n < S_SUMMARY_LEN) {
        return TB_EPROTO;
    }
    s_fields_t v;
    v.ts = s_uint(r);
    v.wire_len = s_uint(r);
    v.cap_len = s_uint(r);
    v.family = s_uint(r);
    v.proto = s_uint(r);
    if (r->error) {
        return r->error;
    }
    if (!s_head_ok(&v)) {
        return TB_EPROTO;
    }
    int alen = v.family <= UINT8_MAX ? s_addr_len((uint8_t)v.family) : -1;
    if (alen < 0) {
        return TB_EPROTO;
    }
    int rc = s_read_addr(r, s->src, (uint32_t)alen);
    if (rc == 0) {
        rc = s_read_addr(r, s->dst, (uint32_t)alen);
    }
    if (rc != 0) {
        return rc;
    }
    v.sport = s_uint(r);
    v.dport = s_uint(r);
    v.tcp_flags = s_uint(r);
    v.vlan = s_uint(r);
    v.flags = s_uint(r);
    v.ethertype = s_uint(r);
    if (r->error) {
        return r->error;
    }
    if (!s_tail_ok(&v)) {
        return TB_EPROTO;
    }
    s_store(&v, s);
    if (n > S_SUMMARY_LEN) {
        /* The point index: checked against the batch's table once the
         * envelope's end, which carries it, has been read. */
        uint64_t point = s_uint(r);
        if (r->error) {
            return r->error;
        }
        if (point > TB_POINTS_MAX) {
            return TB_EPROTO;
        }
        s->point = (uint16_t)point;
    }
    /* Fields a later revision appends are ignored (forward compatibility). */
    for (uint32_t i = S_SUMMARY_LEN + 1; i < n; i++) {
        tb_mp_skip(r);
    }
    return r->error;
}

/* The fast path of one summary: the encodings an encoder writes (a fixarray
 * of 13 or 14, unsigned integers, addresses as bin 8 of the family's length)
 * read through a local pointer, with one bounds check for the whole summary
 * (S_SUMMARY_WORST: every integer in its widest encoding). Returns 1 with
 * *pp past the summary, or 0 with nothing consumed for anything else (other
 * encodings, values out of range, the last bytes of a body): s_read_summary
 * then reads it, or refuses it, with every check. */
#define S_SUMMARY_WORST (1 + (S_SUMMARY_LEN + 1) * 9 + 2 * (2 + 16))

#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline int s_fast_uint(const uint8_t **pp, uint64_t *v)
{
    const uint8_t *p = *pp;
    uint8_t c = p[0];
    if (c < 0x80) {
        *v = c;
        *pp = p + 1;
        return 1;
    }
    switch (c) {
    case 0xcc:
        *v = p[1];
        *pp = p + 2;
        return 1;
    case 0xcd:
        *v = s_be(p + 1, 2);
        *pp = p + 3;
        return 1;
    case 0xce:
        *v = s_be(p + 1, 4);
        *pp = p + 5;
        return 1;
    case 0xcf:
        *v = s_be(p + 1, 8);
        *pp = p + 9;
        return 1;
    default:
        return 0;
    }
}

static inline int s_fast_addr(const uint8_t **pp, uint8_t dst[16], unsigned alen)
{
    const uint8_t *p = *pp;
    if (p[0] != 0xc4 || p[1] != alen) {
        return 0;
    }
    memset(dst, 0, 16);
    if (alen == 4) {
        memcpy(dst, p + 2, 4);
    } else if (alen == 16) {
        memcpy(dst, p + 2, 16);
    }
    *pp = p + 2 + alen;
    return 1;
}

static inline int s_fast_summary(const uint8_t **pp, const uint8_t *end, tb_summary_t *s)
{
    const uint8_t *p = *pp;
    if (end - p < (ptrdiff_t)S_SUMMARY_WORST ||
        (p[0] != (0x90 | S_SUMMARY_LEN) && p[0] != (0x90 | (S_SUMMARY_LEN + 1)))) {
        return 0;
    }
    int with_point = p[0] != (0x90 | S_SUMMARY_LEN);
    p++;
    s_fields_t v;
    if (!s_fast_uint(&p, &v.ts) || !s_fast_uint(&p, &v.wire_len) ||
        !s_fast_uint(&p, &v.cap_len) || !s_fast_uint(&p, &v.family) ||
        !s_fast_uint(&p, &v.proto) || !s_head_ok(&v)) {
        return 0;
    }
    int alen = v.family <= UINT8_MAX ? s_addr_len((uint8_t)v.family) : -1;
    if (alen < 0 || !s_fast_addr(&p, s->src, (unsigned)alen) ||
        !s_fast_addr(&p, s->dst, (unsigned)alen)) {
        return 0;
    }
    uint64_t point = 0;
    if (!s_fast_uint(&p, &v.sport) || !s_fast_uint(&p, &v.dport) ||
        !s_fast_uint(&p, &v.tcp_flags) || !s_fast_uint(&p, &v.vlan) ||
        !s_fast_uint(&p, &v.flags) || !s_fast_uint(&p, &v.ethertype) ||
        (with_point && !s_fast_uint(&p, &point)) || !s_tail_ok(&v) || point > TB_POINTS_MAX) {
        return 0;
    }
    s_store(&v, s);
    s->point = (uint16_t)point;
    *pp = p;
    return 1;
}

/* The usual shapes of a summary: IPv4 or IPv6, no point, the timestamp in
 * 64 bits, the lengths, ports and ethertype in 16, protocol, TCP flags and
 * flags as positive fixints (below 0x80), the VLAN id a fixint or in 16 bits:
 * what a probe writes for nearly every IP packet. Every field then sits at
 * a fixed offset: the type bytes of a summary are checked all at once (a
 * mask and the bytes wanted, eight at a time), then the fields read without
 * a chain of per-field dispatches. A summary of any other shape takes
 * s_fast_summary. Values need no range checks here but the VLAN id's: 16-bit
 * fields and fixints fit their fields. */
#define SHAPE_WORDS 9 /* 72 bytes: the longest shape (68) rounded up */

typedef struct {
    size_t len;       /* bytes of the summary */
    size_t addr_len;  /* 4 or 16 */
    size_t vlan_wide; /* 0: the VLAN id a fixint; 2: in 16 bits (2 bytes more) */
    uint8_t mask[8 * SHAPE_WORDS];
    uint8_t want[8 * SHAPE_WORDS];
} s_shape_t;

/* Type bytes (0xff: all of it; 0x80: a fixint's top bit) and what they must
 * be, for addresses of a bytes and a VLAN id v bytes wider than a fixint:
 * array, ts, wire_len, cap_len, family, proto, src, dst, sport, dport,
 * tcp_flags, vlan, flags, ethertype. */
#define SHAPE_MASK(a, v)                                                                           \
    {                                                                                              \
        [0] = 0xff, [1] = 0xff, [10] = 0xff, [13] = 0xff, [16] = 0xff, [17] = 0x80, [18] = 0xff,  \
        [19] = 0xff, [20 + (a)] = 0xff, [21 + (a)] = 0xff, [22 + 2 * (a)] = 0xff,                 \
        [25 + 2 * (a)] = 0xff, [28 + 2 * (a)] = 0x80, [29 + 2 * (a)] = (v) ? 0xff : 0x80,         \
        [30 + 2 * (a) + (v)] = 0x80, [31 + 2 * (a) + (v)] = 0xff,                                 \
    }
#define SHAPE_WANT(a, v, family)                                                                   \
    {                                                                                              \
        [0] = 0x90 | S_SUMMARY_LEN, [1] = 0xcf, [10] = 0xcd, [13] = 0xcd, [16] = (family),        \
        [18] = 0xc4, [19] = (a), [20 + (a)] = 0xc4, [21 + (a)] = (a), [22 + 2 * (a)] = 0xcd,      \
        [25 + 2 * (a)] = 0xcd, [29 + 2 * (a)] = (v) ? 0xcd : 0, [31 + 2 * (a) + (v)] = 0xcd,     \
    }
#define SHAPE(a, v, family)                                                                        \
    {                                                                                              \
        .len = 34 + 2 * (a) + (v), .addr_len = (a), .vlan_wide = (v), .mask = SHAPE_MASK(a, v),   \
        .want = SHAPE_WANT(a, v, family),                                                          \
    }

static const s_shape_t s_shape4 = SHAPE(4, 0, TB_FAMILY_IPV4);
static const s_shape_t s_shape4v = SHAPE(4, 2, TB_FAMILY_IPV4);
static const s_shape_t s_shape6 = SHAPE(16, 0, TB_FAMILY_IPV6);
static const s_shape_t s_shape6v = SHAPE(16, 2, TB_FAMILY_IPV6);

_Static_assert(34 + 2 * 16 + 2 <= 8 * SHAPE_WORDS && 8 * SHAPE_WORDS <= S_SUMMARY_WORST,
               "a shape's words lie inside the bytes the bounds check covers");

/* A summary of shape sh at p: 1 with *pp past it, or 0 (inlined with sh
 * constant, its masks become immediates). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline int s_shape_at(const uint8_t **pp, const s_shape_t *sh, tb_summary_t *s)
{
    const uint8_t *p = *pp;
    uint64_t diff = 0;
    for (size_t i = 0; i < (sh->len + 7) / 8; i++) {
        uint64_t v, m, w;
        memcpy(&v, p + 8 * i, 8);
        memcpy(&m, sh->mask + 8 * i, 8);
        memcpy(&w, sh->want + 8 * i, 8);
        diff |= (v & m) ^ w;
    }
    const size_t a = sh->addr_len;
    const uint8_t *t = p + 22 + 2 * a;    /* the source port's type byte */
    const uint8_t *u = t + sh->vlan_wide; /* the same, moved by the VLAN id */
    uint16_t vlan = sh->vlan_wide ? (uint16_t)s_be(t + 8, 2) : t[7];
    if (diff != 0 || vlan > S_VLAN_MAX) {
        return 0;
    }
    s->ts_ns = s_be(p + 2, 8);
    s->wire_len = (uint32_t)s_be(p + 11, 2);
    s->cap_len = (uint32_t)s_be(p + 14, 2);
    s->family = p[16];
    s->proto = p[17];
    memset(s->src, 0, 16);
    memset(s->dst, 0, 16);
    memcpy(s->src, p + 20, a);
    memcpy(s->dst, p + 22 + a, a);
    s->sport = (uint16_t)s_be(t + 1, 2);
    s->dport = (uint16_t)s_be(t + 4, 2);
    s->tcp_flags = t[6];
    s->vlan = vlan;
    s->flags = (uint8_t)(u[8] & S_KNOWN_FLAGS);
    s->ethertype = (uint16_t)s_be(u + 10, 2);
    s->point = 0;
    *pp = p + sh->len;
    return 1;
}

#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline int s_shape_summary(const uint8_t **pp, const uint8_t *end, tb_summary_t *s)
{
    const uint8_t *p = *pp;
    if (end - p < (ptrdiff_t)S_SUMMARY_WORST) {
        return 0;
    }
    if (p[16] == TB_FAMILY_IPV4) {
        return s_shape_at(pp, &s_shape4, s) || s_shape_at(pp, &s_shape4v, s);
    }
    return s_shape_at(pp, &s_shape6, s) || s_shape_at(pp, &s_shape6v, s);
}

/* Bytes of a batch asked for ahead of the summary being decoded (some 23
 * summaries, 200-250 ns of decoding). A message arrives in a buffer another
 * core wrote (ZeroMQ's I/O thread) or no core has read yet, and the
 * hardware's own prefetching left its first reads waiting on memory:
 * tb-ingest-bench 56 -> 52 ns per packet with every packet a new flow,
 * 41 -> 39 zipf; the suite's collector alone 91-94 -> 97-98 % of the raw
 * read per CPU second (every packet new). 256 bytes gained a third of
 * that, 2048 and 4096 no more than 1024. */
#define DECODE_AHEAD 1024

int tb_wire_read_batch(tb_mp_reader_t *r, tb_wire_msg_t *msg, tb_summary_t *items, size_t max_items,
                       uint16_t *maxpoint)
{
    uint32_t n = tb_mp_read_array(r);
    if (r->error) {
        return r->error;
    }
    if (n > TB_WIRE_MAX_BATCH || n > max_items) {
        return TB_ELIMIT;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (r->end - r->ptr > DECODE_AHEAD) {
            __builtin_prefetch(r->ptr + DECODE_AHEAD);
        }
        if (!s_shape_summary(&r->ptr, r->end, &items[i]) &&
            !s_fast_summary(&r->ptr, r->end, &items[i])) {
            int rc = s_read_summary(r, &items[i]);
            if (rc != 0) {
                return rc;
            }
        }
        if (items[i].point > *maxpoint) {
            *maxpoint = items[i].point;
        }
    }
    msg->count = n;
    return 0;
}

/* A batch's point table: an array of at most TB_POINTS_MAX [mp, ci] pairs
 * (more elements in a pair are skipped), names of at most
 * TB_POINT_NAME_MAX bytes. */
int tb_wire_read_points(tb_mp_reader_t *r, tb_point_table_t *t)
{
    uint32_t n = tb_mp_read_array(r);
    if (r->error) {
        return r->error;
    }
    if (n > TB_POINTS_MAX) {
        return TB_ELIMIT;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = tb_mp_read_array(r);
        if (r->error) {
            return r->error;
        }
        if (k < 2) {
            return TB_EPROTO;
        }
        tb_mp_read_str_copy(r, t->p[i].mp, sizeof t->p[i].mp);
        tb_mp_read_str_copy(r, t->p[i].ci, sizeof t->p[i].ci);
        for (uint32_t j = 2; j < k; j++) {
            tb_mp_skip(r);
        }
        if (r->error) {
            return r->error;
        }
    }
    t->n = n;
    return 0;
}
