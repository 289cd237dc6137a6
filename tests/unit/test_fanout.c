/* test_fanout — tapbusctl's commands to several collectors
 * (controller/fanout.c), against fake collectors on a real ZeroMQ bus: REP
 * sockets in threads, each holding a list of streams and answering status,
 * start and stop as a collector does (docs/control-protocol.md). Checked:
 * status merges every collector's streams, each with its collector; start
 * places a new stream on the collector with room and the fewest running
 * streams, and a known stream where it lives; stop goes to the holder and
 * refuses an unknown name; a silent collector makes start refuse to guess
 * and status answer partly, with the reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fanout.h"
#include "tb_ctl.h"
#include "tb_mp.h"
#include "tb_test.h"

#include <msgpack.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define STREAMS_MAX 16

typedef struct {
    char endpoint[300];
    size_t max_streams;
    size_t n;
    char name[STREAMS_MAX][TB_STREAM_MAX + 1];
    char state[STREAMS_MAX][16];
    char last_cmd[32];   /* the last command that changed something */
    char last_stream[TB_STREAM_MAX + 1];
    void *zctx;
    pthread_t thread;
    volatile int stop;
} fake_t;

static void s_reply(fake_t *fk, const tb_ctl_request_t *req, msgpack_packer *pk)
{
    if (strcmp(req->cmd, "status") == 0) {
        tb_ctl_reply_begin(pk, NULL);
        msgpack_pack_map(pk, 2);
        tb_mp_pack_cstr(pk, "streams");
        msgpack_pack_array(pk, fk->n);
        for (size_t i = 0; i < fk->n; i++) {
            msgpack_pack_map(pk, 2);
            tb_mp_kv_str(pk, "stream", fk->name[i]);
            tb_mp_kv_str(pk, "state", fk->state[i]);
        }
        tb_mp_pack_cstr(pk, "limits");
        msgpack_pack_map(pk, 1);
        tb_mp_kv_u64(pk, "max_streams", fk->max_streams);
        return;
    }
    const char *verb = strcmp(req->cmd, "start") == 0 ? "started" : "stopped";
    snprintf(fk->last_cmd, sizeof fk->last_cmd, "%s", req->cmd);
    tb_ctl_reply_begin(pk, NULL);
    msgpack_pack_map(pk, strcmp(verb, "started") == 0 ? 3 : 1);
    tb_mp_pack_cstr(pk, verb);
    msgpack_pack_array(pk, req->nstreams);
    for (size_t s = 0; s < req->nstreams; s++) {
        snprintf(fk->last_stream, sizeof fk->last_stream, "%s", req->streams[s]);
        tb_mp_pack_cstr(pk, req->streams[s]);
        size_t i = 0;
        while (i < fk->n && strcmp(fk->name[i], req->streams[s]) != 0) {
            i++;
        }
        if (i == fk->n && fk->n < STREAMS_MAX) {
            snprintf(fk->name[fk->n++], sizeof fk->name[0], "%s", req->streams[s]);
        }
        snprintf(fk->state[i], sizeof fk->state[0], "%s",
                 strcmp(verb, "started") == 0 ? "running" : "stopped");
    }
    if (strcmp(verb, "started") == 0) {
        tb_mp_pack_cstr(pk, "warnings");
        msgpack_pack_array(pk, 0);
        tb_mp_pack_cstr(pk, "forgotten");
        msgpack_pack_array(pk, 0);
    }
}

static void *s_serve(void *arg)
{
    fake_t *fk = arg;
    void *rep = zmq_socket(fk->zctx, ZMQ_REP);
    int timeo = 50, linger = 0;
    zmq_setsockopt(rep, ZMQ_RCVTIMEO, &timeo, sizeof timeo);
    zmq_setsockopt(rep, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(rep, fk->endpoint) != 0) {
        zmq_close(rep);
        return NULL;
    }
    while (!fk->stop) {
        uint8_t buf[4096];
        int n = zmq_recv(rep, buf, sizeof buf, 0);
        if (n < 0) {
            continue;
        }
        tb_ctl_request_t req;
        char err[128];
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        if (tb_ctl_request_decode(buf, (size_t)n, &req, err, sizeof err) == 0) {
            s_reply(fk, &req, &pk);
        } else {
            tb_ctl_reply_begin(&pk, err);
            msgpack_pack_nil(&pk);
        }
        zmq_send(rep, sb.data, sb.size, 0);
        msgpack_sbuffer_destroy(&sb);
    }
    zmq_close(rep);
    return NULL;
}

typedef struct {
    char dir[256];
    void *zctx;
    fake_t fk[2];
    tb_fanout_t f;
} fixture_t;

static int s_setup(void **state)
{
    fixture_t *x = calloc(1, sizeof *x);
    if (x == NULL || tb_test_tmpdir(x->dir, sizeof x->dir, "fanout") != 0) {
        free(x);
        return -1;
    }
    x->zctx = zmq_ctx_new();
    char list[700];
    for (int i = 0; i < 2; i++) {
        fake_t *fk = &x->fk[i];
        snprintf(fk->endpoint, sizeof fk->endpoint, "ipc://%s/c%d", x->dir, i);
        fk->zctx = x->zctx;
        fk->max_streams = 4;
    }
    snprintf(list, sizeof list, "%s,%s", x->fk[0].endpoint, x->fk[1].endpoint);
    x->f.timeout_ms = 1500;
    x->f.attempts = 1;
    x->f.pinned = -1;
    char err[128];
    if (tb_fanout_add(&x->f, list, err, sizeof err) != 0) {
        return -1;
    }
    *state = x;
    return 0;
}

static void s_run_fakes(fixture_t *x, int n)
{
    for (int i = 0; i < n; i++) {
        assert_int_equal(pthread_create(&x->fk[i].thread, NULL, s_serve, &x->fk[i]), 0);
    }
}

static int s_teardown(void **state)
{
    fixture_t *x = *state;
    for (int i = 0; i < 2; i++) {
        x->fk[i].stop = 1;
        if (x->fk[i].thread) {
            pthread_join(x->fk[i].thread, NULL);
        }
    }
    zmq_ctx_term(x->zctx);
    tb_test_rmtree(x->dir);
    free(x);
    return 0;
}

static void s_hold(fake_t *fk, const char *name, const char *state)
{
    snprintf(fk->name[fk->n], sizeof fk->name[0], "%s", name);
    snprintf(fk->state[fk->n++], sizeof fk->state[0], "%s", state);
}

static json_t *s_call(fixture_t *x, const char *cmd, const char *stream, int *code, char *err)
{
    tb_ctl_request_t req;
    memset(&req, 0, sizeof req);
    snprintf(req.cmd, sizeof req.cmd, "%s", cmd);
    if (stream != NULL) {
        assert_int_equal(tb_ctl_request_add_stream(&req, stream), 0);
    }
    err[0] = '\0';
    return tb_fanout_call(&x->f, &req, code, err, 256);
}

static void test_status_merges_every_collector(void **state)
{
    fixture_t *x = *state;
    s_hold(&x->fk[0], "a", "running");
    s_hold(&x->fk[1], "b", "finished");
    s_run_fakes(x, 2);
    int code;
    char err[256];
    json_t *d = s_call(x, "status", NULL, &code, err);
    assert_int_equal(code, TB_CALL_OK);
    assert_non_null(d);
    json_t *streams = json_object_get(d, "streams");
    assert_int_equal(json_array_size(streams), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *st = json_array_get(streams, i);
        const char *name = json_string_value(json_object_get(st, "stream"));
        const char *by = json_string_value(json_object_get(st, "collector"));
        assert_non_null(name);
        assert_string_equal(by, x->fk[strcmp(name, "a") == 0 ? 0 : 1].endpoint);
    }
    assert_int_equal(json_array_size(json_object_get(d, "collectors")), 2);
    json_decref(d);
}

static void test_start_places_new_and_known_streams(void **state)
{
    fixture_t *x = *state;
    s_hold(&x->fk[0], "a1", "running");
    s_hold(&x->fk[0], "a2", "running");
    s_hold(&x->fk[1], "b1", "running");
    s_hold(&x->fk[1], "old", "stopped");
    s_run_fakes(x, 2);
    int code;
    char err[256];
    /* New: the collector with the fewest running streams (b: 1 against 2). */
    json_t *d = s_call(x, "start", "new", &code, err);
    assert_int_equal(code, TB_CALL_OK);
    assert_string_equal(json_string_value(json_object_get(json_object_get(d, "collector_of"),
                                                          "new")),
                        x->fk[1].endpoint);
    json_decref(d);
    assert_string_equal(x->fk[1].last_stream, "new");
    assert_string_equal(x->fk[0].last_cmd, "");
    /* A stream a collector holds starts there, whatever the counts. */
    d = s_call(x, "start", "old", &code, err);
    assert_int_equal(code, TB_CALL_OK);
    assert_string_equal(json_string_value(json_object_get(json_object_get(d, "collector_of"),
                                                          "old")),
                        x->fk[1].endpoint);
    json_decref(d);
    /* Room first: b is full (4 of 4), a has room though it runs more. */
    s_hold(&x->fk[1], "b2", "running");
    x->fk[0].max_streams = 8;
    d = s_call(x, "start", "next", &code, err);
    assert_int_equal(code, TB_CALL_OK);
    assert_string_equal(json_string_value(json_object_get(json_object_get(d, "collector_of"),
                                                          "next")),
                        x->fk[0].endpoint);
    json_decref(d);
}

static void test_stop_goes_to_the_holder(void **state)
{
    fixture_t *x = *state;
    s_hold(&x->fk[1], "b", "running");
    s_run_fakes(x, 2);
    int code;
    char err[256];
    json_t *d = s_call(x, "stop", "b", &code, err);
    assert_int_equal(code, TB_CALL_OK);
    json_decref(d);
    assert_string_equal(x->fk[1].last_cmd, "stop");
    assert_string_equal(x->fk[0].last_cmd, "");
    d = s_call(x, "stop", "nosuch", &code, err);
    assert_null(d);
    assert_int_equal(code, TB_CALL_REFUSED);
    assert_non_null(strstr(err, "unknown stream 'nosuch'"));
}

static void test_silent_collector(void **state)
{
    fixture_t *x = *state;
    s_hold(&x->fk[0], "a", "running");
    s_run_fakes(x, 1); /* the second never answers */
    int code;
    char err[256];
    json_t *d = s_call(x, "start", "new", &code, err);
    assert_null(d);
    assert_int_not_equal(code, TB_CALL_OK);
    assert_non_null(strstr(err, "cannot tell where 'new' lives"));
    assert_string_equal(x->fk[0].last_cmd, ""); /* nothing started */
    d = s_call(x, "status", NULL, &code, err);
    assert_int_equal(code, TB_CALL_UNREACHABLE); /* partial: a's streams still come */
    assert_non_null(d);
    assert_int_equal(json_array_size(json_object_get(d, "streams")), 1);
    assert_true(err[0] != '\0');
    json_decref(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_status_merges_every_collector, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_start_places_new_and_known_streams, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_stop_goes_to_the_holder, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_silent_collector, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
