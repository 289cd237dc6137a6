/* tb-bus-replay — play a recording of one stream's bus messages (tb-bus-sink
 * --record) to a collector, as the probe that sent them would, but with no
 * capture, decoding or encoding left to do: what a collector alone can
 * ingest.
 *
 *   tb-bus-replay FILE ENDPOINT STREAM [TIMEOUT_S]
 *
 * Binds an XPUB socket on ENDPOINT (never dropping: a full queue waits),
 * waits for a subscription to STREAM, sends every recorded message with the
 * stream's topic, then waits for the subscriber to leave (or TIMEOUT_S,
 * default 600) so that nothing is cut off. Prints messages sent. */
#include "recording.h"
#include "tb_opt.h"
#include "tb_time.h"
#include "tb_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

int main(int argc, char **argv)
{
    uint64_t timeout_s = 600;
    if (argc < 4 || argc > 5 || tb_wire_name_valid(argv[3]) != 0 ||
        (argc == 5 && tb_opt_u64(argv[4], 1, 86400, &timeout_s) != 0)) {
        fprintf(stderr, "usage: tb-bus-replay FILE ENDPOINT STREAM [TIMEOUT_S]\n");
        return 2;
    }
    /* The whole recording in memory: sending must cost nothing but the send. */
    size_t len = 0;
    uint8_t *buf = tb_rec_load(argv[1], &len);
    if (buf == NULL) {
        fprintf(stderr, "tb-bus-replay: cannot read %s\n", argv[1]);
        return 1;
    }
    uint8_t topic[TB_TOPIC_MAX];
    int tl = tb_wire_topic(argv[3], topic, sizeof topic);
    void *ctx = zmq_ctx_new();
    void *pub = zmq_socket(ctx, ZMQ_XPUB);
    int one = 1, hwm = 1000, rcvtimeo = 1000;
    if (tl < 0 || pub == NULL ||
        zmq_setsockopt(pub, ZMQ_XPUB_NODROP, &one, sizeof one) != 0 ||
        zmq_setsockopt(pub, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(pub, ZMQ_RCVTIMEO, &rcvtimeo, sizeof rcvtimeo) != 0 ||
        zmq_bind(pub, argv[2]) != 0) {
        fprintf(stderr, "tb-bus-replay: cannot publish on %s: %s\n", argv[2],
                zmq_strerror(zmq_errno()));
        return 1;
    }
    uint64_t deadline = tb_time_mono_ns() + timeout_s * TB_NS_PER_SEC;
    uint8_t sub[512];
    int subscribed = 0;
    while (!subscribed && tb_time_mono_ns() < deadline) {
        int n = zmq_recv(pub, sub, sizeof sub, 0);
        subscribed = n == tl + 1 && sub[0] == 1 && memcmp(sub + 1, topic, (size_t)tl) == 0;
    }
    uint64_t messages = 0;
    size_t off = 0;
    const uint8_t *body;
    uint32_t size;
    int more;
    while (subscribed && (more = tb_rec_next(buf, len, &off, &body, &size)) != 0) {
        if (more < 0) {
            fprintf(stderr, "tb-bus-replay: the recording is cut short\n");
            return 1;
        }
        if (zmq_send(pub, topic, (size_t)tl, ZMQ_SNDMORE) < 0 || zmq_send(pub, body, size, 0) < 0) {
            fprintf(stderr, "tb-bus-replay: send: %s\n", zmq_strerror(zmq_errno()));
            return 1;
        }
        messages++;
    }
    /* Keep the socket until the subscriber leaves, so its queue drains. */
    while (subscribed && tb_time_mono_ns() < deadline) {
        int n = zmq_recv(pub, sub, sizeof sub, 0);
        if (n == tl + 1 && sub[0] == 0 && memcmp(sub + 1, topic, (size_t)tl) == 0) {
            break;
        }
    }
    printf("messages=%llu\n", (unsigned long long)messages);
    zmq_close(pub);
    zmq_ctx_term(ctx);
    free(buf);
    return subscribed ? 0 : 1;
}
