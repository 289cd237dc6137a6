/* control — see control.h.
 *
 * Every request gets exactly one reply; user errors (unknown command, unknown
 * stream, bad name) go back in the reply's "error", not to the log. */
#include "control.h"
#include "report.h"

#include "tb_ctl.h"
#include "tb_err.h"
#include "tb_log.h"
#include "tb_mp.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#define LOG_COMPONENT "control"
#define LOG_SOCKET    "collector" /* what happens on the socket: the loop's lines */

static void s_close_env(tb_collector_t *c)
{
    for (size_t i = 0; i < c->nenv; i++) {
        zmq_msg_close(&c->env[i]);
    }
    c->nenv = 0;
}

/* Send the routing frames in c->env (consumed) and then the reply. Every
 * frame is sent even when one fails, so that the message always ends
 * (ROUTER would join the next reply to an unfinished one). */
static void s_reply(tb_collector_t *c, const void *data, size_t size)
{
    /* ROUTER_MANDATORY: the first frame fails (EAGAIN) when the client's
     * queue is full (it does not read its replies) or (EHOSTUNREACH) when it
     * has gone; the reply is then dropped whole and counted, so a client
     * that never reads holds at most TB_COLL_CTL_SNDHWM replies here. */
    if (c->nenv == 0 || zmq_msg_send(&c->env[0], c->ctl, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        c->ctl_replies_dropped++;
        tb_ratelog(&c->log, TB_LOG_WARN, "control reply dropped: %s (%llu so far)",
                   zmq_strerror(errno), (unsigned long long)c->ctl_replies_dropped);
        s_close_env(c);
        return;
    }
    int failed = 0;
    for (size_t i = 1; i < c->nenv; i++) {
        if (zmq_msg_send(&c->env[i], c->ctl, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&c->env[i]);
            failed = 1;
        }
    }
    c->nenv = 0;
    if (zmq_send(c->ctl, data, size, ZMQ_DONTWAIT) < 0 || failed) {
        tb_log(TB_LOG_WARN, LOG_SOCKET, "control reply failed: %s", zmq_strerror(errno));
    }
}

/* CURVE: what the client of the request being received may do, from the
 * properties the guard gave its connection. The frames that came over the
 * connection carry them; the routing frame ROUTER puts first does not.
 * Without CURVE everybody may act; with it, a request whose key is not
 * known may not. */
static void s_control_role(tb_collector_t *c, zmq_msg_t *m)
{
    const char *role = c->guard != NULL ? zmq_msg_gets(m, TB_GUARD_PROP_ROLE) : NULL;
    if (role == NULL) {
        return;
    }
    const char *key = zmq_msg_gets(m, "User-Id");
    const char *name = zmq_msg_gets(m, TB_GUARD_PROP_NAME);
    c->ctl_act = strcmp(role, "act") == 0;
    snprintf(c->ctl_key, sizeof c->ctl_key, "%.*s (%.*s)", TB_CURVE_KEY_LEN, key ? key : "?",
             TB_CURVE_NAME_MAX, name ? name : "?");
}

/* One control request from ROUTER: routing frames up to and including an
 * empty delimiter (what REQ sends, more frames behind proxies), then one
 * frame of msgpack. A message without that envelope cannot be answered and
 * is dropped; a request of several frames is answered as malformed. */
void tb_control_serve(tb_collector_t *c)
{
    zmq_msg_t body;
    zmq_msg_init(&body);
    size_t nbody = 0;
    int delimited = 0, more = 1, first = 1;
    c->nenv = 0;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, c->ctl, first ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&m);
            break; /* nothing waiting (a message arrives whole or not at all) */
        }
        if (first) {
            c->ctl_received++;
            c->ctl_act = c->guard == NULL;
            c->ctl_key[0] = '\0';
        }
        if (c->ctl_key[0] == '\0') {
            s_control_role(c, &m);
        }
        first = 0;
        more = zmq_msg_more(&m);
        if (!delimited && c->nenv < TB_DBQUERY_ENVELOPE_MAX) {
            delimited = zmq_msg_size(&m) == 0;
            zmq_msg_init(&c->env[c->nenv]);
            zmq_msg_move(&c->env[c->nenv++], &m);
        } else if (delimited && nbody++ == 0) {
            zmq_msg_move(&body, &m);
        }
        zmq_msg_close(&m); /* moved, or a frame not kept */
    }
    if (!delimited) {
        if (c->nenv > 0) {
            c->ctl_dropped++;
            tb_log(TB_LOG_DEBUG, LOG_SOCKET, "control message without an envelope dropped");
        }
        s_close_env(c);
        zmq_msg_close(&body);
        return;
    }
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    /* Several frames: handed over empty, which the decoder refuses. */
    const uint8_t *data = nbody == 1 ? zmq_msg_data(&body) : (const uint8_t *)"";
    size_t size = nbody == 1 ? zmq_msg_size(&body) : 0;
    if (tb_control_handle(c, data, size, &sbuf) == 1) {
        s_close_env(c); /* the query thread has its copy, and answers */
    } else {
        s_reply(c, sbuf.data, sbuf.size);
    }
    msgpack_sbuffer_destroy(&sbuf);
    zmq_msg_close(&body);
}

/* The query thread's answer, behind the routing frames of the client that
 * asked, goes out through ROUTER as it came. */
void tb_control_forward_db(tb_collector_t *c)
{
    int more = 1, first = 1, dropping = 0;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, tb_dbquery_socket(c->dbq), first ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&m);
            if (first) {
                return; /* nothing there */
            }
            break; /* the context is ending */
        }
        more = zmq_msg_more(&m);
        if (!dropping && zmq_msg_send(&m, c->ctl, (more ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0) {
            if (first) {
                /* The client's queue is full or it has gone (s_reply). */
                dropping = 1;
                c->ctl_replies_dropped++;
            } else {
                tb_log(TB_LOG_WARN, LOG_SOCKET, "control reply failed: %s", zmq_strerror(errno));
            }
            zmq_msg_close(&m);
        } else if (dropping) {
            zmq_msg_close(&m);
        }
        first = 0;
    }
    if (c->db_waiting > 0) {
        c->db_waiting--;
    }
}

static void s_error(msgpack_packer *pk, const char *msg)
{
    tb_ctl_reply_begin(pk, msg);
    msgpack_pack_nil(pk);
}

static void s_start(tb_collector_t *c, const tb_ctl_request_t *req, msgpack_packer *pk)
{
    char msg[TB_CTL_ERROR_MAX];
    if (req->nstreams == 0) {
        s_error(pk, "start needs at least one stream");
        return;
    }
    /* All or nothing: check for room before starting any. */
    size_t fresh = 0;
    for (size_t i = 0; i < req->nstreams; i++) {
        fresh += tb_streams_find(c->streams, req->streams[i]) == NULL;
    }
    if (fresh > tb_streams_room(c->streams)) {
        size_t unread = 0;
        for (size_t i = 0; i < c->streams->max; i++) {
            const tb_stream_t *st = &c->streams->slot[i];
            unread += st->in_use && st->state != TB_STREAM_RUNNING && !tb_stream_forgettable(st);
        }
        snprintf(msg, sizeof msg,
                 "cannot start %zu new stream(s): %zu slot(s) free of %zu; %zu ended stream(s) "
                 "hold statistics nobody has read (read them with stats or forget them), or "
                 "raise --max-streams",
                 fresh, tb_streams_room(c->streams), c->cfg.max_streams, unread);
        s_error(pk, msg);
        return;
    }
    /* Ended streams whose statistics were read make room, oldest first;
     * the reply names each (results nobody read are never among them). */
    char forgotten[TB_CTL_MAX_STREAMS][TB_STREAM_MAX + 1];
    size_t nforgotten = 0;
    for (size_t i = 0; i < req->nstreams; i++) {
        int again = 0;
        for (size_t j = 0; j < i && !again; j++) {
            again = strcmp(req->streams[j], req->streams[i]) == 0;
        }
        if (again || tb_streams_find(c->streams, req->streams[i]) != NULL) {
            continue;
        }
        tb_stream_t *victim = tb_streams_victim(c->streams);
        if (victim != NULL) {
            snprintf(forgotten[nforgotten++], sizeof forgotten[0], "%s", victim->name);
            tb_log(TB_LOG_INFO, LOG_COMPONENT, "forgetting ended stream %s to make room",
                   victim->name);
            tb_streams_forget(c->streams, victim);
        }
    }
    for (size_t i = 0; i < req->nstreams; i++) {
        int rc = tb_streams_start(c->streams, req->streams[i]);
        if (rc != 0) {
            snprintf(msg, sizeof msg, "cannot start %s: %s", req->streams[i],
                     rc == TB_ENOMEM ? "out of memory" : tb_strerror(rc));
            s_error(pk, msg);
            return;
        }
    }
    /* A stream no probe offers starts all the same (its probe may come
     * later, and it is subscribed already), but the operator hears of it. */
    size_t nwarn = 0;
    for (size_t i = 0; i < req->nstreams; i++) {
        nwarn += tb_offers_find(c->offers, req->streams[i]) == NULL;
    }
    tb_ctl_reply_begin(pk, NULL);
    msgpack_pack_map(pk, 3);
    tb_mp_pack_cstr(pk, "started");
    msgpack_pack_array(pk, req->nstreams);
    for (size_t i = 0; i < req->nstreams; i++) {
        tb_mp_pack_cstr(pk, req->streams[i]);
    }
    tb_mp_pack_cstr(pk, "forgotten");
    msgpack_pack_array(pk, nforgotten);
    for (size_t i = 0; i < nforgotten; i++) {
        tb_mp_pack_cstr(pk, forgotten[i]);
    }
    tb_mp_pack_cstr(pk, "warnings");
    msgpack_pack_array(pk, nwarn);
    for (size_t i = 0; i < req->nstreams; i++) {
        if (tb_offers_find(c->offers, req->streams[i]) == NULL) {
            snprintf(msg, sizeof msg,
                     "no probe offers '%s' (yet): it shows as waiting until a probe sends it",
                     req->streams[i]);
            tb_mp_pack_cstr(pk, msg);
        }
    }
}

static void s_stop(tb_collector_t *c, const tb_ctl_request_t *req, msgpack_packer *pk)
{
    char msg[TB_CTL_ERROR_MAX];
    for (size_t i = 0; i < req->nstreams; i++) {
        if (tb_streams_find(c->streams, req->streams[i]) == NULL) {
            snprintf(msg, sizeof msg, "unknown stream '%s'", req->streams[i]);
            s_error(pk, msg);
            return;
        }
    }
    tb_ctl_reply_begin(pk, NULL);
    msgpack_pack_map(pk, 1);
    tb_mp_pack_cstr(pk, "stopped");
    if (req->nstreams > 0) {
        msgpack_pack_array(pk, req->nstreams);
        for (size_t i = 0; i < req->nstreams; i++) {
            tb_streams_stop(c->streams, tb_streams_find(c->streams, req->streams[i]));
            tb_mp_pack_cstr(pk, req->streams[i]);
        }
        return;
    }
    /* Every stream still running or finished: count, then list as stopped. */
    size_t n = 0;
    for (size_t i = 0; i < c->streams->max; i++) {
        n += c->streams->slot[i].in_use && c->streams->slot[i].state != TB_STREAM_STOPPED;
    }
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < c->streams->max; i++) {
        tb_stream_t *st = &c->streams->slot[i];
        if (st->in_use && st->state != TB_STREAM_STOPPED) {
            tb_streams_stop(c->streams, st);
            tb_mp_pack_cstr(pk, st->name);
        }
    }
}

/* forget: all or nothing. A stream receiving data is refused (it must be
 * stopped first, so that its end is written); one waiting for its first
 * message (a typo, say) or whose sources all failed is stopped on the way. */
static void s_forget(tb_collector_t *c, const tb_ctl_request_t *req, msgpack_packer *pk)
{
    char msg[TB_CTL_ERROR_MAX];
    if (req->nstreams == 0) {
        s_error(pk, "forget needs at least one stream");
        return;
    }
    for (size_t i = 0; i < req->nstreams; i++) {
        const tb_stream_t *st = tb_streams_find(c->streams, req->streams[i]);
        const char *sender = st != NULL ? tb_stream_sender(st) : NULL;
        if (st == NULL) {
            snprintf(msg, sizeof msg, "unknown stream '%s'", req->streams[i]);
            s_error(pk, msg);
            return;
        }
        if (sender != NULL) {
            snprintf(msg, sizeof msg,
                     "stream '%s' is running (probe %s sends it): stop it first; nothing "
                     "forgotten",
                     st->name, sender);
            s_error(pk, msg);
            return;
        }
    }
    tb_ctl_reply_begin(pk, NULL);
    msgpack_pack_map(pk, 1);
    tb_mp_pack_cstr(pk, "forgotten");
    msgpack_pack_array(pk, req->nstreams);
    for (size_t i = 0; i < req->nstreams; i++) {
        tb_streams_forget(c->streams, tb_streams_find(c->streams, req->streams[i]));
        tb_mp_pack_cstr(pk, req->streams[i]);
    }
}

/* stats: the reply, and the statistics of an ended stream are now read
 * (its slot may be reused). */
static void s_stats(tb_collector_t *c, const tb_ctl_request_t *req, msgpack_packer *pk)
{
    char err[TB_CTL_ERROR_MAX];
    if (req->nstreams != 1) {
        s_error(pk, "stats needs exactly one stream");
        return;
    }
    tb_stream_t *st = tb_streams_find(c->streams, req->streams[0]);
    if (st == NULL) {
        snprintf(err, sizeof err, "unknown stream '%s' (start it first)", req->streams[0]);
        s_error(pk, err);
        return;
    }
    tb_report_stats(c, pk, st);
    /* The final statistics have been read: the slot may now be reused. */
    if (!st->results_read && st->state != TB_STREAM_RUNNING) {
        st->results_read = 1;
        c->streams->dirty = 1; /* the snapshot keeps that it was read */
    }
}

/* db: handed to the query thread with the routing frames in c->env (1: it
 * answers later), or refused here (0: the reply is in pk). */
static int s_db(tb_collector_t *c, const tb_ctl_request_t *req, msgpack_packer *pk)
{
    char err[TB_CTL_ERROR_MAX] = "";
    if (c->dbq == NULL) {
        s_error(pk, "this collector writes to no database (see --influx-url)");
    } else if (!tb_dbquery_valid(req, err, sizeof err)) {
        s_error(pk, err);
    } else if (c->db_waiting >= TB_COLL_DB_WAITING) {
        snprintf(err, sizeof err, "%u database queries are already running or waiting; try again",
                 c->db_waiting);
        s_error(pk, err);
    } else if (tb_dbquery_submit(c->dbq, c->env, c->nenv, req) != 0) {
        s_error(pk, "the database query thread is not answering");
    } else {
        c->db_waiting++;
        return 1;
    }
    return 0;
}

int tb_control_handle(tb_collector_t *c, const uint8_t *buf, size_t len, msgpack_sbuffer *sbuf)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sbuf, msgpack_sbuffer_write);
    tb_ctl_request_t req;
    char err[TB_CTL_ERROR_MAX] = "";
    int rc = tb_ctl_request_decode(buf, len, &req, err, sizeof err);
    if (rc != 0) {
        c->ctl_malformed++;
        tb_log(TB_LOG_DEBUG, LOG_COMPONENT, "bad request: %s", err);
        s_error(&pk, err[0] ? err : "malformed request");
        return 0;
    }
    tb_log(TB_LOG_DEBUG, LOG_COMPONENT, "request %s (%zu stream(s))", req.cmd, req.nstreams);
    /* CURVE: keys from --curve-allow-read may look, not act. */
    if (c->guard != NULL && !c->ctl_act &&
        (strcmp(req.cmd, "start") == 0 || strcmp(req.cmd, "stop") == 0 ||
         strcmp(req.cmd, "forget") == 0)) {
        c->ctl_refused_act++;
        tb_log(TB_LOG_WARN, LOG_COMPONENT, "refused %s from read-only key %s", req.cmd, c->ctl_key);
        snprintf(err, sizeof err,
                 "%s refused: this client's key may only read (status, stats, probes, streams, "
                 "db); keys that may act are in the collector's --curve-allow directory",
                 req.cmd);
        s_error(&pk, err);
        return 0;
    }
    if (strcmp(req.cmd, "start") == 0) {
        s_start(c, &req, &pk);
    } else if (strcmp(req.cmd, "stop") == 0) {
        s_stop(c, &req, &pk);
    } else if (strcmp(req.cmd, "forget") == 0) {
        s_forget(c, &req, &pk);
    } else if (strcmp(req.cmd, "status") == 0) {
        tb_report_status(c, &pk);
    } else if (strcmp(req.cmd, "streams") == 0) {
        tb_report_streams(c, &pk);
    } else if (strcmp(req.cmd, "stats") == 0) {
        s_stats(c, &req, &pk);
    } else if (strcmp(req.cmd, "db") == 0) {
        return s_db(c, &req, &pk);
    } else {
        snprintf(err, sizeof err,
                 "unknown command '%s' (commands: start, stop, forget, status, stats, streams, "
                 "db)",
                 req.cmd);
        s_error(&pk, err);
    }
    return 0;
}
