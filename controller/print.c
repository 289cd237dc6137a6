/* print — see print.h. */
#include "print.h"

#include "tb_time.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
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
            fprintf(out, " (%s)", s_str(where, name));
        }
    }
    fprintf(out, "%s\n", json_array_size(list) == 0 ? " (none)" : "");
}

/* The measurement frames a DPMI stream lost, on a line of their own indented
 * by indent spaces (only dpmi sources have frames). */
static void s_frames_lost(FILE *out, const json_t *loss, int indent)
{
    json_int_t lost = s_int(loss, "frames_lost"), bad = s_int(loss, "frames_bad");
    if (lost == 0 && bad == 0) {
        return;
    }
    fprintf(out, "%*s%" JSON_INTEGER_FORMAT " measurement frames lost, %" JSON_INTEGER_FORMAT
                 " bad frames dropped\n",
            indent, "", lost, bad);
}

static json_int_t s_loss_total(const json_t *loss)
{
    json_int_t sum = 0;
    static const char *const keys[] = {"seq_gaps",     "lost_packets",  "capture_drops",
                                       "bus_drops",    "bad_messages",  "files_skipped",
                                       "frames_lost",  "frames_bad"};
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
    /* "connected" is set by the first write the database accepts: before
     * any attempt (no data yet) nothing is known to be wrong. */
    int tried = s_int(db, "requests") > 0 || s_str(db, "last_error")[0] != '\0';
    fprintf(out, "database   %s, %s\n", s_str(db, "target"),
            json_is_true(json_object_get(db, "connected")) ? "connected"
            : tried                                        ? "NOT CONNECTED"
                                                           : "not written to yet");
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

/* A line per bus endpoint (--probe, --listen): its state, for how long,
 * and what went wrong; a state that is not well in capitals. */
static void s_endpoints(FILE *out, const json_t *coll)
{
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(coll, "endpoints"), i, e)
    {
        const char *state = s_str(e, "state");
        char shown[32];
        int well = strcmp(state, "connected") == 0 || strcmp(state, "listening") == 0 ||
                   strcmp(state, "connecting") == 0 || strcmp(state, "handshaking") == 0;
        size_t k = 0;
        for (; state[k] != '\0' && k + 1 < sizeof shown; k++) {
            shown[k] = well ? state[k] : (char)toupper((unsigned char)state[k]);
        }
        shown[k] = '\0';
        fprintf(out, "%-10s %s: %s for %.0f s", s_str(e, "kind"), s_str(e, "endpoint"), shown,
                s_num(e, "since_s"));
        if (!well) {
            fprintf(out, " (since %s), %" JSON_INTEGER_FORMAT " retries", s_str(e, "since_time"),
                    s_int(e, "retries"));
        }
        if (strcmp(s_str(e, "kind"), "listen") == 0) {
            fprintf(out, ", %" JSON_INTEGER_FORMAT " peers", s_int(e, "peers"));
            if (s_int(e, "handshake_failures") > 0) {
                fprintf(out, ", %" JSON_INTEGER_FORMAT " failed handshakes",
                        s_int(e, "handshake_failures"));
            }
        }
        fprintf(out, "%s%s\n", s_str(e, "detail")[0] ? ": " : "", s_str(e, "detail"));
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
    const json_t *sec = json_object_get(coll, "security");
    if (json_is_object(sec) && !json_is_true(json_object_get(sec, "curve"))) {
        fprintf(out, "security   no CURVE: bus and control are open to whoever reaches them\n");
    } else if (json_is_object(sec)) {
        const json_t *keys = json_object_get(sec, "keys");
        const json_t *refused = json_object_get(sec, "refused_keys");
        fprintf(out,
                "security   CURVE; keys allowed: %" JSON_INTEGER_FORMAT " act, %" JSON_INTEGER_FORMAT
                " read, %" JSON_INTEGER_FORMAT " probes; refused: %" JSON_INTEGER_FORMAT
                " keys, %" JSON_INTEGER_FORMAT " handshakes, %" JSON_INTEGER_FORMAT
                " read-only requests, %" JSON_INTEGER_FORMAT " probe-id messages\n",
                s_int(keys, "act"), s_int(keys, "read"), s_int(keys, "probes"),
                s_add(s_int(refused, "control"), s_int(refused, "bus")),
                s_int(sec, "failed_handshakes"), s_int(sec, "refused_read_only"),
                s_int(sec, "refused_probe_ids"));
    }
    const json_t *state = json_object_get(coll, "state");
    if (json_is_object(state)) {
        fprintf(out,
                "state      %s: %" JSON_INTEGER_FORMAT " snapshots, %" JSON_INTEGER_FORMAT
                " failed%s%s; %" JSON_INTEGER_FORMAT " streams restored at start\n",
                s_str(state, "dir"), s_int(state, "snapshots"), s_int(state, "failures"),
                s_str(state, "error")[0] ? ", last: " : "", s_str(state, "error"),
                s_int(state, "restored"));
    }
    s_endpoints(out, coll);
    s_database(out, json_object_get(part, "database"));
}

static void s_print_status(FILE *out, const json_t *data)
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
    fprintf(out, "\n%-24s %-9s %10s %12s %14s %12s %8s%s  %s\n", "STREAM", "STATE", "PPS NOW",
            "PACKETS", "BYTES", "AVG PPS", "LOSS", colls != NULL ? "  COLLECTOR" : "", "REASON");
    const json_t *st;
    json_array_foreach(streams, i, st)
    {
        fprintf(out,
                "%-24s %-9s %10.0f %12" JSON_INTEGER_FORMAT " %14" JSON_INTEGER_FORMAT
                " %12.1f %8" JSON_INTEGER_FORMAT "%s%s%s%s\n",
                s_str(st, "stream"), s_str(st, "state"), s_num(st, "pps_now"), s_int(st, "packets"),
                s_int(st, "bytes"), s_num(st, "avg_pps"), s_loss_total(json_object_get(st, "loss")),
                colls != NULL ? "  " : "", s_str(st, "collector"),
                s_str(st, "reason")[0] ? "  " : "", s_str(st, "reason"));
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

/* The breakdown by DPMI measurement point and capture interface, when the
 * stream has one. */
static void s_print_points(FILE *out, const json_t *d)
{
    const json_t *points = json_object_get(d, "points");
    if (!json_is_array(points)) {
        return;
    }
    fprintf(out, "\n%-8s %-8s %12s %14s\n", "MP", "CI", "PACKETS", "BYTES");
    size_t i;
    const json_t *p;
    json_array_foreach(points, i, p)
    {
        fprintf(out, "%-8s %-8s %12" JSON_INTEGER_FORMAT " %14" JSON_INTEGER_FORMAT "\n",
                s_str(p, "mp"), s_str(p, "ci"), s_int(p, "packets"), s_int(p, "bytes"));
    }
    const json_t *over = json_object_get(d, "points_overflow");
    if (s_int(over, "packets") > 0) {
        fprintf(out, "%-17s %12" JSON_INTEGER_FORMAT " %14" JSON_INTEGER_FORMAT "\n",
                "(more points)", s_int(over, "packets"), s_int(over, "bytes"));
    }
    const json_t *unnamed = json_object_get(d, "points_unnamed");
    if (s_int(unnamed, "packets") > 0) {
        fprintf(out, "%-17s %12" JSON_INTEGER_FORMAT " %14" JSON_INTEGER_FORMAT "\n", "(no point)",
                s_int(unnamed, "packets"), s_int(unnamed, "bytes"));
    }
}

static void s_print_stats(FILE *out, const json_t *d)
{
    fprintf(out, "%-14s %s (%s)\n", "stream", s_str(d, "stream"), s_str(d, "state"));
    if (s_str(d, "reason")[0] != '\0') {
        fprintf(out, "%-14s %s\n", "reason", s_str(d, "reason"));
    }
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
            " bus drops, %" JSON_INTEGER_FORMAT " bad messages, %" JSON_INTEGER_FORMAT
            " files skipped\n",
            "loss", s_int(loss, "seq_gaps"), s_int(loss, "lost_packets"),
            s_int(loss, "capture_drops"), s_int(loss, "bus_drops"), s_int(loss, "bad_messages"),
            s_int(loss, "files_skipped"));
    s_frames_lost(out, loss, 15);

    fprintf(out, "\n%-8s %12s %14s\n", "PROTOCOL", "PACKETS", "BYTES");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)json_object_get(d, "protocols"), key, v)
    {
        fprintf(out, "%-8s %12" JSON_INTEGER_FORMAT " %14" JSON_INTEGER_FORMAT "\n", key,
                s_int(v, "packets"), s_int(v, "bytes"));
    }

    s_print_points(out, d);

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

static void s_print_probes(FILE *out, const json_t *data)
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

static void s_print_streams(FILE *out, const json_t *data)
{
    fprintf(out, "%-24s %-20s %-6s %-9s %s\n", "STREAM", "PROBE", "KIND", "SOURCE", "MEASURED BY");
    size_t i, j;
    const json_t *e, *by;
    json_array_foreach(json_object_get(data, "streams"), i, e)
    {
        const char *probe = s_str(e, "probe");
        fprintf(out, "%-24s %-20s %-6s %-9s", s_str(e, "stream"), probe[0] ? probe : "-",
                s_str(e, "kind")[0] ? s_str(e, "kind") : "-",
                s_str(e, "source_state")[0] ? s_str(e, "source_state") : "-");
        json_array_foreach(json_object_get(e, "measured_by"), j, by)
        {
            fprintf(out, "%s%s (%s)", j ? ", " : " ", s_str(by, "collector"), s_str(by, "state"));
        }
        fprintf(out, "%s\n", json_array_size(json_object_get(e, "measured_by")) == 0 ? " -" : "");
    }
    if (json_array_size(json_object_get(data, "streams")) == 0) {
        fprintf(out, "(no probe offers a stream)\n");
    }
    const json_t *c;
    json_array_foreach(json_object_get(data, "collectors"), i, c)
    {
        if (!json_is_true(json_object_get(c, "ok"))) {
            fprintf(out, "collector %s: NOT ANSWERING (%s)\n", s_str(c, "endpoint"),
                    s_str(c, "error"));
            continue;
        }
        const json_t *o = json_object_get(c, "offers");
        fprintf(out,
                "collector %s: %" JSON_INTEGER_FORMAT " probes (at most %" JSON_INTEGER_FORMAT
                "), %" JSON_INTEGER_FORMAT " offered streams (at most %" JSON_INTEGER_FORMAT
                "); %" JSON_INTEGER_FORMAT " offers, %" JSON_INTEGER_FORMAT
                " bad, refused %" JSON_INTEGER_FORMAT " probes and %" JSON_INTEGER_FORMAT
                " streams, %" JSON_INTEGER_FORMAT " probes expired\n",
                s_str(c, "endpoint"), s_int(o, "probes"), s_int(o, "max_probes"),
                s_int(o, "streams"), s_int(o, "max_streams"), s_int(o, "received"), s_int(o, "bad"),
                s_int(o, "refused_probes"), s_int(o, "refused_streams"), s_int(o, "expired"));
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

static void s_print_top(FILE *out, const json_t *d, double pps, double bps, size_t n)
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
            " bus drops",
            s_int(loss, "seq_gaps"), s_int(loss, "lost_packets"), s_int(loss, "capture_drops"),
            s_int(loss, "bus_drops"));
    if (s_int(loss, "files_skipped") > 0) { /* only file and directory sources skip files */
        fprintf(out, ", %" JSON_INTEGER_FORMAT " files skipped", s_int(loss, "files_skipped"));
    }
    fputs("\n", out);
    s_frames_lost(out, loss, 6);
    fputs("\n", out);
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

/* ---- the public printers: on printable copies ---- */

void tb_print_names(FILE *out, const char *verb, const json_t *list, const json_t *where)
{
    json_t *l = tb_print_safe(list), *w = tb_print_safe(where);
    s_print_names(out, verb, l, w);
    json_decref(l);
    json_decref(w);
}

/* Print a printable copy of data with print. */
static void s_on_safe_copy(FILE *out, const json_t *data, void (*print)(FILE *, const json_t *))
{
    json_t *d = tb_print_safe(data);
    print(out, d);
    json_decref(d);
}

void tb_print_status(FILE *out, const json_t *data)
{
    s_on_safe_copy(out, data, s_print_status);
}

void tb_print_stats(FILE *out, const json_t *data)
{
    s_on_safe_copy(out, data, s_print_stats);
}

void tb_print_probes(FILE *out, const json_t *data)
{
    s_on_safe_copy(out, data, s_print_probes);
}

void tb_print_streams(FILE *out, const json_t *data)
{
    s_on_safe_copy(out, data, s_print_streams);
}

/* The index of the column named name, -1 if none. */
static int s_column(const json_t *columns, const char *name)
{
    size_t i;
    const json_t *v;
    json_array_foreach(columns, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), name) == 0) {
            return (int)i;
        }
    }
    return -1;
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
    int rank = s_column(columns, "rank");
    int t = s_column(columns, "time") >= 0 ? s_column(columns, "time") : s_column(columns, "_time");
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

void tb_print_top(FILE *out, const json_t *stats, double pps, double bps, size_t n)
{
    json_t *d = tb_print_safe(stats);
    s_print_top(out, d, pps, bps, n);
    json_decref(d);
}
