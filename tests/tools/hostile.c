/* tb-hostile — ZeroMQ peers that behave as an outsider on the network would,
 * to replay attacks on the probe, the collector and control
 * (tests/integration/test_hostile.py).
 *
 *   tb-hostile sub ENDPOINT STREAM COUNT HOLD_MS
 *       subscribe COUNT times to STREAM on a probe's XPUB, stay HOLD_MS, leave
 *   tb-hostile resub ENDPOINT STREAM PERIOD_MS DURATION_MS
 *       every PERIOD_MS a new connection subscribes to STREAM (the previous
 *       one closes), for DURATION_MS
 *   tb-hostile junk ENDPOINT COUNT SIZE HOLD_MS
 *       COUNT distinct subscriptions of SIZE bytes each to streams nobody
 *       offers, then stay HOLD_MS
 *   tb-hostile forge ENDPOINT STREAM MSG...
 *       connect an XPUB to a collector's --listen, wait until it subscribes
 *       to STREAM, publish each MSG (forged bus messages), wait 500 ms, leave.
 *       MSG is TYPE[,key=value...] with TYPE hb, eos or batch and keys probe,
 *       boot, seq, run, drop (capture drops), state (0..3), packets (batch:
 *       that many made-up packets; eos: packets announced)
 *   tb-hostile big ENDPOINT SIZE HOLD_MS
 *       bind an XPUB at a probe's address, wait for a subscriber, send it one
 *       message of SIZE bytes (over the collector's limit), stay HOLD_MS
 *   tb-hostile noread ENDPOINT CLIENTS REQUESTS HOLD_MS
 *       CLIENTS control clients each send REQUESTS status requests and never
 *       read a reply; they stay HOLD_MS
 *
 * Exit 0 when done, 1 on a socket error, 2 on usage. */
#include "tb_ctl.h"
#include "tb_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define MAX_CLIENTS 64

static long s_num(const char *text)
{
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || v < 0) {
        fprintf(stderr, "tb-hostile: '%s' is not a number\n", text);
        exit(2);
    }
    return v;
}

static void *s_socket(void *ctx, int type)
{
    void *s = zmq_socket(ctx, type);
    int linger = 0;
    if (s == NULL || zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) != 0) {
        fprintf(stderr, "tb-hostile: %s\n", zmq_strerror(zmq_errno()));
        exit(1);
    }
    return s;
}

static void s_connect(void *s, const char *endpoint)
{
    if (zmq_connect(s, endpoint) != 0) {
        fprintf(stderr, "tb-hostile: connect %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
        exit(1);
    }
}

/* A subscription message: 1 and the topic. */
static int s_subscribe(void *s, const uint8_t *topic, size_t len)
{
    uint8_t msg[1 + 4096];
    if (len > sizeof msg - 1) {
        return -1;
    }
    msg[0] = 1;
    memcpy(msg + 1, topic, len);
    return zmq_send(s, msg, len + 1, 0) < 0 ? -1 : 0;
}

static size_t s_topic(const char *stream, uint8_t *topic)
{
    int n = tb_wire_topic(stream, topic, TB_TOPIC_MAX);
    if (n <= 0) {
        fprintf(stderr, "tb-hostile: bad stream name '%s'\n", stream);
        exit(2);
    }
    return (size_t)n;
}

static int s_sub(void *ctx, char **argv)
{
    uint8_t topic[TB_TOPIC_MAX];
    size_t tlen = s_topic(argv[1], topic);
    long count = s_num(argv[2]), hold = s_num(argv[3]);
    void *s = s_socket(ctx, ZMQ_XSUB);
    s_connect(s, argv[0]);
    for (long i = 0; i < count; i++) {
        s_subscribe(s, topic, tlen);
    }
    zmq_poll(NULL, 0, (long)hold);
    zmq_close(s);
    printf("subscribed %ld times\n", count);
    return 0;
}

static int s_resub(void *ctx, char **argv)
{
    uint8_t topic[TB_TOPIC_MAX];
    size_t tlen = s_topic(argv[1], topic);
    long period = s_num(argv[2]), duration = s_num(argv[3]);
    void *s = NULL;
    long n = 0;
    for (long t = 0; t < duration; t += period) {
        void *next = s_socket(ctx, ZMQ_XSUB);
        s_connect(next, argv[0]);
        s_subscribe(next, topic, tlen);
        if (s != NULL) {
            zmq_close(s);
        }
        s = next;
        n++;
        zmq_poll(NULL, 0, period);
    }
    if (s != NULL) {
        zmq_close(s);
    }
    printf("subscribed %ld times\n", n);
    return 0;
}

static int s_junk(void *ctx, char **argv)
{
    long count = s_num(argv[1]), size = s_num(argv[2]), hold = s_num(argv[3]);
    if (size < 12 || size > 4096) {
        fprintf(stderr, "tb-hostile: junk size must be 12..4096\n");
        return 2;
    }
    void *s = s_socket(ctx, ZMQ_XSUB);
    int hwm = 0; /* everything queued: the probe gets all of it */
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    s_connect(s, argv[0]);
    uint8_t topic[4096];
    for (long i = 0; i < count; i++) {
        memset(topic, 'j', (size_t)size);
        int n = snprintf((char *)topic, 16, "%010ld", i); /* distinct */
        topic[n] = 'j';
        s_subscribe(s, topic, (size_t)size);
    }
    zmq_poll(NULL, 0, (long)hold);
    zmq_close(s);
    printf("sent %ld subscriptions of %ld bytes\n", count, size);
    return 0;
}

/* One forged message: TYPE[,key=value...]. */
static int s_forge_one(void *s, const char *stream, const uint8_t *topic, size_t tlen,
                       const char *spec)
{
    tb_wire_header_t h;
    memset(&h, 0, sizeof h);
    snprintf(h.stream, sizeof h.stream, "%s", stream);
    snprintf(h.probe_id, sizeof h.probe_id, "intruder");
    tb_heartbeat_t hb;
    memset(&hb, 0, sizeof hb);
    hb.state = TB_SRC_RUNNING;
    tb_eos_t eos;
    memset(&eos, 0, sizeof eos);
    uint64_t packets = 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    const char *type = strtok_r(buf, ",", &save);
    for (char *kv; (kv = strtok_r(NULL, ",", &save)) != NULL;) {
        char *eq = strchr(kv, '=');
        if (eq == NULL) {
            return 2;
        }
        *eq = '\0';
        const char *v = eq + 1;
        uint64_t n = strtoull(v, NULL, 10);
        if (strcmp(kv, "probe") == 0) {
            snprintf(h.probe_id, sizeof h.probe_id, "%s", v);
        } else if (strcmp(kv, "boot") == 0) {
            h.boot_ns = n;
        } else if (strcmp(kv, "seq") == 0) {
            h.seq = n;
        } else if (strcmp(kv, "run") == 0) {
            h.run = n;
        } else if (strcmp(kv, "drop") == 0) {
            hb.pcap_drop = n;
        } else if (strcmp(kv, "state") == 0) {
            hb.state = (uint8_t)n;
        } else if (strcmp(kv, "packets") == 0) {
            packets = n;
        } else {
            return 2;
        }
    }
    static uint8_t out[TB_WIRE_HEADER_MAX_BYTES + 1024 * TB_WIRE_SUMMARY_MAX_BYTES];
    static tb_summary_t items[1024];
    size_t len = 0;
    int rc;
    if (type != NULL && strcmp(type, "hb") == 0) {
        h.type = TB_MSG_HEARTBEAT;
        rc = tb_wire_encode_heartbeat(&h, &hb, out, sizeof out, &len);
    } else if (type != NULL && strcmp(type, "eos") == 0) {
        h.type = TB_MSG_EOS;
        eos.packets = packets;
        eos.first_seq = h.seq;
        rc = tb_wire_encode_eos(&h, &eos, out, sizeof out, &len);
    } else if (type != NULL && strcmp(type, "batch") == 0) {
        h.type = TB_MSG_BATCH;
        size_t n = packets > 1024 ? 1024 : (size_t)packets;
        for (size_t i = 0; i < n; i++) {
            memset(&items[i], 0, sizeof items[i]);
            items[i].ts_ns = 1700000000ull * 1000000000ull + i;
            items[i].wire_len = items[i].cap_len = 60;
        }
        rc = tb_wire_encode_batch(&h, items, n, out, sizeof out, &len);
    } else {
        return 2;
    }
    if (rc != 0) {
        fprintf(stderr, "tb-hostile: cannot encode '%s'\n", spec);
        return 1;
    }
    if (zmq_send(s, topic, tlen, ZMQ_SNDMORE) < 0 || zmq_send(s, out, len, 0) < 0) {
        fprintf(stderr, "tb-hostile: send: %s\n", zmq_strerror(zmq_errno()));
        return 1;
    }
    return 0;
}

static int s_forge(void *ctx, int argc, char **argv)
{
    uint8_t topic[TB_TOPIC_MAX];
    size_t tlen = s_topic(argv[1], topic);
    void *s = s_socket(ctx, ZMQ_XPUB);
    int timeout = 20000;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    s_connect(s, argv[0]);
    /* Published only once the collector has subscribed: nothing is lost to
     * a slow joiner. */
    for (;;) {
        uint8_t msg[256];
        int n = zmq_recv(s, msg, sizeof msg, 0);
        if (n < 0) {
            fprintf(stderr, "tb-hostile: the collector did not subscribe to %s\n", argv[1]);
            return 1;
        }
        if ((size_t)n == tlen + 1 && msg[0] == 1 && memcmp(msg + 1, topic, tlen) == 0) {
            break;
        }
    }
    for (int i = 2; i < argc; i++) {
        int rc = s_forge_one(s, argv[1], topic, tlen, argv[i]);
        if (rc != 0) {
            if (rc == 2) {
                fprintf(stderr, "tb-hostile: bad message '%s'\n", argv[i]);
            }
            return rc;
        }
    }
    zmq_poll(NULL, 0, 500);
    zmq_close(s);
    printf("forged %d messages\n", argc - 2);
    return 0;
}

static int s_big(void *ctx, char **argv)
{
    long size = s_num(argv[1]), hold = s_num(argv[2]);
    void *s = s_socket(ctx, ZMQ_XPUB);
    int timeout = 20000;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    if (zmq_bind(s, argv[0]) != 0) {
        fprintf(stderr, "tb-hostile: bind %s: %s\n", argv[0], zmq_strerror(zmq_errno()));
        return 1;
    }
    uint8_t msg[256];
    if (zmq_recv(s, msg, sizeof msg, 0) < 0) {
        fprintf(stderr, "tb-hostile: nobody subscribed\n");
        return 1;
    }
    uint8_t *body = calloc(1, (size_t)size);
    if (body == NULL || zmq_send(s, TB_OFFER_TOPIC, TB_OFFER_TOPIC_LEN, ZMQ_SNDMORE) < 0 ||
        zmq_send(s, body, (size_t)size, 0) < 0) {
        fprintf(stderr, "tb-hostile: send failed\n");
        return 1;
    }
    free(body);
    printf("sent %ld bytes\n", size);
    fflush(stdout);
    zmq_poll(NULL, 0, hold);
    zmq_close(s);
    return 0;
}

static int s_noread(void *ctx, char **argv)
{
    long clients = s_num(argv[1]), requests = s_num(argv[2]), hold = s_num(argv[3]);
    if (clients < 1 || clients > MAX_CLIENTS) {
        fprintf(stderr, "tb-hostile: 1..%d clients\n", MAX_CLIENTS);
        return 2;
    }
    tb_ctl_request_t req;
    memset(&req, 0, sizeof req);
    snprintf(req.cmd, sizeof req.cmd, "status");
    uint8_t body[4096];
    size_t len = 0;
    if (tb_ctl_request_encode(&req, body, sizeof body, &len) != 0) {
        return 1;
    }
    void *s[MAX_CLIENTS];
    for (long c = 0; c < clients; c++) {
        s[c] = s_socket(ctx, ZMQ_DEALER);
        int hwm = 0;
        zmq_setsockopt(s[c], ZMQ_SNDHWM, &hwm, sizeof hwm);
        /* A small receive queue: replies pile up at the collector. */
        int rcvhwm = 1, rcvbuf = 4096;
        zmq_setsockopt(s[c], ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm);
        zmq_setsockopt(s[c], ZMQ_RCVBUF, &rcvbuf, sizeof rcvbuf);
        s_connect(s[c], argv[0]);
    }
    for (long i = 0; i < requests; i++) {
        for (long c = 0; c < clients; c++) {
            if (zmq_send(s[c], "", 0, ZMQ_SNDMORE) < 0 || zmq_send(s[c], body, len, 0) < 0) {
                fprintf(stderr, "tb-hostile: send: %s\n", zmq_strerror(zmq_errno()));
                return 1;
            }
        }
    }
    printf("sent %ld requests from %ld clients\n", requests * clients, clients);
    fflush(stdout);
    zmq_poll(NULL, 0, (long)hold);
    for (long c = 0; c < clients; c++) {
        zmq_close(s[c]);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: tb-hostile sub|resub|junk|forge|noread ENDPOINT ...\n");
        return 2;
    }
    const char *cmd = argv[1];
    void *ctx = zmq_ctx_new();
    int rc = 2;
    if (strcmp(cmd, "sub") == 0 && argc == 6) {
        rc = s_sub(ctx, argv + 2);
    } else if (strcmp(cmd, "resub") == 0 && argc == 6) {
        rc = s_resub(ctx, argv + 2);
    } else if (strcmp(cmd, "junk") == 0 && argc == 6) {
        rc = s_junk(ctx, argv + 2);
    } else if (strcmp(cmd, "forge") == 0 && argc >= 5) {
        rc = s_forge(ctx, argc - 2, argv + 2);
    } else if (strcmp(cmd, "big") == 0 && argc == 5) {
        rc = s_big(ctx, argv + 2);
    } else if (strcmp(cmd, "noread") == 0 && argc == 6) {
        rc = s_noread(ctx, argv + 2);
    } else {
        fprintf(stderr, "tb-hostile: bad arguments (see the header of tests/tools/hostile.c)\n");
    }
    zmq_ctx_term(ctx);
    return rc;
}
