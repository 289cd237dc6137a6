/* writer — see writer.h.
 *
 * Shared between the collector's loop and the writer thread, under `mu`: the
 * queue (a list of batches), the stop flag and the health counters. The
 * writer thread alone owns the InfluxDB client, the spool and the batch in
 * flight (`cur`); it copies what the health report needs into `pub` under
 * the lock whenever that changes. */
#include "writer.h"

#include "spool.h"
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
    int stopping_now; /* s_finish: the spool's last chance */
    uint64_t rng;
    tb_ratelimit_t log_rl;
};

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

static uint64_t s_lines(const char *data, size_t len)
{
    uint64_t n = 0;
    for (const char *p = data; (p = memchr(p, '\n', (size_t)(data + len - p))) != NULL; p++) {
        n++;
    }
    return n;
}

/* Record an error for the health report; log it, rate-limited. */
static void s_error(tb_writer_t *w, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void s_error(tb_writer_t *w, int level, const char *fmt, ...)
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

static void s_count(tb_writer_t *w, uint64_t *counter, uint64_t n)
{
    pthread_mutex_lock(&w->mu);
    *counter += n;
    pthread_mutex_unlock(&w->mu);
}

static void s_publish_spool(tb_writer_t *w)
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

static void s_set_cur(tb_writer_t *w, char *data, size_t len, uint64_t points, uint64_t created,
                      int from_spool)
{
    w->cur = (cur_t){data, len, points, created, from_spool};
    pthread_mutex_lock(&w->mu);
    w->cur_points_pub = data != NULL && !from_spool ? points : 0;
    w->cur_created_pub = data != NULL && !from_spool ? created : 0;
    pthread_mutex_unlock(&w->mu);
}

static void s_clear_cur(tb_writer_t *w)
{
    free(w->cur.data);
    s_set_cur(w, NULL, 0, 0, 0, 0);
}

/* s_send_range's outcome when the shutdown deadline came before a request:
 * nothing was sent, nothing counted as a failure. */
#define S_STOPPED (-1)

/* The shutdown deadline (monotonic ns), 0 while not stopping. */
static uint64_t s_stop_deadline(tb_writer_t *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t d = w->stopping ? w->stop_deadline : 0;
    pthread_mutex_unlock(&w->mu);
    return d;
}

/* Send data[0..len) (complete lines), splitting on 413 and, to isolate bad
 * lines, on 400/422. Returns TB_IFX_OK when every line was written or
 * rejected, else the outcome that stopped it (S_STOPPED: the shutdown
 * deadline passed), with *done the bytes at the front that are settled. */
static int s_send_range(tb_writer_t *w, const char *data, size_t len, size_t *done)
{
    uint64_t points = s_lines(data, len);
    tb_ifx_result_t res;
    /* Why check here: isolating bad lines of a batch the database refuses
     * as a whole takes up to two requests per line, thousands for a large
     * batch. A stop must not wait for all of them: past the deadline the
     * rest is kept (spool) or counted, like any batch not delivered. */
    uint64_t deadline = s_stop_deadline(w);
    *done = 0;
    if (deadline != 0 && tb_time_mono_ns() >= deadline) {
        return S_STOPPED;
    }
    int o = tb_influx_write(w->ix, data, len, &res);
    s_count(w, &w->h.requests, 1);
    if (o == TB_IFX_OK) {
        s_count(w, &w->h.written, points);
        *done = len;
        return o;
    }
    if (o == TB_IFX_PARTIAL) {
        uint64_t refused = res.dropped < points ? res.dropped : points;
        s_count(w, &w->h.written, points - refused);
        s_count(w, &w->h.rejected, refused);
        s_error(w, TB_LOG_WARN, "database stored a batch but refused %" PRIu64 " point(s): %s",
                refused, res.error);
        *done = len;
        return TB_IFX_OK;
    }
    if (o == TB_IFX_REJECTED || o == TB_IFX_TOO_LARGE) {
        if (points <= 1) {
            if (o == TB_IFX_REJECTED) {
                s_count(w, &w->h.rejected, points);
                int shown = len > 120 ? 120 : (int)len;
                while (shown > 0 && data[shown - 1] == '\n') {
                    shown--;
                }
                s_error(w, TB_LOG_WARN, "database refused a point: %s; line: %.*s", res.error,
                        shown, data);
            } else {
                s_count(w, &w->h.dropped, points);
                s_error(w, TB_LOG_ERROR, "a single point is too large for the database: %s",
                        res.error);
            }
            *done = len;
            return TB_IFX_OK;
        }
        /* Halves at a line boundary. */
        const char *mid = data + len / 2;
        const char *nl = memchr(mid, '\n', (size_t)(data + len - mid));
        size_t cut = nl != NULL && (size_t)(nl - data) + 1 < len ? (size_t)(nl - data) + 1 : 0;
        if (cut == 0) {
            const char *p = mid;
            while (p > data && p[-1] != '\n') {
                p--;
            }
            cut = (size_t)(p - data);
        }
        size_t d1 = 0, d2 = 0;
        int o1 = s_send_range(w, data, cut, &d1);
        if (o1 != TB_IFX_OK) {
            *done = d1;
            return o1;
        }
        int o2 = s_send_range(w, data + cut, len - cut, &d2);
        *done = cut + d2;
        return o2;
    }
    s_count(w, &w->h.failures, 1);
    s_count(w, &w->h.retried, points);
    if (o == TB_IFX_HOLD) {
        s_error(w, TB_LOG_ERROR, "database refused the write, data kept: %s", res.error);
    } else {
        s_error(w, TB_LOG_WARN, "database unavailable, data kept: %s", res.error);
    }
    /* Retry-After wins over our own schedule when it asks for longer. */
    uint64_t delay = w->backoff_ms;
    delay = delay / 2 +
            (w->rng = w->rng * 6364136223846793005ull + 1442695040888963407ull) % (delay / 2 + 1);
    if ((uint64_t)res.retry_after_ms > delay) {
        delay = (uint64_t)res.retry_after_ms;
    }
    w->next_try = tb_time_mono_ns() + delay * TB_NS_PER_MS;
    w->backoff_ms =
        w->backoff_ms * 2 > w->cfg.backoff_max_ms ? w->cfg.backoff_max_ms : w->backoff_ms * 2;
    return o;
}

/* Take the whole queue (oldest first); *points (if given) receives its points. */
static batch_t *s_detach_queue(tb_writer_t *w, uint64_t *points)
{
    pthread_mutex_lock(&w->mu);
    batch_t *b = w->head;
    if (points != NULL) {
        *points = w->qpoints;
    }
    w->head = w->tail = NULL;
    w->qbytes = w->qpoints = 0;
    pthread_mutex_unlock(&w->mu);
    return b;
}

/* Move the queue into the spool, oldest first. */
static void s_spool_queue(tb_writer_t *w)
{
    batch_t *b = s_detach_queue(w, NULL);
    while (b != NULL) {
        batch_t *next = b->next;
        if (tb_spool_push(w->spool, b->data, b->len, b->points, b->created_ns) != 0) {
            /* The spool cannot take it: the rest waits in memory, in order,
             * within the queue's limit, and spooling is tried again later. */
            s_error(w, TB_LOG_ERROR, "cannot spool: batches stay in memory");
            pthread_mutex_lock(&w->mu);
            batch_t *last = b;
            uint64_t bytes = 0, points = 0;
            for (batch_t *x = b; x != NULL; x = x->next) {
                bytes += x->len;
                points += x->points;
                last = x;
            }
            last->next = w->head;
            if (w->head == NULL) {
                w->tail = last;
            }
            w->head = b;
            w->qbytes += bytes;
            w->qpoints += points;
            pthread_mutex_unlock(&w->mu);
            break;
        }
        free(b);
        b = next;
    }
    s_publish_spool(w);
}

/* Keep the batch in flight: into the spool, or count it lost. */
static void s_keep_cur(tb_writer_t *w)
{
    if (w->cur.data == NULL || w->cur.from_spool) {
        return;
    }
    if (w->spool != NULL &&
        tb_spool_push(w->spool, w->cur.data, w->cur.len, w->cur.points, w->cur.created_ns) == 0) {
        s_publish_spool(w);
    } else if (w->spool != NULL && !w->stopping_now) {
        return; /* the spool cannot take it now: it stays in memory, retried */
    } else {
        s_count(w, &w->h.dropped, w->cur.points);
        s_error(w, TB_LOG_ERROR, "%" PRIu64 " points could not be delivered nor kept",
                w->cur.points);
    }
    s_clear_cur(w);
}

/* Take the next batch to deliver into cur: the spool's oldest, else the
 * queue's. Returns 1, 0 when there is none, or -1 to look again. */
static int s_take(tb_writer_t *w)
{
    if (w->spool != NULL) {
        char *data;
        size_t len;
        uint64_t points, created;
        int rc = tb_spool_head(w->spool, &data, &len, &points, &created);
        if (rc == 0) {
            s_set_cur(w, data, len, points, created, 1);
            return 1;
        }
        if (rc == TB_ENOMEM) {
            struct timespec pause = {0, 100 * 1000 * 1000};
            nanosleep(&pause, NULL); /* no memory to read it now: not a busy loop */
            return -1;
        }
        if (rc != TB_ENOENT) {
            s_publish_spool(w);
            return -1; /* an unreadable file was dropped and counted; look again */
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
    s_set_cur(w, (char *)b, len, points, created, 0);
    return 1;
}

/* Keep only what is not settled of cur: its first `done` bytes were written
 * or rejected. */
static void s_drop_settled(tb_writer_t *w, size_t done)
{
    if (done == 0) {
        return;
    }
    size_t rest = w->cur.len - done;
    memmove(w->cur.data, w->cur.data + done, rest);
    w->cur.len = rest;
    w->cur.points = s_lines(w->cur.data, rest);
    if (w->cur.from_spool) {
        tb_spool_trim_head(w->spool, w->cur.data, rest, w->cur.points);
        s_publish_spool(w);
    }
    s_set_cur(w, w->cur.data, w->cur.len, w->cur.points, w->cur.created_ns, w->cur.from_spool);
}

/* Deliver cur once. */
static void s_deliver(tb_writer_t *w)
{
    size_t done = 0;
    int o = s_send_range(w, w->cur.data, w->cur.len, &done);
    if (o == S_STOPPED) {
        /* Keep the unsettled rest for s_finish; the database is not at fault. */
        s_drop_settled(w, done);
        return;
    }
    if (o == TB_IFX_OK) {
        if (w->failing) {
            tb_log(TB_LOG_INFO, LOG_COMPONENT, "database is back after %.1f s",
                   (double)(tb_time_mono_ns() - w->fail_since) / 1e9);
        }
        w->failing = 0;
        w->backoff_ms = w->cfg.backoff_min_ms;
        pthread_mutex_lock(&w->mu);
        w->h.connected = 1;
        pthread_mutex_unlock(&w->mu);
        if (w->cur.from_spool) {
            tb_spool_pop(w->spool);
            s_publish_spool(w);
        }
        s_clear_cur(w);
        return;
    }
    if (!w->failing) {
        w->failing = 1;
        w->fail_since = tb_time_mono_ns();
    }
    pthread_mutex_lock(&w->mu);
    w->h.connected = 0;
    pthread_mutex_unlock(&w->mu);
    s_drop_settled(w, done);
    /* A spool keeps it safe across a restart while we wait. */
    if (w->spool != NULL) {
        s_keep_cur(w);
    }
}

/* At exit: whatever was not delivered goes to the spool or is counted. */
static void s_finish(tb_writer_t *w)
{
    w->stopping_now = 1;
    s_keep_cur(w);
    if (w->cur.data != NULL) {
        tb_spool_unpin(w->spool);
        s_clear_cur(w); /* the spool's head: it stays on disk */
    }
    if (w->spool != NULL) {
        s_spool_queue(w);
        tb_spool_info_t info;
        tb_spool_info(w->spool, &info);
        if (info.points > 0) {
            tb_log(TB_LOG_INFO, LOG_COMPONENT,
                   "%" PRIu64 " points kept in the spool for the next start", info.points);
        }
    }
    /* What neither the database nor the spool took is lost: say so. */
    uint64_t lost;
    batch_t *b = s_detach_queue(w, &lost);
    s_count(w, &w->h.dropped, lost);
    while (b != NULL) {
        batch_t *next = b->next;
        free(b);
        b = next;
    }
    if (lost > 0) {
        tb_log(TB_LOG_ERROR, LOG_COMPONENT, "%" PRIu64 " points not delivered at exit (%s)", lost,
               w->spool != NULL ? "the spool could not take them"
                                : "no spool directory configured");
    }
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
            if (s_should_exit(w, queued, now, s_stop_deadline(w))) {
                s_finish(w);
                break;
            }
        }
        /* While the database is away or the spool is being replayed, new
         * batches join the spool's end: order is kept, a restart loses
         * nothing. */
        if (w->spool != NULL && queued && (w->failing || w->cur.from_spool)) {
            s_spool_queue(w);
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
        s_deliver(w);
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
        s_publish_spool(w);
    }
    if (pthread_create(&w->thread, NULL, s_thread, w) != 0) {
        snprintf(err, errsize, "cannot start the writer thread");
        goto fail;
    }
    w->thread_started = 1;
    tb_log(TB_LOG_INFO, LOG_COMPONENT, "writing to %s%s%s", tb_influx_describe(w->ix),
           cfg->spool_dir ? ", spool "
                          : " (no spool directory: an outage longer than the "
                            "queue holds loses data)",
           cfg->spool_dir ? cfg->spool_dir : "");
    return w;
fail:
    tb_writer_destroy(&w);
    return NULL;
}

int tb_writer_submit(tb_writer_t *w, const char *lines, size_t len, uint64_t points)
{
    if (len == 0) {
        return 0;
    }
    batch_t *b = malloc(sizeof *b + len);
    if (b == NULL) {
        s_count(w, &w->h.dropped, points);
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
        s_error(w, TB_LOG_ERROR, "writer queue full: dropped the oldest %" PRIu64 " points",
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
