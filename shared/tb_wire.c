/* tb_wire — see tb_wire.h; the format is specified in docs/wire-format.md.
 *
 * Encoding packs straight into the caller's buffer with msgpack-c's inline
 * packers; a write past the end sets the buffer's overflow flag, checked once
 * at the end. Decoding reads through tb_mp (bounds-checked, sticky error) and
 * validates every field before the message is handed back. Stateless and
 * thread-safe. */
#include "tb_wire.h"

#include "tb_err.h"
#include "tb_mp.h"

#include <stddef.h>
#include <string.h>

#define S_ENVELOPE_LEN 7  /* fewest elements of an envelope (run is optional) */
#define S_ENVELOPE_OUT 8  /* elements an encoder writes */
#define S_SUMMARY_LEN  13 /* elements of one summary array (14 with a point) */
#define S_ENVELOPE_PTS 9  /* elements of a batch's envelope that carries points */

/* The point index rides in the summary's tail padding: summaries stay 64
 * bytes, the size the probe and collector arrays were sized for. */
_Static_assert(sizeof(tb_summary_t) == 64, "tb_summary_t grew");

/* Flag bits this version defines; others are masked off on decode (see the
 * "flags" rule in docs/wire-format.md). */
#define S_KNOWN_FLAGS                                                                              \
    (TB_SUM_VLAN | TB_SUM_PORTS | TB_SUM_TRUNC | TB_SUM_MALFORMED | TB_SUM_FRAGMENT |              \
     TB_SUM_TCPFLAGS)

#define S_VLAN_MAX 4095u

/* ---------------------------------------------------------------- names */

static int s_name_char(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return 1;
    }
    return c != '\0' && strchr("._:/@+-", c) != NULL;
}

static int s_name_valid_n(const char *s, size_t n)
{
    if (n == 0 || n > TB_STREAM_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!s_name_char((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

int tb_wire_name_valid(const char *name)
{
    if (name == NULL) {
        return TB_EINVAL;
    }
    return s_name_valid_n(name, strnlen(name, TB_STREAM_MAX + 1)) ? 0 : TB_EINVAL;
}

int tb_wire_topic(const char *stream, uint8_t *topic, size_t size)
{
    if (tb_wire_name_valid(stream) != 0) {
        return TB_EINVAL;
    }
    size_t n = strlen(stream);
    if (topic == NULL || size < n + 1) {
        return TB_EINVAL;
    }
    memcpy(topic, stream, n);
    topic[n] = '\0';
    return (int)(n + 1);
}

const char *tb_wire_type_name(int type)
{
    switch (type) {
    case TB_MSG_BATCH:
        return "batch";
    case TB_MSG_HEARTBEAT:
        return "heartbeat";
    case TB_MSG_EOS:
        return "eos";
    case TB_MSG_OFFER:
        return "offer";
    default:
        return "unknown";
    }
}

const char *tb_src_state_name(int state)
{
    switch (state) {
    case TB_SRC_WAITING:
        return "waiting";
    case TB_SRC_RUNNING:
        return "running";
    case TB_SRC_FINISHED:
        return "finished";
    case TB_SRC_ERROR:
        return "error";
    default:
        return "unknown";
    }
}

/* ------------------------------------------------------------- encoding */

/* Length of a NUL-terminated field held in a char[size], or size if the
 * array holds no terminator (which an encoder must refuse). */
static size_t s_field_len(const char *s, size_t size)
{
    return strnlen(s, size);
}

static void s_pack_strn(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* The envelope up to (not including) the payload. Pack results are not
 * checked one by one: the buffer's sticky overflow flag says it all. */
static int s_pack_header(msgpack_packer *pk, const tb_wire_header_t *h, int type)
{
    size_t np = s_field_len(h->probe_id, sizeof h->probe_id);
    size_t ns = s_field_len(h->stream, sizeof h->stream);
    if (!s_name_valid_n(h->probe_id, np) || !s_name_valid_n(h->stream, ns)) {
        return TB_EINVAL;
    }
    msgpack_pack_array(pk, S_ENVELOPE_OUT);
    msgpack_pack_uint8(pk, TB_WIRE_VERSION);
    msgpack_pack_uint8(pk, (uint8_t)type);
    s_pack_strn(pk, h->probe_id, np);
    msgpack_pack_uint64(pk, h->boot_ns);
    s_pack_strn(pk, h->stream, ns);
    msgpack_pack_uint64(pk, h->seq);
    return 0;
}

static int s_finish(const tb_mp_buf_t *b, size_t *len)
{
    if (b->overflow) {
        return TB_ELIMIT;
    }
    *len = b->len;
    return 0;
}

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
 * 0xcf, big-endian). */
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
        for (int shift = 24; shift >= 0; shift -= 8) {
            *p++ = (uint8_t)(v >> shift);
        }
    } else {
        *p++ = 0xcf;
        for (int shift = 56; shift >= 0; shift -= 8) {
            *p++ = (uint8_t)(v >> shift);
        }
    }
    return p;
}

static inline uint8_t *s_put_bin(uint8_t *p, const uint8_t *data, size_t n)
{
    *p++ = 0xc4; /* bin 8: n is 0, 4 or 16 */
    *p++ = (uint8_t)n;
    memcpy(p, data, n);
    return p + n;
}

/* One summary: a fixarray of S_SUMMARY_LEN fields, at most 75 bytes (array 1,
 * ts 9, lengths 5+5, family 1, proto 2, addresses 18+18, ports 3+3,
 * tcp_flags 2, vlan 3, flags 2, ethertype 3), and a 14th, the point index
 * (1 byte: at most TB_POINTS_MAX), when it names one; TB_WIRE_SUMMARY_MAX_BYTES
 * leaves a margin.
 *
 * Why not msgpack-c's packer here: this is the probe's per-packet hot path,
 * and the packer reaches the buffer through a callback for each of the 16
 * pieces of a summary, which made encoding cost more than decoding the packet.
 * Writing the bytes directly is about three times faster and produces exactly
 * the bytes msgpack-c would (checked against it in tests/unit/test_wire.c);
 * everything else in the format goes through msgpack-c. */
static uint8_t *s_put_summary(uint8_t *p, const tb_summary_t *s, size_t alen)
{
    *p++ = (uint8_t)(0x90 | (s->point != 0 ? S_SUMMARY_LEN + 1 : S_SUMMARY_LEN));
    p = s_put_uint(p, s->ts_ns);
    p = s_put_uint(p, s->wire_len);
    p = s_put_uint(p, s->cap_len);
    p = s_put_uint(p, s->family);
    p = s_put_uint(p, s->proto);
    p = s_put_bin(p, s->src, alen);
    p = s_put_bin(p, s->dst, alen);
    p = s_put_uint(p, s->sport);
    p = s_put_uint(p, s->dport);
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
        s_pack_strn(&pk, t->p[i].mp, nm);
        s_pack_strn(&pk, t->p[i].ci, nc);
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
    int rc = s_pack_header(&pk, h, TB_MSG_BATCH);
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

/* Heartbeat counters, in the order they are packed; one table drives the
 * encoder and the decoder. */
typedef struct {
    const char *key;
    size_t offset; /* of a uint64_t in tb_heartbeat_t */
    int optional;  /* written only when non-zero (counters of one source kind) */
} s_counter_t;

static const s_counter_t s_hb_counters[] = {
    {"recv", offsetof(tb_heartbeat_t, pcap_recv), 0},
    {"drop", offsetof(tb_heartbeat_t, pcap_drop), 0},
    {"ifdrop", offsetof(tb_heartbeat_t, pcap_ifdrop), 0},
    {"packets", offsetof(tb_heartbeat_t, packets), 0},
    {"batches", offsetof(tb_heartbeat_t, batches), 0},
    {"bus_drops", offsetof(tb_heartbeat_t, bus_drops), 0},
    {"decode_errors", offsetof(tb_heartbeat_t, decode_errors), 0},
    {"sampled_out", offsetof(tb_heartbeat_t, sampled_out), 0},
    {"files_skipped", offsetof(tb_heartbeat_t, files_skipped), 0},
    {"frames_lost", offsetof(tb_heartbeat_t, frames_lost), 1},
    {"frames_bad", offsetof(tb_heartbeat_t, frames_bad), 1},
};
#define S_HB_NCOUNTERS (sizeof s_hb_counters / sizeof s_hb_counters[0])

static uint64_t *s_counter(tb_heartbeat_t *hb, size_t i)
{
    return (uint64_t *)((char *)hb + s_hb_counters[i].offset);
}

static uint64_t s_counter_get(const tb_heartbeat_t *hb, size_t i)
{
    uint64_t v;
    memcpy(&v, (const char *)hb + s_hb_counters[i].offset, sizeof v);
    return v;
}

int tb_wire_encode_heartbeat(const tb_wire_header_t *h, const tb_heartbeat_t *hb, uint8_t *out,
                             size_t cap, size_t *len)
{
    tb_mp_buf_t b;
    msgpack_packer pk;
    size_t nd = s_field_len(hb->detail, sizeof hb->detail);
    if (hb->state >= TB_SRC_STATE_COUNT || nd >= sizeof hb->detail) {
        return TB_EINVAL;
    }
    tb_mp_buf_init(&b, &pk, out, cap);
    int rc = s_pack_header(&pk, h, TB_MSG_HEARTBEAT);
    if (rc != 0) {
        return rc;
    }
    size_t nkeys = 2;
    for (size_t i = 0; i < S_HB_NCOUNTERS; i++) {
        nkeys += !s_hb_counters[i].optional || s_counter_get(hb, i) != 0;
    }
    msgpack_pack_map(&pk, (uint32_t)nkeys);
    tb_mp_pack_cstr(&pk, "state");
    msgpack_pack_uint8(&pk, hb->state);
    for (size_t i = 0; i < S_HB_NCOUNTERS; i++) {
        if (s_hb_counters[i].optional && s_counter_get(hb, i) == 0) {
            continue;
        }
        tb_mp_pack_cstr(&pk, s_hb_counters[i].key);
        msgpack_pack_uint64(&pk, s_counter_get(hb, i));
    }
    tb_mp_pack_cstr(&pk, "detail");
    s_pack_strn(&pk, hb->detail, nd);
    msgpack_pack_uint64(&pk, h->run);
    return s_finish(&b, len);
}

int tb_wire_encode_eos(const tb_wire_header_t *h, const tb_eos_t *eos, uint8_t *out, size_t cap,
                       size_t *len)
{
    tb_mp_buf_t b;
    msgpack_packer pk;
    size_t nd = s_field_len(eos->detail, sizeof eos->detail);
    if (eos->error > 1 || nd >= sizeof eos->detail) {
        return TB_EINVAL;
    }
    tb_mp_buf_init(&b, &pk, out, cap);
    int rc = s_pack_header(&pk, h, TB_MSG_EOS);
    if (rc != 0) {
        return rc;
    }
    msgpack_pack_map(&pk, 5);
    tb_mp_pack_cstr(&pk, "packets");
    msgpack_pack_uint64(&pk, eos->packets);
    tb_mp_pack_cstr(&pk, "first_seq");
    msgpack_pack_uint64(&pk, eos->first_seq);
    tb_mp_pack_cstr(&pk, "batches");
    msgpack_pack_uint64(&pk, eos->batches);
    tb_mp_pack_cstr(&pk, "error");
    msgpack_pack_uint8(&pk, eos->error);
    tb_mp_pack_cstr(&pk, "detail");
    s_pack_strn(&pk, eos->detail, nd);
    msgpack_pack_uint64(&pk, h->run);
    return s_finish(&b, len);
}

/* ------------------------------------------------------------- decoding */

/* Read a name (probe id or stream) into dst[TB_STREAM_MAX + 1]. */
static int s_read_name(tb_mp_reader_t *r, char *dst)
{
    uint32_t n;
    const char *s = tb_mp_read_str(r, &n);
    if (r->error) {
        return r->error;
    }
    if (!s_name_valid_n(s, n)) {
        return TB_EPROTO;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

/* Hot-path readers: the encodings a summary almost always uses (positive
 * fixint, bin 8) inline, everything else through the generic checked reader. */
static inline uint64_t s_uint(tb_mp_reader_t *r)
{
    if (r->ptr < r->end && *r->ptr < 0x80) {
        return *r->ptr++;
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
    uint64_t ts = s_uint(r);
    uint64_t wire_len = s_uint(r);
    uint64_t cap_len = s_uint(r);
    uint64_t family = s_uint(r);
    uint64_t proto = s_uint(r);
    if (r->error) {
        return r->error;
    }
    if (wire_len > UINT32_MAX || cap_len > UINT32_MAX || proto > UINT8_MAX) {
        return TB_EPROTO;
    }
    int alen = family <= UINT8_MAX ? s_addr_len((uint8_t)family) : -1;
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
    uint64_t sport = s_uint(r);
    uint64_t dport = s_uint(r);
    uint64_t tcp_flags = s_uint(r);
    uint64_t vlan = s_uint(r);
    uint64_t flags = s_uint(r);
    uint64_t ethertype = s_uint(r);
    if (r->error) {
        return r->error;
    }
    if (sport > UINT16_MAX || dport > UINT16_MAX || tcp_flags > UINT8_MAX || vlan > S_VLAN_MAX ||
        flags > UINT8_MAX || ethertype > UINT16_MAX) {
        return TB_EPROTO;
    }
    s->ts_ns = ts;
    s->wire_len = (uint32_t)wire_len;
    s->cap_len = (uint32_t)cap_len;
    s->family = (uint8_t)family;
    s->proto = (uint8_t)proto;
    s->sport = (uint16_t)sport;
    s->dport = (uint16_t)dport;
    s->tcp_flags = (uint8_t)tcp_flags;
    s->vlan = (uint16_t)vlan;
    s->flags = (uint8_t)(flags & S_KNOWN_FLAGS);
    s->ethertype = (uint16_t)ethertype;
    s->point = 0;
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

static int s_read_batch(tb_mp_reader_t *r, tb_wire_msg_t *msg, tb_summary_t *items,
                        size_t max_items, uint16_t *maxpoint)
{
    uint32_t n = tb_mp_read_array(r);
    if (r->error) {
        return r->error;
    }
    if (n > TB_WIRE_MAX_BATCH || n > max_items) {
        return TB_ELIMIT;
    }
    for (uint32_t i = 0; i < n; i++) {
        int rc = s_read_summary(r, &items[i]);
        if (rc != 0) {
            return rc;
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
static int s_read_points(tb_mp_reader_t *r, tb_point_table_t *t)
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

/* Map keys are strings; a known key may appear once. Returns the index of key
 * in keys[0..nkeys), or -1 for an unknown key (the caller skips its value). */
static int s_key_index(const char *k, uint32_t klen, const char *const *keys, size_t nkeys)
{
    for (size_t i = 0; i < nkeys; i++) {
        if (strlen(keys[i]) == klen && memcmp(keys[i], k, klen) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* Read the next key of a map whose known keys are keys[0..nkeys). Returns 1
 * with *idx set when it is a known key (its value is next), 0 for an unknown
 * key (its value has been skipped), or a negative tb_err_t: a known key seen
 * twice is ambiguous and refused. */
static int s_next_key(tb_mp_reader_t *r, const char *const *keys, size_t nkeys, unsigned *seen,
                      int *idx)
{
    uint32_t klen;
    const char *k = tb_mp_read_str(r, &klen);
    if (r->error) {
        return r->error;
    }
    *idx = s_key_index(k, klen, keys, nkeys);
    if (*idx < 0) {
        tb_mp_skip(r);
        return r->error ? r->error : 0;
    }
    if (*seen & (1u << *idx)) {
        return TB_EPROTO;
    }
    *seen |= 1u << *idx;
    return 1;
}

static int s_read_heartbeat(tb_mp_reader_t *r, tb_heartbeat_t *hb)
{
    /* keys[0..S_HB_NCOUNTERS) are the counters, then state and detail. */
    enum { K_STATE = S_HB_NCOUNTERS, K_DETAIL, K_COUNT };
    const char *keys[K_COUNT];
    for (size_t i = 0; i < S_HB_NCOUNTERS; i++) {
        keys[i] = s_hb_counters[i].key;
    }
    keys[K_STATE] = "state";
    keys[K_DETAIL] = "detail";

    uint32_t n = tb_mp_read_map(r);
    unsigned seen = 0;
    for (uint32_t i = 0; i < n && r->error == 0; i++) {
        int idx = -1;
        int rc = s_next_key(r, keys, K_COUNT, &seen, &idx);
        if (rc <= 0) {
            if (rc < 0) {
                return rc;
            }
            continue;
        }
        if (idx == K_STATE) {
            uint64_t st = tb_mp_read_uint(r);
            if (r->error == 0 && st >= TB_SRC_STATE_COUNT) {
                return TB_EPROTO;
            }
            hb->state = (uint8_t)st;
        } else if (idx == K_DETAIL) {
            tb_mp_read_str_copy(r, hb->detail, sizeof hb->detail);
        } else {
            *s_counter(hb, (size_t)idx) = tb_mp_read_uint(r);
        }
    }
    return r->error;
}

static int s_read_eos(tb_mp_reader_t *r, tb_eos_t *eos)
{
    enum { K_PACKETS, K_FIRST_SEQ, K_BATCHES, K_ERROR, K_DETAIL, K_COUNT };
    static const char *const keys[K_COUNT] = {"packets", "first_seq", "batches", "error", "detail"};
    uint32_t n = tb_mp_read_map(r);
    unsigned seen = 0;
    for (uint32_t i = 0; i < n && r->error == 0; i++) {
        int idx = -1;
        int rc = s_next_key(r, keys, K_COUNT, &seen, &idx);
        if (rc <= 0) {
            if (rc < 0) {
                return rc;
            }
            continue;
        }
        switch (idx) {
        case K_PACKETS:
            eos->packets = tb_mp_read_uint(r);
            break;
        case K_FIRST_SEQ:
            eos->first_seq = tb_mp_read_uint(r);
            break;
        case K_BATCHES:
            eos->batches = tb_mp_read_uint(r);
            break;
        case K_ERROR: {
            uint64_t e = tb_mp_read_uint(r);
            if (r->error == 0 && e > 1) {
                return TB_EPROTO;
            }
            eos->error = (uint8_t)e;
            break;
        }
        default:
            tb_mp_read_str_copy(r, eos->detail, sizeof eos->detail);
            break;
        }
    }
    return r->error;
}

/* The start every body shares: the outer array (its length in *n, at least
 * min_len) and the format version, judged before the envelope's shape: a
 * later version may change everything after it. */
static int s_read_prelude(tb_mp_reader_t *r, uint32_t min_len, uint32_t *n)
{
    *n = tb_mp_read_array(r);
    if (r->error) {
        return r->error;
    }
    if (*n == 0) {
        return TB_EPROTO;
    }
    uint64_t version = tb_mp_read_uint(r);
    if (r->error) {
        return r->error == TB_ETRUNC ? TB_ETRUNC : TB_EVERSION;
    }
    if (version != TB_WIRE_VERSION) {
        return TB_EVERSION;
    }
    return *n < min_len ? TB_EPROTO : 0;
}

int tb_wire_decode(const uint8_t *buf, size_t len, tb_wire_msg_t *msg, tb_summary_t *items,
                   size_t max_items)
{
    tb_mp_reader_t r;
    if (len > TB_WIRE_MAX_MSG) {
        return TB_ELIMIT;
    }
    memset(msg, 0, sizeof *msg);
    msg->items = items;
    tb_mp_reader_init(&r, buf, len);

    uint32_t n;
    int rc = s_read_prelude(&r, S_ENVELOPE_LEN, &n);
    if (rc != 0) {
        return rc;
    }

    uint64_t type = tb_mp_read_uint(&r);
    if (r.error) {
        return r.error;
    }
    if (type < TB_MSG_BATCH || type > TB_MSG_EOS) {
        return TB_EPROTO;
    }
    msg->hdr.type = (uint8_t)type;
    rc = s_read_name(&r, msg->hdr.probe_id);
    if (rc != 0) {
        return rc;
    }
    msg->hdr.boot_ns = tb_mp_read_uint(&r);
    rc = s_read_name(&r, msg->hdr.stream);
    if (rc != 0) {
        return rc;
    }
    msg->hdr.seq = tb_mp_read_uint(&r);
    if (r.error) {
        return r.error;
    }

    uint16_t maxpoint = 0;
    switch (type) {
    case TB_MSG_BATCH:
        rc = s_read_batch(&r, msg, items, max_items, &maxpoint);
        break;
    case TB_MSG_HEARTBEAT:
        rc = s_read_heartbeat(&r, &msg->hb);
        break;
    default:
        rc = s_read_eos(&r, &msg->eos);
        break;
    }
    if (rc != 0) {
        return rc;
    }
    if (n > S_ENVELOPE_LEN) {
        msg->hdr.run = tb_mp_read_uint(&r);
    }
    uint32_t next = S_ENVELOPE_OUT;
    if (n >= S_ENVELOPE_PTS && type == TB_MSG_BATCH && r.error == 0) {
        rc = s_read_points(&r, &msg->points);
        if (rc != 0) {
            return rc;
        }
        next = S_ENVELOPE_PTS;
    }
    /* Elements a later revision appends to the envelope are ignored. */
    for (uint32_t i = next; i < n; i++) {
        tb_mp_skip(&r);
    }
    if (r.error) {
        return r.error;
    }
    if (maxpoint > msg->points.n) {
        return TB_EPROTO; /* a summary names a point the batch does not carry */
    }
    if (tb_mp_remaining(&r) != 0) {
        return TB_EPROTO; /* trailing bytes after the body */
    }
    return 0;
}

/* --------------------------------------------------------------- offers */

#define S_OFFER_LEN       7 /* elements of an offer envelope (more are skipped) */
#define S_OFFER_ENTRY_LEN 3 /* elements of one offered stream (more are skipped) */

static int s_kind_valid_n(const char *s, size_t n)
{
    if (n == 0 || n > TB_KIND_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_')) {
            return 0;
        }
    }
    return 1;
}

int tb_wire_encode_offer(const tb_wire_offer_t *o, uint8_t *out, size_t cap, size_t *len)
{
    size_t np = s_field_len(o->probe_id, sizeof o->probe_id);
    if (!s_name_valid_n(o->probe_id, np) || o->ttl_ms == 0 || o->ttl_ms > TB_OFFER_TTL_MAX) {
        return TB_EINVAL;
    }
    if (o->n > TB_WIRE_MAX_OFFERS) {
        return TB_ELIMIT;
    }
    for (size_t i = 0; i < o->n; i++) {
        const tb_offer_entry_t *e = &o->entries[i];
        if (!s_name_valid_n(e->stream, s_field_len(e->stream, sizeof e->stream)) ||
            !s_kind_valid_n(e->kind, s_field_len(e->kind, sizeof e->kind)) ||
            e->state >= TB_SRC_STATE_COUNT) {
            return TB_EINVAL;
        }
    }
    tb_mp_buf_t b;
    msgpack_packer pk;
    tb_mp_buf_init(&b, &pk, out, cap);
    msgpack_pack_array(&pk, S_OFFER_LEN);
    msgpack_pack_uint8(&pk, TB_WIRE_VERSION);
    msgpack_pack_uint8(&pk, TB_MSG_OFFER);
    s_pack_strn(&pk, o->probe_id, np);
    msgpack_pack_uint64(&pk, o->boot_ns);
    msgpack_pack_uint64(&pk, o->seq);
    msgpack_pack_uint32(&pk, o->ttl_ms);
    msgpack_pack_array(&pk, o->n);
    for (size_t i = 0; i < o->n; i++) {
        const tb_offer_entry_t *e = &o->entries[i];
        msgpack_pack_array(&pk, S_OFFER_ENTRY_LEN);
        s_pack_strn(&pk, e->stream, strlen(e->stream));
        s_pack_strn(&pk, e->kind, strlen(e->kind));
        msgpack_pack_uint8(&pk, e->state);
    }
    return s_finish(&b, len);
}

static int s_read_offer_entry(tb_mp_reader_t *r, tb_offer_entry_t *e)
{
    uint32_t n = tb_mp_read_array(r);
    if (r->error) {
        return r->error;
    }
    if (n < S_OFFER_ENTRY_LEN) {
        return TB_EPROTO;
    }
    int rc = s_read_name(r, e->stream);
    if (rc != 0) {
        return rc;
    }
    uint32_t klen;
    const char *k = tb_mp_read_str(r, &klen);
    if (r->error) {
        return r->error;
    }
    if (!s_kind_valid_n(k, klen)) {
        return TB_EPROTO;
    }
    memcpy(e->kind, k, klen);
    e->kind[klen] = '\0';
    uint64_t state = tb_mp_read_uint(r);
    if (r->error) {
        return r->error;
    }
    if (state >= TB_SRC_STATE_COUNT) {
        return TB_EPROTO;
    }
    e->state = (uint8_t)state;
    for (uint32_t i = S_OFFER_ENTRY_LEN; i < n; i++) {
        tb_mp_skip(r);
    }
    return r->error;
}

int tb_wire_decode_offer(const uint8_t *buf, size_t len, tb_wire_offer_t *o)
{
    tb_mp_reader_t r;
    if (len > TB_WIRE_MAX_MSG) {
        return TB_ELIMIT;
    }
    memset(o, 0, offsetof(tb_wire_offer_t, entries));
    tb_mp_reader_init(&r, buf, len);
    /* Version first, as for every message (section 4). */
    uint32_t n;
    int rc = s_read_prelude(&r, S_OFFER_LEN, &n);
    if (rc != 0) {
        return rc;
    }
    uint64_t type = tb_mp_read_uint(&r);
    if (r.error) {
        return r.error;
    }
    if (type != TB_MSG_OFFER) {
        return TB_EPROTO;
    }
    rc = s_read_name(&r, o->probe_id);
    if (rc != 0) {
        return rc;
    }
    o->boot_ns = tb_mp_read_uint(&r);
    o->seq = tb_mp_read_uint(&r);
    uint64_t ttl = tb_mp_read_uint(&r);
    uint32_t count = tb_mp_read_array(&r);
    if (r.error) {
        return r.error;
    }
    if (ttl == 0 || ttl > TB_OFFER_TTL_MAX) {
        return TB_EPROTO;
    }
    if (count > TB_WIRE_MAX_OFFERS) {
        return TB_ELIMIT;
    }
    o->ttl_ms = (uint32_t)ttl;
    for (uint32_t i = 0; i < count; i++) {
        rc = s_read_offer_entry(&r, &o->entries[i]);
        if (rc != 0) {
            return rc;
        }
    }
    o->n = count;
    for (uint32_t i = S_OFFER_LEN; i < n; i++) {
        tb_mp_skip(&r);
    }
    if (r.error) {
        return r.error;
    }
    return tb_mp_remaining(&r) != 0 ? TB_EPROTO : 0;
}
