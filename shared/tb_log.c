/* tb_log — see tb_log.h. */
#include "tb_log.h"

#include "tb_err.h"
#include "tb_time.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static atomic_int s_level = TB_LOG_INFO;

static const char *const s_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void tb_log_set_level(int level)
{
    if (level < TB_LOG_ERROR) {
        level = TB_LOG_ERROR;
    }
    if (level > TB_LOG_DEBUG) {
        level = TB_LOG_DEBUG;
    }
    atomic_store_explicit(&s_level, level, memory_order_relaxed);
}

int tb_log_get_level(void)
{
    return atomic_load_explicit(&s_level, memory_order_relaxed);
}

int tb_log_parse_level(const char *name)
{
    static const char *const lower[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, lower[i]) == 0) {
            return i;
        }
    }
    return TB_EINVAL;
}

void tb_log_write(int level, const char *component, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    char ts[40];
    tb_time_format(tb_time_now_ns(), 3, ts, sizeof ts);
    if (level < TB_LOG_ERROR || level > TB_LOG_DEBUG) {
        level = TB_LOG_ERROR;
    }
    fprintf(stderr, "%s %-5s %s: %s\n", ts, s_names[level], component, msg);
}

void tb_ratelimit_init(tb_ratelimit_t *rl, uint64_t interval_ns, uint32_t burst)
{
    memset(rl, 0, sizeof *rl);
    rl->interval_ns = interval_ns;
    rl->burst = burst;
}

int tb_ratelimit_allow(tb_ratelimit_t *rl, uint64_t now_ns, uint64_t *suppressed)
{
    if (rl->window_start == 0 || now_ns - rl->window_start >= rl->interval_ns) {
        rl->window_start = now_ns;
        rl->in_window = 0;
    }
    if (rl->in_window >= rl->burst) {
        rl->suppressed++;
        return 0;
    }
    rl->in_window++;
    if (suppressed) {
        *suppressed = rl->suppressed;
    }
    rl->suppressed = 0;
    return 1;
}
