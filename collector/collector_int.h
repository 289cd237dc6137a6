/* collector_int — state shared by the collector's loop (collector.c) and its
 * control handler (control.c). Not a public interface. */
#ifndef TB_COLLECTOR_INT_H
#define TB_COLLECTOR_INT_H

#include "batchagg.h"
#include "busmon.h"
#include "collector.h"
#include "dbquery.h"
#include "guard.h"
#include "keybind.h"
#include "offers.h"
#include "series.h"
#include "sink.h"
#include "stats.h"
#include "tb_log.h"
#include "tb_time.h"
#include "tb_wire.h"

#include <msgpack.h>
#include <stdint.h>

#define TB_STREAM_MAX_PROBES  32
#define TB_COLL_MAX_SINKS     4
#define TB_COLL_DB_WAITING    4    /* db requests with the query thread at once */
#define TB_COLL_OFFER_PROBES  64   /* probes whose offers are kept */
#define TB_COLL_OFFER_STREAMS 1024 /* offered streams kept, all probes together */
#define TB_COLL_REASON_MAX    512  /* bytes of a stream's reason */
#define TB_COLL_CTL_SNDHWM    8    /* replies queued for one control client */
#define TB_COLL_CTL_RCVHWM    16   /* requests queued from one control client */
/* A probe of a stream silent this long: it no longer keeps the stream from
 * finishing, and if it never delivered anything it leaves its slot (a
 * made-up probe id cannot hold one for ever). Probes send a heartbeat every
 * second. */
#define TB_COLL_PROBE_EXPIRE_NS (10 * TB_NS_PER_SEC)

/* Counters fed by what peers send add up without wrapping round. */
static inline uint64_t tb_add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

typedef enum { STREAM_STOPPED = 0, STREAM_RUNNING, STREAM_FINISHED } stream_state_t;

/* What one probe told us about one stream. */
typedef struct {
    char probe_id[TB_PROBE_ID_MAX + 1];
    uint64_t boot_ns;
    uint64_t next_seq;      /* expected sequence number */
    uint64_t run;           /* the probe's run of the source being counted */
    uint64_t min_run;       /* runs below this are stale (before a restart) */
    uint64_t run_first_seq; /* seq of the first message seen of this run */
    uint64_t last_heard;    /* monotonic ns of the last message */
    uint64_t received;      /* packets received from this probe in this run */
    uint64_t seq_gaps;      /* messages lost (sequence gaps), saturating */
    uint64_t seq_backward;  /* messages whose sequence number went backwards */
    uint64_t restarts;      /* boot epoch changes seen */
    uint64_t lost_packets;  /* announced by end-of-stream but never received */
    int have_hb;
    tb_heartbeat_t hb; /* last heartbeat (counters) */
    int src_state;     /* tb_src_state_t from the latest heartbeat or EOS, -1 unknown */
    char detail[TB_DETAIL_MAX + 1]; /* the source's latest detail (error message) */
    int eos_seen;
    tb_eos_t eos;
} probe_track_t;

typedef struct {
    int in_use;
    char name[TB_STREAM_MAX + 1];
    uint8_t topic[TB_TOPIC_MAX];
    size_t topic_len;
    stream_state_t state;
    uint64_t started_ns; /* wall-clock time of start */
    uint64_t ended_ns;   /* wall-clock time it finished or stopped */
    tb_stats_t *stats;   /* owned */
    size_t nprobes;
    probe_track_t probes[TB_STREAM_MAX_PROBES];
    int subscribed;          /* the SUB socket holds this stream's topic */
    uint64_t run_resets;     /* statistics started over for a new run of a source */
    uint64_t stale;          /* messages of runs before a restart, ignored */
    uint64_t probes_refused; /* messages from probes beyond TB_STREAM_MAX_PROBES */
    uint64_t probes_expired; /* silent probes that never delivered, slot freed */
    uint64_t runs_ignored;   /* messages of a new run or boot after it finished */
    int results_read;        /* stats was answered since it ended */
    uint64_t bad_messages;   /* messages on this stream's topic that failed validation */
    void *sink_state[TB_COLL_MAX_SINKS]; /* each sink's state for this measurement */
    uint64_t rx_packets;                 /* packets received, never reset (rates) */
    uint64_t rate_mark_ns;               /* monotonic time of the last rate sample */
    uint64_t rate_mark_packets;          /* rx_packets then */
    double pps_now;                      /* packets per second over the last second */
    uint64_t heard;                      /* messages from probes since the measurement started */
    tb_timebase_t tbase;                 /* capture clock, outlier judge (series.h) */
    /* Restarts of the collector this measurement carried on through
     * (--state-dir): how often, and the time it went unmeasured. */
    uint64_t resumes;
    uint64_t unmeasured_ns;  /* all gaps together */
    uint64_t gap_from_ns;    /* the latest gap: wall-clock time of the snapshot */
    uint64_t gap_until_ns;   /* ... and of the restart */
} coll_stream_t;

struct tb_collector {
    tb_collector_config_t cfg;
    uint64_t started_ns;
    uint64_t started_mono;
    void *zctx;
    void *sub;
    void *ctl;              /* ROUTER: one request, one reply, answered in any order */
    coll_stream_t *streams; /* cfg.max_streams slots */
    tb_summary_t *items;    /* decode buffer, TB_WIRE_MAX_BATCH */
    tb_batchagg_t *agg;     /* a chunk of a batch, grouped by flow and host */
    uint64_t seed;
    tb_sink_t *sinks[TB_COLL_MAX_SINKS];
    size_t nsinks;
    tb_sink_t *db;         /* the database sink among sinks[], or NULL */
    uint64_t next_loss_ns; /* monotonic time of the next loss points */
    tb_dbquery_t *dbq;     /* answers db requests, or NULL */
    unsigned db_waiting;   /* db requests with dbq, not yet answered */
    /* The routing frames of the control request being handled. */
    zmq_msg_t env[TB_DBQUERY_ENVELOPE_MAX];
    size_t nenv;
    /* Bus counters. */
    uint64_t msgs;           /* well-formed messages received */
    uint64_t bad_frames;     /* messages without exactly two frames */
    uint64_t bad_bodies;     /* bodies that failed validation */
    uint64_t bad_topic;      /* topic frame did not match the body's stream */
    uint64_t unknown_stream; /* messages for streams not started (e.g. in flight at stop) */
    int last_bad_error;      /* tb_err_t of the last bad body */
    /* Control counters. */
    uint64_t ctl_received;  /* control messages */
    uint64_t ctl_malformed; /* answered as malformed */
    uint64_t ctl_dropped;   /* without an envelope: not answerable */
    uint64_t ctl_replies_dropped; /* replies to a client whose queue was full, or gone */
    tb_ratelimit_t log_rl;  /* per-message log lines: a few a second at most */
    tb_busmon_t *mon;       /* the state of each --probe and --listen endpoint */
    /* Stream discovery: what probes offer (the offer topic is always
     * subscribed). */
    tb_offers_t *offers;
    tb_wire_offer_t *offer_msg; /* decode buffer */
    /* --state-dir: the snapshot is written when streams are started, stopped
     * or forgotten, and every TB_STATE_PERIOD_NS while any runs. */
    int state_dirty;
    uint64_t next_state_ns; /* monotonic */
    uint64_t state_saves;   /* snapshots written */
    uint64_t state_failures; /* snapshots that could not be written */
    char state_error[256];   /* why the latest one failed, "" after a success */
    uint64_t restored;       /* streams brought back at start */
    /* CURVE (cfg.curve): the ZAP handler and its allow-lists, the probe ids'
     * keys, and the role of the control request being handled. */
    tb_guard_t *guard;
    tb_keybind_t *keybind;
    int ctl_act;                /* the request's key may act (or CURVE is off) */
    char ctl_key[TB_CURVE_KEY_LEN + 1 + TB_CURVE_NAME_MAX + 3]; /* "KEY (FILE)", for logs */
    uint64_t ctl_refused_act;   /* start/stop/forget refused to read-only keys */
};

/* 1 if the stream's slot may be given to a new stream: it has ended and its
 * statistics were read (stats answered after it ended) or it has none. */
int tb_coll_forgettable(const coll_stream_t *st);

/* Slots free or reusable (forgettable streams) for new streams. */
size_t tb_coll_room(const tb_collector_t *c);

/* The stream a new one would replace: NULL when a slot is free or none is
 * forgettable, else the forgettable one that ended first (borrowed). */
coll_stream_t *tb_coll_victim(tb_collector_t *c);

/* Find a started-or-stopped stream by name, or NULL. */
coll_stream_t *tb_coll_find(tb_collector_t *c, const char *name);

/* The stream's slot: found by name, or a free one, or the oldest ended
 * stream's (forgotten to make room), named and with its statistics
 * allocated; in_use, not subscribed. NULL when every slot is taken or out of
 * memory. */
coll_stream_t *tb_coll_slot(tb_collector_t *c, const char *name);

/* Carry on measuring a stream restored from a snapshot: open its sinks and
 * subscribe, keeping its statistics. 0 or TB_EIO. */
int tb_coll_resume(tb_collector_t *c, coll_stream_t *st);

/* Start (or restart) measuring a stream. Returns 0, TB_ENOMEM when every
 * slot is taken, or TB_EIO when subscribing failed. */
int tb_coll_start(tb_collector_t *c, const char *name);

/* Stop measuring a stream: unsubscribe, keep its statistics. */
void tb_coll_stop(tb_collector_t *c, coll_stream_t *st);

/* The id of a probe sending a running stream, or NULL when none is: the
 * stream is stopped or finished, no probe has sent anything for it yet, or
 * every probe that did reports its source failed. Only such a stream may be
 * forgotten. */
const char *tb_coll_sender(const coll_stream_t *st);

/* Drop a stream for good: stop it if it is still started (its sinks get
 * the final state), unsubscribe, release its sinks' state and statistics
 * and free the slot. st must not be used afterwards. */
void tb_coll_forget(tb_collector_t *c, coll_stream_t *st);

/* Loss of one probe's part of a stream, for sinks. */
void tb_coll_probe_loss(const coll_stream_t *st, const probe_track_t *pt, tb_loss_t *l);

/* Handle one control request and leave the reply in sbuf. Returns 1 when
 * the request went to the database query thread instead, with the routing
 * frames in c->env (its reply comes later), 0 when sbuf holds the reply. */
int tb_coll_control(tb_collector_t *c, const uint8_t *req, size_t len, msgpack_sbuffer *sbuf);

const char *tb_coll_state_name(stream_state_t s);

/* The state an operator sees (status, stats, gateway, database):
 *   stopped   stopped by the operator;
 *   waiting   started, nothing heard from any probe yet;
 *   running   probes are sending;
 *   finished  every probe sent its end-of-stream;
 *   error     no packet arrived and every probe that reported a state
 *             reported an error (a file that cannot be read, an interface
 *             that cannot be opened).
 * A stream with packets whose source then failed (a file cut short) stays
 * running/finished: tb_coll_stream_reason says what went wrong. */
const char *tb_coll_stream_state(const tb_collector_t *c, const coll_stream_t *st);

/* Why the stream is in its state, or "" when all is well: the error of each
 * probe whose source failed ("probe p1: ..."), or, while waiting, that no
 * probe offers the stream. */
void tb_coll_stream_reason(const tb_collector_t *c, const coll_stream_t *st, char *buf,
                           size_t size);

#endif
