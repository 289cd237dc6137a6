/* track — see track.h. */
#include "track.h"

#include <stdio.h>
#include <string.h>

/* Counters fed by what peers send add up without wrapping round. */
static uint64_t s_add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

const tb_track_t *tb_track_find(const tb_track_t *tracks, size_t n, const char *probe_id)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(tracks[i].probe_id, probe_id) == 0) {
            return &tracks[i];
        }
    }
    return NULL;
}

tb_track_t *tb_track_add(tb_track_t *tracks, size_t *n, size_t max, const tb_wire_header_t *h)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(tracks[i].probe_id, h->probe_id) == 0) {
            return &tracks[i];
        }
    }
    if (*n >= max) {
        return NULL;
    }
    tb_track_t *pt = &tracks[(*n)++];
    memset(pt, 0, sizeof *pt);
    snprintf(pt->probe_id, sizeof pt->probe_id, "%s", h->probe_id);
    pt->boot_ns = h->boot_ns;
    pt->next_seq = h->seq;
    pt->run = h->run;
    pt->run_first_seq = h->seq;
    pt->src_state = -1;
    return pt;
}

tb_track_step_t tb_track_follow(tb_track_t *pt, const tb_wire_header_t *h, uint64_t *gap,
                                int *backward)
{
    if (h->boot_ns != pt->boot_ns) {
        pt->restarts++;
        pt->boot_ns = h->boot_ns;
        pt->next_seq = h->seq + 1;
        pt->min_run = 0;
        return TB_TRACK_RESTARTED;
    }
    if (h->run < pt->min_run) {
        /* Still in flight from a run this collector left when it restarted
         * the stream. While it re-subscribed, the probe's socket skipped it
         * for a moment: gaps here are its own doing, not loss. */
        pt->next_seq = h->seq + 1;
        return TB_TRACK_STALE;
    }
    if (pt->run < pt->min_run) {
        pt->next_seq = h->seq + 1; /* the first message of the run it asked for */
        return TB_TRACK_NEW_RUN;
    }
    /* Sequence accounting. The first message of a (probe, boot) set the
     * baseline; a later gap counts the messages that never arrived. */
    if (h->seq > pt->next_seq) {
        *gap = h->seq - pt->next_seq;
        pt->seq_gaps = s_add_sat(pt->seq_gaps, *gap);
    } else if (h->seq < pt->next_seq) {
        /* Backwards: a duplicate, or somebody else sending with this
         * probe's id. Counted, never a gap; the count follows the newest
         * sequence, so the real probe's next message is not a huge gap
         * after a forged jump ahead. */
        pt->seq_backward = s_add_sat(pt->seq_backward, 1);
        *backward = 1;
    }
    pt->next_seq = h->seq == UINT64_MAX ? UINT64_MAX : h->seq + 1;
    return h->run != pt->run ? TB_TRACK_NEW_RUN : TB_TRACK_SAME_RUN;
}

int tb_track_begin_run(tb_track_t *pt, const tb_wire_header_t *h)
{
    /* Run 0: a source that never starts over (live capture, a directory that
     * resumes from its checkpoint) continues; nothing is counted twice. */
    int start_over = h->run != 0 && (pt->received > 0 || pt->eos_seen);
    pt->run = h->run;
    pt->run_first_seq = h->seq;
    pt->received = 0;
    pt->eos_seen = 0;
    return start_over;
}

void tb_track_heartbeat(tb_track_t *pt, const tb_heartbeat_t *hb)
{
    pt->hb = *hb;
    pt->have_hb = 1;
    pt->src_state = hb->state;
    memcpy(pt->detail, hb->detail, sizeof pt->detail);
}

void tb_track_eos(tb_track_t *pt, const tb_eos_t *eos)
{
    pt->eos = *eos;
    pt->eos_seen = 1;
    pt->src_state = eos->error ? TB_SRC_ERROR : TB_SRC_FINISHED;
    memcpy(pt->detail, eos->detail, sizeof pt->detail);
    if (eos->first_seq == pt->run_first_seq && eos->packets > pt->received) {
        pt->lost_packets = s_add_sat(pt->lost_packets, eos->packets - pt->received);
    }
}

void tb_track_rejoin(tb_track_t *pt)
{
    /* A source that never starts over (run 0) simply continues. */
    pt->min_run = pt->run != 0 ? pt->run + 1 : 0;
    /* Its next heartbeat or end-of-stream says how the source is now. */
    pt->src_state = -1;
    pt->detail[0] = '\0';
    pt->received = 0;
    pt->seq_gaps = 0;
    pt->seq_backward = 0;
    pt->restarts = 0;
    pt->lost_packets = 0;
    pt->eos_seen = 0;
}

int tb_track_silent(const tb_track_t *pt, uint64_t now)
{
    return pt->last_heard != 0 && now - pt->last_heard > TB_TRACK_EXPIRE_NS;
}

int tb_track_expirable(const tb_track_t *pt, uint64_t now)
{
    return tb_track_silent(pt, now) && pt->received == 0 && !pt->eos_seen && pt->seq_gaps == 0 &&
           pt->lost_packets == 0;
}

int tb_track_all_ended(const tb_track_t *tracks, size_t n, uint64_t now)
{
    size_t ended = 0;
    for (size_t i = 0; i < n; i++) {
        if (tracks[i].eos_seen) {
            ended++;
        } else if (!tb_track_silent(&tracks[i], now)) {
            return 0;
        }
    }
    return ended > 0;
}

uint64_t tb_track_capture_drops(const tb_track_t *pt)
{
    return pt->have_hb ? s_add_sat(pt->hb.pcap_drop, pt->hb.pcap_ifdrop) : 0;
}

void tb_track_loss(const tb_track_t *pt, uint64_t unmeasured_ns, tb_loss_t *l)
{
    memset(l, 0, sizeof *l);
    l->probe = pt->probe_id;
    l->received = pt->received;
    l->seq_gaps = pt->seq_gaps;
    l->lost_packets = pt->lost_packets;
    l->restarts = pt->restarts;
    l->unmeasured_ms = unmeasured_ns / 1000000u;
    if (pt->have_hb) {
        l->capture_drops = tb_track_capture_drops(pt);
        l->bus_drops = pt->hb.bus_drops;
        l->decode_errors = pt->hb.decode_errors;
        l->files_skipped = pt->hb.files_skipped;
        l->frames_lost = pt->hb.frames_lost;
        l->frames_bad = pt->hb.frames_bad;
    }
}

void tb_track_totals(const tb_track_t *tracks, size_t n, tb_track_totals_t *t)
{
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < n; i++) {
        const tb_track_t *pt = &tracks[i];
        t->seq_gaps = s_add_sat(t->seq_gaps, pt->seq_gaps);
        t->seq_backward = s_add_sat(t->seq_backward, pt->seq_backward);
        t->lost_packets = s_add_sat(t->lost_packets, pt->lost_packets);
        t->restarts = s_add_sat(t->restarts, pt->restarts);
        if (pt->have_hb) {
            t->capture_drops = s_add_sat(t->capture_drops, tb_track_capture_drops(pt));
            t->bus_drops = s_add_sat(t->bus_drops, pt->hb.bus_drops);
            t->decode_errors = s_add_sat(t->decode_errors, pt->hb.decode_errors);
            t->files_skipped = s_add_sat(t->files_skipped, pt->hb.files_skipped);
            t->frames_lost = s_add_sat(t->frames_lost, pt->hb.frames_lost);
            t->frames_bad = s_add_sat(t->frames_bad, pt->hb.frames_bad);
        }
    }
}

void tb_track_pack(const tb_track_t *pt, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 9);
    tb_mp_kv_str(pk, "id", pt->probe_id);
    tb_mp_kv_u64(pk, "boot_ns", pt->boot_ns);
    tb_mp_kv_u64(pk, "next_seq", pt->next_seq);
    tb_mp_kv_u64(pk, "run", pt->run);
    tb_mp_kv_u64(pk, "received", pt->received);
    tb_mp_kv_u64(pk, "seq_gaps", pt->seq_gaps);
    tb_mp_kv_u64(pk, "restarts", pt->restarts);
    tb_mp_kv_u64(pk, "lost_packets", pt->lost_packets);
    tb_mp_kv_bool(pk, "eos_seen", pt->eos_seen);
}

void tb_track_unpack(tb_track_t *pt, tb_mp_reader_t *r)
{
    memset(pt, 0, sizeof *pt);
    pt->src_state = -1; /* until its next heartbeat says */
    uint32_t pairs = tb_mp_read_map(r);
    for (uint32_t i = 0; i < pairs && !r->error; i++) {
        if (tb_mp_next_str_is(r, "id")) {
            tb_mp_read_str_copy(r, pt->probe_id, sizeof pt->probe_id);
        } else if (tb_mp_next_str_is(r, "boot_ns")) {
            pt->boot_ns = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "next_seq")) {
            pt->next_seq = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "run")) {
            pt->run = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "received")) {
            pt->received = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "seq_gaps")) {
            pt->seq_gaps = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "restarts")) {
            pt->restarts = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "lost_packets")) {
            pt->lost_packets = tb_mp_read_uint(r);
        } else if (tb_mp_next_str_is(r, "eos_seen")) {
            pt->eos_seen = tb_mp_read_bool(r);
        } else {
            tb_mp_skip(r);
            tb_mp_skip(r);
        }
    }
}
