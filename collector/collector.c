/* collector — the loop: bus messages in, statistics kept; see collector.h. */
#include "collector_int.h"
#include "control.h"
#include "cpus.h"
#include "sink_log.h"
#include "state.h"

#include "busmon.h"
#include "tb_ctl.h"
#include "tb_err.h"
#include "tb_hash.h"
#include "tb_log.h"
#include "tb_time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define LOG_COMPONENT "collector"
#define RECV_BUDGET   256                 /* bus messages handled before control gets a look */
#define RECV_TIME_NS  (20 * TB_NS_PER_MS) /* ... or this much time, whichever is first */

void tb_collector_config_defaults(tb_collector_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->control = "tcp://*:5557";
    cfg->max_streams = 256;
    cfg->flow_capacity = 4096;
    cfg->host_capacity = 4096;
    cfg->top_n = 10;
    cfg->rcvhwm = 100;
    cfg->threads = 0; /* auto */
}

void tb_collector_destroy(tb_collector_t **p)
{
    if (p == NULL || *p == NULL) {
        return;
    }
    tb_collector_t *c = *p;
    *p = NULL;
    tb_streams_destroy(&c->streams); /* every stream's sink state, then the sinks */
    tb_assist_stop(&c->assist);      /* after the streams' last chunk */
    tb_offers_destroy(&c->offers);
    free(c->offer_msg);
    free(c->items);
    tb_busmon_destroy(&c->mon); /* before the socket it watches */
    if (c->sub != NULL) {
        zmq_close(c->sub);
    }
    tb_guard_unwatch(c->guard); /* before the socket it watches */
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
        return TB_ENOTSUP;
    }
    tb_guard_config_t gc = {cfg->curve_allow, cfg->curve_allow_read, cfg->curve_allow_probes};
    c->guard = tb_guard_new(c->zctx, &gc, err, errsize);
    if (c->guard == NULL) {
        return TB_EIO;
    }
    c->keybind = tb_keybind_new(TB_KEYBIND_MAX);
    if (c->keybind == NULL) {
        snprintf(err, errsize, "out of memory");
        return TB_ENOMEM;
    }
    if (tb_curve_server(c->sub, cfg->curve, TB_GUARD_DOMAIN_BUS) != 0 ||
        tb_curve_server(c->ctl, cfg->curve, TB_GUARD_DOMAIN_CONTROL) != 0) {
        snprintf(err, errsize, "cannot set up CURVE: %s", zmq_strerror(errno));
        return TB_EIO;
    }
    int rc = tb_guard_watch(c->guard, c->ctl, err, errsize);
    if (rc == 0) {
        rc = tb_guard_start(c->guard, err, errsize);
    }
    return rc;
}

/* The ZeroMQ context, the SUB socket for probes and the ROUTER socket for
 * control, with their options; nothing bound or connected yet. */
static int s_sockets(tb_collector_t *c, char *err, size_t errsize)
{
    const tb_collector_config_t *cfg = &c->cfg;
    c->zctx = zmq_ctx_new();
    if (c->zctx == NULL) {
        snprintf(err, errsize, "cannot create ZeroMQ context: %s", zmq_strerror(errno));
        return TB_EIO;
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
        return TB_EIO;
    }
    return 0;
}

size_t tb_collector_threads(const tb_collector_config_t *cfg)
{
    if (cfg->threads != 0) {
        return cfg->threads;
    }
    /* With two cores the probe, ZeroMQ's I/O threads and the database
     * share the second one: a counting thread there measured no faster
     * end to end (README, Performance). The CPUs are those the process
     * may use: a container limited to 2 of a host's 32 has 2. */
    tb_cpus_t cpus;
    tb_cpus_get(&cpus);
    return cpus.usable >= 4 ? 2 : 1;
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
    if (cfg->threads > 2) {
        snprintf(err, errsize, "threads must be 1, 2 or auto");
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
    uint64_t seed = tb_hash_seed();
    if (cfg->state_dir != NULL) {
        (void)tb_state_seed(cfg->state_dir, &seed); /* estimates carry on */
    }
    tb_ratelog_init(&c->log, LOG_COMPONENT, TB_NS_PER_SEC, 5);
    c->streams = tb_streams_new(cfg->max_streams, cfg->flow_capacity, cfg->host_capacity, seed);
    c->items = malloc(TB_WIRE_MAX_BATCH * sizeof *c->items);
    tb_sink_t *log_sink = tb_sink_log_new();
    c->offers = tb_offers_new(TB_COLL_OFFER_PROBES, TB_COLL_OFFER_STREAMS);
    c->offer_msg = malloc(sizeof *c->offer_msg);
    if (c->streams == NULL || c->items == NULL || log_sink == NULL || c->offers == NULL ||
        c->offer_msg == NULL) {
        tb_sink_destroy(&log_sink);
        snprintf(err, errsize, "out of memory");
        goto fail;
    }
    (void)tb_streams_add_sink(c->streams, &log_sink); /* the first of TB_STREAMS_MAX_SINKS */
    c->streams->offers = c->offers;
    c->streams->log = &c->log;
    if (cfg->db != NULL) {
        tb_sink_t *db = tb_influx_sink_new(cfg->db, seed, err, errsize);
        if (db == NULL) {
            goto fail;
        }
        c->db = db; /* borrowed: its health goes into status */
        (void)tb_streams_add_sink(c->streams, &db);
    }
    if (s_sockets(c, err, errsize) != 0) {
        goto fail;
    }
    c->streams->sub = c->sub;
    return c;
fail:
    tb_collector_destroy(&c);
    return NULL;
}

/* The bus: every --probe endpoint connected to and every --listen address
 * bound, each watched by the bus monitor. */
static int s_bus_start(tb_collector_t *c, char *err, size_t errsize)
{
    const tb_collector_config_t *cfg = &c->cfg;
    /* Every endpoint's fate (refused, unresolvable, handshake failed, ...)
     * is watched from before the first connection attempt. */
    c->mon = tb_busmon_new(c->zctx, c->sub, err, errsize);
    if (c->mon == NULL) {
        return TB_EIO;
    }
    for (size_t i = 0; i < cfg->nprobes; i++) {
        int rc = tb_busmon_add(c->mon, cfg->probes[i], 0, NULL);
        if (rc != 0) {
            snprintf(err, errsize, "probe endpoint too long: %.64s...", cfg->probes[i]);
            return rc;
        }
        if (zmq_connect(c->sub, cfg->probes[i]) != 0) {
            snprintf(err, errsize, "cannot connect to probe %s: %s", cfg->probes[i],
                     zmq_strerror(errno));
            return TB_EIO;
        }
    }
    /* Probes that connect to us (behind NAT, or configured to push). */
    for (size_t i = 0; i < cfg->nlisten; i++) {
        if (zmq_bind(c->sub, cfg->listen[i]) != 0) {
            snprintf(err, errsize, "cannot bind %s for probes: %s", cfg->listen[i],
                     zmq_strerror(errno));
            return TB_EIO;
        }
        char bound[TB_BUSMON_ENDPOINT_MAX] = "";
        size_t blen = sizeof bound;
        if (zmq_getsockopt(c->sub, ZMQ_LAST_ENDPOINT, bound, &blen) != 0) {
            bound[0] = '\0';
        }
        int rc = tb_busmon_add(c->mon, cfg->listen[i], 1, bound[0] ? bound : NULL);
        if (rc != 0) {
            snprintf(err, errsize, "listen endpoint too long: %.64s...", cfg->listen[i]);
            return rc;
        }
    }
    return 0;
}

int tb_collector_start(tb_collector_t *c, char *err, size_t errsize)
{
    const tb_collector_config_t *cfg = &c->cfg;
    if (c->start_called) {
        snprintf(err, errsize, "the collector can be started once");
        return TB_EINVAL;
    }
    c->start_called = 1;
    /* The database writer first: what the restored streams close goes to it. */
    int rc = c->db != NULL ? tb_influx_sink_start(c->db, err, errsize) : 0;
    if (rc != 0) {
        return rc;
    }
    rc = cfg->curve != NULL ? s_curve_setup(c, err, errsize) : 0;
    if (rc != 0) {
        return rc;
    }
    rc = s_bus_start(c, err, errsize);
    if (rc != 0) {
        return rc;
    }
    if (cfg->db != NULL) {
        c->dbq = tb_dbquery_new(c->zctx, &cfg->db->writer.db, err, errsize);
        if (c->dbq == NULL) {
            return TB_EIO;
        }
        rc = tb_dbquery_start(c->dbq, err, errsize);
        if (rc != 0) {
            return rc;
        }
    }
    if (zmq_bind(c->ctl, cfg->control) != 0) {
        snprintf(err, errsize, "cannot bind control endpoint %s: %s", cfg->control,
                 zmq_strerror(errno));
        return TB_EIO;
    }
    if (tb_collector_threads(cfg) == 2) {
        c->assist = tb_assist_start();
        if (c->assist == NULL) {
            snprintf(err, errsize, "cannot start the counting thread: %s", strerror(errno));
            return TB_EIO;
        }
        if (tb_streams_set_assist(c->streams, c->assist) != 0) {
            snprintf(err, errsize, "out of memory");
            return TB_ENOMEM;
        }
    }
    /* The streams of the last run come back before anything is answered. */
    if (cfg->state_dir != NULL) {
        rc = tb_state_check_dir(cfg->state_dir, err, errsize);
        if (rc == 0) {
            rc = tb_state_load(cfg->state_dir, c->streams, &c->restored, err, errsize);
        }
        if (rc != 0) {
            return rc;
        }
    }
    c->streams->dirty = 0;
    c->next_state_ns = tb_time_mono_ns() + TB_STATE_PERIOD_NS;
    c->started = 1;
    return 0;
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
    tb_ratelog(&c->log, TB_LOG_WARN, "bus: refused a message: %s", kc.last);
    return 0;
}

/* An offer: a probe's list of streams, into the bounded table. A bad one is
 * counted and dropped like any bad message. */
static void s_offer(tb_collector_t *c, zmq_msg_t *msg)
{
    int rc = tb_wire_decode_offer(zmq_msg_data(msg), zmq_msg_size(msg), c->offer_msg);
    if (rc != 0) {
        tb_offers_count_bad(c->offers);
        tb_ratelog(&c->log, TB_LOG_WARN, "dropped a bad stream offer (%s)", tb_strerror(rc));
        return;
    }
    if (!s_key_ok(c, msg, c->offer_msg->probe_id)) {
        return;
    }
    if (tb_offers_apply(c->offers, c->offer_msg, tb_time_mono_ns()) != 0) {
        tb_ratelog(&c->log, TB_LOG_WARN,
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
    tb_stream_t *st = tb_streams_find_topic(c->streams, zmq_msg_data(&topic), zmq_msg_size(&topic));
    if (st == NULL || st->state == TB_STREAM_STOPPED) {
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
        tb_ratelog(&c->log, TB_LOG_WARN, "stream %s: dropped a bad message (%s); %llu bad so far",
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
    tb_streams_apply(c->streams, st, &m);
done:
    zmq_msg_close(&topic);
    zmq_msg_close(&body);
    return rc;
}

/* Write the snapshot; a failure is counted and shown in status. */
static void s_save_state(tb_collector_t *c)
{
    char err[sizeof c->state_error];
    tb_streams_flush(c->streams);
    if (tb_state_save(c->cfg.state_dir, c->streams, err, sizeof err) == 0) {
        c->state_saves++;
        c->state_error[0] = '\0';
    } else {
        c->state_failures++;
        if (strcmp(err, c->state_error) != 0) {
            tb_log(TB_LOG_ERROR, LOG_COMPONENT, "snapshot not written: %s", err);
        }
        memcpy(c->state_error, err, sizeof err);
    }
    c->streams->dirty = 0;
}

/* A snapshot when streams were started, stopped or forgotten, and every
 * TB_STATE_PERIOD_NS while any runs. */
static void s_state_tick(tb_collector_t *c, uint64_t now)
{
    if (c->cfg.state_dir == NULL || (!c->streams->dirty && now < c->next_state_ns)) {
        return;
    }
    int running = 0;
    for (size_t i = 0; i < c->streams->max && !running; i++) {
        running = c->streams->slot[i].in_use && c->streams->slot[i].state == TB_STREAM_RUNNING;
    }
    if (c->streams->dirty || running) {
        s_save_state(c);
    }
    c->next_state_ns = now + TB_STATE_PERIOD_NS;
}

/* Timers: snapshots; capture clocks, probes and rates of the streams, and
 * sinks flushing by age; offers running out; loss points every interval
 * while a stream runs. */
static void s_tick(tb_collector_t *c)
{
    uint64_t now = tb_time_mono_ns();
    s_state_tick(c, now);
    tb_streams_tick(c->streams, now);
    tb_offers_expire(c->offers, now);
    if (c->cfg.db == NULL || now < c->next_loss_ns) {
        return;
    }
    c->next_loss_ns = now + (uint64_t)c->cfg.db->interval_s * TB_NS_PER_SEC;
    for (size_t i = 0; i < c->streams->max; i++) {
        tb_stream_t *st = &c->streams->slot[i];
        if (st->in_use && st->state == TB_STREAM_RUNNING) {
            tb_streams_report_loss(c->streams, st);
        }
    }
}

/* What the collector listens to, and a warning for each endpoint bound for
 * the network without CURVE: whoever reaches it can feed data as any probe,
 * or start and stop measurements. */
static void s_announce(const tb_collector_t *c)
{
    for (size_t i = 0; i < c->cfg.nprobes; i++) {
        tb_log(TB_LOG_INFO, LOG_COMPONENT, "listening to probe %s", c->cfg.probes[i]);
    }
    for (size_t i = 0; i < c->cfg.nlisten; i++) {
        tb_log(TB_LOG_INFO, LOG_COMPONENT, "accepting probes on %s", c->cfg.listen[i]);
    }
    tb_log(TB_LOG_INFO, LOG_COMPONENT, "control on %s", c->cfg.control);
    tb_cpus_t cpus;
    tb_cpus_get(&cpus);
    char quota[32] = "none";
    if (cpus.quota != 0) {
        snprintf(quota, sizeof quota, "%zu", cpus.quota);
    }
    tb_log(TB_LOG_INFO, LOG_COMPONENT,
           "counting on %zu thread(s) (--threads %s; %zu CPUs usable: %zu online, %zu in the "
           "affinity mask, quota %s)",
           (size_t)(c->assist != NULL ? 2 : 1), c->cfg.threads == 0 ? "auto" : "given", cpus.usable,
           cpus.online, cpus.affinity, quota);
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

/* Bus messages, bounded by count and by time: a sparse capture (each
 * packet its own second and interval) makes every message expensive for the
 * database sink, and control must not wait for RECV_BUDGET of them. */
static void s_recv_some(tb_collector_t *c)
{
    uint64_t until = tb_time_mono_ns() + RECV_TIME_NS;
    for (int i = 0; i < RECV_BUDGET; i++) {
        int r = s_recv_one(c);
        if (r <= 0 || tb_time_mono_ns() >= until) {
            break;
        }
    }
}

/* Probe endpoints whose connection libzmq gave up on (busmon.h) are
 * connected again. */
static void s_reconnect_dead(tb_collector_t *c)
{
    for (const char *ep; (ep = tb_busmon_next_dead(c->mon, tb_time_mono_ns())) != NULL;) {
        tb_log(TB_LOG_WARN, LOG_COMPONENT,
               "probe %s: connection ended without a retry (protocol error); connecting again", ep);
        zmq_disconnect(c->sub, ep);
        if (zmq_connect(c->sub, ep) != 0) {
            tb_log(TB_LOG_ERROR, LOG_COMPONENT, "cannot connect to probe %s again: %s", ep,
                   zmq_strerror(errno));
        }
    }
}

int tb_collector_run(tb_collector_t *c, int stop_fd)
{
    if (!c->started) {
        tb_log(TB_LOG_ERROR, LOG_COMPONENT, "the collector runs only once started");
        return TB_EINVAL;
    }
    s_announce(c);
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
            items[nitems++] =
                (zmq_pollitem_t){.fd = tb_guard_dead_fd(c->guard), .events = ZMQ_POLLIN};
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
            s_recv_some(c);
            tb_streams_flush(c->streams); /* what is answered below holds every packet */
        }
        if (items[1].revents & ZMQ_POLLIN) {
            tb_control_serve(c);
        }
        if (c->dbq != NULL && (items[2].revents & ZMQ_POLLIN)) {
            tb_control_forward_db(c);
        }
        if (items[mon_idx].revents & ZMQ_POLLIN) {
            tb_busmon_read(c->mon);
        }
        s_reconnect_dead(c);
        s_tick(c);
    }
    /* The snapshot keeps them running: they come back with the collector. */
    if (c->cfg.state_dir != NULL) {
        s_save_state(c);
    }
    /* Streams still running end as stopped: their sinks get the final state. */
    for (size_t i = 0; i < c->streams->max; i++) {
        tb_stream_t *st = &c->streams->slot[i];
        if (st->in_use && st->state == TB_STREAM_RUNNING) {
            tb_streams_stop(c->streams, st);
        }
    }
    return rc;
}
