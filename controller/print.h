/* print — human-readable tables for tapbusctl's replies. Every function takes
 * the reply's data (borrowed jansson value) and writes to out. Missing keys
 * print as empty or zero: the collector may be older or newer. Text in the
 * data comes from the network: the tables show it with control characters
 * escaped (tb_print_safe). */
#ifndef TB_PRINT_H
#define TB_PRINT_H

#include <jansson.h>
#include <stdio.h>

void tb_print_names(FILE *out, const char *verb, const json_t *list, const json_t *where);
void tb_print_status(FILE *out, const json_t *data);
void tb_print_stats(FILE *out, const json_t *data);

/* The probes of a status reply: {"probes": [{id, streams, last_heard_s,
 * silent, received, capture_drops}]}, one entry per probe id, its streams
 * in order. Returns a new reference, NULL when out of memory. */
json_t *tb_status_probes(const json_t *status);
void tb_print_probes(FILE *out, const json_t *data);

/* The streams probes offer (fanout.h, streams): stream, probe, kind, source
 * state, who measures it; then each collector's offer counters. */
void tb_print_streams(FILE *out, const json_t *data);

/* The live view of one stream (tapbusctl top): rates measured by the caller
 * between two stats replies (negative: not yet known), protocol mix, the
 * first n top flows and hosts, loss. */
void tb_print_top(FILE *out, const json_t *stats, double pps, double bps, size_t n);

/* An aligned table: a header of column names and one line per row; null
 * values print as "-". */
void tb_print_table(FILE *out, const json_t *columns, const json_t *rows);

/* A copy of v (new reference; NULL when out of memory) whose strings and
 * object keys are printable: control characters (C0, DEL, C1) and
 * bidirectional overrides shown as \xNN / \uNNNN escapes. */
json_t *tb_print_safe(const json_t *v);

/* src[0..len) made printable like tb_print_safe into dst[size] (cut at a
 * character boundary, NUL-terminated); returns the length written. */
size_t tb_print_text(char *dst, size_t size, const char *src, size_t len);

#endif
