/* dbquery — see dbquery.h. */
#include "dbquery.h"

#include "tb_err.h"
#include "tb_log.h"
#include "tb_mp.h"
#include "tb_time.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define LOG_COMPONENT "dbquery"
#define ANSWER_MAX    (16u << 20) /* bytes of a database answer */
#define QUERY_MAX     2048
#define CSV_MAX_COLS  256

struct tb_dbquery {
    void *loop_end; /* the collector loop's socket */
    void *thread_end;
    char endpoint[64];
    tb_influx_t *ix;
    char *bucket; /* 2.x */
    char *rp;     /* 1.x retention policy the writer uses, "" for the default */
    pthread_t thread;
    int started;
};

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

static void s_reply_error(msgpack_packer *pk, const char *msg)
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
        s_reply_error(pk, "the database answered something that is not a query result");
        json_decref(root);
        return;
    }
    const char *err = json_string_value(json_object_get(res, "error"));
    if (err != NULL) {
        char msg[TB_CTL_ERROR_MAX];
        snprintf(msg, sizeof msg, "database: %.200s", err);
        s_reply_error(pk, msg);
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
    char *types[CSV_MAX_COLS] = {0}, *head[CSV_MAX_COLS] = {0}, *f[CSV_MAX_COLS];
    size_t ntypes = 0, nhead = 0, nrows = 0;
    /* First pass: header and row count. */
    char *copy = strdup(body);
    if (copy == NULL) {
        s_reply_error(pk, "out of memory");
        return;
    }
    char *save = NULL;
    int want_header = 1;
    for (char *line = strtok_r(copy, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        if (line[0] == '#') {
            if (strncmp(line, "#datatype,", 10) == 0 && ntypes == 0) {
                ntypes = tb_dbquery_csv_split(line, types, CSV_MAX_COLS);
            }
            want_header = 1;
            continue;
        }
        if (want_header) {
            if (nhead == 0) {
                nhead = tb_dbquery_csv_split(line, head, CSV_MAX_COLS);
            }
            want_header = 0;
            continue;
        }
        nrows++;
    }
    int keep[CSV_MAX_COLS];
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
        size_t n = tb_dbquery_csv_split(line, f, CSV_MAX_COLS);
        msgpack_pack_array(pk, nkeep);
        for (size_t i = 0; i < nhead; i++) {
            if (keep[i]) {
                s_pack_typed(pk, i < ntypes ? types[i] : "string", i < n ? f[i] : "");
            }
        }
    }
    free(copy);
}

/* Whether an answer holds no data row: 1.x no "values" in any series, 2.x
 * no line but annotations and headers. */
static int s_no_rows(int v2, const char *body, size_t len)
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

/* The query of a request, for this thread's database. */
static void s_query(const tb_dbquery_t *q, const tb_ctl_request_t *req, char *out, size_t size)
{
    tb_dbquery_build(tb_influx_version(q->ix) == 2, q->bucket != NULL ? q->bucket : "",
                     q->rp != NULL ? q->rp : "", req, out, size);
}

/* Whether the database holds measurement m: 1 yes, 0 no, -1 cannot tell. */
static int s_has_measurement(tb_dbquery_t *q, const char *m)
{
    tb_ctl_request_t list;
    memset(&list, 0, sizeof list);
    char query[QUERY_MAX];
    s_query(q, &list, query, sizeof query);
    char *body = NULL;
    size_t len = 0;
    tb_ifx_result_t res;
    int found = -1;
    if (tb_influx_query(q->ix, query, ANSWER_MAX, &body, &len, &res) == TB_IFX_OK && body != NULL) {
        found = 0;
        if (tb_influx_version(q->ix) == 1) {
            json_t *root = json_loadb(body, len, 0, NULL);
            json_t *values = json_object_get(
                json_array_get(
                    json_object_get(json_array_get(json_object_get(root, "results"), 0), "series"),
                    0),
                "values");
            size_t i;
            json_t *row;
            json_array_foreach(values, i, row)
            {
                const char *name = json_string_value(json_array_get(row, 0));
                found |= name != NULL && strcmp(name, m) == 0;
            }
            found = root == NULL ? -1 : found;
            json_decref(root);
        } else {
            /* Annotated CSV: the names are in the _value column. */
            char *save = NULL, *f[CSV_MAX_COLS];
            int col = -1;
            for (char *line = strtok_r(body, "\r\n", &save); line != NULL;
                 line = strtok_r(NULL, "\r\n", &save)) {
                if (line[0] == '#') {
                    continue;
                }
                size_t n = tb_dbquery_csv_split(line, f, CSV_MAX_COLS);
                for (size_t i = 0; i < n && col < 0; i++) {
                    col = strcmp(f[i], "_value") == 0 ? (int)i : -1;
                }
                found |= col >= 0 && (size_t)col < n && strcmp(f[col], m) == 0;
            }
        }
    }
    free(body);
    return found;
}

static void s_run(tb_dbquery_t *q, const tb_ctl_request_t *req, msgpack_sbuffer *sbuf)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sbuf, msgpack_sbuffer_write);
    char query[QUERY_MAX];
    s_query(q, req, query, sizeof query);
    char *body = NULL;
    size_t len = 0;
    tb_ifx_result_t res;
    int o = tb_influx_query(q->ix, query, ANSWER_MAX, &body, &len, &res);
    int points = req->nargs > 0 && strcmp(req->args[0], "points") == 0;
    if (o != TB_IFX_OK) {
        char msg[TB_CTL_ERROR_MAX];
        snprintf(msg, sizeof msg, "database query failed: %.200s", res.error);
        s_reply_error(&pk, msg);
    } else if (points && s_no_rows(tb_influx_version(q->ix) == 2, body ? body : "", len) &&
               s_has_measurement(q, req->args[1]) == 0) {
        /* Nothing at all under that name, not merely no point of the
         * stream asked for: say so rather than show an empty table. */
        char msg[TB_CTL_ERROR_MAX];
        snprintf(msg, sizeof msg,
                 "unknown measurement '%.64s' (tapbusctl db lists those the database holds)",
                 req->args[1]);
        s_reply_error(&pk, msg);
    } else if (tb_influx_version(q->ix) == 1) {
        tb_dbquery_pack_v1(&pk, query, body ? body : "", len);
    } else {
        tb_dbquery_pack_v2(&pk, query, body ? body : (char[]){""});
    }
    free(body);
}

/* What the loop hands over, after the routing frames. */
typedef struct {
    tb_ctl_request_t req;
    uint64_t deadline_ns; /* tb_time_mono_ns() when the client stops waiting, or 0 */
} job_t;

/* Receive one message from the loop: routing frames, then a job. Returns
 * the number of frames (the last is the job), 0 for a message that is not
 * one (dropped), -1 on the stop message or when the context ends. */
static int s_recv_parts(void *sock, zmq_msg_t *part, size_t max)
{
    size_t n = 0;
    int more = 1, failed = 0, too_many = 0;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, 0) < 0) {
            zmq_msg_close(&m);
            failed = 1;
            break;
        }
        more = zmq_msg_more(&m);
        if (n < max) {
            zmq_msg_init(&part[n]);
            zmq_msg_move(&part[n++], &m);
        } else {
            too_many = 1; /* more frames than the loop ever sends */
        }
        zmq_msg_close(&m);
    }
    int stop = failed || (n == 1 && zmq_msg_size(&part[0]) == 0);
    int ok = !stop && !too_many && n > 0 && zmq_msg_size(&part[n - 1]) == sizeof(job_t);
    if (!ok) {
        for (size_t i = 0; i < n; i++) {
            zmq_msg_close(&part[i]);
        }
    }
    return stop ? -1 : ok ? (int)n : 0;
}

static void *s_thread(void *arg)
{
    tb_dbquery_t *q = arg;
    for (;;) {
        zmq_msg_t part[TB_DBQUERY_ENVELOPE_MAX + 1];
        int n = s_recv_parts(q->thread_end, part, TB_DBQUERY_ENVELOPE_MAX + 1);
        if (n < 0) {
            break;
        }
        if (n == 0) {
            tb_log(TB_LOG_WARN, LOG_COMPONENT, "a malformed hand-over was dropped");
            continue;
        }
        job_t job;
        memcpy(&job, zmq_msg_data(&part[n - 1]), sizeof job);
        zmq_msg_close(&part[n - 1]);
        msgpack_sbuffer sbuf;
        msgpack_sbuffer_init(&sbuf);
        if (job.deadline_ns != 0 && tb_time_mono_ns() >= job.deadline_ns) {
            /* Its client has given up: the answer would go nowhere. */
            msgpack_packer pk;
            msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
            char msg[TB_CTL_ERROR_MAX];
            snprintf(msg, sizeof msg,
                     "query not run: the client stopped waiting after %" PRIu32 " ms",
                     job.req.timeout_ms);
            s_reply_error(&pk, msg);
        } else {
            tb_influx_deadline(q->ix, job.deadline_ns);
            s_run(q, &job.req, &sbuf);
        }
        /* Every frame is sent, failed or not, so that the message ends. */
        for (int i = 0; i + 1 < n; i++) {
            if (zmq_msg_send(&part[i], q->thread_end, ZMQ_SNDMORE) < 0) {
                zmq_msg_close(&part[i]);
            }
        }
        zmq_send(q->thread_end, sbuf.data, sbuf.size, 0);
        msgpack_sbuffer_destroy(&sbuf);
    }
    return NULL;
}

tb_dbquery_t *tb_dbquery_new(void *zctx, const tb_influx_config_t *cfg, char *err, size_t errsize)
{
    tb_dbquery_t *q = calloc(1, sizeof *q);
    if (q == NULL) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    snprintf(q->endpoint, sizeof q->endpoint, "inproc://tapbus-dbquery-%p", (void *)q);
    q->ix = tb_influx_new(cfg, err, errsize);
    if (q->ix == NULL) {
        free(q);
        return NULL;
    }
    q->bucket = strdup(cfg->bucket != NULL ? cfg->bucket : "");
    q->rp = strdup(cfg->rp != NULL ? cfg->rp : "");
    q->loop_end = zmq_socket(zctx, ZMQ_PAIR);
    q->thread_end = zmq_socket(zctx, ZMQ_PAIR);
    int linger = 0;
    if (q->bucket == NULL || q->rp == NULL || q->loop_end == NULL || q->thread_end == NULL ||
        zmq_setsockopt(q->loop_end, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(q->thread_end, ZMQ_LINGER, &linger, sizeof linger) != 0) {
        snprintf(err, errsize, "cannot set up the database query thread: %s", zmq_strerror(errno));
        tb_dbquery_destroy(&q);
        return NULL;
    }
    return q;
}

int tb_dbquery_start(tb_dbquery_t *q, char *err, size_t errsize)
{
    if (q->started) {
        snprintf(err, errsize, "the database query thread is running already");
        return TB_EINVAL;
    }
    if (zmq_bind(q->thread_end, q->endpoint) != 0 || zmq_connect(q->loop_end, q->endpoint) != 0) {
        snprintf(err, errsize, "cannot set up the database query thread: %s", zmq_strerror(errno));
        return TB_EIO;
    }
    if (pthread_create(&q->thread, NULL, s_thread, q) != 0) {
        snprintf(err, errsize, "cannot start the database query thread");
        return TB_EIO;
    }
    q->started = 1;
    return 0;
}

void tb_dbquery_destroy(tb_dbquery_t **p)
{
    if (p == NULL || *p == NULL) {
        return;
    }
    tb_dbquery_t *q = *p;
    *p = NULL;
    if (q->started) {
        tb_influx_cancel(q->ix); /* a query running or waiting ends at once */
        zmq_send(q->loop_end, "", 0, 0);
        pthread_join(q->thread, NULL);
    }
    if (q->loop_end != NULL) {
        zmq_close(q->loop_end);
    }
    if (q->thread_end != NULL) {
        zmq_close(q->thread_end);
    }
    tb_influx_destroy(&q->ix);
    free(q->bucket);
    free(q->rp);
    free(q);
}

void *tb_dbquery_socket(tb_dbquery_t *q)
{
    return q->loop_end;
}

int tb_dbquery_submit(tb_dbquery_t *q, zmq_msg_t *env, size_t nenv, const tb_ctl_request_t *req)
{
    if (nenv > TB_DBQUERY_ENVELOPE_MAX) {
        return TB_EIO;
    }
    job_t job = {.req = *req, .deadline_ns = 0};
    if (req->timeout_ms > 0) {
        job.deadline_ns = tb_time_mono_ns() + (uint64_t)req->timeout_ms * TB_NS_PER_MS;
    }
    zmq_msg_t copy[TB_DBQUERY_ENVELOPE_MAX];
    size_t ncopy = 0;
    for (; ncopy < nenv; ncopy++) {
        zmq_msg_init(&copy[ncopy]);
        if (zmq_msg_copy(&copy[ncopy], &env[ncopy]) != 0) {
            break;
        }
    }
    /* Nothing is sent unless the first frame goes; the rest then follow
     * (an inproc pair whose queue is far deeper than the loop lets the
     * waiting requests grow), so a message is never left unfinished. */
    int rc = ncopy == nenv ? 0 : TB_EIO;
    for (size_t i = 0; i < ncopy; i++) {
        if (rc == 0 &&
            zmq_msg_send(&copy[i], q->loop_end, ZMQ_SNDMORE | (i == 0 ? ZMQ_DONTWAIT : 0)) >= 0) {
            continue;
        }
        rc = TB_EIO;
        zmq_msg_close(&copy[i]);
    }
    if (rc == 0 &&
        zmq_send(q->loop_end, &job, sizeof job, nenv == 0 ? ZMQ_DONTWAIT : 0) != (int)sizeof job) {
        rc = TB_EIO;
    }
    return rc;
}
