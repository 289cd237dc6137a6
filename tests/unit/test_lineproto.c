/* Unit tests for the InfluxDB line-protocol formatter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lineproto.h"
#include "tb_err.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void s_expect(const tb_lp_t *lp, const char *want)
{
    assert_int_equal(lp->len, strlen(want));
    assert_memory_equal(lp->data, want, lp->len);
}

static void test_point_and_types(void **state)
{
    (void)state;
    char buf[512];
    tb_lp_t lp;
    tb_lp_init(&lp, buf, sizeof buf);
    tb_lp_begin(&lp, "traffic");
    tb_lp_tag(&lp, "stream", "01::10:01");
    tb_lp_tag(&lp, "probe", "edge1");
    tb_lp_field_u64(&lp, "packets", 42);
    tb_lp_field_i64(&lp, "delta", -7);
    tb_lp_field_f64(&lp, "pps", 0.5);
    tb_lp_field_str(&lp, "src", "192.0.2.1");
    tb_lp_field_bool(&lp, "partial", 1);
    assert_int_equal(tb_lp_end(&lp, 1700000000123456789ull), 0);
    s_expect(&lp, "traffic,stream=01::10:01,probe=edge1 packets=42i,delta=-7i,pps=0.5,"
                  "src=\"192.0.2.1\",partial=true 1700000000123456789\n");
    assert_int_equal(lp.points, 1);
}

static void test_escaping(void **state)
{
    (void)state;
    char buf[512];
    tb_lp_t lp;
    tb_lp_init(&lp, buf, sizeof buf);
    tb_lp_begin(&lp, "my measure,x=1");
    tb_lp_tag(&lp, "a key,=", "v a,l=ue");
    tb_lp_field_str(&lp, "f k", "say \"hi\" \\ bye\nnext");
    assert_int_equal(tb_lp_end(&lp, 1), 0);
    s_expect(&lp, "my\\ measure\\,x=1,a\\ key\\,\\==v\\ a\\,l\\=ue "
                  "f\\ k=\"say \\\"hi\\\" \\\\ bye next\" 1\n");
}

static void test_omissions(void **state)
{
    (void)state;
    char buf[256];
    tb_lp_t lp;
    tb_lp_init(&lp, buf, sizeof buf);
    tb_lp_begin(&lp, "m");
    tb_lp_tag(&lp, "empty", "");
    tb_lp_tag(&lp, "null", NULL);
    tb_lp_field_f64(&lp, "nan", NAN);
    tb_lp_field_f64(&lp, "inf", INFINITY);
    tb_lp_field_u64(&lp, "big", UINT64_MAX);
    assert_int_equal(tb_lp_end(&lp, 2), 0);
    s_expect(&lp, "m big=1.8446744073709552e+19 2\n");

    /* A point with no field is refused and leaves nothing behind. */
    tb_lp_begin(&lp, "m");
    tb_lp_tag(&lp, "t", "v");
    tb_lp_field_f64(&lp, "nan", NAN);
    assert_int_equal(tb_lp_end(&lp, 3), TB_EINVAL);
    s_expect(&lp, "m big=1.8446744073709552e+19 2\n");
    /* Tags after fields are ignored, as are fields outside a point. */
    tb_lp_field_i64(&lp, "x", 1);
    assert_int_equal(tb_lp_end(&lp, 4), TB_EINVAL);
    assert_int_equal(lp.points, 1);
}

/* Found by fuzz_lineproto: an empty measurement, tag key or field key made a
 * line InfluxDB refuses (",k=v x=1i 5"). The point, tag or field is left out. */
static void test_regress_empty_names(void **state)
{
    (void)state;
    char buf[256];
    tb_lp_t lp;
    tb_lp_init(&lp, buf, sizeof buf);
    tb_lp_begin(&lp, "");
    tb_lp_tag(&lp, "k", "v");
    tb_lp_field_i64(&lp, "x", 1);
    assert_int_equal(tb_lp_end(&lp, 5), TB_EINVAL);
    assert_int_equal(lp.len, 0);
    tb_lp_begin(&lp, "m");
    tb_lp_tag(&lp, "", "v");
    tb_lp_tag(&lp, "k", "v");
    tb_lp_field_i64(&lp, "", 1);
    tb_lp_field_str(&lp, "", "s");
    tb_lp_field_i64(&lp, "x", 1);
    assert_int_equal(tb_lp_end(&lp, 5), 0);
    s_expect(&lp, "m,k=v x=1i 5\n");
}

/* Found by fuzz_lineproto: a name ending in a backslash escaped the separator
 * after it (f\=1i is a field key with no value to InfluxDB). A backslash
 * InfluxDB would read as an escape becomes '/'; others stay. */
static void test_regress_backslash_in_names(void **state)
{
    (void)state;
    char buf[256];
    tb_lp_t lp;
    tb_lp_init(&lp, buf, sizeof buf);
    tb_lp_begin(&lp, "dir\\");
    tb_lp_tag(&lp, "k\\", "a\\,b");
    tb_lp_tag(&lp, "p", "c:\\d\\\\e");
    tb_lp_field_str(&lp, "f\\", "v\\");
    assert_int_equal(tb_lp_end(&lp, 6), 0);
    s_expect(&lp, "dir/,k/=a/\\,b,p=c:\\d\\\\e f/=\"v\\\\\" 6\n");
}

static void test_overflow_rolls_back(void **state)
{
    (void)state;
    char buf[40];
    tb_lp_t lp;
    tb_lp_init(&lp, buf, sizeof buf);
    tb_lp_begin(&lp, "m");
    tb_lp_field_i64(&lp, "a", 1);
    assert_int_equal(tb_lp_end(&lp, 5), 0);
    s_expect(&lp, "m a=1i 5\n");
    tb_lp_begin(&lp, "m");
    tb_lp_field_str(&lp, "long", "this will never fit in what is left");
    assert_int_equal(tb_lp_end(&lp, 6), TB_ELIMIT);
    s_expect(&lp, "m a=1i 5\n");
    /* Every possible capacity: the buffer holds complete lines or nothing. */
    for (size_t cap = 0; cap < 40; cap++) {
        tb_lp_init(&lp, buf, cap);
        tb_lp_begin(&lp, "m");
        tb_lp_tag(&lp, "t", "v");
        tb_lp_field_u64(&lp, "n", 123456);
        int rc = tb_lp_end(&lp, 7);
        if (cap >= strlen("m,t=v n=123456i 7\n")) {
            assert_int_equal(rc, 0);
            s_expect(&lp, "m,t=v n=123456i 7\n");
        } else {
            assert_int_equal(rc, TB_ELIMIT);
            assert_int_equal(lp.len, 0);
        }
    }
    tb_lp_clear(&lp);
    assert_int_equal(lp.len, 0);
    assert_int_equal(lp.points, 0);
}

static void test_float_round_trip(void **state)
{
    (void)state;
    char buf[128];
    tb_lp_t lp;
    static const double values[] = {0.1, 1.0 / 3.0, 1e-300, 123456789.123456789, -2.5e10};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        tb_lp_init(&lp, buf, sizeof buf);
        tb_lp_begin(&lp, "m");
        tb_lp_field_f64(&lp, "v", values[i]);
        assert_int_equal(tb_lp_end(&lp, 0), 0);
        buf[lp.len] = '\0';
        double back = 0;
        assert_int_equal(sscanf(buf, "m v=%lf 0", &back), 1);
        assert_true(back == values[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_point_and_types),  cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_omissions),        cmocka_unit_test(test_overflow_rolls_back),
        cmocka_unit_test(test_float_round_trip),
        cmocka_unit_test(test_regress_empty_names),
        cmocka_unit_test(test_regress_backslash_in_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
