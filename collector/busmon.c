/* busmon — see busmon.h.
 *
 * What libzmq 4.3 reports for an endpoint the socket connects to (measured
 * here, not only read in its manual):
 *   refused        CONNECT_DELAYED, CLOSED, CONNECT_RETRIED, over and over
 *                  (the connect(2) error itself is not reported)
 *   unresolvable   zmq_connect() succeeds (resolution is deferred), then only
 *                  CONNECT_RETRIED: no socket is ever opened
 *   a probe        CONNECT_DELAYED, CONNECTED, HANDSHAKE_SUCCEEDED
 *   not ZMTP       CONNECTED, then HANDSHAKE_FAILED_* and DISCONNECTED, or
 *                  DISCONNECTED alone (its bytes read as a broken ZMTP 1.0
 *                  frame), or nothing until the handshake time limit
 *   lost           DISCONNECTED, CONNECT_RETRIED, then as above
 * CONNECT_RETRIED is sent when a retry is scheduled; its value is the delay.
 * After a reconnect, the events of a host name endpoint carry the address it
 * resolved to ("tcp://127.0.0.1:5556" for "tcp://localhost:5556"): that
 * form is learnt as the endpoint's alias. Events of a bound endpoint carry
 * the local address of the connection ("tcp://127.0.0.1:P" for a socket
 * bound to "tcp://0.0.0.0:P"). */
#include "busmon.h"

#include "tb_err.h"
#include "tb_log.h"
#include "tb_mp.h"
#include "tb_time.h"
#include "tb_zmon.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define LOG_COMPONENT "bus"
#define READ_BUDGET   512 /* events applied per call */

typedef enum {
    EP_CONNECTING = 0, /* no verdict yet */
    EP_CONNECTED,
    EP_HANDSHAKING, /* TCP connected, ZMTP handshake not done */
    EP_REFUSED,
    EP_UNRESOLVABLE,
    EP_HANDSHAKE_FAILED,
    EP_DISCONNECTED,
    EP_LISTENING,
} ep_state_t;

static const char *const s_state_names[] = {
    "connecting",   "connected",        "handshaking",  "refused",
    "unresolvable", "handshake_failed", "disconnected", "listening",
};

typedef struct {
    char endpoint[TB_BUSMON_ENDPOINT_MAX]; /* as configured */
    char alias[TB_BUSMON_ENDPOINT_MAX];    /* as ZeroMQ names it, when it differs */
    int listen;
    ep_state_t state;
    int last_event; /* the latest ZMQ_EVENT_* applied, 0 before any */
    char detail[TB_BUSMON_DETAIL_MAX];
    uint64_t since_ns, since_mono; /* when state began */
    int handshaking;               /* connected, the handshake's outcome not known yet */
    uint64_t retries;              /* reconnects scheduled since it was last connected */
    uint64_t peers;                /* connections open now */
    uint64_t handshake_failures;   /* handshakes that failed, all told */
    uint64_t connected_mono;       /* when the latest connection opened */
    uint64_t ended_mono;           /* a connection ended, no retry scheduled since */
    uint64_t reconnects;           /* connects the collector made again itself */
} ep_t;

struct tb_busmon {
    tb_zmon_t zmon; /* the bus socket's events */
    ep_t ep[TB_BUSMON_MAX];
    size_t n;
    uint64_t unmatched; /* events of endpoints not in the table */
    tb_ratelimit_t rl;  /* log lines about peers of listen endpoints */
};

tb_busmon_t *tb_busmon_new(void *zctx, void *sock, char *err, size_t errsize)
{
    tb_busmon_t *m = calloc(1, sizeof *m);
    if (m == NULL) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    tb_ratelimit_init(&m->rl, 10 * TB_NS_PER_SEC, 5);
    int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CONNECT_DELAYED | ZMQ_EVENT_CONNECT_RETRIED |
                 ZMQ_EVENT_LISTENING | ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_ACCEPT_FAILED |
                 ZMQ_EVENT_CLOSED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    if (tb_zmon_open(&m->zmon, zctx, sock, "the bus socket", events, TB_ZMON_QUEUE, err, errsize) !=
        0) {
        free(m);
        return NULL;
    }
    return m;
}

const char *tb_busmon_next_dead(tb_busmon_t *m, uint64_t now)
{
    for (size_t i = 0; i < m->n; i++) {
        ep_t *ep = &m->ep[i];
        if (!ep->listen && ep->ended_mono != 0 && now - ep->ended_mono >= TB_BUSMON_DEAD_NS) {
            ep->ended_mono = 0;
            ep->reconnects++;
            return ep->endpoint;
        }
    }
    return NULL;
}

void tb_busmon_destroy(tb_busmon_t **p)
{
    if (p == NULL || *p == NULL) {
        return;
    }
    tb_busmon_t *m = *p;
    *p = NULL;
    tb_zmon_close(&m->zmon);
    free(m);
}

void *tb_busmon_socket(const tb_busmon_t *m)
{
    return tb_zmon_socket(&m->zmon);
}

int tb_busmon_add(tb_busmon_t *m, const char *endpoint, int listen, const char *bound)
{
    if (m->n == TB_BUSMON_MAX) {
        return TB_ELIMIT;
    }
    if (strlen(endpoint) >= TB_BUSMON_ENDPOINT_MAX ||
        (bound != NULL && strlen(bound) >= TB_BUSMON_ENDPOINT_MAX)) {
        return TB_EINVAL;
    }
    ep_t *ep = &m->ep[m->n++];
    memset(ep, 0, sizeof *ep);
    snprintf(ep->endpoint, sizeof ep->endpoint, "%s", endpoint);
    if (bound != NULL && strcmp(bound, endpoint) != 0) {
        snprintf(ep->alias, sizeof ep->alias, "%s", bound);
    }
    ep->listen = listen != 0;
    /* A bind succeeded before this is called: the endpoint listens. */
    ep->state = listen ? EP_LISTENING : EP_CONNECTING;
    ep->since_ns = tb_time_now_ns();
    ep->since_mono = tb_time_mono_ns();
    return 0;
}

/* "tcp://host:port" -> scheme length, host (brackets kept) and port; 0 when
 * the endpoint is not of that shape. */
typedef struct {
    size_t scheme_len;
    const char *host;
    size_t host_len;
    const char *port;
} parts_t;

static int s_parts(const char *e, parts_t *p)
{
    const char *sep = strstr(e, "://");
    const char *colon = strrchr(e, ':');
    if (sep == NULL || colon == NULL || colon < sep + 3) {
        return 0;
    }
    p->scheme_len = (size_t)(sep - e);
    p->host = sep + 3;
    p->host_len = (size_t)(colon - p->host);
    p->port = colon + 1;
    return 1;
}

/* A host written as an address (or a wildcard), which needs no resolving. */
static int s_numeric(const char *host, size_t len)
{
    char buf[TB_BUSMON_ENDPOINT_MAX];
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof buf) {
        return 0;
    }
    memcpy(buf, host, len);
    buf[len] = '\0';
    unsigned char addr[16];
    return strcmp(buf, "*") == 0 || inet_pton(AF_INET, buf, addr) == 1 ||
           inet_pton(AF_INET6, buf, addr) == 1;
}

static int s_wildcard(const char *host, size_t len)
{
    return (len == 1 && host[0] == '*') || (len == 7 && memcmp(host, "0.0.0.0", 7) == 0) ||
           (len == 4 && memcmp(host, "[::]", 4) == 0);
}

static int s_same_port(const parts_t *a, const parts_t *b, const char *ea, const char *eb)
{
    return a->scheme_len == b->scheme_len && memcmp(ea, eb, a->scheme_len) == 0 &&
           strcmp(a->port, b->port) == 0;
}

/* Which events can concern which kind of endpoint. */
static int s_for_connect(int event)
{
    return event != ZMQ_EVENT_LISTENING && event != ZMQ_EVENT_ACCEPTED &&
           event != ZMQ_EVENT_ACCEPT_FAILED;
}

static int s_for_listen(int event)
{
    return event != ZMQ_EVENT_CONNECT_DELAYED && event != ZMQ_EVENT_CONNECT_RETRIED &&
           event != ZMQ_EVENT_CONNECTED;
}

/* The entry an event's endpoint belongs to, or NULL. */
static ep_t *s_find(tb_busmon_t *m, const char *e, int event)
{
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < m->n; i++) {
            ep_t *ep = &m->ep[i];
            int fits = ep->listen ? s_for_listen(event) : s_for_connect(event);
            if (fits && (pass == 0 ? strcmp(ep->endpoint, e) == 0
                                   : ep->alias[0] != '\0' && strcmp(ep->alias, e) == 0)) {
                return ep;
            }
        }
    }
    parts_t pe;
    if (!s_parts(e, &pe)) {
        return NULL;
    }
    /* A bound wildcard: its connections are named by their local address. */
    for (size_t i = 0; s_for_listen(event) && i < m->n; i++) {
        ep_t *ep = &m->ep[i];
        const char *bound = ep->alias[0] != '\0' ? ep->alias : ep->endpoint;
        parts_t pb;
        if (ep->listen && s_parts(bound, &pb) && s_wildcard(pb.host, pb.host_len) &&
            s_same_port(&pb, &pe, bound, e)) {
            return ep;
        }
    }
    /* A host name connected to again: named by the address it resolved to.
     * Of several names with this port, the one that just lost its
     * connection is the one reconnecting. */
    ep_t *found = NULL;
    for (size_t i = 0; s_for_connect(event) && i < m->n; i++) {
        ep_t *ep = &m->ep[i];
        parts_t pc;
        if (!ep->listen && s_parts(ep->endpoint, &pc) && !s_numeric(pc.host, pc.host_len) &&
            s_same_port(&pc, &pe, ep->endpoint, e) &&
            (found == NULL || ep->last_event == ZMQ_EVENT_DISCONNECTED)) {
            found = ep;
        }
    }
    if (found != NULL) {
        snprintf(found->alias, sizeof found->alias, "%s", e);
    }
    return found;
}

static int s_failing(ep_state_t s)
{
    return s == EP_REFUSED || s == EP_UNRESOLVABLE || s == EP_HANDSHAKE_FAILED ||
           s == EP_DISCONNECTED;
}

/* The state is the latest verdict on the endpoint: an endpoint that keeps
 * failing the same way (every retry refused, every handshake broken) stays
 * in its state, and its since-time is when that began. */
static void s_set(ep_t *ep, ep_state_t state, const char *detail)
{
    if (state != ep->state) {
        ep->since_ns = tb_time_now_ns();
        ep->since_mono = tb_time_mono_ns();
        /* Logs explain; status shows. One line per change, never per retry. */
        if (s_failing(state)) {
            tb_log(TB_LOG_WARN, LOG_COMPONENT, "probe endpoint %s: %s (%s)", ep->endpoint,
                   s_state_names[state], detail);
        } else if (state == EP_CONNECTED) {
            tb_log(TB_LOG_INFO, LOG_COMPONENT, "probe endpoint %s: connected", ep->endpoint);
        }
        ep->state = state;
    }
    snprintf(ep->detail, sizeof ep->detail, "%s", detail);
}

/* Why a handshake failed, for a human. waited_ms: how long the connection
 * had been open, or -1 when not known. The value of a failure "with no
 * detail" is whatever errno held then: not shown, it may be stale. */
static void s_handshake_detail(int event, uint32_t value, int64_t waited_ms, char *buf, size_t size)
{
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        /* The collector is the CURVE server: its guard said no. */
        snprintf(buf, size,
                 "authentication refused (ZAP status %u): the probe's CURVE key is not in "
                 "--curve-allow-probes",
                 value);
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
        const char *what = value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
                               ? "another security mechanism (CURVE on one side only, or "
                                 "not a ZeroMQ peer)"
                           : value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC
                               ? "cryptographic error (the probe's --curve-server-key is not "
                                 "this collector's key?)"
                               : "the peer does not speak ZMTP correctly";
        snprintf(buf, size, "ZMTP protocol error 0x%08x: %s", value, what);
    } else if (waited_ms >= TB_BUSMON_HANDSHAKE_MS - 100) {
        snprintf(buf, size, "no ZMTP handshake within %d ms: not a ZeroMQ peer?",
                 TB_BUSMON_HANDSHAKE_MS);
    } else if (waited_ms >= 0) {
        snprintf(buf, size, "the ZMTP handshake broke off: not a ZeroMQ peer?");
    } else {
        snprintf(buf, size, "the ZMTP handshake broke off or timed out: not a ZeroMQ peer?");
    }
}

static void s_apply_listen(ep_t *ep, int event, uint32_t value, tb_ratelimit_t *rl)
{
    char why[TB_BUSMON_DETAIL_MAX];
    switch (event) {
    case ZMQ_EVENT_ACCEPTED:
        ep->peers++;
        break;
    case ZMQ_EVENT_DISCONNECTED:
        /* Every accepted connection ends with exactly one of these. */
        ep->peers -= ep->peers > 0;
        break;
    case ZMQ_EVENT_ACCEPT_FAILED:
        snprintf(ep->detail, sizeof ep->detail, "last accept failed: %s", strerror((int)value));
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        ep->handshake_failures++;
        s_handshake_detail(event, value, -1, why, sizeof why);
        snprintf(ep->detail, sizeof ep->detail, "last failed handshake: %.120s", why);
        /* A peer refused is the operator's business (a probe with the
         * wrong keys, or a stranger); one that retries is not a log flood. */
        if (tb_ratelimit_allow(rl, tb_time_mono_ns(), NULL)) {
            tb_log(TB_LOG_WARN, LOG_COMPONENT,
                   "listen endpoint %s: a peer failed the handshake: %s", ep->endpoint, why);
        }
        break;
    default:
        break;
    }
}

static void s_apply_connect(ep_t *ep, int event, uint32_t value)
{
    char why[TB_BUSMON_DETAIL_MAX];
    /* libzmq gives up on an endpoint for good after a protocol error (a peer
     * that sent non-ZMTP bytes or a frame over the size limit): the
     * connection ends and no retry follows. A normal end is followed at
     * once by a retry event; one that is not is found by
     * tb_busmon_next_dead(). */
    if (event == ZMQ_EVENT_DISCONNECTED || event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL ||
        event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL || event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        ep->ended_mono = tb_time_mono_ns();
    } else if (event == ZMQ_EVENT_CONNECT_RETRIED || event == ZMQ_EVENT_CONNECT_DELAYED ||
               event == ZMQ_EVENT_CONNECTED) {
        ep->ended_mono = 0;
    }
    switch (event) {
    case ZMQ_EVENT_CONNECT_RETRIED:
        ep->retries++;
        /* Two in a row, or one first: no socket was opened in between, the
         * address could not be resolved. */
        if (ep->last_event == 0 || ep->last_event == ZMQ_EVENT_CONNECT_RETRIED) {
            parts_t p;
            if (s_parts(ep->endpoint, &p) && !s_numeric(p.host, p.host_len)) {
                snprintf(why, sizeof why, "host name '%.*s' does not resolve; retrying",
                         (int)p.host_len, p.host);
                s_set(ep, EP_UNRESOLVABLE, why);
            } else {
                s_set(ep, EP_REFUSED, "connection attempt failed at once (no route?); retrying");
            }
        }
        break;
    case ZMQ_EVENT_CLOSED:
        /* A connection attempt ended before it was established. */
        if (ep->last_event == ZMQ_EVENT_CONNECT_DELAYED) {
            s_set(ep, EP_REFUSED, "connection refused or host unreachable; retrying");
        }
        break;
    case ZMQ_EVENT_CONNECTED:
        ep->peers = 1;
        ep->connected_mono = tb_time_mono_ns();
        ep->handshaking = 1;
        /* A failing endpoint stays failed until the handshake succeeds. */
        if (ep->state == EP_CONNECTING) {
            s_set(ep, EP_HANDSHAKING, "connected, ZMTP handshake under way");
        }
        break;
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        ep->handshaking = 0;
        ep->retries = 0;
        s_set(ep, EP_CONNECTED, "");
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        ep->handshaking = 0;
        ep->handshake_failures++;
        s_handshake_detail(event, value,
                           (int64_t)((tb_time_mono_ns() - ep->connected_mono) / TB_NS_PER_MS), why,
                           sizeof why);
        s_set(ep, EP_HANDSHAKE_FAILED, why);
        break;
    case ZMQ_EVENT_DISCONNECTED:
        ep->peers = 0;
        if (ep->handshaking) {
            ep->handshaking = 0;
            ep->handshake_failures++;
            s_set(ep, EP_HANDSHAKE_FAILED,
                  "the connection ended during the ZMTP handshake: not a ZeroMQ peer?");
        } else if (ep->state == EP_CONNECTED) {
            s_set(ep, EP_DISCONNECTED, "connection lost; reconnecting");
        }
        break;
    default:
        break;
    }
}

/* One event (tb_zmon_next). Returns 1 when one was read. */
static int s_read_one(tb_busmon_t *m)
{
    tb_zmon_event_t ev;
    if (tb_zmon_next(&m->zmon, &ev) != 1) {
        return 0;
    }
    if (ev.addr_cut) {
        m->unmatched++;
        return 1;
    }
    ep_t *ep = s_find(m, ev.addr, ev.event);
    if (ep == NULL) {
        m->unmatched++;
        tb_log(TB_LOG_DEBUG, LOG_COMPONENT, "event 0x%x of endpoint %s not watched", ev.event,
               ev.addr);
        return 1;
    }
    if (ep->listen) {
        s_apply_listen(ep, ev.event, ev.value, &m->rl);
    } else {
        s_apply_connect(ep, ev.event, ev.value);
    }
    ep->last_event = ev.event;
    return 1;
}

void tb_busmon_read(tb_busmon_t *m)
{
    for (int i = 0; i < READ_BUDGET && s_read_one(m); i++) {
    }
}

void tb_busmon_pack(const tb_busmon_t *m, msgpack_packer *pk)
{
    uint64_t now = tb_time_mono_ns();
    char when[48];
    msgpack_pack_array(pk, m->n);
    for (size_t i = 0; i < m->n; i++) {
        const ep_t *ep = &m->ep[i];
        msgpack_pack_map(pk, 11);
        tb_mp_kv_str(pk, "endpoint", ep->endpoint);
        tb_mp_kv_u64(pk, "reconnects", ep->reconnects);
        tb_mp_kv_str(pk, "kind", ep->listen ? "listen" : "probe");
        tb_mp_kv_str(pk, "state", s_state_names[ep->state]);
        tb_mp_kv_str(pk, "detail", ep->detail);
        tb_mp_kv_u64(pk, "since_ts", ep->since_ns);
        tb_mp_kv_str(pk, "since_time", tb_time_format(ep->since_ns, 3, when, sizeof when));
        tb_mp_kv_double(pk, "since_s",
                        now > ep->since_mono ? (double)(now - ep->since_mono) / 1e9 : 0.0);
        tb_mp_kv_u64(pk, "retries", ep->retries);
        tb_mp_kv_u64(pk, "peers", ep->peers);
        tb_mp_kv_u64(pk, "handshake_failures", ep->handshake_failures);
    }
}
