/* tb_wire — see tb_wire.h; the format is specified in docs/wire-format.md.
 * Envelopes, heartbeats, end-of-stream and offers here; batches of
 * summaries in tb_wire_batch.c.
 *
 * Encoding packs straight into the caller's buffer with msgpack-c's inline
 * packers; a write past the end sets the buffer's overflow flag, checked once
 * at the end. Decoding reads through tb_mp (bounds-checked, sticky error) and
 * validates every field before the message is handed back. Stateless and
 * thread-safe. */
#include "tb_wire.h"
#include "tb_wire_int.h"

#include "tb_err.h"
#include "tb_mp.h"

#include <stddef.h>
#include <string.h>

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

void tb_wire_pack_strn(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* The envelope up to (not including) the payload. Pack results are not
 * checked one by one: the buffer's sticky overflow flag says it all. */
int tb_wire_pack_header(msgpack_packer *pk, const tb_wire_header_t *h, int type)
{
    size_t np = s_field_len(h->probe_id, sizeof h->probe_id);
    size_t ns = s_field_len(h->stream, sizeof h->stream);
    if (!s_name_valid_n(h->probe_id, np) || !s_name_valid_n(h->stream, ns)) {
        return TB_EINVAL;
    }
    msgpack_pack_array(pk, S_ENVELOPE_OUT);
    msgpack_pack_uint8(pk, TB_WIRE_VERSION);
    msgpack_pack_uint8(pk, (uint8_t)type);
    tb_wire_pack_strn(pk, h->probe_id, np);
    msgpack_pack_uint64(pk, h->boot_ns);
    tb_wire_pack_strn(pk, h->stream, ns);
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
    int rc = tb_wire_pack_header(&pk, h, TB_MSG_HEARTBEAT);
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
    tb_wire_pack_strn(&pk, hb->detail, nd);
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
    int rc = tb_wire_pack_header(&pk, h, TB_MSG_EOS);
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
    tb_wire_pack_strn(&pk, eos->detail, nd);
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
        rc = tb_wire_read_batch(&r, msg, items, max_items, &maxpoint);
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
        rc = tb_wire_read_points(&r, &msg->points);
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
    tb_wire_pack_strn(&pk, o->probe_id, np);
    msgpack_pack_uint64(&pk, o->boot_ns);
    msgpack_pack_uint64(&pk, o->seq);
    msgpack_pack_uint32(&pk, o->ttl_ms);
    msgpack_pack_array(&pk, o->n);
    for (size_t i = 0; i < o->n; i++) {
        const tb_offer_entry_t *e = &o->entries[i];
        msgpack_pack_array(&pk, S_OFFER_ENTRY_LEN);
        tb_wire_pack_strn(&pk, e->stream, strlen(e->stream));
        tb_wire_pack_strn(&pk, e->kind, strlen(e->kind));
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
