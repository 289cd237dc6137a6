/* libFuzzer target: the line-protocol formatter (collector/db/lineproto.c).
 *
 * The input is a script of calls: a byte chooses the buffer's size, then
 * each call is an operation letter (m begin, t tag, i/u/f integer, unsigned,
 * float field, s string field, b bool field, e end, c clear; any other byte
 * picks one by its value) followed by its names and values: strings end at
 * a 0x1f byte or the end of the input, numbers are 8 bytes.
 *
 * What must hold: nothing is written outside the buffer (it is allocated
 * with its exact size, for ASan); the buffer holds only complete lines;
 * and each point that tb_lp_end accepted parses back, by InfluxDB's rules,
 * into the measurement, tags and fields that were given, newlines turned
 * into spaces; tags with an empty key or value, fields with an empty key and
 * non-finite floats left out; no point without a measurement name. */
#include "lineproto.h"
#include "tb_err.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { NAME_MAX_LEN = 256, ELEMS_MAX = 64 };

typedef struct {
    const uint8_t *p, *end;
} input_t;

/* A string up to the next 0x1f; cut at NAME_MAX_LEN and at a NUL byte. */
static void s_str(input_t *in, char *out)
{
    size_t n = 0;
    while (in->p < in->end && *in->p != 0x1f) {
        if (n < NAME_MAX_LEN) {
            out[n++] = (char)*in->p;
        }
        in->p++;
    }
    if (in->p < in->end) {
        in->p++;
    }
    out[n] = '\0';
    out[strlen(out)] = '\0';
}

static uint64_t s_u64(input_t *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | (in->p < in->end ? *in->p++ : 0);
    }
    return v;
}

/* The string value as InfluxDB should store it: newlines as spaces. */
static void s_expect(const char *s, char *out)
{
    size_t i = 0;
    for (; s[i] != '\0'; i++) {
        out[i] = (s[i] == '\n' || s[i] == '\r') ? ' ' : s[i];
    }
    out[i] = '\0';
}

/* A name as InfluxDB should store it: also a backslash that ends it or
 * comes before a character InfluxDB reads as escaped, as a slash. */
static void s_expect_name(const char *s, char *out)
{
    s_expect(s, out);
    for (size_t i = 0; s[i] != '\0'; i++) {
        if (s[i] == '\\' && (s[i + 1] == '\0' || strchr(",= \"\n\r", s[i + 1]) != NULL)) {
            out[i] = '/';
        }
    }
}

/* What the open point should contain. */
typedef struct {
    int open;
    char measurement[NAME_MAX_LEN + 1];
    size_t ntags, nfields;
    char tag_key[ELEMS_MAX][NAME_MAX_LEN + 1], tag_value[ELEMS_MAX][NAME_MAX_LEN + 1];
    char field_key[ELEMS_MAX][NAME_MAX_LEN + 1], field_value[ELEMS_MAX][NAME_MAX_LEN + 48];
    int overfull; /* more elements than the model keeps: not checked */
} point_t;

/* Line protocol, read as InfluxDB 1.x reads it. In measurements, tag keys
 * and values and field keys a backslash before a comma, equals sign, space
 * or double quote escapes it; any other backslash is itself; an unescaped
 * stop character ends the element. In string field values only \" and \\
 * are escapes. Returns the element's length
 * (unescaped into out) or -1. */
static int s_parse_name(const char **pp, const char *end, const char *stops, char *out,
                        size_t cap)
{
    const char *p = *pp;
    size_t n = 0;
    while (p < end && strchr(stops, *p) == NULL) {
        char c = *p++;
        if (c == '\\' && p < end && strchr(",= \"", *p) != NULL) {
            c = *p++;
        }
        if (c == '\n' || c == '\r' || n + 1 >= cap) {
            return -1;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    *pp = p;
    return (int)n;
}

/* Say what is wrong with the line, for whoever reproduces the crash. */
static void s_fail(const char *why, const char *line, size_t len)
{
    fprintf(stderr, "fuzz_lineproto: %s: '", why);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        fprintf(stderr, c >= 0x20 && c < 0x7f ? "%c" : "\\x%02x", c);
    }
    fprintf(stderr, "'\n");
    abort();
}

static void s_check_line(const point_t *pt, const char *line, size_t len)
{
    const char *p = line, *end = line + len;
    char buf[4 * NAME_MAX_LEN];
    if (len == 0 || end[-1] != '\n') {
        s_fail("not the point given", line, len);
    }
    end--; /* the newline */
    if (memchr(line, '\n', len - 1) != NULL || memchr(line, '\r', len - 1) != NULL) {
        s_fail("not the point given", line, len);
    }
    if (s_parse_name(&p, end, ", ", buf, sizeof buf) <= 0 || strcmp(buf, pt->measurement) != 0) {
        s_fail("not the point given", line, len);
    }
    size_t ntags = 0;
    while (p < end && *p == ',') {
        p++;
        char key[4 * NAME_MAX_LEN];
        if (s_parse_name(&p, end, ",= ", key, sizeof key) <= 0 || p >= end || *p++ != '=' ||
            s_parse_name(&p, end, ", ", buf, sizeof buf) <= 0) {
            s_fail("not the point given", line, len);
        }
        if (!pt->overfull && (ntags >= pt->ntags || strcmp(key, pt->tag_key[ntags]) != 0 ||
                              strcmp(buf, pt->tag_value[ntags]) != 0)) {
            s_fail("not the point given", line, len);
        }
        ntags++;
    }
    if (!pt->overfull && ntags != pt->ntags) {
        s_fail("not the point given", line, len);
    }
    if (p >= end || *p++ != ' ') {
        s_fail("not the point given", line, len);
    }
    size_t nfields = 0;
    do {
        char key[4 * NAME_MAX_LEN];
        if (s_parse_name(&p, end, ",= ", key, sizeof key) <= 0 || p >= end || *p++ != '=') {
            s_fail("not the point given", line, len);
        }
        size_t n = 0;
        if (p < end && *p == '"') {
            buf[n++] = *p++;
            for (;;) {
                if (p >= end) {
                    s_fail("not the point given", line, len);
                }
                char c = *p++;
                if (c == '"') {
                    break;
                }
                if (c == '\\' && p < end && (*p == '"' || *p == '\\')) {
                    c = *p++;
                }
                buf[n++] = c;
            }
            buf[n++] = '"';
        } else {
            while (p < end && *p != ',' && *p != ' ') {
                buf[n++] = *p++;
            }
            if (n == 0) {
                s_fail("not the point given", line, len);
            }
        }
        buf[n] = '\0';
        if (!pt->overfull && (nfields >= pt->nfields || strcmp(key, pt->field_key[nfields]) != 0 ||
                              strcmp(buf, pt->field_value[nfields]) != 0)) {
            s_fail("not the point given", line, len);
        }
        nfields++;
    } while (p < end && *p++ == ',');
    if (!pt->overfull && nfields != pt->nfields) {
        s_fail("not the point given", line, len);
    }
    /* The timestamp: digits to the end. */
    if (p >= end || p[-1] != ' ') {
        s_fail("not the point given", line, len);
    }
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') {
            s_fail("not the point given", line, len);
        }
    }
}

static void s_add_field(point_t *pt, const char *key, const char *value)
{
    if (!pt->open || key[0] == '\0') {
        return; /* left out */
    }
    if (pt->nfields >= ELEMS_MAX) {
        pt->overfull = 1;
        return;
    }
    s_expect_name(key, pt->field_key[pt->nfields]);
    snprintf(pt->field_value[pt->nfields], sizeof pt->field_value[0], "%s", value);
    pt->nfields++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static point_t pt;
    char key[NAME_MAX_LEN + 1], value[NAME_MAX_LEN + 1], num[48];
    if (size < 1) {
        return 0;
    }
    input_t in = {data + 1, data + size};
    size_t cap = (size_t)data[0] * 16;
    char *storage = malloc(cap > 0 ? cap : 1);
    if (storage == NULL) {
        return 0;
    }
    tb_lp_t lp;
    tb_lp_init(&lp, storage, cap);
    memset(&pt, 0, sizeof pt);
    size_t points = 0;
    while (in.p < in.end) {
        uint8_t op = *in.p++;
        static const char ops[] = "mtiufsbec";
        if (strchr(ops, op) == NULL || op == 0) {
            op = (uint8_t)ops[op % (sizeof ops - 1)];
        }
        switch (op) {
        case 'm':
            s_str(&in, key);
            tb_lp_begin(&lp, key);
            memset(&pt, 0, sizeof pt);
            pt.open = key[0] != '\0'; /* no point without a name */
            s_expect_name(key, pt.measurement);
            break;
        case 't':
            s_str(&in, key);
            s_str(&in, value);
            tb_lp_tag(&lp, key, value);
            if (pt.open && pt.nfields == 0 && key[0] != '\0' && value[0] != '\0') {
                if (pt.ntags >= ELEMS_MAX) {
                    pt.overfull = 1;
                } else {
                    s_expect_name(key, pt.tag_key[pt.ntags]);
                    s_expect_name(value, pt.tag_value[pt.ntags]);
                    pt.ntags++;
                }
            }
            break;
        case 'i': {
            s_str(&in, key);
            int64_t v = (int64_t)s_u64(&in);
            tb_lp_field_i64(&lp, key, v);
            snprintf(num, sizeof num, "%lldi", (long long)v);
            if (pt.open) {
                s_add_field(&pt, key, num);
            }
            break;
        }
        case 'u': {
            s_str(&in, key);
            uint64_t v = s_u64(&in);
            tb_lp_field_u64(&lp, key, v);
            if (v > (uint64_t)INT64_MAX) {
                snprintf(num, sizeof num, "%.17g", (double)v);
            } else {
                snprintf(num, sizeof num, "%lldi", (long long)v);
            }
            if (pt.open) {
                s_add_field(&pt, key, num);
            }
            break;
        }
        case 'f': {
            s_str(&in, key);
            uint64_t bits = s_u64(&in);
            double v;
            memcpy(&v, &bits, sizeof v);
            tb_lp_field_f64(&lp, key, v);
            snprintf(num, sizeof num, "%.17g", v);
            if (pt.open && isfinite(v)) {
                s_add_field(&pt, key, num);
            }
            break;
        }
        case 's': {
            s_str(&in, key);
            s_str(&in, value);
            tb_lp_field_str(&lp, key, value);
            char quoted[NAME_MAX_LEN + 3];
            char plain[NAME_MAX_LEN + 1];
            s_expect(value, plain);
            snprintf(quoted, sizeof quoted, "\"%s\"", plain);
            if (pt.open) {
                s_add_field(&pt, key, quoted);
            }
            break;
        }
        case 'b': {
            s_str(&in, key);
            int v = in.p < in.end ? *in.p++ & 1 : 0;
            tb_lp_field_bool(&lp, key, v);
            if (pt.open) {
                s_add_field(&pt, key, v ? "true" : "false");
            }
            break;
        }
        case 'e': {
            size_t before = lp.len;
            int rc = tb_lp_end(&lp, s_u64(&in));
            if (rc == 0) {
                if (!pt.open || pt.nfields == 0 || lp.len <= before) {
                    abort();
                }
                s_check_line(&pt, storage + before, lp.len - before);
                points++;
            } else if (lp.len != before || (rc != TB_EINVAL && rc != TB_ELIMIT) ||
                       (rc == TB_EINVAL && pt.open && pt.nfields > 0)) {
                abort();
            }
            memset(&pt, 0, sizeof pt);
            break;
        }
        default: /* 'c' */
            tb_lp_clear(&lp);
            memset(&pt, 0, sizeof pt);
            points = 0;
            break;
        }
        if (lp.len > lp.cap || lp.pos > lp.cap || lp.points != points ||
            (lp.len > 0 && storage[lp.len - 1] != '\n')) {
            abort();
        }
    }
    free(storage);
    return 0;
}
