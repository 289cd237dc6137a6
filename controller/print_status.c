/* print_status — see print_status.h. */
#include "print_status.h"

#include "jfield.h"
#include "print.h"

#include <ctype.h>
#include <string.h>

static json_int_t s_loss_total(const json_t *loss)
{
    json_int_t sum = 0;
    static const char *const keys[] = {"seq_gaps",    "lost_packets", "capture_drops",
                                       "bus_drops",   "bad_messages", "files_skipped",
                                       "frames_lost", "frames_bad"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        sum = tb_jadd(sum, tb_jint(loss, keys[i]));
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
    int tried = tb_jint(db, "requests") > 0 || tb_jstr(db, "last_error")[0] != '\0';
    fprintf(out, "database   %s, %s\n", tb_jstr(db, "target"),
            json_is_true(json_object_get(db, "connected")) ? "connected"
            : tried                                        ? "NOT CONNECTED"
                                                           : "not written to yet");
    fprintf(out,
            "           %" JSON_INTEGER_FORMAT " points written, %" JSON_INTEGER_FORMAT
            " queued, %" JSON_INTEGER_FORMAT " in the spool (%" JSON_INTEGER_FORMAT
            " bytes), oldest unsent %.0f s; %" JSON_INTEGER_FORMAT " retried, %" JSON_INTEGER_FORMAT
            " rejected, %" JSON_INTEGER_FORMAT " dropped\n",
            tb_jint(db, "written"),
            tb_jadd(tb_jint(db, "queued_points"), tb_jint(db, "batch_points")),
            tb_jint(db, "spool_points"), tb_jint(db, "spool_bytes"), tb_jnum(db, "oldest_unsent_s"),
            tb_jint(db, "retried"), tb_jint(db, "rejected"), tb_jint(db, "dropped"));
    if (tb_jint(db, "late_packets") > 0) {
        fprintf(out,
                "           %" JSON_INTEGER_FORMAT
                " packets arrived after their second was written (raise --lateness)\n",
                tb_jint(db, "late_packets"));
    }
    if (tb_jstr(db, "last_error")[0] != '\0') {
        fprintf(out, "           last error %.0f s ago: %s\n", tb_jnum(db, "last_error_age_s"),
                tb_jstr(db, "last_error"));
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
        const char *state = tb_jstr(e, "state");
        char shown[32];
        int well = strcmp(state, "connected") == 0 || strcmp(state, "listening") == 0 ||
                   strcmp(state, "connecting") == 0 || strcmp(state, "handshaking") == 0;
        size_t k = 0;
        for (; state[k] != '\0' && k + 1 < sizeof shown; k++) {
            shown[k] = well ? state[k] : (char)toupper((unsigned char)state[k]);
        }
        shown[k] = '\0';
        fprintf(out, "%-10s %s: %s for %.0f s", tb_jstr(e, "kind"), tb_jstr(e, "endpoint"), shown,
                tb_jnum(e, "since_s"));
        if (!well) {
            fprintf(out, " (since %s), %" JSON_INTEGER_FORMAT " retries", tb_jstr(e, "since_time"),
                    tb_jint(e, "retries"));
        }
        if (strcmp(tb_jstr(e, "kind"), "listen") == 0) {
            fprintf(out, ", %" JSON_INTEGER_FORMAT " peers", tb_jint(e, "peers"));
            if (tb_jint(e, "handshake_failures") > 0) {
                fprintf(out, ", %" JSON_INTEGER_FORMAT " failed handshakes",
                        tb_jint(e, "handshake_failures"));
            }
        }
        fprintf(out, "%s%s\n", tb_jstr(e, "detail")[0] ? ": " : "", tb_jstr(e, "detail"));
    }
}

/* A collector's own lines: version, bus, database. endpoint: when several
 * are shown. */
static void s_collector(FILE *out, const char *endpoint, const json_t *part)
{
    const json_t *coll = json_object_get(part, "collector");
    const json_t *bus = json_object_get(coll, "bus");
    if (endpoint != NULL) {
        fprintf(out, "collector  %s: version %s, up %.0f s\n", endpoint, tb_jstr(coll, "version"),
                tb_jnum(coll, "uptime_s"));
    } else {
        fprintf(out, "collector  version %s, up %.0f s, control %s\n", tb_jstr(coll, "version"),
                tb_jnum(coll, "uptime_s"), tb_jstr(coll, "control"));
    }
    if (json_integer_value(json_object_get(coll, "threads")) > 1) {
        fprintf(out,
                "counting   %" JSON_INTEGER_FORMAT " threads, %" JSON_INTEGER_FORMAT
                " chunks counted beside the loop\n",
                tb_jint(coll, "threads"), tb_jint(coll, "chunks_assisted"));
    }
    fprintf(out,
            "bus        %" JSON_INTEGER_FORMAT " messages, %" JSON_INTEGER_FORMAT
            " bad (frames %" JSON_INTEGER_FORMAT ", bodies %" JSON_INTEGER_FORMAT
            ", topic %" JSON_INTEGER_FORMAT ")\n",
            tb_jint(bus, "messages"),
            tb_jadd(tb_jadd(tb_jint(bus, "bad_frames"), tb_jint(bus, "bad_bodies")),
                    tb_jint(bus, "bad_topic")),
            tb_jint(bus, "bad_frames"), tb_jint(bus, "bad_bodies"), tb_jint(bus, "bad_topic"));
    const json_t *req = json_object_get(coll, "requests");
    if (req != NULL) { /* older collectors do not count them */
        fprintf(out,
                "requests   %" JSON_INTEGER_FORMAT " received, %" JSON_INTEGER_FORMAT
                " malformed, %" JSON_INTEGER_FORMAT " dropped\n",
                tb_jint(req, "received"), tb_jint(req, "malformed"), tb_jint(req, "dropped"));
    }
    const json_t *sec = json_object_get(coll, "security");
    if (json_is_object(sec) && !json_is_true(json_object_get(sec, "curve"))) {
        fprintf(out, "security   no CURVE: bus and control are open to whoever reaches them\n");
    } else if (json_is_object(sec)) {
        const json_t *keys = json_object_get(sec, "keys");
        const json_t *refused = json_object_get(sec, "refused_keys");
        fprintf(out,
                "security   CURVE; keys allowed: %" JSON_INTEGER_FORMAT
                " act, %" JSON_INTEGER_FORMAT " read, %" JSON_INTEGER_FORMAT
                " probes; refused: %" JSON_INTEGER_FORMAT " keys, %" JSON_INTEGER_FORMAT
                " handshakes, %" JSON_INTEGER_FORMAT " read-only requests, %" JSON_INTEGER_FORMAT
                " probe-id messages\n",
                tb_jint(keys, "act"), tb_jint(keys, "read"), tb_jint(keys, "probes"),
                tb_jadd(tb_jint(refused, "control"), tb_jint(refused, "bus")),
                tb_jint(sec, "failed_handshakes"), tb_jint(sec, "refused_read_only"),
                tb_jint(sec, "refused_probe_ids"));
    }
    const json_t *state = json_object_get(coll, "state");
    if (json_is_object(state)) {
        fprintf(out,
                "state      %s: %" JSON_INTEGER_FORMAT " snapshots, %" JSON_INTEGER_FORMAT
                " failed%s%s; %" JSON_INTEGER_FORMAT " streams restored at start\n",
                tb_jstr(state, "dir"), tb_jint(state, "snapshots"), tb_jint(state, "failures"),
                tb_jstr(state, "error")[0] ? ", last: " : "", tb_jstr(state, "error"),
                tb_jint(state, "restored"));
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
            s_collector(out, tb_jstr(c, "endpoint"), c);
        } else {
            fprintf(out, "collector  %s: NOT ANSWERING (%s)\n", tb_jstr(c, "endpoint"),
                    tb_jstr(c, "error"));
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
                tb_jstr(st, "stream"), tb_jstr(st, "state"), tb_jnum(st, "pps_now"),
                tb_jint(st, "packets"), tb_jint(st, "bytes"), tb_jnum(st, "avg_pps"),
                s_loss_total(json_object_get(st, "loss")), colls != NULL ? "  " : "",
                tb_jstr(st, "collector"), tb_jstr(st, "reason")[0] ? "  " : "",
                tb_jstr(st, "reason"));
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
                    tb_jstr(p, "id"), tb_jstr(st, "stream"),
                    json_is_true(json_object_get(p, "silent")) ? "silent"
                                                               : tb_jstr(p, "source_state"),
                    tb_jnum(p, "last_heard_s"), tb_jint(p, "received"), tb_jint(p, "capture_drops"),
                    tb_jstr(p, "detail")[0] ? "  " : "", tb_jstr(p, "detail"));
        }
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
                if (strcmp(tb_jstr(have, "id"), tb_jstr(p, "id")) == 0) {
                    entry = (json_t *)have;
                }
            }
            if (entry == NULL) {
                entry = json_pack("{s:s, s:[], s:f, s:b, s:I, s:I}", "id", tb_jstr(p, "id"),
                                  "streams", "last_heard_s", tb_jnum(p, "last_heard_s"), "silent",
                                  1, "received", (json_int_t)0, "capture_drops", (json_int_t)0);
                if (entry == NULL || json_array_append_new(list, entry) != 0) {
                    json_decref(view);
                    return NULL;
                }
            }
            json_array_append_new(json_object_get(entry, "streams"),
                                  json_string(tb_jstr(st, "stream")));
            if (tb_jstr(st, "collector")[0] != '\0') { /* several collectors */
                s_add_once(entry, "collectors", tb_jstr(st, "collector"));
            }
            if (tb_jnum(p, "last_heard_s") < tb_jnum(entry, "last_heard_s")) {
                json_object_set_new(entry, "last_heard_s", json_real(tb_jnum(p, "last_heard_s")));
            }
            if (!json_is_true(json_object_get(p, "silent"))) {
                json_object_set_new(entry, "silent", json_false());
            }
            json_object_set_new(
                entry, "received",
                json_integer(tb_jadd(tb_jint(entry, "received"), tb_jint(p, "received"))));
            json_object_set_new(entry, "capture_drops",
                                json_integer(tb_jadd(tb_jint(entry, "capture_drops"),
                                                     tb_jint(p, "capture_drops"))));
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
                tb_jstr(p, "id"), tb_jnum(p, "last_heard_s"),
                json_is_true(json_object_get(p, "silent")) ? "yes" : "no", tb_jint(p, "received"),
                tb_jint(p, "capture_drops"));
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

static void s_print_streams(FILE *out, const json_t *data)
{
    fprintf(out, "%-24s %-20s %-6s %-9s %s\n", "STREAM", "PROBE", "KIND", "SOURCE", "MEASURED BY");
    size_t i, j;
    const json_t *e, *by;
    json_array_foreach(json_object_get(data, "streams"), i, e)
    {
        const char *probe = tb_jstr(e, "probe");
        fprintf(out, "%-24s %-20s %-6s %-9s", tb_jstr(e, "stream"), probe[0] ? probe : "-",
                tb_jstr(e, "kind")[0] ? tb_jstr(e, "kind") : "-",
                tb_jstr(e, "source_state")[0] ? tb_jstr(e, "source_state") : "-");
        json_array_foreach(json_object_get(e, "measured_by"), j, by)
        {
            fprintf(out, "%s%s (%s)", j ? ", " : " ", tb_jstr(by, "collector"),
                    tb_jstr(by, "state"));
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
            fprintf(out, "collector %s: NOT ANSWERING (%s)\n", tb_jstr(c, "endpoint"),
                    tb_jstr(c, "error"));
            continue;
        }
        const json_t *o = json_object_get(c, "offers");
        fprintf(out,
                "collector %s: %" JSON_INTEGER_FORMAT " probes (at most %" JSON_INTEGER_FORMAT
                "), %" JSON_INTEGER_FORMAT " offered streams (at most %" JSON_INTEGER_FORMAT
                "); %" JSON_INTEGER_FORMAT " offers, %" JSON_INTEGER_FORMAT
                " bad, refused %" JSON_INTEGER_FORMAT " probes and %" JSON_INTEGER_FORMAT
                " streams, %" JSON_INTEGER_FORMAT " probes expired\n",
                tb_jstr(c, "endpoint"), tb_jint(o, "probes"), tb_jint(o, "max_probes"),
                tb_jint(o, "streams"), tb_jint(o, "max_streams"), tb_jint(o, "received"),
                tb_jint(o, "bad"), tb_jint(o, "refused_probes"), tb_jint(o, "refused_streams"),
                tb_jint(o, "expired"));
    }
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

void tb_print_probes(FILE *out, const json_t *data)
{
    s_on_safe_copy(out, data, s_print_probes);
}

void tb_print_streams(FILE *out, const json_t *data)
{
    s_on_safe_copy(out, data, s_print_streams);
}
