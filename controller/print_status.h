/* print_status — the collector's state as tables for tapbusctl: status
 * (each collector's version, bus, requests, security, state directory,
 * endpoints and database; every stream; every probe on each), probes and
 * streams. Data borrowed, printed from a printable copy (print.h). */
#ifndef TB_PRINT_STATUS_H
#define TB_PRINT_STATUS_H

#include <jansson.h>
#include <stdio.h>

void tb_print_status(FILE *out, const json_t *data);

/* The probes of a status reply: {"probes": [{id, streams, last_heard_s,
 * silent, received, capture_drops}]}, one entry per probe id, its streams
 * in order. Returns a new reference, NULL when out of memory. */
json_t *tb_status_probes(const json_t *status);
void tb_print_probes(FILE *out, const json_t *data);

/* The streams probes offer (fanout.h, streams): stream, probe, kind, source
 * state, who measures it; then each collector's offer counters. */
void tb_print_streams(FILE *out, const json_t *data);

#endif
