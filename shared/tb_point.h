/* tb_point — measurement points (MP) and capture interfaces (CI).
 *
 * DPMI records name the MP that captured a packet and the CI it came in on
 * (8 bytes each, NUL padded). A source that knows them keeps a small table
 * of the (MP, CI) pairs it has met and marks each packet summary with the
 * pair's 1-based index in that table (tb_summary_t.point; 0: none). The
 * table is append-only while the source is open, so an index, once given,
 * keeps its meaning; the wire format carries the table with each batch that
 * uses it (docs/wire-format.md section 5.1).
 *
 * Plain data, no allocation; not thread-safe (one owner). */
#ifndef TB_POINT_H
#define TB_POINT_H

#include <stddef.h>
#include <stdint.h>

#define TB_POINT_NAME_MAX 8  /* bytes of an MP or CI name */
#define TB_POINTS_MAX     64 /* pairs a table holds */

typedef struct {
    char mp[TB_POINT_NAME_MAX + 1]; /* NUL-terminated, may be "" */
    char ci[TB_POINT_NAME_MAX + 1];
} tb_point_t;

typedef struct {
    tb_point_t p[TB_POINTS_MAX]; /* index i + 1 names p[i] */
    size_t n;                    /* pairs used */
    uint64_t overflow;           /* lookups of new pairs refused: the table was full */
} tb_point_table_t;

/* The 1-based index of (mp, ci) in t, added when new. Names are
 * NUL-terminated (borrowed); longer ones are cut to TB_POINT_NAME_MAX bytes.
 * Returns 0 (and counts t->overflow) when the pair is new and the table
 * full. */
uint16_t tb_point_table_intern(tb_point_table_t *t, const char *mp, const char *ci);

/* Empty the table (its overflow count too). */
void tb_point_table_reset(tb_point_table_t *t);

#endif
