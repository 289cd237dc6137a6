/* collector_int — the collector's context, shared by its loop
 * (collector.c), its control socket (control.c) and the replies packed from
 * its state (report.c). The streams and each probe's loss accounting are
 * modules of their own (stream.h, track.h) that know nothing of this
 * struct. Not a public interface; the loop's thread owns all of it. */
#ifndef TB_COLLECTOR_INT_H
#define TB_COLLECTOR_INT_H

#include "assist.h"
#include "busmon.h"
#include "collector.h"
#include "dbquery.h"
#include "guard.h"
#include "keybind.h"
#include "offers.h"
#include "ratelog.h"
#include "sink.h"
#include "stream.h"
#include "tb_wire.h"

#include <msgpack.h>
#include <stdint.h>

#define TB_COLL_DB_WAITING    4    /* db requests with the query thread at once */
#define TB_COLL_OFFER_PROBES  64   /* probes whose offers are kept */
#define TB_COLL_OFFER_STREAMS 1024 /* offered streams kept, all probes together */
#define TB_COLL_CTL_SNDHWM    8    /* replies queued for one control client */
#define TB_COLL_CTL_RCVHWM    16   /* requests queued from one control client */

struct tb_collector {
    tb_collector_config_t cfg;
    int start_called; /* tb_collector_start was called (once only) */
    int started;      /* ... and succeeded: the loop may run */
    uint64_t started_ns;
    uint64_t started_mono;
    void *zctx;
    void *sub;
    void *ctl;             /* ROUTER: one request, one reply, answered in any order */
    tb_streams_t *streams; /* the streams measured, with the sinks */
    tb_summary_t *items;   /* decode buffer, TB_WIRE_MAX_BATCH */
    tb_sink_t *db;         /* the database sink among the streams' sinks (borrowed), or NULL */
    uint64_t next_loss_ns; /* monotonic time of the next loss points */
    tb_dbquery_t *dbq;     /* answers db requests, or NULL */
    tb_assist_t *assist;   /* counts beside the loop (--threads 2), or NULL */
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
    uint64_t ctl_received;        /* control messages */
    uint64_t ctl_malformed;       /* answered as malformed */
    uint64_t ctl_dropped;         /* without an envelope: not answerable */
    uint64_t ctl_replies_dropped; /* replies to a client whose queue was full, or gone */
    tb_ratelog_t log;             /* per-message log lines: a few a second at most */
    tb_busmon_t *mon;             /* the state of each --probe and --listen endpoint */
    /* Stream discovery: what probes offer (the offer topic is always
     * subscribed). */
    tb_offers_t *offers;
    tb_wire_offer_t *offer_msg; /* decode buffer */
    /* --state-dir: the snapshot is written when streams are started, stopped
     * or forgotten (streams->dirty), and every TB_STATE_PERIOD_NS while any
     * runs. */
    uint64_t next_state_ns;  /* monotonic */
    uint64_t state_saves;    /* snapshots written */
    uint64_t state_failures; /* snapshots that could not be written */
    char state_error[256];   /* why the latest one failed, "" after a success */
    uint64_t restored;       /* streams brought back at start */
    /* CURVE (cfg.curve): the ZAP handler and its allow-lists, the probe ids'
     * keys, and the role of the control request being handled. */
    tb_guard_t *guard;
    tb_keybind_t *keybind;
    int ctl_act; /* the request's key may act (or CURVE is off) */
    char ctl_key[TB_CURVE_KEY_LEN + 1 + TB_CURVE_NAME_MAX + 3]; /* "KEY (FILE)", for logs */
    uint64_t ctl_refused_act; /* start/stop/forget refused to read-only keys */
};

#endif
