/* collector — the loop: bus messages in, statistics kept; see collector.h. */
#include "collector_int.h"
#include "control.h"
#include "sink_log.h"
#include "state.h"

#include "busmon.h"
#include "tb_ctl.h"
#include "tb_err.h"
#include "tb_hash.h"
#include "tb_log.h"
#include "tb_time.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define LOG_COMPONENT "collector"
#define RECV_BUDGET   256                 /* bus messages handled before control gets a look */
#define RECV_TIME_NS  (20 * TB_NS_PER_MS) /* ... or this much time, whichever is first */
#define HEARD_NS      (3 * TB_NS_PER_SEC) /* a probe is heard: a message this recent */

void tb_collector_config_defaults(tb_collector_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->control = "tcp://*:5557";
    cfg->max_streams = 256;
    cfg->flow_capacity = 4096;
    cfg->host_capacity = 4096;
    cfg->top_n = 10;
    cfg->rcvhwm = 100;
}

const char *tb_coll_state_name(stream_state_t s)
{
    switch (s) {
    case STREAM_RUNNING:
        return "running";
    case STREAM_FINISHED:
        return "finished";
    default:
        return "stopped";
    }
}

const char *tb_coll_stream_state(const tb_collector_t *c, const coll_stream_t *st)
{
    (void)c;
    if (st->state == STREAM_STOPPED) {
        return "stopped";
    }
    if (st->state == STREAM_RUNNING && st->heard == 0) {
        return "waiting";
    }
    /* Error only when nothing came and nothing can come: several probes may
     * feed one stream, and one of them failing while another sends is a
     * reason shown beside the state, not the stream's state. */
    size_t reported = 0, failed = 0;
    for (size_t i = 0; i < st->nprobes; i++) {
        reported += st->probes[i].src_state >= 0;
        failed += st->probes[i].src_state == TB_SRC_ERROR;
    }
    if (st->stats->packets == 0 && reported > 0 && failed == reported) {
        return "error";
    }
    return tb_coll_state_name(st->state);
}

void tb_coll_stream_reason(const tb_collector_t *c, const coll_stream_t *st, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < st->nprobes && used + 1 < size; i++) {
        const probe_track_t *pt = &st->probes[i];
        if (pt->src_state != TB_SRC_ERROR) {
            continue;
        }
        int n = snprintf(buf + used, size - used, "%sprobe %s: %s", used ? "; " : "", pt->probe_id,
                         pt->detail[0] ? pt->detail : "source failed");
        used = n < 0 ? used : used + (size_t)n < size ? used + (size_t)n : size - 1;
    }
    /* The details come from the network: no control bytes go on to
     * terminals, logs or line protocol. */
    for (size_t i = 0; i < used; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch < 0x20 || ch == 0x7f) {
            buf[i] = '?';
        }
    }
    if (used == 0 && st->state == STREAM_RUNNING && st->heard == 0 &&
        tb_offers_find(c->offers, st->name) == NULL) {
        int n = snprintf(buf, size, "no probe offers this stream (yet)");
        used = n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
    }
    /* The collector was down while the stream ran: what it did not see. */
    if (st->resumes > 0 && used + 1 < size) {
        char from[48], until[48];
        tb_time_format(st->gap_from_ns, 0, from, sizeof from);
        tb_time_format(st->gap_until_ns, 0, until, sizeof until);
        snprintf(buf + used, size - used,
                 "%snot measured for %.1f s in %llu collector restart(s), the last from %s "
                 "to %s",
                 used ? "; " : "", (double)st->unmeasured_ns / 1e9,
                 (unsigned long long)st->resumes, from, until);
    }
}

/* Release every sink's state for a stream's measurement. */
static void s_sinks_close(tb_collector_t *c, coll_stream_t *st)
{
    for (size_t i = 0; i < c->nsinks; i++) {
        if (c->sinks[i]->ops->stream_close != NULL && st->sink_state[i] != NULL) {
            c->sinks[i]->ops->stream_close(c->sinks[i], st->sink_state[i]);
        }
        st->sink_state[i] = NULL;
    }
}

void tb_collector_destroy(tb_collector_t **p)
{
    if (p == NULL || *p == NULL) {
        return;
    }
    tb_collector_t *c = *p;
    *p = NULL;
    if (c->streams != NULL) {
        for (size_t i = 0; i < c->cfg.max_streams; i++) {
            s_sinks_close(c, &c->streams[i]);
            tb_stats_destroy(&c->streams[i].stats);
        }
    }
    for (size_t i = 0; i < c->nsinks; i++) {
        tb_sink_destroy(&c->sinks[i]);
    }
    tb_offers_destroy(&c->offers);
    free(c->offer_msg);
    free(c->streams);
    free(c->items);
    free(c->agg);
    tb_busmon_destroy(&c->mon); /* before the socket it watches */
    if (c->sub != NULL) {
        zmq_close(c->sub);
    }
    if (c->ctl != NULL) {
        zmq_close(c->ctl);
    }
    /* After the sockets it authenticates for: never a moment when they
     * could take a connection with nobody answering ZAP. */
    tb_guard_destroy(&c->guard);
    tb_keybind_destroy(&c->keybind);
    tb_dbquery_destroy(&c->dbq);
    if (c->zctx != NULL) {
        zmq_ctx_term(c->zctx);
    }
    free(c);
}

/* CURVE: the guard answers ZAP before any socket binds or connects
 * (libzmq lets everybody in while nobody answers), and the collector is the
 * CURVE server of every connection, whichever side connects: probes and
 * tapbusctl need its public key, and ZAP gives every message the key its
 * sender authenticated with. */
static int s_curve_setup(tb_collector_t *c, char *err, size_t errsize)
{
    const tb_collector_config_t *cfg = &c->cfg;
    if (!tb_curve_available()) {
        snprintf(err, errsize, "this libzmq has no CURVE support");
        return -1;
    }
    tb_guard_config_t gc = {cfg->curve_allow, cfg->curve_allow_read, cfg->curve_allow_probes};
    c->guard = tb_guard_new(c->zctx, &gc, err, errsize);
    if (c->guard == NULL) {
        return -1;
    }
    c->keybind = tb_keybind_new(TB_KEYBIND_MAX);
    if (c->keybind == NULL) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    if (tb_curve_server(c->sub, cfg->curve, TB_GUARD_DOMAIN_BUS) != 0 ||
        tb_curve_server(c->ctl, cfg->curve, TB_GUARD_DOMAIN_CONTROL) != 0) {
        snprintf(err, errsize, "cannot set up CURVE: %s", zmq_strerror(errno));
        return -1;
    }
    if (tb_guard_watch(c->guard, c->ctl, err, errsize) != 0 ||
        tb_guard_start(c->guard, err, errsize) != 0) {
        return -1;
    }
    return 0;
}

tb_collector_t *tb_collector_new(const tb_collector_config_t *cfg, char *err, size_t errsize)
{
    if (cfg->nprobes == 0 && cfg->nlisten == 0) {
        snprintf(err, errsize, "no --probe or --listen endpoint given");
        return NULL;
    }
    if (cfg->max_streams == 0 || cfg->flow_capacity == 0 || cfg->host_capacity == 0) {
        snprintf(err, errsize, "stream and table limits must be at least 1");
        return NULL;
    }
    tb_collector_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    c->cfg = *cfg;
    c->started_ns = tb_time_now_ns();
    c->started_mono = tb_time_mono_ns();
    c->seed = tb_hash_seed();
    if (cfg->state_dir != NULL) {
        (void)tb_state_seed(cfg->state_dir, &c->seed); /* estimates carry on */
    }
    tb_ratelimit_init(&c->log_rl, TB_NS_PER_SEC, 5);
    c->streams = calloc(cfg->max_streams, sizeof *c->streams);
    c->items = malloc(TB_WIRE_MAX_BATCH * sizeof *c->items);
    c->agg = malloc(sizeof *c->agg);
    if (c->agg != NULL) {
        tb_batchagg_init(c->agg, c->seed);
    }
    c->sinks[0] = tb_sink_log_new();
    c->nsinks = 1;
    c->offers = tb_offers_new(TB_COLL_OFFER_PROBES, TB_COLL_OFFER_STREAMS);
    c->offer_msg = malloc(sizeof *c->offer_msg);
    if (c->streams == NULL || c->items == NULL || c->agg == NULL || c->sinks[0] == NULL ||
        c->offers == NULL ||
        c->offer_msg == NULL) {
        snprintf(err, errsize, "out of memory");
        goto fail;
    }
    if (cfg->db != NULL) {
        c->db = tb_influx_sink_new(cfg->db, c->seed, err, errsize);
        if (c->db == NULL) {
            goto fail;
        }
        c->sinks[c->nsinks++] = c->db;
        if (tb_influx_sink_start(c->db, err, errsize) != 0) {
            goto fail;
        }
    }
    c->zctx = zmq_ctx_new();
    if (c->zctx == NULL) {
        snprintf(err, errsize, "cannot create ZeroMQ context: %s", zmq_strerror(errno));
        goto fail;
    }
    c->sub = zmq_socket(c->zctx, ZMQ_SUB);
    c->ctl = zmq_socket(c->zctx, ZMQ_ROUTER);
    int64_t maxmsg = TB_WIRE_MAX_MSG + TB_TOPIC_MAX;
    int64_t maxctl = TB_CTL_MAX_MSG;
    /* What one control client can make the collector hold: this many replies
     * it has not read, this many requests not yet handled. */
    int ctl_sndhwm = TB_COLL_CTL_SNDHWM;
    int ctl_rcvhwm = TB_COLL_CTL_RCVHWM;
    int one = 1;
    int linger = 0;
    /* ZMTP heartbeats: a probe that vanished without closing the connection
     * is noticed, and the SUB socket reconnects (re-subscribing) when it is
     * back. */
    int hb_ivl = 2000;
    int hb_timeout = 6000;
    /* A peer that is not a ZeroMQ peer at all shows as such within this. */
    int hs_ivl = TB_BUSMON_HANDSHAKE_MS;
    if (c->sub == NULL || c->ctl == NULL ||
        zmq_setsockopt(c->sub, ZMQ_RCVHWM, &cfg->rcvhwm, sizeof cfg->rcvhwm) != 0 ||
        zmq_setsockopt(c->sub, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0 ||
        zmq_setsockopt(c->sub, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(c->sub, ZMQ_HEARTBEAT_IVL, &hb_ivl, sizeof hb_ivl) != 0 ||
        zmq_setsockopt(c->sub, ZMQ_HEARTBEAT_TIMEOUT, &hb_timeout, sizeof hb_timeout) != 0 ||
        zmq_setsockopt(c->sub, ZMQ_HANDSHAKE_IVL, &hs_ivl, sizeof hs_ivl) != 0 ||
        zmq_setsockopt(c->ctl, ZMQ_MAXMSGSIZE, &maxctl, sizeof maxctl) != 0 ||
        zmq_setsockopt(c->ctl, ZMQ_SNDHWM, &ctl_sndhwm, sizeof ctl_sndhwm) != 0 ||
        zmq_setsockopt(c->ctl, ZMQ_RCVHWM, &ctl_rcvhwm, sizeof ctl_rcvhwm) != 0 ||
        zmq_setsockopt(c->ctl, ZMQ_ROUTER_MANDATORY, &one, sizeof one) != 0 ||
        zmq_setsockopt(c->ctl, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        /* Stream discovery: every probe's offers, always. */
        zmq_setsockopt(c->sub, ZMQ_SUBSCRIBE, TB_OFFER_TOPIC, TB_OFFER_TOPIC_LEN) != 0) {
        snprintf(err, errsize, "cannot create sockets: %s", zmq_strerror(errno));
        goto fail;
    }
    if (cfg->curve != NULL && s_curve_setup(c, err, errsize) != 0) {
        goto fail;
    }
    /* Every endpoint's fate (refused, unresolvable, handshake failed, ...)
     * is watched from before the first connection attempt. */
    c->mon = tb_busmon_new(c->zctx, c->sub, err, errsize);
    if (c->mon == NULL) {
        goto fail;
    }
    for (size_t i = 0; i < cfg->nprobes; i++) {
        if (tb_busmon_add(c->mon, cfg->probes[i], 0, NULL) != 0) {
            snprintf(err, errsize, "probe endpoint too long: %.64s...", cfg->probes[i]);
            goto fail;
        }
        if (zmq_connect(c->sub, cfg->probes[i]) != 0) {
            snprintf(err, errsize, "cannot connect to probe %s: %s", cfg->probes[i],
                     zmq_strerror(errno));
            goto fail;
        }
    }
    /* Probes that connect to us (behind NAT, or configured to push). */
    for (size_t i = 0; i < cfg->nlisten; i++) {
        if (zmq_bind(c->sub, cfg->listen[i]) != 0) {
            snprintf(err, errsize, "cannot bind %s for probes: %s", cfg->listen[i],
                     zmq_strerror(errno));
            goto fail;
        }
        char bound[TB_BUSMON_ENDPOINT_MAX] = "";
        size_t blen = sizeof bound;
        if (zmq_getsockopt(c->sub, ZMQ_LAST_ENDPOINT, bound, &blen) != 0) {
            bound[0] = '\0';
        }
        if (tb_busmon_add(c->mon, cfg->listen[i], 1, bound[0] ? bound : NULL) != 0) {
            snprintf(err, errsize, "listen endpoint too long: %.64s...", cfg->listen[i]);
            goto fail;
        }
    }
    if (cfg->db != NULL) {
        c->dbq = tb_dbquery_new(c->zctx, &cfg->db->writer.db, err, errsize);
        if (c->dbq == NULL || tb_dbquery_start(c->dbq, err, errsize) != 0) {
            goto fail;
        }
    }
    if (zmq_bind(c->ctl, cfg->control) != 0) {
        snprintf(err, errsize, "cannot bind control endpoint %s: %s", cfg->control,
                 zmq_strerror(errno));
        goto fail;
    }
    /* The streams of the last run come back before anything is answered. */
    if (cfg->state_dir != NULL &&
        (tb_state_check_dir(cfg->state_dir, err, errsize) != 0 ||
         tb_state_load(c, err, errsize) != 0)) {
        goto fail;
    }
    c->state_dirty = 0;
    c->next_state_ns = tb_time_mono_ns() + TB_STATE_PERIOD_NS;
    return c;
fail:
    tb_collector_destroy(&c);
    return NULL;
}

/* Log a per-message event (a gap, a restart, a bad message) through the
 * rate limiter, saying how many were suppressed since the last line. */
static void s_log_limited(tb_collector_t *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void s_log_limited(tb_collector_t *c, int level, const char *fmt, ...)
{
    uint64_t suppressed = 0;
    if (level > tb_log_get_level() ||
        !tb_ratelimit_allow(&c->log_rl, tb_time_mono_ns(), &suppressed)) {
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (suppressed > 0) {
        tb_log_write(level, LOG_COMPONENT, "%s (%llu similar lines suppressed)", msg,
                     (unsigned long long)suppressed);
    } else {
        tb_log_write(level, LOG_COMPONENT, "%s", msg);
    }
}

coll_stream_t *tb_coll_find(tb_collector_t *c, const char *name)
{
    for (size_t i = 0; i < c->cfg.max_streams; i++) {
        if (c->streams[i].in_use && strcmp(c->streams[i].name, name) == 0) {
            return &c->streams[i];
        }
    }
    return NULL;
}

/* Topic frame -> started stream, or NULL. */
static coll_stream_t *s_find_topic(tb_collector_t *c, const uint8_t *topic, size_t len)
{
    for (size_t i = 0; i < c->cfg.max_streams; i++) {
        coll_stream_t *st = &c->streams[i];
        if (st->in_use && st->topic_len == len && memcmp(st->topic, topic, len) == 0) {
            return st;
        }
    }
    return NULL;
}

/* Subscriptions are reference-counted by the SUB socket: subscribing twice
 * needs unsubscribing twice. Each stream holds at most one. */
static void s_subscribe(tb_collector_t *c, coll_stream_t *st)
{
    if (!st->subscribed && zmq_setsockopt(c->sub, ZMQ_SUBSCRIBE, st->topic, st->topic_len) == 0) {
        st->subscribed = 1;
    }
}

static void s_unsubscribe(tb_collector_t *c, coll_stream_t *st)
{
    if (st->subscribed) {
        zmq_setsockopt(c->sub, ZMQ_UNSUBSCRIBE, st->topic, st->topic_len);
        st->subscribed = 0;
    }
}

int tb_coll_forgettable(const coll_stream_t *st)
{
    return st->state != STREAM_RUNNING &&
           (st->results_read || st->stats == NULL || st->stats->packets == 0);
}

size_t tb_coll_room(const tb_collector_t *c)
{
    size_t room = 0;
    for (size_t i = 0; i < c->cfg.max_streams; i++) {
        room += !c->streams[i].in_use || tb_coll_forgettable(&c->streams[i]);
    }
    return room;
}

coll_stream_t *tb_coll_victim(tb_collector_t *c)
{
    coll_stream_t *victim = NULL;
    for (size_t i = 0; i < c->cfg.max_streams; i++) {
        coll_stream_t *st = &c->streams[i];
        if (!st->in_use) {
            return NULL; /* a free slot: nothing needs to go */
        }
        if (tb_coll_forgettable(st) && (victim == NULL || st->ended_ns < victim->ended_ns)) {
            victim = st;
        }
    }
    return victim;
}

coll_stream_t *tb_coll_slot(tb_collector_t *c, const char *name)
{
    coll_stream_t *st = tb_coll_find(c, name);
    if (st == NULL) {
        /* A free slot, or else the slot of the oldest ended stream whose
         * statistics were read (or that has none): results nobody has read
         * are never overwritten here. */
        coll_stream_t *victim = tb_coll_victim(c);
        for (size_t i = 0; i < c->cfg.max_streams && st == NULL && victim == NULL; i++) {
            if (!c->streams[i].in_use) {
                st = &c->streams[i];
            }
        }
        if (st == NULL && victim != NULL) {
            tb_log(TB_LOG_INFO, LOG_COMPONENT, "forgetting ended stream %s to make room",
                   victim->name);
            s_unsubscribe(c, victim);
            st = victim;
        }
        if (st == NULL) {
            return NULL;
        }
        s_sinks_close(c, st);
        tb_stats_t *stats = st->stats;
        memset(st, 0, sizeof *st);
        st->stats = stats;
        snprintf(st->name, sizeof st->name, "%s", name);
        st->topic_len = (size_t)tb_wire_topic(name, st->topic, sizeof st->topic);
    }
    if (st->stats == NULL) {
        st->stats = tb_stats_new(c->cfg.flow_capacity, c->cfg.host_capacity, c->seed);
        if (st->stats == NULL) {
            return NULL;
        }
    }
    st->in_use = 1;
    c->state_dirty = 1;
    return st;
}

/* Open each sink's state for the stream where it has none. */
static void s_sinks_open(tb_collector_t *c, coll_stream_t *st)
{
    for (size_t i = 0; i < c->nsinks; i++) {
        if (st->sink_state[i] == NULL && c->sinks[i]->ops->stream_open != NULL) {
            st->sink_state[i] = c->sinks[i]->ops->stream_open(c->sinks[i], st->name);
        }
    }
}

int tb_coll_resume(tb_collector_t *c, coll_stream_t *st)
{
    s_sinks_open(c, st);
    st->state = STREAM_RUNNING;
    st->ended_ns = 0;
    s_subscribe(c, st);
    c->state_dirty = 1;
    if (!st->subscribed) {
        st->state = STREAM_STOPPED;
        return TB_EIO;
    }
    return 0;
}

int tb_coll_start(tb_collector_t *c, const char *name)
{
    coll_stream_t *st = tb_coll_slot(c, name);
    if (st == NULL) {
        return TB_ENOMEM;
    }
    /* Leaving and rejoining the topic makes every probe's finite source start
     * a new run; whatever is still in flight from the runs seen so far is
     * ignored when it arrives. */
    s_unsubscribe(c, st);
    for (size_t i = 0; i < st->nprobes; i++) {
        probe_track_t *pt = &st->probes[i];
        /* A source that never starts over (run 0) simply continues. */
        pt->min_run = pt->run != 0 ? pt->run + 1 : 0;
        /* What the source said belongs to the measurement before: its next
         * heartbeat or end-of-stream says how it is now. */
        pt->src_state = -1;
        pt->detail[0] = '\0';
        pt->received = 0;
        pt->seq_gaps = 0;
        pt->seq_backward = 0;
        pt->restarts = 0;
        pt->lost_packets = 0;
        pt->eos_seen = 0;
    }
    tb_stats_reset(st->stats);
    /* Sources that never start over (run 0: live, directory) carry on where
     * they stopped: the sinks keep what they hold open (the current second
     * and interval), so the database gets one complete point for them, not
     * two partial ones with the same time. Anything else starts afresh. */
    int carry_on = st->nprobes > 0;
    for (size_t i = 0; i < st->nprobes; i++) {
        carry_on = carry_on && st->probes[i].run == 0;
    }
    if (!carry_on) {
        tb_timebase_init(&st->tbase);
    }
    for (size_t i = 0; i < c->nsinks; i++) {
        if (carry_on && st->sink_state[i] != NULL) {
            continue;
        }
        if (c->sinks[i]->ops->stream_close != NULL && st->sink_state[i] != NULL) {
            c->sinks[i]->ops->stream_close(c->sinks[i], st->sink_state[i]);
        }
        st->sink_state[i] = c->sinks[i]->ops->stream_open != NULL
                                ? c->sinks[i]->ops->stream_open(c->sinks[i], name)
                                : NULL;
    }
    st->probes_refused = 0;
    st->probes_expired = 0;
    st->runs_ignored = 0;
    st->results_read = 0;
    st->bad_messages = 0;
    st->run_resets = 0;
    st->stale = 0;
    st->heard = 0;
    st->in_use = 1;
    st->state = STREAM_RUNNING;
    st->started_ns = tb_time_now_ns();
    st->ended_ns = 0;
    st->resumes = 0;
    st->unmeasured_ns = 0;
    st->gap_from_ns = 0;
    st->gap_until_ns = 0;
    c->state_dirty = 1;
    s_subscribe(c, st);
    if (!st->subscribed) {
        st->state = STREAM_STOPPED;
        return TB_EIO;
    }
    tb_log(TB_LOG_INFO, LOG_COMPONENT, "stream %s started", st->name);
    return 0;
}

void tb_coll_probe_loss(const coll_stream_t *st, const probe_track_t *pt, tb_loss_t *l)
{
    memset(l, 0, sizeof *l);
    l->probe = pt->probe_id;
    l->received = pt->received;
    l->seq_gaps = pt->seq_gaps;
    l->lost_packets = pt->lost_packets;
    l->restarts = pt->restarts;
    l->unmeasured_ms = st->unmeasured_ns / 1000000u;
    if (pt->have_hb) {
        l->capture_drops = tb_add_sat(pt->hb.pcap_drop, pt->hb.pcap_ifdrop);
        l->bus_drops = pt->hb.bus_drops;
        l->decode_errors = pt->hb.decode_errors;
        l->files_skipped = pt->hb.files_skipped;
        l->frames_lost = pt->hb.frames_lost;
        l->frames_bad = pt->hb.frames_bad;
    }
}

/* Every sink hears each probe's loss so far. */
static void s_notify_loss(tb_collector_t *c, coll_stream_t *st)
{
    for (size_t i = 0; i < c->nsinks; i++) {
        if (c->sinks[i]->ops->stream_loss == NULL) {
            continue;
        }
        for (size_t k = 0; k < st->nprobes; k++) {
            tb_loss_t l;
            tb_coll_probe_loss(st, &st->probes[k], &l);
            c->sinks[i]->ops->stream_loss(c->sinks[i], st->sink_state[i], st->name, &l);
        }
    }
}

static void s_notify_final(tb_collector_t *c, coll_stream_t *st)
{
    st->ended_ns = tb_time_now_ns();
    c->state_dirty = 1;
    s_notify_loss(c, st);
    char reason[TB_COLL_REASON_MAX];
    tb_coll_stream_reason(c, st, reason, sizeof reason);
    for (size_t i = 0; i < c->nsinks; i++) {
        if (c->sinks[i]->ops->stream_final != NULL) {
            c->sinks[i]->ops->stream_final(c->sinks[i], st->sink_state[i], st->name,
                                           tb_coll_stream_state(c, st), reason, st->stats);
        }
    }
}

void tb_coll_stop(tb_collector_t *c, coll_stream_t *st)
{
    s_unsubscribe(c, st);
    if (st->state == STREAM_RUNNING) {
        st->state = STREAM_STOPPED;
        s_notify_final(c, st);
    }
    st->state = STREAM_STOPPED;
}

const char *tb_coll_sender(const coll_stream_t *st)
{
    if (st->state != STREAM_RUNNING) {
        return NULL;
    }
    for (size_t i = 0; i < st->nprobes; i++) {
        if (st->probes[i].src_state != TB_SRC_ERROR) {
            return st->probes[i].probe_id;
        }
    }
    return NULL;
}

void tb_coll_forget(tb_collector_t *c, coll_stream_t *st)
{
    if (st->state == STREAM_RUNNING) {
        tb_coll_stop(c, st); /* its final points and log line, as for stop */
    }
    s_unsubscribe(c, st);
    /* What the sinks hold open was written at the end (a stopped stream's
     * open second and interval as they stood; a finished one's closed) and
     * has not changed since: closing writes nothing more. */
    s_sinks_close(c, st);
    tb_stats_destroy(&st->stats);
    tb_log(TB_LOG_INFO, LOG_COMPONENT, "stream %s forgotten", st->name);
    memset(st, 0, sizeof *st); /* in_use 0: the slot is free */
    c->state_dirty = 1;
}

static probe_track_t *s_track(coll_stream_t *st, const tb_wire_header_t *h)
{
    for (size_t i = 0; i < st->nprobes; i++) {
        if (strcmp(st->probes[i].probe_id, h->probe_id) == 0) {
            return &st->probes[i];
        }
    }
    if (st->nprobes == TB_STREAM_MAX_PROBES) {
        st->probes_refused++;
        return NULL;
    }
    probe_track_t *pt = &st->probes[st->nprobes++];
    memset(pt, 0, sizeof *pt);
    snprintf(pt->probe_id, sizeof pt->probe_id, "%s", h->probe_id);
    pt->boot_ns = h->boot_ns;
    pt->next_seq = h->seq;
    pt->run = h->run;
    pt->run_first_seq = h->seq;
    pt->src_state = -1;
    return pt;
}

/* Sequence accounting. The first message of a (probe, boot) sets the
 * baseline; a later gap counts the messages that never arrived. */
static void s_sequence(tb_collector_t *c, coll_stream_t *st, probe_track_t *pt,
                       const tb_wire_header_t *h)
{
    if (h->seq > pt->next_seq) {
        uint64_t lost = h->seq - pt->next_seq;
        pt->seq_gaps = tb_add_sat(pt->seq_gaps, lost);
        s_log_limited(c, TB_LOG_WARN, "stream %s: %llu message(s) from probe %s lost", st->name,
                      (unsigned long long)lost, pt->probe_id);
    } else if (h->seq < pt->next_seq) {
        /* Backwards: a duplicate, or somebody else sending with this
         * probe's id. Counted, never a gap; the count follows the newest
         * sequence, so the real probe's next message is not a huge gap
         * after a forged jump ahead. */
        pt->seq_backward = tb_add_sat(pt->seq_backward, 1);
        s_log_limited(c, TB_LOG_WARN, "stream %s: sequence of probe %s went backwards", st->name,
                      pt->probe_id);
    }
    pt->next_seq = h->seq == UINT64_MAX ? UINT64_MAX : h->seq + 1;
}

/* A probe began a new run of its source (re-read a file from its start,
 * because it restarted or somebody subscribed). If this measurement already
 * holds data of an earlier run from it, the statistics start over: they
 * describe the run being received, never a mix of two. */
static void s_new_run(tb_collector_t *c, coll_stream_t *st, probe_track_t *pt,
                      const tb_wire_header_t *h)
{
    /* Run 0: a source that never starts over (live capture, a directory that
     * resumes from its checkpoint) continues; nothing is counted twice. */
    if (h->run != 0 && (pt->received > 0 || pt->eos_seen)) {
        s_log_limited(c, TB_LOG_INFO,
                      "stream %s: probe %s started run %llu of its source; statistics start over",
                      st->name, pt->probe_id, (unsigned long long)h->run);
        tb_stats_reset(st->stats);
        tb_timebase_init(&st->tbase);
        st->run_resets++;
        for (size_t i = 0; i < c->nsinks; i++) {
            if (c->sinks[i]->ops->stream_reset != NULL) {
                c->sinks[i]->ops->stream_reset(c->sinks[i], st->sink_state[i]);
            }
        }
    }
    pt->run = h->run;
    pt->run_first_seq = h->seq;
    pt->received = 0;
    pt->eos_seen = 0;
    if (st->state == STREAM_FINISHED) {
        st->state = STREAM_RUNNING;
    }
}

static int s_silent(const probe_track_t *pt, uint64_t now)
{
    return pt->last_heard != 0 && now - pt->last_heard > TB_COLL_PROBE_EXPIRE_NS;
}

/* A stream has finished when one of its probes has ended it and every other
 * has ended too or has gone silent: a probe id nobody sends with any more
 * (made up, or a probe that vanished) does not keep it open for ever. */
static int s_all_ended(const coll_stream_t *st, uint64_t now)
{
    size_t ended = 0;
    for (size_t i = 0; i < st->nprobes; i++) {
        if (st->probes[i].eos_seen) {
            ended++;
        } else if (!s_silent(&st->probes[i], now)) {
            return 0;
        }
    }
    return ended > 0;
}

/* Free the slots of probes that have been silent past the limit and never
 * gave this measurement anything (no packets, no end, no loss): otherwise
 * made-up ids, one message each, would fill every slot and the real probe's
 * data would be refused. */
static void s_expire_probes(tb_collector_t *c, coll_stream_t *st, uint64_t now)
{
    size_t k = 0;
    for (size_t i = 0; i < st->nprobes; i++) {
        const probe_track_t *pt = &st->probes[i];
        if (s_silent(pt, now) && pt->received == 0 && !pt->eos_seen && pt->seq_gaps == 0 &&
            pt->lost_packets == 0) {
            st->probes_expired++;
            s_log_limited(c, TB_LOG_INFO, "stream %s: silent probe %s left its slot", st->name,
                          pt->probe_id);
            continue;
        }
        if (k != i) {
            st->probes[k] = st->probes[i];
        }
        k++;
    }
    st->nprobes = k;
}

static void s_apply(tb_collector_t *c, coll_stream_t *st, const tb_wire_msg_t *m)
{
    const tb_wire_header_t *h = &m->hdr;
    if (st->state == STREAM_FINISHED) {
        /* A finished measurement stays as it ended until an operator starts
         * it again (tb_coll_start): a new run or boot of a probe, or a probe
         * not seen before, does not reset or reopen it. A heartbeat with a
         * real probe's id and another boot time would otherwise wipe the
         * result. */
        probe_track_t *known = NULL;
        for (size_t i = 0; i < st->nprobes && known == NULL; i++) {
            known = strcmp(st->probes[i].probe_id, h->probe_id) == 0 ? &st->probes[i] : NULL;
        }
        if (known == NULL || h->boot_ns != known->boot_ns || h->run != known->run) {
            st->runs_ignored++;
            return;
        }
    }
    probe_track_t *pt = s_track(st, h);
    if (pt == NULL) {
        return;
    }
    pt->last_heard = tb_time_mono_ns();
    if (h->boot_ns != pt->boot_ns) {
        s_log_limited(c, TB_LOG_WARN, "stream %s: probe %s restarted", st->name, pt->probe_id);
        pt->restarts++;
        pt->boot_ns = h->boot_ns;
        pt->next_seq = h->seq + 1;
        pt->min_run = 0;
        s_new_run(c, st, pt, h);
    } else if (h->run < pt->min_run) {
        /* Still in flight from a run this collector left when it restarted
         * the stream. While it re-subscribed, the probe's socket skipped it
         * for a moment: gaps here are its own doing, not loss. */
        pt->next_seq = h->seq + 1;
        st->stale++;
        return;
    } else if (pt->run < pt->min_run) {
        pt->next_seq = h->seq + 1; /* the first message of the run it asked for */
        s_new_run(c, st, pt, h);
    } else {
        s_sequence(c, st, pt, h);
        if (h->run != pt->run) {
            s_new_run(c, st, pt, h);
        }
    }
    st->heard++; /* not waiting any more: this message is of the run measured */
    if (h->type == TB_MSG_HEARTBEAT) {
        /* A probe busy filling a full bus may not get its offers through:
         * its heartbeats keep its offer alive. */
        tb_offers_touch(c->offers, h->probe_id, pt->last_heard);
    }
    switch (h->type) {
    case TB_MSG_BATCH:
        /* Absurd capture times are replaced (and counted) before anything
         * sees them. */
        tb_timebase_judge(&st->tbase, m->items, m->count);
        tb_pointstats_add(&st->stats->points, &m->points, m->items, m->count);
        /* Each chunk's keys are built, hashed and grouped once for every
         * consumer (batchagg.h). */
        for (size_t off = 0; off < m->count; off += TB_AGG_CHUNK) {
            size_t k = m->count - off < TB_AGG_CHUNK ? m->count - off : TB_AGG_CHUNK;
            tb_batchagg_build(c->agg, m->items + off, k);
            tb_stats_add(st->stats, m->items + off, k, c->agg);
            for (size_t i = 0; i < c->nsinks; i++) {
                if (c->sinks[i]->ops->stream_batch != NULL) {
                    c->sinks[i]->ops->stream_batch(c->sinks[i], st->sink_state[i], m->items + off,
                                                   k, c->agg);
                }
            }
        }
        st->rx_packets += m->count;
        pt->received += m->count;
        if (st->state == STREAM_FINISHED && !pt->eos_seen) {
            st->state = STREAM_RUNNING; /* a probe that had not ended yet */
        }
        break;
    case TB_MSG_HEARTBEAT:
        pt->hb = m->hb;
        pt->have_hb = 1;
        pt->src_state = m->hb.state;
        memcpy(pt->detail, m->hb.detail, sizeof pt->detail);
        break;
    case TB_MSG_EOS:
        pt->eos = m->eos;
        pt->eos_seen = 1;
        pt->src_state = m->eos.error ? TB_SRC_ERROR : TB_SRC_FINISHED;
        memcpy(pt->detail, m->eos.detail, sizeof pt->detail);
        /* Packets announced but not received are lost only if this collector
         * saw the run from its first message; one that joined later simply
         * missed what came before it. */
        if (m->eos.first_seq == pt->run_first_seq && m->eos.packets > pt->received) {
            pt->lost_packets = tb_add_sat(pt->lost_packets, m->eos.packets - pt->received);
        }
        if (m->eos.error) {
            s_log_limited(c, TB_LOG_WARN, "stream %s: probe %s source ended with error: %s",
                          st->name, pt->probe_id, m->eos.detail);
        }
        if (st->state == STREAM_RUNNING && s_all_ended(st, tb_time_mono_ns())) {
            st->state = STREAM_FINISHED;
            s_notify_final(c, st);
        }
        break;
    default:
        break;
    }
}

/* CURVE: whether the key a message came with (its connection's User-Id,
 * from the guard) is the key its probe id first came with; a refusal is
 * counted (keybind.h). Without CURVE every message passes. */
static int s_key_ok(tb_collector_t *c, zmq_msg_t *msg, const char *probe_id)
{
    if (c->keybind == NULL) {
        return 1;
    }
    const char *key = zmq_msg_gets(msg, "User-Id");
    const char *name = zmq_msg_gets(msg, TB_GUARD_PROP_NAME);
    if (tb_keybind_check(c->keybind, probe_id, key != NULL ? key : "", name) == 0) {
        return 1;
    }
    tb_keybind_counters_t kc;
    tb_keybind_counters(c->keybind, &kc);
    s_log_limited(c, TB_LOG_WARN, "bus: refused a message: %s", kc.last);
    return 0;
}

/* An offer: a probe's list of streams, into the bounded table. A bad one is
 * counted and dropped like any bad message. */
static void s_offer(tb_collector_t *c, zmq_msg_t *msg)
{
    int rc = tb_wire_decode_offer(zmq_msg_data(msg), zmq_msg_size(msg), c->offer_msg);
    if (rc != 0) {
        tb_offers_count_bad(c->offers);
        s_log_limited(c, TB_LOG_WARN, "dropped a bad stream offer (%s)", tb_strerror(rc));
        return;
    }
    if (!s_key_ok(c, msg, c->offer_msg->probe_id)) {
        return;
    }
    if (tb_offers_apply(c->offers, c->offer_msg, tb_time_mono_ns()) != 0) {
        s_log_limited(c, TB_LOG_WARN,
                      "offer of probe %s: no room for the probe or some of its %zu streams "
                      "(at most %d probes, %d streams)",
                      c->offer_msg->probe_id, c->offer_msg->n, TB_COLL_OFFER_PROBES,
                      TB_COLL_OFFER_STREAMS);
    }
}

/* Receive one message (all its frames). Returns 1 if one was handled, 0 if
 * none was waiting, or a negative tb_err_t on a socket failure. */
static int s_recv_one(tb_collector_t *c)
{
    zmq_msg_t topic, body;
    zmq_msg_init(&topic);
    if (zmq_msg_recv(&topic, c->sub, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&topic);
        return errno == EAGAIN ? 0 : TB_EIO;
    }
    int frames = 1;
    int have_body = 0;
    zmq_msg_init(&body);
    while (zmq_msg_more(frames == 1 ? &topic : &body)) {
        if (frames >= 2) {
            zmq_msg_close(&body);
            zmq_msg_init(&body);
        }
        if (zmq_msg_recv(&body, c->sub, 0) < 0) {
            break;
        }
        have_body = 1;
        frames++;
    }
    int rc = 1;
    if (frames != 2 || !have_body) {
        c->bad_frames++;
        goto done;
    }
    if (zmq_msg_size(&topic) == TB_OFFER_TOPIC_LEN &&
        memcmp(zmq_msg_data(&topic), TB_OFFER_TOPIC, TB_OFFER_TOPIC_LEN) == 0) {
        s_offer(c, &body);
        goto done;
    }
    coll_stream_t *st = s_find_topic(c, zmq_msg_data(&topic), zmq_msg_size(&topic));
    if (st == NULL || st->state == STREAM_STOPPED) {
        c->unknown_stream++;
        goto done;
    }
    tb_wire_msg_t m;
    int drc =
        tb_wire_decode(zmq_msg_data(&body), zmq_msg_size(&body), &m, c->items, TB_WIRE_MAX_BATCH);
    if (drc != 0) {
        c->bad_bodies++;
        st->bad_messages++;
        c->last_bad_error = drc;
        s_log_limited(c, TB_LOG_WARN, "stream %s: dropped a bad message (%s); %llu bad so far",
                      st->name, tb_strerror(drc), (unsigned long long)c->bad_bodies);
        goto done;
    }
    if (strcmp(m.hdr.stream, st->name) != 0) {
        c->bad_topic++;
        st->bad_messages++;
        goto done;
    }
    if (!s_key_ok(c, &body, m.hdr.probe_id)) {
        goto done;
    }
    c->msgs++;
    s_apply(c, st, &m);
done:
    zmq_msg_close(&topic);
    zmq_msg_close(&body);
    return rc;
}

static void s_close_env(tb_collector_t *c)
{
    for (size_t i = 0; i < c->nenv; i++) {
        zmq_msg_close(&c->env[i]);
    }
    c->nenv = 0;
}

/* Send the routing frames in c->env (consumed) and then the reply. Every
 * frame is sent even when one fails, so that the message always ends
 * (ROUTER would join the next reply to an unfinished one). */
static void s_reply(tb_collector_t *c, const void *data, size_t size)
{
    /* ROUTER_MANDATORY: the first frame fails (EAGAIN) when the client's
     * queue is full (it does not read its replies) or (EHOSTUNREACH) when it
     * has gone; the reply is then dropped whole and counted, so a client
     * that never reads holds at most TB_COLL_CTL_SNDHWM replies here. */
    if (c->nenv == 0 || zmq_msg_send(&c->env[0], c->ctl, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        c->ctl_replies_dropped++;
        s_log_limited(c, TB_LOG_WARN, "control reply dropped: %s (%llu so far)",
                      zmq_strerror(errno), (unsigned long long)c->ctl_replies_dropped);
        s_close_env(c);
        return;
    }
    int failed = 0;
    for (size_t i = 1; i < c->nenv; i++) {
        if (zmq_msg_send(&c->env[i], c->ctl, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&c->env[i]);
            failed = 1;
        }
    }
    c->nenv = 0;
    if (zmq_send(c->ctl, data, size, ZMQ_DONTWAIT) < 0 || failed) {
        tb_log(TB_LOG_WARN, LOG_COMPONENT, "control reply failed: %s", zmq_strerror(errno));
    }
}

/* CURVE: what the client of the request being received may do, from the
 * properties the guard gave its connection. The frames that came over the
 * connection carry them; the routing frame ROUTER puts first does not.
 * Without CURVE everybody may act; with it, a request whose key is not
 * known may not. */
static void s_control_role(tb_collector_t *c, zmq_msg_t *m)
{
    const char *role = c->guard != NULL ? zmq_msg_gets(m, TB_GUARD_PROP_ROLE) : NULL;
    if (role == NULL) {
        return;
    }
    const char *key = zmq_msg_gets(m, "User-Id");
    const char *name = zmq_msg_gets(m, TB_GUARD_PROP_NAME);
    c->ctl_act = strcmp(role, "act") == 0;
    snprintf(c->ctl_key, sizeof c->ctl_key, "%.*s (%.*s)", TB_CURVE_KEY_LEN, key ? key : "?",
             TB_CURVE_NAME_MAX, name ? name : "?");
}

/* One control request from ROUTER: routing frames up to and including an
 * empty delimiter (what REQ sends, more frames behind proxies), then one
 * frame of msgpack. A message without that envelope cannot be answered and
 * is dropped; a request of several frames is answered as malformed. */
static void s_serve_control(tb_collector_t *c)
{
    zmq_msg_t body;
    zmq_msg_init(&body);
    size_t nbody = 0;
    int delimited = 0, more = 1, first = 1;
    c->nenv = 0;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, c->ctl, first ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&m);
            break; /* nothing waiting (a message arrives whole or not at all) */
        }
        if (first) {
            c->ctl_received++;
            c->ctl_act = c->guard == NULL;
            c->ctl_key[0] = '\0';
        }
        if (c->ctl_key[0] == '\0') {
            s_control_role(c, &m);
        }
        first = 0;
        more = zmq_msg_more(&m);
        if (!delimited && c->nenv < TB_DBQUERY_ENVELOPE_MAX) {
            delimited = zmq_msg_size(&m) == 0;
            zmq_msg_init(&c->env[c->nenv]);
            zmq_msg_move(&c->env[c->nenv++], &m);
        } else if (delimited && nbody++ == 0) {
            zmq_msg_move(&body, &m);
        }
        zmq_msg_close(&m); /* moved, or a frame not kept */
    }
    if (!delimited) {
        if (c->nenv > 0) {
            c->ctl_dropped++;
            tb_log(TB_LOG_DEBUG, LOG_COMPONENT, "control message without an envelope dropped");
        }
        s_close_env(c);
        zmq_msg_close(&body);
        return;
    }
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    /* Several frames: handed over empty, which the decoder refuses. */
    const uint8_t *data = nbody == 1 ? zmq_msg_data(&body) : (const uint8_t *)"";
    size_t size = nbody == 1 ? zmq_msg_size(&body) : 0;
    if (tb_coll_control(c, data, size, &sbuf) == 1) {
        s_close_env(c); /* the query thread has its copy, and answers */
    } else {
        s_reply(c, sbuf.data, sbuf.size);
    }
    msgpack_sbuffer_destroy(&sbuf);
    zmq_msg_close(&body);
}

/* The capture clock of each stream moves on with the collector's while the
 * stream runs and a probe of it is heard with its source running; a source
 * that runs in real time (run 0: live, directory) then has its sinks close
 * what is older than the lateness window. A stopped stream's or a silent
 * probe's clock stands still: time nobody measured is not written as idle,
 * and a directory's backlog read after a pause is not late. */
static void s_clock(tb_collector_t *c, coll_stream_t *st, uint64_t now)
{
    int clocked = st->nprobes > 0;
    uint64_t heard_mono = 0; /* the newest message of a probe whose source runs */
    for (size_t i = 0; i < st->nprobes; i++) {
        const probe_track_t *pt = &st->probes[i];
        clocked = clocked && pt->run == 0;
        if (pt->src_state == TB_SRC_RUNNING && pt->last_heard > heard_mono) {
            heard_mono = pt->last_heard;
        }
    }
    st->tbase.clocked = clocked;
    /* A live capture's packets are stamped now: its clock skips a pause.
     * What the offers said is kept while they are away (a probe that died
     * and comes back may be heard before its new offer is). */
    const char *kind = tb_offers_kind(c->offers, st->name);
    if (kind != NULL) {
        st->tbase.realtime = strcmp(kind, "iface") == 0 || strcmp(kind, "dpmi") == 0;
    }
    int running = st->state == STREAM_RUNNING && heard_mono != 0 && now - heard_mono < HEARD_NS;
    int skipped;
    uint64_t now_ts = tb_timebase_tick(&st->tbase, heard_mono, running, &skipped);
    if (!running || !clocked || now_ts == 0) {
        return;
    }
    for (size_t i = 0; skipped && i < c->nsinks; i++) {
        if (c->sinks[i]->ops->stream_skip != NULL) {
            c->sinks[i]->ops->stream_skip(c->sinks[i], st->sink_state[i], now_ts);
        }
    }
    for (size_t i = 0; i < c->nsinks; i++) {
        if (c->sinks[i]->ops->stream_clock != NULL) {
            c->sinks[i]->ops->stream_clock(c->sinks[i], st->sink_state[i], now_ts);
        }
    }
}

/* Write the snapshot; a failure is counted and shown in status. */
static void s_save_state(tb_collector_t *c)
{
    char err[sizeof c->state_error];
    if (tb_state_save(c, err, sizeof err) == 0) {
        c->state_saves++;
        c->state_error[0] = '\0';
    } else {
        c->state_failures++;
        if (strcmp(err, c->state_error) != 0) {
            tb_log(TB_LOG_ERROR, LOG_COMPONENT, "snapshot not written: %s", err);
        }
        memcpy(c->state_error, err, sizeof err);
    }
    c->state_dirty = 0;
}

/* A snapshot when streams were started, stopped or forgotten, and every
 * TB_STATE_PERIOD_NS while any runs. */
static void s_state_tick(tb_collector_t *c, uint64_t now)
{
    if (c->cfg.state_dir == NULL || (!c->state_dirty && now < c->next_state_ns)) {
        return;
    }
    int running = 0;
    for (size_t i = 0; i < c->cfg.max_streams && !running; i++) {
        running = c->streams[i].in_use && c->streams[i].state == STREAM_RUNNING;
    }
    if (c->state_dirty || running) {
        s_save_state(c);
    }
    c->next_state_ns = now + TB_STATE_PERIOD_NS;
}

/* Timers: capture clocks; sinks flush by age; loss points every interval
 * while a stream runs; snapshots. */
static void s_tick(tb_collector_t *c)
{
    uint64_t now = tb_time_mono_ns();
    s_state_tick(c, now);
    for (size_t i = 0; i < c->cfg.max_streams; i++) {
        coll_stream_t *st = &c->streams[i];
        if (st->in_use) {
            s_clock(c, st, now);
        }
        if (st->in_use && st->state == STREAM_RUNNING) {
            s_expire_probes(c, st, now);
            if (s_all_ended(st, now)) {
                st->state = STREAM_FINISHED;
                s_notify_final(c, st);
            }
        }
    }
    /* Current rates: packets received over the last second or so. */
    for (size_t i = 0; i < c->cfg.max_streams; i++) {
        coll_stream_t *st = &c->streams[i];
        if (!st->in_use || now - st->rate_mark_ns < TB_NS_PER_SEC) {
            continue;
        }
        st->pps_now = st->rate_mark_ns == 0 || st->state != STREAM_RUNNING
                          ? 0.0
                          : (double)(st->rx_packets - st->rate_mark_packets) /
                                ((double)(now - st->rate_mark_ns) / 1e9);
        st->rate_mark_ns = now;
        st->rate_mark_packets = st->rx_packets;
    }
    tb_offers_expire(c->offers, now);
    for (size_t i = 0; i < c->nsinks; i++) {
        if (c->sinks[i]->ops->tick != NULL) {
            c->sinks[i]->ops->tick(c->sinks[i], now);
        }
    }
    if (c->cfg.db == NULL || now < c->next_loss_ns) {
        return;
    }
    c->next_loss_ns = now + (uint64_t)c->cfg.db->interval_s * TB_NS_PER_SEC;
    for (size_t i = 0; i < c->cfg.max_streams; i++) {
        if (c->streams[i].in_use && c->streams[i].state == STREAM_RUNNING) {
            s_notify_loss(c, &c->streams[i]);
        }
    }
}

/* The query thread's answer, behind the routing frames of the client that
 * asked, goes out through ROUTER as it came. */
static void s_forward_db_reply(tb_collector_t *c)
{
    int more = 1, first = 1, dropping = 0;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, tb_dbquery_socket(c->dbq), first ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&m);
            if (first) {
                return; /* nothing there */
            }
            break; /* the context is ending */
        }
        more = zmq_msg_more(&m);
        if (!dropping && zmq_msg_send(&m, c->ctl, (more ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0) {
            if (first) {
                /* The client's queue is full or it has gone (s_reply). */
                dropping = 1;
                c->ctl_replies_dropped++;
            } else {
                tb_log(TB_LOG_WARN, LOG_COMPONENT, "control reply failed: %s", zmq_strerror(errno));
            }
            zmq_msg_close(&m);
        } else if (dropping) {
            zmq_msg_close(&m);
        }
        first = 0;
    }
    if (c->db_waiting > 0) {
        c->db_waiting--;
    }
}

/* A warning for each endpoint bound for the network without CURVE: whoever
 * reaches it can feed data as any probe, or start and stop measurements. */
static void s_warn_open(const tb_collector_t *c)
{
    if (c->cfg.curve != NULL) {
        return;
    }
    for (size_t i = 0; i < c->cfg.nlisten; i++) {
        if (!tb_curve_endpoint_local(c->cfg.listen[i])) {
            tb_log(TB_LOG_WARN, LOG_COMPONENT,
                   "%s takes probes from the network without CURVE: anyone who reaches it can "
                   "send data as any probe (see docs/security.md)",
                   c->cfg.listen[i]);
        }
    }
    if (!tb_curve_endpoint_local(c->cfg.control)) {
        tb_log(TB_LOG_WARN, LOG_COMPONENT,
               "control %s is open to the network without CURVE: anyone who reaches it can "
               "start and stop measurements (see docs/security.md)",
               c->cfg.control);
    }
}

int tb_collector_run(tb_collector_t *c, int stop_fd)
{
    for (size_t i = 0; i < c->cfg.nprobes; i++) {
        tb_log(TB_LOG_INFO, LOG_COMPONENT, "listening to probe %s", c->cfg.probes[i]);
    }
    for (size_t i = 0; i < c->cfg.nlisten; i++) {
        tb_log(TB_LOG_INFO, LOG_COMPONENT, "accepting probes on %s", c->cfg.listen[i]);
    }
    tb_log(TB_LOG_INFO, LOG_COMPONENT, "control on %s", c->cfg.control);
    s_warn_open(c);
    int rc = 0;
    for (;;) {
        zmq_pollitem_t items[6] = {
            {.socket = c->sub, .events = ZMQ_POLLIN},
            {.socket = c->ctl, .events = ZMQ_POLLIN},
            {.socket = c->dbq ? tb_dbquery_socket(c->dbq) : NULL, .events = ZMQ_POLLIN},
            {.fd = stop_fd, .events = ZMQ_POLLIN},
        };
        int nitems = stop_fd >= 0 ? 4 : 3;
        if (c->dbq == NULL) {
            items[2] = items[3]; /* no query thread: stop_fd moves up */
            nitems--;
        }
        int mon_idx = nitems; /* the bus monitor's events, last */
        items[nitems++] =
            (zmq_pollitem_t){.socket = tb_busmon_socket(c->mon), .events = ZMQ_POLLIN};
        int guard_idx = nitems; /* CURVE: the guard's end */
        if (c->guard != NULL) {
            items[nitems++] = (zmq_pollitem_t){.fd = tb_guard_dead_fd(c->guard),
                                               .events = ZMQ_POLLIN};
        }
        if (zmq_poll(items, nitems, 100) < 0) {
            if (errno == EINTR) {
                continue;
            }
            tb_log(TB_LOG_ERROR, LOG_COMPONENT, "poll failed: %s", zmq_strerror(errno));
            rc = TB_EIO;
            break;
        }
        int stop_idx = c->dbq != NULL ? 3 : 2;
        if (stop_fd >= 0 && (items[stop_idx].revents & ZMQ_POLLIN)) {
            tb_log(TB_LOG_INFO, LOG_COMPONENT, "stop requested");
            break;
        }
        /* Without its ZAP handler, CURVE would let anybody in: the
         * collector stops rather than run unguarded. */
        if (c->guard != NULL && (items[guard_idx].revents & ZMQ_POLLIN)) {
            tb_log(TB_LOG_ERROR, LOG_COMPONENT,
                   "the CURVE authentication handler is gone: stopping, not running unguarded");
            rc = TB_EIO;
            break;
        }
        if (items[0].revents & ZMQ_POLLIN) {
            /* Bounded by count and by time: a sparse capture (each packet
             * its own second and interval) makes every message expensive
             * for the database sink, and control must not wait for 256 of
             * them. */
            uint64_t until = tb_time_mono_ns() + RECV_TIME_NS;
            for (int i = 0; i < RECV_BUDGET; i++) {
                int r = s_recv_one(c);
                if (r <= 0 || tb_time_mono_ns() >= until) {
                    break;
                }
            }
        }
        if (items[1].revents & ZMQ_POLLIN) {
            s_serve_control(c);
        }
        if (c->dbq != NULL && (items[2].revents & ZMQ_POLLIN)) {
            s_forward_db_reply(c);
        }
        if (items[mon_idx].revents & ZMQ_POLLIN) {
            tb_busmon_read(c->mon);
        }
        for (const char *ep; (ep = tb_busmon_next_dead(c->mon, tb_time_mono_ns())) != NULL;) {
            tb_log(TB_LOG_WARN, LOG_COMPONENT,
                   "probe %s: connection ended without a retry (protocol error); connecting again",
                   ep);
            zmq_disconnect(c->sub, ep);
            if (zmq_connect(c->sub, ep) != 0) {
                tb_log(TB_LOG_ERROR, LOG_COMPONENT, "cannot connect to probe %s again: %s", ep,
                       zmq_strerror(errno));
            }
        }
        s_tick(c);
    }
    /* The snapshot keeps them running: they come back with the collector. */
    if (c->cfg.state_dir != NULL) {
        s_save_state(c);
    }
    /* Streams still running end as stopped: their sinks get the final state. */
    for (size_t i = 0; i < c->cfg.max_streams; i++) {
        if (c->streams[i].in_use && c->streams[i].state == STREAM_RUNNING) {
            tb_coll_stop(c, &c->streams[i]);
        }
    }
    return rc;
}
