/* tb-ctl-raw — send one message of arbitrary frames to a control endpoint
 * from a DEALER socket (which adds no envelope of its own) and print what
 * comes back, to see what the collector makes of badly framed requests.
 *
 *   tb-ctl-raw ENDPOINT WAIT_MS FRAME...
 *
 * Each FRAME is hex ("" for an empty frame), or zeros:N for N zero bytes
 * (larger than a command line takes). Prints one line per reply
 * frame, "SIZE HEX", then "frames N" (N = 0: nothing came within WAIT_MS). Exit 0 either way, 2 on
 * usage, 1 on a socket error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define FRAME_MAX (2u << 20)

static int s_hex(const char *text, unsigned char *out, size_t cap, size_t *len)
{
    size_t n = strlen(text);
    if (n % 2 != 0 || n / 2 > cap) {
        return -1;
    }
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(text + 2 * i, "%2x", &v) != 1) {
            return -1;
        }
        out[i] = (unsigned char)v;
    }
    *len = n / 2;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: tb-ctl-raw ENDPOINT WAIT_MS FRAME...\n");
        return 2;
    }
    int wait_ms = atoi(argv[2]), linger = 0;
    unsigned char *buf = malloc(FRAME_MAX);
    void *ctx = zmq_ctx_new();
    void *s = ctx != NULL ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
    if (buf == NULL || s == NULL ||
        zmq_setsockopt(s, ZMQ_RCVTIMEO, &wait_ms, sizeof wait_ms) != 0 ||
        zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_connect(s, argv[1]) != 0) {
        fprintf(stderr, "tb-ctl-raw: %s\n", zmq_strerror(zmq_errno()));
        return 1;
    }
    for (int i = 3; i < argc; i++) {
        size_t len = 0;
        if (strncmp(argv[i], "zeros:", 6) == 0) {
            len = strtoul(argv[i] + 6, NULL, 10);
            if (len > FRAME_MAX) {
                fprintf(stderr, "tb-ctl-raw: frame %d is over %u bytes\n", i - 2, FRAME_MAX);
                return 2;
            }
            memset(buf, 0, len);
        } else if (s_hex(argv[i], buf, FRAME_MAX, &len) != 0) {
            fprintf(stderr, "tb-ctl-raw: frame %d is not hex\n", i - 2);
            return 2;
        }
        if (zmq_send(s, buf, len, i + 1 < argc ? ZMQ_SNDMORE : 0) < 0) {
            fprintf(stderr, "tb-ctl-raw: send: %s\n", zmq_strerror(zmq_errno()));
            return 1;
        }
    }
    int n = 0;
    for (int more = 1; more;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, 0) < 0) {
            zmq_msg_close(&m);
            break;
        }
        more = zmq_msg_more(&m);
        n++;
        printf("%zu ", zmq_msg_size(&m));
        const unsigned char *d = zmq_msg_data(&m);
        for (size_t i = 0; i < zmq_msg_size(&m); i++) {
            printf("%02x", d[i]);
        }
        printf("\n");
        zmq_msg_close(&m);
    }
    printf("frames %d\n", n);
    free(buf);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}
