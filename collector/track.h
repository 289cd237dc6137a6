/* track — what the collector knows of one probe's part of one stream: where
 * the probe is in its message sequence (boot, run of its source, next
 * sequence number), what its latest heartbeat and end-of-stream said, and
 * the loss counted from them: sequence gaps, restarts, packets announced at
 * the end but never received.
 *
 * Plain data, kept in the stream's slot (stream.h: up to
 * TB_STREAM_MAX_PROBES per stream); the functions here only compute on it
 * and never log, so the stream decides what to say. Everything counted from
 * what peers send saturates instead of wrapping. Not thread-safe: the
 * collector's loop owns it. */
#ifndef TB_TRACK_H
#define TB_TRACK_H

#include "sink.h"
#include "tb_mp.h"
#include "tb_time.h"
#include "tb_wire.h"

#include <stddef.h>
#include <stdint.h>

/* A probe of a stream silent this long: it no longer keeps the stream from
 * finishing, and if it never delivered anything it leaves its slot (a
 * made-up probe id cannot hold one for ever). Probes send a heartbeat every
 * second. */
#define TB_TRACK_EXPIRE_NS (10 * TB_NS_PER_SEC)

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
} tb_track_t;

/* Loss of a stream summed over its probes (status and stats replies). */
typedef struct {
    uint64_t seq_gaps, seq_backward, lost_packets, restarts, capture_drops, bus_drops;
    uint64_t decode_errors, files_skipped, frames_lost, frames_bad;
} tb_track_totals_t;

/* Where a message puts its probe (tb_track_follow). */
typedef enum {
    TB_TRACK_SAME_RUN = 0, /* the run being counted goes on */
    TB_TRACK_NEW_RUN,      /* a new run of the source, or the one the stream asked for */
    TB_TRACK_RESTARTED,    /* the probe restarted (another boot time): a new run too */
    TB_TRACK_STALE,        /* of a run from before the stream was started again: ignore */
} tb_track_step_t;

/* The track of probe_id among tracks[0..n), or NULL (borrowed). */
const tb_track_t *tb_track_find(const tb_track_t *tracks, size_t n, const char *probe_id);

/* The track of h's probe among tracks[0..*n); a new one, positioned at h's
 * message, when there is none and *n < max (*n grows). NULL when the table
 * is full. */
tb_track_t *tb_track_add(tb_track_t *tracks, size_t *n, size_t max, const tb_wire_header_t *h);

/* Follow the probe to h's message: a new boot time counts a restart; a
 * message of a run below min_run is stale; otherwise the sequence number
 * is checked, a jump ahead counting the messages skipped (*gap, saturating)
 * and one going back (*backward = 1: a duplicate, or somebody else using
 * the probe's id) counted but never a gap. *gap and *backward are set only
 * when that happened. The caller starts a new run (tb_track_begin_run) for
 * TB_TRACK_NEW_RUN and TB_TRACK_RESTARTED. */
tb_track_step_t tb_track_follow(tb_track_t *pt, const tb_wire_header_t *h, uint64_t *gap,
                                int *backward);

/* The probe began h's run of its source. Returns 1 when the stream holds
 * data of an earlier run from this probe and its statistics must start over
 * (run 0, a source that never starts over, continues: 0). */
int tb_track_begin_run(tb_track_t *pt, const tb_wire_header_t *h);

/* A heartbeat (borrowed): its counters, the source's state and detail. */
void tb_track_heartbeat(tb_track_t *pt, const tb_heartbeat_t *hb);

/* An end-of-stream (borrowed). The packets it announces beyond those
 * received are lost, if the run was followed from its first message (a
 * collector that joined later simply missed what came before). */
void tb_track_eos(tb_track_t *pt, const tb_eos_t *eos);

/* The stream is started again: the collector leaves and rejoins its topic,
 * so a finite source starts a new run (runs up to the current one are
 * stale), and what the source said and what was lost belong to the
 * measurement before. */
void tb_track_rejoin(tb_track_t *pt);

/* 1 when the probe has been heard and not for TB_TRACK_EXPIRE_NS. */
int tb_track_silent(const tb_track_t *pt, uint64_t now);

/* 1 when the probe is silent and never gave the measurement anything (no
 * packets, no end, no loss): its slot may go. */
int tb_track_expirable(const tb_track_t *pt, uint64_t now);

/* 1 when at least one probe ended the stream and every other has ended too
 * or has gone silent. */
int tb_track_all_ended(const tb_track_t *tracks, size_t n, uint64_t now);

/* Packets the capture dropped (kernel and interface), by the latest
 * heartbeat; 0 before the first one. */
uint64_t tb_track_capture_drops(const tb_track_t *pt);

/* The probe's loss for sinks (l->probe borrows pt's id); unmeasured_ns is
 * the stream's time not measured across collector restarts. */
void tb_track_loss(const tb_track_t *pt, uint64_t unmeasured_ns, tb_loss_t *l);

/* Loss summed over tracks[0..n). */
void tb_track_totals(const tb_track_t *tracks, size_t n, tb_track_totals_t *t);

/* A snapshot of the track (--state-dir): one msgpack map of the probe's id,
 * position and loss (not its heartbeat: the next one comes within a
 * second). */
void tb_track_pack(const tb_track_t *pt, msgpack_packer *pk);

/* Read back what tb_track_pack wrote into pt (cleared first; source state
 * unknown until the probe's next heartbeat). Keys not known are skipped;
 * anything malformed sets r->error. */
void tb_track_unpack(tb_track_t *pt, tb_mp_reader_t *r);

#endif
