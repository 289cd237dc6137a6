/* fanout — see fanout.h. */
#include "fanout.h"
#include "fanout_ask.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int tb_fanout_add(tb_fanout_t *f, const char *list, char *err, size_t errsize)
{
    size_t added = 0;
    for (const char *p = list;;) {
        p += strspn(p, ", \t");
        size_t len = strcspn(p, ", \t");
        if (len == 0) {
            break;
        }
        /* HOST:PORT is taken as tcp://HOST:PORT. */
        int bare = memmem(p, len, "://", 3) == NULL;
        char ep[TB_ENDPOINT_MAX];
        if (len + (bare ? 6 : 0) >= TB_ENDPOINT_MAX) {
            snprintf(err, errsize, "collector endpoint too long (at most %d bytes)",
                     TB_ENDPOINT_MAX - 1);
            return -1;
        }
        snprintf(ep, sizeof ep, "%s%.*s", bare ? "tcp://" : "", (int)len, p);
        if (strncmp(ep, "tcp://", 6) == 0) {
            const char *host = ep + 6;
            const char *close = host[0] == '[' ? strchr(host, ']') : NULL;
            const char *colon = strrchr(close != NULL ? close : host, ':');
            if (colon == NULL || colon == host || colon[1] == '\0' ||
                strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
                snprintf(err, errsize,
                         "invalid collector endpoint %.*s: needs a host and a port (HOST:PORT, "
                         "tcp://HOST:PORT or ipc://PATH)",
                         (int)len, p);
                return -1;
            }
        }
        added++;
        int dup = 0;
        for (size_t i = 0; i < f->n; i++) {
            dup |= strcmp(f->endpoint[i], ep) == 0;
        }
        if (!dup) {
            if (f->n == TB_FANOUT_MAX) {
                snprintf(err, errsize, "too many collectors (at most %d)", TB_FANOUT_MAX);
                return -1;
            }
            memcpy(f->endpoint[f->n++], ep, sizeof ep);
        }
        p += len;
    }
    if (added == 0) {
        snprintf(err, errsize, "empty collector endpoint");
        return -1;
    }
    return 0;
}

/* start and stop change things (a repeated start would restart a stream); a
 * db query may legitimately take most of the time, and asking again would
 * only queue another one: these are sent once, the rest may be retried. */
static int s_sent_once(const char *cmd)
{
    return strcmp(cmd, "start") == 0 || strcmp(cmd, "stop") == 0 || strcmp(cmd, "db") == 0 ||
           strcmp(cmd, "forget") == 0;
}

/* {"endpoint", "ok", "error"} of an asked collector; with_parts: also
 * the keys of its answer but "streams" (status: the collector's own part). */
static json_t *s_entry(const tb_fanout_t *f, size_t i, const tb_fanout_answer_t *a, int with_parts)
{
    json_t *e =
        json_pack("{s:s, s:b, s:o}", "endpoint", f->endpoint[i], "ok", a->code == TB_CALL_OK,
                  "error", a->code == TB_CALL_OK ? json_null() : json_string(a->err));
    const char *key;
    json_t *v;
    json_object_foreach(with_parts && e != NULL ? a->data : NULL, key, v)
    {
        if (strcmp(key, "streams") != 0 && json_object_get(e, key) == NULL) {
            json_object_set(e, key, v);
        }
    }
    return e;
}

/* Set "collectors" of out from the asked collectors' answers; return out,
 * or NULL (and out released) when memory runs out. */
static json_t *s_with_entries(const tb_fanout_t *f, const tb_fanout_answer_t *ans, json_t *out,
                              int with_parts)
{
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < f->n; i++) {
        if (ans[i].code != TB_FANOUT_NOT_ASKED &&
            json_array_append_new(list, s_entry(f, i, &ans[i], with_parts)) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    if (out == NULL || list == NULL) {
        json_decref(out);
        json_decref(list);
        return NULL;
    }
    if (json_object_set_new(out, "collectors", list) != 0) { /* list released */
        json_decref(out);
        return NULL;
    }
    return out;
}

/* The end of a merged call: out (partial when some collector failed), or
 * NULL with the first failure when none answered. */
static json_t *s_finish(const tb_fanout_t *f, tb_fanout_answer_t *ans, json_t *out, size_t answered,
                        int with_parts, int *code, char *err, size_t errsize)
{
    tb_fanout_failures(f, ans, code, err, errsize);
    out = s_with_entries(f, ans, out, with_parts);
    tb_fanout_answers_free(ans, f->n);
    if (answered == 0 || out == NULL) {
        if (out == NULL && answered != 0) {
            *code = TB_CALL_BADREPLY;
            snprintf(err, errsize, "out of memory");
        }
        json_decref(out);
        return NULL;
    }
    return out;
}

/* status: each collector's own part in its "collectors" entry, the streams
 * of all in one list, each with its "collector". */
static json_t *s_status(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
                        size_t errsize)
{
    tb_fanout_answer_t ans[TB_FANOUT_MAX];
    if ((*code = tb_fanout_ask_all(f, req, f->attempts, ans, err, errsize)) != 0) {
        return NULL;
    }
    json_t *streams = json_array();
    json_t *out = json_pack("{s:o}", "streams", streams);
    size_t answered = 0;
    for (size_t i = 0; out != NULL && i < f->n; i++) {
        if (ans[i].code != TB_CALL_OK) {
            continue;
        }
        answered++;
        size_t k;
        json_t *st;
        json_array_foreach(json_object_get(ans[i].data, "streams"), k, st)
        {
            json_object_set_new(st, "collector", json_string(f->endpoint[i]));
            json_array_append(streams, st);
        }
    }
    return s_finish(f, ans, out, answered, 1, code, err, errsize);
}

/* stats: the collector holding the stream answers. */
static json_t *s_stats(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
                       size_t errsize)
{
    const tb_ctl_request_t *reqs[TB_FANOUT_MAX];
    int pinned = f->pinned >= 0 && strcmp(f->pinned_stream, req->streams[0]) == 0;
    for (size_t i = 0; i < f->n; i++) {
        reqs[i] = !pinned || (int)i == f->pinned ? req : NULL;
    }
    tb_fanout_answer_t ans[TB_FANOUT_MAX];
    if ((*code = tb_fanout_ask(f, reqs, f->attempts, ans, err, errsize)) != 0) {
        return NULL;
    }
    json_t *out = NULL;
    for (size_t i = 0; i < f->n && out == NULL; i++) {
        if (ans[i].code == TB_CALL_OK) {
            out = json_incref(ans[i].data);
            json_object_set_new(out, "collector", json_string(f->endpoint[i]));
            f->pinned = (int)i;
            snprintf(f->pinned_stream, sizeof f->pinned_stream, "%s", req->streams[0]);
        }
    }
    if (out == NULL && pinned && ans[f->pinned].code == TB_CALL_REFUSED) {
        /* The stream is no longer where it was: look for it everywhere. */
        tb_fanout_answers_free(ans, f->n);
        f->pinned = -1;
        return s_stats(f, req, code, err, errsize);
    }
    if (out == NULL) {
        /* A refusal ("unknown stream") only when every collector said so. */
        int refused_all = 1;
        for (size_t i = 0; i < f->n; i++) {
            refused_all &= ans[i].code == TB_FANOUT_NOT_ASKED || ans[i].code == TB_CALL_REFUSED;
        }
        for (size_t i = 0; i < f->n; i++) {
            if (ans[i].code != TB_FANOUT_NOT_ASKED && (refused_all || ans[i].code != TB_CALL_REFUSED)) {
                *code = ans[i].code;
                snprintf(err, errsize, "%s%s",
                         refused_all ? "" : "stream not found where asked: ", ans[i].err);
                break;
            }
        }
    }
    tb_fanout_answers_free(ans, f->n);
    return out;
}

/* Which collectors hold each stream named in req (a bit per collector),
 * how many streams each runs and may run, from their status. Returns the
 * number of collectors that did not answer (the first one's reason in
 * err), or -1 with *code and err set when nothing could be asked. */
typedef struct {
    uint32_t owner[TB_CTL_MAX_STREAMS];
    size_t running[TB_FANOUT_MAX];
    size_t limit[TB_FANOUT_MAX];
    int answered[TB_FANOUT_MAX];
} where_t;

static int s_where(const tb_fanout_t *f, const tb_ctl_request_t *req, where_t *w, int *code,
                   char *err, size_t errsize)
{
    tb_ctl_request_t status;
    memset(&status, 0, sizeof status);
    snprintf(status.cmd, sizeof status.cmd, "status");
    memset(w, 0, sizeof *w);
    tb_fanout_answer_t ans[TB_FANOUT_MAX];
    if ((*code = tb_fanout_ask_all(f, &status, f->attempts, ans, err, errsize)) != 0) {
        return -1;
    }
    for (size_t i = 0; i < f->n; i++) {
        if (ans[i].code != TB_CALL_OK) {
            continue;
        }
        w->answered[i] = 1;
        w->limit[i] = (size_t)json_integer_value(
            json_object_get(json_object_get(ans[i].data, "limits"), "max_streams"));
        size_t k;
        json_t *st;
        json_array_foreach(json_object_get(ans[i].data, "streams"), k, st)
        {
            const char *name = json_string_value(json_object_get(st, "stream"));
            const char *state = json_string_value(json_object_get(st, "state"));
            w->running[i] +=
                state != NULL && (strcmp(state, "running") == 0 || strcmp(state, "waiting") == 0);
            for (size_t s = 0; name != NULL && s < req->nstreams; s++) {
                if (strcmp(name, req->streams[s]) == 0) {
                    w->owner[s] |= 1u << i;
                }
            }
        }
    }
    size_t failed = tb_fanout_failures(f, ans, code, err, errsize);
    tb_fanout_answers_free(ans, f->n);
    return (int)failed;
}

/* Send each collector the streams of req it holds (one request each, once)
 * and merge the names answered under `key` with "collector_of". */
static json_t *s_split(const tb_fanout_t *f, const tb_ctl_request_t *req, const where_t *w,
                       const char *key, int *code, char *err, size_t errsize)
{
    tb_ctl_request_t *sub = calloc(f->n, sizeof *sub);
    const tb_ctl_request_t *reqs[TB_FANOUT_MAX];
    if (sub == NULL) {
        *code = TB_CALL_BADREPLY;
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < f->n; i++) {
        memset(&sub[i], 0, sizeof sub[i]);
        snprintf(sub[i].cmd, sizeof sub[i].cmd, "%s", req->cmd);
        for (size_t s = 0; s < req->nstreams; s++) {
            if (w->owner[s] & (1u << i)) {
                memcpy(sub[i].streams[sub[i].nstreams++], req->streams[s], TB_STREAM_MAX + 1);
            }
        }
        reqs[i] = req->nstreams == 0 || sub[i].nstreams > 0 ? &sub[i] : NULL;
    }
    tb_fanout_answer_t ans[TB_FANOUT_MAX];
    *code = tb_fanout_ask(f, reqs, 1, ans, err, errsize);
    free(sub);
    if (*code != 0) {
        return NULL;
    }
    json_t *names = json_array();
    json_t *where = json_object();
    json_t *warnings = json_array();
    json_t *forgotten = json_array();
    json_t *out = json_pack("{s:o, s:o}", key, names, "collector_of", where);
    size_t answered = 0;
    for (size_t i = 0; out != NULL && i < f->n; i++) {
        if (ans[i].code != TB_CALL_OK) {
            continue;
        }
        answered++;
        size_t k;
        json_t *name;
        json_array_foreach(json_object_get(ans[i].data, key), k, name)
        {
            if (json_is_string(name)) {
                /* Held by several (which tapbus does not do itself): the first
                 * listed names it, as for stats. */
                if (json_object_get(where, json_string_value(name)) == NULL) {
                    json_array_append(names, name);
                    json_object_set_new(where, json_string_value(name),
                                        json_string(f->endpoint[i]));
                }
            }
        }
        json_t *warning;
        json_array_foreach(json_object_get(ans[i].data, "warnings"), k, warning)
        {
            if (json_is_string(warning)) {
                json_array_append(warnings, warning);
            }
        }
        json_array_foreach(json_object_get(ans[i].data, "forgotten"), k, warning)
        {
            if (json_is_string(warning)) {
                json_array_append(forgotten, warning);
            }
        }
    }
    /* start: the warnings of every collector that started something, and
     * the ended streams each forgot to make room. */
    if (out != NULL && strcmp(key, "started") == 0) {
        json_object_set(out, "warnings", warnings);
        json_object_set(out, "forgotten", forgotten);
    }
    json_decref(warnings);
    json_decref(forgotten);
    return s_finish(f, ans, out, answered, 0, code, err, errsize);
}

/* start: a stream held somewhere starts there (on each holder, should
 * there be several); a new one on the collector with room and the fewest
 * running streams. Where a stream lives cannot be known while a collector
 * is silent: then nothing starts. */
static json_t *s_start(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
                       size_t errsize)
{
    where_t w;
    int failed = s_where(f, req, &w, code, err, errsize);
    if (failed < 0) {
        return NULL;
    }
    for (size_t s = 0; s < req->nstreams; s++) {
        if (w.owner[s] != 0) {
            continue;
        }
        if (failed > 0) {
            char why[TB_FANOUT_ERR_MAX];
            snprintf(why, sizeof why, "%s", err);
            snprintf(err, errsize,
                     "cannot tell where '%s' lives (%s); nothing started; name the collector "
                     "with --collector",
                     req->streams[s], why);
            return NULL;
        }
        size_t best = 0;
        for (size_t i = 1; i < f->n; i++) {
            int room_i = w.running[i] < w.limit[i], room_b = w.running[best] < w.limit[best];
            if (room_i > room_b || (room_i == room_b && w.running[i] < w.running[best])) {
                best = i;
            }
        }
        w.owner[s] = 1u << best;
        w.running[best]++;
    }
    *code = TB_CALL_OK;
    return s_split(f, req, &w, "started", code, err, errsize);
}

/* stop and forget: each named stream goes to the collector(s) holding it
 * (`verb` names what was done in the reply: "stopped", "forgotten"); a name
 * no collector holds is refused, and one that may live on a silent
 * collector stops everything, before anything is done. */
static json_t *s_to_holders(tb_fanout_t *f, const tb_ctl_request_t *req, const char *verb,
                            int *code, char *err, size_t errsize)
{
    where_t w;
    int failed = s_where(f, req, &w, code, err, errsize);
    if (failed < 0) {
        return NULL;
    }
    for (size_t s = 0; s < req->nstreams; s++) {
        if (w.owner[s] != 0) {
            continue;
        }
        if (failed > 0) {
            char why[TB_FANOUT_ERR_MAX];
            snprintf(why, sizeof why, "%s", err);
            snprintf(err, errsize, "cannot tell where '%s' lives (%s); nothing %s", req->streams[s],
                     why, verb);
        } else {
            *code = TB_CALL_REFUSED;
            snprintf(err, errsize, "unknown stream '%s'", req->streams[s]);
        }
        return NULL;
    }
    *code = TB_CALL_OK;
    return s_split(f, req, &w, verb, code, err, errsize);
}

/* stop: each stream on the collector(s) holding it; none named: all. */
static json_t *s_stop(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
                      size_t errsize)
{
    if (req->nstreams == 0) {
        where_t w;
        memset(&w, 0, sizeof w);
        return s_split(f, req, &w, "stopped", code, err, errsize);
    }
    return s_to_holders(f, req, "stopped", code, err, errsize);
}

/* forget: each stream on the collector(s) holding it; a name no collector
 * holds is refused before anything is forgotten. */
static json_t *s_forget(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
                        size_t errsize)
{
    return s_to_holders(f, req, "forgotten", code, err, errsize);
}

/* The merged entry of `stream` offered by `probe` (NULL: offered by none),
 * or NULL. */
static json_t *s_offer_entry(json_t *list, const char *stream, const char *probe)
{
    size_t k;
    json_t *e;
    json_array_foreach(list, k, e)
    {
        const char *es = json_string_value(json_object_get(e, "stream"));
        const char *ep = json_string_value(json_object_get(e, "probe"));
        if (es != NULL && strcmp(es, stream) == 0 &&
            (probe == NULL ? ep == NULL : ep != NULL && strcmp(ep, probe) == 0)) {
            return e;
        }
    }
    return NULL;
}

/* streams: what every collector hears offered, one entry per (stream,
 * probe), each with "measured_by": the collectors holding the stream and
 * their state of it. A stream a collector holds that no probe offers to any
 * of them gets an entry with probe nil. Asked of one collector too, so the
 * answer has one shape. */
static json_t *s_streams(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
                         size_t errsize)
{
    tb_fanout_answer_t ans[TB_FANOUT_MAX];
    if ((*code = tb_fanout_ask_all(f, req, f->attempts, ans, err, errsize)) != 0) {
        return NULL;
    }
    json_t *list = json_array();
    json_t *out = json_pack("{s:o}", "streams", list);
    size_t answered = 0;
    size_t k;
    json_t *row;
    /* First what probes offer, once per (stream, probe), freshest kept. */
    for (size_t i = 0; out != NULL && i < f->n; i++) {
        if (ans[i].code != TB_CALL_OK) {
            continue;
        }
        answered++;
        json_array_foreach(json_object_get(ans[i].data, "streams"), k, row)
        {
            const char *stream = json_string_value(json_object_get(row, "stream"));
            const char *probe = json_string_value(json_object_get(row, "probe"));
            if (stream == NULL || probe == NULL) {
                continue;
            }
            json_t *e = s_offer_entry(list, stream, probe);
            double age = json_number_value(json_object_get(row, "offered_s"));
            if (e == NULL) {
                json_array_append_new(list, json_pack("{s:s, s:s, s:O?, s:O?, s:f, s:[]}", "stream",
                                                      stream, "probe", probe, "kind",
                                                      json_object_get(row, "kind"), "source_state",
                                                      json_object_get(row, "source_state"),
                                                      "offered_s", age, "measured_by"));
            } else if (age < json_number_value(json_object_get(e, "offered_s"))) {
                json_object_set(e, "source_state", json_object_get(row, "source_state"));
                json_object_set_new(e, "offered_s", json_real(age));
            }
        }
    }
    /* Then who measures them. */
    for (size_t i = 0; out != NULL && i < f->n; i++) {
        if (ans[i].code != TB_CALL_OK) {
            continue;
        }
        json_array_foreach(json_object_get(ans[i].data, "streams"), k, row)
        {
            const char *stream = json_string_value(json_object_get(row, "stream"));
            json_t *state = json_object_get(row, "state");
            if (stream == NULL || !json_is_string(state)) {
                continue;
            }
            int found = 0;
            size_t j;
            json_t *e;
            json_array_foreach(list, j, e)
            {
                const char *es = json_string_value(json_object_get(e, "stream"));
                if (es == NULL || strcmp(es, stream) != 0) {
                    continue;
                }
                found = 1;
                json_t *by = json_object_get(e, "measured_by");
                size_t m;
                json_t *have;
                int dup = 0;
                json_array_foreach(by, m, have)
                {
                    dup |= strcmp(json_string_value(json_object_get(have, "collector")),
                                  f->endpoint[i]) == 0;
                }
                if (!dup) {
                    json_array_append_new(
                        by, json_pack("{s:s, s:O}", "collector", f->endpoint[i], "state", state));
                }
            }
            if (!found) {
                json_array_append_new(list, json_pack("{s:s, s:n, s:n, s:n, s:n, s:[{s:s, s:O}]}",
                                                      "stream", stream, "probe", "kind",
                                                      "source_state", "offered_s", "measured_by",
                                                      "collector", f->endpoint[i], "state", state));
            }
        }
    }
    return s_finish(f, ans, out, answered, 1, code, err, errsize);
}

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

static int s_column(const json_t *columns, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(columns, i, c)
    {
        if (json_is_string(c) && strcmp(json_string_value(c), name) == 0) {
            return (int)i;
        }
    }
    return -1;
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
        s_column(columns, "time") >= 0 ? s_column(columns, "time") : s_column(columns, "_time");
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
                int at = name != NULL ? s_column(columns, name) : -1;
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
static json_t *s_db(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
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
            if (json_is_string(c) && s_column(columns, json_string_value(c)) < 0) {
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
    return s_finish(f, ans, out, answered, 0, code, err, errsize);
}

json_t *tb_fanout_call(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
                       size_t errsize)
{
    *code = TB_CALL_OK;
    err[0] = '\0';
    if (f->n == 0) {
        *code = TB_CALL_USAGE;
        snprintf(err, errsize, "no collector endpoint");
        return NULL;
    }
    if (f->attempts < 1) {
        f->attempts = 1;
    }
    if (strcmp(req->cmd, "streams") == 0) {
        return s_streams(f, req, code, err, errsize);
    }
    if (f->n == 1) {
        tb_fanout_answer_t a;
        if ((*code = tb_fanout_ask_all(f, req, s_sent_once(req->cmd) ? 1 : f->attempts, &a, err,
                               errsize)) != 0) {
            return NULL;
        }
        *code = a.code;
        snprintf(err, errsize, "%s", a.err);
        return a.data;
    }
    if (strcmp(req->cmd, "status") == 0) {
        return s_status(f, req, code, err, errsize);
    }
    if (strcmp(req->cmd, "stats") == 0 && req->nstreams == 1) {
        return s_stats(f, req, code, err, errsize);
    }
    if (strcmp(req->cmd, "start") == 0) {
        return s_start(f, req, code, err, errsize);
    }
    if (strcmp(req->cmd, "stop") == 0) {
        return s_stop(f, req, code, err, errsize);
    }
    if (strcmp(req->cmd, "db") == 0) {
        return s_db(f, req, code, err, errsize);
    }
    if (strcmp(req->cmd, "forget") == 0 && req->nstreams > 0) {
        return s_forget(f, req, code, err, errsize);
    }
    *code = TB_CALL_USAGE;
    snprintf(err, errsize, "'%s' cannot be sent to several collectors", req->cmd);
    return NULL;
}
