/* print — see print.h. */
#include "print.h"

#include "jfield.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- text from the network, made printable ----
 *
 * Names, details, probe ids and error messages come from collectors and
 * probes: an escape sequence in them would reach the operator's terminal
 * (move the cursor, retitle the window, hide a line). Before a table is
 * printed, every string and key is copied with control characters (C0, DEL,
 * C1) and the bidirectional overrides shown as escapes (\x1b, \u009b,
 * \u202e); the rest of the UTF-8 text is kept. --json output is not made
 * from these copies: jansson escapes it exactly. */

size_t tb_print_text(char *dst, size_t size, const char *src, size_t len)
{
    size_t o = 0;
    if (size == 0) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        const unsigned char *u = (const unsigned char *)src + i;
        char esc[8] = "";
        size_t skip = 0;
        if (u[0] < 0x20 || u[0] == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", u[0]);
        } else if (u[0] == 0xc2 && i + 1 < len && u[1] >= 0x80 && u[1] <= 0x9f) {
            snprintf(esc, sizeof esc, "\\u%04x", u[1]);
            skip = 1;
        } else if (u[0] == 0xe2 && i + 2 < len &&
                   ((u[1] == 0x80 && u[2] >= 0xaa && u[2] <= 0xae) ||
                    (u[1] == 0x81 && u[2] >= 0xa6 && u[2] <= 0xa9))) {
            snprintf(esc, sizeof esc, "\\u%04x", 0x2000 + ((u[1] & 0x3f) << 6) + (u[2] & 0x3f));
            skip = 2;
        }
        size_t n = esc[0] ? strlen(esc) : 1;
        if (o + n >= size) {
            break;
        }
        if (esc[0]) {
            memcpy(dst + o, esc, n);
        } else {
            dst[o] = src[i];
        }
        o += n;
        i += skip;
    }
    /* A cut never leaves half a UTF-8 character. */
    while (o > 0 && ((unsigned char)dst[o - 1] & 0x80) != 0) {
        size_t lead = o - 1;
        while (lead > 0 && ((unsigned char)dst[lead] & 0xc0) == 0x80) {
            lead--;
        }
        unsigned char c = (unsigned char)dst[lead];
        size_t want = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        if (o - lead >= want) {
            break;
        }
        o = lead;
    }
    dst[o] = '\0';
    return o;
}

/* A printable string value, or NULL when out of memory. */
static json_t *s_safe_string(const char *s, size_t len)
{
    /* An escape is at most 4 characters per byte it replaces ("\x1b"; a
     * C1 "\u009b" replaces 2, a bidirectional override 3): a string of
     * printable text (the usual case) is copied as it is. */
    size_t controls = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        controls += c < 0x20 || c == 0x7f || c == 0xc2 || c == 0xe2;
    }
    if (controls == 0) {
        return json_stringn(s, len);
    }
    size_t size = len + 3 * controls + 2 * controls + 1;
    char *buf = malloc(size);
    if (buf == NULL) {
        return NULL;
    }
    size_t n = tb_print_text(buf, size, s, len);
    json_t *j = json_stringn(buf, n);
    free(buf);
    return j;
}

json_t *tb_print_safe(const json_t *v)
{
    if (json_is_string(v)) {
        return s_safe_string(json_string_value(v), json_string_length(v));
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        const json_t *x;
        json_array_foreach(v, i, x)
        {
            if (a == NULL || json_array_append_new(a, tb_print_safe(x)) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *key;
        json_t *x;
        json_object_foreach((json_t *)v, key, x)
        {
            json_t *k = s_safe_string(key, strlen(key));
            if (o == NULL || k == NULL ||
                json_object_set_new(o, json_string_value(k), tb_print_safe(x)) != 0) {
                json_decref(k);
                json_decref(o);
                return NULL;
            }
            json_decref(k);
        }
        return o;
    }
    return v != NULL ? json_deep_copy(v) : json_null();
}

static void s_print_names(FILE *out, const char *verb, const json_t *list, const json_t *where)
{
    fprintf(out, "%s:", verb);
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *name = json_string_value(v) ? json_string_value(v) : "?";
        fprintf(out, " %s", name);
        if (json_is_object(where)) {
            fprintf(out, " (%s)", tb_jstr(where, name));
        }
    }
    fprintf(out, "%s\n", json_array_size(list) == 0 ? " (none)" : "");
}

void tb_print_names(FILE *out, const char *verb, const json_t *list, const json_t *where)
{
    json_t *l = tb_print_safe(list), *w = tb_print_safe(where);
    s_print_names(out, verb, l, w);
    json_decref(l);
    json_decref(w);
}

/* ---- db: a table of columns and rows ---- */

/* A real with about six significant digits and never an exponent (a table
 * shows 1000000, not 1e+06): as many decimals as the magnitude leaves, the
 * trailing zeros cut. */
static void s_real(double v, char *buf, size_t size)
{
    if (!isfinite(v)) {
        snprintf(buf, size, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
        return;
    }
    double mag = v < 0 ? -v : v;
    int decimals = 0;
    if (mag > 0 && mag < 1e5) {
        decimals = 5;
        for (double t = mag; t >= 10; t /= 10) {
            decimals--;
        }
        for (double t = mag; t < 1 && decimals < 15; t *= 10) {
            decimals++;
        }
    }
    snprintf(buf, size, "%.*f", decimals, v);
    if (decimals > 0 && strchr(buf, '.') != NULL) {
        size_t n = strlen(buf);
        while (n > 0 && buf[n - 1] == '0') {
            buf[--n] = '\0';
        }
        if (n > 0 && buf[n - 1] == '.') {
            buf[--n] = '\0';
        }
    }
    if (strcmp(buf, "-0") == 0) {
        snprintf(buf, size, "0");
    }
}

/* One cell as text. */
static void s_cell(const json_t *v, char *buf, size_t size)
{
    if (json_is_string(v)) {
        snprintf(buf, size, "%s", json_string_value(v));
    } else if (json_is_integer(v)) {
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_real(v)) {
        s_real(json_real_value(v), buf, size);
    } else if (json_is_boolean(v)) {
        snprintf(buf, size, "%s", json_is_true(v) ? "true" : "false");
    } else {
        snprintf(buf, size, "-");
    }
}

#define TABLE_MAX_COLS 64
#define CELL_MAX       128

static void s_print_table(FILE *out, const json_t *columns, const json_t *rows)
{
    size_t ncols = json_array_size(columns);
    if (ncols > TABLE_MAX_COLS) {
        ncols = TABLE_MAX_COLS;
    }
    int width[TABLE_MAX_COLS];
    char cell[CELL_MAX];
    for (size_t c = 0; c < ncols; c++) {
        s_cell(json_array_get(columns, c), cell, sizeof cell);
        width[c] = (int)strlen(cell);
    }
    size_t r;
    const json_t *row;
    json_array_foreach(rows, r, row)
    {
        for (size_t c = 0; c < ncols; c++) {
            s_cell(json_array_get(row, c), cell, sizeof cell);
            int w = (int)strlen(cell);
            width[c] = w > width[c] ? w : width[c];
        }
    }
    if (ncols == 0) {
        fprintf(out, "(nothing stored)\n");
        return;
    }
    for (size_t c = 0; c < ncols; c++) {
        s_cell(json_array_get(columns, c), cell, sizeof cell);
        fprintf(out, "%s%-*s", c ? "  " : "", c + 1 < ncols ? width[c] : 0, cell);
    }
    fputc('\n', out);
    json_array_foreach(rows, r, row)
    {
        for (size_t c = 0; c < ncols; c++) {
            s_cell(json_array_get(row, c), cell, sizeof cell);
            fprintf(out, "%s%-*s", c ? "  " : "", c + 1 < ncols ? width[c] : 0, cell);
        }
        fputc('\n', out);
    }
    if (json_array_size(rows) == 0) {
        fprintf(out, "(nothing stored)\n");
    }
}

static long long s_rank_of(const json_t *row, int col)
{
    const json_t *v = json_array_get(row, (size_t)col);
    if (json_is_integer(v)) {
        return json_integer_value(v);
    }
    const char *s = json_string_value(v);
    char *end;
    long long r = s != NULL ? strtoll(s, &end, 10) : 0;
    return s != NULL && end != s ? r : LLONG_MAX;
}

/* Top flows and hosts: the database returns the points of one time in the
 * order of their series (rank "1", "10", "2", ...); rows of the same time
 * are put in rank order, numerically. The order of times is kept. */
static void s_rank_order(const json_t *columns, json_t *rows)
{
    int rank = tb_jindex(columns, "rank");
    int t =
        tb_jindex(columns, "time") >= 0 ? tb_jindex(columns, "time") : tb_jindex(columns, "_time");
    size_t n = json_array_size(rows);
    if (rank < 0 || t < 0) {
        return;
    }
    for (size_t start = 0; start < n;) {
        const json_t *t0 = json_array_get(json_array_get(rows, start), (size_t)t);
        size_t end = start + 1;
        while (end < n && json_equal(json_array_get(json_array_get(rows, end), (size_t)t), t0)) {
            end++;
        }
        for (size_t i = start + 1; i < end; i++) { /* insertion sort: stable, runs are short */
            json_t *row = json_incref(json_array_get(rows, i));
            size_t j = i;
            while (j > start &&
                   s_rank_of(json_array_get(rows, j - 1), rank) > s_rank_of(row, rank)) {
                json_array_set(rows, j, json_array_get(rows, j - 1));
                j--;
            }
            json_array_set_new(rows, j, row);
        }
        start = end;
    }
}

void tb_print_table(FILE *out, const json_t *columns, const json_t *rows)
{
    json_t *c = tb_print_safe(columns), *r = tb_print_safe(rows);
    s_rank_order(c, r);
    s_print_table(out, c, r);
    json_decref(c);
    json_decref(r);
}
