/* report — the collector's state as control replies show it
 * (docs/control-protocol.md): status, streams, and one stream's stats. Each
 * function packs a whole successful reply (tb_ctl_reply_begin, then the
 * data) from the collector's state, which it only reads. Called from the
 * collector's loop (control.c). */
#ifndef TB_COLLECTOR_REPORT_H
#define TB_COLLECTOR_REPORT_H

#include "collector_int.h"

#include <msgpack.h>

/* status: the database's health, the collector's counters, every stream
 * with its probes and loss, the limits. */
void tb_report_status(tb_collector_t *c, msgpack_packer *pk);

/* streams: every stream a probe offers, with this collector's state of it,
 * then the streams it measures that no probe offers; the offer counters. */
void tb_report_streams(tb_collector_t *c, msgpack_packer *pk);

/* stats: one stream's statistics (st borrowed): totals, extremes, protocol
 * classes, top flows and hosts, loss, and the breakdown by measurement
 * point when its sources name points. */
void tb_report_stats(tb_collector_t *c, msgpack_packer *pk, const tb_stream_t *st);

#endif
