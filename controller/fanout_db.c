/* fanout_db — see fanout_db.h. */
#include "fanout_db.h"

#include "fanout_ask.h"
#include "jfield.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A row's place in the merged db answer. */
typedef struct {
    json_t *row;
    char *text; /* the row as compact JSON, to find duplicates */
    int64_t t;  /* its time in ns, when the answer has a time column */
} row_t;

/* RFC 3339 ("2026-11-23T07:40:01.5Z") or an integer -> ns; 0 when neither. */
static int64_t s_row_time(const json_t *v)
{
    if (json_is_integer(v)) {
        return (int64_t)json_integer_value(v);
    }
    const char *s = json_string_value(v);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int used = 0;
    if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6) {
        return 0;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int64_t ns = (int64_t)timegm(&tm) * 1000000000;
    if (s[used] == '.') {
        int64_t scale = 100000000;
        for (const char *p = s + used + 1; *p >= '0' && *p <= '9'; p++, scale /= 10) {
            ns += (*p - '0') * scale;
        }
    }
    return ns;
}

/* Newest first when there is a time column, else by content. */
static int s_row_cmp(const void *a, const void *b, void *has_time)
{
    const row_t *x = a, *y = b;
    if (*(const int *)has_time && x->t != y->t) {
        return x->t > y->t ? -1 : 1;
    }
    return strcmp(x->text, y->text);
}

/* The rows of every answer under one set of columns, without duplicates,
 * sorted, at most `limit`. */
static json_t *s_rows_merged(const tb_fanout_t *f, const tb_fanout_answer_t *ans, json_t *columns,
                             size_t limit)
{
    size_t total = 0;
    for (size_t i = 0; i < f->n; i++) {
        total +=
            ans[i].code == TB_CALL_OK ? json_array_size(json_object_get(ans[i].data, "rows")) : 0;
    }
    row_t *rows = calloc(total + 1, sizeof *rows);
    json_t *out = json_array();
    size_t n = 0;
    int ok = rows != NULL && out != NULL;
    int time_col =
        tb_jindex(columns, "time") >= 0 ? tb_jindex(columns, "time") : tb_jindex(columns, "_time");
    int has_time = time_col >= 0;
    for (size_t i = 0; ok && i < f->n; i++) {
        const json_t *cols = json_object_get(ans[i].data, "columns");
        size_t k;
        json_t *src;
        json_array_foreach(ans[i].code == TB_CALL_OK ? json_object_get(ans[i].data, "rows") : NULL,
                           k, src)
        {
            json_t *row = json_array();
            for (size_t c = 0; row != NULL && c < json_array_size(columns); c++) {
                json_array_append_new(row, json_null());
            }
            size_t j;
            json_t *v;
            json_array_foreach(src, j, v)
            {
                const char *name = json_string_value(json_array_get(cols, j));
                int at = name != NULL ? tb_jindex(columns, name) : -1;
                if (row != NULL && at >= 0) {
                    json_array_set(row, (size_t)at, v);
                }
            }
            rows[n].row = row;
            rows[n].text = row != NULL ? json_dumps(row, JSON_COMPACT) : NULL;
            rows[n].t = has_time ? s_row_time(json_array_get(row, (size_t)time_col)) : 0;
            if (rows[n++].text == NULL) {
                ok = 0;
                break;
            }
        }
    }
    if (ok) {
        qsort_r(rows, n, sizeof *rows, s_row_cmp, &has_time);
        for (size_t i = 0; i < n && json_array_size(out) < limit; i++) {
            if (i == 0 || strcmp(rows[i].text, rows[i - 1].text) != 0) {
                json_array_append(out, rows[i].row);
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        json_decref(rows[i].row);
        free(rows[i].text);
    }
    free(rows);
    if (!ok) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* db: every collector asked (databases may be shared or not), answers
 * merged. */
json_t *tb_fanout_db(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
                     size_t errsize)
{
    tb_fanout_answer_t ans[TB_FANOUT_MAX];
    if ((*code = tb_fanout_ask_all(f, req, 1, ans, err, errsize)) != 0) {
        return NULL;
    }
    json_t *columns = json_array();
    json_t *query = NULL;
    size_t answered = 0;
    for (size_t i = 0; columns != NULL && i < f->n; i++) {
        if (ans[i].code != TB_CALL_OK) {
            continue;
        }
        answered++;
        if (query == NULL) {
            query = json_object_get(ans[i].data, "query");
        }
        size_t k;
        json_t *c;
        json_array_foreach(json_object_get(ans[i].data, "columns"), k, c)
        {
            if (json_is_string(c) && tb_jindex(columns, json_string_value(c)) < 0) {
                json_array_append(columns, c);
            }
        }
    }
    size_t limit = (size_t)-1;
    if (req->nargs >= 3 && strcmp(req->args[0], "points") == 0) {
        limit = strtoul(req->args[2], NULL, 10);
    }
    json_t *rows = columns != NULL ? s_rows_merged(f, ans, columns, limit) : NULL;
    json_t *out = rows != NULL
                      ? json_pack("{s:O, s:o, s:o}", "query", query != NULL ? query : json_null(),
                                  "columns", columns, "rows", rows)
                      : NULL;
    if (rows == NULL) {
        json_decref(columns); /* otherwise json_pack took it, whatever came of it */
    }
    return tb_fanout_finish(f, ans, out, answered, 0, code, err, errsize);
}
