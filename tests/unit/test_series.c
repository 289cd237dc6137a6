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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order_and_lateness),
        cmocka_unit_test(test_gaps_and_jumps),
        cmocka_unit_test(test_zero_lateness_and_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
