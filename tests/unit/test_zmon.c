/* test_zmon — a socket's events through tb_zmon: events arrive with their
 * endpoint; thousands of peers that connect and leave while nobody reads the
 * events do not stall libzmq's I/O thread (with libzmq's own queue of 1,000
 * events it stopped accepting); and closing the monitor with a queue full of
 * unread events returns (it used to wait forever for the I/O thread, which
 * waited for a reader). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tb_test.h"

#include "tb_err.h"
#include "tb_time.h"
#include "tb_zmon.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#define PEERS 3000 /* three times libzmq's own queue of monitor events */

/* Descriptors this process has open now. */
static int s_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d) != NULL) {
        n++;
    }
    closedir(d);
    return n;
}

/* A SUB socket bound to a free loopback port, its port in *port. */
static void *s_bound(void *ctx, int *port)
{
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    assert_non_null(sub);
    int linger = 0;
    int backlog = PEERS; /* connections are not held up by the kernel's accept queue */
    assert_int_equal(zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger), 0);
    assert_int_equal(zmq_setsockopt(sub, ZMQ_BACKLOG, &backlog, sizeof backlog), 0);
    assert_int_equal(zmq_bind(sub, "tcp://127.0.0.1:*"), 0);
    char ep[64];
    size_t len = sizeof ep;
    assert_int_equal(zmq_getsockopt(sub, ZMQ_LAST_ENDPOINT, ep, &len), 0);
    const char *colon = strrchr(ep, ':');
    assert_non_null(colon);
    *port = atoi(colon + 1);
    return sub;
}

static int s_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Wait up to 30 s for this process's descriptors to number want or fewer. */
static int s_fds_down_to(int want)
{
    uint64_t until = tb_time_mono_ns() + 30 * TB_NS_PER_SEC;
    while (s_open_fds() > want) {
        if (tb_time_mono_ns() > until) {
            return 0;
        }
        usleep(20000);
    }
    return 1;
}

static void test_events_arrive_with_their_endpoint(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    int port;
    void *sub = s_bound(ctx, &port);
    tb_zmon_t mon;
    char err[200];
    assert_int_equal(tb_zmon_open(&mon, ctx, sub, "the test socket",
                                  ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED, err, sizeof err),
                     0);
    assert_non_null(tb_zmon_socket(&mon));
    close(s_connect(port));
    int accepted = 0, disconnected = 0;
    uint64_t until = tb_time_mono_ns() + 30 * TB_NS_PER_SEC;
    char want[64];
    snprintf(want, sizeof want, "tcp://127.0.0.1:%d", port);
    while ((accepted == 0 || disconnected == 0) && tb_time_mono_ns() < until) {
        zmq_pollitem_t it = {.socket = tb_zmon_socket(&mon), .events = ZMQ_POLLIN};
        zmq_poll(&it, 1, 100);
        tb_zmon_event_t ev;
        while (tb_zmon_next(&mon, &ev) == 1) {
            assert_false(ev.addr_cut);
            assert_string_equal(ev.addr, want);
            accepted += ev.event == ZMQ_EVENT_ACCEPTED;
            disconnected += ev.event == ZMQ_EVENT_DISCONNECTED;
        }
    }
    assert_int_equal(accepted, 1);
    assert_int_equal(disconnected, 1);
    tb_zmon_close(&mon);
    assert_null(tb_zmon_socket(&mon));
    tb_zmon_close(&mon); /* twice is harmless */
    zmq_close(sub);
    zmq_ctx_term(ctx);
}

static void s_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "tb_zmon_close did not return within 60 s\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(1);
}

static void test_unread_events_stall_nothing_and_close_returns(void **state)
{
    (void)state;
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 2 * PEERS + 200) {
        fprintf(stderr, "skipped: needs %d descriptors (hard limit %lu)\n", 2 * PEERS + 200,
                (unsigned long)rl.rlim_max);
        skip();
    }
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? 2 * PEERS + 200 : rl.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    void *ctx = zmq_ctx_new();
    int port;
    void *sub = s_bound(ctx, &port);
    tb_zmon_t mon;
    char err[200];
    assert_int_equal(
        tb_zmon_open(&mon, ctx, sub, "the test socket", ZMQ_EVENT_ALL, err, sizeof err), 0);
    int base = s_open_fds();
    /* Nobody reads the events from here on. */
    static int fds[PEERS];
    for (int i = 0; i < PEERS; i++) {
        fds[i] = s_connect(port);
    }
    /* Every connection accepted: ours and the I/O thread's ends. */
    uint64_t until = tb_time_mono_ns() + 30 * TB_NS_PER_SEC;
    while (s_open_fds() < base + 2 * PEERS && tb_time_mono_ns() < until) {
        usleep(20000);
    }
    assert_int_equal(s_open_fds(), base + 2 * PEERS);
    for (int i = 0; i < PEERS; i++) {
        close(fds[i]);
    }
    /* Every disconnection handled: each left several events unread. */
    assert_true(s_fds_down_to(base));
    signal(SIGALRM, s_alarm);
    alarm(60);
    tb_zmon_close(&mon);
    alarm(0);
    zmq_close(sub);
    zmq_ctx_term(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_arrive_with_their_endpoint),
        cmocka_unit_test(test_unread_events_stall_nothing_and_close_returns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
