/* sink_log — one INFO line per stream whose measurement ended. */
#include "sink_log.h"

#include "tb_log.h"

#include <stdlib.h>

static void s_final(tb_sink_t *sink, void *state, const char *stream, const char *how,
                    const char *reason, const tb_stats_t *st)
{
    (void)sink;
    (void)state;
    tb_log(TB_LOG_INFO, "collector",
           "stream %s %s: %llu packets, %llu bytes, length %u..%u, %.1f packets/s%s%s", stream, how,
           (unsigned long long)st->packets, (unsigned long long)st->bytes,
           st->packets ? st->min_pkt.wire_len : 0, st->packets ? st->max_pkt.wire_len : 0,
           tb_stats_avg_pps(st), reason[0] ? "; " : "", reason);
}

static void s_destroy(tb_sink_t *sink)
{
    free(sink);
}

static const tb_sink_ops_t s_ops = {.name = "log", .stream_final = s_final, .destroy = s_destroy};

tb_sink_t *tb_sink_log_new(void)
{
    tb_sink_t *sink = calloc(1, sizeof *sink);
    if (sink != NULL) {
        sink->ops = &s_ops;
    }
    return sink;
}

void tb_sink_destroy(tb_sink_t **p)
{
    if (p == NULL || *p == NULL) {
        return;
    }
    tb_sink_t *sink = *p;
    *p = NULL;
    sink->ops->destroy(sink);
}
