/* test_stream — the collector's table of measured streams
 * (collector/stream.c), on its own: a real ZeroMQ SUB socket to subscribe
 * on (nothing connected), a real offer table, and a sink that records what
 * it is told. Decoded bus messages are applied as the loop applies them:
 * a stream waits, runs, counts gaps, starts over on a new run of its
 * source, finishes when its probes end and then ignores new runs; its state
 * and reason say what went wrong; slots are reused only when their results
 * were read or hold none; silent probes that gave nothing leave their
 * slots, and probes beyond the limit are refused; with the counting thread
 * the statistics are the same. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "stream.h"
#include "tb_err.h"
#include "tb_log.h"
#include "tb_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* A sink that records what it is told. */
typedef struct {
    tb_sink_t base;
    const tb_streams_t *t; /* set by a test: whether a chunk was still being counted at the end */
    int pending_at_final;
    int opens, closes, resets, finals, losses;
    uint64_t packets;
    char how[16];
    char reason[TB_STREAM_REASON_MAX];
    uint64_t seq_gaps; /* of the latest loss */
} rec_sink_t;

static void *s_rec_open(tb_sink_t *sink, const char *stream)
{
    (void)stream;
    rec_sink_t *r = (rec_sink_t *)sink;
    r->opens++;
    return r; /* any non-NULL state */
}

static void s_rec_batch(tb_sink_t *sink, void *state, const tb_summary_t *items, size_t n,
                        const tb_batchagg_t *agg)
{
    (void)state, (void)items, (void)agg;
    ((rec_sink_t *)sink)->packets += n;
}

static void s_rec_reset(tb_sink_t *sink, void *state)
{
    (void)state;
    rec_sink_t *r = (rec_sink_t *)sink;
    r->resets++;
    r->packets = 0;
}

static void s_rec_loss(tb_sink_t *sink, void *state, const char *stream, const tb_loss_t *loss)
{
    (void)state, (void)stream;
    rec_sink_t *r = (rec_sink_t *)sink;
    r->losses++;
    r->seq_gaps = loss->seq_gaps;
}

static void s_rec_final(tb_sink_t *sink, void *state, const char *stream, const char *how,
                        const char *reason, const tb_stats_t *st)
{
    (void)state, (void)stream, (void)st;
    rec_sink_t *r = (rec_sink_t *)sink;
    r->finals++;
    r->pending_at_final |= r->t != NULL && r->t->job_pending;
    snprintf(r->how, sizeof r->how, "%s", how);
    snprintf(r->reason, sizeof r->reason, "%s", reason);
}

static void s_rec_close(tb_sink_t *sink, void *state)
{
    (void)state;
    ((rec_sink_t *)sink)->closes++;
}

static void s_rec_destroy(tb_sink_t *sink)
{
    free(sink);
}

static const tb_sink_ops_t s_rec_ops = {
    .name = "rec",
    .stream_open = s_rec_open,
    .stream_batch = s_rec_batch,
    .stream_reset = s_rec_reset,
    .stream_loss = s_rec_loss,
    .stream_final = s_rec_final,
    .stream_close = s_rec_close,
    .destroy = s_rec_destroy,
};

typedef struct {
    void *zctx, *sub;
    tb_offers_t *offers;
    tb_ratelog_t log;
    tb_streams_t *t;
    rec_sink_t *rec; /* owned by t */
    tb_summary_t items[4096];
} fixture_t;

/* Everything the fixture holds; accepts what is not there yet. */
static void s_free(fixture_t *f)
{
    tb_streams_destroy(&f->t);
    free(f->rec); /* NULL once the table owns it */
    tb_offers_destroy(&f->offers);
    if (f->sub != NULL) {
        zmq_close(f->sub);
    }
    if (f->zctx != NULL) {
        zmq_ctx_term(f->zctx);
    }
    free(f);
}

static int s_setup(void **state)
{
    tb_log_set_level(TB_LOG_ERROR);
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return -1;
    }
    int linger = 0;
    f->zctx = zmq_ctx_new();
    f->sub = f->zctx != NULL ? zmq_socket(f->zctx, ZMQ_SUB) : NULL;
    f->offers = tb_offers_new(8, 64);
    f->t = tb_streams_new(2, 64, 64, 1);
    f->rec = calloc(1, sizeof *f->rec);
    if (f->sub == NULL || f->offers == NULL || f->t == NULL || f->rec == NULL ||
        zmq_setsockopt(f->sub, ZMQ_LINGER, &linger, sizeof linger) != 0) {
        s_free(f);
        return -1;
    }
    f->rec->base.ops = &s_rec_ops;
    tb_sink_t *sink = &f->rec->base;
    if (tb_streams_add_sink(f->t, &sink) != 0 || sink != NULL) {
        s_free(f);
        return -1;
    }
    tb_ratelog_init(&f->log, "test", TB_NS_PER_SEC, 5);
    f->t->sub = f->sub;
    f->t->offers = f->offers;
    f->t->log = &f->log;
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fixture_t *f = *state;
    f->rec = NULL; /* the table's */
    s_free(f);
    return 0;
}

/* Apply one message of stream `stream` from probe (boot 100), staged as
 * the collector's loop applies the messages it receives in a turn. */
static void s_apply(fixture_t *f, tb_stream_t *st, int type, const char *probe, uint64_t seq,
                    uint64_t run, size_t count)
{
    tb_wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.hdr.type = (uint8_t)type;
    snprintf(m.hdr.probe_id, sizeof m.hdr.probe_id, "%s", probe);
    snprintf(m.hdr.stream, sizeof m.hdr.stream, "%s", st->name);
    m.hdr.boot_ns = 100;
    m.hdr.seq = seq;
    m.hdr.run = run;
    uint64_t now = tb_time_now_ns();
    assert_true(count <= sizeof f->items / sizeof f->items[0]);
    for (size_t i = 0; i < count; i++) {
        tb_summary_t *s = &f->items[i];
        memset(s, 0, sizeof *s);
        s->ts_ns = now + i;
        s->wire_len = s->cap_len = 100;
        s->family = TB_FAMILY_IPV4;
        s->proto = 17;
        s->flags = TB_SUM_PORTS;
        s->sport = 1000;
        s->dport = 53;
        s->src[0] = 10, s->src[3] = 1;
        s->dst[0] = 10, s->dst[3] = 2;
    }
    m.items = f->items;
    m.count = type == TB_MSG_BATCH ? count : 0;
    if (type == TB_MSG_HEARTBEAT) {
        m.hb.state = TB_SRC_RUNNING;
    }
    tb_streams_apply(f->t, st, &m);
}

/* One message, then what the loop does after the messages of a turn. */
static void s_msg(fixture_t *f, tb_stream_t *st, int type, const char *probe, uint64_t seq,
                  uint64_t run, size_t count)
{
    s_apply(f, st, type, probe, seq, run, count);
    tb_streams_flush(f->t);
}

static void s_eos(fixture_t *f, tb_stream_t *st, const char *probe, uint64_t seq, uint64_t run,
                  uint64_t packets, uint64_t first_seq)
{
    tb_wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.hdr.type = TB_MSG_EOS;
    snprintf(m.hdr.probe_id, sizeof m.hdr.probe_id, "%s", probe);
    snprintf(m.hdr.stream, sizeof m.hdr.stream, "%s", st->name);
    m.hdr.boot_ns = 100;
    m.hdr.seq = seq;
    m.hdr.run = run;
    m.eos.packets = packets;
    m.eos.first_seq = first_seq;
    tb_streams_apply(f->t, st, &m);
}

static void test_a_stream_waits_then_runs(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(tb_streams_start(f->t, "s1"), 0);
    tb_stream_t *st = tb_streams_find(f->t, "s1");
    assert_non_null(st);
    assert_int_equal(st->state, TB_STREAM_RUNNING);
    assert_true(st->subscribed);
    assert_int_equal(f->rec->opens, 1);
    assert_string_equal(tb_stream_state(st), "waiting");
    char reason[TB_STREAM_REASON_MAX];
    tb_stream_reason(f->t, st, reason, sizeof reason);
    assert_string_equal(reason, "no probe offers this stream (yet)");
    uint8_t topic[TB_TOPIC_MAX];
    int len = tb_wire_topic("s1", topic, sizeof topic);
    assert_ptr_equal(tb_streams_find_topic(f->t, topic, (size_t)len), st);
    s_msg(f, st, TB_MSG_BATCH, "p1", 0, 0, 3);
    assert_int_equal(st->stats->packets, 3);
    assert_int_equal(st->probes[0].received, 3);
    assert_int_equal(f->rec->packets, 3);
    assert_string_equal(tb_stream_state(st), "running");
    tb_stream_reason(f->t, st, reason, sizeof reason);
    assert_string_equal(reason, "");
    assert_string_equal(tb_stream_sender(st), "p1");
    assert_true(f->t->dirty);
}

/* Batches of one stream are staged and counted together; a message of
 * another stream, any other message of the stream, a new run and a full
 * stage each get what was staged counted first, so every packet lands in
 * the statistics of the run and stream it belongs to. */
static void test_batches_are_staged_and_counted_once(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(tb_streams_start(f->t, "a"), 0);
    assert_int_equal(tb_streams_start(f->t, "b"), 0);
    tb_stream_t *a = tb_streams_find(f->t, "a");
    tb_stream_t *b = tb_streams_find(f->t, "b");
    s_apply(f, a, TB_MSG_BATCH, "p1", 0, 1, 3);
    s_apply(f, a, TB_MSG_BATCH, "p1", 1, 1, 5);
    s_apply(f, b, TB_MSG_BATCH, "p1", 0, 1, 2); /* a stage each: nothing counted */
    s_apply(f, a, TB_MSG_BATCH, "p1", 2, 1, 4);
    assert_int_equal(a->stats->packets, 0);
    assert_int_equal(b->stats->packets, 0);
    s_apply(f, a, TB_MSG_HEARTBEAT, "p1", 3, 1, 0); /* every stage counted */
    assert_int_equal(a->stats->packets, 12);
    assert_int_equal(b->stats->packets, 2);
    assert_int_equal(f->rec->packets, 14);
    /* Every packet of a is one flow: its top entry holds them all. */
    tb_topk_item_t top[2];
    assert_int_equal(tb_topk_top(a->stats->flows, top, 2), 1);
    assert_int_equal(top[0].packets, 12);

    /* A new run wipes the old run's packets, staged or not, and only them. */
    s_apply(f, a, TB_MSG_BATCH, "p1", 4, 1, 7);
    s_apply(f, a, TB_MSG_BATCH, "p1", 5, 2, 6);
    tb_streams_flush(f->t);
    assert_int_equal(a->stats->packets, 6);
    assert_int_equal(a->run_resets, 1);

    /* More than a stage holds, in batches: counted in full chunks, the rest
     * at the flush. */
    uint64_t before = a->stats->packets;
    for (uint64_t i = 0; i < 3; i++) {
        s_apply(f, a, TB_MSG_BATCH, "p1", 6 + i, 2, 4000);
    }
    assert_true(a->stats->packets >= before + TB_AGG_CHUNK);
    tb_streams_flush(f->t);
    assert_int_equal(a->stats->packets, before + 12000);
    assert_int_equal(a->rx_packets, a->stats->packets + 19); /* and the first run's 19 */
    tb_streams_flush(f->t); /* nothing staged: nothing counted twice */
    assert_int_equal(a->stats->packets, before + 12000);

    /* Stopping a stream counts what it had staged. */
    s_apply(f, b, TB_MSG_BATCH, "p1", 1, 1, 9);
    tb_streams_stop(f->t, b);
    assert_int_equal(b->stats->packets, 11);
}

static void test_gaps_and_a_new_run(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(tb_streams_start(f->t, "file"), 0);
    tb_stream_t *st = tb_streams_find(f->t, "file");
    s_msg(f, st, TB_MSG_BATCH, "p1", 0, 1, 2);
    s_msg(f, st, TB_MSG_BATCH, "p1", 3, 1, 2); /* 1 and 2 lost */
    assert_int_equal(st->probes[0].seq_gaps, 2);
    assert_int_equal(st->stats->packets, 4);
    /* The file is read again from its start: the statistics start over. */
    s_msg(f, st, TB_MSG_BATCH, "p1", 4, 2, 1);
    assert_int_equal(st->run_resets, 1);
    assert_int_equal(f->rec->resets, 1);
    assert_int_equal(st->stats->packets, 1);
    assert_int_equal(st->probes[0].run, 2);
    /* Loss goes to the sinks on request (every loss interval). */
    tb_streams_report_loss(f->t, st);
    assert_int_equal(f->rec->losses, 1);
    assert_int_equal(f->rec->seq_gaps, 2);
}

static void test_a_finished_stream_stays_as_it_ended(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(tb_streams_start(f->t, "file"), 0);
    tb_stream_t *st = tb_streams_find(f->t, "file");
    s_msg(f, st, TB_MSG_BATCH, "p1", 0, 1, 4);
    s_eos(f, st, "p1", 1, 1, 6, 0); /* 2 announced, never received */
    assert_int_equal(st->state, TB_STREAM_FINISHED);
    assert_int_equal(st->probes[0].lost_packets, 2);
    assert_int_equal(f->rec->finals, 1);
    assert_string_equal(f->rec->how, "finished");
    assert_int_equal(f->rec->losses, 1);
    assert_true(st->ended_ns > 0);
    assert_null(tb_stream_sender(st));
    /* A new run, or a probe not seen before, changes nothing. */
    s_msg(f, st, TB_MSG_BATCH, "p1", 0, 2, 1);
    s_msg(f, st, TB_MSG_HEARTBEAT, "p9", 0, 1, 0);
    assert_int_equal(st->runs_ignored, 2);
    assert_int_equal(st->stats->packets, 4);
    assert_int_equal(st->state, TB_STREAM_FINISHED);
    /* Its results unread, its slot is not for the taking. */
    assert_false(tb_stream_forgettable(st));
    st->results_read = 1;
    assert_true(tb_stream_forgettable(st));
}

static void test_a_failed_source_is_an_error_with_a_reason(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(tb_streams_start(f->t, "bad"), 0);
    tb_stream_t *st = tb_streams_find(f->t, "bad");
    tb_wire_msg_t m;
    memset(&m, 0, sizeof m);
    m.hdr.type = TB_MSG_HEARTBEAT;
    snprintf(m.hdr.probe_id, sizeof m.hdr.probe_id, "p1");
    snprintf(m.hdr.stream, sizeof m.hdr.stream, "bad");
    m.hdr.boot_ns = 100;
    m.hb.state = TB_SRC_ERROR;
    snprintf(m.hb.detail, sizeof m.hb.detail, "cannot open x.pcap\x1b[2J");
    tb_streams_apply(f->t, st, &m);
    assert_string_equal(tb_stream_state(st), "error");
    char reason[TB_STREAM_REASON_MAX];
    tb_stream_reason(f->t, st, reason, sizeof reason);
    /* The detail comes from the network: no control bytes pass. */
    assert_string_equal(reason, "probe p1: cannot open x.pcap?[2J");
    assert_null(tb_stream_sender(st)); /* nobody sends it: it may be forgotten */
    tb_streams_stop(f->t, st);
    assert_false(st->subscribed);
    assert_int_equal(f->rec->finals, 1);
    assert_string_equal(f->rec->how, "stopped");
    assert_string_equal(f->rec->reason, "probe p1: cannot open x.pcap?[2J");
}

static void test_slots_are_reused_only_when_their_results_were_read(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(tb_streams_start(f->t, "a"), 0);
    assert_int_equal(tb_streams_start(f->t, "b"), 0);
    assert_int_equal(tb_streams_room(f->t), 0);
    assert_int_equal(tb_streams_start(f->t, "c"), TB_ENOMEM);
    tb_stream_t *a = tb_streams_find(f->t, "a");
    s_msg(f, a, TB_MSG_BATCH, "p1", 0, 0, 1);
    tb_streams_stop(f->t, a);
    assert_int_equal(a->state, TB_STREAM_STOPPED);
    assert_int_equal(tb_streams_room(f->t), 0); /* a's packets were never read */
    assert_null(tb_streams_victim(f->t));
    a->results_read = 1;
    assert_int_equal(tb_streams_room(f->t), 1);
    assert_ptr_equal(tb_streams_victim(f->t), a);
    assert_int_equal(tb_streams_start(f->t, "c"), 0);
    assert_null(tb_streams_find(f->t, "a"));
    tb_stream_t *c = tb_streams_find(f->t, "c");
    assert_ptr_equal(c, a); /* a's slot */
    assert_int_equal(c->stats->packets, 0);
    /* Forgetting frees a slot at once, running or not. */
    int closes = f->rec->closes;
    tb_streams_forget(f->t, tb_streams_find(f->t, "b"));
    assert_null(tb_streams_find(f->t, "b"));
    assert_int_equal(f->rec->closes, closes + 1);
    assert_int_equal(tb_streams_room(f->t), 1);
}

static void test_silent_probes_that_gave_nothing_leave(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(tb_streams_start(f->t, "live"), 0);
    tb_stream_t *st = tb_streams_find(f->t, "live");
    s_msg(f, st, TB_MSG_HEARTBEAT, "ghost", 0, 0, 0);
    s_msg(f, st, TB_MSG_BATCH, "real", 0, 0, 2);
    assert_int_equal(st->nprobes, 2);
    tb_streams_tick(f->t, tb_time_mono_ns());
    assert_int_equal(st->nprobes, 2);
    tb_streams_tick(f->t, tb_time_mono_ns() + TB_TRACK_EXPIRE_NS + TB_NS_PER_SEC);
    assert_int_equal(st->nprobes, 1);
    assert_string_equal(st->probes[0].probe_id, "real");
    assert_int_equal(st->probes_expired, 1);
    assert_int_equal(st->state, TB_STREAM_RUNNING); /* nobody ended it */
}

static void test_probes_beyond_the_limit_are_refused(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(tb_streams_start(f->t, "busy"), 0);
    tb_stream_t *st = tb_streams_find(f->t, "busy");
    for (int i = 0; i <= TB_STREAM_MAX_PROBES; i++) {
        char id[16];
        snprintf(id, sizeof id, "p%d", i);
        s_msg(f, st, TB_MSG_HEARTBEAT, id, 0, 0, 0);
    }
    assert_int_equal(st->nprobes, TB_STREAM_MAX_PROBES);
    assert_int_equal(st->probes_refused, 1);
}

static void test_starting_again_rejoins(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(tb_streams_start(f->t, "file"), 0);
    tb_stream_t *st = tb_streams_find(f->t, "file");
    s_msg(f, st, TB_MSG_BATCH, "p1", 0, 1, 3);
    assert_int_equal(tb_streams_start(f->t, "file"), 0);
    assert_ptr_equal(tb_streams_find(f->t, "file"), st);
    assert_int_equal(st->stats->packets, 0);
    assert_int_equal(st->probes[0].min_run, 2);
    assert_string_equal(tb_stream_state(st), "waiting");
    /* Still in flight from run 1: ignored. */
    s_msg(f, st, TB_MSG_BATCH, "p1", 1, 1, 3);
    assert_int_equal(st->stale, 1);
    assert_int_equal(st->stats->packets, 0);
    s_msg(f, st, TB_MSG_BATCH, "p1", 0, 2, 2);
    assert_int_equal(st->stats->packets, 2);
    assert_int_equal(st->run_resets, 0); /* nothing of run 2 was counted before */
}

/* A batch of st from probe p1 (boot 100, run 1). */
static void s_batch_msg(tb_wire_msg_t *m, const tb_stream_t *st, uint64_t seq,
                        tb_summary_t *items, size_t count)
{
    memset(m, 0, sizeof *m);
    m->hdr.type = TB_MSG_BATCH;
    snprintf(m->hdr.probe_id, sizeof m->hdr.probe_id, "p1");
    snprintf(m->hdr.stream, sizeof m->hdr.stream, "%s", st->name);
    m->hdr.boot_ns = 100;
    m->hdr.seq = seq;
    m->hdr.run = 1;
    m->items = items;
    m->count = count;
}

/* Batches of many flows (4,000 packets each, 500 flows of uneven size) for
 * a stream, run as the loop runs them: a flush after every few messages. */
static void s_feed_flows(fixture_t *f, tb_stream_t *st, uint64_t now)
{
    static tb_summary_t items[4000];
    for (uint64_t seq = 0; seq < 30; seq++) {
        for (size_t i = 0; i < 4000; i++) {
            tb_summary_t *s = &items[i];
            memset(s, 0, sizeof *s);
            uint32_t flow = (uint32_t)((i * i + seq * 7) % 500);
            s->ts_ns = now + seq * 4000 + i;
            s->wire_len = s->cap_len = 60 + flow;
            s->family = TB_FAMILY_IPV4;
            s->proto = 6;
            s->flags = TB_SUM_PORTS;
            s->sport = (uint16_t)(1000 + flow);
            s->dport = 443;
            s->src[0] = 10, s->src[3] = (uint8_t)(flow % 37);
            s->dst[0] = 10, s->dst[2] = 1, s->dst[3] = (uint8_t)(flow % 11);
        }
        tb_wire_msg_t m;
        s_batch_msg(&m, st, seq, items, 4000);
        tb_streams_apply(f->t, st, &m);
        if (seq % 5 == 4) {
            tb_streams_flush(f->t);
        }
    }
    tb_streams_flush(f->t);
}

static void s_assert_same_table(tb_topk_t *a, tb_topk_t *b)
{
    static tb_topk_item_t ia[64], ib[64];
    size_t na = tb_topk_top(a, ia, 64);
    assert_int_equal(na, tb_topk_top(b, ib, 64));
    assert_true(na > 0);
    for (size_t i = 0; i < na; i++) {
        assert_memory_equal(ia[i].key, ib[i].key,
                            sizeof(tb_flow_key_t) < sizeof(tb_host_key_t) ? sizeof(tb_flow_key_t)
                                                                          : sizeof(tb_host_key_t));
        assert_int_equal(ia[i].packets, ib[i].packets);
        assert_int_equal(ia[i].bytes, ib[i].bytes);
        assert_int_equal(ia[i].error, ib[i].error);
    }
    assert_int_equal(tb_topk_total(a), tb_topk_total(b));
}

/* A second fixture whose table counts with the counting thread. */
static fixture_t *s_fixture_with_thread(tb_assist_t **assist)
{
    fixture_t *two = NULL;
    assert_int_equal(s_setup((void **)&two), 0);
    *assist = tb_assist_start();
    assert_non_null(*assist);
    assert_int_equal(tb_streams_set_assist(two->t, *assist), 0);
    return two;
}

static void s_free_with_thread(fixture_t *two, tb_assist_t **assist)
{
    two->rec = NULL; /* the table's */
    s_free(two);     /* the streams first: their last flush uses the thread */
    tb_assist_stop(assist);
}

/* The same statistics: totals, classes, last packet, top tables. */
static void s_assert_same_stats(const tb_stream_t *a, const tb_stream_t *b)
{
    assert_int_equal(a->stats->bytes, b->stats->bytes);
    assert_memory_equal(a->stats->proto, b->stats->proto, sizeof a->stats->proto);
    assert_int_equal(a->stats->max_pkt.wire_len, b->stats->max_pkt.wire_len);
    assert_int_equal(a->stats->last_pkt.ts_ns, b->stats->last_pkt.ts_ns);
    s_assert_same_table(a->stats->flows, b->stats->flows);
    s_assert_same_table(a->stats->hosts, b->stats->hosts);
}

/* With the counting thread (--threads 2) a stream's statistics are exactly
 * those counted on the loop alone: totals, every top flow and host with
 * its counts and error, and the sink saw every packet; full chunks were
 * counted beside the loop, and nothing is left under way after a flush. */
static void test_a_counting_thread_counts_the_same(void **state)
{
    fixture_t *alone = *state;
    tb_assist_t *assist = NULL;
    fixture_t *two = s_fixture_with_thread(&assist);
    tb_stream_t *st[2];
    fixture_t *fx[2] = {alone, two};
    uint64_t now = tb_time_now_ns();
    for (int k = 0; k < 2; k++) {
        assert_int_equal(tb_streams_start(fx[k]->t, "many"), 0);
        st[k] = tb_streams_find(fx[k]->t, "many");
        assert_non_null(st[k]);
        s_feed_flows(fx[k], st[k], now);
        assert_false(fx[k]->t->job_pending);
        assert_int_equal(st[k]->stats->packets, 30 * 4000);
        assert_int_equal(fx[k]->rec->packets, 30 * 4000);
    }
    assert_int_equal(alone->t->chunks_assisted, 0);
    assert_true(two->t->chunks_assisted >= 30 * 4000 / TB_AGG_CHUNK);
    s_assert_same_stats(st[0], st[1]);
    s_free_with_thread(two, &assist);
}

/* A chunk filled exactly by a batch is counted on the second thread while
 * the loop goes on; the stream's end that follows (its final points read
 * the top tables) waits for it. */
static void test_an_end_waits_for_the_counting_thread(void **state)
{
    fixture_t *f = *state;
    tb_assist_t *assist = tb_assist_start();
    assert_non_null(assist);
    assert_int_equal(tb_streams_set_assist(f->t, assist), 0);
    f->rec->t = f->t;
    assert_int_equal(tb_streams_start(f->t, "s"), 0);
    tb_stream_t *st = tb_streams_find(f->t, "s");
    s_apply(f, st, TB_MSG_BATCH, "p1", 0, 1, TB_AGG_CHUNK / 2);
    s_apply(f, st, TB_MSG_BATCH, "p1", 1, 1, TB_AGG_CHUNK / 2); /* fills the chunk */
    assert_int_equal(f->t->stages[0].n, 0);
    assert_true(f->t->job_pending);
    s_eos(f, st, "p1", 2, 1, TB_AGG_CHUNK, 0);
    assert_int_equal(f->rec->finals, 1);
    assert_false(f->rec->pending_at_final);
    assert_false(f->t->job_pending);
    assert_string_equal(tb_stream_state(st), "finished");
    tb_topk_item_t top[2];
    assert_int_equal(tb_topk_top(st->stats->flows, top, 2), 1);
    assert_int_equal(top[0].packets, TB_AGG_CHUNK);
    tb_streams_destroy(&f->t); /* before the thread it uses */
    f->rec = NULL;
    tb_assist_stop(&assist);
}

/* Streams whose batches come in turn keep a stage each, so each counts
 * full chunks; one more stream than there are stages takes over the
 * fullest, which is counted first; nothing is lost or counted twice. */
static void test_interleaved_streams_keep_their_stages(void **state)
{
    fixture_t *f = *state;
    tb_streams_t *own = f->t;
    tb_streams_t *t = tb_streams_new(TB_STREAMS_STAGES + 2, 64, 64, 1);
    assert_non_null(t);
    t->sub = f->sub;
    t->offers = f->offers;
    t->log = &f->log;
    f->t = t;
    tb_stream_t *st[TB_STREAMS_STAGES + 1];
    uint64_t sent[TB_STREAMS_STAGES + 1] = {0};
    for (size_t i = 0; i <= TB_STREAMS_STAGES; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%zu", i);
        assert_int_equal(tb_streams_start(t, name), 0);
        st[i] = tb_streams_find(t, name);
        assert_non_null(st[i]);
    }
    /* One batch of each of the first TB_STREAMS_STAGES streams, in turn:
     * each its own stage, none counted yet. */
    for (size_t i = 0; i < TB_STREAMS_STAGES; i++) {
        s_apply(f, st[i], TB_MSG_BATCH, "p1", 0, 1, 100 + i);
        sent[i] += 100 + i;
    }
    for (size_t i = 0; i < TB_STREAMS_STAGES; i++) {
        assert_ptr_equal(t->stages[i].st, st[i]);
        assert_int_equal(t->stages[i].n, 100 + i);
        assert_int_equal(st[i]->stats->packets, 0);
    }
    /* Half a chunk more for s0 and s1 each, in turn, then s0's fills its
     * chunk: counted whole, s1's still staged. */
    s_apply(f, st[0], TB_MSG_BATCH, "p1", 1, 1, TB_AGG_CHUNK / 2);
    s_apply(f, st[1], TB_MSG_BATCH, "p1", 1, 1, TB_AGG_CHUNK / 2);
    s_apply(f, st[0], TB_MSG_BATCH, "p1", 2, 1, TB_AGG_CHUNK / 2 - 100);
    sent[0] += TB_AGG_CHUNK - 100;
    sent[1] += TB_AGG_CHUNK / 2;
    assert_int_equal(st[0]->stats->packets, TB_AGG_CHUNK);
    assert_int_equal(t->stages[0].n, 0);
    assert_int_equal(st[1]->stats->packets, 0);
    assert_int_equal(t->stages[1].n, 101 + TB_AGG_CHUNK / 2);
    /* One stream more than stages: the fullest (s1's) is counted and
     * taken over. */
    s_apply(f, st[0], TB_MSG_BATCH, "p1", 3, 1, 10);
    sent[0] += 10;
    s_apply(f, st[TB_STREAMS_STAGES], TB_MSG_BATCH, "p1", 0, 1, 7);
    sent[TB_STREAMS_STAGES] += 7;
    assert_int_equal(st[1]->stats->packets, sent[1]);
    assert_ptr_equal(t->stages[1].st, st[TB_STREAMS_STAGES]);
    /* A heartbeat sees every stage counted. */
    s_apply(f, st[2], TB_MSG_HEARTBEAT, "p1", 1, 1, 0);
    for (size_t i = 0; i < TB_STREAMS_STAGES; i++) {
        assert_int_equal(t->stages[i].n, 0);
    }
    for (size_t i = 0; i <= TB_STREAMS_STAGES; i++) {
        assert_int_equal(st[i]->stats->packets, sent[i]);
        assert_int_equal(st[i]->rx_packets, sent[i]);
        tb_topk_item_t top[2];
        assert_int_equal(tb_topk_top(st[i]->stats->flows, top, 2), 1);
        assert_int_equal(top[0].packets, sent[i]);
    }
    tb_streams_destroy(&t);
    f->t = own;
}

/* A batch of `count` packets for st whose flows are numbered from `first`:
 * packet i is flow (first + i) % flows, each flow its own pair of hosts
 * when hosts_per_flow, else one of 8 sources and 8 destinations. */
static void s_apply_flows(fixture_t *f, tb_stream_t *st, uint64_t seq, size_t count,
                          uint32_t first, uint32_t flows, int hosts_per_flow)
{
    for (size_t i = 0; i < count; i++) {
        tb_summary_t *s = &f->items[i];
        uint32_t flow = (uint32_t)((first + i) % flows);
        memset(s, 0, sizeof *s);
        s->ts_ns = 1000000000ull + seq * 4096 + i;
        s->wire_len = s->cap_len = 100;
        s->family = TB_FAMILY_IPV4;
        s->proto = 6;
        s->flags = TB_SUM_PORTS;
        s->sport = (uint16_t)flow;
        s->dport = (uint16_t)(flow >> 16);
        uint32_t src = hosts_per_flow ? flow : flow % 8;
        uint32_t dst = hosts_per_flow ? flow : flow / 8 % 8;
        s->src[0] = 10, s->src[1] = (uint8_t)(src >> 16), s->src[2] = (uint8_t)(src >> 8);
        s->src[3] = (uint8_t)src;
        s->dst[0] = 11, s->dst[1] = (uint8_t)(dst >> 16), s->dst[2] = (uint8_t)(dst >> 8);
        s->dst[3] = (uint8_t)dst;
    }
    tb_wire_msg_t m;
    s_batch_msg(&m, st, seq, f->items, count);
    tb_streams_apply(f->t, st, &m);
}

/* A stream whose every packet is a new flow between new hosts stops
 * grouping its chunks (and counts every packet as before: tables big
 * enough to hold every key hold each with one packet, no error); many
 * flows between few hosts stop only the flows' grouping; once its
 * traffic repeats again, a chunk grouped in full to look again brings
 * the grouping back. */
static void test_grouping_follows_the_traffic(void **state)
{
    fixture_t *f = *state;
    tb_streams_t *own = f->t;
    enum { FLOWS = 5 * TB_AGG_CHUNK };
    tb_streams_t *t = tb_streams_new(1, FLOWS, 2 * FLOWS, 1);
    assert_non_null(t);
    t->sub = f->sub;
    t->offers = f->offers;
    t->log = &f->log;
    f->t = t;
    assert_int_equal(tb_streams_start(t, "scan"), 0);
    tb_stream_t *st = tb_streams_find(t, "scan");
    assert_non_null(st);
    assert_int_equal(st->agg_skip, 0);
    uint64_t seq = 0;
    for (uint32_t first = 0; first < FLOWS; first += 4096) {
        s_apply_flows(f, st, seq++, 4096, first, FLOWS, 1);
        if (first + 4096 >= TB_AGG_CHUNK) {
            assert_int_equal(st->agg_skip, TB_AGG_GROUP_ALL); /* from the first chunk on */
        }
    }
    tb_streams_flush(t);
    assert_int_equal(st->stats->packets, FLOWS);
    static tb_topk_item_t top[FLOWS];
    assert_int_equal(tb_topk_top(st->stats->flows, top, FLOWS), FLOWS);
    assert_int_equal(top[0].packets, 1);
    assert_int_equal(top[FLOWS - 1].packets, 1);
    assert_int_equal(top[0].error, 0);
    assert_int_equal(tb_topk_top(st->stats->hosts, top, FLOWS), FLOWS);
    assert_int_equal(tb_topk_total(st->stats->hosts), 2 * FLOWS);
    assert_int_equal(top[0].packets, 1);
    /* New flows between 8 sources and 8 destinations: hosts grouped again
     * at the next full chunk, flows not. */
    for (int k = 0; k < 16 * 2 + 2; k++) {
        s_apply_flows(f, st, seq++, 4096, FLOWS + (uint32_t)k * 4096, UINT32_MAX, 0);
    }
    assert_int_equal(st->agg_skip, TB_AGG_GROUP_FLOWS);
    /* 500 flows, over and over: within AGG_RECHECK chunks it is grouped in
     * full again. */
    for (int k = 0; k < 16 * 2 + 2; k++) {
        s_apply_flows(f, st, seq++, 4096, 0, 500, 0);
    }
    assert_int_equal(st->agg_skip, 0);
    tb_streams_flush(t);
    assert_int_equal(st->stats->packets, FLOWS + 2 * (16 * 2 + 2) * 4096);
    assert_int_equal(tb_topk_total(st->stats->flows), st->stats->packets);
    assert_int_equal(tb_topk_total(st->stats->hosts), 2 * st->stats->packets);
    tb_streams_destroy(&t);
    f->t = own;
}

/* A stream of new flows (grouped in nothing) has its batches counted where
 * they were decoded, without staging: each counted at once, nothing left in
 * a stage. With the counting thread beside the loop its statistics are
 * exactly those counted on the loop alone, and the sink saw every packet. */
static void test_new_flows_are_counted_where_decoded(void **state)
{
    fixture_t *alone = *state;
    tb_assist_t *assist = NULL;
    fixture_t *two = s_fixture_with_thread(&assist);
    enum { BATCHES = 30, N = 4096 }; /* within the first 16 chunks' worth ungrouped */
    tb_stream_t *st[2];
    fixture_t *fx[2] = {alone, two};
    for (int k = 0; k < 2; k++) {
        assert_int_equal(tb_streams_start(fx[k]->t, "scan"), 0);
        st[k] = tb_streams_find(fx[k]->t, "scan");
        assert_non_null(st[k]);
        for (uint64_t seq = 0; seq < BATCHES; seq++) {
            s_apply_flows(fx[k], st[k], seq, N, (uint32_t)(seq * N), UINT32_MAX, 1);
            if ((seq + 1) * N > TB_AGG_CHUNK) { /* the first chunk, staged, was judged */
                assert_int_equal(st[k]->agg_skip, TB_AGG_GROUP_ALL);
                assert_int_equal(st[k]->stats->packets, (seq + 1) * N);
                for (size_t i = 0; i < TB_STREAMS_STAGES; i++) {
                    assert_true(fx[k]->t->stages[i].st != st[k]);
                }
            }
            if (seq % 5 == 4) {
                tb_streams_flush(fx[k]->t);
            }
        }
        tb_streams_flush(fx[k]->t);
        assert_false(fx[k]->t->job_pending);
        assert_int_equal(st[k]->stats->packets, BATCHES * N);
        assert_int_equal(fx[k]->rec->packets, BATCHES * N);
        assert_int_equal(tb_topk_total(st[k]->stats->flows), BATCHES * N);
        assert_int_equal(tb_topk_total(st[k]->stats->hosts), 2 * BATCHES * N);
    }
    assert_int_equal(alone->t->chunks_assisted, 0);
    assert_true(two->t->chunks_assisted >= BATCHES - 2);
    assert_int_equal(st[0]->stats->first_ts, st[1]->stats->first_ts);
    assert_int_equal(st[0]->stats->last_pkt.ts_ns, 1000000000ull + (BATCHES - 1) * 4096 + N - 1);
    s_assert_same_stats(st[0], st[1]);
    s_free_with_thread(two, &assist);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_stream_waits_then_runs, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_batches_are_staged_and_counted_once, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_gaps_and_a_new_run, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_a_finished_stream_stays_as_it_ended, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_source_is_an_error_with_a_reason, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_slots_are_reused_only_when_their_results_were_read,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_silent_probes_that_gave_nothing_leave, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_probes_beyond_the_limit_are_refused, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_starting_again_rejoins, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_new_flows_are_counted_where_decoded, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_a_counting_thread_counts_the_same, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_interleaved_streams_keep_their_stages, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_an_end_waits_for_the_counting_thread, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_grouping_follows_the_traffic, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
