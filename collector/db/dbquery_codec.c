/* dbquery_codec — the pure half of dbquery (see dbquery.h): a db request
 * checked and turned into InfluxQL or Flux, and the database's answer (1.x
 * JSON, 2.x annotated CSV) turned into a control reply. No I/O, no thread:
 * the query thread uses these, and so do the tests, without a server. */
#include "dbquery.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tb_dbquery_valid(const tb_ctl_request_t *req, char *err, size_t errsize)
{
    if (req->nargs == 0 || strcmp(req->args[0], "measurements") == 0) {
        if (req->nargs > 1 || req->nstreams > 0) {
            snprintf(err, errsize, "db measurements takes no other argument");
            return 0;
        }
        return 1;
    }
    if (strcmp(req->args[0], "points") != 0) {
        snprintf(err, errsize, "unknown db request '%s' (measurements, points)", req->args[0]);
        return 0;
    }
    if (req->nargs != 3 || req->nstreams > 1) {
        snprintf(err, errsize, "db points needs a measurement, a count and at most one stream");
        return 0;
    }
    const char *m = req->args[1];
    if (m[0] == '\0' || strlen(m) > 64) {
        snprintf(err, errsize, "measurement name must be 1-64 characters");
        return 0;
    }
    char *end;
    long n = strtol(req->args[2], &end, 10);
    if (*end != '\0' || n < 1 || n > TB_DBQUERY_MAX_ROWS) {
        snprintf(err, errsize, "the number of points must be 1-%d", TB_DBQUERY_MAX_ROWS);
        return 0;
    }
    return 1;
}

/* Copy s into out escaping `quote`, backslashes and, in Flux strings, the
 * dollar sign that would start an interpolation ("${...}"). */
static void s_escape(char *out, size_t size, const char *s, char quote, int flux)
{
    size_t o = 0;
    for (; *s && o + 3 < size; s++) {
        if (*s == quote || *s == '\\' || (flux && *s == '$')) {
            out[o++] = '\\';
        }
        out[o++] = *s;
    }
    out[o] = '\0';
}

void tb_dbquery_build(int v2, const char *bucket, const char *rp_name, const tb_ctl_request_t *req,
                      char *out, size_t size)
{
    char m[160], st[160], b[300];
    if (req->nargs == 0 || strcmp(req->args[0], "measurements") == 0) {
        if (!v2) {
            snprintf(out, size, "SHOW MEASUREMENTS");
        } else {
            s_escape(b, sizeof b, bucket, '"', 1);
            snprintf(out, size,
                     "import \"influxdata/influxdb/schema\"\nschema.measurements(bucket: \"%s\")",
                     b);
        }
        return;
    }
    long n = strtol(req->args[2], NULL, 10);
    if (!v2) {
        /* InfluxQL identifiers escape only quotes and backslashes; the
         * retention policy the points were written to qualifies the name. */
        char rp[160];
        s_escape(m, sizeof m, req->args[1], '"', 0);
        s_escape(rp, sizeof rp, rp_name, '"', 0);
        s_escape(st, sizeof st, req->nstreams ? req->streams[0] : "", '\'', 0);
        snprintf(out, size, "SELECT * FROM %s%s%s\"%s\"%s%s%s ORDER BY time DESC LIMIT %ld",
                 rp_name[0] ? "\"" : "", rp, rp_name[0] ? "\"." : "", m,
                 req->nstreams ? " WHERE \"stream\" = '" : "", req->nstreams ? st : "",
                 req->nstreams ? "'" : "", n);
    } else {
        s_escape(b, sizeof b, bucket, '"', 1);
        s_escape(m, sizeof m, req->args[1], '"', 1);
        s_escape(st, sizeof st, req->nstreams ? req->streams[0] : "", '"', 1);
        snprintf(out, size,
                 "from(bucket: \"%s\") |> range(start: 0) |> filter(fn: (r) => "
                 "r._measurement == \"%s\"%s%s%s) |> pivot(rowKey: [\"_time\"], columnKey: "
                 "[\"_field\"], valueColumn: \"_value\") |> group() |> sort(columns: "
                 "[\"_time\"], desc: true) |> limit(n: %ld)",
                 b, m, req->nstreams ? " and r.stream == \"" : "", req->nstreams ? st : "",
                 req->nstreams ? "\"" : "", n);
    }
}

static void s_pack_json(msgpack_packer *pk, const json_t *v)
{
    if (json_is_string(v)) {
        tb_mp_pack_cstr(pk, json_string_value(v));
    } else if (json_is_integer(v)) {
        msgpack_pack_int64(pk, json_integer_value(v));
    } else if (json_is_real(v)) {
        msgpack_pack_double(pk, json_real_value(v));
    } else if (json_is_true(v)) {
        msgpack_pack_true(pk);
    } else if (json_is_false(v)) {
        msgpack_pack_false(pk);
    } else {
        msgpack_pack_nil(pk);
    }
}

void tb_dbquery_pack_error(msgpack_packer *pk, const char *msg)
{
    tb_ctl_reply_begin(pk, msg);
    msgpack_pack_nil(pk);
}

/* 1.x: {"results":[{"series":[{"name","columns","values"}...]}]}. */
void tb_dbquery_pack_v1(msgpack_packer *pk, const char *query, const char *body, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    json_t *res = json_array_get(json_object_get(root, "results"), 0);
    if (res == NULL) {
        tb_dbquery_pack_error(pk, "the database answered something that is not a query result");
        json_decref(root);
        return;
    }
    const char *err = json_string_value(json_object_get(res, "error"));
    if (err != NULL) {
        char msg[TB_CTL_ERROR_MAX];
        snprintf(msg, sizeof msg, "database: %.200s", err);
        tb_dbquery_pack_error(pk, msg);
        json_decref(root);
        return;
    }
    json_t *series = json_object_get(res, "series");
    json_t *cols = json_object_get(json_array_get(series, 0), "columns");
    size_t nrows = 0, i;
    json_t *s;
    json_array_foreach(series, i, s)
    {
        nrows += json_array_size(json_object_get(s, "values"));
    }
    tb_ctl_reply_begin(pk, NULL);
    msgpack_pack_map(pk, 3);
    tb_mp_kv_str(pk, "query", query);
    tb_mp_pack_cstr(pk, "columns");
    msgpack_pack_array(pk, json_array_size(cols));
    json_t *c;
    json_array_foreach(cols, i, c)
    {
        s_pack_json(pk, c);
    }
    tb_mp_pack_cstr(pk, "rows");
    msgpack_pack_array(pk, nrows);
    json_array_foreach(series, i, s)
    {
        size_t j;
        json_t *row;
        json_array_foreach(json_object_get(s, "values"), j, row)
        {
            msgpack_pack_array(pk, json_array_size(row));
            size_t k;
            json_t *v;
            json_array_foreach(row, k, v)
            {
                s_pack_json(pk, v);
            }
        }
    }
    json_decref(root);
}

/* Split one CSV line in place (RFC 4180 quoting). Returns the field count. */
size_t tb_dbquery_csv_split(char *line, char **fields, size_t max)
{
    size_t n = 0;
    char *p = line;
    for (;;) {
        if (n == max) {
            return n;
        }
        char *out = p;
        fields[n++] = out;
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '\0') {
                    break;
                }
                if (*p == '"' && p[1] == '"') {
                    *out++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *out++ = *p++;
                }
            }
            while (*p != ',' && *p != '\0') {
                p++;
            }
        } else {
            while (*p != ',' && *p != '\0') {
                *out++ = *p++;
            }
        }
        int more = *p == ',';
        *out = '\0';
        if (!more) {
            return n;
        }
        p++;
    }
}

static void s_pack_typed(msgpack_packer *pk, const char *type, const char *v)
{
    char *end;
    if (v[0] == '\0') {
        msgpack_pack_nil(pk);
    } else if (strcmp(type, "long") == 0 || strcmp(type, "unsignedLong") == 0) {
        long long x = strtoll(v, &end, 10);
        if (*end == '\0') {
            msgpack_pack_int64(pk, x);
        } else {
            tb_mp_pack_cstr(pk, v);
        }
    } else if (strcmp(type, "double") == 0) {
        double x = strtod(v, &end);
        if (*end == '\0') {
            msgpack_pack_double(pk, x);
        } else {
            tb_mp_pack_cstr(pk, v);
        }
    } else if (strcmp(type, "boolean") == 0) {
        if (strcmp(v, "true") == 0) {
            msgpack_pack_true(pk);
        } else {
            msgpack_pack_false(pk);
        }
    } else {
        tb_mp_pack_cstr(pk, v);
    }
}

/* 2.x: annotated CSV (#datatype rows, a header row, data rows; tables
 * separated by blank lines). The first table's header names the columns;
 * Flux's own bookkeeping columns (result, table) are left out. */
void tb_dbquery_pack_v2(msgpack_packer *pk, const char *query, char *body)
{
    char *types[TB_DBQUERY_CSV_MAX_COLS] = {0}, *head[TB_DBQUERY_CSV_MAX_COLS] = {0},
         *f[TB_DBQUERY_CSV_MAX_COLS];
    size_t ntypes = 0, nhead = 0, nrows = 0;
    /* First pass: header and row count. */
    char *copy = strdup(body);
    if (copy == NULL) {
        tb_dbquery_pack_error(pk, "out of memory");
        return;
    }
    char *save = NULL;
    int want_header = 1;
    for (char *line = strtok_r(copy, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        if (line[0] == '#') {
            if (strncmp(line, "#datatype,", 10) == 0 && ntypes == 0) {
                ntypes = tb_dbquery_csv_split(line, types, TB_DBQUERY_CSV_MAX_COLS);
            }
            want_header = 1;
            continue;
        }
        if (want_header) {
            if (nhead == 0) {
                nhead = tb_dbquery_csv_split(line, head, TB_DBQUERY_CSV_MAX_COLS);
            }
            want_header = 0;
            continue;
        }
        nrows++;
    }
    int keep[TB_DBQUERY_CSV_MAX_COLS];
    size_t nkeep = 0;
    for (size_t i = 0; i < nhead; i++) {
        keep[i] =
            head[i][0] != '\0' && strcmp(head[i], "result") != 0 && strcmp(head[i], "table") != 0;
        nkeep += (size_t)keep[i];
    }
    tb_ctl_reply_begin(pk, NULL);
    msgpack_pack_map(pk, 3);
    tb_mp_kv_str(pk, "query", query);
    tb_mp_pack_cstr(pk, "columns");
    msgpack_pack_array(pk, nkeep);
    for (size_t i = 0; i < nhead; i++) {
        if (keep[i]) {
            tb_mp_pack_cstr(pk, head[i]);
        }
    }
    tb_mp_pack_cstr(pk, "rows");
    msgpack_pack_array(pk, nrows);
    want_header = 1;
    save = NULL;
    for (char *line = strtok_r(body, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        if (line[0] == '#' || want_header) {
            want_header = line[0] == '#';
            continue;
        }
        size_t n = tb_dbquery_csv_split(line, f, TB_DBQUERY_CSV_MAX_COLS);
        msgpack_pack_array(pk, nkeep);
        for (size_t i = 0; i < nhead; i++) {
            if (keep[i]) {
                s_pack_typed(pk, i < ntypes ? types[i] : "string", i < n ? f[i] : "");
            }
        }
    }
    free(copy);
}

int tb_dbquery_no_rows(int v2, const char *body, size_t len)
{
    if (!v2) {
        json_t *root = json_loadb(body, len, 0, NULL);
        json_t *series =
            json_object_get(json_array_get(json_object_get(root, "results"), 0), "series");
        size_t rows = 0, i;
        json_t *x;
        json_array_foreach(series, i, x)
        {
            rows += json_array_size(json_object_get(x, "values"));
        }
        int none = root != NULL && rows == 0;
        json_decref(root);
        return none;
    }
    int want_header = 1;
    for (const char *p = body; p < body + len;) {
        const char *nl = memchr(p, '\n', (size_t)(body + len - p));
        size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(body + len - p);
        while (n > 0 && p[n - 1] == '\r') {
            n--;
        }
        if (n == 0 || p[0] == '#') {
            want_header = 1;
        } else if (want_header) {
            want_header = 0;
        } else {
            return 0;
        }
        p += n + 1;
        while (p < body + len && (*p == '\r' || *p == '\n')) {
            p++;
        }
    }
    return 1;
}
