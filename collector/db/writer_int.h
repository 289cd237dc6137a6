/* writer_int — the writer's state and what its two halves share: writer.c
 * (the queue the collector's loop fills, the thread and its loop, health)
 * and writer_deliver.c (delivering a batch: splitting, retrying with
 * backoff, the spool while the database is away, what is left at a stop).
 * Internal to the writer.
 *
 * Shared between the collector's loop and the writer thread, under `mu`: the
 * queue (a list of batches), the stop flag and the health counters. The
 * writer thread alone owns the InfluxDB client, the spool and the batch in
 * flight (`cur`); it copies what the health report needs into `pub` under
 * the lock whenever that changes. */
#ifndef TB_WRITER_INT_H
#define TB_WRITER_INT_H

#include "spool.h"
#include "tb_log.h"
#include "writer.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct batch {
    struct batch *next;
    uint64_t created_ns;
    uint64_t points;
    size_t len;
    char data[];
} batch_t;

/* The batch being delivered. */
typedef struct {
    char *data; /* malloc'ed; NULL when there is none */
    size_t len;
    uint64_t points;
    uint64_t created_ns;
    int from_spool; /* it is also the spool's head */
} cur_t;

struct tb_writer {
    tb_writer_config_t cfg;
    tb_influx_t *ix;
    tb_spool_t *spool;
    pthread_t thread;
    int thread_started;

    pthread_mutex_t mu;
    pthread_cond_t cv; /* work queued or stop requested */
    batch_t *head, *tail;
    uint64_t qbytes, qpoints;
    int stopping;
    uint64_t stop_deadline; /* monotonic ns by which the thread ends; set with stopping */
    tb_writer_health_t h;   /* counters; queue and spool fields filled on read */
    tb_spool_info_t spool_pub;
    uint64_t cur_points_pub, cur_created_pub; /* batch in flight (from the queue) */

    /* Writer thread only. */
    cur_t cur;
    int failing;
    uint32_t backoff_ms;
    uint64_t next_try; /* monotonic ns */
    uint64_t fail_since;
    int final_tried;  /* at a stop: the one attempt made despite a failure */
    int stopping_now; /* tb_writer_finish: the spool's last chance */
    uint64_t rng;
    tb_ratelimit_t log_rl;
};

/* Record an error for the health report; log it, rate-limited. Any thread. */
void tb_writer_error(tb_writer_t *w, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Add n to a health counter, under the lock. Any thread. */
void tb_writer_count(tb_writer_t *w, uint64_t *counter, uint64_t n);

/* The writer thread only, from here on. */

/* Copy the spool's figures to where tb_writer_health reads them. */
void tb_writer_publish_spool(tb_writer_t *w);

/* Make cur the batch in flight (data: malloc'ed, owned by cur; NULL for
 * none) and publish what the health report needs of it. */
void tb_writer_set_cur(tb_writer_t *w, char *data, size_t len, uint64_t points, uint64_t created,
                       int from_spool);

/* The shutdown deadline (monotonic ns), 0 while not stopping. */
uint64_t tb_writer_stop_deadline(tb_writer_t *w);

/* Deliver cur once (writer_deliver.c): what is settled (written, or
 * rejected as bad data) goes; on a failure the rest stays in cur, or in the
 * spool, and the next attempt is scheduled with backoff. */
void tb_writer_deliver(tb_writer_t *w);

/* Move the queue into the spool, oldest first; what the spool cannot take
 * stays queued, in order. */
void tb_writer_spool_queue(tb_writer_t *w);

/* At exit: whatever was not delivered goes to the spool or is counted as
 * dropped and logged. */
void tb_writer_finish(tb_writer_t *w);

#endif
