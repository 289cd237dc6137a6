/* fanout_ask — see fanout_ask.h. */
#include "fanout_ask.h"

#include "mpjson.h"

#include "tb_time.h"
#include "tb_zmon.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define REQ_MAX                                                                                    \
    (TB_CTL_MAX_STREAMS * (TB_STREAM_MAX + 8) + TB_CTL_MAX_ARGS * (TB_CTL_ARG_MAX + 8) + 256)

void tb_fanout_answers_free(tb_fanout_answer_t *ans, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_decref(ans[i].data);
        ans[i].data = NULL;
    }
}

static void s_decode(const char *endpoint, zmq_msg_t *msg, tb_fanout_answer_t *a)
{
    int ok = 0;
    char err[TB_CTL_ERROR_MAX] = "";
    tb_mp_reader_t data;
    json_t *j = NULL;
    if (tb_ctl_reply_decode(zmq_msg_data(msg), zmq_msg_size(msg), &ok, err, sizeof err, &data) !=
            0 ||
        (j = tb_mpjson_read(&data)) == NULL) {
        a->code = TB_CALL_BADREPLY;
        snprintf(a->err, sizeof a->err, "malformed reply from collector at %s", endpoint);
    } else if (!ok) {
        json_decref(j);
        a->code = TB_CALL_REFUSED;
        snprintf(a->err, sizeof a->err, "%s", err);
    } else if (!json_is_object(j)) { /* every answer's data is a map */
        json_decref(j);
        a->code = TB_CALL_BADREPLY;
        snprintf(a->err, sizeof a->err, "malformed reply from collector at %s", endpoint);
    } else {
        a->code = TB_CALL_OK;
        a->data = j;
    }
}

/* A REQ socket connected to endpoint, its handshakes watched through *mon
 * (not open when watching failed: the answer then only lacks the reason);
 * NULL with *bad set when the endpoint is malformed. */
static void *s_socket(const tb_fanout_t *f, void *ctx, const char *endpoint, int *bad,
                      tb_zmon_t *mon)
{
    void *s = zmq_socket(ctx, ZMQ_REQ);
    int linger = 0;
    int64_t maxmsg = TB_CTL_MAX_REPLY;
    if (s == NULL || zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0 ||
        (f->curve && tb_curve_client(s, &f->curve_own, f->curve_server) != 0)) {
        if (s != NULL) {
            zmq_close(s);
        }
        return NULL;
    }
    char why[160];
    tb_zmon_open(mon, ctx, s, "the control socket",
                 ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH,
                 TB_ZMON_QUEUE, why, sizeof why);
    if (zmq_connect(s, endpoint) != 0) {
        *bad = 1;
        tb_zmon_close(mon);
        zmq_close(s);
        return NULL;
    }
    return s;
}

/* Apply the monitor's events waiting on mon to a's handshake record. */
static void s_monitor(tb_zmon_t *mon, tb_fanout_answer_t *a)
{
    tb_zmon_event_t ev;
    while (tb_zmon_next(mon, &ev) == 1) {
        /* A failure "without detail" (the peer closed first) tells less
         * than one with a reason: it never replaces one. */
        if (ev.event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            a->hs_ok = 1;
        } else if (ev.event != ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL || a->hs_event == 0) {
            a->hs_event = ev.event;
            a->hs_value = ev.value;
        }
    }
}

/* Why the handshake with a collector failed, in words; "" when the
 * monitor told nothing useful. final: whether the failure is certain to
 * repeat (the collector said no, or speaks another mechanism), so that
 * waiting longer is pointless. */
static void s_handshake_reason(const tb_fanout_t *f, const char *endpoint,
                               const tb_fanout_answer_t *a, char *buf, size_t size, int *final)
{
    buf[0] = '\0';
    *final = 0;
    if (a->hs_ok || a->hs_event == 0) {
        return;
    }
    if (a->hs_event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        *final = 1;
        snprintf(buf, size,
                 "the collector at %s refused this client's CURVE key (ZAP status %u): it is in "
                 "neither its --curve-allow nor its --curve-allow-read directory",
                 endpoint, a->hs_value);
    } else if (a->hs_event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
               a->hs_value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
        *final = 1;
        snprintf(buf, size,
                 f->curve ? "the collector at %s does not use CURVE, but this client does "
                            "(--curve-key)"
                          : "the collector at %s requires CURVE: give --curve-key and "
                            "--curve-server-key (docs/security.md)",
                 endpoint);
    } else if (a->hs_event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
               a->hs_value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC) {
        *final = 1;
        snprintf(buf, size, "the CURVE handshake with the collector at %s failed: wrong keys",
                 endpoint);
    } else if (a->hs_event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL && f->curve) {
        /* The server could not read our hello: it closed the connection. */
        snprintf(buf, size,
                 "the collector at %s broke off the CURVE handshake: --curve-server-key is "
                 "probably not its public key",
                 endpoint);
    } else if (a->hs_event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
        /* Which side notices the other's mechanism first is a race: a
         * collector that requires CURVE may simply close the connection. */
        snprintf(buf, size,
                 "the collector at %s broke off the handshake: it may require CURVE (give "
                 "--curve-key and --curve-server-key, docs/security.md)",
                 endpoint);
    }
}

/* A message snprintf() cut (n, its full length, does not fit) ends in "..."
 * so the operator sees that it goes on: a long endpoint named twice, once in
 * the reason, can outgrow the answer's error field. */
static void s_mark_cut(char *msg, size_t size, int n)
{
    if (n >= 0 && (size_t)n >= size && size > 4) {
        memcpy(msg + size - 4, "...", 4);
    }
}

/* Why a tcp:// endpoint did not answer, told apart for the operator: an
 * unknown host, a refused connection (nothing listens there), or nothing
 * ("" : it accepts connections but did not reply in time). ZeroMQ retries
 * silently in the background and only ever shows a timeout, so this asks
 * the resolver and the TCP stack directly, bounded by wait_ms. */
static void s_why(const char *endpoint, char *why, size_t size, int wait_ms)
{
    why[0] = '\0';
    if (strncmp(endpoint, "tcp://", 6) != 0) {
        return;
    }
    const char *hp = endpoint + 6;
    const char *semi = strchr(hp, ';'); /* tcp://SOURCE;HOST:PORT */
    hp = semi != NULL ? semi + 1 : hp;
    char host[TB_ENDPOINT_MAX];
    const char *colon = strrchr(hp, ':');
    if (colon == NULL) {
        return;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - hp), hp);
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host) - 2);
        host[strlen(host) - 2] = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int gai = getaddrinfo(host, colon + 1, &hints, &res);
    if (gai == EAI_NONAME || gai == EAI_FAIL
#ifdef EAI_NODATA
        || gai == EAI_NODATA
#endif
    ) {
        snprintf(why, size, "unknown host '%s'", host);
        return;
    }
    if (gai != 0) {
        snprintf(why, size, "cannot resolve '%s': %s", host, gai_strerror(gai));
        return;
    }
    int refused = 0, other = 0, reached = 0;
    for (struct addrinfo *a = res; a != NULL && !reached; a = a->ai_next) {
        int fd =
            socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            continue;
        }
        int e = connect(fd, a->ai_addr, a->ai_addrlen) == 0 ? 0 : errno;
        if (e == EINPROGRESS) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            socklen_t el = sizeof e;
            e = poll(&pfd, 1, wait_ms) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0
                    ? e
                    : ETIMEDOUT;
        }
        close(fd);
        reached |= e == 0;
        refused |= e == ECONNREFUSED;
        if (e != 0 && e != ECONNREFUSED && e != ETIMEDOUT && other == 0) {
            other = e;
        }
    }
    freeaddrinfo(res);
    if (reached) {
        return;
    }
    if (refused) {
        snprintf(why, size, "connection refused (no collector listening on %s)", hp);
    } else if (other != 0) {
        snprintf(why, size, "%s", strerror(other));
    }
}

/* Close a collector's socket and its monitor, keeping what the monitor
 * said. */
static void s_close(void **sock, tb_zmon_t *mon, tb_fanout_answer_t *a)
{
    s_monitor(mon, a);
    tb_zmon_close(mon);
    if (*sock != NULL) {
        zmq_close(*sock);
        *sock = NULL;
    }
}

/* Wait up to deadline for the replies of the pending collectors. A
 * collector whose handshake failed for good is answered at once. */
static void s_collect(const tb_fanout_t *f, void **sock, tb_zmon_t *mon, int *pending,
                      tb_fanout_answer_t *ans, uint64_t deadline)
{
    for (;;) {
        zmq_pollitem_t items[2 * TB_FANOUT_MAX];
        size_t idx[2 * TB_FANOUT_MAX], k = 0;
        for (size_t i = 0; i < f->n; i++) {
            if (pending[i]) {
                items[k] = (zmq_pollitem_t){.socket = sock[i], .events = ZMQ_POLLIN};
                idx[k++] = i;
                if (tb_zmon_socket(&mon[i]) != NULL) {
                    items[k] =
                        (zmq_pollitem_t){.socket = tb_zmon_socket(&mon[i]), .events = ZMQ_POLLIN};
                    idx[k++] = i;
                }
            }
        }
        uint64_t now = tb_time_mono_ns();
        if (k == 0 || now >= deadline) {
            return;
        }
        long wait_ms = (long)((deadline - now + 999999) / 1000000);
        if (zmq_poll(items, (int)k, wait_ms) < 0) {
            return; /* a signal (the operator quits) or a dead context */
        }
        for (size_t j = 0; j < k; j++) {
            size_t i = idx[j];
            if (!(items[j].revents & ZMQ_POLLIN) || !pending[i]) {
                continue;
            }
            if (items[j].socket == tb_zmon_socket(&mon[i])) {
                char why[TB_FANOUT_ERR_MAX];
                int final = 0;
                s_monitor(&mon[i], &ans[i]);
                s_handshake_reason(f, f->endpoint[i], &ans[i], why, sizeof why, &final);
                if (final) {
                    ans[i].code = TB_CALL_UNREACHABLE;
                    snprintf(ans[i].err, sizeof ans[i].err, "%s", why);
                    pending[i] = 0;
                    s_close(&sock[i], &mon[i], &ans[i]);
                }
                continue;
            }
            zmq_msg_t msg;
            zmq_msg_init(&msg);
            if (zmq_msg_recv(&msg, sock[i], ZMQ_DONTWAIT) >= 0) {
                s_decode(f->endpoint[i], &msg, &ans[i]);
                pending[i] = 0;
                s_close(&sock[i], &mon[i], &ans[i]);
            }
            zmq_msg_close(&msg);
        }
    }
}

/* Send reqs[i] to collector i (NULL: not asked), to all at once. A REQ
 * socket that got no reply is stuck, so a collector silent for its share
 * of the timeout is asked again on a new socket, up to `attempts` times.
 * Returns 0 with every asked collector's answer, or TB_CALL_USAGE with
 * the reason in err (a malformed endpoint: nothing was sent). */
int tb_fanout_ask(const tb_fanout_t *f, const tb_ctl_request_t *const *reqs, int attempts,
                  tb_fanout_answer_t *ans, char *err, size_t errsize)
{
    memset(ans, 0, f->n * sizeof *ans);
    for (size_t i = 0; i < f->n; i++) {
        ans[i].code = TB_FANOUT_NOT_ASKED;
    }
    uint8_t *bufs = malloc(f->n * REQ_MAX);
    size_t lens[TB_FANOUT_MAX];
    void *sock[TB_FANOUT_MAX] = {NULL};
    tb_zmon_t mon[TB_FANOUT_MAX] = {{NULL, NULL}};
    int pending[TB_FANOUT_MAX] = {0};
    void *ctx = bufs != NULL ? zmq_ctx_new() : NULL;
    int rc = TB_CALL_USAGE;
    if (ctx == NULL) {
        snprintf(err, errsize, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < f->n; i++) {
        if (reqs[i] == NULL) {
            continue;
        }
        int bad = 0;
        /* The collector learns how long we wait: work for a client gone is skipped. */
        tb_ctl_request_t r = *reqs[i];
        r.timeout_ms = f->timeout_ms > 0 ? (uint32_t)f->timeout_ms : 0;
        if (tb_ctl_request_encode(&r, bufs + i * REQ_MAX, REQ_MAX, &lens[i]) != 0) {
            snprintf(err, errsize, "cannot encode the request");
            goto done;
        }
        if ((sock[i] = s_socket(f, ctx, f->endpoint[i], &bad, &mon[i])) == NULL) {
            snprintf(err, errsize, "%s collector endpoint %s: %s%s", bad ? "invalid" : "cannot use",
                     f->endpoint[i], zmq_strerror(errno),
                     bad ? " (HOST:PORT, tcp://HOST:PORT or ipc://PATH)" : "");
            goto done;
        }
        pending[i] = 1;
    }
    int each = f->timeout_ms / attempts > 0 ? f->timeout_ms / attempts : 1;
    for (int a = 0; a < attempts; a++) {
        for (size_t i = 0; i < f->n; i++) {
            int bad = 0;
            if (pending[i] && sock[i] == NULL) {
                sock[i] = s_socket(f, ctx, f->endpoint[i], &bad, &mon[i]);
            }
            if (pending[i] && sock[i] != NULL &&
                zmq_send(sock[i], bufs + i * REQ_MAX, lens[i], ZMQ_DONTWAIT) < 0 &&
                errno != EAGAIN) {
                ans[i].code = TB_CALL_UNREACHABLE;
                snprintf(ans[i].err, sizeof ans[i].err, "cannot send to collector at %s: %s",
                         f->endpoint[i], zmq_strerror(errno));
                pending[i] = 0;
            }
        }
        s_collect(f, sock, mon, pending, ans, tb_time_mono_ns() + (uint64_t)each * 1000000u);
        for (size_t i = 0; i < f->n; i++) {
            s_close(&sock[i], &mon[i], &ans[i]);
        }
    }
    for (size_t i = 0; i < f->n; i++) {
        char hs[TB_FANOUT_ERR_MAX];
        int final = 0;
        s_handshake_reason(f, f->endpoint[i], &ans[i], hs, sizeof hs, &final);
        if (pending[i] && hs[0] != '\0') {
            ans[i].code = TB_CALL_UNREACHABLE;
            snprintf(ans[i].err, sizeof ans[i].err, "no reply within %d ms: %.*s", f->timeout_ms,
                     (int)(sizeof ans[i].err - 40), hs);
        } else if (pending[i]) {
            char why[300];
            s_why(f->endpoint[i], why, sizeof why, 500);
            ans[i].code = TB_CALL_UNREACHABLE;
            int n = snprintf(ans[i].err, sizeof ans[i].err,
                             "no reply from collector at %s within %d ms (%d attempt%s)%s%s",
                             f->endpoint[i], f->timeout_ms, attempts, attempts == 1 ? "" : "s",
                             why[0] ? ": " : "", why);
            s_mark_cut(ans[i].err, sizeof ans[i].err, n);
        }
    }
    rc = 0;
done:
    for (size_t i = 0; i < f->n; i++) {
        s_close(&sock[i], &mon[i], &ans[i]);
    }
    if (ctx != NULL) {
        zmq_ctx_term(ctx);
    }
    free(bufs);
    return rc;
}

int tb_fanout_ask_all(const tb_fanout_t *f, const tb_ctl_request_t *req, int attempts,
                      tb_fanout_answer_t *ans, char *err, size_t errsize)
{
    const tb_ctl_request_t *reqs[TB_FANOUT_MAX];
    for (size_t i = 0; i < f->n; i++) {
        reqs[i] = req;
    }
    return tb_fanout_ask(f, reqs, attempts, ans, err, errsize);
}

/* The first failure among the asked collectors (its code and reason, named
 * by its endpoint when it is a refusal); returns how many failed. */
size_t tb_fanout_failures(const tb_fanout_t *f, const tb_fanout_answer_t *ans, int *code, char *err,
                          size_t errsize)
{
    size_t failed = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (ans[i].code == TB_FANOUT_NOT_ASKED || ans[i].code == TB_CALL_OK) {
            continue;
        }
        if (failed++ == 0) {
            *code = ans[i].code;
            if (ans[i].code == TB_CALL_REFUSED) {
                snprintf(err, errsize, "%s: %s", f->endpoint[i], ans[i].err);
            } else {
                snprintf(err, errsize, "%s", ans[i].err);
            }
        }
    }
    return failed;
}

/* {"endpoint", "ok", "error"} of an asked collector; with_parts: also
 * the keys of its answer but "streams" (status: the collector's own part). */
static json_t *s_entry(const tb_fanout_t *f, size_t i, const tb_fanout_answer_t *a, int with_parts)
{
    json_t *e =
        json_pack("{s:s, s:b, s:o}", "endpoint", f->endpoint[i], "ok", a->code == TB_CALL_OK,
                  "error", a->code == TB_CALL_OK ? json_null() : json_string(a->err));
    const char *key;
    json_t *v;
    json_object_foreach(with_parts && e != NULL ? a->data : NULL, key, v)
    {
        if (strcmp(key, "streams") != 0 && json_object_get(e, key) == NULL) {
            json_object_set(e, key, v);
        }
    }
    return e;
}

/* Set "collectors" of out from the asked collectors' answers; return out,
 * or NULL (and out released) when memory runs out. */
static json_t *s_with_entries(const tb_fanout_t *f, const tb_fanout_answer_t *ans, json_t *out,
                              int with_parts)
{
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < f->n; i++) {
        if (ans[i].code != TB_FANOUT_NOT_ASKED &&
            json_array_append_new(list, s_entry(f, i, &ans[i], with_parts)) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    if (out == NULL || list == NULL) {
        json_decref(out);
        json_decref(list);
        return NULL;
    }
    if (json_object_set_new(out, "collectors", list) != 0) { /* list released */
        json_decref(out);
        return NULL;
    }
    return out;
}

json_t *tb_fanout_finish(const tb_fanout_t *f, tb_fanout_answer_t *ans, json_t *out,
                         size_t answered, int with_parts, int *code, char *err, size_t errsize)
{
    tb_fanout_failures(f, ans, code, err, errsize);
    out = s_with_entries(f, ans, out, with_parts);
    tb_fanout_answers_free(ans, f->n);
    if (answered == 0 || out == NULL) {
        if (out == NULL && answered != 0) {
            *code = TB_CALL_BADREPLY;
            snprintf(err, errsize, "out of memory");
        }
        json_decref(out);
        return NULL;
    }
    return out;
}
