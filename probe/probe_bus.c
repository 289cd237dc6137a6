/* probe_bus — the probe's end of the bus (see probe_int.h): the XPUB
 * socket opened, bound to --publish and connected to --connect collectors
 * (CURVE when configured), the subscriptions it reports applied to the
 * streams (a first subscriber starts a source, a newcomer may restart a
 * file's run, the last one leaving stops it), and the socket opened anew
 * when subscriptions to streams nobody offers pile up. */
#include "probe_int.h"

#include "tb_curve.h"
#include "tb_err.h"
#include "tb_log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#define LOG_COMPONENT "probe"

/* Open the XPUB socket, bind --publish (again: the address first bound) and
 * connect to every --connect collector. */
int tb_probe_xpub_open(tb_probe_t *self, char *err, size_t errsize)
{
    const tb_probe_config_t *cfg = &self->cfg;
    self->xpub = zmq_socket(self->zctx, ZMQ_XPUB);
    int one = 1;
    int linger = 1000;
    /* ZMTP heartbeats: a subscriber that vanished without closing its
     * connection (host down, network cut) is dropped after a few seconds, so
     * its subscriptions end and a lossless replay does not wait for it
     * forever. */
    int hb_ivl = 2000;
    int hb_timeout = 6000;
    /* Nothing a subscriber sends is larger than a subscription to the
     * longest topic (with room for ZMTP 3.1's SUBSCRIBE command form): a
     * peer that sends more is disconnected by ZeroMQ before anything is
     * stored (huge subscriptions grew the probe by gigabytes). */
    int64_t maxmsg = 64 + TB_TOPIC_MAX;
    /* CURVE's handshake commands (WELCOME is 168 bytes) and its encrypted
     * messages are larger; only allowed keys get that far. */
    if (cfg->curve != NULL) {
        maxmsg = 1024;
    }
    /* Subscriptions queued from one subscriber before the probe has looked
     * at them: a flood waits in its sender's TCP buffers, not here. */
    int rcvhwm = 64;
    /* VERBOSE: every subscribe reaches the probe (a newcomer to a file
     * stream is seen), an unsubscribe only when the last holder of that
     * subscription has gone, whether it left or unsubscribed: the probe
     * knows exactly whether anybody still holds a stream, however often
     * one peer subscribed. */
    if (self->xpub == NULL ||
        zmq_setsockopt(self->xpub, ZMQ_SNDHWM, &cfg->sndhwm, sizeof cfg->sndhwm) != 0 ||
        zmq_setsockopt(self->xpub, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0 ||
        zmq_setsockopt(self->xpub, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm) != 0 ||
        zmq_setsockopt(self->xpub, ZMQ_XPUB_NODROP, &one, sizeof one) != 0 ||
        zmq_setsockopt(self->xpub, ZMQ_XPUB_VERBOSE, &one, sizeof one) != 0 ||
        zmq_setsockopt(self->xpub, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(self->xpub, ZMQ_HEARTBEAT_IVL, &hb_ivl, sizeof hb_ivl) != 0 ||
        zmq_setsockopt(self->xpub, ZMQ_HEARTBEAT_TIMEOUT, &hb_timeout, sizeof hb_timeout) != 0) {
        snprintf(err, errsize, "cannot create XPUB socket: %s", zmq_strerror(errno));
        return TB_EIO;
    }
    /* CURVE: the collector is the server of every connection, whichever side
     * binds; this end knows its key and proves its own. */
    if (cfg->curve != NULL &&
        (!tb_curve_available() ||
         tb_curve_client(self->xpub, cfg->curve, cfg->curve_server_key) != 0)) {
        snprintf(err, errsize, "cannot set up CURVE: %s",
                 tb_curve_available() ? zmq_strerror(errno) : "this libzmq has no CURVE support");
        return TB_EIO;
    }
    const char *publish = self->bound[0] != '\0' ? self->bound : cfg->publish;
    if (publish != NULL) {
        /* Bound again after a reset: the old listener closes in the
         * background, so the address may be busy for a moment. */
        int rc = zmq_bind(self->xpub, publish);
        for (int i = 0; rc != 0 && errno == EADDRINUSE && self->bound[0] != '\0' && i < 300; i++) {
            zmq_poll(NULL, 0, 10);
            rc = zmq_bind(self->xpub, publish);
        }
        if (rc != 0) {
            snprintf(err, errsize, "cannot bind %s: %s", publish, zmq_strerror(errno));
            return TB_EIO;
        }
        size_t blen = sizeof self->bound;
        if (self->bound[0] == '\0' &&
            zmq_getsockopt(self->xpub, ZMQ_LAST_ENDPOINT, self->bound, &blen) != 0) {
            self->bound[0] = '\0';
        }
    }
    /* Connecting suits a collector that binds, e.g. one a probe behind NAT
     * reaches out to; ZeroMQ reconnects by itself when it goes away. */
    for (size_t i = 0; i < cfg->nconnect; i++) {
        if (zmq_connect(self->xpub, cfg->connect[i]) != 0) {
            snprintf(err, errsize, "cannot connect to %s: %s", cfg->connect[i],
                     zmq_strerror(errno));
            return TB_EIO;
        }
    }
    return 0;
}

/* Close the XPUB and open it again: every subscription it held, the
 * hostile ones with the rest, is gone; collectors reconnect by themselves
 * and subscribe again. The last resort that bounds what an outsider's
 * subscriptions can make it hold. */
static void s_xpub_reset(tb_probe_t *self)
{
    int linger = 0;
    zmq_setsockopt(self->xpub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(self->xpub);
    self->xpub = NULL;
    for (size_t i = 0; i < self->nstreams; i++) {
        probe_stream_t *st = &self->streams[i];
        memset(st->held, 0, sizeof st->held);
        if (st->subscribers > 0) {
            st->subscribers = 0;
            tb_probe_stream_stop(st);
        }
    }
    self->junk_held = 0;
    self->xpub_resets++;
    char err[256];
    if (tb_probe_xpub_open(self, err, sizeof err) != 0) {
        tb_log(TB_LOG_ERROR, LOG_COMPONENT, "%s", err);
    }
}

/* A subscription message is one byte (1 subscribe, 0 unsubscribe) and a
 * topic prefix. Every stream whose topic starts with the prefix is affected,
 * so a subscriber to "" (everything) starts every stream; a prefix that
 * matches no stream nor the offers is ignored (and counted: past
 * TB_PROBE_JUNK_MAX held at once, the socket is opened anew).
 *
 * A newcomer to a file or directory stream being read (a subscription while
 * it is already held) starts a new run from the beginning, so that it gets
 * the whole source; those already there see the new run and start over with
 * it. At most TB_PROBE_RESTARTS times until the source ends, though: later
 * newcomers join the run under way (and get the rest), so that repeated
 * subscriptions cannot keep a replay from ever finishing for the others. */
static void s_handle_subscription(tb_probe_t *self, const uint8_t *msg, size_t len)
{
    if (len < 1 || (msg[0] != 0 && msg[0] != 1)) {
        return;
    }
    const uint8_t *prefix = msg + 1;
    size_t plen = len - 1;
    int matched = plen <= TB_OFFER_TOPIC_LEN && memcmp(TB_OFFER_TOPIC, prefix, plen) == 0;
    /* A new subscriber to the offers (or to everything) hears them at once. */
    if (msg[0] == 1 && matched) {
        self->offer_due = 1;
    }
    for (size_t i = 0; i < self->nstreams; i++) {
        probe_stream_t *st = &self->streams[i];
        if (plen > st->topic_len || memcmp(st->topic, prefix, plen) != 0) {
            continue;
        }
        matched = 1;
        if (msg[0] == 1) {
            int newcomer = st->subscribers > 0;
            if (!st->held[plen]) {
                st->held[plen] = 1;
                st->subscribers++;
            }
            if (!newcomer) {
                tb_probe_stream_start(self, st);
            } else if (st->src->ops->finite && st->restarts < TB_PROBE_RESTARTS) {
                st->restarts++;
                st->src->ops->close(st->src);
                tb_probe_stream_start(self, st);
            } else if (st->src->ops->finite) {
                st->joined++;
                tb_log(TB_LOG_INFO, LOG_COMPONENT,
                       "stream %s: a new subscriber joins the run under way (%u restarts "
                       "already)",
                       st->name, st->restarts);
            }
        } else if (st->held[plen]) {
            st->held[plen] = 0;
            if (--st->subscribers == 0) {
                tb_probe_stream_stop(st);
            }
        }
    }
    if (!matched) {
        if (msg[0] == 1 && ++self->junk_held > TB_PROBE_JUNK_MAX) {
            tb_log(TB_LOG_WARN, LOG_COMPONENT,
                   "over %d subscriptions to streams this probe does not offer: the bus socket "
                   "is opened anew (subscribers reconnect)",
                   TB_PROBE_JUNK_MAX);
            s_xpub_reset(self);
        } else if (msg[0] == 0 && self->junk_held > 0) {
            self->junk_held--;
        }
    }
}

int tb_probe_drain_subscriptions(tb_probe_t *self)
{
    uint8_t buf[TB_TOPIC_MAX + 64];
    for (;;) {
        int n = zmq_recv(self->xpub, buf, sizeof buf, ZMQ_DONTWAIT);
        if (n < 0) {
            return errno == EAGAIN ? 0 : TB_EIO;
        }
        size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf;
        s_handle_subscription(self, buf, len);
    }
}
