/* tb-fake-rep — a control endpoint that answers every request with the bytes
 * of a file, read again for each request (a test rewrites it between
 * commands): a collector that says whatever a test wants, to see what
 * tapbusctl makes of hostile or odd replies. Runs until SIGTERM or SIGINT.
 *
 *   tb-fake-rep ENDPOINT REPLY_FILE */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define REPLY_MAX (1u << 20)

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: tb-fake-rep ENDPOINT REPLY_FILE\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    void *ctx = zmq_ctx_new();
    void *rep = ctx != NULL ? zmq_socket(ctx, ZMQ_REP) : NULL;
    char *reply = malloc(REPLY_MAX);
    /* A bounded wait: a signal landing between the s_stop test and the
     * receive would otherwise leave the loop blocked; no linger, so a reply
     * nobody reads does not hold up the exit. */
    int wait_ms = 100, linger = 0;
    if (rep == NULL || reply == NULL ||
        zmq_setsockopt(rep, ZMQ_RCVTIMEO, &wait_ms, sizeof wait_ms) != 0 ||
        zmq_setsockopt(rep, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_bind(rep, argv[1]) != 0) {
        fprintf(stderr, "tb-fake-rep: cannot bind %s: %s\n", argv[1], zmq_strerror(zmq_errno()));
        return 1;
    }
    while (!s_stop) {
        char req[4096];
        if (zmq_recv(rep, req, sizeof req, 0) < 0) {
            continue; /* a signal, or nothing within wait_ms */
        }
        FILE *f = fopen(argv[2], "rb");
        size_t n = f != NULL ? fread(reply, 1, REPLY_MAX, f) : 0;
        if (f != NULL) {
            fclose(f);
        }
        zmq_send(rep, reply, n, 0);
    }
    free(reply);
    zmq_close(rep);
    zmq_ctx_term(ctx);
    return 0;
}
