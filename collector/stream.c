/* stream — see stream.h. */
#include "stream.h"
#include "stream_int.h"

#include "tb_err.h"
#include "tb_log.h"
#include "tb_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define LOG_COMPONENT "collector"
#define HEARD_NS      (3 * TB_NS_PER_SEC) /* a probe is heard: a message this recent */

tb_streams_t *tb_streams_new(size_t max_streams, size_t flow_capacity, size_t host_capacity,
                             uint64_t seed)
{
    tb_streams_t *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return NULL;
    }
    t->max = max_streams;
    t->flow_capacity = flow_capacity;
    t->host_capacity = host_capacity;
    t->seed = seed;
    t->slot = calloc(max_streams, sizeof *t->slot);
    t->agg = malloc(sizeof *t->agg);
    t->stages[0].items = malloc(TB_AGG_CHUNK * sizeof *t->stages[0].items);
    if (t->slot == NULL || t->agg == NULL || t->stages[0].items == NULL) {
        tb_streams_destroy(&t);
        return NULL;
    }
    tb_batchagg_init(t->agg, seed);
    return t;
}

/* Release every sink's state for a stream's measurement. */
static void s_sinks_close(tb_streams_t *t, tb_stream_t *st)
{
    for (size_t i = 0; i < t->nsinks; i++) {
        if (t->sinks[i]->ops->stream_close != NULL && st->sink_state[i] != NULL) {
            t->sinks[i]->ops->stream_close(t->sinks[i], st->sink_state[i]);
        }
        st->sink_state[i] = NULL;
    }
}

/* Open each sink's state for the stream where it has none. */
static void s_sinks_open(tb_streams_t *t, tb_stream_t *st)
{
    for (size_t i = 0; i < t->nsinks; i++) {
        if (st->sink_state[i] == NULL && t->sinks[i]->ops->stream_open != NULL) {
            st->sink_state[i] = t->sinks[i]->ops->stream_open(t->sinks[i], st->name);
        }
    }
}

void tb_streams_destroy(tb_streams_t **p)
{
    if (p == NULL || *p == NULL) {
        return;
    }
    tb_streams_t *t = *p;
    *p = NULL;
    if (t->stages[0].items != NULL && t->agg != NULL) {
        tb_streams_flush(t);
    }
    if (t->slot != NULL) {
        for (size_t i = 0; i < t->max; i++) {
            s_sinks_close(t, &t->slot[i]);
            tb_stats_destroy(&t->slot[i].stats);
        }
    }
    for (size_t i = 0; i < t->nsinks; i++) {
        tb_sink_destroy(&t->sinks[i]);
    }
    free(t->agg);
    free(t->agg_next);
    for (size_t i = 0; i < TB_STREAMS_STAGES; i++) {
        free(t->stages[i].items);
    }
    free(t->slot);
    free(t);
}

int tb_streams_add_sink(tb_streams_t *t, tb_sink_t **sink)
{
    if (t->nsinks == TB_STREAMS_MAX_SINKS) {
        return TB_ELIMIT;
    }
    t->sinks[t->nsinks++] = *sink;
    *sink = NULL;
    return 0;
}

tb_stream_t *tb_streams_find(tb_streams_t *t, const char *name)
{
    for (size_t i = 0; i < t->max; i++) {
        if (t->slot[i].in_use && strcmp(t->slot[i].name, name) == 0) {
            return &t->slot[i];
        }
    }
    return NULL;
}

tb_stream_t *tb_streams_find_topic(tb_streams_t *t, const uint8_t *topic, size_t len)
{
    for (size_t i = 0; i < t->max; i++) {
        tb_stream_t *st = &t->slot[i];
        if (st->in_use && st->topic_len == len && memcmp(st->topic, topic, len) == 0) {
            return st;
        }
    }
    return NULL;
}

/* Subscriptions are reference-counted by the SUB socket: subscribing twice
 * needs unsubscribing twice. Each stream holds at most one. */
static void s_subscribe(tb_streams_t *t, tb_stream_t *st)
{
    if (!st->subscribed && zmq_setsockopt(t->sub, ZMQ_SUBSCRIBE, st->topic, st->topic_len) == 0) {
        st->subscribed = 1;
    }
}

static void s_unsubscribe(tb_streams_t *t, tb_stream_t *st)
{
    if (st->subscribed) {
        zmq_setsockopt(t->sub, ZMQ_UNSUBSCRIBE, st->topic, st->topic_len);
        st->subscribed = 0;
    }
}

int tb_stream_forgettable(const tb_stream_t *st)
{
    return st->state != TB_STREAM_RUNNING &&
           (st->results_read || st->stats == NULL || st->stats->packets == 0);
}

size_t tb_streams_room(const tb_streams_t *t)
{
    size_t room = 0;
    for (size_t i = 0; i < t->max; i++) {
        room += !t->slot[i].in_use || tb_stream_forgettable(&t->slot[i]);
    }
    return room;
}

tb_stream_t *tb_streams_victim(tb_streams_t *t)
{
    tb_stream_t *victim = NULL;
    for (size_t i = 0; i < t->max; i++) {
        tb_stream_t *st = &t->slot[i];
        if (!st->in_use) {
            return NULL; /* a free slot: nothing needs to go */
        }
        if (tb_stream_forgettable(st) && (victim == NULL || st->ended_ns < victim->ended_ns)) {
            victim = st;
        }
    }
    return victim;
}

tb_stream_t *tb_streams_slot(tb_streams_t *t, const char *name)
{
    tb_streams_flush(t);
    tb_stream_t *st = tb_streams_find(t, name);
    if (st == NULL) {
        /* A free slot, or else the slot of the oldest ended stream whose
         * statistics were read (or that has none): results nobody has read
         * are never overwritten here. */
        tb_stream_t *victim = tb_streams_victim(t);
        for (size_t i = 0; i < t->max && st == NULL && victim == NULL; i++) {
            if (!t->slot[i].in_use) {
                st = &t->slot[i];
            }
        }
        if (st == NULL && victim != NULL) {
            tb_log(TB_LOG_INFO, LOG_COMPONENT, "forgetting ended stream %s to make room",
                   victim->name);
            s_unsubscribe(t, victim);
            st = victim;
        }
        if (st == NULL) {
            return NULL;
        }
        s_sinks_close(t, st);
        tb_stats_t *stats = st->stats;
        memset(st, 0, sizeof *st);
        st->stats = stats;
        snprintf(st->name, sizeof st->name, "%s", name);
        st->topic_len = (size_t)tb_wire_topic(name, st->topic, sizeof st->topic);
    }
    if (st->stats == NULL) {
        st->stats = tb_stats_new(t->flow_capacity, t->host_capacity, t->seed);
        if (st->stats == NULL) {
            return NULL;
        }
    }
    st->in_use = 1;
    t->dirty = 1;
    return st;
}

int tb_streams_resume(tb_streams_t *t, tb_stream_t *st)
{
    tb_streams_flush(t);
    s_sinks_open(t, st);
    st->state = TB_STREAM_RUNNING;
    st->ended_ns = 0;
    s_subscribe(t, st);
    t->dirty = 1;
    if (!st->subscribed) {
        st->state = TB_STREAM_STOPPED;
        return TB_EIO;
    }
    return 0;
}

int tb_streams_start(tb_streams_t *t, const char *name)
{
    tb_streams_flush(t);
    tb_stream_t *st = tb_streams_slot(t, name);
    if (st == NULL) {
        return TB_ENOMEM;
    }
    /* Leaving and rejoining the topic makes every probe's finite source start
     * a new run; whatever is still in flight from the runs seen so far is
     * ignored when it arrives. */
    s_unsubscribe(t, st);
    for (size_t i = 0; i < st->nprobes; i++) {
        tb_track_rejoin(&st->probes[i]);
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
    for (size_t i = 0; i < t->nsinks; i++) {
        if (carry_on && st->sink_state[i] != NULL) {
            continue;
        }
        if (t->sinks[i]->ops->stream_close != NULL && st->sink_state[i] != NULL) {
            t->sinks[i]->ops->stream_close(t->sinks[i], st->sink_state[i]);
        }
        st->sink_state[i] = t->sinks[i]->ops->stream_open != NULL
                                ? t->sinks[i]->ops->stream_open(t->sinks[i], name)
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
    st->state = TB_STREAM_RUNNING;
    st->started_ns = tb_time_now_ns();
    st->ended_ns = 0;
    st->resumes = 0;
    st->unmeasured_ns = 0;
    st->gap_from_ns = 0;
    st->gap_until_ns = 0;
    st->agg_skip = 0;
    st->agg_since = 0;
    t->dirty = 1;
    s_subscribe(t, st);
    if (!st->subscribed) {
        st->state = TB_STREAM_STOPPED;
        return TB_EIO;
    }
    tb_log(TB_LOG_INFO, LOG_COMPONENT, "stream %s started", st->name);
    return 0;
}

void tb_streams_report_loss(tb_streams_t *t, tb_stream_t *st)
{
    tb_streams_flush(t);
    for (size_t i = 0; i < t->nsinks; i++) {
        if (t->sinks[i]->ops->stream_loss == NULL) {
            continue;
        }
        for (size_t k = 0; k < st->nprobes; k++) {
            tb_loss_t l;
            tb_track_loss(&st->probes[k], st->unmeasured_ns, &l);
            t->sinks[i]->ops->stream_loss(t->sinks[i], st->sink_state[i], st->name, &l);
        }
    }
}

/* The measurement ended (stopped or finished): every sink gets the loss and
 * the final state. */
static void s_final(tb_streams_t *t, tb_stream_t *st)
{
    st->ended_ns = tb_time_now_ns();
    t->dirty = 1;
    tb_streams_report_loss(t, st);
    char reason[TB_STREAM_REASON_MAX];
    tb_stream_reason(t, st, reason, sizeof reason);
    for (size_t i = 0; i < t->nsinks; i++) {
        if (t->sinks[i]->ops->stream_final != NULL) {
            t->sinks[i]->ops->stream_final(t->sinks[i], st->sink_state[i], st->name,
                                           tb_stream_state(st), reason, st->stats);
        }
    }
}

void tb_streams_stop(tb_streams_t *t, tb_stream_t *st)
{
    tb_streams_flush(t);
    s_unsubscribe(t, st);
    if (st->state == TB_STREAM_RUNNING) {
        st->state = TB_STREAM_STOPPED;
        s_final(t, st);
    }
    st->state = TB_STREAM_STOPPED;
}

const char *tb_stream_sender(const tb_stream_t *st)
{
    if (st->state != TB_STREAM_RUNNING) {
        return NULL;
    }
    for (size_t i = 0; i < st->nprobes; i++) {
        if (st->probes[i].src_state != TB_SRC_ERROR) {
            return st->probes[i].probe_id;
        }
    }
    return NULL;
}

void tb_streams_forget(tb_streams_t *t, tb_stream_t *st)
{
    tb_streams_flush(t);
    if (st->state == TB_STREAM_RUNNING) {
        tb_streams_stop(t, st); /* its final points and log line, as for stop */
    }
    s_unsubscribe(t, st);
    /* What the sinks hold open was written at the end (a stopped stream's
     * open second and interval as they stood; a finished one's closed) and
     * has not changed since: closing writes nothing more. */
    s_sinks_close(t, st);
    tb_stats_destroy(&st->stats);
    tb_log(TB_LOG_INFO, LOG_COMPONENT, "stream %s forgotten", st->name);
    memset(st, 0, sizeof *st); /* in_use 0: the slot is free */
    t->dirty = 1;
}

/* A probe began a new run of its source (re-read a file from its start,
 * because it restarted or somebody subscribed). If this measurement already
 * holds data of an earlier run from it, the statistics start over: they
 * describe the run being received, never a mix of two. */
static void s_new_run(tb_streams_t *t, tb_stream_t *st, tb_track_t *pt, const tb_wire_header_t *h)
{
    if (tb_track_begin_run(pt, h)) {
        tb_streams_flush(t); /* the earlier run's packets, before it is wiped */
        tb_ratelog(t->log, TB_LOG_INFO,
                   "stream %s: probe %s started run %llu of its source; statistics start over",
                   st->name, pt->probe_id, (unsigned long long)h->run);
        tb_stats_reset(st->stats);
        tb_timebase_init(&st->tbase);
        st->run_resets++;
        for (size_t i = 0; i < t->nsinks; i++) {
            if (t->sinks[i]->ops->stream_reset != NULL) {
                t->sinks[i]->ops->stream_reset(t->sinks[i], st->sink_state[i]);
            }
        }
    }
    if (st->state == TB_STREAM_FINISHED) {
        st->state = TB_STREAM_RUNNING;
    }
}

void tb_streams_apply(tb_streams_t *t, tb_stream_t *st, const tb_wire_msg_t *m)
{
    const tb_wire_header_t *h = &m->hdr;
    /* A batch joins its stream's stage; anything else (a heartbeat, an
     * end, a new run) sees every stage counted and waits for a chunk still
     * being counted on the second thread (an end writes the final points,
     * which read the top tables). */
    if (h->type != TB_MSG_BATCH) {
        tb_streams_flush(t);
    }
    if (st->state == TB_STREAM_FINISHED) {
        /* A finished measurement stays as it ended until an operator starts
         * it again (tb_streams_start): a new run or boot of a probe, or a
         * probe not seen before, does not reset or reopen it. A heartbeat
         * with a real probe's id and another boot time would otherwise wipe
         * the result. */
        const tb_track_t *known = tb_track_find(st->probes, st->nprobes, h->probe_id);
        if (known == NULL || h->boot_ns != known->boot_ns || h->run != known->run) {
            st->runs_ignored++;
            return;
        }
    }
    tb_track_t *pt = tb_track_add(st->probes, &st->nprobes, TB_STREAM_MAX_PROBES, h);
    if (pt == NULL) {
        st->probes_refused++;
        return;
    }
    pt->last_heard = tb_time_mono_ns();
    uint64_t gap = 0;
    int backward = 0;
    tb_track_step_t step = tb_track_follow(pt, h, &gap, &backward);
    if (step == TB_TRACK_STALE) {
        st->stale++;
        return;
    }
    if (step == TB_TRACK_RESTARTED) {
        tb_ratelog(t->log, TB_LOG_WARN, "stream %s: probe %s restarted", st->name, pt->probe_id);
    }
    if (gap > 0) {
        tb_ratelog(t->log, TB_LOG_WARN, "stream %s: %llu message(s) from probe %s lost", st->name,
                   (unsigned long long)gap, pt->probe_id);
    } else if (backward) {
        tb_ratelog(t->log, TB_LOG_WARN, "stream %s: sequence of probe %s went backwards", st->name,
                   pt->probe_id);
    }
    if (step != TB_TRACK_SAME_RUN) {
        s_new_run(t, st, pt, h);
    }
    st->heard++; /* not waiting any more: this message is of the run measured */
    switch (h->type) {
    case TB_MSG_BATCH:
        tb_streams_stage(t, st, pt, m);
        break;
    case TB_MSG_HEARTBEAT:
        /* A probe busy filling a full bus may not get its offers through:
         * its heartbeats keep its offer alive. */
        tb_offers_touch(t->offers, h->probe_id, pt->last_heard);
        tb_track_heartbeat(pt, &m->hb);
        break;
    case TB_MSG_EOS:
        tb_track_eos(pt, &m->eos);
        if (m->eos.error) {
            tb_ratelog(t->log, TB_LOG_WARN, "stream %s: probe %s source ended with error: %s",
                       st->name, pt->probe_id, m->eos.detail);
        }
        if (st->state == TB_STREAM_RUNNING &&
            tb_track_all_ended(st->probes, st->nprobes, tb_time_mono_ns())) {
            st->state = TB_STREAM_FINISHED;
            s_final(t, st);
        }
        break;
    default:
        break;
    }
}

/* Free the slots of probes that have been silent past the limit and never
 * gave this measurement anything (no packets, no end, no loss): otherwise
 * made-up ids, one message each, would fill every slot and the real probe's
 * data would be refused. */
static void s_expire_probes(tb_streams_t *t, tb_stream_t *st, uint64_t now)
{
    size_t k = 0;
    for (size_t i = 0; i < st->nprobes; i++) {
        const tb_track_t *pt = &st->probes[i];
        if (tb_track_expirable(pt, now)) {
            st->probes_expired++;
            tb_ratelog(t->log, TB_LOG_INFO, "stream %s: silent probe %s left its slot", st->name,
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

/* The capture clock of each stream moves on with the collector's while the
 * stream runs and a probe of it is heard with its source running; a source
 * that runs in real time (run 0: live, directory) then has its sinks close
 * what is older than the lateness window. A stopped stream's or a silent
 * probe's clock stands still: time nobody measured is not written as idle,
 * and a directory's backlog read after a pause is not late. */
static void s_clock(tb_streams_t *t, tb_stream_t *st, uint64_t now)
{
    int clocked = st->nprobes > 0;
    uint64_t heard_mono = 0; /* the newest message of a probe whose source runs */
    for (size_t i = 0; i < st->nprobes; i++) {
        const tb_track_t *pt = &st->probes[i];
        clocked = clocked && pt->run == 0;
        if (pt->src_state == TB_SRC_RUNNING && pt->last_heard > heard_mono) {
            heard_mono = pt->last_heard;
        }
    }
    st->tbase.clocked = clocked;
    /* A live capture's packets are stamped now: its clock skips a pause.
     * What the offers said is kept while they are away (a probe that died
     * and comes back may be heard before its new offer is). */
    const char *kind = tb_offers_kind(t->offers, st->name);
    if (kind != NULL) {
        st->tbase.realtime = strcmp(kind, "iface") == 0 || strcmp(kind, "dpmi") == 0;
    }
    int running = st->state == TB_STREAM_RUNNING && heard_mono != 0 && now - heard_mono < HEARD_NS;
    int skipped;
    uint64_t now_ts = tb_timebase_tick(&st->tbase, heard_mono, running, &skipped);
    if (!running || !clocked || now_ts == 0) {
        return;
    }
    for (size_t i = 0; skipped && i < t->nsinks; i++) {
        if (t->sinks[i]->ops->stream_skip != NULL) {
            t->sinks[i]->ops->stream_skip(t->sinks[i], st->sink_state[i], now_ts);
        }
    }
    for (size_t i = 0; i < t->nsinks; i++) {
        if (t->sinks[i]->ops->stream_clock != NULL) {
            t->sinks[i]->ops->stream_clock(t->sinks[i], st->sink_state[i], now_ts);
        }
    }
}

void tb_streams_tick(tb_streams_t *t, uint64_t now)
{
    tb_streams_flush(t);
    for (size_t i = 0; i < t->max; i++) {
        tb_stream_t *st = &t->slot[i];
        if (st->in_use) {
            s_clock(t, st, now);
        }
        if (st->in_use && st->state == TB_STREAM_RUNNING) {
            s_expire_probes(t, st, now);
            if (tb_track_all_ended(st->probes, st->nprobes, now)) {
                st->state = TB_STREAM_FINISHED;
                s_final(t, st);
            }
        }
    }
    /* Current rates: packets received over the last second or so. */
    for (size_t i = 0; i < t->max; i++) {
        tb_stream_t *st = &t->slot[i];
        if (!st->in_use || now - st->rate_mark_ns < TB_NS_PER_SEC) {
            continue;
        }
        st->pps_now = st->rate_mark_ns == 0 || st->state != TB_STREAM_RUNNING
                          ? 0.0
                          : (double)(st->rx_packets - st->rate_mark_packets) /
                                ((double)(now - st->rate_mark_ns) / 1e9);
        st->rate_mark_ns = now;
        st->rate_mark_packets = st->rx_packets;
    }
    for (size_t i = 0; i < t->nsinks; i++) {
        if (t->sinks[i]->ops->tick != NULL) {
            t->sinks[i]->ops->tick(t->sinks[i], now);
        }
    }
}

const char *tb_stream_state_name(tb_stream_state_t s)
{
    switch (s) {
    case TB_STREAM_RUNNING:
        return "running";
    case TB_STREAM_FINISHED:
        return "finished";
    default:
        return "stopped";
    }
}

const char *tb_stream_state(const tb_stream_t *st)
{
    if (st->state == TB_STREAM_STOPPED) {
        return "stopped";
    }
    if (st->state == TB_STREAM_RUNNING && st->heard == 0) {
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
    return tb_stream_state_name(st->state);
}

void tb_stream_reason(const tb_streams_t *t, const tb_stream_t *st, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < st->nprobes && used + 1 < size; i++) {
        const tb_track_t *pt = &st->probes[i];
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
    if (used == 0 && st->state == TB_STREAM_RUNNING && st->heard == 0 &&
        tb_offers_find(t->offers, st->name) == NULL) {
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
                 used ? "; " : "", (double)st->unmeasured_ns / 1e9, (unsigned long long)st->resumes,
                 from, until);
    }
}
