/* test_jfield — a reply's fields read leniently (controller/jfield.c):
 * integers as they are, counters past 2^63 (reals) saturated, anything
 * missing or of another type as 0 or "", sums that saturate, and the
 * index of a column. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "jfield.h"

#include <math.h>

static void test_int(void **state)
{
    (void)state;
    json_t *o = json_pack("{s:I, s:I, s:f, s:f, s:f, s:s, s:n, s:b}", "i", (json_int_t)-7, "max",
                          (json_int_t)INT64_MAX, "big", 1.9e19, "small", -1e19, "r", 42.9, "s",
                          "12", "null", "t", 1);
    assert_non_null(o);
    assert_int_equal(tb_jint(o, "i"), -7);
    assert_true(tb_jint(o, "max") == INT64_MAX);
    assert_true(tb_jint(o, "big") == INT64_MAX); /* a uint64 counter past 2^63 */
    assert_true(tb_jint(o, "small") == INT64_MIN);
    assert_int_equal(tb_jint(o, "r"), 42);
    assert_int_equal(tb_jint(o, "s"), 0); /* another type */
    assert_int_equal(tb_jint(o, "null"), 0);
    assert_int_equal(tb_jint(o, "t"), 0);
    assert_int_equal(tb_jint(o, "missing"), 0);
    assert_int_equal(tb_jint(NULL, "i"), 0);
    json_decref(o);
}

static void test_add(void **state)
{
    (void)state;
    assert_int_equal(tb_jadd(2, 3), 5);
    assert_true(tb_jadd(INT64_MAX, 1) == INT64_MAX);
    assert_true(tb_jadd(INT64_MIN, -1) == INT64_MIN);
    assert_true(tb_jadd(INT64_MAX, INT64_MIN) == -1);
}

static void test_num_str(void **state)
{
    (void)state;
    json_t *o = json_pack("{s:I, s:f, s:s, s:I}", "i", (json_int_t)3, "r", 2.5, "s", "text", "n",
                          (json_int_t)1);
    assert_non_null(o);
    assert_true(tb_jnum(o, "i") == 3.0);
    assert_true(tb_jnum(o, "r") == 2.5);
    assert_true(tb_jnum(o, "s") == 0.0);
    assert_true(tb_jnum(o, "missing") == 0.0);
    assert_string_equal(tb_jstr(o, "s"), "text");
    assert_string_equal(tb_jstr(o, "n"), ""); /* not a string */
    assert_string_equal(tb_jstr(o, "missing"), "");
    assert_string_equal(tb_jstr(NULL, "s"), "");
    json_decref(o);
}

static void test_index(void **state)
{
    (void)state;
    json_t *cols = json_pack("[s, i, s, s]", "time", 5, "rank", "time");
    assert_non_null(cols);
    assert_int_equal(tb_jindex(cols, "time"), 0); /* the first */
    assert_int_equal(tb_jindex(cols, "rank"), 2);
    assert_int_equal(tb_jindex(cols, "5"), -1); /* only strings */
    assert_int_equal(tb_jindex(cols, "_time"), -1);
    assert_int_equal(tb_jindex(NULL, "time"), -1);
    json_decref(cols);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int),
        cmocka_unit_test(test_add),
        cmocka_unit_test(test_num_str),
        cmocka_unit_test(test_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
