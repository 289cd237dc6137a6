/* test_pointstats — the collector's breakdown by measurement point: batches
 * whose tables number the same pairs differently, unnamed packets, a full
 * table (overflow), the order of a reply, names cut to 8 bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pointstats.h"

static tb_summary_t s_pkt(uint16_t point, uint32_t len)
{
    tb_summary_t s;
    memset(&s, 0, sizeof s);
    s.wire_len = len;
    s.cap_len = len;
    s.point = point;
    return s;
}

static const tb_pointstat_t *s_find(const tb_pointstats_t *ps, const char *mp, const char *ci)
{
    for (size_t i = 0; i < ps->n; i++) {
        if (strcmp(ps->e[i].mp, mp) == 0 && strcmp(ps->e[i].ci, ci) == 0) {
            return &ps->e[i];
        }
    }
    return NULL;
}

static void test_batches_map_by_name(void **state)
{
    (void)state;
    tb_pointstats_t ps;
    memset(&ps, 0, sizeof ps);
    /* Two probes' tables: the same pairs, numbered differently. */
    tb_point_table_t a, b;
    tb_point_table_reset(&a);
    tb_point_table_reset(&b);
    tb_point_table_intern(&a, "mp-1", "eth0");
    tb_point_table_intern(&a, "mp-1", "eth1");
    tb_point_table_intern(&b, "mp-1", "eth1");
    tb_point_table_intern(&b, "mp-1", "eth0");
    tb_point_table_intern(&b, "mp-2", "eth0");
    tb_summary_t one[] = {s_pkt(1, 100), s_pkt(2, 200), s_pkt(1, 10), s_pkt(0, 7)};
    tb_summary_t two[] = {s_pkt(1, 1000), s_pkt(2, 20), s_pkt(3, 3)};
    tb_pointstats_add(&ps, &a, one, 4);
    tb_pointstats_add(&ps, &b, two, 3);
    assert_int_equal(ps.n, 3);
    const tb_pointstat_t *e0 = s_find(&ps, "mp-1", "eth0");
    const tb_pointstat_t *e1 = s_find(&ps, "mp-1", "eth1");
    const tb_pointstat_t *e2 = s_find(&ps, "mp-2", "eth0");
    assert_non_null(e0);
    assert_non_null(e1);
    assert_non_null(e2);
    assert_int_equal(e0->packets, 3);
    assert_int_equal(e0->bytes, 130);
    assert_int_equal(e1->packets, 2);
    assert_int_equal(e1->bytes, 1200);
    assert_int_equal(e2->packets, 1);
    assert_int_equal(e2->bytes, 3);
    assert_int_equal(ps.unnamed_packets, 1);
    assert_int_equal(ps.unnamed_bytes, 7);
    assert_int_equal(ps.overflow_packets, 0);
    assert_true(tb_pointstats_any(&ps));

    /* Sorted by MP, then CI. */
    size_t order[TB_POINTS_MAX];
    tb_pointstats_order(&ps, order);
    assert_ptr_equal(&ps.e[order[0]], e0);
    assert_ptr_equal(&ps.e[order[1]], e1);
    assert_ptr_equal(&ps.e[order[2]], e2);

    /* Points not used by a batch take no slot; packets without points only
     * count as unnamed and show no breakdown. */
    tb_pointstats_t empty;
    memset(&empty, 0, sizeof empty);
    tb_summary_t none[] = {s_pkt(0, 5), s_pkt(0, 6)};
    tb_pointstats_add(&empty, &b, none, 2);
    tb_pointstats_add(&empty, NULL, none, 2);
    assert_int_equal(empty.n, 0);
    assert_int_equal(empty.unnamed_packets, 4);
    assert_int_equal(empty.unnamed_bytes, 22);
    assert_false(tb_pointstats_any(&empty));
}

static void test_full_table_overflows(void **state)
{
    (void)state;
    tb_pointstats_t ps;
    memset(&ps, 0, sizeof ps);
    char ci[16];
    /* Two batches of 40 distinct interfaces each: 80 pairs, 64 kept. */
    for (int batch = 0; batch < 2; batch++) {
        tb_point_table_t t;
        tb_point_table_reset(&t);
        tb_summary_t items[40];
        for (int i = 0; i < 40; i++) {
            snprintf(ci, sizeof ci, "if%d", batch * 40 + i);
            items[i] = s_pkt(tb_point_table_intern(&t, "mp", ci), 10);
        }
        tb_pointstats_add(&ps, &t, items, 40);
    }
    assert_int_equal(ps.n, TB_POINTS_MAX);
    assert_int_equal(ps.overflow_packets, 80 - TB_POINTS_MAX);
    assert_int_equal(ps.overflow_bytes, 10 * (80 - TB_POINTS_MAX));
    uint64_t sum = ps.overflow_packets;
    for (size_t i = 0; i < ps.n; i++) {
        sum += ps.e[i].packets;
    }
    assert_int_equal(sum, 80);
    /* A known pair still counts in its slot. */
    tb_point_table_t t;
    tb_point_table_reset(&t);
    tb_summary_t again = s_pkt(tb_point_table_intern(&t, "mp", "if0"), 1);
    tb_pointstats_add(&ps, &t, &again, 1);
    assert_int_equal(s_find(&ps, "mp", "if0")->packets, 2);
    assert_int_equal(ps.overflow_packets, 80 - TB_POINTS_MAX);
}

static void test_slot_names(void **state)
{
    (void)state;
    tb_pointstats_t ps;
    memset(&ps, 0, sizeof ps);
    assert_int_equal(tb_pointstats_slot(&ps, "measurement", "interface"), 0);
    assert_string_equal(ps.e[0].mp, "measurem");
    assert_string_equal(ps.e[0].ci, "interfac");
    assert_int_equal(tb_pointstats_slot(&ps, "measurem", "interfac"), 0);
    assert_int_equal(tb_pointstats_slot(&ps, "", ""), 1);
    assert_int_equal(ps.n, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches_map_by_name),
        cmocka_unit_test(test_full_table_overflows),
        cmocka_unit_test(test_slot_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
