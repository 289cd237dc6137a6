/* writer — the database writer thread.
 *
 * The collector's loop hands over finished batches of line protocol
 * (tb_writer_submit copies them into a bounded in-memory queue and never
 * waits); the writer thread sends them to InfluxDB in order:
 *
 *   - a network error, timeout, 408, 429 or 5xx is retried with exponential
 *     backoff and jitter, honouring Retry-After;
 *   - 413 splits the batch in halves (down to single lines);
 *   - 400/422 splits too, so only the lines InfluxDB refuses are rejected
 *     (counted and logged, never retried); rewriting accepted points is
 *     harmless, InfluxDB keeps one point per series and timestamp;
 *   - 401, 403, 404 and other refusals keep the data and report the problem
 *     (an operator must fix credentials or the database), retried slowly.
 *
 * While the database cannot take data, batches move to the on-disk spool
 * (when configured) and are replayed oldest first when it returns, also
 * after a restart; the spool is bounded and drops its oldest data, counted,
 * when full. Without a spool the queue holds what it can and drops the
 * oldest batch, counted, when full. Nothing is dropped silently. */
#ifndef TB_WRITER_H
#define TB_WRITER_H

#include "influx.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    tb_influx_config_t db;
    uint64_t queue_bytes;    /* in-memory queue limit */
    const char *spool_dir;   /* NULL: no spool */
    uint64_t spool_bytes;    /* on-disk limit */
    uint32_t backoff_min_ms; /* first retry delay */
    uint32_t backoff_max_ms; /* longest retry delay */
    uint32_t shutdown_ms;    /* at exit, time allowed to deliver what is queued */
} tb_writer_config_t;

typedef struct {
    char target[512]; /* the database, no secrets */
    int connected;    /* the last request was answered with success */
    uint64_t queued_points;
    uint64_t queued_bytes;
    uint64_t spool_points;
    uint64_t spool_bytes;
    uint64_t spool_batches;
    uint64_t oldest_unsent_ns; /* creation time of the oldest unsent batch, 0 if none */
    uint64_t written;          /* points the database accepted */
    uint64_t retried;          /* points of requests that had to be retried */
    uint64_t rejected;         /* points refused as bad data (400/422) */
    uint64_t dropped;          /* points dropped: queue or spool full, unreadable spool */
    uint64_t requests;         /* write requests sent */
    uint64_t failures;         /* requests that failed */
    uint64_t last_error_ns;    /* wall time of the last error, 0 if none */
    char last_error[256];
} tb_writer_health_t;

typedef struct tb_writer tb_writer_t;

void tb_writer_config_defaults(tb_writer_config_t *cfg);

/* Create the writer: check the configuration, make its database client,
 * open the spool (and index what a previous run left there). No thread runs
 * yet: batches submitted wait in the queue until tb_writer_start. NULL with a
 * one-line reason in err on failure (bad configuration, spool directory
 * unusable). cfg is copied; its strings are copied by the parts that keep
 * them. */
tb_writer_t *tb_writer_new(const tb_writer_config_t *cfg, char *err, size_t errsize);

/* Start the thread that delivers what is queued. Returns 0, or TB_EIO (the
 * thread could not be created) or TB_EINVAL (started already) with a
 * one-line reason in err. A writer never started delivers nothing: its
 * destroy says how many points that left behind. */
int tb_writer_start(tb_writer_t *w, char *err, size_t errsize);

/* Queue a batch of complete lines (copied). Never blocks on the database.
 * Returns 0, or TB_ENOMEM when the batch could not be queued (counted as
 * dropped). When the queue is full its oldest batch is dropped (counted). */
int tb_writer_submit(tb_writer_t *w, const char *lines, size_t len, uint64_t points);

void tb_writer_health(tb_writer_t *w, tb_writer_health_t *h);

/* Deliver what is queued (for up to shutdown_ms; the rest goes to the spool,
 * or is counted dropped and logged without one), stop the thread, free. */
void tb_writer_destroy(tb_writer_t **p);

#endif
