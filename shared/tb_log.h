/* tb_log — leveled logging to stderr, and a rate limiter for per-packet
 * problems.
 *
 * The threshold is process-wide configuration set once by main() (like
 * syslog's mask); tb_log() checks it before any formatting work. Lines look
 * like "2026-11-23T07:40:01.123Z INFO  probe: message". Thread-safe: each line
 * is written with one fprintf call. */
#ifndef TB_LOG_H
#define TB_LOG_H

#include <stdint.h>

typedef enum {
    TB_LOG_ERROR = 0,
    TB_LOG_WARN = 1,
    TB_LOG_INFO = 2,
    TB_LOG_DEBUG = 3
} tb_log_level_t;

/* Set / get the threshold: messages above it are discarded. */
void tb_log_set_level(int level);
int tb_log_get_level(void);

/* Parse "error", "warn", "info" or "debug"; returns the level or TB_EINVAL. */
int tb_log_parse_level(const char *name);

void tb_log_write(int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define tb_log(level, component, ...)                                                              \
    do {                                                                                           \
        if ((level) <= tb_log_get_level()) {                                                       \
            tb_log_write((level), (component), __VA_ARGS__);                                       \
        }                                                                                          \
    } while (0)

/* At most `burst` events per `interval_ns`; the rest are counted as
 * suppressed and reported by the caller with the next allowed line. */
typedef struct {
    uint64_t interval_ns;
    uint32_t burst;
    uint64_t window_start;
    uint32_t in_window;
    uint64_t suppressed; /* events refused since the last allowed one */
} tb_ratelimit_t;

void tb_ratelimit_init(tb_ratelimit_t *rl, uint64_t interval_ns, uint32_t burst);

/* True if an event at monotonic time now_ns may be logged. When it returns
 * true, *suppressed (if not NULL) receives the count refused before it. */
int tb_ratelimit_allow(tb_ratelimit_t *rl, uint64_t now_ns, uint64_t *suppressed);

#endif
