/* fanout — see fanout.h. */
#include "fanout.h"

#include "fanout_ask.h"
#include "fanout_db.h"
#include "fanout_place.h"
#include "tb_err.h"

#include <stdio.h>
#include <string.h>

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
            return TB_ELIMIT;
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
                return TB_EINVAL;
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
                return TB_ELIMIT;
            }
            memcpy(f->endpoint[f->n++], ep, sizeof ep);
        }
        p += len;
    }
    if (added == 0) {
        snprintf(err, errsize, "empty collector endpoint");
        return TB_EINVAL;
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
    return tb_fanout_finish(f, ans, out, answered, 1, code, err, errsize);
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
            if (ans[i].code != TB_FANOUT_NOT_ASKED &&
                (refused_all || ans[i].code != TB_CALL_REFUSED)) {
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
    return tb_fanout_finish(f, ans, out, answered, 1, code, err, errsize);
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
        return tb_fanout_start(f, req, code, err, errsize);
    }
    if (strcmp(req->cmd, "stop") == 0) {
        return tb_fanout_stop(f, req, code, err, errsize);
    }
    if (strcmp(req->cmd, "db") == 0) {
        return tb_fanout_db(f, req, code, err, errsize);
    }
    if (strcmp(req->cmd, "forget") == 0 && req->nstreams > 0) {
        return tb_fanout_forget(f, req, code, err, errsize);
    }
    *code = TB_CALL_USAGE;
    snprintf(err, errsize, "'%s' cannot be sent to several collectors", req->cmd);
    return NULL;
}
