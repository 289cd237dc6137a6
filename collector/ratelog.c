/* ratelog — see ratelog.h. */
#include "ratelog.h"

#include "tb_time.h"

#include <stdarg.h>
#include <stdio.h>

void tb_ratelog_init(tb_ratelog_t *r, const char *component, uint64_t interval_ns, uint32_t burst)
{
    tb_ratelimit_init(&r->rl, interval_ns, burst);
    r->component = component;
}

void tb_ratelog(tb_ratelog_t *r, int level, const char *fmt, ...)
{
    uint64_t suppressed = 0;
    if (level > tb_log_get_level() || !tb_ratelimit_allow(&r->rl, tb_time_mono_ns(), &suppressed)) {
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (suppressed > 0) {
        tb_log_write(level, r->component, "%s (%llu similar lines suppressed)", msg,
                     (unsigned long long)suppressed);
    } else {
        tb_log_write(level, r->component, "%s", msg);
    }
}
