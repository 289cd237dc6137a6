/* dbquery — see dbquery.h: the query thread, the hand-over from the
 * collector's loop and back. The queries' text and the answers' parsing,
 * pure functions, are dbquery_codec.c. */
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
            char *save = NULL, *f[TB_DBQUERY_CSV_MAX_COLS];
            int col = -1;
            for (char *line = strtok_r(body, "\r\n", &save); line != NULL;
                 line = strtok_r(NULL, "\r\n", &save)) {
                if (line[0] == '#') {
                    continue;
                }
                size_t n = tb_dbquery_csv_split(line, f, TB_DBQUERY_CSV_MAX_COLS);
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
        tb_dbquery_pack_error(&pk, msg);
    } else if (points && tb_dbquery_no_rows(tb_influx_version(q->ix) == 2, body ? body : "", len) &&
               s_has_measurement(q, req->args[1]) == 0) {
        /* Nothing at all under that name, not merely no point of the
         * stream asked for: say so rather than show an empty table. */
        char msg[TB_CTL_ERROR_MAX];
        snprintf(msg, sizeof msg,
                 "unknown measurement '%.64s' (tapbusctl db lists those the database holds)",
                 req->args[1]);
        tb_dbquery_pack_error(&pk, msg);
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
            tb_dbquery_pack_error(&pk, msg);
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
