/* test_keybind — a probe id belongs to the first key it came with: the same
 * key again passes, another key is refused and counted, ids beyond the
 * table's room are refused and counted, and the refusal says who and why. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "keybind.h"
#include "tb_err.h"

#include <stdio.h>
#include <string.h>

#define KEY_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define KEY_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static void test_first_key_owns_the_id(void **state)
{
    (void)state;
    tb_keybind_t *kb = tb_keybind_new(8);
    assert_non_null(kb);
    tb_keybind_counters_t c;
    assert_int_equal(tb_keybind_check(kb, "edge1", KEY_A, "edge1"), 0);
    assert_int_equal(tb_keybind_check(kb, "edge1", KEY_A, "edge1"), 0);
    /* Another probe given the same --id, with its own key. */
    assert_int_equal(tb_keybind_check(kb, "edge1", KEY_B, "edge9"), TB_EPROTO);
    assert_int_equal(tb_keybind_check(kb, "edge1", KEY_B, NULL), TB_EPROTO);
    /* One key may send as several ids (a probe renamed; the key stays its). */
    assert_int_equal(tb_keybind_check(kb, "edge2", KEY_A, NULL), 0);
    assert_int_equal(tb_keybind_check(kb, "edge3", KEY_B, NULL), 0);
    assert_int_equal(tb_keybind_check(kb, "edge1", KEY_A, NULL), 0);
    tb_keybind_counters(kb, &c);
    assert_int_equal(c.ids, 3);
    assert_int_equal(c.conflicts, 2);
    assert_int_equal(c.full, 0);
    assert_non_null(strstr(c.last, "probe id 'edge1' claimed by key " KEY_B ","));
    assert_non_null(strstr(c.last, "came with key " KEY_A " first"));
    tb_keybind_destroy(&kb);
    assert_null(kb);
    tb_keybind_destroy(&kb); /* NULL is fine */
}

static void test_the_table_is_bounded(void **state)
{
    (void)state;
    tb_keybind_t *kb = tb_keybind_new(4);
    char id[16];
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof id, "p%d", i);
        assert_int_equal(tb_keybind_check(kb, id, KEY_A, NULL), 0);
    }
    assert_int_equal(tb_keybind_check(kb, "p4", KEY_A, NULL), TB_ELIMIT);
    assert_int_equal(tb_keybind_check(kb, "p4", KEY_A, NULL), TB_ELIMIT);
    assert_int_equal(tb_keybind_check(kb, "p2", KEY_A, NULL), 0); /* known ids go on */
    tb_keybind_counters_t c;
    tb_keybind_counters(kb, &c);
    assert_int_equal(c.ids, 4);
    assert_int_equal(c.full, 2);
    assert_non_null(strstr(c.last, "no room"));
    tb_keybind_destroy(&kb);
    assert_null(tb_keybind_new(0));
    assert_null(tb_keybind_new(TB_KEYBIND_MAX + 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_key_owns_the_id),
        cmocka_unit_test(test_the_table_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
