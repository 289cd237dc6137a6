/* series — see series.h.
 *
 * A ring of lateness + 1 buckets indexed by second modulo the ring size. The
 * open window is [newest - lateness, newest]; when a packet or the clock
 * moves `newest` forward, every bucket that falls out of the window is
 * emitted first. */
#include "series.h"

#include "tb_err.h"

#include "tb_time.h"

#include <stdlib.h>
#include <string.h>

struct tb_series {
    uint32_t size;     /* buckets: lateness + 1 */
    tb_second_t *ring; /* ring[sec % size]; sec == 0 marks an empty bucket */
    int started;
    uint64_t newest;   /* newest second seen (packet or clock) */
    uint64_t lived_to; /* seconds up to here were marked lived or skipped */
    uint64_t late;
    tb_second_t *hot; /* the bucket of the last packet's second (NULL: none) */
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

void tb_series_pack(const tb_series_t *s, msgpack_packer *pk)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->size; i++) {
        n += s->ring[i].sec != 0;
    }
    msgpack_pack_map(pk, 5);
    tb_mp_kv_bool(pk, "started", s->started);
    tb_mp_kv_u64(pk, "newest", s->newest);
    tb_mp_kv_u64(pk, "lived_to", s->lived_to);
    tb_mp_kv_u64(pk, "late", s->late);
    tb_mp_pack_cstr(pk, "open");
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < s->size; i++) {
        const tb_second_t *b = &s->ring[i];
        if (b->sec == 0) {
            continue;
        }
        msgpack_pack_array(pk, 2 + 2 * TB_PC_COUNT);
        msgpack_pack_uint64(pk, b->sec);
        msgpack_pack_uint8(pk, b->lived ? 1 : 0);
        for (int pc = 0; pc < TB_PC_COUNT; pc++) {
            msgpack_pack_uint64(pk, b->proto[pc].packets);
            msgpack_pack_uint64(pk, b->proto[pc].bytes);
        }
    }
}

void tb_series_unpack(tb_series_t *s, tb_mp_reader_t *r)
{
    s->hot = NULL; /* the state read decides where the next packet goes */
    uint32_t pairs = tb_mp_read_map(r);
    for (uint32_t i = 0; i < pairs && !r->error; i++) {
        if (tb_mp_next_str_is(r, "started")) {
            s->started = tb_mp_read_bool(r);
        } else if (tb_mp_next_str_is(r, "newest")) {
            s->newest = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "lived_to")) {
            s->lived_to = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "late")) {
            s->late = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "open")) {
            uint32_t n = tb_mp_read_array(r);
            for (uint32_t k = 0; k < n && !r->error; k++) {
                tb_second_t b;
                memset(&b, 0, sizeof b);
                if (tb_mp_read_array(r) != 2 + 2 * TB_PC_COUNT) {
                    r->error = r->error ? r->error : TB_EPROTO;
                    break;
                }
                b.sec = tb_mp_read_uint(r);
                b.lived = tb_mp_read_uint(r) != 0;
                for (int pc = 0; pc < TB_PC_COUNT; pc++) {
                    b.proto[pc].packets = tb_mp_read_uint(r);
                    b.proto[pc].bytes = tb_mp_read_uint(r);
                }
                /* Only seconds of the window [newest - lateness, newest]
                 * are open; a bucket taken already means a shorter window. */
                tb_second_t *slot = &s->ring[b.sec % s->size];
                if (b.sec != 0 && b.sec <= s->newest && s->newest - b.sec < s->size &&
                    slot->sec == 0) {
                    *slot = b;
                }
            }
        } else {
            tb_mp_skip(r);
            tb_mp_skip(r);
        }
    }
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

/* Move the window's head to sec (> newest): seconds leaving the window
 * [sec - lateness, sec] are complete. */
static void s_move(tb_series_t *s, uint64_t sec)
{
    uint64_t keep_from = sec >= s->size - 1 ? sec - (s->size - 1) : 0;
    s_close_before(s, keep_from);
    s->newest = sec;
}

/* The bucket of an open second, taken over if it held another one. */
static tb_second_t *s_bucket(tb_series_t *s, uint64_t sec)
{
    tb_second_t *b = &s->ring[sec % s->size];
    if (b->sec != sec) {
        s_close(s, b); /* cannot hold another second: already emitted */
        b->sec = sec;
    }
    return b;
}

int tb_series_add(tb_series_t *s, const tb_summary_t *pkt)
{
    uint64_t sec = pkt->ts_ns / 1000000000ull;
    if (sec == 0) {
        sec = 1; /* 0 marks empty buckets; the first second of 1970 joins the next */
    }
    /* The last packet's second, still open: its bucket without the ring's
     * division (most packets share their second with the one before). A
     * bucket closed since holds another second or 0, and fails the test. */
    if (s->hot != NULL && s->hot->sec == sec) {
        tb_counter_t *c = &s->hot->proto[tb_proto_class(pkt)];
        c->packets++;
        c->bytes += pkt->wire_len;
        return 0;
    }
    if (!s->started) {
        s->started = 1;
        s->newest = sec;
    } else if (sec > s->newest) {
        s_move(s, sec);
    } else if (s->newest - sec >= s->size) {
        s->late++;
        return 1;
    }
    /* Time a packet jumped over did not pass on the collector's clock: the
     * clock marks lived seconds only from here on. */
    if (sec > s->lived_to) {
        s->lived_to = sec;
    }
    s->hot = s_bucket(s, sec);
    tb_counter_t *c = &s->hot->proto[tb_proto_class(pkt)];
    c->packets++;
    c->bytes += pkt->wire_len;
    return 0;
}

void tb_series_skip(tb_series_t *s, uint64_t now_sec)
{
    if (!s->started) {
        return;
    }
    if (now_sec > s->lived_to) {
        s->lived_to = now_sec;
    }
    if (now_sec > s->newest) {
        s_move(s, now_sec);
    }
}

/* Most seconds one advance marks: the clock ticks every loop turn, so more
 * than this means the loop stood still, and the rest is not made up. */
#define FILL_MAX 3600

void tb_series_advance(tb_series_t *s, uint64_t now_sec)
{
    if (!s->started || now_sec <= s->lived_to) {
        return;
    }
    uint64_t from = s->lived_to + 1;
    if (now_sec - from >= FILL_MAX) {
        from = now_sec - FILL_MAX + 1;
    }
    for (uint64_t sec = from; sec <= now_sec; sec++) {
        if (sec > s->newest) {
            s_move(s, sec);
        } else if (s->newest - sec >= s->size) {
            continue; /* already closed */
        }
        s_bucket(s, sec)->lived = 1;
    }
    s->lived_to = now_sec;
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

/* --- time base ---------------------------------------------------------- */

void tb_timebase_init(tb_timebase_t *tb)
{
    memset(tb, 0, sizeof *tb);
}

static int s_near(uint64_t a, uint64_t b)
{
    return (a > b ? a - b : b - a) <= TB_TS_OUTLIER_NS;
}

/* Does t continue a chain whose latest element is prev, away from the
 * clock `ref`? Near prev, or (a jump ahead) later still. */
static int s_continues(uint64_t prev, uint64_t t, uint64_t ref)
{
    return s_near(t, prev) || (prev > ref && t >= prev);
}

static void s_accept(tb_timebase_t *tb, uint64_t t)
{
    if (t > tb->now_ts) {
        tb->now_ts = t;
    }
}

static void s_outlier(tb_timebase_t *tb, tb_summary_t *p, uint64_t ts)
{
    p->ts_ns = ts;
    p->flags |= TB_SUM_TS_OUTLIER;
    tb->outliers++;
}

size_t tb_timebase_judge(tb_timebase_t *tb, tb_summary_t *items, size_t n)
{
    size_t outliers = 0;
    for (size_t i = 0; i < n; i++) {
        tb_summary_t *p = &items[i];
        uint64_t t = p->ts_ns;
        p->flags &= (uint8_t)~TB_SUM_TS_OUTLIER;
        size_t ahead = n - i - 1 < TB_TS_CONFIRM - 1 ? n - i - 1 : TB_TS_CONFIRM - 1;
        if (!tb->based) {
            /* The first packet is the base unless every packet after it (at
             * least two, agreeing among themselves) is far from it. */
            int odd = ahead >= 2;
            for (size_t j = 1; j <= ahead && odd; j++) {
                odd = !s_near(items[i + j].ts_ns, t) &&
                      s_near(items[i + j].ts_ns, items[i + 1].ts_ns);
            }
            if (odd) {
                s_outlier(tb, p, items[i + 1].ts_ns);
                outliers++;
                continue;
            }
            tb->based = 1;
            tb->now_ts = t;
            tb->run = 0;
            continue;
        }
        uint64_t ref = tb->now_ts;
        if (s_near(t, ref)) {
            tb->run = 0;
            s_accept(tb, t);
            continue;
        }
        /* Far from the clock: a jump if the packets after it carry on from
         * it; an outlier if any of them returns (or goes elsewhere). */
        int jump = 1;
        uint64_t prev = t;
        for (size_t j = 1; j <= ahead && jump; j++) {
            jump = s_continues(prev, items[i + j].ts_ns, ref);
            prev = items[i + j].ts_ns;
        }
        if (jump && ahead < TB_TS_CONFIRM - 1 && t > ref &&
            t <= tb_time_now_ns() + TB_TS_FUTURE_NS) {
            /* Too few packets left in this batch to tell, but a step forward
             * to a time that has been (a sparse capture's next packet after
             * a long silence) is taken as the jump it nearly always is; only
             * a time in the future or in the past needs confirming. */
            tb->run = 0;
        } else if (jump && ahead < TB_TS_CONFIRM - 1) {
            /* Too few packets left in this batch to tell: judged by the far
             * packets before it instead. */
            tb->run = tb->run > 0 && s_continues(tb->run_ts, t, ref) ? tb->run + 1 : 1;
            tb->run_ts = t;
            jump = tb->run >= TB_TS_CONFIRM;
        } else {
            tb->run = 0;
        }
        if (jump) {
            /* The capture's clock really moved (in either direction). */
            tb->run = 0;
            tb->now_ts = t;
        } else {
            s_outlier(tb, p, ref);
            outliers++;
        }
    }
    return outliers;
}

uint64_t tb_timebase_tick(tb_timebase_t *tb, uint64_t heard_mono, int running, int *skipped)
{
    *skipped = 0;
    if (!running) {
        tb->paused = tb->paused || tb->last_mono != 0;
        return tb->based ? tb->now_ts : 0;
    }
    if (tb->based && tb->clocked && tb->last_mono != 0 && heard_mono > tb->last_mono) {
        uint64_t d = heard_mono - tb->last_mono;
        if (!tb->paused) {
            tb->now_ts += d;
        } else if (tb->realtime) {
            tb->now_ts += d;
            *skipped = 1;
        }
    }
    if (heard_mono > tb->last_mono) {
        tb->last_mono = heard_mono;
        tb->paused = 0;
    }
    return tb->based ? tb->now_ts : 0;
}
