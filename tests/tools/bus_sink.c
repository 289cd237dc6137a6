/* tb-bus-sink — a subscriber that only receives: it subscribes to one stream
 * of a probe, validates every message with tb_wire_decode and stops at the
 * end-of-stream, then prints packets, messages and the rate between the first
 * message and the end-of-stream. It measures what a probe alone can publish,
 * without a collector's statistics in the way. With --record FILE it also
 * writes every message it received to FILE (each body preceded by its
 * length, u32 little-endian), for tb-bus-replay.
 *
 *   tb-bus-sink [--record FILE] ENDPOINT STREAM [TIMEOUT_S] */
#include "tb_err.h"
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
    FILE *rec = NULL;
    if (argc > 2 && strcmp(argv[1], "--record") == 0) {
        rec = fopen(argv[2], "wb");
        if (rec == NULL) {
            fprintf(stderr, "tb-bus-sink: cannot write %s\n", argv[2]);
            return 1;
        }
        argv += 2;
        argc -= 2;
    }
    if (argc < 3 || argc > 4 || tb_wire_name_valid(argv[2]) != 0 ||
        (argc == 4 && tb_opt_u64(argv[3], 1, 86400, &timeout_s) != 0)) {
        fprintf(stderr, "usage: tb-bus-sink [--record FILE] ENDPOINT STREAM [TIMEOUT_S]\n");
        return 2;
    }
    uint8_t topic[TB_TOPIC_MAX];
    int tl = tb_wire_topic(argv[2], topic, sizeof topic);
    tb_summary_t *items = malloc(TB_WIRE_MAX_BATCH * sizeof *items);
    void *ctx = zmq_ctx_new();
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int rcvtimeo = 1000;
    if (items == NULL || sub == NULL || tl < 0 ||
        zmq_setsockopt(sub, ZMQ_RCVTIMEO, &rcvtimeo, sizeof rcvtimeo) != 0 ||
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, topic, (size_t)tl) != 0 ||
        zmq_connect(sub, argv[1]) != 0) {
        fprintf(stderr, "tb-bus-sink: cannot subscribe to %s: %s\n", argv[1],
                zmq_strerror(zmq_errno()));
        return 1;
    }
    uint64_t deadline = tb_time_mono_ns() + timeout_s * TB_NS_PER_SEC;
    uint64_t first = 0, packets = 0, messages = 0, bad = 0;
    int done = 0;
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    while (!done && tb_time_mono_ns() < deadline) {
        if (zmq_msg_recv(&frame, sub, 0) < 0) {
            continue; /* timeout: look at the deadline */
        }
        if (!zmq_msg_more(&frame) || zmq_msg_recv(&frame, sub, 0) < 0) {
            bad++;
            continue;
        }
        tb_wire_msg_t m;
        if (tb_wire_decode(zmq_msg_data(&frame), zmq_msg_size(&frame), &m, items,
                           TB_WIRE_MAX_BATCH) != 0) {
            bad++;
            continue;
        }
        if (messages++ == 0) {
            first = tb_time_mono_ns();
        }
        if (rec != NULL) {
            uint32_t n = (uint32_t)zmq_msg_size(&frame);
            uint8_t le[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
            if (fwrite(le, 1, 4, rec) != 4 || fwrite(zmq_msg_data(&frame), 1, n, rec) != n) {
                fprintf(stderr, "tb-bus-sink: cannot write the recording\n");
                return 1;
            }
        }
        if (m.hdr.type == TB_MSG_BATCH) {
            packets += m.count;
        } else if (m.hdr.type == TB_MSG_EOS) {
            done = 1;
        }
    }
    double secs = (double)(tb_time_mono_ns() - first) / 1e9;
    printf("packets=%llu messages=%llu bad=%llu seconds=%.3f pps=%.0f%s\n",
           (unsigned long long)packets, (unsigned long long)messages, (unsigned long long)bad,
           secs, secs > 0 ? (double)packets / secs : 0.0, done ? "" : " (no end-of-stream)");
    zmq_msg_close(&frame);
    if (rec != NULL && fclose(rec) != 0) {
        fprintf(stderr, "tb-bus-sink: cannot write the recording\n");
        done = 0;
    }
    zmq_close(sub);
    zmq_ctx_term(ctx);
    free(items);
    return done ? 0 : 1;
}
