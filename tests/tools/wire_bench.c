/* tb-wire-bench — the collector's decoding of bus messages, alone.
 *
 *   tb-wire-bench RECORDING [ROUNDS]
 *
 * Reads a recording of one stream's bus messages (tb-bus-sink --record:
 * each body after its length as 4 bytes, little-endian), then times (CPU
 * time of this thread, best of ROUNDS, default 5) decoding every body with
 * tb_wire_decode, as the collector does for each message it receives, and
 * encoding each batch's summaries again with tb_wire_encode_batch_points,
 * as the probe does for each batch it sends. Prints the summaries and ns
 * per summary of each, and how many batches came out in other bytes than
 * they went in (none for a recording of this build's probe; every batch of
 * one made by an encoder that writes other encodings of the same integers,
 * such as the smallest encoding of each length and port before those were
 * written in 16 bits: docs/wire-format.md, section 5.1). Fails on a message
 * refused or a batch that cannot be encoded again. */
#include "recording.h"
#include "tb_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double s_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: tb-wire-bench RECORDING [ROUNDS]\n");
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    size_t len;
    uint8_t *buf = tb_rec_load(argv[1], &len);
    tb_summary_t *items = malloc(TB_WIRE_MAX_BATCH * sizeof *items);
    if (buf == NULL || items == NULL) {
        fprintf(stderr, "tb-wire-bench: cannot read %s\n", argv[1]);
        return 1;
    }
    uint8_t *out = malloc(TB_WIRE_HEADER_MAX_BYTES + TB_WIRE_MAX_BATCH * TB_WIRE_SUMMARY_MAX_BYTES +
                          TB_WIRE_POINTS_MAX_BYTES);
    if (out == NULL) {
        fprintf(stderr, "tb-wire-bench: out of memory\n");
        return 1;
    }
    double best = 0, best_enc = 0;
    uint64_t summaries = 0, failed = 0, differ = 0, unencoded = 0;
    for (int round = 0; round < (rounds > 0 ? rounds : 1); round++) {
        summaries = failed = differ = unencoded = 0;
        double enc = 0;
        double t0 = s_cpu();
        size_t off = 0;
        const uint8_t *body;
        uint32_t n;
        int more;
        while ((more = tb_rec_next(buf, len, &off, &body, &n)) != 0) {
            if (more < 0) {
                fprintf(stderr, "tb-wire-bench: the recording is cut short\n");
                return 1;
            }
            tb_wire_msg_t msg;
            if (tb_wire_decode(body, n, &msg, items, TB_WIRE_MAX_BATCH) != 0) {
                failed++;
            } else if (msg.hdr.type == TB_MSG_BATCH) {
                summaries += msg.count;
                /* Encoding, timed apart (and taken out of decoding's time). */
                double e0 = s_cpu();
                size_t olen = 0;
                int erc = tb_wire_encode_batch_points(
                    &msg.hdr, items, msg.count, msg.points.n > 0 ? &msg.points : NULL, out,
                    TB_WIRE_HEADER_MAX_BYTES + TB_WIRE_MAX_BATCH * TB_WIRE_SUMMARY_MAX_BYTES +
                        TB_WIRE_POINTS_MAX_BYTES,
                    &olen);
                enc += s_cpu() - e0;
                unencoded += erc != 0;
                differ += erc == 0 && (olen != n || memcmp(out, body, n) != 0);
            }
        }
        double t = s_cpu() - t0 - enc;
        if (round == 0 || t < best) {
            best = t;
        }
        if (round == 0 || enc < best_enc) {
            best_enc = enc;
        }
    }
    printf("%llu summaries, %llu messages refused: decoding %.1f ns/summary, encoding %.1f "
           "ns/summary (%llu batches in other bytes, %llu not encoded)\n",
           (unsigned long long)summaries, (unsigned long long)failed,
           summaries > 0 ? best * 1e9 / (double)summaries : 0.0,
           summaries > 0 ? best_enc * 1e9 / (double)summaries : 0.0, (unsigned long long)differ,
           (unsigned long long)unencoded);
    free(out);
    free(items);
    free(buf);
    return failed > 0 || unencoded > 0 ? 1 : 0;
}
