/* sink — where a collector's results go.
 *
 * The collector computes statistics; sinks store or show them. A sink may
 * keep state per stream (stream_open returns it) and follow every batch of
 * packets, or only hear about a stream's end. The database writer is a sink;
 * so is the log line every stream gets at its end. Sinks are called from the
 * collector's loop and must not block it: a slow sink hands work to its own
 * thread. Every hook but destroy is optional (NULL). */
#ifndef TB_SINK_H
#define TB_SINK_H

#include "stats.h"
#include "tb_mp.h"
#include "tb_summary.h"

#include <msgpack.h>

typedef struct tb_sink tb_sink_t;

/* Loss of one (probe, stream), cumulative since the measurement started. */
typedef struct {
    const char *probe;
    uint64_t received;      /* packets received from the probe */
    uint64_t capture_drops; /* dropped by the kernel or interface (pcap_stats) */
    uint64_t bus_drops;     /* batches the probe dropped at a full bus */
    uint64_t seq_gaps;      /* messages the collector never received */
    uint64_t lost_packets;  /* announced at end of stream, never received */
    uint64_t restarts;      /* probe restarts seen */
    uint64_t decode_errors; /* packets the probe found truncated or malformed */
    uint64_t files_skipped; /* files the probe skipped, abandoned or cut short */
    uint64_t frames_lost;   /* DPMI measurement frames missing from the sequence */
    uint64_t frames_bad;    /* DPMI measurement frames dropped as malformed */
    uint64_t unmeasured_ms; /* the stream went unmeasured while its collector was down */
} tb_loss_t;

typedef struct {
    const char *name;
    /* A stream's measurement starts; returns the sink's state for it (NULL
     * is allowed when the sink keeps none, or on failure: the sink then
     * ignores the stream and says so in its log). */
    void *(*stream_open)(tb_sink_t *sink, const char *stream);
    /* n packets of the stream (borrowed; n <= TB_AGG_CHUNK), grouped by
     * flow and host in agg (batchagg.h). */
    void (*stream_batch)(tb_sink_t *sink, void *state, const tb_summary_t *items, size_t n,
                         const tb_batchagg_t *agg);
    /* The statistics start over (a source began a new run): forget what is
     * open, emit nothing of it. */
    void (*stream_reset)(tb_sink_t *sink, void *state);
    /* The capture clock (ns) of a stream whose source runs in real time
     * (live, directory), called every loop turn while it runs and its
     * probes are heard: what is older than the lateness window closes. */
    void (*stream_clock)(tb_sink_t *sink, void *state, uint64_t now_ts);
    /* The capture clock of a live stream jumped to now_ts over a pause
     * nobody measured (probe silent, stream stopped, collector down): close
     * what is older, write nothing for the time skipped. */
    void (*stream_skip)(tb_sink_t *sink, void *state, uint64_t now_ts);
    /* Loss per probe, called every loss interval while the stream runs and
     * once at its end. */
    void (*stream_loss)(tb_sink_t *sink, void *state, const char *stream, const tb_loss_t *loss);
    /* The measurement of `stream` ended; `how` is "finished", "error" or
     * "stopped", `reason` what went wrong ("" when nothing did). st and
     * reason are borrowed for the duration of the call. */
    void (*stream_final)(tb_sink_t *sink, void *state, const char *stream, const char *how,
                         const char *reason, const tb_stats_t *st);
    /* --state-dir: what the sink holds open for the stream, as one msgpack
     * value in a snapshot, and back into a state stream_open just made
     * (errors set r->error). Both may be NULL (nothing to keep). */
    void (*stream_save)(tb_sink_t *sink, void *state, msgpack_packer *pk);
    void (*stream_load)(tb_sink_t *sink, void *state, tb_mp_reader_t *r);
    /* The stream's slot is released: free the state. */
    void (*stream_close)(tb_sink_t *sink, void *state);
    /* Called every loop turn with the monotonic time (flush by age). */
    void (*tick)(tb_sink_t *sink, uint64_t now_mono);
    /* Describe the sink's health into a status reply: one map value. */
    void (*health)(tb_sink_t *sink, msgpack_packer *pk);
    void (*destroy)(tb_sink_t *sink);
} tb_sink_ops_t;

struct tb_sink {
    const tb_sink_ops_t *ops;
};

/* Destroy a sink; accepts NULL and sets *p = NULL. */
void tb_sink_destroy(tb_sink_t **p);

/* A sink that logs one line per finished or stopped stream. */
tb_sink_t *tb_sink_log_new(void);

#endif
