/* test_zmon — a socket's events through tb_zmon: events arrive with their
 * endpoint; thousands of peers that connect and leave while nobody reads the
 * events do not stall libzmq's I/O thread (with libzmq's own queue of 2,000
 * events it stopped accepting); and with a queue so small that the I/O
 * thread waits on it, closing the monitor returns and the I/O thread gets
 * on (stopping the monitor used to wait for ever for the I/O thread, which
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

#define PEERS 3000 /* more than libzmq's own queue of monitor events */

/* Sockets this process has open now (TCP connections and listeners;
 * libzmq's own signalling uses eventfds, which come and go with its
 * sockets). */
static int s_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        char path[300], target[64];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, target, sizeof target - 1);
        n += len >= 7 && memcmp(target, "socket:", 7) == 0;
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
                                  ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED, TB_ZMON_QUEUE, err,
                                  sizeof err),
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

/* Room for 2 * PEERS + 200 descriptors, or 0 when the hard limit is lower. */
static int s_room_for_peers(void)
{
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 2 * PEERS + 200) {
        fprintf(stderr, "skipped: needs %d descriptors (hard limit %lu)\n", 2 * PEERS + 200,
                (unsigned long)rl.rlim_max);
        return 0;
    }
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? 2 * PEERS + 200 : rl.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    return 1;
}

/* Wait up to 30 s for this process's descriptors to number at least want. */
static int s_fds_up_to(int want)
{
    uint64_t until = tb_time_mono_ns() + 30 * TB_NS_PER_SEC;
    while (s_open_fds() < want) {
        if (tb_time_mono_ns() > until) {
            return 0;
        }
        usleep(20000);
    }
    return 1;
}

/* Close mon, failing the test after 60 s instead of hanging. */
static void s_close_in_time(tb_zmon_t *mon)
{
    signal(SIGALRM, s_alarm);
    alarm(60);
    tb_zmon_close(mon);
    alarm(0);
}

/* A bound SUB socket watched by *mon with a queue of `queue` events, and
 * PEERS connections to it (completed by the kernel, accepted or not) in
 * fds; nobody reads the events. Returns the sockets open before the peers;
 * skips the test when the descriptor limit leaves no room for them. */
static int s_peers(void **ctx, void **sub, tb_zmon_t *mon, int queue, int *fds)
{
    if (!s_room_for_peers()) {
        skip();
    }
    *ctx = zmq_ctx_new();
    int port;
    *sub = s_bound(*ctx, &port);
    char err[200];
    assert_int_equal(
        tb_zmon_open(mon, *ctx, *sub, "the test socket", ZMQ_EVENT_ALL, queue, err, sizeof err), 0);
    int base = s_open_fds();
    for (int i = 0; i < PEERS; i++) {
        fds[i] = s_connect(port);
    }
    return base;
}

static void test_unread_events_stall_nothing_and_close_returns(void **state)
{
    (void)state;
    void *ctx, *sub;
    tb_zmon_t mon;
    static int fds[PEERS];
    int base = s_peers(&ctx, &sub, &mon, TB_ZMON_QUEUE, fds);
    /* Every connection accepted: ours and the I/O thread's ends. */
    assert_true(s_fds_up_to(base + 2 * PEERS));
    for (int i = 0; i < PEERS; i++) {
        close(fds[i]);
    }
    /* Every disconnection handled: each left several events unread. */
    assert_true(s_fds_down_to(base));
    s_close_in_time(&mon);
    zmq_close(sub);
    zmq_ctx_term(ctx);
}

/* A queue of 100 events (1,100 with the 1,000 on libzmq's side): the I/O
 * thread stops accepting once it is full; closing the monitor returns all
 * the same, and then every connection is accepted. */
static void test_close_returns_while_the_io_thread_waits(void **state)
{
    (void)state;
    void *ctx, *sub;
    tb_zmon_t mon;
    static int fds[PEERS];
    int base = s_peers(&ctx, &sub, &mon, 100, fds);
    /* Some accepted, then the I/O thread waits on the full queue: the
     * count stops short of every connection. */
    assert_true(s_fds_up_to(base + PEERS + 1000));
    int before = -1, now = s_open_fds();
    while (now != before) {
        usleep(200000);
        before = now;
        now = s_open_fds();
    }
    assert_true(now < base + 2 * PEERS);
    s_close_in_time(&mon);
    assert_null(tb_zmon_socket(&mon));
    /* No monitor: the I/O thread accepts the rest. */
    assert_true(s_fds_up_to(base + 2 * PEERS));
    for (int i = 0; i < PEERS; i++) {
        close(fds[i]);
    }
    assert_true(s_fds_down_to(base));
    zmq_close(sub);
    zmq_ctx_term(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_arrive_with_their_endpoint),
        cmocka_unit_test(test_unread_events_stall_nothing_and_close_returns),
        cmocka_unit_test(test_close_returns_while_the_io_thread_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
