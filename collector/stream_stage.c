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

static void s_sinks_batch(tb_streams_t *t, tb_stream_t *st, size_t n)
{
    for (size_t i = 0; i < t->nsinks; i++) {
        if (t->sinks[i]->ops->stream_batch != NULL) {
            t->sinks[i]->ops->stream_batch(t->sinks[i], st->sink_state[i], t->stage, n, t->agg);
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

/* Count the staged chunk. With a second thread (t->assist) and a chunk big
 * enough, that thread counts the stream's top tables while the loop counts
 * the totals and hands the chunk to the sinks; they share only the grouped
 * chunk, which neither writes. keep_going: do not wait for the other thread
 * (a full chunk in the middle of a batch: the loop goes on decoding and
 * grouping the next chunk, in the other buffer, while the tables are
 * counted). Otherwise everything is counted on return. */
static void s_count_stage(tb_streams_t *t, int keep_going)
{
    tb_stream_t *st = t->stage_st;
    size_t n = t->nstage;
    t->stage_st = NULL;
    t->nstage = 0;
    if (st == NULL || n == 0) {
        s_settle(t);
        return;
    }
    /* The chunk's keys are built, hashed and grouped once for every
     * consumer (batchagg.h), in the buffer the other thread is not reading;
     * then the tables are free once the chunk before is counted. */
    tb_batchagg_build(t->agg, t->stage, n);
    s_settle(t);
    if (t->assist == NULL || n < TB_STREAMS_ASSIST_MIN) {
        tb_stats_add(st->stats, t->stage, n, t->agg);
        s_sinks_batch(t, st, n);
        return;
    }
    t->job.agg = t->agg;
    t->job.flows = st->stats->flows;
    t->job.hosts = st->stats->hosts;
    tb_assist_begin(t->assist, s_count_tables, &t->job);
    t->job_pending = 1;
    t->chunks_assisted++;
    tb_stats_add_totals(st->stats, t->stage, n);
    s_sinks_batch(t, st, n);
    /* The next chunk is grouped into the other buffer. */
    tb_batchagg_t *busy = t->agg;
    t->agg = t->agg_next;
    t->agg_next = busy;
    if (!keep_going) {
        s_settle(t);
    }
}

void tb_streams_flush(tb_streams_t *t)
{
    s_count_stage(t, 0);
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

void tb_streams_stage(tb_streams_t *t, tb_stream_t *st, tb_track_t *pt, const tb_wire_msg_t *m)
{
    /* Absurd capture times are replaced (and counted) before anything sees
     * them. */
    tb_timebase_judge(&st->tbase, m->items, m->count);
    tb_pointstats_add(&st->stats->points, &m->points, m->items, m->count);
    /* Staged with the stream's batches before and after it: counted chunk
     * by chunk when the stage is full or flushed. */
    for (size_t off = 0; off < m->count;) {
        size_t k = TB_AGG_CHUNK - t->nstage;
        k = m->count - off < k ? m->count - off : k;
        memcpy(t->stage + t->nstage, m->items + off, k * sizeof *t->stage);
        t->nstage += k;
        t->stage_st = st;
        off += k;
        if (t->nstage == TB_AGG_CHUNK) {
            s_count_stage(t, 1);
        }
    }
    st->rx_packets += m->count;
    pt->received += m->count;
    if (st->state == TB_STREAM_FINISHED && !pt->eos_seen) {
        st->state = TB_STREAM_RUNNING; /* a probe that had not ended yet */
    }
}
