/* test_guard — the collector's ZAP handler on real CURVE connections over
 * loopback: keys from the act and read lists get in with their role, User-Id
 * and certificate name on every message; unknown keys and clients without
 * CURVE are refused and counted; the lists are read again when they change;
 * a directory that cannot be read is an error at start; a handler that dies
 * keeps ZAP blocked and ends the collector's loop with an error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tb_test.h"

#include "collector_int.h"
#include "guard.h"
#include "tb_curve.h"
#include "tb_err.h"
#include "tb_log.h"
#include "tb_time.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define WAIT_NS (20 * TB_NS_PER_SEC) /* a generous bound: a failure, never a measurement */

typedef struct {
    char dir[200];
    char act[256], read[256], probes[256];
    tb_curve_cert_t server, act_key, read_key, probe_key, stranger;
    void *zctx;
    tb_guard_t *guard;
    void *router; /* the server: CURVE, domain control */
    char ep[64];
} fixture_t;

static fixture_t s_f;

/* A key pair; its public certificate into dir (when not NULL). */
static void s_key(tb_curve_cert_t *c, const char *dir, const char *name)
{
    assert_int_equal(tb_curve_cert_generate(c, name), 0);
    if (dir != NULL) {
        char path[200], err[256];
        snprintf(path, sizeof path, "%.63s/%.63s", dir, name);
        assert_int_equal(tb_curve_cert_save(c, path, err, sizeof err), 0);
        char secret[220];
        snprintf(secret, sizeof secret, "%s_secret", path);
        assert_int_equal(unlink(secret), 0); /* an allow-list holds public certificates */
    }
}

static int s_setup(void **state)
{
    (void)state;
    fixture_t *f = &s_f;
    memset(f, 0, sizeof *f);
    tb_log_set_level(TB_LOG_ERROR);
    if (!tb_curve_available()) {
        return 0; /* each test skips */
    }
    if (tb_test_tmpdir(f->dir, sizeof f->dir, "guard") != 0) {
        return -1;
    }
    snprintf(f->act, sizeof f->act, "%.199s/act", f->dir);
    snprintf(f->read, sizeof f->read, "%.199s/read", f->dir);
    snprintf(f->probes, sizeof f->probes, "%.199s/probes", f->dir);
    mkdir(f->act, 0755);
    mkdir(f->read, 0755);
    mkdir(f->probes, 0755);
    s_key(&f->server, NULL, "collector");
    s_key(&f->act_key, f->act, "ops");
    s_key(&f->read_key, f->read, "viewer");
    s_key(&f->probe_key, f->probes, "edge1");
    s_key(&f->stranger, NULL, "stranger");
    f->zctx = zmq_ctx_new();
    return 0;
}

static int s_teardown(void **state)
{
    (void)state;
    fixture_t *f = &s_f;
    tb_guard_unwatch(f->guard); /* before the socket it watches */
    if (f->router != NULL) {
        zmq_close(f->router);
    }
    tb_guard_destroy(&f->guard);
    if (f->zctx != NULL) {
        zmq_ctx_term(f->zctx);
    }
    if (f->dir[0] != '\0') {
        tb_test_rmtree(f->dir);
    }
    return 0;
}

/* The guard over the fixture's lists, a CURVE ROUTER in domain `domain`
 * watched by it, bound to a free loopback port. */
static void s_server(fixture_t *f, const char *domain)
{
    tb_guard_config_t gc = {f->act, f->read, f->probes};
    char err[256] = "";
    f->guard = tb_guard_new(f->zctx, &gc, err, sizeof err);
    if (f->guard == NULL) {
        fail_msg("guard: %s", err);
    }
    f->router = zmq_socket(f->zctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt(f->router, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(tb_curve_server(f->router, &f->server, domain), 0);
    assert_int_equal(tb_guard_watch(f->guard, f->router, err, sizeof err), 0);
    assert_int_equal(tb_guard_start(f->guard, err, sizeof err), 0);
    assert_int_equal(zmq_bind(f->router, "tcp://127.0.0.1:*"), 0);
    size_t len = sizeof f->ep;
    assert_int_equal(zmq_getsockopt(f->router, ZMQ_LAST_ENDPOINT, f->ep, &len), 0);
}

/* A DEALER that says hello: with CURVE keys `own`, or none. */
static void *s_client(fixture_t *f, const tb_curve_cert_t *own)
{
    void *s = zmq_socket(f->zctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (own != NULL) {
        assert_int_equal(tb_curve_client(s, own, f->server.public_key), 0);
    }
    assert_int_equal(zmq_connect(s, f->ep), 0);
    zmq_send(s, "hello", 5, ZMQ_DONTWAIT);
    return s;
}

/* Receive the routing frame and the hello at the server; the hello's
 * properties into role/key/name. */
static void s_hello(fixture_t *f, char *role, char *key, char *name)
{
    int timeout = 20000;
    zmq_setsockopt(f->router, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_msg_t id, body;
    zmq_msg_init(&id);
    zmq_msg_init(&body);
    assert_true(zmq_msg_recv(&id, f->router, 0) >= 0);
    assert_true(zmq_msg_recv(&body, f->router, 0) == 5);
    const char *r = zmq_msg_gets(&body, TB_GUARD_PROP_ROLE);
    const char *k = zmq_msg_gets(&body, "User-Id");
    const char *n = zmq_msg_gets(&body, TB_GUARD_PROP_NAME);
    assert_non_null(r);
    assert_non_null(k);
    assert_non_null(n);
    strcpy(role, r);
    strcpy(key, k);
    strcpy(name, n);
    zmq_msg_close(&id);
    zmq_msg_close(&body);
}

/* Wait until the counter selected by `which` reaches at least n. */
static uint64_t s_counter(tb_guard_t *g, int which)
{
    tb_guard_counters_t c;
    tb_guard_counters(g, &c);
    return which == 0   ? c.refused_control
           : which == 1 ? c.refused_bus
           : which == 2 ? c.control_handshake_failures
                        : c.allowed;
}

static void s_wait_counter(tb_guard_t *g, int which, uint64_t n)
{
    uint64_t until = tb_time_mono_ns() + WAIT_NS;
    while (s_counter(g, which) < n) {
        if (tb_time_mono_ns() > until) {
            fail_msg("counter %d stayed below %llu", which, (unsigned long long)n);
        }
        usleep(10000);
    }
}

static void test_roles_from_the_lists(void **state)
{
    (void)state;
    if (!tb_curve_available()) {
        skip();
    }
    fixture_t *f = &s_f;
    s_server(f, TB_GUARD_DOMAIN_CONTROL);
    char role[16], key[64], name[80];
    void *a = s_client(f, &f->act_key);
    s_hello(f, role, key, name);
    assert_string_equal(role, "act");
    assert_string_equal(key, f->act_key.public_key);
    assert_string_equal(name, "ops");
    void *r = s_client(f, &f->read_key);
    s_hello(f, role, key, name);
    assert_string_equal(role, "read");
    assert_string_equal(key, f->read_key.public_key);
    assert_string_equal(name, "viewer");
    /* A probe's key is no control key; a stranger's is nobody's. */
    void *p = s_client(f, &f->probe_key);
    void *x = s_client(f, &f->stranger);
    s_wait_counter(f->guard, 0, 2);
    /* Without CURVE: the handshake fails before ZAP, counted by the watch. */
    void *plain = s_client(f, NULL);
    s_wait_counter(f->guard, 2, 1);
    tb_guard_counters_t c;
    tb_guard_counters(f->guard, &c);
    assert_int_equal(c.allowed, 2);
    assert_int_equal(c.act_keys, 1);
    assert_int_equal(c.read_keys, 1);
    assert_int_equal(c.probe_keys, 1);
    assert_int_equal(c.refused_bus, 0);
    assert_true(strstr(c.last_refused, "control") != NULL);
    /* Nothing of theirs arrived: the next message is a known client's. */
    zmq_send(a, "again", 5, 0);
    zmq_msg_t id, body;
    zmq_msg_init(&id);
    zmq_msg_init(&body);
    assert_true(zmq_msg_recv(&id, f->router, 0) >= 0);
    assert_int_equal(zmq_msg_recv(&body, f->router, 0), 5);
    assert_memory_equal(zmq_msg_data(&body), "again", 5);
    assert_string_equal(zmq_msg_gets(&body, "User-Id"), f->act_key.public_key);
    zmq_msg_close(&id);
    zmq_msg_close(&body);
    void *socks[] = {a, r, p, x, plain};
    for (size_t i = 0; i < 5; i++) {
        zmq_close(socks[i]);
    }
}

static void test_bus_domain_takes_probe_keys_only(void **state)
{
    (void)state;
    if (!tb_curve_available()) {
        skip();
    }
    fixture_t *f = &s_f;
    s_server(f, TB_GUARD_DOMAIN_BUS);
    char role[16], key[64], name[80];
    void *p = s_client(f, &f->probe_key);
    s_hello(f, role, key, name);
    assert_string_equal(role, "probe");
    assert_string_equal(key, f->probe_key.public_key);
    assert_string_equal(name, "edge1");
    void *a = s_client(f, &f->act_key); /* a control key sends no data */
    s_wait_counter(f->guard, 1, 1);
    assert_int_equal(s_counter(f->guard, 0), 0);
    zmq_close(p);
    zmq_close(a);
}

static void test_lists_are_read_again(void **state)
{
    (void)state;
    if (!tb_curve_available()) {
        skip();
    }
    fixture_t *f = &s_f;
    s_server(f, TB_GUARD_DOMAIN_CONTROL);
    /* A key added while the collector runs gets in... */
    tb_curve_cert_t late;
    s_key(&late, f->act, "late");
    char role[16], key[64], name[80];
    void *l = s_client(f, &late);
    s_hello(f, role, key, name);
    assert_string_equal(name, "late");
    /* ...one removed is refused on its next connection. */
    char path[200];
    snprintf(path, sizeof path, "%.63s/ops", f->act);
    assert_int_equal(unlink(path), 0);
    void *a = s_client(f, &f->act_key);
    s_wait_counter(f->guard, 0, 1);
    tb_guard_counters_t c;
    tb_guard_counters(f->guard, &c);
    assert_int_equal(c.act_keys, 1);
    /* A list whose directory is gone lets nobody in. */
    char moved[256];
    snprintf(moved, sizeof moved, "%.199s/read-gone", f->dir);
    assert_int_equal(rename(f->read, moved), 0);
    void *r = s_client(f, &f->read_key);
    s_wait_counter(f->guard, 0, 2);
    zmq_close(l);
    zmq_close(a);
    zmq_close(r);
}

static void test_unreadable_lists_refused_at_start(void **state)
{
    (void)state;
    if (!tb_curve_available()) {
        skip();
    }
    fixture_t *f = &s_f;
    char missing[256], err[256] = "";
    snprintf(missing, sizeof missing, "%.199s/nope", f->dir);
    tb_guard_config_t gc = {f->act, NULL, missing};
    assert_null(tb_guard_new(f->zctx, &gc, err, sizeof err));
    assert_non_null(strstr(err, "cannot read --curve-allow-probes directory"));
    assert_non_null(strstr(err, "No such file or directory"));
    char file[128];
    snprintf(file, sizeof file, "%.63s/ops", f->act);
    tb_guard_config_t gc2 = {file, NULL, f->probes};
    assert_null(tb_guard_new(f->zctx, &gc2, err, sizeof err));
    assert_non_null(strstr(err, "Not a directory"));
}

typedef struct {
    tb_collector_t *coll;
    int rc;
} run_t;

static void *s_run(void *arg)
{
    run_t *r = arg;
    r->rc = tb_collector_run(r->coll, -1);
    return NULL;
}

/* tb_guard_unwatch: the monitor is closed by the handler's thread (twice
 * is harmless), handshakes failing after it are no longer counted, and ZAP
 * still answers; after the handler has been halted it is closed directly. */
static void test_unwatch_leaves_zap_answering(void **state)
{
    (void)state;
    if (!tb_curve_available()) {
        skip();
    }
    fixture_t *f = &s_f;
    s_server(f, TB_GUARD_DOMAIN_CONTROL);
    void *plain = s_client(f, NULL);
    s_wait_counter(f->guard, 2, 1);
    tb_guard_unwatch(f->guard);
    tb_guard_unwatch(f->guard);
    void *plain2 = s_client(f, NULL);
    char role[16], key[64], name[80];
    void *a = s_client(f, &f->act_key); /* after plain2: its failure came first */
    s_hello(f, role, key, name);
    assert_string_equal(role, "act");
    assert_int_equal(s_counter(f->guard, 2), 1);
    tb_guard_halt(f->guard);
    tb_guard_unwatch(f->guard);
    zmq_close(plain);
    zmq_close(plain2);
    zmq_close(a);
}

static void test_a_dead_handler_ends_the_collector(void **state)
{
    (void)state;
    if (!tb_curve_available()) {
        skip();
    }
    fixture_t *f = &s_f;
    tb_collector_config_t cfg;
    tb_collector_config_defaults(&cfg);
    cfg.listen[cfg.nlisten++] = "tcp://127.0.0.1:*";
    cfg.control = "tcp://127.0.0.1:*";
    cfg.curve = &f->server;
    cfg.curve_allow = f->act;
    cfg.curve_allow_probes = f->probes;
    char err[256] = "";
    run_t r = {tb_collector_new(&cfg, err, sizeof err), 0};
    if (r.coll == NULL || tb_collector_start(r.coll, err, sizeof err) != 0) {
        tb_collector_destroy(&r.coll);
        fail_msg("collector: %s", err);
    }
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, s_run, &r), 0);
    /* What a failure of the handler does: its ZAP socket stays bound (a
     * second handler cannot take its place, so handshakes wait), its end is
     * signalled, and the collector's loop ends with an error. */
    tb_guard_halt(r.coll->guard);
    struct pollfd pfd = {.fd = tb_guard_dead_fd(r.coll->guard), .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 20000), 1);
    void *other = zmq_socket(r.coll->zctx, ZMQ_REP);
    assert_int_not_equal(zmq_bind(other, "inproc://zeromq.zap.01"), 0);
    zmq_close(other);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(r.rc, TB_EIO);
    tb_collector_destroy(&r.coll);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roles_from_the_lists, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bus_domain_takes_probe_keys_only, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_lists_are_read_again, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_lists_refused_at_start, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_unwatch_leaves_zap_answering, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_a_dead_handler_ends_the_collector, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
