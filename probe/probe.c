/* probe — see probe.h: the reactor (streams, sources, the loop). The bus
 * socket and its subscriptions are probe_bus.c, the messages
 * probe_publish.c; probe_int.h has what they share. */
#include "probe.h"
#include "probe_int.h"

#include "source.h"
#include "tb_err.h"
#include "tb_log.h"
#include "tb_text.h"
#include "tb_time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define LOG_COMPONENT "probe"

void tb_probe_config_defaults(tb_probe_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->publish = "tcp://*:5556";
    cfg->batch_size = 1024;
    cfg->batch_ms = 100;
    cfg->sndhwm = 100;
    cfg->heartbeat_ms = 1000;
    cfg->offer_ms = 2000;
    tb_source_live_cfg_defaults(&cfg->src.live);
}

static void s_stream_free(probe_stream_t *st)
{
    tb_source_destroy(&st->src);
    free(st->batch);
    free(st->out);
}

void tb_probe_destroy(tb_probe_t **p)
{
    if (p == NULL || *p == NULL) {
        return;
    }
    tb_probe_t *self = *p;
    *p = NULL;
    for (size_t i = 0; i < self->nstreams; i++) {
        s_stream_free(&self->streams[i]);
    }
    free(self->streams);
    if (self->xpub != NULL) {
        zmq_close(self->xpub);
    }
    if (self->zctx != NULL) {
        zmq_ctx_term(self->zctx);
    }
    free(self);
}

/* Did another stream of the probe have the same checkpoint file as `stream`
 * before stream names were escaped in checkpoint names ('/' became '_')? */
static int s_legacy_shared(const tb_probe_config_t *cfg, const char *stream)
{
    char mine[TB_STREAM_MAX + 32], legacy[TB_STREAM_MAX + 32];
    char name[3 * TB_STREAM_MAX + 32];
    if (tb_source_checkpoint_name(stream, name, sizeof name, mine, sizeof mine) != 0 ||
        mine[0] == '\0') {
        return 0; /* no '/': the name did not change */
    }
    for (size_t i = 0; i < cfg->nsources; i++) {
        const char *other = cfg->sources[i].stream;
        if (strcmp(other, stream) == 0 ||
            tb_source_checkpoint_name(other, name, sizeof name, legacy, sizeof legacy) != 0) {
            continue;
        }
        /* An unchanged name is its own legacy name. */
        if (strcmp(legacy[0] != '\0' ? legacy : name, mine) == 0) {
            return 1;
        }
    }
    return 0;
}

static int s_stream_init(tb_probe_t *self, probe_stream_t *st, const tb_probe_source_cfg_t *sc,
                         char *err, size_t errsize)
{
    if (tb_wire_name_valid(sc->stream) != 0) {
        snprintf(err, errsize,
                 "invalid stream name '%s' (1-%d characters of A-Z a-z 0-9 . _ : / @ + -)",
                 sc->stream, TB_STREAM_MAX);
        return TB_EINVAL;
    }
    snprintf(st->name, sizeof st->name, "%s", sc->stream);
    int tl = tb_wire_topic(st->name, st->topic, sizeof st->topic);
    if (tl < 0) {
        snprintf(err, errsize, "invalid stream name '%s'", sc->stream);
        return TB_EINVAL;
    }
    st->topic_len = (size_t)tl;
    char serr[256] = "";
    tb_source_cfg_t scfg = self->cfg.src;
    if (sc->filter != NULL) {
        scfg.live.filter = sc->filter; /* this stream's own filter wins */
    }
    scfg.dir.legacy_shared = s_legacy_shared(&self->cfg, sc->stream);
    st->src = tb_source_new(sc->stream, sc->spec, &scfg, serr, sizeof serr);
    if (st->src == NULL) {
        snprintf(err, errsize, "stream %s: %s", sc->stream, serr);
        return TB_EINVAL;
    }
    st->batch = calloc(self->cfg.batch_size, sizeof *st->batch);
    /* Room for a full batch, and at least for the largest end-of-stream. */
    st->out_cap = TB_WIRE_HEADER_MAX_BYTES + TB_WIRE_POINTS_MAX_BYTES +
                  self->cfg.batch_size * TB_WIRE_SUMMARY_MAX_BYTES;
    if (st->out_cap < TB_PROBE_CONTROL_MSG_MAX) {
        st->out_cap = TB_PROBE_CONTROL_MSG_MAX;
    }
    st->out = malloc(st->out_cap);
    if (st->batch == NULL || st->out == NULL) {
        snprintf(err, errsize, "out of memory for stream %s", sc->stream);
        return TB_ENOMEM;
    }
    st->state = TB_SRC_WAITING;
    return 0;
}

tb_probe_t *tb_probe_new(const tb_probe_config_t *cfg, char *err, size_t errsize)
{
    if (cfg->nsources == 0 || cfg->nsources > TB_PROBE_MAX_SOURCES) {
        snprintf(err, errsize, cfg->nsources ? "more than %d sources" : "no --source given",
                 TB_PROBE_MAX_SOURCES);
        return NULL;
    }
    if (tb_wire_name_valid(cfg->id) != 0) {
        snprintf(err, errsize, "invalid probe id '%s'", cfg->id);
        return NULL;
    }
    if (cfg->batch_size == 0 || cfg->batch_size > TB_WIRE_MAX_BATCH) {
        snprintf(err, errsize, "batch size must be 1..%u", TB_WIRE_MAX_BATCH);
        return NULL;
    }
    tb_probe_t *self = calloc(1, sizeof *self);
    if (self == NULL) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    self->cfg = *cfg;
    if (self->cfg.offer_ms == 0) {
        self->cfg.offer_ms = 2000;
    }
    self->boot_ns = tb_time_now_ns();
    self->streams = calloc(cfg->nsources, sizeof *self->streams);
    if (self->streams == NULL) {
        snprintf(err, errsize, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < cfg->nsources; i++) {
        self->nstreams = i + 1;
        if (s_stream_init(self, &self->streams[i], &cfg->sources[i], err, errsize) != 0) {
            goto fail;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(self->streams[j].name, self->streams[i].name) == 0) {
                snprintf(err, errsize, "stream %s given twice", self->streams[i].name);
                goto fail;
            }
        }
    }
    return self;
fail:
    tb_probe_destroy(&self);
    return NULL;
}

int tb_probe_start(tb_probe_t *self, char *err, size_t errsize)
{
    const tb_probe_config_t *cfg = &self->cfg;
    if (self->zctx != NULL) {
        snprintf(err, errsize, "the probe is started already");
        return TB_EINVAL;
    }
    self->zctx = zmq_ctx_new();
    if (self->zctx == NULL) {
        snprintf(err, errsize, "cannot create ZeroMQ context: %s", zmq_strerror(errno));
        return TB_EIO;
    }
    int rc = tb_probe_xpub_open(self, err, errsize);
    if (rc != 0) {
        return rc;
    }
    if (cfg->publish != NULL && cfg->curve == NULL && !tb_curve_endpoint_local(cfg->publish)) {
        tb_log(TB_LOG_WARN, LOG_COMPONENT,
               "%s publishes to the network without CURVE: anyone who reaches it can read the "
               "addresses and ports of the traffic captured here (see docs/security.md)",
               cfg->publish);
    }
    return 0;
}

void tb_probe_stream_start(tb_probe_t *self, probe_stream_t *st)
{
    (void)self;
    char err[256] = "";
    st->nbatch = 0;
    st->out_len = 0;
    st->eof = 0;
    st->eos_due = 0;
    st->final_hb_sent = 0;
    st->packets = 0;
    st->batches = 0;
    st->detail[0] = '\0';
    st->run_started = tb_time_mono_ns();
    /* Runs number the readings of a finite source; sources that never start
     * over keep run 0, so their collectors continue rather than restart. */
    if (st->src->ops->finite) {
        st->run++;
    }
    st->run_first_seq = st->seq;
    if (st->src->ops->open(st->src, err, sizeof err) != 0) {
        tb_log(TB_LOG_ERROR, LOG_COMPONENT, "stream %s: %s", st->name, err);
        tb_text_copy(st->detail, sizeof st->detail, err);
        st->state = TB_SRC_ERROR;
        st->eof = 1;
        st->eos_due = st->src->ops->finite;
        return;
    }
    st->state = TB_SRC_RUNNING;
    if (st->src->ops->finite) {
        tb_log(TB_LOG_INFO, LOG_COMPONENT, "stream %s: run %llu of the %s source started", st->name,
               (unsigned long long)st->run, st->src->ops->kind);
    } else {
        tb_log(TB_LOG_INFO, LOG_COMPONENT, "stream %s: %s source started", st->name,
               st->src->ops->kind);
    }
}

void tb_probe_stream_stop(probe_stream_t *st)
{
    st->restarts = 0;
    st->src->ops->close(st->src);
    st->nbatch = 0;
    st->out_len = 0;
    st->eos_due = 0;
    st->state = TB_SRC_WAITING;
    tb_source_stats_t ss;
    st->src->ops->stats(st->src, &ss);
    tb_log(TB_LOG_INFO, LOG_COMPONENT,
           "stream %s: no subscriber left, source stopped (%llu packets in %llu batches "
           "published, %llu batches dropped on a full bus, %llu sampled out, capture: %llu "
           "received, %llu dropped)",
           st->name, (unsigned long long)st->packets, (unsigned long long)st->batches,
           (unsigned long long)st->bus_drops, (unsigned long long)ss.sampled_out,
           (unsigned long long)ss.pcap_recv, (unsigned long long)(ss.pcap_drop + ss.pcap_ifdrop));
}

/* Move one stream forward as far as the bus allows. Returns 1 if it has more
 * work that can be done right now, 0 if it is idle or waiting for the bus. */
static int s_stream_service(tb_probe_t *self, probe_stream_t *st, uint64_t now)
{
    if (st->subscribers == 0) {
        return 0;
    }
    if (tb_probe_flush_pending(self, st) != 0) {
        return 0;
    }
    int owed = st->hb_due;
    tb_probe_send_heartbeat(self, st); /* if one is owed: now, between two messages */
    if (owed && !st->hb_due && st->eof && st->nbatch == 0 && st->out_len == 0) {
        /* Everything read is out: this heartbeat carries the final counters.
         * (Owing a second one here would never end on a bus with room for
         * one message: each pass would send one and find no room for the
         * other.) */
        st->final_hb_sent = 1;
    }
    if (st->nbatch > 0 && (st->nbatch == self->cfg.batch_size || st->eof ||
                           now - st->batch_started >= self->cfg.batch_ms * TB_NS_PER_MS)) {
        tb_probe_encode_batch(self, st);
        if (tb_probe_flush_pending(self, st) != 0) {
            return 0;
        }
    }
    if (st->eof) {
        if (st->eos_due) {
            /* The counters as they stand at the end (files skipped, decode
             * errors) go out before the end-of-stream, so a collector's final
             * loss for the run has them. */
            if (!st->final_hb_sent) {
                st->hb_due = 1;
                tb_probe_send_heartbeat(self, st);
                if (st->hb_due) {
                    return 0; /* the bus is full: again on the next pass */
                }
                st->final_hb_sent = 1;
            }
            tb_probe_encode_eos(self, st);
            st->restarts = 0; /* the next newcomer starts a whole new run */
            if (st->state != TB_SRC_ERROR) {
                st->state = TB_SRC_FINISHED;
            }
            double secs = (double)(now - st->run_started) / 1e9;
            tb_log(TB_LOG_INFO, LOG_COMPONENT,
                   "stream %s: %s after %llu packets in %llu batches (%.3f s, %.0f packets/s)",
                   st->name, st->state == TB_SRC_ERROR ? "ended with an error" : "finished",
                   (unsigned long long)st->packets, (unsigned long long)st->batches, secs,
                   secs > 0 ? (double)st->packets / secs : 0.0);
            tb_probe_flush_pending(self, st);
        }
        return 0;
    }
    if (st->state != TB_SRC_RUNNING) {
        return 0;
    }
    char err[256] = "";
    int eof = 0;
    size_t room = self->cfg.batch_size - st->nbatch;
    int n = st->src->ops->read(st->src, st->batch + st->nbatch, room, &eof, err, sizeof err);
    if (n > 0) {
        if (st->nbatch == 0) {
            st->batch_started = now;
        }
        st->nbatch += (size_t)n;
    }
    if (eof) {
        st->eof = 1;
        st->eos_due = st->src->ops->finite;
        if (err[0] != '\0') {
            tb_log(TB_LOG_ERROR, LOG_COMPONENT, "stream %s: %s", st->name, err);
            tb_text_copy(st->detail, sizeof st->detail, err);
            st->state = TB_SRC_ERROR;
        }
        st->src->ops->close(st->src);
        return 1;
    }
    return n > 0 || st->nbatch == self->cfg.batch_size;
}

/* Tell a source that keeps a checkpoint when everything it gave is out. */
static void s_sync_source(probe_stream_t *st)
{
    if (st->src->ops->sync != NULL && st->nbatch == 0 && st->out_len == 0 &&
        st->state == TB_SRC_RUNNING) {
        st->src->ops->sync(st->src);
    }
}

/* Wait up to the deadline for the stream's pending message to go out.
 * Returns 1 when nothing is pending any more. */
static int s_drain_pending(tb_probe_t *self, probe_stream_t *st, uint64_t deadline)
{
    while (st->out_len > 0 && tb_probe_flush_pending(self, st) == TB_EAGAIN &&
           tb_time_mono_ns() < deadline) {
        zmq_poll(NULL, 0, 5);
    }
    return st->out_len == 0;
}

/* On shutdown, for every subscribed stream: send the open batch, end a
 * finite source that was interrupted with an end-of-stream saying so (its
 * subscribers must not wait for more), then a last heartbeat. The bus gets at
 * most `budget_ms` in all to take it. */
static void s_shutdown_flush(tb_probe_t *self, uint32_t budget_ms)
{
    uint64_t deadline = tb_time_mono_ns() + (uint64_t)budget_ms * TB_NS_PER_MS;
    for (size_t i = 0; i < self->nstreams; i++) {
        probe_stream_t *st = &self->streams[i];
        if (st->subscribers == 0) {
            continue;
        }
        size_t unsent = st->nbatch;
        if (st->out_len == 0 && st->nbatch > 0) {
            tb_probe_encode_batch(self, st);
        }
        if (s_drain_pending(self, st, deadline)) {
            s_sync_source(st);
        } else {
            tb_log(TB_LOG_WARN, LOG_COMPONENT,
                   "stream %s: the bus took nothing more before shutdown (%zu packets unsent)",
                   st->name, unsent);
            continue;
        }
        if (st->src->ops->finite && st->state == TB_SRC_RUNNING && !st->eof) {
            st->state = TB_SRC_ERROR;
            tb_text_copy(st->detail, sizeof st->detail,
                         "probe stopped before the end of the source");
            st->eof = 1;
            st->eos_due = 1;
        }
        if (st->eos_due) {
            tb_probe_encode_eos(self, st);
            s_drain_pending(self, st, deadline);
        }
        st->hb_due = 1;
        tb_probe_send_heartbeat(self, st);
    }
}

/* The poll items: the XPUB socket, the stop descriptor (if any), then the
 * selectable descriptor of every capturing live source. A readable capture
 * only wakes the loop: the service pass reads every running source anyway, in
 * bounded batches, so neither the bus nor a busy capture starves the other.
 * Returns the number of items; *nfixed is the count before the captures. */
static int s_poll_items(tb_probe_t *self, int stop_fd, zmq_pollitem_t *items, int *nfixed)
{
    int n = 0;
    items[n++] = (zmq_pollitem_t){.socket = self->xpub, .events = ZMQ_POLLIN};
    if (stop_fd >= 0) {
        items[n++] = (zmq_pollitem_t){.fd = stop_fd, .events = ZMQ_POLLIN};
    }
    *nfixed = n;
    for (size_t i = 0; i < self->nstreams; i++) {
        const probe_stream_t *st = &self->streams[i];
        if (st->subscribers == 0 || st->state != TB_SRC_RUNNING || st->eof ||
            st->src->ops->fd == NULL) {
            continue;
        }
        int fd = st->src->ops->fd(st->src);
        if (fd >= 0) {
            items[n++] = (zmq_pollitem_t){.fd = fd, .events = ZMQ_POLLIN};
        }
    }
    return n;
}

int tb_probe_run(tb_probe_t *self, int stop_fd)
{
    if (self->xpub == NULL) {
        tb_log(TB_LOG_ERROR, LOG_COMPONENT, "the probe was not started (tb_probe_start)");
        return TB_EINVAL;
    }
    tb_log(TB_LOG_INFO, LOG_COMPONENT, "probe %s publishing %zu stream(s) on %s%s%s", self->cfg.id,
           self->nstreams, self->cfg.publish ? self->cfg.publish : "",
           self->cfg.publish && self->cfg.nconnect ? " and " : "",
           self->cfg.nconnect ? "connections to collectors" : "");
    for (size_t i = 0; i < self->cfg.nconnect; i++) {
        tb_log(TB_LOG_INFO, LOG_COMPONENT, "connecting to collector %s", self->cfg.connect[i]);
    }
    self->next_heartbeat = tb_time_mono_ns();
    int busy = 0;
    int rc = 0;
    for (;;) {
        zmq_pollitem_t items[2 + TB_PROBE_MAX_SOURCES];
        int nfixed = 0;
        int nitems = s_poll_items(self, stop_fd, items, &nfixed);
        long timeout = busy ? 0 : 5;
        for (size_t i = 0; i < self->nstreams && !busy; i++) {
            if (self->streams[i].out_len == 0 && self->streams[i].nbatch == 0) {
                continue;
            }
            timeout = 1; /* waiting for the bus or for a batch to age */
        }
        if (zmq_poll(items, nitems, timeout) < 0) {
            if (errno == EINTR) {
                continue;
            }
            tb_log(TB_LOG_ERROR, LOG_COMPONENT, "poll failed: %s", zmq_strerror(errno));
            rc = TB_EIO;
            break;
        }
        if (nfixed == 2 && (items[1].revents & ZMQ_POLLIN)) {
            tb_log(TB_LOG_INFO, LOG_COMPONENT, "stop requested, flushing");
            break;
        }
        if ((items[0].revents & ZMQ_POLLIN) && tb_probe_drain_subscriptions(self) != 0) {
            tb_log(TB_LOG_ERROR, LOG_COMPONENT, "XPUB receive failed: %s", zmq_strerror(errno));
            rc = TB_EIO;
            break;
        }
        uint64_t now = tb_time_mono_ns();
        /* Before the streams: a full bus gives its first free place to the
         * offer, which would otherwise wait behind a replay's batches. */
        if (self->offer_due || now >= self->next_offer) {
            tb_probe_send_offer(self, now);
        }
        busy = 0;
        for (size_t i = 0; i < self->nstreams; i++) {
            busy |= s_stream_service(self, &self->streams[i], now);
            s_sync_source(&self->streams[i]);
        }
        if (now >= self->next_heartbeat) {
            for (size_t i = 0; i < self->nstreams; i++) {
                self->streams[i].hb_due = 1;
            }
            self->next_heartbeat = now + (uint64_t)self->cfg.heartbeat_ms * TB_NS_PER_MS;
        }
        for (size_t i = 0; i < self->nstreams; i++) {
            tb_probe_send_heartbeat(self, &self->streams[i]);
        }
    }
    s_shutdown_flush(self, 2000);
    return rc;
}
