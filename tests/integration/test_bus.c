/* The collector against a hostile bus and hostile control clients, on a real
 * ZeroMQ bus over loopback: garbage of every shape is counted and dropped,
 * good data around it is kept, sequence gaps and end-of-stream shortfalls
 * are counted, and every control request gets exactly one clear reply. The
 * collector runs in a thread of this process; the test plays the probe (an
 * XPUB socket) and tapbusctl (a REQ socket). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "collector.h"
#include "tb_ctl.h"
#include "tb_err.h"
#include "tb_log.h"
#include "tb_wire.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

typedef struct {
    void *zctx;
    void *xpub;
    void *req;
    char pub_ep[64];
    char ctl_ep[64];
    tb_collector_t *coll;
    pthread_t thread;
    int stop_pipe[2];
} fixture_t;

static void *s_run(void *arg)
{
    fixture_t *f = arg;
    tb_collector_run(f->coll, f->stop_pipe[0]);
    return NULL;
}

static void s_bind_any(void *sock, char *ep, size_t size)
{
    assert_int_equal(zmq_bind(sock, "tcp://127.0.0.1:*"), 0);
    size_t len = size;
    assert_int_equal(zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, ep, &len), 0);
}

static int s_setup(void **state)
{
    static fixture_t f;
    memset(&f, 0, sizeof f);
    tb_log_set_level(TB_LOG_ERROR);
    f.zctx = zmq_ctx_new();
    f.xpub = zmq_socket(f.zctx, ZMQ_XPUB);
    s_bind_any(f.xpub, f.pub_ep, sizeof f.pub_ep);
    /* A free port for control: bind, read it, close, hand it on. */
    void *probe = zmq_socket(f.zctx, ZMQ_REP);
    s_bind_any(probe, f.ctl_ep, sizeof f.ctl_ep);
    zmq_close(probe);

    tb_collector_config_t cfg;
    tb_collector_config_defaults(&cfg);
    cfg.probes[cfg.nprobes++] = f.pub_ep;
    cfg.control = f.ctl_ep;
    char err[256] = "";
    for (int tries = 0; tries < 50 && f.coll == NULL; tries++) {
        f.coll = tb_collector_new(&cfg, err, sizeof err);
        if (f.coll != NULL && tb_collector_start(f.coll, err, sizeof err) != 0) {
            tb_collector_destroy(&f.coll);
        }
        if (f.coll == NULL) {
            usleep(20000); /* the port may linger a moment after close */
            /* A collector that failed to start may have subscribed before
             * it went: a new publisher, so that the subscriptions the tests
             * read are the live collector's. */
            zmq_close(f.xpub);
            f.xpub = zmq_socket(f.zctx, ZMQ_XPUB);
            s_bind_any(f.xpub, f.pub_ep, sizeof f.pub_ep);
        }
    }
    if (f.coll == NULL) {
        fail_msg("collector: %s", err);
    }
    assert_int_equal(pipe(f.stop_pipe), 0);
    assert_int_equal(pthread_create(&f.thread, NULL, s_run, &f), 0);
    f.req = zmq_socket(f.zctx, ZMQ_REQ);
    int timeout = 5000;
    int linger = 0;
    zmq_setsockopt(f.req, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(f.req, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(f.xpub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(f.xpub, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    assert_int_equal(zmq_connect(f.req, f.ctl_ep), 0);
    *state = &f;
    return 0;
}

static int s_teardown(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(write(f->stop_pipe[1], "x", 1), 1);
    pthread_join(f->thread, NULL);
    tb_collector_destroy(&f->coll);
    close(f->stop_pipe[0]);
    close(f->stop_pipe[1]);
    zmq_close(f->req);
    zmq_close(f->xpub);
    zmq_ctx_term(f->zctx);
    return 0;
}

/* Send raw bytes as a request; return the reply size and copy it to out. */
static size_t s_request_raw(fixture_t *f, const void *buf, size_t len, int more_frames,
                            uint8_t *out, size_t cap)
{
    assert_true(zmq_send(f->req, buf, len, more_frames ? ZMQ_SNDMORE : 0) >= 0);
    if (more_frames) {
        assert_true(zmq_send(f->req, "x", 1, 0) >= 0);
    }
    int n = zmq_recv(f->req, out, cap, 0);
    assert_true(n > 0);
    assert_true((size_t)n <= cap);
    return (size_t)n;
}

static size_t s_request(fixture_t *f, const char *cmd, const char *stream, uint8_t *out, size_t cap)
{
    tb_ctl_request_t req;
    memset(&req, 0, sizeof req);
    snprintf(req.cmd, sizeof req.cmd, "%s", cmd);
    if (stream != NULL) {
        snprintf(req.streams[0], sizeof req.streams[0], "%s", stream);
        req.nstreams = 1;
    }
    uint8_t buf[512];
    size_t len = 0;
    assert_int_equal(tb_ctl_request_encode(&req, buf, sizeof buf, &len), 0);
    return s_request_raw(f, buf, len, 0, out, cap);
}

/* Position r on the value of `key` in the map r is on. */
static void s_enter(tb_mp_reader_t *r, const char *key)
{
    uint32_t n = tb_mp_read_map(r);
    for (uint32_t i = 0; i < n; i++) {
        if (tb_mp_next_str_is(r, key)) {
            return;
        }
        tb_mp_skip(r);
        tb_mp_skip(r);
    }
    fail_msg("key %s not found", key);
}

static uint64_t s_get_u64(const tb_mp_reader_t *data, const char *k1, const char *k2)
{
    tb_mp_reader_t r = *data;
    s_enter(&r, k1);
    if (k2 != NULL) {
        s_enter(&r, k2);
    }
    uint64_t v = tb_mp_read_uint(&r);
    assert_int_equal(r.error, 0);
    return v;
}

static void s_expect_error(const uint8_t *rep, size_t len, const char *needle)
{
    int ok = 1;
    char err[TB_CTL_ERROR_MAX] = "";
    tb_mp_reader_t data;
    assert_int_equal(tb_ctl_reply_decode(rep, len, &ok, err, sizeof err, &data), 0);
    assert_false(ok);
    if (strstr(err, needle) == NULL) {
        fail_msg("error '%s' lacks '%s'", err, needle);
    }
}

static void s_pub(fixture_t *f, const void *topic, size_t tlen, const void *body, size_t blen)
{
    assert_true(zmq_send(f->xpub, topic, tlen, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(f->xpub, body, blen, 0) >= 0);
}

static void s_batch(fixture_t *f, const char *stream, uint64_t seq, size_t n)
{
    tb_summary_t items[16];
    assert_true(n <= 16);
    memset(items, 0, sizeof items);
    for (size_t i = 0; i < n; i++) {
        items[i].ts_ns = 1000000000ull * (seq + 1) + i;
        items[i].wire_len = 100;
        items[i].cap_len = 100;
    }
    tb_wire_header_t h = {.type = TB_MSG_BATCH, .boot_ns = 1, .seq = seq};
    snprintf(h.probe_id, sizeof h.probe_id, "fake");
    snprintf(h.stream, sizeof h.stream, "%s", stream);
    uint8_t body[4096], topic[TB_TOPIC_MAX];
    size_t len = 0;
    assert_int_equal(tb_wire_encode_batch(&h, items, n, body, sizeof body, &len), 0);
    int tl = tb_wire_topic(stream, topic, sizeof topic);
    s_pub(f, topic, (size_t)tl, body, len);
}

static void test_garbage_is_counted_and_good_data_kept(void **state)
{
    fixture_t *f = *state;
    uint8_t rep[65536];
    size_t n = s_request(f, "start", "g", rep, sizeof rep);
    int ok = 0;
    char err[TB_CTL_ERROR_MAX];
    tb_mp_reader_t data;
    assert_int_equal(tb_ctl_reply_decode(rep, n, &ok, err, sizeof err, &data), 0);
    assert_true(ok);

    /* Wait until the subscription reaches the "probe" (after the one to the
     * offers, which the collector always holds). */
    uint8_t sub[80];
    int sn;
    do {
        sn = zmq_recv(f->xpub, sub, sizeof sub, 0);
        assert_true(sn > 0);
    } while (sn == 1 + TB_OFFER_TOPIC_LEN && memcmp(sub + 1, TB_OFFER_TOPIC, sn - 1) == 0);
    assert_int_equal(sn, 3);
    assert_memory_equal(sub, "\1g\0", 3);

    s_batch(f, "g", 0, 10);
    assert_true(zmq_send(f->xpub, "g", 2, 0) >= 0);           /* one frame */
    assert_true(zmq_send(f->xpub, "g", 2, ZMQ_SNDMORE) >= 0); /* three frames */
    assert_true(zmq_send(f->xpub, "a", 1, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(f->xpub, "b", 1, 0) >= 0);
    s_pub(f, "g", 2, "\x93\x01\x02\x03", 4);         /* short envelope */
    s_pub(f, "g", 2, "\xdd\xff\xff\xff\xff\x01", 6); /* hostile count */
    uint8_t junk[300];
    for (size_t i = 0; i < sizeof junk; i++) {
        junk[i] = (uint8_t)(i * 131 + 7);
    }
    s_pub(f, "g", 2, junk, sizeof junk); /* noise */
    s_pub(f, "g", 2, "", 0);             /* empty body */
    /* A valid body for another stream sent on this stream's topic. */
    tb_wire_header_t h = {.type = TB_MSG_EOS, .boot_ns = 1, .seq = 1};
    snprintf(h.probe_id, sizeof h.probe_id, "fake");
    snprintf(h.stream, sizeof h.stream, "other");
    tb_eos_t eos = {.packets = 1};
    uint8_t body[512];
    size_t blen = 0;
    assert_int_equal(tb_wire_encode_eos(&h, &eos, body, sizeof body, &blen), 0);
    s_pub(f, "g", 2, body, blen);

    s_batch(f, "g", 5, 10); /* seq 1..4 never arrive: four messages lost */
    snprintf(h.stream, sizeof h.stream, "g");
    h.seq = 6;
    eos.packets = 25; /* announced 25, 20 arrive: 5 packets lost */
    assert_int_equal(tb_wire_encode_eos(&h, &eos, body, sizeof body, &blen), 0);
    s_pub(f, "g", 2, body, blen);

    /* The end-of-stream is the last message: wait for "finished". */
    uint64_t packets = 0;
    for (int i = 0; i < 500; i++) {
        n = s_request(f, "stats", "g", rep, sizeof rep);
        assert_int_equal(tb_ctl_reply_decode(rep, n, &ok, err, sizeof err, &data), 0);
        tb_mp_reader_t r = data;
        s_enter(&r, "state");
        if (tb_mp_next_str_is(&r, "finished")) {
            packets = s_get_u64(&data, "packets", NULL);
            break;
        }
        usleep(10000);
    }
    assert_int_equal(packets, 20);
    assert_int_equal(s_get_u64(&data, "bytes", NULL), 2000);
    assert_int_equal(s_get_u64(&data, "loss", "seq_gaps"), 4);
    assert_int_equal(s_get_u64(&data, "loss", "lost_packets"), 5);
    assert_int_equal(s_get_u64(&data, "loss", "bad_messages"), 5);

    n = s_request(f, "status", NULL, rep, sizeof rep);
    assert_int_equal(tb_ctl_reply_decode(rep, n, &ok, err, sizeof err, &data), 0);
    tb_mp_reader_t r = data;
    s_enter(&r, "collector");
    s_enter(&r, "bus");
    tb_mp_reader_t bus = r;
    assert_int_equal(s_get_u64(&bus, "bad_frames", NULL), 2);
    assert_int_equal(s_get_u64(&bus, "bad_bodies", NULL), 4);
    assert_int_equal(s_get_u64(&bus, "bad_topic", NULL), 1);
    assert_int_equal(s_get_u64(&bus, "messages", NULL), 3);
}

static void test_control_errors_get_replies(void **state)
{
    fixture_t *f = *state;
    uint8_t rep[4096];
    size_t n = s_request(f, "frobnicate", NULL, rep, sizeof rep);
    s_expect_error(rep, n, "unknown command 'frobnicate'");
    n = s_request_raw(f, "\xc1garbage", 8, 0, rep, sizeof rep);
    s_expect_error(rep, n, "");
    n = s_request_raw(f, "", 0, 0, rep, sizeof rep);
    s_expect_error(rep, n, "");
    n = s_request_raw(f, "\x81\xa1v\x01", 4, 1, rep, sizeof rep); /* two frames */
    s_expect_error(rep, n, "");
    n = s_request(f, "stats", "never-started", rep, sizeof rep);
    s_expect_error(rep, n, "unknown stream 'never-started'");
    n = s_request(f, "stop", "never-started", rep, sizeof rep);
    s_expect_error(rep, n, "unknown stream");
    n = s_request(f, "start", NULL, rep, sizeof rep);
    s_expect_error(rep, n, "at least one stream");
    /* And the collector still answers normally. */
    n = s_request(f, "status", NULL, rep, sizeof rep);
    int ok = 0;
    char err[TB_CTL_ERROR_MAX];
    tb_mp_reader_t data;
    assert_int_equal(tb_ctl_reply_decode(rep, n, &ok, err, sizeof err, &data), 0);
    assert_true(ok);
}

/* The offers of `status`: collector.offers.key. */
static uint64_t s_offer_counter(fixture_t *f, const char *key)
{
    static uint8_t rep[65536];
    size_t n = s_request(f, "status", NULL, rep, sizeof rep);
    int ok = 0;
    char err[TB_CTL_ERROR_MAX];
    tb_mp_reader_t data;
    assert_int_equal(tb_ctl_reply_decode(rep, n, &ok, err, sizeof err, &data), 0);
    assert_true(ok);
    s_enter(&data, "collector");
    s_enter(&data, "offers");
    return s_get_u64(&data, key, NULL);
}

static void s_wait_offer_counter(fixture_t *f, const char *key, uint64_t want)
{
    uint64_t got = 0;
    for (int i = 0; i < 1000 && (got = s_offer_counter(f, key)) != want; i++) {
        usleep(10000);
    }
    if (got != want) {
        fail_msg("offers.%s is %llu, not %llu", key, (unsigned long long)got,
                 (unsigned long long)want);
    }
}

static tb_wire_offer_t s_offer; /* large: kept off the stack */

static void s_pub_offer(fixture_t *f, unsigned probe, size_t nstreams, uint32_t ttl_ms)
{
    memset(&s_offer, 0, sizeof s_offer);
    snprintf(s_offer.probe_id, sizeof s_offer.probe_id, "h%u", probe);
    s_offer.boot_ns = 1;
    s_offer.ttl_ms = ttl_ms;
    s_offer.n = nstreams;
    for (size_t i = 0; i < nstreams; i++) {
        snprintf(s_offer.entries[i].stream, sizeof s_offer.entries[i].stream, "h%u-s%zu", probe, i);
        snprintf(s_offer.entries[i].kind, sizeof s_offer.entries[i].kind, "file");
    }
    static uint8_t body[64 * 1024];
    size_t len = 0;
    assert_int_equal(tb_wire_encode_offer(&s_offer, body, sizeof body, &len), 0);
    s_pub(f, TB_OFFER_TOPIC, TB_OFFER_TOPIC_LEN, body, len);
}

/* A hostile peer on the offer topic: garbage is counted and dropped; a flood
 * of probes and streams fills the table to its bounds and no further (the
 * rest counted as refused); offers that are not renewed expire. */
static void test_hostile_offers_are_bounded(void **state)
{
    fixture_t *f = *state;
    uint8_t sub[80];
    int sn = zmq_recv(f->xpub, sub, sizeof sub, 0); /* the collector's subscription */
    assert_int_equal(sn, 1 + TB_OFFER_TOPIC_LEN);
    assert_memory_equal(sub + 1, TB_OFFER_TOPIC, TB_OFFER_TOPIC_LEN);

    s_pub(f, TB_OFFER_TOPIC, TB_OFFER_TOPIC_LEN, "\xc1junk", 5);
    s_pub(f, TB_OFFER_TOPIC, TB_OFFER_TOPIC_LEN, "", 0);
    tb_summary_t one;
    memset(&one, 0, sizeof one);
    tb_wire_header_t h = {.type = TB_MSG_BATCH, .boot_ns = 1};
    snprintf(h.probe_id, sizeof h.probe_id, "fake");
    snprintf(h.stream, sizeof h.stream, "g");
    uint8_t body[512];
    size_t blen = 0;
    assert_int_equal(tb_wire_encode_batch(&h, &one, 1, body, sizeof body, &blen), 0);
    /* A data message on the offer topic. */
    s_pub(f, TB_OFFER_TOPIC, TB_OFFER_TOPIC_LEN, body, blen);
    s_wait_offer_counter(f, "bad", 3);

    /* 70 probes of 256 streams each: 64 probes fit, 1024 streams in all. */
    for (unsigned p = 0; p < 70; p++) {
        s_pub_offer(f, p, TB_WIRE_MAX_OFFERS, 600000);
    }
    s_wait_offer_counter(f, "refused_probes", 6);
    s_wait_offer_counter(f, "received", 64);
    assert_int_equal(s_offer_counter(f, "probes"), 64);
    assert_int_equal(s_offer_counter(f, "streams"), 1024);
    assert_int_equal(s_offer_counter(f, "refused_streams"), 60 * TB_WIRE_MAX_OFFERS);

    /* The streams command lists exactly what the table holds. */
    static uint8_t rep[1024 * 1024];
    size_t n = s_request(f, "streams", NULL, rep, sizeof rep);
    int ok = 0;
    char err[TB_CTL_ERROR_MAX];
    tb_mp_reader_t data;
    assert_int_equal(tb_ctl_reply_decode(rep, n, &ok, err, sizeof err, &data), 0);
    assert_true(ok);
    s_enter(&data, "streams");
    assert_int_equal(tb_mp_read_array(&data), 1024);

    /* An offer replaces its probe's list; one that is not renewed within
     * its ttl (1 s at the least) is forgotten. */
    for (unsigned p = 0; p < 64; p++) {
        s_pub_offer(f, p, p == 0 ? 1 : 0, 1000);
    }
    s_wait_offer_counter(f, "received", 128);
    s_wait_offer_counter(f, "expired", 64);
    assert_int_equal(s_offer_counter(f, "probes"), 0);
    assert_int_equal(s_offer_counter(f, "streams"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_garbage_is_counted_and_good_data_kept, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_control_errors_get_replies, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_hostile_offers_are_bounded, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
