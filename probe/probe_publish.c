/* probe_publish — the probe's messages onto the bus: batches, heartbeats,
 * end-of-stream and offers (docs/wire-format.md), never waiting: a full bus
 * keeps a file's message for the next pass and drops (and counts) a live
 * capture's. See probe_int.h. */
#include "probe_int.h"

#include "tb_err.h"
#include "tb_log.h"
#include "tb_text.h"
#include "tb_time.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#define LOG_COMPONENT "probe"
void tb_probe_header(const tb_probe_t *self, const probe_stream_t *st, int type,
                     tb_wire_header_t *h)
{
    memset(h, 0, sizeof *h);
    h->type = (uint8_t)type;
    memcpy(h->probe_id, self->cfg.id, sizeof h->probe_id);
    h->boot_ns = self->boot_ns;
    memcpy(h->stream, st->name, sizeof h->stream);
    h->seq = st->seq;
    h->run = st->run;
}

/* Send topic + body without waiting. Returns 0, TB_EAGAIN when the bus is at
 * its high-water mark (nothing was sent), or TB_EIO. */
int tb_probe_send(tb_probe_t *self, const probe_stream_t *st, const uint8_t *body, size_t len)
{
    if (zmq_send(self->xpub, st->topic, st->topic_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        return errno == EAGAIN ? TB_EAGAIN : TB_EIO;
    }
    /* Once the first frame is accepted the rest of the message always is:
     * XPUB checks the high-water mark on the first frame only. */
    if (zmq_send(self->xpub, body, len, 0) < 0) {
        return TB_EIO;
    }
    return 0;
}

/* Try to send the message waiting in st->out. A lossless source (a file, a
 * directory) keeps it until the bus has room; a live source drops it and
 * counts the drop. A batch
 * counts as published (packets, batches) only once the bus has taken it, so
 * heartbeats and end-of-stream never claim what was dropped. */
int tb_probe_flush_pending(tb_probe_t *self, probe_stream_t *st)
{
    if (st->out_len == 0) {
        return 0;
    }
    int rc = tb_probe_send(self, st, st->out, st->out_len);
    if (rc == TB_EAGAIN && !st->src->ops->lossless) {
        st->bus_drops++;
        st->out_len = 0;
        return 0;
    }
    if (rc == 0) {
        st->seq++;
        st->out_len = 0;
        if (st->out_is_batch) {
            st->packets += st->out_packets;
            st->batches++;
        }
    } else if (rc != TB_EAGAIN) {
        tb_log(TB_LOG_ERROR, LOG_COMPONENT, "stream %s: send failed: %s", st->name,
               zmq_strerror(errno));
        st->out_len = 0;
    }
    return rc;
}

void tb_probe_encode_batch(tb_probe_t *self, probe_stream_t *st)
{
    tb_wire_header_t h;
    tb_probe_header(self, st, TB_MSG_BATCH, &h);
    size_t len = 0;
    const tb_point_table_t *points =
        st->src->ops->points != NULL ? st->src->ops->points(st->src) : NULL;
    if (tb_wire_encode_batch_points(&h, st->batch, st->nbatch, points, st->out, st->out_cap,
                                    &len) != 0) {
        /* Cannot happen: out_cap is sized for a full batch. */
        tb_log(TB_LOG_ERROR, LOG_COMPONENT, "stream %s: batch of %zu does not fit", st->name,
               st->nbatch);
        st->nbatch = 0;
        return;
    }
    st->out_len = len;
    st->out_packets = st->nbatch;
    st->out_is_batch = 1;
    st->nbatch = 0;
}

void tb_probe_encode_eos(tb_probe_t *self, probe_stream_t *st)
{
    tb_wire_header_t h;
    tb_probe_header(self, st, TB_MSG_EOS, &h);
    tb_eos_t eos = {.packets = st->packets, .batches = st->batches, .first_seq = st->run_first_seq};
    eos.error = st->state == TB_SRC_ERROR;
    tb_text_copy(eos.detail, sizeof eos.detail, st->detail);
    size_t len = 0;
    int rc = tb_wire_encode_eos(&h, &eos, st->out, st->out_cap, &len);
    if (rc == 0) {
        st->out_len = len;
        st->out_is_batch = 0;
    } else {
        tb_log(TB_LOG_ERROR, LOG_COMPONENT, "stream %s: cannot encode end-of-stream: %s", st->name,
               tb_strerror(rc));
    }
    st->eos_due = 0;
}

/* Send the heartbeat owed, if the bus takes it now; otherwise it stays owed
 * and the loop tries again on its next pass. */
void tb_probe_send_heartbeat(tb_probe_t *self, probe_stream_t *st)
{
    /* A message waiting for the bus already carries the next sequence
     * number: the heartbeat follows it (the service pass sends it as soon as
     * the bus takes the waiting message, before the next batch). */
    if (!st->hb_due || st->out_len > 0) {
        return;
    }
    tb_source_stats_t ss;
    st->src->ops->stats(st->src, &ss);
    tb_heartbeat_t hb = {
        .state = (uint8_t)st->state,
        .pcap_recv = ss.pcap_recv,
        .pcap_drop = ss.pcap_drop,
        .pcap_ifdrop = ss.pcap_ifdrop,
        .packets = st->packets,
        .batches = st->batches,
        .bus_drops = st->bus_drops,
        .decode_errors = ss.decode_errors,
        .sampled_out = ss.sampled_out,
        .files_skipped = ss.files_skipped,
        .frames_lost = ss.frames_lost,
        .frames_bad = ss.frames_bad,
    };
    if (st->detail[0] == '\0' && st->state == TB_SRC_RUNNING && st->src->ops->describe != NULL) {
        char what[TB_DETAIL_MAX + 1] = "";
        st->src->ops->describe(st->src, what, sizeof what);
        tb_text_copy(hb.detail, sizeof hb.detail, what);
    } else {
        tb_text_copy(hb.detail, sizeof hb.detail, st->detail);
    }
    tb_wire_header_t h;
    tb_probe_header(self, st, TB_MSG_HEARTBEAT, &h);
    uint8_t buf[TB_PROBE_CONTROL_MSG_MAX];
    size_t len = 0;
    int rc = tb_wire_encode_heartbeat(&h, &hb, buf, sizeof buf, &len);
    if (rc != 0) {
        tb_log(TB_LOG_ERROR, LOG_COMPONENT, "stream %s: cannot encode heartbeat: %s", st->name,
               tb_strerror(rc));
        st->hb_due = 0;
        return;
    }
    rc = tb_probe_send(self, st, buf, len);
    if (rc == 0) {
        st->seq++;
        st->hb_due = 0;
    } else if (rc != TB_EAGAIN) {
        st->hb_due = 0;
    }
}

/* Publish the offer of every stream: name, source kind, state. Without
 * waiting: when the bus has no room it stays due and the loop tries again. */
void tb_probe_send_offer(tb_probe_t *self, uint64_t now)
{
    tb_wire_offer_t *o = &self->offer;
    memcpy(o->probe_id, self->cfg.id, sizeof o->probe_id);
    o->boot_ns = self->boot_ns;
    o->seq = self->offer_seq;
    uint64_t ttl = 3ull * self->cfg.offer_ms;
    o->ttl_ms = (uint32_t)(ttl < 1000 ? 1000 : ttl > TB_OFFER_TTL_MAX ? TB_OFFER_TTL_MAX : ttl);
    o->n = self->nstreams;
    for (size_t i = 0; i < self->nstreams; i++) {
        const probe_stream_t *st = &self->streams[i];
        memcpy(o->entries[i].stream, st->name, sizeof o->entries[i].stream);
        tb_text_copy(o->entries[i].kind, sizeof o->entries[i].kind, st->src->ops->kind);
        o->entries[i].state = (uint8_t)st->state;
    }
    size_t len = 0;
    int rc = tb_wire_encode_offer(o, self->offer_buf, sizeof self->offer_buf, &len);
    if (rc != 0) {
        tb_log(TB_LOG_ERROR, LOG_COMPONENT, "cannot encode the stream offer: %s", tb_strerror(rc));
        self->offer_due = 0;
        self->next_offer = now + (uint64_t)self->cfg.offer_ms * TB_NS_PER_MS;
        return;
    }
    if (zmq_send(self->xpub, TB_OFFER_TOPIC, TB_OFFER_TOPIC_LEN, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        /* No room now: again in a moment, not on every pass of a busy loop. */
        self->offer_due = 0;
        self->next_offer = now + 100 * TB_NS_PER_MS;
        return;
    }
    if (zmq_send(self->xpub, self->offer_buf, len, 0) >= 0) {
        self->offer_seq++;
    }
    self->offer_due = 0;
    self->next_offer = now + (uint64_t)self->cfg.offer_ms * TB_NS_PER_MS;
}
