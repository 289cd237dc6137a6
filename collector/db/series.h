/* series — per-second, per-protocol-class packet and byte counts of one
 * stream, bucketed by the packets' own capture time; and the stream's time
 * base, which tells absurd capture timestamps from real ones and relates
 * capture time to the collector's clock.
 *
 * Packets may arrive a little out of order (several probes, several
 * interfaces), so a second stays open until the stream's capture clock is
 * `lateness` seconds past it; then it is closed and handed to the emit
 * callback, oldest first, exactly once. The capture clock is the newest
 * capture time seen, moved on by tb_series_advance() for sources that run in
 * real time (live, directory): their newest seconds close by the clock, not
 * only when later traffic arrives, and seconds the clock passed without
 * traffic are emitted as `lived` (zero counts). A packet older than every
 * open second is counted as late and left out of the series (it is still in
 * the stream's totals). Memory: lateness + 1 buckets, whatever the traffic.
 * Replaying last week's capture writes last week's seconds. Not
 * thread-safe. */
#ifndef TB_SERIES_H
#define TB_SERIES_H

#include "stats.h"
#include "tb_mp.h"
#include "tb_summary.h"

#include <stdint.h>

#define TB_SERIES_MAX_LATENESS 3600

typedef struct {
    uint64_t sec; /* capture time, seconds since the epoch */
    int lived;    /* the stream's clock passed this second while it ran */
    tb_counter_t proto[TB_PC_COUNT];
} tb_second_t;

/* Called with each closed second (borrowed for the call). */
typedef void (*tb_series_emit_fn)(void *arg, const tb_second_t *second);

typedef struct tb_series tb_series_t;

/* lateness_s: 0..TB_SERIES_MAX_LATENESS. NULL on bad arguments or no memory. */
tb_series_t *tb_series_new(uint32_t lateness_s, tb_series_emit_fn emit, void *arg);
void tb_series_destroy(tb_series_t **p);

/* Account one packet. Returns 1 if it was late (left out), else 0. */
int tb_series_add(tb_series_t *s, const tb_summary_t *pkt);

/* The stream's capture clock reads now_sec (a source running in real time):
 * every second from the last one the clock or a packet reached up to
 * now_sec is marked lived (emitted even without traffic), and seconds older
 * than now_sec - lateness are closed. Seconds a packet skipped (a capture
 * jumping from Monday's file to Wednesday's) are not marked. Does nothing
 * before the first packet (no time base yet). */
void tb_series_advance(tb_series_t *s, uint64_t now_sec);

/* The capture clock jumped to now_sec over time nobody measured (a live
 * stream after a pause): seconds older than now_sec - lateness close, and
 * none of the skipped seconds is marked lived. */
void tb_series_skip(tb_series_t *s, uint64_t now_sec);

/* Close and emit every open second, oldest first (end of a measurement). */
void tb_series_flush(tb_series_t *s);

/* Emit every open second, oldest first, and keep it open: its final counts
 * are emitted again when it closes (a measurement stopped that may go on). */
void tb_series_emit_open(tb_series_t *s);

/* A snapshot of the open seconds (--state-dir), one msgpack map. */
void tb_series_pack(const tb_series_t *s, msgpack_packer *pk);

/* Read a snapshot written by tb_series_pack into a series just created.
 * Seconds that do not fit a shorter lateness window are left out. Errors
 * set r->error. */
void tb_series_unpack(tb_series_t *s, tb_mp_reader_t *r);

/* Packets that arrived after their second was closed. */
uint64_t tb_series_late(const tb_series_t *s);

/* --- time base ------------------------------------------------------------
 *
 * One absurd timestamp (a record dated 2100 in a 2008 capture, or 1970) must
 * not drag a stream's series, first/last time and rates with it. A packet
 * more than TB_TS_OUTLIER_NS from the stream's capture clock is an outlier
 * unless it starts a genuine jump of the clock: the packets after it
 * continue from it (TB_TS_CONFIRM packets in all, none returning to the old
 * time). An outlier keeps its place in the totals but takes the capture
 * clock's time and is counted. The first packet becomes the base only if the
 * packets after it do not all disagree with it. Judging looks ahead within
 * a batch. A far packet at a batch's end that steps forward to a time not
 * in the future (more than TB_TS_FUTURE_NS past the collector's clock) is a
 * jump: that is how a sparse capture's packet after a long silence looks.
 * Any other far packet at a batch's end is judged by the packets before it
 * (TB_TS_CONFIRM consecutive far packets that agree make a jump). */

#define TB_TS_OUTLIER_NS (3600ull * 1000000000ull)
#define TB_TS_FUTURE_NS  (86400ull * 1000000000ull)
#define TB_TS_CONFIRM    4

typedef struct {
    int based;          /* a base was established */
    int clocked;        /* the clock runs with the collector's (live, directory) */
    uint64_t now_ts;    /* capture clock, ns: newest accepted time, moved on by ticks */
    int realtime;       /* the source's capture time is now (live capture): a pause is
                           skipped, not stood still over */
    int paused;         /* the clock stood still since its last move */
    uint64_t last_mono; /* monotonic ns the clock was last moved to (a message heard) */
    unsigned run;       /* consecutive far packets at batch ends that agree */
    uint64_t run_ts;    /* the latest of them */
    uint64_t outliers;  /* packets judged outliers */
} tb_timebase_t;

/* Start without a base. */
void tb_timebase_init(tb_timebase_t *tb);

/* Judge a batch: outliers get TB_SUM_TS_OUTLIER and the capture clock's
 * time, every other packet has the flag cleared. Returns the outliers. */
size_t tb_timebase_judge(tb_timebase_t *tb, tb_summary_t *items, size_t n);

/* One tick of the collector's clock. heard_mono is the monotonic time of
 * the newest message from the stream's probes: while `running`, a clocked
 * base's capture clock advances with it, never past what was heard (a probe
 * that died moves it no further). Otherwise it stands still (a stopped
 * stream, a probe not heard from). When the stream runs again after such a
 * pause, a `realtime` clock (live capture) jumps over the pause and sets
 * *skipped (that time was not measured: not lived); any other stands where
 * it was (a directory's backlog goes on where it stopped). Returns the
 * capture clock (ns), 0 before a base exists. */
uint64_t tb_timebase_tick(tb_timebase_t *tb, uint64_t heard_mono, int running, int *skipped);

#endif
