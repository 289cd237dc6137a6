/* fanout — see fanout.h. */
#include "fanout.h"

#include "mpjson.h"

#include "tb_time.h"

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
#define ERR_MAX (TB_CTL_ERROR_MAX + TB_ENDPOINT_MAX + 64)

int tb_fanout_add(tb_fanout_t *f, const char *list, char *err, size_t errsize)
{
    size_t added = 0;
    for (const char *p = list;;) {
        p += strspn(p, ", \t");
        size_t len = strcspn(p, ", \t");
        if (len == 0) {
            break;
        }
        /* HOST:PORT is taken as tcp://HOST:PORT. */
        int bare = memmem(p, len, "://", 3) == NULL;
        char ep[TB_ENDPOINT_MAX];
        if (len + (bare ? 6 : 0) >= TB_ENDPOINT_MAX) {
            snprintf(err, errsize, "collector endpoint too long (at most %d bytes)",
                     TB_ENDPOINT_MAX - 1);
            return -1;
        }
        snprintf(ep, sizeof ep, "%s%.*s", bare ? "tcp://" : "", (int)len, p);
        if (strncmp(ep, "tcp://", 6) == 0) {
            const char *host = ep + 6;
            const char *close = host[0] == '[' ? strchr(host, ']') : NULL;
            const char *colon = strrchr(close != NULL ? close : host, ':');
            if (colon == NULL || colon == host || colon[1] == '\0' ||
                strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
                snprintf(err, errsize,
                         "invalid collector endpoint %.*s: needs a host and a port (HOST:PORT, "
                         "tcp://HOST:PORT or ipc://PATH)",
                         (int)len, p);
                return -1;
            }
        }
        added++;
        int dup = 0;
        for (size_t i = 0; i < f->n; i++) {
            dup |= strcmp(f->endpoint[i], ep) == 0;
        }
        if (!dup) {
            if (f->n == TB_FANOUT_MAX) {
                snprintf(err, errsize, "too many collectors (at most %d)", TB_FANOUT_MAX);
                return -1;
            }
            memcpy(f->endpoint[f->n++], ep, sizeof ep);
        }
        p += len;
    }
    if (added == 0) {
        snprintf(err, errsize, "empty collector endpoint");
        return -1;
    }
    return 0;
}

/* start and stop change things (a repeated start would restart a stream); a
 * db query may legitimately take most of the time, and asking again would
 * only queue another one: these are sent once, the rest may be retried. */
static int s_sent_once(const char *cmd)
{
    return strcmp(cmd, "start") == 0 || strcmp(cmd, "stop") == 0 || strcmp(cmd, "db") == 0 ||
           strcmp(cmd, "forget") == 0;
}

/* One collector's answer. */
#define NOT_ASKED (-1)
typedef struct {
    int code;     /* TB_CALL_*, or NOT_ASKED */
    json_t *data; /* TB_CALL_OK: the reply's data */
    char err[ERR_MAX];
    /* What the socket monitor said of the handshakes, over all attempts. */
    int hs_ok;          /* one succeeded */
    int hs_event;       /* the latest ZMQ_EVENT_HANDSHAKE_FAILED_*, 0: none */
    uint32_t hs_value;  /* its value */
} answer_t;

static void s_answers_free(answer_t *ans, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_decref(ans[i].data);
        ans[i].data = NULL;
    }
}

static void s_decode(const char *endpoint, zmq_msg_t *msg, answer_t *a)
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
 * (a PAIR socket, or NULL when watching failed: the answer then only lacks
 * the reason); NULL with *bad set when the endpoint is malformed. */
static void *s_socket(const tb_fanout_t *f, void *ctx, const char *endpoint, int *bad, void **mon)
{
    void *s = zmq_socket(ctx, ZMQ_REQ);
    int linger = 0;
    int64_t maxmsg = TB_CTL_MAX_REPLY;
    *mon = NULL;
    if (s == NULL || zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0 ||
        (f->curve && tb_curve_client(s, &f->curve_own, f->curve_server) != 0)) {
        if (s != NULL) {
            zmq_close(s);
        }
        return NULL;
    }
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://tapbus-fanout-%p", s);
    if (zmq_socket_monitor(s, ep,
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) == 0) {
        *mon = zmq_socket(ctx, ZMQ_PAIR);
        if (*mon != NULL && (zmq_setsockopt(*mon, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
                             zmq_connect(*mon, ep) != 0)) {
            zmq_close(*mon);
            *mon = NULL;
        }
    }
    if (zmq_connect(s, endpoint) != 0) {
        *bad = 1;
        if (*mon != NULL) {
            zmq_close(*mon);
            *mon = NULL;
        }
        zmq_close(s);
        return NULL;
    }
    return s;
}

/* Apply the monitor's events waiting on mon to a's handshake record. */
static void s_monitor(void *mon, answer_t *a)
{
    for (int i = 0; mon != NULL && i < 64; i++) {
        zmq_msg_t head, addr;
        zmq_msg_init(&head);
        zmq_msg_init(&addr);
        int got = zmq_msg_recv(&head, mon, ZMQ_DONTWAIT) >= 0;
        if (got && zmq_msg_more(&head)) {
            zmq_msg_recv(&addr, mon, 0);
        }
        if (got && zmq_msg_size(&head) >= 6) {
            uint16_t event;
            uint32_t value;
            memcpy(&event, zmq_msg_data(&head), sizeof event);
            memcpy(&value, (const uint8_t *)zmq_msg_data(&head) + 2, sizeof value);
            /* A failure "without detail" (the peer closed first) tells
             * less than one with a reason: it never replaces one. */
            if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
                a->hs_ok = 1;
            } else if (event != ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL || a->hs_event == 0) {
                a->hs_event = event;
                a->hs_value = value;
            }
        }
        zmq_msg_close(&head);
        zmq_msg_close(&addr);
        if (!got) {
            break;
        }
    }
}

/* Why the handshake with a collector failed, in words; "" when the
 * monitor told nothing useful. final: whether the failure is certain to
 * repeat (the collector said no, or speaks another mechanism), so that
 * waiting longer is pointless. */
static void s_handshake_reason(const tb_fanout_t *f, const char *endpoint, const answer_t *a,
                               char *buf, size_t size, int *final)
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
static void s_close(void **sock, void **mon, answer_t *a)
{
    s_monitor(*mon, a);
    if (*mon != NULL) {
        zmq_close(*mon);
        *mon = NULL;
    }
    if (*sock != NULL) {
        zmq_close(*sock);
        *sock = NULL;
    }
}

/* Wait up to deadline for the replies of the pending collectors. A
 * collector whose handshake failed for good is answered at once. */
static void s_collect(const tb_fanout_t *f, void **sock, void **mon, int *pending, answer_t *ans,
                      uint64_t deadline)
{
    for (;;) {
        zmq_pollitem_t items[2 * TB_FANOUT_MAX];
        size_t idx[2 * TB_FANOUT_MAX], k = 0;
        for (size_t i = 0; i < f->n; i++) {
            if (pending[i]) {
                items[k] = (zmq_pollitem_t){.socket = sock[i], .events = ZMQ_POLLIN};
                idx[k++] = i;
                if (mon[i] != NULL) {
                    items[k] = (zmq_pollitem_t){.socket = mon[i], .events = ZMQ_POLLIN};
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
            if (items[j].socket == mon[i]) {
                char why[ERR_MAX];
                int final = 0;
                s_monitor(mon[i], &ans[i]);
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
static int s_ask(const tb_fanout_t *f, const tb_ctl_request_t *const *reqs, int attempts,
                 answer_t *ans, char *err, size_t errsize)
{
    memset(ans, 0, f->n * sizeof *ans);
    for (size_t i = 0; i < f->n; i++) {
        ans[i].code = NOT_ASKED;
    }
    uint8_t *bufs = malloc(f->n * REQ_MAX);
    size_t lens[TB_FANOUT_MAX];
    void *sock[TB_FANOUT_MAX] = {NULL};
    void *mon[TB_FANOUT_MAX] = {NULL};
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
        char hs[ERR_MAX];
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
            snprintf(ans[i].err, sizeof ans[i].err,
                     "no reply from collector at %s within %d ms (%d attempt%s)%s%s",
                     f->endpoint[i], f->timeout_ms, attempts, attempts == 1 ? "" : "s",
                     why[0] ? ": " : "", why);
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

static int s_ask_all(const tb_fanout_t *f, const tb_ctl_request_t *req, int attempts, answer_t *ans,
                     char *err, size_t errsize)
{
    const tb_ctl_request_t *reqs[TB_FANOUT_MAX];
    for (size_t i = 0; i < f->n; i++) {
        reqs[i] = req;
    }
    return s_ask(f, reqs, attempts, ans, err, errsize);
}

/* The first failure among the asked collectors (its code and reason, named
 * by its endpoint when it is a refusal); returns how many failed. */
static size_t s_failures(const tb_fanout_t *f, const answer_t *ans, int *code, char *err,
                         size_t errsize)
{
    size_t failed = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (ans[i].code == NOT_ASKED || ans[i].code == TB_CALL_OK) {
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
static json_t *s_entry(const tb_fanout_t *f, size_t i, const answer_t *a, int with_parts)
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
static json_t *s_with_entries(const tb_fanout_t *f, const answer_t *ans, json_t *out,
                              int with_parts)
{
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < f->n; i++) {
        if (ans[i].code != NOT_ASKED &&
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

/* The end of a merged call: out (partial when some collector failed), or
 * NULL with the first failure when none answered. */
static json_t *s_finish(const tb_fanout_t *f, answer_t *ans, json_t *out, size_t answered,
                        int with_parts, int *code, char *err, size_t errsize)
{
    s_failures(f, ans, code, err, errsize);
    out = s_with_entries(f, ans, out, with_parts);
    s_answers_free(ans, f->n);
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

/* status: each collector's own part in its "collectors" entry, the streams
 * of all in one list, each with its "collector". */
static json_t *s_status(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
                        size_t errsize)
{
    answer_t ans[TB_FANOUT_MAX];
    if ((*code = s_ask_all(f, req, f->attempts, ans, err, errsize)) != 0) {
        return NULL;
    }
    json_t *streams = json_array();
    json_t *out = json_pack("{s:o}", "streams", streams);
    size_t answered = 0;
    for (size_t i = 0; out != NULL && i < f->n; i++) {
        if (ans[i].code != TB_CALL_OK) {
            continue;
        }
        answered++;
        size_t k;
        json_t *st;
        json_array_foreach(json_object_get(ans[i].data, "streams"), k, st)
        {
            json_object_set_new(st, "collector", json_string(f->endpoint[i]));
            json_array_append(streams, st);
        }
    }
    return s_finish(f, ans, out, answered, 1, code, err, errsize);
}

/* stats: the collector holding the stream answers. */
static json_t *s_stats(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
                       size_t errsize)
{
    const tb_ctl_request_t *reqs[TB_FANOUT_MAX];
    int pinned = f->pinned >= 0 && strcmp(f->pinned_stream, req->streams[0]) == 0;
    for (size_t i = 0; i < f->n; i++) {
        reqs[i] = !pinned || (int)i == f->pinned ? req : NULL;
    }
    answer_t ans[TB_FANOUT_MAX];
    if ((*code = s_ask(f, reqs, f->attempts, ans, err, errsize)) != 0) {
        return NULL;
    }
    json_t *out = NULL;
    for (size_t i = 0; i < f->n && out == NULL; i++) {
        if (ans[i].code == TB_CALL_OK) {
            out = json_incref(ans[i].data);
            json_object_set_new(out, "collector", json_string(f->endpoint[i]));
            f->pinned = (int)i;
            snprintf(f->pinned_stream, sizeof f->pinned_stream, "%s", req->streams[0]);
        }
    }
    if (out == NULL && pinned && ans[f->pinned].code == TB_CALL_REFUSED) {
        /* The stream is no longer where it was: look for it everywhere. */
        s_answers_free(ans, f->n);
        f->pinned = -1;
        return s_stats(f, req, code, err, errsize);
    }
    if (out == NULL) {
        /* A refusal ("unknown stream") only when every collector said so. */
        int refused_all = 1;
        for (size_t i = 0; i < f->n; i++) {
            refused_all &= ans[i].code == NOT_ASKED || ans[i].code == TB_CALL_REFUSED;
        }
        for (size_t i = 0; i < f->n; i++) {
            if (ans[i].code != NOT_ASKED && (refused_all || ans[i].code != TB_CALL_REFUSED)) {
                *code = ans[i].code;
                snprintf(err, errsize, "%s%s",
                         refused_all ? "" : "stream not found where asked: ", ans[i].err);
                break;
            }
        }
    }
    s_answers_free(ans, f->n);
    return out;
}

/* Which collectors hold each stream named in req (a bit per collector),
 * how many streams each runs and may run, from their status. Returns the
 * number of collectors that did not answer (the first one's reason in
 * err), or -1 with *code and err set when nothing could be asked. */
typedef struct {
    uint32_t owner[TB_CTL_MAX_STREAMS];
    size_t running[TB_FANOUT_MAX];
    size_t limit[TB_FANOUT_MAX];
    int answered[TB_FANOUT_MAX];
} where_t;

static int s_where(const tb_fanout_t *f, const tb_ctl_request_t *req, where_t *w, int *code,
                   char *err, size_t errsize)
{
    tb_ctl_request_t status;
    memset(&status, 0, sizeof status);
    snprintf(status.cmd, sizeof status.cmd, "status");
    memset(w, 0, sizeof *w);
    answer_t ans[TB_FANOUT_MAX];
    if ((*code = s_ask_all(f, &status, f->attempts, ans, err, errsize)) != 0) {
        return -1;
    }
    for (size_t i = 0; i < f->n; i++) {
        if (ans[i].code != TB_CALL_OK) {
            continue;
        }
        w->answered[i] = 1;
        w->limit[i] = (size_t)json_integer_value(
            json_object_get(json_object_get(ans[i].data, "limits"), "max_streams"));
        size_t k;
        json_t *st;
        json_array_foreach(json_object_get(ans[i].data, "streams"), k, st)
        {
            const char *name = json_string_value(json_object_get(st, "stream"));
            const char *state = json_string_value(json_object_get(st, "state"));
            w->running[i] +=
                state != NULL && (strcmp(state, "running") == 0 || strcmp(state, "waiting") == 0);
            for (size_t s = 0; name != NULL && s < req->nstreams; s++) {
                if (strcmp(name, req->streams[s]) == 0) {
                    w->owner[s] |= 1u << i;
                }
            }
        }
    }
    size_t failed = s_failures(f, ans, code, err, errsize);
    s_answers_free(ans, f->n);
    return (int)failed;
}

/* Send each collector the streams of req it holds (one request each, once)
 * and merge the names answered under `key` with "collector_of". */
static json_t *s_split(const tb_fanout_t *f, const tb_ctl_request_t *req, const where_t *w,
                       const char *key, int *code, char *err, size_t errsize)
{
    tb_ctl_request_t *sub = calloc(f->n, sizeof *sub);
    const tb_ctl_request_t *reqs[TB_FANOUT_MAX];
    if (sub == NULL) {
        *code = TB_CALL_BADREPLY;
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < f->n; i++) {
        memset(&sub[i], 0, sizeof sub[i]);
        snprintf(sub[i].cmd, sizeof sub[i].cmd, "%s", req->cmd);
        for (size_t s = 0; s < req->nstreams; s++) {
            if (w->owner[s] & (1u << i)) {
                memcpy(sub[i].streams[sub[i].nstreams++], req->streams[s], TB_STREAM_MAX + 1);
            }
        }
        reqs[i] = req->nstreams == 0 || sub[i].nstreams > 0 ? &sub[i] : NULL;
    }
    answer_t ans[TB_FANOUT_MAX];
    *code = s_ask(f, reqs, 1, ans, err, errsize);
    free(sub);
    if (*code != 0) {
        return NULL;
    }
    json_t *names = json_array();
    json_t *where = json_object();
    json_t *warnings = json_array();
    json_t *forgotten = json_array();
    json_t *out = json_pack("{s:o, s:o}", key, names, "collector_of", where);
    size_t answered = 0;
    for (size_t i = 0; out != NULL && i < f->n; i++) {
        if (ans[i].code != TB_CALL_OK) {
            continue;
        }
        answered++;
        size_t k;
        json_t *name;
        json_array_foreach(json_object_get(ans[i].data, key), k, name)
        {
            if (json_is_string(name)) {
                /* Held by several (which tapbus does not do itself): the first
                 * listed names it, as for stats. */
                if (json_object_get(where, json_string_value(name)) == NULL) {
                    json_array_append(names, name);
                    json_object_set_new(where, json_string_value(name),
                                        json_string(f->endpoint[i]));
                }
            }
        }
        json_t *warning;
        json_array_foreach(json_object_get(ans[i].data, "warnings"), k, warning)
        {
            if (json_is_string(warning)) {
                json_array_append(warnings, warning);
            }
        }
        json_array_foreach(json_object_get(ans[i].data, "forgotten"), k, warning)
        {
            if (json_is_string(warning)) {
                json_array_append(forgotten, warning);
            }
        }
    }
    /* start: the warnings of every collector that started something, and
     * the ended streams each forgot to make room. */
    if (out != NULL && strcmp(key, "started") == 0) {
        json_object_set(out, "warnings", warnings);
        json_object_set(out, "forgotten", forgotten);
    }
    json_decref(warnings);
    json_decref(forgotten);
    return s_finish(f, ans, out, answered, 0, code, err, errsize);
}

/* start: a stream held somewhere starts there (on each holder, should
 * there be several); a new one on the collector with room and the fewest
 * running streams. Where a stream lives cannot be known while a collector
 * is silent: then nothing starts. */
static json_t *s_start(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
                       size_t errsize)
{
    where_t w;
    int failed = s_where(f, req, &w, code, err, errsize);
    if (failed < 0) {
        return NULL;
    }
    for (size_t s = 0; s < req->nstreams; s++) {
        if (w.owner[s] != 0) {
            continue;
        }
        if (failed > 0) {
            char why[ERR_MAX];
            snprintf(why, sizeof why, "%s", err);
            snprintf(err, errsize,
                     "cannot tell where '%s' lives (%s); nothing started; name the collector "
                     "with --collector",
                     req->streams[s], why);
            return NULL;
        }
        size_t best = 0;
        for (size_t i = 1; i < f->n; i++) {
            int room_i = w.running[i] < w.limit[i], room_b = w.running[best] < w.limit[best];
            if (room_i > room_b || (room_i == room_b && w.running[i] < w.running[best])) {
                best = i;
            }
        }
        w.owner[s] = 1u << best;
        w.running[best]++;
    }
    *code = TB_CALL_OK;
    return s_split(f, req, &w, "started", code, err, errsize);
}

/* stop and forget: each named stream goes to the collector(s) holding it
 * (`verb` names what was done in the reply: "stopped", "forgotten"); a name
 * no collector holds is refused, and one that may live on a silent
 * collector stops everything, before anything is done. */
static json_t *s_to_holders(tb_fanout_t *f, const tb_ctl_request_t *req, const char *verb,
                            int *code, char *err, size_t errsize)
{
    where_t w;
    int failed = s_where(f, req, &w, code, err, errsize);
    if (failed < 0) {
        return NULL;
    }
    for (size_t s = 0; s < req->nstreams; s++) {
        if (w.owner[s] != 0) {
            continue;
        }
        if (failed > 0) {
            char why[ERR_MAX];
            snprintf(why, sizeof why, "%s", err);
            snprintf(err, errsize, "cannot tell where '%s' lives (%s); nothing %s", req->streams[s],
                     why, verb);
        } else {
            *code = TB_CALL_REFUSED;
            snprintf(err, errsize, "unknown stream '%s'", req->streams[s]);
        }
        return NULL;
    }
    *code = TB_CALL_OK;
    return s_split(f, req, &w, verb, code, err, errsize);
}

/* stop: each stream on the collector(s) holding it; none named: all. */
static json_t *s_stop(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
                      size_t errsize)
{
    if (req->nstreams == 0) {
        where_t w;
        memset(&w, 0, sizeof w);
        return s_split(f, req, &w, "stopped", code, err, errsize);
    }
    return s_to_holders(f, req, "stopped", code, err, errsize);
}

/* forget: each stream on the collector(s) holding it; a name no collector
 * holds is refused before anything is forgotten. */
static json_t *s_forget(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
                        size_t errsize)
{
    return s_to_holders(f, req, "forgotten", code, err, errsize);
}

/* The merged entry of `stream` offered by `probe` (NULL: offered by none),
 * or NULL. */
static json_t *s_offer_entry(json_t *list, const char *stream, const char *probe)
{
    size_t k;
    json_t *e;
    json_array_foreach(list, k, e)
    {
        const char *es = json_string_value(json_object_get(e, "stream"));
        const char *ep = json_string_value(json_object_get(e, "probe"));
        if (es != NULL && strcmp(es, stream) == 0 &&
            (probe == NULL ? ep == NULL : ep != NULL && strcmp(ep, probe) == 0)) {
            return e;
        }
    }
    return NULL;
}

/* streams: what every collector hears offered, one entry per (stream,
 * probe), each with "measured_by": the collectors holding the stream and
 * their state of it. A stream a collector holds that no probe offers to any
 * of them gets an entry with probe nil. Asked of one collector too, so the
 * answer has one shape. */
static json_t *s_streams(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
                         size_t errsize)
{
    answer_t ans[TB_FANOUT_MAX];
    if ((*code = s_ask_all(f, req, f->attempts, ans, err, errsize)) != 0) {
        return NULL;
    }
    json_t *list = json_array();
    json_t *out = json_pack("{s:o}", "streams", list);
    size_t answered = 0;
    size_t k;
    json_t *row;
    /* First what probes offer, once per (stream, probe), freshest kept. */
    for (size_t i = 0; out != NULL && i < f->n; i++) {
        if (ans[i].code != TB_CALL_OK) {
            continue;
        }
        answered++;
        json_array_foreach(json_object_get(ans[i].data, "streams"), k, row)
        {
            const char *stream = json_string_value(json_object_get(row, "stream"));
            const char *probe = json_string_value(json_object_get(row, "probe"));
            if (stream == NULL || probe == NULL) {
                continue;
            }
            json_t *e = s_offer_entry(list, stream, probe);
            double age = json_number_value(json_object_get(row, "offered_s"));
            if (e == NULL) {
                json_array_append_new(list, json_pack("{s:s, s:s, s:O?, s:O?, s:f, s:[]}", "stream",
                                                      stream, "probe", probe, "kind",
                                                      json_object_get(row, "kind"), "source_state",
                                                      json_object_get(row, "source_state"),
                                                      "offered_s", age, "measured_by"));
            } else if (age < json_number_value(json_object_get(e, "offered_s"))) {
                json_object_set(e, "source_state", json_object_get(row, "source_state"));
                json_object_set_new(e, "offered_s", json_real(age));
            }
        }
    }
    /* Then who measures them. */
    for (size_t i = 0; out != NULL && i < f->n; i++) {
        if (ans[i].code != TB_CALL_OK) {
            continue;
        }
        json_array_foreach(json_object_get(ans[i].data, "streams"), k, row)
        {
            const char *stream = json_string_value(json_object_get(row, "stream"));
            json_t *state = json_object_get(row, "state");
            if (stream == NULL || !json_is_string(state)) {
                continue;
            }
            int found = 0;
            size_t j;
            json_t *e;
            json_array_foreach(list, j, e)
            {
                const char *es = json_string_value(json_object_get(e, "stream"));
                if (es == NULL || strcmp(es, stream) != 0) {
                    continue;
                }
                found = 1;
                json_t *by = json_object_get(e, "measured_by");
                size_t m;
                json_t *have;
                int dup = 0;
                json_array_foreach(by, m, have)
                {
                    dup |= strcmp(json_string_value(json_object_get(have, "collector")),
                                  f->endpoint[i]) == 0;
                }
                if (!dup) {
                    json_array_append_new(
                        by, json_pack("{s:s, s:O}", "collector", f->endpoint[i], "state", state));
                }
            }
            if (!found) {
                json_array_append_new(list, json_pack("{s:s, s:n, s:n, s:n, s:n, s:[{s:s, s:O}]}",
                                                      "stream", stream, "probe", "kind",
                                                      "source_state", "offered_s", "measured_by",
                                                      "collector", f->endpoint[i], "state", state));
            }
        }
    }
    return s_finish(f, ans, out, answered, 1, code, err, errsize);
}

/* A row's place in the merged db answer. */
typedef struct {
    json_t *row;
    char *text; /* the row as compact JSON, to find duplicates */
    int64_t t;  /* its time in ns, when the answer has a time column */
} row_t;

/* RFC 3339 ("2026-11-23T07:40:01.5Z") or an integer -> ns; 0 when neither. */
static int64_t s_row_time(const json_t *v)
{
    if (json_is_integer(v)) {
        return (int64_t)json_integer_value(v);
    }
    const char *s = json_string_value(v);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int used = 0;
    if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6) {
        return 0;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int64_t ns = (int64_t)timegm(&tm) * 1000000000;
    if (s[used] == '.') {
        int64_t scale = 100000000;
        for (const char *p = s + used + 1; *p >= '0' && *p <= '9'; p++, scale /= 10) {
            ns += (*p - '0') * scale;
        }
    }
    return ns;
}

/* Newest first when there is a time column, else by content. */
static int s_row_cmp(const void *a, const void *b, void *has_time)
{
    const row_t *x = a, *y = b;
    if (*(const int *)has_time && x->t != y->t) {
        return x->t > y->t ? -1 : 1;
    }
    return strcmp(x->text, y->text);
}

static int s_column(const json_t *columns, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(columns, i, c)
    {
        if (json_is_string(c) && strcmp(json_string_value(c), name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* The rows of every answer under one set of columns, without duplicates,
 * sorted, at most `limit`. */
static json_t *s_rows_merged(const tb_fanout_t *f, const answer_t *ans, json_t *columns,
                             size_t limit)
{
    size_t total = 0;
    for (size_t i = 0; i < f->n; i++) {
        total +=
            ans[i].code == TB_CALL_OK ? json_array_size(json_object_get(ans[i].data, "rows")) : 0;
    }
    row_t *rows = calloc(total + 1, sizeof *rows);
    json_t *out = json_array();
    size_t n = 0;
    int ok = rows != NULL && out != NULL;
    int time_col =
        s_column(columns, "time") >= 0 ? s_column(columns, "time") : s_column(columns, "_time");
    int has_time = time_col >= 0;
    for (size_t i = 0; ok && i < f->n; i++) {
        const json_t *cols = json_object_get(ans[i].data, "columns");
        size_t k;
        json_t *src;
        json_array_foreach(ans[i].code == TB_CALL_OK ? json_object_get(ans[i].data, "rows") : NULL,
                           k, src)
        {
            json_t *row = json_array();
            for (size_t c = 0; row != NULL && c < json_array_size(columns); c++) {
                json_array_append_new(row, json_null());
            }
            size_t j;
            json_t *v;
            json_array_foreach(src, j, v)
            {
                const char *name = json_string_value(json_array_get(cols, j));
                int at = name != NULL ? s_column(columns, name) : -1;
                if (row != NULL && at >= 0) {
                    json_array_set(row, (size_t)at, v);
                }
            }
            rows[n].row = row;
            rows[n].text = row != NULL ? json_dumps(row, JSON_COMPACT) : NULL;
            rows[n].t = has_time ? s_row_time(json_array_get(row, (size_t)time_col)) : 0;
            if (rows[n++].text == NULL) {
                ok = 0;
                break;
            }
        }
    }
    if (ok) {
        qsort_r(rows, n, sizeof *rows, s_row_cmp, &has_time);
        for (size_t i = 0; i < n && json_array_size(out) < limit; i++) {
            if (i == 0 || strcmp(rows[i].text, rows[i - 1].text) != 0) {
                json_array_append(out, rows[i].row);
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        json_decref(rows[i].row);
        free(rows[i].text);
    }
    free(rows);
    if (!ok) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* db: every collector asked (databases may be shared or not), answers
 * merged. */
static json_t *s_db(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
                    size_t errsize)
{
    answer_t ans[TB_FANOUT_MAX];
    if ((*code = s_ask_all(f, req, 1, ans, err, errsize)) != 0) {
        return NULL;
    }
    json_t *columns = json_array();
    json_t *query = NULL;
    size_t answered = 0;
    for (size_t i = 0; columns != NULL && i < f->n; i++) {
        if (ans[i].code != TB_CALL_OK) {
            continue;
        }
        answered++;
        if (query == NULL) {
            query = json_object_get(ans[i].data, "query");
        }
        size_t k;
        json_t *c;
        json_array_foreach(json_object_get(ans[i].data, "columns"), k, c)
        {
            if (json_is_string(c) && s_column(columns, json_string_value(c)) < 0) {
                json_array_append(columns, c);
            }
        }
    }
    size_t limit = (size_t)-1;
    if (req->nargs >= 3 && strcmp(req->args[0], "points") == 0) {
        limit = strtoul(req->args[2], NULL, 10);
    }
    json_t *rows = columns != NULL ? s_rows_merged(f, ans, columns, limit) : NULL;
    json_t *out = rows != NULL
                      ? json_pack("{s:O, s:o, s:o}", "query", query != NULL ? query : json_null(),
                                  "columns", columns, "rows", rows)
                      : NULL;
    if (rows == NULL) {
        json_decref(columns); /* otherwise json_pack took it, whatever came of it */
    }
    return s_finish(f, ans, out, answered, 0, code, err, errsize);
}

json_t *tb_fanout_call(tb_fanout_t *f, const tb_ctl_request_t *req, int *code, char *err,
                       size_t errsize)
{
    *code = TB_CALL_OK;
    err[0] = '\0';
    if (f->n == 0) {
        *code = TB_CALL_USAGE;
        snprintf(err, errsize, "no collector endpoint");
        return NULL;
    }
    if (f->attempts < 1) {
        f->attempts = 1;
    }
    if (strcmp(req->cmd, "streams") == 0) {
        return s_streams(f, req, code, err, errsize);
    }
    if (f->n == 1) {
        answer_t a;
        if ((*code = s_ask_all(f, req, s_sent_once(req->cmd) ? 1 : f->attempts, &a, err,
                               errsize)) != 0) {
            return NULL;
        }
        *code = a.code;
        snprintf(err, errsize, "%s", a.err);
        return a.data;
    }
    if (strcmp(req->cmd, "status") == 0) {
        return s_status(f, req, code, err, errsize);
    }
    if (strcmp(req->cmd, "stats") == 0 && req->nstreams == 1) {
        return s_stats(f, req, code, err, errsize);
    }
    if (strcmp(req->cmd, "start") == 0) {
        return s_start(f, req, code, err, errsize);
    }
    if (strcmp(req->cmd, "stop") == 0) {
        return s_stop(f, req, code, err, errsize);
    }
    if (strcmp(req->cmd, "db") == 0) {
        return s_db(f, req, code, err, errsize);
    }
    if (strcmp(req->cmd, "forget") == 0 && req->nstreams > 0) {
        return s_forget(f, req, code, err, errsize);
    }
    *code = TB_CALL_USAGE;
    snprintf(err, errsize, "'%s' cannot be sent to several collectors", req->cmd);
    return NULL;
}
