/* pointstats — see pointstats.h. */
#include "pointstats.h"

#include "tb_err.h"

#include <string.h>

int tb_pointstats_slot(tb_pointstats_t *ps, const char *mp, const char *ci)
{
    size_t nm = strnlen(mp, TB_POINT_NAME_MAX);
    size_t nc = strnlen(ci, TB_POINT_NAME_MAX);
    for (size_t i = 0; i < ps->n; i++) {
        const tb_pointstat_t *e = &ps->e[i];
        if (strlen(e->mp) == nm && memcmp(e->mp, mp, nm) == 0 && strlen(e->ci) == nc &&
            memcmp(e->ci, ci, nc) == 0) {
            return (int)i;
        }
    }
    if (ps->n >= TB_POINTS_MAX) {
        return -1;
    }
    tb_pointstat_t *e = &ps->e[ps->n];
    memset(e, 0, sizeof *e);
    memcpy(e->mp, mp, nm);
    memcpy(e->ci, ci, nc);
    return (int)ps->n++;
}

/* Slots of a batch's points: not looked up yet, beyond the table. */
enum { S_UNMAPPED = -2, S_OVERFLOW = -1 };

void tb_pointstats_add(tb_pointstats_t *ps, const tb_point_table_t *t, const tb_summary_t *items,
                       size_t n)
{
    int slot[TB_POINTS_MAX + 1];
    size_t tn = t != NULL && t->n <= TB_POINTS_MAX ? t->n : 0;
    if (tn == 0) {
        /* A batch without points (any source but DPMI): every packet is
         * unnamed, summed in a local rather than through ps. */
        uint64_t bytes = 0;
        for (size_t i = 0; i < n; i++) {
            bytes += items[i].wire_len;
        }
        ps->unnamed_packets += n;
        ps->unnamed_bytes += bytes;
        return;
    }
    for (size_t i = 1; i <= tn; i++) {
        slot[i] = S_UNMAPPED;
    }
    for (size_t i = 0; i < n; i++) {
        const tb_summary_t *s = &items[i];
        size_t p = s->point;
        if (p == 0 || p > tn) {
            ps->unnamed_packets++;
            ps->unnamed_bytes += s->wire_len;
            continue;
        }
        if (slot[p] == S_UNMAPPED) {
            slot[p] = tb_pointstats_slot(ps, t->p[p - 1].mp, t->p[p - 1].ci);
        }
        if (slot[p] == S_OVERFLOW) {
            ps->overflow_packets++;
            ps->overflow_bytes += s->wire_len;
            continue;
        }
        tb_pointstat_t *e = &ps->e[slot[p]];
        e->packets++;
        e->bytes += s->wire_len;
    }
}

int tb_pointstats_any(const tb_pointstats_t *ps)
{
    return ps->n > 0 || ps->overflow_packets > 0;
}

static int s_before(const tb_pointstat_t *a, const tb_pointstat_t *b)
{
    int c = strcmp(a->mp, b->mp);
    return c < 0 || (c == 0 && strcmp(a->ci, b->ci) < 0);
}

void tb_pointstats_order(const tb_pointstats_t *ps, size_t *order)
{
    /* Insertion sort: at most TB_POINTS_MAX entries, read per stats reply. */
    for (size_t i = 0; i < ps->n; i++) {
        size_t j = i;
        for (; j > 0 && s_before(&ps->e[i], &ps->e[order[j - 1]]); j--) {
            order[j] = order[j - 1];
        }
        order[j] = i;
    }
}

void tb_pointstats_pack(const tb_pointstats_t *ps, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    tb_mp_pack_cstr(pk, "entries");
    msgpack_pack_array(pk, ps->n);
    for (size_t i = 0; i < ps->n; i++) {
        msgpack_pack_array(pk, 4);
        tb_mp_pack_cstr(pk, ps->e[i].mp);
        tb_mp_pack_cstr(pk, ps->e[i].ci);
        msgpack_pack_uint64(pk, ps->e[i].packets);
        msgpack_pack_uint64(pk, ps->e[i].bytes);
    }
    tb_mp_pack_cstr(pk, "overflow");
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint64(pk, ps->overflow_packets);
    msgpack_pack_uint64(pk, ps->overflow_bytes);
    tb_mp_pack_cstr(pk, "unnamed");
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint64(pk, ps->unnamed_packets);
    msgpack_pack_uint64(pk, ps->unnamed_bytes);
}

/* [packets, bytes] */
static void s_read_pair(tb_mp_reader_t *r, uint64_t *packets, uint64_t *bytes)
{
    if (tb_mp_read_array(r) != 2) {
        r->error = r->error ? r->error : TB_EPROTO;
        return;
    }
    *packets = tb_mp_read_uint(r);
    *bytes = tb_mp_read_uint(r);
}

void tb_pointstats_unpack(tb_pointstats_t *ps, tb_mp_reader_t *r)
{
    uint32_t pairs = tb_mp_read_map(r);
    for (uint32_t i = 0; i < pairs && !r->error; i++) {
        if (tb_mp_next_str_is(r, "entries")) {
            uint32_t n = tb_mp_read_array(r);
            for (uint32_t k = 0; k < n && !r->error; k++) {
                char mp[TB_POINT_NAME_MAX + 1] = "", ci[TB_POINT_NAME_MAX + 1] = "";
                if (tb_mp_read_array(r) != 4) {
                    r->error = r->error ? r->error : TB_EPROTO;
                    break;
                }
                tb_mp_read_str_copy(r, mp, sizeof mp);
                tb_mp_read_str_copy(r, ci, sizeof ci);
                uint64_t packets = tb_mp_read_uint(r), bytes = tb_mp_read_uint(r);
                int slot = r->error ? -1 : tb_pointstats_slot(ps, mp, ci);
                if (slot >= 0) {
                    ps->e[slot].packets = packets;
                    ps->e[slot].bytes = bytes;
                } else if (!r->error) {
                    ps->overflow_packets += packets; /* a longer table than this one */
                    ps->overflow_bytes += bytes;
                }
            }
        } else if (tb_mp_next_str_is(r, "overflow")) {
            uint64_t p = 0, b = 0;
            s_read_pair(r, &p, &b);
            ps->overflow_packets += p;
            ps->overflow_bytes += b;
        } else if (tb_mp_next_str_is(r, "unnamed")) {
            s_read_pair(r, &ps->unnamed_packets, &ps->unnamed_bytes);
        } else {
            tb_mp_skip(r);
            tb_mp_skip(r);
        }
    }
}
