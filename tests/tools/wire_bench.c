/* tb-wire-bench — the collector's decoding of bus messages, alone.
 *
 *   tb-wire-bench RECORDING [ROUNDS]
 *
 * Reads a recording of one stream's bus messages (tb-bus-sink --record:
 * each body after its length as 4 bytes, little-endian), then times (CPU
 * time of this thread, best of ROUNDS, default 5) decoding every body with
 * tb_wire_decode, as the collector does for each message it receives.
 * Prints the summaries decoded and ns per summary. */
#include "recording.h"
#include "tb_wire.h"

#include <stdio.h>
#include <stdlib.h>
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
    double best = 0;
    uint64_t summaries = 0, failed = 0;
    for (int round = 0; round < (rounds > 0 ? rounds : 1); round++) {
        summaries = failed = 0;
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
            }
        }
        double t = s_cpu() - t0;
        if (round == 0 || t < best) {
            best = t;
        }
    }
    printf("%llu summaries, %llu messages refused: %.1f ns/summary\n",
           (unsigned long long)summaries, (unsigned long long)failed,
           summaries > 0 ? best * 1e9 / (double)summaries : 0.0);
    free(items);
    free(buf);
    return failed > 0 ? 1 : 0;
}
