/* ratelog — log lines for per-message events (a sequence gap, a bad
 * message, a reply dropped) through a rate limiter: a few lines a second at
 * most, the next line saying how many similar ones were suppressed.
 *
 * Plain data owned by whoever logs (the collector keeps one for its loop
 * and lends it to its streams and control socket). Not thread-safe. */
#ifndef TB_RATELOG_H
#define TB_RATELOG_H

#include "tb_log.h"

#include <stdint.h>

typedef struct {
    tb_ratelimit_t rl;
    const char *component; /* borrowed, e.g. a string literal */
} tb_ratelog_t;

/* At most burst lines per interval_ns, logged as component. */
void tb_ratelog_init(tb_ratelog_t *r, const char *component, uint64_t interval_ns, uint32_t burst);

/* Log one line at level if the level is enabled and the limiter allows it. */
void tb_ratelog(tb_ratelog_t *r, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
