/* tb_time — see tb_time.h. */
#include "tb_time.h"

#include <stdio.h>
#include <time.h>

uint64_t tb_time_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * TB_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t tb_time_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * TB_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

char *tb_time_format(uint64_t ns, int digits, char *buf, size_t size)
{
    if (size == 0) {
        return buf;
    }
    time_t secs = (time_t)(ns / TB_NS_PER_SEC);
    uint64_t frac = ns % TB_NS_PER_SEC;
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL) {
        snprintf(buf, size, "invalid-time");
        return buf;
    }
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    if (digits <= 0) {
        snprintf(buf, size, "%sZ", base);
        return buf;
    }
    if (digits > 9) {
        digits = 9;
    }
    for (int i = digits; i < 9; i++) {
        frac /= 10;
    }
    snprintf(buf, size, "%s.%0*lluZ", base, digits, (unsigned long long)frac);
    return buf;
}
