/* writer — see writer.h: the queue the collector's loop fills, the thread
 * that empties it and its loop, the health report. How a batch is delivered
 * (splitting, retries, the spool) is writer_deliver.c; the state both share
 * is writer_int.h. */
#include "writer_int.h"

#include "tb_err.h"
#include "tb_log.h"
#include "tb_time.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG_COMPONENT "writer"

void tb_writer_config_defaults(tb_writer_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->db.version = 1;
    cfg->db.db = "tapbus";
    cfg->db.timeout_ms = 10000;
    cfg->db.connect_timeout_ms = 5000;
    cfg->db.gzip = 1;
    cfg->queue_bytes = 64ull << 20;
    cfg->spool_bytes = 1024ull << 20;
    cfg->backoff_min_ms = 500;
    cfg->backoff_max_ms = 30000;
    cfg->shutdown_ms = 10000;
}

/* Record an error for the health report; log it, rate-limited. */
void tb_writer_error(tb_writer_t *w, int level, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    uint64_t suppressed = 0;
    pthread_mutex_lock(&w->mu);
    snprintf(w->h.last_error, sizeof w->h.last_error, "%s", msg);
    w->h.last_error_ns = tb_time_now_ns();
    int allow = tb_ratelimit_allow(&w->log_rl, tb_time_mono_ns(), &suppressed);
    pthread_mutex_unlock(&w->mu);
    if (allow) {
        if (suppressed > 0) {
            tb_log(level, LOG_COMPONENT, "%s (%" PRIu64 " similar lines suppressed)", msg,
                   suppressed);
        } else {
            tb_log(level, LOG_COMPONENT, "%s", msg);
        }
    }
}

void tb_writer_count(tb_writer_t *w, uint64_t *counter, uint64_t n)
{
    pthread_mutex_lock(&w->mu);
    *counter += n;
    pthread_mutex_unlock(&w->mu);
}

void tb_writer_publish_spool(tb_writer_t *w)
{
    if (w->spool == NULL) {
        return;
    }
    tb_spool_info_t info;
    tb_spool_info(w->spool, &info);
    pthread_mutex_lock(&w->mu);
    w->spool_pub = info;
    pthread_mutex_unlock(&w->mu);
}

void tb_writer_set_cur(tb_writer_t *w, char *data, size_t len, uint64_t points, uint64_t created,
                       int from_spool)
{
    w->cur = (cur_t){data, len, points, created, from_spool};
    pthread_mutex_lock(&w->mu);
    w->cur_points_pub = data != NULL && !from_spool ? points : 0;
    w->cur_created_pub = data != NULL && !from_spool ? created : 0;
    pthread_mutex_unlock(&w->mu);
}

/* The shutdown deadline (monotonic ns), 0 while not stopping. */
uint64_t tb_writer_stop_deadline(tb_writer_t *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t d = w->stopping ? w->stop_deadline : 0;
    pthread_mutex_unlock(&w->mu);
    return d;
}

/* Take the next batch to deliver into cur: the spool's oldest, else the
 * queue's. Returns 1, 0 when there is none, or TB_EAGAIN to look again (the
 * spool's head could not be read now, or was unreadable and dropped). */
static int s_take(tb_writer_t *w)
{
    if (w->spool != NULL) {
        char *data;
        size_t len;
        uint64_t points, created;
        int rc = tb_spool_head(w->spool, &data, &len, &points, &created);
        if (rc == 0) {
            tb_writer_set_cur(w, data, len, points, created, 1);
            return 1;
        }
        if (rc == TB_ENOMEM) {
            struct timespec pause = {0, 100 * 1000 * 1000};
            nanosleep(&pause, NULL); /* no memory to read it now: not a busy loop */
            return TB_EAGAIN;
        }
        if (rc != TB_ENOENT) {
            tb_writer_publish_spool(w);
            return TB_EAGAIN; /* an unreadable file was dropped and counted; look again */
        }
    }
    pthread_mutex_lock(&w->mu);
    batch_t *b = w->head;
    if (b != NULL) {
        w->head = b->next;
        if (w->head == NULL) {
            w->tail = NULL;
        }
        w->qbytes -= b->len;
        w->qpoints -= b->points;
    }
    pthread_mutex_unlock(&w->mu);
    if (b == NULL) {
        return 0;
    }
    /* The batch's storage becomes cur's: move the text to the front. */
    size_t len = b->len;
    uint64_t points = b->points, created = b->created_ns;
    memmove(b, b->data, len);
    tb_writer_set_cur(w, (char *)b, len, points, created, 0);
    return 1;
}

static int s_spool_empty(const tb_writer_t *w)
{
    if (w->spool == NULL) {
        return 1;
    }
    tb_spool_info_t info;
    tb_spool_info(w->spool, &info);
    return info.batches == 0;
}

/* Whether to stop now. At a stop the writer still delivers what the queue
 * holds while the database answers (final statistics reach it), for up to
 * shutdown_ms; a replay of the spool is not finished (the spool stays). */
static int s_should_exit(tb_writer_t *w, int queued, uint64_t now, uint64_t deadline)
{
    if ((w->failing && w->final_tried) || now >= deadline) {
        return 1;
    }
    if (w->cur.data != NULL && !w->cur.from_spool) {
        return 0; /* a queued batch in flight: finish it */
    }
    if (!queued) {
        return 1;
    }
    /* The queue must come after the spool: it joins the spool instead. */
    return w->cur.from_spool || !s_spool_empty(w);
}

static void *s_thread(void *arg)
{
    tb_writer_t *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        int stopping = w->stopping;
        int queued = w->head != NULL;
        pthread_mutex_unlock(&w->mu);
        uint64_t now = tb_time_mono_ns();
        if (stopping) {
            if (s_should_exit(w, queued, now, tb_writer_stop_deadline(w))) {
                tb_writer_finish(w);
                break;
            }
        }
        /* While the database is away or the spool is being replayed, new
         * batches join the spool's end: order is kept, a restart loses
         * nothing. */
        if (w->spool != NULL && queued && (w->failing || w->cur.from_spool)) {
            tb_writer_spool_queue(w);
        }
        if (w->cur.data == NULL) {
            int got = s_take(w);
            if (got < 0) {
                continue; /* an unreadable spool file was dropped: look again */
            }
            if (got == 0) {
                pthread_mutex_lock(&w->mu);
                while (!w->stopping && w->head == NULL) {
                    pthread_cond_wait(&w->cv, &w->mu);
                }
                pthread_mutex_unlock(&w->mu);
                continue;
            }
        }
        if (stopping && w->failing) {
            w->final_tried = 1; /* one more attempt, whatever the backoff said */
        } else if (w->failing && now < w->next_try) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t until =
                (uint64_t)ts.tv_sec * TB_NS_PER_SEC + (uint64_t)ts.tv_nsec + (w->next_try - now);
            ts.tv_sec = (time_t)(until / TB_NS_PER_SEC);
            ts.tv_nsec = (long)(until % TB_NS_PER_SEC);
            pthread_mutex_lock(&w->mu);
            if (!w->stopping) {
                pthread_cond_timedwait(&w->cv, &w->mu, &ts);
            }
            pthread_mutex_unlock(&w->mu);
            continue;
        }
        tb_writer_deliver(w);
    }
    return NULL;
}

tb_writer_t *tb_writer_new(const tb_writer_config_t *cfg, char *err, size_t errsize)
{
    if (cfg->queue_bytes == 0 || cfg->backoff_min_ms == 0 ||
        cfg->backoff_max_ms < cfg->backoff_min_ms) {
        snprintf(err, errsize, "bad writer limits");
        return NULL;
    }
    tb_writer_t *w = calloc(1, sizeof *w);
    if (w == NULL) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    w->cfg = *cfg;
    w->cfg.spool_dir = NULL; /* not kept: the spool has its own copy */
    w->backoff_ms = cfg->backoff_min_ms;
    w->rng = tb_time_now_ns() | 1;
    tb_ratelimit_init(&w->log_rl, 10 * TB_NS_PER_SEC,
                      2); /* an outage: a few lines, not one per retry */
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* backoff immune to clock steps */
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    w->ix = tb_influx_new(&cfg->db, err, errsize);
    if (w->ix == NULL) {
        goto fail;
    }
    snprintf(w->h.target, sizeof w->h.target, "%s", tb_influx_describe(w->ix));
    if (cfg->spool_dir != NULL) {
        w->spool = tb_spool_open(cfg->spool_dir, cfg->spool_bytes, err, errsize);
        if (w->spool == NULL) {
            goto fail;
        }
        tb_writer_publish_spool(w);
    }
    return w;
fail:
    tb_writer_destroy(&w);
    return NULL;
}

int tb_writer_start(tb_writer_t *w, char *err, size_t errsize)
{
    if (w->thread_started) {
        snprintf(err, errsize, "the writer thread is running already");
        return TB_EINVAL;
    }
    if (pthread_create(&w->thread, NULL, s_thread, w) != 0) {
        snprintf(err, errsize, "cannot start the writer thread");
        return TB_EIO;
    }
    w->thread_started = 1;
    tb_log(TB_LOG_INFO, LOG_COMPONENT, "writing to %s%s%s", tb_influx_describe(w->ix),
           w->spool != NULL ? ", spool "
                            : " (no spool directory: an outage longer than the "
                              "queue holds loses data)",
           w->spool != NULL ? tb_spool_dir(w->spool) : "");
    return 0;
}

int tb_writer_submit(tb_writer_t *w, const char *lines, size_t len, uint64_t points)
{
    if (len == 0) {
        return 0;
    }
    batch_t *b = malloc(sizeof *b + len);
    if (b == NULL) {
        tb_writer_count(w, &w->h.dropped, points);
        return TB_ENOMEM;
    }
    b->next = NULL;
    b->created_ns = tb_time_now_ns();
    b->points = points;
    b->len = len;
    memcpy(b->data, lines, len);
    uint64_t dropped = 0;
    pthread_mutex_lock(&w->mu);
    /* Full: the oldest batches make room (the newest data is kept). */
    while (w->head != NULL && w->qbytes + len > w->cfg.queue_bytes) {
        batch_t *old = w->head;
        w->head = old->next;
        if (w->head == NULL) {
            w->tail = NULL;
        }
        w->qbytes -= old->len;
        w->qpoints -= old->points;
        dropped += old->points;
        free(old);
    }
    w->h.dropped += dropped;
    if (w->tail != NULL) {
        w->tail->next = b;
    } else {
        w->head = b;
    }
    w->tail = b;
    w->qbytes += len;
    w->qpoints += points;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (dropped > 0) {
        tb_writer_error(w, TB_LOG_ERROR, "writer queue full: dropped the oldest %" PRIu64 " points",
                        dropped);
    }
    return 0;
}

void tb_writer_health(tb_writer_t *w, tb_writer_health_t *h)
{
    pthread_mutex_lock(&w->mu);
    *h = w->h;
    h->queued_points = w->qpoints + w->cur_points_pub;
    h->queued_bytes = w->qbytes;
    h->spool_points = w->spool_pub.points;
    h->spool_bytes = w->spool_pub.bytes;
    h->spool_batches = w->spool_pub.batches;
    h->dropped += w->spool_pub.dropped;
    uint64_t oldest = w->spool_pub.oldest_ns;
    uint64_t cands[2] = {w->cur_created_pub, w->head ? w->head->created_ns : 0};
    for (int i = 0; i < 2; i++) {
        if (cands[i] != 0 && (oldest == 0 || cands[i] < oldest)) {
            oldest = cands[i];
        }
    }
    h->oldest_unsent_ns = oldest;
    pthread_mutex_unlock(&w->mu);
}

void tb_writer_destroy(tb_writer_t **p)
{
    if (p == NULL || *p == NULL) {
        return;
    }
    tb_writer_t *w = *p;
    *p = NULL;
    if (w->thread_started) {
        uint64_t deadline = tb_time_mono_ns() + (uint64_t)w->cfg.shutdown_ms * TB_NS_PER_MS;
        pthread_mutex_lock(&w->mu);
        w->stopping = 1;
        w->stop_deadline = deadline;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        /* A request in progress (a database that hangs) ends at the
         * deadline too, not at its own timeout. */
        tb_influx_deadline(w->ix, deadline);
        pthread_join(w->thread, NULL);
        tb_writer_health_t h;
        tb_writer_health(w, &h);
        tb_log(TB_LOG_INFO, LOG_COMPONENT,
               "stopped: %" PRIu64 " points written, %" PRIu64 " rejected, %" PRIu64
               " dropped, %" PRIu64 " in the spool",
               h.written, h.rejected, h.dropped, h.spool_points);
    } else if (w->qpoints > 0) {
        /* Never started: nothing was delivered; nothing goes silently. */
        tb_log(TB_LOG_ERROR, LOG_COMPONENT,
               "%" PRIu64 " points not delivered: the writer was never started", w->qpoints);
    }
    batch_t *b = w->head;
    while (b != NULL) {
        batch_t *next = b->next;
        free(b);
        b = next;
    }
    free(w->cur.data);
    tb_spool_close(&w->spool);
    tb_influx_destroy(&w->ix);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
