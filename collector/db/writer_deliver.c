/* writer_deliver — delivering the writer's batches (see writer.h for the
 * policy, writer_int.h for the state): a batch is sent whole, split in halves
 * on 413 and to isolate the lines the database refuses (400/422), retried
 * with backoff on a failure; while the database is away the queue spills to
 * the spool, and at a stop what was not delivered is kept there or counted.
 * The writer thread only. */
#include "writer_int.h"

#include "tb_err.h"
#include "tb_log.h"
#include "tb_time.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define LOG_COMPONENT "writer"

static uint64_t s_lines(const char *data, size_t len)
{
    uint64_t n = 0;
    for (const char *p = data; (p = memchr(p, '\n', (size_t)(data + len - p))) != NULL; p++) {
        n++;
    }
    return n;
}

static void s_clear_cur(tb_writer_t *w)
{
    free(w->cur.data);
    tb_writer_set_cur(w, NULL, 0, 0, 0, 0);
}

/* s_send_range's result when the shutdown deadline came before a request:
 * nothing was sent, nothing counted as a failure. A tb_err_t, so it cannot
 * be taken for a tb_ifx_outcome_t (those are 0 or more). */
#define S_STOPPED TB_ETIMEDOUT

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
    uint64_t deadline = tb_writer_stop_deadline(w);
    *done = 0;
    if (deadline != 0 && tb_time_mono_ns() >= deadline) {
        return S_STOPPED;
    }
    int o = tb_influx_write(w->ix, data, len, &res);
    tb_writer_count(w, &w->h.requests, 1);
    if (o == TB_IFX_OK) {
        tb_writer_count(w, &w->h.written, points);
        *done = len;
        return o;
    }
    if (o == TB_IFX_PARTIAL) {
        uint64_t refused = res.dropped < points ? res.dropped : points;
        tb_writer_count(w, &w->h.written, points - refused);
        tb_writer_count(w, &w->h.rejected, refused);
        tb_writer_error(w, TB_LOG_WARN,
                        "database stored a batch but refused %" PRIu64 " point(s): %s", refused,
                        res.error);
        *done = len;
        return TB_IFX_OK;
    }
    if (o == TB_IFX_REJECTED || o == TB_IFX_TOO_LARGE) {
        if (points <= 1) {
            if (o == TB_IFX_REJECTED) {
                tb_writer_count(w, &w->h.rejected, points);
                int shown = len > 120 ? 120 : (int)len;
                while (shown > 0 && data[shown - 1] == '\n') {
                    shown--;
                }
                tb_writer_error(w, TB_LOG_WARN, "database refused a point: %s; line: %.*s",
                                res.error, shown, data);
            } else {
                tb_writer_count(w, &w->h.dropped, points);
                tb_writer_error(w, TB_LOG_ERROR, "a single point is too large for the database: %s",
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
    tb_writer_count(w, &w->h.failures, 1);
    tb_writer_count(w, &w->h.retried, points);
    if (o == TB_IFX_HOLD) {
        tb_writer_error(w, TB_LOG_ERROR, "database refused the write, data kept: %s", res.error);
    } else {
        tb_writer_error(w, TB_LOG_WARN, "database unavailable, data kept: %s", res.error);
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
void tb_writer_spool_queue(tb_writer_t *w)
{
    batch_t *b = s_detach_queue(w, NULL);
    while (b != NULL) {
        batch_t *next = b->next;
        if (tb_spool_push(w->spool, b->data, b->len, b->points, b->created_ns) != 0) {
            /* The spool cannot take it: the rest waits in memory, in order,
             * within the queue's limit, and spooling is tried again later. */
            tb_writer_error(w, TB_LOG_ERROR, "cannot spool: batches stay in memory");
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
    tb_writer_publish_spool(w);
}

/* Keep the batch in flight: into the spool, or count it lost. */
static void s_keep_cur(tb_writer_t *w)
{
    if (w->cur.data == NULL || w->cur.from_spool) {
        return;
    }
    if (w->spool != NULL &&
        tb_spool_push(w->spool, w->cur.data, w->cur.len, w->cur.points, w->cur.created_ns) == 0) {
        tb_writer_publish_spool(w);
    } else if (w->spool != NULL && !w->stopping_now) {
        return; /* the spool cannot take it now: it stays in memory, retried */
    } else {
        tb_writer_count(w, &w->h.dropped, w->cur.points);
        tb_writer_error(w, TB_LOG_ERROR, "%" PRIu64 " points could not be delivered nor kept",
                        w->cur.points);
    }
    s_clear_cur(w);
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
        tb_writer_publish_spool(w);
    }
    tb_writer_set_cur(w, w->cur.data, w->cur.len, w->cur.points, w->cur.created_ns,
                      w->cur.from_spool);
}

/* Deliver cur once. */
void tb_writer_deliver(tb_writer_t *w)
{
    size_t done = 0;
    int o = s_send_range(w, w->cur.data, w->cur.len, &done);
    if (o == S_STOPPED) {
        /* Keep the unsettled rest for tb_writer_finish; the database is not at fault. */
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
            tb_writer_publish_spool(w);
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
void tb_writer_finish(tb_writer_t *w)
{
    w->stopping_now = 1;
    s_keep_cur(w);
    if (w->cur.data != NULL) {
        tb_spool_unpin(w->spool);
        s_clear_cur(w); /* the spool's head: it stays on disk */
    }
    if (w->spool != NULL) {
        tb_writer_spool_queue(w);
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
    tb_writer_count(w, &w->h.dropped, lost);
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
