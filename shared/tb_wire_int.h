/* tb_wire_int — what the wire codec's files share (tb_wire.c: envelopes,
 * heartbeats, end-of-stream, offers; tb_wire_batch.c: batches of summaries).
 * Internal to libtapbus. */
#ifndef TB_WIRE_INT_H
#define TB_WIRE_INT_H

#include "tb_mp.h"
#include "tb_wire.h"

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

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

/* A string of n bytes. */
void tb_wire_pack_strn(msgpack_packer *pk, const char *s, size_t n);

/* The envelope up to (not including) the payload; TB_EINVAL for a bad
 * probe id or stream name. */
int tb_wire_pack_header(msgpack_packer *pk, const tb_wire_header_t *h, int type);

/* A batch's payload (the array of summaries) into items; *maxpoint gets the
 * highest point index named. Returns 0 or a tb_err_t. */
int tb_wire_read_batch(tb_mp_reader_t *r, tb_wire_msg_t *msg, tb_summary_t *items, size_t max_items,
                       uint16_t *maxpoint);

/* A batch's point table (its 9th envelope element). */
int tb_wire_read_points(tb_mp_reader_t *r, tb_point_table_t *t);

#endif
