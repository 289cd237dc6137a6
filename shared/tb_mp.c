/* tb_mp — the reading half: the strict msgpack cursor (see tb_mp.h; the
 * writing half, a bounded buffer for msgpack-c's packer, is tb_mp_write.c).
 *
 * Format reference: the MessagePack specification
 * (https://github.com/msgpack/msgpack/blob/master/spec.md). All multi-byte
 * values are big-endian and unaligned: they are assembled byte by byte, never
 * read through a cast pointer.
 *
 * Error codes: a value of the wrong type or the reserved byte 0xc1 gives
 * TB_EPROTO; a value (or a declared count) that needs more bytes than remain
 * gives TB_ETRUNC; an integer that does not fit the requested type, a string
 * too long for its destination, or nesting deeper than TB_MP_MAX_DEPTH gives
 * TB_ELIMIT. Thread-safety: a reader belongs to one thread. */
#include "tb_mp.h"

#include "tb_err.h"

#include <string.h>

/* The decoded header of the next value, before anything is consumed. */
typedef struct {
    tb_mp_type_t type;
    size_t hlen; /* bytes of the header: format byte and length/value bytes */
    uint64_t u;  /* UINT value; array/map count; str/bin/ext payload bytes */
    int64_t i;   /* INT value (negative) */
    double f;    /* FLOAT value */
    int b;       /* BOOL value */
} s_head_t;

static inline uint16_t s_be16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t s_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t s_be64(const uint8_t *p)
{
    return (uint64_t)s_be32(p) << 32 | s_be32(p + 4);
}

static inline void s_fail(tb_mp_reader_t *r, int err)
{
    if (r->error == 0) {
        r->error = err;
    }
}

/* A signed format holding a non-negative value is an unsigned integer as far
 * as the data model goes (msgpack-c's unpacker agrees): classify by value. */
static void s_signed(s_head_t *h, int64_t v)
{
    if (v >= 0) {
        h->type = TB_MP_UINT;
        h->u = (uint64_t)v;
    } else {
        h->type = TB_MP_INT;
        h->i = v;
    }
}

/* Parse the header of the next value. Returns 0, TB_ETRUNC (the header itself
 * is cut short) or TB_EPROTO (0xc1). Payloads and counts are not checked here:
 * each caller checks them against what it is about to consume. */
static int s_head(const tb_mp_reader_t *r, s_head_t *h)
{
    size_t avail = (size_t)(r->end - r->ptr);
    if (avail == 0) {
        return TB_ETRUNC;
    }
    const uint8_t *p = r->ptr;
    uint8_t c = p[0];
    h->hlen = 1;
    if (c <= 0x7f) {
        h->type = TB_MP_UINT;
        h->u = c;
        return 0;
    }
    if (c >= 0xe0) {
        h->type = TB_MP_INT;
        h->i = (int8_t)c;
        return 0;
    }
    if (c <= 0x8f) {
        h->type = TB_MP_MAP;
        h->u = c & 0x0fu;
        return 0;
    }
    if (c <= 0x9f) {
        h->type = TB_MP_ARRAY;
        h->u = c & 0x0fu;
        return 0;
    }
    if (c <= 0xbf) {
        h->type = TB_MP_STR;
        h->u = c & 0x1fu;
        return 0;
    }

    /* 0xc0..0xdf: the length of the header depends on the format byte. */
    static const uint8_t s_hlen[32] = {
        1, 0, 1, 1,    /* c0 nil, c1 reserved, c2 false, c3 true */
        2, 3, 5,       /* c4..c6 bin8/16/32 */
        3, 4, 6,       /* c7..c9 ext8/16/32 (length, then type byte) */
        5, 9,          /* ca float32, cb float64 */
        2, 3, 5, 9,    /* cc..cf uint8..64 */
        2, 3, 5, 9,    /* d0..d3 int8..64 */
        2, 2, 2, 2, 2, /* d4..d8 fixext1/2/4/8/16 (type byte) */
        2, 3, 5,       /* d9..db str8/16/32 */
        3, 5,          /* dc, dd array16/32 */
        3, 5,          /* de, df map16/32 */
    };
    size_t need = s_hlen[c - 0xc0];
    if (need == 0) {
        return TB_EPROTO;
    }
    if (avail < need) {
        return TB_ETRUNC;
    }
    h->hlen = need;
    switch (c) {
    case 0xc0:
        h->type = TB_MP_NIL;
        break;
    case 0xc2:
    case 0xc3:
        h->type = TB_MP_BOOL;
        h->b = c == 0xc3;
        break;
    case 0xc4:
        h->type = TB_MP_BIN;
        h->u = p[1];
        break;
    case 0xc5:
        h->type = TB_MP_BIN;
        h->u = s_be16(p + 1);
        break;
    case 0xc6:
        h->type = TB_MP_BIN;
        h->u = s_be32(p + 1);
        break;
    case 0xc7:
        h->type = TB_MP_EXT;
        h->u = p[1];
        break;
    case 0xc8:
        h->type = TB_MP_EXT;
        h->u = s_be16(p + 1);
        break;
    case 0xc9:
        h->type = TB_MP_EXT;
        h->u = s_be32(p + 1);
        break;
    case 0xca: {
        uint32_t bits = s_be32(p + 1);
        float f;
        memcpy(&f, &bits, sizeof f);
        h->type = TB_MP_FLOAT;
        h->f = f;
        break;
    }
    case 0xcb: {
        uint64_t bits = s_be64(p + 1);
        memcpy(&h->f, &bits, sizeof h->f);
        h->type = TB_MP_FLOAT;
        break;
    }
    case 0xcc:
        h->type = TB_MP_UINT;
        h->u = p[1];
        break;
    case 0xcd:
        h->type = TB_MP_UINT;
        h->u = s_be16(p + 1);
        break;
    case 0xce:
        h->type = TB_MP_UINT;
        h->u = s_be32(p + 1);
        break;
    case 0xcf:
        h->type = TB_MP_UINT;
        h->u = s_be64(p + 1);
        break;
    case 0xd0:
        s_signed(h, (int8_t)p[1]);
        break;
    case 0xd1:
        s_signed(h, (int16_t)s_be16(p + 1));
        break;
    case 0xd2:
        s_signed(h, (int32_t)s_be32(p + 1));
        break;
    case 0xd3:
        s_signed(h, (int64_t)s_be64(p + 1));
        break;
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        h->type = TB_MP_EXT;
        h->u = 1u << (c - 0xd4);
        break;
    case 0xd9:
        h->type = TB_MP_STR;
        h->u = p[1];
        break;
    case 0xda:
        h->type = TB_MP_STR;
        h->u = s_be16(p + 1);
        break;
    case 0xdb:
        h->type = TB_MP_STR;
        h->u = s_be32(p + 1);
        break;
    case 0xdc:
        h->type = TB_MP_ARRAY;
        h->u = s_be16(p + 1);
        break;
    case 0xdd:
        h->type = TB_MP_ARRAY;
        h->u = s_be32(p + 1);
        break;
    case 0xde:
        h->type = TB_MP_MAP;
        h->u = s_be16(p + 1);
        break;
    default: /* 0xdf */
        h->type = TB_MP_MAP;
        h->u = s_be32(p + 1);
        break;
    }
    return 0;
}

/* Parse the next header and require `type`; 0 on success, else the
 * reader's (sticky) error, which is stored in r. */
static int s_expect(tb_mp_reader_t *r, tb_mp_type_t type, s_head_t *h)
{
    if (r->error) {
        return r->error;
    }
    int rc = s_head(r, h);
    if (rc == 0 && h->type != type) {
        rc = TB_EPROTO;
    }
    if (rc) {
        s_fail(r, rc);
        return r->error;
    }
    return 0;
}

/* Consume a header followed by h->u payload bytes (str/bin); the payload must
 * be entirely present. Returns a pointer to the payload or NULL. */
static const uint8_t *s_take_payload(tb_mp_reader_t *r, const s_head_t *h)
{
    size_t left = (size_t)(r->end - r->ptr) - h->hlen;
    if (h->u > left) {
        s_fail(r, TB_ETRUNC);
        return NULL;
    }
    const uint8_t *body = r->ptr + h->hlen;
    r->ptr = body + h->u;
    return body;
}

void tb_mp_reader_init(tb_mp_reader_t *r, const void *buf, size_t len)
{
    /* NULL + 0 is undefined behaviour in C: an empty reader needs no arithmetic. */
    r->ptr = (const uint8_t *)buf;
    r->end = buf ? r->ptr + len : r->ptr;
    r->error = 0;
}

size_t tb_mp_remaining(const tb_mp_reader_t *r)
{
    return (size_t)(r->end - r->ptr);
}

tb_mp_type_t tb_mp_peek(const tb_mp_reader_t *r)
{
    s_head_t h;
    if (r->error || s_head(r, &h) != 0) {
        return TB_MP_INVALID;
    }
    return h.type;
}

uint64_t tb_mp_read_uint(tb_mp_reader_t *r)
{
    /* Fast paths for the unsigned formats, which is what every integer on
     * the wire is: this reader runs a dozen times per packet summary. */
    if (r->error == 0 && r->ptr < r->end) {
        const uint8_t *p = r->ptr;
        size_t avail = (size_t)(r->end - p);
        switch (*p) {
        case 0xcc:
            if (avail >= 2) {
                r->ptr += 2;
                return p[1];
            }
            break;
        case 0xcd:
            if (avail >= 3) {
                r->ptr += 3;
                return s_be16(p + 1);
            }
            break;
        case 0xce:
            if (avail >= 5) {
                r->ptr += 5;
                return s_be32(p + 1);
            }
            break;
        case 0xcf:
            if (avail >= 9) {
                r->ptr += 9;
                return s_be64(p + 1);
            }
            break;
        default:
            if (*p <= 0x7f) {
                r->ptr++;
                return *p;
            }
            break;
        }
    }
    s_head_t h;
    if (r->error) {
        return 0;
    }
    int rc = s_head(r, &h);
    if (rc == 0 && h.type != TB_MP_UINT) {
        rc = h.type == TB_MP_INT ? TB_ELIMIT : TB_EPROTO;
    }
    if (rc) {
        s_fail(r, rc);
        return 0;
    }
    r->ptr += h.hlen;
    return h.u;
}

int64_t tb_mp_read_int(tb_mp_reader_t *r)
{
    s_head_t h;
    if (r->error) {
        return 0;
    }
    int rc = s_head(r, &h);
    if (rc == 0) {
        if (h.type == TB_MP_UINT) {
            if (h.u > (uint64_t)INT64_MAX) {
                rc = TB_ELIMIT;
            } else {
                h.i = (int64_t)h.u;
            }
        } else if (h.type != TB_MP_INT) {
            rc = TB_EPROTO;
        }
    }
    if (rc) {
        s_fail(r, rc);
        return 0;
    }
    r->ptr += h.hlen;
    return h.i;
}

int tb_mp_read_bool(tb_mp_reader_t *r)
{
    s_head_t h;
    if (s_expect(r, TB_MP_BOOL, &h)) {
        return 0;
    }
    r->ptr += h.hlen;
    return h.b;
}

double tb_mp_read_float(tb_mp_reader_t *r)
{
    s_head_t h;
    if (r->error) {
        return 0.0;
    }
    int rc = s_head(r, &h);
    if (rc == 0) {
        if (h.type == TB_MP_UINT) {
            h.f = (double)h.u;
        } else if (h.type == TB_MP_INT) {
            h.f = (double)h.i;
        } else if (h.type != TB_MP_FLOAT) {
            rc = TB_EPROTO;
        }
    }
    if (rc) {
        s_fail(r, rc);
        return 0.0;
    }
    r->ptr += h.hlen;
    return h.f;
}

void tb_mp_read_nil(tb_mp_reader_t *r)
{
    s_head_t h;
    if (s_expect(r, TB_MP_NIL, &h) == 0) {
        r->ptr += h.hlen;
    }
}

const char *tb_mp_read_str(tb_mp_reader_t *r, uint32_t *len)
{
    s_head_t h;
    *len = 0;
    if (s_expect(r, TB_MP_STR, &h)) {
        return NULL;
    }
    const uint8_t *body = s_take_payload(r, &h);
    if (body) {
        *len = (uint32_t)h.u;
    }
    return (const char *)body;
}

const uint8_t *tb_mp_read_bin(tb_mp_reader_t *r, uint32_t *len)
{
    s_head_t h;
    *len = 0;
    if (s_expect(r, TB_MP_BIN, &h)) {
        return NULL;
    }
    const uint8_t *body = s_take_payload(r, &h);
    if (body) {
        *len = (uint32_t)h.u;
    }
    return body;
}

/* Why check counts here: a caller typically loops `count` times or sizes
 * something by it. Every element takes at least one byte, so a count larger
 * than the bytes left is a lie (or a truncation) and is refused before anyone
 * can act on it: an array32 claiming four billion elements in ten bytes costs
 * nothing. */
uint32_t tb_mp_read_array(tb_mp_reader_t *r)
{
    s_head_t h;
    if (s_expect(r, TB_MP_ARRAY, &h)) {
        return 0;
    }
    if (h.u > (size_t)(r->end - r->ptr) - h.hlen) {
        s_fail(r, TB_ETRUNC);
        return 0;
    }
    r->ptr += h.hlen;
    return (uint32_t)h.u;
}

uint32_t tb_mp_read_map(tb_mp_reader_t *r)
{
    s_head_t h;
    if (s_expect(r, TB_MP_MAP, &h)) {
        return 0;
    }
    /* h.u < 2^32, so 2 * h.u cannot overflow 64 bits. */
    if (2 * h.u > (uint64_t)((size_t)(r->end - r->ptr) - h.hlen)) {
        s_fail(r, TB_ETRUNC);
        return 0;
    }
    r->ptr += h.hlen;
    return (uint32_t)h.u;
}

size_t tb_mp_read_str_copy(tb_mp_reader_t *r, char *dst, size_t size)
{
    uint32_t len;
    if (size > 0) {
        dst[0] = '\0';
    }
    const char *s = tb_mp_read_str(r, &len);
    if (s == NULL) {
        return 0;
    }
    if ((size_t)len >= size) {
        s_fail(r, TB_ELIMIT);
        return 0;
    }
    if (memchr(s, '\0', len) != NULL) {
        s_fail(r, TB_EPROTO);
        return 0;
    }
    memcpy(dst, s, len);
    dst[len] = '\0';
    return len;
}

int tb_mp_next_str_is(tb_mp_reader_t *r, const char *s)
{
    s_head_t h;
    if (r->error || s_head(r, &h) != 0 || h.type != TB_MP_STR) {
        return 0;
    }
    size_t n = strlen(s);
    if (h.u != n || n > (size_t)(r->end - r->ptr) - h.hlen) {
        return 0;
    }
    if (memcmp(r->ptr + h.hlen, s, n) != 0) {
        return 0;
    }
    r->ptr += h.hlen + n;
    return 1;
}

/* Recursion is bounded by TB_MP_MAX_DEPTH; the total work by the buffer size,
 * because every element consumes at least one byte and counts are checked
 * against the bytes left before the loop starts. */
static void s_skip(tb_mp_reader_t *r, int depth)
{
    s_head_t h;
    int rc = s_head(r, &h);
    if (rc) {
        s_fail(r, rc);
        return;
    }
    size_t left = (size_t)(r->end - r->ptr) - h.hlen;
    switch (h.type) {
    case TB_MP_ARRAY:
    case TB_MP_MAP: {
        if (depth >= TB_MP_MAX_DEPTH) {
            s_fail(r, TB_ELIMIT);
            return;
        }
        uint64_t n = h.type == TB_MP_MAP ? 2 * h.u : h.u;
        if (n > left) {
            s_fail(r, TB_ETRUNC);
            return;
        }
        r->ptr += h.hlen;
        for (uint64_t i = 0; i < n && r->error == 0; i++) {
            s_skip(r, depth + 1);
        }
        return;
    }
    case TB_MP_STR:
    case TB_MP_BIN:
    case TB_MP_EXT:
        /* For ext, hlen covers the type byte and u the data bytes. */
        if (h.u > left) {
            s_fail(r, TB_ETRUNC);
            return;
        }
        r->ptr += h.hlen + h.u;
        return;
    default:
        r->ptr += h.hlen;
        return;
    }
}

void tb_mp_skip(tb_mp_reader_t *r)
{
    if (r->error == 0) {
        s_skip(r, 0);
    }
}
