/* test_probe — the probe's reactor (probe/probe.c) on a real ZeroMQ bus
 * (an ipc endpoint in a temporary directory), driven the way a collector
 * drives it: nothing is read before a subscription; a file stream read
 * after one arrives as batches of at most the configured size with
 * consecutive sequence numbers, heartbeats among them and an end-of-stream
 * that counts exactly what was sent; a file that cannot be read ends its
 * stream with an error naming it while the other stream is unaffected; the
 * probe stops when its stop descriptor is written; only tb_probe_start binds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "probe.h"
#include "tb_err.h"
#include "tb_test.h"
#include "tb_wire.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define DEMO         TB_TEST_DATA "/demo.pcap"
#define DEMO_PACKETS 5000
#define BATCH        64

typedef struct {
    char dir[256];
    char endpoint[300];
    tb_probe_t *probe;
    int stop[2];
    pthread_t thread;
    int rc;
    void *zctx;
    void *sub;
    tb_summary_t items[TB_WIRE_MAX_BATCH];
} fixture_t;

static void *s_run(void *arg)
{
    fixture_t *f = arg;
    f->rc = tb_probe_run(f->probe, f->stop[0]);
    return NULL;
}

static int s_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL || tb_test_tmpdir(f->dir, sizeof f->dir, "probe") != 0 || pipe(f->stop) != 0) {
        free(f);
        return -1;
    }
    snprintf(f->endpoint, sizeof f->endpoint, "ipc://%s/bus", f->dir);
    tb_probe_config_t cfg;
    tb_probe_config_defaults(&cfg);
    snprintf(cfg.id, sizeof cfg.id, "unit");
    cfg.publish = f->endpoint;
    cfg.batch_size = BATCH;
    cfg.batch_ms = 50;
    cfg.heartbeat_ms = 100;
    cfg.nsources = 2;
    snprintf(cfg.sources[0].stream, sizeof cfg.sources[0].stream, "demo");
    cfg.sources[0].spec = "file:" DEMO;
    snprintf(cfg.sources[1].stream, sizeof cfg.sources[1].stream, "gone");
    cfg.sources[1].spec = "file:/nonexistent/gone.pcap";
    char err[256] = "";
    f->probe = tb_probe_new(&cfg, err, sizeof err);
    if (f->probe == NULL) {
        fprintf(stderr, "tb_probe_new: %s\n", err);
        return -1;
    }
    if (tb_probe_start(f->probe, err, sizeof err) != 0) {
        fprintf(stderr, "tb_probe_start: %s\n", err);
        return -1;
    }
    if (pthread_create(&f->thread, NULL, s_run, f) != 0) {
        return -1;
    }
    f->zctx = zmq_ctx_new();
    f->sub = zmq_socket(f->zctx, ZMQ_SUB);
    int timeo = 200;
    zmq_setsockopt(f->sub, ZMQ_RCVTIMEO, &timeo, sizeof timeo);
    if (zmq_connect(f->sub, f->endpoint) != 0) {
        return -1;
    }
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fixture_t *f = *state;
    zmq_close(f->sub);
    zmq_ctx_term(f->zctx);
    if (write(f->stop[1], "x", 1) != 1) {
        return -1;
    }
    pthread_join(f->thread, NULL);
    int rc = f->rc;
    tb_probe_destroy(&f->probe);
    close(f->stop[0]);
    close(f->stop[1]);
    tb_test_rmtree(f->dir);
    free(f);
    return rc == 0 ? 0 : -1;
}

static void s_subscribe(fixture_t *f, const char *stream)
{
    uint8_t topic[TB_TOPIC_MAX];
    int tl = tb_wire_topic(stream, topic, sizeof topic);
    assert_true(tl > 0);
    assert_int_equal(zmq_setsockopt(f->sub, ZMQ_SUBSCRIBE, topic, (size_t)tl), 0);
}

/* The next message of stream (others skipped); 0, or -1 after 30 s. */
static int s_next(fixture_t *f, const char *stream, tb_wire_msg_t *m)
{
    for (int tries = 0; tries < 150; tries++) {
        uint8_t topic[TB_TOPIC_MAX + 1];
        int tl = zmq_recv(f->sub, topic, sizeof topic, 0);
        if (tl < 0) {
            continue;
        }
        zmq_msg_t body;
        zmq_msg_init(&body);
        assert_true(zmq_msg_recv(&body, f->sub, 0) >= 0);
        int rc = tb_wire_decode(zmq_msg_data(&body), zmq_msg_size(&body), m, f->items,
                                TB_WIRE_MAX_BATCH);
        zmq_msg_close(&body);
        assert_int_equal(rc, 0);
        if (strcmp(m->hdr.stream, stream) == 0) {
            return 0;
        }
        tries = 0;
    }
    return -1;
}

static void test_file_stream_batches_and_ends(void **state)
{
    fixture_t *f = *state;
    s_subscribe(f, "demo");
    tb_wire_msg_t m;
    uint64_t packets = 0, batches = 0, heartbeats = 0, seq = 0;
    int first = 1;
    for (;;) {
        assert_int_equal(s_next(f, "demo", &m), 0);
        assert_string_equal(m.hdr.probe_id, "unit");
        if (!first) {
            assert_true(m.hdr.seq == seq + 1); /* consecutive: nothing lost */
        }
        first = 0;
        seq = m.hdr.seq;
        if (m.hdr.type == TB_MSG_BATCH) {
            assert_true(m.count >= 1 && m.count <= BATCH);
            packets += m.count;
            batches++;
        } else if (m.hdr.type == TB_MSG_HEARTBEAT) {
            heartbeats++;
            assert_true(m.hb.state == TB_SRC_RUNNING || m.hb.state == TB_SRC_FINISHED);
        } else if (m.hdr.type == TB_MSG_EOS) {
            break;
        }
    }
    assert_int_equal(packets, DEMO_PACKETS);
    assert_int_equal(m.eos.packets, DEMO_PACKETS);
    assert_int_equal(m.eos.batches, batches);
    assert_int_equal(m.eos.error, 0);
    assert_true(batches >= DEMO_PACKETS / BATCH);
    assert_true(heartbeats >= 1); /* one comes right before the end-of-stream */
}

static void test_unreadable_file_ends_with_its_reason(void **state)
{
    fixture_t *f = *state;
    s_subscribe(f, "gone");
    tb_wire_msg_t m;
    int saw_error_state = 0;
    for (;;) {
        assert_int_equal(s_next(f, "gone", &m), 0);
        assert_true(m.hdr.type != TB_MSG_BATCH);
        if (m.hdr.type == TB_MSG_HEARTBEAT && m.hb.state == TB_SRC_ERROR) {
            saw_error_state = 1;
            assert_non_null(strstr(m.hb.detail, "/nonexistent/gone.pcap"));
        }
        if (m.hdr.type == TB_MSG_EOS) {
            break;
        }
    }
    assert_int_equal(m.eos.error, 1);
    assert_int_equal(m.eos.packets, 0);
    assert_non_null(strstr(m.eos.detail, "/nonexistent/gone.pcap"));
    assert_true(saw_error_state);
}

/* tb_probe_new binds nothing: an endpoint that cannot be bound is only
 * refused by tb_probe_start (TB_EIO, naming it); a probe not started does
 * not run. */
static void test_start_binds_new_does_not(void **state)
{
    (void)state;
    /* A directory that does not exist: the bind fails, and leaves nothing. */
    const char *endpoint = "ipc:///nonexistent/tapbus-unit/bus";
    tb_probe_config_t cfg;
    tb_probe_config_defaults(&cfg);
    snprintf(cfg.id, sizeof cfg.id, "unit");
    cfg.publish = endpoint;
    cfg.nsources = 1;
    snprintf(cfg.sources[0].stream, sizeof cfg.sources[0].stream, "demo");
    cfg.sources[0].spec = "file:" DEMO;
    char err[256] = "";
    tb_probe_t *probe = tb_probe_new(&cfg, err, sizeof err);
    assert_non_null(probe);
    assert_int_equal(tb_probe_run(probe, -1), TB_EINVAL);
    assert_int_equal(tb_probe_start(probe, err, sizeof err), TB_EIO);
    assert_non_null(strstr(err, "cannot bind"));
    assert_non_null(strstr(err, endpoint));
    tb_probe_destroy(&probe);
    assert_null(probe);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_stream_batches_and_ends, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_file_ends_with_its_reason, s_setup,
                                        s_teardown),
        cmocka_unit_test(test_start_binds_new_does_not),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
