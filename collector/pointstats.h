/* pointstats — a stream's packets and bytes by measurement point and
 * capture interface (DPMI MP/CI, tb_point.h).
 *
 * Batches carry their own point tables (indexes are the sending source's);
 * each batch's table is mapped to this table's slots once, on first use, so
 * a summary costs an array lookup. The table keeps TB_POINTS_MAX pairs, the
 * first met; packets of further pairs are counted together as overflow, and
 * packets that name no point as unnamed, so that the entries, the overflow
 * and the unnamed add up to the stream's totals. Plain data (zeroed: empty);
 * not thread-safe, owned by the collector's loop (inside tb_stats_t). */
#ifndef TB_POINTSTATS_H
#define TB_POINTSTATS_H

#include "tb_mp.h"
#include "tb_point.h"
#include "tb_summary.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char mp[TB_POINT_NAME_MAX + 1];
    char ci[TB_POINT_NAME_MAX + 1];
    uint64_t packets;
    uint64_t bytes; /* on the wire */
} tb_pointstat_t;

typedef struct {
    tb_pointstat_t e[TB_POINTS_MAX];
    size_t n;
    uint64_t overflow_packets; /* of pairs beyond the table */
    uint64_t overflow_bytes;
    uint64_t unnamed_packets; /* of summaries that name no point */
    uint64_t unnamed_bytes;
} tb_pointstats_t;

/* Account n summaries (borrowed) whose points index t (the batch's table,
 * borrowed; every index was checked to be within it when it was decoded;
 * one beyond it is counted as unnamed). */
void tb_pointstats_add(tb_pointstats_t *ps, const tb_point_table_t *t, const tb_summary_t *items,
                       size_t n);

/* The slot of (mp, ci) (NUL-terminated, cut to TB_POINT_NAME_MAX), added
 * when new; -1 when the table is full. */
int tb_pointstats_slot(tb_pointstats_t *ps, const char *mp, const char *ci);

/* 1 when the stream has met any point (entries or overflow): only then is
 * the breakdown worth showing. */
int tb_pointstats_any(const tb_pointstats_t *ps);

/* The entries' indexes into order[ps->n], sorted by MP then CI. */
void tb_pointstats_order(const tb_pointstats_t *ps, size_t *order);

/* A snapshot of the table (--state-dir): one msgpack map of the entries,
 * the overflow and the unnamed. */
void tb_pointstats_pack(const tb_pointstats_t *ps, msgpack_packer *pk);

/* Read back what tb_pointstats_pack wrote, adding to ps (zeroed: empty);
 * entries beyond this table's size count as overflow. Keys not known are
 * skipped; anything malformed sets r->error. */
void tb_pointstats_unpack(tb_pointstats_t *ps, tb_mp_reader_t *r);

#endif
