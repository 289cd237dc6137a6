/* Unit tests for per-second series bucketed by capture time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "series.h"

#include <string.h>

typedef struct {
    tb_second_t got[64];
    size_t n;
} sink_t;

static void s_emit(void *arg, const tb_second_t *sec)
{
    sink_t *k = arg;
    assert_true(k->n < 64);
    k->got[k->n++] = *sec;
}

static tb_summary_t s_pkt(uint64_t sec, uint32_t ms, uint32_t len, uint8_t proto)
{
    tb_summary_t p;
    memset(&p, 0, sizeof p);
    p.ts_ns = sec * 1000000000ull + (uint64_t)ms * 1000000ull;
    p.wire_len = len;
    p.family = proto ? TB_FAMILY_IPV4 : TB_FAMILY_NONE;
    p.proto = proto;
    return p;
}

static void test_in_order_and_lateness(void **state)
{
    (void)state;
    sink_t k = {.n = 0};
    tb_series_t *s = tb_series_new(2, s_emit, &k);
    assert_non_null(s);
    tb_summary_t p;
    p = s_pkt(100, 0, 60, 6);
    tb_series_add(s, &p);
    p = s_pkt(100, 900, 40, 17);
    tb_series_add(s, &p);
    p = s_pkt(101, 0, 1500, 6);
    tb_series_add(s, &p);
    p = s_pkt(102, 0, 100, 0);
    tb_series_add(s, &p);
    assert_int_equal(k.n, 0);   /* 100 is still within 2 s of 102 */
    p = s_pkt(100, 500, 10, 1); /* late but inside the window */
    tb_series_add(s, &p);
    p = s_pkt(103, 0, 70, 6); /* closes 100 */
    tb_series_add(s, &p);
    assert_int_equal(k.n, 1);
    assert_int_equal(k.got[0].sec, 100);
    assert_int_equal(k.got[0].proto[TB_PC_TCP].packets, 1);
    assert_int_equal(k.got[0].proto[TB_PC_TCP].bytes, 60);
    assert_int_equal(k.got[0].proto[TB_PC_UDP].bytes, 40);
    assert_int_equal(k.got[0].proto[TB_PC_ICMP].packets, 1);
    p = s_pkt(100, 999, 10, 6); /* too late now */
    tb_series_add(s, &p);
    assert_int_equal(tb_series_late(s), 1);
    tb_series_flush(s);
    assert_int_equal(k.n, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(k.got[i].sec, 100 + i);
    }
    assert_int_equal(k.got[2].proto[TB_PC_NON_IP].bytes, 100);
    tb_series_flush(s); /* nothing twice */
    assert_int_equal(k.n, 4);
    tb_series_destroy(&s);
    assert_null(s);
}

/* The open seconds packed into a snapshot and read into a new series carry
 * on: a packet for an open second joins it, and each second is emitted once
 * with everything it holds. */
static void test_snapshot_round_trip(void **state)
{
    (void)state;
    sink_t k = {.n = 0};
    tb_series_t *s = tb_series_new(3, s_emit, &k);
    tb_summary_t p;
    for (uint64_t sec = 100; sec <= 104; sec++) {
        p = s_pkt(sec, 0, 100, 6);
        tb_series_add(s, &p);
    }
    assert_int_equal(k.n, 1); /* 100 closed; 101..104 open */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    tb_series_pack(s, &pk);

    sink_t k2 = {.n = 0};
    tb_series_t *t = tb_series_new(3, s_emit, &k2);
    tb_mp_reader_t r;
    tb_mp_reader_init(&r, sb.data, sb.size);
    tb_series_unpack(t, &r);
    assert_int_equal(r.error, 0);
    p = s_pkt(102, 500, 40, 17); /* joins the open second 102 */
    assert_int_equal(tb_series_add(t, &p), 0);
    p = s_pkt(100, 0, 40, 17); /* 100 was closed before the snapshot: late */
    assert_int_equal(tb_series_add(t, &p), 1);
    tb_series_flush(t);
    assert_int_equal(k2.n, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(k2.got[i].sec, 101 + i);
        assert_int_equal(k2.got[i].proto[TB_PC_TCP].packets, 1);
    }
    assert_int_equal(k2.got[1].proto[TB_PC_UDP].packets, 1);
    assert_int_equal(k2.got[1].proto[TB_PC_UDP].bytes, 40);

    /* A shorter window keeps what fits: the newest seconds. */
    sink_t k3 = {.n = 0};
    tb_series_t *u = tb_series_new(1, s_emit, &k3);
    tb_mp_reader_init(&r, sb.data, sb.size);
    tb_series_unpack(u, &r);
    assert_int_equal(r.error, 0);
    tb_series_flush(u);
    assert_int_equal(k3.n, 2);
    assert_int_equal(k3.got[0].sec, 103);
    assert_int_equal(k3.got[1].sec, 104);
    /* Every cut of the snapshot is an error, never a crash. */
    for (size_t cut = 0; cut < sb.size; cut++) {
        sink_t k4 = {.n = 0};
        tb_series_t *v = tb_series_new(3, s_emit, &k4);
        tb_mp_reader_init(&r, sb.data, cut);
        tb_series_unpack(v, &r);
        assert_int_not_equal(r.error, 0);
        tb_series_destroy(&v);
    }
    tb_series_destroy(&u);
    tb_series_destroy(&t);
    tb_series_destroy(&s);
    msgpack_sbuffer_destroy(&sb);
}

static void test_gaps_and_jumps(void **state)
{
    (void)state;
    sink_t k = {.n = 0};
    tb_series_t *s = tb_series_new(5, s_emit, &k);
    tb_summary_t p = s_pkt(1000, 0, 1, 6);
    tb_series_add(s, &p);
    p = s_pkt(1003, 0, 1, 6);
    tb_series_add(s, &p);
    p = s_pkt(1700000000, 0, 1, 6); /* years later: everything open closes, in order */
    tb_series_add(s, &p);
    assert_int_equal(k.n, 2);
    assert_int_equal(k.got[0].sec, 1000);
    assert_int_equal(k.got[1].sec, 1003);
    p = s_pkt(1003, 0, 1, 6); /* from long ago: late */
    tb_series_add(s, &p);
    assert_int_equal(tb_series_late(s), 1);
    tb_series_flush(s);
    assert_int_equal(k.n, 3);
    assert_int_equal(k.got[2].sec, 1700000000);
    tb_series_destroy(&s);
}

static void test_zero_lateness_and_bad_arguments(void **state)
{
    (void)state;
    sink_t k = {.n = 0};
    assert_null(tb_series_new(TB_SERIES_MAX_LATENESS + 1, s_emit, &k));
    assert_null(tb_series_new(1, NULL, &k));
    tb_series_t *s = tb_series_new(0, s_emit, &k);
    for (uint64_t sec = 10; sec < 15; sec++) {
        tb_summary_t p = s_pkt(sec, 0, 10, 17);
        tb_series_add(s, &p);
        tb_series_add(s, &p);
    }
    assert_int_equal(k.n, 4);
    tb_series_flush(s);
    assert_int_equal(k.n, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(k.got[i].sec, 10 + i);
        assert_int_equal(k.got[i].proto[TB_PC_UDP].packets, 2);
    }
    tb_series_destroy(&s);
}

/* The clock closes seconds older than now - lateness without later traffic,
 * and the seconds it passed without traffic come out as lived (zeros). */
static void test_clock_closes_and_fills(void **state)
{
    (void)state;
    sink_t k = {.n = 0};
    tb_series_t *s = tb_series_new(2, s_emit, &k);
    assert_non_null(s);
    tb_series_advance(s, 500); /* no base yet: nothing */
    assert_int_equal(k.n, 0);
    tb_summary_t p = s_pkt(100, 0, 60, 6);
    tb_series_add(s, &p);
    tb_series_advance(s, 101);
    tb_series_advance(s, 102);
    assert_int_equal(k.n, 0); /* 100 still within 2 s of the clock */
    tb_series_advance(s, 105);
    assert_int_equal(k.n, 3); /* 100, 101, 102 closed; 103..105 open */
    assert_int_equal(k.got[0].sec, 100);
    assert_int_equal(k.got[0].proto[TB_PC_TCP].packets, 1);
    assert_int_equal(k.got[1].sec, 101);
    assert_true(k.got[1].lived);
    assert_int_equal(k.got[1].proto[TB_PC_TCP].packets, 0);
    assert_int_equal(k.got[2].sec, 102);
    /* A packet in an open lived second counts there. */
    p = s_pkt(104, 0, 70, 17);
    assert_int_equal(tb_series_add(s, &p), 0);
    /* A packet older than the window is late. */
    p = s_pkt(101, 0, 70, 17);
    assert_int_equal(tb_series_add(s, &p), 1);
    assert_int_equal(tb_series_late(s), 1);
    tb_series_flush(s);
    assert_int_equal(k.n, 6);
    assert_int_equal(k.got[4].sec, 104);
    assert_int_equal(k.got[4].proto[TB_PC_UDP].packets, 1);
    tb_series_destroy(&s);
}

/* Packets of the second before go to its bucket at once; once the second
 * is closed (by the clock, or by a newer second taking its bucket), the
 * next packet of it is late, not counted in a bucket already written. */
static void test_same_second_after_close(void **state)
{
    (void)state;
    sink_t k = {.n = 0};
    tb_series_t *s = tb_series_new(2, s_emit, &k);
    assert_non_null(s);
    tb_summary_t p = s_pkt(100, 0, 60, 6);
    assert_int_equal(tb_series_add(s, &p), 0);
    p = s_pkt(100, 1, 40, 6);
    assert_int_equal(tb_series_add(s, &p), 0);
    tb_series_advance(s, 105); /* closes 100 to 102 */
    assert_int_equal(k.n, 3);
    assert_int_equal(k.got[0].sec, 100);
    assert_int_equal(k.got[0].proto[TB_PC_TCP].packets, 2);
    assert_int_equal(k.got[0].proto[TB_PC_TCP].bytes, 100);
    p = s_pkt(100, 2, 10, 6);
    assert_int_equal(tb_series_add(s, &p), 1);
    assert_int_equal(tb_series_late(s), 1);

    /* 200 and 203 share a bucket (3 of them): 203 closes 200. */
    p = s_pkt(200, 0, 60, 17);
    assert_int_equal(tb_series_add(s, &p), 0);
    p = s_pkt(203, 0, 60, 17);
    assert_int_equal(tb_series_add(s, &p), 0);
    p = s_pkt(200, 5, 60, 17);
    assert_int_equal(tb_series_add(s, &p), 1);
    assert_int_equal(tb_series_late(s), 2);
    p = s_pkt(203, 5, 20, 17);
    assert_int_equal(tb_series_add(s, &p), 0);
    tb_series_flush(s);
    assert_int_equal(k.got[k.n - 1].sec, 203);
    assert_int_equal(k.got[k.n - 1].proto[TB_PC_UDP].packets, 2);
    assert_int_equal(k.got[k.n - 1].proto[TB_PC_UDP].bytes, 80);
    for (size_t i = 0; i < k.n; i++) {
        if (k.got[i].sec == 200) {
            assert_int_equal(k.got[i].proto[TB_PC_UDP].packets, 1);
        }
    }
    tb_series_destroy(&s);
}

/* Time a packet jumped over (Monday's file, then Wednesday's) is not
 * filled: only what the clock lived through after the jump. */
static void test_jump_not_filled(void **state)
{
    (void)state;
    sink_t k = {.n = 0};
    tb_series_t *s = tb_series_new(1, s_emit, &k);
    tb_summary_t p = s_pkt(1000, 0, 60, 6);
    tb_series_add(s, &p);
    tb_series_advance(s, 1001);
    p = s_pkt(1000 + 2 * 86400, 0, 60, 6);
    tb_series_add(s, &p);
    tb_series_advance(s, 1000 + 2 * 86400 + 3);
    tb_series_flush(s);
    /* 1000 (traffic), 1001 (lived), then Wednesday's second and the three
     * seconds the clock lived after it. */
    assert_int_equal(k.n, 6);
    assert_int_equal(k.got[1].sec, 1001);
    assert_true(k.got[1].lived);
    assert_int_equal(k.got[2].sec, 1000 + 2 * 86400);
    assert_int_equal(k.got[5].sec, 1000 + 2 * 86400 + 3);
    tb_series_destroy(&s);
}

/* n packets one second apart from `start`. */
static void s_run(tb_summary_t *items, size_t n, uint64_t start)
{
    for (size_t i = 0; i < n; i++) {
        items[i] = s_pkt(start + i, 0, 100, 6);
    }
}

#define Y2008 1199145600ull
#define Y2100 4102444800ull

/* One packet dated 2100 and one dated 1970 in a 2008 capture: both are
 * outliers, take the stream's time, and are flagged; the rest is kept. */
static void test_outlier_in_batch(void **state)
{
    (void)state;
    tb_timebase_t tb;
    tb_timebase_init(&tb);
    tb_summary_t items[100];
    s_run(items, 100, Y2008);
    items[40].ts_ns = Y2100 * 1000000000ull;
    items[70].ts_ns = 5;
    items[99].ts_ns = Y2100 * 1000000000ull; /* the last of its batch */
    assert_int_equal(tb_timebase_judge(&tb, items, 100), 3);
    assert_int_equal(tb.outliers, 3);
    assert_true(items[40].flags & TB_SUM_TS_OUTLIER);
    assert_int_equal(items[40].ts_ns, (Y2008 + 39) * 1000000000ull);
    assert_int_equal(items[70].ts_ns, (Y2008 + 69) * 1000000000ull);
    assert_int_equal(items[99].ts_ns, (Y2008 + 98) * 1000000000ull);
    assert_false(items[41].flags & TB_SUM_TS_OUTLIER);
    /* The next batch carries on from 2008. */
    s_run(items, 10, Y2008 + 100);
    items[0].flags = TB_SUM_TS_OUTLIER; /* from the wire: cleared */
    assert_int_equal(tb_timebase_judge(&tb, items, 10), 0);
    assert_false(items[0].flags & TB_SUM_TS_OUTLIER);
    int skipped;
    assert_int_equal(tb_timebase_tick(&tb, 1, 1, &skipped), (Y2008 + 109) * 1000000000ull);
}

/* An absurd first packet does not become the base. */
static void test_outlier_first(void **state)
{
    (void)state;
    tb_timebase_t tb;
    tb_timebase_init(&tb);
    tb_summary_t items[10];
    s_run(items, 10, Y2008);
    items[0].ts_ns = Y2100 * 1000000000ull;
    assert_int_equal(tb_timebase_judge(&tb, items, 10), 1);
    assert_int_equal(items[0].ts_ns, Y2008 * 1000000000ull + 1000000000ull);
    assert_true(tb.based);
    assert_int_equal(tb.now_ts, (Y2008 + 9) * 1000000000ull);
}

/* A genuine jump (the capture's clock was stepped, or a long silence in a
 * sparse file) is accepted at once when the packets after it carry on from
 * it, and after TB_TS_CONFIRM consecutive packets when it arrives one
 * packet per batch. */
static void test_jump_accepted(void **state)
{
    (void)state;
    tb_timebase_t tb;
    tb_timebase_init(&tb);
    tb_summary_t items[20];
    s_run(items, 10, Y2008);
    s_run(items + 10, 10, Y2008 + 3 * 3600); /* three hours of silence */
    assert_int_equal(tb_timebase_judge(&tb, items, 20), 0);
    assert_int_equal(items[10].ts_ns, (Y2008 + 3 * 3600) * 1000000000ull);
    /* Sparse: every packet two hours after the last, in big batches. */
    for (size_t i = 0; i < 20; i++) {
        items[i] = s_pkt(Y2008 + 86400 + i * 7200, 0, 100, 6);
    }
    /* Every packet is a jump, the last three of the batch too (steps
     * forward to times that have been): none is an outlier. */
    assert_int_equal(tb_timebase_judge(&tb, items, 20), 0);
    assert_int_equal(items[16].ts_ns, (Y2008 + 86400 + 16 * 7200) * 1000000000ull);
    assert_int_equal(items[19].ts_ns, (Y2008 + 86400 + 19 * 7200) * 1000000000ull);
    assert_int_equal(tb.now_ts, (Y2008 + 86400 + 19 * 7200) * 1000000000ull);
    /* The same sparse packets one per batch (read as slowly as they come). */
    size_t sparse_outliers = 0;
    for (size_t i = 0; i < 5; i++) {
        tb_summary_t p = s_pkt(Y2008 + 4 * 86400 + i * 7200, 0, 100, 6);
        sparse_outliers += tb_timebase_judge(&tb, &p, 1);
    }
    assert_int_equal(sparse_outliers, 0);
    /* One packet per batch (a live source), a day back: four agree. */
    tb_timebase_init(&tb);
    s_run(items, 3, Y2008);
    assert_int_equal(tb_timebase_judge(&tb, items, 3), 0);
    size_t outliers = 0;
    for (size_t i = 0; i < 6; i++) {
        tb_summary_t p = s_pkt(Y2008 - 86400 + i, 0, 100, 6);
        outliers += tb_timebase_judge(&tb, &p, 1);
    }
    assert_int_equal(outliers, TB_TS_CONFIRM - 1);
    assert_int_equal(tb.now_ts, (Y2008 - 86400 + 5) * 1000000000ull);
}

/* The capture clock runs with what is heard (never past the newest
 * message) only while clocked and running; over a pause (a stopped or
 * silent stream) a directory's stands still and a live capture's skips. */
static void test_clock_ticks(void **state)
{
    (void)state;
    tb_timebase_t tb;
    tb_timebase_init(&tb);
    int skipped;
    assert_int_equal(tb_timebase_tick(&tb, 1000, 1, &skipped), 0); /* no base */
    tb_summary_t p = s_pkt(Y2008, 0, 100, 6);
    tb_timebase_judge(&tb, &p, 1);
    tb.clocked = 1;
    uint64_t base = Y2008 * 1000000000ull;
    assert_int_equal(tb_timebase_tick(&tb, 2000, 1, &skipped), base + 1000);
    assert_false(skipped);
    /* Nothing new heard: it does not run on by itself. */
    assert_int_equal(tb_timebase_tick(&tb, 2000, 1, &skipped), base + 1000);
    assert_int_equal(tb_timebase_tick(&tb, 5000, 0, &skipped), base + 1000); /* paused */
    /* A directory: heard again, it stands where it stood, then runs on. */
    assert_int_equal(tb_timebase_tick(&tb, 6000, 1, &skipped), base + 1000);
    assert_false(skipped);
    assert_int_equal(tb_timebase_tick(&tb, 6500, 1, &skipped), base + 1500);
    /* A live capture skips the pause, saying so. */
    tb.realtime = 1;
    assert_int_equal(tb_timebase_tick(&tb, 9000, 0, &skipped), base + 1500);
    assert_int_equal(tb_timebase_tick(&tb, 9500, 1, &skipped), base + 4500);
    assert_true(skipped);
    assert_int_equal(tb_timebase_tick(&tb, 9700, 1, &skipped), base + 4700);
    assert_false(skipped);
    tb.clocked = 0; /* a file: only packets move it */
    assert_int_equal(tb_timebase_tick(&tb, 12000, 1, &skipped), base + 4700);
    /* A packet ahead of the clock moves it on; one behind does not. */
    p = s_pkt(Y2008 + 5, 0, 100, 6);
    tb_timebase_judge(&tb, &p, 1);
    p = s_pkt(Y2008 + 1, 0, 100, 6);
    tb_timebase_judge(&tb, &p, 1);
    assert_int_equal(tb_timebase_tick(&tb, 12500, 1, &skipped), (Y2008 + 5) * 1000000000ull);
}

/* A skip closes what is older than the window and marks nothing lived. */
static void test_skip_marks_nothing(void **state)
{
    (void)state;
    sink_t k = {.n = 0};
    tb_series_t *s = tb_series_new(2, s_emit, &k);
    tb_summary_t p = s_pkt(100, 0, 60, 6);
    tb_series_add(s, &p);
    tb_series_advance(s, 101); /* lived */
    tb_series_skip(s, 200);    /* nobody measured 102..200 */
    assert_int_equal(k.n, 2);
    assert_int_equal(k.got[0].sec, 100);
    assert_int_equal(k.got[1].sec, 101);
    assert_true(k.got[1].lived);
    tb_series_advance(s, 202); /* lived again from 201 */
    tb_series_flush(s);
    assert_int_equal(k.n, 4);
    assert_int_equal(k.got[2].sec, 201);
    assert_int_equal(k.got[3].sec, 202);
    tb_series_destroy(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order_and_lateness),
        cmocka_unit_test(test_same_second_after_close),
        cmocka_unit_test(test_skip_marks_nothing),
        cmocka_unit_test(test_snapshot_round_trip),
        cmocka_unit_test(test_gaps_and_jumps),
        cmocka_unit_test(test_zero_lateness_and_bad_arguments),
        cmocka_unit_test(test_clock_closes_and_fills),
        cmocka_unit_test(test_jump_not_filled),
        cmocka_unit_test(test_outlier_in_batch),
        cmocka_unit_test(test_outlier_first),
        cmocka_unit_test(test_jump_accepted),
        cmocka_unit_test(test_clock_ticks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
