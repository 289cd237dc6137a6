/* stream — the streams a collector measures, and its table of them.
 *
 * A stream is started by an operator (tapbusctl start), fed by the probes
 * that send it, and ends when it is stopped or every probe has sent its
 * end-of-stream (then it is "finished"). Its slot holds its statistics
 * (stats.h), each probe's track (track.h: position, runs, loss) and each
 * sink's state for it (sink.h); the slot is reused once the stream has
 * ended and its statistics were read, or when it is forgotten.
 *
 * tb_streams_* act on the table; tb_stream_* read one stream. The table is
 * plain data so that control replies and snapshots can walk it; only the
 * functions here change it. Not thread-safe: the collector's loop owns it. */
#ifndef TB_STREAM_H
#define TB_STREAM_H

#include "assist.h"
#include "batchagg.h"
#include "offers.h"
#include "ratelog.h"
#include "series.h"
#include "sink.h"
#include "stats.h"
#include "tb_wire.h"
#include "track.h"

#include <stddef.h>
#include <stdint.h>

#define TB_STREAM_MAX_PROBES 32  /* probes feeding one stream */
#define TB_STREAM_REASON_MAX 512 /* bytes of a stream's reason */
#define TB_STREAMS_MAX_SINKS 4

/* Chunks smaller than this are counted on the loop thread alone: handing
 * one over costs some microseconds, a chunk of this size about 0.1 ms. */
#define TB_STREAMS_ASSIST_MIN 1024

/* The part of a chunk counted on the second thread (stream.c). */
typedef struct {
    const tb_batchagg_t *agg;
    tb_topk_t *flows;
    tb_topk_t *hosts;
} tb_streams_job_t;

typedef enum { TB_STREAM_STOPPED = 0, TB_STREAM_RUNNING, TB_STREAM_FINISHED } tb_stream_state_t;

typedef struct {
    int in_use;
    char name[TB_STREAM_MAX + 1];
    uint8_t topic[TB_TOPIC_MAX];
    size_t topic_len;
    tb_stream_state_t state;
    uint64_t started_ns; /* wall-clock time of start */
    uint64_t ended_ns;   /* wall-clock time it finished or stopped */
    tb_stats_t *stats;   /* owned */
    size_t nprobes;
    tb_track_t probes[TB_STREAM_MAX_PROBES];
    int subscribed;          /* the SUB socket holds this stream's topic */
    uint64_t run_resets;     /* statistics started over for a new run of a source */
    uint64_t stale;          /* messages of runs before a restart, ignored */
    uint64_t probes_refused; /* messages from probes beyond TB_STREAM_MAX_PROBES */
    uint64_t probes_expired; /* silent probes that never delivered, slot freed */
    uint64_t runs_ignored;   /* messages of a new run or boot after it finished */
    int results_read;        /* stats was answered since it ended */
    uint64_t bad_messages;   /* messages on this stream's topic that failed validation */
    void *sink_state[TB_STREAMS_MAX_SINKS]; /* each sink's state for this measurement */
    uint64_t rx_packets;                    /* packets received, never reset (rates) */
    uint64_t rate_mark_ns;                  /* monotonic time of the last rate sample */
    uint64_t rate_mark_packets;             /* rx_packets then */
    double pps_now;                         /* packets per second over the last second */
    uint64_t heard;                         /* messages from probes since the measurement started */
    tb_timebase_t tbase;                    /* capture clock, outlier judge (series.h) */
    /* Restarts of the collector this measurement carried on through
     * (--state-dir): how often, and the time it went unmeasured. */
    uint64_t resumes;
    uint64_t unmeasured_ns; /* all gaps together */
    uint64_t gap_from_ns;   /* the latest gap: wall-clock time of the snapshot */
    uint64_t gap_until_ns;  /* ... and of the restart */
    /* What its chunks are not grouped by (TB_AGG_GROUP_*: grouping saved
     * too little in the last chunk grouped in full), and its packets since
     * that one (stream_stage.c). */
    unsigned agg_skip;
    unsigned agg_since;
} tb_stream_t;

/* Streams staged at once (tb_streams_t.stages): with several streams
 * running, each probe's messages come in turn, and a stage shared by all
 * would be counted after every message (1,000-odd packets, not 8,192),
 * grouping far less. A stage holds TB_AGG_CHUNK summaries (512 KiB),
 * allocated when first needed; a ninth stream interleaved takes over the
 * fullest stage, which is counted first. */
#define TB_STREAMS_STAGES 8

typedef struct {
    tb_summary_t *items; /* TB_AGG_CHUNK of them, or NULL until first used */
    size_t n;            /* staged */
    tb_stream_t *st;     /* whose (NULL: free) */
} tb_stage_t;

typedef struct {
    tb_stream_t *slot;                      /* max slots, owned */
    size_t max;                             /* streams measured at once */
    size_t flow_capacity, host_capacity;    /* each stream's top tables */
    uint64_t seed;                          /* of every hash (flows, hosts, estimates) */
    tb_sink_t *sinks[TB_STREAMS_MAX_SINKS]; /* owned, called in this order */
    size_t nsinks;
    tb_batchagg_t *agg; /* owned: a chunk of a batch, grouped by flow and host */
    /* Summaries of consecutive batches of a stream, counted together in
     * chunks of TB_AGG_CHUNK (tb_streams_flush): a stage per stream whose
     * batches arrive interleaved with others' (the SUB socket takes turns
     * among probes), at most TB_STREAMS_STAGES. */
    tb_stage_t stages[TB_STREAMS_STAGES];
    /* Borrowed (tb_streams_set_assist; NULL: every chunk is counted on the
     * loop thread alone): a second thread that counts a chunk's top tables
     * while the loop counts the totals and hands the chunk to the sinks,
     * the job it was given, whether it may still be at it (until the next
     * chunk or tb_streams_flush), the buffer the next chunk is grouped in
     * meanwhile (owned), and the chunks counted that way (for status). */
    tb_assist_t *assist;
    tb_streams_job_t job;
    int job_pending;
    tb_batchagg_t *agg_next;
    uint64_t chunks_assisted;
    /* Borrowed, set by the owner before any stream starts: the SUB socket
     * streams subscribe on (NULL: none), what probes offer (for reasons and
     * the kind of clock), the per-message log lines. */
    void *sub;
    tb_offers_t *offers;
    tb_ratelog_t *log;
    /* Set when a stream is started, stopped, forgotten, ends or is read:
     * the owner writes a snapshot and clears it (state.h). */
    int dirty;
} tb_streams_t;

/* A table of max_streams free slots whose streams get top tables of the
 * given capacities and hashes seeded with seed. NULL when out of memory. */
tb_streams_t *tb_streams_new(size_t max_streams, size_t flow_capacity, size_t host_capacity,
                             uint64_t seed);

/* Release every stream's sink state and statistics, then the sinks.
 * Accepts NULL, sets *p = NULL. */
void tb_streams_destroy(tb_streams_t **p);

/* Add a sink, taking ownership (*sink is set to NULL). 0, or TB_ELIMIT
 * (TB_STREAMS_MAX_SINKS already; *sink is left to the caller). Before any
 * stream starts. */
int tb_streams_add_sink(tb_streams_t *t, tb_sink_t **sink);

/* The stream named name (started, stopped or ended), or NULL (borrowed). */
tb_stream_t *tb_streams_find(tb_streams_t *t, const char *name);

/* The stream whose topic frame is topic[0..len), or NULL (borrowed). */
tb_stream_t *tb_streams_find_topic(tb_streams_t *t, const uint8_t *topic, size_t len);

/* Slots free or reusable (forgettable streams) for new streams. */
size_t tb_streams_room(const tb_streams_t *t);

/* The stream a new one would replace: NULL when a slot is free or none is
 * forgettable, else the forgettable one that ended first (borrowed). */
tb_stream_t *tb_streams_victim(tb_streams_t *t);

/* The stream's slot: found by name, or a free one, or the oldest ended
 * stream's (forgotten to make room), named and with its statistics
 * allocated; in_use, not subscribed. NULL when every slot is taken or out of
 * memory. */
tb_stream_t *tb_streams_slot(tb_streams_t *t, const char *name);

/* Start (or restart) measuring a stream. Returns 0, TB_ENOMEM when every
 * slot is taken, or TB_EIO when subscribing failed. */
int tb_streams_start(tb_streams_t *t, const char *name);

/* Carry on measuring a stream restored from a snapshot (borrowed): open its
 * sinks and subscribe, keeping its statistics. 0 or TB_EIO. */
int tb_streams_resume(tb_streams_t *t, tb_stream_t *st);

/* Stop measuring a stream (borrowed): unsubscribe, keep its statistics; if
 * it was running, its sinks get its loss and final state. */
void tb_streams_stop(tb_streams_t *t, tb_stream_t *st);

/* Drop a stream for good: stop it if it is still started (its sinks get
 * the final state), unsubscribe, release its sinks' state and statistics
 * and free the slot. st must not be used afterwards. */
void tb_streams_forget(tb_streams_t *t, tb_stream_t *st);

/* One decoded bus message (borrowed; its summaries may be corrected: absurd
 * capture times) of a started stream: its probe's track follows it, and a
 * batch is counted in the statistics and handed to every sink (staged:
 * tb_streams_flush). A message of
 * a stream that finished counts only if it is of a run already measured. */
void tb_streams_apply(tb_streams_t *t, tb_stream_t *st, const tb_wire_msg_t *m);

/* Count what is staged: the statistics and sinks of the stream whose
 * batches were staged then hold every packet applied. Batches are staged so
 * that the packets of several (a loop turn's) are grouped and counted
 * together: a bigger chunk holds fewer distinct flows per packet. Every
 * function here that reads or changes a stream flushes first; the owner
 * flushes after a run of tb_streams_apply, before it answers anything (a
 * full chunk met during tb_streams_apply may still be counted on the second
 * thread until then: nothing may read a stream's statistics before). */
void tb_streams_flush(tb_streams_t *t);

/* Count on a second thread beside the loop from now on (NULL: on the loop
 * alone). The thread must outlive the streams' last flush (their
 * destruction). Returns 0 or TB_ENOMEM (the second chunk buffer, about
 * 1.8 MiB). */
int tb_streams_set_assist(tb_streams_t *t, tb_assist_t *assist);

/* Timers, at monotonic time now: each stream's capture clock; silent probes
 * that gave nothing leave their slots; a stream whose probes have all ended
 * finishes; the current rates; then every sink's tick (flush by age). */
void tb_streams_tick(tb_streams_t *t, uint64_t now);

/* Every sink hears the loss of each of the stream's probes so far. */
void tb_streams_report_loss(tb_streams_t *t, tb_stream_t *st);

/* 1 if the stream's slot may be given to a new stream: it has ended and its
 * statistics were read (stats answered after it ended) or it has none. */
int tb_stream_forgettable(const tb_stream_t *st);

/* The id of a probe sending a running stream, or NULL when none is: the
 * stream is stopped or finished, no probe has sent anything for it yet, or
 * every probe that did reports its source failed. Only such a stream may be
 * forgotten. */
const char *tb_stream_sender(const tb_stream_t *st);

/* "stopped", "running" or "finished". */
const char *tb_stream_state_name(tb_stream_state_t s);

/* The state an operator sees (status, stats, gateway, database):
 *   stopped   stopped by the operator;
 *   waiting   started, nothing heard from any probe yet;
 *   running   probes are sending;
 *   finished  every probe sent its end-of-stream;
 *   error     no packet arrived and every probe that reported a state
 *             reported an error (a file that cannot be read, an interface
 *             that cannot be opened).
 * A stream with packets whose source then failed (a file cut short) stays
 * running/finished: tb_stream_reason says what went wrong. */
const char *tb_stream_state(const tb_stream_t *st);

/* Why the stream is in its state, or "" when all is well: the error of each
 * probe whose source failed ("probe p1: ..."), or, while waiting, that no
 * probe offers the stream; and the time it went unmeasured while the
 * collector was down. */
void tb_stream_reason(const tb_streams_t *t, const tb_stream_t *st, char *buf, size_t size);

#endif
