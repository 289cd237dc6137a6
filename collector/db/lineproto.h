/* lineproto — InfluxDB line protocol, written into a fixed buffer.
 *
 *   measurement[,tag=value...] field=value[,field=value...] timestamp\n
 *
 * A pure formatter (no I/O, no allocation): the database writer batches its
 * output. Escaping follows the line protocol reference: measurement names
 * escape commas and spaces; tag keys, tag values and field keys escape
 * commas, equals signs and spaces; string field values escape double quotes
 * and backslashes. Newlines cannot be represented and become spaces; nor
 * can a backslash at the end of a name or before a comma, equals sign, space
 * or double quote in one (InfluxDB 1.x reads it as an escape), which becomes
 * '/'. Tags with an empty key or value and fields with an empty key are
 * omitted (InfluxDB refuses them), and a point without a measurement name
 * is refused; non-finite floats are omitted (it cannot store them). A point that does not fit is rolled back
 * whole, so the buffer only ever holds complete lines. */
#ifndef TB_LINEPROTO_H
#define TB_LINEPROTO_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *data; /* borrowed storage */
    size_t len; /* bytes of complete lines */
    size_t cap;
    size_t pos;     /* write position inside the open point */
    int state;      /* 0 idle, 1 tags, 2 fields */
    int overflow;   /* the open point did not fit */
    size_t nfields; /* fields in the open point */
    size_t points;  /* complete points in the buffer */
} tb_lp_t;

/* Use `cap` bytes at `storage` (caller-owned) for lines. */
void tb_lp_init(tb_lp_t *lp, char *storage, size_t cap);

/* Forget every line (after the batch was handed on). */
void tb_lp_clear(tb_lp_t *lp);

/* Open a point. Any point left open is discarded. */
void tb_lp_begin(tb_lp_t *lp, const char *measurement);

/* Add a tag (before any field); an empty value omits the tag. */
void tb_lp_tag(tb_lp_t *lp, const char *key, const char *value);

/* Add fields. Integers are written with InfluxDB's "i" suffix; an unsigned
 * value above INT64_MAX is written as a float. */
void tb_lp_field_i64(tb_lp_t *lp, const char *key, int64_t v);
void tb_lp_field_u64(tb_lp_t *lp, const char *key, uint64_t v);
void tb_lp_field_f64(tb_lp_t *lp, const char *key, double v);
void tb_lp_field_str(tb_lp_t *lp, const char *key, const char *v);
void tb_lp_field_bool(tb_lp_t *lp, const char *key, int v);

/* Close the point with a timestamp in ns. Returns 0 when the line was added,
 * TB_ELIMIT when it did not fit (the buffer is as before) or TB_EINVAL when
 * it has no field (InfluxDB needs one). */
int tb_lp_end(tb_lp_t *lp, uint64_t ts_ns);

#endif
