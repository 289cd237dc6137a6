/* test_point — tb_point: interning (MP, CI) pairs, names cut to 8 bytes, a
 * full table, reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tb_point.h"

static void test_intern(void **state)
{
    (void)state;
    tb_point_table_t t;
    tb_point_table_reset(&t);
    assert_int_equal(t.n, 0);
    assert_int_equal(tb_point_table_intern(&t, "mp-1", "eth0"), 1);
    assert_int_equal(tb_point_table_intern(&t, "mp-1", "eth1"), 2);
    assert_int_equal(tb_point_table_intern(&t, "mp-2", "eth0"), 3); /* same CI, other MP */
    assert_int_equal(tb_point_table_intern(&t, "mp-1", "eth0"), 1);
    assert_int_equal(tb_point_table_intern(&t, "mp-2", "eth0"), 3);
    assert_int_equal(tb_point_table_intern(&t, "", ""), 4); /* empty names are names */
    assert_int_equal(tb_point_table_intern(&t, "", ""), 4);
    assert_int_equal(t.n, 4);
    assert_string_equal(t.p[1].mp, "mp-1");
    assert_string_equal(t.p[1].ci, "eth1");
    assert_string_equal(t.p[2].mp, "mp-2");
    assert_int_equal(t.overflow, 0);
}

static void test_names_cut_to_eight(void **state)
{
    (void)state;
    tb_point_table_t t;
    tb_point_table_reset(&t);
    assert_int_equal(tb_point_table_intern(&t, "measurement-point", "interface0"), 1);
    assert_string_equal(t.p[0].mp, "measurem");
    assert_string_equal(t.p[0].ci, "interfac");
    /* What is beyond the 8th byte does not tell pairs apart. */
    assert_int_equal(tb_point_table_intern(&t, "measuremXYZ", "interfac"), 1);
    assert_int_equal(tb_point_table_intern(&t, "12345678", "abcdefgh"), 2);
    assert_string_equal(t.p[1].mp, "12345678");
    assert_string_equal(t.p[1].ci, "abcdefgh");
    assert_int_equal(t.n, 2);
}

static void test_full_table(void **state)
{
    (void)state;
    tb_point_table_t t;
    tb_point_table_reset(&t);
    char ci[16];
    for (int i = 0; i < TB_POINTS_MAX; i++) {
        snprintf(ci, sizeof ci, "ci%d", i);
        assert_int_equal(tb_point_table_intern(&t, "mp", ci), i + 1);
    }
    assert_int_equal(t.n, TB_POINTS_MAX);
    /* A new pair finds no room: 0, counted; known pairs still resolve. */
    assert_int_equal(tb_point_table_intern(&t, "mp", "new"), 0);
    assert_int_equal(tb_point_table_intern(&t, "other", "ci0"), 0);
    assert_int_equal(t.overflow, 2);
    assert_int_equal(tb_point_table_intern(&t, "mp", "ci63"), TB_POINTS_MAX);
    assert_int_equal(tb_point_table_intern(&t, "mp", "ci0"), 1);
    assert_int_equal(t.n, TB_POINTS_MAX);
    assert_int_equal(t.overflow, 2);

    tb_point_table_reset(&t);
    assert_int_equal(t.n, 0);
    assert_int_equal(t.overflow, 0);
    assert_int_equal(tb_point_table_intern(&t, "mp", "new"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intern),
        cmocka_unit_test(test_names_cut_to_eight),
        cmocka_unit_test(test_full_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
