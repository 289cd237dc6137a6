/* tb_wire — the tapbus bus format, version 1 (docs/wire-format.md).
 *
 * A data message is two ZeroMQ frames: the topic (the stream name followed by
 * one NUL byte, so that stream "a" never matches "ab") and a msgpack body:
 *
 *   [version, type, probe_id, boot_ns, stream, seq, payload, run]
 *
 * type BATCH carries an array of packet summaries, HEARTBEAT the source's
 * counters, EOS the end of a finite source. seq counts every message of one
 * (probe, boot, stream), starting at 0, so a receiver counts lost messages as
 * sequence gaps. run numbers the runs of a source within one probe boot (a
 * finite source is read again from its start each time its stream gains a
 * new subscriber), so a receiver tells a new run from the rest of an old
 * one. Encoding writes into caller-provided buffers and never
 * allocates; decoding validates the whole message before returning anything
 * and never trusts a count or a length it reads. */
#ifndef TB_WIRE_H
#define TB_WIRE_H

#include "tb_point.h"
#include "tb_summary.h"

#include <stddef.h>
#include <stdint.h>

#define TB_WIRE_VERSION           1
#define TB_WIRE_MAX_MSG           (8u * 1024u * 1024u) /* largest body accepted */
#define TB_WIRE_MAX_BATCH         65536u               /* most summaries in one batch */
#define TB_WIRE_SUMMARY_MAX_BYTES 80u                  /* upper bound of one packed summary */
#define TB_WIRE_HEADER_MAX_BYTES  256u                 /* upper bound of the envelope */
#define TB_WIRE_POINTS_MAX_BYTES  1280u                /* upper bound of a batch's point table */
#define TB_STREAM_MAX             64                   /* bytes in a stream name */
#define TB_PROBE_ID_MAX           64                   /* bytes in a probe id */
#define TB_TOPIC_MAX              (TB_STREAM_MAX + 1)
#define TB_DETAIL_MAX             160 /* bytes of a heartbeat's state detail */

typedef enum {
    TB_MSG_BATCH = 1,
    TB_MSG_HEARTBEAT = 2,
    TB_MSG_EOS = 3,
    TB_MSG_OFFER = 4 /* only on the offer topic, see tb_wire_decode_offer */
} tb_msg_type_t;

/* Source states reported in heartbeats. */
typedef enum {
    TB_SRC_WAITING = 0,  /* waiting for a subscriber */
    TB_SRC_RUNNING = 1,  /* capturing or reading */
    TB_SRC_FINISHED = 2, /* finite source read to its end */
    TB_SRC_ERROR = 3,    /* failed; detail says why */
    TB_SRC_STATE_COUNT
} tb_src_state_t;

typedef struct {
    uint8_t type;                       /* tb_msg_type_t */
    char probe_id[TB_PROBE_ID_MAX + 1]; /* NUL-terminated */
    uint64_t boot_ns;                   /* probe start time: a new value = restart */
    char stream[TB_STREAM_MAX + 1];     /* NUL-terminated */
    uint64_t seq;
    uint64_t run; /* run of the source within this boot; 0 when absent */
} tb_wire_header_t;

typedef struct {
    uint8_t state;                  /* tb_src_state_t */
    uint64_t pcap_recv;             /* pcap_stats ps_recv */
    uint64_t pcap_drop;             /* pcap_stats ps_drop */
    uint64_t pcap_ifdrop;           /* pcap_stats ps_ifdrop */
    uint64_t packets;               /* packets summarised since the source started */
    uint64_t batches;               /* batches published */
    uint64_t bus_drops;             /* batches dropped at a full bus */
    uint64_t decode_errors;         /* packets truncated or malformed */
    uint64_t sampled_out;           /* packets passed over by 1-in-N sampling */
    uint64_t files_skipped;         /* files skipped, abandoned or cut short */
    uint64_t frames_lost;           /* DPMI measurement frames missing from the sequence */
    uint64_t frames_bad;            /* DPMI measurement frames dropped as malformed */
    char detail[TB_DETAIL_MAX + 1]; /* e.g. an error message; may be "" */
} tb_heartbeat_t;

typedef struct {
    uint64_t packets;   /* packets published on this stream in this run */
    uint64_t batches;   /* batches published on this stream in this run */
    uint64_t first_seq; /* seq of the run's first message */
    uint8_t error;      /* 1 if the source ended on an error, 0 on a clean end */
    char detail[TB_DETAIL_MAX + 1];
} tb_eos_t;

/* A decoded message. For BATCH, items points at the caller's array, and
 * each summary's point (when not 0) indexes points (1-based): the MP/CI
 * table the batch carried, checked to hold every index used. */
typedef struct {
    tb_wire_header_t hdr;
    tb_summary_t *items; /* borrowed: the array passed to tb_wire_decode */
    size_t count;        /* summaries in items */
    tb_point_table_t points;
    tb_heartbeat_t hb;
    tb_eos_t eos;
} tb_wire_msg_t;

/* Stream names: 1..TB_STREAM_MAX bytes of [A-Za-z0-9._:/@+-]. Probe ids use the
 * same alphabet. Returns 0 or TB_EINVAL. */
int tb_wire_name_valid(const char *name);

/* Topic frame for a stream: the name plus one NUL byte. Writes at most
 * TB_TOPIC_MAX bytes into topic; returns the topic length or TB_EINVAL. */
int tb_wire_topic(const char *stream, uint8_t *topic, size_t size);

/* Encoders: write one complete body into out (capacity cap) and store its size
 * in *len. Return 0, TB_ELIMIT if it does not fit, or TB_EINVAL for content
 * every receiver would refuse (a bad name, family, VLAN id, state, or an
 * unterminated string). A batch of n summaries
 * always fits in TB_WIRE_HEADER_MAX_BYTES + n * TB_WIRE_SUMMARY_MAX_BYTES,
 * plus TB_WIRE_POINTS_MAX_BYTES when it names points. */
int tb_wire_encode_batch(const tb_wire_header_t *h, const tb_summary_t *items, size_t n,
                         uint8_t *out, size_t cap, size_t *len);

/* A batch whose summaries may name points (tb_summary_t.point, 1-based
 * indexes into `points`, borrowed; NULL: none may). The batch carries the
 * table's first entries up to the highest index it uses (none when no
 * summary names a point: the bytes are then those of
 * tb_wire_encode_batch). A point beyond the table, or a table of names
 * longer than TB_POINT_NAME_MAX, is TB_EINVAL. */
int tb_wire_encode_batch_points(const tb_wire_header_t *h, const tb_summary_t *items, size_t n,
                                const tb_point_table_t *points, uint8_t *out, size_t cap,
                                size_t *len);
int tb_wire_encode_heartbeat(const tb_wire_header_t *h, const tb_heartbeat_t *hb, uint8_t *out,
                             size_t cap, size_t *len);
int tb_wire_encode_eos(const tb_wire_header_t *h, const tb_eos_t *eos, uint8_t *out, size_t cap,
                       size_t *len);

/* Decode and validate one body. Summaries of a batch go into items (capacity
 * max_items, at most TB_WIRE_MAX_BATCH are ever accepted). On any error the
 * message must be dropped as a whole: the return value names the reason
 * (TB_EVERSION, TB_EPROTO, TB_ETRUNC, TB_ELIMIT) and *msg is unspecified. */
int tb_wire_decode(const uint8_t *buf, size_t len, tb_wire_msg_t *msg, tb_summary_t *items,
                   size_t max_items);

/* Name of a message type / source state for logs and JSON. */
const char *tb_wire_type_name(int type);
const char *tb_src_state_name(int state);

/* Stream offers (docs/wire-format.md section 5.5). A probe announces the
 * streams it offers in one OFFER message on a reserved topic that no stream
 * name can produce (a stream topic starts with a name character; this one
 * starts with '!'): periodically, and at once when somebody subscribes to
 * that topic. An offer lists every stream of the probe and holds for ttl_ms;
 * a receiver forgets what is not announced again in that time. */
#define TB_OFFER_TOPIC     "!offer" /* the topic frame is these bytes and one NUL */
#define TB_OFFER_TOPIC_LEN 7        /* bytes of the topic frame, the NUL included */
#define TB_WIRE_MAX_OFFERS 256      /* most streams in one offer */
#define TB_KIND_MAX        16       /* bytes of a source kind ("file", "iface", "dir") */
#define TB_OFFER_TTL_MAX   3600000u /* longest ttl_ms accepted */

typedef struct {
    char stream[TB_STREAM_MAX + 1]; /* a valid name */
    char kind[TB_KIND_MAX + 1];     /* 1..TB_KIND_MAX bytes of [a-z0-9_] */
    uint8_t state;                  /* tb_src_state_t of the source now */
} tb_offer_entry_t;

typedef struct {
    char probe_id[TB_PROBE_ID_MAX + 1];
    uint64_t boot_ns;
    uint64_t seq;    /* counts the probe's offers within one boot */
    uint32_t ttl_ms; /* 1..TB_OFFER_TTL_MAX: how long the offer holds */
    size_t n;        /* entries used, at most TB_WIRE_MAX_OFFERS */
    tb_offer_entry_t entries[TB_WIRE_MAX_OFFERS];
} tb_wire_offer_t;

/* Encode an offer body into out (capacity cap), its size in *len. Returns 0,
 * TB_ELIMIT (does not fit, or more than TB_WIRE_MAX_OFFERS entries) or
 * TB_EINVAL (a bad name, kind, state or ttl). The topic frame is
 * TB_OFFER_TOPIC with its NUL (TB_OFFER_TOPIC_LEN bytes). */
int tb_wire_encode_offer(const tb_wire_offer_t *o, uint8_t *out, size_t cap, size_t *len);

/* Decode and validate an offer body (the message's topic was the offer
 * topic). Returns 0 or, with *o unspecified, TB_EVERSION, TB_EPROTO,
 * TB_ETRUNC or TB_ELIMIT (more than TB_WIRE_MAX_OFFERS entries). */
int tb_wire_decode_offer(const uint8_t *buf, size_t len, tb_wire_offer_t *o);

#endif
