/* series — per-second, per-protocol-class packet and byte counts of one
 * stream, bucketed by the packets' own capture time.
 *
 * Packets may arrive a little out of order (several probes, several
 * interfaces), so a second stays open until the stream's newest capture time
 * is `lateness` seconds past it; then it is closed and handed to the emit
 * callback, oldest first, exactly once. A packet older than every open second
 * is counted as late and left out of the series (it is still in the stream's
 * totals). Memory: lateness + 1 buckets, whatever the traffic. Replaying last
 * week's capture writes last week's seconds. Not thread-safe. */
#ifndef TB_SERIES_H
#define TB_SERIES_H

#include "stats.h"
#include "tb_summary.h"

#include <stdint.h>

#define TB_SERIES_MAX_LATENESS 3600

typedef struct {
    uint64_t sec; /* capture time, seconds since the epoch */
    tb_counter_t proto[TB_PC_COUNT];
} tb_second_t;

/* Called with each closed second (borrowed for the call). */
typedef void (*tb_series_emit_fn)(void *arg, const tb_second_t *second);

typedef struct tb_series tb_series_t;

/* lateness_s: 0..TB_SERIES_MAX_LATENESS. NULL on bad arguments or no memory. */
tb_series_t *tb_series_new(uint32_t lateness_s, tb_series_emit_fn emit, void *arg);
void tb_series_destroy(tb_series_t **p);

/* Account one packet. */
void tb_series_add(tb_series_t *s, const tb_summary_t *pkt);

/* Close and emit every open second, oldest first (end of a measurement). */
void tb_series_flush(tb_series_t *s);

/* Emit every open second, oldest first, and keep it open: its final counts
 * are emitted again when it closes (a measurement stopped that may go on). */
void tb_series_emit_open(tb_series_t *s);

/* Packets that arrived after their second was closed. */
uint64_t tb_series_late(const tb_series_t *s);

#endif
