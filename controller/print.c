/* print — see print.h. */
#include "print.h"

#include "tb_time.h"

#include <inttypes.h>
#include <string.h>

static json_int_t s_int(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_integer(v)) {
        return json_integer_value(v);
    }
    /* A counter past 2^63 arrives as a real (mpjson.h): saturated. */
    double r = json_is_real(v) ? json_real_value(v) : 0.0;
    return r >= 9.2e18 ? INT64_MAX : r <= -9.2e18 ? INT64_MIN : r == r ? (json_int_t)r : 0;
}

/* a + b, saturated (the counters come from the network). */
static json_int_t s_add(json_int_t a, json_int_t b)
{
    json_int_t sum;
    return __builtin_add_overflow(a, b, &sum) ? (b > 0 ? INT64_MAX : INT64_MIN) : sum;
}

static double s_num(const json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

static const char *s_str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

void tb_print_names(FILE *out, const char *verb, const json_t *list, const json_t *where)
{
    fprintf(out, "%s:", verb);
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *name = json_string_value(v) ? json_string_value(v) : "?";
        fprintf(out, " %s", name);
        if (json_is_object(where)) {
            fprintf(out, " (%s)", s_str(where, name));
        }
    }
    fprintf(out, "%s\n", json_array_size(list) == 0 ? " (none)" : "");
}

static json_int_t s_loss_total(const json_t *loss)
{
    json_int_t sum = 0;
    static const char *const keys[] = {"seq_gaps", "lost_packets", "capture_drops", "bus_drops",
                                       "bad_messages"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        sum = s_add(sum, s_int(loss, keys[i]));
    }
    return sum;
}

/* The database writer's health: two lines, a third with the last error. */
static void s_database(FILE *out, const json_t *db)
{
    if (!json_is_object(db)) {
        fprintf(out, "database   none (no --influx-url)\n");
        return;
    }
    fprintf(out, "database   %s, %s\n", s_str(db, "target"),
            json_is_true(json_object_get(db, "connected")) ? "connected" : "NOT CONNECTED");
    fprintf(out,
            "           %" JSON_INTEGER_FORMAT " points written, %" JSON_INTEGER_FORMAT
            " queued, %" JSON_INTEGER_FORMAT " in the spool (%" JSON_INTEGER_FORMAT
            " bytes), oldest unsent %.0f s; %" JSON_INTEGER_FORMAT " retried, %" JSON_INTEGER_FORMAT
            " rejected, %" JSON_INTEGER_FORMAT " dropped\n",
            s_int(db, "written"), s_add(s_int(db, "queued_points"), s_int(db, "batch_points")),
            s_int(db, "spool_points"), s_int(db, "spool_bytes"), s_num(db, "oldest_unsent_s"),
            s_int(db, "retried"), s_int(db, "rejected"), s_int(db, "dropped"));
    if (s_int(db, "late_packets") > 0) {
        fprintf(out,
                "           %" JSON_INTEGER_FORMAT
                " packets arrived after their second was written (raise --lateness)\n",
                s_int(db, "late_packets"));
    }
    if (s_str(db, "last_error")[0] != '\0') {
        fprintf(out, "           last error %.0f s ago: %s\n", s_num(db, "last_error_age_s"),
                s_str(db, "last_error"));
    }
}

/* A collector's own lines: version, bus, database. endpoint: when several
 * are shown. */
static void s_collector(FILE *out, const char *endpoint, const json_t *part)
{
    const json_t *coll = json_object_get(part, "collector");
    const json_t *bus = json_object_get(coll, "bus");
    if (endpoint != NULL) {
        fprintf(out, "collector  %s: version %s, up %.0f s\n", endpoint, s_str(coll, "version"),
                s_num(coll, "uptime_s"));
    } else {
        fprintf(out, "collector  version %s, up %.0f s, control %s\n", s_str(coll, "version"),
                s_num(coll, "uptime_s"), s_str(coll, "control"));
    }
    fprintf(
        out,
        "bus        %" JSON_INTEGER_FORMAT " messages, %" JSON_INTEGER_FORMAT
        " bad (frames %" JSON_INTEGER_FORMAT ", bodies %" JSON_INTEGER_FORMAT
        ", topic %" JSON_INTEGER_FORMAT ")\n",
        s_int(bus, "messages"),
        s_add(s_add(s_int(bus, "bad_frames"), s_int(bus, "bad_bodies")), s_int(bus, "bad_topic")),
        s_int(bus, "bad_frames"), s_int(bus, "bad_bodies"), s_int(bus, "bad_topic"));
    const json_t *req = json_object_get(coll, "requests");
    if (req != NULL) { /* older collectors do not count them */
        fprintf(out,
                "requests   %" JSON_INTEGER_FORMAT " received, %" JSON_INTEGER_FORMAT
                " malformed, %" JSON_INTEGER_FORMAT " dropped\n",
                s_int(req, "received"), s_int(req, "malformed"), s_int(req, "dropped"));
    }
    s_database(out, json_object_get(part, "database"));
}

void tb_print_status(FILE *out, const json_t *data)
{
    /* Several collectors: "collectors" holds each one's part. */
    const json_t *colls = json_object_get(data, "collectors");
    size_t i;
    const json_t *c;
    if (colls == NULL) {
        s_collector(out, NULL, data);
    }
    json_array_foreach(colls, i, c)
    {
        if (json_is_true(json_object_get(c, "ok"))) {
            s_collector(out, s_str(c, "endpoint"), c);
        } else {
            fprintf(out, "collector  %s: NOT ANSWERING (%s)\n", s_str(c, "endpoint"),
                    s_str(c, "error"));
        }
    }
    const json_t *streams = json_object_get(data, "streams");
    fprintf(out, "\n%-24s %-9s %10s %12s %14s %12s %8s%s\n", "STREAM", "STATE", "PPS NOW",
            "PACKETS", "BYTES", "AVG PPS", "LOSS", colls != NULL ? "  COLLECTOR" : "");
    const json_t *st;
    json_array_foreach(streams, i, st)
    {
        fprintf(out,
                "%-24s %-9s %10.0f %12" JSON_INTEGER_FORMAT " %14" JSON_INTEGER_FORMAT
                " %12.1f %8" JSON_INTEGER_FORMAT "%s%s\n",
                s_str(st, "stream"), s_str(st, "state"), s_num(st, "pps_now"), s_int(st, "packets"),
                s_int(st, "bytes"), s_num(st, "avg_pps"), s_loss_total(json_object_get(st, "loss")),
                colls != NULL ? "  " : "", s_str(st, "collector"));
    }
    if (json_array_size(streams) == 0) {
        fprintf(out, "(no streams started)\n");
        return;
    }
    fprintf(out, "\n%-20s %-24s %-9s %10s %12s %10s\n", "PROBE", "STREAM", "SOURCE", "HEARD",
            "RECEIVED", "DROPS");
    json_array_foreach(streams, i, st)
    {
        size_t j;
        const json_t *p;
        json_array_foreach(json_object_get(st, "probes"), j, p)
        {
            fprintf(out,
                    "%-20s %-24s %-9s %8.1fs %12" JSON_INTEGER_FORMAT " %10" JSON_INTEGER_FORMAT
                    "%s%s\n",
                    s_str(p, "id"), s_str(st, "stream"),
                    json_is_true(json_object_get(p, "silent")) ? "silent"
                                                               : s_str(p, "source_state"),
                    s_num(p, "last_heard_s"), s_int(p, "received"), s_int(p, "capture_drops"),
                    s_str(p, "detail")[0] ? "  " : "", s_str(p, "detail"));
        }
    }
}

/* "addr:port", "[v6addr]:port", just the address when the protocol has no
 * ports, or "-" for non-IP. */
static const char *s_endpoint(char *buf, size_t size, const json_t *o, const char *addr_key,
                              const char *port_key)
{
    const char *addr = s_str(o, addr_key);
    const char *cls = s_str(o, "class");
    int ports = strcmp(cls, "tcp") == 0 || strcmp(cls, "udp") == 0 || s_int(o, port_key) != 0;
    if (addr[0] == '\0') {
        snprintf(buf, size, "-");
    } else if (!ports || strcmp(cls, "icmp") == 0 || strcmp(cls, "icmpv6") == 0) {
        snprintf(buf, size, "%s", addr);
    } else if (strchr(addr, ':') != NULL) {
        snprintf(buf, size, "[%s]:%" JSON_INTEGER_FORMAT, addr, s_int(o, port_key));
    } else {
        snprintf(buf, size, "%s:%" JSON_INTEGER_FORMAT, addr, s_int(o, port_key));
    }
    return buf;
}

/* A column's width grown to fit text, up to that of "[IPv6]:port". */
static int s_widest(int width, const char *text)
{
    size_t n = strlen(text);
    return n > (size_t)width ? (n < 47 ? (int)n : 47) : width;
}

static void s_packet(FILE *out, const char *label, const json_t *p)
{
    if (!json_is_object(p)) {
        fprintf(out, "%-14s -\n", label);
        return;
    }
    fprintf(out, "%-14s %" JSON_INTEGER_FORMAT " bytes at %s  %s", label, s_int(p, "len"),
            s_str(p, "time"), s_str(p, "class"));
    if (s_str(p, "src")[0]) {
        char src[80], dst[80];
        s_endpoint(src, sizeof src, p, "src", "sport");
        s_endpoint(dst, sizeof dst, p, "dst", "dport");
        fprintf(out, " %s -> %s", src, dst);
    }
    fputc('\n', out);
}

void tb_print_stats(FILE *out, const json_t *d)
{
    fprintf(out, "%-14s %s (%s)\n", "stream", s_str(d, "stream"), s_str(d, "state"));
    if (s_str(d, "collector")[0] != '\0') {
        fprintf(out, "%-14s %s\n", "collector", s_str(d, "collector"));
    }
    fprintf(out, "%-14s %" JSON_INTEGER_FORMAT "\n", "packets", s_int(d, "packets"));
    fprintf(out, "%-14s %" JSON_INTEGER_FORMAT "\n", "bytes", s_int(d, "bytes"));
    fprintf(out, "%-14s %s .. %s\n", "capture time", s_str(d, "first_time"), s_str(d, "last_time"));
    fprintf(out, "%-14s %.1f packets/s, %.0f bits/s\n", "average", s_num(d, "avg_pps"),
            s_num(d, "avg_bps"));
    if (s_int(d, "ts_outliers") > 0) {
        fprintf(out,
                "%-14s %" JSON_INTEGER_FORMAT
                " packets with an absurd time (counted at the stream's)\n",
                "ts outliers", s_int(d, "ts_outliers"));
    }
    s_packet(out, "smallest", json_object_get(d, "min_packet"));
    s_packet(out, "largest", json_object_get(d, "max_packet"));
    s_packet(out, "last", json_object_get(d, "last_packet"));

    const json_t *loss = json_object_get(d, "loss");
    fprintf(out,
            "%-14s %" JSON_INTEGER_FORMAT " gaps, %" JSON_INTEGER_FORMAT
            " lost packets, %" JSON_INTEGER_FORMAT " capture drops, %" JSON_INTEGER_FORMAT
            " bus drops, %" JSON_INTEGER_FORMAT " bad messages\n",
            "loss", s_int(loss, "seq_gaps"), s_int(loss, "lost_packets"),
            s_int(loss, "capture_drops"), s_int(loss, "bus_drops"), s_int(loss, "bad_messages"));

    fprintf(out, "\n%-8s %12s %14s\n", "PROTOCOL", "PACKETS", "BYTES");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)json_object_get(d, "protocols"), key, v)
    {
        fprintf(out, "%-8s %12" JSON_INTEGER_FORMAT " %14" JSON_INTEGER_FORMAT "\n", key,
                s_int(v, "packets"), s_int(v, "bytes"));
    }

    fprintf(out, "\n%-4s %-41s %-41s %-6s %10s %12s\n", "RANK", "SOURCE", "DESTINATION", "PROTO",
            "PACKETS", "BYTES");
    size_t i;
    const json_t *f;
    json_array_foreach(json_object_get(d, "top_flows"), i, f)
    {
        char src[80], dst[80];
        s_endpoint(src, sizeof src, f, "src", "sport");
        s_endpoint(dst, sizeof dst, f, "dst", "dport");
        fprintf(out,
                "%-4zu %-41s %-41s %-6s %10" JSON_INTEGER_FORMAT " %12" JSON_INTEGER_FORMAT "\n",
                i + 1, src, dst, s_str(f, "class"), s_int(f, "packets"), s_int(f, "bytes"));
    }
    fprintf(out, "\n%-4s %-41s %10s %12s\n", "RANK", "HOST", "PACKETS", "BYTES");
    json_array_foreach(json_object_get(d, "top_hosts"), i, f)
    {
        fprintf(out, "%-4zu %-41s %10" JSON_INTEGER_FORMAT " %12" JSON_INTEGER_FORMAT "\n", i + 1,
                s_str(f, "addr"), s_int(f, "packets"), s_int(f, "bytes"));
    }
    json_int_t fb = s_int(d, "top_flows_error_bound");
    json_int_t hb = s_int(d, "top_hosts_error_bound");
    if (fb > 0 || hb > 0) {
        fprintf(out,
                "(top counts are estimates: flows high by at most %" JSON_INTEGER_FORMAT
                ", hosts by at most %" JSON_INTEGER_FORMAT " packets)\n",
                fb, hb);
    }
}

/* Append s to the array o[key] (created when missing) unless it is there. */
static void s_add_once(json_t *o, const char *key, const char *s)
{
    json_t *list = json_object_get(o, key);
    if (list == NULL) {
        list = json_array();
        json_object_set_new(o, key, list);
    }
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v)
    {
        if (strcmp(json_string_value(v), s) == 0) {
            return;
        }
    }
    json_array_append_new(list, json_string(s));
}

json_t *tb_status_probes(const json_t *status)
{
    json_t *list = json_array();
    json_t *view = json_pack("{s:o}", "probes", list);
    if (view == NULL) {
        return NULL;
    }
    size_t i, j, k;
    const json_t *st, *p, *have;
    json_array_foreach(json_object_get(status, "streams"), i, st)
    {
        json_array_foreach(json_object_get(st, "probes"), j, p)
        {
            json_t *entry = NULL;
            json_array_foreach(list, k, have)
            {
                if (strcmp(s_str(have, "id"), s_str(p, "id")) == 0) {
                    entry = (json_t *)have;
                }
            }
            if (entry == NULL) {
                entry = json_pack("{s:s, s:[], s:f, s:b, s:I, s:I}", "id", s_str(p, "id"),
                                  "streams", "last_heard_s", s_num(p, "last_heard_s"), "silent", 1,
                                  "received", (json_int_t)0, "capture_drops", (json_int_t)0);
                if (entry == NULL || json_array_append_new(list, entry) != 0) {
                    json_decref(view);
                    return NULL;
                }
            }
            json_array_append_new(json_object_get(entry, "streams"),
                                  json_string(s_str(st, "stream")));
            if (s_str(st, "collector")[0] != '\0') { /* several collectors */
                s_add_once(entry, "collectors", s_str(st, "collector"));
            }
            if (s_num(p, "last_heard_s") < s_num(entry, "last_heard_s")) {
                json_object_set_new(entry, "last_heard_s", json_real(s_num(p, "last_heard_s")));
            }
            if (!json_is_true(json_object_get(p, "silent"))) {
                json_object_set_new(entry, "silent", json_false());
            }
            json_object_set_new(
                entry, "received",
                json_integer(s_add(s_int(entry, "received"), s_int(p, "received"))));
            json_object_set_new(
                entry, "capture_drops",
                json_integer(s_add(s_int(entry, "capture_drops"), s_int(p, "capture_drops"))));
        }
    }
    /* Several collectors: which of them answered. */
    const json_t *c;
    json_array_foreach(json_object_get(status, "collectors"), i, c)
    {
        json_t *colls = json_object_get(view, "collectors");
        if (colls == NULL) {
            colls = json_array();
            json_object_set_new(view, "collectors", colls);
        }
        json_array_append_new(
            colls, json_pack("{s:O?, s:O?, s:O?}", "endpoint", json_object_get(c, "endpoint"), "ok",
                             json_object_get(c, "ok"), "error", json_object_get(c, "error")));
    }
    return view;
}

void tb_print_probes(FILE *out, const json_t *data)
{
    fprintf(out, "%-24s %8s %7s %12s %10s  %s\n", "PROBE", "HEARD", "SILENT", "RECEIVED", "DROPS",
            "STREAMS");
    size_t i, j;
    const json_t *p, *name;
    json_array_foreach(json_object_get(data, "probes"), i, p)
    {
        fprintf(out, "%-24s %7.1fs %7s %12" JSON_INTEGER_FORMAT " %10" JSON_INTEGER_FORMAT " ",
                s_str(p, "id"), s_num(p, "last_heard_s"),
                json_is_true(json_object_get(p, "silent")) ? "yes" : "no", s_int(p, "received"),
                s_int(p, "capture_drops"));
        json_array_foreach(json_object_get(p, "streams"), j, name)
        {
            fprintf(out, " %s", json_string_value(name) ? json_string_value(name) : "?");
        }
        fputc('\n', out);
    }
    if (json_array_size(json_object_get(data, "probes")) == 0) {
        fprintf(out, "(no probe heard on a started stream)\n");
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
        snprintf(buf, size, "%.6g", json_real_value(v));
    } else if (json_is_boolean(v)) {
        snprintf(buf, size, "%s", json_is_true(v) ? "true" : "false");
    } else {
        snprintf(buf, size, "-");
    }
}

#define TABLE_MAX_COLS 64
#define CELL_MAX       128

void tb_print_table(FILE *out, const json_t *columns, const json_t *rows)
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

void tb_print_top(FILE *out, const json_t *d, double pps, double bps, size_t n)
{
    char rate[64];
    if (pps < 0) {
        snprintf(rate, sizeof rate, "measuring...");
    } else {
        snprintf(rate, sizeof rate, "%.0f packets/s, %.3f Mbit/s", pps, bps / 1e6);
    }
    fprintf(out, "%s (%s)  now %s\n", s_str(d, "stream"), s_str(d, "state"), rate);
    fprintf(out,
            "total %" JSON_INTEGER_FORMAT " packets, %" JSON_INTEGER_FORMAT
            " bytes; capture average %.1f packets/s\n",
            s_int(d, "packets"), s_int(d, "bytes"), s_num(d, "avg_pps"));
    const json_t *loss = json_object_get(d, "loss");
    fprintf(out,
            "loss  %" JSON_INTEGER_FORMAT " gaps, %" JSON_INTEGER_FORMAT
            " lost packets, %" JSON_INTEGER_FORMAT " capture drops, %" JSON_INTEGER_FORMAT
            " bus drops\n\n",
            s_int(loss, "seq_gaps"), s_int(loss, "lost_packets"), s_int(loss, "capture_drops"),
            s_int(loss, "bus_drops"));
    double total = (double)s_int(d, "packets");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)json_object_get(d, "protocols"), key, v)
    {
        double share = total > 0 ? (double)s_int(v, "packets") / total : 0.0;
        share = share > 1.0 ? 1.0 : share > 0.0 ? share : 0.0; /* counts from the network */
        char bar[41];
        int w = (int)(share * 40.0 + 0.5);
        memset(bar, '#', (size_t)w);
        bar[w] = '\0';
        fprintf(out, "%-7s %5.1f%% %-40s %12" JSON_INTEGER_FORMAT "\n", key, share * 100.0, bar,
                s_int(v, "packets"));
    }
    /* Address columns as wide as what they show (IPv4 flows fit in 80
     * columns), at most 47 characters; a longer value pushes its row. */
    const json_t *flows = json_object_get(d, "top_flows");
    const json_t *hosts = json_object_get(d, "top_hosts");
    int ws = 6, wd = 11, wh = 4;
    size_t i;
    const json_t *f;
    char src[80], dst[80];
    json_array_foreach(flows, i, f)
    {
        if (i >= n) {
            break;
        }
        ws = s_widest(ws, s_endpoint(src, sizeof src, f, "src", "sport"));
        wd = s_widest(wd, s_endpoint(dst, sizeof dst, f, "dst", "dport"));
    }
    json_array_foreach(hosts, i, f)
    {
        if (i >= n) {
            break;
        }
        wh = s_widest(wh, s_str(f, "addr"));
    }
    fprintf(out, "\n%-4s %-*s %-*s %-6s %10s\n", "TOP", ws, "SOURCE", wd, "DESTINATION", "PROTO",
            "PACKETS");
    json_array_foreach(flows, i, f)
    {
        if (i >= n) {
            break;
        }
        s_endpoint(src, sizeof src, f, "src", "sport");
        s_endpoint(dst, sizeof dst, f, "dst", "dport");
        fprintf(out, "%-4zu %-*s %-*s %-6s %10" JSON_INTEGER_FORMAT "\n", i + 1, ws, src, wd, dst,
                s_str(f, "class"), s_int(f, "packets"));
    }
    fprintf(out, "\n%-4s %-*s %10s %12s\n", "TOP", wh, "HOST", "PACKETS", "BYTES");
    json_array_foreach(hosts, i, f)
    {
        if (i >= n) {
            break;
        }
        fprintf(out, "%-4zu %-*s %10" JSON_INTEGER_FORMAT " %12" JSON_INTEGER_FORMAT "\n", i + 1,
                wh, s_str(f, "addr"), s_int(f, "packets"), s_int(f, "bytes"));
    }
}
