/* state — what a collector keeps across its restarts (--state-dir DIR).
 *
 * The snapshot (DIR/collector.state, msgpack) lists every stream the
 * operator started, stopped or that ended, with its statistics and each
 * probe's sequence position. It is written whole to a temporary file, synced
 * and renamed over the old one, so a crash at any moment leaves either the
 * old snapshot or the new one, never a mix.
 *
 * At start, streams that were running come back: live and directory streams
 * (sources that never start over) carry on with the statistics of the
 * snapshot, and the time from the snapshot to the restart is recorded as
 * not measured; file streams start a new run. Stopped and finished streams
 * come back as they were. Not thread-safe: the collector's loop owns it. */
#ifndef TB_STATE_H
#define TB_STATE_H

#include "stream.h"

#include <stddef.h>
#include <stdint.h>

#define TB_STATE_FILE      "collector.state"
#define TB_STATE_PERIOD_NS (2ull * 1000000000ull) /* snapshots while streams run */
#define TB_STATE_MAX_BYTES (1ull << 30)           /* a larger file is refused */

/* Check that dir exists and a snapshot can be written there. 0, or a
 * negative tb_err_t (TB_ENOENT, TB_EINVAL: not a directory, TB_EIO) with a
 * one-line reason. */
int tb_state_check_dir(const char *dir, char *err, size_t errsize);

/* Write the snapshot of t's streams (borrowed) into dir. 0, or a negative
 * tb_err_t (TB_ENOMEM, TB_EIO, TB_EINVAL: path too long) with a one-line
 * reason (the old snapshot stays). */
int tb_state_save(const char *dir, const tb_streams_t *t, char *err, size_t errsize);

/* The hash seed of the snapshot in dir, if there is a readable one: 0, or
 * a negative tb_err_t (TB_ENOENT: no snapshot or no seed in it; the caller
 * keeps its own). Called before anything hashes. */
int tb_state_seed(const char *dir, uint64_t *seed);

/* Read the snapshot in dir, if there is one, and bring its streams back
 * into t (after the sinks exist, before the loop runs), adding the streams
 * brought back to *restored. 0 (also without a snapshot), or a negative
 * tb_err_t with a one-line reason when the file cannot be read (TB_EIO,
 * TB_ELIMIT, TB_ENOMEM) or is not a valid snapshot (TB_EPROTO, TB_EVERSION,
 * or what the decoder found): the collector refuses to start rather than
 * forget streams. */
int tb_state_load(const char *dir, tb_streams_t *t, uint64_t *restored, char *err, size_t errsize);

#endif
