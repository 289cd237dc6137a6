/* print — human-readable tables for tapbusctl's replies, and the escaping
 * they all rely on. Every function takes the reply's data (borrowed jansson
 * value) and writes to out. Missing keys print as empty or zero: the
 * collector may be older or newer (jfield.h). Text in the data comes from
 * the network: the tables show it with control characters escaped
 * (tb_print_safe).
 *
 * The collector's state (status, probes, streams) is printed by
 * print_status.h, a stream's statistics (stats, top) by print_stats.h. */
#ifndef TB_PRINT_H
#define TB_PRINT_H

#include <jansson.h>
#include <stdio.h>

/* "VERB: name name ..." (or "(none)"), each name followed by its collector
 * in parentheses when where maps names to collectors (start, stop,
 * forget with several collectors). */
void tb_print_names(FILE *out, const char *verb, const json_t *list, const json_t *where);

/* An aligned table: a header of column names and one line per row; null
 * values print as "-". Rows of one time with a "rank" column (top flows and
 * hosts from the database) are put in rank order. */
void tb_print_table(FILE *out, const json_t *columns, const json_t *rows);

/* A copy of v (new reference; NULL when out of memory) whose strings and
 * object keys are printable: control characters (C0, DEL, C1) and
 * bidirectional overrides shown as \xNN / \uNNNN escapes. */
json_t *tb_print_safe(const json_t *v);

/* src[0..len) made printable like tb_print_safe into dst[size] (cut at a
 * character boundary, NUL-terminated); returns the length written. */
size_t tb_print_text(char *dst, size_t size, const char *src, size_t len);

#endif
