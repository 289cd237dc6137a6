/* offers — the streams probes announce (OFFER messages, docs/wire-format.md
 * section 5.5), kept in a bounded table.
 *
 * At most max_probes probes and max_streams offered streams in all, each
 * probe with at most TB_WIRE_MAX_OFFERS: memory is fixed when the table is
 * made, whatever peers send. An offer replaces everything its probe offered
 * before; a probe not heard again within its offer's ttl (clamped to
 * TB_OFFERS_TTL_MIN_MS..TB_OFFERS_TTL_MAX_MS) is forgotten with its streams.
 * A probe beyond the table, or a stream beyond it, is refused and counted.
 * Single-threaded: the collector's loop owns it. */
#ifndef TB_OFFERS_H
#define TB_OFFERS_H

#include "tb_wire.h"

#include <stddef.h>
#include <stdint.h>

#define TB_OFFERS_TTL_MIN_MS 1000u
#define TB_OFFERS_TTL_MAX_MS 600000u

typedef struct tb_offers tb_offers_t;

typedef struct {
    uint64_t received;        /* offers applied */
    uint64_t bad;             /* offers that failed validation */
    uint64_t refused_probes;  /* offers of probes beyond max_probes */
    uint64_t refused_streams; /* offered streams beyond max_streams */
    uint64_t expired;         /* probes forgotten, not announced again in time */
    size_t probes;            /* probes in the table now */
    size_t streams;           /* offered streams in the table now */
    size_t max_probes, max_streams;
} tb_offers_counters_t;

/* One offered stream, borrowed from the table until its next change. */
typedef struct {
    const char *probe_id;
    const char *stream;
    const char *kind;
    int state;    /* tb_src_state_t the probe announced */
    double age_s; /* since the probe's latest offer */
} tb_offer_view_t;

/* A table of the given bounds (each at least 1); NULL when out of memory. */
tb_offers_t *tb_offers_new(size_t max_probes, size_t max_streams);

/* Accepts NULL, sets *p = NULL. */
void tb_offers_destroy(tb_offers_t **p);

/* Apply a decoded offer (borrowed) at monotonic time now_ns. Returns 0, or
 * TB_ELIMIT when the probe or some of its streams found no room (counted). */
int tb_offers_apply(tb_offers_t *o, const tb_wire_offer_t *m, uint64_t now_ns);

/* A message from probe_id arrived at now_ns: its offer, if it has one, is
 * still good (a probe's offers may wait behind its data on a full bus). */
void tb_offers_touch(tb_offers_t *o, const char *probe_id, uint64_t now_ns);

/* Count an offer that failed validation. */
void tb_offers_count_bad(tb_offers_t *o);

/* Forget probes whose offers are older than their ttl. */
void tb_offers_expire(tb_offers_t *o, uint64_t now_ns);

/* The i-th offered stream (0 <= i, probe by probe in the table's order).
 * Returns 1 with *v filled, 0 past the end. */
int tb_offers_get(const tb_offers_t *o, size_t i, uint64_t now_ns, tb_offer_view_t *v);

/* The first probe offering stream, or NULL when none does. */
const char *tb_offers_find(const tb_offers_t *o, const char *stream);

/* The source kind that probe offers stream as ("iface", "dir", ...), or NULL. */
const char *tb_offers_kind(const tb_offers_t *o, const char *stream);

void tb_offers_counters(const tb_offers_t *o, tb_offers_counters_t *out);

#endif
