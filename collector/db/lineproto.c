/* lineproto — see lineproto.h. */
#include "lineproto.h"

#include "tb_err.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

enum { IDLE = 0, TAGS = 1, FIELDS = 2 };

void tb_lp_init(tb_lp_t *lp, char *storage, size_t cap)
{
    memset(lp, 0, sizeof *lp);
    lp->data = storage;
    lp->cap = cap;
}

void tb_lp_clear(tb_lp_t *lp)
{
    lp->len = 0;
    lp->pos = 0;
    lp->state = IDLE;
    lp->overflow = 0;
    lp->nfields = 0;
    lp->points = 0;
}

static void s_put(tb_lp_t *lp, const char *s, size_t n)
{
    if (lp->overflow || n > lp->cap - lp->pos) {
        lp->overflow = 1;
        return;
    }
    memcpy(lp->data + lp->pos, s, n);
    lp->pos += n;
}

static void s_putc(tb_lp_t *lp, char c)
{
    s_put(lp, &c, 1);
}

/* Write s with a backslash before every character in `special`; newlines
 * and carriage returns, which no element can hold, become spaces (escaped
 * when a space is special).
 *
 * Names (measurements, tag keys and values, field keys) cannot escape a
 * backslash: InfluxDB 1.x keeps "\\" as two characters, and reads a backslash
 * before a comma, equals sign, space or double quote as escaping it, and one
 * at the end of a name as escaping the separator after it, which breaks the
 * line ("invalid tag format"). Such a backslash cannot be represented and
 * becomes a '/'; any other backslash in a name is written as it is. String
 * field values escape backslashes ('\\' in special). */
static void s_escaped(tb_lp_t *lp, const char *s, const char *special)
{
    int name = strchr(special, '\\') == NULL;
    for (; *s != '\0'; s++) {
        char c = (*s == '\n' || *s == '\r') ? ' ' : *s;
        if (name && c == '\\' && (s[1] == '\0' || strchr(",= \"\n\r", s[1]) != NULL)) {
            c = '/';
        }
        if (strchr(special, c) != NULL) {
            s_putc(lp, '\\');
        }
        s_putc(lp, c);
    }
}

void tb_lp_begin(tb_lp_t *lp, const char *measurement)
{
    lp->pos = lp->len;
    lp->overflow = 0;
    lp->nfields = 0;
    /* A line without a measurement name is refused by InfluxDB: the point
     * stays closed, and tb_lp_end says TB_EINVAL. */
    lp->state = measurement[0] != '\0' ? TAGS : IDLE;
    s_escaped(lp, measurement, ", ");
}

void tb_lp_tag(tb_lp_t *lp, const char *key, const char *value)
{
    if (lp->state != TAGS || key[0] == '\0' || value == NULL || value[0] == '\0') {
        return;
    }
    s_putc(lp, ',');
    s_escaped(lp, key, ",= ");
    s_putc(lp, '=');
    s_escaped(lp, value, ",= ");
}

/* Separator and key of the next field. */
static void s_field_key(tb_lp_t *lp, const char *key)
{
    s_putc(lp, lp->nfields == 0 ? ' ' : ',');
    s_escaped(lp, key, ",= ");
    s_putc(lp, '=');
    lp->state = FIELDS;
    lp->nfields++;
}

void tb_lp_field_i64(tb_lp_t *lp, const char *key, int64_t v)
{
    if (lp->state == IDLE || key[0] == '\0') {
        return;
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%" PRId64 "i", v);
    s_field_key(lp, key);
    s_put(lp, buf, (size_t)n);
}

void tb_lp_field_u64(tb_lp_t *lp, const char *key, uint64_t v)
{
    if (v > (uint64_t)INT64_MAX) {
        tb_lp_field_f64(lp, key, (double)v);
    } else {
        tb_lp_field_i64(lp, key, (int64_t)v);
    }
}

void tb_lp_field_f64(tb_lp_t *lp, const char *key, double v)
{
    if (lp->state == IDLE || key[0] == '\0' || !isfinite(v)) {
        return;
    }
    char buf[40];
    /* 17 significant digits round-trip every double. */
    int n = snprintf(buf, sizeof buf, "%.17g", v);
    s_field_key(lp, key);
    s_put(lp, buf, (size_t)n);
}

void tb_lp_field_str(tb_lp_t *lp, const char *key, const char *v)
{
    if (lp->state == IDLE || key[0] == '\0') {
        return;
    }
    s_field_key(lp, key);
    s_putc(lp, '"');
    s_escaped(lp, v, "\"\\");
    s_putc(lp, '"');
}

void tb_lp_field_bool(tb_lp_t *lp, const char *key, int v)
{
    if (lp->state == IDLE || key[0] == '\0') {
        return;
    }
    s_field_key(lp, key);
    s_put(lp, v ? "true" : "false", v ? 4 : 5);
}

int tb_lp_end(tb_lp_t *lp, uint64_t ts_ns)
{
    if (lp->state == IDLE) {
        return TB_EINVAL;
    }
    int rc = 0;
    if (lp->nfields == 0) {
        rc = TB_EINVAL;
    } else {
        char buf[32];
        int n = snprintf(buf, sizeof buf, " %" PRIu64 "\n", ts_ns);
        s_put(lp, buf, (size_t)n);
        if (lp->overflow) {
            rc = TB_ELIMIT;
        }
    }
    if (rc == 0) {
        lp->len = lp->pos;
        lp->points++;
    }
    lp->pos = lp->len; /* roll back whatever did not make a complete line */
    lp->state = IDLE;
    lp->overflow = 0;
    lp->nfields = 0;
    return rc;
}
