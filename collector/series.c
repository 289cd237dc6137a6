/* series — see series.h.
 *
 * A ring of lateness + 1 buckets indexed by second modulo the ring size. The
 * open window is [newest - lateness, newest]; when a packet moves `newest`
 * forward, every bucket that falls out of the window is emitted first. */
#include "series.h"

#include <stdlib.h>
#include <string.h>

struct tb_series {
    uint32_t size;     /* buckets: lateness + 1 */
    tb_second_t *ring; /* ring[sec % size]; sec == 0 marks an empty bucket */
    int started;
    uint64_t newest; /* newest second seen */
    uint64_t late;
    tb_series_emit_fn emit;
    void *arg;
};

tb_series_t *tb_series_new(uint32_t lateness_s, tb_series_emit_fn emit, void *arg)
{
    if (lateness_s > TB_SERIES_MAX_LATENESS || emit == NULL) {
        return NULL;
    }
    tb_series_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return NULL;
    }
    s->size = lateness_s + 1;
    s->ring = calloc(s->size, sizeof *s->ring);
    if (s->ring == NULL) {
        free(s);
        return NULL;
    }
    s->emit = emit;
    s->arg = arg;
    return s;
}

void tb_series_destroy(tb_series_t **p)
{
    if (p == NULL || *p == NULL) {
        return;
    }
    free((*p)->ring);
    free(*p);
    *p = NULL;
}

static void s_close(tb_series_t *s, tb_second_t *b)
{
    if (b->sec != 0) {
        s->emit(s->arg, b);
        memset(b, 0, sizeof *b);
    }
}

/* Emit, oldest first, every open second older than `limit`. */
static void s_close_before(tb_series_t *s, uint64_t limit)
{
    uint64_t oldest = s->newest >= s->size - 1 ? s->newest - (s->size - 1) : 0;
    if (limit > s->newest + 1) {
        limit = s->newest + 1; /* nothing newer than newest is open */
    }
    for (uint64_t sec = oldest; sec < limit; sec++) {
        tb_second_t *b = &s->ring[sec % s->size];
        if (b->sec == sec) {
            s_close(s, b);
        }
    }
}

void tb_series_add(tb_series_t *s, const tb_summary_t *pkt)
{
    uint64_t sec = pkt->ts_ns / 1000000000ull;
    if (sec == 0) {
        sec = 1; /* 0 marks empty buckets; the first second of 1970 joins the next */
    }
    if (!s->started) {
        s->started = 1;
        s->newest = sec;
    } else if (sec > s->newest) {
        /* Seconds leaving the window [sec - lateness, sec] are complete. */
        uint64_t keep_from = sec >= s->size - 1 ? sec - (s->size - 1) : 0;
        s_close_before(s, keep_from);
        s->newest = sec;
    } else if (s->newest - sec >= s->size) {
        s->late++;
        return;
    }
    tb_second_t *b = &s->ring[sec % s->size];
    if (b->sec != sec) {
        s_close(s, b); /* cannot hold another second: already emitted above */
        b->sec = sec;
    }
    tb_counter_t *c = &b->proto[tb_proto_class(pkt)];
    c->packets++;
    c->bytes += pkt->wire_len;
}

void tb_series_flush(tb_series_t *s)
{
    if (s->started) {
        s_close_before(s, s->newest + 1);
    }
}

void tb_series_emit_open(tb_series_t *s)
{
    if (!s->started) {
        return;
    }
    uint64_t oldest = s->newest >= s->size - 1 ? s->newest - (s->size - 1) : 0;
    for (uint64_t sec = oldest; sec <= s->newest; sec++) {
        const tb_second_t *b = &s->ring[sec % s->size];
        if (b->sec == sec) {
            s->emit(s->arg, b);
        }
    }
}

uint64_t tb_series_late(const tb_series_t *s)
{
    return s->late;
}
