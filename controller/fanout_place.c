/* fanout_place — see fanout_place.h. */
#include "fanout_place.h"

#include "fanout_ask.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    return tb_fanout_finish(f, ans, out, answered, 0, code, err, errsize);
}

/* A stream no answering collector holds while some collector is silent:
 * err (the silent one's reason) becomes "cannot tell where 'STREAM' lives
 * (REASON); nothing DONE". */
static void s_cannot_tell(char *err, size_t errsize, const char *stream, const char *done)
{
    char why[TB_FANOUT_ERR_MAX];
    snprintf(why, sizeof why, "%s", err);
    snprintf(err, errsize, "cannot tell where '%s' lives (%s); nothing %s", stream, why, done);
}

/* start: a stream held somewhere starts there (on each holder, should
 * there be several); a new one on the collector with room and the fewest
 * running streams. Where a stream lives cannot be known while a collector
 * is silent: then nothing starts. */
json_t *tb_fanout_start(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
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
            s_cannot_tell(err, errsize, req->streams[s],
                          "started; name the collector with --collector");
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
            s_cannot_tell(err, errsize, req->streams[s], verb);
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
json_t *tb_fanout_stop(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
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
json_t *tb_fanout_forget(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
                         size_t errsize)
{
    return s_to_holders(f, req, "forgotten", code, err, errsize);
}
