/* test_track — what the collector knows of one probe's part of a stream
 * (collector/track.c): the sequence position (gaps, duplicates, a probe
 * that restarted, messages of runs left behind), the start of a new run,
 * packets announced at the end but never received, silent probes, the loss
 * summed without wrapping, and the snapshot of a track read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tb_err.h"
#include "tb_time.h"
#include "track.h"

#include <stdio.h>
#include <string.h>

static tb_wire_header_t s_hdr(const char *probe, uint64_t boot, uint64_t seq, uint64_t run)
{
    tb_wire_header_t h;
    memset(&h, 0, sizeof h);
    h.type = TB_MSG_BATCH;
    snprintf(h.probe_id, sizeof h.probe_id, "%s", probe);
    snprintf(h.stream, sizeof h.stream, "s1");
    h.boot_ns = boot;
    h.seq = seq;
    h.run = run;
    return h;
}

/* Follow pt to the message (probe p1, boot 100) of sequence seq and run. */
static tb_track_step_t s_follow(tb_track_t *pt, uint64_t seq, uint64_t run, uint64_t *gap,
                                int *backward)
{
    tb_wire_header_t h = s_hdr("p1", 100, seq, run);
    *gap = 0;
    *backward = 0;
    return tb_track_follow(pt, &h, gap, backward);
}

static void test_tracks_are_found_added_and_bounded(void **state)
{
    (void)state;
    tb_track_t tracks[2];
    size_t n = 0;
    tb_wire_header_t h1 = s_hdr("p1", 100, 10, 1), h2 = s_hdr("p2", 200, 0, 0);
    tb_wire_header_t h3 = s_hdr("p3", 300, 0, 0);
    tb_track_t *a = tb_track_add(tracks, &n, 2, &h1);
    assert_non_null(a);
    assert_int_equal(n, 1);
    /* A new track is positioned at its first message, source state unknown. */
    assert_string_equal(a->probe_id, "p1");
    assert_int_equal(a->next_seq, 10);
    assert_int_equal(a->run, 1);
    assert_int_equal(a->run_first_seq, 10);
    assert_int_equal(a->src_state, -1);
    assert_ptr_equal(tb_track_add(tracks, &n, 2, &h1), a);
    assert_non_null(tb_track_add(tracks, &n, 2, &h2));
    assert_null(tb_track_add(tracks, &n, 2, &h3)); /* full */
    assert_int_equal(n, 2);
    assert_ptr_equal(tb_track_find(tracks, n, "p2"), &tracks[1]);
    assert_null(tb_track_find(tracks, n, "p3"));
}

static void test_gaps_and_duplicates(void **state)
{
    (void)state;
    tb_track_t t[1];
    size_t n = 0;
    tb_wire_header_t h = s_hdr("p1", 100, 10, 1);
    tb_track_t *pt = tb_track_add(t, &n, 1, &h);
    uint64_t gap;
    int backward;
    assert_int_equal(s_follow(pt, 10, 1, &gap, &backward), TB_TRACK_SAME_RUN);
    assert_int_equal(gap, 0);
    assert_int_equal(pt->next_seq, 11);
    /* 11 and 12 never came. */
    assert_int_equal(s_follow(pt, 13, 1, &gap, &backward), TB_TRACK_SAME_RUN);
    assert_int_equal(gap, 2);
    assert_int_equal(pt->seq_gaps, 2);
    assert_int_equal(pt->next_seq, 14);
    /* Backwards: counted, never a gap; the position follows the message. */
    assert_int_equal(s_follow(pt, 12, 1, &gap, &backward), TB_TRACK_SAME_RUN);
    assert_int_equal(backward, 1);
    assert_int_equal(gap, 0);
    assert_int_equal(pt->seq_backward, 1);
    assert_int_equal(pt->seq_gaps, 2);
    assert_int_equal(pt->next_seq, 13);
    /* A forged jump to the end of the sequence space does not wrap. */
    assert_int_equal(s_follow(pt, UINT64_MAX, 1, &gap, &backward), TB_TRACK_SAME_RUN);
    assert_int_equal(pt->next_seq, UINT64_MAX);
    assert_int_equal(pt->seq_gaps, UINT64_MAX - 13 + 2);
    /* Another run in the same boot: a new run, after the sequence check. */
    assert_int_equal(s_follow(pt, UINT64_MAX, 2, &gap, &backward), TB_TRACK_NEW_RUN);
}

static void test_a_restarted_probe_begins_a_new_run(void **state)
{
    (void)state;
    tb_track_t t[1];
    size_t n = 0;
    tb_wire_header_t h = s_hdr("p1", 100, 0, 1);
    tb_track_t *pt = tb_track_add(t, &n, 1, &h);
    uint64_t gap;
    int backward;
    assert_int_equal(s_follow(pt, 0, 1, &gap, &backward), TB_TRACK_SAME_RUN);
    pt->received = 50;
    /* Another boot time, its sequence from 0 again: no gap, a restart. */
    tb_wire_header_t r = s_hdr("p1", 999, 0, 1);
    gap = 0;
    backward = 0;
    assert_int_equal(tb_track_follow(pt, &r, &gap, &backward), TB_TRACK_RESTARTED);
    assert_int_equal(gap, 0);
    assert_int_equal(pt->restarts, 1);
    assert_int_equal(pt->boot_ns, 999);
    assert_int_equal(pt->next_seq, 1);
    /* It held data of a run: the statistics must start over. */
    assert_int_equal(tb_track_begin_run(pt, &r), 1);
    assert_int_equal(pt->received, 0);
    assert_int_equal(pt->run_first_seq, 0);
    /* Nothing received since: a further new run starts nothing over. */
    tb_wire_header_t r2 = s_hdr("p1", 999, 5, 2);
    assert_int_equal(tb_track_begin_run(pt, &r2), 0);
    assert_int_equal(pt->run, 2);
    /* Run 0 (live, directory) never starts over. */
    pt->received = 7;
    tb_wire_header_t live = s_hdr("p1", 999, 6, 0);
    assert_int_equal(tb_track_begin_run(pt, &live), 0);
}

static void test_rejoining_leaves_earlier_runs_behind(void **state)
{
    (void)state;
    tb_track_t t[1];
    size_t n = 0;
    tb_wire_header_t h = s_hdr("p1", 100, 0, 2);
    tb_track_t *pt = tb_track_add(t, &n, 1, &h);
    uint64_t gap;
    int backward;
    assert_int_equal(s_follow(pt, 0, 2, &gap, &backward), TB_TRACK_SAME_RUN);
    pt->received = 10;
    pt->seq_gaps = 3;
    pt->src_state = TB_SRC_FINISHED;
    snprintf(pt->detail, sizeof pt->detail, "done");
    pt->eos_seen = 1;
    tb_track_rejoin(pt);
    assert_int_equal(pt->min_run, 3);
    assert_int_equal(pt->received, 0);
    assert_int_equal(pt->seq_gaps, 0);
    assert_int_equal(pt->eos_seen, 0);
    assert_int_equal(pt->src_state, -1);
    assert_string_equal(pt->detail, "");
    /* Still in flight from run 2: stale, and its jump is no gap. */
    assert_int_equal(s_follow(pt, 9, 2, &gap, &backward), TB_TRACK_STALE);
    assert_int_equal(pt->seq_gaps, 0);
    /* The run asked for. */
    assert_int_equal(s_follow(pt, 20, 3, &gap, &backward), TB_TRACK_NEW_RUN);
    assert_int_equal(gap, 0);
    assert_int_equal(pt->next_seq, 21);
    /* A source that never starts over (run 0) simply continues. */
    tb_track_t live[1];
    size_t m = 0;
    tb_wire_header_t l = s_hdr("p1", 100, 0, 0);
    tb_track_rejoin(tb_track_add(live, &m, 1, &l));
    assert_int_equal(live[0].min_run, 0);
}

static void test_end_of_stream_counts_what_never_came(void **state)
{
    (void)state;
    tb_track_t t[1];
    size_t n = 0;
    tb_wire_header_t h = s_hdr("p1", 100, 4, 1);
    tb_track_t *pt = tb_track_add(t, &n, 1, &h);
    pt->received = 5;
    tb_eos_t eos;
    memset(&eos, 0, sizeof eos);
    eos.packets = 8;
    eos.first_seq = 4;
    tb_track_eos(pt, &eos);
    assert_int_equal(pt->eos_seen, 1);
    assert_int_equal(pt->src_state, TB_SRC_FINISHED);
    assert_int_equal(pt->lost_packets, 3);
    /* A collector that joined after the run's first message missed what
     * came before it: nothing is lost. */
    tb_track_t u[1];
    size_t m = 0;
    tb_wire_header_t late = s_hdr("p1", 100, 9, 1);
    tb_track_t *q = tb_track_add(u, &m, 1, &late);
    q->received = 1;
    eos.error = 1;
    snprintf(eos.detail, sizeof eos.detail, "cut short");
    tb_track_eos(q, &eos);
    assert_int_equal(q->lost_packets, 0);
    assert_int_equal(q->src_state, TB_SRC_ERROR);
    assert_string_equal(q->detail, "cut short");
}

static void test_silent_probes_and_the_end(void **state)
{
    (void)state;
    uint64_t now = 100 * TB_NS_PER_SEC;
    tb_track_t t[2];
    memset(t, 0, sizeof t);
    t[0].last_heard = now - TB_TRACK_EXPIRE_NS - 1; /* silent, gave nothing */
    t[1].last_heard = now - 1;
    assert_true(tb_track_silent(&t[0], now));
    assert_false(tb_track_silent(&t[1], now));
    assert_true(tb_track_expirable(&t[0], now));
    assert_false(tb_track_expirable(&t[1], now));
    t[0].lost_packets = 1; /* it gave a loss: it stays */
    assert_false(tb_track_expirable(&t[0], now));
    /* Never heard is not silent. */
    tb_track_t never;
    memset(&never, 0, sizeof never);
    assert_false(tb_track_silent(&never, now));
    /* The end: at least one ended, every other ended or silent. */
    assert_false(tb_track_all_ended(t, 2, now)); /* none ended */
    t[1].eos_seen = 1;
    assert_true(tb_track_all_ended(t, 2, now)); /* t[0] is silent */
    t[0].last_heard = now;
    assert_false(tb_track_all_ended(t, 2, now)); /* t[0] is heard */
    assert_false(tb_track_all_ended(t, 0, now));
}

static void test_loss_adds_up_without_wrapping(void **state)
{
    (void)state;
    tb_track_t t[2];
    memset(t, 0, sizeof t);
    snprintf(t[0].probe_id, sizeof t[0].probe_id, "p1");
    t[0].received = 40;
    t[0].seq_gaps = UINT64_MAX - 1;
    t[0].lost_packets = 2;
    t[0].restarts = 1;
    t[1].seq_gaps = 5;
    t[1].have_hb = 1;
    t[1].hb.pcap_drop = UINT64_MAX;
    t[1].hb.pcap_ifdrop = 3;
    t[1].hb.bus_drops = 4;
    t[1].hb.frames_lost = 6;
    assert_int_equal(tb_track_capture_drops(&t[0]), 0); /* no heartbeat yet */
    assert_int_equal(tb_track_capture_drops(&t[1]), UINT64_MAX);
    tb_track_totals_t sum;
    tb_track_totals(t, 2, &sum);
    assert_int_equal(sum.seq_gaps, UINT64_MAX);
    assert_int_equal(sum.capture_drops, UINT64_MAX);
    assert_int_equal(sum.lost_packets, 2);
    assert_int_equal(sum.restarts, 1);
    assert_int_equal(sum.bus_drops, 4);
    assert_int_equal(sum.frames_lost, 6);
    tb_loss_t l;
    tb_track_loss(&t[0], 2500 * 1000000ull, &l);
    assert_string_equal(l.probe, "p1");
    assert_int_equal(l.received, 40);
    assert_int_equal(l.lost_packets, 2);
    assert_int_equal(l.unmeasured_ms, 2500);
    assert_int_equal(l.bus_drops, 0);
    tb_track_loss(&t[1], 0, &l);
    assert_int_equal(l.bus_drops, 4);
    assert_int_equal(l.capture_drops, UINT64_MAX);
}

static void test_snapshot_round_trip(void **state)
{
    (void)state;
    tb_track_t pt;
    memset(&pt, 0, sizeof pt);
    snprintf(pt.probe_id, sizeof pt.probe_id, "edge-1");
    pt.boot_ns = 123;
    pt.next_seq = 456;
    pt.run = 7;
    pt.received = 89;
    pt.seq_gaps = 10;
    pt.restarts = 2;
    pt.lost_packets = 3;
    pt.eos_seen = 1;
    pt.src_state = TB_SRC_RUNNING;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    tb_track_pack(&pt, &pk);
    tb_track_t back;
    memset(&back, 0xab, sizeof back);
    tb_mp_reader_t r;
    tb_mp_reader_init(&r, sb.data, sb.size);
    tb_track_unpack(&back, &r);
    assert_int_equal(r.error, 0);
    assert_string_equal(back.probe_id, "edge-1");
    assert_int_equal(back.boot_ns, 123);
    assert_int_equal(back.next_seq, 456);
    assert_int_equal(back.run, 7);
    assert_int_equal(back.received, 89);
    assert_int_equal(back.seq_gaps, 10);
    assert_int_equal(back.restarts, 2);
    assert_int_equal(back.lost_packets, 3);
    assert_int_equal(back.eos_seen, 1);
    assert_int_equal(back.src_state, -1); /* until the next heartbeat says */
    assert_int_equal(back.have_hb, 0);
    /* Cut short: an error, never a crash. */
    tb_mp_reader_init(&r, sb.data, sb.size / 2);
    tb_track_unpack(&back, &r);
    assert_int_not_equal(r.error, 0);
    msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tracks_are_found_added_and_bounded),
        cmocka_unit_test(test_gaps_and_duplicates),
        cmocka_unit_test(test_a_restarted_probe_begins_a_new_run),
        cmocka_unit_test(test_rejoining_leaves_earlier_runs_behind),
        cmocka_unit_test(test_end_of_stream_counts_what_never_came),
        cmocka_unit_test(test_silent_probes_and_the_end),
        cmocka_unit_test(test_loss_adds_up_without_wrapping),
        cmocka_unit_test(test_snapshot_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
