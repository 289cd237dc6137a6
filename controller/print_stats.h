/* print_stats — one stream's statistics as text for tapbusctl: stats (totals,
 * smallest/largest/last packet, loss, protocols, measurement points, top
 * flows and hosts) and the live view of top. Data borrowed, printed from a
 * printable copy (print.h). */
#ifndef TB_PRINT_STATS_H
#define TB_PRINT_STATS_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

void tb_print_stats(FILE *out, const json_t *data);

/* The live view of one stream (tapbusctl top): rates measured by the caller
 * between two stats replies (negative: not yet known), protocol mix, the
 * first n top flows and hosts, loss. */
void tb_print_top(FILE *out, const json_t *stats, double pps, double bps, size_t n);

#endif
