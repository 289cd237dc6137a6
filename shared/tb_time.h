/* tb_time — clocks and timestamp formatting. Thread-safe, no allocation. */
#ifndef TB_TIME_H
#define TB_TIME_H

#include <stddef.h>
#include <stdint.h>

#define TB_NS_PER_SEC 1000000000ull
#define TB_NS_PER_MS  1000000ull

/* Wall-clock time, nanoseconds since the Unix epoch. */
uint64_t tb_time_now_ns(void);

/* Monotonic time in nanoseconds (for timeouts and intervals). */
uint64_t tb_time_mono_ns(void);

/* Format an epoch-ns time as RFC 3339 UTC with `digits` fractional digits
 * (0..9), e.g. "2026-11-23T07:40:01.123456789Z". Returns buf. */
char *tb_time_format(uint64_t ns, int digits, char *buf, size_t size);

#endif
