/* stream_stage — the stage of the table of streams (stream.h): a stream's
 * batches gathered into chunks of up to TB_AGG_CHUNK packets, each grouped
 * once (batchagg.h) and counted into the stream's statistics and every
 * sink, on the loop thread or with the counting thread beside it
 * (assist.h). */
#include "stream.h"
#include "stream_int.h"

#include "tb_err.h"

#include <stdlib.h>
#include <string.h>

static void s_sinks_batch(tb_streams_t *t, tb_stream_t *st, const tb_summary_t *items, size_t n)
{
    for (size_t i = 0; i < t->nsinks; i++) {
        if (t->sinks[i]->ops->stream_batch != NULL) {
            t->sinks[i]->ops->stream_batch(t->sinks[i], st->sink_state[i], items, n, t->agg);
        }
    }
}

/* The other thread's part of a chunk (s_count_stage). */
static void s_count_tables(void *arg)
{
    const tb_streams_job_t *job = arg;
    tb_batchagg_count(job->agg, job->flows, job->hosts, NULL);
}

/* Wait for the chunk the other thread is counting, if any. */
static void s_settle(tb_streams_t *t)
{
    if (t->job_pending) {
        tb_assist_end(t->assist);
        t->job_pending = 0;
    }
}

/* Grouping a chunk by flow or host pays when its keys repeat: without it,
 * a chunk of a skewed stream (10,000 Zipf flows: a third as many flows as
 * packets) costs a third more, one of a million Zipf flows (three in five)
 * a quarter more. When nearly every key is new it is a lookup per key that
 * saves nothing: with every packet a new flow (and new hosts), the
 * collector spends a tenth less time per packet without it. Hosts gain
 * less from it than flows: a host key is smaller, a host entry cheaper to
 * make. So a stream whose chunk gave more than 7 flows per 8 packets stops
 * grouping flows, more than 3 hosts per 4 host keys stops grouping hosts,
 * and once AGG_RECHECK packets (16 chunks' worth) went by not grouped in
 * full, a chunk is grouped in full again to see whether its traffic
 * changed. Chunks of fewer than AGG_JUDGE_MIN packets (a quiet
 * stream, a flush) say too little and change nothing. The counts are the
 * same either way (batchagg.h). */
#define AGG_SKIP_FLOWS(flows, packets) ((flows) * 8 > (packets) * 7)
#define AGG_SKIP_HOSTS(hosts, keys)    ((hosts) * 4 > (keys) * 3)
#define AGG_RECHECK                    (16 * TB_AGG_CHUNK) /* packets */
#define AGG_JUDGE_MIN                  1024

static void s_group(tb_streams_t *t, tb_stream_t *st, const tb_summary_t *items, size_t n)
{
    unsigned group = TB_AGG_GROUP_ALL & ~st->agg_skip;
    if (st->agg_skip != 0 && st->agg_since >= AGG_RECHECK) {
        group = TB_AGG_GROUP_ALL;
    }
    if (group != TB_AGG_GROUP_ALL) {
        st->agg_since += (unsigned)n;
    }
    tb_batchagg_build(t->agg, items, n, group);
    if (n < AGG_JUDGE_MIN) {
        return;
    }
    const tb_batchagg_t *a = t->agg;
    if (group & TB_AGG_GROUP_FLOWS) {
        st->agg_skip = AGG_SKIP_FLOWS(a->nflows, n) ? st->agg_skip | TB_AGG_GROUP_FLOWS
                                                      : st->agg_skip & ~TB_AGG_GROUP_FLOWS;
    }
    if (group & TB_AGG_GROUP_HOSTS) {
        st->agg_skip = AGG_SKIP_HOSTS(a->nhosts, a->host_keys)
                           ? st->agg_skip | TB_AGG_GROUP_HOSTS
                           : st->agg_skip & ~TB_AGG_GROUP_HOSTS;
    }
    if (group == TB_AGG_GROUP_ALL) {
        st->agg_since = 0;
    }
}

/* Count a chunk of st. With a second thread
 * (t->assist) and a chunk big enough, that thread counts the stream's top
 * tables while the loop counts the totals and hands the chunk to the
 * sinks; they share only the grouped chunk, which neither writes. The
 * other thread may still be at it on return: the next chunk (of any
 * stream) is grouped into the other buffer first, then waits for it
 * (s_settle), and so does tb_streams_flush. */
static void s_count_chunk(tb_streams_t *t, tb_stream_t *st, const tb_summary_t *items, size_t n)
{
    /* The chunk's keys are built, hashed and grouped once for every
     * consumer (batchagg.h), in the buffer the other thread is not reading;
     * then the tables are free once the chunk before is counted. */
    s_group(t, st, items, n);
    s_settle(t);
    if (t->assist == NULL || n < TB_STREAMS_ASSIST_MIN) {
        tb_stats_add(st->stats, items, n, t->agg);
        s_sinks_batch(t, st, items, n);
        return;
    }
    t->job.agg = t->agg;
    t->job.flows = st->stats->flows;
    t->job.hosts = st->stats->hosts;
    tb_assist_begin(t->assist, s_count_tables, &t->job);
    t->job_pending = 1;
    t->chunks_assisted++;
    tb_stats_add_totals(st->stats, items, n);
    s_sinks_batch(t, st, items, n);
    /* The next chunk is grouped into the other buffer. */
    tb_batchagg_t *busy = t->agg;
    t->agg = t->agg_next;
    t->agg_next = busy;
}

/* Count a stage's chunk and free the stage. */
static void s_count_stage(tb_streams_t *t, tb_stage_t *sg)
{
    tb_stream_t *st = sg->st;
    size_t n = sg->n;
    sg->st = NULL;
    sg->n = 0;
    if (st != NULL && n > 0) {
        s_count_chunk(t, st, sg->items, n);
    }
}

void tb_streams_flush(tb_streams_t *t)
{
    for (size_t i = 0; i < TB_STREAMS_STAGES; i++) {
        s_count_stage(t, &t->stages[i]);
    }
    s_settle(t);
}

int tb_streams_set_assist(tb_streams_t *t, tb_assist_t *assist)
{
    tb_streams_flush(t);
    if (assist != NULL && t->agg_next == NULL) {
        t->agg_next = malloc(sizeof *t->agg_next);
        if (t->agg_next == NULL) {
            return TB_ENOMEM;
        }
        tb_batchagg_init(t->agg_next, t->seed);
    }
    t->assist = assist;
    return 0;
}

/* The stage of st: its own, a free one, or the fullest, counted first
 * (more streams interleave than there are stages). Stage 0 is allocated
 * with the table; a stage whose buffer cannot be allocated is passed
 * over. */
static tb_stage_t *s_stage_of(tb_streams_t *t, tb_stream_t *st)
{
    tb_stage_t *free_sg = NULL, *fullest = &t->stages[0];
    for (size_t i = 0; i < TB_STREAMS_STAGES; i++) {
        tb_stage_t *sg = &t->stages[i];
        if (sg->st == st) {
            return sg;
        }
        if (sg->st == NULL && free_sg == NULL) {
            if (sg->items == NULL) {
                sg->items = malloc(TB_AGG_CHUNK * sizeof *sg->items);
            }
            if (sg->items != NULL) {
                free_sg = sg;
            }
        }
        if (sg->items != NULL && sg->n > fullest->n) {
            fullest = sg;
        }
    }
    if (free_sg != NULL) {
        return free_sg;
    }
    s_count_stage(t, fullest);
    return fullest;
}

static void s_received(tb_stream_t *st, tb_track_t *pt, const tb_wire_msg_t *m)
{
    st->rx_packets += m->count;
    pt->received += m->count;
    if (st->state == TB_STREAM_FINISHED && !pt->eos_seen) {
        st->state = TB_STREAM_RUNNING; /* a probe that had not ended yet */
    }
}

/* Whether st's batch m is counted where it was decoded, without staging:
 * a stream that groups nothing (nearly every key new) gains nothing from
 * chunks bigger than a batch, and the copy into the stage and back out of
 * the cache cost it 4-8 % of its time (tb-ingest-bench). Not while packets
 * of the stream wait in a stage (they come first), nor once the stream is
 * due to be grouped in full again (staged, to judge a whole chunk), nor for
 * a batch too small for the counting thread (TB_STREAMS_ASSIST_MIN: a
 * quiet stream's batches are staged into bigger chunks). */
static int s_direct(const tb_streams_t *t, const tb_stream_t *st, const tb_wire_msg_t *m)
{
    if (st->agg_skip != TB_AGG_GROUP_ALL || st->agg_since >= AGG_RECHECK ||
        m->count < TB_STREAMS_ASSIST_MIN) {
        return 0;
    }
    for (size_t i = 0; i < TB_STREAMS_STAGES; i++) {
        if (t->stages[i].st == st) {
            return 0;
        }
    }
    return 1;
}

void tb_streams_stage(tb_streams_t *t, tb_stream_t *st, tb_track_t *pt, const tb_wire_msg_t *m)
{
    /* Absurd capture times are replaced (and counted) before anything sees
     * them. */
    tb_timebase_judge(&st->tbase, m->items, m->count);
    tb_pointstats_add(&st->stats->points, &m->points, m->items, m->count);
    if (s_direct(t, st, m)) {
        for (size_t off = 0; off < m->count; off += TB_AGG_CHUNK) {
            size_t k = m->count - off < TB_AGG_CHUNK ? m->count - off : TB_AGG_CHUNK;
            s_count_chunk(t, st, m->items + off, k);
        }
        s_received(st, pt, m);
        return;
    }
    /* Staged with the stream's batches before and after it: counted chunk
     * by chunk when the stage is full or flushed. */
    tb_stage_t *sg = s_stage_of(t, st);
    for (size_t off = 0; off < m->count;) {
        size_t k = TB_AGG_CHUNK - sg->n;
        k = m->count - off < k ? m->count - off : k;
        memcpy(sg->items + sg->n, m->items + off, k * sizeof *sg->items);
        sg->n += k;
        sg->st = st;
        off += k;
        if (sg->n == TB_AGG_CHUNK) {
            s_count_stage(t, sg);
        }
    }
    s_received(st, pt, m);
}
